"""fastdl.distribution: data-parallel training over MPI.

The multi-rank checks start ``mpiexec -n 2 python -m mpi4py tests/mpi/dist_worker.py`` (skipped
with the reason where mpi4py or mpiexec is missing; CI installs both) and compare what each rank
wrote with one process training on the whole batch.
"""
import os
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest

import fastdl

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
WORKER = os.path.join(HERE, "mpi", "dist_worker.py")
# the fastdl these tests import (the checkout's python/ when built in place, or the installed one)
PYPATH = os.path.dirname(os.path.dirname(os.path.abspath(fastdl.__file__)))


def _mpiexec():
    exe = shutil.which("mpiexec")
    if exe is None:
        cand = os.path.join(os.path.dirname(sys.executable), "mpiexec")
        exe = cand if os.path.exists(cand) else None
    return exe


def _env(**extra):
    env = dict(os.environ)
    env["PYTHONPATH"] = PYPATH + os.pathsep + env.get("PYTHONPATH", "")
    env["FASTDL_NUM_THREADS"] = "1"   # 2 ranks on a 2-core machine
    for k in ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE"):
        env.pop(k, None)
    env.update(extra)
    return env


def _need_mpi():
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        pytest.skip("mpi4py is not installed (pip install 'fastdl[mpi]' mpich)")
    exe = _mpiexec()
    if exe is None:
        pytest.skip("no mpiexec on PATH (pip install mpich)")
    return exe


def _launch(case, out, timeout=60, module=True):
    exe = _need_mpi()
    cmd = [exe, "-n", "2", sys.executable] + (["-m", "mpi4py"] if module else []) + \
        [WORKER, case, str(out)]
    t0 = time.monotonic()
    p = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=timeout)
    return p, time.monotonic() - t0


