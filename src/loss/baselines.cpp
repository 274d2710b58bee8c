// InfoNCE (CLIP) and sigmoid (SigLIP) losses over rows and columns (see baselines.h).
#include "loss/baselines.h"

#include <torch/torch.h>

#include "common/error.h"

namespace halo::loss {

namespace {

torch::Tensor unit(const torch::Tensor& t) {
  return torch::nn::functional::normalize(t, torch::nn::functional::NormalizeFuncOptions().dim(1));
}

torch::Tensor true_columns(const PairBatch& b) {
  return torch::arange(b.row_offset, b.row_offset + b.rows(),
                       torch::TensorOptions().dtype(torch::kLong).device(b.image_rows.device()));
}

// The batch in its compute dtype, checked, with every tensor in the rows' dtype.
PairBatch prepared(const PairBatch& input, bool check_finite) {
  check_pair_batch(input, check_finite);
  HALO_CHECK(!input.partner_dropped.defined(),
             "InfoNCE and SigLIP have no sink to take a dropped partner's target "
             "(loss.sink_partner_drop is for loss.name: halo)");
  PairBatch b = to_compute_dtype(input);
  const auto dtype = b.image_rows.scalar_type();
  b.text_rows = b.text_rows.to(dtype);
  b.image_cols = b.image_cols.to(dtype);
  b.text_cols = b.text_cols.to(dtype);
  return b;
}

}  // namespace

InfoNceParts infonce_loss(const PairBatch& input, const torch::Tensor& logit_scale,
                          bool check_finite) {
  HALO_CHECK(logit_scale.numel() == 1, "InfoNCE logit_scale must have one element");
  const PairBatch b = prepared(input, check_finite);
  const torch::Tensor scale = torch::exp(torch::clamp_max(
      logit_scale.to(b.image_rows.scalar_type()).reshape({}), kInfoNceMaxLogitScale));
  const torch::Tensor labels = true_columns(b);
  const torch::Tensor i2t = scale * torch::mm(unit(b.image_rows), unit(b.text_cols).t());
  const torch::Tensor t2i = scale * torch::mm(unit(b.text_rows), unit(b.image_cols).t());
  InfoNceParts out;
  namespace F = torch::nn::functional;
  if (b.sink_share.defined()) {  // rows weighted by 1 - share, still a mean over the n rows
    const auto none = F::CrossEntropyFuncOptions().reduction(torch::kNone);
    const torch::Tensor weight = 1.0 - b.sink_share.detach().to(i2t.options());
    out.ce_image_to_text = (weight * F::cross_entropy(i2t, labels, none)).mean();
    out.ce_text_to_image = (weight * F::cross_entropy(t2i, labels, none)).mean();
  } else {
    out.ce_image_to_text = F::cross_entropy(i2t, labels);
    out.ce_text_to_image = F::cross_entropy(t2i, labels);
  }
  out.total = 0.5 * (out.ce_image_to_text + out.ce_text_to_image);
  return out;
}

SigLipParts siglip_loss(const PairBatch& input, const torch::Tensor& log_temperature,
                        const torch::Tensor& bias, bool check_finite) {
  HALO_CHECK(log_temperature.numel() == 1 && bias.numel() == 1,
             "SigLIP temperature and bias must have one element each");
  HALO_CHECK(!input.sink_share.defined(),
             "the SigLIP loss takes no sink share (loss.sink_bootstrap_from)");
  const PairBatch b = prepared(input, check_finite);
  const auto dtype = b.image_rows.scalar_type();
  const torch::Tensor logits = torch::exp(log_temperature.to(dtype).reshape({})) *
                                   torch::mm(unit(b.image_rows), unit(b.text_cols).t()) +
                               bias.to(dtype).reshape({});
  // z = +1 on each row's true column, -1 elsewhere.
  torch::Tensor z = torch::full_like(logits, -1.0);
  z.scatter_(1, true_columns(b).unsqueeze(1), 1.0);
  SigLipParts out;
  out.total = -torch::log_sigmoid(z * logits).sum() / static_cast<double>(b.rows());
  return out;
}

}  // namespace halo::loss
