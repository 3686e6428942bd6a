// Synthetic generator: structure, statistics, determinism and the spec parser.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <set>
#include <span>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "ibmb/core/parallel.hpp"
#include "ibmb/graph/generate.hpp"

using namespace ibmb;

namespace {

generator_params small_params() {
  generator_params p;
  p.nodes = 20'000;
  p.avg_degree = 16;
  p.classes = 10;
  p.features = 8;
  p.community_size = 100;
  p.max_degree = 1'000;
  p.seed = 11;
  return p;
}

// Brute force: every (u, v) has (v, u) (linear scan of v's row, independent of sortedness).
template <class G>
bool symmetric(const G& g) {
  auto v = g.view();
  for (std::int64_t u = 0; u < v.num_rows; ++u)
    for (auto w : v.neighbors(u)) {
      auto nb = v.neighbors(w);
      if (std::find(nb.begin(), nb.end(), u) == nb.end()) return false;
    }
  return true;
}

double same_label_fraction(const dataset& ds) {
  std::int64_t same = 0, total = 0;
  for (std::int64_t u = 0; u < ds.num_nodes(); ++u)
    for (auto v : ds.graph.view().neighbors(u)) {
      ++total;
      same += ds.labels[static_cast<std::size_t>(u)] == ds.labels[static_cast<std::size_t>(v)];
    }
  return static_cast<double>(same) / static_cast<double>(total);
}

double same_community_fraction(const dataset& ds, const std::vector<std::int64_t>& comm) {
  std::int64_t same = 0, total = 0;
  for (std::int64_t u = 0; u < ds.num_nodes(); ++u)
    for (auto v : ds.graph.view().neighbors(u)) {
      ++total;
      same += comm[static_cast<std::size_t>(u)] == comm[static_cast<std::size_t>(v)];
    }
  return static_cast<double>(same) / static_cast<double>(total);
}

}  // namespace

TEST_CASE("generator: simple undirected graph, sizes and splits", "[generate]") {
  const auto p = small_params();
  const auto ds = generate_dataset(p);
  ds.validate();
  ds.graph.validate(true);  // sorted, strictly increasing: no duplicates
  REQUIRE(ds.num_nodes() == p.nodes);
  for (std::int64_t u = 0; u < ds.num_nodes(); ++u)
    for (auto v : ds.graph.view().neighbors(u)) REQUIRE(v != u);
  REQUIRE(symmetric(ds.graph));
  // Realised mean degree close to the parameter (duplicates merged cost a few percent).
  const double mean = static_cast<double>(ds.num_edges()) / static_cast<double>(p.nodes);
  CHECK(mean == Approx(p.avg_degree).epsilon(0.08));

  REQUIRE(ds.labels.size() == static_cast<std::size_t>(p.nodes));
  std::set<std::int64_t> classes(ds.labels.begin(), ds.labels.end());
  REQUIRE(classes.size() == static_cast<std::size_t>(p.classes));  // every class appears
  REQUIRE(*classes.begin() == 0);
  REQUIRE(*classes.rbegin() == p.classes - 1);
  REQUIRE(ds.num_features == p.features);
  REQUIRE(ds.features.size() == static_cast<std::size_t>(p.nodes * p.features));

  REQUIRE(ds.train_idx.size() == 2000);
  REQUIRE(ds.val_idx.size() == 1000);
  REQUIRE(ds.test_idx.size() == 2000);
  std::set<std::int64_t> all;
  for (const auto* s : {&ds.train_idx, &ds.val_idx, &ds.test_idx}) {
    REQUIRE(std::is_sorted(s->begin(), s->end()));
    all.insert(s->begin(), s->end());
  }
  REQUIRE(all.size() == 5000);  // disjoint
  REQUIRE(ds.name == to_spec(p));
}

TEST_CASE("generator: heavy-tailed degrees", "[generate]") {
  auto p = small_params();
  auto degrees = [](const dataset& ds) {
    std::vector<std::int64_t> d(static_cast<std::size_t>(ds.num_nodes()));
    for (std::int64_t v = 0; v < ds.num_nodes(); ++v)
      d[static_cast<std::size_t>(v)] = ds.graph.view().degree(v);
    return d;
  };
  p.features = 0;
  const auto heavy = degrees(generate_dataset(p));
  p.power_law_exponent = 50;  // nearly equal weights: a light (Poisson-like) tail
  const auto light = degrees(generate_dataset(p));
  auto max_over_mean = [](const std::vector<std::int64_t>& d) {
    double s = 0;
    for (auto x : d) s += static_cast<double>(x);
    return static_cast<double>(*std::max_element(d.begin(), d.end())) /
           (s / static_cast<double>(d.size()));
  };
  CHECK(max_over_mean(heavy) > 15);
  CHECK(max_over_mean(light) < 4);
  // Tail: the share of nodes with degree >= 4x the mean is far above a Poisson tail.
  auto tail = [](const std::vector<std::int64_t>& d, double k) {
    return static_cast<double>(std::count_if(d.begin(), d.end(),
                                             [&](auto x) { return static_cast<double>(x) >= k; })) /
           static_cast<double>(d.size());
  };
  CHECK(tail(heavy, 64) > 0.005);
  CHECK(tail(light, 64) == 0);
}

