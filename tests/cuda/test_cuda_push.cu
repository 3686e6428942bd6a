// [cuda] node-wise forward push on the GPU (cuda/push.cuh) against the CPU push
// (ppr/push.hpp) and planner (batch/nodewise.hpp).
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <optional>
#include <random>
#include <set>
#include <vector>

#include "cuda_fixtures.cuh"
#include "fixtures.hpp"
#include "ibmb/batch/nodewise.hpp"
#include "ibmb/cuda/csr.cuh"
#include "ibmb/cuda/push.cuh"
#include "ibmb/graph/build.hpp"
#include "ibmb/graph/generate.hpp"
#include "ibmb/ppr/push.hpp"

namespace {

using graph = ibmb::csr_graph<std::int64_t, std::int64_t, float>;

using ibmb::test::no_device;

graph generated(std::int64_t nodes, std::uint64_t seed) {
  ibmb::generator_params gp;
  gp.nodes = nodes;
  gp.avg_degree = 12;
  gp.classes = 4;
  gp.features = 4;
  gp.community_size = 30;
  gp.max_degree = 200;
  gp.seed = seed;
  auto ds = ibmb::generate_dataset(gp);
  return ibmb::make_undirected_with_self_loops(ds.graph.view());
}

std::optional<graph> load_cora() {
  auto dir = ibmb::test::shared_dataset("cora-planetoid");
  if (!dir) return std::nullopt;
  std::ifstream in(*dir / "derived" / "edges.txt");
  std::vector<std::pair<std::int64_t, std::int64_t>> e;
  std::int64_t a = 0, b = 0;
  while (in >> a >> b) e.emplace_back(a, b);
  REQUIRE(e.size() == 5278);  // the dataset README's count
  return ibmb::make_undirected_with_self_loops(ibmb::test::undirected(2708, e).view());
}

std::vector<std::int64_t> random_outputs(std::int64_t n, std::int64_t count, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<std::int64_t> pick(0, n - 1);
  std::vector<std::int64_t> out(static_cast<std::size_t>(count));
  for (auto& v : out) v = pick(rng);
  return out;
}

struct agreement {
  double shared = 0;     // fraction of the CPU's entries also in the GPU's row
  double worst_rel = 0;  // largest relative value difference on shared entries
  double exact = 0;      // fraction of shared entries with bit-identical values
  bool same_lengths = true;
};

/// Compares two ppr_matrix results row by row (rows in the same output order).
template <class I>
agreement compare(const ibmb::ppr_matrix<I, float>& cpu, const ibmb::ppr_matrix<I, float>& gpu,
                  bool include_output = true) {
  REQUIRE(cpu.num_rows == gpu.num_rows);
  REQUIRE(cpu.num_cols == gpu.num_cols);
  REQUIRE(cpu.outputs == gpu.outputs);
  REQUIRE(gpu.indptr.size() == static_cast<std::size_t>(gpu.num_rows) + 1);
  agreement a;
  std::int64_t total = 0, shared = 0, exact = 0;
  for (std::int64_t i = 0; i < cpu.num_rows; ++i) {
    const auto ci = cpu.row_indices(i), gi = gpu.row_indices(i);
    const auto cv = cpu.row_values(i), gv = gpu.row_values(i);
    if (ci.size() != gi.size()) a.same_lengths = false;
    REQUIRE(std::is_sorted(gi.begin(), gi.end()));
    // The output itself is always in its row (include_output).
    if (include_output)
      REQUIRE(std::find(gi.begin(), gi.end(), gpu.outputs[static_cast<std::size_t>(i)]) !=
              gi.end());
    std::size_t q = 0;
    for (std::size_t k = 0; k < ci.size(); ++k) {
      ++total;
      while (q < gi.size() && gi[q] < ci[k]) ++q;
      if (q < gi.size() && gi[q] == ci[k]) {
        ++shared;
        exact += cv[k] == gv[q];
        a.worst_rel =
            std::max(a.worst_rel, std::abs(static_cast<double>(cv[k]) - gv[q]) /
                                      std::max(1e-30, std::abs(static_cast<double>(cv[k]))));
      }
    }
  }
  a.shared = total ? static_cast<double>(shared) / static_cast<double>(total) : 1.0;
  a.exact = shared ? static_cast<double>(exact) / static_cast<double>(shared) : 1.0;
  return a;
}

template <class I>
void check_against_cpu(const ibmb::csr_graph<I, I, float>& g, std::span<const I> outputs,
                       const ibmb::ppr_params& p, const ibmb::cuda::push_device_params& dp,
                       ibmb::cuda::push_device_stats* st_out = nullptr) {
  ibmb::cuda::resources res;
  ibmb::cuda::device_csr<I, I, float> dg(g.view(), res);
  ibmb::cuda::push_device_stats st;
  const auto gpu = ibmb::cuda::nodewise_ppr(res, dg.view(), outputs, p, dp, &st);
  const auto cpu = ibmb::nodewise_ppr<float>(g.view(), outputs, p);
  const auto a = compare(cpu, gpu, p.include_output || p.topk == 0);
  INFO("shared " << a.shared << ", worst relative " << a.worst_rel << ", bit-identical " << a.exact
                 << ", rounds " << st.rounds << ", overflowed " << st.overflowed);
  // Same sequence of float operations as the CPU on graphs without repeated entries.
  CHECK(a.same_lengths);
  CHECK(a.shared == 1.0);
  CHECK(a.worst_rel < 1e-5);
  CHECK(gpu.counters == cpu.counters);
  if (st_out) *st_out = st;
}

}  // namespace

