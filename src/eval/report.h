// `halo-clip report`: one self-contained HTML page (inline SVG charts and base64 thumbnails, no
// network) from a run folder: training curves from metrics.jsonl, and for every evaluation
// (eval*/ with results.txt) and filter (*/scores.tsv) folder inside it: the histograms of the
// mismatch scores of clean and mismatched pairs, the reliability diagram, retrieval examples.
#pragma once
#include <string>
#include <vector>

namespace halo::eval {

struct ReportOptions {
  std::string run_dir;
  std::string out;  // "" -> run_dir/report.html
  int thumbnail = 64;
};

// Writes the page; returns its path.
std::string write_report(const ReportOptions& options);

// Pieces of the page, exposed for tests. Series of (x, y) points.
struct Series {
  std::string name, color;
  std::vector<double> x, y;
};
std::string svg_line_chart(const std::string& title, const std::vector<Series>& series, bool log_y = false);
// Two overlaid histograms on shared bins.
std::string svg_histogram(const std::string& title, const std::vector<Series>& samples, int bins = 30);
// Accuracy per confidence bin against the diagonal; x: bin upper edges, y: accuracy, counts.
std::string svg_reliability(const std::vector<double>& upper, const std::vector<double>& accuracy,
                            const std::vector<double>& confidence, const std::vector<double>& count);
std::string html_escape(const std::string& text);

}  // namespace halo::eval
