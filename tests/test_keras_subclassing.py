"""The Keras guide "Making new layers and models via subclassing", as small programs."""
import importlib.util

import numpy as np
import pytest

import fastdl as keras
from fastdl import layers, ops


def _has(module, attr=None):
    if importlib.util.find_spec(f"fastdl.{module}") is None:
        return False
    if attr is None:
        return True
    return hasattr(importlib.import_module(f"fastdl.{module}"), attr)


needs_random = pytest.mark.skipif(not (_has("random", "normal") and _has("random", "SeedGenerator")),
                                  reason="fastdl.random (normal, SeedGenerator) is not there yet")
needs_regularizers = pytest.mark.skipif(not _has("regularizers", "l2"),
                                        reason="fastdl.regularizers is not there yet")


# ----------------------------------------------------------------- state and weights
class Linear(keras.layers.Layer):
    def __init__(self, units=32, input_dim=32):
        super().__init__()
        self.w = self.add_weight(shape=(input_dim, units), initializer="random_normal",
                                 trainable=True)
        self.b = self.add_weight(shape=(units,), initializer="zeros", trainable=True)

    def call(self, inputs):
        return ops.matmul(inputs, self.w) + self.b


def test_layer_with_weights_created_in_init():
    x = ops.ones((2, 2))
    linear_layer = Linear(4, 2)
    y = linear_layer(x)
    assert np.asarray(y).shape == (2, 4)
    assert linear_layer.weights[0] is linear_layer.w and linear_layer.weights[1] is linear_layer.b
    assert len(linear_layer.weights) == 2
    np.testing.assert_allclose(np.asarray(y), np.ones((2, 2)) @ np.asarray(linear_layer.w),
                               rtol=1e-6)


class ComputeSum(keras.layers.Layer):
    def __init__(self, input_dim):
        super().__init__()
        self.total = self.add_weight(initializer="zeros", shape=(input_dim,), trainable=False)

    def call(self, inputs):
        self.total.assign_add(ops.sum(inputs, axis=0))
        return self.total


def test_non_trainable_weight_accumulates_with_assign_add():
    x = ops.ones((2, 2))
    my_sum = ComputeSum(2)
    y = my_sum(x)
    np.testing.assert_array_equal(np.asarray(y), [2.0, 2.0])
    y = my_sum(x)
    np.testing.assert_array_equal(np.asarray(y), [4.0, 4.0])
    assert len(my_sum.weights) == 1
    assert len(my_sum.non_trainable_weights) == 1
    assert my_sum.trainable_weights == []


def test_non_trainable_weight_by_flag():
    layer = keras.layers.Layer()
    t = layer.add_weight(shape=(3,), initializer="ones", trainable=False)
    assert len(layer.weights) == 1 and len(layer.trainable_weights) == 0
    assert np.asarray(layer.non_trainable_weights[0]).tolist() == [1.0, 1.0, 1.0]
    assert t is layer.non_trainable_weights[0]


# ----------------------------------------------------------------- deferred build
class LazyLinear(keras.layers.Layer):
    def __init__(self, units=32, **kwargs):
        super().__init__(**kwargs)
        self.units = units

    def build(self, input_shape):
        self.w = self.add_weight(shape=(input_shape[-1], self.units),
                                 initializer="random_normal", trainable=True)
        self.b = self.add_weight(shape=(self.units,), initializer="random_normal",
                                 trainable=True)

    def call(self, inputs):
        return ops.matmul(inputs, self.w) + self.b

    def get_config(self):
        config = super().get_config()
        config.update({"units": self.units})
        return config


def test_build_is_deferred_until_the_first_call():
    linear_layer = LazyLinear(32)
    assert not linear_layer.built
    assert linear_layer.weights == []
    y = linear_layer(np.ones((2, 5), "float32"))
    assert linear_layer.built
    assert linear_layer.w.shape == (5, 32)
    assert np.asarray(y).shape == (2, 32)


def test_build_on_a_symbolic_input():
    linear_layer = LazyLinear(3)
    out = linear_layer(keras.Input(shape=(7,)))
    assert tuple(out.shape) == (None, 3)
    assert linear_layer.w.shape == (7, 3)


