// ibmb: per-layer historical embeddings (GNNAutoScale-style cache) keyed by a permuted node
// id, so that a batch's rows are a few contiguous ranges of one row-major float32 table.
//
// Every row remembers the step it was last written; a row never written reads as zeros and
// is counted (an error with `history_options::strict`). Optionally each tracked row keeps a
// ring of its previous versions (for the momentum corrector and the SAT predictor).
// Checkpoints: `save_history` / `load_history` (see docs/history.md for the layout).
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <limits>
#include <numeric>
#include <span>
#include <string>
#include <vector>

#include "ibmb/batch/plan.hpp"
#include "ibmb/core/crc32.hpp"
#include "ibmb/core/error.hpp"
#include "ibmb/core/file.hpp"
#include "ibmb/history/history_types.hpp"

namespace ibmb {

// ---- permutations and runs -----------------------------------------------------------------

/// Position of every node (perm[node]) that makes each batch's outputs one contiguous range,
/// in the batch's output order: the outputs of batch 0, then the new outputs of batch 1, ...,
/// then every node that is no batch's output, in id order. A node that is the output of
/// several batches sits with the first. Push the rows of a batch_view's output prefix and
/// they are one block copy.
template <class I>
std::vector<std::int64_t> history_permutation(const batch_plan<I>& plan, std::int64_t num_nodes) {
  IBMB_EXPECTS(num_nodes >= 0, "history_permutation: num_nodes = ", num_nodes);
  std::vector<std::int64_t> perm(static_cast<std::size_t>(num_nodes), -1);
  std::int64_t next = 0;
  for (std::size_t b = 0; b < plan.num_batches(); ++b)
    for (I v : plan.batch_outputs(b)) {
      if (v < 0 || static_cast<std::int64_t>(v) >= num_nodes)
        throw out_of_range(detail::concat("history_permutation: batch ", b, " has output ", v,
                                          " outside [0, ", num_nodes, ")"));
      auto& p = perm[static_cast<std::size_t>(v)];
      if (p < 0) p = next++;
    }
  for (auto& p : perm)
    if (p < 0) p = next++;
  return perm;
}

/// Position of every node grouping the parts of a partition (part 0's nodes first, in id
/// order within a part), e.g. from `metis_partition(...).part`.
inline std::vector<std::int64_t> history_permutation(std::span<const std::int32_t> part) {
  const auto n = static_cast<std::int64_t>(part.size());
  std::int64_t parts = 0;  // (64-bit: part[v] = INT32_MAX must not overflow p + 1)
  for (std::int64_t v = 0; v < n; ++v) {
    const auto p = part[static_cast<std::size_t>(v)];
    IBMB_EXPECTS(p >= 0, "history_permutation: part[", v, "] = ", p, " < 0");
    parts = std::max<std::int64_t>(parts, std::int64_t{p} + 1);
  }
  if (parts > n + 1) {  // sparse part ids: a stable sort, not a count per possible id
    std::vector<std::int64_t> order(part.size());
    std::iota(order.begin(), order.end(), std::int64_t{0});
    std::stable_sort(order.begin(), order.end(), [&](std::int64_t a, std::int64_t b) {
      return part[static_cast<std::size_t>(a)] < part[static_cast<std::size_t>(b)];
    });
    std::vector<std::int64_t> perm(part.size());
    for (std::size_t i = 0; i < order.size(); ++i)
      perm[static_cast<std::size_t>(order[i])] = static_cast<std::int64_t>(i);
    return perm;
  }
  std::vector<std::int64_t> start(static_cast<std::size_t>(parts) + 1, 0);
  for (auto p : part) ++start[static_cast<std::size_t>(p) + 1];
  for (std::size_t i = 0; i + 1 < start.size(); ++i) start[i + 1] += start[i];
  std::vector<std::int64_t> perm(part.size());
  for (std::int64_t v = 0; v < n; ++v)
    perm[static_cast<std::size_t>(v)] =
        start[static_cast<std::size_t>(part[static_cast<std::size_t>(v)])]++;
  return perm;
}

/// Splits a list of permuted positions into maximal runs that advance by one in both the
/// list and the table. A sorted list of node ids whose positions come from
/// `history_permutation` gives one run per contiguous range.
inline std::vector<history_run> contiguous_runs(std::span<const std::int64_t> positions) {
  std::vector<history_run> runs;
  for (std::size_t i = 0; i < positions.size(); ++i) {
    if (!runs.empty() && runs.back().start + runs.back().length == positions[i])
      ++runs.back().length;
    else
      runs.push_back({static_cast<std::int64_t>(i), positions[i], 1});
  }
  return runs;
}

// ---- the store -----------------------------------------------------------------------------

class history_store {
 public:
  history_store() = default;

