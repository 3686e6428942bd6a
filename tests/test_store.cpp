// Materialization (local CSR vs a dense induced submatrix, global normalization, outputs
// first, gathered features/labels), dtype conversions, the .ibmb file (round trip,
// corruption, truncation, wrong magic/version) and determinism across thread counts.
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <span>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "fixtures.hpp"
#include "ibmb/batch/materialize.hpp"
#include "ibmb/batch/plan.hpp"
#include "ibmb/batch/schedule.hpp"
#include "ibmb/batch/store.hpp"
#include "ibmb/core/crc32.hpp"
#include "ibmb/core/file.hpp"
#include "ibmb/core/parallel.hpp"

using namespace ibmb;

namespace {

struct fixture {
  dataset ds;
  std::vector<std::pair<std::int64_t, std::int64_t>> edges;  // undirected, each once
  batch_plan<std::int64_t> plan;
};

/// Random undirected graph (no self-loops unless `loops`), features k/8 (exact in every
/// dtype), labels in [0, 4) with some -1, and a random plan of `nb` batches.
fixture make_fixture(std::int64_t n, int nb, std::uint64_t seed, bool loops, std::int64_t F = 5) {
  std::mt19937_64 rng(seed);
  fixture f;
  std::set<std::pair<std::int64_t, std::int64_t>> seen;
  for (std::int64_t i = 0; i < 3 * n; ++i) {
    std::int64_t a = static_cast<std::int64_t>(rng() % static_cast<std::uint64_t>(n));
    std::int64_t b = static_cast<std::int64_t>(rng() % static_cast<std::uint64_t>(n));
    if (a == b) continue;
    if (a > b) std::swap(a, b);
    if (seen.insert({a, b}).second) f.edges.emplace_back(a, b);
  }
  f.ds.name = "random";
  f.ds.graph = test::undirected(n, f.edges, loops);
  f.ds.num_features = F;
  for (std::int64_t i = 0; i < n * F; ++i)
    f.ds.features.push_back(static_cast<float>(static_cast<std::int64_t>(rng() % 64) - 32) / 8.0f);
  for (std::int64_t i = 0; i < n; ++i)
    f.ds.labels.push_back(rng() % 7 == 0 ? -1 : static_cast<std::int64_t>(rng() % 4));
  for (int b = 0; b < nb; ++b) {
    std::vector<std::int64_t> nodes, outs;
    for (std::int64_t v = 0; v < n; ++v)
      if (rng() % 3 == 0) nodes.push_back(v);
    if (nodes.empty()) nodes.push_back(b % n);
    for (auto v : nodes)
      if (rng() % 2 == 0) outs.push_back(v);
    if (outs.empty()) outs.push_back(nodes.front());
    f.plan.push_batch(outs, nodes);
  }
  return f;
}

/// Dense normalized adjacency built from the edge list alone (no CSR code involved).
std::vector<double> dense_normalized(std::int64_t n,
                                     const std::vector<std::pair<std::int64_t, std::int64_t>>& e,
                                     bool loops, normalization norm) {
  std::vector<double> A(static_cast<std::size_t>(n * n), 0.0);
  auto at = [&](std::int64_t i, std::int64_t j) -> double& {
    return A[static_cast<std::size_t>(i * n + j)];
  };
  for (auto [a, b] : e) at(a, b) = at(b, a) = 1.0;
  if (loops)
    for (std::int64_t i = 0; i < n; ++i) at(i, i) = 1.0;
  std::vector<double> d(static_cast<std::size_t>(n), 0.0);
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t j = 0; j < n; ++j) d[static_cast<std::size_t>(i)] += at(i, j);
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t j = 0; j < n; ++j) {
      if (at(i, j) == 0) continue;
      const double di = d[static_cast<std::size_t>(i)], dj = d[static_cast<std::size_t>(j)];
      if (norm == normalization::row) at(i, j) /= di;
      if (norm == normalization::symmetric) at(i, j) /= std::sqrt(di * dj);
    }
  return A;
}

std::vector<char> slurp(const std::filesystem::path& p) { return read_file(p); }

void spit(const std::filesystem::path& p, const std::vector<char>& b) {
  std::ofstream o(p, std::ios::binary | std::ios::trunc);
  o.write(b.data(), static_cast<std::streamsize>(b.size()));
}

