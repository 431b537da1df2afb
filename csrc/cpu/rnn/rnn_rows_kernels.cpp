// The row passes declared in rnn_rows.h, compiled once per capability level
// (runtime/dispatch.h); each build keeps its own copies of the cell math (see
// the note in common/rnn_cell.h).
// "omp simd": the units are independent; it lets GCC vectorise each loop once
// the cell functions are inlined.
#include "common/rnn_cell.h"
#include "cpu/rnn/rnn_rows.h"

namespace fastdl::cpu::FASTDL_CAP_NS {
namespace {

template <typename T>
void tanh_row(T* __restrict h, int64_t U) {
#pragma omp simd
  for (int64_t u = 0; u < U; ++u) h[u] = rnn::tanh_act(h[u]);
}

// The cell of rnn::lstm_cell_forward in four loops: sigmoid over the i, f and
// o blocks, tanh over g, then the state update. One loop over the whole cell
// chains two exp-division sequences per element, longer than the core's
// reorder window can overlap across elements; the short loops keep it full
// (about 1.2x faster at U = 128) and give the same bits.
template <typename T>
void lstm_forward(T* __restrict g, const T* __restrict c_prev, T* __restrict h, int64_t U) {
  T* __restrict c = g + 4 * U;
#pragma omp simd
  for (int64_t u = 0; u < 2 * U; ++u) g[u] = rnn::sigmoid(g[u]);
#pragma omp simd
  for (int64_t u = 3 * U; u < 4 * U; ++u) g[u] = rnn::sigmoid(g[u]);
#pragma omp simd
  for (int64_t u = 2 * U; u < 3 * U; ++u) g[u] = rnn::tanh_act(g[u]);
#pragma omp simd
  for (int64_t u = 0; u < U; ++u)
    rnn::lstm_cell_state(g[u], g[U + u], g[2 * U + u], g[3 * U + u], c_prev[u], c[u], h[u]);
}

template <typename T>
void lstm_backward(T* __restrict d, T* __restrict dc, const T* __restrict g,
                   const T* __restrict c_prev, const T* __restrict dh, int64_t U) {
  const T* __restrict c = g + 4 * U;
#pragma omp simd
  for (int64_t u = 0; u < U; ++u)
    rnn::lstm_cell_backward(g[u], g[U + u], g[2 * U + u], g[3 * U + u], c[u], c_prev[u], dh[u],
                            dc[u], d[u], d[U + u], d[2 * U + u], d[3 * U + u]);
}

template <typename T>
void gru_forward(T* __restrict g, const T* __restrict p, const T* __restrict h_prev,
                 T* __restrict h, int64_t U) {
#pragma omp simd
  for (int64_t u = 0; u < U; ++u) {
    const T hh_rec = p[2 * U + u];
    rnn::gru_cell_forward(g[u], g[U + u], g[2 * U + u], p[u], p[U + u], hh_rec, h_prev[u], g[u],
                          g[U + u], g[2 * U + u], h[u]);
    g[3 * U + u] = hh_rec;
  }
}

template <typename T>
void gru_backward(T* __restrict ax, T* __restrict ah, T* __restrict dh, const T* __restrict g,
                  const T* __restrict h_prev, int64_t U) {
#pragma omp simd
  for (int64_t u = 0; u < U; ++u) {
    T dz, dr, dhh, dhh_rec, dprev;
    rnn::gru_cell_backward(g[u], g[U + u], g[2 * U + u], g[3 * U + u], h_prev[u], dh[u], dz, dr,
                           dhh, dhh_rec, dprev);
    ax[u] = dz;
    ax[U + u] = dr;
    ax[2 * U + u] = dhh;
    ah[u] = dz;
    ah[U + u] = dr;
    ah[2 * U + u] = dhh_rec;
    dh[u] = dprev;
  }
}

constexpr RnnRowsKernels kKernels{
    {&tanh_row<float>, &lstm_forward<float>, &lstm_backward<float>, &gru_forward<float>,
     &gru_backward<float>},
    {&tanh_row<double>, &lstm_forward<double>, &lstm_backward<double>, &gru_forward<double>,
     &gru_backward<double>}};
FASTDL_REGISTER_KERNELS(rnn_rows_kernels, kKernels);

}  // namespace
}  // namespace fastdl::cpu::FASTDL_CAP_NS
