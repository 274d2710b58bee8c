// halo-clip's CPU convolutions: a ResNet's gradients in float32 equal its float64 gradients
// under the kernels the test runner (as halo-clip) chose at start-up, and the start-up check
// draws nothing from the global generator and switches nothing by itself.
#include <ATen/Context.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "common/cpu_convolutions.h"
#include "encoders/resnet.h"

namespace halo::test {
namespace {

// Every parameter's gradient of sum(net(x) * r), in the net's current dtype, as float64.
std::vector<torch::Tensor> resnet_gradients(encoders::ResNet& net, const torch::Tensor& x,
                                            const torch::Tensor& r) {
  net->zero_grad();
  const torch::Tensor dtype_x = x.to(net->parameters().front().scalar_type());
  (net(dtype_x) * r.to(dtype_x.scalar_type())).sum().backward();
  std::vector<torch::Tensor> out;
  for (const auto& p : net->parameters()) out.push_back(p.grad().to(torch::kDouble).clone());
  return out;
}

TEST(CpuConvolutions, ResNetGradientsInFloat32MatchFloat64) {
  // Width 24: 3x3 convolutions with 24 output channels, which Debian 13's LibTorch 2.6 gets wrong
  // under oneDNN (input gradients off by about half their size); a 16x16 batch of 16.
  torch::manual_seed(7);
  encoders::ResNet net(encoders::ResNetOptions{24, 2, 1, 16});
  net->train();
  const torch::Tensor x = torch::randn({16, 3, 16, 16});
  const torch::Tensor r = torch::randn({16, 16});
  const auto single = resnet_gradients(net, x, r);
  net->to(torch::kDouble);
  const auto exact = resnet_gradients(net, x, r);
  const auto names = net->named_parameters().keys();
  for (size_t i = 0; i < exact.size(); ++i) {
    const double scale = exact[i].abs().max().item<double>();
    const double error = (single[i] - exact[i]).abs().max().item<double>();
    // float32 accumulation over a few thousand terms: errors near 1e-6 of the largest gradient.
    EXPECT_LE(error, 1e-4 * scale + 1e-9)
        << names[i] << ": max |float32 - float64| " << error << " of " << scale
        << " (oneDNN on: " << at::globalContext().userEnabledMkldnn() << ")";
  }
}

TEST(CpuConvolutions, CheckDrawsNothingFromTheGlobalGeneratorAndSwitchesNothing) {
  const bool onednn = at::globalContext().userEnabledMkldnn();
  torch::manual_seed(11);
  const torch::Tensor before = torch::rand({4});
  torch::manual_seed(11);
  const CpuConvolutionCheck check = run_cpu_convolution_check();
  EXPECT_TRUE(torch::equal(torch::rand({4}), before));
  EXPECT_EQ(at::globalContext().userEnabledMkldnn(), onednn);
  EXPECT_EQ(check.onednn_agrees, check.finding.empty());
  // The runner's check at start-up: when it found oneDNN wrong, oneDNN is off from then on.
  const CpuConvolutionCheck& first = check_cpu_convolutions();
  EXPECT_EQ(&first, &check_cpu_convolutions());
  if (first.onednn_enabled && !first.onednn_agrees) {
    EXPECT_FALSE(at::globalContext().userEnabledMkldnn());
  }
}

}  // namespace
}  // namespace halo::test
