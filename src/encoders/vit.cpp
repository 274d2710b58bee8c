// Vision Transformer (see vit.h).
#include "encoders/vit.h"

#include <torch/torch.h>

#include "common/error.h"

namespace halo::encoders {

VisionTransformerImpl::VisionTransformerImpl(const VisionTransformerOptions& o) : options_(o) {
  HALO_CHECK(o.patch_size >= 1 && o.image_size % o.patch_size == 0, "ViT: patch size ",
             o.patch_size, " must divide image size ", o.image_size);
  const int64_t grid = o.image_size / o.patch_size;
  const double scale = 1.0 / std::sqrt(static_cast<double>(o.width));
  conv1 = register_module(
      "conv1",
      torch::nn::Conv2d(
          torch::nn::Conv2dOptions(3, o.width, o.patch_size).stride(o.patch_size).bias(false)));
  class_embedding = register_parameter("class_embedding", torch::randn({o.width}) * scale);
  positional_embedding =
      register_parameter("positional_embedding", torch::randn({grid * grid + 1, o.width}) * scale);
  ln_pre = register_module("ln_pre", torch::nn::LayerNorm(torch::nn::LayerNormOptions({o.width})));
  transformer =
      register_module("transformer", Transformer(o.width, o.layers, o.heads, o.mlp_ratio));
  ln_post =
      register_module("ln_post", torch::nn::LayerNorm(torch::nn::LayerNormOptions({o.width})));
  proj = register_module(
      "proj", torch::nn::Linear(torch::nn::LinearOptions(o.width, o.embed_dim).bias(false)));
}

torch::Tensor VisionTransformerImpl::forward(const torch::Tensor& images) {
  HALO_CHECK(images.dim() == 4 && images.size(1) == 3 && images.size(2) == options_.image_size &&
                 images.size(3) == options_.image_size,
             "ViT expects B x 3 x ", options_.image_size, " x ", options_.image_size,
             " images, got ", images.sizes());
  const int64_t B = images.size(0);
  torch::Tensor x = conv1(images).flatten(2).transpose(1, 2);  // B x patches x width
  torch::Tensor cls = class_embedding.to(x.dtype()).expand({B, 1, options_.width});
  x = torch::cat({cls, x}, 1) + positional_embedding.to(x.dtype());
  x = transformer(ln_pre(x));
  x = ln_post(x);
  torch::Tensor pooled =
      options_.pool == "mean" ? x.narrow(1, 1, x.size(1) - 1).mean(1) : x.select(1, 0);
  return proj(pooled);
}

}  // namespace halo::encoders
