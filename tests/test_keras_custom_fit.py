"""The Keras guide "Customizing what happens in fit()" and the keras-io GAN
(overriding train_step) and Variational AutoEncoder examples, as small programs.

The TensorFlow version of the guide uses ``tf.GradientTape`` and ``tf`` ops; here
they are ``keras.GradientTape`` and ``keras.ops``.
"""
import importlib.util

import numpy as np
import pytest

import fastdl as keras
from fastdl import layers, ops


def _has(module, attr=None):
    if importlib.util.find_spec(f"fastdl.{module}") is None:
        return False
    return attr is None or hasattr(importlib.import_module(f"fastdl.{module}"), attr)


needs_random = pytest.mark.skipif(not (_has("random", "normal") and _has("random", "SeedGenerator")),
                                  reason="fastdl.random (normal, SeedGenerator) is not there yet")


def _regression_data(n=64, d=8, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d)).astype("float32")
    y = (x @ rng.standard_normal((d, 1)) * 0.5).astype("float32")
    return x, y


def _dense_model(cls, units=1):
    """An instance of cls (a keras.Model subclass overriding steps) holding one Dense.

    The guide builds these as ``cls(inputs, outputs)``, a functional model of a
    subclass; see test_functional_construction_of_a_model_subclass."""
    class WithDense(cls):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.dense = layers.Dense(units)

        def call(self, inputs):
            return self.dense(inputs)

    return WithDense()


# ----------------------------------------------------------------- a first simple example
class CustomModel(keras.Model):
    def train_step(self, data):
        x, y = data
        with keras.GradientTape() as tape:
            y_pred = self(x, training=True)
            loss = self.compute_loss(y=y, y_pred=y_pred)
        trainable_vars = self.trainable_variables
        gradients = tape.gradient(loss, trainable_vars)
        self.optimizer.apply_gradients(zip(gradients, trainable_vars))
        for metric in self.metrics:
            if metric.name == "loss":
                metric.update_state(loss)
            else:
                metric.update_state(y, y_pred)
        return {m.name: m.result() for m in self.metrics}


def test_functional_construction_of_a_model_subclass():
    inputs = keras.Input(shape=(8,))
    outputs = layers.Dense(1)(inputs)
    model = CustomModel(inputs, outputs)
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mse", metrics=["mae"])
    x, y = _regression_data()
    h = model.fit(x, y, epochs=2, batch_size=16, verbose=0)
    assert set(h.history) == {"loss", "mae"}
    assert len(model.layers) == 2


def test_train_step_override():
    model = _dense_model(CustomModel)
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mse", metrics=["mae"])
    x, y = _regression_data()
    h = model.fit(x, y, epochs=5, batch_size=16, verbose=0)
    assert set(h.history) == {"loss", "mae"}
    assert h.history["loss"][-1] < h.history["loss"][0]
    assert h.history["mae"][-1] < h.history["mae"][0]


def test_train_step_override_with_validation_uses_the_default_test_step():
    model = _dense_model(CustomModel)
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mse", metrics=["mae"])
    x, y = _regression_data()
    h = model.fit(x[:48], y[:48], epochs=2, batch_size=16, validation_data=(x[48:], y[48:]),
                  verbose=0)
    assert set(h.history) == {"loss", "mae", "val_loss", "val_mae"}
    pred = model.predict(x[48:], verbose=0)
    np.testing.assert_allclose(h.history["val_loss"][-1], np.mean((pred - y[48:]) ** 2),
                               rtol=1e-4)


def test_train_step_override_is_actually_used():
    calls = []

    class Counting(keras.Model):
        def train_step(self, data):
            calls.append(1)
            return super().train_step(data)

    model = _dense_model(Counting)
    model.compile(optimizer="sgd", loss="mse")
    x, y = _regression_data(32)
    model.fit(x, y, epochs=2, batch_size=8, verbose=0)
    assert len(calls) == 8