  /// `perm`: position of every node (a permutation of [0, num_nodes)); empty = identity.
  explicit history_store(history_options opt, std::vector<std::int64_t> perm = {})
      : opt_(std::move(opt)) {
    const std::int64_t n = opt_.num_nodes;
    IBMB_EXPECTS(n >= 0, "history_store: num_nodes = ", n);
    IBMB_EXPECTS(!opt_.dims.empty(), "history_store: no layers (dims is empty)");
    for (std::size_t l = 0; l < opt_.dims.size(); ++l)
      IBMB_EXPECTS(opt_.dims[l] >= 1, "history_store: dims[", l, "] = ", opt_.dims[l],
                   " (expected >= 1)");
    IBMB_EXPECTS(opt_.ring >= 0 && opt_.ring <= history_options::max_ring,
                 "history_store: ring = ", opt_.ring, " not in [0, ", history_options::max_ring,
                 "]");
    if (perm.empty()) {
      perm.resize(static_cast<std::size_t>(n));
      std::iota(perm.begin(), perm.end(), std::int64_t{0});
    }
    IBMB_EXPECTS(static_cast<std::int64_t>(perm.size()) == n, "history_store: permutation has ",
                 perm.size(), " entries for ", n, " nodes");
    inv_.assign(static_cast<std::size_t>(n), -1);
    for (std::int64_t v = 0; v < n; ++v) {
      const auto p = perm[static_cast<std::size_t>(v)];
      IBMB_EXPECTS(p >= 0 && p < n, "history_store: permutation[", v, "] = ", p, " outside [0, ", n,
                   ")");
      IBMB_EXPECTS(inv_[static_cast<std::size_t>(p)] < 0, "history_store: position ", p,
                   " given to nodes ", inv_[static_cast<std::size_t>(p)], " and ", v);
      inv_[static_cast<std::size_t>(p)] = v;
    }
    perm_ = std::move(perm);
    // Ring slots: by node id.
    slot_.assign(opt_.ring > 0 ? static_cast<std::size_t>(n) : 0, -1);
    if (opt_.ring > 0) {
      if (opt_.ring_nodes) {
        auto r = *opt_.ring_nodes;
        std::sort(r.begin(), r.end());
        r.erase(std::unique(r.begin(), r.end()), r.end());
        for (auto v : r) {
          IBMB_EXPECTS(v >= 0 && v < n, "history_store: ring node ", v, " outside [0, ", n, ")");
          slot_[static_cast<std::size_t>(v)] = num_slots_++;
        }
        opt_.ring_nodes = std::move(r);
      } else {
        for (std::int64_t v = 0; v < n; ++v) slot_[static_cast<std::size_t>(v)] = num_slots_++;
      }
    } else if (opt_.ring_nodes) {
      opt_.ring_nodes->clear();
    }
    layers_.resize(opt_.dims.size());
    for (std::size_t l = 0; l < layers_.size(); ++l) {
      // Table (n x d) and ring (slots x ring x d) sizes must not wrap around.
      std::size_t table = 0, ring = 0;
      const bool wraps = __builtin_mul_overflow(static_cast<std::size_t>(n),
                                                static_cast<std::size_t>(opt_.dims[l]), &table) ||
                         __builtin_mul_overflow(static_cast<std::size_t>(num_slots_) *
                                                    static_cast<std::size_t>(opt_.ring),
                                                static_cast<std::size_t>(opt_.dims[l]), &ring) ||
                         table > std::numeric_limits<std::size_t>::max() / sizeof(float) ||
                         ring > std::numeric_limits<std::size_t>::max() / sizeof(float);
      IBMB_EXPECTS(!wraps, "history_store: layer ", l, ": ", n, " rows x ", opt_.dims[l],
                   " floats (ring ", opt_.ring, ") overflow the address space");
      auto& L = layers_[l];
      const auto d = static_cast<std::size_t>(opt_.dims[l]);
      L.table.assign(static_cast<std::size_t>(n) * d, 0.0f);
      L.written.assign(static_cast<std::size_t>(n), -1);
      const auto K = static_cast<std::size_t>(opt_.ring);
      const auto S = static_cast<std::size_t>(num_slots_);
      L.ring.assign(S * K * d, 0.0f);
      L.ring_step.assign(S * K, -1);
      L.ring_len.assign(S, 0);
      L.ring_head.assign(S, 0);
    }
  }

