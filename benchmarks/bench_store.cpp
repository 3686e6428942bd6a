// Batch store: induced-subgraph extraction (edges/s), feature gather (GB/s) against a plain
// memcpy of the same bytes in the same run, materialization, and opening a saved store +
// reading its first batch (mmap, no payload parsing).
//
//   bench_store                                  200k-node synthetic graph (default)
//   IBMB_BENCH_NODES=2500000 bench_store         larger graph
//   IBMB_BENCH_PLAN=nodewise bench_store         node-wise IBMB batches instead of khop
//
// Batches (on the graph after make_undirected_with_self_loops), for the training nodes:
// - khop (default): random output batches of 1000 + their 2-hop neighbourhoods capped at
//   30000 nodes (khop_plan);
// - nodewise: `nodewise_plan` with its defaults (alpha 0.25, eps 2e-4, k 16) and
//   IBMB_BENCH_BATCH outputs per batch (default 4096, the CLI's default), i.e. the batches the
//   library itself stores; IBMB_BENCH_TOPK and IBMB_BENCH_EPS override k and eps (e.g. the
//   reference's ogbn-products settings: k 64, eps 5e-4, 4500 or 130 outputs per batch).
#include <benchmark/benchmark.h>

#include <fcntl.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string_view>
#include <vector>

#include "ibmb/batch/baselines.hpp"
#include "ibmb/batch/materialize.hpp"
#include "ibmb/batch/nodewise.hpp"
#include "ibmb/batch/store.hpp"
#include "ibmb/core/crc32.hpp"
#include "ibmb/core/parallel.hpp"
#include "ibmb/graph/build.hpp"
#include "ibmb/graph/generate.hpp"
#include "ibmb/graph/io/npy.hpp"
#include "ibmb/graph/subgraph.hpp"

