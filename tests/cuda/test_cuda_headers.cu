// Every ibmb/cuda header in one more translation unit of ibmb_cuda_tests: the other test files
// include them too, so a kernel or function defined in a header without `inline` (or a
// template) would be defined twice and this binary would fail to link.
#include <catch2/catch.hpp>

#include "ibmb/cuda/batch_store.cuh"
#include "ibmb/cuda/csr.cuh"
#include "ibmb/cuda/error.cuh"
#include "ibmb/cuda/extract.cuh"
#include "ibmb/cuda/memory.cuh"
#include "ibmb/cuda/push.cuh"
#include "ibmb/cuda/resources.cuh"
#include "ibmb/cuda/topic.cuh"
#include "ibmb/cuda/topk.cuh"

TEST_CASE("the ibmb/cuda headers link from several translation units", "[cuda][headers]") {
  // Taking a kernel's address needs its host stub from this translation unit.
  const void* k = reinterpret_cast<const void*>(&ibmb::cuda::detail::topk_offsets);
  REQUIRE(k != nullptr);
}
