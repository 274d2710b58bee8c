// Atomic checkpoint writing, rotation, resolution and loading (see checkpoint.h).
#include "train/checkpoint.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include "common/atomic_file.h"
#include "common/error.h"
#include "common/log.h"

namespace fs = std::filesystem;

namespace halo::train {

namespace {

fs::path checkpoint_dir(const std::string& run_dir) {
  return fs::path(run_dir) / "checkpoints";
}

void rotate(const fs::path& dir, int64_t keep) {
  std::vector<fs::path> steps;
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    if (name.rfind("step_", 0) == 0 && e.path().extension() == ".pt") steps.push_back(e.path());
  }
  std::sort(steps.begin(), steps.end());
  for (size_t i = 0; i + static_cast<size_t>(keep) < steps.size(); ++i) fs::remove(steps[i]);
}

torch::serialize::InputArchive open_checkpoint(const std::string& path) {
  torch::serialize::InputArchive archive;
  try {
    archive.load_from(path);
  } catch (const c10::Error& e) {
    HALO_FAIL("cannot read checkpoint '", path, "': ", e.what_without_backtrace());
  }
  return archive;
}

std::string shape_text(c10::IntArrayRef sizes) {
  std::ostringstream out;
  out << "[";
  for (size_t i = 0; i < sizes.size(); ++i) out << (i ? ", " : "") << sizes[i];
  out << "]";
  return out.str();
}

// Compares `module`'s parameters and buffers, recursively, with those in `archive`.
void compare_shapes(torch::serialize::InputArchive& archive, const torch::nn::Module& module,
                    const std::string& prefix, std::vector<std::string>& differences) {
  auto compare = [&](const std::string& key, const torch::Tensor& now, bool is_buffer) {
    if (!now.defined()) return;  // Module::save writes no shape for it either
    torch::Tensor saved;
    if (!archive.try_read(key, saved, is_buffer)) {
      differences.push_back(prefix + key + ": not in the checkpoint");
    } else if (saved.sizes() != now.sizes()) {
      differences.push_back(prefix + key + ": checkpoint " + shape_text(saved.sizes()) +
                            ", this configuration " + shape_text(now.sizes()));
    }
  };
  for (const auto& p : module.named_parameters(/*recurse=*/false))
    compare(p.key(), p.value(), false);
  for (const auto& b : module.named_buffers(/*recurse=*/false)) compare(b.key(), b.value(), true);
  for (const auto& child : module.named_children()) {
    if (!child.value()->is_serializable()) continue;  // as Module::save: not in any checkpoint
    torch::serialize::InputArchive sub;
    if (!archive.try_read(child.key(), sub)) {
      differences.push_back(prefix + child.key() + ": not in the checkpoint");
      continue;
    }
    compare_shapes(sub, *child.value(), prefix + child.key() + ".", differences);
  }
}

}  // namespace

std::string tokenizer_fingerprint(const std::string& tokenizer_model) {
  std::ifstream in(tokenizer_model, std::ios::binary);
  HALO_CHECK(in.good(), "cannot read tokenizer model '", tokenizer_model, "'");
  uint64_t hash = 14695981039346656037ull;  // FNV-1a, 64 bits
  uint64_t bytes = 0;
  char buffer[1 << 16];
  while (in) {
    in.read(buffer, sizeof buffer);
    const std::streamsize n = in.gcount();
    for (std::streamsize i = 0; i < n; ++i) {
      hash ^= static_cast<unsigned char>(buffer[i]);
      hash *= 1099511628211ull;
    }
    bytes += static_cast<uint64_t>(n);
  }
  char text[64];
  std::snprintf(text, sizeof text, "fnv1a64:%016llx bytes:%llu",
                static_cast<unsigned long long>(hash), static_cast<unsigned long long>(bytes));
  return text;
}

std::string checkpoint_tokenizer_fingerprint(const std::string& path) {
  torch::serialize::InputArchive archive = open_checkpoint(path);
  c10::IValue value;
  if (!archive.try_read("tokenizer_fingerprint", value) || !value.isString()) return "";
  return value.toStringRef();
}

void check_checkpoint_tokenizer(const std::string& checkpoint, const std::string& tokenizer_model) {
  const std::string saved = checkpoint_tokenizer_fingerprint(checkpoint);
  if (saved.empty()) {
    log_message("warning: checkpoint '" + checkpoint +
                "' predates tokenizer fingerprints; cannot check that '" + tokenizer_model +
                "' is the tokenizer it was trained with");
    return;
  }
  const std::string now = tokenizer_fingerprint(tokenizer_model);
  HALO_CHECK(saved == now, "checkpoint '", checkpoint,
             "' was trained with another tokenizer than '", tokenizer_model,
             "' (checkpoint: ", saved, "; this file: ", now,
             "): give the tokenizer.model of the run that wrote the checkpoint");
}

void check_checkpoint_shapes(const std::string& path, const torch::nn::Module& model,
                             const torch::nn::Module& loss) {
  torch::serialize::InputArchive archive = open_checkpoint(path);
  std::vector<std::string> differences;
  for (const auto& [key, module] :
       {std::pair<const char*, const torch::nn::Module*>{"model", &model}, {"loss", &loss}}) {
    torch::serialize::InputArchive sub;
    if (!archive.try_read(key, sub)) {
      differences.push_back(std::string(key) + ": not in the checkpoint");
      continue;
    }
    compare_shapes(sub, *module, std::string(key) + ".", differences);
  }
  if (differences.empty()) return;
  std::string list;
  for (const auto& d : differences) list += "\n  " + d;
  HALO_FAIL("checkpoint '", path, "' does not fit this configuration (", differences.size(),
            " tensor(s) differ):", list);
}

