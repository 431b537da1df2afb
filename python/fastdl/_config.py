"""show_config, thread count and seed."""
import os

from . import _random, ops


def set_num_threads(n):
    """Threads every kernel may use (default: the cores this process may run on)."""
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"set_num_threads: n must be an int, got {type(n).__name__}")
    ops.set_num_threads(n)


def get_num_threads():
    return ops.get_num_threads()


def set_seed(seed):
    """Make weight init, shuffling and dropout repeatable (same threads => same bits)."""
    _random.set_seed(seed)


def show_config(print_=True):
    """Print and return how this fastdl was built and what it uses now."""
    from . import cuda

    info = ops.build_info()
    cfg = {
        "version": info["version"],
        "compiler": info["compiler"],
        "simd_compiled": info["simd_compiled"].split(","),
        "simd_supported": ops.supported_capabilities(),
        "simd_in_use": ops.get_capability(),
        "simd_forced_by_env": os.environ.get("FASTDL_CPU_CAPABILITY"),
        "openmp": info["openmp"] or "not available (built single-threaded)",
        "threads": ops.get_num_threads(),
        "cores_available": ops.available_cores(),
        "cuda": cuda.status(),
    }
    if print_:
        width = max(len(k) for k in cfg)
        print(f"fastdl {cfg['version']}")
        for k, v in cfg.items():
            if k == "cuda":
                for ck, cv in v.items():
                    print(f"  {('cuda.' + ck).ljust(width)} : {cv}")
            elif k != "version":
                if isinstance(v, list):
                    v = ", ".join(v)
                print(f"  {k.ljust(width)} : {v}")
    return cfg
