// Zero-shot classification that may say "I don't know" (eval --ood). Per image: the loss's class
// logits against class prompts, the predicted class, and four out-of-distribution scores made
// from them, each oriented "higher = more out of distribution" and kept in float64 log space so
// that no two images tie by saturation:
//   abstain  HALO's sink class: log-odds b - logsumexp(class logits) (HALO only)
//   msp      the maximum softmax probability over the classes: -max_c log softmax(logits)_c
//   mcm      MCM (Ming et al., NeurIPS 2022), the maximum softmax of the cosines to the class
//            embeddings at the paper's temperature 1: -max_c log softmax(cos / 1)_c
//   mcm_clip the same at CLIP's temperature 0.01 (what this project reported as MCM before it
//            was checked against the paper; docs/evaluation.md compares the two)
//   energy   -logsumexp(class logits) (temperature 1)
//   negatives          with a bank of negative captions (NegLabel, Jiang et al., ICLR 2024):
//                      the mass the softmax over classes and negatives puts on the negatives,
//                      as -log P(classes) = logsumexp(classes, negatives) - logsumexp(classes)
//   negatives_sink     HALO: the same with its sink beside the negatives as reject mass,
//                      logsumexp(classes, negatives, b) - logsumexp(classes)
// HALO's abstain log-odds is b plus the energy of its own logits: the two rank images alike by
// construction (docs/loss.md). Then how well each score tells the evaluation set's images from
// an OOD set's (AUROC, and the FPR of the OOD images at 95% TPR of the in-distribution ones),
// and selective classification on the evaluation set (accuracy at 50/80/95% coverage, AURC).
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <torch/types.h>

#include "common/metrics.h"
#include "loss/contrastive_loss.h"

namespace halo::eval {

constexpr double kMcmTemperature = 1.0;       // MCM's own (the paper's and its code's)
constexpr double kMcmClipTemperature = 0.01;  // CLIP's logit scale of 100

struct OodImageScores {
  std::vector<int64_t> predicted;  // the argmax class of each image
  // (name, one value per image), in the order abstain (HALO only), msp, mcm, mcm_clip, energy,
  // and with a bank of negatives, negatives and (HALO) negatives_sink.
  std::vector<std::pair<std::string, std::vector<double>>> scores;
  const std::vector<double>& score(const std::string& name) const;
  // The probability each score stands for (abstain: sink probability; msp, mcm, mcm_clip: the
  // maximum probability; energy: -logsumexp as it is), for the per-image file.
  static double natural_value(const std::string& name, double score);
};

// images: n x D; class_embeddings: C x D (one per class, as zero-shot classification builds
// them); negative_embeddings: K x D, or undefined (no bank). Rows in chunks of `chunk_rows`.
OodImageScores ood_image_scores(loss::ContrastiveLoss& loss, const torch::Tensor& images,
                                const torch::Tensor& class_embeddings, int64_t chunk_rows,
                                const torch::Tensor& negative_embeddings = {});

// The bank of negatives: of `candidates` (K x D text embeddings, as class_embeddings builds
// them), the `count` whose largest cosine to any class embedding is the smallest (NegLabel's
// rule: far from every class), in candidate order. Returns their indices.
std::vector<int64_t> farthest_from_classes(const torch::Tensor& candidates,
                                           const torch::Tensor& class_embeddings, int64_t count);

struct OodDetection {
  std::string set, score;
  int64_t images = 0;  // of the OOD set
  double auroc = 0, fpr95 = 0;
};

// Each score of `ood` against the same score of `in_distribution`.
std::vector<OodDetection> ood_detection(const std::string& set,
                                        const OodImageScores& in_distribution,
                                        const OodImageScores& ood);

struct SelectiveScore {
  std::string score;
  SelectiveResult result;  // at coverages 0.5, 0.8, 0.95
};

// Selective classification of the evaluation set's images by each score (confidence = -score).
std::vector<SelectiveScore> selective_by_score(const OodImageScores& scores,
                                               const std::vector<int64_t>& labels);

// The images of one set with their scores, for the per-image file.
struct OodScoredSet {
  std::string name;                 // "in-distribution" for the evaluation set
  std::vector<std::string> images;  // paths
  std::vector<int64_t> labels;      // the true classes; empty for an OOD set
  OodImageScores scores;
};
// A TSV (written atomically): set, image_path, label (-1: OOD), predicted, correct (-1: OOD),
// then for each score NAME as natural_value() gives it and NAME_score, the float64 value that
// detection ranks by (higher: more out of distribution; abstain_score is the log-odds).
void write_ood_scores(const std::string& path, const std::vector<OodScoredSet>& sets);

}  // namespace halo::eval
