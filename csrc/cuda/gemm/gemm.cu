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

// ------------------------------------------------------------ split-K
// A launch whose grid has z = S > 1 computes S partial products: block z takes
// k range [z * kslice, (z + 1) * kslice) and writes its tile to c + z * c_slice
// (a workspace; the caller passes alpha 1, beta 0, no epilogue). kslice is a
// multiple of 16, so an operand aligned for vector loads stays aligned.
// Returns the length of this block's k range; with z = 1, kslice = k: all of it.
template <typename T>
__device__ __forceinline__ int64_t take_k_slice(const T*& a, int64_t cs_a, const T*& b,
                                                int64_t rs_b, T*& c, int64_t k, int64_t kslice,
                                                int64_t c_slice) {
  const int64_t k0 = int64_t(blockIdx.z) * kslice;
  a += k0 * cs_a;
  b += k0 * rs_b;
  c += int64_t(blockIdx.z) * c_slice;
  return k - k0 < kslice ? k - k0 : kslice;
}

// C = act(alpha * (sum over slices of work[s]) + beta * C + bias), the slices
// summed in order, so the result is the same on every run.
template <typename T>
__global__ void split_k_sum_kernel(T* c, int64_t rs_c, int64_t cs_c, const T* work,
                                   int64_t slices, int64_t m, int64_t n, T alpha, T beta,
                                   const T* bias, Activation act) {
  FASTDL_GRID_LOOP(idx, m * n) {
    T acc = T(0);
    for (int64_t s = 0; s < slices; ++s) acc += work[s * m * n + idx];
    store_output(c, rs_c, cs_c, idx / n, idx % n, acc, alpha, beta, bias, act);
  }
}

// ------------------------------------------------------------ tiled kernel
// One block computes a BM x BN tile of C. Per step of BK along k it stages an
// A tile (stored transposed, As[kk][row]) and a B tile (Bs[kk][col]) in shared
// memory, then every thread accumulates a TM x TN sub-tile in registers.
// Shared memory holds two stages: while the threads multiply out one, the next
// step's tiles are already on their way from global memory into registers, and
// go to the other stage afterwards (one barrier per step).
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

// One operand tile of R rows (along m for A, n for B) by BK along k, moved as
// runs of W elements: run v of the tile is (r, kk) = its first element. `along_k`:
// the runs go along k (the operand's contiguous dimension is k), else along r.
// The tile's element (r, kk) of the operand sits at p + r * rs + kk * ks.
template <typename T, int R, int BK>
struct TileRuns {
  static constexpr int W = Vec16<T>::W;
  static constexpr int kRuns = R * BK / W;
  static constexpr int kPerThread = (kRuns + kTileThreads - 1) / kTileThreads;

  // f(i, r, kk) for this thread's runs: the i-th, starting at tile element (r, kk).
  template <typename F>
  __device__ static void each_run(bool along_k, F f) {
#pragma unroll
    for (int i = 0; i < kPerThread; ++i) {
      const int v = threadIdx.x + i * kTileThreads;
      if (kRuns % kTileThreads != 0 && v >= kRuns) break;
      int r, kk;
      run_origin(v, along_k, r, kk);
      f(i, r, kk);
    }
  }

  // Global -> registers: this thread's runs of the tile at (r0, k0).
  __device__ static void load(T (&e)[kPerThread][W], const T* p, int64_t rs, int64_t ks,
                              int64_t r0, int64_t k0, int64_t rows, int64_t k, bool along_k,
                              bool vec) {
    const int dr = along_k ? 0 : 1, dk = along_k ? 1 : 0;  // a run's step, in (r, k)
    each_run(along_k, [&](int i, int r, int kk) {
      const int64_t gr = r0 + r, gk = k0 + kk;
      if (vec && gr + (W - 1) * dr < rows && gk + (W - 1) * dk < k) {
        load_vec(e[i], p + gr * rs + gk * ks);  // the run's stride is 1 (`vec`)
      } else {
#pragma unroll
        for (int j = 0; j < W; ++j) {
          const int64_t jr = gr + j * dr, jk = gk + j * dk;
          e[i][j] = (jr < rows && jk < k) ? p[jr * rs + jk * ks] : T(0);
        }
      }
    });
  }

