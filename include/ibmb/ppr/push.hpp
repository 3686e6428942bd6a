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
#include <memory>
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

/// Per-node state of one thread's push that every relaxation reads and writes: the residual
/// and the push threshold alpha * eps * deg (a copy per workspace). While a node is queued its
/// threshold is +inf, so "reached the threshold and not queued yet" is one comparison, and a
/// relaxation touches these 8 bytes (float) and nothing else: no flags, no touched list. The
/// estimates live in a separate array, touched once per pop.
/// (Measured against the former 16-byte {residual, estimate, threshold, flags} state with a
/// touched list appended on every relaxation: 18-41% faster on 100k-2.4M nodes, eps 2e-4 and
/// 1e-5, 1 and 2 threads, same rows bit for bit; docs/benchmarks.md, session 5.)
template <class V>
struct push_node_state {
  V r;
  V thr;
};

/// The push threshold of a node of degree d: alpha * eps * d rounded to V once (in double,
/// as the CUDA push computes it). A node without neighbours gets the smallest normal value
/// instead of 0, so that only a positive residual queues it (`push_state::reset` checks that
/// alpha * eps is at least that value, so every pop moves a positive residual).
template <class V, class D>
V push_threshold(double alpha_eps, D d) {
  return d > 0 ? static_cast<V>(alpha_eps * static_cast<double>(d)) : std::numeric_limits<V>::min();
}

/// Throws `ibmb::invalid_argument` when alpha or alpha * eps is below the smallest normal value
/// of V: a threshold or the source's mass would round to 0, and a push could then loop on zero
/// residuals.
template <class V>
void check_push_scale(double alpha, double eps, const char* who) {
  const auto tiny = static_cast<double>(std::numeric_limits<V>::min());
  IBMB_EXPECTS(alpha >= tiny && alpha * eps >= tiny, who, ": alpha = ", alpha,
               ", alpha * eps = ", alpha * eps, ": below the smallest normal ",
               sizeof(V) == 4 ? "float" : "double",
               " value; the push would round thresholds or masses to 0 (use a larger eps or "
               "double values)");
  // 1 - alpha rounding to 1 (alpha below about 3e-8 in float) keeps every pushed mass in
  // the graph: residuals would never fall below their thresholds, and the push not end.
  IBMB_EXPECTS(static_cast<V>(1.0 - alpha) < V{1}, who, ": alpha = ", alpha,
               " rounds 1 - alpha to 1 in ", sizeof(V) == 4 ? "float" : "double",
               ": no mass would leave the push and it would not end (use a larger alpha or "
               "double values)");
}

inline void check_push_params(const push_params& p, const char* who) {
  IBMB_EXPECTS(p.alpha > 0.0 && p.alpha <= 1.0, who, ": alpha = ", p.alpha, " outside (0, 1]");
  IBMB_EXPECTS(p.eps > 0.0 && std::isfinite(p.eps), who, ": eps = ", p.eps,
               " must be positive and finite");
  IBMB_EXPECTS(p.order == push_order::lifo || p.order == push_order::fifo, who,
               ": unknown push order ", static_cast<int>(p.order));
}

/// A list of distinct node ids with room for all N of them (N + 1 slots, so that the FIFO
/// ring's modulo is defined even for N = 0). Used as the settled list, the LIFO stack and the
/// FIFO ring (a node is queued at most once at a time, so the ring never overflows).
/// The slots are not initialised: a push writes a slot before it reads it, and a push that
/// reaches a few thousand nodes touches only the first pages of the two lists, so the rest
/// of their 2 x 8 bytes per node (int64 ids) is address space, never faulted in. (Zero-filled,
/// they were 16 of the workspace's 28 resident bytes per node, paid by every `prepare`.)
template <class I>
struct node_list {
  std::unique_ptr<I[]> buf;
  std::size_t cap = 0;   // slots (N + 1)
  std::size_t n = 0;     // entries (LIFO / settled); live ring entries (FIFO)
  std::size_t head = 0;  // FIFO ring: first live slot

  void reset(std::size_t nodes) {
    if (cap != nodes + 1) {
      buf.reset(new I[nodes + 1]);  // default-initialised: no writes, no page faults
      cap = nodes + 1;
    }
    n = head = 0;
  }
  void clear() { n = head = 0; }
  void push_back(I v) { buf[n++] = v; }  // before a drain only (head = 0)
  [[nodiscard]] I* data() { return buf.get(); }
  [[nodiscard]] std::span<const I> span() const { return {buf.get(), n}; }
  /// Address space held; resident is only what pushes have written.
  [[nodiscard]] std::size_t bytes() const { return cap * sizeof(I); }
};

