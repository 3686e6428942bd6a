// ibmb::cuda: node-wise forward push on the GPU for many sources at once, with the CPU's
// semantics (ppr/push.hpp: residual starts at alpha, push v while r(v) >= alpha * eps * deg(v),
// LIFO stack, a node without entries keeps res / alpha) and the CPU's top-k (score
// descending, then id ascending, the source always kept).
//
// Design: one warp per source. Each source owns, in one workspace arena allocated before any
// loop, a bounded open-addressing hash table of `slots` entries (node id, residual r, estimate
// p, flags) and a stack of slot numbers. The warp pops one node at a time (the CPU's LIFO
// order) and its 32 lanes relax 32 neighbours at once; lanes that push a neighbour onto the
// stack do so in neighbour order (ballot + prefix count), so the stack holds exactly what the
// CPU's stack holds, and the arithmetic is the CPU's, operation by operation, in
// round-to-nearest intrinsics (no FMA contraction). On a graph without repeated entries in a
// row the estimates are therefore the CPU's bit for bit; with repeated entries the lanes add
// to the same residual by atomics and only rounding can differ.
//
// Overflow: a table holds at most slots / 2 nodes (load factor 1/2). A source whose push
// touches more nodes stops, is flagged, and is rerun in a later round with a table
// `table_growth` times larger (fewer sources per launch, same arena), up to slots >= 2 N,
// where no overflow is possible. No result is ever taken from an overflowed table.
//
// After the push, per chunk of sources: a compaction kernel writes each source's settled
// entries as 64-bit keys ((0xFFFFFFFF - bits(p)) << 32 | id; ascending = the CPU's order), a
// CUB segmented sort orders each source's keys, a take kernel keeps the first k plus the
// source, and (for the planner) a kernel lists the entries that are outputs. The stream is
// synchronized twice per chunk to bring these lists back; nothing is allocated in the loops.
#pragma once

#include <cuda_runtime.h>

#include <algorithm>
#include <bit>
#include <cfloat>
#include <climits>
#include <cstddef>
#include <cstdint>
#include <cub/device/device_scan.cuh>
#include <cub/device/device_segmented_sort.cuh>
#include <limits>
#include <span>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "ibmb/batch/nodewise.hpp"
#include "ibmb/batch/plan.hpp"
#include "ibmb/core/error.hpp"
#include "ibmb/core/progress.hpp"
#include "ibmb/cuda/csr.cuh"
#include "ibmb/cuda/memory.cuh"
#include "ibmb/cuda/resources.cuh"
#include "ibmb/partition/merge.hpp"
#include "ibmb/ppr/ppr_types.hpp"
#include "ibmb/ppr/push.hpp"

