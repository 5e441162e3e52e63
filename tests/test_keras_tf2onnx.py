"""Keras GRU and SimpleRNN layers exported by tf2onnx 1.17 as ONNX Loops, read as the native cells
(rnnedge/converter/tf2onnx_loop.py, docs/keras.md "Through tf2onnx"): alone, going backwards,
Bidirectional (two Loops joined by a Concat or an Add; by a Mul: a dataflow graph), with Keras 3's and Keras 2's hard_sigmoid
spelled out, returning their final state (the Loop's carried state), stateful (the exported state
the initial state).

The fixtures (tests/data/keras/tf2onnx_*.onnx) were made by `tests/make_keras_fixtures.py tf2onnx`
with Keras 3.15 (one with Keras 2 through tf_keras 2.21) and tf2onnx 1.17; each carries Keras's
own output on input.npy (and its returned state, NAME.state.npz).

Also tf2onnx_<name>.onnx for each Keras fixture of tests/test_keras.py, exported from its
committed file (same weights; Keras's <name>.out.npy the oracle): what converts equals Keras,
what does not is refused by name (the end of this file).
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
from rnnedge.errors import ConvertWarning, NotStreamableError, UnsupportedOpError
from rnnedge.ir.layers import Act, Recurrent, from_tbf, to_tbf

DATA = Path(__file__).resolve().parent / "data" / "keras"
X = np.load(DATA / "input.npy")  # [2, 8, 3]
CELLS = {  # fixture -> (cell, linear_before_reset, direction): reset_after=True is ONNX
    # linear_before_reset=1; go_backwards (tf2onnx reverses the input before the Loop) is "reverse"
    "tf2onnx_gru_after": ("gru", True, "forward"),
    "tf2onnx_gru_before": ("gru", False, "forward"),
    "tf2onnx_rnn": ("rnn", False, "forward"),
    "tf2onnx_gru_back": ("gru", True, "reverse"),
    "tf2onnx_bidi_gru_concat": ("gru", True, "bidirectional"),  # merge_mode concat
    "tf2onnx_bidi_gru_sum": ("gru", False, "bidirectional"),  # merge_mode sum
    "tf2onnx_bidi_rnn": ("rnn", False, "bidirectional"),  # many-to-one, concat
    "tf2onnx_gru_hard": ("gru", True, "forward"),  # Keras 3 hard_sigmoid z, r
    "tf2onnx_k2_gru_hard": ("gru", False, "forward"),  # Keras 2 (tf_keras) hard_sigmoid z, r
    "tf2onnx_gru_state": ("gru", True, "forward"),  # return_state=True
    "tf2onnx_lstm_state": ("lstm", False, "forward"),  # return_state=True (tf2onnx: the LSTM op)
    "tf2onnx_gru_stateful": ("gru", True, "forward"),  # stateful: the initial state a constant
}
HARD = {  # the gates' activation: Keras 3's relu6(x + 3) / 6 and Keras 2's clip(0.2 x + 0.5, 0, 1)
    "tf2onnx_gru_hard": Act.make("HardSigmoid", np.float32(1 / 6), 0.0),  # (the + 3 in the bias)
    "tf2onnx_k2_gru_hard": Act.make("HardSigmoid", 1.0, 0.0),  # (0.2 and 0.5 in the weights)
}
LOOPS = sorted(n for n in CELLS if n != "tf2onnx_lstm_state" and "bidi" not in n)  # one Loop each


def rel(y: np.ndarray, want: np.ndarray) -> float:
    return float(np.abs(y - want).max() / np.abs(want).max())


def test_every_fixture_is_listed():
    of_keras = [f"tf2onnx_{k}" for k in OF_KERAS]
    assert sorted(p.stem for p in DATA.glob("*.onnx")) == sorted([*CELLS, *of_keras])
    assert sorted(OF_KERAS) == sorted(p.name[: -len(".out.npy")] for p in DATA.glob("k*.out.npy"))


@pytest.mark.parametrize("name", sorted(CELLS))
def test_the_loop_is_the_native_cell(name):
    net = to_network(DATA / f"{name}.onnx")
    recs = [l for l in net.layers if isinstance(l, Recurrent)]
    assert [(r.cell, r.linear_before_reset, r.direction) for r in recs] == [CELLS[name]]
    loops = sum("tf2onnx Loop of a Keras" in n for n in net.folded)
    assert loops == (0 if CELLS[name][0] == "lstm" else 2 if "bidi" in name else 1)
    if name in HARD:
        assert recs[0].activations == [[HARD[name], Act.make("Tanh")]]


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
    want_ort = ort.InferenceSession(str(DATA / f"{name}.onnx")).run(None, {"x": X})[0]
    assert rel(y, want_ort) <= 1e-5, rel(y, want_ort)
    assert m.streamable == (CELLS[name][2] == "forward")
    if not m.streamable:  # going backwards needs the whole sequence: stream() says so
        with pytest.raises(NotStreamableError, match=r"reads the sequence backwards \(bidirectional"):
            m.stream(batch=2)
        return
    s = m.stream(batch=2)
    steps = np.stack([s.step(X[:, t]).copy() for t in range(X.shape[1])], axis=1)
    if want.ndim == 2:  # SimpleRNN without return_sequences: the last step
        steps = steps[:, -1]
    assert rel(steps, want) <= 1e-5


@pytest.mark.parametrize("name", ["tf2onnx_gru_state", "tf2onnx_lstm_state"])
def test_the_returned_state_is_keras_state(name, tmp_path):
    """return_state=True: the GRU Loop's carried final state is the cell's Y_h (the graph output
    is the final state, read from the state, as the LSTM op's Y_h and its squeezed Y_c, the
    output Identity_2:0): Model.run's final state and a stream's state after the last step are
    Keras's h (and c)."""
    net = convert(DATA / f"{name}.onnx", tmp_path / "m.rne")
    outputs = ["Identity_1:0", "Identity_2:0"] if name == "tf2onnx_lstm_state" else ["Identity_1:0"]
    for out in outputs:
        assert f"output {out!r}: final recurrent state, read it from Stream.state" in net.folded
    assert not any("not produced by rnnedge" in n for n in net.folded)
    m = rnnedge.load(tmp_path / "m.rne")
    want = np.load(DATA / f"{name}.state.npz")
    _, state = m.run(X, return_state=True)
    s = m.stream(batch=2)
    for t in range(X.shape[1]):
        s.step(X[:, t])
    for k in want.files:  # h, c
        assert rel(state[f"{k}0"][0], want[k]) <= 1e-5, k
        assert rel(s.state[f"{k}0"][0], want[k]) <= 1e-5, k


