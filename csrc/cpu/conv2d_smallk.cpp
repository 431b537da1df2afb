// Small-K convolution kernels, generic build (flags from the file name).
#define FASTDL_SMALLK_NS generic
#include "cpu/conv2d_smallk_impl.h"
