// `--device cpu|cuda` on `ibmb ppr` and `ibmb build`: cpu is the default (same bytes as no
// flag); cuda fails with one line and exit code 2 where it cannot run (a build without CUDA,
// or no device), and where it runs its results match the CPU's.
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include <catch2/catch.hpp>

#include "cli_runner.hpp"
#include "fixtures.hpp"

#ifdef IBMB_CLI_PATH
namespace {

using ibmb::test::run_cli;

bool one_line(const std::string& s) { return !s.empty() && s.find('\n') == s.size() - 1; }

std::string bytes_of(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  REQUIRE(in.good());
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

const std::string data = "synthetic:nodes=3000,avg_degree=10,classes=4,features=8,seed=7";

enum class cuda_state { not_built, no_device, runs };

/// What `--device cuda` does with this binary, checking the one-line errors on the way.
cuda_state probe_cuda(const std::filesystem::path& dir) {
  const auto r = run_cli("ppr --data " + data + " --outputs val --device cuda --out " +
                         (dir / "probe.npz").string());
  if (r.code == 0) return cuda_state::runs;
  INFO(r.out);
  CHECK(r.code == 2);
  CHECK(one_line(r.out));
  if (r.out.find("built without CUDA") != std::string::npos) {
    CHECK(r.out ==
          "ibmb: error: --device cuda: this ibmb was built without CUDA (configure with "
          "-DIBMB_ENABLE_CUDA=ON)\n");
    return cuda_state::not_built;
  }
  // A CUDA build on a machine without a usable device: the line names the CUDA error.
  CHECK_THAT(r.out,
             Catch::StartsWith("ibmb: error: --device cuda: no") && Catch::Contains("CUDA device"));
  return cuda_state::no_device;
}

}  // namespace

TEST_CASE("cli: --device cpu gives the same bytes as no flag", "[cli]") {
  const auto dir = ibmb::test::scratch_dir("cli_device_cpu");
  auto r =
      run_cli("ppr --data " + data + " --outputs val --topk 8 --out " + (dir / "a.npz").string());
  REQUIRE(r.code == 0);
  r = run_cli("ppr --data " + data + " --outputs val --topk 8 --device cpu --out " +
              (dir / "b.npz").string());
  REQUIRE(r.code == 0);
  CHECK(bytes_of(dir / "a.npz") == bytes_of(dir / "b.npz"));
  for (const char* m : {"nodewise", "batchwise"}) {
    INFO(m);
    const std::string base = std::string("build --data ") + data + " --method " + m +
                             " --split test --batch-size 200 --features none --out ";
    r = run_cli(base + (dir / (std::string(m) + "_a.npz")).string());
    REQUIRE(r.code == 0);
    r = run_cli(base + (dir / (std::string(m) + "_b.npz")).string() + " --device cpu");
    REQUIRE(r.code == 0);
    CHECK(bytes_of(dir / (std::string(m) + "_a.npz")) ==
          bytes_of(dir / (std::string(m) + "_b.npz")));
  }
  // An unknown device is a usage error.
  r = run_cli("ppr --data " + data + " --device tpu --out " + (dir / "x.npz").string());
  CHECK(r.code == 2);
  CHECK(one_line(r.out));
}

TEST_CASE("cli: --device cuda fails with one line where it cannot run", "[cli][bad-input]") {
  const auto dir = ibmb::test::scratch_dir("cli_device_cuda");
  const auto state = probe_cuda(dir);
  if (state == cuda_state::runs) {
    WARN("a CUDA device is present: the error path is not exercised here");
    return;
  }
  for (const char* m : {"nodewise", "batchwise"}) {
    INFO(m);
    const auto r = run_cli(std::string("build --data ") + data + " --method " + m +
                           " --split test --device cuda --out " + (dir / "x.ibmb").string());
    CHECK(r.code == 2);
    CHECK(one_line(r.out));
    CHECK_THAT(r.out, Catch::Contains("--device cuda"));
    CHECK(!std::filesystem::exists(dir / "x.ibmb"));
  }
  // Methods without a GPU path are refused by name, with or without CUDA.
  const auto r =
      run_cli("build --data " + data + " --method cluster --split test --device cuda --out " +
              (dir / "x.ibmb").string());
  CHECK(r.code == 2);
  CHECK(one_line(r.out));
  CHECK_THAT(r.out, Catch::Contains("--method cluster"));
}

TEST_CASE("cli: --device cuda matches the CPU where a GPU is present", "[cli]") {
  const auto dir = ibmb::test::scratch_dir("cli_device_gpu");
  if (probe_cuda(dir) != cuda_state::runs) {
    WARN("skipped: --device cuda cannot run here");
    return;
  }
  // The GPU push does the CPU's float operations in the CPU's order: the same bytes.
  auto r =
      run_cli("ppr --data " + data + " --outputs val --topk 8 --out " + (dir / "cpu.npz").string());
  REQUIRE(r.code == 0);
  r = run_cli("ppr --data " + data + " --outputs val --topk 8 --device cuda --json --out " +
              (dir / "gpu.npz").string());
  REQUIRE(r.code == 0);
  CHECK_THAT(r.out, Catch::Contains("\"device\": \"cuda\"") && Catch::Contains("\"nnz\""));
  CHECK(bytes_of(dir / "cpu.npz") == bytes_of(dir / "gpu.npz"));
  const std::string base =
      std::string("build --data ") + data +
      " --method nodewise --split test --batch-size 200 --features none --out ";
  r = run_cli(base + (dir / "nw_cpu.npz").string());
  REQUIRE(r.code == 0);
  r = run_cli(base + (dir / "nw_gpu.npz").string() + " --device cuda");
  REQUIRE(r.code == 0);
  CHECK(bytes_of(dir / "nw_cpu.npz") == bytes_of(dir / "nw_gpu.npz"));
  // Batch-wise: the power iteration on the GPU; a store that verifies.
  r = run_cli(std::string("build --data ") + data +
              " --method batchwise --split test --batch-size 200 --device cuda --json --out " +
              (dir / "bw.ibmb").string());
  REQUIRE(r.code == 0);
  CHECK_THAT(r.out, Catch::Contains("\"batches\"") && Catch::Contains("\"device\": \"cuda\""));
  CHECK(run_cli("verify " + (dir / "bw.ibmb").string()).code == 0);
  // --solver push has no GPU path.
  r = run_cli(std::string("build --data ") + data +
              " --method batchwise --solver push --device cuda --out " + (dir / "x.ibmb").string());
  CHECK(r.code == 2);
  CHECK(one_line(r.out));
}
#endif
