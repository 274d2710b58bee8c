// The SVG charts (see charts.h).
#include "eval/charts.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace halo::eval {

namespace {

constexpr int kWidth = 460, kHeight = 260, kLeft = 56, kRight = 24, kTop = 28, kBottom = 36;

// A tick label with enough digits to tell ticks `step` apart (19.375 and 19.38, not 19.38 twice).
std::string fmt_tick(double v, double step) {
  const double scale = std::max(std::abs(v), std::abs(step));
  int digits = 4;
  if (step != 0 && scale > 0)
    digits = std::clamp(static_cast<int>(std::ceil(std::log10(scale / std::abs(step)))) + 2, 3, 12);
  char buf[40];
  if (std::abs(v) >= 1000 && std::abs(step) >= 1)
    std::snprintf(buf, sizeof buf, "%.0f", v);  // 15000, not 1.5e+04
  else
    std::snprintf(buf, sizeof buf, "%.*g", digits, v);
  return buf;
}
std::string px(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", v);
  return buf;
}

struct Frame {  // maps data coordinates into the plot area
  double x0, x1, y0, y1;
  double X(double x) const {
    return kLeft + (x - x0) / (x1 - x0 == 0 ? 1 : x1 - x0) * (kWidth - kLeft - kRight);
  }
  double Y(double y) const {
    return kHeight - kBottom - (y - y0) / (y1 - y0 == 0 ? 1 : y1 - y0) * (kHeight - kTop - kBottom);
  }
};

// The opening tag and the title; `below` pixels under the plot hold the legend.
std::string svg_open(const std::string& full_title, int below = 0) {
  // Long titles are cut to the chart's width; the legend names every series.
  const std::string title = full_title.size() > 60 ? full_title.substr(0, 57) + "..." : full_title;
  const std::string height = std::to_string(kHeight + below);
  return "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart\" width=\"" +
         std::to_string(kWidth) + "\" height=\"" + height + "\" viewBox=\"0 0 " +
         std::to_string(kWidth) + " " + height + "\"><text x=\"8\" y=\"16\" class=\"title\">" +
         html_escape(title) + "</text>";
}

std::string axes(const Frame& f, const std::string& x_label, bool log_y) {
  std::string s;
  s += "<line x1=\"" + px(kLeft) + "\" y1=\"" + px(kHeight - kBottom) + "\" x2=\"" +
       px(kWidth - kRight) + "\" y2=\"" + px(kHeight - kBottom) + "\" class=\"axis\"/>";
  s += "<line x1=\"" + px(kLeft) + "\" y1=\"" + px(kTop) + "\" x2=\"" + px(kLeft) + "\" y2=\"" +
       px(kHeight - kBottom) + "\" class=\"axis\"/>";
  for (int k = 0; k <= 4; ++k) {
    const double x = f.x0 + (f.x1 - f.x0) * k / 4, y = f.y0 + (f.y1 - f.y0) * k / 4;
    s += "<text x=\"" + px(f.X(x)) + "\" y=\"" + px(kHeight - kBottom + 14) +
         "\" class=\"tick\" text-anchor=\"middle\">" + fmt_tick(x, (f.x1 - f.x0) / 4) + "</text>";
    const std::string y_label =
        log_y ? format_number(std::pow(10.0, y)) : fmt_tick(y, (f.y1 - f.y0) / 4);
    s += "<text x=\"" + px(kLeft - 4) + "\" y=\"" + px(f.Y(y) + 4) +
         "\" class=\"tick\" text-anchor=\"end\">" + y_label + "</text>";
    s += "<line x1=\"" + px(kLeft) + "\" y1=\"" + px(f.Y(y)) + "\" x2=\"" + px(kWidth - kRight) +
         "\" y2=\"" + px(f.Y(y)) + "\" class=\"grid\"/>";
  }
  s += "<text x=\"" + px((kLeft + kWidth - kRight) / 2.0) + "\" y=\"" + px(kHeight - 4) +
       "\" class=\"tick\" text-anchor=\"middle\">" + html_escape(x_label) + "</text>";
  return s;
}

// The legend sits under the x-axis label, one entry per line, so it never hides the data.
constexpr int kLegendLine = 15;
int legend_height(size_t entries) {
  return entries == 0 ? 0 : static_cast<int>(entries) * kLegendLine + 8;
}

std::string legend(const std::vector<Series>& series) {
  std::string s;
  for (size_t i = 0; i < series.size(); ++i) {
    const double x = kLeft, y = kHeight + 2 + kLegendLine * static_cast<double>(i);
    s += "<rect x=\"" + px(x) + "\" y=\"" + px(y) + "\" width=\"10\" height=\"10\" fill=\"" +
         series[i].color + "\"/>";
    s += "<text x=\"" + px(x + 14) + "\" y=\"" + px(y + 9) + "\" class=\"tick\">" +
         html_escape(series[i].name) + "</text>";
  }
  return s;
}

}  // namespace

