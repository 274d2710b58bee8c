// Collectives with gradient, for the exact global-batch loss. All-gather: forward concatenates
// every rank's embeddings (the loss's columns); backward sums the column gradients of all ranks
// and returns to each rank the slice of its own rows, as open_clip's gather_with_grad does. And
// the global batch mean that centring subtracts.
#pragma once
#include <torch/types.h>

#include "dist/process_group.h"
#include "loss/pair_batch.h"

namespace halo::dist {

// R x n rows of every rank's `local` (n x D, the same n on every rank), in rank order. The
// gradient of `local` is the sum over ranks of the gradients of its slot.
torch::Tensor gather_with_grad(const torch::Tensor& local, ProcessGroup& group);

// The mean of every rank's rows of `local` (n x D; n may differ between ranks), with gradient:
// forward sums the rows and the row counts over ranks; backward sums the gradients of every
// rank's mean, as for gather_with_grad. What centring subtracts with several processes, so that
// it centres the global batch. One process: local.mean(0). Every rank must call it in turn.
torch::Tensor global_batch_mean(const torch::Tensor& local, ProcessGroup& group);

// This rank's pairs as rows against every rank's pairs as columns, row_offset = rank * n: the
// loss of each rank, averaged over ranks, is the loss of the global batch (docs/loss.md), and
// so are the averaged gradients. In one process: PairBatch::local.
loss::PairBatch global_pair_batch(const torch::Tensor& image, const torch::Tensor& text,
                                  ProcessGroup& group);

}  // namespace halo::dist
