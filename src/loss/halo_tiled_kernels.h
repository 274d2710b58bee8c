// Launchers of the tiled HALO direction's CUDA kernels (halo_tiled_forward.cu,
// halo_tiled_backward.cu): raw device pointers, sizes, row strides and a stream; no LibTorch.
// Embeddings are fp32 or bf16 and every sum is accumulated in fp32. Each launcher returns the
// CUDA error of its launches (0: cudaSuccess).
#pragma once
#include <cstdint>

struct CUstream_st;  // cudaStream_t is CUstream_st*

namespace halo::loss::cuda {

enum class ElementType { kFloat32, kBFloat16 };

// One direction: queries q (n x d, row stride q_stride elements) against candidates c (m x d,
// stride c_stride); row i's true column is row_offset + i. gamma is a device pointer to one
// float. c_sq (m) holds ||c_j||^2 and q_sq (n) ||q_i||^2, both fp32 on the device.
struct DirectionArgs {
  const void* q = nullptr;
  const void* c = nullptr;
  ElementType type = ElementType::kFloat32;
  int64_t n = 0, m = 0, d = 0, q_stride = 0, c_stride = 0, row_offset = 0;
  const float* gamma = nullptr;
  const float* c_sq = nullptr;
  const float* q_sq = nullptr;
  float b = 0.f, eps = 0.1f;
  bool distill = true;
};

// Per row: lse_sink = logaddexp(logsumexp_j S_ij, b), target_lse (distill: the log-normaliser
// of the target logits; else unused, may be null) and ce = lse_sink - sum_j T_ij S_ij.
int launch_tiled_forward(const DirectionArgs& a, float* lse_sink, float* target_lse, float* ce,
                         CUstream_st* stream);

// With G = (softmax - T) * grad_out[0] / n recomputed tile by tile:
// gc (n x d, dense) = G C; and, when gtq is not null, gtq (m x d, dense) = G^T Q and colsum
// (m) = column sums of G. Outputs are overwritten. grad_out is a device pointer to one float.
int launch_tiled_backward(const DirectionArgs& a, const float* lse_sink, const float* target_lse,
                          const float* grad_out, float* gc, float* gtq, float* colsum,
                          CUstream_st* stream);

}  // namespace halo::loss::cuda
