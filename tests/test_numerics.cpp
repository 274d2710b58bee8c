// Numerics of the losses, as documented in docs/loss.md: half-precision inputs are computed in
// fp32; embeddings with norms around 1e3 give finite values that agree with an fp64 run; a pair
// with x == t (r^2 = 0) gives a finite loss with r^2 floored at kMinRadiusSq.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "loss/contrastive_loss.h"
#include "loss/halo_clip_loss.h"
#include "loss/halo_loss.h"
#include "loss/halo_terms.h"
#include "test_util.h"

namespace halo::test {
namespace {

loss::ContrastiveLossOptions halo_options(int64_t D, int64_t N) {
  loss::ContrastiveLossOptions o;
  o.embed_dim = D;
  o.num_candidates = N;
  return o;
}

struct Outcome {
  torch::Tensor loss, grad_image, grad_text;
};

Outcome loss_outcome(loss::ContrastiveLoss& fn, const torch::Tensor& image0,
                     const torch::Tensor& text0) {
  torch::Tensor image = image0.clone().requires_grad_(true),
                text = text0.clone().requires_grad_(true);
  torch::Tensor total = fn.forward(loss::PairBatch::local(image, text)).total;
  total.backward();
  return {total.detach(), image.grad(), text.grad()};
}

TEST(Numerics, HalfPrecisionInputsAreComputedInFloat32) {
  torch::manual_seed(8);
  const torch::Tensor image = torch::randn({16, 32}), text = 0.5 * image + torch::randn({16, 32});
  for (const std::string name : {"halo", "infonce", "siglip"}) {
    for (auto dtype : {torch::kBFloat16, torch::kHalf}) {
      SCOPED_TRACE(name + " " + std::string(c10::toString(dtype)));
      auto o = halo_options(32, 16);
      o.name = name;
      auto fn = loss::make_contrastive_loss(o);
      // The half inputs, and the same (rounded) values given as fp32.
      const torch::Tensor image_h = image.to(dtype), text_h = text.to(dtype);
      const Outcome half = loss_outcome(*fn, image_h, text_h);
      const Outcome single = loss_outcome(*fn, image_h.to(torch::kFloat), text_h.to(torch::kFloat));
      EXPECT_EQ(half.loss.scalar_type(), torch::kFloat);
      EXPECT_EQ(half.loss.item<float>(), single.loss.item<float>());
      EXPECT_EQ(half.grad_image.scalar_type(), dtype);
      EXPECT_TRUE(all_close(half.grad_image, single.grad_image.to(dtype), 0, 0));
    }
  }
  // Pair scores too.
  auto fn = loss::make_contrastive_loss(halo_options(32, 16));
  torch::NoGradGuard no_grad;
  const torch::Tensor s = fn->mismatch_score(image.to(torch::kBFloat16), text.to(torch::kBFloat16));
  EXPECT_EQ(s.scalar_type(), torch::kFloat);
}

TEST(Numerics, LargeNormsStayFiniteAndMatchDouble) {
  // Embeddings of norm ~1e3 (D = 64): shifted logits of order gamma * ||x||^2 / D ~ 3e5.
  torch::manual_seed(9);
  const int64_t N = 32, D = 64;
  const torch::Tensor dir = torch::randn({N, D}, torch::kDouble);
  const torch::Tensor image = 1e3 * dir / dir.norm(2, 1, true);
  const torch::Tensor text = image + 30.0 * torch::randn({N, D}, torch::kDouble);
  auto fn = loss::make_contrastive_loss(halo_options(D, N));
  const Outcome single = loss_outcome(*fn, image.to(torch::kFloat), text.to(torch::kFloat));
  fn->to(torch::kDouble);
  const Outcome exact = loss_outcome(*fn, image, text);
  EXPECT_TRUE(std::isfinite(single.loss.item<double>()));
  // fp32 rounding of logits of size ~3e5 is ~0.03 in absolute terms: the loss (dominated by the
  // radial term, ~1e4 here) keeps about 6 significant digits, gradients about 4.
  EXPECT_TRUE(all_close(single.loss, exact.loss, 1e-5, 0));
  const double gscale = exact.grad_image.abs().max().item<double>();
  EXPECT_TRUE(all_close(single.grad_image, exact.grad_image, 1e-3, 1e-4 * gscale));
  EXPECT_TRUE(all_close(single.grad_text, exact.grad_text, 1e-3, 1e-4 * gscale));
  torch::NoGradGuard no_grad;
  const torch::Tensor s = fn->mismatch_score(image, text);
  EXPECT_TRUE(((s >= 0) & (s <= 1)).all().item<bool>());
}

TEST(Numerics, IdenticalPairHasFiniteLossAndGradient) {
  torch::manual_seed(10);
  const int64_t N = 6, D = 8;
  torch::Tensor image = torch::randn({N, D}), text = torch::randn({N, D});
  text[2] = image[2];  // r^2 = 0 for pair 2
  auto fn = loss::make_contrastive_loss(halo_options(D, N));
  const Outcome r = loss_outcome(*fn, image, text);
  EXPECT_TRUE(std::isfinite(r.loss.item<double>()));
  EXPECT_TRUE(torch::isfinite(r.grad_image).all().item<bool>());
  EXPECT_TRUE(torch::isfinite(r.grad_text).all().item<bool>());
  // The radial term of that pair is the value at the floor.
  const torch::Tensor r_sq = (image - text).pow(2).mean(1);
  EXPECT_EQ(r_sq[2].item<float>(), 0.0f);
  const double floor = loss::kMinRadiusSq;
  const double at_floor = -((0.5 - 1.0 / D) * std::log(floor) - 0.5 * floor);
  const torch::Tensor radial = loss::radial_nll(r_sq, D);
  const torch::Tensor others = torch::cat({r_sq.slice(0, 0, 2), r_sq.slice(0, 3)});
  const double expected = (at_floor + loss::radial_nll(others, D).item<double>() * (N - 1)) / N;
  EXPECT_NEAR(radial.item<double>(), expected, 1e-5 * std::abs(expected));
}

TEST(Numerics, ClassificationTrueLogitsAreClampedAtZero) {
  // A point sitting on its centroid has true logit 0 against it, never a positive rounding error.
  const torch::Tensor cen = torch::tensor({{1000.0f, -1000.0f}, {-1000.0f, 1000.0f}});
  loss::HaloLoss halo(loss::HaloLossOptions(2, 2));
  auto out = halo(cen.clone(), torch::tensor({0, 1}), cen);
  EXPECT_TRUE(std::isfinite(out.loss.item<double>()));
  EXPECT_LE(out.logits_true.max().item<double>(), 0.0);
}

}  // namespace
}  // namespace halo::test
