// Finite-difference checks, in double precision, of the analytic gradients of every loss and
// of the shifted distance operation's hand-written backward. Self-distillation targets are a
// stop-gradient by definition, so in distill mode the finite differences hold them fixed.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "loss/baselines.h"
#include "loss/halo_clip_loss.h"
#include "loss/halo_loss.h"
#include "loss/halo_terms.h"
#include "loss/shifted_distance.h"
#include "test_util.h"

namespace halo::test {
namespace {

using Inputs = std::vector<torch::Tensor>;
using Fn = std::function<torch::Tensor(const Inputs&)>;
constexpr double kGradRtol = 1e-6, kGradAtol = 1e-8;

void expect_gradients_match(const Fn& f, const Inputs& inputs, const Fn& fd_f = nullptr) {
  const auto analytic = autograd_grads(f, inputs);
  const auto numeric = finite_difference_grads(fd_f ? fd_f : f, inputs);
  for (size_t i = 0; i < inputs.size(); ++i) {
    EXPECT_TRUE(all_close(analytic[i], numeric[i], kGradRtol, kGradAtol)) << "input " << i;
  }
}

torch::Tensor rand64(std::vector<int64_t> shape) {
  return torch::randn(shape, torch::kDouble);
}

TEST(GradCheck, ShiftedDistance) {
  torch::manual_seed(1);
  // Weight the output so that every entry of S matters differently.
  const torch::Tensor w = rand64({5, 7});
  Fn f = [&](const Inputs& in) { return (loss::shifted_distance(in[0], in[1], in[2]) * w).sum(); };
  expect_gradients_match(f, {rand64({5, 3}), rand64({7, 3}), torch::tensor(1.7, torch::kDouble)});
}

TEST(GradCheck, BatchHaloLabelSmoothing) {
  torch::manual_seed(2);
  loss::HaloClipOptions opt;
  opt.embed_dim = 4, opt.num_candidates = 6, opt.label_smoothing = 0.1, opt.distill = false;
  const double b = loss::abstain_bias(4, 6, 0.1);
  Fn f = [&](const Inputs& in) {
    return loss::halo_clip_loss(loss::PairBatch::local(in[0], in[1]), in[2], b, opt).total;
  };
  const torch::Tensor image = rand64({6, 4});
  expect_gradients_match(
      f, {image, 0.6 * image + rand64({6, 4}), torch::tensor({1.3}, torch::kDouble)});
}

TEST(GradCheck, BatchHaloDistillWithTargetsHeldFixed) {
  torch::manual_seed(3);
  const int64_t N = 5, D = 4;
  const double eps = 0.2, b = loss::abstain_bias(D, N, eps);
  loss::HaloClipOptions opt;
  opt.embed_dim = D, opt.num_candidates = N, opt.label_smoothing = eps, opt.distill = true;
  const torch::Tensor image = rand64({N, D}), text = 0.5 * image + rand64({N, D});
  const torch::Tensor gamma_raw = torch::tensor({0.8}, torch::kDouble);
  Fn f = [&](const Inputs& in) {
    return loss::halo_clip_loss(loss::PairBatch::local(in[0], in[1]), in[2], b, opt).total;
  };
  // The same loss with both directions' targets frozen at the starting point.
  const torch::Tensor cols = torch::arange(N);
  auto targets_at = [&](const torch::Tensor& q, const torch::Tensor& c) {
    const torch::Tensor g = loss::gamma_from_raw(gamma_raw, torch::kDouble);
    return loss::distill_targets(loss::shifted_distance(q, c, g), g, q, cols, eps);
  };
  const torch::Tensor t_i2t = targets_at(image, text), t_t2i = targets_at(text, image);
  Fn frozen = [&](const Inputs& in) {
    const torch::Tensor g = loss::gamma_from_raw(in[2], torch::kDouble);
    const torch::Tensor ce_i2t =
        loss::sink_cross_entropy(loss::shifted_distance(in[0], in[1], g), b, t_i2t);
    const torch::Tensor ce_t2i =
        loss::sink_cross_entropy(loss::shifted_distance(in[1], in[0], g), b, t_t2i);
    return 0.5 * (ce_i2t + ce_t2i) + loss::radial_nll((in[0] - in[1]).pow(2).mean(1), D);
  };
  EXPECT_NEAR(f({image, text, gamma_raw}).item<double>(),
              frozen({image, text, gamma_raw}).item<double>(), 1e-12);
  expect_gradients_match(f, {image, text, gamma_raw}, frozen);
}

TEST(GradCheck, ClassificationHaloBothTargetModes) {
  torch::manual_seed(4);
  const int64_t N = 6, K = 4, D = 3;
  const torch::Tensor target = torch::tensor({0, 1, 2, 3, 1, 0}, torch::kLong);
  const torch::Tensor pos = rand64({N, D}), raw = rand64({K, D});
  const torch::Tensor cen = raw - raw.mean(0, true),
                      gamma_raw = torch::tensor({1.1}, torch::kDouble);

  auto opt = loss::HaloLossOptions(D, K).distill(false).label_smoothing(0.1);
  const double b = loss::abstain_bias(D, K, 0.1);
  Fn smooth = [&](const Inputs& in) {
    return loss::halo_loss(in[0], target, in[1], in[2], b, opt).loss;
  };
  expect_gradients_match(smooth, {pos, cen, gamma_raw});

  opt.distill(true);
  Fn distill = [&](const Inputs& in) {
    return loss::halo_loss(in[0], target, in[1], in[2], b, opt).loss;
  };
  const torch::Tensor g0 = loss::gamma_from_raw(gamma_raw, torch::kDouble);
  const torch::Tensor frozen_t =
      loss::distill_targets(loss::shifted_distance(pos, cen, g0), g0, pos, target, 0.1);
  Fn frozen = [&](const Inputs& in) {
    const torch::Tensor g = loss::gamma_from_raw(in[2], torch::kDouble);
    return loss::sink_cross_entropy(loss::shifted_distance(in[0], in[1], g), b, frozen_t) +
           loss::radial_nll((in[0] - in[1].index_select(0, target)).pow(2).mean(1), D);
  };
  expect_gradients_match(distill, {pos, cen, gamma_raw}, frozen);
}

TEST(GradCheck, InfoNce) {
  torch::manual_seed(5);
  Fn f = [&](const Inputs& in) {
    return loss::infonce_loss(loss::PairBatch::local(in[0], in[1]), in[2]).total;
  };
  expect_gradients_match(f, {rand64({5, 4}), rand64({5, 4}), torch::tensor({1.2}, torch::kDouble)});
}

TEST(GradCheck, SigLip) {
  torch::manual_seed(6);
  Fn f = [&](const Inputs& in) {
    return loss::siglip_loss(loss::PairBatch::local(in[0], in[1]), in[2], in[3]).total;
  };
  expect_gradients_match(f, {rand64({5, 4}), rand64({5, 4}), torch::tensor({0.9}, torch::kDouble),
                             torch::tensor({-1.5}, torch::kDouble)});
}

}  // namespace
}  // namespace halo::test
