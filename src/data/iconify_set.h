// Reading the Iconify icon sets (@iconify/json): collections.json (the sets, their authors,
// licences and categories) and one IconifyJSON file per set (json/PREFIX.json). Each visible
// icon and alias becomes one complete <svg> document to render, with its caption and category.
// Also the split of the sets (zero-shot emoji pool, held-out validation sets, training pool).
// docs/data.md ("The icon corpus (Iconify)") states the rules; `prepare iconify` uses them.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace halo::data::iconify {

enum class Split { kEmoji = 0, kVal = 1, kTrain = 2 };
const char* split_name(Split split);  // "emoji", "val", "train"

// The category of collections.json whose sets form the zero-shot evaluation pool.
inline const char* emoji_category() {
  return "Emoji";
}
// The sets held out as in-style validation (split val), about 5% of the non-emoji icons, one
// from each of several categories (docs/data.md says why each).
const std::vector<std::string>& held_out_sets();

// One set as collections.json describes it.
struct SetInfo {
  std::string prefix, name, author, author_url, license_title, license_spdx, license_url;
  std::string category;  // "" when the set has none
  bool palette = false;  // multicolour
  int64_t total = 0;     // visible icons, as collections.json counts them
  Split split = Split::kTrain;
};

// collections.json, in its order, each set with its split. Throws naming the file and the set
// for a set without a name or a licence.
std::vector<SetInfo> read_collections(const std::string& path);

// One icon or alias to render.
struct Icon {
  std::string name;
  std::string parent;    // for an alias: the icon its chain ends at; "" for an icon
  std::string category;  // its category within the set, "" when none
  std::string document;  // the complete <svg> document
};

struct SetContent {
  std::vector<Icon> icons;  // the set's icons sorted by name, then its aliases sorted by name
  int64_t hidden = 0;       // icons and aliases left out because they are hidden
  std::vector<std::string> animated;  // left out: SMIL animations (see is_animated)
  std::vector<std::string>
      broken;  // aliases left out: their chain reaches no icon (a loop, a missing parent)
};

// True when the body animates (an <animate>, <animateTransform>, <animateMotion> or <set>
// element). librsvg draws no animation, so such an icon would show its first frame, which for a
// drawing animation (line-md's strokes) is an unfinished icon.
bool is_animated(const std::string& body);

// Reads json/PREFIX.json. `size` is the rendered width and height in pixels. Throws naming the
// file (and the icon) when it is not IconifyJSON: no `icons`, an icon without a `body`, a
// prefix other than `prefix`.
SetContent read_icon_set(const std::string& path, const std::string& prefix, int size);

// The geometry and transformations of an icon after its alias chain is merged (Iconify's
// defaults: left = top = 0, width = height = 16, no rotation, no flips).
struct IconBox {
  double left = 0, top = 0, width = 16, height = 16;
  int rotate = 0;  // quarter turns clockwise
  bool h_flip = false, v_flip = false;
};

// The <svg> document of `body`: viewBox from `box` (after the flips and rotation, applied as
// Iconify's iconToSVG does), `size` x `size` pixels, xmlns and xmlns:xlink declared, and
// color="#000000" on the root so that currentColor draws black.
std::string svg_document(const std::string& body, const IconBox& box, int size);

// The caption: the icon's name with '-' and '_' read as spaces ("access-point-network" ->
// "access point network", lower-cased), then ", " and the category as category_text() writes it
// where the icon has one.
std::string caption_for(const std::string& name, const std::string& category);
// A category as the caption writes it: words joined in camel case split ("InterfaceEssential"
// -> "Interface Essential"), lower-cased, white space collapsed ("Account / User" -> "account /
// user").
std::string category_text(const std::string& category);

// Emoji sets spell their groups differently ("Animals & Nature", "Animals Nature"): the class
// key of a category is its lower-cased words without '&' ("animals nature"); the classes are
// named by the key's most used spelling, lower-cased ("animals & nature").
std::string class_key(const std::string& category);

}  // namespace halo::data::iconify
