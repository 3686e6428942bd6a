// Influence coverage against exact PPR rows from a dense solve, the all-nodes plan (1) and
// singleton batches (PPR(s,s) / row sum); percentiles; thread-count independence.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include <Eigen/Dense>
#include <catch2/catch.hpp>

#include "fixtures.hpp"
#include "ibmb/batch/plan.hpp"
#include "ibmb/core/parallel.hpp"
#include "ibmb/graph/build.hpp"
#include "ibmb/influence/coverage.hpp"
#include "ibmb/ppr/push.hpp"

using namespace ibmb;

namespace {

/// Exact row-stochastic PPR: alpha (I - (1 - alpha) D^-1 A)^-1, dense.
Eigen::MatrixXd exact_ppr(const csr_graph<>& g, double alpha) {
  const auto n = static_cast<Eigen::Index>(g.num_rows);
  Eigen::MatrixXd T = Eigen::MatrixXd::Zero(n, n);
  for (Eigen::Index u = 0; u < n; ++u) {
    const auto nb = g.view().neighbors(u);
    for (auto v : nb) T(u, v) += 1.0 / static_cast<double>(nb.size());
  }
  const Eigen::MatrixXd M = Eigen::MatrixXd::Identity(n, n) - (1 - alpha) * T;
  return alpha * M.inverse();
}

/// Dense PPR rows of all nodes as a CSR (every entry kept, zeros dropped).
struct rows_csr {
  std::vector<std::int64_t> ptr{0}, idx, out;
  std::vector<double> val;
  csr_view<std::int64_t, std::int64_t, double> view(std::int64_t n) const {
    return {static_cast<std::int64_t>(out.size()), n, ptr, idx, val};
  }
};

rows_csr to_rows(const Eigen::MatrixXd& P, const std::vector<std::int64_t>& outputs) {
  rows_csr r;
  for (auto s : outputs) {
    for (Eigen::Index v = 0; v < P.cols(); ++v)
      if (P(s, v) != 0) {
        r.idx.push_back(v);
        r.val.push_back(P(s, v));
      }
    r.ptr.push_back(static_cast<std::int64_t>(r.idx.size()));
    r.out.push_back(s);
  }
  return r;
}

}  // namespace

TEST_CASE("coverage: all-nodes plan gives 1, singleton batches give PPR(s,s)/row sum",
          "[coverage]") {
  auto g = make_undirected_with_self_loops(test::two_cliques_with_isolated(4).view());
  const std::int64_t n = g.num_rows;
  const auto P = exact_ppr(g, 0.2);
  std::vector<std::int64_t> outs = {0, 2, 3, 5, 8};
  // rows given in a shuffled order, with a repeated row and a row of a non-output
  std::vector<std::int64_t> row_nodes = {5, 8, 1, 0, 3, 2, 5};
  const auto rows = to_rows(P, row_nodes);

  batch_plan<std::int64_t> all;
  std::vector<std::int64_t> every(static_cast<std::size_t>(n));
  for (std::int64_t v = 0; v < n; ++v) every[static_cast<std::size_t>(v)] = v;
  all.push_batch(std::vector<std::int64_t>{0, 2}, every);
  all.push_batch(std::vector<std::int64_t>{3, 5, 8}, every);
  const auto c1 = influence_coverage(all, rows.view(n), std::span<const std::int64_t>(rows.out));
  REQUIRE(c1.count == 5);
  for (double x : c1.per_output) REQUIRE(x == Approx(1.0).epsilon(1e-12));
  REQUIRE(c1.mean == Approx(1.0));
  REQUIRE(c1.min == Approx(1.0));

  batch_plan<std::int64_t> single;
  for (auto s : outs) single.push_batch(std::vector<std::int64_t>{s}, std::vector<std::int64_t>{s});
  const auto c2 = influence_coverage(single, rows.view(n), std::span<const std::int64_t>(rows.out));
  for (std::size_t k = 0; k < outs.size(); ++k) {
    const auto s = outs[k];
    double sum = 0;
    for (Eigen::Index v = 0; v < P.cols(); ++v) sum += P(s, v);
    REQUIRE(c2.per_output[k] == Approx(P(s, s) / sum).epsilon(1e-12));
  }
  // the isolated node (8) keeps all its mass on itself
  REQUIRE(c2.per_output[4] == Approx(1.0));

  // missing row -> error
  batch_plan<std::int64_t> other;
  other.push_batch(std::vector<std::int64_t>{4}, std::vector<std::int64_t>{4});
  REQUIRE_THROWS_AS(
      influence_coverage(other, rows.view(n), std::span<const std::int64_t>(rows.out)),
      invalid_argument);
}

