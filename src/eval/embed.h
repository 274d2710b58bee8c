// Embeddings of a trained model (train/trained_model.h) for evaluation and filtering: every pair
// of a manifest, or a list of texts, in batches (encoders/embed.h does the work).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <torch/types.h>

#include "data/manifest.h"
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

// Embeds every pair of the manifest (no augmentation, manifest order).
PairEmbeddings embed_pairs(train::TrainedModel& model, std::shared_ptr<const data::Manifest> manifest,
                           const EmbedOptions& options);

// Embeds texts in batches: n x D fp32 on the CPU.
torch::Tensor embed_texts(train::TrainedModel& model, const std::vector<std::string>& texts, int64_t batch_size = 256);

}  // namespace halo::eval
