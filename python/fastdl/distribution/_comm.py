"""The process group: MPI through mpi4py, imported only by initialize().

Without initialize() the group is this one process (rank 0 of 1) and nothing
here imports mpi4py. initialize() takes MPI's world communicator, finds the
ranks on this node (local_rank), installs an excepthook that aborts the whole
job when one rank dies, and splits the node's cores between its ranks.
"""
import os
import sys
import time

import numpy as np

from .. import _device

# Environment variables MPI launchers set in every process they start: the size
# of the job (MPICH/Hydra and Intel MPI, Open MPI, MVAPICH2).
LAUNCHER_SIZE_VARS = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE")


class _State:
    comm = None          # the mpi4py communicator (None: one process, no MPI)
    MPI = None           # the mpi4py.MPI module once initialized
    rank = 0
    size = 1
    local_rank = 0
    local_size = 1
    nccl = None          # the NCCL communicator, made on first use with CuPy arrays


_state = _State()


def launched_size():
    """The number of processes a launcher (mpiexec, srun with PMI) started, from the
    environment; 1 when not launched by one. Read once: a launcher sets it before the
    process starts (and every fit/predict call asks)."""
    if _launched[0] is None:
        _launched[0] = 1
        for var in LAUNCHER_SIZE_VARS:
            v = os.environ.get(var)
            if v:
                try:
                    _launched[0] = int(v)
                    break
                except ValueError:
                    continue
    return _launched[0]


_launched = [None]


def check_launch(what):
    """Raise when this process was started by an MPI launcher as one of several but
    initialize() was not called: each would otherwise train on its own."""
    if _state.comm is not None:
        return
    n = launched_size()
    if n > 1:
        raise RuntimeError(
            f"{what}: this process is one of {n} started by an MPI launcher (mpiexec/srun), but "
            f"fastdl.distribution.initialize() was not called, so each process would run on "
            f"its own: {n} independent trainings instead of one. Call "
            f"fastdl.distribution.initialize() (and set_distribution(DataParallel())) at the "
            f"start of the script, or start it without mpiexec")


