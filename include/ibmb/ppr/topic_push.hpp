// ibmb: topic-sensitive PPR by a multi-source forward push seeded with the teleport
// distribution, the sparse alternative to the power iteration of ppr/topic.hpp. Same scores
// (both transitions) up to the push's error bound, one push per teleport set, sets in
// parallel, results independent of the thread count.
//
// Which push computes which score (A symmetric, Pi = alpha (I - (1 - alpha) D^-1 A)^-1, row u
// of Pi is PPR(u, .), t the teleport distribution of a set):
// - The forward push started from residual r = alpha t maintains p + r^T Pi / alpha = t^T Pi,
//   so it converges to x_v = sum_u t_u PPR(u, v): the textbook score, the fixed point of the
//   power iteration with A D^-1 (`ppr_transition::column`).
// - The power iteration with D^-1 A (`ppr_transition::row`, the reference) converges to
//   x = Pi t. Since D Pi is symmetric (d_u PPR(u, v) = d_v PPR(v, u)), Pi t = D^-1 Pi^T D t:
//   push from the degree-weighted distribution D t / Z (Z = sum_u t_u d_u) and rescale,
//   x_v = Z p_v / d_v, i.e. x_v = sum_u t_u d_u PPR(u, v) / d_v.
// Degrees count the entries of a row (self-loops included, weights ignored), as in push.hpp;
// a node without entries keeps its mass (as if it had a self-loop: degree 1 in the rescaling).
//
// Error bound (exact arithmetic; rounding adds a few ulps per push): the push stops when every
// residual is below alpha * eps * deg, which leaves, for every node v,
//   column: 0 <= x_v - estimate_v < eps * deg(v)
//   row:    0 <= x_v - estimate_v < eps * Z,   Z = sum_u t_u max(deg(u), 1) (the set's mean degree)
// The work per set is at most 1 / (alpha * eps) edge relaxations (plus the seeding). A seed
// whose residual is already below its threshold is not pushed at all, so eps must be well below
// 1 / (|set| * deg) for large sets to get any estimate for their members.
#pragma once

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <exception>
#include <span>
#include <type_traits>
#include <utility>
#include <vector>

#include "ibmb/core/error.hpp"
#include "ibmb/core/parallel.hpp"
#include "ibmb/core/progress.hpp"
#include "ibmb/graph/csr.hpp"
#include "ibmb/ppr/ppr_types.hpp"
#include "ibmb/ppr/push.hpp"
#include "ibmb/ppr/topic.hpp"
#include "ibmb/ppr/topk.hpp"

namespace ibmb {

struct topic_push_params {
  double alpha = 0.25;  ///< teleport probability, in (0, 1]
  /// Push threshold: push v while r(v) >= alpha * eps * deg(v), with the seed distribution
  /// normalized to total mass 1 (see the error bound above); > 0.
  double eps = 1e-6;
  ppr_transition transition = ppr_transition::row;  ///< same meaning as for the power iteration
  push_order order = push_order::lifo;
  int threads = 0;             ///< OpenMP threads for this call; <= 0 keeps the current setting
  progress_callback progress;  ///< ("topic_push", sets done, sets total), calling thread only
};

struct topic_push_stats {
  std::int64_t sets = 0;
  push_counters counters;  ///< summed over sets (integers: identical for any thread count)
};

namespace detail {

/// One thread's state for multi-source pushes: dense per-node state (as push_workspace),
/// reset in O(work) between pushes.
template <class I, class V>
class topic_push_workspace {
 public:
  template <class O, class W>
  void prepare(csr_view<I, O, W> g, double alpha, double eps) {
    state_.reset(g.indptr.data(), g.indices.data(), static_cast<std::size_t>(g.num_rows), alpha,
                 eps);
  }
  void clear() { state_.clear(); }

  [[nodiscard]] std::span<const I> settled_nodes() const { return state_.settled_nodes(); }
  [[nodiscard]] V estimate(I v) const { return state_.estimate(v); }

