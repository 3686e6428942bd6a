// ibmb: how much memory this machine has, for the loaders' and the generator's up-front size
// checks (a request larger than the machine fails at once with a message instead of after a
// long run, or by the out-of-memory killer).
#pragma once

#include <unistd.h>

#include <cstdint>
#include <limits>

namespace ibmb::detail {

/// Bytes of physical memory of this machine (sysconf), or 0 when unknown.
inline std::uint64_t physical_memory_bytes() {
  const long pages = ::sysconf(_SC_PHYS_PAGES);
  const long page = ::sysconf(_SC_PAGESIZE);
  if (pages <= 0 || page <= 0) return 0;
  return static_cast<std::uint64_t>(pages) * static_cast<std::uint64_t>(page);
}

/// a * b, saturated at UINT64_MAX (both >= 0).
inline std::uint64_t mul_sat(std::uint64_t a, std::uint64_t b) {
  std::uint64_t r = 0;
  return __builtin_mul_overflow(a, b, &r) ? std::numeric_limits<std::uint64_t>::max() : r;
}

/// a + b, saturated at UINT64_MAX.
inline std::uint64_t add_sat(std::uint64_t a, std::uint64_t b) {
  std::uint64_t r = 0;
  return __builtin_add_overflow(a, b, &r) ? std::numeric_limits<std::uint64_t>::max() : r;
}

}  // namespace ibmb::detail
