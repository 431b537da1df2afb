"""Convolution layers: Conv2D."""
from .. import activations, initializers, ops
from ._conv_utils import conv_out, jsonable, norm_padding, padding_arg, pair
from .core import Dense, _constraint_config, _regularizer_config
from .layer import Layer, shape_str


class Conv2D(Layer):
    """2-D convolution, channels-last (N, H, W, C); kernel (KH, KW, C_in, filters)."""

    def __init__(self, filters, kernel_size, strides=(1, 1), padding="valid", data_format=None,
                 dilation_rate=(1, 1), activation=None, use_bias=True,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros", kernel_regularizer=None, bias_regularizer=None,
                 kernel_constraint=None, bias_constraint=None, **kw):
        super().__init__(**kw)
        from .. import constraints, regularizers
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.kernel_constraint = constraints.get(kernel_constraint)
        self.bias_constraint = constraints.get(bias_constraint)
        if data_format not in (None, "channels_last"):
            raise ValueError("Conv2D supports data_format='channels_last' only (images are (N, H, W, C))")
        self.filters = int(filters)
        self.kernel_size = pair(kernel_size, "kernel_size")
        self.strides = pair(strides, "strides")
        self.dilation_rate = pair(dilation_rate, "dilation_rate")
        self.padding = padding_arg(padding)
        self._pads = norm_padding(padding)
        self.activation = activations.get(activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)

    def build(self, s):
        if len(s) != 4:
            raise ValueError(f"Conv2D {self.name!r} expects 4-D inputs (batch, height, width, "
                             f"channels), got {shape_str(s)}")
        kh, kw = self.kernel_size
        self.add_weight((kh, kw, s[-1], self.filters), self.kernel_initializer, name="kernel",
                        regularizer=self.kernel_regularizer, constraint=self.kernel_constraint)
        if self.use_bias:
            self.add_weight((self.filters,), self.bias_initializer, name="bias",
                            regularizer=self.bias_regularizer, constraint=self.bias_constraint)

    def compute_output_shape(self, s):
        oh = conv_out(s[1], self.kernel_size[0], self.strides[0], self.dilation_rate[0], self._pads[0])
        ow = conv_out(s[2], self.kernel_size[1], self.strides[1], self.dilation_rate[1], self._pads[1])
        return (s[0], oh, ow, self.filters)

    def _kw(self):
        return dict(strides=self.strides, padding=self.padding, dilation_rate=self.dilation_rate)

    def _call_logits(self, x, training=False):
        self._x = x
        w = self._weights
        return ops.conv2d(x, w[0], w[1] if self.use_bias else None, **self._kw())

    def call(self, x, training=False):
        self._x = x
        w = self._weights
        act = self.activation.name
        if act in ("linear", "relu"):  # fused into the convolution's output pass
            z = ops.conv2d(x, w[0], w[1] if self.use_bias else None, activation=act,
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
        dx, dw, db = ops.conv2d_backward(dz, self._x, self._weights[0], need_dx=need_dx,
                                                 **self._kw())
        g = self._grads
        g[0][...] = dw
        if self.use_bias:
            g[1][...] = db
        return dx if need_dx else None

    def get_config(self):
        pad = self.padding if isinstance(self.padding, str) else jsonable(self.padding)
        return {**super().get_config(), "filters": self.filters, "kernel_size": list(self.kernel_size),
                "strides": list(self.strides), "padding": pad,
                "dilation_rate": list(self.dilation_rate), "activation": self.activation.name,
                "use_bias": self.use_bias,
                "kernel_initializer": initializers.serialize(self.kernel_initializer),
                "bias_initializer": initializers.serialize(self.bias_initializer),
                **_regularizer_config(self), **_constraint_config(self)}

    from_config = Dense.__dict__["from_config"]
