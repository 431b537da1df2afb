"""fastdl.ops: the functional kernels. Arrays in, arrays out.

This is the only module that touches the compiled modules (``fastdl._C`` for
the CPU, ``fastdl._cuda`` for CuPy arrays). NumPy arrays run the C++ kernels;
CuPy arrays run the CUDA kernels on CuPy's current stream; mixing them is a
TypeError. Validation (dtype, rank, shapes, sizes) happens in the bindings and
raises TypeError/ValueError naming the argument.
"""
import os

import numpy as np

from . import _C

_ndarray = np.ndarray

# ----------------------------------------------------------------- runtime
set_num_threads = _C.set_num_threads
get_num_threads = _C.get_num_threads
available_cores = _C.available_cores
get_capability = _C.get_capability
supported_capabilities = _C.supported_capabilities
build_info = _C.build_info


def _init_from_env():
    cap = os.environ.get("FASTDL_CPU_CAPABILITY")
    if cap:
        _C.set_capability(cap.strip().lower())  # ValueError at import for an unknown level
    nt = os.environ.get("FASTDL_NUM_THREADS")
    if nt:
        try:
            n = int(nt)
        except ValueError:
            raise ValueError(f"FASTDL_NUM_THREADS must be a positive integer, got {nt!r}") from None
        _C.set_num_threads(n)


_init_from_env()

# ----------------------------------------------------------------- devices
_cuda_state = {"module": None, "reason": None, "loaded": False}


def _cuda_module():
    """fastdl._cuda when it was built and a GPU with CuPy is usable, else None."""
    if not _cuda_state["loaded"]:
        _cuda_state["loaded"] = True
        try:
            import cupy  # noqa: F401
        except Exception as e:  # not installed, or no driver
            _cuda_state["reason"] = f"CuPy is not importable ({type(e).__name__}: {e})"
            return None
        try:
            from . import _cuda
        except ImportError as e:
            reason = _C.build_info()["cuda_build_reason"] or str(e)
            _cuda_state["reason"] = f"fastdl was built without CUDA: {reason}"
            return None
        try:
            count = _cuda.device_count()
        except Exception as e:
            _cuda_state["reason"] = f"the CUDA driver is not usable ({e})"
            return None
        if count < 1:
            _cuda_state["reason"] = "no CUDA device is visible"
            return None
        _cuda_state["module"] = _cuda
    return _cuda_state["module"]


def _cuda_reason():
    _cuda_module()
    return _cuda_state["reason"]


def _is_cupy(a):
    return type(a).__module__.split(".", 1)[0] == "cupy"


def _on_gpu(*arrays):
    """True when the array arguments are CuPy arrays, False when NumPy.

    None entries are ignored. Mixing NumPy and CuPy is a TypeError.
    """
    gpu = cpu = False
    for a in arrays:
        if a is None:
            continue
        if _is_cupy(a):
            gpu = True
        else:
            cpu = True
    if gpu and cpu:
        raise TypeError("arguments mix NumPy and CuPy arrays; move them to one device "
                        "(cupy.asarray / cupy.asnumpy) first")
    if gpu and _cuda_module() is None:
        raise RuntimeError(f"CuPy arrays were given but fastdl's CUDA kernels are not usable: "
                           f"{_cuda_reason()}")
    return gpu


# ----------------------------------------------------------------- gemm
def gemm(a, b, c=None, *, alpha=1.0, beta=0.0, trans_a=False, trans_b=False, out=None):
    """alpha * op(a) @ op(b) + beta * c, with op = transpose when trans_* is set.

    float32 or float64, all arrays the same dtype. beta = 0 ignores c (even NaN
    in c). ``out=`` writes in place (any strides) and returns out. Any strides
    are read in place: a transposed or sliced view is not copied.
    """
    if type(a) is not _ndarray and _on_gpu(a, b, c, out):
        return _cuda_module().gemm(a, b, c, alpha, beta, trans_a, trans_b, out)
    return _C.gemm(a, b, c, alpha, beta, trans_a, trans_b, out)


def matmul(a, b, out=None):
    """2-D a @ b (float32 or float64). ``out=`` writes in place and returns out."""
    if type(a) is not _ndarray and _on_gpu(a, b, out):
        return _cuda_module().matmul(a, b, out)
    return _C.matmul(a, b, out)


def linear(x, kernel, bias=None, *, activation="linear", out=None):
    """act(x @ kernel + bias) in one pass over the output (Dense's forward).

    x (N, I), kernel (I, U), bias (U,) or None, activation 'linear' or 'relu'
    (None means 'linear'). The bias and activation are applied while each tile
    of the result is still in registers.
    """
    if type(x) is not _ndarray and _on_gpu(x, kernel, bias, out):
        return _cuda_module().linear(x, kernel, bias, activation, out)
    return _C.gemm(x, kernel, None, 1.0, 0.0, False, False, out, bias, activation)


def fma_peak_gflops(threads=1, dtype="float32"):
    """This machine's measured peak: GFLOP/s of `threads` threads running an
    FMA-throughput loop (no memory traffic) at the best SIMD level."""
    return _C.fma_peak_gflops(threads, dtype)


