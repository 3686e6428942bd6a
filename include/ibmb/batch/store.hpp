// ibmb: the `.ibmb` batch store file (docs/file-format.md): checksums, dataset
// fingerprint, save (atomic), load (read-only mmap, header and table validated without
// touching the payload), verify (every checksum, the zero padding and every batch's
// structure) and the summary `ibmb info` prints.
#pragma once

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <limits>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "ibmb/batch/plan.hpp"
#include "ibmb/batch/store_types.hpp"
#include "ibmb/core/crc32.hpp"
#include "ibmb/core/error.hpp"
#include "ibmb/core/file.hpp"
#include "ibmb/graph/dataset.hpp"

namespace ibmb {

// ---- checksums and fingerprint -------------------------------------------------------------

namespace detail {

inline constexpr std::size_t crc_chunk = std::size_t{1} << 24;  // 16 MiB

/// CRC-32 of `b` (core/crc32.hpp), computed in 16 MiB chunks in parallel and joined with
/// crc32_combine: the same value as one sequential crc32 for any thread count.
inline std::uint32_t crc32_parallel(std::span<const std::byte> b) {
  const std::size_t nchunks = (b.size() + crc_chunk - 1) / crc_chunk;
  if (nchunks <= 1) return crc32_update(0, b.data(), b.size());
  std::vector<std::uint32_t> part(nchunks);
#pragma omp parallel for schedule(dynamic, 1)
  for (std::int64_t c = 0; c < static_cast<std::int64_t>(nchunks); ++c) {
    const std::size_t off = static_cast<std::size_t>(c) * crc_chunk;
    part[static_cast<std::size_t>(c)] =
        crc32_update(0, b.data() + off, std::min(crc_chunk, b.size() - off));
  }
  std::uint32_t crc = part[0];
  for (std::size_t c = 1; c < nchunks; ++c)
    crc = crc32_combine(crc, part[c], std::min(crc_chunk, b.size() - c * crc_chunk));
  return crc;
}

/// crc32 of `v` with every element converted to `As` (little-endian), so that the value does
/// not depend on the caller's index width.
template <class As, class T>
std::uint32_t crc32_as(std::span<const T> v) {
  if constexpr (sizeof(As) == sizeof(T) && std::is_integral_v<As> == std::is_integral_v<T>) {
    return crc32_parallel(std::as_bytes(v));
  } else {
    constexpr std::size_t chunk = crc_chunk / sizeof(As);
    const std::size_t nchunks = (v.size() + chunk - 1) / chunk;
    if (nchunks == 0) return 0;
    std::vector<std::uint32_t> part(nchunks);
#pragma omp parallel for schedule(dynamic, 1)
    for (std::int64_t c = 0; c < static_cast<std::int64_t>(nchunks); ++c) {
      const std::size_t off = static_cast<std::size_t>(c) * chunk;
      const std::size_t len = std::min(chunk, v.size() - off);
      std::vector<As> buf(len);
      for (std::size_t i = 0; i < len; ++i) buf[i] = static_cast<As>(v[off + i]);
      part[static_cast<std::size_t>(c)] = crc32_update(0, buf.data(), len * sizeof(As));
    }
    std::uint32_t crc = part[0];
    for (std::size_t c = 1; c < nchunks; ++c)
      crc = crc32_combine(crc, part[c], std::min(chunk, v.size() - c * chunk) * sizeof(As));
    return crc;
  }
}

/// FNV-1a 64-bit over `n` bytes, continuing from `h`.
inline std::uint64_t fnv1a64(const void* data, std::size_t n,
                             std::uint64_t h = 0xcbf29ce484222325ull) {
  const auto* p = static_cast<const unsigned char*>(data);
  for (std::size_t i = 0; i < n; ++i) {
    h ^= p[i];
    h *= 0x100000001b3ull;
  }
  return h;
}

}  // namespace detail

/// 64-bit fingerprint of a dataset's graph, features and labels (docs/file-format.md):
/// FNV-1a-64 over the string "ibmb-fp1", then for each of N, nnz, num_features (uint64 LE)
/// and, for each of indptr (as int64), indices (as int64), edge weights (float32, empty when
/// unweighted), features (float32), labels (int64): its byte length (uint64) and zlib crc32
/// (uint32). Independent of the index widths and of the thread count.
template <class I, class O>
std::uint64_t dataset_fingerprint(const basic_dataset<I, O>& ds) {
  std::uint64_t h = detail::fnv1a64("ibmb-fp1", 8);
  auto put64 = [&](std::uint64_t x) { h = detail::fnv1a64(&x, 8, h); };
  auto put_array = [&](std::uint64_t bytes, std::uint32_t crc) {
    put64(bytes);
    h = detail::fnv1a64(&crc, 4, h);
  };
  const auto& g = ds.graph;
  put64(static_cast<std::uint64_t>(g.num_rows));
  put64(static_cast<std::uint64_t>(g.num_edges()));
  put64(static_cast<std::uint64_t>(ds.num_features));
  put_array(g.indptr.size() * 8, detail::crc32_as<std::int64_t>(std::span<const O>(g.indptr)));
  put_array(g.indices.size() * 8, detail::crc32_as<std::int64_t>(std::span<const I>(g.indices)));
  put_array(g.weights.size() * 4, detail::crc32_as<float>(std::span<const float>(g.weights)));
  put_array(ds.features.size() * 4, detail::crc32_as<float>(std::span<const float>(ds.features)));
  put_array(ds.labels.size() * 8,
            detail::crc32_as<std::int64_t>(std::span<const std::int64_t>(ds.labels)));
  return h;
}

// ---- validation ----------------------------------------------------------------------------

namespace detail {

[[noreturn]] inline void store_fail(const std::string& file, std::string_view where,
                                    std::uint64_t offset, const std::string& what) {
  throw format_error(concat(file, ": ", where, " at offset ", offset, ": ", what));
}

inline store_format::elem expected_elem(std::uint32_t id, feature_dtype d) {
  using store_format::elem;
  if (id == 7) return elem::float32;
  if (id == 9) {
    switch (d) {
      case feature_dtype::float32:
        return elem::float32;
      case feature_dtype::float16:
        return elem::float16;
      case feature_dtype::bfloat16:
        return elem::bfloat16;
      case feature_dtype::none:
        return elem::none;
    }
  }
  return elem::int64;
}

/// Checks header, section table and the per-batch tables (O(batches)) of an image of
/// `size` bytes; with `checksums` also every section's crc32 and the zero padding.
/// Throws `ibmb::format_error` naming `file`, the section and the offset. Never reads outside
/// [0, size).
inline void check_store_image(const std::byte* p, std::uint64_t size, const std::string& file,
                              bool checksums) {
  using namespace store_format;
  if (size < sizeof(header))
    store_fail(
        file, "header", size,
        concat("truncated: the file has ", size, " bytes, the header needs ", sizeof(header)));
  header h;
  std::memcpy(&h, p, sizeof h);
  if (std::memcmp(h.magic, magic, sizeof magic) != 0)
    store_fail(file, "header", 0, "bad magic (not an ibmb batch store)");
  if (h.endian != endian_marker)
    store_fail(file, "header", offsetof(header, endian),
               concat("endianness marker 0x", std::hex, h.endian, " (expected 0x", endian_marker,
                      "; written on a host of the other byte order?)"));
  if (h.version != version)
    store_fail(file, "header", offsetof(header, version),
               concat("unsupported format version ", h.version, " (this library reads version ",
                      version, ")"));
  const std::uint32_t hcrc = crc32_update(0, p, offsetof(header, header_crc32));
  if (hcrc != h.header_crc32)
    store_fail(file, "header", offsetof(header, header_crc32),
               concat("header checksum mismatch (stored 0x", std::hex, h.header_crc32,
                      ", computed 0x", hcrc, "): the header is corrupted"));
  if (h.header_bytes != sizeof(header) || h.table_offset != sizeof(header) ||
      h.num_sections != num_sections)
    store_fail(file, "header", offsetof(header, header_bytes),
               concat("unexpected layout: header_bytes ", h.header_bytes, ", table_offset ",
                      h.table_offset, ", num_sections ", h.num_sections));
  const std::uint64_t table_end = sizeof(header) + num_sections * sizeof(section_entry);
  if (size < table_end)
    store_fail(file, "section table", size,
               concat("truncated: the file has ", size, " bytes, the table ends at ", table_end));
  const std::uint32_t tcrc =
      crc32_update(0, p + sizeof(header), num_sections * sizeof(section_entry));
  if (tcrc != h.table_crc32)
    store_fail(file, "section table", sizeof(header),
               concat("section table checksum mismatch (stored 0x", std::hex, h.table_crc32,
                      ", computed 0x", tcrc, ")"));
  const auto dtype = static_cast<feature_dtype>(h.feature_dtype);
  if (h.feature_dtype > 3)
    store_fail(file, "header", offsetof(header, feature_dtype),
               concat("unknown feature dtype ", h.feature_dtype));
  if (h.normalization > 2)
    store_fail(file, "header", offsetof(header, normalization),
               concat("unknown normalization ", h.normalization));
  // Counts: every element takes at least one byte, so a count above the file size is bogus
  // (and the products below cannot overflow once checked with __builtin_mul_overflow).
  const std::uint64_t B = h.num_batches, N = h.total_nodes, E = h.total_edges;
  if (B > size || N > size || E > size || h.total_outputs > N || h.num_features > size)
    store_fail(
        file, "header", offsetof(header, num_batches),
        concat("implausible counts for a file of ", size, " bytes: batches ", B, ", nodes ", N,
               ", edges ", E, ", outputs ", h.total_outputs, ", features ", h.num_features));
  std::uint64_t feat_bytes = 0;
  const bool ids_only = h.flags & flag_ids_only;
  if (!ids_only && dtype != feature_dtype::none &&
      (__builtin_mul_overflow(N, h.num_features, &feat_bytes) ||
       __builtin_mul_overflow(feat_bytes, dtype_size(dtype), &feat_bytes)))
    store_fail(file, "header", offsetof(header, num_features), "feature size overflows");
  const std::uint64_t expect[num_sections] = {
      (B + 1) * 8, (B + 1) * 8, B * 8, N * 8,
      (N + B) * 8, E * 8,       E * 4, (h.flags & flag_labels) ? N * 8 : 0,
      feat_bytes};
  std::vector<section_entry> tab(num_sections);
  std::memcpy(tab.data(), p + sizeof(header), num_sections * sizeof(section_entry));
  std::uint64_t prev_end = table_end;
  for (std::uint32_t i = 0; i < num_sections; ++i) {
    const auto& e = tab[i];
    const std::uint64_t at = sizeof(header) + i * sizeof(section_entry);
    const std::string where = concat("section '", section_name(i + 1), "'");
    if (e.id != i + 1)
      store_fail(file, "section table", at,
                 concat("entry ", i, " has id ", e.id, ", expected ", i + 1));
    if (e.dtype != static_cast<std::uint32_t>(expected_elem(e.id, dtype)))
      store_fail(file, where, e.offset,
                 concat("dtype code ", e.dtype, ", expected ",
                        static_cast<std::uint32_t>(expected_elem(e.id, dtype))));
    if (e.offset != round_up(prev_end))
      store_fail(file, where, e.offset,
                 concat("starts at ", e.offset, ", expected the 64-byte aligned offset ",
                        round_up(prev_end)));
    if (e.bytes != expect[i])
      store_fail(file, where, e.offset,
                 concat("holds ", e.bytes, " bytes, the header's counts give ", expect[i]));
    if (e.offset > size || e.bytes > size - e.offset)
      store_fail(file, where, e.offset,
                 concat("truncated: the section needs bytes up to ", e.offset + e.bytes,
                        " but the file has ", size));
    prev_end = e.offset + e.bytes;
  }
  if (h.file_size != size)
    store_fail(file, "file", size,
               concat("the file has ", size, " bytes but the header records ", h.file_size,
                      h.file_size > size ? " (truncated)" : " (trailing data)"));
  if (round_up(prev_end) != size)
    store_fail(file, "file", prev_end,
               concat("the last section ends at ", prev_end, ", the file at ", size));
  // Per-batch tables (small): what batch views index with, so check them always.
  auto arr = [&](std::uint32_t i) {
    return reinterpret_cast<const std::int64_t*>(p + tab[i].offset);
  };
  auto check_ptr = [&](std::uint32_t i, std::uint64_t total) {
    const std::int64_t* ptr = arr(i);
    if (ptr[0] != 0)
      store_fail(file, concat("section '", section_name(i + 1), "'"), tab[i].offset,
                 "does not start with 0");
    for (std::uint64_t b = 0; b < B; ++b)
      if (ptr[b + 1] < ptr[b])
        store_fail(file, concat("section '", section_name(i + 1), "'"), tab[i].offset + (b + 1) * 8,
                   concat("decreases at batch ", b, ": ", ptr[b], " -> ", ptr[b + 1]));
    if (static_cast<std::uint64_t>(ptr[B]) != total)
      store_fail(file, concat("section '", section_name(i + 1), "'"), tab[i].offset + B * 8,
                 concat("ends at ", ptr[B], ", the header's total is ", total));
  };
  check_ptr(0, N);
  check_ptr(1, E);
  const std::int64_t* nptr = arr(0);
  const std::int64_t* nout = arr(2);
  std::uint64_t outs = 0;
  for (std::uint64_t b = 0; b < B; ++b) {
    if (nout[b] < 0 || nout[b] > nptr[b + 1] - nptr[b])
      store_fail(
          file, "section 'batch_num_outputs'", tab[2].offset + b * 8,
          concat("batch ", b, " has ", nout[b], " outputs but ", nptr[b + 1] - nptr[b], " nodes"));
    outs += static_cast<std::uint64_t>(nout[b]);
  }
  if (outs != h.total_outputs)
    store_fail(file, "section 'batch_num_outputs'", tab[2].offset,
               concat("sums to ", outs, ", the header's total is ", h.total_outputs));
  if (!checksums) return;
  std::uint64_t pos = table_end;
  for (std::uint32_t i = 0; i < num_sections; ++i) {
    const auto& e = tab[i];
    for (std::uint64_t q = pos; q < e.offset; ++q)
      if (p[q] != std::byte{0})
        store_fail(file, concat("padding before section '", section_name(i + 1), "'"), q,
                   "non-zero byte");
    const std::uint32_t c = crc32_parallel({p + e.offset, static_cast<std::size_t>(e.bytes)});
    if (c != e.crc32)
      store_fail(file, concat("section '", section_name(i + 1), "'"), e.offset,
                 concat("checksum mismatch (stored 0x", std::hex, e.crc32, ", computed 0x", c,
                        "): the payload is corrupted"));
    pos = e.offset + e.bytes;
  }
  for (std::uint64_t q = pos; q < size; ++q)
    if (p[q] != std::byte{0}) store_fail(file, "trailing padding", q, "non-zero byte");
}

/// Structure of every batch (local CSR, id and label ranges); used by `verify_store`.
/// Outputs repeated across batches are not an error: `batch_plan::validate` allows plans
/// whose batches share outputs, and such a plan materializes into a valid store.
inline void check_store_batches(const batch_store& s, const std::string& file) {
  const auto n = static_cast<std::int64_t>(s.hdr().dataset_num_nodes);
  const auto ids_off = s.sections()[3].offset;
  const auto labels_off = s.sections()[7].offset;
  const std::int64_t num_classes = s.num_classes();
  for (std::size_t b = 0; b < s.num_batches(); ++b) {
    const batch_view v = s.batch(b);
    const auto n0 = static_cast<std::uint64_t>(s.node_ptr()[b]);
    const auto ip = v.graph.indptr;
    const auto ip_off = s.sections()[4].offset + (n0 + b) * 8;
    if (ip[0] != 0 || ip[ip.size() - 1] != v.graph.num_edges() ||
        ip[ip.size() - 1] != static_cast<std::int64_t>(v.graph.indices.size()))
      store_fail(file, "section 'local_indptr'", ip_off,
                 concat("batch ", b, ": indptr runs from ", ip[0], " to ", ip[ip.size() - 1],
                        ", expected 0 to ", v.graph.indices.size()));
    try {
      v.graph.validate();
    } catch (const format_error& e) {
      store_fail(file, "section 'local_indices'", s.sections()[5].offset,
                 concat("batch ", b, ": ", e.what()));
    }
    // Columns non-decreasing within each row: a multigraph's repeated entries are kept (in
    // input order) by the extraction, so equal neighbours are legitimate.
    {
      const auto e0 = static_cast<std::uint64_t>(s.edge_ptr()[b]);
      const auto rows = static_cast<std::size_t>(v.graph.num_rows);
      for (std::size_t r = 0; r < rows; ++r)
        for (auto q = static_cast<std::size_t>(ip[r]) + 1; q < static_cast<std::size_t>(ip[r + 1]);
             ++q)
          if (v.graph.indices[q] < v.graph.indices[q - 1])
            store_fail(
                file, "section 'local_indices'", s.sections()[5].offset + (e0 + q) * 8,
                concat("batch ", b, ", row ", r, ", position ", q, ": column ", v.graph.indices[q],
                       " less than the previous column ", v.graph.indices[q - 1]));
    }
    for (std::size_t i = 0; i < v.node_ids.size(); ++i) {
      const auto id = v.node_ids[i];
      if (id < 0 || id >= n)
        store_fail(file, "section 'node_ids'", ids_off + (n0 + i) * 8,
                   concat("batch ", b, ", position ", i, ": id ", id, " outside [0, ", n, ")"));
      const bool out = i < static_cast<std::size_t>(v.num_outputs);
      if (i > 0 && i != static_cast<std::size_t>(v.num_outputs) && v.node_ids[i - 1] >= id)
        store_fail(file, "section 'node_ids'", ids_off + (n0 + i) * 8,
                   concat("batch ", b, ", position ", i, ": ", out ? "output" : "auxiliary", " id ",
                          id, " not greater than ", v.node_ids[i - 1]));
    }
    // Labels: -1 (unlabelled) or a class id below the header's class count.
    for (std::size_t i = 0; i < v.labels.size(); ++i) {
      const auto l = v.labels[i];
      if (l < -1 || l >= num_classes)
        store_fail(file, "section 'labels'", labels_off + (n0 + i) * 8,
                   concat("batch ", b, ", position ", i, " (node ", v.node_ids[i], "): label ", l,
                          " outside [-1, ", num_classes, ")"));
    }
  }
}

}  // namespace detail

// ---- save / load / verify ------------------------------------------------------------------

/// Writes the store's image to `path` atomically (temporary file, fsync, rename).
inline void save_store(const batch_store& s, const std::filesystem::path& path) {
  IBMB_EXPECTS(!s.empty(), "save_store: the store is empty (default-constructed)");
  const auto img = s.image();
  atomic_write(path, [&](file_writer& w) { w.write(img.data(), img.size()); });
}

struct load_options {
  /// Verify every section's crc32 (reads the whole file) before returning.
  bool verify_checksums = false;
  /// Check every batch's structure before returning, as `verify_store` does: node ids in
  /// range and increasing (outputs, then auxiliaries), local CSRs well formed (columns in
  /// range, non-decreasing per row), labels in [-1, num_classes). Reads the id, CSR and
  /// label sections. Without it (or the checksums) a store corrupted after it was written
  /// can index out of bounds when its batches are used.
  bool verify_batches = false;
  /// Ask the kernel to read the mapping ahead (MAP_POPULATE).
  bool populate = false;
};

/// Maps `path` read-only (MAP_PRIVATE) and validates its header, section table and batch
/// tables without reading the payload. Throws `ibmb::io_error` when the file cannot be
/// opened or mapped and `ibmb::format_error` (file, section, offset) when it is malformed.
inline batch_store load_store(const std::filesystem::path& path, const load_options& opt = {}) {
  const std::string name = path.string();
  struct stat st {};
  const int fd = open_regular_file(path, "expected a .ibmb store", &st);
  const auto size = static_cast<std::uint64_t>(st.st_size);
  if (size < sizeof(store_format::header)) {
    ::close(fd);
    detail::store_fail(name, "header", size,
                       detail::concat("truncated: the file has ", size, " bytes, the header needs ",
                                      sizeof(store_format::header)));
  }
  void* m = ::mmap(nullptr, static_cast<std::size_t>(size), PROT_READ,
                   MAP_PRIVATE | (opt.populate ? MAP_POPULATE : 0), fd, 0);
  const int e = errno;
  ::close(fd);
  if (m == MAP_FAILED)
    throw io_error(detail::concat(name, ": mmap failed: ", detail::errno_text(e)));
  std::shared_ptr<const std::byte> owner(
      static_cast<const std::byte*>(m), [size](const std::byte* q) {
        ::munmap(const_cast<std::byte*>(q), static_cast<std::size_t>(size));
      });
  detail::check_store_image(owner.get(), size, name, opt.verify_checksums);
  batch_store s(std::move(owner), static_cast<std::size_t>(size));
  if (opt.verify_batches) detail::check_store_batches(s, name);
  return s;
}

/// What `verify_store` checked.
struct verify_report {
  std::uint64_t file_bytes = 0;
  std::uint32_t sections = 0;
  std::uint64_t batches = 0;
};

/// Checks everything: header, table, every section's crc32, the zero padding and the
/// structure of every batch. Throws `ibmb::format_error` at the first problem.
inline verify_report verify_store(const std::filesystem::path& path) {
  load_options o;
  o.verify_checksums = true;
  o.verify_batches = true;
  const batch_store s = load_store(path, o);
  return {s.image().size(), store_format::num_sections, s.num_batches()};
}

/// Per-batch counts (min/mean/max), totals, bytes per section and the recorded parameters.
/// Throws `ibmb::invalid_argument` for an empty (default-constructed) store.
inline store_summary summarize(const batch_store& s) {
  IBMB_EXPECTS(!s.empty(), "summarize: the store is empty (default-constructed)");
  store_summary r;
  const auto& h = s.hdr();
  r.num_batches = static_cast<std::int64_t>(h.num_batches);
  r.total_nodes = static_cast<std::int64_t>(h.total_nodes);
  r.total_edges = static_cast<std::int64_t>(h.total_edges);
  r.total_outputs = static_cast<std::int64_t>(h.total_outputs);
  auto range_of = [&](auto get) {
    store_summary::range q;
    if (r.num_batches == 0) return q;
    q.min = std::numeric_limits<std::int64_t>::max();
    q.max = std::numeric_limits<std::int64_t>::min();
    double sum = 0;
    for (std::int64_t b = 0; b < r.num_batches; ++b) {
      const std::int64_t x = get(static_cast<std::size_t>(b));
      q.min = std::min(q.min, x);
      q.max = std::max(q.max, x);
      sum += static_cast<double>(x);
    }
    q.mean = sum / static_cast<double>(r.num_batches);
    return q;
  };
  r.nodes = range_of([&](std::size_t b) { return s.node_ptr()[b + 1] - s.node_ptr()[b]; });
  r.edges = range_of([&](std::size_t b) { return s.edge_ptr()[b + 1] - s.edge_ptr()[b]; });
  r.outputs = range_of([&](std::size_t b) { return s.outputs_per_batch()[b]; });
  r.num_features = static_cast<std::int64_t>(h.num_features);
  r.num_classes = h.num_classes;
  r.dataset_num_nodes = static_cast<std::int64_t>(h.dataset_num_nodes);
  r.dataset_num_edges = static_cast<std::int64_t>(h.dataset_num_edges);
  r.dataset_fingerprint = h.dataset_fingerprint;
  r.dtype = s.dtype();
  r.norm = s.norm();
  r.ids_only = s.ids_only();
  r.has_labels = s.has_labels();
  r.self_loops_added = h.flags & store_format::flag_self_loops_added;
  r.params = s.params();
  r.file_bytes = s.image().size();
  for (const auto& e : s.sections())
    r.section_bytes.emplace_back(store_format::section_name(e.id), e.bytes);
  return r;
}

/// The plan a store was materialized from (outputs and nodes of every batch, sorted), so
/// that plan-level tools (influence coverage, schedules) work on stored batches too. An
/// empty (default-constructed) store gives an empty plan.
inline batch_plan<std::int64_t> store_plan(const batch_store& s) {
  batch_plan<std::int64_t> plan;
  std::vector<std::int64_t> outs, nodes;
  for (std::size_t b = 0; b < s.num_batches(); ++b) {
    const auto v = s.batch(b);
    const auto o = v.output_ids();
    outs.assign(o.begin(), o.end());
    nodes.assign(v.node_ids.begin(), v.node_ids.end());
    std::sort(outs.begin(), outs.end());
    std::sort(nodes.begin(), nodes.end());
    plan.push_batch(outs, nodes);
  }
  return plan;
}

}  // namespace ibmb
