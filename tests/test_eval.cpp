// Train -> eval -> filter -> report end to end on a tiny generated set with injected mismatches,
// labels and one corrupt image: the files each command promises, streaming that does not change
// results, an input that is never modified, and a report that needs no network.
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "common/error.h"
#include "common/metrics.h"
#include "data/manifest.h"
#include "eval/evaluate.h"
#include "eval/filter.h"
#include "eval/report.h"
#include "loss/contrastive_loss.h"
#include "loss/halo_clip_loss.h"
#include "shapes_dataset.h"
#include "test_util.h"
#include "train/checkpoint.h"
#include "train/trained_model.h"
#include "train/trainer.h"

namespace halo::test {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

struct ScoreRow {
  int64_t line;
  double score;
  bool kept;
  bool mismatched;
};
std::vector<ScoreRow> read_scores(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  std::vector<ScoreRow> rows;
  while (std::getline(in, line)) {
    const auto f = data::split_fields(line, '\t');
    rows.push_back({std::stoll(f.at(0)), std::stod(f.at(2)), f.at(3) == "1", f.at(4) == "1"});
  }
  return rows;
}

class EvalEndToEnd : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = make_temp_dir("eval_e2e");
    manifest_ = make_shapes_dataset(dir_ + "/data", 64, 16, /*mismatch_every=*/5);  // 12 mismatched
    const auto c = train::parse_config(
        "model: {embed_dim: 16, image: {image_size: 16, patch_size: 4, width: 32, layers: 1, "
        "heads: 2},"
        "        text: {context_length: 8, width: 32, layers: 1, heads: 2}}\n"
        "data: {workers: 2, prefetch_batches: 2}\ntokenizer: {vocab_size: 40}\n"
        "optim: {lr: 3.0e-3, warmup_steps: 2}\n"
        "train: {batch_size: 16, max_steps: 30, log_every: 5, checkpoint_every: 100, seed: 3}\n",
        {"data.train_manifest=" + manifest_, "train.run_dir=" + dir_ + "/run"});
    ASSERT_EQ(train::run_training(c, {}).exit_code, 0);
  }
  static std::string dir_, manifest_;
};
std::string EvalEndToEnd::dir_, EvalEndToEnd::manifest_;

TEST_F(EvalEndToEnd, EvalReportsRetrievalClassificationAndDetection) {
  train::TrainedModel model = train::load_trained_model(dir_ + "/run");  // a run folder: its latest
  EXPECT_EQ(model.step, 30);
  eval::EvalOptions o;
  o.manifest = manifest_;
  o.out_dir = dir_ + "/run/eval-shapes";
  o.chunk_rows = 7;  // chunks that do not divide the set
  const eval::EvalResult r = eval::evaluate(model, o);
  EXPECT_EQ(r.pairs, 64);
  EXPECT_EQ(r.retrieval_pairs, 52);  // the 12 mismatched pairs are not retrieval queries
  EXPECT_GE(r.image_to_text.r10, r.image_to_text.r5);
  EXPECT_GE(r.image_to_text.r5, r.image_to_text.r1);
  EXPECT_GE(r.image_to_text.mean_rank, 1.0);
  ASSERT_TRUE(r.classification.has_value());
  EXPECT_EQ(r.classification->classes, 4);
  EXPECT_DOUBLE_EQ(r.classification->top5, 1.0);  // 4 classes: always within the top 5
  EXPECT_GE(r.classification->mean_abstain, 0.0);
  ASSERT_EQ(r.detection.size(), 3u);
  EXPECT_EQ(r.detection[0].name, "abstain");
  EXPECT_EQ(r.detection[1].name, "cosine");
  EXPECT_EQ(r.detection[2].name, "in-context");

  // Training logged the score diagnostics, split by the ground truth of the manifest.
  const std::string metrics = read_file(dir_ + "/run/metrics.jsonl");
  for (const char* key :
       {"\"mismatch_score_clean\"", "\"mismatch_score_mismatched\"", "\"mismatch_score_median\"",
        "\"image_mean_norm\"", "\"pair_r2\"", "\"gamma\""}) {
    EXPECT_NE(metrics.find(key), std::string::npos) << key;
  }

  for (const char* f :
       {"results.json", "results.txt", "pair_scores.tsv", "reliability.tsv", "examples.tsv"}) {
    EXPECT_TRUE(fs::exists(dir_ + "/run/eval-shapes/" + f)) << f;
  }
  EXPECT_THAT(read_file(dir_ + "/run/eval-shapes/results.json"),
              HasSubstr("\"mismatch_detection\""));
  std::ifstream scores(dir_ + "/run/eval-shapes/pair_scores.tsv");
  int lines = 0;
  for (std::string l; std::getline(scores, l);) ++lines;
  EXPECT_EQ(lines, 65);
}

