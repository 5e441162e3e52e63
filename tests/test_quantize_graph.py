"""Integer graphs: rnnedge.quant.graph.quantize_graph (a scale for every value, an integer op for
every node, the per-node accuracy policy) and rnnedge.fixedpoint.run_qgraph (the bit-exact
executor), on hand-built float graphs and on the converter fixtures as pipelines."""

import json
import warnings
from pathlib import Path

import numpy as np
import pytest

from rnnedge import fixedpoint as fx
from rnnedge.errors import ConvertError, InputError, UnsupportedOpError
from rnnedge.ir.graph import (
    Binary, Concat, Copy, Gather, Graph, Node, QBinary, QConcat, QGather, QReduce, Reduce,
    Transpose, Value, check_graph, from_network, plan_arena,
)  # fmt: skip
from rnnedge.ir.layers import (
    Act, Activation, Dense, LayerNorm, Network, QActivation, Recurrent, Slice, TakeLast, TensorSpec,
    to_tbf,
)  # fmt: skip
from rnnedge.quant.calibrate import CalibrationWarning
from rnnedge.quant.graph import as_network, quantize_dataflow, quantize_graph, run_float
from rnnedge.quant.policy import quantize_network
from rnnedge.reference import run_graph

F32 = np.float32
FIXTURES = Path(__file__).parent / "data" / "fixtures"


def _graph(values: list[Value], nodes: list[Node], axes: str = "TBF") -> Graph:
    kinds = [v.kind for v in values]
    g = Graph(values, nodes, kinds.index("input"), kinds.index("output"),
              TensorSpec("x", axes, [None, None, values[kinds.index("input")].features]),
              TensorSpec("y", "TBF", [None, None, None]))  # fmt: skip
    plan_arena(g)
    check_graph(g)
    return g


def _w(rng: np.random.Generator, *shape: int, scale: float = 1.0) -> np.ndarray:
    return (rng.standard_normal(shape) * scale / np.sqrt(shape[-1])).astype(F32)


def _err(qg: Graph, g: Graph, x: np.ndarray) -> float:
    """max |int - float| over the float output's range, on x."""
    y_f, _ = run_graph(g, x)
    y_q = run_float(qg, x)
    return float(np.abs(y_q.astype(np.float64) - y_f).max() / (y_f.max() - y_f.min()))


def _quantize(g: Graph, quant: str, x: np.ndarray, **kw) -> Graph:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return quantize_graph(g, quant, x, **kw)


# -- hand-built graphs ----------------------------------------------------------------------------
def residual_glu(seed: int = 1) -> Graph:
    """y = Dense(x + a * sigmoid(b)), [a, b] = Dense(x): a residual Add and a GLU gate Mul."""
    rng = np.random.default_rng(seed)
    vals = [Value("x", (6,), kind="input"), Value("ab", (12,)), Value("a", (6,)), Value("b", (6,)),
            Value("sb", (6,)), Value("g", (6,)), Value("r", (6,)), Value("y", (3,), kind="output")]
    nodes = [Node(Dense(_w(rng, 12, 6), _w(rng, 12, 1)[:, 0]), [0], [1], "proj"),
             Node(Slice(12, 0, 6), [1], [2]), Node(Slice(12, 6, 12), [1], [3]),
             Node(Activation(Act.make("Sigmoid"), 6), [3], [4]),
             Node(Binary("Mul"), [2, 4], [5], "gate"), Node(Binary("Add"), [0, 5], [6], "residual"),
             Node(Dense(_w(rng, 3, 6)), [6], [7], "head")]  # fmt: skip
    return _graph(vals, nodes)


def concat_two_scales(seed: int = 2) -> Graph:
    """Two branches whose ranges differ 100-fold, joined by a Concat, then a Dense."""
    rng = np.random.default_rng(seed)
    vals = [Value("x", (4,), kind="input"), Value("small", (3,)), Value("big", (5,)),
            Value("c", (8,)), Value("y", (2,), kind="output")]
    nodes = [Node(Dense(_w(rng, 3, 4, scale=0.05)), [0], [1]),
             Node(Dense(_w(rng, 5, 4, scale=5.0)), [0], [2]),
             Node(Concat(-1), [1, 2], [3], "join"), Node(Dense(_w(rng, 2, 8)), [3], [4])]
    return _graph(vals, nodes)


def embedding_lstm(seed: int = 3) -> Graph:
    """Token ids -> Embedding (Gather) -> Copy to [E] -> LSTM -> Dense."""
    rng = np.random.default_rng(seed)
    E, H = 5, 6
    L = Recurrent("lstm", "forward", _w(rng, 1, 4 * H, E), _w(rng, 1, 4 * H, H))
    vals = [Value("ids", (1,), dtype="s32", kind="input"), Value("e", (1, E)), Value("ef", (E,)),
            Value("h", (H,)), Value("y", (2,), kind="output")]
    nodes = [Node(Gather(rng.standard_normal((20, E)).astype(F32)), [0], [1], "embed"),
             Node(Copy(), [1], [2]), Node(L, [2], [3], "lstm"), Node(Dense(_w(rng, 2, H)), [3], [4])]
    return _graph(vals, nodes)


def step_function(seed: int = 4, act: Act = Act.make("Tanh")) -> Graph:
    """A hand-written recurrence h' = act(W x + U h): a step function with a state pair."""
    rng = np.random.default_rng(seed)
    vals = [Value("x", (3,), kind="input"), Value("h", (5,), kind="state", update=5),
            Value("wx", (5,)), Value("uh", (5,)), Value("s", (5,)), Value("hn", (5,), kind="output")]
    nodes = [Node(Dense(_w(rng, 5, 3)), [0], [2]), Node(Dense(_w(rng, 5, 5, scale=0.5)), [1], [3]),
             Node(Binary("Add"), [2, 3], [4]), Node(Activation(act, 5), [4], [5], "act")]
    return _graph(vals, nodes)


def reduce_mean_center(seed: int = 5) -> Graph:
    """x [2, 4] -> Transpose -> v - ReduceMean(v) over the last axis -> Copy [8] -> Dense."""
    rng = np.random.default_rng(seed)
    vals = [Value("x", (2, 4), kind="input"), Value("t", (4, 2)), Value("m", (4, 1)),
            Value("d", (4, 2)), Value("f", (8,)), Value("y", (3,), kind="output")]
    nodes = [Node(Transpose((1, 0)), [0], [1]), Node(Reduce("Mean", (1,)), [1], [2], "mean"),
             Node(Binary("Sub"), [1, 2], [3]), Node(Copy(), [3], [4]),
             Node(Dense(_w(rng, 3, 8)), [4], [5])]
    return _graph(vals, nodes)


