// Turning a fetched data set (scripts/fetch_data.sh) into a manifest: OUT/manifest.tsv plus the
// images under OUT/images/, optionally with a seeded fraction of captions swapped between pairs
// (the `mismatched` ground truth). One collect_* function per data set, in prepare_<set>.cpp.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "data/manifest_writer.h"

namespace halo::data {

struct PrepareOptions {
  std::string source;              // the set's fetched folder (e.g. data/raw/emoji-google)
  std::string out;                 // output folder (created)
  double mismatch_fraction = 0.0;  // in [0, 1)
  uint64_t seed = 0;               // mismatch choice and caption templates
  int64_t limit = -1;              // keep the first N pairs; < 0: all
  std::string split = "train";     // MNIST sets: train or test
  bool skin_tones = false;         // emoji: also the skin-tone variations
  std::string image_key = "image_path", caption_key = "caption";  // noise: the source's columns
  bool overwrite = false;  // shard outputs: replace a shard set already in `out`
  bool verbose = true;     // progress and summary lines on stdout
};

// What a collect_* function found, before mismatches are injected.
struct Collected {
  std::vector<ManifestRow> rows;                         // captions in original_caption too
  std::vector<std::pair<std::string, int64_t>> skipped;  // reason, count (zeros kept: printed)
  std::vector<std::string> classes;                      // class names (classification sets)
  void skip(const std::string& reason, int64_t count = 1);
};

struct PrepareReport {
  std::string manifest_path;
  int64_t written = 0;
  int64_t mismatched = 0;
  std::vector<std::pair<std::string, int64_t>> skipped;
  double seconds = 0.0;
};

// The sets `prepare` knows, with a one-line description each.
const std::vector<std::pair<std::string, std::string>>& prepare_sets();

// Checks the options (flag names in the messages) and that the source folder (for `noise`: the
// source manifest) exists.
void validate_prepare_options(const PrepareOptions& options, const std::string& set = "");

// Runs one set end to end: collect, --limit, mismatches, images, manifest (and classes.txt).
PrepareReport prepare_dataset(const std::string& set, const PrepareOptions& options);

// Chooses round(fraction * N) rows with std::mt19937_64(seed) and rotates their captions by one
// place along the chosen (shuffled) order. Sets `mismatched` exactly where the new caption text
// differs from `original_caption`, and returns that count. Throws naming --mismatch-fraction
// when the fraction is outside [0, 1).
int64_t inject_mismatches(std::vector<ManifestRow>& rows, double fraction, uint64_t seed);

// Per-set collection (prepare_emoji.cpp, prepare_tuxpaint.cpp, prepare_mnist.cpp). They may
// copy or write images under options.out/images and return paths relative to options.out.
Collected collect_emoji(const PrepareOptions& options, const std::string& style);
Collected collect_tuxpaint(const PrepareOptions& options);
Collected collect_mnist(const PrepareOptions& options, bool fashion);
// noise: options.source is a manifest file (prepare_noise.cpp).
Collected collect_manifest(const PrepareOptions& options);
// noise on a shard set (options.source a shard pattern): a new shard set under options.out with
// the same names, captions swapped and the ground truth in each sample's json
// (prepare_noise_shards.cpp). prepare_dataset("noise", ...) calls it for shard patterns.
PrepareReport prepare_noise_shards(const PrepareOptions& options);

// Shared helpers for the collectors.
// Copies `from` to `to` (creating folders) unless `to` already holds a file of the same size.
void copy_image(const std::string& from, const std::string& to);
// Lower-cases ASCII letters and the Latin-1 capitals (U+00C0..U+00DE) of UTF-8 text.
std::string lower_utf8(const std::string& text);
// A progress line every `every` items: "<what>: N items, R/s".
class Progress {
 public:
  Progress(std::string what, int64_t every, bool verbose);
  void tick();

 private:
  std::string what_;
  int64_t every_, count_ = 0;
  bool verbose_;
  double start_;
};

}  // namespace halo::data

// prepare iconify (prepare_iconify.cpp): the Iconify icon sets (@iconify/json, fetched by
// scripts/fetch_data.sh --only iconify) rendered with librsvg and written straight into
// WebDataset shards, split by style into OUT/emoji (the zero-shot pool), OUT/val (held-out
// sets) and OUT/train, exact duplicates collapsed and evaluation images removed from the
// training pool; OUT/prepared.json, OUT/ATTRIBUTION.md and OUT/sets.tsv beside them.
// docs/data.md ("The icon corpus (Iconify)") has the rules.
namespace halo::data {

struct IconifyOptions {
  std::string source;                      // the folder holding collections.json and json/
  std::string out;                         // output folder (created)
  int size = 64;                           // rendered width and height in pixels
  int threads = 0;                         // render threads; 0: the hardware's
  int64_t samples_per_shard = 10000;       // at most, per shard
  int64_t limit_sets = -1;                 // > 0: the first N sets of each split only
  std::vector<std::string> sets;           // non-empty: only these prefixes
  std::vector<std::string> decontaminate;  // manifests or shard patterns of other evaluation sets
  bool overwrite = false;                  // replace an output already in `out`
  bool verbose = true;                     // progress and summary lines on stdout
};

// What happened to the icons of one split (prepared.json holds the same).
struct IconifySplitCounts {
  int64_t sets = 0;
  int64_t hidden = 0;          // hidden icons and aliases, left out
  int64_t animated = 0;        // animated icons and aliases, left out (OUT/skipped.tsv)
  int64_t broken_aliases = 0;  // aliases whose chain reaches no icon, left out (OUT/skipped.tsv)
  int64_t rendered = 0;        // icons and aliases drawn (or known identical to one drawn)
  int64_t failed = 0;          // librsvg could not draw them (OUT/skipped.tsv)
  int64_t blank = 0;           // drawn as one flat colour (OUT/skipped.tsv)
  int64_t before = 0;          // rendered - failed - blank: the images considered
  int64_t collapsed = 0;       // exact duplicates of an earlier image of the split
  int64_t removed = 0;         // train only: images also in an evaluation set
  std::vector<std::pair<std::string, int64_t>> removed_by;  // per evaluation set ("emoji", ...)
  int64_t written = 0;                                      // samples in the split's shards
  int64_t shards = 0;
};

struct IconifyReport {
  bool already_complete = false;  // the output was there, complete and matching: nothing done
  IconifySplitCounts emoji, val, train;
  int64_t classes = 0;  // emoji classes (OUT/emoji/classes.txt)
  double seconds = 0.0;
};

// Throws halo::Error naming the flag, file, set or icon at fault. An output folder that holds
// a complete prepared corpus made with the same inputs and settings is reported and left as it
// is; any other output already there is an error unless `overwrite`.
IconifyReport prepare_iconify(const IconifyOptions& options);

}  // namespace halo::data
