// The collectives the trainer needs, behind one small interface: a world-size-1 group (no
// communication at all) and a c10d group (TCPStore rendezvous; Gloo on CPU, NCCL on CUDA).
// Every call is blocking and counts its wall time, so a step can report its communication time.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include <torch/types.h>

#include "dist/env.h"

namespace halo::dist {

struct GroupOptions {
  std::string backend = "auto";  // auto | gloo | nccl (dist.backend)
  double rendezvous_timeout_s = 300;
  double collective_timeout_s = 1800;
};

class ProcessGroup {
 public:
  virtual ~ProcessGroup() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  virtual std::string backend() const = 0;  // "none", "gloo" or "nccl"

  // Sums each tensor in place across ranks (tensors must be contiguous).
  virtual void all_reduce_sum(std::vector<torch::Tensor>& tensors) = 0;
  // Every rank's `tensor` (same shape on every rank), concatenated along dim 0 in rank order.
  virtual torch::Tensor all_gather(const torch::Tensor& tensor) = 0;
  // Overwrites `tensor` (contiguous) on every rank with rank `root`'s.
  virtual void broadcast(torch::Tensor& tensor, int root) = 0;
  virtual void barrier() = 0;

  // Seconds spent inside collectives since the last call (and resets the count).
  double take_comm_seconds();

 protected:
  double comm_seconds_ = 0;
};

// A group for `env`: world size 1 gives the local group (no c10d at all), unless the process was
// started by a launcher (env.source != "none") and options.backend names gloo or nccl; otherwise
// a c10d group joined through MASTER_ADDR:MASTER_PORT. Throws halo::Error naming the address,
// the rank count and the timeout when a peer never arrives.
std::unique_ptr<ProcessGroup> make_process_group(const DistEnv& env, const GroupOptions& options,
                                                 const torch::Device& device);

// The store the rendezvous uses in this build, for `halo-clip info`: "TCPStore (libuv)" where
// LibTorch has its libuv server, else "TCPStore (classic: ...)" saying why. Probes once with a
// server on a free local port.
std::string rendezvous_store_backend();

// Whether rank 0's store listens on MASTER_ADDR only (LibTorch >= 2.2 takes a socket bound by
// halo-clip); with 1.13 it listens on every interface (docs/distributed.md).
bool store_binds_master_addr();

// The device a rank trains on: "cuda" becomes cuda:LOCAL_RANK when several processes share a
// node (one GPU per local rank); anything else is kept as configured.
torch::Device rank_device(const std::string& configured, const DistEnv& env);

// The mean over ranks of a few scalars (loss and its parts, for logging): one small all-reduce.
std::vector<double> average(ProcessGroup& group, const std::vector<double>& values);
// True on every rank when `flag` is true on any rank (an agreed stop).
bool any(ProcessGroup& group, bool flag);

}  // namespace halo::dist