  history_store(const history_store& o) { *this = o; }
  history_store& operator=(const history_store& o) {
    if (this != &o) {
      opt_ = o.opt_;
      perm_ = o.perm_;
      inv_ = o.inv_;
      slot_ = o.slot_;
      num_slots_ = o.num_slots_;
      layers_ = o.layers_;
      unwritten_reads_.store(o.unwritten_reads_.load());
    }
    return *this;
  }
  history_store(history_store&& o) noexcept { *this = std::move(o); }
  history_store& operator=(history_store&& o) noexcept {
    opt_ = std::move(o.opt_);
    perm_ = std::move(o.perm_);
    inv_ = std::move(o.inv_);
    slot_ = std::move(o.slot_);
    num_slots_ = o.num_slots_;
    layers_ = std::move(o.layers_);
    unwritten_reads_.store(o.unwritten_reads_.load());
    return *this;
  }

  /// A store of the same shape and permutation with nothing written and no ring (what the
  /// staleness monitor audits into).
  [[nodiscard]] history_store empty_like(int ring = 0) const {
    // Built field by field: copying the whole options (an optional vector) and resetting it
    // trips GCC 12's -Wmaybe-uninitialized.
    history_options o;
    o.num_nodes = opt_.num_nodes;
    o.dims = opt_.dims;
    o.ring = ring;
    o.strict = false;
    return history_store(std::move(o), perm_);
  }

  // ---- shape ----
  [[nodiscard]] const history_options& options() const { return opt_; }
  [[nodiscard]] std::int64_t num_nodes() const { return opt_.num_nodes; }
  [[nodiscard]] std::int64_t num_layers() const {
    return static_cast<std::int64_t>(layers_.size());
  }
  [[nodiscard]] std::int64_t dim(std::int64_t layer) const {
    check_layer(layer, "dim");
    return opt_.dims[static_cast<std::size_t>(layer)];
  }
  [[nodiscard]] int ring_depth() const { return opt_.ring; }
  [[nodiscard]] bool strict() const { return opt_.strict; }
  void set_strict(bool s) { opt_.strict = s; }

  // ---- permutation ----
  [[nodiscard]] std::int64_t position(std::int64_t node) const {
    check_node(node, "position");
    return perm_[static_cast<std::size_t>(node)];
  }
  [[nodiscard]] std::int64_t node_at(std::int64_t pos) const {
    check_node(pos, "node_at");
    return inv_[static_cast<std::size_t>(pos)];
  }
  /// perm[node] = position.
  [[nodiscard]] std::span<const std::int64_t> permutation() const { return perm_; }
  /// Block copies needed to move the rows of `nodes` (in that order).
  [[nodiscard]] std::vector<history_run> runs(std::span<const std::int64_t> nodes) const {
    std::vector<std::int64_t> pos(nodes.size());
    for (std::size_t i = 0; i < nodes.size(); ++i) pos[i] = position(nodes[i]);
    return contiguous_runs(pos);
  }

  /// Layer `layer`'s whole table in permuted order (row p is node node_at(p)).
  [[nodiscard]] std::span<const float> table(std::int64_t layer) const {
    check_layer(layer, "table");
    return layers_[static_cast<std::size_t>(layer)].table;
  }
  /// The cached row of `node` (zeros when never written; no counting).
  [[nodiscard]] std::span<const float> row(std::int64_t layer, std::int64_t node) const {
    const auto d = static_cast<std::size_t>(dim(layer));
    return std::span<const float>(layers_[static_cast<std::size_t>(layer)].table)
        .subspan(static_cast<std::size_t>(position(node)) * d, d);
  }

