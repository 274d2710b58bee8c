// Row-block equivalence: slicing a batch into R row blocks (each against all columns, with
// its offset) and combining the block losses with weights n_k / N gives the full-batch loss
// and every gradient. This is what lets each process of a multi-process run compute only its
// own rows.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "loss/contrastive_loss.h"
#include "test_util.h"

namespace halo::test {
namespace {

struct Grads {
  torch::Tensor loss, image, text;
  std::vector<torch::Tensor> params;
};

Grads row_block_grads(loss::ContrastiveLoss& fn, const torch::Tensor& image0,
                      const torch::Tensor& text0, const std::vector<int64_t>& blocks) {
  fn.zero_grad();
  torch::Tensor image = image0.clone().requires_grad_(true),
                text = text0.clone().requires_grad_(true);
  const int64_t N = image.size(0);
  torch::Tensor total = torch::zeros({}, torch::kDouble);
  int64_t offset = 0;
  for (int64_t n : blocks) {
    loss::PairBatch block{
        image.narrow(0, offset, n), text.narrow(0, offset, n), image, text, offset, {}, {}};
    total = total + fn.forward(block).total * (static_cast<double>(n) / N);
    offset += n;
  }
  EXPECT_EQ(offset, N);
  total.backward();
  Grads g{total.detach(), image.grad(), text.grad(), {}};
  for (const auto& p : fn.parameters()) g.params.push_back(p.grad().clone());
  return g;
}

void expect_blocks_equal_full(const loss::ContrastiveLossOptions& options) {
  torch::manual_seed(7);
  const int64_t N = options.num_candidates, D = options.embed_dim;
  const torch::Tensor image = torch::randn({N, D}, torch::kDouble);
  const torch::Tensor text = 0.7 * image + torch::randn({N, D}, torch::kDouble);
  auto fn = loss::make_contrastive_loss(options);
  fn->to(torch::kDouble);
  const Grads full = row_block_grads(*fn, image, text, {N});
  for (const auto& blocks :
       std::vector<std::vector<int64_t>>{{5, 4, 3}, {1, 11}, {4, 4, 4}, {3, 3, 3, 3}}) {
    SCOPED_TRACE(options.name + " with " + std::to_string(blocks.size()) + " blocks");
    const Grads split = row_block_grads(*fn, image, text, blocks);
    EXPECT_TRUE(all_close(split.loss, full.loss, 1e-12, 1e-12)) << "loss";
    EXPECT_TRUE(all_close(split.image, full.image, 1e-10, 1e-12)) << "image gradient";
    EXPECT_TRUE(all_close(split.text, full.text, 1e-10, 1e-12)) << "text gradient";
    ASSERT_EQ(split.params.size(), full.params.size());
    for (size_t i = 0; i < full.params.size(); ++i) {
      EXPECT_TRUE(all_close(split.params[i], full.params[i], 1e-10, 1e-12)) << "parameter " << i;
    }
  }
}

loss::ContrastiveLossOptions contrastive_options(const std::string& name, bool distill = true) {
  loss::ContrastiveLossOptions o;
  o.name = name;
  o.embed_dim = 6;
  o.num_candidates = 12;
  o.distill = distill;
  return o;
}

TEST(RowBlocks, HaloDistillEqualsFullBatch) {
  expect_blocks_equal_full(contrastive_options("halo", true));
}
TEST(RowBlocks, HaloLabelSmoothingEqualsFullBatch) {
  expect_blocks_equal_full(contrastive_options("halo", false));
}
TEST(RowBlocks, HaloTiledEqualsFullBatch) {
  for (bool distill : {true, false}) {
    auto o = contrastive_options("halo", distill);
    o.implementation = "tiled";
    o.tile_size = 5;  // divides neither the batch nor the blocks
    expect_blocks_equal_full(o);
  }
}
TEST(RowBlocks, InfoNceEqualsFullBatch) {
  expect_blocks_equal_full(contrastive_options("infonce"));
}
TEST(RowBlocks, SigLipEqualsFullBatch) {
  expect_blocks_equal_full(contrastive_options("siglip"));
}

}  // namespace
}  // namespace halo::test
