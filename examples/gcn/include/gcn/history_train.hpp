// gcn: partition-parallel GCN training on IBMB batches with historical embeddings
// (GNNAutoScale-style halo rows from `ibmb::history_store`, corrected at read time by
// identity / momentum / re-transform / the SAT predictor; see docs/history.md).
//
// Per batch b (local rows: outputs first) and conv layer l:
//   Z_l = S_local (H_l W_l) + S_halo,l (Hhalo_l W_l) + b_l
// with S_halo the halo -> batch block of the history plan (global normalized weights).
// Conv 0 reads the exact features of its halo (as GNNAutoScale loads x for the 1-hop halo);
// conv l >= 1 reads cached layer l-1 (the activation H_l, or for re-transform the input
// aggregation of conv l-1, turned into H_l with the current weights). Halo rows are
// constants in the backward pass.
//
// Workers: `partitions` logical workers, each owning a METIS part and the batches whose
// outputs lie mostly in it. A round runs one batch per worker with the same weights; the
// workers' gradients are averaged in worker order and one Adam step is taken; then the
// rounds' pushes are applied to the store in worker order (the SAT predictor and the monitor
// learn from them there, alternating with the GNN). `threads` OS threads execute the
// workers; the result does not depend on it.
//
// With a `worker_exchange` of size R > 1 (MPI ranks, gcn/mpi_exchange.hpp) every rank holds
// the whole trainer but runs only the workers w with w % R == rank; after each round the
// ranks exchange their workers' results (gradients, loss counts, the rows to push and their
// neighbour drift), and every rank then combines them exactly as the single process does,
// in worker order. The model, the store, the SAT predictor and the monitor stay identical on
// every rank, bit for bit equal to the threaded run with the same `partitions`.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <exception>
#include <memory>
#include <numeric>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "ibmb/history/corrector.hpp"
#include "ibmb/history/monitor.hpp"
#include "ibmb/history/plan.hpp"
#include "ibmb/history/predictor.hpp"
#include "ibmb/history/store.hpp"
#include "ibmb/partition/metis.hpp"
#include "train.hpp"