TEST_CASE("coverage: random plans match a brute-force sum, percentiles, threads", "[coverage]") {
  std::mt19937_64 rng(4);
  std::vector<std::pair<std::int64_t, std::int64_t>> e;
  const std::int64_t n = 40;
  for (int i = 0; i < 90; ++i) {
    auto a = static_cast<std::int64_t>(rng() % n), b = static_cast<std::int64_t>(rng() % n);
    if (a != b) e.emplace_back(std::min(a, b), std::max(a, b));
  }
  auto g = make_undirected_with_self_loops(test::undirected(n, e).view());
  const auto P = exact_ppr(g, 0.25);
  batch_plan<std::int64_t> plan;
  std::vector<std::int64_t> all_outs;
  for (int b = 0; b < 6; ++b) {
    std::vector<std::int64_t> nodes, outs;
    for (std::int64_t v = 0; v < n; ++v)
      if (rng() % 3 == 0) nodes.push_back(v);
    for (auto v : nodes)
      if (v % 6 == b) outs.push_back(v);
    if (outs.empty()) continue;
    plan.push_batch(outs, nodes);
    all_outs.insert(all_outs.end(), outs.begin(), outs.end());
  }
  const auto rows = to_rows(P, all_outs);
  const auto c = influence_coverage(plan, rows.view(n), std::span<const std::int64_t>(rows.out));
  std::vector<double> ref;
  for (std::size_t b = 0; b < plan.num_batches(); ++b)
    for (auto s : plan.batch_outputs(b)) {
      double in = 0, tot = 0;
      for (std::int64_t v = 0; v < n; ++v) {
        tot += P(s, v);
        const auto nb = plan.batch_nodes(b);
        if (std::find(nb.begin(), nb.end(), v) != nb.end()) in += P(s, v);
      }
      ref.push_back(in / tot);
    }
  REQUIRE(c.per_output.size() == ref.size());
  for (std::size_t i = 0; i < ref.size(); ++i)
    REQUIRE(c.per_output[i] == Approx(ref[i]).epsilon(1e-12));
  // percentiles by NumPy's linear rule on the sorted reference
  std::sort(ref.begin(), ref.end());
  auto pct = [&](double q) {
    const double pos = q * static_cast<double>(ref.size() - 1);
    const auto lo = static_cast<std::size_t>(pos);
    const auto hi = std::min(lo + 1, ref.size() - 1);
    return ref[lo] * (1 - (pos - static_cast<double>(lo))) +
           ref[hi] * (pos - static_cast<double>(lo));
  };
  REQUIRE(c.min == ref.front());
  REQUIRE(c.max == ref.back());
  REQUIRE(c.p5 == Approx(pct(0.05)));
  REQUIRE(c.p25 == Approx(pct(0.25)));
  REQUIRE(c.median == Approx(pct(0.5)));
  REQUIRE(c.p75 == Approx(pct(0.75)));
  REQUIRE(c.p95 == Approx(pct(0.95)));
  double mean = 0;
  for (double x : ref) mean += x;
  REQUIRE(c.mean == Approx(mean / static_cast<double>(ref.size())));

  coverage_stats c1, c2;
  {
    scoped_threads t(1);
    c1 = influence_coverage(plan, rows.view(n), std::span<const std::int64_t>(rows.out));
  }
  {
    scoped_threads t(2);
    c2 = influence_coverage(plan, rows.view(n), std::span<const std::int64_t>(rows.out));
  }
  REQUIRE(c1.per_output == c2.per_output);
  REQUIRE(c1.mean == c2.mean);

  // with the rows of nodewise_ppr: the all-nodes plan still covers everything
  ppr_params pp;
  pp.alpha = 0.25;
  pp.eps = 1e-5;
  const auto m = nodewise_ppr(g.view(), std::span<const std::int64_t>(all_outs), pp);
  batch_plan<std::int64_t> everything;
  std::vector<std::int64_t> every(static_cast<std::size_t>(n));
  for (std::int64_t v = 0; v < n; ++v) every[static_cast<std::size_t>(v)] = v;
  auto sorted_outs = all_outs;
  std::sort(sorted_outs.begin(), sorted_outs.end());
  everything.push_batch(sorted_outs, every);
  const auto cm = influence_coverage(everything, m);
  for (double x : cm.per_output) REQUIRE(x == Approx(1.0));
  // and the approximate coverage of the random plan is close to the exact one
  const auto ca = influence_coverage(plan, m);
  for (std::size_t i = 0; i < ca.per_output.size(); ++i)
    REQUIRE(ca.per_output[i] == Approx(c.per_output[i]).margin(0.02));
}

TEST_CASE("coverage: a malformed PPR matrix is an invalid_argument, not a crash", "[coverage]") {
  batch_plan<std::int64_t> plan;
  plan.push_batch(std::vector<std::int64_t>{0}, std::vector<std::int64_t>{0, 1});
  const std::vector<std::int64_t> row_out = {0};
  // One row but an empty indptr: reading row 0 would index past it.
  {
    const csr_view<std::int64_t, std::int64_t, float> v(1, 3, std::span<const std::int64_t>{},
                                                        std::span<const std::int64_t>{},
                                                        std::span<const float>{});
    REQUIRE_THROWS_AS(influence_coverage(plan, v, std::span<const std::int64_t>(row_out)),
                      invalid_argument);
    REQUIRE_THROWS_WITH(influence_coverage(plan, v, std::span<const std::int64_t>(row_out)),
                        Catch::Contains("influence_coverage") && Catch::Contains("indptr"));
  }
  // indptr claims more entries than there are
  {
    const std::vector<std::int64_t> ip = {0, 5}, idx = {0, 1};
    const std::vector<float> val = {0.5f, 0.5f};
    const csr_view<std::int64_t, std::int64_t, float> v(1, 3, std::span<const std::int64_t>(ip),
                                                        std::span<const std::int64_t>(idx),
                                                        std::span<const float>(val));
    REQUIRE_THROWS_AS(influence_coverage(plan, v, std::span<const std::int64_t>(row_out)),
                      invalid_argument);
  }
  // a well-formed one works
  {
    const std::vector<std::int64_t> ip = {0, 2}, idx = {0, 2};
    const std::vector<float> val = {0.75f, 0.25f};
    const csr_view<std::int64_t, std::int64_t, float> v(1, 3, std::span<const std::int64_t>(ip),
                                                        std::span<const std::int64_t>(idx),
                                                        std::span<const float>(val));
    const auto c = influence_coverage(plan, v, std::span<const std::int64_t>(row_out));
    REQUIRE(c.per_output.at(0) == Approx(0.75));
  }
}
