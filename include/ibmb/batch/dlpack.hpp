// ibmb: zero-copy DLPack views of a stored batch, for frameworks that import DLPack
// (PyTorch's torch::utils::from_dlpack / torch.from_dlpack, JAX, CuPy, TVM). Available when
// <dlpack/dlpack.h> is on the include path (Debian: libdlpack-dev); otherwise this header is
// empty and IBMB_HAS_DLPACK is 0.
//
// The tensors point into the store: the store must outlive them, and since a loaded store
// is a read-only mapping, the consumer must not write through them (clone first).
#pragma once

#if __has_include(<dlpack/dlpack.h>)
#define IBMB_HAS_DLPACK 1

#include <dlpack/dlpack.h>

#include <cstdint>
#include <memory>
#include <span>
#include <type_traits>
#include <vector>

#include "ibmb/batch/store_types.hpp"
#include "ibmb/core/error.hpp"

namespace ibmb {

namespace detail {

struct dlpack_holder {
  DLManagedTensor tensor{};
  std::vector<std::int64_t> shape;
};

template <class T>
DLDataType dlpack_dtype() {
  if constexpr (std::is_same_v<T, float>) return {kDLFloat, 32, 1};
  if constexpr (std::is_same_v<T, double>) return {kDLFloat, 64, 1};
  if constexpr (std::is_same_v<T, std::int64_t>) return {kDLInt, 64, 1};
  if constexpr (std::is_same_v<T, std::int32_t>) return {kDLInt, 32, 1};
}

inline void dlpack_delete(DLManagedTensor* t) {
  delete static_cast<dlpack_holder*>(t->manager_ctx);
}

inline DLManagedTensor* dlpack_wrap(const void* data, DLDataType dtype,
                                    std::vector<std::int64_t> shape) {
  auto h = std::make_unique<dlpack_holder>();
  h->shape = std::move(shape);
  DLTensor& t = h->tensor.dl_tensor;
  t.data = const_cast<void*>(data);  // DLPack has no const; see the note at the top
  t.device = {kDLCPU, 0};
  t.ndim = static_cast<std::int32_t>(h->shape.size());
  t.dtype = dtype;
  t.shape = h->shape.data();
  t.strides = nullptr;  // compact, row-major
  t.byte_offset = 0;
  h->tensor.manager_ctx = h.get();
  h->tensor.deleter = &dlpack_delete;
  return &h.release()->tensor;
}

}  // namespace detail

/// A DLPack view of `values` with `shape` (product must equal the size). Zero copy: the
/// caller's memory must outlive the tensor. Free with `t->deleter(t)` (a consumer that takes
/// ownership does this itself).
template <class T>
DLManagedTensor* to_dlpack(std::span<const T> values, std::vector<std::int64_t> shape) {
  std::int64_t n = 1;
  for (auto s : shape) n *= s;
  IBMB_EXPECTS(n == static_cast<std::int64_t>(values.size()), "to_dlpack: shape holds ", n,
               " elements but the span has ", values.size());
  return detail::dlpack_wrap(values.data(), detail::dlpack_dtype<T>(), std::move(shape));
}

/// One stored batch as DLPack tensors (each owned by the caller until handed to a consumer).
struct batch_dlpack {
  DLManagedTensor* node_ids = nullptr;  ///< int64 [n], outputs first
  DLManagedTensor* labels = nullptr;    ///< int64 [n], or null when the store has none
  DLManagedTensor* features = nullptr;  ///< [n, F] float32/float16/bfloat16, or null (ids-only)
  DLManagedTensor* indptr = nullptr;    ///< int64 [n + 1], local CSR
  DLManagedTensor* indices = nullptr;   ///< int64 [nnz]
  DLManagedTensor* weights = nullptr;   ///< float32 [nnz], globally normalized
  std::int64_t num_outputs = 0;         ///< the first num_outputs rows are the outputs
};

inline batch_dlpack to_dlpack(const batch_view& b) {
  batch_dlpack out;
  const auto n = b.num_nodes();
  out.num_outputs = b.num_outputs;
  out.node_ids = to_dlpack(b.node_ids, {n});
  if (!b.labels.empty()) out.labels = to_dlpack(b.labels, {n});
  if (b.dtype == feature_dtype::float32) {
    out.features = to_dlpack(b.features(), {n, b.num_features});
  } else if (b.dtype == feature_dtype::float16 || b.dtype == feature_dtype::bfloat16) {
    const DLDataType dt = b.dtype == feature_dtype::float16 ? DLDataType{kDLFloat, 16, 1}
                                                            : DLDataType{kDLBfloat, 16, 1};
    out.features = detail::dlpack_wrap(b.feature_bytes.data(), dt, {n, b.num_features});
  }
  out.indptr = to_dlpack(b.graph.indptr, {static_cast<std::int64_t>(b.graph.indptr.size())});
  out.indices = to_dlpack(b.graph.indices, {static_cast<std::int64_t>(b.graph.indices.size())});
  out.weights = to_dlpack(b.graph.weights, {static_cast<std::int64_t>(b.graph.weights.size())});
  return out;
}

/// Frees the tensors of `to_dlpack(batch_view)` that no consumer took.
inline void release(batch_dlpack& t) {
  for (DLManagedTensor** p :
       {&t.node_ids, &t.labels, &t.features, &t.indptr, &t.indices, &t.weights}) {
    if (*p) (*p)->deleter(*p);
    *p = nullptr;
  }
}

}  // namespace ibmb

#else
#define IBMB_HAS_DLPACK 0
#endif
