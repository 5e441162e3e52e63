"""Graphs end to end (issue "Streaming graphs I"): `rnnedge.convert` -> a format-2 blob ->
`rnnedge.load` -> the C library, for the exporter fixtures (a)-(f) of tests/data/fixtures/graph/
and hand-built ONNX graphs, against onnxruntime (a step function called once per step with its
state fed back, as its user would) and against the integer oracle `fixedpoint.run_qgraph`.

Bars: f32 within 1e-5 of the float output's range (`rnnedge.verify.output_range`), step by step
and in chunks equal to one run bit for bit; int16 within 1e-3, int8 within docs/quantization.md's
bar (1e-2 of the range) of onnxruntime's float output; the C library's integer output and final
state equal run_qgraph's bit for bit. `rnnedge info` and `rnnedge verify` take every blob.

What the runtime on main does not do yet is marked xfail(strict=True, raises=...), with the file
and function at fault (a fix turns the mark into a failure to remove); what crashes the process
is xfail(run=False)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

import rnnedge  # noqa: E402
from rnnedge import fixedpoint as fx  # noqa: E402
from rnnedge.cli import main  # noqa: E402
from rnnedge.converter import pair_states  # noqa: E402
from rnnedge.errors import ConvertError, InputError  # noqa: E402
from rnnedge.ir.graph import Graph  # noqa: E402
from rnnedge.quant.graph import run_float  # noqa: E402
from rnnedge.reference import graph_rows  # noqa: E402
from rnnedge.verify import output_range  # noqa: E402

GRAPH = Path(__file__).parent / "data" / "fixtures" / "graph"
INDEX = json.loads((GRAPH / "index.json").read_text())
F32_TOL, INT16_TOL, INT8_TOL = 1e-5, 1e-3, 1e-2
R = np.random.default_rng(5)

# -- hand-built ONNX graphs (the fixtures' shapes: x [B, T, 4] float or ids, y [B, T, 3]) ---------


def _init(name: str, a: np.ndarray) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(a, np.float32), name)


def _w(*shape: int) -> np.ndarray:
    return (R.standard_normal(shape) * 0.4).astype(np.float32)


def _save(path: Path, nodes, inits, x_type=TensorProto.FLOAT, x_shape=("B", "T", 4)) -> Path:
    g = helper.make_graph(
        nodes, path.stem, [helper.make_tensor_value_info("x", x_type, list(x_shape))],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["B", "T", 3])], inits)
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def gru_gate_residual(path: Path) -> Path:
    """x -> GRU(8) -> h; g = sigmoid(x W_g); h * (g ++ g) + h -> MatMul -> y: a gate (Concat,
    Mul) and a residual around a recurrent op."""
    H = 8
    nodes = [
        helper.make_node("Transpose", ["x"], ["xt"], perm=[1, 0, 2]),  # [T, B, 4]
        helper.make_node("GRU", ["xt", "W", "R", "B"], ["Y", ""], hidden_size=H),
        helper.make_node("Squeeze", ["Y", "ax1"], ["ht"]),  # [T, 1, B, H] -> [T, B, H]
        helper.make_node("Transpose", ["ht"], ["h"], perm=[1, 0, 2]),
        helper.make_node("MatMul", ["x", "Wg"], ["gl"]),
        helper.make_node("Sigmoid", ["gl"], ["g"]),
        helper.make_node("Concat", ["g", "g"], ["gg"], axis=-1),
        helper.make_node("Mul", ["h", "gg"], ["hg"]),
        helper.make_node("Add", ["hg", "h"], ["r"]),
        helper.make_node("MatMul", ["r", "Wo"], ["y"]),
    ]
    inits = [_init("W", _w(1, 3 * H, 4)), _init("R", _w(1, 3 * H, H)), _init("B", _w(1, 6 * H)),
             numpy_helper.from_array(np.array([1], np.int64), "ax1"), _init("Wg", _w(4, H // 2)),
             _init("Wo", _w(H, 3))]
    return _save(path, nodes, inits)


def lstm_layernorm_sub(path: Path) -> Path:
    """x -> Dense -> LSTM(6) -> LayerNorm; y = (LN - Abs(x W_s)) W_o: a difference of two
    branches of the input, a layer norm and a second-branch activation."""
    H = 6
    nodes = [
        helper.make_node("Transpose", ["x"], ["xt"], perm=[1, 0, 2]),  # [T, B, 4]
        helper.make_node("LSTM", ["xt", "W", "R", "B"], ["Y", "", ""], hidden_size=H),
        helper.make_node("Squeeze", ["Y", "ax1"], ["h"]),  # [T, 1, B, H] -> [T, B, H]
        helper.make_node("Transpose", ["h"], ["hb"], perm=[1, 0, 2]),
        helper.make_node("LayerNormalization", ["hb", "gamma", "beta"], ["n"], axis=-1),
        helper.make_node("MatMul", ["x", "Ws"], ["s"]),
        helper.make_node("Abs", ["s"], ["a"]),
        helper.make_node("Sub", ["n", "a"], ["d"]),
        helper.make_node("MatMul", ["d", "Wo"], ["y"]),
    ]
    inits = [_init("W", _w(1, 4 * H, 4)), _init("R", _w(1, 4 * H, H)), _init("B", _w(1, 8 * H)),
             numpy_helper.from_array(np.array([1], np.int64), "ax1"),
             _init("gamma", 1 + _w(H)), _init("beta", _w(H)), _init("Ws", _w(4, H)),
             _init("Wo", _w(H, 3))]
    return _save(path, nodes, inits)


HAND = {"hand_gru_gate_residual": gru_gate_residual, "hand_lstm_layernorm_sub": lstm_layernorm_sub}
NAMES = sorted(INDEX) + sorted(HAND)


@pytest.fixture(scope="module")
def onnx_paths(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("e2e")
    paths = {n: GRAPH / f"{n}.onnx" for n in INDEX}
    paths.update({n: make(d / f"{n}.onnx") for n, make in HAND.items()})
    return paths


def step_function(name: str) -> bool:
    return INDEX.get(name, {}).get("step_function", False)


def model_input(name: str) -> np.ndarray:
    """The input as Model.run takes it: the fixture's [T, B, ...] in the ONNX layout ([B, T, ...]),
    a step function's calls stacked on a first axis T (the fixture's own array)."""
    if name in HAND:
        return _HAND_X
    x = np.load(GRAPH / f"{name}.input.npy")
    return x if step_function(name) else np.ascontiguousarray(np.swapaxes(x, 0, 1))


_HAND_X = np.random.default_rng(9).standard_normal((2, 11, 4)).astype(np.float32)


def ort_reference(path: Path, x: np.ndarray, step: bool) -> np.ndarray:
    """onnxruntime as its user calls it: a sequence model once; a step function once per step,
    the state fed back (zeros first), the converter's pairing (pair_states)."""
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    s = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    ins = {i.name: i for i in s.get_inputs()}
    if not step:
        name = next(iter(ins))
        return s.run(None, {name: x.astype(np.int64) if x.dtype.kind == "i" else x})[0]
    pairing = pair_states(onnx.load(str(path)).graph, str(path), None)
    pairs = [(i.name, o) for i, o, _ in pairing.pairs]
    B = x.shape[1]
    state = {i: np.zeros([B if not isinstance(d, int) else d for d in ins[i].shape], np.float32)
             for i, _ in pairs}  # fmt: skip
    ys = []
    for t in range(x.shape[0]):
        y, *new = s.run([pairing.output] + [o for _, o in pairs], {pairing.signal.name: x[t], **state})
        state = dict(zip([i for i, _ in pairs], new))
        ys.append(y)
    return np.stack(ys)


