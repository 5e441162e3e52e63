"""Measure the integer formats on every converter fixture and on the bundled example, through the
real writer and the C runtime: accuracy against onnxruntime's float output and blob size against
the ONNX file. Prints the markdown table of docs/quantization.md section 9.

    python tools/quant_report.py [--json OUT.json]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import warnings
from pathlib import Path

import numpy as np

import rnnedge
from rnnedge.examples import EXAMPLE_ONNX, load_test_set
from rnnedge.verify import compare

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "data" / "fixtures"


def cases() -> list[tuple[str, Path, np.ndarray, np.ndarray, np.ndarray]]:
    """(name, onnx, calibration input, measurement input, float output on it)."""
    import onnxruntime as ort

    x, _, _ = load_test_set()
    session = ort.InferenceSession(str(EXAMPLE_ONNX), providers=["CPUExecutionProvider"])
    out = [("har_lstm (bundled example)", EXAMPLE_ONNX, x[:20], x, session.run(None, {"x": x})[0])]
    for e in json.loads((FIXTURES / "index.json").read_text()):
        if e["error"] or e["state"]:
            continue
        xi = np.load(FIXTURES / f"{e['name']}.input.npy")
        out.append((e["name"], FIXTURES / f"{e['name']}.onnx", xi, xi, np.load(FIXTURES / f"{e['name']}.expected.npy")))
    return out


def measure(name: str, onnx: Path, calib: np.ndarray, x: np.ndarray, want: np.ndarray, tmp: str) -> dict:
    row: dict = {"name": name, "onnx_bytes": onnx.stat().st_size}
    for quant in ("f32", "int16", "int8"):
        path = os.path.join(tmp, f"m.{quant}.rne")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                q = rnnedge.convert(onnx, path, quant=quant, calibration=None if quant == "f32" else calib)
        except rnnedge.RnnedgeError as e:
            row[quant] = {"refused": str(e).split(":")[-1].split(";")[0].strip()}
            continue
        c = compare(quant, rnnedge.load(path).run(x), want)
        weights = [r.wfmt for r in q.report if r.error is not None and r.kind in ("Dense", "LSTM", "GRU", "RNN")] if quant != "f32" else []
        row[quant] = {"max": c.max_error, "argmax": c.argmax_agreement, "bytes": os.path.getsize(path), "weights": weights}
    return row


def table(rows: list[dict]) -> str:
    def cell(r: dict, quant: str) -> str:
        m = r[quant]
        if "refused" in m:
            return f"refused ({m['refused']})"
        text = f"{m['max']:.1e}"
        if m["argmax"] is not None and m["argmax"] < 1:
            text += f", argmax {100 * m['argmax']:.0f}%"
        if quant == "int8" and "s16" in m["weights"]:
            text += " [" + " ".join(w[1:] for w in m["weights"]) + "]"
        return text

    def size(r: dict, quant: str) -> str:
        return "" if "refused" in r[quant] else f"{100 * r[quant]['bytes'] / r['onnx_bytes']:.0f}%"

    lines = [
        "| model | ONNX bytes | f32 | int16 | int8 | int16 blob / ONNX | int8 blob / ONNX |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['name']} | {r['onnx_bytes']} | {cell(r, 'f32')} | {cell(r, 'int16')} | "
            f"{cell(r, 'int8')} | {size(r, 'int16')} | {size(r, 'int8')} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", help="also write every figure here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        rows = [measure(*c, tmp) for c in cases()]
    print(table(rows))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
