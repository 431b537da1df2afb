"""Weight initializers with Keras' names and defaults.

Every initializer draws from the library's random state (``fastdl.set_seed``):
``init(shape, dtype)`` returns a new NumPy array.
"""
import math

import numpy as np

from . import _random

__all__ = ["Initializer", "Zeros", "Ones", "Constant", "RandomNormal", "RandomUniform",
           "GlorotUniform", "GlorotNormal", "HeUniform", "HeNormal", "Orthogonal", "get", "KNOWN"]


def _fans(shape):
    """Keras' fan_in/fan_out: dense (in, out); conv (kh, kw, cin, cout) times receptive field."""
    if len(shape) == 0:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    if len(shape) == 2:
        return shape[0], shape[1]
    receptive = math.prod(shape[:-2])
    return shape[-2] * receptive, shape[-1] * receptive


class Initializer:
    seed = None

    def __call__(self, shape, dtype="float32"):
        raise NotImplementedError

    def _rng(self):
        """A generator seeded by self.seed, or fastdl's global one (set_seed) without a seed."""
        return np.random.default_rng(self.seed) if self.seed is not None else _random.generator()

    def get_config(self):
        return {}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


class Zeros(Initializer):
    def __call__(self, shape, dtype="float32"):
        return np.zeros(shape, dtype=dtype)


class Ones(Initializer):
    def __call__(self, shape, dtype="float32"):
        return np.ones(shape, dtype=dtype)


class Constant(Initializer):
    def __init__(self, value=0.0):
        self.value = value

    def __call__(self, shape, dtype="float32"):
        return np.full(shape, self.value, dtype=dtype)

    def get_config(self):
        return {"value": self.value}


class RandomNormal(Initializer):
    def __init__(self, mean=0.0, stddev=0.05, seed=None):
        self.mean, self.stddev, self.seed = mean, stddev, seed

    def __call__(self, shape, dtype="float32"):
        return self._rng().normal(self.mean, self.stddev, size=shape).astype(dtype)

    def get_config(self):
        return {"mean": self.mean, "stddev": self.stddev, "seed": self.seed}


class RandomUniform(Initializer):
    def __init__(self, minval=-0.05, maxval=0.05, seed=None):
        self.minval, self.maxval, self.seed = minval, maxval, seed

    def __call__(self, shape, dtype="float32"):
        return self._rng().uniform(self.minval, self.maxval, size=shape).astype(dtype)

    def get_config(self):
        return {"minval": self.minval, "maxval": self.maxval, "seed": self.seed}


class _VarianceScaling(Initializer):
    scale, mode, distribution = 1.0, "fan_avg", "uniform"

    def __init__(self, seed=None):
        self.seed = seed

    def __call__(self, shape, dtype="float32"):
        shape = tuple(shape)
        fan_in, fan_out = _fans(shape)
        n = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[self.mode]
        var = self.scale / max(1.0, n)
        rng = self._rng()
        if self.distribution == "uniform":
            lim = math.sqrt(3.0 * var)
            return rng.uniform(-lim, lim, size=shape).astype(dtype)
        # truncated normal at two standard deviations, as Keras does
        std = math.sqrt(var) / 0.87962566103423978
        out = rng.normal(0.0, std, size=shape)
        bad = np.abs(out) > 2 * std
        while bad.any():
            out[bad] = rng.normal(0.0, std, size=int(bad.sum()))
            bad = np.abs(out) > 2 * std
        return out.astype(dtype)

    def get_config(self):
        return {"seed": self.seed}


class GlorotUniform(_VarianceScaling):
    """U(-l, l), l = sqrt(6 / (fan_in + fan_out)): Keras' default kernel initializer."""


class GlorotNormal(_VarianceScaling):
    distribution = "normal"


class HeUniform(_VarianceScaling):
    scale, mode = 2.0, "fan_in"


class HeNormal(_VarianceScaling):
    scale, mode, distribution = 2.0, "fan_in", "normal"


class Orthogonal(Initializer):
    """A random orthogonal matrix (QR of a Gaussian), Keras' recurrent default."""

    def __init__(self, gain=1.0, seed=None):
        self.gain, self.seed = gain, seed

    def __call__(self, shape, dtype="float32"):
        shape = tuple(shape)
        rows = math.prod(shape[:-1]) if len(shape) > 1 else 1
        cols = shape[-1]
        rng = self._rng()
        a = rng.normal(0.0, 1.0, size=(max(rows, cols), min(rows, cols)))
        q, r = np.linalg.qr(a)
        q *= np.sign(np.diag(r))
        if rows < cols:
            q = q.T
        return (self.gain * q.reshape(shape)).astype(dtype)

    def get_config(self):
        return {"gain": self.gain, "seed": self.seed}


_REGISTRY = {
    "zeros": Zeros, "ones": Ones, "constant": Constant,
    "random_normal": RandomNormal, "random_uniform": RandomUniform,
    "glorot_uniform": GlorotUniform, "glorot_normal": GlorotNormal,
    "he_uniform": HeUniform, "he_normal": HeNormal, "orthogonal": Orthogonal,
}
KNOWN = tuple(_REGISTRY)


def get(identifier):
    if isinstance(identifier, Initializer):
        return identifier
    if isinstance(identifier, str):
        key = identifier.lower()
        key = {"glorotuniform": "glorot_uniform", "glorotnormal": "glorot_normal",
               "heuniform": "he_uniform", "henormal": "he_normal",
               "randomnormal": "random_normal", "randomuniform": "random_uniform",
               "uniform": "random_uniform", "normal": "random_normal"}.get(key, key)
        if key in _REGISTRY:
            return _REGISTRY[key]()
    if isinstance(identifier, dict) and "class_name" in identifier:
        for k, cls in _REGISTRY.items():
            if cls.__name__ == identifier["class_name"]:
                return cls.from_config(identifier.get("config", {}))
    raise ValueError(f"unknown initializer {identifier!r}; known initializers: {', '.join(KNOWN)}")


def serialize(init):
    return {"class_name": type(init).__name__, "config": init.get_config()}
