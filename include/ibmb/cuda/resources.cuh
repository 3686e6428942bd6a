// ibmb::cuda: what every GPU entry point takes — a stream and a cuSPARSE handle bound to
// it. Library code never synchronizes the whole device and never allocates inside
// iteration loops; workspaces are sized up front (two-call pattern).
#pragma once

#include <cuda_runtime.h>
#include <cusparse.h>

#include "ibmb/cuda/error.cuh"

namespace ibmb::cuda {

/// Number of visible CUDA devices (0 when there is no driver or no device).
inline int device_count() noexcept {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    (void)cudaGetLastError();  // clear the sticky "no device" error
    return 0;
  }
  return n;
}

/// Owns a non-blocking stream and a cuSPARSE handle on it.
class resources {
 public:
  resources() {
    IBMB_CUDA_TRY(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
    if (cusparseStatus_t s = cusparseCreate(&sparse_); s != CUSPARSE_STATUS_SUCCESS) {
      cudaStreamDestroy(stream_);
      IBMB_CUSPARSE_TRY(s);
    }
    IBMB_CUSPARSE_TRY(cusparseSetStream(sparse_, stream_));
  }
  ~resources() {
    cusparseDestroy(sparse_);
    cudaStreamDestroy(stream_);
  }
  resources(const resources&) = delete;
  resources& operator=(const resources&) = delete;

  [[nodiscard]] cudaStream_t stream() const { return stream_; }
  [[nodiscard]] cusparseHandle_t sparse() const { return sparse_; }
  void synchronize() const { IBMB_CUDA_TRY(cudaStreamSynchronize(stream_)); }

 private:
  cudaStream_t stream_ = nullptr;
  cusparseHandle_t sparse_ = nullptr;
};

}  // namespace ibmb::cuda
