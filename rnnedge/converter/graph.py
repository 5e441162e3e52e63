"""ONNX graph -> rnnedge.ir.layers.Network: find the data input, walk the graph once in order, and
give every tensor a value (values.py). Constants and shape chains fold away; ops on the data
tensor go through the one table below, DATA_OPS, one function per op.

State graphs: a graph input that reaches only the initial_h / initial_c inputs of recurrent ops
(through Slice/Gather/Squeeze/Unsqueeze of its rows) is a state input. It becomes one StateSpec
per recurrent layer that reads it: several StateSpecs with the same name (a PyTorch h0 of shape
[layers * D, B, H]) take consecutive row blocks of that input, in layer order. A later graph
output holding the final states of the same layers (h_n / c_n) is recorded as its `output`.
"""

from __future__ import annotations

import math
import os
import warnings
from dataclasses import dataclass, field
from typing import Callable, Mapping

import numpy as np
import onnx
from onnx import defs, numpy_helper

from ..errors import ConvertError, ConvertWarning, RnnedgeError, UnsupportedOpError
from ..ir.graph import Graph
from ..ir.layers import Act, Activation, Network, Recurrent, StateSpec, TensorSpec
from . import heads, layout, recurrent, tf2onnx_loop
from .fixed import FixedValue, fix_inputs
from .fold import fold_constant, fold_symbolic
from .inputs import set_input_axes
from .keras import MulHalves, steps_to_graph
from .load import Loaded, declared_shapes, load_model, producer_text
from .node import Node
from .values import (
    CellState,
    Const,
    Data,
    Dim,
    Filled,
    NormPart,
    StateIn,
    Stack,
    Sym,
    SymInts,
    Value,
    describe,
    dims_agree,
    shape_str,
)

DataOp = Callable[["Walk", Node, list[Value | None]], list[Value]]

DATA_OPS: dict[str, DataOp] = {
    "LSTM": recurrent.op_recurrent,
    "GRU": recurrent.op_recurrent,
    "RNN": recurrent.op_recurrent,
    "Transpose": layout.op_transpose,
    "Reshape": layout.op_reshape,
    "Flatten": layout.op_flatten,
    "Squeeze": layout.op_squeeze,
    "Unsqueeze": layout.op_unsqueeze,
    "Gather": layout.op_gather,
    "Slice": layout.op_slice,
    "Concat": layout.op_concat,
    "Expand": layout.op_expand,
    "ReverseSequence": layout.op_reverse_sequence,
    "Identity": layout.op_identity,
    "Dropout": layout.op_identity,
    "Cast": layout.op_identity,
    "Gemm": heads.op_gemm,
    "MatMul": heads.op_matmul,
    "Add": heads.op_arith,
    "Sub": heads.op_arith,
    "Mul": heads.op_arith,
    "Div": heads.op_arith,
    "Pow": heads.op_arith,
    "Neg": heads.op_neg,
    "Softmax": heads.op_softmax,
    "LogSoftmax": heads.op_softmax,
    "LayerNormalization": heads.op_layer_norm,
    "ReduceMean": heads.op_reduce_mean,
    "Sqrt": heads.op_norm_unary,
    "Reciprocal": heads.op_norm_unary,
    **{op: heads.op_activation for op in heads.ACT_OPS},
}

UNROLLED_OPS = ("Loop", "Scan")
RECURRENT_OPS = ("LSTM", "GRU", "RNN")
STATE_PATH_OPS = ("Slice", "Gather", "Squeeze", "Unsqueeze", "Identity", "Cast")
HOW_TO_EXPORT = (
    "export the recurrent layer as one ONNX LSTM/GRU/RNN op instead: from PyTorch, "
    "torch.onnx.export(..., dynamo=False) of nn.LSTM / nn.GRU / nn.RNN modules (not cells called "
    "in a Python loop; the dynamo exporter unrolls nn.RNN); from Keras, convert the .keras or .h5 "
    "file directly (docs/keras.md)"
)


