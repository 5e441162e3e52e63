"""Convolution models end to end (issue "Streaming graphs II", docs/graph.md section 6): each
conv fixture of tests/data/fixtures/conv/ through rnnedge.convert -> .rne blob -> Model in the C
library, against onnxruntime: Model.run within 1e-5 relative, step by step with the latency
accounted (the stream's first latency_steps outputs are the skipped steps' zeros, then ONNX's
output for step t - latency), streaming equal to run bit for bit, chunks equal to steps; int16
within 1e-3 and int8 within 1e-2 (docs/quantization.md's bar) of onnxruntime's output range, and
the C library's integer output equal to the oracle fixedpoint.run_qgraph bit for bit (run and
step)."""

from __future__ import annotations

import json
import re
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
from rnnedge.blob.spec import OP_CONV  # noqa: E402
from rnnedge.errors import InputError  # noqa: E402
from rnnedge.ir.graph import Conv  # noqa: E402
from rnnedge.reference import run_graph  # noqa: E402

CONV = Path(__file__).parent / "data" / "fixtures" / "conv"
INDEX = json.loads((CONV / "index.json").read_text())
RTOL = 1e-5
# fixtures where a lookahead conv reads a computed value (docs/graph.md section 6): Model.run is
# exact (rne_run_end ends each node's input where the real input's does), while the stream, fed
# zero frames after x, gives ONNX's steps 0 .. T - latency - 1 exactly, and not the last ones
CHAINED = {"chained_lookahead"}
QTOL = {"int16": 1e-3, "int8": 1e-2}  # of the float output's range (max - min)


def _ort(model: Path | onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    """onnxruntime over x in the model's layout [B, T, ...]."""
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    src = str(model) if isinstance(model, Path) else model.SerializeToString()
    s = ort.InferenceSession(src, opts, providers=["CPUExecutionProvider"])
    return s.run(None, {s.get_inputs()[0].name: x})[0]


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-30))


def _load(src: Path | onnx.ModelProto, tmp_path: Path, quant: str = "f32", calibration=None) -> rnnedge.Model:
    if not isinstance(src, Path):
        p = tmp_path / "m.onnx"
        onnx.save(src, p)
        src = p
    out = tmp_path / f"m_{quant}.rne"
    rnnedge.convert(src, out, quant=quant, calibration=calibration)
    return rnnedge.load(out)


def _steps(m: rnnedge.Model, x: np.ndarray, extra: int) -> np.ndarray:
    """Stream.step over x [B, T, ...] and `extra` zero frames after it -> [B, T + extra, ...]."""
    s = m.stream(x.shape[0])
    frames = [x[:, t] for t in range(x.shape[1])] + [np.zeros_like(x[:, 0])] * extra
    return np.stack([s.step(f).copy() for f in frames], axis=1)


@pytest.mark.parametrize("name", sorted(INDEX))
def test_fixture_f32_runs_and_streams_as_onnxruntime(name: str, tmp_path: Path) -> None:
    x = np.swapaxes(np.load(CONV / f"{name}.input.npy"), 0, 1)  # [B, T, ...], ONNX's layout
    ref = _ort(CONV / f"{name}.onnx", x)
    m = _load(CONV / f"{name}.onnx", tmp_path)
    L = INDEX[name]["latency"]
    assert m.latency_steps == L and m.stream().latency_steps == L
    ys = _steps(m, x, L)
    assert not ys[:, :L].any()  # the skipped steps write zeros
    y = m.run(x)
    assert y.shape == ref.shape
    assert _rel(y, ref) < RTOL
    T = x.shape[1]
    if name in CHAINED:
        assert np.array_equal(ys[:, L:T], y[:, : T - L])  # while real frames come: bit for bit
        assert _rel(ys[:, T:], ref[:, T - L :]) > 1e-3  # zero frames are not ONNX's end padding
        return
    assert np.array_equal(ys[:, L:], y)  # streaming equals run bit for bit
    assert _rel(ys[:, L:], ref) < RTOL


