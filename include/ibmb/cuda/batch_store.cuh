// ibmb::cuda: a device-resident view of a host `ibmb::batch_store`.
//
// When every batch fits the given device budget, all batches are uploaded once and `get`
// only hands out pointers. Otherwise the store streams: two device slots and two pinned
// staging buffers, each sized for the largest batch; `get(b)` makes the compute stream wait
// for b's copy (an event, no host wait) and starts copying the next batch into the other slot
// on a side stream, after the compute stream has finished with that slot's previous batch
// (another event). So the next batch arrives while the current one computes.
//
// Synchronization: the constructor synchronizes the stream once (uploads / allocations done).
// In streaming mode the host waits on an event only before refilling a staging buffer whose
// previous copy may still be in flight (two batches back).
#pragma once

#include <cuda_runtime.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <vector>

#include "ibmb/batch/store_types.hpp"
#include "ibmb/cuda/extract.cuh"
#include "ibmb/cuda/memory.cuh"
#include "ibmb/cuda/resources.cuh"

namespace ibmb::cuda {

class device_batch_store {
 public:
  /// `budget_bytes`: device memory the batches may take; all batches stay resident when their
  /// packed size fits, otherwise two slots of the largest batch are used. The host store must
  /// hold float32 features or none (ids-only stores give views without features).
  device_batch_store(const batch_store& host, const resources& res, std::size_t budget_bytes)
      : host_(&host), res_(&res) {
    IBMB_EXPECTS(!host.empty(), "device_batch_store: the host store is empty");
    const feature_dtype dt = host.ids_only() ? feature_dtype::none : host.dtype();
    IBMB_EXPECTS(dt == feature_dtype::none || dt == feature_dtype::float32,
                 "device_batch_store: the store holds ", to_string(dt),
                 " features; only float32 (or none) can be used on the device");
    F_ = dt == feature_dtype::float32 ? host.num_features() : 0;
    labels_ = host.has_labels();
    const auto B = static_cast<std::int64_t>(host.num_batches());
    offset_.assign(static_cast<std::size_t>(B) + 1, 0);
    std::size_t largest = 0;
    for (std::int64_t b = 0; b < B; ++b) {
      const std::size_t sz = layout(b).total;
      offset_[static_cast<std::size_t>(b) + 1] = offset_[static_cast<std::size_t>(b)] + sz;
      largest = std::max(largest, sz);
    }
    const cudaStream_t s = res.stream();
    resident_ = offset_.back() <= budget_bytes;
    if (resident_) {
      all_.reset(std::max<std::size_t>(offset_.back(), 1), s);
      for (std::int64_t b = 0; b < B; ++b) upload_pageable(b, all_.data() + offset_[b], s);
    } else {
      IBMB_EXPECTS(2 * largest <= budget_bytes, "device_batch_store: the two streaming slots need ",
                   2 * largest, " bytes, more than the budget of ", budget_bytes);
      IBMB_CUDA_TRY(cudaStreamCreateWithFlags(&side_, cudaStreamNonBlocking));
      for (int i = 0; i < 2; ++i) {
        slot_[i].reset(std::max<std::size_t>(largest, 1), s);
        staging_[i].reset(std::max<std::size_t>(largest, 1));
        IBMB_CUDA_TRY(cudaEventCreateWithFlags(&copied_[i], cudaEventDisableTiming));
        IBMB_CUDA_TRY(cudaEventCreateWithFlags(&freed_[i], cudaEventDisableTiming));
      }
    }
    res.synchronize();  // uploads done; slots allocated before the side stream uses them
  }

  ~device_batch_store() {
    if (side_) (void)cudaStreamSynchronize(side_);
    for (int i = 0; i < 2; ++i) {
      if (copied_[i]) (void)cudaEventDestroy(copied_[i]);
      if (freed_[i]) (void)cudaEventDestroy(freed_[i]);
    }
    if (side_) (void)cudaStreamDestroy(side_);
  }
  device_batch_store(const device_batch_store&) = delete;
  device_batch_store& operator=(const device_batch_store&) = delete;

  [[nodiscard]] bool resident() const { return resident_; }
  [[nodiscard]] std::int64_t num_batches() const {
    return static_cast<std::int64_t>(host_->num_batches());
  }
  /// Device bytes held by batch data.
  [[nodiscard]] std::size_t bytes() const {
    return resident_ ? all_.bytes() : slot_[0].bytes() + slot_[1].bytes();
  }

  /// Batch b for work on the resources' stream; `next` (default b + 1, -1 for none) is
  /// prefetched when streaming. Call it after enqueuing all work on the previous batch: in
  /// streaming mode a view is valid only for work enqueued on the stream before the next
  /// `get` (that call prefetches `next` into the previous batch's slot).
  device_batch_view get(std::int64_t b, std::int64_t next = -2) {
    IBMB_EXPECTS_AS(out_of_range, b >= 0 && b < num_batches(), "device_batch_store: batch ", b,
                    " outside [0, ", num_batches(), ")");
    if (resident_) return view(b, all_.data() + offset_[static_cast<std::size_t>(b)]);
    const cudaStream_t s = res_->stream();
    if (next == -2) next = b + 1 < num_batches() ? b + 1 : -1;
    // Work enqueued so far on the current slot's batch must finish before it is overwritten.
    if (current_ >= 0) IBMB_CUDA_TRY(cudaEventRecord(freed_[current_], s));
    int slot = held_[0] == b ? 0 : held_[1] == b ? 1 : -1;
    if (slot < 0) {
      slot = current_ < 0 ? 0 : 1 - current_;
      load(b, slot);
    }
    IBMB_CUDA_TRY(cudaStreamWaitEvent(s, copied_[slot], 0));
    current_ = slot;
    if (next >= 0 && next < num_batches() && held_[1 - slot] != next) load(next, 1 - slot);
    return view(b, slot_[slot].data());
  }

