"""Losses and metrics against NumPy implementations of Keras 3's definitions: values with and
without sample weights, every reduction, gradients against float64 finite differences, user
subclasses of Loss and Metric in compile/fit/evaluate, bad arguments."""
import numpy as np
import pytest

import fastdl as keras
from fastdl import losses, metrics, ops
from helpers import numeric_gradient

EPS = 1e-7


# ------------------------------------------------------------------ NumPy references
def _softplus(x):
    return np.logaddexp(0.0, x)


def _hinge_labels(t):
    return 2.0 * t - 1.0 if np.all((t == 0) | (t == 1)) else t


def _l2n(x):
    return x / np.maximum(np.sqrt((x * x).sum(-1, keepdims=True)), 1e-30)


def _bce(t, p):
    p = np.clip(p, EPS, 1 - EPS)
    return -(t * np.log(p) + (1 - t) * np.log(1 - p))


def _cce(t, p):
    p = p / p.sum(-1, keepdims=True)
    return -(t * np.log(np.clip(p, EPS, 1 - EPS))).sum(-1)


def _focal(t, p, gamma=2.0, alpha=0.25, balance=False):
    pt = t * p + (1 - t) * (1 - p)
    f = (1 - pt) ** gamma * _bce(t, p)
    if balance:
        f = (t * alpha + (1 - t) * (1 - alpha)) * f
    return f.mean(-1)


REF = {   # per-sample losses, the last axis reduced, as Keras' function forms
    "mean_squared_error": lambda t, p: ((p - t) ** 2).mean(-1),
    "mean_absolute_error": lambda t, p: np.abs(p - t).mean(-1),
    "mean_squared_logarithmic_error": lambda t, p: (
        (np.log(np.maximum(p, EPS) + 1) - np.log(np.maximum(t, EPS) + 1)) ** 2).mean(-1),
    "mean_absolute_percentage_error": lambda t, p: 100 * np.abs(
        (t - p) / np.maximum(np.abs(t), EPS)).mean(-1),
    "huber": lambda t, p, d=1.0: np.where(np.abs(p - t) <= d, 0.5 * (p - t) ** 2,
                                          d * np.abs(p - t) - 0.5 * d * d).mean(-1),
    "log_cosh": lambda t, p: np.log(np.cosh(p - t)).mean(-1),
    "kl_divergence": lambda t, p: (np.clip(t, EPS, 1) * np.log(
        np.clip(t, EPS, 1) / np.clip(p, EPS, 1))).sum(-1),
    "poisson": lambda t, p: (p - t * np.log(p + EPS)).mean(-1),
    "cosine_similarity": lambda t, p: -(_l2n(t) * _l2n(p)).sum(-1),
    "hinge": lambda t, p: np.maximum(1 - _hinge_labels(t) * p, 0).mean(-1),
    "squared_hinge": lambda t, p: (np.maximum(1 - _hinge_labels(t) * p, 0) ** 2).mean(-1),
    "categorical_hinge": lambda t, p: np.maximum(
        ((1 - t) * p).max(-1) - (t * p).sum(-1) + 1, 0),
    "binary_crossentropy": lambda t, p: _bce(t, p).mean(-1),
    "categorical_crossentropy": _cce,
    "binary_focal_crossentropy": _focal,
}
CLASSES = {
    "mean_squared_error": losses.MeanSquaredError, "mean_absolute_error": losses.MeanAbsoluteError,
    "mean_squared_logarithmic_error": losses.MeanSquaredLogarithmicError,
    "mean_absolute_percentage_error": losses.MeanAbsolutePercentageError,
    "huber": losses.Huber, "log_cosh": losses.LogCosh, "kl_divergence": losses.KLDivergence,
    "poisson": losses.Poisson, "cosine_similarity": losses.CosineSimilarity,
    "hinge": losses.Hinge, "squared_hinge": losses.SquaredHinge,
    "categorical_hinge": losses.CategoricalHinge,
    "binary_crossentropy": losses.BinaryCrossentropy,
    "categorical_crossentropy": losses.CategoricalCrossentropy,
    "binary_focal_crossentropy": losses.BinaryFocalCrossentropy,
}
FUNCS = {
    "mean_squared_error": losses.mean_squared_error, "mean_absolute_error": losses.mae,
    "mean_squared_logarithmic_error": losses.msle, "mean_absolute_percentage_error": losses.mape,
    "huber": losses.huber, "log_cosh": losses.log_cosh, "kl_divergence": losses.kld,
    "poisson": losses.poisson, "cosine_similarity": losses.cosine_similarity,
    "hinge": losses.hinge, "squared_hinge": losses.squared_hinge,
    "categorical_hinge": losses.categorical_hinge,
    "binary_crossentropy": losses.binary_crossentropy,
    "categorical_crossentropy": losses.categorical_crossentropy,
    "binary_focal_crossentropy": losses.binary_focal_crossentropy,
}


