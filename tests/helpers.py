"""Helpers shared by the test files (not a test module itself)."""
import numpy as np

import fastdl
from fastdl import ops
from conftest import run_python


def with_threads(threads, fn):
    """fn() with fastdl set to that many threads, the old count restored after."""
    old = fastdl.get_num_threads()
    fastdl.set_num_threads(threads)
    try:
        return fn()
    finally:
        fastdl.set_num_threads(old)


def numeric_gradient(f, a, eps=1e-6):
    """d f() / d a for every entry of a, by central differences: a is changed in
    place one entry at a time (f must read it) and restored."""
    g = np.zeros_like(a)
    for i in np.ndindex(a.shape):
        old = a[i]
        a[i] = old + eps
        fp = f()
        a[i] = old - eps
        fm = f()
        a[i] = old
        g[i] = (fp - fm) / (2 * eps)
    return g


def run_at_simd_levels(tmp_path, script):
    """Run ``script`` (which saves its results with np.savez to sys.argv[1]) once per
    SIMD level this CPU supports, each in a fresh interpreter with
    FASTDL_CPU_CAPABILITY set; returns {level: {name: array}}."""
    path_script = tmp_path / "levels.py"
    path_script.write_text(script)
    results = {}
    for level in ops.supported_capabilities():
        path = tmp_path / f"{level}.npz"
        r = run_python(f"import runpy, sys; sys.argv = ['x', {str(path)!r}]; "
                       f"runpy.run_path({str(path_script)!r})", {"FASTDL_CPU_CAPABILITY": level})
        assert r.returncode == 0, r.stderr
        results[level] = dict(np.load(path))
    return results