TEST_CASE("generator: homophily and community locality", "[generate]") {
  auto p = small_params();
  p.features = 0;
  for (double h : {0.8, 0.95}) {
    p.homophily = h;
    const auto ds = generate_dataset(p);
    CHECK(same_label_fraction(ds) == Approx(h).margin(0.03));
    const auto comm = generator_communities(p);
    REQUIRE(comm.size() == static_cast<std::size_t>(p.nodes));
    for (std::int64_t v = 0; v < p.nodes; ++v)  // every community lies inside one class
      for (std::int64_t u = 0; u < p.nodes; u += 997)
        if (comm[static_cast<std::size_t>(u)] == comm[static_cast<std::size_t>(v)])
          REQUIRE(ds.labels[static_cast<std::size_t>(u)] == ds.labels[static_cast<std::size_t>(v)]);
    CHECK(same_community_fraction(ds, comm) == Approx(p.community_fraction).margin(0.05));
  }
  p.homophily = 0.8;
  p.community_fraction = 0;  // class-level block model: no locality
  const auto flat = generate_dataset(p);
  CHECK(same_label_fraction(flat) == Approx(0.8).margin(0.03));
  CHECK(same_community_fraction(flat, generator_communities(p)) < 0.1);  // chance only
}

TEST_CASE("generator: features are noisy class means", "[generate]") {
  auto p = small_params();
  p.features = 16;
  p.feature_noise = 2.5;
  const auto ds = generate_dataset(p);
  const auto F = static_cast<std::size_t>(p.features);
  const auto C = static_cast<std::size_t>(p.classes);
  std::vector<double> mean(C * F, 0.0);
  std::vector<double> count(C, 0.0);
  for (std::int64_t v = 0; v < ds.num_nodes(); ++v) {
    const auto c = static_cast<std::size_t>(ds.labels[static_cast<std::size_t>(v)]);
    count[c] += 1;
    auto row = ds.feature_row(v);
    for (std::size_t j = 0; j < F; ++j) mean[c * F + j] += row[j];
  }
  for (std::size_t c = 0; c < C; ++c)
    for (std::size_t j = 0; j < F; ++j) mean[c * F + j] /= count[c];
  double resid = 0, between = 0;
  for (std::int64_t v = 0; v < ds.num_nodes(); ++v) {
    const auto c = static_cast<std::size_t>(ds.labels[static_cast<std::size_t>(v)]);
    auto row = ds.feature_row(v);
    for (std::size_t j = 0; j < F; ++j) resid += std::pow(row[j] - mean[c * F + j], 2);
  }
  for (double m : mean) between += m * m;
  const double noise_var = resid / static_cast<double>(p.nodes * p.features);
  const double mean_var = between / static_cast<double>(C * F);
  CHECK(noise_var == Approx(p.feature_noise * p.feature_noise).epsilon(0.03));
  CHECK(mean_var == Approx(1.0).margin(0.4));  // class means: entries ~ N(0, 1)
}

TEST_CASE("generator: deterministic for a seed, on any thread count", "[generate]") {
  auto p = small_params();
  dataset one, two;
  {
    scoped_threads t(1);
    one = generate_dataset(p);
  }
  {
    scoped_threads t(2);
    two = generate_dataset(p);
  }
  REQUIRE(one.graph == two.graph);
  REQUIRE(one.features == two.features);
  REQUIRE(one.labels == two.labels);
  REQUIRE(one.train_idx == two.train_idx);
  REQUIRE(one.val_idx == two.val_idx);
  REQUIRE(one.test_idx == two.test_idx);

  p.seed = 12;
  const auto other = generate_dataset(p);
  REQUIRE(other.graph.indices != one.graph.indices);
  REQUIRE(other.features != one.features);
  REQUIRE(other.train_idx != one.train_idx);

  // 32-bit indices give the same graph.
  p.seed = 11;
  const auto narrow = generate_dataset<std::int32_t, std::int32_t>(p);
  REQUIRE(std::equal(narrow.graph.indptr.begin(), narrow.graph.indptr.end(),
                     one.graph.indptr.begin(), one.graph.indptr.end()));
  REQUIRE(std::equal(narrow.graph.indices.begin(), narrow.graph.indices.end(),
                     one.graph.indices.begin(), one.graph.indices.end()));
  REQUIRE(narrow.features == one.features);
}

