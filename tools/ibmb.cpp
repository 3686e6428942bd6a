// The ibmb command-line tool. Every error is one line on stderr and exit code 2.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <exception>
#include <iostream>
#include <new>
#include <string>

#include "cli_util.hpp"
#include "commands.hpp"
#include "ibmb/core/parallel.hpp"
#include "ibmb/core/version.hpp"

namespace {

constexpr int exit_error = 2;

std::string one_line(std::string msg) {
  for (auto& ch : msg)
    if (ch == '\n' || ch == '\r') ch = ' ';
  return msg;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"ibmb: influence-based mini-batching for graph neural networks"};
  app.set_version_flag("--version", ibmb::version_string);
  app.require_subcommand(1);
  app.fallthrough();  // --threads may also follow the subcommand
  int threads = 0;
  app.add_option("--threads", threads, "OpenMP threads (default: all cores)")
      ->check(CLI::Range(0, ibmb::cli::max_cli_threads));

  ibmb::cli::command_list cmds;
  ibmb::cli::add_data_commands(app, cmds);
  ibmb::cli::add_ppr_commands(app, cmds);
  ibmb::cli::add_store_commands(app, cmds);
  ibmb::cli::add_train_commands(app, cmds);
  ibmb::cli::add_demo_command(app, cmds);
  ibmb::cli::require_finite_floats(app);

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp&) {
    std::cout << app.help();
    return 0;
  } catch (const CLI::CallForAllHelp&) {
    std::cout << app.help("", CLI::AppFormatMode::All);
    return 0;
  } catch (const CLI::CallForVersion&) {
    std::cout << ibmb::version_string << "\n";
    return 0;
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "ibmb: error: %s (see ibmb --help)\n", one_line(e.what()).c_str());
    return exit_error;
  }

  try {
    ibmb::scoped_threads th(threads);
    for (const auto& c : cmds)
      if (c.app->parsed()) return c.run();
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "ibmb: error: out of memory\n");
    return exit_error;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "ibmb: error: %s\n", one_line(e.what()).c_str());
    return exit_error;
  }
  return 0;
}
