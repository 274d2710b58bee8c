// Removing the common offset of a modality's embeddings (model.center_embeddings): in training
// the batch mean is subtracted (gradients flow through it, as in batch normalisation) and a
// running mean is tracked; at inference the running mean is subtracted. Why: HALO's logits are
// distances, and a shared offset that grows in both modalities pushes every pair far from the
// origin sink, disarming it (docs/loss.md, "the common offset").
#pragma once
#include <functional>

#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

namespace halo::encoders {

class EmbeddingCenterImpl : public torch::nn::Module {
 public:
  // The mean of a training batch's rows (n x dim -> dim), with gradient: by default the rows
  // given; with several processes, every process's rows (dist::global_batch_mean), so that the
  // centring is that of the global batch, as in one process.
  using BatchMean = std::function<torch::Tensor(const torch::Tensor&)>;

  EmbeddingCenterImpl(int64_t dim, double momentum);
  torch::Tensor forward(const torch::Tensor& x);  // n x dim
  const torch::Tensor& running_mean() const { return running_mean_; }
  void set_batch_mean(BatchMean batch_mean) { batch_mean_ = std::move(batch_mean); }

 private:
  double momentum_;
  torch::Tensor running_mean_;
  BatchMean batch_mean_;  // empty: the mean of the rows given
};
TORCH_MODULE(EmbeddingCenter);

}  // namespace halo::encoders
