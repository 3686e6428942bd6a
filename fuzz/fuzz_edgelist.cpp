// libFuzzer target: the bytes are parsed as an edge list (plain, or gzip when they start with
// 1f 8b) through the in-memory entry point; any failure must be an ibmb::error, never a crash,
// a hang or another exception. The first byte picks the options; a few inputs also go through
// the MUSAE JSON parser and the CSV record reader, which share the same in-memory model.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "ibmb/core/error.hpp"
#include "ibmb/graph/io/edgelist.hpp"
#include "ibmb/graph/io/musae.hpp"
#include "ibmb/graph/io/text.hpp"

namespace {

template <class I>
void parse_as_edge_list(std::string_view text, std::uint8_t flags) {
  ibmb::edge_list_options opt;
  // A bounded node count keeps a line such as "0 9000000000" from asking for a huge graph;
  // ids beyond it exercise the range checks (error, or dropped).
  opt.num_nodes = 1 + (flags >> 5) * 97;
  opt.weighted = (flags & 1) != 0;
  opt.allow_header = (flags & 2) != 0;
  opt.drop_out_of_range = (flags & 4) != 0;
  opt.build.make_undirected = (flags & 8) != 0;
  opt.build.duplicates =
      (flags & 16) != 0 ? ibmb::duplicate_policy::sum : ibmb::duplicate_policy::keep;
  try {
    const auto g = ibmb::parse_edge_list<I, std::int64_t>(text, "fuzz.txt", opt);
    g.validate(true);
  } catch (const ibmb::error&) {
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::uint8_t flags = data[0];
  const std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
  parse_as_edge_list<std::int32_t>(text, flags);
  parse_as_edge_list<std::int64_t>(text, flags);
  if ((flags & 0x1f) == 0x1f) {
    try {
      (void)ibmb::detail::parse_musae_json(text, "fuzz.json");
    } catch (const ibmb::error&) {
    }
    try {
      ibmb::detail::csv_reader csv(text, "fuzz.csv");
      std::vector<std::string> fields;
      while (csv.next(fields)) {
      }
    } catch (const ibmb::error&) {
    }
  }
  return 0;
}