TEST_CASE("cuda push rejects bad parameters before touching the device", "[cuda]") {
  // The public functions run these checks first, on the host; called directly here because
  // the public ones need a `resources`, which needs a device.
  ibmb::cuda::device_csr_view<std::int64_t, std::int64_t, float> g;
  g.num_rows = g.num_cols = 10;
  const std::vector<std::int64_t> outs{1, 2, 11};
  ibmb::ppr_params p;
  auto run = [&](const ibmb::ppr_params& q, const std::vector<std::int64_t>& o,
                 const ibmb::cuda::push_device_params& dp) {
    ibmb::cuda::detail::check_device_push_inputs(g, std::span<const std::int64_t>(o), q, dp,
                                                 "cuda::nodewise_ppr");
  };
  REQUIRE_THROWS_AS(run(p, outs, {}), ibmb::out_of_range);
  REQUIRE_THROWS_WITH(run(p, outs, {}), Catch::Contains("outputs[2] = 11"));
  const std::vector<std::int64_t> ok{1, 2};
  REQUIRE_NOTHROW(run(p, ok, {}));
  ibmb::ppr_params q = p;
  q.order = ibmb::push_order::fifo;
  REQUIRE_THROWS_AS(run(q, ok, {}), ibmb::invalid_argument);
  q = p;
  q.topk = -1;
  REQUIRE_THROWS_AS(run(q, ok, {}), ibmb::invalid_argument);
  q = p;
  q.eps = 0;
  REQUIRE_THROWS_AS(run(q, ok, {}), ibmb::invalid_argument);
  ibmb::cuda::push_device_params dp;
  dp.table_slots = 1000;  // not a power of two
  REQUIRE_THROWS_WITH(run(p, ok, dp), Catch::Contains("table_slots = 1000"));
  dp = {};
  dp.table_growth = 1;
  REQUIRE_THROWS_AS(run(p, ok, dp), ibmb::invalid_argument);
  g.num_cols = 9;
  REQUIRE_THROWS_WITH(run(p, ok, {}), Catch::Contains("square"));
}

