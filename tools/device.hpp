// The GPU paths of `ibmb ppr` and `ibmb build` behind a plain C++ interface: g++ compiles the
// commands, nvcc compiles device_cuda.cu (linked when IBMB_ENABLE_CUDA is on); a build
// without CUDA links device_cpu.cpp, whose functions fail with one line.
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "ibmb/batch/plan.hpp"
#include "ibmb/graph/csr.hpp"
#include "ibmb/graph/dataset.hpp"
#include "ibmb/ppr/ppr_types.hpp"
#include "pipeline.hpp"

namespace ibmb::cli {

/// What the GPU path reports next to the usual fields (`--json` with `--device cuda`).
struct device_report {
  std::string name;                  ///< the CUDA device's name
  std::int64_t push_rounds = 0;      ///< table sizes the push used (nodewise)
  std::int64_t push_overflowed = 0;  ///< sources rerun with a larger table (nodewise)
};

/// Throws `ibmb::backend_error` with one line unless a CUDA device can be used (in a build
/// without CUDA: "--device cuda: this ibmb was built without CUDA (...)").
void require_cuda_device();

/// `ibmb::nodewise_ppr<float>` on the GPU (cuda/push.cuh): same parameters and result.
ibmb::ppr_matrix<std::int64_t, float> cuda_nodewise_ppr(
    ibmb::csr_view<std::int64_t, std::int64_t, float> g, std::span<const std::int64_t> outputs,
    const ibmb::ppr_params& p, device_report* report);

/// `make_plan` with the GPU: nodewise = GPU push + CPU grouping; batchwise = METIS on the CPU,
/// topic-sensitive PPR by cuSPARSE SpMM power iteration + GPU top-k. Other methods are
/// rejected (`ibmb::invalid_argument`).
ibmb::batch_plan<std::int64_t> cuda_make_plan(const ibmb::dataset& ds,
                                              std::span<const std::int64_t> outputs,
                                              const plan_options& o, plan_timing* timing,
                                              device_report* report);

}  // namespace ibmb::cli
