// Loading a checkpoint for evaluation and embedding manifests in batches (see trained_model.h).
#include "eval/trained_model.h"

#include <chrono>
#include <filesystem>
#include <iostream>

#include <torch/torch.h>

#include "common/error.h"
#include "data/loader.h"
#include "train/checkpoint.h"
#include "train/components.h"

namespace fs = std::filesystem;

namespace halo::eval {

namespace {

std::string find_tokenizer(const std::string& checkpoint, const train::Config& config) {
  const fs::path beside_run = fs::path(checkpoint).parent_path().parent_path() / "tokenizer.model";
  if (fs::exists(beside_run)) return beside_run.string();
  if (!config.tokenizer.model.empty() && fs::exists(config.tokenizer.model)) return config.tokenizer.model;
  HALO_FAIL("no tokenizer for checkpoint '", checkpoint, "': expected ", beside_run.string(),
            config.tokenizer.model.empty() ? std::string() : " or " + config.tokenizer.model);
}

}  // namespace

TrainedModel load_trained_model(const std::string& checkpoint, const std::string& device) {
  std::string path = checkpoint;
  if (fs::is_directory(path)) path = train::resolve_checkpoint(path, "latest");
  HALO_CHECK(fs::is_regular_file(path), "checkpoint '", checkpoint, "' does not exist");

  TrainedModel m;
  m.checkpoint = path;
  m.config = train::parse_config(train::checkpoint_config(path));
  m.tokenizer = data::Tokenizer::load(find_tokenizer(path, m.config));
  std::string where = device;
  if (where.empty()) where = torch::Device(m.config.train.device).is_cuda() && torch::cuda::is_available() ? m.config.train.device : "cpu";
  m.device = torch::Device(where);
  HALO_CHECK(!m.device.is_cuda() || torch::cuda::is_available(), "device '", where, "' asked for but no CUDA device is available");

  m.model = encoders::ClipModel(m.config.model, m.tokenizer.vocab_size(), m.tokenizer.eos_id());
  m.loss = loss::make_contrastive_loss(train::loss_options(m.config));
  m.step = train::load_checkpoint(path, *m.model, *m.loss, nullptr).step;
  m.model->to(m.device);
  m.loss->to(m.device);
  m.model->eval();
  m.loss->eval();
  return m;
}

PairEmbeddings embed_pairs(TrainedModel& m, std::shared_ptr<const data::Manifest> manifest, const EmbedOptions& options) {
  torch::NoGradGuard no_grad;
  data::LoaderOptions lo = train::eval_loader_options(m.config, options.batch_size);
  lo.workers = options.workers;
  lo.skip_bad = options.skip_bad;
  const int64_t context = m.config.model.text.context_length;
  data::BatchLoader loader(
      manifest, [tok = m.tokenizer, context](const std::vector<std::string>& captions) { return tok.encode(captions, context); },
      lo);

  std::vector<torch::Tensor> images, texts;
  PairEmbeddings out;
  const auto start = std::chrono::steady_clock::now();
  int64_t done = 0, last_report = 0;
  loader.start_epoch(0);
  while (auto batch = loader.next()) {
    done += static_cast<int64_t>(batch->rows.numel()) + batch->skipped;
    if (batch->rows.numel() == 0) continue;
    images.push_back(m.model->encode_image(batch->images.to(m.device)).to(torch::kCPU, torch::kFloat));
    texts.push_back(m.model->encode_text(batch->tokens.to(m.device)).to(torch::kCPU, torch::kFloat));
    const auto* r = batch->rows.data_ptr<int64_t>();
    out.rows.insert(out.rows.end(), r, r + batch->rows.numel());
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (options.verbose && (done - last_report >= 5000 || done == manifest->size())) {
      last_report = done;
      std::cout << "  embedded " << done << "/" << manifest->size() << " pairs, "
                << static_cast<int64_t>(static_cast<double>(done) / std::max(seconds, 1e-9)) << " pairs/s" << std::endl;
    }
  }
  out.skipped = loader.skipped_images();
  if (images.empty()) {  // every image unreadable (skip_bad): nothing to return
    out.image = out.text = torch::empty({0, m.config.model.embed_dim});
    return out;
  }
  out.image = torch::cat(images);
  out.text = torch::cat(texts);
  return out;
}

torch::Tensor embed_texts(TrainedModel& m, const std::vector<std::string>& texts, int64_t batch_size) {
  torch::NoGradGuard no_grad;
  HALO_CHECK(!texts.empty(), "embed_texts: no text");
  std::vector<torch::Tensor> out;
  for (size_t i = 0; i < texts.size(); i += static_cast<size_t>(batch_size)) {
    const std::vector<std::string> chunk(texts.begin() + static_cast<std::ptrdiff_t>(i),
                                         texts.begin() + static_cast<std::ptrdiff_t>(std::min(texts.size(), i + static_cast<size_t>(batch_size))));
    const torch::Tensor tokens = m.tokenizer.encode(chunk, m.config.model.text.context_length);
    out.push_back(m.model->encode_text(tokens.to(m.device)).to(torch::kCPU, torch::kFloat));
  }
  return torch::cat(out);
}

}  // namespace halo::eval