  /// Adds residual `mass` at node v (the seeding). Call `run` once all seeds are in.
  void seed(I v, V mass) { state_.add_residual(v, mass); }

  /// Pushes until every residual is below its threshold. No checks.
  template <class O, class W>
  push_counters run(csr_view<I, O, W> g, double alpha, push_order order) {
    // Seeds in first-touch order (the order of the set) whose residual crossed the threshold.
    state_.enqueue_ready();
    return state_.drain(g.indptr.data(), g.indices.data(), alpha, order);
  }

 private:
  push_state<I, V> state_;
};

template <class I, class O, class W>
void check_topic_push(csr_view<I, O, W> g, teleport_sets<I> sets, const topic_push_params& p,
                      const char* who) {
  IBMB_EXPECTS(p.alpha > 0.0 && p.alpha <= 1.0, who, ": alpha = ", p.alpha, " outside (0, 1]");
  IBMB_EXPECTS(p.eps > 0.0 && std::isfinite(p.eps), who, ": eps = ", p.eps,
               " must be positive and finite");
  IBMB_EXPECTS(p.order == push_order::lifo || p.order == push_order::fifo, who,
               ": unknown push order ", static_cast<int>(p.order));
  IBMB_EXPECTS(p.transition == ppr_transition::row || p.transition == ppr_transition::column, who,
               ": unknown transition ", static_cast<int>(p.transition));
  topic_ppr_params tp;
  tp.alpha = p.alpha;
  check_teleport_sets(g, sets, tp);
  g.validate();  // the push indexes by column id: an id >= N would read out of bounds
}

/// Runs one push per set (dynamic schedule over sets, one workspace per thread) and hands
/// `emit(s, entries)` the settled (score, node) pairs of set s, scores already rescaled.
/// `emit` runs on the worker threads, once per set, and must only touch slot s.
template <class V, class I, class O, class W, class Emit>
topic_push_stats topic_push_each(csr_view<I, O, W> g, teleport_sets<I> sets,
                                 const topic_push_params& p, Emit&& emit) {
  const std::int64_t total = sets.size();
  topic_push_stats st;
  st.sets = total;
  if (total == 0) return st;
  scoped_threads guard(p.threads);
  const int nthreads = static_cast<int>(std::min<std::int64_t>(max_threads(), total));
  std::vector<push_counters> per_thread(static_cast<std::size_t>(nthreads));
  std::atomic<std::int64_t> done{0};
  std::atomic<bool> abort{false};
  std::exception_ptr failure;
  const bool row = p.transition == ppr_transition::row;
  auto deg1 = [&](I v) {  // degree with the implied self-loop of an isolated node
    const auto d =
        g.indptr[static_cast<std::size_t>(v) + 1] - g.indptr[static_cast<std::size_t>(v)];
    return d > 0 ? static_cast<double>(d) : 1.0;
  };
#pragma omp parallel num_threads(nthreads)
  {
    const int t = thread_id();
    topic_push_workspace<I, V> ws;
    std::vector<std::pair<V, I>> entries;
    push_counters local;
    try {
      ws.prepare(g, p.alpha, p.eps);
    } catch (...) {
#pragma omp critical(ibmb_topic_push_failure)
      if (!failure) failure = std::current_exception();
      abort = true;
    }
#pragma omp for schedule(dynamic, 1)
    for (std::int64_t s = 0; s < total; ++s) {
      if (abort.load(std::memory_order_relaxed)) continue;
      try {
        const auto set = sets.set(s);
        const double m = 1.0 / static_cast<double>(set.size());
        double z = 1.0;  // row: Z = sum_u t_u d_u; seeds carry t_u d_u / Z
        if (row) {
          z = 0;
          for (I u : set) z += m * deg1(u);
        }
        ws.clear();
        for (I u : set) ws.seed(u, static_cast<V>(p.alpha * m * (row ? deg1(u) / z : 1.0)));
        local += ws.run(g, p.alpha, p.order);
        entries.clear();
        for (I v : ws.settled_nodes()) {
          const V x = row ? static_cast<V>(static_cast<double>(ws.estimate(v)) * z / deg1(v))
                          : ws.estimate(v);
          entries.emplace_back(x, v);
        }
        emit(s, entries);
        const auto d = done.fetch_add(1, std::memory_order_relaxed) + 1;
        if (p.progress && t == 0) p.progress("topic_push", d, total);
      } catch (...) {
#pragma omp critical(ibmb_topic_push_failure)
        if (!failure) failure = std::current_exception();
        abort = true;
      }
    }
    per_thread[static_cast<std::size_t>(t)] = local;
  }
  if (failure) std::rethrow_exception(failure);
  for (const auto& c : per_thread) st.counters += c;
  report(p.progress, "topic_push", total, total);
  return st;
}

}  // namespace detail

/// Every settled entry of each set's push (nodes popped at least once), sorted by id, with the
/// scores of `p.transition` (see the error bound at the top of this header). Row s belongs to
/// teleport set s. The graph should be undirected (the rescaling of the row transition relies
/// on it). Bytes identical for any thread count.
template <class V = float, class I, class O, class W>
std::vector<sparse_row<I, V>> topic_push_rows(csr_view<I, O, W> g, teleport_sets<I> sets,
                                              const topic_push_params& p,
                                              topic_push_stats* stats = nullptr) {
  detail::check_topic_push(g, sets, p, "topic_push_rows");
  std::vector<sparse_row<I, V>> rows(static_cast<std::size_t>(sets.size()));
  auto st =
      detail::topic_push_each<V>(g, sets, p, [&](std::int64_t s, std::vector<std::pair<V, I>>& e) {
        std::sort(e.begin(), e.end(),
                  [](const auto& a, const auto& b) { return a.second < b.second; });
        auto& r = rows[static_cast<std::size_t>(s)];
        r.indices.reserve(e.size());
        r.values.reserve(e.size());
        for (const auto& [x, v] : e) {
          r.indices.push_back(v);
          r.values.push_back(x);
        }
      });
  if (stats) *stats = st;
  return rows;
}

/// The `k` highest-scoring nodes of each set among positive push estimates, scores descending,
/// ties by id ascending: the same result shape as `topic_ppr_topk`. Bytes identical for any
/// thread count.
template <class V = float, class I, class O, class W>
topk_lists<I, V> topic_push_topk(csr_view<I, O, W> g, teleport_sets<I> sets, std::int64_t k,
                                 const topic_push_params& p, topic_push_stats* stats = nullptr) {
  IBMB_EXPECTS(k >= 0, "topic_push_topk: k must be >= 0, got ", k);
  detail::check_topic_push(g, sets, p, "topic_push_topk");
  std::vector<std::vector<std::pair<V, I>>> best(static_cast<std::size_t>(sets.size()));
  auto st =
      detail::topic_push_each<V>(g, sets, p, [&](std::int64_t s, std::vector<std::pair<V, I>>& e) {
        const score_then_id_order better;
        std::erase_if(e, [](const auto& x) { return !(x.first > V{0}); });
        const auto take = static_cast<std::size_t>(
            std::min<std::int64_t>(k, static_cast<std::int64_t>(e.size())));
        if (take < e.size()) {
          std::nth_element(e.begin(), e.begin() + static_cast<std::ptrdiff_t>(take), e.end(),
                           better);
          e.resize(take);
        }
        std::sort(e.begin(), e.end(), better);
        best[static_cast<std::size_t>(s)].assign(e.begin(), e.end());
      });
  if (stats) *stats = st;
  topk_lists<I, V> out;
  for (const auto& b : best) {
    for (const auto& [x, v] : b) {
      out.ids.push_back(v);
      out.scores.push_back(x);
    }
    out.ptr.push_back(static_cast<std::int64_t>(out.ids.size()));
  }
  return out;
}

}  // namespace ibmb
