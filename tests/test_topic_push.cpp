// Multi-source forward push for topic-sensitive PPR (ppr/topic_push.hpp) against a dense solve
// of both transitions, within the documented push error bound.
#include <algorithm>
#include <cstdint>
#include <random>
#include <vector>

#include <Eigen/Dense>
#include <catch2/catch.hpp>

#include "fixtures.hpp"
#include "ibmb/core/parallel.hpp"
#include "ibmb/graph/build.hpp"
#include "ibmb/ppr/topic.hpp"
#include "ibmb/ppr/topic_push.hpp"

using namespace ibmb;

namespace {

struct sets_holder {
  std::vector<std::int64_t> ptr{0};
  std::vector<std::int64_t> nodes;
  void add(std::vector<std::int64_t> s) {
    nodes.insert(nodes.end(), s.begin(), s.end());
    ptr.push_back(static_cast<std::int64_t>(nodes.size()));
  }
  teleport_sets<std::int64_t> view() const { return {ptr, nodes}; }
};

template <class G>
sets_holder random_sets(const G& g, int count, int max_size, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  sets_holder h;
  for (int s = 0; s < count; ++s) {
    std::vector<std::int64_t> set;
    const int size = 1 + static_cast<int>(rng() % static_cast<std::uint64_t>(max_size));
    for (int i = 0; i < size; ++i)
      set.push_back(static_cast<std::int64_t>(rng() % static_cast<std::uint64_t>(g.num_nodes())));
    h.add(set);
  }
  return h;
}

// Exact scores by a dense LU solve, written independently of the library:
// row:    x = alpha (I - (1 - alpha) D^-1 A)^-1 t
// column: x = alpha (I - (1 - alpha) A D^-1)^-1 t
// (a node without entries gets a self-loop: it keeps its mass), plus max(deg, 1) per node.
template <class G>
Eigen::MatrixXd exact_scores(const G& g, const sets_holder& sets, double alpha, ppr_transition tr,
                             Eigen::VectorXd& deg) {
  const auto n = static_cast<Eigen::Index>(g.num_nodes());
  Eigen::MatrixXd a = Eigen::MatrixXd::Zero(n, n);
  auto v = g.view();
  for (Eigen::Index r = 0; r < n; ++r) {
    for (auto c : v.neighbors(r)) a(r, static_cast<Eigen::Index>(c)) += 1;
    if (v.degree(r) == 0) a(r, r) = 1;
  }
  deg = a.rowwise().sum();
  const Eigen::VectorXd inv = deg.cwiseInverse();
  const Eigen::MatrixXd p = tr == ppr_transition::row ? Eigen::MatrixXd(inv.asDiagonal() * a)
                                                      : Eigen::MatrixXd(a * inv.asDiagonal());
  const auto s = static_cast<Eigen::Index>(sets.ptr.size() - 1);
  Eigen::MatrixXd t = Eigen::MatrixXd::Zero(n, s);
  for (Eigen::Index j = 0; j < s; ++j) {
    const auto b = sets.ptr[static_cast<std::size_t>(j)],
               e = sets.ptr[static_cast<std::size_t>(j) + 1];
    for (auto i = b; i < e; ++i)
      t(static_cast<Eigen::Index>(sets.nodes[static_cast<std::size_t>(i)]), j) +=
          1.0 / static_cast<double>(e - b);
  }
  Eigen::MatrixXd m = Eigen::MatrixXd::Identity(n, n) - (1 - alpha) * p;
  return alpha * m.partialPivLu().solve(t);
}

// Checks 0 <= exact - estimate < bound (+ rounding slack) at every node, for every set.
template <class G>
void check_bound(const G& g, const sets_holder& sets, ppr_transition tr, double eps,
                 push_order order) {
  topic_push_params p;
  p.alpha = 0.2;
  p.eps = eps;
  p.transition = tr;
  p.order = order;
  Eigen::VectorXd deg;
  const auto want = exact_scores(g, sets, p.alpha, tr, deg);
  const auto rows = topic_push_rows<double>(g.view(), sets.view(), p);
  REQUIRE(static_cast<Eigen::Index>(rows.size()) == want.cols());
  const auto n = want.rows();
  for (Eigen::Index s = 0; s < want.cols(); ++s) {
    Eigen::VectorXd got = Eigen::VectorXd::Zero(n);
    const auto& r = rows[static_cast<std::size_t>(s)];
    REQUIRE(std::is_sorted(r.indices.begin(), r.indices.end()));
    for (std::size_t i = 0; i < r.size(); ++i)
      got(static_cast<Eigen::Index>(r.indices[i])) = r.values[i];
    double z = 1;
    if (tr == ppr_transition::row) {
      z = 0;
      const auto set = sets.view().set(s);
      for (auto u : set) z += deg(static_cast<Eigen::Index>(u)) / static_cast<double>(set.size());
    }
    for (Eigen::Index v = 0; v < n; ++v) {
      const double bound = tr == ppr_transition::column ? eps * deg(v) : eps * z;
      INFO("set " << s << " node " << v << " exact " << want(v, s) << " push " << got(v)
                  << " bound " << bound);
      CHECK(want(v, s) - got(v) >= -1e-12);
      CHECK(want(v, s) - got(v) < bound + 1e-12);
    }
  }
}

}  // namespace

