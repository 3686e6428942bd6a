// ibmb: edge weights of the normalized adjacency used by GCN-style layers and PPR.
#pragma once

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

/// Weighted out-degree of every row (the number of entries when unweighted), summed in
/// double. Self-loops count, as in the reference.
template <class I, class O, class W, class D = double>
std::vector<D> weighted_degrees(csr_view<I, O, W> g) {
  std::vector<D> deg(static_cast<std::size_t>(g.num_rows));
#pragma omp parallel for schedule(static)
  for (std::int64_t v = 0; v < static_cast<std::int64_t>(g.num_rows); ++v) {
    if (!g.has_weights()) {
      deg[static_cast<std::size_t>(v)] = static_cast<D>(g.degree(static_cast<I>(v)));
    } else {
      double s = 0;
      for (W w : g.neighbor_weights(static_cast<I>(v))) s += static_cast<double>(w);
      deg[static_cast<std::size_t>(v)] = static_cast<D>(s);
    }
  }
  return deg;
}

/// Per-node factors of a normalization: 1 / deg (row), 1 / sqrt(deg) (symmetric), 0 for a
/// non-positive degree; empty for `none`. Entry (u, v) of the normalized matrix is
/// `normalized_value(a_uv, kind, scales, u, v)`.
template <class I, class O, class W>
std::vector<double> normalization_scales(csr_view<I, O, W> g, normalization kind) {
  IBMB_EXPECTS(kind != normalization::symmetric || g.num_rows == g.num_cols,
               "symmetric normalization needs a square matrix, got ", g.num_rows, " x ",
               g.num_cols);
  if (kind == normalization::none) return {};
  const auto deg = weighted_degrees(g);
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
template <class I, class O, class W>
std::vector<W> normalized_weights(csr_view<I, O, W> g, normalization kind) {
  const auto scale = normalization_scales(g, kind);
  const auto nnz = static_cast<std::size_t>(g.num_edges());
  std::vector<W> w(nnz);
#pragma omp parallel for schedule(dynamic, 1024)
  for (std::int64_t v = 0; v < static_cast<std::int64_t>(g.num_rows); ++v) {
    const auto b = static_cast<std::size_t>(g.indptr[static_cast<std::size_t>(v)]);
    const auto e = static_cast<std::size_t>(g.indptr[static_cast<std::size_t>(v) + 1]);
    for (std::size_t p = b; p < e; ++p)
      w[p] = normalized_value<W>(g.has_weights() ? static_cast<double>(g.weights[p]) : 1.0, kind,
                                 scale, v, static_cast<std::int64_t>(g.indices[p]));
  }
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
