"""Keras callbacks: History, EarlyStopping, ModelCheckpoint, ReduceLROnPlateau,
LearningRateScheduler, CSVLogger, BackupAndRestore, SwapEMAWeights, TerminateOnNaN,
LambdaCallback and the base Callback with every hook fit/evaluate/predict call. Every hook gets
a logs dict (empty where there is nothing to report), never None."""
import csv
import inspect
import io
import json
import math
import numbers
import os
import shutil
import sys
import time
import warnings

import numpy as np

from ._fileio import atomic_file

__all__ = ["Callback", "CallbackList", "History", "EarlyStopping", "ModelCheckpoint",
           "TerminateOnNaN", "LambdaCallback", "ProgbarLogger", "ReduceLROnPlateau",
           "LearningRateScheduler", "CSVLogger", "BackupAndRestore", "SwapEMAWeights"]

_HOOKS = ("on_train_begin", "on_train_end", "on_epoch_begin", "on_epoch_end", "on_batch_begin",
          "on_batch_end", "on_train_batch_begin", "on_train_batch_end", "on_test_begin",
          "on_test_end", "on_test_batch_begin", "on_test_batch_end", "on_predict_begin",
          "on_predict_end", "on_predict_batch_begin", "on_predict_batch_end")


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
    """True when cb defines a hook itself, in its class or (LambdaCallback) on the
    instance, so fit can skip calling no-ops per batch. A callback may say with
    ``_uses_batch_hooks`` whether its batch hooks are needed."""
    flag = getattr(cb, "_uses_batch_hooks", None)
    if flag is not None:
        return bool(flag)
    if name in getattr(cb, "__dict__", {}):
        return True
    for cls in type(cb).__mro__:
        if cls is Callback:
            return False
        if name in cls.__dict__:
            return True
    return False


class CallbackList:
    """Several callbacks called as one: Keras' ``CallbackList(callbacks, add_history=False,
    add_progbar=False, model=None, **params)`` with ``on_train_begin(logs)`` and every
    other hook (fit builds it as ``CallbackList(callbacks, model, params)``)."""

    def __init__(self, callbacks=None, add_history=False, add_progbar=False, model=None,
                 **params):
        if not isinstance(add_history, bool):   # (callbacks, model, params), fit's order
            model, params = add_history, dict(add_progbar or {}, **params)
            add_history = add_progbar = False
        self.callbacks = list(callbacks or [])
        if add_history and not any(isinstance(c, History) for c in self.callbacks):
            self.callbacks.append(History())
        if add_progbar and not any(isinstance(c, ProgbarLogger) for c in self.callbacks):
            self.callbacks.append(ProgbarLogger(params.get("verbose", 1) or 1))
        self.model = model
        self.params = params
        for cb in self.callbacks:
            if model is not None:
                cb.set_model(model)
            cb.set_params(params)
        self._find_per_batch()

    def _find_per_batch(self):
        batch_hooks = ("on_train_batch_begin", "on_train_batch_end", "on_batch_begin", "on_batch_end")
        self.per_batch = [cb for cb in self.callbacks if any(_overrides(cb, h) for h in batch_hooks)]

    def append(self, callback):
        self.callbacks.append(callback)
        if self.model is not None:
            callback.set_model(self.model)
        callback.set_params(self.params)
        self._find_per_batch()

    def set_model(self, model):
        self.model = model
        for cb in self.callbacks:
            cb.set_model(model)

    def set_params(self, params):
        self.params = params
        for cb in self.callbacks:
            cb.set_params(params)

    def __iter__(self):
        return iter(self.callbacks)

    def __getattr__(self, name):
        if name in _HOOKS:
            return lambda *args: self.call(name, *args)
        raise AttributeError(f"'CallbackList' object has no attribute {name!r}")

    def call(self, hook, *args):
        """Call ``hook`` on every callback; the logs argument is a dict, never None."""
        n = 2 if ("batch" in hook or "epoch" in hook) else 1
        args = list(args)
        if len(args) < n:
            args.append(None)
        if args[-1] is None:
            args[-1] = {}
        for cb in self.callbacks:
            getattr(cb, hook)(*args)

    def train_batch_begin(self, batch, logs):
        logs = {} if logs is None else logs
        for cb in self.per_batch:
            cb.on_train_batch_begin(batch, logs)

    def train_batch_end(self, batch, logs):
        logs = {} if logs is None else logs
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


