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

// What one step of this configuration costs with `world_size` processes, as YAML comment lines
// (halo-clip train --dump-config): the global batch, each process's share, its micro-batches
// (train.accum_steps), and the estimated loss memory of the dense and tiled implementations
// for that batch, with what loss.implementation runs.
std::string step_cost_summary(const Config& config, int64_t world_size);

}  // namespace halo::train
