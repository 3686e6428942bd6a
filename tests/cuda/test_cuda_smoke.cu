// [cuda] tests: built whenever IBMB_ENABLE_CUDA is on, skipped at run time without a GPU.
#include <catch2/catch.hpp>

#include "ibmb/cuda/resources.cuh"

namespace {
__global__ void add_one(float* x, int n) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) x[i] += 1.0f;
}
}  // namespace

TEST_CASE("a kernel runs on the stream of ibmb::cuda::resources", "[cuda]") {
  if (ibmb::cuda::device_count() == 0) {
    WARN("skipped: no CUDA device");
    return;
  }
  ibmb::cuda::resources res;
  const int n = 1000;
  float* d = nullptr;
  IBMB_CUDA_TRY(cudaMallocAsync(&d, n * sizeof(float), res.stream()));
  IBMB_CUDA_TRY(cudaMemsetAsync(d, 0, n * sizeof(float), res.stream()));
  add_one<<<(n + 255) / 256, 256, 0, res.stream()>>>(d, n);
  IBMB_CUDA_TRY(cudaGetLastError());
  float h[n];
  IBMB_CUDA_TRY(cudaMemcpyAsync(h, d, sizeof h, cudaMemcpyDeviceToHost, res.stream()));
  IBMB_CUDA_TRY(cudaFreeAsync(d, res.stream()));
  res.synchronize();
  for (float v : h) REQUIRE(v == 1.0f);
}

TEST_CASE("IBMB_CUDA_TRY names the failed call", "[cuda]") {
  auto fail = [] { IBMB_CUDA_TRY(cudaErrorInvalidValue); };
  REQUIRE_THROWS_WITH(fail(), Catch::Contains("cudaErrorInvalidValue"));
}
