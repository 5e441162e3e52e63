"""`rnnedge demo`: the bundled activity classifier, converted to every number format rnnedge writes
and streamed one step at a time, next to onnxruntime on the same machine.

The bundled ONNX model (docs/example.md) is converted to each format of
`rnnedge.ir.layers.QUANTS` in a temporary directory; each held-back test recording is
streamed through a batch-1 `Stream`, one `step` per sensor reading, and the class read from the
last step's probabilities. onnxruntime runs the same ONNX file single-threaded, one `run()` per
step with the LSTM state fed back by hand (the only way it can stream). Needs the onnx package to
convert; onnxruntime is optional (without it only rnnedge's columns are shown).
"""

from __future__ import annotations

import argparse
import inspect
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence, TextIO

import numpy as np

from .errors import InputError
from .measure import machine
from .progress import Progress, quiet_progress
from .measure import module_available as _module_available
from .ort_step import SteppedSession


@dataclass
class Row:
    """One engine and number format, measured on the test set."""

    engine: str  # "onnxruntime" or "rnnedge"
    fmt: str
    size: int  # bytes of the model file
    correct: int
    total: int
    step_us: np.ndarray  # every timed step
    max_dp: float | None = None  # max |p - p_reference| over every step of every recording
    agree: float | None = None  # share of those steps whose argmax is the reference's

    @property
    def accuracy(self) -> float:
        return self.correct / self.total if self.total else 0.0

    @property
    def median_us(self) -> float:
        return float(np.median(self.step_us))

    @property
    def p99_us(self) -> float:
        return float(np.percentile(self.step_us, 99))


def stream_all(
    step_for: Callable[[], Callable[[np.ndarray], Any]], x: np.ndarray, step_shape: tuple[int, ...]
) -> tuple[np.ndarray, np.ndarray]:
    """Stream each recording of x [N, T, F] one step at a time through a fresh step function,
    each step's input reshaped to step_shape (the engine's layout of one timestep).

    Returns every step's output [N, T, C] and the time of every step in microseconds [N * T].
    The first recording is streamed once untimed first (warm-up)."""
    inputs = [
        [x[i, t].reshape(step_shape).copy() for t in range(x.shape[1])] for i in range(len(x))
    ]
    warm = step_for()
    for xt in inputs[0]:
        warm(xt)
    clock = time.perf_counter_ns
    outputs: list[np.ndarray] = []
    stamps = np.zeros((len(x), x.shape[1] + 1), np.int64)
    for i, seq in enumerate(inputs):
        step, ys, row = step_for(), [], [0] * (len(seq) + 1)
        row[0] = clock()
        for t, xt in enumerate(seq, 1):
            ys.append(step(xt))
            row[t] = clock()
        stamps[i] = row
        outputs.append(np.concatenate([np.asarray(y).reshape(1, -1) for y in ys]))
    return np.stack(outputs), np.diff(stamps, axis=1).ravel() / 1e3


def _convert(onnx_path: Path, out: Path, quant: str, calibration: np.ndarray) -> None:
    from .conversion import convert

    kwargs: dict[str, Any] = {}
    if quant != "f32" and "calibration" in inspect.signature(convert).parameters:
        kwargs["calibration"] = calibration
    with warnings.catch_warnings(), quiet_progress():  # the demo's own bar says what it does
        warnings.simplefilter("ignore")  # calibration notes: the demo's table says what was done
        convert(onnx_path, out, quant=quant, **kwargs)


