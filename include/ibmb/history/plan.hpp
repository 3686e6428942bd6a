// ibmb: the history plan of a fixed set of batches: per batch and cached layer its halo
// (neighbours of the batch's nodes outside the batch, in the full graph) and the halo ->
// batch edge block carrying the *global* normalized weights, computed once (IBMB batches are
// fixed). An optional halo budget keeps only the most important halo nodes (by edge weight
// or by PPR score), spanning pure IBMB (budget 0: no halo) to GNNAutoScale (no budget).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <unordered_map>
#include <vector>

#include "ibmb/batch/plan.hpp"
#include "ibmb/core/error.hpp"
#include "ibmb/core/parallel.hpp"
#include "ibmb/core/progress.hpp"
#include "ibmb/graph/build.hpp"
#include "ibmb/graph/csr.hpp"
#include "ibmb/graph/normalize.hpp"
#include "ibmb/ppr/ppr_types.hpp"

namespace ibmb {

/// How halo nodes are ranked when a budget applies.
enum class halo_priority {
  edge_weight,  ///< sum of |normalized weight| of the entries linking the halo node to the batch
  ppr,          ///< caller-supplied score (e.g. `ppr_halo_scores`), ties by edge weight
};

/// Scores of a batch's halo nodes: `score[i]` for `halo[i]` (sorted ids), given the batch's
/// index and outputs. Called from parallel regions: must be thread-safe. An exception it
/// throws is carried out of the region and rethrown by `make_history_plan` (the first one;
/// the remaining batches are skipped).
using halo_score_fn =
    std::function<void(std::size_t batch, std::span<const std::int64_t> outputs,
                       std::span<const std::int64_t> halo, std::span<double> score)>;

struct history_plan_params {
  /// Cached layers (each gets a halo and an edge block).
  std::int64_t num_layers = 1;
  /// Halo nodes kept per batch: empty = all; one value = every layer; else one per layer.
  /// A negative value keeps all; 0 keeps none (pure IBMB).
  std::vector<std::int64_t> budget;
  halo_priority priority = halo_priority::edge_weight;
  halo_score_fn scores;  ///< needed for `halo_priority::ppr`
  /// The weights of the edge blocks: this normalization of the whole graph (after adding
  /// self-loops when `add_self_loops`), as `materialize_options` (use the same values).
  normalization norm = normalization::row;
  bool add_self_loops = false;
  int threads = 0;             ///< OpenMP threads; <= 0 keeps the current setting
  progress_callback progress;  ///< stage "halo"
};

/// One batch's halo at one layer. The edge block is a CSR with one row per batch node in
/// the batch's local order (outputs first, then auxiliaries, as in `batch_view`) and one
/// column per halo node (its position in `halo`).
struct history_halo {
  std::vector<std::int64_t> halo;  ///< sorted global ids
  std::vector<std::int64_t> indptr{0};
  std::vector<std::int64_t> indices;  ///< positions in `halo`, increasing per row
  std::vector<float> weights;         ///< global normalized weight of (batch row, halo node)
  std::int64_t candidates = 0;        ///< halo size before the budget

  [[nodiscard]] std::int64_t num_halo() const { return static_cast<std::int64_t>(halo.size()); }
  [[nodiscard]] std::int64_t num_batch_rows() const {
    return static_cast<std::int64_t>(indptr.size()) - 1;
  }
  [[nodiscard]] csr_view<std::int64_t, std::int64_t, float> block() const {
    return {num_batch_rows(), num_halo(), std::span<const std::int64_t>(indptr),
            std::span<const std::int64_t>(indices), std::span<const float>(weights)};
  }
  bool operator==(const history_halo&) const = default;
};

struct history_plan {
  std::int64_t num_layers = 0;
  /// halos[b * num_layers + l]
  std::vector<history_halo> halos;

