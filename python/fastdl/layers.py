"""Keras-compatible layers with explicit forward and backward passes.

Every layer follows one small protocol:

* ``layer(x, training=False)`` builds the layer on first use (from x's shape
  and dtype) and runs ``call``; it returns a fresh array.
* ``layer.backward(dy)`` returns dL/dx and writes dL/dw into
  ``layer.gradients`` (preallocated arrays, same order as
  ``layer.trainable_weights``, overwritten on every call).
* ``layer.trainable_weights`` are the live arrays an optimizer updates in place.

Models call ``layer.call`` directly: its outputs are buffers the layer reuses
on the next call with the same batch size, so a training step allocates
(almost) nothing.
"""
import math
import re
import sys

import numpy as np

from . import _memory, _random, activations, initializers, ops

__all__ = ["Layer", "InputLayer", "Input", "Dense", "Conv2D", "MaxPooling2D", "MaxPool2D",
           "AveragePooling2D", "AvgPool2D", "GlobalAveragePooling2D", "GlobalAvgPool2D",
           "Flatten", "Reshape", "Dropout", "Activation", "ReLU", "Softmax", "SimpleRNN",
           "LSTM", "GRU", "get", "deserialize", "serialize"]

_name_counts = {}


def _snake(name):
    s = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    s = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", s).lower()
    return {"max_pooling2_d": "max_pooling2d", "average_pooling2_d": "average_pooling2d",
            "global_average_pooling2_d": "global_average_pooling2d",
            "conv2_d": "conv2d", "simple_r_n_n": "simple_rnn", "l_s_t_m": "lstm",
            "g_r_u": "gru", "re_l_u": "re_lu"}.get(s, s)


def unique_name(base):
    """Keras-style names: dense, dense_1, dense_2, ..."""
    n = _name_counts.get(base, 0)
    _name_counts[base] = n + 1
    return base if n == 0 else f"{base}_{n}"


def _pair(v, name):
    if isinstance(v, (int, np.integer)):
        return (int(v), int(v))
    t = tuple(int(a) for a in v)
    if len(t) != 2:
        raise ValueError(f"{name} must be an int or a pair, got {v!r}")
    return t


def _float_dtype(dt):
    dt = np.dtype(dt)
    return dt if dt in (np.float32, np.float64) else np.dtype(np.float32)


def _shape_str(shape):
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


