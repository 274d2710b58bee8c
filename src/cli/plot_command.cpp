// halo-clip plot curves|histogram|bars: one standalone SVG chart from run files (src/eval/plot.h),
// written through a temporary file and a rename.
#include <iostream>

#include "cli/commands.h"
#include "common/args.h"
#include "common/atomic_file.h"
#include "common/error.h"
#include "eval/plot.h"

namespace halo::cli {

namespace {

// "A=B" -> (A, B); `flag` names the flag in the error.
std::pair<std::string, std::string> key_value(const std::string& text, const std::string& flag) {
  const size_t eq = text.find('=');
  HALO_CHECK(eq != std::string::npos && eq > 0, "--", flag, " expects KEY=VALUE, got '", text, "'");
  return {text.substr(0, eq), text.substr(eq + 1)};
}

std::map<std::string, std::string> names(const ArgParser& args, const std::string& flag) {
  std::map<std::string, std::string> out;
  for (const auto& spec : args.all(flag)) out.insert(key_value(spec, flag));
  return out;
}

void write(const std::string& out, const std::string& svg) {
  halo::write_file_atomically(out, eval::standalone_svg(svg));
  std::cout << "plot: " << out << "\n";
}

int curves(const std::vector<std::string>& argv) {
  ArgParser args("plot curves",
                 "Line chart of metrics.jsonl keys by step, one line per run and key.");
  args.required("out", "FILE.svg", "output file")
      .repeated("run", "[LABEL=]PATH",
                "a run folder or its metrics.jsonl (repeat for several runs)")
      .repeated("key", "KEY", "a metrics.jsonl key, e.g. loss, gamma, mismatch_score_clean")
      .option("title", "TEXT", "chart title", "")
      .toggle("log-y", "logarithmic y axis");
  if (!args.parse(argv)) return 0;
  eval::CurvesPlot p;
  p.title = args.str("title");
  for (const auto& r : args.all("run")) p.runs.push_back(eval::parse_labelled_file(r));
  p.keys = args.all("key");
  HALO_CHECK(!p.runs.empty(), "plot curves: give at least one --run");
  HALO_CHECK(!p.keys.empty(), "plot curves: give at least one --key");
  p.log_y = args.on("log-y");
  write(args.str("out"), eval::plot_curves(p));
  return 0;
}

int histogram(const std::vector<std::string>& argv) {
  ArgParser args(
      "plot histogram",
      "Overlaid histograms of a TSV column, one per value of a group column (e.g. clean and\n"
      "mismatched pairs of an eval's pair_scores.tsv or a filter's scores.tsv; test and OOD\n"
      "images of a classify run's scores.tsv). Each group is normalised to shares.");
  args.required("out", "FILE.svg", "output file")
      .repeated("table", "[LABEL=]FILE", "a TSV file with a header row")
      .required("value", "COLUMN", "the column to histogram")
      .option("group", "COLUMN", "split each table's rows by this column")
      .repeated("name", "VALUE=NAME", "legend name of a group value, e.g. 1=mismatched")
      .repeated("only", "VALUE", "draw only these group values, in this order")
      .option("title", "TEXT", "chart title", "")
      .option("x-label", "TEXT", "x-axis label (default: the column)")
      .option("bins", "N", "number of bins", "30")
      .toggle("log10", "histogram of log10 of the value (for probabilities piled up near 0)");
  if (!args.parse(argv)) return 0;
  eval::HistogramPlot p;
  p.title = args.str("title");
  if (args.has("x-label")) p.x_label = args.str("x-label");
  for (const auto& t : args.all("table")) p.tables.push_back(eval::parse_labelled_file(t));
  HALO_CHECK(!p.tables.empty(), "plot histogram: give at least one --table");
  p.value_column = args.str("value");
  if (args.has("group")) p.group_column = args.str("group");
  p.group_names = names(args, "name");
  p.group_order = args.all("only");
  p.bins = static_cast<int>(args.integer("bins"));
  p.log10 = args.on("log10");
  write(args.str("out"), eval::plot_histogram(p));
  return 0;
}

int bars(const std::vector<std::string>& argv) {
  ArgParser args(
      "plot bars",
      "Horizontal bars of a TSV table: one row of bars per distinct label, one bar per value\n"
      "column (or per value of --series), drawn at the mean over the rows sharing the label\n"
      "with a whisker over their range (e.g. over seeds).");
  args.required("out", "FILE.svg", "output file")
      .required("table", "FILE", "a TSV file with a header row")
      .required("label", "COLUMN", "the column that names each row of bars")
      .repeated("value", "COLUMN", "a numeric column, one bar each")
      .option("series", "COLUMN", "with one --value: one bar per value of this column")
      .repeated("where", "COLUMN=VALUE", "keep only rows where COLUMN equals VALUE")
      .repeated("name", "KEY=NAME", "legend name of a value column or series value")
      .option("from", "X", "where the bars start (e.g. 0.5 for AUROC)", "0")
      .option("title", "TEXT", "chart title", "")
      .option("x-label", "TEXT", "x-axis label", "");
  if (!args.parse(argv)) return 0;
  eval::BarsPlot p;
  p.title = args.str("title");
  p.x_label = args.str("x-label");
  p.table = args.str("table");
  p.label_column = args.str("label");
  p.value_columns = args.all("value");
  HALO_CHECK(!p.value_columns.empty(), "plot bars: give at least one --value");
  if (args.has("series")) p.series_column = args.str("series");
  for (const auto& w : args.all("where")) p.where.push_back(key_value(w, "where"));
  p.series_names = names(args, "name");
  p.x_from = args.real("from");
  write(args.str("out"), eval::plot_bars(p));
  return 0;
}

}  // namespace

int run_plot(const std::vector<std::string>& argv) {
  const std::string usage =
      "usage: halo-clip plot curves|histogram|bars [flags]   (halo-clip plot KIND --help for the "
      "flags)\n\n"
      "Writes one standalone SVG chart from the files runs leave behind:\n"
      "  curves     metrics.jsonl keys by step across runs (loss, gamma, abstention, norms)\n"
      "  histogram  a score column of a TSV split by a group column (clean / mismatched, test / "
      "OOD)\n"
      "  bars       a table's columns, mean and range over the rows sharing a label (e.g. seeds)\n";
  return run_action(argv, usage, {{"curves", curves}, {"histogram", histogram}, {"bars", bars}},
                    "plot: unknown kind");
}

}  // namespace halo::cli