class LayoutMismatch(ConvertError):
    """The axis roles guessed for the data input do not fit the graph (try the next guess)."""


@dataclass
class Walk:
    """One pass over the graph with one guess of the data input's axis roles."""

    loaded: Loaded
    data_input: onnx.ValueInfoProto
    state_inputs: list[onnx.ValueInfoProto]
    axes: str
    fixed: dict[str, int] = field(default_factory=dict)  # run-time sizes a Reshape fixes
    values: dict[str, Value | None] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    bindings: list[tuple[Recurrent, str, StateIn]] = field(default_factory=list)
    unproven_shapes: list[str] = field(default_factory=list)  # warned about after a successful walk
    unproven_declared: list[str] = field(default_factory=list)  # static declared sizes met at run time
    node: Node | None = None  # the node being evaluated
    progress: int = -1  # index of the node being evaluated

    @property
    def graph(self) -> onnx.GraphProto:
        return self.loaded.model.graph

    @property
    def has_recurrent_op(self) -> bool:
        return any(n.op_type in RECURRENT_OPS for n in self.graph.node)

    # --- called by the op functions ---
    def note(self, node: Node, text: str) -> None:
        self.notes.append(f"{node.op} {node.name}: {text}")

    def unproven(self, text: str) -> None:
        """A shape the converter cannot prove right at conversion time: warned about by name."""
        where = self.where(self.node, len(self.graph.node)) if self.node else self.loaded.label
        self.unproven_shapes.append(f"{where}: {text}")

    def bind_state(self, rec: Recurrent, kind: str, value: StateIn) -> None:
        self.bindings.append((rec, kind, value))

    def layout_mismatch(self, text: str) -> LayoutMismatch:
        return LayoutMismatch(text)

    def unrolled_error(self, what: str) -> UnsupportedOpError:
        return UnsupportedOpError(
            f"found an unrolled recurrent net: {what}, in a graph with no LSTM/GRU/RNN op "
            f"(a step-by-step MatMul/Sigmoid/Tanh chain); {HOW_TO_EXPORT}"
        )

    def loop_error(self, where: str, op: str) -> UnsupportedOpError:
        return UnsupportedOpError(
            f"{where}: found an unrolled recurrent net: a {op} that iterates over the sequence "
            "(rnnedge reads the Loop tf2onnx writes for a Keras GRU or SimpleRNN, not other "
            f"loops); {HOW_TO_EXPORT}"
        )

    # --- the walk ---
    def run(self) -> Network | Graph:
        declared = declared_shapes(self.graph)
        for init in self.graph.initializer:
            self.values[init.name] = Const(_initializer_array(init, self.loaded.label))
            self._check_declared(f"initializer {init.name!r}", init.name, self.values[init.name], declared)
        self.values[self.data_input.name] = self._input_value()
        for s in self.state_inputs:
            self.values[s.name] = _state_value(s)
        nodes = _topological(self.graph)
        first = self.graph.output[0].name
        needed = _needed(nodes, [first])
        self._refuse_loops(nodes, needed)
        done: set[int] = set()
        folded: list[str] = []
        for i, proto in enumerate(nodes):
            if i in needed:
                node = Node(proto, i, self.loaded.opset)
                self._eval(node, len(nodes), folded)
                for name in node.outputs:
                    if name:
                        what = f"{_node_text(node, len(nodes))}: output {name!r}"
                        self._check_declared(what, name, self.values.get(name), declared)
                done.add(i)
        out = self.values.get(first)
        if isinstance(out, Data) and out.reversed:
            raise UnsupportedOpError(
                f"{self.loaded.label}: the output {first!r} lists the steps in reverse time order "
                "(Keras go_backwards=True with return_sequences=True); rnnedge returns steps in "
                "input order: reverse the output in the model, or use return_sequences=False"
            )
        if not isinstance(out, Data):
            raise ConvertError(
                f"the first graph output {first!r} is a {describe(out)}, not computed from the "
                f"data input {self.data_input.name!r}"
            )
        layers = list(out.layers)
        if not layers:  # the output is the input, rearranged: keep one layer to run
            layers = [Activation(Act.make("Identity"), out.features)]
        if any(isinstance(step, MulHalves) for step in layers):
            return self._graph_of(layers, first, out, folded)
        state = self._states(layers, nodes, done)
        net = Network(
            layers=layers,
            input=TensorSpec(self.data_input.name, self.axes, self._input_shape()),
            output=_output_spec(first, out),
            producer=producer_text(self.loaded.model, self.loaded.opset),
            state=state,
            folded=folded + self.notes,
        )
        try:
            net.check()
        except ConvertError as e:
            raise ConvertError(f"{self.loaded.label}: {e}") from None
        return net

    def _graph_of(self, steps: list, first: str, out: Data, folded: list[str]) -> Graph:
        """The pipeline with a product of a bidirectional layer's halves (tf2onnx's Keras
        Bidirectional merge_mode "mul": tf2onnx_loop.join_directions) as the dataflow graph the
        Keras reader makes of it; no state input or state output."""
        if self.bindings:
            raise UnsupportedOpError(
                f"{self.loaded.label}: state input {self.bindings[0][2].name!r} sets the state of a "
                "model whose Bidirectional halves are multiplied (merge_mode \"mul\"): rnnedge "
                "converts that product to a dataflow graph without state inputs")
        spec = Network([], TensorSpec(self.data_input.name, self.axes, self._input_shape()),
                       _output_spec(first, out), producer=producer_text(self.loaded.model, self.loaded.opset))
        try:
            g = steps_to_graph(steps, spec, ids=False)
        except ConvertError as e:
            raise ConvertError(f"{self.loaded.label}: {e}") from None
        g.folded = folded + self.notes + [
            f"output {o.name!r}: not produced by rnnedge (only the first output is)" for o in self.graph.output[1:]]
        return g

    def _check_declared(self, what: str, name: str, value: Value | None,
                        declared: dict[str, list[int | str | None]]) -> None:
        """A tensor's shape as computed against the shape the graph declares for it (value_info,
        graph inputs and outputs): a provable difference is refused by name; a static size the
        converter only knows at run time is reported as unproven."""
        want = declared.get(name)
        have = _value_shape(value)
        if want is None or have is None:
            return
        text = (f"{self.loaded.label}: {what} is {describe(value)}, but the graph declares it "
                f"[{', '.join(_dim_text(d) for d in want)}]")
        if len(want) != len(have):
            raise ConvertError(text)
        unknown = False
        for d, h in zip(want, have):
            if isinstance(d, int):
                agree = dims_agree(d, h)
                if agree is False:
                    raise ConvertError(text)
                unknown = unknown or agree is None
        if unknown:
            self.unproven_declared.append(f"{what} {shape_str(have)} against [{', '.join(_dim_text(d) for d in want)}]")

    def _input_shape(self) -> list[int | None]:
        return [self.fixed.get(a, d) for a, d in zip(self.axes, _static_dims(self.data_input))]

    def _refuse_loops(self, nodes: list[onnx.NodeProto], needed: set[int]) -> None:
        """A Scan over the data is an exporter's unrolled (or iterated) recurrent net; so is a
        Loop, which _dispatch reads when it is tf2onnx's Keras GRU or SimpleRNN (tf2onnx_loop)."""
        tainted = {self.data_input.name}
        for i, node in enumerate(nodes):
            if i in needed and any(n in tainted for n in [*node.input, *tf2onnx_loop.captured(node)]):
                if node.op_type in UNROLLED_OPS and node.op_type != "Loop":
                    where = self.where(Node(node, i, self.loaded.opset), len(nodes))
                    raise self.loop_error(where, node.op_type)
                tainted.update(node.output)

    def _input_value(self) -> Data:
        dims = _dims(self.data_input)
        sizes: dict[str, Dim] = {"B": 1, "1": 1}
        for letter, d in zip(self.axes, dims):
            sizes[letter] = d if isinstance(d, int) else self.fixed.get(letter, Sym(1, (letter,)))
        if not isinstance(sizes["F"], int):
            raise ConvertError(
                f"{self.loaded.label}: the feature size (last axis) of input "
                f"{self.data_input.name!r} is not fixed in the graph"
            )
        return Data((), tuple((a,) for a in self.axes), sizes)

    def _eval(self, node: Node, total: int, folded: list[str]) -> None:
        self.progress = node.index
        self.node = node
        ins: list[Value | None] = []
        for name in node.proto.input:
            if not name:
                ins.append(None)
            elif name not in self.values or self.values[name] is None:
                raise ConvertError(
                    f"{self.where(node, total)}: its input {name!r} is not available (an unused "
                    "output of an op, or a graph input the converter does not map)"
                )
            else:
                ins.append(self.values[name])
        _check_arity(node, ins, self.where(node, total))
        try:
            outs = self._dispatch(node, ins)
        except layout.BakedSize:
            raise  # to_network restarts the walk with that size fixed
        except LayoutMismatch as e:
            raise LayoutMismatch(f"{self.where(node, total)}: {e}") from None
        except UnsupportedOpError as e:  # (of its kind: tf2onnx_loop.LoopNotACell)
            raise type(e)(f"{self.where(node, total)}: {e}") from None
        except RnnedgeError as e:
            raise ConvertError(f"{self.where(node, total)}: {e}") from None
        for name, value in zip(node.outputs, outs):
            if name:
                self.values[name] = value
        before = max((len(v.layers) for v in ins if isinstance(v, Data)), default=0)
        if not any(isinstance(v, Data) and len(v.layers) > before for v in outs):
            folded.append(f"{node.op} {node.name}")

    def _dispatch(self, node: Node, ins: list[Value | None]) -> list[Value]:
        live = [v for v in ins if v is not None]
        if node.op == "Loop" and node.proto.domain in ("", "ai.onnx"):
            reads = [self.values.get(n) for n in tf2onnx_loop.captured(node.proto)]
            if any(not isinstance(v, Const) for v in live + reads):
                return tf2onnx_loop.op_loop(self, node, ins)
        if node.op in ("Concat", "Add", "Mul"):  # two directions' outputs (tf2onnx's Keras Bidirectional)
            joined = tf2onnx_loop.join_directions(node, ins, {id(rec) for rec, _, _ in self.bindings})
            if joined is not None:
                return [joined]
        if node.op in ("Shape", "Size"):
            return fold_symbolic(node, ins)
        if any(isinstance(v, (Data, StateIn, Stack, CellState, NormPart)) for v in live):
            fn = DATA_OPS.get(node.op) if node.proto.domain in ("", "ai.onnx") else None
            if fn is None:
                raise UnsupportedOpError(
                    f"unsupported op {_op_name(node.proto)!r} on the data path; "
                    f"rnnedge supports: {', '.join(sorted(DATA_OPS))} (and folds any op on "
                    "constants and shapes)"
                )
            return fn(self, node, ins)
        if any(isinstance(v, (SymInts, Filled)) for v in live):
            return fold_symbolic(node, ins)
        return fold_constant(node, ins)

    def where(self, node: Node, total: int) -> str:
        return f"{self.loaded.label}: {_node_text(node, total)}"

    def _states(self, layers: list, nodes: list[onnx.NodeProto], done: set[int]) -> list[StateSpec]:
        """StateSpecs for the state inputs, and which later graph outputs carry their final values."""
        index = {id(layer): i for i, layer in enumerate(layers)}
        specs: list[StateSpec] = []
        by_name: dict[str, list[tuple[int, int, int]]] = {}
        for rec, kind, value in self.bindings:
            if id(rec) not in index:
                raise ConvertError(
                    f"{self.loaded.label}: state input {value.name!r} feeds a recurrent layer "
                    "that the first output does not use"
                )
            specs.append(StateSpec(value.name, index[id(rec)], kind))
            by_name.setdefault(value.name, []).append((index[id(rec)], value.start, value.stop))
        for name, rows in by_name.items():
            rows.sort()
            expected = 0
            for _, start, stop in rows:
                if start != expected:
                    raise UnsupportedOpError(
                        f"{self.loaded.label}: state input {name!r} is split over the recurrent "
                        "layers out of order (rows must go to layers in order)"
                    )
                expected = stop
            total = next(s for s in self.state_inputs if s.name == name)
            if expected != _dims(total)[0]:
                raise UnsupportedOpError(
                    f"{self.loaded.label}: only rows 0:{expected} of state input {name!r} are used"
                )
        specs.sort(key=lambda s: (s.layer, s.kind != "h"))
        self._map_state_outputs(specs, index, nodes, done)
        return specs

    def _map_state_outputs(self, specs: list[StateSpec], index: dict[int, int],
                           nodes: list[onnx.NodeProto], done: set[int]) -> None:
        for out in self.graph.output[1:]:
            finals = self._try_output(out.name, nodes, done)
            if finals is None:
                self.notes.append(f"output {out.name!r}: not produced by rnnedge (only the first output is)")
                continue
            keys = [(index.get(id(rec)), kind) for rec, kind in finals]
            matches = [s for s in specs if (s.layer, s.kind) in keys]
            names = {s.name for s in matches}
            if len(names) == 1 and len(matches) == len(keys):
                for s in matches:
                    s.output = out.name
            else:
                self.notes.append(
                    f"output {out.name!r}: final recurrent state, read it from Stream.state"
                )

    def _try_output(self, name: str, nodes: list[onnx.NodeProto], done: set[int]
                    ) -> list[tuple[Recurrent, str]] | None:
        """Evaluate what a secondary output needs; its final states, or None if it is none."""
        try:
            for i in sorted(_needed(nodes, [name]) - done):
                self._eval(Node(nodes[i], i, self.loaded.opset), len(nodes), [])
                done.add(i)
        except RnnedgeError:
            return None
        value = self.values.get(name)
        parts = value.parts if isinstance(value, Stack) else (value,)
        finals: list[tuple[Recurrent, str]] = []
        for p in parts:
            if isinstance(p, CellState):
                finals.append((p.layer, "c"))
            elif isinstance(p, Data) and p.final is not None and layout.in_state_order(p):
                finals.append((p.final, "h"))
            else:
                return None
        return finals


