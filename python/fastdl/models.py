"""Keras-compatible models: Sequential with compile/fit/evaluate/predict,
summary, weights and one-file saving.

A training step is: every layer's ``call`` (outputs go to reused buffers), the
loss's fused forward+gradient kernel, every layer's ``backward`` (gradients go
to preallocated arrays), one optimizer call per parameter. When the last
layer ends in softmax (sigmoid) and the loss is (sparse) categorical
(binary) cross-entropy, the loss works on the layer's logits: one stable fused
kernel, and the accuracy comes from the same pass.
"""
import json
import math
import os
import signal
import sys
import threading
import time

import numpy as np

from . import _memory, _random, callbacks as callbacks_mod, layers as layers_mod
from . import losses as losses_mod
from . import metrics as metrics_mod, ops, optimizers as optimizers_mod
from ._fileio import atomic_file
from .layers import _shape_str

__all__ = ["Model", "Sequential", "load_model"]

_FORMAT = "fastdl"
_FORMAT_VERSION = 1


class Model:
    """Base of Sequential: everything but the layer stack's construction."""

    def __init__(self, *args, name=None, **kwargs):
        if args or kwargs:
            raise NotImplementedError("fastdl supports Sequential models; the functional "
                                      "Model(inputs, outputs) API is not implemented")
        self.name = name or layers_mod.unique_name("model")
        self._init_state()

    def _init_state(self):
        self.layers = []
        self.built = False
        self.optimizer = None
        self.loss = None
        self.compiled = False
        self.stop_training = False
        self.history = None
        self.device = "cpu"
        self._dev = _on_host         # moves a batch to the model's device (identity on the CPU)
        self._empty = _memory.empty  # allocates step buffers on the model's device
        self._input_shape = None
        self._metric_ids = []
        self._dtype = None

    # ------------------------------------------------------------ structure
    @property
    def input_shape(self):
        return self._input_shape

    @property
    def output_shape(self):
        if not self.built:
            raise ValueError(self._not_built_message("output_shape"))
        return self.layers[-1].output_shape if self.layers else self._input_shape

    @property
    def weights(self):
        return [w for l in self.layers for w in l.weights]

    @property
    def trainable_weights(self):
        return [w for l in self.layers for w in l.trainable_weights]

    @property
    def non_trainable_weights(self):
        return [w for l in self.layers for w in l.non_trainable_weights]

    @property
    def gradients(self):
        """dL/dw of the last backward call, same order as trainable_weights."""
        return [g for l in self.layers for g in l.gradients]

    def count_params(self):
        return sum(l.count_params() for l in self.layers)

    def get_layer(self, name=None, index=None):
        if index is not None:
            return self.layers[index]
        for l in self.layers:
            if l.name == name:
                return l
        raise ValueError(f"no layer named {name!r}; layers: {[l.name for l in self.layers]}")

    def _not_built_message(self, what):
        return (f"{what}: the model {self.name!r} has not been built yet, so its shapes are "
                f"unknown. Give the first layer an input_shape (e.g. layers.Flatten("
                f"input_shape=(28, 28))), add layers.Input(shape=...) first, or call "
                f"model.build((None, ...)) or fit/predict on data")

    def build(self, input_shape=None, dtype=None):
        """Create every layer's weights for inputs of input_shape (batch dim included)."""
        if input_shape is None:
            input_shape = self._input_shape
        if input_shape is None:
            raise ValueError(self._not_built_message("build"))
        input_shape = tuple(None if d is None else int(d) for d in input_shape)
        self._input_shape = input_shape
        dt = np.dtype(dtype) if dtype is not None else (self._dtype or np.dtype(np.float32))
        self._dtype = dt
        shape = input_shape
        for l in self.layers:
            shape = l._build_from(shape, dt)
            dt = l.dtype
        self.built = True

    def _build_from_data(self, x, follow_dtype=False):
        # fit/evaluate/predict build float32 models (Keras' default) and cast the data once;
        # a direct call model(x) on float64 data builds a float64 model (gradient checks).
        dt = x.dtype if follow_dtype and x.dtype in (np.float32, np.float64) else np.dtype(np.float32)
        if self._input_shape is None:
            self.build((None,) + tuple(x.shape[1:]), dt)
        else:
            self.build(self._input_shape, dt)

    # ------------------------------------------------------------ low-level API
    def _prep_x(self, x, what, follow_dtype=False):
        if isinstance(x, (list, tuple)):
            x = np.asarray(x)
        if type(x) is not np.ndarray and not hasattr(x, "__cuda_array_interface__"):
            x = np.asarray(x)
        if x.ndim == 0:
            raise ValueError(f"{what}: x must be an array with a batch dimension, got a scalar")
        if not self.built:
            self._build_from_data(x, follow_dtype)
        exp = self._input_shape
        if x.ndim != len(exp) or any(e is not None and e != s for e, s in zip(exp[1:], x.shape[1:])):
            raise ValueError(f"{what}: the model expects inputs of shape {_shape_str(exp)} but x has "
                             f"shape {tuple(x.shape)}")
        if x.dtype != self._dtype:
            x = x.astype(self._dtype)
        return x

    def __call__(self, x, training=False):
        x = self._dev(self._prep_x(x, "model call", follow_dtype=True))
        h = x
        for l in self.layers:
            h = l.call(h, training=training)
        return h.copy() if h is not x else h

    def backward(self, dy):
        """dL/dx for dL/dy of the last call; fills model.gradients."""
        h = self._dev(dy)
        for bw in _backward_plan([(l, True) for l in self.layers]):
            h = bw(h)
        return np.array(h) if type(h) is np.ndarray else h

    def _first_trainable(self):
        for i, l in enumerate(self.layers):
            if l.trainable_weights:
                return i
        return len(self.layers)

    # ------------------------------------------------------------ compile
    def compile(self, optimizer="rmsprop", loss=None, metrics=None, loss_weights=None,
                weighted_metrics=None, run_eagerly=None, jit_compile=None, **kwargs):
        if loss is None:
            raise ValueError("compile needs a loss, e.g. loss='sparse_categorical_crossentropy'; "
                             f"known losses: {', '.join(losses_mod.KNOWN)}")
        self.optimizer = optimizers_mod.get(optimizer)
        self.loss = losses_mod.get(loss)
        metrics = list(metrics or [])
        for m in metrics:  # fail early on unknown names
            metrics_mod.get(m, self.loss)
        self._metric_ids = metrics
        self.compiled = True

    def _require_compiled(self, what):
        if not self.compiled:
            raise RuntimeError(f"{what}: the model must be compiled first, e.g. "
                               f"model.compile(optimizer='adam', loss='sparse_categorical_crossentropy', "
                               f"metrics=['accuracy'])")

    def _make_metrics(self):
        return [metrics_mod.get(m, self.loss, self.output_shape) for m in self._metric_ids]

    @property
    def metrics_names(self):
        return ["loss"] + [m if isinstance(m, str) else getattr(m, "name", str(m))
                           for m in self._metric_ids]

    # ------------------------------------------------------------ data checks
    def _prep_y(self, y, n, what):
        if y is None:
            raise ValueError(f"{what}: targets y are missing")
        if isinstance(y, (list, tuple)) or type(y) is not np.ndarray:
            y = np.asarray(y)
        if y.ndim == 0 or len(y) != n:
            raise ValueError(f"{what}: x has {n} samples but y has "
                             f"{len(y) if y.ndim else 'a scalar'}; they must have the same length")
        out = self.output_shape
        loss = self.loss
        if loss.sparse:
            if y.ndim == 2 and y.shape[1] > 1:
                raise ValueError(f"{what}: y has shape {y.shape}, which looks like one-hot targets, "
                                 f"but the loss {loss.name} expects integer class labels of shape "
                                 f"({n},). Use loss='categorical_crossentropy' for one-hot targets, "
                                 f"or pass y.argmax(axis=1)")
            if y.ndim > 2 or (y.ndim == 2 and y.shape[1] != 1):
                raise ValueError(f"{what}: integer labels must have shape ({n},), got {y.shape}")
            y = y.reshape(n)
            if y.dtype.kind == "f":
                if not np.all(np.floor(y) == y):
                    raise ValueError(f"{what}: {loss.name} needs integer class labels; y holds "
                                     f"non-integer values (use categorical_crossentropy for "
                                     f"probability targets)")
            elif y.dtype.kind not in "iub":
                raise ValueError(f"{what}: labels must be integers, got dtype {y.dtype}")
            y = np.ascontiguousarray(y, dtype=np.int64)
            classes = out[-1]
            if n and (y.min() < 0 or (classes is not None and y.max() >= classes)):
                raise ValueError(f"{what}: labels must be in 0..{classes - 1} for a model with "
                                 f"{classes} outputs; got values from {y.min()} to {y.max()}")
            return y
        if y.dtype.kind not in "fiub":
            raise ValueError(f"{what}: targets must be numeric, got dtype {y.dtype}")
        y = np.ascontiguousarray(y, dtype=self.layers[-1].dtype if self.layers else self._dtype)
        want = tuple(out[1:])
        if y.ndim == 1 and want == (1,):
            y = y.reshape(n, 1)
        if tuple(y.shape[1:]) != want:
            hint = ""
            if y.ndim == 1 and loss.name == "categorical_crossentropy":
                hint = (" These look like integer labels: use loss='sparse_categorical_crossentropy', "
                        "or one-hot encode them")
            raise ValueError(f"{what}: targets y have shape {y.shape} but the model's output has "
                             f"shape {_shape_str(out)}; they must match.{hint}")
        return y

    # ------------------------------------------------------------ steps
    def _fused_loss(self):
        last = self.layers[-1] if self.layers else None
        fw = self.loss.fuses_with
        if fw is None or self.loss.from_logits or last is None:
            return False
        get = getattr(last, "_output_activation", None)
        return get is not None and get() == fw and hasattr(last, "_call_logits")

    def _step_fn(self, training):
        """A closure running one batch: forward, loss (+ backward and update when training).
        Returns (loss, n_correct or None, y_pred or a thunk computing it)."""
        layers = self.layers
        loss = self.loss
        fused = self._fused_loss()
        last = layers[-1]
        body = layers[:-1] if fused else layers
        first = self._first_trainable()
        back = _backward_plan([(l, i > first) for i, l in enumerate(body) if i >= first])
        opt = self.optimizer
        pairs = list(zip(self.gradients, self.trainable_weights))
        bufs = {}

        def dbuf(shape, dtype):
            b = bufs.get(shape)
            if b is None:
                b = bufs[shape] = self._empty(shape, dtype)
            return b

        if fused:
            last_need_dx = len(layers) - 1 > first

            def step(xb, yb):
                h = xb
                for l in body:
                    h = l.call(h, training)
                z = last._call_logits(h, training)
                lv, dz, correct = loss._fused(z, yb, dbuf(z.shape, z.dtype) if training else None,
                                              training)
                if training:
                    dh = last._backward_logits(dz, last_need_dx)
                    for bw in back:
                        dh = bw(dh)
                    opt.apply_gradients(pairs)
                return lv, correct, lambda: last.activation.forward(z)
        else:
            def step(xb, yb):
                h = xb
                for l in body:
                    h = l.call(h, training)
                lv, dh = loss._value_and_grad(yb, h, dbuf(h.shape, h.dtype) if training else None,
                                              training)
                if training:
                    for bw in back:
                        dh = bw(dh)
                    opt.apply_gradients(pairs)
                return lv, None, h
        return step

    @staticmethod
    def _update_metrics(metrics, yb, correct, ypred):
        """yb: the batch's targets on the host; ypred: predictions (or a thunk), any device."""
        for m in metrics:
            if correct is not None and type(m) is metrics_mod.SparseCategoricalAccuracy:
                m._add(int(correct), len(yb))
            else:
                if callable(ypred):
                    ypred = ypred()
                if type(ypred) is not np.ndarray:
                    ypred = layers_mod._to_numpy(ypred)
                m.update_state(yb, ypred)
        return ypred

    @staticmethod
    def _logs(loss_sum, seen, metrics, prefix=""):
        logs = {prefix + "loss": loss_sum / seen if seen else float("nan")}
        for m in metrics:
            logs[prefix + m.name] = float(m.result())
        return logs

    # ------------------------------------------------------------ fit
    def fit(self, x=None, y=None, batch_size=None, epochs=1, verbose="auto", callbacks=None,
            validation_split=0.0, validation_data=None, shuffle=True, class_weight=None,
            sample_weight=None, initial_epoch=0, steps_per_epoch=None, validation_steps=None,
            validation_batch_size=None, validation_freq=1):
        """Train for `epochs` epochs; returns a History (history.history dict)."""
        self._require_compiled("fit")
        if class_weight is not None or sample_weight is not None:
            raise NotImplementedError("fit: class_weight and sample_weight are not supported")
        if x is None:
            raise ValueError("fit: x is missing")
        x = self._prep_x(x, "fit")
        n = len(x)
        y = self._prep_y(y, n, "fit")
        if not 0.0 <= validation_split < 1.0:
            raise ValueError(f"fit: validation_split must be in [0, 1), got {validation_split}")
        val = None
        if validation_data is not None:
            if len(validation_data) not in (2, 3):
                raise ValueError("fit: validation_data must be (x_val, y_val)")
            vx = self._prep_x(validation_data[0], "fit (validation_data)")
            val = (vx, self._prep_y(validation_data[1], len(vx), "fit (validation_data)"))
        elif validation_split:
            split = int(math.floor(n * (1.0 - validation_split)))  # Keras: the last fraction
            val = (x[split:], y[split:])
            x, y = x[:split], y[:split]
            n = split
        if n == 0:
            raise ValueError("fit: no training samples")
        bs = int(batch_size or 32)
        if bs <= 0:
            raise ValueError(f"fit: batch_size must be positive, got {batch_size}")
        steps = math.ceil(n / bs)
        if steps_per_epoch:
            steps = min(steps, int(steps_per_epoch))
        if verbose == "auto":
            verbose = 1
        x = np.ascontiguousarray(x)

        history = callbacks_mod.History()
        cbs = [history] + list(callbacks or [])
        if verbose:
            cbs.append(callbacks_mod.ProgbarLogger(verbose))
        params = {"epochs": epochs, "steps": steps, "verbose": verbose, "batch_size": bs,
                  "samples": n}
        cbl = callbacks_mod.CallbackList(cbs, self, params)
        cbl.per_batch = [c for c in cbl.per_batch
                         if not (isinstance(c, callbacks_mod.ProgbarLogger) and not c.live)]
        per_batch = bool(cbl.per_batch)

        step = self._step_fn(training=True)
        dev = self._dev
        metrics = self._make_metrics()
        rng = _random.generator()
        xbuf = _memory.empty((bs,) + x.shape[1:], x.dtype)
        ybuf = np.empty((bs,) + y.shape[1:], y.dtype)
        self.stop_training = False
        self.history = history
        interrupted = [False]
        old_handler = None
        if threading.current_thread() is threading.main_thread():
            def on_sigint(signum, frame):
                if interrupted[0]:
                    raise KeyboardInterrupt
                interrupted[0] = True
            try:
                old_handler = signal.signal(signal.SIGINT, on_sigint)
            except (ValueError, OSError):
                old_handler = None
        logs = {}
        cbl.call("on_train_begin", None)
        try:
            for epoch in range(initial_epoch, epochs):
                for m in metrics:
                    m.reset_state()
                loss_sum = 0.0
                seen = 0
                cbl.call("on_epoch_begin", epoch, None)
                perm = rng.permutation(n) if shuffle else None
                done = 0
                for s in range(steps):
                    lo = s * bs
                    hi = min(lo + bs, n)
                    if per_batch:
                        cbl.train_batch_begin(s, {})
                    if perm is None:
                        xb, yb = x[lo:hi], y[lo:hi]
                    elif hi - lo == bs:
                        idx = perm[lo:hi]
                        xb = np.take(x, idx, axis=0, out=xbuf)
                        yb = np.take(y, idx, axis=0, out=ybuf)
                    else:
                        idx = perm[lo:hi]
                        xb, yb = x[idx], y[idx]
                    lv, correct, ypred = step(dev(xb), dev(yb))
                    nb = hi - lo
                    loss_sum += lv * nb
                    seen += nb
                    if metrics:
                        self._update_metrics(metrics, yb, correct, ypred)
                    done = s + 1
                    if per_batch:
                        cbl.train_batch_end(s, self._logs(loss_sum, seen, metrics))
                    if self.stop_training or interrupted[0]:
                        break
                logs = self._logs(loss_sum, seen, metrics)
                if val is not None and not interrupted[0] and (epoch + 1) % validation_freq == 0:
                    vres = self._evaluate_arrays(val[0], val[1], validation_batch_size or bs)
                    logs.update({"val_" + k: v for k, v in vres.items()})
                params["seen_steps"] = done
                if interrupted[0]:
                    break
                cbl.call("on_epoch_end", epoch, logs)
                if self.stop_training:
                    break
        except KeyboardInterrupt:
            interrupted[0] = True
        finally:
            if old_handler is not None:
                signal.signal(signal.SIGINT, old_handler)
        if interrupted[0] and verbose:
            print("\nTraining interrupted: stopped between batches; the weights so far are kept.",
                  file=sys.stderr)
        cbl.call("on_train_end", logs)
        return history

    # ------------------------------------------------------------ evaluate / predict
    def _evaluate_arrays(self, x, y, bs, cbl=None):
        step = self._step_fn(training=False)
        metrics = self._make_metrics()
        n = len(x)
        loss_sum = 0.0
        for s, lo in enumerate(range(0, n, bs)):
            hi = min(lo + bs, n)
            if cbl:
                cbl.call("on_test_batch_begin", s, None)
            lv, correct, ypred = step(self._dev(x[lo:hi]), self._dev(y[lo:hi]))
            loss_sum += lv * (hi - lo)
            if metrics:
                self._update_metrics(metrics, y[lo:hi], correct, ypred)
            if cbl:
                cbl.call("on_test_batch_end", s, None)
        return self._logs(loss_sum, n, metrics)

    def evaluate(self, x=None, y=None, batch_size=None, verbose="auto", sample_weight=None,
                 steps=None, callbacks=None, return_dict=False):
        """Mean loss (and metrics) over x: loss, or [loss, *metrics]; a dict with return_dict."""
        self._require_compiled("evaluate")
        if sample_weight is not None:
            raise NotImplementedError("evaluate: sample_weight is not supported")
        x = self._prep_x(x, "evaluate")
        y = self._prep_y(y, len(x), "evaluate")
        bs = int(batch_size or 32)
        cbl = callbacks_mod.CallbackList(callbacks or [], self, {"verbose": verbose}) if callbacks else None
        if cbl:
            cbl.call("on_test_begin", None)
        t0 = time.perf_counter()
        logs = self._evaluate_arrays(np.ascontiguousarray(x), y, bs, cbl)
        if cbl:
            cbl.call("on_test_end", logs)
        if verbose == "auto":
            verbose = 1
        if verbose:
            steps_n = math.ceil(len(x) / bs)
            el = time.perf_counter() - t0
            per = el / max(steps_n, 1)
            unit = f"{per * 1e3:.0f}ms/step" if per >= 1e-3 else f"{per * 1e6:.0f}us/step"
            print(f"{steps_n}/{steps_n} - {el:.0f}s - {unit}" +
                  "".join(f" - {k}: {v:.4f}" for k, v in logs.items()))
        if return_dict:
            return logs
        vals = list(logs.values())
        return vals[0] if len(vals) == 1 else vals

    def predict(self, x, batch_size=None, verbose="auto", steps=None, callbacks=None):
        """Outputs for x in batches of batch_size (default 32), as one array."""
        x = self._prep_x(x, "predict")
        bs = int(batch_size or 32)
        n = len(x)
        out = None
        for lo in range(0, n, bs):
            h = self._dev(x[lo:lo + bs])
            for l in self.layers:
                h = l.call(h, False)
            if type(h) is not np.ndarray:
                h = layers_mod._to_numpy(h)
            if out is None:
                out = np.empty((n,) + h.shape[1:], h.dtype)
            out[lo:lo + len(h)] = h
        if out is None:
            shape = tuple(0 if d is None else d for d in self.output_shape)
            out = np.empty(shape, self._dtype)
        return out

    def train_on_batch(self, x, y, return_dict=False):
        self._require_compiled("train_on_batch")
        x = self._prep_x(x, "train_on_batch")
        y = self._prep_y(y, len(x), "train_on_batch")
        metrics = self._make_metrics()
        lv, correct, ypred = self._step_fn(training=True)(self._dev(x), self._dev(y))
        self._update_metrics(metrics, y, correct, ypred)
        logs = self._logs(lv, 1, metrics)
        return logs if return_dict else (lv if not metrics else list(logs.values()))

    def test_on_batch(self, x, y, return_dict=False):
        self._require_compiled("test_on_batch")
        x = self._prep_x(x, "test_on_batch")
        y = self._prep_y(y, len(x), "test_on_batch")
        logs = self._evaluate_arrays(x, y, max(len(x), 1))
        return logs if return_dict else (logs["loss"] if len(logs) == 1 else list(logs.values()))

    def predict_on_batch(self, x):
        return self.predict(x, batch_size=max(len(x), 1))

    # ------------------------------------------------------------ summary
    def summary(self, line_length=None, positions=None, print_fn=None, **kwargs):
        """Keras' table: layer (type), output shape, params; then the totals."""
        if not self.built:
            raise ValueError(self._not_built_message("summary"))
        print_fn = print_fn or print
        width = line_length or 65
        pos = positions or [0.45, 0.85, 1.0]
        cols = [int(width * p) for p in pos]

        def row(fields):
            line = ""
            for f, end in zip(fields, cols):
                line += " " + str(f)
                line = line[:end - 1].ljust(end)
            return line.rstrip()

        print_fn(f'Model: "{self.name}"')
        print_fn("_" * width)
        print_fn(row(["Layer (type)", "Output Shape", "Param #"]))
        print_fn("=" * width)
        for i, l in enumerate(self.layers):
            print_fn(row([f"{l.name} ({type(l).__name__})", _shape_str(l.output_shape),
                          f"{l.count_params():,}"]))
            if i < len(self.layers) - 1:
                print_fn("")
        print_fn("=" * width)
        trainable = sum(w.size for w in self.trainable_weights)
        non = sum(w.size for w in self.non_trainable_weights)
        item = (self._dtype or np.dtype(np.float32)).itemsize
        print_fn(f"Total params: {trainable + non:,} ({_bytes(item * (trainable + non))})")
        print_fn(f"Trainable params: {trainable:,} ({_bytes(item * trainable)})")
        print_fn(f"Non-trainable params: {non:,} ({_bytes(item * non)})")
        print_fn("_" * width)

    # ------------------------------------------------------------ weights
    def get_weights(self):
        return [w for l in self.layers for w in l.get_weights()]

    def set_weights(self, weights):
        weights = list(weights)
        need = sum(len(l.weights) for l in self.layers)
        if len(weights) != need:
            raise ValueError(f"set_weights: the model has {need} weight arrays, got {len(weights)}")
        i = 0
        for l in self.layers:
            k = len(l.weights)
            l.set_weights(weights[i:i + k])
            i += k

    def to(self, device):
        """Move the weights to 'cuda' or 'cpu' (fit/predict then move each batch)."""
        d = str(device).lower()
        if d in ("cuda", "gpu") or d.startswith("cuda:"):
            from . import cuda
            if not cuda.is_available():
                raise RuntimeError(f"model.to({device!r}): CUDA is not available here "
                                   f"({ops._cuda_reason()}); keep the model on the CPU "
                                   f"(model.to('cpu')) or install CuPy with a CUDA build of fastdl")
            import cupy
            for l in self.layers:
                l._move(cupy.asarray)
            self.device = "cuda"
            self._dev = _to_device(cupy)
            self._empty = layers_mod._empty_like_module(cupy.asarray(np.zeros(0, np.float32)))
        elif d == "cpu":
            for l in self.layers:
                l._move(layers_mod._to_numpy)
            self.device = "cpu"
            self._dev = _on_host
            self._empty = _memory.empty
        else:
            raise ValueError(f"model.to: device must be 'cpu' or 'cuda', got {device!r}")
        if self.optimizer is not None:
            self.optimizer._move(None)
        return self

    # ------------------------------------------------------------ config and saving
    def get_config(self):
        return {"name": self.name, "layers": [layers_mod.serialize(l) for l in self.layers],
                "build_input_shape": list(self._input_shape) if self._input_shape else None}

    def _compile_config(self):
        if not self.compiled:
            return None
        return {"optimizer": optimizers_mod.serialize(self.optimizer),
                "loss": losses_mod.serialize(self.loss),
                "metrics": [m for m in self._metric_ids if isinstance(m, str)]}

    def save(self, filepath, overwrite=True, include_optimizer=True, **kwargs):
        """One .npz file (whatever the extension): architecture JSON, weights, optimizer state."""
        if not self.built:
            raise ValueError(self._not_built_message("save"))
        path = os.fspath(filepath)
        if not overwrite and os.path.exists(path):
            raise FileExistsError(f"save: {path!r} exists and overwrite=False")
        header = {"format": _FORMAT, "version": _FORMAT_VERSION, "kind": "model",
                  "class_name": type(self).__name__, "config": self.get_config(),
                  "dtype": self._dtype.name, "compile": self._compile_config()}
        arrays = {f"w{i}": w for i, w in enumerate(self.get_weights())}
        if include_optimizer and self.compiled and self.optimizer is not None:
            it, state = self.optimizer.get_state(self.trainable_weights)
            header["optimizer_iterations"] = it
            header["optimizer_slots"] = len(state)
            arrays.update({f"o{i}": s for i, s in enumerate(state)})
        header["num_weights"] = len(self.weights)
        _write_npz(path, header, arrays)

    def save_weights(self, filepath, overwrite=True):
        if not self.built:
            raise ValueError(self._not_built_message("save_weights"))
        path = os.fspath(filepath)
        header = {"format": _FORMAT, "version": _FORMAT_VERSION, "kind": "weights",
                  "num_weights": len(self.weights),
                  "shapes": [list(w.shape) for w in self.weights]}
        _write_npz(path, header, {f"w{i}": w for i, w in enumerate(self.get_weights())})

    def load_weights(self, filepath):
        path = os.fspath(filepath)
        header, arrays = _read_npz(path)
        n = header.get("num_weights")
        ws = [arrays.get(f"w{i}") for i in range(n or 0)]
        if n is None or any(w is None for w in ws):
            raise ValueError(f"load_weights: {path!r} holds no complete set of weights")
        if not self.built:
            raise ValueError(self._not_built_message("load_weights"))
        mine = self.weights
        if len(ws) != len(mine) or any(a.shape != b.shape for a, b in zip(ws, mine)):
            raise ValueError(f"load_weights: {path!r} holds weights of shapes "
                             f"{[a.shape for a in ws]}, the model has {[b.shape for b in mine]}")
        self.set_weights(ws)


