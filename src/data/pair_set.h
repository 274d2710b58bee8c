// A set of image-text pairs, wherever it is stored: a manifest (TSV, CSV) or WebDataset shards
// (a .tar brace pattern). Training, validation, evaluation and filtering all take one, so the
// choice between the two formats is made here, once: each command asks the set for its rows
// (what is known of every pair without decoding an image) and for a batch source over them.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "data/loader.h"
#include "data/manifest.h"
#include "data/shard_plan.h"

namespace halo::data {

class PairSet {
 public:
  // What to read of a shard set's samples when it is opened (a manifest is always read whole).
  enum class ShardIndex {
    none,      // sizes only: rows() is empty (training without pair dynamics)
    keys,      // keys and json fields (mismatched, label): pair dynamics, scores
    captions,  // keys, json fields and captions: evaluation shows them
  };

  // Opens `source`: shards when it names .tar files (data::is_shard_source), else a manifest
  // read with `manifest` (its columns, separator and skip_bad). Errors name the file.
  static std::shared_ptr<const PairSet> open(const std::string& source,
                                             const ManifestOptions& manifest,
                                             ShardIndex index = ShardIndex::captions);
  // A manifest already in memory (e.g. one fold of it).
  static std::shared_ptr<const PairSet> of_manifest(std::shared_ptr<const Manifest> manifest);

  const std::string& source() const { return source_; }
  bool sharded() const { return shards_ != nullptr; }
  // Pairs in the set: the rows that batches number (for shards, every sample sizes.json counts).
  int64_t size() const;
  // One row per pair in set order: image path (shards: the sample's key), caption, and the
  // `mismatched` and line columns where every pair has them; `label` where every pair of a
  // manifest has one, or any sample of a shard set (-1 for a sample without). For shards opened
  // with ShardIndex::none it is empty.
  const Manifest& rows() const { return *rows_; }
  std::shared_ptr<const Manifest> rows_shared() const { return rows_; }
  // The shards (null for a manifest).
  std::shared_ptr<const ShardSet> shards() const { return shards_; }
  // The folder a classes.txt beside the data would be in (absolute): the manifest's, or the first
  // shard's.
  std::string folder() const;
  // Cross-scoring a shard set splits it by whole shards: shard i (in pattern order) is in fold
  // i mod folds. The pairs of fold `fold`, or with `complement` those of every other fold, as a
  // shard set of its own (rows indexed as `index` asks). Only for shards.
  std::shared_ptr<const PairSet> shard_fold(int64_t folds, int64_t fold, bool complement,
                                            ShardIndex index) const;
  // For a set made by shard_fold: each of its rows' index in the whole set (empty otherwise).
  const std::vector<int64_t>& whole_set_rows() const { return whole_set_rows_; }

  // A batch source over every pair. shuffle_buffer: samples each shard worker mixes (1: stream
  // order); a manifest ignores it.
  std::unique_ptr<BatchSource> loader(TextEncoder encode_text, const LoaderOptions& options,
                                      int64_t shuffle_buffer = 1) const;

 private:
  std::string source_;
  std::shared_ptr<const Manifest> rows_;
  std::shared_ptr<const ShardSet> shards_;
  std::vector<int64_t> whole_set_rows_;
};

// Checks that `source` can be opened, naming `what` (and the configuration `key`, if any) in
// the error: each shard of a pattern exists, or the manifest is a readable file. Nothing is read.
void check_pair_source(const std::string& source, const std::string& what,
                       const std::string& key = "");

// The folder of a source without opening it, as an absolute path: the manifest's, or its first
// shard's.
std::string pair_source_folder(const std::string& source);

}  // namespace halo::data
