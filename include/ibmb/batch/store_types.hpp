// ibmb: types of the contiguous batch store: feature dtypes and their hand-written
// conversions, the parameters recorded with a store, the on-disk layout (header and
// section table, see docs/file-format.md), `batch_view` and `batch_store`.
//
// A `batch_store` always holds a complete file image: header, section table and the
// 64-byte aligned sections, either in one heap allocation (after `materialize`) or in a
// read-only memory map (after `load_store`). Saving writes that image as it is, so
// save -> load -> save is byte-identical by construction.
#pragma once

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <new>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "ibmb/core/error.hpp"
#include "ibmb/core/progress.hpp"
#include "ibmb/graph/csr.hpp"
#include "ibmb/graph/normalize.hpp"

namespace ibmb {

static_assert(std::endian::native == std::endian::little,
              "ibmb: the batch store format is little-endian; big-endian hosts are not supported");

// ---- feature dtypes ------------------------------------------------------------------------

/// Storage type of the gathered features.
enum class feature_dtype : std::uint32_t {
  none = 0,      ///< no features stored (ids-only store or a dataset without features)
  float32 = 1,   ///< IEEE binary32
  float16 = 2,   ///< IEEE binary16 (round to nearest, ties to even)
  bfloat16 = 3,  ///< upper 16 bits of binary32 (round to nearest, ties to even)
};

inline std::string_view to_string(feature_dtype d) {
  switch (d) {
    case feature_dtype::none:
      return "none";
    case feature_dtype::float32:
      return "float32";
    case feature_dtype::float16:
      return "float16";
    case feature_dtype::bfloat16:
      return "bfloat16";
  }
  return "?";
}

inline feature_dtype parse_feature_dtype(std::string_view s) {
  if (s == "float32" || s == "f32") return feature_dtype::float32;
  if (s == "float16" || s == "f16" || s == "half") return feature_dtype::float16;
  if (s == "bfloat16" || s == "bf16") return feature_dtype::bfloat16;
  throw invalid_argument(
      detail::concat("unknown feature dtype '", s, "' (expected float32, float16 or bfloat16)"));
}

/// Bytes per stored feature value (0 for `none`).
inline constexpr std::size_t dtype_size(feature_dtype d) {
  return d == feature_dtype::float32 ? 4 : (d == feature_dtype::none ? 0 : 2);
}

/// binary32 -> binary16, round to nearest, ties to even. Overflow gives +-Inf, NaN stays a
/// (quiet) NaN, values below half the smallest subnormal give +-0.
inline std::uint16_t float_to_half(float f) {
  const auto x = std::bit_cast<std::uint32_t>(f);
  const auto sign = static_cast<std::uint16_t>((x >> 16) & 0x8000u);
  const std::uint32_t a = x & 0x7fffffffu;
  if (a >= 0x7f800000u)  // Inf or NaN
    return static_cast<std::uint16_t>(sign | 0x7c00u |
                                      (a > 0x7f800000u ? (0x200u | ((a >> 13) & 0x3ffu)) : 0u));
  if (a >= 0x477ff000u) return static_cast<std::uint16_t>(sign | 0x7c00u);  // >= 65520: Inf
  if (a < 0x38800000u) {                // below 2^-14: subnormal half or zero
    if (a <= 0x33000000u) return sign;  // <= 2^-25 rounds to 0 (2^-25 is a tie to 0)
    const std::uint32_t e = a >> 23;    // 102 .. 112
    const std::uint32_t m = (a & 0x7fffffu) | 0x800000u;
    const std::uint32_t shift = 126u - e;  // value / 2^-24 = m >> shift
    std::uint32_t r = m >> shift;
    const std::uint32_t rem = m & ((1u << shift) - 1u);
    const std::uint32_t halfway = 1u << (shift - 1u);
    if (rem > halfway || (rem == halfway && (r & 1u))) ++r;
    return static_cast<std::uint16_t>(sign | r);
  }
  const std::uint32_t r = a - (112u << 23);  // rebias 127 -> 15
  std::uint32_t h = r >> 13;
  const std::uint32_t rem = r & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (h & 1u))) ++h;  // a carry moves into the exponent
  return static_cast<std::uint16_t>(sign | h);
}

