"""A CONV node through the whole C library (loader, executor, stream state): until the converter
writes conv nodes (engineer 8), a DENSE graph's blob is edited into a causal dilated time conv —
DENSE's W_t [C kt, N] is exactly CONV's W_t [(C_in / g) kt kw, C_out] for kw = 1, one group —
with its input value narrowed to C features (tests/blob_edit.py re-signs the CRC)."""

from __future__ import annotations

import json

import numpy as np
import pytest

import rnnedge
from blob_edit import HEADER, edit_metadata, metadata, patched
from make_conv_vectors import QConvSpec
from rnnedge import fixedpoint as fx
from rnnedge.blob.read import read_blob
from rnnedge.blob.write import write_blob
from rnnedge.errors import BlobError, ConvertError
from rnnedge.ir.graph import Binary, Conv, Copy, Graph, Node, Value, check_graph, plan_arena
from rnnedge.ir.layers import Dense, Mult, TensorSpec
from rnnedge.quant.graph import quantize_graph

C, N, KT, DT = 3, 4, 3, 2
rng = np.random.default_rng(5)
W = rng.standard_normal((N, C * KT)).astype(np.float32)  # ONNX W [N, C, KT] flattened: c KT + j
B = rng.standard_normal(N).astype(np.float32)


def _conv_blob(groups: int = 1, quant: str | None = None) -> bytes:
    vals = [Value("x", (C * KT,), kind="input"), Value("y", (N,), kind="output")]
    g = Graph(vals, [Node(Dense(W, B), [0], [1])], 0, 1,
              TensorSpec("x", "TBF", [None, None, C * KT]), TensorSpec("y", "TBF", [None] * 3))
    plan_arena(g)
    check_graph(g)
    if quant is not None:  # DENSE's q tensor [24 + N] (slot 0 shift, 2 acc32) is CONV's too
        g = quantize_graph(g, quant, rng.standard_normal((20, 2, C * KT)).astype(np.float32))
    blob = write_blob(g)
    f = HEADER.unpack_from(blob, 0)
    node_off, value_off = f[8], f[12]
    blob = patched(blob, node_off, "H", 15)                                  # RNE_OP_CONV
    blob = patched(blob, node_off + 16, "8i", KT, DT, groups, 1, 1, 0, 0, 1)  # params
    blob = patched(blob, value_off + 4, "I", C)                              # x [C]
    meta = json.loads(metadata(blob))
    meta["input"]["shape"][2] = C
    return edit_metadata(blob, input=meta["input"])


def _numpy_conv(x: np.ndarray) -> np.ndarray:
    """y[t] = b + sum_j W[:, :, j] x[t - (KT - 1 - j) DT], zeros before the first step."""
    Wc = W.reshape(N, C, KT).astype(np.float64)
    y = np.zeros(x.shape[:2] + (N,)) + B
    for t in range(x.shape[0]):
        for j in range(KT):
            s = t - (KT - 1 - j) * DT
            if s >= 0:
                y[t] += x[s].astype(np.float64) @ Wc[:, :, j].T
    return y


def test_a_causal_dilated_conv_runs_and_streams_with_its_frame_cache():
    model = rnnedge.Model.from_bytes(_conv_blob())
    x = rng.standard_normal((11, 2, C)).astype(np.float32)
    y = model.run(x)
    np.testing.assert_allclose(y, _numpy_conv(x), rtol=1e-5, atol=1e-5)
    stream = model.stream(2)
    steps = np.stack([stream.step(x[t]).copy() for t in range(x.shape[0])])
    assert np.array_equal(steps, y)  # the cache across steps = the whole-sequence conv
    stream.reset()  # zeros again: the same outputs from the start
    assert np.array_equal(np.stack([stream.step(x[t]).copy() for t in range(4)]), y[:4])


def test_a_conv_node_the_loader_cannot_prove_is_refused_naming_it():
    with pytest.raises(BlobError, match=r"node 0.*in|in.*node 0"):
        rnnedge.Model.from_bytes(_conv_blob(groups=2))  # 3 input channels in 2 groups


