// ibmb: NumPy `.npz` archives (zip files of `.npy` members).
//
// Reading: `npz_archive` reads the whole file, parses the zip central directory (zip64
// records and extra fields where sizes or offsets need them) and keeps the raw bytes.
// Members are inflated (stored = method 0, deflate = method 8 via zlib's raw inflate),
// CRC-32 checked and parsed only when asked for, so a dataset loader touches only the
// members it needs, and members it cannot represent (e.g. `<U` string arrays such as
// node_names) cost nothing. `read_npz` is the eager convenience: it parses every `.npy`
// member and *skips* members whose dtype is a string type (`<U..`, `|S..`); every other
// problem (bad CRC, corrupt deflate stream, unsupported dtype) is a `format_error` naming
// the archive and the member.
//
// Writing: `write_npz` writes a stored (uncompressed) archive whose bytes depend only on
// the members: fixed timestamps (1980-01-01 00:00), no extra fields unless zip64 is needed
// (a member or offset at or beyond 4 GiB, or more than 65534 members). Atomic.
#pragma once

#include <zlib.h>

#include <algorithm>
#include <climits>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "ibmb/core/crc32.hpp"
#include "ibmb/core/error.hpp"
#include "ibmb/core/file.hpp"
#include "ibmb/graph/io/detail/bytes.hpp"
#include "ibmb/graph/io/npy.hpp"

namespace ibmb {

/// One member of an archive to write: key (".npy" is appended when missing) and the bytes
/// of a complete `.npy` file (e.g. from `encode_npy`).
struct npz_member {
  std::string name;
  std::vector<char> npy_bytes;
};

namespace detail {

struct zip_entry {
  std::string name;  // as stored in the archive
  std::uint16_t flags = 0;
  std::uint16_t method = 0;
  std::uint32_t crc = 0;
  std::uint64_t csize = 0;
  std::uint64_t usize = 0;
  std::uint64_t local_offset = 0;
  std::uint64_t data_offset = 0;
};

inline constexpr std::uint32_t zip_local_sig = 0x04034b50;
inline constexpr std::uint32_t zip_central_sig = 0x02014b50;
inline constexpr std::uint32_t zip_eocd_sig = 0x06054b50;
inline constexpr std::uint32_t zip64_eocd_sig = 0x06064b50;
inline constexpr std::uint32_t zip64_locator_sig = 0x07064b50;

/// Raw-deflate decompression of exactly `usize` bytes; throws naming `what`.
inline std::vector<char> inflate_raw(std::span<const char> in, std::uint64_t usize,
                                     const std::string& what) {
  // Deflate cannot expand data beyond ~1032:1; a larger claim is a corrupt header, and
  // refusing it avoids allocating whatever a damaged size field says.
  if (usize > static_cast<std::uint64_t>(in.size()) * 1032 + 1024)
    throw format_error(concat(what, ": declared size ", usize, " is impossible for ", in.size(),
                              " compressed bytes"));
  std::vector<char> out(static_cast<std::size_t>(usize) + 1);  // +1 detects overlong streams
  z_stream s{};
  if (::inflateInit2(&s, -MAX_WBITS) != Z_OK)
    throw backend_error(concat(what, ": zlib inflateInit2 failed"));
  std::size_t in_left = in.size(), out_left = out.size();
  const char* ip = in.data();
  char* op = out.data();
  constexpr std::size_t chunk = 1u << 30;
  int ret = Z_OK;
  for (;;) {
    if (s.avail_in == 0 && in_left > 0) {
      const std::size_t k = std::min(in_left, chunk);
      s.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(ip));
      s.avail_in = static_cast<uInt>(k);
      ip += k;
      in_left -= k;
    }
    if (s.avail_out == 0 && out_left > 0) {
      const std::size_t k = std::min(out_left, chunk);
      s.next_out = reinterpret_cast<Bytef*>(op);
      s.avail_out = static_cast<uInt>(k);
      op += k;
      out_left -= k;
    }
    ret = ::inflate(&s, Z_NO_FLUSH);
    if (ret == Z_STREAM_END) break;
    if (ret == Z_OK) continue;
    if (ret == Z_BUF_ERROR && s.avail_in == 0 && in_left == 0) {
      ::inflateEnd(&s);
      throw format_error(concat(what, ": deflate stream is truncated (", in.size(),
                                " compressed bytes end before the stream does)"));
    }
    if (ret == Z_BUF_ERROR && s.avail_out == 0 && out_left == 0) break;  // overlong, below
    const std::string msg = s.msg ? s.msg : "unknown error";
    ::inflateEnd(&s);
    if (ret == Z_MEM_ERROR) throw backend_error(concat(what, ": zlib out of memory"));
    throw format_error(
        concat(what, ": corrupt deflate stream at compressed byte ", s.total_in, ": ", msg));
  }
  const std::uint64_t produced = s.total_out;
  ::inflateEnd(&s);
  if (ret != Z_STREAM_END || produced != usize)
    throw format_error(concat(what, ": inflates to ", ret == Z_STREAM_END ? "" : "more than ",
                              produced, " bytes, the zip directory says ", usize));
  out.resize(static_cast<std::size_t>(usize));
  return out;
}

}  // namespace detail

