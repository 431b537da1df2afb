"""Subclassed layers and models trained by autodiff, custom train/test steps, the
data adapter (generators, PyDataset), saving of subclassed models, and compile's
arguments."""
import numpy as np
import pytest

import fastdl
import fastdl as keras
from fastdl import layers, ops

from helpers import numeric_gradient


class MyDense(layers.Layer):
    def __init__(self, units=8, activation=None, **kw):
        super().__init__(**kw)
        self.units = units
        self.act = activation

    def build(self, input_shape):
        self.w = self.add_weight(shape=(input_shape[-1], self.units), initializer="glorot_uniform")
        self.b = self.add_weight(shape=(self.units,), initializer="zeros")

    def call(self, inputs):
        y = ops.matmul(inputs, self.w) + self.b
        return ops.tanh(y) if self.act == "tanh" else y


def test_custom_layer_gradients_match_finite_differences():
    rng = np.random.default_rng(0)
    l = MyDense(3, activation="tanh", dtype="float64")
    x = rng.standard_normal((4, 5))
    y = l(x, training=True)
    dy = rng.standard_normal(y.shape)
    dx = l.backward(dy)
    f = lambda: float(np.sum(l(x) * dy))  # noqa: E731
    for w, g in zip(l.trainable_weights, l.gradients):
        np.testing.assert_allclose(g, numeric_gradient(f, w), rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(dx, numeric_gradient(f, x), rtol=1e-6, atol=1e-8)


def test_custom_layer_in_a_model_trains_like_the_builtin():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((96, 5)).astype(np.float32)
    y = (x @ rng.standard_normal((5, 1))).astype(np.float32)
    ws, losses = [], []
    for cls in (MyDense, None):
        fastdl.set_seed(0)
        d = cls(1) if cls else layers.Dense(1)
        m = keras.Sequential([keras.Input((5,)), d])
        m.compile(optimizer="sgd", loss="mse")
        h = m.fit(x, y, epochs=5, batch_size=32, verbose=0, shuffle=False)
        ws.append(m.get_weights())
        losses.append(h.history["loss"])
    for a, b in zip(*ws):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert losses[0][-1] < losses[0][0]


def test_subclassed_model_tracks_layers_and_weights():
    class M(keras.Model):
        def __init__(self):
            super().__init__()
            self.a = MyDense(4)
            self.b = layers.Dense(2)
            self.scale = self.add_weight(shape=(), initializer="ones", name="scale")

        def call(self, x, training=False):
            return self.b(ops.relu(self.a(x))) * self.scale

    m = M()
    x = np.ones((3, 6), np.float32)
    assert m(x).shape == (3, 2)
    assert len(m.trainable_weights) == 5
    assert m.layers == [m.a, m.b]
    m.compile(optimizer="adam", loss="mse")
    before = [w.copy() for w in m.trainable_weights]
    m.fit(x, np.ones((3, 2), np.float32), epochs=2, verbose=0)
    assert all(not np.array_equal(a, b) for a, b in zip(before, m.trainable_weights))


def test_add_loss_and_model_losses_are_trained():
    class Reg(layers.Layer):
        def call(self, x):
            self.add_loss(0.5 * ops.sum(ops.square(x)))
            return x

    i = keras.Input((3,))
    d = layers.Dense(3, kernel_initializer="ones")
    m = keras.Model(i, Reg()(d(i)))
    x = np.ones((2, 3), np.float32)
    m(x)
    assert len(m.losses) == 1 and float(m.losses[0]) == pytest.approx(0.5 * np.sum((x @ d.kernel) ** 2))
    m.compile(optimizer="sgd", loss=None)
    before = float(np.sum(d.kernel))
    m.fit(x, epochs=3, verbose=0)        # trains on the added loss alone
    assert float(np.sum(d.kernel)) < before


def test_weight_regularizer_through_add_weight():
    regularizers = pytest.importorskip("fastdl.regularizers")

    class R(layers.Layer):
        def build(self, s):
            self.w = self.add_weight(shape=(s[-1], 2), initializer="ones",
                                     regularizer=regularizers.l2(0.1))

        def call(self, x):
            return ops.matmul(x, self.w)
    l = R()
    l(np.ones((1, 3), np.float32))
    assert float(l.losses[0]) == pytest.approx(0.1 * 6.0)


def test_custom_train_and_test_step_with_metric_trackers():
    class M(keras.Model):
        def __init__(self):
            super().__init__()
            self.d = layers.Dense(1)
            self.tracker = keras.metrics.Mean(name="my_loss")

        def call(self, x):
            return self.d(x)

        def train_step(self, data):
            x, y = data
            with keras.GradientTape() as tape:
                loss = ops.mean(ops.square(self(x, training=True) - y))
            grads = tape.gradient(loss, self.trainable_weights)
            self.optimizer.apply_gradients(zip(grads, self.trainable_weights))
            self.tracker.update_state(loss)
            return {"my_loss": self.tracker.result()}

        def test_step(self, data):
            x, y = data
            self.tracker.update_state(ops.mean(ops.square(self(x) - y)))
            return {"my_loss": self.tracker.result()}

        @property
        def metrics(self):
            return [self.tracker]

    rng = np.random.default_rng(3)
    x = rng.standard_normal((64, 4)).astype(np.float32)
    y = x.sum(1, keepdims=True)
    m = M()
    m.compile(optimizer=keras.optimizers.SGD(0.05))
    h = m.fit(x, y, epochs=4, batch_size=16, verbose=0, validation_data=(x, y))
    assert set(h.history) == {"my_loss", "val_my_loss"}
    assert h.history["my_loss"][-1] < h.history["my_loss"][0] / 2
    assert m.evaluate(x, y, verbose=0) == pytest.approx(h.history["val_my_loss"][-1], rel=1e-5)


def test_compute_loss_override_is_used_by_default_train_step():
    class M(keras.Model):
        def __init__(self):
            super().__init__()
            self.d = layers.Dense(1, kernel_initializer="zeros")
            self.calls = 0

        def call(self, x):
            return self.d(x)

        def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
            self.calls += 1
            return ops.mean(ops.abs(y_pred - y))

    m = M()
    m.compile(optimizer="sgd")
    m.fit(np.ones((8, 2), np.float32), np.ones((8, 1), np.float32), epochs=1, batch_size=4, verbose=0)
    assert m.calls == 2


def test_python_generator_and_pydataset_data():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 5)).astype(np.float32)
    y = (x.sum(1) > 0).astype(np.int64)

    def gen():
        while True:
            for i in range(0, 64, 16):
                yield x[i:i + 16], y[i:i + 16]

    class DS:
        def __init__(self):
            self.ends = 0

        def __len__(self):
            return 4

        def __getitem__(self, i):
            return x[i * 16:(i + 1) * 16], y[i * 16:(i + 1) * 16]

        def on_epoch_end(self):
            self.ends += 1

    m = keras.Sequential([keras.Input((5,)), layers.Dense(2, activation="softmax")])
    m.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    h = m.fit(gen(), steps_per_epoch=4, epochs=2, verbose=0)
    assert len(h.history["loss"]) == 2
    ds = DS()
    m.fit(ds, epochs=3, verbose=0)
    assert ds.ends == 3
    r1 = m.evaluate(ds, verbose=0)
    r2 = m.evaluate(x, y, batch_size=16, verbose=0)
    np.testing.assert_allclose(r1, r2, rtol=1e-6)
    np.testing.assert_array_equal(m.predict(ds, verbose=0), m.predict(x, verbose=0))
    with pytest.raises(ValueError, match="y must not be given"):
        m.fit(ds, y, verbose=0)


