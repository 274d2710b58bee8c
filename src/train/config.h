// The typed training configuration: the sections that each module declares and validates
// itself (model: encoders/, data and tokenizer: data/, loss: loss/, dist: dist/) plus the
// optimiser and the run (here), read once from YAML (unknown keys rejected with their path),
// `--set a.b=v` overrides, one validate(), and a YAML dump (saved beside every checkpoint).
// Each struct lists its fields once, in visit().
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "data/data_config.h"
#include "dist/dist_config.h"
#include "encoders/model_config.h"
#include "loss/loss_config.h"

namespace halo::train {

struct OptimConfig {
  double lr = 1e-3;
  double weight_decay =
      0.1;  // not applied to norms, biases, embeddings of position/class, or the loss
  double beta1 = 0.9, beta2 = 0.98, eps = 1e-6;
  int64_t warmup_steps = 50;  // linear warm-up, then cosine decay to 0
  double grad_clip = 1.0;     // max global gradient norm (0: off)
  double temperature_lr_scale =
      1.0;  // learning rate of the loss's scalars (temperature, bias) / lr
  template <class V>
  void visit(V& v) {
    v("lr", lr), v("weight_decay", weight_decay), v("beta1", beta1), v("beta2", beta2);
    v("eps", eps), v("warmup_steps", warmup_steps), v("grad_clip", grad_clip);
    v("temperature_lr_scale", temperature_lr_scale);
  }
  void validate() const;
};

struct TrainConfig {
  int64_t batch_size = 128;  // global batch: pairs per optimiser step
  // Exact gradient accumulation (train/step.h): each rank encodes its share of the batch in this
  // many micro-batches; the loss still sees the whole global batch. Must divide the share.
  int64_t accum_steps = 1;
  int64_t epochs = 10;
  int64_t max_steps = 0;  // > 0: stop after this many steps (the schedule spans them)
  int64_t seed = 0;
  std::string device = "cpu";      // cpu | cuda | cuda:N
  std::string precision = "fp32";  // fp32 | bf16 (autocast on CUDA or CPU; the loss stays fp32)
  int64_t log_every = 10;
  int64_t checkpoint_every = 200;
  int64_t keep_checkpoints = 2;  // older step checkpoints are deleted
  std::string run_dir = "runs/default";
  bool pair_dynamics =
      true;  // record each pair's mean mismatch scores over training (pair_dynamics.tsv)
  // Validation during training (rank 0): retrieval R@1/5 and, with a `mismatched` column, the
  // mismatch AUROC on this held-out manifest, every eval_every steps and at the end.
  std::string eval_manifest;
  int64_t eval_every = 500;
  template <class V>
  void visit(V& v) {
    v("batch_size", batch_size), v("accum_steps", accum_steps), v("epochs", epochs),
        v("max_steps", max_steps), v("seed", seed);
    v("device", device), v("precision", precision), v("log_every", log_every);
    v("checkpoint_every", checkpoint_every), v("keep_checkpoints", keep_checkpoints);
    v("run_dir", run_dir), v("pair_dynamics", pair_dynamics);
    v("eval_manifest", eval_manifest), v("eval_every", eval_every);
  }
  void validate() const;
};

struct Config {
  encoders::ModelConfig model;
  data::DataConfig data;
  data::TokenizerConfig tokenizer;
  loss::LossConfig loss;
  OptimConfig optim;
  TrainConfig train;
  dist::DistConfig dist;  // multi-process training (docs/distributed.md); unused in one process
  template <class V>
  void visit(V& v) {
    v("model", model), v("data", data), v("tokenizer", tokenizer), v("loss", loss);
    v("optim", optim), v("train", train), v("dist", dist);
  }
  // Each section's validate(), then the combinations across sections; throws halo::Error naming
  // the key (both keys for a combination) of the first invalid value.
  void validate() const;
};

// Reads a YAML file, applies `a.b=v` overrides in order, rejects unknown keys, validates.
// `source` names the file in error messages.
Config load_config(const std::string& path, const std::vector<std::string>& overrides = {});
// Same from YAML text (tests, and configs stored beside checkpoints).
Config parse_config(const std::string& yaml_text, const std::vector<std::string>& overrides = {},
                    const std::string& source = "<text>");
std::string to_yaml(const Config& config);

// The keys that give the model and the loss their shapes (model.*, loss.name, loss.temperature,
// loss.learn_temperature) where `saved` (a checkpoint's configuration) and `now` differ, each as
// "KEY (checkpoint V, now W)". Empty: a checkpoint of `saved` can be resumed under `now`.
std::vector<std::string> shape_key_differences(const Config& saved, const Config& now);

}  // namespace halo::train
