// GPU kernels on the embedded generator, timed with CUDA events (manual time):
//   BM_cuda_topic_iteration  one power iteration of topic PPR (cuSPARSE SpMM + the fused
//                            scaling/teleport kernel) per B columns; counters: GB/s with
//                            bytes = nnz x (8 + 4 x B) per iteration, and that over the HBM
//                            roofline computed from the device's memory clock and bus width
//                            (override with IBMB_HBM_GBPS).
//   BM_cuda_select_k         top-k of every column of an N x B score block; counter: time over
//                            one read of the block at the roofline (target <= 2).
//   BM_cuda_extract          extract_batches for a plan of random outputs + one-hop nodes;
//                            counter: local edges/s.
//   BM_cuda_push             cuda::nodewise_ppr (top-16, eps 2e-4) of random outputs, timed
//                            with CUDA events around the whole call (push, top-k, copies and
//                            host assembly); counters: outputs/s, and in the same run the CPU
//                            nodewise_ppr on all cores (cpu_outputs/s, timed once per size with
//                            a steady clock) and speedup = GPU / CPU (target >= 5).
// Sizes: Args({nodes in thousands, B}); the 2.4M-node graph is the {2400, 32} instance.
// BM_cuda_push: Args({nodes in thousands, outputs in thousands}).
// Without a device every benchmark reports an error and skips.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <vector>

#include "ibmb/batch/plan.hpp"
#include "ibmb/cuda/csr.cuh"
#include "ibmb/cuda/extract.cuh"
#include "ibmb/cuda/push.cuh"
#include "ibmb/cuda/topic.cuh"
#include "ibmb/cuda/topk.cuh"
#include "ibmb/graph/build.hpp"
#include "ibmb/graph/generate.hpp"
#include "ibmb/ppr/push.hpp"

