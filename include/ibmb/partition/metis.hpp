// ibmb: METIS graph partitioning (Debian libmetis-dev 5.1, 32-bit idx_t).
//
// METIS needs an undirected graph given as a symmetric CSR without self-loops. The wrapper
// drops self-loops, checks symmetry (an asymmetric input can crash METIS) and narrows ids
// to idx_t, throwing `ibmb::out_of_range` when they do not fit. Edge weights are ignored
// (METIS takes integer weights only); vertex weights are optional.
#pragma once

#include <metis.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <span>
#include <vector>

#include "ibmb/core/error.hpp"
#include "ibmb/graph/csr.hpp"
#include "ibmb/partition/metis_types.hpp"

namespace ibmb {
namespace detail {

inline constexpr std::int64_t metis_idx_max = std::numeric_limits<idx_t>::max();

/// The adjacency METIS reads: 0-based, no self-loops, rows sorted.
struct metis_graph {
  idx_t n = 0;
  std::vector<idx_t> xadj, adjncy, vwgt;
};

inline void check_metis_params(const partition_params& p, std::int64_t n, const char* fn) {
  IBMB_EXPECTS(p.parts >= 1, fn, ": parts = ", p.parts, " (expected >= 1)");
  IBMB_EXPECTS(n == 0 || p.parts <= n, fn, ": parts = ", p.parts, " exceeds the ", n,
               " nodes to partition");
  IBMB_EXPECTS(std::isfinite(p.imbalance) && p.imbalance >= 1.0 && p.imbalance <= 10.0, fn,
               ": imbalance = ", p.imbalance, " not in [1, 10]");
  IBMB_EXPECTS(p.seed >= 0 && p.seed <= metis_idx_max, fn, ": seed = ", p.seed, " not in [0, ",
               metis_idx_max, "] (METIS_OPTION_SEED is a ", sizeof(idx_t) * 8, "-bit idx_t)");
  IBMB_EXPECTS(p.vertex_weights.empty() || static_cast<std::int64_t>(p.vertex_weights.size()) == n,
               fn, ": ", p.vertex_weights.size(), " vertex weights for ", n, " nodes");
}

/// Builds METIS's arrays from rows given by `row_of(i, emit)` (emit(local column) for
/// each entry of local row i). Self-loops are dropped, rows sorted, symmetry checked.
template <class RowFn>
metis_graph make_metis_graph(std::int64_t n, RowFn row_of, const partition_params& p,
                             const char* fn) {
  if (n > metis_idx_max)
    throw out_of_range(
        concat(fn, ": ", n, " nodes do not fit METIS's ", sizeof(idx_t) * 8, "-bit idx_t"));
  metis_graph m;
  m.n = static_cast<idx_t>(n);
  const auto nn = static_cast<std::size_t>(n);
  std::vector<std::int64_t> cnt(nn + 1, 0);
#pragma omp parallel for schedule(dynamic, 1024)
  for (std::int64_t i = 0; i < n; ++i) {
    std::int64_t c = 0;
    row_of(i, [&](std::int64_t j) { c += j != i; });
    cnt[static_cast<std::size_t>(i) + 1] = c;
  }
  for (std::size_t i = 0; i < nn; ++i) cnt[i + 1] += cnt[i];
  if (cnt[nn] > metis_idx_max)
    throw out_of_range(concat(fn, ": ", cnt[nn], " directed edges do not fit METIS's ",
                              sizeof(idx_t) * 8, "-bit idx_t"));
  m.xadj.resize(nn + 1);
  m.adjncy.resize(static_cast<std::size_t>(cnt[nn]));
  // Symmetry, fast path: a symmetric graph without self-loops holds (i, j) as often as
  // (j, i), so the sum over its entries of +h({i, j}) for i < j and -h({i, j}) for i > j
  // (h a 64-bit hash of the unordered pair, arithmetic mod 2^64) is 0; an asymmetric one
  // gives 0 only through a 64-bit collision. Summed while the rows are copied: no extra
  // pass, one hash per entry. Only on a mismatch are rows searched for the offending edge
  // (and a mismatch from repeated entries alone is accepted, as before).
  auto pair_hash = [](std::uint64_t a, std::uint64_t b) {
    std::uint64_t z = a * 0x9E3779B97F4A7C15ull + b + 0x632BE59BD9B4E019ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  };
  std::uint64_t balance = 0;
#pragma omp parallel for schedule(dynamic, 1024) reduction(+ : balance)
  for (std::int64_t i = 0; i < n; ++i) {
    auto at = static_cast<std::size_t>(cnt[static_cast<std::size_t>(i)]);
    m.xadj[static_cast<std::size_t>(i)] = static_cast<idx_t>(at);
    const auto ui = static_cast<std::uint64_t>(i);
    row_of(i, [&](std::int64_t j) {
      if (j == i) return;
      m.adjncy[at++] = static_cast<idx_t>(j);
      const auto uj = static_cast<std::uint64_t>(j);
      balance += ui < uj ? pair_hash(ui, uj) : 0 - pair_hash(uj, ui);
    });
    const auto first = m.adjncy.begin() + cnt[static_cast<std::size_t>(i)];
    const auto last = m.adjncy.begin() + static_cast<std::ptrdiff_t>(at);
    if (!std::is_sorted(first, last)) std::sort(first, last);  // CSR rows usually are
  }
  m.xadj[nn] = static_cast<idx_t>(cnt[nn]);
  std::int64_t asym_row = n;  // smallest row with an entry lacking its reverse
  if (balance != 0) {
#pragma omp parallel for schedule(dynamic, 1024) reduction(min : asym_row)
    for (std::int64_t i = 0; i < n; ++i) {
      bool ok = true;
      for (auto e = m.xadj[static_cast<std::size_t>(i)];
           ok && e < m.xadj[static_cast<std::size_t>(i) + 1]; ++e) {
        const auto j = static_cast<std::size_t>(m.adjncy[static_cast<std::size_t>(e)]);
        ok = std::binary_search(m.adjncy.begin() + m.xadj[j], m.adjncy.begin() + m.xadj[j + 1],
                                static_cast<idx_t>(i));
      }
      if (!ok) asym_row = std::min(asym_row, i);
    }
  }
  if (asym_row < n) {
    const std::int64_t i = asym_row;
    for (auto e = m.xadj[static_cast<std::size_t>(i)]; e < m.xadj[static_cast<std::size_t>(i) + 1];
         ++e) {
      const auto j = static_cast<std::size_t>(m.adjncy[static_cast<std::size_t>(e)]);
      if (!std::binary_search(m.adjncy.begin() + m.xadj[j], m.adjncy.begin() + m.xadj[j + 1],
                              static_cast<idx_t>(i)))
        throw invalid_argument(concat(fn, ": the graph is not symmetric: edge ", i, " -> ", j,
                                      " has no reverse (METIS needs an undirected graph; "
                                      "symmetrize it with ibmb::make_undirected)"));
    }
  }
  if (!p.vertex_weights.empty()) {
    m.vwgt.resize(nn);
    std::int64_t total = 0;
    for (std::size_t i = 0; i < nn; ++i) {
      const auto w = p.vertex_weights[i];
      if (w < 0) throw invalid_argument(concat(fn, ": vertex_weights[", i, "] = ", w, " < 0"));
      total += w;
      if (w > metis_idx_max || total > metis_idx_max)
        throw out_of_range(concat(fn, ": vertex_weights[", i, "] = ", w,
                                  " makes the total weight exceed METIS's ", sizeof(idx_t) * 8,
                                  "-bit idx_t"));
      m.vwgt[i] = static_cast<idx_t>(w);
    }
    if (total == 0 && n > 0) throw invalid_argument(concat(fn, ": all vertex weights are 0"));
  }
  return m;
}

inline partition_result run_metis(metis_graph& m, const partition_params& p, const char* fn) {
  partition_result r;
  r.parts = p.parts;
  r.part.assign(static_cast<std::size_t>(m.n), 0);
  if (m.n == 0 || p.parts == 1) return r;  // METIS misbehaves for nparts = 1
  idx_t options[METIS_NOPTIONS];
  METIS_SetDefaultOptions(options);
  options[METIS_OPTION_SEED] = static_cast<idx_t>(p.seed);
  options[METIS_OPTION_NUMBERING] = 0;
  // METIS takes the imbalance in 1/1000 steps and rejects 0 ("Incorrect ufactor", printed
  // to stdout): an imbalance below 1.0005 would round to it, so it becomes 1 (1.001).
  options[METIS_OPTION_UFACTOR] =
      static_cast<idx_t>(std::max<long>(1, std::lround((p.imbalance - 1.0) * 1000.0)));
  idx_t n = m.n, ncon = 1, nparts = p.parts, objval = 0;
  std::vector<idx_t> part(static_cast<std::size_t>(m.n), 0);
  idx_t* vwgt = m.vwgt.empty() ? nullptr : m.vwgt.data();
  // METIS reads a null pointer for an empty adjacency as "no edges" only in some paths;
  // give it a valid one.
  idx_t dummy = 0;
  idx_t* adj = m.adjncy.empty() ? &dummy : m.adjncy.data();
  const int status =
      p.method == partition_method::kway
          ? METIS_PartGraphKway(&n, &ncon, m.xadj.data(), adj, vwgt, nullptr, nullptr, &nparts,
                                nullptr, nullptr, options, &objval, part.data())
          : METIS_PartGraphRecursive(&n, &ncon, m.xadj.data(), adj, vwgt, nullptr, nullptr, &nparts,
                                     nullptr, nullptr, options, &objval, part.data());
  if (status != METIS_OK) {
    const char* what = status == METIS_ERROR_INPUT    ? "METIS_ERROR_INPUT (erroneous input)"
                       : status == METIS_ERROR_MEMORY ? "METIS_ERROR_MEMORY (out of memory)"
                                                      : "METIS_ERROR";
    throw backend_error(concat(fn, ": METIS_PartGraph",
                               p.method == partition_method::kway ? "Kway" : "Recursive",
                               " failed with ", what, " (", m.n, " nodes, ", m.adjncy.size(),
                               " directed edges, ", p.parts, " parts)"));
  }
  for (std::size_t i = 0; i < part.size(); ++i) {
    if (part[i] < 0 || part[i] >= nparts)
      throw backend_error(concat(fn, ": METIS returned part ", part[i], " for node ", i,
                                 " outside [0, ", nparts, ")"));
    r.part[i] = static_cast<std::int32_t>(part[i]);
  }
  r.edge_cut = objval;
  return r;
}

}  // namespace detail

/// Partitions the symmetric graph `g` into `params.parts` parts with METIS.
/// Self-loops are ignored; an asymmetric graph is an `ibmb::invalid_argument`; METIS
/// failures are `ibmb::backend_error`. `parts == 1` and an empty graph need no METIS call.
template <class I, class O, class W>
partition_result metis_partition(csr_view<I, O, W> g, const partition_params& params) {
  constexpr const char* fn = "metis_partition";
  IBMB_EXPECTS(g.num_rows == g.num_cols, fn, ": the graph must be square, got ", g.num_rows, " x ",
               g.num_cols);
  g.validate();
  detail::check_metis_params(params, static_cast<std::int64_t>(g.num_rows), fn);
  auto m = detail::make_metis_graph(
      static_cast<std::int64_t>(g.num_rows),
      [&](std::int64_t i, auto&& emit) {
        for (auto c : g.neighbors(static_cast<I>(i))) emit(static_cast<std::int64_t>(c));
      },
      params, fn);
  return detail::run_metis(m, params, fn);
}

/// Partitions the subgraph of `g` induced by `nodes` (distinct ids); `part[i]` is the part
/// of `nodes[i]` and `params.vertex_weights` holds one weight per entry of `nodes`.
template <class I, class O, class W>
partition_result metis_partition_subset(csr_view<I, O, W> g, std::span<const I> nodes,
                                        const partition_params& params) {
  constexpr const char* fn = "metis_partition_subset";
  IBMB_EXPECTS(g.num_rows == g.num_cols, fn, ": the graph must be square, got ", g.num_rows, " x ",
               g.num_cols);
  g.validate();
  const auto k = static_cast<std::int64_t>(nodes.size());
  detail::check_metis_params(params, k, fn);
  std::vector<std::int64_t> local(static_cast<std::size_t>(g.num_rows), -1);
  for (std::int64_t i = 0; i < k; ++i) {
    const auto v = nodes[static_cast<std::size_t>(i)];
    if (v < 0 || v >= g.num_rows)
      throw out_of_range(
          detail::concat(fn, ": nodes[", i, "] = ", v, " outside [0, ", g.num_rows, ")"));
    auto& slot = local[static_cast<std::size_t>(v)];
    IBMB_EXPECTS(slot < 0, fn, ": node ", v, " appears twice (nodes[", slot, "] and nodes[", i,
                 "])");
    slot = i;
  }
  auto m = detail::make_metis_graph(
      k,
      [&](std::int64_t i, auto&& emit) {
        for (auto c : g.neighbors(nodes[static_cast<std::size_t>(i)])) {
          const auto j = local[static_cast<std::size_t>(c)];
          if (j >= 0) emit(j);
        }
      },
      params, fn);
  return detail::run_metis(m, params, fn);
}

/// Fraction of directed non-loop entries (u, v) with part[u] != part[v]; 0 without edges.
template <class I, class O, class W>
double edge_cut_fraction(csr_view<I, O, W> g, std::span<const std::int32_t> part) {
  IBMB_EXPECTS(static_cast<std::int64_t>(part.size()) == static_cast<std::int64_t>(g.num_rows),
               "edge_cut_fraction: ", part.size(), " part ids for ", g.num_rows, " nodes");
  IBMB_EXPECTS(g.num_rows == g.num_cols, "edge_cut_fraction: the graph must be square, got ",
               g.num_rows, " x ", g.num_cols);
  g.validate();
  std::int64_t cut = 0, total = 0;
  const auto n = static_cast<std::int64_t>(g.num_rows);
#pragma omp parallel for schedule(dynamic, 4096) reduction(+ : cut, total)
  for (std::int64_t u = 0; u < n; ++u) {
    const auto pu = part[static_cast<std::size_t>(u)];
    for (auto v : g.neighbors(static_cast<I>(u))) {
      if (static_cast<std::int64_t>(v) == u) continue;
      ++total;
      cut += part[static_cast<std::size_t>(v)] != pu;
    }
  }
  return total == 0 ? 0.0 : static_cast<double>(cut) / static_cast<double>(total);
}

}  // namespace ibmb
