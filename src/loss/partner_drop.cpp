// The seeded choice of the rows that lose their partner (see partner_drop.h).
#include "loss/partner_drop.h"

#include <vector>

#include <torch/torch.h>

#include "common/error.h"
#include "common/splitmix.h"

namespace halo::loss {

torch::Tensor partner_dropped_rows(uint64_t seed, int64_t step, int64_t first_row, int64_t rows,
                                   double rate, const torch::Device& device) {
  HALO_CHECK(rate >= 0 && rate <= 1, "the partner dropout rate must be in [0, 1], got ", rate);
  HALO_CHECK(first_row >= 0 && rows >= 0, "internal: rows ", first_row, " + ", rows);
  std::vector<uint8_t> dropped(static_cast<size_t>(rows));
  const uint64_t step_seed = mix_seed(seed ^ 0x5a17d20bULL, static_cast<uint64_t>(step));
  for (int64_t i = 0; i < rows; ++i) {
    // The top 53 bits as a uniform double in [0, 1).
    const uint64_t h = splitmix64(step_seed ^ static_cast<uint64_t>(first_row + i));
    const double u = static_cast<double>(h >> 11) * (1.0 / 9007199254740992.0);
    dropped[static_cast<size_t>(i)] = u < rate ? 1 : 0;
  }
  return torch::tensor(dropped, torch::kUInt8).to(torch::kBool).to(device);
}

}  // namespace halo::loss
