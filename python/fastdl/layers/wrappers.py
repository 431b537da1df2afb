"""Layer wrappers (Keras 3): TimeDistributed and Bidirectional.

Both are written with fastdl.ops around calls of the layers they hold, so they
train through the tape (each sub-layer call is one node running its fused
kernels; the reshapes, flips and merges are traced ops).
"""
from .. import ops
from .layer import Layer, shape_str

_MERGE_MODES = ("concat", "sum", "mul", "ave", None)


def _check_layer(owner, layer):
    if not isinstance(layer, Layer):
        raise ValueError(f"{owner} needs a Layer instance to wrap, got {type(layer).__name__}")


class TimeDistributed(Layer):
    """Applies ``layer`` to every time step: inputs (batch, time, ...) are run as one
    call over batch * time rows."""
    _tracks = True
    supports_masking = True

    def __init__(self, layer, **kw):
        _check_layer("TimeDistributed", layer)
        super().__init__(**kw)
        self.layer = layer
        if self._input_shape_arg is None and layer._input_shape_arg is not None:
            self._input_shape_arg = (None,) + tuple(layer._input_shape_arg)

    def _inner_shape(self, s):
        if isinstance(s, list) or len(s) < 3:
            raise ValueError(f"TimeDistributed {self.name!r} expects one input of at least 3 "
                             f"dimensions (batch, time, ...), got "
                             f"{s if isinstance(s, list) else shape_str(s)}")
        return (None,) + tuple(s[2:])

    def build(self, input_shape):
        inner = self._inner_shape(input_shape)
        if not self.layer.built:
            self.layer._build_from(inner, self.dtype)

    def compute_output_shape(self, s):
        out = self.layer.compute_output_shape(self._inner_shape(s))
        return (s[0], s[1]) + tuple(out[1:])

    def call(self, inputs, training=None, mask=None):
        s = tuple(inputs.shape)
        if len(s) < 3:
            self._inner_shape(s)
        rows = ops.reshape(inputs, (s[0] * s[1],) + s[2:])
        y = self.layer(rows, training=bool(training))
        return ops.reshape(y, (s[0], s[1]) + tuple(y.shape[1:]))

    def compute_mask(self, inputs, mask=None):
        return mask

    def get_config(self):
        from ..saving import serialize_object
        return {**super().get_config(), "layer": serialize_object(self.layer)}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        from ..saving import deserialize_object
        config = dict(config)
        if not isinstance(config["layer"], Layer):
            config["layer"] = deserialize_object(config["layer"], custom_objects, kind="layer")
        return cls(**config)


