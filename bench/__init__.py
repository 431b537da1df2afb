"""Microbenchmarks and end-to-end comparisons, run from a checkout: ``python -m bench [suite ...]``.

This package lives at the top of the repository, outside the fastdl package: the wheel ships
no benchmark code (and none of the PyTorch/Keras comparison code). Run it from the repository
root against either an installed fastdl (``pip install .``) or the in-tree developer build
(``cmake ... && ninja ...``, which puts the compiled module next to ``python/fastdl``; that
folder is found without setting PYTHONPATH).

Each suite is a module here with ``run(opts) -> list[Table]``; the runner
prints markdown tables and can write JSON. Speed lives here, never in tests.
"""
import importlib.util as _util
import os as _os
import sys as _sys

# No fastdl on the path: use the checkout's own python/ folder (the in-tree developer build).
if _util.find_spec("fastdl") is None:
    _src = _os.path.join(_os.path.dirname(_os.path.dirname(_os.path.abspath(__file__))), "python")
    if _os.path.isdir(_os.path.join(_src, "fastdl")):
        _sys.path.insert(0, _src)
