// Batched embedding of manifests and texts (see embed.h).
#include "encoders/embed.h"

#include <algorithm>
#include <chrono>
#include <iostream>

#include <torch/torch.h>

#include "common/error.h"

namespace halo::encoders {

PairEmbeddings embed_pairs(ClipModel& model, const data::Tokenizer& tokenizer, int64_t context_length,
                           std::shared_ptr<const data::Manifest> manifest, const data::LoaderOptions& options,
                           const torch::Device& device, bool verbose) {
  torch::NoGradGuard no_grad;
  const int64_t total = manifest->size();
  data::BatchLoader loader(
      std::move(manifest),
      [tok = tokenizer, context_length](const std::vector<std::string>& captions) {
        return tok.encode(captions, context_length);
      },
      options);

  std::vector<torch::Tensor> images, texts;
  PairEmbeddings out;
  const auto start = std::chrono::steady_clock::now();
  int64_t done = 0, last_report = 0;
  loader.start_epoch(0);
  while (auto batch = loader.next()) {
    done += static_cast<int64_t>(batch->rows.numel()) + batch->skipped;
    if (batch->rows.numel() == 0) continue;
    images.push_back(model->encode_image(batch->images.to(device)).to(torch::kCPU, torch::kFloat));
    texts.push_back(model->encode_text(batch->tokens.to(device)).to(torch::kCPU, torch::kFloat));
    const auto* r = batch->rows.data_ptr<int64_t>();
    out.rows.insert(out.rows.end(), r, r + batch->rows.numel());
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (verbose && (done - last_report >= 5000 || done == total)) {
      last_report = done;
      std::cout << "  embedded " << done << "/" << total << " pairs, "
                << static_cast<int64_t>(static_cast<double>(done) / std::max(seconds, 1e-9)) << " pairs/s" << std::endl;
    }
  }
  out.skipped = loader.skipped_images();
  if (images.empty()) {  // every image unreadable (skip_bad): nothing to return
    out.image = out.text = torch::empty({0, 0});
    return out;
  }
  out.image = torch::cat(images);
  out.text = torch::cat(texts);
  return out;
}

int64_t embed_batches(ClipModel& model, data::BatchSource& source, const torch::Device& device,
                      const EmbeddedBatchFn& take) {
  torch::NoGradGuard no_grad;
  int64_t seen = 0;
  source.start_epoch(0, 0);
  while (auto batch = source.next()) {
    seen += static_cast<int64_t>(batch->rows.numel()) + batch->skipped;
    if (batch->rows.numel() == 0) continue;
    const torch::Tensor image = model->encode_image(batch->images.to(device)).to(torch::kCPU, torch::kFloat);
    const torch::Tensor text = model->encode_text(batch->tokens.to(device)).to(torch::kCPU, torch::kFloat);
    take(*batch, image, text);
  }
  return seen;
}

PairEmbeddings embed_all(ClipModel& model, data::BatchSource& source, const torch::Device& device) {
  std::vector<torch::Tensor> images, texts;
  PairEmbeddings out;
  const int64_t seen = embed_batches(model, source, device,
                                     [&](const data::Batch& batch, const torch::Tensor& image, const torch::Tensor& text) {
                                       images.push_back(image);
                                       texts.push_back(text);
                                       const auto* r = batch.rows.data_ptr<int64_t>();
                                       out.rows.insert(out.rows.end(), r, r + batch.rows.numel());
                                     });
  out.skipped = seen - static_cast<int64_t>(out.rows.size());
  if (images.empty()) {
    out.image = out.text = torch::empty({0, 0});
    return out;
  }
  out.image = torch::cat(images);
  out.text = torch::cat(texts);
  return out;
}

torch::Tensor embed_texts(ClipModel& model, const data::Tokenizer& tokenizer, int64_t context_length,
                          const std::vector<std::string>& texts, int64_t batch_size, const torch::Device& device) {
  torch::NoGradGuard no_grad;
  HALO_CHECK(!texts.empty(), "embed_texts: no text");
  std::vector<torch::Tensor> out;
  for (size_t i = 0; i < texts.size(); i += static_cast<size_t>(batch_size)) {
    const std::vector<std::string> chunk(
        texts.begin() + static_cast<std::ptrdiff_t>(i),
        texts.begin() + static_cast<std::ptrdiff_t>(std::min(texts.size(), i + static_cast<size_t>(batch_size))));
    const torch::Tensor tokens = tokenizer.encode(chunk, context_length);
    out.push_back(model->encode_text(tokens.to(device)).to(torch::kCPU, torch::kFloat));
  }
  return torch::cat(out);
}

}  // namespace halo::encoders
