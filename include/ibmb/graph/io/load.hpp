// ibmb: one entry point that loads any supported dataset from a SPEC string:
//   path                    format auto-detected (see detect_format)
//   <format>:path           format forced: numpy, npz, ogb, edgelist-dir, musae, edgelist
//   synthetic[:k=v,...]     the embedded generator (graph/generate.hpp)
//   path.npz#split=S        split S of a multi-split .npz (heterophilous layout)
//   path#weighted           an edge list whose third column is the edge weight
#pragma once

#include <charconv>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ibmb/core/error.hpp"
#include "ibmb/core/progress.hpp"
#include "ibmb/graph/dataset.hpp"
#include "ibmb/graph/generate.hpp"
#include "ibmb/graph/io/edgelist.hpp"
#include "ibmb/graph/io/musae.hpp"
#include "ibmb/graph/io/npz_dataset.hpp"
#include "ibmb/graph/io/numpy_dir.hpp"
#include "ibmb/graph/io/ogb.hpp"

namespace ibmb {

enum class dataset_format {
  numpy_dir,
  npz,
  ogb_dir,
  edge_list_dir,
  musae_dir,
  edge_list,
  synthetic
};

inline std::string_view to_string(dataset_format f) {
  switch (f) {
    case dataset_format::numpy_dir:
      return "numpy";
    case dataset_format::npz:
      return "npz";
    case dataset_format::ogb_dir:
      return "ogb";
    case dataset_format::edge_list_dir:
      return "edgelist-dir";
    case dataset_format::musae_dir:
      return "musae";
    case dataset_format::edge_list:
      return "edgelist";
    case dataset_format::synthetic:
      return "synthetic";
  }
  return "?";
}

/// A SPEC taken apart: the format, the path it applies to, and the split for .npz files.
struct dataset_source {
  dataset_format format = dataset_format::synthetic;
  std::filesystem::path path;
  std::string synthetic_spec;
  int split = 0;
  bool weighted = false;  ///< edge list: `#weighted`, the third column is the edge weight
};

namespace detail {

inline bool exists_any(const std::filesystem::path& dir, std::initializer_list<const char*> names) {
  for (const char* n : names)
    if (std::filesystem::exists(dir / n)) return true;
  return false;
}

/// The single file in `dir` whose name ends in `suffix`, or empty.
inline std::filesystem::path only_file_with_suffix(const std::filesystem::path& dir,
                                                   std::string_view suffix) {
  std::filesystem::path found;
  int count = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    if (e.is_regular_file() && name.size() >= suffix.size() &&
        name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0) {
      found = e.path();
      ++count;
    }
  }
  return count == 1 ? found : std::filesystem::path{};
}

inline dataset_source detect_directory(const std::filesystem::path& dir) {
  namespace fs = std::filesystem;
  if (fs::exists(dir / "indptr.npy")) return {dataset_format::numpy_dir, dir, {}, 0};
  if (exists_any(dir, {"edge.csv", "edge.csv.gz", "raw/edge.csv", "raw/edge.csv.gz"}))
    return {dataset_format::ogb_dir, dir, {}, 0};
  if (!only_file_with_suffix(dir, "_edges.csv").empty() &&
      !only_file_with_suffix(dir, "_target.csv").empty())
    return {dataset_format::musae_dir, dir, {}, 0};
  if (exists_any(dir, {"edges.txt", "edges.csv"}))
    return {dataset_format::edge_list_dir, dir, {}, 0};
  if (exists_any(dir, {"derived/edges.txt"}))
    return {dataset_format::edge_list_dir, dir / "derived", {}, 0};
  if (auto npz = only_file_with_suffix(dir, ".npz"); !npz.empty())
    return {dataset_format::npz, npz, {}, 0};
  throw format_error(concat(
      dir.string(),
      ": cannot tell the dataset format (looked for indptr.npy, edge.csv[.gz], *_edges.csv + "
      "*_target.csv, edges.txt, derived/edges.txt, a single *.npz); force one with "
      "numpy:|npz:|ogb:|edgelist-dir:|musae:|edgelist:PATH"));
}

inline int parse_split_suffix(std::string& path_text, std::string_view spec) {
  const auto hash = path_text.rfind("#split=");
  if (hash == std::string::npos) return 0;
  const std::string num = path_text.substr(hash + 7);
  int split = 0;
  const auto [p, ec] = std::from_chars(num.data(), num.data() + num.size(), split);
  if (ec != std::errc{} || p != num.data() + num.size() || split < 0)
    throw invalid_argument(concat("dataset spec '", spec, "': bad split '", num, "'"));
  path_text.resize(hash);
  return split;
}

}  // namespace detail