MAX_INITIALIZER = 1 << 28  # elements; a recurrent model's largest weight is far below


def _initializer_array(init: onnx.TensorProto, label: str) -> np.ndarray:
    """An initializer as an array, or a ConvertError naming it (a corrupt or exotic tensor)."""
    what = f"{label}: initializer {init.name!r} (data type {init.data_type}, dims {list(init.dims)})"
    if any(d < 0 for d in init.dims) or math.prod(init.dims) > MAX_INITIALIZER:
        raise ConvertError(f"{what} has an impossible shape")
    try:
        return numpy_helper.to_array(init)
    except Exception as e:  # noqa: BLE001 - onnx raises ValueError, TypeError or KeyError here
        raise ConvertError(f"{what} cannot be read: {e}") from None


def _node_text(node: Node, total: int) -> str:
    return f"node {node.name!r} (op {_op_name(node.proto)}, #{node.index + 1} of {total} in the graph)"


def _dim_text(d: int | str | None) -> str:
    return "?" if d is None else str(d)


def _value_shape(value: Value | None) -> tuple[Dim, ...] | None:
    """A value's full shape where the converter knows it."""
    if isinstance(value, Const):
        return tuple(value.array.shape)
    if isinstance(value, (SymInts, Filled, Data, StateIn)):
        return tuple(value.shape)
    return None


