"""Pooling layers."""
import numpy as np

from .. import _device, ops
from ._conv_utils import conv_out, jsonable, norm_padding, padding_arg, pair
from .layer import Layer, shape_str


class _Pool2D(Layer):
    _op = None

    def __init__(self, pool_size=(2, 2), strides=None, padding="valid", data_format=None, **kw):
        super().__init__(**kw)
        if data_format not in (None, "channels_last"):
            raise ValueError(f"{type(self).__name__} supports data_format='channels_last' only")
        self.pool_size = pair(pool_size, "pool_size")
        self.strides = self.pool_size if strides is None else pair(strides, "strides")
        self.padding = padding_arg(padding)
        self._pads = norm_padding(padding)

    def build(self, s):
        if len(s) != 4:
            raise ValueError(f"{type(self).__name__} {self.name!r} expects 4-D inputs "
                             f"(batch, height, width, channels), got {shape_str(s)}")

    def compute_output_shape(self, s):
        oh = conv_out(s[1], self.pool_size[0], self.strides[0], 1, self._pads[0])
        ow = conv_out(s[2], self.pool_size[1], self.strides[1], 1, self._pads[1])
        return (s[0], oh, ow, s[3])

    def _kw(self):
        return dict(pool_size=self.pool_size, strides=self.strides, padding=self.padding)

    def call(self, x, training=False):
        self._x = x
        return getattr(ops, self._op)(x, **self._kw())

    def backward(self, dy, need_dx=True):
        if not need_dx:
            return None
        return getattr(ops, self._op + "_backward")(dy, self._x, **self._kw())

    def get_config(self):
        pad = self.padding if isinstance(self.padding, str) else jsonable(self.padding)
        return {**super().get_config(), "pool_size": list(self.pool_size),
                "strides": list(self.strides), "padding": pad}


class MaxPooling2D(_Pool2D):
    """Training calls on the CPU keep each window's argmax (one byte per output), so
    that the backward pass scatters dy without reading x again."""
    _op = "max_pool2d"
    _argmax = None
    _after_conv = None   # the Conv2D whose call ran with this layer's (_call_after_conv)

    def call(self, x, training=False):
        self._x = x
        self._argmax = self._after_conv = None
        if training and type(x) is np.ndarray and self.pool_size[0] * self.pool_size[1] <= 127:
            y, self._argmax = ops.max_pool2d(x, return_argmax=True, **self._kw())
            return y
        return ops.max_pool2d(x, **self._kw())

    def backward(self, dy, need_dx=True):
        if not need_dx:
            return None
        return ops.max_pool2d_backward(dy, self._x, argmax=self._argmax, **self._kw())

    def _fuses_after(self, conv):
        """A training call of ``conv`` followed by this layer can run as one op
        (_call_after_conv): conv a Conv2D with ReLU, these windows tile its output."""
        from .convolutional import Conv2D
        return (type(conv) is Conv2D and conv.activation.name == "relu" and
                self.strides == self.pool_size and self._pads == ((0, 0), (0, 0)) and
                self.pool_size[0] * self.pool_size[1] <= 127)

    def _call_after_conv(self, conv, x):
        """The training call of ``conv`` (_fuses_after) and then of this layer on a CPU
        array, in one op (ops.conv2d_relu_max_pool2d): the convolution's output is not
        stored. Backward: _backward_through."""
        conv._x, conv._y = x, None
        y, self._argmax = ops.conv2d_relu_max_pool2d(x, conv._weights[0], conv._bias(),
                                                     pool_size=self.pool_size, **conv._kw())
        self._after_conv = conv
        self._x = None   # not stored: the backward pass is _backward_through's one op
        return y

    def _train_after_conv(self, conv, x, conv_need_dx, need_dx):
        """The training calls of ``conv`` and then of this layer (_fuses_after): one op on
        a CPU array (_call_after_conv), the two layers' own calls on a device array."""
        if _device.is_device(x):
            return self._plan_call(conv._plan_call(x, True, conv_need_dx), True, need_dx)
        return self._call_after_conv(conv, x)

    def _backward_through(self, conv, dy, need_dx):
        """The backward passes of this layer and then of ``conv``, the layer whose ReLU
        output it pooled: conv's weight gradients, and its dL/dx when need_dx. After the
        fused call (_call_after_conv) one op, ops.conv2d_relu_max_pool2d_backward, which
        does not store the gradient of the convolution's output; otherwise this layer's
        ReLU-masked scatter (_backward_relu) and conv's _backward_logits. The same bits
        either way for finite inputs and weights."""
        if self._after_conv is not conv:
            return conv._backward_logits(self._backward_relu(dy), need_dx)
        dx, dw, db = ops.conv2d_relu_max_pool2d_backward(
            dy, self._argmax, conv._x, conv._weights[0], pool_size=self.pool_size,
            need_dx=need_dx, need_db=conv.use_bias, **conv._kw())
        conv._store_grads([dw, db])
        return dx

    def _backward_relu(self, dy):
        """The gradient of the pre-activation of the ReLU whose output this layer pooled."""
        return ops.max_pool2d_backward(dy, self._x, relu=True, argmax=self._argmax,
                                       **self._kw())


class AveragePooling2D(_Pool2D):
    _op = "avg_pool2d"


MaxPool2D = MaxPooling2D
AvgPool2D = AveragePooling2D


class GlobalAveragePooling2D(Layer):
    def __init__(self, data_format=None, keepdims=False, **kw):
        super().__init__(**kw)
        if data_format not in (None, "channels_last"):
            raise ValueError(f"GlobalAveragePooling2D supports data_format='channels_last' only")
        self.keepdims = bool(keepdims)

    def build(self, s):
        if len(s) != 4:
            raise ValueError(f"GlobalAveragePooling2D {self.name!r} expects 4-D inputs, got {shape_str(s)}")

    def compute_output_shape(self, s):
        return (s[0], 1, 1, s[3]) if self.keepdims else (s[0], s[3])

    def call(self, x, training=False):
        self._x = x
        y = ops.global_avg_pool2d(x)
        return y.reshape(y.shape[0], 1, 1, y.shape[1]) if self.keepdims else y

    def backward(self, dy, need_dx=True):
        if not need_dx:
            return None
        if self.keepdims:
            dy = dy.reshape(dy.shape[0], dy.shape[3])
        return ops.global_avg_pool2d_backward(dy, self._x)

    def get_config(self):
        return {**super().get_config(), "keepdims": self.keepdims}


GlobalAvgPool2D = GlobalAveragePooling2D
