"""`rnnedge verify`: a .rne blob (any number format) against onnxruntime in float on the same
input, with a verdict.

Reports, for the graph's first output: the max and RMS error over the float output's range
(`quant.policy.accuracy`, the one definition convert's report uses too), in sequence mode and
step by step (a many-to-one model's step output against the float model on the prefix ending at
that step: every step, up to PREFIXES); the argmax agreement (for outputs with several features:
classifiers), over every compared step; and the drift over a long stream (the error in the first
and the last tenth of it), since an integer state that slowly walks away from the float one shows
only there. The verdict (`Report.passed`) holds the sequence and step-by-step comparisons to the
blob's number format's bar (`quant.policy.BARS`, or `tol`). What cannot be compared is a
VerifyError naming the side at fault.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import Mapping

import numpy as np

from ._views import Layout
from .blob.spec import ACT_LOGSOFTMAX, ACT_SOFTMAX, DT_S32, OP_ACT, OP_GATHER
from .errors import BlobError, RnnedgeError, VerifyError
from .files import onnx_instead_of_blob
from .model import Model, load
from .progress import Progress
from .quant.policy import BARS, MIN_AGREEMENT, output_range

# A many-to-one model's step outputs are compared with onnxruntime on the prefix ending at that
# step: every step of a sequence of up to PREFIXES steps, else PREFIXES evenly spaced ones.
PREFIXES = 200


@dataclass
class Comparison:
    """One rnnedge output against the float output."""

    what: str
    max_error: float  # max |y - y_float| / output_range(y_float)
    rms_error: float  # sqrt(mean (y - y_float)^2) / output_range(y_float): never above max_error
    argmax_agreement: float | None  # fraction of (step, sample) rows whose argmax agrees
    range: float = 1.0  # output_range(y_float): the unit of both errors

    def row(self) -> str:
        agree = "" if self.argmax_agreement is None else f"{100 * self.argmax_agreement:.2f}%"
        return (f"| {self.what} | {self.max_error:.3g} | {self.rms_error:.3g} | {self.range:.4g} "
                f"| {agree} |")  # fmt: skip


@dataclass(frozen=True)
class Bar:
    """What a blob is held to: a max error over the float output's range (`tol`), or for an int8
    classifier (a Softmax / LogSoftmax head of several features, docs/quantization.md §8) argmax
    agreement on at least `min_agreement` of the compared rows. `source` says where it came from."""

    quant: str
    tol: float | None
    min_agreement: float | None = None
    source: str = "the documented bar"

    def passes(self, c: Comparison) -> bool:
        if self.min_agreement is not None and c.argmax_agreement is not None:
            return c.argmax_agreement >= self.min_agreement
        return self.tol is not None and c.max_error <= self.tol

    def measured(self, c: Comparison) -> str:
        if self.min_agreement is not None and c.argmax_agreement is not None:
            sign = ">=" if self.passes(c) else "<"
            return (f"argmax agreement {100 * c.argmax_agreement:.2f}% {sign} "
                    f"{100 * self.min_agreement:g}%")  # fmt: skip
        sign = "<=" if self.passes(c) else ">"
        return f"max error {c.max_error:.3g} {sign} {self.tol:g} of the float output's range"


def bar_for(model: Model, tol: float | Mapping[str, float] | None = None) -> Bar:
    """The bar of the blob's number format: `BARS` (docs/quantization.md §8), an int8
    classifier's argmax agreement; `tol` a max error for this blob's format, or per format
    ({"int8": 2e-2}: the formats not given keep their bars), replacing it (classifiers too)."""
    quant = model.quant
    given = tol.get(quant) if isinstance(tol, Mapping) else tol
    if isinstance(tol, Mapping):
        unknown = sorted(set(tol) - set(BARS))
        if unknown:
            raise VerifyError(f"tol: {unknown[0]!r} is not a number format ({', '.join(BARS)})", "input")
    if given is not None:
        if not (isinstance(given, (int, float)) and math.isfinite(given) and given > 0):
            raise VerifyError(f"tol for {quant}: {given!r}: give a positive number", "input")
        return Bar(quant, float(given), None, "the bar given: --tol, tol=")
    if quant not in BARS:
        raise VerifyError(f"{model.name}: number format {quant!r} has no documented bar: give --tol",
                          "input")  # fmt: skip
    if quant == "int8" and classifier(model):
        return Bar(quant, None, MIN_AGREEMENT, "the documented bar of an int8 classifier; --tol "
                   "replaces it with a max error")  # fmt: skip
    return Bar(quant, BARS[quant], None, f"the documented {quant} bar; --tol changes it")


def classifier(model: Model) -> bool:
    """A model whose output is written by a Softmax or LogSoftmax of several features."""
    blob = model.blob
    return any(n.op == OP_ACT and blob.output.index in n.outputs
               and n.act[0][0] in (ACT_SOFTMAX, ACT_LOGSOFTMAX) for n in blob.nodes) and (
        model.out_features > 1)  # fmt: skip


@dataclass
class Report:
    model: str
    quant: str
    steps: int
    batch: int
    comparisons: list[Comparison] = field(default_factory=list)
    drift: tuple[float, float] | None = None  # max error in the first and last tenth of the long stream
    bar: Bar | None = None
    data: str = "the given input"
    notes: list[str] = field(default_factory=list)  # what was not compared, and why

    @property
    def worst(self) -> Comparison:
        """The comparison (sequence mode, step by step: the drift is not judged) furthest from the bar."""
        assert self.bar is not None
        bar = self.bar
        if bar.min_agreement is not None:
            return min(self.comparisons,
                       key=lambda c: 1.0 if c.argmax_agreement is None else c.argmax_agreement)  # fmt: skip
        return max(self.comparisons, key=lambda c: c.max_error)

    @property
    def passed(self) -> bool:
        return self.bar is not None and all(self.bar.passes(c) for c in self.comparisons)

    def verdict(self) -> str:
        """One line: PASS or FAIL, the measured figure against the bar and where the bar comes from."""
        assert self.bar is not None
        w = self.worst
        return (f"{'PASS' if self.passed else 'FAIL'}: {self.bar.measured(w)} ({w.what}; "
                f"{self.bar.source})")  # fmt: skip

    def table(self) -> str:
        lines = [
            f"{self.model} ({self.quant}) against onnxruntime float, T={self.steps}, B={self.batch}, "
            f"on {self.data}",
            "",
            "errors over the float output's range (max - min of onnxruntime's output, on the "
            "compared data):",
            "| mode | max error | RMS error | range | argmax agreement |",
            "|---|---|---|---|---|",
        ]
        lines += [c.row() for c in self.comparisons]
        if self.drift is not None:
            lines += ["", f"drift over the long stream (not judged): max error {self.drift[0]:.3g} "
                          f"in its first tenth, {self.drift[1]:.3g} in its last"]  # fmt: skip
        lines += ["", *self.notes] if self.notes else []
        if self.bar is not None:
            lines += ["", self.verdict()]
        return "\n".join(lines)


def compare(what: str, y: np.ndarray, y_float: np.ndarray, scale: float | None = None) -> Comparison:
    if y.shape != y_float.shape:
        raise VerifyError(f"{what}: rnnedge gave shape {list(y.shape)}, the float model "
                          f"{list(y_float.shape)}: is it the model the blob was converted "
                          "from?", "pair")  # fmt: skip
    y64, f64 = y.astype(np.float64), y_float.astype(np.float64)
    scale = output_range(f64) if scale is None else scale
    err = np.abs(y64 - f64) / scale
    agree = None
    if y.ndim and y.shape[-1] > 1:
        agree = float(np.mean(y64.argmax(-1) == f64.argmax(-1)))
    rms = float(np.sqrt(np.mean(err**2))) if err.size else 0.0
    return Comparison(what, float(err.max(initial=0)), rms, agree, scale)


AXIS_NAMES = {"T": "time", "B": "batch", "F": "features"}


class _Float:
    """onnxruntime on the ONNX model, one thread. A sequence model runs once on the whole input,
    zero state for any state inputs (h0, c0), as the blob's initial state. A step function (an
    input without a time axis: its state inputs paired with outputs as the converter pairs them,
    `state` as convert's) runs once per step, its state fed back, starting from zeros. Every
    feed is checked against the dimensions the ONNX model fixes before onnxruntime sees it."""

    def __init__(self, onnx_path: str, model: Model, state: dict[str, str] | None = None) -> None:
        try:
            import onnxruntime as ort
        except ImportError:
            raise VerifyError("verify needs onnxruntime: pip install 'rnnedge[verify]'",
                              "onnxruntime") from None  # fmt: skip
        self.path = onnx_path
        if not os.path.isfile(onnx_path):
            raise VerifyError(f"{onnx_path}: no such ONNX file", "onnxruntime")
        options = ort.SessionOptions()
        options.intra_op_num_threads = options.inter_op_num_threads = 1
        options.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(onnx_path, options, providers=["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime raises its own exception types
            raise VerifyError(f"onnxruntime refuses {onnx_path}: {_first_line(e)}", "onnxruntime") from None
        self.inputs = self.session.get_inputs()
        self.data_name = model.input_spec["name"]
        if self.data_name not in [i.name for i in self.inputs]:
            names = ", ".join(repr(i.name) for i in self.inputs)
            raise VerifyError(f"{onnx_path} has no input {self.data_name!r} (it has {names}); is it "
                              "the model the blob was converted from?", "pair")  # fmt: skip
        self.axes = model.input_spec["axes"]
        self.batch_axis = self.axes.find("B")
        self.x_type = _ONNX_TYPES.get(
            next(i.type for i in self.inputs if i.name == self.data_name), np.float32)
        self.y_name = self.session.get_outputs()[0].name
        self.pairs: list[tuple[str, str]] = []  # a step function's (state input, its output)
        if "T" not in self.axes:
            from .converter import pair_states
            from .converter.load import load_model

            pairing = pair_states(load_model(onnx_path).model.graph, onnx_path, state)
            self.y_name = pairing.output
            self.pairs = [(i.name, o) for i, o, _ in pairing.pairs]

    def declared(self, name: str) -> list[int | None]:
        """The input's dimensions as the ONNX model declares them: an int where it fixes one."""
        i = next(i for i in self.inputs if i.name == name)
        return [d if isinstance(d, int) and d > 0 else None for d in i.shape]

    @property
    def fixed_time(self) -> int | None:
        """The number of steps the ONNX model fixes its data input's time axis at, if it does."""
        dims = self.declared(self.data_name)
        t = self.axes.find("T")
        return dims[t] if 0 <= t < len(dims) else None

    def _check(self, name: str, x: np.ndarray, axes: str) -> None:
        """VerifyError naming the input and axis where x does not fit a fixed ONNX dimension."""
        dims = self.declared(name)
        if len(dims) != x.ndim:
            raise VerifyError(f"onnxruntime: {self.path}'s input {name!r} has {len(dims)} axes, the "
                              f"blob's {x.ndim} ({axes}): is it the model the blob was converted "
                              "from?", "pair")  # fmt: skip
        for k, (want, got) in enumerate(zip(dims, x.shape)):
            if want is None or want == got:
                continue
            letter = axes[k] if k < len(axes) else "?"
            what = (f"onnxruntime: {self.path} fixes axis {k} ({AXIS_NAMES.get(letter, letter)}) "
                    f"of input {name!r} at {want}")  # fmt: skip
            if letter == "T":
                fix = (f"verify feeds it {got} steps. Pass --input with {want} steps, or export the "
                       "model with a dynamic time axis (torch.onnx.export(..., dynamic_axes={"
                       f"{name!r}: {{{k}: 'time'}}}}), or with dynamo=True dynamic_shapes=...)")
            elif letter == "B":
                fix = (f"the input has batch {got}. Pass --input with batch {want}, or export the "
                       "model with a dynamic batch axis (dynamic_axes / dynamic_shapes)")
            else:
                fix = f"the blob takes {got}: is it the model the blob was converted from?"
            raise VerifyError(f"{what}; {fix}", "pair" if letter not in "TB" else "input")

    def _zeros(self, name: str, batch: int) -> np.ndarray:
        i = next(i for i in self.inputs if i.name == name)
        shape = [d if isinstance(d, int) else batch for d in i.shape]
        return np.zeros(shape, _ONNX_TYPES.get(i.type, np.float32))

    def _run(self, outs: list[str], feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        try:
            return self.session.run(outs, feeds)
        except Exception as e:  # onnxruntime raises its own exception types
            shapes = ", ".join(f"{k} {list(v.shape)}" for k, v in feeds.items())
            raise VerifyError(f"onnxruntime cannot run {self.path} on {shapes}: {_first_line(e)}",
                              "onnxruntime") from None  # fmt: skip

    def run(self, x: np.ndarray) -> np.ndarray:
        """x in the blob's input layout (a step function's calls stacked on a first axis T)."""
        x = x.astype(self.x_type)
        if self.pairs:
            batch = x.shape[1 + self.batch_axis] if self.batch_axis >= 0 else 1
            state = {i: self._zeros(i, batch) for i, _ in self.pairs}
            outs, ys = [self.y_name] + [o for _, o in self.pairs], []
            for t in range(x.shape[0]):
                if t == 0:
                    self._check(self.data_name, x[t], self.axes)
                y, *new = self._run(outs, {self.data_name: x[t], **state})
                state = {i: v for (i, _), v in zip(self.pairs, new)}
                ys.append(y)
            return np.stack(ys)
        self._check(self.data_name, x, self.axes)
        feeds = {self.data_name: x}
        batch = x.shape[self.batch_axis] if self.batch_axis >= 0 else 1
        for i in self.inputs:  # state inputs (h0, c0): zeros, as the blob's initial state
            if i.name != self.data_name:
                feeds[i.name] = self._zeros(i.name, batch)
        return self._run([self.y_name], feeds)[0]


class _Keras:
    """Keras itself on the .keras / .h5 file a blob was converted from (`rnnedge.convert` reads
    those without TensorFlow; running them needs Keras and a backend: `pip install tensorflow-cpu`).
    The model is called on the whole input, batch first as Keras takes it, its stateful layers reset
    first, so that every call starts from zero state as the blob's `run` does."""

    def __init__(self, path: str, model: Model, state: dict[str, str] | None = None) -> None:
        if state:
            raise VerifyError(f"{path} is a Keras file: --state pairs an ONNX step function's "
                              "inputs and outputs, a Keras model has none", "input")  # fmt: skip
        if not os.path.isfile(path):
            raise VerifyError(f"{path}: no such Keras file", "keras")
        try:
            import keras
        except ImportError:
            raise VerifyError(f"{path} is a Keras file, and verify runs it with Keras, which is not "
                              "installed here: pip install tensorflow-cpu (Keras and its backend), "
                              "or verify against an ONNX export of the model", "keras") from None  # fmt: skip
        try:
            self.net = keras.models.load_model(path, compile=False)
        except Exception as e:  # Keras raises many types
            raise VerifyError(f"keras {keras.__version__} cannot load {path}: {_first_line(e)}", "keras") from None
        self.path, self.keras_version = path, str(keras.__version__)
        self.data_name = model.input_spec["name"]
        self.axes = model.input_spec["axes"]
        self.x_type = np.float32 if vocabulary(model) is None else np.int64
        if self.axes[:1] != "B":
            raise VerifyError(f"the blob takes axes {self.axes}; a blob converted from {path} takes "
                              "batch first: is it the model the blob was converted from?", "pair")  # fmt: skip

    def declared(self, name: str) -> list[int | None]:
        """The input's dimensions as the Keras model declares them: an int where it fixes one."""
        shape = list(self.net.inputs[0].shape)
        return [d if isinstance(d, int) and d > 0 else None for d in shape]

    @property
    def fixed_time(self) -> int | None:
        dims, t = self.declared(self.data_name), self.axes.find("T")
        return dims[t] if 0 <= t < len(dims) else None

    def run(self, x: np.ndarray) -> np.ndarray:
        dims = self.declared(self.data_name)
        for k, (want, got) in enumerate(zip(dims, x.shape)):
            if want is not None and want != got:
                raise VerifyError(f"keras: {self.path} fixes axis {k} of its input at {want}; the "
                                  f"input has {got} there", "input")  # fmt: skip
        for layer in self.net.layers:
            if getattr(layer, "stateful", False):
                for reset in ("reset_states", "reset_state"):
                    if hasattr(layer, reset):
                        getattr(layer, reset)()
                        break
        try:
            y = self.net(x.astype(self.x_type), training=False)
        except Exception as e:  # Keras raises many types
            raise VerifyError(f"keras cannot run {self.path} on {list(x.shape)}: {_first_line(e)}",
                              "keras") from None  # fmt: skip
        return np.asarray(y, dtype=np.float32)

    def note(self) -> str:
        """What ran as the float reference; a file written by another Keras major version computes
        some activations differently when loaded here (Keras 3's hard_sigmoid is not Keras 2's),
        which the blob, converted by the version the file records, does not."""
        from .converter.keras import read_keras

        text = f"the float reference: Keras {self.keras_version} on {self.path}"
        try:
            written = read_keras(self.path).version
        except Exception:  # the figure stands without it
            return text
        if written.split(".")[0].strip() != self.keras_version.split(".")[0]:
            text += (f" (written by Keras {written}: Keras {self.keras_version} may compute some "
                     "activations differently, e.g. hard_sigmoid; the blob computes them as Keras "
                     f"{written} did)")  # fmt: skip
        return text


def _first_line(e: BaseException) -> str:
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    return " ".join(lines[:3]) if lines else type(e).__name__


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
    tol: float | Mapping[str, float] | None = None,
) -> Report:
    """Compare the blob with the float ONNX model and judge it (`Report.passed`, `Report.verdict()`).
    onnx_path may name the .keras / .h5 file the blob was converted from instead: Keras itself is
    then the float reference (it needs Keras and a backend installed; VerifyError says so).
    x: the input in the ONNX layout (default: a standard-normal sequence of T=100, B=1, or the
    sizes the ONNX model fixes, which is not a realistic input: pass real data; token ids uniform
    over the vocabulary); a step function's input (no time axis) takes its calls stacked on a new
    first axis T, as `Model.run` does, and onnxruntime is called once per step with its state fed
    back. state: a step function's pairs as given to convert (--state). tol: the bar, a max error
    over the float output's range, for the blob's format or per format ({"int8": 2e-2}); default
    `quant.policy.BARS`. Raises VerifyError (naming the side at fault) for what it cannot compare."""
    try:
        model = load(blob_path)
    except (BlobError, OSError) as e:
        why = e.strerror if isinstance(e, OSError) and e.strerror else e
        hint = onnx_instead_of_blob(blob_path)
        if hint:
            raise VerifyError(f"{hint} (verify takes the blob, then the ONNX model)", "rnnedge") from None
        raise VerifyError(f"rnnedge cannot load the blob {os.fspath(blob_path)}: {why}", "rnnedge") from None
    bar = bar_for(model, tol)
    from .converter.keras import is_keras_file

    ref: _Float | _Keras
    if is_keras_file(onnx_path):
        ref = _Keras(os.fspath(onnx_path), model, state)
    else:
        ref = _Float(os.fspath(onnx_path), model, state)
    axes = model.input_spec["axes"]
    stacked = "T" not in axes  # a step function: the calls on a new first axis
    vocab = vocabulary(model)
    run_axes = "T" + axes if stacked else axes
    data = "the given input"
    if x is None:
        rng = np.random.default_rng(seed)
        fixed = dict(zip(axes, ref.declared(ref.data_name)))  # a fixed time or batch: that size
        sizes = Layout.of(model.input_spec, "T" if stacked else "").sizes(model.in_features, 1)
        shape = [d if a == "F" else fixed.get(a) or (100 if a == "T" else d)
                 for a, d in zip(run_axes, sizes)]  # fmt: skip
        x = (rng.integers(0, vocab, shape) if vocab is not None
             else rng.standard_normal(shape).astype(np.float32))  # fmt: skip
        data = ("random token ids" if vocab is not None else "a random standard-normal input")
        data += " (not realistic: pass real data, --input X.npy, for real figures)"
    x = np.asarray(x)
    if vocab is None:
        x = x.astype(np.float32)
    if x.ndim != len(run_axes):
        raise VerifyError(f"the input has shape {list(x.shape)}; the blob takes axes {run_axes}"
                          + (" (a step function's calls stacked on a first axis T)" if stacked else ""),
                          "input")  # fmt: skip
    t_in = run_axes.index("T")
    steps = x.shape[t_in]
    batch = x.shape[run_axes.index("B")] if "B" in run_axes else 1
    report = Report(model.name, model.quant, steps, batch, bar=bar, data=data)
    if isinstance(ref, _Keras):
        report.notes.append(ref.note())
    fixed_t = None if stacked else ref.fixed_time
    stepped = steps if model.streamable else 0
    with Progress(2 + stepped + (PREFIXES + 1 if model.many_to_one else 1),
                  f"verify {model.name}") as progress:  # fmt: skip
        _compare_all(report, model, ref, x, t_in, batch, fixed_t, long_steps, onnx_path, progress)
    return report


