// ibmb: induced-subgraph extraction, `A[nodes][:, nodes]` with the nodes in the caller's
// order (local id i = position of nodes[i]), as a local CSR whose columns are sorted by local
// id and whose values are taken from the global entries (the graph's weights, or a per-entry
// array such as a global normalization).
//
// One pass over the neighbour lists of the nodes: each entry is tested against an N-bit
// membership bitmap (small enough to stay in cache; a 4-byte map lookup per entry was the
// bottleneck) and kept branch-free in a per-thread scratch buffer; a second pass over the
// kept entries only maps them to local ids and writes the final CSR. When `nodes` is one or
// two increasing runs (sorted ids, or the store's outputs-first order) a local id is the
// node's rank in the bitmap (a per-word count + a popcount) through the merge order of the
// runs: all of it stays in cache, where an N-sized map lookup per kept entry missed it
// (docs/benchmarks.md). Other orders use an N-sized map, allocated on first use. Bitmap and
// map are kept clear between calls, so a call costs O(its rows' entries), never O(N).
// Columns come out sorted without a sort when the graph's rows are sorted and `nodes` is one
// or two increasing runs: the kept entries of a row are then in local order within each run,
// and the second pass is a stable partition by run. Other inputs fall back to a stable sort
// per row, so repeated entries keep their input order in every case.
//
//   ibmb::subgraph_extractor ex(g);          // allocates the bitmap once (N / 8 + N / 16 bytes)
//   auto m = ex.scan(nodes);                 // local entries of this subgraph
//   ex.write(indptr, indices, weights);      // spans of n + 1, m, m (any int / float types)
#pragma once

#include <algorithm>
#include <bit>
#include <cstdint>
#include <limits>
#include <numeric>
#include <span>
#include <type_traits>
#include <utility>
#include <vector>

#include "ibmb/core/error.hpp"
#include "ibmb/core/parallel.hpp"
#include "ibmb/graph/csr.hpp"

namespace ibmb {

namespace detail {

/// Bits set in x: the instruction when the build targets it, else a few shifts and adds (a
/// portable x86-64 build would call libgcc's __popcountdi2 for std::popcount).
inline int popcount64(std::uint64_t x) {
#if defined(__POPCNT__) || !(defined(__x86_64__) || defined(__i386__))
  return std::popcount(x);
#else
  x -= (x >> 1) & 0x5555555555555555ull;
  x = (x & 0x3333333333333333ull) + ((x >> 2) & 0x3333333333333333ull);
  x = (x + (x >> 4)) & 0x0f0f0f0f0f0f0f0full;
  return static_cast<int>((x * 0x0101010101010101ull) >> 56);
#endif
}

}  // namespace detail

/// Extracts induced subgraphs of one graph, one after another (not thread-safe itself; its
/// passes are OpenMP-parallel over rows). Keep one per graph and reuse it across calls.
///
/// Precondition: `g` is a valid CSR (`g.validate()` passes). The scan uses every column id
/// of the rows it reads as an index into an N-bit bitmap without checking it (a check per
/// entry would cost the scan; validating in the constructor would cost O(nnz) per
/// extractor). Validate untrusted graphs once yourself: `materialize` and `induced_subgraph`
/// do.
template <class I, class O, class W>
class subgraph_extractor {
 public:
  /// The scan's prefetching (public for benchmarks that replay its access pattern): a row's
  /// neighbour list is prefetched `prefetch_rows` rows ahead (at most `prefetch_entries`
  /// bytes of it), its indptr entry twice as far ahead.
  static constexpr std::int64_t prefetch_rows = 8;
  static constexpr std::size_t prefetch_entries = 1024;  // bytes, despite the name
  explicit subgraph_extractor(csr_view<I, O, W> g)
      : g_(g), bits_((static_cast<std::size_t>(g.num_rows) + 63) / 64, 0), wrank_(bits_.size(), 0) {
    IBMB_EXPECTS(g.num_rows == g.num_cols, "subgraph_extractor: the graph is ", g.num_rows, " x ",
                 g.num_cols, " (expected square)");
  }

