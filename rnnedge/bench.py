"""The benchmark behind `tools/bench.py` and `rnnedge bench`: rnnedge against onnxruntime (and
PyTorch when it is installed) on the same models, in the same process and run.

What each figure measures (docs/benchmarks.md says more):
- step: one `Stream.step` through the Python API at batch 1, timed one call at a time: median and
  p99 over `steps` calls after `warmup`. onnxruntime does the same with its state fed back by hand
  (initial_h/initial_c graph inputs, Y_h/Y_c outputs: one `run()` per step, and with IO binding);
  PyTorch one module call per step.
- c_step: `rne_step` in C with no Python around it (tools/bench_step.c).
- seq: one call over a whole sequence of T steps (T = 100, 1000), microseconds per step.
- floor: the time to stream the blob's tensor bytes once through the core, at the cache bandwidth
  measured on this machine for a buffer of that size (../shared/design/landscape.md).
- rss: peak resident memory of a fresh process that imports one engine, loads the model and runs
  one step.

Models are built in-process with onnx.helper (random weights at PyTorch's initial scale), converted
with `rnnedge.convert` for every format in `rnnedge.conversion.QUANT_FORMATS`, and run by every
engine from the same ONNX file. Every engine's outputs are compared with onnxruntime's before it
is timed (`max_abs_err`), so a fast wrong answer shows.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import gc
import inspect
import json
import logging
import math
import os
import platform
import runpy
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
import zlib
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence, TextIO

import numpy as np

from .errors import InputError, RnnedgeError
from .layers import from_tbf, to_tbf

FEATURES = 40
HIDDEN_SIZES = (32, 64, 128, 256, 512)
SEQ_LENGTHS = (100, 1000)
CHECK_STEPS = 100  # steps compared with onnxruntime before timing
_F32 = np.float32


# -- cases ------------------------------------------------------------------------------------------
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
    blob: Path | None = None  # an existing .rne blob (`rnnedge bench MODEL.rne`): not converted

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
    from .examples import EXAMPLE_ONNX

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


# -- building the ONNX models -----------------------------------------------------------------------
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


@dataclass
class StateIO:
    """One recurrent state carried between onnxruntime calls: graph input, graph output, start value."""

    input: str
    output: str
    initial: np.ndarray  # [D, 1, H]


# op -> states it carries (h, and c for LSTM); onnxruntime's int8 LSTM has the same input slots
RECURRENT_OPS = {"LSTM": 2, "GRU": 1, "RNN": 1, "DynamicQuantizeLSTM": 2}


def expose_state(model):
    """A copy of `model` whose recurrent nodes read their initial states from graph inputs and
    write their final states to graph outputs, so that onnxruntime can be stepped one timestep per
    `run()` with the state fed back by hand. Returns (ModelProto, [StateIO]).

    A state input the graph already has is kept; a constant initial state becomes the start value;
    one computed in the graph (the zeros exporters build with ConstantOfShape) becomes zeros.
    Raises NotStreamableError if a recurrent node reads the sequence backwards.
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from .errors import NotStreamableError

    if isinstance(model, (str, os.PathLike)):
        model = onnx.load(os.fspath(model))
    else:
        model = onnx.ModelProto.FromString(model.SerializeToString())
    graph = model.graph
    inits = {t.name: t for t in graph.initializer}
    graph_inputs = {i.name for i in graph.input if i.name not in inits}
    outputs = [o.name for o in graph.output]
    states: list[StateIO] = []
    for k, node in enumerate(n for n in graph.node if n.op_type in RECURRENT_OPS):
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        direction = attrs.get("direction", b"forward")
        direction = direction.decode() if isinstance(direction, bytes) else direction
        if direction != "forward":
            raise NotStreamableError(
                f"node {node.name or node.op_type!r} runs {direction}: it cannot be stepped"
            )
        hidden = int(attrs["hidden_size"]) if "hidden_size" in attrs else None
        if hidden is None:
            hidden = int(numpy_helper.to_array(inits[node.input[2]]).shape[-1])
        while len(node.input) < 5 + RECURRENT_OPS[node.op_type]:
            node.input.append("")
        while len(node.output) < 1 + RECURRENT_OPS[node.op_type]:
            node.output.append("")
        for j, kind in enumerate("hc"[: RECURRENT_OPS[node.op_type]]):
            source = node.input[5 + j]
            initial = np.zeros((1, 1, hidden), _F32)
            if source in inits:
                initial = numpy_helper.to_array(inits[source]).astype(_F32)[:, :1].copy()
            if source not in graph_inputs:
                source = f"state_{kind}{k}"
                node.input[5 + j] = source
                graph.input.append(
                    helper.make_tensor_value_info(
                        source, TensorProto.FLOAT, [1, "state_batch", hidden]
                    )
                )
            if not node.output[1 + j]:
                node.output[1 + j] = f"state_{kind}{k}_out"
            if node.output[1 + j] not in outputs:
                outputs.append(node.output[1 + j])
                graph.output.append(
                    helper.make_tensor_value_info(
                        node.output[1 + j], TensorProto.FLOAT, [1, "state_batch", hidden]
                    )
                )
            states.append(StateIO(source, node.output[1 + j], initial))
    _prune(graph)
    return model, states


def _prune(graph) -> None:
    """Drop nodes, initializers and value_info that no graph output depends on any more."""
    nodes = list(graph.node)
    producer = {name: i for i, node in enumerate(nodes) for name in node.output if name}
    needed, stack = set(), [o.name for o in graph.output]
    while stack:
        i = producer.get(stack.pop())
        if i is not None and i not in needed:
            needed.add(i)
            stack.extend(n for n in nodes[i].input if n)
    keep = [type(n).FromString(n.SerializeToString()) for i, n in enumerate(nodes) if i in needed]
    used = {n for node in keep for n in node.input} | {o.name for o in graph.output}
    produced = {n for node in keep for n in node.output}
    for items, keep_if in ((graph.initializer, used), (graph.value_info, produced)):
        kept = [type(t).FromString(t.SerializeToString()) for t in items if t.name in keep_if]
        del items[:]
        items.extend(kept)
    del graph.node[:]
    graph.node.extend(keep)


# -- layouts ----------------------------------------------------------------------------------------
def to_graph(x_tbf: np.ndarray, axes: str) -> np.ndarray:
    """[T, B, F] -> a contiguous float32 array in the graph's layout (a graph without a batch axis
    takes batch item 0)."""
    x = x_tbf if "B" in axes else x_tbf[:, :1]
    return np.ascontiguousarray(from_tbf(x, axes), dtype=_F32)


# -- engines ----------------------------------------------------------------------------------------
Step = Callable[[Any], Any]


class Engine:
    """One way to run a model. `stepper()` gives a fresh step function (initial state); inputs are
    prepared once, outside the timed loop, in the form the engine takes."""

    name = "engine"
    streamable = True

    def step_inputs(self, x_tbf: np.ndarray) -> list:
        raise NotImplementedError

    def stepper(self) -> Step:
        raise NotImplementedError

    def step_output(self, y: Any) -> np.ndarray:
        raise NotImplementedError

    def seq_input(self, x_tbf: np.ndarray) -> Any:
        raise NotImplementedError

    def run(self, x: Any) -> Any:
        raise NotImplementedError

    def seq_output(self, y: Any) -> np.ndarray:
        raise NotImplementedError

    def context(self) -> contextlib.AbstractContextManager:
        return contextlib.nullcontext()