/// A `.npz` (zip) archive held in memory; members are decoded on access.
class npz_archive {
 public:
  /// Reads the file and its central directory (io_error / format_error naming the path).
  explicit npz_archive(const std::filesystem::path& path)
      : npz_archive(read_file(path), path.string()) {}

  /// An archive from bytes; `name` is used in error messages.
  npz_archive(std::vector<char> bytes, std::string name)
      : name_(std::move(name)), bytes_(std::move(bytes)) {
    parse_directory();
  }

  [[nodiscard]] const std::string& name() const { return name_; }

  /// Member keys in archive order (".npy" stripped, as `numpy.load` does).
  [[nodiscard]] std::vector<std::string> keys() const {
    std::vector<std::string> k;
    for (const auto& e : entries_) k.push_back(key_of(e.name));
    return k;
  }

  [[nodiscard]] bool contains(std::string_view key) const { return find(key) != nullptr; }

  /// The member's decompressed, CRC-checked bytes (a whole `.npy` file).
  [[nodiscard]] std::vector<char> member_bytes(std::string_view key) const {
    const detail::zip_entry* e = find(key);
    if (!e) throw format_error(detail::concat(name_, ": no member '", key, "'"));
    return extract(*e);
  }

  /// The member parsed as an array (errors name "archive:member").
  [[nodiscard]] npy_array array(std::string_view key) const {
    const detail::zip_entry* e = find(key);
    if (!e) throw format_error(detail::concat(name_, ": no member '", key, "'"));
    const std::vector<char> b = extract(*e);
    return parse_npy(b, member_label(*e));
  }

  /// The member parsed as an array, or nullopt if there is none.
  [[nodiscard]] std::optional<npy_array> try_array(std::string_view key) const {
    if (!contains(key)) return std::nullopt;
    return array(key);
  }

  /// "archive.npz:member.npy", the name used in messages about a member.
  [[nodiscard]] std::string label(std::string_view key) const {
    const detail::zip_entry* e = find(key);
    return e ? member_label(*e) : detail::concat(name_, ":", key);
  }

  /// Same as `array` but with the string-dtype check exposed: nullopt for `<U`/`|S` members.
  [[nodiscard]] std::optional<npy_array> numeric_array(std::string_view key) const {
    const detail::zip_entry* e = find(key);
    if (!e) throw format_error(detail::concat(name_, ": no member '", key, "'"));
    const std::vector<char> b = extract(*e);
    const std::string lbl = member_label(*e);
    const auto h = detail::parse_npy_header(b, lbl);
    if (h.descr.size() >= 2 && (h.descr[1] == 'U' || h.descr[1] == 'S')) return std::nullopt;
    return parse_npy(b, lbl);
  }