@pytest.mark.parametrize("quant,bar", [("int16", 1e-3), ("int8", 1e-2)])
@pytest.mark.parametrize("name", sorted(CELLS))
def test_integer_within_the_bar(name, quant, bar, tmp_path):
    _integer_within_bar(DATA / f"{name}.onnx", tmp_path, X, np.load(DATA / f"{name}.out.npy"), quant, bar)


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
    assert "whose body is not a Keras GRU, SimpleRNN or LSTM cell as tf2onnx writes it" in msg
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
    refused, converted = _edited_bodies(LOOPS, 60, 15)
    assert refused > 30 and converted > 3  # both outcomes are exercised


def test_edited_lstm_bodies_refused_or_exact():
    """The same for the LSTM's loop (Keras 2's hard sigmoid spelled out in every gate, and on c)."""
    refused, converted = _edited_bodies(["tf2onnx_k2_lstm_hard"], 60, 16)
    assert refused > 20 and converted > 10


def _edited_bodies(loops: list[str], n: int, seed: int) -> tuple[int, int]:
    ort = pytest.importorskip("onnxruntime")
    from rnnedge.errors import RnnedgeError
    from rnnedge.reference import run_network

    rng = np.random.default_rng(seed)
    ops = ["Add", "Mul", "Sub", "Sigmoid", "Tanh", "Relu", "MatMul", "Identity", "Slice", "Split", "Gather"]
    converted = refused = 0
    for _ in range(n):
        name = str(rng.choice(loops))
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
            want = ort.InferenceSession(m.SerializeToString()).run(None, {"x": X})[0]
        except Exception:  # noqa: BLE001 - an edit onnxruntime rejects as an invalid model
            continue
        y = from_tbf(run_network(net, to_tbf(X, net.input.axes))[0], net.output.axes)
        assert y.shape == want.shape and rel(y, want) <= 1e-5, name
        converted += 1
    return refused, converted


def graph_edit(tmp_path: Path, name: str, op: str, edit) -> Path:
    """A copy of a fixture whose node of kind `op` joining the Bidirectional's two directions
    `edit` changed, in place."""
    m = onnx.load(DATA / f"{name}.onnx")
    (node,) = [n for n in m.graph.node if n.op_type == op and n.name.endswith(("/concat", "/add"))]
    edit(node)
    out = tmp_path / f"{name}.onnx"
    onnx.save(m, out)
    return out


def test_a_sum_of_directions_in_either_order(tmp_path):
    """merge_mode sum's Add is commutative: backward + forward is the same bidirectional layer."""
    ort = pytest.importorskip("onnxruntime")

    def swap(node):
        node.input[0], node.input[1] = node.input[1], node.input[0]

    path = graph_edit(tmp_path, "tf2onnx_bidi_gru_sum", "Add", swap)
    convert(path, tmp_path / "m.rne")
    y = rnnedge.load(tmp_path / "m.rne").run(X)
    want = ort.InferenceSession(str(path)).run(None, {"x": X})[0]
    assert rel(y, want) <= 1e-5


def test_directions_that_are_no_bidirectional_layer_refused(tmp_path):
    """The join needs the forward direction first (ONNX's order) and a reverse one over the same
    input: backward-then-forward, or one direction twice, stays the refusal of joining data."""

    def swap(node):
        node.input[0], node.input[1] = node.input[1], node.input[0]

    def twice(node):
        node.input[1] = node.input[0]

    for name, edit in (("tf2onnx_bidi_gru_concat", swap), ("tf2onnx_bidi_rnn", twice)):
        with pytest.raises(UnsupportedOpError, match=r"\(op Concat.*joining data tensors is not a straight pipeline"):
            to_network(graph_edit(tmp_path, name, "Concat", edit))

    def forward_twice(node):
        node.input[1] = node.input[0]

    with pytest.raises(UnsupportedOpError, match=r"\(op Add.*Add of two data tensors"):
        to_network(graph_edit(tmp_path, "tf2onnx_bidi_gru_sum", "Add", forward_twice))


def product_of_directions(tmp_path: Path, name: str, order: str) -> Path:
    """merge_mode "mul" through tf2onnx, made from a fixture: the Add of tf2onnx_bidi_gru_sum
    (a Dense head after it) or the Concat of the many-to-one tf2onnx_bidi_rnn (the model ending
    at it) made a Mul of the two directions, in `order`."""
    op = "Add" if name == "tf2onnx_bidi_gru_sum" else "Concat"

    def mul(node):
        node.op_type = "Mul"
        del node.attribute[:]
        if order == "backward first":
            node.input[0], node.input[1] = node.input[1], node.input[0]

    path = graph_edit(tmp_path, name, op, mul)
    if op == "Concat":
        m = onnx.load(path)
        i = next(k for k, n in enumerate(m.graph.node) if n.op_type == "Mul" and n.name.endswith("/concat"))
        del m.graph.node[i + 1 :]
        m.graph.output[0].name = m.graph.node[i].output[0]
        m.graph.output[0].type.tensor_type.shape.dim[1].dim_value = 4  # H
        onnx.save(m, path)
    return path


@pytest.mark.parametrize("name, order", [("tf2onnx_bidi_gru_sum", "forward first"),
                                         ("tf2onnx_bidi_gru_sum", "backward first"),
                                         ("tf2onnx_bidi_rnn", "forward first")])  # fmt: skip
def test_a_product_of_directions_is_a_graph(name, order, tmp_path):
    """merge_mode "mul": the two Loops are one bidirectional layer and the product of its halves
    (SLICE, SLICE, BINARY MUL): a dataflow graph, as the Keras reader makes of the Keras file;
    f32 within 1e-5 of onnxruntime, int16 / int8 within their bars, the C library equal to the
    integer oracle bit for bit."""
    from rnnedge.ir.graph import Binary, Graph

    ort = pytest.importorskip("onnxruntime")
    path = product_of_directions(tmp_path, name, order)
    want = ort.InferenceSession(str(path)).run(None, {"x": X})[0]
    g = convert(path, tmp_path / "m.rne")
    assert isinstance(g, Graph) and [n.op.kind for n in g.nodes if isinstance(n.op, Binary)] == ["Mul"]
    assert [n.op.direction for n in g.nodes if isinstance(n.op, Recurrent)] == ["bidirectional"]
    assert sum("tf2onnx Loop of a Keras" in n for n in g.folded) == 2
    m = rnnedge.load(tmp_path / "m.rne")
    y = m.run(X)
    assert y.shape == want.shape and rel(y, want) <= 1e-5, rel(y, want)
    with pytest.raises(NotStreamableError, match=r"reads the sequence backwards \(bidirectional"):
        m.stream(batch=2)
    for quant, bar in (("int16", 1e-3), ("int8", 1e-2)):
        _integer_within_bar(path, tmp_path, X, want, quant, bar)


