"""More reshaping layers: RepeatVector, Permute, UpSampling1D, UpSampling2D,
ZeroPadding2D and Cropping2D (channels-last)."""
from .. import _device
from .layer import Layer, shape_str


def _int(v, what, layer, minimum):
    try:
        i = int(v)
    except (TypeError, ValueError):
        raise ValueError(f"{layer}: {what} must be an integer, got {v!r}") from None
    if isinstance(v, bool) or i != v or i < minimum:
        kind = "a positive" if minimum == 1 else "a non-negative"
        raise ValueError(f"{layer}: {what} must be {kind} integer, got {v!r}")
    return i


def _int_pair(v, what, layer, minimum):
    if isinstance(v, (list, tuple)):
        if len(v) != 2:
            raise ValueError(f"{layer}: {what} must be an integer or a tuple of 2 integers, "
                             f"got {v!r}")
        return tuple(_int(a, what, layer, minimum) for a in v)
    i = _int(v, what, layer, minimum)
    return (i, i)


def _two_sided(v, what, layer):
    """int, (sym_h, sym_w) or ((top, bottom), (left, right)) -> ((t, b), (l, r)), all >= 0."""
    if isinstance(v, (list, tuple)):
        if len(v) != 2:
            raise ValueError(f"{layer}: {what} must be an integer, a tuple of 2 integers or a "
                             f"tuple of 2 tuples of 2 integers, got {v!r}")
        return tuple(_int_pair(a, what, layer, 0) for a in v)
    i = _int(v, what, layer, 0)
    return ((i, i), (i, i))


def _channels_last(data_format, layer):
    if data_format not in (None, "channels_last"):
        raise ValueError(f"{layer} supports data_format='channels_last' only, got "
                         f"{data_format!r}")


def _check_rank(layer, s, rank, what):
    if len(s) != rank:
        raise ValueError(f"{type(layer).__name__} {layer.name!r} expects {rank}-D inputs "
                         f"({what}), got an input of shape {shape_str(s)}")


def _mul(d, k):
    return None if d is None else d * k


class RepeatVector(Layer):
    """(N, F) -> (N, n, F): the input repeated n times."""

    def __init__(self, n, **kw):
        super().__init__(**kw)
        self.n = _int(n, "n", "RepeatVector", 1)

    def build(self, s):
        _check_rank(self, s, 2, "batch, features")

    def compute_output_shape(self, s):
        return (s[0], self.n, s[1])

    def call(self, x, training=False):
        xp = _device.xp(x)
        return xp.ascontiguousarray(xp.broadcast_to(x[:, None, :], (x.shape[0], self.n,
                                                                    x.shape[1])))

    def backward(self, dy, need_dx=True):
        return dy.sum(axis=1) if need_dx else None

    def get_config(self):
        return {**super().get_config(), "n": self.n}


class Permute(Layer):
    """Permutes the non-batch axes: dims is a permutation of 1..rank-1 (1-indexed, Keras)."""

    def __init__(self, dims, **kw):
        super().__init__(**kw)
        try:
            d = tuple(int(a) for a in dims)
        except (TypeError, ValueError):
            raise ValueError(f"Permute: dims must be a tuple of integers, got {dims!r}") from None
        if sorted(d) != list(range(1, len(d) + 1)):
            raise ValueError(f"Permute: dims must be a permutation of 1..{len(d)} (the batch "
                             f"axis 0 stays), got {dims!r}")
        self.dims = d

    def build(self, s):
        if len(s) != len(self.dims) + 1:
            raise ValueError(f"Permute {self.name!r}: dims {self.dims} permute "
                             f"{len(self.dims)} axes, but the input of shape {shape_str(s)} "
                             f"has {len(s) - 1} non-batch axes")

    def compute_output_shape(self, s):
        return (s[0],) + tuple(s[d] for d in self.dims)

    def call(self, x, training=False):
        return _device.xp(x).ascontiguousarray(x.transpose((0,) + self.dims))

    def backward(self, dy, need_dx=True):
        if not need_dx:
            return None
        inv = [0] * (len(self.dims) + 1)
        for i, d in enumerate((0,) + self.dims):
            inv[d] = i
        return _device.xp(dy).ascontiguousarray(dy.transpose(inv))

    def get_config(self):
        return {**super().get_config(), "dims": list(self.dims)}


