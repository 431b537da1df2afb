"""One table of per-layer converters between fastdl, Keras 3 files and ONNX.

Each entry (``Converter``) says, for one Keras layer class:

- how its Keras 3 config maps to fastdl's constructor arguments and back
  (``from_keras`` / ``to_keras``; by default the same keys, with Keras' extra
  keys accepted only at their default values);
- where its weights live in a Keras ``.weights.h5`` file below the layer's
  group (``groups``: ``vars`` for most layers, ``cell/vars`` for recurrent
  layers) and how they map to fastdl's arrays (``weights_from_keras`` /
  ``weights_to_keras``; the identity where the layouts agree, as they do for
  every layer fastdl has: Keras' shapes and gate orders are fastdl's);
- how it is written as ONNX nodes (``onnx``; None: not exportable).

A new layer adds one ``register(Converter(...))`` line (and an ONNX emitter if it
exports). A fastdl layer class that is not present (it lands on another branch)
is looked up lazily, so an entry may name it before it exists.
"""
import re

import numpy as np

# Keras config keys that fastdl's constructors do not take, with the values at which
# they change nothing (Keras' defaults). Any other value is an error naming the key.
KERAS_DEFAULTS = {
    "kernel_constraint": None, "bias_constraint": None, "recurrent_constraint": None,
    "embeddings_constraint": None, "beta_constraint": None, "gamma_constraint": None,
    "activity_regularizer": None, "recurrent_regularizer": None, "kernel_regularizer": None,
    "bias_regularizer": None, "embeddings_regularizer": None, "beta_regularizer": None,
    "gamma_regularizer": None, "quantization_config": None, "lora_rank": None,
    "lora_alpha": None, "return_state": False, "go_backwards": False, "stateful": False,
    "unroll": False, "zero_output_for_mask": False, "dropout": 0.0, "recurrent_dropout": 0.0,
    "seed": None, "sparse": False, "ragged": False, "optional": False,
    "data_format": "channels_last", "groups": 1, "use_cudnn": "auto", "noise_shape": None,
    "synchronized": False, "renorm": False, "renorm_clipping": None, "renorm_momentum": 0.99,
    "mask_zero": False, "input_length": None, "output_padding": None, "rms_scaling": False,
    "depthwise_regularizer": None, "pointwise_regularizer": None, "depthwise_constraint": None,
    "pointwise_constraint": None,
}


