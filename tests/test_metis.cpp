// METIS wrapper: valid partitions, reproducibility, cut counts, corner cases, subsets.
#include <algorithm>
#include <cstdint>
#include <random>
#include <set>
#include <span>
#include <utility>
#include <vector>

#include <catch2/catch.hpp>

#include "fixtures.hpp"
#include "ibmb/graph/generate.hpp"
#include "ibmb/partition/metis.hpp"

using namespace ibmb;

namespace {

using edge_list = std::vector<std::pair<std::int64_t, std::int64_t>>;

// Connected random graph: a cycle plus random chords.
edge_list random_connected(std::int64_t n, std::int64_t chords, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  edge_list e;
  for (std::int64_t i = 0; i < n; ++i) e.emplace_back(i, (i + 1) % n);
  for (std::int64_t c = 0; c < chords; ++c) {
    const auto a = static_cast<std::int64_t>(rng() % static_cast<std::uint64_t>(n));
    const auto b = static_cast<std::int64_t>(rng() % static_cast<std::uint64_t>(n));
    if (a != b) e.emplace_back(a, b);
  }
  return e;
}

// Brute force over the distinct undirected pairs of an edge list.
std::int64_t recount_cut(const edge_list& edges, const std::vector<std::int32_t>& part) {
  std::set<std::pair<std::int64_t, std::int64_t>> pairs;
  for (auto [a, b] : edges)
    if (a != b) pairs.emplace(std::min(a, b), std::max(a, b));
  std::int64_t cut = 0;
  for (auto [a, b] : pairs)
    cut += part[static_cast<std::size_t>(a)] != part[static_cast<std::size_t>(b)];
  return cut;
}

double recount_fraction(const edge_list& edges, const std::vector<std::int32_t>& part) {
  std::set<std::pair<std::int64_t, std::int64_t>> pairs;
  for (auto [a, b] : edges)
    if (a != b) pairs.emplace(std::min(a, b), std::max(a, b));
  return pairs.empty()
             ? 0.0
             : static_cast<double>(recount_cut(edges, part)) / static_cast<double>(pairs.size());
}

void require_valid(const partition_result& r, std::int64_t n, std::int32_t parts, bool nonempty) {
  REQUIRE(r.parts == parts);
  REQUIRE(r.part.size() == static_cast<std::size_t>(n));
  std::vector<std::int64_t> size(static_cast<std::size_t>(parts), 0);
  for (auto x : r.part) {
    REQUIRE(x >= 0);
    REQUIRE(x < parts);
    ++size[static_cast<std::size_t>(x)];
  }
  if (nonempty)
    for (auto s : size) REQUIRE(s > 0);
}

}  // namespace

TEMPLATE_TEST_CASE("metis_partition: valid, reproducible, cut matches a recount", "[metis]",
                   std::int32_t, std::int64_t) {
  using I = TestType;
  for (auto method : {partition_method::kway, partition_method::recursive}) {
    for (std::int32_t parts : {2, 3, 8, 16}) {
      const std::int64_t n = 300;
      const auto edges = random_connected(n, 600, static_cast<std::uint64_t>(parts));
      const auto g = test::undirected<I, I, float>(n, edges);
      partition_params pp;
      pp.parts = parts;
      pp.method = method;
      pp.seed = 5;
      const auto r = metis_partition(g.view(), pp);
      require_valid(r, n, parts, true);
      REQUIRE(r.edge_cut == recount_cut(edges, r.part));
      REQUIRE(r.edge_cut > 0);
      REQUIRE(edge_cut_fraction(g.view(), std::span<const std::int32_t>(r.part)) ==
              Approx(recount_fraction(edges, r.part)));
      const auto again = metis_partition(g.view(), pp);
      REQUIRE(again.part == r.part);
      // Balanced within METIS's tolerance (plus one node of rounding slack).
      std::vector<std::int64_t> size(static_cast<std::size_t>(parts), 0);
      for (auto x : r.part) ++size[static_cast<std::size_t>(x)];
      CHECK(*std::max_element(size.begin(), size.end()) <=
            static_cast<std::int64_t>(1.1 * n / parts + 2));
    }
  }
}

TEST_CASE("metis_partition: two cliques split at the bridge", "[metis]") {
  const auto g = test::two_cliques_with_isolated(6);  // nodes 0..5, 6..11, isolated 12
  partition_params pp;
  pp.parts = 2;
  for (auto method : {partition_method::kway, partition_method::recursive}) {
    pp.method = method;
    const auto r = metis_partition(g.view(), pp);
    require_valid(r, 13, 2, true);
    REQUIRE(r.edge_cut == 1);
    for (int i = 1; i < 6; ++i) REQUIRE(r.part[static_cast<std::size_t>(i)] == r.part[0]);
    for (int i = 7; i < 12; ++i) REQUIRE(r.part[static_cast<std::size_t>(i)] == r.part[6]);
    REQUIRE(r.part[0] != r.part[6]);
  }
}

