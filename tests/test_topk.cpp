// Top-k selection: against a brute-force full sort, and against the ranking of exact PPR.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <optional>
#include <random>
#include <set>
#include <vector>

#include <Eigen/Dense>
#include <catch2/catch.hpp>

#include "fixtures.hpp"
#include "ibmb/graph/build.hpp"
#include "ibmb/ppr/push.hpp"
#include "ibmb/ppr/topk.hpp"

using namespace ibmb;

namespace {

// Brute force: full sort by (score desc, id asc), take k, add `keep`, sort by id.
template <class I, class V>
sparse_row<I, V> brute_topk(const std::vector<I>& ids, const std::vector<V>& sc, std::int64_t k,
                            std::optional<I> keep) {
  std::vector<std::size_t> order(ids.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    if (sc[a] != sc[b]) return sc[a] > sc[b];
    return ids[a] < ids[b];
  });
  if (k > 0 && static_cast<std::size_t>(k) < order.size()) {
    std::vector<std::size_t> kept(order.begin(), order.begin() + k);
    if (keep) {
      bool in = false;
      for (auto x : kept) in |= ids[x] == *keep;
      if (!in)
        for (auto x : order)
          if (ids[x] == *keep) {
            kept.push_back(x);
            break;
          }
    }
    order = kept;
  }
  std::sort(order.begin(), order.end(),
            [&](std::size_t a, std::size_t b) { return ids[a] < ids[b]; });
  sparse_row<I, V> r;
  for (auto x : order) {
    r.indices.push_back(ids[x]);
    r.values.push_back(sc[x]);
  }
  return r;
}

Eigen::MatrixXd exact_ppr(const csr_graph<std::int64_t, std::int64_t, float>& g, double alpha) {
  const auto n = static_cast<Eigen::Index>(g.num_rows);
  Eigen::MatrixXd m = Eigen::MatrixXd::Identity(n, n);
  const auto v = g.view();
  for (Eigen::Index u = 0; u < n; ++u) {
    const auto deg = static_cast<double>(v.degree(u));
    for (auto w : v.neighbors(u)) m(u, w) -= (1.0 - alpha) / deg;
  }
  return alpha * m.inverse();  // row s = exact PPR row of s
}

}  // namespace

TEMPLATE_TEST_CASE("topk_select equals a brute-force sort, ties by id", "[topk]", float, double) {
  using V = TestType;
  std::mt19937_64 rng(42);
  for (int trial = 0; trial < 300; ++trial) {
    const auto n = static_cast<std::size_t>(rng() % 60);
    std::vector<std::int64_t> ids(n);
    std::iota(ids.begin(), ids.end(), 0);
    std::shuffle(ids.begin(), ids.end(), rng);
    for (auto& x : ids) x = x * 3 + 1;  // sparse ids
    std::vector<V> sc(n);
    for (auto& s : sc) s = static_cast<V>(rng() % 5) / 4;  // many ties, some zeros
    const auto k = static_cast<std::int64_t>(rng() % (n + 3));
    std::optional<std::int64_t> keep;
    if (n > 0 && rng() % 2) keep = ids[rng() % n];
    INFO("trial " << trial << " n " << n << " k " << k);
    const auto got = topk_select<std::int64_t, V>(ids, sc, k, keep);
    REQUIRE(got == brute_topk(ids, sc, k, keep));
    if (k > 0) {
      REQUIRE(got.size() <= static_cast<std::size_t>(k) + 1);
      REQUIRE(got.size() == std::min<std::size_t>(n, static_cast<std::size_t>(k)) +
                                (got.size() > static_cast<std::size_t>(k) ? 1 : 0));
    }
    if (keep) REQUIRE(std::count(got.indices.begin(), got.indices.end(), *keep) == 1);
  }
}

TEST_CASE("topk_select: edge cases and errors", "[topk]") {
  const std::vector<std::int32_t> ids = {5, 3, 9};
  const std::vector<float> sc = {0.5f, 0.5f, 0.1f};
  auto r = topk_select<std::int32_t, float>(ids, sc, 1);
  REQUIRE(r.indices == std::vector<std::int32_t>{3});  // tie: smaller id wins
  r = topk_select<std::int32_t, float>(ids, sc, 1, 9);
  REQUIRE(r.indices == std::vector<std::int32_t>{3, 9});  // k best plus the kept one
  r = topk_select<std::int32_t, float>(ids, sc, 0);
  REQUIRE(r.indices == std::vector<std::int32_t>{3, 5, 9});  // k = 0 keeps all, by id
  r = topk_select<std::int32_t, float>(ids, sc, 2, 42);      // absent id: nothing added
  REQUIRE(r.indices == std::vector<std::int32_t>{3, 5});
  const std::vector<float> bad = {0.5f, NAN, 0.1f};
  REQUIRE_THROWS_AS((topk_select<std::int32_t, float>(ids, bad, 1)), ibmb::invalid_argument);
  REQUIRE_THROWS_AS((topk_select<std::int32_t, float>(ids, std::vector<float>{1.f}, 1)),
                    ibmb::invalid_argument);
}

