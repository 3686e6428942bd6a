// ibmb: datasets stored as one `.npz` archive. The layout is recognised by its keys:
//
// (a) CSR layout: the keys of a NumPy directory (`indptr`, `indices`, optional `data`,
//     `features`, `labels`, `train_idx`, `val_idx`, `test_idx`; see numpy_dir.hpp). The CSR
//     is taken exactly as stored, like `load_numpy_dir`.
// (b) gnn-benchmark layout (Shchur et al.; cora.npz, citeseer.npz): adjacency CSR
//     `adj_data/adj_indices/adj_indptr/adj_shape`, features either sparse CSR
//     `attr_data/attr_indices/attr_indptr/attr_shape` (densified into N x F float32;
//     repeated entries in a row are summed, as scipy's toarray does) or dense
//     `attr_matrix`, and `labels` (any integer dtype). Structure: the stored (directed)
//     adjacency is rebuilt with `coo_to_csr` sorting each row's columns and keeping
//     duplicates, self-loops and direction as stored; `adj_data` becomes the edge weights.
//     No split is stored, so train/val/test are empty.
// (c) heterophilous-graphs layout (Platonov et al.; tolokers.npz): `node_features` (N x F),
//     `node_labels` (N), `edges` (E x 2, each undirected edge stored once), and
//     `train_masks/val_masks/test_masks` (S x N bool, or N for one split). Structure: the
//     format stores each undirected edge once by definition, so the loader adds the reverse
//     direction (`coo_to_csr` with make_undirected, duplicate_policy::keep_first, sorted
//     columns); self-loops are kept. `split` picks the mask row; node ids ascend.
//
// Apart from (c)'s reverse edges, the loaders do not symmetrize, deduplicate or add
// self-loops: the IBMB preprocessing is the pipeline's step. `split` must be 0 for layouts
// with at most one split; out of range is `ibmb::invalid_argument`. Members the loader does
// not ask for (e.g. `node_names`, `<U` strings) are never decoded. Every loader ends with
// `basic_dataset::validate()`.
#pragma once

#include <cstdint>
#include <filesystem>
#include <new>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ibmb/core/error.hpp"
#include "ibmb/graph/build.hpp"
#include "ibmb/graph/dataset.hpp"
#include "ibmb/graph/io/npy.hpp"
#include "ibmb/graph/io/npz.hpp"
#include "ibmb/graph/io/numpy_dir.hpp"

