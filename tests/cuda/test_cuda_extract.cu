// [cuda] induced-subgraph extraction, feature gather and the device batch store against the
// CPU's `materialize` on the same plan.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <set>
#include <vector>

#include "cuda_fixtures.cuh"
#include "fixtures.hpp"
#include "ibmb/batch/materialize.hpp"
#include "ibmb/batch/plan.hpp"
#include "ibmb/cuda/batch_store.cuh"
#include "ibmb/cuda/extract.cuh"
#include "ibmb/graph/build.hpp"
#include "ibmb/graph/generate.hpp"

namespace {

using ibmb::test::no_device;

ibmb::dataset small_dataset(std::int64_t nodes) {
  ibmb::generator_params gp;
  gp.nodes = nodes;
  gp.avg_degree = 8;
  gp.classes = 5;
  gp.features = 7;
  gp.community_size = 25;
  gp.max_degree = 80;
  gp.seed = 3;
  auto ds = ibmb::generate_dataset(gp);
  ds.graph = ibmb::make_undirected_with_self_loops(ds.graph.view());
  return ds;
}

/// Batches of random outputs plus their one-hop neighbourhoods (sorted, unique), with one
/// empty batch in the middle.
ibmb::batch_plan<std::int64_t> make_plan(const ibmb::dataset& ds, int batches, int per_batch) {
  ibmb::batch_plan<std::int64_t> plan;
  std::mt19937_64 rng(17);
  std::uniform_int_distribution<std::int64_t> pick(0, ds.num_nodes() - 1);
  const auto g = ds.graph.view();
  for (int b = 0; b < batches; ++b) {
    std::set<std::int64_t> outs, all;
    if (b != batches / 2) {
      for (int i = 0; i < per_batch; ++i) outs.insert(pick(rng));
      for (auto o : outs) {
        all.insert(o);
        for (auto v : g.neighbors(o))
          if (rng() % 2) all.insert(v);
      }
    }
    const std::vector<std::int64_t> o(outs.begin(), outs.end()), a(all.begin(), all.end());
    plan.push_batch(o, a);
  }
  return plan;
}

template <class T>
std::vector<T> back(const T* d, std::int64_t n, const ibmb::cuda::resources& res) {
  return ibmb::cuda::to_host(d, static_cast<std::size_t>(n), res.stream());
}

/// Every array of device batch `d` equals host batch `h`.
void require_same(const ibmb::cuda::device_batch_view& d, const ibmb::batch_view& h,
                  const ibmb::cuda::resources& res, bool features) {
  INFO("batch " << h.index);
  REQUIRE(d.num_outputs == h.num_outputs);
  REQUIRE(d.num_nodes == h.num_nodes());
  REQUIRE(d.num_edges == h.num_edges());
  const auto ids = back(d.node_ids, d.num_nodes, res);
  REQUIRE(std::equal(ids.begin(), ids.end(), h.node_ids.begin(), h.node_ids.end()));
  const auto ip = back(d.indptr, d.num_nodes + 1, res);
  REQUIRE(std::equal(ip.begin(), ip.end(), h.graph.indptr.begin(), h.graph.indptr.end()));
  const auto ix = back(d.indices, d.num_edges, res);
  REQUIRE(std::equal(ix.begin(), ix.end(), h.graph.indices.begin(), h.graph.indices.end()));
  const auto w = back(d.weights, d.num_edges, res);
  for (std::size_t p = 0; p < w.size(); ++p)
    REQUIRE(w[p] == Approx(h.graph.weights[p]).epsilon(1e-6));
  if (!h.labels.empty()) {
    REQUIRE(d.labels != nullptr);
    const auto l = back(d.labels, d.num_nodes, res);
    REQUIRE(std::equal(l.begin(), l.end(), h.labels.begin(), h.labels.end()));
  }
  if (features) {
    REQUIRE(d.features != nullptr);
    const auto f = back(d.features, d.num_nodes * d.num_features, res);
    const auto hf = h.features();
    REQUIRE(std::equal(f.begin(), f.end(), hf.begin(), hf.end()));
  }
}

}  // namespace