namespace gcn {

enum class history_mode { none, cache, retransform, momentum, sat };

inline std::string_view to_string(history_mode h) {
  switch (h) {
    case history_mode::none:
      return "none";
    case history_mode::cache:
      return "cache";
    case history_mode::retransform:
      return "retransform";
    case history_mode::momentum:
      return "momentum";
    case history_mode::sat:
      return "sat";
  }
  return "?";
}

inline std::optional<history_mode> parse_history_mode(std::string_view s) {
  for (auto h : {history_mode::none, history_mode::cache, history_mode::retransform,
                 history_mode::momentum, history_mode::sat})
    if (s == to_string(h)) return h;
  return std::nullopt;
}

/// Moves each process's round results to every process: MPI ranks as workers
/// (gcn/mpi_exchange.hpp implements it over MPI_COMM_WORLD). Collective: every process calls
/// `allgather` the same number of times.
class worker_exchange {
 public:
  virtual ~worker_exchange() = default;
  [[nodiscard]] virtual int rank() const = 0;
  [[nodiscard]] virtual int size() const = 0;
  /// Every process's `mine`, indexed by rank, on every process.
  virtual std::vector<std::vector<std::byte>> allgather(std::span<const std::byte> mine) = 0;
};

struct history_train_params {
  history_mode mode = history_mode::cache;
  /// Halo nodes per batch (by summed edge weight); < 0 all neighbours (GNNAutoScale), 0 none.
  /// `history_mode::none` always uses 0.
  std::int64_t budget = -1;
  std::int32_t partitions = 1;   ///< logical workers (METIS parts)
  int threads = 1;               ///< OS threads running the workers (does not change results)
  std::int64_t audit_every = 0;  ///< exact staleness audit every k epochs; 0 = never
  /// Forward-only refresh (full graph, current weights) of the halo rows no training batch
  /// contains, at the start of every k-th epoch (0 = never): IBMB's training batches output
  /// only training nodes, so without it such rows are never written and read as zeros.
  std::int64_t refresh_every = 0;
  std::int64_t metis_seed = 0;
  int ring = 3;
  ibmb::sat_params sat;
  ibmb::momentum_params momentum;
  /// Not owned; null or size 1: one process. Otherwise this process runs the workers
  /// w % size == rank and exchanges rounds through it (needs partitions >= size).
  worker_exchange* exchange = nullptr;
};

/// A `batch_plan` with the batches of `store` (outputs and nodes sorted).
inline ibmb::batch_plan<std::int64_t> plan_of_store(const ibmb::batch_store& store) {
  ibmb::batch_plan<std::int64_t> plan;
  for (std::size_t b = 0; b < store.num_batches(); ++b) {
    const auto v = store.batch(b);
    std::vector<std::int64_t> outs(v.output_ids().begin(), v.output_ids().end());
    std::vector<std::int64_t> nodes(v.node_ids.begin(), v.node_ids.end());
    std::sort(outs.begin(), outs.end());
    std::sort(nodes.begin(), nodes.end());
    plan.push_batch(outs, nodes);
  }
  return plan;
}

/// Which worker owns each batch: the part holding most of its outputs (ties: smaller part).
inline std::vector<std::int32_t> assign_batches(const ibmb::batch_store& store,
                                                std::span<const std::int32_t> part,
                                                std::int32_t parts) {
  std::vector<std::int32_t> owner(store.num_batches(), 0);
  for (std::size_t b = 0; b < store.num_batches(); ++b) {
    std::vector<std::int64_t> cnt(static_cast<std::size_t>(parts), 0);
    for (auto v : store.batch(b).output_ids()) ++cnt[static_cast<std::size_t>(part[v])];
    owner[b] = static_cast<std::int32_t>(std::max_element(cnt.begin(), cnt.end()) - cnt.begin());
  }
  return owner;
}

class history_trainer {
 public:
  /// `store`: the training batches (materialized from `ds.graph` with `norm`, no extra
  /// self-loops); `full`: the normalized whole graph (audits); `order`: the batch order
  /// (empty = 0, 1, ...).
  history_trainer(const ibmb::dataset& ds, const ibmb::batch_store& store, const full_graph& full,
                  const model_config& cfg, history_train_params p,
                  std::vector<std::int64_t> order = {})
      : ds_(ds), store_(store), full_(full), cfg_(cfg), p_(std::move(p)) {
    IBMB_EXPECTS(cfg.kind == model_kind::gcn,
                 "history_trainer: historical embeddings need --model gcn");
    IBMB_EXPECTS(p_.partitions >= 1 && p_.threads >= 1,
                 "history_trainer: partitions = ", p_.partitions, ", threads = ", p_.threads);
    IBMB_EXPECTS(p_.audit_every >= 0, "history_trainer: audit_every = ", p_.audit_every);
    IBMB_EXPECTS(store.num_batches() >= 1, "history_trainer: the store has no batches");
    if (p_.exchange != nullptr && p_.exchange->size() > 1) {
      ex_ = p_.exchange;
      IBMB_EXPECTS(p_.partitions >= ex_->size(), "history_trainer: ", p_.partitions,
                   " partition(s) for ", ex_->size(), " processes (need one per process)");
    }
    check_fits(cfg, ds);
    if (p_.mode == history_mode::none) p_.budget = 0;
    const auto N = ds.num_nodes();
    const std::int64_t C = cfg.layers - 1;  // cached layers
    if (order.empty()) {
      order.resize(store.num_batches());
      std::iota(order.begin(), order.end(), 0);
    }
    // Workers and their batches.
    std::vector<std::int32_t> owner(store.num_batches(), 0);
    if (p_.partitions > 1) {
      ibmb::partition_params pp;
      pp.parts = p_.partitions;
      pp.seed = p_.metis_seed;
      const auto pr = ibmb::metis_partition(ds.graph.view(), pp);
      edge_cut_ = pr.edge_cut;
      owner = assign_batches(store, pr.part, p_.partitions);
    }
    work_.resize(static_cast<std::size_t>(p_.partitions));
    for (auto b : order)
      work_[static_cast<std::size_t>(owner[static_cast<std::size_t>(b)])].batches.push_back(b);
    // Per batch: propagation, labels, halo blocks.
    const auto plan = plan_of_store(store);
    ibmb::history_plan_params hp;
    hp.num_layers = std::max<std::int64_t>(C, 1);
    hp.budget = {p_.budget};
    hp.norm = store.norm();
    hp.add_self_loops = false;
    hplan_ = ibmb::make_history_plan(ds.graph.view(), plan, hp);
    if (audits() && p_.mode == history_mode::none) {
      hp.budget = {-1};  // audit what the dropped halo misses
      audit_plan_ = ibmb::make_history_plan(ds.graph.view(), plan, hp);
    }
    batches_.resize(store.num_batches());
    for (std::size_t b = 0; b < store.num_batches(); ++b) {
      const auto v = store.batch(b);
      auto& B = batches_[b];
      std::vector<std::int64_t> rows(static_cast<std::size_t>(v.num_outputs));
      std::iota(rows.begin(), rows.end(), 0);
      B.prop = make_propagation(detail::batch_ref(v), cfg.kind, rows, true, true);
      B.labels = detail::labels_of(ds, v.output_ids());
      const auto& h0 = hplan_.at(b, 0);
      IBMB_EXPECTS(h0.num_batch_rows() == v.num_nodes(), "history_trainer: batch ", b, " has ",
                   v.num_nodes(), " nodes, its history plan ", h0.num_batch_rows());
      B.blocks.resize(static_cast<std::size_t>(cfg.layers));
      B.owned.resize(2 * static_cast<std::size_t>(cfg.layers));
      for (std::int64_t l = 0; l < cfg.layers; ++l) {
        // conv 0: the feature halo (= cached layer 0's halo); conv l: cached layer l-1.
        const auto& h = hplan_.at(b, std::max<std::int64_t>(0, l - 1));
        const auto li = static_cast<std::size_t>(l);
        auto& k = B.blocks[li];
        k.block = {h.num_batch_rows(), h.num_halo(), h.indptr.data(), h.indices.data(),
                   h.weights.data()};
        k.block_out = k.block;
        k.block_out.rows = v.num_outputs;
        B.owned[2 * li] = transpose(k.block);
        B.owned[2 * li + 1] = transpose(k.block_out);
        k.block_t = B.owned[2 * li].ref();
        k.block_out_t = B.owned[2 * li + 1].ref();
      }
    }
    if (p_.mode == history_mode::none && !audits()) return;
    {  // halo rows no batch contains: only a refresh writes them
      std::vector<std::uint8_t> in_batch(static_cast<std::size_t>(N), 0);
      for (auto v : plan.nodes) in_batch[static_cast<std::size_t>(v)] = 1;
      for (auto v : hplan_.all_halo_nodes())
        if (!in_batch[static_cast<std::size_t>(v)]) uncovered_.push_back(v);
    }
    // Store, corrector, monitor.
    const auto perm = ibmb::history_permutation(plan, N);
    std::vector<std::int64_t> dims;
    for (std::int64_t l = 0; l < C; ++l)
      dims.push_back(p_.mode == history_mode::retransform ? (l == 0 ? cfg.in : cfg.hidden)
                                                          : cfg.hidden);
    if (C == 0) return;
    const auto& hp_for_ring = p_.mode == history_mode::none ? audit_plan_ : hplan_;
    ibmb::history_options ho;
    ho.num_nodes = N;
    ho.dims = dims;
    ho.ring = p_.mode == history_mode::none || p_.mode == history_mode::cache ||
                      p_.mode == history_mode::retransform
                  ? 0
                  : p_.ring;
    if (ho.ring > 0) ho.ring_nodes = hp_for_ring.all_halo_nodes();
    hstore_ = ibmb::history_store(std::move(ho), perm);
    if (p_.mode == history_mode::retransform && audits()) {
      ibmb::history_options mo;
      mo.num_nodes = N;
      mo.dims.assign(static_cast<std::size_t>(C), cfg.hidden);
      mo.ring = 0;
      mirror_ = ibmb::history_store(std::move(mo), perm);
    }
    switch (p_.mode) {
      case history_mode::none:
      case history_mode::cache:
        corr_ = std::make_unique<ibmb::identity_corrector>();
        break;
      case history_mode::momentum:
        corr_ = std::make_unique<ibmb::momentum_corrector>(p_.momentum);
        break;
      case history_mode::retransform:
        corr_ = std::make_unique<ibmb::retransform_corrector>();
        break;
      case history_mode::sat: {
        auto s = std::make_unique<ibmb::sat_predictor>(p_.sat);
        sat_ = s.get();
        corr_ = std::move(s);
        break;
      }
    }
  }