def test_subclassed_model_saves_and_loads(tmp_path):
    @keras.saving.register_keras_serializable(package="tests")
    class Net(keras.Model):
        def __init__(self, units=4, **kw):
            super().__init__(**kw)
            self.units = units
            self.d1 = layers.Dense(units, activation="relu")
            self.d2 = layers.Dense(1)

        def call(self, x):
            return self.d2(self.d1(x))

    x = np.random.default_rng(0).standard_normal((10, 3)).astype(np.float32)
    m = Net(6)
    m.compile(optimizer="adam", loss="mse")
    m.fit(x, x[:, :1], epochs=1, verbose=0)
    m.save(tmp_path / "net.keras")
    back = keras.models.load_model(tmp_path / "net.keras")
    assert type(back) is Net and back.units == 6
    np.testing.assert_array_equal(back.predict(x, verbose=0), m.predict(x, verbose=0))


def test_unknown_custom_class_error_names_it(tmp_path):
    class Lonely(keras.Model):
        def __init__(self, **kw):
            super().__init__(**kw)
            self.d = layers.Dense(1)

        def call(self, x):
            return self.d(x)
    m = Lonely()
    m(np.ones((1, 2), np.float32))
    m.save(tmp_path / "l.keras")
    with pytest.raises(ValueError, match="'Lonely'.*custom_objects"):
        keras.models.load_model(tmp_path / "l.keras")
    back = keras.models.load_model(tmp_path / "l.keras", custom_objects={"Lonely": Lonely})
    np.testing.assert_array_equal(back.predict(np.ones((1, 2), np.float32), verbose=0),
                                  m.predict(np.ones((1, 2), np.float32), verbose=0))


