// Attention, AutocastScope and the CPU bf16 autocast probe (torch_compat.h); the version
// differences themselves stay in the header.
#include "common/torch_compat.h"

#include <ATen/ATen.h>
#include <torch/autograd.h>

#include <cmath>
#include <limits>

#include "common/error.h"

namespace halo {

namespace {

// One forward and backward through the operations the encoders use (convolution, linear,
// matmul, softmax, attention (fused where this LibTorch has it), GELU, layer norm on a bf16 input
// with fp32 weights, a parameter added to a bf16 activation) under CPU autocast. True when it runs,
// the output is bf16 and the gradients fp32. LibTorch 1.13 has CPU autocast but fails here (its CPU
// layer_norm refuses bf16 inputs with fp32 weights).
bool probe_cpu_bf16_autocast() {
  auto param = [](at::IntArrayRef shape) { return at::randn(shape).set_requires_grad(true); };
  const at::Tensor conv_w = param({4, 3, 4, 4}), pos = param({4, 4}), ln_w = param({4}),
                   ln_b = param({4}), lin_w = param({4, 4}), lin_b = param({4});
  at::Tensor out;
  {
    AutocastScope autocast(c10::DeviceType::CPU, true, /*probe=*/true);
    at::Tensor x =
        at::conv2d(at::randn({2, 3, 8, 8}), conv_w, {}, {4, 4}).flatten(2).transpose(1, 2);
    x = at::layer_norm(x + pos, {4}, ln_w, ln_b);
    at::Tensor q = at::linear(x, lin_w, lin_b);
    x = at::gelu(at::matmul(at::softmax(at::matmul(q, q.transpose(1, 2)), -1), q));
    const at::Tensor heads = q.unsqueeze(1);  // B x 1 x T x 4
    x = x + compat::attention(heads, heads, heads, /*causal=*/true, /*fused=*/true).squeeze(1);
    out = at::linear(at::layer_norm(x, {4}, ln_w, ln_b), lin_w, lin_b);
  }
  out.to(at::kFloat).sum().backward();
  if (out.scalar_type() != at::kBFloat16) return false;
  for (const auto& p : {conv_w, pos, ln_w, ln_b, lin_w, lin_b}) {
    if (!p.grad().defined() || p.grad().scalar_type() != at::kFloat) return false;
  }
  return true;
}

}  // namespace

at::Tensor compat::attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                             bool causal, bool fused) {
#if HALO_TORCH_AT_LEAST(2, 0)
  if (fused) return at::scaled_dot_product_attention(q, k, v, {}, 0.0, causal);
#else
  (void)fused;
#endif
  at::Tensor scores =
      at::matmul(q, k.transpose(-2, -1)) / std::sqrt(static_cast<double>(q.size(-1)));
  if (causal) {
    const int64_t T = q.size(-2);
    scores = scores + at::full({T, T}, -std::numeric_limits<float>::infinity(),
                               scores.options().dtype(at::kFloat))
                          .triu(1);
  }
  return at::matmul(at::softmax(scores, -1), v);
}

bool cpu_bf16_autocast_available() {
  static const bool available = [] {
    try {
      return probe_cpu_bf16_autocast();
    } catch (const std::exception&) {
      return false;
    }
  }();
  return available;
}

AutocastScope::AutocastScope(c10::DeviceType device, bool enabled, bool probe)
    : device_(device), enabled_(enabled) {
  if (!enabled_) return;
  HALO_CHECK(device == c10::DeviceType::CUDA || device == c10::DeviceType::CPU,
             "bf16 autocast runs on cpu or cuda, not on ", c10::DeviceTypeName(device));
  HALO_CHECK(probe || device == c10::DeviceType::CUDA || cpu_bf16_autocast_available(),
             "train.precision bf16 on the CPU needs CPU autocast to bf16, which this LibTorch (",
             TORCH_VERSION, ") does not provide; use train.precision: fp32 on the CPU");
  was_enabled_ = compat::autocast_enabled(device_);
  previous_dtype_ = compat::autocast_dtype(device_);
  compat::set_autocast_dtype(device_, at::kBFloat16);
  compat::set_autocast_enabled(device_, true);
}

AutocastScope::~AutocastScope() {
  if (!enabled_) return;
  compat::set_autocast_enabled(device_, was_enabled_);
  compat::set_autocast_dtype(device_, previous_dtype_);
  if (!was_enabled_) at::autocast::clear_cache();  // the casts of weights made in this scope
}

}  // namespace halo
