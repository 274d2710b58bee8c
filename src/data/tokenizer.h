// The SentencePiece tokenizer: train a model from a text file, encode captions into fixed-length
// id sequences (BOS, pieces, EOS, then padding) and decode them. SentencePiece runs inside
// libhalo_spm.so, loaded into its own link namespace (see spm_shim/spm_shim.cpp for why).
// Copies share one loaded model; encode() is safe to call from several threads.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <torch/types.h>

namespace halo::data {

struct TokenizerTrainOptions {
  std::string input;                   // text file, one text per line
  std::string model_prefix;            // writes PREFIX.model and PREFIX.vocab
  int64_t vocab_size = 1000;           // an upper bound: small corpora give fewer pieces
  std::string model_type = "unigram";  // unigram | bpe
  // Sentences (lines) SentencePiece samples from the input at most, so that its memory is
  // bounded whatever the corpus (its input_sentence_size, drawn with shuffle_input_sentence;
  // more than 100).
  int64_t max_sentences = 1000000;
};

class Tokenizer {
 public:
  // Ids of the special tokens in models trained by train().
  static constexpr int kPadId = 0, kBosId = 1, kEosId = 2, kUnkId = 3;

  static Tokenizer load(const std::string& model_path);
  // Trains a model (written atomically: a temporary prefix, then renamed).
  static void train(const TokenizerTrainOptions& options);

  std::vector<int> encode_ids(const std::string& text) const;  // pieces only, no BOS/EOS
  // Pad, BOS and EOS are dropped; an id outside the vocabulary is an error.
  std::string decode(const std::vector<int>& ids) const;
  // B x context_length int64: BOS, pieces, EOS, then pad. Too long: pieces are cut so that EOS
  // is always the last real token.
  torch::Tensor encode(const std::vector<std::string>& texts, int64_t context_length) const;

  int64_t vocab_size() const;
  int64_t pad_id() const;
  int64_t bos_id() const;
  int64_t eos_id() const;

 private:
  struct Model;
  const Model& model() const;  // throws when default-constructed (not loaded)
  std::shared_ptr<const Model> model_;
};

// The path of libhalo_spm.so in use: $HALO_SPM_SHIM when set; else next to the executable,
// else where the build wrote it.
std::string sentencepiece_shim_path();

}  // namespace halo::data
