// Helpers shared by the ibmb subcommands: a tiny ordered JSON writer, timing, peak RSS.
#pragma once

#include <sys/resource.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <initializer_list>
#include <sstream>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "ibmb/core/error.hpp"
#include "ibmb/core/progress.hpp"
#include "ibmb/graph/io/load.hpp"

namespace ibmb::cli {

/// Writes one flat or nested JSON object in insertion order.
class json_object {
 public:
  json_object& add(std::string_view key, std::int64_t v) { return raw(key, std::to_string(v)); }
  json_object& add(std::string_view key, int v) { return raw(key, std::to_string(v)); }
  json_object& add(std::string_view key, double v) {
    if (!std::isfinite(v)) return raw(key, "null");
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.17g", v);
    return raw(key, buf);
  }
  json_object& add(std::string_view key, bool v) { return raw(key, v ? "true" : "false"); }
  json_object& add(std::string_view key, std::string_view v) { return raw(key, quote(v)); }
  json_object& add(std::string_view key, const char* v) { return add(key, std::string_view(v)); }
  json_object& add(std::string_view key, const std::vector<std::int64_t>& v) {
    std::string s = "[";
    for (std::size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + std::to_string(v[i]);
    return raw(key, s + "]");
  }
  json_object& add(std::string_view key, const json_object& o) { return raw(key, o.str()); }
  [[nodiscard]] std::string str() const {
    std::string s = "{";
    for (std::size_t i = 0; i < items_.size(); ++i) s += (i ? ", " : "") + items_[i];
    return s + "}";
  }

  /// `v` as a JSON string. Bytes that are not valid UTF-8 (e.g. a corrupted name read from a
  /// file) become U+FFFD, so the output is always valid JSON.
  static std::string quote(std::string_view v) {
    std::string s = "\"";
    for (std::size_t i = 0; i < v.size(); ++i) {
      const char c = v[i];
      if (static_cast<unsigned char>(c) >= 0x80) {
        const std::size_t n = utf8_length(v.substr(i));
        if (n == 0) {
          s += "\\ufffd";
        } else {
          s.append(v.substr(i, n));
          i += n - 1;
        }
        continue;
      }
      switch (c) {
        case '"':
          s += "\\\"";
          break;
        case '\\':
          s += "\\\\";
          break;
        case '\n':
          s += "\\n";
          break;
        case '\t':
          s += "\\t";
          break;
        default:
          if (static_cast<unsigned char>(c) < 0x20) {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\u%04x", c);
            s += buf;
          } else {
            s += c;
          }
      }
    }
    return s + "\"";
  }

 private:
  /// Bytes of the valid UTF-8 sequence at the start of `v` (a non-ASCII lead byte), 0 if none.
  static std::size_t utf8_length(std::string_view v) {
    const auto b = [&](std::size_t k) { return static_cast<unsigned char>(v[k]); };
    const unsigned lead = b(0);
    std::size_t n = 0;
    unsigned lo = 0x80, hi = 0xBF;  // range of the first continuation byte
    if (lead >= 0xC2 && lead <= 0xDF) {
      n = 2;
    } else if (lead >= 0xE0 && lead <= 0xEF) {
      n = 3;
      if (lead == 0xE0) lo = 0xA0;  // no overlong forms
      if (lead == 0xED) hi = 0x9F;  // no surrogates
    } else if (lead >= 0xF0 && lead <= 0xF4) {
      n = 4;
      if (lead == 0xF0) lo = 0x90;
      if (lead == 0xF4) hi = 0x8F;  // at most U+10FFFF
    } else {
      return 0;
    }
    if (v.size() < n || b(1) < lo || b(1) > hi) return 0;
    for (std::size_t k = 2; k < n; ++k)
      if (b(k) < 0x80 || b(k) > 0xBF) return 0;
    return n;
  }

  json_object& raw(std::string_view key, std::string value) {
    items_.push_back(quote(key) + ": " + std::move(value));
    return *this;
  }
  std::vector<std::string> items_;
};

/// A JSON array of one object per element: `to_object(element)` returns a `json_object`.
template <class Range, class Fn>
std::string json_array(const Range& range, Fn to_object) {
  std::string s = "[";
  for (const auto& x : range) {
    if (s.size() > 1) s += ", ";
    s += to_object(x).str();
  }
  return s + "]";
}

class stopwatch {
 public:
  stopwatch() : start_(std::chrono::steady_clock::now()) {}
  [[nodiscard]] double seconds() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  }

 private:
  std::chrono::steady_clock::time_point start_;
};

/// Peak resident set size of this process in bytes.
inline std::int64_t peak_rss_bytes() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<std::int64_t>(ru.ru_maxrss) * 1024;
}

/// Most OpenMP threads a --threads flag accepts: a larger count is a typo, and libgomp crashes
/// or tries to allocate hundreds of GB for one.
inline constexpr int max_cli_threads = 1024;

