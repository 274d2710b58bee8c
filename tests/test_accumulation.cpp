// Exact gradient accumulation (train.accum_steps, train/step.h): one optimiser step in K
// micro-batches gives the loss, every parameter gradient and the centring's running means of
// the K = 1 step to 1e-5 relative, for HALO (dense and tiled, with and without partner dropout:
// its rows are drawn by global row, so two ranks drop the pairs one process does), InfoNCE and
// SigLIP, in one
// process (K = 2, 3 with uneven micro-batches, 4) and with two ranks (K = 2 on each rank's
// share). The ranks are this test binary started again by dist::launch, running only
// AccumulationWorker.* (which does nothing when not started that way).
#include <algorithm>
#include <cmath>
#include <cstdlib>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "dist/grad_allreduce.h"
#include "dist/launcher.h"
#include "dist/process_group.h"
#include "loss/contrastive_loss.h"
#include "test_util.h"
#include "train/components.h"
#include "train/config.h"
#include "train/optimizer.h"
#include "train/step.h"

namespace halo::test {
namespace {

constexpr int64_t kBatch = 16, kVocab = 40, kEos = 39, kContext = 8, kImage = 16;
using ::testing::HasSubstr;
const char* kAccumOutVar = "HALO_TEST_ACCUM_OUT";

struct LossCase {
  std::string name, loss, implementation;
  double partner_drop = 0;  // loss.sink_partner_drop
};
const std::vector<LossCase> kCases{{"halo_dense", "halo", "dense"},
                                   {"halo_tiled", "halo", "tiled"},
                                   {"halo_dense_partner_drop", "halo", "dense", 0.4},
                                   {"halo_tiled_partner_drop", "halo", "tiled", 0.4},
                                   {"infonce", "infonce", "dense"},
                                   {"siglip", "siglip", "dense"}};

train::Config case_config(const LossCase& k) {
  return train::parse_config(
      "model: {embed_dim: 16, center_embeddings: true,"
      "        image: {image_size: 16, patch_size: 4, width: 32, layers: 1, heads: 2},"
      "        text: {context_length: 8, width: 32, layers: 1, heads: 2}}\n"
      "data: {train_manifest: unused.tsv}\n"
      "optim: {grad_clip: 0}\n"
      "train: {batch_size: 16}\n",
      {"loss.name=" + k.loss, "loss.implementation=" + k.implementation,
       "loss.sink_partner_drop=" + std::to_string(k.partner_drop)});
}

// One training step (in float64, so that the comparison sees the algorithm, not the rounding of
// sums taken in another order) on this rank's share of a fixed global batch with `accum`
// micro-batches: [the loss averaged over ranks, every parameter's gradient (model, then loss),
// every buffer].
std::vector<torch::Tensor> step_results(const LossCase& k, int64_t accum,
                                        dist::ProcessGroup& group) {
  const train::Config c = case_config(k);
  torch::manual_seed(3);
  const torch::Tensor images = torch::randn({kBatch, 3, kImage, kImage}, torch::kDouble);
  torch::Tensor tokens = torch::randint(1, kEos, {kBatch, kContext}, torch::kLong);
  tokens.index_put_({torch::arange(kBatch), torch::randint(1, kContext, {kBatch}, torch::kLong)},
                    kEos);
  encoders::ClipModel model(c.model, kVocab, kEos);
  loss::ContrastiveLossOptions options = train::loss_options(c);
  options.tile_size = 3;  // several tiles, the last one partial
  const auto loss = loss::make_contrastive_loss(options);
  model->to(torch::kDouble);
  loss->to(torch::kDouble);
  const auto optimizer = train::make_optimizer(*model, *loss, c.optim);
  std::vector<torch::Tensor> params = model->parameters();
  for (const auto& p : loss->parameters()) params.push_back(p);
  dist::broadcast_parameters(params, group);
  dist::GradientAverager grads(params, group, c.dist.bucket_mb);

  const int64_t n = kBatch / group.size(), first = group.rank() * n;
  const train::StepResult out =
      train::train_step({*model, *loss, *optimizer, params, grads, group},
                        {accum, false, c.optim.grad_clip, c.loss.sink_partner_drop, 7},
                        images.narrow(0, first, n), tokens.narrow(0, first, n), {}, /*step=*/5);
  std::vector<torch::Tensor> result{
      torch::tensor(dist::average(group, {out.loss.total.item<double>()})[0])};
  for (const auto& p : params)
    result.push_back(p.grad().defined() ? p.grad().clone() : torch::zeros_like(p));
  for (const auto& b : model->buffers()) result.push_back(b.clone());
  return result;
}

// What step_results() returns, by name.
std::vector<std::string> result_names() {
  const train::Config c = case_config(kCases[0]);
  encoders::ClipModel model(c.model, kVocab, kEos);
  std::vector<std::string> names{"loss"};
  for (const auto& p : model->named_parameters()) names.push_back("gradient of " + p.key());
  names.push_back("gradient of the loss's scalars");
  for (const auto& b : model->named_buffers()) names.push_back(b.key());
  return names;
}

// Each tensor of `got` equals `want`'s to 1e-5 of its norm, plus 1e-12 of the norm of all of
// them: the float64 rounding of a sum taken in another order. The floor matters only for the
// gradients that are zero in exact arithmetic (the biases of the layer norms before the
// centring, which removes any constant offset), where a relative error is not defined.
void expect_same_step(const std::vector<torch::Tensor>& got,
                      const std::vector<torch::Tensor>& want) {
  ASSERT_EQ(got.size(), want.size());
  static const std::vector<std::string> names = result_names();
  double total = 0;
  for (const auto& t : want) total += t.pow(2).sum().item<double>();
  for (size_t i = 0; i < got.size(); ++i) {
    const double scale = want[i].norm().item<double>();
    const double diff = (got[i] - want[i]).norm().item<double>();
    EXPECT_LE(diff, 1e-5 * scale + 1e-12 * std::sqrt(total))
        << (i < names.size() ? names[i] : "tensor " + std::to_string(i)) << ": |difference| "
        << diff << ", |K = 1 value| " << scale;
  }
}

TEST(Accumulation, MicroBatchesGiveTheStepOfTheWholeBatch) {
  const auto group = dist::make_process_group(dist::DistEnv{}, {}, torch::kCPU);
  for (const auto& k : kCases) {
    const auto whole = step_results(k, 1, *group);
    // The gradients are not trivially zero: the comparison below can fail.
    ASSERT_GT(whole.at(1).norm().item<double>(), 0) << k.name;
    for (const int64_t accum : {2, 3, 4}) {  // 3: micro-batches of 5, 5 and 6 pairs
      SCOPED_TRACE(k.name + ", accum_steps " + std::to_string(accum));
      expect_same_step(step_results(k, accum, *group), whole);
    }
  }
}

TEST(AccumulationWorker, WritesBothSteps) {
  const char* out = std::getenv(kAccumOutVar);
  if (out == nullptr) GTEST_SKIP() << "a rank of Accumulation.TwoRanks...; does nothing on its own";
  const auto group = dist::make_process_group(dist::read_env(), {"gloo", 30, 30}, torch::kCPU);
  for (const auto& k : kCases) {
    for (const int64_t accum : {1, 2}) {
      torch::save(step_results(k, accum, *group), std::string(out) + "/" + k.name + "_k" +
                                                      std::to_string(accum) + "_rank" +
                                                      std::to_string(group->rank()) + ".pt");
    }
  }
}

TEST(Accumulation, TwoRanksWithMicroBatchesGiveTheStepOfTheWholeBatch) {
  const std::string dir = make_temp_dir("accumulation_two_ranks");
  dist::LaunchOptions o;
  o.nproc_per_node = 2;
  o.standalone = true;
  o.grace_period_s = 2;
  o.program = "/proc/self/exe";
  o.args = {"--gtest_filter=AccumulationWorker.WritesBothSteps"};
  setenv(kAccumOutVar, dir.c_str(), 1);
  const int status = dist::launch(o);
  unsetenv(kAccumOutVar);
  ASSERT_EQ(status, 0);
  const auto one_process = dist::make_process_group(dist::DistEnv{}, {}, torch::kCPU);
  for (const auto& k : kCases) {
    // One process on the whole batch: what both ranks together must compute, centring included
    // (it subtracts the global batch's mean, so the running means agree too).
    const auto single = step_results(k, 1, *one_process);
    for (int rank = 0; rank < 2; ++rank) {
      SCOPED_TRACE(k.name + ", rank " + std::to_string(rank));
      const std::string prefix = dir + "/" + k.name + "_k";
      std::vector<torch::Tensor> whole, micro;
      torch::load(whole, prefix + "1_rank" + std::to_string(rank) + ".pt");
      torch::load(micro, prefix + "2_rank" + std::to_string(rank) + ".pt");
      ASSERT_GT(whole.at(1).norm().item<double>(), 0);
      expect_same_step(micro, whole);
      expect_same_step(whole, single);
    }
  }
}

TEST(Accumulation, ReplayedGeneratorsDrawTheSameNumbers) {
  const train::RngSnapshot before(torch::kCPU);
  const torch::Tensor first = torch::rand({5});
  before.restore();
  EXPECT_TRUE(torch::equal(torch::rand({5}), first));
  EXPECT_FALSE(torch::equal(torch::rand({5}), first));  // and the stream goes on from there
}

TEST(Accumulation, StepsThatDoNotDivideTheBatchAreRefusedNamingTheKeys) {
  EXPECT_THAT(
      error_message([] { train::parse_config("train: {batch_size: 16, accum_steps: 3}\n"); }),
      HasSubstr("train.accum_steps must be >= 1 and divide train.batch_size (16), got 3"));
  train::Config c = case_config(kCases[0]);
  c.train.accum_steps = 4;  // 16 / 8 processes = 2 pairs each
  EXPECT_THAT(error_message([&] { train::loader_options(c, 0, 8); }),
              HasSubstr("train.accum_steps (4) must divide each process's share of "
                        "train.batch_size (16 / WORLD_SIZE 8 = 2)"));
}

}  // namespace
}  // namespace halo::test
