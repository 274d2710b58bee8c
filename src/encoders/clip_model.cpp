// Two-tower model construction from the configuration (see clip_model.h).
#include "encoders/clip_model.h"

#include <torch/torch.h>

#include "encoders/resnet.h"
#include "encoders/vit.h"

namespace halo::encoders {

ClipModelImpl::ClipModelImpl(const ModelConfig& c, int64_t vocab_size, int64_t eos_id) {
  const auto& im = c.image;
  if (im.type == "resnet") {
    ResNet net(ResNetOptions{im.width, im.layers, im.blocks_per_stage, c.embed_dim});
    visual_ = torch::nn::AnyModule(register_module("visual", net));
  } else {
    VisionTransformerOptions o;
    o.image_size = im.image_size, o.patch_size = im.patch_size, o.width = im.width;
    o.layers = im.layers, o.heads = im.heads, o.embed_dim = c.embed_dim, o.mlp_ratio = im.mlp_ratio;
    o.pool = im.pool;
    visual_ = torch::nn::AnyModule(register_module("visual", VisionTransformer(o)));
  }
  TextTransformerOptions t;
  t.vocab_size = vocab_size, t.context_length = c.text.context_length, t.width = c.text.width;
  t.layers = c.text.layers, t.heads = c.text.heads, t.embed_dim = c.embed_dim;
  t.mlp_ratio = c.text.mlp_ratio, t.eos_id = eos_id;
  text_ = register_module("text", TextTransformer(t));
  if (c.center_embeddings) {
    image_center_ =
        register_module("image_center", EmbeddingCenter(c.embed_dim, c.center_momentum));
    text_center_ = register_module("text_center", EmbeddingCenter(c.embed_dim, c.center_momentum));
  }
}

std::pair<torch::Tensor, torch::Tensor> ClipModelImpl::embedding_offsets() const {
  if (!image_center_) return {};
  return {image_center_->running_mean(), text_center_->running_mean()};
}

torch::Tensor ClipModelImpl::embed_image(const torch::Tensor& images) {
  return visual_.forward<torch::Tensor>(images);
}
torch::Tensor ClipModelImpl::embed_text(const torch::Tensor& tokens) {
  return text_(tokens);
}
void ClipModelImpl::set_batch_mean(const EmbeddingCenterImpl::BatchMean& batch_mean) {
  if (!image_center_) return;
  image_center_->set_batch_mean(batch_mean);
  text_center_->set_batch_mean(batch_mean);
}

torch::Tensor ClipModelImpl::center_image(const torch::Tensor& e) {
  return image_center_ ? image_center_(e) : e;
}
torch::Tensor ClipModelImpl::center_text(const torch::Tensor& e) {
  return text_center_ ? text_center_(e) : e;
}
torch::Tensor ClipModelImpl::encode_image(const torch::Tensor& images) {
  return center_image(embed_image(images));
}
torch::Tensor ClipModelImpl::encode_text(const torch::Tensor& tokens) {
  return center_text(embed_text(tokens));
}

}  // namespace halo::encoders
