// history/: the historical embedding store (permutation, runs, push/pull, ring, counters,
// checkpoints) and the history plan (halo, edge block, budget).
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <span>
#include <stdexcept>
#include <vector>

#include <catch2/catch.hpp>

#include "fixtures.hpp"
#include "ibmb/batch/plan.hpp"
#include "ibmb/core/crc32.hpp"
#include "ibmb/graph/build.hpp"
#include "ibmb/graph/normalize.hpp"
#include "ibmb/history/plan.hpp"
#include "ibmb/history/store.hpp"

using namespace ibmb;

namespace {

std::vector<float> random_rows(std::mt19937_64& rng, std::size_t n) {
  std::normal_distribution<float> nd;
  std::vector<float> v(n);
  for (auto& x : v) x = nd(rng);
  return v;
}

// Random plan: batches of disjoint outputs plus random auxiliaries.
batch_plan<std::int64_t> random_plan(std::mt19937_64& rng, std::int64_t n, int batches,
                                     double out_frac, double aux_frac) {
  std::vector<std::int64_t> ids(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) ids[static_cast<std::size_t>(i)] = i;
  std::shuffle(ids.begin(), ids.end(), rng);
  const auto nout = static_cast<std::size_t>(out_frac * static_cast<double>(n));
  batch_plan<std::int64_t> p;
  std::uniform_real_distribution<double> u(0, 1);
  for (int b = 0; b < batches; ++b) {
    std::vector<std::int64_t> outs, nodes;
    for (std::size_t i = 0; i < nout; ++i)
      if (static_cast<int>(i % static_cast<std::size_t>(batches)) == b) outs.push_back(ids[i]);
    std::sort(outs.begin(), outs.end());
    std::set<std::int64_t> all(outs.begin(), outs.end());
    for (std::int64_t v = 0; v < n; ++v)
      if (u(rng) < aux_frac) all.insert(v);
    nodes.assign(all.begin(), all.end());
    p.push_batch(outs, nodes);
  }
  return p;
}

csr_graph<> random_graph(std::mt19937_64& rng, std::int64_t n, double p) {
  std::vector<std::pair<std::int64_t, std::int64_t>> e;
  std::uniform_real_distribution<double> u(0, 1);
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t j = i + 1; j < n; ++j)
      if (u(rng) < p) e.emplace_back(i, j);
  return test::undirected(n, e);
}

std::vector<std::int64_t> local_order(const batch_plan<std::int64_t>& p, std::size_t b) {
  std::vector<std::int64_t> ids(p.batch_outputs(b).begin(), p.batch_outputs(b).end());
  for (auto v : p.batch_nodes(b))
    if (!std::binary_search(p.batch_outputs(b).begin(), p.batch_outputs(b).end(), v))
      ids.push_back(v);
  return ids;
}

}  // namespace

TEST_CASE("history permutation makes each batch's outputs one contiguous run", "[history]") {
  std::mt19937_64 rng(1);
  const std::int64_t n = 97;
  const auto plan = random_plan(rng, n, 5, 0.6, 0.1);
  const auto perm = history_permutation(plan, n);
  std::vector<std::int64_t> sorted = perm;
  std::sort(sorted.begin(), sorted.end());
  for (std::int64_t i = 0; i < n; ++i) REQUIRE(sorted[static_cast<std::size_t>(i)] == i);
  history_store s({n, {4}, 0, std::nullopt, false}, perm);
  for (std::size_t b = 0; b < plan.num_batches(); ++b) {
    const auto outs = plan.batch_outputs(b);
    const auto runs = s.runs(std::vector<std::int64_t>(outs.begin(), outs.end()));
    REQUIRE(runs.size() == 1);
    REQUIRE(runs[0].length == static_cast<std::int64_t>(outs.size()));
  }
  // contiguous_runs against a brute-force split.
  for (int trial = 0; trial < 50; ++trial) {
    std::vector<std::int64_t> pos;
    std::int64_t x = static_cast<std::int64_t>(rng() % 10);
    for (int i = 0; i < 30; ++i) {
      x = (rng() % 3 == 0) ? static_cast<std::int64_t>(rng() % 100) : x + 1;
      pos.push_back(x);
    }
    const auto runs = contiguous_runs(pos);
    std::size_t covered = 0;
    for (std::size_t r = 0; r < runs.size(); ++r) {
      REQUIRE(runs[r].src == static_cast<std::int64_t>(covered));
      for (std::int64_t k = 0; k < runs[r].length; ++k)
        REQUIRE(pos[covered + static_cast<std::size_t>(k)] == runs[r].start + k);
      covered += static_cast<std::size_t>(runs[r].length);
      if (r + 1 < runs.size()) REQUIRE(pos[covered] != pos[covered - 1] + 1);  // maximal
    }
    REQUIRE(covered == pos.size());
  }
  // Partition permutation: parts are contiguous, id order inside.
  std::vector<std::int32_t> part = {2, 0, 1, 0, 2, 1, 0};
  const auto pp = history_permutation(std::span<const std::int32_t>(part));
  REQUIRE(pp == std::vector<std::int64_t>{5, 0, 3, 1, 6, 4, 2});
}