def test_train_step_may_return_extra_logs():
    class Extra(keras.Model):
        def train_step(self, data):
            logs = super().train_step(data)
            logs = dict(logs)
            logs["my_constant"] = 3.0
            return logs

    model = _dense_model(Extra)
    model.compile(optimizer="sgd", loss="mse")
    x, y = _regression_data(16)
    h = model.fit(x, y, epochs=2, verbose=0)
    assert h.history["my_constant"] == [3.0, 3.0]


# ----------------------------------------------------------------- lower level
class LowLevelModel(keras.Model):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.mae_metric = keras.metrics.MeanAbsoluteError(name="mae")
        self.loss_fn = keras.losses.MeanSquaredError()

    def train_step(self, data):
        x, y = data
        with keras.GradientTape() as tape:
            y_pred = self(x, training=True)
            loss = self.loss_fn(y, y_pred)
        trainable_vars = self.trainable_variables
        gradients = tape.gradient(loss, trainable_vars)
        self.optimizer.apply_gradients(zip(gradients, trainable_vars))
        self.loss_tracker.update_state(loss)
        self.mae_metric.update_state(y, y_pred)
        return {"loss": self.loss_tracker.result(), "mae": self.mae_metric.result()}

    @property
    def metrics(self):
        # listed so that reset_states() is called at the start of each epoch
        return [self.loss_tracker, self.mae_metric]


def test_lower_level_train_step_with_own_trackers():
    model = _dense_model(LowLevelModel)
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    x, y = _regression_data()
    h = model.fit(x, y, epochs=5, batch_size=16, verbose=0)
    assert set(h.history) == {"loss", "mae"}
    assert h.history["loss"][-1] < h.history["loss"][0]
    assert model.metrics == [model.loss_tracker, model.mae_metric]


def test_trackers_are_reset_each_epoch():
    # with SGD(0) nothing moves, so each epoch's mean loss is the same; without
    # resets the mean would still agree, so check the count through a Sum tracker
    class Counter(keras.Model):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.seen = keras.metrics.Sum(name="seen")

        def train_step(self, data):
            x, y = data
            self.seen.update_state(ops.shape(x)[0])
            return {"seen": self.seen.result()}

        @property
        def metrics(self):
            return [self.seen]

    model = _dense_model(Counter)
    model.compile(optimizer="sgd")
    x, y = _regression_data(32)
    h = model.fit(x, y, epochs=3, batch_size=8, verbose=0)
    assert h.history["seen"] == [32.0, 32.0, 32.0]


def test_sample_weight_in_train_step():
    class SW(keras.Model):
        def train_step(self, data):
            if len(data) == 3:
                x, y, sample_weight = data
            else:
                sample_weight = None
                x, y = data
            with keras.GradientTape() as tape:
                y_pred = self(x, training=True)
                loss = self.compute_loss(y=y, y_pred=y_pred, sample_weight=sample_weight)
            grads = tape.gradient(loss, self.trainable_variables)
            self.optimizer.apply_gradients(zip(grads, self.trainable_variables))
            for metric in self.metrics:
                if metric.name == "loss":
                    metric.update_state(loss)
                else:
                    metric.update_state(y, y_pred, sample_weight=sample_weight)
            return {m.name: m.result() for m in self.metrics}

    model = _dense_model(SW)
    model.compile(optimizer="adam", loss="mse", metrics=["mae"])
    x, y = _regression_data(16)
    sw = np.random.default_rng(0).random((16, 1)).astype("float32")
    h = model.fit(x, y, sample_weight=sw, epochs=2, verbose=0)
    assert set(h.history) == {"loss", "mae"}


# ----------------------------------------------------------------- test_step
class EvalModel(keras.Model):
    def test_step(self, data):
        x, y = data
        y_pred = self(x, training=False)
        loss = self.compute_loss(y=y, y_pred=y_pred)
        for metric in self.metrics:
            if metric.name != "loss":
                metric.update_state(y, y_pred)
            else:
                metric.update_state(loss)
        return {m.name: m.result() for m in self.metrics}


