// The batch HALO loss's cross-entropy for one direction without the n x M shifted distance
// matrix: rows and columns are visited in tiles with an online log-sum-exp; the forward keeps
// two numbers per row and the backward recomputes each tile (docs/kernel.md). CPU tensors use
// ATen on tiles; CUDA tensors go to the kernels in halo_tiled_*.cu (builds with CUDA LibTorch).
#pragma once
#include <cstdint>

#include <torch/types.h>

namespace halo::loss {

// What one direction needs besides the embeddings: row i's true column is row_offset + i, the
// abstain logit b, the label smoothing eps, the target mode and the tile edge (rows and columns).
struct TiledDirectionParams {
  int64_t row_offset = 0;
  double b = 0.0;
  double eps = 0.1;
  bool distill = true;
  int64_t tile = 1024;
};

// mean_i CE_i of queries q (n x D) against candidates c (M x D) plus the sink, differentiable
// with respect to q, c and gamma (0-d, the softplus already applied). Equals the dense
// sink_cross_entropy(shifted_distance(q, c, gamma), b, targets) with distillation or smoothing
// targets. q and c share dtype (fp32/fp64; bf16 and fp32 on CUDA) and device.
torch::Tensor tiled_direction_cross_entropy(const torch::Tensor& q, const torch::Tensor& c,
                                            const torch::Tensor& gamma,
                                            const TiledDirectionParams& params);

// Whether this build can run the tiled loss on CUDA tensors.
bool tiled_cuda_available();

// The plain forward and backward, exposed for the autograd function and the CUDA adapter.
struct TiledForward {
  torch::Tensor ce;          // 0-d: mean over rows
  torch::Tensor lse_sink;    // n: logaddexp(logsumexp_j S_ij, b)
  torch::Tensor target_lse;  // n: log-normaliser of the distillation targets (distill only)
};
struct TiledGrads {
  torch::Tensor q, c, gamma;  // undefined where not asked for
};
TiledForward tiled_direction_forward_cpu(const torch::Tensor& q, const torch::Tensor& c,
                                         const torch::Tensor& gamma, const TiledDirectionParams& p);
// grad_out: 0-d upstream gradient of the mean cross-entropy.
TiledGrads tiled_direction_backward_cpu(const torch::Tensor& grad_out, const torch::Tensor& q,
                                        const torch::Tensor& c, const torch::Tensor& gamma,
                                        const TiledForward& saved, const TiledDirectionParams& p,
                                        bool need_q, bool need_c, bool need_gamma);

}  // namespace halo::loss
