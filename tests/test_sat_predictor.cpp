// history/: correctors (identity, momentum, re-transform, callback), the SAT predictor and the
// staleness monitor on synthetic drifting embeddings.
#include <array>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "fixtures.hpp"
#include "ibmb/core/parallel.hpp"
#include "ibmb/history/corrector.hpp"
#include "ibmb/history/monitor.hpp"
#include "ibmb/history/predictor.hpp"
#include "ibmb/history/store.hpp"

using namespace ibmb;

namespace {

enum class drift_kind { linear, random_walk };

struct sim_result {
  double identity = 0, momentum = 0, sat = 0;  ///< summed squared error vs the exact rows
  std::vector<double> coef;
  std::vector<float> last_sat_rows;
  bool sat_active = false;
  std::int64_t active_reads = 0, reads = 0;
  std::int64_t pairs = 0, events = 0;  ///< SAT's learning counters
  std::vector<audit_record> audits;
};

// N nodes in B batches (node u in batch u % B); every step a random batch is read as the halo
// of another random batch and then the visited batch pushes its exact rows. Truth:
//   linear:       x_u(t) = base_u + t * vel_u + noise (fresh noise at every computation)
//   random walk:  x_u(t) = x_u(t-1) + noise (no trend: keeping the cached value is optimal)
sim_result simulate(drift_kind kind, std::uint64_t seed, int threads = 0, bool audit = false,
                    sat_params sp = {}) {
  scoped_threads st(threads);
  const std::int64_t N = 120, D = 6, B = 6;
  const int steps = 400, warm = 60;
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> nd;
  std::vector<float> base(N * D), vel(N * D), walk(N * D);
  for (auto& x : base) x = nd(rng);
  for (auto& x : vel) x = 0.05f * nd(rng);
  for (auto& x : walk) x = nd(rng);
  const float noise = kind == drift_kind::linear ? 0.02f : 0.05f;
  auto truth = [&](std::int64_t u, std::int64_t j, std::int64_t t) {
    return kind == drift_kind::linear ? base[u * D + j] + static_cast<float>(t) * vel[u * D + j]
                                      : walk[u * D + j];
  };
  history_store store({N, {D}, 3, std::nullopt, false});
  sat_predictor sat(sp);
  momentum_corrector mom;
  identity_corrector id;
  staleness_monitor mon;
  std::array<history_observer*, 2> obs = {&sat, &mon};
  sim_result res;
  std::vector<std::vector<std::int64_t>> batch(B);
  for (std::int64_t u = 0; u < N; ++u) batch[u % B].push_back(u);
  for (std::int64_t t = 0; t < steps; ++t) {
    if (kind == drift_kind::random_walk)
      for (auto& x : walk) x += noise * nd(rng);
    const auto b = static_cast<std::size_t>(rng() % B);
    const auto h = static_cast<std::size_t>(rng() % B);
    const auto& halo = batch[h];
    const bool do_audit = audit && t >= warm && t % 50 == 0;
    if (t >= warm && h != b) {
      std::vector<float> cached(halo.size() * D), o_id(cached.size()), o_mom(cached.size()),
          o_sat(cached.size());
      read_halo(store, id, 0, t, halo, cached, o_id);
      read_halo(store, mom, 0, t, halo, cached, o_mom);
      read_halo(store, sat, 0, t, halo, cached, o_sat);
      for (std::size_t i = 0; i < halo.size(); ++i)
        for (std::int64_t j = 0; j < D; ++j) {
          const double e = truth(halo[i], j, t);
          auto sq = [&](float x) { return (x - e) * (x - e); };
          res.identity += sq(o_id[i * D + j]);
          res.momentum += sq(o_mom[i * D + j]);
          res.sat += sq(o_sat[i * D + j]);
        }
      ++res.reads;
      res.active_reads += sat.active(0);
      res.last_sat_rows = o_sat;
      if (do_audit) {
        auto& shadow = mon.begin_audit(store, t / 50, t);
        std::vector<float> exact(halo.size() * D);
        for (std::size_t i = 0; i < halo.size(); ++i)
          for (std::int64_t j = 0; j < D; ++j) exact[i * D + j] = truth(halo[i], j, t);
        shadow.push(0, halo, exact, t);
        mon.audit_rows(store, 0, halo, cached, o_sat);
        mon.end_audit();
      }
    }
    std::vector<float> fresh(batch[b].size() * D);
    for (std::size_t i = 0; i < batch[b].size(); ++i)
      for (std::int64_t j = 0; j < D; ++j)
        fresh[i * D + j] =
            truth(batch[b][i], j, t) + (kind == drift_kind::linear ? noise * nd(rng) : 0.0f);
    store.push(0, batch[b], fresh, t, obs);
  }
  res.coef = sat.state(0).coef;
  res.pairs = sat.state(0).pairs;
  res.events = sat.state(0).events;
  res.sat_active = sat.active(0);
  res.audits = mon.series();
  return res;
}

}  // namespace