def rel(a: np.ndarray, want: np.ndarray) -> float:
    """max |a - want| over the float output's range (rnnedge verify's measure)."""
    return float(np.max(np.abs(a.astype(np.float64) - want)) / output_range(want.astype(np.float64)))


# -- what the runtime on main refuses (engineer 1's files), by fixture ----------------------------
CRASH: dict[str, str] = {}  # xfail(run=False): the C library would crash on these (none now)
RUN_BLOCKED: dict[str, str] = {}
INT_BLOCKED: dict[str, str] = {}


def _marks(name: str, blocked: dict[str, str], raises: type = ConvertError) -> list:
    if name in CRASH:
        return [pytest.mark.xfail(run=False, strict=True, reason=CRASH[name])]
    if name not in blocked:
        return []
    return [pytest.mark.xfail(strict=True, raises=raises, reason=blocked[name])]


def _params(blocked: dict[str, str], raises: type = ConvertError) -> list:
    return [pytest.param(n, marks=_marks(n, blocked, raises)) for n in NAMES]


def batch_of(name: str, x: np.ndarray) -> int:
    return x.shape[1] if step_function(name) else x.shape[0]


def c_steps(s, x: np.ndarray, step: bool) -> np.ndarray:
    """Stream.step over every step of x (Model.run's input), stacked as Model.run stacks them."""
    t_axis = 0 if step else 1
    ys = [s.step(np.take(x, t, axis=t_axis)).copy() for t in range(x.shape[t_axis])]
    return np.stack(ys, axis=t_axis)


