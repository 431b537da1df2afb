// The optimizer loops compiled for AVX-512 (see optimizers_loops.h).
#include "cpu/optimizers_loops.h"

FASTDL_DEFINE_OPT_ENTRY_POINTS(avx512)
