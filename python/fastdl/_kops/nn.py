"""keras.ops' neural-network functions (Keras' ``ops.nn``), differentiable.

relu, sigmoid, tanh, softmax and log_softmax run fastdl's C++ kernels on contiguous
float32/float64 NumPy arrays and NumPy elsewhere. At the kinks (relu at 0, relu6 at 0 and
6, leaky_relu and elu at 0, hard_sigmoid at +-3) the gradient is the one-sided value
TensorFlow uses (relu'(0) = 0).
"""
import numpy as np

from .._tape import Tensor, primitive, recording as _recording, value
from . import numpy as knp
from ._base import FLOATX, float_of, standardize_dtype, to_array, to_device_of, xp_of


from .._device import has_kernels


from ._base import kernels as _k  # noqa: E402



def _kernel_ok(x):
    """A contiguous float array, NumPy or CuPy: fastdl's C++ or CUDA kernel applies."""
    return (x.dtype in (np.float32, np.float64) and x.ndim >= 1 and x.flags.c_contiguous
            and has_kernels(x))


_nd = np.ndarray


def _fast(x):
    """A float NumPy array and no recording tape: the forward alone, at NumPy cost."""
    return type(x) is _nd and x.dtype.kind == "f" and not _recording()


def _unary(name, fwd, dfdx):
    raw = primitive(name, fwd, lambda g, out, x, **kw: g * dfdx(x, out, **kw))

    def op(x, **kw):
        if _fast(x):
            return fwd(x, **kw)
        return raw(x if isinstance(x, Tensor) else float_of(x), **kw)
    op.__name__ = op.__qualname__ = name
    return op


def _relu_fwd(x):
    if _kernel_ok(x):
        return _k().relu_kernel(x)
    return xp_of(x).maximum(x, 0)


def _sigmoid_np(x):
    xp = xp_of(x)
    e = xp.exp(-xp.abs(x))
    return xp.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype, copy=False)


def _sigmoid_fwd(x):
    if _kernel_ok(x):
        return _k().sigmoid_kernel(x)
    return _sigmoid_np(x)


def _tanh_fwd(x):
    if _kernel_ok(x):
        return _k().tanh_kernel(x)
    return xp_of(x).tanh(x)


def _act_vjp(name, dfdx):
    """The C++ activation_backward kernel for float NumPy arrays, NumPy otherwise."""
    def vjp(g, out, x):
        if _kernel_ok(out) and type(g) is np.ndarray and g.dtype == out.dtype:
            return _k().activation_backward(np.ascontiguousarray(g), out, name)
        return g * dfdx(x, out)
    return vjp


def _act(name, fwd, dfdx):
    raw = primitive(name, fwd, _act_vjp(name, dfdx))

    def op(x):
        if _fast(x):
            return fwd(x)
        return raw(x if isinstance(x, Tensor) else float_of(x))
    op.__name__ = op.__qualname__ = name
    return op


_relu = _act("relu", _relu_fwd, lambda x, y: (x > 0).astype(x.dtype))
_sigmoid = _act("sigmoid", _sigmoid_fwd, lambda x, y: y * (1 - y))
_tanh = _act("tanh", _tanh_fwd, lambda x, y: 1 - y * y)


def relu(x):
    return _relu(x)


def sigmoid(x):
    return _marked("sigmoid", _sigmoid(x), x)


def tanh(x):
    return _tanh(x)


relu6 = _unary("relu6", lambda x: xp_of(x).clip(x, 0, 6),
               lambda x, y: ((x > 0) & (x < 6)).astype(x.dtype))


def _softplus_fwd(x):
    return xp_of(x).logaddexp(x, 0).astype(x.dtype, copy=False)


softplus = _unary("softplus", _softplus_fwd, lambda x, y: _sigmoid_np(x))
softsign = _unary("softsign", lambda x: x / (1 + xp_of(x).abs(x)),
                  lambda x, y: 1 / (1 + xp_of(x).abs(x)) ** 2)


def _silu_d(x, y):
    s = _sigmoid_np(x)
    return s * (1 + x * (1 - s))


silu = _unary("silu", lambda x: x * _sigmoid_np(x), _silu_d)


def swish(x):
    return silu(x)


def log_sigmoid(x):
    return knp.negative(softplus(knp.negative(x)))


