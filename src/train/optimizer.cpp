// Optimiser construction and learning-rate schedule (see optimizer.h).
#include "train/optimizer.h"

#include <cmath>

#include <torch/torch.h>

namespace halo::train {

std::unique_ptr<torch::optim::AdamW> make_optimizer(torch::nn::Module& model,
                                                    torch::nn::Module& loss, const OptimConfig& c) {
  std::vector<torch::Tensor> decay, no_decay, scalars;
  for (const auto& p : model.parameters()) (p.dim() >= 2 ? decay : no_decay).push_back(p);
  for (const auto& p : loss.parameters()) {
    if (p.requires_grad()) scalars.push_back(p);
  }
  auto options = [&](double wd, double scale) {
    return std::make_unique<torch::optim::AdamWOptions>(torch::optim::AdamWOptions(c.lr * scale)
                                                            .betas({c.beta1, c.beta2})
                                                            .eps(c.eps)
                                                            .weight_decay(wd));
  };
  // Group order matters to set_learning_rate: 0 decayed weights, 1 the rest of the model,
  // 2 the loss's scalars (with their own learning-rate scale).
  std::vector<torch::optim::OptimizerParamGroup> groups;
  groups.emplace_back(decay, options(c.weight_decay, 1.0));
  groups.emplace_back(no_decay, options(0.0, 1.0));
  if (!scalars.empty()) groups.emplace_back(scalars, options(0.0, c.temperature_lr_scale));
  return std::make_unique<torch::optim::AdamW>(groups, torch::optim::AdamWOptions(c.lr));
}

double learning_rate(int64_t step, int64_t total_steps, const OptimConfig& c) {
  if (c.warmup_steps > 0 && step < c.warmup_steps) {
    return c.lr * static_cast<double>(step + 1) / static_cast<double>(c.warmup_steps);
  }
  const double span = static_cast<double>(std::max<int64_t>(1, total_steps - c.warmup_steps));
  const double progress = std::min(1.0, static_cast<double>(step - c.warmup_steps) / span);
  return 0.5 * c.lr * (1.0 + std::cos(M_PI * progress));
}

void set_learning_rate(torch::optim::Optimizer& optimizer, double lr, const OptimConfig& c) {
  auto& groups = optimizer.param_groups();
  for (size_t g = 0; g < groups.size(); ++g) {
    static_cast<torch::optim::AdamWOptions&>(groups[g].options())
        .lr(g == 2 ? lr * c.temperature_lr_scale : lr);
  }
}

torch::Tensor clip_gradients(const std::vector<torch::Tensor>& parameters, double max_norm) {
  std::vector<torch::Tensor> grads, norms;
  for (const auto& p : parameters) {
    if (p.grad().defined()) grads.push_back(p.grad());
  }
  if (grads.empty()) return torch::zeros({}, torch::kFloat64);
  for (const auto& g : grads) norms.push_back(g.norm(2));
  const torch::Tensor total = norms.size() == 1 ? norms[0] : torch::stack(norms).norm(2);
  const double limit = max_norm > 0 ? max_norm : std::numeric_limits<double>::infinity();
  const torch::Tensor scale = torch::clamp(limit / (total + 1e-6), c10::nullopt, 1.0);
  torch::NoGradGuard no_grad;
  for (auto& g : grads) g.mul_(scale);
  return total;
}

}  // namespace halo::train
