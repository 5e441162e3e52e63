"""Make the Keras fixtures of tests/test_keras.py: small recurrent models built with Keras 3 (and
Keras 2 through tf_keras), trained a few steps, saved as .keras (Keras 3) and .h5, with Keras's
own outputs on a fixed input. Needs tensorflow-cpu, keras and tf-keras: a developer's tool, never
a test or run-time dependency (the tests read the committed files with h5py only).

The tf2onnx fixtures of tests/test_keras_tf2onnx.py (Keras 3 GRU and SimpleRNN layers, which
tf2onnx 1.17 writes as ONNX Loops, alone, Bidirectional, with hard_sigmoid gates, returning their
state, stateful; one Keras 2 GRU through tf_keras; an LSTM returning its state, which tf2onnx
writes as the ONNX LSTM op) are exported with tf2onnx.convert.from_function (from_keras fails under Keras 3),
also with Keras's outputs (NAME.out.npy; a model returning its state: NAME.state.npz, h and c);
they need tf2onnx too. So do the tf2onnx exports of the Keras fixtures above
(tf2onnx_<name>.onnx, from the committed <name>.keras, or .h5 for k2_*: the same weights, so
Keras's committed <name>.out.npy is their oracle; tests/test_keras_tf2onnx.py).

    python tests/make_keras_fixtures.py             # rewrites tests/data/keras/
    python tests/make_keras_fixtures.py tf2onnx     # only the tf2onnx fixtures
    python tests/make_keras_fixtures.py tf2onnx NAME...  # only these tf2onnx fixtures
                                                    # (tf2onnx_k3_rnn: k3_rnn.keras exported)
    python tests/make_keras_fixtures.py h5 [NAME...]  # the .h5 of the committed .keras files
    python tests/make_keras_fixtures.py NAME...     # only these Keras fixtures (every model is
                                                    # still built, so each keeps its weights)
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

import numpy as np

OUT = Path(__file__).resolve().parent / "data" / "keras"
T, F = 8, 3
# the Keras 3 models also saved as legacy .h5 (20-70 KB each, mostly HDF5 structure): every one
# that converts, so that each layer and option is read from both files (the Masking one is refused
# before its weights are read)
H5_SKIP = ("k3_masking",)


VOCAB = 20  # the Embedding fixture's token ids: 0 .. VOCAB - 1


def fixed_input() -> np.ndarray:
    return np.random.default_rng(15).normal(0, 1, (2, T, F)).astype(np.float32)


MASKED_STEPS = (2, 5)  # the steps of fixed_input that the Masking fixture's input masks (zeros)


def masked_input() -> np.ndarray:
    x = fixed_input()
    x[:, list(MASKED_STEPS)] = 0.0
    return x


def fixed_ids() -> np.ndarray:
    return np.random.default_rng(15).integers(0, VOCAB, (2, T)).astype(np.int32)


def train(model, seed: int) -> None:
    """A few optimizer steps on random data, so that biases, norms and statistics leave their
    initial values."""
    rng = np.random.default_rng(seed)
    batch = model.inputs[0].shape[0] or 8
    if len(model.inputs[0].shape) == 2:  # token ids
        x = rng.integers(0, VOCAB, (4 * batch, T)).astype(np.int32)
    else:
        x = rng.normal(0, 1, (4 * batch, T, F)).astype(np.float32)
    shape = list(model.predict(x[:batch], verbose=0).shape[1:])  # a "valid" conv shortens the time axis
    y = rng.normal(0, 1, (4 * batch, *shape)).astype(np.float32)
    model.compile(optimizer="adam", loss="mse")
    model.optimizer.learning_rate = 0.05
    model.fit(x, y, batch_size=batch, epochs=3, verbose=0, shuffle=False)


def keras3_models() -> dict:
    import keras
    from keras import layers as L

    keras.utils.set_random_seed(15)
    m = {}
    m["k3_lstm_seq"] = keras.Sequential([
        keras.Input((None, F)),
        L.LSTM(6, return_sequences=True, recurrent_activation="hard_sigmoid", dropout=0.2,
               recurrent_dropout=0.2, unit_forget_bias=True),
        L.Dropout(0.3),
        L.TimeDistributed(L.Dense(4)),
        L.Activation("tanh"),
    ], name="k3_lstm_seq")  # fmt: skip
    inp = keras.Input((None, F), name="frames")
    x = L.GRU(6, reset_after=True, activation="softsign", name="gru_a")(inp)
    out = L.Dense(3, activation="softmax", name="probs")(x)
    m["k3_gru_after_fn"] = keras.Model(inp, out, name="k3_gru_after_fn")
    m["k3_gru_before"] = keras.Sequential([
        keras.Input((None, F)),
        L.GRU(5, reset_after=False, return_sequences=True, recurrent_activation="hard_sigmoid"),
        L.SpatialDropout1D(0.2),
        L.Dense(2, activation="elu"),
    ], name="k3_gru_before")  # fmt: skip
    m["k3_rnn"] = keras.Sequential([
        keras.Input((None, F)),
        L.SimpleRNN(5, activation="relu", use_bias=False, return_sequences=True),
        L.Dense(2, use_bias=False, activation="sigmoid"),
    ], name="k3_rnn")  # fmt: skip
    inp = keras.Input((None, F))
    x = L.Bidirectional(L.LSTM(4, return_sequences=True))(inp)
    x = L.LayerNormalization()(x)
    x = L.Bidirectional(L.GRU(3), merge_mode="ave")(x)
    out = L.Dense(2)(x)
    m["k3_bidi_stack"] = keras.Model(inp, out, name="k3_bidi_stack")
    m["k3_bidi_sum_back"] = keras.Sequential([
        keras.Input((None, F)),
        L.Bidirectional(L.SimpleRNN(4, return_sequences=True), merge_mode="sum"),
        L.BatchNormalization(),
        L.LSTM(4, go_backwards=True),
        L.Dense(1),
    ], name="k3_bidi_sum_back")  # fmt: skip
    m["k3_stateful"] = keras.Sequential([
        keras.Input(batch_shape=(2, None, F)),
        L.LSTM(5, stateful=True, return_sequences=True, use_bias=False),
        L.Dense(2),
    ], name="k3_stateful")  # fmt: skip
    # graph ops: token ids, convolutions over time, the product of two directions
    m["k3_embed_gru"] = keras.Sequential([
        keras.Input((None,), dtype="int32"),
        L.Embedding(VOCAB, 4),
        L.GRU(5, return_sequences=True),
        L.Dense(2),
    ], name="k3_embed_gru")  # fmt: skip
    m["k3_conv_lstm"] = keras.Sequential([
        keras.Input((None, F)),
        L.Conv1D(4, 3, padding="same"),
        L.Conv1D(4, 3, padding="causal", dilation_rate=2, activation="relu"),
        L.LSTM(5, return_sequences=True),
        L.Dense(2),
    ], name="k3_conv_lstm")  # fmt: skip
    m["k3_bidi_mul"] = keras.Sequential([
        keras.Input((None, F)),
        L.Bidirectional(L.GRU(4, return_sequences=True), merge_mode="mul"),
        L.Dense(2),
    ], name="k3_bidi_mul")  # fmt: skip
    # a conv that shortens the sequence by (3 - 1) * 1 steps, then per-step layers
    m["k3_conv_valid"] = keras.Sequential([
        keras.Input((None, F)),
        L.Conv1D(4, 3, padding="valid", activation="tanh"),
        L.GRU(5, return_sequences=True),
        L.Dense(2),
    ], name="k3_conv_valid")  # fmt: skip
    # Bidirectional with its own backward layer (other gate activations than the forward one's)
    # and the activations no other fixture has (softplus, log_softmax)
    m["k3_bidi_backward"] = keras.Sequential([
        keras.Input((None, F)),
        L.Bidirectional(L.LSTM(4, return_sequences=True),
                        backward_layer=L.LSTM(4, return_sequences=True, go_backwards=True,
                                              recurrent_activation="hard_sigmoid")),
        L.Dense(3, activation="softplus"),
        L.Activation("log_softmax"),
    ], name="k3_bidi_backward")  # fmt: skip
    # Masking: refused; its output is Keras's on masked_input()
    m["k3_masking"] = keras.Sequential([
        keras.Input((None, F)),
        L.Masking(0.0),
        L.GRU(4, return_sequences=True),
        L.Dense(2),
    ], name="k3_masking")  # fmt: skip
    return m


def keras2_models() -> dict:
    import tf_keras as keras
    from tf_keras import layers as L

    keras.utils.set_random_seed(16)
    m = {}
    m["k2_lstm_hard"] = keras.Sequential([
        L.LSTM(6, recurrent_activation="hard_sigmoid", activation="hard_sigmoid",
               return_sequences=True, input_shape=(None, F)),
        L.Dense(2),
    ], name="k2_lstm_hard")  # fmt: skip
    inp = keras.Input((None, F))
    x = L.Bidirectional(L.GRU(4, reset_after=False, recurrent_activation="hard_sigmoid"))(inp)
    out = L.Dense(2)(x)
    m["k2_bidi_gru"] = keras.Model(inp, out, name="k2_bidi_gru")
    # the other layers as Keras 2 writes them (its configs differ from Keras 3's): GRU with its
    # Keras 2 default reset_after=True, SimpleRNN, Conv1D, both norms, TimeDistributed(Dense)
    m["k2_conv_gru"] = keras.Sequential([
        L.Conv1D(4, 3, padding="causal", dilation_rate=2, activation="relu", input_shape=(None, F)),
        L.BatchNormalization(),
        L.GRU(5, return_sequences=True),
        L.LayerNormalization(),
        L.SimpleRNN(4, return_sequences=True),
        L.Dropout(0.2),
        L.TimeDistributed(L.Dense(3)),
        L.Activation("softmax"),
    ], name="k2_conv_gru")  # fmt: skip
    m["k2_embed_lstm"] = keras.Sequential([
        L.Embedding(VOCAB, 4, input_shape=(None,)),
        L.LSTM(5, return_sequences=True, unit_forget_bias=True),
        L.Dense(2, activation="tanh"),
    ], name="k2_embed_lstm")  # fmt: skip
    return m


def tf2onnx_models() -> dict:
    """Keras 3 layers that tf2onnx writes as a Loop: GRU with reset_after True and False (and one
    going backwards), SimpleRNN."""
    import keras
    from keras import layers as L

    keras.utils.set_random_seed(17)
    m = {}
    m["tf2onnx_gru_after"] = keras.Sequential([
        keras.Input((None, F)),
        L.GRU(5, return_sequences=True),
        L.Dense(2),
    ], name="tf2onnx_gru_after")  # fmt: skip
    m["tf2onnx_gru_before"] = keras.Sequential([
        keras.Input((None, F)),
        L.GRU(4, reset_after=False, return_sequences=True),
        L.Dense(2, activation="tanh"),
    ], name="tf2onnx_gru_before")  # fmt: skip
    m["tf2onnx_rnn"] = keras.Sequential([
        keras.Input((None, F)),
        L.SimpleRNN(4),
        L.Dense(2),
    ], name="tf2onnx_rnn")  # fmt: skip
    # go_backwards: tf2onnx reverses the input before the Loop
    m["tf2onnx_gru_back"] = keras.Sequential([
        keras.Input((None, F)),
        L.GRU(3, go_backwards=True),
        L.Dense(2),
    ], name="tf2onnx_gru_back")  # fmt: skip
    # Bidirectional: a forward Loop and one over the reversed input, joined by a Concat or an Add
    m["tf2onnx_bidi_gru_concat"] = keras.Sequential([
        keras.Input((None, F)),
        L.Bidirectional(L.GRU(4, return_sequences=True)),
        L.Dense(2),
    ], name="tf2onnx_bidi_gru_concat")  # fmt: skip
    m["tf2onnx_bidi_gru_sum"] = keras.Sequential([
        keras.Input((None, F)),
        L.Bidirectional(L.GRU(3, reset_after=False, return_sequences=True), merge_mode="sum"),
        L.Dense(2),
    ], name="tf2onnx_bidi_gru_sum")  # fmt: skip
    m["tf2onnx_bidi_rnn"] = keras.Sequential([
        keras.Input((None, F)),
        L.Bidirectional(L.SimpleRNN(4)),
        L.Dense(2),
    ], name="tf2onnx_bidi_rnn")  # fmt: skip
    # Keras 3's hard_sigmoid: relu6(x + 3) / 6, spelled out in the body
    m["tf2onnx_gru_hard"] = keras.Sequential([
        keras.Input((None, F)),
        L.GRU(4, recurrent_activation="hard_sigmoid", return_sequences=True),
        L.Dense(2),
    ], name="tf2onnx_gru_hard")  # fmt: skip
    # return_state=True: the Loop's carried final state (GRU); the LSTM op's Y_h and Y_c
    for name, layer in (("tf2onnx_gru_state", L.GRU(4, return_sequences=True, return_state=True)),
                        ("tf2onnx_lstm_state", L.LSTM(4, return_sequences=True, return_state=True))):
        inp = keras.Input((None, F))
        y, *states = layer(inp)
        out = L.Dense(2)(y)
        m[name] = (keras.Model(inp, out), keras.Model(inp, [out, *states], name=name))
    # stateful (batch 2): its state variable, reset before predict and export, is the Loop's
    # initial state, a zeros constant
    m["tf2onnx_gru_stateful"] = keras.Sequential([
        keras.Input(batch_shape=(2, None, F)),
        L.GRU(4, stateful=True, return_sequences=True),
        L.Dense(2),
    ], name="tf2onnx_gru_stateful")  # fmt: skip
    return m


def keras2_tf2onnx_models() -> dict:
    """A Keras 2 (tf_keras) GRU whose hard_sigmoid is 0.2 x + 0.5 clipped, spelled out in the
    Loop body."""
    import tf_keras as keras
    from tf_keras import layers as L

    keras.utils.set_random_seed(18)
    return {"tf2onnx_k2_gru_hard": keras.Sequential([
        L.GRU(4, recurrent_activation="hard_sigmoid", reset_after=False, return_sequences=True,
              input_shape=(None, F)),
        L.Dense(2),
    ], name="tf2onnx_k2_gru_hard")}  # fmt: skip


def export_tf2onnx(model, path: Path, ids: bool = False) -> None:
    """`ids`: the model takes token ids ([batch, time] int32), not [batch, time, F] floats."""
    import onnx
    import tensorflow as tf
    import tf2onnx

    if ids:
        spec = (tf.TensorSpec((None, None), tf.int32, name="x"),)
    else:
        spec = (tf.TensorSpec((None, None, F), tf.float32, name="x"),)
    fn = tf.function(lambda x: model(x, training=False))
    proto, _ = tf2onnx.convert.from_function(fn, input_signature=spec, opset=17)
    onnx.save(proto, path)


def make_tf2onnx(x: np.ndarray, names: list[str]) -> int:
    """The tf2onnx fixtures (those named, or all): a model returning its state is trained
    through its single-output twin (the same layers) and saved with the states."""
    k3 = tf2onnx_models()
    k2 = keras2_tf2onnx_models() if not names or "tf2onnx_k2_gru_hard" in names else {}
    unknown = set(names) - set(k3) - {"tf2onnx_k2_gru_hard"}
    if unknown:
        print(f"no such fixture: {', '.join(sorted(unknown))}\n{__doc__}")
        return 2
    for k, (name, model) in enumerate({**k3, **k2}.items()):
        if names and name not in names:
            continue
        trained, model = model if isinstance(model, tuple) else (model, model)
        train(trained, 200 + k)
        stateful = [layer for layer in model.layers if getattr(layer, "stateful", False)]
        for layer in stateful:
            layer.reset_states()
        ys = model.predict(x, verbose=0)
        y, *states = [np.asarray(v, np.float32) for v in (ys if isinstance(ys, list) else [ys])]
        for layer in stateful:
            layer.reset_states()
        export_tf2onnx(model, OUT / f"{name}.onnx")
        np.save(OUT / f"{name}.out.npy", y)
        if states:
            np.savez(OUT / f"{name}.state.npz", **dict(zip("hc", states)))
        print(f"{name}: output {list(y.shape)}" + "".join(f", state {list(s.shape)}" for s in states))
    return 0


# the Keras fixtures also exported by tf2onnx, as tf2onnx_<name>.onnx, from their committed
# .keras (Keras 3) or .h5 (Keras 2) file: the same trained weights, so Keras's committed
# <name>.out.npy is their oracle too (no retraining, no .out.npy of their own)
KERAS_VIA_TF2ONNX = ("k3_lstm_seq", "k3_gru_after_fn", "k3_gru_before", "k3_rnn", "k3_bidi_stack",
                     "k3_bidi_sum_back", "k3_stateful", "k3_embed_gru", "k3_conv_lstm", "k3_bidi_mul",
                     "k3_conv_valid", "k3_masking", "k2_lstm_hard", "k2_bidi_gru", "k3_bidi_backward",
                     "k2_conv_gru", "k2_embed_lstm")


def make_tf2onnx_of_keras(names: list[str]) -> int:
    """tf2onnx exports of the committed Keras fixtures (those named, or all)."""
    unknown = set(names) - set(KERAS_VIA_TF2ONNX)
    if unknown:
        print(f"no such fixture: {', '.join(sorted(unknown))}\n{__doc__}")
        return 2
    for name in KERAS_VIA_TF2ONNX:
        if names and name not in names:
            continue
        # a fresh session per model: its node names (which tests pin) do not depend on the
        # models loaded before it
        if name.startswith("k2_"):
            import tf_keras

            tf_keras.backend.clear_session()
            model = tf_keras.models.load_model(OUT / f"{name}.h5")
        else:
            import keras

            keras.backend.clear_session()
            model = keras.models.load_model(OUT / f"{name}.keras")
        for layer in model.layers:  # a stateful layer exports its state variable: zeros
            if getattr(layer, "stateful", False):
                layer.reset_states()
        export_tf2onnx(model, OUT / f"tf2onnx_{name}.onnx", ids="embed" in name)
        print(f"tf2onnx_{name}: {(OUT / f'tf2onnx_{name}.onnx').stat().st_size} bytes")
    return 0


def make_h5_of_keras(names: list[str]) -> int:
    """The legacy .h5 of committed Keras 3 fixtures (those named, or all but H5_SKIP), loaded
    from their .keras file: the same weights, checked against the committed <name>.out.npy."""
    import keras

    x, ids = fixed_input(), fixed_ids()
    stems = sorted(p.stem for p in OUT.glob("k3_*.keras") if p.stem not in H5_SKIP)
    unknown = set(names) - set(stems)
    if unknown:
        print(f"no such fixture: {', '.join(sorted(unknown))}\n{__doc__}")
        return 2
    for name in stems:
        if names and name not in names:
            continue
        keras.backend.clear_session()
        model = keras.models.load_model(OUT / f"{name}.keras")
        for layer in model.layers:
            if getattr(layer, "stateful", False):
                layer.reset_states()
        model.save(OUT / f"{name}.h5")
        again = keras.models.load_model(OUT / f"{name}.h5", compile=False)
        y = np.asarray(again.predict(ids if "embed" in name else x, verbose=0), np.float32)
        want = np.load(OUT / f"{name}.out.npy")
        err = float(np.abs(y - want).max() / np.abs(want).max())
        assert err <= 1e-6, f"{name}.h5: Keras's output moved by {err:.3g}"
        print(f"{name}.h5: {(OUT / f'{name}.h5').stat().st_size} bytes, Keras's output within {err:.2g}")
    return 0


def main(argv: list[str]) -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    x = fixed_input()
    if argv[:1] == ["h5"]:
        return make_h5_of_keras(argv[1:])
    if argv[:1] == ["tf2onnx"]:
        named = argv[1:]  # tf2onnx_<keras fixture>: exported from its committed file
        keras_names = [n.removeprefix("tf2onnx_") for n in named]
        of_keras = [k for k in keras_names if k in KERAS_VIA_TF2ONNX]
        own = [n for n, k in zip(named, keras_names) if k not in KERAS_VIA_TF2ONNX]
        rc = make_tf2onnx(x, own) if own or not named else 0
        return rc or (make_tf2onnx_of_keras(of_keras) if of_keras or not named else 0)
    ids = fixed_ids()
    if not argv:
        np.save(OUT / "input.npy", x)
        np.save(OUT / "input_ids.npy", ids)
    k3, k2 = keras3_models(), keras2_models()
    unknown = set(argv) - set(k3) - set(k2)
    if unknown:
        print(f"no such fixture: {', '.join(sorted(unknown))}\n{__doc__}")
        return 2
    for k, (name, model) in enumerate(k3.items()):
        if argv and name not in argv:
            continue
        train(model, k)
        if name == "k3_stateful":
            model.layers[0].reset_states()
        inp = ids if "embed" in name else masked_input() if name == "k3_masking" else x
        y = np.asarray(model.predict(inp, verbose=0), np.float32)
        model.save(OUT / f"{name}.keras")
        if name not in H5_SKIP:
            model.save(OUT / f"{name}.h5")
        np.save(OUT / f"{name}.out.npy", y)
        print(f"{name}: output {list(y.shape)}")
    for k, (name, model) in enumerate(k2.items()):
        if argv and name not in argv:
            continue
        train(model, 100 + k)
        y = np.asarray(model.predict(ids if "embed" in name else x, verbose=0), np.float32)
        model.save(OUT / f"{name}.h5")
        np.save(OUT / f"{name}.out.npy", y)
        print(f"{name}: output {list(y.shape)}")
    if not argv:
        return make_tf2onnx(x, []) or make_tf2onnx_of_keras([])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