class RnnedgeEngine(Engine):
    def __init__(self, model) -> None:
        self.model = model
        self.name = f"rnnedge-{model.quant}"
        self.streamable = model.streamable
        self.in_axes = model.input_spec["axes"]
        self.out_axes = model.output_spec["axes"]

    def step_inputs(self, x_tbf: np.ndarray) -> list:
        shape = (1, x_tbf.shape[2]) if "B" in self.in_axes else (x_tbf.shape[2],)
        return [np.ascontiguousarray(x_tbf[t].reshape(shape)) for t in range(len(x_tbf))]

    def stepper(self) -> Step:
        return self.model.stream(1).step

    def step_output(self, y: np.ndarray) -> np.ndarray:
        return to_tbf(y, self.out_axes.replace("T", ""))

    def seq_input(self, x_tbf: np.ndarray) -> np.ndarray:
        return to_graph(x_tbf, self.in_axes)

    def run(self, x: np.ndarray) -> np.ndarray:
        return self.model.run(x)

    def seq_output(self, y: np.ndarray) -> np.ndarray:
        return to_tbf(y, self.out_axes)


def ort_session(model, ort):
    """A single-threaded, sequential onnxruntime session on the CPU."""
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.log_severity_level = 3
    source = (
        os.fspath(model) if isinstance(model, (str, os.PathLike)) else model.SerializeToString()
    )
    return ort.InferenceSession(source, sess_options=so, providers=["CPUExecutionProvider"])


class OrtEngine(Engine):
    """onnxruntime: `seq` on the model as it is, `step` on expose_state(model) with the state fed
    back by hand; `iobinding=True` steps through pre-bound buffers (two bindings used in turn, so
    each step's output state is the next step's input with no copy)."""

    def __init__(
        self, name: str, model, in_axes: str, out_axes: str, features: int, iobinding: bool = False
    ) -> None:
        import onnxruntime as ort

        self.name, self.iobinding, self.features = name, iobinding, features
        self.in_axes, self.out_axes = in_axes, out_axes
        self.session = ort_session(model, ort)
        self.x_name = self.session.get_inputs()[0].name
        self.y_name = self.session.get_outputs()[0].name
        try:
            step_model, self.states = expose_state(model)
        except RnnedgeError:
            self.streamable, self.step_session = False, None
        else:
            self.step_session = ort_session(step_model, ort)
            self.step_x = next(
                i.name
                for i in self.step_session.get_inputs()
                if i.name not in {s.input for s in self.states}
            )

    def step_inputs(self, x_tbf: np.ndarray) -> list:
        return [to_graph(x_tbf[t : t + 1], self.in_axes) for t in range(len(x_tbf))]

    def stepper(self) -> Step:
        return self._bound_stepper() if self.iobinding else self._run_stepper()

    def _run_stepper(self) -> Step:
        run, x_name = self.step_session.run, self.step_x
        in_names = [s.input for s in self.states]
        out_names = [self.y_name] + [s.output for s in self.states]
        state = [s.initial for s in self.states]

        def step(x: np.ndarray) -> np.ndarray:
            nonlocal state
            feeds = dict(zip(in_names, state))
            feeds[x_name] = x
            y, *state = run(out_names, feeds)
            return y

        return step

    def _bound_stepper(self) -> Step:
        sess = self.step_session
        probe = self._run_stepper()(np.zeros(self._step_shape(), _F32))
        x_buf = np.zeros(self._step_shape(), _F32)
        y_buf = np.zeros(probe.shape, _F32)
        bufs = [[s.initial.copy() for s in self.states], [s.initial.copy() for s in self.states]]
        bindings = []
        for k in (0, 1):
            b = sess.io_binding()
            _bind(b.bind_input, self.step_x, x_buf)
            _bind(b.bind_output, self.y_name, y_buf)
            for s, a, out in zip(self.states, bufs[k], bufs[1 - k]):
                _bind(b.bind_input, s.input, a)
                _bind(b.bind_output, s.output, out)
            bindings.append(b)
        run, turn = sess.run_with_iobinding, [0]

        def step(x: np.ndarray) -> np.ndarray:
            x_buf[...] = x
            run(bindings[turn[0]])
            turn[0] ^= 1
            return y_buf  # the same buffer every step, as IO binding is used

        step.buffers = bufs  # type: ignore[attr-defined]  # ORT holds raw pointers into these
        return step

    def _step_shape(self) -> tuple[int, ...]:
        return to_graph(np.zeros((1, 1, self.features), _F32), self.in_axes).shape

    def step_output(self, y: np.ndarray) -> np.ndarray:
        return to_tbf(y, self.out_axes)

    def seq_input(self, x_tbf: np.ndarray) -> np.ndarray:
        return to_graph(x_tbf, self.in_axes)

    def run(self, x: np.ndarray) -> np.ndarray:
        return self.session.run([self.y_name], {self.x_name: x})[0]

    def seq_output(self, y: np.ndarray) -> np.ndarray:
        return to_tbf(y, self.out_axes)


def _bind(bind: Callable, name: str, a: np.ndarray) -> None:
    bind(name, "cpu", 0, np.float32, list(a.shape), a.ctypes.data)


class TorchEngine(Engine):
    """PyTorch nn.LSTM / nn.GRU holding the same weights (ONNX gate order mapped to PyTorch's)."""

    ORDER = {"lstm": [0, 2, 3, 1], "gru": [1, 0, 2]}  # ONNX i,o,f,c -> i,f,g,o; z,r,h -> r,z,n

    def __init__(self, case: Case, weights: list[LayerWeights]) -> None:
        import torch

        torch.set_num_threads(1)
        self.torch = torch
        self.name = "torch"
        self.streamable = not case.bidirectional
        cls = torch.nn.LSTM if case.cell == "lstm" else torch.nn.GRU
        self.module = cls(case.features, case.hidden, case.layers, bidirectional=case.bidirectional)
        order, gates, h = self.ORDER[case.cell], GATES[case.cell], case.hidden

        def reorder(a: np.ndarray) -> "torch.Tensor":
            return torch.from_numpy(
                np.ascontiguousarray(a.reshape(gates, h, *a.shape[1:])[order].reshape(a.shape))
            )

        with torch.no_grad():
            for k, w in enumerate(weights):
                for d in range(w.W.shape[0]):
                    sfx = f"_l{k}" + ("_reverse" if d else "")
                    getattr(self.module, "weight_ih" + sfx).copy_(reorder(w.W[d]))
                    getattr(self.module, "weight_hh" + sfx).copy_(reorder(w.R[d]))
                    getattr(self.module, "bias_ih" + sfx).copy_(reorder(w.B[d, : gates * h]))
                    getattr(self.module, "bias_hh" + sfx).copy_(reorder(w.B[d, gates * h :]))
        self.module.eval()

    def context(self) -> contextlib.AbstractContextManager:
        return self.torch.inference_mode()

    def step_inputs(self, x_tbf: np.ndarray) -> list:
        return [self.torch.from_numpy(x_tbf[t : t + 1].copy()) for t in range(len(x_tbf))]

    def stepper(self) -> Step:
        module, state = self.module, None

        def step(x):
            nonlocal state
            y, state = module(x, state)
            return y

        return step

    def step_output(self, y) -> np.ndarray:
        return y.numpy()

    def seq_input(self, x_tbf: np.ndarray):
        return self.torch.from_numpy(np.ascontiguousarray(x_tbf))

    def run(self, x):
        return self.module(x)[0]

    def seq_output(self, y) -> np.ndarray:
        return y.numpy()