/// Recomputes every section's crc32, the table's and the header's after a test patched
/// the payload of `b` (a store image), so only the structural checks can catch the patch.
void reseal(std::vector<char>& b) {
  store_format::header h;
  std::memcpy(&h, b.data(), sizeof h);
  std::vector<store_format::section_entry> tab(h.num_sections);
  std::memcpy(tab.data(), b.data() + h.table_offset, tab.size() * sizeof(tab[0]));
  for (auto& e : tab)
    e.crc32 = detail::crc32_update(0, b.data() + e.offset, static_cast<std::size_t>(e.bytes));
  std::memcpy(b.data() + h.table_offset, tab.data(), tab.size() * sizeof(tab[0]));
  h.table_crc32 = detail::crc32_update(0, tab.data(), tab.size() * sizeof(tab[0]));
  h.header_crc32 = detail::crc32_update(0, &h, offsetof(store_format::header, header_crc32));
  std::memcpy(b.data(), &h, sizeof h);
}

}  // namespace

TEST_CASE("materialize: local CSR equals the dense induced submatrix of the global normalization",
          "[store]") {
  // 23 nodes: one bitmap word in the extractor; 300: several, shared by both runs of a batch.
  for (std::int64_t nodes_in_graph : {23, 300})
    for (bool loops_in_graph : {false, true})
      for (bool add_loops : {false, true})
        for (auto norm : {normalization::none, normalization::row, normalization::symmetric}) {
          CAPTURE(nodes_in_graph, loops_in_graph, add_loops, to_string(norm));
          auto f =
              make_fixture(nodes_in_graph, 5, 7 + static_cast<std::uint64_t>(norm), loops_in_graph);
          materialize_options o;
          o.norm = norm;
          o.add_self_loops = add_loops;
          const auto s = materialize(f.ds, f.plan, o);
          const auto n = f.ds.num_nodes();
          const auto M = dense_normalized(n, f.edges, loops_in_graph || add_loops, norm);
          REQUIRE(s.num_batches() == f.plan.num_batches());
          for (std::size_t b = 0; b < s.num_batches(); ++b) {
            const auto v = s.batch(b);
            // outputs first, each part sorted: computed with std::set_difference
            const auto outs = f.plan.batch_outputs(b);
            const auto nodes = f.plan.batch_nodes(b);
            std::vector<std::int64_t> expect(outs.begin(), outs.end());
            std::set_difference(nodes.begin(), nodes.end(), outs.begin(), outs.end(),
                                std::back_inserter(expect));
            REQUIRE(std::vector<std::int64_t>(v.node_ids.begin(), v.node_ids.end()) == expect);
            REQUIRE(v.num_outputs == static_cast<std::int64_t>(outs.size()));
            v.graph.validate(true);
            const auto k = static_cast<std::size_t>(v.num_nodes());
            std::vector<double> local(k * k, 0.0);
            std::vector<int> present(k * k, 0);
            for (std::int64_t r = 0; r < v.num_nodes(); ++r) {
              auto cols = v.graph.neighbors(r);
              auto ws = v.graph.neighbor_weights(r);
              for (std::size_t p = 0; p < cols.size(); ++p) {
                local[static_cast<std::size_t>(r) * k + static_cast<std::size_t>(cols[p])] = ws[p];
                present[static_cast<std::size_t>(r) * k + static_cast<std::size_t>(cols[p])] += 1;
              }
            }
            std::size_t mismatches = 0;  // counted, not REQUIREd per entry: keeps the test fast
            for (std::size_t i = 0; i < k; ++i)
              for (std::size_t j = 0; j < k; ++j) {
                const double ref = M[static_cast<std::size_t>(expect[i] * n + expect[j])];
                const bool ok = present[i * k + j] == (ref != 0.0 ? 1 : 0) &&
                                std::fabs(local[i * k + j] - ref) <= 1e-6 * std::max(1.0, ref);
                if (!ok && mismatches++ == 0) {
                  CAPTURE(b, i, j, ref, local[i * k + j], present[i * k + j]);
                  CHECK(ok);
                }
              }
            REQUIRE(mismatches == 0);
            // labels and features gathered in the same order
            for (std::size_t i = 0; i < k; ++i) {
              REQUIRE(v.labels[i] == f.ds.labels[static_cast<std::size_t>(expect[i])]);
              for (std::int64_t c = 0; c < f.ds.num_features; ++c)
                REQUIRE(v.features()[i * 5 + static_cast<std::size_t>(c)] ==
                        f.ds.features[static_cast<std::size_t>(expect[i] * 5 + c)]);
            }
            REQUIRE(std::vector<std::int64_t>(v.output_ids().begin(), v.output_ids().end()) ==
                    std::vector<std::int64_t>(outs.begin(), outs.end()));
          }
        }
}

