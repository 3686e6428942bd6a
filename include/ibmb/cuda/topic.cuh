// ibmb::cuda: topic-sensitive PPR for many teleport sets on the GPU, by the same power
// iteration as the CPU path (ppr/topic.hpp), X <- (1 - alpha) P X + alpha T on N x B
// row-major blocks, with the product done by cuSPARSE SpMM (CSR x dense row-major block).
//
// How the CPU's formulas map onto one SpMM plus one fused element-wise kernel:
//  - row transition (P = D^-1 A): the CSR carries 1 for every entry; the kernel scales row v
//    of the product by 1/deg(v): y = keep * (sum * (1/d_v)), the CPU's expression;
//  - column transition (P = A D^-1): the CSR entry (v, u) carries 1/deg(u), which is the
//    CPU's "scale the input rows" folded into the matrix (no extra pass over X);
//  - a node without entries keeps its own mass (y = keep * x), as on the CPU;
//  - teleport mass alpha/|S| is added after every product, in the CPU's order;
//  - with tolerance > 0, the same kernel sums |y - x| per column (double) and the iteration
//    stops once every column's L1 change is below the tolerance.
// Only summation order differs from the CPU (cuSPARSE's), so scores agree to float rounding.
//
// Synchronization: the stream is synchronized once per iteration only when tolerance > 0
// (the stop decision needs the per-column changes on the host), and by `topic_ppr_topk` once
// per block to bring the lists back. Nothing is allocated inside the iteration loop.
#pragma once

#include <cuda_runtime.h>
#include <cusparse.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <span>
#include <type_traits>
#include <vector>

#include "ibmb/cuda/csr.cuh"
#include "ibmb/cuda/memory.cuh"
#include "ibmb/cuda/resources.cuh"
#include "ibmb/cuda/topk.cuh"
#include "ibmb/ppr/topic.hpp"
#include "ibmb/ppr/topic_types.hpp"

