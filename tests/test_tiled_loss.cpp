// The tiled HALO loss against the dense one (the reference), forward and backward: loss, every
// part and the gradients of image/text rows, image/text columns and gamma_raw, over odd sizes,
// N = 1, tiles that do not divide N, tiles larger than N, and row blocks with row_offset != 0
// against more columns than rows; both target modes, fp64 tightly and fp32 at ~1e-5.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "loss/contrastive_loss.h"
#include "loss/halo_clip_loss.h"
#include "loss/halo_terms.h"
#include "loss/halo_tiled.h"
#include "test_util.h"

namespace halo::test {
namespace {

struct TileCase {
  int64_t rows, cols, offset, dim, tile;
};

struct Result {
  std::vector<torch::Tensor> values;  // total, ce_i2t, ce_t2i, radial, then the five gradients
};

// image/text rows and columns are separate leaves (rows == columns when `local`), and the
// upstream gradient weights the parts differently so that each output's backward is checked.
Result tiled_case_result(const TileCase& s, bool distill, bool local, loss::LossImplementation impl,
                         torch::ScalarType dtype, uint64_t seed) {
  torch::manual_seed(seed);
  const auto o = torch::TensorOptions().dtype(torch::kDouble);
  const torch::Tensor image_c = torch::randn({s.cols, s.dim}, o);
  const torch::Tensor text_c = 0.6 * image_c + torch::randn({s.cols, s.dim}, o);
  auto leaf = [&](const torch::Tensor& t) { return t.to(dtype).detach().requires_grad_(true); };
  torch::Tensor ic = leaf(image_c), tc = leaf(text_c);
  torch::Tensor ir = local ? ic : leaf(image_c.narrow(0, s.offset, s.rows));
  torch::Tensor tr = local ? tc : leaf(text_c.narrow(0, s.offset, s.rows));
  torch::Tensor gamma_raw =
      torch::tensor({1.4}, torch::TensorOptions().dtype(dtype)).requires_grad_(true);

  loss::HaloClipOptions opt;
  opt.embed_dim = s.dim;
  opt.num_candidates = s.cols;
  opt.label_smoothing = 0.2;
  opt.distill = distill;
  opt.implementation = loss::loss_implementation_name(impl);
  opt.tile_size = s.tile;
  const double b = loss::abstain_bias(s.dim, s.cols, 0.2);
  const loss::HaloClipParts p = loss::halo_clip_loss(
      loss::PairBatch{ir, tr, ic, tc, local ? 0 : s.offset, {}, {}}, gamma_raw, b, opt);
  (p.total + 0.3 * p.ce_image_to_text - 0.7 * p.ce_text_to_image + 0.2 * p.radial).backward();
  Result r{{p.total, p.ce_image_to_text, p.ce_text_to_image, p.radial}};
  for (const auto& t : {ir, tr, ic, tc, gamma_raw}) {
    r.values.push_back(t.grad().defined() ? t.grad() : torch::zeros_like(t));
  }
  return r;
}

const char* const kNames[] = {"total",           "ce_image_to_text", "ce_text_to_image",
                              "radial",          "grad image rows",  "grad text rows",
                              "grad image cols", "grad text cols",   "grad gamma_raw"};

void expect_tiled_matches_dense(const TileCase& s, bool distill, bool local,
                                torch::ScalarType dtype, double rtol, double atol) {
  SCOPED_TRACE(::testing::Message()
               << "rows " << s.rows << " cols " << s.cols << " offset " << s.offset << " D "
               << s.dim << " tile " << s.tile << (distill ? " distill" : " smoothing")
               << (local ? " local" : " split") << " " << dtype);
  const uint64_t seed = static_cast<uint64_t>(s.rows * 131 + s.cols * 17 + s.tile);
  const Result dense =
      tiled_case_result(s, distill, local, loss::LossImplementation::kDense, dtype, seed);
  const Result tiled =
      tiled_case_result(s, distill, local, loss::LossImplementation::kTiled, dtype, seed);
  for (size_t i = 0; i < dense.values.size(); ++i) {
    EXPECT_EQ(tiled.values[i].scalar_type(), dense.values[i].scalar_type()) << kNames[i];
    EXPECT_TRUE(all_close(tiled.values[i].to(torch::kDouble), dense.values[i].to(torch::kDouble),
                          rtol, atol))
        << kNames[i];
  }
}

// Local batches (rows == columns) and row blocks against gathered columns.
const std::vector<TileCase> kLocal{{1, 1, 0, 2, 1},   {1, 1, 0, 3, 4},    {7, 7, 0, 5, 3},
                                   {13, 13, 0, 8, 4}, {16, 16, 0, 4, 16}, {10, 10, 0, 6, 64},
                                   {33, 33, 0, 7, 8}};
const std::vector<TileCase> kSplit{{5, 17, 6, 3, 4}, {1, 9, 8, 4, 2},   {6, 6, 0, 5, 4},
                                   {4, 23, 0, 6, 5}, {9, 31, 11, 5, 7}, {3, 12, 9, 2, 64}};

TEST(TiledLoss, MatchesDenseFp64BothModes) {
  for (bool distill : {true, false}) {
    for (const auto& s : kLocal)
      expect_tiled_matches_dense(s, distill, true, torch::kDouble, 1e-10, 1e-12);
    for (const auto& s : kSplit)
      expect_tiled_matches_dense(s, distill, false, torch::kDouble, 1e-10, 1e-12);
  }
}

TEST(TiledLoss, MatchesDenseFp32BothModes) {
  for (bool distill : {true, false}) {
    for (const auto& s : kLocal)
      expect_tiled_matches_dense(s, distill, true, torch::kFloat, 1e-5, 1e-6);
    for (const auto& s : kSplit)
      expect_tiled_matches_dense(s, distill, false, torch::kFloat, 1e-5, 1e-6);
  }
}

TEST(TiledLoss, LargerBatchFp32) {
  expect_tiled_matches_dense({300, 300, 0, 64, 128}, true, true, torch::kFloat, 1e-5, 1e-6);
  expect_tiled_matches_dense({100, 257, 150, 32, 64}, false, false, torch::kFloat, 1e-5, 1e-6);
}

TEST(TiledLoss, SelectedByNameThroughContrastiveLoss) {
  torch::manual_seed(3);
  const torch::Tensor image = torch::randn({9, 6}), text = torch::randn({9, 6});
  loss::ContrastiveLossOptions o;
  o.embed_dim = 6;
  o.num_candidates = 9;
  auto dense = loss::make_contrastive_loss(o);
  o.implementation = "tiled";
  o.tile_size = 4;
  auto tiled = loss::make_contrastive_loss(o);
  const auto a = dense->forward(loss::PairBatch::local(image, text));
  const auto b = tiled->forward(loss::PairBatch::local(image, text));
  EXPECT_TRUE(all_close(b.total, a.total, 1e-5, 1e-6));
  o.implementation = "auto";
  EXPECT_NO_THROW(loss::make_contrastive_loss(o));
  o.implementation = "fused";
  EXPECT_NE(
      error_message([&] { loss::make_contrastive_loss(o); }).find("dense, tiled, kernel or auto"),
      std::string::npos);
}

// auto: tiled exactly where the dense loss's estimated matrices (7 n M fp32) pass 512 MiB.
TEST(TiledLoss, AutoPicksTiledAboveTheDenseBudget) {
  using loss::LossImplementation;
  EXPECT_EQ(loss::resolve_loss_implementation("auto", 4378, 4378),
            LossImplementation::kDense);  // 511.8 MiB
  EXPECT_EQ(loss::resolve_loss_implementation("auto", 4379, 4379),
            LossImplementation::kTiled);  // 512.0+ MiB
  EXPECT_EQ(loss::resolve_loss_implementation("auto", 512, 65536),
            LossImplementation::kTiled);  // one rank of 128
  EXPECT_EQ(loss::resolve_loss_implementation("dense", 65536, 65536), LossImplementation::kDense);
  EXPECT_EQ(loss::resolve_loss_implementation("kernel", 2, 2), LossImplementation::kKernel);
}

TEST(TiledLoss, KernelsAreChosenByNameOnly) {
  EXPECT_EQ(loss::parse_loss_implementation("kernel", "x"), loss::LossImplementation::kKernel);
  EXPECT_EQ(loss::parse_loss_implementation("tiled", "x"), loss::LossImplementation::kTiled);
  // The kernels need CUDA tensors (and a build with them): a clear error on CPU tensors.
  loss::HaloClipOptions opt;
  opt.embed_dim = 4;
  opt.num_candidates = 3;
  opt.implementation = loss::loss_implementation_name(loss::LossImplementation::kKernel);
  const torch::Tensor x = torch::randn({3, 4});
  const std::string message = error_message([&] {
    loss::halo_clip_loss(loss::PairBatch::local(x, x + 1), torch::tensor({1.0}), 0.0, opt);
  });
  EXPECT_NE(message.find("'kernel' runs the CUDA kernels and needs CUDA tensors"),
            std::string::npos)
      << message;
  // The same check inside the direction function, for callers that go there directly.
  loss::TiledDirectionParams p;
  p.kernel = true;
  const std::string direct =
      error_message([&] { loss::tiled_direction_cross_entropy(x, x, torch::tensor(1.0), p); });
  EXPECT_FALSE(direct.empty());
}

TEST(TiledLoss, AutoPicksByBatchSizeAndRejectsBadTiles) {
  EXPECT_EQ(loss::parse_loss_implementation("auto", "x"), loss::LossImplementation::kAuto);
  loss::HaloClipOptions opt;
  opt.embed_dim = 4;
  opt.num_candidates = 3;
  opt.tile_size = 0;
  opt.implementation = loss::loss_implementation_name(loss::LossImplementation::kTiled);
  const torch::Tensor x = torch::randn({3, 4});
  const std::string message = error_message([&] {
    loss::halo_clip_loss(loss::PairBatch::local(x, x + 1), torch::tensor({1.0}), 0.0, opt);
  });
  EXPECT_NE(message.find("tile size"), std::string::npos) << message;
}

}  // namespace
}  // namespace halo::test
