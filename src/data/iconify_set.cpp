// See iconify_set.h. IconifyJSON is read with yaml-cpp (JSON is YAML): the whole package, 281
// files and 642 MB, parses in about 40 s at a peak of about 105 MB on the 2-core machine of
// docs/data.md, one file at a time. yaml-cpp looks keys up by a linear scan, so every map with
// many entries is copied into a std::map once and looked up there.
#include "data/iconify_set.h"

#include <algorithm>
#include <filesystem>
#include <optional>
#include <set>

#include <yaml-cpp/yaml.h>

#include "common/error.h"
#include "common/json.h"
#include "data/prepare.h"

namespace halo::data::iconify {

namespace fs = std::filesystem;

namespace {

// map[key], or an undefined node when `map` is missing or not an object.
YAML::Node child(const YAML::Node& map, const char* key) {
  return map && map.IsMap() ? map[key] : YAML::Node();
}

std::string text_of(const YAML::Node& map, const char* key) {
  const YAML::Node node = child(map, key);
  return node && node.IsScalar() ? node.Scalar() : std::string();
}

// A set's, icon's or alias's own optional properties (IconifyJSON's IconifyOptional).
struct Props {
  std::optional<double> left, top, width, height;
  std::optional<int> rotate;
  std::optional<bool> h_flip, v_flip, hidden;
};

struct Entry {
  Props props;
  std::string body;    // icons
  std::string parent;  // aliases
};

Props read_props(const YAML::Node& node, const std::string& where) {
  Props p;
  auto number = [&](const char* key, std::optional<double>& out) {
    const YAML::Node v = child(node, key);
    if (!v) return;
    try {
      out = v.as<double>();
    } catch (const YAML::Exception&) {
      HALO_FAIL(where, ": '", key, "' is not a number");
    }
  };
  auto flag = [&](const char* key, std::optional<bool>& out) {
    const YAML::Node v = child(node, key);
    if (!v) return;
    try {
      out = v.as<bool>();
    } catch (const YAML::Exception&) {
      HALO_FAIL(where, ": '", key, "' is not true or false");
    }
  };
  number("left", p.left);
  number("top", p.top);
  number("width", p.width);
  number("height", p.height);
  if (const YAML::Node v = child(node, "rotate")) {
    try {
      p.rotate = v.as<int>();
    } catch (const YAML::Exception&) {
      HALO_FAIL(where, ": 'rotate' is not a whole number of quarter turns");
    }
  }
  flag("hFlip", p.h_flip);
  flag("vFlip", p.v_flip);
  flag("hidden", p.hidden);
  return p;
}

std::string collapse_spaces(const std::string& text) {
  std::string out;
  for (char c : text) {
    const bool space = c == ' ' || c == '\t' || c == '\n' || c == '\r';
    if (space) {
      if (!out.empty() && out.back() != ' ') out += ' ';
    } else {
      out += c;
    }
  }
  if (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

}  // namespace

const char* split_name(Split split) {
  switch (split) {
    case Split::kEmoji:
      return "emoji";
    case Split::kVal:
      return "val";
    case Split::kTrain:
      return "train";
  }
  return "?";
}

const std::vector<std::string>& held_out_sets() {
  // Material, UI 24px, UI 16px / 32px, Logos, UI Multicolor and Flags: 22,253 of the 448,171
  // visible non-emoji icons of @iconify/json 2.2.553 (5.0%).
  static const std::vector<std::string> sets{"mdi",          "tabler",           "carbon",
                                             "simple-icons", "streamline-color", "circle-flags"};
  return sets;
}

std::vector<SetInfo> read_collections(const std::string& path) {
  HALO_CHECK(
      fs::is_regular_file(path), "iconify: '", path,
      "' not found (is --source the folder fetched by scripts/fetch_data.sh --only iconify?)");
  YAML::Node root;
  try {
    root = YAML::LoadFile(path);
  } catch (const YAML::Exception& e) {
    HALO_FAIL("iconify: cannot parse '", path, "': ", e.what());
  }
  HALO_CHECK(root.IsMap(), "iconify: '", path, "' is not a JSON object of icon sets");
  const std::set<std::string> held_out(held_out_sets().begin(), held_out_sets().end());
  std::vector<SetInfo> sets;
  for (const auto& kv : root) {
    SetInfo s;
    s.prefix = kv.first.Scalar();
    const YAML::Node info = kv.second;
    const std::string where = "iconify: '" + path + "', set '" + s.prefix + "'";
    HALO_CHECK(info.IsMap(), where, " is not an object");
    s.name = text_of(info, "name");
    HALO_CHECK(!s.name.empty(), where, " has no name");
    s.author = text_of(child(info, "author"), "name");
    s.author_url = text_of(child(info, "author"), "url");
    const YAML::Node license = child(info, "license");
    s.license_title = text_of(license, "title");
    s.license_spdx = text_of(license, "spdx");
    s.license_url = text_of(license, "url");
    HALO_CHECK(!s.license_spdx.empty() || !s.license_title.empty(), where,
               " has no licence (license.spdx or license.title)");
    if (s.license_spdx.empty()) s.license_spdx = s.license_title;
    if (s.author.empty()) s.author = "unknown";
    s.category = text_of(info, "category");
    try {
      if (const YAML::Node v = child(info, "palette")) s.palette = v.as<bool>();
      if (const YAML::Node v = child(info, "total")) s.total = v.as<int64_t>();
    } catch (const YAML::Exception&) {
      HALO_FAIL(where, ": 'palette' or 'total' has the wrong type");
    }
    s.split = s.category == emoji_category() ? Split::kEmoji
              : held_out.count(s.prefix)     ? Split::kVal
                                             : Split::kTrain;
    sets.push_back(std::move(s));
  }
  return sets;
}

std::string svg_document(const std::string& body, const IconBox& box, int size) {
  // Iconify's iconToSVG: a flip is a translate and a scale of the body around its box, both
  // flips together are a half turn, and a rotation turns about the box's centre.
  double left = box.left, top = box.top, width = box.width, height = box.height;
  std::vector<std::string> transforms;
  int rotation = box.rotate;
  if (box.h_flip) {
    if (box.v_flip) {
      rotation += 2;
    } else {
      transforms.push_back("translate(" + json_number(width + left) + " " + json_number(-top) +
                           ")");
      transforms.push_back("scale(-1 1)");
      top = left = 0;
    }
  } else if (box.v_flip) {
    transforms.push_back("translate(" + json_number(-left) + " " + json_number(height + top) + ")");
    transforms.push_back("scale(1 -1)");
    top = left = 0;
  }
  rotation = ((rotation % 4) + 4) % 4;
  if (rotation == 1) {
    const double c = height / 2 + top;
    transforms.insert(transforms.begin(),
                      "rotate(90 " + json_number(c) + " " + json_number(c) + ")");
  } else if (rotation == 2) {
    transforms.insert(transforms.begin(), "rotate(180 " + json_number(width / 2 + left) + " " +
                                              json_number(height / 2 + top) + ")");
  } else if (rotation == 3) {
    const double c = width / 2 + left;
    transforms.insert(transforms.begin(),
                      "rotate(-90 " + json_number(c) + " " + json_number(c) + ")");
  }
  if (rotation % 2 == 1) {
    std::swap(left, top);
    std::swap(width, height);
  }
  std::string inner = body;
  if (!transforms.empty()) {
    std::string joined;
    for (const auto& t : transforms) joined += (joined.empty() ? "" : " ") + t;
    inner = "<g transform=\"" + joined + "\">" + body + "</g>";
  }
  const std::string px = std::to_string(size);
  return "<svg xmlns=\"http://www.w3.org/2000/svg\" xmlns:xlink=\"http://www.w3.org/1999/xlink\" "
         "viewBox=\"" +
         json_number(left) + " " + json_number(top) + " " + json_number(width) + " " +
         json_number(height) + "\" width=\"" + px + "\" height=\"" + px + "\" color=\"#000000\">" +
         inner + "</svg>";
}

SetContent read_icon_set(const std::string& path, const std::string& prefix, int size) {
  HALO_CHECK(fs::is_regular_file(path), "iconify: set '", prefix, "': file '", path, "' not found");
  YAML::Node root;
  try {
    root = YAML::LoadFile(path);
  } catch (const YAML::Exception& e) {
    HALO_FAIL("iconify: cannot parse '", path, "': ", e.what());
  }
  const std::string where = "iconify: '" + path + "'";
  HALO_CHECK(root.IsMap(), where, " is not a JSON object");
  const std::string file_prefix = text_of(root, "prefix");
  HALO_CHECK(file_prefix == prefix, where, " has prefix '", file_prefix, "', expected '", prefix,
             "'");
  const YAML::Node icons_node = child(root, "icons");
  HALO_CHECK(icons_node && icons_node.IsMap(), where, " has no 'icons' object");
  const Props set_props = read_props(root, where);

  std::map<std::string, Entry> icons, aliases;  // sorted by name: the output order
  for (const auto& kv : icons_node) {
    const std::string name = kv.first.Scalar();
    const std::string at = where + ", icon '" + name + "'";
    HALO_CHECK(kv.second.IsMap(), at, " is not an object");
    Entry e;
    e.props = read_props(kv.second, at);
    const YAML::Node body = child(kv.second, "body");  // may be empty: an empty icon
    HALO_CHECK(body && body.IsScalar(), at, " has no 'body'");
    e.body = body.Scalar();
    icons.emplace(name, std::move(e));
  }
  if (const YAML::Node aliases_node = child(root, "aliases");
      aliases_node && aliases_node.IsMap()) {
    for (const auto& kv : aliases_node) {
      const std::string name = kv.first.Scalar();
      const std::string at = where + ", alias '" + name + "'";
      HALO_CHECK(kv.second.IsMap(), at, " is not an object");
      Entry e;
      e.props = read_props(kv.second, at);
      e.parent = text_of(kv.second, "parent");
      HALO_CHECK(!e.parent.empty(), at, " has no 'parent'");
      if (icons.count(name) == 0) aliases.emplace(name, std::move(e));
    }
  }
  // Each icon's category: the first, in byte order of the category names, that lists it.
  std::map<std::string, std::string> category_of;
  if (const YAML::Node cats = child(root, "categories"); cats && cats.IsMap()) {
    std::map<std::string, YAML::Node> sorted;
    for (const auto& kv : cats) sorted.emplace(kv.first.Scalar(), kv.second);
    for (const auto& [category, list] : sorted) {
      if (!list.IsSequence()) continue;
      for (const auto& item : list) {
        if (item.IsScalar()) category_of.emplace(item.Scalar(), category);
      }
    }
  }

  SetContent out;
  auto box_of = [&](const std::vector<const Entry*>& chain) {
    // Iconify's mergeIconData: the nearest entry of the chain that sets a dimension (or hidden)
    // wins, then the set's value, then the default; rotations add up and flips cancel in pairs.
    IconBox box;
    auto pick = [&](std::optional<double> Props::*field, double fallback) {
      for (const Entry* e : chain) {
        if (e->props.*field) return *(e->props.*field);
      }
      return set_props.*field ? *(set_props.*field) : fallback;
    };
    box.left = pick(&Props::left, 0);
    box.top = pick(&Props::top, 0);
    box.width = pick(&Props::width, 16);
    box.height = pick(&Props::height, 16);
    for (const Entry* e : chain) {
      box.rotate += e->props.rotate.value_or(0);
      box.h_flip ^= e->props.h_flip.value_or(false);
      box.v_flip ^= e->props.v_flip.value_or(false);
    }
    return box;
  };
  auto hidden = [&](const std::vector<const Entry*>& chain) {
    for (const Entry* e : chain) {
      if (e->props.hidden) return *e->props.hidden;
    }
    return false;
  };
  for (const auto& [name, entry] : icons) {
    const std::vector<const Entry*> chain{&entry};
    if (hidden(chain)) {
      ++out.hidden;
      continue;
    }
    if (is_animated(entry.body)) {
      out.animated.push_back(name);
      continue;
    }
    auto it = category_of.find(name);
    out.icons.push_back({name, "", it == category_of.end() ? "" : it->second,
                         svg_document(entry.body, box_of(chain), size)});
  }
  for (const auto& [name, entry] : aliases) {
    std::vector<const Entry*> chain{&entry};
    std::string category;
    if (auto it = category_of.find(name); it != category_of.end()) category = it->second;
    std::string parent = entry.parent;
    const Entry* root_icon = nullptr;
    while (root_icon == nullptr && chain.size() <= aliases.size()) {
      if (category.empty()) {
        if (auto it = category_of.find(parent); it != category_of.end()) category = it->second;
      }
      if (auto it = icons.find(parent); it != icons.end()) {
        root_icon = &it->second;
        chain.push_back(root_icon);
      } else if (auto a = aliases.find(parent); a != aliases.end()) {
        chain.push_back(&a->second);
        parent = a->second.parent;
      } else {
        break;
      }
    }
    if (root_icon == nullptr) {
      out.broken.push_back(name);
      continue;
    }
    if (hidden(chain)) {
      ++out.hidden;
      continue;
    }
    if (is_animated(root_icon->body)) {
      out.animated.push_back(name);
      continue;
    }
    out.icons.push_back(
        {name, parent, category, svg_document(root_icon->body, box_of(chain), size)});
  }
  return out;
}

bool is_animated(const std::string& body) {
  for (size_t at = body.find('<'); at != std::string::npos; at = body.find('<', at + 1)) {
    if (body.compare(at + 1, 7, "animate") == 0) return true;
    if (body.compare(at + 1, 3, "set") == 0 && at + 4 < body.size()) {
      const char next = body[at + 4];
      if (next == ' ' || next == '/' || next == '>' || next == '\t' || next == '\n' ||
          next == '\r') {
        return true;
      }
    }
  }
  return false;
}

std::string caption_for(const std::string& name, const std::string& category) {
  std::string words = name;
  std::replace(words.begin(), words.end(), '-', ' ');
  std::replace(words.begin(), words.end(), '_', ' ');
  words = collapse_spaces(lower_utf8(words));
  const std::string cat = category_text(category);
  return cat.empty() ? words : words + ", " + cat;
}

std::string category_text(const std::string& category) {
  std::string spaced;  // "InterfaceEssential" -> "Interface Essential"
  for (size_t i = 0; i < category.size(); ++i) {
    const char c = category[i];
    if (i > 0 && c >= 'A' && c <= 'Z' && category[i - 1] >= 'a' && category[i - 1] <= 'z') {
      spaced += ' ';
    }
    spaced += c;
  }
  return collapse_spaces(lower_utf8(spaced));
}

std::string class_key(const std::string& category) {
  std::string text = category_text(category);
  std::replace(text.begin(), text.end(), '&', ' ');
  return collapse_spaces(text);
}

}  // namespace halo::data::iconify
