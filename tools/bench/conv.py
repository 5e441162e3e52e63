"""Conv front ends at their multiply-add floor (issue 13; docs/benchmarks.md "Conv front ends"):
`tools/bench.py --conv`.

Cases at realistic sizes: a keyword spotter (40 log-mel features -> a pointwise Conv1d to 64
channels, then three causal dilated depthwise-separable blocks, k 3, d 1 / 2 / 4, ReLU -> GRU 64
-> 12 classes), a conv over the 40 features of each frame (Conv2d kernel (1, 5) to 8 channels,
(1, 3) 8 -> 8, ReLU, flattened -> LSTM 64), each also without its recurrent tail (the front end
alone), and the real Silero VAD (its STFT as a Conv over the 576 samples of a window, the conv
encoder, the LSTM; tools/real_models.py's copy, fed its own framing of the committed recording).

Per case and format: the multiply-adds of one step (counted on the converted graph), the floor
(`bench_step --macs`: a plain f32 matrix-vector product with that many multiply-adds, timed on this
machine), `rne_step` in C, `Stream.step`, and onnxruntime stepped one `run()` per step on the same
ONNX file (float, and its quantize_dynamic int8). The built cases' onnxruntime steps run the
sequence model on one frame, the GRU / LSTM state fed back (rnnedge.ort_step): each causal conv
then sees its zero pads instead of the past frames, the same multiply-adds per step as a
streaming conv without its history (a cost, not an output, to compare); Silero is stepped in its
own form (window in, state fed back). Every rnnedge stream is checked against onnxruntime's output
over the whole sequence first (`max_abs_err`).
"""

from __future__ import annotations

import importlib.util
import sys
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from rnnedge.errors import InputError, RnnedgeError
from rnnedge.measure import module_available

from .cases import _F32, Case
from .engines import OrtEngine, ort_int8_engine
from .probes import _run_json, source_root
from .report import _table, _us
from .timing import time_steps

CONV_FORMATS = ("f32", "int8")
FLOOR_N = 64  # the floor's matrix-vector product: y[64] += x[K] W[K][64]
# rne_step's warm-up in C (bench_step, a fresh process per blob): the core's clock ramps up over
# its first milliseconds, and 200 steps of a 0.5 us front end are 0.1 ms (its median then ran
# 30-50 % high in about one run in three); 20,000 steps are 10 ms of the smallest case
C_WARMUP = 20000


@dataclass(frozen=True)
class ConvCase:
    """One conv front end: built here ("kws", "frame"; `tail` False: the convs alone) or a real
    model of tools/real_models.py (`real`: its registry key)."""

    name: str
    kind: str
    tail: bool = True
    real: str = ""
    features: int = 40

    def describe(self) -> str:
        return {
            "kws": "pointwise 40 -> 64, 3 x (causal depthwise k 3 d 1/2/4 + pointwise 64, ReLU)",
            "frame": "Conv2d (1, 5) 1 -> 8 and (1, 3) 8 -> 8 over 40 features, ReLU",
            "real": "STFT Conv 1 -> 258 (k 256, s 128) over 576 samples, 4 encoder convs",
        }[self.kind] + (" -> " + {"kws": "GRU 64 -> 12", "frame": "LSTM 64",
                                  "real": "LSTM 128 -> 1"}[self.kind] if self.tail else "")


def conv_cases() -> list[ConvCase]:
    return [
        ConvCase("kws-dwsep-gru", "kws"),
        ConvCase("kws-dwsep-front", "kws", tail=False),
        ConvCase("frame-conv-lstm", "frame"),
        ConvCase("frame-conv-front", "frame", tail=False),
        ConvCase("silero_vad_v6", "real", real="silero_vad_v6", features=576),
    ]


def select_conv_cases(names: str | None) -> list[ConvCase]:
    cases = conv_cases()
    if not names:
        return cases
    wanted = [n.strip() for n in names.split(",") if n.strip()]
    unknown = [n for n in wanted if n not in {c.name for c in cases}]
    if unknown:
        raise InputError(f"unknown conv case(s) {', '.join(unknown)}; the conv cases are "
                         f"{', '.join(c.name for c in cases)}")
    return [c for c in cases if c.name in wanted]


# -- the built models ----------------------------------------------------------------------------


