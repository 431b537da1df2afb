"""Embedding: fastdl's gather forward + scatter-add backward against torch.nn.Embedding (CPU).

float32, a dense table gradient on both sides: fastdl writes it into a reused buffer
(as the layer does), torch into a fresh ``weight.grad`` each step (as a training step
with ``zero_grad(set_to_none=True)`` does). "fwd" is an inference lookup; "fwd+bwd" is
the lookup plus the gradient of the whole table for a dy of every output. Ratios are
torch time / fastdl time; samples are interleaved (_common.side_by_side).
"""
import numpy as np

from . import _common
from fastdl import ops

SHAPES = [(64, 200, 20000, 128)]   # batch, tokens, input_dim (V), output_dim (D)


def run(opts):
    torch = _common.torch_or_none()
    repeat = 3 if opts.quick else 7
    cols = ["batch x tokens", "V x D", "threads", "fastdl fwd ms", "torch fwd ms", "fwd x",
            "fastdl fwd+bwd ms", "torch fwd+bwd ms", "fwd+bwd x"]
    table = _common.Table("Embedding, float32 (x = torch time / fastdl time)", cols)
    with _common.threads_restored(torch):
        for (N, T, V, D) in SHAPES:
            rng = np.random.default_rng(0)
            table_w = rng.uniform(-0.05, 0.05, (V, D)).astype(np.float32)
            ids = rng.integers(0, V, (N, T))
            dy = rng.standard_normal((N, T, D), dtype=np.float32)
            grad = np.empty_like(table_w)

            def f_fwd():
                return ops.embedding(ids, table_w)

            def f_train():
                ops.embedding(ids, table_w)
                return ops.embedding_backward(dy, ids, V, out=grad)
            fns = [f_fwd, f_train]
            if torch is not None:
                emb = torch.nn.Embedding(V, D)
                with torch.no_grad():
                    emb.weight.copy_(torch.from_numpy(table_w))
                t_ids, t_dy = torch.from_numpy(ids), torch.from_numpy(dy)

                def t_fwd():
                    with torch.no_grad():
                        return emb(t_ids)

                def t_train():
                    emb.weight.grad = None
                    emb(t_ids).backward(t_dy)
                fns += [t_fwd, t_train]
            for nt in opts.thread_list:
                _common.set_threads(nt, torch)
                times = _common.side_by_side(fns, repeat=repeat)
                tt = times[2:] if torch is not None else [None, None]
                table.rows.append({
                    "batch x tokens": f"{N}x{T}", "V x D": f"{V}x{D}", "threads": nt,
                    "fastdl fwd ms": 1e3 * times[0],
                    "torch fwd ms": None if tt[0] is None else 1e3 * tt[0],
                    "fwd x": None if tt[0] is None else tt[0] / times[0],
                    "fastdl fwd+bwd ms": 1e3 * times[1],
                    "torch fwd+bwd ms": None if tt[1] is None else 1e3 * tt[1],
                    "fwd+bwd x": None if tt[1] is None else tt[1] / times[1],
                })
    table.notes.append("torch: " + (torch.__version__ if torch else "not installed"))
    table.notes.append("Target with 2 threads: fwd+bwd >= 1.0x.")
    return [table]
