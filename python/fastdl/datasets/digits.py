"""Handwritten digits, 8x8, bundled with fastdl: no download, always available.

1797 images of the UCI "Optical Recognition of Handwritten Digits" set (E. Alpaydin and
C. Kaynak, 1998; CC BY 4.0), as scikit-learn ships them; see data/DIGITS-LICENSE.txt for the
attribution and licences, and tools/extract_digits.py for how the file was made.

The source pixels are counts 0..16. ``load_data()`` scales them to 0..255 (``round(v * 255 / 16)``)
so that code written for MNIST (``x / 255.0``) works unchanged; ``load_data(scaled=False)`` returns
the counts as they are.

The split is fixed and needs no random numbers: within each digit class, in the stored order,
every fifth image (the 5th, 10th, ...) is a test image. That gives 1442 training and 355 test
images with the ten classes in the same proportions in both.
"""
import os

import numpy as np

DATA_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "digits.npz")
LICENSE_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "DIGITS-LICENSE.txt")


def _read():
    with np.load(DATA_FILE, allow_pickle=False) as f:
        return f["images"], f["labels"]


def test_mask(labels):
    """Boolean mask of the test images: every fifth image of each class, in stored order."""
    labels = np.asarray(labels)
    mask = np.zeros(labels.shape[0], dtype=bool)
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        mask[idx[4::5]] = True
    return mask


def load_data(*, scaled=True):
    """Load the bundled digits as ``(x_train, y_train), (x_test, y_test)``.

    x_*: uint8 (N, 8, 8), pixels 0..255 (or the raw 0..16 with ``scaled=False``);
    y_*: uint8 (N,), labels 0..9. N is 1442 for training and 355 for test.
    """
    images, labels = _read()
    if scaled:
        images = np.round(images.astype(np.float32) * (255.0 / 16.0)).astype(np.uint8)
    else:
        images = images.copy()
    labels = labels.copy()
    test = test_mask(labels)
    return (images[~test], labels[~test]), (images[test], labels[test])


def locate(path=None):
    """The bundled file (always present in an installed fastdl)."""
    return DATA_FILE if os.path.isfile(DATA_FILE) else None
