// ibmb::cuda: batched top-k per column of a dense N x B row-major score block, with the CPU's
// total order (score descending, then node id ascending) among positive scores only.
//
// Each score becomes one 64-bit key, (~bits(score) << 32) | id for a positive score and
// UINT64_MAX otherwise: for positive floats the IEEE bit pattern is monotone, so an ascending
// sort of the keys orders by score descending and then id ascending, exactly the CPU's
// `partial_sort` order, ties included. A CUB segmented radix sort over the columns (as
// contiguous segments) then leaves each column's top k in its first k keys.
#pragma once

#include <cuda_runtime.h>

#include <climits>
#include <cstdint>
#include <cub/device/device_segmented_radix_sort.cuh>
#include <vector>

#include "ibmb/cuda/memory.cuh"
#include "ibmb/cuda/resources.cuh"

namespace ibmb::cuda {

namespace detail {

__device__ inline std::uint64_t topk_key(float s, std::int64_t v) {
  if (!(s > 0.0f)) return ~std::uint64_t{0};  // NaN, zero and negatives: never selected
  const std::uint32_t bits = __float_as_uint(s);
  return (static_cast<std::uint64_t>(0xFFFFFFFFu - bits) << 32) | static_cast<std::uint32_t>(v);
}

/// keys[(j - c0) * n + v] = key of scores[v * B + j] for columns j in [c0, c0 + nc).
inline __global__ void topk_make_keys(const float* scores, std::int64_t n, int B, int c0, int nc,
                                      std::uint64_t* keys) {
  const std::int64_t total = n * nc;
  for (std::int64_t e = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; e < total;
       e += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    const std::int64_t v = e / nc;
    const int jj = static_cast<int>(e % nc);  // consecutive threads read consecutive columns
    keys[jj * n + v] = topk_key(scores[v * B + c0 + jj], v);
  }
}

inline __global__ void topk_offsets(std::int64_t n, int nc, int* offsets) {
  for (int j = blockIdx.x * blockDim.x + threadIdx.x; j <= nc; j += gridDim.x * blockDim.x)
    offsets[j] = static_cast<int>(j * n);
}

/// The first k keys of each sorted column into ids (-1 where the column has fewer positive
/// scores) and scores.
inline __global__ void topk_take(const std::uint64_t* sorted, std::int64_t n, int c0, int nc,
                                 std::int64_t k, std::int64_t* ids, float* scores) {
  const std::int64_t total = static_cast<std::int64_t>(nc) * k;
  for (std::int64_t e = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; e < total;
       e += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    const std::int64_t jj = e / k, t = e % k;
    const std::int64_t out = (c0 + jj) * k + t;
    const std::uint64_t key = t < n ? sorted[jj * n + t] : ~std::uint64_t{0};
    if (key == ~std::uint64_t{0}) {
      ids[out] = -1;
      scores[out] = 0.0f;
    } else {
      ids[out] = static_cast<std::int64_t>(key & 0xFFFFFFFFu);
      scores[out] = __uint_as_float(0xFFFFFFFFu - static_cast<std::uint32_t>(key >> 32));
    }
  }
}

}  // namespace detail

/// Reusable top-k workspace: sized once for (n, B) with `prepare` (two-call pattern against
/// CUB), then `select` runs without allocating. Columns are sorted in groups so that one
/// sort handles fewer than 2^31 keys (CUB's int item count).
class topk_selector {
 public:
  /// Sizes every buffer for n rows and up to B columns.
  void prepare(std::int64_t n, int B, std::int64_t k, const resources& res) {
    IBMB_EXPECTS(n >= 0 && n < (std::int64_t{1} << 32) - 1, "cuda topk: ", n,
                 " rows; at most 2^32 - 2 fit the 64-bit sort key");
    IBMB_EXPECTS(B >= 1 && k >= 0, "cuda topk: B = ", B, ", k = ", k);
    n_ = n;
    B_ = B;
    k_ = k;
    group_ =
        n == 0
            ? B
            : static_cast<int>(std::min<std::int64_t>(B, INT_MAX / std::max<std::int64_t>(n, 1)));
    IBMB_EXPECTS(group_ >= 1, "cuda topk: ", n, " rows do not fit one CUB sort");
    const cudaStream_t s = res.stream();
    const auto keys = static_cast<std::size_t>(n) * static_cast<std::size_t>(group_);
    keys_in_.reserve(keys, s);
    keys_out_.reserve(keys, s);
    offsets_.reserve(static_cast<std::size_t>(group_) + 1, s);
    ids_.reserve(static_cast<std::size_t>(B) * static_cast<std::size_t>(k), s);
    scores_.reserve(static_cast<std::size_t>(B) * static_cast<std::size_t>(k), s);
    std::size_t temp = 0;
    IBMB_CUDA_TRY(cub::DeviceSegmentedRadixSort::SortKeys(
        nullptr, temp, keys_in_.data(), keys_out_.data(), static_cast<int>(keys), group_,
        offsets_.data(), offsets_.data() + 1, 0, 64, s));
    temp_.reserve(std::max<std::size_t>(temp, 1), s);
  }

  /// Top k of each of the `width` (<= B) columns of `scores` (device, n x width row-major).
  /// Results stay on the device: `ids()` / `scores()` hold width x k entries (row j = column
  /// j's list, id -1 past its end). Asynchronous on res's stream.
  void select(const float* scores, int width, const resources& res) {
    IBMB_EXPECTS(width >= 1 && width <= B_, "cuda topk: width ", width, " outside [1, ", B_, "]");
    const cudaStream_t s = res.stream();
    if (k_ == 0) return;
    for (int c0 = 0; c0 < width; c0 += group_) {
      const int nc = std::min(group_, width - c0);
      const std::int64_t items = n_ * nc;
      if (items > 0) {
        detail::topk_make_keys<<<detail::grid_for(items), detail::block_threads, 0, s>>>(
            scores, n_, width, c0, nc, keys_in_.data());
        detail::check_launch();
        detail::topk_offsets<<<detail::grid_for(nc + 1), detail::block_threads, 0, s>>>(
            n_, nc, offsets_.data());
        detail::check_launch();
        std::size_t temp = temp_.size();
        IBMB_CUDA_TRY(cub::DeviceSegmentedRadixSort::SortKeys(
            temp_.data(), temp, keys_in_.data(), keys_out_.data(), static_cast<int>(items), nc,
            offsets_.data(), offsets_.data() + 1, 0, 64, s));
      }
      detail::topk_take<<<detail::grid_for(nc * k_), detail::block_threads, 0, s>>>(
          keys_out_.data(), n_, c0, nc, k_, ids_.data(), scores_.data());
      detail::check_launch();
    }
  }

  [[nodiscard]] const std::int64_t* ids() const { return ids_.data(); }
  [[nodiscard]] const float* scores() const { return scores_.data(); }
  [[nodiscard]] std::int64_t k() const { return k_; }
  [[nodiscard]] std::size_t bytes() const {
    return keys_in_.bytes() + keys_out_.bytes() + temp_.bytes() + ids_.bytes() + scores_.bytes();
  }

 private:
  std::int64_t n_ = 0, k_ = 0;
  int B_ = 0, group_ = 1;
  device_buffer<std::uint64_t> keys_in_, keys_out_;
  device_buffer<int> offsets_;
  device_buffer<std::byte> temp_;
  device_buffer<std::int64_t> ids_;
  device_buffer<float> scores_;
};

}  // namespace ibmb::cuda
