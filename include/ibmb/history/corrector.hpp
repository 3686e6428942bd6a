// ibmb: read-time correctors of stale halo rows. A corrector turns the rows pulled from a
// `history_store` into the rows the forward pass uses; it only reads the store (predictions
// are never written back). Cheapest first: identity (GNNAutoScale), momentum blend
// (GraphFM-style extrapolation from the ring), re-transform (the store caches a layer's input
// aggregation and the current weights are applied at read time), a caller's callback, and
// the SAT predictor (predictor.hpp).
#pragma once

#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "ibmb/core/error.hpp"
#include "ibmb/history/history_types.hpp"
#include "ibmb/history/store.hpp"

namespace ibmb {

/// The corrector contract: `correct` reads `cached` (ctx.nodes.size() x the stored width of
/// ctx.layer, as `history_store::pull` gave it) and writes `out` (ctx.nodes.size() x
/// `output_dim(layer, stored width)`); `out` never aliases `cached`. It may read
/// `*ctx.store` (ages, ring) but never changes it. Learned correctors also observe the
/// store's writes (`history_observer`).
class corrector {
 public:
  virtual ~corrector() = default;
  [[nodiscard]] virtual std::string_view name() const = 0;
  [[nodiscard]] virtual std::int64_t output_dim(std::int64_t /*layer*/,
                                                std::int64_t stored_dim) const {
    return stored_dim;
  }
  virtual void correct(const read_context& ctx, std::span<const float> cached,
                       std::span<float> out) = 0;
};

namespace detail {
/// Checks a `correct` call: the store (first: everything else reads it), the layer, every
/// node id (before any parallel region, where an exception would end the process), and the
/// sizes. `out_dim` < 0: the store's width of the layer.
inline void check_correct_args(const read_context& ctx, std::span<const float> cached,
                               std::span<float> out, std::int64_t out_dim, const char* who) {
  IBMB_EXPECTS(ctx.store != nullptr, who, ": read_context has no store");
  const auto n = ctx.nodes.size();
  const auto d = static_cast<std::size_t>(ctx.store->dim(ctx.layer));
  if (out_dim < 0) out_dim = static_cast<std::int64_t>(d);
  const auto N = ctx.store->num_nodes();
  for (std::size_t i = 0; i < n; ++i)
    IBMB_EXPECTS_AS(out_of_range, ctx.nodes[i] >= 0 && ctx.nodes[i] < N, who, ": nodes[", i,
                    "] = ", ctx.nodes[i], " outside [0, ", N, ")");
  IBMB_EXPECTS(cached.size() == n * d, who, ": cached holds ", cached.size(), " values, expected ",
               n, " rows x ", d);
  IBMB_EXPECTS(out.size() == n * static_cast<std::size_t>(out_dim), who, ": out holds ", out.size(),
               " values, expected ", n, " rows x ", out_dim);
  IBMB_EXPECTS(ctx.neighbor_drift.empty() || ctx.neighbor_drift.size() == n * d, who,
               ": neighbor_drift holds ", ctx.neighbor_drift.size(), " values, expected ", n * d);
}
}  // namespace detail

/// Keep the stale value (GNNAutoScale).
class identity_corrector final : public corrector {
 public:
  [[nodiscard]] std::string_view name() const override { return "identity"; }
  void correct(const read_context& ctx, std::span<const float> cached,
               std::span<float> out) override {
    detail::check_correct_args(ctx, cached, out, -1, "identity_corrector");
    std::copy(cached.begin(), cached.end(), out.begin());
  }
};

struct momentum_params {
  double beta = 1.0;
  /// Scale the last delta to the row's age: x0 + beta * (age / gap) * (x0 - x1), gap = steps
  /// between the two versions. False: x0 + beta * (x0 - x1), as GraphFM-OB's blend.
  bool age_scaled = true;
};

/// Extrapolates from the row's last two versions (needs the store's ring; rows without a
/// previous version stay as cached).
class momentum_corrector final : public corrector {
 public:
  explicit momentum_corrector(momentum_params p = {}) : p_(p) {
    IBMB_EXPECTS(std::isfinite(p.beta), "momentum_corrector: beta = ", p.beta);
  }
  [[nodiscard]] std::string_view name() const override { return "momentum"; }
  void correct(const read_context& ctx, std::span<const float> cached,
               std::span<float> out) override {
    detail::check_correct_args(ctx, cached, out, -1, "momentum_corrector");
    const auto d = static_cast<std::size_t>(ctx.store->dim(ctx.layer));
    std::copy(cached.begin(), cached.end(), out.begin());
    const auto& s = *ctx.store;
    for (std::size_t i = 0; i < ctx.nodes.size(); ++i) {
      const auto v = ctx.nodes[i];
      if (s.ring_size(ctx.layer, v) < 1) continue;
      const auto w0 = s.last_written(ctx.layer, v);
      const auto prev = s.ring_version(ctx.layer, v, 0);
      double scale = p_.beta;
      if (p_.age_scaled) {
        const auto gap = std::max<std::int64_t>(1, w0 - s.ring_step(ctx.layer, v, 0));
        scale *= static_cast<double>(ctx.step - w0) / static_cast<double>(gap);
      }
      const auto f = static_cast<float>(scale);
      for (std::size_t j = 0; j < d; ++j)
        out[i * d + j] = cached[i * d + j] + f * (cached[i * d + j] - prev[j]);
    }
  }

