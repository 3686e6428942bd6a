// The reference GCN of examples/gcn: gradients vs central finite differences (double
// precision), LayerNorm / Adam / ReduceLROnPlateau vs hand computations, checkpoint round
// trip, thread-count determinism, and a short end-to-end run on Cora.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <vector>

#include <catch2/catch.hpp>

#include "../examples/gcn/include/gcn/checkpoint.hpp"
#include "../examples/gcn/include/gcn/train.hpp"
#include "fixtures.hpp"
#include "ibmb/batch/materialize.hpp"
#include "ibmb/batch/nodewise.hpp"
#include "ibmb/graph/build.hpp"
#include "ibmb/graph/io/load.hpp"

namespace {

// A small undirected graph with self-loops (random, seeded) as an owned CSR with row-normalized
// weights.
struct small_graph {
  std::int64_t n = 0;
  std::vector<std::int64_t> indptr{0}, indices;
  std::vector<float> weights;
  [[nodiscard]] gcn::sparse_ref ref() const {
    return {n, n, indptr.data(), indices.data(), weights.data()};
  }
};

small_graph random_graph(std::int64_t n, std::uint64_t seed) {
  std::vector<std::vector<std::int64_t>> adj(static_cast<std::size_t>(n));
  for (std::int64_t v = 0; v < n; ++v) adj[static_cast<std::size_t>(v)].push_back(v);
  std::uint64_t s = seed;
  for (std::int64_t k = 0; k < 2 * n; ++k) {
    const auto a = static_cast<std::int64_t>(gcn::mix64(++s) % static_cast<std::uint64_t>(n));
    const auto b = static_cast<std::int64_t>(gcn::mix64(++s) % static_cast<std::uint64_t>(n));
    if (a == b) continue;
    adj[static_cast<std::size_t>(a)].push_back(b);
    adj[static_cast<std::size_t>(b)].push_back(a);
  }
  small_graph g;
  g.n = n;
  for (auto& row : adj) {
    std::sort(row.begin(), row.end());
    row.erase(std::unique(row.begin(), row.end()), row.end());
    for (auto c : row) {
      g.indices.push_back(c);
      g.weights.push_back(1.0f / static_cast<float>(row.size()));
    }
    g.indptr.push_back(static_cast<std::int64_t>(g.indices.size()));
  }
  return g;
}

template <class T>
gcn::matrix<T> random_matrix(std::int64_t r, std::int64_t c, std::uint64_t seed) {
  gcn::matrix<T> m(r, c);
  for (std::int64_t i = 0; i < m.size(); ++i)
    m.data()[i] = static_cast<T>(
        2.0 *
            static_cast<double>(gcn::mix64(seed * 1000003 + static_cast<std::uint64_t>(i)) >> 11) *
            0x1.0p-53 -
        1.0);
  return m;
}

double loss_of(const gcn::model<double>& m, const gcn::matrix<double>& x, const gcn::propagation& p,
               const std::vector<std::int64_t>& y) {
  gcn::forward_cache<double> c;
  const auto& logits = gcn::forward<double>(m, x, p, true, {7, 3}, c);
  return gcn::softmax_cross_entropy<double>(logits, y, nullptr).loss;
}

}  // namespace

