"""keras.ops' NumPy-like functions (Keras' ``ops.numpy``), differentiable.

Gradient conventions (documented where they are a choice):
* ``maximum``/``minimum``: at ties the gradient goes to the first argument (TensorFlow's rule).
* ``max``/``min`` reductions: tied maxima share the gradient equally.
* ``abs`` has gradient ``sign(x)`` (0 at 0); ``sqrt`` at 0 gives inf, as in every framework.
* ``clip``: gradient 1 where ``x_min <= x <= x_max`` (bounds are constants).
* ``sign``, ``round``, ``floor``, ``ceil``, ``argmax``/``argmin``/``argsort``, comparisons,
  logical and ``is*`` functions return constants: they have no gradient (the tape
  treats their output as data, so a gradient through them alone is None).
"""
import builtins

import numpy as np

from .. import _tape
from .._tape import Tensor, primitive, value
from ._base import (FLOATX, constant, expand_reduced, float_of, is_np_float, normalize_axis,
                    no_gradient_guard, op_needs, operand, standardize_dtype, sum_to, to_array,
                    to_device_of, xp_of)

_sum = builtins.sum
_abs = builtins.abs


from ._base import kernels as _k  # noqa: E402



# ============================================================== element-wise binary
_nd = np.ndarray
_FAST_OPERANDS = (np.ndarray, float, int)
_recording = _tape.recording


def _binary(name, fwd, vjp):
    """A broadcasting binary op: Python scalars stay weakly typed."""
    raw = op_needs(name, fwd, vjp)
    npfn = getattr(np, getattr(fwd, "np_name", ""), None)

    def op(x1, x2):
        # the common case at plain NumPy cost: NumPy arrays and Python numbers, no tape
        if (npfn is not None and type(x1) in _FAST_OPERANDS and type(x2) in _FAST_OPERANDS
                and not _recording()):
            return npfn(x1, x2)
        a, b = _operand(x1), _operand(x2)
        return raw(*_same_device(a, b))
    op.__name__ = op.__qualname__ = name
    return op


def _same_device(*xs):
    """Host NumPy operands join a CuPy operand's device (constants, like Keras' conversion)."""
    for x in xs:
        if xp_of(value(x)) is not np:
            return to_device_of(value(x), *xs) if len(xs) > 1 else xs
    return xs


def _operand(x):
    return x if isinstance(x, Tensor) else operand(x)


def _shape(a):
    return np.shape(a) if not hasattr(a, "shape") else a.shape


def _add_vjp(needs, g, out, a, b):
    return (g if needs[0] else None), (g if needs[1] else None)


def _sub_vjp(needs, g, out, a, b):
    return (g if needs[0] else None), (-g if needs[1] else None)


def _mul_vjp(needs, g, out, a, b):
    return (g * b if needs[0] else None), (g * a if needs[1] else None)


def _div_vjp(needs, g, out, a, b):
    ga = g / b if needs[0] else None
    gb = -g * out / b if needs[1] else None
    return ga, gb


def _pow_vjp(needs, g, out, a, b):
    xp = xp_of(a, b, g)
    ga = gb = None
    if needs[0]:
        af = a.astype(g.dtype) if hasattr(a, "astype") and a.dtype.kind not in "fc" else a
        ga = g * b * xp.power(af, b - 1) if not (np.ndim(b) == 0 and b == 0) else g * 0
        ga = xp.where(xp.asarray(b) == 0, 0, ga) if np.ndim(b) else ga
    if needs[1]:
        a_arr = xp.asarray(a)
        safe = xp.where(a_arr > 0, a_arr, 1)
        gb = g * out * xp.where(a_arr > 0, xp.log(safe), 0)
    return ga, gb


def _bfx(fn):
    """The forward xp.<fn>(a, b), with the NumPy name for the fast path."""
    def fwd(a, b):
        return getattr(xp_of(a, b), fn)(a, b)
    fwd.np_name = fn
    return fwd


add = _binary("add", _bfx("add"), _add_vjp)
subtract = _binary("subtract", _bfx("subtract"), _sub_vjp)
multiply = _binary("multiply", _bfx("multiply"), _mul_vjp)
divide = _binary("divide", _bfx("true_divide"), _div_vjp)
true_divide = divide


power = _binary("power", _bfx("power"), _pow_vjp)


def _maxmin_vjp(first_wins):
    def vjp(needs, g, out, a, b):
        xp = xp_of(a, b, g)
        m = (xp.asarray(a) >= xp.asarray(b)) if first_wins else (xp.asarray(a) <= xp.asarray(b))
        return ((xp.where(m, g, 0) if needs[0] else None),
                (xp.where(m, 0, g) if needs[1] else None))
    return vjp


maximum = _binary("maximum", _bfx("maximum"), _maxmin_vjp(True))
minimum = _binary("minimum", _bfx("minimum"), _maxmin_vjp(False))


def _logaddexp_vjp(needs, g, out, a, b):
    xp = xp_of(a, b, g)
    return ((g * xp.exp(a - out) if needs[0] else None),
            (g * xp.exp(b - out) if needs[1] else None))


logaddexp = _binary("logaddexp", lambda a, b: xp_of(a, b).logaddexp(a, b), _logaddexp_vjp)


def _arctan2_vjp(needs, g, out, a, b):
    d = a * a + b * b
    return (g * b / d if needs[0] else None), (-g * a / d if needs[1] else None)


arctan2 = _binary("arctan2", lambda a, b: xp_of(a, b).arctan2(a, b), _arctan2_vjp)


def _hypot_vjp(needs, g, out, a, b):
    return (g * a / out if needs[0] else None), (g * b / out if needs[1] else None)


hypot = _binary("hypot", lambda a, b: xp_of(a, b).hypot(a, b), _hypot_vjp)


def _mod_vjp(needs, g, out, a, b):
    xp = xp_of(a, b, g)
    return (g if needs[0] else None), (-g * xp.floor_divide(a, b) if needs[1] else None)


mod = _binary("mod", lambda a, b: xp_of(a, b).mod(a, b), _mod_vjp)


def squared_difference(x1, x2):
    return square(subtract(x1, x2))


@constant
def floor_divide(x1, x2):
    """Integer-valued: no gradient."""
    return xp_of(x1, x2).floor_divide(operand(x1), operand(x2))


# ============================================================== element-wise unary
def _unary(name, fwd, dfdx):
    """y = f(x) with dy/dx = dfdx(x, y)."""
    def vjp(g, out, x):
        return g * dfdx(x, out)
    raw = primitive(name, fwd, vjp)
    npfn = getattr(np, getattr(fwd, "np_name", ""), None)

    def op(x):
        if (npfn is not None and type(x) is _nd and x.dtype.kind == "f"
                and not _recording()):
            return npfn(x)
        return raw(x if isinstance(x, Tensor) else to_array(x))
    op.__name__ = op.__qualname__ = name
    return op


def _fx(fn):
    def fwd(x):
        return getattr(xp_of(x), fn)(x)
    fwd.np_name = fn
    return fwd


