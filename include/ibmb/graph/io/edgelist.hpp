// ibmb: plain edge lists ("src dst" or "src dst weight" per line, whitespace or comma
// separated, optional header, '#' comments, plain or gzip) and edge-list dataset folders.
//
// What each loader does to the structure:
//   - `load_edge_list` / `parse_edge_list` return the graph AS STORED: one CSR entry per listed
//     line (duplicates and self-loops kept, columns sorted), unless `options.build` asks for
//     more (e.g. `build.make_undirected`).
//   - `load_edge_list_dir` treats the edge file as UNDIRECTED (the Planetoid-derived folders
//     list each undirected edge once, u < v): it adds the reverse of every edge and merges
//     duplicates (first occurrence wins), keeps self-loops as listed, columns sorted.
// Limits: node and feature ids are at most `detail::max_text_id` (2^44 - 1) and labels below
// `max_num_classes` (2^31 - 1), else an `ibmb::out_of_range` naming file:line and the value; a
// node or feature count too large for this machine's memory is reported the same way, with
// the file:line of the id that implied it (never a bare std::bad_alloc).
#pragma once

#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <exception>
#include <filesystem>
#include <limits>
#include <new>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "ibmb/core/error.hpp"
#include "ibmb/core/memory.hpp"
#include "ibmb/graph/build.hpp"
#include "ibmb/graph/csr.hpp"
#include "ibmb/graph/dataset.hpp"
#include "ibmb/graph/io/text.hpp"

