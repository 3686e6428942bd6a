// [cuda] topic-sensitive PPR (cuSPARSE SpMM) and batched top-k against the CPU path.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <set>
#include <vector>

#include "cuda_fixtures.cuh"
#include "fixtures.hpp"
#include "ibmb/cuda/csr.cuh"
#include "ibmb/cuda/topic.cuh"
#include "ibmb/cuda/topk.cuh"
#include "ibmb/graph/generate.hpp"
#include "ibmb/ppr/topic.hpp"
#include "ibmb/ppr/topk.hpp"

namespace {

using graph = ibmb::csr_graph<std::int64_t, std::int64_t, float>;

using ibmb::test::no_device;

graph small_generated(std::int64_t nodes, std::uint64_t seed) {
  ibmb::generator_params gp;
  gp.nodes = nodes;
  gp.avg_degree = 10;
  gp.classes = 4;
  gp.features = 8;
  gp.community_size = 20;
  gp.max_degree = 100;
  gp.seed = seed;
  auto ds = ibmb::generate_dataset(gp);
  return ds.graph;
}

/// Teleport sets: set s holds `per_set` pseudo-random nodes (a repeat now and then, which the
/// CPU counts twice), plus one set holding a node of degree 0 when there is one.
struct sets_holder {
  std::vector<std::int64_t> ptr{0};
  std::vector<std::int64_t> nodes;
  ibmb::teleport_sets<std::int64_t> view() const { return {ptr, nodes}; }
};

sets_holder make_sets(const graph& g, std::int64_t count, std::int64_t per_set,
                      std::uint64_t seed) {
  sets_holder h;
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<std::int64_t> pick(0, g.num_rows - 1);
  for (std::int64_t s = 0; s < count; ++s) {
    for (std::int64_t i = 0; i < per_set; ++i) h.nodes.push_back(pick(rng));
    h.ptr.push_back(static_cast<std::int64_t>(h.nodes.size()));
  }
  for (std::int64_t v = 0; v < g.num_rows; ++v)
    if (g.view().degree(v) == 0) {
      h.nodes.push_back(v);
      h.nodes.push_back((v + 1) % g.num_rows);
      h.ptr.push_back(static_cast<std::int64_t>(h.nodes.size()));
      break;
    }
  return h;
}

/// Dense N x S scores from the GPU path.
std::vector<float> gpu_dense(const ibmb::cuda::resources& res, const graph& g,
                             ibmb::teleport_sets<std::int64_t> sets,
                             const ibmb::topic_ppr_params& p, ibmb::topic_ppr_stats* st) {
  ibmb::cuda::device_csr<std::int64_t, std::int64_t, float> dg(g.view(), res);
  const auto n = static_cast<std::size_t>(g.num_rows);
  const auto S = static_cast<std::size_t>(sets.size());
  std::vector<float> out(n * S);
  *st = ibmb::cuda::topic_ppr_blocks<float>(
      res, dg.view(), sets, p, [&](std::int64_t first, int width, const float* x) {
        auto h = ibmb::cuda::to_host(x, n * static_cast<std::size_t>(width), res.stream());
        for (std::size_t v = 0; v < n; ++v)
          for (int j = 0; j < width; ++j)
            out[v * S + static_cast<std::size_t>(first + j)] =
                h[v * static_cast<std::size_t>(width) + static_cast<std::size_t>(j)];
      });
  return out;
}

void compare_with_cpu(const graph& g, const sets_holder& sh, const ibmb::topic_ppr_params& p,
                      bool same_iterations) {
  ibmb::cuda::resources res;
  ibmb::topic_ppr_stats gst;
  const auto gpu = gpu_dense(res, g, sh.view(), p, &gst);
  auto cpu = ibmb::topic_ppr_dense<float>(g.view(), sh.view(), p);
  const std::int64_t blocks = (sh.view().size() + p.block_columns - 1) / p.block_columns;
  const auto S = static_cast<std::size_t>(sh.view().size());
  double worst = 0;
  for (std::int64_t v = 0; v < g.num_rows; ++v)
    for (std::size_t j = 0; j < S; ++j) {
      const double c = cpu(v, static_cast<Eigen::Index>(j));
      const double d = gpu[static_cast<std::size_t>(v) * S + j];
      worst = std::max(worst, std::abs(c - d) / (1e-6 + std::abs(c)));
    }
  INFO("worst relative difference " << worst);
  CHECK(worst < 1e-3);
  CHECK(gst.blocks == blocks);
  if (same_iterations) CHECK(gst.iterations == gst.blocks * p.max_iterations);
}

}  // namespace

TEST_CASE("cuda topic PPR matches the CPU on the fixtures, both transitions", "[cuda]") {
  if (no_device()) return;
  for (auto tr : {ibmb::ppr_transition::row, ibmb::ppr_transition::column}) {
    ibmb::topic_ppr_params p;
    p.transition = tr;
    p.block_columns = 3;  // several blocks, a ragged last one
    for (const graph& g : {ibmb::test::two_cliques_with_isolated(5), ibmb::test::star_graph(7),
                           ibmb::test::path_graph(9), ibmb::test::cycle_graph(6)}) {
      const auto sh = make_sets(g, 7, 2, 11);
      compare_with_cpu(g, sh, p, true);
    }
  }
}