  /// Scans the rows of `nodes` (distinct ids in [0, N), local order; any integer type) and
  /// returns the number of local entries. Throws (and leaves the extractor reusable) on an
  /// id out of range or repeated.
  template <class J>
  std::int64_t scan(std::span<const J> nodes) {
    clear();
    nodes_.assign(nodes.begin(), nodes.end());
    const auto n = static_cast<std::int64_t>(nodes.size());
    const auto N = static_cast<std::int64_t>(g_.num_rows);
    if (n > std::numeric_limits<std::int32_t>::max())
      throw out_of_range(detail::concat("subgraph_extractor: ", n,
                                        " nodes; at most 2^31 - 1 are supported per subgraph"));
    mapped_ = 0;
    total_ = 0;
    for (std::int64_t i = 0; i < n; ++i, ++mapped_) {
      const auto v = static_cast<std::int64_t>(nodes_[static_cast<std::size_t>(i)]);
      if (v < 0 || v >= N) {
        clear();
        nodes_.clear();
        throw out_of_range(
            detail::concat("subgraph_extractor: nodes[", i, "] = ", v, " outside [0, ", N, ")"));
      }
      auto& word = bits_[static_cast<std::size_t>(v) >> 6];
      const std::uint64_t bit = std::uint64_t{1} << (v & 63);
      if (word & bit) {
        const auto first = std::find(nodes_.begin(), nodes_.end(), v) - nodes_.begin();
        clear();
        nodes_.clear();
        throw invalid_argument(detail::concat("subgraph_extractor: node ", v,
                                              " appears twice (nodes[", first, "] and nodes[", i,
                                              "])"));
      }
      word |= bit;
    }
    // Runs: split_ = length of the first increasing run when the rest is increasing too.
    split_ = n;
    two_runs_ = true;
    for (std::int64_t i = 1; i < n; ++i) {
      if (nodes_[static_cast<std::size_t>(i)] < nodes_[static_cast<std::size_t>(i - 1)]) {
        if (split_ != n) {
          two_runs_ = false;
          break;
        }
        split_ = i;
      }
    }
    if (two_runs_) {
      // Local ids by rank: wrank_[w] = nodes in the words before w (set for the words in
      // use only), perm_[rank] = local id (the merge of the two runs; none when sorted).
      perm_.resize(split_ == n ? 0 : static_cast<std::size_t>(n));
      std::int64_t a = 0, b = split_, prev = -1;
      for (std::int64_t r = 0; r < n; ++r) {
        const bool first = b >= n || (a < split_ && nodes_[static_cast<std::size_t>(a)] <
                                                        nodes_[static_cast<std::size_t>(b)]);
        const std::int64_t i = first ? a++ : b++;
        const std::int64_t w = nodes_[static_cast<std::size_t>(i)] >> 6;
        if (w != prev) wrank_[static_cast<std::size_t>(w)] = static_cast<std::int32_t>(r);
        prev = w;
        if (!perm_.empty()) perm_[static_cast<std::size_t>(r)] = static_cast<std::int32_t>(i);
      }
    } else {
      if (map_.empty()) map_.assign(static_cast<std::size_t>(N), -1);
      for (std::int64_t i = 0; i < n; ++i)
        map_[static_cast<std::size_t>(nodes_[static_cast<std::size_t>(i)])] =
            static_cast<std::int32_t>(i);
      map_used_ = true;
    }
    // Scratch: one growing buffer per thread holding the kept entries of its rows; each row
    // records where its entries went (no pass over the rows' degrees beforehand: that would
    // be a second round of random reads of indptr).
    const int T = max_threads();
    if (static_cast<int>(tcol_.size()) < T) {
      tcol_.resize(static_cast<std::size_t>(T));
      tpos_.resize(static_cast<std::size_t>(T));
    }
    count_.resize(static_cast<std::size_t>(n));
    at_.resize(static_cast<std::size_t>(n));
    tid_.resize(static_cast<std::size_t>(n));
    ordered_.resize(static_cast<std::size_t>(n));
    std::int64_t total = 0;
#pragma omp parallel reduction(+ : total)
    {
      const int t = thread_id();
      auto& col = tcol_[static_cast<std::size_t>(t)];
      auto& pos = tpos_[static_cast<std::size_t>(t)];
      std::int64_t a = 0;
#pragma omp for schedule(dynamic, 64)
      for (std::int64_t i = 0; i < n; ++i) {
        // The rows are scattered over the graph: without prefetching, every row costs two
        // dependent cache misses (indptr, then the neighbour list).
        if (i + 2 * prefetch_rows < n)
          __builtin_prefetch(g_.indptr.data() +
                             nodes_[static_cast<std::size_t>(i + 2 * prefetch_rows)]);
        if (i + prefetch_rows < n) {
          const auto f =
              static_cast<std::size_t>(nodes_[static_cast<std::size_t>(i + prefetch_rows)]);
          const auto pb = static_cast<std::size_t>(g_.indptr[f]);
          const auto pe = std::min(static_cast<std::size_t>(g_.indptr[f + 1]),
                                   pb + prefetch_entries / sizeof(I));
          for (std::size_t q = pb; q < pe; q += 64 / sizeof(I))
            __builtin_prefetch(g_.indices.data() + q);
        }
        const auto u = static_cast<std::size_t>(nodes_[static_cast<std::size_t>(i)]);
        const auto rb = static_cast<std::int64_t>(g_.indptr[u]);
        const auto re = static_cast<std::int64_t>(g_.indptr[u + 1]);
        // + 1: the branch-free loop writes one slot past the row's kept entries.
        const auto need = static_cast<std::size_t>(a + (re - rb) + 1);
        if (col.size() < need) {
          col.resize(std::max(need, 2 * col.size()));
          pos.resize(col.size());
        }
        const I* cols = g_.indices.data();
        const std::uint64_t* bits = bits_.data();
        I* sc = col.data();
        std::int64_t* sp = pos.data();
        const std::int64_t a0 = a;
        bool sorted = true;
        for (std::int64_t e = rb; e < re; ++e) {
          const I c = cols[e];
          sorted &= e == rb || cols[e - 1] <= c;
          const auto uc = static_cast<std::uint64_t>(c);
          sc[a] = c;
          sp[a] = e;
          a += static_cast<std::int64_t>((bits[uc >> 6] >> (uc & 63)) & 1u);
        }
        count_[static_cast<std::size_t>(i)] = a - a0;
        at_[static_cast<std::size_t>(i)] = a0;
        tid_[static_cast<std::size_t>(i)] = t;
        ordered_[static_cast<std::size_t>(i)] = sorted;
        total += a - a0;
      }
    }
    total_ = total;
    return total;
  }

