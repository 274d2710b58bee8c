// Tokenizer: loads libhalo_spm.so (SentencePiece behind a C interface) with dlmopen into its own
// link namespace, so SentencePiece's private protobuf never meets LibTorch's, and calls it.
#include "data/tokenizer.h"

#include <dlfcn.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <thread>

#include <torch/torch.h>

#include "common/error.h"

namespace fs = std::filesystem;

namespace halo::data {

namespace {

// The shim's entry points (spm_shim/spm_shim.cpp), resolved once per process.
struct Shim {
  void* (*load)(const char*, char*, int) = nullptr;
  void (*free_model)(void*) = nullptr;
  int (*encode)(void*, const char*, int*, int) = nullptr;
  int (*decode)(void*, const int*, int, char*, int) = nullptr;
  int (*vocab_size)(void*) = nullptr;
  void (*special_ids)(void*, int*, int*, int*, int*) = nullptr;
  int (*train)(const char*, char*, int) = nullptr;
};

template <class F>
void resolve(void* lib, const std::string& path, const char* name, F& fn) {
  fn = reinterpret_cast<F>(dlsym(lib, name));
  HALO_CHECK(fn != nullptr, "tokenizer library '", path, "' lacks ", name,
             " (a stale build? rebuild halo_spm)");
}

// Where libhalo_spm.so may be, in order: $HALO_SPM_SHIM alone when set; else next to the
// running executable, then where the build wrote it.
std::vector<std::string> shim_candidates() {
  if (const char* env = std::getenv("HALO_SPM_SHIM"); env != nullptr && *env != '\0') return {env};
  std::vector<std::string> out;
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) out.push_back((exe.parent_path() / "libhalo_spm.so").string());
#ifdef HALO_SPM_SHIM_PATH
  out.push_back(HALO_SPM_SHIM_PATH);
#endif
  return out;
}

const Shim& shim() {
  static Shim s;
  static std::once_flag once;
  std::call_once(once, [] {  // a throw leaves the flag unset: the next call tries again
    const std::vector<std::string> tried = shim_candidates();
    const std::string path = sentencepiece_shim_path();
    if (!fs::is_regular_file(path)) {
      std::string list;
      for (const auto& p : tried) list += (list.empty() ? "'" : ", '") + p + "'";
      HALO_FAIL("tokenizer library libhalo_spm.so not found (looked at ", list,
                "); it is built next to halo-clip, or set HALO_SPM_SHIM to its path");
    }
    // A new link namespace: the shim gets its own SentencePiece, protobuf and C++ runtime.
    void* lib = dlmopen(LM_ID_NEWLM, path.c_str(), RTLD_NOW | RTLD_LOCAL);
    HALO_CHECK(lib != nullptr, "cannot load tokenizer library '", path, "': ", dlerror());
    Shim loaded;
    resolve(lib, path, "hspm_load", loaded.load);
    resolve(lib, path, "hspm_free", loaded.free_model);
    resolve(lib, path, "hspm_encode", loaded.encode);
    resolve(lib, path, "hspm_decode", loaded.decode);
    resolve(lib, path, "hspm_vocab_size", loaded.vocab_size);
    resolve(lib, path, "hspm_special_ids", loaded.special_ids);
    resolve(lib, path, "hspm_train", loaded.train);
    s = loaded;
  });
  return s;
}

void remove_quietly(const std::string& path) {
  std::error_code ec;
  fs::remove(path, ec);
}

}  // namespace

struct Tokenizer::Model {
  void* handle = nullptr;  // a SentencePieceProcessor inside the shim; its Encode is const
  int64_t vocab = 0, pad = 0, bos = 0, eos = 0;
  ~Model() {
    if (handle != nullptr) shim().free_model(handle);
  }
};

std::string sentencepiece_shim_path() {
  const std::vector<std::string> candidates = shim_candidates();
  for (const auto& path : candidates) {
    if (fs::is_regular_file(path)) return path;
  }
  return candidates.empty() ? std::string("libhalo_spm.so") : candidates.front();
}

Tokenizer Tokenizer::load(const std::string& model_path) {
  check_input_file(model_path, "tokenizer model", "tokenizer.model");
  char err[512] = {0};
  auto model = std::make_shared<Model>();
  model->handle = shim().load(model_path.c_str(), err, sizeof err);
  HALO_CHECK(model->handle != nullptr, "cannot load tokenizer model '", model_path, "': ", err);
  int pad = 0, bos = 0, eos = 0, unk = 0;
  shim().special_ids(model->handle, &pad, &bos, &eos, &unk);
  HALO_CHECK(pad >= 0 && bos >= 0 && eos >= 0, "tokenizer model '", model_path,
             "' lacks a pad, begin or end token (train it with halo-clip tokenizer train)");
  model->vocab = shim().vocab_size(model->handle);
  model->pad = pad, model->bos = bos, model->eos = eos;
  Tokenizer t;
  t.model_ = std::move(model);
  return t;
}

