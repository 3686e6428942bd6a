// ibmb: builders from edge lists to CSR and the structural clean-ups every pipeline needs
// (symmetrize, deduplicate, self-loops, sorted columns). All are OpenMP-parallel and give
// the same bytes for any thread count.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <limits>
#include <numeric>
#include <span>
#include <type_traits>
#include <vector>

#include "ibmb/core/error.hpp"
#include "ibmb/graph/csr.hpp"

namespace ibmb {

/// What to do with repeated (row, column) entries.
enum class duplicate_policy {
  keep,        ///< leave them in place
  keep_first,  ///< keep the first occurrence (input order) and its weight
  sum,         ///< keep one entry whose weight is the sum of the repeats
};

/// What to do with (v, v) entries.
enum class self_loop_policy {
  keep,    ///< leave as given
  add,     ///< ensure every node has exactly one (weight `self_loop_weight` where added)
  remove,  ///< drop them all
};

/// Options of `coo_to_csr` / `edge_index_to_csr`.
struct build_options {
  /// Drop edges whose endpoint is negative or >= num_nodes instead of throwing.
  bool drop_out_of_range = false;
  /// Add the reverse of every edge (then duplicates are merged by `duplicates`, which
  /// should not be `keep` for a simple undirected graph).
  bool make_undirected = false;
  duplicate_policy duplicates = duplicate_policy::keep;
  self_loop_policy self_loops = self_loop_policy::keep;
  double self_loop_weight = 1.0;
  /// Sort the columns of each row (ties keep input order). Always true when duplicates
  /// are merged.
  bool sort_columns = true;
};

namespace detail {

template <class I>
void check_fits_index(std::int64_t n, const char* what) {
  if (n < 0 ||
      static_cast<std::uint64_t>(n) > static_cast<std::uint64_t>(std::numeric_limits<I>::max()))
    throw out_of_range(concat(what, " = ", n, " does not fit the ", sizeof(I) * 8,
                              "-bit index type requested; use 64-bit indices"));
}

/// Throws `ibmb::out_of_range` when `total` entries do not fit the offset type O.
template <class O>
void check_fits_offset(std::int64_t total, const char* what) {
  if (static_cast<std::uint64_t>(total) > static_cast<std::uint64_t>(std::numeric_limits<O>::max()))
    throw out_of_range(concat(total, " ", what, " do not fit the ", sizeof(O) * 8,
                              "-bit offset type (max ", std::numeric_limits<O>::max(),
                              "); use 64-bit offsets"));
}

/// The core of every builder: scatter edges (given by accessor functions) into rows,
/// then order each row by (column, input position) or (input position) alone, so the
/// result never depends on the thread count.
template <class I, class O, class W, class SrcFn, class DstFn, class WFn>
csr_graph<I, O, W> scatter_to_csr(I n, std::int64_t num_edges, SrcFn src, DstFn dst, WFn wfn,
                                  bool weighted, const build_options& opt) {
  const bool merge = opt.duplicates != duplicate_policy::keep;
  const bool sorted = opt.sort_columns || merge;
  const auto nn = static_cast<std::size_t>(n);
  const bool drop_loops = opt.self_loops != self_loop_policy::keep;

  auto keep_edge = [&](std::int64_t e) { return !(drop_loops && src(e) == dst(e)); };

  // 1. count per row (64-bit counts and sums: a narrow O must not wrap before the check)
  std::vector<std::atomic<std::int64_t>> count(nn);
  for (auto& c : count) c.store(0, std::memory_order_relaxed);
#pragma omp parallel for schedule(static)
  for (std::int64_t e = 0; e < num_edges; ++e) {
    if (src(e) < 0) continue;  // marked dropped
    if (!keep_edge(e)) continue;
    count[static_cast<std::size_t>(src(e))].fetch_add(1, std::memory_order_relaxed);
  }
  std::vector<std::int64_t> ptr(nn + 1, 0);
  for (std::size_t v = 0; v < nn; ++v)
    ptr[v + 1] = ptr[v] + count[v].load(std::memory_order_relaxed);
  count.clear();
  count.shrink_to_fit();
  const std::int64_t total = ptr[nn];
  check_fits_offset<O>(total, "edges");

  // 2. scatter edge ids (order inside a row is racy here, fixed in step 3)
  std::vector<std::int64_t> eid(static_cast<std::size_t>(total));
  std::vector<std::atomic<std::int64_t>> cursor(nn);
  for (std::size_t v = 0; v < nn; ++v) cursor[v].store(ptr[v], std::memory_order_relaxed);
#pragma omp parallel for schedule(static)
  for (std::int64_t e = 0; e < num_edges; ++e) {
    if (src(e) < 0) continue;
    if (!keep_edge(e)) continue;
    const std::int64_t at =
        cursor[static_cast<std::size_t>(src(e))].fetch_add(1, std::memory_order_relaxed);
    eid[static_cast<std::size_t>(at)] = e;
  }
  cursor.clear();
  cursor.shrink_to_fit();

  // 3. order each row deterministically, merge duplicates, add self-loops; count kept
  std::vector<std::int64_t> kept(nn, 0);
  const bool add_loops = opt.self_loops == self_loop_policy::add;
#pragma omp parallel for schedule(dynamic, 1024)
  for (std::int64_t v = 0; v < static_cast<std::int64_t>(n); ++v) {
    auto* b = eid.data() + ptr[static_cast<std::size_t>(v)];
    auto* e = eid.data() + ptr[static_cast<std::size_t>(v) + 1];
    if (sorted) {
      std::sort(b, e, [&](std::int64_t x, std::int64_t y) {
        const auto dx = dst(x), dy = dst(y);
        return dx != dy ? dx < dy : x < y;
      });
    } else {
      std::sort(b, e);
    }
    std::int64_t k = e - b;
    if (merge && k > 1) {
      std::int64_t distinct = 1;
      for (auto* p = b + 1; p < e; ++p) distinct += dst(*p) != dst(*(p - 1));
      k = distinct;
    }
    kept[static_cast<std::size_t>(v)] = k + (add_loops ? 1 : 0);
  }

  csr_graph<I, O, W> g;
  g.num_rows = n;
  g.num_cols = n;
  // Sum in 64 bits and check before narrowing: added self-loops can push a total that
  // fitted O in step 1 past its limit.
  std::int64_t out_total = 0;
  for (std::size_t v = 0; v < nn; ++v) out_total += kept[v];
  check_fits_offset<O>(out_total, "entries (with self-loops)");
  g.indptr.assign(nn + 1, 0);
  for (std::size_t v = 0; v < nn; ++v) g.indptr[v + 1] = g.indptr[v] + static_cast<O>(kept[v]);
  kept.clear();
  kept.shrink_to_fit();
  const auto out_nnz = static_cast<std::size_t>(g.indptr[nn]);
  g.indices.resize(out_nnz);
  const bool out_weighted = weighted || (add_loops && opt.self_loop_weight != 1.0);
  if (out_weighted) g.weights.resize(out_nnz);
  const W loop_w = static_cast<W>(opt.self_loop_weight);

#pragma omp parallel for schedule(dynamic, 1024)
  for (std::int64_t v = 0; v < static_cast<std::int64_t>(n); ++v) {
    const auto* b = eid.data() + ptr[static_cast<std::size_t>(v)];
    const auto* e = eid.data() + ptr[static_cast<std::size_t>(v) + 1];
    auto out = static_cast<std::size_t>(g.indptr[static_cast<std::size_t>(v)]);
    bool loop_done = !add_loops;
    auto put = [&](I col, W w) {
      g.indices[out] = col;
      if (out_weighted) g.weights[out] = w;
      ++out;
    };
    auto put_loop_before = [&](I col) {
      if (!loop_done && (!sorted || col > static_cast<I>(v))) {
        put(static_cast<I>(v), loop_w);
        loop_done = true;
      }
    };
    for (const auto* p = b; p < e;) {
      const I col = static_cast<I>(dst(*p));
      W w = weighted ? static_cast<W>(wfn(*p)) : W{1};
      const auto* q = p + 1;
      if (merge) {
        while (q < e && dst(*q) == col) {
          if (opt.duplicates == duplicate_policy::sum)
            w += weighted ? static_cast<W>(wfn(*q)) : W{1};
          ++q;
        }
      }
      if (sorted) put_loop_before(col);
      put(col, w);
      p = q;
    }
    if (!loop_done) put(static_cast<I>(v), loop_w);
  }
  return g;
}

template <class T>
using index_span = std::span<const T>;

}  // namespace detail

/// Builds a square CSR graph with `num_nodes` nodes from COO arrays `src[e] -> dst[e]`
/// (int32 or int64 ids) and optional per-edge weights.
/// Ids outside [0, num_nodes) throw `ibmb::out_of_range` naming the edge position and the
/// value, unless `opt.drop_out_of_range`. `num_nodes` must fit the index type I.
template <class I = std::int64_t, class O = std::int64_t, class W = float, class T, class WIn = W>
requires std::integral<T> csr_graph<I, O, W> coo_to_csr(std::int64_t num_nodes,
                                                        std::span<const T> src,
                                                        std::span<const T> dst,
                                                        std::span<const WIn> weights = {},
                                                        const build_options& opt = {}) {
  detail::check_fits_index<I>(num_nodes, "num_nodes");
  IBMB_EXPECTS(src.size() == dst.size(), "coo_to_csr: ", src.size(), " sources but ", dst.size(),
               " targets");
  IBMB_EXPECTS(weights.empty() || weights.size() == src.size(), "coo_to_csr: ", weights.size(),
               " weights for ", src.size(), " edges");
  const auto m = static_cast<std::int64_t>(src.size());

  // Find the first bad edge (smallest position, so the message is thread-independent).
  std::int64_t first_bad = m;
#pragma omp parallel for reduction(min : first_bad) schedule(static)
  for (std::int64_t e = 0; e < m; ++e) {
    const auto s = static_cast<std::int64_t>(src[static_cast<std::size_t>(e)]);
    const auto d = static_cast<std::int64_t>(dst[static_cast<std::size_t>(e)]);
    if (s < 0 || s >= num_nodes || d < 0 || d >= num_nodes) first_bad = std::min(first_bad, e);
  }
  std::vector<char> dropped;
  if (first_bad < m) {
    if (!opt.drop_out_of_range) {
      const auto s = static_cast<std::int64_t>(src[static_cast<std::size_t>(first_bad)]);
      const auto d = static_cast<std::int64_t>(dst[static_cast<std::size_t>(first_bad)]);
      const bool src_bad = s < 0 || s >= num_nodes;
      throw out_of_range(detail::concat("edge ", first_bad, ": ", src_bad ? "source" : "target",
                                        " id ", src_bad ? s : d, " outside [0, ", num_nodes, ")"));
    }
    dropped.assign(static_cast<std::size_t>(m), 0);
#pragma omp parallel for schedule(static)
    for (std::int64_t e = first_bad; e < m; ++e) {
      const auto s = static_cast<std::int64_t>(src[static_cast<std::size_t>(e)]);
      const auto d = static_cast<std::int64_t>(dst[static_cast<std::size_t>(e)]);
      dropped[static_cast<std::size_t>(e)] = (s < 0 || s >= num_nodes || d < 0 || d >= num_nodes);
    }
  }
  const bool und = opt.make_undirected;
  const std::int64_t total = und ? 2 * m : m;
  auto edge = [&](std::int64_t e) { return und && e >= m ? e - m : e; };
  auto is_dropped = [&](std::int64_t e) {
    return !dropped.empty() && dropped[static_cast<std::size_t>(edge(e))];
  };
  auto s_of = [&](std::int64_t e) -> std::int64_t {
    if (is_dropped(e)) return -1;
    return und && e >= m ? static_cast<std::int64_t>(dst[static_cast<std::size_t>(e - m)])
                         : static_cast<std::int64_t>(src[static_cast<std::size_t>(e)]);
  };
  auto d_of = [&](std::int64_t e) -> std::int64_t {
    return und && e >= m ? static_cast<std::int64_t>(src[static_cast<std::size_t>(e - m)])
                         : static_cast<std::int64_t>(dst[static_cast<std::size_t>(e)]);
  };
  auto w_of = [&](std::int64_t e) { return weights[static_cast<std::size_t>(edge(e))]; };
  return detail::scatter_to_csr<I, O, W>(static_cast<I>(num_nodes), total, s_of, d_of, w_of,
                                         !weights.empty(), opt);
}

/// Same as `coo_to_csr` for a PyG/OGB `edge_index`: a row-major 2 x E array (the first E
/// entries are sources, the next E targets).
template <class I = std::int64_t, class O = std::int64_t, class W = float, class T, class WIn = W>
requires std::integral<T> csr_graph<I, O, W> edge_index_to_csr(std::int64_t num_nodes,
                                                               std::span<const T> edge_index,
                                                               std::span<const WIn> weights = {},
                                                               const build_options& opt = {}) {
  IBMB_EXPECTS(edge_index.size() % 2 == 0, "edge_index_to_csr: edge_index has ", edge_index.size(),
               " entries, expected 2 x E");
  const auto m = edge_index.size() / 2;
  return coo_to_csr<I, O, W, T, WIn>(num_nodes, edge_index.first(m), edge_index.subspan(m), weights,
                                     opt);
}

/// Re-runs a graph through the builder with new options (the general clean-up step).
template <class I, class O, class W>
csr_graph<I, O, W> rebuild(csr_view<I, O, W> g, const build_options& opt) {
  IBMB_EXPECTS(g.num_rows == g.num_cols, "rebuild: the graph must be square, got ", g.num_rows,
               " x ", g.num_cols);
  g.validate();
  // Row of each entry, found by the entry's position: avoids materializing COO sources.
  std::vector<I> row(static_cast<std::size_t>(g.num_edges()));
#pragma omp parallel for schedule(dynamic, 1024)
  for (std::int64_t v = 0; v < static_cast<std::int64_t>(g.num_rows); ++v)
    for (O p = g.indptr[static_cast<std::size_t>(v)]; p < g.indptr[static_cast<std::size_t>(v) + 1];
         ++p)
      row[static_cast<std::size_t>(p)] = static_cast<I>(v);
  build_options o = opt;
  o.drop_out_of_range = false;
  return coo_to_csr<I, O, W, I, W>(g.num_rows, std::span<const I>(row), g.indices, g.weights, o);
}

/// A ∪ Aᵀ with duplicates merged (first occurrence wins; an edge given in both directions
/// keeps the weight of its own direction), columns sorted.
template <class I, class O, class W>
csr_graph<I, O, W> make_undirected(csr_view<I, O, W> g) {
  build_options o;
  o.make_undirected = true;
  o.duplicates = duplicate_policy::keep_first;
  return rebuild(g, o);
}

/// Merges repeated (row, column) entries; columns come out sorted.
template <class I, class O, class W>
csr_graph<I, O, W> remove_duplicate_edges(csr_view<I, O, W> g,
                                          duplicate_policy policy = duplicate_policy::keep_first) {
  IBMB_EXPECTS(policy != duplicate_policy::keep,
               "remove_duplicate_edges: policy 'keep' removes nothing");
  build_options o;
  o.duplicates = policy;
  return rebuild(g, o);
}

/// Gives every node exactly one self-loop (existing self-loops are replaced by one of weight
/// `weight`); columns come out sorted.
template <class I, class O, class W>
csr_graph<I, O, W> add_self_loops(csr_view<I, O, W> g, double weight = 1.0) {
  build_options o;
  o.self_loops = self_loop_policy::add;
  o.self_loop_weight = weight;
  return rebuild(g, o);
}

/// Drops every (v, v) entry; columns come out sorted.
template <class I, class O, class W>
csr_graph<I, O, W> remove_self_loops(csr_view<I, O, W> g) {
  build_options o;
  o.self_loops = self_loop_policy::remove;
  return rebuild(g, o);
}

/// Sorts the columns of every row (equal columns keep their order).
template <class I, class O, class W>
csr_graph<I, O, W> sort_columns(csr_view<I, O, W> g) {
  return rebuild(g, build_options{});
}

/// The reference preprocessing: undirected, no duplicates, one self-loop per node.
template <class I, class O, class W>
csr_graph<I, O, W> make_undirected_with_self_loops(csr_view<I, O, W> g) {
  build_options o;
  o.make_undirected = true;
  o.duplicates = duplicate_policy::keep_first;
  o.self_loops = self_loop_policy::add;
  return rebuild(g, o);
}

}  // namespace ibmb
