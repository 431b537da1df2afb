// A CPU stand-in for the parts of the CUDA runtime fastdl's kernels use, so the
// kernels can be run (slowly) on a machine without a GPU: every CUDA thread is
// a std::thread, blocks run one after another, __syncthreads is a std::barrier
// and warp shuffles go through a per-warp exchange buffer. Launches
// `k<<<grid, block, smem, stream>>>(args)` are rewritten by build_emu.py into
// `emu_launch(grid, block, smem, stream, k, args)`. Device memory is host memory.
// Not for production; a test harness only.
#pragma once
#include <barrier>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstdint>
#include <cstring>
#include <memory>
#include <thread>
#include <tuple>
#include <vector>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __shared__ static
#define __align__(n) __attribute__((aligned(n)))

// Invariants the GPU would enforce by faulting (misaligned vector loads, say).
#define FASTDL_DEVICE_ASSERT(cond)                                                   \
  do {                                                                               \
    if (!(cond)) {                                                                   \
      std::fprintf(stderr, "emulated device assertion failed: %s (%s:%d)\n", #cond,  \
                   __FILE__, __LINE__);                                              \
      std::abort();                                                                  \
    }                                                                                \
  } while (0)

struct dim3 {
  unsigned x, y, z;
  dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};
struct uint3 { unsigned x, y, z; };
struct alignas(16) float4 { float x, y, z, w; };
struct alignas(16) double2 { double x, y; };

inline thread_local uint3 threadIdx, blockIdx;
inline thread_local dim3 blockDim, gridDim;

struct EmuWarp {
  explicit EmuWarp(int n) : bar(n) {}
  std::barrier<> bar;
  alignas(16) unsigned char slot[32][16];
};
inline thread_local std::barrier<>* emu_block_barrier = nullptr;
inline thread_local EmuWarp* emu_warp = nullptr;
inline thread_local int emu_lane = 0;

inline void __syncthreads() { emu_block_barrier->arrive_and_wait(); }

template <typename T>
T __shfl_xor_sync(unsigned, T v, int lane_mask) {
  std::memcpy(emu_warp->slot[emu_lane], &v, sizeof(T));
  emu_warp->bar.arrive_and_wait();
  T r;
  std::memcpy(&r, emu_warp->slot[emu_lane ^ lane_mask], sizeof(T));
  emu_warp->bar.arrive_and_wait();
  return r;
}

template <typename... KArgs, typename... Args>
void emu_launch(dim3 grid, dim3 block, size_t, void*, void (*kernel)(KArgs...), Args&&... args) {
  std::tuple<KArgs...> targs(static_cast<KArgs>(args)...);
  const int nt = int(block.x * block.y * block.z);
  // The launch limits of the hardware.
  FASTDL_DEVICE_ASSERT(nt >= 1 && nt <= 1024 && block.z <= 64);
  FASTDL_DEVICE_ASSERT(grid.x >= 1 && grid.x <= 0x7fffffffu && grid.y >= 1 && grid.y <= 65535 &&
                       grid.z >= 1 && grid.z <= 65535);
  for (unsigned bz = 0; bz < grid.z; ++bz)
    for (unsigned by = 0; by < grid.y; ++by)
      for (unsigned bx = 0; bx < grid.x; ++bx) {
        std::barrier<> bar(nt);
        std::vector<std::unique_ptr<EmuWarp>> warps;
        for (int w = 0; w < nt; w += 32) warps.emplace_back(new EmuWarp(nt - w < 32 ? nt - w : 32));
        std::vector<std::thread> ts;
        ts.reserve(nt);
        for (int t = 0; t < nt; ++t)
          ts.emplace_back([&, t] {
            threadIdx = {unsigned(t) % block.x, (unsigned(t) / block.x) % block.y,
                         unsigned(t) / (block.x * block.y)};
            blockIdx = {bx, by, bz};
            blockDim = block;
            gridDim = grid;
            emu_block_barrier = &bar;
            emu_warp = warps[t / 32].get();
            emu_lane = t % 32;
            std::apply(kernel, targs);
          });
        for (auto& th : ts) th.join();
      }
}

// ---------------------------------------------------------------- runtime API
typedef int cudaError_t;
enum : int { cudaSuccess = 0, cudaErrorInvalidValue = 1, cudaErrorNoDevice = 100 };
typedef struct CUstream_st* cudaStream_t;
enum cudaDeviceAttr { cudaDevAttrMultiProcessorCount = 16, cudaDevAttrComputeCapabilityMajor = 75 };
enum cudaMemcpyKind { cudaMemcpyDeviceToDevice = 3 };
#define CUDART_VERSION 13000

inline cudaError_t cudaGetLastError() { return cudaSuccess; }
inline cudaError_t cudaGetDevice(int* d) { *d = 0; return cudaSuccess; }
inline cudaError_t cudaGetDeviceCount(int* n) {
  const char* v = std::getenv("CUDA_VISIBLE_DEVICES");
  *n = (v && !*v) ? 0 : 1;  // CUDA_VISIBLE_DEVICES="" hides every device
  return *n ? cudaSuccess : cudaErrorNoDevice;
}
// Compute capability 7.x unless FASTDL_EMU_CC_MAJOR says otherwise: with 8 the
// TF32 path is chosen, and runs its FP32 fallback (wmma itself is not emulated).
// 4 multiprocessors, so that small products already take the split-K path.
inline cudaError_t cudaDeviceGetAttribute(int* v, cudaDeviceAttr attr, int) {
  if (attr == cudaDevAttrMultiProcessorCount) {
    *v = 4;
    return cudaSuccess;
  }
  const char* e = std::getenv("FASTDL_EMU_CC_MAJOR");
  *v = e && *e ? std::atoi(e) : 7;
  return cudaSuccess;
}
inline cudaError_t cudaMemsetAsync(void* p, int v, size_t n, cudaStream_t) {
  std::memset(p, v, n);
  return cudaSuccess;
}
inline cudaError_t cudaMemcpyAsync(void* d, const void* s, size_t n, cudaMemcpyKind, cudaStream_t) {
  std::memmove(d, s, n);
  return cudaSuccess;
}
inline const char* cudaGetErrorName(cudaError_t) { return "cudaErrorEmulated"; }
inline const char* cudaGetErrorString(cudaError_t) { return "error in the CPU emulation"; }