def build_conv_onnx(case: ConvCase, seed: int = 0):
    """x [batch, seq, 40] -> the case's convs (causal: pads [(k - 1) d, 0] over time, as tf2onnx
    and the dynamo exporter write them) -> [GRU / LSTM ->] y [batch, seq, *]. Weights uniform in
    +-1/sqrt(fan-in), PyTorch's initial scale; opset 17."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed + sum(map(ord, case.name)))
    nodes: list[Any] = []
    inits: list[Any] = []

    def init(name: str, a: np.ndarray) -> str:
        inits.append(numpy_helper.from_array(a, name))
        return name

    def uniform(shape: tuple[int, ...], fan_in: int) -> np.ndarray:
        s = 1.0 / np.sqrt(fan_in)
        return rng.uniform(-s, s, shape).astype(_F32)

    def node(op: str, inputs: list[str], out: str, **attrs: Any) -> str:
        nodes.append(helper.make_node(op, inputs, [out], name=out, **attrs))
        return out

    def conv(x: str, name: str, c_in: int, c_out: int, kernel: tuple[int, ...],
             dilation: int = 1, groups: int = 1, pads: list[int] | None = None) -> str:  # fmt: skip
        fan = c_in // groups * int(np.prod(kernel))
        w = init(name + ".w", uniform((c_out, c_in // groups, *kernel), fan))
        b = init(name + ".b", uniform((c_out,), fan))
        return node("Conv", [x, w, b], name, kernel_shape=list(kernel), group=groups,
                    dilations=[dilation] * len(kernel), pads=pads or [0] * 2 * len(kernel))

    f, h = case.features, 64
    if case.kind == "kws":
        c = 64
        x = node("Relu", [conv(node("Transpose", ["x"], "xt", perm=[0, 2, 1]), "pw0", f, c, (1,))],
                 "relu0")
        for i, d in enumerate((1, 2, 4)):
            x = conv(x, f"dw{i}", c, c, (3,), d, groups=c, pads=[2 * d, 0])
            x = node("Relu", [conv(x, f"pw{i + 1}", c, c, (1,))], f"relu{i + 1}")
        width, cell, out = c, "GRU", 12
        front = node("Transpose", [x], "front", perm=[0, 2, 1])  # [B, T, C]
    elif case.kind == "frame":
        c = 8
        x = node("Unsqueeze", ["x", init("axis1", np.array([1], np.int64))], "x4")  # [B, 1, T, F]
        x = node("Relu", [conv(x, "conv0", 1, c, (1, 5), pads=[0, 2, 0, 2])], "relu0")
        x = node("Relu", [conv(x, "conv1", c, c, (1, 3), pads=[0, 1, 0, 1])], "relu1")
        x = node("Transpose", [x], "btcf", perm=[0, 2, 1, 3])
        shape = init("shape", np.array([0, 0, c * f], np.int64))
        front = node("Reshape", [x, shape], "front")  # [B, T, C F]
        width, cell, out = c * f, "LSTM", 0
    else:
        raise InputError(f"{case.name}: no builder for kind {case.kind!r}")
    if case.tail:
        gates = 3 if cell == "GRU" else 4
        w = init("W", uniform((1, gates * h, width), h))
        r = init("R", uniform((1, gates * h, h), h))
        b = init("B", uniform((1, 2 * gates * h), h))
        attrs: dict[str, Any] = {"linear_before_reset": 1} if cell == "GRU" else {}
        seq = node("Transpose", [front], "seq", perm=[1, 0, 2])  # [T, B, width]
        y = node(cell, [seq, w, r, b], "Y", hidden_size=h, **attrs)
        y = node("Squeeze", [y, init("axis1s", np.array([1], np.int64))], "Ys")
        y = node("Transpose", [y], "Yb", perm=[1, 0, 2])  # [B, T, H]
        if out:
            y = node("MatMul", [y, init("head.w", uniform((h, out), h))], "head")
            y = node("Add", [y, init("head.b", uniform((out,), h))], "y")
        width = out or h
    else:
        y = front
    nodes[-1].output[0] = "y"
    graph = helper.make_graph(
        nodes, case.name,
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", "seq", f])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", "seq", width])],
        inits,
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)],
                              producer_name="rnnedge bench")  # fmt: skip
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


# -- multiply-adds -------------------------------------------------------------------------------


def macs_per_step(graph: Any) -> int:
    """The multiply-adds of one step of a float graph (rnnedge.ir.graph.Graph) at batch 1: its
    dense layers, convs (transposed: every input element times C_out / groups times kw) and
    recurrent cells (G H (I + H) per direction); activations, element-wise ops and copies count
    nothing."""
    from rnnedge.ir.graph import Conv
    from rnnedge.ir.layers import Dense, Recurrent

    total = 0
    for n in graph.nodes:
        op, x = n.op, graph.values[n.inputs[0]] if n.inputs and n.inputs[0] is not None else None
        if isinstance(op, Dense):
            total += op.weight.size * (x.features // op.in_features if x is not None else 1)
        elif isinstance(op, Recurrent):
            total += op.W.size + op.R.size
        elif isinstance(op, Conv):
            y = graph.values[n.outputs[0]]
            w = op.weight
            if op.transpose:
                total += x.features * (w.shape[1] * w.shape[3])
            else:
                total += y.features * (w.shape[1] * w.shape[2] * w.shape[3])
    return int(total)


def mac_floor(exe: Path, macs: int) -> dict[str, Any]:
    """`bench_step --macs`: the best of 50 timed blocks of a plain f32 matrix-vector product of
    `macs` multiply-adds (rounded up to a multiple of 64)."""
    r = _run_json([str(exe), "--macs", str(max(macs, 1))])
    r["method"] = f"tools/bench_step.c --macs: y[{FLOOR_N}] += x[K] W[K][{FLOOR_N}], -O3 -march=native"
    return r


# -- the real model ------------------------------------------------------------------------------


def _real_models():
    """tools/real_models.py as a module (it is a script beside tools/bench/)."""
    root = source_root()
    path = (root / "tools" / "real_models.py") if root else None
    if path is None or not path.is_file():
        raise RnnedgeError("tools/real_models.py not found (a source checkout is needed)")
    spec = importlib.util.spec_from_file_location("rnnedge_real_models", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # its dataclasses look their module up there
    spec.loader.exec_module(mod)
    return mod


@dataclass
class Prepared:
    """A case ready to time: its ONNX file, one blob per format, the per-step inputs in the
    rnnedge stream's layout, onnxruntime steppers and the reference outputs of those steps."""

    onnx: Path
    blobs: dict[str, Path]
    macs: int
    steps: list[np.ndarray]
    ort_steps: list[np.ndarray]  # the same steps in the shape onnxruntime's steppers take
    reference: np.ndarray  # onnxruntime's output for every step of `steps`, concatenated
    ort: dict[str, Callable[[], Callable[[np.ndarray], np.ndarray]]]
    notes: list[str]


