// The three losses behind the ContrastiveLoss interface, and the factory that picks one by name.
#include "loss/contrastive_loss.h"

#include <cmath>

#include <torch/torch.h>

#include "common/error.h"
#include "common/metrics.h"
#include "loss/baselines.h"
#include "loss/halo_clip_loss.h"
#include "loss/halo_terms.h"
#include "loss/shifted_distance.h"

namespace halo::loss {

namespace {

torch::Tensor cosine(const torch::Tensor& image, const torch::Tensor& text) {
  return torch::cosine_similarity(to_compute_dtype(image), to_compute_dtype(text), 1);
}

// Each pair's cosine in float64, for log-odds, after the checks every pair score makes.
torch::Tensor checked_cosine64(const torch::Tensor& image, const torch::Tensor& text) {
  check_embeddings("image embeddings", image, /*check_finite=*/true);
  check_embeddings("text embeddings", text, /*check_finite=*/true);
  return torch::cosine_similarity(image.to(torch::kFloat64), text.to(torch::kFloat64), 1);
}

// n x m cosine similarities.
torch::Tensor cosine_matrix(const torch::Tensor& queries, const torch::Tensor& candidates) {
  namespace F = torch::nn::functional;
  const auto options = F::NormalizeFuncOptions().dim(1);
  return F::normalize(to_compute_dtype(queries), options)
      .matmul(F::normalize(to_compute_dtype(candidates), options).t());
}

// gamma = softplus(gamma_raw) (the reference) or exp(log_gamma) ("log": Adam's steps then change
// gamma by a factor, as InfoNCE's logit scale, instead of by about the learning rate). The loss
// functions take the softplus form, so the log form is handed over as
// inverse_softplus(exp(log_gamma)) = g + log(-expm1(-g)), which softplus maps back to g.
class HaloClipLoss : public ContrastiveLoss {
 public:
  explicit HaloClipLoss(const ContrastiveLossOptions& o)
      : options_(o), b_(abstain_bias(o.embed_dim, o.num_candidates, o.label_smoothing)) {
    log_temperature_ = o.temperature == "log";
    if (log_temperature_) {
      param_ = register_parameter(
          "log_gamma", torch::full({1}, std::log(initial_gamma(o.embed_dim))), o.learn_temperature);
    } else {
      param_ = register_parameter("gamma_raw", torch::full({1}, initial_gamma_raw(o.embed_dim)),
                                  o.learn_temperature);
    }
  }
  LossOutput forward(const PairBatch& batch) override {
    const torch::Tensor raw = gamma_raw();
    HaloClipParts p = halo_clip_loss(batch, raw, b_, options_);
    return {p.total,
            {{"ce_image_to_text", p.ce_image_to_text},
             {"ce_text_to_image", p.ce_text_to_image},
             {"radial", p.radial},
             {"gamma", gamma_from_raw(raw, torch::kFloat).detach()}}};
  }
  torch::Tensor mismatch_score(const torch::Tensor& image, const torch::Tensor& text) override {
    return pair_abstain_score(image, text, gamma_raw(), b_);
  }
  torch::Tensor mismatch_log_odds(const torch::Tensor& image, const torch::Tensor& text) override {
    return pair_abstain_log_odds(image, text, gamma_raw(), b_);
  }
  torch::Tensor logits(const torch::Tensor& queries, const torch::Tensor& candidates) override {
    const torch::Tensor q = to_compute_dtype(queries);
    return shifted_distance(q, to_compute_dtype(candidates),
                            gamma_from_raw(gamma_raw(), q.scalar_type()));
  }
  std::optional<double> abstain_logit() const override { return b_; }
  std::string kind() const override { return "halo"; }

 private:
  // The softplus-form raw temperature, differentiable with respect to the parameter.
  torch::Tensor gamma_raw() const {
    if (!log_temperature_) return param_;
    const torch::Tensor g = param_.clamp_max(kMaxLogGamma).exp();
    return g + torch::log(-torch::expm1(-g));
  }
  static constexpr double kMaxLogGamma = 9.2;  // gamma <= ~10^4

