// Streaming batches from shards (see shard_loader.h).
#include "data/shard_loader.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>

#include <torch/torch.h>

#include "common/error.h"
#include "common/log.h"
#include "common/splitmix.h"
#include "data/image.h"

namespace halo::data {

namespace {

// A stream slot that the shard could not fill (it ended early): a sample with a problem.
ShardSample missing_sample(const std::string& shard, int64_t index, const std::string& why) {
  ShardSample s;
  s.shard = shard;
  s.key = "#" + std::to_string(index);
  s.index_in_shard = index;
  s.problem = why;
  return s;
}

// The samples of one worker's shards in order, exactly as many per shard as the shard set
// counts: a shard with fewer (truncated) is padded with samples that carry the problem, one
// with more is cut.
class WorkerSampleStream {
 public:
  // `dropped`: stream positions whose data is not needed (they leave the shuffle buffer before
  // the batch the stream resumes at); their members are skipped, not read.
  WorkerSampleStream(const ShardSet& set, const std::vector<int64_t>& shards,
                     std::atomic<int64_t>& broken, std::vector<bool> dropped)
      : set_(set), shards_(shards), broken_(broken), dropped_(std::move(dropped)) {}

  bool next(ShardSample& out) {
    const size_t at = stream_position_++;
    const bool drop = at < dropped_.size() && dropped_[at];
    while (position_ < shards_.size()) {
      const auto shard = static_cast<size_t>(shards_[position_]);
      if (!reader_) {
        reader_ = std::make_unique<ShardReader>(set_.shards[shard], /*read_images=*/true,
                                                /*keep_other_members=*/false);
        read_ = 0;
      }
      if (read_ < set_.sizes[shard]) {
        if (!ended_) reader_->skip_next_sample_data(drop);
        if (!ended_ && reader_->next(out)) {
          out.row = set_.offsets[shard] + read_++;
          return true;
        }
        if (!ended_) {
          ended_ = true;
          shortfall_ = reader_->error().empty()
                           ? "shard '" + set_.shards[shard] + "' ended after " +
                                 std::to_string(read_) + " samples, but its size is " +
                                 std::to_string(set_.sizes[shard]) + " (sizes.json)"
                           : reader_->error();
          ++broken_;
          log_message("warning: " + shortfall_);
        }
        out = missing_sample(set_.shards[shard], read_, shortfall_);
        out.row = set_.offsets[shard] + read_++;
        return true;
      }
      reader_.reset();
      ended_ = false;
      ++position_;
    }
    return false;
  }

