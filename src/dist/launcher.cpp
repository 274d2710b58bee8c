// Process management for `halo-clip launch` (see launcher.h): fork/exec of the workers into
// their own process group, a poll loop over their output pipes and a signal pipe, and the
// stop sequence SIGTERM -> grace period -> SIGKILL.
#include "dist/launcher.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>
#include <random>
#include <thread>
#include <tuple>

#include "common/error.h"

extern char** environ;

namespace halo::dist {

namespace {

using Clock = std::chrono::steady_clock;

int g_signal_pipe[2] = {-1, -1};
volatile sig_atomic_t g_signal = 0;

void on_signal(int sig) {
  g_signal = sig;
  const char byte = static_cast<char>(sig);
  [[maybe_unused]] const ssize_t n = write(g_signal_pipe[1], &byte, 1);
}

// Installs the launcher's SIGINT/SIGTERM handlers for its lifetime.
class SignalPipe {
 public:
  SignalPipe() {
    HALO_CHECK(pipe2(g_signal_pipe, O_CLOEXEC | O_NONBLOCK) == 0, "launch: cannot create a pipe");
    g_signal = 0;
    struct sigaction action {};
    action.sa_handler = on_signal;
    sigemptyset(&action.sa_mask);
    sigaction(SIGINT, &action, &old_int_);
    sigaction(SIGTERM, &action, &old_term_);
  }
  ~SignalPipe() {
    sigaction(SIGINT, &old_int_, nullptr);
    sigaction(SIGTERM, &old_term_, nullptr);
    close(g_signal_pipe[0]);
    close(g_signal_pipe[1]);
  }
  SignalPipe(const SignalPipe&) = delete;
  SignalPipe& operator=(const SignalPipe&) = delete;

