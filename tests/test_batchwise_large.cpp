// Batch-wise IBMB, large-graph route (batch/batchwise_large.hpp): thresholded node-wise PPR,
// METIS on the kept subgraph, auxiliaries = union of top-k lists; checked against an
// independent recomputation (one ppr_push per output, brute-force top-k).
#include <algorithm>
#include <cstdint>
#include <map>
#include <random>
#include <set>
#include <vector>

#include <catch2/catch.hpp>

#include "fixtures.hpp"
#include "ibmb/batch/batchwise.hpp"
#include "ibmb/batch/batchwise_large.hpp"
#include "ibmb/graph/build.hpp"
#include "ibmb/partition/metis.hpp"
#include "ibmb/ppr/push.hpp"

using namespace ibmb;

namespace {

using graph_t = csr_graph<std::int64_t, std::int64_t, float>;

graph_t random_graph(std::int64_t n, int edges, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<std::int64_t> s, t;
  // Two halves with sparse links between them, so the partition has something to find.
  for (int e = 0; e < edges; ++e) {
    const auto a = static_cast<std::int64_t>(rng() % static_cast<std::uint64_t>(n));
    auto b = static_cast<std::int64_t>(rng() % static_cast<std::uint64_t>(n / 2));
    if (a >= n / 2 && rng() % 10 != 0) b += n / 2;
    s.push_back(a);
    t.push_back(b);
  }
  build_options o;
  o.make_undirected = true;
  o.duplicates = duplicate_policy::keep_first;
  o.self_loops = self_loop_policy::add;
  return coo_to_csr<std::int64_t, std::int64_t, float>(n, std::span<const std::int64_t>(s),
                                                       std::span<const std::int64_t>(t),
                                                       std::span<const float>{}, o);
}

std::vector<std::int64_t> sample(std::int64_t n, std::int64_t count, std::uint64_t seed) {
  std::vector<std::int64_t> ids(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) ids[static_cast<std::size_t>(i)] = i;
  std::mt19937_64 rng(seed);
  std::shuffle(ids.begin(), ids.end(), rng);
  ids.resize(static_cast<std::size_t>(count));
  return ids;  // unsorted on purpose
}

// Independent top-k list of one output: single-source push, full sort by (score desc, id asc),
// first k, plus the output itself.
std::vector<std::pair<std::int64_t, float>> topk_list(const graph_t& g, std::int64_t s,
                                                      const ppr_params& p) {
  const auto row = ppr_push<float>(g.view(), s, p);
  std::vector<std::pair<std::int64_t, float>> e;
  for (std::size_t i = 0; i < row.size(); ++i) e.emplace_back(row.indices[i], row.values[i]);
  std::sort(e.begin(), e.end(), [](auto a, auto b) {
    return a.second != b.second ? a.second > b.second : a.first < b.first;
  });
  std::vector<std::pair<std::int64_t, float>> out;
  bool has_s = false;
  for (std::size_t i = 0; i < e.size() && static_cast<std::int64_t>(i) < p.topk; ++i) {
    out.push_back(e[i]);
    has_s |= e[i].first == s;
  }
  if (!has_s)
    for (const auto& x : e)
      if (x.first == s) out.push_back(x);
  return out;
}

}  // namespace

TEST_CASE("batchwise_large_plan: valid plan, aux = union of top-k lists, threshold, METIS parts",
          "[batchwise]") {
  const auto g = random_graph(3000, 12000, 7);
  const auto outputs = sample(3000, 300, 1);
  batchwise_large_params prm;
  prm.parts = 6;
  prm.threshold = 2e-3;
  prm.ppr.eps = 1e-4;
  prm.ppr.topk = 24;
  batchwise_large_stats st;
  const auto plan = batchwise_large_plan(g.view(), outputs, prm, &st);
  REQUIRE_NOTHROW(plan.validate(3000));

  // Every output exactly once.
  std::vector<std::int64_t> all(plan.outputs.begin(), plan.outputs.end());
  std::sort(all.begin(), all.end());
  std::vector<std::int64_t> want_out = outputs;
  std::sort(want_out.begin(), want_out.end());
  REQUIRE(all == want_out);

  // Independent recomputation of the top-k lists and of the kept set.
  std::map<std::int64_t, std::vector<std::pair<std::int64_t, float>>> lists;
  std::set<std::int64_t> kept(outputs.begin(), outputs.end());
  std::int64_t below = 0;  // listed entries at or under the threshold (must not be kept)
  for (auto s : outputs) {
    lists[s] = topk_list(g, s, prm.ppr);
    for (auto [v, x] : lists[s]) {
      if (x > prm.threshold) kept.insert(v);
    }
  }
  for (const auto& [s, l] : lists)
    for (auto [v, x] : l) below += !kept.count(v);
  CHECK(st.kept_nodes == static_cast<std::int64_t>(kept.size()));
  CHECK(st.kept_nodes < 3000);  // the threshold drops nodes...
  CHECK(below > 0);             // ...including some that are in top-k lists

  // Batch nodes = outputs ∪ union of their top-k lists.
  for (std::size_t b = 0; b < plan.num_batches(); ++b) {
    std::set<std::int64_t> want;
    for (auto s : plan.batch_outputs(b)) {
      want.insert(s);
      for (auto [v, x] : lists[s]) want.insert(v);
    }
    const auto got = plan.batch_nodes(b);
    REQUIRE(std::vector<std::int64_t>(got.begin(), got.end()) ==
            std::vector<std::int64_t>(want.begin(), want.end()));
  }

  // Outputs are grouped by the METIS parts of the (independently derived) kept subgraph.
  const std::vector<std::int64_t> kept_v(kept.begin(), kept.end());
  partition_params mp = prm.metis;
  mp.parts = prm.parts;
  const auto part = metis_partition_subset(g.view(), std::span<const std::int64_t>(kept_v), mp);
  std::map<std::int32_t, std::vector<std::int64_t>> by_part;
  for (std::size_t i = 0; i < kept_v.size(); ++i)
    if (std::binary_search(want_out.begin(), want_out.end(), kept_v[i]))
      by_part[part.part[i]].push_back(kept_v[i]);
  REQUIRE(by_part.size() == plan.num_batches());
  std::size_t b = 0;
  for (const auto& [p, outs] : by_part) {
    const auto got = plan.batch_outputs(b++);
    CHECK(std::vector<std::int64_t>(got.begin(), got.end()) == outs);
  }
  CHECK(st.empty_parts == prm.parts - static_cast<std::int32_t>(plan.num_batches()));
  CHECK(st.counters.pushes > 0);
}

