// Manifest reader (see manifest.h).
#include "data/manifest.h"

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>

#include "common/error.h"

namespace halo::data {

namespace {

bool blank(const std::string& s) {
  return s.find_first_not_of(" \t\r\n") == std::string::npos;
}

int64_t column(const std::vector<std::string>& header, const std::string& key) {
  for (size_t i = 0; i < header.size(); ++i) {
    if (header[i] == key) return static_cast<int64_t>(i);
  }
  return -1;
}

}  // namespace

bool valid_utf8(const std::string& s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    const size_t n = c < 0x80           ? 1
                     : (c >> 5) == 0x6  ? 2
                     : (c >> 4) == 0xE  ? 3
                     : (c >> 3) == 0x1E ? 4
                                        : 0;
    if (n == 0 || i + n > s.size()) return false;
    for (size_t k = 1; k < n; ++k) {
      if ((static_cast<unsigned char>(s[i + k]) >> 6) != 0x2) return false;
    }
    i += n;
  }
  return true;
}

std::vector<std::string> split_fields(const std::string& line, char separator) {
  std::vector<std::string> fields;
  std::string field;
  bool quoted = false, in_quotes = false;
  for (size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (in_quotes) {
      if (c == '"' && i + 1 < line.size() && line[i + 1] == '"') {
        field += '"';
        ++i;
      } else if (c == '"') {
        in_quotes = false;
      } else {
        field += c;
      }
    } else if (c == '"' && field.empty() && !quoted) {
      in_quotes = quoted = true;
    } else if (c == separator) {
      fields.push_back(field);
      field.clear();
      quoted = false;
    } else {
      field += c;
    }
  }
  fields.push_back(field);
  return fields;
}

ManifestReader::ManifestReader(const std::string& path, const ManifestOptions& options)
    : path_(path), options_(options), in_(path), root_(std::filesystem::path(path).parent_path()) {
  check_input_file(path, "manifest");
  HALO_CHECK(in_.good(), "cannot read manifest '", path, "'");
  HALO_CHECK(static_cast<bool>(std::getline(in_, header_)), "manifest '", path,
             "' is empty (it needs a header line)");
  if (header_.rfind("\xEF\xBB\xBF", 0) == 0) header_.erase(0, 3);  // a UTF-8 byte-order mark
  if (!header_.empty() && header_.back() == '\r') header_.pop_back();
  header_fields_ = split_fields(header_, options.separator);
  image_col_ = column(header_fields_, options.image_key);
  caption_col_ = column(header_fields_, options.caption_key);
  flag_col_ = column(header_fields_, "mismatched");
  label_col_ = column(header_fields_, options.label_key);
  HALO_CHECK(image_col_ >= 0, "manifest '", path, "': no column named '", options.image_key,
             "' in the header (set data.image_key)");
  HALO_CHECK(caption_col_ >= 0, "manifest '", path, "': no column named '", options.caption_key,
             "' in the header (set data.caption_key)");
  needed_ = static_cast<size_t>(std::max({image_col_, caption_col_, flag_col_, label_col_})) + 1;
}

int64_t ManifestReader::read(Manifest& m, int64_t max_rows) {
  m.path = path_;
  int64_t added = 0;
  std::string line;
  while (added < max_rows && std::getline(in_, line)) {
    ++line_no_;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (blank(line)) continue;
    const auto fields = split_fields(line, options_.separator);
    const std::string where = path_ + ":" + std::to_string(line_no_);
    HALO_CHECK(fields.size() >= needed_, where, ": expected at least ", needed_, " fields, found ",
               fields.size(), " (separator '",
               options_.separator == '\t' ? std::string("\\t") : std::string(1, options_.separator),
               "')");
    const std::string& caption = fields[static_cast<size_t>(caption_col_)];
    const std::string& image = fields[static_cast<size_t>(image_col_)];
    const bool bad_caption = blank(caption) || !valid_utf8(caption);
    if (bad_caption || image.empty()) {
      const char* reason = image.empty()    ? "empty image path"
                           : blank(caption) ? "empty caption"
                                            : "caption is not valid UTF-8";
      HALO_CHECK(options_.skip_bad, where, ": ", reason,
                 " (set data.skip_bad: true to skip such rows)");
      ++m.skipped_rows;
      m.skipped.push_back({line_no_, reason});
      continue;
    }
    std::filesystem::path image_path(image);
    m.images.push_back((image_path.is_absolute() ? image_path : root_ / image_path).string());
    m.captions.push_back(caption);
    m.lines.push_back(line_no_);
    if (options_.keep_raw_lines) m.raw_lines.push_back(line);
    if (flag_col_ >= 0) {
      const std::string& flag = fields[static_cast<size_t>(flag_col_)];
      HALO_CHECK(flag == "0" || flag == "1", where, ": column 'mismatched' must be 0 or 1, got '",
                 flag, "'");
      m.mismatched.push_back(static_cast<int8_t>(flag == "1"));
    }
    if (label_col_ >= 0) {
      const std::string& label = fields[static_cast<size_t>(label_col_)];
      char* end = nullptr;
      const long long value = std::strtoll(label.c_str(), &end, 10);
      HALO_CHECK(!label.empty() && *end == '\0' && value >= 0, where, ": column '",
                 options_.label_key, "' must be a class index >= 0, got '", label, "'");
      m.labels.push_back(value);
    }
    ++added;
  }
  return added;
}

Manifest subset(const Manifest& m, const std::vector<int64_t>& rows) {
  Manifest out;
  out.path = m.path;
  auto take = [&](const auto& from, auto& to) {
    if (from.empty()) return;
    for (int64_t r : rows) to.push_back(from.at(static_cast<size_t>(r)));
  };
  take(m.images, out.images);
  take(m.captions, out.captions);
  take(m.mismatched, out.mismatched);
  take(m.labels, out.labels);
  take(m.lines, out.lines);
  take(m.raw_lines, out.raw_lines);
  out.skipped_rows = m.skipped_rows;
  return out;
}

Manifest read_manifest(const std::string& path, const ManifestOptions& options) {
  ManifestReader reader(path, options);
  Manifest m;
  reader.read(m, std::numeric_limits<int64_t>::max());
  HALO_CHECK(m.size() > 0, "manifest '", path, "' has no usable rows");
  return m;
}

std::string tsv_field(std::string value) {
  std::replace(value.begin(), value.end(), '\t', ' ');
  std::replace(value.begin(), value.end(), '\n', ' ');
  return value;
}

}  // namespace halo::data