TEST_CASE("materialize: float16/bfloat16 storage, ids-only mode, read_batch_features", "[store]") {
  auto f = make_fixture(40, 4, 3, true);
  for (auto dt : {feature_dtype::float16, feature_dtype::bfloat16}) {
    materialize_options o;
    o.features = dt;
    const auto s = materialize(f.ds, f.plan, o);
    REQUIRE(s.dtype() == dt);
    for (std::size_t b = 0; b < s.num_batches(); ++b) {
      const auto v = s.batch(b);
      std::vector<float> dec(static_cast<std::size_t>(v.num_nodes() * 5));
      v.decode_features(dec);
      std::vector<float> ref(dec.size());
      read_batch_features(f.ds, v, ref);
      REQUIRE(dec == ref);  // k/8 values with |k| <= 32 are exact in both formats
      REQUIRE_THROWS_AS(v.features(), invalid_argument);
    }
  }
  materialize_options o;
  o.ids_only = true;
  const auto s = materialize(f.ds, f.plan, o);
  REQUIRE(s.ids_only());
  REQUIRE(s.section_bytes(store_format::section::features).empty());
  const auto full = materialize(f.ds, f.plan);
  for (std::size_t b = 0; b < s.num_batches(); ++b) {
    const auto v = s.batch(b);
    REQUIRE(v.feature_bytes.empty());
    std::vector<float> got(static_cast<std::size_t>(v.num_nodes() * 5));
    read_batch_features(f.ds, v, got);
    const auto fv = full.batch(b).features();
    REQUIRE(std::equal(got.begin(), got.end(), fv.begin(), fv.end()));
    std::vector<float> wrong(got.size() + 1);
    REQUIRE_THROWS_AS(read_batch_features(f.ds, v, wrong), invalid_argument);
    // The threaded path (forced with parallel_bytes = 0) copies the same rows.
    for (int t : {2, 3}) {
      scoped_threads th(t);
      std::vector<float> par(got.size(), -1.0f);
      read_batch_features(f.ds, v, par, 0);
      REQUIRE(par == got);
    }
  }
  // A bad id is reported before any row is copied, on the threaded path too.
  std::vector<std::int64_t> ids(s.batch(0).node_ids.begin(), s.batch(0).node_ids.end());
  ids.back() = f.ds.num_nodes();
  batch_view bad = s.batch(0);
  bad.node_ids = ids;
  std::vector<float> out(ids.size() * 5, -1.0f);
  scoped_threads th(2);
  REQUIRE_THROWS_AS(read_batch_features(f.ds, bad, out, 0), out_of_range);
  REQUIRE(std::all_of(out.begin(), out.end(), [](float x) { return x == -1.0f; }));
}

TEST_CASE("batch_plan::slice + chunk_batches: a plan materialized in pieces", "[store]") {
  auto f = make_fixture(60, 7, 11, true);
  const auto whole = materialize(f.ds, f.plan);
  std::int64_t largest = 0, all = 0;
  for (std::size_t b = 0; b < f.plan.num_batches(); ++b) {
    largest = std::max<std::int64_t>(largest, f.plan.batch_nodes(b).size());
    all += static_cast<std::int64_t>(f.plan.batch_nodes(b).size());
  }
  for (std::int64_t cap : {std::int64_t{1}, largest, largest + 3, 2 * largest, all, all + 1}) {
    const auto bounds = chunk_batches(f.plan, cap);
    REQUIRE(bounds.front() == 0);
    REQUIRE(bounds.back() == f.plan.num_batches());
    std::size_t b = 0;
    for (std::size_t c = 0; c + 1 < bounds.size(); ++c) {
      REQUIRE(bounds[c] < bounds[c + 1]);
      const auto piece = f.plan.slice(bounds[c], bounds[c + 1]);
      piece.validate(f.ds.num_nodes());
      // at most `cap` rows, unless the piece is a single larger batch
      if (piece.num_batches() > 1) REQUIRE(static_cast<std::int64_t>(piece.nodes.size()) <= cap);
      // and no room left for the next batch
      if (bounds[c + 1] < f.plan.num_batches())
        REQUIRE(static_cast<std::int64_t>(piece.nodes.size() +
                                          f.plan.batch_nodes(bounds[c + 1]).size()) > cap);
      const auto s = materialize(f.ds, piece);
      for (std::size_t i = 0; i < s.num_batches(); ++i, ++b) {
        const auto u = s.batch(i), w = whole.batch(b);
        REQUIRE(std::ranges::equal(u.node_ids, w.node_ids));
        REQUIRE(u.num_outputs == w.num_outputs);
        REQUIRE(std::ranges::equal(u.graph.indptr, w.graph.indptr));
        REQUIRE(std::ranges::equal(u.graph.indices, w.graph.indices));
        REQUIRE(std::ranges::equal(u.graph.weights, w.graph.weights));
        REQUIRE(std::ranges::equal(u.features(), w.features()));
      }
    }
    REQUIRE(b == whole.num_batches());
  }
  REQUIRE(chunk_batches(f.plan, 1).size() == f.plan.num_batches() + 1);
  REQUIRE(chunk_batches(f.plan, all).size() == 2);
  REQUIRE_THROWS_AS(chunk_batches(f.plan, 0), invalid_argument);
  REQUIRE_THROWS_AS(f.plan.slice(2, 1), invalid_argument);
  REQUIRE_THROWS_AS(f.plan.slice(0, f.plan.num_batches() + 1), invalid_argument);
  REQUIRE(f.plan.slice(3, 3).num_batches() == 0);
}

