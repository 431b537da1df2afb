"""Pooling layers beyond pooling.py: 1-D max/average pooling, global max pooling (1-D and
2-D) and global average pooling over steps, all channels-last.

The 1-D poolings view (N, L, C) as (N, L, 1, C) and run the 2-D pooling kernels."""
from .. import _device, ops
from ._conv_utils import conv_out, padding_arg
from .layer import Layer, shape_str


def _positive_int(v, what, layer):
    if isinstance(v, (tuple, list)):
        if len(v) != 1:
            raise ValueError(f"{layer}: {what} must be an integer or a tuple of 1 integer, "
                             f"got {v!r}")
        v = v[0]
    try:
        i = int(v)
    except (TypeError, ValueError):
        raise ValueError(f"{layer}: {what} must be a positive integer, got {v!r}") from None
    if i != v or i <= 0:
        raise ValueError(f"{layer}: {what} must be a positive integer, got {v!r}")
    return i


def _channels_last(data_format, layer):
    if data_format not in (None, "channels_last"):
        raise ValueError(f"{layer} supports data_format='channels_last' only, got "
                         f"{data_format!r}")


def _check_rank(layer, s, rank, what):
    if len(s) != rank:
        raise ValueError(f"{type(layer).__name__} {layer.name!r} expects {rank}-D inputs "
                         f"({what}), got an input of shape {shape_str(s)}")


class _Pool1D(Layer):
    _op = None

    def __init__(self, pool_size=2, strides=None, padding="valid", data_format=None, **kw):
        super().__init__(**kw)
        name = type(self).__name__
        _channels_last(data_format, name)
        self.pool_size = _positive_int(pool_size, "pool_size", name)
        self.strides = self.pool_size if strides is None else _positive_int(strides, "strides",
                                                                            name)
        p = padding_arg(padding)
        if p not in ("valid", "same"):
            raise ValueError(f"{name}: padding must be 'valid' or 'same', got {padding!r}")
        self.padding = p

    def build(self, s):
        _check_rank(self, s, 3, "batch, steps, channels")
        if self.padding == "valid" and s[1] is not None and s[1] < self.pool_size:
            raise ValueError(f"{type(self).__name__} {self.name!r}: an input of {s[1]} steps "
                             f"is shorter than pool_size {self.pool_size} with padding "
                             f"'valid' (use padding='same' or a smaller pool_size)")

    def compute_output_shape(self, s):
        return (s[0], conv_out(s[1], self.pool_size, self.strides, 1, self.padding), s[2])

    def _kw(self):
        return dict(pool_size=(self.pool_size, 1), strides=(self.strides, 1),
                    padding=self.padding)

    def call(self, x, training=False):
        x4 = _device.xp(x).ascontiguousarray(x).reshape(x.shape[0], x.shape[1], 1, x.shape[2])
        self._x4 = x4
        y = getattr(ops, self._op)(x4, **self._kw())
        return y.reshape(y.shape[0], y.shape[1], y.shape[3])

    def backward(self, dy, need_dx=True):
        if not need_dx:
            return None
        dy4 = _device.xp(dy).ascontiguousarray(dy).reshape(dy.shape[0], dy.shape[1], 1,
                                                            dy.shape[2])
        dx = getattr(ops, self._op + "_backward")(dy4, self._x4, **self._kw())
        return dx.reshape(self._x4.shape[0], self._x4.shape[1], self._x4.shape[3])

    def get_config(self):
        return {**super().get_config(), "pool_size": self.pool_size, "strides": self.strides,
                "padding": self.padding, "data_format": "channels_last"}


class MaxPooling1D(_Pool1D):
    """Max over windows of steps: (N, L, C) -> (N, L', C)."""
    _op = "max_pool2d"


class AveragePooling1D(_Pool1D):
    """Average over windows of steps (padding not counted): (N, L, C) -> (N, L', C)."""
    _op = "avg_pool2d"


MaxPool1D = MaxPooling1D
AvgPool1D = AveragePooling1D


