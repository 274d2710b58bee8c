// Manifest reader (see manifest.h).
#include "data/manifest.h"

#include <filesystem>
#include <fstream>

#include "common/error.h"

namespace halo::data {

namespace {

bool valid_utf8(const std::string& s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    const size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
    if (n == 0 || i + n > s.size()) return false;
    for (size_t k = 1; k < n; ++k) {
      if ((static_cast<unsigned char>(s[i + k]) >> 6) != 0x2) return false;
    }
    i += n;
  }
  return true;
}

bool blank(const std::string& s) { return s.find_first_not_of(" \t\r\n") == std::string::npos; }

int64_t column(const std::vector<std::string>& header, const std::string& key) {
  for (size_t i = 0; i < header.size(); ++i) {
    if (header[i] == key) return static_cast<int64_t>(i);
  }
  return -1;
}

}  // namespace

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

Manifest read_manifest(const std::string& path, const ManifestOptions& options) {
  std::ifstream in(path);
  HALO_CHECK(in.good(), "cannot read manifest '", path, "'");
  Manifest m;
  m.path = path;
  const std::filesystem::path root = std::filesystem::path(path).parent_path();
  std::string line;
  HALO_CHECK(static_cast<bool>(std::getline(in, line)), "manifest '", path, "' is empty (it needs a header line)");
  if (!line.empty() && line.back() == '\r') line.pop_back();
  const auto header = split_fields(line, options.separator);
  const int64_t image_col = column(header, options.image_key);
  const int64_t caption_col = column(header, options.caption_key);
  const int64_t flag_col = column(header, "mismatched");
  HALO_CHECK(image_col >= 0, "manifest '", path, "': no column named '", options.image_key,
             "' in the header (set data.image_key)");
  HALO_CHECK(caption_col >= 0, "manifest '", path, "': no column named '", options.caption_key,
             "' in the header (set data.caption_key)");
  const size_t needed = static_cast<size_t>(std::max({image_col, caption_col, flag_col})) + 1;

  for (int64_t line_no = 2; std::getline(in, line); ++line_no) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (blank(line)) continue;
    const auto fields = split_fields(line, options.separator);
    const std::string where = path + ":" + std::to_string(line_no);
    HALO_CHECK(fields.size() >= needed, where, ": expected at least ", needed, " fields, found ",
               fields.size(), " (separator '", options.separator == '\t' ? std::string("\\t") : std::string(1, options.separator), "')");
    const std::string& caption = fields[static_cast<size_t>(caption_col)];
    const std::string& image = fields[static_cast<size_t>(image_col)];
    const bool bad_caption = blank(caption) || !valid_utf8(caption);
    if (bad_caption || image.empty()) {
      HALO_CHECK(options.skip_bad, where, ": ", image.empty() ? "empty image path" :
                 blank(caption) ? "empty caption" : "caption is not valid UTF-8",
                 " (set data.skip_bad: true to skip such rows)");
      ++m.skipped_rows;
      continue;
    }
    std::filesystem::path image_path(image);
    m.images.push_back((image_path.is_absolute() ? image_path : root / image_path).string());
    m.captions.push_back(caption);
    if (flag_col >= 0) {
      const std::string& flag = fields[static_cast<size_t>(flag_col)];
      HALO_CHECK(flag == "0" || flag == "1", where, ": column 'mismatched' must be 0 or 1, got '", flag, "'");
      m.mismatched.push_back(static_cast<int8_t>(flag == "1"));
    }
  }
  HALO_CHECK(m.size() > 0, "manifest '", path, "' has no usable rows");
  return m;
}

}  // namespace halo::data
