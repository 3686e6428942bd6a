// ibmb::cuda: induced-subgraph extraction and feature gather for a whole `batch_plan` on the
// GPU, producing the same arrays as `ibmb::materialize` (batch/materialize.hpp) with
// `add_self_loops = false`: per batch the global ids with the outputs first, the local CSR
// (columns sorted by local id, repeated entries in their global-row order) carrying the
// *global* normalization's weights, labels and float32 features.
//
// All batches are processed at once, without a global->local map: a batch's nodes are
// sorted, so membership is a binary search in them, and the local id of the node found at
// sorted position q is perm[q] (outputs-first order). Row lengths are counted, scanned (CUB),
// filled in global-row order and then put in column order by a CUB *stable* segmented sort,
// which keeps repeated entries in their global order as the CPU does.
//
// Synchronization: one stream synchronization to learn the total edge count (it sizes the
// edge arrays); everything else is stream-ordered.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <cub/device/device_scan.cuh>
#include <cub/device/device_segmented_sort.cuh>
#include <span>
#include <vector>

#include "ibmb/batch/plan.hpp"
#include "ibmb/cuda/csr.cuh"
#include "ibmb/cuda/memory.cuh"
#include "ibmb/cuda/resources.cuh"
#include "ibmb/graph/dataset.hpp"
#include "ibmb/graph/normalize.hpp"

namespace ibmb::cuda {

/// One batch in device memory: the layout of `ibmb::batch_view`, device pointers.
struct device_batch_view {
  std::int64_t index = 0;
  std::int64_t num_outputs = 0;
  std::int64_t num_nodes = 0;
  std::int64_t num_edges = 0;
  std::int64_t num_features = 0;
  const std::int64_t* node_ids = nullptr;  ///< num_nodes, outputs first
  const std::int64_t* labels = nullptr;    ///< num_nodes or null
  const std::int64_t* indptr = nullptr;    ///< num_nodes + 1, local
  const std::int64_t* indices = nullptr;   ///< num_edges, local ids
  const float* weights = nullptr;          ///< num_edges
  const float* features = nullptr;         ///< num_nodes x num_features or null

  [[nodiscard]] device_csr_view<std::int64_t, std::int64_t, float> graph() const {
    return {num_nodes, num_nodes, num_edges, indptr, indices, weights};
  }
};

/// Every batch of a plan in device memory, in the store's section layout (see
/// docs/file-format.md): node_ptr/edge_ptr (B + 1), num_outputs (B), node_ids (NT),
/// local_indptr (NT + B: batch b's rows start at node_ptr[b] + b), local_indices and
/// edge_weights (ET), labels (NT, optional), features (NT x F float32, optional).
struct device_batches {
  std::int64_t num_batches = 0;
  std::int64_t total_nodes = 0;
  std::int64_t total_edges = 0;
  std::int64_t num_features = 0;
  std::vector<std::int64_t> host_node_ptr, host_edge_ptr, host_num_outputs;
  device_buffer<std::int64_t> node_ptr, edge_ptr, num_outputs, node_ids, local_indptr,
      local_indices, labels;
  device_buffer<float> edge_weights, features;

