"""Merge layers: Add, Subtract, Multiply, Average, Maximum, Minimum, Concatenate,
and their functional forms (``layers.add([a, b])``, ...). Each takes a list of
inputs of one shape (Concatenate: equal but for its axis) and has its own backward."""
import numpy as np

from .. import _device
from .layer import Layer, shape_str


class _Merge(Layer):
    _min_inputs = 2

    def _shapes(self, shapes):
        if not isinstance(shapes, (list, tuple)) or not shapes or not isinstance(shapes[0], (list, tuple)):
            raise ValueError(f"{type(self).__name__} layer {self.name!r} expects a list of "
                             f"inputs, got one input of shape {shapes}")
        if len(shapes) < self._min_inputs:
            raise ValueError(f"{type(self).__name__} layer {self.name!r} needs at least "
                             f"{self._min_inputs} inputs, got {len(shapes)}")
        return [tuple(s) for s in shapes]

    def build(self, shapes):
        shapes = self._shapes(shapes)
        ref = shapes[0]
        for s in shapes[1:]:
            if len(s) != len(ref) or any(a is not None and b is not None and a != b
                                         for a, b in zip(s[1:], ref[1:])):
                raise ValueError(f"{type(self).__name__} layer {self.name!r} needs inputs of one "
                                 f"shape, got {', '.join(shape_str(t) for t in shapes)}")

    def compute_output_shape(self, shapes):
        shapes = self._shapes(shapes)
        out = list(shapes[0])
        for s in shapes[1:]:
            out = [a if a is not None else b for a, b in zip(out, s)]
        return tuple(out)

    def _check_inputs(self, xs):
        ref = xs[0].shape
        for x in xs[1:]:
            if x.shape != ref:
                raise ValueError(f"{type(self).__name__} layer {self.name!r} got inputs of "
                                 f"shapes {', '.join(str(tuple(a.shape)) for a in xs)}; they "
                                 f"must be equal")

    def call(self, xs, training=False):
        self._check_inputs(xs)
        self._xs = xs
        return self._merge(xs)


class Add(_Merge):
    def _merge(self, xs):
        y = xs[0] + xs[1]
        for x in xs[2:]:
            y += x
        return y

    def backward(self, dy, need_dx=True):
        return [dy] * len(self._xs)


class Subtract(_Merge):
    def _shapes(self, shapes):
        shapes = super()._shapes(shapes)
        if len(shapes) != 2:
            raise ValueError(f"Subtract layer {self.name!r} needs exactly 2 inputs, got "
                             f"{len(shapes)}")
        return shapes

    def _merge(self, xs):
        if len(xs) != 2:
            raise ValueError(f"Subtract layer {self.name!r} needs exactly 2 inputs, got {len(xs)}")
        return xs[0] - xs[1]

    def backward(self, dy, need_dx=True):
        return [dy, -dy]


class Multiply(_Merge):
    def _merge(self, xs):
        y = xs[0] * xs[1]
        for x in xs[2:]:
            y *= x
        return y

    def backward(self, dy, need_dx=True):
        out = []
        for i in range(len(self._xs)):
            g = dy
            for j, x in enumerate(self._xs):
                if j != i:
                    g = g * x
            out.append(g)
        return out


class Average(Add):
    def _merge(self, xs):
        y = super()._merge(xs)
        y *= 1.0 / len(xs)
        return y

    def backward(self, dy, need_dx=True):
        g = dy * (1.0 / len(self._xs))
        return [g] * len(self._xs)


class Maximum(_Merge):
    _pick = staticmethod(np.greater)
    _fn = "maximum"

    def _merge(self, xs):
        xp = _device.xp(xs[0])
        y = getattr(xp, self._fn)(xs[0], xs[1])
        for x in xs[2:]:
            y = getattr(xp, self._fn)(y, x)
        self._y = y
        return y

    def backward(self, dy, need_dx=True):
        # the gradient goes to the first input holding the extreme value
        xp = _device.xp(dy)
        taken = xp.zeros(dy.shape, bool)
        out = []
        for x in self._xs:
            m = (x == self._y) & ~taken
            taken |= m
            out.append(dy * m)
        return out


class Minimum(Maximum):
    _fn = "minimum"


class Concatenate(_Merge):
    def __init__(self, axis=-1, **kw):
        super().__init__(**kw)
        self.axis = int(axis)

    def _ax(self, ndim):
        a = self.axis if self.axis >= 0 else ndim + self.axis
        if not 0 < a < ndim:
            raise ValueError(f"Concatenate layer {self.name!r}: axis {self.axis} is out of range "
                             f"for inputs of rank {ndim} (the batch axis cannot be joined)")
        return a

    def build(self, shapes):
        shapes = self._shapes(shapes)
        a = self._ax(len(shapes[0]))
        for s in shapes[1:]:
            if len(s) != len(shapes[0]) or any(
                    i != a and x is not None and y is not None and x != y
                    for i, (x, y) in enumerate(zip(s, shapes[0])) if i > 0):
                raise ValueError(f"Concatenate layer {self.name!r} needs inputs that match except "
                                 f"on axis {self.axis}, got "
                                 f"{', '.join(shape_str(t) for t in shapes)}")

    def compute_output_shape(self, shapes):
        shapes = self._shapes(shapes)
        a = self._ax(len(shapes[0]))
        out = list(super().compute_output_shape(shapes))
        sizes = [s[a] for s in shapes]
        out[a] = None if any(d is None for d in sizes) else sum(sizes)
        return tuple(out)

    def _check_inputs(self, xs):
        pass

    def _merge(self, xs):
        return _device.xp(xs[0]).concatenate(xs, axis=self._ax(xs[0].ndim))

    def backward(self, dy, need_dx=True):
        a = self._ax(dy.ndim)
        cuts = np.cumsum([x.shape[a] for x in self._xs])[:-1]
        return _device.xp(dy).split(dy, cuts, axis=a)

    def get_config(self):
        return {**super().get_config(), "axis": self.axis}


def add(inputs, **kwargs):
    return Add(**kwargs)(inputs)


def subtract(inputs, **kwargs):
    return Subtract(**kwargs)(inputs)


def multiply(inputs, **kwargs):
    return Multiply(**kwargs)(inputs)


def average(inputs, **kwargs):
    return Average(**kwargs)(inputs)


def maximum(inputs, **kwargs):
    return Maximum(**kwargs)(inputs)


def minimum(inputs, **kwargs):
    return Minimum(**kwargs)(inputs)


def concatenate(inputs, axis=-1, **kwargs):
    return Concatenate(axis=axis, **kwargs)(inputs)
