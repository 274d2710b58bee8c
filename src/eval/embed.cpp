// Embeddings of a trained model for evaluation and filtering (see embed.h).
#include "eval/embed.h"

#include <memory>

#include <torch/torch.h>

#include "train/components.h"

namespace halo::eval {

namespace {

data::LoaderOptions embed_loader_options(const train::TrainedModel& m,
                                         const EmbedOptions& options) {
  data::LoaderOptions lo = train::eval_loader_options(m.config, options.batch_size);
  lo.workers = options.workers;
  lo.skip_bad = options.skip_bad;
  return lo;
}

}  // namespace

PairEmbeddings embed_pairs(train::TrainedModel& m, const data::PairSet& pairs,
                           const EmbedOptions& options) {
  PairEmbeddings out =
      encoders::embed_pair_set(m.model, m.tokenizer, m.config.model.text.context_length, pairs,
                               embed_loader_options(m, options), m.device, options.verbose);
  if (out.rows.empty()) out.image = out.text = torch::empty({0, m.config.model.embed_dim});
  return out;
}

int64_t embed_pair_batches(train::TrainedModel& m, const data::PairSet& pairs,
                           const EmbedOptions& options, const encoders::EmbeddedBatchFn& take) {
  const std::unique_ptr<data::BatchSource> source =
      pairs.loader(data::caption_encoder(m.tokenizer, m.config.model.text.context_length),
                   embed_loader_options(m, options), /*shuffle_buffer=*/1);
  return encoders::embed_batches(m.model, *source, m.device, take);
}

torch::Tensor embed_texts(train::TrainedModel& m, const std::vector<std::string>& texts,
                          int64_t batch_size) {
  return encoders::embed_texts(m.model, m.tokenizer, m.config.model.text.context_length, texts,
                               batch_size, m.device);
}

}  // namespace halo::eval