def gemm_kernel_info(dtype="float32"):
    """The GEMM micro-kernel (name, MR x NR tile) and cache blocking (MC, KC, NC)
    used at the current SIMD level."""
    return _C.gemm_kernel_info(dtype)


# ----------------------------------------------------------------- convolution and pooling
# (conv2d, conv2d_backward, max/avg/global pooling and their backward passes)

# ----------------------------------------------------------------- end convolution and pooling


# ----------------------------------------------------------------- recurrent
# Whole sequences at once, Keras weight layouts, x (N, T, I), states (N, U).
# Every *_backward takes dhs as (N, T, U) (a gradient for every step) or (N, U)
# (the gradient of the last step only, for return_sequences=False).
def simple_rnn(x, h0, kernel, recurrent_kernel, bias, *, activation="tanh"):
    """hs (N, T, U): h_t = act(x_t @ kernel + h_{t-1} @ recurrent_kernel + bias).

    kernel (I, U), recurrent_kernel (U, U), bias (U,); activation 'tanh' or 'relu'.
    """
    if type(x) is not _ndarray and _on_gpu(x, h0, kernel, recurrent_kernel, bias):
        return _cuda_module().simple_rnn(x, h0, kernel, recurrent_kernel, bias, activation)
    return _C.simple_rnn(x, h0, kernel, recurrent_kernel, bias, activation)


def simple_rnn_backward(dhs, x, h0, kernel, recurrent_kernel, hs, *, activation="tanh"):
    """(dx, dh0, dkernel, drecurrent_kernel, dbias) from dhs and the forward's hs."""
    if type(x) is not _ndarray and _on_gpu(dhs, x, h0, kernel, recurrent_kernel, hs):
        return _cuda_module().simple_rnn_backward(dhs, x, h0, kernel, recurrent_kernel, hs,
                                                  activation)
    return _C.simple_rnn_backward(dhs, x, h0, kernel, recurrent_kernel, hs, activation)


def lstm(x, h0, c0, kernel, recurrent_kernel, bias, *, return_cache=False):
    """(hs, c_T), or (hs, c_T, cache) with return_cache=True (for lstm_backward).

    kernel (I, 4U), recurrent_kernel (U, 4U), bias (4U,); gates i, f, c, o (Keras order).
    cache (N, T, 5U) holds the activated gates and the cell state of every step.
    """
    if type(x) is not _ndarray and _on_gpu(x, h0, c0, kernel, recurrent_kernel, bias):
        return _cuda_module().lstm(x, h0, c0, kernel, recurrent_kernel, bias, return_cache)
    return _C.lstm(x, h0, c0, kernel, recurrent_kernel, bias, return_cache)


def lstm_backward(dhs, dc_T, x, h0, c0, kernel, recurrent_kernel, hs, cache):
    """(dx, dh0, dc0, dkernel, drecurrent_kernel, dbias); dc_T may be None (zero)."""
    if type(x) is not _ndarray and _on_gpu(dhs, dc_T, x, h0, c0, kernel, recurrent_kernel, hs,
                                           cache):
        return _cuda_module().lstm_backward(dhs, dc_T, x, h0, c0, kernel, recurrent_kernel, hs,
                                            cache)
    return _C.lstm_backward(dhs, dc_T, x, h0, c0, kernel, recurrent_kernel, hs, cache)


def gru(x, h0, kernel, recurrent_kernel, bias, *, return_cache=False):
    """hs (N, T, U), or (hs, cache) with return_cache=True (for gru_backward).

    Keras GRU with reset_after=True: kernel (I, 3U), recurrent_kernel (U, 3U), gates z, r, h;
    bias (2, 3U), row 0 for the input projection, row 1 for the recurrent one.
    cache (N, T, 4U) holds z, r, the candidate and its recurrent projection per step.
    """
    if type(x) is not _ndarray and _on_gpu(x, h0, kernel, recurrent_kernel, bias):
        return _cuda_module().gru(x, h0, kernel, recurrent_kernel, bias, return_cache)
    return _C.gru(x, h0, kernel, recurrent_kernel, bias, return_cache)


def gru_backward(dhs, x, h0, kernel, recurrent_kernel, bias, hs, cache):
    """(dx, dh0, dkernel, drecurrent_kernel, dbias); dbias is (2, 3U) like bias."""
    if type(x) is not _ndarray and _on_gpu(dhs, x, h0, kernel, recurrent_kernel, bias, hs, cache):
        return _cuda_module().gru_backward(dhs, x, h0, kernel, recurrent_kernel, bias, hs, cache)
    return _C.gru_backward(dhs, x, h0, kernel, recurrent_kernel, bias, hs, cache)


# ----------------------------------------------------------------- end recurrent


# ----------------------------------------------------------------- activations, losses, optimizers
# (relu/sigmoid/tanh/softmax/log_softmax, dropout, losses, optimizer updates)

# ----------------------------------------------------------------- end activations, losses, optimizers
