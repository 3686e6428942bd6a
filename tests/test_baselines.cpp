// Baseline planners: Cluster-GCN style parts, random output batches, random outputs with
// L-hop neighbourhoods (checked against reachability from dense matrix powers), caps,
// seeds and thread counts.
#include <algorithm>
#include <cstdint>
#include <limits>
#include <random>
#include <set>
#include <span>
#include <vector>

#include <catch2/catch.hpp>

#include "fixtures.hpp"
#include "ibmb/batch/baselines.hpp"
#include "ibmb/batch/plan.hpp"
#include "ibmb/graph/build.hpp"

using namespace ibmb;

namespace {

csr_graph<> random_graph(std::int64_t n, int m, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<std::pair<std::int64_t, std::int64_t>> e;
  for (int i = 0; i < m; ++i) {
    auto a = static_cast<std::int64_t>(rng() % static_cast<std::uint64_t>(n));
    auto b = static_cast<std::int64_t>(rng() % static_cast<std::uint64_t>(n));
    if (a != b) e.emplace_back(std::min(a, b), std::max(a, b));
  }
  return test::undirected(n, e);
}

std::vector<std::int64_t> every_kth(std::int64_t n, std::int64_t k) {
  std::vector<std::int64_t> v;
  for (std::int64_t i = 0; i < n; i += k) v.push_back(i);
  return v;
}

/// Outputs of the plan are exactly `outs`, once each; batch sizes balanced and <= cap.
void check_output_partition(const batch_plan<std::int64_t>& plan,
                            const std::vector<std::int64_t>& outs, std::int64_t cap) {
  std::vector<std::int64_t> all(plan.outputs.begin(), plan.outputs.end());
  std::sort(all.begin(), all.end());
  auto want = outs;
  std::sort(want.begin(), want.end());
  REQUIRE(all == want);
  const auto nb = (static_cast<std::int64_t>(outs.size()) + cap - 1) / cap;
  REQUIRE(static_cast<std::int64_t>(plan.num_batches()) == nb);
  std::int64_t mn = 1 << 30, mx = 0;
  for (std::size_t b = 0; b < plan.num_batches(); ++b) {
    const auto k = static_cast<std::int64_t>(plan.batch_outputs(b).size());
    mn = std::min(mn, k);
    mx = std::max(mx, k);
  }
  REQUIRE(mx <= cap);
  REQUIRE(mx - mn <= 1);
}

}  // namespace

TEST_CASE("random_output_plan: balanced, seeded partition of the outputs", "[baselines]") {
  const auto outs = every_kth(1000, 3);
  random_plan_params p;
  p.batch_size = 64;
  p.seed = 5;
  const auto a = random_output_plan<std::int64_t>(1000, outs, p);
  a.validate(1000);
  check_output_partition(a, outs, 64);
  for (std::size_t b = 0; b < a.num_batches(); ++b)
    REQUIRE(std::ranges::equal(a.batch_outputs(b), a.batch_nodes(b)));
  REQUIRE(a == random_output_plan<std::int64_t>(1000, outs, p));
  auto rev = outs;
  std::reverse(rev.begin(), rev.end());
  REQUIRE(a == random_output_plan<std::int64_t>(1000, rev, p));  // input order does not matter
  p.seed = 6;
  REQUIRE_FALSE(a == random_output_plan<std::int64_t>(1000, outs, p));
  std::vector<std::int64_t> dup = {1, 2, 1};
  REQUIRE_THROWS_AS(random_output_plan<std::int64_t>(10, dup, p), invalid_argument);
  std::vector<std::int64_t> far = {1, 20};
  REQUIRE_THROWS_AS(random_output_plan<std::int64_t>(10, far, p), out_of_range);
}

TEST_CASE("khop_plan: nodes = outputs + L-hop reachability (dense matrix powers)", "[baselines]") {
  const std::int64_t n = 60;
  const auto g = random_graph(n, 70, 2);
  const auto outs = every_kth(n, 4);
  for (std::int32_t L : {0, 1, 2, 3}) {
    CAPTURE(L);
    khop_plan_params p;
    p.batch_size = 4;
    p.hops = L;
    p.seed = 1;
    const auto plan = khop_plan(g.view(), outs, p);
    plan.validate(static_cast<std::int64_t>(n));
    check_output_partition(plan, outs, 4);
    // reach = (A + I)^L applied to the batch's indicator, with dense boolean products
    std::vector<std::vector<char>> A(static_cast<std::size_t>(n),
                                     std::vector<char>(static_cast<std::size_t>(n), 0));
    for (std::int64_t u = 0; u < n; ++u) {
      A[static_cast<std::size_t>(u)][static_cast<std::size_t>(u)] = 1;
      for (auto v : g.view().neighbors(u))
        A[static_cast<std::size_t>(u)][static_cast<std::size_t>(v)] = 1;
    }
    for (std::size_t b = 0; b < plan.num_batches(); ++b) {
      std::vector<char> x(static_cast<std::size_t>(n), 0);
      for (auto s : plan.batch_outputs(b)) x[static_cast<std::size_t>(s)] = 1;
      for (int h = 0; h < L; ++h) {
        std::vector<char> y(static_cast<std::size_t>(n), 0);
        for (std::int64_t u = 0; u < n; ++u)
          if (x[static_cast<std::size_t>(u)])
            for (std::int64_t v = 0; v < n; ++v)
              if (A[static_cast<std::size_t>(u)][static_cast<std::size_t>(v)])
                y[static_cast<std::size_t>(v)] = 1;
        x = y;
      }
      std::vector<std::int64_t> want;
      for (std::int64_t v = 0; v < n; ++v)
        if (x[static_cast<std::size_t>(v)]) want.push_back(v);
      REQUIRE(std::vector<std::int64_t>(plan.batch_nodes(b).begin(), plan.batch_nodes(b).end()) ==
              want);
    }
  }
}

