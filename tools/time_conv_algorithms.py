"""Direct kernels against im2col + GEMM, per layer shape (the data behind conv2d's
'auto' rule, cpu/conv/conv2d.cpp: conv2d_pick_algorithm).

    PYTHONPATH=python python tools/time_conv_algorithms.py [--threads 1 2] [--repeats 7]

Prints the median milliseconds of forward and backward (dx, dw, db) per algorithm,
the faster one, and what 'auto' picks.
"""
import argparse
import time

import numpy as np

from fastdl import ops

# (name, batch, (H, W, C), F, k, stride, padding)
SHAPES = [
    ("mnist conv1 28x28x1->32", 64, (28, 28, 1), 32, 3, 1, "valid"),
    ("mnist conv2 13x13x32->64", 64, (13, 13, 32), 64, 3, 1, "valid"),
    ("bench conv1 b128 28x28x1->32", 128, (28, 28, 1), 32, 3, 1, "valid"),
    ("bench conv2 b128 13x13x32->64", 128, (13, 13, 32), 64, 3, 1, "valid"),
    ("resnet 56x56x64->64 same b8", 8, (56, 56, 64), 64, 3, 1, "same"),
    ("28x28x128->128 3x3 same b8", 8, (28, 28, 128), 128, 3, 1, "same"),
    ("14x14x256->256 3x3 same b8", 8, (14, 14, 256), 256, 3, 1, "same"),
    ("32x32x3->16 5x5 same b32", 32, (32, 32, 3), 16, 5, 1, "same"),
    ("32x32x16->32 3x3 s2 same b32", 32, (32, 32, 16), 32, 3, 2, "same"),
    ("28x28x8->8 3x3 valid b32", 32, (28, 28, 8), 8, 3, 1, "valid"),
    ("16x16x64->16 3x3 same b32", 32, (16, 16, 64), 16, 3, 1, "same"),
]


def median_ms(fn, repeats):
    fn()
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return float(np.median(ts)) * 1e3


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--repeats", type=int, default=7)
    args = p.parse_args()
    rng = np.random.default_rng(0)
    print(f"capability {ops.get_capability()}, median of {args.repeats}, ms")
    print(f"{'layer':32s} {'thr':>3s} | {'fwd direct':>10s} {'fwd im2col':>10s} | "
          f"{'bwd direct':>10s} {'bwd im2col':>10s}")
    for name, n, (h, w_, c), f, k, s, pad in SHAPES:
        x = rng.standard_normal((n, h, w_, c)).astype(np.float32)
        w = rng.standard_normal((k, k, c, f)).astype(np.float32)
        y = ops.conv2d(x, w, strides=s, padding=pad)
        dy = rng.standard_normal(y.shape).astype(np.float32)
        for nt in args.threads:
            ops.set_num_threads(nt)
            r = {}
            for a in ("direct", "im2col"):
                r["f", a] = median_ms(lambda: ops.conv2d(x, w, strides=s, padding=pad,
                                                         algorithm=a), args.repeats)
                r["b", a] = median_ms(lambda: ops.conv2d_backward(dy, x, w, strides=s, padding=pad,
                                                                  algorithm=a), args.repeats)
            mark = lambda d, i: ("*", " ") if d <= i else (" ", "*")
            fd, fi = mark(r["f", "direct"], r["f", "im2col"])
            bd, bi = mark(r["b", "direct"], r["b", "im2col"])
            print(f"{name:32s} {nt:3d} | {r['f', 'direct']:9.2f}{fd} {r['f', 'im2col']:9.2f}{fi} | "
                  f"{r['b', 'direct']:9.2f}{bd} {r['b', 'im2col']:9.2f}{bi}", flush=True)


if __name__ == "__main__":
    main()