class UpSampling1D(Layer):
    """(N, L, C) -> (N, L * size, C): each step repeated size times."""

    def __init__(self, size=2, **kw):
        super().__init__(**kw)
        self.size = _int(size, "size", "UpSampling1D", 1)

    def build(self, s):
        _check_rank(self, s, 3, "batch, steps, channels")

    def compute_output_shape(self, s):
        return (s[0], _mul(s[1], self.size), s[2])

    def call(self, x, training=False):
        self._xshape = x.shape
        return _device.xp(x).repeat(x, self.size, axis=1)

    def backward(self, dy, need_dx=True):
        if not need_dx:
            return None
        n, l, c = self._xshape
        return dy.reshape(n, l, self.size, c).sum(axis=2)

    def get_config(self):
        return {**super().get_config(), "size": self.size}


def _bilinear_matrix(n, scale, dtype):
    """(n * scale, n) weights of bilinear resizing along one axis, half-pixel centres with the
    source position clamped to the edges (TensorFlow's resize, which Keras' TF backend runs)."""
    import numpy as np
    out = n * scale
    src = np.clip((np.arange(out) + 0.5) / scale - 0.5, 0, n - 1)
    lo = np.floor(src).astype(np.int64)
    hi = np.minimum(lo + 1, n - 1)
    w = src - lo
    m = np.zeros((out, n))
    np.add.at(m, (np.arange(out), lo), 1 - w)
    np.add.at(m, (np.arange(out), hi), w)
    return m.astype(dtype)


class UpSampling2D(Layer):
    """(N, H, W, C) -> (N, H * sh, W * sw, C), nearest-neighbour or bilinear."""

    _INTERPOLATIONS = ("nearest", "bilinear", "bicubic", "lanczos3", "lanczos5", "area")

    def __init__(self, size=(2, 2), data_format=None, interpolation="nearest", **kw):
        super().__init__(**kw)
        _channels_last(data_format, "UpSampling2D")
        self.size = _int_pair(size, "size", "UpSampling2D", 1)
        if interpolation not in self._INTERPOLATIONS:
            raise ValueError(f"UpSampling2D: interpolation must be one of "
                             f"{', '.join(self._INTERPOLATIONS)}; got {interpolation!r}")
        if interpolation not in ("nearest", "bilinear"):
            raise NotImplementedError(f"UpSampling2D: interpolation={interpolation!r} is not "
                                      f"supported; use 'nearest' or 'bilinear'")
        self.interpolation = interpolation

    def build(self, s):
        _check_rank(self, s, 4, "batch, height, width, channels")

    def compute_output_shape(self, s):
        return (s[0], _mul(s[1], self.size[0]), _mul(s[2], self.size[1]), s[3])

    def _matrices(self, a):
        """The resize matrices for inputs of self._xshape, on the device and of the dtype of a."""
        h, w = self._xshape[1], self._xshape[2]
        key = (h, w, a.dtype, type(a))
        hit = self.__dict__.get("_mats")
        if hit is None or hit[0] != key:
            xp = _device.xp(a)
            hit = (key, xp.asarray(_bilinear_matrix(h, self.size[0], a.dtype)),
                   xp.asarray(_bilinear_matrix(w, self.size[1], a.dtype)))
            self._mats = hit
        return hit[1], hit[2]

    def call(self, x, training=False):
        self._xshape = x.shape
        xp = _device.xp(x)
        if self.interpolation == "bilinear":
            mh, mw = self._matrices(x)
            return xp.ascontiguousarray(xp.einsum("ah,nhwc,bw->nabc", mh, x, mw))
        return xp.repeat(xp.repeat(x, self.size[0], axis=1), self.size[1], axis=2)

    def backward(self, dy, need_dx=True):
        if not need_dx:
            return None
        n, h, w, c = self._xshape
        sh, sw = self.size
        if self.interpolation == "bilinear":
            mh, mw = self._matrices(dy)
            return _device.xp(dy).ascontiguousarray(
                _device.xp(dy).einsum("ah,nabc,bw->nhwc", mh, dy, mw))
        return dy.reshape(n, h, sh, w, sw, c).sum(axis=(2, 4))

    def get_config(self):
        return {**super().get_config(), "size": list(self.size), "data_format": "channels_last",
                "interpolation": self.interpolation}


