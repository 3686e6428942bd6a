// Shared test fixtures: tiny graphs and the location of the real datasets.
#pragma once

#include <unistd.h>
#include <cstdint>

#include <cstdlib>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "ibmb/graph/build.hpp"
#include "ibmb/graph/csr.hpp"

namespace ibmb::test {

/// ../shared/data (or $IBMB_DATA_DIR); nullopt when it is absent, so tests can skip.
inline std::optional<std::filesystem::path> shared_data_dir() {
  std::filesystem::path p;
  if (const char* env = std::getenv("IBMB_DATA_DIR"); env && *env) {
    p = env;
  } else {
#ifdef IBMB_SHARED_DATA_DIR
    p = IBMB_SHARED_DATA_DIR;
#endif
  }
  if (p.empty() || !std::filesystem::is_directory(p)) return std::nullopt;
  return p;
}

/// Returns the dataset folder, or nullopt after printing a skip message.
inline std::optional<std::filesystem::path> shared_dataset(const std::string& name) {
  auto d = shared_data_dir();
  if (!d || !std::filesystem::exists(*d / name)) {
    WARN("skipped: shared dataset '" << name
                                     << "' not found (set IBMB_DATA_DIR or place ../shared/data)");
    return std::nullopt;
  }
  return *d / name;
}

/// A fresh scratch directory for one test. The process id is part of the name: ctest runs
/// test cases (and the instances of a TEMPLATE_TEST_CASE) in parallel processes.
inline std::filesystem::path scratch_dir(const std::string& name) {
  const std::string pid = std::to_string(::getpid());
#ifdef IBMB_TEST_TMP_DIR
  std::filesystem::path p = std::filesystem::path(IBMB_TEST_TMP_DIR) / pid / name;
#else
  std::filesystem::path p = std::filesystem::temp_directory_path() / ("ibmb_test_" + pid) / name;
#endif
  std::filesystem::remove_all(p);
  std::filesystem::create_directories(p);
  return p;
}

/// Undirected graph from an edge list (each pair given once), columns sorted.
template <class I = std::int64_t, class O = std::int64_t, class W = float>
csr_graph<I, O, W> undirected(std::int64_t n,
                              const std::vector<std::pair<std::int64_t, std::int64_t>>& edges,
                              bool self_loops = false) {
  std::vector<std::int64_t> s, d;
  for (auto [a, b] : edges) {
    s.push_back(a);
    d.push_back(b);
  }
  build_options o;
  o.make_undirected = true;
  o.duplicates = duplicate_policy::keep_first;
  o.self_loops = self_loops ? self_loop_policy::add : self_loop_policy::keep;
  return coo_to_csr<I, O, W>(n, std::span<const std::int64_t>(s), std::span<const std::int64_t>(d),
                             std::span<const W>{}, o);
}

template <class I = std::int64_t, class O = std::int64_t, class W = float>
csr_graph<I, O, W> path_graph(std::int64_t n) {
  std::vector<std::pair<std::int64_t, std::int64_t>> e;
  for (std::int64_t i = 0; i + 1 < n; ++i) e.emplace_back(i, i + 1);
  return undirected<I, O, W>(n, e);
}

template <class I = std::int64_t, class O = std::int64_t, class W = float>
csr_graph<I, O, W> cycle_graph(std::int64_t n) {
  std::vector<std::pair<std::int64_t, std::int64_t>> e;
  for (std::int64_t i = 0; i < n; ++i) e.emplace_back(i, (i + 1) % n);
  return undirected<I, O, W>(n, e);
}

template <class I = std::int64_t, class O = std::int64_t, class W = float>
csr_graph<I, O, W> star_graph(std::int64_t leaves) {
  std::vector<std::pair<std::int64_t, std::int64_t>> e;
  for (std::int64_t i = 1; i <= leaves; ++i) e.emplace_back(0, i);
  return undirected<I, O, W>(leaves + 1, e);
}

/// Two k-cliques {0..k-1} and {k..2k-1} joined by the bridge (k-1, k), plus one isolated
/// node 2k.
template <class I = std::int64_t, class O = std::int64_t, class W = float>
csr_graph<I, O, W> two_cliques_with_isolated(std::int64_t k) {
  std::vector<std::pair<std::int64_t, std::int64_t>> e;
  for (std::int64_t c = 0; c < 2; ++c)
    for (std::int64_t i = 0; i < k; ++i)
      for (std::int64_t j = i + 1; j < k; ++j) e.emplace_back(c * k + i, c * k + j);
  e.emplace_back(k - 1, k);
  return undirected<I, O, W>(2 * k + 1, e);
}

}  // namespace ibmb::test
