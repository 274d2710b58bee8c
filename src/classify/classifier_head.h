// The last layer of an image classifier and its loss, chosen by name: "ce" (a linear layer and
// softmax cross-entropy) or "halo" (learnable class centroids, the HALO loss and its abstain
// class). Both turn embeddings into class probabilities and an out-of-distribution score.
#pragma once
#include <cstdint>
#include <string>

#include <torch/nn/module.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/pimpl.h>

#include "loss/halo_loss.h"

namespace halo::classify {

struct HeadPredictions {
  torch::Tensor probs;  // N x K class probabilities (HALO: of the K + 1 softmax, abstain left out)
  torch::Tensor ood_score;  // N: higher = more likely out of distribution
};

class ClassifierHeadImpl : public torch::nn::Module {
 public:
  ClassifierHeadImpl(const std::string& loss, int64_t embed_dim, int64_t num_classes);
  // Mean training loss of N x D embeddings with N class indices.
  torch::Tensor loss(const torch::Tensor& embeddings, const torch::Tensor& labels);
  // CE: softmax probabilities, score 1 - max probability. HALO: softmax over the K shifted
  // logits and the abstain logit b, score = the abstain probability.
  HeadPredictions predict(const torch::Tensor& embeddings);
  // The logits the softmax sees: N x K (CE) or N x (K + 1) with the abstain column last (HALO).
  torch::Tensor logits(const torch::Tensor& embeddings);
  bool is_halo() const { return static_cast<bool>(halo); }
  int64_t num_classes() const { return num_classes_; }

  torch::nn::Linear linear{nullptr};       // ce
  loss::HaloCentroids centroids{nullptr};  // halo
  loss::HaloLoss halo{nullptr};            // halo: gamma and the abstain bias

 private:
  int64_t num_classes_;
};
TORCH_MODULE(ClassifierHead);

}  // namespace halo::classify
