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
  // What fixed the order of the batches (data::BatchSource::layout) as "name: value" lines: a
  // resume mid-epoch checks it. "" in checkpoints written before layouts were stored.
  std::string data_layout;
  // Other state that must survive a resume, by name (the pair dynamics' sums and counts);
  // empty in checkpoints that hold none.
  std::map<std::string, torch::Tensor> tensors;
};

// Writes run_dir/checkpoints/<name>.pt and points run_dir/checkpoints/latest at it. Deletes
// step checkpoints beyond the newest `keep` (the final one is never deleted).
std::string save_checkpoint(const std::string& run_dir, const std::string& name,
                            torch::nn::Module& model, torch::nn::Module& loss,
                            torch::optim::Optimizer& optimizer, const TrainingState& state,
                            const std::string& config_yaml, int64_t keep);

// Resolves "latest" (in run_dir) or a path; throws halo::Error naming what is missing.
std::string resolve_checkpoint(const std::string& run_dir, const std::string& which);

// Loads into the given objects (they must have the same shapes); returns the saved state.
// optimizer may be null (evaluation).
TrainingState load_checkpoint(const std::string& path, torch::nn::Module& model,
                              torch::nn::Module& loss, torch::optim::Optimizer* optimizer);

// The configuration YAML stored in a checkpoint.
std::string checkpoint_config(const std::string& path);

// The data layout stored in a checkpoint (TrainingState::data_layout); "" when it has none.
std::string checkpoint_data_layout(const std::string& path);

// A fingerprint of a tokenizer model file: a 64-bit FNV-1a hash of its bytes and its size
// ("fnv1a64:0123456789abcdef bytes:238071"). save_checkpoint stores that of
// run_dir/tokenizer.model.
std::string tokenizer_fingerprint(const std::string& tokenizer_model);

// The tokenizer fingerprint stored in a checkpoint; "" for one written before they were stored.
std::string checkpoint_tokenizer_fingerprint(const std::string& path);

// Throws halo::Error naming both files when `tokenizer_model` is not the tokenizer the
// checkpoint was trained with; a checkpoint without a fingerprint loads with a warning.
void check_checkpoint_tokenizer(const std::string& checkpoint, const std::string& tokenizer_model);

// Throws halo::Error listing every tensor of `model` and `loss` whose shape differs from the
// checkpoint's, or that the checkpoint lacks (loading would otherwise replace the shapes
// silently and fail later inside LibTorch).
void check_checkpoint_shapes(const std::string& path, const torch::nn::Module& model,
                             const torch::nn::Module& loss);

}  // namespace halo::train
