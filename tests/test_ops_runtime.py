"""The graph ops (csrc/ops_*.c) through the whole C library: small graphs written as format-2
blobs (rnnedge.blob.write), loaded and run by the C executor, against rnnedge.reference.run_graph
(f32, within float tolerance) and rnnedge.fixedpoint.run_qgraph (int16, bit for bit): every op
and the param layouts the writer, the loader (rne__check_op) and the kernels share."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest

import rnnedge
from rnnedge import fixedpoint as fx
from rnnedge.blob.write import write_blob
from rnnedge.ir.graph import (
    Binary, Concat, Copy, Gather, Graph, Node, Reduce, Transpose, Value, check_graph, plan_arena,
)  # fmt: skip
from rnnedge.ir.layers import Slice, TensorSpec
from rnnedge.quant.graph import quantize_graph
from rnnedge.reference import run_graph

F32 = np.float32
TOL = dict(rtol=1e-6, atol=1e-6)


def _graph(values: list[Value], nodes: list[Node]) -> Graph:
    kinds = [v.kind for v in values]
    g = Graph(values, nodes, kinds.index("input"), kinds.index("output"),
              TensorSpec("x", "TBF", [None, None, values[kinds.index("input")].features]),
              TensorSpec("y", "TBF", [None, None, None]))  # fmt: skip
    plan_arena(g)
    check_graph(g)
    return g


def _one(op, shape_out, *shapes):
    """x, a flat input of 12 + the operands' elements -> each operand its own elements of x (a
    last-axis SLICE, then a COPY to its shape) -> op -> y [shape_out]."""
    sizes = [int(np.prod(sh)) for sh in shapes]
    n = 12 + sum(sizes)
    vals = [Value("x", (n,), kind="input")]
    nodes: list[Node] = []
    ins, start = [], 12
    for k, (sh, size) in enumerate(zip(shapes, sizes)):
        vals.append(Value(f"s{k}", (size,)))
        nodes.append(Node(Slice(size, start, start + size), [0], [len(vals) - 1]))
        vals.append(Value(f"v{k}", tuple(sh)))
        nodes.append(Node(Copy(), [len(vals) - 2], [len(vals) - 1]))
        ins.append(len(vals) - 1)
        start += size
    vals.append(Value("y", shape_out, kind="output"))
    nodes.append(Node(op, ins, [len(vals) - 1]))
    return _graph(vals, nodes)


CASES = {
    "binary_mul_broadcast": lambda: _one(Binary("Mul"), (2, 3), (2, 3), (3,)),
    "binary_sub_general": lambda: _one(Binary("Sub"), (2, 3, 4), (2, 1, 4), (3, 1)),
    "binary_max_equal": lambda: _one(Binary("Max"), (5,), (5,), (5,)),
    "concat_axis0": lambda: _one(Concat(0), (3, 3), (1, 3), (2, 3)),
    "concat_axis1_three": lambda: _one(Concat(1), (2, 5), (2, 2), (2, 1), (2, 2)),
    "transpose": lambda: _one(Transpose((2, 0, 1)), (4, 2, 3), (2, 3, 4)),
    "copy": lambda: _one(Copy(), (6,), (2, 3)),
    "reduce_mean": lambda: _one(Reduce("Mean", (1,)), (2,), (2, 6)),
    "reduce_max_keep": lambda: _one(Reduce("Max", (0,)), (1, 4), (3, 4)),
    "reduce_sum_all": lambda: _one(Reduce("Sum", (0, 1)), (1,), (3, 4)),
    "slice_axis0_step2": lambda: _one(Slice(12, 0, 4, 0, 2), (2, 3), (4, 3)),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_graph_op_in_c_equals_the_float_reference(name):
    g = CASES[name]()
    x = np.random.default_rng(len(name)).standard_normal((5, 2, g.in_features)).astype(F32)
    want, _ = run_graph(g, x)
    got = rnnedge.Model.from_bytes(write_blob(g)).run(x)
    np.testing.assert_allclose(got.reshape(want.shape), want, **TOL)


@pytest.mark.parametrize("name", sorted(CASES))
def test_graph_op_in_c_equals_run_qgraph_bit_for_bit(name):
    g = CASES[name]()
    x = np.random.default_rng(len(name) + 100).standard_normal((6, 2, g.in_features)).astype(F32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        qg = quantize_graph(g, "int16", x)
    blob = write_blob(qg)
    yq, _ = fx.run_qgraph(qg, fx.quantize(x, qg.in_scale))
    want = fx.dequantize(yq, qg.out_scale)
    got = rnnedge.Model.from_bytes(blob).run(x)
    np.testing.assert_array_equal(got.reshape(want.shape), want.astype(F32))


def test_gather_in_c_equals_both_references():
    table = np.random.default_rng(7).standard_normal((6, 3)).astype(F32)
    g = _graph([Value("ids", (2,), "s32", "input"), Value("y", (2, 3), kind="output")],
               [Node(Gather(table), [0], [1])])
    ids = np.array([[[0, 5], [3, 3]], [[1, 2], [4, 0]]], np.int32)
    want, _ = run_graph(g, ids)
    got = rnnedge.Model.from_bytes(write_blob(g)).run(ids)
    np.testing.assert_array_equal(got.reshape(want.shape), want)


# A BINARY with a constant operand (tensor role 0, docs/graph.md) loads and the executor passes
# the constant as in[1] with its shape (csrc/ops.h). Run in a subprocess: a NULL operand (the bug
# this caught) kills the process instead of the test run.
_CONST = textwrap.dedent("""
    import numpy as np, rnnedge
    from rnnedge.blob.write import write_blob
    from rnnedge.ir.graph import Binary, Graph, Node, Value, check_graph, plan_arena
    from rnnedge.ir.layers import TensorSpec
    from rnnedge.reference import run_graph
    for left in (False, True):
        c = np.array([0.5, -1.0, 2.0, 3.0], np.float32)
        vals = [Value("x", (3, 4), kind="input"), Value("y", (3, 4), kind="output")]
        g = Graph(vals, [Node(Binary("Sub", const=c, const_left=left), [0], [1])], 0, 1,
                  TensorSpec("x", "TBF", [None, None, 12]), TensorSpec("y", "TBF", [None, None, None]))
        plan_arena(g); check_graph(g)
        x = np.random.default_rng(1).standard_normal((4, 2, 12)).astype(np.float32)
        want, _ = run_graph(g, x.reshape(4, 2, 3, 4))  # run_graph takes the per-step shape
        got = rnnedge.Model.from_bytes(write_blob(g)).run(x)
        np.testing.assert_array_equal(got.reshape(want.shape), want)
    print("ok")
""")


def test_binary_with_a_constant_operand_runs_in_c(tmp_path):
    # away from the checkout root (whose rnnedge/ has no compiled module when the package is
    # installed), with the package this process imported first on the path
    here = str(Path(rnnedge.__file__).resolve().parent.parent)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [here, *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))])}  # fmt: skip
    r = subprocess.run([sys.executable, "-c", _CONST], capture_output=True, text=True, timeout=120,
                       cwd=tmp_path, env=env)  # fmt: skip
    assert r.returncode == 0 and r.stdout.strip() == "ok", (r.returncode, r.stderr[-2000:])
