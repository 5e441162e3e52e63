"""The benchmark's cases, and the ONNX models built from them.

A case is one model: built here from its shape with onnx.helper (random weights at PyTorch's
initial scale), or an existing ONNX file and/or .rne blob (the bundled example, `--blob`).
"""

from __future__ import annotations

import math
import zlib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from rnnedge.errors import InputError
from rnnedge.ir.layers import from_tbf

FEATURES = 40
HIDDEN_SIZES = (32, 64, 128, 256, 512)
SEQ_LENGTHS = (1, 10, 100, 1000)  # T = 1: Model.run's fixed cost per call
CHECK_STEPS = 100  # steps compared with onnxruntime before timing
_F32 = np.float32


@dataclass(frozen=True)
class Case:
    """One model to benchmark: built from its shape, or an existing ONNX file and/or .rne blob."""

    name: str
    cell: str = "lstm"  # "lstm" or "gru"
    hidden: int = 128
    layers: int = 1
    bidirectional: bool = False
    features: int = FEATURES
    onnx: Path | None = None  # an existing ONNX model (the bundled example, `--onnx`)
    blob: Path | None = None  # an existing .rne blob (`--blob MODEL.rne`): not converted

    @property
    def built(self) -> bool:
        return self.onnx is None and self.blob is None

    def describe(self) -> dict[str, Any]:
        d = asdict(self)
        d["onnx"] = str(self.onnx) if self.onnx else None
        d["blob"] = str(self.blob) if self.blob else None
        return d


def standard_cases() -> list[Case]:
    """The cases of issue 5: LSTM and GRU at every hidden size, a 2-layer LSTM 128, a
    bidirectional LSTM 128 (sequence mode only) and the bundled example."""
    from rnnedge.examples import EXAMPLE_ONNX

    cases = [Case(f"{cell}-{h}", cell, h) for cell in ("lstm", "gru") for h in HIDDEN_SIZES]
    cases.append(Case("lstm-2x128", "lstm", 128, layers=2))
    cases.append(Case("bilstm-128", "lstm", 128, bidirectional=True))
    cases.append(Case("example-har-lstm", "lstm", 32, features=6, onnx=EXAMPLE_ONNX))
    return cases


def select_cases(cases: Sequence[Case], names: str | None) -> list[Case]:
    """Cases whose name is in the comma-separated `names` (all when None)."""
    if not names:
        return list(cases)
    wanted = [n.strip() for n in names.split(",") if n.strip()]
    unknown = [n for n in wanted if n not in {c.name for c in cases}]
    if unknown:
        raise InputError(
            f"unknown case(s) {', '.join(unknown)}; the cases are {', '.join(c.name for c in cases)}"
        )
    return [c for c in cases if c.name in wanted]


def blob_case(blob: Path, onnx: Path | None = None) -> Case:
    """A case for an existing .rne blob (`--blob`), named after the file, its shape read from the
    blob; `onnx`: the ONNX model it came from, for onnxruntime. Raises BlobError (naming the file)
    for what is not a blob, InputError for a missing ONNX file."""
    import rnnedge

    model = rnnedge.load(blob)
    if onnx is not None and not onnx.is_file():
        raise InputError(f"{onnx}: no such ONNX file")
    cells = [l for l in model.blob.layers if l.op_name in ("LSTM", "GRU", "RNN")]
    return Case(
        blob.stem,
        cells[0].op_name.lower() if cells else "",
        cells[0].hidden if cells else 0,
        layers=len(cells),
        features=model.in_features,
        blob=blob,
        onnx=onnx,
    )


@dataclass
class LayerWeights:
    """One recurrent layer in ONNX layout and gate order: W [D, G*H, I], R [D, G*H, H], B [D, 2*G*H]."""

    W: np.ndarray
    R: np.ndarray
    B: np.ndarray


GATES = {"lstm": 4, "gru": 3}


def build_onnx(case: Case, seed: int = 0):
    """The case as an ONNX model (opset 17): x [time, batch, F] -> stacked LSTM/GRU nodes ->
    y [time, batch, H] (bidirectional: ONNX's Y [time, 2, batch, H]). Weights and biases uniform
    in +-1/sqrt(H), PyTorch's initial scale; GRUs use linear_before_reset=1 like PyTorch's.
    Returns (onnx.ModelProto, [LayerWeights]).
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    if case.cell not in GATES:
        raise InputError(f"{case.name}: cell {case.cell!r} is not one of {', '.join(GATES)}")
    if case.bidirectional and case.layers != 1:
        raise InputError(f"{case.name}: a bidirectional case has one layer here")
    rng = np.random.default_rng(seed + zlib.crc32(case.name.encode()))
    dirs, gates, h = 2 if case.bidirectional else 1, GATES[case.cell], case.hidden
    scale = 1.0 / math.sqrt(h)
    nodes, inits, weights = [], [numpy_helper.from_array(np.array([1], np.int64), "axis1")], []
    x, width = "x", case.features
    for k in range(case.layers):
        w = LayerWeights(
            rng.uniform(-scale, scale, (dirs, gates * h, width)).astype(_F32),
            rng.uniform(-scale, scale, (dirs, gates * h, h)).astype(_F32),
            rng.uniform(-scale, scale, (dirs, 2 * gates * h)).astype(_F32),
        )
        weights.append(w)
        inits += [numpy_helper.from_array(a, f"{n}{k}") for n, a in zip("WRB", (w.W, w.R, w.B))]
        attrs: dict[str, Any] = {"hidden_size": h}
        if case.bidirectional:
            attrs["direction"] = "bidirectional"
        if case.cell == "gru":
            attrs["linear_before_reset"] = 1
        op = case.cell.upper()
        y = f"Y{k}"
        nodes.append(
            helper.make_node(op, [x, f"W{k}", f"R{k}", f"B{k}"], [y], name=f"{op}{k}", **attrs)
        )
        if case.bidirectional:
            x = y
        else:
            x = "y" if k == case.layers - 1 else f"y{k}"
            nodes.append(helper.make_node("Squeeze", [y, "axis1"], [x], name=f"squeeze{k}"))
        width = h
    out_shape = ["time", 2, "batch", h] if case.bidirectional else ["time", "batch", h]
    graph = helper.make_graph(
        nodes,
        case.name,
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["time", "batch", case.features])],
        [helper.make_tensor_value_info(x, TensorProto.FLOAT, out_shape)],
        inits,
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="rnnedge bench"
    )
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model, weights


def to_graph(x_tbf: np.ndarray, axes: str) -> np.ndarray:
    """[T, B, F] -> a contiguous float32 array in the graph's layout (a graph without a batch axis
    takes batch item 0)."""
    x = x_tbf if "B" in axes else x_tbf[:, :1]
    return np.ascontiguousarray(from_tbf(x, axes), dtype=_F32)