namespace ibmb::cuda {

/// Sizing of the GPU push (the algorithm's parameters are the CPU's `ppr_params`).
struct push_device_params {
  /// Hash-table slots per source in the first round (a power of two >= 128); a table holds
  /// at most slots / 2 nodes. 8192 holds the settled set of a push with eps = 2e-4 on the
  /// generator and cora; larger pushes overflow and are rerun with a larger table.
  std::int64_t table_slots = 8192;
  /// Slot factor between rounds (>= 2).
  std::int64_t table_growth = 8;
  /// Bytes of the one workspace arena (tables, stacks, sort keys, lists). 0: 40% of the free
  /// device memory, at most 8 GiB.
  std::size_t workspace_bytes = 0;
  /// At most this many sources per launch (0: no cap besides the workspace).
  std::int64_t max_chunk = 0;
};

/// What the GPU push did.
struct push_device_stats {
  std::int64_t rounds = 0;           ///< table sizes used (1 when nothing overflowed)
  std::int64_t chunks = 0;           ///< push launches over all rounds
  std::int64_t overflowed = 0;       ///< sources rerun because their first table overflowed
  std::int64_t max_table_slots = 0;  ///< largest table used
  std::size_t workspace_bytes = 0;   ///< arena + per-node arrays
};

namespace detail {

inline constexpr std::uint32_t push_flag_queued = 2u;
inline constexpr std::uint32_t push_flag_settled = 4u;

/// Per-source result of the push kernel.
struct push_source_status {
  std::int64_t pushes;
  std::int64_t edges_relaxed;
  std::int32_t entries;   ///< nodes in the table
  std::int32_t overflow;  ///< 1: the table overflowed, nothing of this source is valid
};

__device__ __forceinline__ float push_add(float a, float b) { return __fadd_rn(a, b); }
__device__ __forceinline__ float push_mul(float a, float b) { return __fmul_rn(a, b); }
__device__ __forceinline__ float push_div(float a, float b) { return __fdiv_rn(a, b); }

__device__ __forceinline__ std::uint32_t push_hash(std::uint64_t v) {
  v ^= v >> 33;
  v *= 0xff51afd7ed558ccdULL;
  v ^= v >> 33;
  v *= 0xc4ceb9fe1a85ec53ULL;
  v ^= v >> 33;
  return static_cast<std::uint32_t>(v);
}

template <class I>
__device__ __forceinline__ I push_cas(I* addr, I expected, I desired) {
  if constexpr (sizeof(I) == 8) {
    return static_cast<I>(atomicCAS(reinterpret_cast<unsigned long long*>(addr),
                                    static_cast<unsigned long long>(expected),
                                    static_cast<unsigned long long>(desired)));
  } else {
    static_assert(sizeof(I) == 4, "ibmb::cuda push: node ids are 32 or 64 bits");
    return static_cast<I>(atomicCAS(reinterpret_cast<int*>(addr), static_cast<int>(expected),
                                    static_cast<int>(desired)));
  }
}

/// Slot of node v in the table (inserting it when absent); -1 when every slot was probed.
/// Keys only ever change from -1 to a node id, so a stale read of -1 merely costs a failed CAS.
template <class I>
__device__ int push_find_or_insert(I* keys, std::uint32_t mask, I v, bool& inserted) {
  std::uint32_t h = push_hash(static_cast<std::uint64_t>(v)) & mask;
  inserted = false;
  for (std::uint32_t probe = 0; probe <= mask; ++probe) {
    const I cur = *reinterpret_cast<volatile I*>(keys + h);
    if (cur == v) return static_cast<int>(h);
    if (cur == I{-1}) {
      const I prev = push_cas(keys + h, I{-1}, v);
      if (prev == I{-1}) {
        inserted = true;
        return static_cast<int>(h);
      }
      if (prev == v) return static_cast<int>(h);
    }
    h = (h + 1) & mask;
  }
  return -1;
}

/// thr[v] = float(alpha * eps * deg(v)) in double, and FLT_MIN for a node without neighbours,
/// as `detail::push_threshold` computes it for the CPU push.
template <class I, class O, class W>
__global__ void push_thresholds(device_csr_view<I, O, W> g, double ae, float* thr) {
  const std::int64_t n = g.num_rows;
  for (std::int64_t v = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; v < n;
       v += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    const auto d = g.indptr[v + 1] - g.indptr[v];
    thr[v] = d > 0 ? static_cast<float>(__dmul_rn(ae, static_cast<double>(d))) : FLT_MIN;
  }
}

/// The push: warp w of the grid handles sources w, w + warps, ... of this chunk. Tables,
/// residuals, estimates and flags must be reset (keys to -1, the rest to 0) before the launch.
template <class I, class O, class W>
__global__ void push_warps(device_csr_view<I, O, W> g, const float* thr, const I* sources,
                           std::int64_t count, float alpha, float one_minus_alpha,
                           std::uint32_t slots, std::uint32_t max_entries, I* keys, float* res_r,
                           float* est_p, std::uint32_t* flags, std::uint32_t* stack,
                           push_source_status* status) {
  const unsigned lane = threadIdx.x & 31u;
  const unsigned lt_mask = (1u << lane) - 1u;
  const std::int64_t warp = (blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x) >> 5;
  const std::int64_t warps = (static_cast<std::int64_t>(gridDim.x) * blockDim.x) >> 5;
  const std::uint32_t mask = slots - 1u;
  for (std::int64_t s = warp; s < count; s += warps) {
    const auto base = static_cast<std::size_t>(s) * slots;
    I* K = keys + base;
    float* R = res_r + base;
    float* P = est_p + base;
    std::uint32_t* F = flags + base;
    std::uint32_t* S = stack + static_cast<std::size_t>(s) * max_entries;
    const I src = sources[s];
    if (lane == 0) {
      bool ins = false;
      const int s0 = push_find_or_insert(K, mask, src, ins);  // an empty table: never -1
      R[s0] = alpha;
      F[s0] = push_flag_queued;
      S[0] = static_cast<std::uint32_t>(s0);
    }
    __syncwarp();
    std::uint32_t sp = 1;  // warp-uniform from here on
    std::uint32_t entries = 1;
    bool overflow = false;
    std::int64_t pushes = 0, edges = 0;
    while (sp > 0) {
      --sp;
      const std::uint32_t su = S[sp];
      const I u = K[su];
      const float res = R[su];
      __syncwarp();  // every lane has read before lane 0 resets
      const O b = g.indptr[u];
      const O e = g.indptr[u + 1];
      if (lane == 0) {
        R[su] = 0.0f;
        F[su] = (F[su] & ~push_flag_queued) | push_flag_settled;
        P[su] = push_add(P[su], b == e ? push_div(res, alpha) : res);
      }
      __syncwarp();
      ++pushes;
      if (b == e) continue;  // the geometric series res * sum_k (1 - alpha)^k stays at u
      const float val = push_div(push_mul(one_minus_alpha, res), static_cast<float>(e - b));
      edges += static_cast<std::int64_t>(e - b);
      for (O k0 = b; k0 < e; k0 += 32) {
        const O k = k0 + static_cast<O>(lane);
        const bool active = k < e;
        I v = 0;
        int slot = -1;
        bool ins = false;
        if (active) {
          v = g.indices[k];
          slot = push_find_or_insert(K, mask, v, ins);
        }
        const unsigned lost = __ballot_sync(0xffffffffu, active && slot < 0);
        entries += static_cast<std::uint32_t>(__popc(__ballot_sync(0xffffffffu, ins)));
        if (lost != 0 || entries > max_entries) {
          overflow = true;
          break;
        }
        bool queue = false;
        if (active) {
          const float nr = push_add(atomicAdd(R + slot, val), val);
          if (nr >= thr[v]) queue = (atomicOr(F + slot, push_flag_queued) & push_flag_queued) == 0;
        }
        const unsigned qb = __ballot_sync(0xffffffffu, queue);
        if (queue)
          S[sp + static_cast<std::uint32_t>(__popc(qb & lt_mask))] =
              static_cast<std::uint32_t>(slot);
        sp += static_cast<std::uint32_t>(__popc(qb));
        __syncwarp();
      }
      if (overflow) break;
    }
    if (lane == 0)
      status[s] =
          push_source_status{pushes, edges, static_cast<std::int32_t>(entries), overflow ? 1 : 0};
    __syncwarp();
  }
}

/// Sort key of a settled entry: ascending order = score descending, then id ascending (p >= 0).
__device__ __forceinline__ std::uint64_t push_key(float p, std::uint64_t id) {
  return (static_cast<std::uint64_t>(0xFFFFFFFFu - __float_as_uint(p)) << 32) |
         (id & 0xFFFFFFFFull);
}

/// Settled entries of each source into keys[s * max_entries ...], count[s] of them, and the
/// segment bounds for the sort. Overflowed sources get an empty segment.
template <class I>
__global__ void push_compact(std::int64_t count, std::uint32_t slots, std::uint32_t max_entries,
                             const I* keys, const float* est_p, const std::uint32_t* flags,
                             const push_source_status* status, std::uint64_t* out,
                             std::int32_t* seg_begin, std::int32_t* seg_end) {
  const unsigned lane = threadIdx.x & 31u;
  const unsigned lt_mask = (1u << lane) - 1u;
  const std::int64_t warp = (blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x) >> 5;
  const std::int64_t warps = (static_cast<std::int64_t>(gridDim.x) * blockDim.x) >> 5;
  for (std::int64_t s = warp; s < count; s += warps) {
    const auto base = static_cast<std::size_t>(s) * slots;
    const auto obase = static_cast<std::size_t>(s) * max_entries;
    std::uint32_t n = 0;
    if (!status[s].overflow) {
      for (std::uint32_t t0 = 0; t0 < slots; t0 += 32) {
        const std::uint32_t t = t0 + lane;  // slots is a multiple of 32
        const I key = keys[base + t];
        const bool take = key != I{-1} && (flags[base + t] & push_flag_settled) != 0;
        const unsigned b = __ballot_sync(0xffffffffu, take);
        if (take)
          out[obase + n + static_cast<std::uint32_t>(__popc(b & lt_mask))] =
              push_key(est_p[base + t], static_cast<std::uint64_t>(key));
        n += static_cast<std::uint32_t>(__popc(b));
      }
    }
    if (lane == 0) {
      seg_begin[s] = static_cast<std::int32_t>(obase);
      seg_end[s] = static_cast<std::int32_t>(obase + n);
    }
  }
}

/// The first min(k, n) sorted entries of each source (k < 0: all), plus the source itself when
/// it is not among them; row s of ids/vals has `stride` entries, len[s] of them used.
template <class I>
__global__ void push_take(std::int64_t count, const I* sources, const std::uint64_t* sorted,
                          const std::int32_t* seg_begin, const std::int32_t* seg_end,
                          std::int64_t k, std::int64_t stride, I* ids, float* vals,
                          std::int32_t* len) {
  const unsigned lane = threadIdx.x & 31u;
  const std::int64_t warp = (blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x) >> 5;
  const std::int64_t warps = (static_cast<std::int64_t>(gridDim.x) * blockDim.x) >> 5;
  for (std::int64_t s = warp; s < count; s += warps) {
    const std::int64_t b = seg_begin[s];
    const std::int64_t n = seg_end[s] - b;
    const std::int64_t kk = (k < 0 || k > n) ? n : k;
    const auto src = static_cast<std::uint64_t>(sources[s]) & 0xFFFFFFFFull;
    I* row_ids = ids + s * stride;
    float* row_vals = vals + s * stride;
    bool has_src = false;
    for (std::int64_t t = lane; t < kk; t += 32) {
      const std::uint64_t key = sorted[b + t];
      row_ids[t] = static_cast<I>(key & 0xFFFFFFFFull);
      row_vals[t] = __uint_as_float(0xFFFFFFFFu - static_cast<std::uint32_t>(key >> 32));
      has_src |= (key & 0xFFFFFFFFull) == src;
    }
    has_src = __any_sync(0xffffffffu, has_src);
    bool added = false;
    if (!has_src) {
      for (std::int64_t t0 = kk; t0 < n; t0 += 32) {
        const std::int64_t t = t0 + lane;
        const bool hit = t < n && (sorted[b + t] & 0xFFFFFFFFull) == src;
        if (hit) {
          row_ids[kk] = static_cast<I>(src);
          row_vals[kk] =
              __uint_as_float(0xFFFFFFFFu - static_cast<std::uint32_t>(sorted[b + t] >> 32));
        }
        if (__any_sync(0xffffffffu, hit)) {
          added = true;
          break;
        }
      }
    }
    if (lane == 0) len[s] = static_cast<std::int32_t>(kk + (added ? 1 : 0));
  }
}

/// Number of settled entries of each source that are other outputs (out_pos[v] >= 0, v not the
/// source's own position).
inline __global__ void push_pair_count(std::int64_t count, const std::int64_t* position,
                                       const std::uint64_t* sorted, const std::int32_t* seg_begin,
                                       const std::int32_t* seg_end, const std::int64_t* out_pos,
                                       std::int64_t* pair_count) {
  const unsigned lane = threadIdx.x & 31u;
  const std::int64_t warp = (blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x) >> 5;
  const std::int64_t warps = (static_cast<std::int64_t>(gridDim.x) * blockDim.x) >> 5;
  for (std::int64_t s = warp; s < count; s += warps) {
    std::int64_t c = 0;
    for (std::int64_t t = seg_begin[s] + lane; t < seg_end[s]; t += 32) {
      const std::int64_t j = out_pos[sorted[t] & 0xFFFFFFFFull];
      c += (j >= 0 && j != position[s]) ? 1 : 0;
    }
    for (int o = 16; o > 0; o >>= 1) c += __shfl_down_sync(0xffffffffu, c, o);
    if (lane == 0) pair_count[s] = c;
  }
}

/// The pairs themselves, (j << 32) | bits(score), at pair_off[s] (order within a source: the
/// sorted order; the host sorts each row by j).
inline __global__ void push_pair_write(std::int64_t count, const std::int64_t* position,
                                       const std::uint64_t* sorted, const std::int32_t* seg_begin,
                                       const std::int32_t* seg_end, const std::int64_t* out_pos,
                                       const std::int64_t* pair_off, std::uint64_t* pairs) {
  const unsigned lane = threadIdx.x & 31u;
  const unsigned lt_mask = (1u << lane) - 1u;
  const std::int64_t warp = (blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x) >> 5;
  const std::int64_t warps = (static_cast<std::int64_t>(gridDim.x) * blockDim.x) >> 5;
  for (std::int64_t s = warp; s < count; s += warps) {
    std::int64_t at = pair_off[s];
    for (std::int64_t t0 = seg_begin[s]; t0 < seg_end[s]; t0 += 32) {
      const std::int64_t t = t0 + lane;
      std::int64_t j = -1;
      std::uint64_t key = 0;
      if (t < seg_end[s]) {
        key = sorted[t];
        j = out_pos[key & 0xFFFFFFFFull];
        if (j == position[s]) j = -1;
      }
      const unsigned b = __ballot_sync(0xffffffffu, j >= 0);
      if (j >= 0)
        pairs[at + __popc(b & lt_mask)] = (static_cast<std::uint64_t>(j) << 32) |
                                          (0xFFFFFFFFu - static_cast<std::uint32_t>(key >> 32));
      at += __popc(b);
    }
  }
}

inline std::size_t push_align(std::size_t x) { return (x + 255) & ~std::size_t{255}; }

inline std::int64_t push_next_pow2(std::int64_t x) {
  std::int64_t p = 1;
  while (p < x) p <<= 1;
  return p;
}

/// Where each array of one round lives in the arena.
template <class I>
struct push_layout {
  std::int64_t slots = 0, max_entries = 0, stride = 0, chunk = 0;
  std::size_t keys = 0, r = 0, p = 0, flags = 0, stack = 0, keys_in = 0, keys_out = 0, ids = 0,
              vals = 0, len = 0, status = 0, seg_b = 0, seg_e = 0, sources = 0, position = 0,
              pair_count = 0, pair_off = 0, sort_temp = 0, scan_temp = 0;
  std::size_t sort_temp_bytes = 0, scan_temp_bytes = 0, total = 0;

