"""GPU: fastdl's CUDA kernels against cuBLAS (through CuPy) and cuDNN (through PyTorch).

    python -m bench cuda [--cuda-parts gemm,conv,rnn,train] [--quick] [--json FILE]

Every row compares fastdl with a reference on the same GPU, and where there is a target says
whether it is met. "speed vs ref" is the reference's time over fastdl's (above 1: fastdl is
faster). Parts, each one or more tables (--cuda-parts picks some, so that a driver script can
run each in its own process under its own time limit):

  gemm   sgemm C = A @ B into a preallocated C, n = 4096 and the DL shapes of the CPU gemm
         suite: fastdl's FP32 kernel against cuBLAS FP32, and fastdl's TF32 kernel
         (fastdl.cuda.set_tf32(True)) against cuBLAS TF32 (CuPy's TF32 compute type; PyTorch's
         cuBLAS call when CuPy's switch is not reachable). Targets at n = 4096: FP32 >= 0.8x
         cuBLAS, TF32 >= 0.6x.
  conv   conv2d forward + backward (dw, db, and dx except for the first layer) on the layers
         of the CPU conv suite against cuDNN through PyTorch (channels_last, cudnn.benchmark),
         FP32 on both sides. Target: >= 0.5x cuDNN. The forward alone, and both passes with
         TF32 on both sides, for information.
  rnn    LSTM forward + backward through the whole sequence (dx and every weight gradient)
         against torch.nn.LSTM (cuDNN), FP32; the forward alone for information.
  train  one epoch of the Keras MNIST convnet on Fashion-MNIST (60,000 images, batch 64, Adam):
         fastdl with model.to("cuda") against PyTorch on the same GPU (FP32, each batch copied
         from the host on both sides), and against fastdl on the CPU. Targets: faster than
         fastdl's CPU epoch, at most 2x PyTorch's time. Fashion-MNIST is never downloaded:
         its IDX files are looked for in $FASHION_MNIST_DIR, the checkout's data/fashion-mnist/
         or data/, then where fastdl.datasets looks; without them the row says so.

Timing: samples of back-to-back calls between two device synchronisations, fastdl and the
reference interleaved, medians; the first calls (kernel compilation, cuDNN's autotuning) are
not timed. Without a usable GPU the suite returns one row saying why.
"""
import statistics
import sys
import time

import numpy as np

from . import _common
from ._common import Table

PARTS = _common.CUDA_PARTS
COLUMNS = ["check", "fastdl", "reference", "speed vs ref", "target", "result"]

GEMM_N = 4096                           # the square sgemm with targets
RNN_EXTRA = [(128, 50, 256, 512)]       # N, T, I, U: an LSTM size that fills a GPU better
GEMM_TARGETS = {"FP32": 0.8, "TF32": 0.6}
CONV_TARGET = 0.5
EPOCH_VS_TORCH = 0.5      # fastdl's GPU epoch at most 2x PyTorch's time
EPOCH_VS_CPU = 1.0        # strictly faster than fastdl's CPU epoch
MIN_EPOCH_ACC = 0.8       # a GPU epoch that trains badly is no result


def _table(title):
    return Table(title, list(COLUMNS))


def _add(table, check, fastdl=None, reference=None, ratio=None, minimum=None, strict=False,
         result=None):
    """One row; target and result from ratio and minimum (ratio must exceed it when strict)."""
    target = None
    if minimum is not None:
        target = f"> {minimum:g}" if strict else f">= {minimum:g}"
        if result is None and ratio is not None:
            ok = ratio > minimum if strict else ratio >= minimum
            result = "met" if ok else "missed"
    if result is None and reference is not None and ratio is None and minimum is not None:
        result = "no reference"
    table.add(check=check, fastdl=fastdl, reference=reference, **{"speed vs ref": ratio},
              target=target, result=result)


def _ms(sec):
    return None if sec is None else f"{sec * 1e3:.3g} ms"


def _rate(flops, sec):
    r = flops / sec
    return f"{r / 1e12:.3g} TFLOP/s" if r >= 1e12 else f"{r / 1e9:.3g} GFLOP/s"


def _ratio(t_ref, t_fastdl):
    return None if t_ref is None or t_fastdl is None or t_fastdl <= 0 else t_ref / t_fastdl


