// GPU GEMM: a naive reference kernel, a tiled FP32/FP64 kernel and a TF32
// tensor-core kernel (sm_80+), all with the same epilogue. See gemm.h.
#include <mma.h>

#include "cuda/gemm/gemm.h"
#include "cuda/runtime/util.cuh"

namespace fastdl::cuda {
namespace {

// ------------------------------------------------------------ epilogue
// The one place where an accumulated dot product becomes an output element.
template <typename T>
__device__ __forceinline__ void store_output(T* c, int64_t rs_c, int64_t cs_c, int64_t i,
                                             int64_t j, T acc, T alpha, T beta, const T* bias,
                                             Activation act) {
  T* p = c + i * rs_c + j * cs_c;
  T v = alpha * acc;
  if (beta != T(0)) v += beta * *p;
  if (bias) v += bias[j];
  if (act == Activation::relu) v = v > T(0) ? v : T(0);
  *p = v;
}

// ------------------------------------------------------------ reference
template <typename T>
__global__ void gemm_ref_kernel(T* c, int64_t rs_c, int64_t cs_c, const T* a, int64_t rs_a,
                                int64_t cs_a, const T* b, int64_t rs_b, int64_t cs_b, int64_t m,
                                int64_t n, int64_t k, T alpha, T beta, const T* bias,
                                Activation act) {
  FASTDL_GRID_LOOP(idx, m * n) {
    int64_t i = idx / n, j = idx % n;
    T acc = T(0);
    for (int64_t p = 0; p < k; ++p) acc += a[i * rs_a + p * cs_a] * b[p * rs_b + j * cs_b];
    store_output(c, rs_c, cs_c, i, j, acc, alpha, beta, bias, act);
  }
}

// ------------------------------------------------------------ tiled kernel
// One block computes a BM x BN tile of C. Per step of BK along k it stages an
// A tile (stored transposed, As[kk][row]) and a B tile (Bs[kk][col]) in shared
// memory, then every thread accumulates a TM x TN sub-tile in registers.
//
// Thread layout (256 threads = 8 warps): the warps form a 2 x 4 grid over the
// block tile, each owning a (BM/2) x (BN/4) warp tile; inside a warp the 32
// lanes form an 8 x 4 grid, each owning TM x TN outputs. Lanes of a warp that
// share a row of lanes read the same As values (a shared-memory broadcast).
//
// Loading: an operand whose inner dimension is contiguous (stride 1, the other
// stride a multiple of the vector width, 16-byte aligned base) is read with
// 16-byte vector loads; everything else (transposed views with other strides,
// ragged edges) element by element. Out-of-range elements are loaded as zero.
constexpr int kWarpsM = 2, kWarpsN = 4, kLanesM = 8, kLanesN = 4;
constexpr int kTileThreads = kWarpsM * kWarpsN * 32;

template <typename T> struct Vec16;
template <> struct Vec16<float> { using type = float4; static constexpr int W = 4; };
template <> struct Vec16<double> { using type = double2; static constexpr int W = 2; };

template <typename T>
__device__ __forceinline__ void load_vec(T* dst, const T* src) {
  FASTDL_DEVICE_ASSERT((reinterpret_cast<uintptr_t>(src) & 15) == 0);
  typename Vec16<T>::type v = *reinterpret_cast<const typename Vec16<T>::type*>(src);
  const T* e = reinterpret_cast<const T*>(&v);
#pragma unroll
  for (int j = 0; j < Vec16<T>::W; ++j) dst[j] = e[j];
}

// Which way an operand tile is walked, decided once per launch.
struct OperandLayout {
  bool inner_contig;  // A: k is the contiguous dimension; B: n is
  bool vec;           // 16-byte loads along the contiguous dimension are allowed
};

template <typename T, int BM, int BN, int BK, int TM, int TN>
__global__ void __launch_bounds__(kTileThreads)
gemm_tiled_kernel(T* c, int64_t rs_c, int64_t cs_c, const T* a, int64_t rs_a, int64_t cs_a,
                  const T* b, int64_t rs_b, int64_t cs_b, int64_t m, int64_t n, int64_t k,
                  T alpha, T beta, const T* bias, Activation act, OperandLayout la,
                  OperandLayout lb) {
  constexpr int W = Vec16<T>::W;
  static_assert(BM == kWarpsM * kLanesM * TM, "BM must match the thread layout");
  static_assert(BN == kWarpsN * kLanesN * TN, "BN must match the thread layout");
  static_assert(BK % W == 0 && BM % W == 0 && BN % W == 0, "tiles must hold whole vectors");

  __shared__ __align__(16) T As[BK][BM];
  __shared__ __align__(16) T Bs[BK][BN];

  const int tid = threadIdx.x;
  const int warp = tid / 32, lane = tid % 32;
  const int row0 = (warp / kWarpsN) * (BM / kWarpsM) + (lane / kLanesN) * TM;  // in the tile
  const int col0 = (warp % kWarpsN) * (BN / kWarpsN) + (lane % kLanesN) * TN;
  const int64_t bm0 = int64_t(blockIdx.x) * BM;  // tile origin in C
  const int64_t bn0 = int64_t(blockIdx.y) * BN;

  T acc[TM][TN];
#pragma unroll
  for (int i = 0; i < TM; ++i)
#pragma unroll
    for (int j = 0; j < TN; ++j) acc[i][j] = T(0);

  for (int64_t k0 = 0; k0 < k; k0 += BK) {
    // ---- stage A(bm0 : bm0+BM, k0 : k0+BK) into As[kk][row]
    for (int v = tid; v < BM * BK / W; v += kTileThreads) {
      T e[W];
      if (la.inner_contig) {  // runs of W along k
        int row = v / (BK / W), kk = (v % (BK / W)) * W;
        int64_t gi = bm0 + row, gk = k0 + kk;
        if (la.vec && gi < m && gk + W <= k) {
          load_vec(e, a + gi * rs_a + gk);
        } else {
#pragma unroll
          for (int j = 0; j < W; ++j)
            e[j] = (gi < m && gk + j < k) ? a[gi * rs_a + (gk + j) * cs_a] : T(0);
        }
#pragma unroll
        for (int j = 0; j < W; ++j) As[kk + j][row] = e[j];
      } else {  // runs of W along m
        int kk = v / (BM / W), row = (v % (BM / W)) * W;
        int64_t gi = bm0 + row, gk = k0 + kk;
        if (la.vec && gk < k && gi + W <= m) {
          load_vec(e, a + gi + gk * cs_a);
        } else {
#pragma unroll
          for (int j = 0; j < W; ++j)
            e[j] = (gi + j < m && gk < k) ? a[(gi + j) * rs_a + gk * cs_a] : T(0);
        }
#pragma unroll
        for (int j = 0; j < W; ++j) As[kk][row + j] = e[j];
      }
    }
    // ---- stage B(k0 : k0+BK, bn0 : bn0+BN) into Bs[kk][col]
    for (int v = tid; v < BK * BN / W; v += kTileThreads) {
      T e[W];
      if (lb.inner_contig) {  // runs of W along n
        int kk = v / (BN / W), col = (v % (BN / W)) * W;
        int64_t gk = k0 + kk, gj = bn0 + col;
        if (lb.vec && gk < k && gj + W <= n) {
          load_vec(e, b + gk * rs_b + gj);
        } else {
#pragma unroll
          for (int j = 0; j < W; ++j)
            e[j] = (gk < k && gj + j < n) ? b[gk * rs_b + (gj + j) * cs_b] : T(0);
        }
#pragma unroll
        for (int j = 0; j < W; ++j) Bs[kk][col + j] = e[j];
      } else {  // runs of W along k
        int col = v / (BK / W), kk = (v % (BK / W)) * W;
        int64_t gk = k0 + kk, gj = bn0 + col;
        if (lb.vec && gj < n && gk + W <= k) {
          load_vec(e, b + gk + gj * cs_b);
        } else {
#pragma unroll
          for (int j = 0; j < W; ++j)
            e[j] = (gk + j < k && gj < n) ? b[(gk + j) * rs_b + gj * cs_b] : T(0);
        }
#pragma unroll
        for (int j = 0; j < W; ++j) Bs[kk + j][col] = e[j];
      }
    }
    __syncthreads();

    // ---- TM x TN outer products, one per kk
#pragma unroll
    for (int kk = 0; kk < BK; ++kk) {
      T af[TM], bf[TN];
#pragma unroll
      for (int i = 0; i < TM; ++i) af[i] = As[kk][row0 + i];
#pragma unroll
      for (int j = 0; j < TN; ++j) bf[j] = Bs[kk][col0 + j];
#pragma unroll
      for (int i = 0; i < TM; ++i)
#pragma unroll
        for (int j = 0; j < TN; ++j) acc[i][j] += af[i] * bf[j];
    }
    __syncthreads();  // before the next tiles overwrite As, Bs
  }

#pragma unroll
  for (int i = 0; i < TM; ++i) {
    int64_t gi = bm0 + row0 + i;
    if (gi >= m) continue;
#pragma unroll
    for (int j = 0; j < TN; ++j) {
      int64_t gj = bn0 + col0 + j;
      if (gj < n) store_output(c, rs_c, cs_c, gi, gj, acc[i][j], alpha, beta, bias, act);
    }
  }
}

// ------------------------------------------------------------ TF32 tensor cores
// 64 x 64 block tile, 4 warps in a 2 x 2 grid, each warp 32 x 32 = 2 x 2 wmma
// fragments of 16 x 16 (k step 8). Tiles are staged in shared memory element
// by element (any strides), rounded to TF32 in the fragments, accumulated in
// FP32, and written back through shared memory so the epilogue can be applied
// with bounds checks.
constexpr int kTf32BM = 64, kTf32BN = 64, kTf32BK = 16, kTf32Threads = 128;
static_assert(kTf32BK % 8 == 0, "wmma tf32 fragments step k by 8");

__global__ void __launch_bounds__(kTf32Threads)
gemm_tf32_kernel(float* c, int64_t rs_c, int64_t cs_c, const float* a, int64_t rs_a,
                 int64_t cs_a, const float* b, int64_t rs_b, int64_t cs_b, int64_t m, int64_t n,
                 int64_t k, float alpha, float beta, const float* bias, Activation act) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  using namespace nvcuda;
  constexpr int kTf32LdA = kTf32BK + 8, kTf32LdB = kTf32BN + 8, kTf32LdC = kTf32BN + 8;
  // Row strides are multiples of 8 floats (32 bytes) and every fragment starts
  // at a multiple of 8 rows / 16 columns, as wmma's 256-bit alignment requires.
  __shared__ __align__(32) float As[kTf32BM][kTf32LdA];
  __shared__ __align__(32) float Bs[kTf32BK][kTf32LdB];
  __shared__ __align__(32) float Cs[kTf32BM][kTf32LdC];

