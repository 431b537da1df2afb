"""The Keras guide "The Functional API", feature by feature, as small programs.

Each program is written against Keras 3's API (only the import differs) on tiny
random NumPy data, and asserts something that can fail.
"""
import importlib.util
import warnings

import numpy as np
import pytest

import fastdl as keras
from fastdl import layers, ops


def _has(module):
    return importlib.util.find_spec(f"fastdl.{module}") is not None


def _mnist_like(n=64, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 784)).astype("float32")
    y = rng.integers(0, 10, size=(n,))
    return x, y


def _digits_model(name="mnist_model"):
    inputs = keras.Input(shape=(784,))
    dense = layers.Dense(64, activation="relu")
    x = dense(inputs)
    x = layers.Dense(64, activation="relu")(x)
    outputs = layers.Dense(10)(x)
    return keras.Model(inputs=inputs, outputs=outputs, name=name)


# ----------------------------------------------------------------- introduction
def test_input_is_symbolic_with_shape_and_dtype():
    inputs = keras.Input(shape=(784,))
    assert tuple(inputs.shape) == (None, 784)
    assert str(inputs.dtype) == "float32"
    img_inputs = keras.Input(shape=(32, 32, 3))
    assert tuple(img_inputs.shape) == (None, 32, 32, 3)
    x = layers.Dense(64, activation="relu")(inputs)
    assert tuple(x.shape) == (None, 64)


def test_model_name_layers_and_summary():
    model = _digits_model()
    assert model.name == "mnist_model"
    # InputLayer + three Dense layers
    assert len(model.layers) == 4
    lines = []
    model.summary(print_fn=lambda s, *a, **k: lines.append(s))
    text = "\n".join(lines)
    assert "mnist_model" in text
    assert "Dense" in text
    # 784*64+64 + 64*64+64 + 64*10+10
    assert model.count_params() == 55050
    assert "55,050" in text or "55050" in text


def test_training_evaluation_inference():
    x_train, y_train = _mnist_like(80)
    x_test, y_test = _mnist_like(20, seed=1)
    model = _digits_model()
    model.compile(
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        optimizer=keras.optimizers.RMSprop(),
        metrics=["accuracy"],
    )
    history = model.fit(x_train, y_train, batch_size=16, epochs=3, validation_split=0.2,
                        verbose=0)
    assert set(history.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert len(history.history["loss"]) == 3
    assert history.history["loss"][-1] < history.history["loss"][0]
    scores = model.evaluate(x_test, y_test, verbose=0)
    assert len(scores) == 2
    assert np.isfinite(scores[0]) and 0.0 <= scores[1] <= 1.0
    pred = model.predict(x_test, verbose=0)
    assert pred.shape == (20, 10)
    # evaluate's loss is the mean cross-entropy of predict's logits
    logp = pred - np.log(np.exp(pred - pred.max(1, keepdims=True)).sum(1, keepdims=True)) \
        - pred.max(1, keepdims=True)
    ref = -logp[np.arange(20), y_test].mean()
    np.testing.assert_allclose(scores[0], ref, rtol=1e-4, atol=1e-5)


def test_save_delete_and_recreate(tmp_path):
    # the guide: model.save(path); del model; model = keras.models.load_model(path)
    x, _ = _mnist_like(8)
    model = _digits_model()
    expected = model.predict(x, verbose=0)
    n_params = model.count_params()
    path = str(tmp_path / "my_model.keras")
    model.save(path)
    del model
    model = keras.models.load_model(path)
    assert model.name == "mnist_model"
    assert model.count_params() == n_params
    np.testing.assert_array_equal(model.predict(x, verbose=0), expected)


def test_save_and_load_predicts_identically_to_the_original(tmp_path):
    x, y = _mnist_like(32)
    model = _digits_model()
    model.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  optimizer="adam")
    model.fit(x, y, epochs=1, batch_size=16, verbose=0)
    path = str(tmp_path / "my_model.keras")
    model.save(path)
    reloaded = keras.models.load_model(path)
    np.testing.assert_array_equal(model.predict(x, verbose=0), reloaded.predict(x, verbose=0))
    # the compiled state comes back too: evaluate works and agrees
    np.testing.assert_allclose(model.evaluate(x, y, verbose=0), reloaded.evaluate(x, y, verbose=0),
                               rtol=1e-6)