std::string save_checkpoint(const std::string& run_dir, const std::string& name,
                            torch::nn::Module& model, torch::nn::Module& loss,
                            torch::optim::Optimizer& optimizer, const TrainingState& state,
                            const std::string& config_yaml, int64_t keep) {
  const fs::path dir = checkpoint_dir(run_dir);
  fs::create_directories(dir);
  torch::serialize::OutputArchive archive, model_archive, loss_archive, optim_archive;
  model.save(model_archive);
  loss.save(loss_archive);
  optimizer.save(optim_archive);
  archive.write("model", model_archive);
  archive.write("loss", loss_archive);
  archive.write("optimizer", optim_archive);
  archive.write("step", torch::tensor(state.step));
  archive.write("epoch", torch::tensor(state.epoch));
  archive.write("batch_in_epoch", torch::tensor(state.batch_in_epoch));
  archive.write("rng", at::detail::getDefaultCPUGenerator().get_state());
  archive.write("config", c10::IValue(config_yaml));
  if (!state.data_layout.empty()) archive.write("data_layout", c10::IValue(state.data_layout));
  // The tokenizer the run trains with (kept in its folder): eval and resume check it.
  const fs::path tokenizer = fs::path(run_dir) / "tokenizer.model";
  if (fs::is_regular_file(tokenizer))
    archive.write("tokenizer_fingerprint", c10::IValue(tokenizer_fingerprint(tokenizer.string())));
  if (!state.tensors.empty()) {
    torch::serialize::OutputArchive tensors;
    for (const auto& [key, value] : state.tensors) tensors.write(key, value);
    archive.write("state_tensors", tensors);
  }

  const fs::path final_path = dir / (name + ".pt");
  write_file_atomically(final_path.string(),
                        [&](const std::string& temporary) { archive.save_to(temporary); });
  write_file_atomically((dir / "latest").string(), final_path.filename().string() + "\n");
  rotate(dir, keep);
  return final_path.string();
}

std::string resolve_checkpoint(const std::string& run_dir, const std::string& which) {
  if (which != "latest") {
    HALO_CHECK(fs::is_regular_file(which), "checkpoint not found: '", which, "'");
    return which;
  }
  const fs::path pointer = checkpoint_dir(run_dir) / "latest";
  std::ifstream in(pointer);
  HALO_CHECK(in.good(), "no checkpoint to resume in '", run_dir, "' (", pointer.string(),
             " is missing)");
  std::string name;
  std::getline(in, name);
  const fs::path path = checkpoint_dir(run_dir) / name;
  HALO_CHECK(fs::is_regular_file(path), "'", pointer.string(), "' names '", name,
             "', which does not exist");
  return path.string();
}

TrainingState load_checkpoint(const std::string& path, torch::nn::Module& model,
                              torch::nn::Module& loss, torch::optim::Optimizer* optimizer) {
  torch::serialize::InputArchive archive, model_archive, loss_archive, optim_archive;
  try {
    archive.load_from(path);
  } catch (const c10::Error& e) {
    HALO_FAIL("cannot read checkpoint '", path, "': ", e.what_without_backtrace());
  }
  TrainingState state;
  try {
    archive.read("model", model_archive);
    model.load(model_archive);
    archive.read("loss", loss_archive);
    loss.load(loss_archive);
    if (optimizer) {
      archive.read("optimizer", optim_archive);
      optimizer->load(optim_archive);
    }
    auto scalar = [&](const char* key) {
      torch::Tensor t;
      archive.read(key, t);
      return t.item<int64_t>();
    };
    state.step = scalar("step");
    state.epoch = scalar("epoch");
    state.batch_in_epoch = scalar("batch_in_epoch");
    c10::IValue layout;
    if (archive.try_read("data_layout", layout) && layout.isString())
      state.data_layout = layout.toStringRef();
    torch::serialize::InputArchive tensors;
    if (archive.try_read("state_tensors", tensors)) {
      for (const auto& key : tensors.keys()) {
        torch::Tensor t;
        tensors.read(key, t);
        state.tensors[key] = t;
      }
    }
    torch::Tensor rng;
    archive.read("rng", rng);
    at::Generator generator = at::detail::getDefaultCPUGenerator();
    generator.set_state(rng);
  } catch (const c10::Error& e) {
    HALO_FAIL("checkpoint '", path,
              "' does not fit this model/configuration: ", e.what_without_backtrace());
  }
  return state;
}

std::string checkpoint_data_layout(const std::string& path) {
  torch::serialize::InputArchive archive = open_checkpoint(path);
  c10::IValue layout;
  if (!archive.try_read("data_layout", layout) || !layout.isString()) return "";
  return layout.toStringRef();
}

std::string checkpoint_config(const std::string& path) {
  torch::serialize::InputArchive archive = open_checkpoint(path);
  c10::IValue config;
  HALO_CHECK(archive.try_read("config", config) && config.isString(), "checkpoint '", path,
             "' holds no configuration");
  return config.toStringRef();
}

}  // namespace halo::train