void Tokenizer::train(const TokenizerTrainOptions& o) {
  HALO_CHECK(fs::is_regular_file(o.input), "tokenizer training text not found: '", o.input, "'");
  // SentencePiece reads `input` as a comma-separated list of files.
  HALO_CHECK(o.input.find_first_of(",\n") == std::string::npos,
             "tokenizer training text path must not contain a comma or newline: '", o.input, "'");
  HALO_CHECK(!o.model_prefix.empty() && o.model_prefix.find('\n') == std::string::npos,
             "tokenizer output prefix must be a non-empty path without newlines");
  const fs::path folder = fs::path(o.model_prefix).parent_path();
  HALO_CHECK(folder.empty() || fs::is_directory(folder), "tokenizer output folder '",
             folder.string(), "' does not exist (for prefix '", o.model_prefix, "')");
  HALO_CHECK(o.vocab_size >= 8 && o.vocab_size <= INT_MAX,
             "tokenizer vocab_size must be >= 8, got ", o.vocab_size);
  HALO_CHECK(o.max_sentences > 100,
             "tokenizer max_sentences must be > 100 (SentencePiece's own limit), got ",
             o.max_sentences);
  HALO_CHECK(o.model_type == "unigram" || o.model_type == "bpe",
             "tokenizer model type must be unigram or bpe, got '", o.model_type, "'");

  // Train into a temporary prefix beside the target, then rename: a reader never sees half a model.
  const std::string tmp = o.model_prefix + ".tmp-" + std::to_string(::getpid());
  const unsigned threads = std::clamp(std::thread::hardware_concurrency(), 1u, 16u);
  const std::string args =
      "input=" + o.input + "\nmodel_prefix=" + tmp +
      "\nvocab_size=" + std::to_string(o.vocab_size) + "\nmodel_type=" + o.model_type +
      "\ncharacter_coverage=1.0\npad_id=0\nbos_id=1\neos_id=2\nunk_id=3"
      "\nhard_vocab_limit=false\nnum_threads=" +
      std::to_string(threads) + "\ninput_sentence_size=" + std::to_string(o.max_sentences) +
      "\nshuffle_input_sentence=true" + "\nminloglevel=1\n";
  char err[1024] = {0};
  const int status = shim().train(args.c_str(), err, sizeof err);
  if (status != 0) {
    remove_quietly(tmp + ".model");
    remove_quietly(tmp + ".vocab");
    HALO_FAIL("tokenizer training on '", o.input, "' failed: ", err);
  }
  for (const char* ext : {".vocab", ".model"}) {
    std::error_code ec;
    fs::rename(tmp + ext, o.model_prefix + ext, ec);
    if (ec) {
      remove_quietly(tmp + ".model");
      remove_quietly(tmp + ".vocab");
      HALO_FAIL("cannot write tokenizer file '", o.model_prefix + ext, "': ", ec.message());
    }
  }
}

const Tokenizer::Model& Tokenizer::model() const {
  HALO_CHECK(model_ != nullptr, "tokenizer used before Tokenizer::load");
  return *model_;
}

std::vector<int> Tokenizer::encode_ids(const std::string& text) const {
  const Model& m = model();
  // Every piece covers at least one byte, so text.size() ids always suffice.
  std::vector<int> ids(text.size() + 1);
  const int n = shim().encode(m.handle, text.c_str(), ids.data(), static_cast<int>(ids.size()));
  HALO_CHECK(n >= 0 && static_cast<size_t>(n) <= ids.size(), "tokenizer could not encode '", text,
             "'");
  ids.resize(static_cast<size_t>(n));
  return ids;
}

std::string Tokenizer::decode(const std::vector<int>& ids) const {
  const Model& m = model();
  std::vector<int> pieces;
  for (int id : ids) {
    HALO_CHECK(id >= 0 && id < m.vocab, "tokenizer id ", id, " is outside the vocabulary of ",
               m.vocab);
    if (id != m.pad && id != m.bos && id != m.eos) pieces.push_back(id);
  }
  const int count = static_cast<int>(pieces.size());
  std::string out(pieces.size() * 16 + 16, '\0');
  int n = shim().decode(m.handle, pieces.data(), count, out.data(), static_cast<int>(out.size()));
  HALO_CHECK(n >= 0, "tokenizer could not decode the ids");
  if (static_cast<size_t>(n) >= out.size()) {  // did not fit: n is the full length
    out.assign(static_cast<size_t>(n) + 1, '\0');
    n = shim().decode(m.handle, pieces.data(), count, out.data(), static_cast<int>(out.size()));
    HALO_CHECK(n >= 0, "tokenizer could not decode the ids");
  }
  out.resize(static_cast<size_t>(n));
  return out;
}

torch::Tensor Tokenizer::encode(const std::vector<std::string>& texts,
                                int64_t context_length) const {
  const Model& m = model();
  HALO_CHECK(context_length >= 2, "context length must be >= 2 (room for begin and end), got ",
             context_length);
  const auto rows = static_cast<int64_t>(texts.size());
  torch::Tensor out = torch::full({rows, context_length}, m.pad, torch::kLong);
  int64_t* data = out.data_ptr<int64_t>();
  for (int64_t r = 0; r < rows; ++r) {
    const std::vector<int> ids = encode_ids(texts[static_cast<size_t>(r)]);
    // Too long: keep BOS, cut pieces, so that EOS is always the last real token.
    const int64_t keep = std::min<int64_t>(static_cast<int64_t>(ids.size()), context_length - 2);
    int64_t* row = data + r * context_length;
    row[0] = m.bos;
    std::copy(ids.begin(), ids.begin() + keep, row + 1);
    row[keep + 1] = m.eos;
  }
  return out;
}

int64_t Tokenizer::vocab_size() const {
  return model().vocab;
}
int64_t Tokenizer::pad_id() const {
  return model().pad;
}
int64_t Tokenizer::bos_id() const {
  return model().bos;
}
int64_t Tokenizer::eos_id() const {
  return model().eos;
}

}  // namespace halo::data
