// Reading an image-caption manifest: a TSV (or CSV) file with a header line naming the
// columns; image paths are relative to the manifest's folder. Column names and separator are
// settable (open_clip's CSV loader: --csv-separator, --csv-img-key, --csv-caption-key). An
// optional `mismatched` column (0/1) carries the ground truth of injected mismatches.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace halo::data {

struct ManifestOptions {
  char separator = '\t';
  std::string image_key = "image_path";
  std::string caption_key = "caption";
  bool skip_bad = false;  // skip (and count) rows with an empty or invalid caption
};

struct Manifest {
  std::string path;                  // the manifest file
  std::vector<std::string> images;   // resolved paths (manifest folder / relative path)
  std::vector<std::string> captions;
  std::vector<int8_t> mismatched;    // per row, when the manifest has the column; else empty
  int64_t skipped_rows = 0;          // rows dropped under skip_bad
  int64_t size() const { return static_cast<int64_t>(images.size()); }
};

// Throws halo::Error naming the file (and line) for: a missing file, a missing column, a row
// with too few fields, an empty caption or one that is not valid UTF-8 (unless skip_bad).
Manifest read_manifest(const std::string& path, const ManifestOptions& options);

// Splits one line at the separator; a field may be wrapped in double quotes (CSV), with ""
// standing for a quote inside it.
std::vector<std::string> split_fields(const std::string& line, char separator);

}  // namespace halo::data
