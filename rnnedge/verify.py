"""`rnnedge verify`: a .rne blob (any number format) against onnxruntime in float on the same input.

Reports, for the graph's first output: the max and RMS error relative to the float output's
range, in sequence mode and step by step (a many-to-one model's step output against the float
model on the prefix ending at that step: every step, up to PREFIXES); the argmax agreement (for
outputs with several features: classifiers), over every compared step; and the drift over a long stream (the error in the first and the last
tenth of it), since an integer state that slowly walks away from the float one shows only there.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np

from ._views import Layout
from .blob.spec import DT_S32, OP_GATHER
from .errors import InputError, RnnedgeError
from .model import Model, load

# A many-to-one model's step outputs are compared with onnxruntime on the prefix ending at that
# step: every step of a sequence of up to PREFIXES steps, else PREFIXES evenly spaced ones.
PREFIXES = 200


@dataclass
class Comparison:
    """One rnnedge output against the float output."""

    what: str
    max_error: float  # max |y - y_float| / range(y_float)
    rms_error: float  # RMS of the same
    argmax_agreement: float | None  # fraction of (step, sample) rows whose argmax agrees

    def row(self) -> str:
        agree = "" if self.argmax_agreement is None else f"{100 * self.argmax_agreement:.2f}%"
        return f"| {self.what} | {self.max_error:.3g} | {self.rms_error:.3g} | {agree} |"


@dataclass
class Report:
    model: str
    quant: str
    steps: int
    batch: int
    comparisons: list[Comparison] = field(default_factory=list)
    drift: tuple[float, float] | None = None  # max error in the first and last tenth of the long stream

    def table(self) -> str:
        lines = [
            f"{self.model} ({self.quant}) against onnxruntime float, T={self.steps}, B={self.batch}",
            "",
            "| mode | max error / range | RMS error / range | argmax agreement |",
            "|---|---|---|---|",
        ]
        lines += [c.row() for c in self.comparisons]
        if self.drift is not None:
            lines += ["", f"drift over the long stream: max error {self.drift[0]:.3g} in its first "
                          f"tenth, {self.drift[1]:.3g} in its last"]  # fmt: skip
        return "\n".join(lines)


def output_range(y_float: np.ndarray) -> float:
    """The scale errors are measured against: the float output's range (max - min)."""
    span = float(y_float.max() - y_float.min()) if y_float.size else 1.0
    return span if span > 0 else max(1.0, float(np.abs(y_float).max(initial=0)))


def compare(what: str, y: np.ndarray, y_float: np.ndarray, scale: float | None = None) -> Comparison:
    if y.shape != y_float.shape:
        raise RnnedgeError(f"{what}: rnnedge gave shape {list(y.shape)}, onnxruntime {list(y_float.shape)}")
    y64, f64 = y.astype(np.float64), y_float.astype(np.float64)
    scale = output_range(f64) if scale is None else scale
    err = np.abs(y64 - f64) / scale
    agree = None
    if y.ndim and y.shape[-1] > 1:
        agree = float(np.mean(y64.argmax(-1) == f64.argmax(-1)))
    return Comparison(what, float(err.max(initial=0)), float(np.sqrt(np.mean(err**2))) if err.size else 0.0, agree)


