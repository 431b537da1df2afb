"""Regularization layers: Dropout."""
from .. import _random, ops
from .layer import Layer, identity


class Dropout(Layer):
    """Inverted dropout in training, identity in inference. The mask is a pure
    function of a per-call seed (C++ counter-based generator): backward rebuilds it."""
    supports_masking = True
    _rows_independent = True

    def __init__(self, rate, noise_shape=None, seed=None, **kw):
        super().__init__(**kw)
        if not 0.0 <= float(rate) < 1.0:
            raise ValueError(f"Dropout rate must be in [0, 1), got {rate!r}")
        if noise_shape is not None:
            raise NotImplementedError("Dropout(noise_shape=...) is not supported")
        self.rate = float(rate)
        self.seed = seed
        self._gen = None
        self._base = 0
        self._count = 0
        self._active = False

    def _next_seed(self):
        g = _random.generation()
        if self._gen != g:
            self._gen = g
            self._base = self.seed if self.seed is not None else _random.next_seed()
            self._count = 0
        self._count += 1
        return (self._base + self._count * 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF

    def call(self, x, training=False):
        self._active = bool(training) and self.rate > 0.0
        if not self._active:
            return x
        self._seed = self._next_seed()
        return ops.dropout(x, self.rate, self._seed, out=self._buf("y", x.shape, x.dtype))

    def _inference_fn(self, rows, in_shape, batch):
        return identity

    def backward(self, dy, need_dx=True):
        if not need_dx:
            return None
        if not self._active:
            return dy
        return ops.dropout_backward(dy, self.rate, self._seed, out=self._buf("dx", dy.shape, dy.dtype))

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}
