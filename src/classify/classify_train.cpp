// Classifier training loop (see classify_train.h).
#include "classify/classify_train.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>

#include <torch/torch.h>

#include "common/error.h"
#include "common/log.h"
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
  for (int64_t i = 0; i < batch.rows.numel(); ++i)
    labels.push_back(manifest.labels[static_cast<size_t>(rows[i])]);
  return torch::tensor(labels, torch::kLong);
}

}  // namespace

TrainSummary train_classifier(encoders::ResNet& encoder, ClassifierHead& head,
                              const std::shared_ptr<const data::Manifest>& manifest,
                              const ClassifyOptions& o, const torch::Device& device) {
  HALO_CHECK(!manifest->labels.empty(), "--train: manifest '", manifest->path,
             "' has no 'label' column");
  data::BatchLoader loader(manifest, no_tokens, image_loader_options(o, /*training=*/true));
  // The ResNet's weight matrices are decayed; its norms and biases and the whole head (CE's
  // linear layer, HALO's centroids and temperature) are not.
  auto optimizer = train::make_optimizer(*encoder, *head, o.optim);
  std::vector<torch::Tensor> parameters = encoder->parameters();
  for (const auto& p : head->parameters()) parameters.push_back(p);

  const int64_t total_steps = o.epochs * loader.batches_per_epoch();
  log_message("training " + o.loss + " on " + std::to_string(manifest->size()) +
              " images: " + std::to_string(loader.batches_per_epoch()) + " steps per epoch, " +
              std::to_string(total_steps) + " steps, device " + device.str());
  std::filesystem::create_directories(o.out_dir);
  train::RunLog log(o.out_dir, /*resume_step=*/0,
                    total_steps);  // OUT/metrics.jsonl and the progress line
  encoder->train();
  head->train();
  TrainSummary s;
  const auto start = std::chrono::steady_clock::now();
  torch::Tensor loss;
  for (int64_t epoch = 0; epoch < o.epochs; ++epoch) {
    loader.start_epoch(epoch);
    while (std::optional<data::Batch> batch = loader.next()) {
      const double lr = train::learning_rate(s.steps, total_steps, o.optim);
      train::set_learning_rate(*optimizer, lr, o.optim);
      const torch::Tensor images = batch->images.to(device);
      const torch::Tensor labels = batch_labels(*batch, *manifest).to(device);
      loss = head->loss(encoder->forward(images), labels);
      optimizer->zero_grad();
      loss.backward();
      train::clip_gradients(parameters, o.optim.grad_clip);
      optimizer->step();
      ++s.steps;
      s.images += images.size(0);
      // -- every log_every steps: the loss read back, checked and logged
      Metrics metrics;
      if (s.steps % o.log_every == 0 || s.steps == total_steps) {
        s.final_loss = loss.item<double>();
        HALO_CHECK(std::isfinite(s.final_loss), "the loss became ", s.final_loss, " by step ",
                   s.steps);
        metrics = {{"loss", s.final_loss}, {"lr", lr}};
      }
      log.step(s.steps, epoch + 1, images.size(0), 0.0, metrics, o.log_every);
    }
  }
  if (loss.defined()) s.final_loss = loss.item<double>();
  s.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return s;
}

}  // namespace halo::classify
