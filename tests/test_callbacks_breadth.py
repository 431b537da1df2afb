"""Callbacks: ReduceLROnPlateau, LearningRateScheduler, CSVLogger, BackupAndRestore,
ModelCheckpoint (patterns, save_freq, folders), LambdaCallback, logs dicts."""
import csv
import os

import numpy as np
import pytest

import fastdl as keras
from fastdl import callbacks, layers, optimizers


def _data(n=64, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 4)).astype(np.float32)
    y = (x @ rng.standard_normal((4, 1))).astype(np.float32)
    return x, y


def _model(opt=None, input_shape=True, seed=0):
    keras.set_seed(seed)
    kw = {"input_shape": (4,)} if input_shape else {}
    m = keras.Sequential([layers.Dense(6, activation="relu", **kw), layers.Dense(1)])
    m.compile(opt if opt is not None else optimizers.Adam(0.01), "mse")
    return m


# ------------------------------------------------------------------ logs
class LogsChecker(callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.calls = []

    def _check(self, name, logs):
        assert isinstance(logs, dict), f"{name} got logs={logs!r}"
        self.calls.append(name)


for _h in callbacks._HOOKS:
    if "batch" in _h or "epoch" in _h:
        setattr(LogsChecker, _h, (lambda h: lambda self, i, logs=None: self._check(h, logs))(_h))
    else:
        setattr(LogsChecker, _h, (lambda h: lambda self, logs=None: self._check(h, logs))(_h))


@pytest.mark.parametrize("opt", ["adam", "custom"])
def test_every_hook_gets_a_logs_dict(opt):
    x, y = _data(32)
    m = _model()
    if opt == "custom":   # the tape path rather than the fused plan
        m.compile(optimizers.SGD(0.01), loss=lambda a, b: keras.ops.mean((a - b) ** 2))
    c = LogsChecker()
    m.fit(x, y, epochs=2, batch_size=16, verbose=0, callbacks=[c], validation_split=0.25)
    m.evaluate(x, y, batch_size=16, verbose=0, callbacks=[c])
    m.predict(x, batch_size=16, verbose=0, callbacks=[c])
    assert c.calls.count("on_predict_batch_end") == 2
    for h in ("on_predict_begin", "on_predict_batch_begin", "on_predict_end"):
        assert h in c.calls, h
    for h in ("on_train_begin", "on_epoch_begin", "on_train_batch_begin", "on_train_batch_end",
              "on_epoch_end", "on_train_end", "on_test_begin", "on_test_batch_begin",
              "on_test_batch_end", "on_test_end"):
        assert h in c.calls, h


def test_callback_list_never_passes_none():
    got = []
    cb = callbacks.LambdaCallback(on_train_begin=lambda logs: got.append(logs),
                                  on_epoch_end=lambda e, logs: got.append(logs))
    cbl = callbacks.CallbackList([cb], None, {})
    cbl.call("on_train_begin", None)
    cbl.call("on_train_begin")
    cbl.call("on_epoch_end", 0, None)
    assert got == [{}, {}, {}]


def test_callback_list_keras_signature():
    got = []
    cb = callbacks.LambdaCallback(on_epoch_end=lambda e, logs: got.append((e, dict(logs))))
    m = _model()
    cbl = callbacks.CallbackList([cb], add_history=True, model=m, epochs=2)
    assert cb.model is m and cb.params == {"epochs": 2}
    assert isinstance(cbl.callbacks[-1], callbacks.History)
    cbl.on_train_begin()
    cbl.on_epoch_begin(0)
    cbl.on_train_batch_end(0, {"loss": 1.0})
    cbl.on_epoch_end(0, {"loss": 0.5})
    cbl.on_train_end()
    assert got == [(0, {"loss": 0.5})] and cbl.callbacks[-1].history == {"loss": [0.5]}
    with pytest.raises(AttributeError):
        cbl.on_nothing


def test_lambda_callback_keras_names_and_batch_hooks():
    x, y = _data(32)
    m = _model()
    seen = {"b": [], "e": [], "tb": 0, "te": 0, "eb": []}
    cb = callbacks.LambdaCallback(
        on_epoch_begin=lambda epoch, logs: seen["eb"].append(epoch),
        on_epoch_end=lambda epoch, logs: seen["e"].append(sorted(logs)),
        on_train_begin=lambda logs: seen.__setitem__("tb", seen["tb"] + 1),
        on_train_end=lambda logs: seen.__setitem__("te", seen["te"] + 1),
        on_train_batch_end=lambda batch, logs: seen["b"].append((batch, "loss" in logs)))
    m.fit(x, y, epochs=2, batch_size=16, verbose=0, callbacks=[cb])
    assert seen["tb"] == seen["te"] == 1 and seen["eb"] == [0, 1]
    assert seen["b"] == [(0, True), (1, True)] * 2
    assert seen["e"] == [["loss"], ["loss"]]
    with pytest.raises(ValueError, match="unknown hook 'on_epoch_ends'"):
        callbacks.LambdaCallback(on_epoch_ends=print)
    with pytest.raises(TypeError, match="callable"):
        callbacks.LambdaCallback(on_epoch_end=3)


# ------------------------------------------------------------------ ReduceLROnPlateau
def _drive(cb, values, lr=0.1, key="val_loss"):
    """Call cb.on_epoch_end with the monitored value of each epoch; the lr after each."""
    m = _model(optimizers.SGD(lr))
    cb.set_model(m)
    cb.on_train_begin({})
    out = []
    for e, v in enumerate(values):
        logs = {key: v}
        cb.on_epoch_end(e, logs)
        assert logs["learning_rate"] == pytest.approx(out[-1] if out else lr)
        out.append(m.optimizer.learning_rate)
    return out


def test_reduce_lr_defaults():
    cb = callbacks.ReduceLROnPlateau()
    assert (cb.monitor, cb.factor, cb.patience, cb.verbose, cb.mode, cb.min_delta, cb.cooldown,
            cb.min_lr) == ("val_loss", 0.1, 10, 0, "auto", 1e-4, 0, 0.0)


def test_reduce_lr_after_patience():
    lrs = _drive(callbacks.ReduceLROnPlateau(factor=0.5, patience=2), [1.0, 1.0, 1.0, 1.0, 1.0])
    np.testing.assert_allclose(lrs, [0.1, 0.1, 0.05, 0.05, 0.025])


def test_reduce_lr_min_delta_improvement_resets_wait():
    # 0.99995 is not an improvement of min_delta=1e-4 over 1.0; 0.5 is
    lrs = _drive(callbacks.ReduceLROnPlateau(factor=0.5, patience=2), [1.0, 0.99995, 0.5, 0.5])
    np.testing.assert_allclose(lrs, [0.1, 0.1, 0.1, 0.1])


def test_reduce_lr_cooldown_and_min_lr():
    lrs = _drive(callbacks.ReduceLROnPlateau(factor=0.5, patience=1, cooldown=2, min_lr=0.03),
                 [1.0] * 8)
    # Keras' counting: reduce at epoch 1; the cooldown counts down at epochs 2 and 3, and
    # epoch 3, its last, may reduce again (clamped to min_lr); then it stays
    np.testing.assert_allclose(lrs, [0.1, 0.05, 0.05, 0.03, 0.03, 0.03, 0.03, 0.03])


def test_reduce_lr_max_mode_for_accuracy():
    lrs = _drive(callbacks.ReduceLROnPlateau(monitor="val_accuracy", factor=0.5, patience=1),
                 [0.5, 0.6, 0.6], key="val_accuracy")
    np.testing.assert_allclose(lrs, [0.1, 0.1, 0.05])


def test_reduce_lr_in_fit_and_history():
    x, y = _data()
    m = _model(optimizers.SGD(0.01))
    cb = callbacks.ReduceLROnPlateau(monitor="loss", mode="max", factor=0.5, patience=1)
    h = m.fit(x, y, epochs=4, batch_size=16, verbose=0, callbacks=[cb])
    # loss falls, which in mode "max" never improves after the first epoch
    np.testing.assert_allclose(h.history["learning_rate"], [0.01, 0.01, 0.005, 0.0025])
    assert m.optimizer.learning_rate == pytest.approx(0.00125)


def test_reduce_lr_errors_and_missing_metric():
    with pytest.raises(ValueError, match="factor >= 1.0"):
        callbacks.ReduceLROnPlateau(factor=1.0)
    with pytest.raises(ValueError, match="mode"):
        callbacks.ReduceLROnPlateau(mode="up")
    with pytest.warns(UserWarning, match="val_loss.*not available"):
        _drive(callbacks.ReduceLROnPlateau(), [1.0], key="loss")


# ------------------------------------------------------------------ LearningRateScheduler
def test_learning_rate_scheduler_sets_lr_per_epoch():
    x, y = _data(32)
    m = _model(optimizers.SGD(0.1))
    used = []
    spy = callbacks.LambdaCallback(
        on_epoch_begin=lambda e, logs: used.append(m.optimizer.learning_rate))
    sched = callbacks.LearningRateScheduler(lambda epoch, lr: lr * 0.5 if epoch else lr)
    h = m.fit(x, y, epochs=4, batch_size=16, verbose=0, callbacks=[sched, spy])
    np.testing.assert_allclose(used, [0.1, 0.05, 0.025, 0.0125])
    np.testing.assert_allclose(h.history["learning_rate"], used)


def test_learning_rate_scheduler_updates_really_use_it():
    x, y = _data(16)
    m = _model(optimizers.SGD(0.1))
    w0 = [w.copy() for w in m.get_weights()]
    m.fit(x, y, epochs=2, batch_size=16, verbose=0,
          callbacks=[callbacks.LearningRateScheduler(lambda epoch: 0.0)])
    for a, b in zip(m.get_weights(), w0):
        np.testing.assert_array_equal(a, b)


def test_learning_rate_scheduler_verbose_and_errors(capsys):
    x, y = _data(16)
    m = _model(optimizers.SGD(0.1))
    m.fit(x, y, epochs=1, verbose=0, callbacks=[
        callbacks.LearningRateScheduler(lambda e, lr: 0.02, verbose=1)])
    assert "Epoch 1: LearningRateScheduler setting learning rate to 0.02." in capsys.readouterr().out
    with pytest.raises(ValueError, match="should be a float"):
        m.fit(x, y, epochs=1, verbose=0,
              callbacks=[callbacks.LearningRateScheduler(lambda e, lr: "fast")])
    with pytest.raises(TypeError, match="schedule"):
        callbacks.LearningRateScheduler(0.1)
    m2 = _model(optimizers.SGD(keras.optimizers.schedules.ExponentialDecay(0.1, 10, 0.9)))
    with pytest.raises(TypeError, match="not settable"):
        m2.fit(x, y, epochs=1, verbose=0,
               callbacks=[callbacks.LearningRateScheduler(lambda e, lr: 0.1)])


def test_optimizer_lr_settable_from_a_callback():
    x, y = _data(16)
    m = _model(optimizers.Adam(0.1))

    class Set(callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            self.model.optimizer.learning_rate = 0.01
    m.fit(x, y, epochs=1, verbose=0, callbacks=[Set()])
    assert m.optimizer.learning_rate == 0.01 and m.optimizer.iterations == 1


# ------------------------------------------------------------------ CSVLogger
def _rows(path, sep=","):
    with open(path, newline="") as f:
        return list(csv.reader(f, delimiter=sep))


def test_csv_logger_contents(tmp_path):
    x, y = _data()
    m = _model()
    path = tmp_path / "logs" / "train.csv"
    h = m.fit(x, y, epochs=3, batch_size=16, verbose=0, validation_split=0.25,
              callbacks=[callbacks.CSVLogger(path)])
    rows = _rows(path)
    assert rows[0] == ["epoch", "loss", "val_loss"]
    assert [r[0] for r in rows[1:]] == ["0", "1", "2"]
    np.testing.assert_allclose([float(r[1]) for r in rows[1:]], h.history["loss"])
    np.testing.assert_allclose([float(r[2]) for r in rows[1:]], h.history["val_loss"])
    assert [p for p in os.listdir(path.parent) if p != "train.csv"] == []   # no temporaries


def test_csv_logger_append_and_separator(tmp_path):
    x, y = _data(32)
    m = _model()
    path = tmp_path / "t.csv"
    m.fit(x, y, epochs=2, verbose=0, callbacks=[callbacks.CSVLogger(path, separator=";")])
    m.fit(x, y, epochs=1, verbose=0,
          callbacks=[callbacks.CSVLogger(path, separator=";", append=True)])
    rows = _rows(path, ";")
    assert rows[0] == ["epoch", "loss"]
    assert [r[0] for r in rows[1:]] == ["0", "1", "0"]
    m.fit(x, y, epochs=1, verbose=0, callbacks=[callbacks.CSVLogger(path, separator=";")])
    assert len(_rows(path, ";")) == 2    # append=False starts over


def test_csv_logger_bad_separator(tmp_path):
    with pytest.raises(ValueError, match="separator"):
        callbacks.CSVLogger(tmp_path / "x.csv", separator=";;")


# ------------------------------------------------------------------ ModelCheckpoint
def test_checkpoint_pattern_and_missing_folders(tmp_path):
    x, y = _data()
    m = _model()
    pattern = str(tmp_path / "a" / "b" / "ckpt-{epoch:02d}-{val_loss:.2f}.keras")
    h = m.fit(x, y, epochs=3, batch_size=16, verbose=0, validation_split=0.25,
              callbacks=[callbacks.ModelCheckpoint(pattern)])
    want = sorted(f"ckpt-{e + 1:02d}-{v:.2f}.keras" for e, v in enumerate(h.history["val_loss"]))
    assert sorted(os.listdir(tmp_path / "a" / "b")) == want
    last = keras.models.load_model(tmp_path / "a" / "b" / want[-1])
    for a, b in zip(last.get_weights(), m.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_checkpoint_save_freq_batches(tmp_path):
    x, y = _data()     # 64 samples, batch 16: 4 batches an epoch
    m = _model()
    pattern = str(tmp_path / "w-{epoch}-{batch}.weights.h5")
    m.fit(x, y, epochs=2, batch_size=16, verbose=0,
          callbacks=[callbacks.ModelCheckpoint(pattern, save_freq=3, save_weights_only=True)])
    # batches 3, 6 (= epoch 2 batch 2), and no more in 8 batches
    assert sorted(os.listdir(tmp_path)) == ["w-1-3.weights.h5", "w-2-2.weights.h5"]
    m2 = _model(seed=5)
    m2.load_weights(tmp_path / "w-2-2.weights.h5")
    with pytest.raises(ValueError, match="weights"):
        keras.models.load_model(tmp_path / "w-2-2.weights.h5")


def test_checkpoint_save_best_only_with_save_freq_epoch(tmp_path):
    x, y = _data()
    m = _model()
    path = tmp_path / "best.keras"
    cb = callbacks.ModelCheckpoint(path, monitor="loss", save_best_only=True)
    m.fit(x, y, epochs=3, batch_size=16, verbose=0, callbacks=[cb])
    assert path.exists() and cb.best is not None
    # a monitored metric that is not in the logs: a warning, and saved anyway (Keras 3)
    path.unlink()
    cb = callbacks.ModelCheckpoint(path, monitor="val_loss", save_best_only=True)
    with pytest.warns(UserWarning, match="only with val_loss available"):
        m.fit(x, y, epochs=1, batch_size=16, verbose=0, callbacks=[cb])
    assert path.exists()


def test_checkpoint_errors(tmp_path):
    with pytest.raises(ValueError, match="save_freq"):
        callbacks.ModelCheckpoint(tmp_path / "x.keras", save_freq="batch")
    with pytest.raises(ValueError, match="save_freq"):
        callbacks.ModelCheckpoint(tmp_path / "x.keras", save_freq=0)
    x, y = _data(16)
    m = _model()
    with pytest.raises(KeyError, match="Failed to format this callback filepath"):
        m.fit(x, y, epochs=1, verbose=0,
              callbacks=[callbacks.ModelCheckpoint(str(tmp_path / "{val_acc}.keras"))])
    (tmp_path / "d.keras").mkdir()
    with pytest.raises(IOError, match="non-directory"):
        m.fit(x, y, epochs=1, verbose=0,
              callbacks=[callbacks.ModelCheckpoint(str(tmp_path / "d.keras"))])


# ------------------------------------------------------------------ SwapEMAWeights
def test_swap_ema_weights_validates_with_the_averages():
    x, y = _data(64)
    xv, yv = _data(32, seed=1)
    res = {}
    for swap in (False, True):
        m = _model(optimizers.Adam(0.05, use_ema=True, ema_momentum=0.8))
        cbs = [callbacks.SwapEMAWeights()] if swap else []
        h = m.fit(x, y, epochs=3, batch_size=16, verbose=0, validation_data=(xv, yv),
                  callbacks=cbs)
        # fit ends with the averages in the model (use_ema): what SwapEMAWeights validated
        res[swap] = (h.history["val_loss"][-1], m.evaluate(xv, yv, verbose=0),
                     [w.copy() for w in m.get_weights()])
    assert res[True][0] == pytest.approx(res[True][1], rel=1e-6)
    assert res[False][0] != pytest.approx(res[False][1], rel=1e-6)
    for a, b in zip(res[True][2], res[False][2]):     # training itself is unchanged
        np.testing.assert_array_equal(a, b)


def test_swap_ema_weights_in_evaluate_and_predict():
    x, y = _data(32)
    m = _model(optimizers.SGD(0.1, use_ema=True, ema_momentum=0.5))
    m.fit(x, y, epochs=2, batch_size=8, verbose=0)
    # the averages differ from the weights once training continues by hand
    m.train_on_batch(x, y)
    now = [w.copy() for w in m.get_weights()]
    avgs = [m.optimizer._slots(w)[-1].copy() for w in m.trainable_weights]
    p_swapped = m.predict(x, verbose=0, callbacks=[callbacks.SwapEMAWeights()])
    for a, b in zip(m.get_weights(), now):
        np.testing.assert_array_equal(a, b)       # swapped back
    m.set_weights(avgs)
    np.testing.assert_allclose(p_swapped, m.predict(x, verbose=0), rtol=1e-6)
    m2 = _model(optimizers.SGD(0.1))
    with pytest.raises(ValueError, match="use_ema=True"):
        m2.evaluate(x, y, verbose=0, callbacks=[callbacks.SwapEMAWeights()])


# ------------------------------------------------------------------ BackupAndRestore
class Crash(callbacks.Callback):
    def __init__(self, at):
        super().__init__()
        self.at = at

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.at:
            raise RuntimeError("simulated crash")


class Epochs(callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.seen = []

    def on_epoch_begin(self, epoch, logs=None):
        self.seen.append(epoch)


@pytest.mark.parametrize("input_shape", [True, False])
@pytest.mark.parametrize("opt", ["adam", "rmsprop_momentum"])
def test_backup_and_restore_resumes_like_an_uninterrupted_run(tmp_path, input_shape, opt):
    x, y = _data(48)
    make_opt = (lambda: optimizers.Adam(0.01)) if opt == "adam" else \
        (lambda: optimizers.RMSprop(0.01, momentum=0.5))

    def run(backup_dir, extra):
        m = _model(make_opt(), input_shape=input_shape)
        ep = Epochs()
        m.fit(x, y, epochs=6, batch_size=16, verbose=0,
              callbacks=[callbacks.BackupAndRestore(backup_dir), ep] + extra)
        return m, ep.seen

    ref, seen = run(tmp_path / "ref", [])
    assert seen == list(range(6)) and not (tmp_path / "ref").exists()

    with pytest.raises(RuntimeError, match="simulated crash"):
        run(tmp_path / "bk", [Crash(at=3)])
    assert (tmp_path / "bk").exists()      # kept for the rerun
    m, seen = run(tmp_path / "bk", [])
    assert seen == [3, 4, 5]
    assert m.optimizer.iterations == ref.optimizer.iterations == 18
    for a, b in zip(m.get_weights(), ref.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert not (tmp_path / "bk").exists()  # deleted when training finished


def test_backup_keep_checkpoint_and_save_freq(tmp_path):
    x, y = _data(48)
    m = _model()
    m.fit(x, y, epochs=2, batch_size=16, verbose=0, callbacks=[
        callbacks.BackupAndRestore(tmp_path / "bk", save_freq=2, delete_checkpoint=False)])
    assert (tmp_path / "bk").exists()
    # a second fit starts from the backup: everything is done already
    ep = Epochs()
    m2 = _model(seed=3)
    m2.fit(x, y, epochs=2, batch_size=16, verbose=0,
           callbacks=[callbacks.BackupAndRestore(tmp_path / "bk", save_freq=2), ep])
    # 3 batches an epoch, a backup every 2: the last one at epoch 2's last batch, before
    # that epoch was marked done, so the rerun trains epoch 2 again from those weights
    assert ep.seen == [1]


def test_backup_errors(tmp_path):
    with pytest.raises(ValueError, match="Empty `backup_dir`"):
        callbacks.BackupAndRestore("")
    with pytest.raises(ValueError, match="save_freq"):
        callbacks.BackupAndRestore(tmp_path, save_freq="batch")
    x, y = _data(16)
    m = _model()
    with pytest.raises(RuntimeError):
        m.fit(x, y, epochs=3, verbose=0,
              callbacks=[callbacks.BackupAndRestore(tmp_path / "bk"), Crash(at=1)])
    keras.set_seed(0)
    other = keras.Sequential([layers.Dense(3, input_shape=(4,)), layers.Dense(1)])
    other.compile("adam", "mse")
    with pytest.raises(ValueError, match="another model"):
        other.fit(x, y, epochs=3, verbose=0,
                  callbacks=[callbacks.BackupAndRestore(tmp_path / "bk")])
