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
def _pair(v, name):
    """int or pair of ints -> (a, b), both positive."""
    if isinstance(v, (int, np.integer)) and not isinstance(v, bool):
        p = (int(v), int(v))
    elif (isinstance(v, (tuple, list)) and len(v) == 2
          and all(isinstance(e, (int, np.integer)) and not isinstance(e, bool) for e in v)):
        p = (int(v[0]), int(v[1]))
    else:
        raise TypeError(f"{name} must be an int or a pair of ints, got {v!r}")
    if p[0] < 1 or p[1] < 1:
        raise ValueError(f"{name} must be positive, got {v!r}")
    return p


def _is_int(v):
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


def _padding(p):
    """Keras padding spec -> (same, (top, bottom, left, right)).

    'valid' / 'same' (any case), an int, (ph, pw) or ((top, bottom), (left, right)).
    """
    if isinstance(p, str):
        word = p.lower()
        if word == "valid":
            return False, (0, 0, 0, 0)
        if word == "same":
            return True, (0, 0, 0, 0)
        raise ValueError(f"padding must be 'valid', 'same', an int or pairs, got {p!r}")
    if _is_int(p):
        pads = (int(p),) * 4
    elif isinstance(p, (tuple, list)) and len(p) == 2 and all(_is_int(e) for e in p):
        pads = (int(p[0]), int(p[0]), int(p[1]), int(p[1]))
    elif (isinstance(p, (tuple, list)) and len(p) == 2
          and all(isinstance(e, (tuple, list)) and len(e) == 2 and all(_is_int(i) for i in e)
                  for e in p)):
        pads = (int(p[0][0]), int(p[0][1]), int(p[1][0]), int(p[1][1]))
    else:
        raise TypeError(f"padding must be 'valid', 'same', an int, (ph, pw) or "
                        f"((top, bottom), (left, right)), got {p!r}")
    if min(pads) < 0:
        raise ValueError(f"padding must be non-negative, got {p!r}")
    return False, pads


def conv2d(x, w, b=None, *, strides=1, padding="valid", dilation_rate=1, activation="linear"):
    """2-D convolution, channels-last: x (N,H,W,C), w (KH,KW,C,F), b (F,) -> (N,OH,OW,F).

    ``activation='relu'`` fuses a ReLU into the output pass (an extension).
    """
    if type(x) is not _ndarray and _on_gpu(x, w, b):
        return _cuda_module().conv2d(x, w, b, strides, padding, dilation_rate, activation)
    same, pads = _padding(padding)
    return _C.conv2d(x, w, b, _pair(strides, "strides"), _pair(dilation_rate, "dilation_rate"),
                     same, pads, activation)


def conv2d_backward(dy, x, w, *, strides=1, padding="valid", dilation_rate=1, need_dx=True):
    """Gradients (dx, dw, db) of conv2d for the upstream gradient dy (N,OH,OW,F).

    ``need_dx=False`` skips dx (returned as None), e.g. for a first layer whose
    input is the data.
    """
    if type(x) is not _ndarray and _on_gpu(dy, x, w):
        return _cuda_module().conv2d_backward(dy, x, w, strides, padding, dilation_rate, need_dx)
    same, pads = _padding(padding)
    return _C.conv2d_backward(dy, x, w, _pair(strides, "strides"),
                              _pair(dilation_rate, "dilation_rate"), same, pads, bool(need_dx))


def _pool_args(pool_size, strides, padding):
    pool = _pair(pool_size, "pool_size")
    st = pool if strides is None else _pair(strides, "strides")
    same, pads = _padding(padding)
    return pool, st, same, pads


def max_pool2d(x, pool_size=2, strides=None, padding="valid"):
    """Max pooling, channels-last (N,H,W,C) -> (N,OH,OW,C); strides None = pool_size."""
    if type(x) is not _ndarray and _on_gpu(x):
        return _cuda_module().max_pool2d(x, pool_size, strides, padding)
    return _C.max_pool2d(x, *_pool_args(pool_size, strides, padding))


def max_pool2d_backward(dy, x, *, pool_size=2, strides=None, padding="valid"):
    """dx of max_pool2d: dy goes to the first maximum of each window (TensorFlow's ties)."""
    if type(x) is not _ndarray and _on_gpu(dy, x):
        return _cuda_module().max_pool2d_backward(dy, x, pool_size, strides, padding)
    return _C.max_pool2d_backward(dy, x, *_pool_args(pool_size, strides, padding))


def avg_pool2d(x, pool_size=2, strides=None, padding="valid"):
    """Average pooling, channels-last; padding is not counted in the average."""
    if type(x) is not _ndarray and _on_gpu(x):
        return _cuda_module().avg_pool2d(x, pool_size, strides, padding)
    return _C.avg_pool2d(x, *_pool_args(pool_size, strides, padding))


def avg_pool2d_backward(dy, x, *, pool_size=2, strides=None, padding="valid"):
    """dx of avg_pool2d."""
    if type(x) is not _ndarray and _on_gpu(dy, x):
        return _cuda_module().avg_pool2d_backward(dy, x, pool_size, strides, padding)
    return _C.avg_pool2d_backward(dy, x, *_pool_args(pool_size, strides, padding))


def global_avg_pool2d(x):
    """Mean over H and W: (N,H,W,C) -> (N,C)."""
    if type(x) is not _ndarray and _on_gpu(x):
        return _cuda_module().global_avg_pool2d(x)
    return _C.global_avg_pool2d(x)


def global_avg_pool2d_backward(dy, x):
    """dx (N,H,W,C) of global_avg_pool2d for dy (N,C)."""
    if type(x) is not _ndarray and _on_gpu(dy, x):
        return _cuda_module().global_avg_pool2d_backward(dy, x)
    return _C.global_avg_pool2d_backward(dy, x)


# ----------------------------------------------------------------- end convolution and pooling


# ----------------------------------------------------------------- recurrent
# (simple_rnn, lstm, gru and their training/backward entry points)

# ----------------------------------------------------------------- end recurrent


# ----------------------------------------------------------------- activations, losses, optimizers
# (relu/sigmoid/tanh/softmax/log_softmax, dropout, losses, optimizer updates)

# ----------------------------------------------------------------- end activations, losses, optimizers
