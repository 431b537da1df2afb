"""Recurrent kernels: fastdl SimpleRNN / LSTM / GRU against torch.nn.RNN / LSTM / GRU (CPU).

Whole sequences, float32, batch-first, the same sizes on both sides. "fwd" is an
inference forward (torch under no_grad); "fwd+bwd" is a training forward plus
the backward pass for a gradient on every step, including dx (torch's input
requires grad) and every weight gradient. Ratios are torch time / fastdl time.
"""
import numpy as np

from . import _common
from fastdl import ops

SHAPES = [(64, 28, 28, 128), (32, 100, 64, 256)]  # N, T, I, U
CELLS = [("SimpleRNN", 1), ("LSTM", 4), ("GRU", 3)]


def _fastdl_fns(cell, x, h0, c0, k, r, b, dhs):
    if cell == "SimpleRNN":
        def fwd():
            return ops.simple_rnn(x, h0, k, r, b)

        def train():
            hs = ops.simple_rnn(x, h0, k, r, b)
            return ops.simple_rnn_backward(dhs, x, h0, k, r, hs)
    elif cell == "LSTM":
        def fwd():
            return ops.lstm(x, h0, c0, k, r, b)

        def train():
            hs, _, cache = ops.lstm(x, h0, c0, k, r, b, return_cache=True)
            return ops.lstm_backward(dhs, None, x, h0, c0, k, r, hs, cache)
    else:
        def fwd():
            return ops.gru(x, h0, k, r, b)

        def train():
            hs, cache = ops.gru(x, h0, k, r, b, return_cache=True)
            return ops.gru_backward(dhs, x, h0, k, r, b, hs, cache)
    return fwd, train


def _torch_fns(torch, cell, x, h0, c0, dhs):
    N, T, I = x.shape
    U = h0.shape[1]
    mod = {"SimpleRNN": torch.nn.RNN, "LSTM": torch.nn.LSTM, "GRU": torch.nn.GRU}[cell]
    net = mod(I, U, batch_first=True)
    tx = torch.from_numpy(x)
    tx_grad = tx.clone().requires_grad_(True)
    th0 = torch.from_numpy(h0)[None]
    state = (th0, torch.from_numpy(c0)[None]) if cell == "LSTM" else th0
    tdhs = torch.from_numpy(dhs)
    params = list(net.parameters())

    def fwd():
        with torch.no_grad():
            return net(tx, state)

    def train():
        for p in params:
            p.grad = None
        tx_grad.grad = None
        out, _ = net(tx_grad, state)
        out.backward(tdhs)

    return fwd, train


def run(opts):
    torch = _common.torch_or_none()
    import fastdl
    shapes = SHAPES[:1] if opts.quick else SHAPES
    repeat = 3 if opts.quick else 7
    cols = ["cell", "N,T,I,U", "threads", "fastdl fwd ms", "torch fwd ms", "fwd x",
            "fastdl fwd+bwd ms", "torch fwd+bwd ms", "fwd+bwd x", "fastdl fwd+bwd GFLOP/s"]
    table = _common.Table("Recurrent layers, whole sequences, float32 (x = torch time / fastdl time)",
                          cols)
    with _common.threads_restored(torch):
        for cell, G in CELLS:
            for (N, T, I, U) in shapes:
                rng = np.random.default_rng(0)
                x = rng.standard_normal((N, T, I), dtype=np.float32)
                h0 = np.zeros((N, U), np.float32)
                c0 = np.zeros((N, U), np.float32)
                k = (rng.standard_normal((I, G * U), dtype=np.float32) / np.sqrt(I)).astype(np.float32)
                r = (rng.standard_normal((U, G * U), dtype=np.float32) / np.sqrt(U)).astype(np.float32)
                b = np.zeros((2, G * U) if cell == "GRU" else (G * U,), np.float32)
                dhs = rng.standard_normal((N, T, U), dtype=np.float32)
                # multiply-adds x2: forward is the input and recurrent products; backward twice that.
                flops = 3 * 2.0 * N * T * (I + U) * G * U
                f_fwd, f_train = _fastdl_fns(cell, x, h0, c0, k, r, b, dhs)
                t_fwd_t = t_train_t = None
                for nt in opts.thread_list:
                    fastdl.set_num_threads(nt)
                    t_fwd = _common.timeit(f_fwd, repeat=repeat)
                    t_train = _common.timeit(f_train, repeat=repeat)
                    if torch is not None:
                        torch.set_num_threads(nt)
                        g_fwd, g_train = _torch_fns(torch, cell, x, h0, c0, dhs)
                        t_fwd_t = _common.timeit(g_fwd, repeat=repeat)
                        t_train_t = _common.timeit(g_train, repeat=repeat)
                    table.rows.append({
                        "cell": cell, "N,T,I,U": f"{N},{T},{I},{U}", "threads": nt,
                        "fastdl fwd ms": 1e3 * t_fwd,
                        "torch fwd ms": None if t_fwd_t is None else 1e3 * t_fwd_t,
                        "fwd x": None if t_fwd_t is None else t_fwd_t / t_fwd,
                        "fastdl fwd+bwd ms": 1e3 * t_train,
                        "torch fwd+bwd ms": None if t_train_t is None else 1e3 * t_train_t,
                        "fwd+bwd x": None if t_train_t is None else t_train_t / t_train,
                        "fastdl fwd+bwd GFLOP/s": flops / t_train / 1e9,
                    })
    table.notes.append("torch: " + (f"{torch.__version__}, its own CPU RNN kernels (oneDNN for the "
                                    "float32 LSTM where available)" if torch else "not installed"))
    table.notes.append("Targets with 2 threads: SimpleRNN fwd+bwd >= 2x, LSTM and GRU >= 1.3x.")
    return [table]