class Layer:
    """Base class. Subclasses write build, compute_output_shape, call and backward."""

    def __init__(self, *, name=None, input_shape=None, batch_input_shape=None, input_dim=None,
                 dtype=None, trainable=True, **kwargs):
        if kwargs:
            raise TypeError(f"{type(self).__name__}: unexpected keyword argument(s) "
                            f"{', '.join(sorted(kwargs))}")
        self.name = name or unique_name(_snake(type(self).__name__))
        if batch_input_shape is not None:
            input_shape = tuple(batch_input_shape)[1:]
        if input_dim is not None:
            input_shape = (int(input_dim),)
        if input_shape is not None:
            if isinstance(input_shape, (int, np.integer)):
                input_shape = (int(input_shape),)
            input_shape = tuple(None if d is None else int(d) for d in input_shape)
        self._input_shape_arg = input_shape
        self.dtype = np.dtype(dtype) if dtype is not None else None
        self.trainable = trainable
        self.built = False
        self.input_shape = None
        self.output_shape = None
        self._weights = []       # all weights, Keras get_weights() order
        self._grads = []         # one gradient buffer per weight
        self._weight_names = []
        self._bufs = {}
        self._empty = _memory.empty  # allocates this layer's buffers (cupy.empty once on the GPU)

    # ------------------------------------------------------------ weights
    def add_weight(self, shape, initializer="zeros", name="weight"):
        init = initializers.get(initializer)
        w = _memory.copy(np.asarray(init(tuple(shape), self.dtype)))
        self._weights.append(w)
        self._grads.append(_memory.zeros(w.shape, w.dtype))
        self._weight_names.append(name)
        return w

    @property
    def weights(self):
        return list(self._weights)

    @property
    def trainable_weights(self):
        return list(self._weights) if self.trainable else []

    @property
    def non_trainable_weights(self):
        return [] if self.trainable else list(self._weights)

    @property
    def gradients(self):
        """dL/dw of the last backward call, same order as trainable_weights."""
        return list(self._grads) if self.trainable else []

    def get_weights(self):
        return [np.array(_to_numpy(w)) for w in self._weights]

    def set_weights(self, weights):
        weights = list(weights)
        if len(weights) != len(self._weights):
            raise ValueError(f"layer {self.name!r} expects {len(self._weights)} weight arrays, "
                             f"got {len(weights)}")
        for i, (w, new) in enumerate(zip(self._weights, weights)):
            new = np.asarray(_to_numpy(new))
            if new.shape != w.shape:
                raise ValueError(f"layer {self.name!r} weight {i} ({self._weight_names[i]}) has "
                                 f"shape {w.shape}, got an array of shape {new.shape}")
            if type(w) is np.ndarray:
                np.copyto(w, new, casting="unsafe")
            else:
                w[...] = _like(w, new)

    def count_params(self):
        return int(sum(w.size for w in self._weights))

    # ------------------------------------------------------------ build
    def build(self, input_shape):
        pass

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def _build_from(self, input_shape, dtype=None):
        """Build for input_shape (batch dim included, may be None)."""
        input_shape = tuple(input_shape)
        if self.dtype is None:
            self.dtype = _float_dtype(dtype if dtype is not None else np.float32)
        if not self.built:
            self.build(input_shape)
            self.input_shape = input_shape
            self.output_shape = tuple(self.compute_output_shape(input_shape))
            self.built = True
        return self.output_shape

    def _check_input(self, shape):
        exp = self.input_shape
        if len(shape) != len(exp) or any(e is not None and e != s for e, s in zip(exp[1:], shape[1:])):
            raise ValueError(
                f"layer {self.name!r} ({type(self).__name__}) was built for inputs of shape "
                f"{_shape_str(exp)} but got an input of shape {tuple(shape)}; give it inputs of "
                f"the shape it was built for (or make a new layer)")

    # ------------------------------------------------------------ calls
    def __call__(self, x, training=False):
        x = _as_input(x, self.dtype)
        if not self.built:
            self._build_from((None,) + tuple(x.shape[1:]), x.dtype)
        self._check_input(x.shape)
        if x.dtype != self.dtype:
            x = x.astype(self.dtype)
        y = self.call(x, training=training)
        return y.copy() if any(y is b for b in self._bufs.values()) else y

    def call(self, x, training=False):
        return x

    def backward(self, dy, need_dx=True):
        raise NotImplementedError(f"{type(self).__name__}.backward")

    def _buf(self, key, shape, dtype=None):
        """A reusable array: the same one while the shape stays the same."""
        b = self._bufs.get(key)
        if b is None or b.shape != shape:
            b = self._empty(shape, dtype or self.dtype)
            self._bufs[key] = b
        return b

    def _zeros(self, key, shape):
        """A reusable array of zeros (a state nothing writes to)."""
        b = self._bufs.get(key)
        if b is None or b.shape != shape:
            b = self._empty(shape, self.dtype)
            b.fill(0)
            self._bufs[key] = b
        return b

    # ------------------------------------------------------------ config
    def get_config(self):
        cfg = {"name": self.name, "trainable": self.trainable,
               "dtype": None if self.dtype is None else self.dtype.name}
        if self._input_shape_arg is not None:
            cfg["input_shape"] = list(self._input_shape_arg)
        return cfg

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        return f"<{type(self).__name__} name={self.name!r}, built={self.built}>"

    def _move(self, to_array):
        """Replace every weight and gradient array by to_array(a) (device moves);
        later buffers are allocated where to_array puts arrays."""
        self._weights = [to_array(w) for w in self._weights]
        self._grads = [to_array(g) for g in self._grads]
        self._bufs = {}
        self._empty = _empty_like_module(to_array(np.zeros(0, np.float32)))