def _integer_within_bar(path, tmp_path, X: np.ndarray, want: np.ndarray, quant: str, bar: float) -> None:
    """`path` converted to `quant` runs within `bar` of `want`'s range, and the C library's
    integers equal the oracle's bit for bit (run_quantized for a layer pipeline, run_qgraph for a
    dataflow graph)."""
    from rnnedge.ir.graph import Graph

    out = tmp_path / "q.rne"
    with warnings.catch_warnings():  # an int8 layer kept at int16 weights warns: the bar is the test
        warnings.simplefilter("ignore")
        qnet = convert(path, out, quant=quant, calibration=X)
    y = rnnedge.load(out).run(X)
    mine = y[:, : want.shape[1]] if want.ndim == 3 else y  # after a "valid" conv: Keras's rows first
    err = float(np.abs(mine - want).max() / (want.max() - want.min()))
    assert err <= bar, f"{quant} {path.name}: {err:.3g} of the output range"
    if isinstance(qnet, Graph):
        # token ids go in as they are ([T, B, 1]); with latency, Model.run feeds its zero frames
        # after X and ends each node's input there
        xq = X.T[..., None] if X.dtype.kind in "iu" else fx.quantize(to_tbf(X, "BTF"), qnet.in_scale)
        q, _ = fx.run_qgraph(qnet, xq, flush=True)
        oracle = from_tbf(fx.dequantize(q, qnet.out_scale), qnet.output_spec.axes)
    else:
        oracle = from_tbf(fx.run_quantized(qnet, to_tbf(X, "BTF")), qnet.source.output.axes)
    np.testing.assert_array_equal(y, oracle)  # the C library computes the oracle's integers


def test_a_hard_sigmoid_needs_its_own_scale(tmp_path):
    """Keras 3's relu6(x + 3) / 6: a clip to [0, 6] times 1/5 is no hard sigmoid; refused by name."""

    def edit(body):
        mul = next(n for n in body.node if n.op_type == "Mul" and "truediv" in n.output[0])
        (k,) = [t for t in body.initializer if t.name == mul.input[1]]
        k.CopyFrom(onnx.numpy_helper.from_array(np.array(0.2, np.float32), k.name))

    msg = refused(body_edit(tmp_path, "tf2onnx_gru_hard", edit))
    assert "scales a gate (only a clip to [0, hi] by 1 / hi, a hard sigmoid)" in msg


def stateful_with(tmp_path: Path, rows: np.ndarray) -> Path:
    """The stateful fixture with its exported state (the Loop's initial state, a [2, 4] constant
    initializer: zeros after reset_states()) replaced by `rows`."""
    m = onnx.load(DATA / "tf2onnx_gru_stateful.onnx")
    (loop,) = [n for n in m.graph.node if n.op_type == "Loop"]
    (init,) = [t for t in m.graph.initializer if t.name in loop.input[2:] and list(t.dims) == [2, 4]]
    assert not onnx.numpy_helper.to_array(init).any()
    init.CopyFrom(onnx.numpy_helper.from_array(rows.astype(np.float32), init.name))
    out = tmp_path / "stateful.onnx"
    onnx.save(m, out)
    return out


def test_a_stateful_model_starts_from_its_exported_state(tmp_path):
    """A state every batch item shares is the layer's initial_h: Model.run and a stream start from
    it (and a reset returns to it), as onnxruntime runs the file."""
    ort = pytest.importorskip("onnxruntime")
    row = np.array([0.5, -0.25, 0.75, -1.0], np.float32)
    path = stateful_with(tmp_path, np.stack([row, row]))
    with pytest.warns(ConvertWarning, match=r"declares a static size .* \[unk__0, 2, 4\]"):
        net = convert(path, tmp_path / "m.rne")  # the stateful model's batch, 2, in the graph
    np.testing.assert_array_equal(net.layers[0].initial_h, row[None])
    m = rnnedge.load(tmp_path / "m.rne")
    want = ort.InferenceSession(str(path)).run(None, {"x": X})[0]
    assert rel(m.run(X), want) <= 1e-5
    s = m.stream(batch=2)
    s.step(X[:, 0])
    s.reset()
    steps = np.stack([s.step(X[:, t]).copy() for t in range(X.shape[1])], axis=1)
    assert rel(steps, want) <= 1e-5


def test_a_state_that_differs_between_batch_items_refused(tmp_path):
    path = stateful_with(tmp_path, np.arange(8, dtype=np.float32).reshape(2, 4) / 8)
    msg = refused(path)
    assert "the initial state is a [2, 4] constant that differs between batch items" in msg
    assert "reset_states() before exporting, or set Stream.state" in msg


@pytest.mark.parametrize("name", ["tf2onnx_rnn", "tf2onnx_gru_after"])
def test_a_linear_activation_is_identity(name, tmp_path):
    """Keras activation="linear" leaves the weighted sum as it is: the body's Tanh made an
    Identity reads as the Identity activation, and computes what onnxruntime computes."""
    ort = pytest.importorskip("onnxruntime")

    def edit(body):
        node_of(body, "Tanh").op_type = "Identity"

    path = body_edit(tmp_path, name, edit)
    net = convert(path, tmp_path / "m.rne")
    assert net.layers[0].activations[0][-1] == Act.make("Identity")
    want = ort.InferenceSession(str(path)).run(None, {"x": X})[0]
    assert rel(rnnedge.load(tmp_path / "m.rne").run(X), want) <= 1e-5


def test_joining_the_input_with_itself_refused():
    """A Concat / Add of the model input with itself (no layers on either side: neither a
    Bidirectional's two directions nor slices of one tensor) is the refusal of joining data."""
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["B", "T", 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    for node, match in ((helper.make_node("Concat", ["x", "x"], ["y"], axis=-1), "joining data tensors"),
                        (helper.make_node("Add", ["x", "x"], ["y"]), "Add of two data tensors")):
        g = helper.make_graph([node], "g", [x], [y])
        with pytest.raises(UnsupportedOpError, match=match):
            to_network(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]))


