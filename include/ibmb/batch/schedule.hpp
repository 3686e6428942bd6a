// ibmb: the order in which batches are visited, computed once and replayed every epoch.
//
// The reference orders batches so that consecutive batches differ as much as possible in
// their output label distributions: per batch the label histogram of its outputs (+1
// smoothing, normalized), distance = symmetric KL divergence, and a closed tour that
// MAXIMIZES the total distance (a TSP with the objective flipped). Here the tour is found
// exactly by enumeration for small inputs and otherwise by a deterministic, seeded local
// search: greedy farthest-neighbour constructions from several starts plus the identity
// order, 2-opt and Or-opt moves to a local optimum, then iterated local search with seeded
// double-bridge kicks. The primary stop is the iteration budget, so the result depends only
// on the input and the seed; `max_seconds` is a safety cap for very large inputs (when it
// fires, `time_capped` is set and the result may depend on the machine's speed).
#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numeric>
#include <span>
#include <vector>

#include "ibmb/batch/plan.hpp"
#include "ibmb/batch/store_types.hpp"
#include "ibmb/core/error.hpp"

namespace ibmb {

enum class schedule_kind {
  tour,    ///< closed tour maximizing the summed distance of consecutive batches
  sample,  ///< next batch drawn with probability proportional to its distance (unvisited)
  rand,    ///< seeded uniform permutation
};

struct schedule_params {
  schedule_kind kind = schedule_kind::tour;
  std::uint64_t seed = 0;
  /// Iterated-local-search kicks after the first local optimum (the primary budget).
  std::int64_t max_iterations = 200;
  /// Safety cap on the wall time of the tour search, in seconds.
  double max_seconds = 60.0;
  /// Enumerate every tour (exactly optimal) up to this many batches; 0 disables.
  std::int64_t exact_up_to = 9;
  /// Seeded random orders averaged for `schedule_result::random_distance`.
  std::int64_t random_samples = 32;
};

struct schedule_result {
  std::vector<std::int64_t> order;  ///< a permutation of [0, B)
  double distance = 0;              ///< closed-tour total of `order`
  double random_distance = 0;       ///< mean closed-tour total of seeded random orders
  double identity_distance = 0;     ///< closed-tour total of 0, 1, ..., B-1
  std::int64_t iterations = 0;      ///< kicks performed
  bool exact = false;               ///< found by enumeration
  bool time_capped = false;         ///< the time cap stopped the search
};

namespace detail {

/// splitmix64: a tiny generator with a fixed, platform-independent sequence.
struct splitmix64 {
  std::uint64_t s;
  std::uint64_t next() {
    std::uint64_t z = (s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  /// Uniform in [0, n) (n > 0), by rejection: no modulo bias.
  std::uint64_t below(std::uint64_t n) {
    const std::uint64_t lim = ~std::uint64_t{0} - (~std::uint64_t{0} % n);
    std::uint64_t x;
    do x = next();
    while (x >= lim);
    return x % n;
  }
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
};

template <class T>
void shuffle(std::vector<T>& v, splitmix64& rng) {
  for (std::size_t i = v.size(); i > 1; --i)
    std::swap(v[i - 1], v[static_cast<std::size_t>(rng.below(i))]);
}

struct tour_search {
  std::span<const double> d;
  std::size_t n;
  double tol;
  std::chrono::steady_clock::time_point deadline;
  bool capped = false;

  [[nodiscard]] double at(std::int64_t a, std::int64_t b) const {
    return d[static_cast<std::size_t>(a) * n + static_cast<std::size_t>(b)];
  }
  [[nodiscard]] double length(const std::vector<std::int64_t>& t) const {
    double s = 0;
    for (std::size_t i = 0; i < t.size(); ++i) s += at(t[i], t[(i + 1) % t.size()]);
    return s;
  }
  bool out_of_time() {
    if (!capped && std::chrono::steady_clock::now() > deadline) capped = true;
    return capped;
  }

  /// Greedy farthest neighbour from `start`; ties by smaller id.
  [[nodiscard]] std::vector<std::int64_t> greedy(std::int64_t start) const {
    std::vector<std::int64_t> t{start};
    std::vector<char> used(n, 0);
    used[static_cast<std::size_t>(start)] = 1;
    while (t.size() < n) {
      std::int64_t best = -1;
      for (std::size_t j = 0; j < n; ++j)
        if (!used[j] &&
            (best < 0 || at(t.back(), static_cast<std::int64_t>(j)) > at(t.back(), best) + tol))
          best = static_cast<std::int64_t>(j);
      used[static_cast<std::size_t>(best)] = 1;
      t.push_back(best);
    }
    return t;
  }

  /// First-improvement 2-opt; true if a move was applied.
  bool two_opt(std::vector<std::int64_t>& t) const {
    bool any = false;
    for (std::size_t i = 0; i + 2 < n; ++i)
      for (std::size_t j = i + 2; j < n; ++j) {
        if (i == 0 && j == n - 1) continue;  // the same two edges
        const auto a = t[i], b = t[i + 1], c = t[j], e = t[(j + 1) % n];
        if (at(a, c) + at(b, e) - at(a, b) - at(c, e) > tol) {
          std::reverse(t.begin() + static_cast<std::ptrdiff_t>(i) + 1,
                       t.begin() + static_cast<std::ptrdiff_t>(j) + 1);
          any = true;
        }
      }
    return any;
  }

  /// First-improvement Or-opt: move a segment of 1..3 batches (possibly reversed) elsewhere.
  bool or_opt(std::vector<std::int64_t>& t) const {
    bool any = false;
    for (std::size_t len = 1; len <= 3 && len + 2 <= n; ++len)
      for (std::size_t i = 0; i + len <= n; ++i) {
        const auto s0 = t[i], s1 = t[i + len - 1];
        const auto prev = t[(i + n - 1) % n], next = t[(i + len) % n];
        const double removal = at(prev, next) - at(prev, s0) - at(s1, next);
        // candidate insertion edges (u, w) = (t[p], t[p+1]) outside the segment
        for (std::size_t q = 0; q + len + 1 < n; ++q) {
          const std::size_t p = (i + len + q) % n;  // walks the rest of the cycle
          const auto u = t[p], w = t[(p + 1) % n];
          if (u == prev && w == s0) continue;
          const double fwd = removal + at(u, s0) + at(s1, w) - at(u, w);
          const double rev = removal + at(u, s1) + at(s0, w) - at(u, w);
          if (fwd > tol || rev > tol) {
            std::vector<std::int64_t> seg(t.begin() + static_cast<std::ptrdiff_t>(i),
                                          t.begin() + static_cast<std::ptrdiff_t>(i + len));
            if (rev > fwd) std::reverse(seg.begin(), seg.end());
            std::vector<std::int64_t> rest;
            rest.reserve(n);
            for (std::size_t k = 0; k + len < n; ++k) rest.push_back(t[(i + len + k) % n]);
            const auto at_u = std::find(rest.begin(), rest.end(), u) + 1;
            rest.insert(at_u, seg.begin(), seg.end());
            t = std::move(rest);
            any = true;
            break;
          }
        }
      }
    return any;
  }

  void local_search(std::vector<std::int64_t>& t) {
    while (!out_of_time()) {
      const bool a = two_opt(t);
      const bool b = or_opt(t);
      if (!a && !b) break;
    }
  }
};

inline std::vector<std::int64_t> exact_tour(const tour_search& s) {
  std::vector<std::int64_t> t(s.n), best;
  std::iota(t.begin(), t.end(), 0);
  double best_len = -1;
  do {  // node 0 fixed first: every closed tour appears (in both directions)
    const double l = s.length(t);
    if (l > best_len + s.tol) {
      best_len = l;
      best = t;
    }
  } while (std::next_permutation(t.begin() + 1, t.end()));
  return best;
}

}  // namespace detail

/// Closed-tour total distance of `order` over the row-major B x B matrix `dist`.
inline double tour_length(std::span<const double> dist, std::span<const std::int64_t> order) {
  const std::size_t n = order.size();
  IBMB_EXPECTS(dist.size() == n * n, "tour_length: ", dist.size(), " distances for ", n,
               " batches");
  double s = 0;
  for (std::size_t i = 0; i < n; ++i)
    s +=
        dist[static_cast<std::size_t>(order[i]) * n + static_cast<std::size_t>(order[(i + 1) % n])];
  return s;
}

/// Symmetric KL divergence sum_c (p_c - q_c) log(p_c / q_c) between the +1-smoothed,
/// normalized label histograms of the given batches' outputs, as a row-major B x B matrix.
/// `output_labels(b)` returns batch b's output labels; labels < 0 are ignored, labels >=
/// `num_classes` are an `ibmb::out_of_range`.
template <class LabelsOf>
std::vector<double> label_distance_matrix(std::size_t B, std::int64_t num_classes,
                                          LabelsOf output_labels) {
  IBMB_EXPECTS(num_classes >= 1, "label_distance_matrix: num_classes = ", num_classes);
  // B x C histograms: a corrupted label (say 2^62) must not wrap B * C around to a small
  // buffer that the counting then overruns.
  if (num_classes > std::numeric_limits<std::int32_t>::max() ||
      (B > 0 && static_cast<std::size_t>(num_classes) >
                    std::numeric_limits<std::size_t>::max() / sizeof(double) / B))
    throw out_of_range(detail::concat("label_distance_matrix: ", num_classes, " classes x ", B,
                                      " batches; labels must be class ids below 2^31"));
  const auto C = static_cast<std::size_t>(num_classes);
  std::vector<double> h(B * C, 1.0);
  for (std::size_t b = 0; b < B; ++b) {
    double tot = static_cast<double>(C);
    for (const auto l : output_labels(b)) {
      if (l < 0) continue;
      if (l >= num_classes)
        throw out_of_range(detail::concat("label_distance_matrix: batch ", b, " has label ", l,
                                          " >= num_classes = ", num_classes));
      h[b * C + static_cast<std::size_t>(l)] += 1;
      tot += 1;
    }
    for (std::size_t c = 0; c < C; ++c) h[b * C + c] /= tot;
  }
  std::vector<double> d(B * B, 0.0);
  for (std::size_t a = 0; a < B; ++a)
    for (std::size_t b = a + 1; b < B; ++b) {
      double s = 0;
      for (std::size_t c = 0; c < C; ++c) {
        const double p = h[a * C + c], q = h[b * C + c];
        s += (p - q) * std::log(p / q);
      }
      d[a * B + b] = d[b * B + a] = s;
    }
  return d;
}

/// Distances between a plan's batches from per-node labels (`labels[v]`, -1 = unlabelled).
/// `num_classes` <= 0: 1 + the largest label.
template <class I>
std::vector<double> label_distance_matrix(const batch_plan<I>& plan,
                                          std::span<const std::int64_t> labels,
                                          std::int64_t num_classes = 0) {
  for (const auto v : plan.outputs)
    IBMB_EXPECTS(v >= 0 && static_cast<std::size_t>(v) < labels.size(),
                 "label_distance_matrix: output ", v, " has no label (", labels.size(), " labels)");
  if (num_classes <= 0)
    for (const auto l : labels)  // (no l + 1 overflow for a corrupted INT64_MAX label)
      num_classes = std::max<std::int64_t>(
          num_classes, l < std::numeric_limits<std::int64_t>::max() ? l + 1 : l);
  num_classes = std::max<std::int64_t>(num_classes, 1);
  std::vector<std::int64_t> buf;
  return label_distance_matrix(plan.num_batches(), num_classes, [&](std::size_t b) {
    buf.clear();
    for (const auto v : plan.batch_outputs(b)) buf.push_back(labels[static_cast<std::size_t>(v)]);
    return std::span<const std::int64_t>(buf);
  });
}

/// Distances between a store's batches from the stored output labels.
inline std::vector<double> label_distance_matrix(const batch_store& s,
                                                 std::int64_t num_classes = 0) {
  IBMB_EXPECTS(s.has_labels(), "label_distance_matrix: the store holds no labels");
  if (num_classes <= 0) num_classes = std::max<std::int64_t>(s.num_classes(), 1);
  return label_distance_matrix(s.num_batches(), num_classes,
                               [&](std::size_t b) { return s.batch(b).output_labels(); });
}

/// Computes the batch order for `B` batches with the row-major B x B distance matrix `dist`
/// (symmetric, as `label_distance_matrix` gives; finite). Deterministic for a given seed.
inline schedule_result batch_schedule(std::span<const double> dist, std::size_t B,
                                      const schedule_params& p = {}) {
  IBMB_EXPECTS(B <= (std::size_t{1} << 31) && dist.size() == B * B, "batch_schedule: ", dist.size(),
               " distances for ", B, " batches (expected B x B, B <= 2^31)");
  // max_seconds becomes a steady_clock deadline (int64 nanoseconds): a year at most, so that
  // an infinite or huge value cannot overflow it into the past.
  IBMB_EXPECTS(
      p.max_iterations >= 0 && p.random_samples >= 0 && p.max_seconds > 0 && p.max_seconds <= 3.2e7,
      "batch_schedule: max_iterations = ", p.max_iterations,
      ", random_samples = ", p.random_samples, ", max_seconds = ", p.max_seconds,
      " (expected in (0, 3.2e7])");
  // The exact search enumerates (B - 1)! / 2 tours and does not watch the clock.
  IBMB_EXPECTS(p.exact_up_to <= 12, "batch_schedule: exact_up_to = ", p.exact_up_to,
               " (at most 12: the exact tour enumerates (B - 1)! / 2 tours)");
  double dmax = 0;
  for (std::size_t i = 0; i < dist.size(); ++i) {
    IBMB_EXPECTS(std::isfinite(dist[i]) && dist[i] >= 0, "batch_schedule: distance [",
                 i / std::max<std::size_t>(B, 1), ", ", i % std::max<std::size_t>(B, 1),
                 "] = ", dist[i], " (expected finite and >= 0)");
    dmax = std::max(dmax, dist[i]);
  }
  schedule_result r;
  detail::splitmix64 rng{p.seed ^ 0x5bd1e995a3c4f2b1ull};
  std::vector<std::int64_t> ident(B);
  std::iota(ident.begin(), ident.end(), 0);
  detail::tour_search s{dist, B, 1e-12 * std::max(dmax, 1e-300),
                        std::chrono::steady_clock::now() +
                            std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                                std::chrono::duration<double>(p.max_seconds))};
  r.identity_distance = s.length(ident);
  {
    detail::splitmix64 rr{p.seed ^ 0x2545f4914f6cdd1dull};
    double sum = 0;
    for (std::int64_t k = 0; k < p.random_samples; ++k) {
      auto t = ident;
      detail::shuffle(t, rr);
      sum += s.length(t);
    }
    r.random_distance = p.random_samples > 0 ? sum / static_cast<double>(p.random_samples) : 0;
  }
  if (B <= 2) {
    r.order = ident;
  } else if (p.kind == schedule_kind::rand) {
    r.order = ident;
    detail::shuffle(r.order, rng);
  } else if (p.kind == schedule_kind::sample) {
    std::vector<char> used(B, 0);
    auto cur = static_cast<std::int64_t>(rng.below(B));
    r.order.push_back(cur);
    used[static_cast<std::size_t>(cur)] = 1;
    while (r.order.size() < B) {
      double tot = 0;
      for (std::size_t j = 0; j < B; ++j)
        if (!used[j]) tot += s.at(cur, static_cast<std::int64_t>(j));
      std::int64_t pick = -1;
      if (tot > 0) {
        double x = rng.uniform() * tot;
        for (std::size_t j = 0; j < B; ++j) {
          if (used[j]) continue;
          pick = static_cast<std::int64_t>(j);  // the last unvisited absorbs rounding
          x -= s.at(cur, pick);
          if (x < 0 && s.at(cur, pick) > 0) break;
        }
      } else {
        auto k = rng.below(B - r.order.size());
        for (std::size_t j = 0; j < B; ++j)
          if (!used[j] && k-- == 0) {
            pick = static_cast<std::int64_t>(j);
            break;
          }
      }
      used[static_cast<std::size_t>(pick)] = 1;
      r.order.push_back(pick);
      cur = pick;
    }
  } else if (static_cast<std::int64_t>(B) <= p.exact_up_to) {
    r.order = detail::exact_tour(s);
    r.exact = true;
  } else {
    // Starts: the identity order, then greedy constructions from up to 8 seeded starts.
    auto best = ident;
    s.local_search(best);
    double best_len = s.length(best);
    auto starts = ident;
    detail::shuffle(starts, rng);
    starts.resize(std::min<std::size_t>(B, 8));
    for (const auto st : starts) {
      if (s.out_of_time()) break;
      auto t = s.greedy(st);
      s.local_search(t);
      const double l = s.length(t);
      if (l > best_len + s.tol) {
        best_len = l;
        best = std::move(t);
      }
    }
    // Iterated local search: double-bridge kicks (segment reversal for small B).
    for (std::int64_t it = 0; it < p.max_iterations && !s.out_of_time(); ++it) {
      auto t = best;
      if (B >= 8) {
        std::size_t c[3];
        for (auto& x : c) x = 1 + static_cast<std::size_t>(rng.below(B - 1));
        std::sort(c, c + 3);
        if (c[0] == c[1] || c[1] == c[2]) continue;
        std::vector<std::int64_t> k;
        k.reserve(B);
        k.insert(k.end(), t.begin(), t.begin() + static_cast<std::ptrdiff_t>(c[0]));
        k.insert(k.end(), t.begin() + static_cast<std::ptrdiff_t>(c[2]), t.end());
        k.insert(k.end(), t.begin() + static_cast<std::ptrdiff_t>(c[1]),
                 t.begin() + static_cast<std::ptrdiff_t>(c[2]));
        k.insert(k.end(), t.begin() + static_cast<std::ptrdiff_t>(c[0]),
                 t.begin() + static_cast<std::ptrdiff_t>(c[1]));
        t = std::move(k);
      } else {
        auto i = static_cast<std::size_t>(rng.below(B)), j = static_cast<std::size_t>(rng.below(B));
        if (i > j) std::swap(i, j);
        std::reverse(t.begin() + static_cast<std::ptrdiff_t>(i),
                     t.begin() + static_cast<std::ptrdiff_t>(j) + 1);
      }
      ++r.iterations;
      s.local_search(t);
      const double l = s.length(t);
      if (l > best_len + s.tol) {
        best_len = l;
        best = std::move(t);
      }
    }
    r.order = std::move(best);
    r.time_capped = s.capped;
  }
  r.distance = s.length(r.order);
  return r;
}

}  // namespace ibmb