 private:
  momentum_params p_;
};

/// The store caches a layer's *input aggregation* of each row (for GCN: the row of
/// S H^(l), before the weights); at read time the current weights turn it into the row's
/// output: out = f_l(cached). Set f_l per layer from the current weights before each read
/// (`set_weights` for act(x W + b), `set_transform` for anything else, e.g. with LayerNorm).
class retransform_corrector final : public corrector {
 public:
  /// in: rows x stored width; out: rows x out_dim.
  using transform_fn = std::function<void(std::int64_t layer, std::span<const float> in,
                                          std::int64_t rows, std::span<float> out)>;

  [[nodiscard]] std::string_view name() const override { return "retransform"; }

  void set_transform(std::int64_t layer, std::int64_t out_dim, transform_fn f) {
    IBMB_EXPECTS(out_dim >= 1 && f, "retransform_corrector::set_transform: layer ", layer,
                 ": out_dim = ", out_dim, (f ? "" : ", empty function"));
    layers_[layer] = {out_dim, 0, std::move(f)};
  }

  /// f_l(x) = act(x W + b) with the current `W` (in_dim x out_dim, row-major, copied) and
  /// optional `bias` (out_dim); act = ReLU when `relu`.
  void set_weights(std::int64_t layer, std::span<const float> W, std::int64_t in_dim,
                   std::int64_t out_dim, std::span<const float> bias = {}, bool relu = false) {
    IBMB_EXPECTS(
        in_dim >= 1 && out_dim >= 1 && W.size() == static_cast<std::size_t>(in_dim * out_dim),
        "retransform_corrector::set_weights: W holds ", W.size(), " values for ", in_dim, " x ",
        out_dim);
    IBMB_EXPECTS(bias.empty() || bias.size() == static_cast<std::size_t>(out_dim),
                 "retransform_corrector::set_weights: bias holds ", bias.size(),
                 " values, expected ", out_dim);
    using mat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
    mat w = Eigen::Map<const mat>(W.data(), in_dim, out_dim);
    Eigen::RowVectorXf b =
        bias.empty()
            ? Eigen::RowVectorXf::Zero(out_dim)
            : Eigen::RowVectorXf(Eigen::Map<const Eigen::RowVectorXf>(bias.data(), out_dim));
    set_transform(
        layer, out_dim,
        [w = std::move(w), b = std::move(b), in_dim, out_dim, relu](
            std::int64_t, std::span<const float> in, std::int64_t rows, std::span<float> out) {
          Eigen::Map<const mat> x(in.data(), rows, in_dim);
          Eigen::Map<mat> y(out.data(), rows, out_dim);
          y.noalias() = x * w;
          y.rowwise() += b;
          if (relu) y = y.cwiseMax(0.0f);
        });
    layers_[layer].in_dim = in_dim;
  }

  [[nodiscard]] std::int64_t output_dim(std::int64_t layer, std::int64_t) const override {
    return entry(layer).out_dim;
  }
  void correct(const read_context& ctx, std::span<const float> cached,
               std::span<float> out) override {
    const auto& e = entry(ctx.layer);
    detail::check_correct_args(ctx, cached, out, e.out_dim, "retransform_corrector");
    IBMB_EXPECTS(e.in_dim == 0 || e.in_dim == ctx.store->dim(ctx.layer),
                 "retransform_corrector: layer ", ctx.layer, ": weights for ", e.in_dim,
                 " inputs, the store holds rows of ", ctx.store->dim(ctx.layer));
    e.f(ctx.layer, cached, static_cast<std::int64_t>(ctx.nodes.size()), out);
  }

 private:
  struct layer_entry {
    std::int64_t out_dim = 0;
    std::int64_t in_dim = 0;  ///< set_weights' input width (0: set_transform, unchecked)
    transform_fn f;
  };
  const layer_entry& entry(std::int64_t layer) const {
    const auto it = layers_.find(layer);
    if (it == layers_.end())
      throw invalid_argument(detail::concat(
          "retransform_corrector: no transform set for layer ", layer,
          " (call set_weights or set_transform with the current weights before reading)"));
    return it->second;
  }
  std::map<std::int64_t, layer_entry> layers_;
};

/// A caller's function as a corrector (same contract as `corrector::correct`).
class callback_corrector final : public corrector {
 public:
  using fn = std::function<void(const read_context&, std::span<const float>, std::span<float>)>;
  callback_corrector(std::string name, fn f) : name_(std::move(name)), f_(std::move(f)) {
    IBMB_EXPECTS(static_cast<bool>(f_), "callback_corrector: empty function");
  }
  [[nodiscard]] std::string_view name() const override { return name_; }
  void correct(const read_context& ctx, std::span<const float> cached,
               std::span<float> out) override {
    detail::check_correct_args(ctx, cached, out, -1, "callback_corrector");
    f_(ctx, cached, out);
  }

 private:
  std::string name_;
  fn f_;
};

/// Pull + correct in one call: `cached` receives the stored rows (nodes x stored width),
/// `out` the corrected ones (nodes x c.output_dim). Returns the never-written rows read.
inline std::int64_t read_halo(const history_store& store, corrector& c, std::int64_t layer,
                              std::int64_t step, std::span<const std::int64_t> nodes,
                              std::span<float> cached, std::span<float> out,
                              std::span<const float> neighbor_drift = {}) {
  const std::int64_t unwritten = store.pull(layer, nodes, cached);
  read_context ctx{&store, layer, step, nodes, neighbor_drift};
  c.correct(ctx, cached, out);
  return unwritten;
}

}  // namespace ibmb
