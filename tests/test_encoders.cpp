// Encoders: output shapes, unnormalised embeddings, end-of-text pooling (the
// result ignores tokens after EOS), pooling modes, bad input shapes, and attention: fused
// (LibTorch 2.x) against explicit.
#include <cmath>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "common/torch_compat.h"
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

// ---- Attention (common/torch_compat.h, encoders/transformer.h): the explicit form against its
// definition written out as loops, the fused kernel (LibTorch 2.x) against the explicit form in
// fp32 (forward and every gradient) and under CPU bf16 autocast, the text tower's causal flag
// through both, and the guard that picks the explicit form.

// softmax_j(q_t . k_j / sqrt(d)) v_j over j (j <= t when causal), one output row at a time.
torch::Tensor attention_by_loops(const torch::Tensor& q, const torch::Tensor& k,
                                 const torch::Tensor& v, bool causal) {
  const int64_t B = q.size(0), H = q.size(1), T = q.size(2), d = q.size(3);
  torch::Tensor out = torch::zeros_like(q);
  auto qa = q.accessor<double, 4>(), ka = k.accessor<double, 4>(), va = v.accessor<double, 4>();
  auto oa = out.accessor<double, 4>();
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t h = 0; h < H; ++h) {
      for (int64_t t = 0; t < T; ++t) {
        const int64_t last = causal ? t : T - 1;
        std::vector<double> w(static_cast<size_t>(last + 1));
        double top = -INFINITY, total = 0;
        for (int64_t j = 0; j <= last; ++j) {
          double dot = 0;
          for (int64_t e = 0; e < d; ++e) dot += qa[b][h][t][e] * ka[b][h][j][e];
          w[static_cast<size_t>(j)] = dot / std::sqrt(static_cast<double>(d));
          top = std::max(top, w[static_cast<size_t>(j)]);
        }
        for (double& x : w) total += (x = std::exp(x - top));
        for (int64_t j = 0; j <= last; ++j) {
          for (int64_t e = 0; e < d; ++e) {
            oa[b][h][t][e] += w[static_cast<size_t>(j)] / total * va[b][h][j][e];
          }
        }
      }
    }
  }
  return out;
}

TEST(Attention, ExplicitFormIsTheDefinition) {
  torch::manual_seed(3);
  const auto o = torch::TensorOptions().dtype(torch::kDouble);
  const torch::Tensor q = torch::randn({2, 3, 6, 4}, o), k = torch::randn({2, 3, 6, 4}, o),
                      v = torch::randn({2, 3, 6, 4}, o);
  for (bool causal : {false, true}) {
    EXPECT_TRUE(all_close(compat::attention(q, k, v, causal, /*fused=*/false),
                          attention_by_loops(q, k, v, causal), 1e-12, 1e-12))
        << "causal " << causal;
  }
}

TEST(Attention, GuardSelectsTheExplicitFormAndNests) {
  EXPECT_EQ(encoders::attention_is_fused(c10::DeviceType::CPU),
            compat::fused_attention_available());
  {
    encoders::ExplicitAttentionGuard outer;
    EXPECT_FALSE(encoders::attention_is_fused(c10::DeviceType::CPU));
    {
      encoders::ExplicitAttentionGuard inner;
      EXPECT_FALSE(encoders::attention_is_fused(c10::DeviceType::CPU));
    }
    EXPECT_FALSE(encoders::attention_is_fused(c10::DeviceType::CPU));
  }
  EXPECT_EQ(encoders::attention_is_fused(c10::DeviceType::CPU),
            compat::fused_attention_available());
}