def _check_arity(node: Node, ins: list[Value | None], where: str) -> None:
    """The node has as many inputs as its ONNX op takes, the required ones given (ops of the
    default domain; others are refused or folded by name later)."""
    if node.proto.domain not in ("", "ai.onnx"):
        return
    try:
        schema = defs.get_schema(node.op, max(node.opset, 1), "")
    except defs.SchemaError:
        try:  # an op newer than the model's opset (exporters do that): judge by its latest schema
            schema = defs.get_schema(node.op, defs.onnx_opset_version(), "")
        except defs.SchemaError:
            return
    n = len(ins)
    if not schema.min_input <= n <= schema.max_input:
        expected = (str(schema.min_input) if schema.min_input == schema.max_input
                    else f"{schema.min_input} to {schema.max_input}")  # fmt: skip
        raise ConvertError(f"{where}: has {n} inputs; {node.op} takes {expected}")
    single = defs.OpSchema.FormalParameterOption.Single
    for i, (formal, value) in enumerate(zip(schema.inputs, ins)):
        if formal.option == single and value is None:
            raise ConvertError(f"{where}: input {i} ({formal.name}) is required but empty")


def _op_name(node: onnx.NodeProto) -> str:
    return f"{node.domain}.{node.op_type}" if node.domain not in ("", "ai.onnx") else node.op_type