/// The push loop shared by the single-source and the multi-source push: pops the queue
/// (LIFO or FIFO) until it is empty, moving each popped node's residual into its estimate
/// and spreading (1 - alpha) of it over its neighbours; a node whose residual reaches its
/// threshold is queued (its threshold set to +inf until it is popped). A node is appended to
/// `settled` at its first pop (its estimate is still 0 then: every pop adds a positive
/// residual, see `push_state::reset`). A node without neighbours keeps all of its mass
/// (res / alpha), as if it had only a self-loop.
template <bool Lifo, class I, class O, class V>
void drain_push_queue_impl(const O* indptr, const I* indices, push_node_state<V>* st, V* est,
                           V alpha, V one_minus_alpha, double alpha_eps, node_list<I>& settled,
                           node_list<I>& queue, push_counters& c) {
  I* q = queue.data();
  const std::size_t cap = queue.cap;
  std::size_t qn = queue.n, head = queue.head, tail = (queue.head + queue.n) % cap;
  I* sl = settled.data();
  std::size_t sn = settled.n;
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
    const O b = indptr[u];
    const O e = indptr[u + 1];
    su.thr = push_threshold<V>(alpha_eps, e - b);  // no longer queued
    V& pu = est[u];
    if (pu == V{0}) sl[sn++] = u;  // first pop (once per row: cheap to branch on)
    ++pushes;
    if (b == e) {
      pu += res / alpha;  // the geometric series res * sum_k (1 - alpha)^k
      continue;
    }
    pu += res;
    const V val = one_minus_alpha * res / static_cast<V>(e - b);
    relaxed += static_cast<std::int64_t>(e - b);
    for (O k = b; k < e; ++k) {
      const I v = indices[k];
      auto& sv = st[v];
      const V nr = sv.r + val;
      sv.r = nr;
      // Enqueues are rare among relaxations (about one per popped row), so the branch is
      // predicted not taken; LIFO pushes inside it, so the next pop's slot does not wait for
      // every relaxation of the row (docs/benchmarks.md, session 4). A queued node is popped
      // soon (LIFO: often next): start loading its neighbour list.
      if (nr >= sv.thr) {
        sv.thr = std::numeric_limits<V>::infinity();
        __builtin_prefetch(indices + indptr[v]);
        if constexpr (Lifo) {
          q[qn++] = v;
        } else {
          q[tail] = v;
          tail = tail + 1 == cap ? 0 : tail + 1;
          ++qn;
        }
      }
    }
  }
  settled.n = sn;
  queue.clear();
  c.pushes += pushes;
  c.edges_relaxed += relaxed;
}

/// One thread's push state over N nodes, shared by the single-source and the multi-source
/// push: residuals and thresholds, estimates, the seeds, the settled list and the queue.
/// `reset` is O(N); `clear` undoes the last push in O(its work): the nodes it touched are
/// the seeds and the neighbours of the settled nodes, so their rows are walked again.
template <class I, class V>
class push_state {
 public:
  /// Sizes the state for the graph (whose arrays must outlive the pushes) and fills the
  /// thresholds (see `check_push_scale` for what it rejects).
  template <class O>
  void reset(const O* indptr, const I* indices, std::size_t n, double alpha, double eps) {
    check_push_scale<V>(alpha, eps, "push");
    const double alpha_eps = alpha * eps;
    alpha_eps_ = alpha_eps;
    indptr_ = indptr;
    indices_ = indices;
    zero_rows_ = &zero_rows_impl<O>;
    list_rows_ = &list_rows_impl<O>;
    st_.assign(n, push_node_state<V>{V{0}, V{0}});
    for (std::size_t v = 0; v < n; ++v)
      st_[v].thr = push_threshold<V>(alpha_eps, indptr[v + 1] - indptr[v]);
    est_.assign(n, V{0});
    seeds_.clear();
    settled_.reset(n);
    queue_.reset(n);
    touched_.clear();
  }
  [[nodiscard]] std::size_t size() const { return st_.size(); }

  void clear() {
    if (!zero_rows_) return;  // never reset: nothing to undo
    // Every enqueue is followed by a drain, which empties the queue and restores the
    // thresholds of the nodes it held.
    IBMB_ASSERT(queue_.n == 0, "push_state::clear with ", queue_.n, " nodes still queued");
    for (I v : seeds_) st_[static_cast<std::size_t>(v)].r = V{0};
    zero_rows_(*this);
    for (I u : settled_.span()) est_[static_cast<std::size_t>(u)] = V{0};
    seeds_.clear();
    settled_.clear();
    queue_.clear();
    touched_.clear();
  }