def _ffx(fn):
    """Float-producing: integer inputs become float32 first (Keras' dtype rule)."""
    def fwd(x):
        return getattr(xp_of(x), fn)(float_of(x))
    fwd.np_name = fn
    return fwd


negative = _unary("negative", _fx("negative"), lambda x, y: -1)
exp = _unary("exp", _ffx("exp"), lambda x, y: y)
exp2 = _unary("exp2", _ffx("exp2"), lambda x, y: y * np.log(2.0))
expm1 = _unary("expm1", _ffx("expm1"), lambda x, y: y + 1)
log = _unary("log", _ffx("log"), lambda x, y: 1 / x)
log2 = _unary("log2", _ffx("log2"), lambda x, y: 1 / (x * np.log(2.0)))
log10 = _unary("log10", _ffx("log10"), lambda x, y: 1 / (x * np.log(10.0)))
log1p = _unary("log1p", _ffx("log1p"), lambda x, y: 1 / (1 + x))
sqrt = _unary("sqrt", _ffx("sqrt"), lambda x, y: 0.5 / y)
rsqrt = _unary("rsqrt", lambda x: 1 / xp_of(x).sqrt(float_of(x)), lambda x, y: -0.5 * y / x)
reciprocal = _unary("reciprocal", lambda x: 1 / float_of(x), lambda x, y: -y * y)
square = _unary("square", _fx("square"), lambda x, y: 2 * x)
abs = _unary("abs", _fx("abs"), lambda x, y: xp_of(x).sign(x))
absolute = abs
sin = _unary("sin", _ffx("sin"), lambda x, y: xp_of(x).cos(x))
cos = _unary("cos", _ffx("cos"), lambda x, y: -xp_of(x).sin(x))
tan = _unary("tan", _ffx("tan"), lambda x, y: 1 + y * y)
arcsin = _unary("arcsin", _ffx("arcsin"), lambda x, y: 1 / xp_of(x).sqrt(1 - x * x))
arccos = _unary("arccos", _ffx("arccos"), lambda x, y: -1 / xp_of(x).sqrt(1 - x * x))
arctan = _unary("arctan", _ffx("arctan"), lambda x, y: 1 / (1 + x * x))
sinh = _unary("sinh", _ffx("sinh"), lambda x, y: xp_of(x).cosh(x))
cosh = _unary("cosh", _ffx("cosh"), lambda x, y: xp_of(x).sinh(x))
tanh = _unary("tanh", _ffx("tanh"), lambda x, y: 1 - y * y)
arcsinh = _unary("arcsinh", _ffx("arcsinh"), lambda x, y: 1 / xp_of(x).sqrt(x * x + 1))
arccosh = _unary("arccosh", _ffx("arccosh"), lambda x, y: 1 / xp_of(x).sqrt(x * x - 1))
arctanh = _unary("arctanh", _ffx("arctanh"), lambda x, y: 1 / (1 - x * x))


def _nan_to_num_fwd(x, nan=0.0, posinf=None, neginf=None):
    return xp_of(x).nan_to_num(x, nan=nan, posinf=posinf, neginf=neginf)


_nan_to_num = primitive("nan_to_num", _nan_to_num_fwd,
                        lambda g, out, x, **kw: xp_of(x).where(xp_of(x).isfinite(x), g, 0))


def nan_to_num(x, nan=0.0, posinf=None, neginf=None):
    """Gradient 1 where x is finite, 0 where it was replaced."""
    return _nan_to_num(x if isinstance(x, Tensor) else to_array(x), nan=nan, posinf=posinf,
                       neginf=neginf)


@constant
def sign(x):
    """No gradient (its derivative is 0 almost everywhere)."""
    return xp_of(x).sign(to_array(x))


@constant
def round(x, decimals=0):
    """No gradient."""
    return xp_of(x).round(to_array(x), decimals)


@constant
def floor(x):
    """No gradient."""
    return xp_of(x).floor(to_array(x))


@constant
def ceil(x):
    """No gradient."""
    return xp_of(x).ceil(to_array(x))


@constant
def trunc(x):
    """No gradient."""
    return xp_of(x).trunc(to_array(x))


# ============================================================== comparisons and logic (constants)
def _cmp(name):
    def fn(x1, x2):
        return getattr(xp_of(x1, x2), name)(operand(x1), operand(x2))
    fn.__name__ = name
    return constant(fn)


equal = _cmp("equal")
not_equal = _cmp("not_equal")
greater = _cmp("greater")
greater_equal = _cmp("greater_equal")
less = _cmp("less")
less_equal = _cmp("less_equal")
logical_and = _cmp("logical_and")
logical_or = _cmp("logical_or")
logical_xor = _cmp("logical_xor")


@constant
def logical_not(x):
    return xp_of(x).logical_not(to_array(x))


@constant
def isnan(x):
    return xp_of(x).isnan(to_array(x))


@constant
def isinf(x):
    return xp_of(x).isinf(to_array(x))


@constant
def isfinite(x):
    return xp_of(x).isfinite(to_array(x))


@constant
def isclose(x1, x2, rtol=1e-5, atol=1e-8, equal_nan=False):
    return xp_of(x1, x2).isclose(operand(x1), operand(x2), rtol=rtol, atol=atol,
                                 equal_nan=equal_nan)


@constant
def allclose(x1, x2, rtol=1e-5, atol=1e-8, equal_nan=False):
    return bool(xp_of(x1, x2).allclose(operand(x1), operand(x2), rtol=rtol, atol=atol,
                                       equal_nan=equal_nan))


@constant
def any(x, axis=None, keepdims=False):
    return xp_of(x).any(to_array(x), axis=_ax(axis), keepdims=keepdims)


@constant
def all(x, axis=None, keepdims=False):
    return xp_of(x).all(to_array(x), axis=_ax(axis), keepdims=keepdims)


@constant
def count_nonzero(x, axis=None):
    return xp_of(x).count_nonzero(to_array(x), axis=_ax(axis))


@constant
def argmax(x, axis=None, keepdims=False):
    return xp_of(x).argmax(to_array(x), axis=axis, keepdims=keepdims).astype(np.int32)


@constant
def argmin(x, axis=None, keepdims=False):
    return xp_of(x).argmin(to_array(x), axis=axis, keepdims=keepdims).astype(np.int32)


@constant
def argsort(x, axis=-1):
    x = to_array(x)
    if x.ndim == 0:
        return xp_of(x).zeros((), np.int32)
    return xp_of(x).argsort(x, axis=axis, kind="stable").astype(np.int32)


@constant
def nonzero(x):
    return tuple(i.astype(np.int32) for i in xp_of(x).nonzero(to_array(x)))


def _ax(axis):
    return tuple(axis) if isinstance(axis, list) else axis


# ============================================================== reductions
def _reduction(name, fwd, vjp):
    raw = primitive(name, fwd, vjp)

    def op(x, axis=None, keepdims=False):
        if type(x) is _nd and not _recording():
            return fwd(x, axis=_ax(axis), keepdims=bool(keepdims))
        return raw(x if isinstance(x, Tensor) else to_array(x), axis=_ax(axis),
                   keepdims=bool(keepdims))
    op.__name__ = op.__qualname__ = name
    return op


