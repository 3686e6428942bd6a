// Batch-wise IBMB kernels on the embedded generator: topic-sensitive PPR by power iteration
// (ours, hand-written SpMM), the same recurrence with Eigen's RowMajor sparse x dense product,
// and the multi-source push; the METIS wrapper against a direct METIS call; batchwise_plan.
//
//   bench_topic [google benchmark flags]            (sizes: 100k and 1M; 2.4M by filter)
//   IBMB_BENCH_EXPORT=DIR IBMB_BENCH_NODES=N bench_topic
//       writes DIR/{indptr,indices,set_ptr,set_nodes,ref_ptr,ref_ids}.npy (the preprocessed graph,
//       the 50 teleport sets and the converged reference top-k lists) for
//       benchmarks/peers/torch_topic_ppr.py, and exits.
//
// Teleport sets: the generator's train nodes (10%) grouped by a METIS partition of the whole
// graph into 50 parts (the reference's 50 columns at a time); k = ceil(N / 50) as batchwise_plan
// takes for 50 parts. Recall: |top-k ∩ top-k of the converged scores| / |top-k of the converged
// scores|, averaged over sets; the converged scores come from the power iteration in double to
// a per-column L1 change below 1e-9 (computed once per graph). Counters: s/iter, nnz*cols/s
// (entries of A times columns per second, per iteration), recall, load (1-min load average at
// the end: the machine is shared).
#include <metis.h>
#include <sys/resource.h>

#include <Eigen/Sparse>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>

#include "ibmb/batch/batchwise.hpp"
#include "ibmb/core/parallel.hpp"
#include "ibmb/graph/build.hpp"
#include "ibmb/graph/generate.hpp"
#include "ibmb/graph/io/npy.hpp"
#include "ibmb/partition/metis.hpp"
#include "ibmb/ppr/topic.hpp"
#include "ibmb/ppr/topic_push.hpp"

