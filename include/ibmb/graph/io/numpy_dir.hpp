// ibmb: a dataset stored as a directory of `.npy` files.
//
// Layout (all arrays C order, little-endian):
//   indptr.npy    (N+1,)  any integer dtype   CSR row offsets            required
//   indices.npy   (E,)    any integer dtype   CSR column ids in [0, N)   required
//   data.npy      (E,)    any numeric dtype   edge weights -> float32    optional
//   features.npy  (N, F)  any numeric dtype   -> float32 (1-D is an error)   optional
//   labels.npy    (N,)    any integer dtype   -> int64, -1 = unlabelled  optional
//   train_idx.npy, val_idx.npy, test_idx.npy  (k,) integer node ids      optional
//
// Structure: the CSR is taken exactly as stored (row order, column order within rows,
// duplicates, self-loops and direction all kept). The IBMB preprocessing (undirected,
// deduplicated, one self-loop per node) is the pipeline's job, not the loader's.
// Every loader ends with `basic_dataset::validate()` (which rejects NaN/Inf features).
//
// `save_numpy_dir` always writes int64 indptr/indices/labels/splits and float32
// data/features, whatever the dataset's I/O types, so a directory's bytes do not depend on
// the types it was loaded with; write -> read -> write is byte-identical. Optional files the
// dataset lacks are removed from the directory, so it describes exactly this dataset.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "ibmb/core/error.hpp"
#include "ibmb/graph/build.hpp"
#include "ibmb/graph/csr.hpp"
#include "ibmb/graph/dataset.hpp"
#include "ibmb/graph/io/npy.hpp"

