// Removing the common offset of a modality's embeddings (model.center_embeddings): in training
// the batch mean is subtracted (gradients flow through it, as in batch normalisation) and a
// running mean is tracked; at inference the running mean is subtracted. Why: HALO's logits are
// distances, and a shared offset that grows in both modalities pushes every pair far from the
// origin sink, disarming it (docs/loss.md, "the common offset").
#pragma once
#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

namespace halo::encoders {

class EmbeddingCenterImpl : public torch::nn::Module {
 public:
  EmbeddingCenterImpl(int64_t dim, double momentum);
  torch::Tensor forward(const torch::Tensor& x);  // n x dim
  const torch::Tensor& running_mean() const { return running_mean_; }

 private:
  double momentum_;
  torch::Tensor running_mean_;
};
TORCH_MODULE(EmbeddingCenter);

}  // namespace halo::encoders
