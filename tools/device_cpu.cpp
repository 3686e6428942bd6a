// The GPU entry points of a build without CUDA: `--device cuda` fails with one line.
#include "device.hpp"

#include "ibmb/core/error.hpp"

namespace ibmb::cli {

namespace {
[[noreturn]] void no_cuda() {
  throw ibmb::backend_error(
      "--device cuda: this ibmb was built without CUDA (configure with -DIBMB_ENABLE_CUDA=ON)");
}
}  // namespace

void require_cuda_device() { no_cuda(); }

ibmb::ppr_matrix<std::int64_t, float> cuda_nodewise_ppr(
    ibmb::csr_view<std::int64_t, std::int64_t, float>, std::span<const std::int64_t>,
    const ibmb::ppr_params&, device_report*) {
  no_cuda();
}

ibmb::batch_plan<std::int64_t> cuda_make_plan(const ibmb::dataset&, std::span<const std::int64_t>,
                                              const plan_options&, plan_timing*, device_report*) {
  no_cuda();
}

}  // namespace ibmb::cli
