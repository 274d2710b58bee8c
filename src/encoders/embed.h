// Embedding data with a model, in batches and without a graph: every pair of a set of pairs
// (for evaluation, filtering and validation during training) or a list of texts (class prompts).
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <torch/types.h>

#include "data/loader.h"
#include "data/pair_set.h"
#include "data/tokenizer.h"
#include "encoders/clip_model.h"

namespace halo::encoders {

struct PairEmbeddings {
  torch::Tensor image, text;  // n x D fp32 on the CPU, in set order
  std::vector<int64_t> rows;  // the set's row of each, ascending (bad images skipped when skip_bad)
  int64_t skipped = 0;        // images that could not be read
};

// Embeds the batches of any source from the start of its epoch 0, handing each non-empty batch
// and its embeddings (n x D fp32 on the CPU) to `take`; memory holds one batch. With
// progress_total > 0, a progress line with pairs/s every 5,000 pairs. Returns the pairs seen,
// skipped ones included.
using EmbeddedBatchFn =
    std::function<void(const data::Batch&, const torch::Tensor& image, const torch::Tensor& text)>;
int64_t embed_batches(ClipModel& model, data::BatchSource& source, const torch::Device& device,
                      const EmbeddedBatchFn& take, int64_t progress_total = 0);

// Every pair of a set, manifest or shards, with the loader's options (evaluation: no
// augmentation, the last short batch kept), in set order whatever order the loader's workers
// give them. verbose: a progress line with pairs/s. What evaluation, filtering and validation
// during training embed.
PairEmbeddings embed_pair_set(ClipModel& model, const data::Tokenizer& tokenizer,
                              int64_t context_length, const data::PairSet& pairs,
                              const data::LoaderOptions& loader, const torch::Device& device,
                              bool verbose);

// Embeds texts in batches: n x D fp32 on the CPU.
torch::Tensor embed_texts(ClipModel& model, const data::Tokenizer& tokenizer,
                          int64_t context_length, const std::vector<std::string>& texts,
                          int64_t batch_size, const torch::Device& device);

}  // namespace halo::encoders
