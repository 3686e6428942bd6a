// csr_view / csr_graph, builders and normalization.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <random>
#include <set>
#include <span>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "fixtures.hpp"
#include "ibmb/core/parallel.hpp"
#include "ibmb/graph/build.hpp"
#include "ibmb/graph/csr.hpp"
#include "ibmb/graph/dataset.hpp"
#include "ibmb/graph/normalize.hpp"

using namespace ibmb;

namespace {
template <class T>
std::span<const T> sp(const std::vector<T>& v) {
  return std::span<const T>(v);
}

// Brute-force reference: multiset of (row, col) of a CSR.
template <class G>
std::multiset<std::pair<std::int64_t, std::int64_t>> entries(const G& g) {
  std::multiset<std::pair<std::int64_t, std::int64_t>> s;
  auto v = g.view();
  for (std::int64_t r = 0; r < v.num_rows; ++r)
    for (auto c : v.neighbors(r)) s.emplace(r, c);
  return s;
}
}  // namespace

TEMPLATE_TEST_CASE("coo_to_csr keeps every edge in input order per row", "[graph][build]",
                   std::int32_t, std::int64_t) {
  using I = TestType;
  const std::vector<I> src = {2, 0, 2, 1, 0, 2};
  const std::vector<I> dst = {1, 2, 0, 0, 1, 1};
  const std::vector<float> w = {1, 2, 3, 4, 5, 6};
  build_options o;
  o.sort_columns = false;
  auto g = coo_to_csr<I, I, float>(3, sp(src), sp(dst), sp(w), o);
  g.validate();
  REQUIRE(g.indptr == std::vector<I>{0, 2, 3, 6});
  REQUIRE(g.indices == std::vector<I>{2, 1, 0, 1, 0, 1});
  REQUIRE(g.weights == std::vector<float>{2, 5, 4, 1, 3, 6});

  o.sort_columns = true;
  auto s = coo_to_csr<I, I, float>(3, sp(src), sp(dst), sp(w), o);
  s.validate(false);
  REQUIRE(s.indices == std::vector<I>{1, 2, 0, 0, 1, 1});
  REQUIRE(s.weights == std::vector<float>{5, 2, 4, 3, 1, 6});  // ties keep input order

  o.duplicates = duplicate_policy::sum;
  auto d = coo_to_csr<I, I, float>(3, sp(src), sp(dst), sp(w), o);
  d.validate(true);
  REQUIRE(d.indices == std::vector<I>{1, 2, 0, 0, 1});
  REQUIRE(d.weights == std::vector<float>{5, 2, 4, 3, 7});
}

TEMPLATE_TEST_CASE("builders agree with a brute-force reference on random graphs", "[graph][build]",
                   std::int32_t, std::int64_t) {
  using I = TestType;
  std::mt19937_64 rng(7);
  for (int trial = 0; trial < 20; ++trial) {
    const std::int64_t n = 1 + static_cast<std::int64_t>(rng() % 40);
    const std::size_t m = rng() % 200;
    std::vector<I> s(m), d(m);
    for (std::size_t e = 0; e < m; ++e) {
      s[e] = static_cast<I>(rng() % n);
      d[e] = static_cast<I>(rng() % n);
    }
    auto g = coo_to_csr<I, I, float>(n, sp(s), sp(d));
    g.validate(false);
    std::multiset<std::pair<std::int64_t, std::int64_t>> ref;
    for (std::size_t e = 0; e < m; ++e) ref.emplace(s[e], d[e]);
    REQUIRE(entries(g) == ref);

    auto u = make_undirected(g.view());
    u.validate(true);
    std::set<std::pair<std::int64_t, std::int64_t>> uref;
    for (auto [a, b] : ref) {
      uref.emplace(a, b);
      uref.emplace(b, a);
    }
    auto ue = entries(u);
    REQUIRE(std::set<std::pair<std::int64_t, std::int64_t>>(ue.begin(), ue.end()) == uref);
    REQUIRE(ue.size() == uref.size());

    auto sl = add_self_loops(u.view());
    sl.validate(true);
    for (std::int64_t v = 0; v < n; ++v) {
      auto nb = sl.view().neighbors(static_cast<I>(v));
      REQUIRE(std::count(nb.begin(), nb.end(), static_cast<I>(v)) == 1);
    }
    REQUIRE(sl.num_edges() == static_cast<std::int64_t>(uref.size()) + n -
                                  std::count_if(uref.begin(), uref.end(),
                                                [](auto p) { return p.first == p.second; }));
    auto nl = remove_self_loops(sl.view());
    nl.validate(true);
    for (std::int64_t v = 0; v < n; ++v) {
      auto nb = nl.view().neighbors(static_cast<I>(v));
      REQUIRE(std::count(nb.begin(), nb.end(), static_cast<I>(v)) == 0);
    }
    auto dd = remove_duplicate_edges(g.view());
    dd.validate(true);
    std::set<std::pair<std::int64_t, std::int64_t>> dref(ref.begin(), ref.end());
    auto de = entries(dd);
    REQUIRE(std::set<std::pair<std::int64_t, std::int64_t>>(de.begin(), de.end()) == dref);
    REQUIRE(de.size() == dref.size());

    auto sc = sort_columns(g.view());
    sc.validate(false);
    REQUIRE(entries(sc) == ref);
    for (std::int64_t v = 0; v < n; ++v) {
      auto nb = sc.view().neighbors(static_cast<I>(v));
      REQUIRE(std::is_sorted(nb.begin(), nb.end()));
    }
  }
}

