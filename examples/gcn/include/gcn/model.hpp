// gcn: the reference model, forward and backward by hand.
//
//   GCN:  [conv -> LayerNorm -> ReLU -> Dropout] x L, then Linear
//         conv(H) = S (H W) + b, S = the stored normalized adjacency (its rows for the
//         nodes being computed)
//   SAGE: conv(H) = M (H W) + H W_root + b, M = the local mean over a row's entries
//
// The last conv layer is computed only for the rows that produce outputs (`out_rows`: a
// batch's output prefix, or the split's nodes on the full graph): everything after it is
// row-wise, so no other row is needed.
#pragma once

#include <cmath>
#include <cstdint>
#include <functional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "ops.hpp"

namespace gcn {

enum class model_kind { gcn = 0, sage = 1 };

inline std::string_view to_string(model_kind k) { return k == model_kind::gcn ? "gcn" : "sage"; }

struct model_config {
  model_kind kind = model_kind::gcn;
  std::int64_t in = 0;       ///< input features
  std::int64_t hidden = 64;  ///< width of every conv layer
  std::int64_t classes = 0;
  std::int64_t layers = 2;  ///< conv layers (then one Linear)
  double dropout = 0.5;
};

/// What one forward pass propagates over: `a` (n x n) for the hidden layers and `a_out`
/// (r x n, the rows `out_rows` of `a`) for the last conv layer, plus their transposes for
/// the backward pass. Build with `make_propagation`.
struct propagation {
  std::int64_t n = 0;
  sparse_ref a, a_out;
  std::vector<std::int64_t> out_rows;
  bool out_is_prefix = false;  ///< out_rows == 0 .. r-1
  sparse_owned at, a_out_t;    ///< filled when built for training
  std::vector<float> own_weights;
  sparse_owned own_out;
};

/// `a`: the n x n propagation matrix with the model's weights (the stored normalized ones for
/// GCN; they are replaced by local mean weights for SAGE). `out_rows`: the rows to compute in
/// the last layer; `prefix` says they are 0 .. r-1 (no copy of those rows is made).
inline propagation make_propagation(sparse_ref a, model_kind kind,
                                    std::span<const std::int64_t> out_rows, bool prefix,
                                    bool for_training) {
  propagation p;
  p.n = a.rows;
  p.out_rows.assign(out_rows.begin(), out_rows.end());
  p.out_is_prefix = prefix;
  if (kind == model_kind::sage) {
    p.own_weights = mean_weights(a);
    a.weights = p.own_weights.data() - (a.rows > 0 ? a.indptr[0] : 0);
  }
  p.a = a;
  if (prefix) {
    p.a_out = a;
    p.a_out.rows = static_cast<std::int64_t>(out_rows.size());
  } else {
    p.own_out = gather_rows(a, out_rows);
    p.a_out = p.own_out.ref();
  }
  if (for_training) {
    p.at = transpose(p.a);
    p.a_out_t = transpose(p.a_out);
  }
  return p;
}

/// Parameters in a fixed order: per conv layer W, b, gamma, beta (+ W_root for SAGE), then
/// the final Linear's W and b. Biases and LayerNorm vectors are 1-row matrices.
template <class T = float>
class model {
 public:
  model() = default;
  explicit model(const model_config& c, std::uint64_t seed = 0) : cfg_(c) {
    if (c.in < 1 || c.hidden < 1 || c.classes < 1 || c.layers < 1 ||
        !(c.dropout >= 0 && c.dropout < 1))  // written so that NaN fails too
      throw std::invalid_argument(
          "gcn::model: in, hidden, classes, layers must be >= 1 and dropout in [0, 1)");
    std::uint64_t ctr = 0;
    auto glorot = [&](std::int64_t r, std::int64_t k) {
      matrix<T> w(r, k);
      const double lim = std::sqrt(6.0 / static_cast<double>(r + k));
      for (std::int64_t i = 0; i < w.size(); ++i) {
        const double u =
            static_cast<double>(mix64(seed * 0x9e3779b97f4a7c15ull + ++ctr) >> 11) * 0x1.0p-53;
        w.data()[i] = static_cast<T>((2 * u - 1) * lim);
      }
      return w;
    };
    std::int64_t in = c.in;
    for (std::int64_t l = 0; l < c.layers; ++l) {
      params_.push_back(glorot(in, c.hidden));
      params_.push_back(matrix<T>::Zero(1, c.hidden));
      params_.push_back(matrix<T>::Ones(1, c.hidden));
      params_.push_back(matrix<T>::Zero(1, c.hidden));
      if (c.kind == model_kind::sage) params_.push_back(glorot(in, c.hidden));
      in = c.hidden;
    }
    params_.push_back(glorot(c.hidden, c.classes));
    params_.push_back(matrix<T>::Zero(1, c.classes));
  }