class _Float:
    """onnxruntime on the ONNX model, one thread. A sequence model runs once on the whole input,
    zero state for any state inputs (h0, c0), as the blob's initial state. A step function (an
    input without a time axis: its state inputs paired with outputs as the converter pairs them,
    `state` as convert's) runs once per step, its state fed back, starting from zeros."""

    def __init__(self, onnx_path: str, model: Model, state: dict[str, str] | None = None) -> None:
        try:
            import onnxruntime as ort
        except ImportError:
            raise InputError("verify needs onnxruntime: pip install 'rnnedge[verify]'") from None
        options = ort.SessionOptions()
        options.intra_op_num_threads = options.inter_op_num_threads = 1
        options.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(onnx_path, options, providers=["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime raises its own exception types
            raise InputError(f"{onnx_path}: onnxruntime cannot load it: {e}") from None
        self.inputs = self.session.get_inputs()
        self.data_name = model.input_spec["name"]
        if self.data_name not in [i.name for i in self.inputs]:
            raise InputError(f"{onnx_path}: has no input {self.data_name!r}; is it the model the blob came from?")
        self.batch_axis = model.input_spec["axes"].find("B")
        self.x_type = _ONNX_TYPES.get(
            next(i.type for i in self.inputs if i.name == self.data_name), np.float32)
        self.y_name = self.session.get_outputs()[0].name
        self.pairs: list[tuple[str, str]] = []  # a step function's (state input, its output)
        if "T" not in model.input_spec["axes"]:
            from .converter import pair_states
            from .converter.load import load_model

            pairing = pair_states(load_model(onnx_path).model.graph, onnx_path, state)
            self.y_name = pairing.output
            self.pairs = [(i.name, o) for i, o, _ in pairing.pairs]

    def _zeros(self, name: str, batch: int) -> np.ndarray:
        i = next(i for i in self.inputs if i.name == name)
        shape = [d if isinstance(d, int) else batch for d in i.shape]
        return np.zeros(shape, _ONNX_TYPES.get(i.type, np.float32))

    def run(self, x: np.ndarray) -> np.ndarray:
        """x in the blob's input layout (a step function's calls stacked on a first axis T)."""
        x = x.astype(self.x_type)
        if self.pairs:
            batch = x.shape[1 + self.batch_axis] if self.batch_axis >= 0 else 1
            state = {i: self._zeros(i, batch) for i, _ in self.pairs}
            outs, ys = [self.y_name] + [o for _, o in self.pairs], []
            for t in range(x.shape[0]):
                y, *new = self.session.run(outs, {self.data_name: x[t], **state})
                state = {i: v for (i, _), v in zip(self.pairs, new)}
                ys.append(y)
            return np.stack(ys)
        feeds = {self.data_name: x}
        batch = x.shape[self.batch_axis] if self.batch_axis >= 0 else 1
        for i in self.inputs:  # state inputs (h0, c0): zeros, as the blob's initial state
            if i.name != self.data_name:
                feeds[i.name] = self._zeros(i.name, batch)
        return self.session.run([self.y_name], feeds)[0]


_ONNX_TYPES = {"tensor(float)": np.float32, "tensor(int64)": np.int64, "tensor(int32)": np.int32}


def vocabulary(model: Model) -> int | None:
    """A model of token ids (an s32 input): the smallest vocabulary of the GATHER nodes that read
    them; else None."""
    blob = model.blob
    if blob.input.dtype != DT_S32:
        return None
    sizes = [n.param[0] for n in blob.nodes if n.op == OP_GATHER and blob.input.index in n.inputs]
    return min(sizes, default=None)


def _take(x: np.ndarray, axis: int, stop: int) -> np.ndarray:
    return np.take(x, np.arange(stop), axis=axis)


def verify(
    blob_path: str | os.PathLike,
    onnx_path: str | os.PathLike,
    x: np.ndarray | None = None,
    long_steps: int = 2000,
    seed: int = 0,
    state: dict[str, str] | None = None,
) -> Report:
    """Compare the blob with the float ONNX model. x: the input in the ONNX layout (default: a
    standard-normal sequence of T=100, B=1, which is not a realistic input: pass real data; token
    ids uniform over the vocabulary); a step function's input (no time axis) takes its calls
    stacked on a new first axis T, as `Model.run` does, and onnxruntime is called once per step
    with its state fed back. state: a step function's pairs as given to convert (--state)."""
    model = load(blob_path)
    ref = _Float(os.fspath(onnx_path), model, state)
    axes = model.input_spec["axes"]
    stacked = "T" not in axes  # a step function: the calls on a new first axis
    vocab = vocabulary(model)
    run_axes = "T" + axes if stacked else axes
    if x is None:
        rng = np.random.default_rng(seed)
        shape = [100 if a == "T" else d for a, d in zip(
            run_axes, Layout.of(model.input_spec, "T" if stacked else "").sizes(model.in_features, 1))]
        x = (rng.integers(0, vocab, shape) if vocab is not None
             else rng.standard_normal(shape).astype(np.float32))  # fmt: skip
    x = np.asarray(x)
    if vocab is None:
        x = x.astype(np.float32)
    if x.ndim != len(run_axes):
        raise InputError(f"the input has shape {list(x.shape)}; the model takes axes {run_axes}"
                         + (" (a step function's calls stacked on a first axis T)" if stacked else ""))
    t_in = run_axes.index("T")
    steps = x.shape[t_in]
    batch = x.shape[run_axes.index("B")] if "B" in run_axes else 1
    report = Report(model.name, model.quant, steps, batch)
    y_float = ref.run(x)
    report.comparisons.append(compare("sequence", model.run(x), y_float))
    if model.streamable:
        stream = model.stream(batch)
        ys = [stream.step(np.take(x, t, axis=t_in)) for t in range(steps)]
        out_axes = model.output_spec["axes"]
        if model.many_to_one:  # each step against the float model on the prefix ending there
            marks = sorted({max(1, steps * k // PREFIXES) for k in range(1, PREFIXES + 1)})
            got = np.stack([ys[t - 1] for t in marks])
            want = np.stack([ref.run(_take(x, t_in, t)) for t in marks])
            report.comparisons.append(compare(f"step by step ({len(marks)} prefixes)", got, want))
        else:
            t_out = out_axes.index("T") if "T" in out_axes else 0
            report.comparisons.append(compare("step by step", np.stack(ys, axis=t_out), y_float))
        report.drift = _drift(model, ref, x, t_in, long_steps)
    return report


def _drift(model: Model, ref: _Float, x: np.ndarray, t_in: int, long_steps: int) -> tuple[float, float]:
    """The input tiled to >= long_steps steps, run in sequence mode by both: the max error in the
    first and in the last tenth of the steps (at ten prefixes each for a many-to-one model)."""
    reps = -(-long_steps // x.shape[t_in])
    xl = np.concatenate([x] * reps, axis=t_in)
    steps = xl.shape[t_in]
    tenth = max(1, steps // 10)
    if model.many_to_one:
        first = [compare("", model.run(_take(xl, t_in, t)), ref.run(_take(xl, t_in, t))).max_error
                 for t in np.linspace(1, tenth, 3, dtype=int)]  # fmt: skip
        last = [compare("", model.run(_take(xl, t_in, t)), ref.run(_take(xl, t_in, t))).max_error
                for t in np.linspace(steps - tenth + 1, steps, 3, dtype=int)]  # fmt: skip
        return max(first), max(last)
    y, y_float = model.run(xl), ref.run(xl)
    out_axes = model.output_spec["axes"]
    t_out, scale = out_axes.index("T") if "T" in out_axes else 0, output_range(y_float)
    head = compare("", _take(y, t_out, tenth), _take(y_float, t_out, tenth), scale).max_error
    tail_idx = np.arange(steps - tenth, steps)
    tail = compare("", *(np.take(a, tail_idx, axis=t_out) for a in (y, y_float)), scale)
    return head, tail.max_error
