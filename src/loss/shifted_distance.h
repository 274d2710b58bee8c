// The shifted distance matrix S = gamma * (2 Q C^T - ||c||^2) / D, one autograd operation.
// Q (n x D) are queries, C (m x D) candidates, gamma a 0-d or 1-element tensor (> 0).
// It equals gamma * (-||q - c||^2 + ||q||^2) / D: a negative squared distance with the
// per-row term dropped (softmax over a row does not see it). The dense loss uses it; the tiled
// loss (halo_tiled.h) applies the same maths tile by tile without forming S.
#pragma once
#include <torch/types.h>

namespace halo::loss {

// Differentiable with respect to q, c and gamma. Inputs must share dtype and device.
torch::Tensor shifted_distance(const torch::Tensor& q, const torch::Tensor& c,
                               const torch::Tensor& gamma);

// The plain forward/backward maths, exposed for tests and for the tiled implementation.
torch::Tensor shifted_distance_forward(const torch::Tensor& q, const torch::Tensor& c,
                                       const torch::Tensor& gamma);
struct ShiftedDistanceGrads {
  torch::Tensor q, c, gamma;  // undefined where not asked for
};
ShiftedDistanceGrads shifted_distance_backward(const torch::Tensor& grad, const torch::Tensor& q,
                                               const torch::Tensor& c, const torch::Tensor& gamma,
                                               bool need_q, bool need_c, bool need_gamma);

}  // namespace halo::loss
