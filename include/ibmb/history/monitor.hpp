// ibmb: staleness monitor. Online: the drift revealed by every write (mean squared
// fresh - cached), bucketed by the age of the cached row. Periodically: an exact audit. The
// trainer computes exact embeddings (e.g. a full-graph forward pass with the current
// weights), writes them into the monitor's *shadow* store (never the live one), and for
// the halo rows it actually reads reports the cached and the corrected rows; the monitor
// gives ||cached - exact|| / ||exact|| and ||corrected - exact|| / ||exact|| per layer, as a
// time series that it writes as CSV.
#pragma once

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <span>
#include <string>
#include <vector>

#include "ibmb/core/error.hpp"
#include "ibmb/core/file.hpp"
#include "ibmb/history/history_types.hpp"
#include "ibmb/history/store.hpp"

namespace ibmb {

struct monitor_params {
  /// Age bucket edges: bucket k holds ages in [edges[k-1] + 1, edges[k]] (the first from 0,
  /// the last open-ended). Increasing.
  std::vector<std::int64_t> age_edges = {1, 2, 4, 8, 16, 32, 64, 128};
  /// Count refresh writes in the drift statistics.
  bool include_refresh = true;
};

class staleness_monitor final : public history_observer {
 public:
  explicit staleness_monitor(monitor_params p = {}) : p_(std::move(p)) {
    for (std::size_t k = 0; k < p_.age_edges.size(); ++k)
      IBMB_EXPECTS(p_.age_edges[k] >= 0 && (k == 0 || p_.age_edges[k] > p_.age_edges[k - 1]),
                   "staleness_monitor: age_edges must be non-negative and increasing (entry ", k,
                   " = ", p_.age_edges[k], ")");
  }

  // ---- online drift ----

  void on_write(const write_event& e) override {
    if (e.refresh && !p_.include_refresh) return;
    const auto& s = *e.store;
    const auto d = static_cast<std::size_t>(s.dim(e.layer));
    auto& B = buckets(e.layer);
    for (std::size_t i = 0; i < e.nodes.size(); ++i) {
      const auto w = s.last_written(e.layer, e.nodes[i]);
      if (w < 0) continue;
      const auto cached = s.row(e.layer, e.nodes[i]);
      double sq = 0, fr = 0;
      for (std::size_t j = 0; j < d; ++j) {
        const double x = static_cast<double>(e.fresh[i * d + j]);
        sq += (x - cached[j]) * (x - cached[j]);
        fr += x * x;
      }
      auto& b = B[bucket_of(e.step - w)];
      b.rows += 1;
      b.sum_sq += sq / static_cast<double>(d);
      b.sum_fresh += fr / static_cast<double>(d);
    }
  }

  /// Drift per age bucket of `layer` since the start / the last `reset_drift`.
  [[nodiscard]] std::vector<drift_bucket> drift(std::int64_t layer) const {
    std::vector<drift_bucket> out;
    const auto nb = p_.age_edges.size() + 1;
    for (std::size_t k = 0; k < nb; ++k) {
      drift_bucket b;
      b.age_lo = k == 0 ? 0 : p_.age_edges[k - 1] + 1;
      b.age_hi =
          k < p_.age_edges.size() ? p_.age_edges[k] : std::numeric_limits<std::int64_t>::max();
      if (layer >= 0 && static_cast<std::size_t>(layer) < drift_.size()) {
        const auto& a = drift_[static_cast<std::size_t>(layer)][k];
        b.rows = a.rows;
        if (a.rows > 0) {
          b.mean_sq_delta = a.sum_sq / static_cast<double>(a.rows);
          b.mean_sq_fresh = a.sum_fresh / static_cast<double>(a.rows);
        }
      }
      out.push_back(b);
    }
    return out;
  }
  void reset_drift() { drift_.clear(); }

  // ---- exact audit ----

  /// Starts an audit: returns the shadow store (same shape and permutation as `live`, nothing
  /// written). Write the exact rows into it (`shadow.push(l, nodes, exact, step)`), then call
  /// `audit_rows` for the halo reads, then `end_audit`. `live` is never modified.
  history_store& begin_audit(const history_store& live, std::int64_t epoch, std::int64_t step) {
    IBMB_EXPECTS(!in_audit_, "staleness_monitor::begin_audit: an audit is already open (epoch ",
                 epoch_, ")");
    if (shadow_.num_layers() != live.num_layers() || shadow_.num_nodes() != live.num_nodes() ||
        shadow_.options().dims != live.options().dims ||
        !std::ranges::equal(shadow_.permutation(), live.permutation()))
      shadow_ = live.empty_like();
    else
      shadow_ = shadow_.empty_like();
    in_audit_ = true;
    epoch_ = epoch;
    step_ = step;
    acc_.assign(static_cast<std::size_t>(live.num_layers()), audit_acc{});
    return shadow_;
  }
  [[nodiscard]] history_store& shadow() { return shadow_; }
  [[nodiscard]] const history_store& shadow() const { return shadow_; }
  [[nodiscard]] bool in_audit() const { return in_audit_; }

