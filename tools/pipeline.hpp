// The steps the CLI commands share: choose output nodes, preprocess the graph as the
// reference does, build a plan with any method and materialize it into a store.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "ibmb/batch/baselines.hpp"
#include "ibmb/batch/batchwise.hpp"
#include "ibmb/batch/materialize.hpp"
#include "ibmb/batch/nodewise.hpp"
#include "ibmb/batch/plan.hpp"
#include "ibmb/batch/store.hpp"
#include "ibmb/core/error.hpp"
#include "ibmb/graph/build.hpp"
#include "ibmb/graph/dataset.hpp"
#include "ibmb/graph/io/npy.hpp"
#include "ibmb/graph/io/npz.hpp"
#include "ibmb/graph/io/numpy_dir.hpp"

namespace ibmb::cli {

/// Whether `which` names one of the dataset's splits (train, val / valid, test).
inline bool is_split_name(std::string_view which) {
  return which == "train" || which == "val" || which == "valid" || which == "test";
}

/// The output nodes named by `which`: train, val, test, all, or a .npy file of node ids.
inline std::vector<std::int64_t> select_outputs(const ibmb::dataset& ds, std::string_view which) {
  if (is_split_name(which)) {
    const auto& idx = which == "train" ? ds.train_idx : which == "test" ? ds.test_idx : ds.val_idx;
    if (idx.empty())
      throw ibmb::invalid_argument(
          ibmb::detail::concat("dataset '", ds.name, "' has no ", which,
                               " split; name the output nodes as all or a .npy file"));
    return idx;
  }
  if (which == "all") {
    std::vector<std::int64_t> all(static_cast<std::size_t>(ds.num_nodes()));
    for (std::size_t v = 0; v < all.size(); ++v) all[v] = static_cast<std::int64_t>(v);
    return all;
  }
  const std::filesystem::path p(which);
  if (p.extension() != ".npy")
    throw ibmb::invalid_argument(ibmb::detail::concat(
        "outputs '", which, "': expected train, val, test, all or a .npy file of node ids"));
  // A 1-D integer array, as the dataset's own split files: a boolean mask or a float array
  // read as ids would silently select the wrong nodes.
  auto ids = ibmb::detail::index_array<std::int64_t>(ibmb::read_npy(p), p.string());
  for (std::size_t i = 0; i < ids.size(); ++i)
    if (ids[i] < 0 || ids[i] >= ds.num_nodes())
      throw ibmb::out_of_range(ibmb::detail::concat(p.string(), ": id ", ids[i], " at position ", i,
                                                    " outside [0, ", ds.num_nodes(), ")"));
  return ids;
}

/// A 1-D array as an `.npz` member.
template <class T>
ibmb::npz_member npz_vector(std::string name, const std::vector<T>& v) {
  return {std::move(name),
          ibmb::encode_npy(std::span<const T>(v), {static_cast<std::int64_t>(v.size())})};
}

/// The reference preprocessing, in place: undirected, no duplicates, one self-loop per node.
inline void preprocess(ibmb::dataset& ds) {
  ds.graph = ibmb::make_undirected_with_self_loops(ds.graph.view());
}

/// Everything a planner needs; unused fields are ignored by the other methods.
struct plan_options {
  std::string method = "nodewise";  ///< nodewise | batchwise | cluster | random | khop
  double alpha = 0.25;
  double eps = 2e-4;
  std::int64_t topk = 16;
  std::int64_t batch_size = 0;  ///< outputs per batch (nodewise, random, khop); 0 = auto
  std::int32_t parts = 0;       ///< batchwise / cluster parts; 0 = auto
  std::string solver = "push";  ///< batchwise: push | power (the reference's power iteration)
  int iterations = 50;          ///< batchwise power iterations
  double tol = 0;               ///< batchwise: stop on this L1 change instead
  double push_eps = 0;          ///< batchwise push threshold (0: ibmb::auto_topic_push_eps)
  double aux_ratio = 1.0;       ///< batchwise auxiliaries per batch = ratio * N / parts
  std::int32_t hops = 2;        ///< khop depth
  std::int64_t max_nodes = 0;   ///< khop cap per batch (0 = none)
  std::int64_t seed = 0;
  ibmb::progress_callback progress;
};

struct plan_timing {
  double seconds = 0;
  double partition_seconds = 0;
  double ppr_seconds = 0;
};

inline bool is_known_method(std::string_view m) {
  return m == "nodewise" || m == "batchwise" || m == "cluster" || m == "random" || m == "khop";
}

/// Outputs per batch and METIS parts for `n_out` outputs: the options' values, or defaults
/// that keep batches of a few thousand outputs, as in the paper's configs.
struct plan_sizes {
  std::int64_t batch_size;
  std::int32_t parts;
};
inline plan_sizes plan_sizes_of(const plan_options& o, std::int64_t n_out) {
  const std::int64_t batch_size =
      o.batch_size > 0 ? o.batch_size
                       : std::max<std::int64_t>(1, std::min<std::int64_t>(n_out, 4096));
  const std::int32_t parts = o.parts > 0 ? o.parts
                                         : static_cast<std::int32_t>(std::max<std::int64_t>(
                                               1, (n_out + batch_size - 1) / batch_size));
  return {batch_size, parts};
}

/// The node-wise planner's parameters for `o` (CPU and GPU paths).
inline ibmb::nodewise_params nodewise_params_of(const plan_options& o, std::int64_t batch_size) {
  ibmb::nodewise_params p;
  p.ppr.alpha = o.alpha;
  p.ppr.eps = o.eps;
  p.ppr.topk = o.topk;
  p.merge.max_outputs = batch_size;
  p.progress = o.progress;
  return p;
}

/// The batch-wise planner's parameters for `o` (CPU and GPU paths).
inline ibmb::batchwise_params batchwise_params_of(const plan_options& o, std::int32_t parts) {
  ibmb::batchwise_params p;
  p.parts = parts;
  p.aux_ratio = o.aux_ratio;
  p.ppr.alpha = o.alpha;
  p.ppr.max_iterations = o.tol > 0 ? std::max(o.iterations, 1000) : o.iterations;
  p.ppr.tolerance = o.tol;
  p.solver = o.solver == "power" ? ibmb::topic_solver::power_iteration : ibmb::topic_solver::push;
  p.push_eps = o.push_eps;
  p.metis.seed = o.seed;
  p.progress = o.progress;
  return p;
}

/// Builds the plan for `outputs` on the (preprocessed) graph of `ds`.
inline ibmb::batch_plan<std::int64_t> make_plan(const ibmb::dataset& ds,
                                                std::span<const std::int64_t> outputs,
                                                const plan_options& o,
                                                plan_timing* timing = nullptr) {
  using clock = std::chrono::steady_clock;
  const auto t0 = clock::now();
  const auto g = ds.graph.view();
  const auto [batch_size, parts] = plan_sizes_of(o, static_cast<std::int64_t>(outputs.size()));
  plan_timing t;
  ibmb::batch_plan<std::int64_t> plan;
  if (o.method == "nodewise") {
    plan = ibmb::nodewise_plan(g, outputs, nodewise_params_of(o, batch_size));
    t.ppr_seconds = std::chrono::duration<double>(clock::now() - t0).count();
  } else if (o.method == "batchwise") {
    ibmb::batchwise_stats st;
    plan = ibmb::batchwise_plan(g, outputs, batchwise_params_of(o, parts), &st);
    t.partition_seconds = st.partition_seconds;
    t.ppr_seconds = st.ppr_seconds;
  } else if (o.method == "cluster") {
    ibmb::cluster_plan_params p;
    p.parts = parts;
    p.seed = o.seed;
    plan = ibmb::cluster_plan(g, outputs, p);
    t.partition_seconds = std::chrono::duration<double>(clock::now() - t0).count();
  } else if (o.method == "random") {
    ibmb::random_plan_params p;
    p.batch_size = batch_size;
    p.seed = static_cast<std::uint64_t>(o.seed);
    plan = ibmb::random_output_plan(ds.num_nodes(), outputs, p);
  } else if (o.method == "khop") {
    ibmb::khop_plan_params p;
    p.batch_size = batch_size;
    p.hops = o.hops;
    p.max_nodes = o.max_nodes;
    p.seed = static_cast<std::uint64_t>(o.seed);
    plan = ibmb::khop_plan(g, outputs, p);
  } else {
    throw ibmb::invalid_argument(ibmb::detail::concat(
        "unknown method '", o.method, "' (expected nodewise, batchwise, cluster, random or khop)"));
  }
  t.seconds = std::chrono::duration<double>(clock::now() - t0).count();
  if (timing) *timing = t;
  return plan;
}

/// The header parameters recorded for a plan built with `o`.
inline ibmb::store_params store_params_of(const plan_options& o, std::int64_t parts_used) {
  ibmb::store_params s;
  s.method = o.method;
  s.seed = o.seed;
  if (o.method == "nodewise" || o.method == "batchwise") s.alpha = o.alpha;
  if (o.method == "nodewise") {
    s.eps = o.eps;
    s.topk = o.topk;
  }
  if (o.method == "batchwise" || o.method == "cluster") s.parts = parts_used;
  return s;
}

}  // namespace ibmb::cli
