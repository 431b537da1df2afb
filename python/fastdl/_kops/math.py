"""keras.ops' math, linalg and core functions, differentiable where Keras' are."""
import numpy as np

from .. import _tape, _variable
from .._tape import Tensor, primitive, value
from . import numpy as knp
from ._base import float_of, is_array, no_gradient_guard, standardize_dtype, \
    to_array, xp_of
from .nn import _erf


# ------------------------------------------------------------------ math
def _erf_vjp(g, out, x):
    return g * (2 / np.sqrt(np.pi)) * xp_of(x).exp(-x * x)


_erf_op = primitive("erf", _erf, _erf_vjp)


def erf(x):
    return _erf_op(x if isinstance(x, Tensor) else float_of(x))


def top_k(x, k, sorted=True):
    """(values, indices) of the k largest entries along the last axis; the values are
    differentiable (the gradient goes back to the chosen entries)."""
    x = x if isinstance(x, Tensor) else to_array(x)
    v = value(x)
    xp = xp_of(v)
    idx = xp.argsort(-v, axis=-1, kind="stable")[..., :int(k)].astype(np.int32)
    return knp.take_along_axis(x, idx, axis=-1), idx


def in_top_k(targets, predictions, k):
    """Whether each target class is among the k largest predictions of its row. No gradient."""
    t = to_array(value(targets)).astype(np.int64)
    p = to_array(value(predictions))
    xp = xp_of(p)
    tv = xp.take_along_axis(p, t[:, None], axis=-1)
    # ties count in the target's favour, as TensorFlow does
    return (xp.sum(p > tv, axis=-1) < int(k)) & xp.isfinite(tv[:, 0])


def logsumexp(x, axis=None, keepdims=False):
    return knp.logsumexp(x, axis=axis, keepdims=keepdims)


def rsqrt(x):
    return knp.rsqrt(x)


# ------------------------------------------------------------------ linalg
def norm(x, ord=None, axis=None, keepdims=False):
    """Vector or matrix norm (np.linalg.norm's semantics), built from differentiable ops.
    The spectral (2, -2) and nuclear matrix norms have no gradient here."""
    x = x if isinstance(x, Tensor) else float_of(x)
    nd = x.ndim
    if axis is None:
        axes = tuple(range(nd))
        if nd > 2 or (ord is not None and nd != (1 if ord != "fro" and ord != "nuc" else 2)):
            if nd > 2 and ord is not None:
                raise ValueError("norm: improper number of dimensions to norm")
    else:
        axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    axes = tuple(a % nd for a in axes) if nd else ()
    if axis is None and ord is None:
        # Frobenius / 2-norm of everything
        r = knp.sqrt(knp.sum(knp.square(x), axis=None, keepdims=keepdims))
        return r
    if len(axes) == 1:
        return _vector_norm(x, ord, axes[0], keepdims)
    if len(axes) != 2:
        raise ValueError(f"norm: axis must name one or two axes, got {axis!r}")
    return _matrix_norm(x, ord, axes, keepdims)


def _vector_norm(x, ord, ax, keepdims):
    a = knp.abs(x)
    if ord is None or ord == 2:
        return knp.sqrt(knp.sum(knp.square(x), axis=ax, keepdims=keepdims))
    if ord == np.inf or ord == "inf":
        return knp.max(a, axis=ax, keepdims=keepdims)
    if ord == -np.inf:
        return knp.min(a, axis=ax, keepdims=keepdims)
    if ord == 0:
        v = value(x)
        return knp.cast(xp_of(v).sum(v != 0, axis=ax, keepdims=keepdims), v.dtype)
    if ord == 1:
        return knp.sum(a, axis=ax, keepdims=keepdims)
    if isinstance(ord, str):
        raise ValueError(f"norm: invalid norm order {ord!r} for vectors")
    p = float(ord)
    return knp.power(knp.sum(knp.power(a, p), axis=ax, keepdims=keepdims), 1.0 / p)


def _matrix_norm(x, ord, axes, keepdims):
    r, c = axes
    if ord is None or ord == "fro":
        return knp.sqrt(knp.sum(knp.square(x), axis=axes, keepdims=keepdims))
    a = knp.abs(x)
    if ord in (1, -1, np.inf, -np.inf):
        red_first, red_then = (r, c) if ord in (1, -1) else (c, r)
        s = knp.sum(a, axis=red_first, keepdims=True)
        f = knp.max if ord in (1, np.inf) else knp.min
        out = f(s, axis=red_then, keepdims=True)
        if not keepdims:
            out = knp.squeeze(out, axis=axes)
        return out
    if ord in (2, -2, "nuc"):
        no_gradient_guard("norm", x, why=f" (ord={ord!r})")
        v = value(x)
        return xp_of(v).linalg.norm(v, ord=ord, axis=axes, keepdims=keepdims)
    raise ValueError(f"norm: invalid norm order {ord!r} for matrices")