  [[nodiscard]] std::size_t num_batches() const {
    return num_layers == 0 ? 0 : halos.size() / static_cast<std::size_t>(num_layers);
  }
  [[nodiscard]] const history_halo& at(std::size_t batch, std::int64_t layer) const {
    if (batch >= num_batches() || layer < 0 || layer >= num_layers)
      throw out_of_range(detail::concat("history_plan::at: (batch ", batch, ", layer ", layer,
                                        ") outside [0, ", num_batches(), ") x [0, ", num_layers,
                                        ")"));
    return halos[batch * static_cast<std::size_t>(num_layers) + static_cast<std::size_t>(layer)];
  }
  /// Sorted union of every halo (e.g. `history_options::ring_nodes`).
  [[nodiscard]] std::vector<std::int64_t> all_halo_nodes() const {
    std::vector<std::int64_t> u;
    for (const auto& h : halos) u.insert(u.end(), h.halo.begin(), h.halo.end());
    std::sort(u.begin(), u.end());
    u.erase(std::unique(u.begin(), u.end()), u.end());
    return u;
  }
  bool operator==(const history_plan&) const = default;
};

namespace detail {

template <class I>
std::vector<std::int64_t> outputs_first(std::span<const I> outs, std::span<const I> nodes) {
  std::vector<std::int64_t> ids(nodes.size());
  std::size_t o = 0, a = outs.size();
  for (auto v : nodes) {
    if (o < outs.size() && v == outs[o])
      ids[o++] = static_cast<std::int64_t>(v);
    else
      ids[a++] = static_cast<std::int64_t>(v);
  }
  return ids;
}

struct halo_entry {
  std::int64_t row;   // local row
  std::int64_t node;  // global halo id
  float w;
};

template <class I, class O, class W>
void build_batch_halos(csr_view<I, O, W> g, std::span<const float> gw, const batch_plan<I>& plan,
                       std::size_t b, const history_plan_params& p,
                       std::span<const std::int64_t> budgets, history_halo* out) {
  const auto outs = plan.batch_outputs(b);
  const auto nodes = plan.batch_nodes(b);  // sorted
  const auto local = outputs_first<I>(outs, nodes);
  std::vector<halo_entry> ent;
  for (std::size_t r = 0; r < local.size(); ++r) {
    const auto u = static_cast<I>(local[r]);
    const auto nb = g.neighbors(u);
    const auto base = static_cast<std::size_t>(g.indptr[static_cast<std::size_t>(u)]);
    for (std::size_t k = 0; k < nb.size(); ++k) {
      const I v = nb[k];
      if (std::binary_search(nodes.begin(), nodes.end(), v)) continue;
      ent.push_back({static_cast<std::int64_t>(r), static_cast<std::int64_t>(v), gw[base + k]});
    }
  }
  std::vector<std::int64_t> all;
  all.reserve(ent.size());
  for (const auto& e : ent) all.push_back(e.node);
  std::sort(all.begin(), all.end());
  all.erase(std::unique(all.begin(), all.end()), all.end());
  std::vector<double> wsum(all.size(), 0.0), score;
  for (const auto& e : ent) {
    const auto i = std::lower_bound(all.begin(), all.end(), e.node) - all.begin();
    wsum[static_cast<std::size_t>(i)] += std::abs(static_cast<double>(e.w));
  }
  const bool need_scores = p.priority == halo_priority::ppr &&
                           std::any_of(budgets.begin(), budgets.end(), [&](std::int64_t k) {
                             return k >= 0 && k < static_cast<std::int64_t>(all.size());
                           });
  if (need_scores) {
    score.assign(all.size(), 0.0);
    std::vector<std::int64_t> outs64(outs.begin(), outs.end());
    p.scores(b, outs64, all, score);
  }
  for (std::size_t l = 0; l < budgets.size(); ++l) {
    history_halo& h = out[l];
    h.candidates = static_cast<std::int64_t>(all.size());
    const std::int64_t k = budgets[l];
    if (k < 0 || k >= static_cast<std::int64_t>(all.size())) {
      h.halo = all;
    } else {
      std::vector<std::size_t> idx(all.size());
      for (std::size_t i = 0; i < idx.size(); ++i) idx[i] = i;
      auto better = [&](std::size_t x, std::size_t y) {
        if (need_scores && score[x] != score[y]) return score[x] > score[y];
        if (wsum[x] != wsum[y]) return wsum[x] > wsum[y];
        return all[x] < all[y];
      };
      std::partial_sort(idx.begin(), idx.begin() + k, idx.end(), better);
      h.halo.clear();
      for (std::int64_t i = 0; i < k; ++i) h.halo.push_back(all[idx[static_cast<std::size_t>(i)]]);
      std::sort(h.halo.begin(), h.halo.end());
    }
    h.indptr.assign(local.size() + 1, 0);
    h.indices.clear();
    h.weights.clear();
    for (const auto& e : ent) {  // grouped by row, neighbour order within a row
      const auto it = std::lower_bound(h.halo.begin(), h.halo.end(), e.node);
      if (it == h.halo.end() || *it != e.node) continue;
      h.indices.push_back(it - h.halo.begin());
      h.weights.push_back(e.w);
      ++h.indptr[static_cast<std::size_t>(e.row) + 1];
    }
    for (std::size_t r = 0; r < local.size(); ++r) h.indptr[r + 1] += h.indptr[r];
    // Rows of a graph with unsorted columns: sort each row's entries by halo position.
    for (std::size_t r = 0; r < local.size(); ++r) {
      const auto b0 = static_cast<std::size_t>(h.indptr[r]);
      const auto e0 = static_cast<std::size_t>(h.indptr[r + 1]);
      bool sorted = true;
      for (std::size_t q = b0 + 1; q < e0; ++q) sorted &= h.indices[q - 1] <= h.indices[q];
      if (sorted) continue;
      std::vector<std::pair<std::int64_t, float>> row;
      for (std::size_t q = b0; q < e0; ++q) row.emplace_back(h.indices[q], h.weights[q]);
      std::stable_sort(row.begin(), row.end(),
                       [](const auto& x, const auto& y) { return x.first < y.first; });
      for (std::size_t q = b0; q < e0; ++q) {
        h.indices[q] = row[q - b0].first;
        h.weights[q] = row[q - b0].second;
      }
    }
  }
}

}  // namespace detail

/// Builds the history plan of `plan` on the graph `g` (the graph the batches were
/// materialized from, before `params.add_self_loops`).
template <class I, class O, class W>
history_plan make_history_plan(csr_view<I, O, W> g, const batch_plan<I>& plan,
                               const history_plan_params& params) {
  IBMB_EXPECTS(g.num_rows == g.num_cols, "make_history_plan: the graph must be square, got ",
               g.num_rows, " x ", g.num_cols);
  IBMB_EXPECTS(params.num_layers >= 1, "make_history_plan: num_layers = ", params.num_layers);
  const auto L = static_cast<std::size_t>(params.num_layers);
  IBMB_EXPECTS(params.budget.size() <= 1 || params.budget.size() == L,
               "make_history_plan: ", params.budget.size(), " budgets for ", L,
               " layers (expected 0, 1 or ", L, ")");
  IBMB_EXPECTS(params.priority != halo_priority::ppr || params.scores,
               "make_history_plan: halo_priority::ppr needs params.scores");
  g.validate();
  plan.validate(g.num_rows);
  std::vector<std::int64_t> budgets(L, -1);
  for (std::size_t l = 0; l < L; ++l)
    if (!params.budget.empty()) budgets[l] = params.budget[params.budget.size() == 1 ? 0 : l];

  csr_graph<I, O, W> looped;
  if (params.add_self_loops) looped = add_self_loops(g);
  const csr_view<I, O, W> gg = params.add_self_loops ? looped.view() : g;
  const std::vector<W> w0 = normalized_weights(gg, params.norm);
  const std::vector<float> gw(w0.begin(), w0.end());

  history_plan hp;
  hp.num_layers = params.num_layers;
  const auto B = static_cast<std::int64_t>(plan.num_batches());
  hp.halos.resize(static_cast<std::size_t>(B) * L);
  scoped_threads st(params.threads);
  report(params.progress, "halo", 0, B);
  // The caller's halo_score_fn runs inside the region: its exceptions (and bad_alloc) are
  // carried out and rethrown here.
  detail::region_failure failure;
#pragma omp parallel for schedule(dynamic, 1)
  for (std::int64_t b = 0; b < B; ++b)
    failure.run([&] {
      detail::build_batch_halos(gg, std::span<const float>(gw), plan, static_cast<std::size_t>(b),
                                params, budgets, hp.halos.data() + static_cast<std::size_t>(b) * L);
    });
  failure.rethrow();
  report(params.progress, "halo", B, B);
  return hp;
}

/// A `halo_score_fn` for `halo_priority::ppr`: the score of a halo node is the sum of its
/// PPR scores over the batch's outputs (rows of `ppr` whose output is one of them). `ppr` must
/// outlive the returned function.
template <class I, class V>
halo_score_fn ppr_halo_scores(const ppr_matrix<I, V>& ppr) {
  auto row_of = std::make_shared<std::unordered_map<std::int64_t, std::int64_t>>();
  for (std::size_t r = 0; r < ppr.outputs.size(); ++r)
    row_of->emplace(static_cast<std::int64_t>(ppr.outputs[r]), static_cast<std::int64_t>(r));
  return [&ppr, row_of](std::size_t, std::span<const std::int64_t> outputs,
                        std::span<const std::int64_t> halo, std::span<double> score) {
    for (auto o : outputs) {
      const auto it = row_of->find(o);
      if (it == row_of->end()) continue;
      const auto idx = ppr.row_indices(it->second);
      const auto val = ppr.row_values(it->second);
      for (std::size_t k = 0; k < idx.size(); ++k) {
        const auto h =
            std::lower_bound(halo.begin(), halo.end(), static_cast<std::int64_t>(idx[k]));
        if (h != halo.end() && *h == static_cast<std::int64_t>(idx[k]))
          score[static_cast<std::size_t>(h - halo.begin())] += static_cast<double>(val[k]);
      }
    }
  };
}

/// For each halo node of `h`, the mean over its in-batch neighbours (rows of the edge block
/// with an entry in its column, `valid[row]` true when given) of `batch_delta`'s rows
/// (fresh - cached of the batch's nodes, local order, dim values each); zero when it has none.
/// The SAT predictor's neighbour-drift feature at read time.
inline void halo_neighbor_drift(const history_halo& h, std::span<const float> batch_delta,
                                std::int64_t dim, std::span<float> out,
                                std::span<const std::uint8_t> valid = {}) {
  const auto d = static_cast<std::size_t>(dim);
  const auto rows = static_cast<std::size_t>(h.num_batch_rows());
  IBMB_EXPECTS(dim >= 1 && batch_delta.size() == rows * d,
               "halo_neighbor_drift: batch_delta holds ", batch_delta.size(), " values, expected ",
               rows, " rows x ", dim);
  IBMB_EXPECTS(out.size() == h.halo.size() * d, "halo_neighbor_drift: out holds ", out.size(),
               " values, expected ", h.halo.size(), " rows x ", dim);
  IBMB_EXPECTS(valid.empty() || valid.size() == rows, "halo_neighbor_drift: ", valid.size(),
               " validity flags for ", rows, " rows");
  std::fill(out.begin(), out.end(), 0.0f);
  std::vector<std::int64_t> cnt(h.halo.size(), 0);
  for (std::size_t r = 0; r < rows; ++r) {
    if (!valid.empty() && !valid[r]) continue;
    for (auto q = h.indptr[r]; q < h.indptr[r + 1]; ++q) {
      const auto c = static_cast<std::size_t>(h.indices[static_cast<std::size_t>(q)]);
      ++cnt[c];
      for (std::size_t j = 0; j < d; ++j) out[c * d + j] += batch_delta[r * d + j];
    }
  }
  for (std::size_t c = 0; c < cnt.size(); ++c)
    if (cnt[c] > 1)
      for (std::size_t j = 0; j < d; ++j) out[c * d + j] /= static_cast<float>(cnt[c]);
}

}  // namespace ibmb
