"""Keras losses: classes, their function forms and string names.

``loss(y_true, y_pred, sample_weight=None)`` follows Keras 3: ``call`` gives the
loss of each sample (the last axis reduced), which is multiplied by
``sample_weight`` and reduced as ``reduction`` says ("sum_over_batch_size": the
sum over the number of per-sample losses, "sum", "mean_with_sample_weight" or
"none"). Outside a GradientTape the result is a float (an array with
``reduction="none"``), under one a traced Tensor.

The five classic losses keep a fast path: unweighted with the default reduction,
forward and gradient come from one C++ pass (``_value_and_grad``), and, when the
last layer ends in the matching activation, ``_fused(...)`` on its logits: softmax
+ (sparse) categorical cross-entropy and sigmoid + binary cross-entropy train from
logits, the numerically stable way (as Keras does). Every other case (weights, other
reductions, the other losses, user subclasses of ``Loss``) is written with the
differentiable ops and trained through the tape.
"""
import numpy as np

from . import _device, _tape, ops

__all__ = ["Loss", "LossFunctionWrapper", "SparseCategoricalCrossentropy", "CategoricalCrossentropy",
           "BinaryCrossentropy", "BinaryFocalCrossentropy", "MeanSquaredError",
           "MeanAbsoluteError", "MeanSquaredLogarithmicError", "MeanAbsolutePercentageError",
           "Huber", "LogCosh", "KLDivergence", "CosineSimilarity", "Hinge", "SquaredHinge",
           "CategoricalHinge", "Poisson", "get", "serialize", "deserialize", "KNOWN",
           "sparse_categorical_crossentropy", "categorical_crossentropy", "binary_crossentropy",
           "binary_focal_crossentropy", "mean_squared_error", "mean_absolute_error",
           "mean_squared_logarithmic_error", "mean_absolute_percentage_error", "huber",
           "log_cosh", "kl_divergence", "cosine_similarity", "hinge", "squared_hinge",
           "categorical_hinge", "poisson", "mse", "mae", "msle", "mape", "kld", "logcosh"]

_EPSILON = 1e-7
REDUCTIONS = ("sum_over_batch_size", "sum", "mean", "mean_with_sample_weight", "none", None)


def _float_array(y):
    """y as an array of float32 or float64 (other dtypes become float32)."""
    y = np.asarray(y)
    return y if y.dtype in (np.float32, np.float64) else y.astype(np.float32)


def _check_reduction(reduction, where):
    if reduction not in REDUCTIONS:
        raise ValueError(f"{where}: invalid reduction {reduction!r}; expected one of "
                         f"{', '.join(repr(r) for r in REDUCTIONS)}")
    return reduction


def _check_smoothing(v, where):
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0.0 <= v <= 1.0:
        raise ValueError(f"{where}: label_smoothing must be a number in [0, 1], got {v!r}")
    return float(v)


def squeeze_or_expand_to_same_rank(x1, x2, expand_rank_1=True):
    """Keras' rule: ranks that differ by one, the longer ending in 1, are made equal."""
    r1, r2 = len(x1.shape), len(x2.shape)
    if r1 == r2 + 1 and x1.shape[-1] == 1:
        if r2 == 1 and expand_rank_1:
            x2 = ops.expand_dims(x2, -1)
        else:
            x1 = ops.squeeze(x1, -1)
    elif r2 == r1 + 1 and x2.shape[-1] == 1:
        if r1 == 1 and expand_rank_1:
            x1 = ops.expand_dims(x1, -1)
        else:
            x2 = ops.squeeze(x2, -1)
    return x1, x2


def _raw_weights(sample_weight, like, where):
    """sample_weight as a float array of like's dtype on like's device."""
    w = _tape.value(sample_weight)
    w = np.asarray(_device.to_host(w))
    if w.dtype.kind not in "fiub":
        raise ValueError(f"{where}: sample_weight must be numeric, got dtype {w.dtype}")
    raw = _tape.value(like)
    w = w.astype(getattr(raw, "dtype", np.float32) if getattr(raw, "dtype", None) is not None
                 and raw.dtype.kind == "f" else np.float32)
    return _device.mover("cuda")(w) if _device.is_device(raw) else w


