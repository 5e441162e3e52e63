"""The C graph executor (csrc/model.c, blob format version 2) on hand-built graphs, against the
float reference rnnedge.reference.run_graph: a residual Add, a step function with an explicit
state pair, a recurrent node fed h_init / c_init from state values with Y_h / Y_c as their
updates, LAST values, integer ids into a GATHER; chunked runs equal one-chunk runs and stepping
equals running, bit for bit."""

from __future__ import annotations

import numpy as np
import pytest

import rnnedge
import rnnedge.model
from blob_edit import edit_metadata
from rnnedge.blob.read import read_blob
from rnnedge.blob.write import write_blob
from rnnedge.ir.graph import Binary, Concat, Gather, Graph, Node, Value, check_graph, plan_arena
from rnnedge.ir.layers import (Act, Activation, Dense, Network, Recurrent, Slice, TakeLast,
                               TensorSpec)
from rnnedge.reference import run_graph

F32 = np.float32
TOL = dict(rtol=2e-5, atol=2e-6)  # C and numpy float kernels round differently
rng = np.random.default_rng(11)


def _graph(values: list[Value], nodes: list[Node], out_axes: str = "TBF") -> Graph:
    kinds = [v.kind for v in values]
    g = Graph(values, nodes, kinds.index("input"), kinds.index("output"),
              TensorSpec("x", "TBF", [None, None, values[kinds.index("input")].features]),
              TensorSpec("y", out_axes, [None] * len(out_axes)))  # fmt: skip
    plan_arena(g)
    check_graph(g)
    return g


def _model(g: Graph) -> rnnedge.Model:
    return rnnedge.Model.from_bytes(write_blob(g))


def _w(*shape: int, scale: float = 0.5) -> np.ndarray:
    return (rng.standard_normal(shape) * scale).astype(F32)


def _step_all(stream, x: np.ndarray) -> np.ndarray:
    return np.stack([stream.step(x[t]).copy() for t in range(x.shape[0])])


def test_residual_add() -> None:
    W = _w(4, 4)
    vals = [Value("x", (4,), kind="input"), Value("d", (4,)), Value("t", (4,)),
            Value("y", (4,), kind="output")]
    nodes = [Node(Dense(W, _w(4)), [0], [1]), Node(Activation(Act.make("Tanh"), 4), [1], [2]),
             Node(Binary("Add"), [0, 2], [3])]
    g = _graph(vals, nodes)
    model = _model(g)
    x = _w(9, 3, 4, scale=1.0)
    want, _ = run_graph(g, x)
    y = model.run(x)
    np.testing.assert_allclose(y, want, **TOL)
    np.testing.assert_array_equal(_step_all(model.stream(3), x), y)  # step == run, bit for bit
    # x is read by the first node and the Add: the arena plan keeps d/t apart from nothing live
    assert read_blob(write_blob(g)).header.arena_row > 0


def _step_function(init: np.ndarray | None = None) -> Graph:
    """h' = tanh(W x + U h): a step function whose state pair is the STATE value h (updated by
    the output hn)."""
    W, U = _w(5, 3), _w(5, 5, scale=0.3)
    vals = [Value("x", (3,), kind="input"), Value("h", (5,), kind="state", update=5, init=init),
            Value("wx", (5,)), Value("uh", (5,)), Value("s", (5,)), Value("hn", (5,), kind="output")]
    nodes = [Node(Dense(W), [0], [2]), Node(Dense(U), [1], [3]), Node(Binary("Add"), [2, 3], [4]),
             Node(Activation(Act.make("Tanh"), 5), [4], [5])]
    return _graph(vals, nodes)