/// binary16 -> binary32 (exact).
inline float half_to_float(std::uint16_t h) {
  const std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000u) << 16;
  const std::uint32_t e = (h >> 10) & 0x1fu;
  const std::uint32_t m = h & 0x3ffu;
  if (e == 0) {
    const float v = std::ldexp(static_cast<float>(m), -24);
    return sign ? -v : v;
  }
  if (e == 31) return std::bit_cast<float>(sign | 0x7f800000u | (m << 13));
  return std::bit_cast<float>(sign | ((e + 112u) << 23) | (m << 13));
}

/// binary32 -> bfloat16, round to nearest, ties to even; NaN stays a quiet NaN.
inline std::uint16_t float_to_bfloat16(float f) {
  const auto x = std::bit_cast<std::uint32_t>(f);
  if ((x & 0x7fffffffu) > 0x7f800000u) return static_cast<std::uint16_t>((x >> 16) | 0x40u);
  return static_cast<std::uint16_t>((x + 0x7fffu + ((x >> 16) & 1u)) >> 16);
}

/// bfloat16 -> binary32 (exact).
inline float bfloat16_to_float(std::uint16_t b) {
  return std::bit_cast<float>(static_cast<std::uint32_t>(b) << 16);
}

// ---- parameters ----------------------------------------------------------------------------

/// What produced a store; recorded in the header and shown by `ibmb info`. Fields that do
/// not apply to a method keep their defaults (NaN / -1).
struct store_params {
  std::string method;  ///< e.g. "nodewise", "batchwise", "cluster"; at most 31 bytes
  double alpha = std::nan("");
  double eps = std::nan("");
  std::int64_t topk = -1;
  std::int64_t parts = -1;
  std::int64_t seed = -1;
  bool operator==(const store_params& o) const {
    auto same = [](double a, double b) { return (std::isnan(a) && std::isnan(b)) || a == b; };
    return method == o.method && same(alpha, o.alpha) && same(eps, o.eps) && topk == o.topk &&
           parts == o.parts && seed == o.seed;
  }
};

/// Options of `materialize`.
struct materialize_options {
  /// Edge weights of the local CSRs: this normalization of the *whole* graph (computed on
  /// `dataset.graph`, after adding self-loops when `add_self_loops`), restricted to the batch.
  normalization norm = normalization::row;
  /// Give every node exactly one self-loop (weight 1) before normalizing. Leave false when
  /// the caller already preprocessed the graph (`make_undirected_with_self_loops`).
  bool add_self_loops = false;
  /// Storage of the gathered features (ignored when `ids_only`).
  feature_dtype features = feature_dtype::float32;
  /// Store ids, labels and the local CSRs only; features are gathered from the dataset when a
  /// batch is read (`read_batch_features`).
  bool ids_only = false;
  /// Hash the dataset (graph, features, labels) into the header's fingerprint.
  bool fingerprint = true;
  /// Recorded in the header.
  store_params params;
  /// OpenMP threads for this call; <= 0 keeps the current setting.
  int threads = 0;
  /// Optional; stages "normalize", "extract", "gather", "checksum".
  progress_callback progress;
};

// ---- on-disk layout ------------------------------------------------------------------------