@pytest.mark.parametrize("quant", ["int8", "int16"])
def test_an_integer_conv_runs_and_streams_bit_for_bit_as_conv_q(quant):
    blob = _conv_blob(quant=quant)
    rec = read_blob(blob)
    wt, bias, q = (rec.tensors[k].array for k in rec.nodes[0].tensor if k >= 0)
    spec = QConvSpec(False, wt.astype(np.int64).T.reshape(N, C, KT, 1), bias.astype(np.int64),
                     Mult(q[24:].astype(np.int64), int(q[0])), KT, DT, 1, 1, (0, 0), 1, 0)
    model = rnnedge.Model.from_bytes(blob)
    s_in, s_out = model._qio
    xq = rng.integers(-32768, 32768, (11, 2, C))
    xq[0, 0, 0], xq[-1, -1, -1] = -32768, 32767
    want, _ = fx.conv_q(spec, xq, acc32=bool(q[2]))
    x = (xq * s_in).astype(np.float32)  # on the input grid: the binding's quantization gives xq
    y = model.run(x)
    assert np.array_equal(np.round(y.astype(np.float64) / s_out), want)
    stream = model.stream(2)
    assert np.array_equal(np.stack([stream.step(x[t]).copy() for t in range(11)]), y)


def _lookahead_state_graph() -> Graph:
    """x [3] -> a conv over time with 1 step of lookahead (value delay 1) -> a Copy whose output is
    the update of state s (init 20, outside the copy's range: the quantizer requantizes the
    update to s's scale with an Identity) -> y = copy + s."""
    r = np.random.default_rng(3)
    conv = Conv(r.standard_normal((4, 3, 3, 1)).astype(np.float32), r.standard_normal(4).astype(np.float32))
    vals = [Value("x", (3,), kind="input"), Value("c", (4,), delay=1), Value("r", (4,), delay=1),
            Value("s", (4,), kind="state", update=2, init=np.full(4, 20.0, np.float32)),
            Value("y", (4,), kind="output", delay=1)]  # fmt: skip
    nodes = [Node(conv, [0], [1], "conv"), Node(Copy(), [1], [2], "copy"),
             Node(Binary("Add"), [2, 3], [4], "add")]  # fmt: skip
    g = Graph(vals, nodes, 0, 4, TensorSpec("x", "TBF", [None, None, 3]),
              TensorSpec("y", "TBF", [None, None, 4]))  # fmt: skip
    plan_arena(g)
    check_graph(g)
    return g


def test_check_graph_refuses_a_delay_that_does_not_follow_the_node() -> None:
    """docs/graph.md section 6: a node's outputs lag as its inputs do (a conv's by up to its
    cache frames more); a value that does not is refused naming node and value."""
    g = _lookahead_state_graph()
    g.values[2].delay = 0
    with pytest.raises(ConvertError, match=r"node 1 \(copy\): value 2 \('r'\) has delay 0, but the node "
                                           r"reads values of delay 1"):  # fmt: skip
        check_graph(g)
    g = _lookahead_state_graph()
    g.values[1].delay = 3  # the conv keeps 2 frames: 2 steps of lookahead at most
    with pytest.raises(ConvertError, match=r"node 0 \(conv\): .* lags its input by 0 to 2 steps"):
        check_graph(g)


@pytest.mark.parametrize("quant", ["int16", "int8"])
def test_a_requantizing_identity_after_a_lookahead_conv_keeps_the_delay(quant: str) -> None:
    """The quantizer's Identity that requantizes a state's update reads the producer's output at
    the producer's scale: that value lags as the producer's output does (delay 1 here, not 0),
    so the Identity's node record skips the step its input skips; the C library's steps equal
    run_qgraph's bit for bit and the state takes zeros for the skipped step."""
    g = _lookahead_state_graph()
    x = rng.standard_normal((12, 2, 3)).astype(np.float32)
    qg = quantize_graph(g, quant, x)
    ident = [i for i, n in enumerate(qg.nodes) if n.name == "copy/requantize"]
    assert len(ident) == 1
    n = qg.nodes[ident[0]]
    assert [qg.values[v].delay for v in n.inputs + n.outputs] == [1, 1]
    blob = write_blob(qg)
    assert read_blob(blob).nodes[ident[0]].reserved[0] == 1  # the Identity skips step 0
    model = rnnedge.Model.from_bytes(blob)
    assert model.latency_steps == 1
    s = model.stream(2)
    ys = np.stack([s.step(x[t]).copy() for t in range(x.shape[0])])
    yq, _ = fx.run_qgraph(qg, fx.quantize(x, qg.in_scale))
    np.testing.assert_array_equal(ys, fx.dequantize(yq, qg.out_scale))
    s.reset()
    s.step(x[0])
    assert not s.state["s"].any()  # the skipped step's update: zeros
