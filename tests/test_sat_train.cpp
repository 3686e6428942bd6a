// The history trainer (examples/gcn/include/gcn/history_train.hpp) and `ibmb train --history`:
// budget 0 is the plain batched trainer; with every neighbour as halo and frozen weights the
// cached rows become the exact full-graph activations and the batched logits the full-graph
// logits (GNNAutoScale's exactness); the staleness CSV; 1 vs 2 worker threads; CLI errors.
#include <sys/wait.h>

#include <array>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <sstream>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "../examples/gcn/include/gcn/history_train.hpp"
#include "cli_runner.hpp"
#include "fixtures.hpp"
#include "ibmb/batch/materialize.hpp"
#include "ibmb/batch/nodewise.hpp"
#include "ibmb/graph/build.hpp"
#include "ibmb/graph/io/load.hpp"

namespace {

struct setup {
  ibmb::dataset ds;
  gcn::full_graph full;
  ibmb::batch_store store;
};

/// A synthetic graph, preprocessed as the CLI does, with node-wise batches for `outputs`
/// (empty: the training split).
setup make_setup(std::int64_t max_outputs, bool all_outputs, std::int64_t topk = 4) {
  setup s;
  s.ds = ibmb::load_dataset("synthetic:nodes=400,avg_degree=6,classes=3,features=8,seed=5");
  s.ds.graph = ibmb::make_undirected_with_self_loops(s.ds.graph.view());
  gcn::random_split(s.ds, 0.3, 0.1, 1);
  if (all_outputs) {
    s.ds.train_idx.resize(static_cast<std::size_t>(s.ds.num_nodes()));
    std::iota(s.ds.train_idx.begin(), s.ds.train_idx.end(), 0);
  }
  s.full = gcn::make_full_graph(s.ds, ibmb::normalization::row);
  ibmb::nodewise_params np;
  np.merge.max_outputs = max_outputs;
  np.ppr.topk = topk;
  ibmb::materialize_options mo;
  mo.norm = ibmb::normalization::row;
  s.store = ibmb::materialize(
      s.ds,
      ibmb::nodewise_plan(s.ds.graph.view(), std::span<const std::int64_t>(s.ds.train_idx), np),
      mo);
  return s;
}

gcn::model_config config_of(const ibmb::dataset& ds, std::int64_t layers, double dropout) {
  gcn::model_config c;
  c.in = ds.num_features;
  c.classes = ds.num_classes();
  c.hidden = 12;
  c.layers = layers;
  c.dropout = dropout;
  return c;
}

bool same_params(const gcn::model<float>& a, const gcn::model<float>& b) {
  for (std::size_t k = 0; k < a.params().size(); ++k)
    if (!std::equal(a.params()[k].data(), a.params()[k].data() + a.params()[k].size(),
                    b.params()[k].data()))
      return false;
  return true;
}

}  // namespace

TEST_CASE("sat: halo budget 0 is the plain batched trainer", "[sat]") {
  auto s = make_setup(40, false);
  REQUIRE(s.store.num_batches() >= 3);
  const auto c = config_of(s.ds, 2, 0.5);
  const auto mode =
      GENERATE(gcn::history_mode::none, gcn::history_mode::cache, gcn::history_mode::sat);
  gcn::model<float> a(c, 3), b(c, 3);
  gcn::adam<float> oa(1e-2), ob(1e-2);
  gcn::store_trainer plain(s.ds, s.store, c.kind, {});
  gcn::history_train_params hp;
  hp.mode = mode;
  hp.budget = 0;
  gcn::history_trainer hist(s.ds, s.store, s.full, c, hp);
  for (int e = 0; e < 4; ++e) {
    const auto la = plain.epoch(a, oa, 11);
    const auto lb = hist.epoch(b, ob, 11);
    CHECK(la.loss == lb.loss);
    CHECK(la.correct == lb.correct);
  }
  CHECK(same_params(a, b));
  CHECK(hist.halo_rows_read() == 0);
}

