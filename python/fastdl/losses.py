"""Keras losses: mean over the batch, forward and gradient in one C++ pass.

Loss objects are callables ``loss(y_true, y_pred) -> float``. Models also use
``loss._value_and_grad(y_true, y_pred, out)`` and, when the last layer ends in
the matching activation, ``loss._fused(...)`` on its logits: softmax +
(sparse) categorical cross-entropy and sigmoid + binary cross-entropy train
from logits, the numerically stable way (as Keras does).
"""
import numpy as np

from . import _device, _tape, ops

__all__ = ["Loss", "LossFunctionWrapper", "SparseCategoricalCrossentropy", "CategoricalCrossentropy",
           "BinaryCrossentropy", "MeanSquaredError", "MeanAbsoluteError", "get", "KNOWN",
           "sparse_categorical_crossentropy", "categorical_crossentropy", "binary_crossentropy",
           "mean_squared_error", "mean_absolute_error", "mse", "mae"]


def _float_array(y):
    """y as an array of float32 or float64 (other dtypes become float32)."""
    y = np.asarray(y)
    return y if y.dtype in (np.float32, np.float64) else y.astype(np.float32)


class Loss:
    name = "loss"
    sparse = False         # targets are integer class indices
    fuses_with = None      # 'softmax' or 'sigmoid': activation whose logits the fused path takes

    def __init__(self, from_logits=False, name=None):
        self.from_logits = bool(from_logits)
        if name:
            self.name = name

    def __call__(self, y_true, y_pred, sample_weight=None):
        """The mean loss over the batch: a float, or a traced scalar under a GradientTape
        (differentiable in y_pred, through the same fused kernel)."""
        if sample_weight is not None:
            raise NotImplementedError(f"{type(self).__name__}: sample_weight is not supported")
        if _tape.needs_grad(y_true):
            raise NotImplementedError(f"{type(self).__name__}: gradients with respect to y_true "
                                      f"are not supported; pass it through ops.stop_gradient")
        raw = _tape.value(y_pred)
        if not _device.is_device(raw):
            raw = _float_array(raw)
        targets = self._prepare_targets(_device.to_host(_tape.value(y_true)), raw.dtype)
        if not self.sparse and targets.ndim == raw.ndim - 1 and raw.shape[-1] == 1:
            targets = targets.reshape(targets.shape + (1,))   # (N,) targets of an (N, 1) output
        elif not self.sparse and targets.ndim == raw.ndim + 1 and targets.shape[-1] == 1:
            targets = targets.reshape(targets.shape[:-1])
        if _device.is_device(raw):
            targets = _device.mover("cuda")(targets)
        if not _tape.needs_grad(y_pred):
            return float(self._value_and_grad(targets, raw, None, want_grad=False)[0])
        fused = getattr(y_pred.node, "logits", None)
        if fused is not None and fused[0] == self.fuses_with and not self.from_logits:
            # y_pred is a layer's softmax/sigmoid output: the fused kernel on its logits
            z = fused[1]
            value, grad = self._fused(z.value, targets, None, True)[:2]
            out = _device.xp(raw).asarray(value, dtype=raw.dtype)
            return _tape.record(self.name, out, (z,), lambda g: (grad * g,))
        value, grad = self._value_and_grad(targets, raw, None, want_grad=True)[:2]
        out = _device.xp(raw).asarray(value, dtype=raw.dtype)
        return _tape.record(self.name, out, (y_pred,), lambda g: (grad * g,))

    def _prepare_targets(self, y_true, dtype):
        return np.ascontiguousarray(y_true, dtype=dtype)

    def _value_and_grad(self, y_true, y_pred, out, want_grad=True):
        raise NotImplementedError

    def get_config(self):
        return {"name": self.name, "from_logits": self.from_logits}


class SparseCategoricalCrossentropy(Loss):
    name = "sparse_categorical_crossentropy"
    sparse = True
    fuses_with = "softmax"

    def _prepare_targets(self, y_true, dtype):
        y = np.asarray(y_true)
        if y.ndim == 2 and y.shape[1] == 1:
            y = y[:, 0]
        if y.dtype.kind == "f":
            if not np.all(np.floor(y) == y):
                raise ValueError("sparse_categorical_crossentropy needs integer class labels; "
                                 "for one-hot or probability targets use categorical_crossentropy")
        return np.ascontiguousarray(y, dtype=np.int64)

    def _fused(self, logits, y_true, out, want_grad=True):
        return ops._sparse_xent(logits, y_true, out, want_grad)

    def _value_and_grad(self, y_true, y_pred, out, want_grad=True):
        if self.from_logits:
            loss, d, _ = ops._sparse_xent(y_pred, y_true, out, want_grad)
            return loss, d
        # probabilities: Keras clips and takes -log p[label]
        onehot = np.zeros_like(y_pred)
        onehot[np.arange(len(y_true)), y_true] = 1
        return ops._loss_kernel("categorical_xent", y_pred, onehot, out, want_grad)


class _KernelLoss(Loss):
    """A cross-entropy computed by one C++ loss kernel: _kernel on probabilities,
    _logits_kernel when from_logits; _logits_kernel also serves the fused path."""
    _kernel = None
    _logits_kernel = None

    def _fused(self, logits, y_true, out, want_grad=True):
        loss, d = ops._loss_kernel(self._logits_kernel, logits, y_true, out, want_grad)
        return loss, d, None

    def _value_and_grad(self, y_true, y_pred, out, want_grad=True):
        kind = self._logits_kernel if self.from_logits else self._kernel
        return ops._loss_kernel(kind, y_pred, y_true, out, want_grad)


