"""Activations by name, as Keras spells them, each with its backward pass.

``get(name)`` returns an object with ``forward(x, out=None)`` and
``backward(dy, y, out=None)`` (the gradient through the forward OUTPUT y);
the module-level functions (``relu``, ``softmax``...) are the Keras-style
functional forms.
"""
import weakref

from . import _device, ops

__all__ = ["relu", "sigmoid", "tanh", "softmax", "linear", "gelu", "silu", "swish", "elu",
           "selu", "softplus", "softsign", "hard_sigmoid", "exponential", "leaky_relu", "get",
           "serialize", "KNOWN"]


def relu(x):
    return ops.relu(x)


def sigmoid(x):
    return ops.sigmoid(x)


def tanh(x):
    return ops.tanh(x)


def softmax(x, axis=-1):
    return ops.softmax(x, axis)


def linear(x):
    return x


def gelu(x, approximate=False):
    return ops.gelu(x, approximate=approximate)


def silu(x):
    return ops.silu(x)


swish = silu


def elu(x, alpha=1.0):
    return ops.elu(x, alpha)


def selu(x):
    return ops.selu(x)


def softplus(x):
    return ops.softplus(x)


def softsign(x):
    return ops.softsign(x)


def hard_sigmoid(x):
    return ops.hard_sigmoid(x)


def exponential(x):
    return ops.exp(x)


def leaky_relu(x, negative_slope=0.2):
    return ops.leaky_relu(x, negative_slope=negative_slope)


class _Activation:
    """One activation: forward and backward through the C++ kernels."""
    name = "linear"

    def forward(self, x, out=None):
        return x

    def backward(self, dy, y, out=None):
        return dy

    def __repr__(self):
        return f"<activation {self.name}>"


class _Elementwise(_Activation):
    def __init__(self, name, fn):
        self.name = name
        self._fn = fn

    def forward(self, x, out=None):
        return self._fn(x, out=out)

    def backward(self, dy, y, out=None):
        return ops.activation_backward(dy, y, self.name, out=out)


class _Softmax(_Activation):
    name = "softmax"

    def forward(self, x, out=None):
        return ops.softmax_kernel(x, -1, out=out)

    def backward(self, dy, y, out=None):
        return ops.softmax_backward(dy, y, -1, out=out)


def _write(r, out):
    if out is None:
        return r
    out[...] = r
    return out


class _FromOutput(_Activation):
    """An element-wise activation whose derivative is a function of its output y:
    fwd(x) -> y and dydx(y) -> f'(x), both with the array module of the input."""

    def __init__(self, name, fwd, dydx):
        self.name = name
        self._fwd = fwd
        self._dydx = dydx

    def forward(self, x, out=None):
        return _write(self._fwd(_device.xp(x), x), out)

    def backward(self, dy, y, out=None):
        return _write(dy * self._dydx(_device.xp(y), y), out)


class _FromInput(_Activation):
    """An element-wise activation whose derivative needs the input (gelu, silu: neither
    is invertible from its output). The backward protocol hands over the output y only,
    so forward keeps f'(x) next to the output array it wrote, and backward(dy, y) finds
    it by y (the very array forward returned; a weak reference, so nothing outlives y)."""

    def __init__(self, name, fwd_and_d):
        self.name = name
        self._fwd_and_d = fwd_and_d
        self._saved = {}          # id(y) -> (weakref to y, f'(x))
        self._strong = []         # arrays that take no weak references: the last few

    def forward(self, x, out=None):
        y, d = self._fwd_and_d(_device.xp(x), x)    # d is computed before out (maybe x) is written
        y = _write(y, out)
        key = id(y)
        try:
            ref = weakref.ref(y, lambda r, key=key, saved=self._saved:
                              saved.pop(key, None) if saved.get(key, (None,))[0] is r else None)
        except TypeError:
            self._strong = [(a, b) for a, b in self._strong if a is not y][-15:] + [(y, d)]
            return y
        self._saved[key] = (ref, d)
        return y

    def _derivative(self, y):
        hit = self._saved.get(id(y))
        if hit is not None and hit[0]() is y:
            return hit[1]
        for a, d in self._strong:
            if a is y:
                return d
        raise RuntimeError(f"activation {self.name!r}: backward(dy, y) needs y to be the array "
                           f"its forward returned (its derivative depends on the input, which "
                           f"forward keeps next to that output)")

    def backward(self, dy, y, out=None):
        return _write(dy * self._derivative(y), out)