# ----------------------------------------------------------------- one graph, several models
def test_same_graph_defines_encoder_and_autoencoder():
    encoder_input = keras.Input(shape=(12,), name="img")
    x = layers.Dense(8, activation="relu")(encoder_input)
    encoder_output = layers.Dense(4, activation="relu")(x)
    encoder = keras.Model(encoder_input, encoder_output, name="encoder")

    x = layers.Dense(8, activation="relu")(encoder_output)
    decoder_output = layers.Dense(12)(x)
    autoencoder = keras.Model(encoder_input, decoder_output, name="autoencoder")

    data = np.random.default_rng(0).standard_normal((5, 12)).astype("float32")
    assert encoder.predict(data, verbose=0).shape == (5, 4)
    assert autoencoder.predict(data, verbose=0).shape == (5, 12)
    # the encoder's weights are shared: the autoencoder holds them
    enc_ids = {id(w) for w in encoder.weights}
    assert enc_ids <= {id(w) for w in autoencoder.weights}
    assert len(autoencoder.weights) == len(encoder.weights) + 4


def test_models_are_callable_like_layers():
    encoder_input = keras.Input(shape=(12,), name="original_img")
    x = layers.Dense(6, activation="relu")(encoder_input)
    encoder_output = layers.Dense(3)(x)
    encoder = keras.Model(encoder_input, encoder_output, name="encoder")

    decoder_input = keras.Input(shape=(3,), name="encoded_img")
    x = layers.Dense(6, activation="relu")(decoder_input)
    decoder_output = layers.Dense(12)(x)
    decoder = keras.Model(decoder_input, decoder_output, name="decoder")

    autoencoder_input = keras.Input(shape=(12,), name="img")
    encoded_img = encoder(autoencoder_input)
    decoded_img = decoder(encoded_img)
    autoencoder = keras.Model(autoencoder_input, decoded_img, name="autoencoder")

    data = np.random.default_rng(1).standard_normal((4, 12)).astype("float32")
    out = autoencoder.predict(data, verbose=0)
    np.testing.assert_allclose(out, decoder.predict(encoder.predict(data, verbose=0), verbose=0),
                               rtol=1e-5, atol=1e-6)
    assert encoder in autoencoder.layers and decoder in autoencoder.layers
    # training the whole trains both parts
    before = [w.copy() for w in encoder.get_weights()]
    autoencoder.compile(optimizer="adam", loss="mse")
    autoencoder.fit(data, data, epochs=2, verbose=0)
    assert any(not np.array_equal(a, b) for a, b in zip(before, encoder.get_weights()))


def test_ensembling_models():
    def get_model():
        inputs = keras.Input(shape=(8,))
        outputs = layers.Dense(1)(inputs)
        return keras.Model(inputs, outputs)

    model1, model2, model3 = get_model(), get_model(), get_model()
    inputs = keras.Input(shape=(8,))
    y1, y2, y3 = model1(inputs), model2(inputs), model3(inputs)
    outputs = layers.average([y1, y2, y3])
    ensemble_model = keras.Model(inputs=inputs, outputs=outputs)

    data = np.random.default_rng(2).standard_normal((6, 8)).astype("float32")
    ref = (model1.predict(data, verbose=0) + model2.predict(data, verbose=0)
           + model3.predict(data, verbose=0)) / 3
    np.testing.assert_allclose(ensemble_model.predict(data, verbose=0), ref, rtol=1e-5, atol=1e-6)


# ----------------------------------------------------------------- multiple inputs and outputs
def _ticket_model(num_tags=12, num_departments=4):
    # The guide's issue-ticket classifier, with bag-of-words title/body features
    # instead of the Embedding + LSTM text encoders.
    title_input = keras.Input(shape=(10,), name="title")
    body_input = keras.Input(shape=(20,), name="body")
    tags_input = keras.Input(shape=(num_tags,), name="tags")
    title_features = layers.Dense(8, activation="relu")(title_input)
    body_features = layers.Dense(6, activation="relu")(body_input)
    x = layers.concatenate([title_features, body_features, tags_input])
    priority_pred = layers.Dense(1, name="priority")(x)
    department_pred = layers.Dense(num_departments, name="department")(x)
    return keras.Model(inputs=[title_input, body_input, tags_input],
                       outputs={"priority": priority_pred, "department": department_pred})


def _ticket_data(n=32, seed=0):
    rng = np.random.default_rng(seed)
    title = rng.integers(0, 2, size=(n, 10)).astype("float32")
    body = rng.integers(0, 2, size=(n, 20)).astype("float32")
    tags = rng.integers(0, 2, size=(n, 12)).astype("float32")
    priority = rng.random(size=(n, 1)).astype("float32")
    dept = rng.integers(0, 2, size=(n, 4)).astype("float32")
    return title, body, tags, priority, dept


