// ibmb: single-source forward push (Andersen-Chung-Lang, non-lazy, as in PPRGo / IBMB) and
// `nodewise_ppr`, one push per output node in parallel with results independent of the
// thread count.
#pragma once

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <exception>
#include <limits>
#include <optional>
#include <span>
#include <type_traits>
#include <utility>
#include <vector>

#include "ibmb/core/error.hpp"
#include "ibmb/core/parallel.hpp"
#include "ibmb/core/progress.hpp"
#include "ibmb/graph/csr.hpp"
#include "ibmb/ppr/ppr_types.hpp"
#include "ibmb/ppr/topk.hpp"

namespace ibmb {

namespace detail {

/// Per-node state of one thread's push, packed so that one relaxation touches one cache
/// line: residual, estimate, threshold (alpha * eps * deg, a copy per workspace) and flags.
/// (Measured: splitting it into an 8-byte {residual, threshold} array plus separate estimate
/// and flag arrays was 10-45% slower, the flags then costing a second random access.)
template <class V>
struct alignas(4 * sizeof(V)) push_node_state {
  using flag_type = std::conditional_t<sizeof(V) == 4, std::uint32_t, std::uint64_t>;
  V r;
  V p;
  V thr;
  flag_type flags;
};

inline constexpr unsigned push_touched = 1u;  // listed in `touched_`
inline constexpr unsigned push_queued = 2u;   // on the stack/queue now
inline constexpr unsigned push_settled = 4u;  // popped at least once: has an estimate p

inline void check_push_params(const push_params& p, const char* who) {
  IBMB_EXPECTS(p.alpha > 0.0 && p.alpha <= 1.0, who, ": alpha = ", p.alpha, " outside (0, 1]");
  IBMB_EXPECTS(p.eps > 0.0 && std::isfinite(p.eps), who, ": eps = ", p.eps,
               " must be positive and finite");
  IBMB_EXPECTS(p.order == push_order::lifo || p.order == push_order::fifo, who,
               ": unknown push order ", static_cast<int>(p.order));
}

/// A list of distinct node ids with room for all N of them (+ 1 slot, so that the push loop
/// can write a candidate unconditionally and keep it by advancing the count: no
/// data-dependent branch per relaxation). Used as the touched list, the LIFO stack and the
/// FIFO ring (a node is queued at most once at a time, so N + 1 slots always suffice).
template <class I>
struct node_list {
  std::vector<I> buf;
  std::size_t n = 0;     // entries (LIFO / touched); live ring entries (FIFO)
  std::size_t head = 0;  // FIFO ring: first live slot