namespace {

struct setup {
  ibmb::dataset ds;
  ibmb::batch_plan<std::int64_t> plan;
  std::int64_t features = 0;
};

/// One dataset + plan per feature width, built once.
const setup& get(std::int64_t features) {
  static std::unique_ptr<setup> cache[2];
  auto& c = cache[features == 64 ? 0 : 1];
  if (c) return *c;
  c = std::make_unique<setup>();
  ibmb::generator_params p;
  p.nodes = 200'000;
  if (const char* e = std::getenv("IBMB_BENCH_NODES")) p.nodes = std::atoll(e);
  p.features = static_cast<std::int32_t>(features);
  c->ds = ibmb::generate_dataset(p);
  c->ds.graph = ibmb::make_undirected_with_self_loops(c->ds.graph.view());
  const std::span<const std::int64_t> train(c->ds.train_idx);
  const char* plan = std::getenv("IBMB_BENCH_PLAN");
  if (plan && std::string_view(plan) == "nodewise") {
    ibmb::nodewise_params np;
    np.merge.max_outputs = 4096;
    if (const char* e = std::getenv("IBMB_BENCH_BATCH")) np.merge.max_outputs = std::atoll(e);
    if (const char* e = std::getenv("IBMB_BENCH_TOPK")) np.ppr.topk = std::atoll(e);
    if (const char* e = std::getenv("IBMB_BENCH_EPS")) np.ppr.eps = std::atof(e);
    c->plan = ibmb::nodewise_plan(c->ds.graph.view(), train, np);
  } else {
    ibmb::khop_plan_params kp;
    kp.batch_size = 1000;
    kp.hops = 2;
    kp.max_nodes = 30000;
    c->plan = ibmb::khop_plan(c->ds.graph.view(), train, kp);
  }
  c->features = features;
  // For the scipy peer (benchmarks/peers/run_scipy_extract.sh): the same graph and batches.
  if (const char* dir = std::getenv("IBMB_BENCH_EXPORT"); dir && *dir) {
    const std::filesystem::path d(dir);
    std::filesystem::create_directories(d);
    auto put = [&](const char* name, const auto& v) {
      using T = typename std::decay_t<decltype(v)>::value_type;
      ibmb::write_npy<T>(d / name, std::span<const T>(v), {static_cast<std::int64_t>(v.size())});
    };
    put("indptr.npy", c->ds.graph.indptr);
    put("indices.npy", c->ds.graph.indices);
    put("node_ptr.npy", c->plan.node_ptr);
    put("nodes.npy", c->plan.nodes);
  }
  return *c;
}

/// Local CSR extraction alone (ids-only store: ids, CSR, weights, checksums; no features).
void bm_extract(benchmark::State& state) {
  const auto& s = get(128);
  ibmb::materialize_options o;
  o.ids_only = true;
  o.fingerprint = false;
  o.threads = static_cast<int>(state.range(0));
  std::int64_t edges = 0, scanned = 0;
  for (std::int64_t v : s.plan.nodes) scanned += s.ds.graph.view().degree(v);
  for (auto _ : state) {
    auto st = ibmb::materialize(s.ds, s.plan, o);
    edges = st.total_edges();
    benchmark::DoNotOptimize(st.image().data());
  }
  state.counters["local_edges/s"] =
      benchmark::Counter(static_cast<double>(edges), benchmark::Counter::kIsIterationInvariantRate);
  state.counters["scanned_edges/s"] = benchmark::Counter(
      static_cast<double>(scanned), benchmark::Counter::kIsIterationInvariantRate);
  state.counters["batches"] = static_cast<double>(s.plan.num_batches());
  state.counters["local_edges"] = static_cast<double>(edges);
}

/// The extraction kernel alone on scipy's input: for every batch its sorted node ids,
/// `A[idx][:, idx]` with values (subgraph_extractor scan + write into reused buffers).
template <class I>
void run_induced(benchmark::State& state, ibmb::csr_view<I, std::int64_t, float> g,
                 const ibmb::batch_plan<std::int64_t>& plan) {
  ibmb::scoped_threads th(static_cast<int>(state.range(0)));
  ibmb::subgraph_extractor ex(g);
  std::vector<std::int64_t> ip, idx;
  std::vector<float> w;
  std::int64_t edges = 0, scanned = 0;
  for (std::int64_t v : plan.nodes) scanned += g.degree(v);
  for (auto _ : state) {
    edges = 0;
    for (std::size_t b = 0; b < plan.num_batches(); ++b) {
      const auto nodes = plan.batch_nodes(b);
      const auto m = ex.scan(nodes);
      ip.resize(nodes.size() + 1);
      idx.resize(static_cast<std::size_t>(m));
      w.resize(static_cast<std::size_t>(m));
      ex.write(std::span<std::int64_t>(ip), std::span<std::int64_t>(idx), std::span<float>(w));
      edges += m;
      benchmark::DoNotOptimize(idx.data());
      benchmark::DoNotOptimize(w.data());
    }
  }
  state.counters["local_edges/s"] =
      benchmark::Counter(static_cast<double>(edges), benchmark::Counter::kIsIterationInvariantRate);
  state.counters["scanned_edges/s"] = benchmark::Counter(
      static_cast<double>(scanned), benchmark::Counter::kIsIterationInvariantRate);
  state.counters["local_edges"] = static_cast<double>(edges);
}

void bm_induced(benchmark::State& state) {
  const auto& s = get(128);
  run_induced(state, s.ds.graph.view(), s.plan);
}

/// A copy of the graph with int32 column ids, made once.
const ibmb::csr_graph<std::int32_t, std::int64_t, float>& graph32(const setup& s) {
  static ibmb::csr_graph<std::int32_t, std::int64_t, float> g32;
  if (g32.indptr.empty()) {
    const auto& g = s.ds.graph;
    g32.num_rows = g32.num_cols = static_cast<std::int32_t>(g.num_rows);
    g32.indptr = g.indptr;
    g32.indices.assign(g.indices.begin(), g.indices.end());
    g32.weights = g.weights;
  }
  return g32;
}

/// The same on a copy of the graph with int32 column ids: what scipy works on (its
/// csr_matrix casts the exported int64 indices to int32 when they fit).
void bm_induced32(benchmark::State& state) {
  const auto& s = get(128);
  run_induced(state, graph32(s).view(), s.plan);
}

/// The floor under any per-batch extraction of these batches: every batch row's neighbour
/// list read (its entries XOR-ed, nothing tested or written), with the kernel's prefetching
/// (its constants, the same loop) and its dynamic schedule, T = range(0) threads. An
/// extraction that goes batch by batch reads every entry of every row of each batch, so its
/// time cannot go below this one (one that reads each row once for all batches can:
/// docs/benchmarks.md, session 9); `run_scipy_extract.sh` prints it against scipy's.
template <class I>
void run_rows_read(benchmark::State& state, ibmb::csr_view<I, std::int64_t, float> g,
                   const ibmb::batch_plan<std::int64_t>& plan) {
  const int T = static_cast<int>(state.range(0));
  ibmb::scoped_threads th(T);
  using kernel = ibmb::subgraph_extractor<I, std::int64_t, float>;  // its prefetching
  constexpr std::int64_t ahead = kernel::prefetch_rows;
  constexpr std::int64_t line = 64 / sizeof(I);
  constexpr auto max_prefetch = static_cast<std::int64_t>(kernel::prefetch_entries / sizeof(I));
  std::int64_t scanned = 0;
  for (std::int64_t v : plan.nodes) scanned += g.degree(v);
  const std::int64_t* ip = g.indptr.data();
  const I* ix = g.indices.data();
  for (auto _ : state) {
    std::uint64_t acc = 0;
    for (std::size_t b = 0; b < plan.num_batches(); ++b) {
      const auto nodes = plan.batch_nodes(b);
      const auto n = static_cast<std::int64_t>(nodes.size());
      const std::int64_t* id = nodes.data();
#pragma omp parallel for num_threads(T) schedule(dynamic, 64) reduction(^ : acc)
      for (std::int64_t i = 0; i < n; ++i) {
        if (i + 2 * ahead < n) __builtin_prefetch(ip + id[i + 2 * ahead]);
        if (i + ahead < n) {
          const std::int64_t f = id[i + ahead];
          const std::int64_t pe = std::min(ip[f + 1], ip[f] + max_prefetch);
          for (std::int64_t q = ip[f]; q < pe; q += line) __builtin_prefetch(ix + q);
        }
        const std::int64_t u = id[i];
        for (std::int64_t q = ip[u]; q < ip[u + 1]; ++q) acc ^= static_cast<std::uint64_t>(ix[q]);
      }
    }
    benchmark::DoNotOptimize(acc);
  }
  state.counters["scanned_edges/s"] = benchmark::Counter(
      static_cast<double>(scanned), benchmark::Counter::kIsIterationInvariantRate);
  state.counters["rows"] = static_cast<double>(plan.nodes.size());
}

void bm_rows_read(benchmark::State& state) {
  const auto& s = get(128);
  run_rows_read(state, s.ds.graph.view(), s.plan);
}

/// The same floor for the int32-id copy of the graph (bm_induced32's input).
void bm_rows_read32(benchmark::State& state) {
  const auto& s = get(128);
  run_rows_read(state, graph32(s).view(), s.plan);
}

/// memcpy of `bytes` per batch from contiguous (wrapping) runs of the feature array into
/// `out`; with T threads each batch's bytes are split into T contiguous pieces.
void memcpy_batches(const setup& s, int T, std::vector<float>& out, std::size_t& at) {
  const auto F = static_cast<std::size_t>(s.features);
  const std::size_t total = s.ds.features.size();
  for (std::size_t b = 0; b < s.plan.num_batches(); ++b) {
    const std::size_t n = s.plan.batch_nodes(b).size() * F;
    if (at + n > total) at = 0;  // one contiguous source run per batch
#pragma omp parallel for num_threads(T) schedule(static, 1)
    for (int t = 0; t < T; ++t) {
      const std::size_t lo = n * static_cast<std::size_t>(t) / static_cast<std::size_t>(T),
                        hi = n * static_cast<std::size_t>(t + 1) / static_cast<std::size_t>(T);
      std::memcpy(out.data() + lo, s.ds.features.data() + at + lo, (hi - lo) * 4);
    }
    at += n;
    benchmark::DoNotOptimize(out.data());
  }
  benchmark::ClobberMemory();
}

/// Feature gather of every batch (read_batch_features into one buffer), T = range(1) threads.
/// Each iteration is followed (untimed) by bm_memcpy's copy of the same bytes, so the
/// `x_memcpy` counter (memcpy time / gather time) compares the two in the same seconds: this
/// machine's memory speed drifts between benchmarks run minutes apart. range(2) = 0: the copy
/// writes into the gather's buffer, so each finds its destination in the cache (the setup of
/// every figure before session 8); 1: into a buffer of its own, which the other pass evicts in
/// between, so both write to cold destinations (memcpy slows down more; docs/benchmarks.md).
void bm_gather(benchmark::State& state) {
  const auto& s = get(state.range(0));
  const int T = static_cast<int>(state.range(1));
  const bool separate = state.range(2) != 0;
  ibmb::scoped_threads th(T);
  ibmb::materialize_options o;
  o.ids_only = true;
  o.fingerprint = false;
  const auto st = ibmb::materialize(s.ds, s.plan, o);
  std::int64_t max_nodes = 0;
  for (std::size_t b = 0; b < st.num_batches(); ++b)
    max_nodes = std::max(max_nodes, st.batch(b).num_nodes());
  std::vector<float> out(static_cast<std::size_t>(max_nodes * s.features));
  std::vector<float> copy_out(separate ? out.size() : 0);
  auto& copy_dst = separate ? copy_out : out;
  const auto bytes = st.total_nodes() * s.features * 4;
  double gather_s = 0, memcpy_s = 0;
  std::size_t at = 0;
  for (auto _ : state) {
    const auto t0 = std::chrono::steady_clock::now();
    for (std::size_t b = 0; b < st.num_batches(); ++b) {
      const auto v = st.batch(b);
      ibmb::read_batch_features(
          s.ds, v,
          std::span<float>(out).first(static_cast<std::size_t>(v.num_nodes() * s.features)));
      benchmark::DoNotOptimize(out.data());
    }
    benchmark::ClobberMemory();
    const auto t1 = std::chrono::steady_clock::now();
    state.PauseTiming();
    memcpy_batches(s, T, copy_dst, at);
    const auto t2 = std::chrono::steady_clock::now();
    state.ResumeTiming();
    gather_s += std::chrono::duration<double>(t1 - t0).count();
    memcpy_s += std::chrono::duration<double>(t2 - t1).count();
  }
  state.SetBytesProcessed(state.iterations() * bytes);
  state.counters["row_bytes"] = static_cast<double>(s.features * 4);
  state.counters["memcpy_GB/s"] = static_cast<double>(state.iterations() * bytes) / memcpy_s / 1e9;
  state.counters["x_memcpy"] = memcpy_s / gather_s;
}

/// memcpy of the same bytes per batch, from contiguous (wrapping) runs of the feature array;
/// with T = range(1) threads each batch's bytes are split into T contiguous pieces.
void bm_memcpy(benchmark::State& state) {
  const auto& s = get(state.range(0));
  const int T = static_cast<int>(state.range(1));
  const auto F = static_cast<std::size_t>(s.features);
  std::int64_t max_nodes = 0, all = 0;
  for (std::size_t b = 0; b < s.plan.num_batches(); ++b) {
    max_nodes =
        std::max<std::int64_t>(max_nodes, static_cast<std::int64_t>(s.plan.batch_nodes(b).size()));
    all += static_cast<std::int64_t>(s.plan.batch_nodes(b).size());
  }
  std::vector<float> out(static_cast<std::size_t>(max_nodes) * F);
  std::size_t at = 0;
  for (auto _ : state) memcpy_batches(s, T, out, at);
  state.SetBytesProcessed(state.iterations() * all * static_cast<std::int64_t>(F) * 4);
  state.counters["row_bytes"] = static_cast<double>(F * 4);
}

/// Full materialization (float32 features), all cores given.
void bm_materialize(benchmark::State& state) {
  const auto& s = get(128);
  ibmb::materialize_options o;
  o.threads = static_cast<int>(state.range(0));
  std::size_t bytes = 0;
  for (auto _ : state) {
    auto st = ibmb::materialize(s.ds, s.plan, o);
    bytes = st.image().size();
    benchmark::DoNotOptimize(st.image().data());
  }
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(bytes));
  state.counters["store_MB"] = static_cast<double>(bytes) / 1e6;
}