  // ---- writes ----
  /// Writes the fresh rows of `nodes` (rows.size() == nodes.size() x dim, in list order) and
  /// records `step` as their last write. Observers see the event before anything changes.
  /// `neighbor_drift` (optional, same shape as rows) is passed on to the observers.
  void push(std::int64_t layer, std::span<const std::int64_t> nodes, std::span<const float> rows,
            std::int64_t step, std::span<history_observer* const> observers = {},
            std::span<const float> neighbor_drift = {}) {
    write(layer, nodes, rows, step, observers, neighbor_drift, false, "push");
  }
  /// A write from a forward-only refresh pass (REST-style, or inference batches covering
  /// nodes no training batch outputs); otherwise the same as push.
  void refresh(std::int64_t layer, std::span<const std::int64_t> nodes, std::span<const float> rows,
               std::int64_t step, std::span<history_observer* const> observers = {},
               std::span<const float> neighbor_drift = {}) {
    write(layer, nodes, rows, step, observers, neighbor_drift, true, "refresh");
  }

  // ---- reads ----
  /// Gathers the cached rows of `nodes` into `out` (nodes.size() x dim). Returns how many of
  /// them were never written (they read as zeros); with `strict` such a read throws
  /// `ibmb::error`. Thread-safe against other reads.
  std::int64_t pull(std::int64_t layer, std::span<const std::int64_t> nodes,
                    std::span<float> out) const {
    check_layer(layer, "pull");
    const auto d = static_cast<std::size_t>(opt_.dims[static_cast<std::size_t>(layer)]);
    IBMB_EXPECTS(out.size() == nodes.size() * d, "history_store::pull: output holds ", out.size(),
                 " values, expected ", nodes.size(), " rows x ", d);
    const auto& L = layers_[static_cast<std::size_t>(layer)];
    std::int64_t unwritten = 0;
    for (std::size_t i = 0; i < nodes.size(); ++i) {
      check_node(nodes[i], "pull");
      if (L.written[static_cast<std::size_t>(nodes[i])] < 0) {
        if (opt_.strict)
          throw error(detail::concat("history_store::pull: layer ", layer, ", node ", nodes[i],
                                     " (list position ", i, ") was never written"));
        ++unwritten;
      }
    }
    const auto runs = this->runs(nodes);
    const auto nr = static_cast<std::int64_t>(runs.size());
#pragma omp parallel for schedule(dynamic, 64) if (nodes.size() * d > (1u << 16))
    for (std::int64_t r = 0; r < nr; ++r) {
      const auto& run = runs[static_cast<std::size_t>(r)];
      std::memcpy(out.data() + static_cast<std::size_t>(run.src) * d,
                  L.table.data() + static_cast<std::size_t>(run.start) * d,
                  static_cast<std::size_t>(run.length) * d * sizeof(float));
    }
    if (unwritten) unwritten_reads_.fetch_add(unwritten, std::memory_order_relaxed);
    return unwritten;
  }

  /// Reads of never-written rows since construction / the last `reset_counters`.
  [[nodiscard]] std::int64_t never_written_reads() const {
    return unwritten_reads_.load(std::memory_order_relaxed);
  }
  void reset_counters() { unwritten_reads_.store(0); }

  /// Step of the last write of `node` at `layer`; -1 if never written.
  [[nodiscard]] std::int64_t last_written(std::int64_t layer, std::int64_t node) const {
    check_layer(layer, "last_written");
    check_node(node, "last_written");
    return layers_[static_cast<std::size_t>(layer)].written[static_cast<std::size_t>(node)];
  }
  /// Steps since the last write (`step - last_written`), -1 if never written.
  [[nodiscard]] std::int64_t age(std::int64_t layer, std::int64_t node, std::int64_t step) const {
    const auto w = last_written(layer, node);
    return w < 0 ? -1 : step - w;
  }
  /// Rows of `layer` written at least once.
  [[nodiscard]] std::int64_t rows_written(std::int64_t layer) const {
    check_layer(layer, "rows_written");
    const auto& w = layers_[static_cast<std::size_t>(layer)].written;
    return static_cast<std::int64_t>(
        std::count_if(w.begin(), w.end(), [](std::int64_t s) { return s >= 0; }));
  }