  [[nodiscard]] bool audits() const { return p_.audit_every > 0 && cfg_.layers >= 2; }
  [[nodiscard]] const ibmb::staleness_monitor& monitor() const { return mon_; }
  [[nodiscard]] const ibmb::history_store& store() const { return hstore_; }
  [[nodiscard]] const ibmb::history_plan& plan() const { return hplan_; }
  [[nodiscard]] const ibmb::sat_predictor* sat() const { return sat_; }
  [[nodiscard]] std::int64_t edge_cut() const { return edge_cut_; }
  [[nodiscard]] std::int64_t epochs_done() const { return epoch_; }
  /// Seconds spent in audits per epoch (0 when none ran); not part of training time.
  [[nodiscard]] const std::vector<double>& audit_seconds() const { return audit_seconds_; }
  /// Batches per worker.
  [[nodiscard]] std::vector<std::int64_t> worker_batches() const {
    std::vector<std::int64_t> r;
    for (const auto& w : work_) r.push_back(static_cast<std::int64_t>(w.batches.size()));
    return r;
  }
  /// Never-written halo reads during training (rows read as zeros).
  [[nodiscard]] std::int64_t never_written_reads() const { return unwritten_.load(); }
  [[nodiscard]] std::int64_t halo_rows_read() const { return halo_read_.load(); }
  /// Halo nodes that no training batch contains (written only by refreshes).
  [[nodiscard]] std::int64_t uncovered_halo_nodes() const {
    return static_cast<std::int64_t>(uncovered_.size());
  }