  void reset(std::size_t nodes) {
    buf.assign(nodes + 1, I{0});
    n = head = 0;
  }
  void clear() { n = head = 0; }
  void push_back(I v) { buf[n++] = v; }  // before a drain only (head = 0)
  [[nodiscard]] std::span<const I> span() const { return {buf.data(), n}; }
  [[nodiscard]] std::size_t bytes() const { return buf.capacity() * sizeof(I); }
};

/// The push loop shared by the single-source and the multi-source push: pops the queue
/// (LIFO or FIFO) until it is empty, moving each popped node's residual into its estimate
/// and spreading (1 - alpha) of it over its neighbours; nodes reaching their threshold are
/// queued, nodes seen for the first time are appended to `touched`. A node without
/// neighbours keeps all of its mass (res / alpha), as if it had only a self-loop.
/// The relaxation's bookkeeping is branch-free (a mispredicted "first touch" branch per edge
/// cost more than the relaxation itself); only the rare enqueue branches.
template <bool Lifo, class I, class O, class V>
void drain_push_queue_impl(const O* indptr, const I* indices, push_node_state<V>* st, V alpha,
                           V one_minus_alpha, node_list<I>& touched, node_list<I>& queue,
                           push_counters& c) {
  using flag_t = typename push_node_state<V>::flag_type;
  I* q = queue.buf.data();
  const std::size_t cap = queue.buf.size();
  std::size_t qn = queue.n, head = queue.head, tail = (queue.head + queue.n) % cap;
  I* t = touched.buf.data();
  std::size_t tn = touched.n;
  std::int64_t pushes = 0, relaxed = 0;
  while (qn > 0) {
    I u;
    if constexpr (Lifo) {
      u = q[--qn];
    } else {
      u = q[head];
      head = head + 1 == cap ? 0 : head + 1;
      --qn;
    }
    auto& su = st[u];
    const V res = su.r;
    su.r = V{0};
    su.flags = static_cast<flag_t>((su.flags & ~push_queued) | push_settled);
    ++pushes;
    const O b = indptr[u];
    const O e = indptr[u + 1];
    if (b == e) {
      su.p += res / alpha;  // the geometric series res * sum_k (1 - alpha)^k
      continue;
    }
    su.p += res;
    const V val = one_minus_alpha * res / static_cast<V>(e - b);
    relaxed += static_cast<std::int64_t>(e - b);
    for (O k = b; k < e; ++k) {
      const I v = indices[k];
      auto& sv = st[v];
      const V nr = sv.r + val;
      sv.r = nr;
      const flag_t f = sv.flags;
      t[tn] = v;
      tn += (f & push_touched) ? 0 : 1;
      const bool enqueue = nr >= sv.thr && !(f & push_queued);
      // A queued node is popped soon (LIFO: often next): start loading its neighbour list.
      // Enqueues are rare among relaxations (about one per popped row), so the branch is
      // predicted not taken. LIFO pushes inside it: the next pop's slot then does not wait
      // for every relaxation of the row to load its node's state, and the next row starts
      // speculatively (7-12% faster at eps 2e-4 on 1M-2.4M nodes than a branch-free
      // `qn += enqueue`, docs/benchmarks.md). FIFO's next pop never depends on this row.
      if constexpr (Lifo) {
        if (enqueue) {
          __builtin_prefetch(indices + indptr[v]);
          q[qn++] = v;
        }
      } else {
        if (enqueue) __builtin_prefetch(indices + indptr[v]);
        q[tail] = v;
        tail += enqueue ? 1 : 0;
        tail = tail == cap ? 0 : tail;
        qn += enqueue ? 1 : 0;
      }
      sv.flags = static_cast<flag_t>(f | push_touched | (enqueue ? push_queued : 0u));
    }
  }
  touched.n = tn;
  queue.clear();
  c.pushes += pushes;
  c.edges_relaxed += relaxed;
}

/// One thread's push state over N nodes, shared by the single-source and the multi-source
/// push: thresholds, residuals, estimates, flags, the touched list and the queue. `reset`
/// is O(N); `clear` undoes the last push in O(touched).
template <class I, class V>
class push_state {
 public:
  template <class O>
  void reset(const O* indptr, std::size_t n, double alpha_eps) {
    st_.assign(n, push_node_state<V>{V{0}, V{0}, V{0}, 0});
    for (std::size_t v = 0; v < n; ++v)
      st_[v].thr = static_cast<V>(alpha_eps * static_cast<double>(indptr[v + 1] - indptr[v]));
    touched_.reset(n);
    queue_.reset(n);
  }
  [[nodiscard]] std::size_t size() const { return st_.size(); }

  void clear() {
    for (I v : touched_.span()) {
      auto& s = st_[static_cast<std::size_t>(v)];
      s.r = V{0};
      s.p = V{0};
      s.flags = 0;
    }
    touched_.clear();
    queue_.clear();
  }

  /// Adds residual `mass` at v (touching it); queues nothing.
  void add_residual(I v, V mass) {
    auto& s = st_[static_cast<std::size_t>(v)];
    if (!(s.flags & push_touched)) {
      s.flags = static_cast<flag_t>(s.flags | push_touched);
      touched_.push_back(v);
    }
    s.r += mass;
  }
  /// Queues v (not queued yet) unconditionally: the source of a single-source push.
  void enqueue(I v) {
    auto& s = st_[static_cast<std::size_t>(v)];
    s.flags = static_cast<flag_t>(s.flags | push_queued);
    queue_.push_back(v);
  }
  /// Queues the touched nodes whose residual reached the threshold, in first-touch order.
  void enqueue_ready() {
    for (I v : touched_.span()) {
      const auto& s = st_[static_cast<std::size_t>(v)];
      if (s.r >= s.thr && !(s.flags & push_queued)) enqueue(v);
    }
  }