 private:
  struct sigaction old_int_ {
  }, old_term_{};
};

std::string describe_status(int status) {
  if (WIFSIGNALED(status)) {
    const int sig = WTERMSIG(status);
#if defined(__GLIBC__) && __GLIBC_PREREQ(2, 32)
    const char* name = sigabbrev_np(sig);
    return "killed by signal " + std::to_string(sig) +
           (name ? std::string(" (SIG") + name + ")" : "");
#else
    return "killed by signal " + std::to_string(sig) + " (" + strsignal(sig) + ")";
#endif
  }
  return "exit status " + std::to_string(WEXITSTATUS(status));
}

int exit_code_of(int status) {
  return WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status);
}

void say(const std::string& text) {
  std::cerr << "[launch] " << text << std::endl;
}

// One output stream of one worker: bytes in, rank-prefixed lines out.
struct Stream {
  int fd = -1;
  std::ostream* terminal = nullptr;
  std::string partial;
};

struct Worker {
  int rank = 0;
  pid_t pid = -1;
  bool running = false;
  int status = 0;
  Stream out, err;
  std::unique_ptr<std::ofstream> log;
  std::string error;           // its first "error: " line on stderr (the message), for the summary
  Clock::time_point error_at;  // when the launcher read that line
};

void emit(Worker& w, Stream& s, const std::string& line) {
  const std::string marker = "error: ";
  if (const size_t at = line.find(marker);
      &s == &w.err && at != std::string::npos && w.error.empty()) {
    w.error = line.substr(at + marker.size());
    w.error_at = Clock::now();
  }
  (*s.terminal) << "[rank " << w.rank << "] " << line << "\n";
  s.terminal->flush();
  if (w.log) {
    (*w.log) << line << "\n";
    w.log->flush();
  }
}

// Reads what is available; returns false at end of file (the pipe is then closed).
bool drain(Worker& w, Stream& s) {
  char buffer[4096];
  while (true) {
    const ssize_t n = read(s.fd, buffer, sizeof buffer);
    if (n > 0) {
      s.partial.append(buffer, static_cast<size_t>(n));
      for (size_t nl; (nl = s.partial.find('\n')) != std::string::npos;) {
        emit(w, s, s.partial.substr(0, nl));
        s.partial.erase(0, nl + 1);
      }
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return true;
    if (!s.partial.empty()) emit(w, s, s.partial);
    s.partial.clear();
    close(s.fd);
    s.fd = -1;
    return false;
  }
}

// Whether a worker's error says it lost the connection to another node than `node`, in the words
// of process_group.cpp ("lost the connection to node N").
bool lost_other_node(const std::string& error, int node) {
  const std::string marker = "lost the connection to node ";
  const size_t at = error.find(marker);
  if (at == std::string::npos) return false;
  return std::atoi(error.c_str() + at + marker.size()) != node;
}

struct Spawned {
  std::vector<Worker> workers;
  pid_t pgid = 0;
};

// Everything exec needs is built before fork: the child only calls async-signal-safe functions.
Spawned spawn(const LaunchOptions& o, const std::vector<std::string>& args, int attempt) {
  const int world = o.nnodes * o.nproc_per_node;
  std::vector<std::string> argv_text{o.program};
  argv_text.insert(argv_text.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : argv_text) argv.push_back(a.data());
  argv.push_back(nullptr);
  const unsigned cores = std::thread::hardware_concurrency();
  const std::string threads =
      std::to_string(std::max(1u, cores / static_cast<unsigned>(o.nproc_per_node)));

  Spawned group;
  const pid_t parent = getpid();
  for (int local = 0; local < o.nproc_per_node; ++local) {
    Worker w;
    w.rank = o.node_rank * o.nproc_per_node + local;
    // The environment contract (env.h), then the inherited variables it does not override.
    std::vector<std::string> env_text{"RANK=" + std::to_string(w.rank),
                                      "LOCAL_RANK=" + std::to_string(local),
                                      "WORLD_SIZE=" + std::to_string(world),
                                      "LOCAL_WORLD_SIZE=" + std::to_string(o.nproc_per_node),
                                      "GROUP_RANK=" + std::to_string(o.node_rank),
                                      "MASTER_ADDR=" + o.master_addr,
                                      "MASTER_PORT=" + std::to_string(o.master_port),
                                      "HALO_RESTART_COUNT=" + std::to_string(attempt),
                                      "HALO_RUN_ID=" + o.run_id};
    if (std::getenv("OMP_NUM_THREADS") == nullptr) env_text.push_back("OMP_NUM_THREADS=" + threads);
    for (char** e = environ; *e != nullptr; ++e) {
      const std::string entry = *e;
      const std::string key = entry.substr(0, entry.find('='));
      bool overridden = false;
      for (const auto& s : env_text)
        overridden = overridden || s.compare(0, key.size() + 1, key + "=") == 0;
      if (!overridden) env_text.push_back(entry);
    }
    std::vector<char*> envp;
    for (auto& s : env_text) envp.push_back(s.data());
    envp.push_back(nullptr);

    int out[2], err[2];
    HALO_CHECK(pipe2(out, O_CLOEXEC) == 0 && pipe2(err, O_CLOEXEC) == 0,
               "launch: cannot create pipes");
    const pid_t pid = fork();
    HALO_CHECK(pid >= 0, "launch: fork failed: ", std::strerror(errno));
    if (pid == 0) {
      setpgid(0, group.pgid);             // the workers form one process group
      prctl(PR_SET_PDEATHSIG, SIGKILL);   // and die with the launcher
      if (getppid() != parent) _exit(1);  // the launcher already died
      struct sigaction dfl {};
      dfl.sa_handler = SIG_DFL;
      sigaction(SIGINT, &dfl, nullptr);
      sigaction(SIGTERM, &dfl, nullptr);
      dup2(out[1], STDOUT_FILENO);
      dup2(err[1], STDERR_FILENO);
      execve(argv[0], argv.data(), envp.data());
      const char msg[] = "launch: exec of the worker failed\n";
      [[maybe_unused]] const ssize_t n = write(STDERR_FILENO, msg, sizeof msg - 1);
      _exit(127);
    }
    if (group.pgid == 0) group.pgid = pid;
    setpgid(pid, group.pgid);  // also here: whichever runs first wins the race
    close(out[1]);
    close(err[1]);
    fcntl(out[0], F_SETFL, O_NONBLOCK);
    fcntl(err[0], F_SETFL, O_NONBLOCK);
    w.pid = pid;
    w.running = true;
    w.out = {out[0], &std::cout, ""};
    w.err = {err[0], &std::cerr, ""};
    if (!o.log_dir.empty()) {
      const std::string path = o.log_dir + "/rank_" + std::to_string(w.rank) + ".log";
      w.log = std::make_unique<std::ofstream>(path, std::ios::app);
      HALO_CHECK(w.log->good(), "launch: cannot write the log file '", path, "' (--log-dir)");
      if (attempt > 0) (*w.log) << "--- restart " << attempt << " ---\n";
    }
    group.workers.push_back(std::move(w));
  }
  return group;
}

struct GroupResult {
  int code = 0;         // 0: every worker succeeded
  bool failed = false;  // a worker failed (a restart may help)
  std::string cause;    // which rank failed first, and how
};

GroupResult run_group(const LaunchOptions& o, const std::vector<std::string>& args, int attempt) {
  Spawned group = spawn(o, args, attempt);
  auto& workers = group.workers;
  std::optional<size_t> first_failure;
  int stop_signal = 0;        // the signal that stopped the launcher
  bool kill_pending = false;  // SIGKILL follows SIGTERM at kill_at
  Clock::time_point kill_at = Clock::now();
  auto stop_all = [&](int sig) { killpg(group.pgid, sig); };

  while (true) {
    bool any_open = false, any_running = false;
    std::vector<pollfd> fds{{g_signal_pipe[0], POLLIN, 0}};
    for (auto& w : workers) {
      for (Stream* s : {&w.out, &w.err}) {
        if (s->fd >= 0) fds.push_back({s->fd, POLLIN, 0});
      }
      any_open = any_open || w.out.fd >= 0 || w.err.fd >= 0;
      any_running = any_running || w.running;
    }
    if (!any_open && !any_running) break;
    poll(fds.data(), fds.size(), 100);

    for (auto& w : workers) {
      if (w.out.fd >= 0) drain(w, w.out);
      if (w.err.fd >= 0) drain(w, w.err);
    }
    char byte;
    while (read(g_signal_pipe[0], &byte, 1) == 1) {
      const int sig = static_cast<unsigned char>(byte);
      if (stop_signal == 0) {
        stop_signal = sig;
        say(std::string("received ") + (sig == SIGINT ? "SIGINT" : "SIGTERM") +
            ": passing it to the workers (a second signal kills them)");
        stop_all(sig);
      } else {
        say("second signal: killing the workers");
        stop_all(SIGKILL);
      }
    }
    // Of the failures seen in one pass, a worker killed by a signal is the likelier cause: the
    // others usually fail because their peer vanished.
    std::optional<size_t> failed_now;
    for (size_t i = 0; i < workers.size(); ++i) {
      Worker& w = workers[i];
      if (!w.running) continue;
      int status = 0;
      if (waitpid(w.pid, &status, WNOHANG) != w.pid) continue;
      w.running = false;
      w.status = status;
      if (status != 0 &&
          (!failed_now || (WIFSIGNALED(status) && !WIFSIGNALED(workers[*failed_now].status)))) {
        failed_now = i;
      }
    }
    if (failed_now && !first_failure && stop_signal == 0) {
      const Worker& w = workers[*failed_now];
      first_failure = failed_now;
      say("rank " + std::to_string(w.rank) + " (pid " + std::to_string(w.pid) +
          ") failed first: " + describe_status(w.status) + "; stopping the other workers");
      stop_all(SIGTERM);
      kill_pending = true;
      kill_at =
          Clock::now() + std::chrono::milliseconds(static_cast<int64_t>(o.grace_period_s * 1000));
    }
    if (kill_pending && Clock::now() >= kill_at) {
      for (const auto& w : workers) {
        if (w.running)
          say("rank " + std::to_string(w.rank) + " did not stop within the grace period: SIGKILL");
      }
      stop_all(SIGKILL);
      kill_pending = false;
    }
  }

  GroupResult result;
  if (first_failure) {
    result.failed = true;
    result.code = exit_code_of(workers[*first_failure].status);
    // The summary names the likeliest cause: a worker killed by a signal (see above), else of the
    // failed workers one whose error says it lost another node, else the one whose error came
    // first. When another node vanishes, a rank that saw it go reports it; its peers on this
    // node may instead report losing that rank, which stopped first.
    const auto rank_of_cause = [&](const Worker& w) {
      return std::make_tuple(w.error.empty(), !lost_other_node(w.error, o.node_rank), w.error_at);
    };
    size_t cause = *first_failure;
    for (size_t i = 0; i < workers.size() && !WIFSIGNALED(workers[cause].status); ++i) {
      if (workers[i].status != 0 && rank_of_cause(workers[i]) < rank_of_cause(workers[cause]))
        cause = i;
    }
    const Worker& w = workers[cause];
    result.cause = "rank " + std::to_string(w.rank) + " " + describe_status(w.status) +
                   (w.error.empty() ? "" : " (" + w.error + ")");
  } else if (stop_signal != 0) {
    result.code = 128 + stop_signal;
    for (const auto& w : workers) {
      if (w.status != 0) result.code = exit_code_of(w.status);
    }
  }
  return result;
}

}  // namespace

int free_port() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  HALO_CHECK(fd >= 0, "cannot open a socket to find a free port");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof addr;
  const bool ok = bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
                  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0;
  close(fd);
  HALO_CHECK(ok, "cannot find a free TCP port on 127.0.0.1");
  return ntohs(addr.sin_port);
}

