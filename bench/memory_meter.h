// Peak tensor memory of a region of code. On CPU it wraps LibTorch's CPU allocator and counts
// live bytes; on CUDA it reads the caching allocator's peak statistics.
#pragma once
#include <cstdint>

#include <torch/types.h>

namespace halo::bench {

class MemoryMeter {
 public:
  explicit MemoryMeter(torch::Device device);
  void reset_peak();                       // start a new region: peak = bytes live now
  int64_t peak_bytes_above_start() const;  // peak since reset_peak(), minus what was live then

 private:
  torch::Device device_;
  int64_t start_ = 0;
};

}  // namespace halo::bench
