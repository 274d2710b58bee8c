// Pre-norm transformer blocks shared by the vision and text encoders: multi-head self-attention
// with an optional additive mask, and an MLP with GELU. Parameter names follow open_clip's.
#pragma once
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>
#include <torch/nn/pimpl.h>

namespace halo::encoders {

class AttentionImpl : public torch::nn::Module {
 public:
  AttentionImpl(int64_t width, int64_t heads);
  // x: B x T x width. mask: T x T additive (0 or -inf), or undefined.
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& mask = {});

 private:
  int64_t heads_;
  torch::nn::Linear in_proj{nullptr}, out_proj{nullptr};
};
TORCH_MODULE(Attention);

class ResidualBlockImpl : public torch::nn::Module {
 public:
  ResidualBlockImpl(int64_t width, int64_t heads, double mlp_ratio);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& mask = {});

 private:
  torch::nn::LayerNorm ln_1{nullptr}, ln_2{nullptr};
  Attention attn{nullptr};
  torch::nn::Linear c_fc{nullptr}, c_proj{nullptr};
};
TORCH_MODULE(ResidualBlock);

class TransformerImpl : public torch::nn::Module {
 public:
  TransformerImpl(int64_t width, int64_t layers, int64_t heads, double mlp_ratio);
  torch::Tensor forward(torch::Tensor x, const torch::Tensor& mask = {});

 private:
  std::vector<ResidualBlock> blocks_;
};
TORCH_MODULE(Transformer);

// T x T additive causal mask: 0 on and below the diagonal, -inf above.
torch::Tensor causal_mask(int64_t length, const torch::TensorOptions& options);

}  // namespace halo::encoders
