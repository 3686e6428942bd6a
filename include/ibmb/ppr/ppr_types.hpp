// ibmb: plain parameter and result types of the personalized PageRank (PPR) kernels.
// Shared by the CPU headers (push.hpp, topk.hpp) and, later, the CUDA ones.
#pragma once

#include <cstdint>
#include <span>
#include <type_traits>
#include <vector>

#include "ibmb/core/error.hpp"

namespace ibmb {

/// Order in which nodes whose residual crossed the threshold are pushed.
enum class push_order {
  lifo,  ///< a stack, as the reference (PPRGo / IBMB) does
  fifo,  ///< a queue (breadth-first waves); same error bound, different rounding
};

/// Parameters of the single-source forward push (Andersen-Chung-Lang, non-lazy variant).
///
/// The push approximates the row-stochastic PPR row
///   ppr_s = alpha * e_s * (I - (1 - alpha) D^-1 A)^-1
/// of an undirected graph A that the caller has already preprocessed (symmetrized, one
/// self-loop per node: `make_undirected_with_self_loops`). deg(v) is the number of entries of
/// row v (self-loop included); edge weights are ignored, as in the reference.
/// On a symmetric A the result satisfies, for every node w,
///   0 <= ppr_s(w) - p(w) < eps * deg(w)
/// (exact arithmetic; rounding adds a few ulps per push). p underestimates ppr_s.
struct push_params {
  double alpha = 0.25;  ///< teleport probability, in (0, 1]
  double eps = 2e-4;    ///< push threshold: push v while r(v) >= alpha * eps * deg(v); > 0
  push_order order = push_order::lifo;
};

/// Work counters of one or many pushes. Integer sums: identical for any thread count.
struct push_counters {
  std::int64_t pushes = 0;         ///< nodes popped from the stack/queue
  std::int64_t edges_relaxed = 0;  ///< neighbour residual updates (sum of popped degrees)

  push_counters& operator+=(const push_counters& o) {
    pushes += o.pushes;
    edges_relaxed += o.edges_relaxed;
    return *this;
  }
  bool operator==(const push_counters&) const = default;
};

/// Parameters of `nodewise_ppr`: one push per output node, then optional top-k.
struct ppr_params : push_params {
  /// Keep the `topk` highest scores per row (ties broken by smaller node id); 0 keeps every
  /// settled entry (every node the push popped at least once, the source included).
  std::int64_t topk = 0;
  /// With topk > 0: the output node itself is always kept (the reference's topk ∪ {s}).
  /// k counts the output node like any other entry; when it is not among the k best it is
  /// added, so a row holds k + 1 entries then.
  bool include_output = true;
  /// OpenMP threads for this call; <= 0 keeps the current setting.
  int threads = 0;
};

/// One sparse PPR row: node ids (ascending unless a function says otherwise) and scores.
template <class I = std::int64_t, class V = float>
struct sparse_row {
  std::vector<I> indices;
  std::vector<V> values;
  [[nodiscard]] std::size_t size() const { return indices.size(); }
  bool operator==(const sparse_row&) const = default;
};

/// Rows of PPR scores in CSR form: row i belongs to `outputs[i]` (the caller's order, duplicates
/// kept), columns are node ids, sorted ascending within a row. Offsets are int64.
template <class I = std::int64_t, class V = float>
struct ppr_matrix {
  static_assert(std::is_integral_v<I> && std::is_signed_v<I>,
                "ibmb: ppr_matrix index type must be a signed integer");
  static_assert(std::is_floating_point_v<V>, "ibmb: ppr_matrix values must be float or double");

  std::int64_t num_rows = 0;
  std::int64_t num_cols = 0;         ///< number of nodes of the graph
  std::vector<std::int64_t> indptr;  ///< num_rows + 1
  std::vector<I> indices;            ///< node ids
  std::vector<V> values;             ///< PPR scores
  std::vector<I> outputs;            ///< output node of each row
  push_counters counters;            ///< work done to compute it

  [[nodiscard]] std::int64_t nnz() const { return indptr.empty() ? 0 : indptr.back(); }
  [[nodiscard]] std::span<const I> row_indices(std::int64_t i) const {
    return std::span<const I>(indices).subspan(static_cast<std::size_t>(indptr[i]),
                                               static_cast<std::size_t>(indptr[i + 1] - indptr[i]));
  }
  [[nodiscard]] std::span<const V> row_values(std::int64_t i) const {
    return std::span<const V>(values).subspan(static_cast<std::size_t>(indptr[i]),
                                              static_cast<std::size_t>(indptr[i + 1] - indptr[i]));
  }
  /// Same bytes (counters included).
  bool operator==(const ppr_matrix&) const = default;
};

}  // namespace ibmb