  // Registers -> shared memory, stored [kk][r].
  __device__ static void store(T (*sm)[R], const T (&e)[kPerThread][W], bool along_k) {
    each_run(along_k, [&](int i, int r, int kk) {
#pragma unroll
      for (int j = 0; j < W; ++j) {
        if (along_k) sm[kk + j][r] = e[i][j];
        else sm[kk][r + j] = e[i][j];
      }
    });
  }

  __device__ static void run_origin(int v, bool along_k, int& r, int& kk) {
    if (along_k) {
      r = v / (BK / W);
      kk = (v % (BK / W)) * W;
    } else {
      kk = v / (R / W);
      r = (v % (R / W)) * W;
    }
  }
};

template <typename T, int BM, int BN, int BK, int TM, int TN>
__global__ void __launch_bounds__(kTileThreads)
gemm_tiled_kernel(T* c, int64_t rs_c, int64_t cs_c, const T* a, int64_t rs_a, int64_t cs_a,
                  const T* b, int64_t rs_b, int64_t cs_b, int64_t m, int64_t n, int64_t k,
                  T alpha, T beta, const T* bias, Activation act, OperandLayout la,
                  OperandLayout lb, int64_t kslice, int64_t c_slice) {
  constexpr int W = Vec16<T>::W;
  static_assert(BM == kWarpsM * kLanesM * TM, "BM must match the thread layout");
  static_assert(BN == kWarpsN * kLanesN * TN, "BN must match the thread layout");
  static_assert(BK % W == 0 && BM % W == 0 && BN % W == 0, "tiles must hold whole vectors");
  using RunsA = TileRuns<T, BM, BK>;
  using RunsB = TileRuns<T, BN, BK>;

  __shared__ __align__(16) T As[2][BK][BM];
  __shared__ __align__(16) T Bs[2][BK][BN];

  k = take_k_slice(a, cs_a, b, rs_b, c, k, kslice, c_slice);
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

  // A (m x k) as rows along m: element (i, p) at a + i*rs_a + p*cs_a; its runs go
  // along k when k is contiguous. B (k x n) as rows along n: (j, p) at b + j*cs_b + p*rs_b.
  T ea[RunsA::kPerThread][W], eb[RunsB::kPerThread][W];
  RunsA::load(ea, a, rs_a, cs_a, bm0, 0, m, k, la.inner_contig, la.vec);
  RunsB::load(eb, b, cs_b, rs_b, bn0, 0, n, k, !lb.inner_contig, lb.vec);
  RunsA::store(As[0], ea, la.inner_contig);
  RunsB::store(Bs[0], eb, !lb.inner_contig);
  __syncthreads();

  int stage = 0;
  for (int64_t k0 = 0; k0 < k; k0 += BK) {
    const bool more = k0 + BK < k;
    if (more) {  // the next step's tiles, in flight while this one is multiplied out
      RunsA::load(ea, a, rs_a, cs_a, bm0, k0 + BK, m, k, la.inner_contig, la.vec);
      RunsB::load(eb, b, cs_b, rs_b, bn0, k0 + BK, n, k, !lb.inner_contig, lb.vec);
    }
    // ---- TM x TN outer products, one per kk
#pragma unroll
    for (int kk = 0; kk < BK; ++kk) {
      T af[TM], bf[TN];
#pragma unroll
      for (int i = 0; i < TM; ++i) af[i] = As[stage][kk][row0 + i];
#pragma unroll
      for (int j = 0; j < TN; ++j) bf[j] = Bs[stage][kk][col0 + j];
#pragma unroll
      for (int i = 0; i < TM; ++i)
#pragma unroll
        for (int j = 0; j < TN; ++j) acc[i][j] += af[i] * bf[j];
    }
    if (more) {  // the other stage was last read a step ago, before the last barrier
      RunsA::store(As[stage ^ 1], ea, la.inner_contig);
      RunsB::store(Bs[stage ^ 1], eb, !lb.inner_contig);
    }
    __syncthreads();
    stage ^= 1;
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
                 int64_t k, float alpha, float beta, const float* bias, Activation act,
                 int64_t kslice, int64_t c_slice) {
  k = take_k_slice(a, cs_a, b, rs_b, c, k, kslice, c_slice);
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

// An attribute of the current device, cached per device and attribute slot.
int device_attribute(cudaDeviceAttr attr, int slot) {
  static int cache[64][2];  // 0 = not asked yet
  int dev = 0;
  if (cudaGetDevice(&dev) != cudaSuccess || dev < 0 || dev >= 64) return 0;
  if (cache[dev][slot] == 0) {
    int v = 0;
    if (cudaDeviceGetAttribute(&v, attr, dev) != cudaSuccess) return 0;
    cache[dev][slot] = v;
  }
  return cache[dev][slot];
}
int device_major() { return device_attribute(cudaDevAttrComputeCapabilityMajor, 0); }
int device_sms() { return device_attribute(cudaDevAttrMultiProcessorCount, 1); }

template <typename T>
bool aligned16(const T* p) {
  return (reinterpret_cast<uintptr_t>(p) & 15) == 0;
}

// How k is cut for split-K (gemm.h). Only outputs of fewer 64 x 64 tiles than the
// device has multiprocessors are split, into about two blocks per multiprocessor,
// each slice at least kMinSliceK deep.
constexpr int64_t kSplitTile = 64, kMinSliceK = 128, kSliceAlign = 16;
struct KSplit {
  int64_t slices = 1, kslice = 0;
};
KSplit plan_split_k(int64_t m, int64_t n, int64_t k) {
  KSplit p;
  p.kslice = k;
  const int64_t tiles = ((m + kSplitTile - 1) / kSplitTile) * ((n + kSplitTile - 1) / kSplitTile);
  const int64_t sms = device_sms();
  if (sms <= 0 || tiles >= sms || k < 2 * kMinSliceK) return p;
  int64_t want = (2 * sms + tiles - 1) / tiles, most = k / kMinSliceK;
  int64_t slices = want < most ? want : most;
  if (slices < 2) return p;
  int64_t kslice = (k + slices - 1) / slices;
  kslice = (kslice + kSliceAlign - 1) / kSliceAlign * kSliceAlign;
  p.slices = (k + kslice - 1) / kslice;
  p.kslice = p.slices > 1 ? kslice : k;
  return p;
}

// Launch geometry shared by every tile kernel: a (m/BM, n/BN) grid, one z slice
// per part of k.
struct Launch {
  int64_t m, n, k, kslice, c_slice;
  unsigned slices;
};

template <typename T, int BM, int BN, int BK, int TM, int TN>
void launch_tiled(T* c, int64_t rs_c, int64_t cs_c, const T* a, int64_t rs_a, int64_t cs_a,
                  const T* b, int64_t rs_b, int64_t cs_b, const Launch& L, T alpha, T beta,
                  const GemmEpilogue<T>& ep, cudaStream_t stream) {
  constexpr int W = Vec16<T>::W;
  OperandLayout la, lb;
  la.inner_contig = cs_a == 1;
  la.vec = la.inner_contig ? (rs_a % W == 0 && aligned16(a))
                           : (rs_a == 1 && cs_a % W == 0 && aligned16(a));
  lb.inner_contig = cs_b == 1;
  lb.vec = lb.inner_contig ? (rs_b % W == 0 && aligned16(b))
                           : (rs_b == 1 && cs_b % W == 0 && aligned16(b));
  dim3 grid(unsigned((L.m + BM - 1) / BM), unsigned((L.n + BN - 1) / BN), L.slices);
  gemm_tiled_kernel<T, BM, BN, BK, TM, TN><<<grid, kTileThreads, 0, stream>>>(
      c, rs_c, cs_c, a, rs_a, cs_a, b, rs_b, cs_b, L.m, L.n, L.k, alpha, beta, ep.bias, ep.act,
      la, lb, L.kslice, L.c_slice);
}

template <typename T>
void launch_gemm(T* c, int64_t rs_c, int64_t cs_c, const T* a, int64_t rs_a, int64_t cs_a,
                 const T* b, int64_t rs_b, int64_t cs_b, const Launch& L, T alpha, T beta,
                 const GemmEpilogue<T>& ep, bool tf32, cudaStream_t stream);

template <>
void launch_gemm<float>(float* c, int64_t rs_c, int64_t cs_c, const float* a, int64_t rs_a,
                        int64_t cs_a, const float* b, int64_t rs_b, int64_t cs_b, const Launch& L,
                        float alpha, float beta, const GemmEpilogue<float>& ep, bool tf32,
                        cudaStream_t stream) {
  if (tf32 && device_major() >= 8) {
    dim3 grid(unsigned((L.m + kTf32BM - 1) / kTf32BM), unsigned((L.n + kTf32BN - 1) / kTf32BN),
              L.slices);
    gemm_tf32_kernel<<<grid, kTf32Threads, 0, stream>>>(c, rs_c, cs_c, a, rs_a, cs_a, b, rs_b,
                                                         cs_b, L.m, L.n, L.k, alpha, beta, ep.bias,
                                                         ep.act, L.kslice, L.c_slice);
  } else if (L.m * L.n >= (int64_t(1) << 20) && L.n <= 64) {  // a convolution's few filters
    launch_tiled<float, 128, 64, 8, 8, 4>(c, rs_c, cs_c, a, rs_a, cs_a, b, rs_b, cs_b, L, alpha,
                                          beta, ep, stream);
  } else if (L.m * L.n >= (int64_t(1) << 20)) {
    launch_tiled<float, 128, 128, 8, 8, 8>(c, rs_c, cs_c, a, rs_a, cs_a, b, rs_b, cs_b, L, alpha,
                                           beta, ep, stream);
  } else {  // small outputs: smaller tiles keep more SMs busy
    launch_tiled<float, 64, 64, 8, 4, 4>(c, rs_c, cs_c, a, rs_a, cs_a, b, rs_b, cs_b, L, alpha,
                                         beta, ep, stream);
  }
}

template <>
void launch_gemm<double>(double* c, int64_t rs_c, int64_t cs_c, const double* a, int64_t rs_a,
                         int64_t cs_a, const double* b, int64_t rs_b, int64_t cs_b,
                         const Launch& L, double alpha, double beta,
                         const GemmEpilogue<double>& ep, bool, cudaStream_t stream) {
  launch_tiled<double, 64, 64, 8, 4, 4>(c, rs_c, cs_c, a, rs_a, cs_a, b, rs_b, cs_b, L, alpha,
                                        beta, ep, stream);
}

}  // namespace

int64_t gemm_workspace_elems(int64_t m, int64_t n, int64_t k) {
  if (m <= 0 || n <= 0) return 0;
  const KSplit p = plan_split_k(m, n, k);
  return p.slices > 1 ? p.slices * m * n : 0;
}

template <typename T>
cudaError_t gemm(T* c, int64_t rs_c, int64_t cs_c, const T* a, int64_t rs_a, int64_t cs_a,
                 const T* b, int64_t rs_b, int64_t cs_b, int64_t m, int64_t n, int64_t k, T alpha,
                 T beta, const GemmEpilogue<T>& ep, bool tf32, cudaStream_t stream, T* work,
                 int64_t work_elems) {
  if (m <= 0 || n <= 0) return cudaSuccess;
  if (int64_t((m + 63) / 64) > 0x7fffffff || (n + 63) / 64 > 65535) return cudaErrorInvalidValue;
  const KSplit p = work ? plan_split_k(m, n, k) : KSplit{1, k};
  if (p.slices < 2 || work_elems < p.slices * m * n) {
    launch_gemm<T>(c, rs_c, cs_c, a, rs_a, cs_a, b, rs_b, cs_b, Launch{m, n, k, k, 0, 1}, alpha,
                   beta, ep, tf32, stream);
    return launch_status();
  }
  // The slices' products into work (m x n each, contiguous), then one pass that
  // sums them and applies alpha, beta and the epilogue.
  launch_gemm<T>(work, n, 1, a, rs_a, cs_a, b, rs_b, cs_b,
                 Launch{m, n, k, p.kslice, m * n, unsigned(p.slices)}, T(1), T(0), {}, tf32,
                 stream);
  cudaError_t e = launch_status();
  if (e != cudaSuccess) return e;
  split_k_sum_kernel<T><<<blocks_for(m * n), kThreads, 0, stream>>>(
      c, rs_c, cs_c, work, p.slices, m, n, alpha, beta, ep.bias, ep.act);
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
                               const GemmEpilogue<T>&, bool, cudaStream_t, T*, int64_t);         \
  template cudaError_t gemm_ref<T>(T*, int64_t, int64_t, const T*, int64_t, int64_t, const T*,   \
                                   int64_t, int64_t, int64_t, int64_t, int64_t, T, T,            \
                                   const GemmEpilogue<T>&, cudaStream_t);
FASTDL_INSTANTIATE(float)
FASTDL_INSTANTIATE(double)
#undef FASTDL_INSTANTIATE

}  // namespace fastdl::cuda
