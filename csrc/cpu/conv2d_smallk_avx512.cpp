// Small-K convolution kernels, avx512 build (flags from the file name).
#define FASTDL_SMALLK_NS avx512
#include "cpu/conv2d_smallk_impl.h"