def _save_freq(save_freq, what):
    if save_freq == "epoch":
        return save_freq
    if isinstance(save_freq, numbers.Integral) and not isinstance(save_freq, bool) and save_freq > 0:
        return int(save_freq)
    raise ValueError(f"{what}: invalid value for argument `save_freq`. Received: "
                     f"save_freq={save_freq!r}. Expected either 'epoch' or a positive integer "
                     f"(save every that many batches).")


class _BatchCounter:
    """Keras' count of batches since the last save, across epochs."""

    def _reset_count(self):
        self._batches_since_save = 0
        self._last_batch_seen = -1

    def _should_save_on_batch(self, batch):
        if self.save_freq == "epoch":
            return False
        add = batch + 1 if batch <= self._last_batch_seen else batch - self._last_batch_seen
        self._batches_since_save += add
        self._last_batch_seen = batch
        if self._batches_since_save >= self.save_freq:
            self._batches_since_save = 0
            return True
        return False


class ModelCheckpoint(_Monitor, _BatchCounter):
    """Save the model (or its weights) at the end of each epoch, or every ``save_freq``
    batches; with save_best_only, only when ``monitor`` improved. ``filepath`` may hold
    ``{epoch}``, ``{batch}`` (with an int save_freq) and log keys with format specs,
    e.g. ``ckpt-{epoch:02d}-{val_loss:.2f}.keras``; missing folders are created and
    files are written atomically."""

    def __init__(self, filepath, monitor="val_loss", verbose=0, save_best_only=False,
                 save_weights_only=False, mode="auto", save_freq="epoch",
                 initial_value_threshold=None):
        super().__init__(monitor, mode)
        self.filepath = os.fspath(filepath)
        if not self.filepath:
            raise ValueError("ModelCheckpoint: filepath is empty")
        self.save_freq = _save_freq(save_freq, "ModelCheckpoint")
        self.verbose = verbose
        self.save_best_only = save_best_only
        self.save_weights_only = save_weights_only
        self.initial_value_threshold = initial_value_threshold
        self.best = initial_value_threshold
        self._uses_batch_hooks = self.save_freq != "epoch"
        self._current_epoch = 0
        self._reset_count()

    def on_train_begin(self, logs=None):
        self._reset_count()

    def on_epoch_begin(self, epoch, logs=None):
        self._current_epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self._should_save_on_batch(batch):
            self._save_model(self._current_epoch, batch, logs or {})

    def on_epoch_end(self, epoch, logs=None):
        if self.save_freq == "epoch":
            self._save_model(epoch, None, logs or {})

    def _file_path(self, epoch, batch, logs):
        try:
            if batch is None or "batch" in logs:
                return self.filepath.format(epoch=epoch + 1, **logs)
            return self.filepath.format(epoch=epoch + 1, batch=batch + 1, **logs)
        except KeyError as e:
            raise KeyError(f'Failed to format this callback filepath: "{self.filepath}". '
                           f"Reason: {e} is not among the logs ({', '.join(logs) or 'none'}) "
                           f"or epoch/batch") from None

    def _save_model(self, epoch, batch, logs):
        path = self._file_path(epoch, batch, logs)
        if os.path.isdir(path):
            raise IOError(f"Please specify a non-directory filepath for ModelCheckpoint. "
                          f"Filepath used is an existing directory: {path}")
        value = logs.get(self.monitor) if self.save_best_only else None
        if self.save_best_only and value is None:
            # as Keras 3: warn, and save as without save_best_only
            warnings.warn(f"Can save best model only with {self.monitor} available.",
                          stacklevel=2)
        elif self.save_best_only:
            best = "None" if self.best is None else f"{self.best:.5f}"
            if not self._improved(value, self.best):
                if self.verbose > 0:
                    print(f"\nEpoch {epoch + 1}: {self.monitor} did not improve from {best}")
                return
            if self.verbose > 0:
                print(f"\nEpoch {epoch + 1}: {self.monitor} improved from {best} to "
                      f"{value:.5f}, saving model to {path}")
            self.best = value
        elif self.verbose > 0:
            print(f"\nEpoch {epoch + 1}: saving model to {path}")
        folder = os.path.dirname(path)
        if folder:
            os.makedirs(folder, exist_ok=True)
        if self.save_weights_only:
            self.model.save_weights(path, overwrite=True)
        else:
            self.model.save(path, overwrite=True)


