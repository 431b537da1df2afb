"""Embedding (token ids -> rows of a table) and Masking: the layers that start a mask."""
import warnings

import numpy as np

from .. import _device, _tape, initializers, ops
from .layer import Layer


class Embedding(Layer):
    """Rows of an (input_dim, output_dim) table for integer token ids (Keras 3): a C++
    gather forward, a scatter-add of dy into the table's gradient backward.
    ``mask_zero=True`` masks the positions whose id is 0 for later layers."""

    supports_masking = True

    def __init__(self, input_dim, output_dim, embeddings_initializer="uniform",
                 embeddings_regularizer=None, embeddings_constraint=None, mask_zero=False,
                 weights=None, lora_rank=None, input_length=None, **kw):
        if input_length is not None:
            warnings.warn("Embedding: the argument `input_length` is deprecated (Keras 3); just "
                          "remove it", stacklevel=2)
        super().__init__(**kw)
        for what, v in (("input_dim", input_dim), ("output_dim", output_dim)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v <= 0:
                raise ValueError(f"Embedding {self.name!r}: {what} must be a positive integer, "
                                 f"got {v!r}")
        if lora_rank is not None:
            raise NotImplementedError(f"Embedding {self.name!r}: lora_rank is not supported")
        from .. import constraints, regularizers
        self.embeddings_constraint = constraints.get(embeddings_constraint)
        self.input_dim = int(input_dim)
        self.output_dim = int(output_dim)
        self.embeddings_initializer = initializers.get(embeddings_initializer)
        self.embeddings_regularizer = regularizers.get(embeddings_regularizer)
        self.mask_zero = bool(mask_zero)
        self._initial_weights = weights

    def build(self, input_shape):
        self.add_weight((self.input_dim, self.output_dim), self.embeddings_initializer,
                        name="embeddings", regularizer=self.embeddings_regularizer,
                        constraint=self.embeddings_constraint)
        if self._initial_weights is not None:
            w = self._initial_weights
            self._initial_weights = None
            self.set_weights(w if isinstance(w, (list, tuple)) else [w])

    @property
    def embeddings(self):
        return self._weights[0]

    def compute_output_shape(self, s):
        return tuple(s) + (self.output_dim,)

    def _prepare(self, x):
        # ids keep their integer dtype (no cast to the layer's float dtype)
        x = _tape.value(x)
        if not (type(x) is np.ndarray or _device.is_device(x)):
            x = np.asarray(x)
        if not self.built:
            self._build_from((None,) + tuple(x.shape[1:]), None)
        if x.dtype.kind not in "biuf":
            raise TypeError(f"Embedding {self.name!r}: inputs must be integer token ids, got "
                            f"dtype {x.dtype}")
        return x

    def call(self, x, training=False):
        try:
            self._ids = ops._embedding_ids(x)
            return ops.embedding(self._ids, self._weights[0])
        except (IndexError, ValueError) as e:
            raise type(e)(f"Embedding {self.name!r}: {e}") from None

    def backward(self, dy, need_dx=True):
        ops.embedding_backward(dy, self._ids, self.input_dim, out=self._grads[0])
        if not need_dx:
            return None
        return _device.xp(dy).zeros(self._ids.shape, dy.dtype)   # ids get no gradient

    def compute_mask(self, inputs, mask=None):
        if not self.mask_zero:
            return None
        return _tape.value(inputs) != 0

    def _makes_mask(self):
        return self.mask_zero

    def get_config(self):
        from .. import constraints, regularizers
        cfg = {**super().get_config(), "input_dim": self.input_dim, "output_dim": self.output_dim,
               "embeddings_initializer": initializers.serialize(self.embeddings_initializer),
               "mask_zero": self.mask_zero}
        if self.embeddings_regularizer is not None:
            cfg["embeddings_regularizer"] = regularizers.serialize(self.embeddings_regularizer)
        if self.embeddings_constraint is not None:
            cfg["embeddings_constraint"] = constraints.serialize(self.embeddings_constraint)
        return cfg


class Masking(Layer):
    """Masks the time steps whose features all equal ``mask_value`` (Keras 3): their
    output is zero and later layers that support masking skip them."""

    supports_masking = True

    def __init__(self, mask_value=0.0, **kw):
        super().__init__(**kw)
        self.mask_value = float(mask_value)

    def _keep(self, x):
        return _device.xp(x).any(x != self.mask_value, axis=-1, keepdims=True)

    def call(self, x, training=False):
        self._keep_mask = self._keep(x)
        return x * self._keep_mask

    def backward(self, dy, need_dx=True):
        return dy * self._keep_mask if need_dx else None

    def compute_mask(self, inputs, mask=None):
        return self._keep(_tape.value(inputs))[..., 0]

    def _makes_mask(self):
        return True

    def get_config(self):
        return {**super().get_config(), "mask_value": self.mask_value}
