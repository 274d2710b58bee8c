// Two step hooks over one run's pair dynamics (pair_dynamics.h):
//  - PairDynamicsHook records every pair's mismatch scores after each step, saves the sums over
//    all ranks with each checkpoint, and at the end of a finished run writes
//    RUN_DIR/pair_dynamics.tsv (and pair_dynamics.txt with each score's AUROC when the manifest
//    records the truth);
//  - HistoryBootstrapHook gives each batch its sink shares from that history
//    (loss.sink_bootstrap_from: history) and folds the ranks' scores at every epoch's end.
#pragma once
#include <memory>
#include <string>

#include "data/manifest.h"
#include "hooks/pair_dynamics.h"
#include "hooks/step_hook.h"

namespace halo::hooks {

class PairDynamicsHook : public StepHook {
 public:
  PairDynamicsHook(std::shared_ptr<RunPairDynamics> dynamics,
                   std::shared_ptr<const data::Manifest> manifest, std::string run_dir,
                   bool main_rank);
  std::string name() const override { return "dynamics"; }
  void after_step(const StepContext& step, Metrics& metrics) override;
  void save_state(dist::ProcessGroup& group, std::map<std::string, torch::Tensor>& state) override;
  void load_state(const std::map<std::string, torch::Tensor>& state, int64_t step) override;
  void finish(dist::ProcessGroup& group) override;

 private:
  std::shared_ptr<RunPairDynamics> dynamics_;
  std::shared_ptr<const data::Manifest> manifest_;
  std::string run_dir_;
  bool main_rank_;
  PairDynamics saved_;  // the sums over all ranks as of the last checkpoint
};

class HistoryBootstrapHook : public StepHook {
 public:
  HistoryBootstrapHook(std::shared_ptr<RunPairDynamics> dynamics, double beta, double fraction)
      : dynamics_(std::move(dynamics)), beta_(beta), fraction_(fraction) {}
  std::string name() const override { return "history"; }
  torch::Tensor sink_share(const data::Batch& batch, dist::ProcessGroup& group) override {
    return dynamics_->sink_shares(batch.rows, beta_, fraction_, group);
  }
  // The next epoch sees every rank's scores.
  void end_epoch(dist::ProcessGroup& group) override { dynamics_->fold(group); }

 private:
  std::shared_ptr<RunPairDynamics> dynamics_;
  double beta_, fraction_;
};

}  // namespace halo::hooks
