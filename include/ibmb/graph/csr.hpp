// ibmb: compressed sparse row graphs. `csr_view` is the type every algorithm takes;
// `csr_graph` owns the arrays and sits at the edges (loaders, builders).
#pragma once

#include <Eigen/SparseCore>
#include <algorithm>
#include <cmath>
#include <concepts>
#include <cstdint>
#include <span>
#include <type_traits>
#include <vector>

#include "ibmb/core/error.hpp"

namespace ibmb {

template <class T>
concept signed_index = std::signed_integral<T>;

namespace detail {
template <class I, class O, class W>
constexpr void check_csr_types() {
  static_assert(std::is_integral_v<I> && std::is_signed_v<I>,
                "ibmb: the index type I must be a signed integer (Eigen and torch use signed "
                "indices); use std::int32_t or std::int64_t");
  static_assert(std::is_integral_v<O> && std::is_signed_v<O>,
                "ibmb: the offset type O must be a signed integer; use std::int32_t or "
                "std::int64_t");
  static_assert(sizeof(O) >= sizeof(I),
                "ibmb: the offset type O must be at least as wide as the index type I");
  static_assert(std::is_floating_point_v<W>, "ibmb: the weight type W must be float or double");
}

/// Whether an edge weight can enter a normalization (degrees, square roots): finite, >= 0.
inline bool weight_ok(double w) { return std::isfinite(w) && w >= 0; }
}  // namespace detail

/// Non-owning CSR matrix (rows x cols). Trivially copyable: pointers and sizes only.
/// `weights` is empty for an unweighted graph (every entry counts as 1).
template <class I = std::int64_t, class O = std::int64_t, class W = float>
struct csr_view {
  using index_type = I;
  using offset_type = O;
  using weight_type = W;

  I num_rows = 0;
  I num_cols = 0;
  std::span<const O> indptr;   // num_rows + 1 entries (or empty for an empty matrix)
  std::span<const I> indices;  // indptr[num_rows] entries
  std::span<const W> weights;  // empty, or one per entry of `indices`

  constexpr csr_view() { detail::check_csr_types<I, O, W>(); }
  constexpr csr_view(I rows, I cols, std::span<const O> ptr, std::span<const I> idx,
                     std::span<const W> w = {})
      : num_rows(rows), num_cols(cols), indptr(ptr), indices(idx), weights(w) {
    detail::check_csr_types<I, O, W>();
  }

  [[nodiscard]] constexpr I num_nodes() const { return num_rows; }
  [[nodiscard]] constexpr O num_edges() const {
    return indptr.empty() ? O{0} : indptr[static_cast<std::size_t>(num_rows)];
  }
  [[nodiscard]] constexpr bool has_weights() const { return !weights.empty(); }
  [[nodiscard]] constexpr O degree(I row) const {
    return indptr[static_cast<std::size_t>(row) + 1] - indptr[static_cast<std::size_t>(row)];
  }
  [[nodiscard]] constexpr std::span<const I> neighbors(I row) const {
    const auto b = static_cast<std::size_t>(indptr[static_cast<std::size_t>(row)]);
    return indices.subspan(b, static_cast<std::size_t>(degree(row)));
  }
  /// Weights of row's entries; empty for an unweighted graph.
  [[nodiscard]] constexpr std::span<const W> neighbor_weights(I row) const {
    if (weights.empty()) return {};
    const auto b = static_cast<std::size_t>(indptr[static_cast<std::size_t>(row)]);
    return weights.subspan(b, static_cast<std::size_t>(degree(row)));
  }