_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946
_SQRT_HALF = 0.7071067811865476
_INV_SQRT_2PI = 0.3989422804014327


def _gelu(xp, x):
    from ._kops.nn import _erf
    cdf = 0.5 * (1.0 + _erf(x * _SQRT_HALF))
    return (x * cdf).astype(x.dtype, copy=False), \
        (cdf + x * xp.exp(-0.5 * x * x) * _INV_SQRT_2PI).astype(x.dtype, copy=False)


def _sigmoid(xp, x):
    e = xp.exp(-xp.abs(x))
    return xp.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype, copy=False)


def _silu(xp, x):
    s = _sigmoid(xp, x)
    return x * s, s * (1 + x * (1 - s))


def _elu(xp, x, alpha=1.0):
    return xp.where(x > 0, x, alpha * xp.expm1(xp.minimum(x, 0))).astype(x.dtype, copy=False)


def _leaky(slope):
    return lambda xp, x: xp.where(x > 0, x, x * slope).astype(x.dtype, copy=False)


_REGISTRY = {
    "linear": _Activation(),
    "relu": _Elementwise("relu", ops.relu_kernel),
    "sigmoid": _Elementwise("sigmoid", ops.sigmoid_kernel),
    "tanh": _Elementwise("tanh", ops.tanh_kernel),
    "softmax": _Softmax(),
    # the derivative from the output y (the backward protocol's argument)
    "elu": _FromOutput("elu", _elu, lambda xp, y: xp.where(y > 0, 1, y + 1).astype(y.dtype)),
    "selu": _FromOutput("selu", lambda xp, x: _SELU_SCALE * _elu(xp, x, _SELU_ALPHA),
                        lambda xp, y: xp.where(y > 0, _SELU_SCALE, y + _SELU_SCALE * _SELU_ALPHA
                                               ).astype(y.dtype)),
    # softplus' = sigmoid(x) = 1 - exp(-y)
    "softplus": _FromOutput("softplus",
                            lambda xp, x: xp.logaddexp(x, 0).astype(x.dtype, copy=False),
                            lambda xp, y: -xp.expm1(-y)),
    # softsign' = 1 / (1 + |x|)^2 = (1 - |y|)^2
    "softsign": _FromOutput("softsign", lambda xp, x: x / (1 + xp.abs(x)),
                            lambda xp, y: (1 - xp.abs(y)) ** 2),
    # Keras 3: relu6(x + 3) / 6
    "hard_sigmoid": _FromOutput("hard_sigmoid",
                                lambda xp, x: xp.clip(x * (1 / 6) + 0.5, 0, 1).astype(x.dtype),
                                lambda xp, y: ((y > 0) & (y < 1)).astype(y.dtype) * (1 / 6)),
    "exponential": _FromOutput("exponential", lambda xp, x: xp.exp(x), lambda xp, y: y),
    # Keras' activation default slope 0.2 (the LeakyReLU layer's is 0.3)
    "leaky_relu": _FromOutput("leaky_relu", _leaky(0.2),
                              lambda xp, y: xp.where(y > 0, 1, 0.2).astype(y.dtype)),
    # the derivative needs the input: kept by forward
    "gelu": _FromInput("gelu", _gelu),
    "silu": _FromInput("silu", _silu),
}
_ALIASES = {"swish": "silu"}
KNOWN = tuple(_REGISTRY) + tuple(_ALIASES)
_FUNCS = {relu: "relu", sigmoid: "sigmoid", tanh: "tanh", softmax: "softmax", linear: "linear",
          gelu: "gelu", silu: "silu", elu: "elu", selu: "selu", softplus: "softplus",
          softsign: "softsign", hard_sigmoid: "hard_sigmoid", exponential: "exponential",
          leaky_relu: "leaky_relu"}


def get(identifier):
    """The activation for a name ('relu', ...), None (linear), or one of this module's functions."""
    if identifier is None:
        return _REGISTRY["linear"]
    if isinstance(identifier, _Activation):
        return identifier
    if callable(identifier) and identifier in _FUNCS:
        return _REGISTRY[_FUNCS[identifier]]
    if isinstance(identifier, str):
        key = _ALIASES.get(identifier.lower(), identifier.lower())
        if key in _REGISTRY:
            return _REGISTRY[key]
    raise ValueError(f"unknown activation {identifier!r}; known activations: {', '.join(KNOWN)}")


def serialize(act):
    return act.name
