"""fit/evaluate with sample_weight, class_weight and weighted_metrics, weights carried by every
data adapter, constraints after optimizer steps, and the errors for bad weights. The expected
numbers follow Keras 3's definitions: each sample's loss times its weight, summed and divided
by the number of samples ("sum_over_batch_size")."""
import numpy as np
import pytest

import fastdl as keras
from fastdl import constraints, layers, losses
from fastdl.trainers import data_adapter


def _model(units=3, activation="softmax", inputs=5, seed=0, **dense_kw):
    keras.set_seed(seed)
    return keras.Sequential([keras.Input((inputs,)), layers.Dense(8, activation="relu"),
                             layers.Dense(units, activation=activation, **dense_kw)])


def _cls_data(n=40, classes=3, inputs=5, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, inputs)).astype("float32")
    y = rng.integers(0, classes, n)
    return x, y


def _sparse_xent(p, y):
    return -np.log(np.clip(p[np.arange(len(y)), y], 1e-7, 1 - 1e-7))


def _frozen(model):
    """An optimizer that leaves the weights as they are: the logged loss is the loss of the
    data under the initial weights."""
    return keras.optimizers.SGD(learning_rate=0.0)


# ------------------------------------------------------------------ the loss values
@pytest.mark.parametrize("batch_size", [40, 7, 1])
def test_fit_and_evaluate_loss_with_sample_weight(batch_size):
    x, y = _cls_data()
    w = np.random.default_rng(1).uniform(0, 3, len(x)).astype("float32")
    m = _model()
    m.compile(_frozen(m), loss="sparse_categorical_crossentropy")
    per = _sparse_xent(m.predict(x, verbose=0).astype(np.float64), y)
    expected = (per * w).sum() / len(x)
    h = m.fit(x, y, sample_weight=w, batch_size=batch_size, epochs=2, verbose=0)
    np.testing.assert_allclose(h.history["loss"], [expected] * 2, rtol=1e-5)
    np.testing.assert_allclose(m.evaluate(x, y, sample_weight=w, batch_size=batch_size,
                                          verbose=0), expected, rtol=1e-5)
    np.testing.assert_allclose(m.evaluate(x, y, batch_size=batch_size, verbose=0), per.mean(),
                               rtol=1e-5)
    # (N, 1) weights are the same weights
    np.testing.assert_allclose(m.evaluate(x, y, sample_weight=w[:, None], verbose=0), expected,
                               rtol=1e-5)


def test_weighted_step_matches_the_keras_gradient():
    """Weights 0 on the last samples and a full batch: one SGD step equals an unweighted step
    on the first samples with the learning rate scaled by k / N (the mean is over all N)."""
    x, y = _cls_data(n=24)
    k = 10
    w = np.r_[np.ones(k), np.zeros(len(x) - k)].astype("float32")
    a = _model()
    a.compile(keras.optimizers.SGD(0.5), loss="sparse_categorical_crossentropy")
    a.fit(x, y, sample_weight=w, batch_size=len(x), epochs=3, shuffle=False, verbose=0)
    b = _model()
    b.compile(keras.optimizers.SGD(0.5 * k / len(x)), loss="sparse_categorical_crossentropy")
    b.fit(x[:k], y[:k], batch_size=k, epochs=3, shuffle=False, verbose=0)
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_allclose(wa, wb, rtol=1e-4, atol=1e-6)
    # doubling every weight doubles the step
    c = _model()
    c.compile(keras.optimizers.SGD(0.25), loss="sparse_categorical_crossentropy")
    c.fit(x, y, sample_weight=2 * w, batch_size=len(x), epochs=3, shuffle=False, verbose=0)
    for wa, wc in zip(a.get_weights(), c.get_weights()):
        np.testing.assert_allclose(wa, wc, rtol=1e-4, atol=1e-6)


