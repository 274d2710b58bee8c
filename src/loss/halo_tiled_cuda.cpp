// Tensor-to-pointer adapter of the tiled HALO direction's CUDA kernels (halo_tiled_kernels.h):
// checks layouts, precomputes the squared norms, launches on the current CUDA stream, checks
// the launch and finishes the gradients with ATen. Compiled to nothing without HALO_WITH_CUDA.
#ifdef HALO_WITH_CUDA

#include "loss/halo_tiled_cuda.h"

#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <cuda_runtime_api.h>
#include <torch/torch.h>

#include "common/error.h"
#include "loss/halo_tiled_kernels.h"

namespace halo::loss {

namespace {

// Rows must be contiguous (stride 1 along D); the row stride may be anything.
torch::Tensor rows_contiguous(const torch::Tensor& t) {
  return t.stride(1) == 1 ? t : t.contiguous();
}

struct Prepared {
  torch::Tensor q, c, gamma, c_sq, q_sq;
  cuda::DirectionArgs args;
};

Prepared prepare(const torch::Tensor& q_in, const torch::Tensor& c_in, const torch::Tensor& gamma,
                 const TiledDirectionParams& p) {
  Prepared r;
  r.q = rows_contiguous(q_in);
  r.c = rows_contiguous(c_in);
  r.gamma = gamma.to(torch::kFloat).contiguous();
  r.c_sq = r.c.to(torch::kFloat).pow(2).sum(1).contiguous();
  r.q_sq = r.q.to(torch::kFloat).pow(2).sum(1).contiguous();
  cuda::DirectionArgs& a = r.args;
  a.q = r.q.data_ptr();
  a.c = r.c.data_ptr();
  a.type = r.q.scalar_type() == torch::kBFloat16 ? cuda::ElementType::kBFloat16
                                                 : cuda::ElementType::kFloat32;
  a.n = r.q.size(0);
  a.m = r.c.size(0);
  a.d = r.q.size(1);
  a.q_stride = r.q.stride(0);
  a.c_stride = r.c.stride(0);
  a.row_offset = p.row_offset;
  a.gamma = r.gamma.data_ptr<float>();
  a.c_sq = r.c_sq.data_ptr<float>();
  a.q_sq = r.q_sq.data_ptr<float>();
  a.b = static_cast<float>(p.b);
  a.eps = static_cast<float>(p.eps);
  a.distill = p.distill;
  return r;
}

void check_launch(int status, const char* what) {
  HALO_CHECK(status == 0, "CUDA HALO loss: ", what,
             " failed: ", cudaGetErrorString(static_cast<cudaError_t>(status)));
}

CUstream_st* current_stream() {
  return c10::cuda::getCurrentCUDAStream().stream();
}

}  // namespace

TiledForward tiled_direction_forward_cuda(const torch::Tensor& q, const torch::Tensor& c,
                                          const torch::Tensor& gamma,
                                          const TiledDirectionParams& p) {
  const c10::cuda::CUDAGuard device(q.device());
  Prepared r = prepare(q, c, gamma, p);
  const auto f32 = q.options().dtype(torch::kFloat);
  TiledForward out;
  out.lse_sink = torch::empty({r.args.n}, f32);
  out.target_lse = torch::empty({r.args.n}, f32);
  torch::Tensor row_ce = torch::empty({r.args.n}, f32);
  check_launch(cuda::launch_tiled_forward(r.args, out.lse_sink.data_ptr<float>(),
                                          out.target_lse.data_ptr<float>(),
                                          row_ce.data_ptr<float>(), current_stream()),
               "forward kernel");
  out.ce = row_ce.mean();
  return out;
}

TiledGrads tiled_direction_backward_cuda(const torch::Tensor& grad_out, const torch::Tensor& q,
                                         const torch::Tensor& c, const torch::Tensor& gamma,
                                         const TiledForward& saved, const TiledDirectionParams& p,
                                         bool need_q, bool need_c, bool need_gamma) {
  const c10::cuda::CUDAGuard device(q.device());
  Prepared r = prepare(q, c, gamma, p);
  const auto f32 = q.options().dtype(torch::kFloat);
  const torch::Tensor g_out = grad_out.reshape({}).to(torch::kFloat).contiguous();
  const torch::Tensor lse = saved.lse_sink.contiguous();
  const torch::Tensor t_lse = saved.target_lse.defined() ? saved.target_lse.contiguous() : lse;
  torch::Tensor gc = torch::empty({r.args.n, r.args.d}, f32);
  const bool want_cols = need_c || need_gamma;
  torch::Tensor gtq = want_cols ? torch::empty({r.args.m, r.args.d}, f32) : torch::Tensor();
  torch::Tensor colsum = want_cols ? torch::empty({r.args.m}, f32) : torch::Tensor();
  check_launch(cuda::launch_tiled_backward(
                   r.args, lse.data_ptr<float>(), t_lse.data_ptr<float>(), g_out.data_ptr<float>(),
                   gc.data_ptr<float>(), want_cols ? gtq.data_ptr<float>() : nullptr,
                   want_cols ? colsum.data_ptr<float>() : nullptr, current_stream()),
               "backward kernels");
  const double D = static_cast<double>(r.args.d);
  const torch::Tensor g = r.gamma.reshape({});
  TiledGrads out;
  if (need_q) out.q = (gc * (g * (2.0 / D))).to(q.scalar_type());
  if (need_c) {
    out.c =
        ((gtq - colsum.unsqueeze(1) * r.c.to(torch::kFloat)) * (g * (2.0 / D))).to(c.scalar_type());
  }
  if (need_gamma) {
    const torch::Tensor dot_term = (r.q.to(torch::kFloat) * gc).sum() * (2.0 / D);
    const torch::Tensor norm_term = (colsum * r.c_sq).sum() / D;
    out.gamma = (dot_term - norm_term).reshape(gamma.sizes()).to(gamma.scalar_type());
  }
  return out;
}

}  // namespace halo::loss

#endif  // HALO_WITH_CUDA
