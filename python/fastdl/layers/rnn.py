"""Recurrent layers: SimpleRNN, LSTM, GRU (Keras weights and gate orders).

Whole sequences run in the C++ kernels (ops.simple_rnn / lstm / gru). Keras'
options: ``return_state``, ``go_backwards``, ``initial_state`` (a call argument;
its gradient flows back), ``stateful`` (``reset_states()``), ``dropout`` (on the
inputs; one mask per sequence, applied before the kernel). A mask (from
Embedding(mask_zero=True) or Masking) and ``recurrent_dropout`` change every
step, which the whole-sequence kernels cannot express: those calls run the same
kernels one time step at a time (slower, same weights and results).
"""
import numpy as np

from .. import _device, _random, activations, initializers, ops
from .layer import Layer, shape_str


class _RNN(Layer):
    _gates = 1
    _n_states = 1
    supports_masking = True

    def __init__(self, units, activation="tanh", use_bias=True, return_sequences=False,
                 kernel_initializer="glorot_uniform", recurrent_initializer="orthogonal",
                 bias_initializer="zeros", return_state=False, go_backwards=False,
                 stateful=False, unroll=False, dropout=0.0, recurrent_dropout=0.0, seed=None,
                 zero_output_for_mask=False, use_cudnn="auto", kernel_regularizer=None,
                 recurrent_regularizer=None, bias_regularizer=None, kernel_constraint=None,
                 recurrent_constraint=None, bias_constraint=None, **kw):
        super().__init__(**kw)
        from .. import constraints, regularizers
        for k, v in (("kernel_regularizer", kernel_regularizer),
                     ("recurrent_regularizer", recurrent_regularizer),
                     ("bias_regularizer", bias_regularizer)):
            setattr(self, k, regularizers.get(v))
        for k, v in (("kernel_constraint", kernel_constraint),
                     ("recurrent_constraint", recurrent_constraint),
                     ("bias_constraint", bias_constraint)):
            setattr(self, k, constraints.get(v))
        name = f"{type(self).__name__} {self.name!r}"
        if isinstance(units, bool) or not isinstance(units, (int, np.integer)) or units <= 0:
            raise ValueError(f"{name}: units must be a positive integer, got {units!r}")
        self.units = int(units)
        self.activation = activations.get(activation)
        self.use_bias = bool(use_bias)
        self.return_sequences = bool(return_sequences)
        self.return_state = bool(return_state)
        self.go_backwards = bool(go_backwards)
        self.stateful = bool(stateful)
        self.unroll = bool(unroll)          # a speed hint in Keras; results are the same
        if use_cudnn not in ("auto", True, False):
            raise ValueError(f"{name}: use_cudnn must be 'auto', True or False, got {use_cudnn!r}")
        self.use_cudnn = use_cudnn        # fastdl picks its own kernels; results are the same
        for what, v in (("dropout", dropout), ("recurrent_dropout", recurrent_dropout)):
            if not 0.0 <= float(v) < 1.0:
                raise ValueError(f"{name}: {what} must be in [0, 1), got {v!r}")
        self.dropout = float(dropout)
        self.recurrent_dropout = float(recurrent_dropout)
        self.seed = seed
        self.zero_output_for_mask = bool(zero_output_for_mask)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.recurrent_initializer = initializers.get(recurrent_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self._state_values = None
        self._gen = None
        self._seed_base = 0
        self._seed_count = 0

    # ------------------------------------------------------------ calls
    def __call__(self, *args, **kwargs):
        # initial_state joins the inputs (as in Keras' RNN), so that it may be symbolic
        # and its gradient flows back: layer([x, h0(, c0)])
        st = kwargs.pop("initial_state", None)
        if len(args) > 1 and st is None:
            args, st = args[:1], args[1]
        if st is not None:
            x = args[0] if args else kwargs.pop("inputs")
            st = list(st) if isinstance(st, (list, tuple)) else [st]
            if len(st) != self._n_states:
                raise ValueError(f"{type(self).__name__} {self.name!r}: initial_state must hold "
                                 f"{self._n_states} state(s), got {len(st)}")
            return super().__call__([x, *st], **kwargs)
        return super().__call__(*args, **kwargs)

    def _bias_shape(self):
        return (self._gates * self.units,)

    def build(self, s):
        if isinstance(s, list):
            s, states = s[0], s[1:]
            for i, t in enumerate(states):
                if len(t) != 2 or (t[1] is not None and t[1] != self.units):
                    raise ValueError(f"{type(self).__name__} {self.name!r}: initial state {i} "
                                     f"must have shape (batch, {self.units}), got {shape_str(t)}")
        if len(s) != 3:
            raise ValueError(f"{type(self).__name__} {self.name!r} expects 3-D inputs (batch, "
                             f"timesteps, features), got {shape_str(s)}")
        g = self._gates * self.units
        self.add_weight((s[-1], g), self.kernel_initializer, name="kernel",
                        regularizer=self.kernel_regularizer, constraint=self.kernel_constraint)
        self.add_weight((self.units, g), self.recurrent_initializer, name="recurrent_kernel",
                        regularizer=self.recurrent_regularizer,
                        constraint=self.recurrent_constraint)
        if self.use_bias:
            self._init_bias()

    def _init_bias(self):
        self._add_bias()

    def _add_bias(self):
        return self.add_weight(self._bias_shape(), self.bias_initializer, name="bias",
                               regularizer=self.bias_regularizer, constraint=self.bias_constraint)

    def _check_input(self, shape):
        # any number of time steps (Keras builds recurrent layers for (batch, None, features))
        exp = self.input_shape
        if isinstance(exp, tuple) and len(exp) == 3 and len(shape) == 3 and \
                exp[2] is not None and exp[2] != shape[2]:
            raise ValueError(f"{type(self).__name__} {self.name!r} was built for {exp[2]} input "
                             f"features but got inputs of shape {shape_str(tuple(shape))}")
        if len(shape) != 3:
            raise ValueError(f"{type(self).__name__} {self.name!r} expects 3-D inputs (batch, "
                             f"timesteps, features), got {shape_str(tuple(shape))}")

    def compute_output_shape(self, s):
        if isinstance(s, list):
            s = s[0]
        out = (s[0], s[1], self.units) if self.return_sequences else (s[0], self.units)
        if self.return_state:
            return [out] + [(s[0], self.units)] * self._n_states
        return out

    def compute_mask(self, inputs, mask=None):
        if isinstance(mask, (list, tuple)):
            mask = mask[0]
        out = mask if self.return_sequences else None
        if self.return_state:
            return [out] + [None] * self._n_states
        return out

    def _zero_bias(self):
        return self._zeros("zero_bias", self._bias_shape())

    # ------------------------------------------------------------ states
    @property
    def states(self):
        return self._state_values

    def reset_states(self, states=None):
        """Stateful layers: forget the carried states (zeros from the next call on), or
        set them to ``states``."""
        if not self.stateful:
            raise AttributeError(f"{type(self).__name__} {self.name!r}: reset_states is for "
                                 f"stateful layers (stateful=True)")
        if states is None:
            self._state_values = None
            return
        states = list(states) if isinstance(states, (list, tuple)) else [states]
        if len(states) != self._n_states:
            raise ValueError(f"{type(self).__name__} {self.name!r}: reset_states needs "
                             f"{self._n_states} state(s), got {len(states)}")
        self._state_values = [np.array(_device.to_host(s), dtype=self.dtype) for s in states]

    reset_state = reset_states

    def _initial_states(self, x, given):
        n = x.shape[0]
        if given is not None:
            for i, s in enumerate(given):
                if tuple(s.shape) != (n, self.units):
                    raise ValueError(f"{type(self).__name__} {self.name!r}: initial state {i} "
                                     f"must have shape ({n}, {self.units}), got {tuple(s.shape)}")
            return list(given)
        if self.stateful and self._state_values is not None:
            st = self._state_values
            if st[0].shape[0] != n:
                raise ValueError(f"{type(self).__name__} {self.name!r} is stateful with a batch "
                                 f"of {st[0].shape[0]} sequences but got a batch of {n}; keep "
                                 f"the batch size fixed (or call reset_states())")
            mv = _device.mover("cuda") if _device.is_device(x) else None
            return [mv(s) if mv is not None and not _device.is_device(s) else s for s in st]
        return [self._zeros(f"s0_{i}", (n, self.units)) for i in range(self._n_states)]

    # ------------------------------------------------------------ dropout masks
    def _next_seed(self):
        g = _random.generation()
        if self._gen != g:
            self._gen = g
            self._seed_base = self.seed if self.seed is not None else _random.next_seed()
            self._seed_count = 0
        self._seed_count += 1
        return (self._seed_base + self._seed_count * 0x9E3779B97F4A7C15) & (2 ** 63 - 1)

    def _dropout_mask(self, like, shape, rate):
        """Keep-mask scaled by 1/(1-rate), one per sequence (fixed over its time steps)."""
        rng = np.random.default_rng(self._next_seed())
        m = (rng.random(shape) >= rate).astype(self.dtype) / np.asarray(1.0 - rate, self.dtype)
        return _device.xp(like).asarray(m)

    # ------------------------------------------------------------ forward
    def call(self, inputs, training=False, mask=None):
        if isinstance(inputs, (list, tuple)):
            x, given = inputs[0], list(inputs[1:])
        else:
            x, given = inputs, None
        if isinstance(mask, (list, tuple)):
            mask = mask[0]
        self._state_inputs = given is not None
        states = self._initial_states(x, given)
        xp = _device.xp(x)
        n, T = x.shape[0], x.shape[1]
        self._dmask = None
        if training and self.dropout > 0.0:
            self._dmask = self._dropout_mask(x, (n, x.shape[2]), self.dropout)
            x = x * self._dmask[:, None, :]
        self._rmask = None
        if training and self.recurrent_dropout > 0.0:
            self._rmask = self._dropout_mask(x, (n, self.units), self.recurrent_dropout)
        if mask is not None:
            mask = xp.asarray(mask).astype(bool)
            if tuple(mask.shape) != (n, T):
                raise ValueError(f"{type(self).__name__} {self.name!r}: the mask has shape "
                                 f"{tuple(mask.shape)} but the inputs have {n} sequences of "
                                 f"{T} steps; it must be ({n}, {T})")
            if bool(mask.all()):
                mask = None
        if self.go_backwards:
            x = x[:, ::-1]
            mask = None if mask is None else mask[:, ::-1]
        self._x = x
        self._s0 = states
        self._mask = mask
        self._training = bool(training)
        w = self._weights
        self._b = w[2] if self.use_bias else self._zero_bias()
        if mask is None and self._rmask is None:
            seq, finals = self._run_whole(x, states, training)
            self._stepped = False
        else:
            seq, finals = self._run_steps(x, states, mask)
            self._stepped = True
        self._seq = seq
        if self.stateful:
            self._state_values = [f.copy() for f in finals]
        out = seq if self.return_sequences else seq[:, -1]
        if self.return_state:
            return [out, *finals]
        return out

    def _run_steps(self, x, states, mask):
        """One kernel call per time step; masked steps keep the previous states, and
        their output is the previous output (zeros with zero_output_for_mask)."""
        xp = _device.xp(x)
        n, T = x.shape[0], x.shape[1]
        seq = xp.empty((n, T, self.units), self.dtype)
        cur = list(states)
        prev_out = xp.zeros((n, self.units), self.dtype)
        self._steps = []
        for t in range(T):
            hin = cur[0] * self._rmask if self._rmask is not None else cur[0]
            new, hs_t, saved = self._cell(x[:, t:t + 1], hin, cur)
            if mask is None:
                cur = new
                out = new[0]
            else:
                m = mask[:, t, None]
                cur = [xp.where(m, a, b) for a, b in zip(new, cur)]
                out = xp.where(m, new[0], 0 if self.zero_output_for_mask else prev_out)
            prev_out = out
            seq[:, t] = out
            self._steps.append((hin, hs_t, saved))
        return seq, cur

    # ------------------------------------------------------------ backward
    def backward(self, dy, need_dx=True):
        d_states = [None] * self._n_states
        if isinstance(dy, (list, tuple)):
            dy, d_states = dy[0], list(dy[1:])
        x = self._x
        xp = _device.xp(x)
        n, T = x.shape[0], x.shape[1]
        if dy is None:
            dy = xp.zeros((n, T, self.units) if self.return_sequences else (n, self.units),
                          self.dtype)
        if not self._stepped:
            dx, d0, dk, drk, db = self._back_whole(dy, d_states, need_dx or self._dmask is not None)
        else:
            dx, d0, dk, drk, db = self._back_steps(dy, d_states)
        g = self._grads
        g[0][...] = dk
        g[1][...] = drk
        if self.use_bias:
            g[2][...] = db
        if dx is not None:
            if self.go_backwards:
                dx = dx[:, ::-1]
            if self._dmask is not None:
                dx = dx * self._dmask[:, None, :]
            elif self.go_backwards:
                dx = xp.ascontiguousarray(dx)
        if self._state_inputs:
            return [dx, *d0]
        return dx

    def _dseq(self, dy, dh_T):
        """The gradient of every step's output (N, T, U), or of the last one (N, U)."""
        if self.return_sequences:
            if dh_T is None:
                return dy
            dy = dy.copy()
            dy[:, -1] += dh_T
            return dy
        return dy if dh_T is None else dy + dh_T

    def _back_steps(self, dy, d_states):
        x = self._x
        xp = _device.xp(x)
        n, T = x.shape[0], x.shape[1]
        mask = self._mask
        if self.return_sequences:
            dseq = dy
        else:
            dseq = xp.zeros((n, T, self.units), self.dtype)
            dseq[:, -1] = dy
        ds = [xp.zeros((n, self.units), self.dtype) if d is None else d for d in d_states]
        acc = xp.zeros((n, self.units), self.dtype)
        dx = xp.empty(x.shape, self.dtype)
        dk = drk = db = None
        for t in range(T - 1, -1, -1):
            hin, hs_t, saved = self._steps[t]
            g = dseq[:, t]
            if mask is None:
                dnew = [g + ds[0]] + ds[1:]
                keep = None
            else:
                m = mask[:, t, None]
                if self.zero_output_for_mask:
                    gout = xp.where(m, g, 0)
                else:
                    acc = acc + g
                    gout = xp.where(m, acc, 0)
                    acc = xp.where(m, 0, acc)
                dnew = [gout + xp.where(m, ds[0], 0)] + [xp.where(m, d, 0) for d in ds[1:]]
                keep = [xp.where(m, 0, d) for d in ds]
            dx_t, dprev, gk, grk, gb = self._cell_backward(dnew, x[:, t:t + 1], hin, hs_t,
                                                           saved)
            dx[:, t] = dx_t[:, 0]
            if self._rmask is not None:
                dprev[0] = dprev[0] * self._rmask
            ds = dprev if keep is None else [a + b for a, b in zip(dprev, keep)]
            dk = gk if dk is None else dk + gk
            drk = grk if drk is None else drk + grk
            db = gb if db is None else db + gb
        if dk is None:
            w = self._weights
            dk, drk, db = (xp.zeros(w[0].shape, self.dtype), xp.zeros(w[1].shape, self.dtype),
                           xp.zeros(self._bias_shape(), self.dtype))
        return dx, ds, dk, drk, db

    # ------------------------------------------------------------ config
    def get_config(self):
        cfg = {**super().get_config(), "units": self.units, "activation": self.activation.name,
               "use_bias": self.use_bias, "return_sequences": self.return_sequences,
               "kernel_initializer": initializers.serialize(self.kernel_initializer),
               "recurrent_initializer": initializers.serialize(self.recurrent_initializer),
               "bias_initializer": initializers.serialize(self.bias_initializer)}
        from .. import constraints, regularizers
        for k in ("kernel_regularizer", "recurrent_regularizer", "bias_regularizer"):
            if getattr(self, k) is not None:
                cfg[k] = regularizers.serialize(getattr(self, k))
        for k in ("kernel_constraint", "recurrent_constraint", "bias_constraint"):
            if getattr(self, k) is not None:
                cfg[k] = constraints.serialize(getattr(self, k))
        for k, default in (("return_state", False), ("go_backwards", False),
                           ("stateful", False), ("unroll", False), ("dropout", 0.0),
                           ("recurrent_dropout", 0.0), ("seed", None)):
            if getattr(self, k) != default:
                cfg[k] = getattr(self, k)
        return cfg

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for k in ("kernel_initializer", "recurrent_initializer", "bias_initializer"):
            if k in config:
                config[k] = initializers.get(config[k])
        return cls(**config)


class SimpleRNN(_RNN):
    """h_t = activation(x_t @ kernel + h_{t-1} @ recurrent_kernel + bias)."""

    def _run_whole(self, x, states, training):
        w = self._weights
        hs = ops.simple_rnn(x, states[0], w[0], w[1], self._b, activation=self.activation.name)
        return hs, [hs[:, -1]]

    def _back_whole(self, dy, d_states, need_dx):
        w = self._weights
        dx, dh0, dk, drk, db = ops.simple_rnn_backward(
            self._dseq(dy, d_states[0]), self._x, self._s0[0], w[0], w[1], self._seq,
            activation=self.activation.name, need_dx=need_dx)
        return dx, [dh0], dk, drk, db

    def _cell(self, xt, hin, cur):
        w = self._weights
        hs = ops.simple_rnn(xt, hin, w[0], w[1], self._b, activation=self.activation.name)
        return [hs[:, 0]], hs, None

    def _cell_backward(self, dnew, xt, hin, hs_t, saved):
        w = self._weights
        dx, dh0, dk, drk, db = ops.simple_rnn_backward(
            dnew[0][:, None], xt, hin, w[0], w[1], hs_t, activation=self.activation.name)
        return dx, [dh0], dk, drk, db


class LSTM(_RNN):
    """Keras' LSTM (gates i, f, c, o; tanh and sigmoid); unit_forget_bias=True."""
    _gates = 4
    _n_states = 2

    def __init__(self, units, activation="tanh", recurrent_activation="sigmoid",
                 unit_forget_bias=True, **kw):
        if activations.get(activation).name != "tanh" or \
                activations.get(recurrent_activation).name != "sigmoid":
            raise NotImplementedError("LSTM supports activation='tanh', recurrent_activation='sigmoid' only")
        super().__init__(units, activation=activation, **kw)
        self.unit_forget_bias = bool(unit_forget_bias)

    def _init_bias(self):
        b = self._add_bias()
        if self.unit_forget_bias:
            b[self.units:2 * self.units] = 1.0

    def _run_whole(self, x, states, training):
        w = self._weights
        h0, c0 = states
        if training:
            hs, cT, self._cache = ops.lstm(x, h0, c0, w[0], w[1], self._b, return_cache=True)
        else:   # a backward after an inference call (under a tape) recomputes the cache
            hs, cT = ops.lstm(x, h0, c0, w[0], w[1], self._b)
            self._cache = None
        return hs, [hs[:, -1], cT]

    def _back_whole(self, dy, d_states, need_dx):
        w = self._weights
        if self._cache is None:
            _, _, self._cache = ops.lstm(self._x, self._s0[0], self._s0[1], w[0], w[1], self._b,
                                         return_cache=True)
        dx, dh0, dc0, dk, drk, db = ops.lstm_backward(
            self._dseq(dy, d_states[0]), d_states[1], self._x, self._s0[0], self._s0[1], w[0],
            w[1], self._seq, self._cache, need_dx=need_dx)
        return dx, [dh0, dc0], dk, drk, db

    def _cell(self, xt, hin, cur):
        w = self._weights
        hs, cT, cache = ops.lstm(xt, hin, cur[1], w[0], w[1], self._b, return_cache=True)
        return [hs[:, 0], cT], hs, (cur[1], cache)

    def _cell_backward(self, dnew, xt, hin, hs_t, saved):
        w = self._weights
        c_prev, cache = saved
        dx, dh0, dc0, dk, drk, db = ops.lstm_backward(
            dnew[0][:, None], dnew[1], xt, hin, c_prev, w[0], w[1], hs_t, cache)
        return dx, [dh0, dc0], dk, drk, db

    def get_config(self):
        return {**super().get_config(), "unit_forget_bias": self.unit_forget_bias}


class GRU(_RNN):
    """Keras' GRU with reset_after=True (gates z, r, h; bias (2, 3U)).

    recurrent_dropout drops the previous state for the whole step (its update-gate mix
    included), as LSTM and SimpleRNN do in Keras 3; Keras 3's own GRU cell differs by
    version (its default implementation skips the recurrent mask)."""
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

    def _run_whole(self, x, states, training):
        w = self._weights
        if training:
            hs, self._cache = ops.gru(x, states[0], w[0], w[1], self._b, return_cache=True)
        else:   # a backward after an inference call (under a tape) recomputes the cache
            hs = ops.gru(x, states[0], w[0], w[1], self._b)
            self._cache = None
        return hs, [hs[:, -1]]

    def _back_whole(self, dy, d_states, need_dx):
        w = self._weights
        if self._cache is None:
            _, self._cache = ops.gru(self._x, self._s0[0], w[0], w[1], self._b, return_cache=True)
        dx, dh0, dk, drk, db = ops.gru_backward(
            self._dseq(dy, d_states[0]), self._x, self._s0[0], w[0], w[1], self._b, self._seq,
            self._cache, need_dx=need_dx)
        return dx, [dh0], dk, drk, db

    def _cell(self, xt, hin, cur):
        w = self._weights
        hs, cache = ops.gru(xt, hin, w[0], w[1], self._b, return_cache=True)
        return [hs[:, 0]], hs, cache

    def _cell_backward(self, dnew, xt, hin, hs_t, saved):
        w = self._weights
        dx, dh0, dk, drk, db = ops.gru_backward(
            dnew[0][:, None], xt, hin, w[0], w[1], self._b, hs_t, saved)
        return dx, [dh0], dk, drk, db