def test_step_function_with_an_explicit_state_pair() -> None:
    init = _w(5)
    g = _step_function(init)
    assert g.explicit_state
    model = _model(g)
    x = _w(8, 2, 3, scale=1.0)
    want, st = run_graph(g, x)
    y = model.run(x)
    np.testing.assert_allclose(y, want, **TOL)
    s = model.stream(2)
    np.testing.assert_array_equal(s.state["h"], np.broadcast_to(init, (2, 5)))  # the init tensor
    np.testing.assert_array_equal(_step_all(s, x), y)  # step == run, bit for bit
    np.testing.assert_allclose(s.state["h"], st["values"][0], **TOL)  # [B, 5], the graph's name
    # the state is settable; a run from it continues the sequence
    s2 = model.stream(2)
    s2.state = {"h": s.state["h"]}
    x2 = _w(3, 2, 3, scale=1.0)
    want2, _ = run_graph(g, x2, st)
    np.testing.assert_allclose(s2.run(x2), want2, **TOL)
    s2.reset()
    np.testing.assert_array_equal(s2.state["h"], np.broadcast_to(init, (2, 5)))
    with pytest.raises(rnnedge.InputError, match=r"state\['h'\]: expected float32 values of shape \[2, 5\]"):
        s2.state = {"h": np.zeros((5,), F32)}


def test_recurrent_node_fed_h_init_and_c_init_from_state_values() -> None:
    """An LSTM whose initial state comes from STATE values each step, its Y_h / Y_c their
    updates: the same numbers as the LSTM over the whole sequence."""
    H, I = 4, 3
    L = Recurrent("lstm", "forward", _w(1, 4 * H, I), _w(1, 4 * H, H), _w(1, 8 * H))
    vals = [Value("x", (I,), kind="input"), Value("h", (1, H), kind="state", update=4),
            Value("c", (1, H), kind="state", update=5), Value("y", (H,), kind="output"),
            Value("hn", (1, H), last=True), Value("cn", (1, H), last=True)]
    g = _graph(vals, [Node(L, [0, 1, 2], [3, 4, 5])])
    model = _model(g)
    x = _w(7, 2, I, scale=1.0)
    want, st = run_graph(g, x)
    y = model.run(x)
    np.testing.assert_allclose(y, want, **TOL)
    s = model.stream(2)
    np.testing.assert_array_equal(_step_all(s, x), y)
    np.testing.assert_allclose(s.state["h"], st["values"][0], **TOL)
    np.testing.assert_allclose(s.state["c"], st["values"][1], **TOL)
    # the same cell as a plain pipeline layer gives the same sequence
    plain = rnnedge.Model.from_bytes(write_blob(Network(
        [L], TensorSpec("x", "TBF", [None, None, I]), TensorSpec("y", "TBF", [None, None, H]))))
    np.testing.assert_allclose(plain.run(x), y, **TOL)


def _sliced_state_lstm(H: int = 4, I: int = 3, explicit: bool = True) -> Graph:
    """The openvino Silero form of a step function: one STATE value [2, H] sliced into the
    LSTM's h_init / c_init, its update the Concat of Y_h and Y_c, and Y_h also read on (a Dense
    to the output). A step function's converter writes Y_h / Y_c non-LAST (every value is one
    step). `explicit=False`: the same LSTM without the STATE value, its Y_h to the Dense."""
    L = Recurrent("lstm", "forward", _w(1, 4 * H, I), _w(1, 4 * H, H), _w(1, 8 * H))
    W = _w(2, H)
    if not explicit:
        vals = [Value("x", (I,), kind="input"), Value("seq", (1, 1, H)), Value("hn", (1, H)),
                Value("y", (1, 2), kind="output")]
        return _graph(vals, [Node(L, [0, None, None], [1, 2, None]), Node(Dense(W), [2], [3])])
    vals = [Value("x", (I,), kind="input"), Value("state", (2, H), kind="state", update=7),
            Value("h0", (1, H)), Value("c0", (1, H)), Value("seq", (1, 1, H)),
            Value("hn", (1, H)), Value("cn", (1, H)), Value("staten", (2, H)),
            Value("y", (1, 2), kind="output")]
    nodes = [Node(Slice(2 * H, 0, 1, axis=0), [1], [2]), Node(Slice(2 * H, 1, 2, axis=0), [1], [3]),
             Node(L, [0, 2, 3], [4, 5, 6]), Node(Concat(0), [5, 6], [7]), Node(Dense(W), [5], [8])]
    return _graph(vals, nodes)


