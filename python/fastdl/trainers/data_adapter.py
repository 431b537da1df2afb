"""What fit/evaluate/predict accept as data, turned into batches.

* Arrays (NumPy, CuPy, lists), or lists/tuples/dicts of arrays for models with
  several inputs or outputs, with ``batch_size``, shuffling and validation split.
* Python generators and iterators yielding ``x``, ``(x, y)`` or ``(x, y, sample_weight)``.
* ``keras.utils.PyDataset`` (or any object with ``__len__`` and ``__getitem__``
  returning batches), with ``on_epoch_end`` called after each epoch.

Sample weights travel with their samples through shuffling, batching and the
validation split; ``class_weight`` becomes sample weights taken from the targets
(per batch for generators and PyDatasets), as Keras does.
"""
import math

import numpy as np

from .. import _device


def unpack_x_y_sample_weight(data):
    """Keras' helper: (x,), (x, y), (x, y, sw) or x -> (x, y, sw)."""
    if isinstance(data, list):
        data = tuple(data)
    if not isinstance(data, tuple):
        return data, None, None
    if len(data) == 1:
        return data[0], None, None
    if len(data) == 2:
        return data[0], data[1], None
    if len(data) == 3:
        return data
    raise ValueError(f"data must be x, (x,), (x, y) or (x, y, sample_weight); got a tuple of "
                     f"{len(data)} items")


def pack_x_y_sample_weight(x, y=None, sample_weight=None):
    if y is None:
        # a single x is passed as it is (Keras 3): train_step(data) gets the batch itself
        return x if not isinstance(x, (tuple, list)) else (x,)
    if sample_weight is None:
        return (x, y)
    return (x, y, sample_weight)


def _is_structure(s):
    """A dict, or a list/tuple of arrays (several inputs or outputs); a list of
    numbers or of lists of numbers is one array."""
    if isinstance(s, dict):
        return True
    return isinstance(s, (list, tuple)) and len(s) > 0 and all(
        hasattr(v, "shape") or v is None or _is_structure(v) for v in s)


def _map(fn, s):
    if _is_structure(s):
        if isinstance(s, dict):
            return {k: _map(fn, v) for k, v in s.items()}
        return type(s)(_map(fn, v) for v in s)
    return fn(s)


def _leaves(s):
    if _is_structure(s):
        vals = s.values() if isinstance(s, dict) else s
        return [b for v in vals for b in _leaves(v)]
    return [s]


def as_arrays(s):
    """Every leaf as an array (Python lists of numbers become arrays)."""
    def conv(a):
        if a is None or type(a) is np.ndarray or _device.is_device(a):
            return a
        return np.asarray(a)
    return _map(conv, s)


def is_dataset(x):
    """A PyDataset-like object: batches by index."""
    if isinstance(x, (np.ndarray, list, tuple, dict)) or _device.is_device(x):
        return False
    return hasattr(x, "__getitem__") and hasattr(x, "__len__")


def is_generator(x):
    if isinstance(x, (np.ndarray, list, tuple, dict, str)) or _device.is_device(x):
        return False
    return hasattr(x, "__next__") or (hasattr(x, "__iter__") and not hasattr(x, "__len__"))


def _float_weights(sw, what):
    """One sample weight array checked: numeric, finite and not negative."""
    if sw is None:
        return None
    w = sw if _device.is_device(sw) else np.asarray(sw)
    if w.dtype.kind not in "fiub":
        raise ValueError(f"{what}: sample_weight must be numeric, got dtype {w.dtype}")
    if w.ndim == 0:
        raise ValueError(f"{what}: sample_weight must hold one weight per sample (an array of "
                         f"shape (samples,)), got a scalar")
    if w.dtype.kind != "f":
        w = w.astype(np.float32)
    xp = _device.xp(w)
    if w.size and not bool(xp.all(xp.isfinite(w))):
        raise ValueError(f"{what}: sample_weight holds NaN or infinite values")
    if w.size and bool(xp.any(w < 0)):
        raise ValueError(f"{what}: sample_weight holds negative values (smallest "
                         f"{float(w.min())}); weights must be >= 0")
    return w


def check_sample_weight(sw, n, what):
    """sample_weight (an array, or a list/dict of them per output) checked against n
    samples; returned as float arrays."""
    if sw is None:
        return None

    def one(w):
        w = _float_weights(w, what)
        if w is not None and n is not None and len(w) != n:
            raise ValueError(f"{what}: sample_weight has {len(w)} entries but there are {n} "
                             f"samples; give one weight per sample")
        return w
    if isinstance(sw, dict) or (isinstance(sw, (list, tuple)) and _is_structure(sw)):
        return _map(one, sw)
    return one(sw)


