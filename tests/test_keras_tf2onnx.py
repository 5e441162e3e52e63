"""Keras GRU and SimpleRNN layers exported by tf2onnx 1.17 as ONNX Loops, read as the native cells
(rnnedge/converter/tf2onnx_loop.py, docs/keras.md "Through tf2onnx").

The fixtures (tests/data/keras/tf2onnx_*.onnx) were made by `tests/make_keras_fixtures.py tf2onnx`
with Keras 3.15 and tf2onnx 1.17; each carries Keras's own output on input.npy.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import onnx
import pytest

import rnnedge
from rnnedge import fixedpoint as fx
from rnnedge.conversion import convert
from rnnedge.converter import to_network
from rnnedge.errors import UnsupportedOpError
from rnnedge.ir.layers import Recurrent, from_tbf, to_tbf

DATA = Path(__file__).resolve().parent / "data" / "keras"
X = np.load(DATA / "input.npy")  # [2, 8, 3]
CELLS = {  # fixture -> (cell, linear_before_reset, direction): reset_after=True is ONNX
    # linear_before_reset=1; go_backwards (tf2onnx reverses the input before the Loop) is "reverse"
    "tf2onnx_gru_after": ("gru", True, "forward"),
    "tf2onnx_gru_before": ("gru", False, "forward"),
    "tf2onnx_rnn": ("rnn", False, "forward"),
    "tf2onnx_gru_back": ("gru", True, "reverse"),
}


def rel(y: np.ndarray, want: np.ndarray) -> float:
    return float(np.abs(y - want).max() / np.abs(want).max())


def test_every_fixture_is_listed():
    assert sorted(p.stem for p in DATA.glob("*.onnx")) == sorted(CELLS)


@pytest.mark.parametrize("name", sorted(CELLS))
def test_the_loop_is_the_native_cell(name):
    net = to_network(DATA / f"{name}.onnx")
    recs = [l for l in net.layers if isinstance(l, Recurrent)]
    assert [(r.cell, r.linear_before_reset, r.direction) for r in recs] == [CELLS[name]]
    assert any("tf2onnx Loop of a Keras" in n for n in net.folded)


@pytest.mark.parametrize("name", sorted(CELLS))
def test_f32_equals_keras_and_onnxruntime(name, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    out = tmp_path / "m.rne"
    convert(DATA / f"{name}.onnx", out)
    m = rnnedge.load(out)
    want = np.load(DATA / f"{name}.out.npy")
    y = m.run(X)
    assert y.shape == want.shape
    assert rel(y, want) <= 1e-5, rel(y, want)
    (want_ort,) = ort.InferenceSession(str(DATA / f"{name}.onnx")).run(None, {"x": X})
    assert rel(y, want_ort) <= 1e-5, rel(y, want_ort)
    assert m.streamable == (CELLS[name][2] == "forward")
    if not m.streamable:  # going backwards needs the whole sequence
        return
    s = m.stream(batch=2)
    steps = np.stack([s.step(X[:, t]).copy() for t in range(X.shape[1])], axis=1)
    if want.ndim == 2:  # SimpleRNN without return_sequences: the last step
        steps = steps[:, -1]
    assert rel(steps, want) <= 1e-5


@pytest.mark.parametrize("quant,bar", [("int16", 1e-3), ("int8", 1e-2)])
@pytest.mark.parametrize("name", sorted(CELLS))
def test_integer_within_the_bar(name, quant, bar, tmp_path):
    out = tmp_path / "m.rne"
    with warnings.catch_warnings():  # an int8 layer kept at int16 weights warns: the bar is the test
        warnings.simplefilter("ignore")
        qnet = convert(DATA / f"{name}.onnx", out, quant=quant, calibration=X)
    y = rnnedge.load(out).run(X)
    want = np.load(DATA / f"{name}.out.npy")
    err = float(np.abs(y - want).max() / (want.max() - want.min()))
    assert err <= bar, f"{quant} {name}: {err:.3g} of the output range"
    oracle = from_tbf(fx.run_quantized(qnet, to_tbf(X, "BTF")), qnet.source.output.axes)
    np.testing.assert_array_equal(y, oracle)  # the C library computes the oracle's integers


# -- what does not match is refused by name -----------------------------------------------------


def body_edit(tmp_path: Path, name: str, edit) -> Path:
    """A copy of a fixture whose Loop body `edit` changed (the body GraphProto, in place)."""
    m = onnx.load(DATA / f"{name}.onnx")
    (loop,) = [n for n in m.graph.node if n.op_type == "Loop"]
    edit(loop.attribute[0].g)
    out = tmp_path / f"{name}.onnx"
    onnx.save(m, out)
    return out


def refused(path: Path) -> str:
    with pytest.raises(UnsupportedOpError) as e:
        to_network(path)
    msg = str(e.value)
    assert "(op Loop" in msg and "found an unrolled recurrent net" in msg
    assert "whose body is not a Keras GRU or SimpleRNN cell as tf2onnx writes it" in msg
    assert "convert the Keras model file (.keras or .h5) directly" in msg
    return msg


def node_of(body: onnx.GraphProto, op: str) -> onnx.NodeProto:
    return next(n for n in body.node if n.op_type == op)


def test_one_minus_z_must_be_one_minus(tmp_path):
    def edit(body):
        sub = node_of(body, "Sub")
        (one,) = [t for t in body.initializer if t.name == sub.input[0]]
        one.CopyFrom(onnx.numpy_helper.from_array(np.array(2.0, np.float32), one.name))

    path = body_edit(tmp_path, "tf2onnx_gru_after", edit)
    assert "not 1" in refused(path)
    with pytest.raises(UnsupportedOpError, match=r"\(op Loop.*subtracts from \[2\.\], not 1"):
        rnnedge.convert(path)  # the reason, not the graph converter's refusal of every Loop


def test_gates_with_two_activations_refused(tmp_path):
    def edit(body):
        node_of(body, "Sigmoid").op_type = "Relu"  # one of z, r

    msg = refused(body_edit(tmp_path, "tf2onnx_gru_before", edit))
    assert "GRU: the update gate's activation Sigmoid differs from the reset gate's Relu" in msg


def test_every_step_must_be_read_in_order(tmp_path):
    """The counters are run: a loop that steps by 2 skips steps (and here stops early)."""

    def edit(body):
        step = next(n for n in body.node if n.op_type == "Add" and "while/add/y" in n.input[1])
        (one,) = [t for t in body.initializer if t.name == step.input[1]]
        one.CopyFrom(onnx.numpy_helper.from_array(np.array(2, onnx.numpy_helper.to_array(one).dtype), one.name))

    assert "the loop stops after step 0 of a length-2 sequence" in refused(body_edit(tmp_path, "tf2onnx_rnn", edit))


def test_a_body_that_is_no_cell_refused(tmp_path):
    def edit(body):
        node_of(body, "Tanh").op_type = "Exp"

    assert "Exp" in refused(body_edit(tmp_path, "tf2onnx_rnn", edit))


def test_less_of_sizes_decided_only_when_provable():
    """The loop bound tf2onnx checks (0 < T) folds: a run-time size is at least its coefficient."""
    from rnnedge.converter.fold import dim_less
    from rnnedge.converter.values import Sym
    from rnnedge.errors import ConvertError

    t = Sym(1, ("T",))
    assert dim_less(0, t) and not dim_less(t, 1) and not dim_less(t, t) and dim_less(2, 3)
    assert dim_less(1, Sym(2, ("T",))) and not dim_less(Sym(2, ("T",)), 2)
    for a, b in ((1, t), (t, 2), (t, Sym(1, ("B",)))):
        with pytest.raises(ConvertError, match="cannot tell at conversion time whether"):
            dim_less(a, b)


def test_edited_bodies_refused_or_exact():
    """Random edits of the fixtures' loop bodies (an op changed, an input rewired, two inputs
    swapped): each is refused by name, or what converts computes what onnxruntime computes for
    the edited model (an edit that keeps the cell, e.g. swapping the terms of a sum)."""
    ort = pytest.importorskip("onnxruntime")
    from rnnedge.errors import RnnedgeError
    from rnnedge.reference import run_network

    rng = np.random.default_rng(15)
    ops = ["Add", "Mul", "Sub", "Sigmoid", "Tanh", "Relu", "MatMul", "Identity", "Slice", "Split", "Gather"]
    converted = refused = 0
    for _ in range(60):
        name = str(rng.choice(sorted(CELLS)))
        m = onnx.load(DATA / f"{name}.onnx")
        (loop,) = [n for n in m.graph.node if n.op_type == "Loop"]
        body = loop.attribute[0].g
        names = ([i.name for i in body.input] + [o for n in body.node for o in n.output]
                 + [t.name for t in body.initializer])  # fmt: skip
        node = body.node[int(rng.integers(len(body.node)))]
        kind = rng.integers(3)
        if kind == 0:
            node.op_type = str(rng.choice(ops))
        elif kind == 1:
            node.input[int(rng.integers(len(node.input)))] = str(rng.choice(names))
        elif len(node.input) >= 2:
            node.input[0], node.input[1] = node.input[1], node.input[0]
        try:
            net = to_network(m)
        except RnnedgeError:
            refused += 1
            continue
        try:
            (want,) = ort.InferenceSession(m.SerializeToString()).run(None, {"x": X})
        except Exception:  # noqa: BLE001 - an edit onnxruntime rejects as an invalid model
            continue
        y = from_tbf(run_network(net, to_tbf(X, net.input.axes))[0], net.output.axes)
        assert y.shape == want.shape and rel(y, want) <= 1e-5, name
        converted += 1
    assert refused > 30 and converted > 3  # both outcomes are exercised
