// halo-clip classify: both losses learn a tiny generated labelled set beyond chance and write
// their results; the OOD and calibration metrics on hand-computed cases; the heads' scores; and
// bad flags or manifests give errors that name the flag or the file.
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "classify/classifier_head.h"
#include "classify/classify_eval.h"
#include "classify/classify_options.h"
#include "classify/classify_run.h"
#include "shapes_dataset.h"
#include "test_util.h"

namespace halo::test {
namespace {

using classify::ClassifyOptions;
using ::testing::HasSubstr;

// The shapes set (4 classes: the shape) once per process, shared by the tests below.
const std::string& shapes_manifest() {
  static const std::string path = make_shapes_dataset(make_temp_dir("classify_shapes"), 128, 16);
  return path;
}

ClassifyOptions tiny_options(const std::string& loss, const std::string& out) {
  ClassifyOptions o;
  o.train_manifest = o.test_manifest = shapes_manifest();
  o.out_dir = out;
  o.loss = loss;
  o.model.width = 8, o.model.stages = 2, o.model.blocks_per_stage = 1, o.model.embed_dim = 16;
  o.image_size = 16;
  o.augment = false;
  o.epochs = 8, o.batch_size = 32, o.workers = 1, o.log_every = 1000;
  o.optim.lr = 5e-3, o.optim.warmup_steps = 4;
  return o;
}

class ClassifyTraining : public ::testing::TestWithParam<std::string> {};

TEST_P(ClassifyTraining, BeatsChanceAndWritesResults) {
  const std::string dir = make_temp_dir("classify_" + GetParam());
  ClassifyOptions o = tiny_options(GetParam(), dir + "/out");
  o.ood.push_back({"shapes-again", shapes_manifest()});
  const classify::ClassifyResult r = classify::run_classify(o);
  EXPECT_EQ(r.classes, 4);
  EXPECT_EQ(r.train.steps, 8 * 4);
  EXPECT_EQ(r.test.images, 128);
  EXPECT_GT(r.test.accuracy, 0.6) << "chance is 0.25";
  EXPECT_GE(r.test.ece, 0.0);
  EXPECT_LE(r.test.ece, 1.0);
  ASSERT_EQ(r.ood.size(), 1u);
  // The "OOD" set is the test set itself: its scores are the same, so nothing separates them.
  EXPECT_DOUBLE_EQ(r.ood[0].metrics.auroc, 0.5);
  classify::write_results(r);
  const std::string json = read_file(dir + "/out/results.json");
  EXPECT_THAT(json, HasSubstr("\"loss\": \"" + GetParam() + "\""));
  EXPECT_THAT(json, HasSubstr("\"accuracy\""));
  EXPECT_THAT(json, HasSubstr("\"name\": \"shapes-again\""));
  EXPECT_THAT(read_file(dir + "/out/results.txt"), HasSubstr("shapes-again"));
  // scores.tsv: a header, then every test image and every OOD image, each with its OOD score.
  std::istringstream scores(read_file(dir + "/out/scores.tsv"));
  std::string line;
  std::getline(scores, line);
  EXPECT_EQ(line, "set\timage_path\tlabel\tpredicted\tconfidence\tood_score");
  int test_rows = 0, ood_rows = 0;
  while (std::getline(scores, line)) {
    const std::string set = line.substr(0, line.find('\t'));
    (set == "test" ? test_rows : ood_rows) += 1;
    if (set == "test" && test_rows == 1) {
      // The first test image's OOD score, as the result holds it.
      const double written = std::stod(line.substr(line.rfind('\t') + 1));
      EXPECT_NEAR(written, r.scored[0].scores.ood_score[0],
                  1e-5 * std::max(1.0, std::abs(written)));
    }
  }
  EXPECT_EQ(test_rows, 128);
  EXPECT_EQ(ood_rows, 128);
}

INSTANTIATE_TEST_SUITE_P(Losses, ClassifyTraining, ::testing::Values("ce", "halo"));

TEST(ClassifyMetrics, OodMetricsOfAKnownCase) {
  // OOD images score 0.25, 0.5, 0.6 against test images 0.1-0.4: 10 of the 12 pairs ordered
  // right. Keeping 95% of the 4 test images needs the threshold at 0.4 (score <= 0.4 accepted),
  // which accepts the OOD image at 0.25: FPR 1/3.
  const auto m = classify::ood_metrics({0.1, 0.2, 0.3, 0.4}, {0.25, 0.5, 0.6});
  EXPECT_EQ(m.images, 3);
  EXPECT_NEAR(m.auroc, 10.0 / 12.0, 1e-12);
  EXPECT_NEAR(m.fpr95, 1.0 / 3.0, 1e-12);
  EXPECT_NEAR(m.mean_ood_score, 0.45, 1e-12);
  // Ties count against the detector: equal scores give AUROC 1/2 and every OOD image accepted.
  const auto tied = classify::ood_metrics({0.5, 0.5}, {0.5});
  EXPECT_DOUBLE_EQ(tied.auroc, 0.5);
  EXPECT_DOUBLE_EQ(tied.fpr95, 1.0);
  // Perfect separation.
  const auto perfect = classify::ood_metrics({0.0, 0.1}, {0.9, 1.0});
  EXPECT_DOUBLE_EQ(perfect.auroc, 1.0);
  EXPECT_DOUBLE_EQ(perfect.fpr95, 0.0);
}

TEST(ClassifyMetrics, AccuracyAndEceOfAKnownCase) {
  classify::ScoredImages s;
  s.predicted = {0, 1, 2, 3};
  s.confidence = {0.9, 0.9, 0.55, 0.55};
  s.ood_score = {0.1, 0.1, 0.45, 0.45};
  // Bin (0.867, 0.933]: accuracy 1/2 at confidence 0.9; bin (0.533, 0.6]: accuracy 1 at 0.55.
  const auto m = classify::test_metrics(s, {0, 0, 2, 3});
  EXPECT_DOUBLE_EQ(m.accuracy, 0.75);
  EXPECT_NEAR(m.ece, 0.5 * 0.4 + 0.5 * 0.45, 1e-12);
  EXPECT_NEAR(m.mean_ood_score, 0.275, 1e-12);
}

TEST(ClassifierHead, HaloScoresTheAbstainProbability) {
  torch::manual_seed(0);
  classify::ClassifierHead head("halo", 4, 2);
  {
    torch::NoGradGuard no_grad;
    head->centroids->centroids.copy_(
        torch::tensor({{2.0f, 0.f, 0.f, 0.f}, {-2.0f, 0.f, 0.f, 0.f}}));
  }
  const torch::Tensor x = torch::tensor({{0.f, 0.f, 0.f, 0.f}, {2.0f, 0.f, 0.f, 0.f}});
  const auto p = head->predict(x);
  // At the origin both shifted logits are gamma (2 x.c - |c|^2) / D = -gamma: the abstain
  // probability is sigmoid(b - logsumexp(-gamma, -gamma)).
  const double gamma = head->halo->gamma().item<double>(), b = head->halo->abstain_bias();
  const double expected = 1.0 / (1.0 + std::exp(-(b - (-gamma + std::log(2.0)))));
  EXPECT_NEAR(p.ood_score[0].item<double>(), expected, 1e-5);
  EXPECT_LT(p.ood_score[1].item<double>(), p.ood_score[0].item<double>());  // on a centroid
  EXPECT_GT(p.probs[1][0].item<double>(), 0.99);
  const torch::Tensor total = p.probs.sum(1) + p.ood_score;
  EXPECT_TRUE(all_close(total.to(torch::kDouble), torch::ones({2}, torch::kDouble), 1e-6, 1e-6));
}

TEST(ClassifierHead, CrossEntropyScoresOneMinusTheMaxProbability) {
  classify::ClassifierHead head("ce", 3, 3);
  const torch::Tensor x = torch::randn({5, 3});
  const auto p = head->predict(x);
  const torch::Tensor expected = 1.0 - std::get<0>(torch::softmax(head->linear(x), 1).max(1));
  EXPECT_TRUE(all_close(p.ood_score.to(torch::kDouble), expected.to(torch::kDouble), 1e-6, 1e-7));
}

std::string parse_error(std::vector<std::string> args) {
  return error_message([&] { classify::parse_classify_args(args); });
}

TEST(ClassifyFlags, BadFlagsNameTheFlag) {
  const std::string m = shapes_manifest();
  const std::vector<std::string> base{"--train", m, "--test", m, "--out", "o"};
  auto with = [&](std::vector<std::string> extra) {
    std::vector<std::string> args = base;
    args.insert(args.end(), extra.begin(), extra.end());
    return parse_error(args);
  };
  EXPECT_EQ(with({}), "");
  EXPECT_THAT(with({"--loss", "focal"}), HasSubstr("--loss must be 'ce' or 'halo', got 'focal'"));
  EXPECT_THAT(with({"--ood", "mnist"}), HasSubstr("--ood expects NAME=FILE"));
  EXPECT_THAT(with({"--ood", "mnist=no/such.tsv"}),
              HasSubstr("--ood mnist: manifest 'no/such.tsv' does not exist"));
  EXPECT_THAT(with({"--ood", "a=" + m, "--ood", "a=" + m}),
              HasSubstr("the name 'a' is given twice"));
  EXPECT_THAT(with({"--preset", "huge"}), HasSubstr("--preset must be 'small' or 'resnet18'"));
  EXPECT_THAT(with({"--epochs", "0"}), HasSubstr("--epochs must be >= 1"));
  EXPECT_THAT(with({"--lr", "fast"}), HasSubstr("--lr"));
  EXPECT_THAT(with({"--no-such-flag", "1"}), HasSubstr("unknown flag '--no-such-flag'"));
  EXPECT_THAT(parse_error({"--train", "no/such.tsv", "--test", m, "--out", "o"}),
              HasSubstr("--train: manifest 'no/such.tsv' does not exist"));
  EXPECT_THAT(parse_error({"--test", m, "--out", "o"}), HasSubstr("--train"));
}

TEST(ClassifyFlags, ManifestWithoutLabelsIsNamed) {
  const std::string dir = make_temp_dir("classify_nolabel");
  const std::string path = dir + "/manifest.tsv";
  std::ofstream(path) << "image_path\tcaption\n"
                      << std::filesystem::absolute(shapes_manifest()).parent_path().string()
                      << "/img/0.png\ta red circle\n";
  ClassifyOptions o = tiny_options("ce", dir + "/out");
  o.train_manifest = path;
  EXPECT_THAT(error_message([&] { classify::run_classify(o); }),
              HasSubstr("--train: manifest '" + path + "' has no 'label' column"));
}

}  // namespace
}  // namespace halo::test
