// Embeddings of a trained model for evaluation and filtering (see embed.h).
#include "eval/embed.h"

#include <memory>

#include <torch/torch.h>

#include "data/shard_loader.h"
#include "train/components.h"

namespace halo::eval {

namespace {

data::LoaderOptions embed_loader_options(const train::TrainedModel& m, const EmbedOptions& options) {
  data::LoaderOptions lo = train::eval_loader_options(m.config, options.batch_size);
  lo.workers = options.workers;
  lo.skip_bad = options.skip_bad;
  return lo;
}

// The shard set in stream order (a shuffle buffer of 1), captions tokenized as the model was.
std::unique_ptr<data::ShardLoader> embed_shard_loader(const train::TrainedModel& m,
                                                      std::shared_ptr<const data::ShardSet> shards,
                                                      const EmbedOptions& options) {
  return std::make_unique<data::ShardLoader>(
      std::move(shards),
      [tok = m.tokenizer, length = m.config.model.text.context_length](const std::vector<std::string>& captions) {
        return tok.encode(captions, length);
      },
      embed_loader_options(m, options), 1);
}

}  // namespace

PairEmbeddings embed_pairs(train::TrainedModel& m, std::shared_ptr<const data::Manifest> manifest,
                           const EmbedOptions& options) {
  PairEmbeddings out = encoders::embed_pairs(m.model, m.tokenizer, m.config.model.text.context_length,
                                             std::move(manifest), embed_loader_options(m, options), m.device,
                                             options.verbose);
  if (out.rows.empty()) out.image = out.text = torch::empty({0, m.config.model.embed_dim});
  return out;
}

int64_t embed_shard_batches(train::TrainedModel& m, std::shared_ptr<const data::ShardSet> shards,
                            const EmbedOptions& options, const encoders::EmbeddedBatchFn& take) {
  return encoders::embed_batches(m.model, *embed_shard_loader(m, std::move(shards), options), m.device, take);
}

PairEmbeddings embed_shard_pairs(train::TrainedModel& m, std::shared_ptr<const data::ShardSet> shards,
                                 const EmbedOptions& options) {
  PairEmbeddings out = encoders::embed_all(m.model, *embed_shard_loader(m, std::move(shards), options), m.device);
  if (out.rows.empty()) {
    out.image = out.text = torch::empty({0, m.config.model.embed_dim});
    return out;
  }
  // Workers take turns over their own shards: back to shard set order.
  const torch::Tensor rows = torch::tensor(out.rows, torch::kLong);
  const torch::Tensor order = std::get<1>(rows.sort());
  out.image = out.image.index_select(0, order);
  out.text = out.text.index_select(0, order);
  const torch::Tensor sorted = rows.index_select(0, order).contiguous();
  out.rows.assign(sorted.data_ptr<int64_t>(), sorted.data_ptr<int64_t>() + sorted.numel());
  return out;
}

torch::Tensor embed_texts(train::TrainedModel& m, const std::vector<std::string>& texts, int64_t batch_size) {
  return encoders::embed_texts(m.model, m.tokenizer, m.config.model.text.context_length, texts, batch_size, m.device);
}

}  // namespace halo::eval
