// Synthetic generator: generation time, and the METIS edge-cut fraction that shows the
// graph's locality (docs/generator.md records the figures and the commands).
//
//   bench_generate --benchmark_filter=generate        generation at 100k / 1M / 2.5M nodes
//   bench_generate --benchmark_filter=edge_cut        METIS cut at 64 / 1024 parts, 100k nodes,
//                                                     with and without communities
//   IBMB_BENCH_FULL=1 bench_generate --benchmark_filter=edge_cut/nodes:2500000
//                                                     the same on the default 2.5M-node graph
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <span>

#include "ibmb/graph/generate.hpp"
#include "ibmb/partition/metis.hpp"

namespace {

void bm_generate(benchmark::State& state) {
  ibmb::generator_params p;
  p.nodes = state.range(0);
  std::int64_t edges = 0;
  ibmb::dataset ds;
  for (auto _ : state) {
    ds = ibmb::generate_dataset(p);
    edges = ds.num_edges();
    benchmark::DoNotOptimize(ds.graph.indices.data());
  }
  // Realised structure (outside the timing): same-class and same-community edge shares.
  const auto comm = ibmb::generator_communities(p);
  std::int64_t same_class = 0, same_comm = 0, max_deg = 0;
  for (std::int64_t u = 0; u < ds.num_nodes(); ++u) {
    max_deg = std::max<std::int64_t>(max_deg, ds.graph.view().degree(u));
    for (auto v : ds.graph.view().neighbors(u)) {
      same_class +=
          ds.labels[static_cast<std::size_t>(u)] == ds.labels[static_cast<std::size_t>(v)];
      same_comm += comm[static_cast<std::size_t>(u)] == comm[static_cast<std::size_t>(v)];
    }
  }
  const double m = static_cast<double>(std::max<std::int64_t>(edges, 1));
  state.counters["homophily"] = static_cast<double>(same_class) / m;
  state.counters["community_edges"] = static_cast<double>(same_comm) / m;
  state.counters["max_degree"] = static_cast<double>(max_deg);
  state.counters["nodes"] = static_cast<double>(p.nodes);
  state.counters["directed_edges"] = static_cast<double>(edges);
  state.counters["edges/s"] =
      benchmark::Counter(static_cast<double>(edges) * static_cast<double>(state.iterations()),
                         benchmark::Counter::kIsRate);
}

// Args: nodes, parts, community_fraction in percent.
void bm_edge_cut(benchmark::State& state) {
  ibmb::generator_params p;
  p.nodes = state.range(0);
  p.community_fraction = static_cast<double>(state.range(2)) / 100.0;
  p.features = 0;  // structure only
  const auto ds = ibmb::generate_dataset(p);
  ibmb::partition_params pp;
  pp.parts = static_cast<std::int32_t>(state.range(1));
  double frac = 0;
  for (auto _ : state) {
    const auto r = ibmb::metis_partition(ds.graph.view(), pp);
    frac = ibmb::edge_cut_fraction(ds.graph.view(), std::span<const std::int32_t>(r.part));
  }
  state.counters["nodes"] = static_cast<double>(p.nodes);
  state.counters["directed_edges"] = static_cast<double>(ds.num_edges());
  state.counters["parts"] = static_cast<double>(pp.parts);
  state.counters["community_fraction"] = p.community_fraction;
  state.counters["edge_cut_fraction"] = frac;
}

}  // namespace

BENCHMARK(bm_generate)
    ->Name("generate")
    ->Arg(100'000)
    ->Arg(1'000'000)
    ->Arg(2'500'000)
    ->Iterations(1)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

int main(int argc, char** argv) {
  auto* cut = benchmark::RegisterBenchmark("edge_cut", bm_edge_cut);
  cut->ArgNames({"nodes", "parts", "community_pct"})
      ->Iterations(1)
      ->Unit(benchmark::kMillisecond)
      ->UseRealTime();
  for (std::int64_t cf : {75, 0})
    for (std::int64_t parts : {64, 1024}) cut->Args({100'000, parts, cf});
  if (const char* full = std::getenv("IBMB_BENCH_FULL"); full && *full == '1')
    for (std::int64_t cf : {75, 0})
      for (std::int64_t parts : {64, 1024}) cut->Args({2'500'000, parts, cf});
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