def _dims(info: onnx.ValueInfoProto) -> list[Dim]:
    """Static sizes as ints; run-time ones as symbols named after their role guess."""
    shape = info.type.tensor_type.shape
    return [d.dim_value if d.HasField("dim_value") else Sym(1, (f"?{i}",)) for i, d in enumerate(shape.dim)]


MAX_DIM = 2**31 - 1  # the blob and the C library count sizes in int32


def _check_static_sizes(info: onnx.ValueInfoProto, label: str) -> None:
    for i, d in enumerate(info.type.tensor_type.shape.dim):
        if d.HasField("dim_value") and not 1 <= d.dim_value <= MAX_DIM:
            raise ConvertError(
                f"{label}: input {info.name!r} has size {d.dim_value} on axis {i}; a static size "
                f"must be 1 to {MAX_DIM} (leave it symbolic for a run-time size)"
            )


def _static_dims(info: onnx.ValueInfoProto) -> list[int | None]:
    return [d if isinstance(d, int) else None for d in _dims(info)]


def _state_value(info: onnx.ValueInfoProto) -> StateIn:
    dims = _dims(info)
    if len(dims) != 3 or not isinstance(dims[0], int) or not isinstance(dims[2], int):
        raise ConvertError(
            f"state input {info.name!r} has shape {[str(d) for d in dims]}; expected "
            "[layers * directions, batch, hidden] with fixed first and last sizes"
        )
    batch = dims[1] if isinstance(dims[1], int) else Sym(1, ("B",))
    return StateIn(info.name, 0, dims[0], batch, dims[2])