namespace store_format {

inline constexpr char magic[8] = {'I', 'B', 'M', 'B', 'S', 'T', 'O', 'R'};
inline constexpr std::uint32_t version = 1;
inline constexpr std::uint32_t endian_marker = 0x01020304u;
inline constexpr std::uint64_t alignment = 64;
inline constexpr std::uint32_t flag_ids_only = 1u;
inline constexpr std::uint32_t flag_labels = 2u;
inline constexpr std::uint32_t flag_self_loops_added = 4u;

/// Section ids, in file order.
enum class section : std::uint32_t {
  batch_node_ptr = 1,     ///< int64 [B+1]: batch b's nodes are [ptr[b], ptr[b+1])
  batch_edge_ptr = 2,     ///< int64 [B+1]: batch b's edges are [ptr[b], ptr[b+1])
  batch_num_outputs = 3,  ///< int64 [B]
  node_ids = 4,           ///< int64 [total_nodes]: global ids, outputs first
  local_indptr = 5,       ///< int64 [total_nodes + B]: batch b's at node_ptr[b] + b, from 0
  local_indices = 6,      ///< int64 [total_edges]: local column ids, non-decreasing per row
  edge_weights = 7,       ///< float32 [total_edges]
  labels = 8,             ///< int64 [total_nodes] (empty without labels)
  features = 9,           ///< dtype [total_nodes x num_features] (empty when ids-only)
};
inline constexpr std::uint32_t num_sections = 9;

inline const char* section_name(std::uint32_t id) {
  static const char* names[] = {"?",        "batch_node_ptr", "batch_edge_ptr", "batch_num_outputs",
                                "node_ids", "local_indptr",   "local_indices",  "edge_weights",
                                "labels",   "features"};
  return id <= num_sections ? names[id] : "?";
}

/// Element dtype codes of the section table.
enum class elem : std::uint32_t { int64 = 1, float32 = 2, float16 = 3, bfloat16 = 4, none = 0 };

/// The 256-byte header at offset 0 (little-endian, no implicit padding).
struct header {
  char magic[8];
  std::uint32_t version;
  std::uint32_t endian;
  std::uint32_t header_bytes;  ///< 256
  std::uint32_t num_sections;
  std::uint64_t table_offset;  ///< 256
  std::uint64_t file_size;
  std::uint64_t num_batches;
  std::uint64_t total_nodes;
  std::uint64_t total_edges;
  std::uint64_t total_outputs;
  std::uint64_t num_features;
  std::uint64_t dataset_num_nodes;
  std::uint64_t dataset_num_edges;
  std::uint64_t dataset_fingerprint;
  double alpha;
  double eps;
  std::int64_t topk;
  std::int64_t parts;
  std::int64_t seed;
  std::int64_t num_classes;
  std::uint32_t feature_dtype;
  std::uint32_t normalization;
  std::uint32_t flags;
  std::uint32_t table_crc32;   ///< crc32 of the section table
  char method[32];             ///< NUL-padded
  std::uint8_t reserved[52];   ///< zero
  std::uint32_t header_crc32;  ///< crc32 of bytes [0, 252)
};
static_assert(sizeof(header) == 256, "ibmb: store header must be 256 bytes");
static_assert(offsetof(header, header_crc32) == 252);
static_assert(offsetof(header, method) == 168);

/// One 32-byte entry of the section table (right after the header).
struct section_entry {
  std::uint32_t id;
  std::uint32_t dtype;   ///< `elem`
  std::uint64_t offset;  ///< from the file start, a multiple of 64
  std::uint64_t bytes;
  std::uint32_t crc32;  ///< zlib crc32 of the section's bytes
  std::uint32_t reserved;
};
static_assert(sizeof(section_entry) == 32, "ibmb: section entry must be 32 bytes");

inline constexpr std::uint64_t round_up(std::uint64_t x) {
  return (x + alignment - 1) / alignment * alignment;
}

}  // namespace store_format

// ---- views ---------------------------------------------------------------------------------

/// Zero-copy view of one batch. Node i of the batch is `node_ids[i]`; the first
/// `num_outputs` nodes are the outputs (sorted), then the auxiliary nodes (sorted). The
/// local graph's rows and columns are positions in `node_ids`.
struct batch_view {
  std::int64_t index = 0;
  std::int64_t num_outputs = 0;
  std::span<const std::int64_t> node_ids;
  std::span<const std::int64_t> labels;  ///< empty when the store has none
  csr_view<std::int64_t, std::int64_t, float> graph;
  feature_dtype dtype = feature_dtype::none;
  std::int64_t num_features = 0;
  std::span<const std::byte> feature_bytes;  ///< num_nodes x num_features in `dtype`

