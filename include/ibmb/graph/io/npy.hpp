// ibmb: NumPy `.npy` files (format versions 1.0, 2.0 and 3.0): parse, encode, read, write.
//
// Supported element types are the little-endian numeric ones and bool:
//   <i1 <i2 <i4 <i8 <u1 <u2 <u4 <u8 <f2 <f4 <f8 |b1 (1-byte types also as |i1 |u1 <b1).
// Everything else is a `format_error` naming the file and the offending offset or value:
// Fortran order for 2+ dimensions (for 0/1 dimensions it is the same layout and accepted),
// object arrays (|O, i.e. pickles), big-endian (>), strings (<U, |S), structured or unknown
// dtypes, a header that is not a dict with exactly 'descr', 'fortran_order' and 'shape', a
// shape whose element or byte count overflows, and a data section shorter or longer than
// the shape says. NaN/Inf in float data is not a parse error (dataset validation rejects it).
//
// `npy_array` owns a little-endian, C-order copy of the data; `as<T>()` converts it to any
// arithmetic T with range checks (no silent wrap, truncation or overflow).
#pragma once

#include <algorithm>
#include <cmath>
#include <concepts>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <limits>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "ibmb/core/error.hpp"
#include "ibmb/core/file.hpp"
#include "ibmb/graph/io/detail/bytes.hpp"

