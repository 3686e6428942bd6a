// Induced-subgraph extraction (graph/subgraph.hpp) against a brute-force dense reference.
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <map>
#include <numeric>
#include <random>
#include <span>
#include <stdexcept>
#include <vector>

#include <catch2/catch.hpp>

#include "ibmb/core/parallel.hpp"
#include "ibmb/graph/build.hpp"
#include "ibmb/graph/subgraph.hpp"

namespace {

/// Random directed multigraph as a CSR whose rows are left in insertion order (unsorted, with
/// repeated entries) or sorted (stable, so repeats keep their order), with distinct weights.
template <class I>
ibmb::csr_graph<I, std::int64_t, float> random_csr(std::int64_t n, std::int64_t deg, bool sorted,
                                                   std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<std::vector<std::pair<I, float>>> rows(static_cast<std::size_t>(n));
  float w = 1.0f;
  for (auto& r : rows) {
    const auto d = std::uniform_int_distribution<std::int64_t>(0, 2 * deg)(rng);
    for (std::int64_t k = 0; k < d; ++k) {
      r.emplace_back(static_cast<I>(std::uniform_int_distribution<std::int64_t>(0, n - 1)(rng)), w);
      w += 0.25f;
    }
    if (sorted)
      std::stable_sort(r.begin(), r.end(),
                       [](const auto& a, const auto& b) { return a.first < b.first; });
  }
  ibmb::csr_graph<I, std::int64_t, float> g;
  g.num_rows = g.num_cols = static_cast<I>(n);
  g.indptr.push_back(0);
  for (const auto& r : rows) {
    for (const auto& [c, x] : r) {
      g.indices.push_back(c);
      g.weights.push_back(x);
    }
    g.indptr.push_back(static_cast<std::int64_t>(g.indices.size()));
  }
  return g;
}

/// Reference: for local row i, every entry of global row nodes[i] whose column is a batch
/// node, as (local column, weight), ordered by local column and then by position in the row.
template <class I>
std::vector<std::vector<std::pair<std::int64_t, float>>> brute(
    const ibmb::csr_graph<I, std::int64_t, float>& g, const std::vector<I>& nodes) {
  std::map<std::int64_t, std::int64_t> local;
  for (std::size_t i = 0; i < nodes.size(); ++i) local[nodes[i]] = static_cast<std::int64_t>(i);
  std::vector<std::vector<std::pair<std::int64_t, float>>> out(nodes.size());
  for (std::size_t i = 0; i < nodes.size(); ++i) {
    const auto u = static_cast<std::size_t>(nodes[i]);
    for (auto e = g.indptr[u]; e < g.indptr[u + 1]; ++e) {
      const auto it = local.find(g.indices[static_cast<std::size_t>(e)]);
      if (it != local.end())
        out[i].emplace_back(it->second, g.weights[static_cast<std::size_t>(e)]);
    }
    std::stable_sort(out[i].begin(), out[i].end(),
                     [](const auto& a, const auto& b) { return a.first < b.first; });
  }
  return out;
}

template <class I>
void check_equal(const ibmb::csr_graph<std::int64_t, std::int64_t, float>& s,
                 const std::vector<std::vector<std::pair<std::int64_t, float>>>& ref) {
  REQUIRE(s.num_rows == static_cast<std::int64_t>(ref.size()));
  REQUIRE(s.indptr.size() == ref.size() + 1);
  for (std::size_t i = 0; i < ref.size(); ++i) {
    const auto b = static_cast<std::size_t>(s.indptr[i]);
    REQUIRE(s.indptr[i + 1] - s.indptr[i] == static_cast<std::int64_t>(ref[i].size()));
    for (std::size_t k = 0; k < ref[i].size(); ++k) {
      REQUIRE(s.indices[b + k] == ref[i][k].first);
      REQUIRE(s.weights[b + k] == ref[i][k].second);
    }
  }
}

/// Runs a reused extractor's scan + write on `nodes` into a fresh local CSR (int64, float).
template <class Ex>
ibmb::csr_graph<std::int64_t, std::int64_t, float> extract_with(
    Ex& ex, const std::vector<std::int64_t>& nodes) {
  const auto m = ex.scan(std::span<const std::int64_t>(nodes));
  ibmb::csr_graph<std::int64_t, std::int64_t, float> s;
  s.num_rows = s.num_cols = static_cast<std::int64_t>(nodes.size());
  s.indptr.resize(nodes.size() + 1);
  s.indices.resize(static_cast<std::size_t>(m));
  s.weights.resize(static_cast<std::size_t>(m));
  ex.write(std::span<std::int64_t>(s.indptr), std::span<std::int64_t>(s.indices),
           std::span<float>(s.weights));
  return s;
}

}  // namespace