def _sum_vjp(g, out, x, axis, keepdims):
    xp = xp_of(x, g)
    return xp.broadcast_to(expand_reduced(g, x.shape, axis, keepdims), x.shape)


def _count(shape, axis):
    return int(np.prod([shape[a] for a in normalize_axis(axis, len(shape))], dtype=np.int64))


def _mean_fwd(x, axis, keepdims):
    return xp_of(x).mean(float_of(x), axis=axis, keepdims=keepdims)


def _mean_vjp(g, out, x, axis, keepdims):
    n = _count(x.shape, axis)
    return _sum_vjp(g, out, x, axis, keepdims) / builtins.max(n, 1)


def _extreme_vjp(g, out, x, axis, keepdims):
    xp = xp_of(x, g)
    o = expand_reduced(out, x.shape, axis, keepdims)
    m = (x == o)
    m = m.astype(g.dtype)
    cnt = m.sum(axis=normalize_axis(axis, x.ndim), keepdims=True)
    return xp.broadcast_to(expand_reduced(g, x.shape, axis, keepdims), x.shape) * m / cnt


def _prod_vjp(g, out, x, axis, keepdims):
    xp = xp_of(x, g)
    axes = normalize_axis(axis, x.ndim)
    rest = tuple(i for i in range(x.ndim) if i not in axes)
    perm = rest + axes
    xt = xp.transpose(x, perm)
    lead = xt.shape[:len(rest)]
    flat = xt.reshape(lead + (-1,))
    ones = xp.ones(lead + (1,), flat.dtype)
    left = xp.cumprod(xp.concatenate([ones, flat[..., :-1]], axis=-1), axis=-1)
    right = xp.flip(xp.cumprod(xp.flip(xp.concatenate([flat[..., 1:], ones], axis=-1), -1),
                               axis=-1), -1)
    others = (left * right).reshape(xt.shape)
    inv = np.argsort(perm)
    others = xp.transpose(others, tuple(inv))
    return xp.broadcast_to(expand_reduced(g, x.shape, axis, keepdims), x.shape) * others


sum = _reduction("sum", lambda x, axis, keepdims: xp_of(x).sum(x, axis=axis, keepdims=keepdims),
                 _sum_vjp)
mean = _reduction("mean", _mean_fwd, _mean_vjp)
_max = _reduction("max", lambda x, axis, keepdims: xp_of(x).max(x, axis=axis, keepdims=keepdims),
                  _extreme_vjp)
_min = _reduction("min", lambda x, axis, keepdims: xp_of(x).min(x, axis=axis, keepdims=keepdims),
                  _extreme_vjp)
_prod = _reduction("prod", lambda x, axis, keepdims: xp_of(x).prod(x, axis=axis,
                                                                   keepdims=keepdims), _prod_vjp)


def max(x, axis=None, keepdims=False, initial=None):
    out = _max(x, axis=axis, keepdims=keepdims)
    return out if initial is None else maximum(out, initial)


def min(x, axis=None, keepdims=False, initial=None):
    out = _min(x, axis=axis, keepdims=keepdims)
    return out if initial is None else minimum(out, initial)


amax = max
amin = min


def prod(x, axis=None, keepdims=False, dtype=None):
    if dtype is not None:
        x = cast(x, dtype)
    return _prod(x, axis=axis, keepdims=keepdims)


def var(x, axis=None, keepdims=False):
    x = x if isinstance(x, Tensor) else float_of(x)
    if isinstance(x, Tensor) and x.dtype.kind not in "fc":
        x = cast(x, FLOATX)
    d = subtract(x, _mean_const(x, axis))
    # the mean's own gradient is zero for the variance (sum of deviations is 0),
    # so it is taken as a constant.
    return mean(square(d), axis=axis, keepdims=keepdims)


def _mean_const(x, axis):
    v = value(x)
    return xp_of(v).mean(v, axis=_ax(axis), keepdims=True)


def std(x, axis=None, keepdims=False):
    return sqrt(var(x, axis=axis, keepdims=keepdims))


def average(x, axis=None, weights=None):
    if weights is None:
        return mean(x, axis=axis)
    w = weights if isinstance(weights, Tensor) else to_array(weights)
    x = x if isinstance(x, Tensor) else float_of(x)
    w = w if isinstance(w, Tensor) else to_device_of(value(x), w)
    if axis is not None and w.ndim == 1 and x.ndim > 1:
        shape = [1] * x.ndim
        shape[int(axis) % x.ndim] = w.shape[0]
        w = reshape(w, tuple(shape))
    return divide(sum(multiply(x, w), axis=axis), sum(broadcast_to(w, x.shape), axis=axis))


def logsumexp(x, axis=None, keepdims=False):
    return _logsumexp(x if isinstance(x, Tensor) else float_of(x), axis=_ax(axis),
                      keepdims=bool(keepdims))


def _logsumexp_fwd(x, axis, keepdims):
    xp = xp_of(x)
    m = xp.max(x, axis=axis, keepdims=True) if x.size else xp.zeros((1,) * x.ndim, x.dtype)
    m = xp.where(xp.isfinite(m), m, 0)
    out = xp.log(xp.sum(xp.exp(x - m), axis=axis, keepdims=True)) + m
    if not keepdims:
        out = out.reshape(tuple(s for i, s in enumerate(out.shape)
                                if i not in normalize_axis(axis, x.ndim)))
    return out


def _logsumexp_vjp(g, out, x, axis, keepdims):
    xp = xp_of(x, g)
    o = expand_reduced(out, x.shape, axis, keepdims)
    return expand_reduced(g, x.shape, axis, keepdims) * xp.exp(x - o)


_logsumexp = primitive("logsumexp", _logsumexp_fwd, _logsumexp_vjp)


def _cumsum_fwd(x, axis, dtype):
    xp = xp_of(x)
    if axis is None:
        x = x.reshape(-1)
        axis = 0
    return xp.cumsum(x, axis=axis, dtype=dtype)


def _cumsum_vjp(g, out, x, axis, dtype):
    xp = xp_of(x, g)
    ax = 0 if axis is None else axis
    r = xp.flip(xp.cumsum(xp.flip(g, ax), axis=ax), ax)
    return r.reshape(x.shape)


_cumsum = primitive("cumsum", _cumsum_fwd, _cumsum_vjp)


def cumsum(x, axis=None, dtype=None):
    return _cumsum(x if isinstance(x, Tensor) else to_array(x), axis=axis,
                   dtype=standardize_dtype(dtype))


def cumprod(x, axis=None, dtype=None):
    """Forward only: its gradient is not implemented (raises under a tape)."""
    no_gradient_guard("cumprod", x)
    x = to_array(x)
    if axis is None:
        x, axis = x.reshape(-1), 0
    return xp_of(x).cumprod(x, axis=axis, dtype=standardize_dtype(dtype))


