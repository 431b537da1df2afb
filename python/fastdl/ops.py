"""fastdl.ops: the functional kernels. Arrays in, arrays out.

This is the only module that touches the compiled modules (``fastdl._C`` for
the CPU, ``fastdl._cuda`` for CuPy arrays). NumPy arrays run the C++ kernels;
CuPy arrays run the CUDA kernels on CuPy's current stream; mixing them is a
TypeError. Validation (dtype, rank, shapes, sizes) happens in the bindings and
raises TypeError/ValueError naming the argument.
"""
import os

import numpy as np

# Worker threads spin only briefly after a call, then sleep (GNU OpenMP spins
# ~300,000 rounds by default, which kept the second core busy for milliseconds
# after every call and starved other processes on a shared machine). Read by the
# OpenMP runtime when it loads, with _C just below; a setting of the user's own
# (or a runtime loaded earlier by another library) wins. The C++ side sizes its
# parallel regions for this (cpu/runtime/threading.h).
if "OMP_WAIT_POLICY" not in os.environ and "GOMP_SPINCOUNT" not in os.environ:
    # a short spin (about 0.3 ms of CPU after a call, measured) and then sleep: back-to-back
    # kernels find their workers awake, an idle fastdl leaves the cores to others
    os.environ["GOMP_SPINCOUNT"] = "10000"

from . import _C  # noqa: E402  (after the wait policy)

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


def matmul_kernel(a, b, out=None):
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


def linear_fn(kernel, bias, activation, out, group_rows=0):
    """ops.linear with everything but x bound, for host arrays: f(x) -> out, with
    nothing checked in Python (the kernel still checks every call). group_rows > 0:
    each group of that many rows of x is a product of its own (the bits of a call per
    group, in one call: batched inference)."""
    gemm = _C.gemm
    return lambda x: gemm(x, kernel, None, 1.0, 0.0, False, False, out, bias, activation,
                          group_rows)


def fma_peak_gflops(threads=1, dtype="float32"):
    """This machine's measured peak: GFLOP/s of `threads` threads running an
    FMA-throughput loop (no memory traffic) at the best SIMD level."""
    return _C.fma_peak_gflops(threads, dtype)


def gemm_kernel_info(dtype="float32"):
    """The GEMM micro-kernel (name, MR x NR tile) and cache blocking (MC, KC, NC)
    used at the current SIMD level."""
    return _C.gemm_kernel_info(dtype)


# ----------------------------------------------------------------- convolution and pooling
# (conv2d, conv2d_backward, conv2d_transpose, depthwise_conv2d, max/avg/global pooling
# and their backward passes)
#
# _pair and _padding are the one place where the Keras forms of strides,
# dilation, pool sizes and padding are parsed: both compiled modules take their
# results ((a, b) pairs and ('same' flag, (top, bottom, left, right))) and check
# the geometry with the same code (csrc/bindings_common/checks.h).
def _pair(v, name):
    """int or pair of ints -> (a, b), both positive."""
    if type(v) is tuple and len(v) == 2 and type(v[0]) is int and type(v[1]) is int \
            and v[0] > 0 and v[1] > 0:
        return v    # the form layers store: no work per call
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


def conv2d(x, w, b=None, *, strides=1, padding="valid", dilation_rate=1, activation="linear",
           algorithm="auto"):
    """2-D convolution, channels-last: x (N,H,W,C), w (KH,KW,C,F), b (F,) -> (N,OH,OW,F).

    ``activation='relu'`` fuses a ReLU into the output pass (an extension).
    ``algorithm``: 'direct' (register-blocked kernels reading the taps in place),
    'im2col' (the patch matrix in bounded chunks of the batch, times w by the
    GEMM engine), or 'auto' (the faster one for this layer shape, by a measured
    rule). On the GPU there is one algorithm, im2col + GEMM.
    """
    strides, dilation = _pair(strides, "strides"), _pair(dilation_rate, "dilation_rate")
    same, pads = _padding(padding)
    if type(x) is not _ndarray and _on_gpu(x, w, b):
        _gpu_conv_algorithm(algorithm, "conv2d")
        return _cuda_module().conv2d(x, w, b, strides, dilation, same, pads, activation)
    return _C.conv2d(x, w, b, strides, dilation, same, pads, activation, algorithm)


def conv2d_backward(dy, x, w, *, strides=1, padding="valid", dilation_rate=1, need_dx=True,
                    algorithm="auto", need_dw=True):
    """Gradients (dx, dw, db) of conv2d for the upstream gradient dy (N,OH,OW,F).

    ``need_dx=False`` skips dx (returned as None), e.g. for a first layer whose
    input is the data. ``need_dw=False`` skips dw and db (both None): dx alone,
    for which x's values are not read (only its shape and dtype).
    ``algorithm`` as in conv2d.
    """
    strides, dilation = _pair(strides, "strides"), _pair(dilation_rate, "dilation_rate")
    same, pads = _padding(padding)
    if type(x) is not _ndarray and _on_gpu(dy, x, w):
        _gpu_conv_algorithm(algorithm, "conv2d_backward")
        return _cuda_module().conv2d_backward(dy, x, w, strides, dilation, same, pads,
                                              bool(need_dx), bool(need_dw))
    return _C.conv2d_backward(dy, x, w, strides, dilation, same, pads, bool(need_dx), algorithm,
                              bool(need_dw))


