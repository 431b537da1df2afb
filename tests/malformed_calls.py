"""Malformed-argument fuzzing of fastdl.ops, run in a child interpreter by test_properties.py.

    python malformed_calls.py FAMILY LOGFILE [BACKEND]

For every op of FAMILY (gemm, conv, pool, rnn, nn) hypothesis builds a valid call with small
shapes, then breaks one or two of its arguments: a wrong dtype, rank or shape, an empty axis, a
huge zero-stride broadcast view (dimensions up to 2**62, so products overflow 64 bits), a
non-contiguous, reversed or read-only view, a list, a scalar or None; and for the numeric
parameters (strides, padding, dilation, pool sizes, axis, rate, seed, step, alpha, beta ...)
values like -1, 0, 2**31, 2**62, 2**63 - 1, NaN or a string. Each call must either succeed or
raise TypeError / ValueError / MemoryError / OverflowError (or ArithmeticError); anything else is reported and the
child exits with 1; a crash kills the child (the parent sees the signal). Before each call its
description is written to LOGFILE, so the parent can name the call that crashed.

BACKEND is cpu (the default: NumPy arrays, fastdl._C) or cuda: every NumPy array argument of
the final call becomes a CuPy array, so the same calls go to fastdl._cuda. Under the CPU
emulation of CUDA (tests/cuda_emu) the CuPy arrays are views of the very same memory, so the
strides, zero-stride broadcasts and read-only flags the mutations make reach the CUDA module
unchanged.
"""
import os
import sys

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

BACKEND = sys.argv[3] if len(sys.argv) > 3 else "cpu"

def _real_gpu():
    # The CUDA driver reserves far more address space than any cap below allows.
    if BACKEND != "cuda":
        return False
    try:
        import cupy
    except ImportError:
        return False
    return not issubclass(cupy.ndarray, np.ndarray)   # the emulation's CuPy is NumPy


if not os.environ.get("FASTDL_SANITIZED") and not _real_gpu():
    # Cap the address space, so an accidental huge allocation fails fast (MemoryError) instead
    # of filling the machine. ASan reserves terabytes of shadow memory, so not under it, and
    # neither is a real GPU's driver.
    # The CUDA emulation runs every CUDA thread of a block as an OS thread, each with its own
    # stack (the parent lowers RLIMIT_STACK for it): room for a 1024-thread block on top.
    import resource
    lim = (6 if BACKEND == "cpu" else 10) << 30
    resource.setrlimit(resource.RLIMIT_AS, (lim, lim))

from fastdl import ops  # noqa: E402

# ArithmeticError: e.g. Adam's bias correction with beta_1 = 1 divides by zero in Python.
CLEAN = (TypeError, ValueError, MemoryError, OverflowError, ArithmeticError)
HUGE = [2**31, 2**32 + 1, 2**40, 2**62, 2**63 - 1]
WEIRD_INTS = [-(2**63), -(2**31), -2, -1, 0, 1, 2, 3, 2**31 - 1, 2**31, 2**32, 2**62, 2**63 - 1,
              2**63, 2**64]
WEIRD_SCALARS = WEIRD_INTS + [True, 1.5, float("nan"), float("inf"), -float("inf"), None, "x",
                              (1,), (1, 2, 3), ((1, 1), (1,)), ((-1, 0), (0, 0)),
                              (2**62, 2**62), ((2**62, 2**62), (0, 0)), [], "same", "valid"]
DTYPES = [np.float16, np.int32, np.int64, np.bool_, np.complex64, np.uint8, object]

calls = 0
failures = []

if BACKEND == "cuda":
    import cupy

    def to_backend(v):
        if type(v) is not np.ndarray:
            return v
        if issubclass(cupy.ndarray, np.ndarray):  # the emulation's CuPy: a view, same memory
            return v.view(cupy.ndarray)
        return cupy.asarray(v)
elif BACKEND != "cpu":
    raise SystemExit(f"unknown backend {BACKEND!r} (cpu or cuda)")