/// The store's checksum (crc32_parallel, T = range(1) threads) over a 256 MiB buffer, through
/// zlib's crc32 (range(0) = 0) or the library's backend (1: libdeflate when the build found
/// it, else zlib again), in one binary: the side-by-side figure for core/crc32.hpp.
void bm_crc32(benchmark::State& state) {
  const bool ours = state.range(0) != 0;
  const int T = static_cast<int>(state.range(1));
  ibmb::scoped_threads th(T);
  static const std::vector<std::byte> buf = [] {
    std::vector<std::byte> b(std::size_t{256} << 20);
    std::uint64_t x = 88172645463325252ull;  // xorshift64: incompressible, cheap
    for (auto& c : b) {
      x ^= x << 13;
      x ^= x >> 7;
      x ^= x << 17;
      c = static_cast<std::byte>(x);
    }
    return b;
  }();
  constexpr std::size_t chunk = ibmb::detail::crc_chunk;
  const std::size_t nchunks = (buf.size() + chunk - 1) / chunk;
  std::vector<std::uint32_t> part(nchunks);
  std::uint32_t crc = 0;
  for (auto _ : state) {
    if (ours) {
      crc = ibmb::detail::crc32_parallel(buf);
    } else {  // crc32_parallel's chunking, with zlib's crc32 in each chunk
#pragma omp parallel for num_threads(T) schedule(dynamic, 1)
      for (std::int64_t c = 0; c < static_cast<std::int64_t>(nchunks); ++c) {
        const std::size_t off = static_cast<std::size_t>(c) * chunk;
        part[static_cast<std::size_t>(c)] = static_cast<std::uint32_t>(
            ::crc32_z(0, reinterpret_cast<const Bytef*>(buf.data() + off),
                      std::min(chunk, buf.size() - off)));
      }
      crc = part[0];
      for (std::size_t c = 1; c < nchunks; ++c)
        crc = ibmb::detail::crc32_combine(crc, part[c], std::min(chunk, buf.size() - c * chunk));
    }
    benchmark::DoNotOptimize(crc);
  }
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(buf.size()));
  state.SetLabel(ours ? ibmb::detail::crc32_backend() : "zlib");
}