# ------------------------------------------------------------------ core
def convert_to_tensor(x, dtype=None, sparse=None, ragged=None):
    """x as a tensor: a traced Tensor or a Variable stays itself (cast if dtype asks), the
    traced value of an array the recording tape watches, a CuPy array stays CuPy, and
    anything else becomes an ``EagerTensor``: a NumPy array whose Python operators a
    GradientTape records once it watches it. Python floats become float32 and ints int32
    (Keras' defaults)."""
    dt = standardize_dtype(dtype)
    if isinstance(x, (Tensor, _variable.Traceable)):
        return x if dt is None or x.dtype == dt else knp.cast(x, dt)
    if _tape._state.active and is_array(x):
        leaf = _tape.leaf(x)
        if leaf is not None:
            return leaf if dt is None or leaf.dtype == dt else knp.cast(leaf, dt)
    a = to_array(x, dt)
    return _variable.eager(a) if type(a) is np.ndarray else a


def convert_to_numpy(x):
    """A NumPy array with x's value (copied from the GPU for CuPy arrays). A traced value
    while its tape records is refused: the gradient would be lost (as ``np.asarray``)."""
    if isinstance(x, Tensor) and x._live() and not _tape._soft_use(x, "convert_to_numpy"):
        raise TypeError("ops.convert_to_numpy cannot take a traced value while its GradientTape "
                        "records: the gradient would be lost. Use ops.stop_gradient for a "
                        "constant, or keep computing with fastdl.ops")
    v = value(x)
    if is_array(v) and type(v) is not np.ndarray:
        get = getattr(v, "get", None)
        if callable(get):
            return get()
    return np.asarray(v)


def is_tensor(x):
    return isinstance(x, Tensor) or (is_array(x) and not isinstance(x, np.generic))


def dtype(x):
    return np.dtype(value(x).dtype).name if hasattr(value(x), "dtype") else \
        np.asarray(x).dtype.name


def saturate_cast(x, dtype):
    dt = standardize_dtype(dtype)
    if dt.kind in "iu":
        info = np.iinfo(dt)
        x = knp.clip(x, info.min, info.max)
    return knp.cast(x, dt)


def cond(pred, true_fn, false_fn):
    return true_fn() if bool(value(pred)) else false_fn()


def fori_loop(lower, upper, body_fun, init_val):
    val = init_val
    for i in range(int(value(lower)), int(value(upper))):
        val = body_fun(i, val)
    return val


def while_loop(cond, body, loop_vars, maximum_iterations=None):
    single = not isinstance(loop_vars, (list, tuple))
    vals = (loop_vars,) if single else tuple(loop_vars)
    n = 0
    while (maximum_iterations is None or n < maximum_iterations) and bool(value(cond(*vals))):
        out = body(*vals)
        vals = (out,) if single else tuple(out)
        n += 1
    return vals[0] if single else vals


def vectorized_map(function, elements):
    """function applied to each slice along the first axis, results stacked."""
    if isinstance(elements, (list, tuple)):
        n = len(elements[0])
        outs = [function(type(elements)(e[i] for e in elements)) for i in range(n)]
    else:
        outs = [function(elements[i]) for i in range(len(elements))]
    return knp.stack(outs, axis=0)


def map(f, xs):
    return vectorized_map(f, xs)


# ------------------------------------------------------------------ linalg (differentiable)
def _inv_vjp(g, out, a):
    xp = xp_of(a, g)
    oT = xp.swapaxes(out, -1, -2)
    return -(oT @ g @ oT)


_inv = primitive("inv", lambda a: xp_of(a).linalg.inv(a), _inv_vjp)


def inv(x):
    return _inv(x if isinstance(x, Tensor) else float_of(x))


def _det_vjp(g, out, a):
    xp = xp_of(a, g)
    return (g * out)[..., None, None] * xp.swapaxes(xp.linalg.inv(a), -1, -2)


_det = primitive("det", lambda a: xp_of(a).linalg.det(a), _det_vjp)


def det(x):
    return _det(x if isinstance(x, Tensor) else float_of(x))


def _solve_fwd(a, b):
    xp = xp_of(a, b)
    if b.ndim == a.ndim - 1:
        return xp.linalg.solve(a, b[..., None])[..., 0]
    return xp.linalg.solve(a, b)


def _solve_vjp(g, out, a, b):
    xp = xp_of(a, b, g)
    vec = b.ndim == a.ndim - 1
    g2 = g[..., None] if vec else g
    x2 = out[..., None] if vec else out
    gb = xp.linalg.solve(xp.swapaxes(a, -1, -2), g2)
    ga = -gb @ xp.swapaxes(x2, -1, -2)
    return ga, (gb[..., 0] if vec else gb)


_solve = primitive("solve", _solve_fwd, _solve_vjp)