TEST_CASE("history store: push then pull is bit-exact and records write steps", "[history]") {
  std::mt19937_64 rng(2);
  const std::int64_t n = 200;
  const std::vector<std::int64_t> dims = {3, 8};
  std::vector<std::int64_t> perm(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) perm[static_cast<std::size_t>(i)] = i;
  std::shuffle(perm.begin(), perm.end(), rng);
  history_store s({n, dims, 2, std::nullopt, false}, perm);
  std::map<std::pair<std::int64_t, std::int64_t>, std::vector<float>> ref;
  std::map<std::pair<std::int64_t, std::int64_t>, std::int64_t> step_of;
  std::map<std::pair<std::int64_t, std::int64_t>, std::vector<std::vector<float>>> hist;
  for (std::int64_t step = 0; step < 40; ++step) {
    const std::int64_t l = step % 2;
    const auto d = static_cast<std::size_t>(dims[static_cast<std::size_t>(l)]);
    std::vector<std::int64_t> nodes;
    for (std::int64_t v = 0; v < n; ++v)
      if (rng() % 4 == 0) nodes.push_back(v);
    std::shuffle(nodes.begin(), nodes.end(), rng);
    const auto rows = random_rows(rng, nodes.size() * d);
    s.push(l, nodes, rows, step);
    for (std::size_t i = 0; i < nodes.size(); ++i) {
      auto key = std::make_pair(l, nodes[i]);
      if (ref.count(key)) hist[key].insert(hist[key].begin(), ref[key]);
      ref[key].assign(rows.begin() + static_cast<std::ptrdiff_t>(i * d),
                      rows.begin() + static_cast<std::ptrdiff_t>((i + 1) * d));
      step_of[key] = step;
    }
  }
  for (std::int64_t l = 0; l < 2; ++l) {
    const auto d = static_cast<std::size_t>(dims[static_cast<std::size_t>(l)]);
    std::vector<std::int64_t> nodes;
    for (std::int64_t v = 0; v < n; ++v)
      if (ref.count({l, v})) nodes.push_back(v);
    std::shuffle(nodes.begin(), nodes.end(), rng);
    std::vector<float> out(nodes.size() * d, -1.0f);
    REQUIRE(s.pull(l, nodes, out) == 0);
    for (std::size_t i = 0; i < nodes.size(); ++i) {
      const auto& want = ref[{l, nodes[i]}];
      REQUIRE(
          std::equal(want.begin(), want.end(), out.begin() + static_cast<std::ptrdiff_t>(i * d)));
      REQUIRE(s.last_written(l, nodes[i]) == step_of[{l, nodes[i]}]);
      // The ring holds the previous versions, newest first, up to the depth.
      const auto& h = hist[{l, nodes[i]}];
      REQUIRE(s.ring_size(l, nodes[i]) == static_cast<int>(std::min<std::size_t>(h.size(), 2)));
      for (int k = 0; k < s.ring_size(l, nodes[i]); ++k) {
        const auto rv = s.ring_version(l, nodes[i], k);
        REQUIRE(std::equal(rv.begin(), rv.end(), h[static_cast<std::size_t>(k)].begin()));
      }
    }
    REQUIRE(s.rows_written(l) == static_cast<std::int64_t>(nodes.size()));
  }
  REQUIRE(s.never_written_reads() == 0);
  REQUIRE(s.ring_bytes() > 0);
}