def _bytes(n):
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.2f} {unit}"
        n /= 1024.0


def _write_npz(path, header, arrays):
    """Write to a temporary file in the same folder, then rename over path."""
    with atomic_file(path, "wb") as f:
        meta = np.frombuffer(json.dumps(header).encode("utf-8"), dtype=np.uint8)
        np.savez(f, __fastdl__=meta, **{k: np.asarray(layers_mod._to_numpy(v)) for k, v in arrays.items()})


def _read_npz(path):
    if not os.path.exists(path):
        raise FileNotFoundError(f"no such file: {path!r}")
    try:
        with np.load(path, allow_pickle=False) as z:
            if not hasattr(z, "files") or "__fastdl__" not in z.files:
                raise ValueError("no fastdl header")
            header = json.loads(bytes(z["__fastdl__"]).decode("utf-8"))
            arrays = {k: z[k] for k in z.files if k != "__fastdl__"}
    except Exception as e:
        raise ValueError(f"{path!r} is not a readable fastdl model/weights file (truncated, "
                         f"corrupt or another format): {type(e).__name__}: {e}") from None
    if not isinstance(header, dict) or header.get("format") != _FORMAT:
        raise ValueError(f"{path!r} is not a fastdl model/weights file")
    return header, arrays


def _on_host(a):
    return a


