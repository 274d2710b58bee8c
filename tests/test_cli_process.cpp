// The halo-clip executable as a user runs it, in a child process: SIGTERM during training writes
// a checkpoint and exits with 128 + 15; `--resume latest` then finishes the run; and eval, filter
// and report run from the command line on the result. `filter --scores-file` needs no model.
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include <gtest/gtest.h>

#include "shapes_dataset.h"
#include "test_util.h"

extern char** environ;

namespace halo::test {
namespace {

namespace fs = std::filesystem;

pid_t spawn(const std::vector<std::string>& args, const std::string& log) {
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  pid_t pid = 0;
  const int rc = posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  EXPECT_EQ(rc, 0) << "cannot start " << args[0];
  return pid;
}

int wait_exit(pid_t pid) {
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

int run_tool(const std::vector<std::string>& args, const std::string& log) {
  return wait_exit(spawn(args, log));
}

TEST(CliProcess, SigtermCheckpointsAndResumeFinishes) {
  const std::string dir = make_temp_dir("cli_sigterm");
  const std::string manifest = make_shapes_dataset(dir + "/data", 64, 16, 5);
  std::ofstream(dir + "/config.yaml")
      << "model: {embed_dim: 16, image: {image_size: 16, patch_size: 4, width: 32, layers: 1, "
         "heads: 2},\n"
         "       text: {context_length: 8, width: 32, layers: 1, heads: 2}}\n"
         "data: {train_manifest: "
      << manifest
      << ", workers: 1}\n"
         "tokenizer: {vocab_size: 40}\n"
         "train: {batch_size: 16, max_steps: 100000, log_every: 1, checkpoint_every: 1000000, "
         "run_dir: "
      << dir << "/run}\n";
  const std::string cli = HALO_CLI_PATH;
  const pid_t pid = spawn({cli, "train", "--config", dir + "/config.yaml"}, dir + "/train.log");
  // Wait for a few logged steps, then stop it the way a scheduler would.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (read_file(dir + "/run/metrics.jsonl").find("\"step\": 3,") == std::string::npos &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_EQ(kill(pid, SIGTERM), 0);
  EXPECT_EQ(wait_exit(pid), 128 + SIGTERM) << read_file(dir + "/train.log");
  EXPECT_NE(read_file(dir + "/train.log").find("stopped by SIGTERM"), std::string::npos)
      << read_file(dir + "/train.log");
  ASSERT_TRUE(fs::exists(dir + "/run/checkpoints/latest"));
  for (const auto& entry : fs::directory_iterator(dir + "/run/checkpoints")) {
    EXPECT_EQ(entry.path().string().find(".tmp"), std::string::npos) << entry.path();
  }

  // Resume and finish a short budget.
  EXPECT_EQ(run_tool({cli, "train", "--config", dir + "/config.yaml", "--set", "train.max_steps=40",
                      "--resume", "latest"},
                     dir + "/resume.log"),
            0)
      << read_file(dir + "/resume.log");
  EXPECT_NE(read_file(dir + "/resume.log").find("resumed from"), std::string::npos);
  ASSERT_TRUE(fs::exists(dir + "/run/checkpoints/final.pt"));

  // The user-facing commands on the result.
  EXPECT_EQ(run_tool({cli, "eval", "--checkpoint", dir + "/run", "--manifest", manifest},
                     dir + "/eval.log"),
            0)
      << read_file(dir + "/eval.log");
  EXPECT_NE(read_file(dir + "/eval.log").find("image -> text"), std::string::npos);
  EXPECT_TRUE(
      fs::exists(dir + "/run/eval-data/results.json"));  // default: RUN/eval-<manifest folder>
  EXPECT_EQ(run_tool({cli, "filter", "--checkpoint", dir + "/run", "--manifest", manifest, "--out",
                      dir + "/run/filter", "--keep-fraction", "0.5"},
                     dir + "/filter.log"),
            0)
      << read_file(dir + "/filter.log");
  EXPECT_NE(read_file(dir + "/filter.log").find("kept 32, rejected 32"), std::string::npos)
      << read_file(dir + "/filter.log");
  EXPECT_EQ(run_tool({cli, "report", "--run", dir + "/run"}, dir + "/report.log"), 0)
      << read_file(dir + "/report.log");
  EXPECT_TRUE(fs::exists(dir + "/run/report.html"));
}

TEST(CliProcess, FilterByAScoreFile) {
  const std::string dir = make_temp_dir("cli_scores_file");
  const std::string manifest =
      make_shapes_dataset(dir + "/data", 8, 16, 4);  // rows 3 and 7 swapped
  std::ofstream(dir + "/scores.tsv")
      << "line\timage_path\tmy_score\n2\ta\t0.1\n3\tb\t0.2\n4\tc\t0.3\n5\td\t0.9\n"
         "6\te\t0.4\n7\tf\t0.5\n8\tg\t0.6\n9\th\t0.8\n";
  const std::string cli = HALO_CLI_PATH;
  ASSERT_EQ(run_tool({cli, "filter", "--help"}, dir + "/help.log"), 0);
  EXPECT_NE(read_file(dir + "/help.log").find("--scores-file"), std::string::npos)
      << read_file(dir + "/help.log");
  EXPECT_EQ(
      run_tool({cli, "filter", "--scores-file", dir + "/scores.tsv", "--score-column", "my_score",
                "--manifest", manifest, "--out", dir + "/out", "--keep-fraction", "0.75"},
               dir + "/filter.log"),
      0)
      << read_file(dir + "/filter.log");
  // The two highest scores are lines 5 and 9: the swapped rows 3 and 7.
  EXPECT_NE(read_file(dir + "/filter.log").find("kept 6, rejected 2"), std::string::npos)
      << read_file(dir + "/filter.log");
  EXPECT_NE(read_file(dir + "/filter.log").find("precision 1.000, recall 1.000"), std::string::npos)
      << read_file(dir + "/filter.log");
  // A file for another manifest stops with an error that names the file and line.
  std::ofstream(dir + "/short.tsv") << "line\tmy_score\n2\t0.1\n";
  EXPECT_NE(
      run_tool({cli, "filter", "--scores-file", dir + "/short.tsv", "--score-column", "my_score",
                "--manifest", manifest, "--out", dir + "/out2", "--threshold", "0.5"},
               dir + "/short.log"),
      0);
  EXPECT_NE(read_file(dir + "/short.log").find("short.tsv' has no row for line 3 of manifest"),
            std::string::npos)
      << read_file(dir + "/short.log");
  EXPECT_NE(run_tool({cli, "filter", "--scores-file", dir + "/scores.tsv", "--manifest", manifest,
                      "--out", dir + "/out3", "--threshold", "0.5"},
                     dir + "/nocolumn.log"),
            0);
  EXPECT_NE(read_file(dir + "/nocolumn.log").find("--scores-file needs --score-column"),
            std::string::npos)
      << read_file(dir + "/nocolumn.log");
}

}  // namespace
}  // namespace halo::test