namespace ibmb {

enum class npy_dtype { i8, i16, i32, i64, u8, u16, u32, u64, f16, f32, f64, boolean };

/// Bytes per element.
[[nodiscard]] constexpr std::size_t npy_itemsize(npy_dtype t) {
  switch (t) {
    case npy_dtype::i8:
    case npy_dtype::u8:
    case npy_dtype::boolean:
      return 1;
    case npy_dtype::i16:
    case npy_dtype::u16:
    case npy_dtype::f16:
      return 2;
    case npy_dtype::i32:
    case npy_dtype::u32:
    case npy_dtype::f32:
      return 4;
    default:
      return 8;
  }
}

/// The descr string NumPy writes for `t` ("<i8", "|b1", ...).
[[nodiscard]] constexpr std::string_view npy_descr(npy_dtype t) {
  switch (t) {
    case npy_dtype::i8:
      return "|i1";
    case npy_dtype::i16:
      return "<i2";
    case npy_dtype::i32:
      return "<i4";
    case npy_dtype::i64:
      return "<i8";
    case npy_dtype::u8:
      return "|u1";
    case npy_dtype::u16:
      return "<u2";
    case npy_dtype::u32:
      return "<u4";
    case npy_dtype::u64:
      return "<u8";
    case npy_dtype::f16:
      return "<f2";
    case npy_dtype::f32:
      return "<f4";
    case npy_dtype::f64:
      return "<f8";
    case npy_dtype::boolean:
      return "|b1";
  }
  return "?";
}

/// NumPy's name of the type ("int64", "float32", "bool").
[[nodiscard]] constexpr std::string_view npy_type_name(npy_dtype t) {
  switch (t) {
    case npy_dtype::i8:
      return "int8";
    case npy_dtype::i16:
      return "int16";
    case npy_dtype::i32:
      return "int32";
    case npy_dtype::i64:
      return "int64";
    case npy_dtype::u8:
      return "uint8";
    case npy_dtype::u16:
      return "uint16";
    case npy_dtype::u32:
      return "uint32";
    case npy_dtype::u64:
      return "uint64";
    case npy_dtype::f16:
      return "float16";
    case npy_dtype::f32:
      return "float32";
    case npy_dtype::f64:
      return "float64";
    case npy_dtype::boolean:
      return "bool";
  }
  return "?";
}

[[nodiscard]] constexpr bool npy_is_integer(npy_dtype t) {
  return t != npy_dtype::f16 && t != npy_dtype::f32 && t != npy_dtype::f64 &&
         t != npy_dtype::boolean;
}
[[nodiscard]] constexpr bool npy_is_float(npy_dtype t) {
  return t == npy_dtype::f16 || t == npy_dtype::f32 || t == npy_dtype::f64;
}

/// The dtype that stores C++ type T (bool, 8..64-bit integers, float, double).
template <class T>
[[nodiscard]] constexpr npy_dtype npy_dtype_of() {
  if constexpr (std::is_same_v<T, bool>) {
    return npy_dtype::boolean;
  } else if constexpr (std::is_floating_point_v<T>) {
    static_assert(sizeof(T) == 4 || sizeof(T) == 8, "ibmb: .npy floats must be float or double");
    return sizeof(T) == 4 ? npy_dtype::f32 : npy_dtype::f64;
  } else {
    static_assert(std::is_integral_v<T> && sizeof(T) <= 8,
                  "ibmb: .npy element types are bool, 8..64-bit integers, float and double");
    if constexpr (std::is_signed_v<T>) {
      return sizeof(T) == 1   ? npy_dtype::i8
             : sizeof(T) == 2 ? npy_dtype::i16
             : sizeof(T) == 4 ? npy_dtype::i32
                              : npy_dtype::i64;
    } else {
      return sizeof(T) == 1   ? npy_dtype::u8
             : sizeof(T) == 2 ? npy_dtype::u16
             : sizeof(T) == 4 ? npy_dtype::u32
                              : npy_dtype::u64;
    }
  }
}

namespace detail {

/// IEEE binary16 -> float (exact).
[[nodiscard]] inline float half_to_float(std::uint16_t h) {
  const int sign = (h >> 15) & 1;
  const int exp = (h >> 10) & 0x1f;
  const int man = h & 0x3ff;
  float v;
  if (exp == 0) {
    v = std::ldexp(static_cast<float>(man), -24);
  } else if (exp == 31) {
    v = man == 0 ? std::numeric_limits<float>::infinity() : std::numeric_limits<float>::quiet_NaN();
  } else {
    v = std::ldexp(static_cast<float>(man + 1024), exp - 25);
  }
  return sign ? -v : v;
}

/// Calls f(tag) with a value of the C++ type that holds one element of `t` (f16 is read as
/// uint16_t bits; the caller decodes it).
template <class F>
decltype(auto) npy_visit(npy_dtype t, F&& f) {
  switch (t) {
    case npy_dtype::i8:
      return f(std::int8_t{});
    case npy_dtype::i16:
      return f(std::int16_t{});
    case npy_dtype::i32:
      return f(std::int32_t{});
    case npy_dtype::i64:
      return f(std::int64_t{});
    case npy_dtype::u8:
      return f(std::uint8_t{});
    case npy_dtype::u16:
      return f(std::uint16_t{});
    case npy_dtype::u32:
      return f(std::uint32_t{});
    case npy_dtype::u64:
      return f(std::uint64_t{});
    case npy_dtype::f16:
      return f(std::uint16_t{});
    case npy_dtype::f32:
      return f(float{});
    case npy_dtype::f64:
      return f(double{});
    case npy_dtype::boolean:
      return f(bool{});
  }
  return f(std::uint8_t{});
}

/// Converts one source value to T; false if it does not fit (out of range, non-integral
/// float into an integer, finite double beyond float's range, bool from anything but 0/1).
template <class T, class S>
[[nodiscard]] inline bool convert_value(S v, T& out) {
  if constexpr (std::is_same_v<T, bool>) {
    if constexpr (std::is_floating_point_v<S>) {
      if (!(v == S{0} || v == S{1})) return false;
    } else if constexpr (!std::is_same_v<S, bool>) {
      if (!(v == 0 || v == 1)) return false;
    }
    out = static_cast<bool>(v);
    return true;
  } else if constexpr (std::is_same_v<S, bool>) {
    out = static_cast<T>(v ? 1 : 0);
    return true;
  } else if constexpr (std::is_integral_v<T> && std::is_integral_v<S>) {
    if (!std::in_range<T>(v)) return false;
    out = static_cast<T>(v);
    return true;
  } else if constexpr (std::is_integral_v<T>) {  // float -> integer
    const double d = static_cast<double>(v);
    if (!std::isfinite(d) || d != std::trunc(d)) return false;
    constexpr int bits = std::numeric_limits<T>::digits;  // 31 for int32, 32 for uint32
    const double hi = std::ldexp(1.0, bits);              // exclusive
    const double lo = std::is_signed_v<T> ? -hi : 0.0;    // inclusive
    if (d < lo || d >= hi) return false;
    out = static_cast<T>(d);
    return true;
  } else if constexpr (std::is_floating_point_v<S>) {  // float -> float
    if (std::isfinite(v) && sizeof(T) < sizeof(S) &&
        std::fabs(v) > static_cast<S>(std::numeric_limits<T>::max()))
      return false;
    out = static_cast<T>(v);
    return true;
  } else {  // integer -> float: rounds to nearest, never out of range
    out = static_cast<T>(v);
    return true;
  }
}

template <class S>
auto printable(S v) {
  if constexpr (std::is_same_v<S, bool>) {
    return v ? "True" : "False";
  } else if constexpr (std::is_floating_point_v<S>) {
    return static_cast<double>(v);
  } else if constexpr (std::is_signed_v<S>) {
    return static_cast<std::int64_t>(v);
  } else {
    return static_cast<std::uint64_t>(v);
  }
}

template <class T>
std::string cxx_type_name() {
  if constexpr (std::is_same_v<T, bool>) {
    return "bool";
  } else if constexpr (std::is_floating_point_v<T>) {
    return sizeof(T) == 4 ? "float32" : "float64";
  } else {
    return concat(std::is_signed_v<T> ? "int" : "uint", sizeof(T) * 8);
  }
}

inline std::string shape_string(const std::vector<std::int64_t>& shape) {
  std::string s = "(";
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(shape[i]);
  }
  if (shape.size() == 1) s += ",";
  return s + ")";
}

/// Product of the dimensions; false on a negative dimension or int64 overflow.
inline bool shape_product(const std::vector<std::int64_t>& shape, std::int64_t& out) {
  std::int64_t n = 1;
  for (auto d : shape) {
    if (d < 0 || __builtin_mul_overflow(n, d, &n)) return false;
  }
  out = n;
  return true;
}

}  // namespace detail