TEMPLATE_TEST_CASE("induced_subgraph equals the brute-force induced submatrix", "[subgraph]",
                   std::int32_t, std::int64_t) {
  using I = TestType;
  const std::int64_t n = 400;
  for (const bool sorted : {true, false}) {
    const auto g = random_csr<I>(n, 6, sorted, sorted ? 7 : 8);
    std::mt19937_64 rng(11);
    std::vector<I> all(static_cast<std::size_t>(n));
    std::iota(all.begin(), all.end(), I{0});
    for (int trial = 0; trial < 12; ++trial) {
      std::shuffle(all.begin(), all.end(), rng);
      const auto k = static_cast<std::size_t>(std::uniform_int_distribution<int>(0, 200)(rng));
      std::vector<I> nodes(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(k));
      const int shape = trial % 3;  // 0 sorted, 1 two sorted runs (outputs first), 2 arbitrary
      if (shape == 0) std::sort(nodes.begin(), nodes.end());
      if (shape == 1) {
        const auto cut = nodes.begin() + static_cast<std::ptrdiff_t>(k / 3);
        std::sort(nodes.begin(), cut);
        std::sort(cut, nodes.end());
      }
      CAPTURE(sorted, shape, k);
      for (int threads : {1, 2, 4}) {
        ibmb::scoped_threads th(threads);
        const auto s = ibmb::induced_subgraph(g.view(), std::span<const I>(nodes));
        check_equal<I>(s, brute(g, nodes));
      }
    }
  }
}

TEST_CASE("subgraph_extractor is reusable and reports bad ids", "[subgraph]") {
  const auto g = random_csr<std::int64_t>(50, 4, true, 3);
  ibmb::subgraph_extractor ex(g.view());
  std::vector<std::int64_t> bad = {3, 60};
  REQUIRE_THROWS_AS(ex.scan(std::span<const std::int64_t>(bad)), ibmb::out_of_range);
  REQUIRE_THROWS_WITH(ex.scan(std::span<const std::int64_t>(bad)),
                      Catch::Contains("nodes[1] = 60") && Catch::Contains("[0, 50)"));
  std::vector<std::int64_t> dup = {5, 9, 5};
  REQUIRE_THROWS_AS(ex.scan(std::span<const std::int64_t>(dup)), ibmb::invalid_argument);
  REQUIRE_THROWS_WITH(ex.scan(std::span<const std::int64_t>(dup)),
                      Catch::Contains("node 5 appears twice"));
  // After the errors (and between subgraphs) the map is clean: results equal fresh ones.
  for (std::vector<std::int64_t> nodes :
       {std::vector<std::int64_t>{1, 2, 3, 4}, {40, 3, 9, 1, 30}, {3, 5, 9}}) {
    check_equal<std::int64_t>(extract_with(ex, nodes), brute(g, nodes));
  }
  // Values from a per-entry array (e.g. a global normalization) replace the graph's weights.
  std::vector<double> values(g.indices.size());
  for (std::size_t e = 0; e < values.size(); ++e) values[e] = static_cast<double>(e);
  std::vector<std::int64_t> nodes = {7, 1, 2, 30};
  const auto m = ex.scan(std::span<const std::int64_t>(nodes));
  std::vector<std::int32_t> ip(nodes.size() + 1), idx(static_cast<std::size_t>(m));
  std::vector<double> w(static_cast<std::size_t>(m));
  ex.write(std::span<std::int32_t>(ip), std::span<std::int32_t>(idx), std::span<double>(w),
           std::span<const double>(values));
  // A value function taking the local ids gets the row's position and the column's.
  std::atomic<int> mismatches{0};
  for (std::vector<std::int64_t> order :
       {std::vector<std::int64_t>{1, 2, 7, 30}, {7, 30, 1, 2}, {30, 2, 7, 1}}) {
    const auto mm = ex.scan(std::span<const std::int64_t>(order));
    std::vector<std::int64_t> ip2(order.size() + 1), idx2(static_cast<std::size_t>(mm));
    std::vector<double> w2(static_cast<std::size_t>(mm));
    ex.write_with(
        std::span<std::int64_t>(ip2), std::span<std::int64_t>(idx2), std::span<double>(w2),
        [&](std::int64_t e, std::int64_t u, std::int64_t v, std::int64_t i,
            std::int64_t l) {  // called from the OpenMP threads: no REQUIRE here
          if (order[static_cast<std::size_t>(i)] != u || order[static_cast<std::size_t>(l)] != v ||
              g.indices[static_cast<std::size_t>(e)] != v)
            ++mismatches;
          return static_cast<double>(l);
        });
    REQUIRE(mismatches == 0);
    for (std::size_t p = 0; p < idx2.size(); ++p) REQUIRE(w2[p] == static_cast<double>(idx2[p]));
  }
  for (std::size_t i = 0; i < nodes.size(); ++i)
    for (auto p = ip[i]; p < ip[i + 1]; ++p) {
      const auto e = static_cast<std::size_t>(w[static_cast<std::size_t>(p)]);
      REQUIRE(g.indices[e] == nodes[static_cast<std::size_t>(idx[static_cast<std::size_t>(p)])]);
      REQUIRE(static_cast<std::int64_t>(e) >= g.indptr[static_cast<std::size_t>(nodes[i])]);
      REQUIRE(static_cast<std::int64_t>(e) < g.indptr[static_cast<std::size_t>(nodes[i]) + 1]);
    }
}