  [[nodiscard]] std::int64_t num_nodes() const {
    return static_cast<std::int64_t>(node_ids.size());
  }
  [[nodiscard]] std::int64_t num_edges() const { return graph.num_edges(); }
  [[nodiscard]] std::span<const std::int64_t> output_ids() const {
    return node_ids.first(static_cast<std::size_t>(num_outputs));
  }
  [[nodiscard]] std::span<const std::int64_t> output_labels() const {
    return labels.empty() ? labels : labels.first(static_cast<std::size_t>(num_outputs));
  }
  /// Stored features as float32; throws `ibmb::invalid_argument` for another dtype.
  [[nodiscard]] std::span<const float> features() const {
    IBMB_EXPECTS(dtype == feature_dtype::float32, "batch_view::features: the store holds ",
                 to_string(dtype), " features (use decode_features or read_batch_features)");
    return {reinterpret_cast<const float*>(feature_bytes.data()), feature_bytes.size() / 4};
  }
  /// Stored float16 / bfloat16 bits; throws for another dtype.
  [[nodiscard]] std::span<const std::uint16_t> features_16() const {
    IBMB_EXPECTS(dtype == feature_dtype::float16 || dtype == feature_dtype::bfloat16,
                 "batch_view::features_16: the store holds ", to_string(dtype), " features");
    return {reinterpret_cast<const std::uint16_t*>(feature_bytes.data()), feature_bytes.size() / 2};
  }
  /// Decodes the stored features into `out` (num_nodes x num_features float32).
  void decode_features(std::span<float> out) const {
    const auto n = static_cast<std::size_t>(num_nodes() * num_features);
    IBMB_EXPECTS(dtype != feature_dtype::none,
                 "batch_view::decode_features: the store holds no "
                 "features (ids-only: use read_batch_features)");
    IBMB_EXPECTS(out.size() == n, "batch_view::decode_features: output holds ", out.size(),
                 " values, expected ", n);
    if (dtype == feature_dtype::float32) {
      std::memcpy(out.data(), feature_bytes.data(), n * 4);
      return;
    }
    const auto h = features_16();
    if (dtype == feature_dtype::float16)
      for (std::size_t i = 0; i < n; ++i) out[i] = half_to_float(h[i]);
    else
      for (std::size_t i = 0; i < n; ++i) out[i] = bfloat16_to_float(h[i]);
  }
};

/// Aggregates of a store for reports (`ibmb info`).
struct store_summary {
  struct range {
    std::int64_t min = 0, max = 0;
    double mean = 0;
  };
  std::int64_t num_batches = 0, total_nodes = 0, total_edges = 0, total_outputs = 0;
  range nodes, edges, outputs;  ///< per batch
  std::int64_t num_features = 0, num_classes = 0;
  std::int64_t dataset_num_nodes = 0, dataset_num_edges = 0;
  std::uint64_t dataset_fingerprint = 0;
  feature_dtype dtype = feature_dtype::none;
  normalization norm = normalization::none;
  bool ids_only = false, has_labels = false, self_loops_added = false;
  store_params params;
  std::uint64_t file_bytes = 0;
  /// (section name, bytes) in file order.
  std::vector<std::pair<std::string, std::uint64_t>> section_bytes;
};

namespace detail {

/// Fresh zero-filled memory for a store image: an anonymous private mapping (page-aligned,
/// so 64-byte aligned) whose unused tail can be returned (`shrink`) once the image's size is
/// known; `release` hands it to a `batch_store` owner that unmaps it. (Transparent huge pages
/// were measured and not kept: later calls in a process got 1.4x faster, but the first call,
/// the only one of a one-shot build, got 1.5-2x slower.)
class mapped_image {
 public:
  explicit mapped_image(std::size_t bytes) : len_(page_round(bytes)) {
    void* m = ::mmap(nullptr, len_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) throw std::bad_alloc();
    p_ = static_cast<std::byte*>(m);
  }
  mapped_image(const mapped_image&) = delete;
  mapped_image& operator=(const mapped_image&) = delete;
  ~mapped_image() {
    if (p_) ::munmap(p_, len_);
  }