class TerminateOnNaN(Callback):
    def on_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and (math.isnan(loss) or math.isinf(loss)):
            print(f"Batch {batch}: Invalid loss, terminating training")
            self.model.stop_training = True


class LambdaCallback(Callback):
    """A callback from functions: on_epoch_begin/on_epoch_end(epoch, logs),
    on_train_begin/on_train_end(logs), on_train_batch_begin/on_train_batch_end(batch,
    logs), and any other hook (on_test_begin=..., on_batch_end=...) by keyword."""

    def __init__(self, on_epoch_begin=None, on_epoch_end=None, on_train_begin=None,
                 on_train_end=None, on_train_batch_begin=None, on_train_batch_end=None,
                 **kwargs):
        super().__init__()
        hooks = {"on_epoch_begin": on_epoch_begin, "on_epoch_end": on_epoch_end,
                 "on_train_begin": on_train_begin, "on_train_end": on_train_end,
                 "on_train_batch_begin": on_train_batch_begin,
                 "on_train_batch_end": on_train_batch_end}
        for name, fn in kwargs.items():
            if name.startswith("on_") and name not in _HOOKS:
                raise ValueError(f"LambdaCallback: unknown hook {name!r}; hooks are "
                                 f"{', '.join(_HOOKS)}")
            hooks[name] = fn
        for name, fn in hooks.items():
            if fn is None:
                continue
            if name in _HOOKS and not callable(fn):
                raise TypeError(f"LambdaCallback: {name} must be callable, got {fn!r}")
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


def _lr_of(model, what):
    opt = getattr(model, "optimizer", None)
    if opt is None or not hasattr(opt, "learning_rate"):
        raise ValueError(f"{what}: the model has no optimizer with a learning_rate; compile it "
                         f"first")
    return float(opt.learning_rate)


class ReduceLROnPlateau(Callback):
    """Multiply the learning rate by ``factor`` when ``monitor`` has not improved by
    ``min_delta`` for ``patience`` epochs; wait ``cooldown`` epochs after a reduction;
    never go below ``min_lr``. Adds ``learning_rate`` to the epoch's logs."""

    def __init__(self, monitor="val_loss", factor=0.1, patience=10, verbose=0, mode="auto",
                 min_delta=1e-4, cooldown=0, min_lr=0.0, **kwargs):
        super().__init__()
        if kwargs:
            raise TypeError(f"ReduceLROnPlateau: unexpected keyword argument(s) "
                            f"{', '.join(kwargs)}")
        if not isinstance(factor, numbers.Real) or factor >= 1.0:
            raise ValueError(f"ReduceLROnPlateau does not support a factor >= 1.0. "
                             f"Received factor={factor}")
        if factor < 0:
            raise ValueError(f"ReduceLROnPlateau: factor must be in [0, 1), got {factor}")
        if mode not in ("auto", "min", "max"):
            raise ValueError(f"ReduceLROnPlateau: mode must be 'auto', 'min' or 'max', got "
                             f"{mode!r}")
        self.monitor = monitor
        self.factor = float(factor)
        self.patience = int(patience)
        self.verbose = verbose
        self.mode = mode
        self.min_delta = float(min_delta)
        self.cooldown = int(cooldown)
        self.min_lr = float(min_lr)
        self._reset()

    def _reset(self):
        if self.mode == "min" or (self.mode == "auto" and "acc" not in self.monitor):
            self.monitor_op = lambda a, b: a < b - self.min_delta
            self.best = np.inf
        else:
            self.monitor_op = lambda a, b: a > b + self.min_delta
            self.best = -np.inf
        self.cooldown_counter = 0
        self.wait = 0

    def on_train_begin(self, logs=None):
        self._reset()

    def in_cooldown(self):
        return self.cooldown_counter > 0

    def on_epoch_end(self, epoch, logs=None):
        logs = {} if logs is None else logs
        logs["learning_rate"] = _lr_of(self.model, "ReduceLROnPlateau")
        current = logs.get(self.monitor)
        if current is None:
            warnings.warn(f"Learning rate reduction is conditioned on metric `{self.monitor}` "
                          f"which is not available. Available metrics are: "
                          f"{','.join(logs)}.", stacklevel=2)
            return
        if self.in_cooldown():
            self.cooldown_counter -= 1
            self.wait = 0
        if self.monitor_op(current, self.best):
            self.best = current
            self.wait = 0
        elif not self.in_cooldown():
            self.wait += 1
            if self.wait >= self.patience:
                old_lr = _lr_of(self.model, "ReduceLROnPlateau")
                if old_lr > np.float32(self.min_lr):
                    new_lr = max(old_lr * self.factor, self.min_lr)
                    self.model.optimizer.learning_rate = new_lr
                    if self.verbose > 0:
                        print(f"\nEpoch {epoch + 1}: ReduceLROnPlateau reducing learning rate "
                              f"to {new_lr}.")
                    self.cooldown_counter = self.cooldown
                    self.wait = 0


