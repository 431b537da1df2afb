"""Convolution benchmark: fastdl against PyTorch CPU (oneDNN, channels_last).

Layers: the two convolutions of the Keras MNIST convnet at batch 128, a
ResNet 3x3 layer at batch 32 and a 1x1 layer at batch 32. Forward, backward
and both, timed side by side (fastdl and torch samples interleaved), medians.

Backward: fastdl.ops.conv2d_backward; torch through autograd on a retained
graph (only the backward pass is timed; .grad is cleared each time). For the
first layer the input is the data, so neither side computes dx (torch's input
does not require grad; fastdl gets need_dx=False).
"""
import numpy as np

from fastdl import ops

from ._common import Table, set_threads, threads_restored, time_passes, torch_or_none

# name, batch, (H, W, C), filters, kernel, padding, first layer
LAYERS = [
    ("mnist conv1 28x28x1->32 3x3", 128, (28, 28, 1), 32, 3, "valid", True),
    ("mnist conv2 13x13x32->64 3x3", 128, (13, 13, 32), 64, 3, "valid", False),
    ("resnet 56x56x64->64 3x3 same", 32, (56, 56, 64), 64, 3, "same", False),
    ("1x1 28x28x128->128", 32, (28, 28, 128), 128, 1, "valid", False),
]

ASSUMED_PEAK_PER_CORE = 100.0  # GFLOP/s, float32, when no measured peak is exposed


_peak_one = []


def peak_gflops(threads):
    """(float32 GFLOP/s of `threads` cores, where the number comes from).

    ops.fma_peak_gflops (from the GEMM engine) when it exists: one thread's
    best of three runs (a shared machine only ever makes the loop slower),
    times the thread count. Otherwise an assumed 100 GFLOP/s per core."""
    f = getattr(ops, "fma_peak_gflops", None)
    if not callable(f):
        return ASSUMED_PEAK_PER_CORE * threads, f"assumed {ASSUMED_PEAK_PER_CORE:.0f} GFLOP/s per core"
    if not _peak_one:
        _peak_one.append(max(float(f(1)) for _ in range(3)))
    return (_peak_one[0] * threads,
            f"measured one-thread FMA peak {_peak_one[0]:.0f} GFLOP/s (ops.fma_peak_gflops, best "
            f"of 3) times the threads")


def _torch_case(torch, x, w, b, dy, pad, first):
    F = torch.nn.functional
    cl = torch.channels_last
    xt = torch.from_numpy(x).permute(0, 3, 1, 2).contiguous(memory_format=cl)
    wt = torch.from_numpy(w).permute(3, 2, 0, 1).contiguous(memory_format=cl)
    bt = torch.from_numpy(b).clone()
    dyt = torch.from_numpy(dy).permute(0, 3, 1, 2).contiguous(memory_format=cl)
    xt.requires_grad_(not first)
    wt.requires_grad_(True)
    bt.requires_grad_(True)
    params = [xt, wt, bt]

    def fwd():
        with torch.no_grad():
            return F.conv2d(xt, wt, bt, padding=pad)

    graph = {"y": F.conv2d(xt, wt, bt, padding=pad)}

    def bwd():
        for p in params:
            p.grad = None
        graph["y"].backward(dyt, retain_graph=True)

    def both():
        for p in params:
            p.grad = None
        F.conv2d(xt, wt, bt, padding=pad).backward(dyt)

    return fwd, bwd, both


def run(opts):
    torch = torch_or_none()
    quick = getattr(opts, "quick", False)
    repeat = 3 if quick else 7
    rng = np.random.default_rng(0)
    table = Table("conv2d float32, fastdl vs PyTorch (channels_last, oneDNN)",
                  ["layer", "threads", "pass", "fastdl ms", "torch ms", "fastdl GFLOP/s",
                   "torch GFLOP/s", "fastdl % peak", "speedup vs torch"])
    peak_note = None
    with threads_restored(torch):
        for name, n, (h, w_, c), f, k, padding, first in LAYERS:
            x = rng.standard_normal((n, h, w_, c)).astype(np.float32)
            w = (rng.standard_normal((k, k, c, f)) / np.sqrt(k * k * c)).astype(np.float32)
            b = rng.standard_normal(f).astype(np.float32)
            y = ops.conv2d(x, w, b, padding=padding)
            dy = rng.standard_normal(y.shape).astype(np.float32)
            m = y.shape[0] * y.shape[1] * y.shape[2]
            flop_f = 2.0 * m * k * k * c * f
            flop_b = flop_f * (1 if first else 2)
            pad = (k // 2) if padding == "same" else 0

            def ffwd():
                ops.conv2d(x, w, b, padding=padding)

            def fbwd():
                ops.conv2d_backward(dy, x, w, padding=padding, need_dx=not first)

            def fboth():
                ops.conv2d(x, w, b, padding=padding)
                ops.conv2d_backward(dy, x, w, padding=padding, need_dx=not first)

            tcase = _torch_case(torch, x, w, b, dy, pad, first) if torch else (None,) * 3
            for t in opts.thread_list:
                set_threads(t, torch)
                peak, peak_note = peak_gflops(t)
                passes = (("fwd", ffwd, tcase[0], flop_f), ("bwd", fbwd, tcase[1], flop_b),
                          ("fwd+bwd", fboth, tcase[2], flop_f + flop_b))
                for pname, tf, tt, flop in time_passes(passes, repeat=repeat):
                    table.rows.append({
                        "layer": name, "threads": t, "pass": pname,
                        "fastdl ms": tf * 1e3, "torch ms": tt * 1e3 if tt else None,
                        "fastdl GFLOP/s": flop / tf / 1e9,
                        "torch GFLOP/s": flop / tt / 1e9 if tt else None,
                        "fastdl % peak": 100.0 * flop / tf / 1e9 / peak,
                        "speedup vs torch": tt / tf if tt else None,
                    })
    table.notes.append(f"Peak: {peak_note}. speedup = torch time / fastdl time (> 1: fastdl "
                       f"faster). Backward FLOPs: dw + dx (dw only for the first layer, whose "
                       f"input needs no gradient: need_dx=False / requires_grad=False).")
    if not torch:
        table.notes.append("PyTorch is not installed: torch columns are empty.")
    return [table]