def _prepare_built(case: ConvCase, work: Path, formats: tuple[str, ...], n: int,
                   rng: np.random.Generator) -> Prepared:  # fmt: skip
    import onnx

    import rnnedge

    from .runner import convert_quiet

    path = work / f"{case.name}.onnx"
    onnx.save(build_conv_onnx(case), str(path))
    x = rng.standard_normal((1, n, case.features)).astype(_F32)
    calib = rng.standard_normal((8, 100, case.features)).astype(_F32)
    blobs, notes = {}, []
    for fmt in formats:
        blobs[fmt] = work / f"{case.name}.{fmt}.rne"
        notes += convert_quiet(path, blobs[fmt], fmt, calib if fmt != "f32" else None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        graph = rnnedge.convert(str(path))
    from rnnedge.ort_step import ort_session

    reference = ort_session(path).run(None, {"x": x})[0][0]  # [T, out]
    steps = [np.ascontiguousarray(x[:, t]) for t in range(n)]  # [1, F] per step
    ort: dict[str, Callable[[], Callable[[np.ndarray], np.ndarray]]] = {}
    if module_available("onnxruntime"):
        ort["ort"] = OrtEngine("ort", path, "BTF", "BTF", case.features).stepper
        q8 = ort_int8_engine(path, work, Case(case.name, features=case.features), "BTF", "BTF",
                             {"notes": notes})  # fmt: skip
        ort["ort-int8"] = q8.stepper
    ort_steps = [np.ascontiguousarray(x[:, t : t + 1]) for t in range(n)]  # [1, 1, F]
    return Prepared(path, blobs, macs_per_step(graph), steps, ort_steps, reference, ort, notes)


def _prepare_real(case: ConvCase, work: Path, formats: tuple[str, ...], n: int) -> Prepared:
    rm = _real_models()
    m = rm.BY_KEY[case.real]
    path = rm.model_path(m)
    if path is None:
        raise RnnedgeError(f"{case.real}: not in tests/data/real/ nor the cache; run "
                           "`python tools/real_models.py fetch`")
    audio = np.load(source_root() / "tests" / "data" / "real" / "speech_noise_16k.npy")
    calls = getattr(rm, m.framing)(audio.astype(np.float32), m)
    steps = calls[:n]
    if len(steps) < n:
        steps = (steps * (n // len(steps) + 1))[:n]
    f32 = rm.convert(path, m)
    blobs: dict[str, Path] = {}
    for fmt in formats:
        result = f32 if fmt == "f32" else rm.quantize(f32, fmt, rm.calibration(m, calls, f32))
        blobs[fmt] = work / f"{case.name}.{fmt}.rne"
        blobs[fmt].write_bytes(rm.blob_of(result))
    reference = np.concatenate([np.asarray(y).reshape(1, -1) for y in rm.ort_steps(path, m, steps)])
    ort: dict[str, Callable[[], Callable[[np.ndarray], np.ndarray]]] = {}
    notes: list[str] = []
    if module_available("onnxruntime"):
        ort["ort"] = lambda: _real_stepper(rm, path, m)
        from onnxruntime.quantization import QuantType, quantize_dynamic

        q8 = work / f"{case.name}.ort-int8.onnx"
        try:
            quantize_dynamic(path, q8, weight_type=QuantType.QInt8)
            ort["ort-int8"] = lambda: _real_stepper(rm, q8, m)
        except Exception as e:  # noqa: BLE001 - say why and go on without it
            notes.append(f"onnxruntime int8: quantize_dynamic failed: {str(e).splitlines()[0]}")
    return Prepared(path, blobs, macs_per_step(f32), steps, steps, reference, ort, notes)


def _real_stepper(rm: Any, path: Path, m: Any) -> Callable[[np.ndarray], np.ndarray]:
    """onnxruntime on a real step model: one run() per window, the state pairs fed back."""
    sess = rm._session(path)
    data = next(i.name for i in sess.get_inputs() if i.name not in m.fixed and i.name not in dict(m.state))
    names = [o.name for o in sess.get_outputs()]
    side = {k: np.array(v, dtype=np.int64) for k, v in m.fixed.items()}
    state = rm.initial_state(sess, m)
    run, pairs = sess.run, [(i, names.index(o)) for i, o in m.state]

    def step(x: np.ndarray) -> np.ndarray:
        res = run(None, {data: x, **state, **side})
        for i, k in pairs:
            state[i] = res[k]
        return res[0]

    return step


# -- one case, a run -----------------------------------------------------------------------------


def bench_conv_case(case: ConvCase, formats: tuple[str, ...], steps: int, warmup: int,
                    work: Path, exe: Path | None, seed: int = 0) -> dict[str, Any]:  # fmt: skip
    """Every figure of one conv case (see the module's docstring)."""
    import rnnedge

    from .probes import c_step_time

    work.mkdir(parents=True, exist_ok=True)
    n = steps + warmup
    rng = np.random.default_rng(seed + 1)
    if case.kind == "real":
        p = _prepare_real(case, work, formats, n)
    else:
        p = _prepare_built(case, work, formats, n, rng)
    check = min(n, 100)
    result: dict[str, Any] = {"case": case.name, "describe": case.describe(), "macs": p.macs,
                              "notes": p.notes, "formats": {}, "ort": {}}  # fmt: skip
    if exe is not None:
        result["floor"] = mac_floor(exe, p.macs)
    for fmt, blob in p.blobs.items():
        model = rnnedge.load(blob)
        r: dict[str, Any] = {"blob_bytes": blob.stat().st_size, "weight_bytes": int(model.weight_bytes)}
        stream = model.stream(1)
        ys = np.concatenate([np.asarray(stream.step(x)).reshape(1, -1) for x in p.steps[:check]])
        r["max_abs_err"] = float(np.abs(ys - p.reference[:check].reshape(check, -1)).max())
        r["step"] = time_steps(model.stream(1).step, p.steps, warmup)
        if exe is not None:
            r["c_step"] = c_step_time(exe, blob, steps, max(warmup, C_WARMUP))
        result["formats"][fmt] = r
    for name, make in p.ort.items():
        step = make()
        ys = np.concatenate([np.asarray(step(x)).reshape(1, -1) for x in p.ort_steps[:check]])
        o: dict[str, Any] = {"step": time_steps(make(), p.ort_steps, warmup)}
        if case.kind == "real":  # stepped in its own form: its outputs are the stream's
            o["max_abs_err"] = float(np.abs(ys - p.reference[:check].reshape(check, -1)).max())
        result["ort"][name] = o
    return result


def run_conv(cases: list[ConvCase], formats: tuple[str, ...] = CONV_FORMATS, steps: int = 2000,
             warmup: int = 200, work: Path | None = None) -> dict[str, Any]:  # fmt: skip
    """Every conv case; {"machine", "cases"} ready for JSON."""
    from .probes import build_c_bench, machine

    with tempfile.TemporaryDirectory(prefix="rnnedge-conv-bench-") as tmp:
        work = work or Path(tmp)
        exe, note = None, ""
        try:
            exe = build_c_bench(work / "c")
        except RnnedgeError as e:
            note = f"C step time and floor not measured: {e}"
        out: dict[str, Any] = {"machine": machine(), "note": note, "formats": list(formats),
                               "steps": steps, "warmup": warmup,
                               "c_warmup": max(warmup, C_WARMUP), "cases": []}  # fmt: skip
        for case in cases:
            try:
                out["cases"].append(bench_conv_case(case, formats, steps, warmup, work / case.name, exe))
            except RnnedgeError as e:
                out["cases"].append({"case": case.name, "error": str(e)})
        return out


def conv_markdown(results: dict[str, Any]) -> str:
    """The conv table: per case and format, the floor, the C and Python steps, their ratio to the
    floor and onnxruntime's step."""
    rows = []
    for c in results["cases"]:
        if "error" in c:
            rows.append([c["case"], "-", "-", "-", c["error"], "", "", "", "", ""])
            continue
        floor = (c.get("floor") or {}).get("product_us")
        for fmt, r in c["formats"].items():
            cs = (r.get("c_step") or {}).get("median_us")
            ort = c["ort"].get("ort-int8" if fmt != "f32" else "ort", {}).get("step", {})
            py = r["step"]["median_us"]
            rows.append([
                c["case"], fmt, f"{c['macs']:,}", _us(floor), _us(cs),
                f"{cs / floor:.2f}" if cs and floor else "-", _us(py),
                f"{py / floor:.2f}" if floor else "-", _us(ort.get("median_us")),
                f"{r['max_abs_err']:.1e}",
            ])  # fmt: skip
    m = results["machine"]
    load = m.get("load_average")
    gmacs = [f"{c['case']} {c['floor']['gmacs']:.1f}" for c in results["cases"] if c.get("floor")]
    note = (
        f"{m.get('date', '')} {m['cpu']}, load average at the start "
        f"{', '.join(f'{v:.2f}' for v in load) if load else '-'}; {results['steps']} steps after "
        f"{results['warmup']} of warm-up (C: {results.get('c_warmup', results['warmup']):,}), "
        "batch 1, median us. floor: a plain f32 matrix-vector "
        "product of the step's multiply-adds (`bench_step --macs`; GMAC/s: "
        f"{', '.join(gmacs) or '-'}); C: `rne_step`; Python: `Stream.step`; onnxruntime: one "
        "`run()` per step (int8 rows: its quantize_dynamic model); err: max |rnnedge - "
        "onnxruntime| over 100 steps."
    )
    header = ["case", "format", "MACs / step", "floor", "C step", "C / floor", "Python step",
              "Python / floor", "onnxruntime step", "err"]  # fmt: skip
    lines = [_table("Conv front ends: per step against the multiply-add floor (us)", header, rows, note)]
    lines += ["", "Cases:"] + [f"- {c['case']}: {c.get('describe', '')}" for c in results["cases"]]
    return "\n".join(lines)
