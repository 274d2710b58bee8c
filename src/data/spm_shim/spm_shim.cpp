// A plain C interface over SentencePiece, built as its own shared library that links only
// SentencePiece. Debian's SentencePiece carries a private protobuf that clashes with LibTorch's,
// so halo::data::Tokenizer loads this library into a separate link namespace (dlmopen).
#include <cstring>
#include <exception>
#include <sstream>
#include <string>
#include <unordered_map>
#include <vector>

#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

namespace {
void set_error(char* err, int errlen, const std::string& message) {
  if (err == nullptr || errlen <= 0) return;
  std::strncpy(err, message.c_str(), static_cast<size_t>(errlen) - 1);
  err[errlen - 1] = '\0';
}
}  // namespace

extern "C" {

void* hspm_load(const char* path, char* err, int errlen) {
  try {
    auto* sp = new sentencepiece::SentencePieceProcessor();
    const auto status = sp->Load(path);
    if (!status.ok()) {
      set_error(err, errlen, status.ToString());
      delete sp;
      return nullptr;
    }
    return sp;
  } catch (const std::exception& e) {
    set_error(err, errlen, e.what());
    return nullptr;
  }
}

void hspm_free(void* handle) {
  delete static_cast<sentencepiece::SentencePieceProcessor*>(handle);
}

// Writes at most max_ids ids; returns how many the text has, or -1 on error.
int hspm_encode(void* handle, const char* text, int* ids, int max_ids) {
  try {
    std::vector<int> out;
    if (!static_cast<sentencepiece::SentencePieceProcessor*>(handle)->Encode(text, &out).ok())
      return -1;
    for (size_t i = 0; i < out.size() && static_cast<int>(i) < max_ids; ++i) ids[i] = out[i];
    return static_cast<int>(out.size());
  } catch (...) {
    return -1;
  }
}

// Writes at most out_len bytes (NUL-terminated); returns the decoded length, or -1 on error.
int hspm_decode(void* handle, const int* ids, int n, char* out, int out_len) {
  try {
    std::string text;
    if (!static_cast<sentencepiece::SentencePieceProcessor*>(handle)
             ->Decode(std::vector<int>(ids, ids + n), &text)
             .ok()) {
      return -1;
    }
    if (out_len > 0) set_error(out, out_len, text);
    return static_cast<int>(text.size());
  } catch (...) {
    return -1;
  }
}

int hspm_vocab_size(void* handle) {
  return static_cast<sentencepiece::SentencePieceProcessor*>(handle)->GetPieceSize();
}

void hspm_special_ids(void* handle, int* pad, int* bos, int* eos, int* unk) {
  auto* sp = static_cast<sentencepiece::SentencePieceProcessor*>(handle);
  *pad = sp->pad_id(), *bos = sp->bos_id(), *eos = sp->eos_id(), *unk = sp->unk_id();
}

// args: "key=value" lines (SentencePiece trainer flags without the leading --). 0 on success.
int hspm_train(const char* args, char* err, int errlen) {
  try {
    std::unordered_map<std::string, std::string> kwargs;
    std::istringstream lines(args);
    for (std::string line; std::getline(lines, line);) {
      const auto eq = line.find('=');
      if (eq != std::string::npos) kwargs[line.substr(0, eq)] = line.substr(eq + 1);
    }
    const auto status = sentencepiece::SentencePieceTrainer::Train(kwargs);
    if (!status.ok()) {
      set_error(err, errlen, status.ToString());
      return 1;
    }
    return 0;
  } catch (const std::exception& e) {
    set_error(err, errlen, e.what());
    return 1;
  }
}

}  // extern "C"