def _elu_fwd(x, alpha=1.0):
    xp = xp_of(x)
    return xp.where(x > 0, x, alpha * xp.expm1(xp.minimum(x, 0))).astype(x.dtype, copy=False)


def _elu_d(x, y, alpha=1.0):
    xp = xp_of(x)
    return xp.where(x > 0, 1, alpha * xp.exp(xp.minimum(x, 0)))


_elu = _unary("elu", _elu_fwd, _elu_d)


def elu(x, alpha=1.0):
    return _elu(x, alpha=float(alpha))


_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


def selu(x):
    return knp.multiply(elu(x, _SELU_ALPHA), _SELU_SCALE)


_leaky = _unary("leaky_relu", lambda x, negative_slope: xp_of(x).where(
    x > 0, x, negative_slope * x).astype(x.dtype, copy=False),
    lambda x, y, negative_slope: xp_of(x).where(x > 0, 1, negative_slope))


def leaky_relu(x, negative_slope=0.2):
    return _leaky(x, negative_slope=float(negative_slope))


hard_sigmoid = _unary("hard_sigmoid", lambda x: (xp_of(x).clip(x + 3, 0, 6) / 6).astype(
    x.dtype, copy=False), lambda x, y: ((x > -3) & (x < 3)).astype(x.dtype) / 6)


def hard_silu(x):
    return knp.multiply(x, hard_sigmoid(x))


hard_swish = hard_silu


def _erf(x):
    xp = xp_of(x)
    if xp is not np:
        import cupyx.scipy.special
        return cupyx.scipy.special.erf(x)
    try:
        from scipy.special import erf as serf
    except ImportError:  # pragma: no cover - SciPy is optional
        import math
        return np.vectorize(math.erf, otypes=[x.dtype])(x)
    return serf(x).astype(x.dtype, copy=False)


_SQRT_2_PI = np.sqrt(2 / np.pi)


def _gelu_fwd(x, approximate):
    xp = xp_of(x)
    if approximate:
        return (0.5 * x * (1 + xp.tanh(_SQRT_2_PI * (x + 0.044715 * x ** 3)))).astype(
            x.dtype, copy=False)
    return (0.5 * x * (1 + _erf(x / np.sqrt(2)))).astype(x.dtype, copy=False)


def _gelu_d(x, y, approximate):
    xp = xp_of(x)
    if approximate:
        u = _SQRT_2_PI * (x + 0.044715 * x ** 3)
        t = xp.tanh(u)
        return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * _SQRT_2_PI * (1 + 3 * 0.044715 * x * x)
    return 0.5 * (1 + _erf(x / np.sqrt(2))) + x * xp.exp(-0.5 * x * x) / np.sqrt(2 * np.pi)


_gelu = _unary("gelu", _gelu_fwd, _gelu_d)


def gelu(x, approximate=True):
    return _gelu(x, approximate=bool(approximate))


def _glu_check(x, axis):
    x = x if isinstance(x, Tensor) else float_of(x)
    if x.shape[axis] % 2:
        raise ValueError(f"glu: axis {axis} must have an even size, got {x.shape[axis]}")
    return x


def glu(x, axis=-1):
    x = _glu_check(x, axis)
    a, b = knp.split(x, 2, axis=axis)
    return knp.multiply(a, sigmoid(b))


# ------------------------------------------------------------------ softmax
def _ax(x, axis):
    nd = x.ndim
    if nd == 0:
        raise ValueError("softmax: x must have at least one dimension")
    return axis % nd


def _softmax_fwd(x, axis):
    if _kernel_ok(x):
        return _k().softmax_kernel(x, axis)
    xp = xp_of(x)
    e = xp.exp(x - xp.max(x, axis=axis, keepdims=True))
    return e / xp.sum(e, axis=axis, keepdims=True)


def _softmax_vjp(g, out, x, axis):
    if _kernel_ok(out) and type(g) is np.ndarray and g.dtype == out.dtype:
        return _k().softmax_backward(np.ascontiguousarray(g), out, axis)
    return out * (g - (g * out).sum(axis=axis, keepdims=True))


def _log_softmax_fwd(x, axis):
    if _kernel_ok(x):
        return _k().log_softmax_kernel(x, axis)
    xp = xp_of(x)
    z = x - xp.max(x, axis=axis, keepdims=True)
    return z - xp.log(xp.sum(xp.exp(z), axis=axis, keepdims=True))


