"""fastdl.utils: Keras 3's data helpers (examples from Keras' docstrings)."""
import random

import numpy as np
import pytest

import fastdl
from fastdl import ops, utils
from fastdl import random as krandom


SEQ = [[1], [2, 3], [4, 5, 6]]


def test_pad_sequences_keras_docstring_examples():
    got = utils.pad_sequences(SEQ)
    np.testing.assert_array_equal(got, [[0, 0, 1], [0, 2, 3], [4, 5, 6]])
    assert got.dtype == np.int32
    np.testing.assert_array_equal(utils.pad_sequences(SEQ, value=-1),
                                  [[-1, -1, 1], [-1, 2, 3], [4, 5, 6]])
    np.testing.assert_array_equal(utils.pad_sequences(SEQ, padding="post"),
                                  [[1, 0, 0], [2, 3, 0], [4, 5, 6]])
    np.testing.assert_array_equal(utils.pad_sequences(SEQ, maxlen=2), [[0, 1], [2, 3], [5, 6]])


def test_pad_sequences_more_cases():
    np.testing.assert_array_equal(utils.pad_sequences(SEQ, maxlen=2, truncating="post"),
                                  [[0, 1], [2, 3], [4, 5]])
    np.testing.assert_array_equal(utils.pad_sequences([[1, 2], []], maxlen=3),
                                  [[0, 1, 2], [0, 0, 0]])
    f = utils.pad_sequences([[0.5, 1.5]], maxlen=3, dtype="float32", value=-1.0)
    assert f.dtype == np.float32
    np.testing.assert_array_equal(f, [[-1.0, 0.5, 1.5]])
    v = utils.pad_sequences([np.ones((2, 3)), np.ones((1, 3))], dtype="float32")
    assert v.shape == (2, 2, 3) and np.all(v[1, 0] == 0)
    s = utils.pad_sequences([["a", "b"], ["c"]], dtype=object, value="")
    np.testing.assert_array_equal(s, [["a", "b"], ["", "c"]])
    with pytest.raises(ValueError, match="Padding type"):
        utils.pad_sequences(SEQ, padding="middle")
    with pytest.raises(ValueError, match="Truncating type"):
        utils.pad_sequences(SEQ, maxlen=1, truncating="middle")
    with pytest.raises(ValueError):
        utils.pad_sequences([[1], 2])
    with pytest.raises(ValueError, match="compatible"):
        utils.pad_sequences(SEQ, value="x")
    with pytest.raises(ValueError, match="Shape of sample"):
        utils.pad_sequences([np.ones((2, 3)), np.ones((1, 2))])


def test_to_categorical_keras_docstring_example():
    a = utils.to_categorical([0, 1, 2, 3], num_classes=4)
    np.testing.assert_array_equal(a, np.eye(4))
    b = np.array([.9, .04, .03, .03, .3, .45, .15, .13, .04, .01, .94, .05, .12, .21, .5,
                  .17]).reshape(4, 4)
    np.testing.assert_allclose(np.around(ops.categorical_crossentropy(a, b), 5),
                               [0.10536, 0.82807, 0.1011, 1.77196])
    np.testing.assert_allclose(np.around(ops.categorical_crossentropy(a, a), 5), [0, 0, 0, 0],
                               atol=1e-5)


def test_to_categorical_shapes():
    c = utils.to_categorical(np.array([[1], [0], [2]]))
    assert c.shape == (3, 3) and c.dtype == np.float64
    np.testing.assert_array_equal(c.argmax(1), [1, 0, 2])
    assert utils.to_categorical(np.zeros((2, 5), int), 3).shape == (2, 5, 3)
    assert utils.to_categorical(2, 4).shape == (4,)


def test_normalize():
    x = np.array([[3.0, 4.0], [0.0, 0.0]])
    np.testing.assert_allclose(utils.normalize(x), [[0.6, 0.8], [0, 0]])
    np.testing.assert_allclose(utils.normalize(x, order=1), [[3 / 7, 4 / 7], [0, 0]])
    np.testing.assert_allclose(utils.normalize(x, axis=0), [[1, 1], [0, 0]])


def test_set_random_seed_makes_runs_repeatable():
    utils.set_random_seed(3)
    a = (random.random(), np.random.rand(), krandom.normal((2,)))
    utils.set_random_seed(3)
    b = (random.random(), np.random.rand(), krandom.normal((2,)))
    assert a[0] == b[0] and a[1] == b[1]
    np.testing.assert_array_equal(a[2], b[2])
    with pytest.raises(ValueError):
        utils.set_random_seed("3")


class Batches(utils.PyDataset):
    def __init__(self, n, batch_size, **kwargs):
        super().__init__(**kwargs)
        self.x = np.arange(n, dtype=np.float32)[:, None]
        self.y = self.x * 2
        self.batch_size = batch_size
        self.epochs_ended = 0

    def __len__(self):
        return -(-len(self.x) // self.batch_size)

    def __getitem__(self, idx):
        s = slice(idx * self.batch_size, (idx + 1) * self.batch_size)
        return self.x[s], self.y[s]

    def on_epoch_end(self):
        self.epochs_ended += 1


def test_pydataset_base_class():
    ds = Batches(10, 4, workers=2, max_queue_size=3)
    assert ds.workers == 2 and ds.use_multiprocessing is False and ds.max_queue_size == 3
    assert len(ds) == 3 and ds.num_batches == 3
    x, y = ds[2]
    np.testing.assert_array_equal(x[:, 0], [8, 9])
    ds.on_epoch_end()
    ds.on_epoch_begin()
    assert ds.epochs_ended == 1
    assert utils.Sequence is utils.PyDataset

    class NoLen(utils.PyDataset):
        pass
    with pytest.raises(NotImplementedError):
        NoLen().num_batches
    with pytest.raises(NotImplementedError):
        NoLen()[0]

    class NoSuper(utils.PyDataset):
        def __init__(self):
            pass
    with pytest.warns(UserWarning, match="super"):
        assert NoSuper().workers == 1