 private:
  static std::string key_of(const std::string& n) {
    return n.size() > 4 && n.ends_with(".npy") ? n.substr(0, n.size() - 4) : n;
  }
  [[nodiscard]] std::string member_label(const detail::zip_entry& e) const {
    return detail::concat(name_, ":", e.name);
  }
  [[nodiscard]] const detail::zip_entry* find(std::string_view key) const {
    for (const auto& e : entries_)
      if (key_of(e.name) == key || e.name == key) return &e;
    return nullptr;
  }

  template <class... A>
  [[noreturn]] void fail(A&&... a) const {
    throw format_error(detail::concat(name_, ": ", std::forward<A>(a)...));
  }

  [[nodiscard]] std::vector<char> extract(const detail::zip_entry& e) const {
    const std::string what = detail::concat(name_, ": member '", e.name, "'");
    const std::span<const char> comp(bytes_.data() + e.data_offset,
                                     static_cast<std::size_t>(e.csize));
    std::vector<char> out;
    if (e.method == 0) {
      if (e.csize != e.usize)
        throw format_error(detail::concat(what, ": stored member with compressed size ", e.csize,
                                          " != uncompressed size ", e.usize));
      out.assign(comp.begin(), comp.end());
    } else {
      out = detail::inflate_raw(comp, e.usize, what);
    }
    const std::uint32_t crc = detail::crc32_update(0, out.data(), out.size());
    if (crc != e.crc)
      throw format_error(detail::concat(what, ": CRC-32 mismatch (directory says 0x", std::hex,
                                        e.crc, ", data has 0x", crc, ")"));
    return out;
  }