# ============================================================== matmul and products
from .._device import has_kernels  # noqa: E402


def _gemm_ok(a, b):
    """2-D operands of one float dtype on one device: fastdl's GEMM (C++ or CUDA) applies."""
    return (a.ndim == 2 and b.ndim == 2 and a.dtype == b.dtype and
            a.dtype in (np.float32, np.float64) and type(a) is type(b) and has_kernels(a))


def _matmul_fwd(a, b):
    if _gemm_ok(a, b):
        return _k().matmul_kernel(a, b)
    return xp_of(a, b).matmul(a, b)


def _mm(a, b, ta=False, tb=False):
    """op(a) @ op(b) for the last two axes; the GEMM kernel for 2-D float arrays."""
    if _gemm_ok(a, b):
        return _k().gemm(a, b, trans_a=ta, trans_b=tb)
    xp = xp_of(a, b)
    return xp.matmul(xp.swapaxes(a, -1, -2) if ta else a, xp.swapaxes(b, -1, -2) if tb else b)


def _matmul_vjp(needs, g, out, a, b):
    if type(g) is _nd and a.ndim == 2 and b.ndim == 2 and _gemm_ok(a, b) and g.dtype == a.dtype:
        # the common case (a layer's 2-D product), straight to the GEMM kernel
        k = _k()
        return (k.gemm(g, b, trans_b=True) if needs[0] else None,
                k.gemm(a, g, trans_a=True) if needs[1] else None)
    xp = xp_of(a, b, g)
    a2 = a[None, :] if a.ndim == 1 else a
    b2 = b[:, None] if b.ndim == 1 else b
    g2 = g
    if a.ndim == 1 and b.ndim == 1:
        g2 = g.reshape(1, 1)
    elif a.ndim == 1:
        g2 = xp.expand_dims(g, -2)
    elif b.ndim == 1:
        g2 = xp.expand_dims(g, -1)
    ga = gb = None
    if needs[0]:
        ga = _mm(g2, b2.astype(g2.dtype, copy=False), tb=True)
        ga = sum_to(ga, a2.shape).reshape(a.shape)
    if needs[1]:
        gb = _mm(a2.astype(g2.dtype, copy=False), g2, ta=True)
        gb = sum_to(gb, b2.shape).reshape(b.shape)
    return ga, gb


_matmul = op_needs("matmul", _matmul_fwd, _matmul_vjp)


def matmul(x1, x2):
    """np.matmul semantics (batching with broadcasting over leading axes, 1-D operands);
    2-D float32/float64 NumPy operands run fastdl's GEMM kernel."""
    if type(x1) is _nd and type(x2) is _nd and x1.ndim and x2.ndim and not _recording():
        return _matmul_fwd(x1, x2)
    a = x1 if isinstance(x1, Tensor) else to_array(x1)
    b = x2 if isinstance(x2, Tensor) else to_array(x2)
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError("matmul: operands must have at least one dimension (use multiply)")
    return _matmul(a, b)


def dot(x1, x2):
    """np.dot semantics."""
    a = x1 if isinstance(x1, Tensor) else to_array(x1)
    b = x2 if isinstance(x2, Tensor) else to_array(x2)
    if a.ndim == 0 or b.ndim == 0:
        return multiply(a, b)
    if b.ndim <= 2:
        return matmul(a, b)
    return tensordot(a, b, axes=([a.ndim - 1], [b.ndim - 2]))


def vdot(x1, x2):
    return sum(multiply(ravel(x1), ravel(x2)))


def inner(x1, x2):
    a = x1 if isinstance(x1, Tensor) else to_array(x1)
    b = x2 if isinstance(x2, Tensor) else to_array(x2)
    if a.ndim == 0 or b.ndim == 0:
        return multiply(a, b)
    return tensordot(a, b, axes=([a.ndim - 1], [b.ndim - 1]))


def outer(x1, x2):
    return multiply(reshape(x1, (-1, 1)), reshape(x2, (1, -1)))


def tensordot(x1, x2, axes=2):
    """np.tensordot, as transposes, reshapes and one matmul."""
    a = x1 if isinstance(x1, Tensor) else to_array(x1)
    b = x2 if isinstance(x2, Tensor) else to_array(x2)
    if isinstance(axes, int):
        ax_a = list(range(a.ndim - axes, a.ndim))
        ax_b = list(range(axes))
    else:
        ax_a, ax_b = axes
        ax_a = [ax_a] if isinstance(ax_a, int) else list(ax_a)
        ax_b = [ax_b] if isinstance(ax_b, int) else list(ax_b)
    ax_a = [i % a.ndim for i in ax_a]
    ax_b = [i % b.ndim for i in ax_b]
    free_a = [i for i in range(a.ndim) if i not in ax_a]
    free_b = [i for i in range(b.ndim) if i not in ax_b]
    k = int(np.prod([a.shape[i] for i in ax_a], dtype=np.int64))
    at = reshape(transpose(a, free_a + ax_a), (-1, k))
    bt = reshape(transpose(b, ax_b + free_b), (k, -1))
    out = matmul(at, bt)
    return reshape(out, tuple(a.shape[i] for i in free_a) + tuple(b.shape[i] for i in free_b))


def einsum(subscripts, *operands):
    """np.einsum; differentiable for explicit or implicit subscripts without ellipsis
    and without an index repeated within one operand."""
    ops_ = [o if isinstance(o, Tensor) else to_array(o) for o in operands]
    spec = subscripts.replace(" ", "")
    if "..." in spec or builtins.any(len(set(s)) != len(s) for s in spec.split("->")[0].split(",")):
        no_gradient_guard("einsum", *ops_, why=" (with '...' or a repeated index)")
        return xp_of(*ops_).einsum(subscripts, *(value(o) for o in ops_))
    if "->" not in spec:
        ins = spec.split(",")
        letters = "".join(ins)
        outs = "".join(sorted(c for c in set(letters) if letters.count(c) == 1))
        spec = spec + "->" + outs
    return _einsum(*ops_, spec=spec)


def _einsum_vjp(g, out, *ops_, spec):
    xp = xp_of(g, *ops_)
    ins, outs = spec.split("->")
    ins = ins.split(",")
    grads = []
    for i, si in enumerate(ins):
        others = [o for j, o in enumerate(ops_) if j != i]
        others_s = [s for j, s in enumerate(ins) if j != i]
        avail = set(outs).union(*others_s) if others_s else set(outs)
        target = "".join(c for c in si if c in avail)
        r = xp.einsum(",".join([outs] + others_s) + "->" + target, g, *others)
        if target != si:  # indices only in this operand, summed away: broadcast back
            shape = [ops_[i].shape[k] if c in target else 1 for k, c in enumerate(si)]
            order = [c for c in si if c in target]
            r = xp.einsum(target + "->" + "".join(order), r).reshape(shape)
            r = xp.broadcast_to(r, ops_[i].shape)
        grads.append(r)
    return tuple(grads)


