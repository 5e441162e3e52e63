"""The float reference's graph executor (rnnedge.reference.run_graph) on hand-built graphs, each
checked against the same arithmetic written out in numpy."""

import numpy as np
import pytest

from rnnedge.errors import InputError
from rnnedge.ir.graph import (
    Binary, Concat, Copy, Gather, Graph, Node, Reduce, Transpose, Value, check_graph, plan_arena,
)  # fmt: skip
from rnnedge.ir.layers import Act, Activation, Dense, Recurrent, Slice, TensorSpec
from rnnedge.reference import run_graph, run_recurrent, sigmoid

F32 = np.float32
rng = np.random.default_rng(5)


def _graph(values: list[Value], nodes: list[Node]) -> Graph:
    kinds = [v.kind for v in values]
    g = Graph(values, nodes, kinds.index("input"), kinds.index("output"),
              TensorSpec("x", "TBF", [None, None, values[0].features]),
              TensorSpec("y", "TBF", [None, None, None]))
    plan_arena(g)
    check_graph(g)
    return g


def test_residual_and_glu_gate() -> None:
    W = rng.standard_normal((8, 4)).astype(F32)
    vals = [Value("x", (4,), kind="input"), Value("ab", (8,)), Value("a", (4,)), Value("b", (4,)),
            Value("sb", (4,)), Value("g", (4,)), Value("y", (4,), kind="output")]
    nodes = [Node(Dense(W), [0], [1]),
             Node(Slice(8, 0, 4), [1], [2]), Node(Slice(8, 4, 8), [1], [3]),
             Node(Activation(Act.make("Sigmoid"), 4), [3], [4]),
             Node(Binary("Mul"), [2, 4], [5]), Node(Binary("Add"), [0, 5], [6])]
    g = _graph(vals, nodes)
    x = rng.standard_normal((5, 2, 4)).astype(F32)
    ab = x @ W.T
    want = x + ab[..., :4] * sigmoid(ab[..., 4:])
    y, _ = run_graph(g, x)
    np.testing.assert_allclose(y, want, rtol=1e-6, atol=1e-6)


def test_shape_ops_and_broadcast() -> None:
    vals = [Value("x", (2, 3), kind="input"), Value("t", (3, 2)), Value("c", (3, 4)),
            Value("r", (3, 1)), Value("m", (3, 4)), Value("f", (12,)), Value("y", (12,), kind="output")]
    nodes = [Node(Transpose((1, 0)), [0], [1]), Node(Concat(-1), [1, 1], [2]),
             Node(Reduce("Mean", (1,)), [2], [3]), Node(Binary("Sub"), [2, 3], [4]),
             Node(Copy(), [4], [5]), Node(Activation(Act.make("Abs"), 12), [5], [6])]
    g = _graph(vals, nodes)
    x = rng.standard_normal((3, 2, 2, 3)).astype(F32)
    t = x.transpose(0, 1, 3, 2)
    c = np.concatenate([t, t], axis=-1)
    want = np.abs(c - c.mean(-1, keepdims=True)).reshape(3, 2, 12)
    y, _ = run_graph(g, x)
    np.testing.assert_allclose(y, want, rtol=1e-6, atol=1e-7)


def test_embedding_ids() -> None:
    table = rng.standard_normal((10, 3)).astype(F32)
    vals = [Value("ids", (1,), dtype="s32", kind="input"), Value("y", (1, 3), kind="output")]
    g = _graph(vals, [Node(Gather(table), [0], [1])])
    ids = rng.integers(0, 10, (6, 2, 1))
    y, _ = run_graph(g, ids)
    np.testing.assert_array_equal(y, table[ids])
    with pytest.raises(InputError, match="integer ids"):
        run_graph(g, ids.astype(F32))


def test_explicit_state_step_function() -> None:
    """A hand-written recurrence h' = tanh(W x + U h): a step function with a state pair."""
    W = rng.standard_normal((5, 3)).astype(F32)
    U = rng.standard_normal((5, 5)).astype(F32) * F32(0.3)
    vals = [Value("x", (3,), kind="input"), Value("h", (5,), kind="state", update=5),
            Value("wx", (5,)), Value("uh", (5,)), Value("s", (5,)), Value("hn", (5,), kind="output")]
    nodes = [Node(Dense(W), [0], [2]), Node(Dense(U), [1], [3]), Node(Binary("Add"), [2, 3], [4]),
             Node(Activation(Act.make("Tanh"), 5), [4], [5])]
    g = _graph(vals, nodes)
    assert g.explicit_state
    x = rng.standard_normal((6, 2, 3)).astype(F32)
    h = np.zeros((2, 5), F32)
    want = []
    for t in range(6):
        h = np.tanh(x[t] @ W.T + h @ U.T)
        want.append(h)
    y, st = run_graph(g, x)
    np.testing.assert_allclose(y, np.stack(want), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(st["values"][0], h, rtol=1e-6, atol=1e-6)
    # stepping with the state carried over equals the whole run
    y1, s1 = run_graph(g, x[:2])
    y2, _ = run_graph(g, x[2:], s1)
    np.testing.assert_array_equal(np.concatenate([y1, y2]), y)


def test_recurrent_node_fed_by_a_state_value() -> None:
    """An LSTM whose initial state comes from state values each step and whose Y_h / Y_c update
    them: the same numbers as the LSTM run over the whole sequence."""
    H, I = 4, 3
    L = Recurrent("lstm", "forward", rng.standard_normal((1, 4 * H, I)).astype(F32),
                  rng.standard_normal((1, 4 * H, H)).astype(F32))
    vals = [Value("x", (I,), kind="input"), Value("h", (1, H), kind="state", update=4),
            Value("c", (1, H), kind="state", update=5), Value("y", (H,), kind="output"),
            Value("hn", (1, H), last=True), Value("cn", (1, H), last=True)]
    g = _graph(vals, [Node(L, [0, 1, 2], [3, 4, 5])])
    x = rng.standard_normal((7, 2, I)).astype(F32)
    want, fin = run_recurrent(L, x, (np.zeros((1, 2, H), F32), np.zeros((1, 2, H), F32)))
    y, st = run_graph(g, x)
    np.testing.assert_allclose(y, want, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(st["values"][0], fin[0].transpose(1, 0, 2), rtol=1e-6, atol=1e-6)


def test_arena_plan_never_overlaps_live_values() -> None:
    W = rng.standard_normal((8, 4)).astype(F32)
    vals = [Value("x", (4,), kind="input"), Value("ab", (8,)), Value("a", (4,)), Value("b", (4,)),
            Value("sb", (4,)), Value("g", (4,)), Value("y", (4,), kind="output")]
    nodes = [Node(Dense(W), [0], [1]),
             Node(Slice(8, 0, 4), [1], [2]), Node(Slice(8, 4, 8), [1], [3]),
             Node(Activation(Act.make("Sigmoid"), 4), [3], [4]),
             Node(Binary("Mul"), [2, 4], [5]), Node(Binary("Add"), [0, 5], [6])]
    g = _graph(vals, nodes)
    from rnnedge.ir.graph import lifetimes
    life = lifetimes(g)
    for a in life:
        for b in life:
            if a < b and not (life[a][1] < life[b][0] or life[b][1] < life[a][0]):
                va, vb = g.values[a], g.values[b]
                assert va.offset + va.row_bytes <= vb.offset or vb.offset + vb.row_bytes <= va.offset
    # "ab" dies at the second slice; "sb" may reuse its bytes, so the arena is below the sum
    assert max(v.offset + v.row_bytes for v in (g.values[i] for i in life)) < sum(
        g.values[i].row_bytes for i in life)
