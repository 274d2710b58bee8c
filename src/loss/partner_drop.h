// Partner dropout (loss.sink_partner_drop, HALO only): in each step a seeded share of the global
// batch's pairs lose their partner from the candidates, in both directions, and the sink becomes
// their target. The model learns that "my partner is not here" means the sink, not the closest
// impostor: the zero-shot situation of an image whose class is not among the prompts
// (docs/loss.md, "Partner dropout").
#pragma once
#include <cstdint>

#include <torch/types.h>

namespace halo::loss {

// Which of the rows [first_row, first_row + rows) of the global batch lose their partner in
// `step`: row g is dropped when a uniform draw hashed from (seed, step, g) falls below `rate`.
// A pure function of its arguments: the same rows whatever the number of processes, and again
// after a resume. Returns `rows` booleans on `device`.
torch::Tensor partner_dropped_rows(uint64_t seed, int64_t step, int64_t first_row, int64_t rows,
                                   double rate, const torch::Device& device);

}  // namespace halo::loss