  const int tid = threadIdx.x, warp = tid / 32;
  const int wm = (warp / 2) * 32, wn = (warp % 2) * 32;
  const int64_t bm0 = int64_t(blockIdx.x) * kTf32BM, bn0 = int64_t(blockIdx.y) * kTf32BN;

  wmma::fragment<wmma::accumulator, 16, 16, 8, float> acc[2][2];
#pragma unroll
  for (int i = 0; i < 2; ++i)
#pragma unroll
    for (int j = 0; j < 2; ++j) wmma::fill_fragment(acc[i][j], 0.0f);

  for (int64_t k0 = 0; k0 < k; k0 += kTf32BK) {
    for (int e = tid; e < kTf32BM * kTf32BK; e += kTf32Threads) {
      int r = e / kTf32BK, kk = e % kTf32BK;
      int64_t gi = bm0 + r, gk = k0 + kk;
      As[r][kk] = (gi < m && gk < k) ? a[gi * rs_a + gk * cs_a] : 0.0f;
    }
    for (int e = tid; e < kTf32BK * kTf32BN; e += kTf32Threads) {
      int kk = e / kTf32BN, col = e % kTf32BN;
      int64_t gk = k0 + kk, gj = bn0 + col;
      Bs[kk][col] = (gk < k && gj < n) ? b[gk * rs_b + gj * cs_b] : 0.0f;
    }
    __syncthreads();
#pragma unroll
    for (int ks = 0; ks < kTf32BK; ks += 8) {
      wmma::fragment<wmma::matrix_a, 16, 16, 8, wmma::precision::tf32, wmma::row_major> fa[2];
      wmma::fragment<wmma::matrix_b, 16, 16, 8, wmma::precision::tf32, wmma::row_major> fb[2];
#pragma unroll
      for (int i = 0; i < 2; ++i) {
        wmma::load_matrix_sync(fa[i], &As[wm + 16 * i][ks], kTf32LdA);
#pragma unroll
        for (int t = 0; t < fa[i].num_elements; ++t) fa[i].x[t] = wmma::__float_to_tf32(fa[i].x[t]);
      }
#pragma unroll
      for (int j = 0; j < 2; ++j) {
        wmma::load_matrix_sync(fb[j], &Bs[ks][wn + 16 * j], kTf32LdB);
#pragma unroll
        for (int t = 0; t < fb[j].num_elements; ++t) fb[j].x[t] = wmma::__float_to_tf32(fb[j].x[t]);
      }
#pragma unroll
      for (int i = 0; i < 2; ++i)
#pragma unroll
        for (int j = 0; j < 2; ++j) wmma::mma_sync(acc[i][j], fa[i], fb[j], acc[i][j]);
    }
    __syncthreads();
  }

#pragma unroll
  for (int i = 0; i < 2; ++i)
#pragma unroll
    for (int j = 0; j < 2; ++j)
      wmma::store_matrix_sync(&Cs[wm + 16 * i][wn + 16 * j], acc[i][j], kTf32LdC,
                              wmma::mem_row_major);
  __syncthreads();
  for (int e = tid; e < kTf32BM * kTf32BN; e += kTf32Threads) {
    int r = e / kTf32BN, col = e % kTf32BN;
    int64_t gi = bm0 + r, gj = bn0 + col;
    if (gi < m && gj < n) store_output(c, rs_c, cs_c, gi, gj, Cs[r][col], alpha, beta, bias, act);
  }
#else
  // Built for an architecture without TF32 tensor cores but run on one that has
  // them (PTX compiled for sm_7x, JIT-compiled on sm_8x+): a plain FP32 loop, so
  // the result is still right, only slow.
  const int64_t bm0 = int64_t(blockIdx.x) * kTf32BM, bn0 = int64_t(blockIdx.y) * kTf32BN;
  for (int e = threadIdx.x; e < kTf32BM * kTf32BN; e += kTf32Threads) {
    int64_t gi = bm0 + e / kTf32BN, gj = bn0 + e % kTf32BN;
    if (gi >= m || gj >= n) continue;
    float acc = 0.0f;
    for (int64_t p = 0; p < k; ++p) acc += a[gi * rs_a + p * cs_a] * b[p * rs_b + gj * cs_b];
    store_output(c, rs_c, cs_c, gi, gj, acc, alpha, beta, bias, act);
  }
#endif
}

// Compute capability major of the current device (cached per device).
int device_major() {
  static int cache[64];  // 0 = not asked yet
  int dev = 0;
  if (cudaGetDevice(&dev) != cudaSuccess || dev < 0 || dev >= 64) return 0;
  if (cache[dev] == 0) {
    int major = 0;
    if (cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev) != cudaSuccess)
      return 0;
    cache[dev] = major;
  }
  return cache[dev];
}