TEST_CASE("builders give identical bytes for 1 and 2 threads", "[graph][build][determinism]") {
  std::mt19937_64 rng(11);
  const std::int64_t n = 5000;
  const std::size_t m = 200000;
  std::vector<std::int64_t> s(m), d(m);
  std::vector<float> w(m);
  for (std::size_t e = 0; e < m; ++e) {
    s[e] = static_cast<std::int64_t>(rng() % n);
    d[e] = static_cast<std::int64_t>(rng() % n);
    w[e] = static_cast<float>(rng() % 1000) / 7.0f;
  }
  build_options o;
  o.make_undirected = true;
  o.duplicates = duplicate_policy::sum;
  o.self_loops = self_loop_policy::add;
  csr_graph<> a, b;
  {
    scoped_threads t(1);
    a = coo_to_csr<std::int64_t, std::int64_t, float>(n, sp(s), sp(d), sp(w), o);
  }
  {
    scoped_threads t(2);
    b = coo_to_csr<std::int64_t, std::int64_t, float>(n, sp(s), sp(d), sp(w), o);
  }
  REQUIRE(a == b);
  o.sort_columns = false;
  o.duplicates = duplicate_policy::keep;
  {
    scoped_threads t(1);
    a = coo_to_csr<std::int64_t, std::int64_t, float>(n, sp(s), sp(d), sp(w), o);
  }
  {
    scoped_threads t(2);
    b = coo_to_csr<std::int64_t, std::int64_t, float>(n, sp(s), sp(d), sp(w), o);
  }
  REQUIRE(a == b);
}

TEMPLATE_TEST_CASE("out-of-range ids name the edge and value, or are dropped on request",
                   "[graph][build][bad-input]", std::int32_t, std::int64_t) {
  using I = TestType;
  const std::vector<I> src = {0, 1, 2, 1};
  const std::vector<I> dst = {1, 5, 0, -3};
  REQUIRE_THROWS_AS((coo_to_csr<I, I, float>(3, sp(src), sp(dst))), ibmb::out_of_range);
  REQUIRE_THROWS_WITH((coo_to_csr<I, I, float>(3, sp(src), sp(dst))),
                      Catch::Contains("edge 1") && Catch::Contains("target id 5"));
  build_options o;
  o.drop_out_of_range = true;
  auto g = coo_to_csr<I, I, float>(3, sp(src), sp(dst), std::span<const float>{}, o);
  REQUIRE(g.num_edges() == 2);
  const std::vector<I> neg = {-1};
  const std::vector<I> one = {0};
  REQUIRE_THROWS_WITH((coo_to_csr<I, I, float>(3, sp(neg), sp(one))),
                      Catch::Contains("edge 0") && Catch::Contains("source id -1"));
}

