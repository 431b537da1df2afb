"""Keras callbacks: History, EarlyStopping, ModelCheckpoint, TerminateOnNaN,
LambdaCallback and the base Callback with every hook fit/evaluate/predict call."""
import math
import os
import sys
import time

import numpy as np

__all__ = ["Callback", "CallbackList", "History", "EarlyStopping", "ModelCheckpoint",
           "TerminateOnNaN", "LambdaCallback", "ProgbarLogger"]


class Callback:
    def __init__(self):
        self.model = None
        self.params = {}

    def set_model(self, model):
        self.model = model

    def set_params(self, params):
        self.params = params

    def on_train_begin(self, logs=None): pass
    def on_train_end(self, logs=None): pass
    def on_epoch_begin(self, epoch, logs=None): pass
    def on_epoch_end(self, epoch, logs=None): pass
    def on_batch_begin(self, batch, logs=None): pass
    def on_batch_end(self, batch, logs=None): pass
    def on_train_batch_begin(self, batch, logs=None): self.on_batch_begin(batch, logs)
    def on_train_batch_end(self, batch, logs=None): self.on_batch_end(batch, logs)
    def on_test_begin(self, logs=None): pass
    def on_test_end(self, logs=None): pass
    def on_test_batch_begin(self, batch, logs=None): pass
    def on_test_batch_end(self, batch, logs=None): pass
    def on_predict_begin(self, logs=None): pass
    def on_predict_end(self, logs=None): pass
    def on_predict_batch_begin(self, batch, logs=None): pass
    def on_predict_batch_end(self, batch, logs=None): pass


def _overrides(cb, name):
    """True when cb's class defines a hook itself (so fit can skip calling no-ops per batch)."""
    for cls in type(cb).__mro__:
        if cls is Callback:
            return False
        if name in cls.__dict__:
            return True
    return False


class CallbackList:
    def __init__(self, callbacks, model, params):
        self.callbacks = list(callbacks)
        for cb in self.callbacks:
            cb.set_model(model)
            cb.set_params(params)
        batch_hooks = ("on_train_batch_begin", "on_train_batch_end", "on_batch_begin", "on_batch_end")
        self.per_batch = [cb for cb in self.callbacks if any(_overrides(cb, h) for h in batch_hooks)]

    def call(self, hook, *args):
        for cb in self.callbacks:
            getattr(cb, hook)(*args)

    def train_batch_begin(self, batch, logs):
        for cb in self.per_batch:
            cb.on_train_batch_begin(batch, logs)

    def train_batch_end(self, batch, logs):
        for cb in self.per_batch:
            cb.on_train_batch_end(batch, logs)


class History(Callback):
    """Records every epoch's logs: history.history['loss'], ['val_accuracy'], ..."""

    def __init__(self):
        super().__init__()
        self.history = {}
        self.epoch = []

    def on_train_begin(self, logs=None):
        self.epoch = []

    def on_epoch_end(self, epoch, logs=None):
        self.epoch.append(epoch)
        for k, v in (logs or {}).items():
            self.history.setdefault(k, []).append(v)


class _Monitor(Callback):
    def __init__(self, monitor, mode, min_delta=0.0):
        super().__init__()
        self.monitor = monitor
        if mode not in ("auto", "min", "max"):
            raise ValueError(f"mode must be 'auto', 'min' or 'max', got {mode!r}")
        if mode == "auto":
            mode = "max" if ("acc" in monitor or monitor.endswith("auc")) else "min"
        self.mode = mode
        self.min_delta = abs(min_delta)

    def _improved(self, value, best):
        if best is None:
            return True
        if self.mode == "min":
            return value < best - self.min_delta
        return value > best + self.min_delta

    def _get(self, logs):
        v = (logs or {}).get(self.monitor)
        if v is None:
            print(f"{type(self).__name__}: metric {self.monitor!r} is not available; available "
                  f"metrics are: {', '.join(logs or {})}", file=sys.stderr)
        return v


class EarlyStopping(_Monitor):
    """Stop when `monitor` has not improved by min_delta for `patience` epochs."""

    def __init__(self, monitor="val_loss", min_delta=0.0, patience=0, verbose=0, mode="auto",
                 baseline=None, restore_best_weights=False, start_from_epoch=0):
        super().__init__(monitor, mode, min_delta)
        self.patience = int(patience)
        self.verbose = verbose
        self.baseline = baseline
        self.restore_best_weights = restore_best_weights
        self.start_from_epoch = start_from_epoch

    def on_train_begin(self, logs=None):
        self.wait = 0
        self.stopped_epoch = 0
        self.best = self.baseline
        self.best_weights = None
        self.best_epoch = 0

    def on_epoch_end(self, epoch, logs=None):
        value = self._get(logs)
        if value is None or epoch < self.start_from_epoch:
            return
        if self.restore_best_weights and self.best_weights is None:
            self.best_weights = self.model.get_weights()
        self.wait += 1
        if self._improved(value, self.best):
            self.best = value
            self.best_epoch = epoch
            if self.restore_best_weights:
                self.best_weights = self.model.get_weights()
            if self.baseline is None or self._improved(value, self.baseline) or value == self.baseline:
                self.wait = 0
            return
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.stopped_epoch > 0 and self.verbose > 0:
            print(f"Epoch {self.stopped_epoch + 1}: early stopping")
        if self.restore_best_weights and self.best_weights is not None:
            if self.verbose > 0:
                print(f"Restoring model weights from the end of the best epoch: {self.best_epoch + 1}.")
            self.model.set_weights(self.best_weights)