  void parse_directory() {
    const std::size_t size = bytes_.size();
    const char* b = bytes_.data();
    if (size < 22) {
      if (size >= 4 && detail::load_le<std::uint32_t>(b) != detail::zip_local_sig &&
          detail::load_le<std::uint32_t>(b) != detail::zip_eocd_sig)
        fail("offset 0: not a zip/.npz file (magic ", detail::hex_prefix(b, size, 4), ")");
      fail("truncated: ", size, " bytes, a zip archive has at least 22");
    }
    // End of central directory: the last signature whose comment fits the file.
    std::size_t eocd = SIZE_MAX;
    const std::size_t lowest = size >= 22 + 65535 ? size - 22 - 65535 : 0;
    for (std::size_t p = size - 22 + 1; p-- > lowest;) {
      if (detail::load_le<std::uint32_t>(b + p) == detail::zip_eocd_sig &&
          p + 22 + detail::load_le<std::uint16_t>(b + p + 20) <= size) {
        eocd = p;
        break;
      }
    }
    if (eocd == SIZE_MAX) {
      if (detail::load_le<std::uint32_t>(b) != detail::zip_local_sig)
        fail("offset 0: not a zip/.npz file (magic ", detail::hex_prefix(b, size, 4), ")");
      fail("no end-of-central-directory record (truncated or not a zip file)");
    }
    const auto disk = detail::load_le<std::uint16_t>(b + eocd + 4);
    const auto cd_disk = detail::load_le<std::uint16_t>(b + eocd + 6);
    std::uint64_t count = detail::load_le<std::uint16_t>(b + eocd + 10);
    std::uint64_t cd_size = detail::load_le<std::uint32_t>(b + eocd + 12);
    std::uint64_t cd_off = detail::load_le<std::uint32_t>(b + eocd + 16);
    if (disk != 0 || cd_disk != 0) fail("multi-disk zip archives are not supported");
    if (eocd >= 20 && detail::load_le<std::uint32_t>(b + eocd - 20) == detail::zip64_locator_sig) {
      const auto z = detail::load_le<std::uint64_t>(b + eocd - 20 + 8);
      if (z > size || size - z < 56)
        fail("offset ", eocd - 20, ": zip64 locator points to ", z, ", outside the file");
      const char* r = b + z;
      if (detail::load_le<std::uint32_t>(r) != detail::zip64_eocd_sig)
        fail("offset ", z, ": bad zip64 end-of-central-directory signature");
      count = detail::load_le<std::uint64_t>(r + 32);
      cd_size = detail::load_le<std::uint64_t>(r + 40);
      cd_off = detail::load_le<std::uint64_t>(r + 48);
    } else if (count == 0xFFFF || cd_size == 0xFFFFFFFF || cd_off == 0xFFFFFFFF) {
      fail("offset ", eocd, ": zip64 archive without a zip64 locator");
    }
    if (cd_off > size || cd_size > size - cd_off)
      fail("central directory at offset ", cd_off, " (", cd_size, " bytes) lies outside the ", size,
           "-byte file (truncated?)");
    if (count > cd_size / 46)
      fail("central directory of ", cd_size, " bytes cannot hold ", count, " entries");
    std::size_t p = static_cast<std::size_t>(cd_off);
    const std::size_t cd_end = static_cast<std::size_t>(cd_off + cd_size);
    entries_.reserve(static_cast<std::size_t>(count));
    std::set<std::string> seen;
    for (std::uint64_t i = 0; i < count; ++i) {
      if (cd_end - p < 46) fail("offset ", p, ": central directory entry ", i, " is truncated");
      if (detail::load_le<std::uint32_t>(b + p) != detail::zip_central_sig)
        fail("offset ", p, ": bad central directory signature for entry ", i);
      detail::zip_entry e;
      e.flags = detail::load_le<std::uint16_t>(b + p + 8);
      e.method = detail::load_le<std::uint16_t>(b + p + 10);
      e.crc = detail::load_le<std::uint32_t>(b + p + 16);
      e.csize = detail::load_le<std::uint32_t>(b + p + 20);
      e.usize = detail::load_le<std::uint32_t>(b + p + 24);
      const std::size_t nlen = detail::load_le<std::uint16_t>(b + p + 28);
      const std::size_t xlen = detail::load_le<std::uint16_t>(b + p + 30);
      const std::size_t clen = detail::load_le<std::uint16_t>(b + p + 32);
      e.local_offset = detail::load_le<std::uint32_t>(b + p + 42);
      if (cd_end - p - 46 < nlen + xlen + clen)
        fail("offset ", p, ": central directory entry ", i, " runs past the directory");
      e.name.assign(b + p + 46, nlen);
      // zip64 extended information: present fields follow the order usize, csize, offset.
      for (std::size_t x = p + 46 + nlen; x + 4 <= p + 46 + nlen + xlen;) {
        const auto id = detail::load_le<std::uint16_t>(b + x);
        const std::size_t len = detail::load_le<std::uint16_t>(b + x + 2);
        if (x + 4 + len > p + 46 + nlen + xlen)
          fail("offset ", x, ": extra field of member '", e.name, "' runs past its entry");
        if (id == 0x0001) {
          std::size_t q = x + 4;
          auto take = [&](std::uint64_t& v) {
            if (v != 0xFFFFFFFF) return;
            if (q + 8 > x + 4 + len) fail("offset ", x, ": short zip64 field of '", e.name, "'");
            v = detail::load_le<std::uint64_t>(b + q);
            q += 8;
          };
          take(e.usize);
          take(e.csize);
          take(e.local_offset);
        }
        x += 4 + len;
      }
      p += 46 + nlen + xlen + clen;
      if (!e.name.empty() && e.name.back() == '/') continue;  // a directory
      const std::string what = detail::concat("member '", e.name, "'");
      if (e.flags & 1) fail(what, ": encrypted members are not supported");
      if (e.method != 0 && e.method != 8)
        fail(what, ": compression method ", e.method,
             " is not supported (only stored and deflate)");
      if (e.local_offset > size || size - e.local_offset < 30)
        fail(what, ": local header offset ", e.local_offset, " lies outside the file");
      const char* l = b + e.local_offset;
      if (detail::load_le<std::uint32_t>(l) != detail::zip_local_sig)
        fail(what, ": offset ", e.local_offset, ": bad local header signature");
      const std::uint64_t start = e.local_offset + 30 + detail::load_le<std::uint16_t>(l + 26) +
                                  detail::load_le<std::uint16_t>(l + 28);
      if (start > size || e.csize > size - start)
        fail(what, ": data at offset ", start, " (", e.csize, " bytes) runs past the end of the ",
             size, "-byte file (truncated?)");
      e.data_offset = start;
      if (!seen.insert(key_of(e.name)).second) fail(what, ": duplicate member");
      entries_.push_back(std::move(e));
    }
  }

