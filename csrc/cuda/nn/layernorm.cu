// Layer normalization on the GPU, the CPU kernels' math (cpu/nn/layernorm.cpp).
// See layernorm.h.
#include "cuda/nn/layernorm.h"
#include "cuda/runtime/util.cuh"

namespace fastdl::cuda {
namespace {

constexpr int kTileC = 32;         // columns per block of the column sums (threadIdx.x)
constexpr int kLanes = 8;          // row lanes per block (threadIdx.y)
constexpr int64_t kRowsPer = 256;  // rows per partial block, before capping P
constexpr int64_t kMaxPartials = 1024;
constexpr unsigned kMaxRowBlocks = 65535;

// Threads per row block: a power of two from 32 to kThreads, no more than a row needs.
int row_threads(int64_t D) {
  int t = 32;
  while (t < kThreads && t < D) t *= 2;
  return t;
}

// Sum of v over the block (blockDim.x threads, a power of two up to kThreads), the
// same order every time; every thread gets it. sh: kThreads doubles of shared memory.
__device__ double block_sum(double v, double* sh) {
  const int t = threadIdx.x;
  sh[t] = v;
  __syncthreads();
  for (int s = int(blockDim.x) / 2; s > 0; s >>= 1) {
    if (t < s) sh[t] += sh[t + s];
    __syncthreads();
  }
  const double total = sh[0];
  __syncthreads();  // before sh is written again
  return total;
}

template <typename T>
__global__ void forward_kernel(T* y, T* mean, T* inv, const T* x, const T* gamma, const T* beta,
                               int64_t N, int64_t D, double eps, bool rms) {
  __shared__ double sh[kThreads];
  for (int64_t r = blockIdx.x; r < N; r += gridDim.x) {
    const T* xr = x + r * D;
    double s = 0.0;
    for (int64_t d = threadIdx.x; d < D; d += blockDim.x) s += double(xr[d]);
    const double m = block_sum(s, sh) / double(D);
    double q = 0.0;
    for (int64_t d = threadIdx.x; d < D; d += blockDim.x) {
      const double c = double(xr[d]) - m;
      q += c * c;
    }
    q = block_sum(q, sh);
    const T tm = T(m), ts = T(1.0 / sqrt(q / double(D) + eps));
    if (threadIdx.x == 0) {
      mean[r] = tm;
      inv[r] = ts;
    }
    T* yr = y + r * D;
    const T tk = rms ? T(0) : tm;  // rms (Keras): scaled, not centered
    for (int64_t d = threadIdx.x; d < D; d += blockDim.x) {
      T v = (xr[d] - tk) * ts;
      if (gamma) v *= gamma[d];
      if (beta) v += beta[d];
      yr[d] = v;
    }
  }
}

template <typename T>
__global__ void dx_kernel(T* dx, const T* dy, const T* x, const T* mean, const T* inv,
                          const T* gamma, int64_t N, int64_t D, bool rms) {
  __shared__ double sh[kThreads];
  for (int64_t r = blockIdx.x; r < N; r += gridDim.x) {
    const T* dr = dy + r * D;
    const T* xr = x + r * D;
    const T m = mean[r], s = inv[r], k = rms ? T(0) : m;
    double a = 0.0, b = 0.0;
    for (int64_t d = threadIdx.x; d < D; d += blockDim.x) {
      const T g = gamma ? dr[d] * gamma[d] : dr[d];
      a += double(g);
      b += double(g) * double((xr[d] - k) * s);
    }
    a = block_sum(a, sh);
    b = block_sum(b, sh);
    const T ka = rms ? T(0) : T(a / double(D)), kb = T(b / double(D));
    T* xo = dx + r * D;
    for (int64_t d = threadIdx.x; d < D; d += blockDim.x) {
      const T g = gamma ? dr[d] * gamma[d] : dr[d];
      xo[d] = s * (g - ka - (xr[d] - m) * s * kb);
    }
  }
}

// partial[p] = (sum dy * xhat, sum dy) over the rows of block p, per column.
template <typename T>
__global__ void column_sums_kernel(double* partial /* (P,2,D) */, const T* dy, const T* x,
                                   const T* mean, const T* inv, int64_t N, int64_t D,
                                   int64_t rows_per, bool rms) {
  __shared__ double sh[2][kLanes][kTileC];
  const int tx = threadIdx.x, ty = threadIdx.y;
  const int64_t c = int64_t(blockIdx.x) * kTileC + tx;
  const int64_t p = blockIdx.y;
  const int64_t r0 = p * rows_per;
  const int64_t r1 = r0 + rows_per < N ? r0 + rows_per : N;
  double s1 = 0.0, s2 = 0.0;
  if (c < D) {
    for (int64_t r = r0 + ty; r < r1; r += kLanes) {
      const T g = dy[r * D + c];
      s1 += double(g * ((x[r * D + c] - (rms ? T(0) : mean[r])) * inv[r]));
      s2 += double(g);
    }
  }
  sh[0][ty][tx] = s1;
  sh[1][ty][tx] = s2;
  __syncthreads();
  if (ty == 0 && c < D) {
    double t1 = 0.0, t2 = 0.0;
    for (int i = 0; i < kLanes; ++i) {
      t1 += sh[0][i][tx];
      t2 += sh[1][i][tx];
    }
    partial[(p * 2) * D + c] = t1;
    partial[(p * 2 + 1) * D + c] = t2;
  }
}

template <typename T>
__global__ void finish_kernel(T* dgamma, T* dbeta, const double* partial, int64_t P, int64_t D) {
  FASTDL_GRID_LOOP(c, D) {
    double s1 = 0.0, s2 = 0.0;
    for (int64_t p = 0; p < P; ++p) {
      s1 += partial[(p * 2) * D + c];
      s2 += partial[(p * 2 + 1) * D + c];
    }
    if (dgamma) dgamma[c] = T(s1);
    if (dbeta) dbeta[c] = T(s2);
  }
}

unsigned row_blocks(int64_t N) { return unsigned(N < kMaxRowBlocks ? N : kMaxRowBlocks); }

}  // namespace

int64_t layernorm_partials(int64_t N) {
  if (N <= 0) return 0;
  const int64_t P = (N + kRowsPer - 1) / kRowsPer;
  return P < kMaxPartials ? P : kMaxPartials;
}

template <typename T>
cudaError_t layernorm_forward(T* y, T* mean, T* inv, const T* x, const T* gamma, const T* beta,
                              int64_t N, int64_t D, double eps, bool rms, cudaStream_t stream) {
  if (N <= 0 || D <= 0) return cudaSuccess;
  forward_kernel<T><<<row_blocks(N), row_threads(D), 0, stream>>>(y, mean, inv, x, gamma, beta, N, D,
                                                            eps, rms);
  return launch_status();
}

template <typename T>
cudaError_t layernorm_backward(T* dx, T* dgamma, T* dbeta, const T* dy, const T* x,
                               const T* mean, const T* inv, const T* gamma, double* partial,
                               int64_t N, int64_t D, bool rms, cudaStream_t stream) {
  if (D <= 0) return cudaSuccess;
  const int64_t P = layernorm_partials(N);
  if (P > 0) {
    dim3 grid(unsigned((D + kTileC - 1) / kTileC), unsigned(P));
    dim3 block(kTileC, kLanes);
    column_sums_kernel<T><<<grid, block, 0, stream>>>(partial, dy, x, mean, inv, N, D,
                                                      (N + P - 1) / P, rms);
    cudaError_t err = launch_status();
    if (err != cudaSuccess) return err;
  }
  if (dgamma || dbeta) {
    finish_kernel<T><<<blocks_for(D), kThreads, 0, stream>>>(dgamma, dbeta, partial, P, D);
    cudaError_t err = launch_status();
    if (err != cudaSuccess) return err;
  }
  if (!dx || N <= 0) return cudaSuccess;
  // after the column sums: dx may be dy
  dx_kernel<T><<<row_blocks(N), row_threads(D), 0, stream>>>(dx, dy, x, mean, inv, gamma, N, D, rms);
  return launch_status();
}

#define FASTDL_LN_INSTANTIATE(T)                                                              \
  template cudaError_t layernorm_forward<T>(T*, T*, T*, const T*, const T*, const T*, int64_t, \
                                            int64_t, double, bool, cudaStream_t);              \
  template cudaError_t layernorm_backward<T>(T*, T*, T*, const T*, const T*, const T*,        \
                                             const T*, const T*, double*, int64_t, int64_t,   \
                                             bool, cudaStream_t);
FASTDL_LN_INSTANTIATE(float)
FASTDL_LN_INSTANTIATE(double)
#undef FASTDL_LN_INSTANTIATE

}  // namespace fastdl::cuda