  /// One epoch: ceil(max batches per worker) rounds; then an audit when due.
  epoch_stats epoch(model<float>& m, adam<float>& opt, std::uint64_t seed) {
    IBMB_EXPECTS(m.config().layers == cfg_.layers && m.config().hidden == cfg_.hidden &&
                     m.config().in == cfg_.in && m.config().kind == cfg_.kind,
                 "history_trainer::epoch: the model does not match the trainer's config");
    if (p_.mode == history_mode::retransform) set_transforms(m);
    if (p_.refresh_every > 0 && epoch_ % p_.refresh_every == 0 && p_.mode != history_mode::none &&
        !uncovered_.empty() && cfg_.layers >= 2)
      refresh(m, opt.steps());
    std::size_t rounds = 0;
    for (const auto& w : work_) rounds = std::max(rounds, w.batches.size());
    epoch_stats s;
    double loss_sum = 0;
    const auto W = static_cast<std::size_t>(p_.partitions);
    // This process's workers (all of them without an exchange).
    std::vector<std::size_t> mine;
    for (std::size_t w = 0; w < W; ++w)
      if (ex_ == nullptr ||
          static_cast<int>(w % static_cast<std::size_t>(ex_->size())) == ex_->rank())
        mine.push_back(w);
    const auto T = std::min<std::size_t>(static_cast<std::size_t>(p_.threads), mine.size());
    for (std::size_t r = 0; r < rounds; ++r) {
      const std::int64_t t = opt.steps();
      for (auto& wk : work_) wk.active = r < wk.batches.size();
      auto run = [&](std::size_t tid) {
#ifdef _OPENMP
        const int saved = omp_get_max_threads();
        if (T > 1) omp_set_num_threads(std::max(1, saved / static_cast<int>(T)));
#endif
        for (std::size_t i = tid; i < mine.size(); i += T) {
          const auto w = mine[i];
          auto& wk = work_[w];
          if (!wk.active) continue;
          try {
            step_batch(m, wk, static_cast<std::size_t>(wk.batches[r]), t,
                       {seed, static_cast<std::uint64_t>(t) * W + w});
          } catch (...) {
            wk.error = std::current_exception();
          }
        }
#ifdef _OPENMP
        omp_set_num_threads(saved);
#endif
      };
      if (T == 1) {
        run(0);
      } else {
        std::vector<std::thread> th;
        for (std::size_t i = 1; i < T; ++i) th.emplace_back(run, i);
        run(0);
        for (auto& x : th) x.join();
      }
      if (ex_ != nullptr) exchange_round(mine);
      // Combine in worker order.
      std::vector<matrix<float>> g;
      std::int64_t active = 0;
      for (auto& wk : work_) {
        if (wk.error) std::rethrow_exception(std::exchange(wk.error, nullptr));
        if (!wk.active) continue;
        if (active++ == 0)
          g = wk.grads;
        else
          for (std::size_t i = 0; i < g.size(); ++i) g[i] += wk.grads[i];
        loss_sum += wk.loss.loss * static_cast<double>(wk.loss.count);
        s.count += wk.loss.count;
        s.correct += wk.loss.correct;
        unwritten_ += std::exchange(wk.unwritten, 0);
        halo_read_ += std::exchange(wk.halo_read, 0);
      }
      if (active > 1)
        for (auto& x : g) x /= static_cast<float>(active);
      opt.step(m.params(), g);
      // The round's writes, in worker order (observers learn here).
      for (auto& wk : work_) {
        if (!wk.active) continue;
        for (auto& pw : wk.pending) {
          const auto v = store_.batch(static_cast<std::size_t>(wk.batches[r]));
          if (pw.mirror)
            mirror_.push(pw.layer, v.node_ids, pw.rows, t, observers(true));
          else
            hstore_.push(pw.layer, v.node_ids, pw.rows, t, observers(false), pw.drift);
        }
        wk.pending.clear();
      }
    }
    s.loss = s.count ? loss_sum / static_cast<double>(s.count) : 0.0;
    ++epoch_;
    audit_seconds_.push_back(0.0);
    if (audits() && epoch_ % p_.audit_every == 0) {
      const auto t0 = std::chrono::steady_clock::now();
      audit(m, opt.steps());
      audit_seconds_.back() = seconds_since(t0);
    }
    return s;
  }

  /// Logits of batch `b`'s outputs in inference mode (no dropout), halo rows read (and
  /// corrected) from the store as in training, nothing written.
  matrix<float> logits(const model<float>& m, std::size_t b, std::int64_t step) {
    IBMB_EXPECTS(b < batches_.size(), "history_trainer::logits: batch ", b, " of ",
                 batches_.size());
    if (p_.mode == history_mode::retransform) set_transforms(m);
    worker wk;
    step_batch(m, wk, b, step, {}, false);
    return wk.cache.logits;
  }