TEST_CASE("history store: never-written reads are counted, strict mode throws", "[history]") {
  history_store s({10, {2}, 0, std::nullopt, false});
  const std::vector<std::int64_t> w = {1, 2};
  const std::vector<float> rows = {1, 2, 3, 4};
  s.push(0, w, rows, 5);
  const std::vector<std::int64_t> r = {2, 7, 1, 9};
  std::vector<float> out(8, -1);
  REQUIRE(s.pull(0, r, out) == 2);
  REQUIRE(out == std::vector<float>{3, 4, 0, 0, 1, 2, 0, 0});
  REQUIRE(s.never_written_reads() == 2);
  REQUIRE(s.last_written(0, 7) == -1);
  REQUIRE(s.age(0, 1, 8) == 3);
  s.set_strict(true);
  REQUIRE_THROWS_AS(s.pull(0, r, out), ibmb::error);
  REQUIRE(s.pull(0, w, std::span<float>(out).first(4)) == 0);
  REQUIRE(s.never_written_reads() == 2);
  // Bad arguments.
  REQUIRE_THROWS_AS(s.pull(1, w, std::span<float>(out).first(4)), out_of_range);
  REQUIRE_THROWS_AS(s.push(0, std::vector<std::int64_t>{11}, std::vector<float>{0, 0}, 6),
                    out_of_range);
  REQUIRE_THROWS_AS(s.push(0, w, std::vector<float>{0}, 6), invalid_argument);
  REQUIRE_THROWS_AS(s.push(0, w, rows, 4), invalid_argument);  // into the past
  REQUIRE_THROWS_AS(s.push(0, std::vector<std::int64_t>{3, 3}, rows, 6), invalid_argument);
  REQUIRE_THROWS_AS(history_store({3, {2}, 0, std::nullopt, false}, {0, 0, 1}), invalid_argument);
}

TEST_CASE("history store: rings only for the chosen rows", "[history]") {
  history_store s({6, {1}, 3, std::vector<std::int64_t>{4, 1}, false});
  const std::vector<std::int64_t> nodes = {0, 1, 4};
  for (std::int64_t t = 0; t < 5; ++t) {
    const std::vector<float> rows = {float(t), float(10 + t), float(40 + t)};
    s.push(0, nodes, rows, 2 * t);
  }
  REQUIRE_FALSE(s.has_ring(0));
  REQUIRE(s.ring_size(0, 0) == 0);
  REQUIRE(s.ring_size(0, 1) == 3);
  REQUIRE(s.ring_version(0, 1, 0)[0] == 13.0f);
  REQUIRE(s.ring_version(0, 1, 2)[0] == 11.0f);
  REQUIRE(s.ring_step(0, 4, 0) == 6);
  REQUIRE(s.ring_step(0, 4, 2) == 2);
  REQUIRE_THROWS_AS(s.ring_version(0, 1, 3), out_of_range);
  REQUIRE(s.ring_bytes() == 2 * 3 * (4 + 8));
}

TEST_CASE("history checkpoint: round trip is byte-identical, damage is a format_error",
          "[history]") {
  std::mt19937_64 rng(3);
  const auto dir = test::scratch_dir("history_ckpt");
  const std::int64_t n = 50;
  std::vector<std::int64_t> perm(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) perm[static_cast<std::size_t>(i)] = (i * 7) % n;
  std::vector<std::int64_t> rn = {3, 9, 11, 40};
  history_store s({n, {4, 2}, 2, rn, false}, perm);
  for (std::int64_t t = 0; t < 6; ++t)
    for (std::int64_t l = 0; l < 2; ++l) {
      std::vector<std::int64_t> nodes;
      for (std::int64_t v = 0; v < n; ++v)
        if (rng() % 2) nodes.push_back(v);
      s.push(l, nodes, random_rows(rng, nodes.size() * static_cast<std::size_t>(s.dim(l))), t);
    }
  const auto f1 = dir / "a.hist", f2 = dir / "b.hist";
  save_history(s, f1);
  const auto t = load_history(f1);
  REQUIRE(t == s);
  save_history(t, f2);
  REQUIRE(read_file(f1) == read_file(f2));
  // Damage.
  const auto bytes = read_file(f1);
  auto write = [&](const std::vector<char>& b) {
    std::ofstream o(f2, std::ios::binary | std::ios::trunc);
    o.write(b.data(), static_cast<std::streamsize>(b.size()));
  };
  for (std::size_t off : {std::size_t{0}, std::size_t{20}, std::size_t{70}, bytes.size() - 1}) {
    auto b = bytes;
    b[off] = static_cast<char>(b[off] ^ 0x5a);
    write(b);
    REQUIRE_THROWS_AS(load_history(f2), format_error);
  }
  write(std::vector<char>(bytes.begin(), bytes.begin() + 40));
  REQUIRE_THROWS_AS(load_history(f2), format_error);
  write(std::vector<char>(bytes.begin(), bytes.end() - 8));
  REQUIRE_THROWS_WITH(load_history(f2), Catch::Contains("truncated"));
  auto longer = bytes;
  longer.push_back(0);
  write(longer);
  REQUIRE_THROWS_WITH(load_history(f2), Catch::Contains("trailing"));
  REQUIRE_THROWS_AS(load_history(dir / "missing"), io_error);
}

