// A step hook that logs the geometry of the embeddings at every logging step (docs/loss.md on
// the common offset): the norm of each modality's mean embedding and mean ||x||^2 (both per
// dimension), the pairs' r^2, the mean and median mismatch score, split into clean and
// mismatched pairs when the manifest records which is which, and with centring the norm of the
// offset that centring removes.
#pragma once
#include <memory>

#include "data/manifest.h"
#include "hooks/step_hook.h"

namespace halo::hooks {

class EmbeddingDiagnosticsHook : public StepHook {
 public:
  explicit EmbeddingDiagnosticsHook(std::shared_ptr<const data::Manifest> manifest)
      : manifest_(std::move(manifest)) {}
  std::string name() const override { return "diagnostics"; }
  void after_step(const StepContext& step, Metrics& metrics) override;

 private:
  std::shared_ptr<const data::Manifest> manifest_;
};

}  // namespace halo::hooks
