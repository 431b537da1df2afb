"""Max pooling benchmark: fastdl against PyTorch CPU (channels_last).

Max-pool 2x2 on the two pooling inputs of the Keras MNIST convnet at batch 128
((26,26,32) after conv1 and (11,11,64) after conv2). Forward, backward and
both, timed side by side. Both sides train the same way: the forward pass of
training keeps each window's argmax (fastdl one uint8 code per output, torch
int64 indices in its autograd graph) and the backward pass scatters dy with
it. "fwd" is the inference forward (neither keeps indices), "bwd" the scatter
from the saved argmax, "fwd+bwd" a training step of the layer (forward with
argmax, then backward); "bwd from x" is fastdl's backward without the codes,
which recomputes the window maxima from x (against the same torch scatter).

GB/s counts the bytes a pass must move at least, the same for both sides:
forward reads x and writes y; backward reads x and dy and writes dx.
"""
import numpy as np

from fastdl import ops

from ._common import Table, set_threads, threads_restored, time_passes, torch_or_none

SHAPES = [(128, 26, 26, 32), (128, 11, 11, 64)]


def run(opts):
    torch = torch_or_none()
    quick = getattr(opts, "quick", False)
    repeat = 3 if quick else 7
    rng = np.random.default_rng(0)
    table = Table("max_pool2d 2x2 float32, fastdl vs PyTorch (channels_last)",
                  ["input", "threads", "pass", "fastdl ms", "torch ms", "fastdl GB/s",
                   "torch GB/s", "speedup vs torch"])
    with threads_restored(torch):
        for shape in SHAPES:
            x = rng.standard_normal(shape).astype(np.float32)
            y, argmax = ops.max_pool2d(x, 2, return_argmax=True)
            dy = rng.standard_normal(y.shape).astype(np.float32)
            bytes_f = 4.0 * (x.size + y.size)
            bytes_b = 4.0 * (2 * x.size + dy.size)

            def ffwd():
                ops.max_pool2d(x, 2)

            def fbwd():
                ops.max_pool2d_backward(dy, x, pool_size=2, argmax=argmax)

            def fboth():
                _, a = ops.max_pool2d(x, 2, return_argmax=True)
                ops.max_pool2d_backward(dy, x, pool_size=2, argmax=a)

            def fbwd_x():
                ops.max_pool2d_backward(dy, x, pool_size=2)

            tfns = (None, None, None, None)
            if torch:
                F = torch.nn.functional
                cl = torch.channels_last
                xt = torch.from_numpy(x).permute(0, 3, 1, 2).contiguous(memory_format=cl)
                dyt = torch.from_numpy(dy).permute(0, 3, 1, 2).contiguous(memory_format=cl)
                xg = xt.clone().requires_grad_(True)
                graph = {"y": F.max_pool2d(xg, 2)}

                def tfwd():
                    with torch.no_grad():
                        F.max_pool2d(xt, 2)

                def tbwd():
                    xg.grad = None
                    graph["y"].backward(dyt, retain_graph=True)

                def tboth():
                    xg.grad = None
                    F.max_pool2d(xg, 2).backward(dyt)

                tfns = (tfwd, tbwd, tboth, tbwd)
            for t in opts.thread_list:
                set_threads(t, torch)
                passes = (("fwd", ffwd, tfns[0], bytes_f), ("bwd", fbwd, tfns[1], bytes_b),
                          ("fwd+bwd", fboth, tfns[2], bytes_f + bytes_b),
                          ("bwd from x", fbwd_x, tfns[3], bytes_b))
                for pname, tf, tt, nbytes in time_passes(passes, repeat=repeat):
                    table.rows.append({
                        "input": "x".join(map(str, shape)), "threads": t, "pass": pname,
                        "fastdl ms": tf * 1e3, "torch ms": tt * 1e3 if tt else None,
                        "fastdl GB/s": nbytes / tf / 1e9,
                        "torch GB/s": nbytes / tt / 1e9 if tt else None,
                        "speedup vs torch": tt / tf if tt else None,
                    })
    table.notes.append("speedup = torch time / fastdl time (> 1: fastdl faster). Torch's forward "
                       "alone runs without grad (no indices); in fwd+bwd it saves indices.")
    if not torch:
        table.notes.append("PyTorch is not installed: torch columns are empty.")
    return [table]
