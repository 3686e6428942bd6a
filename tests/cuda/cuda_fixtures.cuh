// Shared helpers of the [cuda] tests.
#pragma once

#include <catch2/catch.hpp>

#include "ibmb/cuda/resources.cuh"

namespace ibmb::test {

/// True (with a Catch2 warning) when no CUDA device is usable: the test returns early.
inline bool no_device() {
  if (ibmb::cuda::device_count() > 0) return false;
  WARN("skipped: no CUDA device");
  return true;
}

}  // namespace ibmb::test