TEST_CASE("cuda topic PPR matches the CPU on a generated graph, fixed and tolerance stop",
          "[cuda]") {
  if (no_device()) return;
  const graph g = small_generated(3000, 5);
  const auto sh = make_sets(g, 40, 25, 3);
  ibmb::topic_ppr_params p;
  p.block_columns = 16;
  compare_with_cpu(g, sh, p, true);
  p.transition = ibmb::ppr_transition::column;
  compare_with_cpu(g, sh, p, true);

  // Tolerance: the stop decision is made on sums that differ from the CPU's only by rounding,
  // so the iteration counts agree up to one per block, and the scores still agree.
  p.tolerance = 1e-4;
  p.max_iterations = 200;
  ibmb::cuda::resources res;
  ibmb::topic_ppr_stats gst;
  const auto gpu = gpu_dense(res, g, sh.view(), p, &gst);
  const auto cst =
      ibmb::topic_ppr_blocks<float>(g.view(), sh.view(), p, [](std::int64_t, int, auto) {});
  CHECK(std::abs(gst.iterations - cst.iterations) <= gst.blocks);
  CHECK(gst.iterations < gst.blocks * p.max_iterations);
  CHECK(gst.max_final_change < p.tolerance);
}

TEST_CASE("cuda select-k equals the CPU order on the same scores, ties and zeros included",
          "[cuda]") {
  if (no_device()) return;
  ibmb::cuda::resources res;
  const std::int64_t n = 1000;
  const int B = 5;
  std::mt19937_64 rng(7);
  std::uniform_int_distribution<int> level(-3, 12);
  std::vector<float> h(static_cast<std::size_t>(n) * B);
  // Few distinct values: many ties; non-positive scores are never selected.
  for (auto& x : h) {
    const int l = level(rng);
    x = l <= 0 ? (l == 0 ? 0.0f : -1.0f * static_cast<float>(-l)) : 0.125f * static_cast<float>(l);
  }
  // Column 4 has only three positive entries.
  for (std::int64_t v = 0; v < n; ++v)
    h[static_cast<std::size_t>(v) * B + 4] = v % 400 == 7 ? 1.0f : 0.0f;
  auto d = ibmb::cuda::to_device(std::span<const float>(h), res.stream());
  for (std::int64_t k : {1, 10, 250, 2000}) {
    ibmb::cuda::topk_selector sel;
    sel.prepare(n, B, std::min(k, n), res);
    sel.select(d.data(), B, res);
    const auto kk = static_cast<std::size_t>(std::min(k, n));
    auto ids = ibmb::cuda::to_host(sel.ids(), kk * B, res.stream());
    auto sc = ibmb::cuda::to_host(sel.scores(), kk * B, res.stream());
    for (int j = 0; j < B; ++j) {
      std::vector<std::pair<float, std::int64_t>> cand;
      for (std::int64_t v = 0; v < n; ++v) {
        const float x = h[static_cast<std::size_t>(v) * B + static_cast<std::size_t>(j)];
        if (x > 0) cand.emplace_back(x, v);
      }
      std::sort(cand.begin(), cand.end(), ibmb::score_then_id_order{});
      cand.resize(std::min(cand.size(), kk));
      for (std::size_t t = 0; t < kk; ++t) {
        const std::size_t at = static_cast<std::size_t>(j) * kk + t;
        if (t < cand.size()) {
          REQUIRE(ids[at] == cand[t].second);
          REQUIRE(sc[at] == cand[t].first);
        } else {
          REQUIRE(ids[at] == -1);
        }
      }
    }
  }
}

TEST_CASE("cuda topic_ppr_topk agrees with the CPU's lists", "[cuda]") {
  if (no_device()) return;
  const graph g = small_generated(4000, 9);
  const auto sh = make_sets(g, 50, 20, 5);
  ibmb::topic_ppr_params p;
  p.block_columns = 32;
  const std::int64_t k = 64;
  ibmb::cuda::resources res;
  ibmb::cuda::device_csr<std::int64_t, std::int64_t, float> dg(g.view(), res);
  const auto gpu = ibmb::cuda::topic_ppr_topk(res, dg.view(), sh.view(), k, p);
  const auto cpu = ibmb::topic_ppr_topk<float>(g.view(), sh.view(), k, p);
  REQUIRE(gpu.size() == cpu.size());
  std::int64_t same = 0, total = 0;
  for (std::int64_t s = 0; s < cpu.size(); ++s) {
    const auto a = cpu.list(s), b = gpu.list(s);
    REQUIRE(a.size() == b.size());
    // Scores descending with ties by id, as on the CPU.
    for (std::size_t t = 1; t < b.size(); ++t) {
      const auto i0 = static_cast<std::size_t>(gpu.ptr[static_cast<std::size_t>(s)]) + t - 1;
      REQUIRE((gpu.scores[i0] > gpu.scores[i0 + 1] ||
               (gpu.scores[i0] == gpu.scores[i0 + 1] && gpu.ids[i0] < gpu.ids[i0 + 1])));
    }
    std::set<std::int64_t> as(a.begin(), a.end());
    for (auto v : b) same += as.count(v);
    total += static_cast<std::int64_t>(a.size());
  }
  // Rounding may swap entries at the k-th place; the sets are otherwise equal.
  CHECK(static_cast<double>(same) >= 0.99 * static_cast<double>(total));
}
