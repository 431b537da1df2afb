"""Dense."""
from .. import _device, activations, initializers, ops
from .layer import Layer, shape_str


class Dense(Layer):
    """y = activation(x @ kernel + bias); bias and relu fused into the GEMM."""
    supports_masking = True
    _rows_independent = True

    def __init__(self, units, activation=None, use_bias=True, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", kernel_regularizer=None, bias_regularizer=None,
                 kernel_constraint=None, bias_constraint=None, **kw):
        super().__init__(**kw)
        from .. import constraints, regularizers
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.kernel_constraint = constraints.get(kernel_constraint)
        self.bias_constraint = constraints.get(bias_constraint)
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
                             f"{shape_str(input_shape)}")
        self.add_weight((input_shape[-1], self.units), self.kernel_initializer, name="kernel",
                        regularizer=self.kernel_regularizer, constraint=self.kernel_constraint)
        if self.use_bias:
            self.add_weight((self.units,), self.bias_initializer, name="bias",
                            regularizer=self.bias_regularizer, constraint=self.bias_constraint)

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

    def _inference_fn(self, rows, in_shape, batch):
        # call's kernels on 2-D host inputs, into outputs made once for this many rows;
        # each batch of rows its own product
        w = self._weights
        if len(in_shape) != 1 or _device.is_device(w[0]):
            return None
        kernel, bias = w[0], (w[1] if self.use_bias else None)
        act = self.activation
        group = batch if batch < rows else 0
        y = self._empty((rows, self.units), self.dtype)
        if self._fused:
            return ops.linear_fn(kernel, bias, act.name, y, group)
        z = self._empty((rows, self.units), self.dtype)
        forward = ops.softmax_fn(y) if act.name == "softmax" else (lambda h: act.forward(h, y))
        return (ops.linear_fn(kernel, bias, "linear", z, group), forward)

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
        if x.ndim != 2:   # N-D input: one GEMM over all rows of the last axis
            x = x.reshape(-1, x.shape[-1])
        self._x = x
        z = self._linear(x, "z", "linear")
        return z if len(self._xshape) == 2 else z.reshape(self._xshape[:-1] + (self.units,))

    def _backward_logits(self, dz, need_dx=True):
        if dz.ndim != 2:
            dz = dz.reshape(-1, self.units)
        g = self._grads
        x = self._x
        ops.gemm(x, dz, trans_a=True, out=g[0])
        if self.use_bias:
            dz.sum(axis=0, out=g[1])
        if not need_dx:
            return None
        dx = ops.gemm(dz, self._weights[0], trans_b=True, out=self._buf("dx", x.shape))
        return dx if len(self._xshape) == 2 else dx.reshape(self._xshape)

    def get_config(self):
        return {**super().get_config(), "units": self.units, "activation": self.activation.name,
                "use_bias": self.use_bias,
                "kernel_initializer": initializers.serialize(self.kernel_initializer),
                "bias_initializer": initializers.serialize(self.bias_initializer),
                **_regularizer_config(self), **_constraint_config(self)}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for k in ("kernel_initializer", "bias_initializer"):
            if k in config:
                config[k] = initializers.get(config[k])
        return cls(**config)


def _constraint_config(layer):
    """kernel_constraint / bias_constraint in a layer's config, when set."""
    from .. import constraints
    return {k: constraints.serialize(getattr(layer, k))
            for k in ("kernel_constraint", "bias_constraint") if getattr(layer, k, None) is not None}


def _regularizer_config(layer):
    from .. import regularizers
    return {k: regularizers.serialize(getattr(layer, k))
            for k in ("kernel_regularizer", "bias_regularizer") if getattr(layer, k) is not None}