/// An owning n-dimensional array read from a `.npy` file: little-endian, C order.
struct npy_array {
  npy_dtype dtype = npy_dtype::f64;
  std::vector<std::int64_t> shape;
  std::vector<char> data;

  [[nodiscard]] std::int64_t size() const {
    std::int64_t n = 1;
    for (auto d : shape) n *= d;
    return n;
  }
  [[nodiscard]] std::size_t ndim() const { return shape.size(); }

  /// The elements converted to T (arithmetic, bool included). Throws `ibmb::format_error`
  /// naming `what` (file or member), the first offending flat index (and row/column for
  /// 2-D arrays) and its value when a value does not fit T: out of range, negative into
  /// unsigned, non-integral or non-finite float into an integer, finite double beyond
  /// float's range. NaN/Inf float -> float pass through.
  template <class T>
  [[nodiscard]] std::vector<T> as(std::string_view what) const {
    static_assert(std::is_arithmetic_v<T>, "ibmb: npy_array::as<T> needs an arithmetic T");
    const auto n = static_cast<std::size_t>(size());
    const std::size_t isz = npy_itemsize(dtype);
    if (data.size() != n * isz)
      throw format_error(detail::concat(what, ": array holds ", data.size(), " bytes, shape ",
                                        detail::shape_string(shape), " of ", npy_type_name(dtype),
                                        " needs ", n * isz));
    std::vector<T> out(n);
    if constexpr (!std::is_same_v<T, bool>) {
      if (npy_dtype_of<T>() == dtype) {
        if (n) std::memcpy(out.data(), data.data(), n * sizeof(T));
        return out;
      }
    }
    const char* p = data.data();
    auto fail = [&](std::size_t i, auto value) {
      std::string pos;
      if (shape.size() == 2 && shape[1] > 0)
        pos = detail::concat(" (row ", static_cast<std::int64_t>(i) / shape[1], ", column ",
                             static_cast<std::int64_t>(i) % shape[1], ")");
      throw format_error(detail::concat(what, ": element ", i, pos, " = ", detail::printable(value),
                                        " (", npy_type_name(dtype), ") does not fit ",
                                        detail::cxx_type_name<T>()));
    };
    detail::npy_visit(dtype, [&](auto tag) {
      using S = decltype(tag);
      for (std::size_t i = 0; i < n; ++i) {
        T v{};
        if (dtype == npy_dtype::f16) {
          const float f = detail::half_to_float(detail::load_le<std::uint16_t>(p + i * 2));
          if (!detail::convert_value<T>(f, v)) fail(i, f);
        } else if constexpr (std::is_same_v<S, bool>) {
          v = static_cast<T>(p[i] != 0);
        } else {
          const S s = detail::load_le<S>(p + i * sizeof(S));
          if (!detail::convert_value<T>(s, v)) fail(i, s);
        }
        out[i] = v;
      }
    });
    return out;
  }
};

