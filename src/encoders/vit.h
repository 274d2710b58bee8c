// Vision Transformer image encoder: patch embedding (a strided convolution), class token and
// learned positions, pre-norm blocks, class-token or mean pooling, and a bias-free projection
// to the shared embedding space. Output embeddings are not normalised (HALO needs their norms).
#pragma once
#include <string>

#include <torch/nn/module.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>
#include <torch/nn/pimpl.h>

#include "encoders/transformer.h"

namespace halo::encoders {

struct VisionTransformerOptions {
  int64_t image_size = 32, patch_size = 8, width = 64, layers = 2, heads = 4, embed_dim = 64;
  double mlp_ratio = 4.0;
  std::string pool = "cls";  // cls | mean
};

class VisionTransformerImpl : public torch::nn::Module {
 public:
  explicit VisionTransformerImpl(const VisionTransformerOptions& options);
  // images: B x 3 x H x W (H = W = image_size) -> B x embed_dim
  torch::Tensor forward(const torch::Tensor& images);

 private:
  VisionTransformerOptions options_;
  torch::nn::Conv2d conv1{nullptr};
  torch::Tensor class_embedding, positional_embedding;
  torch::nn::LayerNorm ln_pre{nullptr}, ln_post{nullptr};
  Transformer transformer{nullptr};
  torch::nn::Linear proj{nullptr};
};
TORCH_MODULE(VisionTransformer);

}  // namespace halo::encoders