def test_class_weight_is_sample_weight_from_the_labels():
    x, y = _cls_data(n=30)
    cw = {0: 0.5, 1: 2.0}                     # class 2 keeps weight 1
    sw = np.array([cw.get(int(c), 1.0) for c in y], "float32")
    a = _model()
    a.compile(keras.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy")
    ha = a.fit(x, y, class_weight=cw, batch_size=8, epochs=3, verbose=0)
    b = _model()
    b.compile(keras.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy")
    hb = b.fit(x, y, sample_weight=sw, batch_size=8, epochs=3, verbose=0)
    np.testing.assert_allclose(ha.history["loss"], hb.history["loss"], rtol=1e-6)
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(wa, wb)
    # one-hot targets: the class is the argmax
    c = _model()
    c.compile(keras.optimizers.Adam(0.01), loss="categorical_crossentropy")
    hc = c.fit(x, np.eye(3)[y], class_weight=cw, batch_size=8, epochs=3, verbose=0)
    np.testing.assert_allclose(hc.history["loss"], ha.history["loss"], rtol=1e-5)


def test_class_weight_binary_targets():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(30, 5)).astype("float32")
    y = (rng.uniform(size=(30, 1)) > 0.6).astype("float32")
    m = _model(units=1, activation="sigmoid")
    m.compile(_frozen(m), loss="binary_crossentropy")
    p = np.clip(m.predict(x, verbose=0).astype(np.float64), 1e-7, 1 - 1e-7)
    per = -(y * np.log(p) + (1 - y) * np.log(1 - p))[:, 0]
    w = np.where(y[:, 0] == 1, 3.0, 1.0)
    h = m.fit(x, y, class_weight={1: 3.0}, batch_size=7, epochs=1, verbose=0)
    np.testing.assert_allclose(h.history["loss"][0], (per * w).mean(), rtol=1e-5)


def test_weighted_metrics_and_plain_metrics():
    x, y = _cls_data(n=33)
    w = np.random.default_rng(3).uniform(0, 2, len(x))
    m = _model()
    m.compile(_frozen(m), loss="sparse_categorical_crossentropy", metrics=["accuracy"],
              weighted_metrics=["accuracy", keras.metrics.SparseTopKCategoricalAccuracy(k=2)])
    p = m.predict(x, verbose=0)
    ok = (p.argmax(-1) == y).astype(float)
    top2 = ((p > p[np.arange(len(y)), y][:, None]).sum(-1) < 2).astype(float)
    res = m.evaluate(x, y, sample_weight=w, batch_size=10, verbose=0, return_dict=True)
    assert set(res) == {"loss", "accuracy", "weighted_accuracy",
                        "sparse_top_k_categorical_accuracy"}
    np.testing.assert_allclose(res["accuracy"], ok.mean(), rtol=1e-6)
    np.testing.assert_allclose(res["weighted_accuracy"], (ok * w).sum() / w.sum(), rtol=1e-6)
    np.testing.assert_allclose(res["sparse_top_k_categorical_accuracy"],
                               (top2 * w).sum() / w.sum(), rtol=1e-6)
    h = m.fit(x, y, sample_weight=w, batch_size=10, epochs=1, verbose=0)
    np.testing.assert_allclose(h.history["weighted_accuracy"], (ok * w).sum() / w.sum(),
                               rtol=1e-6)
    # without weights both are the plain accuracy (the fused step plan runs them)
    h = m.fit(x, y, batch_size=10, epochs=1, verbose=0)
    np.testing.assert_allclose(h.history["weighted_accuracy"], ok.mean(), rtol=1e-6)
    np.testing.assert_allclose(h.history["accuracy"], ok.mean(), rtol=1e-6)


def test_validation_data_with_sample_weight():
    x, y = _cls_data(n=30)
    vx, vy = _cls_data(n=12, seed=4)
    vw = np.random.default_rng(5).uniform(0, 2, 12)
    m = _model()
    m.compile(_frozen(m), loss="sparse_categorical_crossentropy",
              weighted_metrics=["accuracy"])
    h = m.fit(x, y, validation_data=(vx, vy, vw), batch_size=8, epochs=1, verbose=0)
    per = _sparse_xent(m.predict(vx, verbose=0).astype(np.float64), vy)
    np.testing.assert_allclose(h.history["val_loss"], [(per * vw).sum() / 12], rtol=1e-5)
    ok = (m.predict(vx, verbose=0).argmax(-1) == vy)
    np.testing.assert_allclose(h.history["val_accuracy"], [(ok * vw).sum() / vw.sum()],
                               rtol=1e-6)
    # validation_split keeps each sample's weight with it
    w = np.r_[np.ones(24), np.full(6, 3.0)]
    h = m.fit(x, y, sample_weight=w, validation_split=0.2, batch_size=8, epochs=1, verbose=0)
    per = _sparse_xent(m.predict(x[24:], verbose=0).astype(np.float64), y[24:])
    np.testing.assert_allclose(h.history["val_loss"], [3.0 * per.mean()], rtol=1e-5)


def test_shuffled_batches_keep_weights_with_samples():
    x, y = _cls_data(n=37)
    w = np.random.default_rng(6).uniform(0, 2, 37).astype("float32")
    data = data_adapter.adapt(x, y, w, 8, True, "fit")
    rng = np.random.default_rng(0)
    seen = []
    for xb, yb, wb in data.batches(rng):
        for xi, wi in zip(xb, wb):
            i = int(np.flatnonzero((x == xi).all(1))[0])
            assert wi == w[i]
            seen.append(i)
    assert sorted(seen) == list(range(37)) and seen != list(range(37))


class WeightedBatches(keras.utils.PyDataset):
    def __init__(self, x, y, w, bs, **kw):
        super().__init__(**kw)
        self.x, self.y, self.w, self.bs = x, y, w, bs

    def __len__(self):
        return -(-len(self.x) // self.bs)

    def __getitem__(self, i):
        s = slice(i * self.bs, (i + 1) * self.bs)
        return self.x[s], self.y[s], self.w[s]


def test_generators_and_pydatasets_yield_weights():
    x, y = _cls_data(n=24)
    w = np.random.default_rng(7).uniform(0, 2, 24).astype("float32")
    m = _model()
    m.compile(_frozen(m), loss="sparse_categorical_crossentropy")
    expected = m.evaluate(x, y, sample_weight=w, batch_size=8, verbose=0)

    def gen():
        for i in range(0, 24, 8):
            yield x[i:i + 8], y[i:i + 8], w[i:i + 8]
    h = m.fit(gen(), epochs=1, verbose=0)
    np.testing.assert_allclose(h.history["loss"], [expected], rtol=1e-6)
    h = m.fit(WeightedBatches(x, y, w, 8), epochs=1, verbose=0)
    np.testing.assert_allclose(h.history["loss"], [expected], rtol=1e-6)
    np.testing.assert_allclose(m.evaluate(WeightedBatches(x, y, w, 8), verbose=0), expected,
                               rtol=1e-6)
    # class_weight applies to the batches of a PyDataset too
    cw = {0: 2.0, 2: 0.5}
    sw = np.array([cw.get(int(c), 1.0) for c in y], "float32")

    class Plain(WeightedBatches):
        def __getitem__(self, i):
            return super().__getitem__(i)[:2]
    h = m.fit(Plain(x, y, w, 8), class_weight=cw, epochs=1, verbose=0)
    np.testing.assert_allclose(h.history["loss"],
                               [m.evaluate(x, y, sample_weight=sw, verbose=0)], rtol=1e-6)


def test_train_and_test_on_batch_with_weights():
    x, y = _cls_data(n=16)
    w = np.random.default_rng(8).uniform(0, 2, 16)
    m = _model()
    m.compile(_frozen(m), loss="sparse_categorical_crossentropy")
    per = _sparse_xent(m.predict(x, verbose=0).astype(np.float64), y)
    np.testing.assert_allclose(m.test_on_batch(x, y, sample_weight=w), (per * w).mean(),
                               rtol=1e-5)
    np.testing.assert_allclose(m.train_on_batch(x, y, sample_weight=w), (per * w).mean(),
                               rtol=1e-5)
    cw = {1: 4.0}
    np.testing.assert_allclose(m.train_on_batch(x, y, class_weight=cw),
                               (per * np.where(y == 1, 4.0, 1.0)).mean(), rtol=1e-5)


def test_multi_output_sample_weights():
    keras.set_seed(0)
    inp = keras.Input((4,))
    h = layers.Dense(6, activation="relu")(inp)
    a = layers.Dense(1, name="a")(h)
    b = layers.Dense(1, name="b")(h)
    m = keras.Model(inp, [a, b])
    m.compile(keras.optimizers.SGD(0.0), loss=["mse", "mae"])
    rng = np.random.default_rng(9)
    x = rng.normal(size=(20, 4)).astype("float32")
    ya, yb = rng.normal(size=(20, 1)), rng.normal(size=(20, 1))
    wa, wb = rng.uniform(0, 2, 20), rng.uniform(0, 2, 20)
    pa, pb = [p.astype(np.float64) for p in m.predict(x, verbose=0)]
    la = ((pa - ya) ** 2)[:, 0]
    lb = np.abs(pb - yb)[:, 0]
    res = m.evaluate(x, [ya, yb], sample_weight=[wa, wb], verbose=0, return_dict=True)
    np.testing.assert_allclose(res["a_loss"], (la * wa).mean(), rtol=1e-5)
    np.testing.assert_allclose(res["b_loss"], (lb * wb).mean(), rtol=1e-5)
    np.testing.assert_allclose(res["loss"], (la * wa).mean() + (lb * wb).mean(), rtol=1e-5)
    # one array weights every output
    res = m.evaluate(x, [ya, yb], sample_weight=wa, verbose=0, return_dict=True)
    np.testing.assert_allclose(res["loss"], (la * wa).mean() + (lb * wa).mean(), rtol=1e-5)


def test_the_fused_step_plan_steps_aside_only_for_weights():
    x, y = _cls_data(n=20)
    m = _model()
    m.compile("sgd", loss="sparse_categorical_crossentropy")
    m.fit(x[:2], y[:2], verbose=0)
    assert m._plannable(data_adapter.adapt(x, y, None, 8, True, "fit"))
    assert not m._plannable(data_adapter.adapt(x, y, np.ones(20), 8, True, "fit"))
    assert not m._plannable(data_adapter.adapt(x, y, None, 8, True, "fit", class_weight={0: 2.0}))
    # label smoothing stays on the plan (applied to the targets in the kernels)
    m.compile("sgd", loss=losses.CategoricalCrossentropy(label_smoothing=0.1))
    assert m._plannable(data_adapter.adapt(x, np.eye(3)[y], None, 8, True, "fit"))
    m.compile("sgd", loss=losses.CategoricalCrossentropy(reduction="sum"))
    assert not m._plannable(data_adapter.adapt(x, np.eye(3)[y], None, 8, True, "fit"))


def test_label_smoothing_plan_equals_tape_path():
    x, y = _cls_data(n=24)
    yo = np.eye(3)[y]
    loss = losses.CategoricalCrossentropy(label_smoothing=0.2)
    a = _model()
    a.compile(keras.optimizers.SGD(0.1), loss=loss)
    ha = a.fit(x, yo, batch_size=8, epochs=2, shuffle=False, verbose=0)     # the fused plan
    b = _model()
    b.compile(keras.optimizers.SGD(0.1), loss=loss)
    hb = b.fit(x, yo, sample_weight=np.ones(24), batch_size=8, epochs=2, shuffle=False,
               verbose=0)                                                     # the tape
    np.testing.assert_allclose(ha.history["loss"], hb.history["loss"], rtol=1e-5)
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_allclose(wa, wb, rtol=1e-4, atol=1e-6)


# ------------------------------------------------------------------ bad weights
def test_bad_weights_are_clear_errors():
    x, y = _cls_data(n=10)
    m = _model()
    m.compile("sgd", loss="sparse_categorical_crossentropy")
    with pytest.raises(ValueError, match="class_weight has key 3"):
        m.fit(x, y, class_weight={0: 1.0, 3: 2.0}, verbose=0)
    with pytest.raises(ValueError, match="class_weight has key 'a'"):
        m.fit(x, y, class_weight={"a": 1.0}, verbose=0)
    with pytest.raises(ValueError, match="class_weight\\[1\\]"):
        m.fit(x, y, class_weight={1: -1.0}, verbose=0)
    with pytest.raises(ValueError, match="class_weight must be a dict"):
        m.fit(x, y, class_weight=[1.0, 2.0], verbose=0)
    with pytest.raises(ValueError, match="9 entries but there are 10 samples"):
        m.fit(x, y, sample_weight=np.ones(9), verbose=0)
    with pytest.raises(ValueError, match="9 entries but there are 10 samples"):
        m.evaluate(x, y, sample_weight=np.ones(9), verbose=0)
    with pytest.raises(ValueError, match="negative"):
        m.fit(x, y, sample_weight=-np.ones(10), verbose=0)
    with pytest.raises(ValueError, match="NaN"):
        m.fit(x, y, sample_weight=np.r_[np.ones(9), np.nan], verbose=0)
    with pytest.raises(ValueError, match="scalar"):
        m.fit(x, y, sample_weight=2.0, verbose=0)
    with pytest.raises(ValueError, match="numeric"):
        m.fit(x, y, sample_weight=np.array(["a"] * 10), verbose=0)
    with pytest.raises(ValueError, match="at the same time"):
        m.fit(x, y, sample_weight=np.ones(10), class_weight={0: 1.0}, verbose=0)
    with pytest.raises(ValueError, match="sample_weight"):
        m.fit(x, y, sample_weight=np.ones((10, 4)), verbose=0)
    with pytest.raises(ValueError, match="9 entries but there are 10 samples"):
        m.fit(x, y, validation_data=(x, y, np.ones(9)), verbose=0)

    def gen():
        yield x, y, np.ones(3)
    with pytest.raises(ValueError, match="3 entries but there are 10 samples"):
        m.fit(gen(), verbose=0)


def test_class_weight_needs_one_output():
    keras.set_seed(0)
    inp = keras.Input((4,))
    m = keras.Model(inp, [layers.Dense(1, name="a")(inp), layers.Dense(1, name="b")(inp)])
    m.compile("sgd", loss="mse")
    x = np.zeros((4, 4), "float32")
    with pytest.raises(ValueError, match="single output"):
        m.fit(x, [np.zeros((4, 1)), np.zeros((4, 1))], class_weight={0: 1.0}, verbose=0)


# ------------------------------------------------------------------ constraints
def _max_norm(w, m, axis=0):
    n = np.sqrt((w * w).sum(axis, keepdims=True))
    return w * (np.clip(n, 0, m) / (1e-7 + n))


def _unit_norm(w, axis=0):
    return w / (1e-7 + np.sqrt((w * w).sum(axis, keepdims=True)))


def _min_max(w, lo, hi, rate, axis=0):
    n = np.sqrt((w * w).sum(axis, keepdims=True))
    return w * ((rate * np.clip(n, lo, hi) + (1 - rate) * n) / (1e-7 + n))


CONSTRAINTS = [
    (lambda: constraints.max_norm(0.3), lambda w: _max_norm(w, 0.3)),
    (lambda: constraints.MaxNorm(max_value=0.2, axis=[0, 1, 2]),
     lambda w: _max_norm(w, 0.2, (0, 1, 2))),
    (lambda: constraints.non_neg(), lambda w: w * (w >= 0)),
    (lambda: constraints.unit_norm(), _unit_norm),
    (lambda: constraints.min_max_norm(0.5, 0.8, rate=0.7), lambda w: _min_max(w, 0.5, 0.8, 0.7)),
]


def test_constraint_functions_against_numpy():
    rng = np.random.default_rng(10)
    w = rng.normal(size=(3, 3, 2, 4))
    for make, ref in CONSTRAINTS:
        np.testing.assert_allclose(make()(w), ref(w), rtol=1e-6, atol=1e-12)
    c = constraints.get({"class_name": "MinMaxNorm", "config": {"min_value": 0.1}})
    assert c.get_config() == {"min_value": 0.1, "max_value": 1.0, "rate": 1.0, "axis": 0}
    assert isinstance(constraints.get("non_neg"), constraints.NonNeg)
    with pytest.raises(ValueError, match="unknown constraint"):
        constraints.get("positive")
    with pytest.raises(ValueError, match="max_value"):
        constraints.MaxNorm(max_value=-1)
    with pytest.raises(ValueError, match="min_value"):
        constraints.MinMaxNorm(min_value=2.0, max_value=1.0)


@pytest.mark.parametrize("case", range(len(CONSTRAINTS)))
@pytest.mark.parametrize("layer", ["dense", "conv"])
@pytest.mark.parametrize("opt", ["plain", "clipnorm"])
def test_constraint_applied_after_each_step(case, layer, opt):
    """A constrained model's weights after one step are the constraint of the weights an
    unconstrained twin reaches from the same start."""
    make, ref = CONSTRAINTS[case]
    if layer == "dense" and case == 1:
        pytest.skip("axis (0, 1, 2) is for a conv kernel")
    rng = np.random.default_rng(11)
    if layer == "dense":
        x = rng.normal(size=(16, 5)).astype("float32")
        build = lambda **kw: [layers.Dense(4, **kw)]  # noqa: E731
        shape = (5,)
    else:
        x = rng.normal(size=(16, 6, 6, 2)).astype("float32")
        build = lambda **kw: [layers.Conv2D(4, 3, **kw), layers.Flatten()]  # noqa: E731
        shape = (6, 6, 2)
    y = rng.normal(size=(16, 4 if layer == "dense" else 64)).astype("float32")

    def model(**kw):
        keras.set_seed(3)
        m = keras.Sequential([keras.Input(shape)] + build(**kw))
        o = keras.optimizers.SGD(0.5, clipnorm=100.0) if opt == "clipnorm" else \
            keras.optimizers.SGD(0.5)
        m.compile(o, loss="mse")
        return m
    free = model()
    con = model(kernel_constraint=make(), bias_constraint=constraints.non_neg())
    w0 = [np.array(w) for w in con.get_weights()]
    for a, b in zip(w0, free.get_weights()):
        np.testing.assert_array_equal(a, b)
    free.fit(x, y, batch_size=16, epochs=1, verbose=0)
    con.fit(x, y, batch_size=16, epochs=1, verbose=0)
    k_free, b_free = free.get_weights()
    k_con, b_con = con.get_weights()
    np.testing.assert_allclose(k_con, ref(k_free.astype(np.float64)), rtol=1e-5, atol=1e-7)
    # (the two models may take different routes to their gradients: sums in another order)
    np.testing.assert_allclose(b_con, np.maximum(b_free, 0), rtol=1e-5, atol=1e-7)
    # the config keeps them
    cfg = con.layers[0].get_config()
    assert cfg["kernel_constraint"]["class_name"] == type(make()).__name__
    assert cfg["bias_constraint"]["class_name"] == "NonNeg"


def test_constraint_in_a_custom_training_loop_and_add_weight():
    class Scale(layers.Layer):
        def build(self, input_shape):
            self.s = self.add_weight(shape=(input_shape[-1],), initializer="ones",
                                     constraint=constraints.MaxNorm(1.0))

        def call(self, x):
            return keras.ops.multiply(x, self.s)

    layer = Scale()
    x = np.ones((4, 3), "float32")
    layer(x)
    opt = keras.optimizers.Adam(0.1)
    with keras.GradientTape() as tape:
        loss = keras.ops.sum(keras.ops.square(keras.ops.subtract(layer(x), 5.0)))
    g = tape.gradient(loss, layer.trainable_weights)
    opt.apply_gradients(zip(g, layer.trainable_weights))
    assert np.linalg.norm(np.asarray(layer.s)) == pytest.approx(1.0, rel=1e-5)
    with pytest.raises(ValueError, match="unknown constraint"):
        layers.Dense(2, kernel_constraint="nope")


def test_save_and_load_keep_weighted_metrics_losses_and_constraints(tmp_path):
    x, y = _cls_data(n=20)
    w = np.random.default_rng(12).uniform(0, 2, 20)
    m = _model(kernel_constraint=constraints.max_norm(1.5))
    m.compile("adam", loss=losses.CategoricalCrossentropy(label_smoothing=0.1),
              metrics=["accuracy"], weighted_metrics=["accuracy"])
    m.fit(x, np.eye(3)[y], sample_weight=w, epochs=1, verbose=0)
    p = str(tmp_path / "m.keras")
    m.save(p)
    back = keras.models.load_model(p)
    assert back.layers[-1].kernel_constraint.get_config() == {"max_value": 1.5, "axis": 0}
    assert back.loss.label_smoothing == 0.1
    a = m.evaluate(x, np.eye(3)[y], sample_weight=w, verbose=0, return_dict=True)
    b = back.evaluate(x, np.eye(3)[y], sample_weight=w, verbose=0, return_dict=True)
    assert set(a) == set(b) == {"loss", "accuracy", "weighted_accuracy"}
    for k in a:
        np.testing.assert_allclose(a[k], b[k], rtol=1e-6)
