// gcn: training and inference on the full graph and on an `ibmb::batch_store`.
//
// Full graph: the normalized adjacency of the whole (preprocessed) graph, the same
// normalization the batches carry (`ibmb::materialize_options::norm`), so full-graph and
// batched inference compute the same function wherever a batch holds a node's receptive
// field. Batches: each batch's local CSR already holds the globally normalized weights;
// its outputs are the first `num_outputs` nodes, so the last layer runs on that prefix.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <functional>
#include <numeric>
#include <span>
#include <vector>

#include "ibmb/batch/materialize.hpp"
#include "ibmb/batch/schedule.hpp"
#include "ibmb/batch/store_types.hpp"
#include "ibmb/core/error.hpp"
#include "ibmb/graph/dataset.hpp"
#include "ibmb/graph/normalize.hpp"
#include "model.hpp"
#include "optim.hpp"

namespace gcn {

inline double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

/// The whole graph of `ds` with the weights of `norm` (owned).
struct full_graph {
  std::int64_t n = 0;
  std::span<const std::int64_t> indptr, indices;
  std::vector<float> weights;
  [[nodiscard]] sparse_ref ref() const {
    return {n, n, indptr.data(), indices.data(), weights.data()};
  }
};

inline full_graph make_full_graph(const ibmb::dataset& ds, ibmb::normalization norm) {
  full_graph f;
  const auto g = ds.graph.view();
  f.n = g.num_rows;
  f.indptr = g.indptr;
  f.indices = g.indices;
  f.weights = ibmb::normalized_weights(g, norm);
  return f;
}

/// Per-node predictions and their score on a set of nodes.
struct eval_result {
  double loss = 0;
  double accuracy = 0;
  std::int64_t count = 0;  ///< labelled nodes scored
  std::int64_t correct = 0;
  std::int64_t missing = 0;               ///< requested nodes no batch produced (counted as wrong)
  std::vector<std::int64_t> predictions;  ///< per requested node (-1 = missing)
  double seconds = 0;
};

namespace detail {

template <class T>
std::vector<std::int64_t> argmax_rows(const matrix<T>& logits) {
  std::vector<std::int64_t> out(static_cast<std::size_t>(logits.rows()));
  for (std::int64_t r = 0; r < logits.rows(); ++r) {
    Eigen::Index a = 0;
    logits.row(r).maxCoeff(&a);
    out[static_cast<std::size_t>(r)] = a;
  }
  return out;
}

inline void score(eval_result& e, const ibmb::dataset& ds, std::span<const std::int64_t> nodes) {
  e.count = e.correct = e.missing = 0;
  for (std::size_t i = 0; i < nodes.size(); ++i) {
    const auto y = ds.labels.empty() ? -1 : ds.labels[static_cast<std::size_t>(nodes[i])];
    if (e.predictions[i] < 0) ++e.missing;
    if (y < 0) continue;
    ++e.count;
    e.correct += e.predictions[i] == y;
  }
  e.accuracy = e.count ? static_cast<double>(e.correct) / static_cast<double>(e.count) : 0.0;
}

inline std::vector<std::int64_t> labels_of(const ibmb::dataset& ds,
                                           std::span<const std::int64_t> nodes) {
  std::vector<std::int64_t> y(nodes.size(), -1);
  if (!ds.labels.empty())
    for (std::size_t i = 0; i < nodes.size(); ++i)
      y[i] = ds.labels[static_cast<std::size_t>(nodes[i])];
  return y;
}

/// A batch's features as float32: the stored bytes when they are float32, else decoded (or
/// gathered from the dataset for an ids-only store) into `buf`.
inline const float* batch_features(const ibmb::batch_view& b, const ibmb::dataset& ds,
                                   std::vector<float>& buf) {
  if (b.dtype == ibmb::feature_dtype::float32) return b.features().data();
  buf.resize(static_cast<std::size_t>(b.num_nodes() * ds.num_features));
  if (b.dtype == ibmb::feature_dtype::none)
    ibmb::read_batch_features(ds, b, buf);
  else
    b.decode_features(buf);
  return buf.data();
}

inline sparse_ref batch_ref(const ibmb::batch_view& b) {
  return {b.num_nodes(), b.num_nodes(), b.graph.indptr.data(), b.graph.indices.data(),
          b.graph.weights.data()};
}

}  // namespace detail

/// A seeded random split of the labelled nodes (for datasets that ship none): a
/// `train_fraction` / `val_fraction` / rest partition of a seeded permutation, each sorted.
inline void random_split(ibmb::dataset& ds, double train_fraction, double val_fraction,
                         std::uint64_t seed) {
  IBMB_EXPECTS(train_fraction > 0 && val_fraction > 0 && train_fraction + val_fraction < 1,
               "random_split: fractions ", train_fraction, " / ", val_fraction);
  std::vector<std::int64_t> nodes;
  for (std::int64_t v = 0; v < ds.num_nodes(); ++v)
    if (!ds.labels.empty() && ds.labels[static_cast<std::size_t>(v)] >= 0) nodes.push_back(v);
  // Fisher-Yates with the counter-based generator: the same split on every platform.
  for (std::size_t i = nodes.size(); i > 1; --i) {
    const auto j = static_cast<std::size_t>(mix64(seed * 0x9e3779b97f4a7c15ull + i) % i);
    std::swap(nodes[i - 1], nodes[j]);
  }
  const auto n = static_cast<double>(nodes.size());
  const auto a = static_cast<std::ptrdiff_t>(train_fraction * n);
  const auto b = a + static_cast<std::ptrdiff_t>(val_fraction * n);
  ds.train_idx.assign(nodes.begin(), nodes.begin() + a);
  ds.val_idx.assign(nodes.begin() + a, nodes.begin() + b);
  ds.test_idx.assign(nodes.begin() + b, nodes.end());
  std::sort(ds.train_idx.begin(), ds.train_idx.end());
  std::sort(ds.val_idx.begin(), ds.val_idx.end());
  std::sort(ds.test_idx.begin(), ds.test_idx.end());
}

inline void check_fits(const model_config& c, const ibmb::dataset& ds) {
  IBMB_EXPECTS(c.in == ds.num_features, "gcn: the model expects ", c.in,
               " input features, the dataset has ", ds.num_features);
  IBMB_EXPECTS(c.classes >= ds.num_classes(), "gcn: the model has ", c.classes,
               " classes, the dataset's labels need ", ds.num_classes());
}

/// Full-graph inference on `nodes`: every layer over the whole graph (row-parallel SpMM),
/// the last one only for `nodes`.
template <class T = float>
eval_result evaluate_full(const model<T>& m, const ibmb::dataset& ds, const full_graph& g,
                          std::span<const std::int64_t> nodes) {
  check_fits(m.config(), ds);
  const auto t0 = std::chrono::steady_clock::now();
  const auto p = make_propagation(g.ref(), m.config().kind, nodes, false, false);
  const const_map<float> x(ds.features.data(), ds.num_nodes(), ds.num_features);
  forward_cache<T> cache;
  const auto& logits = [&]() -> const matrix<T>& {
    if constexpr (std::is_same_v<T, float>)
      return forward<T>(m, x, p, false, {}, cache);
    else
      return forward<T>(m, x.template cast<T>(), p, false, {}, cache);
  }();
  eval_result e;
  e.predictions = detail::argmax_rows(logits);
  const auto y = detail::labels_of(ds, nodes);
  e.loss = softmax_cross_entropy<T>(logits, y, nullptr).loss;
  detail::score(e, ds, nodes);
  e.seconds = seconds_since(t0);
  return e;
}

/// Batched inference over one or several stores (a plan materialized in pieces when the whole
/// store would not fit in memory): `add(store)` runs every batch once and keeps the
/// predictions for its outputs; `result(nodes)` scores them (a node no batch outputs counts as
/// wrong and is reported in `missing`). `seconds` covers the forward passes and the scoring.
class store_evaluator {
 public:
  store_evaluator(const model<float>& m, const ibmb::dataset& ds)
      : m_(m), ds_(ds), pred_(static_cast<std::size_t>(ds.num_nodes()), -1) {
    check_fits(m.config(), ds);
  }

