// Classifier training loop (see classify_train.h).
#include "classify/classify_train.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <limits>

#include <torch/torch.h>

#include "common/error.h"
#include "train/optimizer.h"
#include "train/run_log.h"

namespace halo::classify {

data::LoaderOptions image_loader_options(const ClassifyOptions& o, bool training) {
  data::LoaderOptions l;
  l.batch_size = o.batch_size;
  l.workers = o.workers;
  l.seed = o.seed;
  l.shuffle = training;
  l.drop_last = training;
  l.transform.size = o.image_size;
  l.transform.random_resized_crop = training && o.augment;
  l.transform.horizontal_flip = training && o.augment;
  return l;
}

torch::Tensor no_tokens(const std::vector<std::string>& captions) {
  return torch::zeros({static_cast<int64_t>(captions.size()), 0}, torch::kLong);
}

namespace {

torch::Tensor batch_labels(const data::Batch& batch, const data::Manifest& manifest) {
  std::vector<int64_t> labels;
  labels.reserve(static_cast<size_t>(batch.rows.numel()));
  const auto* rows = batch.rows.data_ptr<int64_t>();
  for (int64_t i = 0; i < batch.rows.numel(); ++i) labels.push_back(manifest.labels[static_cast<size_t>(rows[i])]);
  return torch::tensor(labels, torch::kLong);
}

}  // namespace

TrainSummary train_classifier(encoders::ResNet& encoder, ClassifierHead& head,
                              const std::shared_ptr<const data::Manifest>& manifest,
                              const ClassifyOptions& o, const torch::Device& device) {
  HALO_CHECK(!manifest->labels.empty(), "--train: manifest '", manifest->path, "' has no 'label' column");
  data::BatchLoader loader(manifest, no_tokens, image_loader_options(o, /*training=*/true));
  // The ResNet's weight matrices are decayed; its norms and biases and the whole head (CE's
  // linear layer, HALO's centroids and temperature) are not.
  auto optimizer = train::make_optimizer(*encoder, *head, o.optim);
  std::vector<torch::Tensor> parameters = encoder->parameters();
  for (const auto& p : head->parameters()) parameters.push_back(p);
  const double max_norm = o.optim.grad_clip > 0 ? o.optim.grad_clip : std::numeric_limits<double>::infinity();

  const int64_t total_steps = o.epochs * loader.batches_per_epoch();
  train::log_message("training " + o.loss + " on " + std::to_string(manifest->size()) + " images: " +
                     std::to_string(loader.batches_per_epoch()) + " steps per epoch, " + std::to_string(total_steps) +
                     " steps, device " + device.str());
  encoder->train();
  head->train();
  TrainSummary s;
  const auto start = std::chrono::steady_clock::now();
  auto window_start = start;
  int64_t window_images = 0;
  for (int64_t epoch = 0; epoch < o.epochs; ++epoch) {
    loader.start_epoch(epoch);
    while (std::optional<data::Batch> batch = loader.next()) {
      const double lr = train::learning_rate(s.steps, total_steps, o.optim);
      train::set_learning_rate(*optimizer, lr, o.optim);
      const torch::Tensor images = batch->images.to(device);
      const torch::Tensor labels = batch_labels(*batch, *manifest).to(device);
      const torch::Tensor loss = head->loss(encoder->forward(images), labels);
      optimizer->zero_grad();
      loss.backward();
      torch::nn::utils::clip_grad_norm_(parameters, max_norm);
      optimizer->step();

      s.final_loss = loss.item<double>();
      HALO_CHECK(std::isfinite(s.final_loss), "the loss became ", s.final_loss, " at step ", s.steps + 1);
      ++s.steps;
      s.images += images.size(0);
      window_images += images.size(0);
      // -- every log_every steps: a progress line
      if (s.steps % o.log_every == 0 || s.steps == total_steps) {
        const auto now = std::chrono::steady_clock::now();
        const double window_s = std::chrono::duration<double>(now - window_start).count();
        const double elapsed = std::chrono::duration<double>(now - start).count();
        const double eta = elapsed / static_cast<double>(s.steps) * static_cast<double>(total_steps - s.steps);
        char line[200];
        std::snprintf(line, sizeof line, "step %lld/%lld | epoch %lld | loss %.4f | lr %.2e | %.0f img/s | ETA %s",
                      static_cast<long long>(s.steps), static_cast<long long>(total_steps),
                      static_cast<long long>(epoch + 1), s.final_loss, lr,
                      static_cast<double>(window_images) / std::max(window_s, 1e-9), train::format_duration(eta).c_str());
        train::log_message(line);
        window_start = now;
        window_images = 0;
      }
    }
  }
  s.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return s;
}

}  // namespace halo::classify
