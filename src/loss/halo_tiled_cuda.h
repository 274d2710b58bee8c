// The CUDA side of the tiled HALO direction: converts tensors to raw pointers and launches the
// kernels of halo_tiled_forward.cu and halo_tiled_backward.cu on the current CUDA stream.
// Defined only in builds whose LibTorch has CUDA (HALO_WITH_CUDA); callers check
// tiled_cuda_available() first.
#pragma once
#include <torch/types.h>

#include "loss/halo_tiled.h"

namespace halo::loss {

TiledForward tiled_direction_forward_cuda(const torch::Tensor& q, const torch::Tensor& c,
                                          const torch::Tensor& gamma,
                                          const TiledDirectionParams& p);
TiledGrads tiled_direction_backward_cuda(const torch::Tensor& grad_out, const torch::Tensor& q,
                                         const torch::Tensor& c, const torch::Tensor& gamma,
                                         const TiledForward& saved, const TiledDirectionParams& p,
                                         bool need_q, bool need_c, bool need_gamma);

}  // namespace halo::loss
