// Forward push and nodewise_ppr, checked against exact PPR from a dense LU solve.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <numeric>
#include <random>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include <Eigen/Dense>
#include <catch2/catch.hpp>

#include "fixtures.hpp"
#include "ibmb/graph/build.hpp"
#include "ibmb/graph/generate.hpp"
#include "ibmb/ppr/push.hpp"

using namespace ibmb;

namespace {

/// Exact row-stochastic PPR rows alpha * e_s (I - (1-alpha) D^-1 A)^-1 for the given sources,
/// by one dense LU of M^T. A degree-0 node is treated as having a self-loop (its walk stays).
template <class I, class O, class W>
Eigen::MatrixXd exact_ppr_rows(csr_view<I, O, W> g, double alpha, const std::vector<I>& sources) {
  const auto n = static_cast<Eigen::Index>(g.num_rows);
  Eigen::MatrixXd m = Eigen::MatrixXd::Identity(n, n);
  for (Eigen::Index u = 0; u < n; ++u) {
    const auto deg = static_cast<double>(g.degree(static_cast<I>(u)));
    if (deg == 0) {
      m(u, u) -= 1.0 - alpha;
      continue;
    }
    for (auto v : g.neighbors(static_cast<I>(u)))
      m(u, static_cast<Eigen::Index>(v)) -= (1.0 - alpha) / deg;
  }
  // row_s(Pi) = alpha e_s M^-1  <=>  M^T x = alpha e_s
  Eigen::PartialPivLU<Eigen::MatrixXd> lu(m.transpose());
  Eigen::MatrixXd rhs = Eigen::MatrixXd::Zero(n, static_cast<Eigen::Index>(sources.size()));
  for (std::size_t k = 0; k < sources.size(); ++k)
    rhs(static_cast<Eigen::Index>(sources[k]), static_cast<Eigen::Index>(k)) = alpha;
  return lu.solve(rhs);  // column k = row of source k
}

/// Checks 0 <= exact(w) - p(w) <= eps * deg(w) for every node (plus rounding slack).
template <class I, class O, class W, class V>
void check_bound(csr_view<I, O, W> g, const Eigen::VectorXd& exact, const push_workspace<I, V>& ws,
                 double eps, double slack) {
  double worst = -1e300;
  for (I w = 0; w < g.num_rows; ++w) {
    const double p = static_cast<double>(ws.estimate(w));
    const double err = exact(static_cast<Eigen::Index>(w)) - p;
    const double bound = eps * static_cast<double>(g.degree(w));
    INFO("node " << w << " exact " << exact(static_cast<Eigen::Index>(w)) << " push " << p);
    REQUIRE(err >= -slack);
    REQUIRE(err <= bound + slack);
    worst = std::max(worst, err - bound);
  }
}

template <class I>
csr_graph<I, I, float> preprocess(const csr_graph<I, I, float>& g) {
  return make_undirected_with_self_loops(g.view());
}

/// cora from ../shared/data (derived/edges.txt), preprocessed as the reference does.
std::optional<csr_graph<std::int64_t, std::int64_t, float>> load_cora() {
  auto dir = test::shared_dataset("cora-planetoid");
  if (!dir) return std::nullopt;
  std::ifstream in(*dir / "derived" / "edges.txt");
  REQUIRE(in.good());
  std::vector<std::int64_t> s, d;
  std::int64_t a = 0, b = 0;
  while (in >> a >> b) {
    s.push_back(a);
    d.push_back(b);
  }
  REQUIRE(s.size() == 5278);  // README: 5278 undirected edges
  build_options o;
  o.make_undirected = true;
  o.duplicates = duplicate_policy::keep_first;
  o.self_loops = self_loop_policy::add;
  return coo_to_csr<std::int64_t, std::int64_t, float>(2708, std::span<const std::int64_t>(s),
                                                       std::span<const std::int64_t>(d),
                                                       std::span<const float>{}, o);
}

}  // namespace

