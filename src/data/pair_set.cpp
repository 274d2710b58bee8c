// A set of pairs from a manifest or shards (see pair_set.h).
#include "data/pair_set.h"

#include <filesystem>

#include "common/error.h"
#include "data/shard_loader.h"
#include "data/shard_pattern.h"

namespace fs = std::filesystem;

namespace halo::data {

std::shared_ptr<const PairSet> PairSet::open(const std::string& source,
                                             const ManifestOptions& manifest, ShardIndex index) {
  auto set = std::make_shared<PairSet>();
  set->source_ = source;
  if (is_shard_source(source)) {
    auto shards = std::make_shared<ShardSet>(open_shard_set(source));
    if (index == ShardIndex::none) {
      auto empty = std::make_shared<Manifest>();
      empty->path = source;
      set->rows_ = empty;
    } else {
      set->rows_ =
          std::make_shared<Manifest>(index_shard_set(*shards, index == ShardIndex::captions));
    }
    set->shards_ = shards;
  } else {
    check_input_file(source, "manifest");
    set->rows_ = std::make_shared<Manifest>(read_manifest(source, manifest));
  }
  return set;
}

std::shared_ptr<const PairSet> PairSet::of_manifest(std::shared_ptr<const Manifest> manifest) {
  HALO_CHECK(manifest != nullptr, "internal: no manifest");
  auto set = std::make_shared<PairSet>();
  set->source_ = manifest->path;
  set->rows_ = std::move(manifest);
  return set;
}

std::shared_ptr<const PairSet> PairSet::shard_fold(int64_t folds, int64_t fold, bool complement,
                                                   ShardIndex index) const {
  HALO_CHECK(shards_ != nullptr, "internal: shard_fold of manifest '", source_, "'");
  HALO_CHECK(folds >= 2 && fold >= 0 && fold < folds, "internal: fold ", fold, " of ", folds);
  auto part = std::make_shared<ShardSet>();
  part->pattern = shards_->pattern;
  auto set = std::make_shared<PairSet>();
  for (size_t s = 0; s < shards_->shards.size(); ++s) {
    if ((static_cast<int64_t>(s) % folds == fold) == complement) continue;
    part->shards.push_back(shards_->shards[s]);
    part->sizes.push_back(shards_->sizes[s]);
    part->offsets.push_back(part->total);
    part->total += shards_->sizes[s];
    for (int64_t i = 0; i < shards_->sizes[s]; ++i)
      set->whole_set_rows_.push_back(shards_->offsets[s] + i);
  }
  HALO_CHECK(part->total > 0, "'", source_, "' has ", shards_->shards.size(),
             " shard(s): no shard is in ", complement ? "the folds other than " : "", "fold ", fold,
             " of ", folds, " (shard i is in fold i mod ", folds, ")");
  set->source_ = source_;
  set->shards_ = part;
  if (index == ShardIndex::none) {
    auto empty = std::make_shared<Manifest>();
    empty->path = source_;
    set->rows_ = empty;
  } else {
    set->rows_ = std::make_shared<Manifest>(index_shard_set(*part, index == ShardIndex::captions));
  }
  return set;
}

int64_t PairSet::size() const {
  return shards_ ? shards_->total : rows_->size();
}

std::string PairSet::folder() const {
  return pair_source_folder(source_);
}

std::unique_ptr<BatchSource> PairSet::loader(TextEncoder encode_text, const LoaderOptions& options,
                                             int64_t shuffle_buffer) const {
  if (shards_)
    return std::make_unique<ShardLoader>(shards_, std::move(encode_text), options, shuffle_buffer);
  return std::make_unique<BatchLoader>(rows_, std::move(encode_text), options);
}

std::string pair_source_folder(const std::string& source) {
  return fs::absolute(is_shard_source(source) ? expand_shard_pattern(source).front() : source)
      .parent_path()
      .string();
}

void check_pair_source(const std::string& source, const std::string& what, const std::string& key) {
  if (is_shard_source(source)) {
    existing_shards(source);
  } else {
    check_input_file(source, what, key);
  }
}

}  // namespace halo::data