def snake(name):
    """Keras' names for classes in files: 'SimpleRNN' -> 'simple_rnn', 'Conv2D' -> 'conv2d'."""
    name = re.sub(r"(.)([A-Z][a-z0-9]+)", r"\1_\2", name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()


def dtype_name(d):
    """A Keras dtype entry (a string or a DTypePolicy dict) as a dtype name."""
    if isinstance(d, dict):
        return (d.get("config") or {}).get("name")
    return d


def keras_object(module, class_name, config):
    return {"module": module, "class_name": class_name, "config": config, "registered_name": None}


def _init_to_keras(v):
    if isinstance(v, dict) and "class_name" in v:
        return keras_object("keras.initializers", v["class_name"], dict(v.get("config") or {}))
    return v


def _init_from_keras(v):
    if isinstance(v, dict) and "class_name" in v:
        cfg = {k: x for k, x in (v.get("config") or {}).items()
               if not (k in ("input_axes", "output_axes") and x is None)}
        return {"class_name": v["class_name"], "config": cfg}
    return v


class Converter:
    """One layer class's mapping (see the module docstring). ``fastdl_name`` is the
    class in fastdl.layers (default: the Keras name)."""

    def __init__(self, keras_name, fastdl_name=None, groups=("vars",), rename=None,
                 drop_to_keras=(), onnx=None, from_keras=None, to_keras=None,
                 weights_from_keras=None, weights_to_keras=None):
        self.keras_name = keras_name
        self.fastdl_name = fastdl_name or keras_name
        self.groups = groups
        self.rename = dict(rename or {})      # keras key -> fastdl key
        self.drop_to_keras = tuple(drop_to_keras)
        self.onnx = onnx
        self._from_keras = from_keras
        self._to_keras = to_keras
        self._w_from = weights_from_keras
        self._w_to = weights_to_keras

    @property
    def cls(self):
        from .. import layers
        return layers._CLASSES.get(self.fastdl_name) or getattr(layers, self.fastdl_name, None)

    # -------------------------------------------------------------- config
    def from_keras(self, cfg):
        """fastdl constructor arguments for a Keras config (errors name the class and key)."""
        import inspect
        cls = self.cls
        if cls is None:
            raise ValueError(f"the Keras layer class {self.keras_name!r} has no fastdl "
                             f"counterpart in this version of fastdl")
        cfg = dict(cfg)
        if self._from_keras is not None:
            cfg = self._from_keras(cfg)
        params = set()
        for c in cls.__mro__:          # a constructor's **kw reaches its bases' arguments
            if "__init__" in c.__dict__ and c is not object:
                ps = inspect.signature(c.__dict__["__init__"]).parameters
                params.update(k for k, p in ps.items() if p.kind not in (p.VAR_KEYWORD,
                                                                          p.VAR_POSITIONAL))
                if not any(p.kind == p.VAR_KEYWORD for p in ps.values()):
                    break
        out = {}
        for k, v in cfg.items():
            k = self.rename.get(k, k)
            if k == "dtype":
                v = dtype_name(v)
            elif k.endswith("_initializer"):
                v = _init_from_keras(v)
            if k in params:
                out[k] = v
            elif k in KERAS_DEFAULTS and _same(v, KERAS_DEFAULTS[k]):
                continue
            else:
                raise ValueError(f"Keras layer {self.keras_name} ({cfg.get('name')!r}): the "
                                 f"option {k}={v!r} is not supported by fastdl's "
                                 f"{self.fastdl_name}")
        return out

    def to_keras(self, layer):
        """The Keras 3 config of a fastdl layer."""
        cfg = dict(layer.get_config())
        cfg.pop("input_shape", None)
        for k in self.drop_to_keras:
            cfg.pop(k, None)
        back = {v: k for k, v in self.rename.items()}
        cfg = {back.get(k, k): v for k, v in cfg.items()}
        for k, v in list(cfg.items()):
            if k.endswith("_initializer"):
                cfg[k] = _init_to_keras(v)
        if "dtype" in cfg:
            cfg["dtype"] = keras_object("keras", "DTypePolicy",
                                        {"name": cfg["dtype"] or "float32"})
        if self._to_keras is not None:
            cfg = self._to_keras(layer, cfg)
        return cfg

    # -------------------------------------------------------------- weights
    def weight_groups(self, layer, n):
        """[(sub-path below the layer's group, number of arrays)] for a layer with n arrays."""
        if callable(self.groups):
            return self.groups(layer, n)
        if len(self.groups) == 1:
            return [(self.groups[0], n)]
        per = n // len(self.groups)
        return [(g, per) for g in self.groups]

    def weights_from_keras(self, layer, arrays):
        return list(self._w_from(layer, arrays)) if self._w_from else list(arrays)

    def weights_to_keras(self, layer, arrays):
        return list(self._w_to(layer, arrays)) if self._w_to else list(arrays)


def _same(a, b):
    try:
        return a == b or (a is None and b is None)
    except Exception:
        return False


TABLE = {}


def register(conv):
    TABLE[conv.keras_name] = conv
    return conv


def converter_for_layer(layer):
    """The entry for a fastdl layer instance, or None (a user's layer, Lambda, ...)."""
    conv = TABLE.get(type(layer).__name__)
    if conv is None or conv.cls is not type(layer):
        return None
    return conv


# ================================================================ ONNX emitters
# Each emitter is f(g, layer, xs) -> list of output names; g is an onnx_export.Graph
# (g.node(op, inputs, **attrs) -> name, g.const(array) -> name, g.shape_of(name)).

def _act(g, name, x, layer=None):
    """The activation function ``name`` applied to x."""
    if name in (None, "linear"):
        return x
    simple = {"relu": "Relu", "sigmoid": "Sigmoid", "tanh": "Tanh", "softplus": "Softplus",
              "softsign": "Softsign", "exponential": "Exp", "selu": "Selu", "elu": "Elu",
              "hard_sigmoid": None}
    if name == "softmax":
        return g.node("Softmax", [x], axis=-1)
    if name == "log_softmax":
        return g.node("LogSoftmax", [x], axis=-1)
    if name == "silu" or name == "swish":
        return g.node("Mul", [x, g.node("Sigmoid", [x])])
    if name == "gelu":
        # Keras' gelu default (approximate=False): x * 0.5 * (1 + erf(x / sqrt(2)))
        e = g.node("Erf", [g.node("Mul", [x, g.const(np.float32(1 / np.sqrt(2)), like=x)])])
        return g.node("Mul", [x, g.node("Mul", [g.const(np.float32(0.5), like=x),
                                                g.node("Add", [e, g.const(np.float32(1), like=x)])])])
    if simple.get(name):
        if name == "selu":
            return g.node("Selu", [x], alpha=1.6732632423543772, gamma=1.0507009873554805)
        return g.node(simple[name], [x])
    raise ValueError(f"ONNX export: the activation {name!r}"
                     f"{' of layer ' + repr(layer.name) if layer is not None else ''} has no "
                     f"ONNX form here")


def _w(layer, i):
    from .. import _device
    return np.asarray(_device.to_host(layer._weights[i]))


def _onnx_dense(g, layer, xs):
    y = g.node("MatMul", [xs[0], g.const(_w(layer, 0))])
    if layer.use_bias:
        y = g.node("Add", [y, g.const(_w(layer, 1))])
    return [_act(g, layer.activation.name, y, layer)]


def _to_nchw(g, x, rank):
    return g.node("Transpose", [x], perm=[0, rank - 1] + list(range(1, rank - 1)))


def _to_nhwc(g, x, rank):
    return g.node("Transpose", [x], perm=[0] + list(range(2, rank)) + [1])


def _pads(layer, in_spatial, kernel, strides, dilation):
    """ONNX pads (begins..., ends...) for the layer's padding over known spatial sizes
    (Keras 'same': the extra row/column goes at the end, as TensorFlow does)."""
    pads = getattr(layer, "_pads", None)
    n = len(kernel)
    if isinstance(pads, tuple) and pads and pads[0] == "same" or layer.padding == "same":
        begin, end = [], []
        for size, k, s, d in zip(in_spatial, kernel, strides, dilation):
            if size is None:
                raise ValueError(f"ONNX export: layer {layer.name!r} with padding='same' needs a "
                                 f"known input size")
            eff = d * (k - 1) + 1
            out = -(-size // s)
            total = max((out - 1) * s + eff - size, 0)
            begin.append(total // 2)
            end.append(total - total // 2)
        return begin + end
    if layer.padding == "valid":
        return [0] * (2 * n)
    if layer.padding == "causal":          # Conv1D: all of it before
        return [dilation[0] * (kernel[0] - 1), 0]
    lohi = pads if n > 1 else (pads,)
    return [p[0] for p in lohi] + [p[1] for p in lohi]


def _onnx_conv(g, layer, xs):
    rank = len(layer.input_shape)
    k = _w(layer, 0)              # (K..., C_in, C_out)
    nsp = rank - 2
    w = np.transpose(k, (nsp + 1, nsp) + tuple(range(nsp)))   # (C_out, C_in, K...)
    ks = tuple(int(v) for v in k.shape[:nsp])
    strides = list(_tup(layer.strides, nsp))
    dil = list(_tup(getattr(layer, "dilation_rate", 1), nsp))
    pads = _pads(layer, layer.input_shape[1:-1], ks, strides, dil)
    ins = [_to_nchw(g, xs[0], rank), g.const(w)]
    if layer.use_bias:
        ins.append(g.const(_w(layer, 1)))
    y = g.node("Conv", ins, kernel_shape=list(ks), strides=strides, dilations=dil, pads=pads)
    return [_act(g, layer.activation.name, _to_nhwc(g, y, rank), layer)]


def _onnx_depthwise(g, layer, xs):
    """DepthwiseConv2D: a grouped Conv (groups = C_in); kernel (KH, KW, C_in, M)."""
    k = _w(layer, 0)
    kh, kw, cin, mult = k.shape
    w = np.transpose(k, (2, 3, 0, 1)).reshape(cin * mult, 1, kh, kw)
    strides = list(_tup(layer.strides, 2))
    dil = list(_tup(getattr(layer, "dilation_rate", 1), 2))
    pads = _pads(layer, layer.input_shape[1:-1], (kh, kw), strides, dil)
    ins = [_to_nchw(g, xs[0], 4), g.const(w)]
    if layer.use_bias:
        ins.append(g.const(_w(layer, 1)))
    y = g.node("Conv", ins, kernel_shape=[kh, kw], strides=strides, dilations=dil, pads=pads,
               group=int(cin))
    return [_act(g, layer.activation.name, _to_nhwc(g, y, 4), layer)]


def _onnx_separable(g, layer, xs):
    """SeparableConv2D: the depthwise conv (no bias), then a 1x1 conv with the bias."""
    dk, pk = _w(layer, 0), _w(layer, 1)      # (KH, KW, C_in, M), (1, 1, C_in * M, filters)
    kh, kw, cin, mult = dk.shape
    strides = list(_tup(layer.strides, 2))
    dil = list(_tup(getattr(layer, "dilation_rate", 1), 2))
    pads = _pads(layer, layer.input_shape[1:-1], (kh, kw), strides, dil)
    y = g.node("Conv", [_to_nchw(g, xs[0], 4),
                        g.const(np.transpose(dk, (2, 3, 0, 1)).reshape(cin * mult, 1, kh, kw))],
               kernel_shape=[kh, kw], strides=strides, dilations=dil, pads=pads, group=int(cin))
    ins = [y, g.const(np.transpose(pk, (3, 2, 0, 1)))]
    if layer.use_bias:
        ins.append(g.const(_w(layer, 2)))
    y = g.node("Conv", ins, kernel_shape=[1, 1])
    return [_act(g, layer.activation.name, _to_nhwc(g, y, 4), layer)]


def _onnx_conv_transpose(g, layer, xs):
    """Conv2DTranspose: kernel (KH, KW, filters, C_in) -> ONNX's (C_in, filters, KH, KW);
    'same' gives in * stride, cropping as TensorFlow does (the extra at the end)."""
    k = _w(layer, 0)
    kh, kw = k.shape[:2]
    strides = list(_tup(layer.strides, 2))
    dil = list(_tup(getattr(layer, "dilation_rate", 1), 2))
    if getattr(layer, "output_padding", None) is not None:
        raise ValueError(f"ONNX export: Conv2DTranspose {layer.name!r} with output_padding is "
                         f"not supported")
    if layer.padding == "valid":
        pads, extra = [0, 0, 0, 0], [0, 0]
    elif layer.padding == "same":
        begin, end, extra = [], [], []
        for kk, ss, dd in zip((kh, kw), strides, dil):
            eff = dd * (kk - 1) + 1
            total = eff - ss
            if total >= 0:
                begin.append(total // 2)
                end.append(total - total // 2)
                extra.append(0)
            else:
                begin.append(0)
                end.append(0)
                extra.append(-total)
        pads = begin + end
    else:
        raise ValueError(f"ONNX export: Conv2DTranspose {layer.name!r} with padding "
                         f"{layer.padding!r} is not supported")
    ins = [_to_nchw(g, xs[0], 4), g.const(np.transpose(k, (3, 2, 0, 1)))]
    if layer.use_bias:
        ins.append(g.const(_w(layer, 1)))
    y = g.node("ConvTranspose", ins, kernel_shape=[int(kh), int(kw)], strides=strides,
               dilations=dil, pads=pads, output_padding=extra)
    return [_act(g, layer.activation.name, _to_nhwc(g, y, 4), layer)]


def _tup(v, n):
    return tuple(v) if isinstance(v, (list, tuple)) else (int(v),) * n


def _onnx_pool(op):
    def emit(g, layer, xs):
        rank = len(layer.input_shape)
        nsp = rank - 2
        ks = list(_tup(layer.pool_size, nsp))
        st = list(_tup(layer.strides, nsp))
        pads = _pads(layer, layer.input_shape[1:-1], ks, st, [1] * nsp)
        attrs = {"kernel_shape": ks, "strides": st, "pads": pads}
        if op == "AveragePool":
            attrs["count_include_pad"] = 0
        y = g.node(op, [_to_nchw(g, xs[0], rank)], **attrs)
        return [_to_nhwc(g, y, rank)]
    return emit


def _onnx_global(op, spatial_axes):
    def emit(g, layer, xs):
        keep = int(bool(getattr(layer, "keepdims", False)))
        return [g.node(op, [xs[0]], axes=list(spatial_axes), keepdims=keep)]
    return emit


def _onnx_identity(g, layer, xs):
    return [xs[0]]


def _onnx_flatten(g, layer, xs):
    return [g.node("Flatten", [xs[0]], axis=1)]


def _onnx_reshape(g, layer, xs):
    shape = np.array([0] + list(layer.target_shape), dtype=np.int64)
    return [g.node("Reshape", [xs[0], g.const(shape)])]


def _onnx_activation(g, layer, xs):
    return [_act(g, layer.activation.name, xs[0], layer)]


def _onnx_softmax(g, layer, xs):
    return [g.node("Softmax", [xs[0]], axis=int(layer.axis))]


def _onnx_leaky(g, layer, xs):
    return [g.node("LeakyRelu", [xs[0]], alpha=float(layer.negative_slope))]


def _onnx_elu(g, layer, xs):
    return [g.node("Elu", [xs[0]], alpha=float(layer.alpha))]


def _onnx_prelu(g, layer, xs):
    return [g.node("PRelu", [xs[0], g.const(_w(layer, 0))])]


def _onnx_variadic(op):
    def emit(g, layer, xs):
        return [g.node(op, xs)]
    return emit


def _onnx_concat(g, layer, xs):
    return [g.node("Concat", xs, axis=int(layer.axis))]


def _onnx_rnn_common(g, layer, xs, op, w, r, b, extra):
    """x (N, T, I) -> ONNX's time-major recurrent op -> Keras' output."""
    xt = g.node("Transpose", [xs[0]], perm=[1, 0, 2])
    y, yh = g.node(op, [xt, g.const(w[None]), g.const(r[None]), g.const(b[None])],
                   hidden_size=int(layer.units), n_out=2, **extra)
    if layer.return_sequences:
        ys = g.node("Squeeze", [y, g.const(np.array([1], np.int64))])       # (T, N, U)
        return [g.node("Transpose", [ys], perm=[1, 0, 2])]
    return [g.node("Squeeze", [yh, g.const(np.array([0], np.int64))])]


def _rnn_bias(layer, n):
    if layer.use_bias:
        return _w(layer, 2)
    return np.zeros(n, np.float32)


def _onnx_simple_rnn(g, layer, xs):
    u = layer.units
    act = {"tanh": "Tanh", "relu": "Relu", "sigmoid": "Sigmoid"}.get(layer.activation.name)
    if act is None:
        raise ValueError(f"ONNX export: SimpleRNN {layer.name!r} with activation "
                         f"{layer.activation.name!r} has no ONNX RNN form")
    b = np.concatenate([_rnn_bias(layer, u), np.zeros(u, np.float32)])
    return _onnx_rnn_common(g, layer, xs, "RNN", _w(layer, 0).T, _w(layer, 1).T, b,
                            {"activations": [act]})


def _lstm_to_onnx_order(a):
    """Keras' gate blocks i, f, c, o (last axis) -> ONNX's i, o, f, c."""
    i, f, c, o = np.split(a, 4, axis=-1)
    return np.concatenate([i, o, f, c], axis=-1)


def _onnx_lstm(g, layer, xs):
    u = layer.units
    w = _lstm_to_onnx_order(_w(layer, 0)).T
    r = _lstm_to_onnx_order(_w(layer, 1)).T
    b = np.concatenate([_lstm_to_onnx_order(_rnn_bias(layer, 4 * u)), np.zeros(4 * u, np.float32)])
    return _onnx_rnn_common(g, layer, xs, "LSTM", w, r, b, {})


def _onnx_gru(g, layer, xs):
    # Keras' gates z, r, h are ONNX's; reset_after=True is linear_before_reset=1; Keras'
    # bias rows are (input bias, recurrent bias), ONNX's B is [Wb, Rb].
    u = layer.units
    b = _w(layer, 2).reshape(-1) if layer.use_bias else np.zeros(6 * u, np.float32)
    return _onnx_rnn_common(g, layer, xs, "GRU", _w(layer, 0).T, _w(layer, 1).T, b,
                            {"linear_before_reset": 1})


def _onnx_embedding(g, layer, xs):
    idx = g.node("Cast", [xs[0]], to=7)        # TensorProto.INT64
    return [g.node("Gather", [g.const(_w(layer, 0)), idx], axis=0)]


def _onnx_batchnorm(g, layer, xs):
    # inference form: y = x * gamma / sqrt(var + eps) + (beta - mean * gamma / sqrt(var + eps))
    names = list(layer._weight_names)
    ws = {n: _w(layer, i) for i, n in enumerate(names)}
    var = ws["moving_variance"].astype(np.float64)
    mean = ws["moving_mean"].astype(np.float64)
    gamma = ws.get("gamma", np.ones_like(var)).astype(np.float64)
    beta = ws.get("beta", np.zeros_like(var)).astype(np.float64)
    scale = gamma / np.sqrt(var + float(layer.epsilon))
    shift = beta - mean * scale
    axis = int(getattr(layer, "axis", -1))
    rank = len(layer.input_shape)
    shape = [1] * rank
    shape[axis] = -1
    dt = _w(layer, 0).dtype
    y = g.node("Mul", [xs[0], g.const(scale.astype(dt).reshape(shape[1:] if axis != 0 else shape))])
    return [g.node("Add", [y, g.const(shift.astype(dt).reshape(shape[1:] if axis != 0 else shape))])]


def _onnx_layernorm(g, layer, xs):
    names = list(layer._weight_names)
    ws = {n: _w(layer, i) for i, n in enumerate(names)}
    axis = getattr(layer, "axis", -1)
    if isinstance(axis, (list, tuple)):
        if len(axis) != 1:
            raise ValueError(f"ONNX export: LayerNormalization {layer.name!r} over several axes "
                             f"is not supported")
        axis = axis[0]
    rank = len(layer.input_shape)
    if axis not in (-1, rank - 1):
        raise ValueError(f"ONNX export: LayerNormalization {layer.name!r} over axis {axis} "
                         f"(not the last) is not supported")
    n = layer.input_shape[-1]
    dt = np.dtype(layer.dtype or np.float32)
    gamma = ws.get("gamma", np.ones(n, dt))
    beta = ws.get("beta", np.zeros(n, dt))
    return [g.node("LayerNormalization", [xs[0], g.const(gamma), g.const(beta)], axis=-1,
                   epsilon=float(layer.epsilon))]


def _onnx_zero_padding2d(g, layer, xs):
    (t, b), (l, r) = layer.padding
    pads = np.array([0, t, l, 0, 0, b, r, 0], np.int64)
    return [g.node("Pad", [xs[0], g.const(pads)])]


def _onnx_permute(g, layer, xs):
    return [g.node("Transpose", [xs[0]], perm=[0] + [int(d) for d in layer.dims])]


# ================================================================ the table
def _input_from_keras(cfg):
    cfg = dict(cfg)
    if cfg.get("sparse") is False:
        cfg.pop("sparse")
    return cfg


def _input_to_keras(layer, cfg):
    return {"batch_shape": cfg["batch_shape"], "dtype": dtype_name(cfg.get("dtype")) or "float32",
            "sparse": False, "ragged": False, "name": layer.name, "optional": False}


_RNN_GROUPS = ("cell/vars",)

for _c in [
    Converter("InputLayer", from_keras=_input_from_keras, to_keras=_input_to_keras),
    Converter("Dense", onnx=_onnx_dense),
    Converter("Conv2D", onnx=_onnx_conv),
    Converter("Conv1D", onnx=_onnx_conv),
    Converter("MaxPooling2D", onnx=_onnx_pool("MaxPool")),
    Converter("AveragePooling2D", onnx=_onnx_pool("AveragePool")),
    Converter("MaxPooling1D", onnx=_onnx_pool("MaxPool")),
    Converter("AveragePooling1D", onnx=_onnx_pool("AveragePool")),
    Converter("GlobalAveragePooling2D", onnx=_onnx_global("ReduceMean", (1, 2))),
    Converter("GlobalMaxPooling2D", onnx=_onnx_global("ReduceMax", (1, 2))),
    Converter("GlobalAveragePooling1D", onnx=_onnx_global("ReduceMean", (1,))),
    Converter("GlobalMaxPooling1D", onnx=_onnx_global("ReduceMax", (1,))),
    Converter("Flatten", onnx=_onnx_flatten),
    Converter("Reshape", onnx=_onnx_reshape),
    Converter("Permute", onnx=_onnx_permute),
    Converter("ZeroPadding2D", onnx=_onnx_zero_padding2d),
    Converter("Cropping2D"), Converter("RepeatVector"), Converter("UpSampling1D"),
    Converter("UpSampling2D"),
    Converter("Dropout", onnx=_onnx_identity),
    # (Keras' spatial dropouts take no 'trainable' argument)
    Converter("SpatialDropout1D", onnx=_onnx_identity, drop_to_keras=("trainable",)),
    Converter("SpatialDropout2D", onnx=_onnx_identity, drop_to_keras=("trainable",)),
    Converter("GaussianNoise", onnx=_onnx_identity),
    Converter("GaussianDropout", onnx=_onnx_identity),
    Converter("ActivityRegularization", onnx=_onnx_identity),
    Converter("Activation", onnx=_onnx_activation),
    Converter("ReLU", onnx=_onnx_activation),
    Converter("Softmax", onnx=_onnx_softmax),
    Converter("LeakyReLU", onnx=_onnx_leaky),
    Converter("ELU", onnx=_onnx_elu),
    Converter("PReLU", onnx=_onnx_prelu),
    Converter("Add", onnx=_onnx_variadic("Sum")),
    Converter("Subtract", onnx=_onnx_variadic("Sub")),
    Converter("Multiply", onnx=lambda g, l, xs: [_chain(g, "Mul", xs)]),
    Converter("Average", onnx=_onnx_variadic("Mean")),
    Converter("Maximum", onnx=_onnx_variadic("Max")),
    Converter("Minimum", onnx=_onnx_variadic("Min")),
    Converter("Concatenate", onnx=_onnx_concat),
    Converter("SimpleRNN", groups=_RNN_GROUPS, onnx=_onnx_simple_rnn),
    Converter("LSTM", groups=_RNN_GROUPS, onnx=_onnx_lstm),
    Converter("GRU", groups=_RNN_GROUPS, onnx=_onnx_gru),
    # layers landing on other branches (looked up when they exist)
    Converter("Conv2DTranspose", onnx=_onnx_conv_transpose),
    Converter("DepthwiseConv2D", onnx=_onnx_depthwise),
    Converter("SeparableConv2D", onnx=_onnx_separable),
    Converter("BatchNormalization", onnx=_onnx_batchnorm),
    Converter("LayerNormalization", onnx=_onnx_layernorm),
    Converter("Embedding", onnx=_onnx_embedding),
    Converter("Masking"),
    Converter("Bidirectional", groups=lambda l, n: [("forward_layer/cell/vars", n // 2),
                                                    ("backward_layer/cell/vars", n // 2)],
              from_keras=lambda cfg: _nested_from_keras(cfg, ("layer", "backward_layer")),
              to_keras=lambda l, cfg: _nested_to_keras(l, cfg, ("layer", "backward_layer"))),
    Converter("TimeDistributed", groups=lambda l, n: [("layer/" + _inner_group(l), n)],
              from_keras=lambda cfg: _nested_from_keras(cfg, ("layer",)),
              to_keras=lambda l, cfg: _nested_to_keras(l, cfg, ("layer",))),
]:
    register(_c)


def _chain(g, op, xs):
    y = xs[0]
    for x in xs[1:]:
        y = g.node(op, [y, x])
    return y


# ---------------------------------------------------------------- wrappers (a layer inside)
def _nested_from_keras(cfg, keys):
    """The wrapped layers' Keras entries -> fastdl layer objects."""
    from . import deserialize_object
    cfg = dict(cfg)
    for k in keys:
        e = cfg.get(k)
        if isinstance(e, dict) and "class_name" in e:
            conv = TABLE.get(e["class_name"])
            if conv is None or conv.cls is None:
                raise ValueError(f"the Keras file wraps the layer class {e['class_name']!r}, "
                                 f"which fastdl does not have")
            cfg[k] = deserialize_object({"class_name": conv.fastdl_name,
                                         "config": conv.from_keras(e.get("config") or {})},
                                        kind="layer")
    return cfg


def _nested_to_keras(layer, cfg, keys):
    for k in keys:
        inner = getattr(layer, {"layer": "forward_layer"}.get(k, k), None) if k != "layer" or \
            not hasattr(layer, "layer") else layer.layer
        if inner is None:
            cfg.pop(k, None)
            continue
        conv = converter_for_layer(inner)
        if conv is None:
            raise ValueError(f"saving in Keras' format: {type(layer).__name__} {layer.name!r} "
                             f"wraps {type(inner).__name__}, which has no Keras form here")
        cfg[k] = keras_object("keras.layers", conv.keras_name, conv.to_keras(inner))
    return cfg


def _inner_group(layer):
    inner = getattr(layer, "layer", None)
    conv = converter_for_layer(inner) if inner is not None else None
    if conv is None or callable(conv.groups):
        return "vars"
    return conv.groups[0]
