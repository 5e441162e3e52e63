"""Keras model files (.keras, .h5) converted directly, without TensorFlow (docs/keras.md).

The fixtures in tests/data/keras/ were made by tests/make_keras_fixtures.py with Keras 3.15 and
tf_keras 2.21 (Keras 2); each carries Keras's own output on input.npy, which is the oracle here.
"""

from __future__ import annotations

import json
import io
import shutil
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest

h5py = pytest.importorskip("h5py")

import rnnedge  # noqa: E402
from rnnedge import fixedpoint as fx  # noqa: E402
from rnnedge.cli import main  # noqa: E402
from rnnedge.conversion import convert  # noqa: E402
from rnnedge.converter.keras import SUPPORTED, keras_to_model  # noqa: E402
from rnnedge.errors import ConvertError, InputError, UnsupportedOpError  # noqa: E402
from rnnedge.ir.graph import Graph  # noqa: E402
from rnnedge.ir.layers import Recurrent, from_tbf, to_tbf  # noqa: E402

DATA = Path(__file__).resolve().parent / "data" / "keras"
X = np.load(DATA / "input.npy")  # [2, 8, 3], batch first as Keras takes it
IDS = np.load(DATA / "input_ids.npy")  # [2, 8] token ids, the Embedding fixture's input
ALL_FILES = sorted(p.name for p in DATA.iterdir() if p.suffix in (".keras", ".h5"))
REFUSED = ("k3_masking",)  # test_masking_refused_with_what_to_do
FILES = [f for f in ALL_FILES if f.rsplit(".", 1)[0] not in REFUSED]
# bidirectional and go_backwards layers need the whole sequence: no step-by-step run
STREAMABLE = ("k3_lstm_seq", "k3_gru_after_fn", "k3_gru_before", "k3_rnn", "k3_stateful", "k2_lstm_hard",
              "k3_embed_gru", "k3_conv_lstm", "k3_conv_valid", "k2_conv_gru", "k2_embed_lstm")
# graph ops (docs/graph.md): these convert to a dataflow Graph, not a layer pipeline
GRAPHS = ("k3_embed_gru", "k3_conv_lstm", "k3_bidi_mul", "k3_conv_valid", "k2_conv_gru", "k2_embed_lstm")
# a stream lags by the lookahead of its convs: Conv1D "same" (k3_conv_lstm: k 3, d 1 after a
# causal one) and "valid" (k3_conv_valid: k 3, whose Keras output is 2 steps shorter)
LATENCY = {"k3_conv_lstm": 1, "k3_conv_valid": 2}
SHORTER = {"k3_conv_valid": 2}  # Keras's output is that many steps shorter than the input


def x_for(name: str) -> np.ndarray:
    return IDS if "embed" in name else X


def keras_out(name: str) -> np.ndarray:
    return np.load(DATA / f"{name.rsplit('.', 1)[0]}.out.npy")


def rel(y: np.ndarray, want: np.ndarray) -> float:
    return float(np.abs(y - want).max() / np.abs(want).max())


def test_every_fixture_is_listed():
    assert len(ALL_FILES) == 29
    # every Keras 3 model that converts is read from its .keras and its legacy .h5 file
    keras3 = {f[: -len(".keras")] for f in ALL_FILES if f.endswith(".keras")} - set(REFUSED)
    assert keras3 == {f[: -len(".h5")] for f in ALL_FILES if f.startswith("k3_") and f.endswith(".h5")}
    outs = {p.name[: -len(".out.npy")] for p in DATA.glob("*.out.npy")}
    tf2onnx = {p.stem for p in DATA.glob("*.onnx")}  # tests/test_keras_tf2onnx.py reads those
    assert {f.rsplit(".", 1)[0] for f in ALL_FILES} == outs - tf2onnx


@pytest.mark.parametrize("fname", FILES)
def test_f32_equals_keras(fname, tmp_path):
    out = tmp_path / "m.rne"
    stem = fname.rsplit(".", 1)[0]
    x = x_for(stem)
    net = convert(DATA / fname, out)
    assert net.producer.startswith("keras ")
    assert isinstance(net, Graph) == (stem in GRAPHS)
    m = rnnedge.load(out)
    want = keras_out(fname)
    y = m.run(x)
    short = SHORTER.get(stem, 0)
    assert y.shape[0] == want.shape[0] and y.shape[2:] == want.shape[2:]
    if want.ndim == 3:
        # Model.run gives a row per input step: after a "valid" conv, Keras's rows and then
        # `short` more (the conv over zeros past the end), docs/keras.md
        assert y.shape[1] == want.shape[1] + short
        y = y[:, : y.shape[1] - short]
    assert rel(y, want) <= 1e-5, rel(y, want)
    assert m.streamable == (stem in STREAMABLE)
    if stem in STREAMABLE:
        s = m.stream(batch=2)
        steps = np.stack([s.step(x[:, t]).copy() for t in range(x.shape[1])], axis=1)
        if want.ndim == 2:  # many-to-one: the last step's output
            steps = steps[:, -1]
        lag = m.latency_steps  # Conv1D padding "same" or "valid" looks ahead: a stream lags by that
        assert lag == LATENCY.get(stem, 0)
        assert not steps[:, :lag].any()
        assert rel(steps[:, lag:], want[:, : x.shape[1] - lag]) <= 1e-5  # "valid": all of Keras's