# -- timing -----------------------------------------------------------------------------------------
@contextlib.contextmanager
def _no_gc() -> Iterator[None]:
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _stats(ns: np.ndarray) -> dict[str, float]:
    us = ns / 1e3
    return {
        "median_us": float(np.median(us)),
        "p99_us": float(np.percentile(us, 99)),
        "min_us": float(us.min()),
        "mean_us": float(us.mean()),
        "n": int(len(us)),
    }


def time_steps(step: Step, inputs: Sequence, warmup: int) -> dict[str, float]:
    """Call step(x) for each input, timing every call on its own; `warmup` untimed calls first."""
    for x in inputs[:warmup]:
        step(x)
    timed = inputs[warmup:]
    clock = time.perf_counter_ns
    stamps = [0] * (len(timed) + 1)
    with _no_gc():
        stamps[0] = clock()
        for i, x in enumerate(timed, 1):
            step(x)
            stamps[i] = clock()
    return _stats(np.diff(np.array(stamps, dtype=np.int64)))


def harness_overhead(n: int = 2000) -> dict[str, float]:
    """The timing loop's own cost per step (a no-op builtin as the step)."""
    return time_steps(id, [None] * (n + 100), 100)


def time_calls(
    fn: Callable[[Any], Any], arg: Any, budget_s: float, repeats: tuple[int, int] = (5, 50)
) -> dict[str, float]:
    """Median of repeated fn(arg) calls: one warm-up call, then as many as fit in budget_s
    (at least repeats[0], at most repeats[1])."""
    clock = time.perf_counter_ns
    t0 = clock()
    fn(arg)
    first = max(clock() - t0, 1)
    n = int(min(max(budget_s * 1e9 / first, repeats[0]), repeats[1]))
    times = np.empty(n, np.int64)
    with _no_gc():
        for i in range(n):
            t0 = clock()
            fn(arg)
            times[i] = clock() - t0
    return _stats(times)


# -- the C step bench and the bandwidth floor --------------------------------------------------------
def source_root() -> Path | None:
    """The source checkout holding csrc/ and tools/bench_step.c, if there is one."""
    for root in (Path(__file__).resolve().parent.parent, Path.cwd()):
        if (root / "csrc" / "rnnedge.h").is_file() and (root / "tools" / "bench_step.c").is_file():
            return root
    return None


def build_c_bench(out_dir: Path, root: Path | None = None) -> Path:
    """Compile tools/bench_step.c with csrc/*.c into out_dir; returns the program's path.

    The library sources get the Python extension's flags (rnnedge/_build.py), so the C figure is
    the code the extension runs; bench_step.c gets -march=native for its bandwidth loop.
    Raises RnnedgeError when there is no source checkout or no working C compiler.
    """
    root = root or source_root()
    if root is None:
        raise RnnedgeError(
            "no source checkout (csrc/ and tools/bench_step.c) next to rnnedge or in the current directory"
        )
    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if not cc:
        raise RnnedgeError("no C compiler found (set CC)")
    lib_flags = extension_cflags(root)
    out_dir.mkdir(parents=True, exist_ok=True)
    csrc, objects = root / "csrc", []
    jobs = [(p, lib_flags) for p in sorted(csrc.glob("*.c"))]
    jobs.append((root / "tools" / "bench_step.c", ["-std=c99", "-O3", "-march=native"]))
    for src, flags in jobs:
        obj = out_dir / (src.stem + ".o")
        _compile([cc, *flags, f"-I{csrc}", "-c", str(src), "-o", str(obj)], src)
        objects.append(str(obj))
    exe = out_dir / "bench_step"
    _compile([cc, "-o", str(exe), *objects, "-lm"], exe)
    return exe


def extension_cflags(root: Path) -> list[str]:
    """The flags the Python extension is built with: `_cflags()` of the checkout's rnnedge/_build.py
    (which honours $RNNEDGE_CFLAGS)."""
    try:
        return list(runpy.run_path(str(root / "rnnedge" / "_build.py"))["_cflags"]())
    except Exception as e:  # a build script that cannot run here: say why
        raise RnnedgeError(
            f"{root / 'rnnedge' / '_build.py'}: cannot read the extension's flags: {e}"
        )


def _compile(cmd: list[str], what: Path) -> None:
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    except OSError as e:
        raise RnnedgeError(f"{cmd[0]}: cannot run the C compiler: {e}") from None
    if proc.returncode != 0 and "-march=native" in cmd:  # a compiler without -march=native
        cmd = [c for c in cmd if c != "-march=native"]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        raise RnnedgeError(
            f"building {what.name} failed: {(proc.stderr or proc.stdout).strip()[-800:]}"
        )


def _run_json(cmd: list[str]) -> dict[str, Any]:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        raise RnnedgeError(f"{Path(cmd[0]).name} {' '.join(cmd[1:])}: {proc.stderr.strip()}")
    return json.loads(proc.stdout)


def c_step_time(exe: Path, blob: Path, steps: int, warmup: int) -> dict[str, float]:
    """rne_step at batch 1 in C: median, p99, min, mean microseconds per step."""
    return _run_json([str(exe), str(blob), str(steps), str(max(warmup, 1))])


