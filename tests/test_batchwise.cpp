// Batch-wise IBMB planner: METIS parts + topic-sensitive PPR auxiliaries.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <iterator>
#include <random>
#include <set>
#include <vector>

#include <catch2/catch.hpp>

#include "fixtures.hpp"
#include "ibmb/batch/batchwise.hpp"
#include "ibmb/core/parallel.hpp"
#include "ibmb/graph/build.hpp"
#include "ibmb/graph/generate.hpp"

using namespace ibmb;

namespace {

csr_graph<> random_graph(std::int64_t n, std::int64_t m, std::uint64_t seed,
                         std::int64_t isolated = 0) {
  std::mt19937_64 rng(seed);
  std::vector<std::int64_t> s, t;
  const auto live = n - isolated;
  for (std::int64_t e = 0; e < m; ++e) {
    s.push_back(static_cast<std::int64_t>(rng() % static_cast<std::uint64_t>(live)));
    t.push_back(static_cast<std::int64_t>(rng() % static_cast<std::uint64_t>(live)));
  }
  build_options o;
  o.make_undirected = true;
  o.duplicates = duplicate_policy::keep_first;
  o.self_loops = self_loop_policy::add;
  return coo_to_csr<std::int64_t, std::int64_t, float>(n, std::span<const std::int64_t>(s),
                                                       std::span<const std::int64_t>(t),
                                                       std::span<const float>{}, o);
}

void check_partition_of_outputs(const batch_plan<>& plan, std::vector<std::int64_t> outputs) {
  std::vector<std::int64_t> seen(plan.outputs.begin(), plan.outputs.end());
  std::sort(seen.begin(), seen.end());
  std::sort(outputs.begin(), outputs.end());
  REQUIRE(seen == outputs);  // every output exactly once
}

}  // namespace

TEST_CASE("batchwise_plan: one batch per part with outputs, auxiliaries = top topic PPR",
          "[batchwise]") {
  const auto g = random_graph(600, 1500, 3);
  std::vector<std::int64_t> outputs;
  for (std::int64_t v = 0; v < 600; v += 3) outputs.push_back(v);
  std::reverse(outputs.begin(), outputs.end());  // any order is fine
  batchwise_params p;
  p.parts = 6;
  p.metis.seed = 1;
  p.solver = topic_solver::power_iteration;  // compared with the dense power iteration below
  batchwise_stats st;
  const auto plan = batchwise_plan(g.view(), std::span<const std::int64_t>(outputs), p, &st);
  plan.validate(600);
  check_partition_of_outputs(plan, outputs);
  REQUIRE(static_cast<std::int32_t>(plan.num_batches()) + st.empty_parts == 6);
  const std::int64_t k = (600 + 5) / 6;

  // Independent check: same partition, scores from the dense topic PPR, brute-force top-k.
  partition_params mp = p.metis;
  mp.parts = p.parts;
  const auto part = metis_partition(g.view(), mp);
  for (std::size_t b = 0; b < plan.num_batches(); ++b) {
    const auto outs = plan.batch_outputs(b);
    const auto pb = part.part[static_cast<std::size_t>(outs[0])];
    std::vector<std::int64_t> want_outs;
    for (auto o : outputs)
      if (part.part[static_cast<std::size_t>(o)] == pb) want_outs.push_back(o);
    std::sort(want_outs.begin(), want_outs.end());
    REQUIRE(std::vector<std::int64_t>(outs.begin(), outs.end()) == want_outs);

    std::vector<std::int64_t> sp{0, static_cast<std::int64_t>(want_outs.size())};
    const auto x =
        topic_ppr_dense<float>(g.view(), teleport_sets<std::int64_t>{sp, want_outs}, p.ppr);
    std::vector<std::int64_t> ids;
    for (Eigen::Index v = 0; v < x.rows(); ++v)
      if (x(v, 0) > 0) ids.push_back(v);
    std::sort(ids.begin(), ids.end(),
              [&](auto a, auto c) { return x(a, 0) != x(c, 0) ? x(a, 0) > x(c, 0) : a < c; });
    ids.resize(std::min<std::size_t>(ids.size(), static_cast<std::size_t>(k)));
    std::set<std::int64_t> want(ids.begin(), ids.end());
    want.insert(want_outs.begin(), want_outs.end());
    const auto nodes = plan.batch_nodes(b);
    REQUIRE(std::vector<std::int64_t>(nodes.begin(), nodes.end()) ==
            std::vector<std::int64_t>(want.begin(), want.end()));
  }
  CHECK(st.ppr.blocks == 1);
  CHECK(st.ppr.iterations == 50);
}

