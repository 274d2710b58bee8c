// Validation during training (see validation.h).
#include "hooks/validation.h"

#include <cstdio>

#include <torch/torch.h>

#include "common/log.h"
#include "common/metrics.h"
#include "encoders/embed.h"

namespace halo::hooks {

namespace {

// Puts a module in evaluation mode and gives it back its mode on every way out, an exception
// included (a failed validation must not leave the training run in evaluation mode).
class EvalMode {
 public:
  explicit EvalMode(torch::nn::Module& module)
      : module_(module), was_training_(module.is_training()) {
    module_.eval();
  }
  ~EvalMode() { module_.train(was_training_); }
  EvalMode(const EvalMode&) = delete;
  EvalMode& operator=(const EvalMode&) = delete;

 private:
  torch::nn::Module& module_;
  bool was_training_;
};

}  // namespace

void ValidationHook::after_step(const StepContext& step, Metrics& metrics) {
  if (!main_rank_ || (step.step % o_.every != 0 && step.step != step.total_steps)) return;
  torch::NoGradGuard no_grad;
  encoders::PairEmbeddings e;
  {
    const EvalMode eval_mode(*step.model);  // centring's running means are read, not updated
    e = encoders::embed_pair_set(step.model, o_.tokenizer, o_.context_length, *o_.pairs, o_.loader,
                                 o_.device,
                                 /*verbose=*/false);
  }
  const data::Manifest& m = o_.pairs->rows();
  std::vector<int64_t> clean;  // a mismatched pair's caption is not its image's truth
  std::vector<double> score;
  std::vector<int> label;
  const torch::Tensor own =
      e.rows.empty() ? torch::Tensor()
                     : step.loss.mismatch_score(e.image.to(o_.device), e.text.to(o_.device))
                           .to(torch::kCPU, torch::kFloat64)
                           .contiguous();
  for (size_t i = 0; i < e.rows.size(); ++i) {
    const auto row = static_cast<size_t>(e.rows[i]);
    const bool bad = !m.mismatched.empty() && m.mismatched[row];
    if (!bad) clean.push_back(static_cast<int64_t>(i));
    if (!m.mismatched.empty()) {
      score.push_back(own.data_ptr<double>()[i]);
      label.push_back(bad ? 1 : 0);
    }
  }
  if (clean.empty()) {
    log_message("validation at step " + std::to_string(step.step) +
                ": no readable clean pair in '" + m.path + "'");
    return;
  }
  const torch::Tensor index = torch::tensor(clean, torch::kInt64);
  const torch::Tensor image = e.image.index_select(0, index).to(o_.device);
  const torch::Tensor text = e.text.index_select(0, index).to(o_.device);
  const RankSummary i2t =
      summarize_ranks(loss::retrieval_ranks(step.loss, image, text, o_.chunk_rows));
  const RankSummary t2i =
      summarize_ranks(loss::retrieval_ranks(step.loss, text, image, o_.chunk_rows));
  const Metrics v{{"val_i2t_r1", i2t.r1},
                  {"val_i2t_r5", i2t.r5},
                  {"val_t2i_r1", t2i.r1},
                  {"val_t2i_r5", t2i.r5}};
  metrics.insert(metrics.end(), v.begin(), v.end());
  char line[200];
  std::snprintf(
      line, sizeof line,
      "validation at step %lld on %zu pairs: R@1 %.3f / %.3f, R@5 %.3f / %.3f (i2t / t2i)",
      static_cast<long long>(step.step), clean.size(), i2t.r1, t2i.r1, i2t.r5, t2i.r5);
  std::string text_line = line;
  const auto positives = std::count(label.begin(), label.end(), 1);
  if (positives > 0 && positives < static_cast<int64_t>(label.size())) {
    const double a = auroc(score, label);
    metrics.emplace_back("val_mismatch_auroc", a);
    std::snprintf(line, sizeof line, ", mismatch AUROC %.3f", a);
    text_line += line;
  }
  log_message(text_line);
}

}  // namespace halo::hooks