// A TSV as columns: header name -> the values of its rows.
std::map<std::string, std::vector<std::string>> tsv_columns(const std::string& path) {
  std::istringstream in(read_file(path));
  std::string line;
  std::getline(in, line);
  const auto header = data::split_fields(line, '\t');
  std::map<std::string, std::vector<std::string>> columns;
  while (std::getline(in, line)) {
    const auto fields = data::split_fields(line, '\t');
    EXPECT_EQ(fields.size(), header.size()) << path << ": " << line;
    for (size_t i = 0; i < header.size() && i < fields.size(); ++i)
      columns[header[i]].push_back(fields[i]);
  }
  return columns;
}

// A checkpoint written by an earlier version (tests/fixtures/legacy_run/README.md) loads and
// scores its pairs as the build that wrote it did: the same lines and labels, and the same scores
// to float32 precision (that build computed them in float32, this one in float64), with the
// log-odds column added (the logit of the score).
TEST(LegacyRun, CheckpointOfAnEarlierVersionScoresPairsAsBefore) {
  const std::string fixture = std::string(HALO_SOURCE_DIR) + "/tests/fixtures/legacy_run";
  train::TrainedModel model = train::load_trained_model(fixture + "/checkpoints/final.pt", "cpu");
  EXPECT_EQ(model.step, 2);
  eval::EvalOptions o;
  o.manifest = fixture + "/pairs/manifest.tsv";
  o.out_dir = make_temp_dir("legacy_run_eval");
  o.embed.verbose = false;
  const eval::EvalResult r = eval::evaluate(model, o);
  EXPECT_EQ(r.pairs, 12);
  auto expected = tsv_columns(fixture + "/pair_scores.tsv");
  auto got = tsv_columns(o.out_dir + "/pair_scores.tsv");
  ASSERT_EQ(expected["line"].size(), 12u);
  EXPECT_EQ(got["line"], expected["line"]);
  EXPECT_EQ(got["mismatched"], expected["mismatched"]);
  ASSERT_EQ(got["log_odds"].size(), 12u);
  for (const std::string column : {"score", "cosine_score"}) {
    ASSERT_EQ(got[column].size(), expected[column].size()) << column;
    for (size_t i = 0; i < got[column].size(); ++i) {
      EXPECT_NEAR(std::stod(got[column][i]), std::stod(expected[column][i]), 1e-6)
          << column << " row " << i;
    }
  }
  for (size_t i = 0; i < got["score"].size(); ++i) {
    const double p = std::stod(got["score"][i]);
    EXPECT_NEAR(std::stod(got["log_odds"][i]), std::log(p / (1 - p)),
                1e-9 * (1 + std::abs(std::log(p / (1 - p)))))
        << "row " << i;
  }
}

TEST(InContextScore, IsOneMinusTheOwnCandidatesSoftmaxProbabilityWithTheSink) {
  torch::manual_seed(4);
  const torch::Tensor image = torch::randn({7, 8}), text = image + torch::randn({7, 8});
  for (const std::string name : {"halo", "infonce"}) {
    SCOPED_TRACE(name);
    loss::ContrastiveLossOptions o;
    o.name = name;
    o.embed_dim = 8;
    o.num_candidates = 7;
    auto fn = loss::make_contrastive_loss(o);
    torch::NoGradGuard no_grad;
    auto own_prob = [&](const torch::Tensor& q, const torch::Tensor& c) {
      torch::Tensor logits = fn->logits(q, c).to(torch::kFloat64);
      if (auto b = fn->abstain_logit())
        logits = torch::cat({logits, torch::full({7, 1}, *b, logits.options())}, 1);
      return torch::softmax(logits, 1)
          .diagonal();  // the sink column is last, never on the diagonal
    };
    const torch::Tensor want = 1.0 - 0.5 * (own_prob(image, text) + own_prob(text, image));
    const std::vector<double> got =
        eval::in_context_mismatch_score(*fn, image, text, /*chunk_rows=*/3);
    ASSERT_EQ(got.size(), 7u);
    // The row scores' n x M pass runs in the logits' fp32 (loss/row_scores.h): a probability
    // within fp32's unit roundoff (2^-24) of the float64 definition.
    for (int64_t i = 0; i < 7; ++i)
      EXPECT_NEAR(got[static_cast<size_t>(i)], want[i].item<double>(), std::ldexp(1.0, -24)) << i;
  }
}

