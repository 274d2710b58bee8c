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

#include "loss/pair_batch.h"

namespace halo::loss {

struct ContrastiveLossOptions {
  std::string name = "halo";     // halo | infonce | siglip
  int64_t embed_dim = 512;
  int64_t num_candidates = 256;  // HALO's K for the abstain bias: the global batch size
  double label_smoothing = 0.1;  // HALO only
  bool distill = true;           // HALO only: self-distillation (else label smoothing)
  bool learn_temperature = true;
  std::string implementation = "dense";  // HALO only: dense | tiled | kernel | auto (halo_clip_loss.h)
  int64_t tile_size = 1024;              // HALO only, tiled on CPU
  std::string temperature = "softplus";  // HALO only: softplus | log (gamma = exp(log_gamma))
  double radial_weight = 1.0;            // HALO only
  double sink_bootstrap = 0.0;           // HALO only (HaloClipOptions)
};

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
  // The logits this loss normalises, between queries (n x D) and candidates (m x D), fp32 or
  // fp64: HALO's shifted distances, InfoNCE's scaled cosines, SigLIP's scaled cosines plus bias.
  // Retrieval ranks by them; zero-shot classification takes their softmax.
  virtual torch::Tensor logits(const torch::Tensor& queries, const torch::Tensor& candidates) = 0;
  // HALO's abstain logit b, the origin sink's fixed logit in every row; none for the others.
  virtual std::optional<double> abstain_logit() const { return std::nullopt; }
  virtual std::string kind() const = 0;
};

std::shared_ptr<ContrastiveLoss> make_contrastive_loss(const ContrastiveLossOptions& options);
const std::vector<std::string>& contrastive_loss_names();

}  // namespace halo::loss
