// halo-clip classify: trains an image classifier with cross-entropy or HALO and reports accuracy,
// calibration and out-of-distribution detection (see src/classify/classify_run.h).
#include <iostream>

#include "classify/classify_options.h"
#include "classify/classify_run.h"
#include "cli/commands.h"

namespace halo::cli {

int run_classify(const std::vector<std::string>& argv) {
  const std::optional<classify::ClassifyOptions> options = classify::parse_classify_args(argv);
  if (!options) return 0;
  const classify::ClassifyResult result = classify::run_classify(*options);
  classify::write_results(result);
  std::cout << "\n"
            << classify::format_results(result) << "\nwritten to " << options->out_dir
            << "/results.json\n";
  return 0;
}

}  // namespace halo::cli
