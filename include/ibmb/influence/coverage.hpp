// ibmb: influence coverage of a batching: for every output node s of a `batch_plan`, the
// fraction of s's PPR mass that lies inside s's batch,
//   coverage(s) = sum_{v in batch(s)} ppr(s, v) / sum_v ppr(s, v),
// with its mean and percentiles. It compares any planner (IBMB, Cluster-GCN, random, k-hop)
// on the same footing. The PPR rows come from the caller (e.g. `nodewise_ppr`), so the
// measure does not depend on how they were computed; their accuracy (eps, top-k) bounds the
// accuracy of the coverage.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <span>
#include <vector>

#include "ibmb/batch/plan.hpp"
#include "ibmb/core/error.hpp"
#include "ibmb/core/parallel.hpp"
#include "ibmb/graph/csr.hpp"
#include "ibmb/ppr/ppr_types.hpp"

namespace ibmb {

/// Coverage per output and its distribution. Percentiles interpolate linearly between order
/// statistics (NumPy's default: position q * (count - 1) in the sorted values). All zero
/// when the plan has no outputs.
struct coverage_stats {
  std::vector<double> per_output;  ///< aligned with `plan.outputs` (batch by batch)
  std::int64_t count = 0;
  double mean = 0, min = 0, p5 = 0, p25 = 0, median = 0, p75 = 0, p95 = 0, max = 0;
};

namespace detail {

/// Linear-interpolation percentile of sorted values (q in [0, 1]).
inline double percentile_sorted(const std::vector<double>& s, double q) {
  if (s.empty()) return 0;
  const double pos = q * static_cast<double>(s.size() - 1);
  const auto lo = static_cast<std::size_t>(std::floor(pos));
  const auto hi = std::min(lo + 1, s.size() - 1);
  return s[lo] + (pos - static_cast<double>(lo)) * (s[hi] - s[lo]);
}

inline void fill_distribution(coverage_stats& r) {
  r.count = static_cast<std::int64_t>(r.per_output.size());
  if (r.per_output.empty()) return;
  std::vector<double> s = r.per_output;
  std::sort(s.begin(), s.end());
  double sum = 0;
  for (double x : r.per_output) sum += x;  // in plan order: independent of threads
  r.mean = sum / static_cast<double>(s.size());
  r.min = s.front();
  r.max = s.back();
  r.p5 = percentile_sorted(s, 0.05);
  r.p25 = percentile_sorted(s, 0.25);
  r.median = percentile_sorted(s, 0.5);
  r.p75 = percentile_sorted(s, 0.75);
  r.p95 = percentile_sorted(s, 0.95);
}

}  // namespace detail

/// Influence coverage of `plan`. `ppr` holds one PPR row per entry of `row_output` (row i
/// belongs to output node `row_output[i]`; columns are node ids in [0, ppr.num_cols)); a
/// repeated output uses its first row. Every output of the plan needs a row with positive
/// mass (`ibmb::invalid_argument` otherwise); rows of nodes that are no output of the plan
/// are ignored. Parallel over batches; the result does not depend on the thread count.
template <class I, class O, class W>
coverage_stats influence_coverage(const batch_plan<I>& plan, csr_view<I, O, W> ppr,
                                  std::span<const I> row_output) {
  IBMB_EXPECTS(static_cast<std::size_t>(ppr.num_rows) == row_output.size(),
               "influence_coverage: ", ppr.num_rows, " PPR rows but ", row_output.size(),
               " row outputs");
  // The shape first (an empty indptr with rows, short or inconsistent arrays index out of
  // bounds below): one parallel pass over the entries, no more than the rows read below.
  try {
    ppr.validate();
  } catch (const format_error& e) {
    throw invalid_argument(detail::concat("influence_coverage: the PPR matrix: ", e.what()));
  }
  IBMB_EXPECTS(ppr.has_weights() || ppr.num_edges() == 0,
               "influence_coverage: the PPR rows carry no values");
  const auto N = static_cast<std::int64_t>(ppr.num_cols);
  try {
    plan.validate(static_cast<I>(N));
  } catch (const format_error& e) {
    throw invalid_argument(detail::concat("influence_coverage: ", e.what()));
  }
  std::vector<std::int64_t> row_of(static_cast<std::size_t>(N), -1);
  for (std::size_t i = 0; i < row_output.size(); ++i) {
    const I s = row_output[i];
    IBMB_EXPECTS(s >= 0 && s < N, "influence_coverage: row ", i, " belongs to node ", s,
                 " outside [0, ", N, ")");
    if (row_of[static_cast<std::size_t>(s)] < 0)
      row_of[static_cast<std::size_t>(s)] = static_cast<std::int64_t>(i);
  }
  for (const I s : plan.outputs)
    IBMB_EXPECTS(row_of[static_cast<std::size_t>(s)] >= 0, "influence_coverage: output ", s,
                 " has no PPR row");
  coverage_stats r;
  r.per_output.assign(plan.outputs.size(), 0.0);
  const auto B = static_cast<std::int64_t>(plan.num_batches());
  std::int64_t bad = -1;           // smallest output position whose row has no positive mass
  detail::region_failure failure;  // carries a bad_alloc of the stamps out of the region
#pragma omp parallel
  {
    std::vector<std::int64_t> stamp;
    failure.run([&] { stamp.assign(static_cast<std::size_t>(N), -1); });
    std::int64_t my_bad = -1;
#pragma omp for schedule(dynamic, 1)
    for (std::int64_t b = 0; b < B; ++b) {
      if (failure.stopped()) continue;
      for (const I v : plan.batch_nodes(static_cast<std::size_t>(b)))
        stamp[static_cast<std::size_t>(v)] = b;
      const auto o0 = plan.output_ptr[static_cast<std::size_t>(b)];
      const auto outs = plan.batch_outputs(static_cast<std::size_t>(b));
      for (std::size_t k = 0; k < outs.size(); ++k) {
        const auto row = static_cast<I>(row_of[static_cast<std::size_t>(outs[k])]);
        const auto cols = ppr.neighbors(row);
        const auto vals = ppr.neighbor_weights(row);
        double in = 0, tot = 0;
        for (std::size_t p = 0; p < cols.size(); ++p) {
          const double w = static_cast<double>(vals[p]);
          tot += w;
          if (cols[p] >= 0 && cols[p] < N && stamp[static_cast<std::size_t>(cols[p])] == b) in += w;
        }
        const auto pos = o0 + static_cast<std::int64_t>(k);
        if (!(tot > 0)) {
          if (my_bad < 0 || pos < my_bad) my_bad = pos;
          continue;
        }
        r.per_output[static_cast<std::size_t>(pos)] = in / tot;
      }
    }
#pragma omp critical
    if (my_bad >= 0 && (bad < 0 || my_bad < bad)) bad = my_bad;
  }
  failure.rethrow();
  if (bad >= 0)
    throw invalid_argument(detail::concat("influence_coverage: the PPR row of output ",
                                          plan.outputs[static_cast<std::size_t>(bad)],
                                          " has no positive mass"));
  detail::fill_distribution(r);
  return r;
}

/// Same, with the rows of `nodewise_ppr` (row i belongs to `m.outputs[i]`).
template <class I, class V>
coverage_stats influence_coverage(const batch_plan<I>& plan, const ppr_matrix<I, V>& m) {
  const csr_view<I, std::int64_t, V> v(static_cast<I>(m.num_rows), static_cast<I>(m.num_cols),
                                       std::span<const std::int64_t>(m.indptr),
                                       std::span<const I>(m.indices), std::span<const V>(m.values));
  return influence_coverage(plan, v, std::span<const I>(m.outputs));
}

}  // namespace ibmb
