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

#include "common/atomic_file.h"
#include "common/error.h"
#include "common/json.h"
#include "data/image.h"
#include "data/manifest.h"
#include "eval/charts.h"
#include "eval/plot.h"

namespace fs = std::filesystem;

namespace halo::eval {

namespace {

// The rows of a TSV file; its header into `header` when given.
std::vector<std::vector<std::string>> read_tsv(const std::string& path,
                                               std::vector<std::string>* header = nullptr) {
  std::ifstream in(path);
  std::vector<std::vector<std::string>> rows;
  std::string line;
  std::getline(in, line);
  if (header) *header = data::split_fields(line, '\t');
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

std::string base64(const std::vector<unsigned char>& bytes) {
  static const char* table = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  for (size_t i = 0; i < bytes.size(); i += 3) {
    const uint32_t n = (static_cast<uint32_t>(bytes[i]) << 16) |
                       (i + 1 < bytes.size() ? bytes[i + 1] << 8 : 0) |
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
    cv::resize(rgb, small,
               cv::Size(std::max(1, static_cast<int>(rgb.cols * scale)),
                        std::max(1, static_cast<int>(rgb.rows * scale))),
               0, 0, cv::INTER_AREA);
    cv::cvtColor(small, bgr, cv::COLOR_RGB2BGR);
    std::vector<unsigned char> png;
    cv::imencode(".png", bgr, png);
    return "<img class=\"thumb\" alt=\"\" src=\"data:image/png;base64," + base64(png) + "\"/>";
  } catch (const std::exception&) {
    return "<span class=\"missing\">(image unreadable)</span>";
  }
}

const char* kPageStyle = R"(body{font-family:sans-serif;margin:24px;max-width:1000px;color:#222}
h1{font-size:22px}h2{font-size:18px;margin-top:28px;border-bottom:1px solid #ddd}
pre{background:#f6f6f6;padding:8px;font-size:12px;overflow-x:auto}
table.examples td{vertical-align:top;padding:4px 10px;font-size:12px}.hit{color:#0a7d2c;font-weight:bold}
.thumb{width:64px;height:64px;object-fit:contain;border:1px solid #ddd}.missing{color:#a00})";

std::string curves_section(const std::string& run_dir) {
  const std::string path = (fs::path(run_dir) / "metrics.jsonl").string();
  if (!fs::exists(path)) return "<p>No metrics.jsonl in " + html_escape(run_dir) + ".</p>";
  std::map<std::string, Series> by_key;
  try {
    by_key = read_metrics(path);
  } catch (const halo::Error& e) {
    return "<p>" + html_escape(e.message()) + "</p>";
  }
  std::string html = "<h2>Training</h2>";
  const std::vector<std::vector<std::string>> charts = {
      {"loss", "ce_image_to_text", "ce_text_to_image"},
      {"radial"},
      {"lr"},
      {"gamma", "logit_scale", "temperature"},
      {"mismatch_score_mean", "mismatch_score_clean", "mismatch_score_mismatched"},
      {"image_mean_norm", "text_mean_norm", "image_offset_norm", "text_offset_norm"},
      {"image_sq_norm", "text_sq_norm", "pair_r2"},
      {"images_per_s"},
      {"val_i2t_r1", "val_t2i_r1", "val_i2t_r5", "val_t2i_r5"},
      {"val_mismatch_auroc"}};
  for (const auto& keys : charts) {
    std::vector<Series> series;
    for (size_t i = 0; i < keys.size(); ++i) {
      auto it = by_key.find(keys[i]);
      if (it == by_key.end() || it->second.y.size() < 2) continue;
      Series s = it->second;
      s.color = chart_color(series.size());
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
  Series clean{"clean pairs", "#1f77b4", {}, {}}, bad{"mismatched pairs", "#d62728", {}, {}},
      all{"all pairs", "#1f77b4", {}, {}};
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
  std::nth_element(values.begin(), values.begin() + static_cast<std::ptrdiff_t>(values.size() / 2),
                   values.end());
  const double median = values[values.size() / 2];
  const bool positive = std::all_of(values.begin(), values.end(), [](double v) { return v >= 0; });
  if (!positive || median >= 0.01) return svg_histogram(title, samples);
  for (auto& s : samples) {
    for (auto& v : s.x) v = std::log10(std::max(v, 1e-12));
  }
  return svg_histogram(title + " (log10 of the score)", samples);
}

// eval --ood's per-image file: one histogram per score, one series per set.
std::string ood_histograms_from(const std::string& path) {
  std::vector<std::string> names;
  const auto rows = read_tsv(path, &names);
  std::string html = "<h3>Zero-shot OOD scores per image</h3>";
  const std::vector<std::pair<std::string, std::string>> shown{
      {"abstain_score", "HALO abstain log-odds (higher: rejected)"},
      {"msp_score", "-log of the maximum softmax probability"},
      {"mcm_score", "MCM: -log of the maximum softmax of cosine (temperature 1)"},
      {"mcm_clip_score", "MCM at CLIP's temperature: -log of the maximum softmax of cosine / 0.01"},
      {"energy_score", "energy, -logsumexp of the class logits"}};
  for (const auto& [column, title] : shown) {
    const auto it = std::find(names.begin(), names.end(), column);
    if (it == names.end()) continue;
    const auto c = static_cast<size_t>(it - names.begin());
    std::vector<Series> sets;
    for (const auto& r : rows) {
      if (r.size() <= c) continue;
      auto s =
          std::find_if(sets.begin(), sets.end(), [&](const Series& x) { return x.name == r[0]; });
      if (s == sets.end()) {
        sets.push_back({r[0], chart_color(sets.size()), {}, {}});
        s = sets.end() - 1;
      }
      s->x.push_back(std::strtod(r[c].c_str(), nullptr));
    }
    if (!sets.empty())
      html += svg_histogram(title, sets, 30, "score (share of each set's images per bin)");
  }
  return html;
}

std::string examples_table(const std::string& path, int size) {
  const auto rows = read_tsv(path);
  if (rows.empty()) return "";
  std::string html =
      "<table class=\"examples\"><tr><th>image</th><th>its caption (rank)</th><th>top captions by "
      "the model</th></tr>";
  for (const auto& r : rows) {
    if (r.size() < 3) continue;
    html += "<tr><td>" + thumbnail(r[0], size) + "</td><td>" + html_escape(r[1]) + " (" +
            html_escape(r[2]) + ")</td><td><ol>";
    for (size_t k = 3; k + 1 < r.size(); k += 2) {
      const bool hit = r[k] == r[1];
      html += std::string("<li") + (hit ? " class=\"hit\"" : "") + ">" + html_escape(r[k]) +
              " <small>(" + format_number(std::strtod(r[k + 1].c_str(), nullptr)) +
              ")</small></li>";
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

std::string write_report(const ReportOptions& o) {
  HALO_CHECK(fs::is_directory(o.run_dir), "run folder '", o.run_dir, "' does not exist");
  const std::string out = o.out.empty() ? (fs::path(o.run_dir) / "report.html").string() : o.out;
  std::string html =
      "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>halo-clip report: " +
      html_escape(o.run_dir) + "</title><style>" + std::string(kPageStyle) + kChartStyle +
      "</style></head><body>";
  html += "<h1>halo-clip report: " + html_escape(o.run_dir) + "</h1>";
  const std::string config = read_text((fs::path(o.run_dir) / "config.yaml").string());
  html += curves_section(o.run_dir);

  std::vector<fs::path> folders;
  for (const auto& entry : fs::directory_iterator(o.run_dir)) {
    if (entry.is_directory()) folders.push_back(entry.path());
  }
  std::sort(folders.begin(), folders.end());
  for (const auto& dir : folders) {
    const bool is_eval = fs::exists(dir / "results.txt"),
               is_filter = fs::exists(dir / "scores.tsv");
    if (!is_eval && !is_filter) continue;
    const std::string name = dir.filename().string();
    html +=
        "<h2>" + std::string(is_eval ? "Evaluation: " : "Filter: ") + html_escape(name) + "</h2>";
    if (is_eval) {
      html += "<pre>" + html_escape(read_text((dir / "results.txt").string())) + "</pre>";
      html += histogram_from((dir / "pair_scores.tsv").string(), "mismatch score of each pair");
      if (fs::exists(dir / "reliability.tsv"))
        html += reliability_from((dir / "reliability.tsv").string());
      if (fs::exists(dir / "ood_scores.tsv"))
        html += ood_histograms_from((dir / "ood_scores.tsv").string());
      html += "<h3>Retrieval examples (image to text)</h3>" +
              examples_table((dir / "examples.tsv").string(), o.thumbnail);
    } else {
      if (fs::exists(dir / "summary.txt"))
        html += "<pre>" + html_escape(read_text((dir / "summary.txt").string())) + "</pre>";
      html += histogram_from((dir / "scores.tsv").string(), "filter score of each pair");
    }
  }
  if (!config.empty()) html += "<h2>Configuration</h2><pre>" + html_escape(config) + "</pre>";
  html += "</body></html>\n";
  halo::write_file_atomically(out, html);
  return out;
}

}  // namespace halo::eval