TEST_CASE("float16 / bfloat16 conversions round to nearest even (brute force)", "[store]") {
  // exact anchors
  REQUIRE(float_to_half(1.0f) == 0x3c00);
  REQUIRE(float_to_half(-2.0f) == 0xc000);
  REQUIRE(float_to_half(65504.0f) == 0x7bff);
  REQUIRE(float_to_half(65519.99f) == 0x7bff);
  REQUIRE(float_to_half(65520.0f) == 0x7c00);
  REQUIRE(float_to_half(std::ldexp(1.0f, -24)) == 0x0001);
  REQUIRE(float_to_half(std::ldexp(1.0f, -25)) == 0x0000);  // tie -> even (0)
  REQUIRE(float_to_half(std::ldexp(1.5f, -25)) == 0x0001);
  REQUIRE(float_to_half(std::ldexp(3.0f, -25)) == 0x0002);             // tie 1.5 ulp -> 2
  REQUIRE(float_to_half(1.0f + std::ldexp(1.0f, -11)) == 0x3c00);      // tie -> even
  REQUIRE(float_to_half(1.0f + 3 * std::ldexp(1.0f, -11)) == 0x3c02);  // tie -> even (up)
  REQUIRE(float_to_half(std::ldexp(1.0f, -14)) == 0x0400);             // smallest normal
  REQUIRE(std::isnan(half_to_float(float_to_half(std::nanf("")))));
  REQUIRE(float_to_bfloat16(1.0f) == 0x3f80);
  REQUIRE(float_to_bfloat16(std::bit_cast<float>(0x3f808000u)) == 0x3f80);  // tie -> even
  REQUIRE(float_to_bfloat16(std::bit_cast<float>(0x3f818000u)) == 0x3f82);  // tie -> even
  REQUIRE(std::isnan(bfloat16_to_float(float_to_bfloat16(std::nanf("")))));

  // Every finite half, decoded by the definition (sign * m * 2^(e-25) in double).
  std::vector<std::pair<double, std::uint16_t>> halves;
  for (std::uint32_t h = 0; h < 0x7c00; ++h) {
    const std::uint32_t e = h >> 10, m = h & 0x3ff;
    const double v = e == 0 ? std::ldexp(static_cast<double>(m), -24)
                            : std::ldexp(static_cast<double>(m + 1024), static_cast<int>(e) - 25);
    REQUIRE(static_cast<double>(half_to_float(static_cast<std::uint16_t>(h))) == v);
    REQUIRE(half_to_float(static_cast<std::uint16_t>(h | 0x8000)) == static_cast<float>(-v));
    REQUIRE(float_to_half(static_cast<float>(v)) == h);
    halves.emplace_back(v, static_cast<std::uint16_t>(h));
  }
  // Nearest half by search, ties to the even code; overflow beyond 65520 -> Inf.
  auto reference = [&](float x) -> std::uint16_t {
    const double a = std::fabs(static_cast<double>(x));
    const std::uint16_t sign = std::signbit(x) ? 0x8000 : 0;
    if (a >= 65520.0) return sign | 0x7c00;
    auto it = std::lower_bound(halves.begin(), halves.end(), std::make_pair(a, std::uint16_t{0}));
    if (it == halves.end()) return sign | 0x7bff;
    if (it->first == a || it == halves.begin()) return sign | it->second;
    auto lo = std::prev(it);
    const double dl = a - lo->first, dh = it->first - a;
    if (dl < dh) return sign | lo->second;
    if (dh < dl) return sign | it->second;
    return sign | ((lo->second & 1) ? it->second : lo->second);
  };
  std::mt19937_64 rng(11);
  for (int i = 0; i < 200000; ++i) {
    // random bit patterns in the half range, plus exact midpoints between neighbours
    const auto bits = static_cast<std::uint32_t>(rng());
    float x = std::bit_cast<float>((bits & 0x80000000u) | (0x30000000u + bits % 0x17900000u));
    if (i % 4 == 0) {
      const auto k = static_cast<std::size_t>(rng() % (halves.size() - 1));
      x = static_cast<float>((halves[k].first + halves[k + 1].first) / 2);
    }
    CAPTURE(x);
    REQUIRE(float_to_half(x) == reference(x));
    // bfloat16: nearest among the two truncations, ties to even
    const auto u = std::bit_cast<std::uint32_t>(x);
    const auto lo = static_cast<std::uint16_t>(u >> 16), hi = static_cast<std::uint16_t>(lo + 1);
    const double dl = std::fabs(static_cast<double>(x) - bfloat16_to_float(lo));
    const double dh = std::fabs(static_cast<double>(x) - bfloat16_to_float(hi));
    const std::uint16_t want = dl < dh ? lo : dh < dl ? hi : ((lo & 1) ? hi : lo);
    REQUIRE(float_to_bfloat16(x) == want);
  }
}