def bandwidth(nbytes: int, exe: Path | None) -> dict[str, Any]:
    """Streaming read bandwidth for a buffer of nbytes, the best of 50 timed blocks: with the C
    bench (widest loads) when built, else numpy's sum over 64-bit words (a lower estimate)."""
    if exe is not None:
        r = _run_json([str(exe), "--bandwidth", str(max(nbytes, 64))])
        r["method"] = "tools/bench_step.c --bandwidth (-O3 -march=native)"
        return r
    words = np.arange(max(nbytes, 64) // 8 + 1, dtype=np.uint64)
    passes = max(1, int(2e5 // max(words.nbytes, 1)))
    best = math.inf
    for _ in range(50):
        t0 = time.perf_counter_ns()
        for _ in range(passes):
            words.sum()
        best = min(best, (time.perf_counter_ns() - t0) / passes)
    return {
        "bytes": int(words.nbytes),
        "pass_us": best / 1e3,
        "gbps": words.nbytes / best,
        "method": "numpy uint64 sum (no C compiler)",
    }


# -- peak memory ------------------------------------------------------------------------------------
_RSS_PRELUDE = "import sys, json\nimport numpy as np\n"
_RSS_CODE = {
    "python": "",
    "rnnedge": (
        "import rnnedge\n"
        "m = rnnedge.load(sys.argv[1])\n"
        "m.run(np.zeros(json.loads(sys.argv[2]), np.float32))\n"
    ),
    "ort": (
        "import onnxruntime as ort\n"
        "so = ort.SessionOptions(); so.intra_op_num_threads = 1; so.inter_op_num_threads = 1\n"
        "s = ort.InferenceSession(sys.argv[1], so, providers=['CPUExecutionProvider'])\n"
        "s.run(None, {i.name: np.zeros([d if isinstance(d, int) else 1 for d in i.shape], np.float32)"
        " for i in s.get_inputs()})\n"
    ),
    "torch": (
        "import torch\n"
        "torch.set_num_threads(1)\n"
        "cell, f, h, layers, bidir = json.loads(sys.argv[1])\n"
        "m = (torch.nn.LSTM if cell == 'lstm' else torch.nn.GRU)(f, h, layers, bidirectional=bidir)\n"
        "with torch.inference_mode():\n    m(torch.zeros(1, 1, f))\n"
    ),
}
_RSS_REPORT = (
    "def _peak():\n"
    "    try:\n"
    "        for line in open('/proc/self/status'):\n"
    "            if line.startswith('VmHWM:'):\n"
    "                return int(line.split()[1])\n"
    "    except OSError:\n"
    "        pass\n"
    "    import resource\n"
    "    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
    "    return r // 1024 if sys.platform == 'darwin' else r\n"
    "print('PEAK_KIB', _peak())\n"
)


def peak_rss_mib(engine: str, *args: str) -> float:
    """Peak resident memory (MiB) of a fresh Python process that imports `engine`, loads the
    model given by args and runs one step: VmHWM from /proc/self/status (ru_maxrss elsewhere)."""
    code = _RSS_PRELUDE + _RSS_CODE[engine] + _RSS_REPORT
    # run where this rnnedge package lives: `-c` puts the working directory first on sys.path,
    # so the child imports the same rnnedge (not a source tree without its extension)
    here = Path(__file__).resolve().parent.parent
    proc = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=300, cwd=here
    )
    for line in proc.stdout.splitlines():
        if line.startswith("PEAK_KIB "):
            return int(line.split()[1]) / 1024
    last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
    raise RnnedgeError(f"the {engine} child process failed: {last}")


# -- progress ---------------------------------------------------------------------------------------
class Progress:
    """A plain-text progress bar on stderr, redrawn in place on a terminal; elsewhere (a log, a
    pipe) one line when it finishes. Draws nothing during its first `delay` seconds."""

    def __init__(
        self,
        total: int,
        label: str,
        stream: TextIO | None = None,
        delay: float = 1.0,
        enabled: bool = True,
    ) -> None:
        self.total, self.label, self.done = max(total, 1), label, 0
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = enabled
        self.tty = enabled and hasattr(self.stream, "isatty") and self.stream.isatty()
        self.start, self.delay, self.drawn, self._last, self._width = (
            time.monotonic(),
            delay,
            False,
            0.0,
            0,
        )

    def update(self, step: str = "", advance: int = 1) -> None:
        self.done = min(self.done + advance, self.total)
        now = time.monotonic()
        due = now - self._last >= 0.1 or self.done == self.total
        if self.tty and due and now - self.start >= self.delay:
            filled = 24 * self.done // self.total
            bar = "#" * filled + "." * (24 - filled)
            text = f"\r{self.label} [{bar}] {self.done}/{self.total} {step}"[:120]
            self.stream.write(text.ljust(self._width))  # blank out a longer previous line
            self.stream.flush()
            self._width, self.drawn, self._last = len(text), True, now

    def close(self) -> None:
        elapsed = time.monotonic() - self.start
        if self.drawn:
            self.stream.write("\r" + " " * self._width + "\r")
        if self.enabled and elapsed >= self.delay:
            self.stream.write(f"{self.label}: done in {elapsed:.1f} s\n")
        self.stream.flush()


# -- one case ---------------------------------------------------------------------------------------
@dataclass
class Config:
    steps: int = 2000
    warmup: int = 200
    seq_lengths: tuple[int, ...] = SEQ_LENGTHS
    seq_budget_s: float = 0.4
    formats: tuple[str, ...] | None = None  # None: every rnnedge.conversion.QUANT_FORMATS
    ort: bool = True
    ort_int8: bool = True
    torch: bool = True
    rss: bool = True
    c_bench: bool = True
    seed: int = 0

    @staticmethod
    def quick() -> "Config":
        """Few steps, T = 100 only, no peak memory, no PyTorch: seconds, for smoke runs."""
        return Config(
            steps=200,
            warmup=20,
            seq_lengths=(100,),
            seq_budget_s=0.05,
            ort_int8=False,
            torch=False,
            rss=False,
        )


@dataclass
class Tools:
    """What a run shares between cases: the C bench program and the bandwidths measured so far."""

    exe: Path | None = None
    exe_note: str = ""
    bandwidths: dict[int, dict[str, Any]] = field(default_factory=dict)

    def bandwidth(self, nbytes: int) -> dict[str, Any]:
        if nbytes not in self.bandwidths:
            self.bandwidths[nbytes] = bandwidth(nbytes, self.exe)
        return self.bandwidths[nbytes]


def quant_formats(config: Config) -> list[str]:
    from .conversion import QUANT_FORMATS

    if config.formats is None:
        return list(QUANT_FORMATS)
    missing = [f for f in config.formats if f not in QUANT_FORMATS]
    if missing:
        raise InputError(
            f"format(s) {', '.join(missing)} not available; rnnedge writes {', '.join(QUANT_FORMATS)}"
        )
    return list(config.formats)


def convert_quiet(
    onnx_path: Path, out: Path, quant: str, calibration: np.ndarray | None
) -> list[str]:
    """rnnedge.convert, passing calibration data to the integer formats when convert takes it;
    returns the warnings it gave."""
    from .conversion import convert

    kwargs: dict[str, Any] = {}
    if (
        quant != "f32"
        and calibration is not None
        and "calibration" in inspect.signature(convert).parameters
    ):
        kwargs["calibration"] = calibration
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        convert(onnx_path, out, quant=quant, **kwargs)
    return [f"{quant}: {w.message}" for w in caught]


def _module_available(name: str) -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def _max_err(a: np.ndarray, b: np.ndarray) -> float:
    if a.shape != b.shape:
        raise RnnedgeError(
            f"output shape {list(a.shape)} differs from the reference's {list(b.shape)}"
        )
    return float(np.max(np.abs(a.astype(np.float64) - b))) if a.size else 0.0


def bench_case(
    case: Case, config: Config, work: Path, tools: Tools, progress: Progress | None = None
) -> dict[str, Any]:
    """Benchmark one case with every engine available; returns its JSON-ready results."""

    def tick(what: str) -> None:
        if progress is not None:
            progress.update(f"{case.name}: {what}", advance=0)

    work.mkdir(parents=True, exist_ok=True)
    result: dict[str, Any] = {"case": case.describe(), "engines": {}, "notes": []}
    rng = np.random.default_rng(config.seed + 1)
    n_steps = config.warmup + config.steps
    length = max(n_steps, *config.seq_lengths, CHECK_STEPS)
    x_tbf = rng.standard_normal((length, 1, case.features)).astype(_F32)
    onnx_path, weights = _onnx_model(case, config, work, tick)
    if onnx_path is not None:
        result["onnx_bytes"] = onnx_path.stat().st_size
    blobs = _blobs(case, config, onnx_path, work, rng, result, tick)
    engines = _engines(case, config, onnx_path, weights, blobs, work, result, tick)

    reference = next((e for e in engines if e.name == "ort"), engines[0])
    check = x_tbf[:CHECK_STEPS]
    ref_seq = reference.seq_output(reference.run(reference.seq_input(check)))
    ref_steps = _step_outputs(reference, check) if reference.streamable else None
    for eng in engines:
        r: dict[str, Any] = {"reference": reference.name}
        result["engines"][eng.name] = r
        with eng.context():
            if eng.name != "ort-iobinding":  # its sequence mode is plain onnxruntime's
                seq_out = eng.seq_output(eng.run(eng.seq_input(check)))
                r["max_abs_err_seq"] = _max_err(seq_out, ref_seq)
            if eng.streamable and ref_steps is not None:
                r["max_abs_err_step"] = _max_err(_step_outputs(eng, check), ref_steps)
                tick(f"{eng.name} step")
                inputs = eng.step_inputs(x_tbf[:n_steps])
                r["step"] = time_steps(eng.stepper(), inputs, config.warmup)
            if eng.name != "ort-iobinding":
                r["seq"] = {}
                for t in config.seq_lengths:
                    tick(f"{eng.name} sequence T={t}")
                    stats = time_calls(eng.run, eng.seq_input(x_tbf[:t]), config.seq_budget_s)
                    # the fastest call: the least disturbed by other work on a shared machine
                    per_step = {"per_step_us": stats["min_us"] / t}
                    r["seq"][str(t)] = {
                        **stats,
                        **per_step,
                        "per_step_median_us": stats["median_us"] / t,
                    }
        if isinstance(eng, RnnedgeEngine):
            _rnnedge_extras(eng, blobs[eng.model.quant], r, config, tools, tick)
    if config.rss:
        _peak_memory(case, engines, blobs, onnx_path, result, tick)
    return result


def _onnx_model(case: Case, config: Config, work: Path, tick: Callable[[str], None]):
    """The case's ONNX file (built and saved into work for a built case) and its weights."""
    if not case.built:
        return case.onnx, None
    import onnx

    tick("building ONNX")
    model, weights = build_onnx(case, config.seed)
    path = work / f"{case.name}.onnx"
    onnx.save(model, str(path))
    return path, weights


def _blobs(case: Case, config: Config, onnx_path: Path | None, work: Path,
           rng: np.random.Generator, result: dict[str, Any],
           tick: Callable[[str], None]) -> dict[str, Path]:  # fmt: skip
    """format -> .rne file: the given blob, or the ONNX model converted to every format. The
    integer formats are calibrated on random inputs like the timed ones."""
    import rnnedge

    if case.blob is not None:
        return {rnnedge.load(case.blob).quant: case.blob}
    assert onnx_path is not None
    blobs, calibration = {}, None
    for fmt in quant_formats(config):
        tick(f"converting to {fmt}")
        if fmt != "f32" and calibration is None:
            x_cal = rng.standard_normal((CHECK_STEPS, 8, case.features)).astype(_F32)
            calibration = to_graph(x_cal, _onnx_input_axes(onnx_path))
        blobs[fmt] = work / f"{case.name}.{fmt}.rne"
        result["notes"] += convert_quiet(onnx_path, blobs[fmt], fmt, calibration)
    return blobs


def _engines(case: Case, config: Config, onnx_path: Path | None, weights, blobs: dict[str, Path],
             work: Path, result: dict[str, Any], tick: Callable[[str], None]) -> list[Engine]:  # fmt: skip
    """rnnedge in every format, then onnxruntime (float, IO binding, int8) and PyTorch where
    available and asked for."""
    import rnnedge

    engines: list[Engine] = [RnnedgeEngine(rnnedge.load(path)) for path in blobs.values()]
    first = engines[0]
    if first.model.in_features != case.features:
        raise InputError(
            f"{case.name}: the model takes {first.model.in_features} features per step, "
            f"the case says {case.features}"
        )
    axes = (first.in_axes, first.out_axes, case.features)
    if onnx_path is not None and config.ort and _module_available("onnxruntime"):
        tick("onnxruntime session")
        engines.append(OrtEngine("ort", onnx_path, *axes))
        if engines[-1].streamable:
            engines.append(OrtEngine("ort-iobinding", onnx_path, *axes, iobinding=True))
        if config.ort_int8:
            engines.append(_ort_int8_engine(onnx_path, work, case, *axes[:2], result))
    if weights is not None and config.torch and _module_available("torch"):
        engines.append(TorchEngine(case, weights))
    return engines


def _onnx_input_axes(onnx_path: Path) -> str:
    """The data input's axes as rnnedge's converter reads them (from a float conversion)."""
    from .converter import to_network

    return to_network(onnx_path).input.axes


def _step_outputs(eng: Engine, x_tbf: np.ndarray) -> np.ndarray:
    step = eng.stepper()
    return np.concatenate(
        [np.array(eng.step_output(step(x)), copy=True) for x in eng.step_inputs(x_tbf)]
    )


def _ort_int8_engine(
    onnx_path: Path, work: Path, case: Case, in_axes: str, out_axes: str, result: dict[str, Any]
) -> Engine:
    """onnxruntime's own int8: quantize_dynamic (int8 weights; LSTM only, GRU stays float)."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    out = work / f"{case.name}.ort-int8.onnx"
    logging.disable(logging.WARNING)  # its advice to pre-process the model is not for us
    try:
        quantize_dynamic(onnx_path, out, weight_type=QuantType.QInt8)
    finally:
        logging.disable(logging.NOTSET)
    ops = {n.op_type for n in onnx.load(str(out)).graph.node}
    if not any(op.startswith("DynamicQuantize") for op in ops):
        result["notes"].append(
            "onnxruntime int8: quantize_dynamic left the model in float "
            "(onnxruntime has no int8 GRU)"
        )
    return OrtEngine("ort-int8", out, in_axes, out_axes, case.features)


def _rnnedge_extras(
    eng: RnnedgeEngine,
    blob: Path,
    r: dict[str, Any],
    config: Config,
    tools: Tools,
    tick: Callable[[str], None],
) -> None:
    """Blob size, weight bytes, the bandwidth floor and the C-level step time of one rnnedge blob."""
    model = eng.model
    r["blob_bytes"] = blob.stat().st_size
    r["weight_bytes"] = int(model.weight_bytes)
    r["state_bytes"] = int(model.state_bytes(1))
    tick(f"{eng.name} bandwidth")
    bw = tools.bandwidth(r["weight_bytes"])
    r["bandwidth"] = bw
    r["floor_us"] = r["weight_bytes"] / bw["gbps"] / 1e3
    r["target_us"] = 1.2 * r["floor_us"] + 0.4
    if model.streamable and config.c_bench and tools.exe is not None:
        tick(f"{eng.name} C step")
        r["c_step"] = c_step_time(tools.exe, blob, config.steps, config.warmup)


def _peak_memory(
    case: Case,
    engines: list[Engine],
    blobs: dict[str, Path],
    onnx_path: Path | None,
    result: dict[str, Any],
    tick: Callable[[str], None],
) -> None:
    shape = json.dumps(
        list(to_graph(np.zeros((1, 1, case.features), _F32), engines[0].in_axes).shape)
    )
    for eng in engines:
        tick(f"{eng.name} peak memory")
        r = result["engines"][eng.name]
        try:
            if isinstance(eng, RnnedgeEngine):
                r["rss_mib"] = peak_rss_mib("rnnedge", str(blobs[eng.model.quant].resolve()), shape)
            elif eng.name == "ort":
                r["rss_mib"] = peak_rss_mib("ort", str(Path(onnx_path).resolve()))
            elif eng.name == "torch":
                spec = [case.cell, case.features, case.hidden, case.layers, case.bidirectional]
                r["rss_mib"] = peak_rss_mib("torch", json.dumps(spec))
        except (RnnedgeError, subprocess.TimeoutExpired) as e:
            result["notes"].append(f"{eng.name}: peak memory not measured: {e}")


# -- a whole run ------------------------------------------------------------------------------------
def _version(module: str) -> str | None:
    try:
        from importlib.metadata import version

        return version(module)
    except Exception:  # not installed, or no metadata
        return None


def machine() -> dict[str, Any]:
    """The machine and software a run measured."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((l.split(":", 1)[1].strip() for l in f if l.startswith("model name")), cpu)
    except OSError:
        pass
    caches = {}
    for index in sorted(Path("/sys/devices/system/cpu/cpu0/cache").glob("index*")):
        with contextlib.suppress(OSError):
            level = (index / "level").read_text().strip()
            kind = (index / "type").read_text().strip()
            caches[f"L{level}{'d' if kind == 'Data' else 'i' if kind == 'Instruction' else ''}"] = (
                (index / "size").read_text().strip()
            )
    from . import __version__

    cc = os.environ.get("CC") or shutil.which("cc")
    compiler = None
    if cc:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            compiler = subprocess.run(
                [cc, "--version"], capture_output=True, text=True, timeout=10
            ).stdout.splitlines()[0]
    return {
        "cpu": cpu,
        "arch": platform.machine(),
        "cores": os.cpu_count(),
        "caches": caches,
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "numpy": np.__version__,
        "onnx": _version("onnx"),
        "onnxruntime": _version("onnxruntime"),
        "torch": _version("torch"),
        "rnnedge": __version__,
        "compiler": compiler,
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }


def run_benchmark(
    cases: Sequence[Case], config: Config, work: Path | None = None, progress: bool = True
) -> dict[str, Any]:
    """Run every case; returns {"machine", "config", "harness", "tools", "cases"} ready for JSON."""
    with contextlib.ExitStack() as stack:
        if work is None:
            work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="rnnedge-bench-")))
        tools, root, cflags = Tools(), source_root(), None
        with contextlib.suppress(RnnedgeError):
            cflags = " ".join(extension_cflags(root)) if root else None
        if config.c_bench:
            try:
                tools.exe = build_c_bench(work / "c", root)
            except RnnedgeError as e:
                tools.exe_note = f"C step time not measured: {e}"
        bar = Progress(len(cases), "rnnedge bench", enabled=progress)
        results = {
            "machine": machine(),
            "config": {
                k: list(v) if isinstance(v, tuple) else v for k, v in asdict(config).items()
            },
            "harness": {"step_loop_overhead": harness_overhead()},
            "tools": {
                "c_bench": str(tools.exe) if tools.exe else None,
                "note": tools.exe_note,
                "extension_cflags": cflags,
            },
            "cases": [],
        }
        if config.rss:
            results["python_rss_mib"] = peak_rss_mib("python")
        for case in cases:
            results["cases"].append(bench_case(case, config, work / case.name, tools, bar))
            bar.update(case.name)
        bar.close()
        return results


