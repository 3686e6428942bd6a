// ibmb::cuda: CSR graphs in device memory. `device_csr_view` is what kernels take (pointers and
// sizes, trivially copyable, passed by value to kernels); `device_csr` owns the arrays and is
// uploaded from a host `ibmb::csr_view` on a stream.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <span>
#include <type_traits>

#include "ibmb/cuda/memory.cuh"
#include "ibmb/cuda/resources.cuh"
#include "ibmb/graph/csr.hpp"

namespace ibmb::cuda {

/// Non-owning device CSR. `weights` is null for an unweighted graph.
template <class I = std::int64_t, class O = std::int64_t, class W = float>
struct device_csr_view {
  using index_type = I;
  using offset_type = O;
  using weight_type = W;

  I num_rows = 0;
  I num_cols = 0;
  O num_edges = 0;
  const O* indptr = nullptr;   // num_rows + 1 entries
  const I* indices = nullptr;  // num_edges entries
  const W* weights = nullptr;  // num_edges entries or null

  [[nodiscard]] __host__ __device__ bool has_weights() const { return weights != nullptr; }
  [[nodiscard]] __device__ O degree(I v) const { return indptr[v + 1] - indptr[v]; }
};

static_assert(std::is_trivially_copyable_v<device_csr_view<>>,
              "device_csr_view must be trivially copyable");

/// Owning device CSR. Upload is asynchronous on the given stream: the host arrays must stay
/// alive until the stream reaches the copies (synchronize the stream, or keep them).
template <class I = std::int64_t, class O = std::int64_t, class W = float>
class device_csr {
 public:
  using view_type = device_csr_view<I, O, W>;

  device_csr() { ::ibmb::detail::check_csr_types<I, O, W>(); }

  /// Copies `g` (structure checked on the host first) into device memory on `res`'s stream.
  device_csr(csr_view<I, O, W> g, const resources& res) { upload(g, res); }

  void upload(csr_view<I, O, W> g, const resources& res) {
    g.validate();
    const cudaStream_t s = res.stream();
    num_rows_ = g.num_rows;
    num_cols_ = g.num_cols;
    num_edges_ = g.num_edges();
    // An empty host indptr (a 0 x 0 matrix) becomes the one-entry array {0}.
    indptr_.reset(static_cast<std::size_t>(g.num_rows) + 1, s);
    if (g.indptr.empty())
      indptr_.fill_bytes(0);
    else
      IBMB_CUDA_TRY(cudaMemcpyAsync(indptr_.data(), g.indptr.data(), g.indptr.size_bytes(),
                                    cudaMemcpyHostToDevice, s));
    indices_ = to_device(g.indices, s);
    weights_ = to_device(g.weights, s);
  }

  [[nodiscard]] view_type view() const {
    return view_type{num_rows_,      num_cols_,       num_edges_,
                     indptr_.data(), indices_.data(), weights_.empty() ? nullptr : weights_.data()};
  }
  operator view_type() const { return view(); }  // NOLINT(google-explicit-constructor)

  [[nodiscard]] I num_rows() const { return num_rows_; }
  [[nodiscard]] O num_edges() const { return num_edges_; }
  [[nodiscard]] std::size_t bytes() const {
    return indptr_.bytes() + indices_.bytes() + weights_.bytes();
  }

 private:
  I num_rows_ = 0;
  I num_cols_ = 0;
  O num_edges_ = 0;
  device_buffer<O> indptr_;
  device_buffer<I> indices_;
  device_buffer<W> weights_;
};

}  // namespace ibmb::cuda