  /// Writes the subgraph of the last `scan`: `indptr` (n + 1 entries, starting at 0),
  /// `indices` (local ids) and, unless empty, `weights` (values[e] for the global entry e,
  /// or the graph's weight, or 1 when `values` is empty and the graph unweighted).
  /// Resets the map afterwards (the next `scan` may follow at once).
  template <class LI, class LW, class V = float>
  void write(std::span<LI> indptr, std::span<LI> indices, std::span<LW> weights,
             std::span<const V> values = {}) {
    IBMB_EXPECTS(values.empty() || values.size() == g_.indices.size(),
                 "subgraph_extractor: ", values.size(), " values for ", g_.indices.size(),
                 " graph entries");
    write_with(indptr, indices, weights, [&](std::int64_t e, std::int64_t, std::int64_t) -> LW {
      if (!values.empty()) return static_cast<LW>(values[static_cast<std::size_t>(e)]);
      if (g_.has_weights()) return static_cast<LW>(g_.weights[static_cast<std::size_t>(e)]);
      return LW(1);
    });
  }

  /// As `write`, with each weight computed as `value(e, u, v)` for the global entry e from
  /// row u to column v (global ids), e.g. a normalization applied on the fly, or as
  /// `value(e, u, v, i, l)` when `value` takes the local ids too (row i = position of u in
  /// `nodes`, column l): per-node data gathered in local order then stays in cache, where a
  /// lookup by global id misses it once per row. `value` is called concurrently from
  /// several threads.
  template <class LI, class LW, class ValueFn>
  void write_with(std::span<LI> indptr, std::span<LI> indices, std::span<LW> weights,
                  ValueFn value) {
    const auto n = static_cast<std::int64_t>(nodes_.size());
    IBMB_EXPECTS(static_cast<std::int64_t>(indptr.size()) == n + 1,
                 "subgraph_extractor: indptr has ", indptr.size(), " entries for ", n, " rows");
    IBMB_EXPECTS(static_cast<std::int64_t>(indices.size()) == total_,
                 "subgraph_extractor: indices has ", indices.size(), " slots for ", total_,
                 " entries");
    IBMB_EXPECTS(weights.empty() || static_cast<std::int64_t>(weights.size()) == total_,
                 "subgraph_extractor: weights has ", weights.size(), " slots for ", total_,
                 " entries");
    // Offsets go up to total_, local ids up to n - 1: both must fit LI.
    constexpr auto li_max = static_cast<std::uint64_t>(std::numeric_limits<LI>::max());
    if (static_cast<std::uint64_t>(total_) > li_max)
      throw out_of_range(detail::concat("subgraph_extractor: the subgraph has ", total_,
                                        " entries; the ", sizeof(LI) * 8,
                                        "-bit local index type holds at most ", li_max));
    if (total_ > 0 && static_cast<std::uint64_t>(n - 1) > li_max)
      throw out_of_range(detail::concat("subgraph_extractor: the subgraph has ", n, " nodes; the ",
                                        sizeof(LI) * 8, "-bit local index type holds ids up to ",
                                        li_max));
    indptr[0] = 0;
    for (std::int64_t i = 0; i < n; ++i)
      indptr[static_cast<std::size_t>(i) + 1] =
          static_cast<LI>(static_cast<std::int64_t>(indptr[static_cast<std::size_t>(i)]) +
                          count_[static_cast<std::size_t>(i)]);
    const bool want_w = !weights.empty();
    const auto split = static_cast<std::int32_t>(split_);
    const bool two_runs = two_runs_;
    // `value` is the caller's: whatever it throws (or a scratch allocation) is carried out
    // of the region and rethrown once the extractor is reset.
    detail::region_failure failure;
#pragma omp parallel
    {
      std::vector<std::pair<std::int32_t, std::int64_t>> tmp;
      std::vector<std::int32_t> loc;   // local ids of the row's kept entries
      std::vector<std::int64_t> take;  // their order in the row
#pragma omp for schedule(dynamic, 64)
      for (std::int64_t i = 0; i < n; ++i)
        failure.run([&] {
          const auto ui = static_cast<std::size_t>(i);
          const auto t = static_cast<std::size_t>(tid_[ui]);
          const I* sc = tcol_[t].data() + at_[ui];
          const std::int64_t* sp = tpos_[t].data() + at_[ui];
          const std::int64_t m = count_[ui];
          const auto at = static_cast<std::size_t>(indptr[ui]);
          const std::int64_t u = nodes_[ui];
          LI* oi = indices.data() + at;
          LW* ow = want_w ? weights.data() + at : nullptr;
          std::int64_t k = 0;
          auto put = [&](std::int32_t l, std::int64_t j) {  // local column l, kept entry j
            oi[k] = static_cast<LI>(l);
            if (want_w) {
              if constexpr (std::is_invocable_v<ValueFn&, std::int64_t, std::int64_t, std::int64_t,
                                                std::int64_t, std::int64_t>)
                ow[k] = value(sp[j], u, static_cast<std::int64_t>(sc[j]), i,
                              static_cast<std::int64_t>(l));
              else
                ow[k] = value(sp[j], u, static_cast<std::int64_t>(sc[j]));
            }
            ++k;
          };
          auto local = [&](std::int64_t j) -> std::int32_t {
            const auto c = static_cast<std::uint64_t>(sc[j]);
            if (!two_runs) return map_[c];
            const std::int32_t r =
                wrank_[c >> 6] +
                detail::popcount64(bits_[c >> 6] & ((std::uint64_t{1} << (c & 63)) - 1));
            return perm_.empty() ? r : perm_[static_cast<std::size_t>(r)];
          };
          if (ordered_[ui] && two_runs) {
            // Within each run, local order = global order: a stable partition sorts the row.
            // Branch-free: the local ids first (independent lookups the core overlaps), then
            // the order (first run, then second), then the writes.
            const auto um = static_cast<std::size_t>(m);
            if (loc.size() < um + 1) {
              loc.resize(std::max(um + 1, 2 * loc.size()));
              take.resize(loc.size());
            }
            for (std::int64_t j = 0; j < m; ++j) loc[static_cast<std::size_t>(j)] = local(j);
            if (split == n) {  // one run (sorted nodes): the row is in local order already
              for (std::int64_t j = 0; j < m; ++j) put(loc[static_cast<std::size_t>(j)], j);
              return;
            }
            std::int64_t q = 0;
            for (std::int64_t j = 0; j < m; ++j) {
              take[static_cast<std::size_t>(q)] = j;
              q += loc[static_cast<std::size_t>(j)] < split;
            }
            for (std::int64_t j = 0; j < m; ++j) {
              take[static_cast<std::size_t>(q)] = j;
              q += loc[static_cast<std::size_t>(j)] >= split;
            }
            for (std::size_t p = 0; p < um; ++p)
              put(loc[static_cast<std::size_t>(take[p])], take[p]);
          } else {
            tmp.clear();
            for (std::int64_t j = 0; j < m; ++j) tmp.emplace_back(local(j), j);
            std::stable_sort(tmp.begin(), tmp.end(),
                             [](const auto& x, const auto& y) { return x.first < y.first; });
            for (const auto& [l, j] : tmp) put(l, j);
          }
        });
    }
    clear();
    failure.rethrow();
  }