class ZeroPadding2D(Layer):
    """Zeros added around height and width: padding is an int, (sym_h, sym_w) or
    ((top, bottom), (left, right))."""

    def __init__(self, padding=(1, 1), data_format=None, **kw):
        super().__init__(**kw)
        _channels_last(data_format, "ZeroPadding2D")
        self.padding = _two_sided(padding, "padding", "ZeroPadding2D")

    def build(self, s):
        _check_rank(self, s, 4, "batch, height, width, channels")

    def compute_output_shape(self, s):
        (t, b), (l, r) = self.padding
        return (s[0], None if s[1] is None else s[1] + t + b,
                None if s[2] is None else s[2] + l + r, s[3])

    def call(self, x, training=False):
        (t, b), (l, r) = self.padding
        n, h, w, c = x.shape
        y = self._buf("y", (n, h + t + b, w + l + r, c), x.dtype)
        y.fill(0)
        y[:, t:t + h, l:l + w, :] = x
        return y

    def backward(self, dy, need_dx=True):
        if not need_dx:
            return None
        (t, b), (l, r) = self.padding
        return _device.xp(dy).ascontiguousarray(
            dy[:, t:dy.shape[1] - b, l:dy.shape[2] - r, :])

    def get_config(self):
        return {**super().get_config(), "padding": [list(p) for p in self.padding],
                "data_format": "channels_last"}


class Cropping2D(Layer):
    """Rows and columns cut from the edges: cropping is an int, (sym_h, sym_w) or
    ((top, bottom), (left, right))."""

    def __init__(self, cropping=((0, 0), (0, 0)), data_format=None, **kw):
        super().__init__(**kw)
        _channels_last(data_format, "Cropping2D")
        self.cropping = _two_sided(cropping, "cropping", "Cropping2D")

    def build(self, s):
        _check_rank(self, s, 4, "batch, height, width, channels")
        for axis, (a, b), what in ((1, self.cropping[0], "height"),
                                   (2, self.cropping[1], "width")):
            if s[axis] is not None and a + b >= s[axis]:
                raise ValueError(f"Cropping2D {self.name!r}: cropping {a} + {b} along the "
                                 f"{what} leaves nothing of an input of shape {shape_str(s)}")

    def compute_output_shape(self, s):
        (t, b), (l, r) = self.cropping
        return (s[0], None if s[1] is None else s[1] - t - b,
                None if s[2] is None else s[2] - l - r, s[3])

    def call(self, x, training=False):
        (t, b), (l, r) = self.cropping
        self._xshape = x.shape
        return _device.xp(x).ascontiguousarray(x[:, t:x.shape[1] - b, l:x.shape[2] - r, :])

    def backward(self, dy, need_dx=True):
        if not need_dx:
            return None
        (t, b), (l, r) = self.cropping
        n, h, w, c = self._xshape
        dx = self._buf("dx", self._xshape, dy.dtype)
        dx.fill(0)
        dx[:, t:h - b, l:w - r, :] = dy
        return dx

    def get_config(self):
        return {**super().get_config(), "cropping": [list(p) for p in self.cropping],
                "data_format": "channels_last"}