def _data(name, n, d, seed=0):
    """Targets and predictions in each loss's domain (away from kinks and clips, so finite
    differences hold)."""
    rng = np.random.default_rng(seed)
    if name in ("binary_crossentropy", "binary_focal_crossentropy"):
        return rng.integers(0, 2, (n, d)).astype(np.float64), rng.uniform(0.1, 0.9, (n, d))
    if name in ("categorical_crossentropy", "categorical_hinge", "kl_divergence"):
        t = np.eye(d)[rng.integers(0, d, n)] if name != "kl_divergence" else \
            rng.dirichlet(np.ones(d), n)
        p = rng.dirichlet(np.ones(d), n) * 0.8 + 0.2 / d
        return t, p
    if name in ("hinge", "squared_hinge"):
        return rng.choice([-1.0, 1.0], (n, d)), rng.uniform(-1.5, 1.5, (n, d))
    if name in ("poisson", "mean_squared_logarithmic_error", "mean_absolute_percentage_error"):
        return rng.uniform(0.5, 3, (n, d)), rng.uniform(0.5, 3, (n, d))
    return rng.normal(size=(n, d)), rng.normal(size=(n, d))


SHAPES = [(1, 1), (7, 3), (5, 1), (13, 4)]


@pytest.mark.parametrize("name", sorted(REF))
@pytest.mark.parametrize("shape", SHAPES)
def test_loss_values_against_numpy(name, shape):
    n, d = shape
    if name in ("categorical_crossentropy", "categorical_hinge", "kl_divergence",
                "cosine_similarity") and d == 1:
        d = 3
    t, p = _data(name, n, d)
    per = REF[name](t, p)
    w = np.random.default_rng(1).uniform(0.0, 2.0, n)
    cls = CLASSES[name]
    tol = dict(rtol=1e-6, atol=1e-9)
    # class, function form and string name
    np.testing.assert_allclose(cls()(t, p), per.mean(), **tol)
    np.testing.assert_allclose(np.asarray(FUNCS[name](t, p)), per, **tol)
    np.testing.assert_allclose(losses.get(name)(t, p), per.mean(), **tol)
    # weights: sum(loss * w) / number of samples
    np.testing.assert_allclose(cls()(t, p, sample_weight=w), (per * w).sum() / n, **tol)
    np.testing.assert_allclose(cls()(t, p, sample_weight=w[:, None]), (per * w).sum() / n, **tol)
    np.testing.assert_allclose(cls(reduction="sum")(t, p, sample_weight=w), (per * w).sum(),
                               **tol)
    np.testing.assert_allclose(cls(reduction="sum")(t, p), per.sum(), **tol)
    np.testing.assert_allclose(cls(reduction="none")(t, p, sample_weight=w), per * w, **tol)
    np.testing.assert_allclose(cls(reduction="mean_with_sample_weight")(t, p, sample_weight=w),
                               (per * w).sum() / w.sum(), **tol)


@pytest.mark.parametrize("name", sorted(REF))
def test_loss_gradients_against_finite_differences(name):
    t, p = _data(name, 6, 3, seed=3)
    w = np.random.default_rng(4).uniform(0.2, 2.0, 6)
    for reduction, sw in (("sum_over_batch_size", None), ("sum_over_batch_size", w),
                          ("sum", w), ("mean_with_sample_weight", w)):
        loss = CLASSES[name](reduction=reduction)
        x = p.copy()
        with keras.GradientTape() as tape:
            tape.watch(x)
            v = loss(t, x, sample_weight=sw)
        g = np.asarray(tape.gradient(v, x))
        ww = np.ones(6) if sw is None else sw
        div = {"sum_over_batch_size": 6.0, "sum": 1.0, "mean_with_sample_weight": ww.sum()}[reduction]
        num = numeric_gradient(lambda: (REF[name](t, x) * ww).sum() / div, x)
        np.testing.assert_allclose(g, num, rtol=1e-5, atol=1e-7, err_msg=f"{name} {reduction}")


