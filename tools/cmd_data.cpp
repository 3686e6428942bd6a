// ibmb stats / ibmb generate: what a dataset holds, and the embedded generator on disk.
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>

#include "cli_util.hpp"
#include "commands.hpp"
#include "ibmb/graph/generate.hpp"
#include "ibmb/graph/io/load.hpp"
#include "ibmb/graph/io/numpy_dir.hpp"
#include "ibmb/graph/stats.hpp"

namespace ibmb::cli {
namespace {

json_object stats_json(const ibmb::dataset& ds, double load_seconds) {
  const auto s = ibmb::compute_stats(ds.graph.view());
  json_object deg;
  deg.add("min", s.min_degree)
      .add("median", s.median_degree)
      .add("mean", s.mean_degree)
      .add("max", s.max_degree);
  json_object split;
  split.add("train", static_cast<std::int64_t>(ds.train_idx.size()))
      .add("val", static_cast<std::int64_t>(ds.val_idx.size()))
      .add("test", static_cast<std::int64_t>(ds.test_idx.size()));
  std::int64_t labelled = 0;
  for (auto l : ds.labels) labelled += l >= 0;
  json_object o;
  o.add("name", ds.name)
      .add("nodes", s.nodes)
      .add("directed_edges", s.directed_edges)
      .add("self_loops", s.self_loops)
      .add("symmetric", s.symmetric)
      .add("features", ds.num_features)
      .add("classes", ds.num_classes())
      .add("labelled_nodes", labelled)
      .add("split", split)
      .add("isolated_nodes", s.isolated_nodes)
      .add("degree", deg)
      .add("load_seconds", load_seconds);
  return o;
}

void print_stats_text(const ibmb::dataset& ds, double load_seconds) {
  const auto s = ibmb::compute_stats(ds.graph.view());
  std::int64_t labelled = 0;
  for (auto l : ds.labels) labelled += l >= 0;
  std::printf("dataset         %s\n", ds.name.c_str());
  std::printf("nodes           %lld\n", static_cast<long long>(s.nodes));
  std::printf("directed edges  %lld (self-loops %lld, %s)\n",
              static_cast<long long>(s.directed_edges), static_cast<long long>(s.self_loops),
              s.symmetric ? "symmetric" : "not symmetric");
  std::printf("features        %lld\n", static_cast<long long>(ds.num_features));
  std::printf("classes         %lld (%lld labelled nodes)\n",
              static_cast<long long>(ds.num_classes()), static_cast<long long>(labelled));
  std::printf("split           train %zu / val %zu / test %zu\n", ds.train_idx.size(),
              ds.val_idx.size(), ds.test_idx.size());
  std::printf("isolated nodes  %lld\n", static_cast<long long>(s.isolated_nodes));
  std::printf("degree          min %lld / median %lld / mean %.2f / max %lld\n",
              static_cast<long long>(s.min_degree), static_cast<long long>(s.median_degree),
              s.mean_degree, static_cast<long long>(s.max_degree));
  std::printf("load time       %.2f s\n", load_seconds);
}

struct stats_options {
  std::string data;
  bool json = false;
};

struct generate_options {
  ibmb::generator_params params;
  std::string out;
  bool force = false;
};

int run_stats(const stats_options& o) {
  stopwatch t;
  const auto ds = ibmb::load_dataset(o.data, terminal_progress());
  const double secs = t.seconds();
  if (o.json)
    std::printf("%s\n", stats_json(ds, secs).str().c_str());
  else
    print_stats_text(ds, secs);
  return 0;
}

int run_generate(const generate_options& o) {
  namespace fs = std::filesystem;
  const fs::path out(o.out);
  std::error_code ec;
  // As every other command's output: a typo fails at once instead of creating a directory tree.
  require_parent_directory("--out", o.out);
  if (fs::exists(out, ec) && !fs::is_directory(out, ec))
    throw ibmb::io_error("--out " + out.string() + ": is a file (expected a directory)");
  if (fs::exists(out, ec) && !fs::is_empty(out, ec) && !o.force)
    throw ibmb::io_error(out.string() + ": exists and is not empty (pass --force to overwrite)");
  stopwatch t;
  auto ds = ibmb::generate_dataset(o.params, terminal_progress());
  const double gen = t.seconds();
  ibmb::save_numpy_dir(ds, out);
  std::printf(
      "wrote %s: %lld nodes, %lld directed edges, %lld features, %lld classes (generated in %.2f "
      "s, "
      "written in %.2f s)\n",
      out.string().c_str(), static_cast<long long>(ds.num_nodes()),
      static_cast<long long>(ds.num_edges()), static_cast<long long>(ds.num_features),
      static_cast<long long>(ds.num_classes()), gen, t.seconds() - gen);
  return 0;
}

}  // namespace

void print_dataset_stats(const ibmb::dataset& ds, double load_seconds) {
  print_stats_text(ds, load_seconds);
}

void add_data_commands(CLI::App& app, command_list& cmds) {
  auto stats = std::make_shared<stats_options>();
  auto* c_stats = app.add_subcommand(
      "stats", "Print nodes, edges, features, classes, split and degree statistics");
  c_stats
      ->add_option("--data", stats->data,
                   "Dataset SPEC: a path (format auto-detected) or synthetic[:k=v,...]")
      ->required();
  c_stats->add_flag("--json", stats->json, "Print one JSON object");
  cmds.push_back({c_stats, [stats] { return run_stats(*stats); }});

  auto gen = std::make_shared<generate_options>();
  auto* c_gen =
      app.add_subcommand("generate", "Write the embedded synthetic dataset as a NumPy directory");
  c_gen->add_option("--nodes", gen->params.nodes, "Number of nodes")->check(positive());
  c_gen
      ->add_option("--avg-degree", gen->params.avg_degree,
                   "Average number of directed edges per node")
      ->check(positive());
  c_gen->add_option("--classes", gen->params.classes, "Number of classes")->check(positive());
  c_gen->add_option("--features", gen->params.features, "Feature dimension")->check(non_negative());
  c_gen->add_option("--homophily", gen->params.homophily, "Fraction of edges inside a class")
      ->check(CLI::Range(0.0, 1.0));
  auto* cf = c_gen
                 ->add_option("--community-fraction", gen->params.community_fraction,
                              "Fraction of edges inside a node's small community (<= homophily)")
                 ->check(CLI::Range(0.0, 1.0));
  c_gen->add_option("--seed", gen->params.seed, "Random seed");
  c_gen->add_option("--out", gen->out, "Output directory (NumPy layout)")->required();
  c_gen->add_flag("--force", gen->force, "Overwrite a non-empty output directory");
  cmds.push_back({c_gen, [gen, cf] {
                    // A lower homophily than the default community share lowers that share too,
                    // unless the user set both.
                    if (cf->count() == 0)
                      gen->params.community_fraction =
                          std::min(gen->params.community_fraction, gen->params.homophily);
                    return run_generate(*gen);
                  }});
}

}  // namespace ibmb::cli