template <typename T>
bool aligned16(const T* p) {
  return (reinterpret_cast<uintptr_t>(p) & 15) == 0;
}

template <typename T, int BM, int BN, int BK, int TM, int TN>
void launch_tiled(T* c, int64_t rs_c, int64_t cs_c, const T* a, int64_t rs_a, int64_t cs_a,
                  const T* b, int64_t rs_b, int64_t cs_b, int64_t m, int64_t n, int64_t k,
                  T alpha, T beta, const GemmEpilogue<T>& ep, cudaStream_t stream) {
  constexpr int W = Vec16<T>::W;
  OperandLayout la, lb;
  la.inner_contig = cs_a == 1;
  la.vec = la.inner_contig ? (rs_a % W == 0 && aligned16(a))
                           : (rs_a == 1 && cs_a % W == 0 && aligned16(a));
  lb.inner_contig = cs_b == 1;
  lb.vec = lb.inner_contig ? (rs_b % W == 0 && aligned16(b))
                           : (rs_b == 1 && cs_b % W == 0 && aligned16(b));
  dim3 grid(unsigned((m + BM - 1) / BM), unsigned((n + BN - 1) / BN));
  gemm_tiled_kernel<T, BM, BN, BK, TM, TN><<<grid, kTileThreads, 0, stream>>>(
      c, rs_c, cs_c, a, rs_a, cs_a, b, rs_b, cs_b, m, n, k, alpha, beta, ep.bias, ep.act, la, lb);
}

