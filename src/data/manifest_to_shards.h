// `prepare shards`: a manifest written as WebDataset shards in img2dataset's layout. Samples
// keep the manifest's order and are keyed by it (zero-padded row numbers, so keys sort as the
// rows); the shards are size-balanced (their counts differ by at most one) and hold the
// original image bytes; sizes.json lists them. Every file appears only complete.
#pragma once
#include <cstdint>
#include <string>

#include "data/manifest.h"

namespace halo::data {

struct ManifestToShardsOptions {
  std::string out;                    // output folder (created)
  int64_t samples_per_shard = 10000;  // at most; img2dataset's default
  bool overwrite = false;             // replace a shard set already in `out` (else an error)
  bool verbose = true;
};

struct ManifestToShardsReport {
  std::string pattern;  // OUT/{00000..000NN}.tar: what data.train_manifest takes
  int64_t shards = 0, samples = 0;
};

// Throws halo::Error naming the manifest line of an image that is missing or not a .jpg,
// .jpeg, .png or .webp file (shards keep the bytes, and readers know only those types).
ManifestToShardsReport write_manifest_as_shards(const Manifest& manifest,
                                                const ManifestToShardsOptions& options);

}  // namespace halo::data