// eval --ood: every score for every set, selective classification, the per-image file (the
// evaluation set's 64 images, then each OOD set's), HALO's abstain ranking as the energy; the
// evaluation set given as its own OOD set is told apart by no score (AUROC 1/2, FPR@95 >= 95%).
TEST_F(EvalEndToEnd, OodSetsGetEveryScoreAndTheirFiles) {
  train::TrainedModel model = train::load_trained_model(dir_ + "/run");
  const std::string ood = make_shapes_dataset(dir_ + "/ood", 16, 24);  // other shapes' sizes
  eval::EvalOptions o;
  o.manifest = manifest_;
  o.ood = {{"bigger", ood}, {"itself", manifest_}};
  o.out_dir = dir_ + "/eval-ood";
  o.embed.verbose = false;
  const eval::EvalResult r = eval::evaluate(model, o);
  ASSERT_EQ(r.ood.size(), 10u);  // abstain, msp, mcm, mcm_clip, energy for each set
  EXPECT_EQ(r.ood[0].score, "abstain");
  EXPECT_EQ(r.ood[2].score, "mcm");
  EXPECT_EQ(r.ood[3].score, "mcm_clip");
  EXPECT_EQ(r.ood[4].score, "energy");
  EXPECT_DOUBLE_EQ(r.ood[0].auroc, r.ood[4].auroc);  // b + energy: the same ranking
  EXPECT_DOUBLE_EQ(r.ood[0].fpr95, r.ood[4].fpr95);
  for (size_t k = 0; k < 5; ++k) {
    EXPECT_EQ(r.ood[k].set, "bigger");
    EXPECT_EQ(r.ood[k].images, 16);
    const auto& same = r.ood[k + 5];
    EXPECT_EQ(same.set, "itself");
    EXPECT_EQ(same.images, 64);
    EXPECT_DOUBLE_EQ(same.auroc, 0.5) << same.score;
    EXPECT_GE(same.fpr95, 0.95) << same.score;
  }
  ASSERT_EQ(r.selective.size(), 5u);
  for (const auto& s : r.selective) {
    ASSERT_EQ(s.result.accuracy.size(), 3u);
    // At 50% coverage the confident half: never below the accuracy of answering everything
    // minus what the unanswered half could hold.
    EXPECT_GE(s.result.accuracy[0], 2 * r.classification->top1 - 1 - 1e-12) << s.score;
  }
  const std::string table = read_file(o.out_dir + "/results.txt");
  EXPECT_THAT(table, HasSubstr("OOD set"));
  EXPECT_THAT(table, HasSubstr("selective classification"));
  EXPECT_THAT(read_file(o.out_dir + "/results.json"), HasSubstr("\"ood_detection\""));
  auto columns = tsv_columns(o.out_dir + "/ood_scores.tsv");
  ASSERT_EQ(columns["set"].size(), 144u);
  EXPECT_EQ(std::count(columns["set"].begin(), columns["set"].end(), "bigger"), 16);
  EXPECT_EQ(columns["label"].back(), "-1");
  for (const char* c :
       {"abstain", "abstain_score", "msp", "msp_score", "mcm", "mcm_score", "mcm_clip",
        "mcm_clip_score", "energy", "energy_score", "predicted", "correct"}) {
    EXPECT_EQ(columns[c].size(), 144u) << c;
  }
  // Without labels and class names there is no classifier to ask.
  o.manifest = ood;
  fs::remove(dir_ + "/ood/classes.txt");
  EXPECT_THAT(error_message([&] { eval::evaluate(model, o); }),
              HasSubstr("--ood needs zero-shot classification"));
}