  /// Forward-only refresh of the uncovered halo rows with the current weights (store.refresh;
  /// the observers see it as a refresh write).
  void refresh(const model<float>& m, std::int64_t step) {
    const auto& fc = full_forward(m);
    const auto nu = uncovered_.size();
    std::vector<float> rows;
    matrix<float> agg;
    for (std::int64_t l = 0; l + 1 < cfg_.layers; ++l) {
      const auto li = static_cast<std::size_t>(l);
      const auto& act = fc.act[li];
      rows.resize(nu * static_cast<std::size_t>(cfg_.hidden));
      for (std::size_t i = 0; i < nu; ++i)
        Eigen::Map<row_vector<float>>(rows.data() + i * static_cast<std::size_t>(cfg_.hidden),
                                      cfg_.hidden) = act.row(uncovered_[i]);
      if (p_.mode == history_mode::retransform) {
        if (audits()) mirror_.refresh(l, uncovered_, rows, step, observers(true));
        // The input aggregation of conv l over the whole graph.
        const auto sub = gather_rows(full_.ref(), uncovered_);
        if (l == 0) {
          const const_map<float> x(ds_.features.data(), ds_.num_nodes(), ds_.num_features);
          spmm<float>(sub.ref(), x, agg);
        } else {
          spmm<float>(sub.ref(), fc.act[li - 1], agg);
        }
        hstore_.refresh(l, uncovered_,
                        std::span<const float>(agg.data(), static_cast<std::size_t>(agg.size())),
                        step, observers(false));
      } else {
        hstore_.refresh(l, uncovered_, rows, step, observers(false));
      }
    }
  }

  /// Exact audit with the current weights (never touches the live store): every batch's halo
  /// reads at every cached layer against the full-graph activations.
  void audit(const model<float>& m, std::int64_t step) {
    const std::int64_t C = cfg_.layers - 1;
    if (C < 1) return;
    if (p_.mode == history_mode::retransform) set_transforms(m);
    const bool re = p_.mode == history_mode::retransform;
    const ibmb::history_store& live = re ? mirror_ : hstore_;
    auto& sh = mon_.begin_audit(live, epoch_, step);
    const auto& fc = full_forward(m);
    std::vector<std::int64_t> all(static_cast<std::size_t>(ds_.num_nodes()));
    std::iota(all.begin(), all.end(), 0);
    for (std::int64_t l = 0; l < C; ++l)
      sh.push(l, all,
              std::span<const float>(
                  fc.act[static_cast<std::size_t>(l)].data(),
                  static_cast<std::size_t>(fc.act[static_cast<std::size_t>(l)].size())),
              step);
    const auto& ap = p_.mode == history_mode::none ? audit_plan_ : hplan_;
    const auto hd = static_cast<std::size_t>(cfg_.hidden);
    std::vector<float> cached, corrected, mcached, bcached, delta, drift;
    std::vector<std::uint8_t> valid;
    for (std::size_t b = 0; b < store_.num_batches(); ++b) {
      const auto v = store_.batch(b);
      for (std::int64_t l = 0; l < C; ++l) {
        const auto& h = ap.at(b, l);
        if (h.halo.empty()) continue;
        const auto nh = h.halo.size();
        corrected.assign(nh * hd, 0.0f);
        if (p_.mode == history_mode::none) {
          cached.assign(nh * hd, 0.0f);
          mon_.audit_rows(live, l, h.halo, cached, corrected);
          continue;
        }
        const auto d = static_cast<std::size_t>(hstore_.dim(l));
        cached.resize(nh * d);
        std::span<const float> dr;
        if (sat_ != nullptr && p_.sat.use_neighbor_drift) {
          // Neighbour drift as at read time, with the exact batch rows standing in for the
          // fresh ones.
          const auto n = static_cast<std::size_t>(v.num_nodes());
          bcached.resize(n * d);
          hstore_.pull(l, v.node_ids, bcached);
          delta.resize(n * d);
          valid.assign(n, 0);
          const auto& ex = fc.act[static_cast<std::size_t>(l)];
          for (std::size_t i = 0; i < n; ++i) {
            valid[i] = hstore_.last_written(l, v.node_ids[i]) >= 0;
            for (std::size_t j = 0; j < d; ++j)
              delta[i * d + j] =
                  valid[i] ? ex(v.node_ids[i], static_cast<std::int64_t>(j)) - bcached[i * d + j]
                           : 0.0f;
          }
          drift.resize(nh * d);
          ibmb::halo_neighbor_drift(h, delta, static_cast<std::int64_t>(d), drift, valid);
          dr = drift;
        }
        ibmb::read_halo(hstore_, *corr_, l, step, h.halo, cached, corrected, dr);
        if (re) {
          mcached.resize(nh * hd);
          mirror_.pull(l, h.halo, mcached);
          mon_.audit_rows(live, l, h.halo, mcached, corrected);
        } else {
          mon_.audit_rows(live, l, h.halo, cached, corrected);
        }
      }
    }
    mon_.end_audit();
  }

 private:
  struct batch_data {
    propagation prop;
    std::vector<std::int64_t> labels;
    std::vector<halo_layer<float>> blocks;  // rows unset
    std::vector<sparse_owned> owned;        // the transposes blocks refer to
  };
  struct pending_write {
    std::int64_t layer = 0;
    bool mirror = false;
    std::vector<float> rows, drift;
  };
  struct worker {
    std::vector<std::int64_t> batches;
    bool active = false;
    std::exception_ptr error;
    forward_cache<float> cache;
    std::vector<matrix<float>> grads;
    loss_result loss;
    std::vector<float> fbuf;
    std::vector<matrix<float>> halo_rows;  // per conv layer
    std::vector<pending_write> pending;
    std::int64_t unwritten = 0, halo_read = 0;  // this round's halo reads
  };

