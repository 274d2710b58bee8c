// Keeping the replicas identical: parameters broadcast from rank 0 once at the start, and after
// each backward the gradients averaged across ranks, packed into flat buckets of about
// dist.bucket_mb so that a model of many small tensors costs a few large all-reduces.
#pragma once
#include <vector>

#include <torch/types.h>

#include "dist/process_group.h"

namespace halo::dist {

// Overwrites every tensor with rank 0's values (a no-op in one process).
void broadcast_parameters(const std::vector<torch::Tensor>& parameters, ProcessGroup& group);

class GradientAverager {
 public:
  GradientAverager(const std::vector<torch::Tensor>& parameters, ProcessGroup& group,
                   double bucket_mb);
  // Replaces each trainable parameter's gradient by its mean over ranks (a missing gradient
  // counts as zero). A no-op in one process.
  void average();
  size_t buckets() const { return buckets_.size(); }

 private:
  struct Bucket {
    std::vector<size_t> params;  // indices into parameters_
    torch::Tensor flat;          // one buffer per dtype and device
  };
  std::vector<torch::Tensor> parameters_;
  ProcessGroup& group_;
  std::vector<Bucket> buckets_;
};

}  // namespace halo::dist