  void add(const ibmb::batch_store& store) {
    const auto t0 = std::chrono::steady_clock::now();
    for (std::size_t b = 0; b < store.num_batches(); ++b) {
      const auto v = store.batch(b);
      const float* f = detail::batch_features(v, ds_, buf_);
      const const_map<float> x(f, v.num_nodes(), ds_.num_features);
      std::vector<std::int64_t> rows(static_cast<std::size_t>(v.num_outputs));
      std::iota(rows.begin(), rows.end(), 0);
      const auto p = make_propagation(detail::batch_ref(v), m_.config().kind, rows, true, false);
      const auto& logits = forward<float>(m_, x, p, false, {}, cache_);
      const auto am = detail::argmax_rows(logits);
      const auto out = v.output_ids();
      const auto y = detail::labels_of(ds_, out);
      const auto l = softmax_cross_entropy<float>(logits, y, nullptr);
      loss_sum_ += l.loss * static_cast<double>(l.count);
      loss_count_ += l.count;
      for (std::size_t i = 0; i < out.size(); ++i) pred_[static_cast<std::size_t>(out[i])] = am[i];
    }
    seconds_ += seconds_since(t0);
  }

  [[nodiscard]] eval_result result(std::span<const std::int64_t> nodes) const {
    const auto t0 = std::chrono::steady_clock::now();
    eval_result e;
    e.predictions.resize(nodes.size());
    for (std::size_t i = 0; i < nodes.size(); ++i)
      e.predictions[i] = pred_[static_cast<std::size_t>(nodes[i])];
    e.loss = loss_count_ ? loss_sum_ / static_cast<double>(loss_count_) : 0.0;
    detail::score(e, ds_, nodes);
    e.seconds = seconds_ + seconds_since(t0);
    return e;
  }

