// ibmb: summary statistics of a graph (what `ibmb stats` prints).
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "ibmb/graph/csr.hpp"

namespace ibmb {

struct graph_stats {
  std::int64_t nodes = 0;
  std::int64_t directed_edges = 0;  ///< stored entries, self-loops included
  std::int64_t self_loops = 0;
  std::int64_t isolated_nodes = 0;  ///< no entry other than a self-loop in their row
  std::int64_t min_degree = 0, max_degree = 0, median_degree = 0;
  double mean_degree = 0;
  bool symmetric = false;  ///< every (u, v) has a (v, u)
};

/// Degrees count stored entries per row. `symmetric` needs sorted columns to be exact;
/// unsorted rows are checked by binary search after a local sort copy, so it is always right.
template <class I, class O, class W>
graph_stats compute_stats(csr_view<I, O, W> g) {
  graph_stats s;
  s.nodes = static_cast<std::int64_t>(g.num_rows);
  s.directed_edges = static_cast<std::int64_t>(g.num_edges());
  if (s.nodes == 0) {
    s.symmetric = true;
    return s;
  }
  std::vector<std::int64_t> deg(static_cast<std::size_t>(s.nodes));
  std::int64_t loops = 0, isolated = 0;
  bool sorted = true;
#pragma omp parallel for schedule(static) reduction(+ : loops, isolated) reduction(&& : sorted)
  for (std::int64_t v = 0; v < s.nodes; ++v) {
    auto nb = g.neighbors(static_cast<I>(v));
    deg[static_cast<std::size_t>(v)] = static_cast<std::int64_t>(nb.size());
    std::int64_t own = 0;
    for (std::size_t p = 0; p < nb.size(); ++p) {
      own += nb[p] == static_cast<I>(v);
      if (p > 0 && nb[p - 1] > nb[p]) sorted = false;
    }
    loops += own;
    isolated += static_cast<std::int64_t>(nb.size()) == own;
  }
  s.self_loops = loops;
  s.isolated_nodes = isolated;
  s.mean_degree = static_cast<double>(s.directed_edges) / static_cast<double>(s.nodes);
  std::vector<std::int64_t> d = deg;
  const auto mid = d.begin() + static_cast<std::ptrdiff_t>(d.size() / 2);
  std::nth_element(d.begin(), mid, d.end());
  s.median_degree = *mid;
  const auto [mn, mx] = std::minmax_element(deg.begin(), deg.end());
  s.min_degree = *mn;
  s.max_degree = *mx;

  if (g.num_rows != g.num_cols) return s;
  // Symmetry: every (u, v) must have (v, u). Rows are searched sorted.
  std::vector<I> sorted_cols;
  csr_view<I, O, W> h = g;
  if (!sorted) {
    sorted_cols.assign(g.indices.begin(), g.indices.end());
    for (std::int64_t v = 0; v < s.nodes; ++v)
      std::sort(sorted_cols.begin() + g.indptr[static_cast<std::size_t>(v)],
                sorted_cols.begin() + g.indptr[static_cast<std::size_t>(v) + 1]);
    h.indices = sorted_cols;
  }
  bool sym = true;
#pragma omp parallel for schedule(dynamic, 1024) reduction(&& : sym)
  for (std::int64_t v = 0; v < s.nodes; ++v) {
    if (!sym) continue;
    for (I u : h.neighbors(static_cast<I>(v))) {
      auto back = h.neighbors(u);
      if (!std::binary_search(back.begin(), back.end(), static_cast<I>(v))) {
        sym = false;
        break;
      }
    }
  }
  s.symmetric = sym;
  return s;
}

}  // namespace ibmb
