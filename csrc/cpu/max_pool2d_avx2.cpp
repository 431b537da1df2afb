// Max-pooling kernels, avx2 build (flags from the file name).
#define FASTDL_POOL_NS avx2
#include "cpu/max_pool2d_impl.h"
