"""The embedding kernels (ops.embedding / embedding_backward): NumPy reference, float64
finite differences, every SIMD level against generic, thread counts, PyTorch's
nn.Embedding, and ids that are out of range or of the wrong kind."""
import numpy as np
import pytest

import fastdl
from fastdl import layers, ops
from helpers import numeric_gradient, run_at_simd_levels


def ref_backward(dy, ids, V):
    d = np.zeros((V, dy.shape[-1]), dy.dtype)
    np.add.at(d, ids.reshape(-1), dy.reshape(-1, dy.shape[-1]))
    return d


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("ids_shape,V,D", [((1,), 1, 1), ((7,), 13, 5), ((3, 11), 17, 31),
                                           ((2, 3, 4), 5, 129), ((0,), 4, 3), ((4, 0), 3, 2)])
def test_forward_backward_match_numpy(dtype, ids_shape, V, D):
    rng = np.random.default_rng(1)
    table = rng.standard_normal((V, D)).astype(dtype)
    ids = rng.integers(0, V, ids_shape)
    y = ops.embedding(ids, table)
    assert y.shape == ids_shape + (D,) and y.dtype == dtype
    np.testing.assert_array_equal(y, table[ids])
    dy = rng.standard_normal(y.shape).astype(dtype)
    d = ops.embedding_backward(dy, ids, V)
    np.testing.assert_allclose(d, ref_backward(dy, ids, V), rtol=1e-6 if dtype == np.float32 else 1e-14,
                               atol=1e-6 if dtype == np.float32 else 1e-14)
    out = np.full((V, D), 7.0, dtype)   # out= is overwritten, never accumulated into
    assert ops.embedding_backward(dy, ids, V, out=out) is out
    np.testing.assert_allclose(out, d, rtol=0, atol=0)


@pytest.mark.parametrize("id_dtype", [np.int8, np.int32, np.int64, np.uint16, np.float32,
                                      np.float64])
def test_id_dtypes(id_dtype):
    table = np.arange(12, dtype=np.float32).reshape(4, 3)
    ids = np.array([[3, 0], [1, 1]], dtype=id_dtype)
    np.testing.assert_array_equal(ops.embedding(ids, table), table[ids.astype(np.int64)])
    np.testing.assert_array_equal(ops.embedding(ids.tolist(), table), table[ids.astype(np.int64)])


def test_non_contiguous_arguments():
    rng = np.random.default_rng(2)
    table = np.asfortranarray(rng.standard_normal((9, 6)))
    ids = rng.integers(0, 9, (5, 8))[:, ::2]
    np.testing.assert_array_equal(ops.embedding(ids, table), table[ids])
    dy = np.ascontiguousarray(rng.standard_normal((6, 4, 5))).transpose(0, 1, 2)[:5, :4]
    ids2 = rng.integers(0, 9, (5, 4))
    np.testing.assert_allclose(ops.embedding_backward(dy, ids2, 9), ref_backward(dy, ids2, 9),
                               rtol=1e-14, atol=1e-14)


def test_finite_differences_float64():
    rng = np.random.default_rng(3)
    table = rng.standard_normal((6, 4))
    ids = np.array([[0, 5, 5], [2, 5, 0]])
    g = rng.standard_normal((2, 3, 4))
    num = numeric_gradient(lambda: float((ops.embedding(ids, table) * g).sum()), table)
    np.testing.assert_allclose(ops.embedding_backward(g, ids, 6), num, rtol=1e-8, atol=1e-9)


def test_backward_deterministic_over_thread_counts():
    rng = np.random.default_rng(4)
    V, D = 300, 96
    ids = rng.integers(0, 40, (64, 200))   # many repeats: summation order matters
    dy = rng.standard_normal((64, 200, D)).astype(np.float32)
    old = fastdl.get_num_threads()
    try:
        fastdl.set_num_threads(1)
        one = ops.embedding_backward(dy, ids, V)
        y1 = ops.embedding(ids, rng.standard_normal((V, D)).astype(np.float32))
        fastdl.set_num_threads(2)
        two = ops.embedding_backward(dy, ids, V)
        fastdl.set_num_threads(3)
        three = ops.embedding_backward(dy, ids, V)
    finally:
        fastdl.set_num_threads(old)
    np.testing.assert_array_equal(one, two)
    np.testing.assert_array_equal(one, three)
    assert y1.shape == (64, 200, D)


_LEVELS = """
import sys
import numpy as np
from fastdl import ops
rng = np.random.default_rng(5)
out = {}
for dt in (np.float32, np.float64):
    table = rng.standard_normal((37, 67)).astype(dt)
    ids = rng.integers(0, 37, (9, 130))
    dy = rng.standard_normal((9, 130, 67)).astype(dt)
    out[f"y_{dt.__name__}"] = ops.embedding(ids, table)
    out[f"d_{dt.__name__}"] = ops.embedding_backward(dy, ids, 37)
out["isa"] = np.array(ops.get_capability())
np.savez(sys.argv[1], **out)
"""


def test_every_simd_level_matches_generic(tmp_path):
    res = run_at_simd_levels(tmp_path, _LEVELS)
    base = res["generic"]
    for level, r in res.items():
        assert str(r["isa"]) == level
        for k in base:
            if k != "isa":
                np.testing.assert_array_equal(r[k], base[k], err_msg=f"{k} at {level}")