def test_a_step_functions_non_last_y_h_and_y_c_in_a_model_with_state_values() -> None:
    """In a model with STATE values (one step per chunk) a recurrent node's Y_h / Y_c may be
    non-LAST: they hold one row per stream either way. run and step agree with the reference."""
    g = _sliced_state_lstm()
    assert g.explicit_state and not any(v.last for v in g.values)
    model = _model(g)
    x = _w(7, 2, 3, scale=1.0)
    want, st = run_graph(g, x)
    y = model.run(x)
    np.testing.assert_allclose(y.reshape(want.shape), want, **TOL)
    s = model.stream(2)
    np.testing.assert_array_equal(_step_all(s, x), y)
    np.testing.assert_allclose(s.state["state"], st["values"][0], **TOL)


def test_a_non_last_y_h_in_a_model_without_state_values_is_refused() -> None:
    """Without STATE values a chunk has many steps and a non-LAST Y_h would have a row per step
    of which the node writes one: the loader refuses its flag."""
    g = _sliced_state_lstm(explicit=False)
    assert not g.explicit_state
    with pytest.raises(rnnedge.BlobError, match=r"node 0 \(LSTM\): value 2 \(temp f32 \[1, 4\]\) "
                       r"has the wrong last flag for this node's output"):
        _model(g)


