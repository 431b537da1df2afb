"""Keras metrics: stateful values over the batches seen.

``update_state(y_true, y_pred, sample_weight=None)``, ``result()``, ``reset_state()``,
as Keras 3 defines them. Most are weighted running means of a per-sample value
(``MeanMetricWrapper``: sum(value * weight) / sum(weight)); Precision, Recall and
AUC accumulate confusion counts. User subclasses of ``Metric`` keep their state in
``add_variable``/``add_weight`` variables (``assign``, ``assign_add``). The name
'accuracy' (or 'acc') resolves to the variant matching the loss, as in Keras.
Metrics run on host (NumPy) arrays.
"""
import numpy as np

from . import losses as _losses

__all__ = ["Metric", "MetricVariable", "Mean", "Sum", "MeanMetricWrapper", "Accuracy",
           "SparseCategoricalAccuracy", "CategoricalAccuracy", "BinaryAccuracy",
           "TopKCategoricalAccuracy", "SparseTopKCategoricalAccuracy", "MeanSquaredError",
           "MeanAbsoluteError", "RootMeanSquaredError", "MeanAbsolutePercentageError",
           "MeanSquaredLogarithmicError", "CosineSimilarity", "LogCoshError", "KLDivergence",
           "Poisson", "Hinge", "SquaredHinge", "CategoricalHinge", "BinaryCrossentropy",
           "CategoricalCrossentropy", "SparseCategoricalCrossentropy", "Precision", "Recall",
           "AUC", "get", "KNOWN"]

_EPSILON = 1e-7


def _host(a):
    from . import _device, _tape
    if isinstance(a, MetricVariable):
        return a.value
    return np.asarray(_device.to_host(_tape.value(a)))


def _snake(name):
    return _losses._snake(name)


class MetricVariable(np.lib.mixins.NDArrayOperatorsMixin):
    """A metric's state (Keras' metric variables): an array with assign, assign_add and
    assign_sub, usable in NumPy and fastdl.ops expressions."""

    def __init__(self, value, name=None):
        self._value = np.array(value)
        self.name = name

    @property
    def value(self):
        return self._value

    def numpy(self):
        return self._value.copy()

    @property
    def shape(self):
        return self._value.shape

    @property
    def dtype(self):
        return self._value.dtype

    def assign(self, v):
        v = _host(v)
        if np.shape(v) != self._value.shape and np.size(v) != 1:
            raise ValueError(f"metric variable {self.name!r}: cannot assign a value of shape "
                             f"{np.shape(v)} to a variable of shape {self._value.shape}")
        self._value[...] = v
        return self

    def assign_add(self, v):
        return self.assign(self._value + _host(v))

    def assign_sub(self, v):
        return self.assign(self._value - _host(v))

    def __array__(self, dtype=None, copy=None):
        return self._value if dtype is None else self._value.astype(dtype)

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        inputs = tuple(i._value if isinstance(i, MetricVariable) else i for i in inputs)
        return getattr(ufunc, method)(*inputs, **kwargs)

    def __float__(self):
        return float(self._value)

    def __int__(self):
        return int(self._value)

    def __repr__(self):
        return f"<MetricVariable {self.name!r} {self._value!r}>"


class Metric:
    """Base class: subclasses implement update_state and result, with their state in
    variables made by add_variable (reset to zeros by the default reset_state)."""
    name = "metric"

    def __init__(self, name=None, dtype=None):
        if name:
            self.name = name
        elif type(self).name == "metric" and type(self) is not Metric:
            self.name = _snake(type(self).__name__)
        self.dtype = np.dtype(dtype or "float32")
        self._metric_variables = []

    def add_variable(self, shape=(), initializer="zeros", dtype=None, aggregation="sum",
                     name=None):
        from . import initializers
        shape = tuple(int(s) for s in (shape or ()))
        dt = np.dtype(dtype or self.dtype)
        init = initializers.get(initializer) if not callable(initializer) else initializer
        v = MetricVariable(np.asarray(init(shape, dt), dtype=dt), name)
        if "_metric_variables" not in self.__dict__:
            raise RuntimeError(f"{type(self).__name__}: call super().__init__() before "
                               f"add_variable")
        self._metric_variables.append((v, v.numpy()))
        return v

    def add_weight(self, shape=(), initializer="zeros", dtype=None, name=None):
        return self.add_variable(shape, initializer, dtype, name=name)

    @property
    def variables(self):
        return [v for v, _ in self.__dict__.get("_metric_variables", [])]

    def reset_state(self):
        for v, _ in self.__dict__.get("_metric_variables", []):
            v.assign(np.zeros(v.shape, v.dtype))

    def update_state(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__}: a Metric subclass must implement "
                                  f"update_state")

    def result(self):
        raise NotImplementedError(f"{type(self).__name__}: a Metric subclass must implement "
                                  f"result")

    def __call__(self, *args, **kwargs):
        self.update_state(*args, **kwargs)
        return self.result()

    def get_config(self):
        return {"name": self.name, "dtype": self.dtype.name}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def _same_rank(a, b):
    """Keras' squeeze_or_expand_to_same_rank on NumPy arrays."""
    if a.ndim == b.ndim + 1 and a.shape[-1] == 1:
        if b.ndim == 1:
            b = b[..., None]
        else:
            a = a[..., 0]
    elif b.ndim == a.ndim + 1 and b.shape[-1] == 1:
        if a.ndim == 1:
            a = a[..., None]
        else:
            b = b[..., 0]
    return a, b