def class_weight_to_sample_weight(y, class_weight, what, num_classes=None):
    """Keras' rule: each sample weighs class_weight[its class] (1 for classes not in the
    dict); the class is y itself for integer labels, argmax(y) for one-hot targets."""
    if not isinstance(class_weight, dict):
        raise ValueError(f"{what}: class_weight must be a dict mapping class indices to weights, "
                         f"got {type(class_weight).__name__}")
    if y is None:
        raise ValueError(f"{what}: class_weight needs targets y")
    if _is_structure(y):
        raise ValueError(f"{what}: class_weight is only supported for models with a single "
                         f"output; use sample_weight per output instead")
    y = np.asarray(_device.to_host(y))
    if y.ndim > 1 and y.shape[-1] > 1 and num_classes is None:
        num_classes = y.shape[-1]
    limit = num_classes if num_classes is None or num_classes > 1 else 2
    table = {}
    for k, v in class_weight.items():
        if isinstance(k, (bool, np.bool_)) or not isinstance(k, (int, np.integer)) or k < 0 or (
                limit is not None and k >= limit):
            cls = f"0..{limit - 1}" if limit is not None else "non-negative integers"
            raise ValueError(f"{what}: class_weight has key {k!r}, which is not a class of the "
                             f"targets (classes are {cls})")
        try:
            fv = float(v)
        except (TypeError, ValueError):
            raise ValueError(f"{what}: class_weight[{k}] must be a number, got {v!r}") from None
        if not np.isfinite(fv) or fv < 0:
            raise ValueError(f"{what}: class_weight[{k}] is {fv}; weights must be finite "
                             f"and >= 0")
        table[int(k)] = fv
    if y.ndim > 1:
        y = np.argmax(y, axis=-1) if y.shape[-1] != 1 else y.reshape(y.shape[:-1])
    if y.ndim > 1:
        raise ValueError(f"{what}: class_weight needs one class per sample; targets of shape "
                         f"{y.shape} hold several (use sample_weight)")
    labels = np.round(y).astype(np.int64)
    out = np.ones(len(labels), np.float32)
    for k, v in table.items():
        out[labels == k] = v
    return out


class ArrayData:
    """In-memory arrays: batches of index ranges, shuffled per epoch."""

    def __init__(self, x, y=None, sample_weight=None, batch_size=None, shuffle=False):
        self.x = as_arrays(x)
        self.y = as_arrays(y)
        self.sample_weight = as_arrays(sample_weight)
        leaves = [a for a in _leaves(self.x) + _leaves(self.y) + _leaves(self.sample_weight)
                  if a is not None]
        if not leaves:
            raise ValueError("no data: x is missing")
        for a in leaves:
            if a.ndim == 0:
                raise ValueError("x and y must be arrays with a batch dimension, got a scalar")
        n = len(leaves[0])
        for a in leaves:
            if len(a) != n:
                raise ValueError(
                    f"the arrays passed hold different numbers of samples: "
                    f"{sorted({len(b) for b in leaves})}; x, y (and sample_weight) must have the "
                    f"same length")
        self.n = n
        self.batch_size = int(batch_size or 32)
        if self.batch_size <= 0:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        self.shuffle = shuffle
        self.shard = None   # (rank, size) under DataParallel: each rank takes its block

    def steps(self):
        return math.ceil(self.n / self.batch_size)

    def block(self, lo, hi):
        """The positions of the batch [lo, hi) this process takes: all of them, or under
        DataParallel its rank's consecutive block (block sizes differ by at most one)."""
        return (lo, hi) if self.shard is None else block(lo, hi, *self.shard)

    def split(self, fraction):
        """(train, validation): the last fraction is held out, before shuffling (Keras)."""
        k = int(math.floor(self.n * (1.0 - fraction)))
        take = lambda lo, hi: (lambda a: None if a is None else a[lo:hi])  # noqa: E731
        tr = ArrayData(_map(take(0, k), self.x), _map(take(0, k), self.y),
                       _map(take(0, k), self.sample_weight), self.batch_size, self.shuffle)
        va = ArrayData(_map(take(k, self.n), self.x), _map(take(k, self.n), self.y),
                       _map(take(k, self.n), self.sample_weight), self.batch_size, False)
        return tr, va

    def batches(self, rng=None):
        perm = rng.permutation(self.n) if (self.shuffle and rng is not None) else None
        for lo in range(0, self.n, self.batch_size):
            lo, hi = self.block(lo, min(lo + self.batch_size, self.n))
            if perm is None:
                sel = lambda a: None if a is None else a[lo:hi]  # noqa: E731
            else:
                idx = perm[lo:hi]
                sel = lambda a: None if a is None else a[idx]  # noqa: E731
            yield _map(sel, self.x), _map(sel, self.y), _map(sel, self.sample_weight)

    def on_epoch_end(self):
        pass