// filter --score in-context: each chunk is the bank, so one chunk holding the whole set gives the
// in-context score of the whole set.
TEST_F(EvalEndToEnd, FilterByTheInContextScoreUsesItsChunkAsTheBank) {
  train::TrainedModel model = train::load_trained_model(dir_ + "/run");
  eval::FilterOptions o;
  o.manifest = manifest_;
  o.keep_fraction = 0.8;
  o.verbose = false;
  o.score = "in-context";
  o.chunk_rows = 64;
  o.out_dir = dir_ + "/filter-in-context";
  const eval::FilterReport r = eval::filter_manifest(model, o);
  EXPECT_EQ(r.kept, 51);  // round(0.8 * 64)
  eval::EmbedOptions eo;
  eo.verbose = false;
  const auto emb = eval::embed_pairs(model, *data::PairSet::open(manifest_, {}), eo);
  const std::vector<double> want =
      eval::in_context_mismatch_score(*model.loss, emb.image, emb.text, 1024);
  const auto got = read_scores(o.out_dir + "/scores.tsv");
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i].score, want[i], 1e-5) << i;
  // Chunks of 16: another bank, other scores.
  o.chunk_rows = 16;
  o.out_dir = dir_ + "/filter-in-context-16";
  eval::filter_manifest(model, o);
  const auto small = read_scores(o.out_dir + "/scores.tsv");
  double largest = 0;
  for (size_t i = 0; i < got.size(); ++i)
    largest = std::max(largest, std::abs(small[i].score - got[i].score));
  EXPECT_GT(largest, 1e-3);
}

TEST_F(EvalEndToEnd, FilterStreamsWithoutChangingResultsAndNeverTouchesItsInput) {
  train::TrainedModel model = train::load_trained_model(dir_ + "/run/checkpoints/final.pt");
  const std::string before = read_file(manifest_);
  eval::FilterOptions o;
  o.manifest = manifest_;
  o.keep_fraction = 0.75;
  o.verbose = false;
  o.chunk_rows = 1000;
  o.out_dir = dir_ + "/filter_whole";
  const eval::FilterReport whole = eval::filter_manifest(model, o);
  o.chunk_rows = 7;
  o.out_dir = dir_ + "/run/filter";
  const eval::FilterReport streamed = eval::filter_manifest(model, o);

  EXPECT_EQ(read_file(manifest_), before);
  EXPECT_EQ(streamed.kept, 48);  // round(0.75 * 64)
  EXPECT_EQ(streamed.rejected, 16);
  EXPECT_EQ(streamed.mismatched, 12);
  // Streaming in chunks of 7 gives the scores of one pass (to float rounding: the encoders see
  // other batch shapes), and the kept pairs are exactly the lowest scores.
  const auto a = read_scores(dir_ + "/filter_whole/scores.tsv"),
             b = read_scores(dir_ + "/run/filter/scores.tsv");
  ASSERT_EQ(a.size(), 64u);
  ASSERT_EQ(b.size(), 64u);
  double highest_kept = 0, lowest_rejected = 1;
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].line, b[i].line);
    EXPECT_NEAR(a[i].score, b[i].score, 1e-5);
    (b[i].kept ? highest_kept : lowest_rejected) =
        b[i].kept ? std::max(highest_kept, b[i].score) : std::min(lowest_rejected, b[i].score);
  }
  EXPECT_LE(highest_kept, lowest_rejected);
  EXPECT_EQ(whole.kept, streamed.kept);
  EXPECT_NEAR(streamed.recall, static_cast<double>(streamed.mismatched_rejected) / 12.0, 1e-12);
  // The summary's AUROC: the share of (mismatched, clean) pairs ordered correctly, ties half.
  double ordered = 0;
  int64_t positives = 0;
  for (const auto& p : b) {
    if (!p.mismatched) continue;
    ++positives;
    for (const auto& n : b) {
      if (!n.mismatched) ordered += p.score > n.score ? 1.0 : (p.score == n.score ? 0.5 : 0.0);
    }
  }
  ASSERT_EQ(positives, 12);
  EXPECT_NEAR(streamed.auroc, ordered / (12.0 * 52.0), 1e-9);

  // The kept manifest is usable from its own folder: image paths were rewritten.
  const data::Manifest kept = data::read_manifest(dir_ + "/run/filter/kept.tsv", {});
  ASSERT_EQ(kept.size(), 48);
  for (const auto& image : kept.images) EXPECT_TRUE(fs::exists(image)) << image;
  EXPECT_TRUE(temporary_files_in(dir_ + "/run/filter").empty());

  // A threshold keeps exactly the pairs scoring below it.
  o.keep_fraction.reset();
  o.threshold = streamed.threshold;
  o.out_dir = dir_ + "/filter_threshold";
  const eval::FilterReport by_threshold = eval::filter_manifest(model, o);
  EXPECT_LE(by_threshold.kept, 48);
  EXPECT_GE(by_threshold.kept + by_threshold.rejected, 64);

  // Writing over the input is refused.
  o.out_dir = dir_ + "/data";
  o.manifest = dir_ + "/data/kept.tsv";
  fs::copy_file(manifest_, o.manifest);
  EXPECT_THROW(eval::filter_manifest(model, o), halo::Error);
}