TEMPLATE_TEST_CASE("push matches the dense PPR within eps * deg on the fixture graphs", "[ppr]",
                   std::int32_t, std::int64_t) {
  using I = TestType;
  std::vector<std::pair<std::string, csr_graph<I, I, float>>> graphs;
  graphs.emplace_back("path", preprocess(test::path_graph<I, I, float>(7)));
  graphs.emplace_back("cycle", preprocess(test::cycle_graph<I, I, float>(8)));
  graphs.emplace_back("star", preprocess(test::star_graph<I, I, float>(6)));
  graphs.emplace_back("cliques", preprocess(test::two_cliques_with_isolated<I, I, float>(5)));
  // No self-loops at all, with an isolated node: the bound still holds with deg = row length.
  graphs.emplace_back("cliques-noloops", test::two_cliques_with_isolated<I, I, float>(4));
  for (const auto& [name, g] : graphs) {
    const auto v = g.view();
    std::vector<I> sources(static_cast<std::size_t>(v.num_rows));
    std::iota(sources.begin(), sources.end(), I{0});
    for (double alpha : {0.25, 0.1, 0.6}) {
      const auto exact = exact_ppr_rows(v, alpha, sources);
      for (double eps : {1e-1, 1e-2, 1e-4, 1e-6}) {
        for (auto order : {push_order::lifo, push_order::fifo}) {
          push_workspace<I, double> wd;
          push_workspace<I, float> wf;
          push_params p{alpha, eps, order};
          for (I s : sources) {
            INFO(name << " alpha " << alpha << " eps " << eps << " order "
                      << static_cast<int>(order) << " source " << s);
            ppr_push(v, s, p, wd);
            check_bound(v, exact.col(static_cast<Eigen::Index>(s)), wd, eps, 1e-12);
            ppr_push(v, s, p, wf);
            check_bound(v, exact.col(static_cast<Eigen::Index>(s)), wf, eps, 2e-6);
            REQUIRE(wf.settled(s));
          }
        }
      }
    }
  }
}

TEST_CASE("push on cora stays within eps * deg of the dense solve", "[ppr]") {
  auto g = load_cora();
  if (!g) return;
  const auto v = g->view();
  const std::vector<std::int64_t> sources = {0, 1, 7, 140, 633, 1358, 1701, 2000, 2500, 2707};
  const auto exact = exact_ppr_rows(v, 0.25, sources);
  for (double eps : {1e-3, 1e-4, 1e-5}) {
    push_workspace<std::int64_t, float> ws;
    for (std::size_t k = 0; k < sources.size(); ++k) {
      INFO("eps " << eps << " source " << sources[k]);
      ppr_push(v, sources[k], push_params{0.25, eps, push_order::lifo}, ws);
      check_bound(v, exact.col(static_cast<Eigen::Index>(k)), ws, eps, 1e-5);
      // the estimate and the residual account for the whole mass: sum p + sum r / alpha = 1
      double mass = 0;
      for (auto w : ws.touched()) mass += ws.estimate(w) + ws.residual(w) / 0.25;
      REQUIRE(mass == Approx(1.0).epsilon(1e-4));
    }
  }
}

TEST_CASE("push semantics: threshold is >=, degree counts the self-loop", "[ppr]") {
  // One node with a self-loop: deg 1, threshold alpha * eps. alpha = 0.5, eps = 0.25: residuals
  // 0.5, 0.25, 0.125 (= threshold, pushed because of >=), 0.0625 (not pushed).
  csr_graph<std::int64_t, std::int64_t, float> g(1, 1, {0, 1}, {0});
  push_counters c;
  auto row = ppr_push<float>(g.view(), 0, push_params{0.5, 0.25, push_order::lifo}, &c);
  REQUIRE(row.indices == std::vector<std::int64_t>{0});
  REQUIRE(row.values[0] == 0.875f);
  REQUIRE(c.pushes == 3);
  REQUIRE(c.edges_relaxed == 3);
}

TEST_CASE("push on a degree-0 node keeps all of its mass", "[ppr]") {
  auto g = test::two_cliques_with_isolated(3);  // node 6 isolated, no self-loops
  for (auto order : {push_order::lifo, push_order::fifo}) {
    push_counters c;
    auto row = ppr_push<float>(g.view(), 6, push_params{0.25, 1e-4, order}, &c);
    REQUIRE(row.indices == std::vector<std::int64_t>{6});
    REQUIRE(row.values[0] == 1.0f);
    REQUIRE(c.pushes == 1);
    REQUIRE(c.edges_relaxed == 0);
  }
  // A directed edge into a row-less node: no division by zero, no hang, mass conserved.
  csr_graph<std::int64_t, std::int64_t, float> d(2, 2, {0, 2, 2}, {0, 1});
  push_workspace<std::int64_t, double> ws;
  ppr_push(d.view(), 0, push_params{0.25, 1e-6, push_order::lifo}, ws);
  double mass = 0;
  for (auto w : ws.touched()) mass += ws.estimate(w) + ws.residual(w) / 0.25;
  REQUIRE(mass == Approx(1.0));
  REQUIRE(std::isfinite(ws.estimate(1)));
  REQUIRE(ws.estimate(1) > 0);
}