TEST_CASE("sat: all neighbours as halo and frozen weights give the full-graph logits", "[sat]") {
  auto s = make_setup(50, true, 3);
  const std::int64_t layers = GENERATE(2, 3);
  const auto mode =
      GENERATE(gcn::history_mode::cache, gcn::history_mode::retransform, gcn::history_mode::sat);
  const auto c = config_of(s.ds, layers, 0.0);
  gcn::model<float> m(c, 7);
  // Full-graph reference, computed by the plain forward pass on the whole graph.
  std::vector<std::int64_t> all(static_cast<std::size_t>(s.ds.num_nodes()));
  std::iota(all.begin(), all.end(), 0);
  const auto p = gcn::make_propagation(s.full.ref(), c.kind, all, false, false);
  gcn::forward_cache<float> fc;
  const gcn::const_map<float> x(s.ds.features.data(), s.ds.num_nodes(), s.ds.num_features);
  const gcn::matrix<float> exact = gcn::forward<float>(m, x, p, false, {}, fc);

  auto max_error = [&](gcn::history_trainer& tr, std::int64_t step) {
    double err = 0, scale = 0;
    for (std::size_t b = 0; b < s.store.num_batches(); ++b) {
      const auto out = s.store.batch(b).output_ids();
      const auto lg = tr.logits(m, b, step);
      REQUIRE(lg.rows() == static_cast<std::int64_t>(out.size()));
      for (std::size_t i = 0; i < out.size(); ++i)
        for (std::int64_t j = 0; j < lg.cols(); ++j) {
          err = std::max<double>(err,
                                 std::abs(lg(static_cast<std::int64_t>(i), j) - exact(out[i], j)));
          scale = std::max<double>(scale, std::abs(exact(out[i], j)));
        }
    }
    return err / scale;
  };

  gcn::history_train_params hp;
  hp.mode = mode;
  hp.budget = -1;
  hp.sat.gate = ibmb::sat_gate::never;  // frozen weights: nothing to extrapolate
  gcn::history_trainer tr(s.ds, s.store, s.full, c, hp);
  REQUIRE(tr.plan().at(0, 0).num_halo() > 0);
  gcn::adam<float> frozen(0.0);
  for (std::int64_t e = 0; e < layers - 1; ++e) tr.epoch(m, frozen, 0);
  // The cached rows are the exact activations (a different computation: the whole graph).
  if (mode != gcn::history_mode::retransform) {
    double diff = 0;
    for (std::int64_t v = 0; v < s.ds.num_nodes(); ++v) {
      const auto row = tr.store().row(0, v);
      for (std::int64_t j = 0; j < c.hidden; ++j)
        diff = std::max<double>(diff, std::abs(row[static_cast<std::size_t>(j)] - fc.act[0](v, j)));
    }
    CHECK(diff < 1e-5);
  }
  const double with_halo = max_error(tr, frozen.steps());
  INFO("layers " << layers << ", mode " << gcn::to_string(mode));
  CHECK(with_halo < 1e-5);
  // Without the halo the batches differ from the full graph (the check above can fail).
  hp.budget = 0;
  gcn::history_trainer dropped(s.ds, s.store, s.full, c, hp);
  CHECK(max_error(dropped, 0) > 1e-3);
}

TEST_CASE("sat: staleness CSV has the header and one row per audit and layer", "[sat]") {
  auto s = make_setup(40, false);
  const auto c = config_of(s.ds, 3, 0.5);
  gcn::history_train_params hp;
  hp.mode = gcn::history_mode::sat;
  hp.audit_every = 2;
  hp.refresh_every = 1;
  gcn::history_trainer tr(s.ds, s.store, s.full, c, hp);
  gcn::model<float> m(c, 1);
  gcn::adam<float> opt(1e-2);
  for (int e = 0; e < 6; ++e) tr.epoch(m, opt, 0);
  const auto dir = ibmb::test::scratch_dir("sat_csv");
  tr.monitor().write_csv(dir / "s.csv");
  std::ifstream f(dir / "s.csv");
  std::string line;
  std::getline(f, line);
  CHECK(line.rfind("epoch,layer,cached_error,corrected_error", 0) == 0);
  std::vector<std::string> rows;
  while (std::getline(f, line)) rows.push_back(line);
  REQUIRE(rows.size() == 6);  // audits after epochs 2, 4, 6 x cached layers 0, 1
  CHECK(rows[0].rfind("2,0,", 0) == 0);
  CHECK(rows[1].rfind("2,1,", 0) == 0);
  CHECK(rows[5].rfind("6,1,", 0) == 0);
  for (const auto& r : tr.monitor().series()) {
    CHECK(r.never_written == 0);  // refreshes cover halo rows no batch contains
    CHECK(r.cached_error > 0);    // weights moved: the cache is stale
    CHECK(r.cached_error < 1);
  }
  CHECK(tr.audit_seconds().size() == 6);
}

