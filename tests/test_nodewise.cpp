// Greedy grouping of outputs (partition/merge.hpp), batch_plan, and nodewise_plan.
#include <algorithm>
#include <cstdint>
#include <fstream>
#include <map>
#include <numeric>
#include <random>
#include <set>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include "fixtures.hpp"
#include "ibmb/batch/nodewise.hpp"
#include "ibmb/batch/plan.hpp"
#include "ibmb/graph/build.hpp"
#include "ibmb/partition/merge.hpp"

using namespace ibmb;

namespace {

using graph64 = csr_graph<std::int64_t, std::int64_t, float>;

graph64 random_graph(std::int64_t n, std::int64_t m, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<std::pair<std::int64_t, std::int64_t>> e;
  for (std::int64_t i = 0; i < m; ++i)
    e.emplace_back(static_cast<std::int64_t>(rng() % static_cast<std::uint64_t>(n)),
                   static_cast<std::int64_t>(rng() % static_cast<std::uint64_t>(n)));
  return make_undirected_with_self_loops(test::undirected(n, e).view());
}

std::optional<graph64> load_cora() {
  auto dir = test::shared_dataset("cora-planetoid");
  if (!dir) return std::nullopt;
  std::ifstream in(*dir / "derived" / "edges.txt");
  std::vector<std::pair<std::int64_t, std::int64_t>> e;
  std::int64_t a = 0, b = 0;
  while (in >> a >> b) e.emplace_back(a, b);
  REQUIRE(e.size() == 5278);
  return make_undirected_with_self_loops(test::undirected(2708, e).view());
}

std::vector<std::int64_t> read_ids(const std::filesystem::path& f) {
  std::ifstream in(f);
  std::vector<std::int64_t> v;
  std::int64_t x = 0;
  while (in >> x) v.push_back(x);
  return v;
}

/// Every output exactly once, plan structurally valid.
void check_partition(const batch_plan<std::int64_t>& plan, std::vector<std::int64_t> outputs,
                     std::int64_t n) {
  plan.validate(n);
  std::vector<std::int64_t> all(plan.outputs.begin(), plan.outputs.end());
  std::sort(all.begin(), all.end());
  std::sort(outputs.begin(), outputs.end());
  REQUIRE(all == outputs);
}

}  // namespace

TEST_CASE("balanced_max_outputs follows the reference's balancing", "[nodewise]") {
  REQUIRE(balanced_max_outputs(10, 4) == 4);  // 3 batches: 4, 3, 3
  REQUIRE(balanced_max_outputs(9, 4) == 3);   // 3 batches of 3
  REQUIRE(balanced_max_outputs(100, 30) == 25);
  REQUIRE(balanced_max_outputs(100, 100) == 100);
  REQUIRE(balanced_max_outputs(101, 100) == 51);
  REQUIRE(balanced_max_outputs(5, 50) == 5);
  REQUIRE_THROWS_AS(balanced_max_outputs(5, 0), ibmb::invalid_argument);
}

TEST_CASE("symmetric_output_pairs equals a dense P + P^T, sorted by score then (i, j)",
          "[nodewise]") {
  std::mt19937_64 rng(5);
  const std::int64_t n = 30;
  std::vector<std::vector<float>> dense(n, std::vector<float>(n, 0.f));
  std::vector<std::int64_t> ptr{0}, col;
  std::vector<float> val;
  for (std::int64_t i = 0; i < n; ++i) {
    for (std::int64_t j = 0; j < n; ++j)
      if (rng() % 4 == 0) {
        const float x = static_cast<float>(rng() % 4) / 8.f;  // ties and zeros
        dense[i][j] = x;
        col.push_back(j);
        val.push_back(x);
      }
    ptr.push_back(static_cast<std::int64_t>(col.size()));
  }
  const auto pairs = symmetric_output_pairs<float>(n, ptr, col, val);
  std::vector<output_pair<float>> want;
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t j = 0; j < i; ++j)
      if (dense[i][j] + dense[j][i] > 0) want.push_back({i, j, dense[i][j] + dense[j][i]});
  std::stable_sort(want.begin(), want.end(),
                   [](const auto& a, const auto& b) { return a.score > b.score; });
  REQUIRE(pairs == want);  // `want` was built in (i, j) order, so stable sort = tie-break
}

