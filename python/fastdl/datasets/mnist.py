"""MNIST handwritten digits (LeCun, Cortes and Burges): 60,000 training and 10,000 test images,
28x28 grayscale, labels 0..9. Same return values as ``keras.datasets.mnist.load_data()``.

Where the files are looked for, in order, and how they are downloaded: see ``fastdl.datasets``.
Keras' own cache file (``~/.keras/datasets/mnist.npz``) is used when present.
"""
from . import _fetch

# SHA-256 of the canonical gzip files as the mirrors serve them (the digests TensorFlow Datasets
# publishes for the original files); a download must match one of them.
SPEC = _fetch.DatasetSpec(
    name="mnist",
    title="MNIST",
    mirrors=[
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
    ],
    sha256={
        "train-images-idx3-ubyte.gz": {"440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609"},
        "train-labels-idx1-ubyte.gz": {"3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c"},
        "t10k-images-idx3-ubyte.gz": {"8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6"},
        "t10k-labels-idx1-ubyte.gz": {"f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6"},
    },
    keras_npz="mnist.npz",
    notes=["Keras' copy works too: keras.datasets.mnist.load_data() leaves ~/.keras/datasets/mnist.npz."],
)


load_data, locate = _fetch.public_functions(SPEC, __name__)