  // ---- the round's results across processes (native byte order: same binary, one machine) ----
  template <class T>
  static void put(std::vector<std::byte>& b, const T& x) {
    static_assert(std::is_trivially_copyable_v<T>);
    const auto o = b.size();
    b.resize(o + sizeof(T));
    std::memcpy(b.data() + o, &x, sizeof(T));
  }
  template <class T>
  static void put_span(std::vector<std::byte>& b, std::span<const T> x) {
    put(b, static_cast<std::int64_t>(x.size()));
    const auto o = b.size();
    b.resize(o + x.size_bytes());
    if (!x.empty()) std::memcpy(b.data() + o, x.data(), x.size_bytes());
  }
  struct reader {
    std::span<const std::byte> b;
    std::size_t at = 0;
    int from = 0;
    void need(std::size_t n) const {
      if (n > b.size() - at)
        throw ibmb::backend_error(ibmb::detail::concat(
            "history_trainer: the round message of rank ", from, " ends at byte ", b.size(),
            ", needed ", n, " more at offset ", at));
    }
    template <class T>
    T get() {
      need(sizeof(T));
      T x;
      std::memcpy(&x, b.data() + at, sizeof(T));
      at += sizeof(T);
      return x;
    }
    template <class T>
    void get_into(T* out, std::size_t n) {
      need(n * sizeof(T));
      if (n > 0) std::memcpy(out, b.data() + at, n * sizeof(T));
      at += n * sizeof(T);
    }
    template <class T>
    std::vector<T> get_vector() {
      const auto n = get<std::int64_t>();
      if (n < 0 || static_cast<std::size_t>(n) > (b.size() - at) / sizeof(T))
        throw ibmb::backend_error(ibmb::detail::concat(
            "history_trainer: the round message of rank ", from, " has a bad length ", n,
            " at offset ", at - sizeof(std::int64_t)));
      std::vector<T> v(static_cast<std::size_t>(n));
      get_into(v.data(), v.size());
      return v;
    }
  };

  /// Sends this process's active workers' results to every process and fills the other
  /// processes' workers from theirs; a worker's error travels as its message, so every
  /// process rethrows the same first error in worker order.
  void exchange_round(std::span<const std::size_t> mine) {
    std::vector<std::byte> buf;
    for (const auto w : mine) {
      auto& wk = work_[w];
      if (!wk.active) continue;
      put(buf, static_cast<std::int64_t>(w));
      if (wk.error) {
        std::string msg = "unknown error";
        try {
          std::rethrow_exception(wk.error);
        } catch (const std::exception& e) {
          msg = e.what();
        } catch (...) {
        }
        put(buf, std::int8_t{1});
        put_span(buf, std::span<const char>(msg));
        continue;
      }
      put(buf, std::int8_t{0});
      put(buf, wk.loss.loss);
      put(buf, wk.loss.count);
      put(buf, wk.loss.correct);
      put(buf, wk.unwritten);
      put(buf, wk.halo_read);
      put(buf, static_cast<std::int64_t>(wk.grads.size()));
      for (const auto& g : wk.grads) {
        put(buf, static_cast<std::int64_t>(g.rows()));
        put(buf, static_cast<std::int64_t>(g.cols()));
        put_span(buf, std::span<const float>(g.data(), static_cast<std::size_t>(g.size())));
      }
      put(buf, static_cast<std::int64_t>(wk.pending.size()));
      for (const auto& pw : wk.pending) {
        put(buf, pw.layer);
        put(buf, static_cast<std::int8_t>(pw.mirror));
        put_span(buf, std::span<const float>(pw.rows));
        put_span(buf, std::span<const float>(pw.drift));
      }
    }
    const auto all = ex_->allgather(buf);
    IBMB_EXPECTS(static_cast<int>(all.size()) == ex_->size(), "history_trainer: the exchange ",
                 "returned ", all.size(), " messages for ", ex_->size(), " processes");
    const auto R = static_cast<std::size_t>(ex_->size());
    for (int q = 0; q < ex_->size(); ++q) {
      if (q == ex_->rank()) continue;
      reader rd{all[static_cast<std::size_t>(q)], 0, q};
      while (rd.at < rd.b.size()) {
        const auto w = rd.get<std::int64_t>();
        if (w < 0 || static_cast<std::size_t>(w) >= work_.size() ||
            static_cast<std::size_t>(w) % R != static_cast<std::size_t>(q) ||
            !work_[static_cast<std::size_t>(w)].active)
          throw ibmb::backend_error(ibmb::detail::concat("history_trainer: rank ", q,
                                                         " sent results of worker ", w,
                                                         ", which it does not run this round"));
        auto& wk = work_[static_cast<std::size_t>(w)];
        wk.pending.clear();
        if (rd.get<std::int8_t>() != 0) {
          const auto msg = rd.get_vector<char>();
          wk.error = std::make_exception_ptr(ibmb::error(std::string(msg.begin(), msg.end())));
          continue;
        }
        wk.loss.loss = rd.get<double>();
        wk.loss.count = rd.get<std::int64_t>();
        wk.loss.correct = rd.get<std::int64_t>();
        wk.unwritten = rd.get<std::int64_t>();
        wk.halo_read = rd.get<std::int64_t>();
        const auto ng = rd.get<std::int64_t>();
        if (ng < 0 || ng > 1 << 20)
          throw ibmb::backend_error(
              ibmb::detail::concat("history_trainer: rank ", q, " sent ", ng, " gradients"));
        wk.grads.resize(static_cast<std::size_t>(ng));
        for (auto& g : wk.grads) {
          const auto rows = rd.get<std::int64_t>(), cols = rd.get<std::int64_t>();
          const auto n = rd.get<std::int64_t>();
          if (rows < 0 || cols < 0 || n != rows * cols)
            throw ibmb::backend_error(ibmb::detail::concat("history_trainer: rank ", q,
                                                           " sent a gradient of ", rows, " x ",
                                                           cols, " with ", n, " values"));
          g.resize(rows, cols);
          rd.get_into(g.data(), static_cast<std::size_t>(n));
        }
        const auto np = rd.get<std::int64_t>();
        if (np < 0 || np > 1 << 20)
          throw ibmb::backend_error(
              ibmb::detail::concat("history_trainer: rank ", q, " sent ", np, " writes"));
        wk.pending.resize(static_cast<std::size_t>(np));
        for (auto& pw : wk.pending) {
          pw.layer = rd.get<std::int64_t>();
          pw.mirror = rd.get<std::int8_t>() != 0;
          pw.rows = rd.get_vector<float>();
          pw.drift = rd.get_vector<float>();
        }
      }
    }
  }

