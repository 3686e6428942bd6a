// DLPack views of stored batches: zero copy, right shapes and dtypes, freed by the deleter.
#include <cstdint>
#include <vector>

#include <catch2/catch.hpp>

#include "fixtures.hpp"
#include "ibmb/batch/dlpack.hpp"
#include "ibmb/batch/materialize.hpp"

TEST_CASE("batch views export to DLPack without copies", "[store][dlpack]") {
#if IBMB_HAS_DLPACK
  using namespace ibmb;
  dataset ds;
  ds.graph = add_self_loops(test::two_cliques_with_isolated(4).view());
  const auto n = ds.num_nodes();
  ds.num_features = 3;
  for (std::int64_t v = 0; v < n * 3; ++v) ds.features.push_back(static_cast<float>(v));
  for (std::int64_t v = 0; v < n; ++v) ds.labels.push_back(v % 2);
  batch_plan<> plan;
  const std::vector<std::int64_t> outs = {1, 5}, nodes = {0, 1, 3, 4, 5, 8};
  plan.push_batch(outs, nodes);
  for (auto dtype : {feature_dtype::float32, feature_dtype::bfloat16}) {
    materialize_options mo;
    mo.features = dtype;
    const auto store = materialize(ds, plan, mo);
    const auto b = store.batch(0);
    auto t = to_dlpack(b);
    REQUIRE(t.num_outputs == 2);
    REQUIRE(t.node_ids->dl_tensor.ndim == 1);
    REQUIRE(t.node_ids->dl_tensor.shape[0] == 6);
    REQUIRE(t.node_ids->dl_tensor.data == b.node_ids.data());  // zero copy
    REQUIRE(t.node_ids->dl_tensor.dtype.code == kDLInt);
    REQUIRE(t.node_ids->dl_tensor.dtype.bits == 64);
    REQUIRE(t.features->dl_tensor.ndim == 2);
    REQUIRE(t.features->dl_tensor.shape[0] == 6);
    REQUIRE(t.features->dl_tensor.shape[1] == 3);
    REQUIRE(t.features->dl_tensor.data == static_cast<const void*>(b.feature_bytes.data()));
    REQUIRE(t.features->dl_tensor.dtype.code ==
            (dtype == feature_dtype::float32 ? kDLFloat : kDLBfloat));
    REQUIRE(t.indptr->dl_tensor.shape[0] == 7);
    REQUIRE(t.indices->dl_tensor.shape[0] == b.num_edges());
    REQUIRE(t.weights->dl_tensor.shape[0] == b.num_edges());
    REQUIRE(t.labels != nullptr);
    release(t);
    REQUIRE(t.features == nullptr);
  }
  const std::vector<float> v(6);
  REQUIRE_THROWS_AS(to_dlpack(std::span<const float>(v), {4, 2}), ibmb::invalid_argument);
#else
  WARN("skipped: <dlpack/dlpack.h> not found (Debian: libdlpack-dev)");
#endif
}
