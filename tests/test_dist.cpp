// Multi-process collectives on CPU with Gloo: with 2 and 3 ranks, the loss and every gradient
// (towers and loss parameters) equal the single-process values on the same global batch; a
// peer that never arrives is a clear error. The ranks are this test binary started again by
// dist::launch, running only DistWorker.* (which does nothing when not started that way).
#include <unistd.h>

#include <cstdlib>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "dist/gather_with_grad.h"
#include "dist/grad_allreduce.h"
#include "dist/launcher.h"
#include "dist/listen_socket.h"
#include "dist/process_group.h"
#include "loss/contrastive_loss.h"
#include "test_util.h"

namespace halo::test {
namespace {

constexpr int64_t kGlobalBatch = 12, kInput = 6, kDim = 8;
const char* kOutVar = "HALO_TEST_DIST_OUT";

// Loss and gradients of two linear towers and a loss on this rank's share of a fixed global
// batch, after gathering and gradient averaging: [loss, gradients of every parameter...].
std::vector<torch::Tensor> loss_and_gradients(const std::string& name, dist::ProcessGroup& group) {
  torch::manual_seed(11);
  const torch::Tensor x = torch::randn({kGlobalBatch, kInput}, torch::kDouble);
  const torch::Tensor y =
      x.matmul(torch::randn({kInput, kInput}, torch::kDouble)) + 0.5 * torch::randn_like(x);
  torch::nn::Linear image_tower(kInput, kDim), text_tower(kInput, kDim);
  loss::ContrastiveLossOptions o;
  o.name = name;
  o.embed_dim = kDim;
  o.num_candidates = kGlobalBatch;
  auto loss_fn = loss::make_contrastive_loss(o);
  image_tower->to(torch::kDouble);
  text_tower->to(torch::kDouble);
  loss_fn->to(torch::kDouble);
  std::vector<torch::Tensor> params = image_tower->parameters();
  for (const auto& m : {text_tower->parameters(), loss_fn->parameters()})
    params.insert(params.end(), m.begin(), m.end());
  if (group.rank() != 0) {  // the broadcast must undo this
    torch::NoGradGuard no_grad;
    for (auto& p : params) p.add_(1.0);
  }
  dist::broadcast_parameters(params, group);

  const int64_t n = kGlobalBatch / group.size();
  const torch::Tensor image = image_tower->forward(x.narrow(0, group.rank() * n, n));
  const torch::Tensor text = text_tower->forward(y.narrow(0, group.rank() * n, n));
  const loss::LossOutput out = loss_fn->forward(dist::global_pair_batch(image, text, group));
  out.total.backward();
  dist::GradientAverager(params, group, /*bucket_mb=*/1e-4).average();  // several small buckets
  std::vector<torch::Tensor> result{
      torch::tensor(dist::average(group, {out.total.item<double>()})[0])};
  for (const auto& p : params) result.push_back(p.grad().clone());
  return result;
}

const std::vector<std::string> kLosses{"halo", "infonce", "siglip"};

TEST(DistWorker, WritesLossAndGradients) {
  const char* out = std::getenv(kOutVar);
  if (out == nullptr) GTEST_SKIP() << "a rank of the DistGradients tests; does nothing on its own";
  const auto group = dist::make_process_group(dist::read_env(), {"gloo", 30, 30}, torch::kCPU);
  for (const auto& name : kLosses) {
    torch::save(loss_and_gradients(name, *group),
                std::string(out) + "/" + name + "_" + std::to_string(group->rank()) + ".pt");
  }
}

void expect_ranks_match_one_process(int world) {
  const std::string dir = make_temp_dir("dist_grads_" + std::to_string(world));
  dist::LaunchOptions o;
  o.nproc_per_node = world;
  o.standalone = true;
  o.grace_period_s = 2;
  o.program = "/proc/self/exe";
  o.args = {"--gtest_filter=DistWorker.WritesLossAndGradients"};
  setenv(kOutVar, dir.c_str(), 1);
  const int status = dist::launch(o);
  unsetenv(kOutVar);
  ASSERT_EQ(status, 0);

  const auto single = dist::make_process_group(dist::DistEnv{}, {}, torch::kCPU);
  for (const auto& name : kLosses) {
    const std::vector<torch::Tensor> expected = loss_and_gradients(name, *single);
    for (int r = 0; r < world; ++r) {
      SCOPED_TRACE(name + ", rank " + std::to_string(r) + " of " + std::to_string(world));
      std::vector<torch::Tensor> got;
      torch::load(got, dir + "/" + name + "_" + std::to_string(r) + ".pt");
      ASSERT_EQ(got.size(), expected.size());
      EXPECT_TRUE(all_close(got[0], expected[0], 1e-5, 1e-5)) << "loss";
      for (size_t i = 1; i < got.size(); ++i) {
        EXPECT_TRUE(all_close(got[i], expected[i], 1e-5, 1e-5))
            << "gradient of parameter " << i - 1;
      }
    }
  }
}

TEST(DistGradients, TwoRanksEqualOneProcess) {
  expect_ranks_match_one_process(2);
}
TEST(DistGradients, ThreeRanksEqualOneProcess) {
  expect_ranks_match_one_process(3);
}

TEST(DistGroup, LaunchedWorldOfOneWithANamedBackendUsesC10d) {
  dist::DistEnv env;
  env.source = "launcher";
  env.master_port = dist::free_port();
  // Not named: nothing to communicate, the local group.
  EXPECT_EQ(dist::make_process_group(env, {"auto", 10, 10}, torch::kCPU)->backend(), "none");
  // Named: a real Gloo group of one (rendezvous through the TCPStore, collectives included).
  const auto group = dist::make_process_group(env, {"gloo", 10, 10}, torch::kCPU);
  EXPECT_EQ(group->backend(), "gloo");
  EXPECT_EQ(group->size(), 1);
  std::vector<torch::Tensor> t{torch::tensor({2.0, 3.0})};
  group->all_reduce_sum(t);
  EXPECT_TRUE(t[0].equal(torch::tensor({2.0, 3.0})));
  EXPECT_TRUE(group->all_gather(torch::ones({2, 3})).equal(torch::ones({2, 3})));
  group->barrier();
  EXPECT_THAT(dist::rendezvous_store_backend(), ::testing::HasSubstr("TCPStore ("));
}

TEST(DistGroup, PeerThatNeverArrivesIsAClearError) {
  dist::DistEnv env;
  env.world_size = 2;
  env.master_port = dist::free_port();
  const std::string message = error_message([&] {
    dist::make_process_group(env, {"gloo", 1, 1}, torch::kCPU);
  });
  EXPECT_THAT(message, ::testing::HasSubstr("1 of 2 ranks arrived"));
  EXPECT_THAT(message, ::testing::HasSubstr("127.0.0.1:" + std::to_string(env.master_port)));
}

TEST(DistGroup, UnreachableMasterIsAClearError) {
  dist::DistEnv env;
  env.rank = 1;
  env.world_size = 2;
  env.master_port = dist::free_port();
  const std::string message = error_message([&] {
    dist::make_process_group(env, {"gloo", 1, 1}, torch::kCPU);
  });
  EXPECT_THAT(message, ::testing::HasSubstr("rank 1 could not reach rank 0"));
  EXPECT_THAT(message, ::testing::HasSubstr("127.0.0.1:" + std::to_string(env.master_port)));
  EXPECT_THAT(message, ::testing::HasSubstr("WORLD_SIZE = 2"));
}

// Job A's rank 0 serves a world of 2 on a port; job B is started on the same port. B's rank 1
// reaches A's store and is refused by run id (A still counts 1 of 2 arrivals, so B's rank was
// not counted); B's rank 0 is told the port is in use.
TEST(DistGroup, TwoJobsOnOnePortAreToldApart) {
  dist::DistEnv a;
  a.source = "launcher";
  a.world_size = 2;
  a.master_port = dist::free_port();
  a.run_id = "job-a";
  std::string a_error;
  std::thread serve([&] {
    a_error = error_message([&] { dist::make_process_group(a, {"gloo", 6, 6}, torch::kCPU); });
  });
  dist::DistEnv b = a;
  b.run_id = "job-b";
  b.rank = 1;  // first: its client waits for A's store to come up
  const std::string b1 = error_message([&] {
    dist::make_process_group(b, {"gloo", 6, 6}, torch::kCPU);
  });
  b.rank = 0;
  const std::string b0 = error_message([&] {
    dist::make_process_group(b, {"gloo", 6, 6}, torch::kCPU);
  });
  serve.join();
  EXPECT_THAT(b1, ::testing::HasSubstr("rank 1 reached the rendezvous of another job"));
  EXPECT_THAT(b1, ::testing::HasSubstr("its run id is 'job-a', this rank's is 'job-b'"));
  EXPECT_THAT(b0, ::testing::HasSubstr("rank 0 could not serve the rendezvous"));
  EXPECT_THAT(b0, ::testing::HasSubstr("port " + std::to_string(a.master_port) +
                                       " on 127.0.0.1 is already in use"));
  EXPECT_THAT(a_error, ::testing::HasSubstr("1 of 2 ranks arrived"));
}

// Where this LibTorch lets the store serve on a socket of ours, it listens on MASTER_ADDR only:
// with 127.0.0.1, the port is still free on the other addresses of this host.
TEST(DistGroup, StoreListensOnMasterAddrOnly) {
  if (!dist::store_binds_master_addr())
    GTEST_SKIP() << "this LibTorch's store listens on every interface";
  dist::DistEnv env;
  env.source = "launcher";
  env.master_port = dist::free_port();
  const auto group = dist::make_process_group(env, {"gloo", 10, 10}, torch::kCPU);
  // 127.0.0.2 is loopback too, but another address: a store on every interface would hold it.
  const int fd = dist::listen_on("127.0.0.2", env.master_port);
  EXPECT_GE(fd, 0);
  if (fd >= 0) close(fd);
}

}  // namespace
}  // namespace halo::test
