// The training run: builds data, tokenizer, model, loss and optimiser from the configuration,
// then runs the step loop with logging, checkpoints and clean stops (see trainer.cpp, which
// reads top to bottom).
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "data/loader.h"
#include "hooks/step_hook.h"
#include "train/checkpoint.h"
#include "train/config.h"

namespace halo::train {

struct TrainOptions {
  std::string resume;  // "" (fresh run), "latest" (newest checkpoint of run_dir) or a path
  // Step hooks to run after the configured ones (hooks/step_hook.h), e.g. a caller's own
  // early stopping.
  std::vector<std::shared_ptr<hooks::StepHook>> hooks;
  // A resume whose data layout differs from the checkpoint's (workers, processes, batch,
  // shuffle buffer, shards): start the checkpoint's epoch over with a warning instead of refusing.
  bool restart_epoch = false;
  // Wraps the configured batch source (e.g. to limit or count what it gives); none by default.
  std::function<std::unique_ptr<data::BatchSource>(std::unique_ptr<data::BatchSource>)> wrap_loader;
};

struct TrainResult {
  // 0 when finished or stopped by a hook; 128 + signal when stopped by SIGINT/SIGTERM (143
  // when another rank was signalled).
  int exit_code = 0;
  bool finished = false;  // all steps done (else stopped: resume with --resume latest)
  TrainingState state;
  double last_loss = 0;    // the last step's loss, averaged over ranks
  std::string checkpoint;  // the last checkpoint written
};

TrainResult run_training(const Config& config, const TrainOptions& options);

}  // namespace halo::train
