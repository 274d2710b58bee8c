// Reading run files into series and drawing them (see plot.h).
#include "eval/plot.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>

#include "common/error.h"
#include "data/manifest.h"

namespace fs = std::filesystem;

namespace halo::eval {

namespace {

// A TSV file with a header row: column lookup by name with errors that name the file.
struct Table {
  std::string path;
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> rows;

  int column(const std::string& name) const {
    const auto it = std::find(header.begin(), header.end(), name);
    if (it != header.end()) return static_cast<int>(it - header.begin());
    std::string known;
    for (const auto& h : header) known += (known.empty() ? "" : ", ") + h;
    HALO_FAIL("'", path, "' has no column '", name, "' (its columns: ", known, ")");
  }
};

Table read_table(const std::string& path) {
  std::ifstream in(path);
  HALO_CHECK(in.good(), "cannot read '", path, "'");
  Table t;
  t.path = path;
  std::string line;
  HALO_CHECK(std::getline(in, line), "'", path, "' is empty (a header row is needed)");
  auto strip_cr = [](std::string& l) {  // files written on Windows
    if (!l.empty() && l.back() == '\r') l.pop_back();
  };
  strip_cr(line);
  t.header = data::split_fields(line, '\t');
  while (std::getline(in, line)) {
    strip_cr(line);
    if (!line.empty()) t.rows.push_back(data::split_fields(line, '\t'));
  }
  return t;
}

// The field's number; false for "-", empty or non-numeric fields (missing values).
bool number(const std::vector<std::string>& row, int column, double& value) {
  if (column < 0 || static_cast<size_t>(column) >= row.size()) return false;
  const std::string& field = row[static_cast<size_t>(column)];
  char* end = nullptr;
  value = std::strtod(field.c_str(), &end);
  return !field.empty() && end == field.c_str() + field.size() && std::isfinite(value);
}

std::string field(const std::vector<std::string>& row, int column) {
  return column >= 0 && static_cast<size_t>(column) < row.size() ? row[static_cast<size_t>(column)]
                                                                 : "";
}

// Numbers of one metrics.jsonl line ({"key": number, ...}); metrics.jsonl holds numbers only
// (a string value would be misread as a key).
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
    i = stop && stop > line.c_str() + colon + 1 ? static_cast<size_t>(stop - line.c_str())
                                                : colon + 1;
  }
  return out;
}

}  // namespace

std::map<std::string, Series> read_metrics(const std::string& path) {
  std::ifstream in(path);
  HALO_CHECK(in.good(), "cannot read metrics file '", path, "'");
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
  HALO_CHECK(!by_key.empty(), "metrics file '", path, "' has no line with a \"step\"");
  return by_key;
}

LabelledFile parse_labelled_file(const std::string& spec) {
  const size_t eq = spec.find('=');
  if (eq == std::string::npos) return {"", spec};
  HALO_CHECK(eq + 1 < spec.size(), "'", spec, "' names no file after '='");
  return {spec.substr(0, eq), spec.substr(eq + 1)};
}

std::string plot_curves(const CurvesPlot& p) {
  HALO_CHECK(!p.runs.empty() && !p.keys.empty(), "plot curves needs at least one run and one key");
  std::vector<Series> series;
  for (const auto& [label, where] : p.runs) {
    const std::string path =
        fs::is_directory(where) ? (fs::path(where) / "metrics.jsonl").string() : where;
    const auto metrics = read_metrics(path);
    for (const auto& key : p.keys) {
      const auto it = metrics.find(key);
      HALO_CHECK(it != metrics.end(), "metrics file '", path, "' has no key '", key, "'");
      Series s = it->second;
      s.name = p.keys.size() == 1 ? (label.empty() ? key : label)
                                  : (label.empty() ? key : label + ": " + key);
      s.color = chart_color(series.size());
      series.push_back(std::move(s));
    }
  }
  return svg_line_chart(p.title, series, p.log_y, "step");
}