TEST_CASE("generator: tiny and corner cases", "[generate]") {
  generator_params p;
  p.nodes = 1;
  p.avg_degree = 0;
  p.features = 3;
  auto one = generate_dataset(p);
  one.validate();
  REQUIRE(one.num_edges() == 0);
  p.nodes = 7;
  p.avg_degree = 3;
  p.classes = 1;
  p.homophily = 1;
  auto tiny = generate_dataset(p);
  tiny.validate();
  tiny.graph.validate(true);
  REQUIRE(symmetric(tiny.graph));
  for (auto l : tiny.labels) REQUIRE(l == 0);
  p.nodes = 3;
  p.avg_degree = 5;  // more than nodes - 1
  REQUIRE_THROWS_AS(generate_dataset(p), invalid_argument);
}

TEST_CASE("parse_generator_spec: good and bad specs", "[generate]") {
  const generator_params d;
  const auto p0 = parse_generator_spec("synthetic");
  REQUIRE(p0.nodes == d.nodes);
  REQUIRE(p0.avg_degree == d.avg_degree);
  REQUIRE(p0.seed == d.seed);

  const auto p1 = parse_generator_spec(
      "synthetic:nodes=1000,avg_degree=10,seed=3,classes=5,features=7,homophily=0.9,"
      "community_fraction=0.5,shuffle_ids=false,test_fraction=0.2");
  REQUIRE(p1.nodes == 1000);
  REQUIRE(p1.avg_degree == 10.0);
  REQUIRE(p1.seed == 3);
  REQUIRE(p1.classes == 5);
  REQUIRE(p1.features == 7);
  REQUIRE(p1.homophily == 0.9);
  REQUIRE(p1.community_fraction == 0.5);
  REQUIRE_FALSE(p1.shuffle_ids);
  REQUIRE(p1.test_fraction == 0.2);
  REQUIRE(to_spec(parse_generator_spec(to_spec(p1))) == to_spec(p1));  // round trip
  generator_params odd;
  odd.homophily = 0.123456789012345;
  odd.community_fraction = 0.1;
  odd.seed = 18'446'744'073'709'551'615ULL;
  const auto back = parse_generator_spec(to_spec(odd));
  REQUIRE(back.homophily == odd.homophily);  // exact
  REQUIRE(back.seed == odd.seed);

  auto fails_naming = [](const char* spec, const char* needle) {
    try {
      (void)parse_generator_spec(spec);
    } catch (const invalid_argument& e) {
      const std::string msg = e.what();
      INFO(msg);
      CHECK(msg.find(needle) != std::string::npos);
      return;
    }
    FAIL("no exception for " << spec);
  };
  fails_naming("synthetic:colour=red", "colour");
  fails_naming("synthetic:nodes=abc", "nodes");
  fails_naming("synthetic:nodes=abc", "abc");
  fails_naming("synthetic:nodes=10x", "10x");
  fails_naming("synthetic:nodes=", "nodes");
  fails_naming("synthetic:nodes=-5", "nodes");
  fails_naming("synthetic:seed=-1", "seed");
  fails_naming("synthetic:avg_degree=nan", "avg_degree");
  fails_naming("synthetic:homophily=1.5", "homophily");
  fails_naming("synthetic:homophily=0.5", "community_fraction");  // default 0.75 > 0.5
  fails_naming("synthetic:train_fraction=0.6,test_fraction=0.6", "exceeds 1");
  fails_naming("synthetic:shuffle_ids=maybe", "shuffle_ids");
  fails_naming("synthetic:nodes", "key=value");
  fails_naming("synthetics", "synthetic[");
  fails_naming("random:nodes=5", "synthetic[");
}

TEST_CASE("generate_dataset: a size beyond this machine's memory fails at once", "[generate]") {
  ibmb::generator_params p;
  p.nodes = std::int64_t{1} << 50;  // a typo-sized request: about 10^17 bytes
  CHECK_THROWS_WITH(ibmb::generate_dataset(p), Catch::Contains("bytes of memory of this machine") &&
                                                   Catch::Contains("nodes = 1125899906842624"));
  CHECK_THROWS_AS(ibmb::generate_dataset(p), ibmb::out_of_range);
}
