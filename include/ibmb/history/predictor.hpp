// ibmb: the SAT staleness predictor (Bai et al., arXiv 2308.13466), in a small, fast form.
//
// For a stale row x0 (written at step s0, now `age` = t - s0 steps old) with previous versions
// x1..xc from the store's ring (steps s1 > s2 > ...), the predictor forecasts the fresh row as
//
//   x0 + sum_m c_m * age * (x_{m-1} - x_m) / (s_{m-1} - s_m)  +  c_d * drift
//
// where `drift` is the mean (fresh - cached) of the row's in-batch neighbours (optional). The
// coefficients c (one set per layer, shared by rows and dimensions) are refit after every
// write of the store by exponentially-forgotten ridge least squares on the (cached, fresh)
// pairs the write reveals: the GNN's step produces the pairs, the predictor's fit follows,
// the next read uses it. The prediction of each pair is scored *before* the fit sees it, and
// the prediction is used only while that online error (an EMA of the MSE) beats identity's
// (the gate). Predictions are never written into the store. See docs/history.md.
#pragma once

#include <Eigen/Dense>
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "ibmb/core/error.hpp"
#include "ibmb/core/parallel.hpp"
#include "ibmb/graph/csr.hpp"
#include "ibmb/history/corrector.hpp"
#include "ibmb/history/history_types.hpp"
#include "ibmb/history/store.hpp"

namespace ibmb {

enum class sat_gate {
  automatic,  ///< predict while the online error beats identity's
  always,     ///< always predict (for experiments)
  never,      ///< never predict, only learn (identity at read time)
};

struct sat_params {
  /// Previous versions used (velocity features); at most the store's ring depth is available.
  int history = 3;
  /// Use the neighbour-drift feature when the trainer supplies it.
  bool use_neighbor_drift = true;
  /// Per write event, old least-squares statistics are multiplied by this (0 < f <= 1):
  /// the GNN's dynamics change during training, so old pairs fade.
  double forgetting = 0.9;
  /// Tikhonov term: ridge * (trace(S) / p + tiny) added to the normal equations' diagonal.
  double ridge = 1e-3;
  /// EMA decay per write event of the gate's MSEs.
  double error_decay = 0.8;
  /// Predict while ema_error < (1 - gate_margin) * ema_identity_error.
  double gate_margin = 0.02;
  /// Revealed pairs (rows) needed before the gate may open.
  std::int64_t warmup_rows = 32;
  sat_gate gate = sat_gate::automatic;
  /// Learn from refresh writes too.
  bool learn_from_refresh = true;
  /// At most this many revealed rows per write event enter the fit and the gate's error (an
  /// evenly strided, deterministic subset; 0 = all). The fit has history + 1 coefficients:
  /// thousands of rows x the row width determine them well, and a write of a large batch
  /// reveals tens of thousands (measured on the 100k generator, docs/results.md).
  std::int64_t max_fit_rows = 8192;
};

/// Per-layer state of the predictor, for reports and tests.
struct sat_layer_state {
  std::vector<double> coef;       ///< [history velocity coefficients..., drift coefficient]
  double ema_error = 0;           ///< online MSE of the prediction (scored before fitting)
  double ema_identity_error = 0;  ///< online MSE of keeping the cached value
  std::int64_t pairs = 0;         ///< revealed (cached, fresh) rows learned from
  std::int64_t events = 0;        ///< write events with at least one pair
  bool active = false;            ///< the gate: predictions are used
};

class sat_predictor final : public corrector, public history_observer {
 public:
  explicit sat_predictor(sat_params p = {}) : p_(p) {
    IBMB_EXPECTS(p.history >= 0 && p.history <= history_options::max_ring,
                 "sat_predictor: history = ", p.history);
    IBMB_EXPECTS(p.forgetting > 0 && p.forgetting <= 1,
                 "sat_predictor: forgetting = ", p.forgetting, " not in (0, 1]");
    IBMB_EXPECTS(p.ridge >= 0 && std::isfinite(p.ridge), "sat_predictor: ridge = ", p.ridge);
    IBMB_EXPECTS(p.error_decay >= 0 && p.error_decay < 1,
                 "sat_predictor: error_decay = ", p.error_decay, " not in [0, 1)");
    IBMB_EXPECTS(p.gate_margin >= 0 && p.gate_margin < 1,
                 "sat_predictor: gate_margin = ", p.gate_margin);
    IBMB_EXPECTS(p.max_fit_rows >= 0, "sat_predictor: max_fit_rows = ", p.max_fit_rows);
  }

