// The GPU paths of `ibmb ppr` and `ibmb build` (`--device cuda`), compiled by nvcc.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "device.hpp"
#include "ibmb/batch/batchwise.hpp"
#include "ibmb/batch/nodewise.hpp"
#include "ibmb/batch/plan.hpp"
#include "ibmb/core/error.hpp"
#include "ibmb/cuda/csr.cuh"
#include "ibmb/cuda/error.cuh"
#include "ibmb/cuda/push.cuh"
#include "ibmb/cuda/resources.cuh"
#include "ibmb/cuda/topic.cuh"
#include "ibmb/partition/metis.hpp"
#include "ibmb/ppr/topic_types.hpp"

namespace ibmb::cli {

namespace {

using view64 = ibmb::csr_view<std::int64_t, std::int64_t, float>;

std::string device_name() {
  int dev = 0;
  IBMB_CUDA_TRY(cudaGetDevice(&dev));
  cudaDeviceProp prop{};
  IBMB_CUDA_TRY(cudaGetDeviceProperties(&prop, dev));
  return prop.name;
}

double since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

/// Batch-wise IBMB with the scores on the GPU: `ibmb::batchwise_plan_with` (METIS parts over
/// all nodes, a part's outputs form a batch, its auxiliaries are the top
/// ceil(aux_ratio * N / parts) nodes of a topic-sensitive PPR teleporting to them) with
/// `cuda::topic_ppr_topk` (power iteration by cuSPARSE SpMM) for the scores.
ibmb::batch_plan<std::int64_t> cuda_batchwise_plan(const ibmb::cuda::resources& res, view64 g,
                                                   std::span<const std::int64_t> outputs,
                                                   std::int32_t parts, const plan_options& o,
                                                   plan_timing& t) {
  const ibmb::batchwise_params bp = batchwise_params_of(o, parts);  // solver fields unused
  ibmb::topic_ppr_params pp = bp.ppr;
  pp.progress = o.progress;
  ibmb::batchwise_stats st;
  auto plan = ibmb::batchwise_plan_with(
      g, outputs, bp,
      [&](const ibmb::teleport_sets<std::int64_t>& sets, std::int64_t k) {
        ibmb::cuda::device_csr<std::int64_t, std::int64_t, float> dg(g, res);
        return ibmb::cuda::topic_ppr_topk(res, dg.view(), sets, k, pp);
      },
      &st);
  t.partition_seconds = st.partition_seconds;
  t.ppr_seconds = st.ppr_seconds;
  return plan;
}

}  // namespace

void require_cuda_device() {
  int n = 0;
  const cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess) {
    (void)cudaGetLastError();
    throw ibmb::backend_error(ibmb::detail::concat("--device cuda: no usable CUDA device (",
                                                   cudaGetErrorName(e), ": ", cudaGetErrorString(e),
                                                   ")"));
  }
  if (n == 0) throw ibmb::backend_error("--device cuda: no CUDA device found");
}

ibmb::ppr_matrix<std::int64_t, float> cuda_nodewise_ppr(view64 g,
                                                        std::span<const std::int64_t> outputs,
                                                        const ibmb::ppr_params& p,
                                                        device_report* report) {
  require_cuda_device();
  ibmb::cuda::resources res;
  ibmb::cuda::device_csr<std::int64_t, std::int64_t, float> dg(g, res);
  ibmb::cuda::push_device_stats st;
  auto m = ibmb::cuda::nodewise_ppr(res, dg.view(), outputs, p, {}, &st);
  if (report) {
    report->name = device_name();
    report->push_rounds = st.rounds;
    report->push_overflowed = st.overflowed;
  }
  return m;
}

ibmb::batch_plan<std::int64_t> cuda_make_plan(const ibmb::dataset& ds,
                                              std::span<const std::int64_t> outputs,
                                              const plan_options& o, plan_timing* timing,
                                              device_report* report) {
  if (o.method != "nodewise" && o.method != "batchwise")
    throw ibmb::invalid_argument(ibmb::detail::concat(
        "--device cuda: --method ", o.method,
        " runs on the CPU only (the GPU builds nodewise and batchwise plans)"));
  require_cuda_device();
  const auto t0 = std::chrono::steady_clock::now();
  const auto g = ds.graph.view();
  const auto [batch_size, parts] = plan_sizes_of(o, static_cast<std::int64_t>(outputs.size()));
  ibmb::cuda::resources res;
  plan_timing t;
  ibmb::batch_plan<std::int64_t> plan;
  if (report) report->name = device_name();
  if (o.method == "nodewise") {
    const ibmb::nodewise_params p = nodewise_params_of(o, batch_size);
    ibmb::cuda::device_csr<std::int64_t, std::int64_t, float> dg(g, res);
    ibmb::cuda::push_device_stats st;
    plan = ibmb::cuda::nodewise_plan(res, dg.view(), outputs, p, {}, nullptr, &st);
    t.ppr_seconds = since(t0);
    if (report) {
      report->push_rounds = st.rounds;
      report->push_overflowed = st.overflowed;
    }
  } else {
    plan = cuda_batchwise_plan(res, g, outputs, parts, o, t);
  }
  t.seconds = since(t0);
  if (timing) *timing = t;
  return plan;
}

}  // namespace ibmb::cli
