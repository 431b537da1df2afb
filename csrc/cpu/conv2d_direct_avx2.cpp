// Direct convolution kernels, avx2 build (flags from the file name); register
// blocks sized so that accumulators + operands fit 16 AVX2 registers.
#define FASTDL_DIRECT_NS avx2
#define FASTDL_DIRECT_PB 2
#define FASTDL_DIRECT_KB 2
#include "cpu/conv2d_direct_impl.h"
