// The pair-dynamics and history-bootstrap hooks (see pair_dynamics_hook.h).
#include "hooks/pair_dynamics_hook.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>

#include "common/atomic_file.h"
#include "common/log.h"

namespace fs = std::filesystem;

namespace halo::hooks {

PairDynamicsHook::PairDynamicsHook(std::shared_ptr<RunPairDynamics> dynamics,
                                   std::shared_ptr<const data::Manifest> manifest,
                                   std::string run_dir, bool main_rank)
    : dynamics_(std::move(dynamics)),
      manifest_(std::move(manifest)),
      run_dir_(std::move(run_dir)),
      main_rank_(main_rank) {}

void PairDynamicsHook::after_step(const StepContext& step, Metrics&) {
  // This rank's pairs against the global batch, no gradient, the loss's scalars after the update.
  dynamics_->add(step.batch.rows, step_pair_scores(step.loss, step.pairs));
}

void PairDynamicsHook::save_state(dist::ProcessGroup& group,
                                  std::map<std::string, torch::Tensor>& state) {
  saved_ = dynamics_->fold(group);  // every rank takes part in the sum
  for (auto& [key, value] : saved_.state()) state[key] = value;
}

void PairDynamicsHook::load_state(const std::map<std::string, torch::Tensor>& state, int64_t step) {
  if (step == 0) return;
  // Every rank loads them, so that a checkpoint for another manifest fails on all ranks alike
  // (no rank is left waiting in a collective).
  if (state.count("pair_dynamics_sums") == 0) {
    log_message("the checkpoint holds no pair dynamics: pair_dynamics.tsv will count from step " +
                std::to_string(step) +
                (dynamics_->keeps_history()
                     ? ", and the history that picks the sink shares starts there too"
                     : ""));
    return;
  }
  dynamics_->load_state(state);
}

void PairDynamicsHook::finish(dist::ProcessGroup&) {
  if (!main_rank_) return;
  const std::string path = (fs::path(run_dir_) / "pair_dynamics.tsv").string();
  const std::vector<DynamicsDetection> detection = write_pair_dynamics(path, saved_, *manifest_);
  log_message("pair dynamics of " + std::to_string(saved_.pairs()) + " pairs: " + path);
  if (detection.empty()) return;
  int width = 5;  // "score", or the longest column name
  for (const auto& d : detection) width = std::max(width, static_cast<int>(d.column.size()));
  char line[160];
  std::snprintf(line, sizeof line, "%-*s  AUROC  FPR@95\n", width, "score");
  std::string table = line;
  for (const auto& d : detection) {
    std::snprintf(line, sizeof line, "%-*s %6.3f %7.3f\n", width, d.column.c_str(), d.auroc,
                  d.fpr95);
    table += line;
  }
  write_file_atomically((fs::path(run_dir_) / "pair_dynamics.txt").string(), table);
  log_message("mismatch detection by the mean score over training:\n" + table);
}

}  // namespace halo::hooks