TEST_CASE("momentum and SAT beat identity on linear drift", "[sat]") {
  const auto r = simulate(drift_kind::linear, 11);
  INFO("identity " << r.identity << " momentum " << r.momentum << " sat " << r.sat);
  REQUIRE(r.identity > 0);
  REQUIRE(r.momentum < 0.5 * r.identity);
  REQUIRE(r.sat < 0.5 * r.identity);
  REQUIRE(r.sat_active);
  // The velocity coefficients sum to about 1 (x0 + age * velocity is exact; with noisy rows
  // the fit averages the K velocity estimates).
  INFO("coef " << r.coef[0] << " " << r.coef[1] << " " << r.coef[2] << " " << r.coef[3]);
  REQUIRE(r.coef[0] + r.coef[1] + r.coef[2] == Approx(1.0).margin(0.2));
}

TEST_CASE("SAT's gate falls back to identity when drift has no trend", "[sat]") {
  const auto r = simulate(drift_kind::random_walk, 12);
  INFO("identity " << r.identity << " sat " << r.sat << " active reads " << r.active_reads << " of "
                   << r.reads);
  REQUIRE(r.identity > 0);
  REQUIRE(r.sat <= 1.02 * r.identity);
  REQUIRE(r.active_reads * 4 < r.reads);  // mostly closed
}

TEST_CASE("SAT is deterministic for a seed and any thread count", "[sat]") {
  const auto a = simulate(drift_kind::linear, 21, 1);
  const auto b = simulate(drift_kind::linear, 21, 2);
  const auto c = simulate(drift_kind::linear, 21, 2);
  REQUIRE(a.coef == b.coef);
  REQUIRE(a.last_sat_rows == b.last_sat_rows);
  REQUIRE(b.sat == c.sat);
  REQUIRE(simulate(drift_kind::linear, 22).coef != a.coef);
}

TEST_CASE("SAT fits on a strided subset of a write's rows when max_fit_rows is set", "[sat]") {
  sat_params all, few;
  all.max_fit_rows = 0;
  few.max_fit_rows = 5;  // every batch has 20 rows
  const auto a = simulate(drift_kind::linear, 11, 0, false, all);
  const auto f1 = simulate(drift_kind::linear, 11, 1, false, few);
  const auto f2 = simulate(drift_kind::linear, 11, 2, false, few);
  REQUIRE(f1.events == a.events);
  REQUIRE(a.pairs >= 3 * f1.pairs);  // 20 rows vs at most 5 per event
  REQUIRE(f1.pairs <= 5 * f1.events);
  REQUIRE(f1.coef != a.coef);   // the subset is what the fit saw
  REQUIRE(f1.coef == f2.coef);  // deterministic for any thread count
  REQUIRE(f1.last_sat_rows == f2.last_sat_rows);
  INFO("identity " << f1.identity << " sat(all) " << a.sat << " sat(5 rows) " << f1.sat);
  REQUIRE(f1.sat < 0.5 * f1.identity);  // 5 rows x 6 dims still fit 4 coefficients
  // A limit above every write's size changes nothing.
  sat_params big;
  big.max_fit_rows = 1000;
  REQUIRE(simulate(drift_kind::linear, 11, 0, false, big).coef == a.coef);
}