def _plain(case, out):
    p = subprocess.run([sys.executable, WORKER, case, str(out)], env=_env(DIST_PLAIN="1"),
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr[-3000:]


@pytest.fixture(scope="module")
def equal_runs(tmp_path_factory):
    """(rank 0, rank 1, one process) results of the 'equal' case."""
    _need_mpi()
    d = tmp_path_factory.mktemp("equal")
    ref = d / "ref"
    ref.mkdir()
    p, _ = _launch("equal", d, timeout=120)
    assert p.returncode == 0, p.stderr[-3000:]
    _plain("equal", ref)
    load = lambda f: dict(np.load(f))  # noqa: E731
    return load(d / "equal.r0.npz"), load(d / "equal.r1.npz"), load(ref / "equal.r0.npz")


CASES = ["mlp_sgd", "mlp_adam", "mlp_rmsprop", "conv_sgd", "conv_adam", "conv_rmsprop",
         "sub_adam", "mlp33_adam"]


@pytest.mark.parametrize("case", CASES)
def test_two_ranks_equal_one_process_on_the_global_batch(equal_runs, case):
    r0, r1, ref = equal_runs
    keys = sorted(k for k in ref if k.startswith(case + "_w"))
    assert keys
    for k in keys:
        # the weights after 2 epochs (37 or 33 samples, global batch 8: uneven last batches,
        # for 33 one rank has no share of the last one) match one process within float32
        # rounding, and the two ranks hold the same bits
        np.testing.assert_allclose(r0[k], ref[k], rtol=0, atol=1e-6, err_msg=k)
        assert np.array_equal(r0[k], r1[k]), k
    for what in ("loss", "acc"):
        # the logs of the whole batch on every rank (the averaged loss and accuracy)
        np.testing.assert_allclose(r0[f"{case}_{what}"], ref[f"{case}_{what}"], rtol=1e-5)
        assert np.array_equal(r0[f"{case}_{what}"], r1[f"{case}_{what}"])
    # predict: sharded and gathered; evaluate: the sums of both shards
    np.testing.assert_allclose(r0[case + "_pred"], ref[case + "_pred"], atol=1e-5)
    assert np.array_equal(r0[case + "_pred"], r1[case + "_pred"])
    np.testing.assert_allclose(r0[case + "_eval"], ref[case + "_eval"], rtol=1e-5)


@pytest.mark.parametrize("case", ["binary", "dataset", "functional", "ownstep"])
def test_weights_pydataset_functional_and_own_train_step(equal_runs, case):
    # sample weights with AUC and Precision (metric variables, summed over the ranks); a
    # PyDataset (item i to rank i % 2) in the generic loop; a functional model's fused plan
    # with validation data; a train_step of the user's own (its returned loss averaged)
    r0, r1, ref = equal_runs
    keys = sorted(k for k in ref if k.startswith(case + "_") and not k.endswith("_calls"))
    assert any(k.startswith(case + "_w") for k in keys)
    for k in keys:
        np.testing.assert_allclose(r0[k], ref[k], rtol=1e-6 if "loss" in k else 0, atol=1e-6,
                                   err_msg=k)
        assert np.array_equal(r0[k], r1[k]), k
    if case == "functional":
        assert case + "_val_loss" in keys


def test_one_allreduce_per_step(equal_runs):
    r0, r1, _ = equal_runs
    for case in CASES + ["dataset", "binary"]:
        # 2 epochs of ceil(n / 8) = 5 steps: one allreduce each, gradients and sums together
        assert int(r0[case + "_calls"]) == 10, case
        assert int(r1[case + "_calls"]) == 10, case
    assert int(r0["functional_calls"]) == 12   # and one per validation, for its sums
    assert int(r0["ownstep_calls"]) == 16      # own train_step: gradients, then its logs


def test_non_trainable_weights_are_averaged_and_generators_refused(tmp_path):
    p, _ = _launch("moving", tmp_path)
    assert p.returncode == 0, p.stderr[-3000:]
    z0, z1 = np.load(tmp_path / "moving.r0.npz"), np.load(tmp_path / "moving.r1.npz")
    # each rank's statistic from its half (rank 1's data shifted by 1), then their mean
    want = 0.25 * (z0["x"][:8].mean(axis=0) + z1["x"][8:].mean(axis=0))
    np.testing.assert_allclose(z0["mean"], want, rtol=1e-6)
    assert np.array_equal(z0["mean"], z1["mean"])
    for r in (0, 1):
        msg = (tmp_path / f"generator.r{r}.txt").read_text()
        assert "generator cannot be split" in msg, msg


def test_ctrl_c_on_one_rank_stops_both_after_the_same_batch(tmp_path):
    p, _ = _launch("interrupt", tmp_path)
    assert p.returncode == 0, p.stderr[-3000:]
    z0, z1 = np.load(tmp_path / "interrupt.r0.npz"), np.load(tmp_path / "interrupt.r1.npz")
    # rank 1's Ctrl-C after batch 2 travels in batch 3's allreduce: both stop after it
    assert list(z0["seen"]) == [0, 1, 2, 3] and list(z1["seen"]) == [0, 1, 2, 3]
    for k in z0.files:
        assert np.array_equal(z0[k], z1[k]), k


def test_train_on_batch_each_rank_its_own_half(tmp_path):
    p, _ = _launch("onbatch", tmp_path)
    assert p.returncode == 0, p.stderr[-3000:]
    ref = tmp_path / "ref"
    ref.mkdir()
    _plain("onbatch", ref)
    r0, r1 = np.load(tmp_path / "onbatch.r0.npz"), np.load(tmp_path / "onbatch.r1.npz")
    want = np.load(ref / "onbatch.r0.npz")
    for k in want.files:
        np.testing.assert_allclose(r0[k], want[k], rtol=1e-6, atol=1e-6, err_msg=k)
        assert np.array_equal(r0[k], r1[k]), k


def test_threads_per_rank_default_to_a_share_of_the_cores(tmp_path):
    exe = _need_mpi()
    env = _env()
    env.pop("FASTDL_NUM_THREADS")
    p = subprocess.run([exe, "-n", "2", sys.executable, "-m", "mpi4py", WORKER, "threads",
                        str(tmp_path)], env=env, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr[-3000:]
    for r in (0, 1):
        z = np.load(tmp_path / f"threads.r{r}.npz")
        assert int(z["threads"]) == max(1, int(z["cores"]) // 2)


def test_early_stopping_stops_both_and_only_rank0_writes_checkpoints(tmp_path):
    p, _ = _launch("early", tmp_path)
    assert p.returncode == 0, p.stderr[-3000:]
    l0 = np.load(tmp_path / "early.r0.npz")["loss"]
    l1 = np.load(tmp_path / "early.r1.npz")["loss"]
    assert len(l0) == 2 and np.array_equal(l0, l1)   # min_delta=10: stops after epoch 2
    assert (tmp_path / "ck_r0" / "ck.weights.h5").exists()
    assert not any((tmp_path / "ck_r1").iterdir())


@pytest.mark.parametrize("module", [True, False], ids=["python-m-mpi4py", "excepthook"])
def test_exception_on_one_rank_ends_the_job(tmp_path, module):
    p, took = _launch("crash", tmp_path, timeout=60, module=module)
    assert p.returncode != 0
    assert "rank 1 fails on purpose" in p.stderr
    assert took < 30, f"the job took {took:.1f}s to end"


def test_mismatched_models_are_refused(tmp_path):
    p, _ = _launch("mismatch", tmp_path)
    assert p.returncode == 0, p.stderr[-3000:]
    for r in (0, 1):
        msg = (tmp_path / f"mismatch.r{r}.txt").read_text()
        assert "differs between ranks" in msg and "weight 0 (dense/kernel)" in msg, msg
        assert "(12, 16)" in msg and "(12, 15)" in msg


def test_custom_loop_allreduce_and_distributed_optimizer(tmp_path):
    p, _ = _launch("custom", tmp_path)
    assert p.returncode == 0, p.stderr[-3000:]
    ref = tmp_path / "ref"
    ref.mkdir()
    _plain("custom", ref)
    r0, r1 = np.load(tmp_path / "custom.r0.npz"), np.load(tmp_path / "custom.r1.npz")
    want = np.load(ref / "custom.r0.npz")
    assert r0["sum"][0] == 3.0 and r0["mean"][0] == 1.5 and r1["sum"][0] == 3.0
    for k in want.files:
        if k.startswith("w"):
            # the mean of the two halves' mean gradients is the whole batch's
            np.testing.assert_allclose(r0[k], want[k], atol=1e-6)
            assert np.array_equal(r0[k], r1[k])


def _run_py(code, **env):
    return subprocess.run([sys.executable, "-c", code], env=_env(**env), capture_output=True,
                          text=True, timeout=120)


SIZE1 = """
import sys
sys.modules["mpi4py"] = None          # as if mpi4py were not installed
import numpy as np, fastdl
from fastdl import distribution, layers, models
assert distribution.initialize() == (0, 1)
assert (distribution.rank(), distribution.size(), distribution.local_rank()) == (0, 1, 0)
distribution.barrier()
a = np.arange(4.0)
assert np.array_equal(distribution.allreduce(a, op="sum"), a)
assert np.array_equal(distribution.allreduce(a), a)
g = np.random.default_rng(0)
x, y = g.standard_normal((20, 6)).astype("float32"), g.integers(0, 3, 20)
def run(dp):
    distribution.set_distribution(distribution.DataParallel() if dp else None)
    fastdl.set_seed(0)
    m = models.Sequential([layers.Input((6,)), layers.Dense(3, activation="softmax")])
    m.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    m.fit(x, y, batch_size=8, epochs=2, verbose=0)
    return m.get_weights(), m.predict(x, verbose=0)
(wa, pa), (wb, pb) = run(True), run(False)
assert all(np.array_equal(u, v) for u, v in zip(wa, wb)) and np.array_equal(pa, pb)
print("ok")
"""


def test_size_one_without_mpi():
    p = _run_py(SIZE1)
    assert p.returncode == 0 and "ok" in p.stdout, p.stderr[-3000:]


NO_INIT = """
import numpy as np
from fastdl import layers, models
m = models.Sequential([layers.Input((3,)), layers.Dense(2)])
m.compile(optimizer="sgd", loss="mse")
try:
    m.fit(np.zeros((4, 3), "float32"), np.zeros((4, 2), "float32"), verbose=0)
except RuntimeError as e:
    print("refused:", e)
"""


@pytest.mark.parametrize("var", ["PMI_SIZE", "OMPI_COMM_WORLD_SIZE"])
def test_launched_without_initialize_is_an_error(var):
    p = _run_py(NO_INIT, **{var: "2"})
    assert p.returncode == 0, p.stderr[-3000:]
    assert "refused:" in p.stdout and "initialize()" in p.stdout and "2 independent" in p.stdout


def test_launched_alone_without_initialize_trains():
    p = _run_py(NO_INIT.replace("refused:", "unexpected:"), PMI_SIZE="1")
    assert p.returncode == 0 and "unexpected" not in p.stdout, p.stdout + p.stderr[-3000:]


def test_bad_arguments():
    from fastdl import distribution
    with pytest.raises(NotImplementedError, match="one device per process"):
        distribution.DataParallel(devices=["gpu:0", "gpu:1"])
    with pytest.raises(TypeError, match="DataParallel or None"):
        distribution.set_distribution("data")
    with pytest.raises(ValueError, match="op must be"):
        distribution.allreduce(np.ones(2), op="max")
    with pytest.raises(TypeError, match="dtype"):
        distribution.allreduce(np.array(["a"]))
    assert distribution.allreduce(2.5, op="sum") == 2.5


def test_nccl_path_fails_cleanly_without_a_gpu():
    from fastdl.distribution import _comm
    try:
        import cupy  # noqa: F401
        if cupy.cuda.runtime.getDeviceCount() > 0:
            pytest.skip("a GPU is present: the NCCL path is tested by the multi-GPU run")
    except Exception:
        pass
    saved = _comm._state.nccl
    try:
        with pytest.raises(RuntimeError, match="NCCL|GPU"):
            _comm._nccl_comm()
    finally:
        _comm._state.nccl = saved


def test_example_trains_data_parallel_on_two_ranks():
    exe = _need_mpi()
    p = subprocess.run([exe, "-n", "2", sys.executable, "-m", "mpi4py",
                        os.path.join(ROOT, "examples", "train_data_parallel.py"), "--smoke"],
                       env=_env(FASTDL_DATA_MIRROR="http://127.0.0.1:9/"), capture_output=True,
                       text=True, timeout=120)
    assert p.returncode == 0, p.stderr[-3000:]
    assert "on 2 rank(s)" in p.stdout and p.stdout.count("test accuracy:") == 1
    assert p.stdout.count("Epoch 1/1") == 1   # the progress from rank 0 only


@pytest.mark.cuda
def test_nccl_allreduce_and_fit_on_two_gpus(tmp_path):
    """Where two GPUs are lent: allreduce of CuPy arrays through NCCL, and a model on the
    GPUs trained on 2 ranks holds the same bits on both."""
    cupy = pytest.importorskip("cupy", reason="CuPy is not installed")
    try:
        n = cupy.cuda.runtime.getDeviceCount()
    except Exception as e:   # no driver
        pytest.skip(f"no CUDA device: {e}")
    if n < 2:
        pytest.skip(f"NCCL needs one GPU per rank: 2 ranks, {n} GPU(s) here")
    p, _ = _launch("nccl", tmp_path, timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    r0, r1 = np.load(tmp_path / "nccl.r0.npz"), np.load(tmp_path / "nccl.r1.npz")
    np.testing.assert_array_equal(r0["sum"], np.arange(5) * 2 + 1)
    np.testing.assert_array_equal(r0["mean"], np.arange(5) + 0.5)
    ws = [k for k in r0.files if k.startswith("w")]
    assert ws and all(np.array_equal(r0[k], r1[k]) for k in ws)
    assert all(np.isfinite(r0[k]).all() for k in ws)
