// Topic-sensitive PPR (power iteration over blocks of teleport sets) against a dense solve.
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

using namespace ibmb;

namespace {

// Dense transition matrices of an unweighted graph; a node without edges gets a self-loop
// (it keeps its own mass), as the library documents.
template <class G>
Eigen::MatrixXd dense_adjacency(const G& g) {
  const auto n = static_cast<Eigen::Index>(g.num_nodes());
  Eigen::MatrixXd a = Eigen::MatrixXd::Zero(n, n);
  auto v = g.view();
  for (Eigen::Index r = 0; r < n; ++r) {
    for (auto c : v.neighbors(r)) a(r, static_cast<Eigen::Index>(c)) += 1;
    if (v.degree(r) == 0) a(r, r) = 1;
  }
  return a;
}

// alpha (I - (1 - alpha) P)^-1 T
Eigen::MatrixXd exact(const Eigen::MatrixXd& p, const Eigen::MatrixXd& t, double alpha) {
  const auto n = p.rows();
  Eigen::MatrixXd m = Eigen::MatrixXd::Identity(n, n) - (1 - alpha) * p;
  return alpha * m.partialPivLu().solve(t);
}

struct sets_holder {
  std::vector<std::int64_t> ptr{0};
  std::vector<std::int64_t> nodes;
  void add(std::vector<std::int64_t> s) {
    nodes.insert(nodes.end(), s.begin(), s.end());
    ptr.push_back(static_cast<std::int64_t>(nodes.size()));
  }
  teleport_sets<std::int64_t> view() const { return {ptr, nodes}; }
  Eigen::MatrixXd dense(Eigen::Index n) const {
    Eigen::MatrixXd t = Eigen::MatrixXd::Zero(n, static_cast<Eigen::Index>(ptr.size() - 1));
    for (std::size_t s = 0; s + 1 < ptr.size(); ++s)
      for (auto i = ptr[s]; i < ptr[s + 1]; ++i)
        t(static_cast<Eigen::Index>(nodes[static_cast<std::size_t>(i)]),
          static_cast<Eigen::Index>(s)) += 1.0 / static_cast<double>(ptr[s + 1] - ptr[s]);
    return t;
  }
};

template <class G>
sets_holder random_sets(const G& g, int count, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  sets_holder h;
  for (int s = 0; s < count; ++s) {
    std::vector<std::int64_t> set;
    const int size = 1 + static_cast<int>(rng() % 4);
    for (int i = 0; i < size; ++i)
      set.push_back(static_cast<std::int64_t>(rng() % static_cast<std::uint64_t>(g.num_nodes())));
    h.add(set);
  }
  return h;
}

template <class G>
void check_against_dense(const G& g, const sets_holder& sets, ppr_transition tr, int block) {
  topic_ppr_params p;
  p.alpha = 0.25;
  p.max_iterations = 200;
  p.tolerance = 1e-9;
  p.block_columns = block;
  p.transition = tr;
  const auto got = topic_ppr_dense<double>(g.view(), sets.view(), p);
  Eigen::MatrixXd a = dense_adjacency(g);
  Eigen::VectorXd inv = a.rowwise().sum().cwiseInverse();
  Eigen::MatrixXd trans = tr == ppr_transition::row ? Eigen::MatrixXd(inv.asDiagonal() * a)
                                                    : Eigen::MatrixXd(a * inv.asDiagonal());
  const Eigen::MatrixXd want = exact(trans, sets.dense(a.rows()), p.alpha);
  REQUIRE(got.rows() == want.rows());
  REQUIRE(got.cols() == want.cols());
  CHECK((got - want).cwiseAbs().maxCoeff() < 1e-7);
}

}  // namespace

TEST_CASE("topic PPR equals the dense solve for both transitions", "[ppr][topic]") {
  const auto graphs = {test::path_graph(7), test::cycle_graph(9), test::star_graph(6),
                       test::two_cliques_with_isolated(5)};
  for (const auto& g0 : graphs) {
    for (bool loops : {false, true}) {
      auto g = loops ? add_self_loops(g0.view()) : g0;
      const auto sets = random_sets(g, 7, 3);
      for (auto tr : {ppr_transition::row, ppr_transition::column})
        for (int block : {1, 3, 32}) check_against_dense(g, sets, tr, block);
    }
  }
}

TEST_CASE("row transition gives the reference's degree-rescaled PPR", "[ppr][topic]") {
  // x_v = sum_{u in S} PPR(u, v) d_u / (|S| d_v), with PPR(u, .) the rows of
  // alpha (I - (1 - alpha) D^-1 A)^-1.
  auto g = add_self_loops(test::two_cliques_with_isolated(4).view());
  const auto a = dense_adjacency(g);
  const Eigen::VectorXd d = a.rowwise().sum();
  const double alpha = 0.2;
  const auto n = a.rows();
  Eigen::MatrixXd pi =
      alpha *
      (Eigen::MatrixXd::Identity(n, n) - (1 - alpha) * d.cwiseInverse().asDiagonal() * a).inverse();
  sets_holder sets;
  sets.add({0, 2, 5});
  sets.add({7});
  sets.add({3, 4});
  topic_ppr_params p;
  p.alpha = alpha;
  p.max_iterations = 300;
  const auto x = topic_ppr_dense<double>(g.view(), sets.view(), p);
  for (std::int64_t s = 0; s < 3; ++s) {
    auto set = sets.view().set(s);
    for (Eigen::Index v = 0; v < n; ++v) {
      double want = 0;
      for (auto u : set)
        want += pi(static_cast<Eigen::Index>(u), v) * d(static_cast<Eigen::Index>(u));
      want /= static_cast<double>(set.size()) * d(v);
      CHECK(x(v, static_cast<Eigen::Index>(s)) == Approx(want).margin(1e-9));
    }
  }
}

