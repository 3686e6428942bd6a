// ibmb: a graph learning dataset: structure, node features, labels and a split.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "ibmb/core/error.hpp"
#include "ibmb/graph/csr.hpp"

namespace ibmb {

/// Bound on class ids: a label must be -1 (unlabelled) or in [0, max_num_classes), so the
/// class count (1 + the largest label) fits a 32-bit int and products such as
/// batch size x classes stay far from overflow. Class ids are small dense integers in every
/// real node-classification dataset (ogbn-papers100M has 172 classes); a label of 2^31 or
/// more is a corrupt file, not a class.
inline constexpr std::int64_t max_num_classes = std::numeric_limits<std::int32_t>::max();

namespace detail {
/// The end of every "label too large" message.
inline constexpr std::string_view class_id_limit_why =
    " (2^31 - 1, so the class count fits a 32-bit int)";
}  // namespace detail

/// Graph, row-major float32 features (num_nodes x num_features), int64 labels (-1 =
/// unlabelled) and train/val/test node ids. Any part but the graph may be empty.
template <class I = std::int64_t, class O = std::int64_t>
struct basic_dataset {
  using graph_type = csr_graph<I, O, float>;

  std::string name;
  graph_type graph;
  std::vector<float> features;  // num_nodes * num_features, row-major
  std::int64_t num_features = 0;
  std::vector<std::int64_t> labels;  // num_nodes or empty
  std::vector<I> train_idx, val_idx, test_idx;

  [[nodiscard]] I num_nodes() const { return graph.num_rows; }
  [[nodiscard]] O num_edges() const { return graph.num_edges(); }

  /// 1 + the largest label (0 when unlabelled). Throws `ibmb::out_of_range` naming the node
  /// and the value when a label is not below `max_num_classes` (`validate` rejects those).
  [[nodiscard]] std::int64_t num_classes() const {
    std::int64_t c = -1;
    std::size_t at = 0;
    for (std::size_t i = 0; i < labels.size(); ++i)
      if (labels[i] > c) {
        c = labels[i];
        at = i;
      }
    if (c >= max_num_classes)
      throw out_of_range(detail::concat("dataset '", name, "': label of node ", at, " is ", c,
                                        ": class ids must be below ", max_num_classes));
    return c + 1;
  }

  [[nodiscard]] std::span<const float> feature_row(I v) const {
    return std::span<const float>(features).subspan(
        static_cast<std::size_t>(v) * static_cast<std::size_t>(num_features),
        static_cast<std::size_t>(num_features));
  }

  /// Checks sizes and ranges; throws `ibmb::format_error` naming the dataset, the array
  /// and the first bad position/value (including NaN/Inf features).
  void validate() const {
    auto fail = [&](auto&&... a) {
      throw format_error(detail::concat("dataset '", name, "': ", a...));
    };
    try {
      graph.validate();
    } catch (const format_error& e) {
      fail(e.what());
    }
    if (graph.num_rows != graph.num_cols) fail("graph is ", graph.num_rows, " x ", graph.num_cols);
    const auto n = static_cast<std::int64_t>(graph.num_rows);
    // Edge weights feed the normalizations (degrees, square roots): NaN, Inf or a negative
    // weight would turn into NaN or sign-flipped batches far from here.
    if (graph.has_weights())
      for (std::int64_t row = 0; row < n; ++row)
        for (auto e = graph.indptr[static_cast<std::size_t>(row)];
             e < graph.indptr[static_cast<std::size_t>(row) + 1]; ++e)
          if (const auto w = graph.weights[static_cast<std::size_t>(e)]; !detail::weight_ok(w))
            fail("edge weight of entry ", e, " (", row, " -> ",
                 graph.indices[static_cast<std::size_t>(e)], ") is ", w,
                 " (expected finite and >= 0)");
    if (num_features < 0) fail("negative feature count ", num_features);
    if (!features.empty() || num_features > 0) {
      if (static_cast<std::int64_t>(features.size()) != n * num_features)
        fail("features hold ", features.size(), " values, expected ", n, " nodes x ", num_features,
             " features = ", n * num_features);
      for (std::size_t i = 0; i < features.size(); ++i)
        if (!std::isfinite(features[i]))
          fail("feature of node ",
               static_cast<std::int64_t>(i) / std::max<std::int64_t>(num_features, 1), ", column ",
               static_cast<std::int64_t>(i) % std::max<std::int64_t>(num_features, 1), " is ",
               features[i]);
    }
    if (!labels.empty()) {
      if (static_cast<std::int64_t>(labels.size()) != n)
        fail(labels.size(), " labels for ", n, " nodes");
      for (std::size_t i = 0; i < labels.size(); ++i) {
        if (labels[i] < -1) fail("label of node ", i, " is ", labels[i], " (expected >= -1)");
        if (labels[i] >= max_num_classes)
          fail("label of node ", i, " is ", labels[i], ": class ids must be below ",
               max_num_classes, detail::class_id_limit_why);
      }
    }
    auto check_split = [&](const std::vector<I>& idx, const char* what) {
      for (std::size_t i = 0; i < idx.size(); ++i)
        if (idx[i] < 0 || static_cast<std::int64_t>(idx[i]) >= n)
          fail(what, "[", i, "] = ", idx[i], " outside [0, ", n, ")");
    };
    check_split(train_idx, "train_idx");
    check_split(val_idx, "val_idx");
    check_split(test_idx, "test_idx");
  }
};

using dataset = basic_dataset<std::int64_t, std::int64_t>;

}  // namespace ibmb
