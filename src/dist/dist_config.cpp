// Validation of the dist section (see dist_config.h).
#include "dist/dist_config.h"

#include <cmath>

#include "common/error.h"

namespace halo::dist {

void DistConfig::validate() const {
  HALO_CHECK(backend == "auto" || backend == "gloo" || backend == "nccl",
             "dist.backend must be auto, gloo or nccl, got '", backend, "'");
  HALO_CHECK(rendezvous_timeout_s > 0 && collective_timeout_s > 0 &&
                 std::isfinite(rendezvous_timeout_s) && std::isfinite(collective_timeout_s),
             "dist.rendezvous_timeout_s and dist.collective_timeout_s must be > 0 and finite");
  HALO_CHECK(bucket_mb > 0 && std::isfinite(bucket_mb), "dist.bucket_mb must be > 0, got ",
             bucket_mb);
}

}  // namespace halo::dist
