// One batch as the loaders hand it to training and evaluation.
#pragma once
#include <cstdint>

#include <torch/types.h>

namespace halo::data {

struct Batch {
  torch::Tensor images;  // n x 3 x S x S float
  torch::Tensor tokens;  // n x L int64
  torch::Tensor rows;    // n manifest row numbers (int64)
  int64_t index = 0;     // batch number within the epoch
  int64_t skipped = 0;   // unreadable images dropped from this batch (skip_bad)
};

}  // namespace halo::data