def test_first_eager_call_runs_call_once():
    seen = []

    class Recorder(keras.layers.Layer):
        def call(self, inputs):
            seen.append(tuple(inputs.shape))
            return inputs * 2.0

    Recorder()(np.ones((3, 2), "float32"))
    assert seen == [(3, 2)]


# ----------------------------------------------------------------- composition
class MLPBlock(keras.layers.Layer):
    def __init__(self):
        super().__init__()
        self.linear_1 = LazyLinear(32)
        self.linear_2 = LazyLinear(32)
        self.linear_3 = LazyLinear(1)

    def call(self, inputs):
        x = self.linear_1(inputs)
        x = keras.activations.relu(x)
        x = self.linear_2(x)
        x = keras.activations.relu(x)
        return self.linear_3(x)


def test_layers_are_recursively_composable():
    mlp = MLPBlock()
    y = mlp(ops.ones(shape=(3, 64)))
    assert np.asarray(y).shape == (3, 1)
    assert len(mlp.weights) == 6
    assert len(mlp.trainable_weights) == 6


def test_layers_appended_to_a_list_attribute_are_tracked():
    class Stack(keras.Model):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.blocks = []
            for _ in range(2):
                self.blocks.append(layers.Dense(4, activation="relu"))
            self.head = layers.Dense(1)

        def call(self, inputs):
            x = inputs
            for block in self.blocks:
                x = block(x)
            return self.head(x)

    model = Stack()
    x = np.ones((4, 3), "float32")
    model(x)
    assert len(model.trainable_weights) == 6
    before = model.blocks[0].get_weights()[0]
    model.compile(optimizer="sgd", loss="mse")
    model.fit(x, np.ones((4, 1), "float32"), verbose=0)
    assert not np.array_equal(before, model.blocks[0].get_weights()[0])


def test_layers_in_a_dict_attribute_are_tracked():
    class Heads(keras.layers.Layer):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.heads = {"a": layers.Dense(4), "b": layers.Dense(2)}

        def call(self, inputs):
            return self.heads["b"](self.heads["a"](inputs))

    layer = Heads()
    layer(np.ones((2, 3), "float32"))
    assert len(layer.trainable_weights) == 4


def test_layers_in_a_list_assigned_at_once_are_tracked():
    class Stack(keras.layers.Layer):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.blocks = [layers.Dense(4) for _ in range(3)]

        def call(self, inputs):
            for block in self.blocks:
                inputs = block(inputs)
            return inputs

    layer = Stack()
    layer(np.ones((2, 3), "float32"))
    assert len(layer.trainable_weights) == 6


def test_mlp_block_trains_in_a_model():
    inputs = keras.Input(shape=(4,))
    outputs = MLPBlock()(inputs)
    model = keras.Model(inputs, outputs)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((32, 4)).astype("float32")
    y = x.sum(1, keepdims=True)
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mse")
    h = model.fit(x, y, epochs=8, batch_size=8, verbose=0)
    assert h.history["loss"][-1] < 0.5 * h.history["loss"][0]


# ----------------------------------------------------------------- add_loss
class ActivityRegularizationLayer(keras.layers.Layer):
    def __init__(self, rate=1e-2):
        super().__init__()
        self.rate = rate

    def call(self, inputs):
        self.add_loss(self.rate * ops.mean(inputs))
        return inputs


class OuterLayer(keras.layers.Layer):
    def __init__(self):
        super().__init__()
        self.activity_reg = ActivityRegularizationLayer(1e-2)

    def call(self, inputs):
        return self.activity_reg(inputs)


def test_add_loss_values_are_reset_on_each_call():
    layer = OuterLayer()
    assert len(layer.losses) == 0
    _ = layer(ops.zeros((1, 1)))
    assert len(layer.losses) == 1
    _ = layer(ops.ones((2, 3)))
    assert len(layer.losses) == 1
    np.testing.assert_allclose(float(np.asarray(layer.losses[0])), 1e-2, rtol=1e-6)


@needs_regularizers
def test_kernel_regularizer_losses():
    class OuterLayerWithKernelRegularizer(keras.layers.Layer):
        def __init__(self):
            super().__init__()
            self.dense = keras.layers.Dense(4, kernel_regularizer=keras.regularizers.l2(1e-3))

        def call(self, inputs):
            return self.dense(inputs)

    layer = OuterLayerWithKernelRegularizer()
    _ = layer(ops.zeros((1, 3)))
    assert len(layer.losses) == 1
    kernel = layer.dense.get_weights()[0]
    np.testing.assert_allclose(float(np.asarray(layer.losses[0])), 1e-3 * np.sum(kernel ** 2),
                               rtol=1e-5)


