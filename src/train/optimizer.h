// AdamW with two parameter groups (weight decay only on matrices of the encoders; none on
// norms, biases, 1-D embeddings or the loss's temperature and bias), and the learning-rate
// schedule: linear warm-up, then cosine decay to zero.
#pragma once
#include <memory>

#include <torch/nn/module.h>
#include <torch/optim/adamw.h>

#include "train/config.h"

namespace halo::train {

std::unique_ptr<torch::optim::AdamW> make_optimizer(torch::nn::Module& model, torch::nn::Module& loss,
                                                    const OptimConfig& config);

// Learning rate for optimiser step `step` (0-based) of `total_steps`.
double learning_rate(int64_t step, int64_t total_steps, const OptimConfig& config);

// Sets `lr` on the model's groups and lr * optim.temperature_lr_scale on the loss's scalars.
void set_learning_rate(torch::optim::Optimizer& optimizer, double lr, const OptimConfig& config);

}  // namespace halo::train