template <typename T>
void launch_gemm(T* c, int64_t rs_c, int64_t cs_c, const T* a, int64_t rs_a, int64_t cs_a,
                 const T* b, int64_t rs_b, int64_t cs_b, int64_t m, int64_t n, int64_t k, T alpha,
                 T beta, const GemmEpilogue<T>& ep, bool tf32, cudaStream_t stream);

template <>
void launch_gemm<float>(float* c, int64_t rs_c, int64_t cs_c, const float* a, int64_t rs_a,
                        int64_t cs_a, const float* b, int64_t rs_b, int64_t cs_b, int64_t m,
                        int64_t n, int64_t k, float alpha, float beta,
                        const GemmEpilogue<float>& ep, bool tf32, cudaStream_t stream) {
  if (tf32 && device_major() >= 8) {
    dim3 grid(unsigned((m + kTf32BM - 1) / kTf32BM), unsigned((n + kTf32BN - 1) / kTf32BN));
    gemm_tf32_kernel<<<grid, kTf32Threads, 0, stream>>>(c, rs_c, cs_c, a, rs_a, cs_a, b, rs_b,
                                                         cs_b, m, n, k, alpha, beta, ep.bias,
                                                         ep.act);
  } else if (m * n >= (int64_t(1) << 20)) {
    launch_tiled<float, 128, 128, 8, 8, 8>(c, rs_c, cs_c, a, rs_a, cs_a, b, rs_b, cs_b, m, n, k,
                                           alpha, beta, ep, stream);
  } else {  // small outputs: smaller tiles keep more SMs busy
    launch_tiled<float, 64, 64, 8, 4, 4>(c, rs_c, cs_c, a, rs_a, cs_a, b, rs_b, cs_b, m, n, k,
                                         alpha, beta, ep, stream);
  }
}