def _empty_like_module(probe):
    """An allocator (shape, dtype) -> array on the device of ``probe``."""
    if type(probe) is np.ndarray:
        return _memory.empty
    xp = sys.modules[type(probe).__module__.split(".", 1)[0]]  # cupy
    return lambda shape, dtype: xp.empty(shape, dtype)


def _to_numpy(a):
    if type(a) is np.ndarray:
        return a
    get = getattr(a, "get", None)
    return get() if callable(get) else np.asarray(a)


def _like(w, new):
    import cupy
    return cupy.asarray(new, dtype=w.dtype)


def _as_input(x, dtype):
    if type(x) is np.ndarray:
        return x
    if hasattr(x, "__cuda_array_interface__"):
        return x
    x = np.asarray(x)
    if x.dtype.kind not in "f":
        x = x.astype(dtype or np.float32)
    return x


# ================================================================ structure layers
class InputLayer(Layer):
    """What ``Input(shape)`` returns; a Sequential model takes its shape from it."""

    def __init__(self, shape=None, batch_size=None, name=None, dtype=None, input_shape=None, **kw):
        if shape is None:
            shape = input_shape
        if shape is None:
            raise ValueError("Input needs a shape, e.g. Input(shape=(28, 28))")
        if isinstance(shape, (int, np.integer)):
            shape = (int(shape),)
        super().__init__(name=name or unique_name("input_layer"), input_shape=shape, dtype=dtype, **kw)
        self.shape = (batch_size,) + tuple(self._input_shape_arg)
        self.batch_size = batch_size

    def get_config(self):
        return {"shape": list(self._input_shape_arg), "batch_size": self.batch_size,
                "name": self.name, "dtype": None if self.dtype is None else self.dtype.name}


def Input(shape=None, batch_size=None, name=None, dtype=None, **kw):
    """Keras' Input: declares the model's input shape (without the batch dimension)."""
    return InputLayer(shape=shape, batch_size=batch_size, name=name, dtype=dtype, **kw)


class Flatten(Layer):
    def __init__(self, data_format=None, **kw):
        super().__init__(**kw)

    def compute_output_shape(self, s):
        rest = s[1:]
        n = None if any(d is None for d in rest) else int(math.prod(rest))
        return (s[0], n)

    def call(self, x, training=False):
        self._xshape = x.shape
        return x.reshape(x.shape[0], -1)

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
                    raise ValueError(f"Reshape: cannot reshape {_shape_str(s)} into {self.target_shape}")
                t[t.index(-1)] = total // known
            else:
                t[t.index(-1)] = None
        elif total is not None and int(math.prod(t)) != total:
            raise ValueError(f"Reshape: an input of shape {_shape_str(s)} has {total} values per "
                             f"sample, target_shape {self.target_shape} has {int(math.prod(t))}")
        return (s[0],) + tuple(t)

    def call(self, x, training=False):
        self._xshape = x.shape
        return x.reshape((x.shape[0],) + self.target_shape)

    def backward(self, dy, need_dx=True):
        return dy.reshape(self._xshape) if need_dx else None

    def get_config(self):
        return {**super().get_config(), "target_shape": list(self.target_shape)}


class Dropout(Layer):
    """Inverted dropout in training, identity in inference. The mask is a pure
    function of a per-call seed (C++ counter-based generator): backward rebuilds it."""

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

    def backward(self, dy, need_dx=True):
        if not need_dx:
            return None
        if not self._active:
            return dy
        return ops.dropout_backward(dy, self.rate, self._seed, out=self._buf("dx", dy.shape, dy.dtype))

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}


