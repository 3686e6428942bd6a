// ibmb: loader for OGB node-property-prediction datasets in their raw form (what
// `ogb.nodeproppred` downloads and unzips, e.g. ogbn_arxiv/):
//   raw/edge.csv[.gz]           "src,dst" per line
//   raw/num-node-list.csv[.gz]  one line: the node count (several lines = several graphs: not
//                               a node dataset, rejected)
//   raw/num-edge-list.csv[.gz]  optional; when present the edge count must match
//   raw/node-feat.csv[.gz]      optional; N lines of F comma-separated floats
//   raw/node-label.csv[.gz]     optional; N lines of one label ("nan" -> -1, "3.0" -> 3)
//   split/<name>/{train,valid,test}.csv[.gz]  one node id per line; the first <name> in
//                               sorted order is used, or split/ may hold the csv files itself.
// The root or its raw/ folder may be passed; split/ is looked for beside raw/ and inside it.
// Edge features (edge-feat.csv) and heterogeneous graphs are not read.
//
// Structure: the graph is made UNDIRECTED: every edge gets its reverse, duplicates are merged
// (first occurrence wins) and self-loops are kept as listed. ogbn datasets store one direction
// for undirected graphs (OGB's master.csv sets add_inverse_edge for products/proteins), and
// for the directed citation graph ogbn-arxiv the usual practice (PyG `to_undirected`, the
// IBMB paper) is to symmetrize as well. Columns come out sorted.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "ibmb/core/error.hpp"
#include "ibmb/graph/build.hpp"
#include "ibmb/graph/dataset.hpp"
#include "ibmb/graph/io/edgelist.hpp"
#include "ibmb/graph/io/text.hpp"

