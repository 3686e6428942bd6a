// ibmb: line/token reader for the text formats (edge lists, OGB csv, MUSAE csv) and the
// number parsing they share.
//
// A `text_reader` streams a file through zlib's gzFile, so plain and gzip-compressed files
// (magic bytes 1f 8b, any number of concatenated members) read the same way without holding
// the whole file in memory; it can also read a buffer in memory (inflated first when it
// starts with the gzip magic). Each call of `next()` yields the next *data* line split into
// tokens:
//   - line ends are "\n" or "\r\n"; a missing final newline is fine;
//   - blank lines and comments (from '#' to the end of the line) are skipped;
//   - tokens are separated by whitespace and/or ONE comma ("1 2", "1,2", "1, 2" are all two
//     tokens); an empty field (",1", "1,,2", "1,") is a format error;
//   - a UTF-8 byte order mark (EF BB BF) at the very start of the text is dropped;
//   - `skip_header()` drops the first data line when it looks like a header: none of its
//     tokens is a number and at least one starts with a letter (ASCII, after an optional
//     quote), e.g. "src dst", "id_1,id_2", "\"from\",\"to\"". Any other first line is data,
//     so a typo there ("0 1x", "O 1") is a parse error naming its file:line, not a dropped
//     edge.
// Numbers are parsed with std::from_chars (locale-free); a bad token raises
// `ibmb::format_error` (or `ibmb::out_of_range` for a value that does not fit) whose message
// starts with "file:line:" and quotes the token.
#pragma once

#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <limits>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <vector>

#include "ibmb/core/error.hpp"
#include "ibmb/core/file.hpp"

namespace ibmb {

namespace detail {

/// The UTF-8 byte order mark some editors (and Windows tools) put at the start of a file.
inline constexpr std::string_view utf8_bom = "\xEF\xBB\xBF";

/// `text` without a leading UTF-8 byte order mark.
[[nodiscard]] inline std::string_view strip_bom(std::string_view text) {
  if (text.substr(0, utf8_bom.size()) == utf8_bom) text.remove_prefix(utf8_bom.size());
  return text;
}

inline bool is_gzip(std::string_view bytes) {
  return bytes.size() >= 2 && static_cast<unsigned char>(bytes[0]) == 0x1f &&
         static_cast<unsigned char>(bytes[1]) == 0x8b;
}

/// Inflates a gzip buffer (all concatenated members). Throws `format_error` naming `name`
/// and the compressed byte offset where the stream broke.
inline std::string gunzip(std::string_view in, std::string_view name) {
  std::string out;
  z_stream zs{};
  if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK)
    throw backend_error(concat(name, ": zlib inflateInit2 failed"));
  std::unique_ptr<z_stream, int (*)(z_stream*)> guard(&zs, inflateEnd);
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  std::size_t left = in.size();
  out.resize(std::max<std::size_t>(in.size() * 4, 1 << 12));
  std::size_t produced = 0;
  for (;;) {
    if (zs.avail_in == 0 && left > 0) {
      const auto chunk = static_cast<uInt>(std::min<std::size_t>(left, 1u << 30));
      zs.avail_in = chunk;
      left -= chunk;
    }
    if (produced == out.size()) out.resize(out.size() * 2);
    const auto room = static_cast<uInt>(std::min<std::size_t>(out.size() - produced, 1u << 30));
    zs.next_out = reinterpret_cast<Bytef*>(out.data() + produced);
    zs.avail_out = room;
    const int rc = inflate(&zs, Z_NO_FLUSH);
    produced += room - zs.avail_out;
    const auto consumed = in.size() - left - zs.avail_in;
    if (rc == Z_STREAM_END) {
      // Another member may follow (gzip allows concatenation); anything else is garbage.
      const std::string_view rest = in.substr(consumed);
      if (rest.empty()) break;
      if (!is_gzip(rest))
        throw format_error(concat(name, ": gzip: trailing garbage at compressed byte ", consumed));
      inflateReset(&zs);
      continue;
    }
    if (rc == Z_BUF_ERROR && zs.avail_in == 0 && left == 0)
      throw format_error(
          concat(name, ": gzip: truncated stream (input ends at compressed byte ", consumed, ")"));
    if (rc != Z_OK && rc != Z_BUF_ERROR)
      throw format_error(concat(name, ": gzip: ", zs.msg ? zs.msg : "inflate failed",
                                " at compressed byte ", consumed));
  }
  out.resize(produced);
  return out;
}

/// Opens a plain or gzip file for reading through zlib; a directory, FIFO or device is an
/// `io_error` (`open_regular_file`), not a hang.
inline gzFile gzopen_regular(const std::filesystem::path& path) {
  const int fd = open_regular_file(path);
  errno = 0;
  gzFile f = gzdopen(fd, "rb");
  if (!f) {
    const int e = errno;
    ::close(fd);
    throw io_error(
        concat(path.string(), ": cannot open", e ? std::string(": ") + std::strerror(e) : ""));
  }
  return f;
}

}  // namespace detail