# -- f32 ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", _params({}))
def test_f32_step_by_step(name: str, onnx_paths, tmp_path: Path) -> None:
    """Stream.step within 1e-5 of onnxruntime's output range; stream.state under the graph's
    state names."""
    path, out = onnx_paths[name], tmp_path / f"{name}.rne"
    g = rnnedge.convert(path, out)
    assert isinstance(g, Graph)
    m = rnnedge.load(out)
    x = model_input(name)
    want = ort_reference(path, x, step_function(name))
    s = m.stream(batch_of(name, x))
    y = c_steps(s, x, step_function(name))
    assert y.shape == want.shape
    assert rel(y, want) < F32_TOL
    names = {sp.name for sp in g.state} | {g.values[i].name for i in g.state_values}
    assert names <= set(s.state)


@pytest.mark.parametrize("name", _params(RUN_BLOCKED, InputError))
def test_f32_run_and_chunks_equal_the_steps(name: str, onnx_paths, tmp_path: Path) -> None:
    """Model.run within 1e-5 of onnxruntime; Stream.step and Stream.run over uneven chunks (the
    state carried) give the same numbers bit for bit."""
    path, out = onnx_paths[name], tmp_path / f"{name}.rne"
    rnnedge.convert(path, out)
    m = rnnedge.load(out)
    x, step = model_input(name), step_function(name)
    y = m.run(x)
    assert rel(y, ort_reference(path, x, step)) < F32_TOL
    np.testing.assert_array_equal(c_steps(m.stream(batch_of(name, x)), x, step), y)
    t_axis = 0 if step else 1
    s = m.stream(batch_of(name, x))
    cuts = [0, 2, 7, x.shape[t_axis]]
    parts = [s.run(np.take(x, np.arange(a, b), axis=t_axis)) for a, b in zip(cuts, cuts[1:])]
    np.testing.assert_array_equal(np.concatenate(parts, axis=t_axis), y)


# -- integer: convert's quantization (Python) --------------------------------------------------
def _calibrated(name: str, path: Path, quant: str) -> Graph:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # an int8 node kept at int16 says so
        return rnnedge.convert(path, quant=quant, calibration=model_input(name))


def _tbf(qg: Graph, x: np.ndarray, step: bool) -> np.ndarray:
    """x as Model.run takes it -> run_graph's [T, B, *input shape]."""
    axes = qg.input_spec.axes
    rows = graph_rows(x, "T" + axes if step else axes)
    return rows.reshape(rows.shape[:2] + qg.values[qg.input].shape)


@pytest.mark.parametrize("quant", ["int16", "int8"])
@pytest.mark.parametrize("name", NAMES)
def test_integer_graph_within_the_bar(name: str, quant: str, onnx_paths) -> None:
    """convert(quant=...) quantizes a graph (calibration as Model.run takes its input) and the
    oracle run_qgraph keeps int16 within 1e-3, int8 within 1e-2 of onnxruntime's range."""
    path, step = onnx_paths[name], step_function(name)
    qg = _calibrated(name, path, quant)
    assert isinstance(qg, Graph) and qg.quant == quant and qg.calibrated
    x = model_input(name)
    y = run_float(qg, _tbf(qg, x, step))  # [T, B, *out]
    want = ort_reference(path, x, step)
    y = y.reshape(y.shape[:2] + (-1,))
    y = y if step else np.swapaxes(y, 0, 1)
    assert rel(y.reshape(want.shape), want) < (INT16_TOL if quant == "int16" else INT8_TOL)


def _expected_state(qg: Graph, st: dict) -> dict[str, np.ndarray]:
    """run_qgraph's final state under Stream.state's names (the blob's state records)."""
    named = {(s.layer, s.kind): s.name for s in qg.state}
    out: dict[str, list[np.ndarray]] = {}
    rec = [i for i, n in enumerate(qg.nodes) if type(n.op).__name__ == "QRecurrent"]
    for k, i in enumerate(rec):
        for j, kind in enumerate("hc"[: len(st["nodes"][k])]):
            out.setdefault(named.get((i, kind), f"{kind}{k}"), []).append(st["nodes"][k][j])
    for k, i in enumerate(qg.state_values):
        out[qg.values[i].name] = [st["values"][k]]
    return {n: np.concatenate(p) for n, p in out.items()}


