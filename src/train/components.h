// The options of the pieces a run is made of (the loader, the loss), derived from the
// configuration in one place so that training and evaluation build them the same way.
#pragma once
#include "data/loader.h"
#include "data/manifest.h"
#include "loss/contrastive_loss.h"
#include "train/config.h"

namespace halo::train {

// Training loader: shuffled, augmented, full batches only; this rank's share of the global batch.
data::LoaderOptions loader_options(const Config& config, int64_t rank = 0, int64_t world_size = 1);
// Evaluation loader: manifest order, no augmentation, the last partial batch kept.
data::LoaderOptions eval_loader_options(const Config& config, int64_t batch_size);
loss::ContrastiveLossOptions loss_options(const Config& config);

}  // namespace halo::train