std::vector<std::string> restart_arguments(const std::vector<std::string>& args) {
  if (args.empty() || args[0] != "train") return args;
  std::vector<std::string> out;
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--resume" && i + 1 < args.size()) {
      if (args[i + 1] == "latest") return args;
      ++i;
      continue;
    }
    if (args[i].rfind("--resume=", 0) == 0) {
      if (args[i] == "--resume=latest") return args;
      continue;
    }
    out.push_back(args[i]);
  }
  out.push_back("--resume");
  out.push_back("auto");
  return out;
}

std::string default_run_id(int nnodes, const EnvLookup& lookup) {
  const EnvLookup env =
      lookup ? lookup : EnvLookup([](const char* name) { return std::getenv(name); });
  const auto set = [&](const char* name) { return env(name) != nullptr && *env(name) != '\0'; };
  if (set("HALO_RUN_ID")) return env("HALO_RUN_ID");
  if (nnodes > 1) {
    // Every node's launcher must name the same job; a random id would differ on each node.
    for (const char* name : {"TORCHELASTIC_RUN_ID", "SLURM_JOB_ID"}) {
      if (set(name)) return env(name);
    }
    HALO_FAIL("--nnodes ", nnodes, " needs a run id that every node's launcher shares: give ",
              "--run-id ID (the same ID on every node), or set HALO_RUN_ID, TORCHELASTIC_RUN_ID ",
              "or SLURM_JOB_ID");
  }
  std::random_device random;
  char text[17];
  std::snprintf(text, sizeof text, "%08x%08x", random(), random());
  return text;
}

