// prepare emoji-google / emoji-twitter: one pair per emoji of emoji.json (emoji-datasource),
// captioned "name, category, subcategory". Both styles give the same captions in the same order.
#include <algorithm>
#include <filesystem>
#include <map>

#include <yaml-cpp/yaml.h>

#include "common/error.h"
#include "data/prepare.h"

namespace halo::data {

namespace fs = std::filesystem;

namespace {

struct EmojiEntry {
  int64_t sort_order = 0;
  std::string unified, image, caption, category;
  std::vector<std::pair<std::string, std::string>> variations;  // (image, caption), by key
};

std::string text_field(const YAML::Node& entry, const char* key) {
  const YAML::Node node = entry[key];
  return node && node.IsScalar() ? node.as<std::string>() : std::string();
}

std::string words(std::string text) {  // "face-smiling" -> "face smiling", "man_cook" -> "man cook"
  std::replace(text.begin(), text.end(), '-', ' ');
  std::replace(text.begin(), text.end(), '_', ' ');
  return lower_utf8(text);
}

// "1F3FB-1F3FD" -> "light skin tone and medium skin tone".
std::string skin_tone_words(const std::string& key) {
  static const std::map<std::string, std::string> tones{{"1F3FB", "light"},
                                                        {"1F3FC", "medium-light"},
                                                        {"1F3FD", "medium"},
                                                        {"1F3FE", "medium-dark"},
                                                        {"1F3FF", "dark"}};
  std::vector<std::string> parts;
  size_t begin = 0;
  while (begin <= key.size()) {
    const size_t end = std::min(key.find('-', begin), key.size());
    const std::string code = key.substr(begin, end - begin);
    auto it = tones.find(code);
    const std::string tone = (it == tones.end() ? code : it->second) + " skin tone";
    if (std::find(parts.begin(), parts.end(), tone) == parts.end()) parts.push_back(tone);
    begin = end + 1;
  }
  std::string out;
  for (const auto& part : parts) out += (out.empty() ? "" : " and ") + part;
  return out;
}

std::vector<EmojiEntry> read_emoji_json(const std::string& path) {
  HALO_CHECK(fs::is_regular_file(path), "emoji: '", path,
             "' not found (is --source the folder fetched by scripts/fetch_data.sh?)");
  YAML::Node root;
  try {
    root = YAML::LoadFile(path);
  } catch (const YAML::Exception& e) {
    HALO_FAIL("emoji: cannot parse '", path, "': ", e.what());
  }
  HALO_CHECK(root.IsSequence(), "emoji: '", path, "' is not a JSON list of emoji");
  std::vector<EmojiEntry> entries;
  for (size_t i = 0; i < root.size(); ++i) {
    const YAML::Node e = root[i];
    EmojiEntry entry;
    entry.unified = text_field(e, "unified");
    entry.image = text_field(e, "image");
    HALO_CHECK(!entry.unified.empty() && !entry.image.empty(), "emoji: '", path, "' entry ", i,
               " has no 'unified' or 'image'");
    std::string name = text_field(e, "name");
    if (name.empty()) name = text_field(e, "short_name");
    HALO_CHECK(!name.empty(), "emoji: '", path, "' entry ", i, " (", entry.unified,
               ") has neither 'name' nor 'short_name'");
    const std::string category = words(text_field(e, "category"));
    const std::string subcategory = words(text_field(e, "subcategory"));
    const std::string tail =
        (category.empty() ? "" : ", " + category) + (subcategory.empty() ? "" : ", " + subcategory);
    name = words(name);
    entry.caption = name + tail;
    entry.category = category;
    try {
      entry.sort_order = e["sort_order"] ? e["sort_order"].as<int64_t>() : 0;
    } catch (const YAML::Exception&) {
      HALO_FAIL("emoji: '", path, "' entry ", i, " (", entry.unified,
                "): 'sort_order' is not an integer");
    }
    if (const YAML::Node skins = e["skin_variations"]; skins && skins.IsMap()) {
      std::map<std::string, std::string> by_key;  // sorted by the modifier code(s)
      for (const auto& kv : skins) {
        const std::string image = text_field(kv.second, "image");
        if (!image.empty()) by_key[kv.first.as<std::string>()] = image;
      }
      for (const auto& [key, image] : by_key) {
        entry.variations.emplace_back(image, name + ", " + skin_tone_words(key) + tail);
      }
    }
    entries.push_back(std::move(entry));
  }
  std::sort(entries.begin(), entries.end(), [](const EmojiEntry& a, const EmojiEntry& b) {
    return a.sort_order != b.sort_order ? a.sort_order < b.sort_order : a.unified < b.unified;
  });
  return entries;
}

}  // namespace

Collected collect_emoji(const PrepareOptions& options, const std::string& style) {
  HALO_CHECK(style == "google" || style == "twitter", "emoji: --style must be 'google' or ",
             "'twitter', got '", style, "'");
  const fs::path source(options.source);
  const fs::path image_dir = source / "img" / style / "64";
  const auto entries = read_emoji_json((source / "emoji.json").string());
  HALO_CHECK(fs::is_directory(image_dir), "emoji: no folder '", image_dir.string(), "' in --source",
             " (fetch emoji-", style, " with scripts/fetch_data.sh, or pick the other style)");

  Collected out;
  int64_t missing = 0, skin_skipped = 0;
  // (source image, caption, category label) in the final order; images are copied only for the
  // rows kept. The categories (in order of first appearance) are the classification classes.
  struct Pair {
    std::string image, caption;
    int64_t label;
  };
  std::vector<Pair> pairs;
  std::map<std::string, int64_t> class_index;
  auto add = [&](const std::string& image, const std::string& caption,
                 const std::string& category) {
    if (!fs::is_regular_file(image_dir / image)) {
      ++missing;
      return;
    }
    int64_t label = -1;
    if (!category.empty()) {
      auto [it, added] = class_index.emplace(category, static_cast<int64_t>(out.classes.size()));
      if (added) out.classes.push_back(category);
      label = it->second;
    }
    pairs.push_back({image, caption, label});
  };
  for (const auto& entry : entries) {
    add(entry.image, entry.caption, entry.category);
    if (!options.skin_tones) {
      skin_skipped += static_cast<int64_t>(entry.variations.size());
      continue;
    }
    for (const auto& [image, caption] : entry.variations) add(image, caption, entry.category);
  }
  out.skip("64px " + style + " image missing", missing);
  out.skip("skin-tone variations (--skin-tones includes them)", skin_skipped);
  if (options.limit > 0 && static_cast<int64_t>(pairs.size()) > options.limit) {
    pairs.resize(static_cast<size_t>(options.limit));
  }

  // The images are copied next to the manifest so that OUT is self-contained (it can be moved
  // or copied to another machine without the raw data); a copy of the same size is kept.
  Progress progress("emoji-" + style, 1000, options.verbose);
  for (const auto& pair : pairs) {
    const std::string relative = "images/" + pair.image;
    copy_image((image_dir / pair.image).string(), (fs::path(options.out) / relative).string());
    ManifestRow row;
    row.image_path = relative;
    row.caption = row.original_caption = pair.caption;
    row.label = pair.label;
    out.rows.push_back(std::move(row));
    progress.tick();
  }
  return out;
}

}  // namespace halo::data