def weighted_values(values, sample_weight, where="loss"):
    """(values * sample_weight, the weights broadcast to values' shape): the weights are
    aligned as Keras does (rank squeezed or expanded by one), then broadcast from the
    leading axes (weights of shape (N,) weight every time step of (N, T) losses)."""
    w = _raw_weights(sample_weight, values, where)
    vshape = tuple(np.shape(_tape.value(values)))
    if len(w.shape) == len(vshape) + 1 and w.shape[-1] == 1:
        w = w.reshape(w.shape[:-1])
    elif len(vshape) == len(w.shape) + 1 and vshape[-1] == 1 and len(w.shape) == 1:
        w = w.reshape(w.shape + (1,))
    if len(w.shape) < len(vshape):
        w = w.reshape(w.shape + (1,) * (len(vshape) - len(w.shape)))
    try:
        wb = _device.xp(w).broadcast_to(w, vshape)
    except ValueError:
        raise ValueError(f"{where}: sample_weight of shape {tuple(np.shape(_tape.value(sample_weight)))} "
                         f"does not match the per-sample losses of shape {vshape}; give one "
                         f"weight per sample") from None
    return ops.multiply(values, w), wb


def reduce_values(values, reduction, weights=None):
    """Keras' reduce_values: 'sum', or the sum over the number of values (over the sum of
    the weights with 'mean_with_sample_weight'); 'none' returns them as they are."""
    if reduction in (None, "none"):
        return values
    shape = tuple(np.shape(_tape.value(values)))
    if shape == () or shape == (0,):
        return values
    total = ops.sum(values)
    if reduction == "sum":
        return total
    if reduction == "mean_with_sample_weight" and weights is not None:
        divisor = float(_device.to_host(weights.sum()))
    else:
        divisor = float(np.prod(shape))
    if divisor == 0:
        return ops.multiply(total, 0.0)
    return ops.divide(total, divisor)


def _as_result(v):
    """A float for a raw scalar; arrays and traced Tensors as they are."""
    if _tape.is_tensor(v):
        return v
    if getattr(v, "ndim", 0) == 0:
        return float(_device.to_host(v)) if _device.is_device(v) else float(v)
    return v


