// Direct convolution kernels, avx512 build (flags from the file name); register
// blocks sized so that accumulators + operands fit 32 AVX-512 registers.
#define FASTDL_DIRECT_NS avx512
#define FASTDL_DIRECT_PB 8
#define FASTDL_DIRECT_KB 8
#include "cpu/conv2d_direct_impl.h"