TEST_CASE("push workspace resets in O(touched) and is reusable", "[ppr]") {
  // A long path: with a large eps the push touches only a few nodes around the source.
  auto g = preprocess(test::path_graph<std::int64_t, std::int64_t, float>(100000));
  const auto v = g.view();
  push_workspace<std::int64_t, float> ws;
  const push_params p{0.25, 1e-2, push_order::lifo};
  ppr_push(v, 500, p, ws);
  const auto first = ws.result();
  REQUIRE(ws.touched().size() < 50);
  ppr_push(v, 99999, p, ws);
  REQUIRE(ws.touched().size() < 50);
  REQUIRE(ws.estimate(500) == 0.0f);  // the previous push's state is gone
  const auto last = ws.result();
  REQUIRE(last == ppr_push<float>(v, 99999, p));
  ppr_push(v, 500, p, ws);
  REQUIRE(ws.result() == first);
}

TEST_CASE("a reused workspace gives the rows of a fresh one, whatever came before", "[ppr]") {
  // The workspace undoes a push through the rows of its settled nodes: a residual it missed
  // would leak into the next push. Random sources, both orders, eps mixed so that small
  // pushes follow large ones; every row must equal the row of a fresh workspace.
  generator_params gp;
  gp.nodes = 3000;
  gp.avg_degree = 12;
  gp.features = 0;
  gp.seed = 7;
  const auto ds = generate_dataset<std::int64_t, std::int64_t>(gp);
  const auto g = add_self_loops(ds.graph.view());
  const auto v = g.view();
  push_workspace<std::int64_t, float> ws;
  std::mt19937_64 rng(3);
  for (int i = 0; i < 60; ++i) {
    const auto s = static_cast<std::int64_t>(rng() % 3000);
    const push_params p{0.25, i % 3 == 0 ? 1e-5 : 1e-3,
                        i % 2 == 0 ? push_order::lifo : push_order::fifo};
    INFO("push " << i << " source " << s);
    const auto c = ppr_push(v, s, p, ws);
    push_counters fresh_c;
    REQUIRE(ws.result() == ppr_push<float>(v, s, p, &fresh_c));
    REQUIRE(c == fresh_c);
    // settled nodes: distinct, each with a positive estimate, all among the touched nodes
    const auto settled = ws.settled_nodes();
    const auto touched = ws.touched();
    std::vector<std::int64_t> sorted(settled.begin(), settled.end());
    std::sort(sorted.begin(), sorted.end());
    REQUIRE(std::adjacent_find(sorted.begin(), sorted.end()) == sorted.end());
    REQUIRE(std::is_sorted(touched.begin(), touched.end()));
    REQUIRE(std::includes(touched.begin(), touched.end(), sorted.begin(), sorted.end()));
    for (auto u : settled) REQUIRE(ws.estimate(u) > 0.0f);
    // unsettled touched nodes hold only a residual below their threshold
    for (auto w : touched)
      if (!ws.settled(w)) {
        REQUIRE(ws.estimate(w) == 0.0f);
        REQUIRE(ws.residual(w) < p.alpha * p.eps * static_cast<double>(v.degree(w)));
      }
  }
}