# -- the Keras fixtures of tests/test_keras.py through tf2onnx -----------------------------------
# tf2onnx_<name>.onnx: the committed <name>.keras (.h5 for k2_*) exported by tf2onnx, its oracle
# Keras's committed <name>.out.npy. What converts: (graph or pipeline, streamable); what does
# not: the refusal rnnedge.convert gives, (node, what stops it). docs/keras.md "Through tf2onnx".
CONVERTS = {
    "k3_gru_after_fn": (False, True),  # softsign GRU: stays f32
    "k3_gru_before": (False, True),
    "k3_rnn": (False, True),
    "k3_stateful": (False, True),
    "k3_bidi_sum_back": (False, False),
    "k3_bidi_mul": (True, False),
    "k2_bidi_gru": (False, False),
    "k3_bidi_stack": (False, False),  # LayerNormalization's moments (tf2onnx_patterns.py)
    "k3_conv_lstm": (True, True),  # Conv1D "same", then "causal" as a Pad and a 2-D Conv
    "k3_embed_gru": (True, True),  # Embedding: its guard for negative ids (tf2onnx_patterns.py)
    "k2_lstm_hard": (False, True),  # an LSTM with hard_sigmoid: a Loop, read as the native LSTM
    "k3_conv_valid": (True, True),  # Conv1D "valid": as the Keras reader makes it (docs/keras.md)
    # Bidirectional LSTM with its own backward layer (hard_sigmoid gates): tf2onnx writes the
    # forward one as the LSTM op and the backward one as a Loop over the reversed input, which the
    # graph converter joins by their Concat; then Softplus and LogSoftmax
    "k3_bidi_backward": (True, False),
    # Keras 2: the ids' Cast to INT32 (the ids unchanged), the Embedding's Gather, the LSTM op
    "k2_embed_lstm": (True, True),
    # Keras 2: causal Conv1D through a Transpose to NCHW, the GRU op, LayerNormalization as a
    # Reshape and a BatchNormalization of the rows' moments (tf2onnx_patterns.keras2_layer_norms),
    # a SimpleRNN Loop, TimeDistributed(Dense)
    "k2_conv_gru": (True, True),
}
LATENCY = {"k3_conv_lstm": 1, "k3_conv_valid": 2}  # a "same" / "valid" conv looks ahead: a stream lags
SHORTER = {"k3_conv_valid": 2}  # Model.run's rows past Keras's shorter output (the conv over zeros)
UNSUPPORTED = "(op {}, #{} in the graph): unsupported op {!r} on the data path"
REFUSED_VIA_TF2ONNX = {
    # tf2onnx mis-exports the TimeDistributed(Dense) after the LSTM (onnxruntime returns [2, 2, 4]
    # for Keras's [2, 8, 4]): refused at its Range over the batch
    "k3_lstm_seq": ("k3_lstm_seq_1/time_distributed_1/range",
                    "(op Range, #23 of 69 in the graph): op 'Range' on a value that depends on the run-time "
                    "batch or time length"),
    # Keras's Masking: refused by name with what Keras does and what to do (as its Keras file is)
    "k3_masking": ("k3_masking_1/masking_1/NotEqual",
                   "(op Equal, #1 of 64 in the graph): Keras's Masking as tf2onnx writes it (mask_value=0.0: "
                   "a step is kept when any of its features differs): Keras skips every step whose features "
                   "all equal it (the recurrent state carries over"),
}
OF_KERAS = sorted([*CONVERTS, *REFUSED_VIA_TF2ONNX])
IDS = np.load(DATA / "input_ids.npy")  # [2, 8] token ids in [0, 20), k3_embed_gru's input


def x_for(name: str) -> np.ndarray:
    return IDS if "embed" in name else X


@pytest.mark.parametrize("name", sorted(CONVERTS))
def test_keras_fixture_via_tf2onnx_equals_keras(name, tmp_path):
    from rnnedge.ir.graph import Graph

    out = tmp_path / "m.rne"
    with warnings.catch_warnings():  # the stateful model's batch, 2, declared in the graph
        warnings.simplefilter("ignore", ConvertWarning)
        net = convert(DATA / f"tf2onnx_{name}.onnx", out)
    graph, streamable = CONVERTS[name]
    assert isinstance(net, Graph) == graph
    m = rnnedge.load(out)
    want = np.load(DATA / f"{name}.out.npy")
    x = x_for(name)
    y = m.run(x)
    short = SHORTER.get(name, 0)  # Keras's rows first, then `short` more (docs/keras.md)
    assert y.shape[1] == want.shape[1] + short
    y = y[:, : y.shape[1] - short]
    assert y.shape == want.shape and rel(y, want) <= 1e-5, rel(y, want)
    assert m.streamable == streamable
    if streamable:
        s = m.stream(batch=2)
        steps = np.stack([s.step(x[:, t]).copy() for t in range(x.shape[1])], axis=1)
        if want.ndim == 2:  # many-to-one: the last step
            steps = steps[:, -1]
        lag = m.latency_steps  # step t gives Keras's step t - lag (zeros before)
        assert lag == LATENCY.get(name, 0)
        assert not steps[:, :lag].any()
        assert rel(steps[:, lag:], want[:, : X.shape[1] - lag]) <= 1e-5


@pytest.mark.parametrize("quant,bar", [("int16", 1e-3), ("int8", 1e-2)])
@pytest.mark.parametrize("name", sorted(n for n in CONVERTS if n != "k3_gru_after_fn"))  # softsign: f32
def test_keras_fixture_via_tf2onnx_integer(name, quant, bar, tmp_path):
    _integer_within_bar(DATA / f"tf2onnx_{name}.onnx", tmp_path, x_for(name), np.load(DATA / f"{name}.out.npy"),
                        quant, bar)


@pytest.mark.parametrize("name", sorted(REFUSED_VIA_TF2ONNX))
def test_keras_fixture_via_tf2onnx_refused_by_name(name, tmp_path):
    """Today's refusals (docs/keras.md): each names the node and what stops it; the Masking
    model's, like its Keras file's, names the Masking layer's node."""
    node, what = REFUSED_VIA_TF2ONNX[name]
    with pytest.raises(UnsupportedOpError) as e:
        rnnedge.convert(DATA / f"tf2onnx_{name}.onnx", tmp_path / "m.rne")
    assert f"node {node!r} {what}" in str(e.value)