std::string plot_histogram(const HistogramPlot& p) {
  HALO_CHECK(!p.tables.empty(), "plot histogram needs at least one table");
  HALO_CHECK(p.bins >= 2 && p.bins <= 200, "plot histogram: bins must be 2..200, got ", p.bins);
  std::vector<Series> samples;
  for (const auto& [label, path] : p.tables) {
    const Table t = read_table(path);
    const int value = t.column(p.value_column);
    const int group = p.group_column.empty() ? -1 : t.column(p.group_column);
    std::vector<std::string> order = p.group_order;
    std::map<std::string, std::vector<double>> by_group;
    for (const auto& row : t.rows) {
      double v = 0;
      if (!number(row, value, v)) continue;
      const std::string g = group < 0 ? "" : field(row, group);
      if (p.group_order.empty() && std::find(order.begin(), order.end(), g) == order.end())
        order.push_back(g);
      by_group[g].push_back(p.log10 ? std::log10(std::max(v, 1e-12)) : v);
    }
    for (const auto& g : order) {
      const auto it = by_group.find(g);
      if (it == by_group.end()) continue;
      const auto named = p.group_names.find(g);
      const std::string name = named != p.group_names.end() ? named->second : g;
      Series s;
      s.name = label.empty() ? name : name.empty() ? label : label + ": " + name;
      s.color = chart_color(samples.size());
      s.x = it->second;
      samples.push_back(std::move(s));
    }
  }
  HALO_CHECK(!samples.empty(), "plot histogram: no numeric value in column '", p.value_column,
             "' of the tables");
  const std::string x_label = !p.x_label.empty() ? p.x_label
                                                 : (p.log10 ? "log10 " : "") + p.value_column +
                                                       " (share of each group per bin)";
  return svg_histogram(p.title, samples, p.bins, x_label);
}

std::string plot_bars(const BarsPlot& p) {
  HALO_CHECK(!p.value_columns.empty(), "plot bars needs a value column");
  HALO_CHECK(p.series_column.empty() || p.value_columns.size() == 1,
             "plot bars: a series column goes with exactly one value column");
  const Table t = read_table(p.table);
  const int label = t.column(p.label_column);
  const int series_col = p.series_column.empty() ? -1 : t.column(p.series_column);
  std::vector<int> values;
  for (const auto& c : p.value_columns) values.push_back(t.column(c));
  std::vector<std::pair<int, std::string>> filters;
  for (const auto& [column, wanted] : p.where) filters.emplace_back(t.column(column), wanted);

  BarChart chart;
  chart.title = p.title;
  chart.x_label = p.x_label;
  chart.x_from = p.x_from;
  std::vector<std::string> series_keys =
      series_col < 0 ? p.value_columns : std::vector<std::string>{};
  // samples[category][series]: every value of the rows sharing the label.
  std::vector<std::vector<std::vector<double>>> samples;
  for (const auto& row : t.rows) {
    const bool keep = std::all_of(filters.begin(), filters.end(),
                                  [&](const auto& f) { return field(row, f.first) == f.second; });
    if (!keep) continue;
    const std::string category = field(row, label);
    auto at = std::find(chart.categories.begin(), chart.categories.end(), category);
    if (at == chart.categories.end()) {
      chart.categories.push_back(category);
      samples.emplace_back();
      at = chart.categories.end() - 1;
    }
    auto& per_series = samples[static_cast<size_t>(at - chart.categories.begin())];
    for (size_t k = 0; k < values.size(); ++k) {
      double v = 0;
      if (!number(row, values[k], v)) continue;
      size_t s = k;
      if (series_col >= 0) {
        const std::string key = field(row, series_col);
        const auto it = std::find(series_keys.begin(), series_keys.end(), key);
        s = static_cast<size_t>(it - series_keys.begin());
        if (it == series_keys.end()) series_keys.push_back(key);
      }
      if (per_series.size() <= s) per_series.resize(s + 1);
      per_series[s].push_back(v);
    }
  }
  HALO_CHECK(!chart.categories.empty(), "plot bars: '", p.table, "' has no rows",
             p.where.empty() ? "" : " that pass the --where filters");
  for (const auto& key : series_keys) {
    const auto named = p.series_names.find(key);
    chart.series.push_back(named != p.series_names.end() ? named->second : key);
  }
  const size_t n = series_keys.size();
  for (auto& per_series : samples) {
    per_series.resize(n);
    std::vector<double> mean(n, 0), lo(n, 0), hi(n, 0);
    std::vector<bool> has(n, false);
    for (size_t s = 0; s < n; ++s) {
      const auto& v = per_series[s];
      if (v.empty()) continue;
      has[s] = true;
      double sum = 0;
      for (double x : v) sum += x;
      mean[s] = sum / static_cast<double>(v.size());
      lo[s] = *std::min_element(v.begin(), v.end());
      hi[s] = *std::max_element(v.begin(), v.end());
    }
    chart.mean.push_back(mean);
    chart.lo.push_back(lo);
    chart.hi.push_back(hi);
    chart.has.push_back(has);
  }
  return svg_bars(chart);
}

}  // namespace halo::eval