TEST_CASE("materialize is byte-identical for 1 and 2 threads", "[store]") {
  auto f = make_fixture(200, 9, 5, true);
  materialize_options o;
  o.norm = normalization::symmetric;
  o.threads = 1;
  const auto a = materialize(f.ds, f.plan, o);
  o.threads = 2;
  const auto b = materialize(f.ds, f.plan, o);
  REQUIRE(a.image().size() == b.image().size());
  REQUIRE(std::memcmp(a.image().data(), b.image().data(), a.image().size()) == 0);
  // the fingerprint does not depend on the index width
  basic_dataset<std::int32_t, std::int32_t> d32;
  d32.graph = test::undirected<std::int32_t, std::int32_t>(200, f.edges, true);
  d32.features = f.ds.features;
  d32.num_features = f.ds.num_features;
  d32.labels = f.ds.labels;
  REQUIRE(dataset_fingerprint(d32) == dataset_fingerprint(f.ds));
  d32.labels[3] += 1;
  REQUIRE(dataset_fingerprint(d32) != dataset_fingerprint(f.ds));
}

TEST_CASE("store file: save -> load -> save is byte-identical, parameters survive", "[store]") {
  const auto dir = test::scratch_dir("store_roundtrip");
  auto f = make_fixture(60, 6, 9, true);
  materialize_options o;
  o.params.method = "nodewise";
  o.params.alpha = 0.25;
  o.params.eps = 2e-4;
  o.params.topk = 16;
  o.params.seed = 3;
  o.features = feature_dtype::bfloat16;
  const auto s = materialize(f.ds, f.plan, o);
  save_store(s, dir / "a.ibmb");
  const auto l = load_store(dir / "a.ibmb");
  REQUIRE(l.params() == o.params);
  REQUIRE(l.hdr().dataset_fingerprint == dataset_fingerprint(f.ds));
  REQUIRE(l.dtype() == feature_dtype::bfloat16);
  save_store(l, dir / "b.ibmb");
  REQUIRE(slurp(dir / "a.ibmb") == slurp(dir / "b.ibmb"));
  const auto rep = verify_store(dir / "b.ibmb");
  REQUIRE(rep.batches == f.plan.num_batches());
  for (std::size_t b = 0; b < s.num_batches(); ++b) {
    const auto x = s.batch(b), y = l.batch(b);
    REQUIRE(std::equal(x.node_ids.begin(), x.node_ids.end(), y.node_ids.begin(), y.node_ids.end()));
    REQUIRE(std::equal(x.graph.weights.begin(), x.graph.weights.end(), y.graph.weights.begin(),
                       y.graph.weights.end()));
    REQUIRE(std::equal(x.feature_bytes.begin(), x.feature_bytes.end(), y.feature_bytes.begin(),
                       y.feature_bytes.end()));
  }
  const auto sum = summarize(l);
  std::int64_t mn = 1 << 30, mx = 0, tot = 0;
  for (std::size_t b = 0; b < f.plan.num_batches(); ++b) {
    const auto k = static_cast<std::int64_t>(f.plan.batch_nodes(b).size());
    mn = std::min(mn, k);
    mx = std::max(mx, k);
    tot += k;
  }
  REQUIRE(sum.nodes.min == mn);
  REQUIRE(sum.nodes.max == mx);
  REQUIRE(sum.nodes.mean == Approx(static_cast<double>(tot) / 6));
  REQUIRE(sum.total_outputs == static_cast<std::int64_t>(f.plan.num_outputs()));
  REQUIRE(sum.file_bytes == std::filesystem::file_size(dir / "a.ibmb"));
  REQUIRE(sum.params.method == "nodewise");

  // an empty plan is a valid store too
  const auto e = materialize(f.ds, batch_plan<std::int64_t>{});
  save_store(e, dir / "empty.ibmb");
  REQUIRE(verify_store(dir / "empty.ibmb").batches == 0);
}

