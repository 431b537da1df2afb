"""Model: a Layer that trains (Keras 3's ``keras.Model``).

``Model(inputs, outputs)`` makes a functional model (``Functional``);
``class M(Model)`` with layers as attributes and a ``call`` makes a subclassed
one; ``Sequential`` is a stack. All three share this class: structure
(layers, weights), the trainer (compile/fit/...), device moves, summary and saving.
"""
import numpy as np

from .. import _device
from ..layers.layer import Layer, shape_str
from ..trainers.trainer import Trainer


class Model(Trainer, Layer):
    def __new__(cls, *args, **kwargs):
        if cls is Model and (args or "inputs" in kwargs or "outputs" in kwargs):
            from .functional import Functional
            return Layer.__new__(Functional)
        return Layer.__new__(cls, *args, **kwargs)

    def __init__(self, *args, name=None, trainable=True, dtype=None, **kwargs):
        if (args or "inputs" in kwargs or "outputs" in kwargs) and type(self).__name__ != "Functional":
            # a Model subclass built the functional way, CustomModel(inputs, outputs), as the
            # Keras guides do to override train_step: it becomes a functional model too
            from .functional import Functional
            self.__class__ = _functional_subclass(type(self))
            Functional.__init__(self, *args, name=name, trainable=trainable, **kwargs)
            return
        if args or kwargs:
            raise TypeError(f"{type(self).__name__}: unexpected argument(s) "
                            f"{', '.join([repr(a) for a in args] + sorted(kwargs))}; a functional "
                            f"model is Model(inputs, outputs)")
        Layer.__init__(self, name=name, trainable=trainable, dtype=dtype)
        self._init_model_state()

    def _init_model_state(self):
        self.optimizer = None
        self.loss = None
        self.compiled = False
        self.stop_training = False
        self.history = None
        self.device = "cpu"
        self._dev = _identity     # moves a batch to the model's device (identity on the CPU)
        self._last_record = None

    # ------------------------------------------------------------ structure
    def _has_backward(self):
        return False

    @property
    def layers(self):
        return list(self._sublayers())

    def get_layer(self, name=None, index=None):
        if index is not None:
            return self.layers[index]
        for l in self.layers:
            if l.name == name:
                return l
        raise ValueError(f"no layer named {name!r}; layers: {[l.name for l in self.layers]}")

    def _not_built_message(self, what):
        return (f"{what}: the model {self.name!r} has not been built yet, so its shapes are "
                f"unknown. Give the first layer an input_shape (e.g. layers.Flatten("
                f"input_shape=(28, 28))), add layers.Input(shape=...) first, or call "
                f"model.build((None, ...)) or fit/predict on data")

    def build(self, input_shape):
        """Create the weights by running the model once on zeros of input_shape."""
        input_shape = _norm_shape(input_shape)
        self._build_from(input_shape)
        if type(self).call is not Layer.call:
            from ..layers.layer import _infer_shape, _shape_tuple
            self.output_shape = _shape_tuple(_infer_shape(self, input_shape))

    def _build_from(self, input_shape, dtype=None, infer=False):
        # A subclassed model builds its layers by calling them: its first real call does
        # (model.build(shape) runs one call on zeros).
        if self.built:
            return self.output_shape
        if self.dtype is None:
            self.dtype = np.dtype(dtype) if dtype is not None and np.dtype(dtype).kind == "f" \
                else np.dtype(np.float32)
        if type(self).build is not Model.build:
            self.build(input_shape)       # a subclass's own build
        self.built = True
        self.input_shape = input_shape
        self._build_input_shape = input_shape
        return self.output_shape

    @property
    def output_names(self):
        return ["output"]

    # ------------------------------------------------------------ low-level loop
    def backward(self, dy):
        """dL/dx for dL/dy of the last training call; fills model.gradients."""
        rec = self._last_record
        if rec is None:
            raise RuntimeError(f"model {self.name!r}: backward needs a call "
                               f"model(x, training=True) first")
        return _backward_of(self, rec, dy)

    # ------------------------------------------------------------ devices
    def to(self, device):
        """Move the weights to 'cuda' or 'cpu' (fit/predict then move each batch)."""
        d = _device.parse(device)
        if d == "cuda":
            from .. import cuda, ops
            if not cuda.is_available():
                raise RuntimeError(f"model.to({device!r}): CUDA is not available here "
                                   f"({ops._cuda_reason()}); keep the model on the CPU "
                                   f"(model.to('cpu')) or install CuPy with a CUDA build of fastdl")
        move = _device.mover(d)
        for l in self._flatten_layers():
            l._move(move)
        self.device = d
        self._dev = move if d == "cuda" else _identity
        if self.optimizer is not None:
            self.optimizer._move(None)
        return self

    # ------------------------------------------------------------ summary
    def summary(self, line_length=None, positions=None, print_fn=None, expand_nested=False,
                show_trainable=False, layer_range=None):
        """Keras' table: layer (type), output shape, params (and what each layer is
        connected to, for functional models); then the totals."""
        if not self.built:
            raise ValueError(self._not_built_message("summary"))
        if expand_nested or show_trainable or layer_range is not None:
            raise NotImplementedError("summary: expand_nested, show_trainable and layer_range "
                                      "are not supported")
        print_fn = print_fn or print
        rows = self._summary_rows()
        connected = any(len(r) == 4 for r in rows)
        width = line_length or (98 if connected else 65)
        pos = positions or ([0.33, 0.55, 0.67, 1.0] if connected else [0.45, 0.85, 1.0])
        cols = [int(width * p) for p in pos]
        header = ["Layer (type)", "Output Shape", "Param #"] + (["Connected to"] if connected else [])

        def row(fields):
            line = ""
            for f, end in zip(fields, cols):
                line += " " + str(f)
                line = line[:end - 1].ljust(end)
            return line.rstrip()
        print_fn(f'Model: "{self.name}"')
        print_fn("_" * width)
        print_fn(row(header))
        print_fn("=" * width)
        for i, r in enumerate(rows):
            extra = r[3] if len(r) == 4 else []
            print_fn(row([r[0], r[1], r[2]] + ([extra[0] if extra else "-"] if connected else [])))
            for more in extra[1:]:
                print_fn(row(["", "", "", more]))
            if i < len(rows) - 1:
                print_fn("")
        print_fn("=" * width)
        trainable = sum(w.size for w in self.trainable_weights)
        non = sum(w.size for w in self.non_trainable_weights)
        item = (self.dtype or np.dtype(np.float32)).itemsize
        print_fn(f"Total params: {trainable + non:,} ({_bytes(item * (trainable + non))})")
        print_fn(f"Trainable params: {trainable:,} ({_bytes(item * trainable)})")
        print_fn(f"Non-trainable params: {non:,} ({_bytes(item * non)})")
        print_fn("_" * width)

    def _summary_rows(self):
        rows = []
        for l in self.layers:
            shape = l.output_shape
            s = "?" if shape is None else (", ".join(shape_str(t) for t in shape)
                                           if isinstance(shape, list) else shape_str(shape))
            rows.append((f"{l.name} ({type(l).__name__})", s, f"{l.count_params():,}"))
        return rows

    # ------------------------------------------------------------ config and saving
    def get_config(self):
        return Layer.get_config(self)

    @classmethod
    def from_config(cls, config, custom_objects=None):
        if cls is Model and "nodes" in config:   # a functional model's config
            from .functional import Functional
            return Functional.from_config(config, custom_objects=custom_objects)
        return cls(**config)

    def save(self, filepath, overwrite=True, include_optimizer=True, **kwargs):
        from .. import saving
        saving.save_model(self, filepath, overwrite=overwrite, include_optimizer=include_optimizer,
                          **kwargs)

    def export(self, filepath, format=None, verbose=None, input_signature=None, **kwargs):
        """Write the model for serving; format='onnx' (ONNX Runtime and friends; the onnx
        package, ``pip install 'fastdl[onnx]'``). A '.onnx' name implies it."""
        import os
        if format is None and os.fspath(filepath).endswith(".onnx"):
            format = "onnx"
        if format != "onnx":
            raise ValueError(f"export: format={format!r} is not supported; fastdl exports "
                             f"format='onnx'")
        if input_signature is not None or kwargs:
            raise TypeError(f"export: unsupported argument(s) "
                            f"{', '.join((['input_signature'] if input_signature is not None else []) + sorted(kwargs))}")
        from ..saving import onnx_export
        onnx_export.export(self, filepath)
        if verbose:
            print(f"Saved the model as ONNX to {os.fspath(filepath)!r}")

    def save_weights(self, filepath, overwrite=True):
        from .. import saving
        saving.save_weights(self, filepath, overwrite=overwrite)

    def load_weights(self, filepath, skip_mismatch=False):
        from .. import saving
        if skip_mismatch:
            raise NotImplementedError("load_weights: skip_mismatch=True is not supported")
        saving.load_weights(self, filepath)