TEST_CASE("topic push: exact scores within the push bound for both transitions", "[ppr][topic]") {
  const auto graphs = {test::path_graph(7), test::cycle_graph(9), test::star_graph(6),
                       test::two_cliques_with_isolated(5)};
  for (const auto& g0 : graphs) {
    for (bool loops : {false, true}) {
      auto g = loops ? add_self_loops(g0.view()) : g0;
      const auto sets = random_sets(g, 6, 4, 11);
      for (auto tr : {ppr_transition::row, ppr_transition::column})
        for (double eps : {1e-2, 1e-4, 1e-7})
          for (auto order : {push_order::lifo, push_order::fifo})
            check_bound(g, sets, tr, eps, order);
    }
  }
}

TEST_CASE("topic push: random graph, dense solve, bound is tight enough to matter",
          "[ppr][topic]") {
  std::mt19937_64 rng(3);
  const std::int64_t n = 400;
  std::vector<std::int64_t> s, t;
  for (int e = 0; e < 1600; ++e) {
    s.push_back(static_cast<std::int64_t>(rng() % n));
    t.push_back(static_cast<std::int64_t>(rng() % n));
  }
  build_options o;
  o.make_undirected = true;
  o.duplicates = duplicate_policy::keep_first;
  o.self_loops = self_loop_policy::add;
  auto g = coo_to_csr<std::int64_t, std::int64_t, float>(n, std::span<const std::int64_t>(s),
                                                         std::span<const std::int64_t>(t),
                                                         std::span<const float>{}, o);
  const auto sets = random_sets(g, 8, 30, 4);
  for (auto tr : {ppr_transition::row, ppr_transition::column}) {
    check_bound(g, sets, tr, 1e-5, push_order::lifo);
    // The reference identity for the row transition, and a coarse push must be visibly off
    // (so the bound check above can fail).
    topic_push_params p;
    p.alpha = 0.2;
    p.eps = 1e-2;
    p.transition = tr;
    Eigen::VectorXd deg;
    const auto want = exact_scores(g, sets, p.alpha, tr, deg);
    const auto rows = topic_push_rows<double>(g.view(), sets.view(), p);
    double worst = 0;
    for (Eigen::Index j = 0; j < want.cols(); ++j) {
      Eigen::VectorXd got = Eigen::VectorXd::Zero(want.rows());
      const auto& r = rows[static_cast<std::size_t>(j)];
      for (std::size_t i = 0; i < r.size(); ++i)
        got(static_cast<Eigen::Index>(r.indices[i])) = r.values[i];
      worst = std::max(worst, (want.col(j) - got).cwiseAbs().maxCoeff());
    }
    CHECK(worst > 1e-4);
  }
}

