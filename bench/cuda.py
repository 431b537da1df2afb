"""GPU benchmark: fastdl's CUDA kernels on CuPy arrays against CuPy (cuBLAS).

    python -c "from fastdl.bench import cuda, _common; ..."   (or a `cuda` suite in __main__)

GEMM in GFLOP/s (FP32 tiled kernel, TF32 tensor cores, cuBLAS through
cupy.matmul), conv2d forward and an LSTM forward pass. Every timing synchronises
CuPy's current stream after each call. Without a usable GPU it returns one table
saying why.
"""
import numpy as np

from ._common import Table, timeit


def _sync_timer(cp, fn, quick):
    stream = cp.cuda.get_current_stream()

    def call():
        fn()
        stream.synchronize()

    return timeit(call, warmup=2, repeat=3 if quick else 7, min_time=0.02 if quick else 0.1)


def run(opts):
    import fastdl
    if not fastdl.cuda.is_available():
        t = Table("CUDA kernels", ["status"])
        t.rows.append({"status": "skipped: " + (fastdl.ops._cuda_reason() or "no GPU")})
        return [t]
    import cupy as cp
    cu = fastdl.ops._cuda_module()
    quick = getattr(opts, "quick", False)
    rng = np.random.default_rng(0)
    tf32_before = fastdl.cuda.get_tf32()

    gemm = Table("GEMM float32 on the GPU (GFLOP/s)",
                 ["m=n=k", "fastdl fp32", "fastdl tf32", "cupy (cuBLAS)", "fp32 / cuBLAS"])
    sizes = [512, 2048] if quick else [256, 512, 1024, 2048, 4096]
    try:
        for s in sizes:
            a = cp.asarray(rng.standard_normal((s, s), dtype=np.float32))
            b = cp.asarray(rng.standard_normal((s, s), dtype=np.float32))
            flops = 2.0 * s * s * s
            row = {"m=n=k": s}
            for key, flag in (("fastdl fp32", False), ("fastdl tf32", True)):
                fastdl.cuda.set_tf32(flag)
                sec = _sync_timer(cp, lambda: cu.gemm(a, b, None, 1.0, 0.0, False, False, None),
                                  quick)
                row[key] = flops / sec / 1e9
            row["cupy (cuBLAS)"] = flops / _sync_timer(cp, lambda: cp.matmul(a, b), quick) / 1e9
            row["fp32 / cuBLAS"] = row["fastdl fp32"] / row["cupy (cuBLAS)"]
            gemm.rows.append(row)
    finally:
        fastdl.cuda.set_tf32(tf32_before)
    gemm.notes.append("cuBLAS may use TF32 itself depending on CuPy's settings "
                      "(CUPY_TF32); the ratio is against whatever it chose.")

    conv = Table("conv2d forward float32 on the GPU", ["shape", "kernel", "ms", "GFLOP/s"])
    cases = [((32, 32, 32, 64), (3, 3, 64, 64)), ((32, 16, 16, 128), (3, 3, 128, 128)),
             ((64, 28, 28, 32), (5, 5, 32, 64))]
    for xs, ws in cases[:2] if quick else cases:
        x = cp.asarray(rng.standard_normal(xs, dtype=np.float32))
        w = cp.asarray(rng.standard_normal(ws, dtype=np.float32))
        sec = _sync_timer(cp, lambda: cu.conv2d(x, w, None, 1, "same", 1), quick)
        flops = 2.0 * xs[0] * xs[1] * xs[2] * ws[0] * ws[1] * ws[2] * ws[3]
        conv.rows.append({"shape": str(xs), "kernel": str(ws), "ms": sec * 1e3,
                          "GFLOP/s": flops / sec / 1e9})

    rnn = Table("LSTM forward float32 on the GPU", ["N, T, I, U", "ms", "steps/s"])
    for N, T, I, U in [(32, 50, 64, 128)] if quick else [(32, 50, 64, 128), (128, 100, 128, 256)]:
        x = cp.asarray(rng.standard_normal((N, T, I), dtype=np.float32))
        h0 = cp.zeros((N, U), np.float32)
        k = cp.asarray(rng.standard_normal((I, 4 * U), dtype=np.float32) * 0.1)
        rk = cp.asarray(rng.standard_normal((U, 4 * U), dtype=np.float32) * 0.1)
        b = cp.zeros(4 * U, np.float32)
        sec = _sync_timer(cp, lambda: cu.lstm(x, h0, h0, k, rk, b, False), quick)
        rnn.rows.append({"N, T, I, U": f"{N}, {T}, {I}, {U}", "ms": sec * 1e3, "steps/s": T / sec})
    return [gemm, conv, rnn]
