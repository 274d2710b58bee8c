// SVG charts drawn as text, shared by `halo-clip report` (inline in its HTML page) and
// `halo-clip plot` (standalone .svg files): line charts, overlaid histograms, a reliability
// diagram and horizontal bar charts with whiskers. No plotting library: each chart is a few
// dozen SVG elements with classes (title, tick, axis, grid) styled by kChartStyle.
#pragma once
#include <string>
#include <vector>

namespace halo::eval {

// CSS for the chart classes; the report puts it in its <style>, standalone_svg() inside the SVG.
extern const char* const kChartStyle;

// A named series of (x, y) points, or of samples in x (histograms).
struct Series {
  std::string name, color;
  std::vector<double> x, y;
};

// The k-th colour of a fixed, colour-blind-friendly palette (cycles).
std::string chart_color(size_t k);

std::string svg_line_chart(const std::string& title, const std::vector<Series>& series,
                           bool log_y = false, const std::string& x_label = "step");
// Overlaid histograms on shared bins; each sample normalised to shares so small sets stay visible.
std::string svg_histogram(const std::string& title, const std::vector<Series>& samples,
                          int bins = 30,
                          const std::string& x_label = "score (share of pairs per bin)");
// Accuracy per confidence bin against the diagonal; x: bin upper edges, y: accuracy, counts.
std::string svg_reliability(const std::vector<double>& upper, const std::vector<double>& accuracy,
                            const std::vector<double>& confidence,
                            const std::vector<double>& count);

// Horizontal bars: one row per category, one bar per series inside it, drawn from x_from to
// `mean` with a whisker from `lo` to `hi` (e.g. the range over seeds) and the mean written at
// its end. A missing bar has no entry (has[c][s] false).
struct BarChart {
  std::string title, x_label;
  std::vector<std::string> categories, series;
  std::vector<std::vector<double>> mean, lo, hi;  // [category][series]
  std::vector<std::vector<bool>> has;
  double x_from = 0;
};
std::string svg_bars(const BarChart& chart);

// A chart as a file of its own: the style moved inside the <svg> element, an XML declaration.
std::string standalone_svg(const std::string& svg);

std::string html_escape(const std::string& text);
// A number in at most four significant digits (%.4g), as the charts write values.
std::string format_number(double v);

}  // namespace halo::eval