/// Streams the data lines of a text file (plain or gzip) or of a buffer, split into tokens.
/// Token views stay valid until the next call of `next()`.
class text_reader {
 public:
  /// Opens `path`; throws `io_error` when it cannot be opened.
  explicit text_reader(const std::filesystem::path& path) : name_(path.string()) {
    gzFile f = detail::gzopen_regular(path);
    file_.reset(f);
    gzbuffer(f, 1u << 17);
    buf_.resize(1u << 20);
  }

  /// Reads `text` (not copied unless it is gzip, which is inflated first, so `text` must
  /// outlive the reader); `name` stands for the file name in error messages.
  text_reader(std::string_view text, std::string name) : name_(std::move(name)) {
    if (detail::is_gzip(text)) {
      owned_ = detail::gunzip(text, name_);
      mem_ = owned_;
    } else {
      mem_ = text;
    }
    eof_ = true;
  }

  /// Advances to the next data line; false at the end of the input.
  bool next() {
    for (;;) {
      std::string_view line;
      if (!take_line(line)) {
        tokens_.clear();
        line_ = {};
        return false;
      }
      ++line_no_;
      if (line_no_ == 1) line = detail::strip_bom(line);
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      line_ = line;
      tokenize(line);
      if (!tokens_.empty()) return true;
    }
  }

  /// After the first `next()`: if the current line looks like a header (`is_header_line`) it
  /// is skipped (returns true; the reader then stands on the following data line, or at the
  /// end). Returns false when the line is data; a malformed data line is then reported by
  /// whoever parses it, as file:line.
  bool skip_header() {
    if (!is_header_line(tokens_)) return false;
    next();
    return true;
  }

  /// The header rule: no token is a number (`is_number`) and at least one token starts with
  /// an ASCII letter, after an optional leading quote (' or "). "src dst", "id_1,id_2" and
  /// "node1 node2" are headers; "0 1x", "x 1", "1st 2nd" and "- -" are not.
  [[nodiscard]] static bool is_header_line(std::span<const std::string_view> tokens) {
    bool word = false;
    for (auto t : tokens) {
      if (is_number(t)) return false;
      if (!t.empty() && (t[0] == '"' || t[0] == '\'')) t.remove_prefix(1);
      if (!t.empty() && ((t[0] >= 'a' && t[0] <= 'z') || (t[0] >= 'A' && t[0] <= 'Z'))) word = true;
    }
    return word;
  }

  [[nodiscard]] std::span<const std::string_view> tokens() const { return tokens_; }
  [[nodiscard]] std::size_t size() const { return tokens_.size(); }
  [[nodiscard]] std::string_view operator[](std::size_t i) const { return tokens_[i]; }
  /// The current line without its line end.
  [[nodiscard]] std::string_view line() const { return line_; }
  /// 1-based number of the current line (counting every line, blank or not).
  [[nodiscard]] std::int64_t line_number() const { return line_no_; }
  [[nodiscard]] const std::string& name() const { return name_; }
  /// "file:line" of the current line.
  [[nodiscard]] std::string where() const { return detail::concat(name_, ":", line_no_); }