@pytest.mark.parametrize("name", ["tf2onnx_gru_after", "tf2onnx_rnn", "tf2onnx_gru_back", "tf2onnx_bidi_gru_concat"])
def test_a_loop_in_a_graph(name, tmp_path):
    """A Loop after a graph op (here the input squared, a Mul of two data tensors, which no
    pipeline layer computes): the dataflow graph converter reads it as the native cell too (going
    backwards; two of them joined by a Concat), as onnxruntime runs the file, step by step where
    it streams; int16 and int8 within their bars, the C library equal to the integer oracle."""
    from onnx import helper

    from rnnedge.ir.graph import Graph

    ort = pytest.importorskip("onnxruntime")
    m = onnx.load(DATA / f"{name}.onnx")
    for node in m.graph.node:
        node.input[:] = ["x_squared" if i == "x" else i for i in node.input]
    m.graph.node.insert(0, helper.make_node("Mul", ["x", "x"], ["x_squared"], name="square"))
    path = tmp_path / "squared.onnx"
    onnx.save(m, path)
    want = ort.InferenceSession(str(path)).run(None, {"x": X})[0]
    g = convert(path, tmp_path / "m.rne")
    assert isinstance(g, Graph)
    loops = [n for n in g.folded if "tf2onnx Loop of a Keras" in n]
    assert len(loops) == (2 if "bidi" in name else 1)
    mod = rnnedge.load(tmp_path / "m.rne")
    y = mod.run(X)
    assert y.shape == want.shape and rel(y, want) <= 1e-5, rel(y, want)
    assert mod.streamable == (CELLS[name][2] == "forward")
    if mod.streamable:
        s = mod.stream(batch=2)
        steps = np.stack([s.step(X[:, t]).copy() for t in range(X.shape[1])], axis=1)
        steps = steps[:, -1] if want.ndim == 2 else steps
        assert rel(steps, want) <= 1e-5
    for quant, bar in (("int16", 1e-3), ("int8", 1e-2)):
        _integer_within_bar(path, tmp_path, X, want, quant, bar)


def test_a_loop_in_a_graph_that_is_no_cell_refused(tmp_path):
    """In the graph converter too, a body that is no cell is refused by the Loop's name and what
    did not match."""
    from onnx import helper

    m = onnx.load(DATA / "tf2onnx_rnn.onnx")
    for node in m.graph.node:
        node.input[:] = ["x_squared" if i == "x" else i for i in node.input]
    m.graph.node.insert(0, helper.make_node("Mul", ["x", "x"], ["x_squared"], name="square"))
    (loop,) = [n for n in m.graph.node if n.op_type == "Loop"]
    node_of(loop.attribute[0].g, "Tanh").op_type = "Exp"
    onnx.save(m, tmp_path / "m.onnx")
    with pytest.raises(UnsupportedOpError, match=r"\(op Loop.*whose body is not a Keras GRU, SimpleRNN or LSTM cell.*Exp"):
        rnnedge.convert(tmp_path / "m.onnx", tmp_path / "m.rne")


# -- LayerNormalization as tf2onnx writes it (rnnedge/converter/tf2onnx_patterns.py) --------------

LN = "k3_bidi_stack_1/layer_normalization_1/"


def test_layer_norm_moments_read_as_one_layer_norm():
    """k3_bidi_stack's LayerNormalization (tf2onnx: two GlobalAveragePools, Sqrt, Reciprocal,
    x * k + (beta - mean * k) around Transposes of the rows) is one LayerNorm layer with Keras's
    gamma, beta and epsilon; the model given in memory is not changed."""
    from rnnedge.ir.layers import LayerNorm

    m = onnx.load(DATA / "tf2onnx_k3_bidi_stack.onnx")
    before = m.SerializeToString()
    net = to_network(m)
    assert m.SerializeToString() == before
    (ln,) = [l for l in net.layers if isinstance(l, LayerNorm)]
    inits = {t.name: onnx.numpy_helper.to_array(t) for t in m.graph.initializer}
    np.testing.assert_array_equal(ln.gamma, inits[LN + "Reshape:0"].reshape(-1))
    np.testing.assert_array_equal(ln.beta, inits[LN + "Reshape_1:0"].reshape(-1))
    assert ln.epsilon == np.float32(1e-3)
    (note,) = [n for n in net.folded if n.startswith("LayerNormalization ")]
    assert note.startswith(f"LayerNormalization {LN}add_2: the moments tf2onnx writes (GlobalAveragePool "
                           f"{LN}moments/mean of 'k3_bidi_stack_1/bidirectional_1/concat:0'")


def ln_edit(tmp_path: Path, edit) -> Path:
    m = onnx.load(DATA / "tf2onnx_k3_bidi_stack.onnx")
    edit({n.name: n for n in m.graph.node}, m.graph)
    path = tmp_path / "ln.onnx"
    onnx.save(m, path)
    return path


def _const(graph: onnx.GraphProto, name: str, value: np.ndarray) -> str:
    graph.initializer.append(onnx.numpy_helper.from_array(value.astype(np.float32), name))
    return name


def test_what_is_no_layer_norm_keeps_its_refusal(tmp_path):
    """A value that is not gamma * (x - mean) / sqrt(var + eps) + beta stays as it was written
    and is refused where it was before (the moments' GlobalAveragePool)."""

    def plus_mean(nodes, graph):  # x * k + mean * k + beta
        nodes[LN + "Neg"].op_type = "Identity"

    def eps_per_feature(nodes, graph):  # var + eps_f: no single epsilon
        nodes[LN + "add"].input[1] = _const(graph, "eps8", np.full((1, 1, 8), 1e-3) + np.arange(8) * 1e-4)

    def not_squared(nodes, graph):  # mean((x - m) * x): not the variance
        nodes[LN + "moments/SquaredDifference__3974"].input[1] = "k3_bidi_stack_1/bidirectional_1/concat:0"

    def other_gamma(nodes, graph):  # the mean times another vector than x
        at = next(i for i, n in enumerate(graph.node) if n.name == LN + "mul_1")
        graph.node.insert(at, onnx.helper.make_node("Mul", ["Transpose__4089:0", _const(graph, "two", np.array(2.0))],
                                                    ["k2"], name="k2"))
        nodes[LN + "mul_1"].input[1] = "k2"

    def rows_swapped(nodes, graph):  # the mean of other rows: x [T, B] minus mean [B, T]
        nodes[LN + "moments/SquaredDifference"].input[1] = "Transpose__4061:0"

    for edit in (plus_mean, eps_per_feature, not_squared, other_gamma, rows_swapped):
        with pytest.raises(UnsupportedOpError, match="unsupported op 'GlobalAveragePool' on the data path"):
            rnnedge.convert(ln_edit(tmp_path, edit), tmp_path / "m.rne")
    m = onnx.load(DATA / "tf2onnx_k3_bidi_stack.onnx")
    m.producer_name = "other"  # another exporter's written-out norms are read op by op
    with pytest.raises(UnsupportedOpError, match="unsupported op 'GlobalAveragePool' on the data path"):
        rnnedge.convert(m, tmp_path / "m.rne")