  /// Adds residual `mass` at v; queues nothing.
  void add_residual(I v, V mass) {
    st_[static_cast<std::size_t>(v)].r += mass;
    seeds_.push_back(v);
    touched_.clear();
  }
  /// Queues v (not queued yet) unconditionally: the source of a single-source push.
  void enqueue(I v) {
    st_[static_cast<std::size_t>(v)].thr = std::numeric_limits<V>::infinity();
    queue_.push_back(v);
  }
  /// Queues the seeds whose residual reached the threshold, in the order they were added.
  void enqueue_ready() {
    for (I v : seeds_) {
      const auto& s = st_[static_cast<std::size_t>(v)];
      if (s.r >= s.thr) enqueue(v);  // a queued seed's threshold is +inf: never twice
    }
  }

  /// Pushes until the queue is empty (see drain_push_queue_impl).
  template <class O>
  push_counters drain(const O* indptr, const I* indices, double alpha, push_order order) {
    push_counters c;
    const V a = static_cast<V>(alpha);
    const V oma = static_cast<V>(1.0 - alpha);
    touched_.clear();
    if (order == push_order::lifo)
      drain_push_queue_impl<true>(indptr, indices, st_.data(), est_.data(), a, oma, alpha_eps_,
                                  settled_, queue_, c);
    else
      drain_push_queue_impl<false>(indptr, indices, st_.data(), est_.data(), a, oma, alpha_eps_,
                                   settled_, queue_, c);
    return c;
  }

  /// Nodes popped at least once since the last `clear`, in the order of their first pop.
  [[nodiscard]] std::span<const I> settled_nodes() const { return settled_.span(); }
  /// Every node whose state changed since the last `clear` (the seeds and the neighbours of
  /// the settled nodes), ascending. Built on first call after a push: O(work log work).
  [[nodiscard]] std::span<const I> touched() const {
    if (touched_.empty() && (!seeds_.empty() || settled_.n > 0)) {
      touched_.assign(seeds_.begin(), seeds_.end());
      list_rows_(*this, touched_);
      std::sort(touched_.begin(), touched_.end());
      touched_.erase(std::unique(touched_.begin(), touched_.end()), touched_.end());
    }
    return touched_;
  }
  [[nodiscard]] V estimate(I v) const { return est_[static_cast<std::size_t>(v)]; }
  [[nodiscard]] V residual(I v) const { return st_[static_cast<std::size_t>(v)].r; }
  [[nodiscard]] bool settled(I v) const { return est_[static_cast<std::size_t>(v)] > V{0}; }
  [[nodiscard]] std::size_t bytes() const {
    return st_.capacity() * sizeof(push_node_state<V>) + est_.capacity() * sizeof(V) +
           settled_.bytes() + queue_.bytes() +
           (seeds_.capacity() + touched_.capacity()) * sizeof(I);
  }

 private:
  /// The parts that need the graph's offset type, known only to `reset` (hence the function
  /// pointers set there): zeroing the residual of every neighbour of a settled node, and
  /// listing them.
  template <class O, class F>
  static void for_each_neighbour(const push_state& s, F&& f) {
    const auto* indptr = static_cast<const O*>(s.indptr_);
    for (I u : s.settled_.span())
      for (O k = indptr[u]; k < indptr[u + 1]; ++k) f(s.indices_[k]);
  }
  template <class O>
  static void zero_rows_impl(push_state& s) {
    for_each_neighbour<O>(s, [&](I v) { s.st_[static_cast<std::size_t>(v)].r = V{0}; });
  }
  template <class O>
  static void list_rows_impl(const push_state& s, std::vector<I>& out) {
    for_each_neighbour<O>(s, [&](I v) { out.push_back(v); });
  }
  std::vector<push_node_state<V>> st_;
  std::vector<V> est_;
  std::vector<I> seeds_;
  node_list<I> settled_;
  node_list<I> queue_;
  mutable std::vector<I> touched_;
  double alpha_eps_ = 0.0;
  const void* indptr_ = nullptr;
  const I* indices_ = nullptr;
  void (*zero_rows_)(push_state&) = nullptr;
  void (*list_rows_)(const push_state&, std::vector<I>&) = nullptr;
};

}  // namespace detail

