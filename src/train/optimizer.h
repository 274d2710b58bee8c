// AdamW with two parameter groups (weight decay only on matrices of the encoders; none on
// norms, biases, 1-D embeddings or the loss's temperature and bias), the learning-rate
// schedule (linear warm-up, then cosine decay to zero) and gradient clipping. Shared by the
// CLIP trainer and the classifier trainer (classify/).
#pragma once
#include <memory>
#include <vector>

#include <torch/nn/module.h>
#include <torch/optim/adamw.h>

#include "train/config.h"

namespace halo::train {

std::unique_ptr<torch::optim::AdamW> make_optimizer(torch::nn::Module& model,
                                                    torch::nn::Module& loss,
                                                    const OptimConfig& config);

// Learning rate for optimiser step `step` (0-based) of `total_steps`.
double learning_rate(int64_t step, int64_t total_steps, const OptimConfig& config);

// Sets `lr` on the model's groups and lr * optim.temperature_lr_scale on the loss's scalars.
void set_learning_rate(torch::optim::Optimizer& optimizer, double lr, const OptimConfig& config);

// Scales the gradients so that their global L2 norm is at most max_norm (0: no clipping, the
// norm is still computed), as torch::nn::utils::clip_grad_norm_ does, but returns the norm before
// clipping as a 0-dim tensor on the gradients' device instead of waiting for it on the host.
torch::Tensor clip_gradients(const std::vector<torch::Tensor>& parameters, double max_norm);

}  // namespace halo::train