TEST_CASE("subgraph_extractor: an exception of the value function reaches the caller",
          "[subgraph]") {
  const auto g = random_csr<std::int64_t>(300, 6, true, 5);
  ibmb::scoped_threads th(2);
  ibmb::subgraph_extractor ex(g.view());
  std::vector<std::int64_t> nodes(300);
  std::iota(nodes.begin(), nodes.end(), std::int64_t{0});
  const auto m = ex.scan(std::span<const std::int64_t>(nodes));
  REQUIRE(m > 0);
  std::vector<std::int64_t> ip(nodes.size() + 1), idx(static_cast<std::size_t>(m));
  std::vector<float> w(static_cast<std::size_t>(m));
  REQUIRE_THROWS_WITH(
      ex.write_with(std::span<std::int64_t>(ip), std::span<std::int64_t>(idx), std::span<float>(w),
                    [](std::int64_t e, std::int64_t, std::int64_t) -> float {
                      if (e >= 10) throw std::runtime_error("value function failed");
                      return 1.0f;
                    }),
      "value function failed");
  // The extractor was reset: the next subgraph is right.
  std::vector<std::int64_t> some = {4, 90, 17, 250};
  check_equal<std::int64_t>(extract_with(ex, some), brute(g, some));
}

TEST_CASE("subgraph_extractor: entries beyond the local index type are out_of_range",
          "[subgraph]") {
  // A complete graph on 200 nodes: the subgraph of all of them has 40000 entries, more than
  // int16 offsets hold.
  const std::int64_t n = 200;
  ibmb::csr_graph<std::int64_t, std::int64_t, float> g;
  g.num_rows = g.num_cols = n;
  g.indptr.push_back(0);
  for (std::int64_t u = 0; u < n; ++u) {
    for (std::int64_t v = 0; v < n; ++v) g.indices.push_back(v);
    g.indptr.push_back(static_cast<std::int64_t>(g.indices.size()));
  }
  ibmb::subgraph_extractor ex(g.view());
  std::vector<std::int64_t> nodes(static_cast<std::size_t>(n));
  std::iota(nodes.begin(), nodes.end(), std::int64_t{0});
  const auto m = ex.scan(std::span<const std::int64_t>(nodes));
  REQUIRE(m == 40000);
  std::vector<std::int16_t> ip(nodes.size() + 1), idx(static_cast<std::size_t>(m));
  std::vector<float> w(static_cast<std::size_t>(m));
  REQUIRE_THROWS_AS(
      ex.write(std::span<std::int16_t>(ip), std::span<std::int16_t>(idx), std::span<float>(w)),
      ibmb::out_of_range);
  REQUIRE(ex.scan(std::span<const std::int64_t>(nodes)) == m);
  REQUIRE_THROWS_WITH(
      ex.write(std::span<std::int16_t>(ip), std::span<std::int16_t>(idx), std::span<float>(w)),
      Catch::Contains("40000 entries") && Catch::Contains("16-bit") && Catch::Contains("32767"));
  // 181 nodes: 32761 entries fit.
  std::vector<std::int64_t> fewer(nodes.begin(), nodes.begin() + 181);
  const auto m3 = ex.scan(std::span<const std::int64_t>(fewer));
  REQUIRE(m3 == 181 * 181);
  std::vector<std::int16_t> ip3(fewer.size() + 1), idx3(static_cast<std::size_t>(m3));
  std::vector<float> w3(static_cast<std::size_t>(m3));
  ex.write(std::span<std::int16_t>(ip3), std::span<std::int16_t>(idx3), std::span<float>(w3));
  REQUIRE(ip3.back() == 181 * 181);
  REQUIRE(idx3.back() == 180);
}

TEST_CASE("induced_subgraph validates the graph", "[subgraph]") {
  // Column 500 in a 3-node graph would index the membership bitmap out of bounds.
  ibmb::csr_graph<std::int64_t, std::int64_t, float> g;
  g.num_rows = g.num_cols = 3;
  g.indptr = {0, 1, 2, 3};
  g.indices = {1, 500, 0};
  const std::vector<std::int64_t> nodes = {0, 1, 2};
  REQUIRE_THROWS_AS(ibmb::induced_subgraph(g.view(), std::span<const std::int64_t>(nodes)),
                    ibmb::format_error);
  REQUIRE_THROWS_WITH(ibmb::induced_subgraph(g.view(), std::span<const std::int64_t>(nodes)),
                      Catch::Contains("column 500"));
  g.indptr = {0, 1, 2};  // indptr too short for 3 rows
  g.indices = {1, 0};
  REQUIRE_THROWS_AS(ibmb::induced_subgraph(g.view(), std::span<const std::int64_t>(nodes)),
                    ibmb::format_error);
}
