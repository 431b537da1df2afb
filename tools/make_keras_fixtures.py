"""Write the Keras 3 fixtures of tests/fixtures/keras/ with Keras 3 itself.

Run in an environment with TensorFlow's CPU build (not fastdl's):

    python -m venv tfvenv && tfvenv/bin/pip install tensorflow-cpu
    tfvenv/bin/python tools/make_keras_fixtures.py [out_dir]

For each model: <name>.keras (saved by Keras; also mlp.weights.h5), <name>.npz (the inputs x0, x1, ... and
Keras' predictions y0, y1, ...). Weights are random (seeded) rather than the initial
ones, so that biases and normalization statistics are not trivial. The models use the
layers fastdl has and those other work adds (Conv1D, Conv2DTranspose, DepthwiseConv2D,
SeparableConv2D, BatchNormalization, LayerNormalization, Embedding, Bidirectional,
TimeDistributed).
"""
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

import keras  # noqa: E402
from keras import layers  # noqa: E402


def randomize(model, rng):
    ws = []
    for v in model.weights:
        shape = tuple(v.shape)
        if "moving_variance" in v.path or "variance" in v.name:
            ws.append(rng.uniform(0.5, 1.5, shape).astype("float32"))
        else:
            ws.append(rng.normal(0.0, 0.4, shape).astype("float32"))
    model.set_weights(ws)


def models(rng):
    out = {}
    out["mlp"] = (keras.Sequential([
        keras.Input((8,)), layers.Dense(16, activation="relu"), layers.Dropout(0.3),
        layers.Dense(12, activation="tanh"), layers.Dense(4, activation="softmax")], name="mlp"),
        [(5, 8)])
    out["convnet"] = (keras.Sequential([
        keras.Input((12, 12, 3)), layers.Conv2D(4, 3, padding="same", activation="relu"),
        layers.MaxPooling2D(), layers.Conv2D(6, (3, 2), strides=(1, 2), activation="relu"),
        layers.AveragePooling2D(pool_size=2, padding="same"), layers.Flatten(),
        layers.Dense(5), layers.Softmax()], name="convnet"), [(3, 12, 12, 3)])
    a = keras.Input((6,), name="in_a")
    b = keras.Input((6,), name="in_b")
    h = layers.Add()([layers.Dense(6, activation="relu", name="da")(a), b])
    c = layers.Concatenate(name="cat")([h, layers.Dense(3, name="db")(b)])
    y = layers.Dense(2, activation="sigmoid", name="head")(c)
    out["functional_merge"] = (keras.Model([a, b], y, name="functional_merge"), [(4, 6), (4, 6)])
    out["simple_rnn"] = (keras.Sequential([
        keras.Input((7, 3)), layers.SimpleRNN(5, return_sequences=True),
        layers.SimpleRNN(4), layers.Dense(2)], name="simple_rnn"), [(3, 7, 3)])
    out["lstm"] = (keras.Sequential([
        keras.Input((6, 4)), layers.LSTM(5, return_sequences=True), layers.LSTM(3)],
        name="lstm"), [(3, 6, 4)])
    out["gru"] = (keras.Sequential([
        keras.Input((6, 4)), layers.GRU(5, return_sequences=True), layers.GRU(3),
        layers.Dense(2)], name="gru"), [(3, 6, 4)])
    # layers added by other work
    out["conv1d"] = (keras.Sequential([
        keras.Input((10, 3)), layers.Conv1D(4, 3, padding="same", activation="relu"),
        layers.Conv1D(2, 2, strides=2), layers.GlobalAveragePooling1D(), layers.Dense(2)],
        name="conv1d"), [(3, 10, 3)])
    out["conv2d_transpose"] = (keras.Sequential([
        keras.Input((5, 5, 2)), layers.Conv2DTranspose(3, 3, strides=2, padding="same"),
        layers.Conv2DTranspose(2, 2, activation="relu")], name="conv2d_transpose"),
        [(2, 5, 5, 2)])
    out["depthwise_separable"] = (keras.Sequential([
        keras.Input((8, 8, 3)), layers.DepthwiseConv2D(3, depth_multiplier=2, padding="same"),
        layers.SeparableConv2D(4, 3, activation="relu"), layers.GlobalAveragePooling2D()],
        name="depthwise_separable"), [(2, 8, 8, 3)])
    out["batchnorm"] = (keras.Sequential([
        keras.Input((6, 6, 2)), layers.Conv2D(3, 3), layers.BatchNormalization(),
        layers.Flatten(), layers.Dense(4), layers.BatchNormalization(),
        layers.Activation("relu")], name="batchnorm"), [(3, 6, 6, 2)])
    out["layernorm"] = (keras.Sequential([
        keras.Input((5, 4)), layers.LayerNormalization(), layers.Dense(3),
        layers.LayerNormalization(epsilon=1e-3)], name="layernorm"), [(3, 5, 4)])
    out["embedding"] = (keras.Sequential([
        keras.Input((7,), dtype="int32"), layers.Embedding(20, 4),
        layers.GlobalAveragePooling1D(), layers.Dense(2)], name="embedding"),
        [("int", 3, 7, 20)])
    out["bidirectional"] = (keras.Sequential([
        keras.Input((5, 3)), layers.Bidirectional(layers.LSTM(4, return_sequences=True)),
        layers.Bidirectional(layers.GRU(2))], name="bidirectional"), [(2, 5, 3)])
    out["time_distributed"] = (keras.Sequential([
        keras.Input((4, 6)), layers.TimeDistributed(layers.Dense(3, activation="relu")),
        layers.Flatten(), layers.Dense(2)], name="time_distributed"), [(2, 4, 6)])
    # keras-io's character-level seq2seq: an encoder LSTM's states (return_state) start the
    # decoder LSTM (initial_state=)
    enc_in, dec_in = keras.Input((None, 5)), keras.Input((None, 6))
    _, h, c = layers.LSTM(4, return_state=True)(enc_in)
    seq, _, _ = layers.LSTM(4, return_sequences=True, return_state=True)(dec_in,
                                                                         initial_state=[h, c])
    out["seq2seq"] = (keras.Model([enc_in, dec_in], layers.Dense(6, activation="softmax")(seq),
                                  name="seq2seq"), [(3, 7, 5), (3, 4, 6)])
    return out


def main(out_dir, only=None):
    os.makedirs(out_dir, exist_ok=True)
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    for name, (model, specs) in models(rng).items():
        randomize(model, rng)
        if only and name not in only:
            continue
        xs = []
        for s in specs:
            if s[0] == "int":
                xs.append(rng.integers(0, s[-1], s[1:-1]).astype("int32"))
            else:
                xs.append(rng.normal(0.0, 1.0, s).astype("float32"))
        ys = model.predict(xs if len(xs) > 1 else xs[0], verbose=0)
        ys = ys if isinstance(ys, list) else [ys]
        model.save(os.path.join(out_dir, name + ".keras"))
        if name == "mlp":       # one weights-only file in Keras' layout
            model.save_weights(os.path.join(out_dir, name + ".weights.h5"))
        np.savez(os.path.join(out_dir, name + ".npz"),
                 **{f"x{i}": x for i, x in enumerate(xs)},
                 **{f"y{i}": np.asarray(y) for i, y in enumerate(ys)})
        print(name, [x.shape for x in xs], "->", [np.asarray(y).shape for y in ys])


if __name__ == "__main__":
    # [out_dir] [names...]: all fixtures, or only the named ones
    main(sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "keras"),
        sys.argv[2:] or None)