TEST_CASE("store file: corruption, truncation, wrong magic/version give format_error", "[store]") {
  const auto dir = test::scratch_dir("store_corrupt");
  auto f = make_fixture(50, 5, 13, true);
  const auto s = materialize(f.ds, f.plan);
  const auto good = dir / "good.ibmb";
  save_store(s, good);
  const auto bytes = slurp(good);
  const auto bad = dir / "bad.ibmb";
  auto expect_error = [&](const std::vector<char>& b, bool on_load, const std::string& needle) {
    spit(bad, b);
    if (on_load) {
      try {
        (void)load_store(bad);
        FAIL("load_store accepted a bad file (" << needle << ")");
      } catch (const format_error& e) {
        const std::string msg = e.what();
        CAPTURE(msg);
        REQUIRE(msg.find(bad.string()) != std::string::npos);
        REQUIRE(msg.find(needle) != std::string::npos);
        REQUIRE(msg.find("offset") != std::string::npos);
      }
    }
    try {
      (void)verify_store(bad);
      FAIL("verify_store accepted a bad file (" << needle << ")");
    } catch (const format_error& e) {
      const std::string msg = e.what();
      CAPTURE(msg);
      REQUIRE(msg.find(needle) != std::string::npos);
    }
  };
  // a flipped byte in the header, the table, every section and the padding
  {
    auto b = bytes;
    b[100] ^= 0x10;
    expect_error(b, true, "header");
    b = bytes;
    b[256 + 40] ^= 0x01;
    expect_error(b, true, "section table");
    b = bytes;
    b[200] ^= 0x01;  // reserved bytes are covered by the header checksum
    expect_error(b, true, "header");
  }
  for (const auto& e : s.sections()) {
    if (e.bytes == 0) continue;
    for (std::uint64_t at : {e.offset, e.offset + e.bytes / 2, e.offset + e.bytes - 1}) {
      auto b = bytes;
      b[at] ^= 0x04;
      CAPTURE(store_format::section_name(e.id), at);
      expect_error(b, false, store_format::section_name(e.id));
    }
    if (e.offset % 64 != 0 || e.offset < 8) continue;
  }
  {  // padding between the table and the first section
    auto b = bytes;
    b[s.sections()[0].offset - 1] ^= 0x01;
    expect_error(b, false, "padding");
  }
  // truncation at several points (inside the header, the table, each section, the tail)
  for (std::uint64_t cut :
       std::vector<std::uint64_t>{0, 10, 255, 300, s.sections()[3].offset + 5,
                                  s.sections()[6].offset + 1, bytes.size() - 1}) {
    CAPTURE(cut);
    std::vector<char> b(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(cut));
    expect_error(b, true, "truncated");
  }
  {  // trailing garbage
    auto b = bytes;
    b.insert(b.end(), 64, '\0');
    expect_error(b, true, "trailing");
  }
  {  // wrong magic / version / endianness
    auto b = bytes;
    b[0] = 'X';
    expect_error(b, true, "magic");
    b = bytes;
    b[8] = 2;
    expect_error(b, true, "version");
    b = bytes;
    std::swap(b[12], b[15]);
    std::swap(b[13], b[14]);
    expect_error(b, true, "endianness");
  }
  // A corrupted count with a matching header checksum (a forged header) is still caught by
  // the structural checks, never a crash.
  {
    auto b = bytes;
    store_format::header h;
    std::memcpy(&h, b.data(), sizeof h);
    h.total_nodes += 1;
    h.header_crc32 = static_cast<std::uint32_t>(::crc32(
        0L, reinterpret_cast<const Bytef*>(&h), offsetof(store_format::header, header_crc32)));
    std::memcpy(b.data(), &h, sizeof h);
    expect_error(b, true, "section");
  }
  REQUIRE_THROWS_AS(load_store(dir / "missing.ibmb"), io_error);
  REQUIRE_NOTHROW(verify_store(good));
}