def on_backend(op_name, builder):
    """The builder whose op gets its NumPy array arguments on BACKEND (converted at the call, so
    the logged description shows them as drawn). The hypothesis test in fuzz() stays the same
    function on both backends: derandomized, it draws the same calls for both."""
    if BACKEND == "cpu":
        return op_name, builder

    def on_device(draw):
        fn, args, kw, arr_keys, scal_keys = builder(draw)

        def call(*a, **k):
            return fn(*map(to_backend, a), **{n: to_backend(v) for n, v in k.items()})
        return call, args, kw, arr_keys, scal_keys
    return f"[{BACKEND}] {op_name}", on_device


def mutate_array(draw, a):
    """A broken version of array argument a."""
    kind = draw(st.sampled_from(["dtype", "other_float", "ndim+", "ndim-", "shape", "empty",
                                 "huge", "noncontig", "reversed", "readonly", "list", "scalar",
                                 "none", "zero_stride", "f_order"]))
    if a is None or not isinstance(a, np.ndarray) or a.size > 4096:
        a = np.zeros((2, 3), np.float32)
    if kind == "dtype":
        return a.astype(draw(st.sampled_from(DTYPES)))
    if kind == "other_float":
        return a.astype(np.float64 if a.dtype == np.float32 else np.float32)
    if kind == "ndim+":
        return a[..., None]
    if kind == "ndim-":
        return a.reshape(-1) if a.ndim > 1 else np.float32(1.0)
    if kind in ("shape", "empty", "huge"):
        if a.ndim == 0:
            return a
        shape = list(a.shape)
        ax = draw(st.integers(0, a.ndim - 1))
        if kind == "shape":
            shape[ax] = max(shape[ax] + draw(st.sampled_from([-1, 1, 2])), 0)
            return np.zeros(shape, a.dtype)
        if kind == "empty":
            shape[ax] = 0
            return np.zeros(shape, a.dtype)
        # a zero-stride view with one (or every) axis huge: costs no memory
        if draw(st.booleans()):
            shape[ax] = draw(st.sampled_from(HUGE))
        else:
            shape = [draw(st.sampled_from(HUGE)) for _ in shape]
        try:
            return np.lib.stride_tricks.as_strided(np.zeros(1, a.dtype), shape=shape,
                                                   strides=[0] * len(shape), writeable=False)
        except ValueError:   # numpy refuses sizes past its own limits
            return a
    if kind == "noncontig":
        if a.ndim == 0 or a.size == 0:
            return a
        big = np.repeat(a, 2, axis=-1)
        return big[..., ::2]
    if kind == "reversed":
        return a[::-1] if a.ndim else a
    if kind == "readonly":
        b = a.copy()
        b.flags.writeable = False
        return b
    if kind == "zero_stride":
        if a.ndim == 0:
            return a
        return np.broadcast_to(a.reshape(-1)[:1] if a.size else np.zeros(1, a.dtype), a.shape)
    if kind == "f_order":
        return np.asfortranarray(a)
    if kind == "list":
        return a.tolist()
    if kind == "scalar":
        return draw(st.sampled_from([0, 1.0, "x"]))
    return None


def fuzz(op_name, builder):
    """Registers a hypothesis test: builder(draw) -> (fn, args, kwargs, array_keys, scalar_keys)."""
    op_name, builder = on_backend(op_name, builder)

    @settings(derandomize=True, deadline=None, max_examples=int(os.environ.get("FUZZ_EXAMPLES", 60)),
              database=None, suppress_health_check=list(HealthCheck))
    @given(st.data())
    def run(data):
        global calls
        draw = data.draw
        fn, args, kw, arr_keys, scal_keys = builder(draw)
        args = list(args)
        n_mut = draw(st.integers(1, 2))
        for _ in range(n_mut):
            pick = draw(st.sampled_from(arr_keys + scal_keys))
            if pick in arr_keys:
                if isinstance(pick, int):
                    args[pick] = mutate_array(draw, args[pick])
                else:
                    kw[pick] = mutate_array(draw, kw.get(pick))
            else:
                val = draw(st.sampled_from(WEIRD_SCALARS))
                if isinstance(pick, int):
                    args[pick] = val
                else:
                    kw[pick] = val
        desc = f"{op_name}(" + ", ".join(
            [describe(a) for a in args] + [f"{k}={describe(v)}" for k, v in kw.items()]) + ")"
        with open(LOG, "w") as f:
            f.write(desc + "\n")
        calls += 1
        try:
            fn(*args, **kw)
        except CLEAN:
            pass
        except Exception as e:  # unclean: not a crash, but not the documented errors either
            failures.append(f"{desc}\n  -> {type(e).__name__}: {e}")

    run()


