// Loading a trained model from a checkpoint (see trained_model.h).
#include "train/trained_model.h"

#include <filesystem>

#include <torch/torch.h>

#include "common/cpu_convolutions.h"
#include "common/error.h"
#include "train/checkpoint.h"
#include "train/components.h"

namespace fs = std::filesystem;

namespace halo::train {

namespace {

std::string find_tokenizer(const std::string& checkpoint, const Config& config) {
  const fs::path beside_run = fs::path(checkpoint).parent_path().parent_path() / "tokenizer.model";
  if (fs::exists(beside_run)) return beside_run.string();
  if (!config.tokenizer.model.empty() && fs::exists(config.tokenizer.model))
    return config.tokenizer.model;
  HALO_FAIL("no tokenizer for checkpoint '", checkpoint, "': expected ", beside_run.string(),
            config.tokenizer.model.empty() ? std::string() : " or " + config.tokenizer.model);
}

}  // namespace

TrainedModel load_trained_model(const std::string& checkpoint, const std::string& device) {
  std::string path = checkpoint;
  if (fs::is_directory(path)) path = resolve_checkpoint(path, "latest");
  HALO_CHECK(fs::is_regular_file(path), "checkpoint '", checkpoint, "' does not exist");

  TrainedModel m;
  m.checkpoint = path;
  m.config = parse_config(checkpoint_config(path));
  const std::string tokenizer = find_tokenizer(path, m.config);
  check_checkpoint_tokenizer(path,
                             tokenizer);  // another run's tokenizer would give garbage figures
  m.tokenizer = data::Tokenizer::load(tokenizer);
  std::string where = device;
  if (where.empty())
    where = torch::Device(m.config.train.device).is_cuda() && torch::cuda::is_available()
                ? m.config.train.device
                : "cpu";
  m.device = torch::Device(where);
  HALO_CHECK(!m.device.is_cuda() || torch::cuda::is_available(), "device '", where,
             "' asked for but no CUDA device is available");

  m.model = encoders::ClipModel(m.config.model, m.tokenizer.vocab_size(), m.tokenizer.eos_id());
  m.loss = loss::make_contrastive_loss(loss_options(m.config));
  m.step = load_checkpoint(path, *m.model, *m.loss, nullptr).step;
  if (m.device.is_cpu()) check_cpu_convolutions();  // before the first CPU convolution
  m.model->to(m.device);
  m.loss->to(m.device);
  m.model->eval();
  m.loss->eval();
  return m;
}

}  // namespace halo::train
