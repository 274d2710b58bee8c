// The autograd function of the tiled HALO direction: saves the embeddings and two numbers per
// row, and dispatches forward and backward to the ATen tiles (any device) or, when asked for by
// name (params.kernel), to the CUDA kernels.
#include <torch/torch.h>

#include "common/error.h"
#include "loss/halo_tiled.h"
#include "loss/halo_tiled_cuda.h"

namespace halo::loss {

namespace {

void store(torch::autograd::AutogradContext* ctx, const TiledDirectionParams& p) {
  ctx->saved_data["row_offset"] = p.row_offset;
  ctx->saved_data["b"] = p.b;
  ctx->saved_data["eps"] = p.eps;
  ctx->saved_data["distill"] = p.distill;
  ctx->saved_data["tile"] = p.tile;
  ctx->saved_data["kernel"] = p.kernel;
  ctx->saved_data["has_dropped"] = p.dropped.defined();
  if (p.dropped.defined()) ctx->saved_data["dropped"] = p.dropped;
}

TiledDirectionParams load(torch::autograd::AutogradContext* ctx) {
  TiledDirectionParams p;
  p.row_offset = ctx->saved_data["row_offset"].toInt();
  p.b = ctx->saved_data["b"].toDouble();
  p.eps = ctx->saved_data["eps"].toDouble();
  p.distill = ctx->saved_data["distill"].toBool();
  p.tile = ctx->saved_data["tile"].toInt();
  p.kernel = ctx->saved_data["kernel"].toBool();
  if (ctx->saved_data["has_dropped"].toBool()) p.dropped = ctx->saved_data["dropped"].toTensor();
  return p;
}

TiledForward forward_on_device(const torch::Tensor& q, const torch::Tensor& c,
                               const torch::Tensor& gamma, const TiledDirectionParams& p) {
#ifdef HALO_WITH_CUDA
  if (p.kernel) return tiled_direction_forward_cuda(q, c, gamma, p);
#endif
  return tiled_direction_forward_aten(q, c, gamma, p);
}

TiledGrads backward_on_device(const torch::Tensor& grad_out, const torch::Tensor& q,
                              const torch::Tensor& c, const torch::Tensor& gamma,
                              const TiledForward& saved, const TiledDirectionParams& p, bool need_q,
                              bool need_c, bool need_gamma) {
#ifdef HALO_WITH_CUDA
  if (p.kernel) {
    return tiled_direction_backward_cuda(grad_out, q, c, gamma, saved, p, need_q, need_c,
                                         need_gamma);
  }
#endif
  return tiled_direction_backward_aten(grad_out, q, c, gamma, saved, p, need_q, need_c, need_gamma);
}

class TiledDirectionFunction : public torch::autograd::Function<TiledDirectionFunction> {
 public:
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& q,
                               const torch::Tensor& c, const torch::Tensor& gamma,
                               const TiledDirectionParams& p) {
    const TiledForward f = forward_on_device(q, c, gamma, p);
    ctx->save_for_backward({q, c, gamma});
    store(ctx, p);
    ctx->saved_data["lse_sink"] = f.lse_sink;
    if (p.distill) ctx->saved_data["target_lse"] = f.target_lse;
    ctx->saved_data["need_q"] = q.requires_grad();
    ctx->saved_data["need_c"] = c.requires_grad();
    ctx->saved_data["need_gamma"] = gamma.requires_grad();
    return f.ce;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const TiledDirectionParams p = load(ctx);
    TiledForward f;
    f.lse_sink = ctx->saved_data["lse_sink"].toTensor();
    if (p.distill) f.target_lse = ctx->saved_data["target_lse"].toTensor();
    const bool need_q = ctx->saved_data["need_q"].toBool();
    const bool need_c = ctx->saved_data["need_c"].toBool();
    const bool need_gamma = ctx->saved_data["need_gamma"].toBool();
    const TiledGrads g = backward_on_device(grads[0], saved[0], saved[1], saved[2], f, p, need_q,
                                            need_c, need_gamma);
    return {g.q, g.c, g.gamma, torch::Tensor()};
  }
};

}  // namespace

bool tiled_cuda_available() {
#ifdef HALO_WITH_CUDA
  return true;
#else
  return false;
#endif
}

torch::Tensor tiled_direction_cross_entropy(const torch::Tensor& q, const torch::Tensor& c,
                                            const torch::Tensor& gamma,
                                            const TiledDirectionParams& params) {
  HALO_CHECK(q.dim() == 2 && c.dim() == 2 && q.size(1) == c.size(1),
             "tiled HALO loss: queries and candidates must be 2-D with the same D, got ", q.sizes(),
             " and ", c.sizes());
  HALO_CHECK(q.scalar_type() == c.scalar_type(), "tiled HALO loss: dtypes differ (queries ",
             q.scalar_type(), ", candidates ", c.scalar_type(), ")");
  HALO_CHECK(q.device() == c.device() && q.device() == gamma.device(),
             "tiled HALO loss: inputs are on different devices");
  HALO_CHECK(params.row_offset >= 0 && params.row_offset + q.size(0) <= c.size(0), "row_offset ",
             params.row_offset, " with ", q.size(0), " rows points past the last of ", c.size(0),
             " columns");
  HALO_CHECK(params.tile >= 1, "the loss tile size must be >= 1, got ", params.tile);
  HALO_CHECK(!params.distill || params.eps > 0, "self-distillation needs label_smoothing > 0");
  HALO_CHECK(!params.dropped.defined() ||
                 (params.dropped.dim() == 1 && params.dropped.size(0) == q.size(0) &&
                  params.dropped.scalar_type() == torch::kBool && !params.kernel),
             "tiled HALO loss: dropped partners must be one boolean per row, on ATen tiles");
  if (params.kernel) {
    HALO_CHECK(tiled_cuda_available(),
               "loss.implementation 'kernel' needs the CUDA kernels, but this build has none (it "
               "needs nvcc and a LibTorch with CUDA at configure time); 'tiled' runs everywhere");
    HALO_CHECK(q.is_cuda(), "the CUDA HALO loss kernels need CUDA tensors, got ", q.device());
    HALO_CHECK(q.scalar_type() == torch::kFloat || q.scalar_type() == torch::kBFloat16,
               "the CUDA HALO loss kernels take fp32 or bf16 embeddings, got ", q.scalar_type());
    HALO_CHECK(gamma.scalar_type() == torch::kFloat,
               "the CUDA HALO loss kernels need an fp32 gamma");
  } else {
    HALO_CHECK(q.scalar_type() == torch::kFloat || q.scalar_type() == torch::kDouble,
               "the tiled HALO loss takes fp32 or fp64 embeddings, got ", q.scalar_type());
    HALO_CHECK(gamma.scalar_type() == q.scalar_type(), "tiled HALO loss: gamma has dtype ",
               gamma.scalar_type(), " but the embeddings ", q.scalar_type());
  }
  return TiledDirectionFunction::apply(q, c, gamma.reshape({}), params);
}

}  // namespace halo::loss
