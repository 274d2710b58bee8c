// Training dynamics of each pair, in the spirit of "area under the margin" (Pleiss et al.
// 2020) for mislabelled data: every time a pair is in a training batch, its mismatch scores
// are taken from the embeddings that step already computed (no gradient, no extra forward;
// the loss's scalars are read after the step's update),
// and the run keeps their sum and count per manifest row. The mean over training (all
// epochs) says how hard the model found the pair throughout, not only at the end, when it
// may have memorised it. Written at the end of a run as RUN_DIR/pair_dynamics.tsv
// (docs/evaluation.md).
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <torch/types.h>

#include "data/manifest.h"
#include "loss/contrastive_loss.h"
#include "loss/pair_batch.h"

namespace halo::dist {
class ProcessGroup;
}

namespace halo::hooks {

// The recorded scores, one column each (higher means "more likely mismatched"):
//   own_mean        the loss's pair score (HALO: the pair's abstention probability)
//   cosine_mean     1 - cos(image, text)
//   in_context_log_odds_mean
//                   the log-odds of 1 - (p_i2t + p_t2i) / 2, p the softmax probability of the
//                   pair's own column among the batch's columns (HALO: plus the abstain column),
//                   both directions; computed in log space (loss/row_scores.h), as eval and
//                   filter's in-context score, so confident pairs do not tie at 0
//   margin_mean     minus the margin of "area under the margin": the best other logit of the
//                   row (HALO: the abstain logit b counts as one) minus the pair's own logit,
//                   mean of both directions; in logit units, so it does not saturate
const std::vector<std::string>& pair_dynamics_columns();

// Logits made at once by step_pair_scores: 2^22 float64 values (32 MiB), whatever the batch.
constexpr int64_t kPairScoreChunkElements = int64_t{1} << 22;

// The step's scores of this process's pairs (the batch's rows): n x 4 float64 on the CPU, in
// the order of pair_dynamics_columns(). The n x M logits of each direction are made in blocks
// of rows of at most chunk_elements values, so memory stays bounded at any batch; no gradient.
torch::Tensor step_pair_scores(loss::ContrastiveLoss& loss, const loss::PairBatch& batch,
                               int64_t chunk_elements = kPairScoreChunkElements);

// Per manifest row: the sum of each score and the number of times the row was scored. Sums
// are kept in fixed point (units of 2^-24, about 6e-8) as int64, so they are exact: the
// result does not depend on the order of the additions, on how they were split over ranks,
// or on a stop and resume. Scores are clamped to [-2^20, 2^20], so a row can take 2^19
// observations before a sum could overflow.
class PairDynamics {
 public:
  PairDynamics() = default;  // records nothing (pairs() == 0)
  explicit PairDynamics(int64_t pairs);

  int64_t pairs() const { return counts_.defined() ? counts_.size(0) : 0; }
  // Adds one observation per row: rows (n, int64 manifest rows) and scores (n x columns).
  // Throws halo::Error on a row out of range or a non-finite score.
  void add(const torch::Tensor& rows, const torch::Tensor& scores);
  // The sums and counts over every rank (a collective: every rank must call it).
  PairDynamics summed_over_ranks(dist::ProcessGroup& group) const;

  // Adds another accumulator's sums and counts (same number of pairs).
  void add_totals(const PairDynamics& other);

  const torch::Tensor& counts() const { return counts_; }  // pairs, int64
  torch::Tensor means() const;  // pairs x columns float64; NaN for a row never scored

  // For the checkpoint: named tensors, and back. load_state throws halo::Error when the
  // saved state is for another number of pairs or is malformed.
  std::map<std::string, torch::Tensor> state() const;
  void load_state(const std::map<std::string, torch::Tensor>& state);

 private:
  friend class RunPairDynamics;
  torch::Tensor sums_;    // pairs x columns int64, in units of 2^-24
  torch::Tensor counts_;  // pairs int64
};

// A run's pair dynamics on one rank. Each rank adds the scores of the pairs it trains on;
// fold(), a collective, gives the sums over all ranks and the whole run (what checkpoints and
// pair_dynamics.tsv hold). With the history kept (the trainer reads it during training:
// loss.sink_bootstrap_from: history), every rank also holds the sums as of the last fold; the
// trainer folds at the end of every epoch and at every checkpoint, and since a pair is trained
// on at most once per epoch, the history of every pair in a batch is then complete, whatever
// the number of ranks and wherever the run was stopped and resumed. Without it a rank holds
// only its own additions (rank 0 also the sums it resumed from).
class RunPairDynamics {
 public:
  RunPairDynamics() = default;  // records nothing
  RunPairDynamics(int64_t pairs, bool keep_history, bool main_rank);

  bool on() const { return since_.pairs() > 0; }
  bool keeps_history() const { return keep_history_; }
  // From a checkpoint's state; every rank validates it (throws halo::Error on a mismatch).
  void load_state(const std::map<std::string, torch::Tensor>& state);
  void add(const torch::Tensor& rows, const torch::Tensor& scores) { since_.add(rows, scores); }
  PairDynamics fold(dist::ProcessGroup& group);
  // Means of one column over every earlier step that trained on each row (needs the history).
  torch::Tensor history_means(const torch::Tensor& rows, const std::string& column) const;
  // Bootstrapping from the history for this rank's rows of a batch: history_sink_share() of
  // the global batch's margin_mean history (a collective: every rank gathers the batch's
  // history), this rank's slice. float64, on the CPU.
  torch::Tensor sink_shares(const torch::Tensor& rows, double beta, double fraction,
                            dist::ProcessGroup& group) const;

 private:
  bool keep_history_ = false, main_rank_ = true;
  PairDynamics since_;   // this rank's additions since the last fold (see above)
  PairDynamics synced_;  // with the history: the sums over all ranks at the last fold
};

// Bootstrapping from the history (loss.sink_bootstrap_from: history): given the batch's rows'
// history means (NaN: no history yet), the round(fraction * k) of the k rows with a history
// that have the highest mean get share `beta`, every other row 0. Ties go to the earlier row.
// float64, on the CPU.
torch::Tensor history_sink_share(const torch::Tensor& history, double beta, double fraction);

struct DynamicsDetection {
  std::string column;
  double auroc = 0, fpr95 = 0;
};

// Writes `path` (through a temporary file and a rename): line, image_path, mismatched (0/1, or
// "-" when the manifest does not record it), seen, and the means ("-" for rows never
// seen). When the manifest records the truth (both kinds among the seen rows), returns the
// AUROC and FPR at 95% TPR of each mean over the seen rows; else nothing.
std::vector<DynamicsDetection> write_pair_dynamics(const std::string& path,
                                                   const PairDynamics& totals,
                                                   const data::Manifest& manifest);

}  // namespace halo::hooks
