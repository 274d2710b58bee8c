// The world-size-1 group and the c10d group: TCPStore rendezvous (libuv where the build has it,
// else the classic store) with a clear timeout, then Gloo (CPU) or NCCL (CUDA) collectives (see
// process_group.h), whose failures name the node of a peer that vanished.
#include "dist/process_group.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <chrono>
#include <set>
#include <sstream>
#include <thread>

#include <torch/torch.h>

#include "common/error.h"
#include "common/log.h"
#include "dist/c10d_compat.h"
#include "dist/listen_socket.h"
#ifdef USE_C10D_NCCL
#include <c10/cuda/CUDAFunctions.h>
#endif

namespace halo::dist {

namespace {

using Clock = std::chrono::steady_clock;

// Adds the wall time of a scope to a counter.
class CommTimer {
 public:
  explicit CommTimer(double& total) : total_(total), start_(Clock::now()) {}
  ~CommTimer() { total_ += std::chrono::duration<double>(Clock::now() - start_).count(); }

 private:
  double& total_;
  Clock::time_point start_;
};

class LocalGroup : public ProcessGroup {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  std::string backend() const override { return "none"; }
  void all_reduce_sum(std::vector<torch::Tensor>&) override {}
  torch::Tensor all_gather(const torch::Tensor& tensor) override { return tensor; }
  void broadcast(torch::Tensor&, int) override {}
  void barrier() override {}
};

std::chrono::milliseconds millis(double seconds) {
  return std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000));
}

bool is_loopback(const std::string& addr) {
  return addr == "localhost" || addr.rfind("127.", 0) == 0 || addr == "::1";
}

// Rank 0's store listens on MASTER_ADDR only, where this LibTorch lets it (else on every
// interface, see docs/distributed.md), and refuses a port another job holds by name.
void bind_store_socket(const DistEnv& env, c10d::TCPStoreOptions& o) {
  if (env.rank != 0 || !compat::kTcpStoreTakesListenSocket) return;
  const int fd = listen_on(env.master_addr, env.master_port);
  if (fd >= 0) {
    compat::set_listen_socket(o, fd);
  } else {
    log_message("rank 0: MASTER_ADDR " + env.master_addr +
                " is not an address of this host; the rendezvous listens on every interface");
  }
}

