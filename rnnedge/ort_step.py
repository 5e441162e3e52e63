"""onnxruntime stepped one timestep per `run()`, the LSTM/GRU state fed back by hand: what
`rnnedge demo` compares rnnedge's `Stream.step` with (the benchmark in tools/bench builds its
onnxruntime engines on it too).

onnxruntime has no streaming API, so `expose_state` rewrites a copy of the graph: each recurrent
node's initial_h/initial_c become graph inputs and its Y_h/Y_c graph outputs. Needs the onnx and
onnxruntime packages (imported when used).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from .errors import NotStreamableError

_F32 = np.float32

# op -> states it carries (h, and c for LSTM); onnxruntime's int8 LSTM has the same input slots
RECURRENT_OPS = {"LSTM": 2, "GRU": 1, "RNN": 1, "DynamicQuantizeLSTM": 2}


@dataclass
class StateIO:
    """One recurrent state carried between onnxruntime calls: graph input, graph output, start
    value."""

    input: str
    output: str
    initial: np.ndarray  # [D, 1, H]


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


def ort_session(model, ort: Any = None):
    """A single-threaded, sequential onnxruntime session on the CPU; model: a path or a
    ModelProto."""
    if ort is None:
        import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.log_severity_level = 3
    source = (
        os.fspath(model) if isinstance(model, (str, os.PathLike)) else model.SerializeToString()
    )
    return ort.InferenceSession(source, sess_options=so, providers=["CPUExecutionProvider"])


class SteppedSession:
    """onnxruntime on expose_state(model): `stepper()` gives a fresh step function (the initial
    state) that takes one timestep in the graph's input layout (time axis of length 1) and returns
    the graph's first output for it. Raises NotStreamableError for a model that reads the sequence
    backwards."""

    def __init__(self, model) -> None:
        step_model, self.states = expose_state(model)
        self.session = ort_session(step_model)
        state_inputs = {s.input for s in self.states}
        self.x_name = next(i.name for i in self.session.get_inputs() if i.name not in state_inputs)
        self.y_name = self.session.get_outputs()[0].name

    def stepper(self) -> Callable[[np.ndarray], np.ndarray]:
        run, x_name = self.session.run, self.x_name
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