@pytest.mark.parametrize("quant", ["int16", "int8"])
def test_an_integer_lstm_reads_and_writes_its_cell_state_as_a_value(quant) -> None:
    """The sliced-state LSTM in integers: c_init (the state's int16) to Q11.20 and Q11.20 to Y_c
    by the node's q slots 17..20 (docs/quantization.md section 14). The C library's outputs are
    run_qgraph's bit for bit, run and stepped; the loader refuses a c_init without its shift."""
    import struct
    import warnings
    import zlib

    from rnnedge.blob import spec
    from rnnedge.fixedpoint import run_qgraph
    from rnnedge.quant.graph import quantize_graph

    g = _sliced_state_lstm(H=6, I=3)
    x = _w(40, 2, 3, scale=2.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        qg = quantize_graph(g, quant, x)
    (lstm,) = [n for n in qg.nodes if type(n.op).__name__ == "QRecurrent"]
    assert lstm.op.c_in is not None and lstm.op.c_out is not None
    blob = write_blob(qg)
    model = rnnedge.Model.from_bytes(blob)
    v_in, v_out = qg.values[qg.input], qg.values[qg.output]
    xq = np.clip(np.floor(x.astype(np.float64) / v_in.scale + 0.5), -32768, 32767).astype(np.int16)
    want, st = run_qgraph(qg, xq.reshape(xq.shape[:2] + v_in.shape))
    want = (want.astype(np.float64) * v_out.scale).astype(F32)
    y = model.run(x)
    np.testing.assert_array_equal(y.reshape(want.shape), want)
    s = model.stream(2)
    np.testing.assert_array_equal(_step_all(s, x).reshape(want.shape), want)
    # the state after the last step: h and the requantized c, as the oracle's
    np.testing.assert_array_equal(np.asarray(s.state["state"]), st["values"][0])
    assert np.abs(st["values"][0][:, 1]).max() > 0  # c's half is there
    # the loader proves the slots: a c_init without its shift (slot 18) is refused
    b = read_blob(blob)
    k = qg.nodes.index(lstm)
    buf = bytearray(blob)
    struct.pack_into("<i", buf, b.tensors[b.layers[k].tensor[spec.T_Q]].offset + 4 * 18, 0)
    struct.pack_into("<I", buf, len(buf) - 4, zlib.crc32(bytes(buf[:-4])))
    with pytest.raises(rnnedge.BlobError, match=f"node {k} \\(LSTM\\).*the c_init shift"):
        rnnedge.Model.from_bytes(bytes(buf))


def test_last_values_from_y_h() -> None:
    """A GRU's Y_h (LAST) through a Dense to the output: many-to-one, rows = batch."""
    H, I = 5, 3
    L = Recurrent("gru", "forward", _w(1, 3 * H, I), _w(1, 3 * H, H), _w(1, 6 * H))
    W = _w(2, H)
    vals = [Value("x", (I,), kind="input"), Value("seq", (H,)), Value("hn", (1, H), last=True),
            Value("y", (1, 2), kind="output", last=True)]
    g = _graph(vals, [Node(L, [0, None, None], [1, 2, None]), Node(Dense(W), [2], [3])])
    assert g.many_to_one
    model = _model(g)
    x = _w(6, 3, I, scale=1.0)
    want, _ = run_graph(g, x)
    y = model.run(x)
    np.testing.assert_allclose(y.reshape(want.shape), want, **TOL)
    s = model.stream(3)
    last = [s.step(x[t]).copy() for t in range(6)][-1]
    np.testing.assert_array_equal(last, y.reshape(last.shape))


def _long_gru() -> Network:
    net_layers = [
        Recurrent("gru", "forward", _w(1, 3 * 48, 6), _w(1, 3 * 48, 48, scale=0.2), _w(1, 6 * 48)),
        Recurrent("gru", "forward", _w(1, 3 * 48, 48), _w(1, 3 * 48, 48, scale=0.2), _w(1, 6 * 48)),
    ]
    return Network(net_layers, TensorSpec("x", "TBF", [None, None, 6]),
                   TensorSpec("y", "TBF", [None, None, 48]))  # fmt: skip


@pytest.mark.parametrize("chunk", [1, 7, 256])
def test_a_chunked_run_equals_a_one_chunk_run_bit_for_bit(monkeypatch, chunk) -> None:
    net = _long_gru()
    net_last = Network(net.layers + [TakeLast(48, 48)], net.input, TensorSpec("y", "BF", [None, 48]))
    x = _w(300, 2, 6, scale=1.0)
    for n in (net, net_last):
        model = rnnedge.Model.from_bytes(write_blob(n))
        monkeypatch.setattr(rnnedge.model, "_RUN_CHUNK", 10**9)
        whole = model.run(x)  # scratch for all 300 steps: one chunk
        monkeypatch.setattr(rnnedge.model, "_RUN_CHUNK", chunk)
        assert model.scratch_bytes(2, chunk) < model.scratch_bytes(2, 300)
        np.testing.assert_array_equal(model.run(x), whole)
        s = model.stream(2)
        np.testing.assert_array_equal(np.concatenate([s.run(x[:150]), s.run(x[150:])])[-len(whole):]
                                      if n is net_last else
                                      np.concatenate([s.run(x[:150]), s.run(x[150:])]), whole)


def test_ids_into_a_gather() -> None:
    table = _w(10, 3)
    vals = [Value("ids", (1,), dtype="s32", kind="input"), Value("e", (1, 3)),
            Value("y", (1, 3), kind="output")]
    g = _graph(vals, [Node(Gather(table), [0], [1]), Node(Activation(Act.make("Relu"), 3), [1], [2])])
    model = _model(g)
    ids = rng.integers(0, 10, (6, 2, 1))
    want, _ = run_graph(g, ids)
    y = model.run(ids)
    np.testing.assert_array_equal(y.reshape(want.shape), want)
    s = model.stream(2)
    np.testing.assert_array_equal(_step_all(s, ids).reshape(want.shape), want)
    with pytest.raises(rnnedge.InputError, match=r"input 'ids' takes integer ids \(int32\), got dtype float32"):
        model.run(ids.astype(F32))
    bad = ids.copy()
    bad[4, 1, 0] = 10
    with pytest.raises(rnnedge.InputError, match=r"input 'ids': id 10 at \[t, b, i\] = \[4, 1, 0\] is "
                                                 r"outside \[0, 10\), the vocabulary of node 0"):
        model.run(bad)
    ids32, bad32 = ids.astype(np.int32), bad.astype(np.int32)  # int32: Model.run's fast path
    for _ in range(2):  # the checked run that records the plan, then the planned one
        np.testing.assert_array_equal(model.run(ids32), y)
    assert ids32.shape in model._run_plans
    with pytest.raises(rnnedge.InputError, match=r"input 'ids': id 10 at \[t, b, i\] = \[4, 1, 0\] is "
                                                 r"outside \[0, 10\), the vocabulary of node 0"):
        model.run(bad32)
    np.testing.assert_array_equal(model.run(ids32), y)
    before = s.state
    with pytest.raises(rnnedge.InputError, match=r"input 'ids': id -3 .* outside \[0, 10\)"):
        s.step(np.array([[0], [-3]]))
    assert s.state == before


def test_state_value_in_its_graph_inputs_layout() -> None:
    """Graph.value_specs records the ONNX layout of a state input ([1, B, 5] here, as PyTorch's
    h0): the blob keeps it in its metadata and Stream.state shows and takes the state so."""
    g = _step_function()
    g.value_specs["h"] = TensorSpec("h", "FBF", [1, None, 5])
    model = _model(g)
    assert model.blob.meta["value_specs"] == {"h": {"axes": "FBF", "shape": [1, None, 5]}}
    x = _w(4, 2, 3, scale=1.0)
    s = model.stream(2)
    _step_all(s, x)
    _, st = run_graph(g, x)
    assert s.state["h"].shape == (1, 2, 5)
    np.testing.assert_allclose(s.state["h"][0], st["values"][0], **TOL)
    h = _w(1, 2, 5)
    s.state = {"h": h}
    np.testing.assert_array_equal(s.state["h"], h)
    with pytest.raises(rnnedge.InputError, match=r"state\['h'\]: expected float32 values of shape \[1, 2, 5\]"):
        s.state = {"h": np.zeros((2, 5), F32)}
    # a layout whose F sizes do not give the value's 5 elements is refused by name
    bad = edit_metadata(write_blob(g), value_specs={"h": {"axes": "FBF", "shape": [2, None, 5]}})
    with pytest.raises(rnnedge.BlobError, match=r"meta\.value_specs\.h\.shape: expected F sizes "
                                                r"multiplying to the value's 5 elements per step"):
        rnnedge.Model.from_bytes(bad)


FIXTURES = ["tokens_lstm2", "glu_gru", "residual_lstm", "step_lstm", "step_lstm_packed",
            "hand_cell"]  # hand_cell: BINARY with a constant operand, a STATE pair h, c


@pytest.mark.parametrize("name", FIXTURES)
def test_converted_graph_fixtures_run_in_c_as_in_the_reference(name) -> None:
    """tests/data/fixtures/graph (rnnedge.converter.dag.to_graph): the blob the writer makes
    loads, and the C library's outputs are the float reference's (stepped for a step function,
    whose input has no time axis)."""
    import warnings
    from pathlib import Path

    from rnnedge.converter.dag import to_graph

    d = Path(__file__).parent / "data" / "fixtures" / "graph"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        g = to_graph(d / f"{name}.onnx")
    x = np.load(d / f"{name}.input.npy")
    model = _model(g)
    if "T" in g.input_spec.axes:
        xi = model._in.to_internal(x, model._x_dtype)
        want, _ = run_graph(g, xi.reshape(xi.shape[:2] + g.values[g.input].shape))
        y = model._out.to_internal(model.run(x))
    else:  # a step function: x is [T, B, F], one step per call
        want, _ = run_graph(g, x.astype(F32))
        s = model.stream(x.shape[1])
        y = np.stack([s.step(x[t].astype(F32)).copy() for t in range(x.shape[0])])
    np.testing.assert_allclose(y.reshape(want.shape), want, **TOL)


@pytest.mark.parametrize("quant", ["int16", "int8"])
@pytest.mark.parametrize("name", ["tokens_lstm2", "glu_gru", "residual_lstm", "step_lstm",
                                  "hand_cell"])
def test_quantized_graph_fixtures_run_in_c_as_run_qgraph_bit_for_bit(name, quant) -> None:
    """The fixtures quantized by rnnedge.quant.graph.quantize_graph: the C library's integers are
    rnnedge.fixedpoint.run_qgraph's, bit for bit (through Model.run / Stream.step: the input
    quantized and the output dequantized as the binding does). tokens_lstm2's integer graph of
    ids did not store before (metadata qio input_scale 0 for an s32 input)."""
    import warnings
    from pathlib import Path

    from rnnedge.converter.dag import to_graph
    from rnnedge.fixedpoint import run_qgraph
    from rnnedge.quant.graph import quantize_graph

    d = Path(__file__).parent / "data" / "fixtures" / "graph"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        g = to_graph(d / f"{name}.onnx")
        x = np.load(d / f"{name}.input.npy")
        qg = quantize_graph(g, quant, x)
    model = _model(qg)
    v_in, v_out = qg.values[qg.input], qg.values[qg.output]
    stepped = "T" not in g.input_spec.axes
    xi = x if stepped else model._in.to_internal(x, np.float64)
    xq = xi.astype(np.int64) if v_in.dtype == "s32" else np.clip(
        np.floor(xi.astype(np.float64) / v_in.scale + 0.5), -32768, 32767).astype(np.int16)
    want, _ = run_qgraph(qg, xq.reshape(xq.shape[:2] + v_in.shape))
    want = (want.astype(np.float64) * v_out.scale).astype(F32)
    if stepped:
        s = model.stream(x.shape[1])
        y = np.stack([s.step(x[t]).copy() for t in range(x.shape[0])])
    else:
        y = model._out.to_internal(model.run(x))
        xc = np.ascontiguousarray(x, dtype=model._x_dtype)  # run again: Model.run's fast path
        for _ in range(2):  # where the layout allows (the first of these records its plan)
            np.testing.assert_array_equal(model._out.to_internal(model.run(xc)), y)
    np.testing.assert_array_equal(y.reshape(want.shape), want)


@pytest.mark.parametrize("kind", ["Abs", "Neg", "Sqrt", "Reciprocal", "Exp", "Log", "Erf", "Pow"])
@pytest.mark.parametrize("quant", ["int16", "int8"])
def test_graph_activations_in_integers_run_in_c_as_run_qgraph(kind, quant) -> None:
    """The elementwise kinds of graphs (ABS .. POW) in an integer model: the C library's integers
    are rnnedge.fixedpoint.run_qgraph's, bit for bit (Abs / Neg through m1, the others through
    the 257-entry table). The loader refused them all before ("no integer kernel yet")."""
    import warnings

    from rnnedge.fixedpoint import run_qgraph
    from rnnedge.quant.graph import quantize_graph

    # Sigmoid keeps Sqrt / Log / Reciprocal on their domain; Dense and a residual Add around it
    r = np.random.default_rng(7)
    vals = [Value("x", (6,), kind="input"), Value("d", (6,)), Value("s", (6,)), Value("a", (6,)),
            Value("y", (6,), kind="output")]
    nodes = [Node(Dense((r.standard_normal((6, 6)) * 0.5).astype(F32)), [0], [1]),
             Node(Activation(Act.make("Sigmoid"), 6), [1], [2]),
             Node(Activation(Act.make(kind, 1.5 if kind == "Pow" else None), 6), [2], [3]),
             Node(Binary("Add"), [3, 0], [4])]
    g = _graph(vals, nodes)
    x = r.standard_normal((40, 2, 6)).astype(F32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        qg = quantize_graph(g, quant, x)
    model = _model(qg)
    v_in, v_out = qg.values[qg.input], qg.values[qg.output]
    xq = np.clip(np.floor(x.astype(np.float64) / v_in.scale + 0.5), -32768, 32767).astype(np.int16)
    want, _ = run_qgraph(qg, xq)
    want = (want.astype(np.float64) * v_out.scale).astype(F32)
    np.testing.assert_array_equal(model.run(x), want)
    np.testing.assert_array_equal(_step_all(model.stream(2), x), want)
    ref, _ = run_graph(g, x)  # and the integers are near the float graph
    err = np.abs(want - ref).max() / np.abs(ref).max()
    print(f"{kind} {quant}: max error {err:.2e} of the output's largest magnitude")
    assert err <= 0.05


@pytest.mark.parametrize("quant", ["f32", "int16"])
def test_an_inner_recurrence_before_a_recurrence_over_time_on_the_plain_step_path(quant) -> None:
    """An inner GRU (RNE_LF_INNER: over the 5 rows of each step, from zeros, no stream state)
    straight into a GRU over time: a plain chain, so rne_step takes rne__step_plain. The time GRU's
    h must sit where rne_state_offset says (the inner node has no block): Stream.state after steps
    is the last output, as after run, and a run in two calls resumes as one. Before b45a3ee the
    plain path advanced the state pointer by the inner node's h block: the time GRU kept h 32 bytes
    past the stream's state buffer (state_size 32), Stream.state read zeros."""
    import warnings

    from rnnedge.fixedpoint import run_qgraph
    from rnnedge.quant.graph import quantize_graph

    L, F, H, H2 = 5, 3, 2, 3
    vals = [Value("x", (L, F), kind="input"), Value("a", (L, 2 * H)), Value("y", (H2,), kind="output")]
    nodes = [Node(Recurrent("gru", "bidirectional", _w(2, 3 * H, F), _w(2, 3 * H, H), _w(2, 6 * H), inner=L),
                  [0], [1]),
             Node(Recurrent("gru", "forward", _w(1, 3 * H2, L * 2 * H), _w(1, 3 * H2, H2), _w(1, 6 * H2)), [1], [2])]
    g = Graph(vals, nodes, 0, 2, TensorSpec("x", "TBFF", [None, None, L, F]),
              TensorSpec("y", "TBF", [None, None, H2]))
    plan_arena(g)
    check_graph(g)
    x = _w(6, 2, L, F, scale=1.0)
    if quant == "f32":
        model = _model(g)
        y = model.run(x)
        np.testing.assert_allclose(y, run_graph(g, x)[0], **TOL)
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            qg = quantize_graph(g, quant, x)
        model = _model(qg)
        y = model.run(x)
        v_in, v_out = qg.values[qg.input], qg.values[qg.output]
        xq = np.clip(np.floor(x.astype(np.float64) / v_in.scale + 0.5), -32768, 32767).astype(np.int16)
        want, _ = run_qgraph(qg, xq)
        np.testing.assert_array_equal(y, (want.astype(np.float64) * v_out.scale).astype(F32))
    st = model.stream(2)
    assert st._cstream.step_plan[5] == 1  # the plain path (rne__plain), which this test is about
    np.testing.assert_array_equal(_step_all(st, x), y)
    stepped = st.state
    assert list(stepped) == ["h0"]
    ran = model.stream(2)
    ran.run(x[:2])
    ran.run(x[2:])
    np.testing.assert_array_equal(stepped["h0"], ran.state["h0"])
    if quant == "f32":  # the state is the last h (int16: the state is h on its own grid)
        np.testing.assert_array_equal(stepped["h0"][0], y[-1])