def _positional_arity(fn):
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return None
    n = 0
    for p in sig.parameters.values():
        if p.kind == inspect.Parameter.VAR_POSITIONAL:
            return None
        if p.kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD):
            n += 1
    return n


class LearningRateScheduler(Callback):
    """At the start of each epoch, set the learning rate to ``schedule(epoch, lr)``
    (epoch counted from 0, lr the current one; ``schedule(epoch)`` works too). Adds
    ``learning_rate`` to the epoch's logs."""

    def __init__(self, schedule, verbose=0):
        super().__init__()
        if not callable(schedule):
            raise TypeError(f"LearningRateScheduler: schedule must be a function "
                            f"schedule(epoch, lr) -> float, got {schedule!r}")
        self.schedule = schedule
        self.verbose = verbose

    def on_epoch_begin(self, epoch, logs=None):
        lr = _lr_of(self.model, "LearningRateScheduler")
        n = _positional_arity(self.schedule)
        if n is None:
            try:
                new = self.schedule(epoch, lr)
            except TypeError:
                new = self.schedule(epoch)
        else:
            new = self.schedule(epoch) if n == 1 else self.schedule(epoch, lr)
        if isinstance(new, (bool, np.bool_)) or not isinstance(new, (numbers.Real, np.floating,
                                                                     np.integer)) \
                or (isinstance(new, np.ndarray) and new.ndim):
            raise ValueError(f"The output of the `schedule` function should be a float. Got: "
                             f"{new!r} (from schedule({epoch}, {lr}))")
        new = float(new)
        if not math.isfinite(new):
            raise ValueError(f"LearningRateScheduler: schedule({epoch}, {lr}) returned {new}, "
                             f"not a finite learning rate")
        self.model.optimizer.learning_rate = new
        if self.verbose > 0:
            print(f"\nEpoch {epoch + 1}: LearningRateScheduler setting learning rate to {new}.")

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["learning_rate"] = _lr_of(self.model, "LearningRateScheduler")