TEST_CASE("materialize rejects a plan that does not fit the dataset", "[store]") {
  auto f = make_fixture(20, 2, 1, true);
  auto p = f.plan;
  p.nodes.back() = 25;
  REQUIRE_THROWS_AS(materialize(f.ds, p), invalid_argument);
  materialize_options o;
  o.params.method = std::string(40, 'x');
  REQUIRE_THROWS_AS(materialize(f.ds, f.plan, o), invalid_argument);
}

TEST_CASE("store of a multigraph: materialize, save and verify_store accept repeated columns",
          "[store]") {
  // coo_to_csr keeps repeated (row, column) entries by default; the extraction keeps them in
  // order, so a batch's local columns are non-decreasing with repeats.
  const std::vector<std::int64_t> src = {0, 0, 0, 1, 1, 2, 2, 3, 3, 3};
  const std::vector<std::int64_t> dst = {1, 1, 2, 0, 0, 3, 0, 2, 2, 1};
  dataset ds;
  ds.name = "multigraph";
  ds.graph = coo_to_csr<std::int64_t, std::int64_t, float>(4, std::span<const std::int64_t>(src),
                                                           std::span<const std::int64_t>(dst));
  ds.num_features = 2;
  ds.features = {0, 1, 2, 3, 4, 5, 6, 7};
  ds.labels = {0, 1, -1, 1};
  batch_plan<std::int64_t> plan;
  plan.push_batch(std::vector<std::int64_t>{0, 3}, std::vector<std::int64_t>{0, 1, 2, 3});
  plan.push_batch(std::vector<std::int64_t>{1, 2}, std::vector<std::int64_t>{0, 1, 2});
  const auto st = materialize(ds, plan);
  bool repeats = false;
  for (std::size_t b = 0; b < st.num_batches(); ++b) {
    const auto v = st.batch(b);
    for (std::int64_t r = 0; r < v.graph.num_rows; ++r) {
      const auto c = v.graph.neighbors(r);
      REQUIRE(std::is_sorted(c.begin(), c.end()));
      repeats |= std::adjacent_find(c.begin(), c.end()) != c.end();
    }
  }
  REQUIRE(repeats);
  const auto dir = test::scratch_dir("store_multigraph");
  save_store(st, dir / "m.ibmb");
  REQUIRE_NOTHROW(verify_store(dir / "m.ibmb"));
  load_options lo;
  lo.verify_batches = true;
  REQUIRE_NOTHROW(load_store(dir / "m.ibmb", lo));

  // A decreasing pair is still an error, naming the batch, row and position.
  auto bytes = slurp(dir / "m.ibmb");
  const auto& idx = st.sections()[5];
  const auto v0 = st.batch(0);
  std::int64_t row = -1;
  for (std::int64_t r = 0; r < v0.graph.num_rows && row < 0; ++r)
    if (v0.graph.degree(r) >= 2 && v0.graph.neighbors(r)[0] != v0.graph.neighbors(r)[1]) row = r;
  REQUIRE(row >= 0);
  const auto p0 = static_cast<std::size_t>(v0.graph.indptr[static_cast<std::size_t>(row)]);
  std::int64_t a = 0, c = 0;
  std::memcpy(&a, bytes.data() + idx.offset + p0 * 8, 8);
  std::memcpy(&c, bytes.data() + idx.offset + (p0 + 1) * 8, 8);
  std::memcpy(bytes.data() + idx.offset + p0 * 8, &c, 8);
  std::memcpy(bytes.data() + idx.offset + (p0 + 1) * 8, &a, 8);
  reseal(bytes);
  spit(dir / "bad.ibmb", bytes);
  REQUIRE_THROWS_WITH(verify_store(dir / "bad.ibmb"),
                      Catch::Contains("local_indices") && Catch::Contains("batch 0") &&
                          Catch::Contains("less than the previous column"));
}