def _samplewise(values, sample_weight, reduce_fn):
    """Keras' reduce_to_samplewise_values: (per-sample values weighted, per-sample weights
    or None)."""
    values = np.asarray(values, np.float64)
    if sample_weight is not None:
        w = np.asarray(_host(sample_weight), np.float64)
        values, w = _same_rank(values, w)
        if values.ndim > w.ndim:
            values = reduce_fn(values, axis=tuple(range(w.ndim, values.ndim)))
        try:
            w = np.broadcast_to(w, values.shape)
        except ValueError:
            raise ValueError(f"sample_weight of shape {w.shape} does not match values of shape "
                             f"{values.shape}") from None
        values = values * w
        if w.ndim > 1:
            w = reduce_fn(w, axis=tuple(range(1, w.ndim)))
    else:
        w = None
    if values.ndim > 1:
        values = reduce_fn(values, axis=tuple(range(1, values.ndim)))
    return values, w


class _Reduce(Metric):
    """State in Python floats (total, count): cheap to update once per batch."""

    def __init__(self, name=None, dtype=None):
        super().__init__(name, dtype)
        self.reset_state()

    def reset_state(self):
        self.total = 0.0
        self.count = 0

    def _add(self, s, n):
        self.total += s
        self.count += n

    @property
    def variables(self):
        return [np.asarray(self.total), np.asarray(self.count)]


class Mean(_Reduce):
    """The (weighted) mean of the values given to update_state (Keras' metrics.Mean)."""
    name = "mean"

    def update_state(self, values, sample_weight=None):
        if isinstance(values, float) and (sample_weight is None or isinstance(sample_weight, int)):
            w = 1 if sample_weight is None else sample_weight
            self.total += values * w
            self.count += w
            return
        v, w = _samplewise(_host(values), sample_weight, np.mean)
        self.total += float(v.sum())
        if w is not None:
            self.count += float(w.sum())
        else:
            self.count += v.shape[0] if v.ndim else 1

    def result(self):
        return self.total / self.count if self.count else 0.0


class Sum(_Reduce):
    """The running sum of the values given to update_state (Keras' metrics.Sum)."""
    name = "sum"

    def update_state(self, values, sample_weight=None):
        v, _ = _samplewise(_host(values), sample_weight, np.sum)
        self.total += float(v.sum())

    def result(self):
        return self.total


class MeanMetricWrapper(Mean):
    """The weighted mean of fn(y_true, y_pred, **kwargs), a value per sample."""

    def __init__(self, fn, name=None, dtype=None, **kwargs):
        super().__init__(name or getattr(fn, "__name__", "mean_metric_wrapper"), dtype)
        self._fn = fn
        self._fn_kwargs = kwargs

    def update_state(self, y_true, y_pred, sample_weight=None):
        values = self._fn(_host(y_true), _host(y_pred), **self._fn_kwargs)
        super().update_state(_host(values), sample_weight)

    def get_config(self):
        return {"name": self.name, "dtype": self.dtype.name, **self._fn_kwargs}


# ------------------------------------------------------------------ per-sample functions
def accuracy(y_true, y_pred):
    y_true, y_pred = _same_rank(np.asarray(y_true), np.asarray(y_pred))
    return (y_true.reshape(y_pred.shape) == y_pred).astype(np.float32)


def binary_accuracy(y_true, y_pred, threshold=0.5):
    y_true, y_pred = _same_rank(np.asarray(y_true), np.asarray(y_pred))
    y_true = y_true.reshape(y_pred.shape)
    return (y_true == (y_pred > threshold).astype(y_true.dtype)).astype(np.float32)