TEST_CASE("gcn: gradients match central finite differences", "[gcn]") {
  const auto g = random_graph(14, 5);
  const auto kind = GENERATE(gcn::model_kind::gcn, gcn::model_kind::sage);
  const bool prefix = GENERATE(true, false);
  const std::int64_t layers = GENERATE(1, 2, 3);
  INFO("kind " << gcn::to_string(kind) << ", prefix " << prefix << ", layers " << layers);
  gcn::model_config c;
  c.kind = kind;
  c.in = 5;
  c.hidden = 4;
  c.classes = 3;
  c.layers = layers;
  c.dropout = 0.3;  // fixed masks (same key) keep the function smooth
  gcn::model<double> m(c, 11);
  // Non-trivial LayerNorm affine parameters and biases.
  for (auto& p : m.params()) p += 0.3 * random_matrix<double>(p.rows(), p.cols(), 99 + p.size());
  const auto x = random_matrix<double>(g.n, c.in, 3);
  std::vector<std::int64_t> rows = prefix ? std::vector<std::int64_t>{0, 1, 2, 3, 4, 5}
                                          : std::vector<std::int64_t>{9, 2, 13, 6, 0};
  std::vector<std::int64_t> y;
  for (std::size_t i = 0; i < rows.size(); ++i) y.push_back(static_cast<std::int64_t>(i % 3));
  y[1] = -1;  // an unlabelled output contributes nothing
  const auto p = gcn::make_propagation(g.ref(), kind, rows, prefix, true);

  gcn::forward_cache<double> cache;
  const auto& logits = gcn::forward<double>(m, x, p, true, {7, 3}, cache);
  gcn::matrix<double> dlogits;
  gcn::softmax_cross_entropy<double>(logits, y, &dlogits);
  std::vector<gcn::matrix<double>> grads;
  gcn::backward<double>(m, x, p, cache, dlogits, grads);
  REQUIRE(grads.size() == m.params().size());

  const double h = 1e-6;
  double worst = 0;
  for (std::size_t k = 0; k < m.params().size(); ++k) {
    REQUIRE(grads[k].rows() == m.params()[k].rows());
    REQUIRE(grads[k].cols() == m.params()[k].cols());
    for (std::int64_t i = 0; i < m.params()[k].size(); ++i) {
      double& w = m.params()[k].data()[i];
      const double w0 = w;
      w = w0 + h;
      const double lp = loss_of(m, x, p, y);
      w = w0 - h;
      const double lm = loss_of(m, x, p, y);
      w = w0;
      const double num = (lp - lm) / (2 * h);
      const double ana = grads[k].data()[i];
      const double err = std::abs(num - ana) / std::max(1e-3, std::abs(num) + std::abs(ana));
      worst = std::max(worst, err);
      INFO("param " << k << " element " << i << ": numeric " << num << ", analytic " << ana);
      CHECK(err < 1e-5);
    }
  }
  CHECK(worst < 1e-5);
}

TEST_CASE("gcn: LayerNorm forward matches a hand computation", "[gcn]") {
  gcn::matrix<double> z(2, 4);
  z << 1, 2, 3, 4, -2, 0, 0, 2;
  gcn::row_vector<double> gamma(4), beta(4);
  gamma << 1, 2, 0.5, -1;
  beta << 0, 1, 0, 0.5;
  gcn::matrix<double> y, xhat;
  std::vector<double> inv_std;
  gcn::layer_norm_forward<double>(z, gamma, beta, y, xhat, inv_std);
  // Row 0: mean 2.5, biased variance (2.25 + 0.25 + 0.25 + 2.25) / 4 = 1.25.
  const double s0 = 1 / std::sqrt(1.25 + 1e-5);
  // Row 1: mean 0, variance (4 + 0 + 0 + 4) / 4 = 2.
  const double s1 = 1 / std::sqrt(2 + 1e-5);
  const double expect[2][4] = {{-1.5 * s0, 2 * -0.5 * s0 + 1, 0.5 * 0.5 * s0, -1 * 1.5 * s0 + 0.5},
                               {-2 * s1, 0 + 1, 0, -1 * 2 * s1 + 0.5}};
  for (int r = 0; r < 2; ++r)
    for (int c = 0; c < 4; ++c) CHECK(y(r, c) == Approx(expect[r][c]).epsilon(1e-12));
  CHECK(inv_std[0] == Approx(s0));
  CHECK(inv_std[1] == Approx(s1));
}