/// load_store (mmap + header/table/batch-table validation) + reading batch 0's features.
/// The first open happens after the file's pages were dropped from the page cache
/// (fsync + POSIX_FADV_DONTNEED, no root needed): `cold_ms`; the timed iterations are warm.
/// IBMB_BENCH_NODES=700000 gives a store of about 1 GB (70 batches x 30000 nodes x 512 B).
void bm_open_first_batch(benchmark::State& state) {
  const auto& s = get(128);
  const auto path = std::filesystem::temp_directory_path() / "ibmb_bench_store.ibmb";
  {
    ibmb::materialize_options o;
    ibmb::save_store(ibmb::materialize(s.ds, s.plan, o), path);
  }
  bool dropped = false;
  if (const int fd = ::open(path.c_str(), O_RDONLY); fd >= 0) {
    dropped = ::fsync(fd) == 0 && ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED) == 0;
    ::close(fd);
  }
  double sum = 0;
  const auto t0 = std::chrono::steady_clock::now();
  {
    const auto st = ibmb::load_store(path);
    for (float x : st.batch(0).features()) sum += x;
  }
  const double cold = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  for (auto _ : state) {
    const auto st = ibmb::load_store(path);
    const auto v = st.batch(0);
    for (float x : v.features()) sum += x;
    benchmark::DoNotOptimize(sum);
  }
  state.counters["file_MB"] = static_cast<double>(std::filesystem::file_size(path)) / 1e6;
  state.counters["cold_ms"] = cold * 1e3;
  state.counters["cache_dropped"] = dropped;
  std::filesystem::remove(path);
}

}  // namespace

BENCHMARK(bm_extract)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(bm_induced)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(bm_induced32)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(bm_rows_read)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(bm_rows_read32)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();
// {feature width, threads[, separate copy buffer]}: 64 or 128 float32 features (256 or
// 512-byte rows), 1 or 2 threads.
BENCHMARK(bm_gather)
    ->ArgsProduct({{64, 128}, {1, 2}, {0, 1}})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK(bm_memcpy)
    ->ArgsProduct({{64, 128}, {1, 2}})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK(bm_materialize)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(bm_open_first_batch)->Unit(benchmark::kMillisecond);
BENCHMARK(bm_crc32)->ArgsProduct({{0, 1}, {1, 2}})->Unit(benchmark::kMillisecond)->UseRealTime();

BENCHMARK_MAIN();