TEST_CASE("cuda extract_batches equals materialize for every normalization", "[cuda]") {
  if (no_device()) return;
  const auto ds = small_dataset(2500);
  const auto plan = make_plan(ds, 9, 40);
  ibmb::cuda::resources res;
  for (auto norm :
       {ibmb::normalization::row, ibmb::normalization::symmetric, ibmb::normalization::none}) {
    ibmb::materialize_options opt;
    opt.norm = norm;
    opt.fingerprint = false;
    const auto host = ibmb::materialize(ds, plan, opt);
    const auto dev = ibmb::cuda::extract_batches(res, ds, plan, norm);
    REQUIRE(dev.num_batches == static_cast<std::int64_t>(host.num_batches()));
    REQUIRE(dev.total_edges == host.total_edges());
    for (std::size_t b = 0; b < host.num_batches(); ++b)
      require_same(dev.batch(static_cast<std::int64_t>(b)), host.batch(b), res, true);
  }
}

TEST_CASE("cuda extract_batches on a fixture with an isolated node", "[cuda]") {
  if (no_device()) return;
  ibmb::dataset ds;
  ds.graph = ibmb::make_undirected_with_self_loops(
      ibmb::test::two_cliques_with_isolated<std::int64_t, std::int64_t, float>(4).view());
  ibmb::batch_plan<std::int64_t> plan;
  plan.push_batch(std::vector<std::int64_t>{3, 8}, std::vector<std::int64_t>{0, 3, 4, 8});
  plan.push_batch(std::vector<std::int64_t>{}, std::vector<std::int64_t>{});
  plan.push_batch(std::vector<std::int64_t>{5}, std::vector<std::int64_t>{1, 2, 3, 4, 5, 6, 7});
  ibmb::materialize_options opt;
  opt.fingerprint = false;
  const auto host = ibmb::materialize(ds, plan, opt);
  ibmb::cuda::resources res;
  const auto dev = ibmb::cuda::extract_batches(res, ds, plan, opt.norm);
  for (std::size_t b = 0; b < host.num_batches(); ++b)
    require_same(dev.batch(static_cast<std::int64_t>(b)), host.batch(b), res, false);
}

TEST_CASE("cuda device_batch_store: resident and streaming give the host's batches", "[cuda]") {
  if (no_device()) return;
  const auto ds = small_dataset(2000);
  const auto plan = make_plan(ds, 7, 30);
  ibmb::materialize_options opt;
  opt.fingerprint = false;
  const auto host = ibmb::materialize(ds, plan, opt);
  ibmb::cuda::resources res;
  {
    ibmb::cuda::device_batch_store all(host, res, std::size_t{1} << 30);
    REQUIRE(all.resident());
    for (std::int64_t b = 0; b < all.num_batches(); ++b)
      require_same(all.get(b), host.batch(static_cast<std::size_t>(b)), res, true);
  }
  {
    // A budget just big enough for the two slots forces streaming.
    std::size_t largest = 0;
    for (std::size_t b = 0; b < host.num_batches(); ++b) {
      const auto v = host.batch(b);
      largest = std::max<std::size_t>(
          largest, static_cast<std::size_t>(v.num_nodes()) * (16 + 8 + 4 * 7) + 2048 +
                       static_cast<std::size_t>(v.num_edges()) * 12);
    }
    ibmb::cuda::device_batch_store st(host, res, 2 * largest);
    REQUIRE_FALSE(st.resident());
    // In order (prefetch hits), then out of order (misses), then a repeat.
    std::vector<std::int64_t> order;
    for (std::int64_t b = 0; b < st.num_batches(); ++b) order.push_back(b);
    for (std::int64_t b : {5, 1, 6, 6, 0, 3}) order.push_back(b);
    for (std::int64_t b : order)
      require_same(st.get(b), host.batch(static_cast<std::size_t>(b)), res, true);
  }
}
