// Small-K convolution kernels, avx2 build (flags from the file name).
#define FASTDL_SMALLK_NS avx2
#include "cpu/conv2d_smallk_impl.h"
