// _cuda simple_rnn / lstm / gru and their backward passes: the shared checks
// (bindings_common/checks.h), scratch from CuPy, then the launchers in cuda/rnn.h.
// h0 / c0 may be None (zeros), as on the CPU module.
//
// Caches (what the forward pass keeps for the backward pass of the same backend):
//   lstm: (N,T,5U) activated gates i,f,g,o and the cell state c (the CPU's layout)
//   gru:  (N,T,4U) z, r, hh and the recurrent candidate part rh (the CPU's layout)
#include <algorithm>
#include <string>

#include "bindings_cuda/cuda_array.h"
#include "cuda/nn/nn.h"
#include "cuda/rnn/rnn.h"

namespace fastdl::bind_cuda {
namespace {

using Dims = checks::RnnDims;

Act parse_act(const std::string& s) { return checks::parse_rnn_act<Act>(s); }

// x, kernel and recurrent_kernel (every recurrent op takes them), checked and
// made contiguous, and their dims.
struct RnnArgs {
  DevArray x, k, rk;
  Dims d;
};

RnnArgs rnn_args(const char* op, py::handle x_h, py::handle k_h, py::handle rk_h, int gates) {
  RnnArgs a;
  a.x = device_array(x_h, "x");
  a.k = device_array(k_h, "kernel");
  a.rk = device_array(rk_h, "recurrent_kernel");
  a.d = checks::rnn_dims(op, a.x.view(), a.k.view(), a.rk.view(), gates);
  a.x = contiguous(a.x, "x");
  a.k = contiguous(a.k, "kernel");
  a.rk = contiguous(a.rk, "recurrent_kernel");
  return a;
}

// An initial state (h0, c0): (N, U) of x's dtype, or None for zeros.
DevArray state(const char* op, py::handle h, const char* name, const RnnArgs& a) {
  if (h.is_none()) return zeros({a.d.N, a.d.U}, a.d.code);
  DevArray s = device_array(h, name);
  checks::rnn_state(op, s.view(), name, a.d, a.x.view());
  return contiguous(s, name);
}

// An optional state gradient (dc_T): None stays absent.
DevArray opt_state(const char* op, py::handle h, const char* name, const RnnArgs& a) {
  if (h.is_none()) return DevArray{};
  return state(op, h, name, a);
}

DevArray bias_arg(const char* op, py::handle h, const RnnArgs& a, int gates, bool gru) {
  if (h.is_none()) return DevArray{};
  DevArray b = device_array(h, "bias");
  checks::rnn_bias(op, b.view(), a.d, gates, gru, a.x.view());
  return contiguous(b, "bias");
}

// A saved forward output: hs (N,T,U) or cache (N,T,cols).
DevArray saved(const char* op, py::handle h, const char* name, const RnnArgs& a, int64_t cols) {
  DevArray s = device_array(h, name);
  checks::rnn_seq(op, s.view(), name, a.d, cols, a.x.view());
  return contiguous(s, name);
}

// dhs (N,T,U) or (N,U); *seq says which.
DevArray dhs_arg(const char* op, py::handle h, const RnnArgs& a, bool* seq) {
  DevArray s = device_array(h, "dhs");
  *seq = checks::rnn_dhs(op, s.view(), a.d, a.x.view());
  return contiguous(s, "dhs");
}

#define FASTDL_DISPATCH(code, CALL) \
  ((code) == 'f' ? ([&] { using T = float; return CALL; })() : ([&] { using T = double; return CALL; })())

// ------------------------------------------------------------ SimpleRNN
py::object simple_rnn_entry(py::handle x_h, py::handle h0_h, py::handle k_h, py::handle rk_h,
                            py::handle b_h, const std::string& activation) {
  const char* op = "simple_rnn";
  Act act = parse_act(activation);
  RnnArgs a = rnn_args(op, x_h, k_h, rk_h, 1);
  const DevArray &x = a.x, &k = a.k, &rk = a.rk;
  const Dims& d = a.d;
  DevArray h0 = state(op, h0_h, "h0", a), b = bias_arg(op, b_h, a, 1, false);
  DevArray hs = empty({d.N, d.T, d.U}, d.code);
  cudaStream_t s = current_stream();
  bool tf32 = tf32_enabled();
  cudaError_t err;
  {
    py::gil_scoped_release nogil;
    err = FASTDL_DISPATCH(d.code, cuda::simple_rnn<T>(hs.data<T>(), x.data<const T>(),
                                                      h0.data<const T>(), k.data<const T>(),
                                                      rk.data<const T>(), b.data<const T>(), d.N,
                                                      d.T, d.I, d.U, act, tf32, s));
  }
  check_cuda(err, "simple_rnn");
  return hs.obj;
}

// A gradient the caller did not ask for (need_dx=False) comes back as None.
py::object dx_or_none(const DevArray& dx) {
  return dx.obj ? dx.obj : py::none();
}

py::tuple simple_rnn_backward_entry(py::handle dhs_h, py::handle x_h, py::handle h0_h,
                                    py::handle k_h, py::handle rk_h, py::handle hs_h,
                                    const std::string& activation, bool need_dx) {
  const char* op = "simple_rnn_backward";
  Act act = parse_act(activation);
  RnnArgs a = rnn_args(op, x_h, k_h, rk_h, 1);
  const DevArray &x = a.x, &k = a.k, &rk = a.rk;
  const Dims& d = a.d;
  DevArray h0 = state(op, h0_h, "h0", a);
  DevArray hs = saved(op, hs_h, "hs", a, d.U);
  bool seq;
  DevArray dhs = dhs_arg(op, dhs_h, a, &seq);
  DevArray dx = need_dx ? empty(x.shape, d.code) : DevArray();
  DevArray dh0 = empty({d.N, d.U}, d.code), dk = empty(k.shape, d.code),
           drk = empty(rk.shape, d.code), db = empty({d.U}, d.code);
  DevArray dz = empty({d.N, d.T, d.U}, d.code), hprev = empty({d.N, d.T, d.U}, d.code);
  DevArray partial = empty({cuda::sum_rows_partials(d.N * d.T), d.U}, d.code);
  const int64_t work_elems = cuda::rnn_weight_grad_work(d.N * d.T, d.I, d.U, 1);
  DevArray work = workspace(work_elems, d.code);
  cudaStream_t s = current_stream();
  bool tf32 = tf32_enabled();
  cudaError_t err;
  {
    py::gil_scoped_release nogil;
    err = FASTDL_DISPATCH(
        d.code, cuda::simple_rnn_backward<T>(
                    dx.data<T>(), dh0.data<T>(), dk.data<T>(), drk.data<T>(), db.data<T>(),
                    dhs.data<const T>(), seq, x.data<const T>(), h0.data<const T>(),
                    k.data<const T>(), rk.data<const T>(), hs.data<const T>(), dz.data<T>(),
                    hprev.data<T>(), partial.data<T>(), work.data<T>(), work_elems, d.N, d.T,
                    d.I, d.U, act, tf32, s));
  }
  check_cuda(err, "simple_rnn_backward");
  return py::make_tuple(dx_or_none(dx), dh0.obj, dk.obj, drk.obj, db.obj);
}

// ------------------------------------------------------------ LSTM
py::tuple lstm_entry(py::handle x_h, py::handle h0_h, py::handle c0_h, py::handle k_h,
                     py::handle rk_h, py::handle b_h, bool return_cache) {
  const char* op = "lstm";
  RnnArgs a = rnn_args(op, x_h, k_h, rk_h, 4);
  const DevArray &x = a.x, &k = a.k, &rk = a.rk;
  const Dims& d = a.d;
  DevArray h0 = state(op, h0_h, "h0", a), c0 = state(op, c0_h, "c0", a);
  DevArray b = bias_arg(op, b_h, a, 4, false);
  DevArray hs = empty({d.N, d.T, d.U}, d.code), c_last = empty({d.N, d.U}, d.code);
  DevArray cache = empty({d.N, d.T, 5 * d.U}, d.code);
  cudaStream_t s = current_stream();
  bool tf32 = tf32_enabled();
  cudaError_t err;
  {
    py::gil_scoped_release nogil;
    err = FASTDL_DISPATCH(
        d.code, cuda::lstm<T>(hs.data<T>(), c_last.data<T>(), cache.data<T>(), x.data<const T>(), h0.data<const T>(), c0.data<const T>(),
                              k.data<const T>(), rk.data<const T>(), b.data<const T>(), d.N, d.T,
                              d.I, d.U, tf32, s));
  }
  check_cuda(err, "lstm");
  if (return_cache) return py::make_tuple(hs.obj, c_last.obj, cache.obj);
  return py::make_tuple(hs.obj, c_last.obj);
}

py::tuple lstm_backward_entry(py::handle dhs_h, py::handle dc_h, py::handle x_h, py::handle h0_h,
                              py::handle c0_h, py::handle k_h, py::handle rk_h, py::handle hs_h,
                              py::handle cache_h, bool need_dx) {
  const char* op = "lstm_backward";
  RnnArgs a = rnn_args(op, x_h, k_h, rk_h, 4);
  const DevArray &x = a.x, &k = a.k, &rk = a.rk;
  const Dims& d = a.d;
  DevArray h0 = state(op, h0_h, "h0", a), c0 = state(op, c0_h, "c0", a);
  DevArray dc_last = opt_state(op, dc_h, "dc_T", a);
  DevArray hs = saved(op, hs_h, "hs", a, d.U);
  DevArray cache = saved(op, cache_h, "cache", a, 5 * d.U);
  bool seq;
  DevArray dhs = dhs_arg(op, dhs_h, a, &seq);
  const int64_t G = 4 * d.U;
  DevArray dx = need_dx ? empty(x.shape, d.code) : DevArray();
  DevArray dh0 = empty({d.N, d.U}, d.code), dc0 = empty({d.N, d.U}, d.code),
           dk = empty(k.shape, d.code),
           drk = empty(rk.shape, d.code), db = empty({G}, d.code);
  DevArray dz = empty({d.N, d.T, G}, d.code), hprev = empty({d.N, d.T, d.U}, d.code);
  DevArray partial = empty({cuda::sum_rows_partials(d.N * d.T), G}, d.code);
  const int64_t work_elems = cuda::rnn_weight_grad_work(d.N * d.T, d.I, d.U, 4);
  DevArray work = workspace(work_elems, d.code);
  cudaStream_t s = current_stream();
  bool tf32 = tf32_enabled();
  cudaError_t err;
  {
    py::gil_scoped_release nogil;
    err = FASTDL_DISPATCH(
        d.code,
        cuda::lstm_backward<T>(dx.data<T>(), dh0.data<T>(), dc0.data<T>(), dk.data<T>(),
                               drk.data<T>(), db.data<T>(), dhs.data<const T>(), seq,
                               dc_last.data<const T>(), x.data<const T>(), h0.data<const T>(),
                               c0.data<const T>(), k.data<const T>(), rk.data<const T>(),
                               hs.data<const T>(), cache.data<const T>(),
                               dz.data<T>(), hprev.data<T>(), partial.data<T>(),
                               work.data<T>(), work_elems, d.N, d.T, d.I, d.U, tf32, s));
  }
  check_cuda(err, "lstm_backward");
  return py::make_tuple(dx_or_none(dx), dh0.obj, dc0.obj, dk.obj, drk.obj, db.obj);
}

// ------------------------------------------------------------ GRU
py::object gru_entry(py::handle x_h, py::handle h0_h, py::handle k_h, py::handle rk_h,
                     py::handle b_h, bool return_cache) {
  const char* op = "gru";
  RnnArgs a = rnn_args(op, x_h, k_h, rk_h, 3);
  const DevArray &x = a.x, &k = a.k, &rk = a.rk;
  const Dims& d = a.d;
  DevArray h0 = state(op, h0_h, "h0", a), b = bias_arg(op, b_h, a, 3, true);
  DevArray hs = empty({d.N, d.T, d.U}, d.code);
  DevArray cache;
  if (return_cache) cache = empty({d.N, d.T, 4 * d.U}, d.code);
  DevArray xz = empty({d.N, d.T, 3 * d.U}, d.code), rec = empty({d.N, 3 * d.U}, d.code);
  cudaStream_t s = current_stream();
  bool tf32 = tf32_enabled();
  cudaError_t err;
  {
    py::gil_scoped_release nogil;
    err = FASTDL_DISPATCH(
        d.code, cuda::gru<T>(hs.data<T>(), cache.data<T>(), x.data<const T>(), h0.data<const T>(),
                             k.data<const T>(), rk.data<const T>(), b.data<const T>(),
                             xz.data<T>(), rec.data<T>(), d.N, d.T, d.I, d.U, tf32, s));
  }
  check_cuda(err, "gru");
  if (return_cache) return py::make_tuple(hs.obj, cache.obj);
  return hs.obj;
}

py::tuple gru_backward_entry(py::handle dhs_h, py::handle x_h, py::handle h0_h, py::handle k_h,
                             py::handle rk_h, py::handle b_h, py::handle hs_h, py::handle cache_h,
                             bool need_dx) {
  const char* op = "gru_backward";
  RnnArgs a = rnn_args(op, x_h, k_h, rk_h, 3);
  const DevArray &x = a.x, &k = a.k, &rk = a.rk;
  const Dims& d = a.d;
  DevArray h0 = state(op, h0_h, "h0", a);
  bias_arg(op, b_h, a, 3, true);  // checked; the backward pass does not need it
  DevArray hs = saved(op, hs_h, "hs", a, d.U);
  DevArray cache = saved(op, cache_h, "cache", a, 4 * d.U);
  bool seq;
  DevArray dhs = dhs_arg(op, dhs_h, a, &seq);
  const int64_t G = 3 * d.U;
  DevArray dx = need_dx ? empty(x.shape, d.code) : DevArray();
  DevArray dh0 = empty({d.N, d.U}, d.code), dk = empty(k.shape, d.code),
           drk = empty(rk.shape, d.code), db = empty({2, G}, d.code);
  DevArray dzx = empty({d.N, d.T, G}, d.code), dzr = empty({d.N, d.T, G}, d.code),
           hprev = empty({d.N, d.T, d.U}, d.code);
  DevArray partial = empty({cuda::sum_rows_partials(d.N * d.T), G}, d.code);
  const int64_t work_elems = cuda::rnn_weight_grad_work(d.N * d.T, d.I, d.U, 3);
  DevArray work = workspace(work_elems, d.code);
  cudaStream_t s = current_stream();
  bool tf32 = tf32_enabled();
  cudaError_t err;
  {
    py::gil_scoped_release nogil;
    err = FASTDL_DISPATCH(
        d.code, cuda::gru_backward<T>(dx.data<T>(), dh0.data<T>(), dk.data<T>(), drk.data<T>(),
                                      db.data<T>(), dhs.data<const T>(), seq, x.data<const T>(),
                                      h0.data<const T>(), k.data<const T>(), rk.data<const T>(),
                                      hs.data<const T>(), cache.data<const T>(), dzx.data<T>(),
                                      dzr.data<T>(), hprev.data<T>(), partial.data<T>(),
                                      work.data<T>(), work_elems, d.N, d.T, d.I, d.U, tf32, s));
  }
  check_cuda(err, "gru_backward");
  return py::make_tuple(dx_or_none(dx), dh0.obj, dk.obj, drk.obj, db.obj);
}

}  // namespace

void bind_cuda_rnn(py::module_& m) {
  m.def("simple_rnn", &simple_rnn_entry, py::arg("x"), py::arg("h0"), py::arg("kernel"),
        py::arg("recurrent_kernel"), py::arg("bias") = py::none(), py::arg("activation") = "tanh",
        "x (N,T,I) -> hs (N,T,U); h0 None means zeros");
  m.def("simple_rnn_backward", &simple_rnn_backward_entry, py::arg("dhs"), py::arg("x"),
        py::arg("h0"), py::arg("kernel"), py::arg("recurrent_kernel"), py::arg("hs"),
        py::arg("activation") = "tanh", py::arg("need_dx") = true,
        "-> (dx, dh0, dkernel, drecurrent_kernel, dbias); dx is None without need_dx");
  m.def("lstm", &lstm_entry, py::arg("x"), py::arg("h0"), py::arg("c0"), py::arg("kernel"),
        py::arg("recurrent_kernel"), py::arg("bias") = py::none(), py::arg("return_cache") = false,
        "-> (hs, c_T) or (hs, c_T, cache)");
  m.def("lstm_backward", &lstm_backward_entry, py::arg("dhs"), py::arg("dc_T"), py::arg("x"),
        py::arg("h0"), py::arg("c0"), py::arg("kernel"), py::arg("recurrent_kernel"),
        py::arg("hs"), py::arg("cache"), py::arg("need_dx") = true,
        "-> (dx, dh0, dc0, dkernel, drecurrent_kernel, dbias); dx is None without need_dx");
  m.def("gru", &gru_entry, py::arg("x"), py::arg("h0"), py::arg("kernel"),
        py::arg("recurrent_kernel"), py::arg("bias") = py::none(), py::arg("return_cache") = false,
        "Keras GRU (reset_after=True) -> hs or (hs, cache)");
  m.def("gru_backward", &gru_backward_entry, py::arg("dhs"), py::arg("x"), py::arg("h0"),
        py::arg("kernel"), py::arg("recurrent_kernel"), py::arg("bias"), py::arg("hs"),
        py::arg("cache"), py::arg("need_dx") = true,
        "-> (dx, dh0, dkernel, drecurrent_kernel, dbias (2, 3U)); dx is None without need_dx");
}

}  // namespace fastdl::bind_cuda