def _to_device(xp):
    """Moves a host batch to the GPU (device arrays pass through)."""
    def dev(a):
        return a if hasattr(a, "__cuda_array_interface__") else xp.asarray(a)
    return dev


def _backward_plan(layers):
    """The backward pass over ``layers`` [(layer, need_dx)] (forward order) as a list
    of callables dh -> dh, last layer first.

    A layer whose ReLU output feeds a MaxPooling2D is fused with it: the pooling
    backward applies the ReLU's mask in its own pass (ops.max_pool2d_backward with
    relu=True), and the layer continues from its pre-activation gradient. That
    saves one full read and write of the layer's output per step.
    """
    plan = []
    i = len(layers) - 1
    while i >= 0:
        layer, need_dx = layers[i]
        prev, prev_need_dx = layers[i - 1] if i > 0 else (None, False)
        act = getattr(prev, "_output_activation", None)
        if (need_dx and type(layer) is layers_mod.MaxPooling2D and act is not None
                and act() == "relu" and hasattr(prev, "_backward_logits")):
            plan.append(lambda dh, pool=layer, p=prev, nd=prev_need_dx:
                        p._backward_logits(pool._backward_relu(dh), nd))
            i -= 2
        else:
            plan.append(lambda dh, l=layer, nd=need_dx: l.backward(dh, nd))
            i -= 1
    return plan


