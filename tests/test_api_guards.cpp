// Bad arguments to the public API give a clear exception before the first use of the bad
// value, never an out-of-bounds access, an overflowed size or a hang (found by a review of
// every entry point; each check here failed, crashed or hung before its guard).
#include <cstdint>
#include <limits>
#include <numeric>
#include <span>
#include <vector>

#include <catch2/catch.hpp>

#include "ibmb/batch/baselines.hpp"
#include "ibmb/batch/batchwise.hpp"
#include "ibmb/batch/materialize.hpp"
#include "ibmb/batch/schedule.hpp"
#include "ibmb/graph/generate.hpp"
#include "ibmb/history/corrector.hpp"
#include "ibmb/history/predictor.hpp"
#include "ibmb/history/store.hpp"
#include "ibmb/partition/merge.hpp"
#include "ibmb/ppr/push.hpp"
#include "ibmb/ppr/topic.hpp"
#include "ibmb/ppr/topic_push.hpp"

using namespace ibmb;

namespace {

/// A 4-cycle with self-loops whose last column id is N (one past the end) when `broken`.
csr_graph<std::int64_t, std::int64_t, float> ring4(bool broken) {
  csr_graph<std::int64_t, std::int64_t, float> g;
  g.num_rows = g.num_cols = 4;
  g.indptr = {0, 3, 6, 9, 12};
  g.indices = {0, 1, 3, 0, 1, 2, 1, 2, 3, 0, 2, 3};
  if (broken) g.indices.back() = 4;
  return g;
}

}  // namespace

TEST_CASE("guards: entry points that index by column id validate the graph", "[guards]") {
  const auto ok = ring4(false), bad = ring4(true);
  const std::vector<std::int64_t> outs = {0, 2};
  khop_plan_params kp;
  kp.batch_size = 2;
  kp.hops = 2;
  REQUIRE_NOTHROW(khop_plan(ok.view(), std::span<const std::int64_t>(outs), kp));
  REQUIRE_THROWS_AS(khop_plan(bad.view(), std::span<const std::int64_t>(outs), kp), format_error);

  std::vector<std::int64_t> set_ptr = {0, 1, 2}, set_nodes = {0, 2};
  const teleport_sets<std::int64_t> sets{set_ptr, set_nodes};
  topic_ppr_params tp;
  REQUIRE_NOTHROW(topic_ppr_topk<float>(ok.view(), sets, 2, tp));
  REQUIRE_THROWS_AS(topic_ppr_topk<float>(bad.view(), sets, 2, tp), format_error);
  topic_push_params pp;
  REQUIRE_THROWS_AS(topic_push_topk<float>(bad.view(), sets, 2, pp), format_error);

  dataset ds;
  ds.graph = bad;
  batch_plan<std::int64_t> plan;
  plan.push_batch(std::vector<std::int64_t>{0}, std::vector<std::int64_t>{0, 3});
  materialize_options mo;
  mo.ids_only = true;
  REQUIRE_THROWS_AS(materialize(ds, plan, mo), format_error);
  ds.graph = ok;
  REQUIRE_NOTHROW(materialize(ds, plan, mo));
}

TEST_CASE("guards: the push rejects an alpha whose 1 - alpha rounds to 1", "[guards]") {
  const auto g = ring4(false);
  const std::vector<std::int64_t> outs = {0};
  ppr_params p;
  p.alpha = 1e-9;  // float(1 - 1e-9) == 1: no mass would ever leave the push
  p.eps = 1e-3;
  REQUIRE_THROWS_WITH(nodewise_ppr<float>(g.view(), std::span<const std::int64_t>(outs), p),
                      Catch::Contains("rounds 1 - alpha to 1"));
  // In double the same alpha is representable, and the push ends.
  p.eps = 0.1;
  REQUIRE_NOTHROW(nodewise_ppr<double>(g.view(), std::span<const std::int64_t>(outs), p));
}

TEST_CASE("guards: ceilings do not overflow for a batch size of INT64_MAX", "[guards]") {
  constexpr auto big = std::numeric_limits<std::int64_t>::max();
  CHECK(balanced_max_outputs(10, big) == 10);
  CHECK(balanced_max_outputs(10, 4) == 4);  // 3 batches of 4, 3, 3
  CHECK(balanced_max_outputs(12, 4) == 4);
  std::vector<std::int64_t> outs(10);
  std::iota(outs.begin(), outs.end(), 0);
  random_plan_params rp;
  rp.batch_size = big;
  const auto plan = random_output_plan(10, std::span<const std::int64_t>(outs), rp);
  REQUIRE(plan.num_batches() == 1);
  CHECK(plan.batch_outputs(0).size() == 10);
}

