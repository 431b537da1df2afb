// Batch normalization on the GPU, the CPU kernels' math (cpu/nn/batchnorm.cpp):
// per-channel sums in blocks of rows (a tile of 32 channels by 8 row lanes
// per CUDA block, coalesced along the channels), then one thread per channel
// adds the blocks in order and makes the per-channel coefficients, then one
// element-wise pass. See batchnorm.h.
#include "cuda/nn/batchnorm.h"
#include "cuda/runtime/util.cuh"

namespace fastdl::cuda {
namespace {

constexpr int kTileC = 32;        // channels per block (threadIdx.x)
constexpr int kLanes = 8;         // row lanes per block (threadIdx.y)
constexpr int64_t kRowsPer = 256;  // rows per partial block, before capping P
constexpr int64_t kMaxPartials = 1024;

int64_t rows_per_partial(int64_t M) {
  const int64_t P = batchnorm_partials(M);
  return P ? (M + P - 1) / P : 0;
}

// partial[p] = (sum a', sum a'') over rows of block p for each channel:
//   forward (!kGrad): a' = x - k, a'' = (x - k)^2      (k: row 0 of x, a shift)
//   backward (kGrad): a' = dy,    a'' = dy * (x - k)   (k: the mean)
template <typename T, bool kGrad>
__global__ void partial_sums_kernel(double* partial /* (P,2,C) */, const T* a /* (M,C) */,
                                    const T* x /* (M,C) */, const T* k /* (C,) */, int64_t M,
                                    int64_t C, int64_t rows_per) {
  __shared__ double sh[2][kLanes][kTileC];
  const int tx = threadIdx.x, ty = threadIdx.y;
  const int64_t c = int64_t(blockIdx.x) * kTileC + tx;
  const int64_t p = blockIdx.y;
  const int64_t r0 = p * rows_per;
  const int64_t r1 = r0 + rows_per < M ? r0 + rows_per : M;
  double s1 = 0.0, s2 = 0.0;
  if (c < C) {
    const double kc = double(k[c]);
    for (int64_t r = r0 + ty; r < r1; r += kLanes) {
      if (kGrad) {
        const double g = double(a[r * C + c]);
        s1 += g;
        s2 += g * (double(x[r * C + c]) - kc);
      } else {
        const double d = double(a[r * C + c]) - kc;
        s1 += d;
        s2 += d * d;
      }
    }
  }
  sh[0][ty][tx] = s1;
  sh[1][ty][tx] = s2;
  __syncthreads();
  if (ty == 0 && c < C) {
    double t1 = 0.0, t2 = 0.0;
    for (int i = 0; i < kLanes; ++i) {
      t1 += sh[0][i][tx];
      t2 += sh[1][i][tx];
    }
    partial[(p * 2) * C + c] = t1;
    partial[(p * 2 + 1) * C + c] = t2;
  }
}

template <typename T, bool kGrad>
cudaError_t partial_sums(double* partial, const T* a, const T* x, const T* k, int64_t M,
                         int64_t C, cudaStream_t stream) {
  const int64_t P = batchnorm_partials(M);
  if (P == 0 || C == 0) return cudaSuccess;
  dim3 grid(unsigned((C + kTileC - 1) / kTileC), unsigned(P));
  dim3 block(kTileC, kLanes);
  partial_sums_kernel<T, kGrad><<<grid, block, 0, stream>>>(partial, a, x, k, M, C,
                                                            rows_per_partial(M));
  return launch_status();
}

__device__ inline void add_partials(double& s1, double& s2, const double* partial, int64_t P,
                                    int64_t C, int64_t c) {
  s1 = s2 = 0.0;
  for (int64_t p = 0; p < P; ++p) {
    s1 += partial[(p * 2) * C + c];
    s2 += partial[(p * 2 + 1) * C + c];
  }
}

template <typename T>
__global__ void finish_forward_kernel(T* mean, T* var, T* coef /* (2,C) */,
                                      const double* partial, const T* x, const T* gamma,
                                      const T* beta, int64_t P, int64_t M, int64_t C,
                                      double eps) {
  FASTDL_GRID_LOOP(c, C) {
    if (M == 0) {
      mean[c] = var[c] = T(nan(""));
      continue;
    }
    double s1, s2;
    add_partials(s1, s2, partial, P, C, c);
    const double d = s1 / double(M);
    const double m = double(x[c]) + d;
    double v = s2 / double(M) - d * d;
    if (v < 0) v = 0;
    mean[c] = T(m);
    var[c] = T(v);
    const double scale = (gamma ? double(gamma[c]) : 1.0) / sqrt(v + eps);
    coef[c] = T(scale);
    coef[C + c] = T((beta ? double(beta[c]) : 0.0) - m * scale);
  }
}

template <typename T>
__global__ void inference_coef_kernel(T* coef /* (2,C) */, const T* mean, const T* var,
                                      const T* gamma, const T* beta, int64_t C, double eps) {
  FASTDL_GRID_LOOP(c, C) {
    const double scale = (gamma ? double(gamma[c]) : 1.0) / sqrt(double(var[c]) + eps);
    coef[c] = T(scale);
    coef[C + c] = T((beta ? double(beta[c]) : 0.0) - double(mean[c]) * scale);
  }
}

// y = x * coef[0][c] + coef[1][c]
template <typename T>
__global__ void affine_kernel(T* y, const T* x, const T* coef, int64_t n, int64_t C) {
  FASTDL_GRID_LOOP(i, n) {
    const int64_t c = i % C;
    y[i] = x[i] * coef[c] + coef[C + c];
  }
}

template <typename T>
__global__ void finish_backward_kernel(T* dgamma, T* dbeta, T* coef /* (3,C) */,
                                       const double* partial, const T* var, const T* gamma,
                                       int64_t P, int64_t M, int64_t C, double eps,
                                       bool batch_stats) {
  FASTDL_GRID_LOOP(c, C) {
    double s1, s2;
    add_partials(s1, s2, partial, P, C, c);
    const double is = 1.0 / sqrt(double(var[c]) + eps);
    const double g = gamma ? double(gamma[c]) : 1.0;
    dbeta[c] = T(s1);
    dgamma[c] = T(s2 * is);
    const bool full = batch_stats && M > 0;
    coef[c] = T(g * is);
    coef[C + c] = full ? T(-g * is * is * is * s2 / double(M)) : T(0);
    coef[2 * C + c] = full ? T(-g * is * s1 / double(M)) : T(0);
  }
}

// dx = dy * coef[0][c] + (x - mean[c]) * coef[1][c] + coef[2][c]
template <typename T>
__global__ void dx_kernel(T* dx, const T* dy, const T* x, const T* mean, const T* coef,
                          int64_t n, int64_t C) {
  FASTDL_GRID_LOOP(i, n) {
    const int64_t c = i % C;
    dx[i] = dy[i] * coef[c] + (x[i] - mean[c]) * coef[C + c] + coef[2 * C + c];
  }
}

}  // namespace

int64_t batchnorm_partials(int64_t M) {
  if (M <= 0) return 0;
  int64_t P = (M + kRowsPer - 1) / kRowsPer;
  return P < kMaxPartials ? P : kMaxPartials;
}

template <typename T>
cudaError_t batchnorm_forward(T* y, T* mean, T* var, const T* x, const T* gamma, const T* beta,
                              double* partial, T* coef, int64_t M, int64_t C, double eps,
                              cudaStream_t stream) {
  if (C <= 0) return cudaSuccess;
  cudaError_t err = partial_sums<T, false>(partial, x, x, x, M, C, stream);
  if (err != cudaSuccess) return err;
  finish_forward_kernel<T><<<blocks_for(C), kThreads, 0, stream>>>(
      mean, var, coef, partial, x, gamma, beta, batchnorm_partials(M), M, C, eps);
  err = launch_status();
  if (err != cudaSuccess || M == 0) return err;
  affine_kernel<T><<<blocks_for(M * C), kThreads, 0, stream>>>(y, x, coef, M * C, C);
  return launch_status();
}

template <typename T>
cudaError_t batchnorm_inference(T* y, const T* x, const T* mean, const T* var, const T* gamma,
                                const T* beta, T* coef, int64_t M, int64_t C, double eps,
                                cudaStream_t stream) {
  if (C <= 0 || M <= 0) return cudaSuccess;
  inference_coef_kernel<T><<<blocks_for(C), kThreads, 0, stream>>>(coef, mean, var, gamma,
                                                                   beta, C, eps);
  cudaError_t err = launch_status();
  if (err != cudaSuccess) return err;
  affine_kernel<T><<<blocks_for(M * C), kThreads, 0, stream>>>(y, x, coef, M * C, C);
  return launch_status();
}

template <typename T>
cudaError_t batchnorm_backward(T* dx, T* dgamma, T* dbeta, const T* dy, const T* x,
                               const T* mean, const T* var, const T* gamma, double* partial,
                               T* coef, int64_t M, int64_t C, double eps, bool batch_stats,
                               cudaStream_t stream) {
  if (C <= 0) return cudaSuccess;
  cudaError_t err = partial_sums<T, true>(partial, dy, x, mean, M, C, stream);
  if (err != cudaSuccess) return err;
  finish_backward_kernel<T><<<blocks_for(C), kThreads, 0, stream>>>(
      dgamma, dbeta, coef, partial, var, gamma, batchnorm_partials(M), M, C, eps, batch_stats);
  err = launch_status();
  if (err != cudaSuccess || !dx || M == 0) return err;
  dx_kernel<T><<<blocks_for(M * C), kThreads, 0, stream>>>(dx, dy, x, mean, coef, M * C, C);
  return launch_status();
}

#define FASTDL_BN_INSTANTIATE(T)                                                              \
  template cudaError_t batchnorm_forward<T>(T*, T*, T*, const T*, const T*, const T*, double*, \
                                            T*, int64_t, int64_t, double, cudaStream_t);       \
  template cudaError_t batchnorm_inference<T>(T*, const T*, const T*, const T*, const T*,     \
                                              const T*, T*, int64_t, int64_t, double,         \
                                              cudaStream_t);                                  \
  template cudaError_t batchnorm_backward<T>(T*, T*, T*, const T*, const T*, const T*,        \
                                             const T*, const T*, double*, T*, int64_t,        \
                                             int64_t, double, bool, cudaStream_t);
FASTDL_BN_INSTANTIATE(float)
FASTDL_BN_INSTANTIATE(double)
#undef FASTDL_BN_INSTANTIATE

}  // namespace fastdl::cuda