def conv2d_relu_max_pool2d(x, w, b=None, *, strides=1, padding="valid", dilation_rate=1,
                           pool_size=2):
    """``max_pool2d(conv2d(x, w, b, activation='relu', ...), pool_size,
    return_argmax=True)`` in one pass (an extension, CPU arrays): returns
    ``(y, argmax)``, the same bits, without storing the convolution's output.
    The pooling windows have strides = pool_size and 'valid' padding, at most
    127 taps. Its backward pass is conv2d_relu_max_pool2d_backward.
    """
    geometry = _conv_pool_args("conv2d_relu_max_pool2d", "conv2d and max_pool2d", (x, w, b),
                               strides, padding, dilation_rate, pool_size)
    return _C.conv2d_relu_max_pool2d(x, w, b, *geometry)


def _conv_pool_args(op, instead, arrays, strides, padding, dilation_rate, pool_size):
    """The conv + pool ops' geometry arguments (strides, dilation, same, pads, pool);
    they take CPU arrays only (`instead`: the ops to run on a GPU)."""
    if any(type(a) is not _ndarray for a in arrays) and _on_gpu(*arrays):
        raise NotImplementedError(f"{op}: CPU arrays only; on a GPU run {instead}")
    same, pads = _padding(padding)
    return (_pair(strides, "strides"), _pair(dilation_rate, "dilation_rate"), same, pads,
            _pair(pool_size, "pool_size"))


def conv2d_relu_max_pool2d_backward(dy, argmax, x, w, *, strides=1, padding="valid",
                                    dilation_rate=1, pool_size=2, need_dx=True, need_db=True):
    """Gradients ``(dx, dw, db)`` of conv2d_relu_max_pool2d for the upstream
    gradient dy of its pooled output and its argmax codes (an extension, CPU
    arrays): for finite x and w the same bits as ``max_pool2d_backward(dy, z,
    relu=True, argmax=argmax)`` (z the convolution's output) followed by
    conv2d_backward, without storing that gradient where the convolution's
    backward pass runs by bands. There the rows and columns the pooling drops
    are skipped, so an Inf or NaN of x that only they read does not make dw
    NaN. ``need_dx=False`` gives dx as None (a first layer), and
    ``need_db=False`` db (a layer without bias).
    """
    geometry = _conv_pool_args("conv2d_relu_max_pool2d_backward",
                               "max_pool2d_backward and conv2d_backward", (dy, x, w), strides,
                               padding, dilation_rate, pool_size)
    return _C.conv2d_relu_max_pool2d_backward(dy, argmax, x, w, *geometry, bool(need_dx),
                                              bool(need_db))


def conv_transpose_length(n, kernel, stride, padding, output_padding=None, dilation=1):
    """Output length of a transposed convolution along one axis (Keras' rule):
    without output_padding 'valid' gives n*stride + max(k - stride, 0) and 'same'
    n*stride; with it, (n - 1)*stride + k - 2*pad + output_padding, pad = 0
    ('valid') or k // 2 ('same'); k is the dilated kernel extent."""
    if n is None:
        return None
    k = (kernel - 1) * dilation + 1
    if output_padding is None:
        return n * stride + max(k - stride, 0) if padding == "valid" else n * stride
    pad = 0 if padding == "valid" else k // 2
    return (n - 1) * stride + k - 2 * pad + output_padding


