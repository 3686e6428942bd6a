// ibmb: greedy grouping of output nodes into batches by their mutual PPR scores (node-wise
// IBMB). Deterministic: pairs are ordered by score with ties broken by position, groups by
// size with ties broken by their smallest member.
//
// Builds `batch_plan` (batch/plan.hpp, a leaf type that depends only on core/).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <queue>
#include <span>
#include <tuple>
#include <unordered_set>
#include <utility>
#include <vector>

#include "ibmb/batch/plan.hpp"
#include "ibmb/core/error.hpp"

namespace ibmb {

/// What bounds the size of a batch while merging.
enum class merge_cap {
  outputs,    ///< number of output nodes (the reference's node-wise IBMB)
  auxiliary,  ///< number of nodes of the batch: |∪ top-k lists ∪ outputs| (the unused variant)
};

struct merge_params {
  merge_cap cap = merge_cap::outputs;
  /// cap == outputs: requested outputs per batch p (> 0). With `balance`, the cap used is
  /// ceil(n_out / ceil(n_out / p)), so batches come out of similar size.
  std::int64_t max_outputs = 0;
  bool balance = true;
  /// cap == auxiliary: the most nodes (outputs included) a merged batch may hold (> 0). A
  /// single output whose own list is longer stays alone in an oversized batch.
  std::int64_t max_nodes = 0;
};

/// The reference's balancing: n_batches = ceil(n_out / p), cap = ceil(n_out / n_batches).
inline std::int64_t balanced_max_outputs(std::int64_t n_out, std::int64_t p) {
  IBMB_EXPECTS(p > 0, "balanced_max_outputs: requested outputs per batch p = ", p, " must be > 0");
  IBMB_EXPECTS(n_out >= 0, "balanced_max_outputs: n_out = ", n_out, " must be >= 0");
  if (n_out == 0) return p;
  // Ceilings without n + p - 1, which overflows for p = INT64_MAX (a natural "one batch").
  const std::int64_t n_batches = n_out / p + (n_out % p != 0);
  return n_out / n_batches + (n_out % n_batches != 0);
}

namespace detail {

/// A CSR row pointer over `rows` rows into `total` entries: rows + 1 values from 0 to total,
/// non-decreasing (else `ibmb::invalid_argument` naming `who`).
inline void check_row_ptr(std::span<const std::int64_t> ptr, std::int64_t rows, std::size_t total,
                          const char* who, const char* what) {
  IBMB_EXPECTS(rows >= 0, who, ": ", rows, " rows");
  IBMB_EXPECTS(ptr.size() == static_cast<std::size_t>(rows) + 1, who, ": ", what, " has ",
               ptr.size(), " entries for ", rows, " rows");
  IBMB_EXPECTS(ptr[0] == 0 && ptr.back() == static_cast<std::int64_t>(total), who, ": ", what,
               " runs from ", ptr[0], " to ", ptr.back(), ", expected 0 to ", total);
  for (std::size_t r = 0; r + 1 < ptr.size(); ++r)
    IBMB_EXPECTS(ptr[r] <= ptr[r + 1], who, ": ", what, "[", r + 1, "] = ", ptr[r + 1], " < ", what,
                 "[", r, "] = ", ptr[r]);
}

}  // namespace detail

/// A pair of output positions i > j with symmetrized score S_ij = P_ij + P_ji.
template <class V>
struct output_pair {
  std::int64_t i = 0;
  std::int64_t j = 0;
  V score = 0;
  bool operator==(const output_pair&) const = default;
};

/// Groups of output positions in CSR form: group g = members[ptr[g] .. ptr[g+1]), sorted.
struct output_groups {
  std::vector<std::int64_t> ptr{0};
  std::vector<std::int64_t> members;
  [[nodiscard]] std::size_t size() const { return ptr.size() - 1; }
  [[nodiscard]] std::span<const std::int64_t> group(std::size_t g) const {
    return std::span<const std::int64_t>(members).subspan(
        static_cast<std::size_t>(ptr[g]), static_cast<std::size_t>(ptr[g + 1] - ptr[g]));
  }
};

/// S = P + Pᵀ over output positions, from P in CSR form over output positions (row i: the
/// scores P_ij of outputs j in output i's PPR row; the diagonal is ignored). Returns the pairs
/// i > j with S_ij > 0 sorted by S descending, ties by (i, j) ascending.
template <class V>
std::vector<output_pair<V>> symmetric_output_pairs(std::int64_t n_out,
                                                   std::span<const std::int64_t> ptr,
                                                   std::span<const std::int64_t> col,
                                                   std::span<const V> val) {
  IBMB_EXPECTS(col.size() == val.size(), "symmetric_output_pairs: ", col.size(), " columns, ",
               val.size(), " values");
  detail::check_row_ptr(ptr, n_out, col.size(), "symmetric_output_pairs", "ptr");
  std::vector<output_pair<V>> e;
  e.reserve(col.size());
  for (std::int64_t r = 0; r < n_out; ++r)
    for (std::int64_t k = ptr[r]; k < ptr[r + 1]; ++k) {
      const std::int64_t c = col[static_cast<std::size_t>(k)];
      IBMB_EXPECTS_AS(out_of_range, c >= 0 && c < n_out, "symmetric_output_pairs: row ", r,
                      ", position ", k, ": column ", c, " outside [0, ", n_out, ")");
      if (c == r) continue;
      e.push_back({std::max(r, c), std::min(r, c), val[static_cast<std::size_t>(k)]});
    }
  // Sum the (at most two, or more with repeated columns) contributions of each pair in a fixed
  // order: by (i, j), then by value, so the sum does not depend on the input order.
  std::sort(e.begin(), e.end(), [](const auto& a, const auto& b) {
    return std::tie(a.i, a.j, a.score) < std::tie(b.i, b.j, b.score);
  });
  std::size_t w = 0;
  for (std::size_t k = 0; k < e.size();) {
    auto cur = e[k];
    std::size_t q = k + 1;
    for (; q < e.size() && e[q].i == cur.i && e[q].j == cur.j; ++q) cur.score += e[q].score;
    if (cur.score > V{0}) e[w++] = cur;
    k = q;
  }
  e.resize(w);
  std::sort(e.begin(), e.end(), [](const auto& a, const auto& b) {
    if (a.score != b.score) return a.score > b.score;
    return std::tie(a.i, a.j) < std::tie(b.i, b.j);
  });
  return e;
}

namespace detail {

inline std::int64_t uf_find(std::vector<std::int64_t>& parent, std::int64_t x) {
  while (parent[static_cast<std::size_t>(x)] != x) {
    auto& px = parent[static_cast<std::size_t>(x)];
    px = parent[static_cast<std::size_t>(px)];  // path halving
    x = px;
  }
  return x;
}

template <class T>
std::size_t union_size(const std::vector<T>& a, const std::vector<T>& b) {
  std::size_t n = 0, i = 0, j = 0;
  while (i < a.size() && j < b.size()) {
    if (a[i] < b[j]) {
      ++i;
    } else if (b[j] < a[i]) {
      ++j;
    } else {
      ++i;
      ++j;
    }
    ++n;
  }
  return n + (a.size() - i) + (b.size() - j);
}

template <class T>
std::vector<T> sorted_union(const std::vector<T>& a, const std::vector<T>& b) {
  std::vector<T> u;
  u.reserve(a.size() + b.size());
  std::set_union(a.begin(), a.end(), b.begin(), b.end(), std::back_inserter(u));
  return u;
}

}  // namespace detail

/// The reference's greedy merge. Every output position starts alone; pairs are visited in the
/// given order (see `symmetric_output_pairs`) and two different groups are merged when the
/// result respects the cap. Then the smallest-first post-processing: repeatedly take the two
/// smallest groups (size, then smallest member), merge them if the result fits, and stop at
/// the first pair that does not.
/// `aux_ptr`/`aux_nodes` (CSR over output positions, each row sorted and unique) are the
/// node lists of the outputs, needed only for `merge_cap::auxiliary`.
template <class V, class I = std::int64_t>
output_groups greedy_merge(std::int64_t n_out, std::span<const output_pair<V>> pairs,
                           const merge_params& prm, std::span<const std::int64_t> aux_ptr = {},
                           std::span<const I> aux_nodes = {}) {
  IBMB_EXPECTS(n_out >= 0, "greedy_merge: n_out = ", n_out);
  const bool by_aux = prm.cap == merge_cap::auxiliary;
  std::int64_t cap = 0;
  if (by_aux) {
    IBMB_EXPECTS(prm.max_nodes > 0, "greedy_merge: max_nodes = ", prm.max_nodes,
                 " must be > 0 with merge_cap::auxiliary");
    IBMB_EXPECTS(aux_ptr.size() == static_cast<std::size_t>(n_out) + 1,
                 "greedy_merge: merge_cap::auxiliary needs the node lists of all ", n_out,
                 " outputs, got ", aux_ptr.size(), " row pointers");
    detail::check_row_ptr(aux_ptr, n_out, aux_nodes.size(), "greedy_merge", "aux_ptr");
    cap = prm.max_nodes;
  } else {
    IBMB_EXPECTS(prm.max_outputs > 0, "greedy_merge: max_outputs = ", prm.max_outputs,
                 " must be > 0");
    cap = prm.balance ? balanced_max_outputs(n_out, prm.max_outputs) : prm.max_outputs;
  }
  const auto n = static_cast<std::size_t>(n_out);
  std::vector<std::int64_t> parent(n), count(n, 1), least(n);
  std::iota(parent.begin(), parent.end(), 0);
  std::iota(least.begin(), least.end(), 0);
  std::vector<std::vector<I>> aux;
  if (by_aux) {
    aux.resize(n);
    for (std::size_t i = 0; i < n; ++i) {
      aux[i].assign(aux_nodes.begin() + aux_ptr[i], aux_nodes.begin() + aux_ptr[i + 1]);
      IBMB_EXPECTS(std::is_sorted(aux[i].begin(), aux[i].end()) &&
                       std::adjacent_find(aux[i].begin(), aux[i].end()) == aux[i].end(),
                   "greedy_merge: node list of output position ", i, " is not sorted and unique");
    }
  }
  // Failed (root, root) merges, a cache only: groups only grow, so a pair that did not fit
  // never fits later; entries of roots that got absorbed are simply never asked again.
  std::unordered_set<std::uint64_t> failed;
  const bool use_cache = by_aux && n_out < (std::int64_t{1} << 32);

  auto unite = [&](std::int64_t a, std::int64_t b) {  // a, b roots; keeps a
    parent[static_cast<std::size_t>(b)] = a;
    count[static_cast<std::size_t>(a)] += count[static_cast<std::size_t>(b)];
    least[static_cast<std::size_t>(a)] =
        std::min(least[static_cast<std::size_t>(a)], least[static_cast<std::size_t>(b)]);
    if (by_aux) {
      aux[static_cast<std::size_t>(a)] =
          detail::sorted_union(aux[static_cast<std::size_t>(a)], aux[static_cast<std::size_t>(b)]);
      std::vector<I>().swap(aux[static_cast<std::size_t>(b)]);
    }
  };
  auto fits = [&](std::int64_t a, std::int64_t b) {
    if (!by_aux)
      return count[static_cast<std::size_t>(a)] + count[static_cast<std::size_t>(b)] <= cap;
    const auto& xa = aux[static_cast<std::size_t>(a)];
    const auto& xb = aux[static_cast<std::size_t>(b)];
    if (static_cast<std::int64_t>(xa.size() + xb.size()) <= cap) return true;
    const std::uint64_t key = (static_cast<std::uint64_t>(std::min(a, b)) << 32) |
                              static_cast<std::uint64_t>(std::max(a, b));
    if (use_cache && failed.count(key)) return false;
    const bool ok = static_cast<std::int64_t>(detail::union_size(xa, xb)) <= cap;
    if (!ok && use_cache) failed.insert(key);
    return ok;
  };

  for (const auto& pr : pairs) {
    IBMB_EXPECTS_AS(out_of_range, pr.i >= 0 && pr.i < n_out && pr.j >= 0 && pr.j < n_out,
                    "greedy_merge: pair (", pr.i, ", ", pr.j, ") outside [0, ", n_out, ")");
    std::int64_t a = detail::uf_find(parent, pr.i), b = detail::uf_find(parent, pr.j);
    if (a == b) continue;
    if (a > b) std::swap(a, b);  // keep the smaller root: the result does not depend on it
    if (fits(a, b)) unite(a, b);
  }

  // Smallest-first post-processing.
  using entry = std::tuple<std::int64_t, std::int64_t, std::int64_t>;  // size, least, root
  std::priority_queue<entry, std::vector<entry>, std::greater<entry>> heap;
  auto size_of = [&](std::int64_t r) {
    return by_aux ? static_cast<std::int64_t>(aux[static_cast<std::size_t>(r)].size())
                  : count[static_cast<std::size_t>(r)];
  };
  for (std::int64_t v = 0; v < n_out; ++v)
    if (parent[static_cast<std::size_t>(v)] == v)
      heap.emplace(size_of(v), least[static_cast<std::size_t>(v)], v);
  while (heap.size() > 1) {
    const auto [s1, l1, r1] = heap.top();
    heap.pop();
    const auto [s2, l2, r2] = heap.top();
    const bool ok =
        by_aux ? static_cast<std::int64_t>(detail::union_size(
                     aux[static_cast<std::size_t>(r1)], aux[static_cast<std::size_t>(r2)])) <= cap
               : s1 + s2 <= cap;
    if (!ok) break;
    heap.pop();
    const std::int64_t keep = std::min(r1, r2), gone = std::max(r1, r2);
    unite(keep, gone);
    heap.emplace(size_of(keep), least[static_cast<std::size_t>(keep)], keep);
    (void)s2;
    (void)l1;
    (void)l2;
  }

  // Groups ordered by their smallest member; members sorted.
  std::vector<std::int64_t> root_of(n);
  for (std::size_t v = 0; v < n; ++v)
    root_of[v] = detail::uf_find(parent, static_cast<std::int64_t>(v));
  std::vector<std::int64_t> group_id(n, -1);
  output_groups out;
  std::vector<std::int64_t> sizes;
  for (std::size_t v = 0; v < n; ++v) {  // v ascending: first visit of a root = its least member
    auto& gid = group_id[static_cast<std::size_t>(root_of[v])];
    if (gid < 0) {
      gid = static_cast<std::int64_t>(sizes.size());
      sizes.push_back(0);
    }
    ++sizes[static_cast<std::size_t>(gid)];
  }
  out.ptr.assign(sizes.size() + 1, 0);
  for (std::size_t g = 0; g < sizes.size(); ++g) out.ptr[g + 1] = out.ptr[g] + sizes[g];
  out.members.resize(n);
  std::vector<std::int64_t> cursor(out.ptr.begin(), out.ptr.end() - 1);
  for (std::size_t v = 0; v < n; ++v)
    out.members[static_cast<std::size_t>(
        cursor[static_cast<std::size_t>(group_id[static_cast<std::size_t>(root_of[v])])]++)] =
        static_cast<std::int64_t>(v);
  return out;
}

/// Turns groups of output positions into a `batch_plan`: batch outputs = the group's output ids
/// (sorted), batch nodes = the sorted union of the members' node lists (`aux_ptr`/`aux_nodes`,
/// CSR over output positions) and the outputs themselves. Batches are ordered by their
/// smallest output id.
template <class I>
batch_plan<I> groups_to_plan(std::span<const I> outputs, const output_groups& groups,
                             std::span<const std::int64_t> aux_ptr, std::span<const I> aux_nodes) {
  detail::check_row_ptr(aux_ptr, static_cast<std::int64_t>(outputs.size()), aux_nodes.size(),
                        "groups_to_plan", "aux_ptr");
  struct batch {
    std::vector<I> outs, nodes;
  };
  std::vector<batch> bs(groups.size());
  for (std::size_t g = 0; g < groups.size(); ++g) {
    auto& b = bs[g];
    for (std::int64_t pos : groups.group(g)) {
      IBMB_EXPECTS_AS(out_of_range, pos >= 0 && static_cast<std::size_t>(pos) < outputs.size(),
                      "groups_to_plan: group ", g, " names output position ", pos, " outside [0, ",
                      outputs.size(), ")");
      b.outs.push_back(outputs[static_cast<std::size_t>(pos)]);
      b.nodes.insert(b.nodes.end(), aux_nodes.begin() + aux_ptr[static_cast<std::size_t>(pos)],
                     aux_nodes.begin() + aux_ptr[static_cast<std::size_t>(pos) + 1]);
    }
    std::sort(b.outs.begin(), b.outs.end());
    b.nodes.insert(b.nodes.end(), b.outs.begin(), b.outs.end());
    std::sort(b.nodes.begin(), b.nodes.end());
    b.nodes.erase(std::unique(b.nodes.begin(), b.nodes.end()), b.nodes.end());
  }
  std::sort(bs.begin(), bs.end(), [](const batch& a, const batch& b) {
    if (a.outs.empty() || b.outs.empty()) return a.outs.size() > b.outs.size();
    return a.outs.front() < b.outs.front();
  });
  batch_plan<I> plan;
  for (const auto& b : bs) plan.push_batch(b.outs, b.nodes);
  return plan;
}

}  // namespace ibmb