_einsum = primitive("einsum", lambda *ops_, spec: xp_of(*ops_).einsum(spec, *ops_), _einsum_vjp)


# ============================================================== shapes and layout
def _reshape_vjp(g, out, x, newshape):
    return g.reshape(x.shape)


_reshape = primitive("reshape", lambda x, newshape: x.reshape(newshape), _reshape_vjp)


def reshape(x, newshape):
    if isinstance(newshape, (int, np.integer)):
        newshape = (int(newshape),)
    return _reshape(x if isinstance(x, Tensor) else to_array(x),
                    newshape=tuple(int(s) for s in newshape))


def ravel(x):
    return reshape(x, (-1,))


def flatten(x):
    return reshape(x, (-1,))


def _transpose_fwd(x, axes):
    return xp_of(x).transpose(x, axes)


def _transpose_vjp(g, out, x, axes):
    xp = xp_of(g)
    if axes is None:
        return xp.transpose(g)
    return xp.transpose(g, tuple(np.argsort(axes)))


_transpose = primitive("transpose", _transpose_fwd, _transpose_vjp)


def transpose(x, axes=None):
    x = x if isinstance(x, Tensor) else to_array(x)
    if axes is not None:
        axes = tuple(int(a) % x.ndim for a in axes)
    return _transpose(x, axes=axes)


def moveaxis(x, source, destination):
    x = x if isinstance(x, Tensor) else to_array(x)
    src = [source] if isinstance(source, int) else list(source)
    dst = [destination] if isinstance(destination, int) else list(destination)
    src = [s % x.ndim for s in src]
    dst = [d % x.ndim for d in dst]
    order = [n for n in range(x.ndim) if n not in src]
    for d, s in sorted(zip(dst, src)):
        order.insert(d, s)
    return transpose(x, order)


def swapaxes(x, axis1, axis2):
    x = x if isinstance(x, Tensor) else to_array(x)
    axes = list(range(x.ndim))
    a1, a2 = axis1 % x.ndim, axis2 % x.ndim
    axes[a1], axes[a2] = axes[a2], axes[a1]
    return transpose(x, axes)


def expand_dims(x, axis):
    x = x if isinstance(x, Tensor) else to_array(x)
    axes = [axis] if isinstance(axis, int) else list(axis)
    nd = x.ndim + len(axes)
    axes = sorted(a % nd for a in axes)
    shape = list(x.shape)
    for a in axes:
        shape.insert(a, 1)
    return reshape(x, tuple(shape))


def squeeze(x, axis=None):
    x = x if isinstance(x, Tensor) else to_array(x)
    if axis is None:
        axes = [i for i, s in enumerate(x.shape) if s == 1]
    else:
        axes = [a % x.ndim for a in ([axis] if isinstance(axis, int) else axis)]
        for a in axes:
            if x.shape[a] != 1:
                raise ValueError(f"squeeze: axis {a} has size {x.shape[a]}, not 1")
    return reshape(x, tuple(s for i, s in enumerate(x.shape) if i not in axes))


def _bcast_fwd(x, shape):
    return xp_of(x).broadcast_to(x, shape)


_broadcast_to = primitive("broadcast_to", _bcast_fwd, lambda g, out, x, shape: sum_to(g, x.shape))


def broadcast_to(x, shape):
    return _broadcast_to(x if isinstance(x, Tensor) else to_array(x), shape=tuple(shape))


def _tile_vjp(g, out, x, repeats):
    d = builtins.max(x.ndim, len(repeats))
    xs = (1,) * (d - x.ndim) + tuple(x.shape)
    rs = (1,) * (d - len(repeats)) + tuple(repeats)
    inter = []
    for r, s in zip(rs, xs):
        inter += [r, s]
    return g.reshape(inter).sum(axis=tuple(range(0, 2 * d, 2))).reshape(x.shape)


_tile = primitive("tile", lambda x, repeats: xp_of(x).tile(x, repeats), _tile_vjp)


def tile(x, repeats):
    reps = (int(repeats),) if isinstance(repeats, (int, np.integer)) else \
        tuple(int(r) for r in repeats)
    return _tile(x if isinstance(x, Tensor) else to_array(x), repeats=reps)


def _repeat_fwd(x, repeats, axis):
    return xp_of(x).repeat(x, repeats, axis=axis)


def _repeat_vjp(g, out, x, repeats, axis):
    xp = xp_of(x, g)
    if axis is None:
        n, ax, base = x.size, 0, xp.zeros((x.size,), g.dtype)
    else:
        ax = axis % x.ndim
        n = x.shape[ax]
        base = xp.zeros(x.shape, g.dtype)
    idx = np.repeat(np.arange(n), np.asarray(repeats))
    z = xp.moveaxis(base, ax, 0)
    _scatter_add(z, xp.asarray(idx), xp.moveaxis(g, ax, 0))
    return xp.moveaxis(z, 0, ax).reshape(x.shape)


_repeat = primitive("repeat", _repeat_fwd, _repeat_vjp)


def repeat(x, repeats, axis=None):
    r = value(repeats)
    r = int(r) if np.ndim(r) == 0 else [int(e) for e in np.asarray(_host(r)).reshape(-1)]
    return _repeat(x if isinstance(x, Tensor) else to_array(x), repeats=r, axis=axis)


def _flip_fwd(x, axis):
    return xp_of(x).flip(x, axis)


_flip = primitive("flip", _flip_fwd, lambda g, out, x, axis: xp_of(g).flip(g, axis))


def flip(x, axis=None):
    return _flip(x if isinstance(x, Tensor) else to_array(x), axis=_ax(axis))


def roll(x, shift, axis=None):
    x = x if isinstance(x, Tensor) else to_array(x)
    return _roll(x, shift=shift, axis=_ax(axis))


def _roll_vjp(g, out, x, shift, axis):
    neg = -np.asarray(shift) if np.ndim(shift) else -shift
    return xp_of(g).roll(g, tuple(neg) if np.ndim(neg) else neg, axis)


_roll = primitive("roll", lambda x, shift, axis: xp_of(x).roll(x, shift, axis), _roll_vjp)


def _concat_fwd(*xs, axis):
    return xp_of(*xs).concatenate(xs, axis=axis)


def _concat_vjp(g, out, *xs, axis):
    xp = xp_of(g)
    if axis is None:
        bounds = np.cumsum([x.size for x in xs])[:-1].tolist()
        return tuple(p.reshape(x.shape) for p, x in zip(xp.split(g, bounds), xs))
    bounds = np.cumsum([x.shape[axis] for x in xs])[:-1].tolist()
    return tuple(xp.split(g, bounds, axis=axis))


_concatenate = primitive("concatenate", _concat_fwd, _concat_vjp)


def concatenate(xs, axis=0):
    xs = [x if isinstance(x, Tensor) else to_array(x) for x in xs]
    return _concatenate(*xs, axis=axis)


def append(x1, x2, axis=None):
    if axis is None:
        return concatenate([ravel(x1), ravel(x2)], axis=0)
    return concatenate([x1, x2], axis=axis)