namespace ibmb {

namespace detail {

/// (rows, cols) from a 2-element integer `*_shape` member.
inline std::pair<std::int64_t, std::int64_t> npz_shape2(const npz_archive& ar,
                                                        std::string_view key) {
  const std::string l = ar.label(key);
  const auto v = index_array<std::int64_t>(ar.array(key), l);
  if (v.size() != 2 || v[0] < 0 || v[1] < 0)
    throw format_error(concat(l, ": expected two non-negative numbers (rows, columns), got ",
                              v.size(), " values"));
  return {v[0], v[1]};
}

inline npy_array npz_required(const npz_archive& ar, std::string_view key) {
  if (!ar.contains(key)) throw format_error(concat(ar.label(key), ": missing (required)"));
  return ar.array(key);
}

/// Node ids where row `split` of a (S x N) or (N) mask is non-zero.
template <class I>
std::vector<I> mask_ids(const npz_archive& ar, std::string_view key, std::int64_t n, int split) {
  const std::string l = ar.label(key);
  const npy_array m = ar.array(key);
  std::int64_t splits = 1;
  if (m.ndim() == 2) {
    splits = m.shape[0];
    check_rows(m.shape[1], n, l, "columns", ar.label("node_features"), "nodes");
  } else if (m.ndim() == 1) {
    check_rows(m.shape[0], n, l, "entries", ar.label("node_features"), "nodes");
  } else {
    throw format_error(concat(l, ": shape ", shape_string(m.shape),
                              ", expected (num_splits, num_nodes) or (num_nodes,)"));
  }
  if (split >= splits)
    throw invalid_argument(concat(l, ": split ", split, " requested but the file has ", splits,
                                  " split", splits == 1 ? "" : "s"));
  const std::vector<std::uint8_t> flags = m.as<std::uint8_t>(l);
  std::vector<I> ids;
  const auto base = static_cast<std::size_t>(split) * static_cast<std::size_t>(n);
  for (std::int64_t v = 0; v < n; ++v)
    if (flags[base + static_cast<std::size_t>(v)]) ids.push_back(static_cast<I>(v));
  return ids;
}

template <class I, class O>
basic_dataset<I, O> load_gnn_benchmark(const npz_archive& ar, std::string name) {
  const std::string sh_l = ar.label("adj_shape"), ptr_l = ar.label("adj_indptr"),
                    idx_l = ar.label("adj_indices");
  const auto [rows, cols] = npz_shape2(ar, "adj_shape");
  if (rows != cols)
    throw format_error(concat(sh_l, ": adjacency is ", rows, " x ", cols, ", expected square"));
  check_fits_index<I>(rows, "num_nodes");
  const std::int64_t n = rows;
  const auto indptr = index_array<std::int64_t>(npz_required(ar, "adj_indptr"), ptr_l);
  check_rows(static_cast<std::int64_t>(indptr.size()), n + 1, ptr_l, "entries", sh_l,
             "= num_nodes + 1 entries");
  const auto indices = index_array<I>(npz_required(ar, "adj_indices"), idx_l);
  check_csr_arrays(indptr, indices, n, ptr_l, idx_l);
  std::vector<float> weights;
  if (ar.contains("adj_data")) {
    const std::string l = ar.label("adj_data");
    const npy_array d = ar.array("adj_data");
    require_ndim(d, 1, l, "a 1-D array of one weight per entry");
    check_rows(d.shape[0], static_cast<std::int64_t>(indices.size()), l, "weights", idx_l,
               "entries");
    weights = d.as<float>(l);
  }
  std::vector<I> row(indices.size());
  for (std::int64_t r = 0; r < n; ++r)
    for (auto p = indptr[static_cast<std::size_t>(r)]; p < indptr[static_cast<std::size_t>(r) + 1];
         ++p)
      row[static_cast<std::size_t>(p)] = static_cast<I>(r);
  build_options opt;
  opt.sort_columns = true;
  opt.duplicates = duplicate_policy::keep;
  opt.self_loops = self_loop_policy::keep;
  basic_dataset<I, O> ds;
  ds.name = std::move(name);
  ds.graph =
      coo_to_csr<I, O, float, I, float>(n, std::span<const I>(row), std::span<const I>(indices),
                                        std::span<const float>(weights), opt);
  const std::string nodes_l = concat(sh_l, " (", n, " x ", n, ")");

  if (ar.contains("attr_indptr")) {
    const std::string ash_l = ar.label("attr_shape"), aptr_l = ar.label("attr_indptr"),
                      aidx_l = ar.label("attr_indices");
    const auto [frows, fcols] = npz_shape2(ar, "attr_shape");
    check_rows(frows, n, ash_l, "rows", nodes_l, "nodes");
    const auto fptr = index_array<std::int64_t>(ar.array("attr_indptr"), aptr_l);
    check_rows(static_cast<std::int64_t>(fptr.size()), n + 1, aptr_l, "entries", nodes_l,
               "= num_nodes + 1 entries");
    const auto fidx = index_array<std::int64_t>(npz_required(ar, "attr_indices"), aidx_l);
    check_csr_arrays(fptr, fidx, fcols, aptr_l, aidx_l);
    std::vector<float> fval;
    if (ar.contains("attr_data")) {
      const std::string l = ar.label("attr_data");
      const npy_array d = ar.array("attr_data");
      require_ndim(d, 1, l, "a 1-D array of one value per entry");
      check_rows(d.shape[0], static_cast<std::int64_t>(fidx.size()), l, "values", aidx_l,
                 "entries");
      fval = d.as<float>(l);
    } else {
      fval.assign(fidx.size(), 1.0f);
    }
    std::int64_t cells = 0;
    if (__builtin_mul_overflow(n, fcols, &cells))
      throw format_error(concat(ash_l, ": ", n, " x ", fcols, " features overflow"));
    try {
      ds.features.assign(static_cast<std::size_t>(cells), 0.0f);
    } catch (const std::bad_alloc&) {
      throw format_error(concat(ash_l, ": cannot allocate dense ", n, " x ", fcols, " features"));
    } catch (const std::length_error&) {
      throw format_error(concat(ash_l, ": cannot allocate dense ", n, " x ", fcols, " features"));
    }
    ds.num_features = fcols;
    for (std::int64_t r = 0; r < n; ++r)
      for (auto p = fptr[static_cast<std::size_t>(r)]; p < fptr[static_cast<std::size_t>(r) + 1];
           ++p)
        ds.features[static_cast<std::size_t>(r * fcols + fidx[static_cast<std::size_t>(p)])] +=
            fval[static_cast<std::size_t>(p)];
  } else if (ar.contains("attr_matrix")) {
    ds.features = feature_matrix(ar.array("attr_matrix"), n, ar.label("attr_matrix"), nodes_l,
                                 ds.num_features);
  }
  if (ar.contains("labels"))
    ds.labels = label_vector(ar.array("labels"), n, ar.label("labels"), nodes_l);
  return ds;
}

template <class I, class O>
basic_dataset<I, O> load_heterophilous(const npz_archive& ar, std::string name, int split) {
  const std::string f_l = ar.label("node_features"), e_l = ar.label("edges");
  basic_dataset<I, O> ds;
  ds.name = std::move(name);
  const npy_array feats = npz_required(ar, "node_features");
  if (feats.ndim() != 2)
    throw format_error(concat(f_l, ": shape ", shape_string(feats.shape),
                              ", expected a 2-D (num_nodes x num_features) array"));
  const std::int64_t n = feats.shape[0];
  check_fits_index<I>(n, "num_nodes");
  const std::string nodes_l = concat(f_l, " (", n, " rows)");
  ds.features = feature_matrix(feats, n, f_l, nodes_l, ds.num_features);
  if (ar.contains("node_labels"))
    ds.labels = label_vector(ar.array("node_labels"), n, ar.label("node_labels"), nodes_l);

  const npy_array e = npz_required(ar, "edges");
  require_integer(e, e_l);
  if (e.ndim() != 2 || e.shape[1] != 2)
    throw format_error(concat(e_l, ": shape ", shape_string(e.shape), ", expected (num_edges, 2)"));
  const std::vector<std::int64_t> pairs = e.as<std::int64_t>(e_l);
  const auto m = static_cast<std::size_t>(e.shape[0]);
  std::vector<std::int64_t> src(m), dst(m);
  for (std::size_t i = 0; i < m; ++i) {
    src[i] = pairs[2 * i];
    dst[i] = pairs[2 * i + 1];
    if (src[i] < 0 || src[i] >= n || dst[i] < 0 || dst[i] >= n)
      throw format_error(concat(e_l, ": edge ", i, " = (", src[i], ", ", dst[i],
                                ") has a node id outside [0, ", n, ") (", nodes_l, ")"));
  }
  build_options opt;
  opt.make_undirected = true;
  opt.duplicates = duplicate_policy::keep_first;
  opt.self_loops = self_loop_policy::keep;
  opt.sort_columns = true;
  ds.graph = coo_to_csr<I, O, float, std::int64_t, float>(
      n, std::span<const std::int64_t>(src), std::span<const std::int64_t>(dst), {}, opt);

  const bool any_mask =
      ar.contains("train_masks") || ar.contains("val_masks") || ar.contains("test_masks");
  if (!any_mask && split != 0)
    throw invalid_argument(
        concat(ar.name(), ": split ", split, " requested but the file has no split masks"));
  if (ar.contains("train_masks")) ds.train_idx = mask_ids<I>(ar, "train_masks", n, split);
  if (ar.contains("val_masks")) ds.val_idx = mask_ids<I>(ar, "val_masks", n, split);
  if (ar.contains("test_masks")) ds.test_idx = mask_ids<I>(ar, "test_masks", n, split);
  return ds;
}

}  // namespace detail

/// Loads a `.npz` dataset, recognising layout (a), (b) or (c) above by its keys. The name
/// is the file's stem. `split` selects one of the stored splits (layout (c)); it must be 0
/// where the file has at most one.
template <class I = std::int64_t, class O = std::int64_t>
basic_dataset<I, O> load_npz_dataset(const std::filesystem::path& file, int split = 0) {
  IBMB_EXPECTS(split >= 0, "load_npz_dataset: split = ", split, " is negative");
  const npz_archive ar(file);
  const std::string name = file.stem().string();
  basic_dataset<I, O> ds;
  auto single_split = [&](const char* layout) {
    if (split != 0)
      throw invalid_argument(detail::concat(file.string(), ": split ", split, " requested but the ",
                                            layout, " layout has at most one split"));
  };
  if (ar.contains("indptr") && ar.contains("indices")) {
    single_split("CSR");
    detail::npy_source src;
    src.label = [&](std::string_view key) { return ar.label(key); };
    src.get = [&](std::string_view key) { return ar.try_array(key); };
    return detail::load_csr_layout<I, O>(src, name);  // validates
  }
  if (ar.contains("adj_indptr")) {
    single_split("gnn-benchmark");
    ds = detail::load_gnn_benchmark<I, O>(ar, name);
  } else if (ar.contains("edges")) {
    ds = detail::load_heterophilous<I, O>(ar, name, split);
  } else {
    std::string keys;
    for (const auto& k : ar.keys()) keys += (keys.empty() ? "" : ", ") + k;
    throw format_error(detail::concat(
        file.string(), ": unrecognised .npz dataset layout (keys: ", keys,
        "); expected indptr/indices, adj_indptr/adj_indices/adj_shape, or edges/node_features"));
  }
  ds.validate();
  return ds;
}

}  // namespace ibmb
