"""Normalization benchmarks: fastdl against PyTorch CPU.

BatchNormalization in training mode on (128, 26, 26, 32) float32 (the first conv
output of the Keras MNIST convnet at batch 128): forward (batch statistics and the
normalized output), backward (dgamma, dbeta, dx) and both, timed side by side.
fastdl runs ops.batch_norm / ops.batch_norm_backward (what the layer calls); PyTorch
runs F.batch_norm(training=True) on a channels_last tensor, its backward through
autograd. PyTorch also updates its running statistics in the forward pass; fastdl's
layer does that in NumPy (two tiny per-channel updates, not timed here).

GB/s counts the bytes a pass must move at least: forward reads x twice (statistics,
then normalize) and writes y; backward reads dy and x twice and writes dx.

LayerNormalization over the last axis of (64, 200, 128) float32 (a transformer
block's activations): ops.layer_norm / layer_norm_backward against
F.layer_norm with autograd, fwd+bwd.
"""
import numpy as np

from fastdl import ops

from ._common import Table, set_threads, threads_restored, time_passes, torch_or_none

SHAPES = [(128, 26, 26, 32)]


def run(opts):
    torch = torch_or_none()
    quick = getattr(opts, "quick", False)
    repeat = 3 if quick else 7
    rng = np.random.default_rng(0)
    table = Table("BatchNormalization (training) float32, fastdl vs PyTorch (channels_last)",
                  ["input", "threads", "pass", "fastdl ms", "torch ms", "fastdl GB/s",
                   "torch GB/s", "speedup vs torch"])
    with threads_restored(torch):
        for shape in SHAPES:
            C = shape[-1]
            x = rng.standard_normal(shape).astype(np.float32)
            dy = rng.standard_normal(shape).astype(np.float32)
            gamma = rng.standard_normal(C).astype(np.float32)
            beta = rng.standard_normal(C).astype(np.float32)
            y = np.empty_like(x)
            _, mean, var = ops.batch_norm(x, gamma, beta)
            bytes_f = 4.0 * 3 * x.size
            bytes_b = 4.0 * 5 * x.size

            def ffwd():
                ops.batch_norm(x, gamma, beta, out=y)

            def fbwd():
                ops.batch_norm_backward(dy, x, mean, var, gamma)

            def fboth():
                _, m, v = ops.batch_norm(x, gamma, beta, out=y)
                ops.batch_norm_backward(dy, x, m, v, gamma)

            tfns = (None, None, None)
            if torch:
                F = torch.nn.functional
                cl = torch.channels_last
                xt = torch.from_numpy(x).permute(0, 3, 1, 2).contiguous(memory_format=cl)
                dyt = torch.from_numpy(dy).permute(0, 3, 1, 2).contiguous(memory_format=cl)
                g = torch.from_numpy(gamma).clone().requires_grad_(True)
                b = torch.from_numpy(beta).clone().requires_grad_(True)
                rm, rv = torch.zeros(C), torch.ones(C)
                xg = xt.clone().requires_grad_(True)

                def tfwd():
                    with torch.no_grad():
                        F.batch_norm(xt, rm, rv, g, b, training=True, momentum=0.01, eps=1e-3)

                graph = {"y": F.batch_norm(xg, rm, rv, g, b, training=True, momentum=0.01,
                                           eps=1e-3)}

                def tbwd():
                    xg.grad = g.grad = b.grad = None
                    graph["y"].backward(dyt, retain_graph=True)

                def tboth():
                    xg.grad = g.grad = b.grad = None
                    F.batch_norm(xg, rm, rv, g, b, training=True, momentum=0.01,
                                 eps=1e-3).backward(dyt)

                tfns = (tfwd, tbwd, tboth)
            for t in opts.thread_list:
                set_threads(t, torch)
                passes = (("fwd", ffwd, tfns[0], bytes_f), ("bwd", fbwd, tfns[1], bytes_b),
                          ("fwd+bwd", fboth, tfns[2], bytes_f + bytes_b))
                for pname, tf, tt, nbytes in time_passes(passes, repeat=repeat):
                    table.rows.append({
                        "input": "x".join(map(str, shape)), "threads": t, "pass": pname,
                        "fastdl ms": tf * 1e3, "torch ms": tt * 1e3 if tt else None,
                        "fastdl GB/s": nbytes / tf / 1e9,
                        "torch GB/s": nbytes / tt / 1e9 if tt else None,
                        "speedup vs torch": tt / tf if tt else None,
                    })
    table.notes.append("speedup = torch time / fastdl time (> 1: fastdl faster).")
    if not torch:
        table.notes.append("PyTorch is not installed: torch columns are empty.")
    yield table
    yield layer_norm_table(opts, torch, repeat)


LN_SHAPES = [(64, 200, 128)]


def layer_norm_table(opts, torch, repeat):
    rng = np.random.default_rng(0)
    table = Table("LayerNormalization (last axis) float32 fwd+bwd, fastdl vs PyTorch",
                  ["input", "threads", "pass", "fastdl ms", "torch ms", "fastdl GB/s",
                   "torch GB/s", "speedup vs torch"])
    with threads_restored(torch):
        for shape in LN_SHAPES:
            D = shape[-1]
            x = rng.standard_normal(shape).astype(np.float32).reshape(-1, D)
            dy = rng.standard_normal(x.shape).astype(np.float32)
            gamma = rng.standard_normal(D).astype(np.float32)
            beta = rng.standard_normal(D).astype(np.float32)
            y, dx = np.empty_like(x), np.empty_like(x)
            nbytes = 4.0 * 6 * x.size   # forward: x, y; backward: dy, x twice, dx

            def fboth():
                _, m, inv = ops.layer_norm(x, gamma, beta, out=y)
                ops.layer_norm_backward(dy, x, m, inv, gamma, out=dx)

            tboth = None
            if torch:
                F = torch.nn.functional
                xg = torch.from_numpy(x).clone().requires_grad_(True)
                g = torch.from_numpy(gamma).clone().requires_grad_(True)
                b = torch.from_numpy(beta).clone().requires_grad_(True)
                dyt = torch.from_numpy(dy)

                def tboth():
                    xg.grad = g.grad = b.grad = None
                    F.layer_norm(xg, (D,), g, b, eps=1e-3).backward(dyt)
            for t in opts.thread_list:
                set_threads(t, torch)
                for pname, tf, tt, nb in time_passes((("fwd+bwd", fboth, tboth, nbytes),),
                                                     repeat=repeat):
                    table.rows.append({
                        "input": "x".join(map(str, shape)), "threads": t, "pass": pname,
                        "fastdl ms": tf * 1e3, "torch ms": tt * 1e3 if tt else None,
                        "fastdl GB/s": nb / tf / 1e9,
                        "torch GB/s": nb / tt / 1e9 if tt else None,
                        "speedup vs torch": tt / tf if tt else None,
                    })
    table.notes.append("speedup = torch time / fastdl time (> 1: fastdl faster).")
    return table
