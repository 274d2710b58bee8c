// SplitMix64: the integer hash behind seeded choices in data/ (the loader's order and draws, the
// subsets of prepare), so that a seed picks the same items on any platform and thread count.
#pragma once
#include <cstdint>

namespace halo {

inline uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// A seed for one draw from a run's seed and the draw's coordinates (epoch, row, ...): each
// coordinate is hashed in turn, so (seed, epoch, row) and (seed, row, epoch) differ.
inline uint64_t mix_seed(uint64_t seed, uint64_t a, uint64_t b = 0) {
  return splitmix64(splitmix64(splitmix64(seed) ^ a) ^ b);
}

}  // namespace halo