def stack(x, axis=0):
    xs = [e if isinstance(e, Tensor) else to_array(e) for e in x]
    if not xs:
        raise ValueError("stack: need at least one array")
    nd = xs[0].ndim + 1
    return concatenate([expand_dims(e, axis % nd) for e in xs], axis=axis % nd)


def hstack(xs):
    xs = [e if isinstance(e, Tensor) else to_array(e) for e in xs]
    return concatenate(xs, axis=0 if xs[0].ndim == 1 else 1)


def vstack(xs):
    xs = [e if isinstance(e, Tensor) else to_array(e) for e in xs]
    return concatenate([reshape(e, (1, -1)) if e.ndim == 1 else e for e in xs], axis=0)


def _split_fwd(x, indices_or_sections, axis):
    return tuple(xp_of(x).split(x, indices_or_sections, axis=axis))


def _split_vjp(gs, out, x, indices_or_sections, axis):
    xp = xp_of(x)
    parts = [g if g is not None else xp.zeros(o.shape, o.dtype) for g, o in zip(gs, out)]
    return xp.concatenate(parts, axis=axis)


_split = primitive("split", _split_fwd, _split_vjp)


def split(x, indices_or_sections, axis=0):
    ios = indices_or_sections
    ios = int(ios) if isinstance(ios, (int, np.integer)) else [int(i) for i in ios]
    return list(_split(x if isinstance(x, Tensor) else to_array(x), indices_or_sections=ios,
                       axis=axis))


def unstack(x, num=None, axis=0):
    x = x if isinstance(x, Tensor) else to_array(x)
    n = x.shape[axis]
    return [squeeze(p, axis) for p in split(x, n, axis=axis)] if n else []


def _pad_fwd(x, pad_width, mode, constant_values):
    xp = xp_of(x)
    if mode == "constant":
        return xp.pad(x, pad_width, mode="constant", constant_values=constant_values or 0)
    return xp.pad(x, pad_width, mode=mode)


def _pad_vjp(g, out, x, pad_width, mode, constant_values):
    xp = xp_of(x, g)
    if mode == "constant":
        sl = tuple(builtins.slice(lo, g.shape[i] - hi) for i, (lo, hi) in enumerate(pad_width))
        return g[sl]
    if mode not in ("edge", "reflect", "symmetric", "wrap"):
        raise NotImplementedError(f"fastdl.ops.pad: no gradient for mode={mode!r}")
    idx = np.pad(np.arange(x.size).reshape(x.shape), pad_width, mode=mode)
    r = xp.bincount(xp.asarray(idx.reshape(-1)), weights=g.reshape(-1), minlength=x.size)
    return r.astype(g.dtype).reshape(x.shape)


_pad = primitive("pad", _pad_fwd, _pad_vjp)


def pad(x, pad_width, mode="constant", constant_values=None):
    x = x if isinstance(x, Tensor) else to_array(x)
    pw = np.broadcast_to(np.asarray(pad_width, dtype=np.int64), (x.ndim, 2))
    pw = tuple((int(a), int(b)) for a, b in pw)
    if mode != "constant" and constant_values is not None:
        raise ValueError("pad: constant_values is only used with mode='constant'")
    if mode not in ("constant", "edge", "reflect", "symmetric", "wrap"):
        no_gradient_guard("pad", x, why=f" (mode={mode!r})")
    return _pad(x, pad_width=pw, mode=mode, constant_values=constant_values)


def _triangle(name):
    def fwd(x, k):
        return getattr(xp_of(x), name)(x, k)
    raw = primitive(name, fwd, lambda g, out, x, k: getattr(xp_of(g), name)(g, k))

    def op(x, k=0):
        return raw(x if isinstance(x, Tensor) else to_array(x), k=int(k))
    op.__name__ = name
    return op


tril = _triangle("tril")
triu = _triangle("triu")


def _diagonal_vjp(g, out, x, offset, axis1, axis2):
    xp = xp_of(x, g)
    z = xp.zeros(x.shape, g.dtype)
    zv = xp.moveaxis(z, (axis1 % x.ndim, axis2 % x.ndim), (-2, -1))
    n = g.shape[-1]
    i = np.arange(n)
    r, c = (i, i + offset) if offset >= 0 else (i - offset, i)
    zv[..., r, c] = g
    return z


_diagonal = primitive("diagonal", lambda x, offset, axis1, axis2: xp_of(x).diagonal(
    x, offset, axis1, axis2), _diagonal_vjp)


def diagonal(x, offset=0, axis1=0, axis2=1):
    return _diagonal(x if isinstance(x, Tensor) else to_array(x), offset=int(offset),
                     axis1=axis1, axis2=axis2)


def trace(x, offset=0, axis1=0, axis2=1):
    return sum(diagonal(x, offset, axis1, axis2), axis=-1)


def diag(x, k=0):
    x = x if isinstance(x, Tensor) else to_array(x)
    if x.ndim == 2:
        return diagonal(x, k)
    k = int(k)
    m = multiply(expand_dims(x, 1), to_device_of(value(x), np.eye(x.shape[0], dtype=x.dtype)))
    return pad(m, ((builtins.max(-k, 0), builtins.max(k, 0)),
                   (builtins.max(k, 0), builtins.max(-k, 0))))


# ============================================================== indexing
def _host(a):
    get = getattr(a, "get", None)
    return get() if callable(get) and type(a) is not np.ndarray else a


def _scatter_add(z, idx, g):
    """z[idx] += g with repeated indices accumulated (np.add.at; cupyx.scatter_add)."""
    if type(z) is np.ndarray:
        np.add.at(z, idx, g)
    else:
        import cupyx
        cupyx.scatter_add(z, idx, g)


def _basic_key(key):
    ks = key if isinstance(key, tuple) else (key,)
    return builtins.all(k is None or k is Ellipsis or isinstance(k, (builtins.slice, int, np.integer))
                        and not isinstance(k, bool) for k in ks)


def _getitem_vjp(g, out, x, key):
    xp = xp_of(x, g)
    z = xp.zeros(x.shape, g.dtype)
    if _basic_key(key):
        z[key] = g
    else:
        _scatter_add(z, key, g)
    return z


_get_item = primitive("get_item", lambda x, key: x[key], _getitem_vjp)


def _key(key):
    if isinstance(key, tuple):
        return tuple(_key(k) for k in key)
    if isinstance(key, Tensor):
        return key.value
    if isinstance(key, list):
        return np.asarray([value(k) for k in key])
    return key


def _on_device_of(x, idx):
    """Index arrays moved to x's device (CuPy arrays index CuPy arrays)."""
    xp = xp_of(value(x))
    if xp is np:
        return idx
    if isinstance(idx, tuple):
        return tuple(_on_device_of(x, k) for k in idx)
    return xp.asarray(idx) if isinstance(idx, np.ndarray) else idx


def get_item(x, key):
    """x[key] for basic and advanced (integer array, boolean mask) indexing; the gradient
    scatters back, accumulating repeated indices."""
    x = x if isinstance(x, Tensor) else to_array(x)
    return _get_item(x, key=_on_device_of(x, _key(key)))


