// Text encoder: token and learned position embeddings, causal pre-norm transformer blocks, a
// final LayerNorm, the feature at each sequence's end-of-text token, and a bias-free projection.
// Token ids come from data::Tokenizer (BOS ... EOS, then padding); padding follows EOS, so
// with the causal mask the pooled feature never sees it.
#pragma once
#include <torch/nn/module.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>
#include <torch/nn/pimpl.h>

#include "encoders/transformer.h"

namespace halo::encoders {

struct TextTransformerOptions {
  int64_t vocab_size = 1000, context_length = 32, width = 64, layers = 2, heads = 4, embed_dim = 64;
  double mlp_ratio = 4.0;
  int64_t eos_id = 2;
};

class TextTransformerImpl : public torch::nn::Module {
 public:
  explicit TextTransformerImpl(const TextTransformerOptions& options);
  // tokens: B x L int64 (L <= context_length), each row containing eos_id -> B x embed_dim
  torch::Tensor forward(const torch::Tensor& tokens);

 private:
  TextTransformerOptions options_;
  torch::nn::Embedding token_embedding{nullptr};
  torch::Tensor positional_embedding;
  Transformer transformer{nullptr};
  torch::nn::LayerNorm ln_final{nullptr};
  torch::nn::Linear text_projection{nullptr};
};
TORCH_MODULE(TextTransformer);

}  // namespace halo::encoders
