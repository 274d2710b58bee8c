// The HALO options against memorisation (docs/loss.md): the radial weight, bootstrapping onto
// the sink (from the model or a given per-row share; InfoNCE's row weights from a share) and
// the log-space temperature, each checked against an independent formulation.
#include <cmath>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "loss/baselines.h"
#include "loss/contrastive_loss.h"
#include "loss/halo_clip_loss.h"
#include "loss/halo_terms.h"
#include "loss/loss_config.h"
#include "loss/partner_drop.h"
#include "loss/shifted_distance.h"
#include "test_util.h"

namespace halo::test {
namespace {

using ::testing::HasSubstr;

constexpr int64_t kN = 12, kD = 16;

struct LossInputs {
  torch::Tensor image, text, gamma_raw;
  double b;
};

LossInputs make_inputs(double noise) {
  torch::manual_seed(21);
  torch::Tensor image = torch::randn({kN, kD}, torch::kDouble);
  torch::Tensor text = image + noise * torch::randn({kN, kD}, torch::kDouble);
  // Half of the pairs mismatched, so that some rows have a large abstain probability.
  text.slice(0, 0, kN / 2) = torch::randn({kN / 2, kD}, torch::kDouble) * 2.0;
  return {image.requires_grad_(true), text.requires_grad_(true),
          torch::full({1}, loss::initial_gamma_raw(kD), torch::kDouble).requires_grad_(true),
          loss::abstain_bias(kD, kN, 0.1)};
}

loss::HaloClipOptions halo_clip_options(double radial_weight, double bootstrap, bool distill) {
  loss::HaloClipOptions o;
  o.embed_dim = kD;
  o.num_candidates = kN;
  o.distill = distill;
  o.radial_weight = radial_weight;
  o.sink_bootstrap = bootstrap;
  return o;
}

// One direction written as a plain soft-target cross-entropy over K + 1 columns (the sink
// last), with the target mass beta * a_i moved onto the sink.
torch::Tensor explicit_direction(const torch::Tensor& q, const torch::Tensor& c,
                                 const torch::Tensor& gamma, double b, double beta, bool distill,
                                 torch::Tensor* abstain) {
  const torch::Tensor S = loss::shifted_distance(q, c, gamma);
  const torch::Tensor eye = torch::arange(kN);
  torch::Tensor t =
      distill ? loss::distill_targets(S, gamma, q, eye, 0.1) : loss::smoothing_targets(S, eye, 0.1);
  const torch::Tensor a = torch::sigmoid(b - S.diagonal()).detach();
  *abstain = a;
  const torch::Tensor m = (beta * a).unsqueeze(1);
  const torch::Tensor targets = torch::cat({(1.0 - m) * t, m}, 1);
  const torch::Tensor logits = torch::cat({S, torch::full({kN, 1}, b, S.options())}, 1);
  return -(targets * torch::log_softmax(logits, 1)).sum(1).mean();
}

torch::Tensor explicit_total(const LossInputs& in, double radial_weight, double beta,
                             bool distill) {
  const torch::Tensor gamma = torch::softplus(in.gamma_raw).reshape({});
  torch::Tensor a_i2t, a_t2i;
  const torch::Tensor ce_i2t =
      explicit_direction(in.image, in.text, gamma, in.b, beta, distill, &a_i2t);
  const torch::Tensor ce_t2i =
      explicit_direction(in.text, in.image, gamma, in.b, beta, distill, &a_t2i);
  const torch::Tensor r_sq = (in.image - in.text).pow(2).mean(1);
  const torch::Tensor nll = -((0.5 - 1.0 / kD) * torch::log(r_sq) - 0.5 * r_sq);
  const torch::Tensor weights = 1.0 - beta * 0.5 * (a_i2t + a_t2i);
  return 0.5 * (ce_i2t + ce_t2i) + radial_weight * (weights * nll).mean();
}

std::vector<torch::Tensor> grads(const torch::Tensor& total, const LossInputs& in) {
  return torch::autograd::grad({total}, {in.image, in.text, in.gamma_raw});
}

TEST(HaloOptions, RadialWeightAndSinkBootstrapMatchAnExplicitCrossEntropy) {
  for (const bool distill : {true, false}) {
    for (const double w : {0.0, 0.3, 1.0}) {
      for (const double beta : {0.0, 0.5, 0.9}) {
        SCOPED_TRACE("distill " + std::to_string(distill) + " radial_weight " + std::to_string(w) +
                     " sink_bootstrap " + std::to_string(beta));
        const LossInputs in = make_inputs(0.3);
        const torch::Tensor got =
            loss::halo_clip_loss(loss::PairBatch::local(in.image, in.text), in.gamma_raw, in.b,
                                 halo_clip_options(w, beta, distill))
                .total;
        const torch::Tensor want = explicit_total(in, w, beta, distill);
        EXPECT_NEAR(got.item<double>(), want.item<double>(), 1e-10);
        const auto g_got = grads(got, in), g_want = grads(want, in);
        for (size_t k = 0; k < g_got.size(); ++k) {
          EXPECT_TRUE(torch::allclose(g_got[k], g_want[k], 1e-9, 1e-11)) << "gradient " << k;
        }
      }
    }
  }
}

// The trainer's share from the pairs' history (batch.sink_share) replaces beta * a_i, whatever
// beta is. Checked against the explicit cross-entropy with the share as the sink's target mass.
TEST(HaloOptions, AGivenSinkShareReplacesTheModelsShare) {
  for (const bool distill : {true, false}) {
    for (const double beta : {0.0, 0.5}) {
      SCOPED_TRACE("distill " + std::to_string(distill) + " sink_bootstrap " +
                   std::to_string(beta));
      const LossInputs in = make_inputs(0.3);
      const torch::Tensor gamma = torch::softplus(in.gamma_raw).reshape({});
      const torch::Tensor share = torch::linspace(0.0, 0.9, kN, torch::kDouble);
      auto direction = [&](const torch::Tensor& q, const torch::Tensor& c) {
        const torch::Tensor S = loss::shifted_distance(q, c, gamma);
        const torch::Tensor eye = torch::arange(kN);
        const torch::Tensor t = distill ? loss::distill_targets(S, gamma, q, eye, 0.1)
                                        : loss::smoothing_targets(S, eye, 0.1);
        const torch::Tensor m = share.unsqueeze(1);
        const torch::Tensor targets = torch::cat({(1.0 - m) * t, m}, 1);
        const torch::Tensor logits = torch::cat({S, torch::full({kN, 1}, in.b, S.options())}, 1);
        return -(targets * torch::log_softmax(logits, 1)).sum(1).mean();
      };
      const torch::Tensor ce = 0.5 * (direction(in.image, in.text) + direction(in.text, in.image));
      const torch::Tensor r_sq = (in.image - in.text).pow(2).mean(1);
      const torch::Tensor nll = -((0.5 - 1.0 / kD) * torch::log(r_sq) - 0.5 * r_sq);
      const torch::Tensor want = ce + ((1.0 - share) * nll).mean();

      loss::PairBatch batch = loss::PairBatch::local(in.image, in.text);
      batch.sink_share = share;
      const torch::Tensor got =
          loss::halo_clip_loss(batch, in.gamma_raw, in.b, halo_clip_options(1.0, beta, distill))
              .total;
      EXPECT_NEAR(got.item<double>(), want.item<double>(), 1e-10);
      const auto g_got = grads(got, in), g_want = grads(want, in);
      for (size_t k = 0; k < g_got.size(); ++k) {
        EXPECT_TRUE(torch::allclose(g_got[k], g_want[k], 1e-9, 1e-11)) << "gradient " << k;
      }
      // And the share differs from the model's: the loss is not the plain bootstrap's.
      const torch::Tensor plain =
          loss::halo_clip_loss(loss::PairBatch::local(in.image, in.text), in.gamma_raw, in.b,
                               halo_clip_options(1.0, beta, distill))
              .total;
      EXPECT_GT(std::abs(plain.item<double>() - got.item<double>()), 1e-3);
    }
  }
}

TEST(HaloOptions, ABadSinkShareIsAClearError) {
  const LossInputs in = make_inputs(0.3);
  auto run = [&](const torch::Tensor& share, loss::LossImplementation implementation) {
    loss::PairBatch batch = loss::PairBatch::local(in.image, in.text);
    batch.sink_share = share;
    loss::HaloClipOptions o = halo_clip_options(1.0, 0.0, true);
    o.implementation = loss::loss_implementation_name(implementation);
    loss::halo_clip_loss(batch, in.gamma_raw, in.b, o);
  };
  const auto dense = loss::LossImplementation::kDense;
  EXPECT_THAT(error_message([&] { run(torch::zeros({kN - 1}, torch::kDouble), dense); }),
              HasSubstr("one floating-point value per row (12)"));
  EXPECT_THAT(error_message([&] { run(torch::full({kN}, 1.0, torch::kDouble), dense); }),
              HasSubstr("in [0, 1)"));
  EXPECT_THAT(error_message([&] { run(torch::full({kN}, -0.1, torch::kDouble), dense); }),
              HasSubstr("in [0, 1)"));
  EXPECT_THAT(error_message([&] { run(torch::full({kN}, std::nan(""), torch::kDouble), dense); }),
              HasSubstr("in [0, 1)"));
  EXPECT_THAT(error_message([&] {
                run(torch::zeros({kN, 1}, torch::kDouble), dense);
              }),
              HasSubstr("one floating-point value per row"));
  EXPECT_THAT(error_message([&] { run(torch::zeros({kN}, torch::kLong), dense); }),
              HasSubstr("one floating-point value per row"));
  EXPECT_THAT(error_message([&] {
                run(torch::zeros({kN}, torch::kDouble), loss::LossImplementation::kTiled);
              }),
              HasSubstr("dense loss only"));
}

// InfoNCE has no sink: a given share weights the row's cross-entropies by 1 - share.
TEST(SinkShare, InfoNceWeightsEachRowByOneMinusItsShare) {
  const LossInputs in = make_inputs(0.3);
  const torch::Tensor logit_scale = torch::full({1}, 2.0, torch::kDouble);
  const torch::Tensor share = torch::linspace(0.0, 0.9, kN, torch::kDouble);
  auto unit = [](const torch::Tensor& e) { return e / e.norm(2, 1, true); };
  const torch::Tensor logits = std::exp(2.0) * unit(in.image).matmul(unit(in.text).t());
  const torch::Tensor ce_i2t = -torch::log_softmax(logits, 1).diagonal();
  const torch::Tensor ce_t2i = -torch::log_softmax(logits.t(), 1).diagonal();
  const torch::Tensor want =
      0.5 * (((1.0 - share) * ce_i2t).mean() + ((1.0 - share) * ce_t2i).mean());
  loss::PairBatch batch = loss::PairBatch::local(in.image, in.text);
  batch.sink_share = share;
  const torch::Tensor got = loss::infonce_loss(batch, logit_scale).total;
  EXPECT_NEAR(got.item<double>(), want.item<double>(), 1e-10);
  const auto g_got = torch::autograd::grad({got}, {in.image, in.text});
  const auto g_want = torch::autograd::grad({want}, {in.image, in.text});
  for (size_t k = 0; k < g_got.size(); ++k)
    EXPECT_TRUE(torch::allclose(g_got[k], g_want[k], 1e-9, 1e-11));
  // A zero share is the plain loss.
  batch.sink_share = torch::zeros({kN}, torch::kDouble);
  EXPECT_NEAR(loss::infonce_loss(batch, logit_scale).total.item<double>(),
              loss::infonce_loss(loss::PairBatch::local(in.image, in.text), logit_scale)
                  .total.item<double>(),
              1e-12);
}

TEST(SinkShare, SigLipRefusesIt) {
  const LossInputs in = make_inputs(0.3);
  loss::PairBatch batch = loss::PairBatch::local(in.image, in.text);
  batch.sink_share = torch::zeros({kN}, torch::kDouble);
  const torch::Tensor scalar = torch::zeros({1}, torch::kDouble);
  EXPECT_THAT(error_message([&] { loss::siglip_loss(batch, scalar, scalar); }),
              HasSubstr("takes no sink share"));
}

TEST(HaloOptions, SinkBootstrapWeakensThePullOnRejectedPairsOnly) {
  // Pairs 0-5 are mismatched, 6-11 clean: take one the model rejects (abstain probability ~1)
  // and one it accepts (~0). Bootstrapping weakens the gradient that pulls image 0 towards its
  // caption and leaves the clean pair's almost as it was.
  const LossInputs in = make_inputs(0.3);
  auto pull = [&](double beta, int64_t i) {
    const torch::Tensor total =
        loss::halo_clip_loss(loss::PairBatch::local(in.image, in.text), in.gamma_raw, in.b,
                             halo_clip_options(1.0, beta, true))
            .total;
    const torch::Tensor g_image = grads(total, in)[0];
    // Component of -grad along (t_i - x_i): how strongly image i moves towards its caption.
    const torch::Tensor dir = in.text[i] - in.image[i];
    return (-g_image[i] * dir).sum().item<double>() / dir.norm().item<double>();
  };
  const auto score = loss::pair_abstain_score(in.image, in.text, in.gamma_raw, in.b).detach();
  const int64_t bad = score.slice(0, 0, kN / 2).argmax().item<int64_t>();
  const int64_t good = kN / 2 + score.slice(0, kN / 2).argmin().item<int64_t>();
  ASSERT_GT(score[bad].item<double>(), 0.99);
  ASSERT_LT(score[good].item<double>(), 0.01);
  EXPECT_GT(pull(0.0, bad), 0.0);
  EXPECT_LT(pull(0.9, bad), pull(0.5, bad));
  EXPECT_LT(pull(0.5, bad), pull(0.0, bad));
  EXPECT_NEAR(pull(0.9, good), pull(0.0, good), 1e-2 * std::abs(pull(0.0, good)));
}

TEST(HaloOptions, TiledLossRefusesSinkBootstrap) {
  const LossInputs in = make_inputs(0.3);
  loss::HaloClipOptions o = halo_clip_options(1.0, 0.5, true);
  o.implementation = loss::loss_implementation_name(loss::LossImplementation::kTiled);
  EXPECT_THROW(
      loss::halo_clip_loss(loss::PairBatch::local(in.image, in.text), in.gamma_raw, in.b, o),
      std::exception);
  o.sink_bootstrap = 0.0;
  o.radial_weight = 0.25;
  const auto tiled =
      loss::halo_clip_loss(loss::PairBatch::local(in.image, in.text), in.gamma_raw, in.b, o);
  o.implementation = loss::loss_implementation_name(loss::LossImplementation::kDense);
  const auto dense =
      loss::halo_clip_loss(loss::PairBatch::local(in.image, in.text), in.gamma_raw, in.b, o);
  EXPECT_NEAR(tiled.total.item<double>(), dense.total.item<double>(), 1e-9);
}

loss::ContrastiveLossOptions module_options(const std::string& temperature) {
  loss::ContrastiveLossOptions o;
  o.embed_dim = kD;
  o.num_candidates = kN;
  o.temperature = temperature;
  return o;
}

TEST(HaloOptions, LogTemperatureStartsAtTheSameGammaAndMovesMultiplicatively) {
  auto softplus_form = loss::make_contrastive_loss(module_options("softplus"));
  auto log_form = loss::make_contrastive_loss(module_options("log"));
  ASSERT_EQ(log_form->named_parameters().size(), 1u);
  EXPECT_TRUE(log_form->named_parameters().contains("log_gamma"));
  torch::manual_seed(3);
  const torch::Tensor image = torch::randn({kN, kD}), text = image + 0.5 * torch::randn({kN, kD});
  // Same gamma at the start: same loss, scores and logits.
  const auto a = softplus_form->forward(loss::PairBatch::local(image, text));
  const auto b = log_form->forward(loss::PairBatch::local(image, text));
  EXPECT_NEAR(a.total.item<double>(), b.total.item<double>(), 1e-5);
  EXPECT_TRUE(torch::allclose(softplus_form->mismatch_score(image, text),
                              log_form->mismatch_score(image, text), 1e-5, 1e-7));
  // d loss / d log_gamma = gamma * d loss / d gamma, and d loss / d gamma_raw = sigmoid(raw) *
  // d loss / d gamma; so the two parameters' gradients are in the ratio gamma / sigmoid(raw).
  a.total.backward();
  b.total.backward();
  const torch::Tensor raw = softplus_form->named_parameters()["gamma_raw"];
  const torch::Tensor log_gamma = log_form->named_parameters()["log_gamma"];
  const double gamma = std::exp(log_gamma.item<double>());
  const double ratio = gamma / torch::sigmoid(raw).item<double>();
  EXPECT_NEAR(log_gamma.grad().item<double>(), ratio * raw.grad().item<double>(),
              1e-3 * std::abs(ratio * raw.grad().item<double>()));
  EXPECT_THROW(loss::make_contrastive_loss(module_options("linear")), std::exception);
}

// Partner dropout's rows: a pure function of (seed, step, global row), about `rate` of them,
// other rows in another step, and the rows of a slice are the slice of the rows.
TEST(PartnerDrop, RowsAreSeededByStepAndGlobalRow) {
  const torch::Device cpu(torch::kCPU);
  const torch::Tensor all = loss::partner_dropped_rows(7, 5, 0, 4000, 0.3, cpu);
  ASSERT_EQ(all.scalar_type(), torch::kBool);
  ASSERT_EQ(all.size(0), 4000);
  const double share = all.to(torch::kDouble).mean().item<double>();
  EXPECT_NEAR(share, 0.3, 0.03);
  EXPECT_TRUE(torch::equal(loss::partner_dropped_rows(7, 5, 0, 4000, 0.3, cpu), all));
  EXPECT_TRUE(torch::equal(loss::partner_dropped_rows(7, 5, 1000, 500, 0.3, cpu),
                           all.narrow(0, 1000, 500)));
  EXPECT_FALSE(torch::equal(loss::partner_dropped_rows(7, 6, 0, 4000, 0.3, cpu), all));
  EXPECT_FALSE(torch::equal(loss::partner_dropped_rows(8, 5, 0, 4000, 0.3, cpu), all));
  EXPECT_FALSE(loss::partner_dropped_rows(7, 5, 0, 4000, 0.0, cpu).any().item<bool>());
}

// A dropped row's cross-entropy is the sink's: -log softmax_sink over its other candidates;
// the rows kept are untouched, and so is the radial term.
TEST(PartnerDrop, ADroppedRowTakesTheSinkAsTargetWithoutItsPartner) {
  const LossInputs in = make_inputs(0.3);
  const loss::HaloClipOptions options = halo_clip_options(1.0, 0.0, true);
  loss::PairBatch batch = loss::PairBatch::local(in.image, in.text);
  const auto plain = loss::halo_clip_loss(batch, in.gamma_raw, in.b, options);
  batch.partner_dropped = torch::zeros({kN}, torch::kBool);
  batch.partner_dropped[3] = true;
  const auto dropped = loss::halo_clip_loss(batch, in.gamma_raw, in.b, options);
  // Row 3 image -> text: without its caption, against the sink.
  torch::NoGradGuard no_grad;
  const torch::Tensor gamma = loss::gamma_from_raw(in.gamma_raw, torch::kDouble);
  const torch::Tensor S = loss::shifted_distance(in.image, in.text, gamma);
  const torch::Tensor others = torch::cat({S[3].narrow(0, 0, 3), S[3].narrow(0, 4, kN - 4)});
  const double row3 =
      torch::logaddexp(torch::logsumexp(others, 0), torch::tensor(in.b, torch::kDouble))
          .item<double>() -
      in.b;
  // Row 3's own term in the plain loss, by the difference of the means.
  const torch::Tensor Splain = S;
  const torch::Tensor targets = loss::distill_targets(
      Splain, gamma, in.image, torch::arange(kN, torch::kLong), options.label_smoothing);
  const double plain_row3 =
      (torch::logaddexp(torch::logsumexp(S[3], 0), torch::tensor(in.b, torch::kDouble)) -
       (targets[3] * S[3]).sum())
          .item<double>();
  EXPECT_NEAR((dropped.ce_image_to_text - plain.ce_image_to_text).item<double>(),
              (row3 - plain_row3) / kN, 1e-9);
  EXPECT_NEAR(dropped.radial.item<double>(), plain.radial.item<double>(), 1e-12);
  EXPECT_NE(dropped.ce_text_to_image.item<double>(), plain.ce_text_to_image.item<double>());
}

TEST(PartnerDrop, OnlyHaloDenseOrTiledTakesIt) {
  loss::LossConfig c;
  c.sink_partner_drop = 0.2;
  c.validate();
  c.name = "infonce";
  EXPECT_THAT(error_message([&] { c.validate(); }),
              HasSubstr("loss.sink_partner_drop needs loss.name: halo"));
  c.name = "halo";
  c.implementation = "kernel";
  EXPECT_THAT(error_message([&] { c.validate(); }),
              HasSubstr("not by loss.implementation: kernel"));
  c.implementation = "dense";
  c.sink_partner_drop = 1.0;
  EXPECT_THAT(error_message([&] { c.validate(); }),
              HasSubstr("loss.sink_partner_drop must be in [0, 1)"));
  const LossInputs in = make_inputs(0.3);
  loss::PairBatch batch = loss::PairBatch::local(in.image, in.text);
  batch.partner_dropped = torch::ones({kN}, torch::kBool);
  EXPECT_THAT(
      error_message([&] { loss::infonce_loss(batch, torch::zeros({1}, torch::kDouble), true); }),
      HasSubstr("no sink to take a dropped partner's target"));
}

}  // namespace
}  // namespace halo::test