TEST_CASE("topic push row transition = reference identity sum PPR(u,v) d_u / (|S| d_v)",
          "[ppr][topic]") {
  // Independent of the transition-matrix solve: PPR rows of alpha (I - (1-alpha) D^-1 A)^-1.
  auto g = add_self_loops(test::two_cliques_with_isolated(4).view());
  const auto n = static_cast<Eigen::Index>(g.num_nodes());
  Eigen::MatrixXd a = Eigen::MatrixXd::Zero(n, n);
  for (Eigen::Index r = 0; r < n; ++r)
    for (auto c : g.view().neighbors(r)) a(r, static_cast<Eigen::Index>(c)) += 1;
  const Eigen::VectorXd d = a.rowwise().sum();
  const double alpha = 0.25;
  const Eigen::MatrixXd pi =
      alpha *
      (Eigen::MatrixXd::Identity(n, n) - (1 - alpha) * d.cwiseInverse().asDiagonal() * a).inverse();
  sets_holder sets;
  sets.add({0, 2, 5});
  sets.add({7});
  sets.add({3, 4, 3});
  topic_push_params p;
  p.alpha = alpha;
  p.eps = 1e-10;
  const auto rows = topic_push_rows<double>(g.view(), sets.view(), p);
  for (std::int64_t s = 0; s < 3; ++s) {
    const auto set = sets.view().set(s);
    const auto& r = rows[static_cast<std::size_t>(s)];
    for (Eigen::Index v = 0; v < n; ++v) {
      double want = 0;
      for (auto u : set)
        want += pi(static_cast<Eigen::Index>(u), v) * d(static_cast<Eigen::Index>(u));
      want /= static_cast<double>(set.size()) * d(v);
      double got = 0;
      for (std::size_t i = 0; i < r.size(); ++i)
        if (r.indices[i] == v) got = r.values[i];
      CHECK(got == Approx(want).margin(1e-8));
    }
  }
}

TEST_CASE("topic push top-k: brute force over its own rows, agreement with the power iteration",
          "[ppr][topic][topk]") {
  std::mt19937_64 rng(8);
  const std::int64_t n = 3000;
  std::vector<std::int64_t> s, t;
  for (int e = 0; e < 15000; ++e) {
    s.push_back(static_cast<std::int64_t>(rng() % n));
    t.push_back(static_cast<std::int64_t>(rng() % n));
  }
  build_options o;
  o.make_undirected = true;
  o.duplicates = duplicate_policy::keep_first;
  o.self_loops = self_loop_policy::add;
  auto g = coo_to_csr<std::int64_t, std::int64_t, float>(n, std::span<const std::int64_t>(s),
                                                         std::span<const std::int64_t>(t),
                                                         std::span<const float>{}, o);
  const auto sets = random_sets(g, 9, 40, 2);
  for (auto tr : {ppr_transition::row, ppr_transition::column}) {
    topic_push_params p;
    p.eps = 1e-7;
    p.transition = tr;
    const auto rows = topic_push_rows<float>(g.view(), sets.view(), p);
    topic_ppr_params pp;
    pp.transition = tr;
    pp.max_iterations = 500;
    pp.tolerance = 1e-9;
    const auto ref = topic_ppr_topk<double>(g.view(), sets.view(), 50, pp);
    for (std::int64_t k : {0, 1, 10, 50, 100000}) {
      const auto lists = topic_push_topk<float>(g.view(), sets.view(), k, p);
      REQUIRE(lists.size() == 9);
      for (std::int64_t j = 0; j < 9; ++j) {
        const auto& r = rows[static_cast<std::size_t>(j)];
        std::vector<std::pair<float, std::int64_t>> all;
        for (std::size_t i = 0; i < r.size(); ++i)
          if (r.values[i] > 0) all.emplace_back(r.values[i], r.indices[i]);
        std::sort(all.begin(), all.end(), [](auto a, auto b) {
          return a.first != b.first ? a.first > b.first : a.second < b.second;
        });
        all.resize(std::min<std::size_t>(all.size(), static_cast<std::size_t>(k)));
        auto got = lists.list(j);
        REQUIRE(got.size() == all.size());
        for (std::size_t i = 0; i < all.size(); ++i) REQUIRE(got[i] == all[i].second);
        if (k == 50) {
          // Top-50 recall against the converged power iteration.
          auto want = ref.list(j);
          std::vector<std::int64_t> a(got.begin(), got.end()), b(want.begin(), want.end());
          std::sort(a.begin(), a.end());
          std::sort(b.begin(), b.end());
          std::vector<std::int64_t> common;
          std::set_intersection(a.begin(), a.end(), b.begin(), b.end(), std::back_inserter(common));
          CHECK(static_cast<double>(common.size()) >= 0.95 * static_cast<double>(b.size()));
        }
      }
    }
  }
}