 private:
  const model<float>& m_;
  const ibmb::dataset& ds_;
  std::vector<std::int64_t> pred_;
  std::vector<float> buf_;
  forward_cache<float> cache_;
  double loss_sum_ = 0, seconds_ = 0;
  std::int64_t loss_count_ = 0;
};

/// Batched inference: every batch of `store` once, predictions for its outputs; scored on
/// `nodes` (a node no batch outputs counts as wrong and is reported in `missing`).
inline eval_result evaluate_store(const model<float>& m, const ibmb::batch_store& store,
                                  const ibmb::dataset& ds, std::span<const std::int64_t> nodes) {
  store_evaluator ev(m, ds);
  ev.add(store);
  return ev.result(nodes);
}

/// Loss and accuracy of one pass over the training data.
struct epoch_stats {
  double loss = 0;  ///< mean over labelled outputs
  std::int64_t count = 0, correct = 0;
  [[nodiscard]] double accuracy() const {
    return count ? static_cast<double>(correct) / static_cast<double>(count) : 0.0;
  }
};

/// One optimizer step on one forward/backward pass.
template <class T>
loss_result train_step(model<T>& m, adam<T>& opt, Eigen::Ref<const matrix<T>> x,
                       const propagation& p, std::span<const std::int64_t> labels,
                       std::uint64_t seed, forward_cache<T>& cache, std::vector<matrix<T>>& grads) {
  const auto& logits =
      forward<T>(m, x, p, true, {seed, static_cast<std::uint64_t>(opt.steps())}, cache);
  matrix<T> dlogits;
  const auto l = softmax_cross_entropy<T>(logits, labels, &dlogits);
  backward<T>(m, x, p, cache, dlogits, grads);
  opt.step(m.params(), grads);
  return l;
}

/// Full-batch training data: every layer over the whole graph, the loss on `train`.
class full_trainer {
 public:
  full_trainer(const ibmb::dataset& ds, const full_graph& g, std::span<const std::int64_t> train,
               model_kind kind)
      : ds_(ds),
        p_(make_propagation(g.ref(), kind, train, false, true)),
        y_(detail::labels_of(ds, train)) {}

  epoch_stats epoch(model<float>& m, adam<float>& opt, std::uint64_t seed) {
    const const_map<float> x(ds_.features.data(), ds_.num_nodes(), ds_.num_features);
    const auto l = train_step<float>(m, opt, x, p_, y_, seed, cache_, grads_);
    return {l.loss, l.count, l.correct};
  }

 private:
  const ibmb::dataset& ds_;
  propagation p_;
  std::vector<std::int64_t> y_;
  forward_cache<float> cache_;
  std::vector<matrix<float>> grads_;
};

/// Mini-batch training data: the batches of a store in a fixed order (replayed every epoch),
/// with their propagation matrices and transposes prepared once.
class store_trainer {
 public:
  store_trainer(const ibmb::dataset& ds, const ibmb::batch_store& store, model_kind kind,
                std::vector<std::int64_t> order)
      : ds_(ds), store_(store), order_(std::move(order)) {
    if (order_.empty()) {
      order_.resize(store.num_batches());
      std::iota(order_.begin(), order_.end(), 0);
    }
    for (std::size_t b = 0; b < store.num_batches(); ++b) {
      const auto v = store.batch(b);
      std::vector<std::int64_t> rows(static_cast<std::size_t>(v.num_outputs));
      std::iota(rows.begin(), rows.end(), 0);
      props_.push_back(make_propagation(detail::batch_ref(v), kind, rows, true, true));
      labels_.push_back(detail::labels_of(ds, v.output_ids()));
    }
  }

