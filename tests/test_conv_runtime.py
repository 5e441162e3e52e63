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
from rnnedge.errors import BlobError
from rnnedge.ir.graph import Graph, Node, Value, check_graph, plan_arena
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
