// The dist section of the configuration (YAML `dist:`): multi-process training settings,
// declared once, with validate(). Unused in one process (docs/distributed.md).
#pragma once
#include <string>

namespace halo::dist {

struct DistConfig {
  std::string backend = "auto";        // auto (nccl on CUDA, gloo on CPU) | gloo | nccl
  double rendezvous_timeout_s = 300;   // how long rank 0 waits for the others (and they for it)
  double collective_timeout_s = 1800;  // one collective (also: ranks waiting for a checkpoint)
  double bucket_mb = 25;               // gradient all-reduce bucket size
  template <class V>
  void visit(V& v) {
    v("backend", backend), v("rendezvous_timeout_s", rendezvous_timeout_s);
    v("collective_timeout_s", collective_timeout_s), v("bucket_mb", bucket_mb);
  }
  // Throws halo::Error naming the key (dist.*) of the first invalid value.
  void validate() const;
};

}  // namespace halo::dist
