"""gtcrn's spellings (docs/real-models.md, the `gtcrn` row; docs/graph.md section 6, "caches within
a step"), each in a small onnx.helper graph matched against onnxruntime: a step input with several
per-step axes ([1, F, 1, 2]: batch, bins, one frame, re/im), Gather of constant index arrays (its
nn.Unfold), a Conv over two per-step axes where one has one element (the frame) or is the whole
window of a cache Concat within the step (folded into the channels), the caches written back
by ScatterND into a copy of the state (a box: Slices and Concats), and a GRU of one step whose
batch is a per-step axis (the bins: the cell written as graph nodes). f32 through the C library
within 1e-5 of onnxruntime stepped with the state fed back; int16 / int8 within the bars and equal
to fixedpoint.run_qgraph bit for bit; what is none of these refused by name."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

import rnnedge  # noqa: E402
from rnnedge import fixedpoint as fx  # noqa: E402
from rnnedge.converter import to_graph  # noqa: E402
from rnnedge.errors import ConvertError, UnsupportedOpError  # noqa: E402
from rnnedge.ir.graph import Concat, Conv, Slice  # noqa: E402
from rnnedge.reference import graph_layout, graph_rows, run_graph  # noqa: E402

RTOL = 1e-5
QBAR = {"int16": 1e-3, "int8": 1e-2}  # of the float output's range, as tests/test_conv_cache.py
STATE = {"cache": "cache_out"}
C, W = 4, 3  # channels and bins after the first conv
# (first, end) frame of each dilated conv's cache slot in the state, its dilation, its op (gtcrn's decoder
# writes ConvTranspose, stride 1, pads (k - 1) d along time: a Conv with the kernel flipped)
SLOTS = [(0, 2, 1, "Conv"), (2, 6, 2, "Conv"), (6, 10, 2, "ConvTranspose")]
FRAMES = SLOTS[-1][1]


def _i64(*v: int) -> np.ndarray:
    return np.array(v, np.int64)


def _box(lo: int, hi: int) -> np.ndarray:
    """ScatterND indices of cache[0:1, :, lo:hi, :] in row-major order (PyTorch's export)."""
    g = np.meshgrid(np.arange(1), np.arange(C), np.arange(lo, hi), np.arange(W), indexing="ij")
    return np.stack(g, -1).astype(np.int64)


def _vi(name: str, shape: list) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


def mini_gtcrn(box: np.ndarray | None = None) -> onnx.ModelProto:
    """mix [1, 6, 1, 2] (batch, bins, frame, re/im) -> re, im by Gather -> [1, 2, 1, 6] -> a zero
    Pad and the unfold Gathers -> [1, 6, 1, 6] -> Conv k(1, 3) stride (1, 2) -> PRelu -> two
    grouped convs k(3, 3), dilation 1 and 2 over time and a ConvTranspose (dilation 2, pads 4 over
    time, then a BatchNormalization), each reading Concat(its cache slot, frame) within the step;
    the slots written back by ScatterND; cache [2, 1, C, 10, W] (slot 1 unused); the output
    Reshape-d to [W, 1, C], the batch of 1 moved between the step's axes, as gtcrn's decoder does."""
    rng = np.random.default_rng(7)
    n = helper.make_node
    inits = {
        "i0": np.array(0, np.int64), "i1": np.array(1, np.int64), "ax1": _i64(1), "i00": np.array([[0]], np.int64),
        "pads": _i64(0, 0, 0, 1, 0, 0, 0, 1), "win": np.stack([np.arange(k, k + 6) for k in range(3)]).astype(np.int64),
        "s6": _i64(1, 6, 1, 6), "s5": _i64(1, 1, C, FRAMES, W), "sw": _i64(W, 1, C), "ax2": _i64(2), "one": _i64(1), "end": _i64(2**62),
        "Wa": rng.standard_normal((C, 6, 1, 3)).astype(np.float32), "ba": rng.standard_normal(C).astype(np.float32),
        "slope": np.array([0.25], np.float32),
        "box0": _box(0, 2) if box is None else box, "box1": _box(2, 6), "box2": _box(6, 10),
        "bn_s": rng.uniform(0.5, 2, C).astype(np.float32), "bn_b": rng.standard_normal(C).astype(np.float32),
        "bn_m": rng.standard_normal(C).astype(np.float32), "bn_v": rng.uniform(0.5, 2, C).astype(np.float32),
    }
    nodes = [
        n("Gather", ["mix", "i0"], ["re"], axis=3), n("Gather", ["mix", "i1"], ["im"], axis=3),
        n("Transpose", ["re"], ["re_t"], perm=[0, 2, 1]), n("Transpose", ["im"], ["im_t"], perm=[0, 2, 1]),
        n("Unsqueeze", ["re_t", "ax1"], ["re_u"]), n("Unsqueeze", ["im_t", "ax1"], ["im_u"]),
        n("Concat", ["re_u", "im_u"], ["feat"], axis=1),  # [1, 2, 1, 6]
        n("Pad", ["feat", "pads"], ["padded"]),  # [1, 2, 1, 8]
        n("Gather", ["padded", "i00"], ["g1"], axis=2),  # [1, 2, 1, 1, 8]
        n("Gather", ["g1", "win"], ["g2"], axis=4),  # [1, 2, 1, 1, 3, 6]
        n("Transpose", ["g2"], ["g3"], perm=[0, 1, 2, 4, 3, 5]),
        n("Reshape", ["g3", "s6"], ["unfolded"]),  # [1, 6, 1, 6]
        n("Conv", ["unfolded", "Wa", "ba"], ["a"], kernel_shape=[1, 3], pads=[0, 1, 0, 1], strides=[1, 2]),
        n("PRelu", ["a", "slope"], ["frame0"]),  # [1, C, 1, W]
        n("Gather", ["cache", "i0"], ["c0"], axis=0),  # [1, C, FRAMES, W]
    ]
    state, frame = "c0", "frame0"
    for k, (lo, hi, d, op) in enumerate(SLOTS):
        inits[f"lo{k}"], inits[f"hi{k}"] = _i64(lo), _i64(hi)
        inits[f"W{k}"] = rng.standard_normal((C, 1, 3, 3)).astype(np.float32)
        inits[f"b{k}"] = rng.standard_normal(C).astype(np.float32)
        nodes += [
            n("Slice", [state, f"lo{k}", f"hi{k}", "ax2"], [f"slot{k}"]),
            n("Concat", [f"slot{k}", frame], [f"win{k}"], axis=2),  # [1, C, 1 + 2 d, W]
            n(op, [f"win{k}", f"W{k}", f"b{k}"], [f"out{k}" if op == "ConvTranspose" else f"frame{k + 1}"],
              kernel_shape=[3, 3], pads=[0, 1, 0, 1] if op == "Conv" else [2 * d, 1, 2 * d, 1], group=C,
              dilations=[d, 1], name=f"dilated{k}"),
            n("Slice", [f"win{k}", "one", "end", "ax2"], [f"next{k}"]),
            n("ScatterND", [state, f"box{k}", f"next{k}"], [f"c{k + 1}"], name=f"write{k}"),
        ]
        if op == "ConvTranspose":
            nodes.append(n("BatchNormalization", [f"out{k}", "bn_s", "bn_b", "bn_m", "bn_v"], [f"frame{k + 1}"]))
        state, frame = f"c{k + 1}", f"frame{k + 1}"
    nodes += [n("Transpose", [frame], ["ft"], perm=[0, 2, 3, 1]), n("Reshape", ["ft", "sw"], ["enh"]),
              n("Reshape", [state, "s5"], ["c_all"]),
              n("ScatterND", ["cache", "i00", "c_all"], ["cache_out"])]
    g = helper.make_graph(nodes, "mini_gtcrn", [_vi("mix", [1, 6, 1, 2]), _vi("cache", [2, 1, C, FRAMES, W])],
                          [_vi("enh", [W, 1, C]), _vi("cache_out", [2, 1, C, FRAMES, W])],
                          [numpy_helper.from_array(a, k) for k, a in inits.items()])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    return m


def _mix(steps: int = 9) -> np.ndarray:
    return np.random.default_rng(1).standard_normal((steps, 1, 6, 1, 2)).astype(np.float32)


def _ort_steps(m: onnx.ModelProto, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    s = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    cache = np.zeros((2, 1, C, FRAMES, W), np.float32)
    ys = []
    for t in range(x.shape[0]):
        y, cache = s.run(None, {"mix": x[t], "cache": cache})
        ys.append(y)
    return np.stack(ys), cache


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(a - b)) / (np.max(b) - np.min(b)))