TEST(Attention, FusedEqualsExplicitForwardAndGradientsInFp32) {
  if (!compat::fused_attention_available()) {
    GTEST_SKIP() << "LibTorch " << TORCH_VERSION << " has no fused attention";
  }
  torch::manual_seed(4);
  // Shapes of the presets' towers: 65 image tokens of 4 heads x 24, 24 text tokens.
  for (const auto& [T, d] : {std::pair<int64_t, int64_t>{65, 24}, {24, 32}, {7, 8}}) {
    for (bool causal : {false, true}) {
      std::vector<torch::Tensor> fused_in, explicit_in;
      for (int i = 0; i < 3; ++i) {
        const torch::Tensor x = torch::randn({3, 4, T, d});
        fused_in.push_back(x.clone().set_requires_grad(true));
        explicit_in.push_back(x.clone().set_requires_grad(true));
      }
      const torch::Tensor weights = torch::randn({3, 4, T, d});
      const torch::Tensor a =
          compat::attention(fused_in[0], fused_in[1], fused_in[2], causal, /*fused=*/true);
      const torch::Tensor b = compat::attention(explicit_in[0], explicit_in[1], explicit_in[2],
                                                causal, /*fused=*/false);
      (a * weights).sum().backward();
      (b * weights).sum().backward();
      const std::string where = "T " + std::to_string(T) + " causal " + std::to_string(causal);
      // fp32 with different summation orders: a few units in the last place of values ~1.
      EXPECT_TRUE(all_close(a, b, 1e-5, 1e-5)) << where;
      for (int i = 0; i < 3; ++i) {
        EXPECT_TRUE(all_close(fused_in[i].grad(), explicit_in[i].grad(), 1e-4, 1e-4))
            << where << " input " << i;
      }
    }
  }
}

encoders::TextTransformer text_tower() {
  encoders::TextTransformerOptions o;
  o.vocab_size = 50, o.context_length = 12, o.width = 32, o.layers = 2, o.heads = 4,
  o.embed_dim = 16, o.eos_id = 2;
  return encoders::TextTransformer(o);
}

TEST(Attention, TextTowerIsTheSameFusedAndExplicit) {
  if (!compat::fused_attention_available()) {
    GTEST_SKIP() << "LibTorch " << TORCH_VERSION << " has no fused attention";
  }
  torch::manual_seed(5);
  auto text = text_tower();
  // Tokens after the end of text differ between the rows: only a causal mask hides them from
  // the pooled position, so a fused call that lost the flag gives different embeddings.
  const torch::Tensor tokens =
      torch::tensor({{1, 7, 9, 2, 5, 6, 4, 3, 8, 11, 12, 13}, {1, 7, 9, 2, 0, 0, 0, 0, 0, 0, 0, 0}},
                    torch::kLong);
  const torch::Tensor fused = text(tokens);
  torch::Tensor plain;
  {
    encoders::ExplicitAttentionGuard guard;
    plain = text(tokens);
  }
  EXPECT_TRUE(all_close(fused, plain, 1e-5, 1e-5));
  EXPECT_TRUE(all_close(fused[0], fused[1], 1e-5, 1e-5));
}

TEST(Attention, FusedInBf16IsAsCloseToFp32AsTheExplicitForm) {
  if (!compat::fused_attention_available()) {
    GTEST_SKIP() << "LibTorch " << TORCH_VERSION << " has no fused attention";
  }
  torch::manual_seed(6);
  // bf16 inputs, as the towers give them under autocast (on CUDA, where bf16 attention is fused).
  const torch::Tensor q = torch::randn({8, 4, 65, 32}), k = torch::randn({8, 4, 65, 32}),
                      v = torch::randn({8, 4, 65, 32});
  const torch::Tensor reference = compat::attention(q, k, v, false, /*fused=*/false);
  auto bf16 = [](const torch::Tensor& t) { return t.to(torch::kBFloat16); };
  const torch::Tensor fused =
      compat::attention(bf16(q), bf16(k), bf16(v), false, /*fused=*/true).to(torch::kFloat);
  const torch::Tensor plain =
      compat::attention(bf16(q), bf16(k), bf16(v), false, /*fused=*/false).to(torch::kFloat);
  const double fused_error = (fused - reference).abs().max().item<double>();
  const double plain_error = (plain - reference).abs().max().item<double>();
  // Both round the inputs to 8 significant bits; the fused kernel may round in other places,
  // but must not be much further from fp32 than the explicit bf16 form is.
  EXPECT_GT(plain_error, 0.0);
  EXPECT_LE(fused_error, 2.0 * plain_error) << "explicit bf16 error " << plain_error;
}

TEST(Attention, CpuAutocastTakesTheExplicitForm) {
  if (!cpu_bf16_autocast_available()) {
    GTEST_SKIP() << "LibTorch " << TORCH_VERSION << " has no CPU autocast to bf16";
  }
  EXPECT_TRUE(encoders::attention_is_fused(c10::DeviceType::CPU));
  {
    AutocastScope autocast(c10::DeviceType::CPU, true);
    EXPECT_FALSE(encoders::attention_is_fused(c10::DeviceType::CPU));
  }
  EXPECT_TRUE(encoders::attention_is_fused(c10::DeviceType::CPU));
}

}  // namespace
}  // namespace halo::test
