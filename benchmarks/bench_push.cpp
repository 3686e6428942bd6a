// Node-wise forward push (nodewise_ppr) and nodewise_plan on the embedded generator, plus the
// physical limit of the push: random read-modify-writes over an N-sized array.
//
//   bench_push [google benchmark flags]
//   IBMB_BENCH_EXPORT=DIR IBMB_BENCH_NODES=N bench_push   writes DIR/{indptr,indices,outputs}.npy
//       (the preprocessed graph and the benchmark's outputs) for benchmarks/peers/ and exits.
//   IBMB_BENCH_RUN=DIR IBMB_BENCH_NODES=N IBMB_EPS=E IBMB_TOPK=K IBMB_THREADS=T bench_push
//       runs nodewise_ppr once on the same graph/outputs, prints JSON timings and writes
//       DIR/ours_{indptr,indices,data}.npy (used by benchmarks/peers/run_pprgo.sh).
//
// Counters: outputs/s, edges/s (edge relaxations per second), peak_rss (getrusage, process-wide
// high-water mark so far), graph/result/workspace bytes.
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <limits>
#include <map>
#include <memory>
#include <numeric>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include <benchmark/benchmark.h>

#include "ibmb/batch/nodewise.hpp"
#include "ibmb/core/parallel.hpp"
#include "ibmb/graph/build.hpp"
#include "ibmb/graph/generate.hpp"
#include "ibmb/graph/io/npy.hpp"
#include "ibmb/ppr/push.hpp"

namespace {

using graph_t = ibmb::csr_graph<std::int64_t, std::int64_t, float>;

struct bench_graph {
  graph_t g;                        // undirected + self-loops (the reference's A + I)
  std::vector<std::int64_t> train;  // the generator's train split (10%)
};

double peak_rss_bytes() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_maxrss) * 1024.0;
}

/// The generator's graph at n nodes. `shuffled_ids = false` keeps the generator's community
/// layout in the ids (each small community one range of ids: the best locality an ordering of
/// this graph can have), for BM_push_kernel_local.
const bench_graph& get_graph(std::int64_t n, bool shuffled_ids = true) {
  static std::map<std::pair<std::int64_t, bool>, std::unique_ptr<bench_graph>> cache;
  auto& slot = cache[{n, shuffled_ids}];
  if (!slot) {
    ibmb::generator_params p;
    p.nodes = n;
    p.avg_degree = 25.0;
    p.features = 0;
    p.seed = 1;
    p.shuffle_ids = shuffled_ids;
    auto ds = ibmb::generate_dataset<std::int64_t, std::int64_t>(p);
    slot = std::make_unique<bench_graph>();
    slot->g = ibmb::add_self_loops(ds.graph.view());
    slot->train = ds.train_idx;
  }
  return *slot;
}

/// A fixed random sample of output nodes (same for every run and thread count).
std::vector<std::int64_t> sample_outputs(std::int64_t n, std::int64_t count) {
  std::vector<std::int64_t> ids(static_cast<std::size_t>(n));
  std::iota(ids.begin(), ids.end(), 0);
  std::mt19937_64 rng(12345);
  for (std::int64_t i = 0; i < count && i < n; ++i)
    std::swap(ids[static_cast<std::size_t>(i)],
              ids[static_cast<std::size_t>(
                  i + static_cast<std::int64_t>(rng() % static_cast<std::uint64_t>(n - i)))]);
  ids.resize(static_cast<std::size_t>(std::min(count, n)));
  return ids;
}

constexpr double kEps[] = {2e-4, 1e-5};

std::int64_t outputs_for(double eps) { return eps >= 1e-4 ? 20000 : 2000; }