  /// Throws `E` with "file:line: " and the streamed pieces.
  template <class E = format_error, class... Args>
  [[noreturn]] void fail(Args&&... args) const {
    throw E(detail::concat(name_, ":", line_no_, ": ", std::forward<Args>(args)...));
  }

  /// Throws unless the current line has exactly `n` tokens; `what` describes the columns.
  void expect_columns(std::size_t n, std::string_view what) const {
    if (tokens_.size() != n)
      fail("expected ", n, n == 1 ? " column" : " columns", " (", what, "), got ", tokens_.size(),
           ": '", line_, "'");
  }

  /// Parses token `i` as T (an integer or floating type). Floating values may be nan/inf;
  /// the caller decides whether to allow them (see `finite`).
  template <class T>
  [[nodiscard]] T get(std::size_t i) const {
    return parse<T>(tokens_[i]);
  }

  /// Parses a token of the current line as T; errors name file:line and the token.
  template <class T>
  [[nodiscard]] T parse(std::string_view tok) const {
    static_assert(std::is_arithmetic_v<T>, "text_reader::parse needs an arithmetic type");
    std::string_view s = tok;
    if (s.size() > 1 && s[0] == '+' && s[1] != '-') s.remove_prefix(1);
    if constexpr (std::is_integral_v<T>) {
      T v{};
      const auto r = std::from_chars(s.data(), s.data() + s.size(), v);
      if (r.ec == std::errc::result_out_of_range && r.ptr == s.data() + s.size())
        fail<out_of_range>("value '", tok, "' does not fit a ", sizeof(T) * 8, "-bit ",
                           std::is_signed_v<T> ? "signed" : "unsigned", " integer");
      if (r.ec != std::errc{} || r.ptr != s.data() + s.size())
        fail("bad token '", tok, "' (expected an integer)");
      return v;
    } else {
      double v{};
      const auto r = std::from_chars(s.data(), s.data() + s.size(), v);
      if (r.ec == std::errc::result_out_of_range && r.ptr == s.data() + s.size())
        fail<out_of_range>("value '", tok, "' is out of the range of a double");
      if (r.ec != std::errc{} || r.ptr != s.data() + s.size())
        fail("bad token '", tok, "' (expected a number)");
      if constexpr (std::is_same_v<T, float>) {
        if (std::isfinite(v) &&
            std::abs(v) > static_cast<double>(std::numeric_limits<float>::max()))
          fail<out_of_range>("value '", tok, "' does not fit a float");
      }
      return static_cast<T>(v);
    }
  }

  /// Parses token `i` as a finite floating value; nan/inf are a format error naming `what`.
  template <class T = float>
  [[nodiscard]] T finite(std::size_t i, std::string_view what) const {
    const T v = get<T>(i);
    if (!std::isfinite(v)) fail("non-finite ", what, " '", tokens_[i], "'");
    return v;
  }

  /// True when the whole token is a number std::from_chars accepts (integer or floating,
  /// including nan/inf).
  [[nodiscard]] static bool is_number(std::string_view s) {
    if (s.size() > 1 && s[0] == '+' && s[1] != '-') s.remove_prefix(1);
    double v{};
    const auto r = std::from_chars(s.data(), s.data() + s.size(), v);
    return r.ptr == s.data() + s.size() &&
           (r.ec == std::errc{} || r.ec == std::errc::result_out_of_range);
  }

  /// True when the token is a plain decimal integer (optional sign, digits only).
  [[nodiscard]] static bool is_integer(std::string_view s) {
    if (!s.empty() && (s[0] == '-' || s[0] == '+')) s.remove_prefix(1);
    return !s.empty() &&
           std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
  }

