// The batch HALO loss's cross-entropy for one direction without the n x M shifted distance
// matrix: rows and columns are visited in tiles with an online log-sum-exp; the forward keeps
// two numbers per row and the backward recomputes each tile (docs/kernel.md). By default ATen
// operations on tiles, on any device; with `kernel`, the hand-written CUDA kernels in
// halo_tiled_*.cu (CUDA tensors, builds with CUDA LibTorch and nvcc).
#pragma once
#include <cstdint>

#include <torch/types.h>

namespace halo::loss {

// What one direction needs besides the embeddings: row i's true column is row_offset + i, the
// abstain logit b, the label smoothing eps, the target mode, the tile edge of the ATen path
// (rows and columns), whether to run the CUDA kernels instead, and the rows whose partner is
// hidden (partner dropout: their true column leaves the softmax and the sink is their target).
struct TiledDirectionParams {
  int64_t row_offset = 0;
  double b = 0.0;
  double eps = 0.1;
  bool distill = true;
  int64_t tile = 1024;
  bool kernel = false;    // the CUDA kernels (CUDA tensors only) instead of ATen tiles
  torch::Tensor dropped;  // n bool, or undefined (none); ATen tiles only
};

// mean_i CE_i of queries q (n x D) against candidates c (M x D) plus the sink, differentiable
// with respect to q, c and gamma (0-d, the softplus already applied). Equals the dense
// sink_cross_entropy(shifted_distance(q, c, gamma), b, targets) with distillation or smoothing
// targets. q and c share dtype and device: fp32/fp64 for ATen tiles (gamma of the same dtype),
// fp32/bf16 for the kernels (gamma fp32).
torch::Tensor tiled_direction_cross_entropy(const torch::Tensor& q, const torch::Tensor& c,
                                            const torch::Tensor& gamma,
                                            const TiledDirectionParams& params);

// Whether this build has the CUDA kernels (params.kernel).
bool tiled_cuda_available();

// The plain forward and backward on ATen tiles (any device), exposed for the autograd function
// and the CUDA adapter.
struct TiledForward {
  torch::Tensor ce;          // 0-d: mean over rows
  torch::Tensor lse_sink;    // n: logaddexp(logsumexp_j S_ij, b)
  torch::Tensor target_lse;  // n: log-normaliser of the distillation targets (distill only)
};
struct TiledGrads {
  torch::Tensor q, c, gamma;  // undefined where not asked for
};
TiledForward tiled_direction_forward_aten(const torch::Tensor& q, const torch::Tensor& c,
                                          const torch::Tensor& gamma,
                                          const TiledDirectionParams& p);
// grad_out: 0-d upstream gradient of the mean cross-entropy.
TiledGrads tiled_direction_backward_aten(const torch::Tensor& grad_out, const torch::Tensor& q,
                                         const torch::Tensor& c, const torch::Tensor& gamma,
                                         const TiledForward& saved, const TiledDirectionParams& p,
                                         bool need_q, bool need_c, bool need_gamma);

}  // namespace halo::loss
