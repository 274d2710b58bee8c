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