// Args: nodes, eps index, k, threads
void BM_nodewise_ppr(benchmark::State& state) {
  const std::int64_t n = state.range(0);
  const double eps = kEps[state.range(1)];
  const auto& bg = get_graph(n);
  const auto outs = sample_outputs(n, outputs_for(eps));
  ibmb::ppr_params p;
  p.alpha = 0.25;
  p.eps = eps;
  p.topk = state.range(2);
  p.threads = static_cast<int>(state.range(3));
  ibmb::push_counters c;
  std::size_t result_bytes = 0;
  for (auto _ : state) {
    auto m = ibmb::nodewise_ppr(bg.g.view(), outs, p);
    c = m.counters;
    result_bytes = m.indptr.size() * 8 + m.indices.size() * 8 + m.values.size() * 4;
    benchmark::DoNotOptimize(m.values.data());
  }
  const auto it = static_cast<double>(state.iterations());
  state.counters["outputs/s"] =
      benchmark::Counter(static_cast<double>(outs.size()) * it, benchmark::Counter::kIsRate);
  state.counters["edges/s"] =
      benchmark::Counter(static_cast<double>(c.edges_relaxed) * it, benchmark::Counter::kIsRate);
  state.counters["edges/output"] =
      static_cast<double>(c.edges_relaxed) / static_cast<double>(outs.size());
  state.counters["graph_bytes"] =
      static_cast<double>(bg.g.indptr.size() * 8 + bg.g.indices.size() * 8);
  state.counters["result_bytes"] = static_cast<double>(result_bytes);
  // What nodewise_ppr allocates per thread: one push_workspace (8 B of {residual, threshold}
  // + a 4-byte estimate + two N + 1 node lists per node).
  ibmb::push_workspace<std::int64_t, float> ws;
  ws.prepare(bg.g.view(), p);
  state.counters["workspace_bytes"] =
      static_cast<double>(p.threads) * static_cast<double>(ws.bytes());
  state.counters["peak_rss"] = peak_rss_bytes();
}

// The push loop over the outputs of state.range(0..2) = nodes, eps index, threads.
void push_kernel(benchmark::State& state, const bench_graph& bg, ibmb::push_order order) {
  const std::int64_t n = state.range(0);
  const double eps = kEps[state.range(1)];
  const int threads = static_cast<int>(state.range(2));
  const auto outs = sample_outputs(n, outputs_for(eps));
  ibmb::push_params p;
  p.alpha = 0.25;
  p.eps = eps;
  p.order = order;
  ibmb::scoped_threads guard(threads);
  std::vector<ibmb::push_workspace<std::int64_t, float>> ws(static_cast<std::size_t>(threads));
#pragma omp parallel num_threads(threads)
  ws[static_cast<std::size_t>(ibmb::thread_id())].prepare(bg.g.view(), p);
  const auto count = static_cast<std::int64_t>(outs.size());
  std::int64_t relaxed = 0;
  for (auto _ : state) {
    std::int64_t r = 0;
#pragma omp parallel num_threads(threads) reduction(+ : r)
    {
      auto& w = ws[static_cast<std::size_t>(ibmb::thread_id())];
#pragma omp for schedule(dynamic, 8)
      for (std::int64_t i = 0; i < count; ++i) {
        w.clear();
        r += w.run(bg.g.view(), outs[static_cast<std::size_t>(i)], p).edges_relaxed;
      }
    }
    relaxed = r;
  }
  state.counters["edges/s"] =
      benchmark::Counter(static_cast<double>(relaxed) * static_cast<double>(state.iterations()),
                         benchmark::Counter::kIsRate);
  state.counters["edges/output"] = static_cast<double>(relaxed) / static_cast<double>(count);
}

// The push loop alone: the same outputs pushed with one workspace per thread that is prepared
// before the timing starts (ws.clear() + ws.run(), as nodewise_ppr's loop does), without the
// graph validation, the workspace setup, the top-k selection and the row assembly that a
// nodewise_ppr call adds. Separates the kernel's edges/s from the per-call costs.
// Args: nodes, eps index, threads, order (0 = LIFO, the reference's; 1 = FIFO)
void BM_push_kernel(benchmark::State& state) {
  push_kernel(state, get_graph(state.range(0)),
              state.range(3) == 0 ? ibmb::push_order::lifo : ibmb::push_order::fifo);
}

// The same LIFO push loop on the same generator graph with its ids in community order instead
// of shuffled: what id locality (a graph stored in a locality-preserving order) buys the push.
// Args: nodes, eps index, threads
void BM_push_kernel_local(benchmark::State& state) {
  push_kernel(state, get_graph(state.range(0), false), ibmb::push_order::lifo);
}

