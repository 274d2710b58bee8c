// bf16 without a GPU: the tiny preset (configs/tiny.yaml) trains with train.precision=bf16 under
// CPU autocast, as on the GPU: the encoders run in bf16, the loss, parameters and optimiser
// state stay fp32; a bf16 run lowers the loss. Skipped where this LibTorch has no CPU autocast
// to bf16.
#include <cmath>
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "common/torch_compat.h"
#include "data/tokenizer.h"
#include "encoders/clip_model.h"
#include "loss/contrastive_loss.h"
#include "shapes_dataset.h"
#include "test_util.h"
#include "train/checkpoint.h"
#include "train/components.h"
#include "train/config.h"
#include "train/optimizer.h"
#include "train/trained_model.h"
#include "train/trainer.h"

namespace halo::test {
namespace {

// The tiny preset as shipped, on the generated shapes, with a batch and vocabulary that suit them.
train::Config tiny_preset(const std::string& manifest, const std::string& run_dir,
                          const std::string& precision, int64_t steps) {
  return train::load_config(
      std::string(HALO_SOURCE_DIR) + "/configs/tiny.yaml",
      {"data.train_manifest=" + manifest, "train.run_dir=" + run_dir,
       "train.precision=" + precision, "train.max_steps=" + std::to_string(steps),
       "train.batch_size=16", "tokenizer.vocab_size=40", "data.workers=1", "train.log_every=1",
       "train.checkpoint_every=1", "train.keep_checkpoints=5"});
}

TEST(Bf16Cpu, AutocastScopeRestoresTheState) {
  if (!cpu_bf16_autocast_available()) {
    GTEST_SKIP() << "LibTorch " << TORCH_VERSION << " has no CPU autocast to bf16";
  }
  const torch::Tensor a = torch::randn({4, 4});
  {
    AutocastScope outer(c10::DeviceType::CPU, true);
    EXPECT_EQ(torch::mm(a, a).scalar_type(), torch::kBFloat16);
    { AutocastScope off(c10::DeviceType::CPU, false); }  // disabled: changes nothing
    EXPECT_EQ(torch::mm(a, a).scalar_type(), torch::kBFloat16);
  }
  EXPECT_EQ(torch::mm(a, a).scalar_type(), torch::kFloat);
}

TEST(Bf16Cpu, TinyPresetStepRunsEncodersInBf16AndTheRestInFp32) {
  if (!cpu_bf16_autocast_available()) {
    GTEST_SKIP() << "LibTorch " << TORCH_VERSION << " has no CPU autocast to bf16";
  }
  const std::string dir = make_temp_dir("bf16_cpu");
  const std::string manifest = make_shapes_dataset(dir + "/data", 48, 32);

  // Two real training steps in bf16, a checkpoint after each.
  const train::Config c = tiny_preset(manifest, dir + "/bf16", "bf16", 2);
  const auto result = train::run_training(c, {});
  ASSERT_EQ(result.exit_code, 0);
  ASSERT_EQ(result.state.step, 2);
  EXPECT_TRUE(std::isfinite(result.last_loss)) << result.last_loss;
  const auto bf16_losses = logged_losses(dir + "/bf16");
  ASSERT_EQ(bf16_losses.size(), 2u);

  // The same first step in fp32 (same seed, data and tokenizer): close to, but not exactly, the
  // bf16 loss, so autocast did act in the trainer.
  train::Config c32 = tiny_preset(manifest, dir + "/fp32", "fp32", 1);
  c32.tokenizer.model = dir + "/bf16/tokenizer.model";
  ASSERT_EQ(train::run_training(c32, {}).exit_code, 0);
  const auto fp32_losses = logged_losses(dir + "/fp32");
  ASSERT_EQ(fp32_losses.size(), 1u);
  EXPECT_NE(bf16_losses[0], fp32_losses[0]);
  EXPECT_NEAR(bf16_losses[0], fp32_losses[0], 0.05 * std::abs(fp32_losses[0]));

  // The model and optimiser after step 1, from its checkpoint: fp32 state.
  const auto tokenizer = data::Tokenizer::load(dir + "/bf16/tokenizer.model");
  encoders::ClipModel model(c.model, tokenizer.vocab_size(), tokenizer.eos_id());
  auto loss_fn = loss::make_contrastive_loss(train::loss_options(c));
  auto optimizer = train::make_optimizer(*model, *loss_fn, c.optim);
  train::load_checkpoint(dir + "/bf16/checkpoints/step_00000001.pt", *model, *loss_fn,
                         optimizer.get());
  int64_t adam_states = 0;
  for (const auto& entry : optimizer->state()) {
    const auto& s = static_cast<const torch::optim::AdamWParamState&>(*entry.second);
    EXPECT_EQ(s.exp_avg().scalar_type(), torch::kFloat);
    EXPECT_EQ(s.exp_avg_sq().scalar_type(), torch::kFloat);
    ++adam_states;
  }
  EXPECT_GT(adam_states, 0);

  // Step 2 changed the fp32 parameters (the final checkpoint against step 1's).
  const train::TrainedModel final_model =
      train::load_trained_model(dir + "/bf16/checkpoints/final.pt", "cpu");
  const auto final_parameters = final_model.model->named_parameters();
  int64_t changed = 0, total = 0;
  for (const auto& p : model->named_parameters()) {
    ASSERT_NE(final_parameters.find(p.key()), nullptr) << p.key();
    const torch::Tensor after = final_parameters[p.key()].detach();
    EXPECT_EQ(p.value().scalar_type(), torch::kFloat) << p.key();
    EXPECT_EQ(after.scalar_type(), torch::kFloat) << p.key();
    EXPECT_TRUE(after.isfinite().all().item<bool>()) << p.key();
    changed += after.equal(p.value().detach()) ? 0 : 1;
    ++total;
  }
  EXPECT_GT(changed, total / 2) << changed << " of " << total << " parameters changed";

  // One step by hand, as the trainer's train_step: the encoders' outputs are bf16 inside the
  // autocast scope; the loss takes them and computes in fp32; the gradients are fp32.
  const torch::Tensor images = torch::randn({8, 3, 32, 32});
  const torch::Tensor tokens =
      tokenizer.encode({"a red circle", "a blue square", "a green triangle", "a red square",
                        "a blue circle", "a green square", "a red triangle", "a blue triangle"},
                       c.model.text.context_length);
  torch::Tensor image_emb, text_emb;
  {
    AutocastScope autocast(c10::DeviceType::CPU, true);
    image_emb = model->encode_image(images);
    text_emb = model->encode_text(tokens);
  }
  EXPECT_EQ(image_emb.scalar_type(), torch::kBFloat16);
  EXPECT_EQ(text_emb.scalar_type(), torch::kBFloat16);
  const auto out = loss_fn->forward(loss::PairBatch::local(image_emb, text_emb));
  EXPECT_EQ(out.total.scalar_type(), torch::kFloat);
  for (const auto& part : out.parts)
    EXPECT_EQ(part.second.scalar_type(), torch::kFloat) << part.first;
  EXPECT_TRUE(std::isfinite(out.total.item<double>()));
  optimizer->zero_grad();
  out.total.backward();
  for (const auto& p : model->named_parameters()) {
    if (p.value().grad().defined()) {
      EXPECT_EQ(p.value().grad().scalar_type(), torch::kFloat) << p.key();
    }
  }
}

// Training in bf16 lowers the loss: the small model and run of Train.TinyRunLowersTheLoss...
// (tests/test_train.cpp), 40 steps, with the same criterion (the mean of the last three logged
// losses at least 0.5 below the mean of the first three).
TEST(Bf16Cpu, RunLowersTheLoss) {
  if (!cpu_bf16_autocast_available()) {
    GTEST_SKIP() << "LibTorch " << TORCH_VERSION << " has no CPU autocast to bf16";
  }
  const std::string dir = make_temp_dir("bf16_cpu_learns");
  const std::string manifest = make_shapes_dataset(dir + "/data", 64);
  const train::Config c = train::parse_config(
      "model: {embed_dim: 16, image: {image_size: 16, patch_size: 4, width: 32, layers: 1, "
      "heads: 2}, text: {context_length: 8, width: 32, layers: 1, heads: 2}}\n"
      "data: {workers: 2, prefetch_batches: 2}\n"
      "tokenizer: {vocab_size: 40}\n"
      "optim: {lr: 3.0e-3, warmup_steps: 2, weight_decay: 0.01}\n"
      "train: {batch_size: 16, epochs: 100, log_every: 1, checkpoint_every: 40, seed: 5, "
      "max_steps: 40, precision: bf16}\n",
      {"data.train_manifest=" + manifest, "train.run_dir=" + dir + "/run"});
  const auto result = train::run_training(c, {});
  ASSERT_EQ(result.exit_code, 0);
  const auto losses = logged_losses(dir + "/run");
  ASSERT_EQ(losses.size(), 40u);
  const double first = (losses[0] + losses[1] + losses[2]) / 3,
               last = (losses[37] + losses[38] + losses[39]) / 3;
  EXPECT_LT(last, first - 0.5) << "first " << first << ", last " << last;
}

}  // namespace
}  // namespace halo::test