  [[nodiscard]] device_batch_view batch(std::int64_t b) const {
    IBMB_EXPECTS_AS(out_of_range, b >= 0 && b < num_batches, "device_batches: batch ", b,
                    " outside [0, ", num_batches, ")");
    const auto ub = static_cast<std::size_t>(b);
    const std::int64_t n0 = host_node_ptr[ub], e0 = host_edge_ptr[ub];
    device_batch_view v;
    v.index = b;
    v.num_outputs = host_num_outputs[ub];
    v.num_nodes = host_node_ptr[ub + 1] - n0;
    v.num_edges = host_edge_ptr[ub + 1] - e0;
    v.num_features = num_features;
    v.node_ids = node_ids.data() + n0;
    v.labels = labels.empty() ? nullptr : labels.data() + n0;
    v.indptr = local_indptr.data() + n0 + b;
    v.indices = local_indices.data() + e0;
    v.weights = edge_weights.data() + e0;
    v.features = features.empty() ? nullptr : features.data() + n0 * num_features;
    return v;
  }
  [[nodiscard]] std::size_t bytes() const {
    return node_ptr.bytes() + edge_ptr.bytes() + num_outputs.bytes() + node_ids.bytes() +
           local_indptr.bytes() + local_indices.bytes() + labels.bytes() + edge_weights.bytes() +
           features.bytes();
  }
};

namespace detail {

#define IBMB_CUDA_GRID_STRIDE(var, count)                                                   \
  for (std::int64_t var = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; \
       var < (count); var += static_cast<std::int64_t>(gridDim.x) * blockDim.x)

/// First position in [lo, hi) of `a` whose value is >= x.
template <class T, class U>
__device__ inline std::int64_t lower_bound_dev(const T* a, std::int64_t lo, std::int64_t hi, U x) {
  while (lo < hi) {
    const std::int64_t mid = lo + (hi - lo) / 2;
    if (a[mid] < x)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

/// Batch holding stored position q: the last b with node_ptr[b] <= q (empty batches skipped).
__device__ inline std::int64_t batch_of(const std::int64_t* node_ptr, std::int64_t B,
                                        std::int64_t q) {
  std::int64_t lo = 0, hi = B;  // node_ptr[lo] <= q < node_ptr[hi]
  while (hi - lo > 1) {
    const std::int64_t mid = lo + (hi - lo) / 2;
    if (node_ptr[mid] <= q)
      lo = mid;
    else
      hi = mid;
  }
  return lo;
}

/// The global normalization of normalize.hpp, in the same double arithmetic.
template <class I, class O>
__global__ void extract_degree_scale(device_csr_view<I, O, float> g, int kind, double* scale) {
  IBMB_CUDA_GRID_STRIDE(v, static_cast<std::int64_t>(g.num_rows)) {
    double d;
    if (!g.weights) {
      d = static_cast<double>(g.indptr[v + 1] - g.indptr[v]);
    } else {
      d = 0;
      for (O p = g.indptr[v]; p < g.indptr[v + 1]; ++p) d += static_cast<double>(g.weights[p]);
    }
    scale[v] = d > 0 ? (kind == 1 ? 1.0 / d : 1.0 / sqrt(d)) : 0.0;
  }
}

template <class I, class O>
__global__ void extract_weights(device_csr_view<I, O, float> g, int kind, const double* scale,
                                float* w) {
  IBMB_CUDA_GRID_STRIDE(v, static_cast<std::int64_t>(g.num_rows)) {
    for (O p = g.indptr[v]; p < g.indptr[v + 1]; ++p) {
      const double base = g.weights ? static_cast<double>(g.weights[p]) : 1.0;
      double x = base;
      if (kind != 0) {
        x = base * scale[v];
        if (kind == 2) x *= scale[g.indices[p]];
      }
      w[p] = static_cast<float>(x);
    }
  }
}

/// is_out[q] = 1 when the node at sorted position q is one of its batch's outputs.
inline __global__ void extract_flag_outputs(const std::int64_t* node_ptr,
                                            const std::int64_t* out_ptr, const std::int64_t* nodes,
                                            const std::int64_t* outputs, std::int64_t B,
                                            std::int64_t NT, std::int64_t* is_out) {
  IBMB_CUDA_GRID_STRIDE(q, NT) {
    const std::int64_t b = batch_of(node_ptr, B, q);
    const std::int64_t o0 = out_ptr[b], o1 = out_ptr[b + 1];
    const std::int64_t at = lower_bound_dev(outputs, o0, o1, nodes[q]);
    is_out[q] = at < o1 && outputs[at] == nodes[q] ? 1 : 0;
  }
}

/// perm[q] = local id (outputs first) of sorted position q; ids[n0 + perm[q]] = nodes[q].
inline __global__ void extract_order(const std::int64_t* node_ptr, const std::int64_t* out_ptr,
                                     const std::int64_t* nodes, const std::int64_t* is_out,
                                     const std::int64_t* out_before, std::int64_t B,
                                     std::int64_t NT, std::int64_t* perm, std::int64_t* ids) {
  IBMB_CUDA_GRID_STRIDE(q, NT) {
    const std::int64_t b = batch_of(node_ptr, B, q);
    const std::int64_t n0 = node_ptr[b];
    const std::int64_t nout = out_ptr[b + 1] - out_ptr[b];
    const std::int64_t ob = out_before[q] - out_before[n0];
    const std::int64_t local = is_out[q] ? ob : nout + (q - n0) - ob;
    perm[q] = local;
    ids[n0 + local] = nodes[q];
  }
}

/// Entries of stored row r (global node ids[r]) whose column lies in the batch.
template <class I, class O>
__global__ void extract_count(device_csr_view<I, O, float> g, const std::int64_t* node_ptr,
                              const std::int64_t* nodes, const std::int64_t* ids, std::int64_t B,
                              std::int64_t NT, std::int64_t* cnt) {
  IBMB_CUDA_GRID_STRIDE(r, NT) {
    const std::int64_t b = batch_of(node_ptr, B, r);
    const std::int64_t n0 = node_ptr[b], n1 = node_ptr[b + 1];
    const std::int64_t u = ids[r];
    std::int64_t c = 0;
    for (O p = g.indptr[u]; p < g.indptr[u + 1]; ++p) {
      const std::int64_t w = g.indices[p];
      const std::int64_t at = lower_bound_dev(nodes, n0, n1, w);
      c += at < n1 && nodes[at] == w;
    }
    cnt[r] = c;
  }
}

/// Local CSR pointers of every batch and edge_ptr from the scanned row lengths `start`
/// (NT + 1 entries).
inline __global__ void extract_pointers(const std::int64_t* node_ptr, const std::int64_t* start,
                                        std::int64_t B, std::int64_t NT, std::int64_t* indptr,
                                        std::int64_t* edge_ptr) {
  IBMB_CUDA_GRID_STRIDE(q, NT) {
    const std::int64_t b = batch_of(node_ptr, B, q);
    indptr[q + b] = start[q] - start[node_ptr[b]];
  }
  IBMB_CUDA_GRID_STRIDE(b, B + 1) {
    edge_ptr[b] = start[node_ptr[b]];
    if (b < B) indptr[node_ptr[b + 1] + b] = start[node_ptr[b + 1]] - start[node_ptr[b]];
  }
}

/// Entries of stored row r in global-row order: local column and global weight.
template <class I, class O>
__global__ void extract_fill(device_csr_view<I, O, float> g, const float* gw,
                             const std::int64_t* node_ptr, const std::int64_t* nodes,
                             const std::int64_t* ids, const std::int64_t* perm,
                             const std::int64_t* start, std::int64_t B, std::int64_t NT,
                             std::int64_t* col, float* w) {
  IBMB_CUDA_GRID_STRIDE(r, NT) {
    const std::int64_t b = batch_of(node_ptr, B, r);
    const std::int64_t n0 = node_ptr[b], n1 = node_ptr[b + 1];
    const std::int64_t u = ids[r];
    std::int64_t at_out = start[r];
    for (O p = g.indptr[u]; p < g.indptr[u + 1]; ++p) {
      const std::int64_t x = g.indices[p];
      const std::int64_t at = lower_bound_dev(nodes, n0, n1, x);
      if (at < n1 && nodes[at] == x) {
        col[at_out] = perm[at];
        w[at_out] = gw[p];
        ++at_out;
      }
    }
  }
}

inline __global__ void extract_gather(const std::int64_t* ids, std::int64_t NT,
                                      const float* features, std::int64_t F,
                                      const std::int64_t* labels, float* out_features,
                                      std::int64_t* out_labels) {
  if (labels) {
    IBMB_CUDA_GRID_STRIDE(r, NT) out_labels[r] = labels[ids[r]];
  }
  if (features) {
    IBMB_CUDA_GRID_STRIDE(e, NT * F) {
      const std::int64_t r = e / F, f = e % F;
      out_features[e] = features[ids[r] * F + f];
    }
  }
}

}  // namespace detail

/// Extracts every batch of `plan` from `g` (the graph as the batches see it: preprocess it
/// first, as for `materialize`). `features` (N x F float32, device) and `labels` (N, device)
/// are optional (null). Throws `ibmb::invalid_argument` when the plan does not fit the graph.
template <class I, class O>
device_batches extract_batches(const resources& res, device_csr_view<I, O, float> g,
                               const batch_plan<I>& plan, normalization norm,
                               const float* features = nullptr, std::int64_t num_features = 0,
                               const std::int64_t* labels = nullptr) {
  IBMB_EXPECTS(g.num_rows == g.num_cols, "cuda extract_batches: the graph is ", g.num_rows, " x ",
               g.num_cols, " (expected square)");
  try {
    plan.validate(g.num_rows);
  } catch (const format_error& e) {
    throw invalid_argument(::ibmb::detail::concat("cuda extract_batches: ", e.what()));
  }
  IBMB_EXPECTS(num_features >= 0 && (features || num_features == 0),
               "cuda extract_batches: num_features = ", num_features, " without features");
  const cudaStream_t s = res.stream();
  const auto B = static_cast<std::int64_t>(plan.num_batches());
  const auto NT = static_cast<std::int64_t>(plan.nodes.size());
  const auto uNT = static_cast<std::size_t>(NT);
  const int kind = norm == normalization::none ? 0 : norm == normalization::row ? 1 : 2;

  device_batches out;
  out.num_batches = B;
  out.total_nodes = NT;
  out.num_features = features ? num_features : 0;
  out.host_node_ptr = plan.node_ptr;
  for (std::int64_t b = 0; b < B; ++b)
    out.host_num_outputs.push_back(plan.output_ptr[static_cast<std::size_t>(b) + 1] -
                                   plan.output_ptr[static_cast<std::size_t>(b)]);

  // Plan arrays as int64 on the device.
  const std::vector<std::int64_t> h_nodes(plan.nodes.begin(), plan.nodes.end());
  const std::vector<std::int64_t> h_outputs(plan.outputs.begin(), plan.outputs.end());
  out.node_ptr = to_device(std::span<const std::int64_t>(plan.node_ptr), s);
  auto out_ptr = to_device(std::span<const std::int64_t>(plan.output_ptr), s);
  out.num_outputs = to_device(std::span<const std::int64_t>(out.host_num_outputs), s);
  auto nodes = to_device(std::span<const std::int64_t>(h_nodes), s);
  auto outputs = to_device(std::span<const std::int64_t>(h_outputs), s);

  // Global weights.
  const auto N = static_cast<std::int64_t>(g.num_rows);
  const auto nnz = static_cast<std::int64_t>(g.num_edges);
  device_buffer<double> scale(static_cast<std::size_t>(N), s);
  device_buffer<float> gw(static_cast<std::size_t>(nnz), s);
  detail::extract_degree_scale<<<detail::grid_for(N), detail::block_threads, 0, s>>>(g, kind,
                                                                                     scale.data());
  detail::check_launch();
  detail::extract_weights<<<detail::grid_for(N), detail::block_threads, 0, s>>>(
      g, kind, scale.data(), gw.data());
  detail::check_launch();

  // Outputs-first order.
  device_buffer<std::int64_t> is_out(uNT + 1, s), out_before(uNT + 1, s), perm(uNT, s);
  out.node_ids.reset(uNT, s);
  is_out.fill_bytes(0);
  detail::extract_flag_outputs<<<detail::grid_for(NT), detail::block_threads, 0, s>>>(
      out.node_ptr.data(), out_ptr.data(), nodes.data(), outputs.data(), B, NT, is_out.data());
  detail::check_launch();
  device_buffer<std::byte> temp;
  auto exclusive_sum = [&](const std::int64_t* in, std::int64_t* dst, std::int64_t items) {
    std::size_t bytes = 0;
    IBMB_CUDA_TRY(cub::DeviceScan::ExclusiveSum(nullptr, bytes, in, dst, items, s));
    temp.reserve(std::max<std::size_t>(bytes, 1), s);
    bytes = temp.size();
    IBMB_CUDA_TRY(cub::DeviceScan::ExclusiveSum(temp.data(), bytes, in, dst, items, s));
  };
  exclusive_sum(is_out.data(), out_before.data(), NT + 1);
  detail::extract_order<<<detail::grid_for(NT), detail::block_threads, 0, s>>>(
      out.node_ptr.data(), out_ptr.data(), nodes.data(), is_out.data(), out_before.data(), B, NT,
      perm.data(), out.node_ids.data());
  detail::check_launch();

  // Row lengths, pointers.
  device_buffer<std::int64_t> cnt(uNT + 1, s), start(uNT + 1, s);
  cnt.fill_bytes(0);
  detail::extract_count<<<detail::grid_for(NT), detail::block_threads, 0, s>>>(
      g, out.node_ptr.data(), nodes.data(), out.node_ids.data(), B, NT, cnt.data());
  detail::check_launch();
  exclusive_sum(cnt.data(), start.data(), NT + 1);
  out.local_indptr.reset(uNT + static_cast<std::size_t>(B), s);
  out.edge_ptr.reset(static_cast<std::size_t>(B) + 1, s);
  detail::extract_pointers<<<detail::grid_for(NT + B + 1), detail::block_threads, 0, s>>>(
      out.node_ptr.data(), start.data(), B, NT, out.local_indptr.data(), out.edge_ptr.data());
  detail::check_launch();
  out.host_edge_ptr = to_host(out.edge_ptr.data(), static_cast<std::size_t>(B) + 1, s);
  const std::int64_t ET = out.host_edge_ptr.back();
  out.total_edges = ET;

  // Entries in global-row order, then stably sorted by local column within each row.
  device_buffer<std::int64_t> col(static_cast<std::size_t>(ET), s);
  device_buffer<float> w(static_cast<std::size_t>(ET), s);
  detail::extract_fill<<<detail::grid_for(NT), detail::block_threads, 0, s>>>(
      g, gw.data(), out.node_ptr.data(), nodes.data(), out.node_ids.data(), perm.data(),
      start.data(), B, NT, col.data(), w.data());
  detail::check_launch();
  out.local_indices.reset(static_cast<std::size_t>(ET), s);
  out.edge_weights.reset(static_cast<std::size_t>(ET), s);
  if (ET > 0) {
    std::size_t bytes = 0;
    IBMB_CUDA_TRY(cub::DeviceSegmentedSort::StableSortPairs(
        nullptr, bytes, col.data(), out.local_indices.data(), w.data(), out.edge_weights.data(), ET,
        NT, start.data(), start.data() + 1, s));
    temp.reserve(std::max<std::size_t>(bytes, 1), s);
    bytes = temp.size();
    IBMB_CUDA_TRY(cub::DeviceSegmentedSort::StableSortPairs(
        temp.data(), bytes, col.data(), out.local_indices.data(), w.data(), out.edge_weights.data(),
        ET, NT, start.data(), start.data() + 1, s));
  }

  // Labels and features.
  if (labels) out.labels.reset(uNT, s);
  if (features && num_features > 0)
    out.features.reset(uNT * static_cast<std::size_t>(num_features), s);
  detail::extract_gather<<<detail::grid_for(NT * std::max<std::int64_t>(out.num_features, 1)),
                           detail::block_threads, 0, s>>>(
      out.node_ids.data(), NT, out.features.empty() ? nullptr : features, out.num_features, labels,
      out.features.data(), out.labels.data());
  detail::check_launch();
  return out;
}

#undef IBMB_CUDA_GRID_STRIDE

/// Host-dataset convenience: uploads the graph, features and labels of `ds`, then extracts.
/// Synchronizes the stream before returning (the temporary uploads are released).
template <class I, class O>
device_batches extract_batches(const resources& res, const basic_dataset<I, O>& ds,
                               const batch_plan<I>& plan, normalization norm) {
  device_csr<I, O, float> g(ds.graph.view(), res);
  auto f = to_device(std::span<const float>(ds.features), res.stream());
  auto l = to_device(std::span<const std::int64_t>(ds.labels), res.stream());
  auto out = extract_batches(res, g.view(), plan, norm, ds.features.empty() ? nullptr : f.data(),
                             ds.features.empty() ? 0 : ds.num_features,
                             ds.labels.empty() ? nullptr : l.data());
  res.synchronize();
  return out;
}

}  // namespace ibmb::cuda