TEST_CASE("node counts beyond the int32 range are refused for int32 indices",
          "[graph][build][bad-input]") {
  const std::vector<std::int64_t> s = {0}, d = {std::int64_t{1} << 32};
  REQUIRE_THROWS_AS(
      (coo_to_csr<std::int32_t, std::int32_t, float>((std::int64_t{1} << 32) + 1, sp(s), sp(d))),
      ibmb::out_of_range);
  REQUIRE_THROWS_WITH(
      (coo_to_csr<std::int32_t, std::int64_t, float>((std::int64_t{1} << 31), sp(s), sp(d))),
      Catch::Contains("32-bit"));
}

TEST_CASE("entry counts beyond a narrow offset type throw instead of wrapping",
          "[graph][build][bad-input]") {
  // 70000 edges on 100 nodes: the per-row counts and their sum exceed int16.
  std::vector<std::int64_t> s(70000), d(70000);
  for (std::size_t e = 0; e < s.size(); ++e) {
    s[e] = static_cast<std::int64_t>(e % 100);
    d[e] = static_cast<std::int64_t>((e / 100) % 100);
  }
  REQUIRE_THROWS_AS((coo_to_csr<std::int16_t, std::int16_t, float>(100, sp(s), sp(d))),
                    ibmb::out_of_range);
  REQUIRE_THROWS_WITH(
      (coo_to_csr<std::int16_t, std::int16_t, float>(100, sp(s), sp(d))),
      Catch::Contains("70000") && Catch::Contains("16-bit offset") && Catch::Contains("32767"));
  // All in one row: the row's own count exceeds int16.
  std::vector<std::int64_t> zero(40000, 0), col(40000);
  for (std::size_t e = 0; e < col.size(); ++e) col[e] = static_cast<std::int64_t>(e % 100);
  REQUIRE_THROWS_AS((coo_to_csr<std::int16_t, std::int16_t, float>(100, sp(zero), sp(col))),
                    ibmb::out_of_range);

  // 32700 edges fit int16, the 100 added self-loops do not.
  std::vector<std::int64_t> s2, d2;
  for (std::int64_t e = 0; e < 32700; ++e) {
    const std::int64_t a = e % 100, b = (a + 1 + (e / 100) % 99) % 100;  // never a == b
    s2.push_back(a);
    d2.push_back(b);
  }
  REQUIRE_NOTHROW((coo_to_csr<std::int16_t, std::int16_t, float>(100, sp(s2), sp(d2))));
  build_options loops;
  loops.self_loops = self_loop_policy::add;
  REQUIRE_THROWS_WITH((coo_to_csr<std::int16_t, std::int16_t, float>(
                          100, sp(s2), sp(d2), std::span<const float>{}, loops)),
                      Catch::Contains("32800") && Catch::Contains("16-bit offset"));
}

TEMPLATE_TEST_CASE("validate names the first bad row, position and value",
                   "[graph][csr][bad-input]", std::int32_t, std::int64_t) {
  using I = TestType;
  std::vector<I> ptr = {0, 2, 3};
  std::vector<I> idx = {1, 0, 7};
  csr_view<I, I, float> v(2, 2, sp(ptr), sp(idx));
  REQUIRE_THROWS_AS(v.validate(), ibmb::format_error);
  REQUIRE_THROWS_WITH(v.validate(), Catch::Contains("row 1") && Catch::Contains("position 2") &&
                                        Catch::Contains("column 7"));
  idx[2] = 1;
  REQUIRE_NOTHROW(v.validate());
  REQUIRE_THROWS_WITH(v.validate(true), Catch::Contains("row 0") && Catch::Contains("position 1"));
  ptr = {0, 3, 2};
  REQUIRE_THROWS_WITH(v.validate(), Catch::Contains("row 1"));
  ptr = {1, 2, 3};
  REQUIRE_THROWS_WITH(v.validate(), Catch::Contains("indptr[0]"));
  std::vector<I> short_ptr = {0, 1};
  csr_view<I, I, float> bad(2, 2, sp(short_ptr), sp(idx));
  REQUIRE_THROWS_WITH(bad.validate(), Catch::Contains("indptr has 2 entries"));
}