namespace detail {

/// What the header of a `.npy` says, before the dtype is mapped to `npy_dtype`.
struct npy_header {
  int major = 1, minor = 0;
  std::string descr;
  bool fortran_order = false;
  std::vector<std::int64_t> shape;
  std::size_t data_offset = 0;  // first byte after the header
};

/// Parser of the header's Python dict literal, e.g.
/// {'descr': '<f4', 'fortran_order': False, 'shape': (2708, 1433), }
class npy_dict_parser {
 public:
  npy_dict_parser(std::string_view text, std::string_view name, std::size_t base)
      : t_(text), name_(name), base_(base) {}

  void parse(npy_header& h) {
    bool seen_descr = false, seen_fortran = false, seen_shape = false;
    ws();
    if (!eat('{')) fail("header is not a dict (expected '{')");
    ws();
    while (!eat('}')) {
      const std::size_t key_at = i_;
      const std::string key = string_literal();
      ws();
      if (!eat(':')) fail("expected ':' after key '", key, "'");
      ws();
      if (key == "descr") {
        if (seen_descr) fail_at(key_at, "duplicate key 'descr'");
        seen_descr = true;
        if (peek() == '[') fail("structured dtypes (a list in 'descr') are not supported");
        h.descr = string_literal();
      } else if (key == "fortran_order") {
        if (seen_fortran) fail_at(key_at, "duplicate key 'fortran_order'");
        seen_fortran = true;
        h.fortran_order = boolean();
      } else if (key == "shape") {
        if (seen_shape) fail_at(key_at, "duplicate key 'shape'");
        seen_shape = true;
        h.shape = tuple();
      } else {
        fail_at(key_at, "unexpected key '", key, "' (a .npy header has 'descr', 'fortran_order', ",
                "'shape')");
      }
      ws();
      if (eat(',')) {
        ws();
      } else if (peek() != '}') {
        fail("expected ',' or '}'");
      }
    }
    ws();
    if (i_ != t_.size()) fail("unexpected text after the header dict");
    if (!seen_descr) fail_at(0, "header lacks 'descr'");
    if (!seen_fortran) fail_at(0, "header lacks 'fortran_order'");
    if (!seen_shape) fail_at(0, "header lacks 'shape'");
  }