class Sequential(Model):
    """A plain stack of layers, Keras' Sequential."""

    def __init__(self, layers=None, name=None, trainable=True):
        self.name = name or layers_mod.unique_name("sequential")
        self._init_state()
        for l in layers or []:
            self.add(l)

    def add(self, layer):
        if not isinstance(layer, layers_mod.Layer):
            raise TypeError(f"Sequential.add expects a layer, got {type(layer).__name__}")
        if isinstance(layer, layers_mod.InputLayer):
            if self.layers:
                raise ValueError("an Input must come first in a Sequential model")
            self._input_shape = layer.shape
            if layer.dtype is not None:
                self._dtype = layer.dtype
            return
        if not self.layers and self._input_shape is None and layer._input_shape_arg is not None:
            self._input_shape = (None,) + tuple(layer._input_shape_arg)
            if layer.dtype is not None:
                self._dtype = layer.dtype
        if layer.built and self.layers and self.built:
            prev = self.layers[-1].output_shape
            layer._check_input(prev)
        self.layers.append(layer)
        if self._input_shape is not None:
            self.build(self._input_shape)

    def pop(self):
        if not self.layers:
            raise IndexError("pop from an empty model")
        return self.layers.pop()

    @classmethod
    def from_config(cls, config):
        m = cls(name=config.get("name"))
        shape = config.get("build_input_shape")
        layer_objs = [layers_mod.deserialize(d) for d in config.get("layers", [])]
        if shape is not None:
            m._input_shape = tuple(shape)
        for l in layer_objs:
            m.add(l)
        return m


