// halo-clip tokenizer: `train` a SentencePiece model from a text file or a manifest's captions,
// or `encode` text with one (ids and the decoded round trip).
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "cli/commands.h"
#include "common/args.h"
#include "common/atomic_file.h"
#include "common/error.h"
#include "data/manifest.h"
#include "data/tokenizer.h"

namespace halo::cli {

namespace {

int tokenizer_train(const std::vector<std::string>& argv) {
  ArgParser args("tokenizer train",
                 "Train a SentencePiece model (ids: pad 0, begin 1, end 2, unknown 3) on a text\n"
                 "file (one sentence per line) or on the captions of a manifest.");
  args.option("input", "FILE", "text file, one sentence per line")
      .option("manifest", "FILE", "manifest whose captions to train on (instead of --input)")
      .option("caption-key", "NAME", "manifest caption column", "caption")
      .option("separator", "C", "manifest separator (one character; \\t for tab)", "\\t")
      .required("out", "PREFIX", "writes PREFIX.model and PREFIX.vocab")
      .option("vocab-size", "N", "vocabulary size", "1000")
      .option("model-type", "TYPE", "unigram or bpe", "unigram");
  if (!args.parse(argv)) return 0;
  HALO_CHECK(args.has("input") != args.has("manifest"),
             "tokenizer train: give exactly one of --input and --manifest");
  data::TokenizerTrainOptions o;
  o.model_prefix = args.str("out");
  o.vocab_size = args.integer("vocab-size");
  o.model_type = args.str("model-type");
  if (args.has("manifest")) {
    data::ManifestOptions mo;
    const std::string sep = args.str("separator");
    HALO_CHECK(sep == "\\t" || sep.size() == 1,
               "tokenizer train: --separator must be one character or \\t");
    mo.separator = sep == "\\t" ? '\t' : sep[0];
    mo.caption_key = args.str("caption-key");
    std::ifstream head(args.str("manifest"));
    std::string header;
    std::getline(head, header);
    mo.image_key =
        data::split_fields(header, mo.separator).front();  // any column: images are not read
    const auto manifest = data::read_manifest(args.str("manifest"), mo);
    std::string text;
    for (const auto& c : manifest.captions) text += c + "\n";
    o.input = o.model_prefix + ".captions.txt";
    halo::write_file_atomically(o.input, text);
    std::cout << "training on " << manifest.size() << " captions of " << args.str("manifest")
              << "\n";
  } else {
    o.input = args.str("input");
  }
  const auto start = std::chrono::steady_clock::now();
  data::Tokenizer::train(o);
  const auto tokenizer = data::Tokenizer::load(o.model_prefix + ".model");
  std::cout << "wrote " << o.model_prefix << ".model (" << tokenizer.vocab_size() << " pieces) in "
            << std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count()
            << " s\n";
  return 0;
}

int tokenizer_encode(const std::vector<std::string>& argv) {
  ArgParser args("tokenizer encode", "Encode text with a tokenizer model and decode it back.");
  args.required("model", "FILE", "a .model file")
      .required("text", "TEXT", "the text to encode")
      .option("context-length", "L", "pad or cut to this many ids (begin and end included)", "32");
  if (!args.parse(argv)) return 0;
  const auto tokenizer = data::Tokenizer::load(args.str("model"));
  const auto ids = tokenizer.encode({args.str("text")}, args.integer("context-length"));
  std::cout << "ids:";
  std::vector<int> as_int;
  for (int64_t i = 0; i < ids.size(1); ++i) {
    as_int.push_back(static_cast<int>(ids[0][i].item<int64_t>()));
    std::cout << " " << as_int.back();
  }
  std::cout << "\ndecoded: " << tokenizer.decode(as_int) << "\n";
  return 0;
}

}  // namespace

int run_tokenizer(const std::vector<std::string>& argv) {
  const std::string usage =
      "usage: halo-clip tokenizer <action> [flags]\n\nactions:\n"
      "  train    train a SentencePiece model from text or a manifest's captions\n"
      "  encode   encode text with a model and decode it back\n";
  return run_action(argv, usage, {{"train", tokenizer_train}, {"encode", tokenizer_encode}},
                    "unknown tokenizer action");
}

}  // namespace halo::cli