TEST_CASE("verify_store: a label below -1 or not below num_classes is a format_error", "[store]") {
  const auto dir = test::scratch_dir("store_labels");
  auto f = make_fixture(40, 3, 21, true);
  const auto st = materialize(f.ds, f.plan);
  REQUIRE(st.has_labels());
  REQUIRE(st.num_classes() == 4);
  const auto good = dir / "good.ibmb";
  save_store(st, good);
  REQUIRE_NOTHROW(verify_store(good));
  const auto bytes = slurp(good);
  const auto& lab = st.sections()[7];
  REQUIRE(st.node_ptr()[2] - st.node_ptr()[1] >= 2);
  const auto at = static_cast<std::size_t>(st.node_ptr()[1]) + 1;  // batch 1, position 1
  for (std::int64_t bad : {std::int64_t{4}, std::int64_t{-2}, std::int64_t{1} << 40}) {
    CAPTURE(bad);
    auto b = bytes;
    std::memcpy(b.data() + lab.offset + at * 8, &bad, 8);
    reseal(b);
    spit(dir / "bad.ibmb", b);
    REQUIRE_NOTHROW(load_store(dir / "bad.ibmb"));  // the payload is not read without checks
    REQUIRE_THROWS_AS(verify_store(dir / "bad.ibmb"), format_error);
    REQUIRE_THROWS_WITH(verify_store(dir / "bad.ibmb"),
                        Catch::Contains((dir / "bad.ibmb").string()) &&
                            Catch::Contains("section 'labels'") && Catch::Contains("batch 1") &&
                            Catch::Contains("label " + std::to_string(bad)) &&
                            Catch::Contains("[-1, 4)"));
  }
  // A label below -1 in the dataset is refused when materializing.
  f.ds.labels[3] = -5;
  REQUIRE_THROWS_WITH(materialize(f.ds, f.plan), Catch::Contains("label of node 3 is -5"));
}

TEST_CASE("a default-constructed batch_store is empty and well defined", "[store]") {
  const batch_store s;
  REQUIRE(s.empty());
  REQUIRE(s.num_batches() == 0);
  REQUIRE(s.total_nodes() == 0);
  REQUIRE(s.total_edges() == 0);
  REQUIRE(s.num_features() == 0);
  REQUIRE(s.num_classes() == 0);
  REQUIRE_FALSE(s.has_labels());
  REQUIRE_FALSE(s.ids_only());
  REQUIRE(s.dtype() == feature_dtype::none);
  REQUIRE(s.sections().empty());
  REQUIRE(s.image().empty());
  REQUIRE(s.section_bytes(store_format::section::labels).empty());
  REQUIRE(s.node_ptr().empty());
  REQUIRE_THROWS_AS(s.batch(0), out_of_range);
  REQUIRE_THROWS_AS(s.hdr(), invalid_argument);
  REQUIRE_THROWS_AS(s.norm(), invalid_argument);
  REQUIRE_THROWS_AS(s.params(), invalid_argument);
  REQUIRE_THROWS_AS(summarize(s), invalid_argument);
  REQUIRE(store_plan(s).num_batches() == 0);
  REQUIRE_THROWS_AS(label_distance_matrix(s), invalid_argument);
  REQUIRE_THROWS_AS(save_store(s, test::scratch_dir("store_empty") / "e.ibmb"), invalid_argument);
}

TEST_CASE("materialize rejects unknown enum codes and features it does not have", "[store]") {
  auto f = make_fixture(20, 2, 4, true);
  materialize_options o;
  o.features = static_cast<feature_dtype>(7);
  REQUIRE_THROWS_AS(materialize(f.ds, f.plan, o), invalid_argument);
  REQUIRE_THROWS_WITH(materialize(f.ds, f.plan, o), Catch::Contains("feature dtype code 7"));
  o = {};
  o.norm = static_cast<normalization>(5);
  REQUIRE_THROWS_AS(materialize(f.ds, f.plan, o), invalid_argument);
  REQUIRE_THROWS_WITH(materialize(f.ds, f.plan, o), Catch::Contains("normalization code 5"));
  // num_features > 0 without feature values: the header would claim features it lacks.
  o = {};
  f.ds.features.clear();
  REQUIRE_THROWS_AS(materialize(f.ds, f.plan, o), invalid_argument);
  REQUIRE_THROWS_WITH(materialize(f.ds, f.plan, o),
                      Catch::Contains("declares 5 features") && Catch::Contains("no feature"));
  // ids-only stores do not need them; nor does a dataset without features.
  o.ids_only = true;
  REQUIRE_NOTHROW(materialize(f.ds, f.plan, o));
  o.ids_only = false;
  f.ds.num_features = 0;
  REQUIRE_NOTHROW(materialize(f.ds, f.plan, o));
}
