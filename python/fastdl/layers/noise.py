"""Noise and regularization layers: SpatialDropout1D/2D, GaussianNoise, GaussianDropout and
ActivityRegularization. All are the identity at inference.

Training noise comes from fastdl's seeded random state (fastdl.set_seed makes it repeatable):
each call draws a 64-bit seed, as Dropout does, or derives it from the layer's own seed."""
import math

import numpy as np

from .. import _device, _random, ops
from .layer import Layer, shape_str


def _rate(v, layer):
    try:
        r = float(v)
    except (TypeError, ValueError):
        raise ValueError(f"{layer}: rate must be a number in [0, 1), got {v!r}") from None
    if not 0.0 <= r < 1.0:
        raise ValueError(f"{layer}: rate must be in [0, 1), got {v!r}")
    return r


def _seed_arg(seed, layer):
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))
                             or seed < 0):
        raise ValueError(f"{layer}: seed must be None or a non-negative integer, got {seed!r}")
    return None if seed is None else int(seed)


class _Seeded(Layer):
    """Per-call 64-bit seeds: from the layer's seed, or drawn from fastdl's random state
    (redrawn after fastdl.set_seed)."""

    def _init_seed(self, seed):
        self.seed = _seed_arg(seed, type(self).__name__)
        self._gen = None
        self._base = 0
        self._count = 0

    def _next_seed(self):
        g = _random.generation()
        if self._gen != g:
            self._gen = g
            self._base = self.seed if self.seed is not None else _random.next_seed()
            self._count = 0
        self._count += 1
        return (self._base + self._count * 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF

    def _normal(self, shape, like):
        """Standard normal noise of shape, where and of the dtype of ``like``."""
        z = np.random.default_rng(self._next_seed()).standard_normal(shape).astype(like.dtype)
        return z if type(like) is np.ndarray else _device.xp(like).asarray(z)


class _SpatialDropout(_Seeded):
    _rank = None

    def __init__(self, rate, seed=None, **kw):
        super().__init__(**kw)
        self.rate = _rate(rate, type(self).__name__)
        self._init_seed(seed)
        self._mask = None

    def build(self, s):
        if len(s) != self._rank:
            what = "batch, steps, channels" if self._rank == 3 else \
                "batch, height, width, channels"
            raise ValueError(f"{type(self).__name__} {self.name!r} expects {self._rank}-D inputs "
                             f"({what}), got an input of shape {shape_str(s)}")

    def call(self, x, training=False):
        if not training or self.rate == 0.0:
            self._mask = None
            return x
        n, c = x.shape[0], x.shape[-1]
        ones = self._buf("ones", (n, c), x.dtype)
        ones.fill(1)
        keep = ops.dropout(ones, self.rate, self._next_seed())    # 0 or 1 / (1 - rate)
        self._mask = keep.reshape((n,) + (1,) * (x.ndim - 2) + (c,))
        return x * self._mask

    def backward(self, dy, need_dx=True):
        if not need_dx:
            return None
        return dy if self._mask is None else dy * self._mask

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}


class SpatialDropout1D(_SpatialDropout):
    """Dropout of whole channels of (N, L, C) inputs: one draw per sample and channel."""
    _rank = 3


class SpatialDropout2D(_SpatialDropout):
    """Dropout of whole feature maps of (N, H, W, C) inputs: one draw per sample and channel."""
    _rank = 4

    def __init__(self, rate, data_format=None, seed=None, **kw):
        if data_format not in (None, "channels_last"):
            raise ValueError(f"SpatialDropout2D supports data_format='channels_last' only, "
                             f"got {data_format!r}")
        super().__init__(rate, seed=seed, **kw)

    def get_config(self):
        return {**super().get_config(), "data_format": "channels_last"}


class GaussianNoise(_Seeded):
    """x + N(0, stddev^2) noise in training; the identity at inference."""

    def __init__(self, stddev, seed=None, **kw):
        super().__init__(**kw)
        try:
            s = float(stddev)
        except (TypeError, ValueError):
            raise ValueError(f"GaussianNoise: stddev must be a number >= 0, got {stddev!r}") \
                from None
        if math.isnan(s) or s < 0:
            raise ValueError(f"GaussianNoise: stddev must be a number >= 0, got {stddev!r}")
        self.stddev = s
        self._init_seed(seed)

    def call(self, x, training=False):
        if not training or self.stddev == 0.0:
            return x
        return x + self._normal(x.shape, x) * x.dtype.type(self.stddev)

    def backward(self, dy, need_dx=True):
        return dy if need_dx else None

    def get_config(self):
        return {**super().get_config(), "stddev": self.stddev, "seed": self.seed}


class GaussianDropout(_Seeded):
    """x * N(1, rate / (1 - rate)) noise in training; the identity at inference."""

    def __init__(self, rate, seed=None, **kw):
        super().__init__(**kw)
        self.rate = _rate(rate, "GaussianDropout")
        self._init_seed(seed)
        self._noise = None

    def call(self, x, training=False):
        if not training or self.rate == 0.0:
            self._noise = None
            return x
        std = math.sqrt(self.rate / (1.0 - self.rate))
        self._noise = self._normal(x.shape, x) * x.dtype.type(std) + x.dtype.type(1)
        return x * self._noise

    def backward(self, dy, need_dx=True):
        if not need_dx:
            return None
        return dy if self._noise is None else dy * self._noise

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}


class ActivityRegularization(Layer):
    """The identity, adding l1 * sum(|x|) + l2 * sum(x^2) to the training loss (Keras 3:
    not divided by the batch size). Written with fastdl.ops so the penalty is traced."""

    def __init__(self, l1=0.0, l2=0.0, **kw):
        super().__init__(**kw)
        vals = []
        for what, v in (("l1", l1), ("l2", l2)):
            try:
                f = float(v)
            except (TypeError, ValueError):
                raise ValueError(f"ActivityRegularization: {what} must be a number >= 0, got "
                                 f"{v!r}") from None
            if math.isnan(f) or f < 0:
                raise ValueError(f"ActivityRegularization: {what} must be a number >= 0, got "
                                 f"{v!r}")
            vals.append(f)
        self.l1, self.l2 = vals

    def call(self, inputs):
        penalty = None
        if self.l1:
            penalty = ops.multiply(self.l1, ops.sum(ops.abs(inputs)))
        if self.l2:
            p2 = ops.multiply(self.l2, ops.sum(ops.square(inputs)))
            penalty = p2 if penalty is None else ops.add(penalty, p2)
        if penalty is not None:
            self.add_loss(penalty)
        return inputs

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "l1": self.l1, "l2": self.l2}
