// The malloc settings of allocator.h.
#include "common/allocator.h"

#include <climits>
#include <cstdlib>
#include <cstring>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace halo {

AllocatorChoice keep_freed_memory_choice(const char* halo_keep_freed_memory,
                                         const char* glibc_tunables) {
  if (halo_keep_freed_memory != nullptr && std::strcmp(halo_keep_freed_memory, "0") == 0) {
    return {false, "off (HALO_KEEP_FREED_MEMORY=0)"};
  }
  if (glibc_tunables != nullptr && std::strstr(glibc_tunables, "glibc.malloc.") != nullptr) {
    return {false, "left to GLIBC_TUNABLES"};
  }
#if defined(__GLIBC__)
  return {true,
          "freed blocks of every size kept for reuse (HALO_KEEP_FREED_MEMORY=0 turns it off)"};
#else
  return {false, "not glibc: the system allocator's defaults"};
#endif
}

namespace {
AllocatorChoice& last_choice() {
  static AllocatorChoice choice{false, "not set"};
  return choice;
}
}  // namespace

AllocatorChoice applied_allocator_choice() {
  return last_choice();
}

AllocatorChoice keep_freed_memory() {
  AllocatorChoice choice = keep_freed_memory_choice(std::getenv("HALO_KEEP_FREED_MEMORY"),
                                                    std::getenv("GLIBC_TUNABLES"));
#if defined(__GLIBC__)
  if (choice.apply) {
    // Every block of the main thread's arena comes from the heap (no mmap'd chunks: glibc caps
    // the mmap threshold at 32 MiB, and a plain step of 4,096 pairs frees and reallocates
    // activations of hundreds of MiB), and the heap is not trimmed, so freed activations are
    // reused instead of unmapped and faulted in again. Blocks below 32 MiB of other threads'
    // arenas come from their heaps too.
    const bool ok = mallopt(M_MMAP_THRESHOLD, 32 * 1024 * 1024) == 1 &&
                    mallopt(M_MMAP_MAX, 0) == 1 && mallopt(M_TRIM_THRESHOLD, INT_MAX) == 1;
    if (!ok) choice = {false, "mallopt refused the settings: the allocator's defaults"};
  }
#endif
  last_choice() = choice;
  return choice;
}

}  // namespace halo
