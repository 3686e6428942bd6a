// ibmb: `batch_plan`, what every planner returns: per batch its output nodes and all of its
// nodes (outputs and auxiliaries), as plain CSR-like arrays that serialize as they are.
// A leaf type (depends on core/ only) so that partition/ can build plans too.
#pragma once

#include <cstdint>
#include <span>
#include <type_traits>
#include <vector>

#include "ibmb/core/error.hpp"

namespace ibmb {

template <class I = std::int64_t>
struct batch_plan {
  static_assert(std::is_integral_v<I> && std::is_signed_v<I>,
                "ibmb: batch_plan index type must be a signed integer");
  using index_type = I;

  /// Batch b's outputs: outputs[output_ptr[b] .. output_ptr[b+1]), sorted ascending, unique.
  std::vector<std::int64_t> output_ptr{0};
  std::vector<I> outputs;
  /// Batch b's nodes (outputs ∪ auxiliaries): nodes[node_ptr[b] .. node_ptr[b+1]), sorted.
  std::vector<std::int64_t> node_ptr{0};
  std::vector<I> nodes;

  [[nodiscard]] std::size_t num_batches() const {
    return output_ptr.empty() ? 0 : output_ptr.size() - 1;
  }
  [[nodiscard]] std::span<const I> batch_outputs(std::size_t b) const {
    return std::span<const I>(outputs).subspan(
        static_cast<std::size_t>(output_ptr[b]),
        static_cast<std::size_t>(output_ptr[b + 1] - output_ptr[b]));
  }
  [[nodiscard]] std::span<const I> batch_nodes(std::size_t b) const {
    return std::span<const I>(nodes).subspan(
        static_cast<std::size_t>(node_ptr[b]),
        static_cast<std::size_t>(node_ptr[b + 1] - node_ptr[b]));
  }
  [[nodiscard]] std::size_t num_outputs() const { return outputs.size(); }

  /// Appends one batch; both lists must already be sorted (checked by `validate`).
  void push_batch(std::span<const I> outs, std::span<const I> all_nodes) {
    outputs.insert(outputs.end(), outs.begin(), outs.end());
    output_ptr.push_back(static_cast<std::int64_t>(outputs.size()));
    nodes.insert(nodes.end(), all_nodes.begin(), all_nodes.end());
    node_ptr.push_back(static_cast<std::int64_t>(nodes.size()));
  }

  /// Batches [first, last) as a plan of their own (copies their lists): to materialize a plan
  /// in pieces when the whole store would not fit in memory (see `chunk_batches`).
  [[nodiscard]] batch_plan slice(std::size_t first, std::size_t last) const {
    IBMB_EXPECTS(first <= last && last <= num_batches(), "batch_plan::slice: [", first, ", ", last,
                 ") outside the plan's ", num_batches(), " batches");
    batch_plan p;
    for (std::size_t b = first; b < last; ++b) p.push_batch(batch_outputs(b), batch_nodes(b));
    return p;
  }

  /// Checks the structure: pointer arrays consistent, each batch's outputs and nodes sorted and
  /// unique, outputs ⊂ nodes, ids in [0, num_nodes). Throws `ibmb::format_error` naming the
  /// batch and position of the first problem. (Whether the outputs of different batches
  /// overlap is the planner's business and not checked here.)
  void validate(I num_nodes) const {
    auto fail = [](auto&&... a) { throw format_error(detail::concat("batch_plan: ", a...)); };
    auto check_ptr = [&](const std::vector<std::int64_t>& ptr, std::size_t n, const char* what) {
      if (ptr.empty() || ptr[0] != 0) fail(what, "_ptr must start with 0");
      for (std::size_t b = 0; b + 1 < ptr.size(); ++b)
        if (ptr[b + 1] < ptr[b])
          fail(what, "_ptr decreases at batch ", b, ": ", ptr[b], " -> ", ptr[b + 1]);
      if (static_cast<std::size_t>(ptr.back()) != n)
        fail(what, "_ptr ends at ", ptr.back(), " but there are ", n, " ", what, " entries");
    };
    check_ptr(output_ptr, outputs.size(), "output");
    check_ptr(node_ptr, nodes.size(), "node");
    if (output_ptr.size() != node_ptr.size())
      fail(output_ptr.size() - 1, " batches of outputs but ", node_ptr.size() - 1,
           " batches of nodes");
    for (std::size_t b = 0; b < num_batches(); ++b) {
      const auto o = batch_outputs(b);
      const auto n = batch_nodes(b);
      for (std::size_t i = 0; i < n.size(); ++i) {
        if (n[i] < 0 || n[i] >= num_nodes)
          fail("batch ", b, ", node position ", i, ": id ", n[i], " outside [0, ", num_nodes, ")");
        if (i > 0 && n[i - 1] >= n[i])
          fail("batch ", b, ", node position ", i, ": id ", n[i], " not greater than ", n[i - 1]);
      }
      std::size_t k = 0;
      for (std::size_t i = 0; i < o.size(); ++i) {
        if (i > 0 && o[i - 1] >= o[i])
          fail("batch ", b, ", output position ", i, ": id ", o[i], " not greater than ", o[i - 1]);
        while (k < n.size() && n[k] < o[i]) ++k;
        if (k == n.size() || n[k] != o[i])
          fail("batch ", b, ", output position ", i, ": output ", o[i],
               " missing from the batch's nodes");
      }
    }
  }

  bool operator==(const batch_plan&) const = default;
};

/// Splits a plan's batches into consecutive ranges [bounds[c], bounds[c+1]) holding at most
/// `max_nodes` node rows each (a batch larger than that gets a range of its own), in order.
template <class I>
std::vector<std::size_t> chunk_batches(const batch_plan<I>& plan, std::int64_t max_nodes) {
  IBMB_EXPECTS(max_nodes > 0, "chunk_batches: max_nodes = ", max_nodes, " must be > 0");
  std::vector<std::size_t> bounds{0};
  std::int64_t rows = 0;
  for (std::size_t b = 0; b < plan.num_batches(); ++b) {
    const std::int64_t n = plan.node_ptr[b + 1] - plan.node_ptr[b];
    if (b > bounds.back() && rows + n > max_nodes) {
      bounds.push_back(b);
      rows = 0;
    }
    rows += n;
  }
  if (plan.num_batches() > bounds.back()) bounds.push_back(plan.num_batches());
  return bounds;
}

}  // namespace ibmb
