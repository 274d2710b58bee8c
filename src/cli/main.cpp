// Entry point of halo-clip: picks the subcommand, runs it, and turns errors into a message on
// stderr and a non-zero exit status.
#include <iostream>
#include <string>
#include <vector>

#include <c10/util/Exception.h>

#include "cli/commands.h"
#include "common/allocator.h"
#include "common/error.h"
#include "common/threads.h"

namespace {

void print_usage(std::ostream& out) {
  out << "usage: halo-clip <command> [flags]   (halo-clip <command> --help for its flags)\n\n"
         "commands:\n";
  for (const auto& c : halo::cli::commands()) {
    out << "  " << c.name << std::string(c.name.size() < 16 ? 16 - c.name.size() : 1, ' ')
        << c.summary << "\n";
  }
}

}  // namespace

int main(int argc, char** argv) {
  halo::keep_freed_memory();  // before any tensor is allocated
  const std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
    print_usage(args.empty() ? std::cerr : std::cout);
    return args.empty() ? 2 : 0;
  }
  for (const auto& command : halo::cli::commands()) {
    if (command.name != args[0]) continue;
    try {
      // The convolution check (common/cpu_convolutions.h) runs where a model is placed on a CPU,
      // after these threads: the faulty kernels depend on them.
      halo::configure_cpu_threads();
      return command.run(std::vector<std::string>(args.begin() + 1, args.end()));
    } catch (const halo::Error& e) {
      std::cerr << "halo-clip " << command.name << ": error: " << e.message() << "\n";
    } catch (const c10::Error& e) {
      std::cerr << "halo-clip " << command.name << ": error: " << e.what_without_backtrace()
                << "\n";
    } catch (const std::exception& e) {
      std::cerr << "halo-clip " << command.name << ": error: " << e.what() << "\n";
    }
    return 1;
  }
  std::cerr << "halo-clip: unknown command '" << args[0] << "'\n\n";
  print_usage(std::cerr);
  return 2;
}
