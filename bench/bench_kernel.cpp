// bench_kernel: forward+backward time, peak tensor memory and achieved TFLOP/s of the batch
// HALO loss: tiled (ATen tiles, on CPU or CUDA), kernel (the hand-written CUDA kernels) and dense
// (the n x n matrix through LibTorch), for fp32 and bf16 embeddings. Before timing, every case is
// checked against the dense fp32 reference: the whole batch where dense fits, else sampled row
// blocks computed densely. FLOPs counted: 12 N^2 D per step, the matrix products a dense step
// needs (per direction: S = Q C^T forward, G C and G^T Q backward, each 2 N^2 D). The tiled
// paths do more (they recompute S in the backward); the count stays the same so that TFLOP/s
// compare like with like. Run with --help for the flags.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <limits>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "common/args.h"
#include "common/error.h"
#include "common/threads.h"
#include "loss/halo_clip_loss.h"
#include "loss/halo_terms.h"
#include "loss/halo_tiled.h"
#include "memory_meter.h"
#ifdef HALO_BENCH_CUDA
#include <c10/cuda/CUDACachingAllocator.h>
#endif

namespace {

using halo::loss::LossImplementation;

struct Case {
  int64_t n, d;
  torch::ScalarType dtype;
  LossImplementation impl;
  int64_t tile;
};

bool is_out_of_memory(const std::exception& e) {
  const std::string what = e.what();
  return what.find("out of memory") != std::string::npos || what.find("alloc") != std::string::npos;
}

void sync(const torch::Device& device) {
  if (device.is_cuda()) torch::cuda::synchronize();
}

// The embeddings of one (N, D, dtype): the same values for every implementation.
struct Inputs {
  torch::Tensor image, text, gamma_raw;  // on the device, not leaves
};

Inputs make_inputs(int64_t n, int64_t d, torch::ScalarType dtype, const torch::Device& device) {
  torch::manual_seed(0);
  const auto o = torch::TensorOptions().device(device);
  Inputs in;
  in.image = torch::randn({n, d}, o).to(dtype);
  in.text = (0.5 * in.image.to(torch::kFloat) + torch::randn({n, d}, o)).to(dtype);
  in.gamma_raw = torch::full({1}, halo::loss::initial_gamma_raw(d), o);
  return in;
}

halo::loss::HaloClipOptions loss_options(int64_t n, int64_t d, LossImplementation impl,
                                         int64_t tile) {
  halo::loss::HaloClipOptions opt;
  opt.embed_dim = d;
  opt.num_candidates = n;
  opt.check_finite = false;
  opt.implementation = halo::loss::loss_implementation_name(impl);
  opt.tile_size = tile;
  return opt;
}

// A loss value and its gradients (image, text, gamma_raw), on the CPU in fp64, for checking.
struct Outcome {
  double loss = 0;
  std::vector<torch::Tensor> grads;
};

// Rows [r0, r0 + k) against all N columns (k = N: the whole batch), from fresh leaves made of
// `in` (converted to `dtype`), with implementation `impl`. The reference is dense on fp32 copies
// of the same values.
Outcome loss_and_grads(const Inputs& in, torch::ScalarType dtype, int64_t r0, int64_t k,
                       const halo::loss::HaloClipOptions& opt) {
  torch::Tensor image = in.image.to(dtype).detach().requires_grad_(true);
  torch::Tensor text = in.text.to(dtype).detach().requires_grad_(true);
  torch::Tensor gamma_raw = in.gamma_raw.detach().clone().requires_grad_(true);
  const int64_t n = image.size(0);
  const double b = halo::loss::abstain_bias(opt.embed_dim, n, opt.label_smoothing);
  const halo::loss::PairBatch batch =
      k == n ? halo::loss::PairBatch::local(image, text)
             : halo::loss::PairBatch{
                   image.narrow(0, r0, k), text.narrow(0, r0, k), image, text, r0, {}, {}};
  torch::Tensor total = halo::loss::halo_clip_loss(batch, gamma_raw, b, opt).total;
  total.backward();
  Outcome out;
  out.loss = total.item<double>();
  for (const auto* t : {&image, &text, &gamma_raw})
    out.grads.push_back(t->grad().to(torch::kCPU, torch::kDouble));
  return out;
}

// The largest relative error of `got` against `ref`: |loss - ref| / |ref| and, per gradient,
// ||g - ref||_2 / ||ref||_2 (NaN counts as infinite).
double relative_error(const Outcome& got, const Outcome& ref) {
  auto rel = [](double diff, double norm) {
    const double e = diff / std::max(norm, 1e-30);
    return std::isfinite(e) ? e : std::numeric_limits<double>::infinity();
  };
  double worst = rel(std::abs(got.loss - ref.loss), std::abs(ref.loss));
  for (size_t i = 0; i < ref.grads.size(); ++i) {
    worst = std::max(worst, rel((got.grads[i] - ref.grads[i]).norm().item<double>(),
                                ref.grads[i].norm().item<double>()));
  }
  return worst;
}

// The dense fp32 reference of one (N, D, dtype): the whole batch where it fits (N <= full_max_n
// and no out-of-memory), else `blocks` row blocks of `rows` rows (first, middle, last).
struct Reference {
  bool full = false;
  Outcome whole;
  std::vector<std::pair<int64_t, Outcome>> blocks;  // (first row, outcome)
  int64_t rows = 0;
  std::string describe() const {
    return full ? std::string("whole batch")
                : std::to_string(blocks.size()) + " blocks of " + std::to_string(rows) + " rows";
  }
};

Reference make_reference(const Inputs& in, int64_t d, int64_t full_max_n, int64_t rows) {
  const int64_t n = in.image.size(0);
  const auto opt = loss_options(n, d, LossImplementation::kDense, 1024);
  Reference ref;
  if (n <= full_max_n) {
    try {
      ref.whole = loss_and_grads(in, torch::kFloat, 0, n, opt);
      ref.full = true;
      return ref;
    } catch (const halo::Error&) {
      throw;
    } catch (const std::exception& e) {
      if (!is_out_of_memory(e)) throw;
#ifdef HALO_BENCH_CUDA
      c10::cuda::CUDACachingAllocator::emptyCache();
#endif
    }
  }
  ref.rows = std::min(rows, n);
  std::vector<int64_t> starts{0, (n - ref.rows) / 2, n - ref.rows};
  starts.erase(std::unique(starts.begin(), starts.end()), starts.end());
  for (const int64_t r0 : starts)
    ref.blocks.emplace_back(r0, loss_and_grads(in, torch::kFloat, r0, ref.rows, opt));
  return ref;
}

// Checks implementation `c.impl` against the reference: the whole batch (`first` is its first
// timed run) or the reference's row blocks. Returns the largest relative error.
double check_case(const Case& c, const Inputs& in, const Reference& ref, const Outcome* first) {
  if (ref.full) return relative_error(*first, ref.whole);
  const auto opt = loss_options(c.n, c.d, c.impl, c.tile);
  double worst = 0;
  for (const auto& [r0, expected] : ref.blocks) {
    worst =
        std::max(worst, relative_error(loss_and_grads(in, c.dtype, r0, ref.rows, opt), expected));
  }
  return worst;
}

struct Result {
  bool ok = false;
  bool check_failed = false;
  std::string note;  // why there is no time (out of memory, skipped), or "1 run"
  double median_ms = 0, peak_mib = 0, check_error = 0;
};

Result run_case(const Case& c, const Inputs& in, const Reference& ref, double tolerance,
                const torch::Device& device, int warmup, int repeats, double max_case_s) {
  const auto opt = loss_options(c.n, c.d, c.impl, c.tile);
  const double b = halo::loss::abstain_bias(c.d, c.n, opt.label_smoothing);
  torch::Tensor image = in.image.to(c.dtype).detach().requires_grad_(true);
  torch::Tensor text = in.text.to(c.dtype).detach().requires_grad_(true);
  torch::Tensor gamma_raw = in.gamma_raw.detach().clone().requires_grad_(true);
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
    const torch::Tensor first_total = step();  // checked (and timed) before repeating
    const double first_ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    r.peak_mib = meter.peak_bytes_above_start() / (1024.0 * 1024.0);
    Outcome first;
    if (ref.full) {
      first.loss = first_total.item<double>();
      for (const auto* t : {&image, &text, &gamma_raw})
        first.grads.push_back(t->grad().to(torch::kCPU, torch::kDouble));
    }
    r.check_error = check_case(c, in, ref, &first);
    if (!(r.check_error <= tolerance)) {
      r.check_failed = true;
      r.note = "CHECK FAILED";
      return r;
    }
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
    if (!is_out_of_memory(e)) throw;
    r.note = "out of memory";
#ifdef HALO_BENCH_CUDA
    c10::cuda::CUDACachingAllocator::emptyCache();
#endif
  }
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  halo::ArgParser args(
      "bench_kernel",
      "Forward+backward time, peak memory and TFLOP/s of the batch HALO loss, tiled\n"
      "(ATen tiles), kernel (CUDA kernels) and dense, on random N x D embeddings.\n"
      "TFLOP/s = 12 N^2 D / time. Each case is first checked against the dense fp32\n"
      "reference (loss and gradients, largest relative error: |dloss|/|loss| and\n"
      "||dgrad||_2/||grad||_2; tolerance 1e-4 for fp32, 2e-2 for bf16 inputs): the whole\n"
      "batch where dense fits, else 3 row blocks (--check-rows) against all columns.\n"
      "A case that fails the check is not timed, and the exit status is 1.\n"
      "Defaults: N in {4096,16384,65536,262144}, D in {256,512,1024}, fp32 and bf16,\n"
      "tiled, kernel and dense on CUDA; N in {1024,2048,4096}, D in {256,512}, fp32,\n"
      "tiled and dense on CPU.");
  args.option("device", "DEV", "cpu or cuda", "cpu")
      .option("sizes", "N,N,...", "batch sizes (default: by device)", "")
      .option("dims", "D,D,...", "embedding sizes (default: by device)", "")
      .option("dtypes", "T,T", "fp32 and/or bf16 (default: by device)", "")
      .option("impls", "I,I", "tiled, kernel and/or dense (default: by device)", "")
      .option("dense-max-n", "N", "skip timing dense above this N (CUDA also catches OOM)", "")
      .option("check-full-max-n", "N",
              "check against the whole dense batch up to this N, sampled rows above", "")
      .option("check-rows", "K", "rows per sampled block when the whole batch is not checked",
              "512")
      .option("tile", "T", "tile edge of the tiled (ATen) path", "1024")
      .option("warmup", "K", "untimed runs per case", "1")
      .option("repeats", "K", "timed runs per case (the median is reported)", "3")
      .option("max-case-s", "S", "a case whose first run takes longer is not repeated", "30")
      .option("skip-projected-s", "S",
              "skip a case whose time projected from the same implementation at the previous N\n"
              "(time ~ N^2) exceeds S seconds (0: never skip)",
              "0")
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
    auto pick = [&](const std::string& flag, const std::string& gpu, const std::string& cpu) {
      const std::string v = args.str(flag);
      return v.empty() ? (cuda ? gpu : cpu) : v;
    };
    const auto sizes = halo::positive_integers(
        pick("sizes", "4096,16384,65536,262144", "1024,2048,4096"), "sizes");
    const auto dims = halo::positive_integers(pick("dims", "256,512,1024", "256,512"), "dims");
    const int64_t dense_max_n =
        halo::positive_integers(pick("dense-max-n", "1000000000", "8192"), "dense-max-n").front();
    const int64_t check_full_max_n =
        halo::positive_integers(
            pick("check-full-max-n", std::to_string(dense_max_n), std::to_string(dense_max_n)),
            "check-full-max-n")
            .front();
    const int64_t check_rows =
        halo::positive_integers(args.str("check-rows"), "check-rows").front();
    std::vector<torch::ScalarType> dtypes;
    for (const auto& t : halo::split_list(pick("dtypes", "fp32,bf16", "fp32"))) {
      HALO_CHECK(t == "fp32" || t == "bf16", "--dtypes takes fp32 and/or bf16, got '", t, "'");
      dtypes.push_back(t == "fp32" ? torch::kFloat : torch::kBFloat16);
    }
    const std::string default_gpu_impls =
        halo::loss::tiled_cuda_available() ? "tiled,kernel,dense" : "tiled,dense";
    std::vector<LossImplementation> impls;
    for (const auto& name : halo::split_list(pick("impls", default_gpu_impls, "tiled,dense"))) {
      impls.push_back(halo::loss::parse_loss_implementation(name, "--impls"));
    }
    const int warmup = static_cast<int>(args.integer("warmup"));
    const int repeats = static_cast<int>(args.integer("repeats"));
    HALO_CHECK(repeats >= 1 && warmup >= 0, "--repeats must be >= 1 and --warmup >= 0");
    const double max_case_s = std::stod(args.str("max-case-s"));
    const double skip_projected_s = std::stod(args.str("skip-projected-s"));
    if (args.integer("threads") > 0) {
      torch::set_num_threads(static_cast<int>(args.integer("threads")));
    } else {
      halo::configure_cpu_threads();
    }