TEST_CASE("gcn: Adam steps match a hand computation", "[gcn]") {
  std::vector<gcn::matrix<double>> p = {gcn::matrix<double>::Constant(1, 2, 1.0)};
  gcn::adam<double> opt(0.1, 0.9, 0.999, 1e-8);
  std::vector<gcn::matrix<double>> g = {gcn::matrix<double>(1, 2)};
  g[0] << 2.0, -0.5;
  opt.step(p, g);
  // Step 1: m = 0.1 g, v = 0.001 g^2; bias-corrected m = g, v = g^2: p -= 0.1 g / (|g| + eps).
  CHECK(p[0](0, 0) == Approx(1 - 0.1 * 2 / (2 + 1e-8)).epsilon(1e-12));
  CHECK(p[0](0, 1) == Approx(1 + 0.1 * 0.5 / (0.5 + 1e-8)).epsilon(1e-12));
  g[0] << 1.0, 1.0;
  opt.step(p, g);
  // Step 2, element 0: m = 0.9 * 0.2 + 0.1 * 1 = 0.28; v = 0.999 * 0.004 + 0.001 * 1 = 0.004996.
  const double mh = 0.28 / (1 - 0.81), vh = 0.004996 / (1 - 0.998001);
  CHECK(p[0](0, 0) ==
        Approx(1 - 0.1 * 2 / (2 + 1e-8) - 0.1 * mh / (std::sqrt(vh) + 1e-8)).epsilon(1e-12));
  // Element 1: m = 0.9 * -0.05 + 0.1 = 0.055; v = 0.999 * 0.00025 + 0.001 = 0.00124975.
  const double mh1 = 0.055 / 0.19, vh1 = 0.00124975 / (1 - 0.998001);
  CHECK(p[0](0, 1) ==
        Approx(1 + 0.1 * 0.5 / (0.5 + 1e-8) - 0.1 * mh1 / (std::sqrt(vh1) + 1e-8)).epsilon(1e-12));
}

TEST_CASE("gcn: ReduceLROnPlateau follows PyTorch's rule", "[gcn]") {
  gcn::plateau_params pp;
  pp.factor = 0.5;
  pp.patience = 2;
  pp.cooldown = 1;
  pp.min_lr = 0.1;
  gcn::reduce_on_plateau s(pp);
  // A flat metric: a cut after patience + 1 bad epochs, then one cooldown epoch that does
  // not count, so every 4th epoch; the floor 0.1 holds.
  const double expect[] = {1,    1,     1,     0.5,   0.5,   0.5, 0.5, 0.25, 0.25, 0.25,
                           0.25, 0.125, 0.125, 0.125, 0.125, 0.1, 0.1, 0.1,  0.1,  0.1};
  double lr = 1;
  for (double e : expect) {
    lr = s.step(1.0, lr);
    CHECK(lr == Approx(e));
  }
  // An improvement resets the count.
  gcn::reduce_on_plateau t(pp);
  lr = 1;
  const double metric[] = {5, 4, 4, 3, 3, 3, 3};
  const double expect2[] = {1, 1, 1, 1, 1, 1, 0.5};
  for (int i = 0; i < 7; ++i) {
    lr = t.step(metric[i], lr);
    CHECK(lr == Approx(expect2[i]));
  }
}

TEST_CASE("gcn: early stopping waits for min_epochs and patience", "[gcn]") {
  gcn::early_stopping s(3, 6);
  const double acc[] = {0.1, 0.5, 0.4, 0.4, 0.4, 0.4, 0.4, 0.6, 0.6, 0.6, 0.6};
  std::vector<std::int64_t> stops;
  for (std::int64_t e = 0; e < 11; ++e) {
    s.update(e, acc[e]);
    if (s.should_stop(e)) stops.push_back(e);
  }
  // best at 1: 4 epochs without a new best at e = 4, but min_epochs 6 holds until e = 5;
  // the new best at 7 resets; stop again at 10.
  CHECK(stops == std::vector<std::int64_t>{5, 6, 10});
  CHECK(s.best_epoch() == 7);
}