def _log_softmax_vjp(g, out, x, axis):
    if _kernel_ok(out) and type(g) is np.ndarray and g.dtype == out.dtype:
        return _k().log_softmax_backward(np.ascontiguousarray(g), out, axis)
    return g - xp_of(g).exp(out) * g.sum(axis=axis, keepdims=True)


_softmax = primitive("softmax", _softmax_fwd, _softmax_vjp)
_log_softmax = primitive("log_softmax", _log_softmax_fwd, _log_softmax_vjp)


def softmax(x, axis=-1):
    if _fast(x) and isinstance(axis, int) and x.ndim:
        return _softmax_fwd(x, axis % x.ndim)
    x = x if isinstance(x, Tensor) else float_of(x)
    if isinstance(axis, (tuple, list)):
        # several axes: exp(x - logsumexp over them)
        return knp.exp(knp.subtract(x, knp.logsumexp(x, axis=tuple(axis), keepdims=True)))
    return _marked("softmax", _softmax(x, axis=_ax(x, axis)), x, _ax(x, axis) == x.ndim - 1)


def _marked(act, out, x, last_axis=True):
    """Mark a traced softmax (over the last axis) or sigmoid output with its logits, so a
    cross-entropy loss on it runs the fused stable kernel on x (as for built-in layers)."""
    if last_axis and isinstance(out, Tensor) and isinstance(x, Tensor) and \
            getattr(out.node, "parents", None) is not None:
        out.node.logits = (act, x)
    return out


def log_softmax(x, axis=-1):
    if _fast(x) and isinstance(axis, int) and x.ndim:
        return _log_softmax_fwd(x, axis % x.ndim)
    x = x if isinstance(x, Tensor) else float_of(x)
    if isinstance(axis, (tuple, list)):
        return knp.subtract(x, knp.logsumexp(x, axis=tuple(axis), keepdims=True))
    return _log_softmax(x, axis=_ax(x, axis))


# ------------------------------------------------------------------ one-hot and losses
def one_hot(x, num_classes, axis=-1, dtype=None, sparse=False):
    """Integer classes -> one-hot vectors (float32 unless dtype); indices outside
    [0, num_classes) give all-zero vectors. No gradient."""
    if sparse:
        raise ValueError("one_hot: sparse=True is not supported by fastdl")
    x = to_array(value(x))
    xp = xp_of(x)
    dt = standardize_dtype(dtype) or np.dtype(FLOATX)
    oh = (x[..., None] == xp.arange(int(num_classes))).astype(dt)
    if axis != -1 and axis != x.ndim:
        oh = xp.moveaxis(oh, -1, axis)
    return oh


def multi_hot(inputs, num_classes=None, axis=-1, dtype=None, sparse=False, **kwargs):
    """Multi-hot encoding of integer classes: the one-hot vectors of the last axis OR-ed.
    No gradient."""
    num_classes = num_classes if num_classes is not None else kwargs.get("num_tokens")
    x = to_array(value(inputs))
    if x.ndim == 0:
        x = x.reshape(1)
    oh = one_hot(x, num_classes, dtype=dtype)
    out = xp_of(oh).max(oh, axis=-2) if x.ndim >= 1 else oh
    if axis != -1:
        out = xp_of(out).moveaxis(out, -1, axis)
    return out


_EPSILON = 1e-7


def binary_crossentropy(target, output, from_logits=False):
    """Element-wise binary cross-entropy (no reduction), as Keras computes it: from
    probabilities clipped to [1e-7, 1 - 1e-7], or stably from logits."""
    t = target if isinstance(target, Tensor) else float_of(target)
    o = output if isinstance(output, Tensor) else float_of(output)
    if tuple(t.shape) != tuple(o.shape):
        raise ValueError(f"binary_crossentropy: arguments `target` and `output` must have the "
                         f"same shape, got {tuple(t.shape)} and {tuple(o.shape)}")
    if from_logits:
        # max(o, 0) - o * t + log(1 + exp(-|o|))
        return knp.add(knp.subtract(relu(o), knp.multiply(o, t)),
                       knp.log1p(knp.exp(knp.negative(knp.abs(o)))))
    o = knp.clip(o, _EPSILON, 1.0 - _EPSILON)
    bce = knp.multiply(t, knp.log(o))
    bce = knp.add(bce, knp.multiply(knp.subtract(1, t), knp.log(knp.subtract(1, o))))
    return knp.negative(bce)


