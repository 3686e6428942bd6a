// ibmb train / ibmb infer: the reference GCN pipeline (examples/gcn).
#include "commands.hpp"

namespace ibmb::cli {

void add_train_commands(CLI::App& /*app*/, command_list& /*cmds*/) {}

}  // namespace ibmb::cli
