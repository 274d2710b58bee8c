// The few LibTorch API differences between 1.13 (Debian, CI) and 2.x (the GPU machine), in one
// place. Include this instead of testing TORCH_VERSION_MAJOR elsewhere.
#pragma once
#include <ATen/autocast_mode.h>
#include <c10/core/ScalarType.h>
#include <torch/version.h>

#if TORCH_VERSION_MAJOR >= 2
// c10::Allocator::allocate lost its const and gained a pure virtual copy_data().
#define HALO_ALLOCATOR_ALLOCATE_CONST
#define HALO_ALLOCATOR_HAS_COPY_DATA 1
#else
#define HALO_ALLOCATOR_ALLOCATE_CONST const
#define HALO_ALLOCATOR_HAS_COPY_DATA 0
#endif

namespace halo {

// bf16 autocast on CUDA for the lifetime of the object (a no-op when `enabled` is false).
class AutocastScope {
 public:
  explicit AutocastScope(bool enabled) : enabled_(enabled) {
    if (!enabled_) return;
#if TORCH_VERSION_MAJOR >= 2
    at::autocast::set_autocast_dtype(at::kCUDA, at::kBFloat16);
    at::autocast::set_autocast_enabled(at::kCUDA, true);
#else
    at::autocast::set_autocast_gpu_dtype(at::kBFloat16);
    at::autocast::set_enabled(true);
#endif
  }
  ~AutocastScope() {
    if (!enabled_) return;
#if TORCH_VERSION_MAJOR >= 2
    at::autocast::set_autocast_enabled(at::kCUDA, false);
#else
    at::autocast::set_enabled(false);
#endif
    at::autocast::clear_cache();
  }
  AutocastScope(const AutocastScope&) = delete;
  AutocastScope& operator=(const AutocastScope&) = delete;

 private:
  bool enabled_;
};

}  // namespace halo