class CategoricalCrossentropy(_KernelLoss):
    name = "categorical_crossentropy"
    fuses_with = "softmax"
    _kernel, _logits_kernel = "categorical_xent", "softmax_xent"


class BinaryCrossentropy(_KernelLoss):
    name = "binary_crossentropy"
    fuses_with = "sigmoid"
    _kernel, _logits_kernel = "binary_xent", "sigmoid_xent"


class _RegressionLoss(Loss):
    """A regression loss of one C++ kernel; from_logits is ignored and not in the config."""
    _kernel = None

    def _value_and_grad(self, y_true, y_pred, out, want_grad=True):
        return ops._loss_kernel(self._kernel, y_pred, y_true, out, want_grad)

    def get_config(self):
        return {"name": self.name}


class MeanSquaredError(_RegressionLoss):
    name = "mean_squared_error"
    _kernel = "mse"


class MeanAbsoluteError(_RegressionLoss):
    name = "mean_absolute_error"
    _kernel = "mae"


class LossFunctionWrapper(Loss):
    """A loss from a function fn(y_true, y_pred) -> per-sample losses, averaged over the
    batch (Keras' 'sum_over_batch_size'); written with fastdl.ops it is differentiable."""

    def __init__(self, fn, name=None, **kwargs):
        self.fn = fn
        self.kwargs = kwargs
        self.name = name or getattr(fn, "__name__", "loss")
        self.from_logits = False

    def __call__(self, y_true, y_pred, sample_weight=None):
        if sample_weight is not None:
            raise NotImplementedError(f"{self.name}: sample_weight is not supported")
        v = self.fn(y_true, y_pred, **self.kwargs)
        return ops.mean(v) if getattr(_tape.value(v), "ndim", 0) else v

    def get_config(self):
        return {"name": self.name, **self.kwargs}


# Keras' functional forms: the loss of each sample, reduced over the last axis only (as
# Keras' keras.losses.mean_squared_error & co.), written with the differentiable ops.
def sparse_categorical_crossentropy(y_true, y_pred, from_logits=False, ignore_class=None, axis=-1):
    if ignore_class is not None:
        raise NotImplementedError("sparse_categorical_crossentropy: ignore_class is not supported")
    return ops.sparse_categorical_crossentropy(y_true, y_pred, from_logits=from_logits, axis=axis)


def categorical_crossentropy(y_true, y_pred, from_logits=False, label_smoothing=0.0, axis=-1):
    if label_smoothing:
        raise NotImplementedError("categorical_crossentropy: label_smoothing is not supported")
    return ops.categorical_crossentropy(y_true, y_pred, from_logits=from_logits, axis=axis)


def binary_crossentropy(y_true, y_pred, from_logits=False, label_smoothing=0.0, axis=-1):
    if label_smoothing:
        raise NotImplementedError("binary_crossentropy: label_smoothing is not supported")
    return ops.mean(ops.binary_crossentropy(y_true, y_pred, from_logits=from_logits), axis=axis)


def mean_squared_error(y_true, y_pred):
    return ops.mean(ops.square(ops.subtract(y_pred, y_true)), axis=-1)


def mean_absolute_error(y_true, y_pred):
    return ops.mean(ops.abs(ops.subtract(y_pred, y_true)), axis=-1)


mse = mean_squared_error
mae = mean_absolute_error

_REGISTRY = {
    "sparse_categorical_crossentropy": SparseCategoricalCrossentropy,
    "categorical_crossentropy": CategoricalCrossentropy,
    "binary_crossentropy": BinaryCrossentropy,
    "mean_squared_error": MeanSquaredError, "mse": MeanSquaredError,
    "mean_absolute_error": MeanAbsoluteError, "mae": MeanAbsoluteError,
}
_FUNCS = {sparse_categorical_crossentropy: "sparse_categorical_crossentropy",
          categorical_crossentropy: "categorical_crossentropy",
          binary_crossentropy: "binary_crossentropy",
          mean_squared_error: "mean_squared_error", mean_absolute_error: "mean_absolute_error"}
KNOWN = tuple(_REGISTRY)


def get(identifier):
    if isinstance(identifier, Loss):
        return identifier
    if isinstance(identifier, type) and issubclass(identifier, Loss):
        return identifier()
    if callable(identifier) and identifier in _FUNCS:
        return _REGISTRY[_FUNCS[identifier]]()
    if isinstance(identifier, str):
        key = identifier.lower()
        for cls in set(_REGISTRY.values()):
            if cls.__name__.lower() == key:
                return cls()
        if key in _REGISTRY:
            return _REGISTRY[key]()
    if isinstance(identifier, dict) and "class_name" in identifier:
        for cls in set(_REGISTRY.values()):
            if cls.__name__ == identifier["class_name"]:
                cfg = dict(identifier.get("config", {}))
                return cls(**cfg)
    raise ValueError(f"unknown loss {identifier!r}; known losses: {', '.join(KNOWN)}")


def serialize(loss):
    return {"class_name": type(loss).__name__, "config": loss.get_config()}
