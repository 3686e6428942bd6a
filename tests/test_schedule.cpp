// Batch schedule: label distances (symmetric KL of +1-smoothed histograms), the maximizing
// tour against brute force and the identity order, 'sample' and 'rand' orders.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <random>
#include <set>
#include <vector>

#include <catch2/catch.hpp>

#include "ibmb/batch/plan.hpp"
#include "ibmb/batch/schedule.hpp"

using namespace ibmb;

namespace {

std::vector<double> random_symmetric(std::size_t B, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  std::vector<double> d(B * B, 0.0);
  for (std::size_t a = 0; a < B; ++a)
    for (std::size_t b = a + 1; b < B; ++b) d[a * B + b] = d[b * B + a] = u(rng);
  return d;
}

/// Longest closed tour by trying every permutation (no node fixed, no symmetry used).
double brute_force_max(const std::vector<double>& d, std::size_t B) {
  std::vector<std::int64_t> t(B);
  std::iota(t.begin(), t.end(), 0);
  double best = 0;
  do {
    double s = 0;
    for (std::size_t i = 0; i < B; ++i)
      s += d[static_cast<std::size_t>(t[i]) * B + static_cast<std::size_t>(t[(i + 1) % B])];
    best = std::max(best, s);
  } while (std::next_permutation(t.begin(), t.end()));
  return best;
}

bool is_permutation_of_range(const std::vector<std::int64_t>& o, std::size_t B) {
  std::vector<std::int64_t> s = o;
  std::sort(s.begin(), s.end());
  for (std::size_t i = 0; i < s.size(); ++i)
    if (s[i] != static_cast<std::int64_t>(i)) return false;
  return s.size() == B;
}

}  // namespace

TEST_CASE("label_distance_matrix is the symmetric KL of +1-smoothed histograms", "[schedule]") {
  batch_plan<std::int64_t> plan;
  // labels: node v has label v % 3; node 9 unlabelled
  std::vector<std::int64_t> labels = {0, 1, 2, 0, 1, 2, 0, 1, 2, -1};
  const std::vector<std::int64_t> o0 = {0, 3, 6}, o1 = {1, 2, 9};
  plan.push_batch(o0, o0);
  plan.push_batch(o1, o1);
  const auto d = label_distance_matrix(plan, labels);
  // batch 0: counts (3,0,0) + 1 -> (4,1,1)/6 ; batch 1: (0,1,1) + 1 -> (1,2,2)/5
  const double p[3] = {4.0 / 6, 1.0 / 6, 1.0 / 6}, q[3] = {1.0 / 5, 2.0 / 5, 2.0 / 5};
  double kl_pq = 0, kl_qp = 0;
  for (int c = 0; c < 3; ++c) {
    kl_pq += p[c] * std::log(p[c] / q[c]);
    kl_qp += q[c] * std::log(q[c] / p[c]);
  }
  REQUIRE(d.size() == 4);
  REQUIRE(d[0] == 0.0);
  REQUIRE(d[3] == 0.0);
  REQUIRE(d[1] == Approx(kl_pq + kl_qp).epsilon(1e-12));
  REQUIRE(d[2] == d[1]);
  std::vector<std::int64_t> bad = {0, 7};
  REQUIRE_THROWS_AS(label_distance_matrix(plan, bad), invalid_argument);
  // A label like 2^62 (a corrupted file) is an error, not B * C wrapping around to a small
  // buffer that the counting overruns.
  auto huge = labels;
  huge[3] = std::int64_t{1} << 62;
  REQUIRE_THROWS_WITH(label_distance_matrix(plan, huge), Catch::Contains("below 2^31"));
}

TEST_CASE("exact tour equals the brute-force optimum, the heuristic is within 90% of it",
          "[schedule]") {
  int optimal_hits = 0, cases = 0;
  for (std::size_t B = 3; B <= 7; ++B)
    for (std::uint64_t seed = 0; seed < 12; ++seed) {
      CAPTURE(B, seed);
      const auto d = random_symmetric(B, 100 * B + seed);
      const double opt = brute_force_max(d, B);
      schedule_params p;
      p.seed = seed;
      const auto ex = batch_schedule(d, B, p);
      REQUIRE(ex.exact);
      REQUIRE(is_permutation_of_range(ex.order, B));
      REQUIRE(ex.distance == Approx(opt).epsilon(1e-12));
      p.exact_up_to = 0;
      const auto h = batch_schedule(d, B, p);
      REQUIRE_FALSE(h.exact);
      REQUIRE(is_permutation_of_range(h.order, B));
      REQUIRE(h.distance == Approx(tour_length(d, h.order)));
      REQUIRE(h.distance >= 0.9 * opt);
      REQUIRE(h.distance <= opt + 1e-12);
      optimal_hits += h.distance >= opt - 1e-12;
      ++cases;
    }
  WARN("heuristic found the optimum in " << optimal_hits << " of " << cases << " small cases");
}