@pytest.mark.parametrize("quant", ["int16", "int8"])
@pytest.mark.parametrize("name", _params(INT_BLOCKED))
def test_integer_c_equals_run_qgraph(name: str, quant: str, onnx_paths, tmp_path: Path) -> None:
    path, step, out = onnx_paths[name], step_function(name), tmp_path / f"{name}.{quant}.rne"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        qg = rnnedge.convert(path, out, quant=quant, calibration=model_input(name))
    m = rnnedge.load(out)
    x = model_input(name)
    xr = _tbf(qg, x, step)
    xq = xr if qg.values[qg.input].dtype == "s32" else fx.quantize(xr, qg.in_scale)
    yq, st = fx.run_qgraph(qg, xq)
    want = fx.dequantize(yq, qg.out_scale)
    want = want.reshape(want.shape[:2] + (-1,))
    want = want if step else np.swapaxes(want, 0, 1)
    s = m.stream(batch_of(name, x))
    y = c_steps(s, x, step) if step else s.run(x)  # a step function's run: test_f32_run_...
    np.testing.assert_array_equal(y, want.reshape(y.shape))  # output, bit for bit
    got = s.state
    for k, v in _expected_state(qg, st).items():
        np.testing.assert_array_equal(got[k], v, err_msg=k)  # final state, bit for bit
    assert rel(y, ort_reference(path, x, step)) < (INT16_TOL if quant == "int16" else INT8_TOL)


# -- the CLI: convert prints the notes, info and verify take every graph blob -------------------
@pytest.mark.parametrize("name", _params(RUN_BLOCKED, InputError))
def test_cli_convert_info_verify(name: str, onnx_paths, tmp_path: Path,
                                 capsys: pytest.CaptureFixture) -> None:  # fmt: skip
    out, xin = tmp_path / f"{name}.rne", tmp_path / "x.npy"
    assert main(["convert", str(onnx_paths[name]), "-o", str(out)]) == 0
    err = capsys.readouterr()
    g = rnnedge.convert(onnx_paths[name])
    text = err.out + err.err
    for note in g.folded:  # state pairings, absorbed states, dropped outputs: printed
        assert note in text
    assert main(["info", str(out)]) == 0
    assert "state" in capsys.readouterr().out
    np.save(xin, model_input(name))
    rc = main(["verify", str(out), str(onnx_paths[name]), "--input", str(xin),
               "--long-steps", "50"])  # fmt: skip
    table, err = capsys.readouterr()
    if rc:  # the error the CLI printed, as the exception the xfail mark names
        raise InputError(err)
    rows = [r for r in table.splitlines() if r.startswith("| sequence") or r.startswith("| step")]
    assert len(rows) == 2
    for r in rows:
        assert float(r.split("|")[2]) < F32_TOL, table


@pytest.mark.parametrize("name", ["step_lstm", "step_lstm_packed", "hand_cell", "tokens_lstm2"])
def test_verify_runs_onnxruntime_as_the_user_would(name: str) -> None:
    """rnnedge verify's float side: a step function's onnxruntime called once per step with its
    state fed back (the converter's pairing), token ids passed as the model's integer type."""
    from types import SimpleNamespace

    from rnnedge.verify import _Float

    g = rnnedge.convert(GRAPH / f"{name}.onnx")
    fake = SimpleNamespace(input_spec={"name": g.input_spec.name, "axes": g.input_spec.axes})
    x = model_input(name)
    want = ort_reference(GRAPH / f"{name}.onnx", x, step_function(name))
    np.testing.assert_array_equal(_Float(str(GRAPH / f"{name}.onnx"), fake).run(x), want)


def test_convert_writes_a_graph_and_refuses_an_unloadable_one(tmp_path: Path, monkeypatch) -> None:
    """A graph blob is read back as rnnedge.load reads it before it is written: one this build
    cannot load is a ConvertError naming why, and no file is left (nor an old one replaced)."""
    import rnnedge.conversion as conversion
    from rnnedge.errors import BlobError

    out = tmp_path / "m.rne"
    g = rnnedge.convert(GRAPH / "glu_gru.onnx", out)
    assert out.exists() and rnnedge.load(out).blob.header.n_nodes == len(g.nodes)
    before = out.read_bytes()

    def refuse(data, **kw):
        raise BlobError("node 4 (BINARY): something this build cannot load")

    monkeypatch.setattr(conversion, "read_blob", refuse)
    with pytest.raises(ConvertError, match=r"cannot be stored as a loadable blob: node 4 \(BINARY\)"):
        rnnedge.convert(GRAPH / "glu_gru.onnx", out)
    assert out.read_bytes() == before
    with pytest.raises(ConvertError, match="loadable blob"):
        rnnedge.convert(GRAPH / "glu_gru.onnx", tmp_path / "new.rne")
    assert not (tmp_path / "new.rne").exists()


