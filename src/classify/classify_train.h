// The training loop of `halo-clip classify`: AdamW with warm-up and cosine decay (the project's
// optimiser and schedule), gradient clipping, and a progress line with images/s.
#pragma once
#include <cstdint>
#include <memory>

#include <torch/types.h>

#include "classify/classifier_head.h"
#include "classify/classify_options.h"
#include "data/loader.h"
#include "data/manifest.h"
#include "encoders/resnet.h"

namespace halo::classify {

struct TrainSummary {
  int64_t steps = 0, images = 0;
  double seconds = 0, final_loss = 0;
};

// The loader options shared by training and scoring: no captions, images only.
data::LoaderOptions image_loader_options(const ClassifyOptions& options, bool training);
// A text encoder for data::BatchLoader that returns no tokens (classification needs none).
torch::Tensor no_tokens(const std::vector<std::string>& captions);

// Trains `encoder` and `head` on the labelled `manifest` for options.epochs epochs.
TrainSummary train_classifier(encoders::ResNet& encoder, ClassifierHead& head,
                              const std::shared_ptr<const data::Manifest>& manifest,
                              const ClassifyOptions& options, const torch::Device& device);

}  // namespace halo::classify