_FUNCTIONAL_SUBCLASSES = {}


def _functional_subclass(cls):
    """cls with Functional's graph behind it (cls's own methods, e.g. train_step, win)."""
    from .functional import Functional
    if issubclass(cls, Functional):
        return cls
    sub = _FUNCTIONAL_SUBCLASSES.get(cls)
    if sub is None:
        sub = type(cls.__name__, (cls, Functional), {"__module__": cls.__module__,
                                                      "__qualname__": cls.__qualname__})
        _FUNCTIONAL_SUBCLASSES[cls] = sub
    return sub


def _identity(a):
    return a


def _norm_shape(s):
    if isinstance(s, dict):
        return {k: _norm_shape(v) for k, v in s.items()}
    if isinstance(s, list) and s and isinstance(s[0], (list, tuple)):
        return [_norm_shape(t) for t in s]
    return tuple(None if d is None else int(d) for d in s)


def _backward_of(model, rec, dy):
    from ..layers.layer import _backward_recorded
    return _backward_recorded(model, rec, dy)


def _bytes(n):
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.2f} {unit}"
        n /= 1024.0


class FreshPairs:
    """A model's (gradient, trainable weight) pairs, read when iterated: the current arrays
    of the gradient lists (a step plan's layers written with ops hand over new gradient
    arrays at each backward). Built as ``model.gradients`` is."""
    __slots__ = ("_slots",)

    def __init__(self, model):
        ws = iter(model.trainable_weights)
        self._slots = [(l._grads, i, next(ws)) for l in model._flatten_layers()
                       for i, t in enumerate(l._weight_trainable) if t and l._trainable]

    def __iter__(self):
        return iter([(g[i], w) for g, i, w in self._slots])
