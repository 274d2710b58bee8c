// Text transformer (see text_transformer.h).
#include "encoders/text_transformer.h"

#include <torch/torch.h>

#include "common/error.h"

namespace halo::encoders {

TextTransformerImpl::TextTransformerImpl(const TextTransformerOptions& o) : options_(o) {
  HALO_CHECK(o.vocab_size > o.eos_id && o.context_length >= 2,
             "text encoder needs vocab_size > eos_id and "
             "context_length >= 2");
  token_embedding = register_module("token_embedding", torch::nn::Embedding(o.vocab_size, o.width));
  torch::nn::init::normal_(token_embedding->weight, 0.0, 0.02);
  positional_embedding =
      register_parameter("positional_embedding", torch::randn({o.context_length, o.width}) * 0.01);
  transformer =
      register_module("transformer", Transformer(o.width, o.layers, o.heads, o.mlp_ratio));
  ln_final =
      register_module("ln_final", torch::nn::LayerNorm(torch::nn::LayerNormOptions({o.width})));
  text_projection = register_module(
      "text_projection",
      torch::nn::Linear(torch::nn::LinearOptions(o.width, o.embed_dim).bias(false)));
}

torch::Tensor TextTransformerImpl::forward(const torch::Tensor& tokens) {
  HALO_CHECK(tokens.dim() == 2 && tokens.size(1) <= options_.context_length &&
                 tokens.scalar_type() == torch::kLong,
             "text encoder expects B x L int64 tokens with L <= ", options_.context_length,
             ", got ", tokens.sizes(), " ", tokens.scalar_type());
  const torch::Tensor is_eos = tokens == options_.eos_id;
  HALO_CHECK(is_eos.any(1).all().item<bool>(),
             "every token sequence must contain the end-of-text id ", options_.eos_id);
  const int64_t L = tokens.size(1);
  torch::Tensor x = token_embedding(tokens) + positional_embedding.narrow(0, 0, L);
  x = transformer(x, /*causal=*/true);
  x = ln_final(x);
  // The first end-of-text position of each row.
  const torch::Tensor eos_pos = is_eos.to(torch::kInt).argmax(1);
  torch::Tensor pooled = x.index({torch::arange(x.size(0), tokens.options()), eos_pos});
  return text_projection(pooled);
}

}  // namespace halo::encoders