class Loss:
    """Base class of every loss: subclasses implement ``call(y_true, y_pred)``, the loss of
    each sample, with the differentiable ``fastdl.ops`` (Keras 3's protocol)."""
    name = "loss"
    sparse = False         # targets are integer class indices
    fuses_with = None      # 'softmax' or 'sigmoid': activation whose logits the fused path takes
    from_logits = False

    def __init__(self, name=None, reduction="sum_over_batch_size", dtype=None):
        if name:
            self.name = name
        elif type(self).name == "loss" and type(self) not in (Loss, LossFunctionWrapper):
            self.name = _snake(type(self).__name__)
        self.reduction = _check_reduction(reduction, type(self).__name__)
        self.dtype = dtype

    def call(self, y_true, y_pred):
        raise NotImplementedError(f"{type(self).__name__}: a Loss subclass must implement "
                                  f"call(y_true, y_pred)")

    def __call__(self, y_true, y_pred, sample_weight=None):
        """The reduced loss: a float, an array with reduction='none', or a traced Tensor
        under a GradientTape (differentiable in y_pred)."""
        if _tape.needs_grad(y_true):
            raise NotImplementedError(f"{type(self).__name__}: gradients with respect to y_true "
                                      f"are not supported; pass it through ops.stop_gradient")
        if sample_weight is None and self._kernel_ready():
            return self._kernel_call(y_true, y_pred)
        if (sample_weight is not None and self._has_kernel() and
                self.reduction in ("sum_over_batch_size", "mean", "sum", "mean_with_sample_weight")):
            out = self._weighted_kernel_call(y_true, y_pred, sample_weight)
            if out is not None:
                return out
        if not _tape.is_tensor(y_pred):
            raw = _tape.value(y_pred)
            y_pred = raw if _device.is_device(raw) else _float_array(raw)
        yt = _device.to_host(_tape.value(y_true))
        if not self.sparse:
            yt = _float_array(yt).astype(_tape.value(y_pred).dtype, copy=False)
            if _device.is_device(_tape.value(y_pred)):
                yt = _device.mover("cuda")(yt)
            yt, y_pred = squeeze_or_expand_to_same_rank(yt, y_pred)
        elif _device.is_device(_tape.value(y_pred)):
            yt = _device.mover("cuda")(np.asarray(yt))
        values = self._values(yt, y_pred)
        weights = None
        if sample_weight is not None:
            values, weights = weighted_values(values, sample_weight, self.name)
        return _as_result(reduce_values(values, self.reduction, weights))

    def _values(self, y_true, y_pred):
        return self.call(y_true, y_pred)

    # --- the C++ fast path of the built-in cross-entropies and regression losses
    def _has_kernel(self):
        """The loss has a C++ kernel (_value_and_grad): a built-in whose call is not
        overridden."""
        return (type(self)._value_and_grad is not Loss._value_and_grad and
                type(self).call is _BuiltinLoss.call)

    def _kernel_ready(self):
        """The unweighted loss comes from the C++ kernel: it has one, and the default
        reduction (the fused step plan needs this)."""
        return self.reduction in ("sum_over_batch_size", "mean") and self._has_kernel()

    def _kernel_targets(self, y_true, raw):
        targets = self._prepare_targets(_device.to_host(_tape.value(y_true)), raw.dtype)
        if not self.sparse and targets.ndim == raw.ndim - 1 and raw.shape[-1] == 1:
            targets = targets.reshape(targets.shape + (1,))   # (N,) targets of an (N, 1) output
        elif not self.sparse and targets.ndim == raw.ndim + 1 and targets.shape[-1] == 1:
            targets = targets.reshape(targets.shape[:-1])
        if _device.is_device(raw):
            targets = _device.mover("cuda")(targets)
        return targets

    def _weighted_kernel_call(self, y_true, y_pred, sample_weight):
        """A weighted loss from the C++ kernel: each sample's loss (its function form, no
        tape) times its weight, reduced; the gradient is the kernel's (that of the mean) with
        each sample's rows scaled by its weight. None when the shapes do not allow it."""
        raw = _tape.value(y_pred)
        if not _device.is_device(raw):
            raw = _float_array(raw)
        if raw.ndim < 2:
            return None
        targets = self._kernel_targets(y_true, raw)
        grad_needed = _tape.needs_grad(y_pred)
        fused = getattr(getattr(y_pred, "node", None), "logits", None) if grad_needed else None
        fused = fused if (fused is not None and fused[0] == self.fuses_with and
                          not self.from_logits) else None
        kw = self._fn_kwargs()
        if fused is not None:
            values = type(self)._fn(targets, fused[1].value, **dict(kw, from_logits=True))
        else:
            values = type(self)._fn(targets, raw, **kw)
        values = _tape.value(values)
        if tuple(values.shape) != tuple(raw.shape[:-1]):
            return None
        wv, wb = weighted_values(values, sample_weight, self.name)
        value = reduce_values(wv, self.reduction, wb)
        if not grad_needed:
            return _as_result(value)
        scale = 1.0
        if self.reduction == "sum":
            scale = float(values.size)
        elif self.reduction == "mean_with_sample_weight":
            total = float(_device.to_host(wb.sum()))
            scale = float(values.size) / total if total else 0.0
        if fused is not None:
            src = fused[1]
            grad = self._fused(src.value, targets, None, True)[1]
        else:
            src = y_pred
            grad = self._value_and_grad(targets, raw, None, want_grad=True)[1]
        rows = (wb * scale).astype(grad.dtype, copy=False).reshape(wb.shape + (1,))
        grad = grad * rows
        out = _device.xp(raw).asarray(value, dtype=raw.dtype)
        return _tape.record(self.name, out, (src,), lambda g: (grad * g,))

    def _kernel_call(self, y_true, y_pred):
        raw = _tape.value(y_pred)
        if not _device.is_device(raw):
            raw = _float_array(raw)
        targets = self._kernel_targets(y_true, raw)
        if not _tape.needs_grad(y_pred):
            return float(self._value_and_grad(targets, raw, None, want_grad=False)[0])
        fused = getattr(getattr(y_pred, "node", None), "logits", None)
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
        return {"name": self.name, "reduction": self.reduction}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def _snake(name):
    out = []
    for i, c in enumerate(name):
        if c.isupper() and i and not name[i - 1].isupper():
            out.append("_")
        out.append(c.lower())
    return "".join(out)