TEMPLATE_TEST_CASE("cuda push equals the CPU push on the fixture graphs", "[cuda]", std::int32_t,
                   std::int64_t) {
  if (no_device()) return;
  using I = TestType;
  std::vector<ibmb::csr_graph<I, I, float>> graphs;
  graphs.push_back(
      ibmb::make_undirected_with_self_loops(ibmb::test::path_graph<I, I, float>(9).view()));
  graphs.push_back(
      ibmb::make_undirected_with_self_loops(ibmb::test::cycle_graph<I, I, float>(8).view()));
  graphs.push_back(
      ibmb::make_undirected_with_self_loops(ibmb::test::star_graph<I, I, float>(40).view()));
  graphs.push_back(ibmb::make_undirected_with_self_loops(
      ibmb::test::two_cliques_with_isolated<I, I, float>(6).view()));
  // No self-loops, an isolated node (degree 0: it keeps res / alpha).
  graphs.push_back(ibmb::test::two_cliques_with_isolated<I, I, float>(5));
  for (const auto& g : graphs) {
    std::vector<I> outs;
    for (I v = 0; v < g.num_rows; ++v) outs.push_back(v);
    outs.push_back(0);  // a repeated output: a repeated row
    for (std::int64_t k : {0, 1, 3, 16}) {
      for (double eps : {1e-2, 1e-4}) {
        ibmb::ppr_params p;
        p.topk = k;
        p.eps = eps;
        INFO("n " << g.num_rows << ", topk " << k << ", eps " << eps);
        check_against_cpu(g, std::span<const I>(outs), p, {});
        p.include_output = false;
        check_against_cpu(g, std::span<const I>(outs), p, {});
      }
    }
  }
}

TEST_CASE("cuda push: overflowing tables are rerun with larger ones, never used", "[cuda]") {
  if (no_device()) return;
  const graph g = generated(3000, 5);
  const auto outs = random_outputs(g.num_rows, 500, 7);
  ibmb::ppr_params p;
  p.topk = 16;
  p.eps = 1e-5;  // big pushes: hundreds of nodes each
  ibmb::cuda::push_device_params dp;
  dp.table_slots = 128;  // 64 nodes per table: most sources overflow in round one
  dp.table_growth = 4;
  dp.max_chunk = 37;  // many chunks, a ragged last one
  ibmb::cuda::push_device_stats st;
  check_against_cpu(g, std::span<const std::int64_t>(outs), p, dp, &st);
  CHECK(st.overflowed > 0);
  CHECK(st.rounds > 1);
  CHECK(st.chunks > 500 / 37);
  // Every entry kept (topk 0) through the overflow path too.
  p.topk = 0;
  check_against_cpu(g, std::span<const std::int64_t>(outs), p, dp, &st);
  CHECK(st.overflowed > 0);
}

TEST_CASE("cuda push: a workspace too small for the largest table fails only when needed",
          "[cuda]") {
  if (no_device()) return;
  const graph g = generated(3000, 5);
  const auto outs = random_outputs(g.num_rows, 200, 9);
  ibmb::cuda::push_device_params dp;
  dp.table_slots = 128;  // rounds of 128, 512, 2048, 8192 slots (next_pow2(2N))
  dp.table_growth = 4;
  dp.workspace_bytes = std::size_t{64} << 10;  // room for the two small tables only
  ibmb::ppr_params p;
  p.topk = 8;
  p.eps = 1e-2;  // small pushes: every source fits the first table
  ibmb::cuda::push_device_stats st;
  check_against_cpu(g, std::span<const std::int64_t>(outs), p, dp, &st);
  CHECK(st.rounds == 1);
  CHECK(st.overflowed == 0);
  // Big pushes overflow the tables that fit: a clear error naming the workspace.
  p.eps = 1e-5;
  ibmb::cuda::resources res;
  ibmb::cuda::device_csr<std::int64_t, std::int64_t, float> dg(g.view(), res);
  REQUIRE_THROWS_WITH(
      ibmb::cuda::nodewise_ppr(res, dg.view(), std::span<const std::int64_t>(outs), p, dp),
      Catch::Contains("workspace") && Catch::Contains("overflowed the tables that fit"));
}

TEST_CASE("cuda push agrees with the CPU on cora (every node an output)", "[cuda]") {
  if (no_device()) return;
  const auto g = load_cora();
  if (!g) return;
  std::vector<std::int64_t> outs(static_cast<std::size_t>(g->num_rows));
  for (std::size_t v = 0; v < outs.size(); ++v) outs[v] = static_cast<std::int64_t>(v);
  ibmb::ppr_params p;
  p.topk = 32;
  check_against_cpu(*g, std::span<const std::int64_t>(outs), p, {});
  p.topk = 0;
  p.eps = 1e-5;
  check_against_cpu(*g, std::span<const std::int64_t>(outs), p, {});
}