def test_token_calibration_in_the_models_layout() -> None:
    """Token ids calibrate in the model's layout [B, T] (convert turns them into [T, B, 1])."""
    ids = np.load(GRAPH / "tokens_lstm2.input.npy")  # [T, B]
    qg = rnnedge.convert(GRAPH / "tokens_lstm2.onnx", quant="int16",
                         calibration=np.ascontiguousarray(ids.T))  # fmt: skip
    assert qg.calibrated


# -- step functions and tokens in the runtime (docs/graph.md "API") -----------------------------
def test_step_function_layouts(tmp_path: Path) -> None:
    """run(x) takes the calls stacked on a new first axis T; step(x) one call's input in the
    graph's own layout [B, F]; the result likewise [T, B, out] / [B, out]."""
    out = tmp_path / "s.rne"
    rnnedge.convert(GRAPH / "step_lstm.onnx", out)
    m = rnnedge.load(out)
    x = np.load(GRAPH / "step_lstm.input.npy")  # [T, B, F]
    y = m.run(x)
    assert y.shape == (x.shape[0], x.shape[1], 3)
    s = m.stream(x.shape[1])
    y0 = s.step(x[0])
    assert y0.shape == (x.shape[1], 3)
    np.testing.assert_array_equal(y0, y[0])
    with pytest.raises(InputError):
        s.step(x)  # the stacked form is run's, not step's


def test_token_ids_out_of_range_are_an_input_error(tmp_path: Path) -> None:
    out = tmp_path / "t.rne"
    g = rnnedge.convert(GRAPH / "tokens_lstm2.onnx", out)
    V = next(n.op.table.shape[0] for n in g.nodes if type(n.op).__name__ == "Gather")
    m = rnnedge.load(out)
    ids = np.ascontiguousarray(np.load(GRAPH / "tokens_lstm2.input.npy").T)  # [B, T] int64
    assert ids.dtype == np.int64
    m.run(ids)
    bad = ids.copy()
    bad[1, 3] = V
    with pytest.raises(InputError, match=rf"id {V} .*outside \[0, {V}\)"):
        m.run(bad)


def test_the_readme_step_function_block_runs(tmp_path: Path, monkeypatch) -> None:
    import re
    import shutil

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    (code,) = [c for c in re.findall(r"```python\n(.*?)```", readme, re.S) if "step.onnx" in c]
    monkeypatch.chdir(tmp_path)
    shutil.copy(GRAPH / "step_lstm.onnx", "step.onnx")
    x = np.load(GRAPH / "step_lstm.input.npy")[:, :1]  # [T, 1, F]
    scope = {"rnnedge": rnnedge, "np": np, "frames": list(x)}
    exec(compile(code, "README.md (step function)", "exec"), scope)
    np.testing.assert_array_equal(np.stack(scope["ys"]), scope["y"])


# -- long runs: the scratch is the chunk's, not the sequence's -----------------------------------
def test_long_run_scratch_is_bounded_by_the_chunk(tmp_path: Path, monkeypatch) -> None:
    """Model.run over many steps of a streamable graph asks scratch for one chunk of steps: the
    same as for 256 steps (rnnedge.model's chunk), whatever the length."""
    out = tmp_path / "g.rne"
    rnnedge.convert(GRAPH / "glu_gru.onnx", out)
    m = rnnedge.load(out)
    asked: list[int] = []
    real = type(m).scratch_bytes

    def spy(self, batch: int = 1, steps: int = 1) -> int:
        asked.append(steps)
        return real(self, batch, steps)

    monkeypatch.setattr(type(m), "scratch_bytes", spy)
    x = np.random.default_rng(1).standard_normal((1, 5000, 4)).astype(np.float32)
    y = m.run(x)
    assert y.shape == (1, 5000, 3) and max(asked) <= 256
    assert real(m, 1, max(asked)) < 1 << 20  # 86,064 B here, against 672 MB for 2,000,000 steps
