// Classification HALO loss and centroids (see halo_loss.h, docs/loss.md).
#include "loss/halo_loss.h"

#include <torch/torch.h>

#include "common/error.h"
#include "loss/halo_terms.h"
#include "loss/shifted_distance.h"

namespace halo::loss {

HaloLossOutput halo_loss(const torch::Tensor& embeddings, const torch::Tensor& target,
                         const torch::Tensor& centroids, const torch::Tensor& gamma_raw, double b,
                         const HaloLossOptions& options) {
  check_label_smoothing(options.label_smoothing(), options.distill());
  check_embeddings("HALO embeddings", embeddings, options.check_finite());
  check_embeddings("HALO centroids", centroids, options.check_finite());
  const int64_t N = embeddings.size(0), D = embeddings.size(1), K = centroids.size(0);
  HALO_CHECK(centroids.size(1) == D, "HALO embeddings have D = ", D,
             " but centroids have D = ", centroids.size(1));
  HALO_CHECK(D == options.embed_dim(), "HALO loss was built for D = ", options.embed_dim(),
             " but embeddings have D = ", D);
  HALO_CHECK(target.dim() == 1 && target.size(0) == N, "HALO targets must be a vector of ", N,
             " class indices, got shape ", target.sizes());
  HALO_CHECK(!target.is_floating_point(), "HALO targets must be integer class indices, got ",
             target.scalar_type());
  const auto lo = target.min().item<int64_t>(), hi = target.max().item<int64_t>();
  HALO_CHECK(lo >= 0 && hi < K, "HALO target out of range: got classes in [", lo, ", ", hi,
             "] but there are K = ", K, " centroids");

  const torch::Tensor x = to_compute_dtype(embeddings);
  const torch::Tensor c = to_compute_dtype(centroids).to(x.scalar_type());
  const torch::Tensor cls = target.to(torch::kLong);
  const torch::Tensor gamma = gamma_from_raw(gamma_raw, x.scalar_type());
  const double eps = options.label_smoothing();

  torch::Tensor S = shifted_distance(x, c, gamma);  // N x K
  torch::Tensor targets =
      options.distill() ? distill_targets(S, gamma, x, cls, eps) : smoothing_targets(S, cls, eps);
  HaloLossOutput out;
  out.cross_entropy = sink_cross_entropy(S, b, targets);
  out.radial = radial_nll((x - c.index_select(0, cls)).pow(2).mean(1), D);
  out.loss = out.cross_entropy + out.radial;
  out.logits_true = true_logits(S, gamma, x);
  return out;
}

HaloLossImpl::HaloLossImpl(HaloLossOptions opts)
    : options(opts),
      abstain_bias_(
          loss::abstain_bias(opts.embed_dim(), opts.num_classes(), opts.label_smoothing())) {
  check_label_smoothing(opts.label_smoothing(), opts.distill());
  gamma_raw = register_parameter(
      "gamma_raw", torch::full({1}, initial_gamma_raw(opts.embed_dim()), torch::kFloat),
      opts.learn_gamma());
}

HaloLossOutput HaloLossImpl::forward(const torch::Tensor& embeddings, const torch::Tensor& target,
                                     const torch::Tensor& centroids) {
  return halo_loss(embeddings, target, centroids, gamma_raw, abstain_bias_, options);
}

torch::Tensor HaloLossImpl::gamma() const {
  return gamma_from_raw(gamma_raw, torch::kFloat);
}

HaloCentroidsImpl::HaloCentroidsImpl(int64_t num_classes, int64_t embed_dim) {
  HALO_CHECK(num_classes >= 1 && embed_dim >= 2,
             "HALO centroids need K >= 1 and D >= 2, got K = ", num_classes, ", D = ", embed_dim);
  centroids = register_parameter("centroids", torch::randn({num_classes, embed_dim}));
}

torch::Tensor HaloCentroidsImpl::forward() const {
  return centroids - centroids.mean(0, /*keepdim=*/true);
}

}  // namespace halo::loss