# k3_gru_after_fn's GRU uses softsign, which has no integer form (test_softsign_gru_stays_f32)
INTEGER = [f for f in FILES if "gru_after" not in f]


@pytest.mark.parametrize("quant,bar", [("int16", 1e-3), ("int8", 1e-2)])
@pytest.mark.parametrize("fname", INTEGER)
def test_integer_within_the_bar(fname, quant, bar, tmp_path):
    out = tmp_path / "m.rne"
    with warnings.catch_warnings():  # an int8 layer kept at int16 weights warns: the bar is the test
        warnings.simplefilter("ignore")
        qnet = convert(DATA / fname, out, quant=quant, calibration=x_for(fname))
    m = rnnedge.load(out)
    y = m.run(x_for(fname))
    want = keras_out(fname)
    y = y[:, : want.shape[1]] if want.ndim == 3 else y  # a "valid" conv: Keras's rows come first
    err = float(np.abs(y - want).max() / (want.max() - want.min()))
    assert err <= bar, f"{quant} {fname}: {err:.3g} of the output range"
    # the C library computes the integers of the numpy oracle, bit for bit
    if isinstance(qnet, Graph):
        if qnet.latency:
            return  # Model.run flushes the lookahead; test_graph_e2e covers that path
        xs = x_for(fname)
        if "embed" in fname:
            xq = xs.T[..., None]  # [T, B, 1] ids
        else:
            xq = fx.quantize(to_tbf(xs, "BTF"), qnet.in_scale)
        yq, _ = fx.run_qgraph(qnet, xq)
        oracle = from_tbf(fx.dequantize(yq, qnet.out_scale), qnet.output_spec.axes)
    else:
        oracle = from_tbf(fx.run_quantized(qnet, to_tbf(X, "BTF")), qnet.source.output.axes)
    np.testing.assert_array_equal(y, oracle)


def test_softsign_gru_stays_f32():
    with pytest.raises(UnsupportedOpError, match=r"activation 'Softsign' .* has no integer form in a GRU"):
        convert(DATA / "k3_gru_after_fn.keras", quant="int16", calibration=X)


def test_weights_in_onnx_layout():
    """Keras LSTM gates i, f, c, o become ONNX i, o, f, c; GRU z, r, h stay; reset_after is
    linear_before_reset with the recurrent bias in the second half."""
    net = keras_to_model(DATA / "k3_lstm_seq.keras")
    lstm = net.layers[0]
    assert isinstance(lstm, Recurrent) and lstm.cell == "lstm" and lstm.direction == "forward"
    with zipfile.ZipFile(DATA / "k3_lstm_seq.keras") as z:
        with h5py.File(io.BytesIO(z.read("model.weights.h5")), "r") as f:
            kernel = f["layers/lstm/cell/vars/0"][()]
            bias = f["layers/lstm/cell/vars/2"][()]
    H = 6
    for onnx_gate, keras_gate in enumerate((0, 3, 1, 2)):
        np.testing.assert_array_equal(lstm.W[0, onnx_gate * H : (onnx_gate + 1) * H],
                                      kernel[:, keras_gate * H : (keras_gate + 1) * H].T)  # fmt: skip
        np.testing.assert_array_equal(lstm.B[0, onnx_gate * H : (onnx_gate + 1) * H],
                                      bias[keras_gate * H : (keras_gate + 1) * H])  # fmt: skip
    assert not lstm.B[0, 4 * H :].any()  # Keras has one bias: the recurrent one is zero
    gru = keras_to_model(DATA / "k3_gru_after_fn.keras").layers[0]
    assert gru.linear_before_reset and gru.B[0, 9 * 2 :].any()
    assert not keras_to_model(DATA / "k3_gru_before.keras").layers[0].linear_before_reset