class _Ctx:
    """What every part needs: fastdl, CuPy, PyTorch on the GPU (or None and why), a timer."""

    def __init__(self, opts):
        import cupy as cp
        import fastdl
        self.fastdl, self.cp = fastdl, cp
        self.quick = bool(getattr(opts, "quick", False))
        self.threads = max(getattr(opts, "thread_list", None) or [fastdl.ops.available_cores()])
        torch = _common.torch_or_none()
        self.torch_why = None
        if torch is None:
            self.torch_why = "PyTorch is not installed"
        elif not torch.cuda.is_available():
            self.torch_why = "PyTorch sees no CUDA device"
            torch = None
        self.torch = torch
        try:
            self.sync = cp.cuda.Device().synchronize       # every stream: CuPy's and PyTorch's
        except Exception:
            self.sync = cp.cuda.get_current_stream().synchronize
        self.repeat = 3 if self.quick else 7
        self.min_time = 0.02 if self.quick else 0.05

    def measure(self, fns):
        """Median seconds per call of each fn, samples interleaved."""
        inner = []
        for fn in fns:
            fn()
            fn()
            self.sync()
            t0 = time.perf_counter()
            fn()
            self.sync()
            one = max(time.perf_counter() - t0, 1e-7)
            inner.append(max(1, min(10000, int(self.min_time / one))))
        samples = [[] for _ in fns]
        for _ in range(self.repeat):
            for i, fn in enumerate(fns):
                self.sync()
                t0 = time.perf_counter()
                for _ in range(inner[i]):
                    fn()
                self.sync()
                samples[i].append((time.perf_counter() - t0) / inner[i])
        return [statistics.median(s) for s in samples]

    def device_note(self):
        parts = []
        try:
            props = self.cp.cuda.runtime.getDeviceProperties(0)
            name = props.get("name", b"?")
            name = name.decode() if isinstance(name, bytes) else str(name)
            parts.append(f"GPU: {name} (sm_{props.get('major', '?')}{props.get('minor', '?')})")
        except Exception:
            pass
        parts.append(f"CuPy {getattr(self.cp, '__version__', '?')}")
        if self.torch is not None:
            cudnn = self.torch.backends.cudnn.version() if self.torch.backends.cudnn.is_available() else None
            parts.append(f"PyTorch {self.torch.__version__} (CUDA {self.torch.version.cuda}, "
                         f"cuDNN {cudnn})")
        else:
            parts.append(f"no PyTorch reference: {self.torch_why}")
        return "; ".join(parts) + "."


class _TorchFlags:
    """Set PyTorch's cuDNN/cuBLAS switches inside a with block, restored after."""

    def __init__(self, torch, tf32, benchmark=True):
        self.torch, self.tf32, self.benchmark = torch, tf32, benchmark

    old = None

    def __enter__(self):
        if self.torch is not None:
            b = self.torch.backends
            try:
                self.old = (b.cudnn.allow_tf32, b.cudnn.benchmark, b.cuda.matmul.allow_tf32)
                b.cudnn.allow_tf32 = self.tf32
                b.cudnn.benchmark = self.benchmark
                b.cuda.matmul.allow_tf32 = self.tf32
            except Exception as e:   # a PyTorch that refuses the switches: time it as it is
                print(f"bench cuda: could not set PyTorch's TF32 switches ({type(e).__name__}: "
                      f"{e}); its default precision is timed", file=sys.stderr)
        return self

    def __exit__(self, *exc):
        if self.torch is not None and self.old is not None:
            b = self.torch.backends
            try:
                b.cudnn.allow_tf32, b.cudnn.benchmark, b.cuda.matmul.allow_tf32 = self.old
            except Exception:
                pass


# ------------------------------------------------------------------ gemm
def _cupy_tf32_switch(cp):
    """(set(on), None) switching CuPy's float32 matmul between cuBLAS TF32 and plain FP32, or
    (None, why). The switch is CuPy's compute type (what CUPY_TF32=1 sets at start-up)."""
    try:
        from cupy._core import _routines_linalg as rl
        before = rl.get_compute_type(np.float32)
        tf32, default = rl.COMPUTE_TYPE_TF32, rl.COMPUTE_TYPE_DEFAULT

        def switch(on):
            rl.set_compute_type(np.float32, tf32 if on else default)
        switch.restore = lambda: rl.set_compute_type(np.float32, before)
        return switch, None
    except Exception as e:
        return None, f"CuPy's TF32 compute type is not reachable ({type(e).__name__}: {e})"


