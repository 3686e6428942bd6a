// ibmb: materialization of a `batch_plan` into one contiguous `batch_store`: per batch the
// global ids with the outputs first, the induced subgraph as a local CSR carrying the
// *global* normalization's weights, gathered features and labels.
//
// The dataset's graph is taken as given: preprocess it first (e.g.
// `make_undirected_with_self_loops`, as the reference does). `options.norm` chooses the
// weights, computed on the whole graph (after adding self-loops when
// `options.add_self_loops`), so boundary rows of a batch sum to less than 1 under `row`:
// a batch sees exactly the entries of the full normalized adjacency between its nodes.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <span>
#include <vector>

#include "ibmb/batch/plan.hpp"
#include "ibmb/batch/store.hpp"
#include "ibmb/batch/store_types.hpp"
#include "ibmb/core/crc32.hpp"
#include "ibmb/core/error.hpp"
#include "ibmb/core/parallel.hpp"
#include "ibmb/core/progress.hpp"
#include "ibmb/graph/build.hpp"
#include "ibmb/graph/dataset.hpp"
#include "ibmb/graph/normalize.hpp"
#include "ibmb/graph/subgraph.hpp"

namespace ibmb {

namespace detail {

/// Rows prefetched ahead by the feature gathers: random rows of a large feature matrix miss
/// the cache, and a few rows in flight hide most of the latency.
inline constexpr std::size_t gather_ahead = 16;

/// Prefetches the cache lines of one feature row (its id already checked).
inline void prefetch_row(const void* row, std::size_t bytes) {
  const auto* p = static_cast<const char*>(row);
  for (std::size_t off = 0; off < bytes; off += 64) __builtin_prefetch(p + off);
}

/// Local position of a batch's i-th sorted node in the outputs-first order.
template <class I>
void outputs_first_order(std::span<const I> outs, std::span<const I> nodes, std::int64_t* dst) {
  std::size_t o = 0, a = outs.size();
  for (std::size_t i = 0; i < nodes.size(); ++i) {
    if (o < outs.size() && nodes[i] == outs[o])
      dst[o++] = static_cast<std::int64_t>(nodes[i]);
    else
      dst[a++] = static_cast<std::int64_t>(nodes[i]);
  }
}

template <class I, class O>
batch_store materialize_impl(const basic_dataset<I, O>& ds, const batch_plan<I>& plan,
                             const materialize_options& opt) {
  using namespace store_format;
  const csr_view<I, O, float> g0 = ds.graph.view();
  const auto N = static_cast<std::int64_t>(g0.num_rows);
  const auto B = static_cast<std::int64_t>(plan.num_batches());
  const auto NT = static_cast<std::int64_t>(plan.nodes.size());

  // Global weights on the graph as the batches will see it.
  report(opt.progress, "normalize", 0, 1);
  csr_graph<I, O, float> looped;
  if (opt.add_self_loops) looped = add_self_loops(g0);
  const csr_view<I, O, float> g = opt.add_self_loops ? looped.view() : g0;
  // Per-node factors only: the weight of a kept entry is computed when it is written, exactly
  // as normalized_weights would (no pass over, nor copy of, the whole graph's entries).
  const std::vector<double> scales = normalization_scales(g, opt.norm, "materialize");
  report(opt.progress, "normalize", 1, 1);

  // Layout. Every section before the local indices has a size known now; the edge count is
  // not, so the image is mapped for an upper bound (every scanned entry kept) and the local
  // CSR is written in place: indices at their final offset, weights after the indices'
  // upper bound, moved down once the count is known; the unused tail is unmapped at the end
  // (it is address space only: pages never written take no memory). No staging buffers and
  // no second copy of the local CSR (see docs/benchmarks.md for the figures).
  const std::int64_t F = ds.num_features;
  const feature_dtype dt =
      (opt.ids_only || F == 0 || ds.features.empty()) ? feature_dtype::none : opt.features;
  const bool has_labels = !ds.labels.empty();
  const auto uB = static_cast<std::uint64_t>(B), uN = static_cast<std::uint64_t>(NT);
  std::uint64_t bytes[num_sections];
  std::uint64_t off[num_sections];
  auto layout = [&](std::uint64_t uE) {
    const std::uint64_t b[num_sections] = {(uB + 1) * 8,
                                           (uB + 1) * 8,
                                           uB * 8,
                                           uN * 8,
                                           (uN + uB) * 8,
                                           uE * 8,
                                           uE * 4,
                                           has_labels ? uN * 8 : 0,
                                           uN * static_cast<std::uint64_t>(F) * dtype_size(dt)};
    std::uint64_t pos = sizeof(header) + num_sections * sizeof(section_entry);
    for (std::uint32_t i = 0; i < num_sections; ++i) {
      bytes[i] = b[i];
      off[i] = round_up(pos);
      pos = off[i] + bytes[i];
    }
    return round_up(pos);
  };
  const auto sec_index = [](section s) { return static_cast<std::uint32_t>(s) - 1; };
  const std::uint32_t i_idx = sec_index(section::local_indices);
  const std::uint32_t i_w = sec_index(section::edge_weights);

  std::int64_t scanned = 0;  // neighbour-list entries of every batch row: >= the kept ones
#pragma omp parallel for reduction(+ : scanned) schedule(static)
  for (std::int64_t i = 0; i < NT; ++i)
    scanned += g.degree(plan.nodes[static_cast<std::size_t>(i)]);
  mapped_image mem(static_cast<std::size_t>(layout(static_cast<std::uint64_t>(scanned))));
  std::byte* img = mem.data();
  auto at = [&](std::uint32_t i) { return img + off[i]; };
  auto* s_ids = reinterpret_cast<std::int64_t*>(at(sec_index(section::node_ids)));
  auto* s_indptr = reinterpret_cast<std::int64_t*>(at(sec_index(section::local_indptr)));
  auto* s_idx = reinterpret_cast<std::int64_t*>(at(i_idx));
  auto* w_tmp = reinterpret_cast<float*>(at(i_w));  // the weights' place for `scanned` edges

  // Outputs-first order of every batch, straight into the node_ids section.
#pragma omp parallel for schedule(dynamic, 16)
  for (std::int64_t b = 0; b < B; ++b)
    outputs_first_order(plan.batch_outputs(static_cast<std::size_t>(b)),
                        plan.batch_nodes(static_cast<std::size_t>(b)),
                        s_ids + plan.node_ptr[static_cast<std::size_t>(b)]);
  const std::span<const std::int64_t> ids(s_ids, static_cast<std::size_t>(NT));

  // Local CSRs, batch after batch (rows of a batch in parallel). The normalization's per-node
  // factors are gathered in each batch's local order first: looked up by global id, each
  // row's factor was a cache miss on the critical path (docs/benchmarks.md).
  subgraph_extractor<I, O, float> ex(g);
  std::vector<double> local_scales;
  std::vector<std::int64_t> edge_ptr(static_cast<std::size_t>(B) + 1, 0);
  for (std::int64_t b = 0; b < B; ++b) {
    const std::int64_t n0 = plan.node_ptr[static_cast<std::size_t>(b)];
    const std::int64_t nn = plan.node_ptr[static_cast<std::size_t>(b) + 1] - n0;
    if (nn > std::numeric_limits<std::int32_t>::max())
      throw out_of_range(
          concat("materialize: batch ", b, " has ", nn, " nodes; at most 2^31 - 1 are supported"));
    const auto m = static_cast<std::size_t>(
        ex.scan(ids.subspan(static_cast<std::size_t>(n0), static_cast<std::size_t>(nn))));
    const auto e0 = static_cast<std::size_t>(edge_ptr[static_cast<std::size_t>(b)]);
    edge_ptr[static_cast<std::size_t>(b) + 1] = static_cast<std::int64_t>(e0 + m);
    local_scales.resize(scales.empty() ? 0 : static_cast<std::size_t>(nn));
    const double* sc = scales.data();
    double* ls = local_scales.data();
#pragma omp parallel for schedule(static)
    for (std::int64_t i = 0; i < static_cast<std::int64_t>(local_scales.size()); ++i)
      ls[i] = sc[ids[static_cast<std::size_t>(n0 + i)]];
    const std::span<const double> lsc(local_scales);
    ex.write_with(
        std::span<std::int64_t>(s_indptr + n0 + b, static_cast<std::size_t>(nn) + 1),
        std::span<std::int64_t>(s_idx + e0, m), std::span<float>(w_tmp + e0, m),
        [&](std::int64_t e, std::int64_t, std::int64_t, std::int64_t i, std::int64_t l) {
          const double a =
              g.has_weights() ? static_cast<double>(g.weights[static_cast<std::size_t>(e)]) : 1.0;
          return normalized_value<float>(a, opt.norm, lsc, i, l);
        });
    report(opt.progress, "extract", b + 1, B);
  }
  const std::int64_t ET = edge_ptr[static_cast<std::size_t>(B)];

  // The final layout: the sections up to the local indices stay where they are.
  const auto uE = static_cast<std::uint64_t>(ET);
  const std::uint64_t file_size = layout(uE);
  std::memmove(at(i_w), w_tmp, static_cast<std::size_t>(bytes[i_w]));
  // Zero padding (the mapping starts zeroed, but the weights' first place may lie under it).
  std::memset(img, 0, static_cast<std::size_t>(off[0]));
  for (std::uint32_t i = 0; i < num_sections; ++i) {
    const std::uint64_t end = off[i] + bytes[i];
    const std::uint64_t next = i + 1 < num_sections ? off[i + 1] : file_size;
    std::memset(img + end, 0, static_cast<std::size_t>(next - end));
  }
  auto sec = [&](section s) { return at(sec_index(s)); };
  auto* s_nptr = reinterpret_cast<std::int64_t*>(sec(section::batch_node_ptr));
  auto* s_eptr = reinterpret_cast<std::int64_t*>(sec(section::batch_edge_ptr));
  auto* s_nout = reinterpret_cast<std::int64_t*>(sec(section::batch_num_outputs));
  auto* s_lab = reinterpret_cast<std::int64_t*>(sec(section::labels));
  std::byte* s_feat = sec(section::features);
  std::memcpy(s_nptr, plan.node_ptr.data(), static_cast<std::size_t>(bytes[0]));
  std::memcpy(s_eptr, edge_ptr.data(), static_cast<std::size_t>(bytes[1]));
  for (std::int64_t b = 0; b < B; ++b)
    s_nout[b] = plan.output_ptr[static_cast<std::size_t>(b) + 1] -
                plan.output_ptr[static_cast<std::size_t>(b)];

  // Labels and features, parallel over all stored nodes (ids checked by plan.validate). Raw
  // pointers in the loop: through the containers the gather ran about 25% slower (reloads
  // around every memcpy; docs/benchmarks.md).
  const auto row_bytes = static_cast<std::size_t>(F) * dtype_size(dt);
  const auto uF = static_cast<std::size_t>(F);
  const float* feat = ds.features.data();
  const auto* lab = ds.labels.data();
  const std::int64_t* id = ids.data();
  const auto ahead = static_cast<std::int64_t>(gather_ahead);
  // One contiguous block of rows per thread; each block's pages are mapped in before it is
  // written.
  const int parts = max_threads();
  const auto block = detail::even_chunks<std::int64_t>(NT, parts);
#pragma omp parallel for schedule(static, 1)
  for (int c = 0; c < parts; ++c) {
    const std::int64_t i0 = block[static_cast<std::size_t>(c)];
    const std::int64_t i1 = block[static_cast<std::size_t>(c) + 1];
    const auto rows = static_cast<std::size_t>(i1 - i0);
    if (has_labels) mem.prefault(s_lab + i0, rows * sizeof(std::int64_t));
    if (dt != feature_dtype::none)
      mem.prefault(s_feat + static_cast<std::size_t>(i0) * row_bytes, rows * row_bytes);
    for (std::int64_t i = i0; i < i1; ++i) {
      const auto v = static_cast<std::size_t>(id[i]);
      if (has_labels) s_lab[i] = lab[v];
      if (dt == feature_dtype::none) continue;
      if (i + ahead < NT) prefetch_row(feat + static_cast<std::size_t>(id[i + ahead]) * uF, uF * 4);
      const float* src = feat + v * uF;
      std::byte* dst = s_feat + static_cast<std::size_t>(i) * row_bytes;
      if (dt == feature_dtype::float32) {
        std::memcpy(dst, src, row_bytes);
      } else {
        auto* d16 = reinterpret_cast<std::uint16_t*>(dst);
        if (dt == feature_dtype::float16)
          for (std::size_t f = 0; f < uF; ++f) d16[f] = float_to_half(src[f]);
        else
          for (std::size_t f = 0; f < uF; ++f) d16[f] = float_to_bfloat16(src[f]);
      }
    }
  }
  mem.shrink(static_cast<std::size_t>(file_size));
  report(opt.progress, "gather", 1, 1);

  // Header, table, checksums.
  header h{};
  std::memcpy(h.magic, magic, sizeof magic);
  h.version = version;
  h.endian = endian_marker;
  h.header_bytes = sizeof(header);
  h.num_sections = num_sections;
  h.table_offset = sizeof(header);
  h.file_size = file_size;
  h.num_batches = uB;
  h.total_nodes = uN;
  h.total_edges = uE;
  h.total_outputs = plan.outputs.size();
  h.num_features = static_cast<std::uint64_t>(F);
  h.dataset_num_nodes = static_cast<std::uint64_t>(N);
  h.dataset_num_edges = static_cast<std::uint64_t>(g0.num_edges());
  h.dataset_fingerprint = opt.fingerprint ? dataset_fingerprint(ds) : 0;
  h.alpha = opt.params.alpha;
  h.eps = opt.params.eps;
  h.topk = opt.params.topk;
  h.parts = opt.params.parts;
  h.seed = opt.params.seed;
  h.num_classes = ds.num_classes();
  h.feature_dtype = static_cast<std::uint32_t>(dt);
  h.normalization = static_cast<std::uint32_t>(opt.norm);
  h.flags = (opt.ids_only ? flag_ids_only : 0u) | (has_labels ? flag_labels : 0u) |
            (opt.add_self_loops ? flag_self_loops_added : 0u);
  std::memcpy(h.method, opt.params.method.data(), opt.params.method.size());
  section_entry tab[num_sections]{};
  for (std::uint32_t i = 0; i < num_sections; ++i) {
    tab[i].id = i + 1;
    tab[i].dtype = static_cast<std::uint32_t>(expected_elem(i + 1, dt));
    tab[i].offset = off[i];
    tab[i].bytes = bytes[i];
    tab[i].crc32 = crc32_parallel({img + off[i], static_cast<std::size_t>(bytes[i])});
    report(opt.progress, "checksum", i + 1, num_sections);
  }
  std::memcpy(img + sizeof(header), tab, sizeof tab);
  h.table_crc32 = crc32_update(0, tab, sizeof tab);
  h.header_crc32 = crc32_update(0, &h, offsetof(header, header_crc32));
  std::memcpy(img, &h, sizeof h);

  return batch_store(mem.release(), static_cast<std::size_t>(file_size));
}

}  // namespace detail

/// Materializes every batch of `plan` (see the file comment). Parallel (OpenMP) and
/// deterministic: the image is byte-identical for any thread count. Throws
/// `ibmb::invalid_argument` when the plan does not fit the dataset or the options are bad.
template <class I, class O>
batch_store materialize(const basic_dataset<I, O>& ds, const batch_plan<I>& plan,
                        const materialize_options& opt = {}) {
  const auto& g = ds.graph;
  IBMB_EXPECTS(g.num_rows == g.num_cols, "materialize: the graph is ", g.num_rows, " x ",
               g.num_cols, " (expected square)");
  IBMB_EXPECTS(g.indptr.size() == static_cast<std::size_t>(g.num_rows) + 1,
               "materialize: graph indptr has ", g.indptr.size(), " entries for ", g.num_rows,
               " nodes");
  g.validate();  // extraction indexes by column id (one parallel pass over the entries)
  try {
    plan.validate(g.num_rows);
  } catch (const format_error& e) {
    throw invalid_argument(detail::concat("materialize: ", e.what()));
  }
  IBMB_EXPECTS(ds.num_features >= 0, "materialize: num_features = ", ds.num_features);
  IBMB_EXPECTS(
      ds.features.empty() || ds.features.size() == static_cast<std::size_t>(g.num_rows) *
                                                       static_cast<std::size_t>(ds.num_features),
      "materialize: ", ds.features.size(), " feature values for ", g.num_rows, " nodes x ",
      ds.num_features, " features");
  IBMB_EXPECTS(ds.labels.empty() || ds.labels.size() == static_cast<std::size_t>(g.num_rows),
               "materialize: ", ds.labels.size(), " labels for ", g.num_rows, " nodes");
  // Labels are -1 (unlabelled) or class ids: `verify_store` rejects anything else.
  for (std::size_t i = 0; i < ds.labels.size(); ++i)
    IBMB_EXPECTS(ds.labels[i] >= -1, "materialize: label of node ", i, " is ", ds.labels[i],
                 " (expected -1 or a class id >= 0)");
  IBMB_EXPECTS(opt.params.method.size() < sizeof(store_format::header::method),
               "materialize: method name '", opt.params.method, "' is longer than ",
               sizeof(store_format::header::method) - 1, " bytes");
  IBMB_EXPECTS(
      opt.features == feature_dtype::none || opt.features == feature_dtype::float32 ||
          opt.features == feature_dtype::float16 || opt.features == feature_dtype::bfloat16,
      "materialize: unknown feature dtype code ", static_cast<std::uint32_t>(opt.features));
  IBMB_EXPECTS(opt.norm == normalization::none || opt.norm == normalization::row ||
                   opt.norm == normalization::symmetric,
               "materialize: unknown normalization code ", static_cast<int>(opt.norm));
  IBMB_EXPECTS(opt.ids_only || opt.features != feature_dtype::none || ds.num_features == 0,
               "materialize: feature dtype 'none' needs ids_only (or a dataset without features)");
  IBMB_EXPECTS(opt.ids_only || ds.num_features == 0 || g.num_rows == 0 || !ds.features.empty(),
               "materialize: the dataset declares ", ds.num_features,
               " features per node but holds no feature values (use ids_only, feature dtype "
               "'none', or num_features = 0)");
  scoped_threads threads(opt.threads);
  return detail::materialize_impl(ds, plan, opt);
}

/// Gathers the float32 features of `v`'s nodes from the dataset into `out` (num_nodes x
/// num_features): the read path of an ids-only store (works for any store). Every id is
/// checked before any row is copied; batches of at least `parallel_bytes` bytes are copied by
/// the OpenMP threads in contiguous chunks of rows (a random-row gather is bound by the
/// misses one core keeps in flight, so a second core nearly doubles it).
template <class I, class O>
void read_batch_features(const basic_dataset<I, O>& ds, const batch_view& v, std::span<float> out,
                         std::size_t parallel_bytes = std::size_t{1} << 20) {
  const auto F = static_cast<std::size_t>(ds.num_features);
  const auto n = static_cast<std::size_t>(v.num_nodes());
  IBMB_EXPECTS(out.size() == n * F, "read_batch_features: output holds ", out.size(),
               " values, expected ", n, " nodes x ", F, " features");
  IBMB_EXPECTS(ds.features.size() == static_cast<std::size_t>(ds.num_nodes()) * F,
               "read_batch_features: the dataset holds ", ds.features.size(), " feature values");
  const auto N = static_cast<std::int64_t>(ds.num_nodes());
  for (std::size_t i = 0; i < n; ++i) {
    const std::int64_t id = v.node_ids[i];
    if (id < 0 || id >= N)
      throw out_of_range(detail::concat("read_batch_features: batch ", v.index, ", position ", i,
                                        ": id ", id, " outside the dataset's [0, ", N, ")"));
  }
  const auto rows = static_cast<std::int64_t>(n);
  const bool parallel = n * F * sizeof(float) >= parallel_bytes;
  // Raw pointers in the loop: through the span and vector the gather ran about 25% slower
  // (their data pointers are reloaded around every memcpy; docs/benchmarks.md).
  const float* src = ds.features.data();
  float* dst = out.data();
  const std::int64_t* id = v.node_ids.data();
  const auto ahead = static_cast<std::int64_t>(detail::gather_ahead);
  // schedule(static): one contiguous chunk of rows per thread.
#pragma omp parallel for schedule(static) if (parallel)
  for (std::int64_t i = 0; i < rows; ++i) {
    if (i + ahead < rows)
      detail::prefetch_row(src + static_cast<std::size_t>(id[i + ahead]) * F, F * 4);
    std::memcpy(dst + static_cast<std::size_t>(i) * F, src + static_cast<std::size_t>(id[i]) * F,
                F * sizeof(float));
  }
}

}  // namespace ibmb
