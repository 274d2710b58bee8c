// Pre-norm transformer blocks shared by the vision and text encoders: multi-head self-attention
// (causal for text), fused where LibTorch has it (common/torch_compat.h), and an MLP with GELU.
// Parameter names follow open_clip's.
#pragma once
#include <c10/core/DeviceType.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>
#include <torch/nn/pimpl.h>

namespace halo::encoders {

class AttentionImpl : public torch::nn::Module {
 public:
  AttentionImpl(int64_t width, int64_t heads);
  // x: B x T x width. causal: position t attends to positions <= t only.
  torch::Tensor forward(const torch::Tensor& x, bool causal = false);

 private:
  int64_t heads_;
  torch::nn::Linear in_proj{nullptr}, out_proj{nullptr};
};
TORCH_MODULE(Attention);

class ResidualBlockImpl : public torch::nn::Module {
 public:
  ResidualBlockImpl(int64_t width, int64_t heads, double mlp_ratio);
  torch::Tensor forward(const torch::Tensor& x, bool causal = false);

 private:
  torch::nn::LayerNorm ln_1{nullptr}, ln_2{nullptr};
  Attention attn{nullptr};
  torch::nn::Linear c_fc{nullptr}, c_proj{nullptr};
};
TORCH_MODULE(ResidualBlock);

class TransformerImpl : public torch::nn::Module {
 public:
  TransformerImpl(int64_t width, int64_t layers, int64_t heads, double mlp_ratio);
  torch::Tensor forward(torch::Tensor x, bool causal = false);

 private:
  std::vector<ResidualBlock> blocks_;
};
TORCH_MODULE(Transformer);

// While one lives, attention on this thread takes the explicit matrix products instead of the
// fused kernel (to compare the two, in tests and benchmarks). Nests like torch::NoGradGuard.
class ExplicitAttentionGuard {
 public:
  ExplicitAttentionGuard();
  ~ExplicitAttentionGuard();
  ExplicitAttentionGuard(const ExplicitAttentionGuard&) = delete;
  ExplicitAttentionGuard& operator=(const ExplicitAttentionGuard&) = delete;

 private:
  bool previous_;
};

// Whether attention on `device` runs fused on this thread: compat::fused_attention_available(),
// no ExplicitAttentionGuard alive, and not on the CPU under autocast (LibTorch 2.6's CPU flash
// attention in bf16 took twice the explicit form's time at the presets' shapes, where in fp32 it
// saves 14-20% of the step: docs/training.md, "Precision and attention").
bool attention_is_fused(c10::DeviceType device);

}  // namespace halo::encoders
