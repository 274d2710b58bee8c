// See threads.h.
#include "common/threads.h"

#include <cstdlib>
#include <thread>

#include <ATen/Parallel.h>

namespace halo {

int configure_cpu_threads() {
  if (std::getenv("OMP_NUM_THREADS") == nullptr) {
    const unsigned cores = std::thread::hardware_concurrency();
    if (cores > 0) at::set_num_threads(static_cast<int>(cores));
  }
  return at::get_num_threads();
}

}  // namespace halo