  [[nodiscard]] std::byte* data() const { return p_; }
  /// Maps in, zero-filled and writable, the pages under [at, at + bytes) (inside the image)
  /// before they are written: one system call instead of one page fault per page
  /// (MADV_POPULATE_WRITE, Linux 5.14 and later). Where that is not available, or fails, the
  /// pages fault in on first write as without it. Threads may call it on disjoint ranges.
  void prefault(const void* at, std::size_t bytes) const noexcept {
#ifdef MADV_POPULATE_WRITE
    const auto offset = static_cast<std::size_t>(static_cast<const std::byte*>(at) - p_);
    if (bytes == 0 || offset >= len_) return;
    const std::size_t lo = offset / page_size() * page_size();
    const std::size_t hi = std::min(len_, page_round(offset + bytes));
    (void)::madvise(p_ + lo, hi - lo, MADV_POPULATE_WRITE);
#else
    (void)at;
    (void)bytes;
#endif
  }
  /// Keeps the first `bytes` (rounded up to a page); unmaps the rest.
  void shrink(std::size_t bytes) {
    const std::size_t keep = page_round(bytes);
    if (keep < len_) {
      ::munmap(p_ + keep, len_ - keep);
      len_ = keep;
    }
  }
  [[nodiscard]] std::shared_ptr<const std::byte> release() {
    const std::size_t len = len_;
    std::byte* p = std::exchange(p_, nullptr);  // unmapped by the deleter, even if this throws
    return std::shared_ptr<const std::byte>(
        p, [len](const std::byte* q) { ::munmap(const_cast<std::byte*>(q), len); });
  }

 private:
  static std::size_t page_size() { return static_cast<std::size_t>(::sysconf(_SC_PAGESIZE)); }
  static std::size_t page_round(std::size_t bytes) {
    const std::size_t page = page_size();
    return (std::max<std::size_t>(bytes, 1) + page - 1) / page * page;
  }
  std::byte* p_ = nullptr;
  std::size_t len_ = 0;
};

}  // namespace detail

/// Every batch of a plan in one contiguous image (see the file comment). Cheap to copy
/// (shares the image). Build with `materialize`, or `load_store`.
///
/// A default-constructed store is empty: `empty()` is true, the counts are 0
/// (`num_batches`, `total_nodes`, `total_edges`, `num_features`, `num_classes`), `has_labels`
/// and `ids_only` are false, `dtype` is `none`, the spans are empty and `batch(b)` throws
/// `ibmb::out_of_range`; `hdr`, `norm` and `params` (which need a header) throw
/// `ibmb::invalid_argument`.
class batch_store {
 public:
  batch_store() = default;

  /// Wraps a complete image whose header and table are already validated (used by
  /// `materialize` and `load_store`; `bytes` must stay alive as long as `owner`).
  batch_store(std::shared_ptr<const std::byte> owner, std::size_t size)
      : mem_(std::move(owner)), size_(size) {
    bind();
  }

  [[nodiscard]] bool empty() const { return size_ == 0; }
  [[nodiscard]] std::size_t num_batches() const {
    return empty() ? 0 : static_cast<std::size_t>(hdr().num_batches);
  }
  /// The header; throws `ibmb::invalid_argument` for an empty store.
  [[nodiscard]] const store_format::header& hdr() const {
    IBMB_EXPECTS(!empty(),
                 "batch_store: the store is empty (default-constructed), it has no header");
    return *reinterpret_cast<const store_format::header*>(mem_.get());
  }
  [[nodiscard]] std::span<const store_format::section_entry> sections() const {
    if (empty()) return {};
    return {reinterpret_cast<const store_format::section_entry*>(mem_.get() + hdr().table_offset),
            hdr().num_sections};
  }
  /// The whole file image (what `save_store` writes).
  [[nodiscard]] std::span<const std::byte> image() const { return {mem_.get(), size_}; }
  [[nodiscard]] std::span<const std::byte> section_bytes(store_format::section s) const {
    if (empty()) return {};
    const auto& e = sections()[static_cast<std::size_t>(s) - 1];
    return image().subspan(e.offset, e.bytes);
  }

