"""GEMM benchmark: fastdl against NumPy's BLAS and PyTorch, in GFLOP/s and % of peak.

Every library writes into a preallocated output (ops.matmul_kernel(a, b, out=c),
numpy.matmul(a, b, out=c), torch.mm(a, b, out=c)), so the numbers measure the
multiply, not the allocator. The libraries are timed in interleaved rounds
(fastdl, NumPy, PyTorch, fastdl, ...) and each reports its median, so a burst of
load on a shared machine hits all of them alike.
"""
import statistics
import time

import numpy as np

from fastdl import ops
from . import _common

SQUARES = [64, 128, 256, 512, 1024, 2048]
SQUARES_QUICK = [64, 256, 1024]
# (m, k, n): Dense 784->128 and 128->10 at batch 32, a 3x3x32 -> 64 conv as im2col.
DL_SHAPES = [(32, 784, 128), (32, 128, 10), (64, 288, 15488)]


def _race(fns, quick):
    """Median seconds per call of each fn, timed in interleaved rounds."""
    for f in fns:
        f()
        f()
    # Batch enough calls that one sample lasts ~20 ms (about 5 ms when quick).
    target = 0.005 if quick else 0.02
    t0 = time.perf_counter()
    fns[0]()
    one = max(time.perf_counter() - t0, 1e-7)
    inner = max(1, int(target / one))
    rounds = 5 if quick else 9
    samples = [[] for _ in fns]
    for _ in range(rounds):
        for i, f in enumerate(fns):
            _common.settle()  # let the previous library's spinning workers go idle
            f()
            t0 = time.perf_counter()
            for _ in range(inner):
                f()
            samples[i].append((time.perf_counter() - t0) / inner)
    return [statistics.median(s) for s in samples]


def _ratio(x, y):
    return None if x is None or y is None else x / y


def _gemm_table(opts, torch):
    rng = np.random.default_rng(0)
    squares = SQUARES_QUICK if opts.quick else SQUARES
    shapes = [(s, s, s) for s in squares] + DL_SHAPES
    cols = ["shape (m, k, n)", "threads", "fastdl GFLOP/s", "NumPy GFLOP/s", "PyTorch GFLOP/s",
            "fastdl / NumPy", "fastdl / PyTorch", "fastdl % peak", "NumPy % peak"]
    t = _common.Table("sgemm (float32, C = A @ B into a preallocated C)", cols)
    # Peak of n threads: n times the one-thread FMA loop (all n cores at once
    # cannot be had reliably on a busy shared machine; the n-thread loop is
    # measured too and reported as a check).
    peak1 = ops.fma_peak_gflops(1)
    peaks, measured = {}, {}
    with _common.threads_restored(torch):
        for nt in opts.thread_list:
            _common.set_threads(nt, torch)
            measured[nt] = peak1 if nt == 1 else ops.fma_peak_gflops(nt)
            peaks[nt] = max(nt * peak1, measured[nt])
            with _common.blas_threads(nt):
                for (m, k, n) in shapes:
                    a = rng.standard_normal((m, k), dtype=np.float32)
                    b = rng.standard_normal((k, n), dtype=np.float32)
                    out_f = np.empty((m, n), np.float32)
                    out_n = np.empty((m, n), np.float32)
                    fns = [lambda: ops.matmul_kernel(a, b, out=out_f), lambda: np.matmul(a, b, out=out_n)]
                    if torch:
                        ta, tb = torch.from_numpy(a), torch.from_numpy(b)
                        out_t = torch.empty((m, n), dtype=torch.float32)
                        fns.append(lambda: torch.mm(ta, tb, out=out_t))
                    secs = _race(fns, opts.quick)
                    gf = [2 * m * n * k / s * 1e-9 for s in secs]
                    f, npy = gf[0], gf[1]
                    pt = gf[2] if torch else None
                    t.rows.append({"shape (m, k, n)": f"({m}, {k}, {n})", "threads": nt,
                                   "fastdl GFLOP/s": f, "NumPy GFLOP/s": npy,
                                   "PyTorch GFLOP/s": pt, "fastdl / NumPy": _ratio(f, npy),
                                   "fastdl / PyTorch": _ratio(f, pt),
                                   "fastdl % peak": 100 * f / peaks[nt],
                                   "NumPy % peak": 100 * npy / peaks[nt]})
    info = ops.gemm_kernel_info("float32")
    peak_txt = ", ".join(
        f"{nt} thread{'s' if nt > 1 else ''}: {peaks[nt]:.0f} GFLOP/s"
        + (f" (the {nt}-thread loop measured {measured[nt]:.0f})" if nt > 1 else "")
        for nt in peaks)
    t.notes.append(f"Peak: measured here with an FMA-throughput loop at the best SIMD level "
                   f"(12 independent FMA chains, no memory traffic; best of 40 runs of ~2 ms; "
                   f"ops.fma_peak_gflops), one thread, times the thread count: {peak_txt}.")
    t.notes.append(f"fastdl kernels: {ops.get_capability()}, micro-kernel {info['name']}, "
                   f"MC={info['mc']} KC={info['kc']} NC={info['nc']}. "
                   f"NumPy BLAS: {_common.numpy_blas()}. "
                   f"PyTorch: {torch.__version__ if torch else 'not installed'}.")
    t.notes.append("Median of interleaved rounds, each sample after a pause that lets the previous "
                   "library's spinning thread pool go idle; on a shared machine, compare the ratios "
                   "(measured side by side) rather than absolute GFLOP/s.")
    return t


def _overhead_table(opts, torch):
    a = np.ones((2, 2), np.float32)
    calls = 20000 if opts.quick else 100000

    def per_call(f):
        f()
        best = float("inf")
        for _ in range(3 if opts.quick else 7):
            t0 = time.perf_counter()
            for _ in range(calls):
                f()
            best = min(best, (time.perf_counter() - t0) / calls)
        return best * 1e6

    t = _common.Table("Per-call overhead: 2x2 float32 matmul",
                      ["call", "µs per call", "vs numpy.matmul"])
    rows = [("fastdl.ops.matmul_kernel(a, b)", per_call(lambda: ops.matmul_kernel(a, a))),
            ("fastdl.ops.gemm(a, b)", per_call(lambda: ops.gemm(a, a))),
            ("numpy.matmul(a, b)", per_call(lambda: np.matmul(a, a)))]
    if torch:
        ta = torch.from_numpy(a)
        rows.append(("torch.mm(a, b)", per_call(lambda: torch.mm(ta, ta))))
    base = rows[2][1]
    for name, us in rows:
        t.rows.append({"call": name, "µs per call": us, "vs numpy.matmul": us / base})
    t.notes.append("Best of several batches; includes argument checks and output allocation.")
    return t


def run(opts):
    torch = _common.torch_or_none()
    return [_gemm_table(opts, torch), _overhead_table(opts, torch)]