def _gemm(ctx):
    from fastdl import ops
    from .gemm import DL_SHAPES
    cp, fastdl, torch = ctx.cp, ctx.fastdl, ctx.torch
    table = _table("sgemm on the GPU: fastdl against cuBLAS")
    switch, why = _cupy_tf32_switch(cp)
    notes = []
    rng = np.random.default_rng(0)
    tf32_before = fastdl.cuda.get_tf32()
    try:
        for (m, k, n) in [(GEMM_N,) * 3] + list(DL_SHAPES):
            a = cp.asarray(rng.standard_normal((m, k), dtype=np.float32))
            b = cp.asarray(rng.standard_normal((k, n), dtype=np.float32))
            c_f = cp.empty((m, n), np.float32)
            c_r = cp.empty((m, n), np.float32)
            flops = 2.0 * m * n * k
            big = (m, k, n) == (GEMM_N,) * 3
            results = {}
            for math in ("FP32", "TF32"):
                on = math == "TF32"
                fastdl.cuda.set_tf32(on)
                ref_name, ref = "cuBLAS", (lambda: cp.matmul(a, b, out=c_r))
                if switch is not None:
                    switch(on)
                elif on and torch is not None:
                    ta, tb = torch.as_tensor(a, device="cuda"), torch.as_tensor(b, device="cuda")
                    tc = torch.empty((m, n), device="cuda")
                    ref_name, ref = "cuBLAS via PyTorch", (lambda: torch.mm(ta, tb, out=tc))
                elif on:
                    ref = None
                with _TorchFlags(torch, tf32=on):
                    if ref is None:
                        (t_f,) = ctx.measure([lambda: ops.matmul_kernel(a, b, out=c_f)])
                        t_r = None
                    else:
                        t_f, t_r = ctx.measure([lambda: ops.matmul_kernel(a, b, out=c_f), ref])
                if big:
                    results[math] = (c_f.copy(), c_r.copy() if ref is not None else None)
                _add(table, f"sgemm {m}x{k}x{n} {math}", _rate(flops, t_f),
                     None if t_r is None else f"{ref_name} {math} {_rate(flops, t_r)}",
                     _ratio(t_r, t_f), GEMM_TARGETS[math] if big else None,
                     result=None if t_r is not None else (f"no reference: {why}" if big else None))
            if results:
                notes.append(_gemm_agreement(cp, results))
    finally:
        fastdl.cuda.set_tf32(tf32_before)
        if switch is not None:
            switch.restore()
    table.notes.append(ctx.device_note())
    table.notes.append(f"Targets at n = {GEMM_N} only; the small DL shapes (Dense layers at batch 32, "
                       "a convolution as im2col) are bound by launch latency and shown for "
                       "information. TF32 on both sides is the same 10-bit-mantissa product.")
    table.notes.extend(n for n in notes if n)
    if why and switch is None:
        table.notes.append(why)
    yield table


def _gemm_agreement(cp, results):
    """A note: how far fastdl's 4096 products are from cuBLAS's (and whether TF32 took effect)."""
    def rel(x, y):
        return float(cp.abs(x - y).max() / max(float(cp.abs(y).max()), 1e-30))
    out = []
    f32, r32 = results.get("FP32", (None, None))
    f_tf, r_tf = results.get("TF32", (None, None))
    if f32 is not None and r32 is not None:
        out.append(f"fastdl FP32 vs cuBLAS FP32: max |diff| / max |C| = {rel(f32, r32):.1e}")
    if f_tf is not None and f32 is not None:
        out.append(f"fastdl TF32 vs its FP32: {rel(f_tf, f32):.1e}")
    if r_tf is not None and r32 is not None:
        d = rel(r_tf, r32)
        out.append(f"cuBLAS TF32 vs its FP32: {d:.1e}"
                   + (" (identical: the TF32 switch did not take effect)" if d == 0 else ""))
    return (f"At n = {GEMM_N}: " + "; ".join(out) + ".") if out else None


