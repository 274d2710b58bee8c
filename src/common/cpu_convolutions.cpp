// See cpu_convolutions.h.
#include "common/cpu_convolutions.h"

#include <algorithm>
#include <cmath>
#include <iostream>
#include <sstream>

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Context.h>
#include <torch/torch.h>
#include <torch/version.h>

namespace halo {

namespace {

// Input and weight gradients of a 3x3, stride-1, padding-1 convolution for output gradient gy.
std::vector<torch::Tensor> convolution_gradients(const torch::Tensor& x, const torch::Tensor& w,
                                                 const torch::Tensor& gy) {
  const torch::Tensor xi = x.detach().requires_grad_(true), wi = w.detach().requires_grad_(true);
  return torch::autograd::grad({torch::conv2d(xi, wi, {}, 1, 1)}, {xi, wi}, {gy});
}

// Largest |a - b| over the largest |b|; infinite when a is not finite.
double relative_error(const torch::Tensor& a, const torch::Tensor& b) {
  const double err = (a - b).abs().max().item<double>();
  if (!std::isfinite(err)) return INFINITY;
  return err / std::max(b.abs().max().item<double>(), 1e-30);
}

// Restores the oneDNN switch however the check ends.
struct OneDnnSwitch {
  const bool was = at::globalContext().userEnabledMkldnn();
  ~OneDnnSwitch() { at::globalContext().setUserEnabledMkldnn(was); }
};

}  // namespace

CpuConvolutionCheck run_cpu_convolution_check() {
  CpuConvolutionCheck out;
  out.onednn_enabled = at::hasMKLDNN() && at::globalContext().userEnabledMkldnn();
  if (!out.onednn_enabled) return out;
  torch::AutoGradMode grad_mode(true);
  OneDnnSwitch restore;
  at::Generator generator = at::make_generator<at::CPUGeneratorImpl>(20261202);
  // Channel counts that a ResNet stem and its first stages use; 8 and 24 outputs are among the
  // shapes that the faulty build gets wrong (some only in some draws), 32 among those it gets
  // right.
  const int64_t cases[][2] = {{3, 8}, {8, 8}, {32, 24}, {8, 32}};
  constexpr double kTolerance = 1e-3;  // float32 kernels agree to about 1e-6
  for (const auto& c : cases) {
    const torch::Tensor x = torch::randn({16, c[0], 16, 16}, generator);
    const torch::Tensor w = torch::randn({c[1], c[0], 3, 3}, generator);
    const torch::Tensor gy = torch::randn({16, c[1], 16, 16}, generator);
    at::globalContext().setUserEnabledMkldnn(true);
    const auto onednn = convolution_gradients(x, w, gy);
    at::globalContext().setUserEnabledMkldnn(false);
    const auto native = convolution_gradients(x, w, gy);
    const double input_error = relative_error(onednn[0], native[0]);
    const double weight_error = relative_error(onednn[1], native[1]);
    if (input_error > kTolerance || weight_error > kTolerance) {
      std::ostringstream s;
      s << "3x3 convolution, " << c[0] << " -> " << c[1] << " channels: input gradient off by "
        << input_error << ", weight gradient by " << weight_error << " (relative to the largest)";
      out.onednn_agrees = false;
      out.finding = s.str();
      break;
    }
  }
  return out;
}

const CpuConvolutionCheck& check_cpu_convolutions() {
  static const CpuConvolutionCheck result = [] {
    CpuConvolutionCheck r = run_cpu_convolution_check();
    if (!r.onednn_agrees) {
      at::globalContext().setUserEnabledMkldnn(false);
      std::cerr << "halo-clip: warning: LibTorch " << TORCH_VERSION
                << "'s oneDNN convolutions disagree with ATen's native kernels (" << r.finding
                << "); convolutions on CPU use the native kernels in this process: correct, and "
                   "slower (docs/training.md, \"Convolutions on CPU\")\n";
    }
    return r;
  }();
  return result;
}

}  // namespace halo