  std::span<ibmb::history_observer* const> observers(bool mirror) {
    obs_.clear();
    if (sat_ != nullptr && !mirror) obs_.push_back(sat_);
    if (audits() && (mirror || p_.mode != history_mode::retransform)) obs_.push_back(&mon_);
    return obs_;
  }

  /// Activations of every node with the current weights, no dropout.
  const forward_cache<float>& full_forward(const model<float>& m) {
    if (full_prop_.n == 0) {
      const std::vector<std::int64_t> one{0};
      full_prop_ = make_propagation(full_.ref(), cfg_.kind, one, false, false);
    }
    const const_map<float> x(ds_.features.data(), ds_.num_nodes(), ds_.num_features);
    forward<float>(m, x, full_prop_, false, {}, full_cache_);
    return full_cache_;
  }

  void set_transforms(const model<float>& m) {
    auto* rt = static_cast<ibmb::retransform_corrector*>(corr_.get());
    for (std::int64_t l = 0; l + 1 < cfg_.layers; ++l) {
      const auto k = m.conv(l);
      const model<float>* mp = &m;
      rt->set_transform(l, cfg_.hidden,
                        [mp, k, hid = cfg_.hidden](std::int64_t, std::span<const float> in,
                                                   std::int64_t rows, std::span<float> out) {
                          const auto& P = mp->params();
                          const auto din = P[k].rows();
                          const const_map<float> xin(in.data(), rows, din);
                          matrix<float> z, y, xhat;
                          std::vector<float> inv;
                          gemm_rows<float>(xin, P[k], z);
                          z.rowwise() += P[k + 1].row(0);
                          const row_vector<float> gamma = P[k + 2].row(0), beta = P[k + 3].row(0);
                          layer_norm_forward<float>(z, gamma, beta, y, xhat, inv);
                          Eigen::Map<matrix<float>>(out.data(), rows, hid) = y.cwiseMax(0.0f);
                        });
    }
  }

  void step_batch(const model<float>& m, worker& wk, std::size_t b, std::int64_t t, dropout_key key,
                  bool train = true) {
    const auto v = store_.batch(b);
    auto& B = batches_[b];
    const auto L = cfg_.layers;
    const float* f = detail::batch_features(v, ds_, wk.fbuf);
    const const_map<float> x(f, v.num_nodes(), ds_.num_features);
    wk.halo_rows.resize(static_cast<std::size_t>(L));
    halo_terms<float> ht;
    ht.layers = B.blocks;
    for (std::int64_t l = 0; l < L; ++l) {
      auto& hr = wk.halo_rows[static_cast<std::size_t>(l)];
      hr.resize(0, l == 0 ? cfg_.in : cfg_.hidden);
      ht.layers[static_cast<std::size_t>(l)].rows = &hr;
    }
    wk.pending.clear();
    const bool use_halo = p_.mode != history_mode::none;
    if (use_halo) {
      // Conv 0: the exact features of the halo.
      const auto& h0 = hplan_.at(b, 0);
      auto& hr = wk.halo_rows[0];
      hr.resize(h0.num_halo(), cfg_.in);
      for (std::int64_t i = 0; i < h0.num_halo(); ++i)
        hr.row(i) = const_map<float>(ds_.features.data(), ds_.num_nodes(), ds_.num_features)
                        .row(h0.halo[static_cast<std::size_t>(i)]);
      ht.on_activation = [&](std::int64_t l, Eigen::Ref<const matrix<float>> in,
                             const matrix<float>& act) { on_layer(wk, b, v, l, t, in, act); };
    }
    const auto& logits =
        forward<float>(m, x, B.prop, train, key, wk.cache, use_halo ? &ht : nullptr);
    if (!train) {
      wk.pending.clear();
      return;
    }
    matrix<float> dlogits;
    wk.loss = softmax_cross_entropy<float>(logits, B.labels, &dlogits);
    backward<float>(m, x, B.prop, wk.cache, dlogits, wk.grads, use_halo ? &ht : nullptr);
  }

