// ibmb: batch-wise IBMB for graphs too large for a dense N x block score matrix (the
// reference's ogbn-papers100M route): node-wise PPR per output, keep the nodes that some
// output's (top-k) PPR row scores above a threshold, METIS-partition the subgraph they induce,
// and give each part's batch the union of its outputs' node-wise top-k lists.
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
#include "ibmb/ppr/push.hpp"

namespace ibmb {

struct batchwise_large_params {
  /// METIS parts of the kept subgraph (the reference: 256 / 32 / 48 for train / val / test on
  /// papers100M). Must not exceed the number of kept nodes.
  std::int32_t parts = 16;
  /// A node is kept when its score in some output's PPR row is > threshold (outputs are
  /// always kept). The rows are the top-k rows of `ppr` (with ppr.topk = 0: every settled
  /// entry).
  double threshold = 5e-4;
  /// Node-wise push per output (alpha, eps, topk, include_output, threads). The reference
  /// uses the union of top-96 lists.
  ppr_params ppr = [] {
    ppr_params p;
    p.topk = 96;
    return p;
  }();
  /// METIS options (seed, method, imbalance); `parts` above overrides `metis.parts`.
  partition_params metis;
  /// Optional; stages "ppr" and "partition", from the calling thread only.
  progress_callback progress;
};

struct batchwise_large_stats {
  double ppr_seconds = 0;
  double partition_seconds = 0;
  std::int64_t kept_nodes = 0;  ///< nodes of the partitioned subgraph (outputs included)
  std::int64_t edge_cut = 0;
  std::int32_t empty_parts = 0;  ///< parts without outputs (skipped)
  push_counters counters;        ///< work of the node-wise pushes
};

/// Builds the plan. The graph should be preprocessed as the reference does (undirected,
/// self-loops: `make_undirected_with_self_loops`). `outputs` may come in any order; repeated ids
/// are rejected. Every output lands in exactly one batch (the part METIS gives it in the kept
/// subgraph); parts without outputs are skipped. A batch's nodes are its outputs united with
/// the top-k lists of its outputs' PPR rows. The plan depends only on the graph, the set of
/// outputs and the parameters, not on the thread count.
template <class V = float, class I, class O, class W>
batch_plan<I> batchwise_large_plan(csr_view<I, O, W> g,
                                   std::type_identity_t<std::span<const I>> outputs,
                                   const batchwise_large_params& prm,
                                   batchwise_large_stats* stats = nullptr) {
  constexpr const char* fn = "batchwise_large_plan";
  IBMB_EXPECTS(prm.parts >= 1, fn, ": parts = ", prm.parts, " must be >= 1");
  IBMB_EXPECTS(std::isfinite(prm.threshold) && prm.threshold >= 0, fn,
               ": threshold = ", prm.threshold, " must be finite and >= 0");
  detail::check_nodewise_inputs(g, outputs, prm.ppr, fn);
  detail::check_unique_outputs(outputs, fn);
  auto seconds_since = [](std::chrono::steady_clock::time_point t) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
  };
  batchwise_large_stats st;
  if (outputs.empty()) {
    if (stats) *stats = st;
    return {};
  }
  // Sorted outputs: row i of the PPR matrix belongs to sorted[i], and grouping by part keeps
  // each batch's outputs sorted.
  std::vector<I> sorted(outputs.begin(), outputs.end());
  std::sort(sorted.begin(), sorted.end());

  auto t0 = std::chrono::steady_clock::now();
  const auto rows = nodewise_ppr<V>(g, std::span<const I>(sorted), prm.ppr, prm.progress);
  st.counters = rows.counters;
  st.ppr_seconds = seconds_since(t0);

  // Kept nodes: outputs plus every entry above the threshold, ascending ids.
  const auto n = static_cast<std::size_t>(g.num_rows);
  std::vector<char> keep(n, 0);
  for (I v : sorted) keep[static_cast<std::size_t>(v)] = 1;
  for (std::size_t i = 0; i < rows.indices.size(); ++i)
    if (static_cast<double>(rows.values[i]) > prm.threshold)
      keep[static_cast<std::size_t>(rows.indices[i])] = 1;
  std::vector<I> kept;
  for (std::size_t v = 0; v < n; ++v)
    if (keep[v]) kept.push_back(static_cast<I>(v));
  st.kept_nodes = static_cast<std::int64_t>(kept.size());
  IBMB_EXPECTS(prm.parts <= st.kept_nodes, fn, ": parts = ", prm.parts, " exceeds the ",
               st.kept_nodes, " nodes kept at threshold ", prm.threshold);

  t0 = std::chrono::steady_clock::now();
  report(prm.progress, "partition", 0, 1);
  partition_params mp = prm.metis;
  mp.parts = prm.parts;
  const auto part = metis_partition_subset(g, std::span<const I>(kept), mp);
  st.edge_cut = part.edge_cut;
  st.partition_seconds = seconds_since(t0);
  report(prm.progress, "partition", 1, 1);

  // Part of each output: kept is sorted, so a merge walk finds the outputs' positions.
  const auto parts = static_cast<std::size_t>(prm.parts);
  std::vector<std::int64_t> ptr(parts + 1, 0);
  std::vector<std::int32_t> part_of(sorted.size());
  {
    std::size_t k = 0;
    for (std::size_t i = 0; i < sorted.size(); ++i) {
      while (kept[k] < sorted[i]) ++k;
      part_of[i] = part.part[k];
      ++ptr[static_cast<std::size_t>(part_of[i]) + 1];
    }
  }
  for (std::size_t p = 0; p < parts; ++p) st.empty_parts += ptr[p + 1] == 0;
  for (std::size_t p = 0; p < parts; ++p) ptr[p + 1] += ptr[p];
  std::vector<std::int64_t> member(sorted.size());  // positions in `sorted`, grouped by part
  {
    std::vector<std::int64_t> at(ptr.begin(), ptr.end() - 1);
    for (std::size_t i = 0; i < sorted.size(); ++i)
      member[static_cast<std::size_t>(at[static_cast<std::size_t>(part_of[i])]++)] =
          static_cast<std::int64_t>(i);
  }
  std::vector<std::vector<I>> batch_nodes(parts);
  detail::region_failure failure;  // a bad_alloc of a batch's list is rethrown after the region
#pragma omp parallel for schedule(dynamic, 1)
  for (std::int64_t p = 0; p < static_cast<std::int64_t>(parts); ++p)
    failure.run([&] {
      auto& nodes = batch_nodes[static_cast<std::size_t>(p)];
      for (auto m = ptr[static_cast<std::size_t>(p)]; m < ptr[static_cast<std::size_t>(p) + 1];
           ++m) {
        const auto i = member[static_cast<std::size_t>(m)];
        nodes.push_back(sorted[static_cast<std::size_t>(i)]);
        const auto r = rows.row_indices(i);
        nodes.insert(nodes.end(), r.begin(), r.end());
      }
      std::sort(nodes.begin(), nodes.end());
      nodes.erase(std::unique(nodes.begin(), nodes.end()), nodes.end());
    });
  failure.rethrow();
  batch_plan<I> plan;
  std::vector<I> outs;
  for (std::size_t p = 0; p < parts; ++p) {
    if (ptr[p + 1] == ptr[p]) continue;
    outs.clear();
    for (auto m = ptr[p]; m < ptr[p + 1]; ++m)
      outs.push_back(sorted[static_cast<std::size_t>(member[static_cast<std::size_t>(m)])]);
    plan.push_batch(outs, batch_nodes[p]);
  }
  if (stats) *stats = st;
  return plan;
}

}  // namespace ibmb