    std::printf(
        "bench_kernel: device = %s, threads = %d, LibTorch %s, median of %d runs after %d "
        "warm-up, FLOPs = 12 N^2 D\n"
        "check: against dense fp32 (whole batch up to N = %lld, else 3 blocks of %lld rows); "
        "largest relative error of the loss and each gradient (L2), tolerance 1e-4 fp32, "
        "2e-2 bf16\n",
        device.str().c_str(), torch::get_num_threads(), TORCH_VERSION, repeats, warmup,
        static_cast<long long>(check_full_max_n), static_cast<long long>(check_rows));
    std::printf("%-6s %-5s %8s %6s %14s %16s %9s %10s  %s\n", "impl", "dtype", "N", "D",
                "fwd+bwd (ms)", "peak mem (MiB)", "TFLOP/s", "check err", "note");
    int failures = 0;
    for (const auto dtype : dtypes) {
      const char* type = dtype == torch::kFloat ? "fp32" : "bf16";
      const double tolerance = dtype == torch::kFloat ? 1e-4 : 2e-2;
      for (const int64_t D : dims) {
        std::map<LossImplementation, std::pair<int64_t, double>> last;  // impl -> (N, ms)
        for (const int64_t N : sizes) {
          auto skip = [&](const char* name, const std::string& why) {
            std::printf("%-6s %-5s %8lld %6lld %14s %16s %9s %10s  %s\n", name, type,
                        static_cast<long long>(N), static_cast<long long>(D), "-", "-", "-", "-",
                        why.c_str());
          };
          const Inputs in = make_inputs(N, D, dtype, device);
          std::optional<Reference> ref;
          for (const auto impl : impls) {
            const std::string name_text = halo::loss::loss_implementation_name(impl);
            const char* name = name_text.c_str();
            if (impl == LossImplementation::kDense && N > dense_max_n) {
              skip(name, "skipped (--dense-max-n)");
              continue;
            }
            if (skip_projected_s > 0 && last.count(impl)) {
              const auto [n0, ms0] = last.at(impl);
              const double projected_s = ms0 * 1e-3 * std::pow(static_cast<double>(N) / n0, 2.0);
              if (projected_s > skip_projected_s) {
                char why[96];
                std::snprintf(why, sizeof why, "skipped (projected %.0f s > --skip-projected-s)",
                              projected_s);
                skip(name, why);
                continue;
              }
            }
            if (!ref) ref = make_reference(in, D, check_full_max_n, check_rows);
            const Result r = run_case({N, D, dtype, impl, args.integer("tile")}, in, *ref,
                                      tolerance, device, warmup, repeats, max_case_s);
            if (r.check_failed) {
              ++failures;
              char why[160];
              std::snprintf(why, sizeof why, "CHECK FAILED against dense (%s): error %.3g > %.0e",
                            ref->describe().c_str(), r.check_error, tolerance);
              std::printf("%-6s %-5s %8lld %6lld %14s %16s %9s %10.2e  %s\n", name, type,
                          static_cast<long long>(N), static_cast<long long>(D), "-", "-", "-",
                          r.check_error, why);
              continue;
            }
            if (!r.ok) {
              skip(name, r.note);
              continue;
            }
            last[impl] = {N, r.median_ms};
            const double flops = 12.0 * static_cast<double>(N) * static_cast<double>(N) * D;
            const std::string note =
                (ref->full ? "checked: whole batch" : "checked: " + ref->describe()) +
                (r.note.empty() ? "" : "; " + r.note);
            std::printf("%-6s %-5s %8lld %6lld %14.2f %16.1f %9.3f %10.2e  %s\n", name, type,
                        static_cast<long long>(N), static_cast<long long>(D), r.median_ms,
                        r.peak_mib, flops / (r.median_ms * 1e-3) / 1e12, r.check_error,
                        note.c_str());
          }
        }
      }
    }
    if (failures > 0) {
      std::fprintf(stderr, "bench_kernel: %d case(s) failed the check against dense\n", failures);
      return 1;
    }
    return 0;
  } catch (const halo::Error& e) {
    std::cerr << "bench_kernel: error: " << e.message() << "\n";
  } catch (const std::exception& e) {
    std::cerr << "bench_kernel: error: " << e.what() << "\n";
  }
  return 1;
}
