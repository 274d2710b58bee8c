// Each row's softmax over its candidates (and the loss's abstain logit as one more column, where
// it has one), in log space and in blocks of rows so that memory does not grow with n x M: the
// one place that computes the in-context score, for evaluation, filtering and the pair dynamics
// alike. The n x M pass runs in the logits' precision (fp32 in training: one max and one
// log-sum-exp of each row's other columns); the per-row results are float64 and in log space,
// log p = -log(1 + exp(others - own)) and log(1 - p) likewise, so 1 - p stays exact where p
// rounds to 1 and no two pairs tie by saturation.
#pragma once
#include <cstdint>

#include <torch/types.h>

#include "loss/contrastive_loss.h"

namespace halo::loss {

struct RowScores {
  torch::Tensor own_log_p;    // log of the softmax probability of the row's own column
  torch::Tensor other_log_p;  // log of the probability of every other column (log(1 - p))
  torch::Tensor margin;       // the own logit minus the best other logit (the sink included)
};

// Row i's own column is offset + i. block_rows: rows whose logits are made at a time.
RowScores row_scores(ContrastiveLoss& loss, const torch::Tensor& queries,
                     const torch::Tensor& candidates, int64_t offset, int64_t block_rows);

// The in-context mismatch log-odds of each pair: s / (1 - s) with s = 1 - (p_i2t + p_t2i) / 2,
// p the softmax probability of the pair's own column in each direction, i.e.
// log((1 - p_i2t) + (1 - p_t2i)) - log(p_i2t + p_t2i). Rows i of `image_rows` and `text_rows`
// are pairs whose own columns are offset + i among `text_cols` and `image_cols`.
torch::Tensor in_context_log_odds(ContrastiveLoss& loss, const torch::Tensor& image_rows,
                                  const torch::Tensor& text_rows, const torch::Tensor& image_cols,
                                  const torch::Tensor& text_cols, int64_t offset,
                                  int64_t block_rows);
// The same where the pairs are the whole candidate set (image[i] with text[i]).
inline torch::Tensor in_context_log_odds(ContrastiveLoss& loss, const torch::Tensor& image,
                                         const torch::Tensor& text, int64_t block_rows) {
  return in_context_log_odds(loss, image, text, image, text, 0, block_rows);
}

}  // namespace halo::loss