 private:
  const ShardSet& set_;
  const std::vector<int64_t>& shards_;
  std::atomic<int64_t>& broken_;
  std::vector<bool> dropped_;
  size_t stream_position_ = 0, position_ = 0;
  std::unique_ptr<ShardReader> reader_;
  int64_t read_ = 0;
  bool ended_ = false;
  std::string shortfall_;
};

// The stream positions that leave a worker's shuffle buffer in its first `batches` batches: the
// buffer's choices depend only on its seed and the count, so this is what the worker loop below
// does with the samples themselves.
std::vector<bool> positions_taken(int64_t samples, int64_t batches, int64_t batch_size,
                                  int64_t capacity, uint64_t seed) {
  std::vector<bool> taken(static_cast<size_t>(samples), false);
  ShuffleBuffer<int64_t> buffer(capacity, seed);
  int64_t next = 0, out = 0;
  for (int64_t b = 0; b < batches; ++b) {
    for (int64_t got = 0; got < batch_size;) {
      if (next < samples) {
        if (!buffer.push(next++, out)) continue;
      } else if (!buffer.drain(out)) {
        break;
      }
      taken[static_cast<size_t>(out)] = true;
      ++got;
    }
  }
  return taken;
}

uint64_t sample_seed(uint64_t seed, int64_t epoch, int64_t index) {
  return mix_seed(seed, static_cast<uint64_t>(epoch), static_cast<uint64_t>(index));
}

}  // namespace

ShardLoader::ShardLoader(std::shared_ptr<const ShardSet> shards, TextEncoder encode_text,
                         LoaderOptions options, int64_t shuffle_buffer)
    : shards_(std::move(shards)),
      encode_text_(std::move(encode_text)),
      options_(options),
      shuffle_buffer_(options.shuffle ? shuffle_buffer : 1) {
  HALO_CHECK(shards_ && shards_->total > 0, "loader: no shards");
  HALO_CHECK(shuffle_buffer_ >= 1, "data.shuffle_buffer must be >= 1, got ", shuffle_buffer);
  HALO_CHECK(options_.prefetch_batches >= 1, "loader: need prefetch >= 1");
  // Each worker needs a shard of its own: with fewer shards, fewer workers read them.
  const auto shard_count = static_cast<int64_t>(shards_->shards.size());
  if (shard_count >= options_.world_size && shard_count < options_.world_size * options_.workers) {
    const int64_t workers = shard_count / options_.world_size;
    if (options_.drop_last) {
      log_message("loader: " + std::to_string(shard_count) + " shard(s) for " +
                  std::to_string(options_.world_size) + " process(es): " + std::to_string(workers) +
                  " loader worker(s) per process instead of " + std::to_string(options_.workers) +
                  " (data.workers); write more shards to use them all");
    }
    options_.workers = workers;
  }
  plan_options_ =
      PlanOptions{options_.batch_size, options_.rank,    options_.world_size, options_.workers,
                  options_.seed,       options_.shuffle, options_.drop_last};
  plan_ = plan_epoch(shards_->sizes, plan_options_, 0);
  if (options_.drop_last && options_.rank == 0) {
    // Every worker gives what the smallest stream fills: say how much of the set that is.
    const double share = epoch_sample_share(shards_->sizes, plan_options_);
    const auto used =
        static_cast<int64_t>(std::llround(share * static_cast<double>(shards_->total)));
    char line[200];
    std::snprintf(line, sizeof line, "shards: uses %lld of %lld samples per epoch (%.1f%%)",
                  static_cast<long long>(used), static_cast<long long>(shards_->total),
                  100 * share);
    log_message(share < 0.95
                    ? std::string("warning: ") + line +
                          ": the shards' sizes are too uneven for the processes x loader workers; "
                          "write size-balanced shards (prepare shards) or change data.workers"
                    : std::string(line));
  }
  HALO_CHECK(batches_per_epoch() >= 1, "the shards of '", shards_->pattern, "' (", shards_->total,
             " samples) do not fill one batch of ", options_.batch_size,
             " per loader worker and process (", options_.world_size, " process(es) x ",
             options_.workers, " worker(s))");
}

ShardLoader::~ShardLoader() {
  queue_.stop();
}

DataLayout ShardLoader::layout() const {
  uint64_t hash = 14695981039346656037ull;  // FNV-1a over each shard's file name and size
  auto mix = [&](const std::string& text) {
    for (unsigned char c : text) {
      hash ^= c;
      hash *= 1099511628211ull;
    }
  };
  for (size_t s = 0; s < shards_->shards.size(); ++s) {
    mix(std::filesystem::path(shards_->shards[s]).filename().string() + "\t" +
        std::to_string(shards_->sizes[s]) + "\n");
  }
  char fingerprint[32];
  std::snprintf(fingerprint, sizeof fingerprint, "%016llx", static_cast<unsigned long long>(hash));
  return {{"batch per process (train.batch_size / processes)", std::to_string(options_.batch_size)},
          {"processes (WORLD_SIZE)", std::to_string(options_.world_size)},
          {"loader workers per process (data.workers)", std::to_string(options_.workers)},
          {"shuffle buffer (data.shuffle_buffer)", std::to_string(shuffle_buffer_)},
          {"seed (train.seed)", std::to_string(options_.seed)},
          {"shards", std::to_string(shards_->shards.size()) + " holding " +
                         std::to_string(shards_->total) + " samples (names and sizes " +
                         fingerprint + ")"}};
}

int64_t ShardLoader::batches_per_epoch() const {
  return static_cast<int64_t>(plan_.owner.size());
}

void ShardLoader::start_epoch(int64_t epoch, int64_t first_batch) {
  queue_.stop();
  plan_ = plan_epoch(shards_->sizes, plan_options_, epoch);
  queue_.reset(first_batch, batches_per_epoch(), options_.prefetch_batches);
  queue_.start_workers(options_.workers, [this, epoch, first_batch](int64_t w) {
    worker_loop(w, epoch, first_batch);
  });
}

Batch ShardLoader::build(std::vector<ShardSample>& samples, int64_t epoch, int64_t index) const {
  Batch out;
  out.index = index;
  std::vector<torch::Tensor> images;
  std::vector<std::string> captions;
  std::vector<int64_t> rows;
  for (const ShardSample& s : samples) {
    std::string problem = s.problem;
    torch::Tensor image;
    if (problem.empty()) {
      try {
        std::mt19937_64 rng(sample_seed(options_.seed, epoch, s.row));
        image = transform_image(decode_image_bytes(s.image_bytes(), s.where()), options_.transform,
                                rng);
      } catch (const halo::Error& e) {
        problem = e.message();
      }
    }
    if (!problem.empty()) {
      HALO_CHECK(options_.skip_bad, s.where(), ": ", problem,
                 " (set data.skip_bad: true to skip and count such samples)");
      ++out.skipped;
      continue;
    }
    images.push_back(image);
    captions.push_back(s.caption_text());
    rows.push_back(s.row);
  }
  if (images.empty()) {
    HALO_CHECK(!options_.drop_last, "every sample of batch ", index, " failed to load (shards '",
               shards_->pattern, "')");
    out.rows = torch::empty({0}, torch::kLong);
    return out;
  }
  out.images = torch::stack(images);
  out.tokens = encode_text_(captions);
  out.rows = torch::tensor(rows, torch::kLong);
  return out;
}

void ShardLoader::worker_loop(int64_t worker, int64_t epoch, int64_t first_batch) {
  const WorkerStream& plan = plan_.workers[static_cast<size_t>(worker)];
  // This worker's batches in the epoch, as global batch numbers; those before first_batch
  // are replayed (read, not decoded) to restore the shuffle buffer.
  std::vector<int64_t> global;
  for (size_t b = 0; b < plan_.owner.size(); ++b) {
    if (plan_.owner[b].first == worker) global.push_back(static_cast<int64_t>(b));
  }
  const uint64_t buffer_seed = shuffle_buffer_seed(options_.seed, epoch, options_.rank, worker);
  const auto replayed = static_cast<int64_t>(
      std::count_if(global.begin(), global.end(), [&](int64_t b) { return b < first_batch; }));
  WorkerSampleStream stream(*shards_, plan.shards, broken_shards_,
                            replayed == 0
                                ? std::vector<bool>()
                                : positions_taken(plan.samples, replayed, options_.batch_size,
                                                  shuffle_buffer_, buffer_seed));
  ShuffleBuffer<ShardSample> buffer(shuffle_buffer_, buffer_seed);
  ShardSample incoming, leaving;
  bool stream_ended = false;
  for (const int64_t b : global) {
    if (queue_.stopped()) return;
    std::vector<ShardSample> samples;
    while (static_cast<int64_t>(samples.size()) < options_.batch_size) {
      if (!stream_ended && stream.next(incoming)) {
        if (buffer.push(std::move(incoming), leaving)) samples.push_back(std::move(leaving));
      } else {
        stream_ended = true;
        if (!buffer.drain(leaving)) break;
        samples.push_back(std::move(leaving));
      }
    }
    if (b < first_batch) continue;  // replayed
    if (!queue_.wait_for_turn(b)) return;
    Batch batch = build(samples, epoch, b);
    skipped_total_ += batch.skipped;
    queue_.put(b, std::move(batch));
  }
}

std::optional<Batch> ShardLoader::next() {
  return queue_.take();
}

}  // namespace halo::data