class CSVLogger(Callback):
    """Write each epoch's logs to a CSV file: a header ``epoch,<sorted log keys>``,
    then one row per epoch. ``append=True`` continues an existing file (no second
    header). The file is rewritten atomically after every epoch, so it is always
    complete."""

    def __init__(self, filename, separator=",", append=False):
        super().__init__()
        self.filename = os.fspath(filename)
        if not isinstance(separator, str) or len(separator) != 1:
            raise ValueError(f"CSVLogger: separator must be one character, got {separator!r}")
        self.sep = separator
        self.append = append
        self.keys = None
        self.append_header = True
        self._text = None

    def on_train_begin(self, logs=None):
        self._text = io.StringIO()
        self.append_header = True
        if self.append and os.path.exists(self.filename):
            with open(self.filename, "r", newline="") as f:
                old = f.read()
            self.append_header = not old.strip()
            self._text.write(old)
            if old and not old.endswith("\n"):
                self._text.write("\n")
        self.keys = None
        self._writer = None
        self._flush()

    def _flush(self):
        folder = os.path.dirname(self.filename)
        if folder:
            os.makedirs(folder, exist_ok=True)
        with atomic_file(self.filename, "w") as f:
            f.write(self._text.getvalue())

    @staticmethod
    def _value(v):
        if isinstance(v, str):
            return v
        if isinstance(v, np.ndarray) and v.ndim == 0:
            return v.item()
        if hasattr(v, "__iter__"):
            return f"\"[{', '.join(map(str, v))}]\""
        return v

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self._text is None:
            self.on_train_begin()
        if self.keys is None:
            self.keys = sorted(logs)
        if self._writer is None:
            class Dialect(csv.excel):
                delimiter = self.sep
                lineterminator = "\n"
            self._writer = csv.DictWriter(self._text, fieldnames=["epoch"] + self.keys,
                                          dialect=Dialect)
            if self.append_header:
                self._writer.writeheader()
        row = {"epoch": epoch}
        row.update((k, self._value(logs.get(k, "NA"))) for k in self.keys)
        self._writer.writerow(row)
        self._flush()

    def on_train_end(self, logs=None):
        self._writer = None
        self._text = None


class BackupAndRestore(Callback, _BatchCounter):
    """Back up training (model weights, optimizer state, the epoch, the random state)
    into ``backup_dir`` at the end of every epoch (or every ``save_freq`` batches); a
    fit that starts with a backup there restores it and resumes from the epoch it had
    reached, so an interrupted run can be rerun unchanged. The backup is deleted when
    training ends normally (``delete_checkpoint=True``)."""

    _FILE = "latest.backup"

    def __init__(self, backup_dir, save_freq="epoch", double_checkpoint=False,
                 delete_checkpoint=True):
        super().__init__()
        if not backup_dir:
            raise ValueError("Empty `backup_dir` argument passed")
        self.backup_dir = os.fspath(backup_dir)
        self.save_freq = _save_freq(save_freq, "BackupAndRestore")
        self.double_checkpoint = bool(double_checkpoint)
        self.delete_checkpoint = bool(delete_checkpoint)
        self._path = os.path.join(self.backup_dir, self._FILE)
        self._prev_path = self._path + ".bkp"
        self._uses_batch_hooks = self.save_freq != "epoch"
        self._current_epoch = 0
        self._reset_count()

    def on_train_begin(self, logs=None):
        self._reset_count()
        self._current_epoch = 0
        path = self._path if os.path.exists(self._path) else (
            self._prev_path if os.path.exists(self._prev_path) else None)
        if path is None:
            return
        try:
            self._restore(path)
        except (OSError, ValueError, KeyError):
            if path == self._path and os.path.exists(self._prev_path):
                self._restore(self._prev_path)
            else:
                raise

    def _restore(self, path):
        from . import _random, saving
        header, arrays = saving._read(path)
        if header.get("kind") != "backup":
            raise ValueError(f"BackupAndRestore: {path!r} is not a training backup")
        m = self.model
        if not m.built:
            shape = header.get("build_input_shape")
            if shape is None:
                raise ValueError("To use the BackupAndRestore callback, your model must be "
                                 "built before you call `fit()`.")
            m.build(tuple(shape))
        n = header["num_weights"]
        ws = [arrays[f"w{i}"] for i in range(n)]
        mine = m.get_weights()
        if len(ws) != len(mine) or any(a.shape != b.shape for a, b in zip(ws, mine)):
            raise ValueError(f"BackupAndRestore: the backup in {self.backup_dir!r} holds weights "
                             f"of shapes {[a.shape for a in ws]}, the model has "
                             f"{[b.shape for b in mine]} (a backup of another model?)")
        m.set_weights(ws)
        k = header.get("optimizer_slots")
        if k is not None and getattr(m, "optimizer", None) is not None:
            m.optimizer.set_state(m.trainable_weights, header["optimizer_iterations"],
                                  [arrays[f"o{i}"] for i in range(k)])
        rng = header.get("rng_state")
        if rng is not None:
            try:
                _random.generator().bit_generator.state = rng
            except (TypeError, ValueError):
                pass
        self._current_epoch = int(header["epoch"])
        m._initial_epoch = self._current_epoch

    def on_epoch_end(self, epoch, logs=None):
        self._current_epoch = epoch + 1
        self._last_batch_seen = -1
        if self.save_freq == "epoch":
            self._save()

    def on_train_batch_end(self, batch, logs=None):
        if self._should_save_on_batch(batch):
            self._save(batch)

    def _save(self, batch=None):
        from . import _random, saving
        m = self.model
        os.makedirs(self.backup_dir, exist_ok=True)
        if self.double_checkpoint and os.path.exists(self._path):
            shutil.copyfile(self._path, self._prev_path)
        header = {"format": saving._FORMAT, "version": saving._FORMAT_VERSION, "kind": "backup",
                  "epoch": self._current_epoch, "batch": batch,
                  "build_input_shape": saving._jsonable(getattr(m, "_build_input_shape", None))}
        ws = m.get_weights()
        arrays = {f"w{i}": w for i, w in enumerate(ws)}
        header["num_weights"] = len(ws)
        if getattr(m, "optimizer", None) is not None:
            it, state = m.optimizer.get_state(m.trainable_weights)
            header["optimizer_iterations"] = it
            header["optimizer_slots"] = len(state)
            arrays.update({f"o{i}": s for i, s in enumerate(state)})
        if batch is None:
            try:
                state = _random.generator().bit_generator.state
                json.dumps(state)
                header["rng_state"] = state
            except (TypeError, ValueError):
                pass
        saving._write(self._path, header, arrays)

    def on_train_end(self, logs=None):
        finished = (self._current_epoch >= self.params.get("epochs", 0) or
                    getattr(self.model, "stop_training", False))
        # a fit stopped by Ctrl-C keeps its backup, to be resumed
        if finished and self.delete_checkpoint and os.path.exists(self.backup_dir):
            for p in (self._path, self._prev_path):
                if os.path.exists(p):
                    os.unlink(p)
            try:
                os.rmdir(self.backup_dir)
            except OSError:
                pass


