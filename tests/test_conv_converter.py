"""Convolutional front ends in the graph converter (rnnedge/converter/conv.py, docs/converter.md
"Convolutions", docs/graph.md section 6): the trained fixtures of tests/data/fixtures/conv/
(tests/make_conv_fixtures.py) against onnxruntime in one run and step by step (latency
accounted), chunked streaming equal to one run; hand-built graphs for the feature-axis convs,
Pad, BatchNormalization, PRelu and Gelu; refusals by name."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from rnnedge.converter import to_graph  # noqa: E402
from rnnedge.errors import ConvertError, UnsupportedOpError  # noqa: E402
from rnnedge.ir.graph import Binary, Conv  # noqa: E402
from rnnedge.reference import initial_graph_state, run_graph  # noqa: E402

CONV = Path(__file__).parent / "data" / "fixtures" / "conv"
INDEX = json.loads((CONV / "index.json").read_text())
RTOL = 1e-5


def ort_seq(model: Path | onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    """onnxruntime over x [T, B, ...] (the model takes [B, T, ...]) -> [T, B, ...]."""
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    src = str(model) if isinstance(model, Path) else model.SerializeToString()
    s = ort.InferenceSession(src, opts, providers=["CPUExecutionProvider"])
    return np.swapaxes(s.run(None, {s.get_inputs()[0].name: np.swapaxes(x, 0, 1)})[0], 0, 1)


def rel_err(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-30))


@pytest.mark.parametrize("name", sorted(INDEX))
def test_fixture_run_equals_onnxruntime(name: str) -> None:
    x = np.load(CONV / f"{name}.input.npy")
    g = to_graph(CONV / f"{name}.onnx")
    assert any(isinstance(n.op, Conv) for n in g.nodes)
    assert g.latency == INDEX[name]["latency"]
    ref = ort_seq(CONV / f"{name}.onnx", x)
    y, _ = run_graph(g, x, flush=True)
    assert y.shape == ref.shape
    assert rel_err(y, ref) < RTOL


@pytest.mark.parametrize("name", sorted(INDEX))
def test_fixture_streams(name: str) -> None:
    """Step by step: the output lags ONNX's by the latency (zeros first); chunks of any size
    equal one streamed run bit for bit."""
    x = np.load(CONV / f"{name}.input.npy")
    g = to_graph(CONV / f"{name}.onnx")
    L = g.latency
    ref = ort_seq(CONV / f"{name}.onnx", x)
    whole, _ = run_graph(g, x)
    st = initial_graph_state(g, x.shape[1])
    steps = []
    for t in range(x.shape[0]):
        y, st = run_graph(g, x[t : t + 1], st)
        steps.append(y)
    stepped = np.concatenate(steps)
    assert np.array_equal(stepped, whole)
    st = initial_graph_state(g, x.shape[1])
    parts = []
    for a, b in ((0, 3), (3, 4), (4, 9), (9, x.shape[0])):
        y, st = run_graph(g, x[a:b], st)
        parts.append(y)
    assert np.array_equal(np.concatenate(parts), whole)
    assert not np.any(whole[:L])
    assert rel_err(whole[L:], ref[: x.shape[0] - L]) < RTOL


@pytest.mark.parametrize("name", ["kws_chomp", "crnn_conv2d"])
def test_batchnorm_folds_into_conv(name: str) -> None:
    """The legacy exporter's BatchNormalization nodes after a Conv vanish into it: no Binary
    affine before the first recurrent node."""
    assert any(n.op_type == "BatchNormalization" for n in onnx.load(CONV / f"{name}.onnx").graph.node)
    g = to_graph(CONV / f"{name}.onnx")
    assert sum("BatchNormalization" in f for f in g.folded) == (2 if name == "kws_chomp" else 1)
    assert not any(isinstance(n.op, Binary) for n in g.nodes[:3])


# -- hand-built graphs --------------------------------------------------------------------------
def _model(nodes: list, inits: dict[str, np.ndarray], x_shape: list, y_shape: list, opset: int = 17) -> onnx.ModelProto:
    g = helper.make_graph(
        nodes, "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, y_shape)],
        [numpy_helper.from_array(np.asarray(v), k) for k, v in inits.items()],
    )  # fmt: skip
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])


def _check(m: onnx.ModelProto, x: np.ndarray, latency: int = 0) -> None:
    g = to_graph(m)
    assert g.latency == latency
    y, _ = run_graph(g, x, flush=True)
    ref = ort_seq(m, x)
    assert y.shape == ref.shape
    assert rel_err(y, ref) < RTOL


def _rng() -> np.random.Generator:
    return np.random.default_rng(7)


def _seq_conv(conv_nodes: list, inits: dict, c_in: int, c_out: int, w_in: int, w_out: int) -> onnx.ModelProto:
    """x [B, T, c_in * w_in] -> [B, 1... ]: reshape to [B, T, c_in, w_in], to [B, c_in, T, w_in],
    the conv node(s) from 'a' to 'b' [B, c_out, T, w_out], back to [B, T, c_out * w_out]."""
    inits = dict(inits, s1=np.array([0, 0, c_in, w_in], np.int64), s2=np.array([0, 0, -1], np.int64))
    nodes = [helper.make_node("Reshape", ["x", "s1"], ["r"]),
             helper.make_node("Transpose", ["r"], ["a"], perm=[0, 2, 1, 3]),
             *conv_nodes,
             helper.make_node("Transpose", ["b"], ["bt"], perm=[0, 2, 1, 3]),
             helper.make_node("Reshape", ["bt", "s2"], ["y"])]  # fmt: skip
    return _model(nodes, inits, ["B", "T", c_in * w_in], ["B", "T", c_out * w_out])


@pytest.mark.parametrize("k,s,pads,d,groups", [
    (3, 2, (1, 1), 1, 1), (3, 1, (2, 0), 2, 2), (2, 3, (0, 1), 1, 4), (5, 1, (2, 2), 1, 1),
])  # fmt: skip
def test_conv_over_features(k: int, s: int, pads: tuple, d: int, groups: int) -> None:
    """A Conv2d with time kernel 1 over the features of each step: stride, pads, dilation, groups."""
    rng = _rng()
    c_in, c_out, w_in = 4, 8, 9
    w_out = (w_in + sum(pads) - (k - 1) * d - 1) // s + 1
    wt = rng.standard_normal((c_out, c_in // groups, 1, k)).astype(np.float32)
    b = rng.standard_normal(c_out).astype(np.float32)
    node = helper.make_node("Conv", ["a", "w", "b0"], ["b"], kernel_shape=[1, k], strides=[1, s],
                            pads=[0, pads[0], 0, pads[1]], dilations=[1, d], group=groups)
    m = _seq_conv([node], {"w": wt, "b0": b}, c_in, c_out, w_in, w_out)
    _check(m, rng.standard_normal((5, 2, c_in * w_in)).astype(np.float32))


@pytest.mark.parametrize("k,s,pads,outpad,groups", [(3, 2, (1, 1), 1, 1), (4, 2, (1, 1), 0, 2), (3, 1, (0, 0), 0, 1)])
def test_conv_transpose_over_features(k: int, s: int, pads: tuple, outpad: int, groups: int) -> None:
    rng = _rng()
    c_in, c_out, w_in = 4, 6, 5
    w_out = (w_in - 1) * s + k - sum(pads) + outpad
    wt = rng.standard_normal((c_in, c_out // groups, 1, k)).astype(np.float32)
    b = rng.standard_normal(c_out).astype(np.float32)
    node = helper.make_node("ConvTranspose", ["a", "w", "b0"], ["b"], kernel_shape=[1, k], strides=[1, s],
                            pads=[0, pads[0], 0, pads[1]], output_padding=[0, outpad], group=groups)
    m = _seq_conv([node], {"w": wt, "b0": b}, c_in, c_out, w_in, w_out)
    _check(m, rng.standard_normal((5, 2, c_in * w_in)).astype(np.float32))


def test_conv_time_and_features_with_auto_pad_and_time_last() -> None:
    """A Conv2d over [B, C, F, T] (time the last axis): causal in time by a Pad, SAME over F."""
    rng = _rng()
    c_in, c_out, w = 2, 3, 6
    wt = rng.standard_normal((c_out, c_in, 3, 2)).astype(np.float32)  # [M, C, kF, kT]
    inits = {"w": wt, "s1": np.array([0, 0, c_in, w], np.int64), "s2": np.array([0, 0, -1], np.int64),
             "p": np.array([0, 0, 0, 1, 0, 0, 0, 0], np.int64)}
    nodes = [helper.make_node("Reshape", ["x", "s1"], ["r"]),
             helper.make_node("Transpose", ["r"], ["a"], perm=[0, 2, 3, 1]),  # [B, C, F, T]
             helper.make_node("Pad", ["a", "p"], ["ap"]),
             helper.make_node("Conv", ["ap", "w"], ["b"], kernel_shape=[3, 2], pads=[1, 0, 1, 0]),
             helper.make_node("Transpose", ["b"], ["bt"], perm=[0, 3, 1, 2]),
             helper.make_node("Reshape", ["bt", "s2"], ["y"])]  # fmt: skip
    m = _model(nodes, inits, ["B", "T", c_in * w], ["B", "T", c_out * w])
    _check(m, rng.standard_normal((7, 2, c_in * w)).astype(np.float32))


@pytest.mark.parametrize("mode", ["constant", "reflect", "edge"])
def test_pad_over_features(mode: str) -> None:
    rng = _rng()
    inits = {"p": np.array([0, 0, 2, 0, 0, 1], np.int64), "v": np.array(0.5, np.float32)}
    ins = ["x", "p", "v"] if mode == "constant" else ["x", "p"]
    m = _model([helper.make_node("Pad", ins, ["y"], mode=mode)], inits, ["B", "T", 5], ["B", "T", 8])
    _check(m, rng.standard_normal((4, 2, 5)).astype(np.float32))


def test_batchnorm_unfoldable_is_an_affine_and_prelu_gelu() -> None:
    """BatchNormalization after a Relu (nothing to fold into): per-channel Mul and Add; PRelu per
    channel and scalar; Gelu (opset 20) both forms; HardSwish."""
    rng = _rng()
    C = 4
    inits = {
        "sc": rng.uniform(0.5, 2, C).astype(np.float32), "bb": rng.standard_normal(C).astype(np.float32),
        "mu": rng.standard_normal(C).astype(np.float32), "var": rng.uniform(0.5, 2, C).astype(np.float32),
        "sl": rng.uniform(0, 0.5, (C, 1)).astype(np.float32), "s1": np.array(0.2, np.float32),
        "w": rng.standard_normal((C, 3, 3)).astype(np.float32),
    }  # fmt: skip
    nodes = [helper.make_node("Transpose", ["x"], ["a"], perm=[0, 2, 1]),  # [B, 3, T]
             helper.make_node("Conv", ["a", "w"], ["c"], pads=[1, 1]),  # lookahead 1
             helper.make_node("Relu", ["c"], ["r"]),
             helper.make_node("BatchNormalization", ["r", "sc", "bb", "mu", "var"], ["n"]),
             helper.make_node("PRelu", ["n", "sl"], ["p"]),
             helper.make_node("PRelu", ["p", "s1"], ["p2"]),
             helper.make_node("Gelu", ["p2"], ["g1"]),
             helper.make_node("Gelu", ["g1"], ["g2"], approximate="tanh"),
             helper.make_node("HardSwish", ["g2"], ["h"]),
             helper.make_node("Transpose", ["h"], ["y"], perm=[0, 2, 1])]  # fmt: skip
    m = _model(nodes, inits, ["B", "T", 3], ["B", "T", C], opset=20)
    g = to_graph(m)
    assert any(isinstance(n.op, Binary) and n.op.kind == "Mul" for n in g.nodes)
    _check(m, rng.standard_normal((6, 2, 3)).astype(np.float32), latency=1)


def _time_conv(attrs: dict, pre: list | None = None, post: list | None = None, k: int = 3) -> onnx.ModelProto:
    rng = _rng()
    nodes = [helper.make_node("Transpose", ["x"], ["a0"], perm=[0, 2, 1]), *(pre or []),
             helper.make_node("Conv", ["a", "w"], ["c"], **attrs), *(post or []),
             helper.make_node("Transpose", ["c2" if post else "c"], ["y"], perm=[0, 2, 1])]  # fmt: skip
    if not pre:
        nodes[0].output[0] = "a"
    return _model(nodes, {"w": rng.standard_normal((2, 3, k)).astype(np.float32),
                          "p": np.array([0, 0, 2, 0, 0, 0], np.int64)}, ["B", "T", 3], ["B", "T", 2])


def test_refuses_stride_over_time() -> None:
    with pytest.raises(UnsupportedOpError, match="strides.*time axis"):
        to_graph(_time_conv({"strides": [2], "pads": [2, 0]}))


def test_refuses_a_conv_that_shortens_time() -> None:
    with pytest.raises(UnsupportedOpError, match="2 steps shorter"):
        to_graph(_time_conv({"pads": [0, 0]}))


def test_refuses_padding_before_more_than_the_kernel() -> None:
    with pytest.raises(UnsupportedOpError, match="more than"):
        to_graph(_time_conv({"pads": [3, 0]}))


def test_refuses_a_time_pad_read_by_another_op() -> None:
    pre = [helper.make_node("Pad", ["a0", "p"], ["a1"]), helper.make_node("Relu", ["a1"], ["a"])]
    with pytest.raises(UnsupportedOpError, match="Relu of a tensor with time padding"):
        to_graph(_time_conv({}, pre=pre))


def test_refuses_a_wrong_chomp_and_an_unchomped_output() -> None:
    post = [helper.make_node("Slice", ["c", "st", "en", "ax"], ["c2"])]
    m = _time_conv({"pads": [2, 2]}, post=post)
    m.graph.initializer.extend([numpy_helper.from_array(np.array([0], np.int64), "st"),
                                numpy_helper.from_array(np.array([-1], np.int64), "en"),
                                numpy_helper.from_array(np.array([2], np.int64), "ax")])
    with pytest.raises(UnsupportedOpError, match=r"only \[0:-2\]"):
        to_graph(m)
    with pytest.raises(UnsupportedOpError, match="Transpose of a tensor with time padding"):
        to_graph(_time_conv({"pads": [2, 2]}))


def test_refuses_paths_with_different_delays() -> None:
    """x + conv(x) where the conv looks ahead: the two paths lag by 0 and 1 steps."""
    rng = _rng()
    nodes = [helper.make_node("Transpose", ["x"], ["a"], perm=[0, 2, 1]),
             helper.make_node("Conv", ["a", "w"], ["c"], pads=[1, 1]),
             helper.make_node("Add", ["a", "c"], ["s"]),
             helper.make_node("Transpose", ["s"], ["y"], perm=[0, 2, 1])]  # fmt: skip
    m = _model(nodes, {"w": rng.standard_normal((3, 3, 3)).astype(np.float32)}, ["B", "T", 3], ["B", "T", 3])
    with pytest.raises(UnsupportedOpError, match=r"node 'Add'|Add.*lag the signal by different"):
        to_graph(m)


# -- quantization (QDense's rules per output channel) -------------------------------------------
@pytest.mark.parametrize("transpose,groups", [(False, 1), (False, 2), (True, 1), (True, 2)])
@pytest.mark.parametrize("wfmt,qmax", [("s8", 127), ("s16", 32767)])
def test_quantize_conv_per_output_channel(transpose: bool, groups: int, wfmt: str, qmax: int) -> None:
    from rnnedge.quant.arith import conv_channels, quantize_conv

    rng = _rng()
    shape = (4, 6 // groups, 1, 3) if transpose else (6, 4 // groups, 3, 2)
    # channels of very different sizes: one scale per output channel keeps the small ones
    w = rng.standard_normal(shape) * (10.0 ** rng.integers(-3, 1, (shape[0], 1, 1, 1)))
    if transpose:
        w = rng.standard_normal(shape) * (10.0 ** rng.integers(-3, 1, (1, shape[1], 1, 1)))
    conv = Conv(w.astype(np.float32), rng.standard_normal(6).astype(np.float32), groups=groups, transpose=transpose)
    s_in, s_out = 2.0**-10, 2.0**-8
    q = quantize_conv(conv, wfmt, s_in, s_out, "node 0")
    assert q.W.dtype == (np.int8 if wfmt == "s8" else np.int16) and q.W.shape == w.shape
    rows = conv_channels(conv, np.asarray(conv.weight, np.float64) * s_in)
    qrows = conv_channels(conv, q.W.astype(np.int64))
    assert rows.shape[0] == 6
    assert np.all(np.abs(qrows).max(axis=1) == qmax)  # every channel uses its whole range
    sigma = np.abs(rows).max(axis=1) / qmax
    assert np.all(np.abs(qrows * sigma[:, None] - rows) <= sigma[:, None] / 2 + 1e-12)
    assert np.all(np.abs(q.mult.real() - sigma / s_out) <= 2.0 ** -(q.mult.shift + 1))  # one shared shift
    assert np.array_equal(q.bias, np.floor(conv.bias.astype(np.float64) / s_out + 0.5).astype(np.int32))
    assert q.acc_bound == int((np.abs(qrows).sum(axis=1) * 32768).max())


def test_step_function_with_its_own_conv_cache() -> None:
    """A step function forward(x_t, cache) that concatenates its cache with the new frame, runs a
    Conv over the window and returns the window's last frames as the next cache (the exporters'
    streaming form): a conv over a feature axis within the step, the cache a STATE value; equal
    to onnxruntime called once per step with the cache fed back."""
    rng = _rng()
    C, M, K = 3, 4, 3
    inits = {"w": rng.standard_normal((M, C, K)).astype(np.float32), "b": rng.standard_normal(M).astype(np.float32),
             "ax2": np.array([2], np.int64), "one": np.array([1], np.int64), "big": np.array([K], np.int64)}
    nodes = [helper.make_node("Unsqueeze", ["x_t", "ax2"], ["xu"]),
             helper.make_node("Concat", ["cache", "xu"], ["win"], axis=2),  # [B, C, K]
             helper.make_node("Conv", ["win", "w", "b"], ["c"]),  # [B, M, 1]
             helper.make_node("Squeeze", ["c", "ax2"], ["y_t"]),
             helper.make_node("Slice", ["win", "one", "big", "ax2"], ["next_cache"])]  # fmt: skip
    g = helper.make_graph(
        nodes, "step",
        [helper.make_tensor_value_info("x_t", TensorProto.FLOAT, ["B", C]),
         helper.make_tensor_value_info("cache", TensorProto.FLOAT, ["B", C, K - 1])],
        [helper.make_tensor_value_info("y_t", TensorProto.FLOAT, ["B", M]),
         helper.make_tensor_value_info("next_cache", TensorProto.FLOAT, ["B", C, K - 1])],
        [numpy_helper.from_array(v, k) for k, v in inits.items()],
    )  # fmt: skip
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    graph = to_graph(m)
    assert graph.explicit_state and any(isinstance(n.op, Conv) and n.op.kt == 1 for n in graph.nodes)
    x = rng.standard_normal((6, 2, C)).astype(np.float32)
    y, _ = run_graph(graph, x)
    s = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    cache = np.zeros((2, C, K - 1), np.float32)
    ref = []
    for t in range(x.shape[0]):
        yt, cache = s.run(None, {"x_t": x[t], "cache": cache})
        ref.append(yt)
    assert rel_err(y, np.stack(ref)) < RTOL


def test_blob_writer_conv_records(monkeypatch: pytest.MonkeyPatch) -> None:
    """The writer's CONV record (docs/graph.md section 6): params kt, dt, groups, kw, sw, pads
    along W, dw; the node's skip (its input's delay) in reserved[0]; latency_steps in the
    metadata. A build whose blob format has no conv op code refuses the node by name."""
    from rnnedge.blob import spec
    from rnnedge.blob.write import _RecordOut, conv_record, metadata, write_blob

    g = to_graph(CONV / "lookahead_gru.onnx")
    assert metadata(g)["latency_steps"] == 2
    conv = next(n.op for n in g.nodes if isinstance(n.op, Conv))
    rec = _RecordOut(op=0, skip=2)
    if not hasattr(spec, "OP_CONV"):
        with pytest.raises(UnsupportedOpError, match=r"node 0 \(.*\): CONV node: .*no conv op"):
            write_blob(g)
        monkeypatch.setattr(spec, "OP_CONV", 15, raising=False)  # the code section 6 plans
    conv_record(rec, conv)
    assert rec.op == spec.OP_CONV and rec.param == [5, 1, 1, 1, 1, 0, 0, 1]
    fields = spec.NODE_STRUCT.unpack(rec.pack())
    assert fields[-2:] == (2, 0)


def test_recurrent_weight_computed_from_data_is_refused() -> None:
    """Found by a mutation fuzz of the conv fixtures: a conv output wired into an LSTM's R input
    was an AttributeError; now an UnsupportedOpError naming the node and the input."""
    m = onnx.load(CONV / "frame_conv_lstm.onnx")
    conv_out = next(n.output[0] for n in m.graph.node if n.op_type == "Conv")
    lstm = next(n for n in m.graph.node if n.op_type == "LSTM")
    lstm.input[2] = conv_out
    with pytest.raises(UnsupportedOpError, match=r"LSTM.*input 2 \(R\) is computed from the data"):
        to_graph(m)


@pytest.mark.parametrize("attrs,match", [
    ({"strides": [1, 1]}, r"strides.*1 values >= 1"), ({"dilations": [0]}, r"dilations.*1 values >= 1"),
    ({"pads": [-1, 0]}, r"pads.*2 values >= 0"), ({"pads": [2]}, r"pads.*2 values >= 0"),
])  # fmt: skip
def test_bad_conv_attributes_are_named(attrs: dict, match: str) -> None:
    with pytest.raises(UnsupportedOpError, match=match):
        to_graph(_time_conv(attrs))


def test_batchnorm_with_mismatched_parameters_is_named() -> None:
    rng = _rng()
    nodes = [helper.make_node("Transpose", ["x"], ["a"], perm=[0, 2, 1]),
             helper.make_node("BatchNormalization", ["a", "sc", "bb", "mu", "var"], ["n"]),
             helper.make_node("Transpose", ["n"], ["y"], perm=[0, 2, 1])]  # fmt: skip
    inits = {"sc": np.ones(3, np.float32), "bb": np.zeros(2, np.float32), "mu": np.zeros(3, np.float32),
             "var": rng.uniform(1, 2, 3).astype(np.float32)}
    with pytest.raises(ConvertError, match=r"BatchNormalization scale, B, mean, var of 3, 2, 3, 3"):
        to_graph(_model(nodes, inits, ["B", "T", 3], ["B", "T", 3]))


def test_bad_output_padding_and_variance_are_named() -> None:
    rng = _rng()
    node = helper.make_node("ConvTranspose", ["a", "w"], ["b"], kernel_shape=[1, 3], strides=[1, 2],
                            output_padding=[0, -1])
    m = _seq_conv([node], {"w": rng.standard_normal((2, 2, 1, 3)).astype(np.float32)}, 2, 2, 3, 7)
    with pytest.raises(UnsupportedOpError, match=r"output_padding.*2 values >= 0"):
        to_graph(m)
    nodes = [helper.make_node("Transpose", ["x"], ["a"], perm=[0, 2, 1]),
             helper.make_node("BatchNormalization", ["a", "sc", "bb", "mu", "var"], ["n"], epsilon=0.0),
             helper.make_node("Transpose", ["n"], ["y"], perm=[0, 2, 1])]  # fmt: skip
    inits = {"sc": np.ones(3, np.float32), "bb": np.zeros(3, np.float32), "mu": np.zeros(3, np.float32),
             "var": np.array([1.0, 0.0, 2.0], np.float32)}
    with pytest.raises(ConvertError, match=r"input_var \+ epsilon is not positive"):
        to_graph(_model(nodes, inits, ["B", "T", 3], ["B", "T", 3]))


def test_chained_lookahead_convs_and_a_last_step_equal_onnx() -> None:
    """Two 'same' convs with a Relu between (lookahead 1 + 2 = latency 3), then a GRU whose last
    step is the output: run_graph(flush=True) equals onnxruntime, because each conv reads zeros
    past its own input's end and the GRU stops at its input's last real step (docs/graph.md
    section 6 refinements); zeros fed at the model input alone would not."""
    rng = _rng()
    H = 5
    inits = {"w1": rng.standard_normal((4, 3, 3)).astype(np.float32), "b1": rng.standard_normal(4).astype(np.float32),
             "w2": rng.standard_normal((4, 4, 5)).astype(np.float32), "b2": rng.standard_normal(4).astype(np.float32),
             "W": rng.standard_normal((1, 3 * H, 4)).astype(np.float32) * 0.5,
             "R": rng.standard_normal((1, 3 * H, H)).astype(np.float32) * 0.5}
    nodes = [helper.make_node("Transpose", ["x"], ["a"], perm=[0, 2, 1]),  # [B, 3, T]
             helper.make_node("Conv", ["a", "w1", "b1"], ["c1"], pads=[1, 1]),
             helper.make_node("Relu", ["c1"], ["r1"]),
             helper.make_node("Conv", ["r1", "w2", "b2"], ["c2"], pads=[2, 2]),
             helper.make_node("Transpose", ["c2"], ["tb"], perm=[2, 0, 1]),  # [T, B, 4]
             helper.make_node("GRU", ["tb", "W", "R"], ["Y", "Y_h"], hidden_size=H),
             helper.make_node("Squeeze", ["Y_h", "zero"], ["y"])]  # fmt: skip
    inits["zero"] = np.array([0], np.int64)
    m = _model(nodes, inits, ["B", "T", 3], ["B", H])
    g = to_graph(m)
    assert g.latency == 3 and g.many_to_one
    x = rng.standard_normal((8, 2, 3)).astype(np.float32)
    s = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    ref = s.run(None, {"x": np.swapaxes(x, 0, 1)})[0]
    y, _ = run_graph(g, x, flush=True)
    assert rel_err(y[0], ref) < RTOL
    naive, _ = run_graph(g, np.concatenate([x, np.zeros((3, 2, 3), np.float32)]))
    assert rel_err(naive[0], ref) > 1e-3  # zero input frames are not ONNX's end padding here


def test_zero_pad_of_the_feature_axis_folds_into_the_conv() -> None:
    """nn.ZeroPad2d before a Conv2d (time kernel 1): the zeros become the conv's W pads (no
    SLICE / CONCAT nodes), equal to onnxruntime."""
    from rnnedge.ir.graph import Concat

    rng = _rng()
    c_in, c_out, w_in = 2, 3, 6
    wt = rng.standard_normal((c_out, c_in, 1, 3)).astype(np.float32)
    nodes = [helper.make_node("Pad", ["a", "p"], ["ap"]),
             helper.make_node("Conv", ["ap", "w"], ["b"], kernel_shape=[1, 3], strides=[1, 2], pads=[0, 1, 0, 0])]
    m = _seq_conv(nodes, {"w": wt, "p": np.array([0, 0, 0, 2, 0, 0, 0, 1], np.int64)}, c_in, c_out, w_in, 5)
    g = to_graph(m)
    assert not any(isinstance(n.op, Concat) for n in g.nodes)
    conv = next(n.op for n in g.nodes if isinstance(n.op, Conv))
    assert conv.pad_w == (3, 1)
    _check(m, rng.standard_normal((5, 2, c_in * w_in)).astype(np.float32))


def test_conv_weight_from_data_and_an_if_without_condition_are_named() -> None:
    """Found by a mutation fuzz of the conv fixtures: a Conv weight wired to a data tensor was an
    AttributeError (describe() did not know the graph converter's data tensors), an If node
    without inputs an IndexError; both are ConvertErrors naming what is wrong."""
    m = onnx.load(CONV / "kws_pads.onnx")
    first = next(n for n in m.graph.node if n.op_type == "Conv")
    second = [n for n in m.graph.node if n.op_type == "Conv"][1]
    second.input[1] = first.input[0]
    with pytest.raises(ConvertError, match=r"input W \(the weight\) must be a constant, got a data tensor \["):
        to_graph(m)
    m = onnx.load(CONV / "crnn_conv2d.onnx")
    const = next(n for n in m.graph.node if n.op_type == "Constant" and n.output[0].startswith("/gru"))
    const.op_type = "If"
    with pytest.raises(ConvertError, match=r"If node .* has no condition input"):
        to_graph(m)


@pytest.mark.parametrize("form", ["time", "one_position"])
def test_pointwise_conv_of_one_position_is_a_dense_and_quantizes(form: str) -> None:
    """A 1x1 Conv1d over time ([B, C, T], kernel 1) or over a per-step axis of size 1 ([N, C, 1],
    Keras Conv1D k1 on a step: DTLN stage 2) is a Dense over the channels: no CONV node, so
    int16 / int8 quantize it (an integer CONV was refused: run_qgraph has no conv oracle yet)."""
    from rnnedge.ir.graph import Dense
    from rnnedge.quant.graph import quantize_graph

    rng = np.random.default_rng(3)
    W, b = rng.standard_normal((3, 4, 1)).astype(np.float32), rng.standard_normal(3).astype(np.float32)
    if form == "time":
        nodes = [helper.make_node("Transpose", ["x"], ["xc"], perm=[0, 2, 1]),
                 helper.make_node("Conv", ["xc", "W", "b"], ["yc"], kernel_shape=[1]),
                 helper.make_node("Transpose", ["yc"], ["y"], perm=[0, 2, 1])]
        m = _model(nodes, {"W": W, "b": b}, ["B", "T", 4], ["B", "T", 3])
    else:
        nodes = [helper.make_node("Unsqueeze", ["x", "two"], ["xc"]),
                 helper.make_node("Conv", ["xc", "W", "b"], ["yc"], kernel_shape=[1]),
                 helper.make_node("Squeeze", ["yc", "two"], ["y"])]
        m = _model(nodes, {"W": W, "b": b, "two": np.array([2], np.int64)}, ["T", 4], ["T", 3])
    g = to_graph(m)
    assert not any(isinstance(n.op, Conv) for n in g.nodes) and any(isinstance(n.op, Dense) for n in g.nodes)
    x = rng.standard_normal((6, 2, 4)).astype(np.float32)
    if form == "time":
        want = ort_seq(m, x)
    else:
        s = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
        want = np.stack([s.run(None, {"x": x[:, b]})[0] for b in range(2)], axis=1)
    y, _ = run_graph(g, x)
    assert rel_err(y.reshape(want.shape), want) < RTOL
    for quant in ("int16", "int8"):
        assert quantize_graph(g, quant, x).quant == quant
