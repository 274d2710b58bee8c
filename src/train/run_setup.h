// Everything a training run is made of, built from the configuration in the order that makes
// runs reproducible: the run folder, the process group, the training data and its tokenizer,
// the model, the loss, the optimiser, the step hooks, and the state to resume from.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <torch/optim/adamw.h>
#include <torch/types.h>

#include "data/loader.h"
#include "data/pair_set.h"
#include "data/tokenizer.h"
#include "dist/env.h"
#include "dist/grad_allreduce.h"
#include "dist/process_group.h"
#include "encoders/clip_model.h"
#include "hooks/step_hook.h"
#include "loss/contrastive_loss.h"
#include "train/checkpoint.h"
#include "train/config.h"
#include "train/trainer.h"

namespace halo::train {

struct Run {
  std::string config_yaml;  // the resolved configuration, saved with every checkpoint
  torch::Device device{torch::kCPU};
  std::unique_ptr<dist::ProcessGroup> group;
  bool main_rank = true;  // only rank 0 logs and writes files
  // The training pairs, a manifest or shards; a shard set's rows (keys, json fields) are read
  // only when pair dynamics need them.
  std::shared_ptr<const data::PairSet> pairs;
  data::Tokenizer tokenizer;
  std::unique_ptr<data::BatchSource> loader;
  encoders::ClipModel model{nullptr};
  std::shared_ptr<loss::ContrastiveLoss> loss;
  std::unique_ptr<torch::optim::AdamW> optimizer;
  std::vector<torch::Tensor> parameters;  // the model's and the loss's
  std::unique_ptr<dist::GradientAverager> grads;
  std::vector<std::shared_ptr<hooks::StepHook>> hooks;
  int64_t steps_per_epoch = 0, total_steps = 0;
  TrainingState state;  // where the run starts (step 0, or the resumed checkpoint's)
};

// Builds the run (rank 0 writes config.yaml, trains or copies the tokenizer, and clears stale
// temporary files of an interrupted run), resumes from options.resume when set, and logs a
// summary. Every rank calls it.
Run set_up_run(const Config& config, const TrainOptions& options);

}  // namespace halo::train
