// The two baselines HALO is compared against, over the same rows/columns interface:
//  - CLIP's InfoNCE: L2-normalised embeddings, logits = exp(logit_scale) * cosine, symmetric
//    cross-entropy; logit_scale starts at ln(1/0.07) and is clamped at ln(100).
//  - SigLIP's sigmoid loss: logits = exp(t') * cosine + bias, binary cross-entropy of every
//    (row, column) pair, +1 on the diagonal and -1 elsewhere; t' starts at ln 10, bias at -10.
#pragma once
#include <torch/types.h>

#include "loss/pair_batch.h"

namespace halo::loss {

constexpr double kInfoNceInitLogitScale = 2.659260036932778;     // ln(1 / 0.07)
constexpr double kInfoNceMaxLogitScale = 4.605170185988092;      // ln(100)
constexpr double kSigLipInitLogTemperature = 2.302585092994046;  // ln(10)
constexpr double kSigLipInitBias = -10.0;

struct InfoNceParts {
  torch::Tensor total, ce_image_to_text, ce_text_to_image;  // means over the rows
};
// With batch.sink_share, row i's cross-entropies are weighted by 1 - share_i.
// check_finite: reject NaN or infinite embeddings first (check_pair_batch).
InfoNceParts infonce_loss(const PairBatch& batch, const torch::Tensor& logit_scale,
                          bool check_finite = true);

struct SigLipParts {
  torch::Tensor total;  // sum over columns, mean over rows
};
SigLipParts siglip_loss(const PairBatch& batch, const torch::Tensor& log_temperature,
                        const torch::Tensor& bias, bool check_finite = true);

}  // namespace halo::loss