TEST_CASE("push top-k equals the exact PPR top-k where the score gap exceeds the error",
          "[topk][ppr]") {
  // Random sparse graph + fixture graphs, preprocessed as the reference does.
  std::vector<csr_graph<std::int64_t, std::int64_t, float>> graphs;
  {
    std::mt19937_64 rng(3);
    std::vector<std::pair<std::int64_t, std::int64_t>> e;
    for (int i = 0; i < 900; ++i) e.emplace_back(rng() % 300, rng() % 300);
    graphs.push_back(make_undirected_with_self_loops(test::undirected(300, e).view()));
  }
  graphs.push_back(make_undirected_with_self_loops(test::two_cliques_with_isolated(6).view()));
  graphs.push_back(make_undirected_with_self_loops(test::star_graph(9).view()));
  const double alpha = 0.25, eps = 1e-5;
  std::int64_t compared = 0;
  for (const auto& g : graphs) {
    const auto v = g.view();
    const auto exact = exact_ppr(g, alpha);
    std::vector<std::int64_t> outs(static_cast<std::size_t>(v.num_rows));
    std::iota(outs.begin(), outs.end(), 0);
    for (std::int64_t k : {1, 4, 16}) {
      ppr_params p;
      p.alpha = alpha;
      p.eps = eps;
      p.topk = k;
      p.include_output = false;
      const auto m = nodewise_ppr(v, outs, p);
      std::int64_t max_deg = 0;
      for (std::int64_t u = 0; u < v.num_rows; ++u)
        max_deg = std::max<std::int64_t>(max_deg, v.degree(u));
      const double err = eps * static_cast<double>(max_deg) + 1e-6;  // bound + float rounding
      for (std::int64_t s = 0; s < v.num_rows; ++s) {
        std::vector<std::pair<double, std::int64_t>> rank;
        for (std::int64_t w = 0; w < v.num_rows; ++w)
          if (exact(s, w) > 0) rank.emplace_back(exact(s, w), w);
        std::sort(rank.begin(), rank.end(), [](auto a, auto b) {
          return a.first != b.first ? a.first > b.first : a.second < b.second;
        });
        if (static_cast<std::int64_t>(rank.size()) <= k) continue;
        // The push may miss the exact order only if the k-th and (k+1)-th exact scores are
        // closer than the error bound (then any of them is a valid answer).
        if (rank[static_cast<std::size_t>(k - 1)].first - rank[static_cast<std::size_t>(k)].first <=
            err)
          continue;
        std::set<std::int64_t> want;
        for (std::int64_t i = 0; i < k; ++i) want.insert(rank[static_cast<std::size_t>(i)].second);
        const auto got = m.row_indices(s);
        INFO("source " << s << " k " << k);
        REQUIRE(std::set<std::int64_t>(got.begin(), got.end()) == want);
        ++compared;
      }
    }
  }
  REQUIRE(compared > 300);  // the comparison actually ran on most rows
}

TEST_CASE("nodewise_ppr top-k rows: k entries, the output included, selection of the full row",
          "[topk]") {
  auto g = make_undirected_with_self_loops(test::two_cliques_with_isolated(8).view());
  const auto v = g.view();
  std::vector<std::int64_t> outs = {16, 3, 12, 0, 7};
  ppr_params all;
  all.eps = 1e-4;
  all.topk = 0;
  const auto full = nodewise_ppr(v, outs, all);
  for (std::int64_t k : {1, 3, 8}) {
    ppr_params p = all;
    p.topk = k;
    const auto m = nodewise_ppr(v, outs, p);
    for (std::int64_t i = 0; i < m.num_rows; ++i) {
      const auto idx = m.row_indices(i);
      REQUIRE(std::find(idx.begin(), idx.end(), outs[static_cast<std::size_t>(i)]) != idx.end());
      REQUIRE(static_cast<std::int64_t>(idx.size()) <= k + 1);
      std::vector<std::int64_t> fi(full.row_indices(i).begin(), full.row_indices(i).end());
      std::vector<float> fv(full.row_values(i).begin(), full.row_values(i).end());
      const auto want =
          brute_topk<std::int64_t, float>(fi, fv, k, outs[static_cast<std::size_t>(i)]);
      REQUIRE(std::vector<std::int64_t>(idx.begin(), idx.end()) == want.indices);
    }
  }
}
