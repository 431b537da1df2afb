import pytest

import fastdl
from conftest import run_python


def test_show_config_reports_everything(capsys):
    cfg = fastdl.show_config()
    out = capsys.readouterr().out
    assert cfg["version"] == fastdl.__version__
    assert cfg["simd_in_use"] in cfg["simd_supported"]
    assert "generic" in cfg["simd_compiled"]
    assert cfg["threads"] == fastdl.get_num_threads()
    assert set(cfg["cuda"]) == {"compiled", "device_count", "reason"}
    assert "simd_in_use" in out and "cuda.reason" in out


def test_threads_roundtrip():
    n = fastdl.get_num_threads()
    try:
        fastdl.set_num_threads(1)
        assert fastdl.get_num_threads() == 1
        with pytest.raises(ValueError):
            fastdl.set_num_threads(0)
        with pytest.raises(TypeError):
            fastdl.set_num_threads(1.5)
    finally:
        fastdl.set_num_threads(n)


def test_num_threads_env():
    r = run_python("import fastdl; print(fastdl.get_num_threads())", {"FASTDL_NUM_THREADS": "1"})
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "1"


def test_capability_env_forces_level():
    for level in fastdl.ops.supported_capabilities():
        r = run_python("import fastdl; print(fastdl.ops.get_capability())",
                       {"FASTDL_CPU_CAPABILITY": level})
        assert r.returncode == 0, r.stderr
        assert r.stdout.strip() == level


def test_capability_env_unknown_is_clear_error():
    r = run_python("import fastdl", {"FASTDL_CPU_CAPABILITY": "sse9"})
    assert r.returncode == 1
    assert "FASTDL_CPU_CAPABILITY" in r.stderr and "sse9" in r.stderr


def test_cuda_is_available_never_raises():
    assert fastdl.cuda.is_available() in (True, False)
    st = fastdl.cuda.status()
    if not fastdl.cuda.is_available():
        assert st["reason"]


def test_set_seed_validates():
    with pytest.raises(ValueError):
        fastdl.set_seed(-1)
    fastdl.set_seed(0)