class SwapEMAWeights(Callback):
    """With an optimizer made with ``use_ema=True``: evaluate and predict with the
    moving averages of the weights (swapped in for the test/predict hooks, back
    afterwards); with ``swap_on_epoch=True`` also during the epoch-end callbacks
    that follow this one (ModelCheckpoint, say)."""

    def __init__(self, swap_on_epoch=False):
        super().__init__()
        self.swap_on_epoch = swap_on_epoch
        self._ema_weights_in_model = False

    def _swap(self):
        opt = getattr(self.model, "optimizer", None)
        if opt is None or not getattr(opt, "use_ema", False):
            raise ValueError("SwapEMAWeights must be used when `use_ema=True` is set on the "
                             "optimizer. Received: use_ema=False")
        for p in self.model.trainable_weights:
            entry = opt._state.get(id(p))
            if entry is None or entry[0] is not p:
                continue
            avg = entry[1][-1]
            tmp = p.copy()
            p[...] = avg
            avg[...] = tmp

    def _finalize(self):
        # at the end of fit the optimizer copies its averages into the weights: put them back
        opt = self.model.optimizer
        for p in self.model.trainable_weights:
            entry = opt._state.get(id(p))
            if entry is not None and entry[0] is p:
                entry[1][-1][...] = p

    def on_epoch_begin(self, epoch, logs=None):
        if self.swap_on_epoch and self._ema_weights_in_model:
            self._swap()
            self._ema_weights_in_model = False

    def on_epoch_end(self, epoch, logs=None):
        if self.swap_on_epoch and not self._ema_weights_in_model:
            self._swap()
            self._ema_weights_in_model = True
            if epoch == self.params.get("epochs", 0) - 1:
                self._finalize()

    def on_test_begin(self, logs=None):
        if not self._ema_weights_in_model:
            self._swap()
            self._ema_weights_in_model = True

    def on_test_end(self, logs=None):
        if self._ema_weights_in_model:
            self._swap()
            self._ema_weights_in_model = False

    def on_predict_begin(self, logs=None):
        self.on_test_begin(logs)

    def on_predict_end(self, logs=None):
        self.on_test_end(logs)