class _BuiltinLoss(Loss):
    """A built-in loss: its function form (``_fn``) with the arguments of ``_fn_kwargs``."""
    _fn = None

    def _fn_kwargs(self):
        return {}

    def call(self, y_true, y_pred):
        return type(self)._fn(y_true, y_pred, **self._fn_kwargs())

    def _values(self, y_true, y_pred):
        fused = getattr(getattr(y_pred, "node", None), "logits", None)
        if (fused is not None and self.fuses_with is not None and fused[0] == self.fuses_with
                and not self.from_logits and type(self).call is _BuiltinLoss.call):
            # a softmax/sigmoid layer's output: the same loss from its logits (stable)
            return type(self)._fn(y_true, fused[1], **dict(self._fn_kwargs(), from_logits=True))
        return self.call(y_true, y_pred)

    def get_config(self):
        return {"name": self.name, "reduction": self.reduction, **self._fn_kwargs()}


class SparseCategoricalCrossentropy(_BuiltinLoss):
    name = "sparse_categorical_crossentropy"
    sparse = True
    fuses_with = "softmax"

    def __init__(self, from_logits=False, ignore_class=None, reduction="sum_over_batch_size",
                 name=None, dtype=None):
        if ignore_class is not None:
            raise NotImplementedError("SparseCategoricalCrossentropy: ignore_class is not "
                                      "supported")
        super().__init__(name, reduction, dtype)
        self.from_logits = bool(from_logits)

    def _fn_kwargs(self):
        return {"from_logits": self.from_logits}

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


class _KernelLoss(_BuiltinLoss):
    """A cross-entropy computed by one C++ loss kernel: _kernel on probabilities,
    _logits_kernel when from_logits; _logits_kernel also serves the fused path. Label
    smoothing is applied to the targets before the kernel."""
    _kernel = None
    _logits_kernel = None

    def __init__(self, from_logits=False, label_smoothing=0.0, axis=-1,
                 reduction="sum_over_batch_size", name=None, dtype=None):
        super().__init__(name, reduction, dtype)
        self.from_logits = bool(from_logits)
        self.label_smoothing = _check_smoothing(label_smoothing, type(self).__name__)
        self.axis = int(axis)

    def _fn_kwargs(self):
        return {"from_logits": self.from_logits, "label_smoothing": self.label_smoothing,
                "axis": self.axis}

    def _has_kernel(self):
        return self.axis == -1 and super()._has_kernel()

    def _smooth(self, y_true):
        return y_true

    def _fused(self, logits, y_true, out, want_grad=True):
        loss, d = ops._loss_kernel(self._logits_kernel, logits, self._smooth(y_true), out,
                                   want_grad)
        return loss, d, None

    def _value_and_grad(self, y_true, y_pred, out, want_grad=True):
        kind = self._logits_kernel if self.from_logits else self._kernel
        return ops._loss_kernel(kind, y_pred, self._smooth(y_true), out, want_grad)


class CategoricalCrossentropy(_KernelLoss):
    name = "categorical_crossentropy"
    fuses_with = "softmax"
    _kernel, _logits_kernel = "categorical_xent", "softmax_xent"

    def _smooth(self, y_true):
        ls = self.label_smoothing
        if not ls:
            return y_true
        t = y_true.dtype.type
        return y_true * t(1.0 - ls) + t(ls / y_true.shape[-1])


class BinaryCrossentropy(_KernelLoss):
    name = "binary_crossentropy"
    fuses_with = "sigmoid"
    _kernel, _logits_kernel = "binary_xent", "sigmoid_xent"

    def _smooth(self, y_true):
        ls = self.label_smoothing
        if not ls:
            return y_true
        t = y_true.dtype.type
        return y_true * t(1.0 - ls) + t(0.5 * ls)


