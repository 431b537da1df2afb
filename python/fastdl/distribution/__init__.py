"""Data-parallel training over MPI (Keras 3's ``keras.distribution`` names).

    from fastdl import distribution
    distribution.initialize()                        # rank/size from MPI; 1 process under python
    distribution.set_distribution(distribution.DataParallel())
    model.fit(x, y, batch_size=256, epochs=5)        # batch_size is global

Launch with ``mpiexec -n 4 python -m mpi4py train.py`` (``pip install 'fastdl[mpi]'``
plus an MPI, e.g. the ``mpich`` wheel). Under plain ``python`` everything works at
size 1 without mpi4py. GPU arrays (CuPy) are reduced through NCCL.
"""
from ._comm import barrier, initialize, local_rank, rank, size
from ._data_parallel import (DataParallel, DistributedOptimizer, broadcast_weights,
                             distribution, set_distribution, session)
from ._data_parallel import allreduce

__all__ = ["initialize", "rank", "size", "local_rank", "barrier", "DataParallel",
           "set_distribution", "distribution", "broadcast_weights", "allreduce",
           "DistributedOptimizer"]


def rank_quietly():
    """This process's rank without the launch check (0 when not initialized)."""
    from ._comm import _state
    return _state.rank
