// Cross-entropy and HALO classifier heads (see classifier_head.h, docs/loss.md).
#include "classify/classifier_head.h"

#include <torch/torch.h>

#include "common/error.h"
#include "loss/shifted_distance.h"

namespace halo::classify {

ClassifierHeadImpl::ClassifierHeadImpl(const std::string& loss, int64_t embed_dim,
                                       int64_t num_classes)
    : num_classes_(num_classes) {
  HALO_CHECK(num_classes >= 2, "a classifier needs at least 2 classes, got ", num_classes);
  if (loss == "ce") {
    linear = register_module("linear", torch::nn::Linear(embed_dim, num_classes));
  } else if (loss == "halo") {
    centroids = register_module("centroids", loss::HaloCentroids(num_classes, embed_dim));
    halo = register_module("halo", loss::HaloLoss(loss::HaloLossOptions(embed_dim, num_classes)));
  } else {
    HALO_FAIL("--loss must be 'ce' or 'halo', got '", loss, "'");
  }
}

torch::Tensor ClassifierHeadImpl::loss(const torch::Tensor& embeddings,
                                       const torch::Tensor& labels) {
  if (halo) return halo->forward(embeddings, labels, centroids->forward()).loss;
  return torch::nn::functional::cross_entropy(linear(embeddings), labels);
}

torch::Tensor ClassifierHeadImpl::logits(const torch::Tensor& embeddings) {
  if (!halo) return linear(embeddings);
  const torch::Tensor x = embeddings.to(torch::kFloat);
  const torch::Tensor S = loss::shifted_distance(x, centroids->forward(), halo->gamma());
  return torch::cat({S, torch::full({S.size(0), 1}, halo->abstain_bias(), S.options())}, 1);
}

HeadPredictions ClassifierHeadImpl::predict(const torch::Tensor& embeddings) {
  const torch::Tensor p = torch::softmax(logits(embeddings), 1);
  HeadPredictions out;
  if (halo) {
    out.probs = p.slice(1, 0, num_classes_);
    out.ood_score = p.select(1, num_classes_);
  } else {
    out.probs = p;
    out.ood_score = 1.0 - std::get<0>(p.max(1));
  }
  return out;
}

}  // namespace halo::classify