@pytest.mark.parametrize("from_logits", [False, True])
def test_sparse_categorical_weighted_gradients(from_logits):
    rng = np.random.default_rng(17)
    y = rng.integers(0, 4, 7)
    w = rng.uniform(0.2, 2.0, 7)
    p = rng.normal(size=(7, 4)) if from_logits else rng.dirichlet(np.ones(4), 7) * 0.8 + 0.05

    def ref(x):
        q = np.exp(x) / np.exp(x).sum(-1, keepdims=True) if from_logits else \
            x / x.sum(-1, keepdims=True)
        return -np.log(np.clip(q[np.arange(7), y], EPS, 1 - EPS))
    for reduction in ("sum_over_batch_size", "sum"):
        loss = losses.SparseCategoricalCrossentropy(from_logits=from_logits, reduction=reduction)
        x = p.copy()
        with keras.GradientTape() as tape:
            tape.watch(x)
            v = loss(y, x, sample_weight=w)
        np.testing.assert_allclose(float(np.asarray(v)),
                                   (ref(x) * w).sum() / (7 if reduction != "sum" else 1),
                                   rtol=1e-6)
        g = np.asarray(tape.gradient(v, x))
        num = numeric_gradient(lambda: (ref(x) * w).sum() / (7 if reduction != "sum" else 1), x)
        np.testing.assert_allclose(g, num, rtol=1e-5, atol=1e-7)


def test_weighted_loss_of_a_softmax_layer_trains_from_its_logits():
    """Under the tape a weighted cross-entropy of a softmax layer's output takes the fused
    kernel on the logits: the same gradient as the tape through the softmax."""
    rng = np.random.default_rng(18)
    x = rng.normal(size=(9, 4))
    y = rng.integers(0, 3, 9)
    w = rng.uniform(0.2, 2.0, 9)
    keras.set_seed(1)
    layer = keras.layers.Dense(3, activation="softmax", dtype="float64")
    layer(x)
    grads = []
    for fn in (lambda p: losses.SparseCategoricalCrossentropy()(y, p, sample_weight=w),
               lambda p: ops.divide(ops.sum(ops.multiply(
                   losses.sparse_categorical_crossentropy(y, p), w)), 9.0)):
        with keras.GradientTape() as tape:
            v = fn(layer(x))
        grads.append([np.asarray(g) for g in tape.gradient(v, layer.trainable_weights)])
    for a, b in zip(*grads):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-9)


def test_huber_delta_and_cosine_axis():
    t, p = _data("huber", 9, 4)
    np.testing.assert_allclose(losses.Huber(delta=0.3)(t, p), REF["huber"](t, p, 0.3).mean(),
                               rtol=1e-7)
    np.testing.assert_allclose(np.asarray(losses.huber(t, p, delta=2.5)), REF["huber"](t, p, 2.5),
                               rtol=1e-7)
    c = losses.CosineSimilarity(axis=0)(t, p)
    ref = -(_l2n(t.T) * _l2n(p.T)).sum(-1).mean()
    np.testing.assert_allclose(c, ref, rtol=1e-7)


def test_hinge_converts_binary_labels():
    t01 = np.array([[0.0, 1.0, 1.0], [1.0, 0.0, 0.0]])
    p = np.array([[0.3, -0.2, 0.9], [-0.5, 0.4, 0.1]])
    np.testing.assert_allclose(losses.Hinge()(t01, p), losses.Hinge()(2 * t01 - 1, p))
    np.testing.assert_allclose(losses.Hinge()(t01, p),
                               np.maximum(1 - (2 * t01 - 1) * p, 0).mean(), rtol=1e-7)


@pytest.mark.parametrize("ls", [0.0, 0.1, 0.35])
def test_label_smoothing(ls):
    rng = np.random.default_rng(5)
    t = np.eye(4)[rng.integers(0, 4, 10)]
    p = rng.dirichlet(np.ones(4), 10)
    w = rng.uniform(0.5, 1.5, 10)
    ref = _cce(t * (1 - ls) + ls / 4, p)
    cce = losses.CategoricalCrossentropy(label_smoothing=ls)
    np.testing.assert_allclose(cce(t, p), ref.mean(), rtol=1e-6)           # C++ kernel path
    np.testing.assert_allclose(cce(t, p, sample_weight=w), (ref * w).mean(), rtol=1e-6)
    np.testing.assert_allclose(np.asarray(losses.categorical_crossentropy(t, p, label_smoothing=ls)),
                               ref, rtol=1e-6)
    tb = rng.integers(0, 2, (10, 3)).astype(float)
    pb = rng.uniform(0.05, 0.95, (10, 3))
    refb = _bce(tb * (1 - ls) + 0.5 * ls, pb).mean(-1)
    bce = losses.BinaryCrossentropy(label_smoothing=ls)
    np.testing.assert_allclose(bce(tb, pb), refb.mean(), rtol=1e-6)
    np.testing.assert_allclose(bce(tb, pb, sample_weight=w), (refb * w).mean(), rtol=1e-6)
    # from logits: the same numbers from the sigmoid / softmax of logits
    z = rng.normal(size=(10, 4))
    sm = np.exp(z) / np.exp(z).sum(-1, keepdims=True)
    np.testing.assert_allclose(losses.CategoricalCrossentropy(from_logits=True,
                                                              label_smoothing=ls)(t, z),
                               _cce(t * (1 - ls) + ls / 4, sm).mean(), rtol=1e-6)
    zb = rng.normal(size=(10, 3))
    np.testing.assert_allclose(
        losses.BinaryCrossentropy(from_logits=True, label_smoothing=ls)(tb, zb, sample_weight=w),
        (_bce(tb * (1 - ls) + 0.5 * ls, 1 / (1 + np.exp(-zb))).mean(-1) * w).mean(), rtol=1e-6)


