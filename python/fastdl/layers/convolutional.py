"""Convolution layers: Conv1D, Conv2D, Conv2DTranspose, DepthwiseConv2D, SeparableConv2D.

All are channels-last. They share one forward/backward skeleton (Conv2D): a
subclass says how its convolution runs (``_conv``, with 'linear' or 'relu'
fused into the output pass where the op can, and ``_conv_backward``) and
which weights it has; the activation, the fused-logits path of Sequential and
the gradient bookkeeping are Conv2D's.
"""
from .. import activations, initializers, ops
from ._conv_utils import conv_out, jsonable, norm_padding, padding_arg, pair
from .core import _constraint_config, _regularizer_config
from .layer import Layer, shape_str


def _positive_int(v, what, layer):
    if isinstance(v, bool) or not isinstance(v, int) and not hasattr(v, "__index__"):
        raise TypeError(f"{layer}: {what} must be a positive int, got {v!r}")
    if int(v) < 1:
        raise ValueError(f"{layer}: {what} must be a positive int, got {v!r}")
    return int(v)


def _named(layer, fn, *args):
    """fn(*args), with an argument error re-raised under the layer's class and name."""
    try:
        return fn(*args)
    except (TypeError, ValueError) as e:
        raise type(e)(f"{layer}: {e}") from None