namespace ibmb {

/// Options of `load_edge_list` / `parse_edge_list`.
struct edge_list_options {
  std::int64_t num_nodes = -1;     ///< -1: 1 + the largest id seen
  bool allow_header = true;        ///< a first data line with a non-numeric token is a header
  bool weighted = false;           ///< third column = weight (finite float)
  bool drop_out_of_range = false;  ///< else an id < 0 or >= num_nodes is an error (file:line)
  build_options build{};           ///< forwarded to coo_to_csr
};

namespace detail {

/// Largest node id (and feature id) the text loaders (edge lists, edge-list folders, OGB raw,
/// MUSAE) accept: 2^44 - 1, about 1.76e13. Ids index dense arrays (the CSR row pointer holds
/// one 8-byte entry per node, a dense feature row one float per column), so 2^44 nodes need
/// 2^47 bytes = 128 TiB for the row pointer alone: the whole user address space of x86-64 and
/// AArch64 with 4-level page tables. A larger id can never be loaded, and the bound keeps
/// `id + 1` and `count * 8` far from int64 overflow. Below it, a count too large for this
/// machine is reported at the allocation (`alloc_or_throw`), naming where it came from.
inline constexpr std::int64_t max_text_id = (std::int64_t{1} << 44) - 1;

/// The end of every "id exceeds the limit" message.
inline constexpr std::string_view text_id_limit_why =
    " (2^44 - 1; ids index dense arrays, so a larger one cannot be allocated)";

/// Throws `out_of_range` "file:line: <what> id V exceeds the limit ..." when `v` is above
/// `max_text_id`. `Reader`: `text_reader` or `csv_reader` (anything with `fail<E>(...)`).
template <class Reader>
void check_text_id(const Reader& in, std::int64_t v, const char* what) {
  if (v > max_text_id)
    in.template fail<out_of_range>(what, " id ", v, " exceeds the limit ", max_text_id,
                                   text_id_limit_why);
}

/// Throws `out_of_range` "file:line: label L ..." when a class id is not below
/// `max_num_classes` (see dataset.hpp).
inline void check_label(const text_reader& in, std::int64_t l) {
  if (l >= max_num_classes)
    in.fail<out_of_range>("label ", l, " is too large: class ids must be below ", max_num_classes,
                          class_id_limit_why, "; -1 = unlabelled");
}

/// Runs `f`, which allocates at least `bytes` in all. When `bytes` exceeds this machine's
/// physical memory it does not try (the allocation could only fail, or succeed on paper and
/// get the process killed once the memory is touched); std::bad_alloc / std::length_error
/// from `f` are turned into `out_of_range` too. `describe()` builds the start of the message
/// and should name the file:line of the id that implied the size, and the size.
template <class F, class D>
decltype(auto) alloc_or_throw(std::uint64_t bytes, F&& f, D&& describe) {
  if (const auto ram = physical_memory_bytes(); ram > 0 && bytes > ram)
    throw out_of_range(concat(describe(), ": needs at least ", bytes, " bytes, more than the ", ram,
                              " bytes of memory of this machine"));
  try {
    return f();
  } catch (const std::bad_alloc&) {
    throw out_of_range(concat(describe(), ": not enough memory (at least ", bytes, " bytes)"));
  } catch (const std::length_error&) {
    throw out_of_range(concat(describe(), ": larger than the largest possible allocation"));
  }
}

/// COO edges as read from a file, with the line of the largest id (for messages).
struct raw_edges {
  std::vector<std::int64_t> src, dst;
  std::vector<float> weight;
  std::int64_t max_id = -1;
  std::string max_where;  // "file:line" of the largest id
};

/// Reads every edge line. Ids must be >= 0 and, when `num_nodes >= 0`, < num_nodes (else
/// dropped with `drop`, or an error naming file:line and value); `index_max` is the largest id
/// the requested index type can hold.
inline raw_edges read_edges(text_reader& in, std::int64_t num_nodes, bool allow_header,
                            bool weighted, bool drop, std::int64_t index_max) {
  raw_edges r;
  if (!in.next()) return r;
  if (allow_header && in.skip_header() && in.size() == 0) return r;
  const std::size_t cols = weighted ? 3 : 2;
  do {
    if (in.size() != cols) {
      if (!weighted && in.size() == 3)
        in.fail("expected 2 columns (src dst), got 3: '", in.line(),
                "' (a third column is read as the edge weight with edge_list_options::weighted, or "
                "the SPEC suffix #weighted: PATH#weighted)");
      in.expect_columns(cols, weighted ? "src dst weight" : "src dst");
    }
    const auto s = in.get<std::int64_t>(0);
    const auto d = in.get<std::int64_t>(1);
    bool skip = false;
    for (const auto v : {s, d}) {
      if (v < 0 || (num_nodes >= 0 && v >= num_nodes)) {
        if (drop) {
          skip = true;
          continue;
        }
        if (v < 0) in.fail<out_of_range>("negative node id ", v);
        in.fail<out_of_range>("node id ", v, " outside [0, ", num_nodes, ")");
      }
      if (v > index_max)
        in.fail<out_of_range>("node id ", v, " does not fit the requested ",
                              index_max > std::numeric_limits<std::int32_t>::max() ? 64 : 32,
                              "-bit index type (use 64-bit indices)");
      check_text_id(in, v, "node");
    }
    float w = 1.0f;
    if (weighted) w = in.finite<float>(2, "edge weight");
    if (skip) continue;
    if (std::max(s, d) > r.max_id) {
      r.max_id = std::max(s, d);
      r.max_where = in.where();
    }
    r.src.push_back(s);
    r.dst.push_back(d);
    if (weighted) r.weight.push_back(w);
  } while (in.next());
  return r;
}

/// Builds the CSR of `n` nodes; an allocation failure names the edge file, the sizes and
/// `n_from` (where the node count came from; the edge file's largest id when empty).
template <class I, class O>
csr_graph<I, O, float> edges_to_csr(const raw_edges& r, std::int64_t n, const build_options& b,
                                    const std::string& name, const std::string& n_from = {}) {
  build_options opt = b;
  opt.drop_out_of_range = false;  // ranges were checked while reading
  return alloc_or_throw(
      mul_sat(static_cast<std::uint64_t>(n) + 1, sizeof(O)),  // the row pointer alone
      [&] {
        return coo_to_csr<I, O, float, std::int64_t, float>(n, std::span<const std::int64_t>(r.src),
                                                            std::span<const std::int64_t>(r.dst),
                                                            std::span<const float>(r.weight), opt);
      },
      [&] {
        const std::string& from = n_from.empty() ? r.max_where : n_from;
        return concat(name, ": a graph with ", n, " nodes and ", r.src.size(), " edges",
                      from.empty() ? "" : " (the node count comes from ", from,
                      from.empty() ? "" : ")");
      });
}

template <class I, class O>
csr_graph<I, O, float> parse_edge_list_impl(text_reader& in, const edge_list_options& opt) {
  detail::check_csr_types<I, O, float>();
  if (opt.num_nodes >= 0) check_fits_index<I>(opt.num_nodes, "num_nodes");
  IBMB_EXPECTS(opt.num_nodes >= -1, "edge_list_options::num_nodes = ", opt.num_nodes,
               " (expected -1 or a node count)");
  const raw_edges r =
      read_edges(in, opt.num_nodes, opt.allow_header, opt.weighted, opt.drop_out_of_range,
                 static_cast<std::int64_t>(std::numeric_limits<I>::max()));
  std::int64_t n = opt.num_nodes >= 0 ? opt.num_nodes : r.max_id + 1;
  if (n > static_cast<std::int64_t>(std::numeric_limits<I>::max()))
    throw out_of_range(concat(r.max_where, ": node id ", r.max_id, " gives ", n,
                              " nodes, which does not fit the requested index type"));
  return edges_to_csr<I, O>(r, n, opt.build, in.name());
}

}  // namespace detail

/// Reads an edge list file (plain or gzip). Ids are int64 on disk; see the header comment
/// for the accepted syntax and `edge_list_options` for the checks.
template <class I = std::int64_t, class O = std::int64_t>
csr_graph<I, O, float> load_edge_list(const std::filesystem::path& path,
                                      const edge_list_options& opt = {}) {
  text_reader in(path);
  return detail::parse_edge_list_impl<I, O>(in, opt);
}

/// Same as `load_edge_list` for text in memory (gzip bytes are inflated first); `name`
/// stands for the file name in error messages.
template <class I = std::int64_t, class O = std::int64_t>
csr_graph<I, O, float> parse_edge_list(std::string_view text, std::string_view name,
                                       const edge_list_options& opt = {}) {
  text_reader in(text, std::string(name));
  return detail::parse_edge_list_impl<I, O>(in, opt);
}

namespace detail {

/// Feature matrix read from a file, before the node count is final.
struct raw_features {
  std::vector<float> values;  // dense: rows x cols; COO: filled later
  std::int64_t rows = 0;      // dense rows, or 1 + max node id for COO
  std::int64_t cols = 0;
  bool coo = false;
  std::vector<std::int64_t> coo_node, coo_feat;
  std::vector<float> coo_val;
  std::vector<std::int64_t> coo_line;
  std::string name;
  std::string rows_where, cols_where;  // COO: "file:line" of the largest node / feature id
};

/// Dense rows "v0 v1 ...": every row the same width, finite values.
inline raw_features read_dense_features(text_reader& in) {
  raw_features f;
  f.name = in.name();
  while (in.next()) {
    if (f.rows == 0) f.cols = static_cast<std::int64_t>(in.size());
    if (static_cast<std::int64_t>(in.size()) != f.cols)
      in.fail("feature row ", f.rows, " has ", in.size(), " values, the first row has ", f.cols);
    for (std::size_t j = 0; j < in.size(); ++j) f.values.push_back(in.finite<float>(j, "feature"));
    ++f.rows;
  }
  return f;
}

/// Sparse "node feature value" lines.
inline raw_features read_coo_features(text_reader& in) {
  raw_features f;
  f.coo = true;
  f.name = in.name();
  while (in.next()) {
    in.expect_columns(3, "node feature value");
    const auto v = in.get<std::int64_t>(0);
    const auto j = in.get<std::int64_t>(1);
    if (v < 0) in.fail<out_of_range>("negative node id ", v);
    if (j < 0) in.fail<out_of_range>("negative feature id ", j);
    check_text_id(in, v, "node");
    check_text_id(in, j, "feature");
    f.coo_node.push_back(v);
    f.coo_feat.push_back(j);
    f.coo_val.push_back(in.finite<float>(2, "feature value"));
    f.coo_line.push_back(in.line_number());
    if (v + 1 > f.rows) {
      f.rows = v + 1;
      f.rows_where = in.where();
    }
    if (j + 1 > f.cols) {
      f.cols = j + 1;
      f.cols_where = in.where();
    }
  }
  return f;
}

/// Scatters COO features into a dense n x cols matrix; a repeated (node, feature) is an error.
/// `n_from` says where the node count came from (for messages).
inline void densify_features(raw_features& f, std::int64_t n, const std::string& n_from = {}) {
  if (!f.coo) return;
  auto describe = [&] {
    return concat(f.name, ": dense features of ", n, " nodes x ", f.cols, " columns (",
                  n_from.empty() ? "" : "the node count comes from ", n_from,
                  n_from.empty() ? "" : ", ", "the largest feature id is at ", f.cols_where, ")");
  };
  if (f.cols > 0 && n > std::numeric_limits<std::int64_t>::max() / f.cols)
    throw out_of_range(concat(describe(), ": the size overflows 64 bits"));
  std::vector<char> seen;
  alloc_or_throw(
      mul_sat(static_cast<std::uint64_t>(n * f.cols), sizeof(float) + 1),
      [&] {
        f.values.assign(static_cast<std::size_t>(n * f.cols), 0.0f);
        seen.assign(f.values.size(), 0);
      },
      describe);
  for (std::size_t k = 0; k < f.coo_node.size(); ++k) {
    const auto at = static_cast<std::size_t>(f.coo_node[k] * f.cols + f.coo_feat[k]);
    if (seen[at])
      throw format_error(concat(f.name, ":", f.coo_line[k], ": repeated entry for node ",
                                f.coo_node[k], ", feature ", f.coo_feat[k]));
    seen[at] = 1;
    f.values[at] = f.coo_val[k];
  }
  f.rows = n;
}

/// One id per line, >= 0.
inline std::vector<std::int64_t> read_id_list(text_reader& in, std::int64_t& max_id,
                                              std::string& max_where) {
  std::vector<std::int64_t> ids;
  while (in.next()) {
    in.expect_columns(1, "node id");
    const auto v = in.get<std::int64_t>(0);
    if (v < 0) in.fail<out_of_range>("negative node id ", v);
    check_text_id(in, v, "node");
    if (v > max_id) {
      max_id = v;
      max_where = in.where();
    }
    ids.push_back(v);
  }
  return ids;
}

template <class I>
std::vector<I> narrow_ids(const std::vector<std::int64_t>& ids) {
  return std::vector<I>(ids.begin(), ids.end());  // range checked against num_nodes before
}

/// Decides whether `features.txt` is COO: its first data line has exactly 3 tokens and the
/// first two are plain decimal integers.
inline bool looks_like_coo(const std::filesystem::path& p) {
  text_reader in(p);
  if (!in.next()) return true;  // empty: no features either way
  return in.size() == 3 && text_reader::is_integer(in[0]) && text_reader::is_integer(in[1]);
}

inline std::optional<std::filesystem::path> first_existing(
    const std::filesystem::path& dir, std::initializer_list<const char*> names) {
  for (const char* n : names)
    if (std::filesystem::is_regular_file(dir / n)) return dir / n;
  return std::nullopt;
}

}  // namespace detail

/// Loads an edge-list dataset folder:
///   - edges: `edges.txt`, `edges.csv` (optionally `.gz`), or the only `*.edges` file; read as
///     undirected (reverse edges added, duplicates merged, self-loops kept);
///   - `labels.txt` (optional): line i = label of node i, -1 = unlabelled;
///   - features (optional): `features_partial.txt` / `features_coo.txt` are sparse COO
///     "node feature value"; `features_dense.txt` is dense (one row "v0 v1 ..." per node);
///     `features.txt` is COO when its first data line has exactly 3 tokens of which the first
///     two are plain integers, else dense. COO gives F = 1 + the largest feature id and zero
///     rows for nodes it does not list; a dense file must have one row per node.
///   - `split_train.txt`, `split_val.txt`, `split_test.txt` (optional): one node id per line.
/// Node count = max(1 + max edge id, label lines, feature rows / 1 + max COO node id,
/// 1 + max split id). A labels file shorter than that is an error (it cannot be reconciled).
template <class I = std::int64_t, class O = std::int64_t>
basic_dataset<I, O> load_edge_list_dir(const std::filesystem::path& dir) {
  namespace fs = std::filesystem;
  detail::check_csr_types<I, O, float>();
  if (!fs::is_directory(dir)) throw io_error(detail::concat(dir.string(), ": not a directory"));
  auto edge_file = detail::first_existing(
      dir, {"edges.txt", "edges.csv", "edges.txt.gz", "edges.csv.gz", "edges.tsv"});
  if (!edge_file) {
    for (const auto& e : fs::directory_iterator(dir)) {
      if (e.is_regular_file() && e.path().extension() == ".edges") {
        if (edge_file)
          throw format_error(detail::concat(dir.string(), ": several *.edges files (",
                                            edge_file->filename().string(), ", ",
                                            e.path().filename().string(), ")"));
        edge_file = e.path();
      }
    }
  }
  if (!edge_file)
    throw io_error(
        detail::concat(dir.string(), ": no edge file (edges.txt, edges.csv or *.edges)"));

  const auto index_max = static_cast<std::int64_t>(std::numeric_limits<I>::max());
  detail::raw_edges edges;
  {
    text_reader in(*edge_file);
    edges = detail::read_edges(in, -1, true, false, false, index_max);
  }
  std::int64_t n = edges.max_id + 1;
  std::string n_from = edges.max_where;

  basic_dataset<I, O> ds;
  {
    // "cora-planetoid/derived" is named after the dataset folder, not "derived"
    fs::path named = dir.filename().empty() ? dir.parent_path() : dir;
    if (named.filename() == "derived" || named.filename() == "raw") named = named.parent_path();
    ds.name = named.filename().string();
  }

  std::vector<std::int64_t> labels;
  std::string label_name;
  if (auto p = detail::first_existing(dir, {"labels.txt", "labels.txt.gz"})) {
    text_reader in(*p);
    label_name = in.name();
    while (in.next()) {
      in.expect_columns(1, "label");
      const auto l = in.get<std::int64_t>(0);
      if (l < -1) in.fail("label ", l, " (expected a class id >= 0, or -1 for unlabelled)");
      detail::check_label(in, l);
      labels.push_back(l);
    }
  }
  if (static_cast<std::int64_t>(labels.size()) > n) {
    n = static_cast<std::int64_t>(labels.size());
    n_from = label_name;
  }

  std::optional<detail::raw_features> feats;
  {
    std::optional<fs::path> p;
    bool coo = false;
    if ((p = detail::first_existing(dir, {"features_partial.txt", "features_partial.txt.gz",
                                          "features_coo.txt", "features_coo.txt.gz"}))) {
      coo = true;
    } else if ((p = detail::first_existing(dir, {"features_dense.txt", "features_dense.txt.gz"}))) {
      coo = false;
    } else if ((p = detail::first_existing(dir, {"features.txt", "features.txt.gz"}))) {
      coo = detail::looks_like_coo(*p);
    }
    if (p) {
      text_reader in(*p);
      feats = coo ? detail::read_coo_features(in) : detail::read_dense_features(in);
      if (feats->rows > n) {
        n = feats->rows;
        n_from = feats->coo ? feats->rows_where : feats->name;
      }
    }
  }

  std::vector<std::int64_t> split[3];
  const char* split_files[3] = {"split_train.txt", "split_val.txt", "split_test.txt"};
  for (int s = 0; s < 3; ++s) {
    if (auto p = detail::first_existing(dir, {split_files[s]})) {
      text_reader in(*p);
      std::int64_t mx = -1;
      std::string where;
      split[s] = detail::read_id_list(in, mx, where);
      if (mx + 1 > n) {
        n = mx + 1;
        n_from = where;
      }
    }
  }

  if (n > index_max)
    throw out_of_range(
        detail::concat(n_from, ": ", n, " nodes do not fit the requested index type"));
  if (!labels.empty() && static_cast<std::int64_t>(labels.size()) != n)
    throw format_error(detail::concat(label_name, ": ", labels.size(), " labels but ", n,
                                      " nodes (the node count comes from ", n_from, ")"));
  if (feats && !feats->coo && feats->rows != n && feats->rows > 0)
    throw format_error(detail::concat(feats->name, ": ", feats->rows, " feature rows but ", n,
                                      " nodes (the node count comes from ", n_from, ")"));

  build_options b;
  b.make_undirected = true;
  b.duplicates = duplicate_policy::keep_first;
  ds.graph = detail::edges_to_csr<I, O>(edges, n, b, edge_file->string(), n_from);
  ds.labels = std::move(labels);
  if (feats && feats->rows > 0) {
    detail::densify_features(*feats, n, n_from);
    ds.num_features = feats->cols;
    ds.features = std::move(feats->values);
  }
  ds.train_idx = detail::narrow_ids<I>(split[0]);
  ds.val_idx = detail::narrow_ids<I>(split[1]);
  ds.test_idx = detail::narrow_ids<I>(split[2]);
  return ds;
}

}  // namespace ibmb