namespace {

using graph_t = ibmb::csr_graph<std::int64_t, std::int64_t, float>;
constexpr int kSets = 50;
constexpr double kAlpha = 0.25;

struct bench_graph {
  graph_t g;  // make_undirected_with_self_loops of the generator's graph
  std::vector<std::int64_t> train;
  std::vector<std::int64_t> set_ptr{0}, set_nodes;  // train nodes by METIS part (50 parts)
  std::int64_t k = 0;
  ibmb::topk_lists<std::int64_t, double> ref;  // converged (tol 1e-9), row transition
  int ref_iterations = 0;
  double ref_seconds = 0;
  [[nodiscard]] ibmb::teleport_sets<std::int64_t> sets() const { return {set_ptr, set_nodes}; }
};

double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

double load1() {
  double l[1] = {0};
  return getloadavg(l, 1) == 1 ? l[0] : -1;
}

graph_t make_graph(std::int64_t n, std::vector<std::int64_t>* train) {
  ibmb::generator_params p;
  p.nodes = n;
  p.features = 0;
  p.seed = 1;
  auto ds = ibmb::generate_dataset<std::int64_t, std::int64_t>(p);
  if (train) *train = ds.train_idx;
  return ibmb::make_undirected_with_self_loops(ds.graph.view());
}

const bench_graph& get_graph(std::int64_t n, bool with_ref = true) {
  static std::map<std::int64_t, std::unique_ptr<bench_graph>> cache;
  auto& slot = cache[n];
  if (!slot) {
    slot = std::make_unique<bench_graph>();
    slot->g = make_graph(n, &slot->train);
    ibmb::partition_params mp;
    mp.parts = kSets;
    const auto part = ibmb::metis_partition(slot->g.view(), mp);
    std::vector<std::vector<std::int64_t>> by(kSets);
    for (auto v : slot->train)
      by[static_cast<std::size_t>(part.part[static_cast<std::size_t>(v)])].push_back(v);
    for (const auto& s : by) {
      if (s.empty()) continue;
      slot->set_nodes.insert(slot->set_nodes.end(), s.begin(), s.end());
      slot->set_ptr.push_back(static_cast<std::int64_t>(slot->set_nodes.size()));
    }
    slot->k = (n + kSets - 1) / kSets;
  }
  if (with_ref && slot->ref.ids.empty()) {
    ibmb::topic_ppr_params p;
    p.alpha = kAlpha;
    p.max_iterations = 1000;
    p.tolerance = 1e-9;
    p.block_columns = kSets;
    ibmb::topic_ppr_stats st;
    const double t0 = now();
    slot->ref = ibmb::topic_ppr_topk<double>(slot->g.view(), slot->sets(), slot->k, p, &st);
    slot->ref_seconds = now() - t0;
    slot->ref_iterations = static_cast<int>(st.iterations);
  }
  return *slot;
}

template <class L>
double recall(const bench_graph& bg, const L& got) {
  double sum = 0;
  for (std::int64_t s = 0; s < bg.ref.size(); ++s) {
    auto a = got.list(s);
    auto b = bg.ref.list(s);
    std::vector<std::int64_t> x(a.begin(), a.end()), y(b.begin(), b.end());
    std::sort(x.begin(), x.end());
    std::sort(y.begin(), y.end());
    std::vector<std::int64_t> c;
    std::set_intersection(x.begin(), x.end(), y.begin(), y.end(), std::back_inserter(c));
    sum += y.empty() ? 1.0 : static_cast<double>(c.size()) / static_cast<double>(y.size());
  }
  return sum / static_cast<double>(bg.ref.size());
}

void set_common(benchmark::State& state, const bench_graph& bg, double seconds, int iters) {
  const double nnz = static_cast<double>(bg.g.indices.size());
  state.counters["nodes"] = static_cast<double>(bg.g.num_nodes());
  state.counters["nnz"] = nnz;
  state.counters["sets"] = static_cast<double>(bg.sets().size());
  state.counters["k"] = static_cast<double>(bg.k);
  if (iters > 0) {
    state.counters["s/iter"] = seconds / iters;
    state.counters["nnz*cols/s"] = nnz * static_cast<double>(bg.sets().size()) * iters / seconds;
  }
  state.counters["load"] = load1();
}

// Ours: topic_ppr_topk, 50 iterations, one block of 50 columns (the reference's setting).
void BM_topic_power(benchmark::State& state) {
  const auto n = state.range(0);
  ibmb::scoped_threads th(static_cast<int>(state.range(1)));
  const auto& bg = get_graph(n);
  ibmb::topic_ppr_params p;
  p.alpha = kAlpha;
  p.max_iterations = 50;
  p.block_columns = kSets;
  ibmb::topk_lists<std::int64_t, float> got;
  double sec = 0;
  for (auto _ : state) {
    const double t0 = now();
    got = ibmb::topic_ppr_topk<float>(bg.g.view(), bg.sets(), bg.k, p);
    sec = now() - t0;
    state.SetIterationTime(sec);
  }
  set_common(state, bg, sec, 50);
  state.counters["recall"] = recall(bg, got);
  state.counters["ref_iters"] = bg.ref_iterations;
  state.counters["ref_s"] = bg.ref_seconds;
}

// The same recurrence with Eigen: X <- (1 - alpha) (D^-1 A) X + alpha T, RowMajor sparse
// (int64 indices) times a RowMajor N x 50 float block. Time of the 50 iterations only.
void BM_topic_eigen(benchmark::State& state) {
  const auto n = state.range(0);
  ibmb::scoped_threads th(static_cast<int>(state.range(1)));
  Eigen::setNbThreads(static_cast<int>(state.range(1)));
  const auto& bg = get_graph(n, false);
  using sp = Eigen::SparseMatrix<float, Eigen::RowMajor, std::int64_t>;
  std::vector<float> vals(bg.g.indices.size());
  for (std::int64_t v = 0; v < n; ++v) {
    const auto b = bg.g.indptr[static_cast<std::size_t>(v)],
               e = bg.g.indptr[static_cast<std::size_t>(v) + 1];
    for (auto i = b; i < e; ++i)
      vals[static_cast<std::size_t>(i)] = 1.0f / static_cast<float>(e - b);
  }
  Eigen::Map<const sp> P(n, n, static_cast<std::int64_t>(vals.size()), bg.g.indptr.data(),
                         bg.g.indices.data(), vals.data());
  const auto sets = bg.sets();
  const auto S = sets.size();
  using dense = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  dense X(n, S), Y(n, S);
  double sec = 0;
  for (auto _ : state) {
    X.setZero();
    for (std::int64_t s = 0; s < S; ++s)
      for (auto v : sets.set(s)) X(v, s) += 1.0f / static_cast<float>(sets.set(s).size());
    const double t0 = now();
    for (int it = 0; it < 50; ++it) {
      Y.noalias() = P * X;
      Y *= static_cast<float>(1 - kAlpha);
      for (std::int64_t s = 0; s < S; ++s)
        for (auto v : sets.set(s))
          Y(v, s) += static_cast<float>(kAlpha) / static_cast<float>(sets.set(s).size());
      X.swap(Y);
    }
    sec = now() - t0;
    state.SetIterationTime(sec);
    benchmark::DoNotOptimize(X.data());
  }
  set_common(state, bg, sec, 50);
}

// Multi-source push, one per set, eps = 10^-range(2).
void BM_topic_push(benchmark::State& state) {
  const auto n = state.range(0);
  const auto& bg = get_graph(n);
  ibmb::topic_push_params p;
  p.alpha = kAlpha;
  p.eps = std::pow(10.0, -static_cast<double>(state.range(2)));
  p.threads = static_cast<int>(state.range(1));
  ibmb::topk_lists<std::int64_t, float> got;
  ibmb::topic_push_stats st;
  double sec = 0;
  for (auto _ : state) {
    const double t0 = now();
    got = ibmb::topic_push_topk<float>(bg.g.view(), bg.sets(), bg.k, p, &st);
    sec = now() - t0;
    state.SetIterationTime(sec);
  }
  set_common(state, bg, sec, 0);
  state.counters["recall"] = recall(bg, got);
  state.counters["edges/s"] = static_cast<double>(st.counters.edges_relaxed) / sec;
  state.counters["edges/set"] =
      static_cast<double>(st.counters.edges_relaxed) / static_cast<double>(bg.sets().size());
}

// The METIS wrapper (validation, self-loop removal, narrowing, symmetry check) against
// METIS_PartGraphKway on arrays built beforehand, same options, 16 parts.
void BM_metis_overhead(benchmark::State& state) {
  const auto n = state.range(0);
  ibmb::scoped_threads th(static_cast<int>(state.range(1)));
  const auto& bg = get_graph(n, false);
  std::vector<idx_t> xadj{0}, adj;
  for (std::int64_t v = 0; v < n; ++v) {
    for (auto u : bg.g.view().neighbors(v))
      if (u != v) adj.push_back(static_cast<idx_t>(u));
    xadj.push_back(static_cast<idx_t>(adj.size()));
  }
  ibmb::partition_params mp;
  mp.parts = 16;
  // METIS's own run-to-run spread is several % on this machine: each figure is the minimum
  // over `reps` alternating runs (IBMB_METIS_REPS, default 3).
  const char* reps_env = std::getenv("IBMB_METIS_REPS");
  const int reps = reps_env ? std::max(1, std::atoi(reps_env)) : 3;
  double wrap = 1e300, direct = 1e300, conv = 1e300;
  std::int64_t cut_w = 0, cut_d = 0;
  for (auto _ : state) {
    for (int rep = 0; rep < reps; ++rep) {
      double t0 = now();
      const auto r = ibmb::metis_partition(bg.g.view(), mp);
      wrap = std::min(wrap, now() - t0);
      cut_w = r.edge_cut;
      idx_t options[METIS_NOPTIONS];
      METIS_SetDefaultOptions(options);
      options[METIS_OPTION_SEED] = static_cast<idx_t>(mp.seed);
      options[METIS_OPTION_NUMBERING] = 0;
      options[METIS_OPTION_UFACTOR] =
          static_cast<idx_t>(std::lround((mp.imbalance - 1.0) * 1000.0));
      idx_t nn = static_cast<idx_t>(n), ncon = 1, parts = 16, obj = 0;
      std::vector<idx_t> part(static_cast<std::size_t>(n));
      t0 = now();
      METIS_PartGraphKway(&nn, &ncon, xadj.data(), adj.data(), nullptr, nullptr, nullptr, &parts,
                          nullptr, nullptr, options, &obj, part.data());
      direct = std::min(direct, now() - t0);
      cut_d = obj;
      // The conversion alone (validation, self-loop removal, narrowing, symmetry check), timed
      // on its own: the difference of two METIS runs above carries METIS's own run-to-run noise.
      t0 = now();
      const auto g = bg.g.view();
      g.validate();
      const auto m = ibmb::detail::make_metis_graph(
          n,
          [&](std::int64_t i, auto&& emit) {
            for (auto c : g.neighbors(i)) emit(static_cast<std::int64_t>(c));
          },
          mp, "bench");
      conv = std::min(conv, now() - t0);
      benchmark::DoNotOptimize(m.adjncy.data());
    }
    state.SetIterationTime(wrap);
  }
  state.counters["wrapper_s"] = wrap;
  state.counters["direct_s"] = direct;
  state.counters["overhead_%"] = 100.0 * (wrap - direct) / direct;
  state.counters["conversion_s"] = conv;
  state.counters["conversion_%"] = 100.0 * conv / direct;
  state.counters["same_cut"] = cut_w == cut_d;
  state.counters["load"] = load1();
  state.counters["reps"] = reps;
}

// batchwise_plan for the train nodes, 16 parts (solver: range(2) = 0 power iteration,
// otherwise push with eps 10^-range(2)). Run once: heavy at 2.4M.
void BM_batchwise_plan(benchmark::State& state) {
  const auto n = state.range(0);
  ibmb::scoped_threads th(static_cast<int>(state.range(1)));
  std::vector<std::int64_t> train;
  const double g0 = now();
  const auto g = make_graph(n, &train);
  const double gen = now() - g0;
  ibmb::batchwise_params prm;
  prm.parts = 16;
  if (state.range(2) > 0) {
    prm.solver = ibmb::topic_solver::push;
    prm.push_eps = std::pow(10.0, -static_cast<double>(state.range(2)));
  } else {
    prm.solver = ibmb::topic_solver::power_iteration;
  }
  ibmb::batchwise_stats st;
  rusage r0{}, r1{};
  for (auto _ : state) {
    getrusage(RUSAGE_SELF, &r0);
    const double t0 = now();
    const auto plan = ibmb::batchwise_plan(g.view(), train, prm, &st);
    const double sec = now() - t0;
    getrusage(RUSAGE_SELF, &r1);
    state.SetIterationTime(sec);
    state.counters["batches"] = static_cast<double>(plan.num_batches());
    state.counters["plan_nodes"] = static_cast<double>(plan.nodes.size());
  }
  auto cpu = [](const rusage& r) {
    return static_cast<double>(r.ru_utime.tv_sec + r.ru_stime.tv_sec) +
           1e-6 * static_cast<double>(r.ru_utime.tv_usec + r.ru_stime.tv_usec);
  };
  state.counters["cpu_s"] = cpu(r1) - cpu(r0);
  state.counters["partition_s"] = st.partition_seconds;
  state.counters["ppr_s"] = st.ppr_seconds;
  state.counters["generate_s"] = gen;
  state.counters["outputs"] = static_cast<double>(train.size());
  state.counters["load"] = load1();
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  state.counters["peak_rss_GB"] = static_cast<double>(u.ru_maxrss) / (1024.0 * 1024.0);
}

// The batchwise_plan setting: train nodes grouped by a METIS partition into range(1) parts,
// k = ceil(N / parts); converged reference (double, tol 1e-9), then the power iteration
// (50 iterations) and the push at eps = 2e-3 / k (batchwise_plan's automatic eps) and 1e-7.
// One run reports the time and recall of each.
void BM_topic_parts(benchmark::State& state) {
  const auto n = state.range(0);
  const auto parts = static_cast<std::int32_t>(state.range(1));
  std::vector<std::int64_t> train;
  const auto g = make_graph(n, &train);
  ibmb::partition_params mp;
  mp.parts = parts;
  const auto part = ibmb::metis_partition(g.view(), mp);
  bench_graph bg;  // only sets, k and ref are used
  std::vector<std::vector<std::int64_t>> by(static_cast<std::size_t>(parts));
  std::sort(train.begin(), train.end());
  for (auto v : train)
    by[static_cast<std::size_t>(part.part[static_cast<std::size_t>(v)])].push_back(v);
  for (const auto& s : by) {
    if (s.empty()) continue;
    bg.set_nodes.insert(bg.set_nodes.end(), s.begin(), s.end());
    bg.set_ptr.push_back(static_cast<std::int64_t>(bg.set_nodes.size()));
  }
  bg.k = (n + parts - 1) / parts;
  ibmb::topic_ppr_params p;
  p.alpha = kAlpha;
  p.block_columns = parts;
  for (auto _ : state) {
    p.max_iterations = 1000;
    p.tolerance = 1e-9;
    double t0 = now();
    bg.ref = ibmb::topic_ppr_topk<double>(g.view(), bg.sets(), bg.k, p);
    state.counters["ref_s"] = now() - t0;
    p.max_iterations = 50;
    p.tolerance = 0;
    t0 = now();
    const auto pw = ibmb::topic_ppr_topk<float>(g.view(), bg.sets(), bg.k, p);
    const double tp = now() - t0;
    state.counters["power_s"] = tp;
    state.counters["power_recall"] = recall(bg, pw);
    ibmb::topic_push_params q;
    q.alpha = kAlpha;
    for (double eps : {2e-3 / static_cast<double>(bg.k), 1e-7}) {
      q.eps = eps;
      t0 = now();
      const auto pu = ibmb::topic_push_topk<float>(g.view(), bg.sets(), bg.k, q);
      const double t = now() - t0;
      const std::string tag = eps == 1e-7 ? "push1e-7" : "push_auto";
      state.counters[tag + "_s"] = t;
      state.counters[tag + "_recall"] = recall(bg, pu);
    }
    state.SetIterationTime(tp);
  }
  state.counters["k"] = static_cast<double>(bg.k);
  state.counters["load"] = load1();
}

void sizes_threads(benchmark::internal::Benchmark* b) {
  for (std::int64_t n : {100'000, 1'000'000, 2'400'000}) b->Args({n, 2});
}

void push_args(benchmark::internal::Benchmark* b) {
  for (std::int64_t n : {100'000, 1'000'000, 2'400'000})
    for (std::int64_t e : {5, 6, 7}) b->Args({n, 2, e});
}

BENCHMARK(BM_topic_power)
    ->Apply(sizes_threads)
    ->Args({100'000, 1})
    ->UseManualTime()
    ->Iterations(1)
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_topic_eigen)
    ->Apply(sizes_threads)
    ->Args({100'000, 1})
    ->UseManualTime()
    ->Iterations(1)
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_topic_push)
    ->Apply(push_args)
    ->UseManualTime()
    ->Iterations(1)
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_metis_overhead)
    ->Apply(sizes_threads)
    ->UseManualTime()
    ->Iterations(1)
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_topic_parts)
    ->Args({1'000'000, 16})
    ->UseManualTime()
    ->Iterations(1)
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_batchwise_plan)
    ->Args({2'400'000, 2, 0})
    ->Args({2'400'000, 2, 7})
    ->UseManualTime()
    ->Iterations(1)
    ->Unit(benchmark::kMillisecond);

int export_mode(const char* dir) {
  const char* nn = std::getenv("IBMB_BENCH_NODES");
  const std::int64_t n = nn ? std::atoll(nn) : 100'000;
  const auto& bg = get_graph(n);
  const std::filesystem::path d(dir);
  std::filesystem::create_directories(d);
  auto put = [&](const char* name, const auto& v) {
    ibmb::write_npy<std::int64_t>(d / name, v, {static_cast<std::int64_t>(v.size())});
  };
  put("indptr.npy", bg.g.indptr);
  put("indices.npy", bg.g.indices);
  put("set_ptr.npy", bg.set_ptr);
  put("set_nodes.npy", bg.set_nodes);
  put("ref_ptr.npy", bg.ref.ptr);
  put("ref_ids.npy", bg.ref.ids);
  std::cout << "wrote " << n << " nodes, " << bg.g.indices.size() << " entries, "
            << bg.sets().size() << " sets, reference top-" << bg.k << " (" << bg.ref_iterations
            << " iterations, " << bg.ref_seconds << " s) to " << dir << "\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (const char* dir = std::getenv("IBMB_BENCH_EXPORT")) return export_mode(dir);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
