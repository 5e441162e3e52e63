"""The converter's dataflow graphs (rnnedge.converter.to_graph, docs/converter.md): the exporter
fixtures of tests/data/fixtures/graph/ (tests/make_graph_fixtures.py) against onnxruntime, whole
sequence and step by step, streaming equal to one run; state pairing; refusals by name."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from rnnedge.converter import to_graph  # noqa: E402
from rnnedge.converter.dag import name_pair  # noqa: E402
from rnnedge.errors import ConvertError, InputError, UnsupportedOpError  # noqa: E402
from rnnedge.ir.graph import Binary, Copy, Dense, Gather, Recurrent  # noqa: E402
from rnnedge.reference import run_graph  # noqa: E402

GRAPH = Path(__file__).parent / "data" / "fixtures" / "graph"
INDEX = json.loads((GRAPH / "index.json").read_text())
RTOL = 1e-5


def session(path: Path) -> "ort.InferenceSession":
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def ort_run(name: str, x: np.ndarray) -> np.ndarray:
    """onnxruntime over x [T, B, ...] as the package's user would call it: a step function once
    per step with its state fed back (zeros first), a sequence model once on [B, T, ...]."""
    s = session(GRAPH / f"{name}.onnx")
    if not INDEX[name]["step_function"]:
        y = s.run(None, {s.get_inputs()[0].name: np.swapaxes(x, 0, 1)})[0]
        return np.swapaxes(y, 0, 1)
    ins, outs = s.get_inputs(), s.get_outputs()
    B = x.shape[1]
    state = {}
    for i in ins[1:]:
        shape = [B if isinstance(d, str) or d is None else d for d in i.shape]
        state[i.name] = np.zeros(shape, np.float32)
    ys = []
    for t in range(x.shape[0]):
        res = s.run(None, {ins[0].name: x[t], **state})
        ys.append(res[0])
        for i, o in zip(ins[1:], outs[1:]):
            state[i.name] = res[[p.name for p in outs].index(o.name)]
    return np.stack(ys)


def rel_err(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-30))


@pytest.mark.parametrize("name", sorted(INDEX))
def test_fixture_matches_onnxruntime_whole_and_streamed(name: str) -> None:
    g = to_graph(GRAPH / f"{name}.onnx")
    x = np.load(GRAPH / f"{name}.input.npy")
    want = ort_run(name, x)
    x = x.reshape(x.shape[:2] + g.values[g.input].shape)  # ids [T, B] -> [T, B, 1]
    y, _ = run_graph(g, x)
    assert y.reshape(want.shape).shape == want.shape
    assert rel_err(y.reshape(want.shape), want) < RTOL
    # step by step, the state carried: the same numbers bit for bit
    st = None
    steps = []
    for t in range(x.shape[0]):
        yt, st = run_graph(g, x[t : t + 1], st)
        steps.append(yt)
    np.testing.assert_array_equal(np.concatenate(steps), y)
    # uneven chunks
    st, parts = None, []
    for a, b in ((0, 2), (2, 7), (7, x.shape[0])):
        yc, st = run_graph(g, x[a:b], st)
        parts.append(yc)
    np.testing.assert_array_equal(np.concatenate(parts), y)


def test_fixture_files_are_small_and_listed() -> None:
    for name in INDEX:
        assert (GRAPH / f"{name}.onnx").stat().st_size < 100_000
        assert (GRAPH / f"{name}.input.npy").exists()
    covered = {(v["exporter"], v["opset"]) for v in INDEX.values()}
    assert any("dynamo=True" in e for e, _ in covered) and any("dynamo=False" in e for e, _ in covered)
    assert any(o in (11, 13) for _, o in covered)


def test_step_function_state_is_absorbed_by_its_lstm() -> None:
    """h -> initial_h, c -> initial_c, hn = Y_h, cn = Y_c: the LSTM node keeps the state, the
    graph runs over whole chunks (no explicit state left)."""
    g = to_graph(GRAPH / "step_lstm.onnx")
    assert [(s.name, s.kind, s.output) for s in g.state] == [("h", "h", "hn"), ("c", "c", "cn")]
    assert not g.explicit_state and not g.state_values
    assert any("state: input 'h' <- output 'hn' (by name" in n for n in g.folded)
    assert any("'h' / output 'hn' is the state of 1 recurrent node" in n for n in g.folded)
    (rec,) = [n for n in g.nodes if isinstance(n.op, Recurrent)]
    assert rec.inputs[1:] == [None, None]


def test_packed_state_is_absorbed_row_by_row() -> None:
    g = to_graph(GRAPH / "step_lstm_packed.onnx")
    assert [(s.name, s.kind, s.output) for s in g.state] == [("state", "h", "next_state"),
                                                             ("state", "c", "next_state")]
    assert not g.explicit_state


def _lstm_step_model(read: str):
    """x [B, 2] -> LSTM(H=3) with h, c [1, B, 3] in and hn, cn out; y is the final h (`hn`: the
    final state feeds the output too), the final c (`cn`) or Y, squeezed."""
    rng = np.random.default_rng(5)
    W = rng.standard_normal((1, 12, 2)).astype(np.float32)
    R = rng.standard_normal((1, 12, 3)).astype(np.float32)
    nodes = [helper.make_node("Unsqueeze", ["x", "zero"], ["x3"]),
             helper.make_node("LSTM", ["x3", "W", "R", "", "", "h", "c"], ["Y", "hn", "cn"], hidden_size=3),
             helper.make_node("Squeeze", [read, "zero" if read != "Y" else "zero1"], ["y"])]
    ins = [_vi("x", ["B", 2]), _vi("h", [1, "B", 3]), _vi("c", [1, "B", 3])]
    outs = [_vi("y", (["B", 3] if read != "Y" else [1, "B", 3])), _vi("hn", [1, "B", 3]), _vi("cn", [1, "B", 3])]
    inits = [("W", W), ("R", R), ("zero", np.array([0], np.int64)), ("zero1", np.array([1], np.int64))]
    return _model(nodes, ins, outs, inits)


@pytest.mark.parametrize("read", ["hn", "Y", "cn"])
def test_state_read_by_the_output_is_absorbed_unless_it_is_the_cell_state(read: str) -> None:
    """The final h read by the output as well (Silero's step forms) is absorbed, that read becoming
    the per-step Y (the same h at each step); a final c read elsewhere keeps the state explicit.
    Each against onnxruntime stepped with its state fed back."""
    m = _lstm_step_model(read)
    g = to_graph(m)
    assert g.explicit_state == (read == "cn")
    s = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(6).standard_normal((7, 2, 2)).astype(np.float32)
    h = c = np.zeros((1, 2, 3), np.float32)
    want = []
    for t in range(7):
        y, h, c = s.run(None, {"x": x[t], "h": h, "c": c})
        want.append(y.reshape(2, 3))
    got, _ = run_graph(g, x)
    assert rel_err(got.reshape(7, 2, 3), np.stack(want)) < RTOL


def test_token_model_reads_s32_ids_through_gather() -> None:
    g = to_graph(GRAPH / "tokens_lstm2.onnx")
    assert g.values[g.input].dtype == "s32"
    assert isinstance(g.nodes[0].op, Gather)
    assert sum(isinstance(n.op, Recurrent) for n in g.nodes) == 2


def test_hand_cell_is_one_lstm_node() -> None:
    """An LSTM cell written as MatMul / Add / Split / Sigmoid / Tanh / Mul on the state pair h, c
    is one LSTM node (dag._fuse_lstm_cells) that keeps the state (no STATE value left)."""
    g = to_graph(GRAPH / "hand_cell.onnx")
    (rec,) = [n for n in g.nodes if isinstance(n.op, Recurrent)]
    assert rec.op.cell == "lstm" and rec.inputs[1:] == [None, None]
    assert not g.state_values and not g.explicit_state
    assert [(s.name, s.kind) for s in g.state] == [("h", "h"), ("c", "c")]
    assert sum(isinstance(n.op, Dense) for n in g.nodes) == 1  # the head
    assert any("an LSTM cell written out as ops (hidden" in n for n in g.folded)


def _written_lstm_model(order: str, g_act: str = "Tanh", old_c_out: bool = False, keras: bool = False):
    """x [B, 4] -> an LSTM cell (H = 3) written as Silero op18 writes it: h, c = Gather(state, 0 /
    1), gates = Gemm(x) + Gemm(h) (`keras`: MatMul(x) + MatMul(h), then Add of the one bias, as
    DTLN stage 2) cut by Split into the parts `order` names (i, f, g, o), c' =
    f c + i g_act(g), h' = o tanh(c'); y = Relu(h') (+ c with `old_c_out`) and stateN =
    Concat(h', c') [2, B, 3]."""
    rng = np.random.default_rng(7)
    W = rng.standard_normal((12, 4)).astype(np.float32)
    R = rng.standard_normal((12, 3)).astype(np.float32) * 0.5
    bx, bh = rng.standard_normal(12).astype(np.float32), rng.standard_normal(12).astype(np.float32)
    part = {k: f"z{order.index(k)}" for k in "ifgo"}
    nodes = [helper.make_node("Gather", ["state", "i0"], ["h"], axis=0),
             helper.make_node("Gather", ["state", "i1"], ["c"], axis=0),
             *([helper.make_node("MatMul", ["x", "Wt"], ["a"]), helper.make_node("MatMul", ["h", "Rt"], ["b"]),
                helper.make_node("Add", ["a", "b"], ["ab"]), helper.make_node("Add", ["ab", "bx"], ["z"])]
               if keras else
               [helper.make_node("Gemm", ["x", "W", "bx"], ["a"], transB=1),
                helper.make_node("Gemm", ["h", "R", "bh"], ["b"], transB=1),
                helper.make_node("Add", ["a", "b"], ["z"])]),
             helper.make_node("Split", ["z"], ["z0", "z1", "z2", "z3"], axis=1),
             helper.make_node("Sigmoid", [part["i"]], ["si"]), helper.make_node("Sigmoid", [part["f"]], ["sf"]),
             helper.make_node(g_act, [part["g"]], ["tg"]), helper.make_node("Sigmoid", [part["o"]], ["so"]),
             helper.make_node("Mul", ["sf", "c"], ["fc"]), helper.make_node("Mul", ["tg", "si"], ["ig"]),
             helper.make_node("Add", ["fc", "ig"], ["c2"]), helper.make_node("Tanh", ["c2"], ["tc"]),
             helper.make_node("Mul", ["so", "tc"], ["h2"]),
             helper.make_node("Relu", ["h2"], ["y0" if old_c_out else "y"]),
             helper.make_node("Unsqueeze", ["h2", "zero"], ["h3"]),
             helper.make_node("Unsqueeze", ["c2", "zero"], ["c3"]),
             helper.make_node("Concat", ["h3", "c3"], ["stateN"], axis=0)]  # fmt: skip
    if old_c_out:
        nodes.append(helper.make_node("Add", ["y0", "c"], ["y"]))
    weights = ([("Wt", W.T.copy()), ("Rt", R.T.copy()), ("bx", bx)] if keras
               else [("W", W), ("R", R), ("bx", bx), ("bh", bh)])  # fmt: skip
    inits = weights + [("i0", np.array(0, np.int64)), ("i1", np.array(1, np.int64)),
                       ("zero", np.array([0], np.int64))]  # fmt: skip
    return _model(nodes, [_vi("x", ["B", 4]), _vi("state", [2, "B", 3])],
                  [_vi("y", ["B", 3]), _vi("stateN", [2, "B", 3])], inits)  # fmt: skip


@pytest.mark.parametrize("order,g_act,old_c_out,keras", [
    ("ifgo", "Tanh", False, False), ("oigf", "Tanh", False, False), ("icfo", "Tanh", False, True),
    ("ifgo", "Tanh", True, False), ("ifgo", "Sigmoid", False, False)])  # fmt: skip
def test_an_lstm_cell_written_out_is_one_lstm_node(order: str, g_act: str, old_c_out: bool, keras: bool,
                                                   tmp_path: Path) -> None:  # fmt: skip
    """Silero op18's and DTLN stage 2's spelling: each gate found by where it goes (any order of
    the Split's parts; Keras's i, f, c, o with a MatMul each and one bias Add), the state
    absorbed by the node; with the old c read elsewhere too the node
    reads it as its c_init (explicit state); a cell whose g is no Tanh is no LSTM and stays as
    written. Each way the graph is onnxruntime's stepped with its state fed back, the C library
    runs it stepped, and its int16 is the oracle's bit for bit."""
    import rnnedge
    from rnnedge import fixedpoint as fx
    from rnnedge.blob.write import save_blob
    from rnnedge.quant.graph import quantize_graph

    path = tmp_path / "cell.onnx"
    onnx.save(_written_lstm_model(order.replace("c", "g"), g_act, old_c_out, keras), str(path))
    g = to_graph(path, state={"state": "stateN"})
    lstm = g_act == "Tanh"
    assert any(isinstance(n.op, Recurrent) for n in g.nodes) == lstm
    assert g.explicit_state == (not lstm or old_c_out)
    if lstm and not old_c_out:
        assert [(s.name, s.kind, s.output) for s in g.state] == [("state", "h", "stateN"), ("state", "c", "stateN")]
    x = np.random.default_rng(8).standard_normal((12, 2, 4)).astype(np.float32)
    sess, st, want = session(path), np.zeros((2, 2, 3), np.float32), []
    for t in range(x.shape[0]):
        yt, st = sess.run(None, {"x": x[t], "state": st})
        want.append(yt)
    y, _ = run_graph(g, x)
    assert rel_err(y.reshape(-1), np.stack(want).reshape(-1)) < RTOL
    q = quantize_graph(g, "int16", x)
    save_blob(q, tmp_path / "int16.rne")
    s = rnnedge.load(tmp_path / "int16.rne").stream(2)
    yc = np.stack([s.step(x[t]) for t in range(x.shape[0])])
    want_q = fx.run_qgraph(q, fx.quantize(x, q.values[q.input].scale))[0]
    np.testing.assert_array_equal(yc.reshape(-1), fx.dequantize(want_q, q.out_scale).reshape(-1))
    assert np.max(np.abs(yc.reshape(-1) - y.reshape(-1))) < 1e-3 * np.ptp(y)


@pytest.mark.parametrize("inp,out", [("h", "hn"), ("h0", "hn"), ("c0", "cn"), ("state", "stateN"),
                                     ("state", "next_state"), ("state_in", "state_out"),
                                     ("cache_0", "next_cache_0"), ("input_3", "output_3"),
                                     ("in_cache0", "out_cache0"), ("x", "x_out")])  # fmt: skip
def test_name_patterns(inp: str, out: str) -> None:
    assert name_pair(inp, out)


@pytest.mark.parametrize("inp,out", [("h", "y"), ("input_3", "output_4"), ("x", "x"), ("in_a", "out_b"),
                                     ("in_cache0", "out_cache1")])
def test_name_patterns_not(inp: str, out: str) -> None:
    assert not name_pair(inp, out)


# -- small hand-made graphs ----------------------------------------------------------------------
def _model(nodes, inputs, outputs, inits=(), opset=17):
    g = helper.make_graph(nodes, "g", inputs, outputs, [numpy_helper.from_array(a, n) for n, a in inits])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    return m


def _vi(name, shape, t=TensorProto.FLOAT):
    return helper.make_tensor_value_info(name, t, shape)


def _cell(extra_out=()):
    """y = tanh(x @ W + s @ R); s' = y: an RNN cell written out, state s [B, 3]."""
    rng = np.random.default_rng(0)
    W = rng.standard_normal((2, 3)).astype(np.float32)
    R = rng.standard_normal((3, 3)).astype(np.float32)
    nodes = [helper.make_node("MatMul", ["x", "W"], ["a"]), helper.make_node("MatMul", ["s", "R"], ["b"]),
             helper.make_node("Add", ["a", "b"], ["z"]), helper.make_node("Tanh", ["z"], ["y"]),
             helper.make_node("Identity", ["y"], ["s_out"])]
    return nodes, [("W", W), ("R", R)]


def test_explicit_state_argument_and_by_shape() -> None:
    nodes, inits = _cell()
    nodes[-1] = helper.make_node("Identity", ["y"], ["carry"])
    m = _model(nodes, [_vi("x", ["B", 2]), _vi("s", ["B", 3])], [_vi("y", ["B", 3]), _vi("carry", ["B", 3])], inits)
    g = to_graph(m)  # paired by shape: 'carry' is the one other output shaped like 's'
    (s,) = g.state_values
    assert g.values[g.values[s].update].name == "carry"
    assert any("(by shape" in n for n in g.folded)
    g2 = to_graph(m, state={"s": "carry"})
    assert any("(given" in n for n in g2.folded)
    x = np.random.default_rng(1).standard_normal((5, 2, 2)).astype(np.float32)
    y, _ = run_graph(g, x)
    st = np.zeros((2, 3), np.float32)
    for t in range(5):
        st = np.tanh(x[t] @ inits[0][1] + st @ inits[1][1])
        np.testing.assert_allclose(y[t], st, rtol=1e-5, atol=1e-6)
    with pytest.raises(InputError, match="'nope' is not an output"):
        to_graph(m, state={"s": "nope"})


@pytest.mark.parametrize("x_shape", [[1, 2], ["B", "S"]])
def test_the_signal_input_is_not_paired_with_the_output_by_name(x_shape) -> None:
    """Silero's step forms: 'input' -> 'output' is the in/out name pattern, but 'output' is the
    model's output: shapes that differ ([1, 2] vs [1, 3]) or, with the state given, a pattern that
    would leave no output make no pair."""
    nodes, inits = _cell()
    names = {"x": "input", "y": "output", "s_out": "sN"}
    nodes = [helper.make_node(n.op_type, [names.get(i, i) for i in n.input],
                              [names.get(o, o) for o in n.output]) for n in nodes]
    ins = [_vi("input", x_shape), _vi("s", [x_shape[0], 3])]
    m = _model(nodes, ins, [_vi("output", [x_shape[0], 3]), _vi("sN", [x_shape[0], 3])], inits)
    g = to_graph(m, state={"s": "sN"}, inputs={"input": "B,2"} if x_shape[1] == "S" else None)
    assert (g.input_spec.name, g.output_spec.name) == ("input", "output")
    assert [g.values[g.values[s].update].name for s in g.state_values] == ["sN"]


def test_ambiguous_pairing_is_refused_naming_the_candidates() -> None:
    nodes, inits = _cell()
    nodes.append(helper.make_node("Identity", ["y"], ["s_n"]))
    m = _model(nodes, [_vi("x", ["B", 2]), _vi("s", ["B", 3])],
               [_vi("y", ["B", 3]), _vi("s_out", ["B", 3]), _vi("s_n", ["B", 3])], inits)
    with pytest.raises(ConvertError, match=r"'s' could pair with several outputs \('s_out', 's_n'\).*--state s="):
        to_graph(m)


def test_several_inputs_are_refused_by_name() -> None:
    nodes, inits = _cell()
    m = _model(nodes[:4], [_vi("x", ["B", 2]), _vi("s", ["B", 3])], [_vi("y", ["B", 3])], inits)
    with pytest.raises(ConvertError, match=r"2 inputs that are neither fixed nor paired.*'x', 's'.*--state"):
        to_graph(m)


def test_unknown_op_is_refused_by_name_and_data_input() -> None:
    m = _model([helper.make_node("Sin", ["x"], ["y"], name="sine")], [_vi("x", ["T", "B", 2])],
               [_vi("y", ["T", "B", 2])])
    with pytest.raises(UnsupportedOpError, match=r"node 'sine' \(op Sin.*'Sin' on the data path \(input 0 'x' is data\)"):
        to_graph(m)


def test_binary_broadcast_and_constants() -> None:
    """Two data tensors with broadcasting over feature axes, constant operands of every form."""
    rng = np.random.default_rng(3)
    k = rng.standard_normal((1, 4)).astype(np.float32)
    nodes = [
        helper.make_node("Unsqueeze", ["x", "ax"], ["xu"]),  # [T, B, 1, 4]
        helper.make_node("ReduceMean", ["xu", "ax3"], ["m"], keepdims=1),  # [T, B, 1, 1]
        helper.make_node("Sub", ["xu", "m"], ["c"]),
        helper.make_node("Mul", ["c", "k"], ["d"]),
        helper.make_node("Div", ["two", "d"], ["e"]),
        helper.make_node("Pow", ["x", "three"], ["p"]),
        helper.make_node("Max", ["e", "half"], ["f"]),
        helper.make_node("Squeeze", ["f", "ax"], ["g"]),
        helper.make_node("Add", ["g", "p"], ["h"]),
        helper.make_node("Where", ["mask", "h", "x"], ["y"]),
    ]
    inits = [("ax", np.array([2], np.int64)), ("ax3", np.array([3], np.int64)), ("k", k),
             ("two", np.array(2.0, np.float32)), ("three", np.array(3.0, np.float32)),
             ("half", np.array(0.5, np.float32)), ("mask", np.array([True, False, True, True]))]
    m = _model(nodes, [_vi("x", ["T", "B", 4])], [_vi("y", ["T", "B", 4])], inits, opset=18)
    g = to_graph(m)
    x = rng.standard_normal((6, 3, 4)).astype(np.float32)
    s = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    want = s.run(None, {"x": x})[0]
    y, _ = run_graph(g, x)
    assert rel_err(y, want) < RTOL
    assert any(isinstance(n.op, Binary) and n.op.const is None for n in g.nodes)


# -- the pipeline fixtures (tests/data/fixtures/, tools/make_fixtures.py) as graphs ---------------
FIXTURES = Path(__file__).parent / "data" / "fixtures"
PIPELINE = [e for e in json.loads((FIXTURES / "index.json").read_text()) if not e["error"]]
# (tf2onnx's Loops of a Keras RNN / GRU, keras_simplernn_unrolled and
# keras_gru_reset_before_unrolled, too: dag.op_loop reads them as the native cell)


@pytest.mark.parametrize("entry", PIPELINE, ids=[e["name"] for e in PIPELINE])
def test_pipeline_fixture_as_graph_matches_onnxruntime(entry: dict) -> None:
    from rnnedge.reference import graph_layout, graph_rows, graph_state, graph_state_outputs

    name = entry["name"]
    g = to_graph(FIXTURES / f"{name}.onnx", fixed=entry.get("fixed"))
    x = np.load(FIXTURES / f"{name}.input.npy")
    want = np.load(FIXTURES / f"{name}.expected.npy")
    rows = graph_rows(x, g.input_spec.axes)
    feeds = dict(np.load(FIXTURES / f"{name}.state.npz")) if entry["state"] else {}
    y, fin = run_graph(g, rows, graph_state(g, feeds, rows.shape[1]))
    got = graph_layout(y, g.output_spec.axes)
    assert got.shape == want.shape
    assert rel_err(got, want) < RTOL, rel_err(got, want)
    if entry["state"]:
        final = dict(np.load(FIXTURES / f"{name}.final.npz"))
        outs = graph_state_outputs(g, fin)
        assert set(final) <= set(outs)
        for k in final:
            assert rel_err(outs[k], final[k]) < RTOL


# -- the six models of the issue: today's message is gone ----------------------------------------
TODAY = {
    "step_lstm": r"input X is \[B,T,F\], but LSTM with layout=0 reads \[T,B,F\]",
    "step_lstm_packed": r"input X is \[B,T,F\], but LSTM with layout=0 reads \[T,B,F\]",
    "tokens_lstm2": r"the feature size \(last axis\) of input 'ids' is not fixed",
    "glu_gru": r"unsupported op 'Split' on the data path",
    "residual_lstm": r"Add of two data tensors \(a residual or skip connection\)",
    "hand_cell": r"the graph has 3 independent inputs \('x_t', 'h', 'c'\)",
}


@pytest.mark.parametrize("name", sorted(TODAY))
def test_the_pipeline_message_is_gone(name: str, tmp_path: Path) -> None:
    import rnnedge
    from rnnedge.converter import to_network
    from rnnedge.ir.graph import Graph

    with pytest.raises(ConvertError, match=TODAY[name]):
        to_network(GRAPH / f"{name}.onnx")  # the straight pipeline converter (what convert() said)
    g = rnnedge.convert(GRAPH / f"{name}.onnx")
    assert isinstance(g, Graph) and "via rnnedge" in g.producer
    out = tmp_path / "m.rne"
    import re

    try:  # written as a format-2 blob (tests/test_graph_e2e.py), or refused as unloadable
        rnnedge.convert(GRAPH / f"{name}.onnx", out)
    except ConvertError as e:  # what the runtime cannot load yet (test_graph_e2e's xfail marks)
        assert "cannot be stored as a loadable blob" in str(e) and not out.exists()
        assert not re.search(TODAY[name], str(e))
    else:
        assert out.exists()


def test_cli_state_option(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from rnnedge.cli import main

    import rnnedge

    out = tmp_path / "m.rne"
    g = rnnedge.convert(GRAPH / "hand_cell.onnx", state={"h": "h_out", "c": "c_out"})
    notes = "\n".join(g.folded)  # the CLI prints them (tests/test_graph_e2e.py)
    assert "state: input 'h' <- output 'h_out' (given" in notes and "state: input 'c' <- output 'c_out' (given" in notes
    for bad, message in ((["--state", "h"], "expected INPUT=OUTPUT"),
                         (["--state", "h=a", "--state", "h=b"], "--state h=... is given twice"),
                         (["--state", "q=h_out"], "'q' is not an input of the graph")):  # fmt: skip
        assert main(["convert", str(GRAPH / "hand_cell.onnx"), "-o", str(out), *bad]) == 1
        assert message in capsys.readouterr().err


# -- graph ops, each opset form, against onnxruntime ---------------------------------------------
_R = np.random.default_rng(11)
_W = _R.standard_normal((4, 6)).astype(np.float32)
_C = np.array([[1.0, 0.0], [0.5, 2.0], [0.0, -1.0]], np.float32)


def _i64(*v):
    return np.array(v, np.int64)


OP_CASES = {
    # name: (opset, nodes, initializers, output shape after [T, B])
    "gemm_transB_alpha_beta": (17, [helper.make_node("Gemm", ["x2", "Wt", "b"], ["y"], transB=1, alpha=0.5, beta=2.0)],
                               [("Wt", _W.T.copy()), ("b", np.arange(6, dtype=np.float32))], None),
    "const_matmul_data": (17, [helper.make_node("Reshape", ["x", "s"], ["r"]),  # [T, B, 2, 2]
                               helper.make_node("MatMul", ["C", "r"], ["y"])],
                          [("s", _i64(0, 0, 2, 2)), ("C", _C)], [3, 2]),
    "transpose_in_step": (17, [helper.make_node("Reshape", ["x", "s"], ["r"]),
                               helper.make_node("Transpose", ["r"], ["y"], perm=[0, 1, 3, 2])],
                          [("s", _i64(0, 0, 2, 2))], [2, 2]),
    "transpose_time_batch": (17, [helper.make_node("Transpose", ["x"], ["t"], perm=[1, 0, 2]),
                                  helper.make_node("Relu", ["t"], ["y"])], [], "BT"),
    "split_attr_opset11": (11, [helper.make_node("Split", ["x"], ["a", "b"], axis=2, split=[1, 3]),
                                helper.make_node("ReduceSum", ["b"], ["s"], axes=[2], keepdims=1),
                                helper.make_node("Mul", ["a", "s"], ["y"])], [], [1]),
    "split_input_opset13": (13, [helper.make_node("Split", ["x", "sp"], ["a", "b"], axis=-1),
                                 helper.make_node("Concat", ["b", "a"], ["y"], axis=-1)], [("sp", _i64(3, 1))], [4]),
    "split_num_outputs_opset18": (18, [helper.make_node("Split", ["x"], ["a", "b"], axis=2, num_outputs=2),
                                       helper.make_node("Sub", ["a", "b"], ["y"])], [], [2]),
    "slice_attr_opset9": (9, [helper.make_node("Slice", ["x"], ["y"], starts=[1], ends=[4], axes=[2])], [], [3]),
    "slice_steps_opset13": (13, [helper.make_node("Slice", ["x", "st", "en", "ax", "sp"], ["y"])],
                            [("st", _i64(0)), ("en", _i64(4)), ("ax", _i64(-1)), ("sp", _i64(2))], [2]),
    "slice_last_step": (13, [helper.make_node("Slice", ["x", "st", "en", "ax"], ["y"])],
                        [("st", _i64(-1)), ("en", _i64(2**62)), ("ax", _i64(0))], "last"),
    "squeeze_unsqueeze_attr_opset11": (11, [helper.make_node("Unsqueeze", ["x"], ["u"], axes=[2]),
                                            helper.make_node("Exp", ["u"], ["e"]),
                                            helper.make_node("Squeeze", ["e"], ["y"], axes=[2])], [], [4]),
    "squeeze_unsqueeze_input_opset13": (13, [helper.make_node("Unsqueeze", ["x", "a"], ["u"]),
                                             helper.make_node("Abs", ["u"], ["e"]),
                                             helper.make_node("Squeeze", ["e", "a"], ["y"])], [("a", _i64(3))], [4]),
    "reduce_attr_opset13": (13, [helper.make_node("ReduceMax", ["x"], ["m"], axes=[-1], keepdims=0),
                                 helper.make_node("ReduceMean", ["x"], ["n"], axes=[2], keepdims=0),
                                 helper.make_node("Sub", ["m", "n"], ["y"])], [], []),
    "reduce_input_opset18": (18, [helper.make_node("ReduceSum", ["x", "a"], ["s"], keepdims=1),
                                  helper.make_node("ReduceMin", ["x", "a"], ["m"], keepdims=1),
                                  helper.make_node("Div", ["s", "m"], ["y"])], [("a", _i64(2))], [1]),
    "unary_chain": (17, [helper.make_node("Abs", ["x"], ["a"]), helper.make_node("Sqrt", ["a"], ["b"]),
                         helper.make_node("Reciprocal", ["b"], ["c"]), helper.make_node("Log", ["c"], ["d"]),
                         helper.make_node("Neg", ["d"], ["e"]), helper.make_node("Erf", ["e"], ["y"])], [], [4]),
    "clip_inputs_opset11": (11, [helper.make_node("Clip", ["x", "lo", "hi"], ["y"])],
                            [("lo", np.array(-0.5, np.float32)), ("hi", np.array(0.7, np.float32))], [4]),
    "clip_attrs_opset6": (6, [helper.make_node("Clip", ["x"], ["y"], min=-0.5, max=0.7)], [], [4]),
    "softmax_logsoftmax": (13, [helper.make_node("Softmax", ["x"], ["s"], axis=-1),
                                helper.make_node("LogSoftmax", ["s"], ["y"], axis=2)], [], [4]),
    "layernorm_dropout_cast_identity": (17, [helper.make_node("LayerNormalization", ["x", "g", "b"], ["l"], epsilon=1e-3),
                                             helper.make_node("Dropout", ["l"], ["d"]),
                                             helper.make_node("Cast", ["d"], ["c"], to=TensorProto.FLOAT),
                                             helper.make_node("Identity", ["c"], ["y"])],
                                        [("g", _R.standard_normal(4).astype(np.float32)),
                                         ("b", _R.standard_normal(4).astype(np.float32))], [4]),
    "flatten": (13, [helper.make_node("Unsqueeze", ["x", "a"], ["u"]),  # [T, B, 4, 1]
                     helper.make_node("Transpose", ["u"], ["t"], perm=[1, 0, 2, 3]),  # [B, T, 4, 1]
                     helper.make_node("Flatten", ["t"], ["f"], axis=2),  # [B*T, 4]
                     helper.make_node("Shape", ["t"], ["sh"]),
                     helper.make_node("Slice", ["sh", "z", "two"], ["bt"]),
                     helper.make_node("Concat", ["bt", "four"], ["s"], axis=0),
                     helper.make_node("Reshape", ["f", "s"], ["y"])],  # [B, T, 4] (B*T merged, split)
                [("a", _i64(3)), ("z", _i64(0)), ("two", _i64(2)), ("four", _i64(4))], "BT"),
    "gather_feature": (13, [helper.make_node("Reshape", ["x", "s"], ["r"]),
                                    helper.make_node("Gather", ["r", "i"], ["g"], axis=2),  # [T, B, 2]
                                    helper.make_node("Max", ["g", "g", "half"], ["y"])],
                               [("s", _i64(0, 0, 2, 2)), ("i", np.array(1, np.int64)),
                                ("half", np.array(0.1, np.float32))], [2]),
    "min_broadcast_data": (17, [helper.make_node("ReduceMean", ["x"], ["m"], axes=[2], keepdims=1),
                                helper.make_node("Min", ["x", "m"], ["y"])], [], [4]),
    "expand_noop": (17, [helper.make_node("Expand", ["x", "e"], ["t"]), helper.make_node("Relu", ["t"], ["y"])],
                    [("e", _i64(1, 1, 4))], [4]),
    "where_const_cond_two_data": (17, [helper.make_node("Neg", ["x"], ["n"]),
                                       helper.make_node("Where", ["c", "x", "n"], ["y"])],
                                  [("c", np.array([True, False, False, True]))], [4]),
    "div_sub_const_left": (17, [helper.make_node("Div", ["one", "x"], ["a"]),
                                helper.make_node("Sub", ["k", "a"], ["y"])],
                           [("one", np.array(1.0, np.float32)), ("k", _R.standard_normal(4).astype(np.float32))], [4]),
}


@pytest.mark.parametrize("case", sorted(OP_CASES))
def test_graph_op_matches_onnxruntime(case: str) -> None:
    from rnnedge.reference import graph_layout, graph_rows

    opset, nodes, inits, out = OP_CASES[case]
    if case.startswith("gemm"):  # Gemm takes 2 axes: [T, F] (no batch axis)
        nodes[0].input[0] = "x"
        ins, outs = [_vi("x", ["T", 4])], [_vi("y", ["T", 6])]
    else:
        ins = [_vi("x", ["T", "B", 4])]
        if out == "BT":
            outs = [_vi("y", ["B", "T", 4])]
        elif out == "last":
            outs = [_vi("y", [1, "B", 4])]
        else:
            outs = [_vi("y", ["T", "B", *out])]
    m = _model(nodes, ins, outs, inits, opset=opset)
    x = _R.standard_normal((5, 3, 4)).astype(np.float32) + (0.2 if "unary" in case else 0.0)
    if case.startswith("gemm"):
        x = x[:, 0]
    s = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    want = s.run(None, {"x": x})[0]
    g = to_graph(m)
    y, _ = run_graph(g, graph_rows(x, g.input_spec.axes))
    got = graph_layout(y, g.output_spec.axes)
    assert got.shape == want.shape, (g.output_spec, got.shape, want.shape)
    assert rel_err(got, want) < RTOL


REFUSED = [e for e in json.loads((FIXTURES / "index.json").read_text()) if e["error"]]


@pytest.mark.parametrize("entry", REFUSED, ids=[e["name"] for e in REFUSED])
def test_unrolled_fixtures_are_refused_through_convert(entry: dict) -> None:
    import rnnedge

    with pytest.raises(UnsupportedOpError, match=r"unrolled recurrent net.*step function") as e:
        rnnedge.convert(FIXTURES / f"{entry['name']}.onnx")
    assert entry["name"] in str(e.value)


REFUSALS = {
    "matmul_two_data": ([helper.make_node("MatMul", ["x", "xt"], ["y"], name="mm"),
                         helper.make_node("Transpose", ["x"], ["xt"], perm=[0, 2, 1])],
                        r"node 'mm' \(op MatMul.*MatMul of two data tensors"),
    "softmax_time_axis": ([helper.make_node("Softmax", ["x"], ["y"], axis=0, name="sm")],
                          r"node 'sm' \(op Softmax.*over axis 0"),
    "reduce_batch_axis": ([helper.make_node("ReduceSum", ["x", "a"], ["y"], name="rs")],
                          r"node 'rs' \(op ReduceSum.*the batch axis"),
    "where_data_condition": ([helper.make_node("Greater", ["x", "z"], ["c"]),
                              helper.make_node("Where", ["c", "x", "z"], ["y"], name="wh")],
                             r"unsupported op 'Greater' on the data path \(input 0 'x' is data\)"),
    "cast_to_int": ([helper.make_node("Cast", ["x"], ["y"], to=TensorProto.INT32, name="ci")],
                    r"node 'ci' \(op Cast.*only float to float"),
    "dropout_training": ([helper.make_node("Dropout", ["x", "", "yes"], ["y"], name="dr")],
                         r"node 'dr' \(op Dropout.*training_mode"),
    "expand_batch": ([helper.make_node("Expand", ["x", "big"], ["y"], name="ex")],
                     r"node 'ex' \(op Expand.*only an Expand that copies nothing"),
    "gather_first_step": ([helper.make_node("Gather", ["x", "z0"], ["y"], axis=0, name="g0")],
                          r"node 'g0' \(op Gather.*step 0 along the time axis.*step function"),
}


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_graph_refusals_name_the_node(case: str) -> None:
    nodes, message = REFUSALS[case]
    inits = [("a", _i64(1)), ("z", np.array(0.0, np.float32)), ("z0", np.array(0, np.int64)),
             ("yes", np.array(True)), ("big", _i64(2, 1, 4, 4))]
    m = _model(nodes, [_vi("x", ["T", "B", 4])], [_vi("y", None)], inits)
    with pytest.raises(ConvertError, match=message):
        to_graph(m)


@pytest.mark.parametrize("name", ["residual_lstm", "tokens_lstm2", "glu_gru"])
def test_linear_bias_adds_fold_into_dense(name: str) -> None:
    """MatMul + Add(bias) (torch writes the bias on the left) is one DENSE with a bias."""
    g = to_graph(GRAPH / f"{name}.onnx")
    assert not [n.name for n in g.nodes if isinstance(n.op, Binary) and n.op.const is not None]
    assert all(n.op.bias is not None for n in g.nodes if isinstance(n.op, Dense))


def test_reversed_output_is_refused() -> None:
    nodes = [helper.make_node("ReverseSequence", ["x", "n"], ["y"], time_axis=1, batch_axis=0)]
    m = _model(nodes, [_vi("x", [5, 2, 4])], [_vi("y", [5, 2, 4])], [("n", _i64(*[2] * 5))])
    with pytest.raises(UnsupportedOpError, match=r"output 'y' lists the steps in reverse time order"):
        to_graph(m)
    nodes.append(helper.make_node("Add", ["x", "y"], ["z"], name="mix"))
    m = _model(nodes, [_vi("x", [5, 2, 4])], [_vi("z", [5, 2, 4])], [("n", _i64(*[2] * 5))])
    with pytest.raises(UnsupportedOpError, match=r"node 'mix' .*time-reversed tensor"):
        to_graph(m)


def test_impossible_pairing_is_refused_naming_both() -> None:
    nodes, inits = _cell()
    nodes += [helper.make_node("ReduceSum", ["y", "one"], ["small"], keepdims=1)]
    m = _model(nodes, [_vi("x", ["B", 2]), _vi("s", ["B", 3])],
               [_vi("y", ["B", 3]), _vi("s_out", ["B", 3]), _vi("small", ["B", 1])], inits + [("one", _i64(1))])
    with pytest.raises(ConvertError, match=r"state output 'small' has 1 values per step .* its input 's' has 3"):
        to_graph(m, state={"s": "small"})
    with pytest.raises(InputError, match=r"state output 's_out' is paired with two inputs"):
        to_graph(m, state={"s": "s_out", "x": "s_out"})


def test_unknown_input_element_type_is_a_convert_error() -> None:
    """Found by tests/test_converter_fuzz.py: an element type code ONNX has no name for."""
    m = _model([helper.make_node("Relu", ["x"], ["y"])], [_vi("x", ["T", "B", 4], 999)], [_vi("y", ["T", "B", 4])])
    with pytest.raises(ConvertError, match=r"input 'x' has element type code 999 \(not an ONNX type\)"):
        to_graph(m)


def test_from_network_records_the_state_inputs_layout() -> None:
    """A pipeline's h0 / c0 as a graph: graph_state feeds them by name like to_graph's."""
    from rnnedge.converter import to_network
    from rnnedge.ir.graph import from_network
    from rnnedge.reference import graph_rows, graph_state, graph_state_outputs

    path = FIXTURES / "torch_lstm_state_2layer_seq.onnx"
    a, b = to_graph(path), from_network(to_network(path))
    assert a.value_specs == b.value_specs
    x = graph_rows(np.load(FIXTURES / "torch_lstm_state_2layer_seq.input.npy"), a.input_spec.axes)
    feeds = dict(np.load(FIXTURES / "torch_lstm_state_2layer_seq.state.npz"))
    ya, sa = run_graph(a, x, graph_state(a, feeds, x.shape[1]))
    yb, sb = run_graph(b, x, graph_state(b, feeds, x.shape[1]))
    np.testing.assert_allclose(ya.reshape(yb.shape), yb, rtol=1e-6, atol=1e-7)
    oa, ob = graph_state_outputs(a, sa), graph_state_outputs(b, sb)
    assert set(oa) == set(ob) == {"hn", "cn"}
    for k in oa:
        np.testing.assert_allclose(oa[k], ob[k], rtol=1e-6, atol=1e-7)


def _dtln_packed_model(keras: bool = False):
    """DTLN stage 1's state packing: x [B, 2] -> LSTM(H=3) -> LSTM(H=3) -> y; the state s
    [1, layer 2, H 3, h/c 2] read per layer and h/c by Slice + Reshape, written back as
    Concat(Y_h) and Concat(Y_c) (axis 0), stacked on a new last axis, then Transpose. `keras`:
    x and y [1, 1, F] (batch, time) moved in and out of the LSTMs' [T, B, F] by Transpose and
    Squeeze, as tf2onnx writes DTLN."""
    rng = np.random.default_rng(7)
    inits = [("zero", np.array([0], np.int64)), ("one", np.array([1], np.int64)),
             ("three", np.array([3], np.int64)), ("hshape", np.array([1, 1, 3], np.int64))]
    nodes = [helper.make_node("Transpose", ["x"], ["x3"], perm=[1, 0, 2]) if keras
             else helper.make_node("Unsqueeze", ["x", "zero"], ["x3"])]
    inp = "x3"
    for l in range(2):
        for kind, k in (("h", 0), ("c", 1)):
            inits += [(f"st{l}{k}", np.array([l, k], np.int64)), (f"sp{l}{k}", np.array([l + 1, k + 1], np.int64)),
                      ("ax13", np.array([1, 3], np.int64))]
            nodes += [helper.make_node("Slice", ["s", f"st{l}{k}", f"sp{l}{k}", "ax13"], [f"s{l}{kind}4"]),
                      helper.make_node("Reshape", [f"s{l}{kind}4", "hshape"], [f"s{l}{kind}"])]
        inits += [(f"W{l}", rng.standard_normal((1, 12, 2 if l == 0 else 3)).astype(np.float32)),
                  (f"R{l}", rng.standard_normal((1, 12, 3)).astype(np.float32))]
        nodes += [helper.make_node("LSTM", [inp, f"W{l}", f"R{l}", "", "", f"s{l}h", f"s{l}c"],
                                   [f"Y{l}", f"hn{l}", f"cn{l}"], hidden_size=3),
                  helper.make_node("Squeeze", [f"Y{l}", "one"], [f"Y{l}s"])]
        if keras:  # [T, D, B, H] -> [B, D, T, H] -> [B, T, H] (-> [T, B, H] for the next LSTM)
            nodes[-1:] = [helper.make_node("Transpose", [f"Y{l}"], [f"Y{l}t"], perm=[2, 1, 0, 3]),
                          helper.make_node("Squeeze", [f"Y{l}t", "one"], [f"Y{l}b"]),
                          helper.make_node("Transpose", [f"Y{l}b"], [f"Y{l}s"], perm=[1, 0, 2])]
        inp = f"Y{l}s"
    inits = list(dict(inits).items())
    nodes += [helper.make_node("Identity", ["Y1b"], ["y"]) if keras else helper.make_node("Squeeze", ["Y1s", "zero"], ["y"]),
              helper.make_node("Concat", ["hn0", "hn1"], ["hs"], axis=0),
              helper.make_node("Concat", ["cn0", "cn1"], ["cs"], axis=0),
              helper.make_node("Unsqueeze", ["hs", "three"], ["hs4"]),
              helper.make_node("Unsqueeze", ["cs", "three"], ["cs4"]),
              helper.make_node("Concat", ["hs4", "cs4"], ["s4"], axis=3),
              helper.make_node("Transpose", ["s4"], ["sn"], perm=[1, 0, 2, 3])]
    x, y = ([1, 1, 2], [1, 1, 3]) if keras else (["B", 2], [1, 3])
    return _model(nodes, [_vi("x", x), _vi("s", [1, 2, 3, 2])], [_vi("y", y), _vi("sn", [1, 2, 3, 2])], inits)


def test_dtln_packed_state_is_absorbed_and_quantizes(tmp_path: Path) -> None:
    """A state packed [1, layer, H, h/c] (not rows in node order) is absorbed too: the LSTMs keep
    it (blocks named s.h / s.c), the graph matches onnxruntime stepped with the state fed back,
    and int16 quantizes (an explicit c value was refused: Q11.20 cell state)."""
    from rnnedge.quant.graph import quantize_graph

    m = _dtln_packed_model()
    path = tmp_path / "dtln_packed.onnx"
    onnx.save(m, str(path))
    g = to_graph(path, state={"s": "sn"})
    assert not g.state_values and not g.explicit_state
    assert [(s.name, s.kind) for s in g.state] == [("s.h", "h"), ("s.c", "c"), ("s.h", "h"), ("s.c", "c")]
    assert any("packed [1, 2, 3, 2]" in n for n in g.folded)
    x = np.random.default_rng(1).standard_normal((9, 1, 2)).astype(np.float32)
    sess, st, want = session(path), np.zeros((1, 2, 3, 2), np.float32), []
    for t in range(x.shape[0]):
        yt, st = sess.run(None, {"x": x[t], "s": st})
        want.append(yt)
    y, _ = run_graph(g, x)
    assert rel_err(y.reshape(-1), np.stack(want).reshape(-1)) < RTOL
    # the C library runs it, each format as its oracle (integers bit for bit), streamed == run
    import rnnedge
    from rnnedge import fixedpoint as fx
    from rnnedge.blob.write import save_blob

    for quant in ("f32", "int16", "int8"):
        q = g if quant == "f32" else quantize_graph(g, quant, x)
        save_blob(q, tmp_path / f"{quant}.rne")
        model = rnnedge.load(tmp_path / f"{quant}.rne")
        yc = model.run(x)
        stream = model.stream()
        np.testing.assert_array_equal(np.stack([stream.step(x[t]) for t in range(x.shape[0])]), yc)
        assert {k: v.shape for k, v in stream.state.items()} == {"s.h": (2, 1, 3), "s.c": (2, 1, 3)}
        if quant == "f32":
            assert rel_err(yc.reshape(-1), y.reshape(-1)) < RTOL
        else:
            want_q = fx.run_qgraph(q, fx.quantize(x, q.values[q.input].scale))[0]
            np.testing.assert_array_equal(yc.reshape(-1), fx.dequantize(want_q, q.out_scale).reshape(-1))


def test_keras_step_of_batch_and_time_one_streams_as_a_sequence_model(tmp_path: Path) -> None:
    """DTLN's input [1, 1, F] (Keras batch, time) with its state absorbed: read as [B, T, F]
    (the Squeeze of the LSTM output [B, 1, T, H] keeps the batch and time of 1 apart; they were
    merged into one B*T axis and the layout fell back to [B, F, F], which the blob cannot
    describe), so the C library runs it over a whole sequence of steps as onnxruntime steps it."""
    import rnnedge
    from rnnedge.blob.write import save_blob

    path = tmp_path / "dtln_keras.onnx"
    onnx.save(_dtln_packed_model(keras=True), str(path))
    g = to_graph(path, state={"s": "sn"})
    assert g.input_spec.axes == "BTF" and g.output_spec.axes == "BTF" and not g.state_values
    x = np.random.default_rng(2).standard_normal((1, 9, 2)).astype(np.float32)
    sess, st, want = session(path), np.zeros((1, 2, 3, 2), np.float32), []
    for t in range(x.shape[1]):
        yt, st = sess.run(None, {"x": x[:, t : t + 1], "s": st})
        want.append(yt)
    save_blob(g, tmp_path / "m.rne")
    model = rnnedge.load(tmp_path / "m.rne")
    y = model.run(x)
    assert rel_err(y.reshape(-1), np.concatenate(want, axis=1).reshape(-1)) < RTOL


def test_keras_unrolled_cell_of_one_step_keeps_batch_and_step_axes_apart() -> None:
    """tf2onnx's unrolled Keras RNN of one step (DTLN stage 2): x [1, 1, 4] -> Transpose [T, B, F]
    -> Split / Squeeze axis 0 -> cell -> Unsqueeze axis 0 -> Concat axis 0 -> Transpose back. An
    Unsqueeze adds a per-step axis where it says (the batch of static size 1 was taken for the
    new axis, and the Concat refused as one over the batch axis)."""
    rng = np.random.default_rng(4)
    W, R = rng.standard_normal((4, 3)).astype(np.float32), rng.standard_normal((3, 3)).astype(np.float32)
    nodes = [helper.make_node("Transpose", ["x"], ["xt"], perm=[1, 0, 2]),
             helper.make_node("Split", ["xt"], ["xs"], axis=0),
             helper.make_node("Squeeze", ["xs", "zero"], ["x2"]),
             helper.make_node("MatMul", ["x2", "W"], ["a"]), helper.make_node("MatMul", ["s", "R"], ["b"]),
             helper.make_node("Add", ["a", "b"], ["z"]), helper.make_node("Tanh", ["z"], ["h"]),
             helper.make_node("Unsqueeze", ["h", "zero"], ["h3"]),
             helper.make_node("Concat", ["h3"], ["hc"], axis=0),
             helper.make_node("Transpose", ["hc"], ["y"], perm=[1, 0, 2]),
             helper.make_node("Identity", ["h"], ["s_out"])]
    m = _model(nodes, [_vi("x", [1, 1, 4]), _vi("s", [1, 3])], [_vi("y", [1, 1, 3]), _vi("s_out", [1, 3])],
               [("W", W), ("R", R), ("zero", np.array([0], np.int64))])
    g = to_graph(m, state={"s": "s_out"})
    x = rng.standard_normal((5, 1, 4)).astype(np.float32)
    sess = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    st, want = np.zeros((1, 3), np.float32), []
    for t in range(5):
        yt, st = sess.run(None, {"x": x[t][None], "s": st})
        want.append(yt)
    rows = x.reshape((5, 1) + g.values[g.input].shape)
    y, _ = run_graph(g, rows)
    assert rel_err(y.reshape(-1), np.stack(want).reshape(-1)) < RTOL


def _reversed_slices_model(per_step: list[int]):
    """y = Concat(x[..., ::-1], x[..., 5:1:-2]) along axis 2 of x [T, B, *per_step] (a reflect pad
    written out, as Silero v4's adaptive normalisation does)."""
    def ints(name, v):
        return (name, np.array(v, np.int64))

    nodes = [helper.make_node("Slice", ["x", "s0", "e0", "a", "m1"], ["all"]),
             helper.make_node("Slice", ["x", "s1", "e1", "a", "m2"], ["two"]),
             helper.make_node("Concat", ["all", "two"], ["y"], axis=2)]
    inits = [ints("s0", [-1]), ints("e0", [-(2**63)]), ints("s1", [5]), ints("e1", [1]), ints("a", [2]),
             ints("m1", [-1]), ints("m2", [-2])]
    out = [per_step[0] + 2] + per_step[1:]
    return _model(nodes, [_vi("x", ["T", "B"] + per_step)], [_vi("y", ["T", "B"] + out)], inits)


def test_backwards_slices_along_a_feature_axis() -> None:
    """x[..., ::-1] of 10 elements (a Slice and a 0/1 Dense) and x[..., 5:1:-2] (one-element
    Slices and a Concat) against onnxruntime; 10 elements backwards along an axis that is not the
    last is refused by name."""
    m = _reversed_slices_model([10])
    g = to_graph(m, inputs={"x": "T,B,F"})
    assert sum(isinstance(n.op, Dense) for n in g.nodes) == 1
    x = np.random.default_rng(8).standard_normal((4, 3, 10)).astype(np.float32)
    want = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    got, _ = run_graph(g, x)
    np.testing.assert_array_equal(got.reshape(want.shape), want)
    with pytest.raises(UnsupportedOpError, match=r"Slice with step -1 of 10 elements along a feature axis that is "
                                                 r"not the last"):
        to_graph(_reversed_slices_model([10, 2]), inputs={"x": "T,B,F,F"})