def _convert(m: onnx.ModelProto, tmp_path: Path, quant: str = "f32", calibration: np.ndarray | None = None):
    onnx.save(m, tmp_path / "m.onnx")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # int8 nodes kept at int16 weights
        g = rnnedge.convert(tmp_path / "m.onnx", tmp_path / f"m_{quant}.rne", state=STATE, quant=quant,
                            calibration=calibration)
    return g, rnnedge.load(tmp_path / f"m_{quant}.rne")


def test_the_graph_it_becomes():
    """Axes BFFF in (no --input needed) and FFF out (the batch of 1 moved between the step's
    axes); the window convs folded into the channels (their notes say so), the ConvTranspose the
    Conv it equals, its BatchNormalization folded into it; the cache an explicit STATE value
    [2, C, 10, W] (the batch of 1 in it taken as the batch) updated by the ScatterND writes:
    Slices around the box and a Concat."""
    g = to_graph(mini_gtcrn())
    assert (g.input_spec.axes, g.input_spec.shape, g.output_spec.axes) == ("BFFF", [1, 6, 1, 2], "FFF")
    (s,) = g.state_values
    assert g.values[s].shape == (2, C, FRAMES, W) and g.explicit_state
    convs = [n.op for n in g.nodes if isinstance(n.op, Conv)]
    assert [(c.weight.shape[1] * c.groups, c.kt, c.groups, c.sw, c.transpose) for c in convs] == [
        (6, 1, 1, 2, False)] + [(3 * C, 1, C, 1, False)] * 3
    for k, (_, _, d, op) in enumerate(SLOTS):
        assert any(f"{op} dilated{k}: its window over axis 2 (all {1 + 2 * d} elements, one output) "
                   "is folded into the input channels" in note for note in g.folded)
    assert any("ConvTranspose dilated2: stride 1: the Conv it equals (the kernel flipped, the channel axes swapped, "
               "pads [0, 1, 0, 1])" in note for note in g.folded)
    assert any(note.startswith("BatchNormalization") and "into the node before" in note for note in g.folded)
    assert any(isinstance(n.op, Slice) and n.name == "write0" for n in g.nodes)
    assert any(isinstance(n.op, Concat) and n.name == "write0" for n in g.nodes)
    x = _mix()
    want, cache = _ort_steps(mini_gtcrn(), x)
    y, st = run_graph(g, x)  # a step function: x [T, B, *per-step shape], the calls stacked
    assert _rel(y.reshape(want.shape), want) < RTOL
    assert _rel(st["values"][0].reshape(cache.shape), cache) < RTOL


