// The ibmb command-line tool: exit codes and one-line errors, run as a subprocess.
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include <catch2/catch.hpp>

#include "cli_runner.hpp"
#include "fixtures.hpp"

#ifdef IBMB_CLI_PATH
namespace {

using ibmb::test::run_cli;

bool one_line(const std::string& s) { return !s.empty() && s.find('\n') == s.size() - 1; }

}  // namespace

TEST_CASE("cli: bad usage and bad input give one line and exit code 2", "[cli][bad-input]") {
  const auto dir = ibmb::test::scratch_dir("cli_bad");
  {
    std::ofstream(dir / "bad_edges.txt") << "0 1\n1 x\n";
    std::ofstream(dir / "trunc.npz") << "PK\x03\x04garbage";
  }
  const std::string cases[] = {
      "",                               // no subcommand
      "stats",                          // missing --data
      "stats --data",                   // missing value
      "stats --data x --no-such-flag",  // unknown flag
      "frobnicate",                     // unknown subcommand
      "stats --data " + (dir / "missing").string(),
      "stats --data " + (dir / "bad_edges.txt").string(),
      "stats --data " + (dir / "trunc.npz").string(),
      "stats --data synthetic:nodes=-5",
      "stats --data synthetic:bogus=1",
      "generate --nodes abc --out " + (dir / "g").string(),
      "generate --homophily 2 --out " + (dir / "g").string(),
  };
  for (const auto& args : cases) {
    INFO("ibmb " << args);
    const auto r = run_cli(args);
    CHECK(r.code == 2);
    CHECK(one_line(r.out));
    CHECK(r.out.rfind("ibmb: error: ", 0) == 0);
  }
  // The error names the file and the line.
  const auto r = run_cli("stats --data " + (dir / "bad_edges.txt").string());
  CHECK_THAT(r.out, Catch::Contains("bad_edges.txt") && Catch::Contains(":2"));
}

TEST_CASE("cli: stats --json and generate round trip", "[cli]") {
  const auto dir = ibmb::test::scratch_dir("cli_gen");
  const auto out = dir / "g";
  auto r =
      run_cli("generate --nodes 3000 --avg-degree 8 --classes 5 --features 16 --seed 3 --out " +
              out.string());
  REQUIRE(r.code == 0);
  r = run_cli("stats --json --data " + out.string());
  REQUIRE(r.code == 0);
  CHECK_THAT(r.out, Catch::Contains("\"nodes\": 3000") && Catch::Contains("\"features\": 16") &&
                        Catch::Contains("\"classes\": 5") &&
                        Catch::Contains("\"symmetric\": true"));
  // The same graph straight from the generator SPEC.
  auto s =
      run_cli("stats --json --data synthetic:nodes=3000,avg_degree=8,classes=5,features=16,seed=3");
  REQUIRE(s.code == 0);
  auto strip_name_time = [](std::string t) {
    t = t.substr(t.find("\"nodes\""));
    return t.substr(0, t.find("\"load_seconds\""));
  };
  CHECK(strip_name_time(r.out) == strip_name_time(s.out));
  // Refuses to overwrite what is there.
  r = run_cli("generate --nodes 100 --out " + out.string());
  CHECK(r.code == 2);
  CHECK_THAT(r.out, Catch::Contains("exists"));
  CHECK(std::filesystem::exists(out / "indptr.npy"));
}
#endif

#ifdef IBMB_CLI_PATH
TEST_CASE("cli: ppr, build, info and verify on a generated graph", "[cli]") {
  const auto dir = ibmb::test::scratch_dir("cli_store");
  const std::string data = "synthetic:nodes=4000,avg_degree=10,classes=4,features=8,seed=5";
  auto r = run_cli("ppr --data " + data + " --outputs val --topk 8 --out " +
                   (dir / "p.npz").string() + " --json");
  REQUIRE(r.code == 0);
  CHECK_THAT(r.out, Catch::Contains("\"seconds\"") && Catch::Contains("\"outputs\": 200") &&
                        Catch::Contains("\"edges_relaxed\"") &&
                        Catch::Contains("\"peak_rss_bytes\""));
  for (const char* m : {"nodewise", "batchwise", "cluster", "random", "khop"}) {
    INFO(m);
    const auto out = dir / (std::string(m) + ".ibmb");
    r = run_cli(std::string("build --data ") + data + " --method " + m +
                " --split test --batch-size 100 --out " + out.string() + " --json");
    REQUIRE(r.code == 0);
    CHECK_THAT(r.out, Catch::Contains("\"batches\": 4") &&
                          Catch::Contains("\"partition_seconds\"") &&
                          Catch::Contains("\"ppr_seconds\""));
    r = run_cli("verify " + out.string());
    CHECK(r.code == 0);
  }
  r = run_cli("info " + (dir / "nodewise.ibmb").string() + " --json --data " + data);
  REQUIRE(r.code == 0);
  CHECK_THAT(r.out, Catch::Contains("\"influence_coverage\"") &&
                        Catch::Contains("\"method\": \"nodewise\""));
  // A flipped byte in the payload: verify fails with one line, exit code 2.
  const auto victim = dir / "random.ibmb";
  {
    std::fstream f(victim, std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(0, std::ios::end);
    const auto size = static_cast<std::streamoff>(f.tellg());
    f.seekg(size - 100);
    char c = 0;
    f.read(&c, 1);
    c = static_cast<char>(c ^ 0x5a);
    f.seekp(size - 100);
    f.write(&c, 1);
  }
  r = run_cli("verify " + victim.string());
  CHECK(r.code == 2);
  CHECK(one_line(r.out));
  // Bad values are refused before any work.
  r = run_cli("build --data " + data + " --method magic --out " + (dir / "x.ibmb").string());
  CHECK(r.code == 2);
  r = run_cli("build --data " + data + " --iterations 5 --tol 1e-3 --out " +
              (dir / "x.ibmb").string());
  CHECK(r.code == 2);
  r = run_cli("ppr --data " + data + " --outputs nowhere.txt --out " + (dir / "x.npz").string());
  CHECK(r.code == 2);
  CHECK_THAT(r.out, Catch::Contains("nowhere.txt"));
}
#endif

#include "../tools/cli_util.hpp"

TEST_CASE("cli json: strings are escaped, invalid UTF-8 becomes U+FFFD", "[cli]") {
  using ibmb::cli::json_object;
  CHECK(json_object::quote("a\"b\\c\n\x01") == "\"a\\\"b\\\\c\\n\\u0001\"");
  // Valid UTF-8 passes through: 2, 3 and 4-byte sequences.
  const std::string ok = "caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80";
  CHECK(json_object::quote(ok) == "\"" + ok + "\"");
  // A stray continuation byte, a truncated sequence, an overlong form, a surrogate, 0xFF.
  CHECK(json_object::quote("x\x80y") == "\"x\\ufffdy\"");
  CHECK(json_object::quote("\xE2\x82") == "\"\\ufffd\\ufffd\"");
  CHECK(json_object::quote("\xC0\xAF") == "\"\\ufffd\\ufffd\"");
  CHECK(json_object::quote("\xED\xA0\x80") == "\"\\ufffd\\ufffd\\ufffd\"");
  CHECK(json_object::quote("\xFF") == "\"\\ufffd\"");
}
