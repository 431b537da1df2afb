"""Recurrent layers: SimpleRNN, LSTM, GRU (Keras weights and gate orders)."""
from .. import activations, initializers, ops
from .layer import Layer, shape_str


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
                             f"timesteps, features), got {shape_str(s)}")
        g = self._gates * self.units
        self.add_weight((s[-1], g), self.kernel_initializer, name="kernel")
        self.add_weight((self.units, g), self.recurrent_initializer, name="recurrent_kernel")
        if self.use_bias:
            self._init_bias()

    def _init_bias(self):
        self.add_weight(self._bias_shape(), self.bias_initializer, name="bias")

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
        hs = ops.simple_rnn(x, self._h0(x.shape[0]), w[0], w[1], b,
                                    activation=self.activation.name)
        return self._output(hs)

    def backward(self, dy, need_dx=True):
        w = self._weights
        dx, _, dk, drk, db = ops.simple_rnn_backward(
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
        b = self.add_weight(self._bias_shape(), self.bias_initializer, name="bias")
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
            hs, _, self._cache = ops.lstm(x, h0, c0, w[0], w[1], b, return_cache=True)
        else:
            hs, _ = ops.lstm(x, h0, c0, w[0], w[1], b)
        return self._output(hs)

    def backward(self, dy, need_dx=True):
        w = self._weights
        n = self._x.shape[0]
        dx, _, _, dk, drk, db = ops.lstm_backward(
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
            hs, self._cache = ops.gru(x, h0, w[0], w[1], b, return_cache=True)
        else:
            hs = ops.gru(x, h0, w[0], w[1], b)
        return self._output(hs)

    def backward(self, dy, need_dx=True):
        w = self._weights
        dx, _, dk, drk, db = ops.gru_backward(
            dy, self._x, self._h0(self._x.shape[0]), w[0], w[1], self._b, self._hs, self._cache,
            need_dx=need_dx)
        self._store_grads(dk, drk, db)
        return dx