def written_layer_norm(seed: int = 6, std_read: bool = False, scaled: bool = True) -> Graph:
    """Dense -> a layer norm written out in ops (DTLN's instant layer norm: mean, x - mean,
    Square as Mul, mean, + eps, Sqrt, Div, * gamma, + beta; without `scaled` it ends at the Div)
    -> Dense. With `std_read`, the std is read outside the norm too (y * std before the last
    Dense): nothing to fuse."""
    rng = np.random.default_rng(seed)
    F = 8
    vals = [Value("x", (F,), kind="input"), Value("a", (F,)), Value("m", (1,)), Value("d", (F,)),
            Value("sq", (F,)), Value("var", (1,)), Value("e", (1,)), Value("sd", (1,)),
            Value("n", (F,))]
    nodes = [Node(Dense(_w(rng, F, F)), [0], [1], "pre"), Node(Reduce("Mean", (0,)), [1], [2], "mean"),
             Node(Binary("Sub"), [1, 2], [3], "sub"), Node(Binary("Mul"), [3, 3], [4], "square"),
             Node(Reduce("Mean", (0,)), [4], [5], "var"),
             Node(Activation(Act.make("Affine", 1.0, 1e-6), 1), [5], [6], "eps"),
             Node(Activation(Act.make("Sqrt"), 1), [6], [7], "sqrt"),
             Node(Binary("Div"), [3, 7], [8], "div")]
    if scaled:
        vals += [Value("gn", (F,)), Value("ln", (F,))]
        nodes += [Node(Binary("Mul", (1 + rng.random(F)).astype(F32)), [8], [9], "gamma"),
                  Node(Binary("Add", rng.standard_normal(F).astype(F32)), [9], [10], "beta")]
    if std_read:
        vals.append(Value("ls", (F,)))
        nodes.append(Node(Binary("Mul"), [len(vals) - 2, 7], [len(vals) - 1], "times_std"))
    vals.append(Value("y", (3,), kind="output"))
    nodes.append(Node(Dense(_w(rng, 3, F)), [len(vals) - 2], [len(vals) - 1], "post"))
    return _graph(vals, nodes)


