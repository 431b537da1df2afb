"""Activations by name, as Keras spells them, each with its backward pass.

``get(name)`` returns an object with ``forward(x, out=None)`` and
``backward(dy, y, out=None)`` (the gradient through the forward OUTPUT y);
the module-level functions (``relu``, ``softmax``...) are the Keras-style
functional forms.
"""
from . import ops

__all__ = ["relu", "sigmoid", "tanh", "softmax", "linear", "get", "serialize", "KNOWN"]


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


_REGISTRY = {
    "linear": _Activation(),
    "relu": _Elementwise("relu", ops.relu_kernel),
    "sigmoid": _Elementwise("sigmoid", ops.sigmoid_kernel),
    "tanh": _Elementwise("tanh", ops.tanh_kernel),
    "softmax": _Softmax(),
}
KNOWN = tuple(_REGISTRY)
_FUNCS = {relu: "relu", sigmoid: "sigmoid", tanh: "tanh", softmax: "softmax", linear: "linear"}


def get(identifier):
    """The activation for a name ('relu', ...), None (linear), or one of this module's functions."""
    if identifier is None:
        return _REGISTRY["linear"]
    if isinstance(identifier, _Activation):
        return identifier
    if callable(identifier) and identifier in _FUNCS:
        return _REGISTRY[_FUNCS[identifier]]
    if isinstance(identifier, str) and identifier.lower() in _REGISTRY:
        return _REGISTRY[identifier.lower()]
    raise ValueError(f"unknown activation {identifier!r}; known activations: {', '.join(KNOWN)}")


def serialize(act):
    return act.name
