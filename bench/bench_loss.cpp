// bench_loss: forward+backward time and peak tensor memory of the batch HALO loss against
// InfoNCE and SigLIP, one process, on random embeddings. Validates each case, then times it
// (warm-up, repeats, median). Run with --help for the flags.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "common/args.h"
#include "common/error.h"
#include "common/threads.h"
#include "loss/contrastive_loss.h"
#include "memory_meter.h"

namespace {

using halo::loss::ContrastiveLossOptions;

struct Result {
  double median_ms, min_ms, peak_mib;
};

Result run_case(const std::string& name, int64_t N, int64_t D, int warmup, int repeats,
                torch::Device device) {
  ContrastiveLossOptions options;
  options.name = name;
  options.embed_dim = D;
  options.num_candidates = N;
  auto loss = halo::loss::make_contrastive_loss(options);
  loss->to(device);
  torch::manual_seed(0);
  torch::Tensor image = torch::randn({N, D}, device).requires_grad_(true);
  torch::Tensor text = (0.5 * image.detach() + torch::randn({N, D}, device)).requires_grad_(true);
  const auto batch = halo::loss::PairBatch::local(image, text);
  auto step = [&] {
    image.mutable_grad() = torch::Tensor();
    text.mutable_grad() = torch::Tensor();
    torch::Tensor total = loss->forward(batch).total;
    total.backward();
    if (device.is_cuda()) torch::cuda::synchronize();
    return total;
  };
  const double first = step().item<double>();  // validate before timing
  HALO_CHECK(std::isfinite(first) && image.grad().isfinite().all().item<bool>(), name,
             " produced a non-finite loss or gradient at N = ", N);
  for (int i = 0; i < warmup; ++i) step();

  halo::bench::MemoryMeter meter(device);
  std::vector<double> times;
  double peak = 0;
  for (int i = 0; i < repeats; ++i) {
    meter.reset_peak();
    const auto t0 = std::chrono::steady_clock::now();
    step();
    const auto t1 = std::chrono::steady_clock::now();
    times.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
    peak = std::max(peak, meter.peak_bytes_above_start() / (1024.0 * 1024.0));
  }
  std::sort(times.begin(), times.end());
  return {times[times.size() / 2], times.front(), peak};
}

}  // namespace

int main(int argc, char** argv) {
  halo::ArgParser args("bench_loss",
                       "Forward+backward time and peak tensor memory of the HALO batch loss\n"
                       "against InfoNCE and SigLIP on random N x D embeddings.");
  args.option("sizes", "N,N,...", "batch sizes", "256,1024,4096")
      .option("dim", "D", "embedding size", "512")
      .option("warmup", "K", "untimed runs per case", "2")
      .option("repeats", "K", "timed runs per case (the median is reported)", "5")
      .option("device", "DEV", "cpu or cuda", "cpu")
      .option("threads", "T", "CPU threads (0: all cores, or OMP_NUM_THREADS)", "0");
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // one table row at a time, also into a file
  try {
    if (!args.parse(std::vector<std::string>(argv + 1, argv + argc))) return 0;
    const auto sizes = halo::positive_integers(args.str("sizes"), "sizes");
    const int64_t D = args.integer("dim");
    const int warmup = static_cast<int>(args.integer("warmup"));
    const int repeats = static_cast<int>(args.integer("repeats"));
    HALO_CHECK(repeats >= 1 && warmup >= 0, "--repeats must be >= 1 and --warmup >= 0");
    const torch::Device device(args.str("device"));
    if (args.integer("threads") > 0) {
      torch::set_num_threads(static_cast<int>(args.integer("threads")));
    } else {
      halo::configure_cpu_threads();
    }

    std::printf(
        "bench_loss: D = %lld, device = %s, threads = %d, median of %d runs after %d warm-up\n",
        static_cast<long long>(D), device.str().c_str(), torch::get_num_threads(), repeats, warmup);
    std::printf("%-8s %7s %14s %12s %16s %14s\n", "loss", "N", "fwd+bwd (ms)", "min (ms)",
                "peak mem (MiB)", "time / InfoNCE");
    for (int64_t N : sizes) {
      const Result infonce = run_case("infonce", N, D, warmup, repeats, device);
      for (const std::string name : {"halo", "infonce", "siglip"}) {
        const Result r =
            name == "infonce" ? infonce : run_case(name, N, D, warmup, repeats, device);
        std::printf("%-8s %7lld %14.2f %12.2f %16.1f %13.2fx\n", name.c_str(),
                    static_cast<long long>(N), r.median_ms, r.min_ms, r.peak_mib,
                    r.median_ms / infonce.median_ms);
      }
    }
    return 0;
  } catch (const halo::Error& e) {
    std::cerr << "bench_loss: error: " << e.message() << "\n";
  } catch (const std::exception& e) {
    std::cerr << "bench_loss: error: " << e.what() << "\n";
  }
  return 1;
}
