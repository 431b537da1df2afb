// ops.simple_rnn / lstm / gru and their backward passes: the shared checks
// (bindings_common/checks.h), then the CPU kernels in csrc/cpu/{simple_rnn,lstm,gru}.cpp.
// h0 / c0 may be None (zeros), as on the CUDA module.
//
// Shapes (Keras layouts; G = 1, 4, 3 gate blocks for SimpleRNN, LSTM, GRU):
//   x (N,T,I), h0 / c0 (N,U), kernel (I,G*U), recurrent_kernel (U,G*U),
//   bias (G*U,) or, for the GRU, (2,3U); hs (N,T,U).
// U is read from recurrent_kernel, N, T and I from x.
#include <string>

#include "bindings/common.h"
#include "bindings_common/checks.h"
#include "cpu/rnn/gru.h"
#include "cpu/rnn/lstm.h"
#include "cpu/rnn/simple_rnn.h"

namespace fastdl::bind {
namespace {

using cpu::RnnActivation;
using Dims = checks::RnnDims;

// x, kernel and recurrent_kernel (every recurrent op takes them) and their dims.
struct RnnArgs {
  py::array x, k, r;  // x, kernel, recurrent_kernel
  View vx;
  Dims d;
};

RnnArgs rnn_args(const char* op, py::handle x_h, py::handle k_h, py::handle r_h, int gates) {
  RnnArgs a;
  a.x = require_array(x_h, "x");
  a.k = require_array(k_h, "kernel");
  a.r = require_array(r_h, "recurrent_kernel");
  a.vx = view_of(a.x);
  a.d = checks::rnn_dims(op, a.vx, view_of(a.k), view_of(a.r), gates);
  return a;
}

// An initial state (h0, c0): (N, U) of x's dtype, or None for zeros.
py::array state(const char* op, py::handle h, const char* name, const RnnArgs& a) {
  if (h.is_none())
    return py::module_::import("numpy").attr("zeros")(py::make_tuple(a.d.N, a.d.U), a.x.dtype());
  py::array s = require_array(h, name);
  checks::rnn_state(op, view_of(s), name, a.d, a.vx);
  return s;
}

// An optional state gradient (dc_T): None stays None.
py::object opt_state(const char* op, py::handle h, const char* name, const RnnArgs& a) {
  if (h.is_none()) return py::none();
  return state(op, h, name, a);
}

py::object bias_arg(const char* op, py::handle h, const RnnArgs& a, int gates, bool gru) {
  if (h.is_none()) return py::none();
  py::array b = require_array(h, "bias");
  checks::rnn_bias(op, view_of(b), a.d, gates, gru, a.vx);
  return b;
}

// A saved forward output: hs (N,T,U) or cache (N,T,cols).
py::array saved(const char* op, py::handle h, const char* name, const RnnArgs& a, int64_t cols) {
  py::array s = require_array(h, name);
  checks::rnn_seq(op, view_of(s), name, a.d, cols, a.vx);
  return s;
}

// dhs (N,T,U) or (N,U); *all_steps says which.
py::array dhs_arg(const char* op, py::handle h, const RnnArgs& a, bool* all_steps) {
  py::array s = require_array(h, "dhs");
  *all_steps = checks::rnn_dhs(op, view_of(s), a.d, a.vx);
  return s;
}

template <typename T>
const T* ptr(const py::array& a) {
  return static_cast<const T*>(a.data());
}
template <typename T>
T* mptr(py::array& a) {
  return static_cast<T*>(a.mutable_data());
}
// C-contiguous copy when needed.
template <typename T>
py::array cont(const py::array& a) {
  return contiguous<T>(a);
}
// Same for an optional argument; None stays None.
template <typename T>
py::object cont(const py::object& a) {
  if (a.is_none()) return a;
  return contiguous<T>(py::reinterpret_borrow<py::array>(a));
}
// An optional array's data, or null for None. Called with the GIL released,
// so it reads the array struct directly instead of making a new reference.
template <typename T>
const T* ptr_or_null(const py::object& a) {
  return a.is_none() ? nullptr : reinterpret_cast<const T*>(py::detail::array_proxy(a.ptr())->data);
}
// The same for an output made by the binding (writeable by construction).
template <typename T>
T* mptr_or_null(const py::object& a) {
  return a.is_none() ? nullptr : reinterpret_cast<T*>(py::detail::array_proxy(a.ptr())->data);
}

// ------------------------------------------------------------ SimpleRNN

template <typename T>
py::array simple_rnn_typed(py::array x, py::array h0, py::array k, py::array r, py::object b,
                           const Dims& d, RnnActivation act) {
  x = cont<T>(x), h0 = cont<T>(h0), k = cont<T>(k), r = cont<T>(r), b = cont<T>(b);
  py::array hs = empty<T>({d.N, d.T, d.U});
  {
    py::gil_scoped_release nogil;
    cpu::Context ctx = make_context();
    cpu::simple_rnn_forward<T>(mptr<T>(hs), ptr<T>(x), ptr<T>(h0), ptr<T>(k), ptr<T>(r),
                               ptr_or_null<T>(b), d.N, d.T, d.I, d.U, act, ctx);
  }
  return hs;
}

py::array simple_rnn_entry(py::handle x_h, py::handle h0_h, py::handle k_h, py::handle r_h,
                           py::handle b_h, const std::string& activation) {
  const char* op = "simple_rnn";
  RnnActivation act = checks::parse_rnn_act<RnnActivation>(activation);
  RnnArgs a = rnn_args(op, x_h, k_h, r_h, 1);
  py::array h0 = state(op, h0_h, "h0", a);
  py::object b = bias_arg(op, b_h, a, 1, false);
  if (a.d.code == 'f') return simple_rnn_typed<float>(a.x, h0, a.k, a.r, b, a.d, act);
  return simple_rnn_typed<double>(a.x, h0, a.k, a.r, b, a.d, act);
}

template <typename T>
py::tuple simple_rnn_backward_typed(py::array dhs, bool all_steps, py::array x, py::array h0,
                                    py::array k, py::array r, py::array hs, const Dims& d,
                                    RnnActivation act, bool need_dx) {
  dhs = cont<T>(dhs), x = cont<T>(x), h0 = cont<T>(h0), k = cont<T>(k), r = cont<T>(r),
  hs = cont<T>(hs);
  py::object dx = need_dx ? py::object(empty<T>({d.N, d.T, d.I})) : py::none();
  py::array dh0 = empty<T>({d.N, d.U});
  py::array dk = empty<T>({d.I, d.U}), dr = empty<T>({d.U, d.U}), db = empty<T>({d.U});
  {
    py::gil_scoped_release nogil;
    cpu::Context ctx = make_context();
    cpu::simple_rnn_backward<T>(mptr_or_null<T>(dx), mptr<T>(dh0), mptr<T>(dk), mptr<T>(dr), mptr<T>(db),
                                ptr<T>(dhs), all_steps, ptr<T>(x), ptr<T>(h0), ptr<T>(k),
                                ptr<T>(r), ptr<T>(hs), d.N, d.T, d.I, d.U, act, ctx);
  }
  return py::make_tuple(dx, dh0, dk, dr, db);
}

py::tuple simple_rnn_backward_entry(py::handle dhs_h, py::handle x_h, py::handle h0_h,
                                    py::handle k_h, py::handle r_h, py::handle hs_h,
                                    const std::string& activation, bool need_dx) {
  const char* op = "simple_rnn_backward";
  RnnActivation act = checks::parse_rnn_act<RnnActivation>(activation);
  RnnArgs a = rnn_args(op, x_h, k_h, r_h, 1);
  py::array h0 = state(op, h0_h, "h0", a);
  py::array hs = saved(op, hs_h, "hs", a, a.d.U);
  bool all_steps;
  py::array dhs = dhs_arg(op, dhs_h, a, &all_steps);
  if (a.d.code == 'f')
    return simple_rnn_backward_typed<float>(dhs, all_steps, a.x, h0, a.k, a.r, hs, a.d, act,
                                            need_dx);
  return simple_rnn_backward_typed<double>(dhs, all_steps, a.x, h0, a.k, a.r, hs, a.d, act,
                                           need_dx);
}

// ------------------------------------------------------------ LSTM

template <typename T>
py::tuple lstm_typed(py::array x, py::array h0, py::array c0, py::array k, py::array r,
                     py::object b, const Dims& d, bool return_cache) {
  x = cont<T>(x), h0 = cont<T>(h0), c0 = cont<T>(c0), k = cont<T>(k), r = cont<T>(r),
  b = cont<T>(b);
  const int64_t cache_n = checks::checked_numel({d.N, d.T, 5, d.U}, "lstm cache");
  py::array hs = empty<T>({d.N, d.T, d.U}), cT = empty<T>({d.N, d.U});
  py::array cache;
  if (return_cache) cache = empty<T>({d.N, d.T, 5 * d.U});
  {
    py::gil_scoped_release nogil;
    cpu::Context ctx = make_context();
    T* pc = return_cache ? mptr<T>(cache) : ctx.arena->alloc<T>(cache_n);
    cpu::lstm_forward<T>(mptr<T>(hs), mptr<T>(cT), pc, ptr<T>(x), ptr<T>(h0), ptr<T>(c0),
                         ptr<T>(k), ptr<T>(r), ptr_or_null<T>(b), d.N, d.T, d.I, d.U, ctx);
  }
  if (return_cache) return py::make_tuple(hs, cT, cache);
  return py::make_tuple(hs, cT);
}

py::tuple lstm_entry(py::handle x_h, py::handle h0_h, py::handle c0_h, py::handle k_h,
                     py::handle r_h, py::handle b_h, bool return_cache) {
  const char* op = "lstm";
  RnnArgs a = rnn_args(op, x_h, k_h, r_h, 4);
  py::array h0 = state(op, h0_h, "h0", a), c0 = state(op, c0_h, "c0", a);
  py::object b = bias_arg(op, b_h, a, 4, false);
  if (a.d.code == 'f') return lstm_typed<float>(a.x, h0, c0, a.k, a.r, b, a.d, return_cache);
  return lstm_typed<double>(a.x, h0, c0, a.k, a.r, b, a.d, return_cache);
}

template <typename T>
py::tuple lstm_backward_typed(py::array dhs, bool all_steps, py::object dcT, py::array x,
                              py::array h0, py::array c0, py::array k, py::array r, py::array hs,
                              py::array cache, const Dims& d, bool need_dx) {
  dhs = cont<T>(dhs), dcT = cont<T>(dcT), x = cont<T>(x), h0 = cont<T>(h0), c0 = cont<T>(c0);
  k = cont<T>(k), r = cont<T>(r), hs = cont<T>(hs), cache = cont<T>(cache);
  const int64_t G = 4 * d.U;
  py::object dx = need_dx ? py::object(empty<T>({d.N, d.T, d.I})) : py::none();
  py::array dh0 = empty<T>({d.N, d.U}), dc0 = empty<T>({d.N, d.U});
  py::array dk = empty<T>({d.I, G}), dr = empty<T>({d.U, G}), db = empty<T>({G});
  {
    py::gil_scoped_release nogil;
    cpu::Context ctx = make_context();
    cpu::lstm_backward<T>(mptr_or_null<T>(dx), mptr<T>(dh0), mptr<T>(dc0), mptr<T>(dk), mptr<T>(dr),
                          mptr<T>(db), ptr<T>(dhs), all_steps, ptr_or_null<T>(dcT), ptr<T>(x),
                          ptr<T>(h0), ptr<T>(c0), ptr<T>(k), ptr<T>(r), ptr<T>(hs),
                          ptr<T>(cache), d.N, d.T, d.I, d.U, ctx);
  }
  return py::make_tuple(dx, dh0, dc0, dk, dr, db);
}

py::tuple lstm_backward_entry(py::handle dhs_h, py::handle dcT_h, py::handle x_h, py::handle h0_h,
                              py::handle c0_h, py::handle k_h, py::handle r_h, py::handle hs_h,
                              py::handle cache_h, bool need_dx) {
  const char* op = "lstm_backward";
  RnnArgs a = rnn_args(op, x_h, k_h, r_h, 4);
  py::array h0 = state(op, h0_h, "h0", a), c0 = state(op, c0_h, "c0", a);
  py::object dcT = opt_state(op, dcT_h, "dc_T", a);
  py::array hs = saved(op, hs_h, "hs", a, a.d.U);
  py::array cache = saved(op, cache_h, "cache", a, 5 * a.d.U);
  bool all_steps;
  py::array dhs = dhs_arg(op, dhs_h, a, &all_steps);
  if (a.d.code == 'f')
    return lstm_backward_typed<float>(dhs, all_steps, dcT, a.x, h0, c0, a.k, a.r, hs, cache,
                                      a.d, need_dx);
  return lstm_backward_typed<double>(dhs, all_steps, dcT, a.x, h0, c0, a.k, a.r, hs, cache, a.d,
                                     need_dx);
}

// ------------------------------------------------------------ GRU

template <typename T>
py::object gru_typed(py::array x, py::array h0, py::array k, py::array r, py::object b,
                     const Dims& d, bool return_cache) {
  x = cont<T>(x), h0 = cont<T>(h0), k = cont<T>(k), r = cont<T>(r), b = cont<T>(b);
  const int64_t cache_n = checks::checked_numel({d.N, d.T, 4, d.U}, "gru cache");
  py::array hs = empty<T>({d.N, d.T, d.U});
  py::array cache;
  if (return_cache) cache = empty<T>({d.N, d.T, 4 * d.U});
  const T* pb = ptr_or_null<T>(b);
  {
    py::gil_scoped_release nogil;
    cpu::Context ctx = make_context();
    T* pc = return_cache ? mptr<T>(cache) : ctx.arena->alloc<T>(cache_n);
    cpu::gru_forward<T>(mptr<T>(hs), pc, ptr<T>(x), ptr<T>(h0), ptr<T>(k), ptr<T>(r), pb,
                        pb ? pb + 3 * d.U : nullptr, d.N, d.T, d.I, d.U, ctx);
  }
  if (return_cache) return py::make_tuple(hs, cache);
  return hs;
}

py::object gru_entry(py::handle x_h, py::handle h0_h, py::handle k_h, py::handle r_h,
                     py::handle b_h, bool return_cache) {
  const char* op = "gru";
  RnnArgs a = rnn_args(op, x_h, k_h, r_h, 3);
  py::array h0 = state(op, h0_h, "h0", a);
  py::object b = bias_arg(op, b_h, a, 3, true);
  if (a.d.code == 'f') return gru_typed<float>(a.x, h0, a.k, a.r, b, a.d, return_cache);
  return gru_typed<double>(a.x, h0, a.k, a.r, b, a.d, return_cache);
}

template <typename T>
py::tuple gru_backward_typed(py::array dhs, bool all_steps, py::array x, py::array h0,
                             py::array k, py::array r, py::array hs, py::array cache,
                             const Dims& d, bool need_dx) {
  dhs = cont<T>(dhs), x = cont<T>(x), h0 = cont<T>(h0), k = cont<T>(k), r = cont<T>(r);
  hs = cont<T>(hs), cache = cont<T>(cache);
  const int64_t G = 3 * d.U;
  py::object dx = need_dx ? py::object(empty<T>({d.N, d.T, d.I})) : py::none();
  py::array dh0 = empty<T>({d.N, d.U});
  py::array dk = empty<T>({d.I, G}), dr = empty<T>({d.U, G}), db = empty<T>({2, G});
  {
    py::gil_scoped_release nogil;
    cpu::Context ctx = make_context();
    cpu::gru_backward<T>(mptr_or_null<T>(dx), mptr<T>(dh0), mptr<T>(dk), mptr<T>(dr), mptr<T>(db),
                         ptr<T>(dhs), all_steps, ptr<T>(x), ptr<T>(h0), ptr<T>(k), ptr<T>(r),
                         ptr<T>(hs), ptr<T>(cache), d.N, d.T, d.I, d.U, ctx);
  }
  return py::make_tuple(dx, dh0, dk, dr, db);
}

py::tuple gru_backward_entry(py::handle dhs_h, py::handle x_h, py::handle h0_h, py::handle k_h,
                             py::handle r_h, py::handle b_h, py::handle hs_h,
                             py::handle cache_h, bool need_dx) {
  const char* op = "gru_backward";
  RnnArgs a = rnn_args(op, x_h, k_h, r_h, 3);
  py::array h0 = state(op, h0_h, "h0", a);
  bias_arg(op, b_h, a, 3, true);  // checked; the backward pass does not need it
  py::array hs = saved(op, hs_h, "hs", a, a.d.U);
  py::array cache = saved(op, cache_h, "cache", a, 4 * a.d.U);
  bool all_steps;
  py::array dhs = dhs_arg(op, dhs_h, a, &all_steps);
  if (a.d.code == 'f')
    return gru_backward_typed<float>(dhs, all_steps, a.x, h0, a.k, a.r, hs, cache, a.d, need_dx);
  return gru_backward_typed<double>(dhs, all_steps, a.x, h0, a.k, a.r, hs, cache, a.d, need_dx);
}

}  // namespace

void bind_rnn(py::module_& m) {
  m.def("simple_rnn", &simple_rnn_entry, py::arg("x"), py::arg("h0"), py::arg("kernel"),
        py::arg("recurrent_kernel"), py::arg("bias"), py::arg("activation") = "tanh",
        "SimpleRNN over a whole sequence: hs (N,T,U)");
  m.def("simple_rnn_backward", &simple_rnn_backward_entry, py::arg("dhs"), py::arg("x"),
        py::arg("h0"), py::arg("kernel"), py::arg("recurrent_kernel"), py::arg("hs"),
        py::arg("activation") = "tanh", py::arg("need_dx") = true,
        "(dx, dh0, dkernel, drecurrent_kernel, dbias); dx is None without need_dx");
  m.def("lstm", &lstm_entry, py::arg("x"), py::arg("h0"), py::arg("c0"), py::arg("kernel"),
        py::arg("recurrent_kernel"), py::arg("bias"), py::arg("return_cache") = false,
        "LSTM over a whole sequence: (hs, c_T) or (hs, c_T, cache)");
  m.def("lstm_backward", &lstm_backward_entry, py::arg("dhs"), py::arg("dc_T"), py::arg("x"),
        py::arg("h0"), py::arg("c0"), py::arg("kernel"), py::arg("recurrent_kernel"),
        py::arg("hs"), py::arg("cache"), py::arg("need_dx") = true,
        "(dx, dh0, dc0, dkernel, drecurrent_kernel, dbias); dx is None without need_dx");
  m.def("gru", &gru_entry, py::arg("x"), py::arg("h0"), py::arg("kernel"),
        py::arg("recurrent_kernel"), py::arg("bias"), py::arg("return_cache") = false,
        "GRU (reset_after=True) over a whole sequence: hs or (hs, cache)");
  m.def("gru_backward", &gru_backward_entry, py::arg("dhs"), py::arg("x"), py::arg("h0"),
        py::arg("kernel"), py::arg("recurrent_kernel"), py::arg("bias"), py::arg("hs"),
        py::arg("cache"), py::arg("need_dx") = true,
        "(dx, dh0, dkernel, drecurrent_kernel, dbias); dx is None without need_dx");
}

}  // namespace fastdl::bind