def _output_spec(name: str, out: Data) -> TensorSpec:
    letters = []
    for axis in out.axes:
        if len(axis) != 1 or axis[0] == "1":
            raise UnsupportedOpError(
                f"the output {name!r} has an axis {'*'.join(axis)} (of [{out.layout()}]) that is "
                "not one of time, batch, features, direction or hidden"
            )
        letters.append(axis[0])
    shape = [d if isinstance(d, int) else None for d in out.shape]
    return TensorSpec(name, "".join(letters), shape)


def _topological(graph: onnx.GraphProto) -> list[onnx.NodeProto]:
    """The nodes in an order where every input is produced first (ONNX requires it; check it)."""
    known = {i.name for i in graph.input} | {t.name for t in graph.initializer} | {""}
    pending = list(graph.node)
    ordered: list[onnx.NodeProto] = []
    while pending:
        rest = []
        for node in pending:
            if all(name in known for name in node.input):
                ordered.append(node)
                known.update(node.output)
            else:
                rest.append(node)
        if len(rest) == len(pending):
            missing = sorted({n for node in rest for n in node.input if n not in known})
            raise ConvertError(f"the graph uses tensors that nothing produces: {missing[:5]}")
        pending = rest
    return ordered


def _needed(nodes: list[onnx.NodeProto], outputs: list[str]) -> set[int]:
    """Indices of the nodes that the given tensors depend on."""
    producer = {name: i for i, node in enumerate(nodes) for name in node.output if name}
    needed: set[int] = set()
    stack = [producer[n] for n in outputs if n in producer]
    while stack:
        i = stack.pop()
        if i in needed:
            continue
        needed.add(i)
        reads = list(nodes[i].input) + tf2onnx_loop.captured(nodes[i])  # with a Loop body's
        stack.extend(producer[n] for n in reads if n in producer)
    return needed