# -- output -----------------------------------------------------------------------------------------
OTHER_TITLES = {
    "ort": "onnxruntime run()",
    "ort-iobinding": "onnxruntime IO binding",
    "ort-int8": "onnxruntime int8",
    "torch": "PyTorch",
}


def _title(engine: str) -> str:
    return OTHER_TITLES.get(engine) or engine.replace("rnnedge-", "rnnedge ")


def _us(v: float | None) -> str:
    if v is None:
        return "-"
    return f"{v:.2f}" if v < 10 else f"{v:.1f}" if v < 100 else f"{v:.0f}"


def _size(n: int | None) -> str:
    if n is None:
        return "-"
    return f"{n} B" if n < 10240 else f"{n / 1024:.1f} KiB" if n < 2**20 else f"{n / 2**20:.2f} MiB"


def ratio_text(ours: float | None, theirs: float | None) -> str:
    """rnnedge / other, and in brackets how many times faster rnnedge is (or slower)."""
    if not ours or not theirs:
        return "-"
    r = ours / theirs
    return f"{r:.3g} ({1 / r:.1f}x)" if r <= 1 else f"{r:.3g} ({r:.1f}x slower)"


def _table(title: str, header: list[str], rows: list[list[str]], note: str = "") -> str:
    lines = [f"### {title}", ""] + ([note, ""] if note else [])
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])