TEST_CASE("greedy_merge: pairs in order under the output cap, then smallest-first", "[nodewise]") {
  merge_params mp;
  mp.max_outputs = 2;
  mp.balance = false;
  // pairs (1,0) > (3,2) > (2,0): the third would exceed the cap
  std::vector<output_pair<float>> pairs = {{1, 0, 5.f}, {3, 2, 4.f}, {2, 0, 3.f}};
  auto g = greedy_merge<float>(5, std::span<const output_pair<float>>(pairs), mp);
  REQUIRE(g.size() == 3);
  REQUIRE(std::vector<std::int64_t>(g.group(0).begin(), g.group(0).end()) ==
          std::vector<std::int64_t>{0, 1});
  REQUIRE(std::vector<std::int64_t>(g.group(1).begin(), g.group(1).end()) ==
          std::vector<std::int64_t>{2, 3});
  REQUIRE(std::vector<std::int64_t>(g.group(2).begin(), g.group(2).end()) ==
          std::vector<std::int64_t>{4});

  // No pairs at all: post-processing alone. Singletons 0..4, cap 2: {0,1}, {2,3}, then
  // {4} + a pair = 3 > 2 stops.
  auto h = greedy_merge<float>(5, {}, mp);
  REQUIRE(h.size() == 3);
  REQUIRE(h.ptr == std::vector<std::int64_t>{0, 2, 4, 5});
  REQUIRE(h.members == std::vector<std::int64_t>{0, 1, 2, 3, 4});

  // Post-processing stops at the first pair that does not fit, even if later ones might:
  // groups {0,1,2} (3), {3} (1), {4,5} (2), cap 3: smallest two {3} + {4,5} = 3 fit -> merged;
  // then {0,1,2} + {3,4,5} = 6 > 3: stop.
  mp.max_outputs = 3;
  std::vector<output_pair<float>> p2 = {{1, 0, 9.f}, {2, 1, 8.f}, {5, 4, 7.f}};
  auto k = greedy_merge<float>(6, std::span<const output_pair<float>>(p2), mp);
  REQUIRE(k.ptr == std::vector<std::int64_t>{0, 3, 6});
}

TEST_CASE("greedy_merge with the auxiliary cap bounds the union of node lists", "[nodewise]") {
  // 6 outputs with node lists; cap 4 nodes per batch.
  std::vector<std::int64_t> ptr = {0, 2, 4, 6, 8, 10, 13};
  std::vector<std::int64_t> nodes = {0, 10, 1, 10, 2, 20, 3, 20, 4, 30, 5, 6, 7};
  merge_params mp;
  mp.cap = merge_cap::auxiliary;
  mp.max_nodes = 4;
  std::vector<output_pair<float>> pairs = {{1, 0, 9.f}, {2, 1, 8.f}, {3, 2, 7.f}, {5, 4, 6.f}};
  auto g = greedy_merge<float, std::int64_t>(6, std::span<const output_pair<float>>(pairs), mp, ptr,
                                             nodes);
  // {0,1} -> {0,1,10} (3 nodes); {0,1}+{2} -> 5 > 4 rejected; {2,3} -> {2,3,20}; {4,5} -> 5 > 4
  // rejected. Post: smallest by node count: {4} (2 nodes), then {0,1} (3): union 5 > 4, stop.
  REQUIRE(g.ptr == std::vector<std::int64_t>{0, 2, 4, 5, 6});
  REQUIRE(g.members == std::vector<std::int64_t>{0, 1, 2, 3, 4, 5});
  const std::vector<std::int64_t> outs = {100, 101, 102, 103, 104, 105};
  auto plan = groups_to_plan<std::int64_t>(outs, g, ptr, nodes);
  plan.validate(200);
  for (std::size_t b = 0; b < plan.num_batches(); ++b)
    REQUIRE(plan.batch_nodes(b).size() <= 4 + plan.batch_outputs(b).size());
  REQUIRE_THROWS_AS(greedy_merge<float>(6, std::span<const output_pair<float>>(pairs), mp),
                    ibmb::invalid_argument);  // no node lists given
}