TEST_CASE("topic PPR: fixed iterations, tolerance stop and thread-count independence",
          "[ppr][topic][determinism]") {
  std::mt19937_64 rng(5);
  std::vector<std::int64_t> s, t;
  const std::int64_t n = 3000;
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
  const auto sets = random_sets(g, 70, 9);
  topic_ppr_params p;
  p.block_columns = 32;
  topic_ppr_stats st1, st2;
  Eigen::MatrixXf a1, a2;
  {
    scoped_threads th(1);
    a1 = topic_ppr_dense<float>(g.view(), sets.view(), p);
  }
  {
    scoped_threads th(2);
    a2 = topic_ppr_dense<float>(g.view(), sets.view(), p);
  }
  REQUIRE(std::equal(a1.data(), a1.data() + a1.size(), a2.data()));  // bit-identical
  p.tolerance = 1e-4;
  p.max_iterations = 1000;
  topk_lists<std::int64_t, float> l1, l2;
  {
    scoped_threads th(1);
    l1 = topic_ppr_topk<float>(g.view(), sets.view(), 50, p, &st1);
  }
  {
    scoped_threads th(2);
    l2 = topic_ppr_topk<float>(g.view(), sets.view(), 50, p, &st2);
  }
  REQUIRE(l1.ids == l2.ids);
  REQUIRE(l1.scores == l2.scores);
  CHECK(st1.iterations == st2.iterations);
  CHECK(st1.blocks == 3);
  CHECK(st1.iterations < 3 * 1000);  // converged before the cap
  CHECK(st1.max_final_change < 1e-4);
}

TEST_CASE("topic PPR top-k equals brute force, positive scores only, ties by id",
          "[ppr][topic][topk]") {
  // A star: all leaves tie for a set at the centre; an isolated node never scores.
  auto g = add_self_loops(test::two_cliques_with_isolated(4).view());
  auto star = add_self_loops(test::star_graph(8).view());
  for (const auto* gp : {&g, &star}) {
    const auto sets = random_sets(*gp, 6, 1);
    topic_ppr_params p;
    const auto dense = topic_ppr_dense<float>(gp->view(), sets.view(), p);
    for (std::int64_t k : {0, 1, 3, 100}) {
      const auto lists = topic_ppr_topk<float>(gp->view(), sets.view(), k, p);
      REQUIRE(lists.size() == sets.view().size());
      for (std::int64_t s = 0; s < lists.size(); ++s) {
        std::vector<std::int64_t> ids;
        for (Eigen::Index v = 0; v < dense.rows(); ++v)
          if (dense(v, static_cast<Eigen::Index>(s)) > 0) ids.push_back(v);
        std::sort(ids.begin(), ids.end(), [&](auto a, auto b) {
          const float sa = dense(a, static_cast<Eigen::Index>(s)),
                      sb = dense(b, static_cast<Eigen::Index>(s));
          return sa != sb ? sa > sb : a < b;
        });
        ids.resize(std::min<std::size_t>(ids.size(), static_cast<std::size_t>(k)));
        auto got = lists.list(s);
        REQUIRE(std::vector<std::int64_t>(got.begin(), got.end()) == ids);
      }
    }
  }
  // The isolated node 8 of the two-cliques graph only scores for a set containing it.
  sets_holder only_iso;
  only_iso.add({8});
  topic_ppr_params p;
  const auto l = topic_ppr_topk<float>(g.view(), only_iso.view(), 5, p);
  REQUIRE(l.ids == std::vector<std::int64_t>{8});
  CHECK(l.scores[0] == Approx(1.0f));
}

TEST_CASE("topic PPR rejects bad parameters and sets", "[ppr][topic][bad-input]") {
  auto g = test::path_graph(4);
  sets_holder ok;
  ok.add({1});
  topic_ppr_params p;
  p.alpha = 0;
  REQUIRE_THROWS_AS(topic_ppr_dense<float>(g.view(), ok.view(), p), ibmb::invalid_argument);
  p = {};
  p.block_columns = 0;
  REQUIRE_THROWS_AS(topic_ppr_dense<float>(g.view(), ok.view(), p), ibmb::invalid_argument);
  p = {};
  sets_holder bad;
  bad.add({9});
  REQUIRE_THROWS_WITH(topic_ppr_dense<float>(g.view(), bad.view(), p), Catch::Contains("node 9"));
  sets_holder empty;
  empty.add({});
  REQUIRE_THROWS_WITH(topic_ppr_dense<float>(g.view(), empty.view(), p), Catch::Contains("empty"));
}