class BinaryFocalCrossentropy(_BuiltinLoss):
    name = "binary_focal_crossentropy"

    def __init__(self, apply_class_balancing=False, alpha=0.25, gamma=2.0, from_logits=False,
                 label_smoothing=0.0, axis=-1, reduction="sum_over_batch_size", name=None,
                 dtype=None):
        super().__init__(name, reduction, dtype)
        self.apply_class_balancing = bool(apply_class_balancing)
        self.alpha, self.gamma = float(alpha), float(gamma)
        if self.gamma < 0:
            raise ValueError(f"BinaryFocalCrossentropy: gamma must be >= 0, got {gamma}")
        self.from_logits = bool(from_logits)
        self.label_smoothing = _check_smoothing(label_smoothing, "BinaryFocalCrossentropy")
        self.axis = int(axis)

    def _fn_kwargs(self):
        return {"apply_class_balancing": self.apply_class_balancing, "alpha": self.alpha,
                "gamma": self.gamma, "from_logits": self.from_logits,
                "label_smoothing": self.label_smoothing, "axis": self.axis}


class _RegressionLoss(_BuiltinLoss):
    """A regression loss: Keras' (reduction, name, dtype) arguments."""

    def __init__(self, reduction="sum_over_batch_size", name=None, dtype=None):
        super().__init__(name, reduction, dtype)


class _KernelRegressionLoss(_RegressionLoss):
    """A regression loss with a C++ kernel for its unweighted mean and gradient."""
    _kernel = None

    def _value_and_grad(self, y_true, y_pred, out, want_grad=True):
        return ops._loss_kernel(self._kernel, y_pred, y_true, out, want_grad)


class MeanSquaredError(_KernelRegressionLoss):
    name = "mean_squared_error"
    _kernel = "mse"


class MeanAbsoluteError(_KernelRegressionLoss):
    name = "mean_absolute_error"
    _kernel = "mae"


class MeanSquaredLogarithmicError(_RegressionLoss):
    name = "mean_squared_logarithmic_error"


class MeanAbsolutePercentageError(_RegressionLoss):
    name = "mean_absolute_percentage_error"


class LogCosh(_RegressionLoss):
    name = "log_cosh"


class KLDivergence(_RegressionLoss):
    name = "kl_divergence"


class Poisson(_RegressionLoss):
    name = "poisson"


class Hinge(_RegressionLoss):
    name = "hinge"


class SquaredHinge(_RegressionLoss):
    name = "squared_hinge"


class CategoricalHinge(_RegressionLoss):
    name = "categorical_hinge"


class Huber(_RegressionLoss):
    name = "huber_loss"

    def __init__(self, delta=1.0, reduction="sum_over_batch_size", name=None, dtype=None):
        super().__init__(reduction, name, dtype)
        if isinstance(delta, bool) or not isinstance(delta, (int, float)) or not delta > 0:
            raise ValueError(f"Huber: delta must be a positive number, got {delta!r}")
        self.delta = float(delta)

    def _fn_kwargs(self):
        return {"delta": self.delta}


class CosineSimilarity(_RegressionLoss):
    name = "cosine_similarity"

    def __init__(self, axis=-1, reduction="sum_over_batch_size", name=None, dtype=None):
        super().__init__(reduction, name, dtype)
        self.axis = int(axis)

    def _fn_kwargs(self):
        return {"axis": self.axis}


class LossFunctionWrapper(Loss):
    """A loss from a function fn(y_true, y_pred, **kwargs) -> per-sample losses, reduced as
    ``reduction`` says; written with fastdl.ops it is differentiable."""

    def __init__(self, fn, reduction="sum_over_batch_size", name=None, dtype=None, **kwargs):
        super().__init__(name or getattr(fn, "__name__", "loss"), reduction, dtype)
        self.fn = fn
        self.kwargs = kwargs

    def call(self, y_true, y_pred):
        return self.fn(y_true, y_pred, **self.kwargs)

    def __call__(self, y_true, y_pred, sample_weight=None):
        if _tape.needs_grad(y_true):
            raise NotImplementedError(f"{self.name}: gradients with respect to y_true are not "
                                      f"supported; pass it through ops.stop_gradient")
        if not (_tape.is_tensor(y_true) or _tape.is_tensor(y_pred)):
            return super().__call__(y_true, y_pred, sample_weight)
        # a user function may take Tensors as they are: no rank alignment of y_true
        values = self.call(y_true, y_pred)
        weights = None
        if sample_weight is not None:
            values, weights = weighted_values(values, sample_weight, self.name)
        return _as_result(reduce_values(values, self.reduction, weights))

    def get_config(self):
        return {"name": self.name, "reduction": self.reduction, **self.kwargs}


