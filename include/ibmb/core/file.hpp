// ibmb: whole-file reads and atomic writes (a temporary file in the same directory,
// fsynced, then renamed over the target: a reader never sees a half-written file, and a
// failed write leaves the old file as it was).
#pragma once

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "ibmb/core/error.hpp"

namespace ibmb {

namespace detail {
inline std::string errno_text(int e) { return std::strerror(e); }
}  // namespace detail

/// Reads a whole file into memory; throws `ibmb::io_error` naming the path.
inline std::vector<char> read_file(const std::filesystem::path& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f)
    throw io_error(detail::concat(path.string(), ": cannot open: ", detail::errno_text(errno)));
  std::vector<char> buf;
  char chunk[1 << 16];
  std::size_t got = 0;
  while ((got = std::fread(chunk, 1, sizeof chunk, f)) > 0)
    buf.insert(buf.end(), chunk, chunk + got);
  const bool bad = std::ferror(f) != 0;
  std::fclose(f);
  if (bad) throw io_error(detail::concat(path.string(), ": read error"));
  return buf;
}

/// Sequential writer handed to `atomic_write`'s callback.
class file_writer {
 public:
  file_writer(int fd, std::string name) : fd_(fd), name_(std::move(name)) {}
  void write(const void* data, std::size_t n) {
    const char* p = static_cast<const char*>(data);
    while (n > 0) {
      const ssize_t w = ::write(fd_, p, n);
      if (w < 0) {
        if (errno == EINTR) continue;
        throw io_error(detail::concat(name_, ": write failed: ", detail::errno_text(errno)));
      }
      p += w;
      n -= static_cast<std::size_t>(w);
      written_ += static_cast<std::uint64_t>(w);
    }
  }
  void write(std::span<const char> s) { write(s.data(), s.size()); }
  void write(std::string_view s) { write(s.data(), s.size()); }
  /// Zero bytes up to the next multiple of `alignment` (relative to the file start).
  void pad_to(std::uint64_t alignment) {
    static const char zeros[256] = {};
    while (written_ % alignment != 0) {
      const auto k = std::min<std::uint64_t>(alignment - written_ % alignment, sizeof zeros);
      write(zeros, static_cast<std::size_t>(k));
    }
  }
  [[nodiscard]] std::uint64_t bytes_written() const { return written_; }

 private:
  int fd_;
  std::string name_;
  std::uint64_t written_ = 0;
};

/// Writes `path` atomically: `fill` writes the content into a temporary file next to it,
/// which is fsynced and renamed over `path` (then the directory is fsynced). If `fill`
/// throws, the temporary is removed and `path` is untouched. With `overwrite == false` an
/// existing `path` is an error.
inline void atomic_write(const std::filesystem::path& path,
                         const std::function<void(file_writer&)>& fill, bool overwrite = true) {
  namespace fs = std::filesystem;
  if (!overwrite && fs::exists(path))
    throw io_error(detail::concat(path.string(), ": exists (refusing to overwrite)"));
  const fs::path dir = path.has_parent_path() ? path.parent_path() : fs::path(".");
  std::random_device rd;
  const fs::path tmp =
      dir / detail::concat(".", path.filename().string(), ".tmp.", ::getpid(), ".", rd());
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0)
    throw io_error(detail::concat(path.string(), ": cannot create temporary file in ", dir.string(),
                                  ": ", detail::errno_text(errno)));
  try {
    file_writer w(fd, path.string());
    fill(w);
    if (::fsync(fd) != 0)
      throw io_error(detail::concat(path.string(), ": fsync failed: ", detail::errno_text(errno)));
    if (::close(fd) != 0)
      throw io_error(detail::concat(path.string(), ": close failed: ", detail::errno_text(errno)));
  } catch (...) {
    ::close(fd);
    ::unlink(tmp.c_str());
    throw;
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const int e = errno;
    ::unlink(tmp.c_str());
    throw io_error(detail::concat(path.string(), ": rename failed: ", detail::errno_text(e)));
  }
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

}  // namespace ibmb
