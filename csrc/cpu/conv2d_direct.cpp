// Direct convolution kernels, generic build (flags from the file name); register
// blocks sized so that accumulators + operands fit 16 SSE registers.
#define FASTDL_DIRECT_NS generic
#define FASTDL_DIRECT_PB 1
#define FASTDL_DIRECT_KB 1
#include "cpu/conv2d_direct_impl.h"