// The physical limit: random read-modify-writes (x += 1) over a per-thread N-element array,
// indices streamed from memory as the push streams a row's column ids.
// Args: nodes, element bytes (4 = a float array; 8 = the push's per-node {residual, threshold}
// state since session 5; 16 = the packed state it had before), threads
void BM_random_rmw(benchmark::State& state) {
  const std::int64_t n = state.range(0);
  const auto elem = state.range(1);
  const int threads = static_cast<int>(state.range(2));
  const std::int64_t m = 1 << 24;
  static std::map<std::int64_t, std::vector<std::int64_t>> idx_cache;
  auto& idx = idx_cache[n];
  if (idx.empty()) {
    idx.resize(static_cast<std::size_t>(m));
    std::mt19937_64 rng(9);
    for (auto& x : idx) x = static_cast<std::int64_t>(rng() % static_cast<std::uint64_t>(n));
  }
  const std::int64_t stride = elem / 4;
  ibmb::scoped_threads guard(threads);
  std::vector<std::vector<float>> arrays(static_cast<std::size_t>(threads));
#pragma omp parallel num_threads(threads)
  arrays[static_cast<std::size_t>(ibmb::thread_id())].assign(static_cast<std::size_t>(n * stride),
                                                             0.f);
  for (auto _ : state) {
#pragma omp parallel num_threads(threads)
    {
      float* a = arrays[static_cast<std::size_t>(ibmb::thread_id())].data();
      const std::int64_t* ix = idx.data();
      for (std::int64_t j = 0; j < m; ++j) a[ix[j] * stride] += 1.0f;
    }
    benchmark::ClobberMemory();
  }
  state.counters["updates/s"] =
      benchmark::Counter(static_cast<double>(m) * threads * static_cast<double>(state.iterations()),
                         benchmark::Counter::kIsRate);
}

// The end-to-end target: nodewise_plan for the 10% train nodes, k 16, eps 2e-4.
// Args: nodes, threads
void BM_nodewise_plan(benchmark::State& state) {
  const std::int64_t n = state.range(0);
  const auto& bg = get_graph(n);
  ibmb::nodewise_params p;
  p.ppr.alpha = 0.25;
  p.ppr.eps = 2e-4;
  p.ppr.topk = 16;
  p.ppr.threads = static_cast<int>(state.range(1));
  p.merge.max_outputs = 9000;
  ibmb::nodewise_stats st;
  std::size_t batches = 0;
  for (auto _ : state) {
    auto plan = ibmb::nodewise_plan(bg.g.view(), bg.train, p, &st);
    batches = plan.num_batches();
    benchmark::DoNotOptimize(plan.nodes.data());
  }
  state.counters["outputs"] = static_cast<double>(bg.train.size());
  state.counters["batches"] = static_cast<double>(batches);
  state.counters["pairs"] = static_cast<double>(st.num_pairs);
  state.counters["edges/s"] = benchmark::Counter(
      static_cast<double>(st.counters.edges_relaxed) * static_cast<double>(state.iterations()),
      benchmark::Counter::kIsRate);
  state.counters["peak_rss"] = peak_rss_bytes();
}