def test_focal_options():
    t, p = _data("binary_focal_crossentropy", 8, 3)
    f = losses.BinaryFocalCrossentropy(apply_class_balancing=True, alpha=0.4, gamma=1.5)
    np.testing.assert_allclose(f(t, p), _focal(t, p, 1.5, 0.4, True).mean(), rtol=1e-6)
    z = np.log(p / (1 - p))
    np.testing.assert_allclose(losses.BinaryFocalCrossentropy(from_logits=True)(t, z),
                               _focal(t, p).mean(), rtol=1e-6)


def test_sparse_categorical_with_weights():
    rng = np.random.default_rng(6)
    y = rng.integers(0, 5, 11)
    p = rng.dirichlet(np.ones(5), 11)
    w = rng.uniform(0, 3, 11)
    per = -np.log(np.clip(p[np.arange(11), y], EPS, 1 - EPS))
    l = losses.SparseCategoricalCrossentropy()
    np.testing.assert_allclose(l(y, p), per.mean(), rtol=1e-6)
    np.testing.assert_allclose(l(y, p, sample_weight=w), (per * w).mean(), rtol=1e-6)
    np.testing.assert_allclose(l(y[:, None], p, sample_weight=w[:, None]), (per * w).mean(),
                               rtol=1e-6)


def test_time_distributed_losses_take_per_sample_weights():
    rng = np.random.default_rng(7)
    t, p = rng.normal(size=(4, 5, 3)), rng.normal(size=(4, 5, 3))
    per = ((p - t) ** 2).mean(-1)              # (4, 5)
    w = rng.uniform(0, 2, 4)
    np.testing.assert_allclose(losses.MeanSquaredError()(t, p, sample_weight=w),
                               (per * w[:, None]).sum() / per.size, rtol=1e-6)
    w2 = rng.uniform(0, 2, (4, 5))
    np.testing.assert_allclose(losses.MeanSquaredError()(t, p, sample_weight=w2),
                               (per * w2).sum() / per.size, rtol=1e-6)


def test_loss_bad_arguments():
    with pytest.raises(ValueError, match="reduction"):
        losses.MeanSquaredError(reduction="avg")
    with pytest.raises(ValueError, match="label_smoothing"):
        losses.CategoricalCrossentropy(label_smoothing=1.5)
    with pytest.raises(ValueError, match="delta"):
        losses.Huber(delta=-1)
    t, p = np.zeros((4, 2)), np.ones((4, 2))
    with pytest.raises(ValueError, match="sample_weight"):
        losses.MeanSquaredError()(t, p, sample_weight=np.ones(3))
    with pytest.raises(ValueError, match="unknown loss"):
        losses.get("no_such_loss")


def test_loss_config_round_trip():
    for l in (losses.Huber(delta=0.7, reduction="sum", name="h"), losses.CosineSimilarity(axis=0),
              losses.BinaryCrossentropy(from_logits=True, label_smoothing=0.1),
              losses.BinaryFocalCrossentropy(gamma=3.0), losses.MeanSquaredError()):
        back = losses.deserialize(losses.serialize(l))
        assert type(back) is type(l) and back.get_config() == l.get_config()


# ------------------------------------------------------------------ user Loss subclasses
class WeightedSquares(losses.Loss):
    def __init__(self, scale=2.0, **kwargs):
        super().__init__(**kwargs)
        self.scale = scale

    def call(self, y_true, y_pred):
        return ops.multiply(self.scale, ops.mean(ops.square(ops.subtract(y_pred, y_true)), axis=-1))


def _dense_model(seed=0, units=1, activation=None, inputs=4):
    keras.set_seed(seed)
    m = keras.Sequential([keras.Input((inputs,)), keras.layers.Dense(units, activation=activation)])
    return m