  /// The graph this extractor reads.
  [[nodiscard]] csr_view<I, O, W> graph() const { return g_; }

 private:
  void clear() {
    for (std::int64_t i = 0; i < mapped_; ++i) {
      const auto v = static_cast<std::size_t>(nodes_[static_cast<std::size_t>(i)]);
      if (map_used_) map_[v] = -1;
      bits_[v >> 6] = 0;
    }
    mapped_ = 0;
    map_used_ = false;
  }

  csr_view<I, O, W> g_;
  std::vector<std::uint64_t> bits_;  // membership, one bit per node (fits a cache)
  std::vector<std::int32_t> wrank_;  // per bitmap word in use: members in the words before it
  std::vector<std::int32_t> perm_;   // rank -> local id (two runs; empty when sorted)
  std::vector<std::int32_t> map_;    // other orders: global -> local, -1 outside
  std::vector<std::int64_t> nodes_;  // a copy: the bitmap is reset from it
  std::int64_t mapped_ = 0, split_ = 0, total_ = 0;
  bool two_runs_ = true, map_used_ = false;
  std::vector<std::int64_t> count_, at_;  // per row: kept entries, offset in its thread's buffer
  std::vector<std::int32_t> tid_;         // per row: the thread that scanned it
  std::vector<char> ordered_;             // per row: the global row was sorted
  std::vector<std::vector<I>> tcol_;      // per thread: global columns of kept entries
  std::vector<std::vector<std::int64_t>> tpos_;  // per thread: their global entry positions
};

/// The subgraph of `g` induced by `nodes` (local id i = nodes[i]) as a new CSR with int64
/// local ids; weights from `g` (none when `g` is unweighted). Validates `g` first
/// (`ibmb::format_error` naming the first bad entry), then extracts: O(nnz + N / 64) per call;
/// for many subgraphs of one graph keep a `subgraph_extractor`.
template <class I, class O, class W>
csr_graph<std::int64_t, std::int64_t, W> induced_subgraph(csr_view<I, O, W> g,
                                                          std::span<const I> nodes) {
  IBMB_EXPECTS(g.num_rows == g.num_cols, "induced_subgraph: the graph is ", g.num_rows, " x ",
               g.num_cols, " (expected square)");
  g.validate();  // the scan indexes the membership bitmap by column id
  subgraph_extractor<I, O, W> ex(g);
  const auto m = ex.scan(nodes);
  csr_graph<std::int64_t, std::int64_t, W> s;
  s.num_rows = s.num_cols = static_cast<std::int64_t>(nodes.size());
  s.indptr.resize(nodes.size() + 1);
  s.indices.resize(static_cast<std::size_t>(m));
  if (g.has_weights()) s.weights.resize(static_cast<std::size_t>(m));
  ex.write(std::span<std::int64_t>(s.indptr), std::span<std::int64_t>(s.indices),
           std::span<W>(s.weights));
  return s;
}

}  // namespace ibmb
