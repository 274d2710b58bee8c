// Multi-head attention, the pre-norm residual block and the block stack (see transformer.h).
#include "encoders/transformer.h"

#include <cmath>
#include <limits>

#include <torch/torch.h>

#include "common/error.h"

namespace halo::encoders {

AttentionImpl::AttentionImpl(int64_t width, int64_t heads) : heads_(heads) {
  HALO_CHECK(heads >= 1 && width % heads == 0, "attention: heads (", heads, ") must divide width (",
             width, ")");
  in_proj = register_module("in_proj", torch::nn::Linear(width, 3 * width));
  out_proj = register_module("out_proj", torch::nn::Linear(width, width));
}

torch::Tensor AttentionImpl::forward(const torch::Tensor& x, const torch::Tensor& mask) {
  const int64_t B = x.size(0), T = x.size(1), W = x.size(2), hd = W / heads_;
  // B x T x 3W -> 3 x B x heads x T x hd
  auto qkv = in_proj(x).reshape({B, T, 3, heads_, hd}).permute({2, 0, 3, 1, 4});
  torch::Tensor q = qkv[0], k = qkv[1], v = qkv[2];
  torch::Tensor scores = torch::matmul(q, k.transpose(-2, -1)) / std::sqrt(static_cast<double>(hd));
  if (mask.defined()) scores = scores + mask;
  torch::Tensor out = torch::matmul(torch::softmax(scores, -1), v);  // B x heads x T x hd
  return out_proj(out.transpose(1, 2).reshape({B, T, W}));
}

ResidualBlockImpl::ResidualBlockImpl(int64_t width, int64_t heads, double mlp_ratio) {
  const auto hidden = static_cast<int64_t>(std::lround(width * mlp_ratio));
  ln_1 = register_module("ln_1", torch::nn::LayerNorm(torch::nn::LayerNormOptions({width})));
  attn = register_module("attn", Attention(width, heads));
  ln_2 = register_module("ln_2", torch::nn::LayerNorm(torch::nn::LayerNormOptions({width})));
  c_fc = register_module("c_fc", torch::nn::Linear(width, hidden));
  c_proj = register_module("c_proj", torch::nn::Linear(hidden, width));
}

torch::Tensor ResidualBlockImpl::forward(const torch::Tensor& x, const torch::Tensor& mask) {
  torch::Tensor h = x + attn(ln_1(x), mask);
  return h + c_proj(torch::gelu(c_fc(ln_2(h))));
}

TransformerImpl::TransformerImpl(int64_t width, int64_t layers, int64_t heads, double mlp_ratio) {
  for (int64_t i = 0; i < layers; ++i) {
    blocks_.push_back(
        register_module("resblocks_" + std::to_string(i), ResidualBlock(width, heads, mlp_ratio)));
  }
}

torch::Tensor TransformerImpl::forward(torch::Tensor x, const torch::Tensor& mask) {
  for (auto& block : blocks_) x = block(x, mask);
  return x;
}

torch::Tensor causal_mask(int64_t length, const torch::TensorOptions& options) {
  return torch::full({length, length}, -std::numeric_limits<float>::infinity(), options).triu(1);
}

}  // namespace halo::encoders
