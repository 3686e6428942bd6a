// ibmb: small OpenMP helpers that keep results independent of the thread count.
#pragma once

#include <algorithm>
#include <cstdint>
#include <numeric>
#include <span>
#include <vector>

#if defined(_OPENMP)
#include <omp.h>
#endif

namespace ibmb {

/// Number of threads an OpenMP parallel region would use (1 without OpenMP).
inline int max_threads() {
#if defined(_OPENMP)
  return omp_get_max_threads();
#else
  return 1;
#endif
}

inline int thread_id() {
#if defined(_OPENMP)
  return omp_get_thread_num();
#else
  return 0;
#endif
}

/// RAII guard that sets the OpenMP thread count for a scope (t <= 0 keeps it).
class scoped_threads {
 public:
  explicit scoped_threads(int t) {
#if defined(_OPENMP)
    prev_ = omp_get_max_threads();
    if (t > 0) omp_set_num_threads(t);
#else
    (void)t;
#endif
  }
  ~scoped_threads() {
#if defined(_OPENMP)
    omp_set_num_threads(prev_);
#endif
  }
  scoped_threads(const scoped_threads&) = delete;
  scoped_threads& operator=(const scoped_threads&) = delete;

 private:
  int prev_ = 1;
};

namespace detail {

/// Splits [0, n) into `parts` contiguous chunks; chunk c is [bounds[c], bounds[c+1]).
/// The split depends only on n and parts, so per-chunk work is reproducible.
template <class T>
std::vector<T> even_chunks(T n, int parts) {
  std::vector<T> b(static_cast<std::size_t>(parts) + 1);
  for (int c = 0; c <= parts; ++c) b[c] = static_cast<T>((n / parts) * c + (n % parts) * c / parts);
  return b;
}

/// Exclusive prefix sum in place; returns the total.
template <class T>
T exclusive_scan_inplace(std::span<T> v) {
  T run = 0;
  for (auto& x : v) {
    T t = x;
    x = run;
    run += t;
  }
  return run;
}

}  // namespace detail
}  // namespace ibmb