// Joins the TCPStore that rank 0 serves, checks that it belongs to this job (the run id), then
// waits until every rank has checked in, so a peer that never arrives gives one clear error
// instead of a hang inside the backend.
c10::intrusive_ptr<c10d::Store> rendezvous(const DistEnv& env, const GroupOptions& options) {
  const std::string where = env.master_addr + ":" + std::to_string(env.master_port);
  const std::string hint = " (MASTER_ADDR:MASTER_PORT = " + where +
                           ", WORLD_SIZE = " + std::to_string(env.world_size) +
                           ", dist.rendezvous_timeout_s = " +
                           std::to_string(static_cast<int64_t>(options.rendezvous_timeout_s)) + ")";
  c10d::TCPStoreOptions o;
  o.port = static_cast<uint16_t>(env.master_port);
  o.isServer = env.rank == 0;
  o.numWorkers = static_cast<size_t>(env.world_size);
  o.waitWorkers = false;
  o.timeout = millis(options.rendezvous_timeout_s);
  c10::intrusive_ptr<c10d::Store> store;
  try {
    bind_store_socket(env, o);
    store = compat::make_tcp_store(env.master_addr, o);
  } catch (const std::exception& e) {
    const std::string what = e.what();
    const std::string reason = is_port_in_use_error(what)
                                   ? port_in_use_message(env.master_addr, env.master_port)
                                   : what.substr(0, what.find('\n'));
    HALO_FAIL("rank ", env.rank,
              (env.rank == 0 ? " could not serve the rendezvous" : " could not reach rank 0"), hint,
              ": ", reason);
  }
  // The run id: rank 0 writes it, the others compare, so ranks of another job that reach this
  // store (two jobs on one port) stop here, before they touch its keys.
  const std::string run_key = "halo/run_id";
  if (env.rank == 0) {
    store->set(run_key, std::vector<uint8_t>(env.run_id.begin(), env.run_id.end()));
  } else {
    std::vector<uint8_t> served;
    try {
      served = store->get(run_key);
    } catch (const std::exception&) {
      HALO_FAIL("rank ", env.rank, " reached a store at ", where,
                " that is not a halo-clip rendezvous, or rank 0 never named its run", hint);
    }
    const std::string theirs(served.begin(), served.end());
    HALO_CHECK(theirs == env.run_id, "rank ", env.rank,
               " reached the rendezvous of another job at ", where, ": its run id is '", theirs,
               "', this rank's is '", env.run_id,
               "'. Two jobs on one port? Give each job its own MASTER_PORT (the run id comes from "
               "HALO_RUN_ID, TORCHELASTIC_RUN_ID or SLURM_JOB_ID; halo-clip launch sets one)");
  }
  const std::string prefix = "halo/" + env.run_id + "/";
  store->add(prefix + "arrived", 1);
  const auto deadline = Clock::now() + millis(options.rendezvous_timeout_s);
  for (int64_t arrived = 0;;) {
    arrived = store->add(prefix + "arrived", 0);
    HALO_CHECK(arrived <= env.world_size, "rendezvous: ", arrived, " ranks arrived for WORLD_SIZE ",
               env.world_size, hint, "; two jobs with the same run id '", env.run_id,
               "' on one port? Give each job its own MASTER_PORT or HALO_RUN_ID");
    if (arrived == env.world_size) break;
    HALO_CHECK(Clock::now() < deadline, "rendezvous timed out: ", arrived, " of ", env.world_size,
               " ranks arrived", hint,
               "; is every rank started with the same MASTER_ADDR:MASTER_PORT?");
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return c10::make_intrusive<c10d::PrefixStore>("pg/" + env.run_id, store);
}

// Where each rank runs: its node and every address of its host. Published at the rendezvous, so
// that a collective that fails because a peer vanished can name the peer's node.
struct Peer {
  int node = -1;
  std::vector<std::string> addresses;
};

// This host's IP addresses (every interface, loopback included), as inet_ntop writes them.
std::vector<std::string> host_addresses() {
  std::vector<std::string> out;
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return out;
  for (const ifaddrs* a = list; a != nullptr; a = a->ifa_next) {
    if (a->ifa_addr == nullptr) continue;
    const int family = a->ifa_addr->sa_family;
    const void* raw = nullptr;
    if (family == AF_INET) raw = &reinterpret_cast<const sockaddr_in*>(a->ifa_addr)->sin_addr;
    if (family == AF_INET6) raw = &reinterpret_cast<const sockaddr_in6*>(a->ifa_addr)->sin6_addr;
    char text[INET6_ADDRSTRLEN] = {};
    if (raw != nullptr && inet_ntop(family, raw, text, sizeof text) != nullptr) out.push_back(text);
  }
  freeifaddrs(list);
  return out;
}

// Writes this rank's node and addresses into the store (before the backend connects, so that
// every entry exists once the group is up), under the group's prefix.
void publish_peer(c10d::Store& store, const DistEnv& env) {
  std::string text = std::to_string(env.node_rank);
  for (const auto& a : host_addresses()) text += " " + a;
  const std::string key = "halo_peer/" + std::to_string(env.rank);
  store.set(key, std::vector<uint8_t>(text.begin(), text.end()));
}

// Every rank's entry; empty when one cannot be read (the errors then name no node).
std::vector<Peer> read_peers(c10d::Store& store, int world_size) {
  std::vector<Peer> peers;
  try {
    for (int r = 0; r < world_size; ++r) {
      const std::vector<uint8_t> raw = store.get("halo_peer/" + std::to_string(r));
      std::istringstream in(std::string(raw.begin(), raw.end()));
      Peer p;
      in >> p.node;
      for (std::string a; in >> a;) p.addresses.push_back(a);
      peers.push_back(std::move(p));
    }
  } catch (const std::exception&) {
    peers.clear();
  }
  return peers;
}

// "2-3", "2,5" or "4": a sorted list of ranks.
std::string rank_list(const std::vector<int>& ranks) {
  const bool contiguous =
      !ranks.empty() && ranks.back() - ranks.front() + 1 == static_cast<int>(ranks.size());
  if (ranks.size() > 1 && contiguous)
    return std::to_string(ranks.front()) + "-" + std::to_string(ranks.back());
  std::string out;
  for (int r : ranks) out += (out.empty() ? "" : ",") + std::to_string(r);
  return out;
}

// The node of the peer a backend's error names, and its address and ranks ("10.0.0.2, ranks
// 2-3"): Gloo writes the peer as "[ADDRESS]:PORT". Only an address that belongs to exactly one
// node names it (not on one host, where every node has every address). Node -1 when none does.
std::pair<int, std::string> lost_node(const std::string& message, const std::vector<Peer>& peers) {
  for (size_t open = message.find('['); open != std::string::npos;
       open = message.find('[', open + 1)) {
    const size_t close = message.find(']', open);
    if (close == std::string::npos) break;
    std::string address = message.substr(open + 1, close - open - 1);
    if (address.rfind("::ffff:", 0) == 0) address = address.substr(7);  // IPv4 in IPv6
    std::set<int> nodes;
    std::vector<int> ranks;
    for (size_t r = 0; r < peers.size(); ++r) {
      const auto& a = peers[r].addresses;
      if (std::find(a.begin(), a.end(), address) == a.end()) continue;
      nodes.insert(peers[r].node);
      ranks.push_back(static_cast<int>(r));
    }
    if (nodes.size() == 1) {
      return {*nodes.begin(),
              address + ", rank" + (ranks.size() > 1 ? "s " : " ") + rank_list(ranks)};
    }
  }
  return {-1, ""};
}

class C10dGroup : public ProcessGroup {
 public:
  C10dGroup(const DistEnv& env, const GroupOptions& options, const torch::Device& device)
      : rank_(env.rank), size_(env.world_size), node_(env.node_rank) {
    const std::string backend =
        options.backend == "auto" ? (device.is_cuda() ? "nccl" : "gloo") : options.backend;
    c10::intrusive_ptr<c10d::Store> store = rendezvous(env, options);
    publish_peer(*store, env);
    if (backend == "gloo") {
#ifdef USE_C10D_GLOO
      auto o = c10d::ProcessGroupGloo::Options::create(millis(options.collective_timeout_s));
      const char* iface = std::getenv("GLOO_SOCKET_IFNAME");
      if (iface != nullptr && *iface != '\0') {
        o->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(iface));
      } else if (is_loopback(env.master_addr)) {
        o->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
      } else {
        o->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
      }
      group_ = c10::make_intrusive<c10d::ProcessGroupGloo>(store, rank_, size_, o);
      comm_device_ = torch::kCPU;
#else
      HALO_FAIL(
          "dist.backend is gloo but this build has no Gloo (install libgloo-dev and rebuild)");
#endif
    } else {
      HALO_CHECK(device.is_cuda(), "dist.backend is nccl but train.device is '", device.str(),
                 "' (NCCL needs CUDA; use dist.backend=gloo on CPU)");
#ifdef USE_C10D_NCCL
      // One GPU per local rank (rank_device); "cuda" without an index (world size 1): the current.
      const c10::DeviceIndex index =
          device.has_index() ? device.index() : c10::cuda::current_device();
      c10::cuda::set_device(index);
      auto o = c10d::ProcessGroupNCCL::Options::create();
      o->timeout = millis(options.collective_timeout_s);
      group_ = c10::make_intrusive<c10d::ProcessGroupNCCL>(store, rank_, size_, o);
      comm_device_ = torch::Device(torch::kCUDA, index);
#else
      HALO_FAIL(
          "dist.backend is nccl but this build has no NCCL (LibTorch without CUDA); use "
          "dist.backend=gloo");
#endif
    }
    backend_ = backend;
    peers_ = read_peers(*store, size_);
  }

  int rank() const override {
    return rank_;
  }
  int size() const override {
    return size_;
  }
  std::string backend() const override {
    return backend_;
  }

  void all_reduce_sum(std::vector<torch::Tensor>& tensors) override {
    CommTimer timer(comm_seconds_);
    for (auto& t : tensors) {
      std::vector<torch::Tensor> staged{stage(t)};
      finish(group_->allreduce(staged), "all-reduce");
      if (!staged[0].is_same(t)) t.copy_(staged[0]);
    }
  }

  torch::Tensor all_gather(const torch::Tensor& tensor) override {
    CommTimer timer(comm_seconds_);
    std::vector<torch::Tensor> input{stage(tensor.contiguous())};
    std::vector<std::vector<torch::Tensor>> output(1);
    for (int r = 0; r < size_; ++r) output[0].push_back(torch::empty_like(input[0]));
    finish(group_->allgather(output, input), "all-gather");
    return torch::cat(output[0]).to(tensor.device());
  }

  void broadcast(torch::Tensor& tensor, int root) override {
    CommTimer timer(comm_seconds_);
    std::vector<torch::Tensor> staged{stage(tensor)};
    c10d::BroadcastOptions o;
    o.rootRank = root;
    finish(group_->broadcast(staged, o), "broadcast");
    if (!staged[0].is_same(tensor)) tensor.copy_(staged[0]);
  }

  void barrier() override {
    // An all-reduce of one value: the same on every backend, with the collective timeout.
    std::vector<torch::Tensor> one{torch::ones({1}, torch::TensorOptions().device(comm_device_))};
    all_reduce_sum(one);
  }

 private:
  // Waits for a collective. A failure (a peer that stopped or became unreachable, a timeout)
  // becomes an error naming this rank and, when the backend's message gives the peer's address,
  // the peer's node and ranks.
  template <class Work>
  void finish(const Work& work, const char* what) {
    std::string reason;
    try {
      work->wait();
      return;
    } catch (const c10::Error& e) {
      reason = e.what_without_backtrace();
    } catch (const std::exception& e) {
      reason = e.what();
    }
    reason = reason.substr(0, reason.find('\n'));
    const auto [node, where] = lost_node(reason, peers_);
    const std::string me = "rank " + std::to_string(rank_) + " (node " + std::to_string(node_) +
                           "): the " + what + " failed";
    // halo::dist::launch() looks for "lost the connection to node N" to name the node that
    // vanished in its summary.
    if (node == node_) {
      HALO_FAIL(me, ": lost the connection to another rank of this node (", where,
                "), which most likely stopped first (", reason, ")");
    }
    if (node >= 0) {
      HALO_FAIL(me, ": lost the connection to node ", node, " (", where,
                "): a process there stopped, or the node became unreachable (", reason, ")");
    }
    HALO_FAIL(me, ", most likely because another rank stopped or took longer than ",
              "dist.collective_timeout_s (", reason, ")");
  }

  // The tensor itself when it already lives where the backend works, else a copy there.
  torch::Tensor stage(const torch::Tensor& t) const {
    HALO_CHECK(t.is_contiguous(), "internal: collectives need contiguous tensors");
    return t.device() == comm_device_ ? t : t.to(comm_device_);
  }

  int rank_, size_, node_;
  std::vector<Peer> peers_;
  std::string backend_;
  torch::Device comm_device_ = torch::kCPU;
  c10::intrusive_ptr<compat::Collectives> group_;
};

}  // namespace