 private:
  template <class... A>
  [[noreturn]] void fail_at(std::size_t at, A&&... a) {
    throw format_error(
        concat(name_, ": .npy header, offset ", base_ + at, ": ", std::forward<A>(a)...));
  }
  template <class... A>
  [[noreturn]] void fail(A&&... a) {
    fail_at(i_, std::forward<A>(a)...);
  }
  [[nodiscard]] char peek() const { return i_ < t_.size() ? t_[i_] : '\0'; }
  bool eat(char c) {
    if (peek() != c || i_ >= t_.size()) return false;
    ++i_;
    return true;
  }
  void ws() {
    while (i_ < t_.size() && (t_[i_] == ' ' || t_[i_] == '\t' || t_[i_] == '\n' || t_[i_] == '\r'))
      ++i_;
  }
  std::string string_literal() {
    const char q = peek();
    if (q != '\'' && q != '"') fail("expected a quoted string");
    ++i_;
    const std::size_t b = i_;
    while (i_ < t_.size() && t_[i_] != q) {
      if (t_[i_] == '\\' || t_[i_] == '\n') fail("unsupported character in a string literal");
      ++i_;
    }
    if (i_ >= t_.size()) fail_at(b - 1, "unterminated string literal");
    std::string s(t_.substr(b, i_ - b));
    ++i_;
    return s;
  }
  bool boolean() {
    if (t_.substr(i_, 4) == "True") {
      i_ += 4;
      return true;
    }
    if (t_.substr(i_, 5) == "False") {
      i_ += 5;
      return false;
    }
    fail("expected True or False for 'fortran_order'");
  }
  std::vector<std::int64_t> tuple() {
    if (!eat('(')) fail("expected a tuple for 'shape'");
    std::vector<std::int64_t> dims;
    ws();
    while (!eat(')')) {
      if (peek() == '-') fail("negative dimension in 'shape'");
      if (peek() < '0' || peek() > '9') fail("expected a non-negative integer in 'shape'");
      std::int64_t v = 0;
      while (peek() >= '0' && peek() <= '9') {
        if (__builtin_mul_overflow(v, 10, &v) || __builtin_add_overflow(v, peek() - '0', &v))
          fail("dimension in 'shape' overflows int64");
        ++i_;
      }
      eat('L');  // Python 2 long literal
      dims.push_back(v);
      if (dims.size() > 64) fail("more than 64 dimensions");
      ws();
      if (eat(',')) {
        ws();
      } else if (peek() != ')') {
        fail("expected ',' or ')' in 'shape'");
      }
    }
    return dims;
  }

