// Forward kernel of the tiled HALO direction: one block per 32 query rows walks every column
// tile, computes S in shared memory and keeps, per row and in registers, an online log-sum-exp
// of the model's logits and (distillation) of the target logits with the target-weighted sum
// of S (smoothing: the row sum of S and S at the true column). Writes three numbers per row.
#include <cmath>

#include "loss/halo_tiled_tile.cuh"

namespace halo::loss::cuda {

namespace {

using namespace detail;

struct RowState {
  float max = -INFINITY, sum = 0.f;                        // model logits
  float t_max = -INFINITY, t_sum = 0.f, t_weighted = 0.f;  // target logits (distill)
  float row_sum = 0.f, true_s = 0.f;                       // smoothing
};

// Merges one tile row (value v in each lane, valid lanes only) into the running state.
__device__ void online_add(float& max, float& sum, float* weighted, float v, bool valid, float w) {
  const float tile_max = warp_max(valid ? v : -INFINITY);
  const float new_max = fmaxf(max, tile_max);
  const float rescale = expf(max - new_max);  // 0 on the first tile (max = -inf)
  const float e = valid ? expf(v - new_max) : 0.f;
  sum = sum * rescale + warp_sum(e);
  if (weighted) *weighted = *weighted * rescale + warp_sum(e * w);
  max = new_max;
}

template <typename T>
__global__ void __launch_bounds__(kThreads)
    forward_kernel(DirectionArgs a, float* lse_sink, float* target_lse, float* ce) {
  __shared__ TileMemory mem;
  const T* q = static_cast<const T*>(a.q);
  const T* c = static_cast<const T*>(a.c);
  const int tx = threadIdx.x % kTile, ty = threadIdx.x / kTile;
  const int64_t r0 = static_cast<int64_t>(blockIdx.x) * kTile;
  RowState st[kRowsPerThread];
  for (int64_t c0 = 0; c0 < a.m; c0 += kTile) {
    float s[kRowsPerThread];
    shifted_tile(a, q, c, r0, c0, mem, s);
    const int64_t j = c0 + tx;
    const bool col_ok = j < a.m;
#pragma unroll
    for (int rr = 0; rr < kRowsPerThread; ++rr) {
      const int64_t i = r0 + ty + kWarps * rr;
      if (i >= a.n) continue;  // uniform across the warp
      RowState& r = st[rr];
      online_add(r.max, r.sum, nullptr, s[rr], col_ok, 0.f);
      if (a.distill) {
        const float z = col_ok ? target_logit(a, i, j, s[rr]) : 0.f;
        online_add(r.t_max, r.t_sum, &r.t_weighted, z, col_ok, s[rr]);
      } else {
        r.row_sum += warp_sum(col_ok ? s[rr] : 0.f);
        r.true_s += warp_sum(col_ok && j == a.row_offset + i ? s[rr] : 0.f);
      }
    }
  }
  if (tx != 0) return;
#pragma unroll
  for (int rr = 0; rr < kRowsPerThread; ++rr) {
    const int64_t i = r0 + ty + kWarps * rr;
    if (i >= a.n) continue;
    const RowState& r = st[rr];
    const float lse = r.max + logf(r.sum);
    const float hi = fmaxf(lse, a.b), lo = fminf(lse, a.b);
    const float with_sink = hi + log1pf(expf(lo - hi));
    float weighted;
    if (a.distill) {
      target_lse[i] = r.t_max + logf(r.t_sum);
      weighted = r.t_weighted / r.t_sum;
    } else {
      weighted = r.row_sum * (a.eps / static_cast<float>(a.m)) + r.true_s * (1.f - a.eps);
    }
    lse_sink[i] = with_sink;
    ce[i] = with_sink - weighted;
  }
}

}  // namespace

int launch_tiled_forward(const DirectionArgs& a, float* lse_sink, float* target_lse, float* ce,
                         CUstream_st* stream) {
  if (a.n == 0) return 0;
  const dim3 grid(static_cast<unsigned>((a.n + kTile - 1) / kTile));
  if (a.type == ElementType::kBFloat16) {
    forward_kernel<__nv_bfloat16><<<grid, kThreads, 0, stream>>>(a, lse_sink, target_lse, ce);
  } else {
    forward_kernel<float><<<grid, kThreads, 0, stream>>>(a, lse_sink, target_lse, ce);
  }
  return static_cast<int>(cudaGetLastError());
}

}  // namespace halo::loss::cuda