  /// Compares the halo rows of one read against the shadow store's exact rows: `cached` as
  /// pulled from `live`, `corrected` as the corrector returned them (both nodes x dim). Every
  /// node must have an exact row in the shadow store.
  void audit_rows(const history_store& live, std::int64_t layer,
                  std::span<const std::int64_t> nodes, std::span<const float> cached,
                  std::span<const float> corrected) {
    IBMB_EXPECTS(in_audit_, "staleness_monitor::audit_rows: no audit open (call begin_audit)");
    IBMB_EXPECTS(&live != &shadow_, "staleness_monitor::audit_rows: pass the live store");
    const auto d = static_cast<std::size_t>(live.dim(layer));
    IBMB_EXPECTS(
        layer < static_cast<std::int64_t>(acc_.size()) && shadow_.dim(layer) == live.dim(layer),
        "staleness_monitor::audit_rows: layer ", layer, " of the live store (width ",
        live.dim(layer), ") does not match the audited store's layers");
    IBMB_EXPECTS(cached.size() == nodes.size() * d && corrected.size() == cached.size(),
                 "staleness_monitor::audit_rows: ", cached.size(), " cached and ", corrected.size(),
                 " corrected values for ", nodes.size(), " rows x ", d);
    auto& a = acc_[static_cast<std::size_t>(layer)];
    for (std::size_t i = 0; i < nodes.size(); ++i) {
      const auto v = nodes[i];
      IBMB_EXPECTS(shadow_.last_written(layer, v) >= 0, "staleness_monitor::audit_rows: layer ",
                   layer, ", node ", v, " has no exact row in the shadow store");
      const auto ex = shadow_.row(layer, v);
      double ec = 0, ek = 0, ee = 0;
      for (std::size_t j = 0; j < d; ++j) {
        const double e = ex[j];
        ec += (cached[i * d + j] - e) * (cached[i * d + j] - e);
        ek += (corrected[i * d + j] - e) * (corrected[i * d + j] - e);
        ee += e * e;
      }
      a.err_cached += ec;
      a.err_corrected += ek;
      a.exact += ee;
      a.rows += 1;
      const auto w = live.last_written(layer, v);
      if (w < 0) {
        ++a.never_written;
      } else {
        a.age_sum += static_cast<double>(step_ - w);
        ++a.aged;
      }
    }
  }

  /// Closes the audit: one record per layer with at least one audited row, appended to the
  /// series and returned.
  std::vector<audit_record> end_audit() {
    IBMB_EXPECTS(in_audit_, "staleness_monitor::end_audit: no audit open");
    std::vector<audit_record> out;
    for (std::size_t l = 0; l < acc_.size(); ++l) {
      const auto& a = acc_[l];
      if (a.rows == 0) continue;
      audit_record r;
      r.epoch = epoch_;
      r.layer = static_cast<std::int64_t>(l);
      r.step = step_;
      r.rows = a.rows;
      r.never_written = a.never_written;
      r.mean_age = a.aged > 0 ? a.age_sum / static_cast<double>(a.aged) : 0.0;
      r.cached_error = relative(a.err_cached, a.exact);
      r.corrected_error = relative(a.err_corrected, a.exact);
      out.push_back(r);
    }
    series_.insert(series_.end(), out.begin(), out.end());
    in_audit_ = false;
    return out;
  }

  [[nodiscard]] const std::vector<audit_record>& series() const { return series_; }

  /// The series as CSV: header `epoch,layer,cached_error,corrected_error,rows,never_written,
  /// mean_age,step`, one line per audit and layer. Written atomically (a reader sees the old
  /// or the new file, never a partial one).
  void write_csv(const std::filesystem::path& path) const {
    atomic_write(path, [&](file_writer& w) {
      w.write(std::string_view(csv_header));
      w.write(std::string_view("\n"));
      // std::to_chars: the same text as printf's %lld / %.9g / %.6g, but never localized (a
      // program's LC_NUMERIC must not turn the decimal point into a comma).
      std::string line;
      // Each field is followed by `end` (',' or the line's '\n').
      auto put_int = [&](std::int64_t x, char end) {
        char buf[24];
        line.append(buf, std::to_chars(buf, buf + sizeof buf, x).ptr);
        line += end;
      };
      auto put_real = [&](double x, int digits, char end) {
        char buf[40];
        line.append(
            buf, std::to_chars(buf, buf + sizeof buf, x, std::chars_format::general, digits).ptr);
        line += end;
      };
      for (const auto& r : series_) {
        line.clear();
        put_int(r.epoch, ',');
        put_int(r.layer, ',');
        put_real(r.cached_error, 9, ',');
        put_real(r.corrected_error, 9, ',');
        put_int(r.rows, ',');
        put_int(r.never_written, ',');
        put_real(r.mean_age, 6, ',');
        put_int(r.step, '\n');
        w.write(std::string_view(line));
      }
    });
  }
  static constexpr const char* csv_header =
      "epoch,layer,cached_error,corrected_error,rows,never_written,mean_age,step";

 private:
  struct drift_acc {
    std::int64_t rows = 0;
    double sum_sq = 0, sum_fresh = 0;
  };
  struct audit_acc {
    double err_cached = 0, err_corrected = 0, exact = 0, age_sum = 0;
    std::int64_t rows = 0, never_written = 0, aged = 0;
  };

  static double relative(double err, double exact) {
    if (exact > 0) return std::sqrt(err / exact);
    return err > 0 ? std::numeric_limits<double>::infinity() : 0.0;
  }
  std::size_t bucket_of(std::int64_t age) const {
    return static_cast<std::size_t>(
        std::lower_bound(p_.age_edges.begin(), p_.age_edges.end(), age) - p_.age_edges.begin());
  }
  std::vector<drift_acc>& buckets(std::int64_t layer) {
    IBMB_EXPECTS(layer >= 0, "staleness_monitor: layer ", layer);
    while (drift_.size() <= static_cast<std::size_t>(layer))
      drift_.emplace_back(p_.age_edges.size() + 1);
    return drift_[static_cast<std::size_t>(layer)];
  }

  monitor_params p_;
  std::vector<std::vector<drift_acc>> drift_;
  history_store shadow_;
  bool in_audit_ = false;
  std::int64_t epoch_ = 0, step_ = 0;
  std::vector<audit_acc> acc_;
  std::vector<audit_record> series_;
};

}  // namespace ibmb
