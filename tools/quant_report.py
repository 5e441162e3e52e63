"""Measure the integer formats on every converter fixture and on the bundled example, through the
real writer and the C runtime: accuracy against onnxruntime's float output, and blob size against
the ONNX file with where its bytes go. Prints the two markdown tables of docs/quantization.md
section 9.

Inputs are realistic and held out: each fixture is calibrated on 64 sequences of the synthetic
task it was trained on (tools/make_fixtures.py `signals`) and measured on 256 others; the bundled
HAR example is calibrated on its 40 training recordings and measured on its 40 test recordings,
and, as two more rows, calibrated on either half of the test recordings and measured on the other.
Errors and argmax agreement are taken over every step's output: a model with a head on every
step outputs one vector per step, and a many-to-one model is run on every prefix of each sequence
(its streaming output: what `step` returns there). The error is max |rnnedge - onnxruntime| over
the float outputs' range (max - min); state inputs of the graph get zeros, as the blob does.

    python tools/quant_report.py [--json OUT.json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import rnnedge
from rnnedge.blob.read import read_blob
from rnnedge.blob.spec import T_P, T_R, T_W
from rnnedge.examples import EXAMPLE_ONNX, load_test_set, load_train_set
from rnnedge.verify import compare

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "data" / "fixtures"
sys.path.insert(0, str(ROOT / "tools"))
from make_fixtures import signals  # noqa: E402  (the fixtures' training task)

CALIB_N, MEASURE_N, STEPS = 63, 255, 16  # multiples of 3: fixtures exported with a static batch of 3


@dataclass
class Case:
    name: str
    onnx: Path
    calib: np.ndarray  # the ONNX input's own layout
    x: np.ndarray
    sizes: bool = True  # a row of the size table (a second calibration of a model: no)
    fixed: dict | None = None  # side inputs fixed at conversion (index.json "fixed"), fed to onnxruntime too


class Float:
    """onnxruntime on the ONNX model; zeros for state inputs. A graph exported with a static batch
    size gets the input in chunks of that size."""

    def __init__(self, onnx: Path, in_axes: str, out_axes: str, fixed: dict | None = None) -> None:
        import onnxruntime as ort

        self.fixed = fixed or {}

        options = ort.SessionOptions()
        options.log_severity_level = 3
        self.session = ort.InferenceSession(str(onnx), options, providers=["CPUExecutionProvider"])
        self.b_in, self.b_out = in_axes.index("B"), out_axes.index("B")
        dim = self.session.get_inputs()[0].shape[self.b_in]
        self.chunk = dim if isinstance(dim, int) else None

    def _run(self, x: np.ndarray) -> np.ndarray:
        inputs = self.session.get_inputs()
        feeds = {inputs[0].name: x}
        for i in inputs[1:]:
            if i.name in self.fixed:
                dtype = np.int64 if "int64" in i.type else np.float32
                feeds[i.name] = np.asarray(self.fixed[i.name], dtype).reshape([d for d in i.shape if isinstance(d, int)])
                continue
            feeds[i.name] = np.zeros([d if isinstance(d, int) else x.shape[self.b_in] for d in i.shape], np.float32)
        return self.session.run([self.session.get_outputs()[0].name], feeds)[0]

    def __call__(self, x: np.ndarray) -> np.ndarray:
        if self.chunk is None:
            return self._run(x)
        n = x.shape[self.b_in]
        parts = [np.take(x, np.arange(i, i + self.chunk), axis=self.b_in) for i in range(0, n, self.chunk)]
        return np.concatenate([self._run(p) for p in parts], axis=self.b_out)


def task_inputs(onnx: Path, seed: int, fixed: dict | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(calibration, measurement) sequences of the fixture's task, in the graph's input layout
    (which the converter reads off the graph)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        spec = rnnedge.convert(onnx, None, fixed=fixed).input
    axes, shape = spec.axes, list(spec.shape)
    steps = shape[axes.index("T")] or STEPS
    rng = np.random.default_rng(seed)
    out = []
    for n in (CALIB_N, MEASURE_N):
        x = signals(rng, n, steps, shape[axes.index("F")])  # [B, T, F]
        out.append(np.ascontiguousarray(x.transpose(["BTF".index(a) for a in axes])))
    return out[0], out[1]


def cases() -> list[Case]:
    x, _, _ = load_test_set()
    train = load_train_set()[0]
    out = [
        Case("har_lstm (bundled example)", EXAMPLE_ONNX, train, x),
        Case("har_lstm, calibrated on test recordings 0-19, measured on 20-39", EXAMPLE_ONNX, x[:20], x[20:],
             sizes=False),
        Case("har_lstm, calibrated on test recordings 20-39, measured on 0-19", EXAMPLE_ONNX, x[20:], x[:20],
             sizes=False),
    ]
    for i, e in enumerate(json.loads((FIXTURES / "index.json").read_text())):
        if e["error"]:
            continue
        onnx = FIXTURES / f"{e['name']}.onnx"
        calib, xm = task_inputs(onnx, 1000 + i, e.get("fixed"))
        out.append(Case(e["name"] + (" (state inputs: zeros)" if e["state"] else ""), onnx, calib, xm,
                        fixed=e.get("fixed")))
    return out


def outputs(model: rnnedge.Model, ref: Float, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """rnnedge's and onnxruntime's output for every step: the sequence output, or for a
    many-to-one model the output of every prefix, stacked on a new leading axis."""
    axes = model.input_spec["axes"]
    if not model.many_to_one:
        return model.run(x), ref(x)
    t = axes.index("T")
    prefixes = [np.take(x, np.arange(k), axis=t) for k in range(1, x.shape[t] + 1)]
    return np.stack([model.run(p) for p in prefixes]), np.stack([ref(p) for p in prefixes])


def size_split(path: str) -> dict[str, int]:
    """Bytes of a blob: weights (W, R, peepholes), the other tensors (biases, multipliers and
    integer parameters, initial state, tables), and the rest (header, tables, metadata,
    alignment padding, CRC)."""
    blob = read_blob(Path(path).read_bytes())
    weights = {rec.tensor[r] for rec in blob.layers for r in (T_W, T_R, T_P) if rec.tensor[r] >= 0}
    w = sum(t.nbytes for t in blob.tensors if t.index in weights)
    p = sum(t.nbytes for t in blob.tensors if t.index not in weights)
    total = os.path.getsize(path)
    return {"bytes": total, "weight_bytes": w, "param_bytes": p, "container_bytes": total - w - p}


def measure(case: Case, tmp: str) -> dict:
    row: dict = {"name": case.name, "onnx_bytes": case.onnx.stat().st_size, "sizes": case.sizes}
    for quant in ("f32", "int16", "int8"):
        path = os.path.join(tmp, f"m.{quant}.rne")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                q = rnnedge.convert(case.onnx, path, quant=quant, fixed=case.fixed,
                                    calibration=None if quant == "f32" else case.calib)
        except rnnedge.RnnedgeError as e:
            row[quant] = {"refused": str(e).split(":")[-1].split(";")[0].strip()}
            continue
        model = rnnedge.load(path)
        ref = Float(case.onnx, model.input_spec["axes"], model.output_spec["axes"], case.fixed)
        c = compare(quant, *outputs(model, ref, case.x))
        weights = [r.wfmt for r in q.report if r.error is not None and r.kind in ("Dense", "LSTM", "GRU", "RNN")] if quant != "f32" else []
        row[quant] = {"max": c.max_error, "argmax": c.argmax_agreement, "weights": weights, **size_split(path)}
    return row


def accuracy_table(rows: list[dict]) -> str:
    def cell(r: dict, quant: str) -> str:
        m = r[quant]
        if "refused" in m:
            return f"refused ({m['refused']})"
        text = f"{m['max']:.1e}"
        if m["argmax"] is not None:
            text += f", argmax {100 * m['argmax']:.1f}%"
        if quant == "int8" and "s16" in m["weights"]:
            text += " [" + " ".join(w[1:] for w in m["weights"]) + "]"
        return text

    lines = ["| model | f32 | int16 | int8 |", "|---|---|---|---|"]
    lines += [f"| {r['name']} | {cell(r, 'f32')} | {cell(r, 'int16')} | {cell(r, 'int8')} |" for r in rows]
    return "\n".join(lines)


def size_table(rows: list[dict]) -> str:
    def pct(n: int, r: dict) -> str:
        return f"{100 * n / r['onnx_bytes']:.0f}%"

    lines = [
        "| model | ONNX bytes | int16 blob | int8 blob | int8: weights | int8: biases, scales | "
        "int8: header, tables, metadata, padding | int8 / ONNX | int8 tensors alone / ONNX |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if "refused" in r["int8"] or not r["sizes"]:
            continue
        a, b = r["int16"], r["int8"]
        lines.append(
            f"| {r['name']} | {r['onnx_bytes']} | {a['bytes']} ({pct(a['bytes'], r)}) | {b['bytes']} | "
            f"{b['weight_bytes']} | {b['param_bytes']} | {b['container_bytes']} | **{pct(b['bytes'], r)}** | "
            f"{pct(b['weight_bytes'] + b['param_bytes'], r)} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", help="also write every figure here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        rows = [measure(c, tmp) for c in cases()]
    print(accuracy_table(rows))
    print()
    print(size_table(rows))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