def _take_fwd(x, indices, axis):
    return xp_of(x).take(x, indices, axis=axis)


def _take_vjp(g, out, x, indices, axis):
    xp = xp_of(x, g)
    if axis is None:
        z = xp.zeros((x.size,), g.dtype)
        _scatter_add(z, indices, g)
        return z.reshape(x.shape)
    z = xp.zeros(x.shape, g.dtype)
    ax = axis % x.ndim
    _scatter_add(z, (builtins.slice(None),) * ax + (indices,), g)
    return z


_take = primitive("take", _take_fwd, _take_vjp)


def take(x, indices, axis=None):
    x = x if isinstance(x, Tensor) else to_array(x)
    return _take(x, indices=_on_device_of(x, to_array(indices)), axis=axis)


def _along_index(x_shape, indices, axis):
    xp = xp_of(indices)
    nd = len(x_shape)
    idx = []
    for d in range(nd):
        if d == axis:
            idx.append(indices)
        else:
            shp = [1] * nd
            shp[d] = indices.shape[d]
            idx.append(xp.arange(indices.shape[d]).reshape(shp))
    return tuple(idx)


def _tal_fwd(x, indices, axis):
    if axis is None:
        return xp_of(x).take_along_axis(x.reshape(-1), indices, axis=0)
    return xp_of(x).take_along_axis(x, indices, axis=axis)


def _tal_vjp(g, out, x, indices, axis):
    xp = xp_of(x, g)
    if axis is None:
        z = xp.zeros((x.size,), g.dtype)
        _scatter_add(z, indices, g)
        return z.reshape(x.shape)
    ax = axis % x.ndim
    idx = xp.broadcast_to(indices, tuple(
        x.shape[d] if d != ax and indices.shape[d] == 1 and x.shape[d] != 1 else indices.shape[d]
        for d in range(x.ndim))) if indices.ndim == x.ndim else indices
    g = xp.broadcast_to(g, idx.shape)
    z = xp.zeros(x.shape, g.dtype)
    _scatter_add(z, _along_index(x.shape, idx, ax), g)
    return z


_take_along_axis = primitive("take_along_axis", _tal_fwd, _tal_vjp)


def take_along_axis(x, indices, axis=None):
    x = x if isinstance(x, Tensor) else to_array(x)
    return _take_along_axis(x, indices=_on_device_of(x, to_array(indices)), axis=axis)


def slice(inputs, start_indices, shape):
    """inputs[start : start + shape] along every axis (Keras' ops.slice)."""
    key = tuple(builtins.slice(int(s), int(s) + int(n)) for s, n in
                zip(value(start_indices), value(shape)))
    return get_item(inputs, key)


def _slice_update_fwd(x, updates, key):
    out = x.copy()
    out[key] = updates
    return out


def _slice_update_vjp(g, out, x, updates, key):
    gx = g.copy()
    gx[key] = 0
    return gx, g[key]


_slice_update = primitive("slice_update", _slice_update_fwd, _slice_update_vjp)


def slice_update(inputs, start_indices, updates):
    """A copy of inputs with updates written at start_indices (functional: the input is not
    modified); differentiable in both."""
    u = updates if isinstance(updates, Tensor) else to_array(updates)
    key = tuple(builtins.slice(int(s), int(s) + int(n)) for s, n in
                zip(value(start_indices), u.shape))
    return _slice_update(inputs if isinstance(inputs, Tensor) else to_array(inputs), u, key=key)


# ============================================================== where / clip / select
def _where_fwd(c, a, b):
    return xp_of(c, a, b).where(c, a, b)


def _where_vjp(needs, g, out, c, a, b):
    xp = xp_of(g)
    return (None, xp.where(c, g, 0) if needs[1] else None, xp.where(c, 0, g) if needs[2] else None)


_where = op_needs("where", _where_fwd, _where_vjp)


def where(condition, x1=None, x2=None):
    c = to_array(value(condition)).astype(bool)
    if x1 is None and x2 is None:
        return nonzero(c)
    if x1 is None or x2 is None:
        raise ValueError("where: give both x1 and x2, or neither")
    return _where(*_same_device(c, _operand(x1), _operand(x2)))


def _clip_fwd(x, lo, hi):
    return xp_of(x).clip(x, lo, hi)


def _clip_vjp(g, out, x, lo, hi):
    xp = xp_of(x, g)
    m = xp.ones(x.shape, bool)
    if lo is not None:
        m &= x >= lo
    if hi is not None:
        m &= x <= hi
    return xp.where(m, g, 0)


_clip = primitive("clip", _clip_fwd, _clip_vjp)


def clip(x, x_min, x_max):
    """Gradient 1 where x_min <= x <= x_max, else 0; the bounds are constants."""
    return _clip(x if isinstance(x, Tensor) else to_array(x), lo=value(x_min), hi=value(x_max))


def select(condlist, choicelist, default=0):
    out = _operand(default)
    for c, v in reversed(list(zip(condlist, choicelist))):
        out = where(c, v, out)
    return out


# ============================================================== sorting (values differentiable)
def sort(x, axis=-1):
    x = x if isinstance(x, Tensor) else to_array(x)
    if axis is None:
        x, axis = ravel(x), 0
    return take_along_axis(x, argsort(x, axis=axis), axis=axis)


# ============================================================== creation (constants)
def _dt(dtype, default=FLOATX):
    return standardize_dtype(dtype) if dtype is not None else np.dtype(default)


def _shape_arg(shape):
    if isinstance(shape, (int, np.integer)):
        return (int(shape),)
    return tuple(int(value(s)) for s in shape)


def zeros(shape, dtype=None):
    return np.zeros(_shape_arg(shape), _dt(dtype))


def ones(shape, dtype=None):
    return np.ones(_shape_arg(shape), _dt(dtype))


def empty(shape, dtype=None):
    return np.empty(_shape_arg(shape), _dt(dtype))


def full(shape, fill_value, dtype=None):
    fv = value(fill_value)
    return np.full(_shape_arg(shape), fv, _dt(dtype))


def _like(x):
    x = value(x)
    return x if hasattr(x, "shape") and hasattr(x, "dtype") else to_array(x)


def zeros_like(x, dtype=None):
    x = _like(x)
    return xp_of(x).zeros(x.shape, standardize_dtype(dtype) or x.dtype)


def ones_like(x, dtype=None):
    x = _like(x)
    return xp_of(x).ones(x.shape, standardize_dtype(dtype) or x.dtype)


def full_like(x, fill_value, dtype=None):
    x = _like(x)
    return xp_of(x).full(x.shape, value(fill_value), standardize_dtype(dtype) or x.dtype)


def empty_like(x, dtype=None):
    return zeros_like(x, dtype)


