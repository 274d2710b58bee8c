// prepare tuxpaint: every stamp PNG under --source (any depth) whose .txt beside it starts with
// an English caption ("A male black rhino."); stamps without a usable .txt are skipped and counted.
#include <algorithm>
#include <filesystem>
#include <fstream>

#include "common/error.h"
#include "data/prepare.h"

namespace halo::data {

namespace fs = std::filesystem;

namespace {

// The first line of a stamp's .txt without a UTF-8 byte order mark or a trailing CR; empty
// when the file cannot be read.
std::string first_line(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::string line;
  if (!in || !std::getline(in, line)) return "";
  if (line.rfind("\xEF\xBB\xBF", 0) == 0) line.erase(0, 3);
  if (!line.empty() && line.back() == '\r') line.pop_back();
  return line;
}

}  // namespace

Collected collect_tuxpaint(const PrepareOptions& options) {
  const fs::path source(options.source);
  std::error_code ec;
  const fs::path out_folder = fs::weakly_canonical(options.out, ec);
  std::vector<fs::path> stamps;  // relative to source
  for (auto it =
           fs::recursive_directory_iterator(source, fs::directory_options::skip_permission_denied);
       it != fs::recursive_directory_iterator(); ++it) {
    if (it->is_directory() && fs::weakly_canonical(it->path(), ec) == out_folder) {
      it.disable_recursion_pending();  // --out inside --source: not our own copies
    } else if (it->is_regular_file() && it->path().extension() == ".png") {
      stamps.push_back(fs::relative(it->path(), source));
    }
  }
  std::sort(stamps.begin(), stamps.end());  // directory order is not stable across filesystems

  Collected out;
  int64_t no_txt = 0, bad_utf8 = 0, empty = 0;
  std::vector<std::pair<fs::path, std::string>> pairs;
  for (const auto& stamp : stamps) {
    const fs::path txt = (source / stamp).replace_extension(".txt");
    if (!fs::is_regular_file(txt)) {
      ++no_txt;
      continue;
    }
    const std::string line = first_line(txt);
    if (!is_valid_utf8(line)) {
      ++bad_utf8;
      continue;
    }
    if (sanitize_caption(line).empty()) {
      ++empty;
      continue;
    }
    pairs.emplace_back(stamp, line);
  }
  out.skip("no .txt beside the .png (e.g. *_mirror.png)", no_txt);
  out.skip("first line of the .txt is not UTF-8", bad_utf8);
  out.skip("empty first line in the .txt", empty);
  HALO_CHECK(!stamps.empty(), "tuxpaint: no .png files under --source '", options.source, "'");
  if (options.limit > 0 && static_cast<int64_t>(pairs.size()) > options.limit) {
    pairs.resize(static_cast<size_t>(options.limit));
  }

  // Copied under OUT/images/ with their folders, so that OUT is self-contained.
  Progress progress("tuxpaint", 5000, options.verbose);
  for (const auto& [stamp, caption] : pairs) {
    const std::string relative = (fs::path("images") / stamp).generic_string();
    copy_image((source / stamp).string(), (fs::path(options.out) / relative).string());
    ManifestRow row;
    row.image_path = relative;
    row.caption = row.original_caption = caption;
    out.rows.push_back(std::move(row));
    progress.tick();
  }
  return out;
}

}  // namespace halo::data