  std::string name_;
  std::vector<char> bytes_;
  std::vector<detail::zip_entry> entries_;
};

/// Every `.npy` member, parsed; key = member name without ".npy". String-dtype members
/// (`<U..`, `|S..`, e.g. node_names) and members not ending in ".npy" are skipped; use
/// `npz_archive` to see them.
inline std::map<std::string, npy_array> read_npz(const std::filesystem::path& path) {
  const npz_archive ar(path);
  std::map<std::string, npy_array> out;
  for (const auto& k : ar.keys()) {
    if (!ar.label(k).ends_with(".npy")) continue;
    if (auto a = ar.numeric_array(k)) out.emplace(k, std::move(*a));
  }
  return out;
}

namespace detail {

/// `force_zip64` writes zip64 records even for small archives (to test that path).
inline void write_npz_impl(const std::filesystem::path& path,
                           const std::vector<npz_member>& members, bool force_zip64) {
  constexpr std::uint64_t lim32 = 0xFFFFFFFF;
  std::vector<std::string> names;
  for (const auto& m : members) {
    IBMB_EXPECTS(!m.name.empty(), "write_npz: empty member name");
    std::string n = m.name.ends_with(".npy") ? m.name : m.name + ".npy";
    IBMB_EXPECTS(n.size() < 0xFFFF, "write_npz: member name too long");
    IBMB_EXPECTS(std::find(names.begin(), names.end(), n) == names.end(),
                 "write_npz: duplicate member '", n, "'");
    // Cheap sanity check: the bytes must be a parsable .npy header.
    (void)parse_npy_header(m.npy_bytes, concat("write_npz: member '", n, "'"));
    names.push_back(std::move(n));
  }
  constexpr std::uint16_t dos_time = 0;
  constexpr std::uint16_t dos_date = (0 << 9) | (1 << 5) | 1;  // 1980-01-01
  std::vector<char> central;
  std::uint64_t offset = 0;
  std::vector<std::vector<char>> locals(members.size());
  for (std::size_t i = 0; i < members.size(); ++i) {
    const auto& data = members[i].npy_bytes;
    const std::string& n = names[i];
    const std::uint64_t sz = data.size();
    const bool z64 = force_zip64 || sz >= lim32 || offset >= lim32;
    const std::uint32_t crc = crc32_update(0, data.data(), data.size());
    const bool utf8 = std::any_of(n.begin(), n.end(), [](char c) { return c & 0x80; });
    const std::uint16_t flags = utf8 ? (1u << 11) : 0;
    const std::uint16_t version = z64 ? 45 : 20;
    auto& l = locals[i];
    append_le<std::uint32_t>(l, zip_local_sig);
    append_le<std::uint16_t>(l, version);
    append_le<std::uint16_t>(l, flags);
    append_le<std::uint16_t>(l, 0);  // stored
    append_le<std::uint16_t>(l, dos_time);
    append_le<std::uint16_t>(l, dos_date);
    append_le<std::uint32_t>(l, crc);
    append_le<std::uint32_t>(
        l, z64 ? static_cast<std::uint32_t>(lim32) : static_cast<std::uint32_t>(sz));
    append_le<std::uint32_t>(
        l, z64 ? static_cast<std::uint32_t>(lim32) : static_cast<std::uint32_t>(sz));
    append_le<std::uint16_t>(l, static_cast<std::uint16_t>(n.size()));
    append_le<std::uint16_t>(l, z64 ? 20 : 0);
    append_bytes(l, n.data(), n.size());
    if (z64) {
      append_le<std::uint16_t>(l, 0x0001);
      append_le<std::uint16_t>(l, 16);
      append_le<std::uint64_t>(l, sz);
      append_le<std::uint64_t>(l, sz);
    }
    append_le<std::uint32_t>(central, zip_central_sig);
    append_le<std::uint16_t>(central, version);  // made by: MS-DOS, spec version
    append_le<std::uint16_t>(central, version);
    append_le<std::uint16_t>(central, flags);
    append_le<std::uint16_t>(central, 0);
    append_le<std::uint16_t>(central, dos_time);
    append_le<std::uint16_t>(central, dos_date);
    append_le<std::uint32_t>(central, crc);
    append_le<std::uint32_t>(
        central, z64 ? static_cast<std::uint32_t>(lim32) : static_cast<std::uint32_t>(sz));
    append_le<std::uint32_t>(
        central, z64 ? static_cast<std::uint32_t>(lim32) : static_cast<std::uint32_t>(sz));
    append_le<std::uint16_t>(central, static_cast<std::uint16_t>(n.size()));
    append_le<std::uint16_t>(central, z64 ? 28 : 0);
    append_le<std::uint16_t>(central, 0);  // comment
    append_le<std::uint16_t>(central, 0);  // disk
    append_le<std::uint16_t>(central, 0);  // internal attributes
    append_le<std::uint32_t>(central, 0);  // external attributes
    append_le<std::uint32_t>(
        central, z64 ? static_cast<std::uint32_t>(lim32) : static_cast<std::uint32_t>(offset));
    append_bytes(central, n.data(), n.size());
    if (z64) {
      append_le<std::uint16_t>(central, 0x0001);
      append_le<std::uint16_t>(central, 24);
      append_le<std::uint64_t>(central, sz);
      append_le<std::uint64_t>(central, sz);
      append_le<std::uint64_t>(central, offset);
    }
    offset += l.size() + sz;
  }
  const std::uint64_t cd_off = offset, cd_size = central.size(), count = members.size();
  std::vector<char> tail;
  const bool z64_end = force_zip64 || count >= 0xFFFF || cd_off >= lim32 || cd_size >= lim32;
  if (z64_end) {
    append_le<std::uint32_t>(tail, zip64_eocd_sig);
    append_le<std::uint64_t>(tail, 44);  // size of the rest of this record
    append_le<std::uint16_t>(tail, 45);
    append_le<std::uint16_t>(tail, 45);
    append_le<std::uint32_t>(tail, 0);
    append_le<std::uint32_t>(tail, 0);
    append_le<std::uint64_t>(tail, count);
    append_le<std::uint64_t>(tail, count);
    append_le<std::uint64_t>(tail, cd_size);
    append_le<std::uint64_t>(tail, cd_off);
    append_le<std::uint32_t>(tail, zip64_locator_sig);
    append_le<std::uint32_t>(tail, 0);
    append_le<std::uint64_t>(tail, cd_off + cd_size);
    append_le<std::uint32_t>(tail, 1);
  }
  append_le<std::uint32_t>(tail, zip_eocd_sig);
  append_le<std::uint16_t>(tail, 0);
  append_le<std::uint16_t>(tail, 0);
  append_le<std::uint16_t>(tail, z64_end ? 0xFFFF : static_cast<std::uint16_t>(count));
  append_le<std::uint16_t>(tail, z64_end ? 0xFFFF : static_cast<std::uint16_t>(count));
  append_le<std::uint32_t>(
      tail, z64_end ? static_cast<std::uint32_t>(lim32) : static_cast<std::uint32_t>(cd_size));
  append_le<std::uint32_t>(
      tail, z64_end ? static_cast<std::uint32_t>(lim32) : static_cast<std::uint32_t>(cd_off));
  append_le<std::uint16_t>(tail, 0);
  atomic_write(path, [&](file_writer& w) {
    for (std::size_t i = 0; i < members.size(); ++i) {
      w.write(locals[i]);
      w.write(members[i].npy_bytes);
    }
    w.write(central);
    w.write(tail);
  });
}

}  // namespace detail

/// Writes a stored (uncompressed) `.npz` with the members in the given order, atomically.
/// Same members => same bytes (fixed timestamps, no platform fields).
inline void write_npz(const std::filesystem::path& path, const std::vector<npz_member>& members) {
  detail::write_npz_impl(path, members, false);
}

}  // namespace ibmb