double ProcessGroup::take_comm_seconds() {
  const double s = comm_seconds_;
  comm_seconds_ = 0;
  return s;
}

std::unique_ptr<ProcessGroup> make_process_group(const DistEnv& env, const GroupOptions& options,
                                                 const torch::Device& device) {
  // A launched process of world size 1 that names its backend gets the real c10d group (to
  // exercise NCCL or Gloo on one GPU or process); otherwise world size 1 communicates nothing.
  const bool explicit_backend = options.backend != "auto" && env.source != "none";
  if (!env.distributed() && !explicit_backend) return std::make_unique<LocalGroup>();
  return std::make_unique<C10dGroup>(env, options, device);
}

std::string rendezvous_store_backend() {
  if (!compat::kTcpStoreHasLibUvOption)
    return "TCPStore (classic: this LibTorch has no libuv server)";
  static const std::string answer = [] {
    try {
      c10d::TCPStoreOptions o;
      o.port = 0;  // any free port
      o.isServer = true;
      o.numWorkers = 1;
      o.waitWorkers = false;
      o.timeout = std::chrono::milliseconds(5000);
      compat::make_tcp_store("127.0.0.1", o);
    } catch (const std::exception& e) {
      const std::string what = e.what();
      return "TCPStore (unknown: a local test store failed: " + what.substr(0, what.find('\n')) +
             ")";
    }
    return std::string(compat::tcp_store_uses_libuv()
                           ? "TCPStore (libuv)"
                           : "TCPStore (classic: this LibTorch was built without libuv)");
  }();
  return answer;
}