def _x(g: Graph, T: int = 40, B: int = 6, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    v = g.values[g.input]
    if v.dtype == "s32":
        return rng.integers(0, 20, (T, B) + v.shape)
    return rng.standard_normal((T, B) + v.shape).astype(F32)


GRAPHS = {"residual_glu": residual_glu, "concat_two_scales": concat_two_scales,
          "embedding_lstm": embedding_lstm, "step_function": step_function,
          "reduce_mean_center": reduce_mean_center}  # fmt: skip


@pytest.mark.parametrize("name", GRAPHS)
def test_hand_built_graphs_meet_the_bar(name):
    """int16 within 1e-3 of the float output's range, int8 within 1e-2, on the calibration data
    and on held-out data of the same distribution; every value s16 (ids s32) with a scale."""
    g = GRAPHS[name]()
    cal, held = _x(g, seed=0), _x(g, seed=1)
    for quant, bar in (("int16", 1e-3), ("int8", 1e-2)):
        qg = _quantize(g, quant, cal)
        assert qg.quant == quant and qg.calibrated
        assert qg.source is not None and len(qg.source.nodes) == len(qg.nodes)  # node for node
        np.testing.assert_array_equal(run_graph(qg.source, held)[0], run_graph(g, held)[0])
        assert all((v.dtype == "s16" and v.scale > 0) or v.dtype == "s32" for v in qg.values)
        assert qg.accuracy["rel_max_err"] <= bar, (quant, qg.accuracy)
        assert _err(qg, g, held) <= bar, quant
        assert len(qg.report) == len(qg.nodes)


@pytest.mark.parametrize("name", GRAPHS)
def test_hostile_inputs_never_overflow(name):
    """int16 inputs at the rails and random: every intermediate stays inside its C type (the
    oracles raise FixedPointOverflow otherwise), so the multipliers' bounds hold for any input."""
    g = GRAPHS[name]()
    rng = np.random.default_rng(21)
    for quant in ("int16", "int8"):
        qg = _quantize(g, quant, _x(g))
        v = qg.values[qg.input]
        if v.dtype == "s32":
            xq = rng.integers(0, 20, (30, 3) + v.shape)
        else:
            xq = rng.choice(np.array([-32768, 32767, 0, 1, -1], np.int16), (30, 3) + v.shape)
            xq[::2] = rng.integers(-32768, 32768, xq[::2].shape)
        y, _ = fx.run_qgraph(qg, xq)
        assert y.dtype == np.int16


def test_run_qgraph_is_deterministic_and_streams():
    """Two runs give the same integers; a run in two chunks with the state carried over equals
    the whole run (an LSTM node and an explicit-state graph)."""
    for g in (embedding_lstm(), step_function()):
        qg = _quantize(g, "int16", _x(g))
        xq = _x(g, T=9, B=3, seed=7)
        if g.values[g.input].dtype != "s32":
            xq = fx.quantize(xq, qg.in_scale)
        y1, s1 = fx.run_qgraph(qg, xq)
        y2, s2 = fx.run_qgraph(qg, xq)
        np.testing.assert_array_equal(y1, y2)
        ya, sa = fx.run_qgraph(qg, xq[:4])
        yb, sb = fx.run_qgraph(qg, xq[4:], sa)
        np.testing.assert_array_equal(np.concatenate([ya, yb]), y1)
        for a, b in zip(sb["values"] + [a for s in sb["nodes"] for a in s],
                        s1["values"] + [a for s in s1["nodes"] for a in s]):  # fmt: skip
            np.testing.assert_array_equal(a, b)


def test_run_qgraph_reuse_recomputes_only_what_a_changed_node_reaches():
    """The int8 search's shortcut: with one node's op swapped (its int8 weights in the int16
    graph), run_qgraph with `reuse` (the int16 run's values, the node changed) gives every value,
    the output and the final state of a run without it, taking the nodes it does not reach (no
    state of their own, the same inputs) from the earlier run."""
    from dataclasses import replace

    reused = 0
    for g in (residual_glu(), step_function(), embedding_lstm()):
        x = _x(g, T=9, B=3, seed=7)
        q16, q8 = _quantize(g, "int16", _x(g)), _quantize(g, "int8", _x(g))
        assert [type(n.op) for n in q16.nodes] == [type(n.op) for n in q8.nodes]
        xq = x if g.values[g.input].dtype == "s32" else fx.quantize(x, q16.in_scale)
        base: dict[int, list[np.ndarray]] = {}
        fx.run_qgraph(q16, xq, seen=base)
        changed = [k for k, n in enumerate(q8.nodes) if getattr(n.op, "wfmt", "") == "s8"]
        assert changed
        for k in changed:
            mixed = replace(q16, nodes=[q8.nodes[k] if j == k else n for j, n in enumerate(q16.nodes)])
            want: dict[int, list[np.ndarray]] = {}
            got: dict[int, list[np.ndarray]] = {}
            y1, s1 = fx.run_qgraph(mixed, xq, seen=want)
            y2, s2 = fx.run_qgraph(mixed, xq, seen=got, reuse=(base, {k}))
            np.testing.assert_array_equal(y1, y2)
            assert not np.array_equal(y1, fx.run_qgraph(q16, xq)[0])  # the change reaches it
            assert want.keys() == got.keys()
            for v in want:
                for a, b in zip(want[v], got[v], strict=True):
                    np.testing.assert_array_equal(a, b)
            for a, b in zip(s1["values"] + [a for s in s1["nodes"] for a in s],
                            s2["values"] + [a for s in s2["nodes"] for a in s]):  # fmt: skip
                np.testing.assert_array_equal(a, b)
            reused += sum(all(a is b for a, b in zip(got[v], base[v])) for v in got)
    assert reused > 0


def test_run_qgraph_refuses_a_float_graph_and_a_wrong_state():
    g = step_function()
    with pytest.raises(InputError, match="integer graph; value 'x' is f32"):
        fx.run_qgraph(g, np.zeros((2, 1, 3), np.int16))
    qg = _quantize(g, "int16", _x(g))
    xq = np.zeros((2, 3, 3), np.int16)
    _, st = fx.run_qgraph(qg, xq)
    with pytest.raises(InputError, match="state\\['values'\\]\\[0\\]: expected \\[\\('int16', \\[3, 5\\]\\)\\]"):
        fx.run_qgraph(qg, xq, {"nodes": [], "values": [st["values"][0][:1]]})
    with pytest.raises(InputError, match="state\\['values'\\]: expected 1 entries, got 0"):
        fx.run_qgraph(qg, xq, {"nodes": [], "values": []})
    with pytest.raises(InputError, match="expected int16"):
        fx.run_qgraph(qg, xq.astype(F32))


def test_state_and_update_share_one_scale():
    """A state value and its update have one scale: the fixed Q0.15 of a Tanh; the calibrated
    range of a Dense's output (a free scale); and for a Clip (which passes its input's scale, while
    the state's range is the clipped one) an Identity node requantizes the update to the state's
    scale."""
    g = step_function()
    qg = _quantize(g, "int16", _x(g))
    h = qg.values[1]
    assert h.scale == qg.values[h.update].scale == np.float32(2.0**-15)
    g = step_function(act=Act.make("Clip", -0.5, 0.5))
    qg = _quantize(g, "int16", _x(g))
    h = qg.values[1]
    assert h.scale == qg.values[h.update].scale
    req = [n for n in qg.nodes if isinstance(n.op, QActivation) and n.name.endswith("/requantize")]
    assert len(req) == 1 and req[0].outputs == [h.update]
    assert req[0].op.out_scale == h.scale and req[0].op.in_scale == qg.values[req[0].inputs[0]].scale
    assert _err(qg, g, _x(g, seed=3)) <= 1e-3
    # a Dense writing the state: its output scale is the state's
    rng = np.random.default_rng(0)
    vals = [Value("x", (3,), kind="input"), Value("h", (4,), kind="state", update=3),
            Value("c", (7,)), Value("hn", (4,)), Value("y", (4,), kind="output")]
    nodes = [Node(Concat(-1), [0, 1], [2]), Node(Dense(_w(rng, 4, 7, scale=0.5)), [2], [3]),
             Node(Activation(Act.make("Tanh"), 4), [3], [4])]
    g = _graph(vals, nodes)
    qg = _quantize(g, "int16", _x(g))
    assert qg.values[1].scale == qg.values[3].scale
    assert not any(n.name.endswith("/requantize") for n in qg.nodes)
    assert _err(qg, g, _x(g, seed=3)) <= 1e-3


def test_concat_inputs_keep_their_scales():
    """Each Concat input keeps its own scale and is requantized to the output's, the largest of
    them: the small branch is not rounded to the big one's LSB."""
    g = concat_two_scales()
    qg = _quantize(g, "int16", _x(g))
    s_small, s_big, s_c = (qg.values[i].scale for i in (1, 2, 3))
    assert s_big > 30 * s_small and s_c == s_big
    op = qg.nodes[2].op
    assert isinstance(op, QConcat)
    assert [float(m.real()) for m in op.mults] == pytest.approx([s_small / s_c, 1.0], rel=1e-6)
    # the small branch's own error is that of its own scale, not the output's
    small = qg.report[0].error
    assert small is not None and small < 1e-3


def test_graph_op_forms_against_float_math():
    """QBinary (each kind, a constant on either side), QReduce, QGather: the integers equal the
    documented formulas and dequantize to the float result within a few LSBs."""
    rng = np.random.default_rng(9)
    x = rng.uniform(-2, 2, (7, 3, 4)).astype(F32)
    for kind in ("Add", "Sub", "Mul", "Div", "Min", "Max"):
        for const, left in ((None, False), (np.array([0.5, -1.5, 2.0, 0.75], F32), False),
                            (np.array([1.25, -0.5, 3.0, 2.0], F32), True)):  # fmt: skip
            vals = [Value("x", (4,), kind="input"), Value("a", (4,)),
                    Value("y", (4,), kind="output")]  # fmt: skip
            if const is None:
                nodes = [Node(Activation(Act.make("Sigmoid"), 4), [0], [1]),
                         Node(Binary(kind), [0, 1], [2])]  # fmt: skip
            else:
                nodes = [Node(Activation(Act.make("Sigmoid"), 4), [0], [1]),
                         Node(Binary(kind, const, left), [1], [2])]  # fmt: skip
            g = _graph(vals, nodes)
            qg = _quantize(g, "int16", x)
            op = qg.nodes[1].op
            assert isinstance(op, QBinary) and op.kind == kind
            y_f, _ = run_graph(g, x)
            y_q = run_float(qg, x)
            lsb = qg.out_scale
            tol = 4 * lsb if kind != "Div" else 1e-3 * float(np.abs(y_f).max()) + 4 * lsb
            assert float(np.abs(y_q - y_f).max()) <= tol, (kind, const is not None, left)
    # Reduce of every kind over two axes
    for kind in ("Sum", "Mean", "Max", "Min"):
        vals = [Value("x", (2, 3), kind="input"), Value("y", (1, 1), kind="output")]
        g = _graph(vals, [Node(Reduce(kind, (0, 1)), [0], [1])])
        x2 = rng.uniform(-3, 3, (5, 2, 2, 3)).astype(F32)
        qg = _quantize(g, "int16", x2)
        assert isinstance(qg.nodes[0].op, QReduce)
        y_f, _ = run_graph(g, x2)
        assert float(np.abs(run_float(qg, x2) - y_f).max()) <= 8 * qg.out_scale, kind
    # Gather: the table at the output scale, ids out of range refused
    g = embedding_lstm()
    qg = _quantize(g, "int16", _x(g))
    op = qg.nodes[0].op
    assert isinstance(op, QGather) and qg.values[1].scale == op.out_scale
    assert op.table.dtype == np.int16 and int(np.abs(op.table).max()) >= 16384
    with pytest.raises(InputError, match="gather ids: 20 is outside the table"):
        fx.run_qgraph(qg, np.full((2, 1, 1), 20))


def test_div_by_zero_saturates_and_binary_pow_is_refused():
    q = QBinary("Div", 1 << 30, 0, 30, (1.0, 1.0), 1.0)
    a = np.array([[5, -5, 0, 7]], np.int64)
    b = np.array([[0, 0, 0, 2]], np.int64)
    np.testing.assert_array_equal(fx.binary_q(q, a, b, (4,)), [[32767, -32768, 0, 4]])
    vals = [Value("x", (2,), kind="input"), Value("a", (2,)), Value("y", (2,), kind="output")]
    g = _graph(vals, [Node(Activation(Act.make("Sigmoid"), 2), [0], [1]),
                      Node(Binary("Pow"), [1, 0], [2], "pow_node")])  # fmt: skip
    with pytest.raises(UnsupportedOpError, match="pow_node.*Pow of two tensors"):
        _quantize(g, "int16", _x(g))


@pytest.mark.parametrize("kind", ["Abs", "Neg"])
def test_abs_and_neg_are_exact(kind):
    q = QActivation(kind, 5, 1.0, 1.0, fx.Mult(np.int64(1 << 30), 30))
    x = np.array([-32768, -3, 0, 4, 32767], np.int64)
    want = np.abs(x) if kind == "Abs" else -x
    np.testing.assert_array_equal(fx.act_q(q, x), np.minimum(want, 32767))


LUT_CASES = {  # kind: alpha, calibration data (a domain where it is defined), bar (measured)
    "Sqrt": (0.0, lambda r: r.uniform(0.0, 4.0, (30, 4, 6)), 4e-2),  # 3.2e-2: the slope at 0
    "Reciprocal": (0.0, lambda r: r.uniform(0.5, 4.0, (30, 4, 6)), 5e-3),  # 3.7e-3
    "Exp": (0.0, lambda r: r.uniform(-3.0, 2.0, (30, 4, 6)), 1e-3),  # 3.4e-4
    "Erf": (0.0, lambda r: r.uniform(-3.0, 3.0, (30, 4, 6)), 1e-3),  # 1.6e-4
    "Pow": (3.0, lambda r: r.uniform(-2.0, 2.0, (30, 4, 6)), 1e-3),  # 1.4e-4
}


@pytest.mark.parametrize("kind", LUT_CASES)
def test_new_activations_through_the_table(kind):
    """The graph activations Sqrt ... Pow go through the 257-entry table; the unbounded ones take
    their output scale from the calibrated range. The int16 errors measured here (of the output's
    range; docs/quantization.md §12) are the table's linear interpolation: Sqrt and Reciprocal,
    steep near 0, miss 1e-3."""
    alpha, data, bar = LUT_CASES[kind]
    x = data(np.random.default_rng(0)).astype(F32)
    vals = [Value("x", (6,), kind="input"), Value("y", (6,), kind="output")]
    g = _graph(vals, [Node(Activation(Act.make(kind, alpha), 6), [0], [1])])
    qg = quantize_dataflow(g, "int16", x)
    op = qg.nodes[0].op
    assert isinstance(op, QActivation) and op.table is not None and op.table.shape == (257,)
    assert qg.accuracy["rel_max_err"] <= bar


@pytest.mark.parametrize("lo,hi,bar", [(0.5, 4.0, 2e-4), (0.05, 50.0, 5e-3), (1e-3, 50.0, 1e-2)])
def test_log_is_computed_from_the_bit_length_not_a_table(lo, hi, bar):
    """Log takes no table: log2 of the int16 input from its bit length and the mantissa table
    (fixedpoint.log_q), its s_out from the calibrated range. Measured (of the output's range):
    1.2e-4 on [0.5, 4], 2.2e-3 on [0.05, 50], 6.2e-3 on [1e-3, 50], what the input's own
    rounding makes of ln near its smallest values (s_in / 2x); the 257-entry table over the whole
    int16 input, which this replaced, gave 8.6e-4, 0.68 and 0.60."""
    x = np.random.default_rng(0).uniform(lo, hi, (30, 4, 6)).astype(F32)
    vals = [Value("x", (6,), kind="input"), Value("y", (6,), kind="output")]
    g = _graph(vals, [Node(Activation(Act.make("Log"), 6), [0], [1])])
    qg = quantize_dataflow(g, "int16", x)
    op = qg.nodes[0].op
    assert isinstance(op, QActivation) and op.table is None and op.m1.m > 0
    assert op.k0 == int(fx.round_half_up(np.log(op.in_scale) / op.out_scale))
    assert qg.accuracy["rel_max_err"] <= bar


def test_recurrent_node_with_its_state_in_values():
    """An LSTM whose h_init comes from a state value updated by its Y_h: the state's scale is the
    node's h scale (Q0.15). An LSTM that reads and writes its cell state as a value (a state
    updated by its Y_c) quantizes too: the state's scale is Y_c's, calibrated, and the node's
    c_in / c_out move c between it and Q11.20 (docs/quantization.md section 14)."""
    rng = np.random.default_rng(6)
    H, I = 4, 3
    L = Recurrent("lstm", "forward", _w(rng, 1, 4 * H, I), _w(rng, 1, 4 * H, H))
    vals = [Value("x", (I,), kind="input"), Value("h", (1, H), kind="state", update=3),
            Value("y", (H,), kind="output"), Value("hn", (1, H), last=True)]
    g = _graph(vals, [Node(L, [0, 1], [2, 3], "lstm")])
    qg = _quantize(g, "int16", _x(g))
    assert qg.values[1].scale == qg.values[3].scale == qg.nodes[0].op.out_scale == np.float32(2.0**-15)
    assert _err(qg, g, _x(g, seed=2)) <= 1e-3
    vals = [Value("x", (I,), kind="input"), Value("h", (1, H), kind="state", update=4),
            Value("c", (1, H), kind="state", update=5), Value("y", (H,), kind="output"),
            Value("hn", (1, H), last=True), Value("cn", (1, H), last=True)]  # fmt: skip
    g = _graph(vals, [Node(L, [0, 1, 2], [3, 4, 5], "cell_node")])
    qg = _quantize(g, "int16", _x(g))
    op = qg.nodes[0].op
    s_c = float(qg.values[2].scale)
    assert qg.values[5].scale == np.float32(s_c) and s_c != 2.0**-15
    assert op.c_in.real() == pytest.approx(s_c * 2.0**20, rel=1e-9)
    assert op.c_out.real() == pytest.approx(2.0**-20 / s_c, rel=1e-9)
    assert _err(qg, g, _x(g, seed=2)) <= 1e-3  # 1.5e-4 measured


def test_a_computed_h_init_is_requantized_to_the_cells_h_scale():
    """An LSTM whose h_init is computed (a Dense of x, at its own calibrated scale): the integer
    cell writes h in Q0.15, so its h_init is requantized to Q0.15 by an Identity node before it
    (read at the Dense's scale instead, the error was 3.6e-1 of the output range; now 1.3e-4)."""
    rng = np.random.default_rng(8)
    H, I = 4, 3
    L = Recurrent("lstm", "forward", _w(rng, 1, 4 * H, I), _w(rng, 1, 4 * H, H))
    vals = [Value("x", (I,), kind="input"), Value("h0", (H,)), Value("y", (H,), kind="output")]
    g = _graph(vals, [Node(Dense(_w(rng, H, I, scale=0.2)), [0], [1], "init"),
                      Node(L, [0, 1], [2], "lstm")])  # fmt: skip
    qg = _quantize(g, "int16", _x(g))
    lstm = qg.nodes[-1]
    assert qg.values[lstm.inputs[1]].scale == lstm.op.out_scale == np.float32(2.0**-15)
    assert qg.nodes[1].name == "lstm/h_init" and qg.nodes[1].inputs == [1]
    assert _err(qg, g, _x(g, seed=2)) <= 1e-3


def test_ids_are_read_by_a_gather_only():
    vals = [Value("ids", (2,), dtype="s32", kind="input"), Value("y", (3,), kind="output")]
    g = _graph(vals, [Node(Dense(np.ones((3, 2), F32)), [0], [1], "dense_of_ids")])
    with pytest.raises(ConvertError, match="dense_of_ids.*s32 value.*Gather"):
        quantize_graph(g, "int16", np.zeros((2, 1, 2), np.int64))


def test_a_relu_rnn_state_covers_its_initial_value():
    """A ReLU RNN reading its h from a state value whose initial value (3.0) is far beyond what
    the cell writes afterwards: the state's (and the node's h) scale covers the initial value."""
    rng = np.random.default_rng(12)
    H, I = 4, 3
    L = Recurrent("rnn", "forward", _w(rng, 1, H, I, scale=0.1), _w(rng, 1, H, H, scale=0.1),
                  activations=[[Act.make("Relu")]])  # fmt: skip
    vals = [Value("x", (I,), kind="input"),
            Value("h", (1, H), kind="state", update=3, init=np.full(H, 3.0, F32)),
            Value("y", (H,), kind="output"), Value("hn", (1, H), last=True)]  # fmt: skip
    g = _graph(vals, [Node(L, [0, 1], [2, 3], "relu_rnn")])
    qg = _quantize(g, "int16", _x(g))
    assert 32767 * qg.values[1].scale >= 3.0
    assert _err(qg, g, _x(g, seed=2)) <= 1e-3


def test_two_updates_of_one_node_are_both_requantized():
    """A ReLU RNN (h scale set by its initial state's 3.0) whose Y and Y_h update two state
    values of smaller ranges: each update gets its own requantizing Identity after the node."""
    rng = np.random.default_rng(13)
    H, I = 4, 3
    L = Recurrent("rnn", "forward", _w(rng, 1, H, I, scale=0.1), _w(rng, 1, H, H, scale=0.1),
                  activations=[[Act.make("Relu")]])  # fmt: skip
    vals = [Value("x", (I,), kind="input"), Value("h0", (1, H), kind="state", init=np.full(H, 3.0, F32)),
            Value("s1", (H,), kind="state", update=4), Value("s2", (1, H), kind="state", update=5),
            Value("y", (H,), kind="output"), Value("hn", (1, H), last=True)]  # fmt: skip
    g = _graph(vals, [Node(L, [0, 1], [4, 5], "relu_rnn")])
    qg = _quantize(g, "int16", _x(g))
    req = [n for n in qg.nodes if n.name.endswith("/requantize")]
    assert sorted(n.outputs[0] for n in req) == [4, 5]
    assert [v for v in qg.nodes[0].outputs] == [n.inputs[0] for n in req]
    for i in (2, 3):
        assert qg.values[i].scale == qg.values[qg.values[i].update].scale
    assert _err(qg, g, _x(g, seed=2)) <= 1e-3


def test_a_many_to_one_graph_is_calibrated_and_measured_at_every_step():
    """As for pipelines (docs/quantization.md section 8): a streamable many-to-one graph outputs
    at every step of a stream, so the values after its TakeLast are calibrated and the accuracy
    measured on every step, not only the last (here 100x smaller than the others)."""
    from rnnedge.quant.graph import per_step

    rng = np.random.default_rng(14)
    vals = [Value("x", (3,), kind="input"), Value("d", (4,)), Value("dl", (4,), last=True),
            Value("y", (4,), kind="output", last=True)]  # fmt: skip
    g = _graph(vals, [Node(Dense(_w(rng, 4, 3)), [0], [1]), Node(TakeLast(4, 4), [1], [2]),
                      Node(Binary("Mul", np.full(4, 2.0, F32)), [2], [3], "scale")])  # fmt: skip
    x = _x(g)
    x[-1] *= 0.01
    qg = _quantize(g, "int16", x)
    y_steps, _ = run_graph(per_step(g), x)
    assert y_steps.shape[0] == x.shape[0] and qg.values[3].last
    assert 32767 * qg.values[3].scale >= float(np.abs(y_steps).max())
    assert qg.accuracy["rel_max_err"] <= 1e-3
    y_last = run_float(qg, x)
    np.testing.assert_allclose(y_last, y_steps[-1:], atol=4 * qg.out_scale)


def test_int16_folds_a_dense_into_the_recurrent_node_it_feeds():
    """As fold_dense does for pipelines (docs/quantization.md section 7), in a graph with a
    residual: int16 folds the Dense into the LSTM's input weights; int8 keeps it."""
    rng = np.random.default_rng(15)
    H, I, F = 4, 3, 5
    L = Recurrent("lstm", "forward", _w(rng, 1, 4 * H, F), _w(rng, 1, 4 * H, H))
    vals = [Value("x", (I,), kind="input"), Value("p", (F,)), Value("h", (H,)), Value("s", (H,)),
            Value("y", (H,), kind="output")]  # fmt: skip
    g = _graph(vals, [Node(Dense(_w(rng, F, I), np.full(F, 0.3, F32)), [0], [1], "pre"),
                      Node(L, [1], [2], "lstm"), Node(Dense(_w(rng, H, I)), [0], [3], "skip"),
                      Node(Binary("Add"), [2, 3], [4], "residual")])  # fmt: skip
    q16 = _quantize(g, "int16", _x(g))
    assert [n.name for n in q16.nodes] == ["lstm", "skip", "residual"]
    assert q16.folded == ["Dense node 0 (3 -> 5) into the input weights of the LSTM node after it (int16)"]
    assert q16.nodes[0].inputs == [0] and len(q16.values) == 4
    assert _err(q16, g, _x(g, seed=2)) <= 1e-3
    q8 = _quantize(g, "int8", _x(g))
    assert [n.name for n in q8.nodes] == ["pre", "lstm", "skip", "residual"]


def _wide(g: Graph, T: int = 60, B: int = 4, seed: int = 0) -> np.ndarray:
    """Steps whose loudness spans 2 decades (quiet frames and loud ones, as audio has)."""
    rng = np.random.default_rng(seed)
    gain = 10.0 ** rng.uniform(-2, 0, (T, B, 1))
    return (rng.standard_normal((T, B) + g.values[g.input].shape) * gain).astype(F32)


@pytest.mark.parametrize("quant", ["int16", "int8"])
def test_a_layer_norm_written_out_in_ops_is_quantized_as_one_layer_norm(quant):
    """fuse_layer_norms: the ten nodes become one LayerNorm (its float graph the same function),
    so the variance is summed in 64 bits instead of through int16 squares that round a quiet
    step's deviations to 0: 7.4e-3 of the output range here (int16 and int8), 1.2 op by op
    (DTLN stage 2: 4.5e-2 -> 7.6e-3, docs/real-models.md)."""
    from rnnedge.quant.graph import fuse_layer_norms

    g = written_layer_norm()
    fused = fuse_layer_norms(g)
    assert [n.name for n in fused.nodes] == ["pre", "beta", "post"]
    ln = fused.nodes[1].op
    assert isinstance(ln, LayerNorm) and fused.nodes[1].inputs == [1] and ln.epsilon == 1e-6
    np.testing.assert_array_equal(ln.gamma, g.nodes[8].op.const.reshape(-1))
    np.testing.assert_array_equal(ln.beta, g.nodes[9].op.const)
    assert fused.folded == ["a layer norm written out in 10 nodes (node 1 mean to node 9 beta) "
                            "fused into one LayerNorm over its 8 features (eps 1e-06)"]
    x = _wide(g)
    np.testing.assert_allclose(run_graph(fused, x)[0], run_graph(g, x)[0], rtol=1e-4, atol=1e-5)
    qg = _quantize(g, quant, x)
    assert [type(n.op).__name__ for n in qg.nodes][1] == "QLayerNorm"
    assert _err(qg, g, _wide(g, seed=1)) < 2e-2


def test_a_layer_norm_whose_parts_are_read_elsewhere_is_left_as_ops():
    from rnnedge.quant.graph import fuse_layer_norms

    g = written_layer_norm(std_read=True)
    assert fuse_layer_norms(g) is g


def test_a_layer_norm_without_gamma_and_beta_ends_at_its_div():
    from rnnedge.quant.graph import fuse_layer_norms

    g = written_layer_norm(scaled=False)
    fused = fuse_layer_norms(g)
    assert [n.name for n in fused.nodes] == ["pre", "div", "post"] and fused.nodes[1].inputs == [1]
    ln = fused.nodes[1].op
    assert isinstance(ln, LayerNorm) and ln.beta is None and np.all(ln.gamma == 1)
    x = _wide(g)
    np.testing.assert_allclose(run_graph(fused, x)[0], run_graph(g, x)[0], rtol=1e-4, atol=1e-5)


def written_magnitude(mul: bool = False, square_read: bool = False) -> Graph:
    """Silero's STFT magnitude in small: y = Dense(sqrt(re^2 + im^2)), [re, im] = Dense(x), each
    square a Pow(., 2) (or, with mul, the second a Mul(im, im)); the encoder's weights large (30)
    as Silero's first Conv's (31.7). square_read: the output adds re^2 too (no fusion)."""
    rng = np.random.default_rng(5)
    K = 8
    vals = [Value("x", (16,), kind="input"), Value("spec", (2 * K,)), Value("re", (K,)),
            Value("im", (K,)), Value("re2", (K,)), Value("im2", (K,)), Value("sum", (K,)),
            Value("mag", (K,)), Value("y", (4,), kind="output")]  # fmt: skip
    im2 = (Node(Binary("Mul"), [3, 3], [5], "im2") if mul
           else Node(Activation(Act.make("Pow", 2.0), K), [3], [5], "im2"))
    nodes = [Node(Dense(_w(rng, 2 * K, 16, scale=4.0)), [0], [1], "stft"),
             Node(Slice(2 * K, 0, K), [1], [2], "re"), Node(Slice(2 * K, K, 2 * K), [1], [3], "im"),
             Node(Activation(Act.make("Pow", 2.0), K), [2], [4], "re2"), im2,
             Node(Binary("Add"), [4, 5], [6], "add"), Node(Activation(Act.make("Sqrt"), K), [6], [7], "sqrt"),
             Node(Dense(_w(rng, 4, K, scale=30.0 * np.sqrt(K))), [7], [8], "enc")]  # fmt: skip
    if square_read:
        vals[8] = Value("e", (4,))
        vals += [Value("y", (K,), kind="output")]
        nodes += [Node(Binary("Add"), [7, 4], [9], "read")]
    return _graph(vals, nodes)


@pytest.mark.parametrize("mul", [False, True])
def test_a_magnitude_written_out_in_ops_is_quantized_as_one_hypot(mul):
    """fuse_magnitudes: Pow, Pow (or Mul), Add, Sqrt become one Binary Hypot (the same function
    in float), whose squares are exact in int64: int16 6.2e-5 of the output's range here, on
    steps whose loudness spans 2 decades, against 2.9e-2 op by op (int16 squares, then the Sqrt
    table, lose the quiet bins; Silero v6: 0.54 of its speech probability, docs/real-models.md)."""
    from rnnedge.quant.graph import fuse_magnitudes

    g = written_magnitude(mul)
    fused = fuse_magnitudes(g)
    assert [n.name for n in fused.nodes] == ["stft", "re", "im", "sqrt", "enc"]
    hyp = fused.nodes[3]
    assert hyp.op == Binary("Hypot") and [fused.values[v].name for v in hyp.inputs] == ["re", "im"]
    assert fused.folded == [f"a magnitude written out in 4 nodes (node 3 re2, node 4 im2, node 5 "
                            f"add, node 6 sqrt) fused into one Hypot, sqrt(a^2 + b^2)"]
    x = _wide(g)
    np.testing.assert_allclose(run_graph(fused, x)[0], run_graph(g, x)[0], rtol=1e-5, atol=1e-5)
    qg = _quantize(g, "int16", x)
    assert isinstance(qg.nodes[3].op, QBinary) and qg.nodes[3].op.kind == "Hypot"
    assert _err(qg, g, _wide(g, seed=1)) < 1e-3


def test_a_magnitude_whose_squares_are_read_elsewhere_is_left_as_ops():
    from rnnedge.quant.graph import fuse_magnitudes

    g = written_magnitude(square_read=True)
    assert fuse_magnitudes(g) is g


def log_magnitude(shared: bool = False) -> Graph:
    """Silero v4's log spectrum in small: y = Dense(ln(2^20 sqrt(re^2 + im^2) + 1)), [re, im] =
    Dense(x), the 2^20 and the + 1 two Affines (the converter's Mul and Add by constants), the
    magnitude written out in ops (Pow, Pow, Add, Sqrt). shared: the magnitude is read by a second
    Dense too, whose output is added (v4 concatenates it with the log)."""
    g = written_magnitude()
    K = 8
    rng = np.random.default_rng(9)
    vals = g.values[:8] + [Value("scaled", (K,)), Value("plus1", (K,)), Value("log", (K,)),
                           Value("y", (4,), kind="output")]  # fmt: skip
    nodes = g.nodes[:7] + [Node(Activation(Act.make("Affine", 2.0**20, 0.0), K), [7], [8], "mul"),
                           Node(Activation(Act.make("Affine", 1.0, 1.0), K), [8], [9], "add1"),
                           Node(Activation(Act.make("Log"), K), [9], [10], "log"),
                           Node(Dense(_w(rng, 4, K)), [10], [11], "enc")]  # fmt: skip
    if shared:
        vals[11] = Value("e", (4,))
        vals += [Value("m", (4,)), Value("y", (4,), kind="output")]
        nodes += [Node(Dense(_w(rng, 4, K)), [7], [12], "mag_dense"),
                  Node(Binary("Add"), [11, 12], [13], "join")]
    return _graph(vals, nodes)


@pytest.mark.parametrize("shared", [False, True])
def test_a_log_of_a_magnitude_is_quantized_as_one_loghypot(shared, monkeypatch):
    """fuse_log_magnitudes: Hypot, Affine, Affine, Log become one Binary LogHypot(re, im) =
    ln(2^20 sqrt(re^2 + im^2) + 1) (the Hypot stays when something else reads it); the same
    function in float. In int16 the Log reads the exact root of the int64 sum of squares plus
    e = 1 / (2^20 u): a silent step (re = im = 0) gives ln 1 = 0, where op by op the + 1 is below
    half the step of 2^20 |.| (1024) and the Log of 0 saturates at -32767 units. On steps whose
    loudness spans 2 decades, 1.4e-3 of the output's range against 3.0e-3 op by op (calibration
    data; held out, both are the int16 re and im's grid near 0: 2.4e-2 / 1.7e-2)."""
    import rnnedge.quant.graph as qgraph
    from rnnedge.quant.graph import fuse_log_magnitudes, fuse_magnitudes

    g = log_magnitude(shared)
    fused = fuse_log_magnitudes(fuse_magnitudes(g))
    names = [n.name for n in fused.nodes]
    assert names == (["stft", "re", "im", "sqrt", "log", "enc", "mag_dense", "join"] if shared
                     else ["stft", "re", "im", "log", "enc"])  # fmt: skip
    lh = fused.nodes[names.index("log")]
    assert lh.op == Binary("LogHypot", alpha=2.0**20, beta=1.0)
    assert [fused.values[v].name for v in lh.inputs] == ["re", "im"]
    kept = " (kept: read elsewhere)" if shared else ""
    assert fused.folded[-1] == (f"a log of a magnitude (node 3 sqrt{kept}, node 4 mul, node 5 add1, "
                                f"node 6 log) fused into one LogHypot, ln(1.04858e+06 sqrt(a^2 + b^2) "
                                f"+ 1)")  # fmt: skip
    x = _wide(g)
    np.testing.assert_allclose(run_graph(fused, x)[0], run_graph(g, x)[0], rtol=1e-5, atol=1e-4)
    qg = _quantize(g, "int16", x)
    k = next(i for i, n in enumerate(qg.nodes) if n.name == "log")
    assert isinstance(qg.nodes[k].op, QBinary) and qg.nodes[k].op.kind == "LogHypot"
    silent = np.zeros((1, 1, 16), F32)
    seen: dict[int, list[np.ndarray]] = {}
    run_float(qg, silent, seen)
    assert np.all(np.abs(seen[qg.nodes[k].outputs[0]][0]) <= 1)  # ln 1 = 0, in units
    assert _err(qg, g, x) < 2e-3
    monkeypatch.setattr(qgraph, "fuse_log_magnitudes", lambda g: g)
    ops = _quantize(g, "int16", x)
    assert not any(isinstance(n.op, QBinary) and n.op.kind == "LogHypot" for n in ops.nodes)
    assert _err(ops, g, x) > 2 * _err(qg, g, x)
    seen = {}
    run_float(ops, silent, seen)
    assert np.all(seen[ops.nodes[[n.name for n in ops.nodes].index("log")].outputs[0]][0] == -32767)


def test_a_log_of_a_magnitude_through_a_negative_scale_is_left_as_ops():
    from rnnedge.quant.graph import fuse_log_magnitudes, fuse_magnitudes

    g = log_magnitude()
    g.nodes[7] = Node(Activation(Act.make("Affine", -1.0, 4.0), 8), [7], [8], "mul")
    hyp = fuse_magnitudes(g)
    assert fuse_log_magnitudes(hyp) is hyp


def sliced_relu(seed: int = 7) -> Graph:
    """Dense(x) [12], of which only features 4..12 are read (a Slice), through a Relu, by a
    Dense with large weights (Silero's STFT, whose sliced-away bins reach 19.1 where the read
    ones reach 11.7, and its first encoder Conv, whose output reaches -110 and +16)."""
    rng = np.random.default_rng(seed)
    w = _w(rng, 12, 6)
    w[:4] *= 20.0  # the features no one reads: 20x the others
    vals = [Value("x", (6,), kind="input"), Value("spec", (12,)), Value("part", (8,)),
            Value("pos", (8,)), Value("y", (3,), kind="output")]
    nodes = [Node(Dense(w, (rng.standard_normal(12) - 1.0).astype(F32)), [0], [1], "spec"),
             Node(Slice(12, 4, 12), [1], [2], "part"),
             Node(Activation(Act.make("Relu"), 8), [2], [3], "relu"),
             Node(Dense(_w(rng, 3, 8, scale=30.0)), [3], [4], "enc")]  # fmt: skip
    return _graph(vals, nodes)


def test_a_value_read_through_slices_and_relus_is_scaled_by_what_is_read():
    """A temp value whose readers only pass its elements on at its scale (Slice, Copy,
    Transpose) or zero the negative ones (Relu) is ranged over what they pass on: the sliced-away
    features and the negative values may saturate. Here 2^4 finer than over all of |spec|,
    and the error at the output with it. (A straight pipeline like this one keeps the pipeline
    quantizer in quantize_graph: the rule is quantize_dataflow's.)"""
    from rnnedge.quant.arith import grid_range, range_scale

    g = sliced_relu()
    x = _x(g, T=60)
    seen: dict[int, list[np.ndarray]] = {}
    run_graph(g, x, seen=seen)
    spec = np.concatenate(seen[1])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        qg = quantize_dataflow(g, "int16", x)
    read = float(np.maximum(spec[..., 4:], 0).max())
    assert qg.values[1].scale == range_scale(grid_range(2.0 * read, up=False))
    assert qg.values[1].scale == qg.values[2].scale == qg.values[3].scale
    assert 32767 * qg.values[1].scale < np.abs(spec).max() / 8  # the rest saturates
    assert _err(qg, g, x) < 1e-4 and _err(qg, g, _x(g, T=60, seed=1)) < 1e-4


def test_a_value_read_by_anything_else_keeps_its_whole_range():
    """The same Dense output read by the Slice and by a Dense too: all of |spec|."""
    g = sliced_relu()
    rng = np.random.default_rng(8)
    vals = g.values[:4] + [Value("e", (3,)), Value("w", (3,)), Value("y", (3,), kind="output")]
    nodes = g.nodes[:3] + [Node(Dense(_w(rng, 3, 8)), [3], [4], "enc"),
                           Node(Dense(_w(rng, 3, 12)), [1], [5], "whole"),
                           Node(Binary("Add"), [4, 5], [6], "sum")]  # fmt: skip
    g2 = _graph(vals, nodes)
    x = _x(g2, T=60)
    seen: dict[int, list[np.ndarray]] = {}
    run_graph(g2, x, seen=seen)
    qg = _quantize(g2, "int16", x)
    assert as_network(g2) is None
    assert 32767 * qg.values[1].scale >= np.abs(np.concatenate(seen[1])).max()


# -- the policy ----------------------------------------------------------------------------------
def _bad_int8_graph() -> Graph:
    """A Dense whose int8 weights miss the bar: one weight 1000x the others in each row."""
    rng = np.random.default_rng(11)
    W = _w(rng, 6, 6)
    W[:, 0] = 300.0
    vals = [Value("x", (6,), kind="input"), Value("d", (6,)), Value("s", (6,)),
            Value("y", (6,), kind="output")]
    nodes = [Node(Dense(W), [0], [1], "wide"), Node(Activation(Act.make("Sigmoid"), 6), [1], [2]),
             Node(Binary("Add"), [0, 2], [3])]
    return _graph(vals, nodes)


def test_int8_keeps_a_node_that_misses_the_bar_at_int16_weights():
    g = _bad_int8_graph()
    x = _x(g)
    with pytest.warns(UserWarning, match="node 0 \\(wide\\): kept at int16 weights"):
        qg = quantize_graph(g, "int8", x)
    assert qg.report[0].wfmt == "s16" and qg.nodes[0].op.wfmt == "s16"
    assert "int8 weights gave 0.0" in qg.report[0].note  # 1.9e-2
    assert qg.report[0].output_error is not None and qg.report[0].output_error <= 5e-3
    assert qg.accuracy["rel_max_err"] <= 5e-3
    with pytest.raises(ConvertError, match="node 0 \\(wide\\): int8 weights give .*strict"):
        quantize_graph(g, "int8", x, strict=True)


def test_without_calibration_the_defaults_are_named():
    g = residual_glu()
    with pytest.warns(CalibrationWarning, match="input \\|x\\| <= 8.0"):
        qg = quantize_dataflow(g, "int16")
    assert not qg.calibrated


def test_bad_arguments_are_refused():
    g = residual_glu()
    with pytest.raises(InputError, match="quant='int4'"):
        quantize_graph(g, "int4")
    with pytest.raises(InputError, match="calibration: expected the model.s layout .TBF. or \\[T, B, 6\\]"):
        quantize_graph(g, "int16", np.zeros((3, 2, 5), F32))
    with pytest.raises(InputError, match="NaN"):
        quantize_dataflow(g, "int16", np.full((3, 2, 6), np.nan, F32))
    ids = embedding_lstm()
    with pytest.raises(InputError, match="integer ids"):
        quantize_graph(ids, "int16", np.zeros((3, 2, 1), F32))


# -- pipelines -------------------------------------------------------------------------------------
GOOD = [e for e in json.loads((FIXTURES / "index.json").read_text()) if not e["error"]]


@pytest.mark.parametrize("quant", ["int16", "int8"])
@pytest.mark.parametrize("entry", GOOD, ids=[e["name"] for e in GOOD])
def test_fixture_pipelines_as_graphs(entry, quant):
    """Every convertible fixture as a graph: run_qgraph(from_network(qnet)) equals the pipeline
    oracle run_int bit for bit; quantize_graph of the graph is quantize_network's result; the
    general path (quantize_dataflow: Dense folding in int16, per-step calibration and
    measurement of many-to-one graphs, the per-node policy) reaches the same scales, weights,
    accuracy and integers."""
    from rnnedge.converter import to_network

    x = np.load(FIXTURES / f"{entry['name']}.input.npy")
    net = to_network(FIXTURES / f"{entry['name']}.onnx", fixed=entry.get("fixed"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        qnet = quantize_network(net, quant, x)
        qg = quantize_graph(from_network(net), quant, x)
        qd = quantize_dataflow(from_network(net), quant, x)
    xq = fx.quantize(to_tbf(x, net.input.axes), qnet.in_scale)
    y_pipe, s_pipe = fx.run_int(qnet, xq)
    y_graph, s_graph = fx.run_qgraph(from_network(qnet), xq)
    np.testing.assert_array_equal(y_graph, y_pipe)
    for a, b in zip(s_pipe, s_graph["nodes"]):
        for u, v in zip(a, b):
            np.testing.assert_array_equal(u, v)
    np.testing.assert_array_equal(fx.run_qgraph(qg, xq)[0], y_pipe)
    assert [v.scale for v in qg.values] == [v.scale for v in from_network(qnet).values]
    assert qg.value_specs == from_network(net).value_specs == qd.value_specs
    assert qg.accuracy == qnet.accuracy
    assert qd.accuracy["rel_max_err"] <= (1e-3 if quant == "int16" else 1e-2)
    assert [v.scale for v in qd.values] == [v.scale for v in qg.values]
    assert [r.wfmt for r in qd.report] == [r.wfmt for r in qg.report]
    assert qd.accuracy == pytest.approx(qg.accuracy, rel=1e-12, abs=0)
    np.testing.assert_array_equal(fx.run_qgraph(qd, xq)[0], y_pipe)


def test_a_straight_graph_with_graph_ops_is_not_a_pipeline():
    from rnnedge.quant.graph import as_network

    assert as_network(residual_glu()) is None
    rng = np.random.default_rng(0)
    net = Network([Dense(_w(rng, 4, 3)), LayerNorm(np.ones(4, F32)), TakeLast(4, 4)],
                  TensorSpec("x", "TBF", [None, None, 3]), TensorSpec("y", "BF", [None, 4]))
    assert as_network(from_network(net)) is not None


# -- the C library -----------------------------------------------------------------------------------
def _clip_step() -> Graph:
    return step_function(act=Act.make("Clip", -0.5, 0.5))


C_GRAPHS = {"residual_glu": residual_glu, "concat_two_scales": concat_two_scales,
            "step_function": step_function, "reduce_mean_center": reduce_mean_center,
            "clip_step_requantized": _clip_step, "written_layer_norm": written_layer_norm,
            "written_magnitude": written_magnitude, "sliced_relu": sliced_relu,
            "log_magnitude": log_magnitude}  # fmt: skip


@pytest.mark.parametrize("quant", ["int16", "int8"])
@pytest.mark.parametrize("name", C_GRAPHS)
def test_integer_graphs_in_c_equal_run_qgraph(name, quant):
    """write_blob of an integer graph (the q tensors of BINARY / CONCAT / REDUCE, node for node
    with its float source, the inserted requantizing Identity included) loads in the C library,
    whose integers equal run_qgraph's, run and stepped."""
    import rnnedge
    from rnnedge.blob.write import write_blob

    g = C_GRAPHS[name]()
    qg = _quantize(g, quant, _x(g))
    model = rnnedge.Model.from_bytes(write_blob(qg))
    x = _x(g, T=12, B=3, seed=5)
    want = run_float(qg, x)
    flat = x.reshape(x.shape[:2] + (-1,))
    np.testing.assert_array_equal(model.run(flat).reshape(want.shape), want)
    stream = model.stream(3)
    steps = np.stack([stream.step(flat[t]).copy() for t in range(flat.shape[0])])
    np.testing.assert_array_equal(steps.reshape(want.shape), want)


# -- the converter's graph fixtures (tests/make_graph_fixtures.py) ---------------------------------
GRAPH = FIXTURES / "graph"
GRAPH_NAMES = sorted(json.loads((GRAPH / "index.json").read_text()))


@pytest.mark.parametrize("name", GRAPH_NAMES)
def test_converter_graph_fixtures_quantize(name):
    """Each of to_graph's fixtures (step functions with their state absorbed or explicit, token
    ids, a GLU gate, residual blocks, a hand-written cell), calibrated on its input in the
    model's own layout: int16 within 1e-3 and int8 within 1e-2 of the float graph's output range.
    An absorbed LSTM state leaves a Y_c nothing reads: dropped, not refused."""
    from rnnedge.converter.dag import to_graph
    from rnnedge.reference import graph_layout

    g = to_graph(GRAPH / f"{name}.onnx")
    x = np.load(GRAPH / f"{name}.input.npy")
    x = x.reshape(x.shape[:2] + g.values[g.input].shape)  # run_graph's [T, B, *shape]
    cal = graph_layout(x, g.input_spec.axes)  # the model's own layout, as a caller has it
    y_f, _ = run_graph(g, x)
    for quant, bar in (("int16", 1e-3), ("int8", 1e-2)):
        qg = _quantize(g, quant, cal)
        y_q = run_float(qg, x)
        err = float(np.abs(y_q - y_f).max() / (y_f.max() - y_f.min()))
        assert err <= bar, (quant, err)
        check_graph(qg)
        assert qg.value_specs == g.value_specs and qg.state == g.state
        if name in ("glu_gru", "residual_lstm"):  # the C library's integers equal run_qgraph's
            import rnnedge
            from rnnedge.blob.write import write_blob

            model = rnnedge.Model.from_bytes(write_blob(qg))
            np.testing.assert_array_equal(model.run(cal), graph_layout(y_q, g.output_spec.axes))
    if name in ("step_lstm", "step_lstm_packed"):
        assert not g.explicit_state and len(qg.values) == len(g.values) - 1
        assert all(len(n.outputs) < 3 or n.outputs[2] is None for n in qg.nodes)

