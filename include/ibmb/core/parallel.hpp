// ibmb: small OpenMP helpers that keep results independent of the thread count.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <exception>
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

/// Carries an exception out of an OpenMP parallel region (one escaping the region would call
/// std::terminate). Inside the region, wrap the work in `run` (or catch and `record`); the
/// first exception is kept, the others are dropped, and `stopped()` tells the remaining
/// iterations to skip their work. After the region, `rethrow()` throws the kept exception.
///
///   detail::region_failure failure;
///   #pragma omp parallel
///   {
///     std::vector<int> scratch;                 // may throw: allocate inside run()
///     failure.run([&] { scratch.resize(n); });
///   #pragma omp for
///     for (...) failure.run([&] { ... });
///   }
///   failure.rethrow();
class region_failure {
 public:
  /// Calls f() unless a failure was recorded; records what it throws.
  template <class F>
  void run(F&& f) noexcept {
    if (stopped()) return;
    try {
      f();
    } catch (...) {
      record();
    }
  }
  /// Records the exception being handled (call from a catch block).
  void record() noexcept {
#pragma omp critical(ibmb_region_failure)
    {
      if (!failure_) failure_ = std::current_exception();
    }
    stop_.store(true, std::memory_order_relaxed);
  }
  [[nodiscard]] bool stopped() const noexcept { return stop_.load(std::memory_order_relaxed); }
  /// Throws the recorded exception, if any (call after the region).
  void rethrow() const {
    if (failure_) std::rethrow_exception(failure_);
  }

 private:
  std::exception_ptr failure_;
  std::atomic<bool> stop_{false};
};

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
