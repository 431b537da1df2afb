#pragma once
#if defined(__CUDACC__)
#define FASTDL_HD __host__ __device__ __forceinline__
#else
#define FASTDL_HD inline
#endif
