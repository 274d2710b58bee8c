// Embeddings of a trained model for evaluation and filtering (see embed.h).
#include "eval/embed.h"

#include <torch/torch.h>

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

torch::Tensor embed_texts(train::TrainedModel& m, const std::vector<std::string>& texts, int64_t batch_size) {
  return encoders::embed_texts(m.model, m.tokenizer, m.config.model.text.context_length, texts, batch_size, m.device);
}

}  // namespace halo::eval
