// Embeddings of a trained model for evaluation and filtering (see embed.h).
#include "eval/embed.h"

#include <torch/torch.h>

#include "data/shard_loader.h"
#include "train/components.h"

namespace halo::eval {

PairEmbeddings embed_pairs(train::TrainedModel& m, std::shared_ptr<const data::Manifest> manifest,
                           const EmbedOptions& options) {
  data::LoaderOptions lo = train::eval_loader_options(m.config, options.batch_size);
  lo.workers = options.workers;
  lo.skip_bad = options.skip_bad;
  PairEmbeddings out = encoders::embed_pairs(m.model, m.tokenizer, m.config.model.text.context_length,
                                             std::move(manifest), lo, m.device, options.verbose);
  if (out.rows.empty()) out.image = out.text = torch::empty({0, m.config.model.embed_dim});
  return out;
}

int64_t embed_shard_batches(train::TrainedModel& m, std::shared_ptr<const data::ShardSet> shards,
                            const EmbedOptions& options, const encoders::EmbeddedBatchFn& take) {
  data::LoaderOptions lo = train::eval_loader_options(m.config, options.batch_size);
  lo.workers = options.workers;
  lo.skip_bad = options.skip_bad;
  data::ShardLoader loader(std::move(shards), [tok = m.tokenizer, length = m.config.model.text.context_length](
                                                  const std::vector<std::string>& captions) { return tok.encode(captions, length); },
                           lo, 1);
  return encoders::embed_batches(m.model, loader, m.device, take);
}

PairEmbeddings embed_shard_pairs(train::TrainedModel& m, std::shared_ptr<const data::ShardSet> shards,
                                 const EmbedOptions& options) {
  data::LoaderOptions lo = train::eval_loader_options(m.config, options.batch_size);
  lo.workers = options.workers;
  lo.skip_bad = options.skip_bad;
  data::ShardLoader loader(std::move(shards), [tok = m.tokenizer, length = m.config.model.text.context_length](
                                                  const std::vector<std::string>& captions) { return tok.encode(captions, length); },
                           lo, 1);
  PairEmbeddings out = encoders::embed_all(m.model, loader, m.device);
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