def test_test_step_override_drives_evaluate():
    model = _dense_model(EvalModel)
    model.compile(loss="mse", metrics=["mae"])
    x, y = _regression_data(32)
    logs = model.evaluate(x, y, batch_size=8, verbose=0, return_dict=True)
    assert set(logs) == {"loss", "mae"}
    pred = model.predict(x, verbose=0)
    np.testing.assert_allclose(logs["loss"], np.mean((pred - y) ** 2), rtol=1e-4)
    np.testing.assert_allclose(logs["mae"], np.mean(np.abs(pred - y)), rtol=1e-4)


def test_test_step_override_is_used_for_validation():
    class Val(keras.Model):
        def test_step(self, data):
            return {"special": 7.0}

    model = _dense_model(Val)
    model.compile(optimizer="sgd", loss="mse")
    x, y = _regression_data(16)
    h = model.fit(x, y, epochs=1, validation_data=(x, y), verbose=0)
    assert h.history["val_special"] == [7.0]
    assert "loss" in h.history


def test_predict_step_override():
    class Doubling(keras.Model):
        def predict_step(self, data):
            x = data[0] if isinstance(data, tuple) else data
            return self(x, training=False) * 2.0

    model = _dense_model(Doubling)
    x, _ = _regression_data(10)
    out = model.predict(x, batch_size=4, verbose=0)
    np.testing.assert_allclose(out, 2.0 * np.asarray(model(x)), rtol=1e-6)


def test_custom_train_step_with_a_generator():
    def gen():
        x, y = _regression_data(64)
        while True:
            for i in range(0, 64, 16):
                yield x[i:i + 16], y[i:i + 16]

    model = _dense_model(CustomModel)
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mse", metrics=["mae"])
    h = model.fit(gen(), steps_per_epoch=4, epochs=4, verbose=0)
    assert set(h.history) == {"loss", "mae"}
    assert h.history["loss"][-1] < h.history["loss"][0]


# ----------------------------------------------------------------- compute_loss
def test_compute_loss_override_is_used_by_fit_and_evaluate():
    class Doubled(keras.Model):
        def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
            loss = super().compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sample_weight,
                                        training=training)
            return 2.0 * loss

    model = _dense_model(Doubled)
    model.compile(optimizer="sgd", loss="mse")
    x, y = _regression_data(16)
    loss = model.evaluate(x, y, verbose=0)
    pred = model.predict(x, verbose=0)
    np.testing.assert_allclose(loss, 2.0 * np.mean((pred - y) ** 2), rtol=1e-4)
    h = model.fit(x, y, epochs=1, verbose=0)
    assert np.isfinite(h.history["loss"][0])


