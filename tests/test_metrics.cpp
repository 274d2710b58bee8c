// Metric functions against hand-computed cases, ties included, and the filter's keep rule.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "common/error.h"
#include "common/metrics.h"
#include "eval/filter.h"

namespace halo::test {
namespace {

using eval::keep_mask;

TEST(Metrics, RanksCountTiesAgainstTheTrueCandidate) {
  const torch::Tensor s = torch::tensor({{0.5, 0.5, 0.1}, {0.2, 0.9, 0.3}, {0.7, 0.7, 0.7}}, torch::kFloat64);
  EXPECT_EQ(true_ranks(s, {0, 1, 2}), (std::vector<int64_t>{2, 1, 3}));
  EXPECT_EQ(true_ranks(s, {2, 0, 0}), (std::vector<int64_t>{3, 3, 3}));
  EXPECT_THROW(true_ranks(s, {0, 1}), halo::Error);
  EXPECT_THROW(true_ranks(s, {0, 1, 3}), halo::Error);
}

TEST(Metrics, RankSummaryByHand) {
  const RankSummary s = summarize_ranks({1, 2, 6, 11});
  EXPECT_DOUBLE_EQ(s.r1, 0.25);
  EXPECT_DOUBLE_EQ(s.r5, 0.5);
  EXPECT_DOUBLE_EQ(s.r10, 0.75);
  EXPECT_DOUBLE_EQ(s.mean_rank, 5.0);
  EXPECT_DOUBLE_EQ(s.median_rank, 4.0);
  EXPECT_DOUBLE_EQ(summarize_ranks({3, 1, 2}).median_rank, 2.0);
  EXPECT_DOUBLE_EQ(top_k_accuracy({1, 5, 6}, 5), 2.0 / 3.0);
}

TEST(Metrics, CalibrationByHand) {
  // 0.05 -> bin 0 (acc 0), 0.95 twice -> bin 14 (acc 1/2), 0.5 -> bin 7 (acc 1).
  const Calibration c = calibration({0.05, 0.95, 0.95, 0.5}, {0, 1, 0, 1}, 15);
  EXPECT_NEAR(c.ece, 0.25 * 0.05 + 0.5 * 0.45 + 0.25 * 0.5, 1e-12);
  ASSERT_EQ(c.bins.size(), 15u);
  EXPECT_EQ(c.bins[0].count, 1);
  EXPECT_EQ(c.bins[7].count, 1);
  EXPECT_EQ(c.bins[14].count, 2);
  EXPECT_DOUBLE_EQ(c.bins[14].accuracy, 0.5);
  // Edges: 0 and exactly 1/15 fall in the first bin, 1 in the last.
  const Calibration edges = calibration({0.0, 1.0 / 15.0, 1.0}, {1, 1, 1}, 15);
  EXPECT_EQ(edges.bins[0].count, 2);
  EXPECT_EQ(edges.bins[14].count, 1);
  // Perfectly calibrated: confidence equals accuracy in each bin.
  EXPECT_NEAR(calibration({0.5, 0.5, 1.0}, {1, 0, 1}, 15).ece, 0.0, 1e-12);
  EXPECT_THROW(calibration({1.5}, {1}, 15), halo::Error);
}

TEST(Metrics, AurocByHandWithTies) {
  EXPECT_DOUBLE_EQ(auroc({0.1, 0.4, 0.35, 0.8}, {0, 0, 1, 1}), 0.75);
  EXPECT_DOUBLE_EQ(auroc({0.5, 0.5}, {1, 0}), 0.5);
  // Pairs (positive, negative): (2,1) 1, (2,2) 1/2, (3,1) 1, (3,2) 1 -> 3.5 / 4.
  EXPECT_DOUBLE_EQ(auroc({1, 2, 2, 3}, {0, 1, 0, 1}), 0.875);
  EXPECT_DOUBLE_EQ(auroc({0, 1}, {1, 0}), 0.0);
  EXPECT_THROW(auroc({0.1, 0.2}, {1, 1}), halo::Error);
}

TEST(Metrics, FprAtTprByHand) {
  // 20 positives at 0.05, 0.10, ..., 1.00: 95% of them (19) score >= 0.10.
  std::vector<double> score;
  std::vector<int> label;
  for (int k = 1; k <= 20; ++k) score.push_back(0.05 * k), label.push_back(1);
  for (double v : {0.0, 0.05, 0.1, 0.2}) score.push_back(v), label.push_back(0);
  EXPECT_DOUBLE_EQ(fpr_at_tpr(score, label, 0.95), 0.5);  // 0.1 and 0.2 are flagged
  EXPECT_DOUBLE_EQ(fpr_at_tpr(score, label, 1.0), 0.75);  // threshold 0.05
  EXPECT_DOUBLE_EQ(fpr_at_tpr({0.9, 0.8, 0.1}, {1, 1, 0}, 0.95), 0.0);
  // A negative tied with the threshold counts as flagged.
  EXPECT_DOUBLE_EQ(fpr_at_tpr({0.9, 0.8, 0.8}, {1, 1, 0}, 0.95), 1.0);
}

TEST(Filter, KeepRuleByThresholdAndFraction) {
  const std::vector<double> s{0.9, 0.1, 0.5, 0.5, 0.2};
  double t = 0;
  EXPECT_EQ(keep_mask(s, 0.5, std::nullopt, &t), (std::vector<bool>{false, true, false, false, true}));
  EXPECT_DOUBLE_EQ(t, 0.5);
  // 3 of 5: 0.1, 0.2 and the first 0.5 (ties by position); rejection starts at the other 0.5.
  EXPECT_EQ(keep_mask(s, std::nullopt, 0.6, &t), (std::vector<bool>{false, true, true, false, true}));
  EXPECT_FLOAT_EQ(static_cast<float>(t), 0.5f);
  EXPECT_EQ(keep_mask(s, std::nullopt, 0.0, &t), std::vector<bool>(5, false));
  EXPECT_EQ(keep_mask(s, std::nullopt, 1.0, &t), std::vector<bool>(5, true));
  EXPECT_THROW(keep_mask(s, std::nullopt, 1.5, &t), halo::Error);
  EXPECT_THROW(keep_mask(s, 0.5, 0.5, &t), halo::Error);
}

}  // namespace
}  // namespace halo::test
