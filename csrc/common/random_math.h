// Counter-based random numbers: the value for element i depends only on
// (seed, i), so a dropout mask is the same whatever the thread count or device.
#pragma once
#include <cstdint>

#include "common/hd.h"

namespace fastdl {

// SplitMix64's finaliser (used to spread a seed): a bijective 64-bit mixer with good avalanche.
FASTDL_HD uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

// A 32-bit mixer ("lowbias32": two multiply-xorshift rounds); 32-bit multiplies
// vectorise on every x86 level, unlike 64-bit ones.
FASTDL_HD uint32_t mix32(uint32_t h) {
  h ^= h >> 16;
  h *= 0x7FEB352DU;
  h ^= h >> 15;
  h *= 0x846CA68BU;
  h ^= h >> 16;
  return h;
}

// Uniform in [0, 1) with 24 random bits, from (seed, index): two keyed rounds of
// mix32 over the low and high halves of the index.
FASTDL_HD float uniform01(uint64_t seed, uint64_t i) {
  uint32_t h = mix32(uint32_t(i) ^ uint32_t(seed));
  h = mix32(h ^ uint32_t(i >> 32) ^ uint32_t(seed >> 32));
  return float(h >> 8) * (1.0f / 16777216.0f);
}

}  // namespace fastdl