/// Reusable scratch space of the push for one thread: dense per-node state (12 bytes per node
/// for float, 24 for double: residual, threshold, estimate) plus the settled list and the queue
/// (N + 1 ids each, reserved but resident only as far as pushes fill them; `bytes` counts them
/// whole). Move-only. After `prepare` (O(N), repeated only when the graph or alpha/eps change),
/// one push costs O(its work): the state is reset through the rows of the settled nodes,
/// never by scanning N. The graph's arrays must stay alive and unchanged from `prepare` until
/// the workspace is cleared or prepared for another graph.
///
/// The workspace binds to the graph's *data* by address: `prepare` recognises a graph by its
/// array pointers, node count and entry count (plus alpha/eps) and skips its O(N) reset when
/// they match. A graph modified in place (same buffers and sizes, different entries) is not
/// detected: call `invalidate()` after modifying it, or the next pushes use stale thresholds
/// and clear stale state through the wrong rows (silently wrong results).
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
  /// called again with the same graph arrays (same pointers, size and entry count) and the
  /// same alpha/eps, unless `invalidate()` was called since. Throws `ibmb::invalid_argument`
  /// when alpha * eps underflows V.
  template <class O, class W>
  void prepare(csr_view<I, O, W> g, const push_params& p) {
    const auto n = static_cast<std::size_t>(g.num_rows);
    const auto nnz = static_cast<std::int64_t>(g.indptr.empty() ? 0 : g.indptr[n]);
    if (state_.size() == n && indptr_key_ == static_cast<const void*>(g.indptr.data()) &&
        indices_key_ == static_cast<const void*>(g.indices.data()) && nnz_ == nnz &&
        alpha_ == p.alpha && eps_ == p.eps)
      return;
    state_.reset(g.indptr.data(), g.indices.data(), n, p.alpha, p.eps);
    indptr_key_ = g.indptr.data();
    indices_key_ = g.indices.data();
    nnz_ = nnz;
    alpha_ = p.alpha;
    eps_ = p.eps;
  }

  /// Forgets the graph this workspace was prepared for, so the next `prepare` does the full
  /// O(N) reset. Call it after modifying the graph's arrays in place (see the class notes).
  /// Keeps the allocations; the last push's result stays readable until that `prepare`.
  void invalidate() noexcept {
    indptr_key_ = nullptr;
    indices_key_ = nullptr;
    nnz_ = -1;
    alpha_ = -1.0;
    eps_ = -1.0;
  }

  /// Nodes whose state the last push changed (the source and the neighbours of every settled
  /// node), ascending. Built on the first call after a push, O(work log work): for checks
  /// and reports, not for the hot path (use `settled_nodes`).
  [[nodiscard]] std::span<const I> touched() const { return state_.touched(); }
  /// Nodes the last push popped at least once (those with an entry in the result), in the
  /// order of their first pop (deterministic).
  [[nodiscard]] std::span<const I> settled_nodes() const { return state_.settled_nodes(); }
  /// Estimate p(v) of the last push (0 for nodes it did not settle).
  [[nodiscard]] V estimate(I v) const { return state_.estimate(v); }
  /// Residual r(v) left by the last push.
  [[nodiscard]] V residual(I v) const { return state_.residual(v); }
  /// Whether v was popped at least once (it then has an entry in the result).
  [[nodiscard]] bool settled(I v) const { return state_.settled(v); }
  /// The settled entries of the last push, sorted by node id.
  [[nodiscard]] sparse_row<I, V> result() const {
    std::vector<std::pair<I, V>> e;
    for (I v : settled_nodes()) e.emplace_back(v, estimate(v));
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

  /// Resets the state of the last push in O(its work).
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
  const void* indptr_key_ = nullptr;
  const void* indices_key_ = nullptr;
  std::int64_t nnz_ = -1;
  double alpha_ = -1.0;
  double eps_ = -1.0;
};

/// Forward push from `source` on a graph preprocessed by the caller (see `push_params`).
/// Leaves the result in `ws` (`ws.result()`, `ws.estimate(v)`) and returns the work done.
/// Checks the parameters and the source id (`ibmb::out_of_range`), not the graph structure
/// (call `g.validate()` once yourself for untrusted input). Reusing `ws` on the same graph
/// costs O(the push's work); the workspace binds to the graph's arrays, so after modifying
/// the graph in place call `ws.invalidate()` before the next push.
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
        for (I v : ws.settled_nodes()) entries.emplace_back(ws.estimate(v), v);
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
