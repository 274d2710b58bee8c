// A trained model loaded back from a checkpoint for evaluation, filtering and reports: its
// configuration, tokenizer, encoders and loss (whose temperature and abstain logit score pairs),
// and the functions that turn a manifest or a list of texts into embeddings, in batches.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <torch/types.h>

#include "data/manifest.h"
#include "data/tokenizer.h"
#include "encoders/clip_model.h"
#include "loss/contrastive_loss.h"
#include "train/config.h"

namespace halo::eval {

struct TrainedModel {
  std::string checkpoint;
  train::Config config;
  data::Tokenizer tokenizer;
  encoders::ClipModel model{nullptr};
  std::shared_ptr<loss::ContrastiveLoss> loss;
  torch::Device device{torch::kCPU};
  int64_t step = 0;
};

// `checkpoint`: a .pt file, or a run folder (its latest checkpoint). The tokenizer is the
// run folder's tokenizer.model (two levels above the checkpoint), else the configured one.
// `device`: "" for the one the run trained on when available, else cpu.
TrainedModel load_trained_model(const std::string& checkpoint, const std::string& device = "");

struct PairEmbeddings {
  torch::Tensor image, text;  // n x D fp32 on the CPU, in manifest order
  std::vector<int64_t> rows;  // the manifest row of each (bad images skipped when skip_bad)
  int64_t skipped = 0;        // images that could not be read
};

struct EmbedOptions {
  int64_t batch_size = 256;
  int64_t workers = 2;
  bool skip_bad = false;  // skip and count unreadable images instead of failing
  bool verbose = true;    // a progress line with pairs/s
};

// Embeds every pair of the manifest (no augmentation).
PairEmbeddings embed_pairs(TrainedModel& model, std::shared_ptr<const data::Manifest> manifest,
                           const EmbedOptions& options);

// Embeds texts in batches: n x D fp32 on the CPU.
torch::Tensor embed_texts(TrainedModel& model, const std::vector<std::string>& texts, int64_t batch_size = 256);

}  // namespace halo::eval