TEST_F(EvalEndToEnd, CrossScoringUsesTheModelThatDidNotSeeThePair) {
  std::vector<train::TrainedModel> folds;
  for (int k = 0; k < 2; ++k) {
    auto c = train::parse_config(
        train::checkpoint_config(dir_ + "/run/checkpoints/final.pt"),
        {"data.folds=2", "data.holdout_fold=" + std::to_string(k), "train.max_steps=6",
         "train.run_dir=" + dir_ + "/fold" + std::to_string(k)});
    const auto result = train::run_training(c, {});
    ASSERT_EQ(result.exit_code, 0);
    folds.push_back(train::load_trained_model(dir_ + "/fold" + std::to_string(k)));
  }
  // The data rows of fold 1 (odd positions) are scored by the model that left fold 1 out.
  eval::FilterOptions o;
  o.manifest = manifest_;
  o.threshold = 0.5;
  o.verbose = false;
  o.chunk_rows = 9;
  o.out_dir = dir_ + "/cross";
  std::vector<train::TrainedModel> reversed{folds[1], folds[0]};  // order does not matter
  const eval::FilterReport cross = eval::filter_manifest(reversed, o);
  EXPECT_EQ(cross.scored, 64);
  std::vector<std::vector<ScoreRow>> single;
  for (int k = 0; k < 2; ++k) {
    o.out_dir = dir_ + "/single" + std::to_string(k);
    eval::filter_manifest(folds[static_cast<size_t>(k)], o);
    single.push_back(read_scores(o.out_dir + "/scores.tsv"));
  }
  const auto crossed = read_scores(dir_ + "/cross/scores.tsv");
  ASSERT_EQ(crossed.size(), 64u);
  for (size_t i = 0; i < crossed.size(); ++i) {
    const auto fold = static_cast<size_t>((crossed[i].line - 2) % 2);
    EXPECT_NEAR(crossed[i].score, single[fold][i].score, 1e-5) << "line " << crossed[i].line;
  }
  // Models from different fold settings do not mix.
  std::vector<train::TrainedModel> mixed{folds[0], train::load_trained_model(dir_ + "/run")};
  EXPECT_THROW(eval::filter_manifest(mixed, o), halo::Error);
}

// Pairs far from the model's agreement all score exactly 1.0 in float32; their log-odds, computed
// in float64 and in log space, still order them, and agree with the probability where it does not
// saturate.
TEST(PairScores, LogOddsDoNotSaturateWhereTheProbabilityDoes) {
  torch::manual_seed(11);
  loss::ContrastiveLossOptions lo;
  lo.embed_dim = 8;
  auto halo_loss = loss::make_contrastive_loss(lo);
  const torch::Tensor image = torch::randn({64, 8}), text = torch::randn({64, 8});
  // Moderate scale (p well inside (0, 1)): log-odds = logit(probability), to float64 rounding.
  const torch::Tensor small_image = 0.2 * image, small_text = 0.2 * text;
  const torch::Tensor p = loss::pair_abstain_score(
      small_image.to(torch::kFloat64), small_text.to(torch::kFloat64),
      halo_loss->named_parameters()["gamma_raw"], *halo_loss->abstain_logit());
  const torch::Tensor lodds = halo_loss->mismatch_log_odds(small_image, small_text);
  ASSERT_EQ(lodds.scalar_type(), torch::kFloat64);
  EXPECT_TRUE(torch::allclose(lodds, torch::log(p) - torch::log1p(-p), 1e-6, 1e-6));
  // Far apart (each caption nearly opposite its image, so both directions' logits are far below
  // the sink's): the float32 probability ties at 1.0, the log-odds stay finite and distinct.
  const torch::Tensor far_image = 40 * image, far_text = -far_image + 4 * text;
  const torch::Tensor p32 = halo_loss->mismatch_score(far_image, far_text);
  EXPECT_GE((p32 == 1.0f).sum().item<int64_t>(), 10);
  const torch::Tensor far = halo_loss->mismatch_log_odds(far_image, far_text);
  EXPECT_TRUE(torch::isfinite(far).all().item<bool>());
  EXPECT_EQ(std::get<0>(torch::_unique(far)).numel(), 64);
  for (const std::string name : {"infonce", "siglip"}) {
    SCOPED_TRACE(name);
    lo.name = name;
    auto other = loss::make_contrastive_loss(lo);
    const torch::Tensor s =
        other->mismatch_score(image.to(torch::kFloat64), text.to(torch::kFloat64));
    EXPECT_TRUE(torch::allclose(other->mismatch_log_odds(image, text),
                                torch::log(s) - torch::log1p(-s), 1e-6, 1e-6));
  }
}