std::string html_escape(const std::string& text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string svg_line_chart(const std::string& title, const std::vector<Series>& series, bool log_y,
                           const std::string& x_label) {
  Frame f{INFINITY, -INFINITY, INFINITY, -INFINITY};
  auto ty = [&](double y) { return log_y ? std::log10(std::max(y, 1e-12)) : y; };
  for (const auto& s : series) {
    for (size_t i = 0; i < s.x.size() && i < s.y.size(); ++i) {
      if (!std::isfinite(s.y[i])) continue;
      f.x0 = std::min(f.x0, s.x[i]);
      f.x1 = std::max(f.x1, s.x[i]);
      f.y0 = std::min(f.y0, ty(s.y[i]));
      f.y1 = std::max(f.y1, ty(s.y[i]));
    }
  }
  if (!std::isfinite(f.x0)) f = {0, 1, 0, 1};
  if (f.y1 - f.y0 < 1e-12) f.y1 = f.y0 + 1;
  const size_t entries = series.size() > 1 ? series.size() : 0;
  std::string svg = svg_open(title, legend_height(entries)) + axes(f, x_label, log_y);
  for (const auto& s : series) {
    std::string points;
    for (size_t i = 0; i < s.x.size() && i < s.y.size(); ++i) {
      if (std::isfinite(s.y[i])) points += px(f.X(s.x[i])) + "," + px(f.Y(ty(s.y[i]))) + " ";
    }
    svg += "<polyline fill=\"none\" stroke=\"" + s.color + "\" stroke-width=\"1.5\" points=\"" +
           points + "\"/>";
  }
  if (series.size() > 1) svg += legend(series);
  return svg + "</svg>";
}

std::string svg_histogram(const std::string& title, const std::vector<Series>& samples, int bins,
                          const std::string& x_label) {
  double lo = INFINITY, hi = -INFINITY;
  for (const auto& s : samples) {
    for (double v : s.x) {
      lo = std::min(lo, v);
      hi = std::max(hi, v);
    }
  }
  if (!std::isfinite(lo)) lo = 0, hi = 1;
  if (hi - lo < 1e-12) hi = lo + 1e-3;
  // Each sample is normalised to a density so that a small mismatched set stays visible.
  std::vector<std::vector<double>> density(samples.size(),
                                           std::vector<double>(static_cast<size_t>(bins), 0.0));
  double top = 0;
  for (size_t k = 0; k < samples.size(); ++k) {
    for (double v : samples[k].x) {
      const int b = std::clamp(static_cast<int>((v - lo) / (hi - lo) * bins), 0, bins - 1);
      density[k][static_cast<size_t>(b)] += 1.0 / static_cast<double>(samples[k].x.size());
    }
    for (double d : density[k]) top = std::max(top, d);
  }
  Frame f{lo, hi, 0, top > 0 ? top : 1};
  std::string svg = svg_open(title, legend_height(samples.size())) + axes(f, x_label, false);
  const double w = (kWidth - kLeft - kRight) / static_cast<double>(bins);
  for (size_t k = 0; k < samples.size(); ++k) {
    for (int b = 0; b < bins; ++b) {
      const double d = density[k][static_cast<size_t>(b)];
      if (d <= 0) continue;
      svg += "<rect x=\"" + px(kLeft + w * b) + "\" y=\"" + px(f.Y(d)) + "\" width=\"" + px(w) +
             "\" height=\"" + px(f.Y(0) - f.Y(d)) + "\" fill=\"" + samples[k].color +
             "\" fill-opacity=\"0.55\"/>";
    }
  }
  std::vector<Series> named;
  for (const auto& s : samples)
    named.push_back({s.name + " (" + std::to_string(s.x.size()) + ")", s.color, {}, {}});
  return svg + legend(named) + "</svg>";
}

std::string svg_reliability(const std::vector<double>& upper, const std::vector<double>& accuracy,
                            const std::vector<double>& confidence,
                            const std::vector<double>& count) {
  Frame f{0, 1, 0, 1};
  std::string svg =
      svg_open("reliability: accuracy per confidence bin") + axes(f, "confidence", false);
  const double width = upper.empty() ? 1.0 : 1.0 / static_cast<double>(upper.size());
  for (size_t b = 0; b < upper.size(); ++b) {
    if (count[b] <= 0) continue;
    const double x0 = upper[b] - width;
    svg += "<rect x=\"" + px(f.X(x0)) + "\" y=\"" + px(f.Y(accuracy[b])) + "\" width=\"" +
           px(f.X(upper[b]) - f.X(x0) - 1) + "\" height=\"" + px(f.Y(0) - f.Y(accuracy[b])) +
           "\" fill=\"#1f77b4\" fill-opacity=\"0.7\"><title>" + format_number(count[b]) +
           " images, mean confidence " + format_number(confidence[b]) + ", accuracy " +
           format_number(accuracy[b]) + "</title></rect>";
  }
  svg += "<line x1=\"" + px(f.X(0)) + "\" y1=\"" + px(f.Y(0)) + "\" x2=\"" + px(f.X(1)) +
         "\" y2=\"" + px(f.Y(1)) + "\" stroke=\"#d62728\" stroke-dasharray=\"4 3\"/>";
  return svg + "</svg>";
}

std::string format_number(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.4g", v);
  return buf;
}

const char* const kChartStyle =
    ".chart{margin:6px;border:1px solid "
    "#eee;background:#fff;vertical-align:top}.title{font-size:13px;font-weight:bold}"
    ".tick{font-size:10px;fill:#444}.axis{stroke:#444}.grid{stroke:#eee}";

std::string chart_color(size_t k) {
  static const char* palette[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd",
                                  "#8c564b", "#e377c2", "#17becf", "#7f7f7f", "#bcbd22"};
  return palette[k % (sizeof palette / sizeof palette[0])];
}

namespace {
// A bar's value: three significant digits, whole numbers from 100 on (7990, not 7.99e+03).
std::string fmt_bar_value(double v) {
  char buf[32];
  if (std::abs(v) >= 100)
    std::snprintf(buf, sizeof buf, "%.0f", v);
  else
    std::snprintf(buf, sizeof buf, "%.3g", v);
  return buf;
}
}  // namespace

std::string svg_bars(const BarChart& c) {
  // Layout: category labels in a left column, bars to the right, ticks below, legend on top.
  const double label_w = 210, plot_w = 330, right = 46, bar_h = 11, gap = 8, top = 28;
  const size_t n_series = std::max<size_t>(c.series.size(), 1);
  const double legend_h =
      c.series.size() > 1 ? 16.0 * static_cast<double>((c.series.size() + 2) / 3) : 0;
  const double row_h = bar_h * static_cast<double>(n_series) + gap;
  const double plot_top = top + legend_h, plot_h = row_h * static_cast<double>(c.categories.size());
  const double width = label_w + plot_w + right, height = plot_top + plot_h + 36;
  double x1 = c.x_from;
  for (size_t i = 0; i < c.categories.size(); ++i) {
    for (size_t s = 0; s < c.series.size(); ++s) {
      if (c.has[i][s]) x1 = std::max({x1, c.mean[i][s], c.hi[i][s]});
    }
  }
  if (x1 - c.x_from < 1e-12) x1 = c.x_from + 1;
  // Round ticks: a step of 1, 2, 2.5 or 5 times a power of ten, about four of them.
  const double raw = (x1 - c.x_from) / 4, magnitude = std::pow(10.0, std::floor(std::log10(raw)));
  double step = 10 * magnitude;
  for (const double m : {1.0, 2.0, 2.5, 5.0}) {
    if (m * magnitude >= raw) {
      step = m * magnitude;
      break;
    }
  }
  const int ticks = static_cast<int>(std::ceil((x1 - c.x_from) / step - 1e-9));
  x1 = c.x_from + step * ticks;
  auto X = [&](double v) {
    return label_w + (std::clamp(v, c.x_from, x1) - c.x_from) / (x1 - c.x_from) * plot_w;
  };

  std::string svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart\" width=\"" +
                    px(width) + "\" height=\"" + px(height) + "\" viewBox=\"0 0 " + px(width) +
                    " " + px(height) + "\"><text x=\"8\" y=\"16\" class=\"title\">" +
                    html_escape(c.title) + "</text>";
  for (size_t s = 0; s < c.series.size() && c.series.size() > 1; ++s) {
    const double x = 8 + 200.0 * static_cast<double>(s % 3),
                 y = top + 16.0 * static_cast<double>(s / 3) - 10;
    svg += "<rect x=\"" + px(x) + "\" y=\"" + px(y) + "\" width=\"10\" height=\"10\" fill=\"" +
           chart_color(s) + "\"/>";
    svg += "<text x=\"" + px(x + 14) + "\" y=\"" + px(y + 9) + "\" class=\"tick\">" +
           html_escape(c.series[s]) + "</text>";
  }
  for (int k = 0; k <= ticks; ++k) {
    const double v = c.x_from + step * k;
    svg += "<line x1=\"" + px(X(v)) + "\" y1=\"" + px(plot_top) + "\" x2=\"" + px(X(v)) +
           "\" y2=\"" + px(plot_top + plot_h) + "\" class=\"grid\"/><text x=\"" + px(X(v)) +
           "\" y=\"" + px(plot_top + plot_h + 13) + "\" class=\"tick\" text-anchor=\"middle\">" +
           fmt_tick(v, step) + "</text>";
  }
  svg += "<line x1=\"" + px(label_w) + "\" y1=\"" + px(plot_top) + "\" x2=\"" + px(label_w) +
         "\" y2=\"" + px(plot_top + plot_h) + "\" class=\"axis\"/>";
  svg += "<text x=\"" + px(label_w + plot_w / 2) + "\" y=\"" + px(height - 6) +
         "\" class=\"tick\" text-anchor=\"middle\">" + html_escape(c.x_label) + "</text>";
  for (size_t i = 0; i < c.categories.size(); ++i) {
    const double y0 = plot_top + row_h * static_cast<double>(i) + gap / 2;
    svg += "<text x=\"" + px(label_w - 6) + "\" y=\"" +
           px(y0 + bar_h * static_cast<double>(n_series) / 2 + 4) +
           "\" class=\"tick\" text-anchor=\"end\">" + html_escape(c.categories[i]) + "</text>";
    for (size_t s = 0; s < c.series.size(); ++s) {
      if (!c.has[i][s]) continue;
      const double y = y0 + bar_h * static_cast<double>(s), mid = y + (bar_h - 2) / 2;
      svg += "<rect x=\"" + px(label_w) + "\" y=\"" + px(y) + "\" width=\"" +
             px(X(c.mean[i][s]) - label_w) + "\" height=\"" + px(bar_h - 2) + "\" fill=\"" +
             chart_color(s) + "\" fill-opacity=\"0.8\"/>";
      if (c.hi[i][s] > c.lo[i][s]) {
        svg += "<line x1=\"" + px(X(c.lo[i][s])) + "\" y1=\"" + px(mid) + "\" x2=\"" +
               px(X(c.hi[i][s])) + "\" y2=\"" + px(mid) + "\" stroke=\"#222\"/>";
      }
      svg += "<text x=\"" + px(std::max(X(c.mean[i][s]), X(c.hi[i][s])) + 3) + "\" y=\"" +
             px(y + bar_h - 3) + "\" class=\"tick\">" + fmt_bar_value(c.mean[i][s]) + "</text>";
    }
  }
  return svg + "</svg>";
}

std::string standalone_svg(const std::string& svg) {
  const size_t open_end = svg.find('>');
  if (open_end == std::string::npos) return svg;
  return "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n" + svg.substr(0, open_end + 1) + "<style>" +
         kChartStyle + "</style><rect width=\"100%\" height=\"100%\" fill=\"#fff\"/>" +
         svg.substr(open_end + 1) + "\n";
}

}  // namespace halo::eval