def test_f32_in_the_c_library_steps_as_onnxruntime(tmp_path: Path):
    x = _mix()
    want, cache = _ort_steps(mini_gtcrn(), x)
    _, m = _convert(mini_gtcrn(), tmp_path)
    y = m.run(x)
    assert y.shape == want.shape and _rel(y, want) < RTOL
    s = m.stream(1)
    steps = np.stack([s.step(x[t]) for t in range(x.shape[0])])
    np.testing.assert_array_equal(steps, y)
    assert s.state["cache"].shape == cache.shape and _rel(s.state["cache"], cache) < RTOL


@pytest.mark.parametrize("quant", ["int16", "int8"])
def test_integer_within_the_bar_and_c_equals_run_qgraph(quant: str, tmp_path: Path):
    x = _mix()
    want, _ = _ort_steps(mini_gtcrn(), x)
    qg, m = _convert(mini_gtcrn(), tmp_path, quant, calibration=x)
    y = m.run(x)
    yq, _ = fx.run_qgraph(qg, fx.quantize(x, qg.in_scale))
    np.testing.assert_array_equal(y, fx.dequantize(yq, qg.out_scale).reshape(y.shape))  # C == oracle
    assert _rel(y, want) < QBAR[quant]


GATHERS = {  # name: (index array, axis of x [T, B, 2, 9])
    "window_rows": (np.stack([np.arange(k, k + 7) for k in range(3)]), 3),  # 3 runs: 3 Slices, a Concat
    "scalar_in_2d": (np.array([[1]]), 2),
    "scattered_last_axis": (np.array([8, 0, 5, 5, 2, 7, 1, 3, 6, 4]), 3),  # 10 runs: a 0/1 Dense
    "negative": (np.array([-1, -2, 0]), 3),
}