TEST_CASE("cuda push on a generated graph: top-k sets >= 99% equal, values within tolerance",
          "[cuda]") {
  if (no_device()) return;
  const graph g = generated(20000, 3);
  const auto outs = random_outputs(g.num_rows, 4000, 11);
  ibmb::ppr_params p;
  p.topk = 64;
  ibmb::cuda::resources res;
  ibmb::cuda::device_csr<std::int64_t, std::int64_t, float> dg(g.view(), res);
  ibmb::cuda::push_device_stats st;
  const auto gpu =
      ibmb::cuda::nodewise_ppr(res, dg.view(), std::span<const std::int64_t>(outs), p, {}, &st);
  const auto cpu = ibmb::nodewise_ppr<float>(g.view(), std::span<const std::int64_t>(outs), p);
  const auto a = compare(cpu, gpu);
  INFO("shared " << a.shared << ", worst relative " << a.worst_rel << ", bit-identical " << a.exact
                 << ", chunks " << st.chunks << ", workspace " << st.workspace_bytes);
  CHECK(a.shared >= 0.99);
  CHECK(a.worst_rel < 1e-4);
  CHECK(st.rounds >= 1);
  // Deterministic: a second run gives the same bytes (table layouts may differ, rows may not).
  const auto again =
      ibmb::cuda::nodewise_ppr(res, dg.view(), std::span<const std::int64_t>(outs), p, {}, nullptr);
  CHECK(again == gpu);
}

TEST_CASE("cuda nodewise_plan equals the CPU plan (GPU push, CPU grouping)", "[cuda]") {
  if (no_device()) return;
  const graph g = generated(6000, 9);
  auto outs = random_outputs(g.num_rows, 1500, 13);
  std::sort(outs.begin(), outs.end());
  outs.erase(std::unique(outs.begin(), outs.end()), outs.end());
  std::reverse(outs.begin(), outs.end());  // the plan depends on the set, not the order
  ibmb::nodewise_params prm;
  prm.merge.max_outputs = 128;
  ibmb::cuda::resources res;
  ibmb::cuda::device_csr<std::int64_t, std::int64_t, float> dg(g.view(), res);
  ibmb::nodewise_stats gs, cs;
  const auto gpu =
      ibmb::cuda::nodewise_plan(res, dg.view(), std::span<const std::int64_t>(outs), prm, {}, &gs);
  const auto cpu =
      ibmb::nodewise_plan<float>(g.view(), std::span<const std::int64_t>(outs), prm, &cs);
  gpu.validate(g.num_rows);
  CHECK(gs.counters == cs.counters);
  CHECK(gs.num_pairs == cs.num_pairs);
  // The push is the CPU's operation for operation, so the scores and hence the plan match.
  CHECK(gpu.output_ptr == cpu.output_ptr);
  CHECK(gpu.outputs == cpu.outputs);
  CHECK(gpu.node_ptr == cpu.node_ptr);
  CHECK(gpu.nodes == cpu.nodes);
  // Repeated outputs are rejected as on the CPU.
  outs.push_back(outs.front());
  REQUIRE_THROWS_AS(
      ibmb::cuda::nodewise_plan(res, dg.view(), std::span<const std::int64_t>(outs), prm),
      ibmb::invalid_argument);
}

TEST_CASE("cuda push: no outputs, and one output", "[cuda]") {
  if (no_device()) return;
  const graph g = generated(500, 2);
  ibmb::cuda::resources res;
  ibmb::cuda::device_csr<std::int64_t, std::int64_t, float> dg(g.view(), res);
  ibmb::ppr_params p;
  p.topk = 8;
  const auto none = ibmb::cuda::nodewise_ppr(res, dg.view(), std::span<const std::int64_t>{}, p);
  CHECK(none.num_rows == 0);
  CHECK(none.indptr == std::vector<std::int64_t>{0});
  const std::vector<std::int64_t> one{17};
  check_against_cpu(g, std::span<const std::int64_t>(one), p, {});
}