 private:
  struct gz_closer {
    void operator()(gzFile f) const { gzclose(f); }
  };

  static bool is_space(char c) {
    return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
  }

  bool take_line(std::string_view& line) {
    if (!file_) {
      if (pos_ >= mem_.size()) return false;
      const auto nl = mem_.find('\n', pos_);
      const auto end = nl == std::string_view::npos ? mem_.size() : nl;
      line = mem_.substr(pos_, end - pos_);
      pos_ = nl == std::string_view::npos ? mem_.size() : nl + 1;
      return true;
    }
    for (;;) {
      const char* b = buf_.data() + pos_;
      const char* e = buf_.data() + end_;
      if (const void* nl = std::memchr(b, '\n', static_cast<std::size_t>(e - b))) {
        const auto* p = static_cast<const char*>(nl);
        line = std::string_view(b, static_cast<std::size_t>(p - b));
        pos_ = static_cast<std::size_t>(p - buf_.data()) + 1;
        return true;
      }
      if (eof_) {
        if (pos_ == end_) return false;
        line = std::string_view(b, static_cast<std::size_t>(e - b));
        pos_ = end_;
        return true;
      }
      refill();
    }
  }

  void refill() {
    if (pos_ > 0) {
      std::memmove(buf_.data(), buf_.data() + pos_, end_ - pos_);
      end_ -= pos_;
      pos_ = 0;
    }
    if (end_ == buf_.size()) buf_.resize(buf_.size() * 2);  // a line longer than the buffer
    const auto want =
        static_cast<unsigned>(std::min<std::size_t>(buf_.size() - end_, std::size_t{1} << 30));
    const int got = gzread(file_.get(), buf_.data() + end_, want);
    if (got < 0) gz_fail();
    if (got == 0) {
      int err = Z_OK;
      gzerror(file_.get(), &err);
      if (err == Z_BUF_ERROR) gz_fail();
      eof_ = true;
    }
    end_ += static_cast<std::size_t>(std::max(got, 0));
  }

  [[noreturn]] void gz_fail() const {
    int err = Z_OK;
    const char* msg = gzerror(file_.get(), &err);
    throw format_error(detail::concat(name_, ":", line_no_ + 1, ": gzip: ",
                                      err == Z_BUF_ERROR ? "truncated stream" : "bad stream", " (",
                                      msg ? msg : "", ")"));
  }

  void tokenize(std::string_view line) {
    tokens_.clear();
    const char* p = line.data();
    const char* e = p + line.size();
    bool after_comma = false;
    for (;;) {
      while (p < e && is_space(*p)) ++p;
      if (p == e || *p == '#') {
        if (after_comma) fail("empty field after ',' in '", line, "'");
        return;
      }
      if (*p == ',') {
        if (tokens_.empty() || after_comma) fail("empty field in '", line, "'");
        after_comma = true;
        ++p;
        continue;
      }
      const char* b = p;
      while (p < e && !is_space(*p) && *p != ',' && *p != '#') ++p;
      tokens_.emplace_back(b, static_cast<std::size_t>(p - b));
      after_comma = false;
    }
  }

  std::string name_;
  std::unique_ptr<gzFile_s, gz_closer> file_;
  std::vector<char> buf_;
  std::size_t pos_ = 0, end_ = 0;
  bool eof_ = false;
  std::string owned_;
  std::string_view mem_;
  std::int64_t line_no_ = 0;
  std::string_view line_;
  std::vector<std::string_view> tokens_;
};

namespace detail {

/// Minimal RFC 4180 record reader over a whole buffer: fields separated by ',', records by
/// "\n" or "\r\n"; a field may be double-quoted, and then holds commas, line breaks and
/// doubled quotes ("" = one "). A quote inside an unquoted field, or text after a closing
/// quote, is a format error naming file:line.
class csv_reader {
 public:
  /// A UTF-8 byte order mark at the start of the text is dropped.
  csv_reader(std::string_view text, std::string name) : name_(std::move(name)) {
    if (is_gzip(text)) {
      owned_ = gunzip(text, name_);
      text_ = owned_;
    } else {
      text_ = text;
    }
    text_ = strip_bom(text_);
  }

