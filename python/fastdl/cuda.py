"""fastdl.cuda: is the GPU path usable, and its switches."""
from . import ops


def is_available():
    """True when fastdl's CUDA module, a driver, a GPU and CuPy are all usable. Never raises."""
    try:
        return ops._cuda_module() is not None
    except Exception:
        return False


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