TEST_CASE("a graph modified in place needs invalidate before the workspace is reused", "[ppr]") {
  // Same buffers, same N and entry count, different rows: prepare cannot see the change
  // (it must stay O(1) for a reused workspace), invalidate makes the next prepare reset.
  const std::int64_t n = 50;
  auto g = preprocess(test::path_graph<std::int64_t, std::int64_t, float>(n));
  const auto nnz = g.indices.size();
  const auto* ptr_before = g.indptr.data();
  const auto* idx_before = g.indices.data();
  const push_params p{0.25, 1e-4, push_order::lifo};
  push_workspace<std::int64_t, float> ws;
  ppr_push(g.view(), 3, p, ws);
  REQUIRE(ws.result() == ppr_push<float>(g.view(), 3, p));

  // Rewrite in place: degrees 1, 2, 3, 4, 5, ... cycling, columns spread over the graph.
  std::mt19937_64 rng(11);
  std::int64_t at = 0;
  for (std::int64_t v = 0; v < n; ++v) {
    g.indptr[static_cast<std::size_t>(v)] = at;
    const std::int64_t left = static_cast<std::int64_t>(nnz) - at;
    const std::int64_t deg = v + 1 == n ? left : std::min<std::int64_t>(1 + v % 5, left);
    std::vector<std::int64_t> cols;
    for (std::int64_t k = 0; k < deg; ++k) cols.push_back(static_cast<std::int64_t>(rng() % n));
    std::sort(cols.begin(), cols.end());
    for (auto c : cols) g.indices[static_cast<std::size_t>(at++)] = c;
  }
  g.indptr[static_cast<std::size_t>(n)] = at;
  REQUIRE(at == static_cast<std::int64_t>(nnz));
  REQUIRE(g.indptr.data() == ptr_before);
  REQUIRE(g.indices.data() == idx_before);
  g.view().validate();

  ws.invalidate();
  for (std::int64_t s : {3, 17, 3, 42}) {
    INFO("source " << s);
    ppr_push(g.view(), s, p, ws);
    REQUIRE(ws.result() == ppr_push<float>(g.view(), s, p));
  }
}

TEST_CASE("a workspace reused on an unchanged graph gives identical rows", "[ppr]") {
  auto g = preprocess(test::path_graph<std::int64_t, std::int64_t, float>(300));
  const push_params p{0.2, 1e-5, push_order::fifo};
  push_workspace<std::int64_t, float> ws;
  std::vector<sparse_row<std::int64_t, float>> first;
  for (std::int64_t s : {0, 150, 299}) {
    ppr_push(g.view(), s, p, ws);
    first.push_back(ws.result());
  }
  for (int round = 0; round < 2; ++round) {
    if (round == 1) ws.invalidate();  // a forced reset changes nothing either
    std::size_t i = 0;
    for (std::int64_t s : {0, 150, 299}) {
      ppr_push(g.view(), s, p, ws);
      REQUIRE(ws.result() == first[i++]);
    }
  }
}

TEST_CASE("push rejects an alpha * eps that would round the thresholds to 0", "[ppr]") {
  // Before this check, float thresholds of 0 let a node requeue itself forever on a residual
  // that had underflowed to 0 (a hang). Double still has the range for it.
  auto g = preprocess(test::path_graph<std::int64_t, std::int64_t, float>(4));
  push_workspace<std::int64_t, float> wf;
  REQUIRE_THROWS_AS(ppr_push(g.view(), 0, push_params{0.25, 1e-40}, wf), ibmb::invalid_argument);
  ppr_params pp;
  pp.eps = 1e-40;
  REQUIRE_THROWS_AS(nodewise_ppr(g.view(), std::vector<std::int64_t>{0, 1}, pp),
                    ibmb::invalid_argument);
  push_workspace<std::int64_t, double> wd;
  ppr_push(g.view(), 0, push_params{0.25, 1e-40}, wd);
  REQUIRE(wd.settled(0));
}

TEST_CASE("push rejects bad parameters and sources", "[ppr]") {
  auto g = preprocess(test::path_graph<std::int64_t, std::int64_t, float>(4));
  push_workspace<std::int64_t, float> ws;
  REQUIRE_THROWS_AS(ppr_push(g.view(), 4, push_params{}, ws), ibmb::out_of_range);
  REQUIRE_THROWS_AS(ppr_push(g.view(), -1, push_params{}, ws), ibmb::out_of_range);
  REQUIRE_THROWS_AS(ppr_push(g.view(), 0, push_params{0.0, 1e-4}, ws), ibmb::invalid_argument);
  REQUIRE_THROWS_AS(ppr_push(g.view(), 0, push_params{1.5, 1e-4}, ws), ibmb::invalid_argument);
  REQUIRE_THROWS_AS(ppr_push(g.view(), 0, push_params{0.25, 0.0}, ws), ibmb::invalid_argument);
  REQUIRE_THROWS_AS(ppr_push(g.view(), 0, push_params{0.25, NAN}, ws), ibmb::invalid_argument);
  const std::vector<std::int64_t> outs = {0, 9};
  REQUIRE_THROWS_AS(nodewise_ppr(g.view(), outs, ppr_params{}), ibmb::out_of_range);
  ppr_params bad;
  bad.topk = -1;
  REQUIRE_THROWS_AS(nodewise_ppr(g.view(), std::vector<std::int64_t>{0}, bad),
                    ibmb::invalid_argument);
}

