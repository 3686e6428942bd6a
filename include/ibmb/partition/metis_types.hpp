// ibmb: parameter and result types of the METIS wrapper (shared by CPU and CUDA code).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace ibmb {

/// METIS_PartGraphKway or METIS_PartGraphRecursive.
enum class partition_method { kway, recursive };

struct partition_params {
  std::int32_t parts = 2;
  partition_method method = partition_method::kway;
  /// METIS_OPTION_SEED: the same seed and input give the same partition.
  std::int64_t seed = 0;
  /// Allowed load imbalance (max part weight / average), in [1, 10]; METIS_OPTION_UFACTOR =
  /// max(1, round((imbalance - 1) * 1000)): rounded to METIS's 1/1000 steps, minimum 1.001
  /// (METIS rejects 0, so 1.0 means 1.001). 1.03 is METIS's own k-way default.
  double imbalance = 1.03;
  /// Optional, one non-negative weight per node (per subset node for
  /// `metis_partition_subset`), e.g. to up-weight output nodes. Empty: all 1.
  std::span<const std::int64_t> vertex_weights = {};
};

struct partition_result {
  std::vector<std::int32_t> part;  ///< part of each node, in [0, parts)
  /// Undirected edges (pairs of entries u->v, v->u) whose endpoints lie in different parts,
  /// as METIS reports it.
  std::int64_t edge_cut = 0;
  std::int32_t parts = 0;
};

}  // namespace ibmb
