// Encoders: output shapes, unnormalised embeddings, the causal mask, end-of-text pooling (the
// result ignores tokens after EOS), pooling modes, and bad input shapes.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "encoders/centering.h"
#include "encoders/clip_model.h"
#include "encoders/resnet.h"
#include "encoders/text_transformer.h"
#include "encoders/transformer.h"
#include "encoders/vit.h"
#include "test_util.h"

namespace halo::test {
namespace {

using ::testing::HasSubstr;

TEST(Encoders, VitShapesAndPooling) {
  torch::manual_seed(0);
  for (const char* pool : {"cls", "mean"}) {
    encoders::VisionTransformerOptions o;
    o.image_size = 16, o.patch_size = 4, o.width = 32, o.layers = 2, o.heads = 4, o.embed_dim = 12,
    o.pool = pool;
    encoders::VisionTransformer vit(o);
    const torch::Tensor out = vit(torch::randn({3, 3, 16, 16}));
    EXPECT_EQ(out.sizes(), (std::vector<int64_t>{3, 12})) << pool;
    EXPECT_GT(out.norm(2, 1).std().item<double>(), 0.0) << "embeddings are not normalised";
  }
  encoders::VisionTransformer vit(encoders::VisionTransformerOptions{});
  EXPECT_THAT(error_message([&] {
                vit(torch::randn({1, 3, 20, 20}));
              }),
              HasSubstr("ViT expects B x 3 x 32 x 32"));
}

TEST(Encoders, ResNetShapesAndBatchIndependence) {
  torch::manual_seed(1);
  encoders::ResNet net(encoders::ResNetOptions{8, 3, 2, 10});
  const torch::Tensor x = torch::randn({4, 3, 24, 24});
  const torch::Tensor out = net(x);
  EXPECT_EQ(out.sizes(), (std::vector<int64_t>{4, 10}));
  // GroupNorm: an image's embedding does not depend on the rest of its batch.
  EXPECT_TRUE(all_close(net(x.narrow(0, 1, 1)), out.narrow(0, 1, 1), 1e-5, 1e-6));
}

TEST(Encoders, CausalMaskIsLowerTriangular) {
  const torch::Tensor m = encoders::causal_mask(4, torch::TensorOptions().dtype(torch::kFloat));
  EXPECT_EQ(m[2][2].item<float>(), 0.0f);
  EXPECT_EQ(m[3][0].item<float>(), 0.0f);
  EXPECT_TRUE(std::isinf(m[0][1].item<float>()) && m[0][1].item<float>() < 0);
}

encoders::TextTransformer small_text(int64_t embed_dim = 8) {
  encoders::TextTransformerOptions o;
  o.vocab_size = 50, o.context_length = 10, o.width = 16, o.layers = 2, o.heads = 2,
  o.embed_dim = embed_dim;
  o.eos_id = 2;
  return encoders::TextTransformer(o);
}

TEST(Encoders, TextPoolsAtEndOfTextAndIgnoresWhatFollows) {
  torch::manual_seed(2);
  auto text = small_text();
  const torch::Tensor a = torch::tensor({{1, 7, 9, 2, 0, 0, 0, 0, 0, 0}}, torch::kLong);
  const torch::Tensor b =
      torch::tensor({{1, 7, 9, 2, 5, 6, 4, 3, 8, 11}}, torch::kLong);  // junk after EOS
  const torch::Tensor c =
      torch::tensor({{1, 7, 8, 2, 0, 0, 0, 0, 0, 0}}, torch::kLong);  // a different token
  const torch::Tensor ea = text(a), eb = text(b), ec = text(c);
  EXPECT_EQ(ea.sizes(), (std::vector<int64_t>{1, 8}));
  EXPECT_TRUE(all_close(eb, ea, 1e-5, 1e-6)) << "tokens after EOS must not change the embedding";
  EXPECT_GT((ec - ea).abs().max().item<double>(), 1e-4) << "tokens before EOS must matter";
  // Later tokens do not influence earlier positions: EOS moved earlier changes the result.
  const torch::Tensor d = torch::tensor({{1, 7, 2, 9, 0, 0, 0, 0, 0, 0}}, torch::kLong);
  EXPECT_GT((text(d) - ea).abs().max().item<double>(), 1e-4);
}

TEST(Encoders, TextRejectsBadTokens) {
  auto text = small_text();
  EXPECT_THAT(error_message([&] {
                text(torch::tensor({{1, 5, 6}}, torch::kLong));
              }),
              HasSubstr("must contain the end-of-text id 2"));
  EXPECT_THAT(error_message([&] {
                text(torch::ones({1, 11}, torch::kLong));
              }),
              HasSubstr("L <= 10"));
}

TEST(Encoders, ClipModelFromConfig) {
  encoders::ModelConfig c;
  c.embed_dim = 16;
  c.image.image_size = 16, c.image.patch_size = 8, c.image.width = 32, c.image.layers = 1;
  c.text.context_length = 8, c.text.width = 32, c.text.layers = 1;
  for (const char* type : {"vit", "resnet"}) {
    c.image.type = type;
    encoders::ClipModel model(c, 100, 2);
    EXPECT_EQ(model->encode_image(torch::randn({2, 3, 16, 16})).sizes(),
              (std::vector<int64_t>{2, 16}))
        << type;
    EXPECT_EQ(model->encode_text(torch::tensor({{1, 5, 2, 0}, {1, 2, 0, 0}}, torch::kLong)).sizes(),
              (std::vector<int64_t>{2, 16}));
  }
}

TEST(Encoders, CentringRemovesTheBatchMeanAndUsesTheRunningMeanAtInference) {
  encoders::EmbeddingCenter center(4, /*momentum=*/0.5);
  const torch::Tensor a = torch::randn({6, 4}) + 3.0, b = torch::randn({6, 4}) - 1.0;
  EXPECT_TRUE(all_close(center(a).mean(0), torch::zeros({4}), 0, 1e-6));  // training: batch mean
  center(b);
  // Running mean after two batches with momentum 1/2: 0.25 mean(a) + 0.5 mean(b).
  const torch::Tensor running = 0.25 * a.mean(0) + 0.5 * b.mean(0);
  center->eval();
  EXPECT_TRUE(all_close(center(a), a - running, 1e-6, 1e-6));
  // Gradients flow through the batch mean: a constant shift of the input has no effect.
  center->train();
  torch::Tensor x = torch::randn({5, 4}, torch::requires_grad());
  center(x).sum().backward();
  EXPECT_TRUE(all_close(x.grad(), torch::zeros({5, 4}), 0, 1e-6));

  encoders::ModelConfig c;
  c.embed_dim = 8;
  c.image.image_size = 16, c.image.patch_size = 8, c.image.width = 16, c.image.layers = 1;
  c.text.context_length = 8, c.text.width = 16, c.text.layers = 1;
  c.center_embeddings = true;
  encoders::ClipModel model(c, 50, 2);
  EXPECT_TRUE(all_close(model->encode_image(torch::randn({3, 3, 16, 16})).mean(0),
                        torch::zeros({8}), 0, 1e-5));
  EXPECT_EQ(model->named_buffers().size(), 2u);  // the running means travel in checkpoints
}

}  // namespace
}  // namespace halo::test