  // ---- ring of previous versions ----
  [[nodiscard]] bool has_ring(std::int64_t node) const {
    check_node(node, "has_ring");
    return opt_.ring > 0 && slot_[static_cast<std::size_t>(node)] >= 0;
  }
  /// Previous versions of `node` available (0 .. ring_depth()); the current one is `row`.
  [[nodiscard]] int ring_size(std::int64_t layer, std::int64_t node) const {
    check_layer(layer, "ring_size");
    if (!has_ring(node)) return 0;
    return layers_[static_cast<std::size_t>(layer)]
        .ring_len[static_cast<std::size_t>(slot_[static_cast<std::size_t>(node)])];
  }
  /// The k-th previous version (k = 0: the one written just before the current row).
  [[nodiscard]] std::span<const float> ring_version(std::int64_t layer, std::int64_t node,
                                                    int k) const {
    const auto [L, idx] = ring_index(layer, node, k, "ring_version");
    const auto d = static_cast<std::size_t>(opt_.dims[static_cast<std::size_t>(layer)]);
    return std::span<const float>(L->ring).subspan(idx * d, d);
  }
  /// The step at which the k-th previous version was written.
  [[nodiscard]] std::int64_t ring_step(std::int64_t layer, std::int64_t node, int k) const {
    const auto [L, idx] = ring_index(layer, node, k, "ring_step");
    return L->ring_step[idx];
  }
  /// Bytes held by the tables and by the rings (for reports).
  [[nodiscard]] std::uint64_t table_bytes() const {
    std::uint64_t b = 0;
    for (const auto& L : layers_) b += L.table.size() * sizeof(float) + L.written.size() * 8;
    return b;
  }
  [[nodiscard]] std::uint64_t ring_bytes() const {
    std::uint64_t b = 0;
    for (const auto& L : layers_) b += L.ring.size() * sizeof(float) + L.ring_step.size() * 8;
    return b;
  }

  /// Same shape, permutation, contents, write steps and rings (counters are ignored).
  bool operator==(const history_store& o) const {
    return opt_.num_nodes == o.opt_.num_nodes && opt_.dims == o.opt_.dims &&
           opt_.ring == o.opt_.ring && opt_.ring_nodes == o.opt_.ring_nodes &&
           opt_.strict == o.opt_.strict && perm_ == o.perm_ && layers_ == o.layers_;
  }

 private:
  friend struct history_checkpoint_access;

  struct layer_data {
    std::vector<float> table;             // num_nodes x dim, permuted order
    std::vector<std::int64_t> written;    // by node id; -1 never
    std::vector<float> ring;              // slots x K x dim
    std::vector<std::int64_t> ring_step;  // slots x K
    std::vector<std::int32_t> ring_len;   // slots
    std::vector<std::int32_t> ring_head;  // slots: index of the most recent previous version
    bool operator==(const layer_data&) const = default;
  };

  void check_layer(std::int64_t layer, const char* fn) const {
    if (layer < 0 || layer >= num_layers())
      throw out_of_range(detail::concat("history_store::", fn, ": layer ", layer, " outside [0, ",
                                        num_layers(), ")"));
  }
  void check_node(std::int64_t node, const char* fn) const {
    if (node < 0 || node >= opt_.num_nodes)
      throw out_of_range(detail::concat("history_store::", fn, ": node ", node, " outside [0, ",
                                        opt_.num_nodes, ")"));
  }
  std::pair<const layer_data*, std::size_t> ring_index(std::int64_t layer, std::int64_t node, int k,
                                                       const char* fn) const {
    check_layer(layer, fn);
    const int have = ring_size(layer, node);
    if (k < 0 || k >= have)
      throw out_of_range(detail::concat("history_store::", fn, ": version ", k, " of node ", node,
                                        " at layer ", layer, " outside [0, ", have, ")"));
    const auto& L = layers_[static_cast<std::size_t>(layer)];
    const auto s = static_cast<std::size_t>(slot_[static_cast<std::size_t>(node)]);
    const int K = opt_.ring;
    const int h = L.ring_head[s];
    return {&L, s * static_cast<std::size_t>(K) + static_cast<std::size_t>((h - k + K) % K)};
  }