  [[nodiscard]] const model_config& config() const { return cfg_; }
  [[nodiscard]] std::vector<matrix<T>>& params() { return params_; }
  [[nodiscard]] const std::vector<matrix<T>>& params() const { return params_; }
  [[nodiscard]] std::size_t stride() const { return cfg_.kind == model_kind::sage ? 5 : 4; }
  [[nodiscard]] std::size_t conv(std::int64_t l) const {
    return static_cast<std::size_t>(l) * stride();
  }
  [[nodiscard]] std::size_t head() const { return conv(cfg_.layers); }
  [[nodiscard]] std::int64_t num_parameters() const {
    std::int64_t s = 0;
    for (const auto& p : params_) s += p.size();
    return s;
  }

 private:
  model_config cfg_;
  std::vector<matrix<T>> params_;
};

/// Activations kept by a forward pass for the backward pass.
template <class T>
struct forward_cache {
  std::vector<matrix<T>> h;        ///< h[l]: input of conv l for l >= 1 (h[0] is the features)
  std::vector<matrix<T>> root_in;  ///< SAGE: input rows of the last layer
  std::vector<matrix<T>> xhat, act, mask;
  std::vector<std::vector<T>> inv_std;
  matrix<T> logits;  ///< r x classes
};

/// Dropout stream identifiers: a training step's masks depend on (seed, step, layer, row, col).
struct dropout_key {
  std::uint64_t seed = 0;
  std::uint64_t step = 0;
};

/// Out-of-batch ("halo") input of one conv layer (GCN only, see history_train.hpp): the
/// layer adds `block (rows W)` to `S (H W)`; `rows` are constants (no gradient flows into
/// them). `block` is n x h (batch rows in local order), `block_out` its first r rows, and
/// the transposes serve the backward pass.
template <class T>
struct halo_layer {
  const matrix<T>* rows = nullptr;  ///< h x in_dim of the conv layer; null or empty = none
  sparse_ref block, block_out, block_t, block_out_t;
};

/// Halo inputs of every conv layer and a hook called after conv l's ReLU (before dropout)
/// for l < L-1 with that layer's input and activation, before conv l+1 runs: it may fill
/// `layers[l+1].rows` (the history trainer reads the historical rows there).
template <class T>
struct halo_terms {
  std::vector<halo_layer<T>> layers;
  std::function<void(std::int64_t l, Eigen::Ref<const matrix<T>> in, const matrix<T>& act)>
      on_activation;
  [[nodiscard]] bool has(std::int64_t l) const {
    const auto li = static_cast<std::size_t>(l);
    return li < layers.size() && layers[li].rows != nullptr && layers[li].rows->rows() > 0;
  }
};

/// Forward pass; `x` holds the features of all n nodes of `p`. Returns the r x classes logits
/// (also in `cache.logits`). `train`: apply dropout with the masks of `key`. `halo`:
/// optional out-of-batch terms (GCN only).
template <class T>
const matrix<T>& forward(const model<T>& m, Eigen::Ref<const matrix<T>> x, const propagation& p,
                         bool train, dropout_key key, forward_cache<T>& cache,
                         const halo_terms<T>* halo = nullptr) {
  const auto& c = m.config();
  if (halo != nullptr && c.kind != model_kind::gcn)
    throw std::invalid_argument("gcn::forward: halo terms need the GCN model");
  const auto& P = m.params();
  const std::int64_t L = c.layers;
  cache.h.assign(static_cast<std::size_t>(L), matrix<T>());
  cache.h.reserve(static_cast<std::size_t>(L) + 1);  // the last layer's output is appended
  cache.root_in.assign(static_cast<std::size_t>(L), matrix<T>());
  cache.xhat.resize(static_cast<std::size_t>(L));
  cache.act.resize(static_cast<std::size_t>(L));
  cache.mask.assign(static_cast<std::size_t>(L), matrix<T>());
  cache.inv_std.resize(static_cast<std::size_t>(L));
  matrix<T> proj, z, y;
  const T keep_scale = static_cast<T>(1.0 / (1.0 - c.dropout));
  for (std::int64_t l = 0; l < L; ++l) {
    const bool last = l == L - 1;
    const auto li = static_cast<std::size_t>(l);
    const auto k = m.conv(l);
    const Eigen::Ref<const matrix<T>> in = l == 0 ? x : Eigen::Ref<const matrix<T>>(cache.h[li]);
    gemm_rows<T>(in, P[k], proj);
    spmm<T>(last ? p.a_out : p.a, proj, z);
    if (halo != nullptr && halo->has(l)) {
      const auto& hl = halo->layers[li];
      matrix<T> hproj, zh;
      gemm_rows<T>(*hl.rows, P[k], hproj);
      spmm<T>(last ? hl.block_out : hl.block, hproj, zh);
      z += zh;
    }
    z.rowwise() += P[k + 1].row(0);
    if (c.kind == model_kind::sage) {
      if (last) {
        auto& ri = cache.root_in[li];
        ri.resize(static_cast<std::int64_t>(p.out_rows.size()), in.cols());
        for (std::size_t i = 0; i < p.out_rows.size(); ++i)
          ri.row(static_cast<std::int64_t>(i)) = in.row(p.out_rows[i]);
        matrix<T> root;
        gemm_rows<T>(ri, P[k + 4], root);
        z += root;
      } else {
        matrix<T> root;
        gemm_rows<T>(in, P[k + 4], root);
        z += root;
      }
    }
    const row_vector<T> gamma = P[k + 2].row(0), beta = P[k + 3].row(0);
    layer_norm_forward<T>(z, gamma, beta, y, cache.xhat[li], cache.inv_std[li]);
    auto& a = cache.act[li];
    a = y.cwiseMax(T(0));
    if (halo != nullptr && !last && halo->on_activation) halo->on_activation(l, in, a);
    matrix<T>& out = last ? cache.h.emplace_back() : cache.h[li + 1];
    if (train && c.dropout > 0) {
      auto& mk = cache.mask[li];
      mk.resize(a.rows(), a.cols());
      const std::int64_t rows = a.rows(), cols = a.cols();
#pragma omp parallel for schedule(static)
      for (std::int64_t r = 0; r < rows; ++r)
        for (std::int64_t j = 0; j < cols; ++j)
          mk(r, j) =
              dropout_keep(key.seed, key.step, static_cast<std::uint64_t>(l),
                           static_cast<std::uint64_t>(r), static_cast<std::uint64_t>(j), c.dropout)
                  ? keep_scale
                  : T(0);
      out = a.cwiseProduct(mk);
    } else {
      out = a;
    }
  }
  gemm_rows<T>(cache.h.back(), P[m.head()], cache.logits);
  cache.logits.rowwise() += P[m.head() + 1].row(0);
  return cache.logits;
}

/// Backward pass for d(loss)/d(logits) = `dlogits`; `grads` gets one matrix per parameter.
/// `halo`: the terms the forward pass used (their rows are constants).
template <class T>
void backward(const model<T>& m, Eigen::Ref<const matrix<T>> x, const propagation& p,
              const forward_cache<T>& cache, const matrix<T>& dlogits,
              std::vector<matrix<T>>& grads, const halo_terms<T>* halo = nullptr) {
  const auto& c = m.config();
  const auto& P = m.params();
  const std::int64_t L = c.layers;
  grads.resize(P.size());
  const auto hd = m.head();
  gemm_tn<T>(cache.h.back(), dlogits, grads[hd]);
  grads[hd + 1] = col_sums<T>(dlogits);
  matrix<T> dh, dz, dproj, tmp;
  gemm_rows<T>(dlogits, P[hd].transpose(), dh);  // r x hidden
  for (std::int64_t l = L - 1; l >= 0; --l) {
    const bool last = l == L - 1;
    const auto li = static_cast<std::size_t>(l);
    const auto k = m.conv(l);
    const Eigen::Ref<const matrix<T>> in = l == 0 ? x : Eigen::Ref<const matrix<T>>(cache.h[li]);
    // through dropout and ReLU
    if (cache.mask[li].size() > 0) dh.array() *= cache.mask[li].array();
    dh.array() *= (cache.act[li].array() > T(0)).template cast<T>();
    row_vector<T> dgamma, dbeta;
    const row_vector<T> gamma = P[k + 2].row(0);
    layer_norm_backward<T>(dh, cache.xhat[li], cache.inv_std[li], gamma, dz, dgamma, dbeta);
    grads[k + 2] = dgamma;
    grads[k + 3] = dbeta;
    grads[k + 1] = col_sums<T>(dz);
    spmm<T>(last ? p.a_out_t.ref() : p.at.ref(), dz, dproj);  // n x hidden
    gemm_tn<T>(in, dproj, grads[k]);
    if (halo != nullptr && halo->has(l)) {
      const auto& hl = halo->layers[li];
      matrix<T> dhp, gw;
      spmm<T>(last ? hl.block_out_t : hl.block_t, dz, dhp);  // h x hidden
      gemm_tn<T>(*hl.rows, dhp, gw);
      grads[k] += gw;
    }
    if (c.kind == model_kind::sage) {
      if (last)
        gemm_tn<T>(cache.root_in[li], dz, grads[k + 4]);
      else
        gemm_tn<T>(in, dz, grads[k + 4]);
    }
    if (l == 0) break;
    gemm_rows<T>(dproj, P[k].transpose(), tmp);  // n x in
    if (c.kind == model_kind::sage) {
      matrix<T> droot;
      gemm_rows<T>(dz, P[k + 4].transpose(), droot);
      if (last) {
        for (std::size_t i = 0; i < p.out_rows.size(); ++i)
          tmp.row(p.out_rows[i]) += droot.row(static_cast<std::int64_t>(i));
      } else {
        tmp += droot;
      }
    }
    dh.swap(tmp);
  }
}

}  // namespace gcn