def test_a_lookahead_stream_in_chunks_equals_its_steps(tmp_path: Path) -> None:
    """Chunks that end inside, at and after the skipped steps: Stream.run equals Stream.step bit
    for bit (the step counter carries across calls), and reset starts the skip again."""
    x = np.swapaxes(np.load(CONV / "lookahead_gru.input.npy"), 0, 1)
    m = _load(CONV / "lookahead_gru.onnx", tmp_path)
    ys = _steps(m, x, 0)
    for cuts in ([1, 1, 5], [3, 4], [2, 9], [14]):
        s = m.stream(x.shape[0])
        parts, t = [], 0
        for n in cuts + [x.shape[1] - sum(cuts)]:
            if n:
                parts.append(s.run(x[:, t : t + n]))
            t += n
        assert np.array_equal(np.concatenate(parts, axis=1), ys), cuts
        s.reset()
        assert np.array_equal(s.run(x), ys)


def _chained_lookahead() -> onnx.ModelProto:
    """Two 'same' convs with a Relu between (lookahead 1 + 2 = latency 3), then a GRU: the second
    conv does not read the model input."""
    rng = np.random.default_rng(7)
    H = 5
    inits = {"w1": rng.standard_normal((4, 3, 3)).astype(np.float32), "b1": rng.standard_normal(4).astype(np.float32),
             "w2": rng.standard_normal((4, 4, 5)).astype(np.float32), "b2": rng.standard_normal(4).astype(np.float32),
             "W": rng.standard_normal((1, 3 * H, 4)).astype(np.float32) * 0.5,
             "R": rng.standard_normal((1, 3 * H, H)).astype(np.float32) * 0.5}
    nodes = [helper.make_node("Transpose", ["x"], ["a"], perm=[0, 2, 1]),
             helper.make_node("Conv", ["a", "w1", "b1"], ["c1"], pads=[1, 1]),
             helper.make_node("Relu", ["c1"], ["r1"]),
             helper.make_node("Conv", ["r1", "w2", "b2"], ["c2"], pads=[2, 2]),
             helper.make_node("Transpose", ["c2"], ["tb"], perm=[2, 0, 1]),
             helper.make_node("GRU", ["tb", "W", "R"], ["Y", "Y_h"], hidden_size=H),
             helper.make_node("Squeeze", ["Y", "one"], ["ys"]),
             helper.make_node("Transpose", ["ys"], ["y"], perm=[1, 0, 2])]  # fmt: skip
    inits["one"] = np.array([1], np.int64)
    g = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["B", "T", 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["B", "T", H])],
        [numpy_helper.from_array(v, k) for k, v in inits.items()])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


def test_chained_lookahead_runs_exactly_and_streams(tmp_path: Path) -> None:
    """Model.run ends each node's input where the real input's does (rne_run_end): the second
    lookahead conv reads zeros past its own input's end, as ONNX pads it, so run is ONNX's output
    (and run_graph(flush=True)'s); the stream skips per node as run_graph does and lags ONNX by
    the latency."""
    mp = _chained_lookahead()
    m = _load(mp, tmp_path)
    assert m.latency_steps == 3
    x = np.random.default_rng(1).standard_normal((2, 9, 3)).astype(np.float32)
    y = m.run(x)
    assert _rel(y, _ort(mp, x)) < RTOL
    flushed, _ = run_graph(to_graph(mp), np.swapaxes(x, 0, 1), flush=True)
    assert _rel(y, np.swapaxes(flushed, 0, 1)) < RTOL
    for cut in (1, 4):  # shorter sequences: every node's end moves with them
        assert _rel(m.run(x[:, :cut]), _ort(mp, x[:, :cut])) < RTOL, cut
    ys = _steps(m, x, 0)
    ref, _ = run_graph(to_graph(mp), np.swapaxes(x, 0, 1))  # the float reference, streaming
    assert _rel(ys, np.swapaxes(ref, 0, 1)) < RTOL
    assert not ys[:, :3].any()
    onnx_y = _ort(mp, x)  # step t is ONNX's step t - 3 (whose inputs are all real frames)
    assert _rel(ys[:, 3:], onnx_y[:, :-3]) < RTOL
    # its ONNX nodes have no names: the two conv caches are named by node index instead
    convs = [n.index for n in m.blob.nodes if n.op == OP_CONV]
    s = m.stream(2)
    assert sorted(k for k in s.state if k.endswith(".cache")) == [f"node{i}.cache" for i in convs]


