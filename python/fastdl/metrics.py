"""Keras metrics: stateful running means over the samples seen.

``update_state(y_true, y_pred)``, ``result()``, ``reset_state()``. The name
'accuracy' (or 'acc') resolves to the variant matching the loss, as in Keras.
"""
import numpy as np

__all__ = ["Metric", "Mean", "Sum", "Accuracy", "SparseCategoricalAccuracy", "CategoricalAccuracy",
           "BinaryAccuracy", "MeanSquaredError", "MeanAbsoluteError", "get", "KNOWN"]


class Metric:
    name = "metric"

    def __init__(self, name=None):
        if name:
            self.name = name
        self.reset_state()

    def reset_state(self):
        self.total = 0.0
        self.count = 0

    def _batch(self, y_true, y_pred):
        """(sum of per-sample values, number of samples)."""
        raise NotImplementedError

    def update_state(self, y_true, y_pred, sample_weight=None):
        if sample_weight is not None:
            raise NotImplementedError(f"{type(self).__name__}: sample_weight is not supported")
        s, n = self._batch(_host(y_true), _host(y_pred))
        self.total += float(s)
        self.count += int(n)

    def _add(self, s, n):
        self.total += s
        self.count += n

    def result(self):
        return self.total / self.count if self.count else 0.0

    def __call__(self, *args, **kwargs):
        self.update_state(*args, **kwargs)
        return self.result()

    def get_config(self):
        return {"name": self.name}

    @property
    def variables(self):
        return []


def _host(a):
    from . import _device, _tape
    return np.asarray(_device.to_host(_tape.value(a)))


class Mean(Metric):
    """The (weighted) mean of the values given to update_state (Keras' metrics.Mean)."""
    name = "mean"

    def update_state(self, values, sample_weight=None):
        if isinstance(values, float) and (sample_weight is None or isinstance(sample_weight, int)):
            w = 1 if sample_weight is None else sample_weight
            self.total += values * w
            self.count += w
            return
        v = _host(values).astype(np.float64)
        if sample_weight is None:
            self.total += float(v.sum())
            self.count += v.size
        else:
            w = np.broadcast_to(_host(sample_weight).astype(np.float64), v.shape)
            self.total += float((v * w).sum())
            self.count += float(w.sum())


class Sum(Metric):
    """The running sum of the values given to update_state (Keras' metrics.Sum)."""
    name = "sum"

    def update_state(self, values, sample_weight=None):
        v = _host(values).astype(np.float64)
        if sample_weight is not None:
            v = v * _host(sample_weight)
        self.total += float(v.sum())

    def result(self):
        return self.total


class SparseCategoricalAccuracy(Metric):
    name = "sparse_categorical_accuracy"

    def _batch(self, y_true, y_pred):
        y_true = y_true.reshape(len(y_pred), -1)[:, 0] if y_true.ndim > 1 else y_true
        return np.count_nonzero(np.argmax(y_pred, axis=-1) == y_true), len(y_pred)


class CategoricalAccuracy(Metric):
    name = "categorical_accuracy"

    def _batch(self, y_true, y_pred):
        return np.count_nonzero(np.argmax(y_pred, -1) == np.argmax(y_true, -1)), len(y_pred)


class BinaryAccuracy(Metric):
    name = "binary_accuracy"

    def __init__(self, name=None, threshold=0.5):
        self.threshold = threshold
        super().__init__(name)

    def _batch(self, y_true, y_pred):
        y_true = y_true.reshape(y_pred.shape)
        ok = (y_pred > self.threshold) == (y_true > 0.5)
        per = ok.reshape(len(y_pred), -1).mean(axis=1)
        return per.sum(), len(y_pred)


class Accuracy(Metric):
    """Exact equality of y_true and y_pred."""
    name = "accuracy"

    def _batch(self, y_true, y_pred):
        ok = (y_true.reshape(y_pred.shape) == y_pred).reshape(len(y_pred), -1).mean(axis=1)
        return ok.sum(), len(y_pred)


class MeanSquaredError(Metric):
    name = "mean_squared_error"

    def _batch(self, y_true, y_pred):
        d = (y_pred - y_true.reshape(y_pred.shape)).reshape(len(y_pred), -1)
        return (d * d).mean(axis=1).sum(), len(y_pred)


class MeanAbsoluteError(Metric):
    name = "mean_absolute_error"

    def _batch(self, y_true, y_pred):
        d = (y_pred - y_true.reshape(y_pred.shape)).reshape(len(y_pred), -1)
        return np.abs(d).mean(axis=1).sum(), len(y_pred)


_REGISTRY = {
    "sparse_categorical_accuracy": SparseCategoricalAccuracy,
    "categorical_accuracy": CategoricalAccuracy,
    "binary_accuracy": BinaryAccuracy,
    "mean_squared_error": MeanSquaredError, "mse": MeanSquaredError,
    "mean_absolute_error": MeanAbsoluteError, "mae": MeanAbsoluteError,
}
KNOWN = ("accuracy", "acc") + tuple(_REGISTRY)


def get(identifier, loss=None, output_shape=None):
    """A metric for a name; 'accuracy'/'acc' pick the variant that fits the loss."""
    if isinstance(identifier, Metric):
        return identifier
    if isinstance(identifier, type) and issubclass(identifier, Metric):
        return identifier()
    if isinstance(identifier, str):
        key = identifier.lower()
        if key in ("accuracy", "acc"):
            lname = getattr(loss, "name", "")
            if getattr(loss, "sparse", False):
                cls = SparseCategoricalAccuracy
            elif lname == "binary_crossentropy":
                cls = BinaryAccuracy
            elif lname == "categorical_crossentropy":
                cls = CategoricalAccuracy
            elif output_shape is not None and output_shape[-1] == 1:
                cls = BinaryAccuracy
            else:
                cls = CategoricalAccuracy
            return cls(name=identifier)
        if key in _REGISTRY:
            return _REGISTRY[key](name=identifier)
    raise ValueError(f"unknown metric {identifier!r}; known metrics: {', '.join(KNOWN)}")