def categorical_accuracy(y_true, y_pred):
    return (np.argmax(y_true, -1) == np.argmax(y_pred, -1)).astype(np.float32)


def _sparse_labels(y_true, y_pred):
    y_true = np.asarray(y_true)
    if y_true.ndim == y_pred.ndim and y_true.shape[-1] == 1:
        y_true = y_true[..., 0]
    return y_true


def sparse_categorical_accuracy(y_true, y_pred):
    y_pred = np.asarray(y_pred)
    y_true = _sparse_labels(y_true, y_pred)
    return (np.argmax(y_pred, -1) == y_true.reshape(y_pred.shape[:-1])).astype(np.float32)


def _in_top_k(labels, preds, k):
    """TF's in_top_k: the label's score is among the k largest (ties at the boundary count
    as in); a non-finite score never is."""
    preds = np.asarray(preds, np.float64).reshape(-1, preds.shape[-1])
    labels = np.asarray(labels).reshape(-1).astype(np.int64)
    target = preds[np.arange(len(labels)), labels]
    above = (preds > target[:, None]).sum(axis=1)
    return (above < k) & np.isfinite(target)


def top_k_categorical_accuracy(y_true, y_pred, k=5):
    y_pred = np.asarray(y_pred)
    hit = _in_top_k(np.argmax(y_true, -1), y_pred, k)
    return hit.reshape(y_pred.shape[:-1]).astype(np.float32)


def sparse_top_k_categorical_accuracy(y_true, y_pred, k=5):
    y_pred = np.asarray(y_pred)
    y_true = _sparse_labels(y_true, y_pred)
    return _in_top_k(y_true, y_pred, k).reshape(y_pred.shape[:-1]).astype(np.float32)


def _loss_values(fn):
    """A loss function form, run on host arrays, as a per-sample metric function."""
    def values(y_true, y_pred, **kw):
        return np.asarray(fn(y_true, y_pred, **kw))
    values.__name__ = fn.__name__
    return values


def _cosine_similarity(y_true, y_pred, axis=-1):
    return -np.asarray(_losses.cosine_similarity(y_true, y_pred, axis=axis))


# ------------------------------------------------------------------ wrapped metrics
def _wrapper(cls_name, fn, default_name, params=(), doc=None):
    names = [p[0] for p in params]
    defaults = dict(params)

    def __init__(self, *args, name=None, dtype=None, **kw):
        if len(args) > len(names):
            raise TypeError(f"{cls_name}: too many positional arguments")
        values = dict(defaults)
        values.update(zip(names, args))
        for k in kw:
            if k not in defaults:
                raise TypeError(f"{cls_name}: unexpected keyword argument {k!r}")
        values.update(kw)
        MeanMetricWrapper.__init__(self, fn, name or default_name, dtype, **values)
        for k, v in values.items():
            setattr(self, k, v)
    return type(cls_name, (MeanMetricWrapper,), {"__init__": __init__, "name": default_name,
                                                 "__doc__": doc})


Accuracy = _wrapper("Accuracy", accuracy, "accuracy", doc="Exact equality of y_true and y_pred.")
BinaryAccuracy = _wrapper("BinaryAccuracy", binary_accuracy, "binary_accuracy",
                          (("threshold", 0.5),), "y_pred > threshold equals y_true.")
CategoricalAccuracy = _wrapper("CategoricalAccuracy", categorical_accuracy,
                               "categorical_accuracy")
SparseCategoricalAccuracy = _wrapper("SparseCategoricalAccuracy", sparse_categorical_accuracy,
                                     "sparse_categorical_accuracy")
TopKCategoricalAccuracy = _wrapper("TopKCategoricalAccuracy", top_k_categorical_accuracy,
                                   "top_k_categorical_accuracy", (("k", 5),))
SparseTopKCategoricalAccuracy = _wrapper("SparseTopKCategoricalAccuracy",
                                         sparse_top_k_categorical_accuracy,
                                         "sparse_top_k_categorical_accuracy", (("k", 5),))
MeanSquaredError = _wrapper("MeanSquaredError", _loss_values(_losses.mean_squared_error),
                            "mean_squared_error")
MeanAbsoluteError = _wrapper("MeanAbsoluteError", _loss_values(_losses.mean_absolute_error),
                             "mean_absolute_error")
MeanAbsolutePercentageError = _wrapper(
    "MeanAbsolutePercentageError", _loss_values(_losses.mean_absolute_percentage_error),
    "mean_absolute_percentage_error")
