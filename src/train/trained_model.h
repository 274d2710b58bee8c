// Loading a trained model back from a checkpoint: its configuration, tokenizer, encoders and loss
// (whose temperature and abstain logit score pairs). The API that eval, filter, report and
// classify call; nothing above train/ reads checkpoints another way.
#pragma once
#include <cstdint>
#include <memory>
#include <string>

#include <torch/types.h>

#include "data/tokenizer.h"
#include "encoders/clip_model.h"
#include "loss/contrastive_loss.h"
#include "train/config.h"

namespace halo::train {

struct TrainedModel {
  std::string checkpoint;
  Config config;
  data::Tokenizer tokenizer;
  encoders::ClipModel model{nullptr};
  std::shared_ptr<loss::ContrastiveLoss> loss;
  torch::Device device{torch::kCPU};
  int64_t step = 0;
};

// `checkpoint`: a .pt file, or a run folder (its latest checkpoint). The tokenizer is the
// run folder's tokenizer.model (two levels above the checkpoint), else the configured one; it
// must be the one the checkpoint was trained with (its fingerprint), else halo::Error names both.
// `device`: "" for the one the run trained on when available, else cpu. In eval mode.
TrainedModel load_trained_model(const std::string& checkpoint, const std::string& device = "");

}  // namespace halo::train
