// ibmb train / infer / demo: bad input gives one line and exit code 2; a tiny run works and
// its report and model file are usable.
#include <sys/stat.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>
#include <string>

#include <catch2/catch.hpp>

#include "cli_runner.hpp"
#include "fixtures.hpp"
#include "ibmb/graph/io/npy.hpp"

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
  // A store of another normalization than the model's (row, the default) is refused by infer;
  // one of the same is accepted.
  for (const char* norm : {"symmetric", "row"}) {
    const auto store = dir / (std::string(norm) + ".ibmb");
    r = run_cli(std::string("build --data ") + tiny + " --split test --batch-size 8 --norm " +
                norm + " --out " + store.string());
    REQUIRE(r.code == 0);
    r = run_cli(std::string("infer --data ") + tiny + " --model " + model + " --batches " +
                store.string() + " --report " + (dir / "b.json").string());
    INFO(norm << ": " << r.out);
    if (std::string(norm) == "row") {
      CHECK(r.code == 0);
    } else {
      CHECK(r.code == 2);
      CHECK_THAT(r.out, Catch::Contains("normalized batches") && Catch::Contains("--norm row"));
      // train: an explicit --norm that contradicts the store is an error too.
      r = run_cli(std::string("train --data ") + tiny + " --epochs 1 --batches " + store.string() +
                  " --norm row --report " + (dir / "t.json").string());
      CHECK(r.code == 2);
      CHECK_THAT(r.out, Catch::Contains("omit --norm"));
    }
  }
  // Audits are written to the staleness report: without one, --audit-every is an error.
  r = run_cli(std::string("train --data ") + tiny + " --epochs 1 --history cache --audit-every 2" +
              " --report " + (dir / "t.json").string());
  CHECK(r.code == 2);
  CHECK_THAT(r.out, Catch::Contains("--staleness-report"));
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
TEST_CASE("cli: outputs never overwrite inputs, stores and flags are checked before any work",
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
  // The --split file of build is an input too.
  const auto split = dir / "split.npy";
  fs::copy_file(data / "train_idx.npy", split);
  const auto split_before = slurp(split);
  fails("build" + d + " --split " + split.string() + " --force --out " + split.string(),
        "would overwrite the input");
  CHECK(slurp(split) == split_before);
  // generate: no directory tree made up from a typo, and a file is not a directory.
  fails("generate --nodes 100 --out " + (dir / "no" / "g").string(), "does not exist");
  CHECK(!fs::exists(dir / "no"));
  fails("generate --nodes 100 --force --out " + split.string(), "is a file");
  CHECK(slurp(split) == split_before);
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
  // Outputs that exist but are not regular files (a FIFO here; a device the same) are refused
  // before any work and stay what they were; a FIFO as an input is an error, not a hang.
  const auto fifo = dir / "fifo";
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  fails("ppr" + d + " --out " + fifo.string(), "not a regular file");
  fails("train" + d + " --epochs 1 --report " + fifo.string(), "not a regular file");
  fails("info " + fifo.string(), "not a regular file");
  fails("stats --data edgelist:" + fifo.string(), "not a regular file");
  CHECK(fs::is_fifo(fifo));
  fails("ppr" + d + " --out ''", "empty path");
  // Two outputs of one run on one file.
  fails("train" + d + rep + " --epochs 1 --save-model " + (dir / "r.json").string(),
        "the same file as --report");
  // --outputs / --split files: 1-D integer arrays only (a float array or a 2-D one is not ids).
  {
    const std::vector<float> f{1.f, 2.f};
    ibmb::write_npy<float>(dir / "f.npy", f, {2});
    const std::vector<std::int64_t> two{1, 2, 3, 4};
    ibmb::write_npy<std::int64_t>(dir / "two.npy", two, {2, 2});
  }
  fails("ppr" + d + " --outputs " + (dir / "f.npy").string() + " --out " + (dir / "p.npz").string(),
        "expected an integer dtype");
  fails("build" + d + " --split " + (dir / "two.npy").string() + " --out " +
            (dir / "x.ibmb").string(),
        "expected a 1-D array");
  // A dataset with some splits but not all: an error, not a random split over them.
  const auto partial = dir / "partial";
  fs::copy(data, partial);
  fs::remove(partial / "val_idx.npy");
  fails("train --data " + partial.string() + rep + " --epochs 1", "give all three splits");
  // NaN edge weights are refused when the dataset is loaded.
  {
    const auto nnz = ibmb::read_npy(partial / "indices.npy").size();
    std::vector<float> w(nnz, 1.f);
    w[nnz / 2] = std::numeric_limits<float>::quiet_NaN();
    ibmb::write_npy<float>(partial / "data.npy", w, {static_cast<std::int64_t>(nnz)});
  }
  fails("stats --data " + partial.string(), "edge weight of entry");
  // A training store must hold training outputs.
  const auto test_store = dir / "test.ibmb";
  REQUIRE(
      run_cli("build" + d + " --split test --batch-size 40 --out " + test_store.string()).code ==
      0);
  fails("train" + d + rep + " --epochs 1 --batches " + test_store.string(),
        "is not a training node");
  // A huge --aux-ratio takes every node instead of overflowing.
  r = run_cli("build" + d + " --method batchwise --parts 4 --aux-ratio 1e300 --out " +
              (dir / "all.ibmb").string() + " --json");
  INFO(r.out);
  CHECK(r.code == 0);
}
#endif
