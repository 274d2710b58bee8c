// Forward and backward of the shifted distance matrix, and the autograd Function that
// dispatches to them. Backward, with G = dL/dS and s = gamma * 2 / D:
//   dQ = s * G C,   dC = s * (G^T Q - colsum(G) * C),
//   dgamma = (2/D) sum(Q * (G C)) - (1/D) sum_j colsum(G)_j ||c_j||^2   (no division by gamma).
#include "loss/shifted_distance.h"

#include <torch/torch.h>

#include "common/error.h"

namespace halo::loss {

torch::Tensor shifted_distance_forward(const torch::Tensor& q, const torch::Tensor& c,
                                       const torch::Tensor& gamma) {
  const double D = static_cast<double>(q.size(1));
  // addmm(bias, Q, C^T, beta, alpha) = -||c||^2/D + (2/D) Q C^T in one pass over the output.
  torch::Tensor neg_c_sq = c.pow(2).sum(1).div(-D).unsqueeze(0);
  torch::Tensor s = torch::addmm(neg_c_sq, q, c.t(), /*beta=*/1, /*alpha=*/2.0 / D);
  return s.mul_(gamma.reshape({}));
}

ShiftedDistanceGrads shifted_distance_backward(const torch::Tensor& grad, const torch::Tensor& q,
                                               const torch::Tensor& c, const torch::Tensor& gamma,
                                               bool need_q, bool need_c, bool need_gamma) {
  const double D = static_cast<double>(q.size(1));
  const torch::Tensor g = gamma.reshape({});
  ShiftedDistanceGrads out;
  torch::Tensor gc;  // G C, shared by dQ and dgamma
  if (need_q || need_gamma) gc = torch::mm(grad, c);
  torch::Tensor colsum;
  if (need_c || need_gamma) colsum = grad.sum(0);
  if (need_q) out.q = gc * (g * (2.0 / D));
  if (need_c) {
    torch::Tensor gtq = torch::mm(grad.t(), q);
    out.c = (gtq - colsum.unsqueeze(1) * c) * (g * (2.0 / D));
  }
  if (need_gamma) {
    torch::Tensor dot_term = (q * gc).sum() * (2.0 / D);
    torch::Tensor norm_term = (colsum * c.pow(2).sum(1)).sum() / D;
    out.gamma = (dot_term - norm_term).reshape(gamma.sizes());
  }
  return out;
}

namespace {

class ShiftedDistanceFunction : public torch::autograd::Function<ShiftedDistanceFunction> {
 public:
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& q,
                               const torch::Tensor& c, const torch::Tensor& gamma) {
    ctx->save_for_backward({q, c, gamma});
    ctx->saved_data["need_q"] = q.requires_grad();
    ctx->saved_data["need_c"] = c.requires_grad();
    ctx->saved_data["need_gamma"] = gamma.requires_grad();
    return shifted_distance_forward(q, c, gamma);
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    auto saved = ctx->get_saved_variables();
    ShiftedDistanceGrads d = shifted_distance_backward(
        grads[0].contiguous(), saved[0], saved[1], saved[2], ctx->saved_data["need_q"].toBool(),
        ctx->saved_data["need_c"].toBool(), ctx->saved_data["need_gamma"].toBool());
    return {d.q, d.c, d.gamma};
  }
};

}  // namespace

torch::Tensor shifted_distance(const torch::Tensor& q, const torch::Tensor& c,
                               const torch::Tensor& gamma) {
  HALO_CHECK(q.dim() == 2 && c.dim() == 2,
             "shifted_distance: queries and candidates must be 2-D, got ", q.sizes(), " and ",
             c.sizes());
  HALO_CHECK(q.size(1) == c.size(1),
             "shifted_distance: embedding sizes differ: queries have D = ", q.size(1),
             ", candidates D = ", c.size(1));
  HALO_CHECK(gamma.numel() == 1, "shifted_distance: gamma must have one element, got shape ",
             gamma.sizes());
  HALO_CHECK(q.scalar_type() == c.scalar_type() && q.scalar_type() == gamma.scalar_type(),
             "shifted_distance: dtypes differ (queries ", q.scalar_type(), ", candidates ",
             c.scalar_type(), ", gamma ", gamma.scalar_type(), ")");
  HALO_CHECK(q.device() == c.device() && q.device() == gamma.device(),
             "shifted_distance: inputs are on different devices");
  return ShiftedDistanceFunction::apply(q, c, gamma);
}

}  // namespace halo::loss