TEST_CASE("history checkpoint: a forged shape is a format_error before any table is allocated",
          "[history]") {
  const auto dir = test::scratch_dir("history_forged");
  const std::int64_t n = 50;
  history_store s({n, {4, 2}, 2, std::vector<std::int64_t>{3, 9}, false});
  const auto f1 = dir / "a.hist", f2 = dir / "b.hist";
  save_history(s, f1);
  const auto bytes = read_file(f1);
  // dims[0] (the payload's first int64) patched to 2^24, the largest plausible width: the
  // store would allocate 50 x 2^24 floats (3.2 GiB) for the table before reading it. Both
  // checksums are recomputed, so only the size check can catch it.
  auto forge = [&](std::int64_t dim0) {
    auto b = bytes;
    std::memcpy(b.data() + sizeof(history_format::header), &dim0, sizeof dim0);
    history_format::header h;
    std::memcpy(&h, b.data(), sizeof h);
    h.payload_crc32 =
        detail::crc32_update(0, b.data() + sizeof h, b.size() - sizeof(history_format::header));
    h.header_crc32 = detail::crc32_update(0, &h, offsetof(history_format::header, header_crc32));
    std::memcpy(b.data(), &h, sizeof h);
    std::ofstream o(f2, std::ios::binary | std::ios::trunc);
    o.write(b.data(), static_cast<std::streamsize>(b.size()));
  };
  forge(std::int64_t{1} << 24);
  REQUIRE_THROWS_AS(load_history(f2), format_error);
  REQUIRE_THROWS_WITH(load_history(f2), Catch::Contains(f2.string()) &&
                                            Catch::Contains("header's shape") &&
                                            Catch::Contains("16777216"));
  forge(5);  // one more float per row than the payload holds
  REQUIRE_THROWS_WITH(load_history(f2), Catch::Contains("header's shape"));
  forge(4);  // the original value: loads again
  REQUIRE(load_history(f2) == s);
}

TEST_CASE("history checkpoint: a store without ring nodes (empty sections) round-trips",
          "[history]") {
  // Empty sections (no ring nodes, no ring) go through take() with count 0.
  const auto dir = test::scratch_dir("history_empty_sections");
  history_store s({7, {3}, 0, std::nullopt, true});
  const auto f = dir / "a.hist";
  save_history(s, f);
  REQUIRE(load_history(f) == s);
}

TEST_CASE("make_history_plan: an exception of the halo score function reaches the caller",
          "[history]") {
  std::mt19937_64 rng(8);
  const std::int64_t n = 60;
  const auto g = random_graph(rng, n, 0.08);
  const auto plan = random_plan(rng, n, 6, 0.5, 0.05);
  history_plan_params p;
  p.num_layers = 2;
  p.budget = {2};
  p.priority = halo_priority::ppr;
  p.threads = 2;
  p.scores = [](std::size_t b, std::span<const std::int64_t>, std::span<const std::int64_t>,
                std::span<double>) {
    if (b >= 1) throw std::runtime_error("score function failed");
  };
  REQUIRE_THROWS_WITH(make_history_plan(g.view(), plan, p), "score function failed");
  p.scores = [](std::size_t, std::span<const std::int64_t>, std::span<const std::int64_t>,
                std::span<double>) { throw ibmb::invalid_argument("bad scores"); };
  REQUIRE_THROWS_AS(make_history_plan(g.view(), plan, p), ibmb::invalid_argument);
}