def _get(d: Any, *path: str) -> Any:
    for p in path:
        if not isinstance(d, dict) or p not in d:
            return None
        d = d[p]
    return d


def _formats(results: dict[str, Any]) -> list[str]:
    names = [n for c in results["cases"] for n in c["engines"] if n.startswith("rnnedge-")]
    return [n[len("rnnedge-") :] for n in dict.fromkeys(names)]


def _present(results: dict[str, Any], names: Sequence[str]) -> list[str]:
    return [n for n in names if any(n in c["engines"] for c in results["cases"])]


def ort_step(case: dict[str, Any]) -> float | None:
    """onnxruntime's step-wise latency for the ratios: the faster of run() and IO binding."""
    vals = [_get(case, "engines", n, "step", "median_us") for n in ("ort", "ort-iobinding")]
    return min((v for v in vals if v), default=None)


def _md_steps(results: dict[str, Any]) -> str:
    fmts, cfg = _formats(results), results["config"]
    others = _present(results, ["ort", "ort-iobinding", "ort-int8", "torch"])
    rows = []
    for c in results["cases"]:
        ours = [_get(c, "engines", f"rnnedge-{f}", "step", "median_us") for f in fmts]
        theirs = [_get(c, "engines", o, "step", "median_us") for o in others]
        ratios = [ratio_text(v, ort_step(c)) for v in ours]
        rows.append([c["case"]["name"], *map(_us, theirs), *map(_us, ours), *ratios])
    header = ["case", *map(_title, others)]
    header += [f"rnnedge {f}" for f in fmts] + [f"{f} / onnxruntime" for f in fmts]
    title = f"Per-step latency, one step per call, batch 1 (us, median of {cfg['steps']} steps)"
    note = (
        "rnnedge through the Python API (`Stream.step`). Ratio: rnnedge / the faster of "
        "onnxruntime's two step-wise ways (run() or IO binding); below 1 is faster, in brackets "
        "how many times."
    )
    return _table(title, header, rows, note)


def _md_floor(results: dict[str, Any]) -> str:
    rows = []
    for c in results["cases"]:
        for f in _formats(results):
            r = _get(c, "engines", f"rnnedge-{f}") or {}
            py, cs, goal = (
                _get(r, "step", "median_us"),
                _get(r, "c_step", "median_us"),
                r.get("target_us"),
            )
            met = "-" if py is None or not goal else "yes" if py <= goal else "no"
            overhead = py - cs if py and cs else None
            rows.append([c["case"]["name"], f, _size(r.get("weight_bytes")), _us(r.get("floor_us"))]
                        + [_us(v) for v in (goal, cs, py, overhead)]
                        + [_us(_get(r, "step", "p99_us")), met])  # fmt: skip
    note = (
        "floor: the blob's tensor bytes streamed once at this machine's cache bandwidth measured "
        "for that size; target: 1.2 x floor + 0.4 us; C: `rne_step` with no Python "
        "(tools/bench_step.c); Python: `Stream.step`; overhead: Python - C."
    )
    header = ["case", "format", "weights", "floor", "target", "C step", "Python step"]
    header += ["overhead", "Python p99", "met"]
    return _table("Where a step's time goes (us, median)", header, rows, note)


