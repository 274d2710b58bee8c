// A small residual CNN image encoder: a 3x3 stem, `stages` stages of basic residual blocks
// (channels double and resolution halves from stage to stage), global average pooling and a
// bias-free projection. GroupNorm instead of BatchNorm: no batch statistics, so an image's
// embedding does not depend on its batch, its process or train/eval mode.
#pragma once
#include <torch/nn/module.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>
#include <torch/nn/pimpl.h>

namespace halo::encoders {

struct ResNetOptions {
  int64_t width = 32, stages = 3, blocks_per_stage = 1, embed_dim = 64;
};

class BasicBlockImpl : public torch::nn::Module {
 public:
  BasicBlockImpl(int64_t in_channels, int64_t out_channels, int64_t stride);
  torch::Tensor forward(const torch::Tensor& x);

 private:
  torch::nn::Conv2d conv1{nullptr}, conv2{nullptr}, downsample{nullptr};
  torch::nn::GroupNorm norm1{nullptr}, norm2{nullptr}, downsample_norm{nullptr};
};
TORCH_MODULE(BasicBlock);

class ResNetImpl : public torch::nn::Module {
 public:
  explicit ResNetImpl(const ResNetOptions& options);
  torch::Tensor forward(const torch::Tensor& images);  // B x 3 x H x W -> B x embed_dim

 private:
  torch::nn::Conv2d stem{nullptr};
  torch::nn::GroupNorm stem_norm{nullptr};
  torch::nn::Sequential stages{nullptr};
  torch::nn::Linear proj{nullptr};
};
TORCH_MODULE(ResNet);

}  // namespace halo::encoders
