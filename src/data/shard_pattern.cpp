// Brace patterns of shard paths and sizes.json (see shard_pattern.h).
#include "data/shard_pattern.h"

#include <cctype>
#include <filesystem>
#include <map>

#include <yaml-cpp/yaml.h>

#include "common/error.h"

namespace fs = std::filesystem;

namespace halo::data {

namespace {

bool all_digits(const std::string& s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!std::isdigit(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

// The alternatives of one brace body: "a,b,c" or a numeric range "000..099".
std::vector<std::string> brace_alternatives(const std::string& body, const std::string& pattern) {
  const size_t dots = body.find("..");
  if (dots != std::string::npos) {
    const std::string lo = body.substr(0, dots), hi = body.substr(dots + 2);
    HALO_CHECK(all_digits(lo) && all_digits(hi), "shard pattern '", pattern, "': the range {", body,
               "} needs two non-negative integers, as in {00000..00099}");
    HALO_CHECK(lo.size() <= 18 && hi.size() <= 18, "shard pattern '", pattern, "': the range {",
               body, "} is too large");
    const int64_t a = std::stoll(lo), b = std::stoll(hi);
    HALO_CHECK(a <= b, "shard pattern '", pattern, "': the range {", body, "} runs backwards");
    HALO_CHECK(b - a < 10'000'000, "shard pattern '", pattern, "': the range {", body,
               "} has more than 10^7 values");
    std::vector<std::string> out;
    for (int64_t i = a; i <= b; ++i) {
      std::string number = std::to_string(i);
      if (number.size() < lo.size())
        number.insert(0, lo.size() - number.size(), '0');  // zero padding
      out.push_back(number);
    }
    return out;
  }
  std::vector<std::string> out;
  size_t start = 0;
  while (true) {
    const size_t comma = body.find(',', start);
    out.push_back(
        body.substr(start, comma == std::string::npos ? std::string::npos : comma - start));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  HALO_CHECK(out.size() >= 2 || !out[0].empty(), "shard pattern '", pattern, "': empty braces {}");
  return out;
}

// Expands the first brace group of `text` and recurses into each result (braces do not nest).
void expand_one(const std::string& text, const std::string& pattern,
                std::vector<std::string>& out) {
  const size_t open = text.find('{');
  const size_t close_before = text.find('}');
  if (open == std::string::npos) {
    HALO_CHECK(close_before == std::string::npos, "shard pattern '", pattern, "': '}' without '{'");
    out.push_back(text);
    return;
  }
  HALO_CHECK(close_before == std::string::npos || close_before > open, "shard pattern '", pattern,
             "': '}' without '{'");
  const size_t close = text.find('}', open);
  HALO_CHECK(close != std::string::npos, "shard pattern '", pattern, "': '{' without '}'");
  const std::string body = text.substr(open + 1, close - open - 1);
  HALO_CHECK(body.find('{') == std::string::npos, "shard pattern '", pattern,
             "': nested braces are not supported");
  for (const auto& alternative : brace_alternatives(body, pattern)) {
    expand_one(text.substr(0, open) + alternative + text.substr(close + 1), pattern, out);
  }
}

}  // namespace

bool is_shard_source(const std::string& source) {
  if (source.find("::") != std::string::npos || source.find('{') != std::string::npos) return true;
  return source.size() >= 4 && source.compare(source.size() - 4, 4, ".tar") == 0;
}

std::vector<std::string> expand_shard_pattern(const std::string& pattern) {
  HALO_CHECK(!pattern.empty(), "shard pattern is empty");
  std::vector<std::string> out;
  size_t start = 0;
  while (true) {
    const size_t sep = pattern.find("::", start);
    const std::string part =
        pattern.substr(start, sep == std::string::npos ? std::string::npos : sep - start);
    HALO_CHECK(!part.empty(), "shard pattern '", pattern,
               "': an empty part between '::' separators");
    expand_one(part, pattern, out);
    if (sep == std::string::npos) break;
    start = sep + 2;
  }
  for (const auto& path : out)
    HALO_CHECK(!path.empty(), "shard pattern '", pattern, "' expands to an empty path");
  return out;
}

std::vector<std::string> existing_shards(const std::string& pattern) {
  std::vector<std::string> shards = expand_shard_pattern(pattern);
  std::vector<std::string> missing;
  for (const auto& shard : shards) {
    if (!fs::is_regular_file(shard)) missing.push_back(shard);
  }
  HALO_CHECK(missing.empty(), "shard '", missing.empty() ? std::string() : missing.front(),
             "' does not exist (", missing.size(), " of the ", shards.size(), " shards of '",
             pattern, "' are missing)");
  return shards;
}

std::vector<int64_t> shard_sizes_from_json(const std::vector<std::string>& shards) {
  std::map<std::string, YAML::Node> by_folder;  // each folder's sizes.json, read once
  std::vector<int64_t> sizes;
  for (const auto& shard : shards) {
    const fs::path path(shard);
    const std::string folder = path.parent_path().string();
    auto it = by_folder.find(folder);
    if (it == by_folder.end()) {
      const fs::path json = path.parent_path() / "sizes.json";
      YAML::Node node;
      if (fs::is_regular_file(json)) {
        try {
          node = YAML::LoadFile(json.string());
        } catch (const YAML::Exception& e) {
          HALO_FAIL("cannot read '", json.string(), "': ", e.what());
        }
        HALO_CHECK(node.IsMap(), "'", json.string(),
                   "' must be a JSON object of shard name to sample count");
      }
      it = by_folder.emplace(folder, node).first;
    }
    const YAML::Node count =
        it->second.IsMap() ? it->second[path.filename().string()] : YAML::Node();
    if (!count || count.IsNull()) {
      sizes.push_back(-1);
      continue;
    }
    int64_t value = -1;
    try {
      value = count.as<int64_t>();
    } catch (const YAML::Exception&) {
    }
    HALO_CHECK(value >= 0, "sizes.json beside '", shard, "': the count of '",
               path.filename().string(), "' must be an integer >= 0");
    sizes.push_back(value);
  }
  return sizes;
}

std::string shard_pattern_in(const std::string& pattern, const std::string& folder) {
  std::string out;
  size_t start = 0;
  while (true) {
    const size_t sep = pattern.find("::", start);
    const std::string part =
        pattern.substr(start, sep == std::string::npos ? std::string::npos : sep - start);
    if (!out.empty()) out += "::";
    out += (std::filesystem::path(folder) / std::filesystem::path(part).filename()).string();
    if (sep == std::string::npos) break;
    start = sep + 2;
  }
  return out;
}

}  // namespace halo::data