TEST_CASE("batchwise_plan: parts without outputs are skipped, not an error", "[batchwise]") {
  // Two cliques and an isolated node: with 3 parts and outputs only in the first clique,
  // at least one part has no outputs.
  const auto g = add_self_loops(test::two_cliques_with_isolated(6).view());
  const std::vector<std::int64_t> outputs = {0, 1, 2};
  batchwise_params p;
  p.parts = 3;
  batchwise_stats st;
  const auto plan = batchwise_plan(g.view(), std::span<const std::int64_t>(outputs), p, &st);
  plan.validate(13);
  check_partition_of_outputs(plan, outputs);
  CHECK(st.empty_parts >= 1);
  CHECK(static_cast<std::int32_t>(plan.num_batches()) + st.empty_parts == 3);
}

TEST_CASE("batchwise_plan: disconnected graph and isolated nodes", "[batchwise]") {
  const auto g = random_graph(300, 400, 8, /*isolated=*/40);
  std::vector<std::int64_t> outputs;
  for (std::int64_t v = 250; v < 300; ++v) outputs.push_back(v);  // many isolated outputs
  batchwise_params p;
  p.parts = 4;
  const auto plan = batchwise_plan(g.view(), std::span<const std::int64_t>(outputs), p);
  plan.validate(300);
  check_partition_of_outputs(plan, outputs);
  // An isolated output keeps all its mass: its batch holds it, whatever else it holds.
  for (std::size_t b = 0; b < plan.num_batches(); ++b)
    REQUIRE(plan.batch_nodes(b).size() <= plan.batch_outputs(b).size() + 75);
}

TEST_CASE("batchwise_plan: identical for 1 and 2 threads, bad input",
          "[batchwise][determinism][bad-input]") {
  const auto g = random_graph(2000, 8000, 4);
  std::vector<std::int64_t> outputs;
  for (std::int64_t v = 0; v < 2000; v += 2) outputs.push_back(v);
  batchwise_params p;
  p.parts = 8;
  batch_plan<> a, b;
  {
    scoped_threads t(1);
    a = batchwise_plan(g.view(), std::span<const std::int64_t>(outputs), p);
  }
  {
    scoped_threads t(2);
    b = batchwise_plan(g.view(), std::span<const std::int64_t>(outputs), p);
  }
  REQUIRE(a == b);

  std::vector<std::int64_t> dup = {1, 5, 1};
  REQUIRE_THROWS_WITH(batchwise_plan(g.view(), std::span<const std::int64_t>(dup), p),
                      Catch::Contains("appears twice"));
  std::vector<std::int64_t> bad = {1, 2000};
  REQUIRE_THROWS_WITH(batchwise_plan(g.view(), std::span<const std::int64_t>(bad), p),
                      Catch::Contains("2000"));
  p.parts = 0;
  REQUIRE_THROWS_AS(batchwise_plan(g.view(), std::span<const std::int64_t>(outputs), p),
                    ibmb::invalid_argument);
  p.parts = 1;
  const auto one = batchwise_plan(g.view(), std::span<const std::int64_t>(outputs), p);
  REQUIRE(one.num_batches() == 1);
  const std::vector<std::int64_t> none;
  REQUIRE(batchwise_plan(g.view(), std::span<const std::int64_t>(none), p).num_batches() == 0);
}

TEST_CASE("batchwise_plan: the default push keeps its auxiliaries on a dense graph",
          "[batchwise]") {
  // Mean degree about 400 (Reddit's is about 490). With an eps that ignored the degree, no
  // residual beyond the seeds reached its threshold and every batch held its outputs only.
  generator_params gp;
  gp.nodes = 4000;
  gp.avg_degree = 400;
  gp.features = 0;
  gp.classes = 5;
  gp.community_size = 400;
  gp.seed = 3;
  const auto ds = generate_dataset(gp);
  const auto g = make_undirected_with_self_loops(ds.graph.view());
  REQUIRE(g.num_edges() / g.num_nodes() > 300);
  batchwise_params p;
  p.parts = 8;
  p.metis.seed = 2;
  const std::span<const std::int64_t> outputs(ds.train_idx);
  const auto push = batchwise_plan(g.view(), outputs, p);
  p.solver = topic_solver::power_iteration;
  const auto power = batchwise_plan(g.view(), outputs, p);
  REQUIRE(push.num_batches() == power.num_batches());
  for (std::size_t b = 0; b < push.num_batches(); ++b) {
    INFO("batch " << b);
    const auto a = push.batch_nodes(b), c = power.batch_nodes(b);
    CHECK(static_cast<double>(a.size()) >= 0.95 * static_cast<double>(c.size()));
    std::vector<std::int64_t> both;
    std::set_intersection(a.begin(), a.end(), c.begin(), c.end(), std::back_inserter(both));
    CHECK(static_cast<double>(both.size()) >= 0.9 * static_cast<double>(c.size()));
  }
}