def test_compile_refuses_what_it_does_not_do():
    m = keras.Sequential([keras.Input((2,)), layers.Dense(1)])
    with pytest.raises(NotImplementedError, match="jit_compile"):
        m.compile(optimizer="sgd", loss="mse", jit_compile=True)
    with pytest.raises(TypeError, match="unexpected keyword"):
        m.compile(optimizer="sgd", loss="mse", bogus=1)
    with pytest.raises(ValueError, match="unknown loss"):
        m.compile(optimizer="sgd", loss="not_a_loss")
    m.compile(optimizer="sgd", loss="mse", run_eagerly=True, jit_compile=False)
    assert m.run_eagerly is True


def test_layer_without_call_and_bad_layer_kwargs():
    class NoCall(layers.Layer):
        pass
    with pytest.raises(NotImplementedError, match="no call method"):
        NoCall()(np.ones((1, 2)))
    with pytest.raises(TypeError, match="unexpected keyword"):
        layers.Dense(3, bogus=True)


def test_untraceable_numpy_call_is_an_error_in_fit():
    class Bad(layers.Layer):
        def build(self, s):
            self.w = self.add_weight(shape=(s[-1],), initializer="ones")

        def call(self, x):
            return x * np.exp(self.w)      # NumPy on a weight: the gradient would be lost

    m = keras.Sequential([keras.Input((3,)), Bad(), layers.Dense(1)])
    m.compile(optimizer="sgd", loss="mse")
    with pytest.raises(TypeError, match="numpy.exp"):
        m.fit(np.ones((4, 3), np.float32), np.ones((4, 1), np.float32), verbose=0)


def test_gradient_tape_errors():
    d = layers.Dense(2)
    x = np.ones((3, 2), np.float32)
    d(x)
    with keras.GradientTape() as tape:
        y = d(x)
    with pytest.raises(ValueError, match="scalar"):
        tape.gradient(y, d.trainable_weights)
    with keras.GradientTape() as tape:
        loss = ops.sum(d(x))
    tape.gradient(loss, d.trainable_weights)
    with pytest.raises(RuntimeError, match="only once"):
        tape.gradient(loss, d.trainable_weights)
    with keras.GradientTape() as tape:
        pass
    with pytest.raises(ValueError, match="not computed under this tape"):
        tape.gradient(np.float32(1.0), d.trainable_weights)
    with keras.GradientTape(persistent=True) as tape:
        loss = ops.sum(d(x))
    g1 = tape.gradient(loss, d.trainable_weights)
    g2 = tape.gradient(loss, d.trainable_weights)
    for a, b in zip(g1, g2):
        np.testing.assert_array_equal(a, b)


def test_frozen_layer_is_not_trained():
    i = keras.Input((3,))
    frozen = layers.Dense(3)
    m = keras.Model(i, layers.Dense(1)(frozen(i)))
    frozen.trainable = False
    assert len(m.trainable_weights) == 2 and len(m.non_trainable_weights) == 2
    m.compile(optimizer="sgd", loss="mse")
    before = frozen.get_weights()
    m.fit(np.ones((4, 3), np.float32), np.zeros((4, 1), np.float32), epochs=1, verbose=0)
    for a, b in zip(before, frozen.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_namespace_serves_keras_programs():
    for name in ("Sequential", "Model", "Input", "Layer", "GradientTape", "layers", "models",
                 "ops", "losses", "metrics", "optimizers", "callbacks", "activations",
                 "initializers", "datasets", "saving"):
        assert getattr(keras, name) is not None
    assert keras.Input is layers.Input
