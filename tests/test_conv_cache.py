"""Cache Concat over time in a step function (docs/graph.md section 6, "cache Concat"): the FSMN
memory block spelling (tests/data/fixtures/conv/fsmn_cache.onnx, tests/make_conv_fixtures.py
`fsmn_cache`; FunASR's FSMN VAD in tools/real_models.py) converts to causal CONV nodes that keep
the caches as their frame caches. onnxruntime, fed chunks of frames with the caches carried from
zeros, is the reference: f32 within 1e-5 relative (Model.run, Stream.step, Stream.run by chunks),
the caches in Stream.state equal to its out_cacheN, int16 / int8 within the bar and equal to the
oracle fixedpoint.run_qgraph bit for bit; the variants that are no conv cache are refused by
name."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import helper, numpy_helper  # noqa: E402

import make_conv_fixtures as mcf  # noqa: E402
import rnnedge  # noqa: E402
from rnnedge import fixedpoint as fx  # noqa: E402
from rnnedge.converter import to_graph  # noqa: E402
from rnnedge.errors import ConvertError, UnsupportedOpError  # noqa: E402
from rnnedge.ir.graph import Conv  # noqa: E402

CONV = Path(__file__).parent / "data" / "fixtures" / "conv"
PATH = CONV / f"{mcf.CACHE_NAME}.onnx"
STATE = {f"in_cache{i}": f"out_cache{i}" for i in range(len(mcf.CACHE_BLOCKS))}
FRAMES = [(kt - 1) * dt for kt, dt in mcf.CACHE_BLOCKS]
CUTS = [5, 1, 7, 1]  # chunk lengths (frames per call) over the fixture's 14 frames
RTOL = 1e-5
QTOL = {"int16": 1e-3, "int8": 1e-2}  # of the float output's range, as tests/test_conv_e2e.py


def _x() -> np.ndarray:
    return np.ascontiguousarray(np.swapaxes(np.load(CONV / f"{mcf.CACHE_NAME}.input.npy"), 0, 1))  # [B, T, I]


def _ort_chunks(model: onnx.ModelProto | Path, x: np.ndarray, cuts: list[int]) -> tuple[np.ndarray, list[dict]]:
    """onnxruntime over x [B, T, I] in chunks of `cuts` frames, the caches fed back from zeros:
    the outputs joined along time, and the caches after each chunk."""
    src = str(model) if isinstance(model, Path) else model.SerializeToString()
    s = ort.InferenceSession(src, providers=["CPUExecutionProvider"])
    cache = {f"in_cache{i}": np.zeros((x.shape[0], mcf.CACHE_C, n, 1), np.float32) for i, n in enumerate(FRAMES)}
    ys, caches, t = [], [], 0
    for n in cuts:
        y, *outs = s.run(None, {"x": x[:, t : t + n], **cache})
        cache = {f"in_cache{i}": c for i, c in enumerate(outs)}
        ys.append(y)
        caches.append(cache)
        t += n
    return np.concatenate(ys, axis=1), caches


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-30))


def _convert(src: onnx.ModelProto | Path, tmp_path: Path, quant: str = "f32", calibration=None):
    if not isinstance(src, Path):
        onnx.save(src, tmp_path / "m.onnx")
        src = tmp_path / "m.onnx"
    out = tmp_path / f"m_{quant}.rne"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # int8 nodes kept at int16 weights
        g = rnnedge.convert(src, out, state=STATE, quant=quant, calibration=calibration)
    return g, rnnedge.load(out)


def _cache_keys(m: rnnedge.Model, s) -> list[str]:
    keys = [k for k in s.state if k.endswith(".cache")]
    assert keys == [f"b{i}/conv.cache" for i in range(len(FRAMES))], keys
    return keys


def test_the_caches_become_the_convs_frame_caches():
    g = to_graph(PATH, state=STATE)
    found = to_graph(PATH)  # in_cacheN / out_cacheN pair by name (FunASR's names)
    assert [type(n.op) for n in found.nodes] == [type(n.op) for n in g.nodes]
    assert all(f"input 'in_cache{i}' <- output 'out_cache{i}' (by name" in " ".join(found.folded)
               for i in range(len(FRAMES)))
    assert not g.explicit_state and not g.state_values  # no STATE value left: a sequence graph
    assert (g.input_spec.axes, g.output_spec.axes) == ("BTF", "BTF")
    convs = [n.op for n in g.nodes if isinstance(n.op, Conv)]
    assert [(c.kt, c.dt, c.groups, c.cache_frames) for c in convs] == [
        (kt, dt, mcf.CACHE_C, n) for (kt, dt), n in zip(mcf.CACHE_BLOCKS, FRAMES)]
    for i, n in enumerate(FRAMES):
        assert any(f"input 'in_cache{i}' / output 'out_cache{i}' is the last {n} frames before the steps "
                   f"of Conv 'b{i}/conv'" in note and f"'b{i}/conv.cache'" in note for note in g.folded)


def test_f32_runs_steps_and_chunks_as_onnxruntime_and_shows_its_caches(tmp_path: Path):
    x = _x()
    ref, caches = _ort_chunks(PATH, x, CUTS)
    _, m = _convert(PATH, tmp_path)
    y = m.run(x)
    assert y.shape == ref.shape and _rel(y, ref) < RTOL
    s = m.stream(x.shape[0])
    ys = np.stack([s.step(x[:, t]) for t in range(x.shape[1])], axis=1)
    assert np.array_equal(ys, y)  # streaming equals run bit for bit
    keys = _cache_keys(m, s)
    for k, n, i in zip(keys, FRAMES, range(len(FRAMES))):  # [B, n, C, 1] against ONNX's [B, C, n, 1]
        assert s.state[k].shape == (x.shape[0], n, mcf.CACHE_C, 1)
        assert _rel(s.state[k], np.swapaxes(caches[-1][f"in_cache{i}"], 1, 2)) < RTOL
    s.reset()
    parts, t = [], 0
    for n in CUTS:
        parts.append(s.run(x[:, t : t + n]))
        t += n
    assert np.array_equal(np.concatenate(parts, axis=1), y)
    # a stream given onnxruntime's caches after the first chunk continues as onnxruntime does
    c = m.stream(x.shape[0])
    c.state = {k: np.swapaxes(caches[0][f"in_cache{i}"], 1, 2) for i, k in enumerate(keys)}
    assert _rel(c.run(x[:, CUTS[0]:]), ref[:, CUTS[0]:]) < RTOL


def test_the_fsmn_spelling_with_batch_1_fixed(tmp_path: Path):
    """The FSMN VAD's own shapes: x [1, T, I], caches [1, C, n, 1] (the batch a fixed 1, so the
    cache's axis 0 is taken as the batch of one)."""
    mp = mcf.fsmn_cache(batch=1)
    x = _x()[:1]
    ref, _ = _ort_chunks(mp, x, CUTS)
    g, m = _convert(mp, tmp_path)
    assert g.input_spec.shape == [1, None, mcf.CACHE_I] and not g.state_values
    assert _rel(m.run(x), ref) < RTOL


