// Reading and joining a precomputed score file (see score_file.h).
#include "eval/score_file.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>

#include "common/error.h"
#include "data/manifest.h"

namespace halo::eval {

namespace {

// The column's index in the header, or -1.
int64_t column_index(const std::vector<std::string>& header, const std::string& name) {
  for (size_t i = 0; i < header.size(); ++i) {
    if (header[i] == name) return static_cast<int64_t>(i);
  }
  return -1;
}

std::string joined(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

}  // namespace

ScoreFile::ScoreFile(const std::string& path, const std::string& column)
    : path_(path), column_(column) {
  std::ifstream in(path);
  HALO_CHECK(in.good(), "cannot read score file '", path, "'");
  std::string text;
  HALO_CHECK(static_cast<bool>(std::getline(in, text)), "score file '", path, "' is empty");
  if (!text.empty() && text.back() == '\r') text.pop_back();
  const std::vector<std::string> header = data::split_fields(text, '\t');
  const int64_t line_col = column_index(header, "line");
  const int64_t score_col = column_index(header, column);
  const int64_t image_col = column_index(header, "image_path");
  HALO_CHECK(line_col >= 0, "score file '", path,
             "' has no 'line' column (its columns: ", joined(header), ")");
  HALO_CHECK(score_col >= 0, "score file '", path, "' has no column '", column,
             "' (its columns: ", joined(header), ")");
  const auto needed = static_cast<size_t>(std::max({line_col, score_col, image_col})) + 1;
  for (int64_t file_line = 2; std::getline(in, text); ++file_line) {
    if (!text.empty() && text.back() == '\r') text.pop_back();
    if (text.empty()) continue;
    const std::vector<std::string> fields = data::split_fields(text, '\t');
    HALO_CHECK(fields.size() >= needed, path, ":", file_line, ": ", fields.size(),
               " fields, but the header has ", header.size());
    const std::string& line_text = fields[static_cast<size_t>(line_col)];
    char* end = nullptr;
    const long long line = std::strtoll(line_text.c_str(), &end, 10);
    HALO_CHECK(!line_text.empty() && *end == '\0' && line >= 2, path, ":", file_line,
               ": 'line' is '", line_text, "', not a manifest line number (>= 2)");
    const auto [it, inserted] = by_line_.emplace(
        line, Entry{file_line, fields[static_cast<size_t>(score_col)],
                    image_col < 0 ? std::string() : fields[static_cast<size_t>(image_col)]});
    HALO_CHECK(inserted, path, ":", file_line, ": manifest line ", line, " again (first at line ",
               it->second.file_line, ")");
  }
  HALO_CHECK(!by_line_.empty(), "score file '", path, "' has no rows");
}

bool ScoreFile::has_no_score(int64_t line) const {
  const auto it = by_line_.find(line);
  return it != by_line_.end() && it->second.value == "-";
}

std::string ScoreFile::image_of(int64_t line) const {
  const auto it = by_line_.find(line);
  return it == by_line_.end() ? std::string() : it->second.image;
}

double ScoreFile::score(int64_t line, const std::string& manifest) const {
  const auto it = by_line_.find(line);
  HALO_CHECK(it != by_line_.end(), "score file '", path_, "' has no row for line ", line,
             " of manifest '", manifest, "' (was it written for another manifest?)");
  const std::string& value = it->second.value;
  char* end = nullptr;
  const double v = std::strtod(value.c_str(), &end);
  HALO_CHECK(!value.empty() && *end == '\0' && std::isfinite(v), path_, ":", it->second.file_line,
             ": column '", column_, "' is '", value, "', not a score (manifest line ", line, ")");
  return v;
}

void ScoreFile::check_all_used(const std::set<int64_t>& used, const std::set<int64_t>& skipped,
                               const std::string& manifest) const {
  for (const auto& [line, entry] : by_line_) {
    HALO_CHECK(used.count(line) || skipped.count(line), path_, ":", entry.file_line,
               ": manifest line ", line, " is not a pair of manifest '", manifest,
               "' (was the file written for another manifest?)");
  }
}

}  // namespace halo::eval