namespace {

const ibmb::dataset& generated(std::int64_t nodes) {
  static std::map<std::int64_t, std::unique_ptr<ibmb::dataset>> cache;
  auto& d = cache[nodes];
  if (!d) {
    ibmb::generator_params gp;
    gp.nodes = nodes;
    gp.seed = 1;
    d = std::make_unique<ibmb::dataset>(ibmb::generate_dataset(gp));
    d->graph = ibmb::make_undirected_with_self_loops(d->graph.view());
  }
  return *d;
}

double roofline_gbps() {
  if (const char* e = std::getenv("IBMB_HBM_GBPS")) return std::atof(e);
  int clock_khz = 0, bus_bits = 0;
  cudaDeviceGetAttribute(&clock_khz, cudaDevAttrMemoryClockRate, 0);
  cudaDeviceGetAttribute(&bus_bits, cudaDevAttrGlobalMemoryBusWidth, 0);
  return 2.0 * clock_khz * 1e3 * (bus_bits / 8.0) / 1e9;  // double data rate
}

struct event_timer {
  cudaEvent_t a{}, b{};
  event_timer() {
    IBMB_CUDA_TRY(cudaEventCreate(&a));
    IBMB_CUDA_TRY(cudaEventCreate(&b));
  }
  ~event_timer() {
    cudaEventDestroy(a);
    cudaEventDestroy(b);
  }
  void start(cudaStream_t s) { IBMB_CUDA_TRY(cudaEventRecord(a, s)); }
  double stop(cudaStream_t s) {
    IBMB_CUDA_TRY(cudaEventRecord(b, s));
    IBMB_CUDA_TRY(cudaEventSynchronize(b));
    float ms = 0;
    IBMB_CUDA_TRY(cudaEventElapsedTime(&ms, a, b));
    return ms * 1e-3;
  }
};

bool have_device(benchmark::State& state) {
  if (ibmb::cuda::device_count() > 0) return true;
  state.SkipWithError("no CUDA device");
  return false;
}

void BM_cuda_topic_iteration(benchmark::State& state) {
  if (!have_device(state)) return;
  const auto& ds = generated(state.range(0) * 1000);
  const int B = static_cast<int>(state.range(1));
  ibmb::cuda::resources res;
  ibmb::cuda::device_csr<std::int64_t, std::int64_t, float> g(ds.graph.view(), res);
  std::vector<std::int64_t> ptr{0}, nodes;
  for (int j = 0; j < B; ++j) {
    for (int i = 0; i < 20; ++i) nodes.push_back((j * 7919 + i * 104729) % ds.num_nodes());
    ptr.push_back(static_cast<std::int64_t>(nodes.size()));
  }
  ibmb::topic_ppr_params p;
  p.block_columns = B;
  const int iters = 10;
  event_timer t;
  for (auto _ : state) {
    // Two runs of different length: their difference is `iters` iterations, without setup.
    p.max_iterations = 1;
    t.start(res.stream());
    ibmb::cuda::topic_ppr_blocks<float>(res, g.view(), {ptr, nodes}, p,
                                        [](std::int64_t, int, const float*) {});
    const double one = t.stop(res.stream());
    p.max_iterations = 1 + iters;
    t.start(res.stream());
    ibmb::cuda::topic_ppr_blocks<float>(res, g.view(), {ptr, nodes}, p,
                                        [](std::int64_t, int, const float*) {});
    const double many = t.stop(res.stream());
    state.SetIterationTime(std::max(many - one, 1e-9) / iters);
  }
  const double bytes = static_cast<double>(g.num_edges()) * (8.0 + 4.0 * B);
  state.counters["GB/s"] =
      benchmark::Counter(bytes / 1e9, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["roofline_GB/s"] = roofline_gbps();
  state.counters["nnz"] = static_cast<double>(g.num_edges());
}
BENCHMARK(BM_cuda_topic_iteration)
    ->Args({100, 32})
    ->Args({1000, 32})
    ->Args({2400, 32})
    ->Args({2400, 64})
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);

void BM_cuda_select_k(benchmark::State& state) {
  if (!have_device(state)) return;
  const std::int64_t n = state.range(0) * 1000;
  const int B = static_cast<int>(state.range(1));
  const std::int64_t k = std::max<std::int64_t>(1, n / 50);
  ibmb::cuda::resources res;
  std::vector<float> h(static_cast<std::size_t>(n) * B);
  std::mt19937 rng(1);
  std::exponential_distribution<float> dist(1.0f);
  for (auto& x : h) x = dist(rng);
  auto d = ibmb::cuda::to_device(std::span<const float>(h), res.stream());
  ibmb::cuda::topk_selector sel;
  sel.prepare(n, B, k, res);
  event_timer t;
  for (auto _ : state) {
    t.start(res.stream());
    sel.select(d.data(), B, res);
    state.SetIterationTime(t.stop(res.stream()));
  }
  const double read_s = static_cast<double>(n) * B * 4 / (roofline_gbps() * 1e9);
  state.counters["one_read_s"] = read_s;
  state.counters["k"] = static_cast<double>(k);
}
BENCHMARK(BM_cuda_select_k)
    ->Args({100, 32})
    ->Args({2400, 32})
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);

