// The environment contract of a worker process: who it is (rank, local rank, node) and where
// the rendezvous is (MASTER_ADDR:MASTER_PORT). Read from the variables that `halo-clip launch`
// and torchrun set, or from Slurm's; with none of them, a single process (world size 1).
#pragma once
#include <cstdint>
#include <functional>
#include <string>

namespace halo::dist {

struct DistEnv {
  int rank = 0, world_size = 1;  // RANK, WORLD_SIZE
  int local_rank = 0,
      local_world_size = 1;               // LOCAL_RANK, LOCAL_WORLD_SIZE (processes on this node)
  int node_rank = 0, num_nodes = 1;       // GROUP_RANK, WORLD_SIZE / LOCAL_WORLD_SIZE
  std::string master_addr = "127.0.0.1";  // MASTER_ADDR
  int master_port = 29500;                // MASTER_PORT
  std::string source = "none";            // none | launcher (halo-clip launch, torchrun) | slurm
  // Names the job at the rendezvous: ranks of another job that reach this job's store (two jobs
  // on one port) are refused. HALO_RUN_ID, else TORCHELASTIC_RUN_ID (torchrun's --rdzv-id), else
  // SLURM_JOB_ID; "none" when none is set (then two such jobs cannot be told apart).
  std::string run_id = "none";

  bool distributed() const { return world_size > 1; }
  std::string describe() const;  // one line for logs: "rank 1 of 4 (local 1 of 2, node 0 of 2) ..."
};

// Looks up an environment variable; nullptr when unset (std::getenv by default, a map in tests).
using EnvLookup = std::function<const char*(const char*)>;

// RANK and WORLD_SIZE (with LOCAL_RANK, LOCAL_WORLD_SIZE, GROUP_RANK, MASTER_ADDR, MASTER_PORT)
// take precedence; otherwise SLURM_PROCID and SLURM_NTASKS (with SLURM_LOCALID, SLURM_NODEID,
// SLURM_NNODES, SLURM_JOB_NODELIST for the master's host, SLURM_JOB_ID for a default port);
// otherwise world size 1. The run id: see DistEnv::run_id. Throws halo::Error naming the variable
// that is malformed.
DistEnv read_env(const EnvLookup& lookup = nullptr);

// The first host of a Slurm node list ("node[03-05,9],gpu1" -> "node03"). Exposed for tests.
std::string first_slurm_host(const std::string& nodelist);

}  // namespace halo::dist
