"""Convolution layers benchmark: fastdl layers against PyTorch CPU modules.

Rows (issue "layer and training breadth"): Conv2DTranspose 128x7x7x64 -> 14x14x32
(3x3, stride 2, 'same') and Conv1D 128x500x64 -> 64 (k=3, 'valid'), and a
MobileNet-like DepthwiseConv2D (32x56x56x64, 3x3 'same'; torch: groups=64), forward,
backward and both, fastdl and torch timed side by side (interleaved samples,
medians). Both sides compute dx, dw and db in the backward pass (a layer in the
middle of a network). fastdl: the layer's call and fused backward (what fit
runs); torch: the module on channels_last tensors (Conv2DTranspose) or its
native (N, C, L) layout (Conv1d has no channels-last form), backward through
autograd on a retained graph with .grad cleared each time.
"""
import numpy as np

from fastdl import layers

from ._common import Table, set_threads, side_by_side, threads_restored, torch_or_none

# name, input shape (channels-last), layer factory, torch factory, fastdl kernel -> torch
# weight, multiply-adds per sample
CASES = [
    ("Conv2DTranspose 7x7x64->14x14x32 3x3 s2 same", (128, 7, 7, 64),
     lambda: layers.Conv2DTranspose(32, 3, strides=2, padding="same"),
     lambda nn: nn.ConvTranspose2d(64, 32, 3, stride=2, padding=1, output_padding=1),
     lambda w: w.transpose(3, 2, 0, 1),               # (KH,KW,F,C_in) -> (C_in,F,KH,KW)
     7 * 7 * 3 * 3 * 64 * 32),
    ("Conv1D 500x64->64 k3 valid", (128, 500, 64),
     lambda: layers.Conv1D(64, 3),
     lambda nn: nn.Conv1d(64, 64, 3),
     lambda w: w.transpose(2, 1, 0),                  # (k,C_in,F) -> (F,C_in,k)
     498 * 3 * 64 * 64),
    ("DepthwiseConv2D 56x56x64 3x3 same", (32, 56, 56, 64),
     lambda: layers.DepthwiseConv2D(3, padding="same"),
     lambda nn: nn.Conv2d(64, 64, 3, padding=1, groups=64),
     lambda w: w.transpose(2, 3, 0, 1).reshape(-1, 1, *w.shape[:2]),  # -> (C*M,1,KH,KW)
     56 * 56 * 3 * 3 * 64),
]


def _fastdl_passes(layer, x, dy):
    def fwd():
        layer.call(x)

    def bwd():
        layer.backward(dy)

    def both():
        layer.call(x)
        layer.backward(dy)

    layer(x)
    return fwd, bwd, both


def _torch_passes(torch, module, x, dy):
    if x.ndim == 4:  # NHWC data -> NCHW logical shape, channels_last memory
        cl = torch.channels_last
        module = module.to(memory_format=cl)
        xt = torch.from_numpy(x).permute(0, 3, 1, 2).contiguous(memory_format=cl)
        dyt = torch.from_numpy(dy).permute(0, 3, 1, 2).contiguous(memory_format=cl)
    else:
        xt = torch.from_numpy(x).permute(0, 2, 1).contiguous()
        dyt = torch.from_numpy(dy).permute(0, 2, 1).contiguous()
    xt.requires_grad_(True)
    params = [xt, *module.parameters()]

    def fwd():
        with torch.no_grad():
            module(xt)

    graph = {"y": module(xt)}

    def bwd():
        for p in params:
            p.grad = None
        graph["y"].backward(dyt, retain_graph=True)

    def both():
        for p in params:
            p.grad = None
        module(xt).backward(dyt)

    return fwd, bwd, both


def run(opts):
    torch = torch_or_none()
    quick = getattr(opts, "quick", False)
    repeat = 3 if quick else 7
    rng = np.random.default_rng(0)
    table = Table("conv layers float32, fastdl vs PyTorch CPU",
                  ["layer", "threads", "pass", "fastdl ms", "torch ms", "fastdl GFLOP/s",
                   "speedup vs torch"])
    with threads_restored(torch):
        for name, shape, make, make_torch, to_torch, macs in CASES:
            x = rng.standard_normal(shape).astype(np.float32)
            layer = make()
            y = layer(x)
            dy = rng.standard_normal(y.shape).astype(np.float32)
            ours = _fastdl_passes(layer, x, dy)
            theirs = (None,) * 3
            if torch:
                module = make_torch(torch.nn)
                with torch.no_grad():  # the same weights
                    w = to_torch(layer.get_weights()[0])
                    module.weight.copy_(torch.from_numpy(np.ascontiguousarray(w)))
                theirs = _torch_passes(torch, module, x, dy)
            flop_f = 2.0 * shape[0] * macs
            for t in opts.thread_list:
                set_threads(t, torch)
                for i, (pname, flop) in enumerate((("fwd", flop_f), ("bwd", 2 * flop_f),
                                                   ("fwd+bwd", 3 * flop_f))):
                    fns = [ours[i]] + ([theirs[i]] if theirs[i] else [])
                    secs = side_by_side(fns, repeat=repeat)
                    tf, tt = secs[0], (secs[1] if len(secs) > 1 else None)
                    table.rows.append({"layer": name, "threads": t, "pass": pname,
                                       "fastdl ms": tf * 1e3,
                                       "torch ms": tt * 1e3 if tt else None,
                                       "fastdl GFLOP/s": flop / tf / 1e9,
                                       "speedup vs torch": tt / tf if tt else None})
    table.notes.append("speedup = torch time / fastdl time (> 1: fastdl faster). Backward: dx, "
                       "dw and db on both sides. Conv2DTranspose: torch padding=1, "
                       "output_padding=1 (the same output size and cost as Keras' 'same').")
    if not torch:
        table.notes.append("PyTorch is not installed: torch columns are empty.")
    return [table]
