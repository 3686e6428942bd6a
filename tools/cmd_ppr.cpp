// ibmb ppr: top-k node-wise PPR of the output nodes, written as a CSR .npz.
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "cli_util.hpp"
#include "commands.hpp"
#include "device.hpp"
#include "ibmb/graph/io/load.hpp"
#include "ibmb/graph/io/npy.hpp"
#include "ibmb/graph/io/npz.hpp"
#include "ibmb/ppr/push.hpp"
#include "pipeline.hpp"

namespace ibmb::cli {
namespace {

struct ppr_options {
  std::string data, outputs = "train", out, device = "cpu";
  double alpha = 0.25, eps = 2e-4;
  std::int64_t topk = 16;
  int threads = 0;
  bool json = false;
};

int run_ppr(const ppr_options& o) {
  const bool cuda = o.device == "cuda";
  const bool outputs_file = !is_split_name(o.outputs) && o.outputs != "all";
  check_output_path("--out", o.out,
                    {dataset_path(o.data),
                     outputs_file ? std::filesystem::path(o.outputs) : std::filesystem::path()});
  if (cuda) require_cuda_device();  // fail before loading anything
  auto ds = ibmb::load_dataset(o.data, terminal_progress());
  preprocess(ds);
  const auto outputs = select_outputs(ds, o.outputs);
  ibmb::ppr_params p;
  p.alpha = o.alpha;
  p.eps = o.eps;
  p.topk = o.topk;
  p.threads = o.threads;
  stopwatch t;  // PPR + top-k only: loading and writing are outside
  device_report dev;
  const auto m =
      cuda ? cuda_nodewise_ppr(ds.graph.view(), std::span<const std::int64_t>(outputs), p, &dev)
           : ibmb::nodewise_ppr<float>(ds.graph.view(), std::span<const std::int64_t>(outputs), p);
  const double secs = t.seconds();
  std::vector<std::int64_t> outs(m.outputs.begin(), m.outputs.end());
  std::vector<std::int64_t> idx(m.indices.begin(), m.indices.end());
  ibmb::write_npz(o.out, {npz_vector("indptr", m.indptr), npz_vector("indices", idx),
                          npz_vector("data", m.values), npz_vector("outputs", outs)});
  if (o.json) {
    json_object j;
    j.add("seconds", secs)
        .add("outputs", static_cast<std::int64_t>(outputs.size()))
        .add("nnz", m.nnz())
        .add("pushes", m.counters.pushes)
        .add("edges_relaxed", m.counters.edges_relaxed)
        .add("edges_relaxed_per_second", static_cast<double>(m.counters.edges_relaxed) / secs)
        .add("threads", ibmb::max_threads())
        .add("peak_rss_bytes", peak_rss_bytes())
        .add("out", o.out);
    if (cuda)
      j.add("device", "cuda")
          .add("device_name", dev.name)
          .add("push_rounds", dev.push_rounds)
          .add("push_overflowed", dev.push_overflowed);
    std::printf("%s\n", j.str().c_str());
  } else {
    std::printf("top-%lld PPR of %zu outputs in %.3f s (%lld edges relaxed), %lld entries -> %s\n",
                static_cast<long long>(o.topk), outputs.size(), secs,
                static_cast<long long>(m.counters.edges_relaxed), static_cast<long long>(m.nnz()),
                o.out.c_str());
  }
  return 0;
}

}  // namespace

void add_ppr_commands(CLI::App& app, command_list& cmds) {
  auto o = std::make_shared<ppr_options>();
  auto* c =
      app.add_subcommand("ppr", "Top-k personalized PageRank of the output nodes (forward push)");
  c->add_option("--data", o->data, "Dataset SPEC")->required();
  c->add_option("--outputs", o->outputs, "train, val, test, all, or a .npy file of node ids")
      ->capture_default_str();
  c->add_option("--alpha", o->alpha, "Teleport probability")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  c->add_option("--eps", o->eps, "Push threshold")->check(positive())->capture_default_str();
  c->add_option("--topk", o->topk, "Entries kept per output (0 = all)")
      ->check(non_negative())
      ->capture_default_str();
  c->add_option("--threads", o->threads, "OpenMP threads")->check(CLI::Range(0, max_cli_threads));
  c->add_option("--out", o->out, "Output .npz (indptr, indices, data, outputs)")->required();
  c->add_option("--device", o->device, "Where the push runs: cpu or cuda (needs a CUDA build)")
      ->check(CLI::IsMember({"cpu", "cuda"}))
      ->capture_default_str();
  c->add_flag("--json", o->json, "Print one JSON object");
  cmds.push_back({c, [o] {
                    if (o->alpha <= 0) throw ibmb::invalid_argument("--alpha must be > 0");
                    return run_ppr(*o);
                  }});
}

}  // namespace ibmb::cli