@pytest.mark.parametrize("quant", ["int16", "int8"])
def test_integer_within_the_bar_and_c_equals_run_qgraph(quant: str, tmp_path: Path):
    x = _x()
    ref, _ = _ort_chunks(PATH, x, CUTS)
    qg, m = _convert(PATH, tmp_path, quant, calibration=x)
    yq, st = fx.run_qgraph(qg, fx.quantize(np.swapaxes(x, 0, 1), qg.in_scale))
    want = np.swapaxes(fx.dequantize(yq, qg.out_scale), 0, 1).reshape(ref.shape)
    y = m.run(x)
    np.testing.assert_array_equal(y, want)  # C run == oracle, bit for bit
    s = m.stream(x.shape[0])
    np.testing.assert_array_equal(np.stack([s.step(x[:, t]) for t in range(x.shape[1])], axis=1), want)
    for k, c in zip(_cache_keys(m, s), st["convs"]):  # the int16 frames the oracle keeps
        assert s.state[k].dtype == np.int16
        np.testing.assert_array_equal(s.state[k], np.swapaxes(c, 0, 1))
    assert float(np.abs(y - ref).max()) / float(ref.max() - ref.min()) < QTOL[quant]


def _edit(fn) -> onnx.ModelProto:
    mp = mcf.fsmn_cache()
    fn(mp.graph, {n.name or n.output[0]: n for n in mp.graph.node}, {i.name: i for i in mp.graph.initializer})
    return mp


def _set_init(inits: dict, name: str, value: np.ndarray) -> None:
    inits[name].CopyFrom(numpy_helper.from_array(value, name))


def _dilation_2(g, nodes, inits):
    conv = nodes["b0/conv"]
    conv.attribute.remove(next(a for a in conv.attribute if a.name == "dilations"))
    conv.attribute.append(helper.make_attribute("dilations", [2, 1]))


def _relu_reads_the_concat(g, nodes, inits):
    g.node.insert(list(g.node).index(nodes["b0/conv"]), helper.make_node("Relu", ["b0/cat"], ["b0/r"]))
    nodes["b0/conv"].input[0] = "b0/r"


def _swap_outputs(g, nodes, inits):
    nodes["out_cache0"].output[0], nodes["out_cache1"].output[0] = "out_cache1", "out_cache0"


REFUSALS = {
    "window": (_dilation_2, UnsupportedOpError, "node 'b0/conv' (op Conv, #", "Conv over a cache Concat of 3 frames of "
               "state 'in_cache0' before the steps, kernel 4, dilation 2, time pads [0, 0]: the cache must be the "
               "conv's whole window, (kernel - 1) * dilation = 6 frames"),
    "slice": (lambda g, n, i: _set_init(i, "start0", np.array([-2], np.int64)), UnsupportedOpError,
              "(op Slice, #", "Slice [-2:9223372036854775807:1] on axis 2 of a cache Concat [B,F8,T,F1] "
              "(the 3 frames of a state before the steps): only [-3:] along time"),
    "reader": (_relu_reads_the_concat, UnsupportedOpError, "(op Relu, #", "Relu of a tensor with the 3 frames of state "
               "'in_cache0' before its steps (a cache Concat over time; its Slice [-3:] is the next cache)"),
    "pairs": (_swap_outputs, ConvertError, "", "state output 'out_cache0' is the last 4 frames of the cache Concat "
              "of state 'in_cache1', not of its input 'in_cache0'"),
}


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_what_is_no_conv_cache_is_refused_by_name(case: str, tmp_path: Path):
    edit, kind, where, text = REFUSALS[case]
    mp = _edit(edit)
    with pytest.raises(kind, match=re.escape(text)) as e:
        to_graph(mp, state=STATE)
    assert where in str(e.value)
