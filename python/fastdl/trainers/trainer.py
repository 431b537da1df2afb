"""compile / fit / evaluate / predict, as Keras 3's Trainer.

Each batch goes through ``train_step(data)`` (``test_step``, ``predict_step``),
which a Model subclass may override, exactly as in Keras. The default
``train_step`` runs the forward pass and ``compute_loss`` under a
``GradientTape`` and applies the gradients.

Models made only of built-in layers in a ``Sequential`` stack skip the tape: a
*step plan* (``_plan_step``) built once per fit runs every layer's fused kernels,
the loss's fused forward+gradient kernel on the last layer's logits (softmax +
cross-entropy in one stable pass), every layer's backward and the optimizer,
with buffers reused between steps. It computes the same thing as the default
train_step; tests check the two agree to the bit.
"""
import math
import signal
import sys
import threading
import time

import numpy as np

from .. import _device, _memory, _random, _replay, _tape
from .. import distribution as _distribution
from .. import callbacks as callbacks_mod
from .. import losses as losses_mod
from .. import metrics as metrics_mod
from .. import optimizers as optimizers_mod
from . import data_adapter
from . import inference as _inference
from ..layers.layer import shape_str as _shape_str, _version as _layer_version


class Trainer:
    _dist_session = None   # the fastdl.distribution session of the fit in progress, if any

    # ------------------------------------------------------------ compile
    def compile(self, optimizer="rmsprop", loss=None, loss_weights=None, metrics=None,
                weighted_metrics=None, run_eagerly=False, steps_per_execution=1,
                jit_compile="auto", auto_scale_loss=True, **kwargs):
        if kwargs:
            raise TypeError(f"compile: unexpected keyword argument(s) {', '.join(sorted(kwargs))}")
        if jit_compile not in ("auto", False, None):
            raise NotImplementedError("compile: jit_compile=True is not supported: fastdl runs "
                                      "its own compiled kernels eagerly (use 'auto' or False)")
        if int(steps_per_execution) != 1:
            raise NotImplementedError("compile: steps_per_execution must be 1")
        if metrics is None and _looks_like_metrics(loss_weights):
            # compile(optimizer, loss, metrics) positionally, as SPEC and Keras 2 order them
            metrics, loss_weights = loss_weights, None
        self.run_eagerly = bool(run_eagerly)
        self.optimizer = optimizers_mod.get(optimizer)
        self._loss_arg, self._loss_weights_arg, self._metrics_arg = loss, loss_weights, metrics
        self._weighted_metrics_arg = weighted_metrics
        self.loss = None
        if loss is not None:
            # validate names now (an unknown loss or metric fails at compile, as in Keras)
            self._compile_structure(loss, loss_weights, metrics, weighted_metrics)
            self.loss = _loss_of(loss) if not isinstance(loss, (list, tuple, dict)) else loss
        elif loss_weights is not None or metrics or weighted_metrics:
            self._compile_structure(None, loss_weights, metrics, weighted_metrics)
        self.compiled = True
        self._compiled_state = None
        self._loss_tracker = metrics_mod.Mean(name="loss")

    def _output_names(self):
        return list(getattr(self, "output_names", None) or ["output"])

    def _compile_structure(self, loss, loss_weights, metrics, weighted_metrics=None):
        """Per output: (name, loss object or None, weight, [metric ids], [weighted metric ids])."""
        names = self._output_names()
        n = len(names)

        def per_output(arg, what, default, single_ok):
            if arg is None:
                return [default] * n
            if isinstance(arg, dict):
                unknown = [k for k in arg if k not in names]
                if unknown:
                    raise ValueError(f"compile: {what} has key(s) {unknown} that match no output "
                                     f"of the model; its outputs are {names}")
                return [arg.get(k, default) for k in names]
            if isinstance(arg, (list, tuple)) and not single_ok(arg):
                if len(arg) != n:
                    raise ValueError(f"compile: {what} is a list of {len(arg)} entries but the "
                                     f"model has {n} output(s) {names}")
                return list(arg)
            return [arg] * n

        losses = per_output(loss, "loss", None, lambda a: False)
        weights = per_output(loss_weights, "loss_weights", 1.0, lambda a: False)

        def metric_lists(metrics, what):
            if n == 1 and isinstance(metrics, (list, tuple)) and not any(
                    isinstance(m, (list, tuple, dict)) for m in metrics):
                return [list(metrics)]
            mets = per_output(metrics, what, [], lambda a: False)
            return [list(m) if isinstance(m, (list, tuple)) else ([] if m is None else [m])
                    for m in mets]
        mets = metric_lists(metrics, "metrics")
        wmets = metric_lists(weighted_metrics, "weighted_metrics")
        out = []
        for name, l, w, m, wm in zip(names, losses, weights, mets, wmets):
            lo = _loss_of(l) if l is not None else None
            for mid in m + wm:
                metrics_mod.get(mid, lo)  # unknown names fail here
            out.append((name, lo, float(w), m, wm))
        return out

    def _require_compiled(self, what):
        if not getattr(self, "compiled", False):
            raise ValueError(f"{what}: you must call compile() first, e.g. "
                               f"model.compile(optimizer='adam', loss='sparse_categorical_crossentropy', "
                               f"metrics=['accuracy'])")

    def _compiled(self):
        """The compiled losses and metric objects, made once the outputs are known."""
        st = self._compiled_state
        if st is None:
            spec = self._compile_structure(self._loss_arg, self._loss_weights_arg,
                                           self._metrics_arg, self._weighted_metrics_arg)
            multi = len(spec) > 1
            st = []
            for name, lo, w, mids, wmids in spec:
                shape = self._output_shape_of(name)
                mets = [metrics_mod.get(mid, lo, shape) for mid in mids]
                wmets = [metrics_mod.get(mid, lo, shape) for mid in wmids]
                plain = {m.name for m in mets}
                for m in wmets:
                    if m.name in plain:   # the same metric weighted and not (Keras' naming)
                        m.name = f"weighted_{m.name}"
                for m in mets + wmets:
                    if multi:
                        m.name = f"{name}_{m.name}"
                tracker = metrics_mod.Mean(name=f"{name}_loss") if multi and lo is not None else None
                st.append((name, lo, w, mets, wmets, tracker))
            self._compiled_state = st
        return st

    def _output_shape_of(self, name):
        try:
            shapes = self.output_shape
        except Exception:
            return None
        names = self._output_names()
        if isinstance(shapes, list):
            return shapes[names.index(name)] if name in names else None
        return shapes

    @property
    def metrics(self):
        """The metrics fit resets each epoch and reports: the loss, the per-output
        losses and compiled metrics, and metric objects assigned as attributes."""
        out = []
        if getattr(self, "compiled", False):
            out.append(self._loss_tracker)
            if self._loss_arg is not None or self._metrics_arg or self._weighted_metrics_arg:
                for name, lo, w, mets, wmets, tracker in self._compiled():
                    if tracker is not None:
                        out.append(tracker)
                    out.extend(mets)
                    out.extend(wmets)
        for v in self.__dict__.values():
            if isinstance(v, metrics_mod.Metric) and all(v is not m for m in out):
                out.append(v)
        return out

    @property
    def metrics_names(self):
        return [m.name for m in self.metrics]

    def reset_metrics(self):
        for m in self.metrics:
            m.reset_state()

    # ------------------------------------------------------------ steps (Keras' API)
    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """The compiled losses (weighted, summed over outputs) plus ``self.losses``.
        ``sample_weight`` (one array for every output, or one per output) weights each
        sample's loss as Keras does: sum(loss * weight) / number of samples."""
        total = None
        if self._loss_arg is not None:
            ys = self._by_output(y, "y")
            ps = self._by_output(y_pred, "y_pred")
            sws = self._weights_by_output(sample_weight)
            for (name, lo, w, mets, wmets, tracker), yt, yp, sw in zip(self._compiled(), ys, ps,
                                                                      sws):
                if lo is None:
                    continue
                if yt is None:
                    raise ValueError(f"targets for output {name!r} are missing")
                v = lo(yt, yp) if sw is None else lo(yt, yp, sample_weight=sw)
                if tracker is not None:
                    tracker.update_state(_as_float(v), sample_weight=_batch_len(yp))
                v = v * w if w != 1.0 else v
                total = v if total is None else total + v
        for extra in self.losses:
            total = extra if total is None else total + _scalar(extra)
        if total is None:
            raise ValueError("compute_loss: the model has no loss: compile it with loss=..., or "
                             "add_loss in a layer, or override train_step")
        return total

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        """Update the compiled metrics: ``weighted_metrics`` with sample_weight, the plain
        ``metrics`` without (as Keras)."""
        if self._loss_arg is not None or self._metrics_arg or self._weighted_metrics_arg:
            ys = self._by_output(y, "y")
            ps = self._by_output(y_pred, "y_pred")
            sws = self._weights_by_output(sample_weight)
            for (name, lo, w, mets, wmets, tracker), yt, yp, sw in zip(self._compiled(), ys, ps,
                                                                      sws):
                if (mets or wmets) and yt is not None:
                    yp_h = _device.to_host(_tape.value(yp))
                    yt_h = _device.to_host(_tape.value(yt))
                    for m in mets:
                        m.update_state(yt_h, yp_h)
                    sw_h = None if sw is None else _device.to_host(_tape.value(sw))
                    for m in wmets:
                        m.update_state(yt_h, yp_h, sample_weight=sw_h)
        return self.get_metrics_result()

    def _weights_by_output(self, sample_weight):
        """sample_weight per output: one array serves every output; a list or dict gives
        one per output (Keras)."""
        names = self._output_names()
        if sample_weight is None:
            return [None] * len(names)
        if isinstance(sample_weight, dict) or (
                isinstance(sample_weight, (list, tuple)) and len(names) > 1 and
                len(sample_weight) == len(names) and
                all(s is None or hasattr(s, "shape") for s in sample_weight)):
            return self._by_output(sample_weight, "sample_weight")
        return [sample_weight] * len(names)

    def get_metrics_result(self):
        return {m.name: _as_float(m.result()) for m in self.metrics}

    def _by_output(self, v, what):
        names = self._output_names()
        if len(names) == 1:
            if isinstance(v, dict) and len(v) == 1:
                return list(v.values())
            if isinstance(v, (list, tuple)) and len(v) == 1 and hasattr(v[0], "shape"):
                return list(v)
            return [v]
        if isinstance(v, dict):
            unknown = [k for k in v if k not in names]
            if unknown:
                raise ValueError(f"{what} has key(s) {unknown} that match no output of the model; "
                                 f"its outputs are {names}")
            return [v.get(k) for k in names]
        if isinstance(v, (list, tuple)):
            if len(v) != len(names):
                raise ValueError(f"{what} holds {len(v)} arrays but the model has {len(names)} "
                                 f"outputs {names}")
            return list(v)
        raise ValueError(f"the model has {len(names)} outputs {names}; pass {what} as a list or a "
                         f"dict keyed by output name")

    def train_step(self, data):
        x, y, sample_weight = data_adapter.unpack_x_y_sample_weight(data)
        with _tape.GradientTape() as tape:
            y_pred = self(x, training=True)
            loss = self.compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sample_weight)
        self._loss_tracker.update_state(_as_float(loss), sample_weight=_batch_len(x))
        ws = self.trainable_weights
        grads = tape.gradient(loss, ws)
        self.optimizer.apply_gradients([(g, w) for g, w in zip(grads, ws) if g is not None])
        return self.compute_metrics(x, y, y_pred, sample_weight)

    def test_step(self, data):
        x, y, sample_weight = data_adapter.unpack_x_y_sample_weight(data)
        y_pred = self(x, training=False)
        loss = self.compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sample_weight,
                                 training=False)
        self._loss_tracker.update_state(_as_float(loss), sample_weight=_batch_len(x))
        return self.compute_metrics(x, y, y_pred, sample_weight)

    def predict_step(self, data):
        x, _, _ = data_adapter.unpack_x_y_sample_weight(data)
        return self(x, training=False)

    # ------------------------------------------------------------ the fused plan
    def _plannable(self, data=None):
        """The fused step plan applies (see the module docstring). Sequential and functional
        models of built-in layers say when; everything else runs train_step."""
        return False

    def _plan_conditions(self, data):
        """What a step plan needs besides built-in layers: the default steps, in-memory
        arrays, one built-in loss and no extra losses."""
        cls = type(self)
        return (cls.train_step is Trainer.train_step and cls.test_step is Trainer.test_step and
                cls.compute_loss is Trainer.compute_loss and
                isinstance(data, data_adapter.ArrayData) and hasattr(data.x, "shape") and
                (data.y is None or hasattr(data.y, "shape")) and data.sample_weight is None and
                isinstance(self.loss, losses_mod.Loss) and
                self.loss._kernel_ready() and
                self._loss_weights_arg in (None, 1, 1.0) and not self.losses and
                not any(l.activity_regularizer is not None for l in self._flatten_layers()))

    def _prep_y(self, y, n, what):
        if y is None:
            raise ValueError(f"{what}: targets y are missing")
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
        y = np.ascontiguousarray(y, dtype=self._output_dtype())
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


    def _output_dtype(self):
        return self.dtype

    def _num_classes(self):
        """The number of classes of a single output (its last dimension), or None when
        unknown; class_weight keys must be below it."""
        names = self._output_names()
        if len(names) != 1:
            return None
        shape = self._output_shape_of(names[0])
        if not shape or not isinstance(shape, tuple) or shape[-1] is None:
            return None
        return int(shape[-1])

    def _plan_step(self, data, training):
        """One epoch of the fused step plan over in-memory arrays: a function (rng, steps,
        callbacks or None, should_stop) -> (steps done, logs), as _epoch_runner's."""
        what = "fit" if training else "evaluate"
        x = np.ascontiguousarray(self._prep_x(data.x, what))
        n = len(x)
        y = self._prep_y(data.y, n, what)
        bs = data.batch_size
        step = self._step_fn(training)
        dev = self._dev
        spec = self._compiled()
        mets = spec[0][3] + spec[0][4]   # no sample weights here: weighted metrics are plain
        self._loss_tracker.reset_state()
        lo0, hi0 = data.block(0, bs)   # the samples of a full batch this process takes
        xbuf = _memory.empty((hi0 - lo0,) + x.shape[1:], x.dtype)
        ybuf = np.empty((hi0 - lo0,) + y.shape[1:], y.dtype)

        def logs_of(loss_sum, seen):
            logs = {"loss": loss_sum / seen if seen else float("nan")}
            for m in mets:
                logs[m.name] = float(m.result())
            return logs

        def run(rng, steps, cbl, should_stop):
            for m in mets:
                m.reset_state()
            tracker = self._loss_tracker   # the loss sum and sample count of the epoch
            tracker.reset_state()
            ds = (self._dist_session or None) if training else None
            done = 0
            total = -(-n // bs)
            if steps is not None:
                total = min(total, steps)
            perm = rng.permutation(n) if (training and data.shuffle and rng is not None) else None
            for s in range(total):
                lo, hi = data.block(s * bs, min(s * bs + bs, n))
                if cbl is not None:
                    cbl.train_batch_begin(s, {}) if training else cbl.call("on_test_batch_begin", s, None)
                if ds is not None:
                    ds.begin_step(hi - lo)
                if hi == lo:
                    pass   # under DataParallel a rank may have no share of the last batch
                elif perm is None:
                    xb, yb = x[lo:hi], y[lo:hi]
                elif hi - lo == len(xbuf):
                    idx = perm[lo:hi]
                    # (mode="clip": a permutation's indices are in range, and "raise"
                    # would write through a temporary copy of out)
                    xb = x.take(idx, axis=0, out=xbuf, mode="clip")
                    yb = y.take(idx, axis=0, out=ybuf, mode="clip")
                else:
                    idx = perm[lo:hi]
                    xb, yb = x[idx], y[idx]
                if hi > lo:
                    lv, correct, ypred = step(dev(xb), dev(yb))
                    tracker.total += lv * (hi - lo)
                    tracker.count += hi - lo
                    for m in mets:
                        if correct is not None and type(m) is metrics_mod.SparseCategoricalAccuracy:
                            m._add(int(correct), len(yb))
                        else:
                            if callable(ypred):
                                ypred = ypred()
                            m.update_state(yb, _device.to_host(ypred))
                if ds is not None:
                    ds.end_step()   # the gradients, loss and metrics of all ranks; the update
                done = s + 1
                if cbl is not None:
                    if training:
                        cbl.train_batch_end(s, logs_of(tracker.total, tracker.count))
                    else:
                        cbl.call("on_test_batch_end", s, None)
                if should_stop():
                    break
            return done, logs_of(tracker.total, tracker.count)
        return run


    # ------------------------------------------------------------ fit
    def fit(self, x=None, y=None, batch_size=None, epochs=1, verbose="auto", callbacks=None,
            validation_split=0.0, validation_data=None, shuffle=True, class_weight=None,
            sample_weight=None, initial_epoch=0, steps_per_epoch=None, validation_steps=None,
            validation_batch_size=None, validation_freq=1):
        """Train for ``epochs`` epochs; returns a History (history.history dict)."""
        self._require_compiled("fit")
        if not 0.0 <= validation_split < 1.0:
            raise ValueError(f"fit: validation_split must be in [0, 1), got {validation_split}")
        if class_weight is not None and hasattr(x, "shape") and len(x):
            self._ensure_built(data_adapter.as_arrays(x)[:1])   # the number of classes
        data = data_adapter.adapt(x, y, sample_weight, batch_size, shuffle, "fit",
                                  class_weight=class_weight,
                                  num_classes=self._num_classes() if class_weight else None)
        val = None
        if validation_split:
            if not isinstance(data, data_adapter.ArrayData):
                raise ValueError("fit: validation_split needs arrays; with a generator or a "
                                 "PyDataset pass validation_data")
            data, val = data.split(validation_split)
            if validation_batch_size:
                val.batch_size = int(validation_batch_size)
        elif validation_data is not None:
            if isinstance(validation_data, (list, tuple)):
                vx, vy, vsw = data_adapter.unpack_x_y_sample_weight(tuple(validation_data))
                val = data_adapter.adapt(vx, vy, vsw, validation_batch_size or data.batch_size
                                         if isinstance(data, data_adapter.ArrayData) else
                                         validation_batch_size, False, "fit (validation_data)")
            else:
                val = data_adapter.adapt(validation_data, None, None, None, False,
                                         "fit (validation_data)")
        if isinstance(data, data_adapter.ArrayData) and data.n == 0:
            raise ValueError("fit: no training samples")
        session = _distribution.session(self, "fit")   # DataParallel, or None
        if session is not None:
            data = session.shard(data)
        steps = data.steps()
        if steps_per_epoch:
            steps = int(steps_per_epoch) if steps is None else min(steps, int(steps_per_epoch))
        if verbose == "auto":
            verbose = 1
        if session is not None:
            verbose = session.verbose(verbose)           # the progress bar from rank 0 only
            callbacks = session.callbacks(callbacks)     # and the files
        history = callbacks_mod.History()
        # History after the user's callbacks, as in Keras: it records what they add to the
        # logs (learning_rate from ReduceLROnPlateau / LearningRateScheduler)
        cbs = list(callbacks or []) + [history]
        if verbose:
            cbs.append(callbacks_mod.ProgbarLogger(verbose))
        params = {"epochs": epochs, "steps": steps, "verbose": verbose,
                  "batch_size": getattr(data, "batch_size", None), "samples": data.n}
        cbl = callbacks_mod.CallbackList(cbs, self, params)
        cbl.per_batch = [c for c in cbl.per_batch
                         if not (isinstance(c, callbacks_mod.ProgbarLogger) and not c.live)]
        per_batch = bool(cbl.per_batch)
        test_hooks = any(callbacks_mod._overrides(c, h) for c in cbl.callbacks
                         for h in ("on_test_batch_begin", "on_test_batch_end"))
        self.stop_training = False
        self.history = history
        rng = _random.generator()
        run = self._epoch_runner(data, training=True)
        interrupted = [False]
        old_handler = _catch_sigint(interrupted)
        stop = interrupted       # Ctrl-C; under DataParallel, once every rank knows of it
        if session is not None:
            session.start_fit(interrupted)
            stop = session.stop
        logs = {}
        self._initial_epoch = None
        cbl.call("on_train_begin", {})
        # a callback (BackupAndRestore) may have restored a later starting epoch
        initial_epoch = max(int(initial_epoch), self._initial_epoch or 0)
        self._initial_epoch = None
        try:
            for epoch in range(initial_epoch, epochs):
                cbl.call("on_epoch_begin", epoch, {})
                done, logs = run(rng, steps, cbl if per_batch else None,
                                 lambda: self.stop_training or stop[0])
                if done == 0 and isinstance(data, data_adapter.GeneratorData) and data.exhausted:
                    print("fit: the generator ran out of data; stopping (give steps_per_epoch "
                          "and a generator that repeats to train several epochs)", file=sys.stderr)
                    break
                data.on_epoch_end()
                if session is not None:
                    session.end_epoch()   # e.g. moving statistics: the same on every rank
                logs = dict(logs)
                if val is not None and not stop[0] and (epoch + 1) % validation_freq == 0:
                    # the validation calls the test hooks, as in Keras (SwapEMAWeights)
                    cbl.call("on_test_begin", {})
                    vlogs = self._evaluate_data(val, validation_steps,
                                                cbl if test_hooks else None)
                    cbl.call("on_test_end", dict(vlogs))
                    logs.update({"val_" + k: v for k, v in vlogs.items()})
                params["seen_steps"] = done
                if stop[0]:
                    break
                cbl.call("on_epoch_end", epoch, logs)
                if self.stop_training:
                    break
        except KeyboardInterrupt:
            if session is not None:
                raise   # the other ranks wait in the next step: abort the job
            interrupted[0] = True
        finally:
            if old_handler is not None:
                signal.signal(signal.SIGINT, old_handler)
            if session is not None:
                session.end()
        if epochs > initial_epoch and hasattr(self.optimizer, "finalize_variable_values"):
            self.optimizer.finalize_variable_values(self.trainable_weights)   # use_ema
        if stop[0] and verbose:
            print("\nTraining interrupted: stopped between batches; the weights so far are kept.",
                  file=sys.stderr)
        cbl.call("on_train_end", logs)
        return history

    def _epoch_runner(self, data, training):
        """A function running one epoch over ``data``: (rng, steps, callbacks or None,
        should_stop) -> (steps done, logs)."""
        plan = self._plan_step(data, training) if self._plannable(data) else None
        dev = self._dev

        def run(rng, steps, cbl, should_stop):
            if plan is not None:
                return plan(rng, steps, cbl, should_stop)
            if self.run_eagerly:
                with _replay.eager():
                    return steps_of(rng, steps, cbl, should_stop)
            return steps_of(rng, steps, cbl, should_stop)

        def steps_of(rng, steps, cbl, should_stop):
            self.reset_metrics()
            done, logs = 0, {}
            step_fn = self.train_step if training else self.test_step
            ds = self._dist_session or None
            for s, (xb, yb, swb) in enumerate(data.batches(rng)):
                if steps is not None and s >= steps:
                    break
                if cbl is not None:
                    cbl.train_batch_begin(s, {}) if training else cbl.call("on_test_batch_begin", s, None)
                count = 0 if xb is None else _batch_len(xb)   # 0: no share of this batch
                if count or ds is None:
                    self._ensure_built(xb)
                if ds is not None and training:
                    ds.begin_step(count, _map_dev(dev, xb) if count else None)
                if count or ds is None:
                    batch = data_adapter.pack_x_y_sample_weight(_map_dev(dev, xb),
                                                                _map_dev(dev, yb), swb)
                    logs = {k: _as_float(v) for k, v in step_fn(batch).items()}
                if ds is not None and training:
                    # the gradients, loss and metrics of all ranks; the update
                    logs = ds.end_step(logs)
                done = s + 1
                if cbl is not None:
                    cbl.train_batch_end(s, logs) if training else cbl.call("on_test_batch_end", s, None)
                if should_stop():
                    break
            return done, logs
        return run

    def _ensure_built(self, xb):
        pass

    # ------------------------------------------------------------ evaluate / predict
    def _evaluate_data(self, data, steps=None, cbl=None, shard=True):
        ds = _distribution.session(self, "evaluate")   # DataParallel, or None
        own = ds is not None and self._dist_session is not ds
        if ds is not None:
            if shard:
                ds.shard(data)   # each rank evaluates its share; the sums are added up
            if own:
                ds.start()
        try:
            run = self._epoch_runner(data, training=False)
            _, logs = run(None, steps, cbl, lambda: False)
            if ds is not None:
                logs = ds.sync_metrics(logs)
        finally:
            if own:
                ds.end()
        return logs

    def evaluate(self, x=None, y=None, batch_size=None, verbose="auto", sample_weight=None,
                 steps=None, callbacks=None, return_dict=False):
        """Mean loss (and metrics) over x: loss, or [loss, *metrics]; a dict with return_dict."""
        self._require_compiled("evaluate")
        data = data_adapter.adapt(x, y, sample_weight, batch_size, False, "evaluate")
        cbl = callbacks_mod.CallbackList(callbacks or [], self, {"verbose": verbose}) if callbacks else None
        if cbl:
            cbl.call("on_test_begin", None)
        t0 = time.perf_counter()
        logs = self._evaluate_data(data, steps, cbl)
        if cbl:
            cbl.call("on_test_end", logs)
        if verbose == "auto":
            verbose = 1
        if verbose and _distribution.rank_quietly() != 0:
            verbose = 0   # rank 0 prints for all
        if verbose:
            n_steps = data.steps() or 0
            el = time.perf_counter() - t0
            per = el / max(n_steps, 1)
            unit = f"{per * 1e3:.0f}ms/step" if per >= 1e-3 else f"{per * 1e6:.0f}us/step"
            print(f"{n_steps}/{n_steps} - {el:.0f}s - {unit}" +
                  "".join(f" - {k}: {v:.4f}" for k, v in logs.items()))
        if return_dict:
            return logs
        vals = list(logs.values())
        return vals[0] if len(vals) == 1 else vals

    def predict(self, x, batch_size=None, verbose="auto", steps=None, callbacks=None):
        """Outputs for x in batches (default 32), as one array (a list or dict of arrays
        for several outputs). One array for a stack of built-in layers runs through a
        cached inference plan (trainers/inference.py)."""
        ds = _distribution.session(self, "predict")   # DataParallel, or None
        if ds is not None:
            return ds.predict(x, batch_size=batch_size, verbose=verbose, steps=steps,
                              callbacks=callbacks)
        if callbacks is None and type(x) is np.ndarray and x.ndim:
            # A cached inference plan (trainers/inference.py) for one array.
            plan = self.__dict__.get("_inference_plan")
            if (plan is None or plan.version != _layer_version[0] or
                    x.shape[1:] != plan.sample_shape):
                plan = _inference.plan_for(self, x, self._inference_layers(x))
            if plan is not None:
                y = plan.predict(x, batch_size, steps)
                if y is not None:
                    return y
            if steps is None and 0 < len(x) <= (batch_size or 32):
                # One batch of one array (a request served one sample at a time): the step
                # itself, without the data adapter's batching and the final concatenation.
                self._ensure_built(x)
                return _map_host(self.predict_step((self._dev(x),)))
        data = data_adapter.adapt(x, None, None, batch_size, False, "predict")
        chunks = []
        dev = self._dev
        cbl = callbacks_mod.CallbackList(callbacks, self, {"verbose": verbose, "steps": steps}) \
            if callbacks else None
        if cbl:
            cbl.call("on_predict_begin", {})
        for s, (xb, _, _) in enumerate(data.batches(None)):
            if steps is not None and s >= steps:
                break
            if cbl:
                cbl.call("on_predict_batch_begin", s, {})
            self._ensure_built(xb)
            out = self.predict_step((_map_dev(dev, xb),))
            chunks.append(_map_host(out))
            if cbl:
                cbl.call("on_predict_batch_end", s, {"outputs": chunks[-1]})
        if cbl:
            cbl.call("on_predict_end", {})
        if not chunks:
            return self._empty_prediction()
        first = chunks[0]
        if isinstance(first, dict):
            return {k: np.concatenate([c[k] for c in chunks]) for k in first}
        if isinstance(first, (list, tuple)):
            return [np.concatenate([c[i] for c in chunks]) for i in range(len(first))]
        return np.concatenate(chunks)

    def _inference_layers(self, x):
        """The layers an inference plan runs, in order, for inputs like x; None when
        predict takes its general path (the default: models say when a plan applies)."""
        return None

    def _empty_prediction(self):
        shape = self.output_shape
        if isinstance(shape, list):
            return [np.empty(tuple(0 if d is None else d for d in s), np.float32) for s in shape]
        return np.empty(tuple(0 if d is None else d for d in shape), self.dtype or np.float32)

    def train_on_batch(self, x, y=None, sample_weight=None, class_weight=None, return_dict=False):
        self._require_compiled("train_on_batch")
        data = data_adapter.adapt(x, y, sample_weight, _n_samples(x), False, "train_on_batch",
                                  class_weight=class_weight,
                                  num_classes=self._num_classes() if class_weight else None)
        ds = _distribution.session(self, "train_on_batch")   # each rank gives its own batch
        if ds is not None:
            ds.start_fit([False], sync_once=True)
        try:
            _, logs = self._epoch_runner(data, training=True)(None, 1, None, lambda: False)
        finally:
            if ds is not None:
                ds.end()
        return logs if return_dict else (logs["loss"] if len(logs) == 1 else list(logs.values()))

    def test_on_batch(self, x, y=None, sample_weight=None, return_dict=False):
        self._require_compiled("test_on_batch")
        data = data_adapter.adapt(x, y, sample_weight, max(_n_samples(x), 1), False,
                                  "test_on_batch")
        logs = self._evaluate_data(data, 1, shard=False)   # each rank gives its own batch
        return logs if return_dict else (logs["loss"] if len(logs) == 1 else list(logs.values()))

    def predict_on_batch(self, x):
        return self.predict(x, batch_size=max(_n_samples(x), 1), verbose=0)


# ------------------------------------------------------------------ helpers
def _loss_of(identifier):
    """A loss object: a built-in (by name, class or object) or a user function/Loss."""
    if isinstance(identifier, losses_mod.Loss):
        return identifier
    try:
        return losses_mod.get(identifier)
    except ValueError:
        if callable(identifier):
            return losses_mod.LossFunctionWrapper(identifier)
        raise


def _looks_like_metrics(v):
    vals = v.values() if isinstance(v, dict) else (v if isinstance(v, (list, tuple)) else [v])
    return v is not None and any(isinstance(m, (str, list, tuple)) or isinstance(m, metrics_mod.Metric)
                                 or (callable(m) and not isinstance(m, (int, float))) for m in vals)


def _scalar(v):
    from .. import ops
    return ops.sum(v) if getattr(_tape.value(v), "ndim", 0) else v


def _as_float(v):
    v = _tape.value(v)
    try:
        return float(v)
    except (TypeError, ValueError):
        return v


def _batch_len(x):
    for a in data_adapter._leaves(x):
        if hasattr(a, "shape") and len(a.shape):
            return a.shape[0]
    return 1


def _n_samples(x):
    x = data_adapter.as_arrays(x)
    return _batch_len(x)


def _map_dev(dev, s):
    if s is None:
        return None
    return data_adapter._map(lambda a: a if a is None else dev(a), s)


def _map_host(s):
    if type(s) is np.ndarray:
        return s
    return data_adapter._map(lambda a: _device.to_host(_tape.value(a)), s)


def _catch_sigint(flag):
    """Ctrl-C stops fit between batches (a second one interrupts at once)."""
    if threading.current_thread() is not threading.main_thread():
        return None

    def on_sigint(signum, frame):
        if flag[0]:
            raise KeyboardInterrupt
        flag[0] = True
    try:
        return signal.signal(signal.SIGINT, on_sigint)
    except (ValueError, OSError):
        return None


__all__ = ["Trainer"]
_ = math