int launch(const LaunchOptions& options) {
  LaunchOptions o = options;
  HALO_CHECK(o.nproc_per_node >= 1, "--nproc-per-node must be >= 1, got ", o.nproc_per_node);
  HALO_CHECK(o.nnodes >= 1 && o.node_rank >= 0 && o.node_rank < o.nnodes, "--node-rank (",
             o.node_rank, ") must be in [0, --nnodes = ", o.nnodes, ")");
  HALO_CHECK(o.max_restarts >= 0 && o.grace_period_s >= 0,
             "--max-restarts and --grace-period must be >= 0");
  HALO_CHECK(!o.program.empty() && !o.args.empty(),
             "launch: nothing to run (give the worker command after --)");
  if (o.standalone) {
    HALO_CHECK(o.nnodes == 1, "--standalone runs one node; drop --nnodes or --standalone");
    o.master_addr = "127.0.0.1";
    o.master_port = free_port();
  }
  HALO_CHECK(o.master_port > 0 && o.master_port < 65536, "--master-port must be in 1..65535, got ",
             o.master_port);
  if (o.run_id.empty()) o.run_id = default_run_id(o.nnodes);
  if (!o.log_dir.empty()) std::filesystem::create_directories(o.log_dir);

  SignalPipe signals;
  std::vector<std::string> args = o.args;
  for (int attempt = 0;; ++attempt) {
    say("node " + std::to_string(o.node_rank) + " of " + std::to_string(o.nnodes) + ": starting " +
        std::to_string(o.nproc_per_node) + " workers (world size " +
        std::to_string(o.nnodes * o.nproc_per_node) + ", rendezvous " + o.master_addr + ":" +
        std::to_string(o.master_port) + ", run id " + o.run_id + ")" +
        (o.log_dir.empty() ? "" : ", logs in " + o.log_dir));
    const GroupResult r = run_group(o, args, attempt);
    if (!r.failed || attempt >= o.max_restarts || g_signal != 0) {
      if (r.failed)
        say("the job failed: " + r.cause +
            (attempt > 0 ? " (restarts used: " + std::to_string(attempt) + ")" : ""));
      return r.code;
    }
    say(r.cause + ": restarting the workers (" + std::to_string(attempt + 1) + " of " +
        std::to_string(o.max_restarts) + " restarts)");
    args = restart_arguments(args);
  }
}

}  // namespace halo::dist