TEST_CASE("correctors never modify the store", "[sat]") {
  const std::int64_t N = 30, D = 4;
  std::mt19937_64 rng(3);
  std::normal_distribution<float> nd;
  history_store store({N, {D}, 2, std::nullopt, false});
  sat_predictor sat({.gate = sat_gate::always});
  std::array<history_observer*, 1> obs = {&sat};
  std::vector<std::int64_t> all(N);
  for (std::int64_t i = 0; i < N; ++i) all[i] = i;
  for (std::int64_t t = 0; t < 5; ++t) {
    std::vector<float> rows(N * D);
    for (auto& x : rows) x = nd(rng) + static_cast<float>(t);
    store.push(0, all, rows, 2 * t, obs);
  }
  const history_store before = store;
  std::vector<float> cached(N * D), out(N * D), drift(N * D, 0.5f);
  identity_corrector id;
  momentum_corrector mom;
  callback_corrector cb("half",
                        [](const read_context&, std::span<const float> c, std::span<float> o) {
                          for (std::size_t i = 0; i < c.size(); ++i) o[i] = 0.5f * c[i];
                        });
  for (corrector* c : std::array<corrector*, 4>{&id, &mom, &sat, &cb}) {
    read_halo(store, *c, 0, 20, all, cached, out, drift);
    REQUIRE(store == before);
  }
  REQUIRE(out[3] == 0.5f * cached[3]);
  sat.predict({&store, 0, 20, all, {}}, cached, out);
  REQUIRE(store == before);
  REQUIRE(out != cached);  // the prediction moved the rows (in the caller's buffer only)
}

TEST_CASE("momentum corrector matches its formula", "[sat]") {
  history_store s({3, {2}, 1, std::nullopt, false});
  const std::vector<std::int64_t> nodes = {0, 1};
  s.push(0, nodes, std::vector<float>{1, 2, 5, 5}, 0);
  s.push(0, std::vector<std::int64_t>{0}, std::vector<float>{3, 1}, 4);
  std::vector<float> cached(4), out(4);
  momentum_corrector plain({.beta = 0.5, .age_scaled = false});
  read_halo(s, plain, 0, 10, nodes, cached, out);
  REQUIRE(out == std::vector<float>{3 + 0.5f * 2, 1 + 0.5f * -1, 5, 5});  // node 1: no ring
  momentum_corrector scaled({.beta = 1.0, .age_scaled = true});
  read_halo(s, scaled, 0, 10, nodes, cached, out);  // age 6, gap 4
  REQUIRE(out[0] == Approx(3 + 1.5 * 2));
  REQUIRE(out[1] == Approx(1 + 1.5 * -1));
}

TEST_CASE("re-transform applies the current weights to the cached aggregation", "[sat]") {
  const std::int64_t N = 5, Din = 3, Dout = 2;
  history_store s({N, {Din}, 0, std::nullopt, false});
  const std::vector<std::int64_t> nodes = {4, 1};
  const std::vector<float> agg = {1, -2, 0.5f, 0, 1, -1};
  s.push(0, nodes, agg, 1);
  retransform_corrector rt;
  std::vector<float> cached(nodes.size() * Din), out(nodes.size() * Dout);
  REQUIRE_THROWS_AS(read_halo(s, rt, 0, 3, nodes, cached, out), invalid_argument);
  const std::vector<float> W = {1, 2, 3, 4, 5, 6}, bias = {0.5f, -10};  // 3 x 2 row-major
  for (bool relu : {false, true}) {
    rt.set_weights(0, W, Din, Dout, bias, relu);
    REQUIRE(rt.output_dim(0, Din) == Dout);
    read_halo(s, rt, 0, 3, nodes, cached, out);
    for (std::size_t i = 0; i < nodes.size(); ++i)
      for (std::int64_t k = 0; k < Dout; ++k) {
        double y = bias[k];
        for (std::int64_t j = 0; j < Din; ++j) y += agg[i * Din + j] * W[j * Dout + k];
        if (relu) y = std::max(y, 0.0);
        REQUIRE(out[i * Dout + k] == Approx(y));
      }
  }
}