def solve(a, b):
    """x with a @ x = b (b a matrix, or a vector per matrix)."""
    return _solve(a if isinstance(a, Tensor) else float_of(a),
                  b if isinstance(b, Tensor) else float_of(b))


def _forward_only(name, fn):
    def op(x, *args, **kwargs):
        no_gradient_guard(name, x)
        v = value(x)
        return fn(xp_of(v), float_of(v), *args, **kwargs)
    op.__name__ = op.__qualname__ = name
    op.__doc__ = f"{name}: forward only (no gradient under a tape)."
    return op


cholesky = _forward_only("cholesky", lambda xp, a: xp.linalg.cholesky(a))
eigh = _forward_only("eigh", lambda xp, a: xp.linalg.eigh(a))
eig = _forward_only("eig", lambda xp, a: xp.linalg.eig(a))
qr = _forward_only("qr", lambda xp, a, mode="reduced": xp.linalg.qr(a, mode=mode))
svd = _forward_only("svd", lambda xp, a, full_matrices=True, compute_uv=True:
                    xp.linalg.svd(a, full_matrices=full_matrices, compute_uv=compute_uv))
slogdet = _forward_only("slogdet", lambda xp, a: tuple(xp.linalg.slogdet(a)))


# ------------------------------------------------------------------ custom gradients
class _Paused:
    """Every recording tape of this thread paused (a custom forward/backward runs on
    plain arrays)."""

    def __enter__(self):
        from .._tape import _active
        self.tapes = _active()
        for t in self.tapes:
            t._recording = False

    def __exit__(self, *exc):
        for t in self.tapes:
            t._recording = True
        return False


def custom_gradient(f):
    """Decorator: ``f(*args)`` returns ``(output, grad_fn)``; ``grad_fn(upstream)`` returns the
    gradient of each positional argument (one value, or a tuple). Keras' form
    ``def grad(*args, upstream=None)`` works too. The forward and grad_fn run on plain
    arrays; the tape records f as one operation."""
    import functools

    from .._tape import _active, record

    @functools.wraps(f)
    def wrapper(*args, **kwargs):
        raw = [value(a) for a in args]
        with _Paused():
            out, grad_fn = f(*raw, **kwargs)
        out = value(out)
        if not _active():
            return out

        def vjp(g):
            with _Paused():
                gs = grad_fn(g)
            gs = gs if isinstance(gs, (tuple, list)) else (gs,)
            return tuple(None if x is None else to_array(value(x)) for x in gs)
        return record(getattr(f, "__name__", "custom_gradient"), out, args, vjp)
    return wrapper


# ------------------------------------------------------------------ more math and control flow
def _erfinv_np(y):
    xp = xp_of(y)
    if xp is not np:
        import cupyx.scipy.special
        return cupyx.scipy.special.erfinv(y)
    try:
        from scipy.special import erfinv as serfinv
        return serfinv(y).astype(y.dtype, copy=False)
    except ImportError:  # pragma: no cover - SciPy is optional: Newton on erf
        a = 0.147
        ln = np.log1p(-y * y)
        t = 2 / (np.pi * a) + ln / 2
        x = np.sign(y) * np.sqrt(np.sqrt(t * t - ln / a) - t)
        for _ in range(3):
            x = x - (_erf(x) - y) / (2 / np.sqrt(np.pi) * np.exp(-x * x))
        return x.astype(y.dtype, copy=False)


_erfinv_op = primitive("erfinv", _erfinv_np,
                       lambda g, out, y: g * (np.sqrt(np.pi) / 2) * xp_of(y).exp(out * out))


def erfinv(x):
    return _erfinv_op(x if isinstance(x, Tensor) else float_of(x))


def switch(index, branches, *operands):
    """branches[index](*operands), index clipped to the valid range."""
    i = int(np.clip(int(value(index)), 0, len(branches) - 1))
    return branches[i](*operands)


def scan(f, init, xs=None, length=None, reverse=False, unroll=1):
    """JAX's scan: carry, y = f(carry, x) over the leading axis of xs; returns
    (final carry, ys stacked)."""
    if xs is None:
        n = int(length)
        items = [None] * n
    else:
        flat = xs if isinstance(xs, (list, tuple)) else None
        n = len(flat[0]) if flat is not None else len(xs)
        items = [type(flat)(e[i] for e in flat) if flat is not None else xs[i] for i in range(n)]
    order = range(n - 1, -1, -1) if reverse else range(n)
    carry, ys = init, [None] * n
    for i in order:
        carry, ys[i] = f(carry, items[i])
    if n == 0 or ys[0] is None:
        return carry, None
    if isinstance(ys[0], (list, tuple)):
        return carry, type(ys[0])(knp.stack([y[j] for y in ys]) for j in range(len(ys[0])))
    return carry, knp.stack(ys)
