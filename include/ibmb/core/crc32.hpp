// ibmb: CRC-32 (the polynomial of zlib, zip and PNG) of byte ranges, as the store, the
// history checkpoints, the dataset fingerprint and the .npz writer use it.
//
// The bytes go through libdeflate's crc32 when the build found libdeflate (CMake defines
// IBMB_HAVE_LIBDEFLATE=1 on the ibmb target then; it uses carry-less multiplication, about 3x
// zlib's speed on the machine of docs/benchmarks.md) and through zlib's otherwise. Both compute
// the same function, so files are identical either way; joining partial checksums
// (`crc32_combine`) always uses zlib. Each backend lives in its own inline namespace, so two
// translation units built with and without libdeflate do not break the one-definition rule.
#pragma once

#include <zlib.h>

#include <cstddef>
#include <cstdint>

#if defined(IBMB_HAVE_LIBDEFLATE) && IBMB_HAVE_LIBDEFLATE
#include <libdeflate.h>
#define IBMB_CRC32_LIBDEFLATE 1
#else
#define IBMB_CRC32_LIBDEFLATE 0
#endif

namespace ibmb::detail {

#if IBMB_CRC32_LIBDEFLATE
inline namespace crc32_libdeflate {
#else
inline namespace crc32_zlib {
#endif

/// The CRC-32 of `n` bytes at `p` appended to a running value `crc` (0 to start), as zlib's
/// `crc32(crc, p, n)` computes it, for any length.
inline std::uint32_t crc32_update(std::uint32_t crc, const void* p, std::size_t n) {
  if (n == 0) return crc;
#if IBMB_CRC32_LIBDEFLATE
  return static_cast<std::uint32_t>(::libdeflate_crc32(crc, p, n));
#else
  return static_cast<std::uint32_t>(::crc32_z(crc, static_cast<const Bytef*>(p), n));
#endif
}

/// Which implementation `crc32_update` calls: "libdeflate" or "zlib".
inline const char* crc32_backend() { return IBMB_CRC32_LIBDEFLATE ? "libdeflate" : "zlib"; }

}  // inline namespace

/// The CRC-32 of the concatenation A B from crc(A), crc(B) and B's length (zlib's
/// crc32_combine).
inline std::uint32_t crc32_combine(std::uint32_t a, std::uint32_t b, std::uint64_t len_b) {
  return static_cast<std::uint32_t>(::crc32_combine(a, b, static_cast<z_off_t>(len_b)));
}

}  // namespace ibmb::detail
