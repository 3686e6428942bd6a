// ibmb: little-endian byte helpers shared by the binary readers and writers (.npy, .npz).
// Every load goes through memcpy, so unaligned buffers are fine.
#pragma once

#include <bit>
#include <cstdint>
#include <cstring>
#include <string>
#include <type_traits>
#include <vector>

namespace ibmb::detail {

static_assert(std::endian::native == std::endian::little,
              "ibmb: the binary readers assume a little-endian host");

template <class T>
[[nodiscard]] inline T load_le(const char* p) {
  static_assert(std::is_trivially_copyable_v<T>);
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

template <class T>
inline void append_le(std::vector<char>& out, T v) {
  static_assert(std::is_trivially_copyable_v<T>);
  const auto at = out.size();
  out.resize(at + sizeof(T));
  std::memcpy(out.data() + at, &v, sizeof(T));
}

inline void append_bytes(std::vector<char>& out, const void* p, std::size_t n) {
  const auto* c = static_cast<const char*>(p);
  out.insert(out.end(), c, c + n);
}

/// "0x1f8b..." for the first `n` bytes (for "bad magic" messages).
[[nodiscard]] inline std::string hex_prefix(const char* p, std::size_t size, std::size_t n) {
  static const char* digits = "0123456789abcdef";
  std::string s = "0x";
  for (std::size_t i = 0; i < n && i < size; ++i) {
    const auto b = static_cast<unsigned char>(p[i]);
    s += digits[b >> 4];
    s += digits[b & 15];
  }
  return s;
}

}  // namespace ibmb::detail
