// bench_kernel: forward+backward time, peak tensor memory and achieved TFLOP/s of the batch
// HALO loss, tiled (CPU tiles or CUDA kernels) against dense (the n x n matrix through
// LibTorch), for fp32 and bf16 embeddings. FLOPs counted: 12 N^2 D per step, the matrix
// products a dense step needs (per direction: S = Q C^T forward, G C and G^T Q backward, each
// 2 N^2 D). The tiled path does more (it recomputes S in the backward); the count stays the
// same so that TFLOP/s compare like with like. Run with --help for the flags.
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
#include "loss/halo_clip_loss.h"
#include "loss/halo_terms.h"
#include "memory_meter.h"

namespace {

using halo::loss::LossImplementation;

std::vector<std::string> split(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream in(text);
  for (std::string item; std::getline(in, item, ',');) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

std::vector<int64_t> parse_ints(const std::string& text, const std::string& flag) {
  std::vector<int64_t> out;
  for (const auto& item : split(text)) {
    try {
      out.push_back(std::stoll(item));
    } catch (const std::exception&) {
      HALO_FAIL("--", flag, " expects comma-separated integers, got '", text, "'");
    }
    HALO_CHECK(out.back() > 0, "--", flag, " values must be positive, got ", out.back());
  }
  return out;
}

struct Case {
  int64_t n, d;
  torch::ScalarType dtype;
  LossImplementation impl;
  int64_t tile;
};

struct Result {
  bool ok = false;
  std::string note;  // why there is no time (out of memory, skipped)
  double median_ms = 0, peak_mib = 0;
};

void sync(const torch::Device& device) {
  if (device.is_cuda()) torch::cuda::synchronize();
}

Result run_case(const Case& c, const torch::Device& device, int warmup, int repeats,
                double max_case_s) {
  halo::loss::HaloClipOptions opt;
  opt.embed_dim = c.d;
  opt.num_candidates = c.n;
  opt.check_finite = false;
  opt.implementation = halo::loss::loss_implementation_name(c.impl);
  opt.tile_size = c.tile;
  const double b = halo::loss::abstain_bias(c.d, c.n, opt.label_smoothing);
  torch::manual_seed(0);
  const auto o = torch::TensorOptions().device(device);
  torch::Tensor image = torch::randn({c.n, c.d}, o).to(c.dtype).requires_grad_(true);
  torch::Tensor text = (0.5 * image.detach().to(torch::kFloat) + torch::randn({c.n, c.d}, o))
                           .to(c.dtype)
                           .requires_grad_(true);
  torch::Tensor gamma_raw =
      torch::full({1}, halo::loss::initial_gamma_raw(c.d), o).requires_grad_(true);
  const auto batch = halo::loss::PairBatch::local(image, text);
  auto step = [&] {
    for (auto* t : {&image, &text, &gamma_raw}) t->mutable_grad() = torch::Tensor();
    torch::Tensor total = halo::loss::halo_clip_loss(batch, gamma_raw, b, opt).total;
    total.backward();
    sync(device);
    return total;
  };
  Result r;
  halo::bench::MemoryMeter meter(device);
  try {
    meter.reset_peak();
    const auto t0 = std::chrono::steady_clock::now();
    const double first = step().item<double>();  // validate (and time) before repeating
    const double first_ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    HALO_CHECK(std::isfinite(first) && image.grad().isfinite().all().item<bool>(),
               "non-finite loss or gradient at N = ", c.n);
    r.peak_mib = meter.peak_bytes_above_start() / (1024.0 * 1024.0);
    if (first_ms > 1000.0 * max_case_s) {  // too slow to repeat: report the one run
      r.ok = true;
      r.median_ms = first_ms;
      r.note = "1 run";
      return r;
    }
    for (int i = 0; i < warmup; ++i) step();
    std::vector<double> times;
    for (int i = 0; i < repeats; ++i) {
      meter.reset_peak();
      const auto t1 = std::chrono::steady_clock::now();
      step();
      times.push_back(
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t1).count());
      r.peak_mib = std::max(r.peak_mib, meter.peak_bytes_above_start() / (1024.0 * 1024.0));
    }
    std::sort(times.begin(), times.end());
    r.median_ms = times[times.size() / 2];
    r.ok = true;
  } catch (const halo::Error&) {
    throw;
  } catch (const std::exception& e) {
    const std::string what = e.what();
    if (what.find("out of memory") == std::string::npos &&
        what.find("alloc") == std::string::npos) {
      throw;
    }
    r.note = "out of memory";
  }
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  halo::ArgParser args(
      "bench_kernel",
      "Forward+backward time, peak memory and TFLOP/s of the batch HALO loss,\n"
      "tiled against dense, on random N x D embeddings. TFLOP/s = 12 N^2 D / time.\n"
      "Defaults: N in {4096,16384,65536,262144}, D in {256,512,1024}, fp32 and bf16\n"
      "on CUDA; N in {1024,2048,4096}, D in {256,512}, fp32 on CPU.");
  args.option("device", "DEV", "cpu or cuda", "cpu")
      .option("sizes", "N,N,...", "batch sizes (default: by device)", "")
      .option("dims", "D,D,...", "embedding sizes (default: by device)", "")
      .option("dtypes", "T,T", "fp32 and/or bf16 (default: by device)", "")
      .option("impls", "I,I", "tiled and/or dense", "tiled,dense")
      .option("dense-max-n", "N", "skip dense above this N (0: no limit; CUDA catches OOM)", "")
      .option("tile", "T", "CPU tile edge of the tiled path", "1024")
      .option("warmup", "K", "untimed runs per case", "1")
      .option("repeats", "K", "timed runs per case (the median is reported)", "3")
      .option("max-case-s", "S", "a case whose first run takes longer is not repeated", "30")
      .option("threads", "T", "CPU threads (0: all cores, or OMP_NUM_THREADS)", "0");
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  try {
    if (!args.parse(std::vector<std::string>(argv + 1, argv + argc))) return 0;
    std::string dev = args.str("device");
    if (dev == "cuda") dev = "cuda:0";
    const torch::Device device(dev);
    const bool cuda = device.is_cuda();
    HALO_CHECK(!cuda || torch::cuda::is_available(),
               "--device cuda but no CUDA device is available");
    auto pick = [&](const std::string& flag, const char* gpu, const char* cpu) {
      const std::string v = args.str(flag);
      return v.empty() ? std::string(cuda ? gpu : cpu) : v;
    };
    const auto sizes =
        parse_ints(pick("sizes", "4096,16384,65536,262144", "1024,2048,4096"), "sizes");
    const auto dims = parse_ints(pick("dims", "256,512,1024", "256,512"), "dims");
    const auto dense_max_n = parse_ints(pick("dense-max-n", "1000000000", "8192"), "dense-max-n");
    std::vector<torch::ScalarType> dtypes;
    for (const auto& t : split(pick("dtypes", "fp32,bf16", "fp32"))) {
      HALO_CHECK(t == "fp32" || t == "bf16", "--dtypes takes fp32 and/or bf16, got '", t, "'");
      dtypes.push_back(t == "fp32" ? torch::kFloat : torch::kBFloat16);
    }
    std::vector<LossImplementation> impls;
    for (const auto& name : split(args.str("impls"))) {
      impls.push_back(halo::loss::parse_loss_implementation(name, "--impls"));
    }
    const int warmup = static_cast<int>(args.integer("warmup"));
    const int repeats = static_cast<int>(args.integer("repeats"));
    HALO_CHECK(repeats >= 1 && warmup >= 0, "--repeats must be >= 1 and --warmup >= 0");
    const double max_case_s = std::stod(args.str("max-case-s"));
    if (args.integer("threads") > 0) {
      torch::set_num_threads(static_cast<int>(args.integer("threads")));
    } else {
      halo::configure_cpu_threads();
    }

    std::printf(
        "bench_kernel: device = %s, threads = %d, median of %d runs after %d warm-up, "
        "FLOPs = 12 N^2 D\n",
        device.str().c_str(), torch::get_num_threads(), repeats, warmup);
    std::printf("%-6s %-5s %8s %6s %14s %16s %9s  %s\n", "impl", "dtype", "N", "D", "fwd+bwd (ms)",
                "peak mem (MiB)", "TFLOP/s", "note");
    for (const auto dtype : dtypes) {
      for (const int64_t D : dims) {
        for (const int64_t N : sizes) {
          for (const auto impl : impls) {
            const bool dense = impl == LossImplementation::kDense;
            const char* name = dense                                ? "dense"
                               : impl == LossImplementation::kTiled ? "tiled"
                                                                    : "auto";
            const char* type = dtype == torch::kFloat ? "fp32" : "bf16";
            if (dense && N > dense_max_n.front()) {
              std::printf("%-6s %-5s %8lld %6lld %14s %16s %9s  skipped (--dense-max-n)\n", name,
                          type, static_cast<long long>(N), static_cast<long long>(D), "-", "-",
                          "-");
              continue;
            }
            const Result r = run_case({N, D, dtype, impl, args.integer("tile")}, device, warmup,
                                      repeats, max_case_s);
            if (!r.ok) {
              std::printf("%-6s %-5s %8lld %6lld %14s %16s %9s  %s\n", name, type,
                          static_cast<long long>(N), static_cast<long long>(D), "-", "-", "-",
                          r.note.c_str());
              continue;
            }
            const double flops = 12.0 * static_cast<double>(N) * static_cast<double>(N) * D;
            std::printf("%-6s %-5s %8lld %6lld %14.2f %16.1f %9.3f  %s\n", name, type,
                        static_cast<long long>(N), static_cast<long long>(D), r.median_ms,
                        r.peak_mib, flops / (r.median_ms * 1e-3) / 1e12, r.note.c_str());
          }
        }
      }
    }
    return 0;
  } catch (const halo::Error& e) {
    std::cerr << "bench_kernel: error: " << e.message() << "\n";
  } catch (const std::exception& e) {
    std::cerr << "bench_kernel: error: " << e.what() << "\n";
  }
  return 1;
}