def categorical_crossentropy(target, output, from_logits=False, axis=-1):
    """Cross-entropy along axis (that axis reduced), as Keras computes it: probabilities are
    renormalised to sum 1 and clipped to [1e-7, 1 - 1e-7]; logits go through log_softmax."""
    t = target if isinstance(target, Tensor) else float_of(target)
    o = output if isinstance(output, Tensor) else float_of(output)
    if len(t.shape) < 1:
        raise ValueError("categorical_crossentropy: target must have at least one dimension")
    if tuple(t.shape) != tuple(o.shape):
        raise ValueError(f"categorical_crossentropy: target and output must have the same shape, "
                         f"got {tuple(t.shape)} and {tuple(o.shape)}")
    if from_logits:
        log_prob = log_softmax(o, axis=axis)
    else:
        o = knp.divide(o, knp.sum(o, axis=axis, keepdims=True))
        o = knp.clip(o, _EPSILON, 1.0 - _EPSILON)
        log_prob = knp.log(o)
    return knp.negative(knp.sum(knp.multiply(t, log_prob), axis=axis))


def sparse_categorical_crossentropy(target, output, from_logits=False, axis=-1):
    """categorical_crossentropy against integer class indices (target of output's shape
    without the class axis, or with it of size 1)."""
    t = to_array(value(target))
    o = output if isinstance(output, Tensor) else float_of(output)
    if t.ndim == len(o.shape) and t.shape[-1] == 1:
        t = t.reshape(t.shape[:-1])
    if t.ndim != len(o.shape) - 1:
        raise ValueError(f"sparse_categorical_crossentropy: target shape {t.shape} does not "
                         f"match output shape {tuple(o.shape)} without its class axis")
    if from_logits:
        log_prob = log_softmax(o, axis=axis)
    else:
        o = knp.divide(o, knp.sum(o, axis=axis, keepdims=True))
        o = knp.clip(o, _EPSILON, 1.0 - _EPSILON)
        log_prob = knp.log(o)
    oh = one_hot(to_device_of(value(o), t.astype(np.int64)), o.shape[axis], axis=axis,
                 dtype=o.dtype)
    return knp.negative(knp.sum(knp.multiply(oh, log_prob), axis=axis))


# ------------------------------------------------------------------ statistics
def moments(x, axes, keepdims=False, synchronized=False):
    """(mean, variance) over axes."""
    axes = tuple(axes) if isinstance(axes, (list, tuple)) else axes
    m = knp.mean(x, axis=axes, keepdims=True)
    v = knp.mean(knp.square(knp.subtract(x, m)), axis=axes, keepdims=keepdims)
    if not keepdims:
        m = knp.squeeze(m, axis=axes)
    return m, v


def normalize(x, axis=-1, order=2, epsilon=None):
    """x / max(norm(x, order, axis), epsilon) (Keras' ops.nn.normalize)."""
    from .math import norm
    eps = 1e-12 if epsilon is None else epsilon
    x = x if isinstance(x, Tensor) else float_of(x)
    n = norm(x, ord=order, axis=axis, keepdims=True)
    return knp.divide(x, knp.maximum(n, eps))


def batch_normalization(x, mean, variance, axis, offset=None, scale=None, epsilon=1e-3):
    x = x if isinstance(x, Tensor) else float_of(x)
    shape = [1] * x.ndim
    ax = axis % x.ndim
    shape[ax] = x.shape[ax]

    def b(v):
        v = v if isinstance(v, Tensor) else float_of(v)
        return knp.reshape(v, tuple(shape)) if v.ndim == 1 else v
    inv = knp.rsqrt(knp.add(b(variance), epsilon))
    if scale is not None:
        inv = knp.multiply(inv, b(scale))
    y = knp.multiply(knp.subtract(x, b(mean)), inv)
    return knp.add(y, b(offset)) if offset is not None else y


# ------------------------------------------------------------------ more activations
def hard_tanh(x):
    return knp.clip(x, -1.0, 1.0)


def celu(x, alpha=1.0):
    a = float(alpha)
    return knp.add(relu(x), knp.minimum(0.0, knp.multiply(a, knp.expm1(knp.divide(x, a)))))