/// Works out what SPEC names without loading it. Throws `io_error` for a missing path and
/// `format_error` when the format cannot be told.
inline dataset_source resolve_dataset_spec(std::string_view spec) {
  namespace fs = std::filesystem;
  IBMB_EXPECTS(!spec.empty(), "empty dataset spec");
  if (spec == "synthetic" || spec.starts_with("synthetic:"))
    return {dataset_format::synthetic, {}, std::string(spec), 0};
  static constexpr std::pair<std::string_view, dataset_format> forced[] = {
      {"numpy:", dataset_format::numpy_dir}, {"npz:", dataset_format::npz},
      {"ogb:", dataset_format::ogb_dir},     {"edgelist-dir:", dataset_format::edge_list_dir},
      {"musae:", dataset_format::musae_dir}, {"edgelist:", dataset_format::edge_list}};
  std::string text(spec);
  std::optional<dataset_format> format;
  for (const auto& [prefix, f] : forced) {
    if (spec.starts_with(prefix)) {
      format = f;
      text = std::string(spec.substr(prefix.size()));
      break;
    }
  }
  constexpr std::string_view weighted_suffix = "#weighted";
  const bool weighted = text.ends_with(weighted_suffix);
  if (weighted) text.resize(text.size() - weighted_suffix.size());
  const int split = detail::parse_split_suffix(text, spec);
  const fs::path path(text);
  std::error_code ec;
  if (!fs::exists(path, ec))
    throw io_error(detail::concat(path.string(), ": no such file or directory"));
  dataset_source src;
  if (format) {
    src = {*format, path, {}, split};
  } else if (fs::is_directory(path)) {
    src = detail::detect_directory(path);
    src.split = split;
  } else if (path.extension() == ".npz") {
    src = {dataset_format::npz, path, {}, split};
  } else {
    src = {dataset_format::edge_list, path, {}, split};
  }
  if (weighted && src.format != dataset_format::edge_list)
    throw invalid_argument(detail::concat("dataset spec '", spec,
                                          "': #weighted applies to an edge-list file only (this "
                                          "is a ",
                                          to_string(src.format), " dataset)"));
  src.weighted = weighted;
  return src;
}

/// Loads the dataset SPEC names (see the top of this file). The result is validated.
template <class I = std::int64_t, class O = std::int64_t>
basic_dataset<I, O> load_dataset(std::string_view spec, const progress_callback& progress = {}) {
  const dataset_source src = resolve_dataset_spec(spec);
  basic_dataset<I, O> ds;
  switch (src.format) {
    case dataset_format::synthetic:
      ds = generate_dataset<I, O>(parse_generator_spec(src.synthetic_spec), progress);
      break;
    case dataset_format::numpy_dir:
      ds = load_numpy_dir<I, O>(src.path);
      break;
    case dataset_format::npz:
      ds = load_npz_dataset<I, O>(src.path, src.split);
      break;
    case dataset_format::ogb_dir:
      ds = load_ogb_dir<I, O>(src.path);
      break;
    case dataset_format::edge_list_dir:
      ds = load_edge_list_dir<I, O>(src.path);
      break;
    case dataset_format::musae_dir:
      ds = load_musae_dir<I, O>(src.path);
      break;
    case dataset_format::edge_list: {
      edge_list_options eo;
      eo.weighted = src.weighted;
      ds.graph = load_edge_list<I, O>(src.path, eo);
      ds.name = src.path.stem().string();
      break;
    }
  }
  if (ds.name.empty()) ds.name = src.path.filename().string();
  ds.validate();
  return ds;
}

}  // namespace ibmb