  /// Pushes until the queue is empty (see drain_push_queue_impl).
  template <class O>
  push_counters drain(const O* indptr, const I* indices, double alpha, push_order order) {
    push_counters c;
    const V a = static_cast<V>(alpha);
    const V oma = static_cast<V>(1.0 - alpha);
    if (order == push_order::lifo)
      drain_push_queue_impl<true>(indptr, indices, st_.data(), a, oma, touched_, queue_, c);
    else
      drain_push_queue_impl<false>(indptr, indices, st_.data(), a, oma, touched_, queue_, c);
    return c;
  }

  [[nodiscard]] std::span<const I> touched() const { return touched_.span(); }
  [[nodiscard]] V estimate(I v) const { return st_[static_cast<std::size_t>(v)].p; }
  [[nodiscard]] V residual(I v) const { return st_[static_cast<std::size_t>(v)].r; }
  [[nodiscard]] bool settled(I v) const {
    return (st_[static_cast<std::size_t>(v)].flags & push_settled) != 0;
  }
  [[nodiscard]] std::size_t bytes() const {
    return st_.capacity() * sizeof(push_node_state<V>) + touched_.bytes() + queue_.bytes();
  }

 private:
  using flag_t = typename push_node_state<V>::flag_type;
  std::vector<push_node_state<V>> st_;
  node_list<I> touched_;
  node_list<I> queue_;
};

}  // namespace detail

/// Reusable scratch space of the push for one thread: dense per-node state (16 bytes per node
/// for float, 32 for double) plus the touched list and the queue (N + 1 ids each). After `prepare`
/// (O(N), repeated only when the graph or alpha/eps change), one push costs O(its work):
/// the state is reset through the touched list, never by scanning N.
template <class I = std::int64_t, class V = float>
class push_workspace {
  static_assert(std::is_integral_v<I> && std::is_signed_v<I>,
                "ibmb: push_workspace index type must be a signed integer");
  static_assert(std::is_floating_point_v<V>, "ibmb: push_workspace values must be float/double");

 public:
  using index_type = I;
  using value_type = V;

  push_workspace() = default;

  /// Sizes the workspace for `g` and fills the thresholds alpha * eps * deg(v). Skipped when
  /// called again with the same graph arrays (same pointers and size) and the same alpha/eps.
  template <class O, class W>
  void prepare(csr_view<I, O, W> g, const push_params& p) {
    const auto n = static_cast<std::size_t>(g.num_rows);
    if (state_.size() == n && graph_key_ == static_cast<const void*>(g.indptr.data()) &&
        alpha_ == p.alpha && eps_ == p.eps)
      return;
    state_.reset(g.indptr.data(), n, p.alpha * p.eps);
    graph_key_ = g.indptr.data();
    alpha_ = p.alpha;
    eps_ = p.eps;
  }

  /// Nodes whose state the last push changed, in first-touch order (deterministic).
  [[nodiscard]] std::span<const I> touched() const { return state_.touched(); }
  /// Estimate p(v) of the last push (0 for untouched nodes).
  [[nodiscard]] V estimate(I v) const { return state_.estimate(v); }
  /// Residual r(v) left by the last push.
  [[nodiscard]] V residual(I v) const { return state_.residual(v); }
  /// Whether v was popped at least once (it then has an entry in the result, even if 0).
  [[nodiscard]] bool settled(I v) const { return state_.settled(v); }
  /// The settled entries of the last push, sorted by node id.
  [[nodiscard]] sparse_row<I, V> result() const {
    std::vector<std::pair<I, V>> e;
    for (I v : touched())
      if (settled(v)) e.emplace_back(v, estimate(v));
    std::sort(e.begin(), e.end());
    sparse_row<I, V> out;
    for (auto [v, x] : e) {
      out.indices.push_back(v);
      out.values.push_back(x);
    }
    return out;
  }
  /// Bytes held (state + lists), for memory reports.
  [[nodiscard]] std::size_t bytes() const { return state_.bytes(); }

