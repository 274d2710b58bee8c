// The two-tower image-text model: an image encoder (ViT or ResNet) and a text transformer,
// both ending in unnormalised embed_dim-dimensional embeddings. Built from the model section of
// the configuration.
#pragma once
#include <utility>

#include <torch/nn/module.h>
#include <torch/nn/modules/container/any.h>
#include <torch/nn/pimpl.h>

#include "encoders/centering.h"
#include "encoders/model_config.h"
#include "encoders/text_transformer.h"

namespace halo::encoders {

class ClipModelImpl : public torch::nn::Module {
 public:
  // vocab_size and eos_id come from the tokenizer.
  ClipModelImpl(const ModelConfig& config, int64_t vocab_size, int64_t eos_id);
  torch::Tensor encode_image(const torch::Tensor& images);  // B x 3 x H x W -> B x D
  torch::Tensor encode_text(const torch::Tensor& tokens);   // B x L -> B x D
  // encode_X = center_X(embed_X): the tower alone, then the centring (the identity without
  // model.center_embeddings; in training it subtracts the mean of the rows it is given). Apart
  // for exact gradient accumulation (train/step.h), which runs the towers on micro-batches and
  // centres the rank's whole batch once, as one encode_X call would.
  torch::Tensor embed_image(const torch::Tensor& images);
  torch::Tensor embed_text(const torch::Tensor& tokens);
  torch::Tensor center_image(const torch::Tensor& embeddings);
  torch::Tensor center_text(const torch::Tensor& embeddings);
  // With model.center_embeddings: the running means that centring removes (image, text);
  // without: undefined tensors.
  std::pair<torch::Tensor, torch::Tensor> embedding_offsets() const;
  // How centring takes a training batch's mean (EmbeddingCenterImpl::BatchMean; empty: the rows
  // given). A no-op without model.center_embeddings.
  void set_batch_mean(const EmbeddingCenterImpl::BatchMean& batch_mean);

 private:
  torch::nn::AnyModule visual_;
  TextTransformer text_{nullptr};
  EmbeddingCenter image_center_{nullptr}, text_center_{nullptr};  // when model.center_embeddings
};
TORCH_MODULE(ClipModel);

}  // namespace halo::encoders
