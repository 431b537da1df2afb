"""The Keras guide "The Sequential model", feature by feature, as small programs."""
import numpy as np
import pytest

import fastdl as keras
from fastdl import layers, ops


def _summary(model):
    lines = []
    model.summary(print_fn=lambda s, *a, **k: lines.append(s))
    return "\n".join(lines)


def test_sequential_is_a_chain_of_calls():
    model = keras.Sequential([
        layers.Dense(2, activation="relu", name="layer1"),
        layers.Dense(3, activation="relu", name="layer2"),
        layers.Dense(4, name="layer4"),
    ])
    x = ops.ones((3, 3))
    y = model(x)
    assert np.asarray(y).shape == (3, 4)
    layer1, layer2, layer3 = model.layers
    np.testing.assert_allclose(np.asarray(y), np.asarray(layer3(layer2(layer1(x)))), rtol=1e-6)
    # and the same numbers by hand
    h = np.ones((3, 3), "float32")
    for layer, relu in ((layer1, True), (layer2, True), (layer3, False)):
        w, b = layer.get_weights()
        h = h @ w + b
        if relu:
            h = np.maximum(h, 0)
    np.testing.assert_allclose(np.asarray(y), h, rtol=1e-5, atol=1e-6)


def test_add_and_pop():
    model = keras.Sequential(name="my_sequential")
    model.add(layers.Dense(2, activation="relu"))
    model.add(layers.Dense(3, activation="relu"))
    model.add(layers.Dense(4))
    assert model.name == "my_sequential"
    assert len(model.layers) == 3
    model.pop()
    assert len(model.layers) == 2
    assert model(np.ones((2, 5), "float32")).shape == (2, 3)


def test_layer_weights_are_created_on_first_call():
    layer = layers.Dense(3)
    assert layer.weights == []
    x = ops.ones((1, 4))
    layer(x)
    assert len(layer.weights) == 2
    assert layer.weights[0].shape == (4, 3)


def test_model_builds_on_first_call():
    model = keras.Sequential([
        layers.Dense(2, activation="relu"),
        layers.Dense(3, activation="relu"),
        layers.Dense(4),
    ])
    x = ops.ones((1, 4))
    model(x)
    assert len(model.weights) == 6
    assert "Total params" in _summary(model)


def test_input_object_starts_the_model():
    model = keras.Sequential()
    model.add(keras.Input(shape=(4,)))
    model.add(layers.Dense(2, activation="relu"))
    # the Input is not a layer of the model
    assert len(model.layers) == 1
    assert len(model.weights) == 2
    text = _summary(model)
    assert "Total params: 10" in text


def test_input_shape_argument_on_first_layer():
    model = keras.Sequential()
    model.add(layers.Dense(2, activation="relu", input_shape=(4,)))
    assert len(model.weights) == 2


def test_debugging_workflow_add_then_summary():
    model = keras.Sequential()
    model.add(keras.Input(shape=(30, 30, 3)))
    model.add(layers.Conv2D(4, 5, strides=2, activation="relu"))
    model.add(layers.Conv2D(4, 3, activation="relu"))
    model.add(layers.MaxPooling2D(3))
    assert tuple(model.output_shape) == (None, 3, 3, 4)
    text = _summary(model)
    assert "(None, 3, 3, 4)" in text
    model.add(layers.Conv2D(4, 3, activation="relu", padding="same"))
    model.add(layers.GlobalAveragePooling2D())
    model.add(layers.Dense(10))
    assert tuple(model.output_shape) == (None, 10)
    x = np.random.default_rng(0).random((2, 30, 30, 3)).astype("float32")
    assert model.predict(x, verbose=0).shape == (2, 10)


def test_global_max_pooling_from_the_guide():
    model = keras.Sequential([keras.Input(shape=(6, 6, 3)), layers.Conv2D(4, 3),
                              layers.GlobalMaxPooling2D(), layers.Dense(2)])
    x = np.random.default_rng(0).random((2, 6, 6, 3)).astype("float32")
    assert model.predict(x, verbose=0).shape == (2, 2)


def test_feature_extraction_from_a_sequential_model():
    initial_model = keras.Sequential([
        keras.Input(shape=(16, 16, 3)),
        layers.Conv2D(4, 5, strides=2, activation="relu"),
        layers.Conv2D(4, 3, activation="relu", name="my_intermediate_layer"),
        layers.Conv2D(4, 3, activation="relu"),
    ])
    feature_extractor = keras.Model(
        inputs=initial_model.inputs,
        outputs=[layer.output for layer in initial_model.layers],
    )
    x = np.ones((1, 16, 16, 3), "float32")
    features = feature_extractor(x)
    assert [tuple(np.asarray(f).shape) for f in features] == [(1, 6, 6, 4), (1, 4, 4, 4),
                                                              (1, 2, 2, 4)]
    np.testing.assert_allclose(np.asarray(features[-1]), initial_model.predict(x, verbose=0),
                               rtol=1e-5, atol=1e-6)
    one = keras.Model(inputs=initial_model.inputs,
                      outputs=initial_model.get_layer(name="my_intermediate_layer").output)
    np.testing.assert_allclose(np.asarray(one(x)), np.asarray(features[1]), rtol=1e-6)


def test_layer_output_of_a_sequential_model():
    model = keras.Sequential([keras.Input((4,)), layers.Dense(3, name="a"), layers.Dense(2)])
    assert tuple(model.get_layer("a").output.shape) == (None, 3)


