// The worker's environment contract (launcher/torchrun variables, Slurm's, none), Slurm node
// lists, and the arguments a restarted worker gets. No processes are started here.
#include <map>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "dist/env.h"
#include "dist/launcher.h"
#include "test_util.h"

namespace halo::test {
namespace {

dist::DistEnv read(const std::map<std::string, std::string>& vars) {
  return dist::read_env([&](const char* name) -> const char* {
    auto it = vars.find(name);
    return it == vars.end() ? nullptr : it->second.c_str();
  });
}

TEST(DistEnv, NoVariablesMeansOneProcess) {
  const auto e = read({});
  EXPECT_EQ(e.world_size, 1);
  EXPECT_EQ(e.rank, 0);
  EXPECT_FALSE(e.distributed());
  EXPECT_EQ(e.source, "none");
}

TEST(DistEnv, LauncherVariables) {
  const auto e = read({{"RANK", "3"},
                       {"WORLD_SIZE", "4"},
                       {"LOCAL_RANK", "1"},
                       {"LOCAL_WORLD_SIZE", "2"},
                       {"GROUP_RANK", "1"},
                       {"MASTER_ADDR", "10.0.0.5"},
                       {"MASTER_PORT", "1234"}});
  EXPECT_EQ(e.rank, 3);
  EXPECT_EQ(e.world_size, 4);
  EXPECT_EQ(e.local_rank, 1);
  EXPECT_EQ(e.local_world_size, 2);
  EXPECT_EQ(e.node_rank, 1);
  EXPECT_EQ(e.num_nodes, 2);
  EXPECT_EQ(e.master_addr, "10.0.0.5");
  EXPECT_EQ(e.master_port, 1234);
  EXPECT_TRUE(e.distributed());
}

TEST(DistEnv, SlurmVariables) {
  const auto e = read({{"SLURM_PROCID", "5"},
                       {"SLURM_NTASKS", "8"},
                       {"SLURM_LOCALID", "1"},
                       {"SLURM_NODEID", "2"},
                       {"SLURM_NNODES", "4"},
                       {"SLURM_JOB_NODELIST", "gpu[07-10],cpu1"},
                       {"SLURM_JOB_ID", "123"}});
  EXPECT_EQ(e.source, "slurm");
  EXPECT_EQ(e.rank, 5);
  EXPECT_EQ(e.world_size, 8);
  EXPECT_EQ(e.local_rank, 1);
  EXPECT_EQ(e.local_world_size, 2);
  EXPECT_EQ(e.node_rank, 2);
  EXPECT_EQ(e.master_addr, "gpu07");
  EXPECT_EQ(e.master_port, 20123);
  EXPECT_EQ(e.run_id, "123");  // the Slurm job names the run
}

TEST(DistEnv, RunIdNamesTheJob) {
  EXPECT_EQ(read({}).run_id, "none");
  EXPECT_EQ(read({{"RANK", "0"}, {"WORLD_SIZE", "2"}}).run_id, "none");
  EXPECT_EQ(read({{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"TORCHELASTIC_RUN_ID", "t7"}}).run_id, "t7");
  EXPECT_EQ(read({{"RANK", "0"},
                  {"WORLD_SIZE", "2"},
                  {"TORCHELASTIC_RUN_ID", "t7"},
                  {"HALO_RUN_ID", "h1"},
                  {"SLURM_JOB_ID", "9"}})
                .run_id,
            "h1");
}

// The run id of a launcher without --run-id: random on one node; several nodes must agree, so
// they take it from the environment (HALO_RUN_ID, TORCHELASTIC_RUN_ID, SLURM_JOB_ID, in that
// order) or refuse to start, naming --run-id.
TEST(DistEnv, LauncherRunIdIsRandomOnOneNodeAndRequiredOnSeveral) {
  using Vars = std::map<std::string, std::string>;
  const auto run_id = [](int nnodes, const Vars& vars) {
    return dist::default_run_id(nnodes, [&](const char* name) -> const char* {
      auto it = vars.find(name);
      return it == vars.end() ? nullptr : it->second.c_str();
    });
  };
  const std::string a = run_id(1, {}), b = run_id(1, {});
  EXPECT_EQ(a.size(), 16u);
  EXPECT_NE(a, b);
  EXPECT_EQ(run_id(1, {{"HALO_RUN_ID", "h1"}}), "h1");
  EXPECT_EQ(run_id(1, {{"SLURM_JOB_ID", "9"}}).size(), 16u);  // one node keeps its random id

  EXPECT_THAT(error_message([&] { run_id(2, {}); }),
              ::testing::HasSubstr("--nnodes 2 needs a run id that every node's launcher shares: "
                                   "give --run-id ID"));
  EXPECT_THAT(error_message([&] {
                run_id(3, {{"HALO_RUN_ID", ""}});
              }),
              ::testing::HasSubstr("--run-id"));
  EXPECT_EQ(run_id(2, {{"SLURM_JOB_ID", "9"}}), "9");
  EXPECT_EQ(run_id(2, {{"SLURM_JOB_ID", "9"}, {"TORCHELASTIC_RUN_ID", "t7"}}), "t7");
  const Vars all{{"SLURM_JOB_ID", "9"}, {"TORCHELASTIC_RUN_ID", "t7"}, {"HALO_RUN_ID", "h1"}};
  EXPECT_EQ(run_id(2, all), "h1");
}

TEST(DistEnv, BadValuesNameTheVariable) {
  EXPECT_THAT(error_message([] {
                read({{"RANK", "x"}, {"WORLD_SIZE", "2"}});
              }),
              ::testing::HasSubstr("RANK"));
  EXPECT_THAT(error_message([] {
                read({{"RANK", "2"}, {"WORLD_SIZE", "2"}});
              }),
              ::testing::HasSubstr("RANK (2) must be < WORLD_SIZE (2)"));
  EXPECT_THAT(error_message([] { read({{"RANK", "0"}}); }), ::testing::HasSubstr("WORLD_SIZE"));
  EXPECT_THAT(error_message([] {
                read({{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"MASTER_PORT", "70000"}});
              }),
              ::testing::HasSubstr("MASTER_PORT"));
}

TEST(DistEnv, SlurmNodeLists) {
  EXPECT_EQ(dist::first_slurm_host("node01"), "node01");
  EXPECT_EQ(dist::first_slurm_host("node[03-05,9],gpu1"), "node03");
  EXPECT_EQ(dist::first_slurm_host("a1,b2"), "a1");
  EXPECT_EQ(dist::first_slurm_host("n[7]"), "n7");
}

TEST(DistLaunch, RestartedTrainWorkersResumeFromTheLatestCheckpoint) {
  using V = std::vector<std::string>;
  EXPECT_EQ(dist::restart_arguments(V{"train", "--config", "c.yaml"}),
            (V{"train", "--config", "c.yaml", "--resume", "auto"}));
  EXPECT_EQ(dist::restart_arguments(V{"train", "--resume", "x.pt", "--config", "c.yaml"}),
            (V{"train", "--config", "c.yaml", "--resume", "auto"}));
  EXPECT_EQ(dist::restart_arguments(V{"train", "--resume", "latest"}),
            (V{"train", "--resume", "latest"}));
  EXPECT_EQ(dist::restart_arguments(V{"info"}), (V{"info"}));
}

}  // namespace
}  // namespace halo::test