  std::string_view t_;
  std::string_view name_;
  std::size_t base_;
  std::size_t i_ = 0;
};

/// Reads magic, version, header length and the header dict (not the data).
inline npy_header parse_npy_header(std::span<const char> b, std::string_view name) {
  static constexpr char magic[6] = {'\x93', 'N', 'U', 'M', 'P', 'Y'};
  const std::size_t k = std::min<std::size_t>(b.size(), 6);
  const bool prefix_ok = std::equal(b.begin(), b.begin() + static_cast<std::ptrdiff_t>(k), magic);
  if (b.size() < 6 || !prefix_ok) {
    if (prefix_ok)
      throw format_error(concat(name, ": truncated: ", b.size(),
                                " bytes, an .npy file starts with a 10-byte preamble"));
    throw format_error(concat(name, ": offset 0: not an .npy file (magic ",
                              hex_prefix(b.data(), b.size(), 6), ", expected 0x934e554d5059)"));
  }
  if (b.size() < 8)
    throw format_error(concat(name, ": truncated: ", b.size(), " bytes, no format version"));
  npy_header h;
  h.major = static_cast<unsigned char>(b[6]);
  h.minor = static_cast<unsigned char>(b[7]);
  if (h.major < 1 || h.major > 3 || h.minor != 0)
    throw format_error(concat(name, ": offset 6: unsupported .npy format version ", h.major, ".",
                              h.minor, " (supported: 1.0, 2.0, 3.0)"));
  const std::size_t pre = h.major == 1 ? 10 : 12;
  if (b.size() < pre)
    throw format_error(concat(name, ": truncated: ", b.size(), " bytes, the version ", h.major,
                              ".0 preamble has ", pre));
  const std::uint64_t hlen =
      h.major == 1 ? load_le<std::uint16_t>(b.data() + 8) : load_le<std::uint32_t>(b.data() + 8);
  if (hlen > b.size() - pre)
    throw format_error(concat(name, ": truncated: header of ", hlen, " bytes at offset ", pre,
                              " but the file has ", b.size(), " bytes"));
  const std::string_view text(b.data() + pre, static_cast<std::size_t>(hlen));
  npy_dict_parser(text, name, pre).parse(h);
  h.data_offset = pre + static_cast<std::size_t>(hlen);
  return h;
}

/// Maps a descr string to a dtype; throws naming the file and the descr.
inline npy_dtype npy_dtype_from_descr(std::string_view descr, std::string_view name) {
  auto bad = [&](auto&&... why) -> npy_dtype {
    throw format_error(concat(name, ": dtype '", descr, "': ", why...));
  };
  if (descr.size() < 2) return bad("unknown dtype");
  const char order = descr[0];
  const std::string_view kind = descr.substr(1);
  if (kind == "O" || kind.starts_with("O"))
    return bad("object arrays (pickled Python objects) are not supported");
  if (kind.starts_with("U") || kind.starts_with("S") || kind.starts_with("a"))
    return bad("string arrays are not supported");
  if (kind.starts_with("V")) return bad("void/structured arrays are not supported");
  static constexpr std::pair<std::string_view, npy_dtype> table[] = {
      {"i1", npy_dtype::i8},  {"i2", npy_dtype::i16}, {"i4", npy_dtype::i32},
      {"i8", npy_dtype::i64}, {"u1", npy_dtype::u8},  {"u2", npy_dtype::u16},
      {"u4", npy_dtype::u32}, {"u8", npy_dtype::u64}, {"f2", npy_dtype::f16},
      {"f4", npy_dtype::f32}, {"f8", npy_dtype::f64}, {"b1", npy_dtype::boolean}};
  for (const auto& [k, t] : table) {
    if (kind != k) continue;
    if (order == '>')
      return bad("big-endian data is not supported (convert with astype('<", k, "'))");
    if (order == '<' || (order == '|' && npy_itemsize(t) == 1)) return t;
    return bad("unsupported byte-order mark '", order, "'");
  }
  return bad("unknown or unsupported dtype");
}

inline std::string npy_header_text(npy_dtype t, const std::vector<std::int64_t>& shape) {
  return concat("{'descr': '", npy_descr(t),
                "', 'fortran_order': False, 'shape': ", shape_string(shape), ", }");
}

/// The preamble + padded header exactly as NumPy (>= 1.23) writes it: the dict with sorted
/// keys, spare spaces so the first dimension can grow to 21 digits in place, then spaces and
/// '\n' up to a multiple of 64 bytes (a full 64 when already aligned); version 2.0 only when
/// the header does not fit 65535 bytes.
inline std::vector<char> npy_preamble(npy_dtype t, const std::vector<std::int64_t>& shape) {
  std::string h = npy_header_text(t, shape);
  if (!shape.empty()) {
    const std::size_t digits = std::to_string(shape[0]).size();
    if (digits < 21) h.append(21 - digits, ' ');
  }
  int major = 1;
  std::size_t pre = 10;
  if (h.size() + 1 + 64 > 65535) {
    major = 2;
    pre = 12;
  }
  h.append(64 - (pre + h.size() + 1) % 64, ' ');
  h += '\n';
  std::vector<char> out = {'\x93', 'N', 'U', 'M', 'P', 'Y', static_cast<char>(major), 0};
  if (major == 1)
    append_le(out, static_cast<std::uint16_t>(h.size()));
  else
    append_le(out, static_cast<std::uint32_t>(h.size()));
  append_bytes(out, h.data(), h.size());
  return out;
}

inline std::int64_t checked_element_count(std::size_t span_size,
                                          const std::vector<std::int64_t>& shape, const char* fn) {
  std::int64_t n = 0;
  IBMB_EXPECTS(detail::shape_product(shape, n), fn, ": invalid shape ", shape_string(shape));
  IBMB_EXPECTS(static_cast<std::uint64_t>(n) == span_size, fn, ": shape ", shape_string(shape),
               " holds ", n, " elements but ", span_size, " were given");
  return n;
}

}  // namespace detail