class _GlobalPool(Layer):
    _rank = None   # input rank: 3 (N, L, C) or 4 (N, H, W, C)

    def __init__(self, data_format=None, keepdims=False, **kw):
        super().__init__(**kw)
        _channels_last(data_format, type(self).__name__)
        if keepdims not in (True, False, 0, 1):
            raise ValueError(f"{type(self).__name__}: keepdims must be True or False, got "
                             f"{keepdims!r}")
        self.keepdims = bool(keepdims)

    def build(self, s):
        _check_rank(self, s, self._rank, "batch, steps, channels" if self._rank == 3 else
                    "batch, height, width, channels")

    def compute_output_shape(self, s):
        if self.keepdims:
            return (s[0],) + (1,) * (self._rank - 2) + (s[-1],)
        return (s[0], s[-1])

    def _flat(self, x):
        """(N, positions, C) view of x."""
        self._xshape = x.shape
        return x.reshape(x.shape[0], -1, x.shape[-1])

    def _out(self, y):
        return y.reshape(self.compute_output_shape(self._xshape)) if self.keepdims else y

    def get_config(self):
        return {**super().get_config(), "data_format": "channels_last", "keepdims": self.keepdims}


class _GlobalMax(_GlobalPool):
    def call(self, x, training=False):
        xf = self._flat(x)
        xp = _device.xp(x)
        self._arg = xp.argmax(xf, axis=1)                       # (N, C): first maximum
        return self._out(xp.take_along_axis(xf, self._arg[:, None, :], axis=1)[:, 0, :])

    def backward(self, dy, need_dx=True):
        if not need_dx:
            return None
        xp = _device.xp(dy)
        n, c = self._arg.shape
        positions = _prod(self._xshape[1:-1])
        dy = dy.reshape(n, c)
        hit = xp.arange(positions)[None, :, None] == self._arg[:, None, :]
        return (hit * dy[:, None, :]).astype(dy.dtype, copy=False).reshape(self._xshape)


class _GlobalAvg(_GlobalPool):
    def call(self, x, training=False):
        return self._out(self._flat(x).mean(axis=1))

    def backward(self, dy, need_dx=True):
        if not need_dx:
            return None
        xp = _device.xp(dy)
        n, c = self._xshape[0], self._xshape[-1]
        positions = _prod(self._xshape[1:-1])
        g = (dy.reshape(n, 1, c) * (1.0 / max(positions, 1))).astype(dy.dtype, copy=False)
        return xp.broadcast_to(g, (n, positions, c)).reshape(self._xshape).copy()


def _prod(t):
    p = 1
    for d in t:
        p *= int(d)
    return p


class GlobalMaxPooling1D(_GlobalMax):
    """Max over steps: (N, L, C) -> (N, C), or (N, 1, C) with keepdims."""
    _rank = 3


class GlobalMaxPooling2D(_GlobalMax):
    """Max over height and width: (N, H, W, C) -> (N, C), or (N, 1, 1, C) with keepdims."""
    _rank = 4


class GlobalAveragePooling1D(_GlobalAvg):
    """Mean over steps: (N, L, C) -> (N, C), or (N, 1, C) with keepdims. With a mask
    (N, L), the mean of the unmasked steps (Keras)."""
    _rank = 3
    supports_masking = True

    def call(self, x, training=False, mask=None):
        self._weights_t = None
        if mask is None:
            return super().call(x, training)
        xf = self._flat(x)
        xp = _device.xp(x)
        m = xp.asarray(mask).astype(x.dtype).reshape(x.shape[0], -1, 1)
        w = m / xp.maximum(m.sum(axis=1, keepdims=True), 1)    # (N, L, 1): weight per step
        self._weights_t = w
        return self._out((xf * w).sum(axis=1).astype(x.dtype, copy=False))

    def backward(self, dy, need_dx=True):
        if self._weights_t is None or not need_dx:
            return super().backward(dy, need_dx)
        n, c = self._xshape[0], self._xshape[-1]
        return (dy.reshape(n, 1, c) * self._weights_t).astype(dy.dtype, copy=False)

    def compute_mask(self, inputs, mask=None):
        return None


GlobalMaxPool1D = GlobalMaxPooling1D
GlobalMaxPool2D = GlobalMaxPooling2D
GlobalAvgPool1D = GlobalAveragePooling1D
