// The training run: builds data, tokenizer, model, loss and optimiser from the configuration,
// then runs the step loop with logging, checkpoints and clean stops (see trainer.cpp, which
// reads top to bottom).
#pragma once
#include <cstdint>
#include <map>
#include <string>

#include <torch/types.h>

#include "train/checkpoint.h"
#include "train/config.h"

namespace halo::train {

struct TrainOptions {
  std::string resume;  // "" (fresh run), "latest" (newest checkpoint of run_dir) or a path
  int64_t stop_after_steps = 0;  // > 0: stop at this step as if SIGTERM had arrived (tests)
};

struct TrainResult {
  int exit_code = 0;  // 0 when finished; 128 + signal when stopped by SIGINT/SIGTERM
  TrainingState state;
  double last_loss = 0;
  std::string checkpoint;  // the last checkpoint written
  std::map<std::string, torch::Tensor> parameters;  // the model's parameters and buffers, at the end (CPU)
};

TrainResult run_training(const Config& config, const TrainOptions& options);

}  // namespace halo::train