def test_layer_norm_edits_refused_or_exact():
    """Random edits of the layer normalisation's nodes (an op changed, an input rewired, two
    inputs swapped): each is refused, or what converts computes what onnxruntime computes for the
    edited model (an edit that keeps a layer normalisation: the terms of a sum swapped, ...)."""
    ort = pytest.importorskip("onnxruntime")
    from rnnedge.errors import RnnedgeError
    from rnnedge.reference import run_network

    rng = np.random.default_rng(17)
    ops = ["Add", "Sub", "Mul", "Div", "Neg", "Sqrt", "Reciprocal", "Identity", "Transpose"]
    base = onnx.load(DATA / "tf2onnx_k3_bidi_stack.onnx")
    region = [i for i, n in enumerate(base.graph.node) if n.name.startswith(LN) or n.name.startswith("Transpose__40")]
    names = sorted({o for i in region for o in base.graph.node[i].output} | {"k3_bidi_stack_1/bidirectional_1/concat:0"})
    converted = refused = 0
    for _ in range(100):
        m = onnx.ModelProto()
        m.CopyFrom(base)
        node = m.graph.node[int(rng.choice(region))]
        kind = rng.integers(3)
        if kind == 0:
            node.op_type = str(rng.choice(ops))
            if node.op_type != "Transpose":
                del node.attribute[:]
        elif kind == 1:
            node.input[int(rng.integers(len(node.input)))] = str(rng.choice(names))
        elif len(node.input) >= 2:
            node.input[0], node.input[1] = node.input[1], node.input[0]
        try:
            want = ort.InferenceSession(m.SerializeToString()).run(None, {"x": X})[0]
        except Exception:  # noqa: BLE001 - an edit onnxruntime rejects as an invalid model
            continue
        try:
            net = to_network(m)
        except RnnedgeError:
            refused += 1
            continue
        y = from_tbf(run_network(net, to_tbf(X, net.input.axes))[0], net.output.axes)
        assert y.shape == want.shape and rel(y, want) <= 1e-5, (node.name, kind)
        converted += 1
    assert refused > 10 and converted > 10  # both outcomes are exercised


# -- Conv1D "causal" as tf2onnx writes it: Pad, then Unsqueeze to a 2-D Conv ---------------------


def causal_edit(tmp_path: Path, edit) -> Path:
    m = onnx.load(DATA / "tf2onnx_k3_conv_lstm.onnx")
    edit({n.name: n for n in m.graph.node}, m.graph)
    path = tmp_path / "causal.onnx"
    onnx.save(m, path)
    return path


CAUSAL = "k3_conv_lstm_1/conv1d_1_2/"


def test_a_pad_through_unsqueeze_is_the_convs_padding(tmp_path):
    """The Pad's frames before the time axis go through the Unsqueeze to the Conv, which takes
    them as its padding: the causal conv (4 frames, kernel 3, dilation 2) converts; with dilation
    1 the same 4 frames start the output before its input, refused; a Pad that an op other than
    a Conv reads after the Unsqueeze stays refused."""
    from rnnedge.converter import to_graph
    from rnnedge.ir.graph import Conv

    g = to_graph(DATA / "tf2onnx_k3_conv_lstm.onnx")
    convs = [n.op for n in g.nodes if isinstance(n.op, Conv)]
    assert [(c.dt, c.weight.shape[2]) for c in convs] == [(1, 3), (2, 3)]

    def dilation_1(nodes, graph):
        (a,) = [a for a in nodes[CAUSAL + "convolution"].attribute if a.name == "dilations"]
        a.ints[:] = [1, 1]

    with pytest.raises(UnsupportedOpError, match=r"Conv pads 4 frames before the time axis, more than "
                                                 r"\(kernel - 1\) \* dilation = 2"):
        to_graph(causal_edit(tmp_path, dilation_1))

    def relu_reads_it(nodes, graph):
        nodes[CAUSAL + "convolution"].op_type = "Relu"
        del nodes[CAUSAL + "convolution"].input[1:]
        del nodes[CAUSAL + "convolution"].attribute[:]

    with pytest.raises(UnsupportedOpError, match=r"\(op Relu.*Relu of a tensor with time padding \(\[4, 0\] frames"):
        to_graph(causal_edit(tmp_path, relu_reads_it))


def test_keras2_causal_conv_through_transpose(tmp_path):
    """Keras 2's causal Conv1D as tf2onnx writes it: Pad, Unsqueeze, a Transpose to NCHW, the
    Conv: the Pad's frames follow the time axis through the Transpose to the Conv (the model
    cut after the conv and its BatchNormalization), as onnxruntime runs it and step by step;
    the same Pad read by a Transpose and then a Relu stays refused."""
    import onnxruntime as ort

    cut = tmp_path / "conv.onnx"
    onnx.utils.extract_model(str(DATA / "tf2onnx_k2_conv_gru.onnx"), str(cut), ["x"],
                             ["k2_conv_gru/batch_normalization/batchnorm/add_1:0"])  # fmt: skip
    ops = [n.op_type for n in onnx.load(cut).graph.node]
    assert ops[:4] == ["Pad", "Unsqueeze", "Transpose", "Conv"]
    sess = ort.InferenceSession(str(cut))
    want = sess.run(None, {"x": X})[0]
    convert(cut, tmp_path / "m.rne")
    m = rnnedge.load(tmp_path / "m.rne")
    assert m.streamable and m.latency_steps == 0
    assert rel(m.run(X), want) <= 1e-5
    assert want.shape == (2, 4, 8)  # [batch, channels, time]: tf2onnx moved the transpose back past it
    s = m.stream(batch=2)
    steps = np.stack([s.step(X[:, t]).copy() for t in range(X.shape[1])], axis=2)
    assert rel(steps, want) <= 1e-5
    model = onnx.load(cut)
    conv = next(n for n in model.graph.node if n.op_type == "Conv")
    conv.op_type = "Relu"
    del conv.input[1:]
    del conv.attribute[:]
    onnx.save(model, tmp_path / "relu.onnx")
    with pytest.raises(UnsupportedOpError, match=r"\(op Relu.*Relu of a tensor with time padding \(\[4, 0\] frames"):
        convert(tmp_path / "relu.onnx", tmp_path / "r.rne")


K2LN = "k2_conv_gru/layer_normalization/"


