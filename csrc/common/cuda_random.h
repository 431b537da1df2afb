// Counter-based random numbers for dropout, host/device: the value for element i
// depends only on (seed, i), so CPU and GPU, any thread count and any launch
// shape give the same mask bit for bit.
//
//   bits(seed, i) = splitmix64(seed ^ i)
//   u(seed, i)    = (bits >> 40) * 2^-24            a multiple of 2^-24 in [0, 1)
//   keep          = u >= rate                       (Keras: drop with probability rate)
//   y             = keep ? x / (1 - rate) : 0
#pragma once
#include <stdint.h>

#include "common/hd.h"

namespace fastdl::hd {

// One step of Steele, Lea and Flood's SplitMix64 on the state x: add the golden
// gamma, then the two xor-shift-multiply rounds of its finaliser.
FASTDL_HD uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

FASTDL_HD double uniform01(uint64_t seed, uint64_t i) {
  return double(splitmix64(seed ^ i) >> 40) * (1.0 / 16777216.0);
}

FASTDL_HD bool dropout_keep(uint64_t seed, uint64_t i, double rate) {
  return uniform01(seed, i) >= rate;
}

}  // namespace fastdl::hd
