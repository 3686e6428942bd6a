// ibmb::cuda: error checks that name the failed call. Needs nvcc (or a CUDA-aware host
// compiler with the toolkit on the include path).
#pragma once

#include <cuda_runtime.h>
#include <cusparse.h>

#include "ibmb/core/error.hpp"

namespace ibmb {

/// A CUDA runtime or cuSPARSE call failed.
class cuda_error : public backend_error {
 public:
  using backend_error::backend_error;
};

}  // namespace ibmb

/// Throws `ibmb::cuda_error` naming the call, the error and the location.
#define IBMB_CUDA_TRY(call)                                                                     \
  do {                                                                                          \
    const cudaError_t ibmb_status_ = (call);                                                    \
    if (ibmb_status_ != cudaSuccess) {                                                          \
      throw ::ibmb::cuda_error(::ibmb::detail::concat(                                          \
          #call, " failed: ", cudaGetErrorName(ibmb_status_), " (",                             \
          cudaGetErrorString(ibmb_status_), ") [" __FILE__ ":" IBMB_DETAIL_STR(__LINE__) "]")); \
    }                                                                                           \
  } while (false)

#define IBMB_CUSPARSE_TRY(call)                                                                \
  do {                                                                                         \
    const cusparseStatus_t ibmb_status_ = (call);                                              \
    if (ibmb_status_ != CUSPARSE_STATUS_SUCCESS) {                                             \
      throw ::ibmb::cuda_error(                                                                \
          ::ibmb::detail::concat(#call, " failed: ", cusparseGetErrorName(ibmb_status_), " (", \
                                 cusparseGetErrorString(ibmb_status_),                         \
                                 ") [" __FILE__ ":" IBMB_DETAIL_STR(__LINE__) "]"));           \
    }                                                                                          \
  } while (false)
