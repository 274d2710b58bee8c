// The batch-level HALO loss for image-text training and the pair abstention score.
// Image -> text: each image row is a query, the text columns are its classes (true class:
// its own caption), plus the origin sink with fixed logit b; text -> image likewise. Loss =
// mean of the two cross-entropies + the radial term on r^2 = ||x_i - t_i||^2 / D.
#pragma once
#include <string>

#include <torch/types.h>

#include "loss/loss_config.h"
#include "loss/pair_batch.h"

namespace halo::loss {

// How the two cross-entropies are computed. dense: the n x M shifted distance matrix through
// autograd (the reference). tiled: halo_tiled.h, memory O((n + M) D), ATen operations on tiles
// on any device (on CUDA, cuBLAS does the tiles' matrix products). kernel: the same algorithm in
// the hand-written CUDA kernels (halo_tiled_*.cu; CUDA tensors and a build with the kernels
// only). auto: tiled when the dense matrices would take more than kAutoDenseBudgetBytes
// (dense_loss_bytes), else dense; never the kernels, which are chosen by name only until a GPU
// run shows them correct and faster (docs/kernel.md).
enum class LossImplementation { kDense, kTiled, kKernel, kAuto };
constexpr int64_t kAutoDenseBudgetBytes = int64_t{512} << 20;

// Estimated peak memory of one forward and backward of a loss over n rows and M columns, in
// bytes (fp32). Dense (any of the three losses): about 7 n x M matrices, as measured by
// bench_kernel (HALO: 1,796 MiB at n = M = 8,192; InfoNCE and SigLIP hold 6 or 7). Tiled (HALO):
// about 4 tiles of tile_size^2 and 2 (n + M) x D, linear in the batch (24 MiB at 8,192, D 64).
int64_t dense_loss_bytes(int64_t n, int64_t m);
// What loss.implementation `name` runs for n rows and M columns: dense, tiled or kernel (auto
// resolved by the budget above).
LossImplementation resolve_loss_implementation(const std::string& name, int64_t n, int64_t m);
int64_t tiled_loss_bytes(int64_t n, int64_t m, int64_t dim, int64_t tile_size);
// "dense" | "tiled" | "kernel" | "auto"; anything else throws halo::Error naming `what`.
LossImplementation parse_loss_implementation(const std::string& name, const std::string& what);
// The name parse_loss_implementation() reads (for the loss.implementation option).
std::string loss_implementation_name(LossImplementation implementation);

struct HaloClipParts {
  torch::Tensor total, ce_image_to_text, ce_text_to_image, radial;  // means over the rows
};

// Loss of the batch's rows against its columns (options: loss_config.h; validated on entry).
// Bootstrapping onto the sink, beta = sink_bootstrap in [0, 1) with sink_bootstrap_from: model
// (dense only; 0 is the reference): with a_i the detached two-way abstain probability of row
// i's own pair, m_i = beta * a_i of the row's target mass moves to the sink and the pair's radial
// term is weighted by 1 - m_i, so a pair the model rejects is no longer pulled together
// (docs/loss.md). When the batch carries a sink_share (set by the trainer from the pairs'
// history), m_i is that share instead. Every part is a mean over the n rows, so R row
// blocks of sizes n_k combine as sum_k (n_k / N) * part_k into the full-batch value (gradients
// too). gamma_raw has one element; b is the abstain logit (abstain_bias()).
HaloClipParts halo_clip_loss(const PairBatch& batch, const torch::Tensor& gamma_raw, double b,
                             const HaloClipOptions& options);

// Abstention probability of each aligned pair, independent of the rest of the batch:
// 0.5 * (sigmoid(b - S_i2t) + sigmoid(b - S_t2i)) with S the pair's shifted logit in each
// direction. Near 0: the model accepts the pair; near 1: it rejects it. Returns N values (fp32
// or fp64).
torch::Tensor pair_abstain_score(const torch::Tensor& image, const torch::Tensor& text,
                                 const torch::Tensor& gamma_raw, double b);

// The log-odds of pair_abstain_score, log(p / (1 - p)), in float64 and computed in log space
// (log-sigmoids combined by logaddexp), so it keeps ordering pairs where p rounds to 1.0 (or
// 0.0): it saturates only where the logits themselves overflow. Returns N float64 values.
torch::Tensor pair_abstain_log_odds(const torch::Tensor& image, const torch::Tensor& text,
                                    const torch::Tensor& gamma_raw, double b);

}  // namespace halo::loss