MeanSquaredLogarithmicError = _wrapper(
    "MeanSquaredLogarithmicError", _loss_values(_losses.mean_squared_logarithmic_error),
    "mean_squared_logarithmic_error")
CosineSimilarity = _wrapper("CosineSimilarity", _cosine_similarity, "cosine_similarity",
                            (("axis", -1),))
LogCoshError = _wrapper("LogCoshError", _loss_values(_losses.log_cosh), "logcosh")
KLDivergence = _wrapper("KLDivergence", _loss_values(_losses.kl_divergence), "kl_divergence")
Poisson = _wrapper("Poisson", _loss_values(_losses.poisson), "poisson")
Hinge = _wrapper("Hinge", _loss_values(_losses.hinge), "hinge")
SquaredHinge = _wrapper("SquaredHinge", _loss_values(_losses.squared_hinge), "squared_hinge")
CategoricalHinge = _wrapper("CategoricalHinge", _loss_values(_losses.categorical_hinge),
                            "categorical_hinge")
BinaryCrossentropy = _wrapper("BinaryCrossentropy", _loss_values(_losses.binary_crossentropy),
                              "binary_crossentropy",
                              (("from_logits", False), ("label_smoothing", 0.0)))
CategoricalCrossentropy = _wrapper("CategoricalCrossentropy",
                                   _loss_values(_losses.categorical_crossentropy),
                                   "categorical_crossentropy",
                                   (("from_logits", False), ("label_smoothing", 0.0),
                                    ("axis", -1)))
SparseCategoricalCrossentropy = _wrapper("SparseCategoricalCrossentropy",
                                         _loss_values(_losses.sparse_categorical_crossentropy),
                                         "sparse_categorical_crossentropy",
                                         (("from_logits", False), ("axis", -1)))


class RootMeanSquaredError(Mean):
    """sqrt of the weighted mean of the squared errors (Keras)."""
    name = "root_mean_squared_error"

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_true, y_pred = _same_rank(_host(y_true), _host(y_pred))
        err = np.square(y_pred.astype(np.float64) - y_true.reshape(y_pred.shape))
        super().update_state(err, sample_weight)

    def result(self):
        return float(np.sqrt(super().result()))


# ------------------------------------------------------------------ confusion counts
def _check_thresholds(thresholds, default, where):
    t = default if thresholds is None else thresholds
    single = np.ndim(t) == 0
    t = np.atleast_1d(np.asarray(t, np.float64))
    if t.size == 0 or np.any(~np.isfinite(t)) or np.any((t < 0) | (t > 1)):
        raise ValueError(f"{where}: thresholds must be numbers in [0, 1], got {thresholds!r}")
    return t, single


def _confusion(y_true, y_pred, thresholds, sample_weight, top_k=None, class_id=None):
    """(tp, fp, tn, fn), each of len(thresholds): predictions above a threshold are
    positive (Keras' update_confusion_matrix_variables)."""
    y_pred = np.asarray(y_pred, np.float64)
    y_true = np.asarray(y_true)
    y_pred, y_true = _same_rank(y_pred, y_true)
    y_true = y_true.reshape(y_pred.shape).astype(bool)
    w = None
    if sample_weight is not None:
        w = np.asarray(_host(sample_weight), np.float64)
        y_pred_w, w = _same_rank(y_pred, w)
        if w.ndim < y_pred.ndim:
            w = w.reshape(w.shape + (1,) * (y_pred.ndim - w.ndim))
        try:
            w = np.broadcast_to(w, y_pred.shape)
        except ValueError:
            raise ValueError(f"sample_weight of shape {w.shape} does not match predictions of "
                             f"shape {y_pred.shape}") from None
    if top_k is not None:
        kth = -np.sort(-y_pred, axis=-1)[..., min(top_k, y_pred.shape[-1]) - 1:min(top_k, y_pred.shape[-1])]
        y_pred = np.where(y_pred >= kth, y_pred, -np.inf)
    if class_id is not None:
        y_pred, y_true = y_pred[..., class_id], y_true[..., class_id]
        w = None if w is None else w[..., class_id]
    p = y_pred.reshape(1, -1) > thresholds.reshape(-1, 1)
    t = y_true.reshape(1, -1)
    wf = np.ones(t.shape[1]) if w is None else w.reshape(-1)
    tp = ((p & t) * wf).sum(axis=1)
    fp = ((p & ~t) * wf).sum(axis=1)
    tn = ((~p & ~t) * wf).sum(axis=1)
    fn = ((~p & t) * wf).sum(axis=1)
    return tp, fp, tn, fn


