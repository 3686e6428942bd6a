// ibmb: parameters of topic-sensitive PPR (PPR teleporting to a set of nodes), shared by
// the CPU (ppr/topic.hpp) and GPU paths.
#pragma once

#include <cstdint>

#include "ibmb/core/progress.hpp"

namespace ibmb {

/// Which random-walk matrix the power iteration multiplies with.
enum class ppr_transition {
  /// P = D^-1 A, the reference implementation's choice. On an undirected graph the fixed
  /// point is x_v = sum_{u in S} PPR(u, v) d_u / (|S| d_v): a degree-rescaled score that
  /// penalizes hubs.
  row,
  /// P = A D^-1, the textbook topic-sensitive PPR: x_v = sum_{u in S} PPR(u, v) / |S|.
  column,
};

struct topic_ppr_params {
  double alpha = 0.25;      ///< teleport probability
  int max_iterations = 50;  ///< the reference runs exactly 50
  double tolerance = 0.0;   ///< > 0: stop once every column's L1 change is below it
  int block_columns = 32;   ///< teleport sets processed together (memory O(N x block))
  ppr_transition transition = ppr_transition::row;
  progress_callback progress;  ///< ("topic_ppr", sets done, sets total)
};

}  // namespace ibmb
