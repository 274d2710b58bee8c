// Scoring and the classification / OOD metrics (see classify_eval.h).
#include "classify/classify_eval.h"

#include <numeric>

#include <torch/torch.h>

#include "classify/classify_train.h"
#include "common/error.h"
#include "common/metrics.h"
#include "data/loader.h"

namespace halo::classify {

ScoredImages score_images(encoders::ResNet& encoder, ClassifierHead& head,
                          const std::shared_ptr<const data::Manifest>& manifest,
                          const ClassifyOptions& o, const torch::Device& device) {
  torch::NoGradGuard no_grad;
  encoder->eval();
  head->eval();
  data::BatchLoader loader(manifest, no_tokens, image_loader_options(o, /*training=*/false));
  ScoredImages out;
  loader.start_epoch(0);
  while (std::optional<data::Batch> batch = loader.next()) {
    const HeadPredictions p = head->predict(encoder->forward(batch->images.to(device)));
    const auto [best, predicted] = p.probs.max(1);
    const torch::Tensor best_cpu = best.to(torch::kCPU, torch::kDouble).contiguous();
    const torch::Tensor predicted_cpu = predicted.to(torch::kCPU).contiguous();
    const torch::Tensor score_cpu = p.ood_score.to(torch::kCPU, torch::kDouble).contiguous();
    for (int64_t i = 0; i < best_cpu.size(0); ++i) {
      out.confidence.push_back(best_cpu.data_ptr<double>()[i]);
      out.predicted.push_back(predicted_cpu.data_ptr<int64_t>()[i]);
      out.ood_score.push_back(score_cpu.data_ptr<double>()[i]);
    }
  }
  return out;
}

namespace {
double mean(const std::vector<double>& v) {
  return v.empty() ? 0.0 : std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(v.size());
}
}  // namespace

TestMetrics test_metrics(const ScoredImages& scored, const std::vector<int64_t>& labels) {
  HALO_CHECK(scored.predicted.size() == labels.size() && !labels.empty(),
             "test metrics: ", scored.predicted.size(), " predictions for ", labels.size(),
             " labels");
  std::vector<int> correct(labels.size());
  for (size_t i = 0; i < labels.size(); ++i) correct[i] = scored.predicted[i] == labels[i] ? 1 : 0;
  TestMetrics m;
  m.images = static_cast<int64_t>(labels.size());
  m.accuracy = static_cast<double>(std::accumulate(correct.begin(), correct.end(), int64_t{0})) /
               static_cast<double>(labels.size());
  m.ece = halo::calibration(scored.confidence, correct, 15).ece;
  m.mean_confidence = mean(scored.confidence);
  m.mean_ood_score = mean(scored.ood_score);
  return m;
}

OodMetrics ood_metrics(const std::vector<double>& test_scores,
                       const std::vector<double>& ood_scores) {
  HALO_CHECK(!test_scores.empty() && !ood_scores.empty(),
             "OOD metrics need scores of both sets, got ", test_scores.size(), " test and ",
             ood_scores.size(), " OOD scores");
  std::vector<double> score(test_scores), confidence;
  score.insert(score.end(), ood_scores.begin(), ood_scores.end());
  std::vector<int> is_ood(score.size(), 0);
  std::fill(is_ood.begin() + static_cast<std::ptrdiff_t>(test_scores.size()), is_ood.end(), 1);
  OodMetrics m;
  m.images = static_cast<int64_t>(ood_scores.size());
  m.auroc = halo::auroc(score, is_ood);
  // FPR@95 with the test images as the positives, ranked by -score: the threshold accepts 95%
  // of them, and the rate counts OOD images accepted with them.
  std::vector<int> is_test(is_ood.size());
  for (size_t i = 0; i < score.size(); ++i) {
    confidence.push_back(-score[i]);
    is_test[i] = 1 - is_ood[i];
  }
  m.fpr95 = halo::fpr_at_tpr(confidence, is_test, 0.95);
  m.mean_ood_score = mean(ood_scores);
  return m;
}

}  // namespace halo::classify
