// The training loop end to end on a tiny generated set: the loss falls; a run stopped and
// resumed ends with exactly the parameters (and pair dynamics) of an uninterrupted run;
// checkpoints, metrics, pair dynamics and the saved configuration are where the README says.
#include <unistd.h>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "common/torch_compat.h"
#include "data/manifest.h"
#include "data/pair_set.h"
#include "data/tokenizer.h"
#include "dist/process_group.h"
#include "encoders/clip_model.h"
#include "hooks/validation.h"
#include "loss/contrastive_loss.h"
#include "shapes_dataset.h"
#include "test_util.h"
#include "train/checkpoint.h"
#include "train/components.h"
#include "train/optimizer.h"
#include "train/run_log.h"
#include "train/trained_model.h"
#include "train/trainer.h"

namespace halo::test {
namespace {

namespace fs = std::filesystem;

train::Config tiny_config(const std::string& manifest, const std::string& run_dir) {
  return train::parse_config(
      "model: {embed_dim: 16, image: {image_size: 16, patch_size: 4, width: 32, layers: 1, heads: "
      "2},"
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

// A step hook that stops the run after `steps` steps, through the same path as a signal.
class StopAfterSteps : public hooks::StepHook {
 public:
  explicit StopAfterSteps(int64_t steps) : steps_(steps) {}
  std::string name() const override { return "stop_after_steps"; }
  void after_step(const hooks::StepContext& step, Metrics&) override { done_ = step.step; }
  std::string stop_reason() const override {
    return done_ >= steps_ ? "the test after step " + std::to_string(steps_) : "";
  }

 private:
  int64_t steps_, done_ = 0;
};

// The model's parameters and buffers in a run's final checkpoint.
std::map<std::string, torch::Tensor> final_parameters(const std::string& run_dir) {
  train::TrainedModel m = train::load_trained_model(run_dir + "/checkpoints/final.pt", "cpu");
  std::map<std::string, torch::Tensor> out;
  for (const auto& p : m.model->named_parameters()) out[p.key()] = p.value().detach().clone();
  for (const auto& b : m.model->named_buffers()) out[b.key()] = b.value().detach().clone();
  return out;
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
  const double first = (losses[0] + losses[1] + losses[2]) / 3,
               last = (losses[37] + losses[38] + losses[39]) / 3;
  EXPECT_LT(last, first - 0.5) << "first " << first << ", last " << last;
  for (const char* file :
       {"config.yaml", "tokenizer.model", "checkpoints/final.pt", "checkpoints/latest"}) {
    EXPECT_TRUE(fs::exists(dir + "/run/" + file)) << file;
  }
  EXPECT_THAT(train::checkpoint_config(dir + "/run/checkpoints/final.pt"),
              ::testing::HasSubstr("embed_dim: 16"));
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
// accum: train.accum_steps (the checkpoint falls between steps, never inside an accumulation).
void check_resume_equals_straight_run(const std::string& folder, bool center, bool history = false,
                                      int64_t accum = 1, const std::string& precision = "fp32",
                                      double partner_drop = 0) {
  const std::string dir = make_temp_dir(folder);
  const std::string manifest = make_shapes_dataset(dir + "/data", 48);  // 3 steps per epoch
  auto straight = tiny_config(manifest, dir + "/straight");
  straight.train.max_steps = 8;
  straight.train.precision = precision;
  straight.model.center_embeddings = center;
  straight.train.accum_steps = accum;
  if (history) {
    straight.loss.sink_bootstrap = 0.5;
    straight.loss.sink_bootstrap_from = "history";
  }
  straight.loss.sink_partner_drop = partner_drop;
  const auto a = train::run_training(straight, {});
  ASSERT_EQ(a.exit_code, 0);

  auto split = tiny_config(manifest, dir + "/split");
  split.train.max_steps = 8;
  split.train.precision = precision;
  split.model.center_embeddings = center;
  split.train.accum_steps = accum;
  split.loss = straight.loss;
  split.tokenizer.model = dir + "/straight/tokenizer.model";  // the same tokenizer
  train::TrainOptions first;
  first.hooks.push_back(
      std::make_shared<StopAfterSteps>(5));  // as a signal after step 5 (mid-epoch)
  const auto stopped = train::run_training(split, first);
  EXPECT_FALSE(stopped.finished);
  EXPECT_EQ(stopped.state.step, 5);
  train::TrainOptions resume;
  resume.resume = "latest";
  const auto resumed = train::run_training(split, resume);
  ASSERT_EQ(resumed.exit_code, 0);
  EXPECT_EQ(resumed.state.step, 8);

  const auto straight_parameters = final_parameters(dir + "/straight");
  const auto resumed_parameters = final_parameters(dir + "/split");
  ASSERT_EQ(straight_parameters.size(), resumed_parameters.size());
  ASSERT_FALSE(straight_parameters.empty());
  for (const auto& [name, value] : straight_parameters) {
    ASSERT_TRUE(resumed_parameters.count(name)) << name;
    EXPECT_TRUE(torch::equal(value, resumed_parameters.at(name)))
        << name << " differs after resume";
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

TEST(Train, StoppedAndResumedRunEqualsUninterruptedRun) {
  check_resume_equals_straight_run("train_resume", false);
}

// With centring the running means (buffers) must survive the checkpoint too.
TEST(Train, StoppedAndResumedRunWithCentringEqualsUninterruptedRun) {
  check_resume_equals_straight_run("train_resume_center", true);
}

// The history (the sums at the last fold plus the additions since) must come back on resume,
// or the shares, hence the parameters, would differ after step 5.
TEST(Train, StoppedAndResumedRunWithSinkSharesFromTheHistoryEqualsUninterruptedRun) {
  check_resume_equals_straight_run("train_resume_history", true, true);
}

// Partner dropout draws its rows from the step: a resume drops the rows the straight run does.
// And it is applied: the same run without it logs other losses.
TEST(Train, StoppedAndResumedRunWithPartnerDropoutEqualsUninterruptedRun) {
  check_resume_equals_straight_run("train_resume_partner_drop", true, false, 1, "fp32", 0.5);
  const std::string dir = make_temp_dir("train_partner_drop_applied");
  const std::string manifest = make_shapes_dataset(dir + "/data", 48);
  auto without = tiny_config(manifest, dir + "/without");
  without.train.max_steps = 4;
  ASSERT_EQ(train::run_training(without, {}).exit_code, 0);
  auto with = tiny_config(manifest, dir + "/with");
  with.train.max_steps = 4;
  with.loss.sink_partner_drop = 0.5;
  with.tokenizer.model = dir + "/without/tokenizer.model";
  ASSERT_EQ(train::run_training(with, {}).exit_code, 0);
  EXPECT_NE(logged_losses(dir + "/with"), logged_losses(dir + "/without"));
}

TEST(Train, StoppedAndResumedRunWithAccumulationEqualsUninterruptedRun) {
  check_resume_equals_straight_run("train_resume_accum", true, true, 2);
}

// bf16 on the CPU (LibTorch 2.x) with accumulation: both passes of each micro-batch under
// autocast, and a resume between steps ends bit-identical to the straight run.
TEST(Train, StoppedAndResumedBf16RunWithAccumulationEqualsUninterruptedRun) {
  if (!cpu_bf16_autocast_available()) {
    GTEST_SKIP() << "LibTorch " << TORCH_VERSION << " has no CPU autocast to bf16";
  }
  check_resume_equals_straight_run("train_resume_bf16_accum", true, false, 2, "bf16");
  const auto dir =
      std::filesystem::temp_directory_path() /
      ("halo_test_" + std::to_string(::getpid()) + "_train_resume_bf16_accum");  // make_temp_dir's
  const auto losses = logged_losses((dir / "straight").string());
  ASSERT_EQ(losses.size(), 8u);
  for (double l : losses) EXPECT_TRUE(std::isfinite(l));
}

// The order of a manifest's batches depends on the global batch and the pairs, not on the
// number of processes: a resume that changes the global batch is refused before anything is
// written, naming it; --restart-epoch starts the checkpoint's epoch over instead.
TEST(Train, ResumeWithAnotherGlobalBatchIsRefusedOrRestartsTheEpoch) {
  const std::string dir = make_temp_dir("train_resume_layout");
  const std::string manifest = make_shapes_dataset(dir + "/data", 48);  // 3 steps per epoch
  auto c = tiny_config(manifest, dir + "/run");
  c.train.max_steps = 8;
  train::TrainOptions first;
  first.hooks.push_back(std::make_shared<StopAfterSteps>(4));  // epoch 1, batch 1
  ASSERT_EQ(train::run_training(c, first).state.step, 4);
  const std::string metrics = read_file(dir + "/run/metrics.jsonl");
  auto changed = c;
  changed.train.batch_size = 8;
  train::TrainOptions resume;
  resume.resume = "latest";
  const std::string message = error_message([&] { train::run_training(changed, resume); });
  EXPECT_THAT(message,
              ::testing::HasSubstr("global batch (train.batch_size): checkpoint 16, now 8"));
  EXPECT_THAT(message, ::testing::HasSubstr("nothing was written"));
  EXPECT_EQ(read_file(dir + "/run/metrics.jsonl"), metrics);
  resume.restart_epoch = true;
  const auto resumed = train::run_training(changed, resume);
  ASSERT_EQ(resumed.exit_code, 0);
  EXPECT_EQ(resumed.state.step, 8);
  // 48 pairs in batches of 8: epoch 1 starts over at step 4 and holds 6 batches.
  EXPECT_EQ(resumed.state.epoch, 1);
  EXPECT_EQ(resumed.state.batch_in_epoch, 4);
}

// Validation that fails (here: an image that cannot be read) gives the model back in training
// mode: the exception must not leave the run's model in evaluation mode.
TEST(Train, FailedValidationLeavesTheModelInTrainingMode) {
  const std::string dir = make_temp_dir("train_validation_mode");
  const std::string manifest = make_shapes_dataset(dir + "/data", 8);
  std::ofstream(dir + "/broken.png") << "not a png";
  std::ofstream(dir + "/bad.tsv") << "image_path\tcaption\n"
                                  << dir << "/broken.png\ta broken image\n";
  const auto c = tiny_config(manifest, dir + "/run");
  encoders::ClipModel model(c.model, 40, 2);
  model->train();
  auto loss = loss::make_contrastive_loss(train::loss_options(c));
  auto group = dist::make_process_group(dist::DistEnv{}, {}, torch::kCPU);
  hooks::ValidationOptions v;
  v.pairs = data::PairSet::open(dir + "/bad.tsv", {});
  v.loader = train::eval_loader_options(c, 4);
  v.tokenizer = data::Tokenizer::load(std::string(HALO_SOURCE_DIR) +
                                      "/tests/fixtures/legacy_run/tokenizer.model");
  v.context_length = c.model.text.context_length;
  v.every = 1;
  hooks::ValidationHook hook(std::move(v), /*main_rank=*/true);
  const data::Batch batch;
  const torch::Tensor e = torch::randn({2, c.model.embed_dim});
  const loss::PairBatch pairs = loss::PairBatch::local(e, e);
  Metrics metrics;
  const hooks::StepContext step{1, 1, 0, true, batch, pairs, *loss, model, *group};
  EXPECT_THAT(error_message([&] { hook.after_step(step, metrics); }),
              ::testing::HasSubstr("broken.png"));
  EXPECT_TRUE(model->is_training());
}

// metrics.jsonl holds every value as the shortest text that reads back as the same double (it
// rounded to 6 significant digits, while runs are compared to 1e-5).
TEST(Train, MetricsAreWrittenSoThatTheyReadBackExactly) {
  const std::string dir = make_temp_dir("train_metrics_digits");
  {
    train::RunLog log(dir, 0, 1);
    log.step(1, 0, 16, 0.0,
             {{"loss", static_cast<double>(4.5082102f)}, {"lr", 0.0015}, {"x", 1.0 / 3}}, 1);
  }
  const std::string line = read_file(dir + "/metrics.jsonl");
  EXPECT_THAT(line, ::testing::HasSubstr("\"loss\": 4.508210182189941"));
  EXPECT_THAT(line, ::testing::HasSubstr("\"lr\": 0.0015,"));
  EXPECT_THAT(line, ::testing::HasSubstr("\"x\": 0.3333333333333333"));
}

// A batch source that ends its epoch after `limit` batches, fewer than it promises.
class EndsEarly : public data::BatchSource {
 public:
  EndsEarly(std::unique_ptr<data::BatchSource> inner, int64_t limit)
      : inner_(std::move(inner)), limit_(limit) {}
  int64_t batches_per_epoch() const override { return inner_->batches_per_epoch(); }
  void start_epoch(int64_t epoch, int64_t first_batch) override {
    inner_->start_epoch(epoch, first_batch);
    given_ = first_batch;
  }
  std::optional<data::Batch> next() override {
    if (given_ >= limit_) return std::nullopt;
    ++given_;
    return inner_->next();
  }
  int64_t skipped_images() const override { return inner_->skipped_images(); }
  data::DataLayout layout() const override { return inner_->layout(); }

 private:
  std::unique_ptr<data::BatchSource> inner_;
  int64_t limit_, given_ = 0;
};

// The loop would start the same epoch at the same batch forever; it stops with a message.
TEST(Train, DataThatEndsBeforeItsEpochIsAnErrorNotAnEndlessLoop) {
  const std::string dir = make_temp_dir("train_source_ends");
  const std::string manifest = make_shapes_dataset(dir + "/data", 64);  // 4 steps per epoch
  auto c = tiny_config(manifest, dir + "/run");
  c.train.max_steps = 8;
  train::TrainOptions o;
  o.wrap_loader =
      [](std::unique_ptr<data::BatchSource> inner) -> std::unique_ptr<data::BatchSource> {
    return std::make_unique<EndsEarly>(std::move(inner), 2);
  };
  const std::string message = error_message([&] { train::run_training(c, o); });
  EXPECT_THAT(message, ::testing::HasSubstr(
                           "the training data ended epoch 0 after 2 of the 4 batches it promised"));
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
  const auto losses_plain = logged_losses(dir + "/run0"),
             losses_history = logged_losses(dir + "/run1");
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
  auto lr = [&](size_t g) {
    return static_cast<torch::optim::AdamWOptions&>(optimizer->param_groups()[g].options()).lr();
  };
  EXPECT_DOUBLE_EQ(lr(0), 0.01);
  EXPECT_DOUBLE_EQ(lr(1), 0.01);
  EXPECT_DOUBLE_EQ(lr(2), 0.1);
  EXPECT_EQ(optimizer->param_groups()[2].params().size(), 1u);  // HALO's gamma_raw
}

// The val_* values of a run's metrics.jsonl, by step.
std::map<int64_t, std::string> validation_lines(const std::string& run_dir) {
  std::ifstream in(run_dir + "/metrics.jsonl");
  std::map<int64_t, std::string> out;
  for (std::string line; std::getline(in, line);) {
    if (line.find("\"val_i2t_r1\"") == std::string::npos) continue;
    std::string values;  // the "val_*": value pairs, in order
    for (size_t at = line.find("\"val_"); at != std::string::npos;
         at = line.find("\"val_", at + 1)) {
      values += line.substr(at, line.find_first_of(",}", at) - at) + ";";
    }
    out[std::stoll(line.substr(line.find("\"step\": ") + 8))] = values;
  }
  return out;
}

TEST(Train, ValidationIsRecordedResumesExactlyAndLeavesTrainingAlone) {
  const std::string dir = make_temp_dir("train_validation");
  const std::string manifest = make_shapes_dataset(dir + "/data", 48);  // 3 steps per epoch
  const std::string held_out = make_shapes_dataset(dir + "/held_out", 24, 16, /*mismatch_every=*/4);
  auto plain = tiny_config(manifest, dir + "/plain");
  plain.train.max_steps = 7;
  plain.train.log_every = 2;
  ASSERT_EQ(train::run_training(plain, {}).exit_code, 0);

  auto validated = plain;
  validated.train.run_dir = dir + "/validated";
  validated.tokenizer.model = dir + "/plain/tokenizer.model";
  validated.train.eval_manifest = held_out;
  validated.train.eval_every = 3;
  ASSERT_EQ(train::run_training(validated, {}).exit_code, 0);
  // Every eval_every steps and after the last; between logging steps on a line of their own.
  const auto lines = validation_lines(dir + "/validated");
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_TRUE(lines.count(3) && lines.count(6) && lines.count(7));
  EXPECT_THAT(lines.at(7), ::testing::HasSubstr("\"val_mismatch_auroc\""));
  EXPECT_THAT(lines.at(7), ::testing::HasSubstr("\"val_t2i_r5\""));
  // Training is bit-identical with and without validation.
  const auto a = final_parameters(dir + "/plain"), b = final_parameters(dir + "/validated");
  ASSERT_EQ(a.size(), b.size());
  for (const auto& [name, value] : a) EXPECT_TRUE(torch::equal(value, b.at(name))) << name;
  EXPECT_EQ(logged_losses(dir + "/plain"), logged_losses(dir + "/validated"));

  // Stopped after step 4 and resumed: the same validation figures.
  auto split = validated;
  split.train.run_dir = dir + "/split";
  train::TrainOptions first;
  first.hooks.push_back(std::make_shared<StopAfterSteps>(4));
  ASSERT_FALSE(train::run_training(split, first).finished);
  train::TrainOptions resume;
  resume.resume = "latest";
  ASSERT_EQ(train::run_training(split, resume).exit_code, 0);
  EXPECT_EQ(validation_lines(dir + "/split"), lines);
}

TEST(Train, NonFiniteLossStopsTheRunNamingTheStepWhereItWentBad) {
  const std::string dir = make_temp_dir("train_nonfinite");
  const std::string manifest = make_shapes_dataset(dir + "/data", 64);
  auto c = tiny_config(manifest, dir + "/run");
  c.optim.lr = 1e30;  // the first update throws every weight far beyond float range
  c.optim.warmup_steps = 0;
  c.train.log_every = 6;  // the loss is read back only at logging steps and checkpoints
  c.train.checkpoint_every = 5;
  c.train.pair_dynamics = false;
  const std::string message = error_message([&] { train::run_training(c, {}); });
  EXPECT_THAT(message, ::testing::HasSubstr("the loss became NaN or infinite at step 2"));
  EXPECT_THAT(message, ::testing::HasSubstr(dir + "/run/checkpoints"));
  EXPECT_FALSE(
      fs::exists(dir + "/run/checkpoints/step_00000005.pt"));  // no checkpoint after it went bad
}

TEST(Train, ResumeWithoutCheckpointIsAClearError) {
  const std::string dir = make_temp_dir("train_noresume");
  const std::string manifest = make_shapes_dataset(dir + "/data", 32);
  train::TrainOptions o;
  o.resume = "latest";
  EXPECT_THAT(error_message([&] { train::run_training(tiny_config(manifest, dir + "/run"), o); }),
              ::testing::HasSubstr("no checkpoint to resume"));
}

// An empty configuration names the setting that is missing, and a relative path that does not
// exist says what it is relative to; nothing is written.
TEST(Train, MissingManifestNamesTheSettingAndWritesNothing) {
  const std::string dir = make_temp_dir("train_empty_config");
  auto c = train::parse_config("", {"train.run_dir=" + dir + "/run"});
  EXPECT_THAT(error_message([&] { train::run_training(c, {}); }),
              ::testing::HasSubstr("set data.train_manifest"));
  c.data.train_manifest = "no/such/manifest.tsv";
  EXPECT_THAT(error_message([&] { train::run_training(c, {}); }),
              ::testing::HasSubstr("training manifest 'no/such/manifest.tsv' does not exist "
                                   "(relative to the current directory " +
                                   fs::current_path().string() + ")"));
  c.data.train_manifest = dir;
  EXPECT_THAT(error_message([&] { train::run_training(c, {}); }),
              ::testing::HasSubstr("is a directory"));
  EXPECT_FALSE(fs::exists(dir + "/run/config.yaml"));
}

// A checkpoint knows its tokenizer: eval with another run's tokenizer is refused naming both files;
// --resume FILE into a new folder continues with the checkpoint's tokenizer (never a new one); a
// resume that changes the model's shape is refused naming the keys before anything is written;
// a run clears the temporaries an interrupted checkpoint write left.
class CheckpointIdentity : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = make_temp_dir("train_identity");
    manifest_ = make_shapes_dataset(dir_ + "/data", 32);
    auto a = tiny_config(manifest_, dir_ + "/a");
    a.train.max_steps = 2;
    a.train.pair_dynamics = false;
    ASSERT_EQ(train::run_training(a, {}).exit_code, 0);
    auto b = tiny_config(manifest_, dir_ + "/b");
    b.train.max_steps = 1;
    b.train.pair_dynamics = false;
    b.tokenizer.vocab_size = 48;
    ASSERT_EQ(train::run_training(b, {}).exit_code, 0);
  }
  static std::string dir_, manifest_;
};
std::string CheckpointIdentity::dir_, CheckpointIdentity::manifest_;

TEST_F(CheckpointIdentity, AnotherRunsTokenizerIsRefusedNamingBothFiles) {
  fs::create_directories(dir_ + "/mixed/checkpoints");
  fs::copy_file(dir_ + "/a/checkpoints/final.pt", dir_ + "/mixed/checkpoints/final.pt");
  fs::copy_file(dir_ + "/b/tokenizer.model", dir_ + "/mixed/tokenizer.model");
  const std::string message = error_message(
      [&] { train::load_trained_model(dir_ + "/mixed/checkpoints/final.pt", "cpu"); });
  EXPECT_THAT(message, ::testing::HasSubstr(dir_ + "/mixed/checkpoints/final.pt"));
  EXPECT_THAT(message,
              ::testing::HasSubstr("another tokenizer than '" + dir_ + "/mixed/tokenizer.model'"));
  EXPECT_EQ(train::checkpoint_tokenizer_fingerprint(dir_ + "/a/checkpoints/final.pt"),
            train::tokenizer_fingerprint(dir_ + "/a/tokenizer.model"));
  EXPECT_NO_THROW(train::load_trained_model(dir_ + "/a", "cpu"));
}

TEST_F(CheckpointIdentity, ResumeIntoANewFolderUsesTheCheckpointsTokenizer) {
  auto c = tiny_config(manifest_, dir_ + "/continued");
  c.train.max_steps = 3;
  c.train.pair_dynamics = false;
  fs::create_directories(dir_ + "/continued/checkpoints");
  std::ofstream(dir_ + "/continued/checkpoints/.step_00000004.pt.tmp-12345") << "interrupted";
  train::TrainOptions o;
  o.resume = dir_ + "/a/checkpoints/final.pt";
  ASSERT_EQ(train::run_training(c, o).exit_code, 0);
  EXPECT_EQ(read_file(dir_ + "/continued/tokenizer.model"), read_file(dir_ + "/a/tokenizer.model"));
  EXPECT_FALSE(fs::exists(dir_ + "/continued/tokenizer_corpus.txt"));  // no tokenizer was trained
  EXPECT_TRUE(
      temporary_files_in(dir_ + "/continued/checkpoints").empty());  // the stale one is gone

  // The configured tokenizer is another run's: refused, naming both, and nothing written.
  auto d = tiny_config(manifest_, dir_ + "/refused");
  d.tokenizer.model = dir_ + "/b/tokenizer.model";
  const std::string message = error_message([&] { train::run_training(d, o); });
  EXPECT_THAT(message, ::testing::HasSubstr(dir_ + "/a/checkpoints/final.pt"));
  EXPECT_THAT(message, ::testing::HasSubstr(dir_ + "/b/tokenizer.model"));
  EXPECT_FALSE(fs::exists(dir_ + "/refused"));
}

TEST_F(CheckpointIdentity, ResumeWithAnotherShapeNamesTheKeysAndWritesNothing) {
  const std::string config_before = read_file(dir_ + "/a/config.yaml");
  auto c = tiny_config(manifest_, dir_ + "/a");
  c.model.embed_dim = 32;
  c.model.text.width = 64;
  train::TrainOptions o;
  o.resume = "latest";
  const std::string message = error_message([&] { train::run_training(c, o); });
  EXPECT_THAT(message, ::testing::HasSubstr("model.embed_dim (checkpoint 16, now 32)"));
  EXPECT_THAT(message, ::testing::HasSubstr("model.text.width (checkpoint 32, now 64)"));
  EXPECT_EQ(read_file(dir_ + "/a/config.yaml"), config_before);
  // The tensors themselves: every one whose shape differs is named.
  encoders::ClipModel wider(c.model, 40, 2);
  auto loss = loss::make_contrastive_loss(train::loss_options(c));
  const std::string shapes = error_message(
      [&] { train::check_checkpoint_shapes(dir_ + "/a/checkpoints/final.pt", *wider, *loss); });
  EXPECT_THAT(shapes, ::testing::HasSubstr("this configuration [64"));
  EXPECT_THAT(shapes, ::testing::HasSubstr("model."));
}

}  // namespace
}  // namespace halo::test
