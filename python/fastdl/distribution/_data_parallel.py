"""DataParallel: what fit, evaluate and predict do differently on several ranks.

The trainer asks ``session(model, what)`` once per call; it gets None (train as
one process) or a ``Session``, which the loops consult at a few points:

* ``shard(data)``: each rank takes its block of every global batch (the shuffle
  is the same on every rank: rank 0's generator state is shared at the start).
* ``begin_step(count)`` / ``end_step()`` around each training step, and the
  optimizer's gradient hook in between: the gradients, scaled by this rank's
  sample count, the counts, a stop flag and the change of every metric's sums go
  into one flat buffer reduced by one in-place allreduce; the summed gradients
  divided by the global count are what one process would get on the whole batch.
* ``sync_metrics(logs)`` after an evaluation: the metric sums of all ranks.

With the built-in step (train_step not overridden, or the fused step plans) the
optimizer update waits until the step's metrics are in, so that everything goes
in the one allreduce. A train_step written by the user has its gradients reduced
at once when it calls apply_gradients (it may read the updated weights later in
the step), and its metrics in a second, small allreduce at the end of the step.
"""
import numpy as np

from .. import _device, _random, _tape
from . import _comm

_ALIGN = 64   # bytes: every gradient starts on a cache line of the flat buffer


class DataParallel:
    """Data parallelism over the processes of the MPI job: every rank holds the whole
    model and trains on its share of each batch (Keras 3's DataParallel).

    One process per device: launch one rank per CPU socket / node or per GPU
    (``mpiexec -n N python -m mpi4py train.py``)."""

    def __init__(self, devices=None, device_mesh=None, auto_shard_dataset=True):
        if devices is not None or device_mesh is not None:
            raise NotImplementedError(
                "DataParallel(devices=/device_mesh=): fastdl runs one device per process; start "
                "one MPI rank per device instead (each rank uses the GPU of its local rank)")
        if auto_shard_dataset is not True:
            raise NotImplementedError("DataParallel(auto_shard_dataset=False) is not supported: "
                                      "fit always gives each rank its block of every batch")
        self.auto_shard_dataset = True

    @property
    def num_processes(self):
        return _comm._state.size

    def __repr__(self):
        return f"DataParallel(rank={_comm._state.rank}, size={_comm._state.size})"


_current = [None]


def set_distribution(value):
    """Make fit/evaluate/predict use ``value`` (a DataParallel, or None for one process)."""
    if value is not None and not isinstance(value, DataParallel):
        raise TypeError(f"set_distribution expects a DataParallel or None, got "
                        f"{type(value).__name__}")
    if value is not None and _comm._state.comm is None and _comm.launched_size() > 1:
        _comm.check_launch("set_distribution")
    _current[0] = value


def distribution():
    """The distribution set with set_distribution (None: one process)."""
    return _current[0]


def session(model, what):
    """The Session fit/evaluate/predict run under, or None for one process (also after
    checking this process was not started by mpiexec without initialize())."""
    _comm.check_launch(what)
    active = model.__dict__.get("_dist_session")
    if active is not None:
        return active or None   # a session's own per-rank call: no nested session
    if _current[0] is None or _comm._state.size <= 1:
        return None
    return Session(model, what)


# ------------------------------------------------------------------ model checks
def _check_same(arrays, what, name=lambda i: f"#{i}", kind="the model"):
    """Raise on every rank when ``arrays`` differ across ranks in number, shapes or
    dtypes, naming the first difference (every rank sees every rank's list)."""
    sigs = _comm.allgather_object([(tuple(int(d) for d in a.shape), str(a.dtype))
                                   for a in arrays])
    ref = sigs[0]
    for r, sig in enumerate(sigs[1:], start=1):
        for i, (a, b) in enumerate(zip(ref, sig)):
            if a != b:
                raise ValueError(f"{what}: {kind} differs between ranks: weight {i} "
                                 f"({name(i)}) is {a[0]} {a[1]} on rank 0 but "
                                 f"{b[0]} {b[1]} on rank {r}")
        if len(sig) != len(ref):
            raise ValueError(f"{what}: {kind} differs between ranks: rank 0 has "
                             f"{len(ref)} weight arrays, rank {r} has {len(sig)}")


def check_same_model(model, what="DataParallel"):
    """Raise on every rank when the models differ across ranks (number of weights,
    shapes, dtypes), naming the first difference."""
    _check_same(model.weights, what, lambda i: _weight_name(model, i))


