// What a contrastive loss sees in one process: this process's aligned pairs (the rows, i.e.
// its queries) and every candidate of the global batch (the columns). Row i's true column is
// row_offset + i. In one process rows == columns and row_offset == 0; with R processes each
// passes its own rows, the gathered columns and offset = rank * local batch (docs/loss.md).
#pragma once
#include <cstdint>

#include <torch/types.h>

namespace halo::loss {

struct PairBatch {
  torch::Tensor image_rows, text_rows;  // n x D: this process's pairs
  torch::Tensor image_cols, text_cols;  // M x D: all candidates, rows included at row_offset
  int64_t row_offset = 0;
  // Optional, per row (n) in [0, 1): the share of the row's target taken off its pair, set by
  // the trainer from the pairs' training history. HALO puts it on the sink (halo_clip_loss.h),
  // InfoNCE, which has none, weights the row's cross-entropy by 1 - share; SigLIP refuses it.
  torch::Tensor sink_share;
  // Optional, per row (n) bool: the rows whose partner is removed from their candidates in both
  // directions, with the sink as their whole target (loss.sink_partner_drop, partner_drop.h).
  // HALO only; InfoNCE and SigLIP refuse it.
  torch::Tensor partner_dropped;

  // A batch that is its own set of candidates (single process).
  static PairBatch local(const torch::Tensor& image, const torch::Tensor& text) {
    return PairBatch{image, text, image, text, 0, {}, {}};
  }
  int64_t rows() const { return image_rows.size(0); }
  int64_t cols() const { return image_cols.size(0); }
};

// Throws halo::Error naming the problem unless the batch is well formed: 2-D floating tensors,
// same D >= 2 everywhere, n > 0 rows matching across modalities, M > 0 columns matching, and
// row_offset + n <= M, a sink_share, if any, of n values, and a partner_dropped, if any, of n
// booleans. With check_finite also rejects
// NaN or infinite embeddings and shares outside [0, 1) (these value checks wait for the device).
void check_pair_batch(const PairBatch& batch, bool check_finite);

// The same batch with fp16/bf16 tensors converted to fp32 (the losses compute in fp32 or fp64).
PairBatch to_compute_dtype(const PairBatch& batch);

}  // namespace halo::loss