TEST_CASE("guards: row pointers of the grouping are checked", "[guards]") {
  const std::vector<std::int64_t> col = {1, 0};
  const std::vector<float> val = {0.5f, 0.25f};
  const std::vector<std::int64_t> good = {0, 1, 2}, down = {0, 4, 2};
  REQUIRE(symmetric_output_pairs<float>(2, good, col, val).size() == 1);
  REQUIRE_THROWS_AS(symmetric_output_pairs<float>(2, down, col, val), invalid_argument);
  REQUIRE_THROWS_AS(symmetric_output_pairs<float>(-1, {}, col, val), invalid_argument);
  const std::vector<std::int64_t> outputs = {7, 9}, aux = {1, 2, 3};
  output_groups groups;
  groups.ptr = {0, 2};
  groups.members = {0, 1};
  const std::vector<std::int64_t> aux_bad = {0, 3, 1};
  REQUIRE_THROWS_AS(groups_to_plan<std::int64_t>(outputs, groups, aux_bad, aux), invalid_argument);
}

TEST_CASE("guards: the schedule's time cap and exact search are bounded", "[guards]") {
  const std::vector<double> dist(16, 1.0);
  schedule_params p;
  p.max_seconds = std::numeric_limits<double>::infinity();
  REQUIRE_THROWS_AS(batch_schedule(dist, 4, p), invalid_argument);
  p.max_seconds = 10;
  p.exact_up_to = 20;
  REQUIRE_THROWS_AS(batch_schedule(dist, 4, p), invalid_argument);
  p.exact_up_to = 12;
  REQUIRE_NOTHROW(batch_schedule(dist, 4, p));
}

TEST_CASE("guards: history store and correctors check stores, ids and widths", "[guards]") {
  history_options o;
  o.num_nodes = 6;
  o.dims = {2};
  o.ring = 2;
  history_store s(o);
  const std::vector<float> rows(4, 1.0f);
  // Duplicates would rotate the ring twice (and race on the row): an error in every mode.
  const std::vector<std::int64_t> dup = {3, 3};
  REQUIRE_THROWS_WITH(s.push(0, dup, rows, 1), Catch::Contains("listed twice"));
  const std::vector<std::int64_t> two = {1, 3};
  s.push(0, two, rows, 1);

  std::vector<float> out(4);
  read_context ctx;
  ctx.layer = 0;
  ctx.step = 2;
  ctx.nodes = two;
  identity_corrector id;
  REQUIRE_THROWS_WITH(id.correct(ctx, rows, out), Catch::Contains("no store"));  // not a crash
  ctx.store = &s;
  REQUIRE_NOTHROW(id.correct(ctx, rows, out));
  const std::vector<std::int64_t> far = {1, 6};
  ctx.nodes = far;
  REQUIRE_THROWS_AS(id.correct(ctx, rows, out), out_of_range);
  sat_predictor sat({.gate = sat_gate::always});
  REQUIRE_THROWS_AS(sat.correct(ctx, rows, out), out_of_range);  // before its parallel region
  ctx.nodes = two;

  // Weights for 3 inputs on a store of width 2 would read past the cached rows.
  retransform_corrector rt;
  const std::vector<float> w(3 * 2, 0.5f);
  rt.set_weights(0, w, 3, 2);
  REQUIRE_THROWS_WITH(rt.correct(ctx, rows, out), Catch::Contains("weights for 3 inputs"));
  const std::vector<float> w2(2 * 2, 0.5f);
  rt.set_weights(0, w2, 2, 2);
  REQUIRE_NOTHROW(rt.correct(ctx, rows, out));

  // Sparse part ids (one near INT32_MAX): the permutation groups by part without a count
  // per possible id, and equals the dense ids' one.
  const std::vector<std::int32_t> sparse = {std::numeric_limits<std::int32_t>::max(), 0, 5, 0};
  const std::vector<std::int32_t> dense = {2, 0, 1, 0};
  CHECK(history_permutation(sparse) == history_permutation(dense));
  CHECK(history_permutation(dense) == std::vector<std::int64_t>{3, 0, 2, 1});
}
