"""What fit/evaluate/predict accept as data, turned into batches.

* Arrays (NumPy, CuPy, lists), or lists/tuples/dicts of arrays for models with
  several inputs or outputs, with ``batch_size``, shuffling and validation split.
* Python generators and iterators yielding ``x``, ``(x, y)`` or ``(x, y, sample_weight)``.
* ``keras.utils.PyDataset`` (or any object with ``__len__`` and ``__getitem__``
  returning batches), with ``on_epoch_end`` called after each epoch.
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


class DatasetData:
    """A PyDataset: batch i is dataset[i]."""

    def __init__(self, ds):
        self.ds = ds
        self.n = None
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
                    yield unpack_x_y_sample_weight(self.ds[i])
                else:
                    yield None, None, None
            return
        for i in range(len(self.ds)):
            yield unpack_x_y_sample_weight(self.ds[i])

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

    def steps(self):
        return None

    def batches(self, rng=None):
        while True:
            try:
                item = next(self.it)
            except StopIteration:
                self.exhausted = True
                return
            yield unpack_x_y_sample_weight(item)

    def on_epoch_end(self):
        pass


def adapt(x, y=None, sample_weight=None, batch_size=None, shuffle=False, what="fit"):
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
        return DatasetData(x) if is_dataset(x) else GeneratorData(x)
    if x is None:
        raise ValueError(f"{what}: x is missing")
    return ArrayData(x, y, sample_weight, batch_size, shuffle)
