// ibmb: the embedded default dataset, a seeded synthetic graph with real-graph-like locality.
//
// Two-level planted model. Nodes are grouped into many small communities (log-normal sizes
// around `community_size`); every community lies inside one class. Each node draws a
// power-law weight and starts about `avg_degree / 2 * weight / mean weight` undirected edges:
//   * a `community_fraction` of them go to a uniformly chosen member of its own community,
//   * of the rest, enough go to a weight-proportional node of its own class (elsewhere) that
//     a `homophily` fraction of all edges joins two nodes of one class,
//   * the remainder go to a weight-proportional node of another class.
// A plain class-level block model (community_fraction = 0) has no locality: METIS then cuts
// most edges, unlike real graphs; the communities are what make partitioning, PPR locality
// and batch quality measured on this graph meaningful (docs/generator.md has the figures).
//
// Every random choice is a counter-based hash of (seed, stream, index), so the result is
// the same for any thread count. Features are the class mean (entries ~ N(0, 1)) plus
// Gaussian noise of standard deviation `feature_noise`; labels are the community's class;
// splits are random disjoint node sets with sorted ids.
#pragma once

#include <algorithm>
#include <atomic>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numeric>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "ibmb/core/error.hpp"
#include "ibmb/core/memory.hpp"
#include "ibmb/core/parallel.hpp"
#include "ibmb/core/progress.hpp"
#include "ibmb/graph/csr.hpp"
#include "ibmb/graph/dataset.hpp"