# ------------------------------------------------------------------ function forms
# Keras' functional forms: the loss of each sample, reduced over the last axis only (as
# keras.losses.mean_squared_error & co.), written with the differentiable ops.
def _pair(y_true, y_pred):
    """y_pred as a float array or Tensor, y_true as a float array of its dtype, their ranks
    aligned as Keras does."""
    if not _tape.is_tensor(y_pred):
        raw = _tape.value(y_pred)
        y_pred = raw if _device.is_device(raw) else _float_array(raw)
    if not _tape.is_tensor(y_true):
        raw = _tape.value(y_true)
        if _device.is_device(raw):
            y_true = raw.astype(_tape.value(y_pred).dtype, copy=False)
        else:
            y_true = np.asarray(raw).astype(_tape.value(y_pred).dtype, copy=False)
            if _device.is_device(_tape.value(y_pred)):
                y_true = _device.mover("cuda")(y_true)
    return squeeze_or_expand_to_same_rank(y_true, y_pred)


def sparse_categorical_crossentropy(y_true, y_pred, from_logits=False, ignore_class=None, axis=-1):
    if ignore_class is not None:
        raise NotImplementedError("sparse_categorical_crossentropy: ignore_class is not supported")
    return ops.sparse_categorical_crossentropy(y_true, y_pred, from_logits=from_logits, axis=axis)


def categorical_crossentropy(y_true, y_pred, from_logits=False, label_smoothing=0.0, axis=-1):
    y_true, y_pred = _pair(y_true, y_pred)
    ls = _check_smoothing(label_smoothing, "categorical_crossentropy")
    if ls:
        n = y_true.shape[axis]
        y_true = ops.add(ops.multiply(y_true, 1.0 - ls), ls / n)
    return ops.categorical_crossentropy(y_true, y_pred, from_logits=from_logits, axis=axis)


def binary_crossentropy(y_true, y_pred, from_logits=False, label_smoothing=0.0, axis=-1):
    y_true, y_pred = _pair(y_true, y_pred)
    ls = _check_smoothing(label_smoothing, "binary_crossentropy")
    if ls:
        y_true = ops.add(ops.multiply(y_true, 1.0 - ls), 0.5 * ls)
    return ops.mean(ops.binary_crossentropy(y_true, y_pred, from_logits=from_logits), axis=axis)


def binary_focal_crossentropy(y_true, y_pred, apply_class_balancing=False, alpha=0.25, gamma=2.0,
                              from_logits=False, label_smoothing=0.0, axis=-1):
    y_true, y_pred = _pair(y_true, y_pred)
    ls = _check_smoothing(label_smoothing, "binary_focal_crossentropy")
    if ls:
        y_true = ops.add(ops.multiply(y_true, 1.0 - ls), 0.5 * ls)
    if from_logits:
        y_pred = ops.sigmoid(y_pred)
    bce = ops.binary_crossentropy(y_true, y_pred, from_logits=False)
    p_t = ops.add(ops.multiply(y_true, y_pred),
                  ops.multiply(ops.subtract(1.0, y_true), ops.subtract(1.0, y_pred)))
    focal = ops.multiply(ops.power(ops.subtract(1.0, p_t), gamma), bce)
    if apply_class_balancing:
        weight = ops.add(ops.multiply(y_true, alpha),
                         ops.multiply(ops.subtract(1.0, y_true), 1.0 - alpha))
        focal = ops.multiply(weight, focal)
    return ops.mean(focal, axis=axis)


def mean_squared_error(y_true, y_pred):
    y_true, y_pred = _pair(y_true, y_pred)
    return ops.mean(ops.square(ops.subtract(y_pred, y_true)), axis=-1)


def mean_absolute_error(y_true, y_pred):
    y_true, y_pred = _pair(y_true, y_pred)
    return ops.mean(ops.abs(ops.subtract(y_pred, y_true)), axis=-1)