TEST_CASE("batch_plan::validate names the batch and position", "[nodewise]") {
  batch_plan<std::int32_t> p;
  const std::vector<std::int32_t> o1 = {1, 3}, n1 = {1, 2, 3};
  p.push_batch(o1, n1);
  REQUIRE_NOTHROW(p.validate(4));
  REQUIRE_THROWS_AS(p.validate(3), ibmb::format_error);  // id 3 out of range
  const std::vector<std::int32_t> o2 = {5}, n2 = {4, 6};
  p.push_batch(o2, n2);
  try {
    p.validate(10);
    FAIL("expected format_error");
  } catch (const ibmb::format_error& e) {
    REQUIRE_THAT(e.what(), Catch::Contains("batch 1") && Catch::Contains("output 5"));
  }
  batch_plan<std::int32_t> q;
  const std::vector<std::int32_t> o3 = {2, 1}, n3 = {1, 2};
  q.push_batch(o3, n3);
  REQUIRE_THROWS_AS(q.validate(3), ibmb::format_error);  // unsorted outputs
}

TEST_CASE(
    "nodewise_plan: a partition of the outputs, cap respected, top-k lists included, "
    "same plan for any thread count and output order",
    "[nodewise]") {
  auto cora = load_cora();
  graph64 g = cora ? *cora : random_graph(2708, 6000, 11);
  const auto v = g.view();
  std::vector<std::int64_t> outputs;
  if (cora) {
    outputs = read_ids(*test::shared_dataset("cora-planetoid") / "derived" / "split_val.txt");
    auto train = read_ids(*test::shared_dataset("cora-planetoid") / "derived" / "split_train.txt");
    outputs.insert(outputs.end(), train.begin(), train.end());
    REQUIRE(outputs.size() == 640);
  } else {
    outputs.resize(640);
    std::iota(outputs.begin(), outputs.end(), 1000);
  }
  for (auto cap : {merge_cap::outputs, merge_cap::auxiliary}) {
    nodewise_params p;
    p.ppr.alpha = 0.25;
    p.ppr.eps = 1e-4;
    p.ppr.topk = 16;
    p.merge.cap = cap;
    p.merge.max_outputs = 100;
    p.merge.max_nodes = 600;
    p.ppr.threads = 1;
    nodewise_stats st;
    const auto plan = nodewise_plan(v, outputs, p, &st);
    check_partition(plan, outputs, v.num_rows);
    REQUIRE(st.counters.pushes > 0);
    REQUIRE(st.num_pairs > 0);
    const std::int64_t max_out = balanced_max_outputs(640, 100);  // 7 batches -> 92
    REQUIRE(max_out == 92);
    for (std::size_t b = 0; b < plan.num_batches(); ++b) {
      if (cap == merge_cap::outputs) {
        REQUIRE(static_cast<std::int64_t>(plan.batch_outputs(b).size()) <= max_out);
      } else if (plan.batch_outputs(b).size() > 1) {
        REQUIRE(plan.batch_nodes(b).size() <= 600);
      }
    }
    if (cap == merge_cap::outputs) REQUIRE(plan.num_batches() >= 7);
    // each batch holds the top-k list of each of its outputs (computed independently)
    ppr_params pp = p.ppr;
    const auto rows = nodewise_ppr(v, outputs, pp);
    std::map<std::int64_t, std::size_t> batch_of;
    for (std::size_t b = 0; b < plan.num_batches(); ++b)
      for (auto o : plan.batch_outputs(b)) batch_of[o] = b;
    for (std::int64_t i = 0; i < rows.num_rows; ++i) {
      const auto nodes = plan.batch_nodes(batch_of.at(outputs[static_cast<std::size_t>(i)]));
      for (auto w : rows.row_indices(i)) REQUIRE(std::binary_search(nodes.begin(), nodes.end(), w));
    }
    // nodes = exactly outputs ∪ their top-k lists
    std::size_t total_nodes = 0;
    for (std::size_t b = 0; b < plan.num_batches(); ++b) {
      std::set<std::int64_t> want;
      for (auto o : plan.batch_outputs(b)) {
        want.insert(o);
        const auto it = std::find(outputs.begin(), outputs.end(), o) - outputs.begin();
        for (auto w : rows.row_indices(it)) want.insert(w);
      }
      REQUIRE(std::vector<std::int64_t>(want.begin(), want.end()) ==
              std::vector<std::int64_t>(plan.batch_nodes(b).begin(), plan.batch_nodes(b).end()));
      total_nodes += want.size();
    }
    REQUIRE(total_nodes == plan.nodes.size());

    for (int t : {2, 8}) {
      p.ppr.threads = t;
      REQUIRE(nodewise_plan(v, outputs, p) == plan);
    }
    // unsorted / shuffled output ids: the same plan (depends on the set only)
    auto shuffled = outputs;
    std::mt19937_64 rng(1);
    std::shuffle(shuffled.begin(), shuffled.end(), rng);
    REQUIRE(nodewise_plan(v, shuffled, p) == plan);
  }
}