TEST_CASE("staleness monitor: drift buckets and audits against brute force", "[sat]") {
  const std::int64_t N = 8, D = 3;
  history_store live({N, {D, 2}, 0, std::nullopt, false});
  staleness_monitor mon({.age_edges = {1, 3}});
  std::array<history_observer*, 1> obs = {&mon};
  const std::vector<std::int64_t> a = {0, 1, 2, 3}, b = {2, 3, 4};
  std::vector<float> r1(a.size() * D), r2(b.size() * D);
  for (std::size_t i = 0; i < r1.size(); ++i) r1[i] = static_cast<float>(i) * 0.5f;
  for (std::size_t i = 0; i < r2.size(); ++i) r2[i] = static_cast<float>(i) - 2.0f;
  live.push(0, a, r1, 0, obs);
  live.push(0, std::vector<std::int64_t>{0}, std::vector<float>{9, 9, 9}, 1, obs);  // age 1
  live.push(0, b, r2, 5, obs);  // nodes 2, 3: age 5; node 4 new
  const auto dr = mon.drift(0);
  REQUIRE(dr.size() == 3);
  REQUIRE(dr[0].rows == 1);
  REQUIRE(dr[1].rows == 0);
  REQUIRE(dr[2].rows == 2);
  REQUIRE(dr[2].age_lo == 4);
  double want0 = 0;
  for (int j = 0; j < 3; ++j) want0 += (9 - r1[j]) * (9 - r1[j]) / 3.0;
  REQUIRE(dr[0].mean_sq_delta == Approx(want0));
  double want2 = 0;
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 3; ++j) {
      const double x = r2[i * 3 + j] - r1[(2 + i) * 3 + j];
      want2 += x * x / 3.0 / 2.0;
    }
  REQUIRE(dr[2].mean_sq_delta == Approx(want2));

  // Audit: exact rows in the shadow store, never in the live one.
  const history_store before = live;
  const std::vector<std::int64_t> read = {0, 3, 6};  // node 6 never written in live
  std::vector<float> cached(read.size() * D), corrected(read.size() * D), exact(read.size() * D);
  live.pull(0, read, cached);
  std::mt19937_64 rng(9);
  std::normal_distribution<float> nd;
  for (auto& x : exact) x = nd(rng);
  for (std::size_t i = 0; i < corrected.size(); ++i) corrected[i] = 0.5f * (cached[i] + exact[i]);
  auto& shadow = mon.begin_audit(live, 7, 9);
  REQUIRE(&shadow != &live);
  shadow.push(0, read, exact, 9);
  REQUIRE_THROWS_AS(mon.audit_rows(live, 0, std::vector<std::int64_t>{5}, std::vector<float>(3),
                                   std::vector<float>(3)),
                    invalid_argument);
  mon.audit_rows(live, 0, read, cached, corrected);
  const auto rec = mon.end_audit();
  REQUIRE(live == before);
  REQUIRE(rec.size() == 1);
  double ec = 0, ek = 0, ee = 0;
  for (std::size_t i = 0; i < exact.size(); ++i) {
    ec += (cached[i] - exact[i]) * (cached[i] - exact[i]);
    ek += (corrected[i] - exact[i]) * (corrected[i] - exact[i]);
    ee += exact[i] * exact[i];
  }
  REQUIRE(rec[0].epoch == 7);
  REQUIRE(rec[0].rows == 3);
  REQUIRE(rec[0].never_written == 1);
  REQUIRE(rec[0].mean_age == Approx((8.0 + 4.0) / 2));
  REQUIRE(rec[0].cached_error == Approx(std::sqrt(ec / ee)));
  REQUIRE(rec[0].corrected_error == Approx(std::sqrt(ek / ee)));
  REQUIRE(rec[0].corrected_error == Approx(0.5 * rec[0].cached_error));
  // A second audit starts from an empty shadow store.
  mon.begin_audit(live, 8, 10);
  REQUIRE(mon.shadow().rows_written(0) == 0);
  mon.end_audit();
  REQUIRE(mon.series().size() == 1);

  const auto dir = test::scratch_dir("monitor_csv");
  mon.write_csv(dir / "s.csv");
  std::ifstream in(dir / "s.csv");
  std::string header, line;
  std::getline(in, header);
  REQUIRE(header.rfind("epoch,layer,cached_error,corrected_error", 0) == 0);
  std::getline(in, line);
  std::stringstream ss(line);
  std::string cell;
  std::vector<std::string> cells;
  while (std::getline(ss, cell, ',')) cells.push_back(cell);
  REQUIRE(cells.size() == 8);
  REQUIRE(cells[0] == "7");
  REQUIRE(std::stod(cells[2]) == Approx(rec[0].cached_error));
  REQUIRE(std::stod(cells[3]) == Approx(rec[0].corrected_error));
  REQUIRE_FALSE(std::getline(in, line));
}

TEST_CASE("SAT's corrected rows cut the audited staleness error on linear drift", "[sat]") {
  const auto r = simulate(drift_kind::linear, 31, 0, true);
  REQUIRE(r.audits.size() >= 4);
  double c = 0, k = 0;
  for (const auto& a : r.audits) {
    c += a.cached_error;
    k += a.corrected_error;
  }
  INFO("mean cached " << c / r.audits.size() << " corrected " << k / r.audits.size());
  REQUIRE(k < 0.8 * c);
}