@pytest.mark.parametrize("case", sorted(GATHERS))
def test_gather_of_constant_index_arrays(case: str):
    ind, axis = GATHERS[case]
    m = helper.make_model(helper.make_graph(
        [helper.make_node("Gather", ["x", "i"], ["g"], axis=axis), helper.make_node("Relu", ["g"], ["y"])], "g",
        [_vi("x", ["T", "B", 2, 9])], [_vi("y", None)], [numpy_helper.from_array(ind.astype(np.int64), "i")]),
        opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    x = np.random.default_rng(2).standard_normal((4, 3, 2, 9)).astype(np.float32)
    want = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    g = to_graph(m)
    y, _ = run_graph(g, graph_rows(x, g.input_spec.axes))
    got = graph_layout(y, g.output_spec.axes)
    assert got.shape == want.shape
    np.testing.assert_array_equal(got, want)


def test_four_axis_sequence_input_is_guessed():
    """[B, T, 2, 3] without --input: 'BTFF' (the hint names the time axis)."""
    m = helper.make_model(helper.make_graph(
        [helper.make_node("Transpose", ["x"], ["t"], perm=[0, 1, 3, 2]), helper.make_node("Exp", ["t"], ["y"])], "g",
        [_vi("x", ["batch", "time", 2, 3])], [_vi("y", ["batch", "time", 3, 2])]),
        opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    g = to_graph(m)
    assert g.input_spec.axes == "BTFF"
    x = np.random.default_rng(3).standard_normal((2, 5, 2, 3)).astype(np.float32)
    y, _ = run_graph(g, graph_rows(x, g.input_spec.axes))
    np.testing.assert_allclose(graph_layout(y, g.output_spec.axes), np.exp(x.transpose(0, 1, 3, 2)), rtol=RTOL)


def test_what_is_none_of_these_is_refused_by_name():
    scattered = _box(0, 2).copy()
    scattered[0, 0, 0, 0], scattered[0, 0, 0, 1] = scattered[0, 0, 0, 1].copy(), scattered[0, 0, 0, 0].copy()
    with pytest.raises(UnsupportedOpError, match=r"node 'write0' \(op ScatterND.*24 index tuples that are not one box "
                                                 r"of the data .* in row-major order"):
        to_graph(mini_gtcrn(scattered))
    with pytest.raises(ConvertError, match=r"input 'x' has 7 axes; .* up to 4 feature axes"):
        to_graph(helper.make_model(helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g",
                                                     [_vi("x", [1, 2, 2, 2, 2, 2, 2])], [_vi("y", None)])))


def _intra_one(x_shape: list, perm: list, outputs: list, inits: dict | None = None, **attrs) -> onnx.ModelProto:
    """x -> Transpose(perm) -> one bidirectional GRU (H 2) over the bins; `outputs` its output names."""
    rng = np.random.default_rng(4)
    arrays = {"W": rng.standard_normal((2, 6, 3)).astype(np.float32),
              "R": rng.standard_normal((2, 6, 2)).astype(np.float32), **(inits or {})}
    ins = ["t", "W", "R"] + (["", "", "h0"] if "h0" in arrays else [])
    m = helper.make_model(helper.make_graph(
        [helper.make_node("Transpose", ["x"], ["t"], perm=perm),
         helper.make_node("GRU", ins, outputs, hidden_size=2, direction="bidirectional", name="intra", **attrs)],
        "g", [_vi("x", x_shape)], [_vi(o, None) for o in outputs],
        [numpy_helper.from_array(a, k) for k, a in arrays.items()]), opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    return m


def test_a_recurrence_over_a_per_step_axis_refuses_what_it_does_not_cover():
    what = r"node 'intra' \(op GRU.*GRU over a per-step axis \(X \[F5,{},F3\], sequence axis 0: 5 elements of one step\)"
    with pytest.raises(UnsupportedOpError, match=what.format("B") + r" whose Y_h is read: only its Y is"):
        to_graph(_intra_one([1, 5, 3], [1, 0, 2], ["y", "y_h"]), inputs={"x": "B,F,F"})
    with pytest.raises(UnsupportedOpError, match=what.format("B") + r" with a nonzero initial_h: each step's "
                                                                    r"recurrence starts from zeros"):
        to_graph(_intra_one([1, 5, 3], [1, 0, 2], ["y"], {"h0": np.ones((2, 1, 2), np.float32)}),
                 inputs={"x": "B,F,F"})
    with pytest.raises(UnsupportedOpError, match=what.format("F4") + r" with a per-step axis of 4 as its batch: "
                                                                     r"only the stream's batch \(or 1\) is"):
        to_graph(_intra_one_4(), inputs={"x": "B,F,F,F"})


def _intra_one_4() -> onnx.ModelProto:
    """x [1, 4, 5, 3] -> [5, 4, 3] (Reshape of the Transpose): the GRU's batch the 4, a per-step axis."""
    m = _intra_one([1, 4, 5, 3], [0, 2, 1, 3], ["y"])
    g = m.graph
    g.initializer.append(numpy_helper.from_array(_i64(5, 4, 3), "s"))
    g.node[1].input[0] = "r"
    g.node.insert(1, helper.make_node("Reshape", ["t", "s"], ["r"]))
    return m


def intra_rnns() -> onnx.ModelProto:
    """gtcrn's intra-frame recurrences: x [1, 5, 1, 6] (batch, bins, frame, features) -> [1, 5, 6] ->
    two groups of 3 features, each Transpose-d to [5, 1, 3]: sequences over the 5 bins within the
    step, the batch of 1 their batch. Two bidirectional GRUs (linear_before_reset 1 and 0, as gtcrn's
    GRNN halves), a forward LSTM and a reverse RNN (the same node form), each Y [5, D, 1, 2] moved to
    [1, 5, D * 2] and concatenated: enh [1, 5, 12]."""
    rng = np.random.default_rng(11)
    n = helper.make_node
    inits = {"s3": _i64(1, 5, 6), "z": _i64(0), "three": _i64(3), "six": _i64(6), "last": _i64(-1),
             "s4": _i64(1, 5, 4), "s2": _i64(1, 5, 2)}
    for name, shape in (("Wa", (2, 6, 3)), ("Ra", (2, 6, 2)), ("Ba", (2, 12)), ("Wb", (2, 6, 3)), ("Rb", (2, 6, 2)),
                        ("Bb", (2, 12)), ("Wl", (1, 8, 3)), ("Rl", (1, 8, 2)), ("Bl", (1, 16)), ("Wr", (1, 2, 3)),
                        ("Rr", (1, 2, 2))):
        inits[name] = (0.5 * rng.standard_normal(shape)).astype(np.float32)
    nodes = [
        n("Transpose", ["mix"], ["t"], perm=[0, 2, 1, 3]), n("Reshape", ["t", "s3"], ["x"]),  # [1, 5, 6]
        n("Slice", ["x", "z", "three", "last"], ["xa"]), n("Slice", ["x", "three", "six", "last"], ["xb"]),
        n("Transpose", ["xa"], ["ta"], perm=[1, 0, 2]), n("Transpose", ["xb"], ["tb"], perm=[1, 0, 2]),  # [5, 1, 3]
        n("GRU", ["ta", "Wa", "Ra", "Ba"], ["ya"], hidden_size=2, direction="bidirectional", linear_before_reset=1,
          name="intra_a"),
        n("GRU", ["tb", "Wb", "Rb", "Bb"], ["yb"], hidden_size=2, direction="bidirectional", name="intra_b"),
        n("LSTM", ["ta", "Wl", "Rl", "Bl"], ["yl"], hidden_size=2, name="intra_l"),
        n("RNN", ["tb", "Wr", "Rr"], ["yr"], hidden_size=2, direction="reverse", name="intra_r"),
    ]
    for k, (y, f) in enumerate((("ya", "s4"), ("yb", "s4"), ("yl", "s2"), ("yr", "s2"))):
        nodes += [n("Transpose", [y], [f"p{k}"], perm=[2, 0, 1, 3]), n("Reshape", [f"p{k}", f], [f"o{k}"])]
    nodes.append(n("Concat", [f"o{k}" for k in range(4)], ["enh"], axis=-1))
    g = helper.make_graph(nodes, "intra_rnns", [_vi("mix", [1, 5, 1, 6])], [_vi("enh", [1, 5, 12])],
                          [numpy_helper.from_array(a, k) for k, a in inits.items()])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    return m


@pytest.mark.parametrize("quant", ["f32", "int16", "int8"])
def test_recurrences_over_a_per_step_axis(quant: str, tmp_path: Path):
    """Each a recurrent node with `inner` 5 (RNE_LF_INNER: the C library runs the cell over each
    row's 5 bins from zeros, both ways when bidirectional; no stream state): f32 within 1e-5 of
    onnxruntime (1.1e-7 measured), stepped as run; int16 / int8 within the bars (7.5e-5 and 2.8e-3
    measured), equal to fixedpoint.run_qgraph bit for bit."""
    m = intra_rnns()
    x = np.random.default_rng(5).standard_normal((7, 1, 5, 1, 6)).astype(np.float32)
    s = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    want = np.stack([s.run(None, {"mix": x[t]})[0] for t in range(x.shape[0])])
    g = to_graph(m, inputs={"mix": "B,F,F,F"})
    inner = [(node.op.cell, node.op.direction, node.op.inner) for node in g.nodes if hasattr(node.op, "inner")]
    assert inner == [("gru", "bidirectional", 5), ("gru", "bidirectional", 5), ("lstm", "forward", 5),
                     ("rnn", "reverse", 5)]
    assert sum("a recurrence over a per-step axis of 5 elements, from zeros in every step" in note
               for note in g.folded) == 4
    onnx.save(m, tmp_path / "m.onnx")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        qg = rnnedge.convert(tmp_path / "m.onnx", tmp_path / "m.rne", quant=quant, inputs={"mix": "B,F,F,F"},
                             calibration=None if quant == "f32" else x)
    model = rnnedge.load(tmp_path / "m.rne")
    got = model.run(x)
    assert got.shape == want.shape and model.stream(1).state == {}
    st = model.stream(1)
    np.testing.assert_array_equal(np.stack([st.step(x[t]) for t in range(x.shape[0])]), got)
    if quant == "f32":
        assert _rel(got, want) < RTOL
        return
    yq, _ = fx.run_qgraph(qg, fx.quantize(x, qg.in_scale))
    np.testing.assert_array_equal(got, fx.dequantize(yq, qg.out_scale).reshape(got.shape))
    assert _rel(got, want) < QBAR[quant]


def inter_gru() -> onnx.ModelProto:
    """gtcrn's inter-frame GRUs: x [1, 5, 1, 6] (batch, bins, frame, features) -> [1, 5, 6] whose 5
    bins are the GRUs' batch and whose axis of one (the batch of 1) their one step; h from the
    state hc [2, 1, 5, 3] by Gather, the final h back by Concat. One GRU each with
    linear_before_reset 1 and 0, and one from a zero initial state."""
    rng = np.random.default_rng(9)
    n = helper.make_node
    inits = {"s3": _i64(1, 5, 6), "z": _i64(0), "four": _i64(4), "six": _i64(6), "last": _i64(-1), "ax0": _i64(0),
             "ax1": _i64(1), "i0": np.array(0, np.int64), "i1": np.array(1, np.int64)}
    for k, i in ((0, 4), (1, 2), (2, 2)):
        inits[f"W{k}"] = rng.standard_normal((1, 9, i)).astype(np.float32)
        inits[f"R{k}"] = rng.standard_normal((1, 9, 3)).astype(np.float32)
        inits[f"B{k}"] = rng.standard_normal((1, 18)).astype(np.float32)
    nodes = [
        n("Transpose", ["mix", ], ["t"], perm=[0, 2, 1, 3]), n("Reshape", ["t", "s3"], ["x"]),  # [1, 5, 6]
        n("Slice", ["x", "z", "four", "last"], ["xa"]), n("Slice", ["x", "four", "six", "last"], ["xb"]),
        n("Gather", ["hc", "i0"], ["h0"], axis=0), n("Gather", ["hc", "i1"], ["h1"], axis=0),  # [1, 5, 3]
        n("GRU", ["xa", "W0", "R0", "B0", "", "h0"], ["y0", "hn0"], hidden_size=3, linear_before_reset=1, name="gru0"),
        n("GRU", ["xb", "W1", "R1", "B1", "", "h1"], ["y1", "hn1"], hidden_size=3, name="gru1"),
        n("GRU", ["xb", "W2", "R2", "B2"], ["y2"], hidden_size=3, linear_before_reset=1, name="gru2"),
        n("Concat", ["y0", "y1", "y2"], ["ys"], axis=-1),  # [1, 1, 5, 9]
        n("Squeeze", ["ys", "ax1"], ["enh"]),
        n("Unsqueeze", ["hn0", "ax0"], ["u0"]), n("Unsqueeze", ["hn1", "ax0"], ["u1"]),
        n("Concat", ["u0", "u1"], ["hc_out"], axis=0),
    ]
    g = helper.make_graph(nodes, "inter_gru", [_vi("mix", [1, 5, 1, 6]), _vi("hc", [2, 1, 5, 3])],
                          [_vi("enh", [1, 5, 9]), _vi("hc_out", [2, 1, 5, 3])],
                          [numpy_helper.from_array(a, k) for k, a in inits.items()])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    return m


@pytest.mark.parametrize("quant", ["f32", "int16", "int8"])
def test_gru_whose_batch_is_a_per_step_axis(quant: str, tmp_path: Path):
    """Written out as graph nodes (no recurrent node: the cell over [5, 3]), f32 within 1e-5 of
    onnxruntime stepped with hc fed back, its state the final h's; int16 / int8 within the bars,
    equal to the oracle."""
    m = inter_gru()
    x = np.random.default_rng(5).standard_normal((7, 1, 5, 1, 6)).astype(np.float32)
    s = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    hc, ys = np.zeros((2, 1, 5, 3), np.float32), []
    for t in range(x.shape[0]):
        y, hc = s.run(None, {"mix": x[t], "hc": hc})
        ys.append(y)
    want = np.stack(ys)
    g = to_graph(m, state={"hc": "hc_out"})
    assert not any(type(node.op).__name__ == "Recurrent" for node in g.nodes)
    assert sum("one step with its batch axis a per-step axis of 5: the GRU cell written as graph nodes" in note
               for note in g.folded) == 3
    onnx.save(m, tmp_path / "m.onnx")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        qg = rnnedge.convert(tmp_path / "m.onnx", tmp_path / "m.rne", state={"hc": "hc_out"}, quant=quant,
                             calibration=None if quant == "f32" else x)
    model = rnnedge.load(tmp_path / "m.rne")
    got = model.run(x)
    assert got.shape == want.shape
    if quant == "f32":
        assert _rel(got, want) < RTOL
        st = model.stream(1)
        for t in range(x.shape[0]):
            st.step(x[t])
        assert _rel(st.state["hc"], hc) < RTOL
        return
    yq, _ = fx.run_qgraph(qg, fx.quantize(x, qg.in_scale))
    np.testing.assert_array_equal(got, fx.dequantize(yq, qg.out_scale).reshape(got.shape))
    assert _rel(got, want) < QBAR[quant]


PREFIX_OUT = ["onnx::GRU_1300", "onnx::Gather_1225", "onnx::Gather_1240"]  # GRU_700's X; the caches so far


def test_gtcrns_first_nodes_match_onnxruntime(tmp_path: Path):
    """The real gtcrn (tests/data/real/gtcrn.onnx) up to its first refusal: the 144 ONNX nodes
    before GRU_700 (encoder, the encoder's cache writes; its output the intra-frame GRU's X, the
    conv and tra caches written so far as the state outputs) extracted, fed the tool's STFT frames
    of the committed recording (0.5 s) with the caches carried: f32 in the C library within 1e-5
    of the range of onnxruntime's (5.3e-7 measured on 2 s), int16 equal to run_qgraph bit for bit
    and within 5e-3 of the range: 2.2e-3 on these 0.5 s since the magnitude sqrt(re^2 + im^2 +
    1e-12) is one integer HYPOT (6.3e-2 op by op, where the error was born at Sqrt_11)."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tools"))
    import real_models as rm

    m = rm.BY_KEY["gtcrn"]
    model = onnx.shape_inference.infer_shapes(onnx.load(rm.DATA / "gtcrn.onnx"))
    sub = onnx.utils.Extractor(model).extract_model(["mix", "conv_cache", "tra_cache"], PREFIX_OUT)
    assert len(sub.graph.node) == 144
    onnx.save(sub, tmp_path / "prefix.onnx")
    audio, _ = rm.test_audio(m.rate, 0.5, rm.SNR_DB, fresh=False)
    x = np.stack(rm.FRAMINGS["gtcrn"](audio, m))  # [T, 1, 257, 1, 2]
    s = ort.InferenceSession(str(tmp_path / "prefix.onnx"), providers=["CPUExecutionProvider"])
    cc, tc, ys = np.zeros((2, 1, 16, 16, 33), np.float32), np.zeros((2, 3, 1, 1, 16), np.float32), []
    for t in range(x.shape[0]):
        y, cc, tc = s.run(None, {"mix": x[t], "conv_cache": cc, "tra_cache": tc})
        ys.append(y)
    want = np.stack(ys)
    state = {"conv_cache": PREFIX_OUT[1], "tra_cache": PREFIX_OUT[2]}
    for quant in ("f32", "int16"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            g = rnnedge.convert(tmp_path / "prefix.onnx", tmp_path / f"p_{quant}.rne", state=state, quant=quant,
                                calibration=None if quant == "f32" else x)
        got = rnnedge.load(tmp_path / f"p_{quant}.rne").run(x)
        if quant == "f32":
            assert g.input_spec.axes == "BFFF" and g.output_spec.axes == "FBF"
            assert _rel(got.reshape(want.shape), want) < RTOL
        else:
            yq, _ = fx.run_qgraph(g, fx.quantize(x, g.in_scale))
            np.testing.assert_array_equal(got, fx.dequantize(yq, g.out_scale).reshape(got.shape))
            assert any("sqrt(a^2 + b^2 + 1e-12)" in f for f in g.folded)
            assert _rel(got.reshape(want.shape), want) < 5e-3


def _one_node(node: onnx.NodeProto, x_shape: list, inits: dict) -> onnx.ModelProto:
    m = helper.make_model(helper.make_graph([node], "g", [_vi("x", x_shape)], [_vi("y", None)],
                                            [numpy_helper.from_array(a, k) for k, a in inits.items()]),
                          opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    return m


def test_the_new_paths_refuse_what_they_do_not_cover():
    rng = np.random.default_rng(8)
    # a window fold whose other spatial axis sits between the channels and the window
    m = _one_node(helper.make_node("Conv", ["x", "w"], ["y"], pads=[1, 0, 1, 0], name="c"), [1, 4, 5, 3],
                  {"w": rng.standard_normal((2, 4, 3, 3)).astype(np.float32)})
    with pytest.raises(UnsupportedOpError, match=r"node 'c' \(op Conv.*a Conv window over axis 3 of "
                                                 r"\[B,F4,F5,F3\] that is not next to the channels"):
        to_graph(m, inputs={"x": "B,F,F,F"})
    # more than 8 runs of indices along a feature axis that is not the last
    m = _one_node(helper.make_node("Gather", ["x", "i"], ["y"], axis=2, name="g"), ["T", "B", 10, 2],
                  {"i": np.arange(10)[::-1].astype(np.int64)})
    with pytest.raises(UnsupportedOpError, match=r"node 'g' \(op Gather.*10 indices in 10 runs along a feature "
                                                 r"axis that is not the last"):
        to_graph(m)
    # an LSTM whose batch is a per-step axis
    m = _one_node(helper.make_node("LSTM", ["x", "W", "R"], ["y"], hidden_size=2, name="l"), [1, 5, 3],
                  {"W": rng.standard_normal((1, 8, 3)).astype(np.float32),
                   "R": rng.standard_normal((1, 8, 2)).astype(np.float32)})
    with pytest.raises(UnsupportedOpError, match=r"node 'l' \(op LSTM.*LSTM whose batch axis \(X \[B,F5,F3\], "
                                                 r"axis 1\) is a per-step axis of 5: only a GRU's one step"):
        to_graph(m, inputs={"x": "B,F,F"})


def magnitude(eps: float, gain: float) -> onnx.ModelProto:
    """gtcrn's first magnitude, sqrt(re^2 + im^2 + eps), of mix [1, 9, 1, 2] times `gain`."""
    n = helper.make_node
    inits = {"i0": np.array(0, np.int64), "i1": np.array(1, np.int64), "two": np.array(2.0, np.float32),
             "eps": np.array(eps, np.float32), "k": np.array(gain, np.float32)}
    nodes = [n("Mul", ["mix", "k"], ["m"], name="Mul_0"), n("Gather", ["m", "i0"], ["re"], axis=3, name="Gather_1"),
             n("Gather", ["m", "i1"], ["im"], axis=3, name="Gather_4"), n("Pow", ["re", "two"], ["r2"], name="Pow_6"),
             n("Pow", ["im", "two"], ["i2"], name="Pow_7"), n("Add", ["r2", "i2"], ["s"], name="Add_8"),
             n("Add", ["s", "eps"], ["se"], name="Add_10"), n("Sqrt", ["se"], ["enh"], name="Sqrt_11")]
    g = helper.make_graph(nodes, "magnitude", [_vi("mix", [1, 9, 1, 2])], [_vi("enh", [1, 9, 1])],
                          [numpy_helper.from_array(a, k) for k, a in inits.items()])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    return m


@pytest.mark.parametrize("quant", ["int16", "int8"])
def test_a_magnitude_with_a_tiny_eps_is_one_hypot(quant: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """sqrt(re^2 + im^2 + 1e-12) over bins from 1e-4 to 1 (x100): one integer HYPOT that drops the
    eps (sqrt(1e-12) = 1e-6, under half the output's step): 7.2e-5 of the range from onnxruntime
    (measured), where op by op (the eps form not fused) is 3.1e-2; C == run_qgraph. An eps whose
    root is more than half the output's step is refused by name (1e-6 on a magnitude of about 3)."""
    x = (np.random.default_rng(2).standard_normal((50, 1, 9, 1, 2))
         * np.logspace(-4, 0, 9)[None, None, :, None, None]).astype(np.float32)
    m = magnitude(1e-12, 100.0)
    s = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    want = np.stack([s.run(None, {"mix": x[t]})[0] for t in range(len(x))])
    onnx.save(m, tmp_path / "m.onnx")

    def convert(name: str) -> tuple:
        qg = rnnedge.convert(tmp_path / "m.onnx", tmp_path / name, quant=quant, inputs={"mix": "B,F,F,F"},
                             calibration=x)
        return qg, rnnedge.load(tmp_path / name).run(x)

    qg, got = convert("fused.rne")
    assert any("fused into one Hypot, sqrt(a^2 + b^2 + 1e-12)" in f and "Add_10 (+ 1e-12)" in f for f in qg.folded)
    assert _rel(got.reshape(want.shape), want) < 2e-4
    yq, _ = fx.run_qgraph(qg, fx.quantize(x, qg.in_scale))
    np.testing.assert_array_equal(got, fx.dequantize(yq, qg.out_scale).reshape(got.shape))
    import rnnedge.quant.graph as quant_graph

    monkeypatch.setattr(quant_graph, "MAX_HYPOT_EPS", 0.0)  # the eps form op by op
    qg, got = convert("ops.rne")
    assert not any("Hypot" in f for f in qg.folded) and _rel(got.reshape(want.shape), want) > 1e-2
    monkeypatch.undo()
    onnx.save(magnitude(1e-6, 1.0), tmp_path / "m.onnx")
    with pytest.raises(UnsupportedOpError, match=r"\(Sqrt_11\) \(Hypot\): sqrt\(a\^2 \+ b\^2 \+ 1e-06\) whose eps "
                                                 r"moves the root by up to 0.001, more than half the output's int16 step"):
        convert("refused.rne")


def test_gtcrn_converts_to_one_copy_per_value_and_shape():
    """The whole gtcrn (tests/data/real/gtcrn.onnx) converts in f32: 547 nodes (579 when each reader
    of a value in another shape made its own COPY: 135 COPYs of which 32 repeated one), within the
    Python extension's RNE_MAX_NODES (1024) and over the default build's 256; its 10 recurrent nodes
    are the 4 intra-frame GRUs over the 33 bins (bidirectional, `inner` 33) and the 6 GRUs of one
    step per call (the inter-frame GRUs' one step is written as graph nodes)."""
    import sys
    from collections import Counter

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tools"))
    import real_models as rm

    from rnnedge.blob import spec

    m = rm.BY_KEY["gtcrn"]
    g = to_graph(onnx.load(rm.DATA / "gtcrn.onnx"), state=dict(m.state))
    copies = Counter((n.inputs[0], g.values[n.outputs[0]].shape) for n in g.nodes if type(n.op).__name__ == "Copy")
    assert len(g.nodes) == 547 and max(copies.values()) == 1 and sum(copies.values()) == 103
    assert spec.MAX_NODES == 1024 and len(g.nodes) > 256
    rec = [(n.op.direction, n.op.inner) for n in g.nodes if type(n.op).__name__ == "Recurrent"]
    assert sorted(rec) == [("bidirectional", 33)] * 4 + [("forward", 0)] * 6
