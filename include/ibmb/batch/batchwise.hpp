// ibmb: batch-wise IBMB planner: METIS parts over the whole graph; the outputs of a part
// form one batch, and its auxiliary nodes are the top nodes of a topic-sensitive PPR that
// teleports to those outputs.
#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <span>
#include <type_traits>
#include <vector>

#include "ibmb/batch/nodewise.hpp"
#include "ibmb/batch/plan.hpp"
#include "ibmb/core/error.hpp"
#include "ibmb/core/progress.hpp"
#include "ibmb/graph/csr.hpp"
#include "ibmb/partition/metis.hpp"
#include "ibmb/ppr/topic.hpp"
#include "ibmb/ppr/topic_push.hpp"

namespace ibmb {

/// How the topic-sensitive PPR scores of each part are computed.
enum class topic_solver {
  power_iteration,  ///< dense N x block power iteration (ppr/topic.hpp), `ppr` parameters
  push,             ///< one multi-source forward push per part (ppr/topic_push.hpp), `push_eps`
};

struct batchwise_params {
  /// METIS parts over all nodes (the paper's train/val/test defaults are e.g. 4/2/2 for
  /// ogbn-arxiv, 16/8/8 for ogbn-products).
  std::int32_t parts = 16;
  /// Auxiliary nodes per batch: the top min(N, ceil(aux_ratio * N / parts)) by score (1 in every
  /// configuration of the reference).
  double aux_ratio = 1.0;
  /// Power iteration (defaults: alpha 0.25, 50 iterations, D^-1 A as the reference).
  topic_ppr_params ppr;
  /// Solver for the scores; the push uses `ppr.alpha`, `ppr.transition` and `push_eps`.
  /// Measured (bench_topic, docs/benchmarks.md, 2 shared cores): the push wins at >= 0.95
  /// top-k recall in every configuration tried: 50 sets, 100k nodes: 0.41 s (recall 0.994)
  /// vs 3.7 s for 50 power iterations; 1M nodes: 14.4 s (0.994) vs 74.7 s; 16 sets at 1M
  /// (k = 62.5k): 18.0 s (0.995, automatic eps) or 6.3 s (0.976, eps 1e-7) vs 29.4 s;
  /// batchwise_plan at 2.4M nodes, 16 parts: 26.9 s vs 69.3 s. So the push is the default;
  /// `power_iteration` reproduces the reference exactly (50 iterations of D^-1 A).
  topic_solver solver = topic_solver::push;
  /// Push threshold (seed mass normalized to 1; see ppr/topic_push.hpp). 0 (default) picks
  /// eps = 2e-3 / k * min(1, 32 / d) with k = ceil(aux_ratio * N / parts) the auxiliaries per
  /// batch and d = nnz / N the mean degree (`auto_topic_push_eps`): the k-th score of a set is
  /// O(1 / k), and the push error bound is eps times a degree (ppr/topic_push.hpp), so eps must
  /// shrink with k and, on denser graphs, with the degree. eps * k = 2e-3 gave a top-k recall
  /// of 0.994 against converged scores on the generator (d = 24) at both 100k (eps 1e-6,
  /// k 2000) and 1M nodes (eps 1e-7, k 20000); eps * k = 2e-2 gave 0.89 (docs/benchmarks.md).
  /// Without the degree factor, mean degrees of a few hundred (Reddit: about 490) left most
  /// batches with their outputs only: no other node's residual reached its threshold.
  double push_eps = 0;
  /// METIS options (seed, method, imbalance); `parts` above overrides `metis.parts`.
  partition_params metis;
  /// Optional; stages "partition" and "topic_ppr", from the calling thread only.
  progress_callback progress;
};

struct batchwise_stats {
  double partition_seconds = 0;
  double ppr_seconds = 0;
  std::int64_t edge_cut = 0;
  std::int32_t empty_parts = 0;  ///< parts without outputs (skipped)
  topic_ppr_stats ppr;
  topic_push_stats push;  ///< with topic_solver::push
};

/// The push threshold `batchwise_params::push_eps = 0` stands for: 2e-3 / k, times 32 / d on
/// graphs whose mean degree d = nnz / N exceeds 32.
inline double auto_topic_push_eps(std::int64_t num_nodes, std::int64_t num_entries,
                                  std::int64_t aux_per_batch) {
  const double d =
      num_nodes > 0 ? static_cast<double>(num_entries) / static_cast<double>(num_nodes) : 0.0;
  return 2e-3 / static_cast<double>(std::max<std::int64_t>(1, aux_per_batch)) *
         std::min(1.0, 32.0 / std::max(d, 1.0));
}

namespace detail {

inline double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

/// The scores of the CPU solvers: top `aux_per_batch` nodes per teleport set by the push or
/// the power iteration (`batchwise_params::solver`).
template <class V, class I, class O, class W>
topk_lists<I, V> cpu_topic_topk(csr_view<I, O, W> g, const teleport_sets<I>& sets,
                                std::int64_t aux_per_batch, const topic_ppr_params& ppr,
                                topic_solver solver, double push_eps, batchwise_stats& st) {
  if (solver == topic_solver::push) {
    topic_push_params pp;
    pp.alpha = ppr.alpha;
    pp.eps = push_eps > 0
                 ? push_eps
                 : auto_topic_push_eps(static_cast<std::int64_t>(g.num_rows),
                                       static_cast<std::int64_t>(g.num_edges()), aux_per_batch);
    pp.transition = ppr.transition;
    pp.progress = ppr.progress;
    return topic_push_topk<V>(g, sets, aux_per_batch, pp, &st.push);
  }
  return topic_ppr_topk<V>(g, sets, aux_per_batch, ppr, &st.ppr);
}

/// Batches from a given part assignment: outputs grouped by part (parts without outputs
/// skipped), auxiliaries = `topk(sets, aux_per_batch)` per group (a `topk_lists`) united
/// with the group's outputs.
template <class I, class TopkFn>
batch_plan<I> plan_from_parts(std::span<const I> sorted_outputs,
                              std::span<const std::int32_t> part_of_output, std::int32_t parts,
                              std::int64_t aux_per_batch, batchwise_stats& st, TopkFn&& topk) {
  // Counting sort of the outputs by part keeps each part's outputs sorted.
  std::vector<std::int64_t> ptr(static_cast<std::size_t>(parts) + 1, 0);
  for (auto p : part_of_output) ++ptr[static_cast<std::size_t>(p) + 1];
  std::int32_t empty = 0;
  for (std::int32_t p = 0; p < parts; ++p) empty += ptr[static_cast<std::size_t>(p) + 1] == 0;
  for (std::size_t p = 0; p < static_cast<std::size_t>(parts); ++p) ptr[p + 1] += ptr[p];
  std::vector<I> grouped(sorted_outputs.size());
  {
    std::vector<std::int64_t> at(ptr.begin(), ptr.end() - 1);
    for (std::size_t i = 0; i < sorted_outputs.size(); ++i)
      grouped[static_cast<std::size_t>(at[static_cast<std::size_t>(part_of_output[i])]++)] =
          sorted_outputs[i];
  }
  // Drop empty parts: a part without outputs is no batch (the reference trips an assert).
  std::vector<std::int64_t> set_ptr{0};
  for (std::size_t p = 0; p < static_cast<std::size_t>(parts); ++p)
    if (ptr[p + 1] > ptr[p]) set_ptr.push_back(ptr[p + 1]);
  st.empty_parts = empty;

  const teleport_sets<I> sets{set_ptr, grouped};
  const auto top = topk(sets, aux_per_batch);
  // `topk` may be the caller's (batchwise_plan_with): its lists must match the sets.
  IBMB_EXPECTS(top.size() == sets.size(), "batchwise_plan: the top-k function returned ",
               top.size(), " lists for ", sets.size(), " teleport sets");
  IBMB_EXPECTS(top.ptr[0] == 0 && top.ptr.back() == static_cast<std::int64_t>(top.ids.size()) &&
                   std::is_sorted(top.ptr.begin(), top.ptr.end()),
               "batchwise_plan: the top-k lists' ptr is not a row pointer into their ",
               top.ids.size(), " ids");

  batch_plan<I> plan;
  std::vector<I> nodes;
  for (std::int64_t b = 0; b < sets.size(); ++b) {
    const auto outs = sets.set(b);
    const auto aux = top.list(b);
    nodes.assign(aux.begin(), aux.end());
    nodes.insert(nodes.end(), outs.begin(), outs.end());
    std::sort(nodes.begin(), nodes.end());
    nodes.erase(std::unique(nodes.begin(), nodes.end()), nodes.end());
    plan.push_batch(outs, nodes);
  }
  return plan;
}

}  // namespace detail

/// Batch-wise IBMB. The graph should be preprocessed as the reference does (undirected,
/// self-loops: `make_undirected_with_self_loops`); METIS sees it without self-loops and
/// unweighted. `outputs` may come in any order; repeated ids are rejected. The plan depends
/// only on the graph, the set of outputs and the parameters, not on the thread count.
///
/// `batchwise_plan_with` runs the same steps with the scores from `topk(sets, k)` (called
/// once with the teleport sets of all non-empty parts; returns a `topk_lists<I, V>` with the
/// top k nodes of each set's topic-sensitive PPR), e.g. a GPU solver (cuda/topic.cuh);
/// `prm.solver` and `prm.push_eps` are then unused.
template <class I, class O, class W, class TopkFn>
batch_plan<I> batchwise_plan_with(csr_view<I, O, W> g,
                                  std::type_identity_t<std::span<const I>> outputs,
                                  const batchwise_params& prm, TopkFn&& topk,
                                  batchwise_stats* stats = nullptr) {
  IBMB_EXPECTS(g.num_rows == g.num_cols, "batchwise_plan: the graph must be square, got ",
               g.num_rows, " x ", g.num_cols);
  IBMB_EXPECTS(prm.parts >= 1, "batchwise_plan: parts = ", prm.parts, " must be >= 1");
  IBMB_EXPECTS(prm.parts <= std::max<std::int64_t>(1, static_cast<std::int64_t>(g.num_rows)),
               "batchwise_plan: parts = ", prm.parts, " exceeds the ", g.num_rows, " nodes");
  IBMB_EXPECTS(prm.aux_ratio >= 0 && std::isfinite(prm.aux_ratio),
               "batchwise_plan: aux_ratio = ", prm.aux_ratio, " must be finite and >= 0");
  for (std::size_t i = 0; i < outputs.size(); ++i)
    IBMB_EXPECTS(outputs[i] >= 0 && outputs[i] < g.num_rows, "batchwise_plan: outputs[", i,
                 "] = ", outputs[i], " outside [0, ", g.num_rows, ")");
  detail::check_unique_outputs(outputs, "batchwise_plan");
  batchwise_stats st;
  if (outputs.empty()) {
    if (stats) *stats = st;
    return {};
  }
  std::vector<I> sorted(outputs.begin(), outputs.end());
  std::sort(sorted.begin(), sorted.end());

  auto t0 = std::chrono::steady_clock::now();
  report(prm.progress, "partition", 0, 1);
  partition_params mp = prm.metis;
  mp.parts = prm.parts;
  const auto part = metis_partition(g, mp);
  st.edge_cut = part.edge_cut;
  st.partition_seconds = detail::seconds_since(t0);
  report(prm.progress, "partition", 1, 1);

  std::vector<std::int32_t> part_of_output(sorted.size());
  for (std::size_t i = 0; i < sorted.size(); ++i)
    part_of_output[i] = part.part[static_cast<std::size_t>(sorted[i])];
  // At most N (a huge ratio would overflow the cast): every node, then.
  const auto aux = static_cast<std::int64_t>(std::min(
      std::ceil(prm.aux_ratio * static_cast<double>(g.num_rows) / static_cast<double>(prm.parts)),
      static_cast<double>(g.num_rows)));
  t0 = std::chrono::steady_clock::now();
  auto plan = detail::plan_from_parts(std::span<const I>(sorted),
                                      std::span<const std::int32_t>(part_of_output), prm.parts, aux,
                                      st, topk);
  st.ppr_seconds = detail::seconds_since(t0);
  try {  // ids from a caller's top-k function must be nodes of g
    plan.validate(g.num_rows);
  } catch (const format_error& e) {
    throw invalid_argument(detail::concat("batchwise_plan: ", e.what()));
  }
  if (stats) *stats = st;
  return plan;
}

template <class V = float, class I, class O, class W>
batch_plan<I> batchwise_plan(csr_view<I, O, W> g, std::type_identity_t<std::span<const I>> outputs,
                             const batchwise_params& prm, batchwise_stats* stats = nullptr) {
  IBMB_EXPECTS(prm.solver == topic_solver::power_iteration || prm.solver == topic_solver::push,
               "batchwise_plan: unknown solver ", static_cast<int>(prm.solver));
  IBMB_EXPECTS(prm.push_eps >= 0 && std::isfinite(prm.push_eps),
               "batchwise_plan: push_eps = ", prm.push_eps,
               " must be finite and >= 0 (0: automatic)");
  topic_ppr_params pp = prm.ppr;
  if (!pp.progress) pp.progress = prm.progress;
  batchwise_stats st, solver_st;
  auto plan = batchwise_plan_with(
      g, outputs, prm,
      [&](const teleport_sets<I>& sets, std::int64_t k) {
        return detail::cpu_topic_topk<V>(g, sets, k, pp, prm.solver, prm.push_eps, solver_st);
      },
      &st);
  st.ppr = solver_st.ppr;
  st.push = solver_st.push;
  if (stats) *stats = st;
  return plan;
}

}  // namespace ibmb
