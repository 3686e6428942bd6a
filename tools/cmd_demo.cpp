// ibmb demo: the README's main job on the embedded default dataset.
#include <cstdio>
#include <memory>
#include <string>

#include "cli_util.hpp"
#include "commands.hpp"
#include "ibmb/core/version.hpp"
#include "ibmb/graph/io/load.hpp"

namespace ibmb::cli {

void add_demo_command(CLI::App& app, command_list& cmds) {
  auto data = std::make_shared<std::string>("synthetic");
  auto* c = app.add_subcommand("demo", "The main job on the embedded default dataset");
  c->add_option("--data", *data, "Dataset SPEC (default: the embedded synthetic graph)");
  cmds.push_back({c, [data] {
                    std::printf("ibmb %s demo on '%s'\n\n", ibmb::version_string, data->c_str());
                    stopwatch t;
                    const auto ds = ibmb::load_dataset(*data, terminal_progress());
                    print_dataset_stats(ds, t.seconds());
                    return 0;
                  }});
}

}  // namespace ibmb::cli
