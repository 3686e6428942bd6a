// ibmb: baseline planners to compare IBMB against on the same data, all returning a
// `batch_plan` (so materialization, scheduling and influence coverage treat them alike):
//   - cluster_plan: Cluster-GCN style, METIS parts of all nodes; batch = the outputs of a
//     part + the part's other nodes (parts without outputs are skipped);
//   - random_output_plan: outputs shuffled (seeded) into balanced batches, nothing else;
//   - khop_plan: the same random output batches + their full L-hop neighbourhoods,
//     optionally capped per batch by seeded uniform sampling of the auxiliary nodes.
#pragma once

#include <algorithm>
#include <cstdint>
#include <span>
#include <vector>

#include "ibmb/batch/plan.hpp"
#include "ibmb/batch/schedule.hpp"  // detail::splitmix64
#include "ibmb/core/error.hpp"
#include "ibmb/core/parallel.hpp"
#include "ibmb/graph/csr.hpp"
#include "ibmb/partition/metis.hpp"

namespace ibmb {

struct cluster_plan_params {
  std::int32_t parts = 2;  ///< METIS parts over all nodes
  std::int64_t seed = 0;   ///< METIS_OPTION_SEED
  /// As `partition_params::imbalance`: in [1, 10], rounded to METIS's 1/1000 steps, minimum
  /// 1.001 (1.0 means 1.001).
  double imbalance = 1.03;
};

struct random_plan_params {
  /// Requested outputs per batch: ceil(n / batch_size) batches whose sizes differ by at most 1
  /// (the reference's balancing).
  std::int64_t batch_size = 1024;
  std::uint64_t seed = 0;
};

struct khop_plan_params {
  std::int64_t batch_size = 1024;  ///< as in `random_plan_params`
  std::int32_t hops = 2;           ///< L: neighbourhood depth (0 = outputs only)
  /// Cap on the nodes of a batch (0 = none). Outputs are always kept; when the
  /// neighbourhood is larger, max(0, max_nodes - outputs) auxiliaries are drawn uniformly
  /// without replacement (seeded per batch).
  std::int64_t max_nodes = 0;
  std::uint64_t seed = 0;
  int threads = 0;  ///< OpenMP threads; <= 0 keeps the current setting
};

namespace detail {

template <class I>
void check_baseline_outputs(std::int64_t n, std::span<const I> outputs, const char* who) {
  IBMB_EXPECTS(n >= 0, who, ": num_nodes = ", n, " is negative");
  std::vector<char> seen(static_cast<std::size_t>(n), 0);
  for (std::size_t i = 0; i < outputs.size(); ++i) {
    const I v = outputs[i];
    if (v < 0 || v >= n)
      throw out_of_range(concat(who, ": outputs[", i, "] = ", v, " outside [0, ", n, ")"));
    IBMB_EXPECTS(!seen[static_cast<std::size_t>(v)], who, ": output id ", v,
                 " appears more than once (position ", i, ")");
    seen[static_cast<std::size_t>(v)] = 1;
  }
}

__extension__ using baseline_u128 = unsigned __int128;

/// Seeded shuffle of the outputs cut into balanced batches, each sorted.
template <class I>
std::vector<std::vector<I>> random_output_batches(std::span<const I> outputs,
                                                  const random_plan_params& p) {
  std::vector<I> order(outputs.begin(), outputs.end());
  std::sort(order.begin(), order.end());  // the result depends on the set, not the input order
  splitmix64 rng{p.seed ^ 0x853c49e6748fea9bull};
  shuffle(order, rng);
  const auto n = static_cast<std::int64_t>(order.size());
  const std::int64_t nb = n / p.batch_size + (n % p.batch_size != 0);  // no n + size overflow
  std::vector<std::vector<I>> out(static_cast<std::size_t>(nb));
  for (std::int64_t b = 0; b < nb; ++b) {
    // floor(n * b / nb) as q * b + floor(r * b / nb) (n = q * nb + r): q * b <= n, and
    // r * b < nb^2 is formed in 128 bits, so no product overflows for any n.
    const std::int64_t q = n / nb, r = n % nb;
    auto cut = [&](std::int64_t k) {
      return q * k + static_cast<std::int64_t>(static_cast<baseline_u128>(r) *
                                               static_cast<baseline_u128>(k) /
                                               static_cast<baseline_u128>(nb));
    };
    const std::int64_t lo = cut(b), hi = cut(b + 1);
    out[static_cast<std::size_t>(b)].assign(order.begin() + lo, order.begin() + hi);
    std::sort(out[static_cast<std::size_t>(b)].begin(), out[static_cast<std::size_t>(b)].end());
  }
  return out;
}

}  // namespace detail

/// Cluster-GCN style batches (see the file comment). `g` must be symmetric (self-loops are
/// ignored by METIS). Batches come in part order.
template <class I, class O, class W>
batch_plan<I> cluster_plan(csr_view<I, O, W> g, std::type_identity_t<std::span<const I>> outputs,
                           const cluster_plan_params& p) {
  IBMB_EXPECTS(g.num_rows == g.num_cols, "cluster_plan: the graph is ", g.num_rows, " x ",
               g.num_cols);
  detail::check_baseline_outputs(static_cast<std::int64_t>(g.num_rows), outputs, "cluster_plan");
  partition_params pp;
  pp.parts = p.parts;
  pp.seed = p.seed;
  pp.imbalance = p.imbalance;
  const auto part = metis_partition(g, pp).part;
  const auto P = static_cast<std::size_t>(p.parts);
  std::vector<std::vector<I>> nodes(P), outs(P);
  for (std::size_t v = 0; v < part.size(); ++v)
    nodes[static_cast<std::size_t>(part[v])].push_back(static_cast<I>(v));
  for (const I v : outputs)
    outs[static_cast<std::size_t>(part[static_cast<std::size_t>(v)])].push_back(v);
  batch_plan<I> plan;
  for (std::size_t q = 0; q < P; ++q) {
    if (outs[q].empty()) continue;
    std::sort(outs[q].begin(), outs[q].end());
    plan.push_batch(outs[q], nodes[q]);  // nodes are increasing by construction
  }
  return plan;
}

/// Random output batches alone: every batch's nodes are its outputs.
template <class I>
batch_plan<I> random_output_plan(std::int64_t num_nodes, std::span<const I> outputs,
                                 const random_plan_params& p) {
  IBMB_EXPECTS(p.batch_size >= 1, "random_output_plan: batch_size = ", p.batch_size);
  detail::check_baseline_outputs(num_nodes, outputs, "random_output_plan");
  batch_plan<I> plan;
  for (const auto& b : detail::random_output_batches(outputs, p)) plan.push_batch(b, b);
  return plan;
}

/// Random output batches + their L-hop neighbourhoods in `g` (following row entries),
/// optionally capped. Parallel over batches; the plan is the same for any thread count.
template <class I, class O, class W>
batch_plan<I> khop_plan(csr_view<I, O, W> g, std::type_identity_t<std::span<const I>> outputs,
                        const khop_plan_params& p) {
  IBMB_EXPECTS(p.batch_size >= 1, "khop_plan: batch_size = ", p.batch_size);
  IBMB_EXPECTS(p.hops >= 0, "khop_plan: hops = ", p.hops);
  IBMB_EXPECTS(p.max_nodes >= 0, "khop_plan: max_nodes = ", p.max_nodes);
  IBMB_EXPECTS(g.num_rows == g.num_cols, "khop_plan: the graph is ", g.num_rows, " x ", g.num_cols);
  g.validate();  // the BFS indexes an N-sized array by column id
  const auto N = static_cast<std::int64_t>(g.num_rows);
  detail::check_baseline_outputs(N, outputs, "khop_plan");
  random_plan_params rp;
  rp.batch_size = p.batch_size;
  rp.seed = p.seed;
  const auto batches = detail::random_output_batches(outputs, rp);
  const auto B = static_cast<std::int64_t>(batches.size());
  std::vector<std::vector<I>> nodes(batches.size());
  scoped_threads threads(p.threads);
  // The per-thread N-sized stamps (and the per-batch lists) are allocated inside the region:
  // a bad_alloc is carried out and rethrown below.
  detail::region_failure failure;
#pragma omp parallel
  {
    std::vector<std::int64_t> stamp;
    std::vector<I> frontier, next, aux;
    failure.run([&] { stamp.assign(static_cast<std::size_t>(N), -1); });
#pragma omp for schedule(dynamic, 1)
    for (std::int64_t b = 0; b < B; ++b)
      failure.run([&] {
        const auto& outs = batches[static_cast<std::size_t>(b)];
        frontier.assign(outs.begin(), outs.end());
        for (const I v : outs) stamp[static_cast<std::size_t>(v)] = b;
        aux.clear();
        for (std::int32_t h = 0; h < p.hops && !frontier.empty(); ++h) {
          next.clear();
          for (const I u : frontier)
            for (const I v : g.neighbors(u))
              if (stamp[static_cast<std::size_t>(v)] != b) {
                stamp[static_cast<std::size_t>(v)] = b;
                next.push_back(v);
                aux.push_back(v);
              }
          frontier.swap(next);
        }
        std::sort(aux.begin(), aux.end());
        const auto n_out = static_cast<std::int64_t>(outs.size());
        if (p.max_nodes > 0 && n_out + static_cast<std::int64_t>(aux.size()) > p.max_nodes) {
          const auto keep =
              static_cast<std::size_t>(std::max<std::int64_t>(0, p.max_nodes - n_out));
          detail::splitmix64 rng{p.seed ^
                                 (0x9e3779b97f4a7c15ull * static_cast<std::uint64_t>(b + 1))};
          for (std::size_t i = 0; i < keep; ++i)  // partial Fisher-Yates
            std::swap(aux[i], aux[i + static_cast<std::size_t>(rng.below(aux.size() - i))]);
          aux.resize(keep);
        }
        auto& nb = nodes[static_cast<std::size_t>(b)];
        nb.assign(outs.begin(), outs.end());
        nb.insert(nb.end(), aux.begin(), aux.end());
        std::sort(nb.begin(), nb.end());
      });
  }
  failure.rethrow();
  batch_plan<I> plan;
  for (std::size_t b = 0; b < batches.size(); ++b) plan.push_batch(batches[b], nodes[b]);
  return plan;
}

}  // namespace ibmb