class ModelCheckpoint(_Monitor):
    """Save the model (or its weights) after each epoch; with save_best_only, only
    when `monitor` improved. `filepath` may hold {epoch} and log keys, Keras-style."""

    def __init__(self, filepath, monitor="val_loss", verbose=0, save_best_only=False,
                 save_weights_only=False, mode="auto", save_freq="epoch", initial_value_threshold=None):
        super().__init__(monitor, mode)
        if save_freq != "epoch":
            raise NotImplementedError("ModelCheckpoint supports save_freq='epoch' only")
        self.filepath = os.fspath(filepath)
        self.verbose = verbose
        self.save_best_only = save_best_only
        self.save_weights_only = save_weights_only
        self.best = initial_value_threshold

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        path = self.filepath.format(epoch=epoch + 1, **logs)
        if self.save_best_only:
            value = self._get(logs)
            if value is None or not self._improved(value, self.best):
                return
            if self.verbose > 0:
                print(f"\nEpoch {epoch + 1}: {self.monitor} improved from {self.best} to {value}, "
                      f"saving model to {path}")
            self.best = value
        if self.save_weights_only:
            self.model.save_weights(path)
        else:
            self.model.save(path)


class TerminateOnNaN(Callback):
    def on_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and (math.isnan(loss) or math.isinf(loss)):
            print(f"Batch {batch}: Invalid loss, terminating training")
            self.model.stop_training = True


class LambdaCallback(Callback):
    def __init__(self, **hooks):
        super().__init__()
        for name, fn in hooks.items():
            if not name.startswith("on_"):
                raise ValueError(f"LambdaCallback: unknown hook {name!r}")
            setattr(self, name, fn)


class ProgbarLogger(Callback):
    """Keras' progress output. verbose=1 on a terminal: a live bar; otherwise one
    line per epoch (verbose=1 or 2)."""

    def __init__(self, verbose=1, stream=None):
        super().__init__()
        self.verbose = verbose
        self.stream = stream or sys.stdout
        try:
            self.live = verbose == 1 and self.stream.isatty()
        except Exception:
            self.live = False

    def on_epoch_begin(self, epoch, logs=None):
        self.t0 = time.perf_counter()
        self.last = 0.0
        self.steps = self.params.get("steps")
        if self.params.get("epochs", 1) > 1 or self.verbose:
            self.stream.write(f"Epoch {epoch + 1}/{self.params.get('epochs', 1)}\n")
            self.stream.flush()

    def _metrics(self, logs):
        return "".join(f" - {k}: {v:.4f}" for k, v in logs.items() if isinstance(v, (float, int, np.floating)))

    def _bar(self, done, logs, final=False):
        total = self.steps or done
        el = time.perf_counter() - self.t0
        per = el / max(done, 1)
        width = 20
        filled = int(width * done / total) if total else width
        bar = ("=" * max(filled - 1, 0) + (">" if filled < width else "=")).ljust(width, ".")
        eta = "" if final else f" ETA: {per * (total - done):.0f}s"
        unit = f"{per * 1e3:.0f}ms/step" if per >= 1e-3 else f"{per * 1e6:.0f}us/step"
        w = len(str(total))
        if final:
            return f"{done:>{w}}/{total} [{bar}] - {el:.0f}s {unit}{self._metrics(logs)}"
        return f"{done:>{w}}/{total} [{bar}]{eta}{self._metrics(logs)}"

    def on_train_batch_end(self, batch, logs=None):
        if not self.live:
            return
        now = time.perf_counter()
        if now - self.last < 0.1:
            return
        self.last = now
        self.stream.write("\r" + self._bar(batch + 1, logs or {}) + "\x1b[K")
        self.stream.flush()

    def on_epoch_end(self, epoch, logs=None):
        done = self.params.get("seen_steps") or self.steps or 0
        line = self._bar(done, logs or {}, final=True)
        self.stream.write(("\r" + line + "\x1b[K\n") if self.live else line + "\n")
        self.stream.flush()