def test_multi_input_multi_output_list_losses():
    title_input = keras.Input(shape=(10,), name="title")
    body_input = keras.Input(shape=(20,), name="body")
    tags_input = keras.Input(shape=(12,), name="tags")
    x = layers.concatenate([layers.Dense(8)(title_input), layers.Dense(6)(body_input), tags_input])
    priority_pred = layers.Dense(1, name="priority")(x)
    department_pred = layers.Dense(4, name="department")(x)
    model = keras.Model(inputs=[title_input, body_input, tags_input],
                        outputs=[priority_pred, department_pred])
    assert [tuple(o.shape) for o in model.outputs] == [(None, 1), (None, 4)]
    model.compile(
        optimizer=keras.optimizers.RMSprop(1e-3),
        loss=[keras.losses.BinaryCrossentropy(from_logits=True),
              keras.losses.CategoricalCrossentropy(from_logits=True)],
        loss_weights=[1.0, 0.2],
    )
    title, body, tags, priority, dept = _ticket_data()
    h = model.fit([title, body, tags], [priority, dept], epochs=3, batch_size=16, verbose=0)
    assert {"loss", "priority_loss", "department_loss"} <= set(h.history)
    # total = 1.0 * priority + 0.2 * department
    logs = model.evaluate([title, body, tags], [priority, dept], verbose=0, return_dict=True)
    np.testing.assert_allclose(logs["loss"], logs["priority_loss"] + 0.2 * logs["department_loss"],
                               rtol=1e-4)


def test_multi_input_multi_output_dict_losses_and_metrics():
    model = _ticket_model()
    model.compile(
        optimizer=keras.optimizers.RMSprop(1e-3),
        loss={"priority": keras.losses.BinaryCrossentropy(from_logits=True),
              "department": keras.losses.CategoricalCrossentropy(from_logits=True)},
        loss_weights={"priority": 1.0, "department": 0.2},
        metrics={"department": ["categorical_accuracy"]},
    )
    title, body, tags, priority, dept = _ticket_data()
    h = model.fit({"title": title, "body": body, "tags": tags},
                  {"priority": priority, "department": dept},
                  epochs=2, batch_size=16, validation_split=0.25, verbose=0)
    keys = set(h.history)
    for k in ("loss", "priority_loss", "department_loss", "department_categorical_accuracy"):
        assert k in keys and "val_" + k in keys, (k, keys)
    out = model.predict({"title": title, "body": body, "tags": tags}, verbose=0)
    assert isinstance(out, dict) and out["priority"].shape == (32, 1)
    assert out["department"].shape == (32, 4)


def test_summary_of_a_multi_input_model_shows_connections():
    model = _ticket_model()
    lines = []
    model.summary(print_fn=lambda s, *a, **k: lines.append(s))
    text = "\n".join(lines)
    assert "Connected to" in text
    for name in ("title", "body", "tags", "priority", "department", "concatenate"):
        assert name in text


# ----------------------------------------------------------------- toy ResNet
def _toy_resnet():
    inputs = keras.Input(shape=(8, 8, 3), name="img")
    x = layers.Conv2D(8, 3, activation="relu")(inputs)
    x = layers.Conv2D(8, 3, activation="relu")(x)
    block_1_output = layers.MaxPooling2D(2)(x)
    x = layers.Conv2D(8, 3, activation="relu", padding="same")(block_1_output)
    x = layers.Conv2D(8, 3, activation="relu", padding="same")(x)
    block_2_output = layers.add([x, block_1_output])
    x = layers.Conv2D(8, 3, activation="relu", padding="same")(block_2_output)
    x = layers.Conv2D(8, 3, activation="relu", padding="same")(x)
    block_3_output = layers.add([x, block_2_output])
    x = layers.GlobalAveragePooling2D()(block_3_output)
    x = layers.Dense(16, activation="relu")(x)
    x = layers.Dropout(0.5)(x)
    outputs = layers.Dense(10)(x)
    return keras.Model(inputs, outputs, name="toy_resnet")


def test_toy_resnet_trains_and_summary_is_non_linear():
    model = _toy_resnet()
    lines = []
    model.summary(print_fn=lambda s, *a, **k: lines.append(s))
    text = "\n".join(lines)
    assert "Connected to" in text and "toy_resnet" in text
    assert "add" in text
    rng = np.random.default_rng(0)
    x = rng.random((16, 8, 8, 3)).astype("float32")
    y = keras.utils.to_categorical(rng.integers(0, 10, 16), 10) if _has("utils") else \
        np.eye(10, dtype="float32")[rng.integers(0, 10, 16)]
    model.compile(optimizer=keras.optimizers.RMSprop(1e-3),
                  loss=keras.losses.CategoricalCrossentropy(from_logits=True), metrics=["acc"])
    h = model.fit(x, y, batch_size=8, epochs=1, validation_split=0.25, verbose=0)
    assert {"loss", "acc", "val_loss", "val_acc"} <= set(h.history)
    assert model.predict(x, verbose=0).shape == (16, 10)