class Activation(Layer):
    def __init__(self, activation, **kw):
        super().__init__(**kw)
        self.activation = activations.get(activation)

    def call(self, x, training=False):
        y = self.activation.forward(x, out=self._buf("y", x.shape, x.dtype)) \
            if self.activation.name != "linear" else x
        self._y = y
        return y

    def backward(self, dy, need_dx=True):
        if not need_dx:
            return None
        if self.activation.name == "linear":
            return dy
        return self.activation.backward(dy, self._y, out=self._buf("dx", dy.shape, dy.dtype))

    # softmax + cross-entropy fusion: the model feeds dlogits straight through
    def _output_activation(self):
        return self.activation.name

    def _call_logits(self, x, training=False):
        return x

    def _backward_logits(self, dz, need_dx=True):
        return dz if need_dx else None

    def get_config(self):
        return {**super().get_config(), "activation": self.activation.name}


class ReLU(Activation):
    def __init__(self, max_value=None, negative_slope=0.0, threshold=0.0, **kw):
        if max_value is not None or negative_slope or threshold:
            raise NotImplementedError("ReLU supports only max_value=None, negative_slope=0, threshold=0")
        super().__init__("relu", **kw)

    def get_config(self):
        cfg = super().get_config()
        cfg.pop("activation")
        return cfg


class Softmax(Activation):
    def __init__(self, axis=-1, **kw):
        super().__init__("softmax", **kw)
        self.axis = axis

    def call(self, x, training=False):
        if self.axis == -1:
            return super().call(x, training)
        self._y = ops.softmax(x, self.axis)
        return self._y

    def backward(self, dy, need_dx=True):
        if self.axis == -1:
            return super().backward(dy, need_dx)
        return ops.softmax_backward(dy, self._y, self.axis) if need_dx else None

    def _output_activation(self):
        return "softmax" if self.axis in (-1, len(self.input_shape) - 1) else "other"

    def get_config(self):
        cfg = super().get_config()
        cfg.pop("activation")
        cfg["axis"] = self.axis
        return cfg