TEST_CASE("nodewise_plan rejects repeated output ids and bad caps, empty input is fine",
          "[nodewise]") {
  auto g = random_graph(100, 300, 2);
  nodewise_params p;
  p.merge.max_outputs = 10;
  const std::vector<std::int64_t> dup = {5, 9, 7, 9};
  try {
    (void)nodewise_plan(g.view(), dup, p);
    FAIL("expected invalid_argument");
  } catch (const ibmb::invalid_argument& e) {
    REQUIRE_THAT(e.what(), Catch::Contains("output id 9") && Catch::Contains("positions 1 and 3"));
  }
  REQUIRE_THROWS_AS(nodewise_plan(g.view(), std::vector<std::int64_t>{1, 100}, p),
                    ibmb::out_of_range);
  nodewise_params bad = p;
  bad.merge.max_outputs = 0;
  REQUIRE_THROWS_AS(nodewise_plan(g.view(), std::vector<std::int64_t>{1, 2}, bad),
                    ibmb::invalid_argument);
  const auto empty = nodewise_plan(g.view(), std::vector<std::int64_t>{}, p);
  REQUIRE(empty.num_batches() == 0);
  // int32 indices work the same way
  auto g32 = make_undirected_with_self_loops(
      test::two_cliques_with_isolated<std::int32_t, std::int32_t, float>(10).view());
  std::vector<std::int32_t> o32(21);
  std::iota(o32.begin(), o32.end(), 0);
  const auto plan32 = nodewise_plan(g32.view(), o32, p);
  plan32.validate(21);
  REQUIRE(plan32.num_outputs() == 21);
}

TEST_CASE("nodewise_plan reports progress from the calling thread", "[nodewise]") {
  auto g = random_graph(3000, 9000, 4);
  std::vector<std::int64_t> outs(1500);
  std::iota(outs.begin(), outs.end(), 0);
  nodewise_params p;
  p.merge.max_outputs = 200;
  p.ppr.threads = 2;
  const auto me = std::this_thread::get_id();
  std::set<std::string> stages;
  bool other = false;
  p.progress = [&](std::string_view s, std::int64_t, std::int64_t) {
    stages.insert(std::string(s));
    other |= std::this_thread::get_id() != me;
  };
  const auto plan = nodewise_plan(g.view(), outs, p);
  check_partition(plan, outs, 3000);
  REQUIRE_FALSE(other);
  REQUIRE(stages == std::set<std::string>{"ppr", "pairs", "merge"});
}
