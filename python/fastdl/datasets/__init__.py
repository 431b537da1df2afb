"""fastdl.datasets: the small standard data sets, as Keras returns them.

    from fastdl import datasets
    (x_train, y_train), (x_test, y_test) = datasets.mnist.load_data()
    (x_train, y_train), (x_test, y_test) = datasets.fashion_mnist.load_data()
    (x_train, y_train), (x_test, y_test) = datasets.digits.load_data()   # bundled, 8x8

MNIST and Fashion-MNIST are looked for, in order, in: the ``path`` argument (only there when
given: a path without the data is a FileNotFoundError naming it); ``$FASTDL_DATA/<name>``;
``~/.fastdl/datasets/<name>``; Keras' cache ``~/.keras/datasets``; ``/usr/share/datasets/<name>``
(Debian's ``dataset-fashion-mnist`` package). <name> is ``mnist`` or ``fashion-mnist``. If the data
is in none of them it is downloaded into ``~/.fastdl/datasets/<name>`` and checked by SHA-256;
without a network, FileNotFoundError lists every place looked at and how to get the files.
The 8x8 digits ship inside the package and never need a download.

``load_idx(path)`` reads any IDX file (gzip-compressed or raw). ``best_available()`` picks the
first data set of a preference list that is on disk (or can be fetched), for demos and examples.
"""
import sys

from ._idx import load_idx, save_idx
from . import _fetch, digits, fashion_mnist, mnist

__all__ = ["load_idx", "save_idx", "mnist", "fashion_mnist", "digits", "best_available", "NAMES"]

NAMES = ("mnist", "fashion_mnist", "digits")
TITLES = {"mnist": "MNIST", "fashion_mnist": "Fashion-MNIST", "digits": "8x8 digits (bundled)"}


def _module(name):
    if name not in NAMES:
        raise ValueError(f"unknown data set {name!r}; choose from {NAMES}")
    return sys.modules[f"{__name__}.{name}"]


def best_available(order=NAMES, *, download="auto", timeout=20, verbose=True):
    """Load the first data set of ``order`` that can be had; return ``(name, source, data)``.

    Each is tried in turn: on disk (the search order above), else downloaded when ``download`` is
    True, or when it is ``"auto"`` and a mirror answers within 3 seconds (so an offline machine
    never waits on a download); ``digits`` is always available. ``source`` says where the data
    came from; ``data`` is ``((x_train, y_train), (x_test, y_test))``. Raises FileNotFoundError
    when nothing in ``order`` can be had.
    """
    if isinstance(order, str):
        order = (order,)
    skipped = []
    for name in order:
        mod = _module(name)
        if name == "digits":
            return name, "bundled with fastdl", mod.load_data()
        where = mod.locate()
        if where is not None:
            return name, where, _fetch.load_from(mod.SPEC, where)
        if not download:
            skipped.append(f"{TITLES[name]}: not on disk (downloading off)")
            continue
        mirrors = _fetch.mirrors_for(mod.SPEC)
        if download == "auto" and not any(_fetch.reachable(m, timeout=3.0) for m in mirrors[:1]):
            skipped.append(f"{TITLES[name]}: not on disk, and no mirror reachable")
            continue
        try:
            data = mod.load_data(timeout=timeout, verbose=verbose)
        except (FileNotFoundError, ValueError) as e:
            skipped.append(f"{TITLES[name]}: {str(e).splitlines()[0]}")
            if verbose:
                print(f"{TITLES[name]}: could not be fetched: {e}", file=sys.stderr)
            continue
        return name, mod.locate() or "downloaded", data
    raise FileNotFoundError("no data set available: " + "; ".join(skipped))
