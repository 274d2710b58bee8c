// Backward kernels of the tiled HALO direction. Both recompute tiles of S and form the tile of
// G = (softmax with sink - targets) * grad / n in shared memory. The row kernel (one block per
// 32 query rows, walking the columns) accumulates G C into its own rows of gc; the column
// kernel (one block per 32 candidates, walking the rows) accumulates G^T Q and colsum(G) into
// its own columns. Each block owns its outputs, so no atomics are needed.
#include <cmath>

#include "loss/halo_tiled_tile.cuh"

namespace halo::loss::cuda {

namespace {

using namespace detail;

struct GradTile {
  float g[kTile][kTile + 1];  // G at [row][column] of the tile
};

// Fills grad.g for the tile at (r0, c0); 0 outside the matrix. Ends with a barrier.
template <typename T>
__device__ void gradient_tile(const DirectionArgs& a, const T* q, const T* c, int64_t r0,
                              int64_t c0, const float* lse_sink, const float* target_lse,
                              float scale, TileMemory& mem, GradTile& grad) {
  const int tx = threadIdx.x % kTile, ty = threadIdx.x / kTile;
  float s[kRowsPerThread];
  shifted_tile(a, q, c, r0, c0, mem, s);
  const int64_t j = c0 + tx;
#pragma unroll
  for (int rr = 0; rr < kRowsPerThread; ++rr) {
    const int r = ty + kWarps * rr;
    const int64_t i = r0 + r;
    float g = 0.f;
    if (i < a.n && j < a.m) {
      const float t = target(a, i, j, s[rr], a.distill ? target_lse[i] : 0.f);
      g = (expf(s[rr] - lse_sink[i]) - t) * scale;
    }
    grad.g[r][tx] = g;
  }
  __syncthreads();
}

template <typename T>
__global__ void __launch_bounds__(kThreads)
    row_kernel(DirectionArgs a, const float* lse_sink, const float* target_lse,
               const float* grad_out, float* gc) {
  __shared__ TileMemory mem;
  __shared__ GradTile grad;
  const T* q = static_cast<const T*>(a.q);
  const T* c = static_cast<const T*>(a.c);
  const int tx = threadIdx.x % kTile, ty = threadIdx.x / kTile;
  const int64_t r0 = static_cast<int64_t>(blockIdx.x) * kTile;
  const float scale = *grad_out / static_cast<float>(a.n);
  for (int64_t c0 = 0; c0 < a.m; c0 += kTile) {
    gradient_tile(a, q, c, r0, c0, lse_sink, target_lse, scale, mem, grad);
    const int cols = static_cast<int>(a.m - c0 < kTile ? a.m - c0 : kTile);
    // Each loaded element of C serves the thread's four rows (G from shared memory).
    for (int64_t k = tx; k < a.d; k += kTile) {
      float acc[kRowsPerThread] = {0.f, 0.f, 0.f, 0.f};
      for (int jj = 0; jj < cols; ++jj) {
        const float cv = load(c, (c0 + jj) * a.c_stride + k);
#pragma unroll
        for (int rr = 0; rr < kRowsPerThread; ++rr) acc[rr] += grad.g[ty + kWarps * rr][jj] * cv;
      }
#pragma unroll
      for (int rr = 0; rr < kRowsPerThread; ++rr) {
        const int64_t i = r0 + ty + kWarps * rr;
        if (i < a.n) gc[i * a.d + k] += acc[rr];
      }
    }
    __syncthreads();  // grad is rewritten by the next tile
  }
}

template <typename T>
__global__ void __launch_bounds__(kThreads)
    column_kernel(DirectionArgs a, const float* lse_sink, const float* target_lse,
                  const float* grad_out, float* gtq, float* colsum) {
  __shared__ TileMemory mem;
  __shared__ GradTile grad;
  const T* q = static_cast<const T*>(a.q);
  const T* c = static_cast<const T*>(a.c);
  const int tx = threadIdx.x % kTile, ty = threadIdx.x / kTile;
  const int64_t c0 = static_cast<int64_t>(blockIdx.x) * kTile;
  const float scale = *grad_out / static_cast<float>(a.n);
  float col_total[kRowsPerThread] = {0.f, 0.f, 0.f, 0.f};  // colsum of column ty + 8k (lane 0)
  for (int64_t r0 = 0; r0 < a.n; r0 += kTile) {
    gradient_tile(a, q, c, r0, c0, lse_sink, target_lse, scale, mem, grad);
    const int rows = static_cast<int>(a.n - r0 < kTile ? a.n - r0 : kTile);
#pragma unroll
    for (int cc = 0; cc < kRowsPerThread; ++cc)
      col_total[cc] += warp_sum(grad.g[tx][ty + kWarps * cc]);
    for (int64_t k = tx; k < a.d; k += kTile) {
      float acc[kRowsPerThread] = {0.f, 0.f, 0.f, 0.f};
      for (int ii = 0; ii < rows; ++ii) {
        const float qv = load(q, (r0 + ii) * a.q_stride + k);
#pragma unroll
        for (int cc = 0; cc < kRowsPerThread; ++cc) acc[cc] += grad.g[ii][ty + kWarps * cc] * qv;
      }
#pragma unroll
      for (int cc = 0; cc < kRowsPerThread; ++cc) {
        const int64_t j = c0 + ty + kWarps * cc;
        if (j < a.m) gtq[j * a.d + k] += acc[cc];
      }
    }
    __syncthreads();
  }
  if (tx != 0) return;
#pragma unroll
  for (int cc = 0; cc < kRowsPerThread; ++cc) {
    const int64_t j = c0 + ty + kWarps * cc;
    if (j < a.m) colsum[j] = col_total[cc];
  }
}

template <typename T>
int launch(const DirectionArgs& a, const float* lse_sink, const float* target_lse,
           const float* grad_out, float* gc, float* gtq, float* colsum, cudaStream_t stream) {
  cudaError_t err = cudaMemsetAsync(gc, 0, sizeof(float) * a.n * a.d, stream);
  if (err != cudaSuccess) return static_cast<int>(err);
  const dim3 rows(static_cast<unsigned>((a.n + kTile - 1) / kTile));
  row_kernel<T><<<rows, kThreads, 0, stream>>>(a, lse_sink, target_lse, grad_out, gc);
  if ((err = cudaGetLastError()) != cudaSuccess) return static_cast<int>(err);
  if (gtq == nullptr) return 0;
  if ((err = cudaMemsetAsync(gtq, 0, sizeof(float) * a.m * a.d, stream)) != cudaSuccess) {
    return static_cast<int>(err);
  }
  const dim3 cols(static_cast<unsigned>((a.m + kTile - 1) / kTile));
  column_kernel<T><<<cols, kThreads, 0, stream>>>(a, lse_sink, target_lse, grad_out, gtq, colsum);
  return static_cast<int>(cudaGetLastError());
}

}  // namespace

int launch_tiled_backward(const DirectionArgs& a, const float* lse_sink, const float* target_lse,
                          const float* grad_out, float* gc, float* gtq, float* colsum,
                          CUstream_st* stream) {
  if (a.n == 0 || a.m == 0) return 0;
  if (a.type == ElementType::kBFloat16) {
    return launch<__nv_bfloat16>(a, lse_sink, target_lse, grad_out, gc, gtq, colsum, stream);
  }
  return launch<float>(a, lse_sink, target_lse, grad_out, gc, gtq, colsum, stream);
}

}  // namespace halo::loss::cuda