def test_same_as_torch_embedding():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(6)
    V, D = 50, 8
    table = rng.standard_normal((V, D)).astype(np.float32)
    ids = rng.integers(0, V, (4, 9))
    ids[:, -3:] = 0
    emb = torch.nn.Embedding(V, D, padding_idx=None)
    with torch.no_grad():
        emb.weight.copy_(torch.from_numpy(table))
    t_ids = torch.from_numpy(ids)
    ty = emb(t_ids)
    g = rng.standard_normal(ty.shape).astype(np.float32)
    ty.backward(torch.from_numpy(g))
    layer = layers.Embedding(V, D, mask_zero=True)
    layer.build((None, 9))
    layer.set_weights([table])
    y = layer(ids, training=True)
    np.testing.assert_array_equal(y, ty.detach().numpy())
    layer.backward(g, need_dx=False)
    np.testing.assert_allclose(layer.gradients[0], emb.weight.grad.numpy(), rtol=1e-6, atol=1e-6)


# ----------------------------------------------------------------- bad arguments
def test_ids_out_of_range_raise_index_error_naming_id_and_size():
    table = np.zeros((10, 3), np.float32)
    with pytest.raises(IndexError, match=r"token id 12 \(the largest id\).*10 rows"):
        ops.embedding(np.array([[1, 12, 11]]), table)
    with pytest.raises(IndexError, match=r"token id -2 is negative.*\[0, 10\)"):
        ops.embedding(np.array([3, -2]), table)
    with pytest.raises(IndexError, match="token id 10"):
        ops.embedding_backward(np.zeros((2, 3), np.float32), np.array([0, 10]), 10)
    with pytest.raises(IndexError, match=r"Embedding 'emb'.*token id 99.*10 rows"):
        layers.Embedding(10, 3, name="emb")(np.array([[1, 99]]))
    with pytest.raises(IndexError):   # huge and unsigned ids too: never an out-of-bounds read
        ops.embedding(np.array([2 ** 40], np.uint64), table)


def test_bad_arguments():
    table = np.zeros((10, 3), np.float32)
    with pytest.raises(ValueError, match="whole numbers"):
        ops.embedding(np.array([1.5]), table)
    with pytest.raises(ValueError, match="whole numbers"):
        ops.embedding(np.array([np.nan]), table)
    with pytest.raises(TypeError, match="ids must be integers"):
        ops.embedding(np.array(["a"]), table)
    with pytest.raises(TypeError, match="embeddings must be float32 or float64"):
        ops.embedding(np.array([1]), table.astype(np.int32))
    with pytest.raises(ValueError, match="embeddings must be 2-D"):
        ops.embedding(np.array([1]), np.zeros(10, np.float32))
    with pytest.raises(ValueError, match=r"dy has shape \(2, 4\) but ids have shape \(3,\)"):
        ops.embedding_backward(np.zeros((2, 4), np.float32), np.array([1, 2, 3]), 10)
    with pytest.raises(ValueError, match="input_dim must be positive"):
        ops.embedding_backward(np.zeros((1, 4), np.float32), np.array([0]), 0)
    with pytest.raises(ValueError, match="out"):
        ops.embedding_backward(np.zeros((1, 4), np.float32), np.array([0]), 3,
                               out=np.zeros((3, 5), np.float32))
    for bad in (dict(input_dim=0, output_dim=2), dict(input_dim=3, output_dim=-1),
                dict(input_dim=2.5, output_dim=2)):
        with pytest.raises(ValueError, match="Embedding"):
            layers.Embedding(**bad)
    with pytest.warns(UserWarning, match="input_length"):
        layers.Embedding(5, 2, input_length=7)


# ----------------------------------------------------------------- the layer
def test_layer_weights_mask_and_training():
    rng = np.random.default_rng(7)
    emb = layers.Embedding(30, 4, mask_zero=True)
    ids = rng.integers(0, 30, (5, 6))
    y = emb(ids)
    assert [w.shape for w in emb.weights] == [(30, 4)]
    assert emb._weight_names == ["embeddings"]
    assert np.abs(emb.get_weights()[0]).max() <= 0.05   # Keras' "uniform" initializer
    np.testing.assert_array_equal(y, emb.get_weights()[0][ids])
    np.testing.assert_array_equal(emb.compute_mask(ids), ids != 0)
    assert layers.Embedding(30, 4).compute_mask(ids) is None
    # trains: a model of it fits a target
    model = fastdl.Sequential([fastdl.Input((6,), dtype="int32"), layers.Embedding(30, 4),
                               layers.Flatten(), layers.Dense(1)])
    model.compile(optimizer=fastdl.optimizers.Adam(0.05), loss="mse")
    t = rng.standard_normal((5, 1)).astype(np.float32)
    h = model.fit(ids, t, epochs=30, verbose=0, batch_size=5)
    assert h.history["loss"][-1] < 0.5 * h.history["loss"][0]
    init = rng.standard_normal((30, 4)).astype(np.float32)
    e2 = layers.Embedding(30, 4, weights=[init])
    np.testing.assert_array_equal(e2(ids), init[ids])