def squareplus(x, b=4):
    x = x if isinstance(x, Tensor) else float_of(x)
    return knp.divide(knp.add(x, knp.sqrt(knp.add(knp.square(x), float(b)))), 2.0)


def tanh_shrink(x):
    return knp.subtract(x, tanh(x))


def soft_shrink(x, threshold=0.5):
    x = x if isinstance(x, Tensor) else float_of(x)
    t = float(threshold)
    v = value(x)
    return knp.where(v > t, knp.subtract(x, t), knp.where(v < -t, knp.add(x, t), 0.0))


def hard_shrink(x, threshold=0.5):
    x = x if isinstance(x, Tensor) else float_of(x)
    return knp.where(xp_of(value(x)).abs(value(x)) > float(threshold), x, 0.0)


def sparse_plus(x):
    x = x if isinstance(x, Tensor) else float_of(x)
    v = value(x)
    return knp.where(v <= -1, 0.0, knp.where(v >= 1, x, knp.divide(knp.square(knp.add(x, 1.0)),
                                                                    4.0)))


def threshold(x, threshold, default_value):
    x = x if isinstance(x, Tensor) else float_of(x)
    return knp.where(value(x) > threshold, x, default_value)


# ------------------------------------------------------------------ convolution and pooling
# Keras' ops.conv / max_pool / average_pool for 1-D and 2-D inputs, on fastdl's C++ kernels
# (a 1-D input is a 2-D one of height 1). data_format 'channels_last' (default) or
# 'channels_first' (transposed around the kernel).
def _to_2d(x, what):
    v = value(x)
    if v.ndim == 3:
        return knp.expand_dims(x, 1), True
    if v.ndim == 4:
        return x, False
    raise ValueError(f"{what}: fastdl supports 1-D and 2-D inputs (rank 3 or 4), got rank {v.ndim}")


def _pair(v, one_d):
    if v is None:
        return None
    if isinstance(v, (int, np.integer)):
        return (1, int(v)) if one_d else int(v)
    v = tuple(int(e) for e in v)
    return (1,) + v if one_d and len(v) == 1 else v


def _channels_first(x, data_format, nd):
    if data_format in (None, "channels_last"):
        return x, False
    if data_format != "channels_first":
        raise ValueError(f"data_format must be 'channels_last' or 'channels_first', got "
                         f"{data_format!r}")
    return knp.moveaxis(x, 1, -1), True


def _contig(a, dtype=None):
    return np.ascontiguousarray(a, dtype=dtype) if type(a) is np.ndarray else a


def _conv_fwd(x, w, strides, padding, dilation_rate):
    return _k().conv2d(_contig(x), _contig(w, x.dtype), strides=strides, padding=padding,
                       dilation_rate=dilation_rate)


def _conv_vjp(needs, g, out, x, w, strides, padding, dilation_rate):
    dx, dw, _ = _k().conv2d_backward(_contig(g, x.dtype), _contig(x), _contig(w, x.dtype),
                                     strides=strides, padding=padding,
                                     dilation_rate=dilation_rate, need_dx=bool(needs[0]))
    return (dx if needs[0] else None), (dw if needs[1] else None)


from ._base import op_needs as _op_needs  # noqa: E402

_conv = _op_needs("conv", _conv_fwd, _conv_vjp)


def conv(inputs, kernel, strides=1, padding="valid", data_format=None, dilation_rate=1):
    """N-D convolution (1-D and 2-D here): inputs (N, [H,] W, C), kernel ([KH,] KW, C, F)."""
    x = inputs if isinstance(inputs, Tensor) else float_of(inputs)
    w = kernel if isinstance(kernel, Tensor) else float_of(kernel)
    x, cf = _channels_first(x, data_format, 2)
    x, one_d = _to_2d(x, "conv")
    if one_d:
        w = knp.expand_dims(w, 0)
    if isinstance(padding, str):
        padding = padding.lower()
    y = _conv(x, w, strides=_pair(strides, one_d), padding=padding,
              dilation_rate=_pair(dilation_rate, one_d))
    if one_d:
        y = knp.squeeze(y, 1)
    return knp.moveaxis(y, -1, 1) if cf else y


def _pool_op(name):
    fwd_name, bwd_name = f"{name}_pool2d", f"{name}_pool2d_backward"

    def fwd(x, pool_size, strides, padding):
        return getattr(_k(), fwd_name)(_contig(x), pool_size, strides, padding)

    def vjp(g, out, x, pool_size, strides, padding):
        return getattr(_k(), bwd_name)(_contig(g, x.dtype), _contig(x), pool_size=pool_size,
                                       strides=strides, padding=padding)
    return primitive(name + "_pool", fwd, vjp)


