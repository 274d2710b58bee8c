// halo-clip report: writes the HTML report of a run folder (src/eval/report.h).
#include <iostream>

#include "cli/commands.h"
#include "common/args.h"
#include "eval/report.h"

namespace halo::cli {

int run_report(const std::vector<std::string>& argv) {
  ArgParser args(
      "report",
      "Write one self-contained HTML page (no network needed) for a run folder: training\n"
      "curves, and for each evaluation or filter folder inside it the histograms of the\n"
      "scores of clean and mismatched pairs, the reliability diagram and retrieval\n"
      "examples with thumbnails.");
  args.required("run", "RUN_DIR", "the run folder (train.run_dir)")
      .option("out", "FILE", "output file (default: RUN_DIR/report.html)");
  if (!args.parse(argv)) return 0;
  eval::ReportOptions o;
  o.run_dir = args.str("run");
  if (args.has("out")) o.out = args.str("out");
  std::cout << "report: " << eval::write_report(o) << "\n";
  return 0;
}

}  // namespace halo::cli
