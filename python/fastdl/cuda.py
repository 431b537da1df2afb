"""fastdl.cuda: is the GPU path usable, and its switches."""
from . import ops

_tf32 = False


def is_available():
    """True when fastdl's CUDA module, a driver, a GPU and CuPy are all usable. Never raises."""
    try:
        return ops._cuda_module() is not None
    except Exception:
        return False


def set_tf32(flag):
    """Let float32 GEMMs on the GPU (and the conv/RNN kernels built on them) use
    TF32 tensor cores on sm_80+ GPUs: much faster, about 3 decimal digits per
    product instead of 7. Off by default. float64 is never affected."""
    global _tf32
    if not isinstance(flag, (bool, int)):
        raise TypeError(f"set_tf32: flag must be a bool, got {type(flag).__name__}")
    _tf32 = bool(flag)
    mod = _compiled_module()
    if mod is not None:
        mod.set_tf32(_tf32)


def get_tf32():
    """Whether TF32 tensor cores are allowed for float32 GEMMs (see set_tf32)."""
    return _tf32


def _compiled_module():
    # The CUDA module imports without a GPU or driver (the runtime is static);
    # it is simply absent when fastdl was built without CUDA.
    try:
        from . import _cuda
    except ImportError:
        return None
    return _cuda


def status():
    """Dict for show_config: compiled, device_count, reason (None when usable)."""
    compiled = not ops.build_info()["cuda_build_reason"]
    mod = None
    try:
        mod = ops._cuda_module()
    except Exception:
        pass
    count = 0
    if mod is not None:
        try:
            count = int(mod.device_count())
        except Exception:
            count = 0
    return {"compiled": compiled, "device_count": count,
            "reason": None if mod is not None else ops._cuda_reason()}
