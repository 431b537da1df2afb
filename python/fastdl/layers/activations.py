"""Activation layers: Activation, ReLU, Softmax."""
from .. import activations, ops
from .layer import Layer


class Activation(Layer):
    supports_masking = True

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
