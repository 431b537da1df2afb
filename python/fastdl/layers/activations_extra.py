"""Activation layers with parameters: LeakyReLU, PReLU (a trained slope) and ELU."""
import math
import warnings

from .. import _device, initializers
from .layer import Layer, shape_str


def _number(v, what, layer, minimum=None):
    try:
        f = float(v)
    except (TypeError, ValueError):
        raise ValueError(f"{layer}: {what} must be a number, got {v!r}") from None
    if math.isnan(f) or (minimum is not None and f < minimum):
        raise ValueError(f"{layer}: {what} must be a number >= {minimum}, got {v!r}")
    return f


class LeakyReLU(Layer):
    """x for x > 0, negative_slope * x otherwise."""

    def __init__(self, negative_slope=0.3, **kw):
        if "alpha" in kw:   # Keras 2's name, still taken by Keras 3 with a warning
            warnings.warn("LeakyReLU: argument `alpha` is deprecated; use `negative_slope`",
                          stacklevel=2)
            negative_slope = kw.pop("alpha")
        super().__init__(**kw)
        self.negative_slope = _number(negative_slope, "negative_slope", "LeakyReLU", 0.0)

    def call(self, x, training=False):
        self._x = x
        xp = _device.xp(x)
        return xp.where(x > 0, x, x * self.negative_slope).astype(x.dtype, copy=False)

    def backward(self, dy, need_dx=True):
        if not need_dx:
            return None
        return _device.xp(dy).where(self._x > 0, dy, dy * self.negative_slope).astype(
            dy.dtype, copy=False)

    def get_config(self):
        return {**super().get_config(), "negative_slope": self.negative_slope}


class ELU(Layer):
    """x for x > 0, alpha * (exp(x) - 1) otherwise."""

    def __init__(self, alpha=1.0, **kw):
        super().__init__(**kw)
        self.alpha = _number(alpha, "alpha", "ELU")

    def call(self, x, training=False):
        self._x = x
        xp = _device.xp(x)
        self._e = xp.exp(xp.minimum(x, 0))
        return xp.where(x > 0, x, self.alpha * (self._e - 1)).astype(x.dtype, copy=False)

    def backward(self, dy, need_dx=True):
        if not need_dx:
            return None
        return _device.xp(dy).where(self._x > 0, dy, dy * (self.alpha * self._e)).astype(
            dy.dtype, copy=False)

    def get_config(self):
        return {**super().get_config(), "alpha": self.alpha}


class PReLU(Layer):
    """x for x > 0, alpha * x otherwise, alpha a trained weight of shape input_shape[1:]
    (size 1 along shared_axes, 1-indexed as in Keras)."""

    def __init__(self, alpha_initializer="Zeros", alpha_regularizer=None, alpha_constraint=None,
                 shared_axes=None, **kw):
        super().__init__(**kw)
        from .. import regularizers
        if alpha_constraint is not None:
            raise NotImplementedError("PReLU: alpha_constraint is not supported")
        self.alpha_initializer = initializers.get(alpha_initializer)
        self.alpha_regularizer = regularizers.get(alpha_regularizer)
        if shared_axes is None:
            self.shared_axes = None
        else:
            axes = [shared_axes] if isinstance(shared_axes, int) else list(shared_axes)
            if any(isinstance(a, bool) or not isinstance(a, int) or a < 1 for a in axes):
                raise ValueError(f"PReLU: shared_axes must be positive axis numbers (1-indexed, "
                                 f"the batch axis 0 cannot be shared), got {shared_axes!r}")
            self.shared_axes = sorted(set(axes))

    def build(self, s):
        if len(s) < 2:
            raise ValueError(f"PReLU {self.name!r} needs inputs with at least one non-batch "
                             f"axis, got {shape_str(s)}")
        shape = list(s[1:])
        for a in self.shared_axes or ():
            if a >= len(s):
                raise ValueError(f"PReLU {self.name!r}: shared axis {a} is out of range for "
                                 f"inputs of shape {shape_str(s)}")
            shape[a - 1] = 1
        if any(d is None for d in shape):
            raise ValueError(f"PReLU {self.name!r}: the input axes that are not shared must be "
                             f"known, got {shape_str(s)} with shared_axes={self.shared_axes}")
        self._sum_axes = tuple(i for i, d in enumerate([None] + shape) if d == 1 or i == 0)
        self.add_weight(tuple(shape), self.alpha_initializer, name="alpha",
                        regularizer=self.alpha_regularizer)

    @property
    def alpha(self):
        return self._weights[0]

    def call(self, x, training=False):
        self._x = x
        xp = _device.xp(x)
        return xp.where(x > 0, x, x * self._weights[0]).astype(x.dtype, copy=False)

    def backward(self, dy, need_dx=True):
        xp = _device.xp(dy)
        x = self._x
        neg = xp.minimum(x, 0)
        g = (dy * neg).sum(axis=self._sum_axes, keepdims=True)
        self._grads[0][...] = g.reshape(self._grads[0].shape)
        if not need_dx:
            return None
        return xp.where(x > 0, dy, dy * self._weights[0]).astype(dy.dtype, copy=False)

    def get_config(self):
        from .. import regularizers
        cfg = {**super().get_config(),
               "alpha_initializer": initializers.serialize(self.alpha_initializer),
               "shared_axes": self.shared_axes}
        if self.alpha_regularizer is not None:
            cfg["alpha_regularizer"] = regularizers.serialize(self.alpha_regularizer)
        return cfg

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if "alpha_initializer" in config:
            config["alpha_initializer"] = initializers.get(config["alpha_initializer"])
        return cls(**config)