TEST_CASE("batchwise_large_plan: identical for 1 and 2 threads and any output order",
          "[batchwise][determinism]") {
  const auto g = random_graph(4000, 20000, 3);
  auto outputs = sample(4000, 500, 2);
  batchwise_large_params prm;
  prm.parts = 8;
  prm.ppr.topk = 16;
  prm.ppr.threads = 1;
  const auto p1 = batchwise_large_plan(g.view(), outputs, prm);
  prm.ppr.threads = 2;
  std::reverse(outputs.begin(), outputs.end());
  const auto p2 = batchwise_large_plan(g.view(), outputs, prm);
  REQUIRE(p1 == p2);
  CHECK(p1.num_batches() >= 2);
}

TEST_CASE("batchwise_large_plan: edge cases and bad input", "[batchwise][bad-input]") {
  auto g = add_self_loops(test::two_cliques_with_isolated(5).view());
  batchwise_large_params prm;
  prm.parts = 2;
  // Isolated output node: kept (outputs always are), its batch holds only itself.
  const std::vector<std::int64_t> outs{0, 10};
  const auto plan = batchwise_large_plan(g.view(), outs, prm);
  REQUIRE_NOTHROW(plan.validate(static_cast<std::int64_t>(g.num_nodes())));
  CHECK(plan.num_outputs() == 2);
  // Empty outputs: empty plan.
  CHECK(batchwise_large_plan(g.view(), std::span<const std::int64_t>{}, prm).num_batches() == 0);
  // Repeated output, out-of-range output, too many parts, bad threshold.
  const std::vector<std::int64_t> rep{1, 1};
  REQUIRE_THROWS_WITH(batchwise_large_plan(g.view(), rep, prm), Catch::Contains("twice"));
  const std::vector<std::int64_t> oor{99};
  REQUIRE_THROWS_AS(batchwise_large_plan(g.view(), oor, prm), ibmb::out_of_range);
  prm.parts = 1000;
  REQUIRE_THROWS_WITH(batchwise_large_plan(g.view(), outs, prm), Catch::Contains("parts = 1000"));
  prm.parts = 2;
  prm.threshold = -1;
  REQUIRE_THROWS_WITH(batchwise_large_plan(g.view(), outs, prm), Catch::Contains("threshold"));
}

TEST_CASE("batchwise_plan with the push solver: same batches, near-identical auxiliaries",
          "[batchwise]") {
  const auto g = random_graph(3000, 15000, 11);
  const auto outputs = sample(3000, 400, 5);
  batchwise_params prm;
  prm.parts = 5;
  prm.ppr.max_iterations = 300;
  prm.ppr.tolerance = 1e-9;
  const auto pi = batchwise_plan(g.view(), outputs, prm);
  prm.solver = topic_solver::push;
  prm.push_eps = 1e-8;
  batchwise_stats st;
  const auto pu = batchwise_plan(g.view(), outputs, prm, &st);
  REQUIRE_NOTHROW(pu.validate(3000));
  REQUIRE(pu.output_ptr == pi.output_ptr);
  REQUIRE(pu.outputs == pi.outputs);
  CHECK(st.push.sets == static_cast<std::int64_t>(pu.num_batches()));
  for (std::size_t b = 0; b < pu.num_batches(); ++b) {
    const auto x = pu.batch_nodes(b), y = pi.batch_nodes(b);
    std::vector<std::int64_t> common;
    std::set_intersection(x.begin(), x.end(), y.begin(), y.end(), std::back_inserter(common));
    CHECK(static_cast<double>(common.size()) >= 0.98 * static_cast<double>(y.size()));
  }
  prm.push_eps = 0;  // automatic: 2e-3 / k
  const auto pa = batchwise_plan(g.view(), outputs, prm);
  REQUIRE(pa.outputs == pi.outputs);
  for (std::size_t b = 0; b < pa.num_batches(); ++b) {
    const auto x = pa.batch_nodes(b), y = pi.batch_nodes(b);
    std::vector<std::int64_t> common;
    std::set_intersection(x.begin(), x.end(), y.begin(), y.end(), std::back_inserter(common));
    CHECK(static_cast<double>(common.size()) >= 0.95 * static_cast<double>(y.size()));
  }
  prm.push_eps = -1;
  REQUIRE_THROWS_WITH(batchwise_plan(g.view(), outputs, prm), Catch::Contains("push_eps"));
}