def _chained_last() -> onnx.ModelProto:
    """_chained_lookahead with its GRU's last step (Slice [-1:] over time) as the output: a
    many-to-one model whose TAKE_LAST reads a value lagging by the latency."""
    mp = _chained_lookahead()
    g = mp.graph
    y = g.node[-1]
    y.output[0] = "yseq"
    g.initializer.extend([numpy_helper.from_array(np.array([v], np.int64), k) for k, v in
                          (("m1", -1), ("big", 2**62), ("ax1", 1))])
    g.node.extend([helper.make_node("Slice", ["yseq", "m1", "big", "ax1"], ["ylast"]),
                   helper.make_node("Squeeze", ["ylast", "ax1"], ["y"])])
    g.output[0].CopyFrom(helper.make_tensor_value_info("y", TensorProto.FLOAT, ["B", 5]))
    return mp


def _run_end(m: rnnedge.Model, x: np.ndarray, steps: int, end: int) -> tuple[int, np.ndarray]:
    """rne_run_end on a new stream: x [B, end, F] and steps - end zero frames after it."""
    from rnnedge._memory import aligned_bytes

    s = m.stream(x.shape[0])
    lib, ffi = s._c.lib, s._c.ffi
    xt = np.zeros((steps, x.shape[0], x.shape[2]), np.float32)
    xt[:end] = np.swapaxes(x, 0, 1)
    y = np.zeros((1 if m.many_to_one else steps, x.shape[0], m.out_features), np.float32)
    need = lib.rne_scratch_size(m._cmodel, x.shape[0], steps)
    scratch = aligned_bytes(need)
    rc = lib.rne_run_end(s._cstream, ffi.from_buffer(xt), steps, end, ffi.from_buffer(y),
                         ffi.from_buffer(scratch), need)  # fmt: skip
    return rc, np.swapaxes(y, 0, 1)


@pytest.mark.parametrize("last", [False, True])
def test_rne_run_end_ends_each_node_where_its_input_ends(last: bool, tmp_path: Path) -> None:
    """rne_run_end with more zero frames after the end than the latency: the rows up to each
    node's end are Model.run's, bit for bit (the recurrent node stops at its end, TAKE_LAST takes
    the step before it, in one chunk); end == steps is rne_run; end > steps is RNE_EARG."""
    mp = _chained_last() if last else _chained_lookahead()
    m = _load(mp, tmp_path)
    L = m.latency_steps
    x = np.random.default_rng(2).standard_normal((2, 7, 3)).astype(np.float32)
    y = m.run(x)
    assert _rel(y, _ort(mp, x)) < RTOL
    assert not m._chunkable if last else m._chunkable  # TAKE_LAST with latency: one chunk
    for extra in (L, L + 4):
        rc, ye = _run_end(m, x, x.shape[1] + extra, x.shape[1])
        assert rc == 0
        assert np.array_equal(ye[:, 0] if last else ye[:, L : L + x.shape[1]], y), extra
    rc, ye = _run_end(m, x, x.shape[1], x.shape[1])
    ys = _steps(m, x, 0)
    assert rc == 0 and np.array_equal(ye[:, 0] if last else ye, ys[:, -1] if last else ys)
    assert _run_end(m, x, x.shape[1], x.shape[1] + 1)[0] == 1  # RNE_EARG


@pytest.mark.parametrize("quant", ["int16", "int8"])
@pytest.mark.parametrize("name", sorted(INDEX))
def test_fixture_integer_within_the_bar_and_c_equals_run_qgraph(name: str, quant: str, tmp_path: Path) -> None:
    x = np.swapaxes(np.load(CONV / f"{name}.input.npy"), 0, 1)  # [B, T, ...]
    ref = _ort(CONV / f"{name}.onnx", x)
    out = tmp_path / f"{name}.{quant}.rne"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # int8 nodes kept at int16 weights
        qg = rnnedge.convert(CONV / f"{name}.onnx", out, quant=quant, calibration=x)
    m = rnnedge.load(out)
    L = m.latency_steps
    xt = np.swapaxes(x, 0, 1)  # [T, B, ...] with the latency's zero frames after it
    xt = np.concatenate([xt, np.zeros((L,) + xt.shape[1:], xt.dtype)])
    yq, _ = fx.run_qgraph(qg, fx.quantize(xt, qg.in_scale))
    want = np.swapaxes(fx.dequantize(yq, qg.out_scale), 0, 1).reshape((x.shape[0], -1) + ref.shape[2:])
    np.testing.assert_array_equal(_steps(m, x, L), want)  # C steps == oracle, bit for bit
    y = m.run(x)
    yq_run, _ = fx.run_qgraph(qg, fx.quantize(np.swapaxes(x, 0, 1), qg.in_scale), flush=True)
    np.testing.assert_array_equal(  # C run == oracle with each node's end, bit for bit
        y, np.swapaxes(fx.dequantize(yq_run, qg.out_scale), 0, 1).reshape(ref.shape))
    if name not in CHAINED:
        np.testing.assert_array_equal(y, want[:, L:])  # and == the stream fed zero frames
    if L:  # its final state is the flush's, not x's: refused, with the way to get it
        with pytest.raises(InputError, match=rf"return_state: this model has latency_steps {L}.*"
                                             "step it with Model.stream"):
            m.run(x, return_state=True)
    assert float(np.abs(y - ref).max()) / float(ref.max() - ref.min()) < QTOL[quant]


