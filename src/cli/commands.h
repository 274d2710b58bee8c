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

// A subcommand with actions (`halo-clip plot curves ...`): no arguments print `usage` and
// return 2, --help prints it and returns 0; otherwise the action named by the first argument
// runs on the rest, and an unknown name throws halo::Error: "<unknown> 'NAME' (a, b or c)".
struct Action {
  std::string name;
  int (*run)(const std::vector<std::string>& args);
};
int run_action(const std::vector<std::string>& args, const std::string& usage,
               const std::vector<Action>& actions, const std::string& unknown);

// Entry points, one file each in src/cli/.
int run_tokenizer(const std::vector<std::string>& args);  // tokenizer_command.cpp
int run_prepare(const std::vector<std::string>& args);    // prepare_command.cpp
int run_train(const std::vector<std::string>& args);      // train_command.cpp
int run_eval(const std::vector<std::string>& args);       // eval_command.cpp
int run_filter(const std::vector<std::string>& args);     // filter_command.cpp
int run_report(const std::vector<std::string>& args);     // report_command.cpp
int run_launch(const std::vector<std::string>& args);     // launch_command.cpp
int run_classify(const std::vector<std::string>& args);   // classify_command.cpp
int run_plot(const std::vector<std::string>& args);       // plot_command.cpp

}  // namespace halo::cli
