"""fastdl.regularizers: values, Keras defaults, config round trips, gradients."""
import numpy as np
import pytest

from fastdl import ops, regularizers
from fastdl._tape import GradientTape, Tensor

W = np.array([[1.0, -2.0, 0.5], [3.0, 0.0, -4.0]])


def test_values_against_numpy():
    assert regularizers.L1()(W) == pytest.approx(0.01 * np.abs(W).sum())
    assert regularizers.L2()(W) == pytest.approx(0.01 * (W ** 2).sum())
    assert regularizers.L1(0.3)(W) == pytest.approx(0.3 * np.abs(W).sum())
    assert regularizers.L1L2(l1=0.1, l2=0.2)(W) == pytest.approx(
        0.1 * np.abs(W).sum() + 0.2 * (W ** 2).sum())
    assert regularizers.L1L2()(W) == 0.0
    assert np.ndim(regularizers.L2()(W)) == 0


def test_keras_defaults_and_aliases():
    assert regularizers.L1().l1 == 0.01 and regularizers.L2().l2 == 0.01
    r = regularizers.L1L2()
    assert (r.l1, r.l2) == (0.0, 0.0)                  # Keras 3: L1L2 defaults to zeros
    assert regularizers.l1 is regularizers.L1 and regularizers.l2 is regularizers.L2
    assert regularizers.l1_l2 is regularizers.L1L2
    assert regularizers.L1(None).l1 == 0.01
    with pytest.raises(ValueError):
        regularizers.L2(-1.0)
    with pytest.raises(ValueError):
        regularizers.L1("big")


def test_config_round_trip_and_get():
    for r in (regularizers.L1(0.2), regularizers.L2(0.3), regularizers.L1L2(0.1, 0.4),
              regularizers.OrthogonalRegularizer(0.5, "columns")):
        again = type(r).from_config(r.get_config())
        assert again.get_config() == r.get_config()
        d = regularizers.get(regularizers.serialize(r))
        assert type(d) is type(r) and d.get_config() == r.get_config()
    assert regularizers.get(None) is None
    assert isinstance(regularizers.get("l2"), regularizers.L2)
    assert isinstance(regularizers.get("L1L2"), regularizers.L1L2)
    assert regularizers.get({"class_name": "L1", "config": {"l1": 0.5}}).l1 == 0.5
    fn = lambda x: 0.0  # noqa: E731
    assert regularizers.get(fn) is fn
    r = regularizers.L2()
    assert regularizers.get(r) is r
    with pytest.raises(ValueError):
        regularizers.get("nope")
    with pytest.raises(ValueError):
        regularizers.get(3)
    with pytest.raises(NotImplementedError):
        regularizers.Regularizer().get_config()
    assert regularizers.Regularizer()(W) == 0.0


def test_gradients_through_the_tape():
    w = W.copy()
    with GradientTape() as tape:
        tape.watch(w)
        loss = regularizers.L1L2(l1=0.1, l2=0.2)(w)
    assert isinstance(loss, Tensor)
    np.testing.assert_allclose(tape.gradient(loss, w), 0.1 * np.sign(w) + 0.4 * w)


def test_orthogonal_regularizer():
    q = np.linalg.qr(np.random.default_rng(0).standard_normal((4, 4)))[0]
    assert regularizers.OrthogonalRegularizer()(q) == pytest.approx(0.0, abs=1e-12)
    x = np.array([[1.0, 0.0], [1.0, 1.0]])
    cos = 1 / np.sqrt(2)
    assert regularizers.OrthogonalRegularizer(1.0)(x) == pytest.approx(2 * cos / 2)
    with pytest.raises(ValueError):
        regularizers.OrthogonalRegularizer()(np.ones(3))
    with pytest.raises(ValueError):
        regularizers.OrthogonalRegularizer(mode="diag")


def test_float32_weights_give_float32_penalty():
    w = W.astype(np.float32)
    assert np.asarray(regularizers.L2()(w)).dtype == np.float32
    assert np.asarray(regularizers.L1L2(0.1, 0.1)(w)).dtype == np.float32
    assert np.asarray(ops.sum(w)).dtype == np.float32


@pytest.mark.parametrize("kind", ["sequential", "functional"])
def test_activity_regularizer_adds_its_penalty_to_loss_and_gradients(kind):
    # Keras 3: regularizer(output) is added to the losses at every call (not divided by the
    # batch size); fit's logged loss and its step include it.
    import fastdl as keras
    from fastdl import layers as L
    rng = np.random.default_rng(0)
    x = rng.random((8, 5), dtype=np.float32)
    y = rng.integers(0, 3, 8)

    def make(reg):
        keras.utils.set_random_seed(1)
        if kind == "sequential":
            m = keras.Sequential([L.Input((5,)), L.Dense(4, activation="relu",
                                                         activity_regularizer=reg),
                                  L.Dense(3, activation="softmax")])
        else:
            i = keras.Input((5,))
            h = L.Dense(4, activation="relu", activity_regularizer=reg)(i)
            m = keras.Model(i, L.Dense(3, activation="softmax")(h))
        m.compile(optimizer=keras.optimizers.SGD(0.1), loss="sparse_categorical_crossentropy")
        return m

    m, ref = make(keras.regularizers.L2(0.01)), make(None)
    # the reference step: the same penalty added by hand under a tape
    loss_fn = keras.losses.SparseCategoricalCrossentropy()
    with keras.GradientTape() as tape:
        out = ref(x, training=True)
        dense1 = [l for l in ref.layers if isinstance(l, L.Dense)][0]
        penalty = keras.ops.multiply(0.01, keras.ops.sum(keras.ops.square(dense1(x))))
        total = keras.ops.add(loss_fn(y, out), penalty)
    grads = tape.gradient(total, ref.trainable_weights)
    hist = m.fit(x, y, batch_size=8, epochs=1, verbose=0, shuffle=False)
    np.testing.assert_allclose(hist.history["loss"][0], float(np.asarray(total)), rtol=1e-5)
    for w, w0, g in zip(m.trainable_weights, ref.trainable_weights, grads):
        np.testing.assert_allclose(np.asarray(w), np.asarray(w0) - 0.1 * np.asarray(g),
                                   rtol=1e-5, atol=1e-6)
    assert len(m.losses) == 1
    cfg = [l for l in m.layers if isinstance(l, L.Dense)][0].get_config()
    assert cfg["activity_regularizer"]["class_name"] == "L2"
    again = type(m).from_config(m.get_config())
    assert [l for l in again.layers if isinstance(l, L.Dense)][0].activity_regularizer.l2 == 0.01


def test_activity_regularizer_on_a_custom_layer():
    import fastdl as keras

    class Scale(keras.layers.Layer):
        def __init__(self, **kw):
            super().__init__(activity_regularizer="l1", **kw)

        def build(self, s):
            self.w = self.add_weight(shape=(s[-1],), initializer="ones")

        def call(self, x):
            return x * self.w

    layer = Scale()
    out = layer(np.full((2, 3), -2.0, np.float32))
    assert len(layer.losses) == 1
    np.testing.assert_allclose(float(np.asarray(layer.losses[0])), 0.01 * 12.0, rtol=1e-6)
    layer(np.ones((1, 3), np.float32))
    assert len(layer.losses) == 1   # the last call's only
    np.testing.assert_allclose(float(np.asarray(layer.losses[0])), 0.01 * 3.0, rtol=1e-6)