  // After conv l (l < L-1) computed H_{l+1} = act of the batch's rows: read cached layer l's
  // halo for conv l+1 and queue the push of the batch's rows.
  void on_layer(worker& wk, std::size_t b, const ibmb::batch_view& v, std::int64_t l,
                std::int64_t t, Eigen::Ref<const matrix<float>> in, const matrix<float>& act) {
    const auto n = static_cast<std::size_t>(v.num_nodes());
    const auto& h = hplan_.at(b, l);
    const auto d = static_cast<std::size_t>(hstore_.dim(l));
    pending_write pw;
    pw.layer = l;
    if (p_.mode == history_mode::retransform) {
      // The input aggregation of conv l: S_local H_l + S_halo Hhalo_l.
      matrix<float> agg, ah;
      spmm<float>(batches_[b].prop.a, in, agg);
      const auto& hin = wk.halo_rows[static_cast<std::size_t>(l)];
      if (hin.rows() > 0) {
        spmm<float>(batches_[b].blocks[static_cast<std::size_t>(l)].block, hin, ah);
        agg += ah;
      }
      pw.rows.assign(agg.data(), agg.data() + agg.size());
      if (audits()) {
        pending_write mw;
        mw.layer = l;
        mw.mirror = true;
        mw.rows.assign(act.data(), act.data() + act.size());
        wk.pending.push_back(std::move(mw));
      }
    } else {
      pw.rows.assign(act.data(), act.data() + act.size());
    }
    std::vector<float> drift_h;
    if (sat_ != nullptr && p_.sat.use_neighbor_drift) {
      std::vector<float> cached_b(n * d), delta(n * d);
      std::vector<std::uint8_t> valid(n, 0);
      hstore_.pull(l, v.node_ids, cached_b);
      for (std::size_t i = 0; i < n; ++i) {
        valid[i] = hstore_.last_written(l, v.node_ids[i]) >= 0;
        for (std::size_t j = 0; j < d; ++j)
          delta[i * d + j] = valid[i] ? pw.rows[i * d + j] - cached_b[i * d + j] : 0.0f;
      }
      drift_h.resize(h.halo.size() * d);
      ibmb::halo_neighbor_drift(h, delta, static_cast<std::int64_t>(d), drift_h, valid);
      pw.drift.resize(n * d);
      ibmb::batch_neighbor_drift(v.graph, delta, static_cast<std::int64_t>(d), pw.drift, valid);
    }
    if (!h.halo.empty()) {
      auto& hr = wk.halo_rows[static_cast<std::size_t>(l) + 1];
      hr.resize(h.num_halo(), cfg_.hidden);
      std::vector<float> cached(h.halo.size() * d);
      const auto unw = ibmb::read_halo(
          hstore_, *corr_, l, t, h.halo, cached,
          std::span<float>(hr.data(), static_cast<std::size_t>(hr.size())), drift_h);
      wk.unwritten += unw;  // summed into the totals in worker order after the round
      wk.halo_read += static_cast<std::int64_t>(h.halo.size());
    }
    wk.pending.push_back(std::move(pw));
  }

  const ibmb::dataset& ds_;
  const ibmb::batch_store& store_;
  const full_graph& full_;
  model_config cfg_;
  history_train_params p_;
  std::vector<worker> work_;
  std::vector<batch_data> batches_;
  ibmb::history_plan hplan_, audit_plan_;
  ibmb::history_store hstore_, mirror_;
  std::unique_ptr<ibmb::corrector> corr_;
  ibmb::sat_predictor* sat_ = nullptr;
  ibmb::staleness_monitor mon_;
  std::vector<ibmb::history_observer*> obs_;
  propagation full_prop_;
  forward_cache<float> full_cache_;
  std::vector<std::int64_t> uncovered_;
  std::int64_t edge_cut_ = 0, epoch_ = 0;
  std::atomic<std::int64_t> unwritten_{0}, halo_read_{0};
  std::vector<double> audit_seconds_;
  worker_exchange* ex_ = nullptr;  // set only for more than one process
};

}  // namespace gcn