namespace ibmb {

/// Parameters of `generate_dataset`. The defaults give the embedded dataset: 2.5M nodes,
/// about 60M directed edges (ogbn-products scale), 47 classes, 100 features (1 GB float32).
struct generator_params {
  std::int64_t nodes = 2'500'000;
  /// Expected directed entries per node (each undirected edge counts twice). Duplicate
  /// draws are merged, so the realised mean is a little lower (about 2% at the defaults).
  double avg_degree = 24.0;
  std::int32_t classes = 47;
  std::int32_t features = 100;
  /// Fraction of edges whose endpoints share a class (must be >= community_fraction).
  double homophily = 0.8;
  /// Fraction of edges drawn inside the node's own small community. 0 gives a plain
  /// class-level block model without locality.
  double community_fraction = 0.75;
  /// Median community size; sizes are log-normal with `community_size_spread` (sigma of
  /// the log), at least 2.
  std::int64_t community_size = 200;
  double community_size_spread = 0.5;
  /// Exponent gamma of the degree distribution P(k) ~ k^-gamma (> 1).
  double power_law_exponent = 2.5;
  /// Cap on a node's expected degree (keeps hubs at real-graph scale).
  std::int64_t max_degree = 10'000;
  /// Class k gets communities in proportion to (k + 1)^-class_skew (0: equal classes).
  double class_skew = 1.0;
  /// Standard deviation of the Gaussian noise added to the unit-variance class means.
  double feature_noise = 4.0;
  double train_fraction = 0.10;
  double val_fraction = 0.05;
  double test_fraction = 0.10;
  /// Relabel nodes by a random permutation so ids carry no community information.
  bool shuffle_ids = true;
  std::uint64_t seed = 0;
};

namespace detail {

inline void check_generator_params(const generator_params& p) {
  auto bad = [](auto&&... a) { throw invalid_argument(concat("generator: ", a...)); };
  if (p.nodes < 1) bad("nodes = ", p.nodes, " (expected >= 1)");
  if (!(p.avg_degree >= 0) || !std::isfinite(p.avg_degree))
    bad("avg_degree = ", p.avg_degree, " (expected >= 0)");
  if (p.nodes > 1 && p.avg_degree > static_cast<double>(p.nodes - 1))
    bad("avg_degree = ", p.avg_degree, " exceeds nodes - 1 = ", p.nodes - 1);
  if (p.classes < 1) bad("classes = ", p.classes, " (expected >= 1)");
  if (p.features < 0) bad("features = ", p.features, " (expected >= 0)");
  if (!(p.homophily >= 0 && p.homophily <= 1)) bad("homophily = ", p.homophily, " not in [0, 1]");
  if (!(p.community_fraction >= 0 && p.community_fraction <= 1))
    bad("community_fraction = ", p.community_fraction, " not in [0, 1]");
  if (p.community_fraction > p.homophily)
    bad("community_fraction = ", p.community_fraction, " exceeds homophily = ", p.homophily,
        " (community edges join nodes of one class; lower community_fraction)");
  if (p.community_size < 2) bad("community_size = ", p.community_size, " (expected >= 2)");
  if (!(p.community_size_spread >= 0 && p.community_size_spread <= 3))
    bad("community_size_spread = ", p.community_size_spread, " not in [0, 3]");
  if (!(p.power_law_exponent > 1 && p.power_law_exponent <= 100))
    bad("power_law_exponent = ", p.power_law_exponent, " not in (1, 100]");
  if (p.max_degree < 1) bad("max_degree = ", p.max_degree, " (expected >= 1)");
  if (!(p.class_skew >= 0 && p.class_skew <= 10))
    bad("class_skew = ", p.class_skew, " not in [0, 10]");
  if (!(p.feature_noise >= 0) || !std::isfinite(p.feature_noise))
    bad("feature_noise = ", p.feature_noise, " (expected >= 0)");
  for (auto [f, name] :
       {std::pair{p.train_fraction, "train_fraction"}, std::pair{p.val_fraction, "val_fraction"},
        std::pair{p.test_fraction, "test_fraction"}})
    if (!(f >= 0 && f <= 1)) bad(name, " = ", f, " not in [0, 1]");
  if (p.train_fraction + p.val_fraction + p.test_fraction > 1 + 1e-12)
    bad("train_fraction + val_fraction + test_fraction = ",
        p.train_fraction + p.val_fraction + p.test_fraction, " exceeds 1");
}

// ---- counter-based randomness: a stream per (seed, purpose, index) ------------------------

inline constexpr std::uint64_t mix64(std::uint64_t z) {
  z += 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

__extension__ using gen_u128 = unsigned __int128;

/// splitmix64 sequence started from a hash of (seed, stream, index).
struct gen_rng {
  std::uint64_t state;
  gen_rng(std::uint64_t seed, std::uint64_t stream, std::uint64_t index)
      : state(mix64(mix64(seed ^ mix64(stream)) + index)) {}
  std::uint64_t next() {
    state += 0x9e3779b97f4a7c15ULL;
    std::uint64_t z = state;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  /// Uniform in [0, 1).
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
  /// Uniform in (0, 1].
  double uniform_pos() { return (static_cast<double>(next() >> 11) + 1.0) * 0x1.0p-53; }
  /// Uniform integer in [0, n), n >= 1 (multiply-shift; bias < n / 2^64).
  std::int64_t below(std::int64_t n) {
    return static_cast<std::int64_t>(
        (static_cast<gen_u128>(next()) * static_cast<std::uint64_t>(n)) >> 64);
  }
  double normal() {
    const double r = std::sqrt(-2.0 * std::log(uniform_pos()));
    return r * std::cos(6.283185307179586 * uniform());
  }
};

enum : std::uint64_t {
  gen_stream_community_size = 1,
  gen_stream_community_class,
  gen_stream_permutation,
  gen_stream_weight,
  gen_stream_stubs,
  gen_stream_edges,
  gen_stream_class_mean,
  gen_stream_features,
  gen_stream_split,
};

/// Index of the first cumulative value > u in cum[lo, hi] (cum[lo] <= u < cum[hi]); the
/// result lies in [lo, hi).
inline std::int64_t gen_search(const std::vector<double>& cum, std::int64_t lo, std::int64_t hi,
                               double u) {
  const auto it = std::upper_bound(cum.begin() + lo + 1, cum.begin() + hi + 1, u);
  return std::min<std::int64_t>(static_cast<std::int64_t>(it - cum.begin()) - 1, hi - 1);
}

/// Node ids ordered by a hash of (seed, stream, id): a seeded random permutation.
inline std::vector<std::int64_t> gen_permutation(std::int64_t n, std::uint64_t seed,
                                                 std::uint64_t stream) {
  std::vector<std::pair<std::uint64_t, std::int64_t>> key(static_cast<std::size_t>(n));
#pragma omp parallel for schedule(static)
  for (std::int64_t v = 0; v < n; ++v)
    key[static_cast<std::size_t>(v)] = {gen_rng(seed, stream, static_cast<std::uint64_t>(v)).next(),
                                        v};
  std::sort(key.begin(), key.end());
  std::vector<std::int64_t> perm(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i)
    perm[static_cast<std::size_t>(i)] = key[static_cast<std::size_t>(i)].second;
  return perm;
}

/// Community and class layout in "position" order (communities sorted by class, so every
/// class and every community is one range of positions) and the node id of each position.
struct gen_layout {
  std::vector<std::int64_t> comm_begin;   // per community (in position order), + end
  std::vector<std::int64_t> class_begin;  // per class, + end
  std::vector<std::int32_t> comm_of;      // per position
  std::vector<std::int32_t> class_of_pos;
  std::vector<std::int64_t> id_of;
};

inline gen_layout make_gen_layout(const generator_params& p) {
  const std::int64_t n = p.nodes;
  const std::uint64_t seed = p.seed;
  const auto nn = static_cast<std::size_t>(n);
  gen_layout L;
  // 1. communities in "position" order, sorted by class so each class is one range.
  std::vector<std::int64_t> csize;
  for (std::int64_t placed = 0, c = 0; placed < n; ++c) {
    gen_rng r(seed, gen_stream_community_size, static_cast<std::uint64_t>(c));
    const double s =
        static_cast<double>(p.community_size) * std::exp(p.community_size_spread * r.normal());
    std::int64_t k = std::max<std::int64_t>(2, std::llround(std::min(s, 1e15)));
    k = std::min(k, n - placed);
    if (k < 2 && !csize.empty()) {
      csize.back() += k;  // a single leftover node joins the previous community
    } else {
      csize.push_back(k);
    }
    placed += k;
  }
  const auto ncomm = static_cast<std::int64_t>(csize.size());
  std::vector<double> class_cdf(static_cast<std::size_t>(p.classes) + 1, 0.0);
  for (std::int32_t k = 0; k < p.classes; ++k)
    class_cdf[static_cast<std::size_t>(k) + 1] =
        class_cdf[static_cast<std::size_t>(k)] + std::pow(k + 1.0, -p.class_skew);
  std::vector<std::int32_t> cclass(static_cast<std::size_t>(ncomm));
  for (std::int64_t c = 0; c < ncomm; ++c) {
    if (c < p.classes) {  // every class gets a community when there are enough
      cclass[static_cast<std::size_t>(c)] = static_cast<std::int32_t>(c);
    } else {
      gen_rng r(seed, gen_stream_community_class, static_cast<std::uint64_t>(c));
      const double u = r.uniform() * class_cdf.back();
      cclass[static_cast<std::size_t>(c)] =
          static_cast<std::int32_t>(gen_search(class_cdf, 0, p.classes, u));
    }
  }
  std::vector<std::int64_t> order(static_cast<std::size_t>(ncomm));
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](std::int64_t a, std::int64_t b) {
    return cclass[static_cast<std::size_t>(a)] < cclass[static_cast<std::size_t>(b)];
  });
  // Per position: community range and class; per class: position range.
  auto& comm_begin = L.comm_begin;
  comm_begin.assign(static_cast<std::size_t>(ncomm) + 1, 0);
  auto& class_begin = L.class_begin;
  class_begin.assign(static_cast<std::size_t>(p.classes) + 1, 0);
  auto& comm_of = L.comm_of;
  auto& class_of_pos = L.class_of_pos;
  comm_of.resize(nn);
  class_of_pos.resize(nn);
  for (std::int64_t i = 0; i < ncomm; ++i) {
    const auto c = static_cast<std::size_t>(order[static_cast<std::size_t>(i)]);
    comm_begin[static_cast<std::size_t>(i) + 1] =
        comm_begin[static_cast<std::size_t>(i)] + csize[c];
    for (auto q = comm_begin[static_cast<std::size_t>(i)];
         q < comm_begin[static_cast<std::size_t>(i) + 1]; ++q) {
      comm_of[static_cast<std::size_t>(q)] = static_cast<std::int32_t>(i);
      class_of_pos[static_cast<std::size_t>(q)] = cclass[c];
    }
    class_begin[static_cast<std::size_t>(cclass[c]) + 1] += csize[c];
  }
  for (std::int32_t k = 0; k < p.classes; ++k)
    class_begin[static_cast<std::size_t>(k) + 1] += class_begin[static_cast<std::size_t>(k)];

  // Node id of each position.
  auto& id_of = L.id_of;
  if (p.shuffle_ids) {
    id_of = gen_permutation(n, seed, gen_stream_permutation);
  } else {
    id_of.resize(nn);
    std::iota(id_of.begin(), id_of.end(), std::int64_t{0});
  }

  return L;
}

template <class I, class O>
basic_dataset<I, O> generate_dataset_impl(const generator_params& p,
                                          const progress_callback& progress) {
  const std::int64_t n = p.nodes;
  const std::uint64_t seed = p.seed;
  const auto nn = static_cast<std::size_t>(n);
  constexpr std::int64_t steps = 16;  // progress granularity of the long loops

  report(progress, "generate: communities", 0, 1);
  auto L = make_gen_layout(p);
  const auto& comm_begin = L.comm_begin;
  const auto& class_begin = L.class_begin;
  auto& comm_of = L.comm_of;
  const auto& class_of_pos = L.class_of_pos;
  const auto& id_of = L.id_of;

  // 2. power-law weights (Pareto with tail index gamma - 1, capped) and stub counts.
  const double alpha = p.power_law_exponent - 1.0;
  const double mean_uncapped = alpha > 1 ? alpha / (alpha - 1) : 1.0;
  const double wcap = std::max(
      1.0, static_cast<double>(p.max_degree) / std::max(p.avg_degree, 1e-9) * mean_uncapped);
  std::vector<double> cumw(nn + 1, 0.0);
#pragma omp parallel for schedule(static)
  for (std::int64_t q = 0; q < n; ++q) {
    gen_rng r(seed, gen_stream_weight, static_cast<std::uint64_t>(q));
    cumw[static_cast<std::size_t>(q) + 1] = std::min(wcap, std::pow(r.uniform_pos(), -1.0 / alpha));
  }
  for (std::size_t q = 0; q < nn; ++q) cumw[q + 1] += cumw[q];
  const double wtotal = cumw[nn];
  const double stubs_per_weight = static_cast<double>(n) * p.avg_degree / 2.0 / wtotal;
  std::vector<std::int64_t> stub_ptr(nn + 1, 0);
#pragma omp parallel for schedule(static)
  for (std::int64_t q = 0; q < n; ++q) {
    gen_rng r(seed, gen_stream_stubs, static_cast<std::uint64_t>(q));
    const double x = (cumw[static_cast<std::size_t>(q) + 1] - cumw[static_cast<std::size_t>(q)]) *
                     stubs_per_weight;
    const double fl = std::floor(x);
    stub_ptr[static_cast<std::size_t>(q) + 1] =
        static_cast<std::int64_t>(fl) + (r.uniform() < x - fl ? 1 : 0);
  }
  for (std::size_t q = 0; q < nn; ++q) stub_ptr[q + 1] += stub_ptr[q];
  const std::int64_t nstubs = stub_ptr[nn];

  // 3. one target per stub (-1: none found, e.g. a one-node class)
  // A node starts at most half its community's size in community edges (more would repeat
  // edges); the excess of hubs goes to its class. Raise the per-stub community probability
  // so the expected share of community edges still meets `community_fraction`.
  auto quota_of = [&](std::int64_t q) {
    const auto ci = static_cast<std::size_t>(comm_of[static_cast<std::size_t>(q)]);
    return static_cast<double>((comm_begin[ci + 1] - comm_begin[ci] - 1) / 2);
  };
  auto expected_community = [&](double prob) {
    double sum = 0;
    for (std::int64_t q = 0; q < n; ++q)
      sum += std::min(prob * static_cast<double>(stub_ptr[static_cast<std::size_t>(q) + 1] -
                                                 stub_ptr[static_cast<std::size_t>(q)]),
                      quota_of(q));
    return sum;
  };
  double cf = p.community_fraction;
  if (cf > 0 && nstubs > 0) {
    const double goal = p.community_fraction * static_cast<double>(nstubs);
    double lo = cf, hi = std::max(cf, p.homophily);
    if (expected_community(hi) <= goal) {
      cf = hi;
    } else {
      for (int it = 0; it < 30; ++it) {
        const double mid = 0.5 * (lo + hi);
        (expected_community(mid) < goal ? lo : hi) = mid;
      }
      cf = hi;
    }
  }
  const double class_share = cf < 1 ? (p.homophily - cf) / (1 - cf) : 0.0;
  std::vector<std::int64_t> target(static_cast<std::size_t>(nstubs), -1);
  const auto pos_chunks = even_chunks<std::int64_t>(n, static_cast<int>(steps));
  for (std::int64_t s = 0; s < steps; ++s) {
    report(progress, "generate: edges", s, steps);
#pragma omp parallel
    {
      std::vector<std::int64_t> mine;  // this node's community targets so far
#pragma omp for schedule(dynamic, 4096)
      for (std::int64_t q = pos_chunks[static_cast<std::size_t>(s)];
           q < pos_chunks[static_cast<std::size_t>(s) + 1]; ++q) {
        gen_rng r(seed, gen_stream_edges, static_cast<std::uint64_t>(q));
        const auto qs = static_cast<std::size_t>(q);
        const auto ci = static_cast<std::size_t>(comm_of[qs]);
        const std::int64_t cb = comm_begin[ci], ce = comm_begin[ci + 1];
        const auto k = static_cast<std::size_t>(class_of_pos[qs]);
        const std::int64_t kb = class_begin[k], ke = class_begin[k + 1];
        const double wk = cumw[static_cast<std::size_t>(ke)] - cumw[static_cast<std::size_t>(kb)];
        const double wother = wtotal - wk;
        const auto quota = static_cast<std::size_t>(quota_of(q));
        mine.clear();
        for (std::int64_t e = stub_ptr[qs]; e < stub_ptr[qs + 1]; ++e) {
          const double kind = r.uniform();
          std::int64_t t = -1;
          bool same_class = kind < cf + (1 - cf) * class_share;
          if (kind < cf && mine.size() < quota) {
            for (int attempt = 0; attempt < 4; ++attempt) {  // avoid repeating own targets
              t = cb + r.below(ce - cb - 1);
              if (t >= q) ++t;
              if (std::find(mine.begin(), mine.end(), t) == mine.end()) break;
            }
            mine.push_back(t);
          } else {
            if (!same_class && !(wother > 0)) same_class = true;  // a single class
            if (same_class) {
              for (int attempt = 0; attempt < 8 && (t < 0 || t == q); ++attempt)
                t = gen_search(cumw, kb, ke, cumw[static_cast<std::size_t>(kb)] + r.uniform() * wk);
              if (t == q) t = -1;
            } else {  // weight-proportional over all positions outside [kb, ke)
              double u = r.uniform() * wother;
              if (u < cumw[static_cast<std::size_t>(kb)]) {
                t = gen_search(cumw, 0, kb, u);
              } else {
                u = u - cumw[static_cast<std::size_t>(kb)] + cumw[static_cast<std::size_t>(ke)];
                t = gen_search(cumw, ke, n, std::min(u, std::nextafter(wtotal, 0.0)));
              }
            }
          }
          target[static_cast<std::size_t>(e)] = t < 0 ? -1 : id_of[static_cast<std::size_t>(t)];
        }
      }
    }
  }
  report(progress, "generate: edges", steps, steps);
  cumw = {};
  comm_of = {};

  // 4. symmetric CSR: scatter both directions, then sort and deduplicate each row. A row
  //    is a set after step (b), so the racy scatter order does not reach the output.
  report(progress, "generate: csr", 0, 3);
  std::vector<std::atomic<std::int64_t>> cursor(nn + 1);
  for (auto& c : cursor) c.store(0, std::memory_order_relaxed);
#pragma omp parallel for schedule(dynamic, 4096)
  for (std::int64_t q = 0; q < n; ++q) {
    const auto u = id_of[static_cast<std::size_t>(q)];
    for (auto e = stub_ptr[static_cast<std::size_t>(q)];
         e < stub_ptr[static_cast<std::size_t>(q) + 1]; ++e) {
      const auto v = target[static_cast<std::size_t>(e)];
      if (v < 0) continue;
      cursor[static_cast<std::size_t>(u)].fetch_add(1, std::memory_order_relaxed);
      cursor[static_cast<std::size_t>(v)].fetch_add(1, std::memory_order_relaxed);
    }
  }
  std::vector<std::int64_t> raw_ptr(nn + 1, 0);
  for (std::size_t v = 0; v < nn; ++v) {
    raw_ptr[v + 1] = raw_ptr[v] + cursor[v].load(std::memory_order_relaxed);
    cursor[v].store(raw_ptr[v], std::memory_order_relaxed);
  }
  std::vector<I> raw(static_cast<std::size_t>(raw_ptr[nn]));
  report(progress, "generate: csr", 1, 3);
#pragma omp parallel for schedule(dynamic, 4096)
  for (std::int64_t q = 0; q < n; ++q) {
    const auto u = id_of[static_cast<std::size_t>(q)];
    for (auto e = stub_ptr[static_cast<std::size_t>(q)];
         e < stub_ptr[static_cast<std::size_t>(q) + 1]; ++e) {
      const auto v = target[static_cast<std::size_t>(e)];
      if (v < 0) continue;
      raw[static_cast<std::size_t>(cursor[static_cast<std::size_t>(u)].fetch_add(
          1, std::memory_order_relaxed))] = static_cast<I>(v);
      raw[static_cast<std::size_t>(cursor[static_cast<std::size_t>(v)].fetch_add(
          1, std::memory_order_relaxed))] = static_cast<I>(u);
    }
  }
  target = {};
  stub_ptr = {};
  cursor = std::vector<std::atomic<std::int64_t>>();
  report(progress, "generate: csr", 2, 3);
  std::vector<std::int64_t> kept(nn + 1, 0);
#pragma omp parallel for schedule(dynamic, 4096)
  for (std::int64_t v = 0; v < n; ++v) {
    auto* b = raw.data() + raw_ptr[static_cast<std::size_t>(v)];
    auto* e = raw.data() + raw_ptr[static_cast<std::size_t>(v) + 1];
    std::sort(b, e);
    kept[static_cast<std::size_t>(v) + 1] = std::unique(b, e) - b;
  }
  for (std::size_t v = 0; v < nn; ++v) kept[v + 1] += kept[v];
  if (static_cast<std::uint64_t>(kept[nn]) >
      static_cast<std::uint64_t>(std::numeric_limits<O>::max()))
    throw out_of_range(concat("generator: ", kept[nn], " edges do not fit the ", sizeof(O) * 8,
                              "-bit offset type; use 64-bit offsets"));

  basic_dataset<I, O> ds;
  ds.graph.num_rows = static_cast<I>(n);
  ds.graph.num_cols = static_cast<I>(n);
  ds.graph.indptr.resize(nn + 1);
  ds.graph.indices.resize(static_cast<std::size_t>(kept[nn]));
#pragma omp parallel for schedule(dynamic, 4096)
  for (std::int64_t v = 0; v < n; ++v) {
    const auto vs = static_cast<std::size_t>(v);
    ds.graph.indptr[vs] = static_cast<O>(kept[vs]);
    std::copy(raw.begin() + raw_ptr[vs], raw.begin() + raw_ptr[vs] + (kept[vs + 1] - kept[vs]),
              ds.graph.indices.begin() + kept[vs]);
  }
  ds.graph.indptr[nn] = static_cast<O>(kept[nn]);
  raw = {};
  report(progress, "generate: csr", 3, 3);

  // 5. labels, features, splits
  ds.labels.resize(nn);
#pragma omp parallel for schedule(static)
  for (std::int64_t q = 0; q < n; ++q)
    ds.labels[static_cast<std::size_t>(id_of[static_cast<std::size_t>(q)])] =
        class_of_pos[static_cast<std::size_t>(q)];
  const auto nf = static_cast<std::size_t>(p.features);
  ds.num_features = p.features;
  if (nf > 0) {
    std::vector<float> mean(static_cast<std::size_t>(p.classes) * nf);
    for (std::int32_t k = 0; k < p.classes; ++k) {
      gen_rng r(seed, gen_stream_class_mean, static_cast<std::uint64_t>(k));
      for (std::size_t j = 0; j < nf; ++j)
        mean[static_cast<std::size_t>(k) * nf + j] = static_cast<float>(r.normal());
    }
    ds.features.resize(nn * nf);
    const auto noise = static_cast<float>(p.feature_noise);
    for (std::int64_t s = 0; s < steps; ++s) {
      report(progress, "generate: features", s, steps);
#pragma omp parallel for schedule(static)
      for (std::int64_t v = pos_chunks[static_cast<std::size_t>(s)];
           v < pos_chunks[static_cast<std::size_t>(s) + 1]; ++v) {
        gen_rng r(seed, gen_stream_features, static_cast<std::uint64_t>(v));
        const float* m =
            mean.data() + static_cast<std::size_t>(ds.labels[static_cast<std::size_t>(v)]) * nf;
        float* row = ds.features.data() + static_cast<std::size_t>(v) * nf;
        for (std::size_t j = 0; j < nf; j += 2) {  // Box-Muller: two normals per draw
          const float rad =
              std::sqrt(-2.0f * std::log(static_cast<float>(r.uniform_pos()))) * noise;
          const float ang = 6.2831853f * static_cast<float>(r.uniform());
          row[j] = m[j] + rad * std::cos(ang);
          if (j + 1 < nf) row[j + 1] = m[j + 1] + rad * std::sin(ang);
        }
      }
    }
    report(progress, "generate: features", steps, steps);
  }
  const auto perm = gen_permutation(n, seed, gen_stream_split);
  auto take = [&](std::int64_t from, std::int64_t count) {
    std::vector<I> out(static_cast<std::size_t>(count));
    for (std::int64_t i = 0; i < count; ++i)
      out[static_cast<std::size_t>(i)] = static_cast<I>(perm[static_cast<std::size_t>(from + i)]);
    std::sort(out.begin(), out.end());
    return out;
  };
  const auto ntrain = std::llround(p.train_fraction * static_cast<double>(n));
  const auto nval =
      std::min<std::int64_t>(std::llround(p.val_fraction * static_cast<double>(n)), n - ntrain);
  const auto ntest = std::min<std::int64_t>(std::llround(p.test_fraction * static_cast<double>(n)),
                                            n - ntrain - nval);
  ds.train_idx = take(0, ntrain);
  ds.val_idx = take(ntrain, nval);
  ds.test_idx = take(ntrain + nval, ntest);
  return ds;
}

}  // namespace detail

/// Canonical spec string of `p` ("synthetic:nodes=...,...,seed=..."), accepted by
/// `parse_generator_spec`; used as the generated dataset's name.
inline std::string to_spec(const generator_params& p) {
  auto d = [](double x) {  // shortest text that reads back as the same double
    char buf[32];
    const auto r = std::to_chars(buf, buf + sizeof buf, x);
    return std::string(buf, r.ptr);
  };
  return detail::concat(
      "synthetic:nodes=", p.nodes, ",avg_degree=", d(p.avg_degree), ",classes=", p.classes,
      ",features=", p.features, ",homophily=", d(p.homophily),
      ",community_fraction=", d(p.community_fraction), ",community_size=", p.community_size,
      ",community_size_spread=", d(p.community_size_spread),
      ",power_law_exponent=", d(p.power_law_exponent), ",max_degree=", p.max_degree,
      ",class_skew=", d(p.class_skew), ",feature_noise=", d(p.feature_noise),
      ",train_fraction=", d(p.train_fraction), ",val_fraction=", d(p.val_fraction),
      ",test_fraction=", d(p.test_fraction), ",shuffle_ids=", p.shuffle_ids ? 1 : 0,
      ",seed=", p.seed);
}

/// Parses "synthetic" or "synthetic:key=value,..." (keys: the field names of
/// `generator_params`; shuffle_ids takes 0/1/true/false). Throws `ibmb::invalid_argument`
/// naming an unknown key or a bad value; the parameters are validated as a whole.
inline generator_params parse_generator_spec(std::string_view spec) {
  generator_params p;
  constexpr std::string_view head = "synthetic";
  if (spec.substr(0, head.size()) != head ||
      (spec.size() > head.size() && spec[head.size()] != ':'))
    throw invalid_argument(
        detail::concat("generator spec '", spec, "': expected 'synthetic[:key=value,...]'"));
  std::string_view rest = spec.size() > head.size() ? spec.substr(head.size() + 1) : "";
  auto bad_value = [&](std::string_view key, std::string_view value, const char* what) {
    throw invalid_argument(detail::concat("generator spec '", spec, "': bad value '", value,
                                          "' for key '", key, "' (expected ", what, ")"));
  };
  auto parse_int = [&](std::string_view key, std::string_view v, auto& out) {
    using T = std::remove_reference_t<decltype(out)>;
    T x{};
    const auto [ptr, ec] = std::from_chars(v.data(), v.data() + v.size(), x);
    if (v.empty() || ec != std::errc{} || ptr != v.data() + v.size())
      bad_value(key, v, std::is_signed_v<T> ? "an integer" : "a non-negative integer");
    out = x;
  };
  auto parse_double = [&](std::string_view key, std::string_view v, double& out) {
    double x = 0;
    const auto [ptr, ec] = std::from_chars(v.data(), v.data() + v.size(), x);
    if (v.empty() || ec != std::errc{} || ptr != v.data() + v.size() || !std::isfinite(x))
      bad_value(key, v, "a finite number");
    out = x;
  };
  while (!rest.empty()) {
    const auto comma = rest.find(',');
    const std::string_view item = rest.substr(0, comma);
    rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
    const auto eq = item.find('=');
    if (eq == std::string_view::npos)
      throw invalid_argument(
          detail::concat("generator spec '", spec, "': item '", item, "' is not key=value"));
    const auto key = item.substr(0, eq);
    const auto v = item.substr(eq + 1);
    if (key == "nodes")
      parse_int(key, v, p.nodes);
    else if (key == "avg_degree")
      parse_double(key, v, p.avg_degree);
    else if (key == "classes")
      parse_int(key, v, p.classes);
    else if (key == "features")
      parse_int(key, v, p.features);
    else if (key == "homophily")
      parse_double(key, v, p.homophily);
    else if (key == "community_fraction")
      parse_double(key, v, p.community_fraction);
    else if (key == "community_size")
      parse_int(key, v, p.community_size);
    else if (key == "community_size_spread")
      parse_double(key, v, p.community_size_spread);
    else if (key == "power_law_exponent")
      parse_double(key, v, p.power_law_exponent);
    else if (key == "max_degree")
      parse_int(key, v, p.max_degree);
    else if (key == "class_skew")
      parse_double(key, v, p.class_skew);
    else if (key == "feature_noise")
      parse_double(key, v, p.feature_noise);
    else if (key == "train_fraction")
      parse_double(key, v, p.train_fraction);
    else if (key == "val_fraction")
      parse_double(key, v, p.val_fraction);
    else if (key == "test_fraction")
      parse_double(key, v, p.test_fraction);
    else if (key == "seed")
      parse_int(key, v, p.seed);
    else if (key == "shuffle_ids") {
      if (v == "1" || v == "true")
        p.shuffle_ids = true;
      else if (v == "0" || v == "false")
        p.shuffle_ids = false;
      else
        bad_value(key, v, "0, 1, true or false");
    } else {
      throw invalid_argument(
          detail::concat("generator spec '", spec, "': unknown key '", key, "'"));
    }
  }
  try {
    detail::check_generator_params(p);
  } catch (const invalid_argument& e) {
    throw invalid_argument(detail::concat("generator spec '", spec, "': ", e.what()));
  }
  return p;
}

/// The planted community of every node of `generate_dataset(p)` (ids 0..communities-1,
/// communities of one class numbered consecutively): ground truth for locality studies.
inline std::vector<std::int64_t> generator_communities(const generator_params& p) {
  detail::check_generator_params(p);
  const auto L = detail::make_gen_layout(p);
  std::vector<std::int64_t> comm(L.id_of.size());
  for (std::size_t q = 0; q < L.id_of.size(); ++q)
    comm[static_cast<std::size_t>(L.id_of[q])] = L.comm_of[q];
  return comm;
}

/// Generates the synthetic dataset described by `p` (see the file comment). The graph is
/// undirected (symmetric CSR), unweighted, without self-loops or duplicate entries, with
/// sorted columns; the result is identical for a given `p` on any thread count.
template <class I = std::int64_t, class O = std::int64_t>
basic_dataset<I, O> generate_dataset(const generator_params& p,
                                     const progress_callback& progress = {}) {
  detail::check_csr_types<I, O, float>();
  detail::check_generator_params(p);
  if (static_cast<std::uint64_t>(p.nodes) >
      static_cast<std::uint64_t>(std::numeric_limits<I>::max()))
    throw out_of_range(detail::concat("generator: nodes = ", p.nodes, " does not fit the ",
                                      sizeof(I) * 8, "-bit index type; use 64-bit indices"));
  // The result alone (features, labels, row pointer, about nodes x avg_degree entries) must fit
  // this machine: a typo such as nodes=1e18 fails here, not after minutes of allocation.
  {
    using detail::add_sat, detail::mul_sat;
    const auto n = static_cast<std::uint64_t>(p.nodes);
    const std::uint64_t per_node =
        static_cast<std::uint64_t>(p.features) * sizeof(float) + 8 + sizeof(O);
    const auto entries =
        static_cast<std::uint64_t>(std::min(static_cast<double>(p.nodes) * p.avg_degree, 1.8e19));
    const std::uint64_t bytes = add_sat(mul_sat(n, per_node), mul_sat(entries, sizeof(I)));
    if (const auto ram = detail::physical_memory_bytes(); ram > 0 && bytes > ram)
      throw out_of_range(
          detail::concat("generator: nodes = ", p.nodes, ", avg_degree = ", p.avg_degree,
                         ", features = ", p.features, " needs at least ", bytes,
                         " bytes, more than the ", ram, " bytes of memory of this machine"));
  }
  auto ds = detail::generate_dataset_impl<I, O>(p, progress);
  ds.name = to_spec(p);
  return ds;
}

}  // namespace ibmb
