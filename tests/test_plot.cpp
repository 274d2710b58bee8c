// halo-clip plot: bars average the rows sharing a label and show their range, histograms split
// and name groups, curves read metrics.jsonl, standalone files carry their style, and bad input
// names the file and the column.
#include <fstream>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "eval/plot.h"
#include "test_util.h"

namespace halo::test {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

std::string write_file(const std::string& dir, const std::string& name, const std::string& text) {
  const std::string path = dir + "/" + name;
  std::ofstream(path) << text;
  return path;
}

// Numbers written next to the bars and legend entries are text elements: find ">TEXT<".
std::string text_element(const std::string& text) {
  return ">" + text + "<";
}

TEST(PlotBars, MeanOverRowsSharingALabelWithTheirRange) {
  const std::string dir = make_temp_dir("plot_bars");
  const std::string table = write_file(dir, "t.tsv",
                                       "noise\tvariant\tseed\tr1\tauroc\n"
                                       "20\thalo\t0\t0.080\t0.60\n"
                                       "20\thalo\t1\t0.090\t0.64\n"
                                       "20\tinfonce\t0\t0.070\t-\n"
                                       "40\thalo\t0\t0.500\t0.90\n");
  eval::BarsPlot p;
  p.table = table;
  p.label_column = "variant";
  p.value_columns = {"r1", "auroc"};
  p.where = {{"noise", "20"}};
  p.series_names = {{"auroc", "mismatch AUROC"}};
  const std::string svg = eval::plot_bars(p);
  EXPECT_THAT(svg, HasSubstr(text_element("halo")));
  EXPECT_THAT(svg, HasSubstr(text_element("infonce")));
  EXPECT_THAT(svg, HasSubstr(text_element("0.085"))) << "mean R@1 of halo over its two seeds";
  EXPECT_THAT(svg, HasSubstr(text_element("0.62"))) << "mean AUROC of halo";
  EXPECT_THAT(svg, HasSubstr(text_element("0.07"))) << "infonce R@1";
  EXPECT_THAT(svg, Not(HasSubstr(text_element("0.5")))) << "the 40% row is filtered out";
  EXPECT_THAT(svg, HasSubstr(text_element("mismatch AUROC"))) << "legend name";
  // Whiskers only where the rows differ: halo's two values per column, none for infonce.
  size_t whiskers = 0;
  for (size_t at = 0; (at = svg.find("stroke=\"#222\"", at)) != std::string::npos; ++at) ++whiskers;
  EXPECT_EQ(whiskers, 2u);
}

TEST(PlotBars, SeriesFromAColumn) {
  const std::string dir = make_temp_dir("plot_bars_series");
  const std::string table = write_file(
      dir, "t.tsv",
      "swapped\tmodel\tr1\n0\tall\t0.11\n0\tkept\t0.09\n20\tall\t0.08\n20\tkept\t0.084\n");
  eval::BarsPlot p;
  p.table = table;
  p.label_column = "swapped";
  p.value_columns = {"r1"};
  p.series_column = "model";
  const std::string svg = eval::plot_bars(p);
  EXPECT_THAT(svg, HasSubstr(text_element("all")));
  EXPECT_THAT(svg, HasSubstr(text_element("kept")));
  EXPECT_THAT(svg, HasSubstr(text_element("0.084")));
  EXPECT_THAT(svg, HasSubstr(text_element("0.11")));
}

TEST(PlotBars, LargeValuesAreWrittenAsWholeNumbers) {
  const std::string dir = make_temp_dir("plot_bars_large");
  eval::BarsPlot p;
  p.table = write_file(dir, "t.tsv", "side\timages_per_s\nhalo-clip\t7990.4\npytorch\t6963\n");
  p.label_column = "side";
  p.value_columns = {"images_per_s"};
  const std::string svg = eval::plot_bars(p);
  EXPECT_THAT(svg, HasSubstr(text_element("7990")));
  EXPECT_THAT(svg, HasSubstr(text_element("6963")));
}

TEST(PlotBars, ErrorsNameTheFileAndTheColumn) {
  const std::string dir = make_temp_dir("plot_bars_errors");
  const std::string table = write_file(dir, "t.tsv", "variant\tr1\nhalo\t0.1\n");
  eval::BarsPlot p;
  p.table = table;
  p.label_column = "variant";
  p.value_columns = {"r5"};
  EXPECT_THAT(error_message([&] { eval::plot_bars(p); }),
              HasSubstr("'" + table + "' has no column 'r5'"));
  p.value_columns = {"r1"};
  p.where = {{"variant", "siglip"}};
  EXPECT_THAT(error_message([&] { eval::plot_bars(p); }), HasSubstr("no row"));
  p.table = dir + "/missing.tsv";
  EXPECT_THAT(error_message([&] { eval::plot_bars(p); }),
              HasSubstr("cannot read '" + dir + "/missing.tsv'"));
}

TEST(PlotHistogram, GroupsAreSplitNamedAndCounted) {
  const std::string dir = make_temp_dir("plot_hist");
  const std::string table = write_file(
      dir, "scores.tsv", "line\tmismatched\tscore\n2\t0\t0.1\n3\t0\t0.2\n4\t1\t0.9\n5\t0\t-\n");
  eval::HistogramPlot p;
  p.tables = {{"", table}};
  p.value_column = "score";
  p.group_column = "mismatched";
  p.group_names = {{"0", "clean"}, {"1", "mismatched"}};
  const std::string svg = eval::plot_histogram(p);
  EXPECT_THAT(svg, HasSubstr(text_element("clean (2)"))) << "the '-' score is skipped";
  EXPECT_THAT(svg, HasSubstr(text_element("mismatched (1)")));
  p.group_order = {"1"};
  EXPECT_THAT(eval::plot_histogram(p), Not(HasSubstr("clean (")));
  p.value_column = "cosine";
  EXPECT_THAT(error_message([&] { eval::plot_histogram(p); }), HasSubstr("has no column 'cosine'"));
}

TEST(PlotCurves, ReadsMetricsAndNamesSeriesByRun) {
  const std::string dir = make_temp_dir("plot_curves");
  write_file(dir, "metrics.jsonl",
             "{\"step\": 10, \"loss\": 5.5, \"gamma\": 19.4}\n{\"step\": 20, \"loss\": 4.5, "
             "\"gamma\": 19.3}\n");
  const auto metrics = eval::read_metrics(dir + "/metrics.jsonl");
  ASSERT_EQ(metrics.count("loss"), 1u);
  EXPECT_EQ(metrics.at("loss").x, (std::vector<double>{10, 20}));
  EXPECT_EQ(metrics.at("loss").y, (std::vector<double>{5.5, 4.5}));
  eval::CurvesPlot p;
  p.runs = {eval::parse_labelled_file("centred=" + dir),
            eval::parse_labelled_file(dir + "/metrics.jsonl")};
  p.keys = {"gamma"};
  const std::string svg = eval::plot_curves(p);
  EXPECT_THAT(svg, HasSubstr(text_element("centred")));
  size_t lines = 0;
  for (size_t at = 0; (at = svg.find("<polyline", at)) != std::string::npos; ++at) ++lines;
  EXPECT_EQ(lines, 2u);
  p.keys = {"temperature"};
  EXPECT_THAT(error_message([&] { eval::plot_curves(p); }), HasSubstr("has no key 'temperature'"));
}

TEST(PlotFile, StandaloneSvgCarriesItsStyle) {
  const std::string svg =
      eval::standalone_svg(eval::svg_line_chart("t", {{"a", "#000", {0, 1}, {0, 1}}}));
  EXPECT_EQ(svg.rfind("<?xml", 0), 0u);
  EXPECT_THAT(svg, HasSubstr("<svg xmlns=\"http://www.w3.org/2000/svg\""));
  EXPECT_LT(svg.find("<svg"), svg.find("<style>"));
  EXPECT_THAT(svg, HasSubstr(".tick{"));
}

}  // namespace
}  // namespace halo::test