bool store_binds_master_addr() {
  return compat::kTcpStoreTakesListenSocket;
}

torch::Device rank_device(const std::string& configured, const DistEnv& env) {
  const torch::Device device(configured);
  if (device.is_cuda() && !device.has_index() && env.distributed()) {
    const auto gpus = static_cast<int>(torch::cuda::device_count());
    HALO_CHECK(env.local_rank < gpus, "LOCAL_RANK ", env.local_rank,
               " has no GPU of its own: this node has ", gpus,
               " (start at most one process per GPU, --nproc-per-node ", gpus, ")");
    return torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(env.local_rank));
  }
  return device;
}

std::vector<double> average(ProcessGroup& group, const std::vector<double>& values) {
  if (group.size() == 1 || values.empty()) return values;
  std::vector<torch::Tensor> t{torch::tensor(values, torch::kDouble)};
  group.all_reduce_sum(t);
  t[0].div_(group.size());
  return std::vector<double>(t[0].data_ptr<double>(), t[0].data_ptr<double>() + t[0].numel());
}

bool any(ProcessGroup& group, bool flag) {
  if (group.size() == 1) return flag;
  std::vector<torch::Tensor> t{torch::tensor({flag ? 1.0 : 0.0}, torch::kDouble)};
  group.all_reduce_sum(t);
  return t[0].item<double>() > 0;
}

}  // namespace halo::dist
