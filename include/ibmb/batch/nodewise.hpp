// ibmb: node-wise IBMB planner: top-k PPR neighbours of every output node (forward push),
// then greedy grouping of the outputs by their mutual PPR scores.
#pragma once

#include <algorithm>
#include <cstdint>
#include <span>
#include <type_traits>
#include <utility>
#include <vector>

#include "ibmb/batch/plan.hpp"
#include "ibmb/core/error.hpp"
#include "ibmb/core/progress.hpp"
#include "ibmb/graph/csr.hpp"
#include "ibmb/partition/merge.hpp"
#include "ibmb/ppr/ppr_types.hpp"
#include "ibmb/ppr/push.hpp"

namespace ibmb {

struct nodewise_params {
  /// PPR of each output (defaults: alpha 0.25, eps 2e-4, k 16; GCN ogbn-arxiv in the paper).
  /// The output is always part of its own list (`include_output` is forced on).
  ppr_params ppr = [] {
    ppr_params p;
    p.topk = 16;
    return p;
  }();
  /// Batch size cap (outputs per batch by default); `merge.max_outputs` must be set.
  merge_params merge;
  /// Optional; called from the calling thread only, stages "ppr", "pairs", "merge".
  progress_callback progress;
};

/// Extra results of `nodewise_plan` for reports and the CLI.
struct nodewise_stats {
  push_counters counters;
  std::int64_t num_pairs = 0;  ///< output pairs with S > 0 visited by the merge
};

namespace detail {

/// Throws `ibmb::invalid_argument` naming both positions of the first repeated output id
/// (first in id order).
template <class I>
void check_unique_outputs(std::span<const I> outputs, const char* who) {
  std::vector<std::pair<I, std::size_t>> s(outputs.size());
  for (std::size_t i = 0; i < outputs.size(); ++i) s[i] = {outputs[i], i};
  std::sort(s.begin(), s.end());
  for (std::size_t k = 1; k < s.size(); ++k)
    IBMB_EXPECTS(s[k].first != s[k - 1].first, who, ": output id ", s[k].first,
                 " appears twice, at positions ", s[k - 1].second, " and ", s[k].second,
                 " (every output must belong to exactly one batch; deduplicate first)");
}

}  // namespace detail

/// Node-wise IBMB: one forward push per output (see `nodewise_ppr`), top-k lists with the
/// output itself, then `symmetric_output_pairs` + `greedy_merge` over the output-to-output
/// scores of the full (not truncated) PPR rows, as the reference does. Every output ends up in
/// exactly one batch; a batch's nodes are its outputs and the union of their top-k lists.
/// `outputs` may come in any order (the plan depends only on the set); repeated ids are
/// rejected (`ibmb::invalid_argument`). The plan is identical for any thread count.
template <class V = float, class I, class O, class W>
batch_plan<I> nodewise_plan(csr_view<I, O, W> g, std::type_identity_t<std::span<const I>> outputs,
                            const nodewise_params& prm, nodewise_stats* stats = nullptr) {
  ppr_params pp = prm.ppr;
  pp.include_output = true;
  detail::check_nodewise_inputs(g, outputs, pp, "nodewise_plan");
  detail::check_unique_outputs(outputs, "nodewise_plan");
  if (prm.merge.cap == merge_cap::outputs)
    IBMB_EXPECTS(prm.merge.max_outputs > 0,
                 "nodewise_plan: merge.max_outputs = ", prm.merge.max_outputs, " must be > 0");
  else
    IBMB_EXPECTS(prm.merge.max_nodes > 0, "nodewise_plan: merge.max_nodes = ", prm.merge.max_nodes,
                 " must be > 0");
  // Work on the sorted ids: positions then follow ids, so the plan depends only on the set of
  // outputs, not on the order the caller listed them in.
  std::vector<I> sorted_outputs(outputs.begin(), outputs.end());
  std::sort(sorted_outputs.begin(), sorted_outputs.end());
  outputs = sorted_outputs;
  const auto n_out = static_cast<std::int64_t>(outputs.size());
  if (n_out == 0) return {};

  std::vector<std::int64_t> out_pos(static_cast<std::size_t>(g.num_rows), -1);
  for (std::size_t i = 0; i < outputs.size(); ++i)
    out_pos[static_cast<std::size_t>(outputs[i])] = static_cast<std::int64_t>(i);
  auto rows = detail::nodewise_ppr_impl<V>(g, outputs, pp, out_pos, prm.progress);
  std::vector<std::int64_t>().swap(out_pos);

  report(prm.progress, "pairs", 0, 0);
  const auto pairs = symmetric_output_pairs<V>(n_out, rows.pair_ptr, rows.pair_col, rows.pair_val);
  {
    decltype(rows.pair_col)().swap(rows.pair_col);
    decltype(rows.pair_val)().swap(rows.pair_val);
  }
  report(prm.progress, "merge", 0, 1);
  const auto groups = greedy_merge<V, I>(n_out, std::span<const output_pair<V>>(pairs), prm.merge,
                                         rows.rows.indptr, rows.rows.indices);
  auto plan = groups_to_plan<I>(outputs, groups, rows.rows.indptr, rows.rows.indices);
  report(prm.progress, "merge", 1, 1);
  if (stats) {
    stats->counters = rows.rows.counters;
    stats->num_pairs = static_cast<std::int64_t>(pairs.size());
  }
  return plan;
}

}  // namespace ibmb