def describe(v):
    if isinstance(v, np.ndarray):
        return (f"array(shape={v.shape}, dtype={v.dtype}, strides={v.strides}, "
                f"writeable={v.flags.writeable})")
    if isinstance(v, list):
        return f"list(len={len(v)})"
    return repr(v)


def f32(draw, *shape):
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    return np.random.default_rng(0).standard_normal(shape).astype(dtype)


def small(draw, lo=1, hi=4):
    return draw(st.integers(lo, hi))


# ----------------------------------------------------------------- families
def gemm_family():
    def gemm(draw):
        m, n, k = small(draw), small(draw), small(draw)
        dt = draw(st.sampled_from([np.float32, np.float64]))
        a = np.ones((m, k), dt)
        b = np.ones((k, n), dt)
        kw = {"c": np.ones((m, n), dt), "alpha": 1.0, "beta": 0.5, "trans_a": False,
              "trans_b": False, "out": draw(st.sampled_from([None, np.zeros((m, n), dt)]))}
        return ops.gemm, (a, b), kw, [0, 1, "c", "out"], ["alpha", "beta", "trans_a", "trans_b"]

    def matmul(draw):
        m, n, k = small(draw), small(draw), small(draw)
        return ops.matmul_kernel, (f32(draw, m, k), f32(draw, k, n)), {}, [0, 1], []

    def linear(draw):
        m, n, k = small(draw), small(draw), small(draw)
        dt = draw(st.sampled_from([np.float32, np.float64]))
        kw = {"bias": np.ones(n, dt), "activation": "relu", "out": None}
        return (ops.linear, (np.ones((m, k), dt), np.ones((k, n), dt)), kw, [0, 1, "bias", "out"],
                ["activation"])

    def gemm_aliasing(draw):
        # out overlapping its inputs in odd ways
        n = small(draw, 2, 5)
        base = np.ones((n, n), draw(st.sampled_from([np.float32, np.float64])))
        out = draw(st.sampled_from([base, base.T, base[::-1], base[:, ::-1]]))
        return ops.gemm, (base, base), {"c": base, "beta": 1.0, "out": out}, [0, 1, "c", "out"], \
            ["beta"]

    fuzz("gemm", gemm)
    fuzz("matmul", matmul)
    fuzz("linear", linear)
    fuzz("gemm(aliasing)", gemm_aliasing)


def conv_family():
    def conv(draw):
        N, H, W, C, F = small(draw, 0, 2), small(draw, 1, 6), small(draw, 1, 6), small(draw), small(draw)
        dt = draw(st.sampled_from([np.float32, np.float64]))
        x = np.ones((N, H, W, C), dt)
        w = np.ones((small(draw, 1, 3), small(draw, 1, 3), C, F), dt)
        kw = {"strides": 1, "padding": draw(st.sampled_from(["valid", "same", 1])),
              "dilation_rate": 1}
        if draw(st.booleans()):
            return ops.conv2d, (x, w, np.ones(F, dt)), kw, [0, 1, 2], \
                ["strides", "padding", "dilation_rate", "activation"]
        try:
            y = ops.conv2d(x, w, None, **kw)
        except ValueError:
            y = np.ones((N, 1, 1, F), dt)
        kw["need_dx"] = draw(st.booleans())
        return ops.conv2d_backward, (y, x, w), kw, [0, 1, 2], \
            ["strides", "padding", "dilation_rate", "need_dx"]

    fuzz("conv2d", conv)