def test_hard_sigmoid_follows_the_keras_version(tmp_path):
    """Keras 2's hard_sigmoid is clip(0.2 x + 0.5), Keras 3's clip(x / 6 + 0.5): the version the
    file records decides, and the other slope would miss Keras's numbers."""
    k2 = keras_to_model(DATA / "k2_lstm_hard.h5").layers[0]
    assert [a.kind for a in k2.activations[0]] == ["HardSigmoid"] * 3
    assert k2.activations[0][0].alpha == pytest.approx(0.2)
    k3 = keras_to_model(DATA / "k3_lstm_seq.keras").layers[0]
    assert k3.activations[0][0].kind == "HardSigmoid"
    assert k3.activations[0][0].alpha == pytest.approx(1 / 6)
    wrong = tmp_path / "k2_as_k3.h5"
    shutil.copy(DATA / "k2_lstm_hard.h5", wrong)
    with h5py.File(wrong, "r+") as f:
        f.attrs["keras_version"] = "3.15.1"
    convert(wrong, tmp_path / "m.rne")
    y = rnnedge.load(tmp_path / "m.rne").run(X)
    assert rel(y, keras_out("k2_lstm_hard")) > 1e-2


def edited(tmp_path: Path, source: str, edit) -> Path:
    """A copy of a .keras fixture whose config.json `edit` changed (a dict, changed in place)."""
    out = tmp_path / source
    with zipfile.ZipFile(DATA / source) as zin, zipfile.ZipFile(out, "w") as zout:
        for item in zin.namelist():
            data = zin.read(item)
            if item == "config.json":
                cfg = json.loads(data)
                edit(cfg)
                data = json.dumps(cfg).encode()
            zout.writestr(item, data)
    return out


def test_unsupported_layer_refused_by_name_and_class(tmp_path):
    names = []

    def to_noise(cfg):
        layer = cfg["config"]["layers"][2]
        names.append(layer["config"]["name"])
        assert layer["class_name"] == "Dropout"
        layer["class_name"] = "GaussianNoise"
        layer["config"] = {"name": layer["config"]["name"], "stddev": 0.1}

    path = edited(tmp_path, "k3_lstm_seq.keras", to_noise)
    with pytest.raises(ConvertError) as e:
        convert(path)
    msg = str(e.value)
    assert f"{names[0]!r} (GaussianNoise)" in msg and "is not a layer the Keras importer converts" in msg
    assert "supported: " + ", ".join(SUPPORTED) in msg


MASKED_STEPS = (2, 5)  # tests/make_keras_fixtures.py: k3_masking's input is input.npy with these zeroed


def test_masking_refused_with_what_to_do(tmp_path):
    """Masking is refused by name; what the message advises gives Keras's numbers: the model
    without its Masking layer (the same weights) run on the unmasked steps only."""
    with pytest.raises(ConvertError) as e:
        convert(DATA / "k3_masking.keras")
    msg = str(e.value)
    assert "layer 'masking' (Masking) has mask_value=0.0: Keras skips every step" in msg
    assert "save the model without the Masking layer" in msg and "only the unmasked steps" in msg

    def unmask(cfg):
        layers = cfg["config"]["layers"]
        assert layers[1]["class_name"] == "Masking"
        del layers[1]

    out = tmp_path / "m.rne"
    convert(edited(tmp_path, "k3_masking.keras", unmask), out)
    kept = [t for t in range(X.shape[1]) if t not in MASKED_STEPS]
    y = rnnedge.load(out).run(X[:, kept])
    want = keras_out("k3_masking")  # Keras's output on the masked input, [2, 8, 2]
    assert rel(y, want[:, kept]) <= 1e-5
    for t in MASKED_STEPS:  # Keras repeats the previous step's output at a masked step
        np.testing.assert_array_equal(want[:, t], want[:, t - 1])


def test_merge_mode_none_refused(tmp_path):
    def to_none(cfg):
        layer = cfg["config"]["layers"][3]
        assert layer["class_name"] == "Bidirectional"
        layer["config"]["merge_mode"] = None

    with pytest.raises(ConvertError, match=r"'bidirectional\w*' \(Bidirectional\) has merge_mode=None"):
        convert(edited(tmp_path, "k3_bidi_stack.keras", to_none))


@pytest.mark.parametrize("change,what", [
    ({"return_sequences": False}, "takes the last step"),
    ({"go_backwards": True, "return_sequences": False}, "runs backwards from the end of the sequence"),
])  # fmt: skip
def test_valid_conv_then_the_sequence_end_refused(tmp_path, change, what):
    """After a "valid" conv Keras's sequence ends before the input's: a layer that needs its end
    (the last step, a backward run) would not get Keras's numbers from Model.run."""

    def edit(cfg):
        layer = cfg["config"]["layers"][2]
        assert layer["class_name"] == "GRU"
        layer["config"].update(change)

    with pytest.raises(ConvertError, match=rf"'gru\w*' \(GRU\) {what} after layer 'conv1d\w*' \(Conv1D\) "
                                           r"with padding='valid': Keras's sequence there ends 2 steps"):
        convert(edited(tmp_path, "k3_conv_valid.keras", edit))


