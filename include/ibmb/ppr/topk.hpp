// ibmb: top-k selection of PPR scores by partial selection, with a total order
// (score descending, then node id ascending) so ties never depend on input order or threads.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <optional>
#include <span>
#include <utility>
#include <vector>

#include "ibmb/core/error.hpp"
#include "ibmb/ppr/ppr_types.hpp"

namespace ibmb {

/// The ranking used everywhere: higher score first, equal scores by smaller id.
struct score_then_id_order {
  template <class V, class I>
  bool operator()(const std::pair<V, I>& a, const std::pair<V, I>& b) const {
    return a.first != b.first ? a.first > b.first : a.second < b.second;
  }
};

namespace detail {

/// Keeps the k best (score, id) entries in place (k <= 0 keeps all), plus the entry of
/// `must_keep` if present and not among them; leaves the result sorted by id ascending.
/// O(n + k log k) comparisons. Scores must not be NaN.
template <class V, class I>
void topk_inplace(std::vector<std::pair<V, I>>& e, std::int64_t k, std::optional<I> must_keep) {
  const score_then_id_order better;
  if (k > 0 && static_cast<std::size_t>(k) < e.size()) {
    const auto kk = static_cast<std::ptrdiff_t>(k);
    std::nth_element(e.begin(), e.begin() + kk - 1, e.end(), better);
    // After nth_element, [0, k) holds the k best (the k-th best sits at k - 1).
    std::optional<std::pair<V, I>> extra;
    if (must_keep) {
      bool inside = false;
      for (std::ptrdiff_t i = 0; i < kk && !inside; ++i) inside = e[i].second == *must_keep;
      if (!inside) {
        for (std::size_t i = static_cast<std::size_t>(kk); i < e.size(); ++i)
          if (e[i].second == *must_keep) {
            extra = e[i];
            break;
          }
      }
    }
    e.resize(static_cast<std::size_t>(kk));
    if (extra) e.push_back(*extra);
  }
  std::sort(e.begin(), e.end(), [](const auto& a, const auto& b) { return a.second < b.second; });
}

}  // namespace detail

/// The `k` highest-scoring entries of a sparse vector (ids with scores), ties broken by smaller
/// id; `always` (if given and present in `ids`) is kept even when it is not among the k best,
/// making k + 1 entries. k <= 0 keeps every entry. The result is sorted by id.
/// Throws `ibmb::invalid_argument` on size mismatch or a NaN score (naming its position).
template <class I, class V>
sparse_row<I, V> topk_select(std::span<const I> ids, std::span<const V> scores, std::int64_t k,
                             std::optional<I> always = std::nullopt) {
  IBMB_EXPECTS(ids.size() == scores.size(), "topk_select: ", ids.size(), " ids but ", scores.size(),
               " scores");
  std::vector<std::pair<V, I>> e(ids.size());
  for (std::size_t i = 0; i < ids.size(); ++i) {
    IBMB_EXPECTS(!std::isnan(scores[i]), "topk_select: score at position ", i, " (id ", ids[i],
                 ") is NaN");
    e[i] = {scores[i], ids[i]};
  }
  detail::topk_inplace(e, k, always);
  sparse_row<I, V> out;
  out.indices.reserve(e.size());
  out.values.reserve(e.size());
  for (const auto& [s, id] : e) {
    out.indices.push_back(id);
    out.values.push_back(s);
  }
  return out;
}

}  // namespace ibmb