def test_keras2_layer_norm_read_as_one_layer_norm(tmp_path):
    """Keras 2's LayerNormalization as tf2onnx writes it becomes one LayerNormalization (a note
    says so); with another epsilon it is that norm, as onnxruntime runs the edited file; with a
    scale other than 1 in its BatchNormalization it is no layer norm and keeps its refusal."""
    import onnxruntime as ort

    from rnnedge.converter import to_graph

    g = to_graph(DATA / "tf2onnx_k2_conv_gru.onnx")
    assert any("Keras 2's layer normalisation as tf2onnx writes it" in n and "epsilon 0.001" in n for n in g.folded)

    def edit(change) -> Path:
        model = onnx.load(DATA / "tf2onnx_k2_conv_gru.onnx")
        change(model)
        out = tmp_path / "edited.onnx"
        onnx.save(model, out)
        return out

    def eps(model):
        bn = next(n for n in model.graph.node if n.op_type == "BatchNormalization")
        next(a for a in bn.attribute if a.name == "epsilon").f = 0.25

    path = edit(eps)
    sess = ort.InferenceSession(str(path))
    want = sess.run(None, {"x": X})[0]
    convert(path, tmp_path / "m.rne")
    assert rel(rnnedge.load(tmp_path / "m.rne").run(X), want) <= 1e-5
    assert rel(want, np.load(DATA / "k2_conv_gru.out.npy")) > 1e-3  # the edit matters

    def scale_2(model):
        t = next(t for t in model.graph.initializer if t.name == K2LN + "ones/Const:0")
        t.CopyFrom(onnx.numpy_helper.from_array(np.array(2.0, np.float32), t.name))

    with pytest.raises(UnsupportedOpError, match=r"'ReduceSumSquare__104' \(op ReduceSumSquare"):
        convert(edit(scale_2), tmp_path / "r.rne")


def test_keras2_simplernn_and_time_distributed_after_the_layer_norm(tmp_path):
    """What k2_conv_gru's tf2onnx file has after the LayerNormalization it is refused at: Keras 2's
    SimpleRNN (a Loop), TimeDistributed(Dense) (Reshape, MatMul, Add, Reshape) and softmax, cut
    out at the norm's output: as onnxruntime runs it, step by step, int16 and int8 within their
    bars, the C library equal to the integer oracle."""
    import onnxruntime as ort

    cut = tmp_path / "tail.onnx"
    src = onnx.load(DATA / "tf2onnx_k2_conv_gru.onnx")
    onnx.utils.extract_model(str(DATA / "tf2onnx_k2_conv_gru.onnx"), str(cut),
                             ["k2_conv_gru/layer_normalization/add:0"], [src.graph.output[0].name])  # fmt: skip
    ops = [n.op_type for n in onnx.load(cut).graph.node]
    assert "Loop" in ops and ops[-5:] == ["Reshape", "MatMul", "Add", "Reshape", "Softmax"]
    x = np.random.default_rng(5).normal(0, 1, (2, 8, 5)).astype(np.float32)
    sess = ort.InferenceSession(str(cut))
    want = sess.run(None, {sess.get_inputs()[0].name: x})[0]
    convert(cut, tmp_path / "m.rne")
    m = rnnedge.load(tmp_path / "m.rne")
    assert m.streamable
    assert rel(m.run(x), want) <= 1e-5
    s = m.stream(batch=2)
    assert rel(np.stack([s.step(x[:, t]).copy() for t in range(8)], axis=1), want) <= 1e-5
    for quant, bar in (("int16", 1e-3), ("int8", 1e-2)):
        _integer_within_bar(cut, tmp_path, x, want, quant, bar)


# -- Embedding: tf2onnx's guard for negative ids -------------------------------------------------

EMB = "k3_embed_gru_1/embedding_1/"


def test_the_negative_id_guard_is_the_gather_of_the_ids(tmp_path):
    """where(ids < 0, ids + 20, ids) before the Gather of the 20-row table (tf2onnx: Cast, Less,
    Not, Cast, Mul, Add) reads the ids themselves: Keras's rows for ids in [0, 20); an id outside
    (a negative one, which Keras would take as id + 20, or 20) is refused at run time, naming it."""
    from rnnedge.errors import InputError

    g = convert(DATA / "tf2onnx_k3_embed_gru.onnx", tmp_path / "m.rne")
    (note,) = [n for n in g.folded if "guard for negative ids" in n]
    assert note.startswith(f"Gather {EMB}GatherV2: its index '{EMB}SelectV2:0' is tf2onnx's guard for "
                           "negative ids (x < 0: x + 20); the Gather reads 'x' itself")
    m = rnnedge.load(tmp_path / "m.rne")
    for bad in (-1, 20):
        ids = IDS.copy()
        ids[1, 3] = bad
        with pytest.raises(InputError, match=rf"id {bad} at \[t, b, i\] = \[3, 1, 0\] is outside \[0, 20\)"):
            m.run(ids)


def test_what_is_no_negative_id_guard_keeps_its_refusal(tmp_path):
    """An index that is not exactly ids + 20 below 0 and ids from 0 on stays as written, refused
    at its Less as before: another offset, another threshold, the Not left out."""

    def edit(name: str, change) -> Path:
        m = onnx.load(DATA / "tf2onnx_k3_embed_gru.onnx")
        change({n.name: n for n in m.graph.node}, m.graph)
        path = tmp_path / f"{name}.onnx"
        onnx.save(m, path)
        return path

    def offset_19(nodes, graph):
        graph.initializer.append(onnx.numpy_helper.from_array(np.array(19, np.int32), "v19"))
        nodes[EMB + "add"].input[1] = "v19"

    def below_1(nodes, graph):
        graph.initializer.append(onnx.numpy_helper.from_array(np.array(1.0, np.float32), "one"))
        nodes[EMB + "Less"].input[1] = "one"

    def no_not(nodes, graph):
        nodes[EMB + "SelectV2__4864"].op_type = "Identity"

    for change in (offset_19, below_1, no_not):
        with pytest.raises(UnsupportedOpError, match=rf"node '{EMB}Less' \(op Less.*unsupported op 'Less'"):
            rnnedge.convert(edit(change.__name__, change), tmp_path / "m.rne")


# -- an LSTM tf2onnx writes as a Loop (hard_sigmoid gates): the native LSTM ----------------------


