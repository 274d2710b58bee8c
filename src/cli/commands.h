// The subcommands of the halo-clip executable: a name, a one-line summary and an entry point
// that receives the arguments after the subcommand's name and returns the exit status.
#pragma once
#include <string>
#include <vector>

namespace halo::cli {

struct Command {
  std::string name, summary;
  int (*run)(const std::vector<std::string>& args);
};

const std::vector<Command>& commands();

}  // namespace halo::cli