  [[nodiscard]] std::string_view name() const override { return "sat"; }
  [[nodiscard]] const sat_params& params() const { return p_; }
  [[nodiscard]] int num_features() const { return p_.history + 1; }

  /// State of `layer` (default state for a layer not seen yet).
  [[nodiscard]] sat_layer_state state(std::int64_t layer) const {
    if (layer < 0 || static_cast<std::size_t>(layer) >= layers_.size()) {
      sat_layer_state s;
      s.coef.assign(static_cast<std::size_t>(num_features()), 0.0);
      return s;
    }
    const auto& L = layers_[static_cast<std::size_t>(layer)];
    sat_layer_state s;
    s.coef.assign(L.coef.data(), L.coef.data() + L.coef.size());
    s.ema_error = L.ema_pred;
    s.ema_identity_error = L.ema_id;
    s.pairs = L.pairs;
    s.events = L.events;
    s.active = L.active;
    return s;
  }
  [[nodiscard]] bool active(std::int64_t layer) const {
    return layer >= 0 && static_cast<std::size_t>(layer) < layers_.size() &&
           layers_[static_cast<std::size_t>(layer)].active;
  }

  /// Learns from the (cached, fresh) pairs of a write (the store still holds the old state).
  void on_write(const write_event& e) override {
    if (e.refresh && !p_.learn_from_refresh) return;
    const auto& s = *e.store;
    const auto d = static_cast<std::size_t>(s.dim(e.layer));
    auto& L = layer(e.layer);
    const int P = num_features();
    // Rows with an earlier version: the pairs.
    std::vector<std::size_t> rows;
    for (std::size_t i = 0; i < e.nodes.size(); ++i)
      if (s.last_written(e.layer, e.nodes[i]) >= 0) rows.push_back(i);
    if (rows.empty()) return;
    if (p_.max_fit_rows > 0 && rows.size() > static_cast<std::size_t>(p_.max_fit_rows)) {
      const auto m = static_cast<std::size_t>(p_.max_fit_rows), all = rows.size();
      for (std::size_t k = 0; k < m; ++k) rows[k] = rows[k * all / m];  // k * all / m >= k
      rows.resize(m);
    }
    // Fixed chunks (not thread-dependent), summed in order: deterministic for any thread count.
    const int chunks = static_cast<int>(std::min<std::size_t>(rows.size(), 64));
    const auto bounds =
        detail::even_chunks<std::int64_t>(static_cast<std::int64_t>(rows.size()), chunks);
    // Per chunk: the lower triangle of X^T X (row-major packed), X^T r and the squared errors.
    const auto tri = static_cast<std::size_t>(P * (P + 1) / 2);
    std::vector<double> xtx(static_cast<std::size_t>(chunks) * tri, 0.0),
        xtr(static_cast<std::size_t>(chunks) * static_cast<std::size_t>(P), 0.0),
        sse_pred(static_cast<std::size_t>(chunks), 0.0),
        sse_id(static_cast<std::size_t>(chunks), 0.0);
    const std::vector<double> coef(L.coef.data(), L.coef.data() + P);
    // The feature buffer (and anything `features` throws) must not escape the region.
    detail::region_failure failure;
#pragma omp parallel for schedule(dynamic, 1)
    for (int c = 0; c < chunks; ++c)
      failure.run([&] {
        const auto cu = static_cast<std::size_t>(c);
        std::vector<float> feat(static_cast<std::size_t>(P) * d);
        double f[history_options::max_ring + 1];
        double* a = xtx.data() + cu * tri;
        double* br = xtr.data() + cu * static_cast<std::size_t>(P);
        double ep = 0, ei = 0;
        for (auto k = bounds[cu]; k < bounds[cu + 1]; ++k) {
          const std::size_t i = rows[static_cast<std::size_t>(k)];
          const auto cached = s.row(e.layer, e.nodes[i]);
          const auto drift = e.neighbor_drift.empty() ? std::span<const float>{}
                                                      : e.neighbor_drift.subspan(i * d, d);
          features(s, e.layer, e.nodes[i], e.step, drift, feat);
          for (std::size_t j = 0; j < d; ++j) {
            const double r = static_cast<double>(e.fresh[i * d + j]) - cached[j];
            double pred = 0;
            for (int m = 0; m < P; ++m) {
              f[m] = feat[static_cast<std::size_t>(m) * d + j];
              pred += f[m] * coef[static_cast<std::size_t>(m)];
            }
            ep += (r - pred) * (r - pred);
            ei += r * r;
            std::size_t q = 0;
            for (int m = 0; m < P; ++m) {
              br[m] += r * f[m];
              for (int m2 = 0; m2 <= m; ++m2) a[q++] += f[m] * f[m2];
            }
          }
        }
        sse_pred[cu] = ep;
        sse_id[cu] = ei;
      });
    failure.rethrow();
    Eigen::MatrixXd XtX = Eigen::MatrixXd::Zero(P, P);
    Eigen::VectorXd Xtr = Eigen::VectorXd::Zero(P);
    double sp = 0, si = 0;
    for (std::size_t c = 0; c < static_cast<std::size_t>(chunks); ++c) {
      std::size_t q = 0;
      for (int m = 0; m < P; ++m) {
        Xtr[m] += xtr[c * static_cast<std::size_t>(P) + static_cast<std::size_t>(m)];
        for (int m2 = 0; m2 <= m; ++m2) {
          XtX(m, m2) += xtx[c * tri + q++];
          XtX(m2, m) = XtX(m, m2);
        }
      }
      sp += sse_pred[c];
      si += sse_id[c];
    }
    L.S = p_.forgetting * L.S + XtX;
    L.b = p_.forgetting * L.b + Xtr;
    const double tr = L.S.trace() / P;
    Eigen::MatrixXd A = L.S;
    A.diagonal().array() += p_.ridge * tr + 1e-12;
    Eigen::VectorXd sol = A.ldlt().solve(L.b);
    if (sol.allFinite()) L.coef = sol;
    const double n = static_cast<double>(rows.size() * d);
    const double mp = sp / n, mi = si / n;
    if (L.events == 0) {
      L.ema_pred = mp;
      L.ema_id = mi;
    } else {
      L.ema_pred = p_.error_decay * L.ema_pred + (1 - p_.error_decay) * mp;
      L.ema_id = p_.error_decay * L.ema_id + (1 - p_.error_decay) * mi;
    }
    ++L.events;
    L.pairs += static_cast<std::int64_t>(rows.size());
    L.active = p_.gate == sat_gate::always ||
               (p_.gate == sat_gate::automatic && L.pairs >= p_.warmup_rows &&
                L.ema_pred < (1 - p_.gate_margin) * L.ema_id);
  }

