"""Memory: fitting the seed MLP keeps RSS flat after the first epoch (no leak), and the peak
stays within 1.5x the training data plus 100 MiB. Measured in a fresh interpreter from
/proc/self/status (VmRSS after every epoch, VmHWM for the peak)."""
import json
import os
import sys

import pytest

from conftest import run_python

pytestmark = [
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc"),
    # ASan keeps freed memory in quarantine and maps shadow memory: RSS means nothing there
    pytest.mark.skipif(bool(os.environ.get("FASTDL_SANITIZED")), reason="under sanitizers"),
]

CHILD = r"""
import gc, json, sys
import numpy as np

def status(key):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    raise KeyError(key)

n, epochs = int(sys.argv[1]), int(sys.argv[2])
rng = np.random.default_rng(0)
# MNIST-shaped synthetic data, scaled to [0, 1] as the seed program does
x = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8).astype(np.float32) / 255.0
y = rng.integers(0, 10, n).astype(np.uint8)
data = x.nbytes + y.nbytes

import fastdl
from fastdl import callbacks, layers, models
fastdl.set_seed(0)
base = status("VmRSS")
rss = []

class Probe(callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        gc.collect()
        rss.append(status("VmRSS"))

model = models.Sequential()
model.add(layers.Flatten(input_shape=(28, 28)))
model.add(layers.Dense(128, activation="relu"))
model.add(layers.Dropout(0.2))
model.add(layers.Dense(10, activation="softmax"))
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
h = model.fit(x, y, epochs=epochs, batch_size=32, verbose=0, callbacks=[Probe()],
              validation_split=0.1)
model.evaluate(x, y, verbose=0)
model.predict(x)
gc.collect()
print(json.dumps({"data": data, "base": base, "rss": rss, "after": status("VmRSS"),
                  "hwm": status("VmHWM"), "loss": h.history["loss"]}))
"""

MiB = 1 << 20


def test_fit_seed_mlp_rss_flat_and_peak_bounded():
    n, epochs = 10000, 20
    # one kernel thread: leaks do not depend on it, and it keeps the test quick on a busy machine
    p = run_python(CHILD.replace("sys.argv[1]", str(n)).replace("sys.argv[2]", str(epochs)),
                   env_extra={"FASTDL_NUM_THREADS": "1"}, timeout=900)
    assert p.returncode == 0, p.stderr
    r = json.loads(p.stdout.strip().splitlines()[-1])
    rss = r["rss"]
    assert len(rss) == epochs and len(r["loss"]) == epochs
    # flat after the first epoch: any growth per epoch would add up over 19 epochs
    growth = max(rss[1:]) - rss[0]
    assert growth < 4 * MiB, f"RSS grew by {growth / MiB:.1f} MiB after epoch 1: {rss}"
    assert rss[-1] - rss[1] < 2 * MiB, f"RSS creeps: {[v // MiB for v in rss]} MiB"
    # evaluate and predict on all the data do not leave more than their outputs behind
    assert r["after"] - rss[-1] < 8 * MiB
    # the peak: the whole process (interpreter, NumPy, fastdl, the data, the model)
    limit = 1.5 * r["data"] + 100 * MiB
    assert r["hwm"] <= limit, (f"peak {r['hwm'] / MiB:.0f} MiB > 1.5 x data "
                               f"({r['data'] / MiB:.0f} MiB) + 100 MiB")
