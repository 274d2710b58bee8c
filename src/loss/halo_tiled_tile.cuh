// Device code shared by the tiled HALO kernels: loading fp32/bf16 embeddings, one 32 x 32
// tile of the shifted distance matrix S computed in shared memory with fp32 accumulation, the
// target logits, and warp reductions. Thread (ty, tx) of a 256-thread block holds S at rows
// ty + 8k (k = 0..3) and column tx of the tile, so warp ty owns four whole tile rows.
#pragma once
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "loss/halo_tiled_kernels.h"

namespace halo::loss::cuda::detail {

constexpr int kTile = 32;                                 // rows and columns of a tile
constexpr int kDepth = 32;                                // embedding dimensions loaded per step
constexpr int kThreads = 256;                             // 8 warps
constexpr int kRowsPerThread = kTile * kTile / kThreads;  // 4
constexpr int kWarps = kThreads / 32;

__device__ __forceinline__ float load(const float* p, int64_t i) {
  return p[i];
}
__device__ __forceinline__ float load(const __nv_bfloat16* p, int64_t i) {
  return __bfloat162float(p[i]);
}

__device__ __forceinline__ float warp_sum(float v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
__device__ __forceinline__ float warp_max(float v) {
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

struct TileMemory {
  float a[kTile][kDepth + 1];  // a chunk of rows of one operand
  float b[kTile][kDepth + 1];  // a chunk of rows of the other
};

// s[k] = S[r0 + ty + 8k][c0 + tx] (0 outside the matrix). All threads of the block call it.
template <typename T>
__device__ void shifted_tile(const DirectionArgs& a, const T* q, const T* c, int64_t r0, int64_t c0,
                             TileMemory& mem, float s[kRowsPerThread]) {
  const int tid = threadIdx.x, tx = tid % kTile, ty = tid / kTile;
  float acc[kRowsPerThread] = {0.f, 0.f, 0.f, 0.f};
  for (int64_t k0 = 0; k0 < a.d; k0 += kDepth) {
    for (int e = tid; e < kTile * kDepth; e += kThreads) {
      const int r = e / kDepth, k = e % kDepth;
      const int64_t gk = k0 + k, gi = r0 + r, gj = c0 + r;
      mem.a[r][k] = (gi < a.n && gk < a.d) ? load(q, gi * a.q_stride + gk) : 0.f;
      mem.b[r][k] = (gj < a.m && gk < a.d) ? load(c, gj * a.c_stride + gk) : 0.f;
    }
    __syncthreads();
#pragma unroll 8
    for (int k = 0; k < kDepth; ++k) {
      const float cv = mem.b[tx][k];
#pragma unroll
      for (int rr = 0; rr < kRowsPerThread; ++rr) acc[rr] += mem.a[ty + kWarps * rr][k] * cv;
    }
    __syncthreads();
  }
  const float g = *a.gamma, inv_d = 1.f / static_cast<float>(a.d);
  const int64_t j = c0 + tx;
  const float c_sq = j < a.m ? a.c_sq[j] : 0.f;
#pragma unroll
  for (int rr = 0; rr < kRowsPerThread; ++rr) s[rr] = g * (2.f * acc[rr] - c_sq) * inv_d;
}

// Distillation target logit of entry (i, j) with model logit s: 0 at the true column, else
// min(s - gamma ||q_i||^2 / D, 0) / eps.
__device__ __forceinline__ float target_logit(const DirectionArgs& a, int64_t i, int64_t j,
                                              float s) {
  if (j == a.row_offset + i) return 0.f;
  const float shift = *a.gamma * a.q_sq[i] / static_cast<float>(a.d);
  return fminf(s - shift, 0.f) / a.eps;
}

// The target T_ij: distillation needs the row's target log-normaliser.
__device__ __forceinline__ float target(const DirectionArgs& a, int64_t i, int64_t j, float s,
                                        float target_lse) {
  if (a.distill) return expf(target_logit(a, i, j, s) - target_lse);
  const float uniform = a.eps / static_cast<float>(a.m);
  return j == a.row_offset + i ? 1.f - a.eps + uniform : uniform;
}

}  // namespace halo::loss::cuda::detail