def mean_squared_logarithmic_error(y_true, y_pred):
    y_true, y_pred = _pair(y_true, y_pred)
    first = ops.log(ops.add(ops.maximum(y_pred, _EPSILON), 1.0))
    second = ops.log(ops.add(ops.maximum(y_true, _EPSILON), 1.0))
    return ops.mean(ops.square(ops.subtract(first, second)), axis=-1)


def mean_absolute_percentage_error(y_true, y_pred):
    y_true, y_pred = _pair(y_true, y_pred)
    diff = ops.abs(ops.divide(ops.subtract(y_true, y_pred),
                              ops.maximum(ops.abs(y_true), _EPSILON)))
    return ops.multiply(100.0, ops.mean(diff, axis=-1))


def huber(y_true, y_pred, delta=1.0):
    y_true, y_pred = _pair(y_true, y_pred)
    err = ops.subtract(y_pred, y_true)
    abs_err = ops.abs(err)
    quad = ops.multiply(0.5, ops.square(err))
    lin = ops.subtract(ops.multiply(delta, abs_err), 0.5 * delta * delta)
    return ops.mean(ops.where(ops.less_equal(abs_err, delta), quad, lin), axis=-1)


def log_cosh(y_true, y_pred):
    # log(cosh(x)) = x + softplus(-2x) - log(2), stable for large |x|
    y_true, y_pred = _pair(y_true, y_pred)
    x = ops.subtract(y_pred, y_true)
    v = ops.subtract(ops.add(x, ops.softplus(ops.multiply(-2.0, x))), float(np.log(2.0)))
    return ops.mean(v, axis=-1)


def kl_divergence(y_true, y_pred):
    y_true, y_pred = _pair(y_true, y_pred)
    y_true = ops.clip(y_true, _EPSILON, 1.0)
    y_pred = ops.clip(y_pred, _EPSILON, 1.0)
    return ops.sum(ops.multiply(y_true, ops.log(ops.divide(y_true, y_pred))), axis=-1)


def poisson(y_true, y_pred):
    y_true, y_pred = _pair(y_true, y_pred)
    return ops.mean(ops.subtract(y_pred, ops.multiply(y_true, ops.log(ops.add(y_pred, _EPSILON)))),
                    axis=-1)


def _l2_normalize(x, axis):
    # Keras: x * min(rsqrt(sum(x^2)), 1/epsilon)
    ss = ops.sum(ops.square(x), axis=axis, keepdims=True)
    return ops.multiply(x, ops.minimum(ops.rsqrt(ops.maximum(ss, 1e-30)), 1.0 / _EPSILON))


def cosine_similarity(y_true, y_pred, axis=-1):
    y_true, y_pred = _pair(y_true, y_pred)
    return ops.negative(ops.sum(ops.multiply(_l2_normalize(y_true, axis),
                                             _l2_normalize(y_pred, axis)), axis=axis))


def _hinge_labels(y_true):
    """Keras: labels that are all 0 or 1 become -1 or 1."""
    raw = _tape.value(y_true)
    xp = _device.xp(raw)
    if bool(xp.all((raw == 0) | (raw == 1))):
        return raw * raw.dtype.type(2) - raw.dtype.type(1)
    return raw


def hinge(y_true, y_pred):
    y_true, y_pred = _pair(y_true, y_pred)
    y_true = _hinge_labels(y_true)
    return ops.mean(ops.maximum(ops.subtract(1.0, ops.multiply(y_true, y_pred)), 0.0), axis=-1)


def squared_hinge(y_true, y_pred):
    y_true, y_pred = _pair(y_true, y_pred)
    y_true = _hinge_labels(y_true)
    return ops.mean(ops.square(ops.maximum(ops.subtract(1.0, ops.multiply(y_true, y_pred)), 0.0)),
                    axis=-1)


def categorical_hinge(y_true, y_pred):
    y_true, y_pred = _pair(y_true, y_pred)
    pos = ops.sum(ops.multiply(y_true, y_pred), axis=-1)
    neg = ops.max(ops.multiply(ops.subtract(1.0, y_true), y_pred), axis=-1)
    return ops.maximum(ops.add(ops.subtract(neg, pos), 1.0), 0.0)