  /// Bytes per source, without the CUB temporaries.
  static std::size_t per_source(std::int64_t slots, std::int64_t stride) {
    const auto C = static_cast<std::size_t>(slots), M = C / 2, S = static_cast<std::size_t>(stride);
    return C * (sizeof(I) + 12) + M * (4 + 16) + S * (sizeof(I) + 4) + 4 +
           sizeof(push_source_status) + 8 + sizeof(I) + 24;
  }

  /// Lays out a chunk of `chunk` sources; the CUB temporaries are asked for (two-call pattern).
  void plan(std::int64_t slots_, std::int64_t stride_, std::int64_t chunk_, cudaStream_t s) {
    slots = slots_;
    max_entries = slots_ / 2;
    stride = stride_;
    chunk = chunk_;
    const auto C = static_cast<std::size_t>(chunk) * static_cast<std::size_t>(slots);
    const auto M = static_cast<std::size_t>(chunk) * static_cast<std::size_t>(max_entries);
    const auto S = static_cast<std::size_t>(chunk) * static_cast<std::size_t>(stride);
    const auto n = static_cast<std::size_t>(chunk);
    std::size_t at = 0;
    auto take = [&at](std::size_t bytes) {
      const std::size_t here = at;
      at += push_align(std::max<std::size_t>(bytes, 1));
      return here;
    };
    keys = take(C * sizeof(I));
    r = take(C * 4);
    p = take(C * 4);
    flags = take(C * 4);
    stack = take(M * 4);
    keys_in = take(M * 8);
    keys_out = take(M * 8);
    ids = take(S * sizeof(I));
    vals = take(S * 4);
    len = take(n * 4);
    status = take(n * sizeof(push_source_status));
    seg_b = take(n * 4);
    seg_e = take(n * 4);
    sources = take(n * sizeof(I));
    position = take(n * 8);
    pair_count = take(n * 8);
    pair_off = take(n * 8);
    sort_temp_bytes = 0;
    IBMB_CUDA_TRY(cub::DeviceSegmentedSort::SortKeys(
        static_cast<void*>(nullptr), sort_temp_bytes, static_cast<const std::uint64_t*>(nullptr),
        static_cast<std::uint64_t*>(nullptr), static_cast<std::int64_t>(M),
        static_cast<std::int64_t>(n), static_cast<const std::int32_t*>(nullptr),
        static_cast<const std::int32_t*>(nullptr), s));
    scan_temp_bytes = 0;
    IBMB_CUDA_TRY(cub::DeviceScan::ExclusiveSum(
        static_cast<void*>(nullptr), scan_temp_bytes, static_cast<const std::int64_t*>(nullptr),
        static_cast<std::int64_t*>(nullptr), static_cast<std::int64_t>(n), s));
    sort_temp = take(sort_temp_bytes);
    scan_temp = take(scan_temp_bytes);
    total = at;
  }
};

/// Every output's top-k (or whole settled) row, plus, when `out_pos` is given (N entries, the
/// position of a node among the outputs or -1), the output-to-output scores: the same
/// `nodewise_rows` as the CPU's `nodewise_ppr_impl`. No argument checks.
template <class I, class O, class W>
::ibmb::detail::nodewise_rows<I, float> push_rows_impl(
    const resources& res, device_csr_view<I, O, W> g, std::span<const I> outputs,
    const ppr_params& prm, std::span<const std::int64_t> out_pos, const push_device_params& dp,
    push_device_stats& st, const progress_callback& progress) {
  const cudaStream_t s = res.stream();
  const std::int64_t n = g.num_rows;
  const auto n_out = static_cast<std::int64_t>(outputs.size());
  const bool want_pairs = !out_pos.empty();
  st = push_device_stats{};
  if (n_out == 0) {
    ::ibmb::detail::nodewise_rows<I, float> none;
    none.rows.num_cols = static_cast<std::int64_t>(n);
    none.rows.indptr.assign(1, 0);
    if (want_pairs) none.pair_ptr.assign(1, 0);
    return none;
  }

  // Rounds: table sizes from table_slots up to the first that cannot overflow (>= 2 N).
  const std::int64_t last_slots =
      std::max<std::int64_t>(128, push_next_pow2(2 * std::max<std::int64_t>(n, 1)));
  std::vector<std::int64_t> round_slots{std::min(dp.table_slots, last_slots)};
  while (round_slots.back() < last_slots)
    round_slots.push_back(std::min(round_slots.back() * dp.table_growth, last_slots));
  auto stride_of = [&](std::int64_t slots) {
    return prm.topk > 0 ? std::min<std::int64_t>(prm.topk, slots / 2) + 1 : slots / 2;
  };

  // The arena: a budget, then for each round the largest chunk that fits it.
  std::size_t budget = dp.workspace_bytes;
  if (budget == 0) {
    std::size_t free_b = 0, total_b = 0;
    IBMB_CUDA_TRY(cudaMemGetInfo(&free_b, &total_b));
    budget = std::min<std::size_t>(free_b / 10 * 4, std::size_t{8} << 30);
  }
  // Rounds whose table does not fit the budget are not planned: a call fails only when some
  // source actually needs such a table (`too_big` names it), so a huge graph whose sources all
  // fit the small tables still runs.
  std::vector<push_layout<I>> layouts(round_slots.size());
  std::size_t arena_bytes = 0;
  std::string too_big;
  for (std::size_t r = 0; r < round_slots.size(); ++r) {
    const std::int64_t slots = round_slots[r];
    const std::int64_t stride = stride_of(slots);
    const std::size_t per = push_layout<I>::per_source(slots, stride);
    // keys_in holds chunk * max_entries keys; CUB takes int offsets into it.
    std::int64_t chunk = static_cast<std::int64_t>(budget / 10 * 9 / per);
    chunk = std::min<std::int64_t>(chunk, (std::int64_t{INT_MAX} - 1) / (slots / 2));
    chunk = std::min(chunk, std::max<std::int64_t>(n_out, 1));
    if (dp.max_chunk > 0) chunk = std::min(chunk, dp.max_chunk);
    if (chunk < 1) {
      too_big = ::ibmb::detail::concat(
          "cuda push: a table of ", slots, " slots needs ", per,
          " bytes per source, more than the ", budget,
          "-byte workspace (raise push_device_params::workspace_bytes or use the CPU)");
      layouts.resize(r);
      break;
    }
    layouts[r].plan(slots, stride, chunk, s);
    while (layouts[r].total > budget && chunk > 1) {  // the CUB temporaries did not fit
      chunk = chunk * 3 / 4;
      layouts[r].plan(slots, stride, chunk, s);
    }
    arena_bytes = std::max(arena_bytes, layouts[r].total);
  }

  if (layouts.empty()) throw backend_error(too_big);

  // Everything allocated here, before any loop.
  device_buffer<std::byte> arena(arena_bytes, s);
  device_buffer<float> thr(static_cast<std::size_t>(std::max<std::int64_t>(n, 1)), s);
  device_buffer<std::int64_t> d_out_pos;
  if (want_pairs) d_out_pos = to_device(out_pos, s);
  const auto max_chunk = std::max_element(layouts.begin(), layouts.end(), [](auto& a, auto& b) {
                           return a.chunk < b.chunk;
                         })->chunk;
  pinned_buffer<push_source_status> h_status(static_cast<std::size_t>(max_chunk));
  pinned_buffer<std::int32_t> h_len(static_cast<std::size_t>(max_chunk));
  pinned_buffer<std::int64_t> h_pair_count(want_pairs ? static_cast<std::size_t>(max_chunk) : 0);
  std::vector<I> h_ids;
  std::vector<float> h_vals;
  std::vector<std::uint64_t> h_pairs;
  std::vector<I> h_sources;
  std::vector<std::int64_t> h_position;
  st.workspace_bytes = arena.bytes() + thr.bytes() + d_out_pos.bytes();

  const double ae = prm.alpha * prm.eps;
  if (n > 0) {
    push_thresholds<<<grid_for(n), block_threads, 0, s>>>(g, ae, thr.data());
    check_launch();
  }
  const auto alpha = static_cast<float>(prm.alpha);
  const auto one_minus_alpha = static_cast<float>(1.0 - prm.alpha);

  // Host side: rows land in one arena each (top-k rows, pair rows), referenced per output.
  ::ibmb::detail::row_arena<I, float> rows;
  ::ibmb::detail::row_arena<std::int64_t, float> pair_rows;
  std::vector<::ibmb::detail::row_ref> refs(static_cast<std::size_t>(n_out));
  push_counters counters;
  std::vector<std::pair<I, float>> row;
  std::vector<std::pair<std::int64_t, float>> prow;

  std::vector<std::int64_t> todo(static_cast<std::size_t>(n_out));
  for (std::int64_t i = 0; i < n_out; ++i) todo[static_cast<std::size_t>(i)] = i;
  std::int64_t done = 0;
  for (std::size_t round = 0; round < layouts.size() && !todo.empty(); ++round) {
    const auto& L = layouts[round];
    std::byte* A = arena.data();
    I* keys = reinterpret_cast<I*>(A + L.keys);
    float* r = reinterpret_cast<float*>(A + L.r);
    float* p = reinterpret_cast<float*>(A + L.p);
    auto* flags = reinterpret_cast<std::uint32_t*>(A + L.flags);
    auto* stack = reinterpret_cast<std::uint32_t*>(A + L.stack);
    auto* keys_in = reinterpret_cast<std::uint64_t*>(A + L.keys_in);
    auto* keys_out = reinterpret_cast<std::uint64_t*>(A + L.keys_out);
    I* ids = reinterpret_cast<I*>(A + L.ids);
    float* vals = reinterpret_cast<float*>(A + L.vals);
    auto* len = reinterpret_cast<std::int32_t*>(A + L.len);
    auto* status = reinterpret_cast<push_source_status*>(A + L.status);
    auto* seg_b = reinterpret_cast<std::int32_t*>(A + L.seg_b);
    auto* seg_e = reinterpret_cast<std::int32_t*>(A + L.seg_e);
    I* sources = reinterpret_cast<I*>(A + L.sources);
    auto* position = reinterpret_cast<std::int64_t*>(A + L.position);
    auto* pair_count = reinterpret_cast<std::int64_t*>(A + L.pair_count);
    auto* pair_off = reinterpret_cast<std::int64_t*>(A + L.pair_off);
    const auto slots = static_cast<std::uint32_t>(L.slots);
    const auto max_entries = static_cast<std::uint32_t>(L.max_entries);
    st.rounds = static_cast<std::int64_t>(round) + 1;
    st.max_table_slots = L.slots;

    std::vector<std::int64_t> retry;
    for (std::size_t first = 0; first < todo.size(); first += static_cast<std::size_t>(L.chunk)) {
      const std::int64_t cnt =
          std::min<std::int64_t>(L.chunk, static_cast<std::int64_t>(todo.size() - first));
      const auto c = static_cast<std::size_t>(cnt);
      // The host vectors are reused by the next chunk: the stream is past these copies by the
      // synchronization below.
      h_sources.resize(c);
      h_position.resize(c);
      for (std::size_t t = 0; t < c; ++t) {
        h_position[t] = todo[first + t];
        h_sources[t] = outputs[static_cast<std::size_t>(h_position[t])];
      }
      IBMB_CUDA_TRY(
          cudaMemcpyAsync(sources, h_sources.data(), c * sizeof(I), cudaMemcpyHostToDevice, s));
      IBMB_CUDA_TRY(cudaMemcpyAsync(position, h_position.data(), c * sizeof(std::int64_t),
                                    cudaMemcpyHostToDevice, s));
      const std::size_t cells = c * slots;
      IBMB_CUDA_TRY(cudaMemsetAsync(keys, 0xFF, cells * sizeof(I), s));
      IBMB_CUDA_TRY(cudaMemsetAsync(r, 0, cells * 4, s));
      IBMB_CUDA_TRY(cudaMemsetAsync(p, 0, cells * 4, s));
      IBMB_CUDA_TRY(cudaMemsetAsync(flags, 0, cells * 4, s));
      const unsigned grid = grid_for(cnt * 32);
      push_warps<<<grid, block_threads, 0, s>>>(g, thr.data(), sources, cnt, alpha, one_minus_alpha,
                                                slots, max_entries, keys, r, p, flags, stack,
                                                status);
      check_launch();
      ++st.chunks;
      push_compact<<<grid, block_threads, 0, s>>>(cnt, slots, max_entries, keys, p, flags, status,
                                                  keys_in, seg_b, seg_e);
      check_launch();
      std::size_t temp = L.sort_temp_bytes;
      IBMB_CUDA_TRY(cub::DeviceSegmentedSort::SortKeys(A + L.sort_temp, temp, keys_in, keys_out,
                                                       static_cast<std::int64_t>(c) * L.max_entries,
                                                       cnt, seg_b, seg_e, s));
      push_take<<<grid, block_threads, 0, s>>>(cnt, sources, keys_out, seg_b, seg_e,
                                               prm.topk > 0 ? prm.topk : -1, L.stride, ids, vals,
                                               len);
      check_launch();
      if (want_pairs) {
        push_pair_count<<<grid, block_threads, 0, s>>>(cnt, position, keys_out, seg_b, seg_e,
                                                       d_out_pos.data(), pair_count);
        check_launch();
        std::size_t st_bytes = L.scan_temp_bytes;
        IBMB_CUDA_TRY(
            cub::DeviceScan::ExclusiveSum(A + L.scan_temp, st_bytes, pair_count, pair_off, cnt, s));
        // Pairs reuse keys_in (free after the sort): at most chunk * max_entries of them.
        push_pair_write<<<grid, block_threads, 0, s>>>(cnt, position, keys_out, seg_b, seg_e,
                                                       d_out_pos.data(), pair_off, keys_in);
        check_launch();
        IBMB_CUDA_TRY(
            cudaMemcpyAsync(h_pair_count.data(), pair_count, c * 8, cudaMemcpyDeviceToHost, s));
      }
      IBMB_CUDA_TRY(cudaMemcpyAsync(h_status.data(), status, c * sizeof(push_source_status),
                                    cudaMemcpyDeviceToHost, s));
      IBMB_CUDA_TRY(cudaMemcpyAsync(h_len.data(), len, c * 4, cudaMemcpyDeviceToHost, s));
      h_ids.resize(c * static_cast<std::size_t>(L.stride));
      h_vals.resize(h_ids.size());
      IBMB_CUDA_TRY(
          cudaMemcpyAsync(h_ids.data(), ids, h_ids.size() * sizeof(I), cudaMemcpyDeviceToHost, s));
      IBMB_CUDA_TRY(
          cudaMemcpyAsync(h_vals.data(), vals, h_vals.size() * 4, cudaMemcpyDeviceToHost, s));
      IBMB_CUDA_TRY(cudaStreamSynchronize(s));  // the lists and the pair count come back
      if (want_pairs) {
        std::size_t total_pairs = 0;
        for (std::size_t t = 0; t < c; ++t)
          total_pairs += static_cast<std::size_t>(h_pair_count[t]);
        h_pairs.resize(total_pairs);
        if (total_pairs > 0) {
          IBMB_CUDA_TRY(
              cudaMemcpyAsync(h_pairs.data(), keys_in, total_pairs * 8, cudaMemcpyDeviceToHost, s));
          IBMB_CUDA_TRY(cudaStreamSynchronize(s));  // the pairs come back
        }
      }

      std::size_t pair_at = 0;  // pairs are dense in source order (exclusive scan)
      for (std::size_t t = 0; t < c; ++t) {
        const auto& stt = h_status[t];
        const std::int64_t i = h_position[t];
        if (stt.overflow) {  // an empty segment: no entries, no pairs
          retry.push_back(i);
          continue;
        }
        counters.pushes += stt.pushes;
        counters.edges_relaxed += stt.edges_relaxed;
        auto& ref = refs[static_cast<std::size_t>(i)];
        row.clear();
        const std::size_t at = t * static_cast<std::size_t>(L.stride);
        for (std::int32_t q = 0; q < h_len[t]; ++q)
          row.emplace_back(h_ids[at + static_cast<std::size_t>(q)],
                           h_vals[at + static_cast<std::size_t>(q)]);
        std::sort(row.begin(), row.end(),
                  [](const auto& a, const auto& b) { return a.first < b.first; });
        ref.off = static_cast<std::int64_t>(rows.idx.size());
        ref.len = static_cast<std::int64_t>(row.size());
        for (const auto& [v, x] : row) {
          rows.idx.push_back(v);
          rows.val.push_back(x);
        }
        if (want_pairs) {
          const auto np = static_cast<std::size_t>(h_pair_count[t]);
          prow.clear();
          for (std::size_t q = 0; q < np; ++q) {
            const std::uint64_t pk = h_pairs[pair_at + q];
            prow.emplace_back(static_cast<std::int64_t>(pk >> 32),
                              std::bit_cast<float>(static_cast<std::uint32_t>(pk)));
          }
          pair_at += np;
          std::sort(prow.begin(), prow.end(),
                    [](const auto& a, const auto& b) { return a.first < b.first; });
          ref.off2 = static_cast<std::int64_t>(pair_rows.idx.size());
          ref.len2 = static_cast<std::int64_t>(prow.size());
          for (const auto& [j, x] : prow) {
            pair_rows.idx.push_back(j);
            pair_rows.val.push_back(x);
          }
        }
        ++done;
      }
      report(progress, "ppr", done, n_out);
    }
    if (round == 0) st.overflowed = static_cast<std::int64_t>(retry.size());
    todo = std::move(retry);
  }
  if (!todo.empty() && !too_big.empty())
    throw backend_error(::ibmb::detail::concat(too_big, " (", todo.size(),
                                               " sources overflowed the tables that fit)"));
  if (!todo.empty())
    throw backend_error(::ibmb::detail::concat(
        "cuda push: ", todo.size(), " sources (first: output ", todo.front(), ", node ",
        outputs[static_cast<std::size_t>(todo.front())], ") overflowed a table of ",
        round_slots.back(), " slots for ", n, " nodes; this is a bug"));
  report(progress, "ppr", n_out, n_out);

  ::ibmb::detail::nodewise_rows<I, float> out;
  auto& m = out.rows;
  m.num_rows = n_out;
  m.num_cols = static_cast<std::int64_t>(n);
  m.outputs.assign(outputs.begin(), outputs.end());
  m.counters = counters;
  m.indptr.assign(static_cast<std::size_t>(n_out) + 1, 0);
  for (std::int64_t i = 0; i < n_out; ++i)
    m.indptr[static_cast<std::size_t>(i) + 1] =
        m.indptr[static_cast<std::size_t>(i)] + refs[static_cast<std::size_t>(i)].len;
  m.indices.resize(static_cast<std::size_t>(m.indptr.back()));
  m.values.resize(m.indices.size());
  for (std::int64_t i = 0; i < n_out; ++i) {
    const auto& rf = refs[static_cast<std::size_t>(i)];
    const auto at = static_cast<std::size_t>(m.indptr[static_cast<std::size_t>(i)]);
    std::copy_n(rows.idx.begin() + rf.off, rf.len,
                m.indices.begin() + static_cast<std::ptrdiff_t>(at));
    std::copy_n(rows.val.begin() + rf.off, rf.len,
                m.values.begin() + static_cast<std::ptrdiff_t>(at));
  }
  if (want_pairs) {
    out.pair_ptr.assign(static_cast<std::size_t>(n_out) + 1, 0);
    for (std::int64_t i = 0; i < n_out; ++i)
      out.pair_ptr[static_cast<std::size_t>(i) + 1] =
          out.pair_ptr[static_cast<std::size_t>(i)] + refs[static_cast<std::size_t>(i)].len2;
    out.pair_col.resize(static_cast<std::size_t>(out.pair_ptr.back()));
    out.pair_val.resize(out.pair_col.size());
    for (std::int64_t i = 0; i < n_out; ++i) {
      const auto& rf = refs[static_cast<std::size_t>(i)];
      const auto at = static_cast<std::ptrdiff_t>(out.pair_ptr[static_cast<std::size_t>(i)]);
      std::copy_n(pair_rows.idx.begin() + rf.off2, rf.len2, out.pair_col.begin() + at);
      std::copy_n(pair_rows.val.begin() + rf.off2, rf.len2, out.pair_val.begin() + at);
    }
  }
  return out;
}

template <class I, class O, class W>
void check_device_push_inputs(device_csr_view<I, O, W> g, std::span<const I> outputs,
                              const ppr_params& p, const push_device_params& dp, const char* who) {
  ::ibmb::detail::check_push_params(p, who);
  ::ibmb::detail::check_push_scale<float>(p.alpha, p.eps, who);
  IBMB_EXPECTS(p.order == push_order::lifo, who,
               ": the GPU push runs the LIFO order only (push_order::fifo is CPU-only)");
  IBMB_EXPECTS(p.topk >= 0, who, ": topk = ", p.topk, " must be >= 0 (0 keeps every entry)");
  IBMB_EXPECTS(g.num_rows == g.num_cols, who, ": the graph must be square, got ", g.num_rows, " x ",
               g.num_cols);
  IBMB_EXPECTS(static_cast<std::int64_t>(g.num_rows) < (std::int64_t{1} << 32) - 1, who, ": ",
               g.num_rows, " nodes; the GPU sort key holds ids below 2^32 - 1");
  IBMB_EXPECTS(dp.table_slots >= 128 && dp.table_slots <= (std::int64_t{1} << 30) &&
                   (dp.table_slots & (dp.table_slots - 1)) == 0,
               who, ": table_slots = ", dp.table_slots, " must be a power of two in [128, 2^30]");
  IBMB_EXPECTS(dp.table_growth >= 2, who, ": table_growth = ", dp.table_growth, " must be >= 2");
  IBMB_EXPECTS(dp.max_chunk >= 0, who, ": max_chunk = ", dp.max_chunk, " must be >= 0");
  for (std::size_t i = 0; i < outputs.size(); ++i)
    IBMB_EXPECTS_AS(out_of_range, outputs[i] >= 0 && outputs[i] < g.num_rows, who, ": outputs[", i,
                    "] = ", outputs[i], " outside [0, ", g.num_rows, ")");
}

}  // namespace detail

/// Node-wise PPR on the GPU: the counterpart of `ibmb::nodewise_ppr<float>` with the same
/// parameters (LIFO order only) and result layout: row i belongs to outputs[i], top-k entries
/// (score desc, id asc) plus the output itself when `include_output`, columns sorted; topk 0
/// keeps every settled entry; `counters` are the sums over the pushes. The graph must have
/// been preprocessed as for the CPU push and its structure is trusted (validate it on the host
/// before uploading). The host `outputs` are read during the call. Synchronizes the stream
/// about twice per chunk of sources; throws `ibmb::cuda_error` on a CUDA failure.
template <class I, class O, class W>
ppr_matrix<I, float> nodewise_ppr(const resources& res, device_csr_view<I, O, W> g,
                                  std::type_identity_t<std::span<const I>> outputs,
                                  const ppr_params& p, const push_device_params& dp = {},
                                  push_device_stats* stats = nullptr,
                                  const progress_callback& progress = {}) {
  detail::check_device_push_inputs(g, outputs, p, dp, "cuda::nodewise_ppr");
  push_device_stats st;
  auto rows = detail::push_rows_impl(res, g, outputs, p, {}, dp, st, progress);
  if (!p.include_output && p.topk > 0) {
    // The kernel always appends the source; drop it where it is not among the k best.
    auto& m = rows.rows;
    std::vector<std::int64_t> ptr{0};
    std::size_t w = 0;
    for (std::int64_t i = 0; i < m.num_rows; ++i) {
      const auto b = static_cast<std::size_t>(m.indptr[static_cast<std::size_t>(i)]);
      const auto e = static_cast<std::size_t>(m.indptr[static_cast<std::size_t>(i) + 1]);
      const bool extra = static_cast<std::int64_t>(e - b) > p.topk;
      for (std::size_t q = b; q < e; ++q) {
        if (extra && m.indices[q] == m.outputs[static_cast<std::size_t>(i)]) continue;
        m.indices[w] = m.indices[q];
        m.values[w] = m.values[q];
        ++w;
      }
      ptr.push_back(static_cast<std::int64_t>(w));
    }
    m.indices.resize(w);
    m.values.resize(w);
    m.indptr = std::move(ptr);
  }
  if (stats) *stats = st;
  return std::move(rows.rows);
}

/// Node-wise IBMB with the push on the GPU and the grouping on the CPU: the counterpart of
/// `ibmb::nodewise_plan<float>` (same checks, same use of the full rows' output-to-output
/// scores, same plan up to float rounding of the scores).
template <class I, class O, class W>
batch_plan<I> nodewise_plan(const resources& res, device_csr_view<I, O, W> g,
                            std::type_identity_t<std::span<const I>> outputs,
                            const nodewise_params& prm, const push_device_params& dp = {},
                            nodewise_stats* stats = nullptr,
                            push_device_stats* device_stats = nullptr) {
  ppr_params pp = prm.ppr;
  pp.include_output = true;
  detail::check_device_push_inputs(g, outputs, pp, dp, "cuda::nodewise_plan");
  ::ibmb::detail::check_unique_outputs(outputs, "cuda::nodewise_plan");
  if (prm.merge.cap == merge_cap::outputs)
    IBMB_EXPECTS(prm.merge.max_outputs > 0,
                 "cuda::nodewise_plan: merge.max_outputs = ", prm.merge.max_outputs,
                 " must be > 0");
  else
    IBMB_EXPECTS(prm.merge.max_nodes > 0,
                 "cuda::nodewise_plan: merge.max_nodes = ", prm.merge.max_nodes, " must be > 0");
  std::vector<I> sorted_outputs(outputs.begin(), outputs.end());
  std::sort(sorted_outputs.begin(), sorted_outputs.end());
  const std::span<const I> outs(sorted_outputs);
  const auto n_out = static_cast<std::int64_t>(outs.size());
  if (n_out == 0) return {};
  std::vector<std::int64_t> out_pos(static_cast<std::size_t>(g.num_rows), -1);
  for (std::size_t i = 0; i < outs.size(); ++i)
    out_pos[static_cast<std::size_t>(outs[i])] = static_cast<std::int64_t>(i);
  push_device_stats st;
  auto rows = detail::push_rows_impl(res, g, outs, pp, out_pos, dp, st, prm.progress);
  std::vector<std::int64_t>().swap(out_pos);
  report(prm.progress, "pairs", 0, 0);
  const auto pairs =
      symmetric_output_pairs<float>(n_out, rows.pair_ptr, rows.pair_col, rows.pair_val);
  report(prm.progress, "merge", 0, 1);
  const auto groups = greedy_merge<float, I>(n_out, std::span<const output_pair<float>>(pairs),
                                             prm.merge, rows.rows.indptr, rows.rows.indices);
  auto plan = groups_to_plan<I>(outs, groups, rows.rows.indptr, rows.rows.indices);
  report(prm.progress, "merge", 1, 1);
  if (stats) {
    stats->counters = rows.rows.counters;
    stats->num_pairs = static_cast<std::int64_t>(pairs.size());
  }
  if (device_stats) *device_stats = st;
  return plan;
}

}  // namespace ibmb::cuda
