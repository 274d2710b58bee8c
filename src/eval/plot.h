// `halo-clip plot`: standalone SVG charts from the files that runs leave behind, for the docs:
// curves of metrics.jsonl keys across runs, histograms of a score column split by a group
// column (clean / mismatched pairs, test / out-of-distribution images), and bars of a table's
// columns (mean and range over the rows that share a label, e.g. the seeds of a variant).
#pragma once
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "eval/charts.h"

namespace halo::eval {

// Every numeric key of a metrics.jsonl file as a series over its "step". Throws naming the file
// when it cannot be read or holds no step.
std::map<std::string, Series> read_metrics(const std::string& path);

// A labelled input file: "LABEL=PATH", or just "PATH" (label empty).
using LabelledFile = std::pair<std::string, std::string>;
LabelledFile parse_labelled_file(const std::string& spec);

struct CurvesPlot {
  std::string title;
  std::vector<LabelledFile> runs;  // metrics.jsonl files (or run folders holding one)
  std::vector<std::string> keys;   // one series per run and key
  bool log_y = false;
};
std::string plot_curves(const CurvesPlot& plot);

struct HistogramPlot {
  std::string title, x_label;
  std::vector<LabelledFile> tables;                // TSV files with a header
  std::string value_column, group_column;          // group "" -> one sample per file
  std::map<std::string, std::string> group_names;  // group value -> name in the legend
  std::vector<std::string> group_order;  // groups drawn, in order; empty -> all, as first seen
  bool log10 = false;                    // histogram of log10(value) (values below 1e-12 clamped)
  int bins = 30;
};
std::string plot_histogram(const HistogramPlot& plot);

struct BarsPlot {
  std::string title, x_label, table;  // TSV with a header
  std::string label_column;           // one row of bars per distinct label, in order of appearance
  std::vector<std::string> value_columns;  // one bar per column...
  std::string series_column;               // ...or, with one value column, one per value of this
  std::vector<std::pair<std::string, std::string>> where;  // keep rows with column == value
  std::map<std::string, std::string> series_names;         // column or series value -> legend name
  double x_from = 0;
};
std::string plot_bars(const BarsPlot& plot);

}  // namespace halo::eval
