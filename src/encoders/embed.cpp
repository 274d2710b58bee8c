// Batched embedding of manifests and texts (see embed.h).
#include "encoders/embed.h"

#include <algorithm>
#include <chrono>
#include <iostream>

#include <torch/torch.h>

#include "common/error.h"

namespace halo::encoders {

int64_t embed_batches(ClipModel& model, data::BatchSource& source, const torch::Device& device,
                      const EmbeddedBatchFn& take, int64_t progress_total) {
  torch::NoGradGuard no_grad;
  const auto start = std::chrono::steady_clock::now();
  int64_t seen = 0, last_report = 0;
  source.start_epoch(0, 0);
  while (auto batch = source.next()) {
    seen += static_cast<int64_t>(batch->rows.numel()) + batch->skipped;
    if (batch->rows.numel() > 0) {
      const torch::Tensor image =
          model->encode_image(batch->images.to(device)).to(torch::kCPU, torch::kFloat);
      const torch::Tensor text =
          model->encode_text(batch->tokens.to(device)).to(torch::kCPU, torch::kFloat);
      take(*batch, image, text);
    }
    if (progress_total > 0 && (seen - last_report >= 5000 || seen == progress_total)) {
      last_report = seen;
      const double seconds =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      std::cout << "  embedded " << seen << "/" << progress_total << " pairs, "
                << static_cast<int64_t>(static_cast<double>(seen) / std::max(seconds, 1e-9))
                << " pairs/s" << std::endl;
    }
  }
  return seen;
}

PairEmbeddings embed_pair_set(ClipModel& model, const data::Tokenizer& tokenizer,
                              int64_t context_length, const data::PairSet& pairs,
                              const data::LoaderOptions& loader, const torch::Device& device,
                              bool verbose) {
  const std::unique_ptr<data::BatchSource> source =
      pairs.loader(data::caption_encoder(tokenizer, context_length), loader, /*shuffle_buffer=*/1);
  std::vector<torch::Tensor> images, texts;
  PairEmbeddings out;
  const int64_t seen = embed_batches(
      model, *source, device,
      [&](const data::Batch& batch, const torch::Tensor& image, const torch::Tensor& text) {
        images.push_back(image);
        texts.push_back(text);
        const auto* r = batch.rows.data_ptr<int64_t>();
        out.rows.insert(out.rows.end(), r, r + batch.rows.numel());
      },
      verbose ? pairs.size() : 0);
  out.skipped = seen - static_cast<int64_t>(out.rows.size());
  if (images.empty()) {  // every image unreadable (skip_bad): nothing to return
    out.image = out.text = torch::empty({0, 0});
    return out;
  }
  out.image = torch::cat(images);
  out.text = torch::cat(texts);
  if (!std::is_sorted(out.rows.begin(),
                      out.rows.end())) {  // shard workers take turns: back to set order
    const torch::Tensor rows = torch::tensor(out.rows, torch::kLong);
    const torch::Tensor order = std::get<1>(rows.sort());
    out.image = out.image.index_select(0, order);
    out.text = out.text.index_select(0, order);
    const torch::Tensor sorted = rows.index_select(0, order).contiguous();
    out.rows.assign(sorted.data_ptr<int64_t>(), sorted.data_ptr<int64_t>() + sorted.numel());
  }
  return out;
}

torch::Tensor embed_texts(ClipModel& model, const data::Tokenizer& tokenizer,
                          int64_t context_length, const std::vector<std::string>& texts,
                          int64_t batch_size, const torch::Device& device) {
  torch::NoGradGuard no_grad;
  HALO_CHECK(!texts.empty(), "embed_texts: no text");
  std::vector<torch::Tensor> out;
  for (size_t i = 0; i < texts.size(); i += static_cast<size_t>(batch_size)) {
    const std::vector<std::string> chunk(
        texts.begin() + static_cast<std::ptrdiff_t>(i),
        texts.begin() + static_cast<std::ptrdiff_t>(
                            std::min(texts.size(), i + static_cast<size_t>(batch_size))));
    const torch::Tensor tokens = tokenizer.encode(chunk, context_length);
    out.push_back(model->encode_text(tokens.to(device)).to(torch::kCPU, torch::kFloat));
  }
  return torch::cat(out);
}

}  // namespace halo::encoders
