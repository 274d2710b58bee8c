// Evaluation metrics as plain functions of scores: retrieval ranks and recall@k, top-k accuracy,
// expected calibration error with its reliability bins, the detection metrics (AUROC, FPR at 95%
// TPR) used to grade mismatch scores, and selective classification. Every score must be finite:
// a NaN or infinite score is an error naming its position. Ties are handled per metric, as each
// function says: ranks and FPR count an equal score against the item being graded (pessimistic);
// AUROC counts a tie as 1/2 and selective classification averages over the orders of a tied
// block, so neither depends on the order the items are given in.
#pragma once
#include <cmath>
#include <cstdint>
#include <vector>

#include <torch/types.h>

namespace halo {

// A tensor's values as float64 on the CPU, in order.
std::vector<double> to_doubles(const torch::Tensor& t);

// The logistic function: the probability of log-odds x.
inline double sigmoid(double x) {
  return 1.0 / (1.0 + std::exp(-x));
}

// 1-based rank of the true candidate in each row of `scores` (n x m, higher is better): one plus
// the number of other candidates scoring at least as high (pessimistic ties). `truth` holds n
// column indices.
std::vector<int64_t> true_ranks(const torch::Tensor& scores, const std::vector<int64_t>& truth);

struct RankSummary {
  double r1 = 0, r5 = 0, r10 = 0;  // share of ranks <= k
  double mean_rank = 0, median_rank = 0;
  int64_t count = 0;
};
RankSummary summarize_ranks(const std::vector<int64_t>& ranks);

// The share of rows whose true class is among the k best (same tie rule as true_ranks).
double top_k_accuracy(const std::vector<int64_t>& ranks, int64_t k);

struct CalibrationBin {
  double lower = 0, upper = 0;  // confidence range (lower, upper]; the first bin includes 0
  int64_t count = 0;
  double mean_confidence = 0, accuracy = 0;  // 0 for empty bins
};
struct Calibration {
  double ece = 0;  // sum over bins of count/N * |accuracy - mean confidence|
  std::vector<CalibrationBin> bins;
};
// Equal-width bins over [0, 1]. confidence in [0, 1]; correct 0/1.
Calibration calibration(const std::vector<double>& confidence, const std::vector<int>& correct,
                        int bins = 15);

// Area under the ROC curve of `score` for telling positives (label 1) from negatives (label 0):
// the probability that a random positive scores above a random negative, ties counting 1/2.
// Needs at least one of each.
double auroc(const std::vector<double>& score, const std::vector<int>& label);

// False-positive rate at the highest threshold t that flags (score >= t) at least `tpr` of the
// positives: the share of negatives with score >= t (a negative tied with t counts as flagged).
double fpr_at_tpr(const std::vector<double>& score, const std::vector<int>& label,
                  double tpr = 0.95);

// Selective classification: answer the `coverage` share of the inputs with the highest
// confidence, say "I don't know" to the rest. Accuracy on the answered ones at each coverage in
// (0, 1] (at least one input answered), and the area under the risk-coverage curve (AURC): the
// mean over k = 1..n of the error rate of the k most confident inputs. Where the k-th input lies
// inside a block of equal confidences, the errors among the k are the block's average (the
// expectation over the block's orders), so the result does not depend on the input order.
// Lower AURC is better; a confidence that ranks every error last reaches the minimum for the
// given accuracy.
struct SelectiveResult {
  std::vector<double> coverage, accuracy;
  double aurc = 0;
};
SelectiveResult selective_classification(const std::vector<double>& confidence,
                                         const std::vector<int>& correct,
                                         const std::vector<double>& coverages);

// The difference AUROC(a) - AUROC(b) of two scores of the same items, with the percentile
// interval of `level` (e.g. 0.95) over `resamples` bootstrap resamples of the items (drawn with
// replacement, seeded): both scores see the same resample. Resamples that lose one class are
// drawn again.
struct Interval {
  double estimate = 0, lower = 0, upper = 0;
};
Interval paired_bootstrap_auroc_difference(const std::vector<double>& a,
                                           const std::vector<double>& b,
                                           const std::vector<int>& label, int resamples,
                                           double level, uint64_t seed);

}  // namespace halo