def _is_state_input(name: str, consumers: dict[str, list[tuple[onnx.NodeProto, int]]],
                    path: frozenset[str] = frozenset()) -> bool:
    """Whether every use of `name` ends at an initial_h/initial_c input of a recurrent op (a
    path that comes back to a tensor on it, in a cyclic graph, does not)."""
    uses = consumers.get(name, [])
    if not uses or name in path:
        return False
    for node, slot in uses:
        if node.domain not in ("", "ai.onnx"):
            return False
        if node.op_type in RECURRENT_OPS:
            if slot not in (5, 6):
                return False
        elif node.op_type in STATE_PATH_OPS and slot == 0:
            if not all(_is_state_input(out, consumers, path | {name}) for out in node.output if out):
                return False
        else:
            return False
    return True


def _input_guesses(info: onnx.ValueInfoProto, label: str) -> list[str]:
    """Axis-role guesses for the data input, likeliest first (dimension names are a hint)."""
    dims = info.type.tensor_type.shape.dim
    if len(dims) == 2:
        return ["TF"]
    if len(dims) != 3:
        raise ConvertError(
            f"{label}: input {info.name!r} has {len(dims)} axes; rnnedge takes [batch, time, "
            "features], [time, batch, features] or [time, features]" + _fix_hint([info])
        )
    roles = [_role_hint(d.dim_param) for d in dims[:2]]
    if roles[0] == "T" or roles[1] == "B":
        return ["TBF", "BTF"]
    return ["BTF", "TBF"]


def _fix_hint(inputs: list[onnx.ValueInfoProto]) -> str:
    """How to fix the side inputs (scalars or single values: a sample rate, a flag) among
    `inputs` at conversion, or "" when there are none."""
    side = [i.name for i in inputs
            if i.type.tensor_type.HasField("shape")
            and all(d.HasField("dim_value") and d.dim_value == 1 for d in i.type.tensor_type.shape.dim)]  # fmt: skip
    if not side:
        return ""
    return (
        f"; {', '.join(repr(n) for n in side)} {'is a side input' if len(side) == 1 else 'are side inputs'} "
        f"of one value: fix {'it' if len(side) == 1 else 'them'} at conversion with "
        + " ".join(f"--fix {n}=VALUE" for n in side)
        + " (Python: rnnedge.convert(..., fixed={" + ", ".join(f"{n!r}: VALUE" for n in side) + "}))"
    )


def _role_hint(name: str) -> str:
    """"T" or "B" when a dimension's name says it (e.g. "seq_len", "batch_size"), else ""."""
    words = name.lower().replace("-", "_").split("_")
    if any(w in ("t", "time", "seq", "sequence", "len", "length", "steps", "timesteps") for w in words):
        return "T"
    if any(w in ("b", "n", "batch", "bs") for w in words):
        return "B"
    return ""