def _conv_transpose(k: int, s: int, pads: tuple, outpad: int, groups: int) -> tuple[onnx.ModelProto, int]:
    """x [B, T, 4 * 5] -> [B, T, 4, 5] -> ConvTranspose over the last axis -> [B, T, 6 * W_out]."""
    rng = np.random.default_rng(11)
    c_in, c_out, w_in = 4, 6, 5
    w_out = (w_in - 1) * s + k - sum(pads) + outpad
    inits = {"w": rng.standard_normal((c_in, c_out // groups, 1, k)).astype(np.float32),
             "b0": rng.standard_normal(c_out).astype(np.float32),
             "s1": np.array([0, 0, c_in, w_in], np.int64), "s2": np.array([0, 0, -1], np.int64)}
    nodes = [helper.make_node("Reshape", ["x", "s1"], ["r"]),
             helper.make_node("Transpose", ["r"], ["a"], perm=[0, 2, 1, 3]),
             helper.make_node("ConvTranspose", ["a", "w", "b0"], ["b"], kernel_shape=[1, k], strides=[1, s],
                              pads=[0, pads[0], 0, pads[1]], output_padding=[0, outpad], group=groups),
             helper.make_node("Transpose", ["b"], ["bt"], perm=[0, 2, 1, 3]),
             helper.make_node("Reshape", ["bt", "s2"], ["y"])]  # fmt: skip
    g = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["B", "T", c_in * w_in])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["B", "T", c_out * w_out])],
        [numpy_helper.from_array(v, k_) for k_, v in inits.items()])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), c_in * w_in


@pytest.mark.parametrize("quant", ["f32", "int16", "int8"])
@pytest.mark.parametrize("k,s,pads,outpad,groups", [(3, 2, (1, 1), 1, 1), (4, 2, (1, 1), 0, 2)])
def test_conv_transpose_over_features_in_c(k: int, s: int, pads: tuple, outpad: int, groups: int,
                                           quant: str, tmp_path: Path) -> None:  # fmt: skip
    """CONV_T (no fixture has one): f32 within 1e-5 of onnxruntime; integers within the bar and
    equal to run_qgraph bit for bit (the writer's CONV_T tensors, run_qgraph's adapter)."""
    mp, f = _conv_transpose(k, s, pads, outpad, groups)
    x = np.random.default_rng(3).standard_normal((2, 6, f)).astype(np.float32)
    ref = _ort(mp, x)
    onnx.save(mp, tmp_path / "m.onnx")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        g = rnnedge.convert(tmp_path / "m.onnx", tmp_path / "m.rne", quant=quant,
                            calibration=None if quant == "f32" else x)  # fmt: skip
    m = rnnedge.load(tmp_path / "m.rne")
    y = m.run(x)
    assert np.array_equal(_steps(m, x, 0), y)
    if quant == "f32":
        assert _rel(y, ref) < RTOL
        return
    yq, _ = fx.run_qgraph(g, fx.quantize(np.swapaxes(x, 0, 1), g.in_scale))
    np.testing.assert_array_equal(y, np.swapaxes(fx.dequantize(yq, g.out_scale), 0, 1).reshape(y.shape))
    assert float(np.abs(y - ref).max()) / float(ref.max() - ref.min()) < QTOL[quant]


def _conv_cache_names(g) -> list[tuple[str, int, int]]:
    """(Stream.state name, input value, cache frames) of each causal conv of graph g, in node order."""
    return [(g.values[n.outputs[0]].name + ".cache", n.inputs[0], n.op.cache_frames)
            for n in g.nodes if isinstance(n.op, Conv) and n.op.cache_frames]