def test_the_lstm_loop_is_the_native_lstm():
    """k2_lstm_hard (Keras 2: activation and recurrent_activation hard_sigmoid, 0.2 x + 0.5
    clipped): the Loop carrying h and c is one forward LSTM, the same cell the Keras reader makes
    of the .h5 file: the gates' 0.2 and 0.5 in the weights (HardSigmoid alpha 1, beta 0), the
    output's hard sigmoid of c' as HardSigmoid(0.2, 0.5)."""
    from rnnedge.converter.keras import keras_to_model

    net = to_network(DATA / "tf2onnx_k2_lstm_hard.onnx")
    (rec,) = [l for l in net.layers if isinstance(l, Recurrent)]
    assert (rec.cell, rec.direction) == ("lstm", "forward")
    assert sum("tf2onnx Loop of a Keras LSTM read as the native cell" in n for n in net.folded) == 1
    hard = Act.make("HardSigmoid", 1.0, 0.0)
    assert rec.activations == [[hard, hard, Act.make("HardSigmoid", np.float32(0.2), 0.5)]]
    (k,) = [l for l in keras_to_model(DATA / "k2_lstm_hard.h5").layers if isinstance(l, Recurrent)]
    assert k.activations == [[Act.make("HardSigmoid", 0.2, 0.5)] * 3]
    np.testing.assert_allclose(rec.W, np.float32(0.2) * k.W, rtol=1e-6)  # 0.2 (x W): the gates' scale
    np.testing.assert_allclose(rec.R, np.float32(0.2) * k.R, rtol=1e-6)
    H = rec.hidden
    np.testing.assert_allclose(rec.B[0, : 4 * H], np.float32(0.2) * k.B[0, : 4 * H] + 0.5, rtol=1e-6)
    assert not rec.B[0, 4 * H :].any()


def lstm_edit(tmp_path: Path, edit) -> Path:
    return body_edit(tmp_path, "tf2onnx_k2_lstm_hard", edit)


def test_what_is_no_lstm_refused(tmp_path):
    """c' must be f * c + i * g, h' = o * act(c'), f, i, o one activation: else refused by name."""

    def named(body, end: str) -> onnx.NodeProto:
        return next(n for n in body.node if n.output[0].endswith(end))

    def forget_not_c(body):  # f * h: the state, not the cell state
        mul = named(body, "lstm_cell/mul_2:0")
        mul.input[1] = next(i.name for i in body.input if i.name.endswith("placeholder_2:0"))

    def output_relu(body):  # o = relu(split:3): not the gates' hard sigmoid
        top = named(body, "clip_by_value_3:0")
        top.op_type = "Relu"
        top.input[:] = [next(o for n in body.node for o in n.output if o.endswith("lstm_cell/split:3"))]

    cases = [(forget_not_c, "the new cell state is not f * c + i * g"),
             (output_relu, "LSTM: the forget gate's activation HardSigmoid differs from the output gate's Relu")]
    for edit, why in cases:
        msg = refused(lstm_edit(tmp_path, edit))
        assert why in msg, msg


def test_what_is_no_keras_masking_keeps_its_refusal(tmp_path):
    """The Masking refusal needs Keras's whole test (Equal to mask_value, Not, Cast, ReduceSum
    over the features, Greater than 0) in a file tf2onnx wrote: with a ReduceMax instead, or from
    another exporter, the Equal is refused as any unsupported op on the data path."""
    m = onnx.load(DATA / "tf2onnx_k3_masking.onnx")
    for node in m.graph.node:  # the Masking layer's "any" and the GRU's (its mask) alike
        if node.op_type == "ReduceSum":
            node.op_type = "ReduceMax"
    with pytest.raises(UnsupportedOpError, match=r"NotEqual' \(op Equal, #1 of 64 in the graph\): unsupported op 'Equal'"):
        rnnedge.convert(m, tmp_path / "m.rne")
    other = onnx.load(DATA / "tf2onnx_k3_masking.onnx")
    other.producer_name = "other"  # another exporter's Equal: no reading of it as Keras's Masking
    with pytest.raises(UnsupportedOpError, match=r"NotEqual' \(op Equal, #1 of 64 in the graph\): unsupported op 'Equal'"):
        rnnedge.convert(other, tmp_path / "m.rne")


# -- Conv1D "valid" (tf2onnx: a Conv without padding): as the Keras reader makes it ---------------


def valid_with(tmp_path: Path, edit) -> Path:
    m = onnx.load(DATA / "tf2onnx_k3_conv_valid.onnx")
    edit(m.graph)
    path = tmp_path / "valid.onnx"
    onnx.save(m, path)
    return path


def test_what_needs_the_end_of_a_valid_conv_refused(tmp_path):
    """After a "valid" conv (its last rows past ONNX's end), the last step (a Gather of it) and
    a conv that looks ahead (a second valid conv) are refused by name; another exporter's
    shortening conv keeps the refusal of shortening convs."""
    from onnx import helper

    def last_step(graph):
        out = graph.output[0].name
        producer = next(n for n in graph.node if out in n.output)
        producer.output[0] = "seq"
        graph.initializer.append(onnx.numpy_helper.from_array(np.array(-1, np.int64), "minus1"))
        graph.node.append(helper.make_node("Gather", ["seq", "minus1"], [out], name="last", axis=1))
        del graph.output[0].type.tensor_type.shape.dim[1]

    with pytest.raises(UnsupportedOpError, match=r"node 'last' \(op Gather.*it needs its last step, of a sequence "
                                                 r"that the 'valid' Conv over time "
                                                 r"'k3_conv_valid_1/conv1d_2_1/convolution' shortened by 2 steps"):
        rnnedge.convert(valid_with(tmp_path, last_step), tmp_path / "m.rne")

    def second_valid_conv(graph):
        tanh = next(n for n in graph.node if n.op_type == "Tanh")
        readers = [n for n in graph.node if tanh.output[0] in n.input]
        at = list(graph.node).index(tanh) + 1
        graph.initializer.extend([onnx.numpy_helper.from_array(np.full((4, 4, 1, 3), 0.1, np.float32), "w2"),
                                  onnx.numpy_helper.from_array(np.array([2], np.int64), "ax2")])
        new = [helper.make_node("Unsqueeze", [tanh.output[0], "ax2"], ["u2"], name="u2"),
               helper.make_node("Conv", ["u2", "w2"], ["c2"], name="conv2", kernel_shape=[1, 3]),
               helper.make_node("Squeeze", ["c2", "ax2"], ["s2"], name="s2")]
        for k, n in enumerate(new):
            graph.node.insert(at + k, n)
        for r in readers:
            r.input[:] = ["s2" if i == tanh.output[0] else i for i in r.input]

    with pytest.raises(UnsupportedOpError, match=r"node 'conv2' \(op Conv.*it needs its end padding \(it looks "
                                                 r"ahead\), of a sequence that the 'valid' Conv over time"):
        rnnedge.convert(valid_with(tmp_path, second_valid_conv), tmp_path / "m.rne")

    def other_exporter(graph):
        pass

    m = onnx.load(valid_with(tmp_path, other_exporter))
    m.producer_name = "pytorch"  # ONNX's shorter output: the graph converter's refusal stands
    with pytest.raises(UnsupportedOpError, match=r"the output is 2 steps shorter than the input"):
        rnnedge.convert(m, tmp_path / "m.rne")