def _weight_name(model, i):
    k = 0
    for l in model._flatten_layers():
        for name in getattr(l, "_weight_names", []):
            if k == i:
                return f"{l.name}/{name}"
            k += 1
    return f"#{i}"


def broadcast_weights(model, root=0):
    """Give every rank root's weights (all of them, trainable or not), after checking the
    models agree in number, shapes and dtypes of their weights."""
    check_same_model(model, "broadcast_weights")
    for w in model.weights:
        _comm.broadcast_(w, root)


# ------------------------------------------------------------------ the flat buffer
class _FlatGrads:
    """One aligned buffer for the gradients of ``params`` followed by a float tail."""

    def __init__(self, params, tail):
        self.params = list(params)
        dt = np.result_type(*[p.dtype for p in self.params]) if self.params else np.float32
        self.dtype = np.dtype(dt if np.issubdtype(dt, np.floating) else np.float32)
        step = max(1, _ALIGN // self.dtype.itemsize)
        self.offsets, off = [], 0
        for p in self.params:
            self.offsets.append(off)
            off += -(-int(p.size) // step) * step
        self.n_grad = off
        self.tail = tail
        probe = self.params[0] if self.params else np.empty(0)
        self.buf = _device.allocator(probe)((off + tail,), self.dtype)
        self.buf.fill(0)
        self.index = {id(p): i for i, p in enumerate(self.params)}

    def segment(self, i):
        p = self.params[i]
        o = self.offsets[i]
        return self.buf[o:o + p.size]

    @property
    def nbytes(self):
        return self.buf.nbytes


_NUMBER = (int, float, np.floating, np.integer)


def _metric_states(metrics):
    """(metric, its state as one float64 vector) for every metric whose state is sums:
    its metric variables (Keras' add_variable, summed over ranks), or a total and a count."""
    out = []
    for m in metrics:
        vs = m.__dict__.get("_metric_variables")
        if vs:
            out.append((m, np.concatenate([np.asarray(v.value, np.float64).ravel()
                                           for v, _ in vs])))
        elif isinstance(getattr(m, "total", None), _NUMBER) and \
                isinstance(getattr(m, "count", None), _NUMBER):
            out.append((m, np.array([m.total, m.count], np.float64)))
    return out


def _set_state(m, vec):
    vs = m.__dict__.get("_metric_variables")
    if vs:
        k = 0
        for v, _ in vs:
            n = v.value.size
            v.assign(vec[k:k + n].reshape(v.shape).astype(v.dtype))
            k += n
        return
    m.total = float(vec[0])
    m.count = int(round(vec[1])) if isinstance(m.count, (int, np.integer)) else float(vec[1])


def _deltas(states, base):
    """The change of every metric's state since ``base`` ({id: vector}), concatenated."""
    parts = [vec - base.get(id(m), 0.0) for m, vec in states]
    return np.concatenate(parts) if parts else np.zeros(0)


def _add_deltas(states, base, summed):
    """Set every metric to base + the deltas of all ranks; the names of those that moved."""
    moved, k = set(), 0
    for m, vec in states:
        d = summed[k:k + vec.size]
        k += vec.size
        _set_state(m, base.get(id(m), 0.0) + d)
        if np.any(d):
            moved.add(m.name)
    return moved


def _result(m):
    r = m.result()
    try:
        return float(r)
    except (TypeError, ValueError):
        return np.asarray(r)


class Session:
    """The state of one fit/evaluate/predict call under DataParallel (module docstring)."""

    def __init__(self, model, what):
        st = _comm._state
        self.model = model
        self.what = what
        self.rank, self.size = st.rank, st.size
        self.synced = False
        self.flat = None
        self.interrupted = [False]  # this rank's Ctrl-C, carried to the others at the next step
        self.stop = [False]         # the decision every rank shares
        self._stash = None
        self._count = 0
        self._base = {}
        self._opt = None
        self.defer = True
        self.sync_once = False
        self.reduces = 0            # allreduce calls made (the tests count them)

    # -------------------------------------------------------------- set-up / tear-down
    def start_fit(self, interrupted, sync_once=False):
        """Share rank 0's random state (the same shuffles everywhere) and hook the optimizer.
        ``sync_once`` (train_on_batch): rank 0's weights are sent only the first time."""
        from ..trainers.trainer import Trainer
        self.sync_once = sync_once
        gen = _random.generator()
        gen.bit_generator.state = _comm.bcast_object(gen.bit_generator.state)
        self.interrupted = interrupted
        self.defer = type(self.model).train_step is Trainer.train_step
        self._opt = self.model.optimizer
        self._opt._gradient_hook = self._on_apply
        self.model.__dict__["_dist_session"] = self

    def start(self):
        self.model.__dict__["_dist_session"] = self

    def end(self):
        if self._opt is not None and self._opt.__dict__.get("_gradient_hook") is not None:
            del self._opt._gradient_hook
        self.model.__dict__.pop("_dist_session", None)

    def verbose(self, verbose):
        return verbose if self.rank == 0 else 0

    def callbacks(self, callbacks):
        """The callbacks this rank runs: files and the progress bar come from rank 0 only."""
        from .. import callbacks as cb
        cbs = list(callbacks or [])
        for c in cbs:
            if isinstance(c, cb.BackupAndRestore):
                raise NotImplementedError("fit under DataParallel: BackupAndRestore is not "
                                          "supported (use ModelCheckpoint, which rank 0 writes)")
        if self.rank == 0:
            return cbs
        return [c for c in cbs
                if not isinstance(c, (cb.ModelCheckpoint, cb.CSVLogger, cb.ProgbarLogger))]

    def shard(self, data):
        """Make ``data`` yield this rank's share of every global batch."""
        from ..trainers import data_adapter as da
        if isinstance(data, da.GeneratorData):
            raise NotImplementedError(
                f"{self.what} under DataParallel: a Python generator cannot be split between "
                f"ranks; pass arrays or a PyDataset (each rank then takes its share)")
        data.shard = (self.rank, self.size)
        return data

    def sync_model(self, xb=None):
        """Check the models agree and give every rank rank 0's weights (once, before the
        first step)."""
        if self.synced:
            return
        m = self.model
        if not m.weights and xb is not None and hasattr(m, "__call__"):
            m(xb, training=False)   # a subclassed model makes its weights on its first call
        ids = tuple(id(w) for w in m.weights)
        if not (self.sync_once and m.__dict__.get("_dist_synced") == ids):
            check_same_model(m, f"{self.what} under DataParallel")
            for w in m.weights:
                _comm.broadcast_(w, 0)
            m.__dict__["_dist_synced"] = ids
        self.synced = True

    # -------------------------------------------------------------- training steps
    def begin_step(self, count, xb=None):
        self.sync_model(xb if count else None)
        if count == 0 and not self.defer:
            raise ValueError(
                f"{self.what} under DataParallel: a batch has fewer samples than there are ranks "
                f"({self.size}) and the model's train_step is its own, which the empty ranks "
                f"cannot mirror; choose a batch_size and sample count so that every batch has "
                f"at least {self.size} samples")
        self._count = int(count)
        self._stash = None
        self._base = {id(m): v for m, v in _metric_states(self.model.metrics)}

    def _on_apply(self, grads_and_vars):
        """The optimizer's apply_gradients under DataParallel."""
        pairs = [(g, p) for g, p in grads_and_vars if g is not None]
        if self.defer:
            if self._stash is not None:
                raise RuntimeError("fit under DataParallel: apply_gradients called twice in one "
                                   "built-in step")
            self._stash = pairs
            return self._opt.iterations
        self._reduce(pairs, applied=True)
        self._base = {id(m): v for m, v in _metric_states(self.model.metrics)}
        return self._opt.iterations

    def end_step(self, logs=None):
        """The step's allreduce (the deferred update), or for a train_step of the user's own
        the sync of its metrics and logs. Returns ``logs`` with every rank's values."""
        if not self.defer:
            return self._reduce_metrics_only(self._base, logs or {}, self._count)
        self._reduce(self._stash or [], applied=self._stash is not None)
        self._stash = None
        return None if logs is None else self.logs(logs)

    def end_epoch(self):
        """Make the non-trainable weights (BatchNormalization's moving statistics, which
        each rank updates from its own samples) the same on every rank: floating-point
        ones their mean over the ranks (one allreduce), others rank 0's."""
        ws = self.model.non_trainable_weights
        floats = [w for w in ws if np.dtype(w.dtype).kind == "f"]
        if floats:
            flat = self.__dict__.get("_nt_flat")
            if flat is None or len(flat.params) != len(floats) or \
                    any(a is not b for a, b in zip(flat.params, floats)):
                flat = self._nt_flat = _FlatGrads(floats, 0)
            for i, w in enumerate(floats):
                flat.segment(i)[...] = w.reshape(-1)
            _comm.allreduce_(flat.buf, "mean")
            self.reduces += 1
            for i, w in enumerate(floats):
                w[...] = flat.segment(i).reshape(w.shape)
        for w in ws:
            if np.dtype(w.dtype).kind != "f":
                _comm.broadcast_(w, 0)

    def _layout(self):
        if self.flat is None:
            ws = self.model.trainable_weights
            n_met = sum(v.size for _, v in _metric_states(self.model.metrics))
            # tail: count, stop, applied, one presence flag per parameter, the metrics' sums
            self.flat = _FlatGrads(ws, 3 + len(ws) + n_met)
        return self.flat

    def _reduce(self, pairs, applied):
        flat = self._layout()
        np_ = len(flat.params)
        tail = np.zeros(flat.tail, np.float64)
        tail[0] = self._count
        tail[1] = 1.0 if self.interrupted[0] else 0.0
        tail[2] = 1.0 if applied else 0.0
        got = {}
        for g, p in pairs:
            i = flat.index.get(id(p))
            if i is None:
                raise ValueError(f"{self.what} under DataParallel: apply_gradients got a variable "
                                 f"of shape {tuple(p.shape)} that is not one of the model's "
                                 f"trainable weights")
            got[i] = g
        cnt = flat.dtype.type(self._count)
        for i in range(np_):
            seg = flat.segment(i)
            g = got.get(i)
            if g is None or self._count == 0:
                seg.fill(0)
                continue
            g = _tape.value(g)
            _device.xp(seg).multiply(g.reshape(-1), cnt, out=seg)
            tail[3 + i] = 1.0
        states = _metric_states(self.model.metrics)
        deltas = _deltas(states, self._base)
        if 3 + np_ + deltas.size != flat.tail:
            raise RuntimeError(f"{self.what} under DataParallel: the model's metrics changed "
                               f"during training")
        tail[3 + np_:] = deltas
        tview = flat.buf[flat.n_grad:]
        if _device.is_device(tview):
            tview.set(tail.astype(flat.dtype))
        else:
            tview[...] = tail
        _comm.allreduce_(flat.buf, "sum")
        self.reduces += 1
        tail = np.asarray(_device.to_host(tview), np.float64)
        total = tail[0]
        if tail[1] > 0:
            self.stop[0] = True
            self.interrupted[0] = True
        _add_deltas(states, self._base, tail[3 + np_:])
        if tail[2] > 0 and total > 0:
            out = []
            for i, p in enumerate(flat.params):
                if tail[3 + i] > 0:
                    seg = flat.segment(i)
                    seg /= flat.dtype.type(total)
                    out.append((seg.reshape(p.shape), p))
            self._apply(out)

    def _apply(self, pairs):
        opt = self._opt
        hook = opt.__dict__.pop("_gradient_hook", None)
        try:
            opt.apply_gradients(pairs)
        finally:
            if hook is not None:
                opt._gradient_hook = hook

    def _reduce_metrics_only(self, base_states, logs, count):
        """One allreduce of the metrics' sums (their change since base_states) and of the
        numeric values in ``logs`` weighted by ``count``. Returns the logs of all ranks:
        a metric's result where a metric of that name moved, else the weighted mean."""
        states = _metric_states(self.model.metrics)
        deltas = _deltas(states, base_states)
        keys = [k for k, v in logs.items() if isinstance(_as_number(v), float)]
        k0 = 2 + deltas.size
        buf = np.zeros(k0 + len(keys), np.float64)
        buf[0] = 1.0 if self.interrupted[0] else 0.0
        buf[1] = count
        buf[2:k0] = deltas
        for j, k in enumerate(keys):
            buf[k0 + j] = _as_number(logs[k]) * count
        _comm.allreduce_(buf, "sum")
        self.reduces += 1
        if buf[0] > 0:
            self.stop[0] = True
            self.interrupted[0] = True
        names = _add_deltas(states, base_states, buf[2:k0])
        moved = {m.name: m for m, _ in states if m.name in names}
        out = dict(logs)
        for k, v in logs.items():
            if k in moved:
                out[k] = _result(moved[k])
        for j, k in enumerate(keys):
            if k not in moved:
                out[k] = buf[k0 + j] / buf[1] if buf[1] else 0.0
        return out

    def logs(self, logs):
        """A step's logs with the values of all ranks (metrics named alike)."""
        res = {m.name: _result(m) for m, _ in _metric_states(self.model.metrics)}
        return {k: res.get(k, v) for k, v in logs.items()}

    # -------------------------------------------------------------- evaluation
    def sync_metrics(self, logs):
        """After an evaluation over this rank's shard: the logs of all ranks' samples (the
        metrics were reset at its start, so their sums are this rank's share)."""
        return self._reduce_metrics_only({}, logs, 1.0)

    def predict(self, x, **kwargs):
        """Each rank predicts its contiguous block of x; every rank gets the whole result."""
        from ..trainers import data_adapter as da
        if da.is_dataset(x) or da.is_generator(x):
            raise NotImplementedError("predict under DataParallel takes arrays (a generator or "
                                      "PyDataset cannot be split between ranks)")
        if kwargs.get("steps") is not None:
            raise NotImplementedError("predict under DataParallel: steps= is not supported")
        x = da.as_arrays(x)
        n = len(da._leaves(x)[0])
        lo, hi = da.block(0, n, self.rank, self.size)
        part = da._map(lambda a: a[lo:hi], x)
        kwargs["verbose"] = self.verbose(kwargs.get("verbose", "auto"))
        self.model.__dict__["_dist_session"] = _NO_SESSION
        try:
            out = self.model.predict(part, **kwargs)
        finally:
            self.model.__dict__.pop("_dist_session", None)
        parts = _comm.allgather_object(out)
        first = parts[0]
        if isinstance(first, dict):
            return {k: np.concatenate([p[k] for p in parts]) for k in first}
        if isinstance(first, (list, tuple)):
            return [np.concatenate([p[i] for p in parts]) for i in range(len(first))]
        return np.concatenate(parts)


def _as_number(v):
    v = _tape.value(v)
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


class _NoSession:
    """Marks a call made by a session for this rank alone (no nested session)."""

    def __bool__(self):
        return False


_NO_SESSION = _NoSession()


# ------------------------------------------------------------------ custom loops
def allreduce(x, op="mean"):
    """The sum or mean of ``x`` over every rank: a new array for NumPy/CuPy input (a float
    for a Python number). With CuPy arrays the reduction runs through NCCL."""
    if op not in ("mean", "sum"):
        raise ValueError(f"allreduce: op must be 'mean' or 'sum', got {op!r}")
    x = _tape.value(x)
    if isinstance(x, (int, float)):
        return float(allreduce(np.array([x], np.float64), op)[0])
    if _device.is_device(x):
        a = x.copy()
    else:
        a = np.array(x, copy=True, order="C")
        if a.dtype.kind not in "fiu":
            raise TypeError(f"allreduce: cannot reduce an array of dtype {a.dtype}")
        if op == "mean" and a.dtype.kind != "f":
            a = a.astype(np.float64)
    return _comm.allreduce_(a, op)


class DistributedOptimizer:
    """An optimizer whose apply_gradients first averages the gradients over every rank
    (for a training loop of one's own); attributes pass through to the wrapped optimizer.

        opt = distribution.DistributedOptimizer(optimizers.Adam())
        opt.apply_gradients(zip(model.gradients, model.trainable_weights))

    All gradients go in one flat buffer and one allreduce per call. Call
    broadcast_weights(model) once before training so every rank starts alike."""

    def __init__(self, optimizer):
        from .. import optimizers
        optimizer = optimizers.get(optimizer)
        self.__dict__["optimizer"] = optimizer
        self.__dict__["_flat"] = None

    def __getattr__(self, name):
        return getattr(self.__dict__["optimizer"], name)

    def __setattr__(self, name, value):
        setattr(self.__dict__["optimizer"], name, value)

    def apply_gradients(self, grads_and_vars):
        pairs = [(g, p) for g, p in grads_and_vars if g is not None]
        opt = self.__dict__["optimizer"]
        if _comm._state.size <= 1:
            return opt.apply_gradients(pairs)
        params = [p for _, p in pairs]
        flat = self.__dict__["_flat"]
        if flat is None or len(flat.params) != len(params) or \
                any(a is not b for a, b in zip(flat.params, params)):
            _check_same(params, "DistributedOptimizer.apply_gradients", kind="the variables")
            flat = _FlatGrads(params, 0)
            self.__dict__["_flat"] = flat
        for i, (g, p) in enumerate(pairs):
            seg = flat.segment(i)
            seg[...] = _tape.value(g).reshape(-1)
        _comm.allreduce_(flat.buf, "mean")
        return opt.apply_gradients([(flat.segment(i).reshape(p.shape), p)
                                    for i, p in enumerate(params)])

    def __repr__(self):
        return f"DistributedOptimizer({self.__dict__['optimizer']!r})"