TEST_CASE("tour never does worse than the identity order and beats random orders", "[schedule]") {
  for (std::size_t B : {12, 40, 150})
    for (std::uint64_t seed = 0; seed < 3; ++seed) {
      CAPTURE(B, seed);
      const auto d = random_symmetric(B, seed * 7 + B);
      schedule_params p;
      p.seed = seed;
      p.max_iterations = 50;
      const auto r = batch_schedule(d, B, p);
      REQUIRE(is_permutation_of_range(r.order, B));
      REQUIRE_FALSE(r.time_capped);
      REQUIRE(r.distance >= r.identity_distance);
      REQUIRE(r.distance > r.random_distance);
      // the identity order itself computed independently
      double id = 0;
      for (std::size_t i = 0; i < B; ++i) id += d[i * B + (i + 1) % B];
      REQUIRE(r.identity_distance == Approx(id));
    }
  // a matrix where the identity order is already optimal: the result is no worse
  const std::size_t B = 10;
  std::vector<double> d(B * B, 0.0);
  for (std::size_t i = 0; i < B; ++i) d[i * B + (i + 1) % B] = d[(i + 1) % B * B + i] = 1.0;
  schedule_params p;
  p.exact_up_to = 0;
  const auto r = batch_schedule(d, B, p);
  REQUIRE(r.distance == Approx(static_cast<double>(B)));
}

TEST_CASE("schedule is deterministic: seeds, time budget and kinds", "[schedule]") {
  const std::size_t B = 60;
  const auto d = random_symmetric(B, 5);
  schedule_params p;
  p.seed = 9;
  const auto a = batch_schedule(d, B, p);
  p.max_seconds = 1e6;  // the time budget does not change the result when it does not fire
  const auto b = batch_schedule(d, B, p);
  REQUIRE(a.order == b.order);
  REQUIRE(a.distance == b.distance);
  REQUIRE(a.random_distance == b.random_distance);

  for (auto kind : {schedule_kind::rand, schedule_kind::sample}) {
    schedule_params q;
    q.kind = kind;
    q.seed = 1;
    const auto x = batch_schedule(d, B, q);
    const auto y = batch_schedule(d, B, q);
    q.seed = 2;
    const auto z = batch_schedule(d, B, q);
    REQUIRE(is_permutation_of_range(x.order, B));
    REQUIRE(x.order == y.order);
    REQUIRE(x.order != z.order);
  }
  // 'sample' follows the distances: with one far batch per step it picks it every time.
  // Distances: d(i, i+1) = 1 along 0..B-1, everything else 0: the walk must follow the path
  // from wherever it starts until it has to jump.
  const std::size_t n = 8;
  std::vector<double> chain(n * n, 0.0);
  for (std::size_t i = 0; i + 1 < n; ++i) chain[i * n + i + 1] = chain[(i + 1) * n + i] = 1.0;
  schedule_params q;
  q.kind = schedule_kind::sample;
  for (std::uint64_t seed = 0; seed < 20; ++seed) {
    q.seed = seed;
    const auto r = batch_schedule(chain, n, q);
    REQUIRE(is_permutation_of_range(r.order, n));
    // every step from a node with an unvisited chain neighbour goes to one
    std::vector<char> used(n, 0);
    for (std::size_t k = 0; k + 1 < n; ++k) {
      const auto cur = static_cast<std::size_t>(r.order[k]);
      used[cur] = 1;
      const bool has = (cur > 0 && !used[cur - 1]) || (cur + 1 < n && !used[cur + 1]);
      const auto nx = static_cast<std::size_t>(r.order[k + 1]);
      if (has) REQUIRE((nx + 1 == cur || nx == cur + 1));
    }
  }
  REQUIRE_THROWS_AS(batch_schedule(std::vector<double>(5), 2), invalid_argument);
  std::vector<double> neg = {0, -1, -1, 0};
  REQUIRE_THROWS_AS(batch_schedule(neg, 2), invalid_argument);
}