def test_user_loss_subclass_values_and_fit():
    rng = np.random.default_rng(8)
    t, p = rng.normal(size=(6, 2)), rng.normal(size=(6, 2))
    w = rng.uniform(0, 1, 6)
    l = WeightedSquares(scale=3.0)
    assert l.name == "weighted_squares"
    per = 3.0 * ((p - t) ** 2).mean(-1)
    np.testing.assert_allclose(l(t, p), per.mean(), rtol=1e-6)
    np.testing.assert_allclose(l(t, p, sample_weight=w), (per * w).mean(), rtol=1e-6)
    np.testing.assert_allclose(WeightedSquares(reduction="sum")(t, p), (per / 1.5).sum(), rtol=1e-6)
    # trained by autodiff: the same steps as the built-in MSE at three times the learning rate
    x = rng.normal(size=(32, 4)).astype("float32")
    y = rng.normal(size=(32, 1)).astype("float32")
    a = _dense_model()
    a.compile(keras.optimizers.SGD(0.01), loss=WeightedSquares(scale=3.0))
    ha = a.fit(x, y, epochs=3, batch_size=8, shuffle=False, verbose=0)
    b = _dense_model()
    b.compile(keras.optimizers.SGD(0.03), loss="mse")
    hb = b.fit(x, y, epochs=3, batch_size=8, shuffle=False, verbose=0)
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_allclose(wa, wb, rtol=2e-5, atol=1e-6)
    np.testing.assert_allclose(ha.history["loss"], 3 * np.array(hb.history["loss"]), rtol=1e-5)


@pytest.mark.parametrize("name", ["huber", "log_cosh", "poisson", "mean_squared_logarithmic_error",
                                  "cosine_similarity"])
def test_new_losses_train_in_fit(name):
    rng = np.random.default_rng(9)
    x = rng.uniform(0.5, 1.5, (64, 4)).astype("float32")
    y = (x @ rng.uniform(0.2, 1.0, (4, 2))).astype("float32")
    m = _dense_model(units=2, activation="softplus" if name == "poisson" else None)
    m.compile(keras.optimizers.Adam(0.05), loss=name)
    before = m.evaluate(x, y, verbose=0)
    h = m.fit(x, y, epochs=15, batch_size=16, verbose=0)
    assert h.history["loss"][-1] < h.history["loss"][0]
    after = m.evaluate(x, y, verbose=0)
    assert after < before
    # the logged loss is the loss of the data (no dropout here): evaluate agrees with NumPy
    ref = REF[name](y.astype(np.float64), m.predict(x, verbose=0).astype(np.float64)).mean()
    np.testing.assert_allclose(after, ref, rtol=1e-4, atol=1e-6)


# ------------------------------------------------------------------ metrics
def _wmean(v, w=None):
    return v.mean() if w is None else (v * w).sum() / w.sum()


def _in_top_k(lab, p, k):
    return ((p > p[np.arange(len(lab)), lab][:, None]).sum(-1) < k).astype(float)


def _metric_cases(rng):
    n, c = 12, 5
    lab = rng.integers(0, c, n)
    onehot = np.eye(c)[lab]
    probs = rng.dirichlet(np.ones(c), n)
    reg_t, reg_p = rng.uniform(0.5, 2, (n, 3)), rng.uniform(0.5, 2, (n, 3))
    bin_t = rng.integers(0, 2, (n, 1)).astype(float)
    bin_p = rng.uniform(0, 1, (n, 1))
    return [
        (metrics.SparseCategoricalAccuracy(), lab, probs,
         (probs.argmax(-1) == lab).astype(float)),
        (metrics.CategoricalAccuracy(), onehot, probs, (probs.argmax(-1) == lab).astype(float)),
        (metrics.BinaryAccuracy(), bin_t, bin_p, ((bin_p > 0.5) == bin_t).astype(float)[:, 0]),
        (metrics.BinaryAccuracy(threshold=0.7), bin_t, bin_p,
         ((bin_p > 0.7) == bin_t).astype(float)[:, 0]),
        (metrics.TopKCategoricalAccuracy(k=2), onehot, probs, _in_top_k(lab, probs, 2)),
        (metrics.SparseTopKCategoricalAccuracy(), lab, probs, _in_top_k(lab, probs, 5)),
        (metrics.SparseTopKCategoricalAccuracy(k=3), lab, probs, _in_top_k(lab, probs, 3)),
        (metrics.MeanSquaredError(), reg_t, reg_p, REF["mean_squared_error"](reg_t, reg_p)),
        (metrics.MeanAbsoluteError(), reg_t, reg_p, REF["mean_absolute_error"](reg_t, reg_p)),
        (metrics.MeanAbsolutePercentageError(), reg_t, reg_p,
         REF["mean_absolute_percentage_error"](reg_t, reg_p)),
        (metrics.MeanSquaredLogarithmicError(), reg_t, reg_p,
         REF["mean_squared_logarithmic_error"](reg_t, reg_p)),
        (metrics.CosineSimilarity(), reg_t, reg_p, -REF["cosine_similarity"](reg_t, reg_p)),
        (metrics.LogCoshError(), reg_t, reg_p, REF["log_cosh"](reg_t, reg_p)),
        (metrics.Poisson(), reg_t, reg_p, REF["poisson"](reg_t, reg_p)),
        (metrics.KLDivergence(), onehot, probs, REF["kl_divergence"](onehot, probs)),
        (metrics.Hinge(), bin_t, bin_p, REF["hinge"](bin_t, bin_p)),
        (metrics.SquaredHinge(), bin_t, bin_p, REF["squared_hinge"](bin_t, bin_p)),
        (metrics.CategoricalHinge(), onehot, probs, REF["categorical_hinge"](onehot, probs)),
        (metrics.BinaryCrossentropy(), bin_t, bin_p, REF["binary_crossentropy"](bin_t, bin_p)),
        (metrics.CategoricalCrossentropy(), onehot, probs, _cce(onehot, probs)),
        (metrics.SparseCategoricalCrossentropy(), lab, probs, _cce(onehot, probs)),
    ]


