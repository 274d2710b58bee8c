// The data and tokenizer sections of the configuration (YAML `data:` and `tokenizer:`),
// declared once, with validate(), the one place where their ranges are checked, and the
// manifest-reading options they imply.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "data/manifest.h"

namespace halo::data {

struct AugmentConfig {
  bool random_resized_crop = true;
  double crop_scale_min = 0.8;  // area fraction range of the random crop
  double crop_scale_max = 1.0;
  bool horizontal_flip = false;  // off: flips change captions such as "left"
  template <class V>
  void visit(V& v) {
    v("random_resized_crop", random_resized_crop), v("crop_scale_min", crop_scale_min);
    v("crop_scale_max", crop_scale_max), v("horizontal_flip", horizontal_flip);
  }
};

struct DataConfig {
  // TSV (or CSV) with a header, image paths relative to it; or WebDataset shards, a brace
  // pattern such as data/train-{00000..00099}.tar (docs/data.md)
  std::string train_manifest;
  std::string separator = "\t";
  std::string image_key = "image_path";
  std::string caption_key = "caption";
  int64_t workers = 2;            // decoding threads
  int64_t prefetch_batches = 4;   // bounded queue length
  bool skip_bad = false;          // skip (and count) unreadable images instead of stopping
  int64_t shuffle_buffer = 1000;  // shards: samples each loader worker holds for mixing
  std::vector<double> mean{0.48145466, 0.4578275, 0.40821073};  // per RGB channel
  std::vector<double> std{0.26862954, 0.26130258, 0.27577711};
  AugmentConfig augment;
  // Cross-scoring (docs/evaluation.md): with folds = k > 1, the data row with index i (its line
  // number minus 2) belongs to fold i mod k (shards: whole shards, shard i in pattern order), and
  // training leaves out fold holdout_fold, so that a filter can score each pair with a model
  // that never trained on it.
  int64_t folds = 0;
  int64_t holdout_fold = -1;
  template <class V>
  void visit(V& v) {
    v("train_manifest", train_manifest), v("separator", separator), v("image_key", image_key);
    v("caption_key", caption_key), v("workers", workers), v("prefetch_batches", prefetch_batches);
    v("skip_bad", skip_bad), v("shuffle_buffer", shuffle_buffer), v("mean", mean), v("std", std),
        v("augment", augment);
    v("folds", folds), v("holdout_fold", holdout_fold);
  }
  // Throws halo::Error naming the key (data.*) of the first invalid value.
  void validate() const;
  // How manifests are read under this section (separator, column names, skip_bad).
  ManifestOptions manifest_options() const;
};

struct TokenizerConfig {
  std::string model;          // a SentencePiece .model; empty: train one on the training captions
  int64_t vocab_size = 1000;  // when training one
  template <class V>
  void visit(V& v) {
    v("model", model), v("vocab_size", vocab_size);
  }
  void validate() const;
};

}  // namespace halo::data