class Bidirectional(Layer):
    """Runs a recurrent layer forward and a copy of it backward over the sequence and
    merges the two outputs (``merge_mode`` concat, sum, mul, ave, or None for both)."""
    _tracks = True
    supports_masking = True

    def __init__(self, layer, merge_mode="concat", weights=None, backward_layer=None, **kw):
        _check_layer("Bidirectional", layer)
        super().__init__(**kw)
        if merge_mode not in _MERGE_MODES:
            raise ValueError(f"Bidirectional {self.name!r}: merge_mode must be one of "
                             f"{_MERGE_MODES}, got {merge_mode!r}")
        if weights is not None:
            raise NotImplementedError(f"Bidirectional {self.name!r}: weights= is not supported; "
                                      f"call set_weights after building")
        for l in (layer, backward_layer):
            if l is not None and not all(hasattr(l, a) for a in
                                         ("go_backwards", "return_sequences", "return_state")):
                raise ValueError(f"Bidirectional {self.name!r} wraps a recurrent layer "
                                 f"(SimpleRNN, LSTM, GRU), got {type(l).__name__}")
        # fresh copies from the config, as Keras 3 does: the wrapped layer's own state
        # (weights included) is not carried over
        self.forward_layer = _copy_layer(layer, "forward_", layer.go_backwards)
        if backward_layer is None:
            self.backward_layer = _copy_layer(layer, "backward_", True)
        else:
            if backward_layer.go_backwards == layer.go_backwards:
                raise ValueError(f"Bidirectional {self.name!r}: backward_layer.go_backwards "
                                 f"must be the opposite of layer.go_backwards")
            for a in ("return_sequences", "return_state"):
                if getattr(backward_layer, a) != getattr(layer, a):
                    raise ValueError(f"Bidirectional {self.name!r}: backward_layer.{a} must "
                                     f"equal layer.{a}")
            self.backward_layer = backward_layer
        self._custom_backward = backward_layer is not None
        if self._input_shape_arg is None and layer._input_shape_arg is not None:
            self._input_shape_arg = layer._input_shape_arg
        self.merge_mode = merge_mode
        self.return_sequences = bool(layer.return_sequences)
        self.return_state = bool(layer.return_state)
        self.stateful = bool(getattr(layer, "stateful", False))
        for l in (self.forward_layer, self.backward_layer):
            if hasattr(l, "zero_output_for_mask"):
                # masked steps output zeros when the merged sequence is returned (Keras)
                l.zero_output_for_mask = l.return_sequences

    def build(self, input_shape):
        for l in (self.forward_layer, self.backward_layer):
            if not l.built:
                l._build_from(input_shape, self.dtype)

    def _merge_shape(self, out):
        if self.merge_mode == "concat":
            return tuple(out[:-1]) + (None if out[-1] is None else 2 * out[-1],)
        if self.merge_mode is None:
            return [tuple(out), tuple(out)]
        return tuple(out)

    def compute_output_shape(self, s):
        f = self.forward_layer.compute_output_shape(s)
        if not self.return_state:
            return self._merge_shape(f)
        merged = self._merge_shape(f[0])
        merged = merged if isinstance(merged, list) else [merged]
        return merged + [tuple(t) for t in f[1:]] * 2

    def _merge(self, yf, yb):
        if self.return_sequences:
            yb = ops.flip(yb, axis=1)
        m = self.merge_mode
        if m == "concat":
            return ops.concatenate([yf, yb], axis=-1)
        if m == "sum":
            return yf + yb
        if m == "mul":
            return yf * yb
        if m == "ave":
            return (yf + yb) * 0.5
        return [yf, yb]

    def call(self, inputs, training=None, mask=None, initial_state=None):
        kw = {"training": bool(training)}
        if mask is not None:
            kw["mask"] = mask
        kf, kb = dict(kw), dict(kw)
        if initial_state is not None:
            st = list(initial_state)
            half = len(st) // 2
            if len(st) % 2 or half == 0:
                raise ValueError(f"Bidirectional {self.name!r}: initial_state must hold the "
                                 f"forward layer's states then the backward layer's, got "
                                 f"{len(st)} arrays")
            kf["initial_state"], kb["initial_state"] = st[:half], st[half:]
        yf = self.forward_layer(inputs, **kf)
        yb = self.backward_layer(inputs, **kb)
        if not self.return_state:
            return self._merge(yf, yb)
        merged = self._merge(yf[0], yb[0])
        merged = merged if isinstance(merged, list) else [merged]
        return merged + list(yf[1:]) + list(yb[1:])

    def compute_mask(self, inputs, mask=None):
        if isinstance(mask, (list, tuple)):
            mask = mask[0]
        out = mask if self.return_sequences else None
        out = [out, out] if self.merge_mode is None else out
        if self.return_state:
            n = getattr(self.forward_layer, "_n_states", 1)
            return (out if isinstance(out, list) else [out]) + [None] * (2 * n)
        return out

    def reset_states(self, states=None):
        if states is not None:
            raise NotImplementedError("Bidirectional.reset_states(states) is not supported; "
                                      "reset the forward_layer and backward_layer")
        self.forward_layer.reset_states()
        self.backward_layer.reset_states()

    reset_state = reset_states

    def get_config(self):
        from ..saving import serialize_object
        cfg = {**super().get_config(), "layer": serialize_object(self.forward_layer),
               "merge_mode": self.merge_mode}
        if self._custom_backward:
            cfg["backward_layer"] = serialize_object(self.backward_layer)
        return cfg

    @classmethod
    def from_config(cls, config, custom_objects=None):
        from ..saving import deserialize_object
        config = dict(config)
        for k in ("layer", "backward_layer"):
            if config.get(k) is not None and not isinstance(config[k], Layer):
                config[k] = deserialize_object(config[k], custom_objects, kind="layer")
        layer = config["layer"]
        if layer.name.startswith("forward_"):
            layer.name = layer.name[len("forward_"):]
        return cls(**config)


def _copy_layer(layer, prefix, go_backwards):
    cfg = layer.get_config()
    base = layer.name[len(prefix):] if layer.name.startswith(prefix) else layer.name
    cfg["name"] = prefix + base
    cfg["go_backwards"] = bool(go_backwards)
    cfg.pop("input_shape", None)
    return type(layer).from_config(cfg)