def test_mean_metrics_against_numpy_with_and_without_weights():
    rng = np.random.default_rng(10)
    w = rng.uniform(0, 2, 12)
    for m, t, p, per in _metric_cases(rng):
        # two batches, then a reset
        m.update_state(t[:5], p[:5])
        m.update_state(t[5:], p[5:])
        np.testing.assert_allclose(float(m.result()), _wmean(per), rtol=1e-6, err_msg=m.name)
        m.reset_state()
        assert float(m.result()) == 0.0
        m.update_state(t[:7], p[:7], sample_weight=w[:7])
        m.update_state(t[7:], p[7:], sample_weight=w[7:, None])
        np.testing.assert_allclose(float(m.result()), _wmean(per, w), rtol=1e-6, err_msg=m.name)


def test_root_mean_squared_error():
    rng = np.random.default_rng(11)
    t, p, w = rng.normal(size=(9, 2)), rng.normal(size=(9, 2)), rng.uniform(0, 1, 9)
    m = metrics.RootMeanSquaredError()
    m.update_state(t, p)
    np.testing.assert_allclose(m.result(), np.sqrt(((p - t) ** 2).mean()), rtol=1e-7)
    m.reset_state()
    m.update_state(t, p, sample_weight=w)
    np.testing.assert_allclose(m.result(), np.sqrt((((p - t) ** 2).mean(-1) * w).sum() / w.sum()),
                               rtol=1e-7)


def _counts(t, p, thr, w=None):
    w = np.ones_like(p) if w is None else np.broadcast_to(w, p.shape)
    pos = p > thr
    return ((pos & (t == 1)) * w).sum(), ((pos & (t == 0)) * w).sum(), \
        ((~pos & (t == 0)) * w).sum(), ((~pos & (t == 1)) * w).sum()


def test_precision_recall_thresholds_top_k_class_id():
    rng = np.random.default_rng(12)
    t = rng.integers(0, 2, (20, 3)).astype(float)
    p = rng.uniform(0, 1, (20, 3))
    w = rng.uniform(0, 2, (20, 1))
    for thr in (0.5, 0.2):
        tp, fp, tn, fn = _counts(t, p, thr)
        pr, rc = metrics.Precision(thresholds=thr), metrics.Recall(thresholds=thr)
        pr.update_state(t[:8], p[:8]); pr.update_state(t[8:], p[8:])
        rc.update_state(t, p)
        np.testing.assert_allclose(pr.result(), tp / (tp + fp), rtol=1e-7)
        np.testing.assert_allclose(rc.result(), tp / (tp + fn), rtol=1e-7)
        tp, fp, tn, fn = _counts(t, p, thr, w)
        pr.reset_state()
        pr.update_state(t, p, sample_weight=w)
        np.testing.assert_allclose(pr.result(), tp / (tp + fp), rtol=1e-7)
    # several thresholds at once: one value each
    pr = metrics.Precision(thresholds=[0.3, 0.6, 0.9])
    pr.update_state(t, p)
    exp = [(lambda c: c[0] / (c[0] + c[1]))(_counts(t, p, th)) for th in (0.3, 0.6, 0.9)]
    np.testing.assert_allclose(pr.result(), exp, rtol=1e-7)
    # class_id: one column
    rc = metrics.Recall(class_id=1)
    rc.update_state(t, p)
    tp, fp, tn, fn = _counts(t[:, 1], p[:, 1], 0.5)
    np.testing.assert_allclose(rc.result(), tp / (tp + fn), rtol=1e-7)
    # top_k: each row's k largest scores are the positives (Keras: no threshold then)...
    for k in (1, 2):
        pr = metrics.Precision(top_k=k)
        pr.update_state(t, p)
        top = p >= np.sort(p, -1)[:, -k:][:, :1]
        np.testing.assert_allclose(pr.result(), (top & (t == 1)).sum() / top.sum(), rtol=1e-7)
        rc = metrics.Recall(top_k=k)
        rc.update_state(t, p)
        np.testing.assert_allclose(rc.result(), (top & (t == 1)).sum() / (t == 1).sum(),
                                   rtol=1e-7)
    # ... and with a threshold too, they must also be above it
    pr = metrics.Precision(top_k=1, thresholds=0.5)
    pr.update_state(t, p)
    top = (p == p.max(-1, keepdims=True)) & (p > 0.5)
    np.testing.assert_allclose(pr.result(), (top & (t == 1)).sum() / top.sum(), rtol=1e-7)
    # nothing predicted positive: 0 (Keras' divide_no_nan)
    pr = metrics.Precision()
    pr.update_state(np.ones((3, 1)), np.zeros((3, 1)))
    assert pr.result() == 0.0


