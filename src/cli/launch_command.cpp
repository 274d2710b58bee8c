// halo-clip launch: starts this node's worker processes (the same executable, e.g. `train`)
// with RANK, LOCAL_RANK, WORLD_SIZE, ... set, as torchrun does (src/dist/launcher.h).
#include <cstdlib>

#include "cli/commands.h"
#include "common/args.h"
#include "common/error.h"
#include "dist/launcher.h"

namespace halo::cli {

int run_launch(const std::vector<std::string>& argv) {
  ArgParser args(
      "launch",
      "Start N worker processes of this executable on this node, e.g.\n"
      "  halo-clip launch --nproc-per-node 2 --standalone -- train --config C.yaml\n"
      "Each worker gets RANK, LOCAL_RANK, WORLD_SIZE, LOCAL_WORLD_SIZE, GROUP_RANK,\n"
      "MASTER_ADDR and MASTER_PORT (and OMP_NUM_THREADS = cores / N when unset). Output\n"
      "lines are prefixed with the rank; SIGINT/SIGTERM are passed on. When a worker\n"
      "fails the others are stopped (SIGTERM, then SIGKILL after the grace period) and\n"
      "the launcher exits with the failed worker's status. Several nodes: run one\n"
      "launcher per node with the same --nnodes, --master-addr and --master-port.\n"
      "See docs/distributed.md.");
  args.required("nproc-per-node", "N", "worker processes on this node (one per GPU on CUDA)")
      .option("nnodes", "M", "number of nodes", "1")
      .option("node-rank", "K", "this node's index in [0, M)", "0")
      .option("master-addr", "HOST", "address of node 0 (where rank 0 serves the rendezvous)",
              "127.0.0.1")
      .option("master-port", "PORT", "TCP port of the rendezvous on node 0", "29500")
      .option("run-id", "ID",
              "names this job at the rendezvous, so workers of another job on the same port "
              "are refused (default: $HALO_RUN_ID, $TORCHELASTIC_RUN_ID or $SLURM_JOB_ID, else "
              "random on one node; with --nnodes > 1 one of them is required: give the same ID "
              "to every node's launcher)")
      .toggle("standalone", "one node, a free port on 127.0.0.1 (no --master-* needed)")
      .option("log-dir", "DIR",
              "also write each rank's output to DIR/rank_N.log (default: $RUN_LOG_DIR)")
      .option("max-restarts", "R",
              "restart the workers up to R times after a failure; `train` resumes "
              "from the latest checkpoint",
              "0")
      .option("grace-period", "SECONDS", "time between SIGTERM and SIGKILL when stopping workers",
              "5")
      .allow_rest("COMMAND [ARGS]",
                  "the halo-clip command each worker runs, e.g. train --config C.yaml");
  if (!args.parse(argv)) return 0;
  dist::LaunchOptions o;
  o.nproc_per_node = static_cast<int>(args.integer("nproc-per-node"));
  o.nnodes = static_cast<int>(args.integer("nnodes"));
  o.node_rank = static_cast<int>(args.integer("node-rank"));
  o.master_addr = args.str("master-addr");
  o.master_port = static_cast<int>(args.integer("master-port"));
  o.standalone = args.on("standalone");
  if (args.has("run-id")) o.run_id = args.str("run-id");
  HALO_CHECK(!args.has("run-id") || !o.run_id.empty(), "--run-id must not be empty");
  if (args.has("log-dir")) {
    o.log_dir = args.str("log-dir");
  } else if (const char* dir = std::getenv("RUN_LOG_DIR")) {
    o.log_dir = dir;
  }
  o.max_restarts = static_cast<int>(args.integer("max-restarts"));
  o.grace_period_s = args.real("grace-period");
  o.program = "/proc/self/exe";
  o.args = args.rest();
  HALO_CHECK(!o.args.empty() && o.args[0] != "launch",
             "launch: give the worker command after --, e.g. -- train --config C.yaml");
  return dist::launch(o);
}

}  // namespace halo::cli