STEP_UPDATE = 64  # steps between two updates of the progress bar while stepping


def _compare_all(report: Report, model: Model, ref: _Float, x: np.ndarray, t_in: int, batch: int,
                 fixed_t: int | None, long_steps: int, onnx_path: str | os.PathLike,
                 progress: Progress) -> None:  # fmt: skip
    """verify's comparisons, in order, each one advancing the progress bar: the float model, `run`, each
    step, the many-to-one prefixes, the drift."""
    steps = x.shape[t_in]
    progress.update("onnxruntime: the float model", 0)
    y_float = ref.run(x)
    progress.update("rnnedge: Model.run")
    report.comparisons.append(compare("sequence", _rnnedge(model.run, x), y_float))
    progress.update("rnnedge: Stream.step")
    if not model.streamable:
        return
    stream = model.stream(batch)
    ys = []
    for t in range(steps):
        ys.append(_rnnedge(stream.step, np.take(x, t, axis=t_in)))
        if (t + 1) % STEP_UPDATE == 0 or t + 1 == steps:
            progress.update(f"rnnedge: Stream.step {t + 1}/{steps}", (t % STEP_UPDATE) + 1)
    out_axes = model.output_spec["axes"]
    if model.many_to_one and fixed_t is not None:
        report.comparisons.append(compare("step by step (the last step)", ys[-1], y_float))
        report.notes.append(f"not compared: the steps before the last and the drift: "
                            f"{os.fspath(onnx_path)} fixes the time axis at {fixed_t} steps, "
                            "so onnxruntime cannot run shorter or longer sequences (export "
                            "it with a dynamic time axis to compare them)")  # fmt: skip
        return
    if model.many_to_one:  # each step against the float model on the prefix ending there
        marks = sorted({max(1, steps * k // PREFIXES) for k in range(1, PREFIXES + 1)})
        got = np.stack([ys[t - 1] for t in marks])
        want = []
        for t in marks:
            want.append(ref.run(_take(x, t_in, t)))
            progress.update(f"onnxruntime: the prefix of {t} steps", PREFIXES // len(marks))
        report.comparisons.append(compare(f"step by step ({len(marks)} prefixes)", got, np.stack(want)))
    else:
        t_out = out_axes.index("T") if "T" in out_axes else 0
        report.comparisons.append(compare("step by step", np.stack(ys, axis=t_out), y_float))
    if fixed_t is not None:
        report.notes.append(f"not measured: the drift over a long stream: {os.fspath(onnx_path)} "
                            f"fixes the time axis at {fixed_t} steps")  # fmt: skip
    else:
        progress.update(f"the drift over {long_steps}+ steps", 0)
        report.drift = _drift(model, ref, x, t_in, long_steps)
        progress.update("done")


def _rnnedge(call, x: np.ndarray) -> np.ndarray:
    """A run or step of the blob; what it refuses is a VerifyError on the rnnedge side."""
    try:
        return call(x)
    except RnnedgeError as e:
        if isinstance(e, VerifyError):
            raise
        raise VerifyError(f"rnnedge: {e}", "rnnedge") from None


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
