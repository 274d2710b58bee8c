// Small subcommands (info, abstain-bias) and the table of all subcommands.
#include "cli/commands.h"

#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>

#include <torch/torch.h>

#include "common/allocator.h"
#include "common/args.h"
#include "common/error.h"
#include "common/torch_compat.h"
#include "dist/process_group.h"
#include "loss/contrastive_loss.h"
#include "loss/halo_terms.h"
#include "loss/halo_tiled.h"

namespace halo::cli {

namespace {

// Whether /proc/cpuinfo lists `flag` among the CPU's flags (false where there is no such file).
bool cpu_has_flag(const std::string& flag) {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("flags", 0) != 0) continue;
    std::istringstream words(line.substr(line.find(':') + 1));
    for (std::string word; words >> word;) {
      if (word == flag) return true;
    }
    return false;
  }
  return false;
}

int run_info(const std::vector<std::string>& argv) {
  ArgParser args("info", "Print the build's versions and what hardware LibTorch sees.");
  if (!args.parse(argv)) return 0;
  std::cout << "halo-clip " << HALO_VERSION << "\n"
            << "LibTorch " << TORCH_VERSION << "\n"
            << "CPU threads: " << torch::get_num_threads() << "\n"
            << "host allocator: " << halo::applied_allocator_choice().reason << "\n"
            << "CUDA available: " << (torch::cuda::is_available() ? "yes" : "no");
  if (torch::cuda::is_available()) std::cout << " (" << torch::cuda::device_count() << " devices)";
  std::cout << "\nmulti-process backends:";
#ifdef USE_C10D_GLOO
  std::cout << " gloo";
#endif
#ifdef USE_C10D_NCCL
  std::cout << " nccl";
#endif
  std::cout << "\nrendezvous store: " << dist::rendezvous_store_backend()
            << (dist::store_binds_master_addr() ? ", listens on MASTER_ADDR only"
                                                : ", listens on every interface (LibTorch < 2.2)")
            << "\nbf16 autocast: " << (torch::cuda::is_available() ? "cuda, " : "")
            << (cpu_bf16_autocast_available()
                    ? "cpu"
                    : "not on the cpu (this LibTorch's CPU autocast fails)")
            << (cpu_has_flag("avx512_bf16") ? "; this CPU has avx512_bf16 (native bf16 products)"
                                            : "; this CPU has no avx512_bf16 (bf16 is emulated)")
            << "\nattention: "
            << (compat::fused_attention_available()
                    ? "fused (scaled_dot_product_attention)"
                    : "explicit matrix products (LibTorch < 2.0 has no fused attention)")
            << "\nlosses:";
  for (const auto& name : loss::contrastive_loss_names()) std::cout << " " << name;
  std::cout << "\nHALO loss implementations: dense, tiled (ATen tiles, any device)"
            << (loss::tiled_cuda_available() ? ", kernel (CUDA kernels)" : "") << "\n";
  return 0;
}

int run_abstain_bias(const std::vector<std::string>& argv) {
  ArgParser args("abstain-bias",
                 "Print HALO's fixed abstain logit b and the starting temperature for an\n"
                 "embedding size, a number of candidates (the global batch size) and a label\n"
                 "smoothing. A pair is rejected when its shifted logit falls below b.");
  args.required("dim", "D", "embedding size")
      .option("candidates", "K", "number of candidates per query (global batch size)", "256")
      .option("label-smoothing", "EPS", "label smoothing / distillation temperature", "0.1");
  if (!args.parse(argv)) return 0;
  const int64_t D = args.integer("dim"), K = args.integer("candidates");
  const double eps = args.real("label-smoothing");
  const double b = loss::abstain_bias(D, K, eps);
  const double raw = loss::initial_gamma_raw(D);
  std::printf("D = %lld, K = %lld, label smoothing = %g\n", static_cast<long long>(D),
              static_cast<long long>(K), eps);
  std::printf("abstain bias b = %.6f\ninitial gamma = %.6f (gamma_raw = %.6f)\n", b,
              torch::softplus(torch::tensor(raw)).item<double>(), raw);
  return 0;
}

}  // namespace

const std::vector<Command>& commands() {
  static const std::vector<Command> table{
      {"info", "print versions and the hardware LibTorch sees", run_info},
      {"abstain-bias", "print HALO's abstain logit b for D, K and label smoothing",
       run_abstain_bias},

      {"train", "train image and text encoders from a YAML configuration", run_train},
      {"eval", "zero-shot retrieval, classification and mismatch detection of a checkpoint",
       run_eval},
      {"filter", "split a manifest into kept and rejected pairs by abstention score", run_filter},
      {"report", "write a self-contained HTML report of a run folder", run_report},
      {"plot", "write one SVG chart (curves, histogram, bars) from run files", run_plot},
      {"tokenizer", "train a SentencePiece tokenizer, or encode text with one", run_tokenizer},
      {"launch", "start worker processes for multi-process training (like torchrun)", run_launch},
      {"prepare", "turn a fetched data set into a manifest (optionally with mismatched pairs)",
       run_prepare},
      {"classify",
       "train an image classifier (cross-entropy or HALO); accuracy, ECE, OOD detection",
       run_classify},
  };
  return table;
}

int run_action(const std::vector<std::string>& argv, const std::string& usage,
               const std::vector<Action>& actions, const std::string& unknown) {
  if (argv.empty() || argv[0] == "--help" || argv[0] == "-h") {
    std::cout << usage;
    return argv.empty() ? 2 : 0;
  }
  const std::vector<std::string> rest(argv.begin() + 1, argv.end());
  std::string names;
  for (size_t i = 0; i < actions.size(); ++i) {
    if (actions[i].name == argv[0]) return actions[i].run(rest);
    names += (i == 0 ? "" : i + 1 == actions.size() ? " or " : ", ") + actions[i].name;
  }
  HALO_FAIL(unknown, " '", argv[0], "' (", names, ")");
}

}  // namespace halo::cli
