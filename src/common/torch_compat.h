// The few LibTorch API differences between 1.13 (Debian 12, CI), 2.6 (Debian 13, the chroot CI
// step) and 2.x (the GPU machine), in one place. Include this instead of testing
// TORCH_VERSION_* elsewhere (c10d's differences: dist/c10d_compat.h, which uses the macro below).
#pragma once
#include <ATen/autocast_mode.h>
#include <ATen/core/Tensor.h>
#include <c10/core/DeviceType.h>
#include <c10/core/ScalarType.h>
#include <torch/version.h>

// True when the LibTorch being compiled against is at least major.minor.
#define HALO_TORCH_AT_LEAST(major, minor) \
  (TORCH_VERSION_MAJOR > (major) ||       \
   (TORCH_VERSION_MAJOR == (major) && TORCH_VERSION_MINOR >= (minor)))

#if HALO_TORCH_AT_LEAST(2, 0)
// c10::Allocator::allocate lost its const and gained a pure virtual copy_data().
#define HALO_ALLOCATOR_ALLOCATE_CONST
#define HALO_ALLOCATOR_HAS_COPY_DATA 1
#else
#define HALO_ALLOCATOR_ALLOCATE_CONST const
#define HALO_ALLOCATOR_HAS_COPY_DATA 0
#endif

namespace halo {

namespace compat {

// Autocast state per device type. LibTorch 2.4 replaced the per-device functions
// (set_enabled / set_cpu_enabled, set_autocast_gpu_dtype / set_autocast_cpu_dtype, deprecated
// since) by ones that take the device type. Only CPU and CUDA are used here.
inline bool autocast_enabled(c10::DeviceType device) {
#if HALO_TORCH_AT_LEAST(2, 4)
  return at::autocast::is_autocast_enabled(device);
#else
  return device == c10::DeviceType::CUDA ? at::autocast::is_enabled()
                                         : at::autocast::is_cpu_enabled();
#endif
}

inline void set_autocast_enabled(c10::DeviceType device, bool enabled) {
#if HALO_TORCH_AT_LEAST(2, 4)
  at::autocast::set_autocast_enabled(device, enabled);
#else
  if (device == c10::DeviceType::CUDA) {
    at::autocast::set_enabled(enabled);
  } else {
    at::autocast::set_cpu_enabled(enabled);
  }
#endif
}

inline c10::ScalarType autocast_dtype(c10::DeviceType device) {
#if HALO_TORCH_AT_LEAST(2, 4)
  return at::autocast::get_autocast_dtype(device);
#else
  return device == c10::DeviceType::CUDA ? at::autocast::get_autocast_gpu_dtype()
                                         : at::autocast::get_autocast_cpu_dtype();
#endif
}

inline void set_autocast_dtype(c10::DeviceType device, c10::ScalarType dtype) {
#if HALO_TORCH_AT_LEAST(2, 4)
  at::autocast::set_autocast_dtype(device, dtype);
#else
  if (device == c10::DeviceType::CUDA) {
    at::autocast::set_autocast_gpu_dtype(dtype);
  } else {
    at::autocast::set_autocast_cpu_dtype(dtype);
  }
#endif
}

// Whether this LibTorch has fused attention (at::scaled_dot_product_attention, from 2.0): on the
// CPU, a flash-attention kernel that never materialises the B x heads x T x T scores.
constexpr bool fused_attention_available() {
  return HALO_TORCH_AT_LEAST(2, 0);
}

// softmax(q k^T / sqrt(d) + causal mask) v for q, k, v of B x heads x T x d (`causal`: position
// t attends to positions <= t only). Fused where `fused` and fused_attention_available(), else
// the explicit matrix products, which LibTorch 1.13 always takes.
at::Tensor attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, bool causal,
                     bool fused);

}  // namespace compat

// Whether bf16 autocast works on the CPU in this build: probed once with a forward and backward
// through the operations the encoders use (torch_compat.cpp). LibTorch 2.x: yes; 1.13: no (its
// CPU autocast exists, but its layer norm refuses bf16 inputs with fp32 weights).
bool cpu_bf16_autocast_available();

// bf16 autocast on `device` (CUDA, or CPU where cpu_bf16_autocast_available()) for the lifetime
// of the object: the encoders' matrix products run in bf16 while parameters, gradients and the
// optimiser stay fp32. A no-op when `enabled` is false. Restores the previous autocast state on
// exit. Throws halo::Error for another device type, or bf16 on a CPU build without it.
class AutocastScope {
 public:
  // probe: skip the availability check (cpu_bf16_autocast_available's own probe).
  AutocastScope(c10::DeviceType device, bool enabled, bool probe = false);
  ~AutocastScope();
  AutocastScope(const AutocastScope&) = delete;
  AutocastScope& operator=(const AutocastScope&) = delete;

 private:
  c10::DeviceType device_;
  bool enabled_;
  bool was_enabled_ = false;
  c10::ScalarType previous_dtype_ = c10::ScalarType::Undefined;
};

}  // namespace halo