namespace ibmb {
namespace detail {

/// `dir/stem.csv`, else `dir/stem.csv.gz`.
inline std::optional<std::filesystem::path> ogb_file(const std::filesystem::path& dir,
                                                     const std::string& stem) {
  for (const char* ext : {".csv", ".csv.gz"}) {
    const auto p = dir / (stem + ext);
    if (std::filesystem::is_regular_file(p)) return p;
  }
  return std::nullopt;
}

/// A label token: integer, integral float ("3.0"), or nan -> -1.
inline std::int64_t ogb_label(const text_reader& in, std::string_view tok) {
  if (text_reader::is_integer(tok)) return in.parse<std::int64_t>(tok);
  const double v = in.parse<double>(tok);
  if (std::isnan(v)) return -1;
  if (!std::isfinite(v) || v != std::floor(v) || std::abs(v) > 9.0e15)
    in.fail("bad label '", tok, "' (expected an integer class id or nan)");
  return static_cast<std::int64_t>(v);
}

}  // namespace detail

/// Loads an OGB raw node-prediction dataset (see the header comment for the layout and the
/// structural treatment). `dir` is the dataset root or its raw/ folder.
template <class I = std::int64_t, class O = std::int64_t>
basic_dataset<I, O> load_ogb_dir(const std::filesystem::path& dir) {
  namespace fs = std::filesystem;
  detail::check_csr_types<I, O, float>();
  if (!fs::is_directory(dir)) throw io_error(detail::concat(dir.string(), ": not a directory"));
  fs::path raw = dir;
  if (!detail::ogb_file(raw, "edge") && fs::is_directory(dir / "raw")) raw = dir / "raw";
  const auto edge_path = detail::ogb_file(raw, "edge");
  if (!edge_path)
    throw io_error(detail::concat(dir.string(), ": no edge.csv or edge.csv.gz (in it or in raw/)"));
  const auto nn_path = detail::ogb_file(raw, "num-node-list");
  if (!nn_path)
    throw io_error(detail::concat(raw.string(), ": no num-node-list.csv or num-node-list.csv.gz"));

  basic_dataset<I, O> ds;
  {
    const fs::path named = raw.filename() == "raw" ? raw.parent_path() : raw;
    ds.name = named.filename().string();
  }

  // node count
  std::int64_t n = 0;
  std::string n_where;  // "file:line" of the node count
  {
    text_reader in(*nn_path);
    if (!in.next())
      throw format_error(detail::concat(in.name(), ": empty (expected the node count)"));
    in.expect_columns(1, "node count");
    n = in.get<std::int64_t>(0);
    n_where = in.where();
    if (n < 0) in.fail("negative node count ", n);
    if (n > detail::max_text_id + 1)
      in.fail<out_of_range>("node count ", n, " exceeds the limit ", detail::max_text_id + 1,
                            " (2^44; node ids index dense arrays, so a larger count cannot be "
                            "allocated)");
    if (in.next())
      in.fail("a second graph: only single-graph node-prediction datasets are supported");
  }
  if (n > static_cast<std::int64_t>(std::numeric_limits<I>::max()))
    throw out_of_range(
        detail::concat(nn_path->string(), ":1: ", n, " nodes do not fit the requested index type"));

  // edges
  detail::raw_edges edges;
  {
    text_reader in(*edge_path);
    edges = detail::read_edges(in, n, true, false, false,
                               static_cast<std::int64_t>(std::numeric_limits<I>::max()));
  }
  if (const auto ne_path = detail::ogb_file(raw, "num-edge-list")) {
    text_reader in(*ne_path);
    if (in.next()) {
      in.expect_columns(1, "edge count");
      const auto m = in.get<std::int64_t>(0);
      if (m != static_cast<std::int64_t>(edges.src.size()))
        in.fail("edge count ", m, " but ", edge_path->string(), " has ", edges.src.size(),
                " edges");
    }
  }

  // features
  if (const auto p = detail::ogb_file(raw, "node-feat")) {
    text_reader in(*p);
    const auto f = detail::read_dense_features(in);
    if (f.rows != n)
      throw format_error(detail::concat(in.name(), ": ", f.rows, " feature rows but ", n,
                                        " nodes (", nn_path->string(), ")"));
    ds.num_features = f.cols;
    ds.features = std::move(f.values);
  }

  // labels
  if (const auto p = detail::ogb_file(raw, "node-label")) {
    text_reader in(*p);
    while (in.next()) {
      if (in.size() != 1)
        in.fail("expected one label per line, got ", in.size(),
                " columns (multi-label datasets such as ogbn-proteins are not supported)");
      ds.labels.push_back(detail::ogb_label(in, in[0]));
      if (ds.labels.back() < -1) in.fail("label ", ds.labels.back(), " (expected >= -1)");
      detail::check_label(in, ds.labels.back());
    }
    if (static_cast<std::int64_t>(ds.labels.size()) != n)
      throw format_error(detail::concat(in.name(), ": ", ds.labels.size(), " labels but ", n,
                                        " nodes (", nn_path->string(), ")"));
  }

  // split
  std::optional<fs::path> split_dir;
  for (const auto& cand : {raw.parent_path() / "split", raw / "split", dir / "split"}) {
    if (fs::is_directory(cand)) {
      split_dir = cand;
      break;
    }
  }
  if (split_dir && !detail::ogb_file(*split_dir, "train")) {
    std::vector<fs::path> subs;
    for (const auto& e : fs::directory_iterator(*split_dir))
      if (e.is_directory()) subs.push_back(e.path());
    std::sort(subs.begin(), subs.end());
    split_dir.reset();
    for (const auto& s : subs)
      if (detail::ogb_file(s, "train")) {
        split_dir = s;
        break;
      }
  }
  if (split_dir) {
    const char* names[3] = {"train", "valid", "test"};
    std::vector<I>* out[3] = {&ds.train_idx, &ds.val_idx, &ds.test_idx};
    for (int s = 0; s < 3; ++s) {
      const auto p = detail::ogb_file(*split_dir, names[s]);
      if (!p) continue;
      text_reader in(*p);
      while (in.next()) {
        in.expect_columns(1, "node id");
        const auto v = in.get<std::int64_t>(0);
        if (v < 0 || v >= n) in.fail<out_of_range>("node id ", v, " outside [0, ", n, ")");
        out[s]->push_back(static_cast<I>(v));
      }
    }
  }

  build_options b;
  b.make_undirected = true;
  b.duplicates = duplicate_policy::keep_first;
  ds.graph = detail::edges_to_csr<I, O>(edges, n, b, edge_path->string(), n_where);
  return ds;
}

}  // namespace ibmb