TEST_CASE("history plan: halo, edge block and budget against brute force", "[history]") {
  std::mt19937_64 rng(4);
  const std::int64_t n = 60;
  const auto g = random_graph(rng, n, 0.08);
  const auto plan = random_plan(rng, n, 4, 0.5, 0.05);
  for (bool loops : {false, true})
    for (auto norm : {normalization::row, normalization::symmetric}) {
      history_plan_params p;
      p.num_layers = 2;
      p.norm = norm;
      p.add_self_loops = loops;
      const auto hp = make_history_plan(g.view(), plan, p);
      // Dense global normalized adjacency.
      const auto gl = loops ? add_self_loops(g.view()) : g;
      const auto w = normalized_weights(gl.view(), norm);
      std::vector<double> A(static_cast<std::size_t>(n * n), 0.0);
      for (std::int64_t u = 0; u < n; ++u)
        for (auto q = gl.indptr[static_cast<std::size_t>(u)];
             q < gl.indptr[static_cast<std::size_t>(u) + 1]; ++q)
          A[static_cast<std::size_t>(u * n + gl.indices[static_cast<std::size_t>(q)])] +=
              w[static_cast<std::size_t>(q)];
      for (std::size_t b = 0; b < plan.num_batches(); ++b) {
        const auto ids = local_order(plan, b);
        std::set<std::int64_t> in(ids.begin(), ids.end()), halo;
        for (auto u : ids)
          for (auto v : g.view().neighbors(u))
            if (!in.count(v)) halo.insert(v);
        for (std::int64_t l = 0; l < 2; ++l) {
          const auto& h = hp.at(b, l);
          REQUIRE(std::vector<std::int64_t>(halo.begin(), halo.end()) == h.halo);
          REQUIRE(h.candidates == static_cast<std::int64_t>(halo.size()));
          h.block().validate(true);
          REQUIRE(h.num_batch_rows() == static_cast<std::int64_t>(ids.size()));
          std::vector<double> D(ids.size() * h.halo.size(), 0.0);
          for (std::size_t r = 0; r < ids.size(); ++r)
            for (auto q = h.indptr[r]; q < h.indptr[r + 1]; ++q)
              D[r * h.halo.size() +
                static_cast<std::size_t>(h.indices[static_cast<std::size_t>(q)])] +=
                  h.weights[static_cast<std::size_t>(q)];
          for (std::size_t r = 0; r < ids.size(); ++r)
            for (std::size_t c = 0; c < h.halo.size(); ++c)
              REQUIRE(D[r * h.halo.size() + c] ==
                      Approx(A[static_cast<std::size_t>(ids[r] * n + h.halo[c])]).margin(1e-7));
        }
      }
    }
  // Budgets.
  history_plan_params p;
  p.num_layers = 2;
  p.budget = {0, 3};
  const auto hb = make_history_plan(g.view(), plan, p);
  p.budget = {1000000};
  REQUIRE(make_history_plan(g.view(), plan, p).halos == [&] {
    history_plan_params q;
    q.num_layers = 2;
    return make_history_plan(g.view(), plan, q).halos;
  }());
  const auto w = normalized_weights(g.view(), normalization::row);
  for (std::size_t b = 0; b < plan.num_batches(); ++b) {
    REQUIRE(hb.at(b, 0).halo.empty());
    REQUIRE(hb.at(b, 0).indices.empty());
    REQUIRE(hb.at(b, 0).num_batch_rows() == static_cast<std::int64_t>(plan.batch_nodes(b).size()));
    // Top 3 by summed edge weight, ties by smaller id.
    const auto ids = local_order(plan, b);
    std::set<std::int64_t> in(ids.begin(), ids.end());
    std::map<std::int64_t, double> score;
    for (auto u : ids)
      for (auto q = g.indptr[static_cast<std::size_t>(u)];
           q < g.indptr[static_cast<std::size_t>(u) + 1]; ++q) {
        const auto v = g.indices[static_cast<std::size_t>(q)];
        if (!in.count(v)) score[v] += w[static_cast<std::size_t>(q)];
      }
    std::vector<std::pair<double, std::int64_t>> rank;
    for (auto [v, s] : score) rank.emplace_back(-s, v);
    std::sort(rank.begin(), rank.end());
    std::vector<std::int64_t> want;
    for (std::size_t i = 0; i < std::min<std::size_t>(3, rank.size()); ++i)
      want.push_back(rank[i].second);
    std::sort(want.begin(), want.end());
    // Summation order may differ from the reference's: compare the selected score multiset.
    std::vector<double> ws, hs;
    for (auto v : want) ws.push_back(score[v]);
    for (auto v : hb.at(b, 1).halo) hs.push_back(score[v]);
    std::sort(ws.begin(), ws.end());
    std::sort(hs.begin(), hs.end());
    REQUIRE(hs.size() == ws.size());
    for (std::size_t i = 0; i < ws.size(); ++i) REQUIRE(hs[i] == Approx(ws[i]));
    for (auto c : hb.at(b, 1).indices) REQUIRE(c < 3);
  }
  // PPR priority: a score function that prefers large ids picks the largest halo ids.
  p.budget = {2};
  p.priority = halo_priority::ppr;
  p.scores = [](std::size_t, std::span<const std::int64_t>, std::span<const std::int64_t> halo,
                std::span<double> s) {
    for (std::size_t i = 0; i < halo.size(); ++i) s[i] = static_cast<double>(halo[i]);
  };
  const auto hpp = make_history_plan(g.view(), plan, p);
  history_plan_params all;
  all.num_layers = 2;
  const auto ha = make_history_plan(g.view(), plan, all);
  for (std::size_t b = 0; b < plan.num_batches(); ++b) {
    const auto& full = ha.at(b, 0).halo;
    std::vector<std::int64_t> want(full.end() - std::min<std::ptrdiff_t>(2, std::ssize(full)),
                                   full.end());
    REQUIRE(hpp.at(b, 0).halo == want);
  }
  // ppr_halo_scores sums the rows of the batch's outputs.
  ppr_matrix<std::int64_t, float> pm;
  pm.num_rows = 2;
  pm.num_cols = n;
  pm.indptr = {0, 2, 3};
  pm.indices = {5, 7, 5};
  pm.values = {0.5f, 0.25f, 0.125f};
  pm.outputs = {1, 2};
  const auto fn = ppr_halo_scores(pm);
  std::vector<double> sc(3, 0.0);
  fn(0, std::vector<std::int64_t>{1, 2, 3}, std::vector<std::int64_t>{4, 5, 7}, sc);
  REQUIRE(sc == std::vector<double>{0.0, 0.625, 0.25});
  REQUIRE_THROWS_AS(make_history_plan(g.view(), plan,
                                      [] {
                                        history_plan_params q;
                                        q.priority = halo_priority::ppr;
                                        return q;
                                      }()),
                    invalid_argument);
}

