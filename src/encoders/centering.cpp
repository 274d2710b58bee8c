// Embedding centring (see centering.h).
#include "encoders/centering.h"

#include <torch/torch.h>

#include "common/error.h"

namespace halo::encoders {

EmbeddingCenterImpl::EmbeddingCenterImpl(int64_t dim, double momentum) : momentum_(momentum) {
  HALO_CHECK(momentum > 0 && momentum <= 1, "model.center_momentum must be in (0, 1], got ",
             momentum);
  running_mean_ = register_buffer("running_mean", torch::zeros({dim}));
}

torch::Tensor EmbeddingCenterImpl::forward(const torch::Tensor& x) {
  if (!is_training()) return x - running_mean_.to(x.scalar_type());
  const torch::Tensor mean = batch_mean_ ? batch_mean_(x) : x.mean(0);
  {
    torch::NoGradGuard no_grad;
    running_mean_.mul_(1.0 - momentum_)
        .add_(mean.detach().to(running_mean_.scalar_type()), momentum_);
  }
  return x - mean;
}

}  // namespace halo::encoders
