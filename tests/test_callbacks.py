"""Callbacks: hooks and their order, EarlyStopping, ModelCheckpoint, TerminateOnNaN, Ctrl-C."""
import numpy as np
import pytest

import fastdl
from fastdl import callbacks, layers, models


def _setup(n=96):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, 4)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64)
    fastdl.set_seed(0)
    m = models.Sequential([layers.Dense(8, activation="relu", input_shape=(4,)),
                           layers.Dense(2, activation="softmax")])
    m.compile("adam", "sparse_categorical_crossentropy", ["accuracy"])
    return m, x, y


class Recorder(callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.events = []

    def on_train_begin(self, logs=None): self.events.append("train_begin")
    def on_train_end(self, logs=None): self.events.append("train_end")
    def on_epoch_begin(self, epoch, logs=None): self.events.append(f"epoch_begin{epoch}")
    def on_epoch_end(self, epoch, logs=None): self.events.append((f"epoch_end{epoch}", sorted(logs)))
    def on_train_batch_begin(self, batch, logs=None): self.events.append(f"b{batch}")
    def on_train_batch_end(self, batch, logs=None): self.events.append(("e", batch, sorted(logs)))


def test_hook_order_and_logs():
    m, x, y = _setup(64)
    r = Recorder()
    m.fit(x, y, epochs=2, batch_size=32, verbose=0, callbacks=[r], validation_split=0.5)
    ev = r.events
    assert ev[0] == "train_begin" and ev[-1] == "train_end"
    assert ev[1:5] == ["epoch_begin0", "b0", ("e", 0, ["accuracy", "loss"]),
                       ("epoch_end0", ["accuracy", "loss", "val_accuracy", "val_loss"])]
    assert r.model is m and r.params["epochs"] == 2


def test_on_batch_end_alias_receives_logs():
    m, x, y = _setup(64)
    got = []

    class CB(callbacks.Callback):
        def on_batch_end(self, batch, logs=None):
            got.append(logs["loss"])
    m.fit(x, y, epochs=1, batch_size=16, verbose=0, callbacks=[CB()])
    assert len(got) == 4 and all(np.isfinite(got))


def test_early_stopping_restores_best_weights():
    m, x, y = _setup()
    vals = iter([1.0, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.1])
    snapshots = {}

    class Fake(callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            logs["val_loss"] = next(vals)
            snapshots[epoch] = self.model.get_weights()
    es = callbacks.EarlyStopping(monitor="val_loss", patience=2, restore_best_weights=True)
    h = m.fit(x, y, epochs=8, verbose=0, callbacks=[Fake(), es])
    assert len(h.history["loss"]) == 4 and es.stopped_epoch == 3
    for a, b in zip(m.get_weights(), snapshots[1]):
        np.testing.assert_array_equal(a, b)


def test_early_stopping_min_delta():
    m, x, y = _setup()
    vals = iter([1.0, 0.99, 0.98, 0.97, 0.5])

    class Fake(callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            logs["loss_x"] = next(vals)
    es = callbacks.EarlyStopping(monitor="loss_x", patience=2, min_delta=0.05)
    h = m.fit(x, y, epochs=5, verbose=0, callbacks=[Fake(), es])
    assert len(h.history["loss"]) == 3


def test_model_checkpoint_save_best_only(tmp_path):
    m, x, y = _setup()
    vals = iter([0.5, 0.7, 0.4, 0.9])
    saved = []

    class Fake(callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            logs["val_loss"] = next(vals)
    path = tmp_path / "best.keras"

    class Spy(callbacks.ModelCheckpoint):
        def on_epoch_end(self, epoch, logs=None):
            before = path.stat().st_mtime_ns if path.exists() else None
            super().on_epoch_end(epoch, logs)
            if path.exists() and path.stat().st_mtime_ns != before:
                saved.append(epoch)
    ck = Spy(path, monitor="val_loss", save_best_only=True)
    m.fit(x, y, epochs=4, verbose=0, callbacks=[Fake(), ck])
    assert ck.best == 0.4 and 0 in saved and 1 not in saved and 3 not in saved
    assert models.load_model(path).count_params() == m.count_params()
    ck2 = callbacks.ModelCheckpoint(str(tmp_path / "w{epoch}.weights.h5"), save_weights_only=True)
    m.fit(x, y, epochs=2, verbose=0, callbacks=[ck2])
    assert (tmp_path / "w1.weights.h5").exists() and (tmp_path / "w2.weights.h5").exists()


def test_terminate_on_nan():
    m, x, y = _setup()
    m = models.Sequential([layers.Dense(2, activation="softmax", input_shape=(4,))])
    m.compile("adam", "sparse_categorical_crossentropy")
    x = x.copy()
    x[40:] = np.nan
    h = m.fit(x, y, epochs=3, batch_size=16, verbose=0, callbacks=[callbacks.TerminateOnNaN()],
              shuffle=False)
    assert len(h.history.get("loss", [])) <= 1


def test_keyboard_interrupt_stops_cleanly():
    m, x, y = _setup()

    class Interrupt(callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if batch == 1:
                raise KeyboardInterrupt
    before = m.get_weights()
    h = m.fit(x, y, epochs=3, batch_size=16, verbose=0, callbacks=[Interrupt()])
    assert isinstance(h, callbacks.History)
    assert any(not np.array_equal(a, b) for a, b in zip(before, m.get_weights()))
    assert m.predict(x).shape == (len(x), 2)


def test_history_is_returned_and_stored():
    m, x, y = _setup()
    h = m.fit(x, y, epochs=2, verbose=0)
    assert m.history is h and h.epoch == [0, 1]