TEST_CASE("halo_neighbor_drift is the mean delta of the in-batch neighbours", "[history]") {
  std::mt19937_64 rng(5);
  const std::int64_t n = 40;
  const auto g = random_graph(rng, n, 0.15);
  const auto plan = random_plan(rng, n, 3, 0.6, 0.0);
  history_plan_params p;
  const auto hp = make_history_plan(g.view(), plan, p);
  const std::int64_t d = 3;
  for (std::size_t b = 0; b < plan.num_batches(); ++b) {
    const auto& h = hp.at(b, 0);
    const auto ids = local_order(plan, b);
    const auto delta = random_rows(rng, ids.size() * d);
    std::vector<std::uint8_t> valid(ids.size());
    for (auto& x : valid) x = rng() % 4 != 0;
    std::vector<float> out(h.halo.size() * d);
    halo_neighbor_drift(h, delta, d, out, valid);
    for (std::size_t c = 0; c < h.halo.size(); ++c) {
      std::vector<double> want(d, 0.0);
      int cnt = 0;
      for (std::size_t r = 0; r < ids.size(); ++r) {
        const auto nb = g.view().neighbors(ids[r]);
        if (!valid[r] || std::find(nb.begin(), nb.end(), h.halo[c]) == nb.end()) continue;
        ++cnt;
        for (std::int64_t j = 0; j < d; ++j) want[j] += delta[r * d + j];
      }
      for (std::int64_t j = 0; j < d; ++j)
        REQUIRE(out[c * d + j] == Approx(cnt ? want[j] / cnt : 0.0).margin(1e-6));
    }
  }
}