  /// The prediction where the gate is open, else the cached rows. Never writes the store.
  void correct(const read_context& ctx, std::span<const float> cached,
               std::span<float> out) override {
    detail::check_correct_args(ctx, cached, out, -1, "sat_predictor");
    std::copy(cached.begin(), cached.end(), out.begin());
    if (!active(ctx.layer)) return;
    predict_into(ctx, out);
  }

  /// The prediction regardless of the gate (for audits and tests).
  void predict(const read_context& ctx, std::span<const float> cached, std::span<float> out) const {
    detail::check_correct_args(ctx, cached, out, -1, "sat_predictor");
    std::copy(cached.begin(), cached.end(), out.begin());
    predict_into(ctx, out);
  }

 private:
  struct layer_state {
    Eigen::MatrixXd S;
    Eigen::VectorXd b, coef;
    double ema_pred = 0, ema_id = 0;
    std::int64_t pairs = 0, events = 0;
    bool active = false;
  };

  layer_state& layer(std::int64_t l) {
    IBMB_EXPECTS(l >= 0, "sat_predictor: layer ", l);
    const int P = num_features();
    while (layers_.size() <= static_cast<std::size_t>(l)) {
      layer_state s;
      s.S = Eigen::MatrixXd::Zero(P, P);
      s.b = Eigen::VectorXd::Zero(P);
      s.coef = Eigen::VectorXd::Zero(P);
      layers_.push_back(std::move(s));
    }
    return layers_[static_cast<std::size_t>(l)];
  }

  /// feat[m * d + j]: feature m of dimension j of `node`'s row, read at `step`.
  void features(const history_store& s, std::int64_t layer, std::int64_t node, std::int64_t step,
                std::span<const float> drift, std::span<float> feat) const {
    const auto d = static_cast<std::size_t>(s.dim(layer));
    std::fill(feat.begin(), feat.end(), 0.0f);
    const auto w0 = s.last_written(layer, node);
    if (w0 < 0) return;
    const double age = static_cast<double>(step - w0);
    const int c = std::min(p_.history, s.ring_size(layer, node));
    auto newer = s.row(layer, node);
    auto newer_step = w0;
    for (int m = 0; m < c; ++m) {
      const auto older = s.ring_version(layer, node, m);
      const auto older_step = s.ring_step(layer, node, m);
      const double gap = static_cast<double>(std::max<std::int64_t>(1, newer_step - older_step));
      const auto k = static_cast<float>(age / gap);
      float* f = feat.data() + static_cast<std::size_t>(m) * d;
      for (std::size_t j = 0; j < d; ++j) f[j] = k * (newer[j] - older[j]);
      newer = older;
      newer_step = older_step;
    }
    if (p_.use_neighbor_drift && !drift.empty())
      std::copy(
          drift.begin(), drift.end(),
          feat.begin() + static_cast<std::ptrdiff_t>(static_cast<std::size_t>(p_.history) * d));
  }