 private:
  struct packed {
    std::size_t ids, labels, indptr, indices, weights, features, total;
  };
  static std::size_t align(std::size_t x) { return (x + 255) / 256 * 256; }

  [[nodiscard]] packed layout(std::int64_t b) const {
    const auto ub = static_cast<std::size_t>(b);
    const auto nn = static_cast<std::size_t>(host_->node_ptr()[ub + 1] - host_->node_ptr()[ub]);
    const auto ne = static_cast<std::size_t>(host_->edge_ptr()[ub + 1] - host_->edge_ptr()[ub]);
    packed p{};
    std::size_t at = 0;
    p.ids = at;
    at = align(at + nn * 8);
    p.labels = at;
    at = align(at + (labels_ ? nn * 8 : 0));
    p.indptr = at;
    at = align(at + (nn + 1) * 8);
    p.indices = at;
    at = align(at + ne * 8);
    p.weights = at;
    at = align(at + ne * 4);
    p.features = at;
    at = align(at + nn * static_cast<std::size_t>(F_) * 4);
    p.total = at;
    return p;
  }

  [[nodiscard]] device_batch_view view(std::int64_t b, const std::byte* base) const {
    const packed p = layout(b);
    const batch_view hv = host_->batch(static_cast<std::size_t>(b));
    device_batch_view v;
    v.index = b;
    v.num_outputs = hv.num_outputs;
    v.num_nodes = hv.num_nodes();
    v.num_edges = hv.num_edges();
    v.num_features = F_;
    v.node_ids = reinterpret_cast<const std::int64_t*>(base + p.ids);
    v.labels = labels_ ? reinterpret_cast<const std::int64_t*>(base + p.labels) : nullptr;
    v.indptr = reinterpret_cast<const std::int64_t*>(base + p.indptr);
    v.indices = reinterpret_cast<const std::int64_t*>(base + p.indices);
    v.weights = reinterpret_cast<const float*>(base + p.weights);
    v.features = F_ > 0 ? reinterpret_cast<const float*>(base + p.features) : nullptr;
    return v;
  }

  /// The (pointer, bytes, offset) pieces of batch b.
  template <class F>
  void for_each_piece(std::int64_t b, F&& f) const {
    const packed p = layout(b);
    const batch_view hv = host_->batch(static_cast<std::size_t>(b));
    f(hv.node_ids.data(), hv.node_ids.size_bytes(), p.ids);
    if (labels_) f(hv.labels.data(), hv.labels.size_bytes(), p.labels);
    f(hv.graph.indptr.data(), hv.graph.indptr.size_bytes(), p.indptr);
    f(hv.graph.indices.data(), hv.graph.indices.size_bytes(), p.indices);
    f(hv.graph.weights.data(), hv.graph.weights.size_bytes(), p.weights);
    if (F_ > 0) f(hv.feature_bytes.data(), hv.feature_bytes.size_bytes(), p.features);
  }

  void upload_pageable(std::int64_t b, std::byte* dst, cudaStream_t s) {
    for_each_piece(b, [&](const void* src, std::size_t n, std::size_t off) {
      if (n > 0) IBMB_CUDA_TRY(cudaMemcpyAsync(dst + off, src, n, cudaMemcpyHostToDevice, s));
    });
  }

  /// Packs batch b into staging[slot] and copies it into slot on the side stream.
  void load(std::int64_t b, int slot) {
    // The staging buffer's previous copy must be done before it is refilled.
    IBMB_CUDA_TRY(cudaEventSynchronize(copied_[slot]));
    std::byte* stage = staging_[slot].data();
    for_each_piece(b, [&](const void* src, std::size_t n, std::size_t off) {
      if (n > 0) std::memcpy(stage + off, src, n);
    });
    IBMB_CUDA_TRY(cudaStreamWaitEvent(side_, freed_[slot], 0));
    IBMB_CUDA_TRY(
        cudaMemcpyAsync(slot_[slot].data(), stage, layout(b).total, cudaMemcpyHostToDevice, side_));
    IBMB_CUDA_TRY(cudaEventRecord(copied_[slot], side_));
    held_[slot] = b;
  }

  const batch_store* host_;
  const resources* res_;
  std::int64_t F_ = 0;
  bool labels_ = false;
  bool resident_ = true;
  std::vector<std::size_t> offset_;
  device_buffer<std::byte> all_;
  std::array<device_buffer<std::byte>, 2> slot_;
  std::array<pinned_buffer<std::byte>, 2> staging_;
  cudaStream_t side_ = nullptr;
  cudaEvent_t copied_[2] = {nullptr, nullptr};
  cudaEvent_t freed_[2] = {nullptr, nullptr};
  std::int64_t held_[2] = {-1, -1};
  int current_ = -1;
};

}  // namespace ibmb::cuda
