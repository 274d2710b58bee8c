// Multi-head attention, the pre-norm residual block and the block stack (see transformer.h).
#include "encoders/transformer.h"

#include <cmath>

#include <torch/torch.h>

#include "common/error.h"
#include "common/torch_compat.h"

namespace halo::encoders {

AttentionImpl::AttentionImpl(int64_t width, int64_t heads) : heads_(heads) {
  HALO_CHECK(heads >= 1 && width % heads == 0, "attention: heads (", heads, ") must divide width (",
             width, ")");
  in_proj = register_module("in_proj", torch::nn::Linear(width, 3 * width));
  out_proj = register_module("out_proj", torch::nn::Linear(width, width));
}

namespace {
thread_local bool explicit_attention = false;
}  // namespace

ExplicitAttentionGuard::ExplicitAttentionGuard() : previous_(explicit_attention) {
  explicit_attention = true;
}
ExplicitAttentionGuard::~ExplicitAttentionGuard() {
  explicit_attention = previous_;
}

bool attention_is_fused(c10::DeviceType device) {
  return compat::fused_attention_available() && !explicit_attention &&
         !(device == c10::DeviceType::CPU && compat::autocast_enabled(device));
}

torch::Tensor AttentionImpl::forward(const torch::Tensor& x, bool causal) {
  const int64_t B = x.size(0), T = x.size(1), W = x.size(2), hd = W / heads_;
  // B x T x 3W -> 3 x B x heads x T x hd, and back from B x heads x T x hd
  auto qkv = in_proj(x).reshape({B, T, 3, heads_, hd}).permute({2, 0, 3, 1, 4});
  const torch::Tensor out =
      compat::attention(qkv[0], qkv[1], qkv[2], causal, attention_is_fused(x.device().type()));
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

torch::Tensor ResidualBlockImpl::forward(const torch::Tensor& x, bool causal) {
  torch::Tensor h = x + attn(ln_1(x), causal);
  return h + c_proj(torch::gelu(c_fc(ln_2(h))));
}

TransformerImpl::TransformerImpl(int64_t width, int64_t layers, int64_t heads, double mlp_ratio) {
  for (int64_t i = 0; i < layers; ++i) {
    blocks_.push_back(
        register_module("resblocks_" + std::to_string(i), ResidualBlock(width, heads, mlp_ratio)));
  }
}

torch::Tensor TransformerImpl::forward(torch::Tensor x, bool causal) {
  for (auto& block : blocks_) x = block(x, causal);
  return x;
}

}  // namespace halo::encoders