def test_transfer_learning_freezes_all_but_last_layer():
    model = keras.Sequential([
        keras.Input(shape=(6,)),
        layers.Dense(8, activation="relu"),
        layers.Dense(8, activation="relu"),
        layers.Dense(3),
    ])
    for layer in model.layers[:-1]:
        layer.trainable = False
    assert len(model.trainable_weights) == 2
    assert len(model.non_trainable_weights) == 4
    before = [layer.get_weights() for layer in model.layers]
    rng = np.random.default_rng(0)
    x = rng.random((16, 6)).astype("float32")
    y = rng.integers(0, 3, 16)
    model.compile(optimizer="adam",
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x, y, epochs=2, verbose=0)
    after = [layer.get_weights() for layer in model.layers]
    for frozen_before, frozen_after in zip(before[:2], after[:2]):
        for a, b in zip(frozen_before, frozen_after):
            np.testing.assert_array_equal(a, b)
    assert not np.array_equal(before[2][0], after[2][0])
    assert "Non-trainable params" in _summary(model)


def test_freezing_does_not_reorder_get_weights():
    model = keras.Sequential([keras.Input(shape=(3,)), layers.Dense(4), layers.Dense(1)])
    shapes = [w.shape for w in model.get_weights()]
    model.layers[0].trainable = False
    assert [w.shape for w in model.get_weights()] == shapes == [(3, 4), (4,), (4, 1), (1,)]


def test_fit_evaluate_predict_and_loss_decreases():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 5)).astype("float32")
    y = (x @ rng.standard_normal((5, 1))).astype("float32")
    model = keras.Sequential([keras.Input(shape=(5,)), layers.Dense(8, activation="tanh"),
                              layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mse", metrics=["mae"])
    h = model.fit(x, y, batch_size=16, epochs=10, verbose=0, validation_data=(x[:16], y[:16]))
    assert set(h.history) == {"loss", "mae", "val_loss", "val_mae"}
    assert h.history["loss"][-1] < 0.5 * h.history["loss"][0]
    loss, mae = model.evaluate(x, y, verbose=0)
    pred = model.predict(x, verbose=0)
    np.testing.assert_allclose(loss, np.mean((pred - y) ** 2), rtol=1e-4)
    np.testing.assert_allclose(mae, np.mean(np.abs(pred - y)), rtol=1e-4)


def test_sequential_save_and_load(tmp_path):
    model = keras.Sequential([keras.Input(shape=(5,)), layers.Dense(4, activation="relu"),
                              layers.Dense(2, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    x = np.random.default_rng(0).random((8, 5)).astype("float32")
    model.fit(x, np.arange(8) % 2, epochs=1, verbose=0)
    path = str(tmp_path / "seq.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    assert isinstance(loaded, keras.Sequential)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    wpath = str(tmp_path / "seq.weights.h5")
    model.save_weights(wpath)
    fresh = keras.Sequential([keras.Input(shape=(5,)), layers.Dense(4, activation="relu"),
                              layers.Dense(2, activation="softmax")])
    fresh.load_weights(wpath)
    np.testing.assert_array_equal(fresh.predict(x, verbose=0), model.predict(x, verbose=0))


def test_sequential_called_on_the_wrong_feature_size():
    model = keras.Sequential([keras.Input(shape=(4,)), layers.Dense(3)])
    with pytest.raises(ValueError) as e:
        model(np.ones((2, 5), "float32"))
    msg = str(e.value)
    assert "4" in msg and "5" in msg


def test_build_then_summary():
    model = keras.Sequential([layers.Dense(2, activation="relu"), layers.Dense(3)])
    model.build((None, 4))
    assert len(model.weights) == 4
    text = _summary(model)
    assert "Total params: 19" in text


def test_sequential_inside_sequential():
    inner = keras.Sequential([layers.Dense(3, activation="relu"), layers.Dense(2)], name="inner")
    outer = keras.Sequential([keras.Input(shape=(4,)), inner, layers.Dense(1)])
    x = np.random.default_rng(0).random((5, 4)).astype("float32")
    assert outer.predict(x, verbose=0).shape == (5, 1)
    assert len(outer.trainable_weights) == 6
    np.testing.assert_allclose(outer.predict(x, verbose=0),
                               outer.layers[-1](inner.predict(x, verbose=0)), rtol=1e-5, atol=1e-6)
    outer.compile(optimizer="sgd", loss="mse")
    before = inner.get_weights()
    outer.fit(x, np.ones((5, 1), "float32"), epochs=1, verbose=0)
    assert any(not np.array_equal(a, b) for a, b in zip(before, inner.get_weights()))


def test_fit_with_mismatched_sample_counts():
    model = keras.Sequential([keras.Input(shape=(4,)), layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    with pytest.raises(ValueError) as e:
        model.fit(np.ones((10, 4), "float32"), np.ones((9, 1), "float32"), verbose=0)
    msg = str(e.value)
    assert "10" in msg and "9" in msg


def test_fit_before_compile():
    model = keras.Sequential([keras.Input(shape=(4,)), layers.Dense(1)])
    with pytest.raises(ValueError) as e:
        model.fit(np.ones((4, 4), "float32"), np.ones((4, 1), "float32"), verbose=0)
    assert "compile" in str(e.value)


def test_unknown_loss_name():
    model = keras.Sequential([keras.Input(shape=(4,)), layers.Dense(1)])
    with pytest.raises(ValueError) as e:
        model.compile(optimizer="sgd", loss="mean_sqared_error")
    assert "mean_sqared_error" in str(e.value)


def test_unknown_layer_activation():
    with pytest.raises(ValueError) as e:
        layers.Dense(2, activation="relux")
    assert "relux" in str(e.value)