# ----------------------------------------------------------------- shared layers
def test_shared_layer_has_one_set_of_weights():
    shared = layers.Dense(5, name="shared_encoder")
    text_input_a = keras.Input(shape=(7,))
    text_input_b = keras.Input(shape=(7,))
    encoded_input_a = shared(text_input_a)
    encoded_input_b = shared(text_input_b)
    model = keras.Model([text_input_a, text_input_b], [encoded_input_a, encoded_input_b])
    assert len(model.trainable_weights) == 2
    a = np.random.default_rng(0).standard_normal((3, 7)).astype("float32")
    out_a, out_b = model.predict([a, a], verbose=0)
    np.testing.assert_array_equal(out_a, out_b)
    kernel, bias = shared.get_weights()
    np.testing.assert_allclose(out_a, a @ kernel + bias, rtol=1e-5, atol=1e-6)


def test_shared_layer_gradients_sum_over_both_calls():
    shared = layers.Dense(1, use_bias=False)
    ia, ib = keras.Input(shape=(3,)), keras.Input(shape=(3,))
    out = layers.add([shared(ia), shared(ib)])
    model = keras.Model([ia, ib], out)
    a = np.ones((2, 3), "float32")
    b = 2 * np.ones((2, 3), "float32")
    with keras.GradientTape() as tape:
        loss = ops.sum(model([a, b]))
    (g,) = tape.gradient(loss, model.trainable_weights)
    np.testing.assert_allclose(np.asarray(g), np.full((3, 1), 6.0), rtol=1e-6)