  /// Reads the next record into `fields` (skipping empty lines); false at the end.
  bool next(std::vector<std::string>& fields) {
    fields.clear();
    for (;;) {
      if (pos_ >= text_.size()) return false;
      ++line_;
      record_line_ = line_;
      if (text_[pos_] == '\n') {
        ++pos_;
        continue;
      }
      if (text_[pos_] == '\r' && pos_ + 1 < text_.size() && text_[pos_ + 1] == '\n') {
        pos_ += 2;
        continue;
      }
      break;
    }
    std::string field;
    for (;;) {
      field.clear();
      if (pos_ < text_.size() && text_[pos_] == '"') {
        ++pos_;
        for (;;) {
          if (pos_ >= text_.size()) fail("unterminated quoted field");
          const char c = text_[pos_++];
          if (c == '"') {
            if (pos_ < text_.size() && text_[pos_] == '"') {
              field += '"';
              ++pos_;
            } else {
              break;
            }
          } else {
            if (c == '\n') ++line_;
            field += c;
          }
        }
        if (pos_ < text_.size() && text_[pos_] != ',' && text_[pos_] != '\n' &&
            !(text_[pos_] == '\r' && pos_ + 1 < text_.size() && text_[pos_ + 1] == '\n') &&
            !(text_[pos_] == '\r' && pos_ + 1 == text_.size()))
          fail("unexpected character after closing quote");
      } else {
        while (pos_ < text_.size() && text_[pos_] != ',' && text_[pos_] != '\n') {
          if (text_[pos_] == '"') fail("quote inside an unquoted field");
          field += text_[pos_++];
        }
        if (!field.empty() && field.back() == '\r' && (pos_ >= text_.size() || text_[pos_] == '\n'))
          field.pop_back();
      }
      fields.push_back(field);
      if (pos_ < text_.size() && text_[pos_] == '\r') ++pos_;
      if (pos_ >= text_.size()) return true;
      if (text_[pos_] == '\n') {
        ++pos_;
        return true;
      }
      ++pos_;  // ','
    }
  }

  /// Line where the current record starts.
  [[nodiscard]] std::int64_t line_number() const { return record_line_; }
  [[nodiscard]] const std::string& name() const { return name_; }
  template <class E = format_error, class... Args>
  [[noreturn]] void fail(Args&&... args) const {
    throw E(concat(name_, ":", record_line_, ": ", std::forward<Args>(args)...));
  }

 private:
  std::string name_;
  std::string owned_;
  std::string_view text_;
  std::size_t pos_ = 0;
  std::int64_t line_ = 0;
  std::int64_t record_line_ = 0;
};

/// Reads a whole file (plain or gzip) into a string.
inline std::string read_text_file(const std::filesystem::path& path) {
  std::string out;
  gzFile f = gzopen_regular(path);
  std::unique_ptr<gzFile_s, int (*)(gzFile)> guard(f, gzclose);
  gzbuffer(f, 1u << 17);
  std::vector<char> chunk(1u << 20);
  for (;;) {
    const int got = gzread(f, chunk.data(), static_cast<unsigned>(chunk.size()));
    int err = Z_OK;
    if (got < 0 || (got == 0 && (gzerror(f, &err), err == Z_BUF_ERROR))) {
      const char* msg = gzerror(f, &err);
      throw format_error(
          concat(path.string(), ": gzip: ", err == Z_BUF_ERROR ? "truncated stream" : "bad stream",
                 " (", msg ? msg : "", ") after ", out.size(), " uncompressed bytes"));
    }
    if (got == 0) break;
    out.append(chunk.data(), static_cast<std::size_t>(got));
  }
  return out;
}

}  // namespace detail
}  // namespace ibmb