  void write(std::int64_t layer, std::span<const std::int64_t> nodes, std::span<const float> rows,
             std::int64_t step, std::span<history_observer* const> observers,
             std::span<const float> drift, bool is_refresh, const char* fn) {
    check_layer(layer, fn);
    const auto d = static_cast<std::size_t>(opt_.dims[static_cast<std::size_t>(layer)]);
    IBMB_EXPECTS(rows.size() == nodes.size() * d, "history_store::", fn, ": ", rows.size(),
                 " values for ", nodes.size(), " rows x ", d);
    IBMB_EXPECTS(drift.empty() || drift.size() == rows.size(), "history_store::", fn,
                 ": neighbor_drift holds ", drift.size(), " values, expected ", rows.size());
    IBMB_EXPECTS(step >= 0, "history_store::", fn, ": step = ", step, " < 0");
    auto& L = layers_[static_cast<std::size_t>(layer)];
    for (std::size_t i = 0; i < nodes.size(); ++i) {
      check_node(nodes[i], fn);
      // A write into the past would make ages negative and the ring unordered.
      IBMB_EXPECTS(L.written[static_cast<std::size_t>(nodes[i])] <= step, "history_store::", fn,
                   ": layer ", layer, ", node ", nodes[i], " written at step ",
                   L.written[static_cast<std::size_t>(nodes[i])], ", now step ", step);
    }
    {  // duplicates would rotate the ring twice and race on the row (any mode)
      std::vector<std::int64_t> s(nodes.begin(), nodes.end());
      std::sort(s.begin(), s.end());
      const auto it = std::adjacent_find(s.begin(), s.end());
      IBMB_EXPECTS(it == s.end(), "history_store::", fn, ": node ", *it, " listed twice");
    }
    if (!observers.empty()) {
      write_event e{this, layer, step, nodes, rows, drift, is_refresh};
      for (auto* o : observers)
        if (o) o->on_write(e);
    }
    const int K = opt_.ring;
    const auto n = static_cast<std::int64_t>(nodes.size());
    const bool par = n * static_cast<std::int64_t>(d) > (1 << 16);
    if (K > 0) {
#pragma omp parallel for schedule(static) if (par)
      for (std::int64_t i = 0; i < n; ++i) {
        const auto v = static_cast<std::size_t>(nodes[static_cast<std::size_t>(i)]);
        const auto s = slot_[v];
        if (s < 0 || L.written[v] < 0) continue;
        const auto su = static_cast<std::size_t>(s);
        const int h = (L.ring_head[su] + 1) % K;
        L.ring_head[su] = h;
        L.ring_len[su] = std::min(K, L.ring_len[su] + 1);
        const std::size_t idx = su * static_cast<std::size_t>(K) + static_cast<std::size_t>(h);
        std::memcpy(L.ring.data() + idx * d,
                    L.table.data() + static_cast<std::size_t>(perm_[v]) * d, d * sizeof(float));
        L.ring_step[idx] = L.written[v];
      }
    }
    const auto runs = this->runs(nodes);
    const auto nr = static_cast<std::int64_t>(runs.size());
#pragma omp parallel for schedule(dynamic, 64) if (par)
    for (std::int64_t r = 0; r < nr; ++r) {
      const auto& run = runs[static_cast<std::size_t>(r)];
      std::memcpy(L.table.data() + static_cast<std::size_t>(run.start) * d,
                  rows.data() + static_cast<std::size_t>(run.src) * d,
                  static_cast<std::size_t>(run.length) * d * sizeof(float));
    }
    for (auto v : nodes) L.written[static_cast<std::size_t>(v)] = step;
  }

