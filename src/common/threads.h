// CPU thread count for LibTorch: all cores unless OMP_NUM_THREADS says otherwise (Debian's
// LibTorch otherwise starts with a single intra-op thread).
#pragma once

namespace halo {

// Sets LibTorch's intra-op threads to the number of cores when OMP_NUM_THREADS is unset.
// Returns the thread count in effect.
int configure_cpu_threads();

}  // namespace halo