def pool_family():
    def pool(draw):
        N, H, W, C = small(draw, 0, 2), small(draw, 1, 6), small(draw, 1, 6), small(draw)
        dt = draw(st.sampled_from([np.float32, np.float64]))
        x = np.ones((N, H, W, C), dt)
        kind = draw(st.sampled_from(["max", "avg", "gap"]))
        if kind == "gap":
            if draw(st.booleans()):
                return ops.global_avg_pool2d, (x,), {}, [0], []
            return ops.global_avg_pool2d_backward, (np.ones((N, C), dt), x), {}, [0, 1], []
        fwd = ops.max_pool2d if kind == "max" else ops.avg_pool2d
        bwd = ops.max_pool2d_backward if kind == "max" else ops.avg_pool2d_backward
        kw = {"pool_size": small(draw, 1, 3), "strides": None,
              "padding": draw(st.sampled_from(["valid", "same"]))}
        if draw(st.booleans()):
            return fwd, (x,), kw, [0], ["pool_size", "strides", "padding"]
        try:
            y = fwd(x, **kw)
        except ValueError:
            y = np.ones((N, 1, 1, C), dt)
        return bwd, (y, x), kw, [0, 1], ["pool_size", "strides", "padding"]

    fuzz("pool", pool)


def rnn_family():
    def rnn(draw):
        cell = draw(st.sampled_from(["simple_rnn", "lstm", "gru"]))
        N, T, I, U = small(draw, 0, 3), small(draw), small(draw), small(draw)
        G = {"simple_rnn": 1, "lstm": 4, "gru": 3}[cell]
        dt = draw(st.sampled_from([np.float32, np.float64]))
        r = np.random.default_rng(0)
        x, h0, c0 = r.random((N, T, I)).astype(dt), np.zeros((N, U), dt), np.zeros((N, U), dt)
        k, rk = r.random((I, G * U)).astype(dt), r.random((U, G * U)).astype(dt)
        b = np.zeros((2, G * U) if cell == "gru" else (G * U,), dt)
        back = draw(st.booleans())
        dhs = np.ones((N, T, U) if draw(st.booleans()) else (N, U), dt)
        if cell == "simple_rnn":
            if not back:
                return ops.simple_rnn, (x, h0, k, rk, b), {"activation": "tanh"}, [0, 1, 2, 3, 4], \
                    ["activation"]
            hs = ops.simple_rnn(x, h0, k, rk, b)
            return ops.simple_rnn_backward, (dhs, x, h0, k, rk, hs), {}, [0, 1, 2, 3, 4, 5], []
        if cell == "lstm":
            if not back:
                return ops.lstm, (x, h0, c0, k, rk, b), {"return_cache": True}, list(range(6)), []
            hs, cT, cache = ops.lstm(x, h0, c0, k, rk, b, return_cache=True)
            return ops.lstm_backward, (dhs, np.ones_like(cT), x, h0, c0, k, rk, hs, cache), {}, \
                list(range(9)), []
        if not back:
            return ops.gru, (x, h0, k, rk, b), {"return_cache": True}, list(range(5)), []
        hs, cache = ops.gru(x, h0, k, rk, b, return_cache=True)
        return ops.gru_backward, (dhs, x, h0, k, rk, b, hs, cache), {}, list(range(8)), []

    fuzz("rnn", rnn)