class Conv2D(Layer):
    """2-D convolution, channels-last (N, H, W, C); kernel (KH, KW, C_in, filters)."""

    _input_rank = 4  # with the batch axis

    def __init__(self, filters, kernel_size, strides=(1, 1), padding="valid", data_format=None,
                 dilation_rate=(1, 1), activation=None, use_bias=True,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros", kernel_regularizer=None, bias_regularizer=None,
                 kernel_constraint=None, bias_constraint=None, **kw):
        super().__init__(**kw)
        self._init_common(kernel_size, strides, padding, data_format, dilation_rate, activation,
                          use_bias, bias_initializer, bias_regularizer, bias_constraint)
        self._init_kernel(filters, kernel_initializer, kernel_regularizer, kernel_constraint)

    def _init_kernel(self, filters, kernel_initializer, kernel_regularizer, kernel_constraint):
        from .. import constraints, regularizers
        self.filters = _positive_int(filters, "filters", self._who())
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.kernel_constraint = constraints.get(kernel_constraint)

    def _who(self):
        return f"{type(self).__name__} {self.name!r}"

    def _init_common(self, kernel_size, strides, padding, data_format, dilation_rate, activation,
                     use_bias, bias_initializer, bias_regularizer, bias_constraint):
        """The arguments every convolution layer has, checked (errors name the layer)."""
        from .. import constraints, regularizers
        who = self._who()
        if data_format not in (None, "channels_last"):
            raise ValueError(f"{who}: data_format='channels_last' is the only one supported "
                             f"(images are (N, H, W, C)), got {data_format!r}")
        self.kernel_size = _named(who, pair, kernel_size, "kernel_size")
        self.strides = _named(who, pair, strides, "strides")
        self.dilation_rate = _named(who, pair, dilation_rate, "dilation_rate")
        self.padding = padding_arg(padding)
        self._pads = _named(who, norm_padding, padding)
        self.activation = activations.get(activation)
        self.use_bias = bool(use_bias)
        self.bias_initializer = initializers.get(bias_initializer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.bias_constraint = constraints.get(bias_constraint)

    def _check_rank(self, s):
        if len(s) != self._input_rank:
            what = ("3-D inputs (batch, steps, channels)" if self._input_rank == 3 else
                    "4-D inputs (batch, height, width, channels)")
            raise ValueError(f"{type(self).__name__} {self.name!r} expects {what}, got "
                             f"{shape_str(s)}")
        if s[-1] is None:
            raise ValueError(f"{type(self).__name__} {self.name!r}: the channel axis of the "
                             f"input must be known, got {shape_str(s)}")

    def build(self, s):
        self._check_rank(s)
        kh, kw = self.kernel_size
        self.add_weight((kh, kw, s[-1], self.filters), self.kernel_initializer, name="kernel",
                        regularizer=self.kernel_regularizer, constraint=self.kernel_constraint)
        self._add_bias(self.filters)

    def _add_bias(self, n):
        if self.use_bias:
            self.add_weight((n,), self.bias_initializer, name="bias",
                            regularizer=self.bias_regularizer, constraint=self.bias_constraint)

    def _bias(self):
        return self._weights[-1] if self.use_bias else None

    def compute_output_shape(self, s):
        oh = conv_out(s[1], self.kernel_size[0], self.strides[0], self.dilation_rate[0], self._pads[0])
        ow = conv_out(s[2], self.kernel_size[1], self.strides[1], self.dilation_rate[1], self._pads[1])
        return (s[0], oh, ow, self.filters)

    def _kw(self):
        return dict(strides=self.strides, padding=self.padding, dilation_rate=self.dilation_rate)

    # --- what a subclass overrides: its convolution, forward and backward
    def _conv(self, x, act):
        """act(conv(x) + b), act 'linear' or 'relu' (fused into the output pass)."""
        return ops.conv2d(x, self._weights[0], self._bias(), activation=act, **self._kw())

    def _conv_backward(self, dz, need_dx):
        """(dx or None, [gradient of each weight, in weight order])."""
        dx, dw, db = ops.conv2d_backward(dz, self._x, self._weights[0], need_dx=need_dx,
                                         **self._kw())
        return dx, [dw, db]

    # --- the shared skeleton
    def _call_logits(self, x, training=False):
        self._x = x
        return self._conv(x, "linear")

    def call(self, x, training=False):
        act = self.activation.name
        if act in ("linear", "relu"):  # fused into the convolution's output pass
            self._x = x
            z = self._conv(x, act)
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
        dx, grads = self._conv_backward(dz, need_dx)
        self._store_grads(grads)
        return dx if need_dx else None

    def _store_grads(self, grads):
        """The weight gradients [kernel, bias or None] into the layer's gradient buffers."""
        g = self._grads
        for i, d in enumerate(grads[:len(g)]):
            g[i][...] = d.reshape(g[i].shape)

    def _common_config(self):
        pad = self.padding if isinstance(self.padding, str) else jsonable(self.padding)
        return {**Layer.get_config(self), "kernel_size": list(self.kernel_size),
                "strides": list(self.strides), "padding": pad,
                "dilation_rate": list(self.dilation_rate), "activation": self.activation.name,
                "use_bias": self.use_bias,
                "bias_initializer": initializers.serialize(self.bias_initializer)}

    def get_config(self):
        return {**self._common_config(), "filters": self.filters,
                "kernel_initializer": initializers.serialize(self.kernel_initializer),
                **_regularizer_config(self), **_constraint_config(self)}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for k, v in config.items():
            if k.endswith("_initializer"):
                config[k] = initializers.get(v)
        return cls(**config)


class Conv1D(Conv2D):
    """1-D convolution, channels-last (N, steps, C); kernel (k, C_in, filters). Runs as a
    (1, k) 2-D convolution on the (N, 1, steps, C) view of its input (no copies).
    padding 'valid', 'same' or 'causal' (left-padded by the dilated kernel extent - 1)."""

    _input_rank = 3

    def __init__(self, filters, kernel_size, strides=1, padding="valid", data_format=None,
                 dilation_rate=1, groups=1, activation=None, use_bias=True,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 kernel_regularizer=None, bias_regularizer=None, kernel_constraint=None,
                 bias_constraint=None, **kw):
        Layer.__init__(self, **kw)
        who = self._who()
        if groups != 1:
            raise ValueError(f"{who}: groups must be 1 (grouped convolutions are not "
                             f"supported), got {groups!r}")
        k = _one(kernel_size, "kernel_size", who)
        s = _one(strides, "strides", who)
        d = _one(dilation_rate, "dilation_rate", who)
        if not isinstance(padding, str) or padding.lower() not in ("valid", "same", "causal"):
            raise ValueError(f"{who}: padding must be 'valid', 'same' or 'causal', got "
                             f"{padding!r}")
        word = padding.lower()
        pad2d = ((0, 0), ((k - 1) * d, 0)) if word == "causal" else word
        if data_format not in (None, "channels_last"):
            raise ValueError(f"{who}: data_format='channels_last' is the only one supported "
                             f"(sequences are (N, steps, C)), got {data_format!r}")
        self._init_common((1, k), (1, s), pad2d, None, (1, d), activation, use_bias,
                          bias_initializer, bias_regularizer, bias_constraint)
        self._init_kernel(filters, kernel_initializer, kernel_regularizer, kernel_constraint)
        self.padding = word
        # Keras' 1-tuples in public; the (1, n) pairs of the 2-D convolution it runs as
        self._strides2, self._dilation2 = self.strides, self.dilation_rate
        self.kernel_size, self.strides, self.dilation_rate = (k,), (s,), (d,)

    def build(self, s):
        self._check_rank(s)
        self.add_weight((self.kernel_size[0], s[-1], self.filters), self.kernel_initializer,
                        name="kernel", regularizer=self.kernel_regularizer,
                        constraint=self.kernel_constraint)
        self._add_bias(self.filters)

    def compute_output_shape(self, s):
        n = conv_out(s[1], self.kernel_size[0], self.strides[0], self.dilation_rate[0],
                     self._pads[1])
        return (s[0], n, self.filters)

    def _kw(self):
        return dict(strides=self._strides2, padding=self._pads2d(),
                    dilation_rate=self._dilation2)

    def _pads2d(self):
        return "same" if self._pads[0] == "same" else self._pads

    def _kernel4(self):
        w = self._weights[0]
        return w.reshape((1,) + w.shape)

    def _conv(self, x, act):
        n, steps, c = x.shape
        y = ops.conv2d(x.reshape(n, 1, steps, c), self._kernel4(), self._bias(), activation=act,
                       **self._kw())
        return y.reshape(n, y.shape[2], y.shape[3])

    def _conv_backward(self, dz, need_dx):
        x = self._x
        n, steps, f = dz.shape
        dx, dw, db = ops.conv2d_backward(dz.reshape(n, 1, steps, f),
                                         x.reshape(n, 1, x.shape[1], x.shape[2]),
                                         self._kernel4(), need_dx=need_dx, **self._kw())
        return (dx.reshape(x.shape) if dx is not None else None), [dw, db]

    def get_config(self):
        cfg = super().get_config()
        cfg.update(padding=self.padding)
        return cfg


def _one(v, name, who):
    """int or 1-tuple of ints -> int >= 1 (a Conv1D size)."""
    if isinstance(v, (tuple, list)) and len(v) == 1:
        v = v[0]
    return _named(who, lambda: ops._pair(v, name)[0])


class Conv2DTranspose(Conv2D):
    """Transposed 2-D convolution, channels-last; kernel (KH, KW, filters, C_in) as in
    Keras. Its forward pass is conv2d's input gradient and its backward pass conv2d
    forward plus conv2d's weight gradient (ops.conv2d_transpose: the same kernels).
    padding 'valid' or 'same'; output_padding (each < its stride) lengthens the output
    as Keras does; dilation_rate 1 only."""

    def __init__(self, filters, kernel_size, strides=(1, 1), padding="valid",
                 output_padding=None, data_format=None, dilation_rate=(1, 1), activation=None,
                 use_bias=True, kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 kernel_regularizer=None, bias_regularizer=None, kernel_constraint=None,
                 bias_constraint=None, **kw):
        Layer.__init__(self, **kw)
        who = self._who()
        if not isinstance(padding, str) or padding.lower() not in ("valid", "same"):
            raise ValueError(f"{who}: padding must be 'valid' or 'same', got {padding!r}")
        self._init_common(kernel_size, strides, padding, data_format, dilation_rate, activation,
                          use_bias, bias_initializer, bias_regularizer, bias_constraint)
        self._init_kernel(filters, kernel_initializer, kernel_regularizer, kernel_constraint)
        if self.dilation_rate != (1, 1):
            raise ValueError(f"{who}: dilation_rate must be 1 (dilated transposed "
                             f"convolutions are not supported), got {dilation_rate!r}")
        self.output_padding = None
        if output_padding is not None:
            op = _named(who, ops._pair_nonneg, output_padding, "output_padding")
            if op[0] >= self.strides[0] or op[1] >= self.strides[1]:
                raise ValueError(f"{who}: output_padding {op} must be smaller than strides "
                                 f"{self.strides} along each axis")
            self.output_padding = op

    def build(self, s):
        self._check_rank(s)
        kh, kw = self.kernel_size
        self.add_weight((kh, kw, self.filters, s[-1]), self.kernel_initializer, name="kernel",
                        regularizer=self.kernel_regularizer, constraint=self.kernel_constraint)
        self._add_bias(self.filters)

    def compute_output_shape(self, s):
        op = self.output_padding or (None, None)
        return (s[0], *(ops.conv_transpose_length(s[i + 1], self.kernel_size[i], self.strides[i],
                                                  self.padding, op[i]) for i in range(2)),
                self.filters)

    def _kw(self):
        return dict(strides=self.strides, padding=self.padding,
                    output_padding=self.output_padding)

    def _conv(self, x, act):
        return ops.conv2d_transpose(x, self._weights[0], self._bias(), activation=act,
                                    **self._kw())

    def _conv_backward(self, dz, need_dx):
        dx, dw, db = ops.conv2d_transpose_backward(dz, self._x, self._weights[0],
                                                   need_dx=need_dx, **self._kw())
        return dx, [dw, db]

    def get_config(self):
        op = None if self.output_padding is None else list(self.output_padding)
        return {**super().get_config(), "output_padding": op}


class DepthwiseConv2D(Conv2D):
    """Depthwise 2-D convolution, channels-last: each input channel convolved with its own
    depth_multiplier filters; kernel (KH, KW, C_in, depth_multiplier), output channels
    C_in * depth_multiplier (channel c*M + m from input channel c), as in Keras.
    A kernel of its own (ops.depthwise_conv2d), no GEMM."""

    def __init__(self, kernel_size, strides=(1, 1), padding="valid", depth_multiplier=1,
                 data_format=None, dilation_rate=(1, 1), activation=None, use_bias=True,
                 depthwise_initializer="glorot_uniform", bias_initializer="zeros",
                 depthwise_regularizer=None, bias_regularizer=None, depthwise_constraint=None,
                 bias_constraint=None, **kw):
        Layer.__init__(self, **kw)
        from .. import constraints, regularizers
        self._init_common(kernel_size, strides, padding, data_format, dilation_rate, activation,
                          use_bias, bias_initializer, bias_regularizer, bias_constraint)
        self.depth_multiplier = _positive_int(depth_multiplier, "depth_multiplier", self._who())
        self.depthwise_initializer = initializers.get(depthwise_initializer)
        self.depthwise_regularizer = regularizers.get(depthwise_regularizer)
        self.depthwise_constraint = constraints.get(depthwise_constraint)

    def build(self, s):
        self._check_rank(s)
        kh, kw = self.kernel_size
        self.add_weight((kh, kw, s[-1], self.depth_multiplier), self.depthwise_initializer,
                        name="kernel", regularizer=self.depthwise_regularizer,
                        constraint=self.depthwise_constraint)
        self._add_bias(s[-1] * self.depth_multiplier)

    def compute_output_shape(self, s):
        return Conv2D.compute_output_shape(self, s)[:3] + (s[3] * self.depth_multiplier,)

    @property
    def filters(self):
        return None if not self._weights else self._weights[0].shape[2] * self.depth_multiplier

    def _conv(self, x, act):
        return ops.depthwise_conv2d(x, self._weights[0], self._bias(), activation=act,
                                    **self._kw())

    def _conv_backward(self, dz, need_dx):
        dx, dw, db = ops.depthwise_conv2d_backward(dz, self._x, self._weights[0],
                                                   need_dx=need_dx, **self._kw())
        return dx, [dw, db]

    def get_config(self):
        cfg = {**self._common_config(), "depth_multiplier": self.depth_multiplier,
               "depthwise_initializer": initializers.serialize(self.depthwise_initializer)}
        return _with_regularizers_and_constraints(self, cfg, ("depthwise", "bias"))


class SeparableConv2D(Conv2D):
    """Depthwise-separable 2-D convolution: a depthwise convolution (kernel (KH, KW, C_in,
    depth_multiplier), no bias) then a 1x1 convolution to ``filters`` channels (kernel
    (1, 1, C_in * depth_multiplier, filters)) with the bias and activation, as in Keras."""

    def __init__(self, filters, kernel_size, strides=(1, 1), padding="valid", data_format=None,
                 dilation_rate=(1, 1), depth_multiplier=1, activation=None, use_bias=True,
                 depthwise_initializer="glorot_uniform", pointwise_initializer="glorot_uniform",
                 bias_initializer="zeros", depthwise_regularizer=None,
                 pointwise_regularizer=None, bias_regularizer=None, depthwise_constraint=None,
                 pointwise_constraint=None, bias_constraint=None, **kw):
        Layer.__init__(self, **kw)
        from .. import constraints, regularizers
        who = self._who()
        self._init_common(kernel_size, strides, padding, data_format, dilation_rate, activation,
                          use_bias, bias_initializer, bias_regularizer, bias_constraint)
        self.filters = _positive_int(filters, "filters", who)
        self.depth_multiplier = _positive_int(depth_multiplier, "depth_multiplier", who)
        self.depthwise_initializer = initializers.get(depthwise_initializer)
        self.pointwise_initializer = initializers.get(pointwise_initializer)
        self.depthwise_regularizer = regularizers.get(depthwise_regularizer)
        self.pointwise_regularizer = regularizers.get(pointwise_regularizer)
        self.depthwise_constraint = constraints.get(depthwise_constraint)
        self.pointwise_constraint = constraints.get(pointwise_constraint)

    def build(self, s):
        self._check_rank(s)
        kh, kw = self.kernel_size
        m = self.depth_multiplier
        self.add_weight((kh, kw, s[-1], m), self.depthwise_initializer, name="depthwise_kernel",
                        regularizer=self.depthwise_regularizer,
                        constraint=self.depthwise_constraint)
        self.add_weight((1, 1, s[-1] * m, self.filters), self.pointwise_initializer,
                        name="pointwise_kernel", regularizer=self.pointwise_regularizer,
                        constraint=self.pointwise_constraint)
        self._add_bias(self.filters)

    def _conv(self, x, act):
        self._h = ops.depthwise_conv2d(x, self._weights[0], None, **self._kw())
        return ops.conv2d(self._h, self._weights[1], self._bias(), activation=act)

    def _conv_backward(self, dz, need_dx):
        dh, dpw, db = ops.conv2d_backward(dz, self._h, self._weights[1])
        dx, ddw, _ = ops.depthwise_conv2d_backward(dh, self._x, self._weights[0],
                                                   need_dx=need_dx, **self._kw())
        return dx, [ddw, dpw, db]

    def get_config(self):
        cfg = {**self._common_config(), "filters": self.filters,
               "depth_multiplier": self.depth_multiplier,
               "depthwise_initializer": initializers.serialize(self.depthwise_initializer),
               "pointwise_initializer": initializers.serialize(self.pointwise_initializer)}
        return _with_regularizers_and_constraints(self, cfg, ("depthwise", "pointwise", "bias"))


def _with_regularizers_and_constraints(layer, cfg, prefixes):
    """cfg plus <prefix>_regularizer / <prefix>_constraint of the layer, those that are set."""
    from .. import constraints, regularizers
    for p in prefixes:
        for kind, mod in (("regularizer", regularizers), ("constraint", constraints)):
            v = getattr(layer, f"{p}_{kind}")
            if v is not None:
                cfg[f"{p}_{kind}"] = mod.serialize(v)
    return cfg


# Keras' aliases
Convolution1D = Conv1D
Convolution2D = Conv2D
Convolution2DTranspose = Conv2DTranspose
SeparableConvolution2D = SeparableConv2D
