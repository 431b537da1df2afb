"""The library's random state: weight init, shuffling and dropout seeds.

``fastdl.set_seed(s)`` makes all three repeatable. Dropout masks come from a
counter-based generator in C++ keyed by a 64-bit seed drawn here per call, so
the same seed and thread count give the same masks bit for bit.
"""
import numpy as np

_rng = np.random.default_rng()
_generation = 0  # bumped by set_seed, so layers know to redraw their seeds
_stream = 0      # mixed into next_seed: each rank of a data-parallel job draws its own masks


def set_seed(seed):
    global _rng, _generation
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"set_seed: seed must be a non-negative integer, got {seed!r}")
    _rng = np.random.default_rng(int(seed))
    _generation += 1


def generation():
    """Changes every time set_seed is called."""
    return _generation


def generator():
    """The NumPy Generator every initializer and shuffle draws from."""
    return _rng


def next_seed():
    """A fresh 64-bit seed (for a dropout mask, say) from the library's state."""
    s = int(_rng.integers(0, 2**63 - 1, dtype=np.int64))
    return s if not _stream else (s + _stream * 0x9E3779B97F4A7C15) % (2**63 - 1)


def set_stream(k):
    """Make next_seed differ between processes that share the generator's state (the
    ranks of a data-parallel job, k = rank), while shuffles stay the same on all."""
    global _stream
    _stream = int(k)