namespace ibmb::cuda {

/// Largest block of teleport sets the GPU path takes (per-column sums live in shared memory).
inline constexpr int topic_max_block_columns = 4096;

namespace detail {

template <class V>
constexpr cudaDataType cuda_value_type() {
  static_assert(std::is_same_v<V, float> || std::is_same_v<V, double>,
                "ibmb::cuda: scores must be float or double");
  return std::is_same_v<V, float> ? CUDA_R_32F : CUDA_R_64F;
}

template <class J>
constexpr cusparseIndexType_t cusparse_index_type() {
  static_assert(std::is_same_v<J, std::int32_t> || std::is_same_v<J, std::int64_t>,
                "ibmb::cuda: cuSPARSE indices are int32 or int64");
  return std::is_same_v<J, std::int32_t> ? CUSPARSE_INDEX_32I : CUSPARSE_INDEX_64I;
}

/// RAII for cuSPARSE descriptors (destroyed in reverse order of creation).
struct sp_mat_guard {
  cusparseConstSpMatDescr_t d = nullptr;
  ~sp_mat_guard() {
    if (d) cusparseDestroySpMat(d);
  }
};
struct dn_mat_guard {
  cusparseDnMatDescr_t d = nullptr;
  ~dn_mat_guard() {
    if (d) cusparseDestroyDnMat(d);
  }
};

/// Row pointers narrowed/widened to J and 1/deg(v) (0 for degree 0), as the CPU computes it.
template <class J, class I, class O, class W, class V>
__global__ void topic_prepare_rows(device_csr_view<I, O, W> g, J* ptr, V* inv_deg) {
  const std::int64_t n = g.num_rows;
  for (std::int64_t v = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; v <= n;
       v += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    ptr[v] = static_cast<J>(g.indptr[v]);
    if (v < n) {
      const O d = g.indptr[v + 1] - g.indptr[v];
      inv_deg[v] = d > 0 ? V{1} / static_cast<V>(d) : V{0};
    }
  }
}

/// Column indices as J and the matrix values: 1 (row transition) or 1/deg(column).
template <class J, class I, class O, class W, class V>
__global__ void topic_prepare_entries(device_csr_view<I, O, W> g, const V* inv_deg, bool column,
                                      J* idx, V* val) {
  const std::int64_t nnz = g.num_edges;
  for (std::int64_t p = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; p < nnz;
       p += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    const I u = g.indices[p];
    idx[p] = static_cast<J>(u);
    val[p] = column ? inv_deg[u] : V{1};
  }
}

/// x0 = T / alpha: teleport entries of node v (tptr/tcol/tval, grouped by node in the CPU's
/// order) added to x[v * B + col].
template <class V>
__global__ void topic_init(std::int64_t n, int B, V alpha, const std::int64_t* tptr,
                           const int* tcol, const V* tval, V* x) {
  for (std::int64_t v = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; v < n;
       v += static_cast<std::int64_t>(gridDim.x) * blockDim.x)
    for (std::int64_t t = tptr[v]; t < tptr[v + 1]; ++t) x[v * B + tcol[t]] += tval[t] / alpha;
}

/// y <- keep * (y * row_scale) (or keep * x for a node without entries), plus teleport, and
/// optionally change[j] += sum_v |y - x|. Threads are laid out as (row lane, column) so each
/// thread keeps one column and accumulates its change in a register.
template <class V, class O>
__global__ void topic_finalize(std::int64_t n, int B, V keep, const O* indptr, const V* row_scale,
                               const V* x, V* y, const std::int64_t* tptr, const int* tcol,
                               const V* tval, double* change) {
  extern __shared__ double s_change[];
  const bool want_change = change != nullptr;
  if (want_change) {
    for (int j = threadIdx.x; j < B; j += blockDim.x) s_change[j] = 0.0;
    __syncthreads();
  }
  const std::int64_t g = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x;
  const std::int64_t lanes = static_cast<std::int64_t>(gridDim.x) * blockDim.x / B;
  if (g < lanes * B) {
    const int j = static_cast<int>(g % B);
    double local = 0.0;
    for (std::int64_t v = g / B; v < n; v += lanes) {
      const std::int64_t e = v * B + j;
      V out;
      if (indptr[v + 1] == indptr[v]) {
        out = keep * x[e];
      } else {
        const V rs = row_scale ? row_scale[v] : V{1};
        out = keep * (y[e] * rs);
      }
      for (std::int64_t t = tptr[v]; t < tptr[v + 1]; ++t)
        if (tcol[t] == j) out += tval[t];
      y[e] = out;
      if (want_change) local += fabs(static_cast<double>(out) - static_cast<double>(x[e]));
    }
    if (want_change) atomicAdd(&s_change[j], local);
  }
  if (want_change) {
    __syncthreads();
    for (int j = threadIdx.x; j < B; j += blockDim.x) atomicAdd(&change[j], s_change[j]);
  }
}

/// Blocks for `topic_finalize`: enough threads for every column at least once, about four
/// elements per thread, at most 4096 blocks.
inline unsigned topic_finalize_grid(std::int64_t n, int B) {
  const std::int64_t want = (n * B + 4 * block_threads - 1) / (4 * block_threads);
  const std::int64_t min_blocks = (B + block_threads - 1) / block_threads;
  return static_cast<unsigned>(std::clamp<std::int64_t>(want, min_blocks, 4096));
}

/// Teleport entries of sets [first, first + width) grouped by node, in the CPU's order within
/// a node (set by set, member by member): ptr has n + 1 entries.
template <class I, class V>
void teleport_by_node(teleport_sets<I> sets, std::int64_t first, int width, double alpha,
                      std::int64_t n, std::vector<std::int64_t>& ptr, std::vector<int>& col,
                      std::vector<V>& val) {
  ptr.assign(static_cast<std::size_t>(n) + 1, 0);
  for (int j = 0; j < width; ++j)
    for (auto v : sets.set(first + j)) ++ptr[static_cast<std::size_t>(v) + 1];
  for (std::int64_t v = 0; v < n; ++v)
    ptr[static_cast<std::size_t>(v) + 1] += ptr[static_cast<std::size_t>(v)];
  const auto total = static_cast<std::size_t>(ptr[static_cast<std::size_t>(n)]);
  col.resize(total);
  val.resize(total);
  std::vector<std::int64_t> fill(ptr.begin(), ptr.end() - 1);
  for (int j = 0; j < width; ++j) {
    auto s = sets.set(first + j);
    const V m = static_cast<V>(alpha / static_cast<double>(s.size()));
    for (auto v : s) {
      const auto at = static_cast<std::size_t>(fill[static_cast<std::size_t>(v)]++);
      col[at] = j;
      val[at] = m;
    }
  }
}

template <class J, class V, class I, class O, class W, class Consume>
topic_ppr_stats topic_ppr_blocks_impl(const resources& res, device_csr_view<I, O, W> g,
                                      teleport_sets<I> sets, const topic_ppr_params& p,
                                      Consume& consume) {
  const cudaStream_t s = res.stream();
  const std::int64_t n = g.num_rows;
  const std::int64_t nnz = g.num_edges;
  const std::int64_t total = sets.size();
  const int bmax =
      static_cast<int>(std::min<std::int64_t>(p.block_columns, std::max<std::int64_t>(total, 1)));
  const bool column = p.transition == ppr_transition::column;

  // The operator: J-typed CSR with the transition's values, and 1/deg for the row scaling.
  device_buffer<J> ptr(static_cast<std::size_t>(n) + 1, s), idx(static_cast<std::size_t>(nnz), s);
  device_buffer<V> val(static_cast<std::size_t>(nnz), s), inv_deg(static_cast<std::size_t>(n), s);
  topic_prepare_rows<J><<<grid_for(n + 1), block_threads, 0, s>>>(g, ptr.data(), inv_deg.data());
  check_launch();
  if (nnz > 0) {
    topic_prepare_entries<J>
        <<<grid_for(nnz), block_threads, 0, s>>>(g, inv_deg.data(), column, idx.data(), val.data());
    check_launch();
  }
  // cuSPARSE is skipped for a graph without entries (every node then keeps its mass).
  const bool has_edges = nnz > 0;
  sp_mat_guard A;
  if (has_edges)
    IBMB_CUSPARSE_TRY(cusparseCreateConstCsr(&A.d, n, n, nnz, ptr.data(), idx.data(), val.data(),
                                             cusparse_index_type<J>(), cusparse_index_type<J>(),
                                             CUSPARSE_INDEX_BASE_ZERO, cuda_value_type<V>()));

  // Blocks, teleport lists, change sums and the cuSPARSE workspace: sized before any loop.
  const std::size_t block_elems = static_cast<std::size_t>(n) * static_cast<std::size_t>(bmax);
  device_buffer<V> buf0(std::max<std::size_t>(block_elems, 1), s),
      buf1(std::max<std::size_t>(block_elems, 1), s);
  device_buffer<std::int64_t> tptr(static_cast<std::size_t>(n) + 1, s);
  device_buffer<int> tcol;
  device_buffer<V> tval;
  device_buffer<double> change(static_cast<std::size_t>(bmax), s);
  pinned_buffer<double> change_host(p.tolerance > 0 ? static_cast<std::size_t>(bmax) : 0);
  device_buffer<std::byte> work;
  std::vector<std::int64_t> h_tptr;
  std::vector<int> h_tcol;
  std::vector<V> h_tval;
  const V one{1}, zero{0};
  const V keep = static_cast<V>(1 - p.alpha);

  topic_ppr_stats st;
  for (std::int64_t first = 0; first < total; first += p.block_columns) {
    const int width = static_cast<int>(std::min<std::int64_t>(p.block_columns, total - first));
    teleport_by_node<I, V>(sets, first, width, p.alpha, n, h_tptr, h_tcol, h_tval);
    // The host vectors are reused by the next block: wait for these copies before refilling.
    IBMB_CUDA_TRY(cudaMemcpyAsync(tptr.data(), h_tptr.data(), h_tptr.size() * sizeof(std::int64_t),
                                  cudaMemcpyHostToDevice, s));
    tcol.reserve(std::max<std::size_t>(h_tcol.size(), 1), s);
    tval.reserve(std::max<std::size_t>(h_tval.size(), 1), s);
    IBMB_CUDA_TRY(cudaMemcpyAsync(tcol.data(), h_tcol.data(), h_tcol.size() * sizeof(int),
                                  cudaMemcpyHostToDevice, s));
    IBMB_CUDA_TRY(cudaMemcpyAsync(tval.data(), h_tval.data(), h_tval.size() * sizeof(V),
                                  cudaMemcpyHostToDevice, s));

    dn_mat_guard d0, d1;
    IBMB_CUSPARSE_TRY(cusparseCreateDnMat(&d0.d, n, width, width, buf0.data(), cuda_value_type<V>(),
                                          CUSPARSE_ORDER_ROW));
    IBMB_CUSPARSE_TRY(cusparseCreateDnMat(&d1.d, n, width, width, buf1.data(), cuda_value_type<V>(),
                                          CUSPARSE_ORDER_ROW));
    std::size_t need0 = 0, need1 = 0;
    if (has_edges) {
      IBMB_CUSPARSE_TRY(cusparseSpMM_bufferSize(
          res.sparse(), CUSPARSE_OPERATION_NON_TRANSPOSE, CUSPARSE_OPERATION_NON_TRANSPOSE, &one,
          A.d, d0.d, &zero, d1.d, cuda_value_type<V>(), CUSPARSE_SPMM_ALG_DEFAULT, &need0));
      IBMB_CUSPARSE_TRY(cusparseSpMM_bufferSize(
          res.sparse(), CUSPARSE_OPERATION_NON_TRANSPOSE, CUSPARSE_OPERATION_NON_TRANSPOSE, &one,
          A.d, d1.d, &zero, d0.d, cuda_value_type<V>(), CUSPARSE_SPMM_ALG_DEFAULT, &need1));
    }
    work.reserve(std::max<std::size_t>({need0, need1, 1}), s);

    const std::size_t elems = static_cast<std::size_t>(n) * static_cast<std::size_t>(width);
    if (elems > 0) IBMB_CUDA_TRY(cudaMemsetAsync(buf0.data(), 0, elems * sizeof(V), s));
    topic_init<V><<<grid_for(n), block_threads, 0, s>>>(
        n, width, static_cast<V>(p.alpha), tptr.data(), tcol.data(), tval.data(), buf0.data());
    check_launch();

    V* x = buf0.data();
    V* y = buf1.data();
    cusparseDnMatDescr_t dx = d0.d, dy = d1.d;
    const unsigned fin_grid = topic_finalize_grid(n, width);
    const std::size_t fin_shared =
        p.tolerance > 0 ? static_cast<std::size_t>(width) * sizeof(double) : 0;
    int it = 0;
    double max_change = 0;
    for (it = 1; it <= p.max_iterations; ++it) {
      if (has_edges) {
        IBMB_CUSPARSE_TRY(cusparseSpMM(
            res.sparse(), CUSPARSE_OPERATION_NON_TRANSPOSE, CUSPARSE_OPERATION_NON_TRANSPOSE, &one,
            A.d, dx, &zero, dy, cuda_value_type<V>(), CUSPARSE_SPMM_ALG_DEFAULT, work.data()));
      }
      if (p.tolerance > 0)
        IBMB_CUDA_TRY(cudaMemsetAsync(change.data(), 0, width * sizeof(double), s));
      topic_finalize<V, J><<<fin_grid, block_threads, fin_shared, s>>>(
          n, width, keep, ptr.data(), column ? nullptr : inv_deg.data(), x, y, tptr.data(),
          tcol.data(), tval.data(), p.tolerance > 0 ? change.data() : nullptr);
      check_launch();
      if (p.tolerance > 0) {
        IBMB_CUDA_TRY(cudaMemcpyAsync(change_host.data(), change.data(), width * sizeof(double),
                                      cudaMemcpyDeviceToHost, s));
        IBMB_CUDA_TRY(cudaStreamSynchronize(s));  // the stop decision needs the sums
        max_change = *std::max_element(change_host.data(), change_host.data() + width);
      }
      std::swap(x, y);
      std::swap(dx, dy);
      if (p.tolerance > 0 && max_change < p.tolerance) break;
    }
    ++st.blocks;
    st.iterations += std::min(it, p.max_iterations);
    st.max_final_change = std::max(st.max_final_change, max_change);
    consume(first, width, static_cast<const V*>(x));
    // h_tptr & co. are refilled by the next block; the stream must be past their copies.
    IBMB_CUDA_TRY(cudaStreamSynchronize(s));
    report(p.progress, "topic_ppr", first + width, total);
  }
  return st;
}

}  // namespace detail

/// Topic-sensitive PPR of every teleport set on the GPU, block by block:
/// `consume(first_set, width, scores)` receives a *device* pointer to the N x width row-major
/// block (score of node v for set first_set + j at scores[v * width + j]), valid until it
/// returns; work it enqueues on `res.stream()` is ordered before the block is overwritten.
/// Same parameters, normalization, teleport and stopping rules as `ibmb::topic_ppr_blocks`.
/// The graph is taken as unweighted (degrees count entries). `block_columns` is capped at
/// `topic_max_block_columns`. V is float or double.
template <class V = float, class I, class O, class W, class Consume>
topic_ppr_stats topic_ppr_blocks(const resources& res, device_csr_view<I, O, W> g,
                                 teleport_sets<I> sets, const topic_ppr_params& p,
                                 Consume&& consume) {
  ::ibmb::detail::check_teleport_sets(csr_view<I, O, W>(g.num_rows, g.num_cols, {}, {}), sets, p);
  IBMB_EXPECTS(p.block_columns <= topic_max_block_columns,
               "cuda topic PPR: block_columns = ", p.block_columns, " exceeds ",
               topic_max_block_columns);
  constexpr std::int64_t i32max = std::numeric_limits<std::int32_t>::max();
  if (static_cast<std::int64_t>(g.num_rows) < i32max &&
      static_cast<std::int64_t>(g.num_edges) < i32max)
    return detail::topic_ppr_blocks_impl<std::int32_t, V>(res, g, sets, p, consume);
  return detail::topic_ppr_blocks_impl<std::int64_t, V>(res, g, sets, p, consume);
}

/// The `k` highest-scoring nodes of each set among positive scores (ties by smaller id),
/// scores descending: the GPU counterpart of `ibmb::topic_ppr_topk`, same result layout.
/// Synchronizes the stream once per block to bring the lists back.
template <class I, class O, class W>
topk_lists<I, float> topic_ppr_topk(const resources& res, device_csr_view<I, O, W> g,
                                    teleport_sets<I> sets, std::int64_t k,
                                    const topic_ppr_params& p, topic_ppr_stats* stats = nullptr) {
  IBMB_EXPECTS(k >= 0, "k must be >= 0, got ", k);
  const std::int64_t n = g.num_rows;
  const std::int64_t kk = std::min<std::int64_t>(k, n);
  const int bmax = static_cast<int>(std::clamp<std::int64_t>(
      std::min<std::int64_t>(p.block_columns, sets.size()), 1, topic_max_block_columns));
  topk_selector sel;
  if (kk > 0) sel.prepare(n, bmax, kk, res);
  topk_lists<I, float> out;
  std::vector<std::int64_t> h_ids;
  std::vector<float> h_sc;
  auto st = topic_ppr_blocks<float>(res, g, sets, p, [&](std::int64_t, int width, const float* x) {
    const auto m = static_cast<std::size_t>(width) * static_cast<std::size_t>(kk);
    if (kk > 0) {
      sel.select(x, width, res);
      h_ids = to_host(sel.ids(), m, res.stream());
      h_sc = to_host(sel.scores(), m, res.stream());
    }
    for (int j = 0; j < width; ++j) {
      for (std::int64_t t = 0; t < kk; ++t) {
        const auto at = static_cast<std::size_t>(j) * static_cast<std::size_t>(kk) +
                        static_cast<std::size_t>(t);
        if (h_ids[at] < 0) break;
        out.ids.push_back(static_cast<I>(h_ids[at]));
        out.scores.push_back(h_sc[at]);
      }
      out.ptr.push_back(static_cast<std::int64_t>(out.ids.size()));
    }
  });
  if (stats) *stats = st;
  return out;
}

}  // namespace ibmb::cuda