TEST_CASE("khop_plan: the cap keeps outputs, samples a subset, same for 1 and 2 threads",
          "[baselines]") {
  const std::int64_t n = 400;
  const auto g = random_graph(n, 1600, 3);
  const auto outs = every_kth(n, 5);
  khop_plan_params p;
  p.batch_size = 10;
  p.hops = 2;
  p.seed = 7;
  const auto full = khop_plan(g.view(), outs, p);
  p.max_nodes = 25;
  p.threads = 1;
  const auto c1 = khop_plan(g.view(), outs, p);
  p.threads = 2;
  const auto c2 = khop_plan(g.view(), outs, p);
  REQUIRE(c1 == c2);
  c1.validate(static_cast<std::int64_t>(n));
  bool any_capped = false;
  for (std::size_t b = 0; b < c1.num_batches(); ++b) {
    const auto nodes = c1.batch_nodes(b);
    const auto fnodes = full.batch_nodes(b);
    REQUIRE(std::ranges::equal(c1.batch_outputs(b), full.batch_outputs(b)));
    REQUIRE(static_cast<std::int64_t>(nodes.size()) ==
            std::min<std::int64_t>(25, static_cast<std::int64_t>(fnodes.size())));
    REQUIRE(std::includes(fnodes.begin(), fnodes.end(), nodes.begin(), nodes.end()));
    any_capped |= fnodes.size() > 25;
  }
  REQUIRE(any_capped);
  p.seed = 8;
  REQUIRE_FALSE(khop_plan(g.view(), outs, p) == c1);
}

TEST_CASE("cluster_plan: batches are METIS parts with outputs, empty parts skipped",
          "[baselines]") {
  const auto g = make_undirected_with_self_loops(test::two_cliques_with_isolated(6).view());
  // outputs only in the first clique and the isolated node
  const std::vector<std::int64_t> outs = {4, 1, 2};
  cluster_plan_params p;
  p.parts = 2;
  const auto plan = cluster_plan(g.view(), outs, p);
  plan.validate(g.num_rows);
  REQUIRE(plan.num_batches() == 1);
  const std::vector<std::int64_t> want_out = {1, 2, 4};
  REQUIRE(std::vector<std::int64_t>(plan.batch_outputs(0).begin(), plan.batch_outputs(0).end()) ==
          want_out);
  // the part holding the first clique holds all of it (METIS cuts the bridge)
  const auto nodes = plan.batch_nodes(0);
  for (std::int64_t v = 0; v < 6; ++v) REQUIRE(std::binary_search(nodes.begin(), nodes.end(), v));
  for (std::int64_t v = 6; v < 12; ++v)
    REQUIRE_FALSE(std::binary_search(nodes.begin(), nodes.end(), v));

  // larger random graph: batches are disjoint, cover the parts of every output
  const auto h = random_graph(300, 900, 9);
  const auto o2 = every_kth(300, 2);
  p.parts = 6;
  const auto pl = cluster_plan(h.view(), o2, p);
  pl.validate(300);
  std::set<std::int64_t> seen;
  for (auto v : pl.nodes) REQUIRE(seen.insert(v).second);
  std::vector<std::int64_t> got(pl.outputs.begin(), pl.outputs.end());
  std::sort(got.begin(), got.end());
  REQUIRE(got == o2);
  REQUIRE(pl == cluster_plan(h.view(), o2, p));
}

TEST_CASE("cluster_plan: imbalance 1.0 is clamped to METIS's smallest step", "[baselines]") {
  const auto h = random_graph(300, 900, 9);
  const auto outs = every_kth(300, 3);
  cluster_plan_params p;
  p.parts = 4;
  p.imbalance = 1.0;
  batch_plan<std::int64_t> plan;
  REQUIRE_NOTHROW(plan = cluster_plan(h.view(), outs, p));
  plan.validate(300);
  p.imbalance = 1.001;
  REQUIRE(plan == cluster_plan(h.view(), outs, p));
}

TEST_CASE("random_output_plan: a negative node count is an invalid_argument", "[baselines]") {
  const std::vector<std::int64_t> outs = {0, 1};
  random_plan_params p;
  p.batch_size = 1;
  REQUIRE_THROWS_AS(random_output_plan(-1, std::span<const std::int64_t>(outs), p),
                    ibmb::invalid_argument);
  REQUIRE_THROWS_WITH(random_output_plan(-1, std::span<const std::int64_t>(outs), p),
                      Catch::Contains("num_nodes = -1"));
  REQUIRE_THROWS_AS(random_output_plan(std::numeric_limits<std::int64_t>::min(),
                                       std::span<const std::int64_t>(outs), p),
                    ibmb::invalid_argument);
  // the balanced cut points are unchanged by the overflow-free formula
  const auto ids = every_kth(1000, 1);
  for (std::int64_t bs : {1, 3, 7, 1000}) {
    p.batch_size = bs;
    const auto plan = random_output_plan(1000, std::span<const std::int64_t>(ids), p);
    const auto nb = static_cast<std::int64_t>(plan.num_batches());
    for (std::int64_t b = 0; b <= nb; ++b)
      REQUIRE(plan.output_ptr[static_cast<std::size_t>(b)] == 1000 * b / nb);
  }
}
