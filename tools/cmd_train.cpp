// ibmb train / ibmb infer: the reference GCN pipeline (examples/gcn).
#include <algorithm>
#include <chrono>
#include <cstdarg>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <memory>
#include <numeric>
#include <string>
#include <thread>
#include <vector>

#include "cli_util.hpp"
#include "commands.hpp"
#include "gcn/checkpoint.hpp"
#include "gcn/history_train.hpp"
#include "gcn/train.hpp"
#include "ibmb/batch/store.hpp"
#include "ibmb/core/file.hpp"
#include "ibmb/graph/io/load.hpp"
#include "pipeline.hpp"
#ifdef IBMB_WITH_MPI
#include "gcn/mpi_exchange.hpp"
#endif

namespace ibmb::cli {
namespace {

/// Set on MPI ranks other than 0: they print nothing and write no file.
bool g_quiet = false;

__attribute__((format(printf, 1, 2))) void say(const char* fmt, ...) {
  if (g_quiet) return;
  va_list ap;
  va_start(ap, fmt);
  std::vprintf(fmt, ap);
  va_end(ap);
}

ibmb::progress_callback progress_bar() {
  return g_quiet ? ibmb::progress_callback{} : terminal_progress();
}

struct common_options {
  std::string data;
  std::string method = "nodewise";
  std::string batches;
  std::string report;
  std::string norm = "row";
  std::int64_t seed = 0;
  std::int64_t split_seed = 0;
  plan_options plan;
};

struct train_options : common_options {
  std::string model = "gcn";
  std::string save_model;
  std::int64_t epochs = 100;
  std::int64_t hidden = 64;
  std::int64_t layers = 2;
  double lr = 1e-3;
  double dropout = 0.5;
  std::int64_t patience = 50;
  std::int64_t min_epochs = 0;
  // Historical embeddings (empty history: the plain batched trainer).
  std::string history;
  int workers = 1;
  std::int32_t partitions = 0;  ///< 0: = workers
  std::int64_t halo_budget = -1;
  std::int64_t audit_every = 5;
  bool norm_given = false;  // --norm was on the command line
  std::int64_t refresh_every = 1;
  std::string staleness_report;
};

struct infer_options : common_options {
  std::string model_file;
  std::string split = "test";
  /// Batches built on the fly are materialized in consecutive pieces whose estimated size
  /// stays under this (0 = all at once): L-hop batches of a large graph hold many copies of it.
  double max_store_gb = 4.0;
};

void add_plan_flags(CLI::App* c, common_options& o) {
  c->add_option("--batch-size", o.plan.batch_size,
                "Outputs per batch (nodewise, random, khop; 0 = min(outputs, 4096))")
      ->check(non_negative());
  c->add_option("--parts", o.plan.parts,
                "METIS parts (batchwise, cluster; 0 = outputs / batch size)")
      ->check(non_negative());
  c->add_option("--alpha", o.plan.alpha, "PPR teleport probability")->check(CLI::Range(1e-6, 1.0));
  c->add_option("--eps", o.plan.eps, "Node-wise push threshold")->check(CLI::Range(1e-12, 1.0));
  c->add_option("--topk", o.plan.topk, "Node-wise auxiliaries per output")->check(positive());
  c->add_option("--aux-ratio", o.plan.aux_ratio, "Batch-wise auxiliaries = ratio * N / parts")
      ->check(positive());
  c->add_option("--hops", o.plan.hops, "khop depth")->check(non_negative());
  c->add_option("--max-nodes", o.plan.max_nodes, "khop cap on nodes per batch (0 = none)")
      ->check(non_negative());
  c->add_option("--split-seed", o.split_seed,
                "Seed of the random 10/10/80 split made when the dataset has none")
      ->check(non_negative());
}

/// Loads and preprocesses the dataset; makes the seeded random split when it has none.
/// Returns a description of the split.
std::string load(const common_options& o, ibmb::dataset& ds) {
  ds = ibmb::load_dataset(o.data, progress_bar());
  preprocess(ds);
  IBMB_EXPECTS(ds.num_features > 0, "dataset '", o.data, "' has no node features");
  IBMB_EXPECTS(ds.num_classes() > 0, "dataset '", o.data, "' has no labels");
  const bool tr = !ds.train_idx.empty(), va = !ds.val_idx.empty(), te = !ds.test_idx.empty();
  if (tr && va && te) return "file";
  // Some splits but not all: drawing a random split would silently discard the given ones.
  if (tr || va || te)
    throw ibmb::invalid_argument(detail::concat(
        "dataset '", o.data, "' has ", ds.train_idx.size(), " train, ", ds.val_idx.size(),
        " val and ", ds.test_idx.size(),
        " test nodes: give all three splits, or none (then a random 10/10/80 split is drawn)"));
  gcn::random_split(ds, 0.1, 0.1, static_cast<std::uint64_t>(o.split_seed));
  return detail::concat("random 10/10/80 of labelled nodes, split seed ", o.split_seed);
}

const std::vector<std::int64_t>& split_nodes(const ibmb::dataset& ds, std::string_view s) {
  if (s == "train") return ds.train_idx;
  if (s == "val" || s == "valid") return ds.val_idx;
  return ds.test_idx;
}

/// The plan of `o.method` for `outputs` and the options that materialize it (recording the
/// plan's parameters in the store header).
struct planned_batches {
  ibmb::batch_plan<std::int64_t> plan;
  ibmb::materialize_options options;
};

planned_batches plan_batches(const ibmb::dataset& ds, std::span<const std::int64_t> outputs,
                             const common_options& o, ibmb::normalization norm) {
  plan_options po = o.plan;
  po.method = o.method;
  po.seed = o.seed;
  po.progress = progress_bar();
  planned_batches r{make_plan(ds, outputs, po), {}};
  r.options.norm = norm;
  r.options.params = store_params_of(po, static_cast<std::int64_t>(r.plan.num_batches()));
  r.options.fingerprint = false;
  return r;
}

/// Batches for `outputs` with `o.method`, timed (plan + materialize).
ibmb::batch_store build_store(const ibmb::dataset& ds, std::span<const std::int64_t> outputs,
                              const common_options& o, ibmb::normalization norm, double& seconds) {
  stopwatch t;
  const auto pb = plan_batches(ds, outputs, o, norm);
  auto s = ibmb::materialize(ds, pb.plan, pb.options);
  seconds = t.seconds();
  return s;
}

/// A prebuilt store for `ds`, checked in full (checksums and batch structure: a corrupted
/// store must fail here, not index out of bounds in training) and against the dataset.
ibmb::batch_store open_store(const std::string& file, const ibmb::dataset& ds) {
  ibmb::load_options lo;
  lo.verify_checksums = true;
  lo.verify_batches = true;
  auto s = ibmb::load_store(file, lo);
  if (static_cast<std::int64_t>(s.hdr().dataset_num_nodes) != ds.num_nodes())
    throw ibmb::invalid_argument(detail::concat("--batches ", file, ": built for a graph of ",
                                                s.hdr().dataset_num_nodes,
                                                " nodes, the dataset has ", ds.num_nodes()));
  if (!s.ids_only() && s.num_features() != ds.num_features)
    throw ibmb::invalid_argument(detail::concat("--batches ", file, ": ", s.num_features(),
                                                " features per node, the dataset has ",
                                                ds.num_features));
  if (s.hdr().dataset_fingerprint != 0 &&
      s.hdr().dataset_fingerprint != ibmb::dataset_fingerprint(ds))
    throw ibmb::invalid_argument(detail::concat(
        "--batches ", file, ": built from another dataset than '", ds.name,
        "' (the fingerprint in its header differs; rebuild it with ibmb build --data)"));
  return s;
}

/// Marks `nodes` in an N-sized mask.
std::vector<char> node_mask(const ibmb::dataset& ds, std::span<const std::int64_t> nodes) {
  std::vector<char> in(static_cast<std::size_t>(ds.num_nodes()), 0);
  for (const auto v : nodes) in[static_cast<std::size_t>(v)] = 1;
  return in;
}

/// A training store may only hold training nodes as outputs (any other output would train on
/// its label), and at least one of them must be labelled.
void check_train_store(const ibmb::batch_store& s, const std::string& file,
                       const ibmb::dataset& ds) {
  const auto train = node_mask(ds, ds.train_idx);
  std::int64_t labelled = 0;
  for (std::size_t b = 0; b < s.num_batches(); ++b)
    for (const auto v : s.batch(b).output_ids()) {
      if (!train[static_cast<std::size_t>(v)])
        throw ibmb::invalid_argument(
            detail::concat("--batches ", file, ": output node ", v, " (batch ", b,
                           ") is not a training node; build the store with --split train"));
      labelled += ds.labels[static_cast<std::size_t>(v)] >= 0;
    }
  if (labelled == 0)
    throw ibmb::invalid_argument(detail::concat("--batches ", file,
                                                ": no labelled output node to train on (",
                                                s.num_batches(), " batches)"));
}

/// An inference store must hold at least one node of the scored split as an output.
void check_infer_store(const ibmb::batch_store& s, const std::string& file, const ibmb::dataset& ds,
                       std::span<const std::int64_t> nodes, const std::string& split) {
  const auto in = node_mask(ds, nodes);
  for (std::size_t b = 0; b < s.num_batches(); ++b)
    for (const auto v : s.batch(b).output_ids())
      if (in[static_cast<std::size_t>(v)]) return;
  throw ibmb::invalid_argument(detail::concat("--batches ", file, ": none of the ", nodes.size(),
                                              " ", split, " nodes is an output of the store (",
                                              "build it with --split ", split, ")"));
}

std::string store_json(const ibmb::batch_store& s) {
  json_object o;
  o.add("batches", static_cast<std::int64_t>(s.num_batches()))
      .add("nodes", s.total_nodes())
      .add("edges", s.total_edges())
      .add("outputs", static_cast<std::int64_t>(s.hdr().total_outputs));
  return o.str();
}

/// `obj` with extra raw members appended (arrays of objects, which json_object lacks).
std::string with_raw(const json_object& obj,
                     const std::vector<std::pair<std::string, std::string>>& extra) {
  std::string s = obj.str();
  s.pop_back();
  for (const auto& [k, v] : extra)
    s += (s.size() > 1 ? ", " : "") + json_object::quote(k) + ": " + v;
  return s + "}\n";
}

void write_report(const std::string& path, const std::string& text) {
  ibmb::atomic_write(path, [&](ibmb::file_writer& w) { w.write(std::string_view(text)); });
}

/// `ex`: null for one process; otherwise this process is MPI rank ex->rank() of ex->size(),
/// running the history trainer's workers w % size == rank. Only rank 0 prints and writes.
int run_train(const train_options& o, gcn::worker_exchange* ex) {
  const int ranks = ex != nullptr ? ex->size() : 1;
  if (ranks > 1 && o.history.empty())
    throw ibmb::invalid_argument(detail::concat(
        "under mpirun with ", ranks, " ranks, train needs --history (the ranks are its workers)"));
  if (o.method == "full" && !o.batches.empty())
    throw ibmb::invalid_argument("--batches needs a batched --method (not full)");
  const bool hist = !o.history.empty();
  if (hist && o.method == "full")
    throw ibmb::invalid_argument("--history needs a batched --method (not full)");
  if (hist && o.model != "gcn") throw ibmb::invalid_argument("--history needs --model gcn");
  if (!hist && (o.workers != 1 || o.partitions != 0 || !o.staleness_report.empty()))
    throw ibmb::invalid_argument("--workers, --partitions and --staleness-report need --history");
  if (!o.staleness_report.empty() && o.layers < 2)
    throw ibmb::invalid_argument("--staleness-report needs --layers >= 2 (no cached layer)");
  // Before any epoch: a report path that cannot be written fails now, not after training.
  const auto data_path = dataset_path(o.data);
  const std::pair<const char*, const std::string&> outputs[] = {
      {"--report", o.report},
      {"--save-model", o.save_model},
      {"--staleness-report", o.staleness_report}};
  for (const auto& [flag, path] : outputs) {
    check_output_path(flag, path, {data_path, std::filesystem::path(o.batches)},
                      /*optional=*/std::string_view(flag) != "--report");
    // Two outputs of one run on the same file: the later write would replace the earlier.
    for (const auto& [flag2, path2] : outputs) {
      if (flag2 == flag) break;
      if (!path.empty() && !path2.empty() &&
          std::filesystem::weakly_canonical(path) == std::filesystem::weakly_canonical(path2))
        throw ibmb::invalid_argument(
            detail::concat(flag, " ", path, ": the same file as ", flag2, " ", path2));
    }
  }
  stopwatch total;
  ibmb::dataset ds;
  stopwatch tl;
  const std::string split = load(o, ds);
  const double load_seconds = tl.seconds();
  if (std::none_of(ds.train_idx.begin(), ds.train_idx.end(),
                   [&](std::int64_t v) { return ds.labels[static_cast<std::size_t>(v)] >= 0; }))
    throw ibmb::invalid_argument(detail::concat("dataset '", o.data, "': none of the ",
                                                ds.train_idx.size(),
                                                " train nodes is labelled (label -1 everywhere)"));
  auto norm = ibmb::parse_normalization(o.norm);

  // Preprocessing: the batches for the train and val splits (and their order), or the
  // normalized full graph.
  double pre_train = 0, pre_val = 0, pre_sched = 0;
  ibmb::batch_store train_store, val_store;
  std::vector<std::int64_t> order;
  if (o.method != "full") {
    if (!o.batches.empty()) {
      stopwatch t;
      train_store = open_store(o.batches, ds);
      if (o.norm_given && train_store.norm() != norm)
        throw ibmb::invalid_argument(detail::concat(
            "--norm ", o.norm, ": the store ", o.batches, " holds ",
            ibmb::to_string(train_store.norm()),
            "-normalized batches (omit --norm to train with the store's normalization)"));
      norm = train_store.norm();
      check_train_store(train_store, o.batches, ds);
      pre_train = t.seconds();
    } else {
      train_store = build_store(ds, ds.train_idx, o, norm, pre_train);
    }
    val_store = build_store(ds, ds.val_idx, o, norm, pre_val);
    stopwatch t;
    order = gcn::reference_order(train_store, ds.num_classes(), static_cast<std::uint64_t>(o.seed));
    pre_sched = t.seconds();
  }
  stopwatch tn;
  const auto full = gcn::make_full_graph(ds, norm);
  const double pre_full = tn.seconds();

  gcn::model_config cfg;
  cfg.kind = o.model == "sage" ? gcn::model_kind::sage : gcn::model_kind::gcn;
  cfg.in = ds.num_features;
  cfg.classes = ds.num_classes();
  cfg.hidden = o.hidden;
  cfg.layers = o.layers;
  cfg.dropout = o.dropout;
  gcn::model<float> net(cfg, static_cast<std::uint64_t>(o.seed));
  gcn::fit_params fp;
  fp.epochs = o.epochs;
  fp.lr = o.lr;
  fp.patience = o.patience;
  fp.min_epochs = o.min_epochs;
  fp.seed = static_cast<std::uint64_t>(o.seed);

  say("train %s on %s (%lld nodes, %lld edges), method %s, %s split, norm %s\n", o.model.c_str(),
      ds.name.c_str(), static_cast<long long>(ds.num_nodes()),
      static_cast<long long>(ds.num_edges()), o.method.c_str(), split.c_str(),
      std::string(ibmb::to_string(norm)).c_str());
  if (o.method != "full")
    say("batches: train %zu (%lld nodes), val %zu; preprocessing %.2f s\n",
        train_store.num_batches(), static_cast<long long>(train_store.total_nodes()),
        val_store.num_batches(), pre_train + pre_val + pre_sched);
  std::fflush(stdout);
  auto progress = [&](const gcn::epoch_record& e) {
    say("epoch %4lld/%lld  loss %.4f  train %.4f  val loss %.4f  val %.4f  lr %.2e  %.3f s%s\n",
        static_cast<long long>(e.epoch + 1), static_cast<long long>(o.epochs), e.loss, e.train_acc,
        e.val_loss, e.val_acc, e.lr, e.seconds, e.best ? "  *" : "");
    std::fflush(stdout);
  };
  gcn::fit_result fr;
  std::unique_ptr<gcn::history_trainer> htr;
  double pre_history = 0;
  if (o.method == "full") {
    gcn::full_trainer tr(ds, full, ds.train_idx, cfg.kind);
    fr = gcn::fit(
        net, fp, [&](auto& m, auto& opt) { return tr.epoch(m, opt, fp.seed); },
        [&](const auto& m) { return gcn::evaluate_full(m, ds, full, ds.val_idx); }, progress);
  } else if (hist) {
    gcn::history_train_params hp;
    hp.mode = *gcn::parse_history_mode(o.history);
    hp.budget = o.halo_budget;
    hp.partitions = o.partitions > 0 ? o.partitions : ranks > 1 ? ranks : o.workers;
    hp.threads = o.workers;
    hp.exchange = ex;
    hp.audit_every = o.staleness_report.empty() ? 0 : o.audit_every;
    hp.metis_seed = o.seed;
    hp.refresh_every = o.refresh_every;
    stopwatch th;
    htr = std::make_unique<gcn::history_trainer>(ds, train_store, full, cfg, hp, order);
    pre_history = th.seconds();
    if (ranks > 1)
      say("history %s: %d partition(s) on %d MPI ranks x %d thread(s), batches per worker",
          o.history.c_str(), hp.partitions, ranks, hp.threads);
    else
      say("history %s: %d partition(s) on %d thread(s), batches per worker", o.history.c_str(),
          hp.partitions, hp.threads);
    for (auto c : htr->worker_batches()) say(" %lld", static_cast<long long>(c));
    say(", halo budget %lld; setup %.2f s\n", static_cast<long long>(o.halo_budget), pre_history);
    std::fflush(stdout);
    auto& tr = *htr;
    fr = gcn::fit(
        net, fp, [&](auto& m, auto& opt) { return tr.epoch(m, opt, fp.seed); },
        [&](const auto& m) { return gcn::evaluate_store(m, val_store, ds, ds.val_idx); }, progress);
    // Every rank holds the same model now; the others have nothing left to do.
    if (g_quiet) return 0;
    if (!o.staleness_report.empty()) tr.monitor().write_csv(o.staleness_report);
  } else {
    gcn::store_trainer tr(ds, train_store, cfg.kind, order);
    fr = gcn::fit(
        net, fp, [&](auto& m, auto& opt) { return tr.epoch(m, opt, fp.seed); },
        [&](const auto& m) { return gcn::evaluate_store(m, val_store, ds, ds.val_idx); }, progress);
  }

  // Test: with the training method's batches (IBMB inference) and on the full graph.
  const auto test_full = gcn::evaluate_full(net, ds, full, ds.test_idx);
  double pre_test = 0;
  gcn::eval_result test_batched = test_full;
  if (o.method != "full") {
    const auto test_store = build_store(ds, ds.test_idx, o, norm, pre_test);
    test_batched = gcn::evaluate_store(net, test_store, ds, ds.test_idx);
  }
  if (!o.save_model.empty()) gcn::save_model(o.save_model, net, norm);

  double train_seconds = 0, audit_seconds = 0;
  for (const auto& e : fr.epochs) train_seconds += e.seconds;
  if (htr)  // audits run inside the epochs; they are not training time
    for (auto a : htr->audit_seconds()) audit_seconds += a;
  train_seconds -= audit_seconds;
  const double mean_epoch = train_seconds / static_cast<double>(fr.epochs.size());
  say("best epoch %lld: val %.4f; test %.4f (%s batches), %.4f (full graph); %.3f s/epoch\n",
      static_cast<long long>(fr.best_epoch + 1), fr.best_val_acc, test_batched.accuracy,
      o.method.c_str(), test_full.accuracy, mean_epoch);

  json_object pre;
  pre.add("train_batches_seconds", pre_train)
      .add("val_batches_seconds", pre_val)
      .add("schedule_seconds", pre_sched)
      .add("test_batches_seconds", pre_test)
      .add("full_graph_normalize_seconds", pre_full);
  json_object r;
  r.add("command", "train")
      .add("dataset", o.data)
      .add("method", o.method)
      .add("model", o.model)
      .add("seed", o.seed)
      .add("split", split)
      .add("norm", ibmb::to_string(norm))
      .add("hidden", o.hidden)
      .add("layers", o.layers)
      .add("lr", o.lr)
      .add("dropout", o.dropout)
      .add("max_epochs", o.epochs)
      .add("patience", o.patience)
      .add("min_epochs", o.min_epochs)
      .add("batch_size", o.plan.batch_size)
      .add("parts", static_cast<std::int64_t>(o.plan.parts))
      .add("load_seconds", load_seconds)
      .add("preprocess_seconds", o.method == "full" ? pre_full : pre_train + pre_val + pre_sched)
      .add("preprocess", pre)
      .add("epochs_run", static_cast<std::int64_t>(fr.epochs.size()))
      .add("stopped_early", fr.stopped_early)
      .add("best_epoch", fr.best_epoch)
      .add("best_val_accuracy", fr.best_val_acc)
      .add("time_to_best_seconds", fr.time_to_best)
      .add("train_seconds", train_seconds)
      .add("mean_epoch_seconds", mean_epoch)
      .add("test_accuracy", test_batched.accuracy)
      .add("test_inference_seconds", test_batched.seconds)
      .add("test_accuracy_full", test_full.accuracy)
      .add("test_full_inference_seconds", test_full.seconds)
      .add("total_seconds", total.seconds())
      .add("peak_rss_bytes", peak_rss_bytes());
  std::vector<std::pair<std::string, std::string>> extra;
  if (htr) {
    json_object h;
    h.add("mode", o.history)
        .add("workers", static_cast<std::int64_t>(o.workers))
        .add("partitions", static_cast<std::int64_t>(htr->worker_batches().size()))
        .add("mpi_ranks", static_cast<std::int64_t>(ranks))
        .add("halo_budget", o.halo_budget)
        .add("edge_cut", htr->edge_cut())
        .add("setup_seconds", pre_history)
        .add("audit_every", o.staleness_report.empty() ? std::int64_t{0} : o.audit_every)
        .add("audit_seconds", audit_seconds)
        .add("refresh_every", o.refresh_every)
        .add("uncovered_halo_nodes", htr->uncovered_halo_nodes())
        .add("halo_rows_read", htr->halo_rows_read())
        .add("never_written_reads", htr->never_written_reads());
    if (htr->sat() != nullptr) {
      const auto st = htr->sat()->state(0);
      h.add("sat_layer0_active", st.active)
          .add("sat_layer0_ema_error", st.ema_error)
          .add("sat_layer0_ema_identity_error", st.ema_identity_error);
    }
    const auto audits = json_array(htr->monitor().series(), [](const auto& a) {
      json_object j;
      j.add("epoch", a.epoch)
          .add("layer", a.layer)
          .add("cached_error", a.cached_error)
          .add("corrected_error", a.corrected_error)
          .add("rows", a.rows)
          .add("never_written", a.never_written)
          .add("mean_age", a.mean_age);
      return j;
    });
    extra.emplace_back("history", h.str());
    extra.emplace_back("audits", audits);
  }
  if (o.method != "full") {
    extra.emplace_back("train_store", store_json(train_store));
    extra.emplace_back("val_store", store_json(val_store));
  }
  const auto ep = json_array(fr.epochs, [](const auto& e) {
    json_object j;
    j.add("epoch", e.epoch)
        .add("loss", e.loss)
        .add("train_accuracy", e.train_acc)
        .add("val_loss", e.val_loss)
        .add("val_accuracy", e.val_acc)
        .add("lr", e.lr)
        .add("seconds", e.seconds)
        .add("val_seconds", e.val_seconds)
        .add("elapsed_seconds", e.elapsed);
    return j;
  });
  extra.emplace_back("epochs", ep);
  write_report(o.report, with_raw(r, extra));
  return 0;
}

/// ibmb train, as MPI ranks when built with MPI and started by mpirun with more than one
/// rank: an error on any rank is one line (rank 0's when it has one) and MPI_Abort, so no
/// rank is left waiting.
int run_train(const train_options& o) {
#ifdef IBMB_WITH_MPI
  if (gcn::launched_by_mpirun()) {
    gcn::mpi_session mpi;
    if (mpi.size() == 1) return run_train(o, nullptr);
    g_quiet = mpi.rank() != 0;
    try {
      gcn::mpi_worker_exchange ex(mpi);
      return run_train(o, &ex);
    } catch (const std::exception& e) {
      std::string msg = e.what();
      for (auto& ch : msg)
        if (ch == '\n' || ch == '\r') ch = ' ';
      // Let rank 0 report (and abort everyone) when it fails too.
      if (mpi.rank() != 0) std::this_thread::sleep_for(std::chrono::milliseconds(500));
      std::fprintf(stderr, "ibmb: error: %s%s\n",
                   mpi.rank() != 0 ? detail::concat("(rank ", mpi.rank(), ") ").c_str() : "",
                   msg.c_str());
      std::fflush(stderr);
      gcn::mpi_session::abort(2);
    }
  }
#endif
  return run_train(o, nullptr);
}

/// Batched inference on batches built for `nodes` with `o.method`, materialized in pieces of
/// at most `o.max_store_gb` (estimated: ids, labels, local CSR at the graph's mean degree,
/// float32 features); `pre` gets the planning + materialization time, `info` the store's
/// counts (summed over the pieces, with their number).
gcn::eval_result infer_built(const gcn::model<float>& net, const ibmb::dataset& ds,
                             std::span<const std::int64_t> nodes, const infer_options& o,
                             ibmb::normalization norm, double& pre, std::string& info) {
  stopwatch t;
  const auto [plan, mo] = plan_batches(ds, nodes, o, norm);
  const double mean_degree = ds.num_nodes() > 0 ? static_cast<double>(ds.graph.num_edges()) /
                                                      static_cast<double>(ds.num_nodes())
                                                : 0.0;
  const double row_bytes = 24.0 + 12.0 * (mean_degree + 1.0) + 4.0 * ds.num_features;
  const auto max_rows =
      o.max_store_gb > 0
          ? std::max<std::int64_t>(1, static_cast<std::int64_t>(o.max_store_gb * 1e9 / row_bytes))
          : std::numeric_limits<std::int64_t>::max();
  const auto bounds = ibmb::chunk_batches(plan, max_rows);
  pre = t.seconds();
  gcn::store_evaluator ev(net, ds);
  std::int64_t total_nodes = 0, total_edges = 0;
  for (std::size_t c = 0; c + 1 < bounds.size(); ++c) {
    stopwatch tm;
    // One piece: the plan itself (no copy).
    const auto s = bounds.size() == 2
                       ? ibmb::materialize(ds, plan, mo)
                       : ibmb::materialize(ds, plan.slice(bounds[c], bounds[c + 1]), mo);
    pre += tm.seconds();
    ev.add(s);
    total_nodes += s.total_nodes();
    total_edges += s.total_edges();
  }
  json_object j;
  j.add("batches", static_cast<std::int64_t>(plan.num_batches()))
      .add("nodes", total_nodes)
      .add("edges", total_edges)
      .add("outputs", static_cast<std::int64_t>(plan.num_outputs()))
      .add("pieces", static_cast<std::int64_t>(bounds.size() - 1));
  info = j.str();
  return ev.result(nodes);
}

int run_infer(const infer_options& o) {
  check_output_path("--report", o.report,
                    {dataset_path(o.data), std::filesystem::path(o.model_file),
                     std::filesystem::path(o.batches)});
  stopwatch total;
  const auto loaded = gcn::load_model(o.model_file);
  ibmb::dataset ds;
  const std::string split = load(o, ds);
  gcn::check_fits(loaded.net.config(), ds);
  const auto& nodes = split_nodes(ds, o.split);
  IBMB_EXPECTS(!nodes.empty(), "dataset '", o.data, "' has an empty ", o.split, " split");
  const auto norm = loaded.norm;  // the normalization the model was trained with
  double pre = 0;
  gcn::eval_result e;
  std::string store_info;
  if (o.method == "full") {
    stopwatch t;
    const auto full = gcn::make_full_graph(ds, norm);
    pre = t.seconds();
    e = gcn::evaluate_full(loaded.net, ds, full, nodes);
  } else {
    if (!o.batches.empty()) {
      stopwatch t;
      const auto s = open_store(o.batches, ds);
      check_infer_store(s, o.batches, ds, nodes, o.split);
      if (s.norm() != norm)
        throw ibmb::invalid_argument(detail::concat(
            "--batches ", o.batches, ": the store holds ", ibmb::to_string(s.norm()),
            "-normalized batches, the model was trained with --norm ", ibmb::to_string(norm),
            " (build the store with --norm ", ibmb::to_string(norm), ")"));
      pre = t.seconds();
      e = gcn::evaluate_store(loaded.net, s, ds, nodes);
      store_info = store_json(s);
    } else {
      e = infer_built(loaded.net, ds, nodes, o, norm, pre, store_info);
    }
  }
  std::printf(
      "%s inference on %s (%s, %zu nodes): accuracy %.4f in %.3f s (preprocessing %.3f s)\n",
      o.method.c_str(), o.split.c_str(), ds.name.c_str(), nodes.size(), e.accuracy, e.seconds, pre);
  if (e.missing > 0)
    std::printf("note: %lld nodes were in no batch and count as wrong\n",
                static_cast<long long>(e.missing));
  json_object r;
  r.add("command", "infer")
      .add("dataset", o.data)
      .add("method", o.method)
      .add("split", o.split)
      .add("split_source", split)
      .add("model_file", o.model_file)
      .add("model", gcn::to_string(loaded.net.config().kind))
      .add("norm", ibmb::to_string(norm))
      .add("seed", o.seed)
      .add("nodes", static_cast<std::int64_t>(nodes.size()))
      .add("accuracy", e.accuracy)
      .add("loss", e.loss)
      .add("correct", e.correct)
      .add("labelled", e.count)
      .add("missing", e.missing)
      .add("seconds", e.seconds)
      .add("preprocess_seconds", pre)
      .add("total_seconds", total.seconds())
      .add("peak_rss_bytes", peak_rss_bytes());
  std::vector<std::pair<std::string, std::string>> extra;
  if (!store_info.empty()) extra.emplace_back("store", store_info);
  write_report(o.report, with_raw(r, extra));
  return 0;
}

}  // namespace

void add_train_commands(CLI::App& app, command_list& cmds) {
  {
    auto o = std::make_shared<train_options>();
    auto* c = app.add_subcommand("train", "Train the reference GCN / GraphSAGE on batches");
    c->add_option("--data", o->data, "Dataset SPEC")->required();
    c->add_option("--method", o->method, "Training batches")
        ->check(CLI::IsMember({"nodewise", "batchwise", "cluster", "random", "full"}));
    c->add_option("--batches", o->batches, "Prebuilt training store (.ibmb)")
        ->check(CLI::ExistingFile);
    c->add_option("--model", o->model, "Architecture")->check(CLI::IsMember({"gcn", "sage"}));
    c->add_option("--epochs", o->epochs, "Maximum epochs (reference: 800)")
        ->check(CLI::Range(std::int64_t{1}, std::int64_t{100000}));
    c->add_option("--seed", o->seed, "Seed of the weights, dropout, METIS and batch order")
        ->check(non_negative());
    c->add_option("--report", o->report, "JSON report (written atomically)")->required();
    c->add_option("--save-model", o->save_model, "Write the best weights (.npz)");
    c->add_option("--hidden", o->hidden, "Hidden width")
        ->check(CLI::Range(std::int64_t{1}, std::int64_t{65536}));
    c->add_option("--layers", o->layers, "Conv layers (then one Linear)")
        ->check(CLI::Range(std::int64_t{1}, std::int64_t{16}));
    c->add_option("--lr", o->lr, "Adam learning rate")->check(CLI::Range(1e-8, 10.0));
    c->add_option("--dropout", o->dropout, "Dropout probability")->check(CLI::Range(0.0, 0.99));
    c->add_option("--patience", o->patience,
                  "Early stopping: epochs without a better val accuracy (reference: 100)")
        ->check(positive());
    c->add_option("--min-epochs", o->min_epochs,
                  "No early stop before this many epochs (reference: 300)")
        ->check(non_negative());
    auto* norm =
        c->add_option(
             "--norm", o->norm,
             "Adjacency normalization of the batches AND the full graph (row = D^-1 (A+I); "
             "saved with the model, used by infer; default with --batches: the store's)")
            ->check(CLI::IsMember({"row", "symmetric", "none"}));
    c->add_option("--history", o->history,
                  "Historical embeddings for the halo: none (dropped, pure IBMB), cache "
                  "(GNNAutoScale), retransform, momentum, sat (SAT predictor)")
        ->check(CLI::IsMember({"none", "cache", "retransform", "momentum", "sat"}));
    c->add_option("--workers", o->workers, "Worker threads, each owning METIS partitions")
        ->check(CLI::Range(1, 256));
    c->add_option("--partitions", o->partitions,
                  "Logical workers / METIS parts (default: --workers); results depend on this, "
                  "not on --workers")
        ->check(CLI::Range(0, 4096));
    c->add_option("--halo-budget", o->halo_budget,
                  "Halo nodes per batch by edge weight (-1 = all neighbours)")
        ->check(CLI::Range(std::int64_t{-1}, std::numeric_limits<std::int64_t>::max()));
    auto* audit = c->add_option("--audit-every", o->audit_every,
                                "Exact staleness audit every k epochs (needs --staleness-report)")
                      ->check(CLI::Range(std::int64_t{1}, std::int64_t{1000000}));
    c->add_option("--refresh-every", o->refresh_every,
                  "Forward-only refresh of halo rows no training batch contains, every k epochs "
                  "(0 = never: they read as zeros)")
        ->check(CLI::Range(std::int64_t{0}, std::int64_t{1000000}));
    c->add_option("--staleness-report", o->staleness_report,
                  "CSV of the staleness audits (epoch,layer,cached_error,corrected_error,...)");
    add_plan_flags(c, *o);
    cmds.push_back({c, [o, audit, norm] {
                      if (audit->count() > 0 && o->staleness_report.empty())
                        throw ibmb::invalid_argument(
                            "--audit-every needs --staleness-report (the audits go there)");
                      o->norm_given = norm->count() > 0;
                      return run_train(*o);
                    }});
  }
  {
    auto o = std::make_shared<infer_options>();
    auto* c = app.add_subcommand("infer", "Evaluate a trained model full-graph or on batches");
    c->add_option("--data", o->data, "Dataset SPEC")->required();
    c->add_option("--model", o->model_file, "Model file written by ibmb train --save-model")
        ->required()
        ->check(CLI::ExistingFile);
    c->add_option("--method", o->method, "Inference batches")
        ->check(CLI::IsMember({"full", "nodewise", "batchwise", "cluster", "random", "khop"}));
    c->add_option("--batches", o->batches, "Prebuilt store for the split (.ibmb)")
        ->check(CLI::ExistingFile);
    c->add_option("--split", o->split, "Nodes to score")
        ->check(CLI::IsMember({"train", "val", "valid", "test"}));
    c->add_option("--seed", o->seed, "Seed of METIS and random batches")->check(non_negative());
    c->add_option("--report", o->report, "JSON report (written atomically)")->required();
    c->add_option("--max-store-gb", o->max_store_gb,
                  "Batches built on the fly are materialized in pieces of at most this many GB "
                  "(estimated; 0 = all at once)")
        ->check(non_negative());
    add_plan_flags(c, *o);
    cmds.push_back({c, [o] {
                      if (o->method == "full" && !o->batches.empty())
                        throw ibmb::invalid_argument(
                            "--batches needs a batched --method (not full)");
                      return run_infer(*o);
                    }});
  }
}

}  // namespace ibmb::cli