TEST_CASE("topic push: identical bytes for 1 and 2 threads, counters, isolated node",
          "[ppr][topic][determinism]") {
  std::mt19937_64 rng(5);
  const std::int64_t n = 3000;
  std::vector<std::int64_t> s, t;
  for (int e = 0; e < 20000; ++e) {
    s.push_back(static_cast<std::int64_t>(rng() % n));
    t.push_back(static_cast<std::int64_t>(rng() % n));
  }
  build_options o;
  o.make_undirected = true;
  o.duplicates = duplicate_policy::keep_first;
  o.self_loops = self_loop_policy::add;
  auto g = coo_to_csr<std::int64_t, std::int64_t, float>(n, std::span<const std::int64_t>(s),
                                                         std::span<const std::int64_t>(t),
                                                         std::span<const float>{}, o);
  const auto sets = random_sets(g, 33, 20, 9);
  for (auto tr : {ppr_transition::row, ppr_transition::column}) {
    topic_push_params p;
    p.eps = 1e-6;
    p.transition = tr;
    topic_push_stats st1, st2;
    p.threads = 1;
    const auto l1 = topic_push_topk<float>(g.view(), sets.view(), 40, p, &st1);
    const auto r1 = topic_push_rows<float>(g.view(), sets.view(), p);
    p.threads = 2;
    const auto l2 = topic_push_topk<float>(g.view(), sets.view(), 40, p, &st2);
    const auto r2 = topic_push_rows<float>(g.view(), sets.view(), p);
    REQUIRE(l1.ids == l2.ids);
    REQUIRE(l1.scores == l2.scores);
    REQUIRE(l1.ptr == l2.ptr);
    REQUIRE(r1 == r2);
    CHECK(st1.counters == st2.counters);
    CHECK(st1.sets == 33);
    CHECK(st1.counters.pushes > 0);
    // The work bound: at most 1 / (alpha eps) relaxations per set.
    CHECK(static_cast<double>(st1.counters.edges_relaxed) <= 33.0 / (p.alpha * p.eps));
  }
  // A set holding only the isolated node 8 of the two-cliques graph scores 1 there.
  auto g2 = add_self_loops(test::two_cliques_with_isolated(4).view());
  auto g3 = test::two_cliques_with_isolated(4);  // node 8 has no entries at all
  sets_holder iso;
  iso.add({8});
  for (const auto* gp : {&g2, &g3})
    for (auto tr : {ppr_transition::row, ppr_transition::column}) {
      topic_push_params p;
      p.transition = tr;
      const auto l = topic_push_topk<float>(gp->view(), iso.view(), 5, p);
      REQUIRE(l.ids == std::vector<std::int64_t>{8});
      CHECK(l.scores[0] == Approx(1.0f));
    }
}

TEST_CASE("topic push rejects bad parameters and sets", "[ppr][topic][bad-input]") {
  auto g = test::path_graph(4);
  sets_holder ok;
  ok.add({1});
  topic_push_params p;
  p.alpha = 0;
  REQUIRE_THROWS_AS(topic_push_topk<float>(g.view(), ok.view(), 3, p), ibmb::invalid_argument);
  p = {};
  p.eps = 0;
  REQUIRE_THROWS_WITH(topic_push_topk<float>(g.view(), ok.view(), 3, p), Catch::Contains("eps"));
  p = {};
  REQUIRE_THROWS_WITH(topic_push_topk<float>(g.view(), ok.view(), -1, p),
                      Catch::Contains("k must"));
  sets_holder bad;
  bad.add({9});
  REQUIRE_THROWS_WITH(topic_push_rows<float>(g.view(), bad.view(), p), Catch::Contains("node 9"));
  sets_holder empty;
  empty.add({});
  REQUIRE_THROWS_WITH(topic_push_rows<float>(g.view(), empty.view(), p), Catch::Contains("empty"));
}