  epoch_stats epoch(model<float>& m, adam<float>& opt, std::uint64_t seed) {
    epoch_stats s;
    double loss_sum = 0;
    for (const auto b : order_) {
      const auto v = store_.batch(static_cast<std::size_t>(b));
      const float* f = detail::batch_features(v, ds_, buf_);
      const const_map<float> x(f, v.num_nodes(), ds_.num_features);
      const auto l = train_step<float>(m, opt, x, props_[static_cast<std::size_t>(b)],
                                       labels_[static_cast<std::size_t>(b)], seed, cache_, grads_);
      loss_sum += l.loss * static_cast<double>(l.count);
      s.count += l.count;
      s.correct += l.correct;
    }
    s.loss = s.count ? loss_sum / static_cast<double>(s.count) : 0.0;
    return s;
  }
  [[nodiscard]] const std::vector<std::int64_t>& order() const { return order_; }

 private:
  const ibmb::dataset& ds_;
  const ibmb::batch_store& store_;
  std::vector<std::int64_t> order_;
  std::vector<propagation> props_;
  std::vector<std::vector<std::int64_t>> labels_;
  std::vector<float> buf_;
  forward_cache<float> cache_;
  std::vector<matrix<float>> grads_;
};

/// The reference batch order: a closed tour maximizing the label distance of consecutive
/// batches, computed once.
inline std::vector<std::int64_t> reference_order(const ibmb::batch_store& store,
                                                 std::int64_t num_classes, std::uint64_t seed) {
  if (store.num_batches() <= 1 || !store.has_labels()) return {};
  const auto dist = ibmb::label_distance_matrix(store, num_classes);
  ibmb::schedule_params sp;
  sp.seed = seed;
  return ibmb::batch_schedule(dist, store.num_batches(), sp).order;
}

struct fit_params {
  std::int64_t epochs = 100;
  double lr = 1e-3;
  plateau_params plateau;
  std::int64_t patience = 50;   ///< early stopping on validation accuracy
  std::int64_t min_epochs = 0;  ///< no early stop before this many epochs
  std::uint64_t seed = 0;       ///< dropout masks
};

struct epoch_record {
  std::int64_t epoch = 0;
  double loss = 0, train_acc = 0, val_loss = 0, val_acc = 0, lr = 0;
  double seconds = 0;      ///< training pass of this epoch
  double val_seconds = 0;  ///< validation pass
  double elapsed = 0;      ///< since the start of `fit`
  bool best = false;
};

struct fit_result {
  std::vector<epoch_record> epochs;
  std::int64_t best_epoch = -1;
  double best_val_acc = 0;
  double time_to_best = 0;  ///< elapsed seconds at the end of the best epoch
  bool stopped_early = false;
};

/// The training loop: `train_epoch(m, opt)` does one pass, `validate(m)` scores the
/// validation split; ReduceLROnPlateau on the validation loss, early stopping on the
/// validation accuracy, and `m` ends with the best weights.
template <class TrainEpoch, class Validate>
fit_result fit(model<float>& m, const fit_params& fp, TrainEpoch&& train_epoch, Validate&& validate,
               const std::function<void(const epoch_record&)>& on_epoch = {}) {
  IBMB_EXPECTS(fp.epochs >= 1 && fp.lr > 0 && fp.patience >= 1, "gcn::fit: epochs = ", fp.epochs,
               ", lr = ", fp.lr, ", patience = ", fp.patience);
  adam<float> opt(fp.lr);
  reduce_on_plateau sched(fp.plateau);
  early_stopping stop(fp.patience, fp.min_epochs);
  fit_result r;
  auto best = m.params();
  const auto t0 = std::chrono::steady_clock::now();
  for (std::int64_t e = 0; e < fp.epochs; ++e) {
    epoch_record rec;
    rec.epoch = e;
    rec.lr = opt.lr();
    auto t = std::chrono::steady_clock::now();
    const epoch_stats s = train_epoch(m, opt);
    rec.seconds = seconds_since(t);
    rec.loss = s.loss;
    rec.train_acc = s.accuracy();
    t = std::chrono::steady_clock::now();
    const eval_result v = validate(m);
    rec.val_seconds = seconds_since(t);
    rec.val_loss = v.loss;
    rec.val_acc = v.accuracy;
    rec.elapsed = seconds_since(t0);
    if (stop.update(e, v.accuracy)) {
      best = m.params();
      rec.best = true;
      r.time_to_best = rec.elapsed;
    }
    opt.set_lr(sched.step(v.loss, opt.lr()));
    r.epochs.push_back(rec);
    if (on_epoch) on_epoch(rec);
    if (stop.should_stop(e)) {
      r.stopped_early = e + 1 < fp.epochs;
      break;
    }
  }
  m.params() = best;
  r.best_epoch = stop.best_epoch();
  r.best_val_acc = stop.best();
  return r;
}

}  // namespace gcn