@pytest.mark.parametrize("name", [n for n in sorted(INDEX) if n != "frame_conv_lstm"])
def test_stream_state_shows_each_conv_cache(name: str, tmp_path: Path) -> None:
    """Stream.state shows each causal conv's frame cache as NAME.cache [B, (kt - 1) dt, *x shape]
    (docs/graph.md section 7): after k steps the last (kt - 1) dt frames of the conv's input in
    run_graph (zeros before the stream's start and in a skipped step), oldest first; reset
    zeroes it."""
    x = np.load(CONV / f"{name}.input.npy")  # [T, B, ...]
    g = to_graph(CONV / f"{name}.onnx")
    caches = _conv_cache_names(g)
    assert caches
    seen: dict[int, list[np.ndarray]] = {}
    run_graph(g, x, seen=seen)
    m = _load(CONV / f"{name}.onnx", tmp_path)
    for k in (1, 3, x.shape[0]):
        s = m.stream(x.shape[1])
        for t in range(k):
            s.step(np.ascontiguousarray(np.swapaxes(x[t : t + 1], 0, 1)[:, 0]))
        st = s.state
        for key, v, frames in caches:
            xin = x if v == g.input else seen[v][0]  # [T, B, *shape]
            padded = np.concatenate([np.zeros((frames,) + xin.shape[1:], np.float32), xin[:k]])
            want = np.swapaxes(padded[-frames:], 0, 1)
            assert st[key].shape == want.shape and st[key].dtype == np.float32, key
            assert _rel(st[key], want) < RTOL if want.any() else not st[key].any(), (key, k)
        s.reset()
        assert not any(s.state[key].any() for key, _, _ in caches)


def test_stream_state_sets_the_conv_caches(tmp_path: Path) -> None:
    """The caches are settable like h / c: a new stream given another's whole state continues it
    bit for bit (without the caches it would start from zero frames); a cache of the wrong shape
    is refused by name and changes nothing."""
    name = "tcn_residual"  # six causal dilated convs between an input conv and an LSTM
    x = np.swapaxes(np.load(CONV / f"{name}.input.npy"), 0, 1)  # [B, T, I]
    m = _load(CONV / f"{name}.onnx", tmp_path)
    a = m.stream(x.shape[0])
    for t in range(6):
        a.step(x[:, t])
    b = m.stream(x.shape[0])
    b.state = a.state
    assert all(np.array_equal(v, b.state[k]) for k, v in a.state.items())
    for t in range(6, x.shape[1]):
        assert np.array_equal(a.step(x[:, t]), b.step(x[:, t])), t
    key = next(k for k in a.state if k.endswith(".cache"))
    before = b.state
    with pytest.raises(InputError, match=re.escape(repr(key))):
        b.state = {key: np.zeros((1, 1), np.float32)}
    assert all(np.array_equal(v, b.state[k]) for k, v in before.items())
    c = m.stream(x.shape[0])
    c.state = {k: v for k, v in a.state.items() if not k.endswith(".cache")}
    assert not np.array_equal(c.step(x[:, 0]), a.step(x[:, 0]))


@pytest.mark.parametrize("quant", ["int16", "int8"])
def test_integer_conv_caches_are_the_oracles(quant: str, tmp_path: Path) -> None:
    """An integer model's caches are the int16 frames run_qgraph keeps (state["convs"]), bit for bit."""
    name = "kws_pad"
    x = np.swapaxes(np.load(CONV / f"{name}.input.npy"), 0, 1)  # [B, T, I]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        qg = rnnedge.convert(CONV / f"{name}.onnx", tmp_path / "m.rne", quant=quant, calibration=x)
    m = rnnedge.load(tmp_path / "m.rne")
    k = 5
    s = m.stream(x.shape[0])
    for t in range(k):
        s.step(x[:, t])
    _, st = fx.run_qgraph(qg, fx.quantize(np.swapaxes(x[:, :k], 0, 1), qg.in_scale))
    names = [qg.values[n.outputs[0]].name + ".cache" for n in qg.nodes if isinstance(n.op, fx.QConv)]
    assert len(names) == 2
    for key, want in zip(names, st["convs"]):
        assert s.state[key].dtype == np.int16
        np.testing.assert_array_equal(s.state[key], np.swapaxes(want, 0, 1))