// --keep-fraction ranks by the log-odds, not by file order among scores tied at 1.0, and the
// summary prints the cut with every digit it needs.
TEST(PairScores, KeepFractionRanksTiedProbabilitiesByLogOddsAndPrintsTheExactCut) {
  const std::vector<double> p{1.0, 1.0, 0.2, 1.0, 1.0};
  const std::vector<double> log_odds{40.0, 38.5, -1.3, 37.0, 41.0};
  double t = 0;
  size_t first = 0;
  EXPECT_EQ(eval::keep_mask(p, std::nullopt, 0.6, &t, log_odds, &first),
            (std::vector<bool>{false, true, true, true, false}));
  EXPECT_EQ(first, 0u);  // log-odds 40.0: the lowest of the rejected
  eval::FilterReport r;
  r.threshold = 0.99999987654321;
  r.threshold_log_odds = 15.904;
  const std::string summary = eval::format_filter_report(r);
  EXPECT_THAT(summary, HasSubstr("(score >= 0.99999987654321, log-odds >= 15.904)"));
}

// Flags that cannot work are refused before any model is loaded or pair scored, naming the flag.
TEST(FilterOptions, BadValuesAreRefusedBeforeAnyWork) {
  const std::string dir = make_temp_dir("filter_options");
  const std::string manifest = make_shapes_dataset(dir + "/data", 4);
  eval::FilterOptions o;
  o.manifest = manifest;
  o.out_dir = dir + "/out";
  o.verbose = false;
  std::vector<train::TrainedModel> none;  // would fail later ("give a checkpoint") if reached
  o.keep_fraction = 1.5;
  EXPECT_THAT(error_message([&] { eval::filter_manifest(none, o); }),
              HasSubstr("--keep-fraction must be in [0, 1], got 1.5"));
  o.keep_fraction = std::nan("");
  EXPECT_THAT(error_message([&] { eval::filter_manifest(none, o); }),
              HasSubstr("--keep-fraction must be in [0, 1]"));
  o.keep_fraction.reset();
  for (double bad : {std::nan(""), HUGE_VAL, -HUGE_VAL}) {
    o.threshold = bad;
    EXPECT_THAT(error_message([&] { eval::filter_manifest(none, o); }),
                HasSubstr("--threshold must be a finite number"));
  }
  o.threshold = 0.5;
  o.manifest = dir + "/data";
  EXPECT_THAT(error_message([&] { eval::filter_manifest(none, o); }),
              HasSubstr("manifest '" + dir + "/data' is a directory"));
  o.manifest = "no/such/manifest.tsv";
  EXPECT_THAT(
      error_message([&] { eval::filter_manifest(none, o); }),
      HasSubstr(
          "manifest 'no/such/manifest.tsv' does not exist (relative to the current directory " +
          fs::current_path().string() + ")"));
  EXPECT_FALSE(fs::exists(dir + "/out"));  // nothing written
}