def to_network(model: str | os.PathLike | onnx.ModelProto, name: str | None = None,
               fixed: Mapping[str, FixedValue] | None = None,
               inputs: Mapping[str, str] | None = None) -> Network | Graph:
    """Convert an ONNX model (a path or a loaded ModelProto) into a Network (or, for the one
    step a layer pipeline has no layer for, tf2onnx's Keras Bidirectional merge_mode "mul", the
    dataflow Graph the Keras reader makes of it: docs/keras.md).

    fixed: graph inputs to turn into constants before anything else, by name (a sample rate
    `{"sr": 16000}`: an int/float or a list, checked against the input's declared type and
    shape); an `If` whose condition then folds takes its branch (fixed.py).

    Raises ConvertError (UnsupportedOpError for ops and attribute values rnnedge does not run)
    with a message naming the file, node and value at fault; InputError for a `fixed` name that
    is not a graph input or a value that does not fit it. inputs: the data input's axes,
    {"input": "T,576"} (converter/inputs.py), instead of the guesses; naming any other input
    is a ConvertError (the graph converter takes state inputs).
    """
    loaded, given = set_input_axes(load_model(model), inputs)
    loaded = fix_inputs(loaded, fixed)
    graph = loaded.model.graph
    initializers = {t.name for t in graph.initializer}
    consumers: dict[str, list[tuple[onnx.NodeProto, int]]] = {}
    for node in graph.node:
        for slot, n in enumerate(node.input):
            consumers.setdefault(n, []).append((node, slot))
    inputs = [i for i in graph.input if i.name not in initializers]
    states = [i for i in inputs if _is_state_input(i.name, consumers)]
    data = [i for i in inputs if i not in states and i.name in consumers]
    if len(data) != 1:
        raise ConvertError(
            f"{loaded.label}: " + (
                "the graph has no data input" if not data else
                f"the graph has {len(data)} independent inputs ({', '.join(repr(i.name) for i in data)}); "
                "rnnedge maps one data input plus recurrent state inputs (h0/c0 feeding "
                "initial_h/initial_c)" + _fix_hint(data)
            )
        )
    for info in data + states:
        _check_static_sizes(info, loaded.label)
    errors: list[tuple[int, ConvertError]] = []
    if given.keys() - {data[0].name}:
        raise ConvertError(f"{loaded.label}: input axes given for {', '.join(repr(n) for n in given)}: "
                           f"the layer pipeline's data input is {data[0].name!r}")
    for axes in [given[data[0].name]] if given else _input_guesses(data[0], loaded.label):
        fixed: dict[str, int] = {}
        while True:
            walk = Walk(loaded, data[0], states, axes, fixed)
            try:
                net = walk.run()
            except layout.BakedSize as e:
                if e.letter in fixed:  # pragma: no cover - a fixed size is never symbolic again
                    raise
                fixed[e.letter] = e.value
                continue
            except ConvertError as e:
                errors.append((walk.progress + (0 if isinstance(e, LayoutMismatch) else 1), e))
                break
            for text in dict.fromkeys(walk.unproven_shapes):
                warnings.warn(ConvertWarning(text), stacklevel=2)
            if walk.unproven_declared:
                n, first = len(walk.unproven_declared), walk.unproven_declared[0]
                warnings.warn(ConvertWarning(
                    f"{loaded.label}: the graph declares a static size where rnnedge computes a "
                    f"run-time one (batch or time) for {n} tensor(s), e.g. {first}: an annotation "
                    "of the exporter's trace that cannot be proven at conversion time; rnnedge runs "
                    "any batch and length"), stacklevel=2)
            net.name = name or loaded.stem or graph.name or "model"
            net.folded += [f"input {data[0].name!r}: {k} = {v} fixed by a Reshape" for k, v in fixed.items()]
            net.folded += loaded.notes
            return net
    progress, error = max(errors, key=lambda pe: pe[0])
    raise error