TEST_CASE("metis_partition: disconnected graphs, isolated nodes, self-loops", "[metis]") {
  // Four disjoint 10-cycles.
  edge_list e;
  for (std::int64_t c = 0; c < 4; ++c)
    for (std::int64_t i = 0; i < 10; ++i) e.emplace_back(c * 10 + i, c * 10 + (i + 1) % 10);
  const auto g = test::undirected(40, e);
  partition_params pp;
  pp.parts = 4;
  auto r = metis_partition(g.view(), pp);
  require_valid(r, 40, 4, false);
  REQUIRE(r.edge_cut == recount_cut(e, r.part));

  // Self-loops are dropped before METIS: same partition as without them.
  const auto with_loops = test::undirected(40, e, /*self_loops=*/true);
  REQUIRE(with_loops.num_edges() == g.num_edges() + 40);
  const auto rl = metis_partition(with_loops.view(), pp);
  REQUIRE(rl.part == r.part);
  REQUIRE(rl.edge_cut == r.edge_cut);

  // No edges at all.
  const csr_graph<> isolated(10);
  pp.parts = 3;
  r = metis_partition(isolated.view(), pp);
  require_valid(r, 10, 3, false);
  REQUIRE(r.edge_cut == 0);
  REQUIRE(edge_cut_fraction(isolated.view(), std::span<const std::int32_t>(r.part)) == 0.0);
}

TEST_CASE("metis_partition: parts == 1, empty graph and bad arguments", "[metis]") {
  const auto g = test::path_graph(5);
  partition_params pp;
  pp.parts = 1;
  auto r = metis_partition(g.view(), pp);
  REQUIRE(r.part == std::vector<std::int32_t>(5, 0));
  REQUIRE(r.edge_cut == 0);

  const csr_graph<> empty;
  pp.parts = 4;
  r = metis_partition(empty.view(), pp);
  REQUIRE(r.part.empty());
  REQUIRE(r.edge_cut == 0);

  pp.parts = 6;  // more parts than nodes
  REQUIRE_THROWS_AS(metis_partition(g.view(), pp), invalid_argument);
  pp.parts = 0;
  REQUIRE_THROWS_AS(metis_partition(g.view(), pp), invalid_argument);
  pp.parts = 2;
  pp.imbalance = 0.5;
  REQUIRE_THROWS_AS(metis_partition(g.view(), pp), invalid_argument);
  pp.imbalance = 1.03;
  pp.seed = -3;
  REQUIRE_THROWS_AS(metis_partition(g.view(), pp), invalid_argument);
  pp.seed = 0;

  // Asymmetric: 0 -> 1 only.
  const csr_graph<> directed(3, 3, {0, 1, 1, 1}, {1});
  REQUIRE_THROWS_WITH(metis_partition(directed.view(), pp),
                      Catch::Contains("not symmetric") && Catch::Contains("0 -> 1"));

  // Ids that do not fit METIS's 32-bit idx_t (checked before anything is allocated).
  if constexpr (sizeof(idx_t) == 4) {
    const std::vector<std::int64_t> ptr = {0};
    csr_view<> huge;
    huge.num_rows = huge.num_cols = std::int64_t{1} << 33;
    // A fake view would fail validate(); test the narrowing check directly.
    REQUIRE_THROWS_AS(detail::make_metis_graph(
                          std::int64_t{1} << 33, [](std::int64_t, auto&&) {}, pp, "test"),
                      out_of_range);
  }

  std::vector<std::int32_t> short_part(3, 0);
  REQUIRE_THROWS_AS(edge_cut_fraction(g.view(), std::span<const std::int32_t>(short_part)),
                    invalid_argument);
}

TEST_CASE("metis_partition: imbalance 1.0 (below METIS's 1/1000 step) partitions fine", "[metis]") {
  // round((1.0 - 1) * 1000) = 0 is a UFACTOR METIS rejects; the wrapper clamps it to 1.
  const auto edges = random_connected(200, 300, 5);
  const auto g = test::undirected(200, edges);
  for (double imb : {1.0, 1.0004}) {
    for (auto method : {partition_method::kway, partition_method::recursive}) {
      CAPTURE(imb, method == partition_method::kway);
      partition_params pp;
      pp.parts = 4;
      pp.method = method;
      pp.imbalance = imb;
      partition_result r;
      REQUIRE_NOTHROW(r = metis_partition(g.view(), pp));
      require_valid(r, 200, 4, true);
      // the same partition as the smallest step METIS accepts
      pp.imbalance = 1.001;
      REQUIRE(metis_partition(g.view(), pp).part == r.part);
    }
  }
}

