// ibmb::cuda: owning device and pinned host buffers, stream-ordered.
// `device_buffer` allocates with cudaMallocAsync on a stream and frees with cudaFreeAsync on
// the same stream, so neither allocation nor release synchronizes the device (cudaFree
// would). A buffer must therefore be destroyed before the stream it was made on.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <span>
#include <type_traits>
#include <utility>
#include <vector>

#include "ibmb/core/error.hpp"
#include "ibmb/cuda/error.cuh"

namespace ibmb::cuda {

/// Owning, uninitialized device array of `T` (trivially copyable), stream-ordered.
template <class T>
class device_buffer {
  static_assert(std::is_trivially_copyable_v<T>,
                "ibmb::cuda::device_buffer needs a trivially "
                "copyable element type");

 public:
  device_buffer() = default;
  device_buffer(std::size_t n, cudaStream_t stream) : stream_(stream) { allocate(n); }
  ~device_buffer() { release(); }
  device_buffer(const device_buffer&) = delete;
  device_buffer& operator=(const device_buffer&) = delete;
  device_buffer(device_buffer&& o) noexcept
      : ptr_(std::exchange(o.ptr_, nullptr)),
        size_(std::exchange(o.size_, 0)),
        stream_(o.stream_) {}
  device_buffer& operator=(device_buffer&& o) noexcept {
    if (this != &o) {
      release();
      ptr_ = std::exchange(o.ptr_, nullptr);
      size_ = std::exchange(o.size_, 0);
      stream_ = o.stream_;
    }
    return *this;
  }

  /// Drops the contents and holds `n` elements (no-op when the size already matches).
  void reset(std::size_t n, cudaStream_t stream) {
    if (n == size_ && stream == stream_) return;
    release();
    stream_ = stream;
    allocate(n);
  }
  /// Grows to at least `n` elements (contents dropped when it grows).
  void reserve(std::size_t n, cudaStream_t stream) {
    if (n > size_ || stream != stream_) reset(n, stream);
  }

  [[nodiscard]] T* data() { return ptr_; }
  [[nodiscard]] const T* data() const { return ptr_; }
  [[nodiscard]] std::size_t size() const { return size_; }
  [[nodiscard]] std::size_t bytes() const { return size_ * sizeof(T); }
  [[nodiscard]] bool empty() const { return size_ == 0; }
  [[nodiscard]] cudaStream_t stream() const { return stream_; }

  /// Sets every byte to `byte` (asynchronous on the buffer's stream).
  void fill_bytes(int byte) {
    if (size_ > 0) IBMB_CUDA_TRY(cudaMemsetAsync(ptr_, byte, bytes(), stream_));
  }

 private:
  void allocate(std::size_t n) {
    size_ = n;
    if (n == 0) return;
    void* p = nullptr;
    IBMB_CUDA_TRY(cudaMallocAsync(&p, n * sizeof(T), stream_));
    ptr_ = static_cast<T*>(p);
  }
  void release() noexcept {
    if (ptr_) (void)cudaFreeAsync(ptr_, stream_);
    ptr_ = nullptr;
    size_ = 0;
  }

  T* ptr_ = nullptr;
  std::size_t size_ = 0;
  cudaStream_t stream_ = nullptr;
};

/// Owning page-locked host array (cudaMallocHost), for asynchronous copies.
template <class T>
class pinned_buffer {
  static_assert(std::is_trivially_copyable_v<T>,
                "ibmb::cuda::pinned_buffer needs a trivially "
                "copyable element type");

 public:
  pinned_buffer() = default;
  explicit pinned_buffer(std::size_t n) { reset(n); }
  ~pinned_buffer() { release(); }
  pinned_buffer(const pinned_buffer&) = delete;
  pinned_buffer& operator=(const pinned_buffer&) = delete;
  pinned_buffer(pinned_buffer&& o) noexcept
      : ptr_(std::exchange(o.ptr_, nullptr)), size_(std::exchange(o.size_, 0)) {}
  pinned_buffer& operator=(pinned_buffer&& o) noexcept {
    if (this != &o) {
      release();
      ptr_ = std::exchange(o.ptr_, nullptr);
      size_ = std::exchange(o.size_, 0);
    }
    return *this;
  }
  void reset(std::size_t n) {
    if (n == size_) return;
    release();
    size_ = n;
    if (n == 0) return;
    void* p = nullptr;
    IBMB_CUDA_TRY(cudaMallocHost(&p, n * sizeof(T)));
    ptr_ = static_cast<T*>(p);
  }
  [[nodiscard]] T* data() { return ptr_; }
  [[nodiscard]] const T* data() const { return ptr_; }
  [[nodiscard]] std::size_t size() const { return size_; }
  [[nodiscard]] std::span<T> span() { return {ptr_, size_}; }
  T& operator[](std::size_t i) { return ptr_[i]; }
  const T& operator[](std::size_t i) const { return ptr_[i]; }

 private:
  void release() noexcept {
    if (ptr_) (void)cudaFreeHost(ptr_);
    ptr_ = nullptr;
    size_ = 0;
  }
  T* ptr_ = nullptr;
  std::size_t size_ = 0;
};

/// Copies a host span into a new device buffer (asynchronous; the source must stay alive and
/// unchanged until the stream reaches the copy, or be synchronized by the caller).
template <class T>
device_buffer<std::remove_const_t<T>> to_device(std::span<T> host, cudaStream_t stream) {
  device_buffer<std::remove_const_t<T>> d(host.size(), stream);
  if (!host.empty())
    IBMB_CUDA_TRY(
        cudaMemcpyAsync(d.data(), host.data(), host.size_bytes(), cudaMemcpyHostToDevice, stream));
  return d;
}

/// Copies `n` device elements back to a host vector and waits for the stream: the one place
/// where a result must come back.
template <class T>
std::vector<T> to_host(const T* device, std::size_t n, cudaStream_t stream) {
  std::vector<T> h(n);
  if (n > 0)
    IBMB_CUDA_TRY(cudaMemcpyAsync(h.data(), device, n * sizeof(T), cudaMemcpyDeviceToHost, stream));
  IBMB_CUDA_TRY(cudaStreamSynchronize(stream));
  return h;
}

namespace detail {

inline constexpr int block_threads = 256;

/// Blocks for a grid-stride loop over n items (capped; the loops stride).
inline unsigned grid_for(std::int64_t n, int threads = block_threads) {
  const std::int64_t b = (n + threads - 1) / threads;
  return static_cast<unsigned>(b < 1 ? 1 : (b > 65535 * 8 ? 65535 * 8 : b));
}

inline void check_launch() { IBMB_CUDA_TRY(cudaGetLastError()); }

}  // namespace detail

}  // namespace ibmb::cuda