# ================================================================ Dense
class Dense(Layer):
    """y = activation(x @ kernel + bias); bias and relu fused into the GEMM."""

    def __init__(self, units, activation=None, use_bias=True, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", **kw):
        super().__init__(**kw)
        if int(units) <= 0:
            raise ValueError(f"Dense units must be a positive integer, got {units!r}")
        self.units = int(units)
        self.activation = activations.get(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self._fused = self.activation.name in ("linear", "relu")

    def build(self, input_shape):
        if input_shape[-1] is None:
            raise ValueError(f"Dense layer {self.name!r} needs a known last input dimension, got "
                             f"{_shape_str(input_shape)}")
        self.add_weight((input_shape[-1], self.units), self.kernel_initializer, "kernel")
        if self.use_bias:
            self.add_weight((self.units,), self.bias_initializer, "bias")

    @property
    def kernel(self):
        return self._weights[0]

    @property
    def bias(self):
        return self._weights[1] if self.use_bias else None

    def compute_output_shape(self, s):
        return tuple(s[:-1]) + (self.units,)

    def _linear(self, x, out_key, act):
        w = self._weights
        return ops.linear(x, w[0], w[1] if self.use_bias else None, activation=act,
                          out=self._buf(out_key, (x.shape[0], self.units)))

    def call(self, x, training=False):
        self._xshape = x.shape
        if x.ndim != 2:
            x = x.reshape(-1, x.shape[-1])
        self._x = x
        if self._fused:
            y = self._linear(x, "y", self.activation.name)
        else:
            z = self._linear(x, "z", "linear")
            y = self.activation.forward(z, out=self._buf("y", z.shape))
        self._y = y
        return y if len(self._xshape) == 2 else y.reshape(self._xshape[:-1] + (self.units,))

    def backward(self, dy, need_dx=True):
        if dy.ndim != 2:
            dy = dy.reshape(-1, self.units)
        if self.activation.name != "linear":
            dy = self.activation.backward(dy, self._y, out=self._buf("dz", dy.shape))
        return self._backward_logits(dy, need_dx)

    # the layer's pre-activation output, for fused softmax/sigmoid + cross-entropy
    def _output_activation(self):
        return self.activation.name

    def _call_logits(self, x, training=False):
        self._xshape = x.shape
        self._x = x
        return self._linear(x, "z", "linear")

    def _backward_logits(self, dz, need_dx=True):
        g = self._grads
        x = self._x
        if type(x) is np.ndarray:
            ops.gemm(x, dz, trans_a=True, out=g[0])
            if self.use_bias:
                np.add.reduce(dz, axis=0, out=g[1])
        else:
            g[0][...] = x.T @ dz
            if self.use_bias:
                g[1][...] = dz.sum(axis=0)
        if not need_dx:
            return None
        dx = ops.gemm(dz, self._weights[0], trans_b=True, out=self._buf("dx", x.shape))
        return dx if len(self._xshape) == 2 else dx.reshape(self._xshape)

    def get_config(self):
        return {**super().get_config(), "units": self.units, "activation": self.activation.name,
                "use_bias": self.use_bias,
                "kernel_initializer": initializers.serialize(self.kernel_initializer),
                "bias_initializer": initializers.serialize(self.bias_initializer)}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for k in ("kernel_initializer", "bias_initializer"):
            if k in config:
                config[k] = initializers.get(config[k])
        return cls(**config)


# ================================================================ convolution and pooling
def _need_op(name):
    if not hasattr(ops, name):
        raise NotImplementedError(f"fastdl.ops.{name} is not available in this build")
    return getattr(ops, name)


def _conv_out(n, k, s, d, pad):
    """Output length along one axis for padding 'valid'/'same' or explicit (before, after)."""
    if n is None:
        return None
    eff = d * (k - 1) + 1
    if pad == "same":
        return -(-n // s)
    if pad == "valid":
        return (n - eff) // s + 1 if n >= eff else 0
    lo, hi = pad
    return (n + lo + hi - eff) // s + 1


def _norm_padding(padding):
    """Per-axis padding for shape computation: 'valid'/'same' or ((t,b),(l,r))."""
    if isinstance(padding, str):
        p = padding.lower()
        if p not in ("valid", "same"):
            raise ValueError(f"padding must be 'valid' or 'same' (or explicit amounts), got {padding!r}")
        return p, p
    if isinstance(padding, (int, np.integer)):
        return (int(padding),) * 2, (int(padding),) * 2
    a, b = padding
    if isinstance(a, (int, np.integer)):
        return (int(a), int(a)), (int(b), int(b))
    return tuple(int(v) for v in a), tuple(int(v) for v in b)


def _padding_arg(padding):
    return padding.lower() if isinstance(padding, str) else padding


class Conv2D(Layer):
    """2-D convolution, channels-last (N, H, W, C); kernel (KH, KW, C_in, filters)."""

    def __init__(self, filters, kernel_size, strides=(1, 1), padding="valid", data_format=None,
                 dilation_rate=(1, 1), activation=None, use_bias=True,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros", **kw):
        super().__init__(**kw)
        if data_format not in (None, "channels_last"):
            raise ValueError("Conv2D supports data_format='channels_last' only (images are (N, H, W, C))")
        self.filters = int(filters)
        self.kernel_size = _pair(kernel_size, "kernel_size")
        self.strides = _pair(strides, "strides")
        self.dilation_rate = _pair(dilation_rate, "dilation_rate")
        self.padding = _padding_arg(padding)
        self._pads = _norm_padding(padding)
        self.activation = activations.get(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)

    def build(self, s):
        if len(s) != 4:
            raise ValueError(f"Conv2D {self.name!r} expects 4-D inputs (batch, height, width, "
                             f"channels), got {_shape_str(s)}")
        kh, kw = self.kernel_size
        self.add_weight((kh, kw, s[-1], self.filters), self.kernel_initializer, "kernel")
        if self.use_bias:
            self.add_weight((self.filters,), self.bias_initializer, "bias")

    def compute_output_shape(self, s):
        oh = _conv_out(s[1], self.kernel_size[0], self.strides[0], self.dilation_rate[0], self._pads[0])
        ow = _conv_out(s[2], self.kernel_size[1], self.strides[1], self.dilation_rate[1], self._pads[1])
        return (s[0], oh, ow, self.filters)

    def _kw(self):
        return dict(strides=self.strides, padding=self.padding, dilation_rate=self.dilation_rate)

    def _call_logits(self, x, training=False):
        self._x = x
        w = self._weights
        return _need_op("conv2d")(x, w[0], w[1] if self.use_bias else None, **self._kw())

    def call(self, x, training=False):
        self._x = x
        w = self._weights
        act = self.activation.name
        if act in ("linear", "relu"):  # fused into the convolution's output pass
            z = _need_op("conv2d")(x, w[0], w[1] if self.use_bias else None, activation=act,
                                   **self._kw())
        else:
            z = self._call_logits(x, training)
            z = self.activation.forward(z, out=z)
        self._y = z
        return z

    def backward(self, dy, need_dx=True):
        if self.activation.name != "linear":
            dy = self.activation.backward(dy, self._y, out=self._buf("dz", dy.shape))
        return self._backward_logits(dy, need_dx)

    def _output_activation(self):
        return self.activation.name

    def _backward_logits(self, dz, need_dx=True):
        dx, dw, db = _need_op("conv2d_backward")(dz, self._x, self._weights[0], need_dx=need_dx,
                                                 **self._kw())
        g = self._grads
        g[0][...] = dw
        if self.use_bias:
            g[1][...] = db
        return dx if need_dx else None

    def get_config(self):
        pad = self.padding if isinstance(self.padding, str) else _jsonable(self.padding)
        return {**super().get_config(), "filters": self.filters, "kernel_size": list(self.kernel_size),
                "strides": list(self.strides), "padding": pad,
                "dilation_rate": list(self.dilation_rate), "activation": self.activation.name,
                "use_bias": self.use_bias,
                "kernel_initializer": initializers.serialize(self.kernel_initializer),
                "bias_initializer": initializers.serialize(self.bias_initializer)}

    from_config = Dense.__dict__["from_config"]


def _jsonable(v):
    if isinstance(v, (list, tuple)):
        return [_jsonable(a) for a in v]
    return v


class _Pool2D(Layer):
    _op = None

    def __init__(self, pool_size=(2, 2), strides=None, padding="valid", data_format=None, **kw):
        super().__init__(**kw)
        if data_format not in (None, "channels_last"):
            raise ValueError(f"{type(self).__name__} supports data_format='channels_last' only")
        self.pool_size = _pair(pool_size, "pool_size")
        self.strides = self.pool_size if strides is None else _pair(strides, "strides")
        self.padding = _padding_arg(padding)
        self._pads = _norm_padding(padding)

    def build(self, s):
        if len(s) != 4:
            raise ValueError(f"{type(self).__name__} {self.name!r} expects 4-D inputs "
                             f"(batch, height, width, channels), got {_shape_str(s)}")

    def compute_output_shape(self, s):
        oh = _conv_out(s[1], self.pool_size[0], self.strides[0], 1, self._pads[0])
        ow = _conv_out(s[2], self.pool_size[1], self.strides[1], 1, self._pads[1])
        return (s[0], oh, ow, s[3])

    def _kw(self):
        return dict(pool_size=self.pool_size, strides=self.strides, padding=self.padding)

    def call(self, x, training=False):
        self._x = x
        return _need_op(self._op)(x, **self._kw())

    def backward(self, dy, need_dx=True):
        if not need_dx:
            return None
        return _need_op(self._op + "_backward")(dy, self._x, **self._kw())

    def get_config(self):
        pad = self.padding if isinstance(self.padding, str) else _jsonable(self.padding)
        return {**super().get_config(), "pool_size": list(self.pool_size),
                "strides": list(self.strides), "padding": pad}


class MaxPooling2D(_Pool2D):
    _op = "max_pool2d"

    def _backward_relu(self, dy):
        """The gradient of the pre-activation of the ReLU whose output this layer pooled."""
        return _need_op("max_pool2d_backward")(dy, self._x, relu=True, **self._kw())


class AveragePooling2D(_Pool2D):
    _op = "avg_pool2d"


MaxPool2D = MaxPooling2D
AvgPool2D = AveragePooling2D


class GlobalAveragePooling2D(Layer):
    def __init__(self, data_format=None, keepdims=False, **kw):
        super().__init__(**kw)
        if keepdims:
            raise NotImplementedError("GlobalAveragePooling2D(keepdims=True) is not supported")

    def build(self, s):
        if len(s) != 4:
            raise ValueError(f"GlobalAveragePooling2D {self.name!r} expects 4-D inputs, got {_shape_str(s)}")

    def compute_output_shape(self, s):
        return (s[0], s[3])

    def call(self, x, training=False):
        self._x = x
        return _need_op("global_avg_pool2d")(x)

    def backward(self, dy, need_dx=True):
        return _need_op("global_avg_pool2d_backward")(dy, self._x) if need_dx else None


GlobalAvgPool2D = GlobalAveragePooling2D


# ================================================================ recurrent
class _RNN(Layer):
    _gates = 1

    def __init__(self, units, activation="tanh", use_bias=True, return_sequences=False,
                 kernel_initializer="glorot_uniform", recurrent_initializer="orthogonal",
                 bias_initializer="zeros", **kw):
        super().__init__(**kw)
        self.units = int(units)
        if self.units <= 0:
            raise ValueError(f"{type(self).__name__} units must be a positive integer, got {units!r}")
        self.activation = activations.get(activation)
        self.use_bias = bool(use_bias)
        self.return_sequences = bool(return_sequences)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.recurrent_initializer = initializers.get(recurrent_initializer)
        self.bias_initializer = initializers.get(bias_initializer)

    def _bias_shape(self):
        return (self._gates * self.units,)

    def build(self, s):
        if len(s) != 3:
            raise ValueError(f"{type(self).__name__} {self.name!r} expects 3-D inputs (batch, "
                             f"timesteps, features), got {_shape_str(s)}")
        g = self._gates * self.units
        self.add_weight((s[-1], g), self.kernel_initializer, "kernel")
        self.add_weight((self.units, g), self.recurrent_initializer, "recurrent_kernel")
        if self.use_bias:
            self._init_bias()

    def _init_bias(self):
        self.add_weight(self._bias_shape(), self.bias_initializer, "bias")

    def compute_output_shape(self, s):
        return (s[0], s[1], self.units) if self.return_sequences else (s[0], self.units)

    def _h0(self, n):
        return self._zeros("h0", (n, self.units))

    def _zero_bias(self):
        return self._zeros("zero_bias", self._bias_shape())

    def _output(self, hs):
        self._hs = hs
        return hs if self.return_sequences else hs[:, -1]

    def _store_grads(self, dk, drk, db):
        g = self._grads
        g[0][...] = dk
        g[1][...] = drk
        if self.use_bias:
            g[2][...] = db

    def get_config(self):
        return {**super().get_config(), "units": self.units, "activation": self.activation.name,
                "use_bias": self.use_bias, "return_sequences": self.return_sequences,
                "kernel_initializer": initializers.serialize(self.kernel_initializer),
                "recurrent_initializer": initializers.serialize(self.recurrent_initializer),
                "bias_initializer": initializers.serialize(self.bias_initializer)}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for k in ("kernel_initializer", "recurrent_initializer", "bias_initializer"):
            if k in config:
                config[k] = initializers.get(config[k])
        return cls(**config)


class SimpleRNN(_RNN):
    """h_t = activation(x_t @ kernel + h_{t-1} @ recurrent_kernel + bias)."""

    def call(self, x, training=False):
        self._x = x
        w = self._weights
        b = w[2] if self.use_bias else self._zero_bias()
        hs = _need_op("simple_rnn")(x, self._h0(x.shape[0]), w[0], w[1], b,
                                    activation=self.activation.name)
        return self._output(hs)

    def backward(self, dy, need_dx=True):
        w = self._weights
        dx, _, dk, drk, db = _need_op("simple_rnn_backward")(
            dy, self._x, self._h0(self._x.shape[0]), w[0], w[1], self._hs,
            activation=self.activation.name, need_dx=need_dx)
        self._store_grads(dk, drk, db)
        return dx


class LSTM(_RNN):
    """Keras' LSTM (gates i, f, c, o; tanh and sigmoid); unit_forget_bias=True."""
    _gates = 4

    def __init__(self, units, activation="tanh", recurrent_activation="sigmoid",
                 unit_forget_bias=True, **kw):
        if activations.get(activation).name != "tanh" or \
                activations.get(recurrent_activation).name != "sigmoid":
            raise NotImplementedError("LSTM supports activation='tanh', recurrent_activation='sigmoid' only")
        super().__init__(units, activation=activation, **kw)
        self.unit_forget_bias = bool(unit_forget_bias)

    def _init_bias(self):
        b = self.add_weight(self._bias_shape(), self.bias_initializer, "bias")
        if self.unit_forget_bias:
            b[self.units:2 * self.units] = 1.0

    def call(self, x, training=False):
        self._x = x
        w = self._weights
        b = w[2] if self.use_bias else self._zero_bias()
        n = x.shape[0]
        h0 = self._h0(n)
        c0 = self._buf("c0", (n, self.units))
        c0.fill(0)
        if training:
            hs, _, self._cache = _need_op("lstm")(x, h0, c0, w[0], w[1], b, return_cache=True)
        else:
            hs, _ = _need_op("lstm")(x, h0, c0, w[0], w[1], b)
        return self._output(hs)

    def backward(self, dy, need_dx=True):
        w = self._weights
        n = self._x.shape[0]
        dx, _, _, dk, drk, db = _need_op("lstm_backward")(
            dy, None, self._x, self._h0(n), self._bufs["c0"], w[0], w[1], self._hs, self._cache,
            need_dx=need_dx)
        self._store_grads(dk, drk, db)
        return dx

    def get_config(self):
        return {**super().get_config(), "unit_forget_bias": self.unit_forget_bias}


class GRU(_RNN):
    """Keras' GRU with reset_after=True (gates z, r, h; bias (2, 3U))."""
    _gates = 3

    def __init__(self, units, activation="tanh", recurrent_activation="sigmoid",
                 reset_after=True, **kw):
        if activations.get(activation).name != "tanh" or \
                activations.get(recurrent_activation).name != "sigmoid":
            raise NotImplementedError("GRU supports activation='tanh', recurrent_activation='sigmoid' only")
        if not reset_after:
            raise NotImplementedError("GRU supports reset_after=True (Keras' default) only")
        super().__init__(units, activation=activation, **kw)

    def _bias_shape(self):
        return (2, 3 * self.units)

    def call(self, x, training=False):
        self._x = x
        w = self._weights
        b = w[2] if self.use_bias else self._zero_bias()
        self._b = b
        h0 = self._h0(x.shape[0])
        if training:
            hs, self._cache = _need_op("gru")(x, h0, w[0], w[1], b, return_cache=True)
        else:
            hs = _need_op("gru")(x, h0, w[0], w[1], b)
        return self._output(hs)

    def backward(self, dy, need_dx=True):
        w = self._weights
        dx, _, dk, drk, db = _need_op("gru_backward")(
            dy, self._x, self._h0(self._x.shape[0]), w[0], w[1], self._b, self._hs, self._cache,
            need_dx=need_dx)
        self._store_grads(dk, drk, db)
        return dx


# ================================================================ registry
_CLASSES = {c.__name__: c for c in (InputLayer, Dense, Conv2D, MaxPooling2D, AveragePooling2D,
                                     GlobalAveragePooling2D, Flatten, Reshape, Dropout, Activation,
                                     ReLU, Softmax, SimpleRNN, LSTM, GRU)}


def serialize(layer):
    return {"class_name": type(layer).__name__, "config": layer.get_config()}


def deserialize(d):
    cls = _CLASSES.get(d.get("class_name"))
    if cls is None:
        raise ValueError(f"unknown layer class {d.get('class_name')!r}; known: {', '.join(_CLASSES)}")
    return cls.from_config(d.get("config", {}))


get = deserialize