void ppr_args(benchmark::internal::Benchmark* b) {
  for (std::int64_t n : {100'000, 1'000'000, 2'400'000})
    for (std::int64_t e : {0, 1})
      for (std::int64_t k : {16, 64})
        for (std::int64_t t : {1, 2}) b->Args({n, e, k, t});
}

}  // namespace

BENCHMARK(BM_random_rmw)
    ->ArgsProduct({{100'000, 1'000'000, 2'400'000}, {4, 8, 16}, {1, 2}})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK(BM_nodewise_ppr)
    ->Apply(ppr_args)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->Iterations(1);
BENCHMARK(BM_push_kernel)
    ->ArgsProduct({{100'000, 1'000'000, 2'400'000}, {0, 1}, {1, 2}, {0, 1}})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK(BM_push_kernel_local)
    ->ArgsProduct({{1'000'000, 2'400'000}, {0}, {1, 2}})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK(BM_nodewise_plan)
    ->Args({2'400'000, 2})
    ->Unit(benchmark::kSecond)
    ->UseRealTime()
    ->Iterations(1);

int main(int argc, char** argv) {
  if (const char* dir = std::getenv("IBMB_BENCH_EXPORT"); dir && *dir) {
    const char* nn = std::getenv("IBMB_BENCH_NODES");
    const std::int64_t n = nn ? std::atoll(nn) : 100'000;
    const char* no = std::getenv("IBMB_BENCH_OUTPUTS");
    const std::int64_t count = no ? std::atoll(no) : 20000;
    const auto& bg = get_graph(n);
    const auto outs = sample_outputs(n, count);
    std::filesystem::create_directories(dir);
    const std::filesystem::path d(dir);
    ibmb::write_npy<std::int64_t>(d / "indptr.npy", bg.g.indptr,
                                  {static_cast<std::int64_t>(bg.g.indptr.size())});
    ibmb::write_npy<std::int64_t>(d / "indices.npy", bg.g.indices,
                                  {static_cast<std::int64_t>(bg.g.indices.size())});
    ibmb::write_npy<std::int64_t>(d / "outputs.npy", outs,
                                  {static_cast<std::int64_t>(outs.size())});
    std::cout << "wrote " << n << " nodes, " << bg.g.indices.size() << " entries, " << outs.size()
              << " outputs to " << dir << "\n";
    return 0;
  }
  if (const char* dir = std::getenv("IBMB_BENCH_RUN"); dir && *dir) {
    // Same graph and outputs as the export; runs nodewise_ppr once (top-k without forcing the
    // output in, as PPRGo's calc_ppr_topk_parallel) and writes the rows for the comparison.
    auto env = [](const char* k, const char* def) {
      const char* v = std::getenv(k);
      return std::string(v && *v ? v : def);
    };
    const std::int64_t n = std::atoll(env("IBMB_BENCH_NODES", "100000").c_str());
    const std::int64_t count = std::atoll(env("IBMB_BENCH_OUTPUTS", "20000").c_str());
    const auto& bg = get_graph(n);
    const auto outs = sample_outputs(n, count);
    ibmb::ppr_params p;
    p.alpha = std::atof(env("IBMB_ALPHA", "0.25").c_str());
    p.eps = std::atof(env("IBMB_EPS", "2e-4").c_str());
    p.topk = std::atoll(env("IBMB_TOPK", "16").c_str());
    p.threads = std::atoi(env("IBMB_THREADS", "1").c_str());
    p.include_output = false;
    // IBMB_INDEX_BITS=32: the same graph with int32 column ids (int64 offsets), the width
    // PPRGo's scipy CSR uses; half the bytes per neighbour-list read.
    const bool narrow = env("IBMB_INDEX_BITS", "64") == "32";
    auto run = [&](auto view, const auto& o) {
      using I = typename std::decay_t<decltype(o)>::value_type;
      // Best of IBMB_REPEATS runs (default 3), as the peer script times PPRGo: one run of a
      // fraction of a second swings by 2x on a shared machine.
      const int reps = std::max(1, std::atoi(env("IBMB_REPEATS", "3").c_str()));
      double sec = std::numeric_limits<double>::infinity();
      ibmb::ppr_matrix<I, float> m;
      for (int r = 0; r < reps; ++r) {
        const auto t0 = std::chrono::steady_clock::now();
        m = ibmb::nodewise_ppr(view, std::span<const I>(o), p);
        sec = std::min(
            sec, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
      }
      const std::filesystem::path d(dir);
      std::vector<std::int64_t> idx(m.indices.begin(), m.indices.end());
      ibmb::write_npy<std::int64_t>(d / "ours_indptr.npy", m.indptr,
                                    {static_cast<std::int64_t>(m.indptr.size())});
      ibmb::write_npy<std::int64_t>(d / "ours_indices.npy", idx,
                                    {static_cast<std::int64_t>(idx.size())});
      ibmb::write_npy<float>(d / "ours_data.npy", m.values,
                             {static_cast<std::int64_t>(m.values.size())});
      std::cout << "{\"seconds\": " << sec << ", \"outputs\": " << o.size()
                << ", \"repeats\": " << reps << ", \"index_bits\": " << 8 * sizeof(I)
                << ", \"edges_relaxed\": " << m.counters.edges_relaxed
                << ", \"pushes\": " << m.counters.pushes
                << ", \"peak_rss_bytes\": " << static_cast<std::int64_t>(peak_rss_bytes()) << "}\n";
    };
    if (narrow) {
      ibmb::csr_graph<std::int32_t, std::int64_t, float> g32;
      g32.num_rows = g32.num_cols = static_cast<std::int32_t>(bg.g.num_rows);
      g32.indptr = bg.g.indptr;
      g32.indices.assign(bg.g.indices.begin(), bg.g.indices.end());
      std::vector<std::int32_t> o32(outs.begin(), outs.end());
      run(g32.view(), o32);
    } else {
      run(bg.g.view(), outs);
    }
    return 0;
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