  void predict_into(const read_context& ctx, std::span<float> out) const {
    if (ctx.layer < 0 || static_cast<std::size_t>(ctx.layer) >= layers_.size()) return;
    const auto& L = layers_[static_cast<std::size_t>(ctx.layer)];
    const auto d = static_cast<std::size_t>(ctx.store->dim(ctx.layer));
    const int P = num_features();
    const auto n = static_cast<std::int64_t>(ctx.nodes.size());
    // Thread count only splits rows: every row's result is the same for any split.
    const bool par = n * static_cast<std::int64_t>(d) > (1 << 15);
    detail::region_failure failure;  // as in on_write
#pragma omp parallel if (par)
    {
      std::vector<float> feat;
      failure.run([&] { feat.resize(static_cast<std::size_t>(P) * d); });
#pragma omp for schedule(static)
      for (std::int64_t i = 0; i < n; ++i)
        failure.run([&] {
          const auto iu = static_cast<std::size_t>(i);
          const auto drift = ctx.neighbor_drift.empty() ? std::span<const float>{}
                                                        : ctx.neighbor_drift.subspan(iu * d, d);
          features(*ctx.store, ctx.layer, ctx.nodes[iu], ctx.step, drift, feat);
          for (int m = 0; m < P; ++m) {
            const auto cm = static_cast<float>(L.coef[m]);
            if (cm == 0.0f) continue;
            const float* f = feat.data() + static_cast<std::size_t>(m) * d;
            for (std::size_t j = 0; j < d; ++j) out[iu * d + j] += cm * f[j];
          }
        });
    }
    failure.rethrow();
  }

  sat_params p_;
  std::vector<layer_state> layers_;
};

/// Neighbour drift of a batch's own rows at push time: for each local row u of the batch
/// graph, the mean of `batch_delta` (fresh - cached, local order, dim values per row) over
/// its neighbours v != u with `valid[v]` (when given); zero without any. Pass it as
/// `neighbor_drift` to `history_store::push` so the predictor learns the drift coefficient
/// from the same feature it sees at read time (`halo_neighbor_drift`).
template <class I, class O, class W>
void batch_neighbor_drift(csr_view<I, O, W> local, std::span<const float> batch_delta,
                          std::int64_t dim, std::span<float> out,
                          std::span<const std::uint8_t> valid = {}) {
  const auto d = static_cast<std::size_t>(dim);
  const auto n = static_cast<std::size_t>(local.num_rows);
  IBMB_EXPECTS(dim >= 1 && batch_delta.size() == n * d && out.size() == n * d,
               "batch_neighbor_drift: ", batch_delta.size(), " delta and ", out.size(),
               " output values for ", n, " rows x ", dim);
  IBMB_EXPECTS(valid.empty() || valid.size() == n, "batch_neighbor_drift: ", valid.size(),
               " validity flags for ", n, " rows");
  IBMB_EXPECTS(local.num_rows == local.num_cols, "batch_neighbor_drift: the batch graph is ",
               local.num_rows, " x ", local.num_cols, " (expected square)");
  local.validate();  // columns index batch_delta and valid
  std::fill(out.begin(), out.end(), 0.0f);
#pragma omp parallel for schedule(dynamic, 256)
  for (std::int64_t u = 0; u < static_cast<std::int64_t>(n); ++u) {
    std::int64_t cnt = 0;
    float* o = out.data() + static_cast<std::size_t>(u) * d;
    for (auto v : local.neighbors(static_cast<I>(u))) {
      if (static_cast<std::int64_t>(v) == u) continue;
      if (!valid.empty() && !valid[static_cast<std::size_t>(v)]) continue;
      ++cnt;
      const float* x = batch_delta.data() + static_cast<std::size_t>(v) * d;
      for (std::size_t j = 0; j < d; ++j) o[j] += x[j];
    }
    if (cnt > 1)
      for (std::size_t j = 0; j < d; ++j) o[j] /= static_cast<float>(cnt);
  }
}

}  // namespace ibmb