def test_add_loss_is_added_to_the_fit_loss():
    inputs = keras.Input(shape=(3,))
    x = layers.Dense(2)(inputs)
    outputs = ActivityRegularizationLayer(rate=10.0)(x)
    model = keras.Model(inputs, outputs)
    rng = np.random.default_rng(0)
    data = rng.random((8, 3)).astype("float32")
    target = rng.random((8, 2)).astype("float32")
    model.compile(optimizer="sgd", loss="mse")
    logs = model.evaluate(data, target, verbose=0, return_dict=True)
    pred = model.predict(data, verbose=0)
    np.testing.assert_allclose(logs["loss"], np.mean((pred - target) ** 2) + 10.0 * pred.mean(),
                               rtol=1e-4)
    model.fit(data, target, epochs=1, verbose=0)


def test_fit_with_only_add_loss_and_no_compiled_loss():
    inputs = keras.Input(shape=(3,))
    x = layers.Dense(2)(inputs)
    outputs = ActivityRegularizationLayer(rate=1.0)(x)
    model = keras.Model(inputs, outputs)
    data = np.random.default_rng(0).random((8, 3)).astype("float32")
    model.compile(optimizer=keras.optimizers.SGD(0.1))
    h = model.fit(data, epochs=3, verbose=0)
    # minimizing mean(outputs) drives it down
    assert h.history["loss"][-1] < h.history["loss"][0]


# ----------------------------------------------------------------- serialization
def test_get_config_and_from_config():
    layer = LazyLinear(64)
    config = layer.get_config()
    assert config["units"] == 64
    assert "name" in config
    new_layer = LazyLinear.from_config(config)
    assert new_layer.units == 64
    assert new_layer.name == layer.name