def block(lo, hi, rank, size):
    """The positions of [lo, hi) that rank of size takes: consecutive blocks whose sizes
    differ by at most one, the larger ones first."""
    q, m = divmod(hi - lo, size)
    start = lo + rank * q + min(rank, m)
    return start, start + q + (1 if rank < m else 0)


def _standard_batch(item, class_weight, num_classes):
    """(x, y, sw) of a generator's or PyDataset's batch, its weights checked (and made
    from class_weight when given)."""
    x, y, sw = unpack_x_y_sample_weight(item)
    if class_weight is not None:
        if sw is not None:
            raise ValueError("fit: you cannot give class_weight and batches that carry "
                             "sample weights at the same time")
        sw = class_weight_to_sample_weight(y, class_weight, "fit", num_classes)
    elif sw is not None:
        lens = [len(a) for a in _leaves(x) if hasattr(a, "shape") and len(a.shape)]
        sw = check_sample_weight(sw, lens[0] if lens else None, "sample_weight of a batch")
    return x, y, sw


class DatasetData:
    """A PyDataset: batch i is dataset[i]."""

    def __init__(self, ds):
        self.ds = ds
        self.n = None
        self.class_weight = self.num_classes = None
        self.shard = None   # (rank, size) under DataParallel: batch i goes to rank i % size

    def steps(self):
        if self.shard is not None:
            return -(-len(self.ds) // self.shard[1])
        return len(self.ds)

    def batches(self, rng=None):
        if self.shard is not None:
            # a global batch is `size` consecutive items; past the end a rank has none
            rank, size = self.shard
            for i in range(rank, self.steps() * size, size):
                if i < len(self.ds):
                    yield _standard_batch(self.ds[i], self.class_weight, self.num_classes)
                else:
                    yield None, None, None
            return
        for i in range(len(self.ds)):
            yield _standard_batch(self.ds[i], self.class_weight, self.num_classes)

    def on_epoch_end(self):
        end = getattr(self.ds, "on_epoch_end", None)
        if callable(end):
            end()


class GeneratorData:
    """A Python generator or iterator of batches, consumed as fit goes."""

    def __init__(self, gen):
        self.it = iter(gen)
        self.n = None
        self.exhausted = False
        self.class_weight = self.num_classes = None

    def steps(self):
        return None

    def batches(self, rng=None):
        while True:
            try:
                item = next(self.it)
            except StopIteration:
                self.exhausted = True
                return
            yield _standard_batch(item, self.class_weight, self.num_classes)

    def on_epoch_end(self):
        pass


def adapt(x, y=None, sample_weight=None, batch_size=None, shuffle=False, what="fit",
          class_weight=None, num_classes=None):
    """The data object for x (and y, sample_weight); class_weight (a dict class -> weight)
    becomes sample weights; num_classes bounds its keys."""
    if class_weight is not None and sample_weight is not None:
        raise ValueError(f"{what}: you cannot give class_weight and sample_weight at the same "
                         f"time; fold the class weights into sample_weight")
    if is_dataset(x) or is_generator(x):
        if y is not None:
            raise ValueError(f"{what}: y must not be given when x is a generator or a PyDataset "
                             f"(its batches carry the targets)")
        if sample_weight is not None:
            raise ValueError(f"{what}: sample_weight must not be given when x is a generator or "
                             f"a PyDataset (its batches carry them)")
        if batch_size is not None and is_dataset(x):
            raise ValueError(f"{what}: batch_size must not be given with a PyDataset (it makes "
                             f"its own batches)")
        data = DatasetData(x) if is_dataset(x) else GeneratorData(x)
        if class_weight is not None:
            class_weight_to_sample_weight(np.zeros(0, np.int64), class_weight, what, num_classes)
            data.class_weight, data.num_classes = class_weight, num_classes
        return data
    if x is None:
        raise ValueError(f"{what}: x is missing")
    if class_weight is not None:
        sample_weight = class_weight_to_sample_weight(as_arrays(y), class_weight, what,
                                                      num_classes)
    if sample_weight is not None:
        xs = [a for a in _leaves(as_arrays(x)) if a is not None and getattr(a, "ndim", 0)]
        sample_weight = check_sample_weight(as_arrays(sample_weight),
                                            len(xs[0]) if xs else None, what)
    return ArrayData(x, y, sample_weight, batch_size, shuffle)
