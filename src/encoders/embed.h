// Embedding data with a model, in batches and without a graph: every pair of a manifest (for
// evaluation, filtering and validation during training) or a list of texts (class prompts).
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <torch/types.h>

#include "data/loader.h"
#include "data/manifest.h"
#include "data/tokenizer.h"
#include "encoders/clip_model.h"

namespace halo::encoders {

struct PairEmbeddings {
  torch::Tensor image, text;  // n x D fp32 on the CPU, in manifest order
  std::vector<int64_t> rows;  // the manifest row of each (bad images skipped when skip_bad)
  int64_t skipped = 0;        // images that could not be read
};

// Embeds every pair of the manifest with the loader's options (evaluation: no augmentation,
// manifest order, the last short batch kept). verbose: a progress line with pairs/s.
PairEmbeddings embed_pairs(ClipModel& model, const data::Tokenizer& tokenizer, int64_t context_length,
                           std::shared_ptr<const data::Manifest> manifest, const data::LoaderOptions& loader,
                           const torch::Device& device, bool verbose);

// Embeds the batches of any source (shards, a manifest) from the start of its epoch 0, handing
// each non-empty batch and its embeddings (n x D fp32 on the CPU) to `take`; memory holds one
// batch. Returns the pairs seen, skipped ones included.
using EmbeddedBatchFn = std::function<void(const data::Batch&, const torch::Tensor& image, const torch::Tensor& text)>;
int64_t embed_batches(ClipModel& model, data::BatchSource& source, const torch::Device& device,
                      const EmbeddedBatchFn& take);

// Every pair of a source (e.g. shards), collected in the order it gives them; rows as it numbers
// them.
PairEmbeddings embed_all(ClipModel& model, data::BatchSource& source, const torch::Device& device);

// Embeds texts in batches: n x D fp32 on the CPU.
torch::Tensor embed_texts(ClipModel& model, const data::Tokenizer& tokenizer, int64_t context_length,
                          const std::vector<std::string>& texts, int64_t batch_size, const torch::Device& device);

}  // namespace halo::encoders
