// ibmb train / infer / demo: bad input gives one line and exit code 2; a tiny run works and
// its report and model file are usable.
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <catch2/catch.hpp>

#include "cli_runner.hpp"
#include "fixtures.hpp"

#ifdef IBMB_CLI_PATH
namespace {

using ibmb::test::run_cli;

std::string slurp(const std::filesystem::path& p) {
  std::ifstream f(p);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

const char* tiny = "synthetic:nodes=600,avg_degree=6,classes=3,features=8,seed=2";

}  // namespace

TEST_CASE("cli: train and infer reject bad input with one line and exit code 2",
          "[cli][bad-input]") {
  const auto dir = ibmb::test::scratch_dir("cli_train_bad");
  std::ofstream(dir / "junk.npz") << "PK\x03\x04garbage";
  std::ofstream(dir / "junk.ibmb") << "not a store";
  const std::string rep = " --report " + (dir / "r.json").string();
  const std::string d = std::string(" --data ") + tiny;
  const std::string cases[] = {
      "train" + rep,                          // missing --data
      "train" + d,                            // missing --report
      "train" + d + rep + " --method magic",  // unknown method
      "train" + d + rep + " --model gat",     // unknown model
      "train" + d + rep + " --epochs 0",      // bad value
      "train" + d + rep + " --epochs x",      // not a number
      "train" + d + rep + " --lr -1",         // negative lr
      "train" + d + rep + " --norm l2",       // unknown normalization
      "train" + d + rep + " --layers 0",      // no layers
      "train" + d + rep + " --wat",           // unknown flag
      "train" + d + rep + " --batches " + (dir / "missing.ibmb").string(),
      "train" + d + rep + " --batches " + (dir / "junk.ibmb").string(),
      "train" + d + rep + " --method full --batches " + (dir / "junk.ibmb").string(),
      "train --data " + (dir / "missing").string() + rep,
      "train --data synthetic:nodes=-3" + rep,
      "infer" + d + rep,  // missing --model
      "infer" + d + rep + " --model " + (dir / "missing.npz").string(),
      "infer" + d + rep + " --model " + (dir / "junk.npz").string(),
      "infer" + d + rep + " --model " + (dir / "junk.npz").string() + " --split nope",
      "infer" + d + rep + " --model " + (dir / "junk.npz").string() + " --method magic",
      "demo --epochs 0",
      "demo --data " + (dir / "missing").string(),
  };
  for (const auto& args : cases) {
    INFO("ibmb " << args);
    const auto r = run_cli(args);
    CHECK(r.code == 2);
    CHECK(!r.out.empty());
    CHECK(r.out.find('\n') == r.out.size() - 1);
    CHECK(r.out.rfind("ibmb: error: ", 0) == 0);
  }
}

TEST_CASE("cli: train writes a report and a model that infer reads", "[cli]") {
  const auto dir = ibmb::test::scratch_dir("cli_train_ok");
  const auto model = (dir / "m.npz").string();
  auto r = run_cli(std::string("train --data ") + tiny + " --method nodewise --epochs 3 --seed 1" +
                   " --report " + (dir / "train.json").string() + " --save-model " + model);
  INFO(r.out);
  REQUIRE(r.code == 0);
  CHECK_THAT(r.out, Catch::Contains("epoch    3/3"));
  const auto rep = slurp(dir / "train.json");
  CHECK_THAT(rep, Catch::Contains("\"test_accuracy\": ") && Catch::Contains("\"epochs\": [") &&
                      Catch::Contains("\"preprocess_seconds\": ") &&
                      Catch::Contains("\"method\": \"nodewise\""));
  for (const char* m : {"full", "nodewise", "khop"}) {
    const auto out = dir / (std::string(m) + ".json");
    r = run_cli(std::string("infer --data ") + tiny + " --model " + model + " --method " + m +
                " --report " + out.string());
    INFO(r.out);
    REQUIRE(r.code == 0);
    CHECK_THAT(slurp(out), Catch::Contains("\"accuracy\": ") && Catch::Contains("\"seconds\": ") &&
                               Catch::Contains(std::string("\"method\": \"") + m + "\""));
  }
  // Batches materialized in pieces (one batch per piece here) score exactly like one store.
  {
    const auto whole = dir / "khop.json", pieces = dir / "khop_pieces.json";
    r = run_cli(std::string("infer --data ") + tiny + " --model " + model +
                " --method khop --batch-size 8 --max-store-gb 1e-9 --report " + pieces.string());
    INFO(r.out);
    REQUIRE(r.code == 0);
    r = run_cli(std::string("infer --data ") + tiny + " --model " + model +
                " --method khop --batch-size 8 --max-store-gb 0 --report " + whole.string());
    REQUIRE(r.code == 0);
    auto field = [](const std::string& text, const std::string& key) {
      const auto at = text.find("\"" + key + "\": ");
      REQUIRE(at != std::string::npos);
      return text.substr(at, text.find_first_of(",}", at) - at);
    };
    const auto a = slurp(whole), b = slurp(pieces);
    CHECK(field(a, "correct") == field(b, "correct"));
    CHECK(field(a, "loss") == field(b, "loss"));
    CHECK(field(a, "pieces") == "\"pieces\": 1");
    CHECK(field(b, "pieces") != "\"pieces\": 1");
    CHECK(field(a, "batches") == field(b, "batches"));
  }
  // A model for another feature count does not fit this dataset.
  r = run_cli(
      "infer --data synthetic:nodes=600,avg_degree=6,classes=3,features=5,seed=2 "
      "--model " +
      model + " --report " + (dir / "x.json").string());
  CHECK(r.code == 2);
  CHECK_THAT(r.out, Catch::Contains("features"));
}
#endif

#ifdef IBMB_CLI_PATH
TEST_CASE("cli: outputs never overwrite inputs; stores and flags are checked before any work",
          "[cli][bad-input]") {
  namespace fs = std::filesystem;
  const auto dir = ibmb::test::scratch_dir("cli_guard");
  const auto data = dir / "g", other = dir / "g8";
  REQUIRE(run_cli("generate --nodes 600 --seed 2 --out " + data.string()).code == 0);
  REQUIRE(run_cli("generate --nodes 600 --seed 8 --out " + other.string()).code == 0);
  const auto store = dir / "s.ibmb";
  auto r = run_cli("build --data " + data.string() + " --batch-size 40 --out " + store.string());
  INFO(r.out);
  REQUIRE(r.code == 0);
  const std::string d = " --data " + data.string(), rep = " --report " + (dir / "r.json").string();
  const auto indptr = data / "indptr.npy";
  const auto before = slurp(indptr);
  auto fails = [](const std::string& args, const std::string& what) {
    INFO("ibmb " << args);
    const auto res = run_cli(args);
    INFO(res.out);
    CHECK(res.code == 2);
    CHECK(res.out.rfind("ibmb: error: ", 0) == 0);
    CHECK(res.out.find('\n') == res.out.size() - 1);
    CHECK_THAT(res.out, Catch::Contains(what));
  };
  // An output that is an input (or a file inside an input directory) is refused.
  fails("ppr" + d + " --out " + indptr.string(), "would overwrite the input");
  fails("ppr" + d + " --out " + store.string() + " --outputs " + store.string(),
        "would overwrite the input");
  fails("train" + d + " --epochs 1 --report " + indptr.string(), "would overwrite the input");
  fails("train" + d + rep + " --epochs 1 --save-model " + indptr.string(),
        "would overwrite the input");
  fails("train" + d + " --epochs 1 --batches " + store.string() + " --report " + store.string(),
        "would overwrite the input");
  fails("build" + d + " --force --out " + indptr.string(), "would overwrite the input");
  CHECK(slurp(indptr) == before);
  // Unwritable outputs fail before the work, not after it.
  fails("train" + d + " --epochs 1 --report " + (dir / "no" / "r.json").string(), "does not exist");
  fails("ppr" + d + " --out " + dir.string(), "is a directory");
  fails("info " + dir.string(), "not a regular file");
  // Flags out of range or not finite.
  fails("--threads 100000 stats" + d, "--threads");
  fails("ppr" + d + " --threads 100000 --out " + (dir / "p.npz").string(), "--threads");
  for (const char* f : {"--dropout nan", "--lr inf", "--alpha nan", "--aux-ratio nan"})
    fails("train" + d + rep + " --epochs 1 " + f, "not");
  CHECK(!fs::exists(dir / "r.json"));
  // A store from another dataset, or a corrupted one, is refused by train and infer.
  fails("train --data " + other.string() + rep + " --epochs 1 --batches " + store.string(),
        "another dataset");
  {
    std::string bytes = slurp(store);
    bytes[bytes.size() / 3] = static_cast<char>(bytes[bytes.size() / 3] ^ 0x55);
    std::ofstream(dir / "bad.ibmb", std::ios::binary) << bytes;
  }
  fails("train" + d + rep + " --epochs 1 --batches " + (dir / "bad.ibmb").string(), "checksum");
  // A huge --aux-ratio takes every node instead of overflowing.
  r = run_cli("build" + d + " --method batchwise --parts 4 --aux-ratio 1e300 --out " +
              (dir / "all.ibmb").string() + " --json");
  INFO(r.out);
  CHECK(r.code == 0);
}
#endif