def arange(start, stop=None, step=1, dtype=None):
    start, stop, step = value(start), value(stop), value(step)
    if dtype is None:
        vals = [v for v in (start, stop, step) if v is not None]
        dtype = FLOATX if builtins.any(isinstance(v, (float, np.floating)) or
                                       np.asarray(v).dtype.kind == "f" for v in vals) \
            else np.int32
    if stop is None:
        start, stop = 0, start
    return np.arange(start, stop, step, dtype=standardize_dtype(dtype))


def linspace(start, stop, num=50, endpoint=True, retstep=False, dtype=None, axis=0):
    res = np.linspace(value(start), value(stop), num, endpoint=endpoint, retstep=retstep,
                      axis=axis)
    d = _dt(dtype)
    if retstep:
        return res[0].astype(d), res[1]
    return res.astype(d)


def logspace(start, stop, num=50, endpoint=True, base=10, dtype=None, axis=0):
    return np.logspace(value(start), value(stop), num, endpoint=endpoint, base=base,
                       axis=axis).astype(_dt(dtype))


def eye(N, M=None, k=0, dtype=None):
    return np.eye(int(N), None if M is None else int(M), int(k), dtype=_dt(dtype))


def identity(n, dtype=None):
    return np.identity(int(n), dtype=_dt(dtype))


def tri(N, M=None, k=0, dtype=None):
    return np.tri(int(N), None if M is None else int(M), int(k), dtype=_dt(dtype))


@constant
def meshgrid(*x, indexing="xy"):
    return list(np.meshgrid(*(to_array(v) for v in x), indexing=indexing))


# ============================================================== dtype and conversion
def _cast_vjp(g, out, x, dtype):
    if x.dtype.kind not in "fc" or np.dtype(dtype).kind not in "fc":
        return None
    return g.astype(x.dtype)


_cast = primitive("cast", lambda x, dtype: x.astype(dtype) if x.dtype != dtype else x, _cast_vjp)


def cast(x, dtype):
    """x as dtype; the gradient flows between floating dtypes only."""
    return _cast(x if isinstance(x, Tensor) else to_array(x), dtype=standardize_dtype(dtype))


def stop_gradient(variable):
    """The value, treated as a constant by the tape."""
    return _tape.stop_gradient(variable)


def shape(x):
    return tuple(value(x).shape) if hasattr(value(x), "shape") else np.shape(x)


def ndim(x):
    return len(shape(x))


def size(x):
    return int(np.prod(shape(x), dtype=np.int64))


def copy(x):
    return x if isinstance(x, Tensor) else to_array(x).copy()


# ============================================================== scatter and segments
def _scatter_nd_index(indices):
    idx = to_array(value(indices))
    return tuple(np.moveaxis(np.asarray(idx), -1, 0)) if type(idx) is np.ndarray else \
        tuple(xp_of(idx).moveaxis(idx, -1, 0))


def _scatter_fwd(values, key, shape):
    xp = xp_of(values)
    z = xp.zeros(shape, values.dtype)
    _scatter_add(z, key, values)
    return z


_scatter = primitive("scatter", _scatter_fwd, lambda g, out, values, key, shape: g[key])


def scatter(indices, values, shape):
    """A zeros array of shape with values added at indices (shape (..., rank)); repeated
    indices accumulate (TensorFlow's scatter_nd)."""
    v = values if isinstance(values, Tensor) else to_array(values)
    return _scatter(v, key=_on_device_of(v, _scatter_nd_index(indices)),
                    shape=tuple(int(s) for s in shape))


def _scatter_update_fwd(x, updates, key):
    out = x.copy()
    out[key] = updates
    return out


def _scatter_update_vjp(g, out, x, updates, key):
    gx = g.copy()
    gx[key] = 0
    return gx, g[key]


_scatter_update = primitive("scatter_update", _scatter_update_fwd, _scatter_update_vjp)


def scatter_update(inputs, indices, updates):
    """A copy of inputs with the entries at indices (shape (n, rank)) set to updates."""
    x = inputs if isinstance(inputs, Tensor) else to_array(inputs)
    u = updates if isinstance(updates, Tensor) else to_array(updates)
    return _scatter_update(x, u, key=_on_device_of(x, _scatter_nd_index(indices)))


def _segment_sum_fwd(data, ids, num_segments):
    xp = xp_of(data)
    z = xp.zeros((num_segments,) + data.shape[1:], data.dtype)
    _scatter_add(z, ids, data)
    return z


_segment_sum = primitive("segment_sum", _segment_sum_fwd,
                         lambda g, out, data, ids, num_segments: g[ids])


def segment_sum(data, segment_ids, num_segments=None, sorted=False):
    d = data if isinstance(data, Tensor) else to_array(data)
    ids = to_array(value(segment_ids)).astype(np.int64)
    n = int(ids.max()) + 1 if num_segments is None and ids.size else int(num_segments or 0)
    return _segment_sum(d, ids=_on_device_of(d, ids), num_segments=n)


def segment_max(data, segment_ids, num_segments=None, sorted=False):
    """Forward only (no gradient under a tape); empty segments hold the dtype's lowest value."""
    no_gradient_guard("segment_max", data)
    d = to_array(value(data))
    ids = to_array(value(segment_ids)).astype(np.int64)
    n = int(ids.max()) + 1 if num_segments is None and ids.size else int(num_segments or 0)
    xp = xp_of(d)
    low = np.finfo(d.dtype).min if d.dtype.kind == "f" else np.iinfo(d.dtype).min
    z = xp.full((n,) + d.shape[1:], low, d.dtype)
    if xp is np:
        np.maximum.at(z, ids, d)
    else:
        import cupyx
        cupyx.scatter_max(z, ids, d)
    return z


@constant
def searchsorted(sorted_sequence, values, side="left"):
    return xp_of(sorted_sequence).searchsorted(to_array(sorted_sequence), to_array(values),
                                               side=side).astype(np.int32)


@constant
def digitize(x, bins):
    return xp_of(x).digitize(to_array(x), to_array(bins)).astype(np.int32)


@constant
def bincount(x, weights=None, minlength=0, sparse=False):
    return xp_of(x).bincount(to_array(x), None if weights is None else to_array(weights),
                             minlength=minlength)


def real(x):
    return x if isinstance(x, Tensor) else xp_of(x).real(to_array(x))


def imag(x):
    return zeros_like(x)


def conjugate(x):
    return x if isinstance(x, Tensor) else to_array(x)


conj = conjugate


def median(x, axis=None, keepdims=False):
    """Differentiable through the sorted values (the middle one, or the mean of two)."""
    x = x if isinstance(x, Tensor) else float_of(x)
    if axis is None:
        xs, ax = sort(ravel(x), axis=0), 0
    else:
        if isinstance(axis, (tuple, list)):
            raise ValueError("median: fastdl supports one axis or None")
        ax = int(axis) % x.ndim
        xs = sort(x, axis=ax)
    n = xs.shape[ax]
    lo, hi = (n - 1) // 2, n // 2
    pick = take(xs, np.array([lo, hi]), axis=ax)
    m = mean(pick, axis=ax, keepdims=True)
    if keepdims:
        if axis is None:
            return reshape(m, (1,) * x.ndim)
        return m
    return squeeze(m, ax)
