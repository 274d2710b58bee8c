// Writing image-caption manifests (the format read by manifest.h): a UTF-8 TSV file with the
// header image_path, caption, mismatched, original_caption (and label when rows carry one),
// written to a temporary name in the same folder and renamed, so a crash never leaves half a file.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace halo::data {

struct ManifestRow {
  std::string image_path;        // relative to the manifest's folder
  std::string caption;           // the caption used for training (possibly swapped)
  bool mismatched = false;       // ground truth: caption != original_caption
  std::string original_caption;  // the caption that belongs to the image
  int64_t label = -1;            // class index for classification sets (MNIST); -1: none
};

// Tabs, newlines and other control characters become spaces, runs of whitespace collapse to one
// space, and the ends are trimmed.
std::string sanitize_caption(const std::string& text);

// True when `text` is well-formed UTF-8 (no overlongs, surrogates or code points past U+10FFFF).
bool is_valid_utf8(const std::string& text);

// Writes the manifest atomically. Captions are sanitised on the way out; an empty caption, or an
// image path with a tab or newline, throws halo::Error naming the manifest and the row. The
// `label` column is written only when some row has a label >= 0.
void write_manifest(const std::string& path, const std::vector<ManifestRow>& rows);

}  // namespace halo::data
