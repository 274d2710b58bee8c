// Implementation of the HALO building blocks (see halo_terms.h and docs/loss.md).
#include "loss/halo_terms.h"

#include <cmath>

#include <torch/torch.h>

#include "common/error.h"

namespace halo::loss {

namespace {
// r^2 the regulariser aims for, and r^2 of a random pair at initialisation.
double target_r_sq(double D) {
  return 1.0 - 2.0 / D;
}
double initial_gamma(double D) {
  return 20.0 / (2.0 - target_r_sq(D));
}
}  // namespace

double initial_gamma(int64_t embed_dim) {
  HALO_CHECK(embed_dim >= 2, "HALO needs an embedding size D >= 2, got ", embed_dim);
  return initial_gamma(static_cast<double>(embed_dim));
}

double abstain_bias(int64_t embed_dim, int64_t num_candidates, double label_smoothing) {
  HALO_CHECK(embed_dim >= 2, "HALO needs an embedding size D >= 2, got ", embed_dim);
  HALO_CHECK(num_candidates >= 1, "HALO needs at least one candidate class, got ", num_candidates);
  check_label_smoothing(label_smoothing, /*distill=*/false);
  const double D = static_cast<double>(embed_dim), K = static_cast<double>(num_candidates);
  double max_prob = 0.99, min_prob = 0.01 / K;
  if (label_smoothing > 0) {
    max_prob = 1.0 - label_smoothing + label_smoothing / K;
    min_prob = label_smoothing / K;
  }
  return initial_gamma(D) * (1.0 - target_r_sq(D)) - std::log(max_prob / min_prob);
}

double initial_gamma_raw(int64_t embed_dim) {
  HALO_CHECK(embed_dim >= 2, "HALO needs an embedding size D >= 2, got ", embed_dim);
  const double g = initial_gamma(static_cast<double>(embed_dim));
  return g > 20.0 ? g : std::log(std::expm1(g));  // inverse softplus
}

torch::Tensor gamma_from_raw(const torch::Tensor& gamma_raw, torch::ScalarType dtype) {
  HALO_CHECK(gamma_raw.numel() == 1, "gamma_raw must have one element, got shape ",
             gamma_raw.sizes());
  return torch::softplus(gamma_raw.to(dtype).reshape({}), /*beta=*/1, /*threshold=*/20);
}

torch::Tensor to_compute_dtype(const torch::Tensor& t) {
  const auto type = t.scalar_type();
  return (type == torch::kHalf || type == torch::kBFloat16) ? t.to(torch::kFloat) : t;
}

void check_embeddings(const std::string& what, const torch::Tensor& t, bool check_finite) {
  HALO_CHECK(t.defined(), what, " is missing (undefined tensor)");
  HALO_CHECK(t.dim() == 2, what, " must be a 2-D (batch x D) tensor, got shape ", t.sizes());
  HALO_CHECK(t.size(0) > 0, what, " is empty (batch of 0 rows)");
  HALO_CHECK(t.size(1) >= 2, what, " has D = ", t.size(1), "; HALO needs an embedding size D >= 2");
  HALO_CHECK(t.is_floating_point(), what, " must be floating point, got ", t.scalar_type());
  if (check_finite) {
    HALO_CHECK(torch::isfinite(t).all().item<bool>(), what, " contains NaN or infinite values");
  }
}

void check_label_smoothing(double eps, bool distill, const std::string& key_prefix) {
  HALO_CHECK(eps >= 0.0 && eps < 1.0, key_prefix, "label_smoothing must be in [0, 1), got ", eps);
  HALO_CHECK(!distill || eps > 0.0, "self-distillation (", key_prefix,
             "distill) divides the true logits by label_smoothing: it needs ", key_prefix,
             "label_smoothing > 0 (or set ", key_prefix, "distill to false)");
}

torch::Tensor true_logits(const torch::Tensor& S, const torch::Tensor& gamma,
                          const torch::Tensor& q) {
  return torch::clamp_max(S - gamma * q.pow(2).mean(1, /*keepdim=*/true), 0.0);
}

torch::Tensor distill_targets(const torch::Tensor& S, const torch::Tensor& gamma,
                              const torch::Tensor& q, const torch::Tensor& true_col, double eps) {
  torch::NoGradGuard no_grad;
  torch::Tensor logits = true_logits(S, gamma, q).div_(eps);
  logits.scatter_(1, true_col.unsqueeze(1), 0.0);
  return torch::softmax(logits, 1);
}

torch::Tensor smoothing_targets(const torch::Tensor& S, const torch::Tensor& true_col, double eps) {
  const double m = static_cast<double>(S.size(1));
  torch::Tensor t = torch::full(S.sizes(), eps / m, S.options().requires_grad(false));
  t.scatter_(1, true_col.unsqueeze(1), 1.0 - eps + eps / m);
  return t;
}

torch::Tensor sink_cross_entropy(const torch::Tensor& S, double b, const torch::Tensor& targets) {
  torch::Tensor lse = torch::logsumexp(S, 1);
  torch::Tensor lse_with_sink = torch::logaddexp(lse, torch::full_like(lse, b));
  return (lse_with_sink - (targets * S).sum(1)).mean();
}

torch::Tensor radial_nll_per_row(const torch::Tensor& r_sq, int64_t embed_dim) {
  const double D = static_cast<double>(embed_dim);
  torch::Tensor r = torch::clamp_min(r_sq, kMinRadiusSq);
  return -((0.5 - 1.0 / D) * torch::log(r) - 0.5 * r);
}

torch::Tensor radial_nll(const torch::Tensor& r_sq, int64_t embed_dim) {
  return radial_nll_per_row(r_sq, embed_dim).mean();
}

}  // namespace halo::loss