# ------------------------------------------------------------------ conv
def _conv(ctx):
    from fastdl import ops
    from .conv import LAYERS, _torch_case
    cp, fastdl, torch = ctx.cp, ctx.fastdl, ctx.torch
    rng = np.random.default_rng(0)
    maths = ("FP32",) if ctx.quick else ("FP32", "TF32")
    table = _table("conv2d on the GPU: fastdl against cuDNN (PyTorch, channels_last)")
    tf32_before = fastdl.cuda.get_tf32()
    try:
        for name, n, (h, w_, c), f, k, padding, first in LAYERS:
            oh, ow = (h, w_) if padding == "same" else (h - k + 1, w_ - k + 1)
            x = rng.standard_normal((n, h, w_, c)).astype(np.float32)
            w = (rng.standard_normal((k, k, c, f)) / np.sqrt(k * k * c)).astype(np.float32)
            b = rng.standard_normal(f).astype(np.float32)
            dy = rng.standard_normal((n, oh, ow, f)).astype(np.float32)
            xg, wg, bg, dyg = (cp.asarray(v) for v in (x, w, b, dy))

            def fwd():
                ops.conv2d(xg, wg, bg, padding=padding)

            def both():
                ops.conv2d(xg, wg, bg, padding=padding)
                ops.conv2d_backward(dyg, xg, wg, padding=padding, need_dx=not first)

            tcase = (_torch_case(torch, x, w, b, dy, (k // 2) if padding == "same" else 0, first,
                                 device="cuda") if torch is not None else None)
            for math in maths:
                on = math == "TF32"
                fastdl.cuda.set_tf32(on)
                with _TorchFlags(torch, tf32=on):
                    for pname, ffn, tfn in (("fwd+bwd", both, tcase and tcase[2]),
                                            ("fwd", fwd, tcase and tcase[0])):
                        if ctx.quick and pname == "fwd":
                            continue
                        times = ctx.measure([ffn] + ([tfn] if tfn else []))
                        t_f, t_r = times[0], (times[1] if tfn else None)
                        target = CONV_TARGET if (pname == "fwd+bwd" and math == "FP32") else None
                        _add(table, f"conv {pname} {name} {math}", _ms(t_f),
                             f"cuDNN {_ms(t_r)}" if t_r else ctx.torch_why, _ratio(t_r, t_f),
                             target)
    finally:
        fastdl.cuda.set_tf32(tf32_before)
    table.notes.append(ctx.device_note())
    table.notes.append("fwd+bwd: the forward, then dw, db and dx (no dx for the first layer, "
                       "whose input is the data: need_dx=False / requires_grad=False). FP32 rows: "
                       "TF32 off on both sides (torch.backends.cudnn.allow_tf32 = False); TF32 rows: "
                       "fastdl.cuda.set_tf32(True) and cuDNN's TF32 allowed.")
    yield table


# ------------------------------------------------------------------ rnn
def _rnn(ctx):
    from fastdl import ops
    from .rnn import SHAPES
    cp, fastdl, torch = ctx.cp, ctx.fastdl, ctx.torch
    shapes = list(SHAPES[:1] if ctx.quick else SHAPES) + ([] if ctx.quick else list(RNN_EXTRA))
    table = _table("LSTM on the GPU: fastdl against cuDNN (torch.nn.LSTM)")
    tf32_before = fastdl.cuda.get_tf32()
    fastdl.cuda.set_tf32(False)
    try:
        with _TorchFlags(torch, tf32=False):
            for (N, T, I, U) in shapes:
                rng = np.random.default_rng(0)
                x = rng.standard_normal((N, T, I), dtype=np.float32)
                h0 = np.zeros((N, U), np.float32)
                k = (rng.standard_normal((I, 4 * U), dtype=np.float32) / np.sqrt(I)).astype(np.float32)
                r = (rng.standard_normal((U, 4 * U), dtype=np.float32) / np.sqrt(U)).astype(np.float32)
                bias = np.zeros(4 * U, np.float32)
                dhs = rng.standard_normal((N, T, U), dtype=np.float32)
                xg, h0g, c0g, kg, rg, bg, dhsg = (cp.asarray(v) for v in (x, h0, h0, k, r, bias, dhs))

                def fwd():
                    ops.lstm(xg, h0g, c0g, kg, rg, bg)

                def both():
                    hs, _, cache = ops.lstm(xg, h0g, c0g, kg, rg, bg, return_cache=True)
                    ops.lstm_backward(dhsg, None, xg, h0g, c0g, kg, rg, hs, cache)

                tfns = _torch_lstm(torch, x, h0, dhs) if torch is not None else (None, None)
                label = f"N={N} T={T} I={I} U={U}"
                for pname, ffn, tfn in (("fwd+bwd", both, tfns[1]), ("fwd", fwd, tfns[0])):
                    times = ctx.measure([ffn] + ([tfn] if tfn else []))
                    t_f, t_r = times[0], (times[1] if tfn else None)
                    _add(table, f"LSTM {pname} {label} FP32", _ms(t_f),
                         f"cuDNN {_ms(t_r)}" if t_r else ctx.torch_why, _ratio(t_r, t_f))
    finally:
        fastdl.cuda.set_tf32(tf32_before)
    table.notes.append(ctx.device_note())
    table.notes.append("Whole sequences, batch-first, float32, TF32 off on both sides. fwd+bwd: "
                       "a training forward, then the gradients of x, of every weight and of the "
                       "bias for a gradient on every step's output; fwd: an inference forward "
                       "(PyTorch under no_grad). No target: for information.")
    yield table


def _torch_lstm(torch, x, h0, dhs):
    N, T, I = x.shape
    U = h0.shape[1]
    net = torch.nn.LSTM(I, U, batch_first=True).cuda()
    tx = torch.from_numpy(x).cuda()
    txg = tx.clone().requires_grad_(True)
    state = (torch.from_numpy(h0).cuda()[None], torch.from_numpy(h0).cuda()[None])
    tdhs = torch.from_numpy(dhs).cuda()
    params = list(net.parameters())

    def fwd():
        with torch.no_grad():
            net(tx, state)

    def both():
        for p in params:
            p.grad = None
        txg.grad = None
        out, _ = net(txg, state)
        out.backward(tdhs)

    return fwd, both


# ------------------------------------------------------------------ train
def _train(ctx):
    from . import train
    fastdl, torch = ctx.fastdl, ctx.torch
    where, why = train.find_fashion_mnist()
    table = _table("One convnet epoch on Fashion-MNIST: fastdl on the GPU")
    if where is None:
        _add(table, "convnet epoch", result=f"skipped: {why}")
        yield table
        return
    full = train.scaled_fashion_mnist(where)
    data = {k: (v[..., None] if k.startswith("x") else v) for k, v in full.items()}
    warm = {k: v[:2048] if k.endswith("train") else v[:1000] for k, v in data.items()}
    n_train, bs = len(data["x_train"]), 64

    def desc(res):
        return f"{res['fit_s']:.2f} s (test acc {res['acc']:.3f})"

    old_threads = fastdl.get_num_threads()
    fastdl.set_num_threads(ctx.threads)
    try:
        train._run_fastdl("convnet", warm, 1, bs, device="cuda")   # compiles CuPy's kernels
        gpu, _ = train._run_fastdl("convnet", data, 1, bs, device="cuda")
        low = gpu["acc"] < MIN_EPOCH_ACC
        with _TorchFlags(torch, tf32=False):
            if torch is not None:
                train._run_torch("convnet", warm, 1, bs, ctx.threads, device="cuda")
                ref, twhy = train._run_torch("convnet", data, 1, bs, ctx.threads, device="cuda")
            else:
                ref, twhy = None, ctx.torch_why
        ratio = _ratio(ref["fit_s"], gpu["fit_s"]) if ref else None
        result = None
        if low:
            result = f"missed: test accuracy {gpu['acc']:.3f} < {MIN_EPOCH_ACC}"
        _add(table, "convnet epoch, GPU: fastdl vs PyTorch", desc(gpu),
             f"PyTorch {desc(ref)}" if ref else twhy, ratio, EPOCH_VS_TORCH,
             result=result)
        table.notes.append(ctx.device_note())
        table.notes.append(f"Fashion-MNIST from {where}: {n_train} training images, pixels / 255, "
                           f"batch {bs}, one epoch of fit (Adam), after a warm-up fit on "
                           f"{len(warm['x_train'])} images; FP32 on both sides (fastdl's default; PyTorch with TF32 off). "
                           f"Target: fastdl's time at most 2x PyTorch's (speed vs ref >= 0.5).")
        yield table

        cpu_table = _table(f"One convnet epoch on Fashion-MNIST: fastdl's GPU against its CPU "
                           f"({ctx.threads} threads)")
        cpu, _ = train._run_fastdl("convnet", data, 1, bs)
        _add(cpu_table, "convnet epoch: fastdl GPU vs fastdl CPU", desc(gpu), f"CPU {desc(cpu)}",
             _ratio(cpu["fit_s"], gpu["fit_s"]), EPOCH_VS_CPU, strict=True)
        cpu_table.notes.append("Target: the GPU epoch faster than the CPU epoch (speed vs ref > 1).")
        yield cpu_table
    finally:
        fastdl.set_num_threads(old_threads)


PART_FUNCS = {"gemm": _gemm, "conv": _conv, "rnn": _rnn, "train": _train}


def unavailable_reason():
    """None when fastdl's CUDA path can run here, else why not."""
    import fastdl
    if fastdl.cuda.is_available():
        return None
    return fastdl.ops._cuda_reason() or "fastdl's CUDA kernels are not usable"


def run(opts):
    parts = getattr(opts, "cuda_parts", None) or list(PARTS)
    why = unavailable_reason()
    if why is not None:
        t = _table("CUDA check")
        for p in parts:
            _add(t, f"{p}", result=f"skipped: no GPU ({why})")
        yield t
        return
    ctx = _Ctx(opts)
    for p in parts:
        yield from PART_FUNCS[p](ctx)
