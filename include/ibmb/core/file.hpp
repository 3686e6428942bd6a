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

/// Opens `path` for reading (a descriptor, close-on-exec) and checks that it is a regular
/// file: a directory, device, FIFO or socket is an `ibmb::io_error` naming the path (opened
/// non-blocking first, so a FIFO without a writer cannot hang the call). `what` ends the
/// message, e.g. "expected a .ibmb store"; `info`, when given, receives the file's stat.
inline int open_regular_file(const std::filesystem::path& path, std::string_view what = {},
                             struct stat* info = nullptr) {
  const std::string name = path.string();
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) throw io_error(detail::concat(name, ": cannot open: ", detail::errno_text(errno)));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int e = errno;
    ::close(fd);
    throw io_error(detail::concat(name, ": fstat failed: ", detail::errno_text(e)));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    throw io_error(detail::concat(name, ": not a regular file (",
                                  S_ISDIR(st.st_mode) ? "a directory" : "a device, pipe or socket",
                                  ")", what.empty() ? "" : "; ", what));
  }
  const int flags = ::fcntl(fd, F_GETFL);
  if (flags >= 0) ::fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
  if (info != nullptr) *info = st;
  return fd;
}

/// Reads a whole file into memory; throws `ibmb::io_error` naming the path (also when it is
/// not a regular file).
inline std::vector<char> read_file(const std::filesystem::path& path) {
  const int fd = open_regular_file(path);
  std::FILE* f = ::fdopen(fd, "rb");
  if (!f) {
    const int e = errno;
    ::close(fd);
    throw io_error(detail::concat(path.string(), ": cannot open: ", detail::errno_text(e)));
  }
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
///
/// An existing `path` must be a regular file, or a symbolic link to one (or to nothing): the
/// link is followed and its target replaced, so the link stays. A directory, device, FIFO or
/// socket is an `ibmb::io_error` and is left alone. A replaced file keeps its permission bits.
inline void atomic_write(const std::filesystem::path& path,
                         const std::function<void(file_writer&)>& fill, bool overwrite = true) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!overwrite && fs::exists(fs::symlink_status(path, ec)))
    throw io_error(detail::concat(path.string(), ": exists (refusing to overwrite)"));
  fs::path target = path;
  if (fs::is_symlink(fs::symlink_status(path, ec))) {
    target = fs::weakly_canonical(path, ec);
    if (ec)
      throw io_error(
          detail::concat(path.string(), ": cannot resolve the symbolic link: ", ec.message()));
  }
  struct stat old {};
  const bool replaces = ::stat(target.c_str(), &old) == 0;
  if (replaces && !S_ISREG(old.st_mode))
    throw io_error(detail::concat(path.string(), ": exists and is not a regular file (",
                                  S_ISDIR(old.st_mode) ? "a directory" : "a device, pipe or socket",
                                  "); refusing to replace it"));
  const fs::path dir = target.has_parent_path() ? target.parent_path() : fs::path(".");
  std::random_device rd;
  const fs::path tmp =
      dir / detail::concat(".", target.filename().string(), ".tmp.", ::getpid(), ".", rd());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0)
    throw io_error(detail::concat(path.string(), ": cannot create temporary file in ", dir.string(),
                                  ": ", detail::errno_text(errno)));
  try {
    if (replaces && ::fchmod(fd, old.st_mode & 07777) != 0)
      throw io_error(
          detail::concat(path.string(), ": cannot set permissions: ", detail::errno_text(errno)));
    file_writer w(fd, path.string());
    fill(w);
    if (::fsync(fd) != 0)
      throw io_error(detail::concat(path.string(), ": fsync failed: ", detail::errno_text(errno)));
    const int closed = ::close(fd);
    fd = -1;  // released even when close reports an error
    if (closed != 0)
      throw io_error(detail::concat(path.string(), ": close failed: ", detail::errno_text(errno)));
  } catch (...) {
    if (fd >= 0) ::close(fd);
    ::unlink(tmp.c_str());
    throw;
  }
  if (::rename(tmp.c_str(), target.c_str()) != 0) {
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
