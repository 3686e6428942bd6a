// ibmb: topic-sensitive PPR for many teleport sets at once, by power iteration on blocks
// of B sets: X <- (1 - alpha) P X + alpha T with X an N x B row-major block, so memory is
// O(N x B) whatever the number of sets.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <span>
#include <vector>

#include <Eigen/Dense>

#include "ibmb/core/error.hpp"
#include "ibmb/core/parallel.hpp"
#include "ibmb/graph/csr.hpp"
#include "ibmb/ppr/topic_types.hpp"

namespace ibmb {

/// Teleport sets in CSR form: set s is nodes[ptr[s] .. ptr[s+1]), each node teleported
/// to with probability 1 / |set| (a node listed twice gets twice the mass).
template <class I = std::int64_t>
struct teleport_sets {
  std::span<const std::int64_t> ptr;
  std::span<const I> nodes;
  [[nodiscard]] std::int64_t size() const {
    return ptr.empty() ? 0 : static_cast<std::int64_t>(ptr.size()) - 1;
  }
  [[nodiscard]] std::span<const I> set(std::int64_t s) const {
    return nodes.subspan(static_cast<std::size_t>(ptr[static_cast<std::size_t>(s)]),
                         static_cast<std::size_t>(ptr[static_cast<std::size_t>(s) + 1] -
                                                  ptr[static_cast<std::size_t>(s)]));
  }
};

struct topic_ppr_stats {
  std::int64_t blocks = 0;
  std::int64_t iterations = 0;  ///< summed over blocks
  double max_final_change = 0;  ///< largest per-column L1 change in the last iteration
};

/// Per-set top-k result: list s is ids[ptr[s] .. ptr[s+1]) with scores, by score
/// descending, ties by id ascending.
template <class I = std::int64_t, class V = float>
struct topk_lists {
  std::vector<std::int64_t> ptr{0};
  std::vector<I> ids;
  std::vector<V> scores;
  [[nodiscard]] std::int64_t size() const { return static_cast<std::int64_t>(ptr.size()) - 1; }
  [[nodiscard]] std::span<const I> list(std::int64_t s) const {
    return std::span<const I>(ids).subspan(
        static_cast<std::size_t>(ptr[static_cast<std::size_t>(s)]),
        static_cast<std::size_t>(ptr[static_cast<std::size_t>(s) + 1] -
                                 ptr[static_cast<std::size_t>(s)]));
  }
};

namespace detail {

template <class I, class O, class W>
void check_teleport_sets(csr_view<I, O, W> g, teleport_sets<I> sets, const topic_ppr_params& p) {
  IBMB_EXPECTS(g.num_rows == g.num_cols, "topic PPR needs a square graph, got ", g.num_rows, " x ",
               g.num_cols);
  IBMB_EXPECTS(p.alpha > 0 && p.alpha <= 1, "alpha must be in (0, 1], got ", p.alpha);
  IBMB_EXPECTS(p.max_iterations >= 1, "max_iterations must be >= 1, got ", p.max_iterations);
  IBMB_EXPECTS(p.tolerance >= 0, "tolerance must be >= 0, got ", p.tolerance);
  IBMB_EXPECTS(p.block_columns >= 1, "block_columns must be >= 1, got ", p.block_columns);
  IBMB_EXPECTS(sets.ptr.empty() || sets.ptr[0] == 0, "teleport set ptr[0] must be 0");
  for (std::int64_t s = 0; s < sets.size(); ++s) {
    const auto b = sets.ptr[static_cast<std::size_t>(s)],
               e = sets.ptr[static_cast<std::size_t>(s) + 1];
    IBMB_EXPECTS(e > b, "teleport set ", s, " is empty");
    IBMB_EXPECTS(e <= static_cast<std::int64_t>(sets.nodes.size()), "teleport set ", s, " ends at ",
                 e, " beyond the ", sets.nodes.size(), " nodes given");
    for (auto v : sets.set(s))
      IBMB_EXPECTS(v >= 0 && v < g.num_rows, "teleport set ", s, " holds node ", v, " outside [0, ",
                   g.num_rows, ")");
  }
}

/// y_v = keep * rs * sum_{u in nb} cs_u x_u for one row of the N x B block, by column panels
/// of 16 whose accumulators stay in registers (a compile-time width), with the next
/// neighbours' rows prefetched. Every entry is summed in neighbour order whatever the panel
/// width, so the result does not depend on it (nor on the thread count).
template <bool HasColScale, class I, class V>
inline void spmm_row(std::span<const I> nb, const V* x, std::size_t B, std::span<const V> col_scale,
                     V rs, V keep, V* yv, V* acc) {
  constexpr std::size_t C = 16;
  constexpr std::size_t ahead = 8;
  const std::size_t deg = nb.size();
  std::size_t j0 = 0;
  for (; j0 + C <= B; j0 += C) {
    V a[C] = {};
    for (std::size_t i = 0; i < deg; ++i) {
      if (i + ahead < deg) __builtin_prefetch(x + static_cast<std::size_t>(nb[i + ahead]) * B + j0);
      const I u = nb[i];
      const V* xu = x + static_cast<std::size_t>(u) * B + j0;
      if constexpr (HasColScale) {
        const V cs = col_scale[static_cast<std::size_t>(u)];
#pragma omp simd
        for (std::size_t j = 0; j < C; ++j) a[j] += cs * xu[j];
      } else {
#pragma omp simd
        for (std::size_t j = 0; j < C; ++j) a[j] += xu[j];
      }
    }
#pragma omp simd
    for (std::size_t j = 0; j < C; ++j) yv[j0 + j] = keep * (a[j] * rs);
  }
  if (j0 < B) {  // tail panel of runtime width
    const std::size_t w = B - j0;
    std::fill(acc, acc + w, V{0});
    for (std::size_t i = 0; i < deg; ++i) {
      const I u = nb[i];
      const V* xu = x + static_cast<std::size_t>(u) * B + j0;
      const V cs = HasColScale ? col_scale[static_cast<std::size_t>(u)] : V{1};
      for (std::size_t j = 0; j < w; ++j) acc[j] += cs * xu[j];
    }
    for (std::size_t j = 0; j < w; ++j) yv[j0 + j] = keep * (acc[j] * rs);
  }
}

/// Runs the power iteration for sets [first, first + width) into x (N x width, row-major).
template <class I, class O, class W, class V>
std::pair<int, double> topic_ppr_block(csr_view<I, O, W> g, teleport_sets<I> sets,
                                       std::int64_t first, int width, const topic_ppr_params& p,
                                       std::span<const V> row_scale, std::span<const V> col_scale,
                                       std::vector<V>& x, std::vector<V>& y) {
  const auto n = static_cast<std::int64_t>(g.num_rows);
  const auto B = static_cast<std::size_t>(width);
  const V keep = static_cast<V>(1 - p.alpha);
  // x0 = T; teleport entries are also re-added after every multiplication.
  std::fill(x.begin(), x.end(), V{0});
  struct entry {
    std::int64_t node;
    std::size_t col;
    V value;
  };
  std::vector<entry> tele;
  for (int j = 0; j < width; ++j) {
    auto s = sets.set(first + j);
    const V m = static_cast<V>(p.alpha / static_cast<double>(s.size()));
    for (auto v : s) tele.push_back({static_cast<std::int64_t>(v), static_cast<std::size_t>(j), m});
  }
  for (const auto& t : tele)
    x[static_cast<std::size_t>(t.node) * B + t.col] += t.value / static_cast<V>(p.alpha);

  // Fixed chunking for the convergence check, so the stop decision (and therefore the
  // result) does not depend on the thread count.
  constexpr int chunks = 256;
  const auto bounds = ::ibmb::detail::even_chunks<std::int64_t>(n, chunks);
  std::vector<double> partial(static_cast<std::size_t>(chunks) * B);
  std::vector<double> change(B);
  int it = 0;
  double max_change = 0;
  // Small problems run on the calling thread: a parallel region per iteration costs more.
  const bool parallel = static_cast<std::size_t>(g.num_edges()) * B > (1u << 16);
  for (it = 1; it <= p.max_iterations; ++it) {
    ::ibmb::detail::region_failure failure;  // carries a bad_alloc of `acc` out of the region
#pragma omp parallel if (parallel)
    {
      std::vector<V> acc;
      failure.run([&] { acc.resize(B); });
#pragma omp for schedule(dynamic, 1)
      for (int c = 0; c < chunks; ++c) {
        if (failure.stopped()) continue;
        double* part = partial.data() + static_cast<std::size_t>(c) * B;
        std::fill(part, part + B, 0.0);
        for (std::int64_t v = bounds[static_cast<std::size_t>(c)];
             v < bounds[static_cast<std::size_t>(c) + 1]; ++v) {
          const auto nb = g.neighbors(static_cast<I>(v));
          V* yv = y.data() + static_cast<std::size_t>(v) * B;
          if (nb.empty()) {
            // A node without edges keeps its own mass (as if it had a self-loop).
            const V* xv = x.data() + static_cast<std::size_t>(v) * B;
            for (std::size_t j = 0; j < B; ++j) yv[j] = keep * xv[j];
          } else {
            const V rs = row_scale.empty() ? V{1} : row_scale[static_cast<std::size_t>(v)];
            if (col_scale.empty())
              spmm_row<false>(nb, x.data(), B, col_scale, rs, keep, yv, acc.data());
            else
              spmm_row<true>(nb, x.data(), B, col_scale, rs, keep, yv, acc.data());
          }
        }
      }
    }
    failure.rethrow();
    for (const auto& t : tele) y[static_cast<std::size_t>(t.node) * B + t.col] += t.value;
    if (p.tolerance > 0) {
#pragma omp parallel for schedule(static) if (parallel)
      for (int c = 0; c < chunks; ++c) {
        double* part = partial.data() + static_cast<std::size_t>(c) * B;
        std::fill(part, part + B, 0.0);
        for (std::int64_t v = bounds[static_cast<std::size_t>(c)];
             v < bounds[static_cast<std::size_t>(c) + 1]; ++v)
          for (std::size_t j = 0; j < B; ++j)
            part[j] += std::abs(static_cast<double>(y[static_cast<std::size_t>(v) * B + j]) -
                                static_cast<double>(x[static_cast<std::size_t>(v) * B + j]));
      }
      std::fill(change.begin(), change.end(), 0.0);
      for (int c = 0; c < chunks; ++c)
        for (std::size_t j = 0; j < B; ++j)
          change[j] += partial[static_cast<std::size_t>(c) * B + j];
      max_change = *std::max_element(change.begin(), change.end());
    }
    x.swap(y);
    if (p.tolerance > 0 && max_change < p.tolerance) break;
  }
  return {std::min(it, p.max_iterations), max_change};
}

}  // namespace detail

/// Topic-sensitive PPR for every teleport set, handed out block by block:
/// `consume(first_set, width, scores)` receives an N x width row-major block (score of
/// node v for set first_set + j at scores[v * width + j]), valid until it returns.
/// The graph is taken as unweighted (degrees count entries, self-loops included) and should
/// be undirected. Results are bit-identical for any thread count.
template <class V = float, class I, class O, class W, class Consume>
topic_ppr_stats topic_ppr_blocks(csr_view<I, O, W> g, teleport_sets<I> sets,
                                 const topic_ppr_params& p, Consume&& consume) {
  detail::check_teleport_sets(g, sets, p);
  g.validate();  // the kernels index by column id: an id >= N would read out of bounds
  const auto n = static_cast<std::size_t>(g.num_rows);
  std::vector<V> inv_deg(n);
  for (std::size_t v = 0; v < n; ++v) {
    const auto d = g.degree(static_cast<I>(v));
    inv_deg[v] = d > 0 ? V{1} / static_cast<V>(d) : V{0};
  }
  const std::span<const V> row_scale =
      p.transition == ppr_transition::row ? std::span<const V>(inv_deg) : std::span<const V>{};
  const std::span<const V> col_scale =
      p.transition == ppr_transition::column ? std::span<const V>(inv_deg) : std::span<const V>{};
  topic_ppr_stats st;
  const std::int64_t total = sets.size();
  std::vector<V> x, y;
  for (std::int64_t first = 0; first < total; first += p.block_columns) {
    const int width = static_cast<int>(std::min<std::int64_t>(p.block_columns, total - first));
    x.assign(n * static_cast<std::size_t>(width), V{0});
    y.assign(n * static_cast<std::size_t>(width), V{0});
    const auto [its, change] =
        detail::topic_ppr_block<I, O, W, V>(g, sets, first, width, p, row_scale, col_scale, x, y);
    ++st.blocks;
    st.iterations += its;
    st.max_final_change = std::max(st.max_final_change, change);
    consume(first, width, std::span<const V>(x));
    report(p.progress, "topic_ppr", first + width, total);
  }
  return st;
}

/// Dense N x S score matrix (for small graphs and tests).
template <class V = float, class I, class O, class W>
Eigen::Matrix<V, Eigen::Dynamic, Eigen::Dynamic> topic_ppr_dense(csr_view<I, O, W> g,
                                                                 teleport_sets<I> sets,
                                                                 const topic_ppr_params& p) {
  Eigen::Matrix<V, Eigen::Dynamic, Eigen::Dynamic> out(static_cast<Eigen::Index>(g.num_rows),
                                                       static_cast<Eigen::Index>(sets.size()));
  topic_ppr_blocks<V>(g, sets, p, [&](std::int64_t first, int width, std::span<const V> x) {
    for (Eigen::Index v = 0; v < out.rows(); ++v)
      for (int j = 0; j < width; ++j)
        out(v, static_cast<Eigen::Index>(first + j)) =
            x[static_cast<std::size_t>(v) * static_cast<std::size_t>(width) +
              static_cast<std::size_t>(j)];
  });
  return out;
}

/// The `k` highest-scoring nodes of each set among positive scores (ties by id), scores
/// descending. Sets with fewer positive scores return all of them.
template <class V = float, class I, class O, class W>
topk_lists<I, V> topic_ppr_topk(csr_view<I, O, W> g, teleport_sets<I> sets, std::int64_t k,
                                const topic_ppr_params& p, topic_ppr_stats* stats = nullptr) {
  IBMB_EXPECTS(k >= 0, "k must be >= 0, got ", k);
  const auto n = static_cast<std::int64_t>(g.num_rows);
  std::vector<std::vector<I>> ids(static_cast<std::size_t>(sets.size()));
  std::vector<std::vector<V>> scores(ids.size());
  auto st =
      topic_ppr_blocks<V>(g, sets, p, [&](std::int64_t first, int width, std::span<const V> x) {
        const auto B = static_cast<std::size_t>(width);
        // The candidate lists (up to N ids per thread) can throw bad_alloc: carried out of
        // the region and rethrown after it.
        ::ibmb::detail::region_failure failure;
#pragma omp parallel
        {
          std::vector<I> cand;
#pragma omp for schedule(dynamic, 1)
          for (int j = 0; j < width; ++j)
            failure.run([&] {
              cand.clear();
              for (std::int64_t v = 0; v < n; ++v)
                if (x[static_cast<std::size_t>(v) * B + static_cast<std::size_t>(j)] > V{0})
                  cand.push_back(static_cast<I>(v));
              auto better = [&](I a, I b) {
                const V sa = x[static_cast<std::size_t>(a) * B + static_cast<std::size_t>(j)];
                const V sb = x[static_cast<std::size_t>(b) * B + static_cast<std::size_t>(j)];
                return sa != sb ? sa > sb : a < b;
              };
              const auto take = static_cast<std::size_t>(
                  std::min<std::int64_t>(k, static_cast<std::int64_t>(cand.size())));
              std::partial_sort(cand.begin(), cand.begin() + static_cast<std::ptrdiff_t>(take),
                                cand.end(), better);
              cand.resize(take);
              auto& sc = scores[static_cast<std::size_t>(first + j)];
              for (I v : cand)
                sc.push_back(x[static_cast<std::size_t>(v) * B + static_cast<std::size_t>(j)]);
              ids[static_cast<std::size_t>(first + j)] = cand;
            });
        }
        failure.rethrow();
      });
  if (stats) *stats = st;
  topk_lists<I, V> out;
  for (std::size_t s = 0; s < ids.size(); ++s) {
    out.ids.insert(out.ids.end(), ids[s].begin(), ids[s].end());
    out.scores.insert(out.scores.end(), scores[s].begin(), scores[s].end());
    out.ptr.push_back(static_cast<std::int64_t>(out.ids.size()));
  }
  return out;
}

}  // namespace ibmb