  /// Resets the state of the last push in O(touched).
  void clear() { state_.clear(); }

  /// The push itself; `prepare` and `clear` must have been called. No checks.
  template <class O, class W>
  push_counters run(csr_view<I, O, W> g, I source, const push_params& prm) {
    state_.add_residual(source, static_cast<V>(prm.alpha));
    state_.enqueue(source);
    return state_.drain(g.indptr.data(), g.indices.data(), prm.alpha, prm.order);
  }

 private:
  detail::push_state<I, V> state_;
  const void* graph_key_ = nullptr;
  double alpha_ = -1.0;
  double eps_ = -1.0;
};

/// Forward push from `source` on a graph preprocessed by the caller (see `push_params`).
/// Leaves the result in `ws` (`ws.result()`, `ws.estimate(v)`) and returns the work done.
/// Checks the parameters and the source id (`ibmb::out_of_range`), not the graph structure
/// (call `g.validate()` once yourself for untrusted input).
template <class I, class O, class W, class V>
push_counters ppr_push(csr_view<I, O, W> g, std::type_identity_t<I> source, const push_params& p,
                       push_workspace<I, V>& ws) {
  detail::check_push_params(p, "ppr_push");
  IBMB_EXPECTS(g.num_rows == g.num_cols, "ppr_push: the graph must be square, got ", g.num_rows,
               " x ", g.num_cols);
  IBMB_EXPECTS_AS(out_of_range, source >= 0 && source < g.num_rows, "ppr_push: source ", source,
                  " outside [0, ", g.num_rows, ")");
  ws.prepare(g, p);
  ws.clear();
  return ws.run(g, source, p);
}

/// Convenience form with a temporary workspace (O(N) setup): the settled entries sorted by id.
template <class V = float, class I, class O, class W>
sparse_row<I, V> ppr_push(csr_view<I, O, W> g, std::type_identity_t<I> source, const push_params& p,
                          push_counters* counters = nullptr) {
  push_workspace<I, V> ws;
  const auto c = ppr_push(g, source, p, ws);
  if (counters) *counters = c;
  return ws.result();
}

namespace detail {

/// Rows of one kind produced by the per-thread loop, kept per thread and assembled in output
/// order afterwards.
template <class I, class V>
struct row_arena {
  std::vector<I> idx;
  std::vector<V> val;
};

/// Where output i's rows landed: thread, offset and length in that thread's arena.
struct row_ref {
  std::int32_t thread = 0;
  std::int64_t off = 0;
  std::int64_t len = 0;
  std::int64_t off2 = 0;
  std::int64_t len2 = 0;
};

template <class I, class V>
struct nodewise_rows {
  ppr_matrix<I, V> rows;  // top-k (or all settled) per output, columns = node ids
  // Optional: scores between outputs, CSR over output positions (row i: positions j != i of
  // outputs that output i's push settled, with p_i(outputs[j])); columns sorted.
  std::vector<std::int64_t> pair_ptr;
  std::vector<std::int64_t> pair_col;
  std::vector<V> pair_val;
};

/// Row pointers from the row lengths in output order, then one parallel copy per row.
template <class F>
void gather_rows(const std::vector<row_ref>& refs, std::vector<std::int64_t>& ptr, bool second,
                 F&& copy_row) {
  const auto n = static_cast<std::int64_t>(refs.size());
  ptr.assign(static_cast<std::size_t>(n) + 1, 0);
  for (std::int64_t i = 0; i < n; ++i) ptr[i + 1] = ptr[i] + (second ? refs[i].len2 : refs[i].len);
#pragma omp parallel for schedule(static)
  for (std::int64_t i = 0; i < n; ++i) copy_row(i, ptr[i]);
}

/// The parallel loop behind `nodewise_ppr` and `nodewise_plan`. `out_pos` (empty or N
/// entries) maps a node to its position among the outputs or -1; when given, the
/// output-to-output scores are collected too. No argument checks.
template <class V, class I, class O, class W>
nodewise_rows<I, V> nodewise_ppr_impl(csr_view<I, O, W> g, std::span<const I> outputs,
                                      const ppr_params& prm, std::span<const std::int64_t> out_pos,
                                      const progress_callback& progress) {
  const auto n_out = static_cast<std::int64_t>(outputs.size());
  const bool want_pairs = !out_pos.empty();
  scoped_threads guard(prm.threads);
  const int nthreads = max_threads();

  std::vector<row_arena<I, V>> arena(static_cast<std::size_t>(nthreads));
  std::vector<row_arena<std::int64_t, V>> arena2(want_pairs ? static_cast<std::size_t>(nthreads)
                                                            : 0);
  std::vector<row_ref> refs(static_cast<std::size_t>(n_out));
  std::vector<push_counters> per_thread(static_cast<std::size_t>(nthreads));
  std::atomic<std::int64_t> done{0};
  std::atomic<bool> abort{false};
  std::exception_ptr failure;
  const std::int64_t report_every = std::max<std::int64_t>(1, n_out / 100);

#pragma omp parallel num_threads(nthreads)
  {
    const int t = thread_id();
    push_workspace<I, V> ws;
    std::vector<std::pair<V, I>> entries;
    std::vector<std::pair<std::int64_t, V>> pairs;
    auto& ar = arena[static_cast<std::size_t>(t)];
    push_counters local;
    std::int64_t next_report = 0;
    try {
      ws.prepare(g, prm);
    } catch (...) {
#pragma omp critical(ibmb_nodewise_failure)
      if (!failure) failure = std::current_exception();
      abort = true;
    }
#pragma omp for schedule(dynamic, 8)
    for (std::int64_t i = 0; i < n_out; ++i) {
      if (abort.load(std::memory_order_relaxed)) continue;
      try {
        const I s = outputs[static_cast<std::size_t>(i)];
        ws.clear();
        local += ws.run(g, s, prm);
        entries.clear();
        for (I v : ws.touched())
          if (ws.settled(v)) entries.emplace_back(ws.estimate(v), v);
        auto& ref = refs[static_cast<std::size_t>(i)];
        ref.thread = t;
        if (want_pairs) {
          pairs.clear();
          for (const auto& [x, v] : entries) {
            const std::int64_t j = out_pos[static_cast<std::size_t>(v)];
            if (j >= 0 && j != i) pairs.emplace_back(j, x);
          }
          std::sort(pairs.begin(), pairs.end(),
                    [](const auto& a, const auto& b) { return a.first < b.first; });
          auto& a2 = arena2[static_cast<std::size_t>(t)];
          ref.off2 = static_cast<std::int64_t>(a2.idx.size());
          ref.len2 = static_cast<std::int64_t>(pairs.size());
          for (const auto& [j, x] : pairs) {
            a2.idx.push_back(j);
            a2.val.push_back(x);
          }
        }
        topk_inplace(entries, prm.topk,
                     prm.include_output ? std::optional<I>(s) : std::optional<I>());
        ref.off = static_cast<std::int64_t>(ar.idx.size());
        ref.len = static_cast<std::int64_t>(entries.size());
        for (const auto& [x, v] : entries) {
          ar.idx.push_back(v);
          ar.val.push_back(x);
        }
        const auto d = done.fetch_add(1, std::memory_order_relaxed) + 1;
        // Thread 0 of the team is the calling thread: the only one that reports.
        if (progress && t == 0 && d >= next_report) {
          next_report = d + report_every;
          progress("ppr", d, n_out);
        }
      } catch (...) {
#pragma omp critical(ibmb_nodewise_failure)
        if (!failure) failure = std::current_exception();
        abort = true;
      }
    }
    per_thread[static_cast<std::size_t>(t)] = local;
  }
  if (failure) std::rethrow_exception(failure);
  report(progress, "ppr", n_out, n_out);

  nodewise_rows<I, V> out;
  auto& m = out.rows;
  m.num_rows = n_out;
  m.num_cols = static_cast<std::int64_t>(g.num_rows);
  m.outputs.assign(outputs.begin(), outputs.end());
  for (const auto& c : per_thread) m.counters += c;
  {
    std::int64_t total = 0;
    for (const auto& r : refs) total += r.len;
    m.indices.resize(static_cast<std::size_t>(total));
    m.values.resize(static_cast<std::size_t>(total));
  }
  gather_rows(refs, m.indptr, false, [&](std::int64_t i, std::int64_t at) {
    const auto& r = refs[static_cast<std::size_t>(i)];
    const auto& a = arena[static_cast<std::size_t>(r.thread)];
    std::copy_n(a.idx.begin() + r.off, r.len, m.indices.begin() + at);
    std::copy_n(a.val.begin() + r.off, r.len, m.values.begin() + at);
  });
  arena.clear();
  if (want_pairs) {
    std::int64_t total = 0;
    for (const auto& r : refs) total += r.len2;
    out.pair_col.resize(static_cast<std::size_t>(total));
    out.pair_val.resize(static_cast<std::size_t>(total));
    gather_rows(refs, out.pair_ptr, true, [&](std::int64_t i, std::int64_t at) {
      const auto& r = refs[static_cast<std::size_t>(i)];
      const auto& a = arena2[static_cast<std::size_t>(r.thread)];
      std::copy_n(a.idx.begin() + r.off2, r.len2, out.pair_col.begin() + at);
      std::copy_n(a.val.begin() + r.off2, r.len2, out.pair_val.begin() + at);
    });
  }
  return out;
}

template <class I, class O, class W>
void check_nodewise_inputs(csr_view<I, O, W> g, std::span<const I> outputs, const ppr_params& p,
                           const char* who) {
  check_push_params(p, who);
  IBMB_EXPECTS(p.topk >= 0, who, ": topk = ", p.topk, " must be >= 0 (0 keeps every entry)");
  IBMB_EXPECTS(g.num_rows == g.num_cols, who, ": the graph must be square, got ", g.num_rows, " x ",
               g.num_cols);
  g.validate();
  for (std::size_t i = 0; i < outputs.size(); ++i)
    IBMB_EXPECTS_AS(out_of_range, outputs[i] >= 0 && outputs[i] < g.num_rows, who, ": outputs[", i,
                    "] = ", outputs[i], " outside [0, ", g.num_rows, ")");
}

}  // namespace detail

/// Approximate PPR rows of every output node (one forward push each, OpenMP-parallel with
/// dynamic scheduling). Row i of the result belongs to outputs[i], whatever the order of
/// `outputs`; repeated output ids give repeated (identical) rows. With `p.topk > 0` each row
/// keeps its k best entries (score desc, id asc) plus the output itself (see `ppr_params`);
/// with 0, every settled entry. Columns are sorted within a row. The bytes of the result are
/// the same for any thread count: each row is computed by one thread with the same sequence
/// of operations and rows are assembled in output order.
/// Throws `ibmb::invalid_argument` for bad parameters, `ibmb::format_error` for a malformed
/// graph, `ibmb::out_of_range` naming the first output id outside [0, N).
/// `progress` (optional) is called from the calling thread with stage "ppr".
template <class V = float, class I, class O, class W>
ppr_matrix<I, V> nodewise_ppr(csr_view<I, O, W> g, std::type_identity_t<std::span<const I>> outputs,
                              const ppr_params& p, const progress_callback& progress = {}) {
  detail::check_nodewise_inputs(g, outputs, p, "nodewise_ppr");
  return std::move(detail::nodewise_ppr_impl<V>(g, outputs, p, {}, progress).rows);
}

}  // namespace ibmb
