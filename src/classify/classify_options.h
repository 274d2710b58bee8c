// What `halo-clip classify` is asked to do: the data (a labelled training and test manifest,
// named out-of-distribution manifests), the model (a ResNet preset, sizes overridable), the loss
// (ce | halo), the training budget and the output folder; read from the command line and checked
// once, with errors that name the flag or the file.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "encoders/resnet.h"
#include "train/config.h"

namespace halo::classify {

struct OodSet {
  std::string name, manifest;
};

struct ClassifyOptions {
  ClassifyOptions();  // the defaults of the command-line flags
  std::string train_manifest, test_manifest, out_dir;
  std::vector<OodSet> ood;    // scored against the test split
  std::string loss = "halo";  // ce | halo
  std::string preset = "small";
  encoders::ResNetOptions model;  // the preset's sizes, then the size flags
  int64_t image_size = 28;
  bool augment = true;  // training only: random resized crop (area 0.8-1) and horizontal flip
  int64_t epochs = 1, batch_size = 128, log_every = 50;
  int64_t train_limit = 0,
          eval_limit = 0;  // > 0: only the first N rows of the training / every evaluated manifest
  int64_t workers = 2;     // image decoding threads
  uint64_t seed = 0;       // weights, data order and augmentation
  std::string device = "cpu";
  train::OptimConfig optim;
};

// The model sizes of a preset: "small" (CPU: width 16, 3 stages of 1 block, D = 64) or
// "resnet18" (GPU: width 64, 4 stages of 2 blocks, D = 512, as the CIFAR ResNet-18).
encoders::ResNetOptions resnet_preset(const std::string& name);

// Reads the command line of `halo-clip classify` (flags after the command name). Returns
// nullopt when --help was asked for (the help is printed). Throws halo::Error on bad flags.
std::optional<ClassifyOptions> parse_classify_args(const std::vector<std::string>& argv);

// Throws halo::Error naming the flag (or the file) when a value is out of range or a manifest
// does not exist.
void validate(const ClassifyOptions& options);

}  // namespace halo::classify
