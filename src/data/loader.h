// Batches of (image, caption tokens) from a manifest, decoded by worker threads into a bounded
// prefetch queue and returned in order. The order depends only on (seed, epoch, rank): global
// batch g holds rows perm[g*B*W .. (g+1)*B*W) of a seeded permutation, and rank r takes its
// slice of B rows, so the union over ranks is the single-process batch. Augmentation draws
// from a generator seeded by (seed, epoch, row): results do not depend on thread timing.
#pragma once
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <torch/types.h>

#include "data/batch.h"
#include "data/batch_queue.h"
#include "data/image.h"
#include "data/manifest.h"
#include "data/tokenizer.h"

namespace halo::data {

// Named values that fix a source's batch order (BatchSource::layout).
using DataLayout = std::vector<std::pair<std::string, std::string>>;

// Captions -> B x L int64 token ids (data::Tokenizer::encode with a fixed context length).
using TextEncoder = std::function<torch::Tensor(const std::vector<std::string>&)>;
// The encoder of a tokenizer (kept by value) at a context length.
TextEncoder caption_encoder(const Tokenizer& tokenizer, int64_t context_length);

struct LoaderOptions {
  int64_t batch_size = 32;  // rows per process and step
  int64_t rank = 0, world_size = 1;
  int64_t workers = 2, prefetch_batches = 4;
  uint64_t seed = 0;
  bool shuffle = true;
  bool drop_last = true;  // false (evaluation): a last, shorter batch holds the remaining rows
  bool skip_bad = false;  // drop (and count) unreadable images instead of failing
  ImageTransform transform;
};

// What training draws its batches from: a manifest (BatchLoader) or shards (ShardLoader).
class BatchSource {
 public:
  virtual ~BatchSource() = default;
  // Batches per epoch (the same in every epoch).
  virtual int64_t batches_per_epoch() const = 0;
  // Starts (or restarts) the workers at batch `first_batch` of `epoch` (resume).
  virtual void start_epoch(int64_t epoch, int64_t first_batch) = 0;
  // The next batch of the epoch, or nullopt at its end. Rethrows a worker's error.
  virtual std::optional<Batch> next() = 0;
  // Samples dropped so far under skip_bad.
  virtual int64_t skipped_images() const = 0;
  // What fixes the order of the batches, by name (the configuration key where there is one) and
  // value: a run resumed mid-epoch must have the same, or it would repeat and skip samples.
  virtual DataLayout layout() const = 0;
};

class BatchLoader : public BatchSource {
 public:
  BatchLoader(std::shared_ptr<const Manifest> manifest, TextEncoder encode_text,
              LoaderOptions options);
  ~BatchLoader() override;
  BatchLoader(const BatchLoader&) = delete;
  BatchLoader& operator=(const BatchLoader&) = delete;

  // Global batches per epoch: full ones only, unless !drop_last.
  int64_t batches_per_epoch() const override;
  // The epoch's permutation is computed here, once.
  void start_epoch(int64_t epoch, int64_t first_batch = 0) override;
  std::optional<Batch> next() override;
  // Manifest rows of this rank's batch `batch` in `epoch` (what next() will load).
  std::vector<int64_t> batch_rows(int64_t epoch, int64_t batch) const;
  int64_t skipped_images() const override { return skipped_total_.load(); }
  // The global batch, the pair count and the seed: the order does not depend on the number of
  // processes, so a run may resume with another one at the same global batch.
  DataLayout layout() const override;

 private:
  Batch build(int64_t epoch, int64_t batch) const;
  // This rank's slice of batch `batch` of a permutation.
  std::vector<int64_t> slice(const std::vector<int64_t>& order, int64_t batch) const;
  void worker_loop();

  std::shared_ptr<const Manifest> manifest_;
  TextEncoder encode_text_;
  LoaderOptions options_;

  BatchQueue queue_;
  std::vector<int64_t> order_;  // the permutation of the started epoch
  int64_t epoch_ = 0;
  std::atomic<int64_t> skipped_total_{0};
};

// The permutation of [0, n) used for `epoch` (identity when !shuffle). Exposed for tests.
std::vector<int64_t> epoch_order(int64_t n, uint64_t seed, int64_t epoch, bool shuffle);

}  // namespace halo::data
