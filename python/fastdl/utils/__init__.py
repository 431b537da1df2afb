"""``keras.utils``: data helpers with Keras 3's semantics.

``to_categorical``, ``pad_sequences``, ``normalize``, ``set_random_seed`` and the
``PyDataset`` base class (consumed by ``fit``/``evaluate``/``predict``).
"""
import warnings

import numpy as np

__all__ = ["to_categorical", "pad_sequences", "normalize", "set_random_seed", "PyDataset",
           "Sequence"]


def to_categorical(x, num_classes=None):
    """Class vector (integers from 0 to num_classes - 1) -> binary class matrix.

    A trailing axis of size 1 is dropped first: shape (n, 1) gives (n, num_classes).
    num_classes defaults to max(x) + 1. Returns float64, as Keras does for NumPy input.
    """
    x = np.array(x, dtype="int64")
    input_shape = x.shape
    if input_shape and input_shape[-1] == 1 and len(input_shape) > 1:
        input_shape = tuple(input_shape[:-1])
    x = x.reshape(-1)
    if not num_classes:
        num_classes = int(np.max(x)) + 1
    batch_size = x.shape[0]
    categorical = np.zeros((batch_size, num_classes))
    categorical[np.arange(batch_size), x] = 1
    return categorical.reshape(input_shape + (num_classes,))


def pad_sequences(sequences, maxlen=None, dtype="int32", padding="pre", truncating="pre",
                  value=0.0):
    """Pad (and truncate) a list of sequences to one length: an array (num_samples, maxlen).

    maxlen defaults to the longest sequence. ``padding`` / ``truncating`` 'pre' (default) or
    'post' say on which side values are added / removed. Sequences may hold vectors (all of
    one shape): the result is (num_samples, maxlen) + that shape. Empty sequences are all
    ``value``.
    """
    if not hasattr(sequences, "__len__"):
        raise ValueError("`sequences` must be iterable.")
    num_samples = len(sequences)
    lengths = []
    sample_shape = ()
    flag = True
    for x in sequences:
        try:
            lengths.append(len(x))
            if flag and len(x):
                sample_shape = np.asarray(x).shape[1:]
                flag = False
        except TypeError as e:
            raise ValueError(f"`sequences` must be a list of iterables. Found non-iterable: "
                             f"{x!r}") from e
    if maxlen is None:
        maxlen = int(np.max(lengths)) if lengths else 0
    is_dtype_str = np.issubdtype(dtype, np.str_) or np.issubdtype(dtype, np.bytes_)
    if isinstance(value, str) and dtype is not object and not is_dtype_str:
        raise ValueError(f"`dtype` {dtype} is not compatible with `value`'s type: "
                         f"{type(value)}\nYou should set `dtype=object` for variable length "
                         f"strings.")
    x = np.full((num_samples, maxlen) + sample_shape, value, dtype=dtype)
    for idx, s in enumerate(sequences):
        if not len(s):
            continue
        if truncating == "pre":
            trunc = s[-maxlen:] if maxlen else s[:0]
        elif truncating == "post":
            trunc = s[:maxlen]
        else:
            raise ValueError(f'Truncating type "{truncating}" not understood')
        trunc = np.asarray(trunc, dtype=dtype)
        if trunc.shape[1:] != sample_shape:
            raise ValueError(f"Shape of sample {trunc.shape[1:]} of sequence at position {idx} "
                             f"is different from expected shape {sample_shape}")
        if not len(trunc):
            continue
        if padding == "post":
            x[idx, :len(trunc)] = trunc
        elif padding == "pre":
            x[idx, -len(trunc):] = trunc
        else:
            raise ValueError(f'Padding type "{padding}" not understood')
    return x


def normalize(x, axis=-1, order=2):
    """x scaled to unit ``order``-norm along axis (zero vectors stay zero)."""
    from .. import ops
    if isinstance(x, np.ndarray):
        norm = np.atleast_1d(np.linalg.norm(x, order, axis))
        norm[norm == 0] = 1
        # (Keras writes `axis or -1` here, which turns axis=0 into -1; fastdl keeps axis 0)
        axis = -1 if axis is None else axis
        return x / np.expand_dims(norm, axis)
    return ops.normalize(x, axis=axis, order=order)


def set_random_seed(seed):
    """Seed fastdl's random state (weights, shuffling, dropout, fastdl.random with
    seed=None), Python's ``random`` and NumPy's legacy global generator."""
    import random as _pyrandom

    from .. import _config
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool):
        raise ValueError(f"Expected `seed` argument to be an integer. Received: seed={seed!r}")
    _pyrandom.seed(int(seed))
    np.random.seed(int(seed) % (2 ** 32))
    _config.set_seed(int(seed))


class PyDataset:
    """Base class for a dataset written in Python: ``__getitem__(idx)`` returns batch idx
    (``x``, ``(x, y)`` or ``(x, y, sample_weight)``) and ``__len__`` the number of batches;
    ``on_epoch_end`` (and ``on_epoch_begin``) run around each epoch.

    ``workers``, ``use_multiprocessing`` and ``max_queue_size`` tell ``fit`` how it may load
    batches in parallel; the class itself does not use them. Subclasses must call
    ``super().__init__(**kwargs)``.
    """

    def __init__(self, workers=1, use_multiprocessing=False, max_queue_size=10):
        self._workers = workers
        self._use_multiprocessing = use_multiprocessing
        self._max_queue_size = max_queue_size

    def _warn_if_super_not_called(self):
        if not hasattr(self, "_workers"):
            warnings.warn("Your `PyDataset` class should call `super().__init__(**kwargs)` in "
                          "its constructor. `**kwargs` can include `workers`, "
                          "`use_multiprocessing`, `max_queue_size`. Do not pass these arguments "
                          "to `fit()`, as they will be ignored.", stacklevel=2)
            self._workers = 1
            self._use_multiprocessing = False
            self._max_queue_size = 10

    @property
    def workers(self):
        self._warn_if_super_not_called()
        return self._workers

    @workers.setter
    def workers(self, value):
        self._workers = value

    @property
    def use_multiprocessing(self):
        self._warn_if_super_not_called()
        return self._use_multiprocessing

    @use_multiprocessing.setter
    def use_multiprocessing(self, value):
        self._use_multiprocessing = value

    @property
    def max_queue_size(self):
        self._warn_if_super_not_called()
        return self._max_queue_size

    @max_queue_size.setter
    def max_queue_size(self, value):
        self._max_queue_size = value

    def __getitem__(self, index):
        """Batch number ``index``."""
        raise NotImplementedError

    @property
    def num_batches(self):
        """The number of batches (``len(self)``), or None for an endless dataset."""
        if hasattr(self, "__len__"):
            return len(self)
        raise NotImplementedError(
            "You need to implement the `num_batches` property:\n\n"
            "@property\ndef num_batches(self):\n  return ...")

    def on_epoch_begin(self):
        """Called at the start of every epoch."""

    def on_epoch_end(self):
        """Called at the end of every epoch."""


Sequence = PyDataset
