"""``keras.regularizers``: penalties on weights, computed with the differentiable ops.

``regularizer(x)`` returns a scalar: a raw value outside a GradientTape, a traced Tensor
under one (so ``fit`` differentiates it like any other loss term).
"""
import math

from . import ops

__all__ = ["Regularizer", "L1", "L2", "L1L2", "OrthogonalRegularizer", "l1", "l2", "l1_l2",
           "orthogonal_regularizer", "serialize", "deserialize", "get"]


def _validate_float_arg(v, name):
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
        raise ValueError(f"Invalid value for argument {name}: expected a non-negative float. "
                         f"Received: {name}={v!r}")
    return float(v)


class Regularizer:
    """Base class: subclasses implement ``__call__(x)`` (a scalar) and ``get_config()``."""

    def __call__(self, x):
        return 0.0

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def get_config(self):
        raise NotImplementedError(f"{self} does not implement get_config()")


class L1(Regularizer):
    """l1 * sum(|x|)."""

    def __init__(self, l1=0.01):
        l1 = 0.01 if l1 is None else l1
        self.l1 = _validate_float_arg(l1, "l1")

    def __call__(self, x):
        return ops.multiply(self.l1, ops.sum(ops.absolute(x)))

    def get_config(self):
        return {"l1": float(self.l1)}


class L2(Regularizer):
    """l2 * sum(x ** 2)."""

    def __init__(self, l2=0.01):
        l2 = 0.01 if l2 is None else l2
        self.l2 = _validate_float_arg(l2, "l2")

    def __call__(self, x):
        return ops.multiply(self.l2, ops.sum(ops.square(x)))

    def get_config(self):
        return {"l2": float(self.l2)}


class L1L2(Regularizer):
    """l1 * sum(|x|) + l2 * sum(x ** 2); both factors default to 0 (Keras 3)."""

    def __init__(self, l1=0.0, l2=0.0):
        l1 = 0.0 if l1 is None else l1
        l2 = 0.0 if l2 is None else l2
        self.l1 = _validate_float_arg(l1, "l1")
        self.l2 = _validate_float_arg(l2, "l2")

    def __call__(self, x):
        x = ops.convert_to_tensor(x)
        reg = ops.zeros((), dtype=x.dtype) if x.dtype.kind == "f" else 0.0
        if self.l1:
            reg = ops.add(reg, ops.multiply(self.l1, ops.sum(ops.absolute(x))))
        if self.l2:
            reg = ops.add(reg, ops.multiply(self.l2, ops.sum(ops.square(x))))
        return reg

    def get_config(self):
        return {"l1": float(self.l1), "l2": float(self.l2)}


class OrthogonalRegularizer(Regularizer):
    """factor * mean of the absolute off-diagonal cosine similarities between the rows
    (mode='rows') or columns (mode='columns') of a 2-D weight."""

    def __init__(self, factor=0.01, mode="rows"):
        self.factor = _validate_float_arg(factor, "factor")
        if mode not in ("rows", "columns"):
            raise ValueError(f"Invalid value for argument mode. Expected one of "
                             f"{{'rows', 'columns'}}. Received: mode={mode}")
        self.mode = mode

    def __call__(self, inputs):
        if len(ops.shape(inputs)) != 2:
            raise ValueError(f"Inputs to OrthogonalRegularizer must have rank 2. Received: "
                             f"inputs.shape={ops.shape(inputs)}")
        x = inputs if self.mode == "rows" else ops.transpose(inputs)
        x = ops.normalize(x, axis=1)
        n = ops.shape(x)[0]
        product = ops.matmul(x, ops.transpose(x))
        size = n * (n - 1)
        off = ops.multiply(product, 1.0 - ops.eye(n, dtype=ops.convert_to_tensor(x).dtype))
        return ops.multiply(self.factor, ops.divide(ops.sum(ops.absolute(off)), size))

    def get_config(self):
        return {"factor": float(self.factor), "mode": self.mode}


# Keras 3 exports the lower-case names as aliases of the classes.
l1 = L1
l2 = L2
l1_l2 = L1L2
orthogonal_regularizer = OrthogonalRegularizer

_BY_NAME = {"L1": L1, "L2": L2, "L1L2": L1L2, "OrthogonalRegularizer": OrthogonalRegularizer,
            "l1": L1, "l2": L2, "l1_l2": L1L2, "orthogonal_regularizer": OrthogonalRegularizer}


def serialize(regularizer):
    if regularizer is None:
        return None
    return {"module": "keras.regularizers", "class_name": type(regularizer).__name__,
            "config": regularizer.get_config(), "registered_name": None}


def deserialize(config, custom_objects=None):
    if isinstance(config, str):
        config = {"class_name": config, "config": {}}
    name = config["class_name"]
    cls = (custom_objects or {}).get(name) or _BY_NAME.get(name)
    if cls is None:
        raise ValueError(f"Unknown regularizer: {name!r}. Known: {', '.join(sorted(_BY_NAME))}")
    return cls.from_config(config.get("config") or {})


def get(identifier):
    """A regularizer from None, an instance or callable, a name ('l1', 'l2', 'l1_l2',
    'L1L2', ...) or a serialized dict."""
    if identifier is None:
        return None
    if isinstance(identifier, dict):
        return deserialize(identifier)
    if isinstance(identifier, str):
        cls = _BY_NAME.get(identifier)
        if cls is None:
            raise ValueError(f"Could not interpret regularizer identifier: {identifier}")
        return cls()
    if callable(identifier):
        return identifier() if isinstance(identifier, type) else identifier
    raise ValueError(f"Could not interpret regularizer identifier: {identifier}")
