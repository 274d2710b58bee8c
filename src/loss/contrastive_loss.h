// One interface over the three image-text losses, chosen by name ("halo", "infonce",
// "siglip"): a module that owns the loss's learnable scalars (temperature, bias) and maps a
// PairBatch to a loss, its named parts for logging, and a per-pair mismatch score.
#pragma once
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <torch/nn/module.h>
#include <torch/types.h>

#include "loss/loss_config.h"
#include "loss/pair_batch.h"

namespace halo::loss {

struct LossOutput {
  torch::Tensor total;  // the scalar to minimise (a mean over the rows)
  std::vector<std::pair<std::string, torch::Tensor>> parts;  // named scalars, for logs
};

class ContrastiveLoss : public torch::nn::Module {
 public:
  virtual LossOutput forward(const PairBatch& batch) = 0;
  // Per aligned pair (image_i, text_i), a score in [0, 1]: higher means "more likely a
  // mismatched pair". HALO: the abstention probability; InfoNCE: (1 - cosine) / 2;
  // SigLIP: 1 - sigmoid(pair logit).
  virtual torch::Tensor mismatch_score(const torch::Tensor& image, const torch::Tensor& text) = 0;
  // The same score as log-odds, log(s / (1 - s)), in float64 and computed in log space, so that
  // it keeps ordering pairs whose score rounds to exactly 1 (or 0): filter and eval rank by it.
  // HALO: pair_abstain_log_odds; InfoNCE: log(1 - cos) - log(1 + cos); SigLIP: -(pair logit).
  virtual torch::Tensor mismatch_log_odds(const torch::Tensor& image,
                                          const torch::Tensor& text) = 0;
  // The logits this loss normalises, between queries (n x D) and candidates (m x D), fp32 or
  // fp64: HALO's shifted distances, InfoNCE's scaled cosines, SigLIP's scaled cosines plus bias.
  // Retrieval ranks by them; zero-shot classification takes their softmax.
  virtual torch::Tensor logits(const torch::Tensor& queries, const torch::Tensor& candidates) = 0;
  // HALO's abstain logit b, the origin sink's fixed logit in every row; none for the others.
  virtual std::optional<double> abstain_logit() const { return std::nullopt; }
  virtual std::string kind() const = 0;
};

// The log-odds of the cosine score (1 - cos) / 2: log(1 - cos) - log(1 + cos), float64, one
// value per aligned pair (InfoNCE's mismatch_log_odds, and filter's --score cosine ranking).
torch::Tensor cosine_log_odds(const torch::Tensor& image, const torch::Tensor& text);

// Retrieval by a loss's logits: for each query i (n x D), the 1-based rank of candidate i among
// `candidates` (m x D, m >= n), ties counted against it (common/metrics.h). Row chunks of
// `chunk_rows` keep memory at chunk_rows x m.
std::vector<int64_t> retrieval_ranks(ContrastiveLoss& loss, const torch::Tensor& queries,
                                     const torch::Tensor& candidates, int64_t chunk_rows);

// Validates the options (throws halo::Error naming the key) and builds the named loss.
std::shared_ptr<ContrastiveLoss> make_contrastive_loss(const ContrastiveLossOptions& options);
const std::vector<std::string>& contrastive_loss_names();

}  // namespace halo::loss
