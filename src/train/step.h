// One optimiser step on this rank's share of the global batch: encode (bf16 under autocast when
// configured), gather every rank's embeddings as columns, the loss (always fp32), backward,
// gradient all-reduce, clipping and the optimiser step. With train.accum_steps K > 1 the step is
// the exact gradient accumulation of GradCache (Gao et al., 2021): the towers run on K
// micro-batches without a graph, the loss and its gradient are taken on the whole global batch
// of embeddings, then each micro-batch is encoded again with a graph and back-propagates its
// slice of that gradient. The loss and the gradients equal the K = 1 step's (up to float
// rounding); the towers' activations are held for one micro-batch at a time (docs/training.md).
#pragma once
#include <cstdint>
#include <vector>

#include <torch/optim/optimizer.h>
#include <torch/types.h>

#include "dist/grad_allreduce.h"
#include "dist/process_group.h"
#include "encoders/clip_model.h"
#include "loss/contrastive_loss.h"

namespace halo::train {

// What a step updates and talks to (owned by the run, train/run_setup.h, or a benchmark).
struct StepModules {
  encoders::ClipModelImpl& model;
  loss::ContrastiveLoss& loss;
  torch::optim::Optimizer& optimizer;
  const std::vector<torch::Tensor>& parameters;  // the model's and the loss's, for clipping
  dist::GradientAverager& grads;
  dist::ProcessGroup& group;
};

struct StepOptions {
  int64_t accum_steps = 1;    // micro-batches per rank (train.accum_steps)
  bool bf16 = false;          // the towers under autocast (train.precision: bf16)
  double grad_clip = 0;       // optim.grad_clip (0: no clipping; the norm is still returned)
  double partner_drop = 0;    // loss.sink_partner_drop
  uint64_t partner_seed = 0;  // train.seed, for the rows partner dropout draws
};

struct StepResult {
  loss::LossOutput loss;
  loss::PairBatch pairs;    // the embeddings, detached: this rank's rows, every rank's columns
  torch::Tensor grad_norm;  // before clipping, on the device
};

// images (n x 3 x H x W) and tokens (n x L) on the model's device; sink_share: per row, or
// undefined; step: the number of steps taken before this one (partner dropout draws its rows
// from it). Waits for the device nowhere.
StepResult train_step(const StepModules& modules, const StepOptions& options,
                      const torch::Tensor& images, const torch::Tensor& tokens,
                      const torch::Tensor& sink_share, int64_t step);

// The random-number generators a forward pass may draw from (the CPU generator, and the
// device's own on CUDA), captured so that a second pass draws the same numbers as the first:
// the encoders draw none today (no dropout, no stochastic depth), and this keeps accumulation
// exact if one ever does.
class RngSnapshot {
 public:
  explicit RngSnapshot(const torch::Device& device);
  void restore() const;  // the generators back to the captured state

 private:
  torch::Device device_;
  torch::Tensor cpu_state_, device_state_;
};

}  // namespace halo::train