void BM_cuda_extract(benchmark::State& state) {
  if (!have_device(state)) return;
  const auto& ds = generated(state.range(0) * 1000);
  const auto gv = ds.graph.view();
  ibmb::batch_plan<std::int64_t> plan;
  std::mt19937_64 rng(3);
  std::uniform_int_distribution<std::int64_t> pick(0, ds.num_nodes() - 1);
  for (int b = 0; b < 64; ++b) {
    std::set<std::int64_t> outs, all;
    for (int i = 0; i < 512; ++i) outs.insert(pick(rng));
    for (auto o : outs) {
      all.insert(o);
      for (auto v : gv.neighbors(o)) all.insert(v);
    }
    plan.push_batch(std::vector<std::int64_t>(outs.begin(), outs.end()),
                    std::vector<std::int64_t>(all.begin(), all.end()));
  }
  ibmb::cuda::resources res;
  ibmb::cuda::device_csr<std::int64_t, std::int64_t, float> g(gv, res);
  auto f = ibmb::cuda::to_device(std::span<const float>(ds.features), res.stream());
  event_timer t;
  std::int64_t edges = 0;
  for (auto _ : state) {
    t.start(res.stream());
    auto out = ibmb::cuda::extract_batches(res, g.view(), plan, ibmb::normalization::row, f.data(),
                                           ds.num_features);
    state.SetIterationTime(t.stop(res.stream()));
    edges = out.total_edges;
  }
  state.counters["edges/s"] =
      benchmark::Counter(static_cast<double>(edges), benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_cuda_extract)->Arg(100)->Arg(2400)->UseManualTime()->Unit(benchmark::kMillisecond);

void BM_cuda_push(benchmark::State& state) {
  if (!have_device(state)) return;
  const auto& ds = generated(state.range(0) * 1000);
  const auto gv = ds.graph.view();
  const std::int64_t count = std::min<std::int64_t>(state.range(1) * 1000, ds.num_nodes());
  std::vector<std::int64_t> outs(static_cast<std::size_t>(count));
  std::mt19937_64 rng(5);
  std::uniform_int_distribution<std::int64_t> pick(0, ds.num_nodes() - 1);
  for (auto& v : outs) v = pick(rng);
  ibmb::ppr_params p;
  p.topk = 16;
  // The CPU path on all cores, once per size (it does not change between iterations).
  static std::map<std::pair<std::int64_t, std::int64_t>, double> cpu_seconds;
  auto& cpu_s = cpu_seconds[{state.range(0), state.range(1)}];
  std::int64_t cpu_nnz = 0;
  if (cpu_s == 0) {
    const auto t0 = std::chrono::steady_clock::now();
    const auto m = ibmb::nodewise_ppr<float>(gv, std::span<const std::int64_t>(outs), p);
    cpu_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    cpu_nnz = m.nnz();
  }
  ibmb::cuda::resources res;
  ibmb::cuda::device_csr<std::int64_t, std::int64_t, float> g(gv, res);
  event_timer t;
  ibmb::cuda::push_device_stats st;
  std::int64_t nnz = 0, edges = 0;
  for (auto _ : state) {
    t.start(res.stream());
    const auto m =
        ibmb::cuda::nodewise_ppr(res, g.view(), std::span<const std::int64_t>(outs), p, {}, &st);
    state.SetIterationTime(t.stop(res.stream()));
    nnz = m.nnz();
    edges = m.counters.edges_relaxed;
  }
  const double cpu_rate = static_cast<double>(count) / cpu_s;
  state.counters["outputs/s"] =
      benchmark::Counter(static_cast<double>(count), benchmark::Counter::kIsIterationInvariantRate);
  state.counters["edges_relaxed/s"] =
      benchmark::Counter(static_cast<double>(edges), benchmark::Counter::kIsIterationInvariantRate);
  state.counters["cpu_outputs/s"] = cpu_rate;
  state.counters["cpu_threads"] = ibmb::max_threads();
  state.counters["rounds"] = static_cast<double>(st.rounds);
  state.counters["overflowed"] = static_cast<double>(st.overflowed);
  state.counters["nnz"] = static_cast<double>(nnz);
  if (cpu_nnz > 0) state.counters["cpu_nnz"] = static_cast<double>(cpu_nnz);
  // speedup = (GPU outputs/s) / (CPU outputs/s), from the mean GPU iteration time.
  state.counters["speedup"] = benchmark::Counter(static_cast<double>(count) / cpu_rate,
                                                 benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_cuda_push)
    ->Args({100, 20})
    ->Args({1000, 100})
    ->Args({2400, 100})
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