TEST_CASE("metis_partition: vertex weights", "[metis]") {
  const std::int64_t n = 40;
  const auto g = test::path_graph(n);
  std::vector<std::int64_t> w(static_cast<std::size_t>(n), 1);
  w[0] = 39;  // node 0 weighs as much as all the others together
  partition_params pp;
  pp.parts = 2;
  pp.vertex_weights = w;
  const auto r = metis_partition(g.view(), pp);
  require_valid(r, n, 2, true);
  const auto own = std::count(r.part.begin(), r.part.end(), r.part[0]);
  CHECK(own <= 4);  // balance by weight puts few nodes beside node 0
  pp.vertex_weights = {};
  const auto plain = metis_partition(g.view(), pp);
  CHECK(std::count(plain.part.begin(), plain.part.end(), plain.part[0]) >= 15);

  std::vector<std::int64_t> bad(static_cast<std::size_t>(n), 1);
  bad[3] = -1;
  pp.vertex_weights = bad;
  REQUIRE_THROWS_WITH(metis_partition(g.view(), pp), Catch::Contains("vertex_weights[3]"));
  pp.vertex_weights = std::span<const std::int64_t>(bad).first(5);
  REQUIRE_THROWS_AS(metis_partition(g.view(), pp), invalid_argument);
  std::vector<std::int64_t> big(static_cast<std::size_t>(n), std::int64_t{1} << 40);
  pp.vertex_weights = big;
  REQUIRE_THROWS_AS(metis_partition(g.view(), pp), out_of_range);
}

TEST_CASE("metis_partition_subset: induced subgraph", "[metis]") {
  const auto g = test::two_cliques_with_isolated(6);
  // Clique A without node 5 (the bridge end), all of clique B, and the isolated node.
  const std::vector<std::int64_t> nodes = {12, 0, 1, 2, 3, 4, 6, 7, 8, 9, 10, 11};
  partition_params pp;
  pp.parts = 2;
  const auto r = metis_partition_subset(g.view(), std::span<const std::int64_t>(nodes), pp);
  require_valid(r, 12, 2, true);
  REQUIRE(r.edge_cut == 0);  // the bridge (5, 6) is outside the subset
  for (int i = 2; i <= 5; ++i) REQUIRE(r.part[static_cast<std::size_t>(i)] == r.part[1]);
  for (int i = 7; i <= 11; ++i) REQUIRE(r.part[static_cast<std::size_t>(i)] == r.part[6]);
  REQUIRE(r.part[1] != r.part[6]);

  // Random subsets of a random graph: cut equals a recount on the induced edges.
  const std::int64_t n = 200;
  const auto edges = random_connected(n, 500, 9);
  const auto rg = test::undirected(n, edges);
  std::vector<std::int64_t> sub;
  for (std::int64_t v = 0; v < n; v += 2) sub.push_back(v);
  std::vector<std::int64_t> local(static_cast<std::size_t>(n), -1);
  for (std::size_t i = 0; i < sub.size(); ++i)
    local[static_cast<std::size_t>(sub[i])] = static_cast<std::int64_t>(i);
  edge_list induced;
  for (auto [a, b] : edges)
    if (local[static_cast<std::size_t>(a)] >= 0 && local[static_cast<std::size_t>(b)] >= 0)
      induced.emplace_back(local[static_cast<std::size_t>(a)], local[static_cast<std::size_t>(b)]);
  pp.parts = 4;
  std::vector<std::int64_t> w(sub.size(), 2);
  pp.vertex_weights = w;
  const auto rs = metis_partition_subset(rg.view(), std::span<const std::int64_t>(sub), pp);
  require_valid(rs, static_cast<std::int64_t>(sub.size()), 4, false);
  REQUIRE(rs.edge_cut == recount_cut(induced, rs.part));
  pp.vertex_weights = {};

  pp.parts = 2;
  const std::vector<std::int64_t> dup = {1, 2, 1};
  REQUIRE_THROWS_WITH(metis_partition_subset(g.view(), std::span<const std::int64_t>(dup), pp),
                      Catch::Contains("appears twice"));
  const std::vector<std::int64_t> out = {1, 99};
  REQUIRE_THROWS_AS(metis_partition_subset(g.view(), std::span<const std::int64_t>(out), pp),
                    out_of_range);
}

TEST_CASE("metis on the generator: communities give locality", "[metis][generate]") {
  generator_params p;
  p.nodes = 20'000;
  p.avg_degree = 16;
  p.classes = 10;
  p.features = 0;
  p.community_size = 50;
  p.max_degree = 1'000;
  partition_params pp;
  pp.parts = 16;
  const auto local = generate_dataset(p);
  const auto rl = metis_partition(local.graph.view(), pp);
  const double cut_local =
      edge_cut_fraction(local.graph.view(), std::span<const std::int32_t>(rl.part));
  p.community_fraction = 0;
  const auto flat = generate_dataset(p);
  const auto rf = metis_partition(flat.graph.view(), pp);
  const double cut_flat =
      edge_cut_fraction(flat.graph.view(), std::span<const std::int32_t>(rf.part));
  CHECK(cut_local < 0.35);
  CHECK(cut_flat > 0.45);
  CHECK(cut_local < 0.7 * cut_flat);
}