/// Parses a whole `.npy` file held in memory; `name` is used in error messages.
inline npy_array parse_npy(std::span<const char> bytes, std::string_view name) {
  const detail::npy_header h = detail::parse_npy_header(bytes, name);
  npy_array a;
  a.dtype = detail::npy_dtype_from_descr(h.descr, name);
  if (h.fortran_order && h.shape.size() > 1)
    throw format_error(detail::concat(name, ": Fortran-order (column-major) arrays of ",
                                      h.shape.size(), " dimensions are not supported (save with ",
                                      "np.ascontiguousarray)"));
  std::int64_t n = 0;
  std::int64_t nbytes = 0;
  if (!detail::shape_product(h.shape, n) ||
      __builtin_mul_overflow(n, static_cast<std::int64_t>(npy_itemsize(a.dtype)), &nbytes))
    throw format_error(detail::concat(name, ": shape ", detail::shape_string(h.shape),
                                      " overflows the element count"));
  const std::size_t have = bytes.size() - h.data_offset;
  if (static_cast<std::uint64_t>(nbytes) > have)
    throw format_error(detail::concat(name, ": truncated: data at offset ", h.data_offset, " has ",
                                      have, " bytes, shape ", detail::shape_string(h.shape), " of ",
                                      npy_type_name(a.dtype), " needs ", nbytes));
  if (static_cast<std::uint64_t>(nbytes) < have)
    throw format_error(detail::concat(name, ": ", have - static_cast<std::uint64_t>(nbytes),
                                      " unexpected bytes after the data at offset ",
                                      h.data_offset + static_cast<std::size_t>(nbytes), " (shape ",
                                      detail::shape_string(h.shape), " of ", npy_type_name(a.dtype),
                                      ")"));
  a.shape = h.shape;
  a.data.assign(bytes.data() + h.data_offset, bytes.data() + bytes.size());
  return a;
}

/// Reads and parses a `.npy` file (io_error if it cannot be read).
inline npy_array read_npy(const std::filesystem::path& path) {
  const std::vector<char> b = read_file(path);
  return parse_npy(b, path.string());
}

/// The bytes NumPy's `np.save` writes for a C-order array of T with this shape.
template <class T>
std::vector<char> encode_npy(std::span<const T> values, std::vector<std::int64_t> shape) {
  detail::checked_element_count(values.size(), shape, "encode_npy");
  std::vector<char> out = detail::npy_preamble(npy_dtype_of<T>(), shape);
  detail::append_bytes(out, values.data(), values.size_bytes());
  return out;
}

/// Same for an `npy_array` (any dtype, f16 included).
inline std::vector<char> encode_npy(const npy_array& a) {
  std::int64_t n = 0;
  IBMB_EXPECTS(detail::shape_product(a.shape, n) &&
                   static_cast<std::uint64_t>(n) * npy_itemsize(a.dtype) == a.data.size(),
               "encode_npy: shape ", detail::shape_string(a.shape), " of ", npy_type_name(a.dtype),
               " does not match ", a.data.size(), " data bytes");
  std::vector<char> out = detail::npy_preamble(a.dtype, a.shape);
  detail::append_bytes(out, a.data.data(), a.data.size());
  return out;
}

/// Writes `encode_npy(values, shape)` to `path` atomically.
template <class T>
void write_npy(const std::filesystem::path& path, std::span<const T> values,
               std::vector<std::int64_t> shape) {
  detail::checked_element_count(values.size(), shape, "write_npy");
  const std::vector<char> pre = detail::npy_preamble(npy_dtype_of<T>(), shape);
  atomic_write(path, [&](file_writer& w) {
    w.write(pre);
    w.write(values.data(), values.size_bytes());
  });
}

}  // namespace ibmb
