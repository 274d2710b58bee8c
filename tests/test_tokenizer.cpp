// The SentencePiece tokenizer in the same process as LibTorch: training, round trips, the
// BOS/EOS/padding layout and truncation, errors naming the file, and concurrent encoding.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "data/tokenizer.h"
#include "test_util.h"

namespace halo::test {
namespace {

using ::testing::HasSubstr;

// One model for the whole suite (training takes a moment).
const data::Tokenizer& tokenizer() {
  static const data::Tokenizer t = [] {
    const std::string dir = make_temp_dir("tokenizer");
    std::ofstream corpus(dir + "/captions.txt");
    const char* colours[] = {"red", "green", "blue", "yellow", "black", "white"};
    const char* things[] = {"cat", "dog", "face", "flag", "heart", "car", "tree", "house"};
    for (int i = 0; i < 600; ++i) {
      corpus << "a " << colours[i % 6] << " " << things[(i / 6) % 8] << " with smiling eyes number "
             << i % 13 << "\n";
    }
    corpus.close();
    data::TokenizerTrainOptions o;
    o.input = dir + "/captions.txt";
    o.model_prefix = dir + "/tok";
    o.vocab_size = 60;
    data::Tokenizer::train(o);
    EXPECT_TRUE(std::filesystem::exists(dir + "/tok.vocab"));
    return data::Tokenizer::load(dir + "/tok.model");
  }();
  return t;
}

TEST(Tokenizer, RoundTripsText) {
  const auto& t = tokenizer();
  EXPECT_GE(t.vocab_size(), 20);
  for (const std::string text :
       {"a red cat", "a white house with smiling eyes", "the number 12 is a tree"}) {
    EXPECT_EQ(t.decode(t.encode_ids(text)), text);
  }
  // Characters never seen in training become the unknown piece, not an error.
  const std::vector<int> unseen = t.encode_ids("zebra!");
  EXPECT_NE(std::find(unseen.begin(), unseen.end(), data::Tokenizer::kUnkId), unseen.end());
  EXPECT_EQ(t.pad_id(), data::Tokenizer::kPadId);
  EXPECT_EQ(t.bos_id(), data::Tokenizer::kBosId);
  EXPECT_EQ(t.eos_id(), data::Tokenizer::kEosId);
}

TEST(Tokenizer, EncodeAddsBeginEndAndPadsOrTruncates) {
  const auto& t = tokenizer();
  const std::vector<int> pieces = t.encode_ids("a red cat");
  const int64_t n = static_cast<int64_t>(pieces.size());
  const torch::Tensor ids =
      t.encode({"a red cat", "a blue dog with smiling eyes number 12 and more"}, n + 4);
  ASSERT_EQ(ids.sizes(), (std::vector<int64_t>{2, n + 4}));
  EXPECT_EQ(ids[0][0].item<int64_t>(), t.bos_id());
  for (int64_t k = 0; k < n; ++k)
    EXPECT_EQ(ids[0][k + 1].item<int64_t>(), pieces[static_cast<size_t>(k)]);
  EXPECT_EQ(ids[0][n + 1].item<int64_t>(), t.eos_id());
  EXPECT_EQ(ids[0][n + 2].item<int64_t>(), t.pad_id());
  EXPECT_EQ(ids[0][n + 3].item<int64_t>(), t.pad_id());
  // The long caption is cut: its last position holds EOS, no padding.
  EXPECT_EQ(ids[1][n + 3].item<int64_t>(), t.eos_id());
  EXPECT_EQ((ids[1] == t.pad_id()).sum().item<int64_t>(), 0);
  EXPECT_THAT(error_message([&] { t.encode({"x"}, 1); }), HasSubstr("context length must be >= 2"));
}

TEST(Tokenizer, MissingOrBadModelIsNamed) {
  EXPECT_THAT(error_message([] { data::Tokenizer::load("/no/such/tok.model"); }),
              HasSubstr("tokenizer model '/no/such/tok.model' does not exist"));
  const std::string dir = make_temp_dir("tokenizer_bad");
  std::ofstream(dir + "/bad.model") << "not a model";
  EXPECT_THAT(error_message([&] { data::Tokenizer::load(dir + "/bad.model"); }),
              HasSubstr("cannot load tokenizer model '" + dir + "/bad.model'"));
}

TEST(Tokenizer, LivesBesideLibTorchAndEncodesConcurrently) {
  const auto& t = tokenizer();
  const torch::Tensor x = torch::randn({8, 8});
  EXPECT_GT(torch::mm(x, x.t()).trace().item<double>(), 0.0);
  std::vector<std::string> texts;
  for (int i = 0; i < 200; ++i) texts.push_back("a green tree number " + std::to_string(i));
  const torch::Tensor expected = t.encode(texts, 16);
  torch::Tensor a, b;
  std::thread ta([&] { a = t.encode(texts, 16); }), tb([&] { b = t.encode(texts, 16); });
  ta.join();
  tb.join();
  EXPECT_TRUE(torch::equal(a, expected));
  EXPECT_TRUE(torch::equal(b, expected));
}

TEST(Tokenizer, TrainsBpeAtomicallyAndNamesBadInput) {
  const std::string dir = make_temp_dir("tokenizer_train");
  std::ofstream(dir + "/text.txt") << "a small red cat\na big blue dog\na small blue cat\n";
  data::TokenizerTrainOptions o;
  o.input = dir + "/text.txt";
  o.model_prefix = dir + "/bpe";
  o.vocab_size = 30;
  o.model_type = "bpe";
  data::Tokenizer::train(o);
  std::vector<std::string> files;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    files.push_back(e.path().filename().string());
  }
  std::sort(files.begin(), files.end());  // no temporary files are left behind
  EXPECT_EQ(files, (std::vector<std::string>{"bpe.model", "bpe.vocab", "text.txt"}));
  const auto t = data::Tokenizer::load(dir + "/bpe.model");
  EXPECT_EQ(t.decode(t.encode_ids("a big red dog")), "a big red dog");

  o.input = dir + "/missing.txt";
  EXPECT_THAT(error_message([&] { data::Tokenizer::train(o); }),
              HasSubstr("tokenizer training text not found: '" + dir + "/missing.txt'"));
  o.input = dir + "/text.txt";
  o.model_type = "wordpiece";
  EXPECT_THAT(error_message([&] { data::Tokenizer::train(o); }), HasSubstr("'wordpiece'"));
  o.model_type = "unigram";
  o.model_prefix = dir + "/no/such/folder/tok";
  EXPECT_THAT(error_message([&] { data::Tokenizer::train(o); }),
              HasSubstr("'" + dir + "/no/such/folder' does not exist"));
  EXPECT_THAT(error_message([] { data::Tokenizer().encode_ids("x"); }),
              HasSubstr("before Tokenizer::load"));
  // SentencePiece samples at most max_sentences lines (bounded memory on any corpus).
  o.model_prefix = dir + "/sampled";
  o.max_sentences = 101;
  data::Tokenizer::train(o);
  EXPECT_TRUE(std::filesystem::exists(dir + "/sampled.model"));
  o.max_sentences = 100;
  EXPECT_THAT(error_message([&] { data::Tokenizer::train(o); }),
              HasSubstr("max_sentences must be > 100"));
}

}  // namespace
}  // namespace halo::test
