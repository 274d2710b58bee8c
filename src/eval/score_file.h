// Precomputed pair scores for `halo-clip filter --scores-file`: one column of a tab-separated
// file with a `line` column that names each pair's line in the manifest (the format of
// RUN_DIR/pair_dynamics.tsv, of eval's pair_scores.tsv and of filter's scores.tsv). For a
// shard set, line = the sample's index in the set + 2, and the file's `image_path` column (the
// sample's key in a shard run's pair_dynamics.tsv), when there is one, must match. Every mistake
// in joining it to a manifest is an error that names the file, the column and the line.
#pragma once
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace halo::eval {

class ScoreFile {
 public:
  // Reads `path` and keeps column `column` by manifest line. Throws halo::Error when the file
  // cannot be read, has no `line` column or no such score column (listing those it has), a
  // row has too few fields, a line number is not a positive integer, or two rows name the
  // same manifest line.
  ScoreFile(const std::string& path, const std::string& column);

  // True when the file's row for `line` holds "-": no score (a pair_dynamics.tsv row of a pair
  // never trained on, e.g. an unreadable image). Such a pair is skipped, not an error.
  bool has_no_score(int64_t line) const;

  // The score of manifest line `line`. Throws halo::Error naming `manifest` and the line when
  // the file has no row for it, or the file row when its value is not a finite number.
  double score(int64_t line, const std::string& manifest) const;

  // Throws halo::Error naming the first row of the file whose manifest line is neither in
  // `used` nor in `skipped` (rows of the manifest that were left out as unreadable): the file
  // was written for another manifest.
  void check_all_used(const std::set<int64_t>& used, const std::set<int64_t>& skipped,
                      const std::string& manifest) const;

  // The row's `image_path` for `line` ("" when the file has no such column or no such row).
  std::string image_of(int64_t line) const;

  const std::string& path() const { return path_; }
  const std::string& column() const { return column_; }
  int64_t rows() const { return static_cast<int64_t>(by_line_.size()); }

 private:
  struct Entry {
    int64_t file_line;  // where the row is in the score file (the header is line 1)
    std::string value, image;
  };
  std::string path_, column_;
  std::map<int64_t, Entry> by_line_;  // manifest line -> row
};

}  // namespace halo::eval