TEST_CASE("gcn: training is identical for 1 and 2 threads, checkpoints round-trip", "[gcn]") {
  const auto g = random_graph(300, 9);
  gcn::model_config c;
  c.in = 6;
  c.hidden = 8;
  c.classes = 3;
  c.kind = GENERATE(gcn::model_kind::gcn, gcn::model_kind::sage);
  const auto x = random_matrix<float>(g.n, c.in, 4);
  std::vector<std::int64_t> rows(120), y(120);
  std::iota(rows.begin(), rows.end(), 0);
  for (std::size_t i = 0; i < y.size(); ++i) y[i] = static_cast<std::int64_t>(i % 3);
  auto run = [&](int threads) {
    const int before = omp_get_max_threads();
    omp_set_num_threads(threads);
    gcn::model<float> m(c, 3);
    gcn::adam<float> opt(1e-2);
    const auto p = gcn::make_propagation(g.ref(), c.kind, rows, true, true);
    gcn::forward_cache<float> cache;
    std::vector<gcn::matrix<float>> grads;
    for (int s = 0; s < 5; ++s) gcn::train_step<float>(m, opt, x, p, y, 42, cache, grads);
    omp_set_num_threads(before);
    return m;
  };
  const auto a = run(1), b = run(2);
  for (std::size_t k = 0; k < a.params().size(); ++k)
    CHECK(std::equal(a.params()[k].data(), a.params()[k].data() + a.params()[k].size(),
                     b.params()[k].data()));

  const auto dir = ibmb::test::scratch_dir("gcn_ckpt");
  gcn::save_model(dir / "m.npz", a, ibmb::normalization::symmetric);
  const auto l = gcn::load_model(dir / "m.npz");
  CHECK(l.norm == ibmb::normalization::symmetric);
  CHECK(l.net.config().kind == c.kind);
  REQUIRE(l.net.params().size() == a.params().size());
  for (std::size_t k = 0; k < a.params().size(); ++k) CHECK(l.net.params()[k] == a.params()[k]);
  // A file that is not a model is rejected with a typed error.
  ibmb::write_npz(
      dir / "bad.npz",
      {{"config", ibmb::encode_npy<std::int64_t>(std::vector<std::int64_t>{0, 1}, {2})}});
  CHECK_THROWS_AS(gcn::load_model(dir / "bad.npz"), ibmb::format_error);
  // A config claiming a model far larger than the file is rejected before any allocation
  // (hidden = 10^12 would otherwise be a bare bad_alloc, or an allocation of terabytes).
  ibmb::write_npz(dir / "huge.npz",
                  {{"config", ibmb::encode_npy<std::int64_t>(
                                  std::vector<std::int64_t>{0, 8, 1000000000000, 3, 2, 0}, {6})},
                   {"dropout", ibmb::encode_npy<double>(std::vector<double>{0.5}, {1})}});
  CHECK_THROWS_WITH(gcn::load_model(dir / "huge.npz"), Catch::Contains("the file holds"));
}

TEST_CASE("gcn: short training on Cora, IBMB inference agrees with full-graph", "[gcn][data]") {
  const auto path = ibmb::test::shared_dataset("cora-planetoid");
  if (!path) return;
  auto ds = ibmb::load_dataset(path->string());
  ds.graph = ibmb::make_undirected_with_self_loops(ds.graph.view());
  const auto norm = ibmb::normalization::row;
  const auto full = gcn::make_full_graph(ds, norm);
  gcn::model_config c;
  c.in = ds.num_features;
  c.classes = ds.num_classes();
  gcn::model<float> m(c, 0);
  gcn::full_trainer tr(ds, full, ds.train_idx, c.kind);
  gcn::fit_params fp;
  fp.epochs = 30;
  fp.lr = 1e-2;
  const auto r = gcn::fit(
      m, fp, [&](auto& mm, auto& opt) { return tr.epoch(mm, opt, 0); },
      [&](const auto& mm) { return gcn::evaluate_full(mm, ds, full, ds.val_idx); });
  CHECK(r.epochs.size() == 30);
  const auto test_full = gcn::evaluate_full(m, ds, full, ds.test_idx);
  // 7 classes; the largest class holds about 30% of the test nodes.
  CHECK(test_full.accuracy > 0.6);

  ibmb::nodewise_params np;
  np.merge.max_outputs = 256;
  ibmb::materialize_options mo;
  mo.norm = norm;
  const auto store = ibmb::materialize(
      ds, ibmb::nodewise_plan(ds.graph.view(), std::span<const std::int64_t>(ds.test_idx), np), mo);
  const auto test_ibmb = gcn::evaluate_store(m, store, ds, ds.test_idx);
  CHECK(test_ibmb.missing == 0);
  std::int64_t same = 0;
  for (std::size_t i = 0; i < ds.test_idx.size(); ++i)
    same += test_ibmb.predictions[i] == test_full.predictions[i];
  const double agree = static_cast<double>(same) / static_cast<double>(ds.test_idx.size());
  INFO("agreement " << agree << ", full " << test_full.accuracy << ", ibmb " << test_ibmb.accuracy);
  CHECK(agree >= 0.95);
  CHECK(std::abs(test_ibmb.accuracy - test_full.accuracy) < 0.03);
}
