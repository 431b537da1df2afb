// _cuda simple_rnn / lstm / gru and their backward passes: validation, scratch
// from CuPy, then the launchers in cuda/rnn.h.
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

struct Dims { int64_t N, T, I, U; char code; };

Act parse_act(const std::string& s) {
  if (s == "tanh") return Act::tanh;
  if (s == "relu") return Act::relu;
  throw py::value_error("simple_rnn: activation must be 'tanh' or 'relu', got '" + s + "'");
}

// x (N,T,I), kernel (I, G*U), recurrent_kernel (U, G*U).
Dims rnn_dims(const DevArray& x, const DevArray& k, const DevArray& rk, int G, const char* op) {
  Dims d;
  d.code = float_code(x, "x");
  require_ndim(x, 3, "x");
  require_same_dtype(k, "kernel", x, "x");
  require_same_dtype(rk, "recurrent_kernel", x, "x");
  require_ndim(k, 2, "kernel");
  d.N = x.shape[0]; d.T = x.shape[1]; d.I = x.shape[2];
  if (k.shape[0] != d.I || k.shape[1] % G != 0)
    throw py::value_error(std::string(op) + ": kernel must have shape (" + std::to_string(d.I) +
                          ", " + std::to_string(G) + "*units) for x " + shape_str(x) + ", got " +
                          shape_str(k));
  d.U = k.shape[1] / G;
  require_shape(rk, {d.U, G * d.U}, "recurrent_kernel");
  checked_mul(checked_mul(checked_mul(d.N, d.T, op), G, op), std::max<int64_t>(d.U, d.I), op);
  return d;
}

// h0 / c0: (N,U), or None for zeros.
DevArray state(py::handle h, const char* name, const Dims& d, const DevArray& x) {
  if (h.is_none()) return zeros({d.N, d.U}, d.code);
  DevArray a = contiguous_array(h, name);
  require_same_dtype(a, name, x, "x");
  require_shape(a, {d.N, d.U}, name);
  return a;
}

DevArray opt_bias(py::handle h, const std::vector<int64_t>& shape, const DevArray& x) {
  if (h.is_none()) return DevArray{};
  DevArray b = contiguous_array(h, "bias");
  require_same_dtype(b, "bias", x, "x");
  require_shape(b, shape, "bias");
  return b;
}

// dhs (N,T,U) or (N,U); returns whether it is the whole sequence.
bool check_dhs(const DevArray& dhs, const Dims& d, const DevArray& x) {
  require_same_dtype(dhs, "dhs", x, "x");
  if (dhs.ndim() == 3) { require_shape(dhs, {d.N, d.T, d.U}, "dhs"); return true; }
  if (dhs.ndim() == 2) { require_shape(dhs, {d.N, d.U}, "dhs"); return false; }
  throw py::value_error("dhs must be (N, T, U) or (N, U), got " + shape_str(dhs));
}

DevArray same_as(py::handle h, const char* name, const std::vector<int64_t>& shape,
                 const DevArray& x) {
  DevArray a = contiguous_array(h, name);
  require_same_dtype(a, name, x, "x");
  require_shape(a, shape, name);
  return a;
}

#define FASTDL_DISPATCH(code, CALL) \
  ((code) == 'f' ? ([&] { using T = float; return CALL; })() : ([&] { using T = double; return CALL; })())

// ------------------------------------------------------------ SimpleRNN
py::object simple_rnn_entry(py::handle x_h, py::object h0_h, py::handle k_h, py::handle rk_h,
                            py::object b_h, const std::string& activation) {
  DevArray x = contiguous_array(x_h, "x"), k = contiguous_array(k_h, "kernel"),
           rk = contiguous_array(rk_h, "recurrent_kernel");
  Dims d = rnn_dims(x, k, rk, 1, "simple_rnn");
  Act act = parse_act(activation);
  DevArray h0 = state(h0_h, "h0", d, x), b = opt_bias(b_h, {d.U}, x);
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

py::tuple simple_rnn_backward_entry(py::handle dhs_h, py::handle x_h, py::object h0_h,
                                    py::handle k_h, py::handle rk_h, py::handle hs_h,
                                    const std::string& activation, bool need_dx) {
  DevArray x = contiguous_array(x_h, "x"), k = contiguous_array(k_h, "kernel"),
           rk = contiguous_array(rk_h, "recurrent_kernel");
  Dims d = rnn_dims(x, k, rk, 1, "simple_rnn_backward");
  Act act = parse_act(activation);
  DevArray h0 = state(h0_h, "h0", d, x);
  DevArray hs = same_as(hs_h, "hs", {d.N, d.T, d.U}, x);
  DevArray dhs = contiguous_array(dhs_h, "dhs");
  bool seq = check_dhs(dhs, d, x);
  DevArray dx = need_dx ? empty(x.shape, d.code) : DevArray();
  DevArray dh0 = empty({d.N, d.U}, d.code), dk = empty(k.shape, d.code),
           drk = empty(rk.shape, d.code), db = empty({d.U}, d.code);
  DevArray dz = empty({d.N, d.T, d.U}, d.code), hprev = empty({d.N, d.T, d.U}, d.code);
  DevArray partial = empty({cuda::sum_rows_partials(d.N * d.T), d.U}, d.code);
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
                    hprev.data<T>(), partial.data<T>(), d.N, d.T, d.I, d.U, act, tf32, s));
  }
  check_cuda(err, "simple_rnn_backward");
  return py::make_tuple(dx_or_none(dx), dh0.obj, dk.obj, drk.obj, db.obj);
}

