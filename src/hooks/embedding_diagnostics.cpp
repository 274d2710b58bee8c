// Embedding geometry at logging steps (see embedding_diagnostics.h).
#include "hooks/embedding_diagnostics.h"

#include <cmath>

#include <torch/torch.h>

namespace halo::hooks {

void EmbeddingDiagnosticsHook::after_step(const StepContext& step, Metrics& m) {
  if (!step.logging) return;
  torch::NoGradGuard no_grad;
  // The global batch; this rank's pairs start at row_offset in it.
  const torch::Tensor& image = step.pairs.image_cols;
  const torch::Tensor& text = step.pairs.text_cols;
  const double sqrt_d = std::sqrt(static_cast<double>(image.size(1)));
  auto mean_norm = [&](const torch::Tensor& e) { return e.mean(0).norm().item<double>() / sqrt_d; };
  const torch::Tensor score =
      step.loss.mismatch_score(image, text).to(torch::kCPU, torch::kFloat64);
  m.insert(m.end(), {{"image_mean_norm", mean_norm(image)},
                     {"text_mean_norm", mean_norm(text)},
                     {"image_sq_norm", image.pow(2).mean().item<double>()},
                     {"text_sq_norm", text.pow(2).mean().item<double>()},
                     {"pair_r2", (image - text).pow(2).mean().item<double>()},
                     {"mismatch_score_mean", score.mean().item<double>()},
                     {"mismatch_score_median", score.median().item<double>()}});
  const torch::Tensor& rows = step.batch.rows;
  if (!manifest_->mismatched.empty()) {
    const torch::Tensor row_ids = rows.to(torch::kCPU, torch::kInt64).contiguous();
    const int64_t* ids = row_ids.data_ptr<int64_t>();
    std::vector<uint8_t> flags;
    for (int64_t i = 0; i < row_ids.numel(); ++i) {
      flags.push_back(static_cast<uint8_t>(manifest_->mismatched[static_cast<size_t>(ids[i])]));
    }
    const torch::Tensor bad = torch::tensor(flags, torch::kBool);
    const torch::Tensor local =
        score.slice(0, step.pairs.row_offset, step.pairs.row_offset + rows.numel());
    if (bad.any().item<bool>())
      m.emplace_back("mismatch_score_mismatched", local.index({bad}).mean().item<double>());
    if (!bad.all().item<bool>())
      m.emplace_back("mismatch_score_clean", local.index({~bad}).mean().item<double>());
  }
  // With centring the embeddings above have mean ~0 by construction; the offset that centring
  // removes is the running mean.
  const auto [image_offset, text_offset] = step.model->embedding_offsets();
  if (image_offset.defined()) {
    const double offset_sqrt_d = std::sqrt(static_cast<double>(image_offset.numel()));
    m.emplace_back("image_offset_norm", image_offset.norm().item<double>() / offset_sqrt_d);
    m.emplace_back("text_offset_norm", text_offset.norm().item<double>() / offset_sqrt_d);
  }
}

}  // namespace halo::hooks