def test_masked_embedding_refused(tmp_path):
    def mask(cfg):
        cfg["config"]["layers"][1]["config"]["mask_zero"] = True

    with pytest.raises(ConvertError, match=r"\(Embedding\) has mask_zero=True"):
        convert(edited(tmp_path, "k3_embed_gru.keras", mask))


def test_go_backwards_with_sequences_refused(tmp_path):
    def seqs(cfg):
        cfg["config"]["layers"][3]["config"]["return_sequences"] = True

    with pytest.raises(ConvertError, match=r"'lstm\w*' \(LSTM\) has go_backwards=True with return_sequences=True"):
        convert(edited(tmp_path, "k3_bidi_sum_back.keras", seqs))


def test_unknown_activation_refused(tmp_path):
    def gelu(cfg):
        cfg["config"]["layers"][2]["config"]["activation"] = "gelu"

    with pytest.raises(ConvertError, match=r"'probs' \(Dense\) \(activation\) uses the activation 'gelu'"):
        convert(edited(tmp_path, "k3_gru_after_fn.keras", gelu))


def test_not_a_keras_file(tmp_path):
    bad = tmp_path / "model.keras"
    bad.write_bytes(b"not a model")
    with pytest.raises(ConvertError, match="neither a Keras 3 .keras file"):
        convert(bad)
    with pytest.raises(InputError, match="not to a Keras model file"):
        convert(DATA / "k3_rnn.keras", fixed={"x": 1})


def test_cli_converts_a_keras_file(tmp_path, capsys):
    out = tmp_path / "m.rne"
    assert main(["convert", str(DATA / "k3_gru_after_fn.keras"), "-o", str(out)]) == 0
    assert "k3_gru_after_fn.keras" in capsys.readouterr().out
    assert rel(rnnedge.load(out).run(X), keras_out("k3_gru_after_fn")) <= 1e-5


def test_weights_found_by_class_without_recorded_names(tmp_path):
    """A .keras file whose weight groups do not record the layer names (Keras 3 names the groups
    by class: lstm, lstm_1, ...) is read by that naming, to the same numbers."""
    src = DATA / "k3_bidi_stack.keras"
    out = tmp_path / src.name
    with zipfile.ZipFile(src) as zin:
        weights = tmp_path / "w.h5"
        weights.write_bytes(zin.read("model.weights.h5"))
        with h5py.File(weights, "r+") as f:
            for g in f["layers"]:
                if "vars" in f["layers"][g]:
                    del f["layers"][g]["vars"].attrs["name"]
        with zipfile.ZipFile(out, "w") as zout:
            for item in zin.namelist():
                data = weights.read_bytes() if item == "model.weights.h5" else zin.read(item)
                zout.writestr(item, data)
    convert(out, tmp_path / "m.rne")
    assert rel(rnnedge.load(tmp_path / "m.rne").run(X), keras_out("k3_bidi_stack")) <= 1e-5


def test_branching_functional_refused(tmp_path):
    """A layer that takes two tensors (a residual, a merge) is no straight chain."""

    def two_inputs(cfg):
        node = cfg["config"]["layers"][2]["inbound_nodes"][0]
        node["args"] = [node["args"] + node["args"]]  # called on [gru_a, gru_a]

    with pytest.raises(ConvertError, match=r"layer 'probs' \(Dense\) takes 2 inputs; rnnedge reads"):
        convert(edited(tmp_path, "k3_gru_after_fn.keras", two_inputs))


def test_keras2_call_arguments_refused(tmp_path):
    """A Keras 2 .h5 layer called with an argument beyond its input (initial_state, ...) is
    refused, not converted without it."""
    path = tmp_path / "k2.h5"
    shutil.copy(DATA / "k2_bidi_gru.h5", path)
    with h5py.File(path, "r+") as f:
        cfg = json.loads(f.attrs["model_config"])
        layer = cfg["config"]["layers"][1]
        assert layer["class_name"] == "Bidirectional"
        layer["inbound_nodes"][0][0][3] = {"initial_state": [["input_1", 0, 0]]}
        f.attrs["model_config"] = json.dumps(cfg)
    with pytest.raises(ConvertError, match=r"'bidirectional' \(Bidirectional\) is called with initial_state"):
        convert(path)
