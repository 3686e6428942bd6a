// ibmb build / info / verify: precomputed batch stores.
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "cli_util.hpp"
#include "commands.hpp"
#include "device.hpp"
#include "gcn/train.hpp"
#include "ibmb/batch/schedule.hpp"
#include "ibmb/batch/store.hpp"
#include "ibmb/graph/io/load.hpp"
#include "ibmb/graph/io/npz.hpp"
#include "ibmb/influence/coverage.hpp"
#include "ibmb/ppr/push.hpp"
#include "pipeline.hpp"

namespace ibmb::cli {
namespace {

struct build_options {
  std::string data, split = "train", out, norm = "row", features = "float32", device = "cpu";
  plan_options plan;
  std::int64_t split_seed = 0;
  bool json = false, force = false;
};

struct info_options {
  std::string file, data;
  bool json = false;
};

int run_build(build_options o) {
  namespace fs = std::filesystem;
  const fs::path out(o.out);
  if (fs::exists(out) && !o.force)
    throw ibmb::io_error(out.string() + ": exists (pass --force to overwrite)");
  check_output_path(
      "--out", o.out,
      {dataset_path(o.data), is_split_name(o.split) ? fs::path() : fs::path(o.split)});
  if (!is_known_method(o.plan.method))
    throw ibmb::invalid_argument("--method '" + o.plan.method +
                                 "': expected nodewise, batchwise, cluster, random or khop");
  const bool cuda = o.device == "cuda";
  if (cuda) {
    if (o.plan.method != "nodewise" && o.plan.method != "batchwise")
      throw ibmb::invalid_argument("--device cuda: --method " + o.plan.method +
                                   " runs on the CPU only (the GPU builds nodewise and batchwise)");
    require_cuda_device();  // fail before loading anything
  }
  const auto norm = ibmb::parse_normalization(o.norm);
  const bool ids_only = o.features == "none";
  const auto dtype =
      ids_only ? ibmb::feature_dtype::float32 : ibmb::parse_feature_dtype(o.features);
  stopwatch load_t;
  auto ds = ibmb::load_dataset(o.data, terminal_progress());
  preprocess(ds);
  // The same seeded 10/10/80 split `ibmb train` / `ibmb infer` draw for a dataset without one.
  if (is_split_name(o.split) && ds.train_idx.empty() && ds.val_idx.empty() && ds.test_idx.empty() &&
      ds.num_classes() > 0)
    gcn::random_split(ds, 0.1, 0.1, static_cast<std::uint64_t>(o.split_seed));
  const double load_seconds = load_t.seconds();
  const auto outputs = select_outputs(ds, o.split);
  o.plan.progress = terminal_progress();
  plan_timing timing;
  device_report dev;
  const auto plan = cuda ? cuda_make_plan(ds, outputs, o.plan, &timing, &dev)
                         : make_plan(ds, outputs, o.plan, &timing);

  json_object j;
  j.add("method", o.plan.method)
      .add("seconds", timing.seconds)
      .add("batches", static_cast<std::int64_t>(plan.num_batches()))
      .add("outputs", static_cast<std::int64_t>(plan.num_outputs()))
      .add("nodes", static_cast<std::int64_t>(plan.nodes.size()))
      .add("partition_seconds", timing.partition_seconds)
      .add("ppr_seconds", timing.ppr_seconds)
      .add("load_seconds", load_seconds);
  if (cuda) {
    j.add("device", "cuda").add("device_name", dev.name);
    if (o.plan.method == "nodewise")
      j.add("push_rounds", dev.push_rounds).add("push_overflowed", dev.push_overflowed);
  }
  stopwatch mat_t;
  if (out.extension() == ".npz") {
    // The plan alone (no features): output_ptr, outputs, node_ptr, nodes.
    ibmb::write_npz(out,
                    {npz_vector("output_ptr", plan.output_ptr), npz_vector("outputs", plan.outputs),
                     npz_vector("node_ptr", plan.node_ptr), npz_vector("nodes", plan.nodes)});
  } else {
    ibmb::materialize_options mo;
    mo.norm = norm;
    mo.features = dtype;
    mo.ids_only = ids_only;
    std::int64_t parts = o.plan.parts;
    if (parts <= 0 && (o.plan.method == "batchwise" || o.plan.method == "cluster"))
      parts = static_cast<std::int64_t>(plan.num_batches());
    mo.params = store_params_of(o.plan, parts);
    const auto store = ibmb::materialize(ds, plan, mo);
    ibmb::save_store(store, out);
    j.add("bytes", static_cast<std::int64_t>(store.image().size()));
  }
  j.add("write_seconds", mat_t.seconds()).add("out", out.string());
  if (o.json) {
    std::printf("%s\n", j.str().c_str());
  } else {
    std::printf("%s: %zu batches over %zu outputs (%zu nodes in all) in %.2f s -> %s\n",
                o.plan.method.c_str(), plan.num_batches(), plan.num_outputs(), plan.nodes.size(),
                timing.seconds, out.string().c_str());
  }
  return 0;
}

json_object range_json(const ibmb::store_summary::range& r) {
  json_object j;
  j.add("min", r.min).add("mean", r.mean).add("max", r.max);
  return j;
}

json_object coverage_json(const ibmb::coverage_stats& c) {
  json_object j;
  j.add("outputs", c.count)
      .add("mean", c.mean)
      .add("min", c.min)
      .add("p5", c.p5)
      .add("p25", c.p25)
      .add("median", c.median)
      .add("p75", c.p75)
      .add("p95", c.p95)
      .add("max", c.max);
  return j;
}

int run_info(const info_options& o) {
  const auto store = ibmb::load_store(o.file);
  const auto s = ibmb::summarize(store);
  json_object params;
  params.add("method", s.params.method)
      .add("alpha", s.params.alpha)
      .add("eps", s.params.eps)
      .add("topk", s.params.topk)
      .add("parts", s.params.parts)
      .add("seed", s.params.seed);
  json_object bytes;
  for (const auto& [name, b] : s.section_bytes) bytes.add(name, static_cast<std::int64_t>(b));
  json_object j;
  j.add("file", o.file)
      .add("params", params)
      .add("batches", s.num_batches)
      .add("nodes_per_batch", range_json(s.nodes))
      .add("edges_per_batch", range_json(s.edges))
      .add("outputs_per_batch", range_json(s.outputs))
      .add("total_nodes", s.total_nodes)
      .add("total_edges", s.total_edges)
      .add("total_outputs", s.total_outputs)
      .add("features", s.num_features)
      .add("feature_dtype", ibmb::to_string(s.dtype))
      .add("ids_only", s.ids_only)
      .add("normalization", ibmb::to_string(s.norm))
      .add("dataset_nodes", s.dataset_num_nodes)
      .add("dataset_edges", s.dataset_num_edges)
      .add("file_bytes", static_cast<std::int64_t>(s.file_bytes))
      .add("section_bytes", bytes);
  // The fixed replay order and how far it is from a random one.
  if (store.has_labels() && s.num_batches > 1) {
    const auto dist = ibmb::label_distance_matrix(store);
    const auto sched = ibmb::batch_schedule(dist, store.num_batches(), {});
    json_object js;
    js.add("tour_distance", sched.distance)
        .add("random_order_distance", sched.random_distance)
        .add("identity_distance", sched.identity_distance);
    j.add("schedule", js);
  }
  std::string coverage_note = "pass --data SPEC to compute influence coverage";
  if (!o.data.empty()) {
    auto ds = ibmb::load_dataset(o.data, terminal_progress());
    preprocess(ds);
    if (s.dataset_fingerprint != 0 && ibmb::dataset_fingerprint(ds) != s.dataset_fingerprint)
      throw ibmb::invalid_argument("dataset '" + o.data + "' is not the one " + o.file +
                                   " was built from (fingerprint differs)");
    const auto plan = ibmb::store_plan(store);
    ibmb::ppr_params p;
    p.alpha = std::isnan(s.params.alpha) ? 0.25 : s.params.alpha;
    p.eps = std::isnan(s.params.eps) ? 2e-4 : s.params.eps;
    p.topk = 0;  // the whole row: coverage is a fraction of all PPR mass
    const auto rows =
        ibmb::nodewise_ppr<float>(ds.graph.view(), std::span<const std::int64_t>(plan.outputs), p);
    const auto cov = ibmb::influence_coverage(plan, rows);
    j.add("influence_coverage", coverage_json(cov));
    char buf[160];
    std::snprintf(buf, sizeof buf,
                  "mean %.4f, median %.4f, p5 %.4f, min %.4f (alpha %.3g, eps %.3g)", cov.mean,
                  cov.median, cov.p5, cov.min, p.alpha, p.eps);
    coverage_note = buf;
  }
  if (o.json) {
    std::printf("%s\n", j.str().c_str());
    return 0;
  }
  std::printf("store            %s (%.1f MB)\n", o.file.c_str(),
              static_cast<double>(s.file_bytes) / 1e6);
  std::printf("method           %s (alpha %g, eps %g, topk %lld, parts %lld, seed %lld)\n",
              s.params.method.c_str(), s.params.alpha, s.params.eps,
              static_cast<long long>(s.params.topk), static_cast<long long>(s.params.parts),
              static_cast<long long>(s.params.seed));
  std::printf("batches          %lld\n", static_cast<long long>(s.num_batches));
  auto line = [](const char* what, const ibmb::store_summary::range& r, std::int64_t total) {
    std::printf("%-16s min %lld / mean %.1f / max %lld (total %lld)\n", what,
                static_cast<long long>(r.min), r.mean, static_cast<long long>(r.max),
                static_cast<long long>(total));
  };
  line("outputs/batch", s.outputs, s.total_outputs);
  line("nodes/batch", s.nodes, s.total_nodes);
  line("edges/batch", s.edges, s.total_edges);
  std::printf("features         %lld x %s%s, %s normalization\n",
              static_cast<long long>(s.num_features), std::string(ibmb::to_string(s.dtype)).c_str(),
              s.ids_only ? " (ids only)" : "", std::string(ibmb::to_string(s.norm)).c_str());
  std::printf("coverage         %s\n", coverage_note.c_str());
  return 0;
}

int run_verify(const std::string& file) {
  const auto r = ibmb::verify_store(file);
  std::printf("%s: OK (%llu bytes, %u sections, %llu batches, every checksum matches)\n",
              file.c_str(), static_cast<unsigned long long>(r.file_bytes), r.sections,
              static_cast<unsigned long long>(r.batches));
  return 0;
}

}  // namespace

void add_store_commands(CLI::App& app, command_list& cmds) {
  auto b = std::make_shared<build_options>();
  auto* c =
      app.add_subcommand("build", "Build batches with a planner and write them as a store (.ibmb)");
  c->add_option("--data", b->data, "Dataset SPEC")->required();
  c->add_option("--method", b->plan.method, "nodewise, batchwise, cluster, random or khop")
      ->check(CLI::IsMember({"nodewise", "batchwise", "cluster", "random", "khop"}))
      ->capture_default_str();
  c->add_option("--split", b->split, "Output nodes: train, val, test, all or a .npy file")
      ->capture_default_str();
  c->add_option(
      "--split-seed", b->split_seed,
      "Seed of the random 10/10/80 split drawn when the dataset has none (as ibmb train)");
  c->add_option("--parts", b->plan.parts,
                "METIS parts (batchwise, cluster); default: outputs / batch size")
      ->check(positive());
  c->add_option("--batch-size", b->plan.batch_size, "Outputs per batch (nodewise, random, khop)")
      ->check(positive());
  c->add_option("--alpha", b->plan.alpha, "PPR teleport probability")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  c->add_option("--eps", b->plan.eps, "Push threshold (nodewise)")
      ->check(positive())
      ->capture_default_str();
  c->add_option("--topk", b->plan.topk, "PPR neighbours per output (nodewise)")
      ->check(positive())
      ->capture_default_str();
  auto* it = c->add_option("--iterations", b->plan.iterations, "Power iterations (batchwise)")
                 ->check(positive())
                 ->capture_default_str();
  c->add_option("--tol", b->plan.tol,
                "Stop the power iteration on this per-column L1 change instead")
      ->check(positive())
      ->excludes(it);
  auto* solver =
      c->add_option("--solver", b->plan.solver,
                    "Batchwise scores: push (default, faster at equal top-k recall) or power "
                    "(the reference's power iteration; implied by --iterations / --tol)")
          ->check(CLI::IsMember({"push", "power"}));
  c->add_option(
       "--push-eps", b->plan.push_eps,
       "Batchwise push threshold (default 2e-3 / auxiliaries, x 32 / mean degree above 32)")
      ->check(positive());
  c->add_option("--aux-ratio", b->plan.aux_ratio,
                "Batchwise auxiliaries per batch = ratio x N / parts")
      ->check(non_negative());
  c->add_option("--hops", b->plan.hops, "Neighbourhood depth (khop)")->check(non_negative());
  c->add_option("--max-nodes", b->plan.max_nodes, "Cap on nodes per batch (khop)")
      ->check(non_negative());
  c->add_option("--seed", b->plan.seed, "Seed (METIS, random batches)")->check(non_negative());
  c->add_option("--norm", b->norm, "Edge weights: row, symmetric or none")
      ->check(CLI::IsMember({"row", "symmetric", "none"}))
      ->capture_default_str();
  c->add_option("--features", b->features,
                "Feature storage: float32, float16, bfloat16 or none (ids only)")
      ->check(CLI::IsMember({"float32", "float16", "bfloat16", "none"}))
      ->capture_default_str();
  c->add_option("--out", b->out, "Output store (.ibmb), or .npz for the plan alone")->required();
  auto* push_eps = c->get_option("--push-eps");
  c->add_option("--device", b->device,
                "Where the PPR runs: cpu or cuda (nodewise: GPU push; batchwise: GPU power "
                "iteration + top-k; needs a CUDA build)")
      ->check(CLI::IsMember({"cpu", "cuda"}))
      ->capture_default_str();
  c->add_flag("--force", b->force, "Overwrite an existing output");
  c->add_flag("--json", b->json, "Print one JSON object");
  cmds.push_back(
      {c, [b, it, solver, push_eps] {
         if (b->plan.alpha <= 0) throw ibmb::invalid_argument("--alpha must be > 0");
         // The GPU computes batch-wise scores by the power iteration only.
         if (b->device == "cuda" && b->plan.method == "batchwise") {
           if ((solver->count() > 0 && b->plan.solver == "push") || push_eps->count() > 0)
             throw ibmb::invalid_argument(
                 "--device cuda: batchwise scores use the power iteration (cuSPARSE "
                 "SpMM); --solver push / --push-eps are CPU-only");
           b->plan.solver = "power";
         }
         // --iterations / --tol are power-iteration settings: they select it.
         if (solver->count() == 0 && (it->count() > 0 || b->plan.tol > 0)) b->plan.solver = "power";
         if (b->plan.solver == "push" && (it->count() > 0 || b->plan.tol > 0))
           throw ibmb::invalid_argument("--iterations / --tol apply to --solver power, not push");
         return run_build(*b);
       }});

  auto i = std::make_shared<info_options>();
  auto* ci =
      app.add_subcommand("info", "Describe a store: parameters, batch sizes, bytes, coverage");
  ci->add_option("file", i->file, "Store file (.ibmb)")->required();
  ci->add_option("--data", i->data,
                 "The dataset the store was built from (for influence coverage)");
  ci->add_flag("--json", i->json, "Print one JSON object");
  cmds.push_back({ci, [i] { return run_info(*i); }});

  auto v = std::make_shared<std::string>();
  auto* cv = app.add_subcommand("verify", "Check every checksum and the structure of a store");
  cv->add_option("file", *v, "Store file (.ibmb)")->required();
  cmds.push_back({cv, [v] { return run_verify(*v); }});
}

}  // namespace ibmb::cli
