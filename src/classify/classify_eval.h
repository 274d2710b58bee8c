// Scoring images with a trained classifier and the metrics of `halo-clip classify`: accuracy and
// ECE on the labelled test split, and how well the out-of-distribution score separates the test
// split from an out-of-distribution set (AUROC, FPR at 95% TPR; src/eval/metrics.h).
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include <torch/types.h>

#include "classify/classifier_head.h"
#include "classify/classify_options.h"
#include "data/manifest.h"
#include "encoders/resnet.h"

namespace halo::classify {

struct ScoredImages {
  std::vector<int64_t> predicted;  // the most probable class
  std::vector<double> confidence;  // its probability
  std::vector<double> ood_score;   // HALO: abstain probability; CE: 1 - confidence
};

// Scores every image of `manifest` in order (no augmentation, batches of options.batch_size).
ScoredImages score_images(encoders::ResNet& encoder, ClassifierHead& head,
                          const std::shared_ptr<const data::Manifest>& manifest,
                          const ClassifyOptions& options, const torch::Device& device);

struct TestMetrics {
  int64_t images = 0;
  double accuracy = 0, ece = 0;  // ECE over 15 equal-width bins of the confidence
  double mean_confidence = 0, mean_ood_score = 0;
};
TestMetrics test_metrics(const ScoredImages& scored, const std::vector<int64_t>& labels);

struct OodMetrics {
  int64_t images = 0;
  double auroc = 0;  // probability that an OOD image scores above a test image (ties 1/2)
  double fpr95 = 0;  // share of OOD images taken as in-distribution at the threshold that keeps 95%
                     // of the test images
  double mean_ood_score = 0;
};
// test_scores: the OOD scores of the in-distribution test images; ood_scores: those of the OOD set.
OodMetrics ood_metrics(const std::vector<double>& test_scores,
                       const std::vector<double>& ood_scores);

}  // namespace halo::classify