  [[nodiscard]] feature_dtype dtype() const {
    return empty() ? feature_dtype::none : static_cast<feature_dtype>(hdr().feature_dtype);
  }
  [[nodiscard]] normalization norm() const {
    return static_cast<normalization>(hdr().normalization);
  }
  [[nodiscard]] bool ids_only() const {
    return !empty() && (hdr().flags & store_format::flag_ids_only);
  }
  [[nodiscard]] bool has_labels() const {
    return !empty() && (hdr().flags & store_format::flag_labels);
  }
  [[nodiscard]] std::int64_t num_features() const {
    return empty() ? 0 : static_cast<std::int64_t>(hdr().num_features);
  }
  [[nodiscard]] std::int64_t num_classes() const { return empty() ? 0 : hdr().num_classes; }
  [[nodiscard]] std::int64_t total_nodes() const {
    return empty() ? 0 : static_cast<std::int64_t>(hdr().total_nodes);
  }
  [[nodiscard]] std::int64_t total_edges() const {
    return empty() ? 0 : static_cast<std::int64_t>(hdr().total_edges);
  }
  [[nodiscard]] store_params params() const {
    store_params p;
    const auto& h = hdr();
    std::size_t len = 0;
    while (len < sizeof h.method && h.method[len] != '\0') ++len;
    p.method.assign(h.method, len);
    p.alpha = h.alpha;
    p.eps = h.eps;
    p.topk = h.topk;
    p.parts = h.parts;
    p.seed = h.seed;
    return p;
  }
  [[nodiscard]] std::span<const std::int64_t> node_ptr() const { return node_ptr_; }
  [[nodiscard]] std::span<const std::int64_t> edge_ptr() const { return edge_ptr_; }
  [[nodiscard]] std::span<const std::int64_t> outputs_per_batch() const { return num_out_; }

  /// Zero-copy view of batch `b`; throws `ibmb::out_of_range` for a bad index.
  [[nodiscard]] batch_view batch(std::size_t b) const {
    if (b >= num_batches())
      throw out_of_range(
          detail::concat("batch_store::batch: index ", b, " outside [0, ", num_batches(), ")"));
    const auto n0 = static_cast<std::size_t>(node_ptr_[b]);
    const auto nn = static_cast<std::size_t>(node_ptr_[b + 1]) - n0;
    const auto e0 = static_cast<std::size_t>(edge_ptr_[b]);
    const auto ne = static_cast<std::size_t>(edge_ptr_[b + 1]) - e0;
    batch_view v;
    v.index = static_cast<std::int64_t>(b);
    v.num_outputs = num_out_[b];
    v.node_ids = ids_.subspan(n0, nn);
    if (!labels_.empty()) v.labels = labels_.subspan(n0, nn);
    v.graph = csr_view<std::int64_t, std::int64_t, float>(
        static_cast<std::int64_t>(nn), static_cast<std::int64_t>(nn),
        indptr_.subspan(n0 + b, nn + 1), indices_.subspan(e0, ne), weights_.subspan(e0, ne));
    v.num_features = num_features();
    v.dtype = ids_only() ? feature_dtype::none : dtype();
    if (v.dtype != feature_dtype::none) {
      const auto row = static_cast<std::size_t>(v.num_features) * dtype_size(v.dtype);
      v.feature_bytes = section_bytes(store_format::section::features).subspan(n0 * row, nn * row);
    }
    return v;
  }

 private:
  template <class T>
  std::span<const T> typed(store_format::section s) const {
    const auto b = section_bytes(s);
    return {reinterpret_cast<const T*>(b.data()), b.size() / sizeof(T)};
  }
  void bind() {
    using store_format::section;
    node_ptr_ = typed<std::int64_t>(section::batch_node_ptr);
    edge_ptr_ = typed<std::int64_t>(section::batch_edge_ptr);
    num_out_ = typed<std::int64_t>(section::batch_num_outputs);
    ids_ = typed<std::int64_t>(section::node_ids);
    indptr_ = typed<std::int64_t>(section::local_indptr);
    indices_ = typed<std::int64_t>(section::local_indices);
    weights_ = typed<float>(section::edge_weights);
    labels_ = typed<std::int64_t>(section::labels);
  }

  std::shared_ptr<const std::byte> mem_;
  std::size_t size_ = 0;
  std::span<const std::int64_t> node_ptr_, edge_ptr_, num_out_, ids_, indptr_, indices_, labels_;
  std::span<const float> weights_;
};

}  // namespace ibmb
