// Zero-shot classification with an "I don't know" (eval/ood.h): each OOD score against its
// definition, HALO's abstain log-odds as b plus the energy, detection that tells far images from
// class-like ones; selective classification and the paired bootstrap on hand-checked cases; the
// in-context log-odds against the score it stands for; `prepare noise` on a user's manifest.
#include <cmath>
#include <filesystem>

#include <opencv2/imgcodecs.hpp>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "common/metrics.h"
#include "data/manifest.h"
#include "data/prepare.h"
#include "data/shard_writer.h"
#include "data/tar_reader.h"
#include "eval/evaluate.h"
#include "eval/ood.h"
#include "loss/contrastive_loss.h"
#include "test_util.h"

namespace halo::test {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

std::shared_ptr<loss::ContrastiveLoss> loss_named(const std::string& name, int64_t dim) {
  loss::ContrastiveLossOptions o;
  o.name = name;
  o.embed_dim = dim;
  o.num_candidates = 16;
  return loss::make_contrastive_loss(o);
}

TEST(OodScores, EachScoreIsItsDefinition) {
  torch::manual_seed(2);
  const torch::Tensor classes = 2 * torch::randn({5, 8}), images = torch::randn({9, 8});
  for (const std::string name : {"halo", "infonce", "siglip"}) {
    SCOPED_TRACE(name);
    const auto fn = loss_named(name, 8);
    const eval::OodImageScores s = eval::ood_image_scores(*fn, images, classes, /*chunk_rows=*/4);
    torch::NoGradGuard no_grad;
    const torch::Tensor logits = fn->logits(images, classes).to(torch::kFloat64);
    const torch::Tensor probs = torch::softmax(logits, 1);
    const torch::Tensor cos = torch::cosine_similarity(images.to(torch::kFloat64).unsqueeze(1),
                                                       classes.to(torch::kFloat64).unsqueeze(0), 2);
    const torch::Tensor mcm =
        std::get<0>(torch::softmax(cos, 1).max(1));  // the paper's temperature 1
    const torch::Tensor mcm_clip = std::get<0>(torch::softmax(cos / 0.01, 1).max(1));
    ASSERT_EQ(s.predicted.size(), 9u);
    ASSERT_EQ(s.scores.size(), name == "halo" ? 5u : 4u);
    for (int64_t i = 0; i < 9; ++i) {
      const auto k = static_cast<size_t>(i);
      EXPECT_EQ(s.predicted[k], logits[i].argmax().item<int64_t>());
      EXPECT_NEAR(std::exp(-s.score("msp")[k]), probs[i].max().item<double>(), 1e-12);
      EXPECT_NEAR(std::exp(-s.score("mcm")[k]), mcm[i].item<double>(), 1e-9);
      EXPECT_NEAR(std::exp(-s.score("mcm_clip")[k]), mcm_clip[i].item<double>(), 1e-9);
      EXPECT_NEAR(s.score("energy")[k], -torch::logsumexp(logits[i], 0).item<double>(), 1e-9);
      if (name == "halo") {
        // The sink's probability in the softmax over the classes and the sink, and its log-odds
        // b - logsumexp = b + energy: it ranks images exactly as the energy does.
        const double b = *fn->abstain_logit();
        const torch::Tensor with_sink =
            torch::softmax(torch::cat({logits[i], torch::full({1}, b, logits.options())}), 0);
        EXPECT_NEAR(eval::OodImageScores::natural_value("abstain", s.score("abstain")[k]),
                    with_sink[5].item<double>(), 1e-12);
        EXPECT_NEAR(s.score("abstain")[k], b + s.score("energy")[k], 1e-9);
      }
    }
  }
}

// A bank of negatives beside the classes: `negatives` is -log of the classes' share of the
// softmax over classes and negatives, HALO's `negatives_sink` the same with its sink added;
// an image on a negative is rejected, one on a class is not.
TEST(OodScores, NegativesAreTheRejectMassOfABank) {
  torch::manual_seed(4);
  const torch::Tensor classes = 2 * torch::randn({5, 8}), negatives = 2 * torch::randn({7, 8});
  const torch::Tensor images = torch::cat({classes.narrow(0, 0, 2), negatives.narrow(0, 0, 2)});
  for (const std::string name : {"halo", "infonce", "siglip"}) {
    SCOPED_TRACE(name);
    const auto fn = loss_named(name, 8);
    const eval::OodImageScores s = eval::ood_image_scores(*fn, images, classes, 3, negatives);
    ASSERT_EQ(s.scores.size(), name == "halo" ? 7u : 5u);
    torch::NoGradGuard no_grad;
    const torch::Tensor c = fn->logits(images, classes).to(torch::kFloat64);
    const torch::Tensor n = fn->logits(images, negatives).to(torch::kFloat64);
    for (int64_t i = 0; i < 4; ++i) {
      const auto k = static_cast<size_t>(i);
      const double lc = torch::logsumexp(c[i], 0).item<double>();
      const double all = torch::logsumexp(torch::cat({c[i], n[i]}), 0).item<double>();
      EXPECT_NEAR(s.score("negatives")[k], all - lc, 1e-9);
      if (name == "halo") {
        const double b = *fn->abstain_logit();
        EXPECT_NEAR(s.score("negatives_sink")[k], std::log(std::exp(all) + std::exp(b)) - lc, 1e-9);
      }
    }
    // Images 2 and 3 sit on negatives: more reject mass than images 0 and 1, on classes.
    EXPECT_GT(std::min(s.score("negatives")[2], s.score("negatives")[3]),
              std::max(s.score("negatives")[0], s.score("negatives")[1]));
  }
  // Without a bank, no such score.
  EXPECT_EQ(eval::ood_image_scores(*loss_named("halo", 8), images, classes, 3).scores.size(), 5u);
}

// The bank keeps the candidates whose nearest class is farthest, in candidate order.
TEST(OodScores, TheBankKeepsTheCandidatesFarthestFromEveryClass) {
  const torch::Tensor classes = torch::tensor({{1.0, 0.0, 0.0}, {0.0, 1.0, 0.0}});
  // Largest cosine to a class: 1, 0 (orthogonal), 0.707, -0 (opposite both), 0.995.
  const torch::Tensor candidates = torch::tensor(
      {{2.0, 0.0, 0.0}, {0.0, 0.0, 1.0}, {1.0, 0.0, 1.0}, {-1.0, -1.0, 0.0}, {10.0, 1.0, 0.0}});
  EXPECT_EQ(eval::farthest_from_classes(candidates, classes, 2), (std::vector<int64_t>{1, 3}));
  EXPECT_EQ(eval::farthest_from_classes(candidates, classes, 3), (std::vector<int64_t>{1, 2, 3}));
  EXPECT_EQ(eval::farthest_from_classes(candidates, classes, 99).size(), 5u);
  EXPECT_THAT(error_message([&] { eval::farthest_from_classes(candidates, classes, 0); }),
              HasSubstr("needs a size >= 1"));
}

// Images on the class embeddings against images far from every class: the abstain, MCM and
// energy scores of every loss tell them apart; the same images on both sides: AUROC 1/2. MSP is
// not asked to: a far image is still nearer one class than the others, and with HALO's distance
// logits that softmax over the classes alone can be confident (what the sink is there for).
TEST(OodScores, DetectionTellsFarImagesFromClassImages) {
  torch::manual_seed(5);
  const torch::Tensor classes = 3 * torch::randn({4, 16});
  const torch::Tensor near = classes.repeat({5, 1}) + 0.05 * torch::randn({20, 16});
  const torch::Tensor far = 3 * torch::randn({12, 16});
  for (const std::string name : {"halo", "infonce", "siglip"}) {
    SCOPED_TRACE(name);
    const auto fn = loss_named(name, 16);
    const auto id = eval::ood_image_scores(*fn, near, classes, 8);
    const auto detected =
        eval::ood_detection("far", id, eval::ood_image_scores(*fn, far, classes, 8));
    ASSERT_EQ(detected.size(), id.scores.size());
    for (const auto& d : detected) {
      if (d.score != "msp") {
        EXPECT_GT(d.auroc, 0.9) << d.score;
      }
      EXPECT_EQ(d.images, 12);
    }
    for (const auto& d : eval::ood_detection("same", id, id))
      EXPECT_DOUBLE_EQ(d.auroc, 0.5) << d.score;
  }
}

TEST(SelectiveClassification, AccuracyAtCoverageAndAreaUnderTheRiskCoverageCurve) {
  const std::vector<double> confidence{0.9, 0.8, 0.7, 0.6};
  const std::vector<int> correct{1, 0, 1, 1};
  const SelectiveResult r = selective_classification(confidence, correct, {0.25, 0.5, 0.75, 1.0});
  const std::vector<double> want{1.0, 0.5, 2.0 / 3, 0.75};
  ASSERT_EQ(r.accuracy.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) EXPECT_NEAR(r.accuracy[i], want[i], 1e-15) << i;
  EXPECT_NEAR(r.aurc, (0.0 + 0.5 + 1.0 / 3 + 0.25) / 4, 1e-15);
  // Ranking the error last is the best a confidence can do.
  const SelectiveResult best = selective_classification({0.9, 0.1, 0.7, 0.6}, correct, {0.75});
  EXPECT_DOUBLE_EQ(best.accuracy[0], 1.0);
  EXPECT_LT(best.aurc, r.aurc);
  EXPECT_THAT(error_message([&] { selective_classification(confidence, correct, {1.5}); }),
              HasSubstr("coverage 1.5"));
}

TEST(PairedBootstrap, IntervalOfAnAurocDifference) {
  std::vector<double> good, noise;
  std::vector<int> label;
  for (int i = 0; i < 200; ++i) {
    label.push_back(i % 4 == 0);
    good.push_back((i % 4 == 0 ? 1.0 : 0.0) + 0.3 * std::sin(i * 1.7));
    noise.push_back(std::sin(i * 12.9898) * 43758.5453 -
                    std::floor(std::sin(i * 12.9898) * 43758.5453));
  }
  const Interval same = paired_bootstrap_auroc_difference(good, good, label, 200, 0.95, 3);
  EXPECT_EQ(same.estimate, 0.0);
  EXPECT_EQ(same.lower, 0.0);
  EXPECT_EQ(same.upper, 0.0);
  const Interval better = paired_bootstrap_auroc_difference(good, noise, label, 200, 0.95, 3);
  EXPECT_NEAR(better.estimate, auroc(good, label) - auroc(noise, label), 1e-15);
  EXPECT_GT(better.lower, 0.0);
  EXPECT_LE(better.lower, better.estimate);
  EXPECT_GE(better.upper, better.estimate);
  // Seeded: the same interval again.
  const Interval again = paired_bootstrap_auroc_difference(good, noise, label, 200, 0.95, 3);
  EXPECT_EQ(again.lower, better.lower);
  EXPECT_EQ(again.upper, better.upper);
}

TEST(InContextScore, LogOddsAreTheScoresLogitAndKeepOrderWhereItSaturates) {
  torch::manual_seed(4);
  const torch::Tensor image = torch::randn({7, 8}), text = image + torch::randn({7, 8});
  const auto fn = loss_named("halo", 8);
  const auto s = eval::in_context_mismatch_score(*fn, image, text, 3);
  const auto l = eval::in_context_log_odds(*fn, image, text, 3);
  ASSERT_EQ(l.size(), 7u);
  for (size_t i = 0; i < 7; ++i)
    EXPECT_NEAR(l[i], std::log(s[i] / (1 - s[i])), 1e-9 * (1 + std::abs(l[i]))) << i;
  // Pairs far from each other and from their own partner: s rounds to 1, the log-odds still rank.
  const torch::Tensor far_image = 40 * torch::randn({6, 8}),
                      far_text = -far_image * torch::arange(1, 7).unsqueeze(1);
  const auto far = eval::in_context_log_odds(*fn, far_image, far_text, 4);
  for (double v : far) EXPECT_TRUE(std::isfinite(v)) << v;
  EXPECT_GT(*std::max_element(far.begin(), far.end()), *std::min_element(far.begin(), far.end()));
}

// Pairs whose own probabilities round to 1 in both directions (s rounds to 0): the log-odds
// against log(1 - p) summed from the other columns' probabilities directly.
TEST(InContextScore, LogOddsKeepOrderWhereTheScoreRoundsToZero) {
  torch::manual_seed(6);
  const auto fn = loss_named("halo", 8);
  const torch::Tensor image = 30 * torch::randn({6, 8}, torch::kFloat64), text = image.clone();
  const auto got = eval::in_context_log_odds(*fn, image, text, 4);
  torch::NoGradGuard no_grad;
  const double b = *fn->abstain_logit();
  auto log_rest = [&](const torch::Tensor& q,
                      const torch::Tensor& c) {  // log(1 - p_own), log p_own
    const torch::Tensor logits = torch::cat(
        {fn->logits(q, c).to(torch::kFloat64), torch::full({6, 1}, b, torch::kFloat64)}, 1);
    const torch::Tensor lse = torch::logsumexp(logits, 1);
    const torch::Tensor others = logits.masked_fill(torch::eye(6, 7, torch::kBool), -INFINITY);
    return std::make_pair(torch::logsumexp(others, 1) - lse, logits.diagonal() - lse);
  };
  const auto [rest1, own1] = log_rest(image, text);
  const auto [rest2, own2] = log_rest(text, image);
  const torch::Tensor want = torch::logaddexp(rest1, rest2) - torch::logaddexp(own1, own2);
  ASSERT_EQ(got.size(), 6u);
  for (int64_t i = 0; i < 6; ++i) {
    EXPECT_LT(want[i].item<double>(), -30) << "the case must be saturated: s < 1e-13";
    EXPECT_NEAR(got[static_cast<size_t>(i)], want[i].item<double>(),
                1e-9 * std::abs(want[i].item<double>()))
        << i;
  }
}

TEST(PrepareNoise, SwapsAFractionOfAnyManifestsCaptionsAndKeepsItsImagesAndLabels) {
  const std::string dir = make_temp_dir("prepare_noise");
  std::string text = "picture\ttext\tlabel\n";
  for (int i = 0; i < 10; ++i) {
    write_text(dir + "/src/img" + std::to_string(i) + ".png", "not decoded here");
    text += "img" + std::to_string(i) + ".png\tcaption number " + std::to_string(i) + "\t" +
            std::to_string(i % 2) + "\n";
  }
  write_text(dir + "/src/list.tsv", text);
  write_text(dir + "/src/classes.txt", "even\nodd\n");
  data::PrepareOptions o;
  o.source = dir + "/src/list.tsv";
  o.out = dir + "/noisy";
  o.mismatch_fraction = 0.4;
  o.seed = 7;
  o.image_key = "picture";
  o.caption_key = "text";
  o.verbose = false;
  const data::PrepareReport r = data::prepare_dataset("noise", o);
  EXPECT_EQ(r.written, 10);
  EXPECT_EQ(r.mismatched, 4);
  const data::Manifest m = data::read_manifest(dir + "/noisy/manifest.tsv", {});
  ASSERT_EQ(m.size(), 10);
  ASSERT_EQ(m.mismatched.size(), 10u);
  int swapped = 0;
  for (int64_t i = 0; i < 10; ++i) {
    const auto k = static_cast<size_t>(i);
    EXPECT_TRUE(fs::equivalent(m.images[k], dir + "/src/img" + std::to_string(i) + ".png"))
        << m.images[k];
    EXPECT_EQ(m.labels[k], i % 2);
    const bool own = m.captions[k] == "caption number " + std::to_string(i);
    EXPECT_EQ(m.mismatched[k] == 1, !own) << i;
    swapped += own ? 0 : 1;
  }
  EXPECT_EQ(swapped, 4);
  EXPECT_EQ(read_file(dir + "/noisy/classes.txt"), "even\nodd\n");
  // The same seed: the same swaps; a folder as --manifest: named.
  o.out = dir + "/again";
  data::prepare_dataset("noise", o);
  EXPECT_EQ(read_file(dir + "/again/manifest.tsv"), read_file(dir + "/noisy/manifest.tsv"));
  o.source = dir + "/src";
  EXPECT_THAT(error_message([&] { data::prepare_dataset("noise", o); }),
              HasSubstr("is a directory"));
}

// A shard set: the same swaps as for a manifest, written under the same shard names; captions
// swapped, every other member's bytes kept, the json's own fields kept and the ground truth added.
TEST(PrepareNoise, ShardSetGetsSwappedCaptionsAndTheGroundTruthInItsJson) {
  const std::string dir = make_temp_dir("prepare_noise_shards");
  fs::create_directories(dir + "/in");
  std::vector<uchar> png;
  cv::imencode(".png", cv::Mat(2, 2, CV_8UC3, cv::Scalar(10, 200, 30)), png);
  const std::string image(png.begin(), png.end());
  for (int shard = 0; shard < 2; ++shard) {
    data::ShardWriter w(dir + "/in/part-" + std::to_string(shard) + ".tar");
    for (int i = 0; i < 5; ++i) {
      const std::string key = "k" + std::to_string(shard * 5 + i);
      data::ShardSample sample;
      sample.members.emplace_back(key + ".png", image);
      sample.members.emplace_back(key + ".txt", "caption " + key);
      if (i % 2 == 0)
        sample.members.emplace_back(key + ".json",
                                    "{\"uid\": \"0007\", \"label\": 3, \"note\": [1, \"a\"]}");
      w.add(sample);
    }
    w.finish();
  }
  data::PrepareOptions o;
  o.source = dir + "/in/part-{0..1}.tar";
  o.out = dir + "/out";
  o.mismatch_fraction = 0.4;
  o.seed = 3;
  o.verbose = false;
  const data::PrepareReport r = data::prepare_dataset("noise", o);
  EXPECT_EQ(r.written, 10);
  EXPECT_EQ(r.mismatched, 4);
  EXPECT_EQ(r.manifest_path, dir + "/out/part-{0..1}.tar");
  EXPECT_TRUE(fs::exists(dir + "/out/sizes.json"));
  int swapped = 0, flagged = 0, samples = 0;
  for (int shard = 0; shard < 2; ++shard) {
    data::ShardReader in(dir + "/in/part-" + std::to_string(shard) + ".tar"),
        out(dir + "/out/part-" + std::to_string(shard) + ".tar");
    data::ShardSample a, b;
    while (in.next(a)) {
      ASSERT_TRUE(out.next(b));
      ++samples;
      ASSERT_TRUE(b.usable()) << b.problem;
      EXPECT_EQ(b.key, a.key);
      EXPECT_EQ(b.image_bytes(), a.image_bytes());
      const bool own = b.caption_text() == a.caption_text();
      swapped += own ? 0 : 1;
      flagged += b.mismatched == 1 ? 1 : 0;
      EXPECT_EQ(b.mismatched, own ? 0 : 1) << b.key;
      const YAML::Node json = YAML::Load(b.members.at(static_cast<size_t>(b.json)).data);
      EXPECT_EQ(json["original_caption"].as<std::string>(), a.caption_text());
      if (a.json >= 0) {  // its own fields, with their types
        EXPECT_EQ(b.uid, "0007");
        EXPECT_EQ(b.label, 3);
        EXPECT_THAT(b.members.at(static_cast<size_t>(b.json)).data, HasSubstr("\"uid\": \"0007\""));
        EXPECT_THAT(b.members.at(static_cast<size_t>(b.json)).data,
                    HasSubstr("\"note\": [1, \"a\"]"));
      }
    }
    EXPECT_FALSE(out.next(b));
  }
  EXPECT_EQ(samples, 10);
  EXPECT_EQ(swapped, 4);
  EXPECT_EQ(flagged, 4);
  // Writing over the input is refused.
  o.out = dir + "/in";
  EXPECT_THAT(error_message([&] { data::prepare_dataset("noise", o); }),
              HasSubstr("would overwrite the input shard"));
}

}  // namespace
}  // namespace halo::test
