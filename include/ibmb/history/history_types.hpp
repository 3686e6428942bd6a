// ibmb: plain types shared by the historical-embedding store, its correctors, the SAT
// predictor and the staleness monitor (see docs/history.md).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

namespace ibmb {

class history_store;

/// Options of a `history_store`.
struct history_options {
  /// Number of nodes of the graph (rows of every table).
  std::int64_t num_nodes = 0;
  /// Width of every cached layer; one contiguous num_nodes x dims[l] float32 table each.
  std::vector<std::int64_t> dims;
  /// Previous versions kept per tracked row (the ring): 0 keeps none (the SAT predictor and
  /// the momentum corrector then see no history), at most `max_ring`.
  int ring = 3;
  /// Rows that keep a ring (e.g. the union of every batch's halo, see
  /// `history_plan::all_halo_nodes`); nullopt keeps one for every row. The ring costs
  /// ring x rows x dim floats per layer, so restrict it on large graphs.
  std::optional<std::vector<std::int64_t>> ring_nodes;
  /// Reading a row never written throws `ibmb::error` instead of only being counted.
  bool strict = false;

  static constexpr int max_ring = 16;
};

/// A run of rows that are adjacent both in the caller's list (from `src`) and in the
/// permuted table (from `start`): one block copy.
struct history_run {
  std::int64_t src = 0;     ///< first index into the caller's node list / row buffer
  std::int64_t start = 0;   ///< first permuted position
  std::int64_t length = 0;  ///< rows
  bool operator==(const history_run&) const = default;
};

/// What an observer sees of a write, delivered *before* the store is changed, so
/// `store->pull`, `last_written` and the ring still give the old (cached) state.
struct write_event {
  const history_store* store = nullptr;
  std::int64_t layer = 0;
  std::int64_t step = 0;                  ///< the step being written
  std::span<const std::int64_t> nodes;    ///< global ids of the written rows
  std::span<const float> fresh;           ///< nodes.size() x dim, the new values
  std::span<const float> neighbor_drift;  ///< optional, nodes.size() x dim (see predictor.hpp)
  bool refresh = false;                   ///< a forward-only refresh rather than a training push
};

/// Receives every write of the store it is passed to (the SAT predictor learns from the
/// revealed (cached, fresh) pairs, the monitor measures drift).
class history_observer {
 public:
  virtual ~history_observer() = default;
  virtual void on_write(const write_event& e) = 0;
};

/// What a corrector sees when halo rows are read.
struct read_context {
  const history_store* store = nullptr;
  std::int64_t layer = 0;
  std::int64_t step = 0;                  ///< the current training step
  std::span<const std::int64_t> nodes;    ///< the halo rows read (global ids)
  std::span<const float> neighbor_drift;  ///< optional, nodes.size() x stored dim
};

/// One audited (epoch, layer) of the staleness monitor.
struct audit_record {
  std::int64_t epoch = 0;
  std::int64_t layer = 0;
  std::int64_t step = 0;
  std::int64_t rows = 0;           ///< halo rows compared (with repetition across batches)
  std::int64_t never_written = 0;  ///< of those, rows the live store never wrote
  double mean_age = 0;             ///< mean steps since the compared rows were written
  double cached_error = 0;         ///< ||cached - exact||_F / ||exact||_F over the rows
  double corrected_error = 0;      ///< ||corrected - exact||_F / ||exact||_F over the rows
};

/// Drift of one age bucket: ages in [age_lo, age_hi].
struct drift_bucket {
  std::int64_t age_lo = 0;
  std::int64_t age_hi = 0;
  std::int64_t rows = 0;     ///< revealed (cached, fresh) pairs
  double mean_sq_delta = 0;  ///< mean over rows and dims of (fresh - cached)^2
  double mean_sq_fresh = 0;  ///< mean over rows and dims of fresh^2 (for a relative scale)
};

}  // namespace ibmb
