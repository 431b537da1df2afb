"""fastdl.datasets: the small standard data sets, as Keras returns them.

    from fastdl import datasets
    (x_train, y_train), (x_test, y_test) = datasets.mnist.load_data()
    (x_train, y_train), (x_test, y_test) = datasets.fashion_mnist.load_data()
    (x_train, y_train), (x_test, y_test) = datasets.digits.load_data()   # bundled, 8x8

MNIST and Fashion-MNIST are looked for, in order, in: the ``path`` argument; ``$FASTDL_DATA/<name>``;
``~/.fastdl/datasets/<name>``; Keras' cache ``~/.keras/datasets``; ``/usr/share/datasets/<name>``
(Debian's ``dataset-fashion-mnist`` package). <name> is ``mnist`` or ``fashion-mnist``. If the data
is in none of them it is downloaded into ``~/.fastdl/datasets/<name>`` and checked by SHA-256;
without a network, FileNotFoundError lists every place looked at and how to get the files.
The 8x8 digits ship inside the package and never need a download.

``load_idx(path)`` reads any IDX file (gzip-compressed or raw).
"""
from ._idx import load_idx, save_idx
from . import digits, fashion_mnist, mnist

__all__ = ["load_idx", "save_idx", "mnist", "fashion_mnist", "digits"]