def run_demo(limit: int | None = None, progress: bool = True) -> dict[str, Any]:
    """Convert, stream and measure; returns {"rows": [Row], "notes": [...], ...} for `report`."""
    import rnnedge
    from .ir.layers import QUANTS
    from .examples import EXAMPLE_ONNX, load_test_set, load_train_set

    if not _module_available("onnx"):
        raise InputError(
            "rnnedge demo converts the bundled ONNX model and needs the onnx package: "
            "pip install 'rnnedge[convert]'"
        )
    x, y, class_names = load_test_set()
    x_train = load_train_set()[0]  # calibrates the integer formats: none of the scored recordings
    if limit is not None:
        if limit < 1:
            raise InputError(f"--limit {limit}: give at least 1 recording")
        x, y = x[:limit], y[:limit]
    have_ort = _module_available("onnxruntime")
    bar = Progress(
        2 * len(QUANTS) + (1 if have_ort else 0), "rnnedge demo", enabled=progress
    )
    rows: list[Row] = []
    notes: list[str] = []
    reference: np.ndarray | None = None
    if have_ort:
        import onnxruntime

        bar.update("onnxruntime", advance=0)
        ort = SteppedSession(EXAMPLE_ONNX)
        out, times = stream_all(ort.stepper, x, (1, 1, x.shape[2]))  # [batch, time, F]
        reference = out
        rows.append(
            Row(
                "onnxruntime",
                "float32",
                EXAMPLE_ONNX.stat().st_size,
                int((out[:, -1].argmax(1) == y).sum()),
                len(y),
                times,
            )
        )
        notes.append(
            f"onnxruntime {onnxruntime.__version__}: one thread, one run() per step with the LSTM "
            "state fed back by hand (initial_h/initial_c as graph inputs, Y_h/Y_c as outputs)."
        )
        bar.update("onnxruntime")
    else:
        notes.append(
            "onnxruntime is not installed, so only rnnedge's columns are shown "
            "(pip install 'rnnedge[verify]' to compare)."
        )
    with tempfile.TemporaryDirectory(prefix="rnnedge-demo-") as tmp:
        for fmt in QUANTS:
            bar.update(f"converting to {fmt}", advance=0)
            blob = Path(tmp) / f"har_lstm.{fmt}.rne"
            _convert(EXAMPLE_ONNX, blob, fmt, x_train)
            bar.update(f"converting to {fmt}")
            model = rnnedge.Model.from_bytes(blob.read_bytes())  # no file left open in tmp
            bar.update(f"streaming {fmt}", advance=0)
            out, times = stream_all(lambda: model.stream(1).step, x, (1, x.shape[2]))
            if reference is None:
                reference = out  # no onnxruntime: compare with rnnedge's first format
            rows.append(
                Row(
                    "rnnedge",
                    fmt,
                    blob.stat().st_size,
                    int((out[:, -1].argmax(1) == y).sum()),
                    len(y),
                    times,
                    float(np.abs(out - reference).max()),
                    float(np.mean(out.argmax(-1) == reference.argmax(-1))),
                )
            )
            bar.update(f"streaming {fmt}")
    bar.close()
    if any(f != "f32" for f in QUANTS):
        notes.append(
            f"Integer formats: ranges calibrated on the model's {len(x_train)} training recordings "
            "(inputs only), none of the test recordings scored here."
        )
    return {
        "rows": rows,
        "notes": notes,
        "recordings": len(y),
        "steps": x.shape[1],
        "classes": class_names,
        "reference": "onnxruntime" if have_ort else f"rnnedge {QUANTS[0]}",
        "reference_range": float(reference.max() - reference.min()) if reference is not None else 0.0,
        "machine": machine(),
    }


def _ratio(ours: float, theirs: float | None) -> str:
    if theirs is None:
        return "-"
    r = theirs / ours
    return f"{r:.1f}x faster" if r >= 1 else f"{1 / r:.1f}x slower"


def report(result: dict[str, Any]) -> str:
    """The demo's table and notes as plain text."""
    rows: list[Row] = result["rows"]
    ort = next((r for r in rows if r.engine == "onnxruntime"), None)
    m = result["machine"]
    head = [
        f"rnnedge demo: smartwatch activity classifier (BasicMotions, {len(result['classes'])} classes: "
        f"{', '.join(result['classes'])}), LSTM 6 -> 32",
        f"{result['recordings']} held-back test recordings x {result['steps']} steps, each streamed one "
        f"step at a time (batch 1); class = argmax of the last step's probabilities",
        f"machine: {m['cpu']}, {m['cores']} cores, Python {m['python']}",
        "",
    ]
    table = [
        [
            "engine",
            "format",
            "model size",
            "accuracy",
            f"max |p - p {result['reference']}|",
            "same class, every step",
            "step median (p99)",
            "vs onnxruntime step",
        ]
    ]
    for r in rows:
        table.append(
            [
                r.engine,
                r.fmt,
                f"{r.size / 1024:.1f} KiB",
                f"{100 * r.accuracy:.1f} % ({r.correct}/{r.total})",
                "-" if r.max_dp is None else f"{r.max_dp:.1e}",
                "-" if r.agree is None else f"{100 * r.agree:.2f} %",
                f"{r.median_us:.2f} us ({r.p99_us:.1f})",
                "-" if r is ort else _ratio(r.median_us, ort and ort.median_us),
            ]
        )
    if ort is None:
        table = [row[:-1] for row in table]
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in table]
    return "\n".join(head + lines + [""] + result["notes"])


# The demo's last lines: the same two steps for the user's own model.
NEXT_STEPS = """Your own model, in two commands (calibrate int8 on inputs of your own that you do not
score, as above; verify on held-out ones; docs/quantization.md):
  rnnedge convert model.onnx -o model.rne --quant int8 --calib train_inputs.npy
  rnnedge verify model.rne model.onnx --input test_inputs.npy"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--limit", type=int, metavar="N", help="stream only the first N test recordings"
    )
    parser.add_argument(
        "-q", "--quiet", "--no-progress", dest="no_progress", action="store_true",
        help="no progress bar on stderr (there is none when stderr is not a terminal)",
    )


def run(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """`rnnedge demo` from parsed arguments: prints the table, the total time, then the two
    commands that do the same for the user's own model."""
    start = time.monotonic()
    result = run_demo(args.limit, progress=not args.no_progress)
    out = out or sys.stdout
    print(report(result), file=out)
    print(f"\nDone in {time.monotonic() - start:.1f} s (converting, streaming and timing).", file=out)
    print(f"\n{NEXT_STEPS}", file=out)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="rnnedge demo", description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