namespace ibmb {

namespace detail {

/// Where a loader gets its arrays from: a directory of `.npy` files or an `.npz` archive.
struct npy_source {
  std::function<std::optional<npy_array>(std::string_view key)> get;
  std::function<std::string(std::string_view key)> label;  // for messages
};

inline void require_integer(const npy_array& a, const std::string& label) {
  if (!npy_is_integer(a.dtype))
    throw format_error(
        concat(label, ": dtype ", npy_type_name(a.dtype), ", expected an integer dtype"));
}

inline void require_ndim(const npy_array& a, std::size_t nd, const std::string& label,
                         const char* expected) {
  if (a.ndim() != nd)
    throw format_error(concat(label, ": shape ", shape_string(a.shape), ", expected ", expected));
}

/// A 1-D integer array converted to T (range errors name the file, index and value).
template <class T>
std::vector<T> index_array(const npy_array& a, const std::string& label) {
  require_integer(a, label);
  require_ndim(a, 1, label, "a 1-D array");
  return a.as<T>(label);
}

/// Checks indptr (starts at 0, non-decreasing, ends at nnz) and indices in [0, ncols).
template <class I, class O>
void check_csr_arrays(const std::vector<O>& indptr, const std::vector<I>& indices,
                      std::int64_t ncols, const std::string& ptr_label,
                      const std::string& idx_label) {
  if (indptr.empty())
    throw format_error(concat(ptr_label, ": empty, expected num_nodes + 1 >= 1 entries"));
  if (indptr[0] != 0)
    throw format_error(concat(ptr_label, ": element 0 = ", indptr[0], ", expected 0"));
  for (std::size_t r = 1; r < indptr.size(); ++r)
    if (indptr[r] < indptr[r - 1])
      throw format_error(concat(ptr_label, ": element ", r, " = ", indptr[r], " < element ", r - 1,
                                " = ", indptr[r - 1], " (offsets must not decrease)"));
  if (static_cast<std::uint64_t>(indptr.back()) != indices.size())
    throw format_error(concat(ptr_label, " ends at ", indptr.back(), " but ", idx_label, " has ",
                              indices.size(), " entries"));
  for (std::size_t p = 0; p < indices.size(); ++p)
    if (indices[p] < 0 || static_cast<std::int64_t>(indices[p]) >= ncols)
      throw format_error(
          concat(idx_label, ": element ", p, " = ", indices[p], " outside [0, ", ncols, ")"));
}

/// Node count check across files: "<a> has <x> ... but <b> has <y> ...".
inline void check_rows(std::int64_t got, std::int64_t n, const std::string& label, const char* what,
                       const std::string& ref_label, const char* ref_what) {
  if (got != n)
    throw format_error(
        concat(label, " has ", got, " ", what, " but ", ref_label, " gives ", n, " ", ref_what));
}

/// Dense features (N x F) from a 2-D array.
inline std::vector<float> feature_matrix(const npy_array& a, std::int64_t n,
                                         const std::string& label, const std::string& ref_label,
                                         std::int64_t& num_features) {
  if (a.ndim() != 2)
    throw format_error(concat(label, ": shape ", shape_string(a.shape),
                              ", expected a 2-D (num_nodes x num_features) array"));
  check_rows(a.shape[0], n, label, "rows", ref_label, "nodes");
  num_features = a.shape[1];
  return a.as<float>(label);
}

inline std::vector<std::int64_t> label_vector(const npy_array& a, std::int64_t n,
                                              const std::string& label,
                                              const std::string& ref_label) {
  require_integer(a, label);
  require_ndim(a, 1, label, "a 1-D array of one label per node");
  check_rows(a.shape[0], n, label, "labels", ref_label, "nodes");
  return a.as<std::int64_t>(label);
}

/// The CSR layout shared by NumPy directories and `.npz` layout (a): keys indptr, indices,
/// data, features, labels, train_idx, val_idx, test_idx. Structure kept as stored.
template <class I, class O>
basic_dataset<I, O> load_csr_layout(const npy_source& src, std::string name) {
  auto required = [&](std::string_view key) {
    auto a = src.get(key);
    if (!a) throw format_error(concat(src.label(key), ": missing (required)"));
    return std::move(*a);
  };
  const std::string ptr_l = src.label("indptr"), idx_l = src.label("indices");
  std::vector<O> indptr = index_array<O>(required("indptr"), ptr_l);
  if (indptr.empty())
    throw format_error(concat(ptr_l, ": empty, expected num_nodes + 1 >= 1 entries"));
  const auto n = static_cast<std::int64_t>(indptr.size()) - 1;
  check_fits_index<I>(n, "num_nodes");
  const std::string nodes_l = concat(ptr_l, " (", n + 1, " entries)");
  std::vector<I> indices = index_array<I>(required("indices"), idx_l);
  check_csr_arrays(indptr, indices, n, ptr_l, idx_l);

  basic_dataset<I, O> ds;
  ds.name = std::move(name);
  std::vector<float> weights;
  if (auto d = src.get("data")) {
    const std::string l = src.label("data");
    require_ndim(*d, 1, l, "a 1-D array of one weight per entry");
    check_rows(d->shape[0], static_cast<std::int64_t>(indices.size()), l, "weights", idx_l,
               "entries");
    weights = d->template as<float>(l);
  }
  ds.graph = csr_graph<I, O, float>(static_cast<I>(n), static_cast<I>(n), std::move(indptr),
                                    std::move(indices), std::move(weights));
  if (auto f = src.get("features"))
    ds.features = feature_matrix(*f, n, src.label("features"), nodes_l, ds.num_features);
  if (auto l = src.get("labels")) ds.labels = label_vector(*l, n, src.label("labels"), nodes_l);
  if (auto t = src.get("train_idx")) ds.train_idx = index_array<I>(*t, src.label("train_idx"));
  if (auto t = src.get("val_idx")) ds.val_idx = index_array<I>(*t, src.label("val_idx"));
  if (auto t = src.get("test_idx")) ds.test_idx = index_array<I>(*t, src.label("test_idx"));
  ds.validate();
  return ds;
}

inline std::string dir_name(const std::filesystem::path& dir) {
  auto p = dir.lexically_normal();
  if (!p.has_filename() && p.has_parent_path()) p = p.parent_path();
  if (p.filename().empty() || p.filename() == ".")
    p = std::filesystem::absolute(dir).lexically_normal();
  if (!p.has_filename() && p.has_parent_path()) p = p.parent_path();
  return p.filename().string();
}

template <class T>
std::vector<std::int64_t> to_int64(const std::vector<T>& v) {
  return std::vector<std::int64_t>(v.begin(), v.end());
}

}  // namespace detail

/// Loads a NumPy directory dataset (see the layout above). The name is the directory's name.
template <class I = std::int64_t, class O = std::int64_t>
basic_dataset<I, O> load_numpy_dir(const std::filesystem::path& dir) {
  namespace fs = std::filesystem;
  if (!fs::is_directory(dir)) throw io_error(detail::concat(dir.string(), ": not a directory"));
  detail::npy_source src;
  src.label = [&](std::string_view key) { return (dir / (std::string(key) + ".npy")).string(); };
  src.get = [&](std::string_view key) -> std::optional<npy_array> {
    const fs::path p = dir / (std::string(key) + ".npy");
    if (!fs::exists(p)) return std::nullopt;
    return read_npy(p);
  };
  return detail::load_csr_layout<I, O>(src, detail::dir_name(dir));
}

/// Writes `ds` into `dir` (created if needed), one atomic write per file; int64 index
/// arrays, float32 weights/features (see the header comment).
template <class I, class O>
void save_numpy_dir(const basic_dataset<I, O>& ds, const std::filesystem::path& dir) {
  namespace fs = std::filesystem;
  ds.validate();
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec || !fs::is_directory(dir))
    throw io_error(detail::concat(dir.string(), ": cannot create directory: ", ec.message()));
  const auto n = static_cast<std::int64_t>(ds.graph.num_rows);
  auto put = [&](const char* key, const auto& values, std::vector<std::int64_t> shape) {
    using T = typename std::decay_t<decltype(values)>::value_type;
    write_npy<T>(dir / (std::string(key) + ".npy"), std::span<const T>(values), std::move(shape));
  };
  auto drop = [&](const char* key) {
    std::error_code e;
    fs::remove(dir / (std::string(key) + ".npy"), e);
  };
  std::vector<std::int64_t> indptr = detail::to_int64(ds.graph.indptr);
  if (indptr.empty()) indptr.push_back(0);
  put("indptr", indptr, {static_cast<std::int64_t>(indptr.size())});
  const auto indices = detail::to_int64(ds.graph.indices);
  put("indices", indices, {static_cast<std::int64_t>(indices.size())});
  if (ds.graph.has_weights())
    put("data", ds.graph.weights, {static_cast<std::int64_t>(ds.graph.weights.size())});
  else
    drop("data");
  if (ds.num_features > 0 || !ds.features.empty())
    put("features", ds.features, {n, ds.num_features});
  else
    drop("features");
  if (!ds.labels.empty())
    put("labels", ds.labels, {n});
  else
    drop("labels");
  auto split = [&](const char* key, const std::vector<I>& idx) {
    if (idx.empty()) return drop(key);
    const auto v = detail::to_int64(idx);
    put(key, v, {static_cast<std::int64_t>(v.size())});
  };
  split("train_idx", ds.train_idx);
  split("val_idx", ds.val_idx);
  split("test_idx", ds.test_idx);
}

}  // namespace ibmb