def test_registered_layer_saves_and_loads(tmp_path):
    @keras.saving.register_keras_serializable(package="GuideTests")
    class Scale(keras.layers.Layer):
        def __init__(self, factor=2.0, **kwargs):
            super().__init__(**kwargs)
            self.factor = factor

        def build(self, input_shape):
            self.s = self.add_weight(shape=(input_shape[-1],), initializer="ones")

        def call(self, inputs):
            return inputs * self.s * self.factor

        def get_config(self):
            config = super().get_config()
            config.update({"factor": self.factor})
            return config

    inputs = keras.Input(shape=(3,))
    outputs = Scale(3.0)(layers.Dense(3)(inputs))
    model = keras.Model(inputs, outputs)
    model.compile(optimizer="adam", loss="mse")
    data = np.random.default_rng(0).random((4, 3)).astype("float32")
    model.fit(data, data, epochs=1, verbose=0)
    path = str(tmp_path / "scale.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    assert loaded.layers[-1].factor == 3.0
    np.testing.assert_array_equal(loaded.predict(data, verbose=0), model.predict(data, verbose=0))


# ----------------------------------------------------------------- training argument
class TrainingAwareDropout(keras.layers.Layer):
    def __init__(self, rate, **kwargs):
        super().__init__(**kwargs)
        self.rate = rate

    def call(self, inputs, training=None):
        if training:
            return inputs * 0.0
        return inputs


def test_training_argument_is_passed_to_call():
    layer = TrainingAwareDropout(0.5)
    x = np.ones((2, 3), "float32")
    np.testing.assert_array_equal(np.asarray(layer(x)), x)
    np.testing.assert_array_equal(np.asarray(layer(x, training=True)), 0 * x)
    # inside a model, predict runs with training=False and fit with training=True
    inputs = keras.Input(shape=(3,))
    outputs = TrainingAwareDropout(0.5)(layers.Dense(3)(inputs))
    model = keras.Model(inputs, outputs)
    assert np.abs(model.predict(x, verbose=0)).sum() > 0
    np.testing.assert_array_equal(np.asarray(model(x, training=True)), np.zeros((2, 3)))


@needs_random
def test_custom_dropout_with_seed_generator():
    class CustomDropout(keras.layers.Layer):
        def __init__(self, rate, **kwargs):
            super().__init__(**kwargs)
            self.rate = rate
            self.seed_generator = keras.random.SeedGenerator(1337)

        def call(self, inputs, training=None):
            if training:
                return keras.random.dropout(inputs, rate=self.rate, seed=self.seed_generator)
            return inputs

    layer = CustomDropout(0.5)
    x = np.ones((100, 10), "float32")
    y = np.asarray(layer(x, training=True))
    assert 0.3 < (y == 0).mean() < 0.7
    np.testing.assert_allclose(y[y != 0], 2.0)
    np.testing.assert_array_equal(np.asarray(layer(x, training=False)), x)


# ----------------------------------------------------------------- Model subclass
class ResNetLike(keras.Model):
    def __init__(self, num_classes=3, **kwargs):
        super().__init__(**kwargs)
        self.block_1 = MLPBlock()
        self.dense = layers.Dense(8, activation="relu")
        self.classifier = layers.Dense(num_classes)

    def call(self, inputs):
        x = self.dense(inputs)
        x = x + self.block_1(x)
        return self.classifier(x)


def test_model_subclass_fit_evaluate_save_weights(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((32, 5)).astype("float32")
    y = rng.integers(0, 3, 32)
    model = ResNetLike()
    model.compile(optimizer="adam",
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    h = model.fit(x, y, epochs=3, batch_size=8, verbose=0)
    assert set(h.history) == {"loss", "accuracy"}
    assert len(model.trainable_weights) == 4 + 6
    loss, acc = model.evaluate(x, y, verbose=0)
    path = str(tmp_path / "resnet.weights.h5")
    model.save_weights(path)
    other = ResNetLike()
    other(x[:1])
    other.load_weights(path)
    np.testing.assert_array_equal(other.predict(x, verbose=0), model.predict(x, verbose=0))


def test_model_subclass_save_and_load_with_custom_objects(tmp_path):
    model = ResNetLike()
    x = np.random.default_rng(0).standard_normal((4, 5)).astype("float32")
    model(x)
    path = str(tmp_path / "resnet.keras")
    model.save(path)
    loaded = keras.models.load_model(
        path, custom_objects={"ResNetLike": ResNetLike, "MLPBlock": MLPBlock,
                              "LazyLinear": LazyLinear})
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))


# ----------------------------------------------------------------- end-to-end VAE
@needs_random
def test_vae_from_the_subclassing_guide():
    class Sampling(layers.Layer):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.seed_generator = keras.random.SeedGenerator(1337)

        def call(self, inputs):
            z_mean, z_log_var = inputs
            batch = ops.shape(z_mean)[0]
            dim = ops.shape(z_mean)[1]
            epsilon = keras.random.normal(shape=(batch, dim), seed=self.seed_generator)
            return z_mean + ops.exp(0.5 * z_log_var) * epsilon

    class Encoder(layers.Layer):
        def __init__(self, latent_dim=2, intermediate_dim=8, name="encoder", **kwargs):
            super().__init__(name=name, **kwargs)
            self.dense_proj = layers.Dense(intermediate_dim, activation="relu")
            self.dense_mean = layers.Dense(latent_dim)
            self.dense_log_var = layers.Dense(latent_dim)
            self.sampling = Sampling()

        def call(self, inputs):
            x = self.dense_proj(inputs)
            z_mean = self.dense_mean(x)
            z_log_var = self.dense_log_var(x)
            z = self.sampling((z_mean, z_log_var))
            return z_mean, z_log_var, z

    class Decoder(layers.Layer):
        def __init__(self, original_dim, intermediate_dim=8, name="decoder", **kwargs):
            super().__init__(name=name, **kwargs)
            self.dense_proj = layers.Dense(intermediate_dim, activation="relu")
            self.dense_output = layers.Dense(original_dim, activation="sigmoid")

        def call(self, inputs):
            return self.dense_output(self.dense_proj(inputs))

    class VariationalAutoEncoder(keras.Model):
        def __init__(self, original_dim, intermediate_dim=8, latent_dim=2,
                     name="autoencoder", **kwargs):
            super().__init__(name=name, **kwargs)
            self.original_dim = original_dim
            self.encoder = Encoder(latent_dim=latent_dim, intermediate_dim=intermediate_dim)
            self.decoder = Decoder(original_dim, intermediate_dim=intermediate_dim)

        def call(self, inputs):
            z_mean, z_log_var, z = self.encoder(inputs)
            reconstructed = self.decoder(z)
            kl_loss = -0.5 * ops.mean(z_log_var - ops.square(z_mean) - ops.exp(z_log_var) + 1)
            self.add_loss(kl_loss)
            return reconstructed

    original_dim = 16
    x_train = np.random.default_rng(0).random((64, original_dim)).astype("float32")
    vae = VariationalAutoEncoder(original_dim, 8, 2)
    vae.compile(keras.optimizers.Adam(learning_rate=1e-2), loss=keras.losses.MeanSquaredError())
    h = vae.fit(x_train, x_train, epochs=5, batch_size=16, verbose=0)
    assert h.history["loss"][-1] < h.history["loss"][0]
    assert vae.predict(x_train, verbose=0).shape == (64, original_dim)
    assert len(vae.losses) == 1


# ----------------------------------------------------------------- bad inputs
def test_layer_subclass_without_call():
    class NoCall(keras.layers.Layer):
        def build(self, input_shape):
            self.w = self.add_weight(shape=(input_shape[-1], 2))

    layer = NoCall(name="no_call_layer")
    with pytest.raises(NotImplementedError) as e:
        layer(np.ones((1, 3), "float32"))
    msg = str(e.value)
    assert "no_call_layer" in msg or "NoCall" in msg
    assert "call" in msg


def test_numpy_function_on_a_traced_value_during_fit():
    class NumpyExp(keras.layers.Layer):
        def build(self, input_shape):
            self.w = self.add_weight(shape=(input_shape[-1], 1))

        def call(self, inputs):
            return np.exp(ops.matmul(inputs, self.w))

    inputs = keras.Input(shape=(3,))
    outputs = NumpyExp()(inputs)
    model = keras.Model(inputs, outputs)
    model.compile(optimizer="sgd", loss="mse")
    x = np.ones((4, 3), "float32")
    with pytest.raises(TypeError) as e:
        model.fit(x, np.ones((4, 1), "float32"), epochs=1, verbose=0)
    msg = str(e.value)
    assert "numpy.exp" in msg
    assert "ops.exp" in msg or "fastdl.ops" in msg or "keras.ops" in msg


def test_numpy_function_on_a_traced_value_under_a_tape():
    class NumpyTanh(keras.layers.Layer):
        def build(self, input_shape):
            self.w = self.add_weight(shape=(input_shape[-1], 1))

        def call(self, inputs):
            return np.tanh(ops.matmul(inputs, self.w))

    layer = NumpyTanh()
    x = np.ones((2, 3), "float32")
    layer(x)   # eager call on arrays: fine
    with pytest.raises(TypeError) as e:
        with keras.GradientTape() as tape:
            y = ops.sum(layer(x))
        tape.gradient(y, layer.trainable_weights)
    assert "tanh" in str(e.value)


def _model_with_a_detaching_layer(detach):
    class Detach(keras.layers.Layer):
        def call(self, inputs):
            return detach(inputs)

    inputs = keras.Input((3,))
    first = layers.Dense(4)
    model = keras.Model(inputs, layers.Dense(1)(Detach()(first(inputs))))
    model.compile(optimizer="sgd", loss="mse")
    return model


def test_np_asarray_on_a_traced_value_during_fit():
    model = _model_with_a_detaching_layer(np.asarray)
    with pytest.raises(TypeError) as e:
        model.fit(np.ones((4, 3), "float32"), np.zeros((4, 1), "float32"), verbose=0)
    assert "gradient" in str(e.value)


def test_convert_to_numpy_on_a_traced_value_during_fit():
    model = _model_with_a_detaching_layer(ops.convert_to_numpy)
    with pytest.raises((TypeError, ValueError, RuntimeError)):
        model.fit(np.ones((4, 3), "float32"), np.zeros((4, 1), "float32"), verbose=0)


def test_add_weight_with_unknown_initializer():
    layer = keras.layers.Layer()
    with pytest.raises(ValueError) as e:
        layer.add_weight(shape=(2,), initializer="no_such_initializer")
    assert "no_such_initializer" in str(e.value)


# ----------------------------------------------------------------- weights as Keras variables
def test_model_subclass_build_and_summary():
    class TwoDense(keras.Model):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.d1 = layers.Dense(4, activation="relu")
            self.d2 = layers.Dense(2)

        def call(self, inputs):
            return self.d2(self.d1(inputs))

    model = TwoDense(name="two_dense")
    model.build((None, 3))
    assert len(model.weights) == 4
    lines = []
    model.summary(print_fn=lambda s, *a, **k: lines.append(s))
    text = "\n".join(lines)
    assert "two_dense" in text and "Total params: 26" in text


def test_weights_are_variables_with_name_numpy_and_assign():
    layer = layers.Dense(2)
    layer.build((None, 3))
    kernel = layer.kernel
    assert kernel.name == "kernel"
    assert kernel.trainable
    assert kernel.numpy().shape == (3, 2)
    kernel.assign(np.zeros((3, 2), "float32"))
    np.testing.assert_array_equal(layer.get_weights()[0], np.zeros((3, 2)))
    assert [w.path for w in layer.weights] == [f"{layer.name}/kernel", f"{layer.name}/bias"]


def test_add_weight_named_weights_and_initializers():
    class WithNames(keras.layers.Layer):
        def build(self, input_shape):
            self.scale = self.add_weight(shape=(input_shape[-1],), initializer="ones",
                                         name="scale")
            self.offset = self.add_weight(shape=(input_shape[-1],), initializer="zeros",
                                          name="offset")

        def call(self, inputs):
            return inputs * self.scale + self.offset

    layer = WithNames()
    x = np.arange(6, dtype="float32").reshape(2, 3)
    np.testing.assert_array_equal(np.asarray(layer(x)), x)
    scale, offset = layer.get_weights()
    np.testing.assert_array_equal(scale, np.ones(3))
    np.testing.assert_array_equal(offset, np.zeros(3))
    layer.set_weights([2 * np.ones(3, "float32"), np.ones(3, "float32")])
    np.testing.assert_array_equal(np.asarray(layer(x)), 2 * x + 1)
    with pytest.raises(ValueError):
        layer.set_weights([np.ones(4, "float32"), np.ones(3, "float32")])


def test_custom_layer_gradients_match_finite_differences_float64():
    class Poly(keras.layers.Layer):
        def build(self, input_shape):
            self.a = self.add_weight(shape=(input_shape[-1],), initializer="ones", dtype="float64")

        def call(self, inputs):
            return ops.sum(ops.tanh(inputs * self.a) * self.a, axis=-1)

    layer = Poly(dtype="float64")
    x = np.random.default_rng(0).standard_normal((4, 3))
    layer(x)
    with keras.GradientTape() as tape:
        y = ops.sum(layer(x))
    (g,) = tape.gradient(y, layer.trainable_weights)
    a0 = layer.get_weights()[0]
    eps = 1e-6
    num = np.zeros(3)
    for i in range(3):
        for sign in (1, -1):
            a = a0.copy()
            a[i] += sign * eps
            num[i] += sign * np.sum(np.tanh(x * a) * a)
    num /= 2 * eps
    assert np.asarray(g).dtype == np.float64
    np.testing.assert_allclose(np.asarray(g), num, rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("make", [lambda: layers.Dense(2), lambda: layers.BatchNormalization(),
                                  lambda: layers.Conv1D(2, 3)])
def test_build_called_directly_leaves_the_layer_built(make):
    # Keras programs call layer.build(shape) themselves; the first call must not add the
    # weights a second time.
    layer = make()
    shape = (None, 5, 4) if isinstance(layer, layers.Conv1D) else (None, 4)
    layer.build(shape)
    assert layer.built
    n = len(layer.weights)
    layer(np.ones((2,) + shape[1:], np.float32))
    assert len(layer.weights) == n


def test_build_of_a_custom_layer_called_directly():
    class Scale(keras.layers.Layer):
        def build(self, input_shape):
            self.w = self.add_weight(shape=(input_shape[-1],), initializer="ones")

        def call(self, x):
            return x * self.w

    s = Scale()
    s.build((None, 3))
    assert s.built and len(s.weights) == 1
    np.testing.assert_array_equal(np.asarray(s(np.full((2, 3), 2.0, np.float32))), 2.0)
    assert len(s.weights) == 1