TEST_CASE("nodewise_ppr: rows follow the given output order, any thread count, same bytes",
          "[ppr]") {
  auto cora = load_cora();
  csr_graph<std::int64_t, std::int64_t, float> g =
      cora ? *cora
           : preprocess(test::two_cliques_with_isolated<std::int64_t, std::int64_t, float>(30));
  const auto v = g.view();
  std::vector<std::int64_t> outputs(static_cast<std::size_t>(v.num_rows));
  std::iota(outputs.begin(), outputs.end(), 0);
  std::mt19937_64 rng(7);
  std::shuffle(outputs.begin(), outputs.end(), rng);  // unsorted on purpose
  outputs.resize(std::min<std::size_t>(outputs.size(), 600));
  outputs.push_back(outputs[3]);  // a repeated id gives a repeated row
  for (std::int64_t k : {0, 16}) {
    for (auto order : {push_order::lifo, push_order::fifo}) {
      ppr_params p;
      p.alpha = 0.25;
      p.eps = 1e-4;
      p.order = order;
      p.topk = k;
      p.threads = 1;
      const auto one = nodewise_ppr(v, outputs, p);
      REQUIRE(one.counters.pushes > 0);
      for (int t : {2, 8}) {
        p.threads = t;
        REQUIRE(nodewise_ppr(v, outputs, p) == one);
      }
      REQUIRE(one.num_rows == static_cast<std::int64_t>(outputs.size()));
      REQUIRE(one.outputs == outputs);
      // row i is the push of outputs[i] (PyG mixes rows up for unsorted outputs; we must not)
      push_counters total;
      for (std::size_t i = 0; i < outputs.size(); ++i) {
        push_counters c;
        auto row = ppr_push<float>(v, outputs[i], p, &c);
        total += c;
        auto want =
            k > 0 ? topk_select<std::int64_t, float>(row.indices, row.values, k, outputs[i]) : row;
        INFO("row " << i << " output " << outputs[i]);
        REQUIRE(std::vector<std::int64_t>(one.row_indices(static_cast<std::int64_t>(i)).begin(),
                                          one.row_indices(static_cast<std::int64_t>(i)).end()) ==
                want.indices);
        REQUIRE(std::vector<float>(one.row_values(static_cast<std::int64_t>(i)).begin(),
                                   one.row_values(static_cast<std::int64_t>(i)).end()) ==
                want.values);
      }
      REQUIRE(total == one.counters);
    }
  }
  // double values compile and agree with float to float precision
  ppr_params p;
  p.eps = 1e-4;
  p.topk = 0;
  const auto d = nodewise_ppr<double>(v, std::span<const std::int64_t>(outputs).first(20), p);
  const auto f = nodewise_ppr<float>(v, std::span<const std::int64_t>(outputs).first(20), p);
  REQUIRE(d.num_rows == 20);
  double l1 = 0;
  for (std::int64_t i = 0; i < 20; ++i) {
    double sd = 0, sf = 0;
    for (auto x : d.row_values(i)) sd += x;
    for (auto x : f.row_values(i)) sf += x;
    l1 = std::max(l1, std::abs(sd - sf));
  }
  REQUIRE(l1 < 1e-3);
}

TEST_CASE("nodewise_ppr reports progress from the calling thread only", "[ppr]") {
  auto g = preprocess(test::cycle_graph<std::int64_t, std::int64_t, float>(2000));
  std::vector<std::int64_t> outs(2000);
  std::iota(outs.begin(), outs.end(), 0);
  const auto me = std::this_thread::get_id();
  bool other = false;
  std::int64_t last = 0;
  ppr_params p;
  p.threads = 2;
  nodewise_ppr(g.view(), outs, p, [&](std::string_view, std::int64_t done, std::int64_t) {
    other |= std::this_thread::get_id() != me;
    last = std::max(last, done);
  });
  REQUIRE_FALSE(other);
  REQUIRE(last > 0);
  // a throwing callback propagates as an exception, not a crash
  REQUIRE_THROWS_AS(
      nodewise_ppr(g.view(), outs, p,
                   [](std::string_view, std::int64_t, std::int64_t) { throw ibmb::error("stop"); }),
      ibmb::error);
}