def _transpose_shape(x, w, strides, padding, output_padding, op):
    if getattr(x, "ndim", None) != 4 or getattr(w, "ndim", None) != 4:
        raise ValueError(f"{op}: x must be 4-D (N, H, W, C_in) and w 4-D (KH, KW, C_out, C_in), "
                         f"got shapes {getattr(x, 'shape', None)} and {getattr(w, 'shape', None)}")
    if not isinstance(padding, str) or padding.lower() not in ("valid", "same"):
        raise ValueError(f"{op}: padding must be 'valid' or 'same', got {padding!r}")
    if w.shape[3] != x.shape[3]:
        raise ValueError(f"{op}: x has {x.shape[3]} channels (shape {tuple(x.shape)}) but w "
                         f"expects {w.shape[3]} (shape {tuple(w.shape)}, (KH, KW, C_out, C_in))")
    if output_padding is not None:
        output_padding = _pair_nonneg(output_padding, "output_padding")
        for o, s in zip(output_padding, strides):
            if o >= s:
                raise ValueError(f"{op}: output_padding {output_padding} must be smaller than "
                                 f"strides {strides}")
    op_ = output_padding or (None, None)
    word = padding.lower()
    out, pads = [], []
    for i in range(2):
        n, k, s = x.shape[i + 1], w.shape[i], strides[i]
        length = conv_transpose_length(n, k, s, word, op_[i])
        # The output is a window of the full transposed convolution ((n-1)*s + k long),
        # starting `lo` in (Keras' rule, the one of its JAX and PyTorch backends); as
        # conv2d's input gradient that is conv2d padding (lo, hi) on an input `length` long.
        lo = 0
        if word == "same":
            pad_len = s + k - 2 if op_[i] is None else k + k % 2 - 2 + op_[i]
            lo = k - 1 - min(pad_len // 2 + pad_len % 2, k - 1)
        out.append(length)
        pads.append((lo, max((n - 1) * s + k - length - lo, 0)))
    return (x.shape[0], out[0], out[1], w.shape[2]), tuple(pads)


def _pair_nonneg(v, name):
    """int or pair of ints -> (a, b), both >= 0."""
    if _is_int(v):
        p = (int(v), int(v))
    elif isinstance(v, (tuple, list)) and len(v) == 2 and all(_is_int(e) for e in v):
        p = (int(v[0]), int(v[1]))
    else:
        raise TypeError(f"{name} must be an int or a pair of ints, got {v!r}")
    if min(p) < 0:
        raise ValueError(f"{name} must be non-negative, got {v!r}")
    return p


def conv2d_transpose(x, w, b=None, *, strides=1, padding="valid", output_padding=None,
                     activation="linear", algorithm="auto"):
    """Transposed 2-D convolution, channels-last: x (N,H,W,C_in), w (KH,KW,C_out,C_in)
    (Keras' Conv2DTranspose layout), b (C_out,) -> (N,OH,OW,C_out), OH by
    conv_transpose_length. It is conv2d's input gradient for a conv2d from
    (N,OH,OW,C_out) to x's shape (the same kernels run it); ``activation``
    'linear' or 'relu'."""
    strides = _pair(strides, "strides")
    out, pads = _transpose_shape(x, w, strides, padding, output_padding, "conv2d_transpose")
    if activation not in ("linear", "relu"):
        raise ValueError(f"conv2d_transpose: activation must be 'linear' or 'relu', got "
                         f"{activation!r}")
    from . import _device
    xp = _device.xp(x)
    shape_only = xp.empty(out, dtype=x.dtype)  # conv2d's x: only its shape and dtype are read
    y = conv2d_backward(x, shape_only, w, strides=strides, padding=pads, need_dw=False,
                        algorithm=algorithm)[0]
    if b is not None:
        y += b
    if activation == "relu":
        xp.maximum(y, 0, out=y)
    return y


def conv2d_transpose_backward(dy, x, w, *, strides=1, padding="valid", output_padding=None,
                              need_dx=True, algorithm="auto"):
    """Gradients (dx, dw, db) of conv2d_transpose for dy (N,OH,OW,C_out): dx is conv2d
    of dy, dw conv2d's weight gradient with x as its upstream gradient."""
    strides = _pair(strides, "strides")
    out, pads = _transpose_shape(x, w, strides, padding, output_padding,
                                 "conv2d_transpose_backward")
    if tuple(dy.shape) != tuple(out):
        raise ValueError(f"conv2d_transpose_backward: dy must have the output shape {out}, "
                         f"got {tuple(dy.shape)}")
    dx = conv2d(dy, w, strides=strides, padding=pads, algorithm=algorithm) if need_dx else None
    _, dw, _ = conv2d_backward(x, dy, w, strides=strides, padding=pads, need_dx=False,
                               algorithm=algorithm)
    db = dy.sum(axis=(0, 1, 2))
    return dx, dw, db


def depthwise_conv2d(x, w, b=None, *, strides=1, padding="valid", dilation_rate=1,
                     activation="linear"):
    """Depthwise 2-D convolution, channels-last: x (N,H,W,C), w (KH,KW,C,M) (M the
    depth multiplier), b (C*M,) -> (N,OH,OW,C*M); channel c*M+m of the output is
    channel c of x convolved with w[:, :, c, m]. ``activation`` 'linear' or 'relu'."""
    strides, dilation = _pair(strides, "strides"), _pair(dilation_rate, "dilation_rate")
    same, pads = _padding(padding)
    if type(x) is not _ndarray and _on_gpu(x, w, b):
        return _cuda_module().depthwise_conv2d(x, w, b, strides, dilation, same, pads,
                                               activation)
    return _C.depthwise_conv2d(x, w, b, strides, dilation, same, pads, activation)


def depthwise_conv2d_backward(dy, x, w, *, strides=1, padding="valid", dilation_rate=1,
                              need_dx=True):
    """Gradients (dx, dw, db) of depthwise_conv2d for dy (N,OH,OW,C*M); need_dx=False
    skips dx (None)."""
    strides, dilation = _pair(strides, "strides"), _pair(dilation_rate, "dilation_rate")
    same, pads = _padding(padding)
    if type(x) is not _ndarray and _on_gpu(dy, x, w):
        return _cuda_module().depthwise_conv2d_backward(dy, x, w, strides, dilation, same, pads,
                                                        bool(need_dx))
    return _C.depthwise_conv2d_backward(dy, x, w, strides, dilation, same, pads, bool(need_dx))


def _gpu_conv_algorithm(algorithm, op):
    """The GPU runs im2col + GEMM only: 'auto' and 'im2col' select it."""
    if algorithm in ("auto", "im2col"):
        return
    if algorithm == "direct":
        raise ValueError(f"{op}: algorithm 'direct' is CPU-only; the GPU runs 'im2col'")
    raise ValueError(f"{op}: unknown algorithm {algorithm!r} (expected 'auto', 'direct' or "
                     "'im2col')")


def _pool(name, arrays, pool_size, strides, padding, **kw):
    """Run pooling op ``name`` on ``arrays`` (x, or dy and x): on the GPU when they live there."""
    pool = _pair(pool_size, "pool_size")
    st = pool if strides is None else _pair(strides, "strides")
    same, pads = _padding(padding)
    mod = _C
    if type(arrays[-1]) is not _ndarray and _on_gpu(*arrays):
        mod = _cuda_module()
    return getattr(mod, name)(*arrays, pool, st, same, pads, **kw)


def max_pool2d(x, pool_size=2, strides=None, padding="valid", *, return_argmax=False):
    """Max pooling, channels-last (N,H,W,C) -> (N,OH,OW,C); strides None = pool_size.

    ``return_argmax=True`` (an extension, CPU arrays, windows of at most 127 taps):
    returns ``(y, argmax)``, argmax a uint8 array shaped like y naming the tap
    (``kh * pool_w + kw``) of each window's first maximum, +128 where that maximum
    is not positive, 255 where it is NaN. Given to max_pool2d_backward, it makes
    the backward pass a scatter of dy that does not read x.
    """
    if not return_argmax:
        return _pool("max_pool2d", (x,), pool_size, strides, padding)
    _argmax_on_cpu("max_pool2d", x)
    return _pool("max_pool2d", (x,), pool_size, strides, padding, return_argmax=True)


def max_pool2d_backward(dy, x, *, pool_size=2, strides=None, padding="valid", relu=False,
                        argmax=None):
    """dx of max_pool2d: dy goes to the first maximum of each window (TensorFlow's ties).

    ``relu=True`` (an extension): x is the output of a ReLU, and the result is the
    gradient of the ReLU's input, ``dx * (x > 0)``, in the same pass.
    ``argmax`` (an extension): the codes of ``max_pool2d(x, ..., return_argmax=True)``;
    the same dx without reading x's values.
    """
    if argmax is None:
        return _pool("max_pool2d_backward", (dy, x), pool_size, strides, padding,
                     relu=bool(relu))
    _argmax_on_cpu("max_pool2d_backward", dy, x, argmax)
    return _pool("max_pool2d_backward", (dy, x), pool_size, strides, padding, relu=bool(relu),
                 argmax=argmax)


def _argmax_on_cpu(op, *arrays):
    if any(type(a) is not _ndarray for a in arrays) and _on_gpu(*arrays):
        raise NotImplementedError(f"{op}: argmax codes are computed on the CPU only; on a GPU "
                                  f"the backward pass recomputes the maximum from x")


def avg_pool2d(x, pool_size=2, strides=None, padding="valid"):
    """Average pooling, channels-last; padding is not counted in the average."""
    return _pool("avg_pool2d", (x,), pool_size, strides, padding)


def avg_pool2d_backward(dy, x, *, pool_size=2, strides=None, padding="valid"):
    """dx of avg_pool2d."""
    return _pool("avg_pool2d_backward", (dy, x), pool_size, strides, padding)


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
# Whole sequences at once, Keras weight layouts, x (N, T, I), states (N, U); an initial state
# (h0, c0) of None means zeros, on both backends.
# Every *_backward takes dhs as (N, T, U) (a gradient for every step) or (N, U)
# (the gradient of the last step only, for return_sequences=False).
def simple_rnn(x, h0, kernel, recurrent_kernel, bias, *, activation="tanh"):
    """hs (N, T, U): h_t = act(x_t @ kernel + h_{t-1} @ recurrent_kernel + bias).

    kernel (I, U), recurrent_kernel (U, U), bias (U,); activation 'tanh' or 'relu'.
    """
    if type(x) is not _ndarray and _on_gpu(x, h0, kernel, recurrent_kernel, bias):
        return _cuda_module().simple_rnn(x, h0, kernel, recurrent_kernel, bias, activation)
    return _C.simple_rnn(x, h0, kernel, recurrent_kernel, bias, activation)


def simple_rnn_backward(dhs, x, h0, kernel, recurrent_kernel, hs, *, activation="tanh",
                        need_dx=True):
    """(dx, dh0, dkernel, drecurrent_kernel, dbias) from dhs and the forward's hs.

    ``need_dx=False`` skips dx (returned as None), e.g. for a first layer.
    """
    if type(x) is not _ndarray and _on_gpu(dhs, x, h0, kernel, recurrent_kernel, hs):
        return _cuda_module().simple_rnn_backward(dhs, x, h0, kernel, recurrent_kernel, hs,
                                                  activation, bool(need_dx))
    return _C.simple_rnn_backward(dhs, x, h0, kernel, recurrent_kernel, hs, activation,
                                  bool(need_dx))


def lstm(x, h0, c0, kernel, recurrent_kernel, bias, *, return_cache=False):
    """(hs, c_T), or (hs, c_T, cache) with return_cache=True (for lstm_backward).

    kernel (I, 4U), recurrent_kernel (U, 4U), bias (4U,); gates i, f, c, o (Keras order).
    cache (N, T, 5U) holds the activated gates and the cell state of every step.
    """
    if type(x) is not _ndarray and _on_gpu(x, h0, c0, kernel, recurrent_kernel, bias):
        return _cuda_module().lstm(x, h0, c0, kernel, recurrent_kernel, bias, return_cache)
    return _C.lstm(x, h0, c0, kernel, recurrent_kernel, bias, return_cache)


def lstm_backward(dhs, dc_T, x, h0, c0, kernel, recurrent_kernel, hs, cache, *, need_dx=True):
    """(dx, dh0, dc0, dkernel, drecurrent_kernel, dbias); dc_T may be None (zero).
    ``need_dx=False`` skips dx (returned as None)."""
    if type(x) is not _ndarray and _on_gpu(dhs, dc_T, x, h0, c0, kernel, recurrent_kernel, hs,
                                           cache):
        return _cuda_module().lstm_backward(dhs, dc_T, x, h0, c0, kernel, recurrent_kernel, hs,
                                            cache, bool(need_dx))
    return _C.lstm_backward(dhs, dc_T, x, h0, c0, kernel, recurrent_kernel, hs, cache,
                            bool(need_dx))


def gru(x, h0, kernel, recurrent_kernel, bias, *, return_cache=False):
    """hs (N, T, U), or (hs, cache) with return_cache=True (for gru_backward).

    Keras GRU with reset_after=True: kernel (I, 3U), recurrent_kernel (U, 3U), gates z, r, h;
    bias (2, 3U), row 0 for the input projection, row 1 for the recurrent one.
    cache (N, T, 4U) holds z, r, the candidate and its recurrent projection per step.
    """
    if type(x) is not _ndarray and _on_gpu(x, h0, kernel, recurrent_kernel, bias):
        return _cuda_module().gru(x, h0, kernel, recurrent_kernel, bias, return_cache)
    return _C.gru(x, h0, kernel, recurrent_kernel, bias, return_cache)


def gru_backward(dhs, x, h0, kernel, recurrent_kernel, bias, hs, cache, *, need_dx=True):
    """(dx, dh0, dkernel, drecurrent_kernel, dbias); dbias is (2, 3U) like bias.
    ``need_dx=False`` skips dx (returned as None)."""
    if type(x) is not _ndarray and _on_gpu(dhs, x, h0, kernel, recurrent_kernel, bias, hs, cache):
        return _cuda_module().gru_backward(dhs, x, h0, kernel, recurrent_kernel, bias, hs, cache,
                                           bool(need_dx))
    return _C.gru_backward(dhs, x, h0, kernel, recurrent_kernel, bias, hs, cache, bool(need_dx))


# ----------------------------------------------------------------- end recurrent


# ----------------------------------------------------------------- activations, losses, optimizers
# (relu/sigmoid/tanh/softmax/log_softmax, dropout, losses, optimizer updates)
#
# Every op takes float32 or float64 NumPy arrays (CuPy arrays go to the CUDA
# twin of the same name) and accepts ``out=`` to write into a preallocated
# array (same shape and dtype, C-contiguous; it may be the input itself).
# Backward entry points take the forward OUTPUT y, which layers keep anyway.


def relu_kernel(x, *, out=None):
    """max(x, 0), element-wise."""
    if type(x) is not _ndarray and _on_gpu(x, out):
        return _cuda_module().relu(x, out=out)
    return _C.activation(x, "relu", out)


def sigmoid_kernel(x, *, out=None):
    """1 / (1 + exp(-x)), element-wise and overflow-free."""
    if type(x) is not _ndarray and _on_gpu(x, out):
        return _cuda_module().sigmoid(x, out=out)
    return _C.activation(x, "sigmoid", out)


def tanh_kernel(x, *, out=None):
    if type(x) is not _ndarray and _on_gpu(x, out):
        return _cuda_module().tanh(x, out=out)
    return _C.activation(x, "tanh", out)


def activation_backward(dy, y, activation, *, out=None):
    """dL/dx of y = act(x) from dy and the forward output y; activation is
    'relu', 'sigmoid', 'tanh' or 'linear'."""
    if type(dy) is not _ndarray and _on_gpu(dy, y, out):
        return _cuda_module().activation_backward(dy, y, activation, out=out)
    return _C.activation_backward(dy, y, activation, out)


def relu_backward(dy, y, *, out=None):
    return activation_backward(dy, y, "relu", out=out)


def sigmoid_backward(dy, y, *, out=None):
    return activation_backward(dy, y, "sigmoid", out=out)


def tanh_backward(dy, y, *, out=None):
    return activation_backward(dy, y, "tanh", out=out)


def _softmax_axis(x, axis, name):
    nd = getattr(x, "ndim", 0)
    if nd == 0:
        raise ValueError(f"{name}: x must have at least one dimension, got a scalar")
    if not -nd <= axis < nd:
        raise ValueError(f"{name}: axis {axis} is out of range for an array of {nd} dimensions")
    return axis % nd


def _softmax_call(fn, x, axis, log, out, name):
    ax = _softmax_axis(x, axis, name)
    if ax == x.ndim - 1:
        return fn(x, log, out)
    # Move the axis last, run the row kernel, move it back.
    y = fn(_np_moveaxis(x, ax, -1), log, None)
    y = _np_moveaxis(y, -1, ax)
    if out is not None:
        np.copyto(out, y)
        return out
    return np.ascontiguousarray(y)


_np_moveaxis = np.moveaxis


def softmax_kernel(x, axis=-1, *, out=None):
    """exp(x - max) / sum(exp(x - max)) along axis (stable)."""
    if type(x) is not _ndarray and _on_gpu(x, out):
        return _cuda_module().softmax(x, axis, out=out)
    if axis == -1 and x.ndim:
        return _C.softmax(x, False, out)
    return _softmax_call(_C.softmax, x, axis, False, out, "softmax")


def softmax_fn(out):
    """softmax_kernel over the last axis into out, for host arrays: f(x) -> out."""
    softmax = _C.softmax
    return lambda x: softmax(x, False, out)


def log_softmax_kernel(x, axis=-1, *, out=None):
    """x - logsumexp(x) along axis (stable)."""
    if type(x) is not _ndarray and _on_gpu(x, out):
        return _cuda_module().log_softmax(x, axis, out=out)
    return _softmax_call(_C.softmax, x, axis, True, out, "log_softmax")


def _softmax_backward_call(dy, y, axis, log, out, name):
    ax = _softmax_axis(dy, axis, name)
    if ax == dy.ndim - 1:
        return _C.softmax_backward(dy, y, log, out)
    dx = _C.softmax_backward(_np_moveaxis(dy, ax, -1), _np_moveaxis(y, ax, -1), log, None)
    dx = _np_moveaxis(dx, -1, ax)
    if out is not None:
        np.copyto(out, dx)
        return out
    return np.ascontiguousarray(dx)


def softmax_backward(dy, y, axis=-1, *, out=None):
    """dL/dx of y = softmax(x, axis) from dy and y: y * (dy - sum(dy * y))."""
    if type(dy) is not _ndarray and _on_gpu(dy, y, out):
        return _cuda_module().softmax_backward(dy, y, axis, out=out)
    return _softmax_backward_call(dy, y, axis, False, out, "softmax_backward")


def log_softmax_backward(dy, y, axis=-1, *, out=None):
    """dL/dx of y = log_softmax(x, axis) from dy and y: dy - exp(y) * sum(dy)."""
    if type(dy) is not _ndarray and _on_gpu(dy, y, out):
        return _cuda_module().log_softmax_backward(dy, y, axis, out=out)
    return _softmax_backward_call(dy, y, axis, True, out, "log_softmax_backward")


def dropout(x, rate, seed, *, out=None):
    """Inverted dropout: x * keep / (1 - rate), keep[i] = uniform(seed, i) >= rate.

    The mask is a pure function of (seed, element index): the same seed gives
    the same mask on any thread count, and dropout_backward rebuilds it.
    """
    rate, seed = float(rate), int(seed) & 0xFFFFFFFFFFFFFFFF  # for both modules
    if type(x) is not _ndarray and _on_gpu(x, out):
        return _cuda_module().dropout(x, rate, seed, out=out)
    return _C.dropout(x, rate, seed, False, out)


def dropout_backward(dy, rate, seed, *, out=None):
    """dL/dx of dropout(x, rate, seed): dy masked and scaled the same way."""
    rate, seed = float(rate), int(seed) & 0xFFFFFFFFFFFFFFFF
    if type(dy) is not _ndarray and _on_gpu(dy, out):
        return _cuda_module().dropout_backward(dy, rate, seed, out=out)
    return _C.dropout(dy, rate, seed, True, out)


def _embedding_ids(ids):
    """Token ids as an integer array: integer arrays as they are, floats that hold
    whole numbers (Keras accepts them) as int64; any other value is a ValueError."""
    if not hasattr(ids, "dtype"):
        ids = np.asarray(ids)
    kind = ids.dtype.kind
    if kind in "iu":
        return ids
    if kind == "b":
        return ids.astype(np.int64)
    if kind == "f":
        xp = np if type(ids) is _ndarray else _array_module(ids)
        if ids.size and not bool(xp.all(xp.isfinite(ids) & (ids == xp.floor(ids)))):
            raise ValueError("embedding: float token ids must hold whole numbers, got "
                             "non-integral or non-finite values")
        return ids.astype(np.int64)
    raise TypeError(f"embedding: ids must be integers (token ids), got dtype {ids.dtype}")


def _array_module(a):
    """The module of a's array type (numpy, cupy)."""
    import importlib
    return importlib.import_module(type(a).__module__.split(".")[0])


def embedding(ids, embeddings):
    """embeddings[ids]: a row of the (V, D) table per token id; ids.shape + (D,).

    ids are integers (or floats holding whole numbers) in [0, V); an id outside
    raises IndexError naming it and the table size (nothing is read out of bounds).
    """
    ids = _embedding_ids(ids)
    if type(embeddings) is not _ndarray and _on_gpu(ids, embeddings):
        return _cuda_module().embedding(ids, embeddings)
    return _C.embedding(ids, embeddings)


def embedding_backward(dy, ids, input_dim, *, out=None):
    """dL/dembeddings (input_dim, D) for dL/dy of embedding(ids, embeddings): each row
    of dy added into the row its id names (deterministic for any thread count);
    ``out=`` receives it."""
    ids = _embedding_ids(ids)
    if type(dy) is not _ndarray and _on_gpu(dy, ids, out):
        return _cuda_module().embedding_backward(dy, ids, int(input_dim), out)
    return _C.embedding_backward(dy, ids, int(input_dim), out)


def sparse_softmax_cross_entropy(logits, labels, *, out=None):
    """Fused softmax + cross-entropy against integer labels, numerically stable.

    logits (N, C) float; labels (N,) integers in [0, C) (ValueError otherwise).
    Returns (mean_loss, dlogits) with dlogits = (softmax(logits) - onehot) / N,
    the gradient of the mean loss; ``out=`` receives dlogits.
    """
    if type(logits) is not _ndarray and _on_gpu(logits, labels, out):
        return _cuda_module().sparse_softmax_cross_entropy(logits, labels, out=out)
    loss, d, _ = _C.sparse_softmax_cross_entropy(logits, labels, out, True)
    return loss, d


def _sparse_xent(logits, labels, out=None, want_grad=True):
    """(mean_loss, dlogits or None, number of rows whose argmax is the label): the
    training step's fused loss + accuracy."""
    if type(logits) is not _ndarray and _on_gpu(logits, labels, out):
        return _cuda_module().sparse_xent(logits, labels, out, want_grad)
    return _C.sparse_softmax_cross_entropy(logits, labels, out, want_grad)


def _loss_kernel(kind, y_pred, y_true, out, want_grad=True, eps=1e-7):
    if type(y_pred) is not _ndarray and _on_gpu(y_pred, y_true, out):
        return _cuda_module().loss(kind, y_pred, y_true, out, want_grad, eps)
    return _C.loss(kind, y_pred, y_true, out, want_grad, eps)


def softmax_cross_entropy(logits, targets, *, out=None):
    """Fused softmax + cross-entropy against target distributions (one-hot or soft)
    along the last axis. Returns (mean over rows, dlogits)."""
    return _loss_kernel("softmax_xent", logits, targets, out)


def sigmoid_cross_entropy(logits, targets, *, out=None):
    """Fused sigmoid + binary cross-entropy, element-wise, stable.
    Returns (mean over elements, dlogits)."""
    return _loss_kernel("sigmoid_xent", logits, targets, out)


def categorical_crossentropy_kernel(y_pred, y_true, *, out=None, epsilon=1e-7):
    """Keras' categorical cross-entropy on probabilities (renormalised, clipped).
    Returns (mean over rows, dy_pred)."""
    return _loss_kernel("categorical_xent", y_pred, y_true, out, True, epsilon)


def binary_crossentropy_kernel(y_pred, y_true, *, out=None, epsilon=1e-7):
    """Keras' binary cross-entropy on probabilities (clipped). Returns (mean, dy_pred)."""
    return _loss_kernel("binary_xent", y_pred, y_true, out, True, epsilon)


def mean_squared_error(y_pred, y_true, *, out=None):
    """Returns (mean((y_pred - y_true)**2), dy_pred)."""
    return _loss_kernel("mse", y_pred, y_true, out)


def mean_absolute_error(y_pred, y_true, *, out=None):
    """Returns (mean(|y_pred - y_true|), dy_pred)."""
    return _loss_kernel("mae", y_pred, y_true, out)


def sgd_update(param, grad, m=None, *, learning_rate, momentum=0.0, nesterov=False,
               weight_decay=0.0):
    """One in-place SGD step (Keras 3): p -= lr*wd*p; then p -= lr*g, or with momentum
    m = momentum*m - lr*g; p += m (nesterov: p += momentum*m - lr*g)."""
    lr_wd = learning_rate * (weight_decay or 0.0)
    if type(param) is not _ndarray and _on_gpu(param, grad, m):
        return _cuda_module().sgd_update(param, grad, m, learning_rate, momentum, nesterov, lr_wd)
    _C.sgd_update(param, grad, m, learning_rate, momentum, nesterov, lr_wd)


def adam_update(param, grad, m, v, *, step, learning_rate=0.001, beta_1=0.9, beta_2=0.999,
                epsilon=1e-7, weight_decay=0.0):
    """One in-place Adam/AdamW step (Keras 3), step counted from 1:
    p -= lr*wd*p; m += (g-m)(1-b1); v += (g*g-v)(1-b2);
    p -= lr*sqrt(1-b2**step)/(1-b1**step) * m / (sqrt(v) + eps)."""
    alpha = learning_rate * (1.0 - beta_2 ** step) ** 0.5 / (1.0 - beta_1 ** step)
    lr_wd = learning_rate * (weight_decay or 0.0)
    if type(param) is not _ndarray and _on_gpu(param, grad, m, v):
        return _cuda_module().adam_update(param, grad, m, v, alpha, beta_1, beta_2, epsilon, lr_wd)
    _C.adam_update(param, grad, m, v, alpha, beta_1, beta_2, epsilon, lr_wd)


def adam_update_multi(params, grads, m, v, *, step, learning_rate=0.001, beta_1=0.9,
                      beta_2=0.999, epsilon=1e-7, weight_decay=0.0):
    """adam_update on several parameters (lists of NumPy arrays, one dtype) in one call:
    the threads split all their elements together, and every element gets the bits
    adam_update gives it. weight_decay: one number for all, or one per parameter."""
    alpha = learning_rate * (1.0 - beta_2 ** step) ** 0.5 / (1.0 - beta_1 ** step)
    if isinstance(weight_decay, (list, tuple)):
        lr_wds = [learning_rate * wd if wd else 0.0 for wd in weight_decay]
    else:
        lr_wds = [learning_rate * (weight_decay or 0.0)] * len(params)
    _C.adam_update_multi(_as_list(params), _as_list(grads), _as_list(m), _as_list(v), alpha,
                         beta_1, beta_2, epsilon, lr_wds)


def _as_list(a):
    return a if type(a) is list else list(a)


def rmsprop_update(param, grad, v, momentum_slot=None, *, learning_rate=0.001, rho=0.9,
                   momentum=0.0, epsilon=1e-7, weight_decay=0.0):
    """One in-place RMSprop step (Keras 3): v = rho*v + (1-rho)*g*g;
    inc = lr*g/sqrt(v + eps); p -= inc, or with momentum mom = momentum*mom + inc; p -= mom."""
    lr_wd = learning_rate * (weight_decay or 0.0)
    if type(param) is not _ndarray and _on_gpu(param, grad, v, momentum_slot):
        return _cuda_module().rmsprop_update(param, grad, v, momentum_slot, learning_rate, rho,
                                             momentum, epsilon, lr_wd)
    _C.rmsprop_update(param, grad, v, momentum_slot, learning_rate, rho, momentum, epsilon, lr_wd)


# ----------------------------------------------------------------- batch normalization
# Statistics per channel over every other axis; the kernels take the channel axis last
# (contiguous), so another axis is moved there first (a copy) and back after.
def _bn_axis(x, axis, name):
    nd = np.ndim(x)
    try:
        axis = int(axis)
    except (TypeError, ValueError):
        raise TypeError(f"{name}: axis must be an integer, got {axis!r}") from None
    if nd == 0 or not -nd <= axis < nd:
        raise ValueError(f"{name}: axis {axis} is out of range for an array of shape "
                         f"{tuple(np.shape(x))}")
    return axis % nd


def _bn_call(name, axis, x, others, args, out=None):
    """Run kernel `name` on x with its channel axis last; others: the arrays shaped like x
    that go with it (dy, x of a backward pass). Returns the kernel's result with arrays
    shaped like x moved back."""
    gpu = type(x) is not _ndarray and _on_gpu(x, *others, *[a for a in args
                                                            if hasattr(a, "shape")], out)
    mod = _cuda_module() if gpu else _C
    ax = _bn_axis(x, axis, name)
    last = ax == np.ndim(x) - 1
    if not last:
        xp = _cuda_xp() if gpu else np
        x = xp.moveaxis(x, ax, -1)
        others = [xp.moveaxis(o, ax, -1) for o in others]
    res = getattr(mod, name)(*others, x, *args, **({} if out is None or not last else
                                                   {"out": out}))
    if last:
        return res

    def back(a):
        a = xp.ascontiguousarray(xp.moveaxis(a, -1, ax))
        if out is not None:
            if getattr(out, "dtype", None) != a.dtype or getattr(out, "shape", None) != a.shape:
                raise ValueError(f"{name}: out must be an array of dtype {a.dtype} and shape "
                                 f"{a.shape}")
            out[...] = a
            return out
        return a
    if isinstance(res, tuple):
        return (None if res[0] is None else back(res[0]),) + tuple(res[1:])
    return back(res)


def _cuda_xp():
    import cupy
    return cupy


def batch_norm(x, gamma=None, beta=None, *, axis=-1, epsilon=1e-3, out=None):
    """Batch normalization with the batch's statistics: returns (y, mean, var).

    mean and var (the biased variance) are per channel (the `axis` of x) over every
    other axis; y = (x - mean) / sqrt(var + epsilon) * gamma + beta (gamma, beta: per
    channel, None for 1 and 0). One fused kernel: a pass for the statistics, one for y.
    """
    return _bn_call("batch_norm", axis, x, [], [gamma, beta, float(epsilon)], out)


def batch_norm_inference(x, mean, var, gamma=None, beta=None, *, axis=-1, epsilon=1e-3,
                         out=None):
    """y = (x - mean) / sqrt(var + epsilon) * gamma + beta with given (moving) statistics."""
    return _bn_call("batch_norm_inference", axis, x, [],
                    [mean, var, gamma, beta, float(epsilon)], out)


def batch_norm_backward(dy, x, mean, var, gamma=None, *, axis=-1, epsilon=1e-3,
                        batch_stats=True, need_dx=True, out=None):
    """(dx or None, dgamma, dbeta) of batch_norm (batch_stats=True: mean and var were x's
    own statistics) or of batch_norm_inference (batch_stats=False), from the statistics
    the forward pass used. out: where dx goes (it may be dy)."""
    return _bn_call("batch_norm_backward", axis, x, [dy],
                    [mean, var, gamma, float(epsilon), bool(batch_stats), bool(need_dx)], out)


# ----------------------------------------------------------------- layer normalization
def _ln_module(*arrays):
    return _cuda_module() if _on_gpu(*arrays) else _C


def layer_norm(x, gamma=None, beta=None, *, epsilon=1e-3, rms_scaling=False, out=None):
    """Layer normalization over the last axis: returns (y, mean, inv) with, per row,
    mean and inv = 1 / sqrt(var + epsilon) (biased variance), and
    y = (x - mean) * inv * gamma + beta (gamma, beta: shape (x.shape[-1],), None for 1
    and 0). rms_scaling (Keras 3's LayerNormalization(rms_scaling=True)): the same inv,
    but x is not centered: y = x * inv * gamma + beta. Normalize over several trailing
    axes by reshaping them into one first."""
    return _ln_module(x, gamma, beta, out).layer_norm(x, gamma, beta, float(epsilon),
                                                      bool(rms_scaling), out=out)


def layer_norm_backward(dy, x, mean, inv, gamma=None, *, rms_scaling=False, need_dx=True,
                        out=None):
    """(dx or None, dgamma, dbeta) of layer_norm from its saved mean and inv; out: where dx
    goes (it may be dy)."""
    return _ln_module(dy, x, mean, inv, gamma, out).layer_norm_backward(
        dy, x, mean, inv, gamma, bool(rms_scaling), bool(need_dx), out=out)


# ----------------------------------------------------------------- end activations, losses, optimizers

from ._kops import *  # noqa: E402,F401,F403  the differentiable keras.ops functions


def _symbolic_aware(name, fn):
    """fn, or a graph node when it is called on symbolic tensors (functional API)."""
    from ._symbolic import any_symbolic

    def op(*args, **kwargs):
        if (kwargs and any_symbolic(*args, *kwargs.values())) or any_symbolic(*args):
            from .layers.core import op_on_symbolic
            return op_on_symbolic(name, args, kwargs)
        return fn(*args, **kwargs)
    op.__name__ = op.__qualname__ = name
    op.__doc__ = fn.__doc__
    op.__wrapped__ = fn
    return op


def _wrap_keras_ops():
    from . import _kops
    for name, fn in list(_kops._TABLE.items()):
        if name in ("convert_to_numpy", "stop_gradient", "shape"):
            continue
        wrapped = _symbolic_aware(name, fn)
        _kops._TABLE[name] = wrapped
        if name not in _kops._BUILTIN_NAMED:
            globals()[name] = wrapped


_wrap_keras_ops()


_keras_matmul = matmul
def matmul(x1, x2):
    """Keras' matmul (np.matmul semantics, differentiable; fastdl.ops' kernel form is
    matmul_kernel). NumPy arrays outside a GradientTape go straight to the GEMM kernel,
    at the kernel form's per-call cost; what it does not take (1-D or N-D operands,
    integers, mixed dtypes) goes through the general op."""
    if type(x1) is _ndarray and type(x2) is _ndarray and not _tape_state.active:
        try:
            return _C.matmul(x1, x2, None)
        except (TypeError, ValueError):
            pass
    return _keras_matmul(x1, x2)


from ._tape import _state as _tape_state  # noqa: E402
