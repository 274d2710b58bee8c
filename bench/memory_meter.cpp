// CPU: a counting wrapper installed over LibTorch's default CPU allocator. CUDA: the caching
// allocator's own statistics (only compiled when LibTorch has CUDA).
#include "memory_meter.h"

#include <algorithm>
#include <atomic>
#include <mutex>
#include <unordered_map>

#include <c10/core/CPUAllocator.h>

#include "common/error.h"
#include "common/torch_compat.h"

#if defined(HALO_BENCH_CUDA)
#include <c10/cuda/CUDACachingAllocator.h>
#endif

namespace halo::bench {

namespace {

std::atomic<int64_t> g_live{0}, g_peak{0};

// Every live allocation's size, by address: the data pointer is its own context, as
// raw_allocate() (used by oneDNN's convolutions) requires of an allocator.
std::mutex g_mutex;
std::unordered_map<void*, int64_t> g_sizes;
c10::DeleterFnPtr g_inner_deleter = nullptr;

void release(void* data) {
  {
    std::lock_guard<std::mutex> lock(g_mutex);
    auto it = g_sizes.find(data);
    if (it != g_sizes.end()) {  // else allocated before the meter was installed
      g_live -= it->second;
      g_sizes.erase(it);
    }
  }
  g_inner_deleter(data);
}

class CountingAllocator : public c10::Allocator {
 public:
  explicit CountingAllocator(c10::Allocator* inner) : inner_(inner) {
    g_inner_deleter = inner->raw_deleter();
  }
  c10::DataPtr allocate(size_t n) HALO_ALLOCATOR_ALLOCATE_CONST override {
    void* data = inner_->raw_allocate(n);
    {
      std::lock_guard<std::mutex> lock(g_mutex);
      g_sizes[data] = static_cast<int64_t>(n);
    }
    const int64_t live = (g_live += static_cast<int64_t>(n));
    int64_t peak = g_peak.load();
    while (live > peak && !g_peak.compare_exchange_weak(peak, live)) {
    }
    return {data, data, &release, c10::Device(c10::DeviceType::CPU)};
  }
  c10::DeleterFnPtr raw_deleter() const override { return &release; }
#if HALO_ALLOCATOR_HAS_COPY_DATA
  void copy_data(void* dest, const void* src, std::size_t count) const override {
    default_copy_data(dest, src, count);
  }
#endif

 private:
  c10::Allocator* inner_;
};

void install_counting_allocator() {
  static CountingAllocator allocator(c10::GetDefaultCPUAllocator());
  static bool installed = false;
  if (!installed) {
    c10::SetCPUAllocator(&allocator, /*priority=*/100);
    installed = true;
  }
}

}  // namespace

MemoryMeter::MemoryMeter(torch::Device device) : device_(device) {
  if (device_.is_cpu()) install_counting_allocator();
#if !defined(HALO_BENCH_CUDA)
  HALO_CHECK(device_.is_cpu(), "this build measures CPU memory only (LibTorch without CUDA)");
#endif
}

void MemoryMeter::reset_peak() {
  if (device_.is_cpu()) {
    start_ = g_live.load();
    g_peak = start_;
    return;
  }
#if defined(HALO_BENCH_CUDA)
  c10::cuda::CUDACachingAllocator::resetPeakStats(device_.index());
  const auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(device_.index());
  start_ = stats.allocated_bytes[0].current;
#endif
}

int64_t MemoryMeter::peak_bytes_above_start() const {
  if (device_.is_cpu()) return std::max<int64_t>(0, g_peak.load() - start_);
#if defined(HALO_BENCH_CUDA)
  const auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(device_.index());
  return std::max<int64_t>(0, stats.allocated_bytes[0].peak - start_);
#else
  return 0;
#endif
}

}  // namespace halo::bench