/// Rejects NaN and infinities: CLI11's Range and PositiveNumber let NaN through (every
/// comparison with it is false). `ibmb` adds it to every floating-point option.
inline CLI::Validator finite_number() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        char* end = nullptr;
        const double v = std::strtod(text.c_str(), &end);
        if (end != text.c_str() && !std::isfinite(v))
          return "Value " + text + " is not a finite number";
        return {};
      },
      "FINITE", "finite_number");
}

/// `value > 0` (strict) or `value >= 0`, with a short message: CLI11's PositiveNumber and
/// NonNegativeNumber print their upper bound, DBL_MAX, in full (300 digits).
inline CLI::Validator at_least_zero(bool strict) {
  return CLI::Validator(
      [strict](std::string& text) -> std::string {
        char* end = nullptr;
        const double v = std::strtod(text.c_str(), &end);
        if (end == text.c_str() || *end != '\0') return "Value " + text + " is not a number";
        if (strict ? !(v > 0) : !(v >= 0))
          return "Value " + text + (strict ? " is not > 0" : " is not >= 0");
        return {};
      },
      strict ? "POSITIVE" : "NONNEGATIVE", strict ? "positive" : "non_negative");
}
inline CLI::Validator positive() { return at_least_zero(true); }
inline CLI::Validator non_negative() { return at_least_zero(false); }

/// Adds `finite_number` to every floating-point option of `app` and its subcommands.
inline void require_finite_floats(CLI::App& app) {
  for (CLI::Option* opt : app.get_options())
    if (opt->get_type_name().starts_with("FLOAT")) opt->check(finite_number());
  for (CLI::App* sub : app.get_subcommands({})) require_finite_floats(*sub);
}

/// The file or directory a dataset SPEC reads (empty for the generator).
inline std::filesystem::path dataset_path(const std::string& spec) {
  if (spec.empty()) return {};
  return ibmb::resolve_dataset_spec(spec).path;
}

/// Throws unless the directory `out` would be created in exists (a typo fails at once).
inline void require_parent_directory(std::string_view flag, const std::string& out) {
  namespace fs = std::filesystem;
  const fs::path p(out);
  const fs::path parent = p.parent_path().empty() ? fs::path(".") : p.parent_path();
  std::error_code ec;
  if (!fs::is_directory(parent, ec))
    throw ibmb::io_error(
        detail::concat(flag, " ", out, ": the directory ", parent.string(), " does not exist"));
}

/// Checks an output path before any work is done, so that a typo fails at once and nothing
/// the user gave is overwritten: the path must not be a directory, device, FIFO or socket,
/// its directory must exist, and it must be none of `inputs` (files, or directories whose
/// existing files it would replace; empty paths are skipped). An empty `out` is an error
/// unless `optional` (the option was not given). `flag` names the option in the message.
inline void check_output_path(std::string_view flag, const std::string& out,
                              std::initializer_list<std::filesystem::path> inputs,
                              bool optional = false) {
  namespace fs = std::filesystem;
  if (out.empty()) {
    if (optional) return;
    throw ibmb::io_error(detail::concat(flag, ": empty path"));
  }
  const fs::path p(out);
  std::error_code ec;
  if (fs::is_directory(p, ec))
    throw ibmb::io_error(detail::concat(flag, " ", out, ": is a directory (expected a file)"));
  if (fs::exists(p, ec) && !fs::is_regular_file(p, ec))
    throw ibmb::io_error(detail::concat(flag, " ", out,
                                        ": exists and is not a regular file (a device, pipe or "
                                        "socket; refusing to replace it)"));
  require_parent_directory(flag, out);
  if (!fs::exists(p, ec)) return;  // a new file replaces nothing
  const fs::path target = fs::weakly_canonical(p, ec);
  for (const auto& in : inputs) {
    if (in.empty() || !fs::exists(in, ec)) continue;
    const fs::path src = fs::weakly_canonical(in, ec);
    bool inside = target == src;
    if (!inside && fs::is_directory(src, ec))
      for (fs::path q = target.parent_path(); !inside && q.has_relative_path(); q = q.parent_path())
        inside = q == src;
    if (inside)
      throw ibmb::io_error(detail::concat(flag, " ", out, ": would overwrite the input ",
                                          in.string(), " (choose another output path)"));
  }
}

/// A subcommand and what runs it once it was parsed.
struct command {
  CLI::App* app = nullptr;
  std::function<int()> run;
};
using command_list = std::vector<command>;

/// Progress lines on stderr, only when stderr is a terminal.
inline ibmb::progress_callback terminal_progress() {
  if (!::isatty(STDERR_FILENO)) return {};
  return [](std::string_view stage, std::int64_t done, std::int64_t total) {
    if (total > 0)
      std::fprintf(stderr, "\r%.*s %3d%%", static_cast<int>(stage.size()), stage.data(),
                   static_cast<int>(100 * done / total));
    else
      std::fprintf(stderr, "\r%.*s %lld", static_cast<int>(stage.size()), stage.data(),
                   static_cast<long long>(done));
    if (total > 0 && done >= total) std::fprintf(stderr, "\n");
    std::fflush(stderr);
  };
}

}  // namespace ibmb::cli
