// Reading an image-caption manifest: a TSV (or CSV) file with a header line naming the
// columns; image paths are relative to the manifest's folder. Column names and separator are
// settable (open_clip's CSV loader: --csv-separator, --csv-img-key, --csv-caption-key). An
// optional `mismatched` column (0/1) carries the ground truth of injected mismatches.
#pragma once
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace halo::data {

struct ManifestOptions {
  char separator = '\t';
  std::string image_key = "image_path";
  std::string caption_key = "caption";
  bool skip_bad = false;            // skip (and count) rows with an empty or invalid caption
  std::string label_key = "label";  // optional column: class index for zero-shot classification
  bool keep_raw_lines = false;      // keep each row's text (filter writes rows back out)
};

struct Manifest {
  std::string path;                 // the manifest file
  std::vector<std::string> images;  // resolved paths (manifest folder / relative path)
  std::vector<std::string> captions;
  std::vector<int8_t> mismatched;      // per row, when the manifest has the column; else empty
  std::vector<int64_t> labels;         // per row, when the manifest has a label column; else empty
  std::vector<int64_t> lines;          // per row, its line number in the file
  std::vector<std::string> raw_lines;  // per row, its text (only with keep_raw_lines)
  int64_t skipped_rows = 0;            // rows dropped under skip_bad
  struct SkippedRow {
    int64_t line;
    std::string reason;
  };
  std::vector<SkippedRow> skipped;  // each of them, with the reason
  int64_t size() const { return static_cast<int64_t>(images.size()); }
};

// Reads a manifest in chunks (a file larger than memory streams through).
class ManifestReader {
 public:
  ManifestReader(const std::string& path, const ManifestOptions& options);
  // Appends up to max_rows usable rows to `m`; returns how many (0 at the end of the file).
  int64_t read(Manifest& m, int64_t max_rows);
  const std::string& header() const { return header_; }
  const std::vector<std::string>& header_fields() const { return header_fields_; }
  int64_t image_column() const { return image_col_; }

 private:
  std::string path_;
  ManifestOptions options_;
  std::ifstream in_;
  std::filesystem::path root_;
  std::string header_;
  std::vector<std::string> header_fields_;
  int64_t image_col_ = -1, caption_col_ = -1, flag_col_ = -1, label_col_ = -1, line_no_ = 1;
  size_t needed_ = 0;
};

// Throws halo::Error naming the file (and line) for: a missing file, a missing column, a row
// with too few fields, an empty caption or one that is not valid UTF-8 (unless skip_bad).
Manifest read_manifest(const std::string& path, const ManifestOptions& options);

// A JSON Lines list (one object per line, as many tools export image-caption lists): the
// image path (relative to the file's folder) under options.image_key, the caption under
// options.caption_key, optional `mismatched` (0/1 or a boolean) and options.label_key. `lines`
// are the file's line numbers (from 1). Errors name file:line, as read_manifest's do.
Manifest read_jsonl_manifest(const std::string& path, const ManifestOptions& options);

// The rows of `m` at the given positions (every per-row field follows).
Manifest subset(const Manifest& m, const std::vector<int64_t>& rows);

// The fold of a data row for k-fold cross-scoring: (line number - 2) mod k.
inline int64_t fold_of_line(int64_t line, int64_t folds) {
  return (line - 2) % folds;
}

// Splits one line at the separator; a field may be wrapped in double quotes (CSV), with ""
// standing for a quote inside it.
std::vector<std::string> split_fields(const std::string& line, char separator);

// True when `s` is well-formed UTF-8 (captions must be).
bool valid_utf8(const std::string& s);

// A value made safe for one field of a tab-separated output file: tabs and line breaks become
// spaces.
std::string tsv_field(std::string value);

}  // namespace halo::data
