// The per-pair training dynamics (train/pair_dynamics.h): the step scores against their
// definitions (the loss's pair score, 1 - cos, the in-batch in-context score, which must equal
// the evaluator's on a single-process batch, and the negative logit margin), the exact
// accumulator, the checkpoint state, and the TSV file with its AUROC.
#include <algorithm>
#include <cmath>
#include <fstream>
#include <limits>
#include <optional>
#include <sstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "common/error.h"
#include "common/metrics.h"
#include "data/manifest.h"
#include "dist/env.h"
#include "dist/process_group.h"
#include "eval/evaluate.h"
#include "hooks/pair_dynamics.h"
#include "loss/contrastive_loss.h"
#include "loss/row_scores.h"
#include "test_util.h"

namespace halo::test {
namespace {

using ::testing::HasSubstr;

std::shared_ptr<loss::ContrastiveLoss> make_loss(const std::string& name, int64_t dim,
                                                 int64_t batch) {
  loss::ContrastiveLossOptions o;
  o.name = name;
  o.embed_dim = dim;
  o.num_candidates = batch;
  return loss::make_contrastive_loss(o);
}

class StepScores : public ::testing::TestWithParam<std::string> {};

// The best logit of each row other than column `own[i]` (and the abstain logit b when given).
torch::Tensor best_other(const torch::Tensor& logits, std::optional<double> b) {
  std::vector<double> best;
  for (int64_t i = 0; i < logits.size(0); ++i) {
    double m = b ? *b : -INFINITY;
    for (int64_t j = 0; j < logits.size(1); ++j) {
      if (j != i) m = std::max(m, logits[i][j].item<double>());
    }
    best.push_back(m);
  }
  return torch::tensor(best, torch::kFloat64);
}

// On one process's batch (rows == columns), the columns are the loss's pair score, 1 - cos,
// the evaluator's in-context score over the same pairs, and minus the mean of the two
// directions' margins (own logit minus the best other, written out here with loops).
TEST_P(StepScores, MatchTheirDefinitionsOnAWholeBatch) {
  torch::manual_seed(1);
  const int64_t n = 12, d = 8;
  const torch::Tensor image = torch::randn({n, d}), text = image + 0.8 * torch::randn({n, d});
  auto loss = make_loss(GetParam(), d, n);
  const torch::Tensor s = hooks::step_pair_scores(*loss, loss::PairBatch::local(image, text));
  ASSERT_EQ(s.sizes(), (std::vector<int64_t>{n, 4}));
  EXPECT_EQ(s.dtype(), torch::kFloat64);
  EXPECT_TRUE(
      all_close(s.select(1, 0), loss->mismatch_score(image, text).to(torch::kFloat64), 1e-6, 1e-7));
  EXPECT_TRUE(all_close(s.select(1, 1),
                        1.0 - torch::cosine_similarity(image, text, 1).to(torch::kFloat64), 1e-6,
                        1e-7));
  const auto context = eval::in_context_log_odds(*loss, image, text, 5);
  EXPECT_TRUE(all_close(s.select(1, 2), torch::tensor(context, torch::kFloat64), 1e-6, 1e-6));
  const torch::Tensor i2t = loss->logits(image, text).to(torch::kFloat64);
  const torch::Tensor t2i = loss->logits(text, image).to(torch::kFloat64);
  const auto b = loss->abstain_logit();
  const torch::Tensor margin =
      0.5 * ((i2t.diagonal() - best_other(i2t, b)) + (t2i.diagonal() - best_other(t2i, b)));
  EXPECT_TRUE(all_close(s.select(1, 3), -margin, 1e-6, 1e-6));
}

// Pairs the model is sure of have an in-context probability 1 - p below the accumulator's
// resolution (2^-24): as a probability they would all sum to 0 and tie. As log-odds they keep
// their order through the fixed-point means, as eval's and filter's in-context score does.
TEST(PairDynamics, ConfidentPairsKeepTheirInContextOrderThroughTheMeans) {
  torch::manual_seed(3);
  const int64_t n = 6, d = 8;
  // Orthogonal directions of growing length: each pair's own column wins by more than the last.
  const torch::Tensor scale = torch::arange(1, n + 1, torch::kFloat).unsqueeze(1) * 4;
  const torch::Tensor image = torch::eye(n, d) * scale * 3, text = image.clone();
  auto loss = make_loss("halo", d, n);  // distances grow with the norms, so p can reach 1
  const torch::Tensor s = hooks::step_pair_scores(*loss, loss::PairBatch::local(image, text));
  const torch::Tensor context = s.select(1, 2);
  EXPECT_LT(context.max().item<double>(), std::log(std::ldexp(1.0, -24)));  // 1 - p below 2^-24
  hooks::PairDynamics dynamics(n);
  dynamics.add(torch::arange(n, torch::kInt64), s);
  const torch::Tensor means = dynamics.means().select(1, 2).contiguous();
  std::vector<double> values(means.data_ptr<double>(), means.data_ptr<double>() + n);
  std::sort(values.begin(), values.end());
  EXPECT_EQ(std::adjacent_find(values.begin(), values.end()), values.end())
      << "tied in-context means";
}

// A rank's rows against the gathered columns give that slice of the whole batch's scores (to
// float rounding: the matrix products have other shapes).
TEST_P(StepScores, ARanksRowsGiveItsSliceOfTheGlobalBatch) {
  torch::manual_seed(2);
  const int64_t n = 12, d = 8, offset = 4, rows = 4;
  const torch::Tensor image = torch::randn({n, d}), text = image + torch::randn({n, d});
  auto loss = make_loss(GetParam(), d, n);
  const torch::Tensor whole = hooks::step_pair_scores(*loss, loss::PairBatch::local(image, text));
  const loss::PairBatch slice{image.slice(0, offset, offset + rows),
                              text.slice(0, offset, offset + rows),
                              image,
                              text,
                              offset,
                              {},
                              {}};
  EXPECT_TRUE(all_close(hooks::step_pair_scores(*loss, slice),
                        whole.slice(0, offset, offset + rows), 1e-5, 1e-7));
}

// Logits made a few rows at a time (any block size, down to one row; a block that straddles the
// rank's own columns) give the scores of the whole n x M block at once. In float64, so that the
// matrix products of other shapes agree to 1e-12.
TEST_P(StepScores, RowBlocksGiveTheScoresOfTheWholeBlock) {
  torch::manual_seed(3);
  const int64_t n = 24, d = 8, offset = 7, rows = 10;
  const torch::Tensor image = torch::randn({n, d}, torch::kDouble),
                      text = image + torch::randn({n, d}, torch::kDouble);
  auto loss = make_loss(GetParam(), d, n);
  const loss::PairBatch slice{image.slice(0, offset, offset + rows),
                              text.slice(0, offset, offset + rows),
                              image,
                              text,
                              offset,
                              {},
                              {}};
  const torch::Tensor whole = hooks::step_pair_scores(*loss, slice, rows * (n + 1));
  ASSERT_EQ(whole.size(0), rows);
  for (const int64_t chunk : {int64_t{1}, n + 1, 3 * (n + 1), 4 * n + 2}) {
    SCOPED_TRACE(chunk);
    EXPECT_TRUE(all_close(hooks::step_pair_scores(*loss, slice, chunk), whole, 1e-12, 1e-12));
  }
}

INSTANTIATE_TEST_SUITE_P(Losses, StepScores, ::testing::Values("halo", "infonce", "siglip"));

// HALO's in-context score and margin include the abstain column: a pair at the origin, whose
// own column is the best of the batch, still loses most of its mass to the sink, and its
// margin is measured against b.
TEST(HaloStepScores, CountTheAbstainColumn) {
  const int64_t d = 8;
  torch::Tensor image = torch::zeros({2, d}), text = torch::zeros({2, d});
  image[0][0] = 40.0;  // pair 0: far out, and far from pair 1
  text[0][0] = 40.0;
  image[1][1] = 1e-3;  // pair 1: at the origin, where the sink wins
  text[1][1] = 1e-3;
  auto loss = make_loss("halo", d, 2);
  const torch::Tensor s = hooks::step_pair_scores(*loss, loss::PairBatch::local(image, text));
  EXPECT_LT(s[0][2].item<double>(), 0.01);
  EXPECT_GT(s[1][2].item<double>(), 0.5);  // two columns at distance ~0, but the sink's logit b
  EXPECT_NEAR(s[1][3].item<double>(), *loss->abstain_logit(), 1e-3);  // b - own logit (~0)
  EXPECT_LT(s[0][3].item<double>(), -1000);                           // far ahead of b and pair 1
}

TEST(PairDynamicsAccumulator, MeansAndCountsPerRow) {
  hooks::PairDynamics d(4);
  d.add(torch::tensor({2, 0}, torch::kInt64),
        torch::tensor({{0.25, 1.5, 0.5, -3.0}, {0.0, 2.0, 1.0, 7.5}}, torch::kFloat64));
  d.add(torch::tensor({2}, torch::kInt64),
        torch::tensor({{0.75, 0.5, 0.0, -2.0}}, torch::kFloat64));
  EXPECT_TRUE(torch::equal(d.counts(), torch::tensor({1, 0, 2, 0}, torch::kInt64)));
  const torch::Tensor m = d.means();
  EXPECT_DOUBLE_EQ(m[2][0].item<double>(), 0.5);
  EXPECT_DOUBLE_EQ(m[2][1].item<double>(), 1.0);
  EXPECT_DOUBLE_EQ(m[2][2].item<double>(), 0.25);
  EXPECT_DOUBLE_EQ(m[2][3].item<double>(), -2.5);
  EXPECT_DOUBLE_EQ(m[0][1].item<double>(), 2.0);
  EXPECT_DOUBLE_EQ(m[0][3].item<double>(), 7.5);
  EXPECT_TRUE(std::isnan(m[1][0].item<double>()));  // never seen
  // A score beyond 2^20 is clamped; a NaN score, a row out of range or a wrong shape is an error.
  d.add(torch::tensor({3}, torch::kInt64), torch::tensor({{0.0, 0.0, 0.0, -1e9}}, torch::kFloat64));
  EXPECT_EQ(d.means()[3][3].item<double>(), -1048576.0);
  EXPECT_THAT(error_message([&] {
                d.add(torch::tensor({1}, torch::kInt64), torch::full({1, 4}, NAN, torch::kFloat64));
              }),
              HasSubstr("not finite"));
  EXPECT_THAT(error_message([&] {
                d.add(torch::tensor({4}, torch::kInt64), torch::zeros({1, 4}, torch::kFloat64));
              }),
              HasSubstr("outside [0, 4)"));
  EXPECT_THAT(error_message([&] {
                d.add(torch::tensor({0}, torch::kInt64), torch::zeros({1, 3}, torch::kFloat64));
              }),
              HasSubstr("scores of shape [1, 3]"));
}

// Fixed-point sums: any order and any split of the same observations give identical bits,
// which plain floating-point sums do not promise.
TEST(PairDynamicsAccumulator, SumsDoNotDependOnOrderOrSplit) {
  torch::manual_seed(3);
  const torch::Tensor rows = torch::randint(0, 5, {200}, torch::kInt64);
  const torch::Tensor scores = (torch::rand({200, 4}, torch::kFloat64) -
                                torch::tensor({0.0, 0.0, 0.0, 0.5}, torch::kFloat64)) *
                               torch::tensor({1.0, 2.0, 1.0, 40.0}, torch::kFloat64);
  hooks::PairDynamics forward(5), backward(5), first(5), second(5);
  forward.add(rows, scores);
  for (int64_t i = 199; i >= 0; --i)
    backward.add(rows.slice(0, i, i + 1), scores.slice(0, i, i + 1));
  first.add(rows.slice(0, 0, 77), scores.slice(0, 0, 77));
  second.add(rows.slice(0, 77), scores.slice(0, 77));
  EXPECT_TRUE(torch::equal(forward.means(), backward.means()));
  std::map<std::string, torch::Tensor> merged = first.state();
  for (auto& [key, value] : merged) value = value + second.state().at(key);
  hooks::PairDynamics joined(5);
  joined.load_state(merged);
  EXPECT_TRUE(torch::equal(joined.means(), forward.means()));
  EXPECT_TRUE(torch::equal(joined.counts(), forward.counts()));
  // And the means are the plain means to the fixed point's resolution.
  for (int64_t r = 0; r < 5; ++r) {
    const torch::Tensor mask = rows == r;
    if (!mask.any().item<bool>()) continue;
    EXPECT_TRUE(all_close(forward.means()[r], scores.index({mask}).mean(0), 0, 1e-7))
        << "row " << r;
  }
}

// The history the trainer reads: the sums at the last fold plus this rank's additions since, for
// the batch's rows in their order; folding keeps every sum.
TEST(RunPairDynamics, HistoryIsTheFoldedSumsPlusTheAdditionsSince) {
  const auto group = dist::make_process_group(dist::DistEnv{}, {}, torch::kCPU);
  auto margins = [](std::vector<double> m) {
    torch::Tensor s = torch::zeros({static_cast<int64_t>(m.size()), 4}, torch::kFloat64);
    s.select(1, 3).copy_(torch::tensor(m, torch::kFloat64));
    return s;
  };
  hooks::RunPairDynamics d(4, /*keep_history=*/true, /*main_rank=*/true);
  d.add(torch::tensor({0, 1}, torch::kInt64), margins({1.0, -2.0}));
  d.fold(*group);
  d.add(torch::tensor({1, 2}, torch::kInt64), margins({5.0, 0.25}));
  const torch::Tensor m =
      d.history_means(torch::tensor({2, 3, 1, 0}, torch::kInt64), "margin_mean");
  EXPECT_DOUBLE_EQ(m[0].item<double>(), 0.25);
  EXPECT_TRUE(std::isnan(m[1].item<double>()));  // never seen
  EXPECT_DOUBLE_EQ(m[2].item<double>(), 1.5);    // (-2 + 5) / 2: one before the fold, one after
  EXPECT_DOUBLE_EQ(m[3].item<double>(), 1.0);
  const hooks::PairDynamics totals = d.fold(*group);
  EXPECT_TRUE(torch::equal(totals.counts(), torch::tensor({1, 2, 1, 0}, torch::kInt64)));
  EXPECT_DOUBLE_EQ(totals.means()[1][3].item<double>(), 1.5);
  // Resumed from those sums, the history is the same.
  hooks::RunPairDynamics resumed(4, true, true);
  resumed.load_state(totals.state());
  EXPECT_TRUE(torch::equal(resumed.history_means(torch::arange(4), "margin_mean").nan_to_num(-7),
                           d.history_means(torch::arange(4), "margin_mean").nan_to_num(-7)));
  EXPECT_THAT(error_message([&] { d.history_means(torch::arange(4), "nope"); }),
              HasSubstr("no pair dynamics column 'nope'"));
  // The shares go to the highest mean margin (not another column): rows 1 and 2 of rows 0-3.
  d.add(torch::tensor({0, 3}, torch::kInt64),
        torch::tensor({{9.0, 9.0, 9.0, -3.0}, {9.0, 9.0, 9.0, -1.0}}, torch::kFloat64));
  EXPECT_TRUE(torch::equal(d.sink_shares(torch::arange(4), 0.5, 0.5, *group),
                           torch::tensor({0.0, 0.5, 0.5, 0.0}, torch::kFloat64)));
  // Without the history: only the additions, and the loaded sums only on rank 0.
  hooks::RunPairDynamics plain(4, false, true), other_rank(4, false, false);
  EXPECT_THAT(error_message([&] { plain.history_means(torch::arange(4), "margin_mean"); }),
              HasSubstr("no history"));
  plain.load_state(totals.state());
  other_rank.load_state(totals.state());
  EXPECT_TRUE(torch::equal(plain.fold(*group).counts(), totals.counts()));
  EXPECT_EQ(other_rank.fold(*group).counts().sum().item<int64_t>(), 0);
}

TEST(PairDynamicsAccumulator, HistorySinkShareGoesToTheHardestRowsWithAHistory) {
  // Rows 1 and 4 have no history; of the other five, round(0.4 * 5) = 2 get the share: the two
  // highest means (7.0 at row 2; 3.0 at rows 0 and 5, the earlier row wins the tie).
  const double none = std::nan("");
  const torch::Tensor history =
      torch::tensor({3.0, none, 7.0, -1.0, none, 3.0, 0.5}, torch::kFloat64);
  EXPECT_TRUE(torch::equal(hooks::history_sink_share(history, 0.8, 0.4),
                           torch::tensor({0.8, 0.0, 0.8, 0.0, 0.0, 0.0, 0.0}, torch::kFloat64)));
  EXPECT_TRUE(torch::equal(hooks::history_sink_share(history, 0.8, 0.99),  // 5 of 5
                           torch::tensor({0.8, 0.0, 0.8, 0.8, 0.0, 0.8, 0.8}, torch::kFloat64)));
  // No history at all (the first epoch): no share.
  EXPECT_TRUE(
      torch::equal(hooks::history_sink_share(torch::full({3}, NAN, torch::kFloat64), 0.8, 0.5),
                   torch::zeros({3}, torch::kFloat64)));
  EXPECT_TRUE(torch::equal(hooks::history_sink_share(history, 0.8, 0.05),
                           torch::zeros({7}, torch::kFloat64)));
}

TEST(PairDynamicsAccumulator, StateRoundTripsAndRefusesAnotherManifest) {
  hooks::PairDynamics a(3);
  a.add(torch::tensor({1}, torch::kInt64), torch::tensor({{0.5, 0.5, 0.5, 0.5}}, torch::kFloat64));
  hooks::PairDynamics b(3);
  b.load_state(a.state());
  EXPECT_TRUE(torch::equal(a.counts(), b.counts()));
  hooks::PairDynamics other(4);
  EXPECT_THAT(error_message([&] { other.load_state(a.state()); }),
              HasSubstr("for 3 pairs but the training manifest has 4"));
  EXPECT_THAT(error_message([&] { other.load_state({}); }), HasSubstr("holds no pair dynamics"));
  EXPECT_TRUE(hooks::PairDynamics().state().empty());
}

data::Manifest manifest_of(int n, bool truth) {
  data::Manifest m;
  for (int i = 0; i < n; ++i) {
    m.images.push_back("img" + std::to_string(i) + ".png");
    m.captions.push_back("c");
    m.lines.push_back(i + 2);
    if (truth) m.mismatched.push_back(static_cast<int8_t>(i % 2));
  }
  return m;
}

std::vector<std::vector<std::string>> read_tsv_rows(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::vector<std::string>> rows;
  for (std::string line; std::getline(in, line);) rows.push_back(data::split_fields(line, '\t'));
  return rows;
}

TEST(PairDynamicsFile, ColumnsUnseenRowsAndAuroc) {
  const std::string dir = make_temp_dir("pair_dynamics_file");
  hooks::PairDynamics d(5);
  // Rows 1 and 3 are mismatched; row 4 is never seen. The own score ranks 1 and 3 on top
  // (AUROC 1), the cosine puts row 3 below both clean ones seen (AUROC 0.5), the margin
  // ranks them last (AUROC 0).
  d.add(torch::tensor({0, 1, 2, 3}, torch::kInt64), torch::tensor({{0.1, 0.2, 0.3, 4.0},
                                                                   {0.9, 0.8, 0.7, -2.25},
                                                                   {0.2, 0.3, 0.4, 3.0},
                                                                   {0.8, 0.1, 0.5, -1.0}},
                                                                  torch::kFloat64));
  const auto detection =
      hooks::write_pair_dynamics(dir + "/pair_dynamics.tsv", d, manifest_of(5, true));
  const auto rows = read_tsv_rows(dir + "/pair_dynamics.tsv");
  ASSERT_EQ(rows.size(), 6u);
  EXPECT_EQ(rows[0],
            (std::vector<std::string>{"line", "image_path", "mismatched", "seen", "own_mean",
                                      "cosine_mean", "in_context_log_odds_mean", "margin_mean"}));
  EXPECT_EQ(rows[2],
            (std::vector<std::string>{"3", "img1.png", "1", "1", "0.9", "0.8", "0.7", "-2.25"}));
  EXPECT_EQ(rows[5], (std::vector<std::string>{"6", "img4.png", "0", "0", "-", "-", "-", "-"}));
  ASSERT_EQ(detection.size(), 4u);
  EXPECT_EQ(detection[0].column, "own_mean");
  EXPECT_DOUBLE_EQ(detection[0].auroc, 1.0);
  EXPECT_DOUBLE_EQ(detection[1].auroc, 0.5);
  EXPECT_DOUBLE_EQ(detection[2].auroc, 1.0);
  EXPECT_DOUBLE_EQ(detection[3].auroc, 0.0);
  EXPECT_DOUBLE_EQ(detection[1].fpr95, halo::fpr_at_tpr({0.2, 0.8, 0.3, 0.1}, {0, 1, 0, 1}, 0.95));
  EXPECT_TRUE(temporary_files_in(dir).empty());

  // Without the truth: "-" in the mismatched column and no detection figures.
  EXPECT_TRUE(hooks::write_pair_dynamics(dir + "/unknown.tsv", d, manifest_of(5, false)).empty());
  EXPECT_EQ(read_tsv_rows(dir + "/unknown.tsv")[1][2], "-");
}

// The row scores' n x M pass runs in the logits' fp32; against the same fp32 logits taken
// through float64 (the definition: softmax over the row with the sink as one more column), on a
// batch of 8,192 columns. The fp32 log-sum-exp of the other columns has a relative error of a
// few 1e-7 (cascade summation), so the log-probabilities agree to 1e-5.
TEST_P(StepScores, Fp32PassMatchesFloat64AtEightThousandColumns) {
  torch::manual_seed(9);
  const int64_t n = 8192, d = 16, rows = 48, offset = 1000;
  const torch::Tensor image = torch::randn({n, d}), text = image + 0.7 * torch::randn({n, d});
  auto loss = make_loss(GetParam(), d, n);
  const torch::Tensor queries = image.narrow(0, offset, rows);
  const loss::RowScores got = loss::row_scores(*loss, queries, text, offset, 20);
  torch::NoGradGuard no_grad;
  torch::Tensor logits = loss->logits(queries, text).to(torch::kFloat64);
  if (const auto b = loss->abstain_logit()) {
    logits = torch::cat({logits, torch::full({rows, 1}, *b, logits.options())}, 1);
  }
  const torch::Tensor lse = torch::logsumexp(logits, 1);
  const torch::Tensor own = logits.narrow(1, offset, rows).diagonal();
  const torch::Tensor others = logits.scatter(1, torch::arange(offset, offset + rows).unsqueeze(1),
                                              -std::numeric_limits<double>::infinity());
  EXPECT_TRUE(all_close(got.own_log_p, own - lse, 1e-5, 1e-5));
  EXPECT_TRUE(all_close(got.other_log_p, torch::logsumexp(others, 1) - lse, 1e-5, 1e-5));
  EXPECT_TRUE(all_close(got.margin, own - std::get<0>(others.max(1)), 0, 0));  // exact: a max
}

}  // namespace
}  // namespace halo::test