TEST_CASE("sat: results do not depend on the number of worker threads", "[sat]") {
  auto s = make_setup(25, false);
  const auto c = config_of(s.ds, 2, 0.5);
  const auto mode = GENERATE(gcn::history_mode::sat, gcn::history_mode::retransform);
  auto run = [&](int threads, std::vector<double>& losses) {
    gcn::history_train_params hp;
    hp.mode = mode;
    hp.partitions = 2;
    hp.threads = threads;
    hp.audit_every = 2;
    hp.refresh_every = 2;
    gcn::history_trainer tr(s.ds, s.store, s.full, c, hp);
    const auto wb = tr.worker_batches();
    CHECK(wb.size() == 2);
    CHECK(wb[0] + wb[1] == static_cast<std::int64_t>(s.store.num_batches()));
    gcn::model<float> m(c, 4);
    gcn::adam<float> opt(1e-2);
    for (int e = 0; e < 4; ++e) losses.push_back(tr.epoch(m, opt, 5).loss);
    std::vector<double> errs;
    for (const auto& r : tr.monitor().series()) errs.push_back(r.corrected_error);
    return std::make_pair(m, errs);
  };
  std::vector<double> l1, l2;
  const auto a = run(1, l1);
  const auto b = run(2, l2);
  CHECK(l1 == l2);
  CHECK(same_params(a.first, b.first));
  CHECK(a.second == b.second);
  CHECK(a.second.size() == 2);
}

#ifdef IBMB_CLI_PATH
namespace {
using ibmb::test::run_cli;
}  // namespace

TEST_CASE("sat: ibmb train --history rejects bad input with one line and exit code 2",
          "[sat][cli]") {
  const auto dir = ibmb::test::scratch_dir("sat_cli");
  const std::string base = std::string(
                               "train --data synthetic:nodes=300,avg_degree=5,classes=3,"
                               "features=6,seed=2 --report ") +
                           (dir / "r.json").string();
  const std::string csv = " --staleness-report " + (dir / "s.csv").string();
  const std::string cases[] = {
      base + " --history magic",
      base + " --history sat --epochs 2 --refresh-every -1",
      base + " --history sat --workers 0",
      base + " --history sat --workers x",
      base + " --history sat --method full",
      base + " --history sat --model sage",
      base + csv,             // report without --history
      base + " --workers 2",  // workers without --history
      base + " --history cache --audit-every 0" + csv,
      base + " --history cache --halo-budget -2",
      base + " --history cache --layers 1" + csv,  // no cached layer to audit
  };
  for (const auto& a : cases) {
    const auto [code, out] = run_cli(a);
    INFO(a << "\n" << out);
    CHECK(code == 2);
    CHECK(std::count(out.begin(), out.end(), '\n') == 1);
    CHECK(out.find("error") != std::string::npos);
  }
  // A good run writes the CSV (header + one row per audit and layer) and the report.
  const auto [code, out] =
      run_cli(base + " --history sat --workers 2 --epochs 4 --audit-every 2" + csv);
  INFO(out);
  REQUIRE(code == 0);
  std::ifstream f(dir / "s.csv");
  std::string line;
  std::getline(f, line);
  CHECK(line.rfind("epoch,layer,cached_error,corrected_error", 0) == 0);
  int n = 0;
  while (std::getline(f, line)) ++n;
  CHECK(n == 2);
  std::stringstream rep;
  rep << std::ifstream(dir / "r.json").rdbuf();
  CHECK(rep.str().find("\"history\"") != std::string::npos);
  CHECK(rep.str().find("\"audits\"") != std::string::npos);
}
#endif
