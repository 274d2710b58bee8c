// `halo-clip report`: one self-contained HTML page (inline SVG charts and base64 thumbnails, no
// network) from a run folder: training curves from metrics.jsonl, and for every evaluation
// (eval*/ with results.txt) and filter (*/scores.tsv) folder inside it: the histograms of the
// mismatch scores of clean and mismatched pairs, the reliability diagram, retrieval examples.
#pragma once
#include <string>
#include <vector>

#include "eval/charts.h"

namespace halo::eval {

struct ReportOptions {
  std::string run_dir;
  std::string out;  // "" -> run_dir/report.html
  int thumbnail = 64;
};

// Writes the page; returns its path.
std::string write_report(const ReportOptions& options);

}  // namespace halo::eval
