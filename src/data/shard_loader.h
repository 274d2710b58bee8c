// Batches streamed from WebDataset shards at constant memory. Each loader worker of each rank
// reads its own shards (data/shard_plan.h), mixes their samples through a shuffle buffer,
// decodes and cuts them into batches; the rank returns the workers' batches in turn. The order
// depends only on (seed, epoch, rank, workers) and the shards' sizes, not on thread timing, so
// a run resumed at batch k of an epoch sees the same batches as an uninterrupted one: each
// worker replays its stream up to the resume point without decoding, reading only the samples
// that are still in its shuffle buffer there (which ones is computed from the seed).
#pragma once
#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "data/batch_queue.h"
#include "data/loader.h"
#include "data/shard_plan.h"
#include "data/tar_reader.h"

namespace halo::data {

class ShardLoader : public BatchSource {
 public:
  // options.workers is the number of workers, each with its own shards (fewer when there are
  // fewer shards than processes x workers); shuffle_buffer the samples each worker holds for
  // mixing (1 or !options.shuffle: stream order).
  ShardLoader(std::shared_ptr<const ShardSet> shards, TextEncoder encode_text,
              LoaderOptions options, int64_t shuffle_buffer);
  ~ShardLoader() override;
  ShardLoader(const ShardLoader&) = delete;
  ShardLoader& operator=(const ShardLoader&) = delete;

  int64_t batches_per_epoch() const override;
  void start_epoch(int64_t epoch, int64_t first_batch = 0) override;
  std::optional<Batch> next() override;
  int64_t skipped_images() const override { return skipped_total_.load(); }
  // The batch per process, the processes, the loader workers actually used, the shuffle buffer,
  // the seed, and the shards with their sizes: each of them changes which worker reads what.
  DataLayout layout() const override;
  // Truncated or corrupt shards met so far (each reported once in the log).
  int64_t broken_shards() const { return broken_shards_.load(); }

 private:
  void worker_loop(int64_t worker, int64_t epoch, int64_t first_batch);
  Batch build(std::vector<ShardSample>& samples, int64_t epoch, int64_t index) const;

  std::shared_ptr<const ShardSet> shards_;
  TextEncoder encode_text_;
  LoaderOptions options_;
  int64_t shuffle_buffer_;
  PlanOptions plan_options_;
  EpochPlan plan_;

  BatchQueue queue_;
  std::atomic<int64_t> skipped_total_{0}, broken_shards_{0};
};

}  // namespace halo::data
