// `halo-clip launch` end to end on CPU with Gloo: two ranks train to the parameters (and the
// pair dynamics, summed over the ranks) of one process on the same global batches; two launchers on
// 127.0.0.1 as two nodes of one process each train; a killed worker ends the job non-zero within
// seconds with nothing left running, and with --max-restarts the job restarts from the latest
// checkpoint and finishes; SIGTERM reaches the workers, and killing the launcher takes its workers
// along.
#include <dirent.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "common/atomic_file.h"
#include "data/manifest.h"
#include "data/tokenizer.h"
#include "dist/launcher.h"
#include "encoders/clip_model.h"
#include "loss/contrastive_loss.h"
#include "shapes_dataset.h"
#include "test_util.h"
#include "train/checkpoint.h"
#include "train/trainer.h"

namespace halo::test {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

// Starts `halo-clip ARGS...` with stdout and stderr into `output`; returns its pid.
pid_t start(const std::vector<std::string>& args, const std::string& output) {
  std::vector<std::string> text{HALO_CLI_PATH};
  text.insert(text.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : text) argv.push_back(a.data());
  argv.push_back(nullptr);
  const pid_t pid = fork();
  if (pid == 0) {
    FILE* f = std::fopen(output.c_str(), "w");
    if (f != nullptr) {
      dup2(fileno(f), STDOUT_FILENO);
      dup2(fileno(f), STDERR_FILENO);
    }
    execv(argv[0], argv.data());
    _exit(127);
  }
  return pid;
}

// Waits up to `timeout_s` for `pid`; returns its wait status, or -1 on timeout (then kills it).
int wait_for(pid_t pid, double timeout_s) {
  const auto deadline = Clock::now() + std::chrono::duration<double>(timeout_s);
  int status = 0;
  while (Clock::now() < deadline) {
    if (waitpid(pid, &status, WNOHANG) == pid) return status;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  kill(pid, SIGKILL);
  waitpid(pid, &status, 0);
  return -1;
}

// The processes whose parent is `parent` (from /proc).
std::vector<pid_t> children_of(pid_t parent) {
  std::vector<pid_t> out;
  DIR* dir = opendir("/proc");
  while (dirent* e = readdir(dir)) {
    const pid_t pid = static_cast<pid_t>(std::atoi(e->d_name));
    if (pid <= 0) continue;
    const std::string stat = read_file("/proc/" + std::string(e->d_name) + "/stat");
    const auto close_paren = stat.rfind(')');
    if (close_paren == std::string::npos) continue;
    std::istringstream fields(stat.substr(close_paren + 2));
    std::string state;
    pid_t ppid = 0;
    fields >> state >> ppid;
    if (ppid == parent) out.push_back(pid);
  }
  closedir(dir);
  return out;
}

bool environ_has(pid_t pid, const std::string& entry) {
  const std::string env = read_file("/proc/" + std::to_string(pid) + "/environ");
  std::istringstream in(env);
  for (std::string item; std::getline(in, item, '\0');) {
    if (item == entry) return true;
  }
  return false;
}

// Centring on, as in both presets: with several processes it subtracts the global batch's mean.
train::Config two_rank_config(const std::string& manifest, const std::string& run_dir) {
  return train::parse_config(
      "model: {embed_dim: 16, center_embeddings: true, image: {image_size: 16, patch_size: 4, "
      "width: 32, layers: 1, heads: "
      "2},"
      "        text: {context_length: 8, width: 32, layers: 1, heads: 2}}\n"
      "data: {workers: 1, prefetch_batches: 2}\n"
      "tokenizer: {vocab_size: 40}\n"
      "optim: {lr: 3.0e-3, warmup_steps: 2, weight_decay: 0.01}\n"
      "train: {batch_size: 16, epochs: 100, max_steps: 6, log_every: 1, checkpoint_every: 4, seed: "
      "5}\n"
      "dist: {rendezvous_timeout_s: 30, collective_timeout_s: 30}\n",
      {"data.train_manifest=" + manifest, "train.run_dir=" + run_dir});
}

std::string write_config(train::Config c, const std::string& run_dir, const std::string& path) {
  c.train.run_dir = run_dir;
  halo::write_file_atomically(path, train::to_yaml(c));
  return path;
}

std::map<std::string, torch::Tensor> final_parameters(const train::Config& c,
                                                      const std::string& run_dir) {
  const auto tokenizer = data::Tokenizer::load(c.tokenizer.model);
  encoders::ClipModel model(c.model, tokenizer.vocab_size(), tokenizer.eos_id());
  loss::ContrastiveLossOptions o;
  o.embed_dim = c.model.embed_dim;
  o.num_candidates = c.train.batch_size;
  auto loss_fn = loss::make_contrastive_loss(o);
  train::load_checkpoint(run_dir + "/checkpoints/final.pt", *model, *loss_fn, nullptr);
  std::map<std::string, torch::Tensor> out;
  for (const auto& p : model->named_parameters()) out[p.key()] = p.value().detach().clone();
  for (const auto& b : model->named_buffers())
    out[b.key()] = b.value().detach().clone();  // running means
  return out;
}

// Centring removes any offset common to a batch's rows, so the bias of the last layer norm
// before each tower's (bias-free) projection has a gradient of exactly 0: what training makes of
// it is float noise that AdamW amplifies, zero-initialised and different in each run. For those
// two the check is that they stayed that small; every other tensor must agree.
const std::set<std::string> kNoiseOnlyUnderCentring{"visual.ln_post.bias", "text.ln_final.bias"};

void expect_parameters_close(const std::map<std::string, torch::Tensor>& got,
                             const std::map<std::string, torch::Tensor>& expected,
                             bool centred = false) {
  ASSERT_EQ(got.size(), expected.size());
  for (const auto& [name, value] : expected) {
    ASSERT_TRUE(got.count(name)) << name;
    if (centred && kNoiseOnlyUnderCentring.count(name)) {
      EXPECT_LT(got.at(name).abs().max().item<double>(), 1e-3) << name;
      EXPECT_LT(value.abs().max().item<double>(), 1e-3) << name;
      continue;
    }
    EXPECT_TRUE(all_close(got.at(name), value, 1e-5, 1e-5)) << name;
  }
}

// The rows of a pair_dynamics.tsv after its header, split into fields.
std::vector<std::vector<std::string>> dynamics_rows(const std::string& run_dir) {
  std::ifstream in(run_dir + "/pair_dynamics.tsv");
  std::vector<std::vector<std::string>> rows;
  std::string line;
  std::getline(in, line);
  while (std::getline(in, line)) rows.push_back(data::split_fields(line, '\t'));
  return rows;
}

// Each rank counted the pairs it trained on; the file holds the sums over the ranks, so it
// matches one process's: the same counts, the same means to float rounding.
void expect_dynamics_close(const std::string& got_run, const std::string& expected_run) {
  const auto got = dynamics_rows(got_run), expected = dynamics_rows(expected_run);
  ASSERT_FALSE(expected.empty()) << expected_run;
  ASSERT_EQ(got.size(), expected.size()) << got_run;
  for (size_t i = 0; i < got.size(); ++i) {
    ASSERT_EQ(got[i].size(), 8u);
    EXPECT_EQ(got[i][0], expected[i][0]);  // line
    EXPECT_EQ(got[i][3], expected[i][3]) << "seen, line " << got[i][0];
    for (size_t c = 4; c < 8; ++c) {
      if (expected[i][c] == "-") {
        EXPECT_EQ(got[i][c], "-");
      } else {
        EXPECT_NEAR(std::stod(got[i][c]), std::stod(expected[i][c]), 1e-4)
            << "column " << c << ", line " << got[i][0];
      }
    }
  }
}

TEST(DistTrain, TwoRanksAndTwoNodesMatchOneProcess) {
  const std::string dir = make_temp_dir("dist_train");
  const std::string manifest = make_shapes_dataset(dir + "/data", 64);
  train::Config c = two_rank_config(manifest, dir + "/single");
  const auto single = train::run_training(c, {});
  ASSERT_EQ(single.exit_code, 0);
  c.tokenizer.model = dir + "/single/tokenizer.model";  // the same tokenizer everywhere

  // One node, two ranks.
  const std::string two = write_config(c, dir + "/two", dir + "/two.yaml");
  const pid_t launcher = start({"launch", "--nproc-per-node", "2", "--standalone", "--log-dir",
                                dir + "/two_logs", "--", "train", "--config", two},
                               dir + "/two.out");
  ASSERT_EQ(wait_for(launcher, 60), 0) << read_file(dir + "/two.out");
  EXPECT_THAT(read_file(dir + "/two.out"), ::testing::HasSubstr("[rank 0] step 6/6"));
  EXPECT_THAT(read_file(dir + "/two_logs/rank_0.log"), ::testing::HasSubstr("finished 6 steps"));
  EXPECT_TRUE(fs::exists(dir + "/two_logs/rank_1.log"));
  expect_parameters_close(final_parameters(c, dir + "/two"), final_parameters(c, dir + "/single"),
                          true);
  expect_dynamics_close(dir + "/two", dir + "/single");

  // Two launchers as two nodes of one process each.
  const std::string nodes = write_config(c, dir + "/nodes", dir + "/nodes.yaml");
  const std::string port = std::to_string(dist::free_port());
  std::vector<pid_t> launchers;
  for (const char* node : {"0", "1"}) {
    launchers.push_back(start({"launch", "--nproc-per-node", "1", "--nnodes", "2", "--node-rank",
                               node, "--master-addr", "127.0.0.1", "--master-port", port,
                               "--run-id", "two-nodes", "--", "train", "--config", nodes},
                              dir + "/node" + node + ".out"));
  }
  EXPECT_EQ(wait_for(launchers[0], 60), 0) << read_file(dir + "/node0.out");
  EXPECT_EQ(wait_for(launchers[1], 60), 0) << read_file(dir + "/node1.out");
  EXPECT_THAT(read_file(dir + "/node0.out"), ::testing::HasSubstr("node 0 of 2"));
  expect_parameters_close(final_parameters(c, dir + "/nodes"), final_parameters(c, dir + "/single"),
                          true);
}

// Bootstrapping from the history with two ranks: the scores of the pairs the other rank trained
// on are folded in at each epoch's end, and the hardest fraction is taken over the global batch,
// so the shares, hence the parameters, are those of one process.
TEST(DistTrain, SinkSharesFromTheHistoryWithTwoRanksMatchOneProcess) {
  const std::string dir = make_temp_dir("dist_train_history");
  const std::string manifest = make_shapes_dataset(dir + "/data", 64);  // 4 steps per epoch
  train::Config c = two_rank_config(manifest, dir + "/single");
  c.train.max_steps = 8;
  c.train.checkpoint_every =
      100;  // no checkpoint before the end: only the epoch folds share scores
  c.loss.sink_bootstrap = 0.5;
  c.loss.sink_bootstrap_from = "history";
  c.loss.sink_history_fraction = 0.5;
  const auto single = train::run_training(c, {});
  ASSERT_EQ(single.exit_code, 0);
  c.tokenizer.model = dir + "/single/tokenizer.model";
  const std::string two = write_config(c, dir + "/two", dir + "/two.yaml");
  const pid_t launcher = start({"launch", "--nproc-per-node", "2", "--standalone", "--log-dir",
                                dir + "/two_logs", "--", "train", "--config", two},
                               dir + "/two.out");
  ASSERT_EQ(wait_for(launcher, 60), 0) << read_file(dir + "/two.out");
  expect_parameters_close(final_parameters(c, dir + "/two"), final_parameters(c, dir + "/single"),
                          true);
  expect_dynamics_close(dir + "/two", dir + "/single");
}

// Waits until rank 0's log shows `step`, then kills the worker of rank `rank` with SIGKILL.
// Returns its pid and all worker pids.
std::pair<pid_t, std::vector<pid_t>> kill_rank_after(pid_t launcher, const std::string& log,
                                                     const std::string& step, int rank) {
  const auto deadline = Clock::now() + std::chrono::seconds(30);
  while (read_file(log).find(step) == std::string::npos && Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  const std::vector<pid_t> workers = children_of(launcher);
  const std::string entry = "RANK=" + std::to_string(rank);
  for (pid_t w : workers) {
    if (environ_has(w, entry)) {
      kill(w, SIGKILL);
      return {w, workers};
    }
  }
  return {-1, workers};
}

TEST(DistTrain, KilledWorkerStopsTheJob) {
  const std::string dir = make_temp_dir("dist_kill");
  const std::string manifest = make_shapes_dataset(dir + "/data", 32);
  train::Config c = two_rank_config(manifest, dir + "/run");
  c.train.max_steps = 1000000;
  c.train.checkpoint_every = 1000000;
  const std::string config = write_config(c, dir + "/run", dir + "/run.yaml");
  const pid_t launcher =
      start({"launch", "--nproc-per-node", "2", "--standalone", "--log-dir", dir + "/logs",
             "--grace-period", "2", "--", "train", "--config", config},
            dir + "/launch.out");
  const auto [rank1, workers] = kill_rank_after(launcher, dir + "/logs/rank_0.log", "step 3/", 1);
  const auto killed_at = Clock::now();
  ASSERT_NE(rank1, -1) << read_file(dir + "/launch.out");
  ASSERT_EQ(workers.size(), 2u);
  const pid_t group = getpgid(workers[0]);

  const int status = wait_for(launcher, 30);
  const double seconds = std::chrono::duration<double>(Clock::now() - killed_at).count();
  ASSERT_NE(status, -1) << "the launcher did not end within 30 s";
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) != 0) << "status " << status;
  EXPECT_LT(seconds, 30);
  const std::string out = read_file(dir + "/launch.out");
  EXPECT_THAT(out, ::testing::HasSubstr("rank 1 (pid " + std::to_string(rank1) +
                                        ") failed first: killed by signal 9"));
  for (pid_t w : workers) EXPECT_NE(kill(w, 0), 0) << "worker " << w << " is still running";
  EXPECT_NE(kill(-group, 0), 0) << "something of the workers' process group is still running";
}

// True while `pid` runs (a zombie, killed but not yet reaped by init, counts as ended).
bool running(pid_t pid) {
  const std::string stat = read_file("/proc/" + std::to_string(pid) + "/stat");
  const auto close_paren = stat.rfind(')');
  return close_paren != std::string::npos && stat.size() > close_paren + 2 &&
         stat[close_paren + 2] != 'Z';
}

TEST(DistTrain, SigtermReachesTheWorkersAndAKilledLauncherTakesThemAlong) {
  const std::string dir = make_temp_dir("dist_signals");
  const std::string manifest = make_shapes_dataset(dir + "/data", 32);
  train::Config c = two_rank_config(manifest, dir + "/run");
  c.train.max_steps = 1000000;
  c.train.checkpoint_every = 1000000;
  const std::string config = write_config(c, dir + "/run", dir + "/run.yaml");
  auto launch = [&](const std::string& name) {
    return start({"launch", "--nproc-per-node", "2", "--standalone", "--log-dir", dir + "/" + name,
                  "--", "train", "--config", config},
                 dir + "/" + name + ".out");
  };
  auto wait_for_step = [&](const std::string& name) {
    const auto deadline = Clock::now() + std::chrono::seconds(30);
    while (read_file(dir + "/" + name + "/rank_0.log").find("step 3/") == std::string::npos &&
           Clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  };

  // SIGTERM to the launcher: the workers stop after the same step, rank 0 writes a checkpoint.
  const pid_t first = launch("term");
  wait_for_step("term");
  kill(first, SIGTERM);
  const int status = wait_for(first, 30);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 128 + SIGTERM)
      << read_file(dir + "/term.out");
  EXPECT_THAT(read_file(dir + "/term/rank_0.log"), ::testing::HasSubstr("stopped by SIGTERM"));
  EXPECT_TRUE(fs::exists(dir + "/run/checkpoints/latest"));

  // SIGKILL to the launcher: its workers die with it (PR_SET_PDEATHSIG).
  const pid_t second = launch("kill");
  wait_for_step("kill");
  const std::vector<pid_t> workers = children_of(second);
  ASSERT_EQ(workers.size(), 2u) << read_file(dir + "/kill.out");
  kill(second, SIGKILL);
  ASSERT_NE(wait_for(second, 10), -1);
  const auto deadline = Clock::now() + std::chrono::seconds(10);
  while ((running(workers[0]) || running(workers[1])) && Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_FALSE(running(workers[0]));
  EXPECT_FALSE(running(workers[1]));
}

TEST(DistTrain, RestartResumesFromTheLatestCheckpoint) {
  const std::string dir = make_temp_dir("dist_restart");
  const std::string manifest = make_shapes_dataset(dir + "/data", 32);
  train::Config c = two_rank_config(manifest, dir + "/run");
  c.train.max_steps = 300;
  c.train.checkpoint_every = 20;
  const std::string config = write_config(c, dir + "/run", dir + "/run.yaml");
  const pid_t launcher =
      start({"launch", "--nproc-per-node", "2", "--standalone", "--log-dir", dir + "/logs",
             "--grace-period", "2", "--max-restarts", "1", "--", "train", "--config", config},
            dir + "/launch.out");
  const pid_t rank1 = kill_rank_after(launcher, dir + "/logs/rank_0.log", "step 30/", 1).first;
  ASSERT_NE(rank1, -1) << read_file(dir + "/launch.out");
  ASSERT_EQ(wait_for(launcher, 60), 0) << read_file(dir + "/launch.out");
  const std::string out = read_file(dir + "/launch.out");
  EXPECT_THAT(out, ::testing::HasSubstr("restarting the workers (1 of 1 restarts)"));
  EXPECT_THAT(out, ::testing::ContainsRegex("resumed from .*step_[0-9]+\\.pt"));
  EXPECT_THAT(read_file(dir + "/logs/rank_0.log"), ::testing::HasSubstr("finished 300 steps"));
}

}  // namespace
}  // namespace halo::test
