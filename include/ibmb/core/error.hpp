// ibmb: one error vocabulary for the whole library.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace ibmb {

/// Base of every exception the library throws. Messages are one line and name the
/// offending file / line / offset / value where there is one.
class error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// A file could not be opened, read, written or renamed.
class io_error : public error {
 public:
  using error::error;
};

/// A file's content is malformed (bad magic, wrong dtype, truncated, unparsable line).
class format_error : public error {
 public:
  using error::error;
};

/// A caller-supplied value violates a precondition (bad parameter, mismatched sizes).
class invalid_argument : public error {
 public:
  using error::error;
};

/// An index or id lies outside its valid range, or does not fit the requested type.
class out_of_range : public error {
 public:
  using error::error;
};

/// A limit of a third-party library (METIS, zlib, CUDA) was hit or it reported failure.
class backend_error : public error {
 public:
  using error::error;
};

namespace detail {

/// Joins the arguments with operator<< into one string.
template <class... Args>
[[nodiscard]] std::string concat(Args&&... args) {
  std::ostringstream os;
  (os << ... << std::forward<Args>(args));
  return os.str();
}

}  // namespace detail
}  // namespace ibmb

#define IBMB_DETAIL_STR2(x) #x
#define IBMB_DETAIL_STR(x) IBMB_DETAIL_STR2(x)

/// Precondition check for public entry points. Throws `ibmb::invalid_argument` with the
/// caller's message (streamed pieces, so values can be interleaved) followed by the
/// location of the check.
#define IBMB_EXPECTS(cond, ...)                                                                  \
  do {                                                                                           \
    if (!(cond)) {                                                                               \
      throw ::ibmb::invalid_argument(                                                            \
          ::ibmb::detail::concat(__VA_ARGS__, " [" __FILE__ ":" IBMB_DETAIL_STR(__LINE__) "]")); \
    }                                                                                            \
  } while (false)

/// Same as IBMB_EXPECTS with a chosen exception type.
#define IBMB_EXPECTS_AS(type, cond, ...)                                                         \
  do {                                                                                           \
    if (!(cond)) {                                                                               \
      throw type(                                                                                \
          ::ibmb::detail::concat(__VA_ARGS__, " [" __FILE__ ":" IBMB_DETAIL_STR(__LINE__) "]")); \
    }                                                                                            \
  } while (false)

/// Internal invariant for hot loops; compiled out under NDEBUG unless the user defines
/// IBMB_ASSERT themselves.
#ifndef IBMB_ASSERT
#ifdef NDEBUG
#define IBMB_ASSERT(cond, ...) ((void)0)
#else
#define IBMB_ASSERT(cond, ...) \
  IBMB_EXPECTS_AS(::ibmb::error, cond, "internal error: " #cond " ", __VA_ARGS__)
#endif
#endif
