// bench_step: peak memory and time of one full training step of a configuration (towers, loss,
// backward, gradient clipping, AdamW: train/step.h, as halo-clip train runs it) and of the pair
// dynamics' scores after it, at several global batches, dense against tiled, with and without
// exact gradient accumulation (train.accum_steps). Each case runs in a process of its own (this
// program again, with --case), so each peak is its own and a case that runs out of memory is
// reported instead of ending the benchmark. Random images and token ids: no data needed.
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <iostream>
#include <sstream>

#include <torch/torch.h>

#include "common/allocator.h"
#include "common/args.h"
#include "common/cpu_convolutions.h"
#include "common/error.h"
#include "common/threads.h"
#include "dist/grad_allreduce.h"
#include "dist/process_group.h"
#include "encoders/clip_model.h"
#include "hooks/pair_dynamics.h"
#include "memory_meter.h"
#include "train/components.h"
#include "train/config.h"
#include "train/optimizer.h"
#include "train/step.h"

namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}
double mib(int64_t bytes) {
  return static_cast<double>(bytes) / (1 << 20);
}

struct Case {
  int64_t batch = 0, accum = 1;
  std::string implementation;
};

// One case, in this process: prints one line "result STEP_S STEP_MIB SCORES_S SCORES_MIB
// INPUT_MIB MAXRSS_MIB".
int run_case(const halo::train::Config& base, const Case& k) {
  halo::bench::MemoryMeter meter(torch::kCPU);  // counts every tensor from here on
  halo::train::Config c = base;
  c.train.batch_size = k.batch;
  c.train.accum_steps = k.accum;
  c.loss.implementation = k.implementation;
  c.validate();
  torch::manual_seed(0);
  const int64_t vocab = c.tokenizer.vocab_size, eos = vocab - 1,
                length = c.model.text.context_length;
  halo::encoders::ClipModel model(c.model, vocab, eos);
  halo::loss::ContrastiveLossOptions options = halo::train::loss_options(c);
  options.check_finite = false;  // as halo-clip train
  const auto loss = halo::loss::make_contrastive_loss(options);
  const auto optimizer = halo::train::make_optimizer(*model, *loss, c.optim);
  std::vector<torch::Tensor> params = model->parameters();
  for (const auto& p : loss->parameters()) params.push_back(p);
  const auto group = halo::dist::make_process_group(halo::dist::DistEnv{}, {}, torch::kCPU);
  halo::dist::GradientAverager grads(params, *group, c.dist.bucket_mb);

  const int64_t S = c.model.image.image_size;
  const torch::Tensor images = torch::randn({k.batch, 3, S, S});
  torch::Tensor tokens = torch::randint(1, eos, {k.batch, length}, torch::kLong);
  tokens.select(1, length - 1).fill_(eos);
  const int64_t input_bytes = images.nbytes() + tokens.nbytes();

  // The first step also allocates AdamW's state and touches fresh memory: it is run untimed.
  const halo::train::StepModules modules{*model, *loss, *optimizer, params, grads, *group};
  const halo::train::StepOptions step_options{c.train.accum_steps, c.train.precision == "bf16",
                                              c.optim.grad_clip};
  halo::train::train_step(modules, step_options, images, tokens, {}, 0).loss.total.item<double>();
  meter.reset_peak();
  auto start = Clock::now();
  const halo::train::StepResult out =
      halo::train::train_step(modules, step_options, images, tokens, {}, 0);
  out.loss.total.item<double>();
  const double step_s = seconds_since(start);
  const int64_t step_bytes = meter.peak_bytes_above_start();

  meter.reset_peak();
  start = Clock::now();
  halo::hooks::step_pair_scores(*loss, out.pairs);
  const double scores_s = seconds_since(start);
  const int64_t scores_bytes = meter.peak_bytes_above_start();
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  std::printf("result %.3f %.1f %.3f %.1f %.1f %.1f\n", step_s, mib(step_bytes), scores_s,
              mib(scores_bytes), mib(input_bytes), static_cast<double>(usage.ru_maxrss) / 1024);
  return 0;
}

std::string quoted(const std::string& s) {
  std::string out = "'";
  for (char ch : s) out += ch == '\'' ? std::string("'\\''") : std::string(1, ch);
  return out + "'";
}

