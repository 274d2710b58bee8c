// The step-hook interface: how the extras that ride along with training (pair dynamics,
// bootstrapping from the history, embedding diagnostics, validation) plug into the step loop
// without the loop knowing them. The trainer calls every hook at fixed points of each step, in
// the order given; docs/architecture.md says how to add one.
#pragma once
#include <cstdint>
#include <map>
#include <string>

#include <torch/types.h>

#include "common/named_values.h"
#include "data/loader.h"
#include "dist/process_group.h"
#include "encoders/clip_model.h"
#include "loss/contrastive_loss.h"
#include "loss/pair_batch.h"

namespace halo::hooks {

// What a hook sees after an optimiser step.
struct StepContext {
  int64_t step = 0;         // optimiser steps done, this one included
  int64_t total_steps = 0;  // of the whole run
  int64_t epoch = 0;        // the epoch this step belongs to
  bool logging = false;     // a logging step (train.log_every): its metrics go to the progress line
  const data::Batch& batch;  // this rank's pairs (batch.rows: their manifest rows)
  const loss::PairBatch&
      pairs;  // the step's embeddings, detached: this rank's rows, all ranks' columns
  loss::ContrastiveLoss& loss;  // its scalars as updated by this step
  encoders::ClipModel& model;   // as updated by this step
  dist::ProcessGroup& group;
};

class StepHook {
 public:
  virtual ~StepHook() = default;
  // Names its timing in the logs (NAME_ms).
  virtual std::string name() const = 0;
  // Before the step's forward pass: per row of this rank's batch, the share of the pair's target
  // to put on the sink (loss.sink_bootstrap_from: history), or an undefined tensor. Every rank
  // calls it (it may be a collective).
  virtual torch::Tensor sink_share(const data::Batch& /*batch*/, dist::ProcessGroup& /*group*/) {
    return {};
  }
  // After the optimiser step, on every rank. Named values added to `metrics` are written to
  // metrics.jsonl at this step (with the progress line at logging steps).
  virtual void after_step(const StepContext& /*step*/, Metrics& /*metrics*/) {}
  // After the last batch of an epoch, on every rank (may be a collective).
  virtual void end_epoch(dist::ProcessGroup& /*group*/) {}
  // At every checkpoint, on every rank (may be a collective): named tensors to save with it.
  virtual void save_state(dist::ProcessGroup& /*group*/,
                          std::map<std::string, torch::Tensor>& /*state*/) {}
  // On resume, on every rank, with the checkpoint's tensors and its step.
  virtual void load_state(const std::map<std::string, torch::Tensor>& /*state*/, int64_t /*step*/) {
  }
  // After the final checkpoint of a finished run (not after a stop), on every rank.
  virtual void finish(dist::ProcessGroup& /*group*/) {}
  // A hook may ask the run to stop after this step (e.g. early stopping); "" to go on. Read
  // after after_step on every rank; the ranks agree on it with the signals.
  virtual std::string stop_reason() const { return ""; }
};

}  // namespace halo::hooks