TEST_F(EvalEndToEnd, FilterReportsACorruptImageAndSkipsIt) {
  const std::string copy = dir_ + "/corrupt";
  fs::create_directories(copy);
  fs::copy(dir_ + "/data", copy,
           fs::copy_options::recursive | fs::copy_options::overwrite_existing);
  std::ofstream(copy + "/img/3.png", std::ios::trunc) << "not a png";
  train::TrainedModel model = train::load_trained_model(dir_ + "/run");
  eval::FilterOptions o;
  o.manifest = copy + "/manifest.tsv";
  o.out_dir = copy + "/out";
  o.threshold = 0.5;
  o.chunk_rows = 16;
  o.verbose = false;
  const eval::FilterReport r = eval::filter_manifest(model, o);
  EXPECT_EQ(r.skipped, 1);
  EXPECT_EQ(r.kept + r.rejected, 63);
  const std::string skipped = read_file(copy + "/out/skipped.tsv");
  EXPECT_THAT(skipped, HasSubstr("5\tunreadable image"));  // row 3 is line 5 of the file
  EXPECT_THAT(skipped, HasSubstr("3.png"));
  EXPECT_THAT(read_file(copy + "/out/kept.tsv") + read_file(copy + "/out/rejected.tsv"),
              ::testing::Not(HasSubstr("img/3.png")));
}

// The training run wrote pair_dynamics.tsv; filtering by one of its columns keeps the pairs
// with the lowest values, copies them into scores.tsv, and grades them against the truth.
TEST_F(EvalEndToEnd, FilterByAScoreFileJoinsItByManifestLine) {
  const std::string file = dir_ + "/run/pair_dynamics.tsv";
  ASSERT_TRUE(fs::exists(file));
  std::map<int64_t, double> expected;  // manifest line -> in_context_log_odds_mean
  {
    std::ifstream in(file);
    std::string line;
    std::getline(in, line);
    EXPECT_EQ(line,
              "line\timage_path\tmismatched\tseen\town_mean\tcosine_mean\tin_context_log_odds_"
              "mean\tmargin_mean");
    while (std::getline(in, line)) {
      const auto f = data::split_fields(line, '\t');
      EXPECT_GE(std::stoll(f.at(3)), 7) << "30 steps of 16 over 64 pairs: 7 or 8 each";
      expected[std::stoll(f.at(0))] = std::stod(f.at(6));
    }
  }
  ASSERT_EQ(expected.size(), 64u);
  eval::FilterOptions o;
  o.manifest = manifest_;
  o.scores_file = file;
  o.score_column = "in_context_log_odds_mean";
  o.keep_fraction = 0.75;
  o.chunk_rows = 10;
  o.verbose = false;
  o.out_dir = dir_ + "/by_dynamics";
  std::vector<train::TrainedModel> none;
  const eval::FilterReport r = eval::filter_manifest(none, o);
  EXPECT_EQ(r.kept, 48);
  EXPECT_EQ(r.rejected, 16);
  EXPECT_EQ(r.mismatched, 12);
  const auto rows = read_scores(o.out_dir + "/scores.tsv");
  ASSERT_EQ(rows.size(), 64u);
  double highest_kept = -INFINITY, lowest_rejected = INFINITY;  // log-odds: any real number
  std::vector<double> score;
  std::vector<int> label;
  for (const auto& row : rows) {
    EXPECT_NEAR(row.score, expected.at(row.line), 1e-6) << "line " << row.line;
    (row.kept ? highest_kept : lowest_rejected) =
        row.kept ? std::max(highest_kept, row.score) : std::min(lowest_rejected, row.score);
    score.push_back(expected.at(row.line));
    label.push_back(row.mismatched ? 1 : 0);
  }
  EXPECT_LE(highest_kept, lowest_rejected);
  EXPECT_NEAR(r.auroc, halo::auroc(score, label), 1e-3);  // the file's values, as floats
  // A score file and a model together are refused.
  train::TrainedModel model = train::load_trained_model(dir_ + "/run");
  std::vector<train::TrainedModel> one{model};
  EXPECT_THAT(error_message([&] { eval::filter_manifest(one, o); }), HasSubstr("not both"));
}