mse = MSE = mean_squared_error
mae = MAE = mean_absolute_error
msle = MSLE = mean_squared_logarithmic_error
mape = MAPE = mean_absolute_percentage_error
kld = KLD = kullback_leibler_divergence = kl_divergence
logcosh = log_cosh

for _cls, _f in ((SparseCategoricalCrossentropy, sparse_categorical_crossentropy),
                 (CategoricalCrossentropy, categorical_crossentropy),
                 (BinaryCrossentropy, binary_crossentropy),
                 (BinaryFocalCrossentropy, binary_focal_crossentropy),
                 (MeanSquaredError, mean_squared_error), (MeanAbsoluteError, mean_absolute_error),
                 (MeanSquaredLogarithmicError, mean_squared_logarithmic_error),
                 (MeanAbsolutePercentageError, mean_absolute_percentage_error),
                 (Huber, huber), (LogCosh, log_cosh), (KLDivergence, kl_divergence),
                 (Poisson, poisson), (CosineSimilarity, cosine_similarity), (Hinge, hinge),
                 (SquaredHinge, squared_hinge), (CategoricalHinge, categorical_hinge)):
    _cls._fn = staticmethod(_f)

_REGISTRY = {
    "sparse_categorical_crossentropy": SparseCategoricalCrossentropy,
    "categorical_crossentropy": CategoricalCrossentropy,
    "binary_crossentropy": BinaryCrossentropy,
    "binary_focal_crossentropy": BinaryFocalCrossentropy,
    "mean_squared_error": MeanSquaredError, "mse": MeanSquaredError,
    "mean_absolute_error": MeanAbsoluteError, "mae": MeanAbsoluteError,
    "mean_squared_logarithmic_error": MeanSquaredLogarithmicError,
    "msle": MeanSquaredLogarithmicError,
    "mean_absolute_percentage_error": MeanAbsolutePercentageError,
    "mape": MeanAbsolutePercentageError,
    "huber": Huber, "huber_loss": Huber,
    "log_cosh": LogCosh, "logcosh": LogCosh,
    "kl_divergence": KLDivergence, "kld": KLDivergence,
    "kullback_leibler_divergence": KLDivergence,
    "poisson": Poisson, "cosine_similarity": CosineSimilarity,
    "hinge": Hinge, "squared_hinge": SquaredHinge, "categorical_hinge": CategoricalHinge,
}
_FUNCS = {f: name for name, f in (
    ("sparse_categorical_crossentropy", sparse_categorical_crossentropy),
    ("categorical_crossentropy", categorical_crossentropy),
    ("binary_crossentropy", binary_crossentropy),
    ("binary_focal_crossentropy", binary_focal_crossentropy),
    ("mean_squared_error", mean_squared_error), ("mean_absolute_error", mean_absolute_error),
    ("mean_squared_logarithmic_error", mean_squared_logarithmic_error),
    ("mean_absolute_percentage_error", mean_absolute_percentage_error),
    ("huber", huber), ("log_cosh", log_cosh), ("kl_divergence", kl_divergence),
    ("poisson", poisson), ("cosine_similarity", cosine_similarity), ("hinge", hinge),
    ("squared_hinge", squared_hinge), ("categorical_hinge", categorical_hinge))}
KNOWN = tuple(_REGISTRY)


def get(identifier):
    if identifier is None:
        return None
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
        return deserialize(identifier)
    raise ValueError(f"unknown loss {identifier!r}; known losses: {', '.join(KNOWN)}")


def serialize(loss):
    return {"class_name": type(loss).__name__, "config": loss.get_config()}


def deserialize(config, custom_objects=None):
    name = config["class_name"]
    cfg = dict(config.get("config", {}))
    if custom_objects and name in custom_objects:
        return custom_objects[name].from_config(cfg)
    for cls in set(_REGISTRY.values()):
        if cls.__name__ == name:
            if "from_logits" in cfg and "from_logits" not in _init_args(cls):
                cfg.pop("from_logits")   # configs of older files
            return cls.from_config(cfg)
    raise ValueError(f"unknown loss class {name!r}; known losses: {', '.join(KNOWN)}")


def _init_args(cls):
    import inspect
    return inspect.signature(cls.__init__).parameters