TEMPLATE_TEST_CASE("empty graph, n = 1 and isolated nodes", "[graph][csr]", std::int32_t,
                   std::int64_t) {
  using I = TestType;
  csr_graph<I, I, float> empty;
  REQUIRE_NOTHROW(empty.validate());
  REQUIRE(empty.num_edges() == 0);
  const std::vector<I> none;
  auto z = coo_to_csr<I, I, float>(0, sp(none), sp(none));
  REQUIRE(z.num_nodes() == 0);
  REQUIRE(z.num_edges() == 0);
  auto one = coo_to_csr<I, I, float>(1, sp(none), sp(none));
  one.validate(true);
  auto one_loop = add_self_loops(one.view());
  REQUIRE(one_loop.indices == std::vector<I>{0});
  auto g = test::two_cliques_with_isolated<I, I, float>(3);
  g.validate(true);
  REQUIRE(g.view().degree(6) == 0);
  auto w = normalized_weights(g.view(), normalization::symmetric);
  for (float x : w) REQUIRE(std::isfinite(x));
}

TEMPLATE_TEST_CASE("normalization matches dense arithmetic", "[graph][normalize]", float, double) {
  using W = TestType;
  auto g = test::two_cliques_with_isolated<std::int64_t, std::int64_t, W>(4);
  g = add_self_loops(g.view());
  const auto n = static_cast<std::size_t>(g.num_nodes());
  std::vector<double> deg(n, 0);
  for (std::size_t v = 0; v < n; ++v)
    deg[v] = static_cast<double>(g.view().degree(static_cast<std::int64_t>(v)));
  auto row = normalized_weights(g.view(), normalization::row);
  auto sym = normalized_weights(g.view(), normalization::symmetric);
  auto none = normalized_weights(g.view(), normalization::none);
  for (std::size_t v = 0; v < n; ++v) {
    double rs = 0;
    for (auto p = g.indptr[v]; p < g.indptr[v + 1]; ++p) {
      const auto c = static_cast<std::size_t>(g.indices[static_cast<std::size_t>(p)]);
      REQUIRE(row[static_cast<std::size_t>(p)] == Approx(1.0 / deg[v]));
      REQUIRE(sym[static_cast<std::size_t>(p)] == Approx(1.0 / std::sqrt(deg[v] * deg[c])));
      REQUIRE(none[static_cast<std::size_t>(p)] == W{1});
      rs += row[static_cast<std::size_t>(p)];
    }
    REQUIRE(rs == Approx(1.0));
  }
  // The Eigen map gives the same matrix-vector product as the loops.
  g.weights = sym;
  auto m = g.view().eigen_map();
  Eigen::Matrix<W, Eigen::Dynamic, 1> x =
      Eigen::Matrix<W, Eigen::Dynamic, 1>::LinSpaced(static_cast<Eigen::Index>(n), 1, 2);
  Eigen::Matrix<W, Eigen::Dynamic, 1> y = m * x;
  for (std::size_t v = 0; v < n; ++v) {
    double ref = 0;
    for (auto p = g.indptr[v]; p < g.indptr[v + 1]; ++p)
      ref += sym[static_cast<std::size_t>(p)] *
             x(static_cast<Eigen::Index>(g.indices[static_cast<std::size_t>(p)]));
    REQUIRE(static_cast<double>(y(static_cast<Eigen::Index>(v))) == Approx(ref));
  }
  REQUIRE(parse_normalization("row") == normalization::row);
  REQUIRE_THROWS_AS(parse_normalization("rows"), ibmb::invalid_argument);
}