  /// Checks the structure and throws `ibmb::format_error` naming the first problem: the
  /// row and position of a bad offset, or the row, position and value of a bad column.
  /// `require_sorted` also demands strictly increasing columns within each row.
  void validate(bool require_sorted = false) const {
    auto fail = [](auto&&... a) { throw format_error(detail::concat(a...)); };
    if (num_rows < 0 || num_cols < 0) fail("csr: negative shape ", num_rows, " x ", num_cols);
    if (indptr.empty()) {
      if (num_rows != 0) fail("csr: indptr is empty but num_rows = ", num_rows);
      if (!indices.empty()) fail("csr: indptr is empty but there are ", indices.size(), " indices");
      if (!weights.empty()) fail("csr: indptr is empty but there are ", weights.size(), " weights");
      return;
    }
    if (indptr.size() != static_cast<std::size_t>(num_rows) + 1)
      fail("csr: indptr has ", indptr.size(),
           " entries, expected num_rows + 1 = ", static_cast<std::int64_t>(num_rows) + 1);
    if (indptr[0] != 0) fail("csr: indptr[0] = ", indptr[0], ", expected 0");
    for (std::size_t r = 0; r < static_cast<std::size_t>(num_rows); ++r) {
      if (indptr[r + 1] < indptr[r])
        fail("csr: row ", r, ": indptr[", r + 1, "] = ", indptr[r + 1], " < indptr[", r,
             "] = ", indptr[r]);
    }
    const auto nnz = static_cast<std::size_t>(indptr[static_cast<std::size_t>(num_rows)]);
    if (indptr[static_cast<std::size_t>(num_rows)] < 0 || indices.size() != nnz)
      fail("csr: indptr[num_rows] = ", indptr[static_cast<std::size_t>(num_rows)],
           " but there are ", indices.size(), " indices");
    if (!weights.empty() && weights.size() != nnz)
      fail("csr: ", weights.size(), " weights for ", nnz, " entries");
    // Column checks in parallel (this pass reads every entry; graphs have millions), then
    // the first offending row again, serially, for the message.
    auto row_ok = [&](std::size_t r) {
      const auto b = static_cast<std::size_t>(indptr[r]);
      const auto e = static_cast<std::size_t>(indptr[r + 1]);
      for (std::size_t p = b; p < e; ++p) {
        const I c = indices[p];
        if (c < 0 || c >= num_cols || (require_sorted && p > b && indices[p - 1] >= c))
          return false;
      }
      return true;
    };
    const auto rows = static_cast<std::int64_t>(num_rows);
    std::int64_t bad = rows;
#pragma omp parallel for schedule(static) reduction(min : bad)
    for (std::int64_t r = 0; r < rows; ++r)
      if (!row_ok(static_cast<std::size_t>(r))) bad = std::min(bad, r);
    if (bad == rows) return;
    const auto r = static_cast<std::size_t>(bad);
    const auto b = static_cast<std::size_t>(indptr[r]);
    const auto e = static_cast<std::size_t>(indptr[r + 1]);
    for (std::size_t p = b; p < e; ++p) {
      const I c = indices[p];
      if (c < 0 || c >= num_cols)
        fail("csr: row ", r, ", position ", p, ": column ", c, " outside [0, ", num_cols, ")");
      if (require_sorted && p > b && indices[p - 1] >= c)
        fail("csr: row ", r, ", position ", p, ": column ", c,
             " not greater than the previous column ", indices[p - 1]);
    }
  }

  /// Zero-copy Eigen view (row-major sparse matrix). Needs O == I and explicit weights:
  /// Eigen keeps one StorageIndex for both arrays and always reads values.
  [[nodiscard]] auto eigen_map() const requires std::same_as<I, O> {
    using matrix = Eigen::SparseMatrix<W, Eigen::RowMajor, I>;
    IBMB_EXPECTS(has_weights() || num_edges() == 0,
                 "csr_view::eigen_map needs edge weights (an unweighted graph has none to map); "
                 "build them with ibmb::normalized_weights(g, normalization::none)");
    static const O zero_ptr[1] = {0};
    const O* outer = indptr.empty() ? zero_ptr : indptr.data();
    return Eigen::Map<const matrix>(num_rows, num_cols, num_edges(), outer, indices.data(),
                                    weights.data());
  }
};

/// Owning CSR matrix. `view()` gives the `csr_view` that algorithms take.
template <class I = std::int64_t, class O = std::int64_t, class W = float>
struct csr_graph {
  using index_type = I;
  using offset_type = O;
  using weight_type = W;
  using view_type = csr_view<I, O, W>;

  I num_rows = 0;
  I num_cols = 0;
  std::vector<O> indptr;
  std::vector<I> indices;
  std::vector<W> weights;

  csr_graph() { detail::check_csr_types<I, O, W>(); }
  /// Empty graph with `n` nodes and no edges.
  explicit csr_graph(I n)
      : num_rows(n), num_cols(n), indptr(static_cast<std::size_t>(n) + 1, O{0}) {
    detail::check_csr_types<I, O, W>();
  }
  csr_graph(I rows, I cols, std::vector<O> ptr, std::vector<I> idx, std::vector<W> w = {})
      : num_rows(rows),
        num_cols(cols),
        indptr(std::move(ptr)),
        indices(std::move(idx)),
        weights(std::move(w)) {
    detail::check_csr_types<I, O, W>();
  }
  /// Deep copy of a view.
  explicit csr_graph(const view_type& v)
      : num_rows(v.num_rows),
        num_cols(v.num_cols),
        indptr(v.indptr.begin(), v.indptr.end()),
        indices(v.indices.begin(), v.indices.end()),
        weights(v.weights.begin(), v.weights.end()) {}

  [[nodiscard]] view_type view() const {
    return view_type(num_rows, num_cols, std::span<const O>(indptr), std::span<const I>(indices),
                     std::span<const W>(weights));
  }
  operator view_type() const { return view(); }  // NOLINT(google-explicit-constructor)

  [[nodiscard]] I num_nodes() const { return num_rows; }
  [[nodiscard]] O num_edges() const { return view().num_edges(); }
  [[nodiscard]] bool has_weights() const { return !weights.empty(); }
  void validate(bool require_sorted = false) const { view().validate(require_sorted); }
  bool operator==(const csr_graph&) const = default;
};

static_assert(std::is_trivially_copyable_v<csr_view<>>, "csr_view must be trivially copyable");

}  // namespace ibmb
