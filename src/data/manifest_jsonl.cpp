// Reading an image-caption list in JSON Lines (see manifest.h, read_jsonl_manifest).
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include <yaml-cpp/yaml.h>

#include "common/error.h"
#include "data/manifest.h"

namespace halo::data {

namespace {

// The field `key` of a JSON object as text ("" when absent or null).
std::string jsonl_text(const YAML::Node& object, const std::string& key) {
  const YAML::Node value = object[key];
  if (!value || value.IsNull()) return "";
  return value.IsScalar() ? value.Scalar() : std::string();
}

}  // namespace

Manifest read_jsonl_manifest(const std::string& path, const ManifestOptions& options) {
  check_input_file(path, "manifest");
  std::ifstream in(path);
  HALO_CHECK(in.good(), "cannot read manifest '", path, "'");
  const std::filesystem::path root = std::filesystem::path(path).parent_path();
  Manifest m;
  m.path = path;
  bool flags = false, labels = false;
  std::string line;
  for (int64_t line_no = 1; std::getline(in, line); ++line_no) {
    if (line.find_first_not_of(" \t\r\n") == std::string::npos) continue;
    const std::string where = path + ":" + std::to_string(line_no);
    YAML::Node object;
    try {
      object = YAML::Load(line);
    } catch (const YAML::Exception& e) {
      HALO_FAIL(where, ": not a JSON object (", e.what(), ")");
    }
    HALO_CHECK(object.IsMap(), where, ": not a JSON object");
    const std::string image = jsonl_text(object, options.image_key),
                      caption = jsonl_text(object, options.caption_key);
    if (image.empty() || caption.find_first_not_of(" \t\r\n") == std::string::npos ||
        !valid_utf8(caption)) {
      const char* reason = image.empty()          ? "no image path"
                           : !valid_utf8(caption) ? "caption is not valid UTF-8"
                                                  : "empty caption";
      HALO_CHECK(options.skip_bad, where, ": ", reason, " (fields '", options.image_key, "' and '",
                 options.caption_key, "'; set data.skip_bad: true to skip such rows)");
      ++m.skipped_rows;
      m.skipped.push_back({line_no, reason});
      continue;
    }
    const std::filesystem::path image_path(image);
    m.images.push_back((image_path.is_absolute() ? image_path : root / image_path).string());
    m.captions.push_back(caption);
    m.lines.push_back(line_no);
    const std::string flag = jsonl_text(object, "mismatched"),
                      label = jsonl_text(object, options.label_key);
    if (m.size() == 1) {
      flags = !flag.empty();
      labels = !label.empty();
    }
    if (flags) {
      HALO_CHECK(flag == "0" || flag == "1" || flag == "true" || flag == "false", where,
                 ": field 'mismatched' must be 0 or 1 (on every line when the first has it), got '",
                 flag, "'");
      m.mismatched.push_back(static_cast<int8_t>(flag == "1" || flag == "true"));
    }
    if (labels) {
      char* end = nullptr;
      const long long value = std::strtoll(label.c_str(), &end, 10);
      HALO_CHECK(
          !label.empty() && *end == '\0' && value >= 0, where, ": field '", options.label_key,
          "' must be a class index >= 0 (on every line when the first has it), got '", label, "'");
      m.labels.push_back(value);
    }
  }
  HALO_CHECK(m.size() > 0, "manifest '", path, "' has no usable rows");
  return m;
}

}  // namespace halo::data
