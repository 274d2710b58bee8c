// Building blocks shared by the classification and the batch HALO losses: the abstain bias,
// the temperature's start, the soft targets, the cross-entropy with the origin sink and the
// radial ("soap bubble") regulariser. docs/loss.md gives the formulas.
#pragma once
#include <cstdint>
#include <string>

#include <torch/types.h>

namespace halo::loss {

// r^2 is floored here before the log of the radial term: a pair with x == t gives a large but
// finite loss and zero radial gradient instead of +inf and NaN.
constexpr double kMinRadiusSq = 1e-6;

// The fixed abstain logit b for D-dim embeddings, K candidate classes and label smoothing eps.
double abstain_bias(int64_t embed_dim, int64_t num_candidates, double label_smoothing);
// gamma_raw at start: softplus(gamma_raw) = 20 / (1 + 2 / D).
double initial_gamma_raw(int64_t embed_dim);
// The temperature gamma at start, 20 / (2 - r*^2) (softplus(initial_gamma_raw) to rounding).
double initial_gamma(int64_t embed_dim);
// softplus(gamma_raw) in `dtype` (threshold 20, as PyTorch's default).
torch::Tensor gamma_from_raw(const torch::Tensor& gamma_raw, torch::ScalarType dtype);

// fp16 and bf16 are computed in fp32; fp32 and fp64 pass through.
torch::Tensor to_compute_dtype(const torch::Tensor& t);
// Throws halo::Error naming `what` unless t is a non-empty 2-D floating tensor of finite values
// (the finiteness check is skipped when check_finite is false).
void check_embeddings(const std::string& what, const torch::Tensor& t, bool check_finite);
// The label smoothing's range and, with distill, eps > 0; `key_prefix` (e.g. "loss.") goes
// before the option names in the message.
void check_label_smoothing(double eps, bool distill, const std::string& key_prefix = "");

// Soft targets over the m candidate columns of S (n x m); row i's true column is true_col[i].
// Self-distillation: softmax over j of (0 at the true column, else min(S_ij - gamma mean(q_i^2), 0)
// / eps).
torch::Tensor distill_targets(const torch::Tensor& S, const torch::Tensor& gamma,
                              const torch::Tensor& q, const torch::Tensor& true_col, double eps);
// Label smoothing: eps / m everywhere, 1 - eps + eps / m at the true column.
torch::Tensor smoothing_targets(const torch::Tensor& S, const torch::Tensor& true_col, double eps);
// The true distances (the logits before the per-row shift), clamped at 0 against rounding.
torch::Tensor true_logits(const torch::Tensor& S, const torch::Tensor& gamma,
                          const torch::Tensor& q);

// Mean over rows of the cross-entropy between `targets` (n x m, rows sum to 1, zero mass on the
// sink) and softmax over [S_i1 .. S_im, b]: logaddexp(logsumexp_j S_ij, b) - sum_j t_ij S_ij.
torch::Tensor sink_cross_entropy(const torch::Tensor& S, double b, const torch::Tensor& targets);

// Radial negative log-likelihood -((1/2 - 1/D) log r^2 - r^2 / 2) of each r^2 (floored), and
// its mean.
torch::Tensor radial_nll_per_row(const torch::Tensor& r_sq, int64_t embed_dim);
torch::Tensor radial_nll(const torch::Tensor& r_sq, int64_t embed_dim);

}  // namespace halo::loss