def _divide_no_nan(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return np.where(b == 0, 0.0, a / np.where(b == 0, 1.0, b))


class _Confusion(Metric):
    def __init__(self, thresholds=None, top_k=None, class_id=None, name=None, dtype=None):
        super().__init__(name, dtype)
        where = type(self).__name__
        if top_k is not None and (isinstance(top_k, bool) or int(top_k) != top_k or top_k < 1):
            raise ValueError(f"{where}: top_k must be a positive integer, got {top_k!r}")
        if thresholds is None and top_k is not None:
            # Keras: with top_k and no thresholds, each row's k largest scores are positive
            self.thresholds, self._single = np.array([-np.inf]), True
        else:
            self.thresholds, self._single = _check_thresholds(thresholds, 0.5, where)
        self.top_k = None if top_k is None else int(top_k)
        self.class_id = None if class_id is None else int(class_id)
        self.true_positives = self.add_variable((len(self.thresholds),), name="true_positives")
        self.false_positives = self.add_variable((len(self.thresholds),), name="false_positives")
        self.false_negatives = self.add_variable((len(self.thresholds),), name="false_negatives")

    def update_state(self, y_true, y_pred, sample_weight=None):
        tp, fp, _, fn = _confusion(_host(y_true), _host(y_pred), self.thresholds, sample_weight,
                                   self.top_k, self.class_id)
        self.true_positives.assign_add(tp)
        self.false_positives.assign_add(fp)
        self.false_negatives.assign_add(fn)

    def _out(self, r):
        return float(r[0]) if self._single else r

    def get_config(self):
        t = float(self.thresholds[0]) if self._single else self.thresholds.tolist()
        if self.top_k is not None and np.isneginf(self.thresholds[0]):
            t = None
        return {"name": self.name, "thresholds": t, "top_k": self.top_k,
                "class_id": self.class_id}


class Precision(_Confusion):
    """tp / (tp + fp) at each threshold (predictions above it are positive)."""
    name = "precision"

    def result(self):
        tp, fp = self.true_positives.value, self.false_positives.value
        return self._out(_divide_no_nan(tp, tp + fp))


class Recall(_Confusion):
    """tp / (tp + fn) at each threshold (predictions above it are positive)."""
    name = "recall"

    def result(self):
        tp, fn = self.true_positives.value, self.false_negatives.value
        return self._out(_divide_no_nan(tp, tp + fn))


class AUC(Metric):
    """Area under the ROC or PR curve from confusion counts at num_thresholds thresholds,
    summed as Keras does ('interpolation', 'minoring', 'majoring'; PR with interpolation
    uses Davis & Goadrich's interpolation, as Keras)."""
    name = "auc"

    def __init__(self, num_thresholds=200, curve="ROC", summation_method="interpolation",
                 name=None, dtype=None, thresholds=None, multi_label=False, num_labels=None,
                 label_weights=None, from_logits=False):
        super().__init__(name, dtype)
        if str(curve).upper() not in ("ROC", "PR"):
            raise ValueError(f"AUC: curve must be 'ROC' or 'PR', got {curve!r}")
        if summation_method not in ("interpolation", "minoring", "majoring"):
            raise ValueError(f"AUC: summation_method must be 'interpolation', 'minoring' or "
                             f"'majoring', got {summation_method!r}")
        if multi_label or num_labels is not None or label_weights is not None:
            raise NotImplementedError("AUC: multi_label, num_labels and label_weights are not "
                                      "supported")
        self.curve, self.summation_method = str(curve).upper(), summation_method
        self.from_logits = bool(from_logits)
        if thresholds is not None:
            t, _ = _check_thresholds(thresholds, None, "AUC")
            t = np.sort(t)
            self.num_thresholds = len(t) + 2
        else:
            if int(num_thresholds) <= 1:
                raise ValueError(f"AUC: num_thresholds must be > 1, got {num_thresholds}")
            self.num_thresholds = int(num_thresholds)
            n = self.num_thresholds
            t = np.array([(i + 1) * 1.0 / (n - 1) for i in range(n - 2)])
        self._user_thresholds = thresholds
        self.thresholds = np.concatenate([[0.0 - _EPSILON], t, [1.0 + _EPSILON]])
        n = len(self.thresholds)
        self.true_positives = self.add_variable((n,), name="true_positives")
        self.false_positives = self.add_variable((n,), name="false_positives")
        self.true_negatives = self.add_variable((n,), name="true_negatives")
        self.false_negatives = self.add_variable((n,), name="false_negatives")

    def update_state(self, y_true, y_pred, sample_weight=None):
        p = _host(y_pred).astype(np.float64)
        if self.from_logits:
            p = 1.0 / (1.0 + np.exp(-p))
        tp, fp, tn, fn = _confusion(_host(y_true), p, self.thresholds, sample_weight)
        self.true_positives.assign_add(tp)
        self.false_positives.assign_add(fp)
        self.true_negatives.assign_add(tn)
        self.false_negatives.assign_add(fn)

    def _interpolate_pr_auc(self):
        tp, fp, fn = (self.true_positives.value, self.false_positives.value,
                      self.false_negatives.value)
        dtp = tp[:-1] - tp[1:]
        p = tp + fp
        dp = p[:-1] - p[1:]
        slope = _divide_no_nan(dtp, np.maximum(dp, 0))
        intercept = tp[1:] - slope * p[1:]
        ratio = np.where((p[:-1] > 0) & (p[1:] > 0),
                         _divide_no_nan(p[:-1], np.maximum(p[1:], 0)), 1.0)
        inc = _divide_no_nan(slope * (dtp + intercept * np.log(ratio)),
                             np.maximum(tp[1:] + fn[1:], 0))
        return float(inc.sum())

    def result(self):
        tp, fp, tn, fn = (self.true_positives.value, self.false_positives.value,
                          self.true_negatives.value, self.false_negatives.value)
        if self.curve == "PR" and self.summation_method == "interpolation":
            return self._interpolate_pr_auc()
        recall = _divide_no_nan(tp, tp + fn)
        if self.curve == "ROC":
            x, y = _divide_no_nan(fp, fp + tn), recall
        else:
            x, y = recall, _divide_no_nan(tp, tp + fp)
        if self.summation_method == "interpolation":
            h = (y[:-1] + y[1:]) / 2.0
        elif self.summation_method == "minoring":
            h = np.minimum(y[:-1], y[1:])
        else:
            h = np.maximum(y[:-1], y[1:])
        return float(((x[:-1] - x[1:]) * h).sum())

    def get_config(self):
        return {"name": self.name, "num_thresholds": self.num_thresholds, "curve": self.curve,
                "summation_method": self.summation_method, "from_logits": self.from_logits,
                "thresholds": self._user_thresholds}


_REGISTRY = {
    "sparse_categorical_accuracy": SparseCategoricalAccuracy,
    "categorical_accuracy": CategoricalAccuracy,
    "binary_accuracy": BinaryAccuracy,
    "top_k_categorical_accuracy": TopKCategoricalAccuracy,
    "sparse_top_k_categorical_accuracy": SparseTopKCategoricalAccuracy,
    "mean_squared_error": MeanSquaredError, "mse": MeanSquaredError,
    "mean_absolute_error": MeanAbsoluteError, "mae": MeanAbsoluteError,
    "root_mean_squared_error": RootMeanSquaredError,
    "mean_absolute_percentage_error": MeanAbsolutePercentageError,
    "mape": MeanAbsolutePercentageError,
    "mean_squared_logarithmic_error": MeanSquaredLogarithmicError,
    "msle": MeanSquaredLogarithmicError,
    "cosine_similarity": CosineSimilarity, "logcosh": LogCoshError,
    "log_cosh_error": LogCoshError, "kl_divergence": KLDivergence, "kld": KLDivergence,
    "poisson": Poisson, "hinge": Hinge, "squared_hinge": SquaredHinge,
    "categorical_hinge": CategoricalHinge, "binary_crossentropy": BinaryCrossentropy,
    "categorical_crossentropy": CategoricalCrossentropy,
    "sparse_categorical_crossentropy": SparseCategoricalCrossentropy,
    "precision": Precision, "recall": Recall, "auc": AUC,
}
KNOWN = ("accuracy", "acc") + tuple(_REGISTRY)


def get(identifier, loss=None, output_shape=None):
    """A metric for a name; 'accuracy'/'acc' pick the variant that fits the loss. A plain
    function fn(y_true, y_pred) becomes the weighted mean of its per-sample values."""
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
        for cls in set(_REGISTRY.values()):
            if cls.__name__.lower() == key:
                return cls()
    if callable(identifier) and not isinstance(identifier, type):
        return MeanMetricWrapper(identifier)
    raise ValueError(f"unknown metric {identifier!r}; known metrics: {', '.join(KNOWN)}")