class Lambda(Layer):
    """A layer from a function of its inputs (written with fastdl.ops: it is traced, so
    it trains like any layer)."""

    def __init__(self, function, output_shape=None, mask=None, arguments=None, **kw):
        super().__init__(**kw)
        if mask is not None:
            raise NotImplementedError("Lambda(mask=...) is not supported")
        if not callable(function):
            raise TypeError(f"Lambda needs a function, got {type(function).__name__}")
        self.function = function
        self._output_shape_arg = output_shape
        self.arguments = dict(arguments or {})

    def call(self, inputs, training=None):
        return self.function(inputs, **self.arguments)

    def compute_output_shape(self, input_shape):
        s = self._output_shape_arg
        if s is None:
            return super().compute_output_shape(input_shape)
        if callable(s):
            return s(input_shape)
        return (input_shape[0],) + tuple(s)

    def get_config(self):
        fn = self.function
        name = getattr(fn, "__qualname__", "")
        if "<lambda>" in name or "<locals>" in name:
            raise NotImplementedError(
                f"Lambda layer {self.name!r} wraps an anonymous or local function, which cannot be "
                f"saved; use a module-level function (loaded through custom_objects) or write a "
                f"Layer subclass")
        return {**super().get_config(), "function": name,
                "output_shape": self._output_shape_arg, "arguments": self.arguments}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        from ..saving import _lookup
        config = dict(config)
        name = config["function"]
        fn = _lookup(name, custom_objects)
        if fn is None:
            raise ValueError(f"Lambda: the function {name!r} is unknown here; pass "
                             f"custom_objects={{'{name}': {name}}}")
        config["function"] = fn
        return cls(**config)


class OpLambda(Layer):
    """One ``fastdl.ops`` call made on symbolic tensors while building a functional model
    (``x = ops.relu(h) * 2``): the op with its constant arguments; the symbolic ones are
    the layer's inputs."""

    def __init__(self, op, args=(), kwargs=None, **kw):
        kw.setdefault("name", None)
        if kw["name"] is None:
            from .layer import unique_name
            kw["name"] = unique_name(op)
        super().__init__(**kw)
        self.op = op
        self.template = (list(args), dict(kwargs or {}))

    def call(self, inputs, training=None):
        from .. import ops
        vals = list(inputs)
        args, kwargs = _fill(self.template, vals)
        return getattr(ops, self.op)(*args, **kwargs)

    def get_config(self):
        return {**super().get_config(), "op": self.op,
                "args": _jsonable_template(self.template[0]),
                "kwargs": _jsonable_template(self.template[1])}


class _Slot:
    """Where the i-th symbolic input goes in an OpLambda's arguments."""

    def __init__(self, i):
        self.i = i


def _fill(s, vals):
    if isinstance(s, _Slot):
        return vals[s.i]
    if isinstance(s, dict):
        if set(s) == {"__slot__"}:
            return vals[s["__slot__"]]
        return {k: _fill(v, vals) for k, v in s.items()}
    if isinstance(s, (list, tuple)):
        return type(s)(_fill(v, vals) for v in s)
    return s


def _jsonable_template(s):
    import numpy as np
    if isinstance(s, _Slot):
        return {"__slot__": s.i}
    if isinstance(s, dict):
        return {k: _jsonable_template(v) for k, v in s.items()}
    if isinstance(s, (list, tuple)):
        return [_jsonable_template(v) for v in s]
    if isinstance(s, np.ndarray):
        return s.tolist()
    if isinstance(s, np.generic):
        return s.item()
    if isinstance(s, np.dtype):
        return s.name
    return s


def op_on_symbolic(name, args, kwargs):
    """The symbolic result of ``fastdl.ops.<name>(*args, **kwargs)`` when some argument is
    symbolic: a graph node of an OpLambda layer."""
    from .._symbolic import KerasTensor
    inputs = []

    def cut(s):
        if isinstance(s, KerasTensor):
            inputs.append(s)
            return _Slot(len(inputs) - 1)
        if isinstance(s, dict):
            return {k: cut(v) for k, v in s.items()}
        if isinstance(s, (list, tuple)):
            return type(s)(cut(v) for v in s)
        return s
    targs, tkwargs = cut(list(args)), cut(dict(kwargs))
    layer = OpLambda(name, targs, tkwargs, dtype=inputs[0].dtype if inputs[0].dtype.kind == "f" else None)
    return layer(inputs)