def _auc_ref(t, p, w, n_thr, curve, method):
    thr = np.concatenate([[-EPS], [(i + 1) / (n_thr - 1) for i in range(n_thr - 2)], [1 + EPS]])
    c = np.array([_counts(t.ravel(), p.ravel(), th, None if w is None else w.ravel())
                  for th in thr])
    tp, fp, tn, fn = c.T
    div = lambda a, b: np.where(b == 0, 0.0, a / np.where(b == 0, 1, b))  # noqa: E731
    if curve == "PR" and method == "interpolation":
        dtp = tp[:-1] - tp[1:]
        pp = tp + fp
        dp = pp[:-1] - pp[1:]
        slope = div(dtp, np.maximum(dp, 0))
        icpt = tp[1:] - slope * pp[1:]
        ratio = np.where((pp[:-1] > 0) & (pp[1:] > 0), div(pp[:-1], np.maximum(pp[1:], 0)), 1.0)
        return div(slope * (dtp + icpt * np.log(ratio)), np.maximum(tp[1:] + fn[1:], 0)).sum()
    rec = div(tp, tp + fn)
    x, y = (div(fp, fp + tn), rec) if curve == "ROC" else (rec, div(tp, tp + fp))
    h = {"interpolation": (y[:-1] + y[1:]) / 2, "minoring": np.minimum(y[:-1], y[1:]),
         "majoring": np.maximum(y[:-1], y[1:])}[method]
    return ((x[:-1] - x[1:]) * h).sum()


@pytest.mark.parametrize("curve", ["ROC", "PR"])
@pytest.mark.parametrize("method", ["interpolation", "minoring", "majoring"])
def test_auc_against_keras_definition(curve, method):
    rng = np.random.default_rng(13)
    t = rng.integers(0, 2, (50, 1)).astype(float)
    p = np.clip(0.35 * t + rng.uniform(0, 0.65, (50, 1)), 0, 1)
    w = rng.uniform(0, 2, (50, 1))
    for n_thr in (200, 7):
        m = metrics.AUC(num_thresholds=n_thr, curve=curve, summation_method=method)
        m.update_state(t[:20], p[:20]); m.update_state(t[20:], p[20:])
        np.testing.assert_allclose(m.result(), _auc_ref(t, p, None, n_thr, curve, method),
                                   rtol=1e-7)
        m.reset_state()
        m.update_state(t, p, sample_weight=w)
        np.testing.assert_allclose(m.result(), _auc_ref(t, p, w, n_thr, curve, method), rtol=1e-7)


def test_auc_roc_approaches_the_exact_area():
    rng = np.random.default_rng(14)
    t = rng.integers(0, 2, 400)
    p = np.clip(0.3 * t + rng.uniform(0, 0.7, 400), 0, 1)
    pos, neg = p[t == 1], p[t == 0]
    exact = ((pos[:, None] > neg[None, :]).mean() + 0.5 * (pos[:, None] == neg[None, :]).mean())
    m = metrics.AUC(num_thresholds=1000)
    m.update_state(t, p)
    assert abs(m.result() - exact) < 2e-3
    z = np.log(np.clip(p, 1e-6, 1 - 1e-6) / np.clip(1 - p, 1e-6, 1))
    ml = metrics.AUC(num_thresholds=1000, from_logits=True)
    ml.update_state(t, z)
    assert abs(ml.result() - exact) < 2e-3