def _md_seq(results: dict[str, Any]) -> str:
    fmts, lengths = _formats(results), [str(t) for t in results["config"]["seq_lengths"]]
    engines = _present(results, ["ort", "ort-int8", "torch"]) + [f"rnnedge-{f}" for f in fmts]
    rows = []
    for c in results["cases"]:
        per_step = {
            e: [_get(c, "engines", e, "seq", t, "per_step_us") for t in lengths] for e in engines
        }
        ratios = [
            ratio_text(per_step[f"rnnedge-{f}"][-1], (per_step.get("ort") or [None])[-1])
            for f in fmts
        ]
        rows.append([c["case"]["name"], *(_us(v) for e in engines for v in per_step[e]), *ratios])
    header = ["case", *(f"{_title(e)} T={t}" for e in engines for t in lengths)]
    header += [f"{f} / onnxruntime T={lengths[-1]}" for f in fmts]
    title = f"Sequence mode, one call per sequence (us per step, fastest call; T = {', '.join(lengths)})"
    return _table(title, header, rows)


def _md_sizes(results: dict[str, Any]) -> str:
    fmts = _formats(results)
    rss = [e for e in ["ort", "torch"] + [f"rnnedge-{f}" for f in fmts]
           if any(_get(c, "engines", e, "rss_mib") for c in results["cases"])]  # fmt: skip
    rows = []
    for c in results["cases"]:
        blobs = [_size(_get(c, "engines", f"rnnedge-{f}", "blob_bytes")) for f in fmts]
        mem = [_get(c, "engines", e, "rss_mib") for e in rss]
        rows.append([c["case"]["name"], _size(c.get("onnx_bytes")), *blobs]
                    + ["-" if v is None else f"{v:.1f} MiB" for v in mem])  # fmt: skip
    header = ["case", "ONNX file", *(f"blob {f}" for f in fmts)]
    header += [f"peak RSS {_title(e)}" for e in rss]
    base = results.get("python_rss_mib")
    note = f"Peak RSS of Python with numpy alone: {base:.1f} MiB." if base else ""
    return _table("Sizes and peak memory", header, rows, note)


def _md_accuracy(results: dict[str, Any]) -> str:
    if not _present(results, ["ort"]):
        return ""  # nothing to compare with
    engines = _present(results, ["ort-int8", "torch"] + [f"rnnedge-{f}" for f in _formats(results)])

    def cell(r: dict[str, Any] | None) -> str:
        vals = [_get(r, "max_abs_err_step"), _get(r, "max_abs_err_seq")]
        return "-" if not r else " / ".join("-" if v is None else f"{v:.1e}" for v in vals)

    rows = [
        [c["case"]["name"], *(cell(_get(c, "engines", e)) for e in engines)]
        for c in results["cases"]
    ]
    title = f"Agreement with onnxruntime (max abs difference over {CHECK_STEPS} steps)"
    return _table(title, ["case", *map(_title, engines)], rows, "step-wise / sequence mode")


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Issue 5's targets, checked on the single-layer LSTM and GRU cases (reported, not asserted)."""
    rows: list[dict[str, Any]] = []
    t = str(results["config"]["seq_lengths"][-1])
    for c in results["cases"]:
        info = c["case"]
        if info["layers"] != 1 or info["bidirectional"] or not c["case"]["cell"] in GATES:
            continue
        if info["onnx"] or info["blob"]:
            continue
        ort, h = ort_step(c), info["hidden"]
        step = {
            f: _get(c, "engines", f"rnnedge-{f}", "step", "median_us") for f in _formats(results)
        }

        def add(what: str, value: float | None, goal: float | None, ok: bool | None) -> None:
            rows.append(
                {"case": info["name"], "target": what, "value": value, "goal": goal, "met": ok}
            )

        for f, h_ok, goal in (
            ("f32", h <= 64, 10.0),
            ("f32", h == 128, 4.5),
            ("int8", h == 128, 8.0),
        ):
            if h_ok and step.get(f) and ort:
                add(
                    f"{f} step: >= {goal:g}x faster than onnxruntime",
                    ort / step[f],
                    goal,
                    ort / step[f] >= goal,
                )
        for f, v in step.items():
            goal = _get(c, "engines", f"rnnedge-{f}", "target_us")
            if v and goal:
                add(f"{f} step within 1.2 x floor + 0.4 us", v, goal, v <= goal)
        ours = _get(c, "engines", "rnnedge-f32", "seq", t, "per_step_us")
        theirs = _get(c, "engines", "ort", "seq", t, "per_step_us")
        if ours and theirs:
            add(
                f"f32 sequence T={t} no slower than onnxruntime (us/step)",
                ours,
                theirs,
                ours <= theirs,
            )
        if step.get("int8") and step.get("f32"):
            add("int8 step faster than f32", step["int8"], step["f32"], step["int8"] < step["f32"])
    return rows


def _md_targets(results: dict[str, Any]) -> str:
    rows = targets(results)
    body = [[r["case"], r["target"], f"{r['value']:.2f}", f"{r['goal']:.2f}",
             "yes" if r["met"] else "**no**"] for r in rows]  # fmt: skip
    title = f"Targets of issue 5 (reported, not asserted): {sum(r['met'] for r in rows)} of {len(rows)} met"
    return _table(title, ["case", "target", "measured", "goal", "met"], body) if rows else ""


def markdown(results: dict[str, Any]) -> str:
    """The tables of a run, as markdown."""
    m = results["machine"]
    load = ", ".join(f"{v:.2f}" for v in m["load_average"] or [])
    overhead = results["harness"]["step_loop_overhead"]["median_us"]
    flags = results["tools"].get("extension_cflags") or "the installed package's flags"
    head = (
        f"## rnnedge benchmark\n\n{m['date']}, {m['cpu']} ({m['arch']}, {m['cores']} cores), "
        f"{m['os']}; Python {m['python']}, numpy {m['numpy']}, onnxruntime {m['onnxruntime'] or '-'}, "
        f"PyTorch {m['torch'] or '-'}; rnnedge {m['rnnedge']} built with {flags} "
        f"({m['compiler'] or 'unknown compiler'}). Load average at the start: {load}. The timing "
        f"loop's own cost, included in every Python figure: {overhead:.3f} us per step."
    )
    notes = [results["tools"]["note"]] if results["tools"].get("note") else []
    notes += [f"{c['case']['name']}: {n}" for c in results["cases"] for n in c.get("notes", [])]
    tail = "Notes:\n\n" + "\n".join(f"- {n}" for n in dict.fromkeys(notes)) if notes else ""
    parts = [head, _md_steps(results), _md_floor(results), _md_seq(results), _md_sizes(results)]
    parts += [_md_accuracy(results), _md_targets(results), tail]
    return "\n\n".join(p for p in parts if p) + "\n"


PLOT_COLORS = {"ort": "tab:blue", "ort-iobinding": "tab:cyan", "ort-int8": "tab:purple",
               "torch": "tab:brown", "f32": "tab:green", "int16": "tab:orange", "int8": "tab:red"}  # fmt: skip