def nn_family():
    def act(draw):
        x = f32(draw, small(draw, 0, 3), small(draw))
        name = draw(st.sampled_from(["relu", "sigmoid", "tanh", "softmax", "log_softmax"]))
        fn = getattr(ops, name + "_kernel")
        if name in ("softmax", "log_softmax"):
            return fn, (x,), {"axis": -1, "out": None}, [0, "out"], ["axis"]
        return fn, (x,), {"out": None}, [0, "out"], []

    def act_back(draw):
        x = f32(draw, small(draw, 0, 3), small(draw))
        name = draw(st.sampled_from(["relu", "sigmoid", "tanh", "softmax", "log_softmax"]))
        if name in ("softmax", "log_softmax"):
            fn = getattr(ops, name + "_backward")
            return fn, (x, x.copy()), {"axis": -1, "out": None}, [0, 1, "out"], ["axis"]
        return ops.activation_backward, (x, x.copy(), name), {"out": None}, [0, 1, "out"], [2]

    def dropout(draw):
        x = f32(draw, small(draw, 0, 3), small(draw))
        fn = draw(st.sampled_from([ops.dropout, ops.dropout_backward]))
        return fn, (x, 0.5, 7), {"out": None}, [0, "out"], [1, 2]

    def losses(draw):
        n, c = small(draw, 1, 4), small(draw, 1, 5)
        logits = f32(draw, n, c)
        name = draw(st.sampled_from(["sparse", "softmax_cross_entropy", "sigmoid_cross_entropy",
                                     "categorical_crossentropy", "binary_crossentropy",
                                     "mean_squared_error", "mean_absolute_error"]))
        if name == "sparse":
            labels = np.arange(n) % c
            if draw(st.booleans()):
                labels = labels.astype(draw(st.sampled_from([np.int32, np.int64, np.uint8, np.int8])))
                labels[draw(st.integers(0, n - 1))] = draw(st.sampled_from([-1, c, 127, 0]))
            return ops.sparse_softmax_cross_entropy, (logits, labels), {"out": None}, \
                [0, 1, "out"], []
        fn = getattr(ops, name + "_kernel" if name.endswith("crossentropy") else name)
        return fn, (logits, np.abs(logits.copy()) / 10), {"out": None}, [0, 1, "out"], []

    def optim(draw):
        n = small(draw, 1, 6)
        p, g, m, v = (f32(draw, n) for _ in range(4))
        g, m, v = g.astype(p.dtype), m.astype(p.dtype), np.abs(v).astype(p.dtype)
        kind = draw(st.sampled_from(["sgd", "adam", "rmsprop"]))
        if kind == "sgd":
            return ops.sgd_update, (p, g, m), {"learning_rate": 0.1, "momentum": 0.9,
                                               "nesterov": False, "weight_decay": 0.0}, \
                [0, 1, 2], ["learning_rate", "momentum", "nesterov", "weight_decay"]
        if kind == "adam":
            return ops.adam_update, (p, g, m, v), {"step": 1, "learning_rate": 0.01}, \
                [0, 1, 2, 3], ["learning_rate", "beta_1", "beta_2", "epsilon"]
        return ops.rmsprop_update, (p, g, v, m.copy()), {"momentum": 0.5}, [0, 1, 2, 3], \
            ["learning_rate", "rho", "momentum", "epsilon"]

    def batchnorm(draw):
        x = f32(draw, small(draw, 0, 3), small(draw))
        v = np.ones(x.shape[-1], x.dtype)
        kw = {"axis": draw(st.sampled_from([-1, 0])), "epsilon": 1e-3}
        kind = draw(st.sampled_from(["forward", "inference", "backward", "layer",
                                     "layer_backward"]))
        if kind == "layer":
            return ops.layer_norm, (x, v.copy(), v.copy()), \
                {"epsilon": 1e-3, "rms_scaling": False, "out": None}, [0, 1, 2, "out"], \
                ["epsilon", "rms_scaling"]
        if kind == "layer_backward":
            rows = np.ones(x.size // x.shape[-1], x.dtype)
            return ops.layer_norm_backward, (x.copy(), x, rows, rows.copy(), v.copy()), \
                {"rms_scaling": False, "need_dx": True, "out": None}, [0, 1, 2, 3, 4, "out"], \
                ["rms_scaling", "need_dx"]
        if kind == "forward":
            return ops.batch_norm, (x, v.copy(), v.copy()), {**kw, "out": None}, \
                [0, 1, 2, "out"], ["axis", "epsilon"]
        if kind == "inference":
            return ops.batch_norm_inference, (x, v.copy(), v.copy(), v.copy(), v.copy()), \
                {**kw, "out": None}, [0, 1, 2, 3, 4, "out"], ["axis", "epsilon"]
        return ops.batch_norm_backward, (x.copy(), x, v.copy(), v.copy(), v.copy()), \
            {**kw, "batch_stats": True, "need_dx": True}, [0, 1, 2, 3, 4], \
            ["axis", "epsilon", "batch_stats", "need_dx"]

    for name, b in [("activations", act), ("activation_backward", act_back),
                    ("dropout", dropout), ("losses", losses), ("optimizers", optim),
                    ("batchnorm", batchnorm)]:
        fuzz(name, b)


FAMILIES = {"gemm": gemm_family, "conv": conv_family, "pool": pool_family, "rnn": rnn_family,
            "nn": nn_family}

if __name__ == "__main__":
    family, LOG = sys.argv[1], sys.argv[2]
    FAMILIES[family]()
    print(f"{family} [{BACKEND}]: calls: {calls}, unclean exceptions: {len(failures)}")
    for f in failures[:30]:
        print(f)
    sys.exit(1 if failures else 0)
