"""Convolution benchmark: fastdl against PyTorch CPU (oneDNN, channels_last).

Layers: the two convolutions of the Keras MNIST convnet at batch 128, a
ResNet 3x3 layer at batch 32 and a 1x1 layer at batch 32. Forward, backward
and both, timed side by side (fastdl and torch samples interleaved), medians.

Backward: fastdl.ops.conv2d_backward; torch through autograd on a retained
graph (only the backward pass is timed; .grad is cleared each time). For the
first layer the input is the data, so neither side computes dx (torch's input
does not require grad; fastdl gets need_dx=False).

When ops.conv2d takes ``algorithm=`` ("auto" | "direct" | "im2col"), each pass is also timed
with the two algorithms forced, in the same interleaved rounds: columns "fastdl direct ..."
and "fastdl im2col ..." beside the default ("fastdl ...", algorithm="auto") and PyTorch.
Without that argument (older builds) the table is the same as before.
"""
import inspect

import numpy as np

from fastdl import ops

from ._common import Table, set_threads, side_by_side, threads_restored, torch_or_none

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


def _torch_case(torch, x, w, b, dy, pad, first, device="cpu"):
    """PyTorch's (fwd, bwd, fwd+bwd) callables for one layer, channels_last, on device."""
    F = torch.nn.functional
    cl = torch.channels_last
    xt = torch.from_numpy(x).to(device).permute(0, 3, 1, 2).contiguous(memory_format=cl)
    wt = torch.from_numpy(w).to(device).permute(3, 2, 0, 1).contiguous(memory_format=cl)
    bt = torch.from_numpy(b).to(device).clone()
    dyt = torch.from_numpy(dy).to(device).permute(0, 3, 1, 2).contiguous(memory_format=cl)
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


ALGORITHMS = ("direct", "im2col")


def _takes_algorithm(fn, probe):
    """Whether fn accepts algorithm=: from its signature when it names the argument, else by
    calling probe() (a tiny call with algorithm="direct") and catching TypeError."""
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        params = None
    if params is not None:
        if "algorithm" in params:
            return True
        if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
            return False
    try:
        probe()
    except TypeError:
        return False
    except Exception:
        pass  # it took the argument (and failed for another reason)
    return True


def conv_algorithms():
    """(forward algorithms to time, whether conv2d_backward takes algorithm= too).
    ((), False) when ops.conv2d has no algorithm= argument."""
    x = np.zeros((1, 3, 3, 1), np.float32)
    w = np.zeros((2, 2, 1, 1), np.float32)
    if not _takes_algorithm(ops.conv2d, lambda: ops.conv2d(x, w, algorithm="direct")):
        return (), False
    dy = np.zeros((1, 2, 2, 1), np.float32)
    bwd = _takes_algorithm(ops.conv2d_backward,
                           lambda: ops.conv2d_backward(dy, x, w, algorithm="direct"))
    return ALGORITHMS, bwd


def _fastdl_passes(x, w, b, dy, padding, first, algorithm=None, bwd_algorithm=False):
    """(fwd, bwd, fwd+bwd) callables; algorithm=None leaves the argument out (the default)."""
    fkw = {} if algorithm is None else {"algorithm": algorithm}
    bkw = fkw if bwd_algorithm else {}

    def fwd():
        ops.conv2d(x, w, b, padding=padding, **fkw)

    def bwd():
        ops.conv2d_backward(dy, x, w, padding=padding, need_dx=not first, **bkw)

    def both():
        fwd()
        bwd()

    return fwd, bwd, both


def _usable(fn):
    """fn when one call succeeds (an algorithm may refuse a layer), else None."""
    try:
        fn()
    except (ValueError, NotImplementedError, RuntimeError):
        return None
    return fn


def run(opts):
    torch = torch_or_none()
    quick = getattr(opts, "quick", False)
    repeat = 3 if quick else 7
    rng = np.random.default_rng(0)
    algos, bwd_algo = conv_algorithms()
    cols = ["layer", "threads", "pass", "fastdl ms"]
    cols += [f"fastdl {a} ms" for a in algos]
    cols += ["torch ms", "fastdl GFLOP/s"]
    cols += [f"fastdl {a} GFLOP/s" for a in algos]
    cols += ["torch GFLOP/s", "fastdl % peak", "speedup vs torch"]
    table = Table("conv2d float32, fastdl vs PyTorch (channels_last, oneDNN)", cols)
    peak_note = None
    refused = set()
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

            default = _fastdl_passes(x, w, b, dy, padding, first)
            forced = {}
            for a in algos:
                fns = _fastdl_passes(x, w, b, dy, padding, first, a, bwd_algo)
                fns = tuple(_usable(fn) for fn in fns)
                if not bwd_algo:
                    fns = (fns[0], None, fns[2])   # the backward is the default one: no column
                if fns[0] is None:
                    refused.add(f"{a} ({name})")
                forced[a] = fns
            tcase = _torch_case(torch, x, w, b, dy, pad, first) if torch else (None,) * 3
            for t in opts.thread_list:
                set_threads(t, torch)
                peak, peak_note = peak_gflops(t)
                for i, (pname, flop) in enumerate((("fwd", flop_f), ("bwd", flop_b),
                                                   ("fwd+bwd", flop_f + flop_b))):
                    named = [("fastdl", default[i])]
                    named += [(a, forced[a][i]) for a in algos if forced[a][i] is not None]
                    if tcase[i] is not None:
                        named.append(("torch", tcase[i]))
                    secs = dict(zip([nm for nm, _ in named],
                                    side_by_side([fn for _, fn in named], repeat=repeat)))
                    tf, tt = secs["fastdl"], secs.get("torch")
                    row = {"layer": name, "threads": t, "pass": pname,
                           "fastdl ms": tf * 1e3, "torch ms": tt * 1e3 if tt else None,
                           "fastdl GFLOP/s": flop / tf / 1e9,
                           "torch GFLOP/s": flop / tt / 1e9 if tt else None,
                           "fastdl % peak": 100.0 * flop / tf / 1e9 / peak,
                           "speedup vs torch": tt / tf if tt else None}
                    for a in algos:
                        if a in secs:
                            row[f"fastdl {a} ms"] = secs[a] * 1e3
                            row[f"fastdl {a} GFLOP/s"] = flop / secs[a] / 1e9
                    table.rows.append(row)
    table.notes.append(f"Peak: {peak_note}. speedup = torch time / fastdl time (> 1: fastdl "
                       f"faster). Backward FLOPs: dw + dx (dw only for the first layer, whose "
                       f"input needs no gradient: need_dx=False / requires_grad=False).")
    if algos:
        table.notes.append(
            "fastdl: ops.conv2d's default (algorithm='auto'); fastdl direct / im2col: the same "
            "pass with algorithm= forced, timed in the same rounds. "
            + ("conv2d_backward takes algorithm= too." if bwd_algo else
               "conv2d_backward has no algorithm= argument: the forced columns of fwd+bwd are "
               "the forced forward plus the default backward, and bwd rows have none.")
            + (f" Refused (no number): {', '.join(sorted(refused))}." if refused else ""))
    if not torch:
        table.notes.append("PyTorch is not installed: torch columns are empty.")
    return [table]
