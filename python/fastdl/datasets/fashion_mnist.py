"""Fashion-MNIST (Xiao, Rasul and Vollgraf, Zalando Research, MIT licence): 60,000 training and
10,000 test images of clothing, 28x28 grayscale, labels 0..9 (see CLASS_NAMES). Same return
values as ``keras.datasets.fashion_mnist.load_data()``.

Where the files are looked for, in order, and how they are downloaded: see ``fastdl.datasets``.
Debian and Ubuntu ship the data in the ``dataset-fashion-mnist`` package; Keras' cache
(``~/.keras/datasets/fashion-mnist/``) is used when present.
"""
from . import _fetch

CLASS_NAMES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
               "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]

# SHA-256 of the decompressed IDX files: the same whichever way a mirror or a distribution
# compressed them (Debian's package recompresses the .gz files, for example).
SPEC = _fetch.DatasetSpec(
    name="fashion-mnist",
    title="Fashion-MNIST",
    mirrors=[
        "https://storage.googleapis.com/tensorflow/tf-keras-datasets/",
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
    ],
    sha256={
        "train-images-idx3-ubyte.gz": {"c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888"},
        "train-labels-idx1-ubyte.gz": {"bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9"},
        "t10k-images-idx3-ubyte.gz": {"5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b"},
        "t10k-labels-idx1-ubyte.gz": {"0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34"},
    },
    keras_dir="fashion-mnist",
    notes=["On Debian or Ubuntu: apt install dataset-fashion-mnist (installs the files where "
           "fastdl looks)."],
)


load_data, locate = _fetch.public_functions(SPEC, __name__, labels=' (CLASS_NAMES)')
