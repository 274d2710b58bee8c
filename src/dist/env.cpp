// Reading the worker's environment contract (see env.h).
#include "dist/env.h"

#include <algorithm>
#include <cstdlib>

#include "common/error.h"

namespace halo::dist {

namespace {

int parse_int(const EnvLookup& env, const char* name, int fallback, int min_value) {
  const char* text = env(name);
  if (text == nullptr || *text == '\0') return fallback;
  char* end = nullptr;
  const long v = std::strtol(text, &end, 10);
  HALO_CHECK(end != text && *end == '\0' && v >= min_value && v <= 1 << 30, "environment variable ",
             name, " must be an integer >= ", min_value, ", got '", text, "'");
  return static_cast<int>(v);
}

std::string get(const EnvLookup& env, const char* name, const std::string& fallback) {
  const char* text = env(name);
  return text == nullptr || *text == '\0' ? fallback : std::string(text);
}

void check_consistent(const DistEnv& e, const char* rank_var, const char* size_var) {
  HALO_CHECK(e.rank < e.world_size, rank_var, " (", e.rank, ") must be < ", size_var, " (",
             e.world_size, ")");
  HALO_CHECK(e.local_rank < e.local_world_size, "the local rank (", e.local_rank,
             ") must be < the processes per node (", e.local_world_size, ")");
  HALO_CHECK(e.master_port > 0 && e.master_port < 65536, "MASTER_PORT must be in 1..65535, got ",
             e.master_port);
}

}  // namespace

std::string DistEnv::describe() const {
  return "rank " + std::to_string(rank) + " of " + std::to_string(world_size) + " (local " +
         std::to_string(local_rank) + " of " + std::to_string(local_world_size) + ", node " +
         std::to_string(node_rank) + " of " + std::to_string(num_nodes) + "), rendezvous " +
         master_addr + ":" + std::to_string(master_port) + " (from " + source + ", run id " +
         run_id + ")";
}

std::string first_slurm_host(const std::string& nodelist) {
  // The first entry ends at a comma outside brackets; inside brackets keep the first range's start.
  std::string host;
  for (size_t i = 0; i < nodelist.size(); ++i) {
    const char ch = nodelist[i];
    if (ch == ',') break;
    if (ch == '[') {
      size_t j = i + 1;
      while (j < nodelist.size() && nodelist[j] != '-' && nodelist[j] != ',' &&
             nodelist[j] != ']') {
        host += nodelist[j++];
      }
      break;
    }
    host += ch;
  }
  HALO_CHECK(!host.empty(), "cannot read a host name from the Slurm node list '", nodelist, "'");
  return host;
}

DistEnv read_env(const EnvLookup& lookup) {
  const EnvLookup env =
      lookup ? lookup : EnvLookup([](const char* name) { return std::getenv(name); });
  DistEnv e;
  if (env("RANK") != nullptr || env("WORLD_SIZE") != nullptr) {
    HALO_CHECK(env("RANK") != nullptr && env("WORLD_SIZE") != nullptr,
               "RANK and WORLD_SIZE must be set together (one of them is missing)");
    e.source = "launcher";
    e.rank = parse_int(env, "RANK", 0, 0);
    e.world_size = parse_int(env, "WORLD_SIZE", 1, 1);
    e.local_rank = parse_int(env, "LOCAL_RANK", e.rank, 0);
    e.local_world_size = parse_int(env, "LOCAL_WORLD_SIZE", e.world_size, 1);
    e.node_rank = parse_int(env, "GROUP_RANK", e.rank / e.local_world_size, 0);
    e.master_addr = get(env, "MASTER_ADDR", e.master_addr);
    e.master_port = parse_int(env, "MASTER_PORT", e.master_port, 1);
    check_consistent(e, "RANK", "WORLD_SIZE");
  } else if (env("SLURM_PROCID") != nullptr && env("SLURM_NTASKS") != nullptr) {
    e.source = "slurm";
    e.rank = parse_int(env, "SLURM_PROCID", 0, 0);
    e.world_size = parse_int(env, "SLURM_NTASKS", 1, 1);
    e.local_rank = parse_int(env, "SLURM_LOCALID", 0, 0);
    e.node_rank = parse_int(env, "SLURM_NODEID", 0, 0);
    const int nodes = parse_int(env, "SLURM_NNODES", 1, 1);
    HALO_CHECK(e.world_size % nodes == 0, "SLURM_NTASKS (", e.world_size,
               ") must be a multiple of SLURM_NNODES (", nodes,
               "): use the same number of tasks on every node");
    e.local_world_size = e.world_size / nodes;
    const std::string nodelist = get(env, "SLURM_JOB_NODELIST", get(env, "SLURM_NODELIST", ""));
    e.master_addr =
        get(env, "MASTER_ADDR", nodelist.empty() ? e.master_addr : first_slurm_host(nodelist));
    // A port derived from the job id keeps two jobs that share a node apart.
    const int job = parse_int(env, "SLURM_JOB_ID", 0, 0);
    e.master_port = parse_int(env, "MASTER_PORT", 20000 + job % 20000, 1);
    check_consistent(e, "SLURM_PROCID", "SLURM_NTASKS");
  }
  e.num_nodes = std::max(1, e.world_size / e.local_world_size);
  e.run_id =
      get(env, "HALO_RUN_ID", get(env, "TORCHELASTIC_RUN_ID", get(env, "SLURM_JOB_ID", e.run_id)));
  return e;
}

}  // namespace halo::dist
