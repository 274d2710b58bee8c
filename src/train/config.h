// The typed training configuration: nested structs with in-class defaults, read once from YAML
// (unknown keys rejected with their path), `--set a.b=v` overrides, one validate(), and a YAML
// dump (saved beside every checkpoint). Each struct lists its fields once, in visit().
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace halo::train {

struct ImageEncoderConfig {
  std::string type = "vit";  // vit | resnet
  int64_t image_size = 32;
  int64_t patch_size = 8;    // vit
  int64_t width = 64;        // vit: token width; resnet: channels of the first stage
  int64_t layers = 2;        // vit: transformer blocks; resnet: stages (channels double each)
  int64_t blocks_per_stage = 1;  // resnet: residual blocks in each stage
  int64_t heads = 4;         // vit
  double mlp_ratio = 4.0;    // vit
  std::string pool = "cls";  // vit: cls | mean
  template <class V> void visit(V& v) {
    v("type", type), v("image_size", image_size), v("patch_size", patch_size), v("width", width);
    v("layers", layers), v("blocks_per_stage", blocks_per_stage), v("heads", heads), v("mlp_ratio", mlp_ratio), v("pool", pool);
  }
};

struct TextEncoderConfig {
  int64_t context_length = 32;
  int64_t width = 64;
  int64_t layers = 2;
  int64_t heads = 4;
  double mlp_ratio = 4.0;
  template <class V> void visit(V& v) {
    v("context_length", context_length), v("width", width), v("layers", layers);
    v("heads", heads), v("mlp_ratio", mlp_ratio);
  }
};

struct ModelConfig {
  int64_t embed_dim = 64;  // D of the shared embedding space
  ImageEncoderConfig image;
  TextEncoderConfig text;
  bool center_embeddings = false;  // subtract each modality's mean embedding (encoders/centering.h)
  double center_momentum = 0.01;   // of the running mean used at inference
  template <class V> void visit(V& v) {
    v("embed_dim", embed_dim), v("image", image), v("text", text);
    v("center_embeddings", center_embeddings), v("center_momentum", center_momentum);
  }
};

struct AugmentConfig {
  bool random_resized_crop = true;
  double crop_scale_min = 0.8;  // area fraction range of the random crop
  double crop_scale_max = 1.0;
  bool horizontal_flip = false;  // off: flips change captions such as "left"
  template <class V> void visit(V& v) {
    v("random_resized_crop", random_resized_crop), v("crop_scale_min", crop_scale_min);
    v("crop_scale_max", crop_scale_max), v("horizontal_flip", horizontal_flip);
  }
};

struct DataConfig {
  std::string train_manifest;  // TSV (or CSV) with a header; image paths relative to it
  std::string separator = "\t";
  std::string image_key = "image_path";
  std::string caption_key = "caption";
  int64_t workers = 2;           // decoding threads
  int64_t prefetch_batches = 4;  // bounded queue length
  bool skip_bad = false;         // skip (and count) unreadable images instead of stopping
  std::vector<double> mean{0.48145466, 0.4578275, 0.40821073};  // per RGB channel
  std::vector<double> std{0.26862954, 0.26130258, 0.27577711};
  AugmentConfig augment;
  // Cross-scoring (docs/evaluation.md): with folds = k > 1, the data row with index i (its line
  // number minus 2) belongs to fold i mod k, and training leaves out fold holdout_fold, so that a
  // filter can score each pair with a model that never trained on it.
  int64_t folds = 0;
  int64_t holdout_fold = -1;
  template <class V> void visit(V& v) {
    v("train_manifest", train_manifest), v("separator", separator), v("image_key", image_key);
    v("caption_key", caption_key), v("workers", workers), v("prefetch_batches", prefetch_batches);
    v("skip_bad", skip_bad), v("mean", mean), v("std", std), v("augment", augment);
    v("folds", folds), v("holdout_fold", holdout_fold);
  }
};

struct TokenizerConfig {
  std::string model;         // a SentencePiece .model; empty: train one on the training captions
  int64_t vocab_size = 1000;  // when training one
  template <class V> void visit(V& v) { v("model", model), v("vocab_size", vocab_size); }
};

struct LossConfig {
  std::string name = "halo";  // halo | infonce | siglip
  double label_smoothing = 0.1;
  bool distill = true;
  bool learn_temperature = true;
  std::string implementation = "dense";  // halo: dense | tiled | kernel | auto (tiled, kernel: no n x n matrix)
  // HALO options of docs/loss.md "Options against memorisation"; the defaults are the reference.
  std::string temperature = "softplus";  // halo: gamma = softplus(raw) | log: gamma = exp(raw)
  double radial_weight = 1.0;            // halo: weight of the radial term
  // Share of a rejected pair's target put on the sink (halo, dense loss); with
  // sink_bootstrap_from: history also infonce (a weight 1 - share); ignored otherwise
  double sink_bootstrap = 0.0;
  // What decides a pair's share: model (beta * its current abstention) | history (beta for
  // the hardest sink_history_fraction of the batch by their mean margin over the earlier steps
  // that trained on them, 0 for the others and in a pair's first epoch; needs the pair
  // dynamics; halo or infonce, which weights those rows' cross-entropy by 1 - beta)
  std::string sink_bootstrap_from = "model";
  double sink_history_fraction = 0.25;
  template <class V> void visit(V& v) {
    v("name", name), v("label_smoothing", label_smoothing), v("distill", distill);
    v("learn_temperature", learn_temperature), v("implementation", implementation);
    v("temperature", temperature), v("radial_weight", radial_weight);
    v("sink_bootstrap", sink_bootstrap), v("sink_bootstrap_from", sink_bootstrap_from);
    v("sink_history_fraction", sink_history_fraction);
  }
};

struct OptimConfig {
  double lr = 1e-3;
  double weight_decay = 0.1;  // not applied to norms, biases, embeddings of position/class, or the loss
  double beta1 = 0.9, beta2 = 0.98, eps = 1e-6;
  int64_t warmup_steps = 50;  // linear warm-up, then cosine decay to 0
  double grad_clip = 1.0;     // max global gradient norm (0: off)
  double temperature_lr_scale = 1.0;  // learning rate of the loss's scalars (temperature, bias) / lr
  template <class V> void visit(V& v) {
    v("lr", lr), v("weight_decay", weight_decay), v("beta1", beta1), v("beta2", beta2);
    v("eps", eps), v("warmup_steps", warmup_steps), v("grad_clip", grad_clip);
    v("temperature_lr_scale", temperature_lr_scale);
  }
};

struct TrainConfig {
  int64_t batch_size = 128;  // global batch: pairs per optimiser step
  int64_t epochs = 10;
  int64_t max_steps = 0;     // > 0: stop after this many steps (the schedule spans them)
  int64_t seed = 0;
  std::string device = "cpu";      // cpu | cuda | cuda:N
  std::string precision = "fp32";  // fp32 | bf16 (autocast on CUDA or CPU; the loss stays fp32)
  int64_t log_every = 10;
  int64_t checkpoint_every = 200;
  int64_t keep_checkpoints = 2;  // older step checkpoints are deleted
  std::string run_dir = "runs/default";
  bool pair_dynamics = true;  // record each pair's mean mismatch scores over training (pair_dynamics.tsv)
  template <class V> void visit(V& v) {
    v("batch_size", batch_size), v("epochs", epochs), v("max_steps", max_steps), v("seed", seed);
    v("device", device), v("precision", precision), v("log_every", log_every);
    v("checkpoint_every", checkpoint_every), v("keep_checkpoints", keep_checkpoints);
    v("run_dir", run_dir), v("pair_dynamics", pair_dynamics);
  }
};

struct DistConfig {
  std::string backend = "auto";         // auto (nccl on CUDA, gloo on CPU) | gloo | nccl
  double rendezvous_timeout_s = 300;    // how long rank 0 waits for the others (and they for it)
  double collective_timeout_s = 1800;   // one collective (also: ranks waiting for a checkpoint)
  double bucket_mb = 25;                // gradient all-reduce bucket size
  template <class V> void visit(V& v) {
    v("backend", backend), v("rendezvous_timeout_s", rendezvous_timeout_s);
    v("collective_timeout_s", collective_timeout_s), v("bucket_mb", bucket_mb);
  }
};

struct Config {
  ModelConfig model;
  DataConfig data;
  TokenizerConfig tokenizer;
  LossConfig loss;
  OptimConfig optim;
  TrainConfig train;
  DistConfig dist;  // multi-process training (docs/distributed.md); unused in one process
  template <class V> void visit(V& v) {
    v("model", model), v("data", data), v("tokenizer", tokenizer), v("loss", loss);
    v("optim", optim), v("train", train), v("dist", dist);
  }
  // Throws halo::Error naming the key of the first invalid value.
  void validate() const;
};

// Reads a YAML file, applies `a.b=v` overrides in order, rejects unknown keys, validates.
// `source` names the file in error messages.
Config load_config(const std::string& path, const std::vector<std::string>& overrides = {});
// Same from YAML text (tests, and configs stored beside checkpoints).
Config parse_config(const std::string& yaml_text, const std::vector<std::string>& overrides = {},
                    const std::string& source = "<text>");
std::string to_yaml(const Config& config);

}  // namespace halo::train