  history_options opt_;
  std::vector<std::int64_t> perm_, inv_;
  std::vector<std::int64_t> slot_;  // ring slot of each node, -1 none
  std::int64_t num_slots_ = 0;
  std::vector<layer_data> layers_;
  mutable std::atomic<std::int64_t> unwritten_reads_{0};
};

// ---- checkpoints ---------------------------------------------------------------------------

namespace history_format {
inline constexpr char magic[8] = {'I', 'B', 'M', 'B', 'H', 'I', 'S', 'T'};
inline constexpr std::uint32_t version = 1;

/// 64-byte header; the payload follows (see docs/history.md).
struct header {
  char magic[8];
  std::uint32_t version;
  std::uint32_t flags;  ///< 1: strict, 2: ring_nodes given (else every node keeps a ring)
  std::uint64_t num_nodes;
  std::uint32_t num_layers;
  std::int32_t ring;
  std::uint64_t num_ring_nodes;
  std::uint64_t payload_bytes;
  std::uint32_t payload_crc32;
  std::uint32_t reserved;
  std::uint32_t reserved2;
  std::uint32_t header_crc32;  ///< crc32 of bytes [0, 60)
};
static_assert(sizeof(header) == 64, "ibmb: history checkpoint header must be 64 bytes");
}  // namespace history_format

struct history_checkpoint_access {
  static auto& layers(history_store& s) { return s.layers_; }
  static const auto& layers(const history_store& s) { return s.layers_; }
};

/// Writes `s` (options, permutation, tables, write steps, rings) to `path` atomically.
/// The never-written-read counter is not saved.
inline void save_history(const history_store& s, const std::filesystem::path& path) {
  using history_format::header;
  const auto& o = s.options();
  const auto& layers = history_checkpoint_access::layers(s);
  // The payload as a list of byte blocks, checksummed first, written second.
  std::vector<std::span<const std::byte>> blocks;
  auto add = [&](const auto& v) { blocks.push_back(std::as_bytes(std::span(v))); };
  add(o.dims);
  add(s.permutation());
  const std::vector<std::int64_t> no_ring;
  add(o.ring_nodes ? *o.ring_nodes : no_ring);
  for (const auto& L : layers) {
    add(L.table);
    add(L.written);
    add(L.ring);
    add(L.ring_step);
    add(L.ring_len);
    add(L.ring_head);
  }
  header h{};
  std::memcpy(h.magic, history_format::magic, 8);
  h.version = history_format::version;
  h.flags = (o.strict ? 1u : 0u) | (o.ring_nodes ? 2u : 0u);
  h.num_nodes = static_cast<std::uint64_t>(o.num_nodes);
  h.num_layers = static_cast<std::uint32_t>(o.dims.size());
  h.ring = o.ring;
  h.num_ring_nodes = o.ring_nodes ? o.ring_nodes->size() : 0;
  std::uint32_t crc = 0;
  for (auto b : blocks) {
    h.payload_bytes += b.size();
    crc = detail::crc32_update(crc, b.data(), b.size());
  }
  h.payload_crc32 = crc;
  h.header_crc32 = detail::crc32_update(0, &h, offsetof(header, header_crc32));
  atomic_write(path, [&](file_writer& w) {
    w.write(&h, sizeof h);
    for (auto b : blocks) w.write(b.data(), b.size());
  });
}

/// Reads a checkpoint written by `save_history`. A file that is truncated, has trailing
/// bytes, a bad magic/version, a checksum mismatch or inconsistent sizes is an
/// `ibmb::format_error` naming the file and the problem.
inline history_store load_history(const std::filesystem::path& path) {
  using history_format::header;
  const std::vector<char> buf = read_file(path);
  const std::string name = path.string();
  auto fail = [&](auto&&... a) -> void {
    throw format_error(detail::concat(name, ": history checkpoint: ", a...));
  };
  if (buf.size() < sizeof(header))
    fail("truncated: ", buf.size(), " bytes, the header alone needs ", sizeof(header));
  header h;
  std::memcpy(&h, buf.data(), sizeof h);
  if (std::memcmp(h.magic, history_format::magic, 8) != 0) fail("bad magic at offset 0");
  if (detail::crc32_update(0, &h, offsetof(header, header_crc32)) != h.header_crc32)
    fail("header checksum mismatch (offset ", offsetof(header, header_crc32), ")");
  if (h.version != history_format::version)
    fail("version ", h.version, " (this build reads ", history_format::version, ")");
  if (buf.size() - sizeof(header) != h.payload_bytes)
    fail(buf.size() - sizeof(header) < h.payload_bytes ? "truncated" : "trailing bytes",
         ": payload of ", buf.size() - sizeof(header), " bytes, header says ", h.payload_bytes);
  if (detail::crc32_update(0, buf.data() + sizeof(header), h.payload_bytes) != h.payload_crc32)
    fail("payload checksum mismatch");
  if (h.num_layers == 0 || h.ring < 0 || h.ring > history_options::max_ring ||
      h.num_nodes > (std::uint64_t{1} << 40) || h.num_ring_nodes > h.num_nodes)
    fail("implausible shape: ", h.num_nodes, " nodes, ", h.num_layers, " layers, ring ", h.ring,
         ", ", h.num_ring_nodes, " ring nodes");
  std::size_t off = sizeof(header);
  auto take = [&](auto& v, std::uint64_t count, const char* what) {
    using T = typename std::decay_t<decltype(v)>::value_type;
    if (count > (buf.size() - off) / sizeof(T))
      fail("section '", what, "' at offset ", off, " needs ", count, " elements, only ",
           (buf.size() - off) / sizeof(T), " left");
    v.resize(static_cast<std::size_t>(count));
    if (count == 0) return;  // memcpy's pointers must be valid even for 0 bytes
    std::memcpy(v.data(), buf.data() + off, static_cast<std::size_t>(count) * sizeof(T));
    off += static_cast<std::size_t>(count) * sizeof(T);
  };
  history_options o;
  o.num_nodes = static_cast<std::int64_t>(h.num_nodes);
  o.ring = h.ring;
  o.strict = (h.flags & 1u) != 0;
  take(o.dims, h.num_layers, "dims");
  for (std::size_t l = 0; l < o.dims.size(); ++l)
    if (o.dims[l] < 1 || o.dims[l] > (std::int64_t{1} << 24)) fail("dims[", l, "] = ", o.dims[l]);
  std::vector<std::int64_t> perm, ring_nodes;
  take(perm, h.num_nodes, "permutation");
  take(ring_nodes, h.num_ring_nodes, "ring_nodes");
  if (h.flags & 2u) o.ring_nodes = ring_nodes;
  // The payload the header's shape implies, checked against the actual payload before the
  // store allocates its tables (n x dims floats per layer): a small crafted file must not
  // demand a huge allocation. Slots as the constructor assigns them (distinct ring nodes,
  // every node, or none); sizes summed saturating in 64 bits.
  {
    std::uint64_t slots = 0;
    if (h.ring > 0) {
      if (h.flags & 2u) {
        auto r = ring_nodes;
        std::sort(r.begin(), r.end());
        slots = static_cast<std::uint64_t>(std::unique(r.begin(), r.end()) - r.begin());
      } else {
        slots = h.num_nodes;
      }
    }
    const auto sat_max = std::numeric_limits<std::uint64_t>::max();
    auto mul = [&](std::uint64_t a, std::uint64_t b) {
      std::uint64_t r = 0;
      return __builtin_mul_overflow(a, b, &r) ? sat_max : r;
    };
    auto add = [&](std::uint64_t a, std::uint64_t b) {
      std::uint64_t r = 0;
      return __builtin_add_overflow(a, b, &r) ? sat_max : r;
    };
    const auto n = h.num_nodes, K = static_cast<std::uint64_t>(h.ring);
    std::uint64_t need = mul(8, add(add(h.num_layers, n), h.num_ring_nodes));
    for (const auto d64 : o.dims) {
      const auto d = static_cast<std::uint64_t>(d64);
      need = add(need, mul(mul(n, d), sizeof(float)));              // table
      need = add(need, mul(n, sizeof(std::int64_t)));               // written
      need = add(need, mul(mul(mul(slots, K), d), sizeof(float)));  // ring
      need = add(need, mul(mul(slots, K), sizeof(std::int64_t)));   // ring_step
      need = add(need, mul(slots, 2 * sizeof(std::int32_t)));       // ring_len, ring_head
    }
    if (need != h.payload_bytes) {
      std::string dims;
      for (auto x : o.dims) dims += detail::concat(dims.empty() ? "" : ",", x);
      fail("the header's shape (", h.num_nodes, " nodes, dims ", dims, ", ring ", h.ring, " over ",
           slots, " slots) needs a payload of ",
           need == sat_max ? std::string("more than 2^64") : std::to_string(need),
           " bytes, the file holds ", h.payload_bytes);
    }
  }
  history_store s;
  try {
    s = history_store(o, perm);
  } catch (const invalid_argument& e) {
    fail("inconsistent content: ", e.what());
  }
  for (std::size_t l = 0; l < o.dims.size(); ++l) {
    auto& L = history_checkpoint_access::layers(s)[l];
    const auto sizes =
        std::array<std::size_t, 6>{L.table.size(),     L.written.size(),  L.ring.size(),
                                   L.ring_step.size(), L.ring_len.size(), L.ring_head.size()};
    take(L.table, sizes[0], "table");
    take(L.written, sizes[1], "written");
    take(L.ring, sizes[2], "ring");
    take(L.ring_step, sizes[3], "ring_step");
    take(L.ring_len, sizes[4], "ring_len");
    take(L.ring_head, sizes[5], "ring_head");
    for (auto w : L.written)
      if (w < -1) fail("layer ", l, ": write step ", w);
    for (std::size_t i = 0; i < L.ring_len.size(); ++i)
      if (L.ring_len[i] < 0 || L.ring_len[i] > o.ring || L.ring_head[i] < 0 ||
          (o.ring > 0 && L.ring_head[i] >= o.ring))
        fail("layer ", l, ": ring slot ", i, " has length ", L.ring_len[i], " and head ",
             L.ring_head[i]);
  }
  if (off != buf.size()) fail("trailing bytes at offset ", off);
  s.set_strict(o.strict);
  return s;
}

}  // namespace ibmb