def test_metric_bad_arguments():
    with pytest.raises(ValueError, match="curve"):
        metrics.AUC(curve="XY")
    with pytest.raises(ValueError, match="thresholds"):
        metrics.Precision(thresholds=1.5)
    with pytest.raises(ValueError, match="top_k"):
        metrics.Recall(top_k=0)
    with pytest.raises(NotImplementedError, match="multi_label"):
        metrics.AUC(multi_label=True)
    with pytest.raises(ValueError, match="unknown metric"):
        metrics.get("no_such_metric")
    with pytest.raises(ValueError, match="sample_weight"):
        metrics.MeanSquaredError().update_state(np.zeros((4, 2)), np.ones((4, 2)),
                                                sample_weight=np.ones(3))


# ------------------------------------------------------------------ user Metric subclasses
class BinaryTruePositives(metrics.Metric):
    def __init__(self, name="binary_true_positives", **kwargs):
        super().__init__(name=name, **kwargs)
        self.true_positives = self.add_variable(shape=(), initializer="zeros",
                                                name="true_positives")

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_true = np.asarray(y_true).reshape(-1) > 0.5
        y_pred = np.asarray(y_pred).reshape(-1) > 0.5
        values = (y_true & y_pred).astype("float32")
        if sample_weight is not None:
            values = values * np.asarray(sample_weight).reshape(-1)
        self.true_positives.assign(self.true_positives + ops.sum(values))

    def result(self):
        return self.true_positives


class CountedMean(metrics.Metric):
    """A mean kept in two add_weight variables, with its own reset_state."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.total = self.add_weight(name="total")
        self.count = self.add_weight(name="count")

    def update_state(self, y_true, y_pred, sample_weight=None):
        err = np.abs(np.asarray(y_pred) - np.asarray(y_true)).reshape(len(y_true), -1).mean(1)
        self.total.assign_add(err.sum())
        self.count.assign_add(len(err))

    def result(self):
        return self.total / self.count

    def reset_state(self):
        self.total.assign(0.0)
        self.count.assign(0.0)


def test_user_metric_subclass_standalone():
    m = BinaryTruePositives()
    m.update_state([1, 1, 0, 1], [0.9, 0.2, 0.8, 0.7])
    assert float(m.result()) == 2.0
    m.update_state([1], [0.6], sample_weight=[0.5])
    assert float(m.result()) == 2.5
    assert len(m.variables) == 1
    m.reset_state()
    assert float(m.result()) == 0.0
    assert CountedMean().name == "counted_mean"


def test_user_metrics_in_compile_fit_evaluate():
    rng = np.random.default_rng(15)
    x = rng.normal(size=(40, 4)).astype("float32")
    y = (rng.uniform(size=(40, 1)) > 0.5).astype("float32")
    m = _dense_model(activation="sigmoid")
    m.compile("sgd", loss="binary_crossentropy",
              metrics=[BinaryTruePositives(), CountedMean(name="mae_mean"), metrics.AUC(),
                       "precision", metrics.Recall(name="rec")])
    h = m.fit(x, y, epochs=2, batch_size=16, verbose=0)
    assert {"binary_true_positives", "mae_mean", "auc", "precision", "rec"} <= set(h.history)
    res = m.evaluate(x, y, batch_size=16, verbose=0, return_dict=True)
    p = m.predict(x, verbose=0)
    assert res["binary_true_positives"] == float(((y > 0.5) & (p > 0.5)).sum())
    np.testing.assert_allclose(res["mae_mean"], np.abs(p - y).mean(), rtol=1e-5)
    tp, fp, tn, fn = _counts(y, p, 0.5)
    np.testing.assert_allclose(res["precision"], tp / (tp + fp) if tp + fp else 0.0, rtol=1e-5)
    np.testing.assert_allclose(res["rec"], tp / (tp + fn) if tp + fn else 0.0, rtol=1e-5)
    np.testing.assert_allclose(res["auc"], _auc_ref(y, p.astype(np.float64), None, 200, "ROC",
                                                    "interpolation"), rtol=1e-5)


def test_metric_functions_as_metrics():
    rng = np.random.default_rng(16)
    x = rng.normal(size=(20, 4)).astype("float32")
    y = rng.normal(size=(20, 1)).astype("float32")
    m = _dense_model()
    m.compile("sgd", loss="mse", metrics=[losses.mean_absolute_error, "mape", "msle",
                                          "root_mean_squared_error"])
    res = m.evaluate(x, y, verbose=0, return_dict=True)
    p = m.predict(x, verbose=0).astype(np.float64)
    np.testing.assert_allclose(res["mean_absolute_error"], np.abs(p - y).mean(), rtol=1e-5)
    np.testing.assert_allclose(res["mape"], REF["mean_absolute_percentage_error"](y, p).mean(),
                               rtol=1e-5)
    np.testing.assert_allclose(res["root_mean_squared_error"], np.sqrt(((p - y) ** 2).mean()),
                               rtol=1e-5)
