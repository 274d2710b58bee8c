// Checkpoints: one file holding the model, the loss's learnable scalars, the optimiser state,
// the position in the data (step, epoch, batch within the epoch), the RNG state, the
// resolved configuration and any named state tensors (TrainingState::tensors). Written
// through common/atomic_file.h, so a crash never leaves a half-written checkpoint; `latest`
// names the newest one.
#pragma once
#include <cstdint>
#include <map>
#include <string>

#include <torch/nn/module.h>
#include <torch/optim/optimizer.h>

namespace halo::train {

struct TrainingState {
  int64_t step = 0;            // optimiser steps done
  int64_t epoch = 0;           // epoch in progress
  int64_t batch_in_epoch = 0;  // next batch of that epoch
  // Other state that must survive a resume, by name (the pair dynamics' sums and counts);
  // empty in checkpoints that hold none.
  std::map<std::string, torch::Tensor> tensors;
};

// Writes run_dir/checkpoints/<name>.pt and points run_dir/checkpoints/latest at it. Deletes
// step checkpoints beyond the newest `keep` (the final one is never deleted).
std::string save_checkpoint(const std::string& run_dir, const std::string& name, torch::nn::Module& model,
                            torch::nn::Module& loss, torch::optim::Optimizer& optimizer,
                            const TrainingState& state, const std::string& config_yaml, int64_t keep);

// Resolves "latest" (in run_dir) or a path; throws halo::Error naming what is missing.
std::string resolve_checkpoint(const std::string& run_dir, const std::string& which);

// Loads into the given objects (they must have the same shapes); returns the saved state.
// optimizer may be null (evaluation).
TrainingState load_checkpoint(const std::string& path, torch::nn::Module& model, torch::nn::Module& loss,
                              torch::optim::Optimizer* optimizer);

// The configuration YAML stored in a checkpoint.
std::string checkpoint_config(const std::string& path);

}  // namespace halo::train