def test_compute_loss_matches_numpy():
    inputs = keras.Input(shape=(8,))
    model = keras.Model(inputs, layers.Dense(3)(inputs))
    model.compile(optimizer="sgd",
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x, _ = _regression_data(6)
    y = np.array([0, 1, 2, 0, 1, 2])
    y_pred = np.asarray(model(x))
    loss = float(np.asarray(model.compute_loss(x=x, y=y, y_pred=y_pred)))
    z = y_pred - y_pred.max(1, keepdims=True)
    ref = -(z[np.arange(6), y] - np.log(np.exp(z).sum(1))).mean()
    np.testing.assert_allclose(loss, ref, rtol=1e-5)


# ----------------------------------------------------------------- GAN (train_step)
def _discriminator():
    return keras.Sequential([
        keras.Input(shape=(6, 6, 1)),
        layers.Conv2D(4, 3, strides=2, padding="same", activation="relu"),
        layers.Flatten(),
        layers.Dense(1),
    ], name="discriminator")


def _generator(latent_dim):
    return keras.Sequential([
        keras.Input(shape=(latent_dim,)),
        layers.Dense(16, activation="relu"),
        layers.Dense(36, activation="sigmoid"),
        layers.Reshape((6, 6, 1)),
    ], name="generator")


class GAN(keras.Model):
    """The guide's GAN, with NumPy noise in place of keras.random."""

    def __init__(self, discriminator, generator, latent_dim):
        super().__init__()
        self.discriminator = discriminator
        self.generator = generator
        self.latent_dim = latent_dim
        self.d_loss_tracker = keras.metrics.Mean(name="d_loss")
        self.g_loss_tracker = keras.metrics.Mean(name="g_loss")
        self.rng = np.random.default_rng(1337)

    @property
    def metrics(self):
        return [self.d_loss_tracker, self.g_loss_tracker]

    def compile(self, d_optimizer, g_optimizer, loss_fn):
        super().compile()
        self.d_optimizer = d_optimizer
        self.g_optimizer = g_optimizer
        self.loss_fn = loss_fn

    def noise(self, shape):
        return self.rng.standard_normal(shape).astype("float32")

    def train_step(self, real_images):
        if isinstance(real_images, tuple):
            real_images = real_images[0]
        batch_size = ops.shape(real_images)[0]
        random_latent_vectors = self.noise((batch_size, self.latent_dim))
        generated_images = self.generator(random_latent_vectors)
        combined_images = ops.concatenate([generated_images, real_images], axis=0)
        labels = ops.concatenate([ops.ones((batch_size, 1)), ops.zeros((batch_size, 1))], axis=0)
        labels = labels + 0.05 * self.rng.random(ops.shape(labels)).astype("float32")

        with keras.GradientTape() as tape:
            predictions = self.discriminator(combined_images)
            d_loss = self.loss_fn(labels, predictions)
        grads = tape.gradient(d_loss, self.discriminator.trainable_weights)
        self.d_optimizer.apply_gradients(zip(grads, self.discriminator.trainable_weights))

        random_latent_vectors = self.noise((batch_size, self.latent_dim))
        misleading_labels = ops.zeros((batch_size, 1))
        with keras.GradientTape() as tape:
            predictions = self.discriminator(self.generator(random_latent_vectors))
            g_loss = self.loss_fn(misleading_labels, predictions)
        grads = tape.gradient(g_loss, self.generator.trainable_weights)
        self.g_optimizer.apply_gradients(zip(grads, self.generator.trainable_weights))

        self.d_loss_tracker.update_state(d_loss)
        self.g_loss_tracker.update_state(g_loss)
        return {"d_loss": self.d_loss_tracker.result(), "g_loss": self.g_loss_tracker.result()}


class GANWithCall(GAN):
    # fastdl's fit calls the model once to build it; see test_gan_without_call_as_in_the_guide
    def call(self, inputs):
        return self.discriminator(inputs)


def _seed_weights(model, seed):
    """Fixed initial weights (scaled normal kernels, zero biases): a deterministic test."""
    rng = np.random.default_rng(seed)
    new = []
    for w in model.get_weights():
        if w.ndim == 1:
            new.append(np.zeros_like(w))
        else:
            fan_in = int(np.prod(w.shape[:-1]))
            new.append((rng.standard_normal(w.shape) / np.sqrt(fan_in)).astype(w.dtype))
    model.set_weights(new)


def _real_images(n=32):
    # "real" images: a bright centre square on a dark background
    img = np.zeros((n, 6, 6, 1), "float32")
    img[:, 2:4, 2:4, :] = 1.0
    return img


def test_gan_without_call_as_in_the_guide():
    latent_dim = 4
    gan = GAN(_discriminator(), _generator(latent_dim), latent_dim)
    gan.compile(d_optimizer=keras.optimizers.Adam(learning_rate=3e-3),
                g_optimizer=keras.optimizers.Adam(learning_rate=3e-3),
                loss_fn=keras.losses.BinaryCrossentropy(from_logits=True))
    h = gan.fit(_real_images(16), epochs=1, batch_size=8, verbose=0)
    assert set(h.history) == {"d_loss", "g_loss"}


def test_gan_history_and_each_optimizer_moves_only_its_model():
    latent_dim = 4
    gan = GANWithCall(_discriminator(), _generator(latent_dim), latent_dim)
    gan.compile(d_optimizer=keras.optimizers.Adam(learning_rate=3e-3),
                g_optimizer=keras.optimizers.Adam(learning_rate=3e-3),
                loss_fn=keras.losses.BinaryCrossentropy(from_logits=True))
    d_before = gan.discriminator.get_weights()
    g_before = gan.generator.get_weights()
    h = gan.fit(_real_images(), epochs=2, batch_size=8, verbose=0)
    assert set(h.history) == {"d_loss", "g_loss"}
    assert len(h.history["d_loss"]) == 2
    assert all(np.isfinite(v) for v in h.history["d_loss"] + h.history["g_loss"])
    assert any(not np.array_equal(a, b) for a, b in zip(d_before, gan.discriminator.get_weights()))
    assert any(not np.array_equal(a, b) for a, b in zip(g_before, gan.generator.get_weights()))
    # the GAN's own weights are those of both parts
    assert len(gan.trainable_weights) == len(gan.discriminator.trainable_weights) + \
        len(gan.generator.trainable_weights)


def test_gan_losses_move_as_expected():
    latent_dim = 4
    # discriminator alone (generator frozen by a zero learning rate): d_loss falls
    gan = GANWithCall(_discriminator(), _generator(latent_dim), latent_dim)
    _seed_weights(gan.discriminator, 0)
    _seed_weights(gan.generator, 1)
    gan.compile(d_optimizer=keras.optimizers.Adam(learning_rate=2e-2),
                g_optimizer=keras.optimizers.SGD(learning_rate=0.0),
                loss_fn=keras.losses.BinaryCrossentropy(from_logits=True))
    g_before = gan.generator.get_weights()
    h = gan.fit(_real_images(16), epochs=8, batch_size=8, verbose=0)
    d = h.history["d_loss"]
    assert d[-1] < 0.6 * d[0] and d[-1] < 0.45
    for a, b in zip(g_before, gan.generator.get_weights()):
        np.testing.assert_array_equal(a, b)
    # then the generator alone against that fixed discriminator: g_loss falls
    gan.compile(d_optimizer=keras.optimizers.SGD(learning_rate=0.0),
                g_optimizer=keras.optimizers.Adam(learning_rate=2e-2),
                loss_fn=keras.losses.BinaryCrossentropy(from_logits=True))
    d_before = gan.discriminator.get_weights()
    h = gan.fit(_real_images(16), epochs=8, batch_size=8, verbose=0)
    g = h.history["g_loss"]
    assert g[-1] < 0.5 * g[0]
    for a, b in zip(d_before, gan.discriminator.get_weights()):
        np.testing.assert_array_equal(a, b)


@needs_random
def test_gan_with_keras_random_as_in_the_guide():
    class RandomGAN(GANWithCall):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.seed_generator = keras.random.SeedGenerator(1337)

        def noise(self, shape):
            return keras.random.normal(shape=shape, seed=self.seed_generator)

    latent_dim = 4
    gan = RandomGAN(_discriminator(), _generator(latent_dim), latent_dim)
    gan.compile(d_optimizer=keras.optimizers.Adam(learning_rate=3e-3),
                g_optimizer=keras.optimizers.Adam(learning_rate=3e-3),
                loss_fn=keras.losses.BinaryCrossentropy(from_logits=True))
    h = gan.fit(_real_images(16), epochs=1, batch_size=8, verbose=0)
    assert set(h.history) == {"d_loss", "g_loss"}


def test_dcgan_architecture_from_the_example():
    # keras-io "DCGAN to generate face images": LeakyReLU and Conv2DTranspose
    discriminator = keras.Sequential([
        keras.Input(shape=(8, 8, 3)),
        layers.Conv2D(8, kernel_size=4, strides=2, padding="same"),
        layers.LeakyReLU(negative_slope=0.2),
        layers.Conv2D(8, kernel_size=4, strides=2, padding="same"),
        layers.LeakyReLU(negative_slope=0.2),
        layers.Flatten(),
        layers.Dropout(0.2),
        layers.Dense(1, activation="sigmoid"),
    ], name="discriminator")
    latent_dim = 4
    generator = keras.Sequential([
        keras.Input(shape=(latent_dim,)),
        layers.Dense(2 * 2 * 8),
        layers.Reshape((2, 2, 8)),
        layers.Conv2DTranspose(8, kernel_size=4, strides=2, padding="same"),
        layers.LeakyReLU(negative_slope=0.2),
        layers.Conv2DTranspose(8, kernel_size=4, strides=2, padding="same"),
        layers.LeakyReLU(negative_slope=0.2),
        layers.Conv2D(3, kernel_size=5, padding="same", activation="sigmoid"),
    ], name="generator")
    z = np.random.default_rng(0).standard_normal((2, latent_dim)).astype("float32")
    images = generator.predict(z, verbose=0)
    assert images.shape == (2, 8, 8, 3)
    assert discriminator.predict(images, verbose=0).shape == (2, 1)


# ----------------------------------------------------------------- VAE (train_step)
class VAE(keras.Model):
    def __init__(self, encoder, decoder, **kwargs):
        super().__init__(**kwargs)
        self.encoder = encoder
        self.decoder = decoder
        self.total_loss_tracker = keras.metrics.Mean(name="total_loss")
        self.reconstruction_loss_tracker = keras.metrics.Mean(name="reconstruction_loss")
        self.kl_loss_tracker = keras.metrics.Mean(name="kl_loss")

    def reconstruction_fn(self, data, reconstruction):
        # as in the example
        return keras.losses.binary_crossentropy(data, reconstruction)

    @property
    def metrics(self):
        return [self.total_loss_tracker, self.reconstruction_loss_tracker, self.kl_loss_tracker]

    def train_step(self, data):
        with keras.GradientTape() as tape:
            z_mean, z_log_var, z = self.encoder(data)
            reconstruction = self.decoder(z)
            reconstruction_loss = ops.mean(ops.sum(
                self.reconstruction_fn(data, reconstruction), axis=(1, 2)))
            kl_loss = -0.5 * (1 + z_log_var - ops.square(z_mean) - ops.exp(z_log_var))
            kl_loss = ops.mean(ops.sum(kl_loss, axis=1))
            total_loss = reconstruction_loss + kl_loss
        grads = tape.gradient(total_loss, self.trainable_weights)
        self.optimizer.apply_gradients(zip(grads, self.trainable_weights))
        self.total_loss_tracker.update_state(total_loss)
        self.reconstruction_loss_tracker.update_state(reconstruction_loss)
        self.kl_loss_tracker.update_state(kl_loss)
        return {
            "loss": self.total_loss_tracker.result(),
            "reconstruction_loss": self.reconstruction_loss_tracker.result(),
            "kl_loss": self.kl_loss_tracker.result(),
        }


class VAEWithCall(VAE):
    # fastdl's fit calls the model once to build it; see test_vae_without_call_as_in_the_example
    def call(self, inputs):
        return self.decoder(self.encoder(inputs)[2])

    def reconstruction_fn(self, data, reconstruction):
        # keras.losses.binary_crossentropy is not differentiable under the tape in fastdl
        # (see test_vae_train_step_with_the_functional_loss); the one channel makes the
        # element-wise form equal to it
        return ops.binary_crossentropy(data, reconstruction)


def _vae_parts(sampling_layer, latent_dim=2):
    encoder_inputs = keras.Input(shape=(8, 8, 1))
    x = layers.Conv2D(4, 3, activation="relu", strides=2, padding="same")(encoder_inputs)
    x = layers.Flatten()(x)
    x = layers.Dense(16, activation="relu")(x)
    z_mean = layers.Dense(latent_dim, name="z_mean")(x)
    z_log_var = layers.Dense(latent_dim, name="z_log_var")(x)
    z = sampling_layer([z_mean, z_log_var])
    encoder = keras.Model(encoder_inputs, [z_mean, z_log_var, z], name="encoder")

    latent_inputs = keras.Input(shape=(latent_dim,))
    x = layers.Dense(16, activation="relu")(latent_inputs)
    x = layers.Dense(64, activation="sigmoid")(x)
    decoder_outputs = layers.Reshape((8, 8, 1))(x)
    decoder = keras.Model(latent_inputs, decoder_outputs, name="decoder")
    return encoder, decoder


class NumpySampling(layers.Layer):
    """Reparameterization with NumPy noise (a constant to the tape)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.rng = np.random.default_rng(1337)

    def call(self, inputs):
        z_mean, z_log_var = inputs
        batch = ops.shape(z_mean)[0]
        dim = ops.shape(z_mean)[1]
        epsilon = self.rng.standard_normal((batch, dim)).astype("float32")
        return z_mean + ops.exp(0.5 * z_log_var) * epsilon


def _digits(n=64):
    rng = np.random.default_rng(0)
    proto = (rng.random((4, 8, 8, 1)) > 0.5).astype("float32")
    return proto[rng.integers(0, 4, n)]


def test_vae_without_call_as_in_the_example():
    class NoCallVAE(VAE):
        reconstruction_fn = VAEWithCall.reconstruction_fn

    encoder, decoder = _vae_parts(NumpySampling())
    vae = NoCallVAE(encoder, decoder)
    vae.compile(optimizer=keras.optimizers.Adam(learning_rate=1e-2))
    h = vae.fit(_digits(16), epochs=1, batch_size=8, verbose=0)
    assert set(h.history) == {"loss", "reconstruction_loss", "kl_loss"}


def test_vae_train_step_with_the_functional_loss():
    class ExampleVAE(VAE):
        def call(self, inputs):
            return self.decoder(self.encoder(inputs)[2])

    encoder, decoder = _vae_parts(NumpySampling())
    vae = ExampleVAE(encoder, decoder)
    vae.compile(optimizer=keras.optimizers.Adam(learning_rate=1e-2))
    h = vae.fit(_digits(16), epochs=1, batch_size=8, verbose=0)
    assert set(h.history) == {"loss", "reconstruction_loss", "kl_loss"}


def test_vae_losses_move_as_expected():
    encoder, decoder = _vae_parts(NumpySampling())
    assert [tuple(o.shape) for o in encoder.outputs] == [(None, 2)] * 3
    vae = VAEWithCall(encoder, decoder)
    vae.compile(optimizer=keras.optimizers.Adam(learning_rate=1e-2))
    data = _digits()
    h = vae.fit(data, epochs=8, batch_size=16, verbose=0)
    assert set(h.history) == {"loss", "reconstruction_loss", "kl_loss"}
    rec, kl, total = h.history["reconstruction_loss"], h.history["kl_loss"], h.history["loss"]
    assert rec[-1] < rec[0]
    assert total[-1] < total[0]
    assert all(k >= 0 for k in kl)
    np.testing.assert_allclose(total[-1], rec[-1] + kl[-1], rtol=1e-4)
    z_mean, _, _ = encoder.predict(data[:3], verbose=0)
    assert decoder.predict(z_mean, verbose=0).shape == (3, 8, 8, 1)


@needs_random
def test_vae_with_keras_random_sampling_as_in_the_example():
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

    encoder, decoder = _vae_parts(Sampling())
    vae = VAEWithCall(encoder, decoder)
    vae.compile(optimizer=keras.optimizers.Adam(learning_rate=1e-2))
    h = vae.fit(_digits(), epochs=6, batch_size=16, verbose=0)
    assert h.history["reconstruction_loss"][-1] < h.history["reconstruction_loss"][0]


# ----------------------------------------------------------------- bad inputs
def test_compute_loss_without_any_loss_says_so():
    inputs = keras.Input(shape=(8,))
    model = keras.Model(inputs, layers.Dense(1)(inputs))
    model.compile(optimizer="sgd")
    x, y = _regression_data(8)
    with pytest.raises(ValueError) as e:
        model.fit(x, y, epochs=1, verbose=0)
    assert "loss" in str(e.value)
