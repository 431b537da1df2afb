"""Extract the 8x8 handwritten digits that scikit-learn ships into fastdl's package data.

Run once by a maintainer (scikit-learn is not a dependency of fastdl):

    pip install scikit-learn
    python tools/extract_digits.py            # writes python/fastdl/datasets/data/digits.npz

The images are the test part of the UCI "Optical Recognition of Handwritten Digits" set
(E. Alpaydin and C. Kaynak, 1998; CC BY 4.0), as scikit-learn ships them (BSD-3-Clause):
1797 samples, 8x8, integer pixels 0..16 (counts of "on" pixels in 4x4 blocks of a 32x32
bitmap). They are stored unchanged, as uint8, in the order scikit-learn gives them;
fastdl.datasets.digits.load_data() does the scaling and the train/test split.
"""
import argparse
import hashlib
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_OUT = os.path.join(HERE, "..", "python", "fastdl", "datasets", "data", "digits.npz")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=DEFAULT_OUT, help="output .npz file (default: the package data folder)")
    args = p.parse_args(argv)

    try:
        from sklearn.datasets import load_digits
    except ImportError:
        sys.exit("scikit-learn is needed to run this script once: pip install scikit-learn")

    bunch = load_digits()
    images = np.asarray(bunch.images)
    labels = np.asarray(bunch.target)
    # The source is integers 0..16 stored as float64; check that nothing is lost by uint8.
    if images.shape != (1797, 8, 8) or labels.shape != (1797,):
        sys.exit(f"unexpected shapes {images.shape} {labels.shape}")
    if not (np.all(images == np.round(images)) and images.min() >= 0 and images.max() <= 16):
        sys.exit("pixels are not the integers 0..16 this script expects")
    if not (labels.min() >= 0 and labels.max() <= 9):
        sys.exit("labels are not the digits 0..9")
    images = images.astype(np.uint8)
    labels = labels.astype(np.uint8)

    out = os.path.abspath(args.out)
    tmp = out + ".part.npz"
    np.savez_compressed(tmp, images=images, labels=labels)
    os.replace(tmp, out)
    digest = hashlib.sha256(images.tobytes() + labels.tobytes()).hexdigest()
    print(f"wrote {out}: {images.shape[0]} images, {os.path.getsize(out)} bytes, "
          f"content sha256 {digest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