// ------------------------------------------------------------ LSTM
py::tuple lstm_entry(py::handle x_h, py::object h0_h, py::object c0_h, py::handle k_h,
                     py::handle rk_h, py::object b_h, bool return_cache) {
  DevArray x = contiguous_array(x_h, "x"), k = contiguous_array(k_h, "kernel"),
           rk = contiguous_array(rk_h, "recurrent_kernel");
  Dims d = rnn_dims(x, k, rk, 4, "lstm");
  DevArray h0 = state(h0_h, "h0", d, x), c0 = state(c0_h, "c0", d, x);
  DevArray b = opt_bias(b_h, {4 * d.U}, x);
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

py::tuple lstm_backward_entry(py::handle dhs_h, py::object dc_h, py::handle x_h, py::object h0_h,
                              py::object c0_h, py::handle k_h, py::handle rk_h, py::handle hs_h,
                              py::handle cache_h, bool need_dx) {
  DevArray x = contiguous_array(x_h, "x"), k = contiguous_array(k_h, "kernel"),
           rk = contiguous_array(rk_h, "recurrent_kernel");
  Dims d = rnn_dims(x, k, rk, 4, "lstm_backward");
  DevArray h0 = state(h0_h, "h0", d, x), c0 = state(c0_h, "c0", d, x);
  DevArray hs = same_as(hs_h, "hs", {d.N, d.T, d.U}, x);
  DevArray cache = same_as(cache_h, "cache", {d.N, d.T, 5 * d.U}, x);
  DevArray dhs = contiguous_array(dhs_h, "dhs");
  bool seq = check_dhs(dhs, d, x);
  DevArray dc_last;
  if (!dc_h.is_none()) dc_last = same_as(dc_h, "dc_T", {d.N, d.U}, x);
  const int64_t G = 4 * d.U;
  DevArray dx = need_dx ? empty(x.shape, d.code) : DevArray();
  DevArray dh0 = empty({d.N, d.U}, d.code), dc0 = empty({d.N, d.U}, d.code),
           dk = empty(k.shape, d.code),
           drk = empty(rk.shape, d.code), db = empty({G}, d.code);
  DevArray dz = empty({d.N, d.T, G}, d.code), hprev = empty({d.N, d.T, d.U}, d.code);
  DevArray partial = empty({cuda::sum_rows_partials(d.N * d.T), G}, d.code);
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
                               dz.data<T>(), hprev.data<T>(), partial.data<T>(), d.N, d.T, d.I,
                               d.U, tf32, s));
  }
  check_cuda(err, "lstm_backward");
  return py::make_tuple(dx_or_none(dx), dh0.obj, dc0.obj, dk.obj, drk.obj, db.obj);
}

// ------------------------------------------------------------ GRU
py::object gru_entry(py::handle x_h, py::object h0_h, py::handle k_h, py::handle rk_h,
                     py::object b_h, bool return_cache) {
  DevArray x = contiguous_array(x_h, "x"), k = contiguous_array(k_h, "kernel"),
           rk = contiguous_array(rk_h, "recurrent_kernel");
  Dims d = rnn_dims(x, k, rk, 3, "gru");
  DevArray h0 = state(h0_h, "h0", d, x), b = opt_bias(b_h, {2, 3 * d.U}, x);
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

py::tuple gru_backward_entry(py::handle dhs_h, py::handle x_h, py::object h0_h, py::handle k_h,
                             py::handle rk_h, py::object b_h, py::handle hs_h, py::handle cache_h,
                             bool need_dx) {
  DevArray x = contiguous_array(x_h, "x"), k = contiguous_array(k_h, "kernel"),
           rk = contiguous_array(rk_h, "recurrent_kernel");
  Dims d = rnn_dims(x, k, rk, 3, "gru_backward");
  DevArray h0 = state(h0_h, "h0", d, x);
  opt_bias(b_h, {2, 3 * d.U}, x);  // validated; the backward pass does not need it
  DevArray hs = same_as(hs_h, "hs", {d.N, d.T, d.U}, x);
  DevArray cache = same_as(cache_h, "cache", {d.N, d.T, 4 * d.U}, x);
  DevArray dhs = contiguous_array(dhs_h, "dhs");
  bool seq = check_dhs(dhs, d, x);
  const int64_t G = 3 * d.U;
  DevArray dx = need_dx ? empty(x.shape, d.code) : DevArray();
  DevArray dh0 = empty({d.N, d.U}, d.code), dk = empty(k.shape, d.code),
           drk = empty(rk.shape, d.code), db = empty({2, G}, d.code);
  DevArray dzx = empty({d.N, d.T, G}, d.code), dzr = empty({d.N, d.T, G}, d.code),
           hprev = empty({d.N, d.T, d.U}, d.code);
  DevArray partial = empty({cuda::sum_rows_partials(d.N * d.T), G}, d.code);
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
                                      dzr.data<T>(), hprev.data<T>(), partial.data<T>(), d.N, d.T,
                                      d.I, d.U, tf32, s));
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
