// bench_dist: time of one training step (encode, gather, loss, backward, gradient all-reduce,
// AdamW) and of its communication, with the global batch split over R processes on this machine
// (Gloo on CPU). Random images and tokens, the model of a configuration (e.g. configs/tiny.yaml).
// Run as `bench_dist --config C --nproc R`: it starts its R ranks itself through the launcher.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <limits>

#include <torch/torch.h>

#include "common/allocator.h"
#include "common/args.h"
#include "common/error.h"
#include "common/threads.h"
#include "dist/gather_with_grad.h"
#include "dist/grad_allreduce.h"
#include "dist/launcher.h"
#include "dist/process_group.h"
#include "encoders/clip_model.h"
#include "loss/contrastive_loss.h"
#include "train/config.h"
#include "train/optimizer.h"

namespace {

using Clock = std::chrono::steady_clock;

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

int run_rank(const halo::train::Config& c, int64_t steps, int64_t warmup, int64_t vocab) {
  const int threads = halo::configure_cpu_threads();
  const auto env = halo::dist::read_env();
  const auto group = halo::dist::make_process_group(env, {"gloo", 60, 60}, torch::kCPU);
  const int R = group->size();
  const int64_t B = c.train.batch_size, n = B / R, S = c.model.image.image_size,
                L = c.model.text.context_length;
  HALO_CHECK(B % R == 0, "train.batch_size (", B, ") must be a multiple of --nproc (", R, ")");

  torch::manual_seed(c.train.seed);
  halo::encoders::ClipModel model(c.model, vocab, 2);
  halo::loss::ContrastiveLossOptions lo;
  lo.name = c.loss.name;
  lo.embed_dim = c.model.embed_dim;
  lo.num_candidates = B;
  auto loss_fn = halo::loss::make_contrastive_loss(lo);
  auto optimizer = halo::train::make_optimizer(*model, *loss_fn, c.optim);
  std::vector<torch::Tensor> params = model->parameters();
  for (const auto& p : loss_fn->parameters()) params.push_back(p);
  halo::dist::broadcast_parameters(params, *group);
  halo::dist::GradientAverager grads(params, *group, c.dist.bucket_mb);
  int64_t numel = 0;
  for (const auto& p : params) numel += p.numel();

  // This rank's slice of a fixed random global batch.
  const torch::Tensor images =
      torch::randn({B, 3, S, S}).narrow(0, group->rank() * n, n).contiguous();
  torch::Tensor tokens =
      torch::randint(3, vocab, {B, L}).narrow(0, group->rank() * n, n).contiguous();
  tokens.select(1, L - 1).fill_(2);  // the end-of-text id ends every sequence

  std::vector<double> step_ms, comm_ms;
  double loss = 0;
  for (int64_t s = 0; s < warmup + steps; ++s) {
    group->barrier();  // start every step together: the figure is the step, not the skew
    group->take_comm_seconds();
    const auto start = Clock::now();
    const auto pairs = halo::dist::global_pair_batch(model->encode_image(images),
                                                     model->encode_text(tokens), *group);
    const auto out = loss_fn->forward(pairs);
    optimizer->zero_grad();
    out.total.backward();
    grads.average();
    torch::nn::utils::clip_grad_norm_(params, 1.0);
    optimizer->step();
    loss = halo::dist::average(*group, {out.total.item<double>()})[0];
    if (s >= warmup) {
      step_ms.push_back(1000 * std::chrono::duration<double>(Clock::now() - start).count());
      comm_ms.push_back(1000 * group->take_comm_seconds());
    }
  }
  // Validate: the loss is finite and every rank holds the same parameters.
  HALO_CHECK(std::isfinite(loss), "bench_dist: the loss is ", loss);
  torch::Tensor checksum = torch::zeros({1}, torch::kDouble);
  for (const auto& p : params) checksum += p.detach().to(torch::kDouble).sum();
  const torch::Tensor all = group->all_gather(checksum);
  HALO_CHECK(torch::allclose(all, all[0].expand_as(all), 0, 0),
             "bench_dist: the ranks' parameters differ");

  if (group->rank() == 0) {
    const double D = static_cast<double>(c.model.embed_dim), mib = 1024.0 * 1024.0;
    const double bytes =
        4.0 * (6.0 * (R - 1) * n * D + 2.0 * (R - 1) / R * static_cast<double>(numel));
    std::printf(
        "bench_dist: %d rank(s), %d torch thread(s) each, global batch %lld (%lld per rank), D = "
        "%lld, "
        "%lld parameters, loss %s\n"
        "step %.1f ms (median of %lld after %lld warm-up), of which communication %.1f ms; "
        "%.2f MiB sent per rank and step (ring estimate); last loss %.4f\n",
        R, threads, static_cast<long long>(B), static_cast<long long>(n), static_cast<long long>(D),
        static_cast<long long>(numel), c.loss.name.c_str(), median(step_ms),
        static_cast<long long>(steps), static_cast<long long>(warmup), median(comm_ms), bytes / mib,
        loss);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  halo::keep_freed_memory();  // as halo-clip does (src/common/allocator.h)
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  halo::ArgParser args(
      "bench_dist",
      "Median step time and communication time of data-parallel training with the\n"
      "global batch (train.batch_size) split over --nproc processes on this machine.");
  args.required("config", "FILE", "training configuration (model, loss, batch size)")
      .repeated("set", "KEY=VALUE", "configuration override")
      .option("nproc", "R", "processes (ranks) to start", "2")
      .option("steps", "N", "steps to time", "20")
      .option("warmup", "N", "steps before timing", "3")
      .option("vocab", "V", "vocabulary size of the random tokens", "1000");
  try {
    if (!args.parse(std::vector<std::string>(argv + 1, argv + argc))) return 0;
    const auto c = halo::train::load_config(args.str("config"), args.all("set"));
    if (std::getenv("RANK") != nullptr) {
      return run_rank(c, args.integer("steps"), args.integer("warmup"), args.integer("vocab"));
    }
    halo::dist::LaunchOptions o;
    o.nproc_per_node = static_cast<int>(args.integer("nproc"));
    o.standalone = true;
    o.program = "/proc/self/exe";
    o.args = std::vector<std::string>(argv + 1, argv + argc);
    return halo::dist::launch(o);
  } catch (const halo::Error& e) {
    std::fprintf(stderr, "bench_dist: error: %s\n", e.message().c_str());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_dist: error: %s\n", e.what());
  }
  return 1;
}
