// Bad input to the losses gives a halo::Error whose message names the problem: mismatched
// shapes, D < 2, empty batches, targets out of range, NaN or infinite values, bad options.
#include <limits>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "loss/contrastive_loss.h"
#include "loss/halo_clip_loss.h"
#include "loss/halo_loss.h"
#include "loss/halo_terms.h"
#include "test_util.h"

namespace halo::test {
namespace {

using ::testing::HasSubstr;

std::string batch_error(const loss::PairBatch& batch, const std::string& name = "halo") {
  loss::ContrastiveLossOptions o;
  o.name = name;
  o.embed_dim =
      batch.image_rows.defined() && batch.image_rows.dim() == 2 ? batch.image_rows.size(1) : 4;
  if (o.embed_dim < 2) o.embed_dim = 2;
  auto fn = loss::make_contrastive_loss(o);
  return error_message([&] { fn->forward(batch); });
}

torch::Tensor r(int64_t n, int64_t d) {
  return torch::randn({n, d});
}

TEST(BadInput, MismatchedShapesAreNamed) {
  for (const std::string name : {"halo", "infonce", "siglip"}) {
    SCOPED_TRACE(name);
    EXPECT_THAT(batch_error(loss::PairBatch::local(r(4, 8), r(4, 6)), name),
                HasSubstr("embedding sizes differ"));
    EXPECT_THAT(batch_error(loss::PairBatch::local(r(4, 8), r(3, 8)), name),
                HasSubstr("as many image rows as text rows"));
    EXPECT_THAT(batch_error({r(2, 8), r(2, 8), r(6, 8), r(5, 8), 0, {}, {}}, name),
                HasSubstr("candidate columns need as many images as texts"));
    EXPECT_THAT(batch_error({r(2, 8), r(2, 8), r(6, 8), r(6, 8), 5, {}, {}}, name),
                HasSubstr("points past the last of 6 columns"));
    EXPECT_THAT(batch_error(loss::PairBatch::local(torch::randn({4, 8, 1}), r(4, 8)), name),
                HasSubstr("must be a 2-D"));
  }
}

TEST(BadInput, EmbeddingSizeBelowTwo) {
  EXPECT_THAT(batch_error(loss::PairBatch::local(r(4, 1), r(4, 1))), HasSubstr("D >= 2"));
  EXPECT_THAT(error_message([] { loss::abstain_bias(1, 8, 0.1); }), HasSubstr("D >= 2"));
  EXPECT_THAT(error_message([] { loss::HaloLoss(loss::HaloLossOptions(1, 3)); }),
              HasSubstr("D >= 2"));
}

TEST(BadInput, EmptyBatch) {
  for (const std::string name : {"halo", "infonce", "siglip"}) {
    EXPECT_THAT(batch_error(loss::PairBatch::local(r(0, 8), r(0, 8)), name), HasSubstr("is empty"));
  }
  loss::HaloLoss halo(loss::HaloLossOptions(8, 3));
  EXPECT_THAT(error_message([&] { halo(r(0, 8), torch::zeros({0}, torch::kLong), r(3, 8)); }),
              HasSubstr("is empty"));
}

TEST(BadInput, TargetOutOfRange) {
  loss::HaloLoss halo(loss::HaloLossOptions(8, 3));
  EXPECT_THAT(error_message([&] {
                halo(r(2, 8), torch::tensor({0, 3}), r(3, 8));
              }),
              HasSubstr("target out of range"));
  EXPECT_THAT(error_message([&] {
                halo(r(2, 8), torch::tensor({-1, 0}), r(3, 8));
              }),
              HasSubstr("target out of range"));
  EXPECT_THAT(error_message([&] {
                halo(r(2, 8), torch::tensor({0, 1, 2}), r(3, 8));
              }),
              HasSubstr("vector of 2 class indices"));
  EXPECT_THAT(error_message([&] {
                halo(r(2, 8), torch::tensor({0.0, 1.0}), r(3, 8));
              }),
              HasSubstr("integer class indices"));
}

TEST(BadInput, NanAndInfinityAreRejected) {
  const double nan = std::numeric_limits<double>::quiet_NaN(),
               inf = std::numeric_limits<double>::infinity();
  for (const std::string name : {"halo", "infonce", "siglip"}) {
    SCOPED_TRACE(name);
    for (double bad : {nan, inf, -inf}) {
      torch::Tensor image = r(4, 8), text = r(4, 8);
      text[2][5] = bad;
      EXPECT_THAT(batch_error(loss::PairBatch::local(image, text), name),
                  HasSubstr("text embeddings (rows) contains NaN or infinite values"));
      torch::Tensor cols = r(6, 8);
      cols[0][0] = bad;
      EXPECT_THAT(batch_error({image, r(4, 8), cols, r(6, 8), 0, {}, {}}, name),
                  HasSubstr("image embeddings (columns) contains NaN"));
    }
  }
  loss::HaloLoss halo(loss::HaloLossOptions(8, 3));
  torch::Tensor cen = r(3, 8);
  cen[1][1] = nan;
  EXPECT_THAT(error_message([&] {
                halo(r(2, 8), torch::tensor({0, 1}), cen);
              }),
              HasSubstr("centroids contains NaN"));
}

TEST(BadInput, OptionsAreChecked) {
  EXPECT_THAT(
      error_message([] { loss::HaloLoss(loss::HaloLossOptions(8, 3).label_smoothing(0.0)); }),
      HasSubstr("needs label_smoothing > 0"));
  EXPECT_THAT(error_message([] { loss::abstain_bias(8, 4, 1.5); }),
              HasSubstr("label_smoothing must be in [0, 1)"));
  EXPECT_THAT(error_message([] { loss::abstain_bias(8, 0, 0.1); }),
              HasSubstr("at least one candidate"));
  loss::ContrastiveLossOptions o;
  o.name = "softmax";
  EXPECT_THAT(error_message([&] { loss::make_contrastive_loss(o); }),
              HasSubstr("unknown loss 'softmax'"));
  o.name = "halo";
  o.embed_dim = 16;
  auto fn = loss::make_contrastive_loss(o);
  EXPECT_THAT(error_message([&] { fn->forward(loss::PairBatch::local(r(3, 8), r(3, 8))); }),
              HasSubstr("built for D = 16"));
}

}  // namespace
}  // namespace halo::test