# ----------------------------------------------------------------- graph of layers
def test_feature_extraction_with_layer_outputs():
    inputs = keras.Input(shape=(6,))
    x = layers.Dense(5, activation="relu", name="block1")(inputs)
    x = layers.Dense(4, activation="relu", name="block2")(x)
    outputs = layers.Dense(2, name="predictions")(x)
    base = keras.Model(inputs, outputs)

    features_list = [layer.output for layer in base.layers]
    feat_extraction_model = keras.Model(inputs=base.input, outputs=features_list)
    data = np.random.default_rng(0).random((3, 6)).astype("float32")
    extracted = feat_extraction_model(data)
    assert [np.asarray(e).shape for e in extracted] == [(3, 6), (3, 5), (3, 4), (3, 2)]
    np.testing.assert_allclose(np.asarray(extracted[-1]), base.predict(data, verbose=0),
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(np.asarray(extracted[0]), data)
    block2 = base.get_layer("block2")
    assert block2.output is features_list[2]
    assert tuple(block2.input.shape) == (None, 5)


def test_model_inputs_and_outputs_lists():
    model = _ticket_model()
    assert [i.name for i in model.inputs] == ["title", "body", "tags"]
    assert len(model.outputs) == 2


# ----------------------------------------------------------------- custom layers
class CustomDense(layers.Layer):
    def __init__(self, units=32):
        super().__init__()
        self.units = units

    def build(self, input_shape):
        self.w = self.add_weight(shape=(input_shape[-1], self.units),
                                 initializer="random_normal", trainable=True)
        self.b = self.add_weight(shape=(self.units,), initializer="random_normal",
                                 trainable=True)

    def call(self, inputs):
        return ops.matmul(inputs, self.w) + self.b

    def get_config(self):
        return {"units": self.units}


def test_custom_layer_in_a_functional_model():
    inputs = keras.Input((4,))
    outputs = CustomDense(10)(inputs)
    model = keras.Model(inputs, outputs)
    assert tuple(outputs.shape) == (None, 10)
    data = np.random.default_rng(0).random((3, 4)).astype("float32")
    w, b = model.get_weights()
    np.testing.assert_allclose(model.predict(data, verbose=0), data @ w + b, rtol=1e-5, atol=1e-6)


def test_model_from_config_of_a_functional_model():
    inputs = keras.Input((4,))
    model = keras.Model(inputs, layers.Dense(3)(layers.Dense(5, activation="relu")(inputs)))
    config = model.get_config()
    new_model = keras.Model.from_config(config)
    assert [type(l).__name__ for l in new_model.layers] == [type(l).__name__ for l in model.layers]
    new_model.set_weights(model.get_weights())
    data = np.random.default_rng(0).random((3, 4)).astype("float32")
    np.testing.assert_array_equal(new_model.predict(data, verbose=0), model.predict(data, verbose=0))


def test_custom_layer_from_config_with_custom_objects():
    inputs = keras.Input((4,))
    outputs = CustomDense(10)(inputs)
    model = keras.Model(inputs, outputs)
    config = model.get_config()
    new_model = keras.Model.from_config(config, custom_objects={"CustomDense": CustomDense})
    assert isinstance(new_model.layers[-1], CustomDense)
    assert new_model.layers[-1].units == 10
    new_model.set_weights(model.get_weights())
    data = np.random.default_rng(0).random((3, 4)).astype("float32")
    np.testing.assert_allclose(new_model.predict(data, verbose=0), model.predict(data, verbose=0),
                               rtol=1e-6)


def test_custom_layer_model_saves_with_custom_objects(tmp_path):
    inputs = keras.Input((4,))
    outputs = CustomDense(3)(inputs)
    model = keras.Model(inputs, outputs)
    path = str(tmp_path / "custom.keras")
    model.save(path)
    loaded = keras.models.load_model(path, custom_objects={"CustomDense": CustomDense})
    data = np.random.default_rng(0).random((3, 4)).astype("float32")
    np.testing.assert_array_equal(loaded.predict(data, verbose=0), model.predict(data, verbose=0))


class ConfigurableDense(layers.Layer):
    def __init__(self, units=32, **kwargs):
        super().__init__(**kwargs)
        self.units = units

    def build(self, input_shape):
        self.w = self.add_weight(shape=(input_shape[-1], self.units), initializer="random_normal")
        self.b = self.add_weight(shape=(self.units,), initializer="zeros")

    def call(self, inputs):
        return ops.matmul(inputs, self.w) + self.b

    def get_config(self):
        config = super().get_config()
        config.update({"units": self.units})
        return config


def test_custom_layer_with_full_config_saves_and_loads(tmp_path):
    inputs = keras.Input((4,))
    outputs = ConfigurableDense(3, name="conf")(layers.Dense(4, activation="relu")(inputs))
    model = keras.Model(inputs, outputs)
    path = str(tmp_path / "conf.keras")
    model.save(path)
    loaded = keras.models.load_model(path, custom_objects={"ConfigurableDense": ConfigurableDense})
    assert isinstance(loaded.get_layer("conf"), ConfigurableDense)
    assert loaded.get_layer("conf").units == 3
    data = np.random.default_rng(0).random((3, 4)).astype("float32")
    np.testing.assert_array_equal(loaded.predict(data, verbose=0), model.predict(data, verbose=0))


def test_functional_model_inside_subclassed_model_and_vice_versa():
    class CustomMLP(keras.Model):
        def __init__(self):
            super().__init__()
            self.hidden = layers.Dense(8, activation="tanh")
            self.projection = layers.Dense(4)

        def call(self, inputs):
            return self.projection(self.hidden(inputs))

    # a subclassed model used in the functional API
    inputs = keras.Input(shape=(5,))
    x = layers.Dense(6)(inputs)
    mlp = CustomMLP()
    outputs = layers.Dense(1)(mlp(x))
    model = keras.Model(inputs, outputs)
    assert tuple(outputs.shape) == (None, 1)
    n_trainable = len(model.trainable_weights)
    assert n_trainable == 8
    data = np.random.default_rng(0).random((4, 5)).astype("float32")
    model.compile(optimizer="sgd", loss="mse")
    before = [w.copy() for w in mlp.get_weights()]
    model.fit(data, np.ones((4, 1), "float32"), epochs=1, verbose=0)
    assert all(not np.array_equal(a, b) for a, b in zip(before, mlp.get_weights()))

    # a functional model used inside a subclassed model
    class Wrapper(keras.Model):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner
            self.head = layers.Dense(2)

        def call(self, inputs):
            return self.head(self.inner(inputs))

    w = Wrapper(model)
    assert w(data).shape == (4, 2)
    assert len(w.trainable_weights) == n_trainable + 2


# ----------------------------------------------------------------- bad inputs
def test_incompatible_symbolic_shape_names_layer_and_shapes():
    inputs = keras.Input(shape=(4,))
    dense = layers.Dense(3, name="proj")
    dense(inputs)
    other = keras.Input(shape=(5,))
    with pytest.raises(ValueError) as e:
        dense(other)
    msg = str(e.value)
    assert "proj" in msg
    assert "4" in msg and "5" in msg


def test_add_of_mismatched_shapes_raises_value_error():
    a = keras.Input(shape=(4,))
    b = keras.Input(shape=(5,))
    with pytest.raises(ValueError) as e:
        layers.add([a, b])
    msg = str(e.value)
    assert "4" in msg and "5" in msg


def test_outputs_needing_an_undeclared_input_is_graph_disconnected():
    a = keras.Input(shape=(3,), name="a")
    b = keras.Input(shape=(3,), name="b_not_declared")
    out = layers.Dense(2)(layers.concatenate([a, b]))
    with pytest.raises(ValueError) as e:
        keras.Model(inputs=a, outputs=out)
    msg = str(e.value)
    assert "disconnected" in msg.lower() or "b_not_declared" in msg


def test_an_input_nothing_uses():
    a = keras.Input(shape=(3,), name="used")
    b = keras.Input(shape=(3,), name="unused_input")
    out = layers.Dense(2)(a)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            model = keras.Model(inputs=[a, b], outputs=out)
        except ValueError as e:
            assert "unused_input" in str(e)
            return
    if caught:
        assert any("unused_input" in str(w.message) for w in caught)
    # accepted: the model must still run with both inputs fed
    x = np.ones((2, 3), "float32")
    y = model.predict([x, 5 * x], verbose=0)
    np.testing.assert_allclose(y, model.layers[-1](x), rtol=1e-6)


def test_loss_dict_key_matching_no_output():
    model = _ticket_model()
    with pytest.raises(ValueError) as e:
        model.compile(optimizer="adam",
                      loss={"priority": "mse", "departmnet": "categorical_crossentropy"})
    msg = str(e.value)
    assert "departmnet" in msg and "department" in msg


def test_metric_dict_key_matching_no_output():
    model = _ticket_model()
    title, body, tags, priority, dept = _ticket_data(8)
    with pytest.raises(ValueError) as e:
        model.compile(optimizer="adam",
                      loss={"priority": "mse", "department": "categorical_crossentropy"},
                      metrics={"prio": ["mae"]})
        # Keras may only find out when the metrics are built, on the first batch
        model.fit([title, body, tags], {"priority": priority, "department": dept}, verbose=0)
    assert "prio" in str(e.value)


def test_calling_a_model_with_the_wrong_number_of_inputs():
    model = _ticket_model()
    title, body, tags, *_ = _ticket_data(4)
    with pytest.raises(ValueError) as e:
        model([title, body])
    msg = str(e.value)
    assert "3" in msg and "2" in msg


def test_predict_with_the_wrong_number_of_inputs():
    model = _ticket_model()
    title, body, tags, *_ = _ticket_data(4)
    with pytest.raises(ValueError):
        model.predict([title, body], verbose=0)


def test_duplicate_layer_names_are_rejected():
    inputs = keras.Input(shape=(3,))
    x = layers.Dense(2, name="same")(inputs)
    out = layers.Dense(2, name="same")(x)
    with pytest.raises(ValueError) as e:
        keras.Model(inputs, out)
    assert "same" in str(e.value)


# ----------------------------------------------------------------- history keys per output
def test_history_keys_per_output_with_list_metrics():
    inputs = keras.Input(shape=(6,))
    h = layers.Dense(8, activation="relu")(inputs)
    out_a = layers.Dense(3, activation="softmax", name="out_a")(h)
    out_b = layers.Dense(1, name="out_b")(h)
    model = keras.Model(inputs, [out_a, out_b])
    model.compile(optimizer="adam", loss=["sparse_categorical_crossentropy", "mse"],
                  metrics=[["accuracy"], ["mae"]])
    rng = np.random.default_rng(0)
    x = rng.random((20, 6)).astype("float32")
    ya = rng.integers(0, 3, 20)
    yb = rng.random((20, 1)).astype("float32")
    hist = model.fit(x, [ya, yb], epochs=2, batch_size=10, validation_data=(x, [ya, yb]),
                     verbose=0)
    expected = {"loss", "out_a_loss", "out_b_loss", "out_a_accuracy", "out_b_mae"}
    assert set(hist.history) == expected | {"val_" + k for k in expected}
    logs = model.evaluate(x, [ya, yb], verbose=0, return_dict=True)
    pa, pb = model.predict(x, verbose=0)
    np.testing.assert_allclose(logs["out_a_accuracy"], np.mean(pa.argmax(1) == ya), rtol=1e-6)
    np.testing.assert_allclose(logs["out_b_mae"], np.mean(np.abs(pb - yb)), rtol=1e-4)
    np.testing.assert_allclose(logs["loss"], logs["out_a_loss"] + logs["out_b_loss"], rtol=1e-4)


def test_history_keys_per_output_with_dict_metrics_and_targets():
    inputs = keras.Input(shape=(6,))
    out_a = layers.Dense(3, name="out_a")(inputs)
    out_b = layers.Dense(1, name="out_b")(inputs)
    model = keras.Model(inputs, {"out_a": out_a, "out_b": out_b})
    model.compile(optimizer="adam",
                  loss={"out_a": keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                        "out_b": "mse"},
                  metrics={"out_a": ["accuracy"]})
    rng = np.random.default_rng(1)
    x = rng.random((20, 6)).astype("float32")
    hist = model.fit(x, {"out_a": rng.integers(0, 3, 20),
                         "out_b": rng.random((20, 1)).astype("float32")},
                     epochs=1, verbose=0)
    assert set(hist.history) == {"loss", "out_a_loss", "out_b_loss", "out_a_accuracy"}


def test_target_dict_key_matching_no_output():
    inputs = keras.Input(shape=(6,))
    out_a = layers.Dense(3, name="out_a")(inputs)
    out_b = layers.Dense(1, name="out_b")(inputs)
    model = keras.Model(inputs, [out_a, out_b])
    model.compile(optimizer="adam", loss="mse")
    x = np.ones((4, 6), "float32")
    with pytest.raises(ValueError) as e:
        model.fit(x, {"out_a": np.ones((4, 3), "float32"), "out_c": np.ones((4, 1), "float32")},
                  verbose=0)
    assert "out_c" in str(e.value)


# ----------------------------------------------------------------- mix-and-match
class _CustomRNN(layers.Layer):
    def __init__(self, units, classifier):
        super().__init__()
        self.units = units
        self.projection_1 = layers.Dense(units=units, activation="tanh")
        self.projection_2 = layers.Dense(units=units, activation="tanh")
        self.classifier = classifier

    def call(self, inputs):
        outputs = []
        state = ops.zeros(shape=(inputs.shape[0], self.units))
        for t in range(inputs.shape[1]):
            x = inputs[:, t, :]
            h = self.projection_1(x)
            y = h + self.projection_2(state)
            state = y
            outputs.append(y)
        features = ops.stack(outputs, axis=1)
        return self.classifier(features)


def test_subclassed_rnn_layer_around_a_functional_classifier_lambda_pooling():
    units, timesteps, input_dim = 6, 4, 3
    inputs = keras.Input((None, units))
    x = layers.Lambda(lambda t: ops.mean(t, axis=1))(inputs)
    model = keras.Model(inputs, layers.Dense(1)(x))
    rnn_model = _CustomRNN(units, model)
    data = np.random.default_rng(0).random((2, timesteps, input_dim)).astype("float32")
    out = np.asarray(rnn_model(data))
    assert out.shape == (2, 1)
    # the same numbers by hand
    w1, b1 = rnn_model.projection_1.get_weights()
    w2, b2 = rnn_model.projection_2.get_weights()
    state = np.zeros((2, units), "float32")
    feats = []
    for t in range(timesteps):
        state = np.tanh(data[:, t, :] @ w1 + b1) + np.tanh(state @ w2 + b2)
        feats.append(state)
    wd, bd = model.layers[-1].get_weights()
    np.testing.assert_allclose(out, np.stack(feats, 1).mean(1) @ wd + bd, rtol=1e-4, atol=1e-5)


def test_subclassed_rnn_layer_around_a_functional_classifier():
    units, timesteps, input_dim = 6, 4, 3
    inputs = keras.Input((None, units))
    x = layers.GlobalAveragePooling1D()(inputs)
    outputs = layers.Dense(1)(x)
    model = keras.Model(inputs, outputs)

    class CustomRNN(layers.Layer):
        def __init__(self):
            super().__init__()
            self.units = units
            self.projection_1 = layers.Dense(units=units, activation="tanh")
            self.projection_2 = layers.Dense(units=units, activation="tanh")
            self.classifier = model

        def call(self, inputs):
            outputs = []
            state = ops.zeros(shape=(inputs.shape[0], self.units))
            for t in range(inputs.shape[1]):
                x = inputs[:, t, :]
                h = self.projection_1(x)
                y = h + self.projection_2(state)
                state = y
                outputs.append(y)
            features = ops.stack(outputs, axis=1)
            return self.classifier(features)

    rnn_model = CustomRNN()
    out = rnn_model(ops.zeros((2, timesteps, input_dim)))
    assert np.asarray(out).shape == (2, 1)


def test_static_batch_size_propagates():
    inputs = keras.Input(batch_shape=(2, 3))
    assert tuple(inputs.shape) == (2, 3)
    assert tuple(layers.Dense(1)(inputs).shape) == (2, 1)


def test_functional_model_with_static_batch_size_and_conv1d():
    batch_size, timesteps, input_dim = 2, 6, 3
    inputs = keras.Input(batch_shape=(batch_size, timesteps, input_dim))
    assert tuple(inputs.shape) == (2, 6, 3)
    x = layers.Conv1D(4, 3)(inputs)
    outputs = layers.Dense(1)(layers.Flatten()(x))
    model = keras.Model(inputs, outputs)
    assert model.predict(np.ones((2, 6, 3), "float32"), verbose=0).shape == (2, 1)


def test_layers_with_a_loop_over_time_in_a_functional_model():
    # the guide's CustomRNN idea on symbolic inputs, with layers that exist everywhere
    class StepSum(layers.Layer):
        def __init__(self, units, **kwargs):
            super().__init__(**kwargs)
            self.units = units
            self.proj = layers.Dense(units, activation="tanh")

        def call(self, inputs):
            state = None
            for t in range(inputs.shape[1]):
                h = self.proj(inputs[:, t, :])
                state = h if state is None else state + h
            return state

    inputs = keras.Input((4, 3))
    out = layers.Dense(1)(StepSum(5)(inputs))
    assert tuple(out.shape) == (None, 1)
    model = keras.Model(inputs, out)
    rng = np.random.default_rng(0)
    x = rng.random((8, 4, 3)).astype("float32")
    y = x.sum(axis=(1, 2))[:, None]
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mse")
    hist = model.fit(x, y, epochs=5, verbose=0)
    assert hist.history["loss"][-1] < hist.history["loss"][0]


# ----------------------------------------------------------------- more of the surface
def test_saved_model_resumes_training_identically(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.random((16, 4)).astype("float32")
    y = rng.random((16, 1)).astype("float32")
    inputs = keras.Input((4,))
    model = keras.Model(inputs, layers.Dense(1)(layers.Dense(5, activation="relu")(inputs)))
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mse")
    model.fit(x, y, epochs=2, batch_size=4, shuffle=False, verbose=0)
    path = str(tmp_path / "resume.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    # the optimizer state came back: one more epoch on each gives the same weights
    model.fit(x, y, epochs=1, batch_size=4, shuffle=False, verbose=0)
    loaded.fit(x, y, epochs=1, batch_size=4, shuffle=False, verbose=0)
    for a, b in zip(model.get_weights(), loaded.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_inputs_as_a_dict():
    a = keras.Input((3,), name="a")
    b = keras.Input((2,), name="b")
    out = layers.Dense(1)(layers.concatenate([a, b]))
    model = keras.Model(inputs={"a": a, "b": b}, outputs=out)
    xa = np.ones((4, 3), "float32")
    xb = np.full((4, 2), 2.0, "float32")
    w, bias = model.layers[-1].get_weights()
    np.testing.assert_allclose(model.predict({"a": xa, "b": xb}, verbose=0),
                               np.concatenate([xa, xb], 1) @ w + bias, rtol=1e-5)
    model.compile(optimizer="sgd", loss="mse")
    model.fit({"a": xa, "b": xb}, np.ones((4, 1), "float32"), verbose=0)


def test_dropout_is_active_only_in_training():
    inputs = keras.Input((50,))
    outputs = layers.Dropout(0.5)(inputs)
    model = keras.Model(inputs, outputs)
    x = np.ones((4, 50), "float32")
    np.testing.assert_array_equal(model.predict(x, verbose=0), x)
    y = np.asarray(model(x, training=True))
    assert 0.2 < (y == 0).mean() < 0.8
    np.testing.assert_allclose(y[y != 0], 2.0)


# ----------------------------------------------------------------- keras.ops on symbolic tensors
def test_ops_on_symbolic_tensors_build_a_model():
    inputs = keras.Input((3,))
    h = layers.Dense(4)(inputs)
    outputs = ops.mean(ops.exp(h), axis=-1, keepdims=True)
    assert tuple(outputs.shape) == (None, 1)
    model = keras.Model(inputs, outputs)
    x = np.ones((2, 3), "float32")
    w, b = model.layers[1].get_weights()
    np.testing.assert_allclose(model.predict(x, verbose=0),
                               np.exp(x @ w + b).mean(-1, keepdims=True), rtol=1e-5)


def test_python_operators_on_symbolic_tensors():
    inputs = keras.Input((3,))
    outputs = layers.Dense(2)(inputs) * 2.0 + 1.0
    assert tuple(outputs.shape) == (None, 2)
    model = keras.Model(inputs, outputs)
    assert model.predict(np.ones((2, 3), "float32"), verbose=0).shape == (2, 2)


def test_slicing_a_symbolic_tensor():
    inputs = keras.Input((3,))
    first_two = inputs[:, :2]
    assert tuple(first_two.shape) == (None, 2)
    model = keras.Model(inputs, layers.Dense(1)(first_two))
    assert model.predict(np.ones((2, 3), "float32"), verbose=0).shape == (2, 1)
