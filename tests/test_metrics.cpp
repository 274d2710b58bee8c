// Metric functions against hand-computed cases, ties included, and the filter's keep rule.
#include <cmath>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "common/error.h"
#include "common/metrics.h"
#include "eval/filter.h"
#include "test_util.h"

namespace halo::test {
namespace {

using eval::keep_mask;

TEST(Metrics, RanksCountTiesAgainstTheTrueCandidate) {
  const torch::Tensor s =
      torch::tensor({{0.5, 0.5, 0.1}, {0.2, 0.9, 0.3}, {0.7, 0.7, 0.7}}, torch::kFloat64);
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

// A tied block is answered as a whole on average: the result is the same whatever order the
// tied inputs come in. By hand: sorted, the first is right (0.9); then three tied at 0.5 with one
// error among them, so the expected errors among the top k are 0, 1/3, 2/3, 1.
TEST(Metrics, SelectiveClassificationAveragesTiedBlocks) {
  const std::vector<double> coverages{0.5, 1.0};
  const SelectiveResult a = selective_classification({0.9, 0.5, 0.5, 0.5}, {1, 0, 1, 1}, coverages);
  const SelectiveResult b = selective_classification({0.5, 0.5, 0.5, 0.9}, {1, 1, 0, 1}, coverages);
  EXPECT_NEAR(a.aurc, (0.0 + (1.0 / 3) / 2 + (2.0 / 3) / 3 + 1.0 / 4) / 4, 1e-15);
  EXPECT_DOUBLE_EQ(a.aurc, b.aurc);
  EXPECT_NEAR(a.accuracy[0], 1.0 - (1.0 / 3) / 2, 1e-15);
  EXPECT_DOUBLE_EQ(a.accuracy[0], b.accuracy[0]);
  EXPECT_DOUBLE_EQ(a.accuracy[1], 0.75);
}

// NaN would make the sorts undefined behaviour; each metric names the bad score instead.
TEST(Metrics, NonFiniteScoresAreRejectedWithTheirPosition) {
  const double nan = std::nan("");
  EXPECT_THAT(error_message([&] {
                auroc({0.1, nan, 0.3}, {0, 1, 1});
              }),
              ::testing::HasSubstr("auroc: score 1 of 3 is nan"));
  EXPECT_THAT(error_message([&] {
                fpr_at_tpr({0.1, 0.2, INFINITY}, {0, 1, 1});
              }),
              ::testing::HasSubstr("fpr_at_tpr: score 2 of 3 is inf"));
  EXPECT_THAT(error_message([&] {
                selective_classification({nan, 0.5}, {1, 0}, {0.5});
              }),
              ::testing::HasSubstr("score 0 of 2 is nan"));
  EXPECT_THAT(error_message([&] {
                paired_bootstrap_auroc_difference({0.1, 0.2}, {0.3, -INFINITY}, {0, 1}, 10, 0.9, 0);
              }),
              ::testing::HasSubstr("score 1 of 2 is -inf"));
  const torch::Tensor s = torch::tensor({{0.5, nan}, {0.2, 0.9}}, torch::kFloat64);
  EXPECT_THAT(error_message([&] {
                true_ranks(s, {0, 1});
              }),
              ::testing::HasSubstr("NaN or infinite"));
}

TEST(Filter, KeepRuleByThresholdAndFraction) {
  const std::vector<double> s{0.9, 0.1, 0.5, 0.5, 0.2};
  double t = 0;
  EXPECT_EQ(keep_mask(s, 0.5, std::nullopt, &t),
            (std::vector<bool>{false, true, false, false, true}));
  EXPECT_DOUBLE_EQ(t, 0.5);
  // 3 of 5: 0.1, 0.2 and the first 0.5 (ties by position); rejection starts at the other 0.5.
  EXPECT_EQ(keep_mask(s, std::nullopt, 0.6, &t),
            (std::vector<bool>{false, true, true, false, true}));
  EXPECT_FLOAT_EQ(static_cast<float>(t), 0.5f);
  EXPECT_EQ(keep_mask(s, std::nullopt, 0.0, &t), std::vector<bool>(5, false));
  EXPECT_EQ(keep_mask(s, std::nullopt, 1.0, &t), std::vector<bool>(5, true));
  EXPECT_THROW(keep_mask(s, std::nullopt, 1.5, &t), halo::Error);
  EXPECT_THROW(keep_mask(s, 0.5, 0.5, &t), halo::Error);
}

}  // namespace
}  // namespace halo::test
