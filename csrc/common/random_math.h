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

// The key for elements [hi * 2^32, (hi + 1) * 2^32): seed and the high half of
// the index folded into 32 bits once, so each element costs a single mix32.
FASTDL_HD uint32_t chunk_key(uint64_t seed, uint32_t hi) {
  return mix32(uint32_t(seed) ^ mix32(uint32_t(seed >> 32) ^ mix32(hi + 0x9E3779B9U)));
}

// 24 random bits for element (hi * 2^32 + lo) under chunk_key(seed, hi).
FASTDL_HD uint32_t random_bits24(uint32_t key, uint32_t lo) {
  return mix32(lo ^ key) >> 8;
}

// Uniform in [0, 1) with 24 random bits, from (seed, index).
FASTDL_HD float uniform01(uint64_t seed, uint64_t i) {
  uint32_t bits = random_bits24(chunk_key(seed, uint32_t(i >> 32)), uint32_t(i));
  return float(int32_t(bits)) * (1.0f / 16777216.0f);
}

// uniform01(seed, i) >= rate  <=>  random_bits24(seed, i) >= keep_threshold(rate):
// an integer compare, so mask loops need no int-to-float conversion.
FASTDL_HD int32_t keep_threshold(double rate) {
  double t = rate * 16777216.0;
  int32_t k = int32_t(t);
  return double(k) < t ? k + 1 : k;  // ceil
}

}  // namespace fastdl
