// Counter-based random numbers: the value for element i depends only on
// (seed, i), so a dropout mask is the same whatever the thread count or device.
#pragma once
#include <cstdint>

#include "common/hd.h"

namespace fastdl {

// SplitMix64's finaliser: a bijective 64-bit mixer with good avalanche.
FASTDL_HD uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

// Uniform in [0, 1) with 24 random bits, from (seed, index).
FASTDL_HD float uniform01(uint64_t seed, uint64_t i) {
  uint64_t r = mix64(seed ^ mix64(i + 0x9E3779B97F4A7C15ULL));
  return float(r >> 40) * (1.0f / 16777216.0f);
}

}  // namespace fastdl
