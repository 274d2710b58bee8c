// Host-memory allocator settings for the step loop. glibc's malloc gives large freed blocks
// back to the system (mmap'd chunks above a threshold, the top of the heap above another) and
// the next step faults them in again, page by page. A training step frees and reallocates the
// same activations every iteration, so on CPU this costs about a fifth of the step
// (docs/results.md, "Speed"), and a plain step of thousands of pairs several times more
// (docs/training.md, "Host memory between steps"). keep_freed_memory() tells malloc to keep
// such blocks for reuse, whatever their size: the memory is not returned between steps, and at
// big plain batches the heap holds more than the peak (fragmentation).
#pragma once
#include <string>

namespace halo {

struct AllocatorChoice {
  bool apply = false;
  std::string reason;  // why (not), for `halo-clip info`
};

// The decision from the environment: HALO_KEEP_FREED_MEMORY=0 turns it off, and a
// GLIBC_TUNABLES that sets malloc parameters is the user's own choice and is left alone.
// Either argument may be null (unset).
AllocatorChoice keep_freed_memory_choice(const char* halo_keep_freed_memory,
                                         const char* glibc_tunables);

// Applies the choice to this process (glibc only; elsewhere nothing). Call it once, first
// thing in main(). Returns what was decided and done.
AllocatorChoice keep_freed_memory();

// What the last keep_freed_memory() call did (apply false, "not set" before any call).
AllocatorChoice applied_allocator_choice();

}  // namespace halo