def write_png(results: dict[str, Any], path: Path) -> str | None:
    """Per-step latency against hidden size for every engine, one panel per cell (the single-layer
    built cases). Returns None when written, else why not (matplotlib is an optional extra)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        import matplotlib.ticker
    except ImportError:
        return "matplotlib is not installed (pip install matplotlib): no PNG written"
    series = [(o, "step", "s-", _title(o)) for o in _present(results, list(OTHER_TITLES))]
    for f in _formats(results):
        series += [(f"rnnedge-{f}", "step", "o-", f"rnnedge {f} (Python)")]
        series += [(f"rnnedge-{f}", "c_step", ".:", f"rnnedge {f} (C)")]
        series += [(f"rnnedge-{f}", "floor_us", "--", f"floor {f}")]
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.8), sharey=True)
    for ax, cell in zip(axes, ("lstm", "gru")):
        cases = [c for c in results["cases"] if c["case"]["cell"] == cell and c["case"]["layers"] == 1
                 and not (c["case"]["bidirectional"] or c["case"]["onnx"] or c["case"]["blob"])]  # fmt: skip
        cases.sort(key=lambda c: c["case"]["hidden"])
        for engine, key, style, label in series:
            pts = [(c["case"]["hidden"], _get(c, "engines", engine, key)) for c in cases]
            pts = [(h, v if key == "floor_us" else _get(v, "median_us")) for h, v in pts if v]
            color = PLOT_COLORS.get(engine.replace("rnnedge-", ""))
            if pts:
                ax.plot(
                    *zip(*pts), style, label=label, color=color, alpha=0.6 if key != "step" else 1
                )
        hs = [c["case"]["hidden"] for c in cases]
        feats = ", ".join(sorted({str(c["case"]["features"]) for c in cases}))
        ax.set_xscale("log", base=2)
        ax.set(yscale="log", xlabel="hidden size", title=f"{cell.upper()}, input {feats}, batch 1")
        ax.set_xticks(hs, [str(h) for h in hs], minor=False)
        ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
        ax.set_visible(bool(hs))
        ax.grid(True, which="both", alpha=0.3)
    axes[0].set_ylabel("per-step latency (us, median)")
    legend = {label: h for ax in axes for h, label in zip(*ax.get_legend_handles_labels())}
    fig.legend(legend.values(), legend.keys(), fontsize=7, loc="center right")
    fig.suptitle(
        f"rnnedge, {results['machine']['cpu']}, {results['machine']['date'][:10]}", fontsize=10
    )
    fig.tight_layout(rect=(0, 0, 0.83, 1))
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return None


def write_outputs(results: dict[str, Any], out_dir: Path) -> list[str]:
    """bench.md, bench.json and bench.png in out_dir; returns what was written (and a note when
    the PNG could not be)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "bench.md").write_text(markdown(results) + "\n")
    (out_dir / "bench.json").write_text(json.dumps(results, indent=1, default=str) + "\n")
    written = [str(out_dir / "bench.md"), str(out_dir / "bench.json")]
    note = write_png(results, out_dir / "bench.png")
    written.append(note or str(out_dir / "bench.png"))
    return written


DOCS_BEGIN, DOCS_END = "<!-- bench-results: begin -->", "<!-- bench-results: end -->"


def update_docs(path: Path, text: str) -> None:
    """Replace what stands between the DOCS_BEGIN and DOCS_END markers in `path` with `text`."""
    doc = path.read_text()
    begin, end = doc.find(DOCS_BEGIN), doc.find(DOCS_END)
    if begin < 0 or end < begin:
        raise InputError(f"{path}: no {DOCS_BEGIN} ... {DOCS_END} section to replace")
    path.write_text(doc[: begin + len(DOCS_BEGIN)] + "\n" + text.strip() + "\n" + doc[end:])


# -- command lines ----------------------------------------------------------------------------------
def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a smoke run: 200 steps, T = 100 only, no peak memory, no PyTorch",
    )
    parser.add_argument("--steps", type=int, help="timed steps per engine (default 2000)")
    parser.add_argument("--json", metavar="PATH", help="also write every figure as JSON here")
    parser.add_argument("--no-rss", action="store_true", help="skip the peak-memory subprocesses")
    parser.add_argument(
        "--no-torch", action="store_true", help="leave PyTorch out even if installed"
    )


def _config(args: argparse.Namespace) -> Config:
    config = Config.quick() if args.quick else Config()
    if args.steps is not None:
        if args.steps < 10:
            raise InputError(f"--steps {args.steps}: give at least 10")
        config = replace(config, steps=args.steps)
    if args.no_rss:
        config = replace(config, rss=False)
    if args.no_torch:
        config = replace(config, torch=False)
    return config


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """`rnnedge bench MODEL.rne [--onnx MODEL.onnx]`: the benchmark on one model."""
    parser.add_argument("model", help="the .rne blob to benchmark")
    parser.add_argument(
        "--onnx",
        metavar="MODEL.onnx",
        help="the ONNX model it came from: adds onnxruntime (step-wise and sequence) "
        "and checks the outputs against it",
    )
    add_common_arguments(parser)


def run(args: argparse.Namespace) -> int:
    """Run `rnnedge bench` from parsed arguments; prints the tables."""
    import rnnedge

    blob = Path(args.model)
    model = rnnedge.load(blob)  # BlobError names the file if it is not a blob
    if args.onnx and not Path(args.onnx).is_file():
        raise InputError(f"{args.onnx}: no such ONNX file")
    cells = [l for l in model.blob.layers if l.op_name in ("LSTM", "GRU", "RNN")]
    case = Case(
        blob.stem,
        cells[0].op_name.lower() if cells else "",
        cells[0].hidden if cells else 0,
        layers=len(cells),
        features=model.in_features,
        blob=blob,
        onnx=Path(args.onnx) if args.onnx else None,
    )
    results = run_benchmark([case], _config(args))
    print(markdown(results))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1, default=str) + "\n")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """tools/bench.py: the full benchmark; writes bench.md, bench.json, bench.png to --out."""
    parser = argparse.ArgumentParser(prog="tools/bench.py", description=main.__doc__)
    parser.add_argument("--out", default="bench-out", help="output directory (default bench-out/)")
    parser.add_argument("--cases", help="comma-separated case names (default: all)")
    parser.add_argument("--list", action="store_true", help="list the cases and exit")
    parser.add_argument("--keep", metavar="DIR", help="keep the built ONNX models and blobs in DIR")
    parser.add_argument(
        "--docs",
        metavar="FILE",
        help="also put the tables into FILE between its bench-results markers",
    )
    add_common_arguments(parser)
    args = parser.parse_args(argv)
    cases = standard_cases()
    if args.list:
        print("\n".join(c.name for c in cases))
        return 0
    try:
        results = run_benchmark(
            select_cases(cases, args.cases), _config(args), Path(args.keep) if args.keep else None
        )
        for line in write_outputs(results, Path(args.out)):
            print(line if line.startswith("matplotlib") else f"wrote {line}")
        if args.json:
            Path(args.json).write_text(json.dumps(results, indent=1, default=str) + "\n")
        if args.docs:
            update_docs(Path(args.docs), markdown(results).replace("## rnnedge benchmark\n\n", ""))
            print(f"updated {args.docs}")
    except RnnedgeError as e:
        print(f"tools/bench.py: error: {e}", file=sys.stderr)
        return 1
    print(markdown(results))
    return 0