// A score file that does not fit the manifest is an error naming the file, column and line.
TEST_F(EvalEndToEnd, FilterRefusesAScoreFileThatDoesNotFitTheManifest) {
  const std::string dir = dir_ + "/bad_scores";
  fs::create_directories(dir);
  auto attempt = [&](const std::string& text, const std::string& column) {
    std::ofstream(dir + "/scores.tsv", std::ios::trunc) << text;
    eval::FilterOptions o;
    o.manifest = manifest_;
    o.scores_file = dir + "/scores.tsv";
    o.score_column = column;
    o.threshold = 0.5;
    o.verbose = false;
    o.out_dir = dir + "/out";
    std::vector<train::TrainedModel> none;
    return error_message([&] { eval::filter_manifest(none, o); });
  };
  std::string all = "line\tscore\n";
  for (int line = 2; line < 66; ++line) all += std::to_string(line) + "\t0.25\n";
  EXPECT_EQ(attempt(all, "score"), "");  // the well-formed file passes
  EXPECT_THAT(attempt(all, "nope"), HasSubstr("has no column 'nope' (its columns: line, score)"));
  std::string missing = "line\tscore\n";
  for (int line = 2; line < 66; ++line) {
    if (line != 40) missing += std::to_string(line) + "\t0.25\n";
  }
  EXPECT_THAT(attempt(missing, "score"), HasSubstr("has no row for line 40 of manifest"));
  EXPECT_THAT(attempt(all + "99\t0.5\n", "score"),
              HasSubstr("scores.tsv:66: manifest line 99 is not a pair of manifest"));
  EXPECT_THAT(attempt(all + "7\t0.5\n", "score"),
              HasSubstr("scores.tsv:66: manifest line 7 again (first at line 7)"));
  std::string word = all;
  word.replace(word.find("\n10\t0.25"), 8, "\n10\tx");
  EXPECT_THAT(attempt(word, "score"),
              HasSubstr("scores.tsv:10: column 'score' is 'x', not a score (manifest line 10)"));
  // "-" (a pair the scoring run never trained on) skips the pair, with the reason.
  std::string dash = all;
  dash.replace(dash.find("\n10\t0.25"), 8, "\n10\t-");
  EXPECT_EQ(attempt(dash, "score"), "");
  std::ifstream skipped(dir + "/out/skipped.tsv");
  std::string header, row, more;
  std::getline(skipped, header);
  std::getline(skipped, row);
  EXPECT_EQ(row, "10\tno score in " + dir + "/scores.tsv (never trained on)");
  EXPECT_FALSE(std::getline(skipped, more)) << "only line 10 is skipped";
  EXPECT_THAT(attempt("score\n0.5\n", "score"), HasSubstr("has no 'line' column"));
}

TEST_F(EvalEndToEnd, ReportIsOneSelfContainedPage) {
  train::TrainedModel model = train::load_trained_model(dir_ + "/run");
  eval::EvalOptions eo;
  eo.manifest = manifest_;
  eo.out_dir = dir_ + "/run/eval-report";
  eval::evaluate(model, eo);
  eval::FilterOptions fo;
  fo.manifest = manifest_;
  fo.out_dir = dir_ + "/run/filter-report";
  fo.threshold = 0.5;
  fo.verbose = false;
  eval::filter_manifest(model, fo);

  const std::string path = eval::write_report({dir_ + "/run", "", 64});
  const std::string html = read_file(path);
  EXPECT_NE(html.find("<!DOCTYPE html>"), std::string::npos) << "<!DOCTYPE html>";
  EXPECT_NE(html.find("</html>"), std::string::npos) << "</html>";
  EXPECT_NE(html.find("ce_text_to_image by step"), std::string::npos) << "curves";
  EXPECT_NE(html.find("Evaluation: eval-report"), std::string::npos) << "Evaluation: eval-report";
  EXPECT_NE(html.find("Filter: filter-report"), std::string::npos) << "Filter: filter-report";
  EXPECT_NE(html.find("mismatched pairs ("), std::string::npos) << "mismatched pairs (";
  EXPECT_NE(html.find("reliability"), std::string::npos) << "reliability";
  EXPECT_NE(html.find("data:image/png;base64,"), std::string::npos) << "data:image/png;base64,";
  // Nothing is fetched: the only URL is the SVG namespace.
  std::string stripped = html;
  for (size_t at; (at = stripped.find("http://www.w3.org/2000/svg")) != std::string::npos;)
    stripped.erase(at, 26);
  EXPECT_EQ(stripped.find("http://"), std::string::npos);
  EXPECT_EQ(stripped.find("https://"), std::string::npos);
  EXPECT_EQ(stripped.find("src=\"img/"), std::string::npos);
  const auto opened = std::count(html.begin(), html.end(), '<');
  EXPECT_GT(opened, 100);
  EXPECT_EQ(eval::html_escape("<a & \"b\">"), "&lt;a &amp; &quot;b&quot;&gt;");
}

}  // namespace
}  // namespace halo::test