def load_model(filepath, compile=True, custom_objects=None):
    """A model written by model.save (any extension)."""
    path = os.fspath(filepath)
    header, arrays = _read_npz(path)
    if header.get("kind") != "model":
        raise ValueError(f"{path!r} holds only weights (from save_weights); build the model and "
                         f"call model.load_weights instead")
    try:
        model = Sequential.from_config(header["config"])
        if not model.built:
            raise ValueError("the saved model has no input shape")
        if header.get("dtype") and np.dtype(header["dtype"]) != model._dtype:
            for l in model.layers:
                l.built = False
                l._weights, l._grads, l._weight_names = [], [], []
                l.dtype = None
            model.build(model._input_shape, header["dtype"])
        n = header["num_weights"]
        model.set_weights([arrays[f"w{i}"] for i in range(n)])
        cc = header.get("compile")
        if compile and cc:
            model.compile(optimizer=optimizers_mod.get(cc["optimizer"]),
                          loss=losses_mod.get(cc["loss"]), metrics=cc.get("metrics"))
            k = header.get("optimizer_slots")
            if k is not None:
                model.optimizer.set_state(model.trainable_weights, header["optimizer_iterations"],
                                          [arrays[f"o{i}"] for i in range(k)])
    except (KeyError, TypeError) as e:
        raise ValueError(f"{path!r}: the saved model is incomplete or inconsistent "
                         f"({type(e).__name__}: {e})") from None
    return model
