// Embeddings of a trained model (train/trained_model.h) for evaluation and filtering: every pair
// of a set of pairs, or a list of texts, in batches (encoders/embed.h does the work).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <torch/types.h>

#include "data/pair_set.h"
#include "encoders/embed.h"
#include "train/trained_model.h"

namespace halo::eval {

using encoders::PairEmbeddings;

struct EmbedOptions {
  int64_t batch_size = 256;
  int64_t workers = 2;
  bool skip_bad = false;  // skip and count unreadable images instead of failing
  bool verbose = true;    // a progress line with pairs/s
};

// Embeds every pair of the set, manifest or shards (no augmentation), in set order; unusable
// samples are skipped and counted with options.skip_bad, else an error naming file and line or
// shard and key.
PairEmbeddings embed_pairs(train::TrainedModel& model, const data::PairSet& pairs,
                           const EmbedOptions& options);

// The set batch by batch, in the loader's order (one batch in memory): each non-empty batch and
// its embeddings go to `take`. Returns the pairs seen.
int64_t embed_pair_batches(train::TrainedModel& model, const data::PairSet& pairs,
                           const EmbedOptions& options, const encoders::EmbeddedBatchFn& take);

// Embeds texts in batches: n x D fp32 on the CPU.
torch::Tensor embed_texts(train::TrainedModel& model, const std::vector<std::string>& texts,
                          int64_t batch_size = 256);

}  // namespace halo::eval
