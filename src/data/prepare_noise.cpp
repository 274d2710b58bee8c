// prepare noise: the pairs of any manifest (TSV, or CSV by its extension) as they are, so that
// prepare_dataset() swaps a seeded fraction of their captions and records the ground truth, as
// for the built-in sets. Images stay where they are: the new manifest points at them.
#include <filesystem>
#include <fstream>

#include "common/error.h"
#include "data/manifest.h"
#include "data/prepare.h"

namespace halo::data {

namespace fs = std::filesystem;

Collected collect_manifest(const PrepareOptions& options) {
  ManifestOptions mo;
  mo.separator = fs::path(options.source).extension() == ".csv" ? ',' : '\t';
  mo.image_key = options.image_key;
  mo.caption_key = options.caption_key;
  mo.skip_bad = true;  // rows with an empty or invalid caption are counted, as for the other sets
  const Manifest m = read_manifest(options.source, mo);
  Collected out;
  HALO_CHECK(!fs::exists(fs::path(options.out) / "manifest.tsv") ||
                 !fs::equivalent(fs::path(options.out) / "manifest.tsv", options.source),
             "--out '", options.out, "' would overwrite --manifest '", options.source,
             "': choose another folder");
  // Resolved through the file system (symbolic links included), as the reader will resolve them.
  const fs::path out_dir = fs::weakly_canonical(fs::absolute(options.out));
  for (int64_t i = 0; i < m.size(); ++i) {
    const auto r = static_cast<size_t>(i);
    ManifestRow row;
    row.image_path =
        fs::weakly_canonical(fs::absolute(m.images[r])).lexically_relative(out_dir).string();
    row.original_caption = m.captions[r];
    row.label = m.labels.empty() ? -1 : m.labels[r];
    out.rows.push_back(std::move(row));
  }
  for (const auto& s : m.skipped) out.skip(s.reason);
  // Class names travel with the labels.
  const fs::path classes = fs::path(options.source).parent_path() / "classes.txt";
  if (!m.labels.empty() && fs::is_regular_file(classes)) {
    std::ifstream in(classes);
    for (std::string line; std::getline(in, line);) {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      out.classes.push_back(line);
    }
  }
  return out;
}

}  // namespace halo::data
