"""A Keras guide program with only its imports changed: the keras-io "Timeseries
classification from scratch" model (Conv1D + BatchNormalization + ReLU blocks, global
average pooling, softmax) trained with ModelCheckpoint(save_best_only) into a folder that does
not exist yet, ReduceLROnPlateau and EarlyStopping, on small synthetic series (--smoke size)."""
import numpy as np
import pytest

import fastdl as keras

pytest.importorskip("h5py")   # the checkpoint is a Keras-format .keras file


def make_data(n, steps=64, seed=0):
    # class 1: a sine burst somewhere in the series; class 0: noise only
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 0.3, (n, steps, 1)).astype("float32")
    y = rng.integers(0, 2, n)
    t = np.arange(16)
    for i in np.flatnonzero(y):
        s = rng.integers(0, steps - 16)
        x[i, s:s + 16, 0] += np.sin(t * np.pi / 4)
    return x, y


def make_model(input_shape, num_classes):
    input_layer = keras.layers.Input(input_shape)

    conv1 = keras.layers.Conv1D(filters=16, kernel_size=3, padding="same")(input_layer)
    conv1 = keras.layers.BatchNormalization()(conv1)
    conv1 = keras.layers.ReLU()(conv1)

    conv2 = keras.layers.Conv1D(filters=16, kernel_size=3, padding="same")(conv1)
    conv2 = keras.layers.BatchNormalization()(conv2)
    conv2 = keras.layers.ReLU()(conv2)

    conv3 = keras.layers.Conv1D(filters=16, kernel_size=3, padding="same")(conv2)
    conv3 = keras.layers.BatchNormalization()(conv3)
    conv3 = keras.layers.ReLU()(conv3)

    gap = keras.layers.GlobalAveragePooling1D()(conv3)

    output_layer = keras.layers.Dense(num_classes, activation="softmax")(gap)

    return keras.models.Model(inputs=input_layer, outputs=output_layer)


def test_timeseries_classification_program(tmp_path):
    keras.utils.set_random_seed(1)
    # enough steps (BatchNormalization's moving statistics, momentum 0.99, need a few
    # hundred to settle: with fewer, inference collapses to one class in Keras as well)
    x_train, y_train = make_data(1024)
    x_test, y_test = make_data(128, seed=1)
    num_classes = len(np.unique(y_train))

    model = make_model(input_shape=x_train.shape[1:], num_classes=num_classes)
    best = tmp_path / "not" / "yet" / "best_model.keras"
    callbacks = [
        keras.callbacks.ModelCheckpoint(str(best), save_best_only=True, monitor="val_loss"),
        keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.5, patience=4,
                                          min_lr=0.0001),
        keras.callbacks.EarlyStopping(monitor="val_loss", patience=8, verbose=0),
    ]
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                  metrics=["sparse_categorical_accuracy"])
    history = model.fit(x_train, y_train, batch_size=16, epochs=16, callbacks=callbacks,
                        validation_split=0.2, verbose=0)

    loss = history.history["loss"]
    assert loss[-1] < 0.7 * loss[0], loss
    assert set(history.history) >= {"loss", "val_loss", "sparse_categorical_accuracy",
                                    "val_sparse_categorical_accuracy", "learning_rate"}
    assert best.exists()
    restored = keras.models.load_model(str(best))
    assert [type(l).__name__ for l in restored.layers] == [type(l).__name__ for l in model.layers]
    test_loss, test_acc = restored.evaluate(x_test, y_test, verbose=0)
    assert test_acc > 0.75, test_acc
    # the best checkpoint holds the epoch with the lowest val_loss
    assert restored.evaluate(x_train[-205:], y_train[-205:], verbose=0)[0] == pytest.approx(
        min(history.history["val_loss"]), rel=1e-4, abs=1e-5)