  HaloClipOptions options_;
  double b_;
  bool log_temperature_ = false;
  torch::Tensor param_;
};

class InfoNceLoss : public ContrastiveLoss {
 public:
  explicit InfoNceLoss(const ContrastiveLossOptions& o) : check_finite_(o.check_finite) {
    logit_scale_ = register_parameter("logit_scale", torch::full({1}, kInfoNceInitLogitScale),
                                      o.learn_temperature);
  }
  LossOutput forward(const PairBatch& batch) override {
    InfoNceParts p = infonce_loss(batch, logit_scale_, check_finite_);
    return {p.total,
            {{"ce_image_to_text", p.ce_image_to_text},
             {"ce_text_to_image", p.ce_text_to_image},
             {"logit_scale", logit_scale_.clamp_max(kInfoNceMaxLogitScale).exp().detach()}}};
  }
  torch::Tensor mismatch_score(const torch::Tensor& image, const torch::Tensor& text) override {
    return 0.5 * (1.0 - cosine(image, text));
  }
  torch::Tensor mismatch_log_odds(const torch::Tensor& image, const torch::Tensor& text) override {
    return cosine_log_odds(image, text);
  }
  torch::Tensor logits(const torch::Tensor& queries, const torch::Tensor& candidates) override {
    return logit_scale_.clamp_max(kInfoNceMaxLogitScale).exp() * cosine_matrix(queries, candidates);
  }
  std::string kind() const override { return "infonce"; }

 private:
  bool check_finite_;
  torch::Tensor logit_scale_;
};

class SigLipLoss : public ContrastiveLoss {
 public:
  explicit SigLipLoss(const ContrastiveLossOptions& o) : check_finite_(o.check_finite) {
    log_temperature_ = register_parameter(
        "log_temperature", torch::full({1}, kSigLipInitLogTemperature), o.learn_temperature);
    bias_ = register_parameter("bias", torch::full({1}, kSigLipInitBias), o.learn_temperature);
  }
  LossOutput forward(const PairBatch& batch) override {
    SigLipParts p = siglip_loss(batch, log_temperature_, bias_, check_finite_);
    return {p.total, {{"temperature", log_temperature_.exp().detach()}, {"bias", bias_.detach()}}};
  }
  torch::Tensor mismatch_score(const torch::Tensor& image, const torch::Tensor& text) override {
    torch::Tensor logit = log_temperature_.exp() * cosine(image, text) + bias_;
    return 1.0 - torch::sigmoid(logit);
  }
  torch::Tensor mismatch_log_odds(const torch::Tensor& image, const torch::Tensor& text) override {
    const torch::Tensor cos = checked_cosine64(image, text);
    return -(log_temperature_.to(torch::kFloat64).exp() * cos +
             bias_.to(torch::kFloat64));  // 1 - sigmoid(l) = sigmoid(-l)
  }
  torch::Tensor logits(const torch::Tensor& queries, const torch::Tensor& candidates) override {
    return log_temperature_.exp() * cosine_matrix(queries, candidates) + bias_;
  }
  std::string kind() const override { return "siglip"; }

 private:
  bool check_finite_;
  torch::Tensor log_temperature_, bias_;
};

}  // namespace

torch::Tensor cosine_log_odds(const torch::Tensor& image, const torch::Tensor& text) {
  const torch::Tensor cos = checked_cosine64(image, text);
  return torch::log1p(-cos) - torch::log1p(cos);
}

std::vector<int64_t> retrieval_ranks(ContrastiveLoss& loss, const torch::Tensor& queries,
                                     const torch::Tensor& candidates, int64_t chunk_rows) {
  torch::NoGradGuard no_grad;
  std::vector<int64_t> ranks;
  ranks.reserve(static_cast<size_t>(queries.size(0)));
  for (int64_t start = 0; start < queries.size(0); start += chunk_rows) {
    const int64_t end = std::min(queries.size(0), start + chunk_rows);
    std::vector<int64_t> truth(static_cast<size_t>(end - start));
    for (int64_t i = start; i < end; ++i) truth[static_cast<size_t>(i - start)] = i;
    const auto r = true_ranks(loss.logits(queries.slice(0, start, end), candidates), truth);
    ranks.insert(ranks.end(), r.begin(), r.end());
  }
  return ranks;
}

const std::vector<std::string>& contrastive_loss_names() {
  static const std::vector<std::string> names{"halo", "infonce", "siglip"};
  return names;
}

std::shared_ptr<ContrastiveLoss> make_contrastive_loss(const ContrastiveLossOptions& options) {
  options.validate();
  if (options.name == "halo") return std::make_shared<HaloClipLoss>(options);
  if (options.name == "infonce") return std::make_shared<InfoNceLoss>(options);
  if (options.name == "siglip") return std::make_shared<SigLipLoss>(options);
  HALO_FAIL("unknown loss '", options.name, "' (choose one of: halo, infonce, siglip)");
}

}  // namespace halo::loss
