"""Reshaping layers: Flatten, Reshape."""
import math

from .layer import Layer, shape_str


class Flatten(Layer):
    _rows_independent = True
    def __init__(self, data_format=None, **kw):
        super().__init__(**kw)

    def compute_output_shape(self, s):
        rest = s[1:]
        n = None if any(d is None for d in rest) else int(math.prod(rest))
        return (s[0], n)

    def call(self, x, training=False):
        self._xshape = x.shape
        return x.reshape(x.shape[0], -1)

    def _inference_fn(self, rows, in_shape, batch):
        return lambda x: x.reshape(rows, -1)

    def backward(self, dy, need_dx=True):
        return dy.reshape(self._xshape) if need_dx else None


class Reshape(Layer):
    def __init__(self, target_shape, **kw):
        super().__init__(**kw)
        self.target_shape = tuple(int(d) for d in target_shape)
        if sum(d == -1 for d in self.target_shape) > 1:
            raise ValueError(f"Reshape: at most one -1 in target_shape, got {self.target_shape}")

    def compute_output_shape(self, s):
        rest = s[1:]
        total = None if any(d is None for d in rest) else int(math.prod(rest))
        t = list(self.target_shape)
        if -1 in t:
            known = int(math.prod(d for d in t if d != -1))
            if total is not None:
                if known == 0 or total % known:
                    raise ValueError(f"Reshape: cannot reshape {shape_str(s)} into {self.target_shape}")
                t[t.index(-1)] = total // known
            else:
                t[t.index(-1)] = None
        elif total is not None and int(math.prod(t)) != total:
            raise ValueError(f"Reshape: an input of shape {shape_str(s)} has {total} values per "
                             f"sample, target_shape {self.target_shape} has {int(math.prod(t))}")
        return (s[0],) + tuple(t)

    def call(self, x, training=False):
        self._xshape = x.shape
        return x.reshape((x.shape[0],) + self.target_shape)

    def backward(self, dy, need_dx=True):
        return dy.reshape(self._xshape) if need_dx else None

    def get_config(self):
        return {**super().get_config(), "target_shape": list(self.target_shape)}
