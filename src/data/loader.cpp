// Threaded, ordered, bounded batch loading (see loader.h).
#include "data/loader.h"

#include <algorithm>

#include <torch/torch.h>

#include "common/error.h"
#include "common/splitmix.h"

namespace halo::data {

TextEncoder caption_encoder(const Tokenizer& tokenizer, int64_t context_length) {
  return [tokenizer, context_length](const std::vector<std::string>& captions) {
    return tokenizer.encode(captions, context_length);
  };
}

std::vector<int64_t> epoch_order(int64_t n, uint64_t seed, int64_t epoch, bool shuffle) {
  std::vector<int64_t> order(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) order[static_cast<size_t>(i)] = i;
  if (!shuffle) return order;
  std::mt19937_64 rng(mix_seed(seed, static_cast<uint64_t>(epoch), 0x5eed));
  for (int64_t i = n - 1; i > 0; --i) {  // Fisher-Yates with a portable draw
    const auto j = static_cast<int64_t>(rng() % static_cast<uint64_t>(i + 1));
    std::swap(order[static_cast<size_t>(i)], order[static_cast<size_t>(j)]);
  }
  return order;
}

BatchLoader::BatchLoader(std::shared_ptr<const Manifest> manifest, TextEncoder encode_text,
                         LoaderOptions options)
    : manifest_(std::move(manifest)), encode_text_(std::move(encode_text)), options_(options) {
  HALO_CHECK(manifest_ && manifest_->size() > 0, "loader: empty manifest");
  HALO_CHECK(options_.batch_size >= 1 && options_.world_size >= 1 && options_.rank >= 0 &&
                 options_.rank < options_.world_size,
             "loader: need batch_size >= 1 and 0 <= rank < world_size");
  HALO_CHECK(options_.workers >= 1 && options_.prefetch_batches >= 1,
             "loader: need workers >= 1 and prefetch >= 1");
  HALO_CHECK(batches_per_epoch() >= 1, "manifest '", manifest_->path, "' has ", manifest_->size(),
             " rows: fewer than one global batch of ", options_.batch_size * options_.world_size);
}

BatchLoader::~BatchLoader() {
  queue_.stop();
}

DataLayout BatchLoader::layout() const {
  return {{"global batch (train.batch_size)",
           std::to_string(options_.batch_size * options_.world_size)},
          {"pairs", std::to_string(manifest_->size())},
          {"seed (train.seed)", std::to_string(options_.seed)},
          {"shuffle", options_.shuffle ? "true" : "false"}};
}

int64_t BatchLoader::batches_per_epoch() const {
  const int64_t global = options_.batch_size * options_.world_size;
  return options_.drop_last ? manifest_->size() / global
                            : (manifest_->size() + global - 1) / global;
}

std::vector<int64_t> BatchLoader::slice(const std::vector<int64_t>& order, int64_t batch) const {
  const int64_t n = static_cast<int64_t>(order.size());
  const int64_t start = std::min(
      n, batch * options_.batch_size * options_.world_size + options_.rank * options_.batch_size);
  const int64_t end = std::min(n, start + options_.batch_size);
  return std::vector<int64_t>(order.begin() + start, order.begin() + end);
}

std::vector<int64_t> BatchLoader::batch_rows(int64_t epoch, int64_t batch) const {
  // For callers outside the workers (tests); the workers use the epoch's permutation, computed
  // once in start_epoch().
  return slice(epoch_order(manifest_->size(), options_.seed, epoch, options_.shuffle), batch);
}

Batch BatchLoader::build(int64_t epoch, int64_t batch) const {
  Batch out;
  out.index = batch;
  std::vector<torch::Tensor> images;
  std::vector<std::string> captions;
  std::vector<int64_t> rows;
  for (int64_t row : slice(order_, batch)) {
    const auto r = static_cast<size_t>(row);
    std::mt19937_64 rng(
        mix_seed(options_.seed, static_cast<uint64_t>(epoch), static_cast<uint64_t>(row)));
    try {
      images.push_back(
          transform_image(decode_image(manifest_->images[r]), options_.transform, rng));
    } catch (const halo::Error& e) {
      // The manifest line, as the README promises (the decoder's message names the file).
      HALO_CHECK(
          options_.skip_bad, manifest_->path,
          r < manifest_->lines.size() ? ":" + std::to_string(manifest_->lines[r]) : std::string(),
          ": ", e.message(), " (set data.skip_bad: true to skip and count such images)");
      ++out.skipped;
      continue;
    }
    captions.push_back(manifest_->captions[r]);
    rows.push_back(row);
  }
  if (images.empty()) {
    // Training cannot step on an empty batch; evaluation (!drop_last) just has nothing to score.
    HALO_CHECK(!options_.drop_last, "every image of batch ", batch, " failed to load (manifest '",
               manifest_->path, "')");
    out.rows = torch::empty({0}, torch::kLong);
    return out;
  }
  out.images = torch::stack(images);
  out.tokens = encode_text_(captions);
  out.rows = torch::tensor(rows, torch::kLong);
  return out;
}

void BatchLoader::worker_loop() {
  while (const std::optional<int64_t> batch = queue_.claim_next()) {
    Batch b = build(epoch_, *batch);
    skipped_total_ += b.skipped;
    queue_.put(*batch, std::move(b));
  }
}

void BatchLoader::start_epoch(int64_t epoch, int64_t first_batch) {
  queue_.stop();
  queue_.reset(first_batch, batches_per_epoch(), options_.prefetch_batches);
  if (epoch != epoch_ || order_.empty())
    order_ = epoch_order(manifest_->size(), options_.seed, epoch, options_.shuffle);
  epoch_ = epoch;
  queue_.start_workers(options_.workers, [this](int64_t) { worker_loop(); });
}

std::optional<Batch> BatchLoader::next() {
  return queue_.take();
}

}  // namespace halo::data