// Runs one case in a child process; prints its row of the table.
void run_child(const std::string& self, const std::vector<std::string>& common, const Case& k) {
  std::string command = "exec " + quoted(self);
  for (const auto& a : common) command += " " + quoted(a);
  command += " --case " + std::to_string(k.batch) + "," + k.implementation + "," +
             std::to_string(k.accum) + " 2>&1";
  FILE* pipe = popen(command.c_str(), "r");
  HALO_CHECK(pipe != nullptr, "cannot start ", self);
  std::string output, result;
  char line[4096];
  while (std::fgets(line, sizeof line, pipe) != nullptr) {
    output += line;
    if (std::string(line).rfind("result ", 0) == 0) result = std::string(line).substr(7);
  }
  const int status = pclose(pipe);
  std::printf("%8lld %-6s %6lld %7lld ", static_cast<long long>(k.batch), k.implementation.c_str(),
              static_cast<long long>(k.accum), static_cast<long long>(k.batch / k.accum));
  if (status != 0 || result.empty()) {
    const bool killed = WIFSIGNALED(status) || (WIFEXITED(status) && WEXITSTATUS(status) == 137);
    std::printf(" %s\n", killed ? "killed (out of memory?)"
                                : ("failed: " + output.substr(0, output.find('\n'))).c_str());
    return;
  }
  double step_s = 0, step_mib = 0, scores_s = 0, scores_mib = 0, input_mib = 0, rss_mib = 0;
  std::istringstream(result) >> step_s >> step_mib >> scores_s >> scores_mib >> input_mib >>
      rss_mib;
  std::printf("%9.3f %11.1f %10.3f %11.1f %10.1f %10.1f\n", step_s, step_mib, scores_s, scores_mib,
              input_mib, rss_mib);
}

}  // namespace

int main(int argc, char** argv) {
  halo::keep_freed_memory();  // as halo-clip does (src/common/allocator.h)
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  halo::ArgParser args(
      "bench_step",
      "Peak tensor memory and time of one training step (towers, loss, backward, clipping,\n"
      "AdamW) and of the pair dynamics' scores after it, by global batch, dense against\n"
      "tiled, with and without gradient accumulation; one process per case.");
  args.required("config", "FILE", "training configuration (model, loss, optimiser)")
      .repeated("set", "KEY=VALUE", "configuration override")
      .option("batches", "N,N,...", "global batches", "1024,4096,16384")
      .option("impls", "I,I", "loss implementations (dense, tiled)", "dense,tiled")
      .option("micro-batch", "M",
              "micro-batch of the accumulated cases (train.accum_steps = N / M)", "1024")
      .option("plain-up-to", "N",
              "also run without accumulation up to this global batch (0: never)", "4096")
      .option("case", "N,IMPL,K",
              "run one case in this process (what the benchmark starts itself with)", "");
  try {
    if (!args.parse(std::vector<std::string>(argv + 1, argv + argc))) return 0;
    const int threads = halo::configure_cpu_threads();
    halo::check_cpu_convolutions();  // as halo-clip does
    const auto config = halo::train::load_config(args.str("config"), args.all("set"));
    if (!args.str("case").empty()) {
      const auto parts = halo::split_list(args.str("case"));
      HALO_CHECK(parts.size() == 3, "--case expects N,IMPL,K, got '", args.str("case"), "'");
      return run_case(config, {halo::positive_integers(parts[0], "case").front(),
                               halo::positive_integers(parts[2], "case").front(), parts[1]});
    }
    const auto batches = halo::positive_integers(args.str("batches"), "batches");
    const auto impls = halo::split_list(args.str("impls"));
    const int64_t micro = args.integer("micro-batch"), plain_up_to = args.integer("plain-up-to");
    HALO_CHECK(micro >= 1, "--micro-batch must be >= 1, got ", micro);
    std::vector<Case> cases;
    for (const int64_t n : batches) {
      for (const auto& impl : impls) {
        HALO_CHECK(impl == "dense" || impl == "tiled", "--impls takes dense and/or tiled, got '",
                   impl, "'");
        if (n <= plain_up_to || n <= micro) cases.push_back({n, 1, impl});
        if (n > micro) {
          HALO_CHECK(n % micro == 0, "--micro-batch ", micro,
                     " must divide every batch above it, not ", n);
          cases.push_back({n, n / micro, impl});
        }
      }
    }
    char self[4096];
    const ssize_t length = readlink("/proc/self/exe", self, sizeof self - 1);
    HALO_CHECK(length > 0, "cannot find this program's path (/proc/self/exe)");
    self[length] = '\0';
    std::vector<std::string> common{"--config", args.str("config")};
    for (const auto& s : args.all("set")) common.insert(common.end(), {"--set", s});

    std::printf(
        "bench_step: %s, loss %s, D = %lld, image %lld px, %d torch threads, the second step of "
        "each case\n",
        args.str("config").c_str(), config.loss.name.c_str(),
        static_cast<long long>(config.model.embed_dim),
        static_cast<long long>(config.model.image.image_size), threads);
    std::printf(
        "peak MiB: tensors allocated during the step (or the scores) above what was live before "
        "it; input: the "
        "batch's images and tokens; max RSS: the whole process\n");
    std::printf("%8s %-6s %6s %7s %9s %11s %9s %11s %10s %10s\n", "batch", "loss", "accum", "micro",
                "step (s)", "step peak", "scores (s)", "scores peak", "input", "max RSS");
    for (const auto& k : cases) run_child(self, common, k);
    return 0;
  } catch (const halo::Error& e) {
    std::cerr << "bench_step: error: " << e.message() << "\n";
  } catch (const std::exception& e) {
    std::cerr << "bench_step: error: " << e.what() << "\n";
  }
  return 1;
}
