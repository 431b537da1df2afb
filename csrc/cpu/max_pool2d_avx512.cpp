// Max-pooling kernels, avx512 build (flags from the file name).
#define FASTDL_POOL_NS avx512
#include "cpu/max_pool2d_impl.h"
