"""``keras.random``: random tensors with Keras 3's seeding rules.

* ``seed=<int>``: deterministic, the same values at every call (Keras' functions are
  stateless);
* ``seed=SeedGenerator(...)``: a stateful stream, new values at every call, repeatable
  from the generator's initial seed;
* ``seed=None``: drawn from fastdl's global generator, which ``fastdl.set_seed`` (or
  ``fastdl.utils.set_random_seed``) makes repeatable.

Results are NumPy arrays, float32 unless ``dtype`` says otherwise. ``dropout`` and
``shuffle`` are differentiable in their inputs.
"""
import numpy as np

from . import _random
from ._kops import numpy as _knp
from ._kops._base import standardize_dtype as _std_dtype
from ._kops._base import to_array as _to_array
from ._tape import Tensor, record, value

__all__ = ["SeedGenerator", "normal", "uniform", "truncated_normal", "randint", "dropout",
           "shuffle", "categorical", "gamma", "binomial", "beta"]


class SeedGenerator:
    """A stateful source of seeds: each ``next()`` gives a new seed, deterministic in the
    initial ``seed`` (drawn from fastdl's global generator when None)."""

    def __init__(self, seed=None, name=None, **kwargs):
        if seed is None:
            seed = _random.next_seed()
        if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool):
            raise ValueError(f"SeedGenerator: seed must be an integer or None, got {seed!r}")
        self._initial_seed = int(seed)
        self.name = name or "seed_generator"
        self._counter = 0

    @property
    def state(self):
        return np.array([self._initial_seed, self._counter], np.int64)

    def next(self, ordered=True):
        """The next 64-bit seed of the stream."""
        ss = np.random.SeedSequence([self._initial_seed & 0xFFFFFFFFFFFFFFFF, self._counter])
        self._counter += 1
        return int(ss.generate_state(1, np.uint64)[0] >> np.uint64(1))

    def get_config(self):
        return {"seed": self._initial_seed, "name": self.name}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        return f"<SeedGenerator seed={self._initial_seed} draws={self._counter}>"


def _int_seed(seed):
    """A 63-bit integer seed for seed (int, SeedGenerator or None)."""
    if isinstance(seed, SeedGenerator):
        return seed.next()
    if seed is None:
        return _random.next_seed()
    if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool):
        return int(seed) & 0x7FFFFFFFFFFFFFFF
    raise ValueError(f"seed must be an int, a fastdl.random.SeedGenerator or None, got {seed!r}")


def _rng(seed):
    """The NumPy Generator for a seed argument."""
    if seed is None:
        return _random.generator()
    return np.random.default_rng(_int_seed(seed))


def _shape(shape):
    if isinstance(shape, (int, np.integer)):
        return (int(shape),)
    return tuple(int(value(s)) for s in shape)


def _float_dtype(dtype):
    dt = _std_dtype(dtype) if dtype is not None else np.dtype(np.float32)
    if dt.kind != "f":
        raise ValueError(f"expected a floating dtype, got {dt}")
    return dt


def normal(shape, mean=0.0, stddev=1.0, dtype=None, seed=None):
    """Samples from N(mean, stddev^2)."""
    dt = _float_dtype(dtype)
    return (_rng(seed).standard_normal(_shape(shape)) * stddev + mean).astype(dt)


def uniform(shape, minval=0.0, maxval=1.0, dtype=None, seed=None):
    """Samples from U[minval, maxval)."""
    dt = _float_dtype(dtype)
    return _rng(seed).uniform(minval, maxval, _shape(shape)).astype(dt)


def truncated_normal(shape, mean=0.0, stddev=1.0, dtype=None, seed=None):
    """Normal samples, those more than two standard deviations from the mean redrawn."""
    dt = _float_dtype(dtype)
    rng = _rng(seed)
    shp = _shape(shape)
    z = rng.standard_normal(shp)
    bad = np.abs(z) > 2
    while bad.any():
        z[bad] = rng.standard_normal(int(bad.sum()))
        bad = np.abs(z) > 2
    return (z * stddev + mean).astype(dt)


def randint(shape, minval, maxval, dtype="int32", seed=None):
    """Integers uniform in [minval, maxval)."""
    dt = _std_dtype(dtype)
    if dt.kind not in "iu":
        raise ValueError(f"randint: dtype must be an integer dtype, got {dt}")
    return _rng(seed).integers(int(minval), int(maxval), _shape(shape)).astype(dt)


def categorical(logits, num_samples, dtype="int32", seed=None):
    """(batch, num_samples) class indices, each row drawn from softmax(logits[row])."""
    lg = np.asarray(_host(value(logits)), dtype=np.float64)
    if lg.ndim != 2:
        raise ValueError(f"categorical: logits must be 2-D (batch, classes), got {lg.shape}")
    g = _rng(seed).gumbel(size=(lg.shape[0], int(num_samples), lg.shape[1]))
    return np.argmax(lg[:, None, :] + g, axis=-1).astype(_std_dtype(dtype))


def gamma(shape, alpha, dtype=None, seed=None):
    return _rng(seed).gamma(alpha, 1.0, _shape(shape)).astype(_float_dtype(dtype))


def binomial(shape, counts, probabilities, dtype=None, seed=None):
    return _rng(seed).binomial(counts, probabilities, _shape(shape)).astype(_float_dtype(dtype))


def beta(shape, alpha, beta, dtype=None, seed=None):
    return _rng(seed).beta(alpha, beta, _shape(shape)).astype(_float_dtype(dtype))


def _host(a):
    get = getattr(a, "get", None)
    return get() if callable(get) and type(a) is not np.ndarray else a


def dropout(inputs, rate, noise_shape=None, seed=None):
    """Inverted dropout: each element kept with probability 1 - rate and scaled by
    1 / (1 - rate); ``noise_shape`` (broadcastable to the input's) shares the mask along
    axes of size 1. Differentiable in inputs (the gradient goes through the same mask)."""
    rate = float(value(rate))
    if not 0.0 <= rate < 1.0:
        raise ValueError(f"dropout: rate must be in [0, 1), got {rate}")
    x = inputs if isinstance(inputs, Tensor) else _to_array(inputs)
    raw = value(x)
    if raw.dtype.kind != "f":
        x = _knp.cast(x, np.float32)
        raw = value(x)
    if rate == 0.0:
        return x
    s = _int_seed(seed)
    if (noise_shape is None and type(raw) is np.ndarray and raw.dtype in (np.float32, np.float64)
            and raw.flags.c_contiguous and raw.size):
        from . import ops
        out = ops.dropout(raw, rate, s)   # the C++ kernel: mask a pure function of (seed, index)
        return record("dropout", out, (x,), lambda g: (ops.dropout_backward(
            np.ascontiguousarray(g, raw.dtype), rate, s),))
    shp = raw.shape if noise_shape is None else tuple(
        raw.shape[i] if n is None else int(n) for i, n in enumerate(noise_shape))
    keep = np.random.default_rng(s).uniform(size=shp) >= rate
    mask = (keep / (1.0 - rate)).astype(raw.dtype)
    if type(raw) is not np.ndarray:
        mask = _knp.xp_of(raw).asarray(mask)
    return _knp.multiply(x, mask)


def shuffle(x, axis=0, seed=None):
    """x permuted at random along axis (differentiable: a gather)."""
    x = x if isinstance(x, Tensor) else _to_array(x)
    n = x.shape[axis]
    perm = _rng(seed).permutation(n)
    return _knp.take(x, perm, axis=axis)
