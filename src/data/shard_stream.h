// One split's WebDataset shards written as a stream whose size is known only at its end, then
// shuffled across the split and balanced: what `prepare iconify` writes each split with
// (prepare_iconify.cpp), rendered set after set.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "data/shard_writer.h"
#include "data/tar_reader.h"

namespace halo::data {

// The name of shard `index` of a split: 00000.tar, 00001.tar, ...
std::string shuffled_shard_name(int64_t index);

// add() writes samples_per_shard samples to a shard in arrival order; finish() rewrites the split,
// through a temporary folder, into ceil(N / samples_per_shard) shards whose counts differ by at
// most one (as `prepare shards` writes them) and whose samples follow a seeded random order of
// the whole split, then writes sizes.json. Rendered in set order, a shard would hold one or two
// sets, and so would every batch a loader's shuffle buffer draws from it.
class ShuffledShardStream {
 public:
  ShuffledShardStream(std::string folder, int64_t samples_per_shard, uint64_t seed);
  void add(const ShardSample& sample);
  // Nothing is written for a split without samples.
  void finish();
  int64_t shards() const { return static_cast<int64_t>(sizes_.size()); }
  // The folder, inside the split's, that finish() rewrites through (removed when it is done).
  static const char* temporary_folder() { return ".rebalance"; }

 private:
  void close_shard();
  void shuffle_and_balance();

  std::string folder_;
  int64_t per_shard_;
  uint64_t seed_;
  int64_t total_ = 0;
  std::unique_ptr<ShardWriter> writer_;
  std::vector<std::pair<std::string, int64_t>> sizes_;
};

}  // namespace halo::data
