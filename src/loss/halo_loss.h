// The classification HALO loss: N embeddings against K learnable class centroids plus an
// abstain class at the origin (fixed logit b), soft self-distillation or label-smoothing
// targets, a learnable temperature gamma = softplus(gamma_raw), and the radial regulariser.
#pragma once
#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

namespace halo::loss {

struct HaloLossOptions {
  HaloLossOptions(int64_t embed_dim, int64_t num_classes)
      : embed_dim_(embed_dim), num_classes_(num_classes) {}
  TORCH_ARG(int64_t, embed_dim);
  TORCH_ARG(int64_t, num_classes);
  TORCH_ARG(bool, distill) = true;           // self-distillation targets (else label smoothing)
  TORCH_ARG(double, label_smoothing) = 0.1;  // eps: target mass off the true class
  TORCH_ARG(bool, learn_gamma) = true;
  TORCH_ARG(bool, check_finite) = true;  // reject NaN/inf inputs (one device sync per call)
};

struct HaloLossOutput {
  torch::Tensor loss;         // scalar: cross-entropy + radial term
  torch::Tensor logits_true;  // N x K: gamma * (-||x - c||^2 / D), clamped at 0
  torch::Tensor cross_entropy, radial;
};

// Functional form. embeddings N x D, target N class indices in [0, K), centroids K x D
// (already centred), gamma_raw one element. fp16/bf16 inputs are computed in fp32.
HaloLossOutput halo_loss(const torch::Tensor& embeddings, const torch::Tensor& target,
                         const torch::Tensor& centroids, const torch::Tensor& gamma_raw,
                         double abstain_bias, const HaloLossOptions& options);

class HaloLossImpl : public torch::nn::Module {
 public:
  explicit HaloLossImpl(HaloLossOptions options);
  HaloLossOutput forward(const torch::Tensor& embeddings, const torch::Tensor& target,
                         const torch::Tensor& centroids);
  double abstain_bias() const { return abstain_bias_; }
  torch::Tensor gamma() const;  // softplus(gamma_raw)

  HaloLossOptions options;
  torch::Tensor gamma_raw;

 private:
  double abstain_bias_;
};
TORCH_MODULE(HaloLoss);

// The centroid half of a HALO classifier: K learnable centroids ~ N(0, 1), returned centred
// (their mean removed) so that a common offset cannot disarm the origin sink.
class HaloCentroidsImpl : public torch::nn::Module {
 public:
  HaloCentroidsImpl(int64_t num_classes, int64_t embed_dim);
  torch::Tensor forward() const;  // K x D, centred
  torch::Tensor centroids;
};
TORCH_MODULE(HaloCentroids);

}  // namespace halo::loss
