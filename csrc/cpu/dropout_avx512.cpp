// The dropout mask loop compiled for AVX-512 (see dropout_loops.h).
#include "cpu/dropout_loops.h"

FASTDL_DEFINE_DROPOUT_ENTRY_POINT(avx512)
