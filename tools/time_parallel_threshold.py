"""The measurement behind the serial-or-parallel threshold (cpu/runtime/threading.h).

    PYTHONPATH=python python tools/time_parallel_threshold.py

A parallel region costs a fixed fork/join time T (waking the waiting workers,
the closing barrier); splitting W units of work over 2 threads saves W * t / 2,
t the one-thread time per unit. For ops just above the threshold (which the C++
side runs on 2 threads) the 2-thread time is T + W * t / 2, so
T = time(2 threads) - time(1 thread) / 2. The break-even work is W = 2 T / t;
the threshold is set at twice that so that a parallel call is clearly faster.
Reported: t per multiply-add (GEMM) and per element (element-wise), T, and the
break-even work of each; then the one-thread cost per element of the heavier
element-wise ops relative to relu (the factor by which each scales its element
count before comparing it with the threshold).
"""
import time

import numpy as np

from fastdl import ops


def best_us(fn, repeats=200):
    fn()
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    ts.sort()
    return ts[len(ts) // 10] * 1e6  # 10th percentile: a shared machine only adds time


def per_threads(fn):
    out = {}
    for nt in (1, 2):
        ops.set_num_threads(nt)
        out[nt] = best_us(fn)
    return out


def main():
    r = np.random.default_rng(0)
    print("GEMM (m, k, n)            MACs   1 thr us  2 thr us   fork/join us   us per MMAC")
    fj_gemm, t_mac = [], []
    for m, k, n in ((64, 128, 64), (96, 128, 96), (128, 128, 128), (128, 256, 128),
                    (256, 256, 256)):
        a = r.standard_normal((m, k)).astype(np.float32)
        b = r.standard_normal((k, n)).astype(np.float32)
        c = np.empty((m, n), np.float32)
        t = per_threads(lambda: ops.matmul_kernel(a, b, out=c))
        w = m * k * n
        fj = t[2] - t[1] / 2
        fj_gemm.append(fj)
        t_mac.append(t[1] / w)
        print(f"{str((m, k, n)):20s} {w:9d} {t[1]:10.1f} {t[2]:9.1f} {fj:14.1f} {t[1] / w * 1e6:13.2f}")
    print("\nelement-wise (relu, out=)  elements  1 thr us  2 thr us  fork/join us  ns per element")
    fj_el, t_el = [], []
    for n in (1 << 16, 1 << 17, 1 << 18, 1 << 20):
        x = r.standard_normal(n).astype(np.float32)
        y = np.empty_like(x)
        t = per_threads(lambda: ops.relu_kernel(x, out=y))
        fj = t[2] - t[1] / 2
        fj_el.append(fj)
        t_el.append(t[1] / n)
        print(f"{n:26d} {t[1]:10.1f} {t[2]:9.1f} {fj:13.1f} {t[1] / n * 1e3:15.3f}")
    T = float(np.median(fj_gemm + fj_el))
    tm, te = float(np.median(t_mac)), float(np.median(t_el))
    print(f"\nfork/join T ~ {T:.1f} us; t = {tm * 1e6:.2f} us per MMAC, {te * 1e3:.3f} ns per element")
    print(f"break-even: {2 * T / tm:.3g} multiply-adds, {2 * T / te:.3g} elements")

    ops.set_num_threads(1)
    n = 1 << 18
    x = r.random(n).astype(np.float32)
    y = np.empty_like(x)
    xs, ys = x.reshape(-1, 256), np.empty((n // 256, 256), np.float32)
    labels = r.integers(0, 256, n // 256)
    p, g, m, v = (x.copy() for _ in range(4))
    relu = best_us(lambda: ops.relu_kernel(x, out=y), 50)
    print("\none-thread cost per element relative to relu:")
    for name, fn in (("tanh", lambda: ops.tanh_kernel(x, out=y)),
                     ("softmax", lambda: ops.softmax_kernel(xs, out=ys)),
                     ("sparse softmax cross-entropy", lambda: ops.sparse_softmax_cross_entropy(xs, labels)),
                     ("adam update", lambda: ops.adam_update(p, g, m, v, step=1)),
                     ("dropout", lambda: ops.dropout(x, 0.5, 1, out=y))):
        print(f"  {name:30s} {best_us(fn, 50) / relu:6.1f}")


if __name__ == "__main__":
    main()
