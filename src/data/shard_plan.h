// Which samples of a shard set each process and loader worker reads in an epoch, decided from
// the per-shard counts alone (never from the bytes), so that every rank can compute every
// rank's share and a resumed run can find its place. Each epoch the shards go to W x workers
// streams by size (largest first, each to the stream with the fewest samples so far; shards of
// equal size in an order drawn from (seed, epoch)), so uneven shards cost at most one shard's
// samples per stream. Each worker streams its shards through a shuffle buffer and cuts the
// stream into batches; the rank's batches take the workers in turn.
#pragma once
#include <cstdint>
#include <functional>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "data/manifest.h"

namespace halo::data {

// The shards of a training or evaluation source, with their sample counts (from sizes.json,
// else counted once) and the global index of each shard's first sample (shards in pattern
// order): sample i of shard s is pair offsets[s] + i, its identity for pair dynamics and scores.
struct ShardSet {
  std::string pattern;
  std::vector<std::string> shards;
  std::vector<int64_t> sizes, offsets;
  int64_t total = 0;
  int64_t counted = 0;  // shards that no sizes.json listed (read once to count)
};

// Expands the pattern, checks that each shard exists, and reads or counts the sizes.
ShardSet open_shard_set(const std::string& pattern);

// The shard set as a manifest without images or captions, one row per sample in shard set
// order (row = ShardSet index): `images` holds each sample's key, `lines` its row + 2 (as a
// TSV's data line), `mismatched` and `labels` the json fields when every sample has them.
// What pair dynamics and the embedding diagnostics name and look up rows by. Reads every
// shard's headers, captions and json once (images skipped). With captions, `captions` holds
// them too ("" for an unusable sample), as evaluation shows them.
Manifest index_shard_set(const ShardSet& set, bool captions = false);

// Every usable caption of the shard set, in shard order, handed to `take` one at a time (the
// corpus a tokenizer trains on; images are skipped, memory holds one sample).
void for_each_shard_caption(const ShardSet& set,
                            const std::function<void(const std::string&)>& take);

// One loader worker's stream in an epoch: its shards in order and its batches.
struct WorkerStream {
  std::vector<int64_t> shards;  // indices into ShardSet::shards
  int64_t samples = 0;
  int64_t batches = 0;
};

struct EpochPlan {
  std::vector<WorkerStream> workers;  // of this rank
  // Batch b of the epoch is batch `owner[b].second` of worker `owner[b].first`.
  std::vector<std::pair<int64_t, int64_t>> owner;
};

struct PlanOptions {
  int64_t batch_size = 32, rank = 0, world_size = 1, workers = 1;
  uint64_t seed = 0;
  bool shuffle = true, drop_last = true;
};

// This rank's plan. With drop_last (training) every worker of every rank gives the same number
// of batches in every epoch, batches_per_worker(): what the stream with the fewest samples
// fills (the stream totals are the same in every epoch); samples beyond it wait for a later
// epoch. Without drop_last (evaluation) each worker gives all its samples, the last batch
// shorter.
EpochPlan plan_epoch(const std::vector<int64_t>& shard_sizes, const PlanOptions& options,
                     int64_t epoch);

// Full batches every worker gets in every epoch under drop_last. Throws when there are fewer
// shards than processes x workers.
int64_t batches_per_worker(const std::vector<int64_t>& shard_sizes, const PlanOptions& options);

// The share of the samples an epoch uses under drop_last (the loader logs it and warns below
// 0.95).
double epoch_sample_share(const std::vector<int64_t>& shard_sizes, const PlanOptions& options);

// The mixing of a worker's stream: items enter in stream order; once `capacity` are held, each
// new one makes a uniformly drawn one leave; at the end the rest leave in drawn order.
// Capacity 1 keeps the order. What leaves when depends only on the seed and the count.
template <class T>
class ShuffleBuffer {
 public:
  ShuffleBuffer(int64_t capacity, uint64_t seed)
      : capacity_(static_cast<size_t>(capacity)), rng_(seed) {}
  // Adds one item; true when one leaves (into `out`).
  bool push(T item, T& out) {
    items_.push_back(std::move(item));
    if (items_.size() < capacity_) return false;
    return take(out);
  }
  // At the end of the stream: true while items are left (one into `out`).
  bool drain(T& out) { return !items_.empty() && take(out); }
  size_t size() const { return items_.size(); }

 private:
  bool take(T& out) {
    const size_t j = static_cast<size_t>(rng_() % items_.size());
    std::swap(items_[j], items_.back());
    out = std::move(items_.back());
    items_.pop_back();
    return true;
  }
  size_t capacity_;
  std::mt19937_64 rng_;
  std::vector<T> items_;
};

// The seed of a worker's shuffle buffer in an epoch.
uint64_t shuffle_buffer_seed(uint64_t seed, int64_t epoch, int64_t rank, int64_t worker);

}  // namespace halo::data
