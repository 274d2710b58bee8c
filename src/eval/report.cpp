// The HTML report (see report.h): reads the run folder's files, draws inline SVG, and writes one
// page through a temporary file.
#include "eval/report.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "common/error.h"
#include "common/json.h"
#include "data/image.h"
#include "data/manifest.h"
#include "train/checkpoint.h"

namespace fs = std::filesystem;

namespace halo::eval {

namespace {

constexpr int kWidth = 460, kHeight = 260, kLeft = 56, kRight = 12, kTop = 28, kBottom = 36;

std::string fmt(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.4g", v);
  return buf;
}
// A tick label with enough digits to tell ticks `step` apart (19.375 and 19.38, not 19.38 twice).
std::string fmt_tick(double v, double step) {
  const double scale = std::max(std::abs(v), std::abs(step));
  int digits = 4;
  if (step != 0 && scale > 0) digits = std::clamp(static_cast<int>(std::ceil(std::log10(scale / std::abs(step)))) + 2, 3, 12);
  char buf[40];
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
  double X(double x) const { return kLeft + (x - x0) / (x1 - x0 == 0 ? 1 : x1 - x0) * (kWidth - kLeft - kRight); }
  double Y(double y) const { return kHeight - kBottom - (y - y0) / (y1 - y0 == 0 ? 1 : y1 - y0) * (kHeight - kTop - kBottom); }
};

std::string svg_open(const std::string& full_title) {
  // Long titles (many series) are cut to the chart's width; the legend names every series.
  const std::string title = full_title.size() > 62 ? full_title.substr(0, 60) + "..." : full_title;
  return "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart\" width=\"" + std::to_string(kWidth) + "\" height=\"" +
         std::to_string(kHeight) + "\" viewBox=\"0 0 " + std::to_string(kWidth) + " " + std::to_string(kHeight) +
         "\"><text x=\"" + std::to_string(kLeft) + "\" y=\"16\" class=\"title\">" + html_escape(title) + "</text>";
}

std::string axes(const Frame& f, const std::string& x_label, bool log_y) {
  std::string s;
  s += "<line x1=\"" + px(kLeft) + "\" y1=\"" + px(kHeight - kBottom) + "\" x2=\"" + px(kWidth - kRight) + "\" y2=\"" +
       px(kHeight - kBottom) + "\" class=\"axis\"/>";
  s += "<line x1=\"" + px(kLeft) + "\" y1=\"" + px(kTop) + "\" x2=\"" + px(kLeft) + "\" y2=\"" + px(kHeight - kBottom) +
       "\" class=\"axis\"/>";
  for (int k = 0; k <= 4; ++k) {
    const double x = f.x0 + (f.x1 - f.x0) * k / 4, y = f.y0 + (f.y1 - f.y0) * k / 4;
    s += "<text x=\"" + px(f.X(x)) + "\" y=\"" + px(kHeight - kBottom + 14) + "\" class=\"tick\" text-anchor=\"middle\">" +
         fmt_tick(x, (f.x1 - f.x0) / 4) + "</text>";
    const std::string y_label =
        log_y ? fmt(std::pow(10.0, y)) : fmt_tick(y, (f.y1 - f.y0) / 4);
    s += "<text x=\"" + px(kLeft - 4) + "\" y=\"" + px(f.Y(y) + 4) + "\" class=\"tick\" text-anchor=\"end\">" +
         y_label + "</text>";
    s += "<line x1=\"" + px(kLeft) + "\" y1=\"" + px(f.Y(y)) + "\" x2=\"" + px(kWidth - kRight) + "\" y2=\"" + px(f.Y(y)) +
         "\" class=\"grid\"/>";
  }
  s += "<text x=\"" + px((kLeft + kWidth - kRight) / 2.0) + "\" y=\"" + px(kHeight - 4) +
       "\" class=\"tick\" text-anchor=\"middle\">" + html_escape(x_label) + "</text>";
  return s;
}

std::string legend(const std::vector<Series>& series) {
  std::string s;
  for (size_t i = 0; i < series.size(); ++i) {
    const double x = kWidth - kRight - 150, y = kTop + 4 + 16.0 * static_cast<double>(i);
    s += "<rect x=\"" + px(x) + "\" y=\"" + px(y) + "\" width=\"10\" height=\"10\" fill=\"" + series[i].color + "\"/>";
    s += "<text x=\"" + px(x + 14) + "\" y=\"" + px(y + 9) + "\" class=\"tick\">" + html_escape(series[i].name) + "</text>";
  }
  return s;
}

std::vector<std::vector<std::string>> read_tsv(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::vector<std::string>> rows;
  std::string line;
  std::getline(in, line);  // header
  while (std::getline(in, line)) {
    if (!line.empty()) rows.push_back(data::split_fields(line, '\t'));
  }
  return rows;
}

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Numbers of one metrics.jsonl line ({"key": number, ...}).
std::map<std::string, double> parse_flat_json(const std::string& line) {
  std::map<std::string, double> out;
  size_t i = 0;
  while ((i = line.find('"', i)) != std::string::npos) {
    const size_t end = line.find('"', i + 1);
    if (end == std::string::npos) break;
    const std::string key = line.substr(i + 1, end - i - 1);
    const size_t colon = line.find(':', end);
    if (colon == std::string::npos) break;
    char* stop = nullptr;
    const double value = std::strtod(line.c_str() + colon + 1, &stop);
    if (stop != line.c_str() + colon + 1) out[key] = value;
    i = stop && stop > line.c_str() + colon + 1 ? static_cast<size_t>(stop - line.c_str()) : colon + 1;
  }
  return out;
}

std::string base64(const std::vector<unsigned char>& bytes) {
  static const char* table = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  for (size_t i = 0; i < bytes.size(); i += 3) {
    const uint32_t n = (static_cast<uint32_t>(bytes[i]) << 16) | (i + 1 < bytes.size() ? bytes[i + 1] << 8 : 0) |
                       (i + 2 < bytes.size() ? bytes[i + 2] : 0);
    out += table[(n >> 18) & 63];
    out += table[(n >> 12) & 63];
    out += i + 1 < bytes.size() ? table[(n >> 6) & 63] : '=';
    out += i + 2 < bytes.size() ? table[n & 63] : '=';
  }
  return out;
}

std::string thumbnail(const std::string& path, int size) {
  try {
    const cv::Mat rgb = data::decode_image(path);
    cv::Mat small, bgr;
    const double scale = static_cast<double>(size) / std::max(rgb.cols, rgb.rows);
    cv::resize(rgb, small, cv::Size(std::max(1, static_cast<int>(rgb.cols * scale)), std::max(1, static_cast<int>(rgb.rows * scale))),
               0, 0, cv::INTER_AREA);
    cv::cvtColor(small, bgr, cv::COLOR_RGB2BGR);
    std::vector<unsigned char> png;
    cv::imencode(".png", bgr, png);
    return "<img class=\"thumb\" alt=\"\" src=\"data:image/png;base64," + base64(png) + "\"/>";
  } catch (const std::exception&) {
    return "<span class=\"missing\">(image unreadable)</span>";
  }
}

const char* kStyle = R"(body{font-family:sans-serif;margin:24px;max-width:1000px;color:#222}
h1{font-size:22px}h2{font-size:18px;margin-top:28px;border-bottom:1px solid #ddd}
.chart{margin:6px;border:1px solid #eee;background:#fff}.title{font-size:13px;font-weight:bold}
.tick{font-size:10px;fill:#444}.axis{stroke:#444}.grid{stroke:#eee}
pre{background:#f6f6f6;padding:8px;font-size:12px;overflow-x:auto}
table.examples td{vertical-align:top;padding:4px 10px;font-size:12px}.hit{color:#0a7d2c;font-weight:bold}
.thumb{width:64px;height:64px;object-fit:contain;border:1px solid #ddd}.missing{color:#a00})";

std::string curves_section(const std::string& run_dir) {
  const std::string path = (fs::path(run_dir) / "metrics.jsonl").string();
  std::ifstream in(path);
  if (!in.good()) return "<p>No metrics.jsonl in " + html_escape(run_dir) + ".</p>";
  std::map<std::string, Series> by_key;
  for (std::string line; std::getline(in, line);) {
    const auto values = parse_flat_json(line);
    const auto step = values.find("step");
    if (step == values.end()) continue;
    for (const auto& [key, value] : values) {
      Series& s = by_key[key];
      s.name = key;
      s.x.push_back(step->second);
      s.y.push_back(value);
    }
  }
  std::string html = "<h2>Training</h2>";
  const std::vector<std::vector<std::string>> charts = {
      {"loss", "ce_image_to_text", "ce_text_to_image"}, {"radial"}, {"lr"}, {"gamma", "logit_scale", "temperature"},
      {"mismatch_score_mean", "mismatch_score_clean", "mismatch_score_mismatched"}, {"image_mean_norm", "text_mean_norm", "image_offset_norm", "text_offset_norm"}, {"image_sq_norm", "text_sq_norm", "pair_r2"},
      {"images_per_s"}};
  const char* colors[] = {"#1f77b4", "#d62728", "#2ca02c"};
  for (const auto& keys : charts) {
    std::vector<Series> series;
    for (size_t i = 0; i < keys.size(); ++i) {
      auto it = by_key.find(keys[i]);
      if (it == by_key.end() || it->second.y.size() < 2) continue;
      Series s = it->second;
      s.color = colors[series.size() % 3];
      series.push_back(s);
    }
    if (series.empty()) continue;
    std::string title = keys[0];
    for (size_t i = 1; i < series.size(); ++i) title += ", " + series[i].name;
    html += svg_line_chart(title + " by step", series);
  }
  return html;
}

// Histograms of a scores table's clean and mismatched rows (columns named in the header).
std::string histogram_from(const std::string& path, const std::string& title) {
  std::ifstream in(path);
  std::string header;
  std::getline(in, header);
  const auto names = data::split_fields(header, '\t');
  auto col = [&](const std::string& n) {
    const auto it = std::find(names.begin(), names.end(), n);
    return it == names.end() ? -1 : static_cast<int>(it - names.begin());
  };
  const int score = col("score"), flag = col("mismatched");
  if (score < 0) return "";
  Series clean{"clean pairs", "#1f77b4", {}, {}}, bad{"mismatched pairs", "#d62728", {}, {}}, all{"all pairs", "#1f77b4", {}, {}};
  for (std::string line; std::getline(in, line);) {
    const auto f = data::split_fields(line, '\t');
    if (static_cast<int>(f.size()) <= std::max(score, flag)) continue;
    const double v = std::strtod(f[static_cast<size_t>(score)].c_str(), nullptr);
    const std::string m = flag >= 0 ? f[static_cast<size_t>(flag)] : "-";
    (m == "1" ? bad : m == "0" ? clean : all).x.push_back(v);
  }
  std::vector<Series> samples;
  if (!clean.x.empty()) samples.push_back(clean);
  if (!bad.x.empty()) samples.push_back(bad);
  if (!all.x.empty()) samples.push_back(all);
  if (samples.empty()) return "";
  // Probabilities piled up near 0 (a confident model) say more on a log scale.
  std::vector<double> values;
  for (const auto& s : samples) values.insert(values.end(), s.x.begin(), s.x.end());
  std::nth_element(values.begin(), values.begin() + static_cast<std::ptrdiff_t>(values.size() / 2), values.end());
  const double median = values[values.size() / 2];
  const bool positive = std::all_of(values.begin(), values.end(), [](double v) { return v >= 0; });
  if (!positive || median >= 0.01) return svg_histogram(title, samples);
  for (auto& s : samples) {
    for (auto& v : s.x) v = std::log10(std::max(v, 1e-12));
  }
  return svg_histogram(title + " (log10 of the score)", samples);
}

std::string examples_table(const std::string& path, int size) {
  const auto rows = read_tsv(path);
  if (rows.empty()) return "";
  std::string html = "<table class=\"examples\"><tr><th>image</th><th>its caption (rank)</th><th>top captions by the model</th></tr>";
  for (const auto& r : rows) {
    if (r.size() < 3) continue;
    html += "<tr><td>" + thumbnail(r[0], size) + "</td><td>" + html_escape(r[1]) + " (" + html_escape(r[2]) + ")</td><td><ol>";
    for (size_t k = 3; k + 1 < r.size(); k += 2) {
      const bool hit = r[k] == r[1];
      html += std::string("<li") + (hit ? " class=\"hit\"" : "") + ">" + html_escape(r[k]) + " <small>(" + fmt(std::strtod(r[k + 1].c_str(), nullptr)) + ")</small></li>";
    }
    html += "</ol></td></tr>";
  }
  return html + "</table>";
}

std::string reliability_from(const std::string& path) {
  const auto rows = read_tsv(path);
  if (rows.empty()) return "";
  std::vector<double> upper, acc, conf, count;
  for (const auto& r : rows) {
    if (r.size() < 5) continue;
    upper.push_back(std::stod(r[1]));
    count.push_back(std::stod(r[2]));
    conf.push_back(std::stod(r[3]));
    acc.push_back(std::stod(r[4]));
  }
  return svg_reliability(upper, acc, conf, count);
}

}  // namespace

std::string html_escape(const std::string& text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string svg_line_chart(const std::string& title, const std::vector<Series>& series, bool log_y) {
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
  std::string svg = svg_open(title) + axes(f, "step", log_y);
  for (const auto& s : series) {
    std::string points;
    for (size_t i = 0; i < s.x.size() && i < s.y.size(); ++i) {
      if (std::isfinite(s.y[i])) points += px(f.X(s.x[i])) + "," + px(f.Y(ty(s.y[i]))) + " ";
    }
    svg += "<polyline fill=\"none\" stroke=\"" + s.color + "\" stroke-width=\"1.5\" points=\"" + points + "\"/>";
  }
  if (series.size() > 1) svg += legend(series);
  return svg + "</svg>";
}

std::string svg_histogram(const std::string& title, const std::vector<Series>& samples, int bins) {
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
  std::vector<std::vector<double>> density(samples.size(), std::vector<double>(static_cast<size_t>(bins), 0.0));
  double top = 0;
  for (size_t k = 0; k < samples.size(); ++k) {
    for (double v : samples[k].x) {
      const int b = std::clamp(static_cast<int>((v - lo) / (hi - lo) * bins), 0, bins - 1);
      density[k][static_cast<size_t>(b)] += 1.0 / static_cast<double>(samples[k].x.size());
    }
    for (double d : density[k]) top = std::max(top, d);
  }
  Frame f{lo, hi, 0, top > 0 ? top : 1};
  std::string svg = svg_open(title) + axes(f, "score (share of pairs per bin)", false);
  const double w = (kWidth - kLeft - kRight) / static_cast<double>(bins);
  for (size_t k = 0; k < samples.size(); ++k) {
    for (int b = 0; b < bins; ++b) {
      const double d = density[k][static_cast<size_t>(b)];
      if (d <= 0) continue;
      svg += "<rect x=\"" + px(kLeft + w * b) + "\" y=\"" + px(f.Y(d)) + "\" width=\"" + px(w) + "\" height=\"" +
             px(f.Y(0) - f.Y(d)) + "\" fill=\"" + samples[k].color + "\" fill-opacity=\"0.55\"/>";
    }
  }
  std::vector<Series> named;
  for (const auto& s : samples) named.push_back({s.name + " (" + std::to_string(s.x.size()) + ")", s.color, {}, {}});
  return svg + legend(named) + "</svg>";
}

std::string svg_reliability(const std::vector<double>& upper, const std::vector<double>& accuracy,
                            const std::vector<double>& confidence, const std::vector<double>& count) {
  Frame f{0, 1, 0, 1};
  std::string svg = svg_open("reliability: accuracy per confidence bin") + axes(f, "confidence", false);
  const double width = upper.empty() ? 1.0 : 1.0 / static_cast<double>(upper.size());
  for (size_t b = 0; b < upper.size(); ++b) {
    if (count[b] <= 0) continue;
    const double x0 = upper[b] - width;
    svg += "<rect x=\"" + px(f.X(x0)) + "\" y=\"" + px(f.Y(accuracy[b])) + "\" width=\"" + px(f.X(upper[b]) - f.X(x0) - 1) +
           "\" height=\"" + px(f.Y(0) - f.Y(accuracy[b])) + "\" fill=\"#1f77b4\" fill-opacity=\"0.7\"><title>" +
           fmt(count[b]) + " images, mean confidence " + fmt(confidence[b]) + ", accuracy " + fmt(accuracy[b]) + "</title></rect>";
  }
  svg += "<line x1=\"" + px(f.X(0)) + "\" y1=\"" + px(f.Y(0)) + "\" x2=\"" + px(f.X(1)) + "\" y2=\"" + px(f.Y(1)) +
         "\" stroke=\"#d62728\" stroke-dasharray=\"4 3\"/>";
  return svg + "</svg>";
}

std::string write_report(const ReportOptions& o) {
  HALO_CHECK(fs::is_directory(o.run_dir), "run folder '", o.run_dir, "' does not exist");
  const std::string out = o.out.empty() ? (fs::path(o.run_dir) / "report.html").string() : o.out;
  std::string html = "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>halo-clip report: " +
                     html_escape(o.run_dir) + "</title><style>" + kStyle + "</style></head><body>";
  html += "<h1>halo-clip report: " + html_escape(o.run_dir) + "</h1>";
  const std::string config = read_text((fs::path(o.run_dir) / "config.yaml").string());
  html += curves_section(o.run_dir);

  std::vector<fs::path> folders;
  for (const auto& entry : fs::directory_iterator(o.run_dir)) {
    if (entry.is_directory()) folders.push_back(entry.path());
  }
  std::sort(folders.begin(), folders.end());
  for (const auto& dir : folders) {
    const bool is_eval = fs::exists(dir / "results.txt"), is_filter = fs::exists(dir / "scores.tsv");
    if (!is_eval && !is_filter) continue;
    const std::string name = dir.filename().string();
    html += "<h2>" + std::string(is_eval ? "Evaluation: " : "Filter: ") + html_escape(name) + "</h2>";
    if (is_eval) {
      html += "<pre>" + html_escape(read_text((dir / "results.txt").string())) + "</pre>";
      html += histogram_from((dir / "pair_scores.tsv").string(), "mismatch score of each pair");
      if (fs::exists(dir / "reliability.tsv")) html += reliability_from((dir / "reliability.tsv").string());
      html += "<h3>Retrieval examples (image to text)</h3>" + examples_table((dir / "examples.tsv").string(), o.thumbnail);
    } else {
      if (fs::exists(dir / "summary.txt")) html += "<pre>" + html_escape(read_text((dir / "summary.txt").string())) + "</pre>";
      html += histogram_from((dir / "scores.tsv").string(), "filter score of each pair");
    }
  }
  if (!config.empty()) html += "<h2>Configuration</h2><pre>" + html_escape(config) + "</pre>";
  html += "</body></html>\n";
  train::write_file_atomically(out, html);
  return out;
}

}  // namespace halo::eval