_max_pool = _pool_op("max")
_avg_pool = _pool_op("avg")


def _pool(raw, inputs, pool_size, strides, padding, data_format, what):
    x = inputs if isinstance(inputs, Tensor) else float_of(inputs)
    x, cf = _channels_first(x, data_format, 2)
    x, one_d = _to_2d(x, what)
    if isinstance(padding, str):
        padding = padding.lower()
    y = raw(x, pool_size=_pair(pool_size, one_d), strides=_pair(strides, one_d),
            padding=padding)
    if one_d:
        y = knp.squeeze(y, 1)
    return knp.moveaxis(y, -1, 1) if cf else y


def max_pool(inputs, pool_size, strides=None, padding="valid", data_format=None):
    return _pool(_max_pool, inputs, pool_size, strides, padding, data_format, "max_pool")


def average_pool(inputs, pool_size, strides=None, padding="valid", data_format=None):
    return _pool(_avg_pool, inputs, pool_size, strides, padding, data_format, "average_pool")


def _deconv_len(n, k, s, d, padding):
    keff = (k - 1) * d + 1
    if padding == "valid":
        return n * s + max(keff - s, 0)
    if padding == "same":
        return n * s
    raise ValueError(f"conv_transpose: padding must be 'valid' or 'same', got {padding!r}")


def _as_pair(v):
    return (int(v), int(v)) if isinstance(v, (int, np.integer)) else tuple(int(e) for e in v)


def _convt_fwd(x, w, strides, padding, dilation_rate):
    xp = xp_of(x)
    sh, sw = _as_pair(strides)
    dh, dw = _as_pair(dilation_rate)
    kh, kw = w.shape[0], w.shape[1]
    shape = (x.shape[0], _deconv_len(x.shape[1], kh, sh, dh, padding),
             _deconv_len(x.shape[2], kw, sw, dw, padding), w.shape[2])
    # the transposed convolution is the input gradient of a convolution
    dx, _, _ = _k().conv2d_backward(_contig(x), xp.zeros(shape, x.dtype), _contig(w, x.dtype),
                                    strides=strides, padding=padding,
                                    dilation_rate=dilation_rate, need_dx=True)
    return dx


def _convt_vjp(needs, g, out, x, w, strides, padding, dilation_rate):
    g = _contig(g, x.dtype)
    gx = gw = None
    if needs[0]:
        gx = _k().conv2d(g, _contig(w, x.dtype), strides=strides, padding=padding,
                         dilation_rate=dilation_rate)
    if needs[1]:
        _, gw, _ = _k().conv2d_backward(_contig(x), g, _contig(w, x.dtype), strides=strides,
                                        padding=padding, dilation_rate=dilation_rate,
                                        need_dx=False)
    return gx, gw


_conv_transpose = _op_needs("conv_transpose", _convt_fwd, _convt_vjp)


def conv_transpose(inputs, kernel, strides=1, padding="valid", output_padding=None,
                   data_format=None, dilation_rate=1):
    """Transposed convolution (1-D and 2-D): inputs (N, [H,] W, C), kernel
    ([KH,] KW, F, C) -> (N, [H',] W', F), the input gradient of conv with that kernel."""
    if output_padding is not None:
        raise NotImplementedError("conv_transpose: output_padding is not supported by fastdl")
    x = inputs if isinstance(inputs, Tensor) else float_of(inputs)
    w = kernel if isinstance(kernel, Tensor) else float_of(kernel)
    x, cf = _channels_first(x, data_format, 2)
    x, one_d = _to_2d(x, "conv_transpose")
    if one_d:
        w = knp.expand_dims(w, 0)
    padding = padding.lower() if isinstance(padding, str) else padding
    st = _pair(strides, one_d)
    dl = _pair(dilation_rate, one_d)
    y = _conv_transpose(x, w, strides=st if not isinstance(st, int) else (st, st),
                        padding=padding, dilation_rate=dl if not isinstance(dl, int) else (dl, dl))
    if one_d:
        y = knp.squeeze(y, 1)
    return knp.moveaxis(y, -1, 1) if cf else y
