"""``keras.constraints``: projections applied to a weight after each optimizer step.

A layer passes ``constraint=`` to ``add_weight`` (Dense and Conv2D take
``kernel_constraint`` / ``bias_constraint``); the optimizer then replaces the weight
by ``constraint(weight)`` after every update, as Keras 3 does. Each constraint
maps an array to an array of the same shape (NumPy or CuPy).
"""
import numpy as np

from . import _device

__all__ = ["Constraint", "MaxNorm", "NonNeg", "UnitNorm", "MinMaxNorm", "max_norm", "non_neg",
           "unit_norm", "min_max_norm", "get", "serialize", "deserialize"]

_EPSILON = 1e-7


class Constraint:
    """Base class: ``__call__(w)`` returns the constrained weight."""

    def __call__(self, w):
        return w

    def get_config(self):
        return {}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def _number(v, name, where, positive=False):
    if isinstance(v, bool) or not isinstance(v, (int, float, np.number)) or not np.isfinite(v):
        raise ValueError(f"{where}: {name} must be a finite number, got {v!r}")
    if v < 0 or (positive and v == 0):
        raise ValueError(f"{where}: {name} must be {'> 0' if positive else '>= 0'}, got {v!r}")
    return float(v)


def _axis(axis, where):
    if isinstance(axis, (list, tuple)):
        return tuple(int(a) for a in axis)
    if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
        raise ValueError(f"{where}: axis must be an int or a tuple of ints, got {axis!r}")
    return int(axis)


def _norms(w, axis):
    xp = _device.xp(w)
    return xp.sqrt(xp.sum(xp.square(w), axis=axis, keepdims=True))


class MaxNorm(Constraint):
    """Rescales the slices along ``axis`` whose L2 norm exceeds max_value to that norm."""

    def __init__(self, max_value=2, axis=0):
        self.max_value = _number(max_value, "max_value", "MaxNorm")
        self.axis = _axis(axis, "MaxNorm")

    def __call__(self, w):
        xp = _device.xp(w)
        norms = _norms(w, self.axis)
        desired = xp.clip(norms, 0, self.max_value)
        return w * (desired / (_EPSILON + norms)).astype(w.dtype, copy=False)

    def get_config(self):
        return {"max_value": self.max_value, "axis": self.axis}


class NonNeg(Constraint):
    """Sets negative entries to zero."""

    def __call__(self, w):
        return w * (w >= 0).astype(w.dtype)


class UnitNorm(Constraint):
    """Divides the slices along ``axis`` by their L2 norm."""

    def __init__(self, axis=0):
        self.axis = _axis(axis, "UnitNorm")

    def __call__(self, w):
        return w / (_EPSILON + _norms(w, self.axis)).astype(w.dtype, copy=False)

    def get_config(self):
        return {"axis": self.axis}


class MinMaxNorm(Constraint):
    """Moves the L2 norm of each slice along ``axis`` into [min_value, max_value], by
    the fraction ``rate`` of the way (Keras)."""

    def __init__(self, min_value=0.0, max_value=1.0, rate=1.0, axis=0):
        self.min_value = _number(min_value, "min_value", "MinMaxNorm")
        self.max_value = _number(max_value, "max_value", "MinMaxNorm")
        if self.min_value > self.max_value:
            raise ValueError(f"MinMaxNorm: min_value ({min_value}) must not exceed max_value "
                             f"({max_value})")
        self.rate = _number(rate, "rate", "MinMaxNorm")
        self.axis = _axis(axis, "MinMaxNorm")

    def __call__(self, w):
        xp = _device.xp(w)
        norms = _norms(w, self.axis)
        desired = self.rate * xp.clip(norms, self.min_value, self.max_value) + \
            (1 - self.rate) * norms
        return w * (desired / (_EPSILON + norms)).astype(w.dtype, copy=False)

    def get_config(self):
        return {"min_value": self.min_value, "max_value": self.max_value, "rate": self.rate,
                "axis": self.axis}


max_norm = MaxNorm
non_neg = NonNeg
unit_norm = UnitNorm
min_max_norm = MinMaxNorm

_REGISTRY = {"max_norm": MaxNorm, "non_neg": NonNeg, "unit_norm": UnitNorm,
             "min_max_norm": MinMaxNorm}


def get(identifier):
    if identifier is None:
        return None
    if isinstance(identifier, Constraint):
        return identifier
    if isinstance(identifier, type) and issubclass(identifier, Constraint):
        return identifier()
    if isinstance(identifier, str):
        key = identifier.lower()
        for name, cls in _REGISTRY.items():
            if key in (name, cls.__name__.lower()):
                return cls()
    if isinstance(identifier, dict) and "class_name" in identifier:
        return deserialize(identifier)
    if callable(identifier):
        return identifier
    raise ValueError(f"unknown constraint {identifier!r}; known constraints: "
                     f"{', '.join(_REGISTRY)}")


def serialize(constraint):
    if constraint is None:
        return None
    return {"class_name": type(constraint).__name__, "config": constraint.get_config()}


def deserialize(config, custom_objects=None):
    name = config["class_name"]
    if custom_objects and name in custom_objects:
        return custom_objects[name].from_config(config.get("config", {}))
    for cls in _REGISTRY.values():
        if cls.__name__ == name:
            return cls.from_config(config.get("config", {}))
    raise ValueError(f"unknown constraint class {name!r}")


# ------------------------------------------------------------------ weights -> constraints
# The weights are plain arrays, so the constraint of each lives here, keyed by the array's
# id (with the array itself, so a recycled id never matches); optimizers look it up.
_attached = {}


def attach(w, constraint):
    """Constrain weight w after each optimizer update (Layer.add_weight(constraint=))."""
    c = get(constraint)
    if c is None:
        _attached.pop(id(w), None)
    else:
        if not callable(c):
            raise ValueError(f"constraint {constraint!r} is not callable")
        _attached[id(w)] = (w, c)
    return c


def constraint_of(w):
    hit = _attached.get(id(w))
    return hit[1] if hit is not None and hit[0] is w else None


def apply(params):
    """Replace each constrained parameter by constraint(parameter), in place."""
    if not _attached:
        return
    for p in params:
        hit = _attached.get(id(p))
        if hit is not None and hit[0] is p:
            out = hit[1](p)
            out = getattr(out, "value", out)   # a traced or wrapped value
            if out is not p:
                p[...] = out
