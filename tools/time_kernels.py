"""Median time of a few kernel calls, on 1 and 2 threads (before/after checks of a change).

    PYTHONPATH=python python tools/time_kernels.py [--repeats 31]
"""
import argparse
import time

import numpy as np

from fastdl import ops


def median_us(fn, repeats, inner):
    fn()  # warm-up (scratch, pages, thread pool)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(inner):
            fn()
        times.append((time.perf_counter() - t0) / inner)
    return float(np.median(times)) * 1e6


def rows():
    r = np.random.default_rng(0)
    f = lambda *s: r.standard_normal(s).astype(np.float32)
    a2, b2 = f(2, 2), f(2, 2)
    a1k, b1k = f(1024, 1024), f(1024, 1024)
    x784, w784 = f(32, 784), f(784, 128)
    x1, w1 = f(64, 28, 28, 1), f(3, 3, 1, 32)
    y1 = ops.conv2d(x1, w1)
    x2, w2 = f(64, 13, 13, 32), f(3, 3, 32, 64)
    y2 = ops.conv2d(x2, w2)
    xp = f(64, 26, 26, 32)
    xl, h0, c0 = f(32, 20, 32), f(32, 64), f(32, 64)
    k, rk, bl = f(32, 256), f(64, 256), f(256)
    return [
        ("matmul 2x2", lambda: ops.matmul(a2, b2), 2000),
        ("sgemm 1024", lambda: ops.matmul(a1k, b1k), 1),
        ("(32x784)@(784x128)", lambda: ops.matmul(x784, w784), 50),
        ("conv fwd 28x28x1->32 b64", lambda: ops.conv2d(x1, w1), 5),
        ("conv bwd 28x28x1->32 b64", lambda: ops.conv2d_backward(y1, x1, w1, need_dx=False), 5),
        ("conv fwd 13x13x32->64 b64", lambda: ops.conv2d(x2, w2), 3),
        ("conv bwd 13x13x32->64 b64", lambda: ops.conv2d_backward(y2, x2, w2), 3),
        ("max_pool2d 26x26x32 b64", lambda: ops.max_pool2d(xp), 10),
        ("lstm b32 T20 I32 U64", lambda: ops.lstm(xl, h0, c0, k, rk, bl), 5),
    ]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--repeats", type=int, default=31)
    args = p.parse_args()
    table = rows()
    res = {}
    for nt in (1, 2):
        ops.set_num_threads(nt)
        for name, fn, inner in table:
            res[(name, nt)] = median_us(fn, args.repeats, inner)
    print(f"capability {ops.get_capability()}, median of {args.repeats} repeats, microseconds")
    print(f"{'row':28s} {'1 thread':>10s} {'2 threads':>10s}")
    for name, _, _ in table:
        print(f"{name:28s} {res[(name, 1)]:10.2f} {res[(name, 2)]:10.2f}")


if __name__ == "__main__":
    main()
