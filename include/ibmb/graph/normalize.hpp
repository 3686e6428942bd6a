// ibmb: edge weights of the normalized adjacency used by GCN-style layers and PPR.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "ibmb/core/error.hpp"
#include "ibmb/graph/csr.hpp"

namespace ibmb {

enum class normalization {
  none,       ///< A (weights as stored, 1 when unweighted)
  row,        ///< D^-1 A: every non-empty row sums to 1
  symmetric,  ///< D^-1/2 A D^-1/2
};

inline std::string_view to_string(normalization n) {
  switch (n) {
    case normalization::none:
      return "none";
    case normalization::row:
      return "row";
    case normalization::symmetric:
      return "symmetric";
  }
  return "?";
}

inline normalization parse_normalization(std::string_view s) {
  if (s == "none") return normalization::none;
  if (s == "row") return normalization::row;
  if (s == "symmetric" || s == "sym") return normalization::symmetric;
  throw invalid_argument(
      detail::concat("unknown normalization '", s, "' (expected none, row or symmetric)"));
}

namespace detail {

/// Throws `ibmb::invalid_argument` for the first entry of row `r` whose weight is not finite
/// or negative (the row is known to hold one).
template <class I, class O, class W>
[[noreturn]] void throw_bad_weight(csr_view<I, O, W> g, std::int64_t r, const char* what) {
  const auto b = static_cast<std::size_t>(g.indptr[static_cast<std::size_t>(r)]);
  const auto e = static_cast<std::size_t>(g.indptr[static_cast<std::size_t>(r) + 1]);
  for (std::size_t p = b; p < e; ++p)
    if (!weight_ok(static_cast<double>(g.weights[p])))
      throw invalid_argument(concat(what, ": entry ", p, " (row ", r, ", column ", g.indices[p],
                                    ") has weight ", static_cast<double>(g.weights[p]),
                                    "; weights must be finite and >= 0"));
  throw invalid_argument(concat(what, ": row ", r, " has a non-finite or negative weight"));
}

}  // namespace detail

/// Weighted out-degree of every row (the number of entries when unweighted), summed in
/// double. Self-loops count, as in the reference. Throws `ibmb::invalid_argument` naming the
/// first entry (smallest row) whose weight is NaN, infinite or negative.
template <class I, class O, class W, class D = double>
std::vector<D> weighted_degrees(csr_view<I, O, W> g, const char* what = "weighted_degrees") {
  std::vector<D> deg(static_cast<std::size_t>(g.num_rows));
  const auto rows = static_cast<std::int64_t>(g.num_rows);
  std::int64_t bad = rows;
#pragma omp parallel for schedule(static) reduction(min : bad)
  for (std::int64_t v = 0; v < rows; ++v) {
    if (!g.has_weights()) {
      deg[static_cast<std::size_t>(v)] = static_cast<D>(g.degree(static_cast<I>(v)));
    } else {
      double s = 0;
      bool ok = true;
      for (W w : g.neighbor_weights(static_cast<I>(v))) {
        s += static_cast<double>(w);
        ok &= detail::weight_ok(static_cast<double>(w));
      }
      deg[static_cast<std::size_t>(v)] = static_cast<D>(s);
      if (!ok) bad = std::min(bad, v);
    }
  }
  if (bad < rows) detail::throw_bad_weight(g, bad, what);
  return deg;
}

/// Per-node factors of a normalization: 1 / deg (row), 1 / sqrt(deg) (symmetric), 0 for a
/// non-positive degree; empty for `none`. Throws `ibmb::invalid_argument` for a NaN,
/// infinite or negative weight (row / symmetric: they would give NaN or sign-flipped factors).
/// Entry (u, v) of the normalized matrix is `normalized_value(a_uv, kind, scales, u, v)`.
template <class I, class O, class W>
std::vector<double> normalization_scales(csr_view<I, O, W> g, normalization kind,
                                         const char* what = "normalization_scales") {
  IBMB_EXPECTS(
      kind == normalization::none || kind == normalization::row || kind == normalization::symmetric,
      what, ": unknown normalization code ", static_cast<int>(kind));
  IBMB_EXPECTS(kind != normalization::symmetric || g.num_rows == g.num_cols,
               "symmetric normalization needs a square matrix, got ", g.num_rows, " x ",
               g.num_cols);
  if (kind == normalization::none) return {};
  const auto deg = weighted_degrees(g, what);
  std::vector<double> scale(deg.size());
  for (std::size_t v = 0; v < deg.size(); ++v) {
    const double d = deg[v];
    scale[v] = d > 0 ? (kind == normalization::row ? 1.0 / d : 1.0 / std::sqrt(d)) : 0.0;
  }
  return scale;
}

/// The normalized value of an entry (u, v) whose stored weight is `a` (1 when unweighted),
/// with `scales` from `normalization_scales`; computed in double, rounded to W.
template <class W>
W normalized_value(double a, normalization kind, std::span<const double> scales, std::int64_t u,
                   std::int64_t v) {
  if (kind == normalization::none) return static_cast<W>(a);
  double x = a * scales[static_cast<std::size_t>(u)];
  if (kind == normalization::symmetric) x *= scales[static_cast<std::size_t>(v)];
  return static_cast<W>(x);
}

/// One weight per entry of `g` for the chosen normalization. Degrees are row sums of `g`
/// (so for `symmetric` the graph should be undirected). Rows of degree 0 have no entries;
/// entries whose row or column has a non-positive degree get weight 0 rather than Inf/NaN.
/// Throws `ibmb::invalid_argument` naming the entry (position, row, column, value) of the
/// first NaN, infinite or negative weight, for every kind (`basic_dataset::validate` rejects
/// them in loaded datasets; this covers graphs built by the caller).
template <class I, class O, class W>
std::vector<W> normalized_weights(csr_view<I, O, W> g, normalization kind) {
  const auto scale = normalization_scales(g, kind, "normalized_weights");
  const auto nnz = static_cast<std::size_t>(g.num_edges());
  std::vector<W> w(nnz);
  const auto rows = static_cast<std::int64_t>(g.num_rows);
  const bool check = kind == normalization::none && g.has_weights();  // else checked above
  std::int64_t bad = rows;
#pragma omp parallel for schedule(dynamic, 1024) reduction(min : bad)
  for (std::int64_t v = 0; v < rows; ++v) {
    const auto b = static_cast<std::size_t>(g.indptr[static_cast<std::size_t>(v)]);
    const auto e = static_cast<std::size_t>(g.indptr[static_cast<std::size_t>(v) + 1]);
    bool ok = true;
    for (std::size_t p = b; p < e; ++p) {
      const double a = g.has_weights() ? static_cast<double>(g.weights[p]) : 1.0;
      if (check) ok &= detail::weight_ok(a);
      w[p] = normalized_value<W>(a, kind, scale, v, static_cast<std::int64_t>(g.indices[p]));
    }
    if (!ok) bad = std::min(bad, v);
  }
  if (bad < rows) detail::throw_bad_weight(g, bad, "normalized_weights");
  return w;
}

/// Copy of `g` carrying normalized weights.
template <class I, class O, class W>
csr_graph<I, O, W> normalized(csr_view<I, O, W> g, normalization kind) {
  csr_graph<I, O, W> out(g);
  out.weights = normalized_weights(g, kind);
  return out;
}

}  // namespace ibmb
