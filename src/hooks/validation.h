// A step hook that validates during training (train.eval_manifest, train.eval_every): on rank 0,
// every `every` steps and after the last one, it embeds a held-out manifest with the model in
// eval mode and records retrieval R@1/5 both ways over its clean pairs and, when the manifest
// has a `mismatched` column, the AUROC of the loss's pair score (val_* in metrics.jsonl). It
// reads no training data and draws no random numbers, so training is the same with or without
// it; the other ranks wait for it at their next collective.
#pragma once
#include <cstdint>
#include <memory>

#include "data/loader.h"
#include "data/pair_set.h"
#include "data/tokenizer.h"
#include "hooks/step_hook.h"

namespace halo::hooks {

struct ValidationOptions {
  std::shared_ptr<const data::PairSet> pairs;  // a manifest or shards (their keys and json)
  data::LoaderOptions loader;                  // evaluation order, no augmentation
  data::Tokenizer tokenizer;
  int64_t context_length = 32;
  int64_t every = 500;
  int64_t chunk_rows = 1024;  // query rows per block of logits
  torch::Device device{torch::kCPU};
};

class ValidationHook : public StepHook {
 public:
  ValidationHook(ValidationOptions options, bool main_rank)
      : o_(std::move(options)), main_rank_(main_rank) {}
  std::string name() const override { return "validation"; }
  void after_step(const StepContext& step, Metrics& metrics) override;

 private:
  ValidationOptions o_;
  bool main_rank_;
};

}  // namespace halo::hooks