def initialize(comm=None, num_threads="auto"):
    """Join the MPI job (a no-op under plain ``python``: rank 0 of 1 without MPI).

    ``comm``: an mpi4py communicator (default: MPI.COMM_WORLD). ``num_threads``:
    kernel threads per rank; "auto" gives each rank an equal share of its node's
    cores unless FASTDL_NUM_THREADS is set, None leaves the thread count alone.
    Returns (rank, size)."""
    if _state.comm is not None:
        return _state.rank, _state.size
    try:
        from mpi4py import MPI
    except ImportError as e:
        if comm is None and launched_size() <= 1:
            return 0, 1   # plain python without MPI: one process
        raise ImportError(
            f"fastdl.distribution.initialize: this process was started by an MPI launcher "
            f"({launched_size()} processes) but mpi4py is not installed ({e}). Install it with "
            f"pip install 'fastdl[mpi]' mpich") from e
    comm = MPI.COMM_WORLD if comm is None else comm
    _state.MPI = MPI
    _state.comm = comm
    _state.rank = comm.Get_rank()
    _state.size = comm.Get_size()
    node = comm.Split_type(MPI.COMM_TYPE_SHARED, key=_state.rank)
    _state.local_rank = node.Get_rank()
    _state.local_size = node.Get_size()
    node.Free()
    _install_excepthook()
    if num_threads == "auto":
        if "FASTDL_NUM_THREADS" not in os.environ and _state.local_size > 1:
            from .. import ops
            ops.set_num_threads(max(1, ops.available_cores() // _state.local_size))
    elif num_threads is not None:
        from .._config import set_num_threads
        set_num_threads(num_threads)
    if _state.size > 1:
        from .. import _random
        _random.set_stream(_state.rank)   # dropout masks differ between ranks
        _use_local_gpu()
    return _state.rank, _state.size


def _use_local_gpu():
    """Make the GPU of this rank's local rank CuPy's current device (before any model
    moves there), where CuPy and GPUs are present; nothing otherwise."""
    try:
        import cupy
        n = cupy.cuda.runtime.getDeviceCount()
    except Exception:
        return
    if n > 0:
        cupy.cuda.Device(_state.local_rank % n).use()


def _install_excepthook():
    """An uncaught exception on any rank aborts every rank (instead of leaving the
    others waiting forever in a collective)."""
    previous = sys.excepthook

    def hook(kind, value, tb):
        try:
            # The cause first, in one line: the launcher may drop what a rank writes
            # just before the abort ends it.
            sys.stdout.flush()
            sys.stderr.write(f"fastdl.distribution: rank {_state.rank} of {_state.size} failed "
                             f"({kind.__name__}: {value}); aborting the whole job\n")
            sys.stderr.flush()
            previous(kind, value, tb)
            sys.stderr.flush()
            time.sleep(0.5)   # let the launcher forward the traceback
        finally:
            if _state.comm is not None and _state.size > 1:
                _state.comm.Abort(1)
    sys.excepthook = hook


def rank():
    check_launch("fastdl.distribution.rank")
    return _state.rank


def size():
    check_launch("fastdl.distribution.size")
    return _state.size


def local_rank():
    check_launch("fastdl.distribution.local_rank")
    return _state.local_rank


def barrier():
    if _state.size > 1:
        _state.comm.Barrier()


# ------------------------------------------------------------------ collectives on arrays
_OPS = ("sum", "mean")


def allreduce_(a, op="sum"):
    """Reduce ``a`` over every rank in place (NumPy: MPI; CuPy: NCCL). Returns a."""
    if op not in _OPS:
        raise ValueError(f"allreduce: op must be 'sum' or 'mean', got {op!r}")
    if _state.size > 1:
        if _device.is_device(a):
            _nccl_allreduce_(a)
        else:
            if not a.flags.c_contiguous:
                raise ValueError("allreduce: the array must be C-contiguous to be reduced in place")
            _state.comm.Allreduce(_state.MPI.IN_PLACE, a, op=_state.MPI.SUM)
    if op == "mean" and _state.size > 1:
        a /= a.dtype.type(_state.size)
    return a


def broadcast_(a, root=0):
    """Give every rank root's values of ``a``, in place."""
    if _state.size <= 1:
        return a
    if _device.is_device(a):
        host = np.ascontiguousarray(_device.to_host(a))
        _state.comm.Bcast(host, root=root)
        _device.assign(a, host)
    elif a.flags.c_contiguous:
        _state.comm.Bcast(a, root=root)
    else:
        tmp = np.ascontiguousarray(a)
        _state.comm.Bcast(tmp, root=root)
        a[...] = tmp
    return a


def bcast_object(obj, root=0):
    return obj if _state.size <= 1 else _state.comm.bcast(obj, root=root)


def allgather_object(obj):
    return [obj] if _state.size <= 1 else _state.comm.allgather(obj)


# ------------------------------------------------------------------ NCCL (CuPy arrays)
_NCCL_TYPES = {"float32": "NCCL_FLOAT32", "float64": "NCCL_FLOAT64", "float16": "NCCL_FLOAT16",
               "int32": "NCCL_INT32", "int64": "NCCL_INT64"}


def _nccl_comm():
    """The NCCL communicator: rank 0 makes the unique id, MPI broadcasts it, each rank
    joins on the GPU of its local rank. Errors clearly without CuPy/NCCL/a GPU."""
    if _state.nccl is not None:
        return _state.nccl
    try:
        import cupy
        from cupy.cuda import nccl
    except Exception as e:   # ImportError, or CuPy built without NCCL
        raise RuntimeError(f"fastdl.distribution: reducing GPU arrays needs CuPy with NCCL "
                           f"(cupy.cuda.nccl): {e}") from e
    try:
        n_dev = cupy.cuda.runtime.getDeviceCount()
    except Exception as e:
        raise RuntimeError(f"fastdl.distribution: no usable GPU for NCCL: {e}") from e
    if n_dev < 1:
        raise RuntimeError("fastdl.distribution: no GPU on this node for NCCL")
    cupy.cuda.Device(_state.local_rank % n_dev).use()
    uid = nccl.get_unique_id() if _state.rank == 0 else None
    uid = _state.comm.bcast(uid, root=0)
    _state.nccl = nccl.NcclCommunicator(_state.size, uid, _state.rank)
    return _state.nccl


def _nccl_allreduce_(a):
    import cupy
    from cupy.cuda import nccl
    if not a.flags.c_contiguous:
        raise ValueError("allreduce: the GPU array must be C-contiguous to be reduced in place")
    name = _NCCL_TYPES.get(str(a.dtype))
    if name is None:
        raise TypeError(f"allreduce: NCCL cannot reduce dtype {a.dtype}")
    comm = _nccl_comm()
    stream = cupy.cuda.get_current_stream()
    comm.allReduce(a.data.ptr, a.data.ptr, a.size, getattr(nccl, name), nccl.NCCL_SUM, stream.ptr)