template <>
void launch_gemm<double>(double* c, int64_t rs_c, int64_t cs_c, const double* a, int64_t rs_a,
                         int64_t cs_a, const double* b, int64_t rs_b, int64_t cs_b, int64_t m,
                         int64_t n, int64_t k, double alpha, double beta,
                         const GemmEpilogue<double>& ep, bool, cudaStream_t stream) {
  launch_tiled<double, 64, 64, 8, 4, 4>(c, rs_c, cs_c, a, rs_a, cs_a, b, rs_b, cs_b, m, n, k,
                                        alpha, beta, ep, stream);
}

}  // namespace

template <typename T>
cudaError_t gemm(T* c, int64_t rs_c, int64_t cs_c, const T* a, int64_t rs_a, int64_t cs_a,
                 const T* b, int64_t rs_b, int64_t cs_b, int64_t m, int64_t n, int64_t k, T alpha,
                 T beta, const GemmEpilogue<T>& ep, bool tf32, cudaStream_t stream) {
  if (m <= 0 || n <= 0) return cudaSuccess;
  if (int64_t((m + 63) / 64) > 0x7fffffff || (n + 63) / 64 > 65535) return cudaErrorInvalidValue;
  launch_gemm<T>(c, rs_c, cs_c, a, rs_a, cs_a, b, rs_b, cs_b, m, n, k, alpha, beta, ep, tf32,
                 stream);
  return launch_status();
}

template <typename T>
cudaError_t gemm_ref(T* c, int64_t rs_c, int64_t cs_c, const T* a, int64_t rs_a, int64_t cs_a,
                     const T* b, int64_t rs_b, int64_t cs_b, int64_t m, int64_t n, int64_t k,
                     T alpha, T beta, const GemmEpilogue<T>& ep, cudaStream_t stream) {
  if (m <= 0 || n <= 0) return cudaSuccess;
  gemm_ref_kernel<T><<<blocks_for(m * n), kThreads, 0, stream>>>(
      c, rs_c, cs_c, a, rs_a, cs_a, b, rs_b, cs_b, m, n, k, alpha, beta, ep.bias, ep.act);
  return launch_status();
}

#define FASTDL_INSTANTIATE(T)                                                                   \
  template cudaError_t gemm<T>(T*, int64_t, int64_t, const T*, int64_t, int64_t, const T*,       \
                               int64_t, int64_t, int64_t, int64_t, int64_t, T, T,                \
                               const GemmEpilogue<T>&, bool, cudaStream_t);                      \
  template cudaError_t gemm_ref<T>(T*, int64_t, int64_t, const T*, int64_t, int64_t, const T*,   \
                                   int64_t, int64_t, int64_t, int64_t, int64_t, T, T,            \
                                   const GemmEpilogue<T>&, cudaStream_t);
FASTDL_INSTANTIATE(float)
FASTDL_INSTANTIATE(double)
#undef FASTDL_INSTANTIATE

}  // namespace fastdl::cuda
