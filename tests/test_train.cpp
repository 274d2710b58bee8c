// The training loop end to end on a tiny generated set: the loss falls; a run stopped and
// resumed ends with exactly the parameters (and pair dynamics) of an uninterrupted run;
// checkpoints, metrics, pair dynamics and the saved configuration are where the README says.
#include <filesystem>
#include <fstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "data/manifest.h"
#include "shapes_dataset.h"
#include "test_util.h"
#include "train/checkpoint.h"
#include "loss/contrastive_loss.h"
#include "train/optimizer.h"
#include "train/trainer.h"

namespace halo::test {
namespace {

namespace fs = std::filesystem;

train::Config tiny_config(const std::string& manifest, const std::string& run_dir) {
  return train::parse_config(
      "model: {embed_dim: 16, image: {image_size: 16, patch_size: 4, width: 32, layers: 1, heads: 2},"
      "        text: {context_length: 8, width: 32, layers: 1, heads: 2}}\n"
      "data: {workers: 2, prefetch_batches: 2}\n"
      "tokenizer: {vocab_size: 40}\n"
      "optim: {lr: 3.0e-3, warmup_steps: 2, weight_decay: 0.01}\n"
      "train: {batch_size: 16, epochs: 100, log_every: 1, checkpoint_every: 4, seed: 5}\n",
      {"data.train_manifest=" + manifest, "train.run_dir=" + run_dir});
}

// The `seen` column of a pair_dynamics.tsv, summed.
int64_t total_seen(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  int64_t total = 0;
  while (std::getline(in, line)) total += std::stoll(data::split_fields(line, '\t').at(3));
  return total;
}

std::vector<double> logged_losses(const std::string& run_dir) {
  std::ifstream in(run_dir + "/metrics.jsonl");
  std::vector<double> losses;
  for (std::string line; std::getline(in, line);) {
    const auto pos = line.find("\"loss\": ");
    if (pos != std::string::npos) losses.push_back(std::stod(line.substr(pos + 8)));
  }
  return losses;
}

TEST(Train, TinyRunLowersTheLossAndWritesItsFiles) {
  const std::string dir = make_temp_dir("train_smoke");
  const std::string manifest = make_shapes_dataset(dir + "/data", 64);
  auto c = tiny_config(manifest, dir + "/run");
  c.train.max_steps = 40;
  const auto result = train::run_training(c, {});
  EXPECT_EQ(result.exit_code, 0);
  EXPECT_EQ(result.state.step, 40);
  const auto losses = logged_losses(dir + "/run");
  ASSERT_EQ(losses.size(), 40u);
  const double first = (losses[0] + losses[1] + losses[2]) / 3, last = (losses[37] + losses[38] + losses[39]) / 3;
  EXPECT_LT(last, first - 0.5) << "first " << first << ", last " << last;
  for (const char* file : {"config.yaml", "tokenizer.model", "checkpoints/final.pt", "checkpoints/latest"}) {
    EXPECT_TRUE(fs::exists(dir + "/run/" + file)) << file;
  }
  EXPECT_THAT(train::checkpoint_config(dir + "/run/checkpoints/final.pt"), ::testing::HasSubstr("embed_dim: 16"));
  // Every pair of every step is counted once in the pair dynamics.
  EXPECT_EQ(total_seen(dir + "/run/pair_dynamics.tsv"), 40 * 16);
  EXPECT_THAT(read_file(dir + "/run/metrics.jsonl"), ::testing::HasSubstr("\"dynamics_ms\""));
}

TEST(Train, PairDynamicsCanBeTurnedOff) {
  const std::string dir = make_temp_dir("train_no_dynamics");
  const std::string manifest = make_shapes_dataset(dir + "/data", 32);
  auto c = tiny_config(manifest, dir + "/run");
  c.train.max_steps = 3;
  c.train.pair_dynamics = false;
  ASSERT_EQ(train::run_training(c, {}).exit_code, 0);
  EXPECT_FALSE(fs::exists(dir + "/run/pair_dynamics.tsv"));
  EXPECT_EQ(read_file(dir + "/run/metrics.jsonl").find("dynamics_ms"), std::string::npos);
}

// history: bootstrapping onto the sink from the pairs' history, which the checkpoint carries.
void check_resume_equals_straight_run(const std::string& folder, bool center, bool history = false) {
  const std::string dir = make_temp_dir(folder);
  const std::string manifest = make_shapes_dataset(dir + "/data", 48);  // 3 steps per epoch
  auto straight = tiny_config(manifest, dir + "/straight");
  straight.train.max_steps = 8;
  straight.model.center_embeddings = center;
  if (history) {
    straight.loss.sink_bootstrap = 0.5;
    straight.loss.sink_bootstrap_from = "history";
  }
  const auto a = train::run_training(straight, {});
  ASSERT_EQ(a.exit_code, 0);

  auto split = tiny_config(manifest, dir + "/split");
  split.train.max_steps = 8;
  split.model.center_embeddings = center;
  split.loss = straight.loss;
  split.tokenizer.model = dir + "/straight/tokenizer.model";  // the same tokenizer
  train::TrainOptions first;
  first.stop_after_steps = 5;  // as if SIGTERM arrived after step 5 (mid-epoch)
  const auto stopped = train::run_training(split, first);
  EXPECT_NE(stopped.exit_code, 0);
  EXPECT_EQ(stopped.state.step, 5);
  train::TrainOptions resume;
  resume.resume = "latest";
  const auto resumed = train::run_training(split, resume);
  ASSERT_EQ(resumed.exit_code, 0);
  EXPECT_EQ(resumed.state.step, 8);

  ASSERT_EQ(a.parameters.size(), resumed.parameters.size());
  ASSERT_FALSE(a.parameters.empty());
  for (const auto& [name, value] : a.parameters) {
    ASSERT_TRUE(resumed.parameters.count(name)) << name;
    EXPECT_TRUE(torch::equal(value, resumed.parameters.at(name))) << name << " differs after resume";
  }
  EXPECT_EQ(logged_losses(dir + "/split"), logged_losses(dir + "/straight"));
  // The pair dynamics went through the checkpoint: the same file, byte for byte.
  const std::string dynamics = read_file(dir + "/straight/pair_dynamics.tsv");
  EXPECT_EQ(total_seen(dir + "/straight/pair_dynamics.tsv"), 8 * 16);
  EXPECT_EQ(read_file(dir + "/split/pair_dynamics.tsv"), dynamics);
  // The offset that centring removes is logged only when there is one.
  const std::string text = read_file(dir + "/straight/metrics.jsonl");
  const bool offset_logged = text.find("\"image_offset_norm\"") != std::string::npos;
  EXPECT_EQ(offset_logged, center);
}

TEST(Train, StoppedAndResumedRunEqualsUninterruptedRun) { check_resume_equals_straight_run("train_resume", false); }

// With centring the running means (buffers) must survive the checkpoint too.
TEST(Train, StoppedAndResumedRunWithCentringEqualsUninterruptedRun) {
  check_resume_equals_straight_run("train_resume_center", true);
}

// The history (the sums at the last fold plus the additions since) must come back on resume,
// or the shares, hence the parameters, would differ after step 5.
TEST(Train, StoppedAndResumedRunWithSinkSharesFromTheHistoryEqualsUninterruptedRun) {
  check_resume_equals_straight_run("train_resume_history", true, true);
}

// In the first epoch no pair has a history, so no share: the plain loss. From the second epoch
// on the batch's hardest pairs get one (HALO: on the sink; InfoNCE: as a row weight), and the
// runs part.
class SinkSharesFromTheHistory : public ::testing::TestWithParam<const char*> {};

TEST_P(SinkSharesFromTheHistory, StartInTheSecondEpoch) {
  const std::string dir = make_temp_dir(std::string("train_history_") + GetParam());
  const std::string manifest = make_shapes_dataset(dir + "/data", 32);  // 2 steps per epoch
  for (const int from_history : {0, 1}) {
    auto c = tiny_config(manifest, dir + "/run" + std::to_string(from_history));
    c.train.max_steps = 4;
    c.loss.name = GetParam();
    c.loss.sink_bootstrap = from_history ? 0.5 : 0.0;
    if (from_history) c.loss.sink_bootstrap_from = "history";
    if (from_history) c.tokenizer.model = dir + "/run0/tokenizer.model";
    ASSERT_EQ(train::run_training(c, {}).exit_code, 0);
  }
  const auto losses_plain = logged_losses(dir + "/run0"), losses_history = logged_losses(dir + "/run1");
  ASSERT_EQ(losses_plain.size(), 4u);
  ASSERT_EQ(losses_history.size(), 4u);
  EXPECT_NEAR(losses_plain[0], losses_history[0], 1e-5);
  EXPECT_NEAR(losses_plain[1], losses_history[1], 1e-5);
  EXPECT_GT(std::abs(losses_plain[2] - losses_history[2]), 1e-3);
}

INSTANTIATE_TEST_SUITE_P(Losses, SinkSharesFromTheHistory, ::testing::Values("halo", "infonce"));

TEST(Train, LossScalarsGetTheirOwnLearningRate) {
  torch::nn::Linear model(4, 2);
  auto loss = loss::make_contrastive_loss({});
  train::OptimConfig c;
  c.temperature_lr_scale = 10;
  auto optimizer = train::make_optimizer(*model, *loss, c);
  ASSERT_EQ(optimizer->param_groups().size(), 3u);
  train::set_learning_rate(*optimizer, 0.01, c);
  auto lr = [&](size_t g) { return static_cast<torch::optim::AdamWOptions&>(optimizer->param_groups()[g].options()).lr(); };
  EXPECT_DOUBLE_EQ(lr(0), 0.01);
  EXPECT_DOUBLE_EQ(lr(1), 0.01);
  EXPECT_DOUBLE_EQ(lr(2), 0.1);
  EXPECT_EQ(optimizer->param_groups()[2].params().size(), 1u);  // HALO's gamma_raw
}

TEST(Train, ResumeWithoutCheckpointIsAClearError) {
  const std::string dir = make_temp_dir("train_noresume");
  const std::string manifest = make_shapes_dataset(dir + "/data", 32);
  train::TrainOptions o;
  o.resume = "latest";
  EXPECT_THAT(error_message([&] { train::run_training(tiny_config(manifest, dir + "/run"), o); }),
              ::testing::HasSubstr("no checkpoint to resume"));
}

}  // namespace
}  // namespace halo::test
