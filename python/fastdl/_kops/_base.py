"""Shared helpers of the differentiable ``keras.ops`` functions.

Every operation is a forward on raw arrays (NumPy or CuPy) plus a vector-Jacobian
product, registered with ``_tape.primitive`` (or :func:`op_needs`, the same with the
knowledge of which inputs the tape follows, for ops whose gradients are costly).
Outside a recording tape an operation costs its forward only and returns a raw
array; inside, it returns a ``Tensor`` when an input depends on a watched value.
"""
import numpy as np

from .. import _tape
from .._tape import Tensor, primitive, record, value  # noqa: F401
from .._variable import Traceable

FLOATX = np.float32


def xp_of(*arrays):
    """numpy, or cupy when one of the arrays is a CuPy array."""
    for a in arrays:
        a = value(a)
        if type(a) is np.ndarray or a is None:
            continue
        mod = type(a).__module__.split(".", 1)[0]
        if mod == "cupy":
            import cupy
            return cupy
    return np


def to_device_of(ref, *arrays):
    """The NumPy arrays among arrays moved to ref's device when ref is a CuPy array (as
    Keras' convert_to_tensor places constants); anything else unchanged."""
    xp = xp_of(ref)
    if xp is np:
        return arrays if len(arrays) != 1 else arrays[0]
    out = tuple(xp.asarray(a) if type(a) is np.ndarray else a for a in arrays)
    return out if len(out) != 1 else out[0]


def is_array(a):
    return hasattr(a, "shape") and hasattr(a, "dtype") and not isinstance(a, np.generic)


def _traced_leaf(x):
    """The traced value of a Variable or EagerTensor the recording tape follows, else None."""
    tapes = _tape._state.active
    return _tape._track(x, tapes) if tapes else None


def to_array(x, dtype=None):
    """x as an array: arrays stay (cast to dtype if given); Python scalars and lists
    become NumPy arrays, Python floats as float32 and ints as int32 (as Keras does).
    A Variable (or EagerTensor) gives its plain array, or while a recording tape follows
    it its traced value, so that the operation that takes it is recorded."""
    if isinstance(x, Traceable):
        leaf = _traced_leaf(x)
        if leaf is not None:
            return leaf if dtype is None or leaf.dtype == np.dtype(dtype) else leaf.astype(dtype)
    x = value(x)
    if is_array(x):
        if dtype is not None and x.dtype != np.dtype(dtype):
            return x.astype(dtype)
        return x
    if isinstance(x, (list, tuple)) and any(isinstance(e, Tensor) or is_array(e)
                                            for e in _flat(x)):
        xp = xp_of(*_flat(x))
        x = xp.stack([to_array(e) for e in x]) if len(x) else xp.asarray(x)
        return x if dtype is None else x.astype(dtype)
    a = np.asarray(x, dtype=dtype)
    if dtype is None and not isinstance(x, np.generic):
        if a.dtype == np.float64:
            a = a.astype(FLOATX)
        elif a.dtype == np.int64:
            a = a.astype(np.int32)
    return a


def operand(x):
    """A binary operation's operand: Python scalars stay scalars (weakly typed, as in
    NumPy and Keras: float32 array + 1.0 stays float32); lists become arrays. A Variable
    as to_array gives it."""
    if isinstance(x, Traceable):
        leaf = _traced_leaf(x)
        if leaf is not None:
            return leaf
    x = value(x)
    if isinstance(x, (bool, int, float, complex)) or is_array(x) or isinstance(x, np.generic):
        return x
    return to_array(x)


def _flat(x):
    if isinstance(x, (list, tuple)):
        return [b for v in x for b in _flat(v)]
    return [x]


def standardize_dtype(dtype):
    if dtype is None:
        return None
    if isinstance(dtype, str) and dtype in ("float", "floatx"):
        return np.dtype(FLOATX)
    return np.dtype(getattr(dtype, "name", dtype) if not isinstance(dtype, str) else dtype)


def is_float(a):
    return np.dtype(getattr(a, "dtype", type(a))).kind in "fc"


def float_of(x):
    """x as a floating array: integers and booleans become float32 (Keras' floatx)."""
    x = to_array(x)
    return x if x.dtype.kind in "fc" else x.astype(FLOATX)


def normalize_axis(axis, ndim):
    """axis (None, int or sequence) -> tuple of non-negative axes."""
    if axis is None:
        return tuple(range(ndim))
    if isinstance(axis, (list, tuple)):
        return tuple(sorted(int(a) % ndim if ndim else 0 for a in axis))
    return (int(axis) % ndim if ndim else 0,)


def expand_reduced(g, shape, axis, keepdims):
    """The gradient g of a reduction over axis, reshaped to broadcast against shape."""
    if keepdims or g is None:
        return g
    axes = normalize_axis(axis, len(shape))
    kshape = tuple(1 if i in axes else s for i, s in enumerate(shape))
    return g.reshape(kshape)


def sum_to(g, shape):
    """Sum a broadcast gradient back to shape (NumPy's broadcasting rules)."""
    return _tape._sum_to(g, tuple(shape))


def op_needs(name, forward, vjp):
    """Like ``_tape.primitive``, but vjp(needs, g, out, *raw, **kwargs) also gets a tuple of
    booleans: which positional inputs the tape follows (the others need no gradient)."""
    state = _tape._state

    def op(*args, **kwargs):
        raw = [value(a) for a in args]
        out = forward(*raw, **kwargs)
        if not state.active:
            return out
        return _tape.record_needs(name, out, args,
                                  lambda needs, g: vjp(needs, g, out, *raw, **kwargs),
                                  (forward, vjp, kwargs, True))
    op.__name__ = op.__qualname__ = name
    return op


def constant(fn):
    """A function without a gradient (comparisons, argmax, sign...): it reads the values of
    Tensors and returns a raw array, a constant for the tape."""
    def op(*args, **kwargs):
        if _tape._state.capture is not None:
            for a in (*args, *kwargs.values()):
                _tape._escape(a, fn.__name__)
        return fn(*(value(a) for a in args), **{k: value(v) for k, v in kwargs.items()})
    op.__name__ = op.__qualname__ = fn.__name__
    op.__doc__ = fn.__doc__
    return op


def no_gradient_guard(name, *args, why=""):
    """Raise when a traced value reaches an operation whose gradient fastdl does not implement:
    never a silent missing gradient."""
    if _tape._active() and any(isinstance(a, Tensor) and a._live() and
                               not _tape._soft_use(a, name) for a in _flat(list(args))):
        raise NotImplementedError(
            f"fastdl.ops.{name}{why} has no gradient; it cannot be used on a traced value under a "
            f"GradientTape (wrap the input in fastdl.ops.stop_gradient to treat it as a constant)")


def is_np_float(*arrays):
    """All NumPy float32 (or all float64) arrays: the C++ kernels apply."""
    if not arrays:
        return False
    d = None
    for a in arrays:
        if type(a) is not np.ndarray or a.dtype not in (np.float32, np.float64):
            return False
        if d is None:
            d = a.dtype
        elif a.dtype != d:
            return False
    return True


def kernels():
    """fastdl.ops (its kernel functions), imported on first use."""
    return _OPS[0] if _OPS else _load_ops()


_OPS = []


def _load_ops():
    from .. import ops
    _OPS.append(ops)
    return ops