TEST_CASE("normalized_weights rejects NaN, infinite and negative weights, naming the entry",
          "[graph][normalize][bad-input]") {
  auto g = test::two_cliques_with_isolated<std::int64_t, std::int64_t, float>(4);
  g.weights.assign(g.indices.size(), 1.0f);
  REQUIRE_NOTHROW(normalized_weights(g.view(), normalization::row));
  // Entry 5: row 1 (rows 0..3 form a 4-clique, three entries each).
  const std::size_t p = 5;
  const auto col = g.indices[p];
  for (float bad : {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity(),
                    -std::numeric_limits<float>::infinity(), -0.5f}) {
    g.weights.assign(g.indices.size(), 1.0f);
    g.weights[p] = bad;
    g.weights.back() = -1.0f;  // a later bad entry: the message names the first
    CAPTURE(bad);
    for (auto kind : {normalization::none, normalization::row, normalization::symmetric}) {
      CAPTURE(to_string(kind));
      REQUIRE_THROWS_AS(normalized_weights(g.view(), kind), ibmb::invalid_argument);
      REQUIRE_THROWS_WITH(normalized_weights(g.view(), kind),
                          Catch::Contains("normalized_weights") && Catch::Contains("entry 5") &&
                              Catch::Contains("row 1") &&
                              Catch::Contains("column " + std::to_string(col)));
    }
    REQUIRE_THROWS_AS(normalization_scales(g.view(), normalization::row), ibmb::invalid_argument);
  }
  g.weights.assign(g.indices.size(), 1.0f);
  g.weights[p] = -2.0f;
  REQUIRE_THROWS_WITH(normalized_weights(g.view(), normalization::row), Catch::Contains("-2"));
  g.weights[p] = 0.0f;  // zero is a weight like any other
  REQUIRE_NOTHROW(normalized_weights(g.view(), normalization::symmetric));
  // The same answer for any thread count.
  g.weights[p] = -1.0f;
  std::string one, two;
  {
    scoped_threads t(1);
    REQUIRE_THROWS(normalized_weights(g.view(), normalization::row));
    try {
      (void)normalized_weights(g.view(), normalization::row);
    } catch (const ibmb::invalid_argument& e) {
      one = e.what();
    }
  }
  {
    scoped_threads t(2);
    try {
      (void)normalized_weights(g.view(), normalization::row);
    } catch (const ibmb::invalid_argument& e) {
      two = e.what();
    }
  }
  REQUIRE(one == two);
}

TEST_CASE("edge_index_to_csr reads a 2 x E array", "[graph][build]") {
  const std::vector<std::int32_t> ei = {0, 1, 1, 2, /* targets */ 1, 0, 2, 1};
  auto g = edge_index_to_csr<std::int64_t, std::int64_t, float>(3, sp(ei));
  REQUIRE(g.indices == std::vector<std::int64_t>{1, 0, 2, 1});
  const std::vector<std::int32_t> odd = {0, 1, 2};
  REQUIRE_THROWS_AS((edge_index_to_csr<std::int64_t, std::int64_t, float>(3, sp(odd))),
                    ibmb::invalid_argument);
}

TEST_CASE("dataset labels: num_classes cannot overflow, validate bounds class ids",
          "[graph][dataset][bad-input]") {
  dataset ds;
  ds.name = "toy";
  const std::vector<std::int64_t> none;
  ds.graph = coo_to_csr<std::int64_t, std::int64_t, float>(3, sp(none), sp(none));
  ds.labels = {0, -1, 2};
  REQUIRE_NOTHROW(ds.validate());
  CHECK(ds.num_classes() == 3);
  ds.labels = {-1, -1, -1};
  CHECK(ds.num_classes() == 0);
  ds.labels = {0, max_num_classes - 1, 1};  // the largest class id accepted
  REQUIRE_NOTHROW(ds.validate());
  CHECK(ds.num_classes() == max_num_classes);
  for (const std::int64_t bad :
       {max_num_classes, std::int64_t{1} << 62, std::numeric_limits<std::int64_t>::max()}) {
    ds.labels = {0, bad, 1};
    const std::string value = std::to_string(bad);
    REQUIRE_THROWS_AS(ds.validate(), ibmb::format_error);
    REQUIRE_THROWS_WITH(ds.validate(), Catch::Contains("dataset 'toy'") &&
                                           Catch::Contains("label of node 1 is " + value) &&
                                           Catch::Contains("below 2147483647"));
    // num_classes() would overflow (INT64_MAX + 1) or give an absurd class count: it throws
    REQUIRE_THROWS_AS(ds.num_classes(), ibmb::out_of_range);
    REQUIRE_THROWS_WITH(ds.num_classes(), Catch::Contains("label of node 1 is " + value));
  }
}
