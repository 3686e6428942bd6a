// The GPU paths of `ibmb ppr` and `ibmb build` (`--device cuda`), compiled by nvcc.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "device.hpp"
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

/// Batch-wise IBMB with the scores on the GPU: the steps of `ibmb::batchwise_plan` (METIS
/// parts over all nodes, a part's outputs form a batch, its auxiliaries are the top
/// ceil(aux_ratio * N / parts) nodes of a topic-sensitive PPR teleporting to them) with
/// `cuda::topic_ppr_topk` (power iteration by cuSPARSE SpMM) for the scores.
ibmb::batch_plan<std::int64_t> cuda_batchwise_plan(const ibmb::cuda::resources& res, view64 g,
                                                   std::span<const std::int64_t> outputs,
                                                   std::int32_t parts, const plan_options& o,
                                                   plan_timing& t) {
  IBMB_EXPECTS(parts >= 1 && parts <= std::max<std::int64_t>(1, g.num_rows),
               "batchwise: parts = ", parts, " outside [1, ", g.num_rows, "]");
  IBMB_EXPECTS(o.aux_ratio >= 0 && std::isfinite(o.aux_ratio),
               "batchwise: aux_ratio = ", o.aux_ratio, " must be finite and >= 0");
  ibmb::detail::check_unique_outputs(outputs, "batchwise_plan");
  if (outputs.empty()) return {};
  std::vector<std::int64_t> sorted(outputs.begin(), outputs.end());
  std::sort(sorted.begin(), sorted.end());

  auto t0 = std::chrono::steady_clock::now();
  ibmb::report(o.progress, "partition", 0, 1);
  ibmb::partition_params mp;
  mp.parts = parts;
  mp.seed = o.seed;
  const auto part = ibmb::metis_partition(g, mp);
  t.partition_seconds = since(t0);
  ibmb::report(o.progress, "partition", 1, 1);

  // Outputs grouped by part (counting sort keeps each part's outputs sorted); parts without
  // outputs are no batch.
  std::vector<std::int64_t> ptr(static_cast<std::size_t>(parts) + 1, 0);
  for (auto v : sorted) ++ptr[static_cast<std::size_t>(part.part[static_cast<std::size_t>(v)]) + 1];
  for (std::size_t p = 0; p < static_cast<std::size_t>(parts); ++p) ptr[p + 1] += ptr[p];
  std::vector<std::int64_t> grouped(sorted.size());
  {
    std::vector<std::int64_t> at(ptr.begin(), ptr.end() - 1);
    for (auto v : sorted)
      grouped[static_cast<std::size_t>(
          at[static_cast<std::size_t>(part.part[static_cast<std::size_t>(v)])]++)] = v;
  }
  std::vector<std::int64_t> set_ptr{0};
  for (std::size_t p = 0; p < static_cast<std::size_t>(parts); ++p)
    if (ptr[p + 1] > ptr[p]) set_ptr.push_back(ptr[p + 1]);
  const ibmb::teleport_sets<std::int64_t> sets{set_ptr, grouped};

  const auto aux = static_cast<std::int64_t>(
      std::ceil(o.aux_ratio * static_cast<double>(g.num_rows) / static_cast<double>(parts)));
  ibmb::topic_ppr_params pp;
  pp.alpha = o.alpha;
  pp.max_iterations = o.tol > 0 ? std::max(o.iterations, 1000) : o.iterations;
  pp.tolerance = o.tol;
  pp.progress = o.progress;
  t0 = std::chrono::steady_clock::now();
  ibmb::cuda::device_csr<std::int64_t, std::int64_t, float> dg(g, res);
  const auto top = ibmb::cuda::topic_ppr_topk(res, dg.view(), sets, aux, pp);
  t.ppr_seconds = since(t0);

  ibmb::batch_plan<std::int64_t> plan;
  std::vector<std::int64_t> nodes;
  for (std::int64_t b = 0; b < sets.size(); ++b) {
    const auto outs = sets.set(b);
    const auto list = top.list(b);
    nodes.assign(list.begin(), list.end());
    nodes.insert(nodes.end(), outs.begin(), outs.end());
    std::sort(nodes.begin(), nodes.end());
    nodes.erase(std::unique(nodes.begin(), nodes.end()), nodes.end());
    plan.push_batch(outs, nodes);
  }
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
  const auto n_out = static_cast<std::int64_t>(outputs.size());
  // The defaults of make_plan (pipeline.hpp).
  const std::int64_t batch_size =
      o.batch_size > 0 ? o.batch_size
                       : std::max<std::int64_t>(1, std::min<std::int64_t>(n_out, 4096));
  const std::int32_t parts = o.parts > 0 ? o.parts
                                         : static_cast<std::int32_t>(std::max<std::int64_t>(
                                               1, (n_out + batch_size - 1) / batch_size));
  ibmb::cuda::resources res;
  plan_timing t;
  ibmb::batch_plan<std::int64_t> plan;
  if (report) report->name = device_name();
  if (o.method == "nodewise") {
    ibmb::nodewise_params p;
    p.ppr.alpha = o.alpha;
    p.ppr.eps = o.eps;
    p.ppr.topk = o.topk;
    p.merge.max_outputs = batch_size;
    p.progress = o.progress;
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
