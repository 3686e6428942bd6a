// The subcommands of the ibmb tool; each cmd_*.cpp adds its own.
#pragma once

#include <CLI/CLI.hpp>

#include "cli_util.hpp"
#include "ibmb/graph/dataset.hpp"

namespace ibmb::cli {

void add_data_commands(CLI::App& app, command_list& cmds);   // stats, generate
void add_ppr_commands(CLI::App& app, command_list& cmds);    // ppr
void add_store_commands(CLI::App& app, command_list& cmds);  // build, info, verify
void add_train_commands(CLI::App& app, command_list& cmds);  // train, infer
void add_demo_command(CLI::App& app, command_list& cmds);    // demo

/// The text table `ibmb stats` prints.
void print_dataset_stats(const ibmb::dataset& ds, double load_seconds);

}  // namespace ibmb::cli
