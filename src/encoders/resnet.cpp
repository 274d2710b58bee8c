// Small residual CNN (see resnet.h).
#include "encoders/resnet.h"

#include <numeric>

#include <torch/torch.h>

#include "common/error.h"

namespace halo::encoders {

namespace {
torch::nn::Conv2d conv3x3(int64_t in, int64_t out, int64_t stride) {
  return torch::nn::Conv2d(
      torch::nn::Conv2dOptions(in, out, 3).stride(stride).padding(1).bias(false));
}
torch::nn::GroupNorm group_norm(int64_t channels) {
  return torch::nn::GroupNorm(std::gcd<int64_t>(8, channels), channels);
}
}  // namespace

BasicBlockImpl::BasicBlockImpl(int64_t in_channels, int64_t out_channels, int64_t stride) {
  conv1 = register_module("conv1", conv3x3(in_channels, out_channels, stride));
  norm1 = register_module("norm1", group_norm(out_channels));
  conv2 = register_module("conv2", conv3x3(out_channels, out_channels, 1));
  norm2 = register_module("norm2", group_norm(out_channels));
  if (stride != 1 || in_channels != out_channels) {
    downsample = register_module(
        "downsample",
        torch::nn::Conv2d(
            torch::nn::Conv2dOptions(in_channels, out_channels, 1).stride(stride).bias(false)));
    downsample_norm = register_module("downsample_norm", group_norm(out_channels));
  }
}

torch::Tensor BasicBlockImpl::forward(const torch::Tensor& x) {
  torch::Tensor out = torch::relu(norm1(conv1(x)));
  out = norm2(conv2(out));
  torch::Tensor skip = downsample ? downsample_norm(downsample(x)) : x;
  return torch::relu(out + skip);
}

ResNetImpl::ResNetImpl(const ResNetOptions& o) {
  HALO_CHECK(o.width >= 4 && o.stages >= 1 && o.blocks_per_stage >= 1,
             "ResNet needs width >= 4, stages >= 1 and blocks_per_stage >= 1");
  stem = register_module("stem", conv3x3(3, o.width, 1));
  stem_norm = register_module("stem_norm", group_norm(o.width));
  stages = register_module("stages", torch::nn::Sequential());
  int64_t channels = o.width;
  for (int64_t s = 0; s < o.stages; ++s) {
    const int64_t out = o.width << s;
    for (int64_t b = 0; b < o.blocks_per_stage; ++b) {
      stages->push_back(BasicBlock(channels, out, (s > 0 && b == 0) ? 2 : 1));
      channels = out;
    }
  }
  proj = register_module(
      "proj", torch::nn::Linear(torch::nn::LinearOptions(channels, o.embed_dim).bias(false)));
}

torch::Tensor ResNetImpl::forward(const torch::Tensor& images) {
  HALO_CHECK(images.dim() == 4 && images.size(1) == 3, "ResNet expects B x 3 x H x W images, got ",
             images.sizes());
  torch::Tensor x = torch::relu(stem_norm(stem(images)));
  x = stages->forward(x);
  return proj(x.mean({2, 3}));
}

}  // namespace halo::encoders
