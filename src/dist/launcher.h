// The torchrun-style launcher behind `halo-clip launch`: starts this node's workers with the
// environment contract of env.h, prefixes their output with their rank (and copies it into one
// log file per rank), forwards SIGINT/SIGTERM, stops the whole group when one worker fails, and
// optionally restarts it from the latest checkpoint.
#pragma once
#include <string>
#include <vector>

#include "dist/env.h"

namespace halo::dist {

struct LaunchOptions {
  int nproc_per_node = 1;
  int nnodes = 1, node_rank = 0;
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
  // Names the job at the rendezvous (HALO_RUN_ID for the workers). "": see default_run_id.
  std::string run_id;
  bool standalone = false;        // one node; a free port on 127.0.0.1 is picked
  std::string log_dir;            // one file per rank (rank_N.log); "" for none
  int max_restarts = 0;           // restarts of the whole group after a failure
  double grace_period_s = 5;      // between SIGTERM and SIGKILL when stopping the group
  std::string program;            // the worker executable
  std::vector<std::string> args;  // its arguments
};

// Runs the workers until they all end. Returns 0 when every worker succeeded; otherwise the
// exit status of the worker that failed first (128 + signal when it was killed), or 128 + the
// signal that stopped the launcher.
int launch(const LaunchOptions& options);

// The run id a launcher uses when --run-id is not given: on one node $HALO_RUN_ID, else a random
// one; on several nodes, where every node's launcher must give the same id, $HALO_RUN_ID, else
// $TORCHELASTIC_RUN_ID, else $SLURM_JOB_ID, else a halo::Error naming --run-id. `env` looks the
// variables up (std::getenv when empty).
std::string default_run_id(int nnodes, const EnvLookup& env = nullptr);

// A TCP port on 127.0.0.1 that was free a moment ago (for --standalone and tests).
int free_port();

// The arguments of a restarted `train` worker: resume from the run's latest checkpoint when it
// has one (`--resume auto`), unless the original arguments already say `--resume latest`.
std::vector<std::string> restart_arguments(const std::vector<std::string>& args);

}  // namespace halo::dist
