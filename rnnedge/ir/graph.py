"""The dataflow graph (docs/graph.md): values (per-timestep tensors) and nodes (ops) in run order.

A `Graph` is what the converter builds from ONNX, the oracles run (rnnedge/reference.py in float,
rnnedge/fixedpoint.py in integers) and the blob writer stores (format version 2). A node's op is
one of the layer types of rnnedge/ir/layers.py (Dense, Activation, Recurrent, ... and their
integer forms) or one of the graph ops defined here (Binary, Concat, Transpose, Copy, Gather,
Reduce). A straight pipeline (`Network`) is the special case `from_network` builds.

Value shapes are per timestep: the feature axes only (time and batch are implicit; docs/graph.md
section 1). Needs numpy only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Union

import numpy as np

from ..errors import ConvertError
from .layers import (
    Activation,
    Dense,
    FloatLayer,
    IntLayer,
    LayerNorm,
    LayerReport,
    Mult,
    Network,
    QNetwork,
    Recurrent,
    RecurrentShape,
    Slice,
    StateSpec,
    TakeLast,
    TensorSpec,
)

VALUE_KINDS = ("temp", "input", "output", "state")  # blob codes 0..3, in this order
VALUE_DTYPES = ("f32", "s16", "s32")
BINARY_KINDS = ("Add", "Sub", "Mul", "Div", "Min", "Max", "Pow", "Hypot", "LogHypot")  # blob codes 0..8
REDUCE_KINDS = ("Sum", "Mean", "Max", "Min")  # blob codes 0..3
MAX_DIMS = 4
MAX_FEATURES = 1 << 20
ROW_ALIGN = 16  # bytes: every arena offset is a multiple of this
DTYPE_BYTES = {"f32": 4, "s16": 2, "s32": 4}


# -- graph ops (float; their integer forms carry their multipliers, docs/graph.md section 3) ------


@dataclass
class Binary:
    """y = a (kind) b with numpy broadcasting of the two per-step shapes to y's shape. With
    `const`, the node has one input and the other operand is this constant (the same in every
    row; `const_left`: it is a, the left operand). Hypot, sqrt(a^2 + b^2 + beta), is no ONNX op: the
    quantizer fuses a magnitude written out in ops into it (rnnedge.quant.graph.fuse_magnitudes;
    beta a tiny eps under the root, gtcrn's 1e-12, which the integer form drops when sqrt(beta) is
    at most half its output step), and only its integer form runs in the C library. LogHypot, ln(alpha sqrt(a^2 + b^2) + beta)
    (alpha > 0), likewise: a magnitude, Affines and a Log (rnnedge.quant.graph.fuse_log_magnitudes);
    alpha and beta are LogHypot's alone."""

    kind: str
    const: np.ndarray | None = None
    const_left: bool = False
    alpha: float = 1.0
    beta: float = 0.0


@dataclass
class Concat:
    """y = the inputs (2 to 4) joined along `axis` (of the per-step shape)."""

    axis: int


@dataclass
class Transpose:
    """y.shape[i] = x.shape[perm[i]] (per-step axes)."""

    perm: tuple[int, ...]


@dataclass
class Copy:
    """The same elements in the same order under another shape (Reshape, Flatten, Squeeze,
    Unsqueeze, Identity)."""


@dataclass
class Gather:
    """Embedding: y[i, :] = table[ids[i], :] for integer ids (an s32 input). table [V, E]."""

    table: np.ndarray


@dataclass
class Reduce:
    """y = kind over the per-step axes `axes` of x; y's shape keeps them as 1 or drops them."""

    kind: str
    axes: tuple[int, ...]


@dataclass
class QBinary:
    """Binary in integers (docs/graph.md section 3). ADD / SUB / MIN / MAX: each side times its
    multiplier (ma, mb) with one shift; MUL / DIV: one multiplier ma (mb = 0); LOGHYPOT: the
    squares' ma, mb, then the Log's multiplier m1 with `shift`, the offset e and k0."""

    kind: str
    ma: int
    mb: int
    shift: int
    in_scales: tuple[float, float]
    out_scale: float
    const: np.ndarray | None = None  # int16, at in_scales[1] (in_scales[0] if const_left)
    const_left: bool = False
    m1: int = 0  # LOGHYPOT only (q slots 3; 4 and 5: e >> 31, e & (2^31 - 1); 6)
    e: int = 0
    k0: int = 0


@dataclass
class QConcat:
    """Concat in integers: input k requantized by mults[k] (a scalar Mult) to the output scale."""

    axis: int
    mults: list[Mult]
    out_scale: float


@dataclass
class QReduce:
    """Reduce in integers: SUM / MEAN accumulate in int64 and requantize by `mult` (1/n folded in
    for MEAN); MAX / MIN pick, then requantize."""

    kind: str
    axes: tuple[int, ...]
    mult: Mult
    in_scale: float
    out_scale: float


@dataclass
class QGather:
    """Embedding in integers: the table int16 [V, E] at out_scale."""

    table: np.ndarray
    out_scale: float


@dataclass
class Conv:
    """CONV / CONV_T (docs/graph.md section 6). x [C_in] or [C_in, W] per step -> y [C_out] or
    [C_out, W_out]. `weight` [C_out, C_in / groups, kt, kw] (float32; for `transpose` the ONNX
    ConvTranspose weight [C_in, C_out / groups, 1, kw]), `bias` [C_out] or None.

    Over time (kt > 1) the conv is causal: y[t] = b + sum_j W[:, :, j] x[t - (kt - 1 - j) dt],
    keeping the last (kt - 1) dt input frames as node state (zeros at reset). Along W (a feature
    axis of the step): stride `sw`, pads `pad_w` (before, after), dilation `dw`; a transpose conv
    (ConvTranspose over W; kt = 1) adds `out_pad` after."""

    weight: np.ndarray
    bias: np.ndarray | None
    dt: int = 1
    groups: int = 1
    sw: int = 1
    pad_w: tuple[int, int] = (0, 0)
    dw: int = 1
    transpose: bool = False
    out_pad: int = 0

    @property
    def kt(self) -> int:
        return int(self.weight.shape[2])

    @property
    def kw(self) -> int:
        return int(self.weight.shape[3])

    @property
    def cache_frames(self) -> int:
        """Input frames kept across steps: (kt - 1) * dt."""
        return (self.kt - 1) * self.dt

    @property
    def c_out(self) -> int:
        return int(self.weight.shape[1] * self.groups if self.transpose else self.weight.shape[0])

    def w_out(self, w_in: int) -> int:
        """The output's size along W for an input of w_in."""
        span = (self.kw - 1) * self.dw + 1
        if self.transpose:
            return (w_in - 1) * self.sw + span - self.pad_w[0] - self.pad_w[1] + self.out_pad
        return (w_in + self.pad_w[0] + self.pad_w[1] - span) // self.sw + 1


@dataclass
class QConv:
    """Conv in integers, with QDense's rules (docs/graph.md section 6, docs/quantization.md):
    W int8 / int16 in the float conv's layout, one scale per output channel; y[c] =
    sat16(rq32(acc[c], mult[c]) + bias[c]) with acc the int64 sum of W x over the taps."""

    conv: Conv  # the float conv (its geometry; dt, groups, sw, pad_w, dw, transpose, out_pad)
    W: np.ndarray  # int8 / int16, conv.weight's shape
    bias: np.ndarray | None  # int32 [C_out], in output units
    mult: Mult  # m [C_out]
    wfmt: str
    in_scale: float
    out_scale: float
    acc_bound: int  # max over output channels of sum |W[c]| * 32768 (the taps feeding it)


GraphOp = Union[Binary, Concat, Transpose, Copy, Gather, Reduce, Conv]
QGraphOp = Union[QBinary, QConcat, QReduce, QGather, QConv]
NodeOp = Union[FloatLayer, IntLayer, GraphOp, QGraphOp]


@dataclass
class Value:
    """One per-timestep tensor. kind: temp (arena), input, output, state (docs/graph.md)."""

    name: str
    shape: tuple[int, ...]
    dtype: str = "f32"
    kind: str = "temp"
    scale: float = 0.0  # s16 values: the real value of one unit
    last: bool = False  # one row per batch (after TakeLast; a recurrent node's final state)
    init: np.ndarray | None = None  # state: initial value [features] (None: zeros)
    update: int | None = None  # state: the value copied into it after every step
    offset: int = 0  # temp: arena bytes per row (plan_arena); state: bytes per batch row
    # steps this value lags the input (docs/graph.md section 6): row t of a stream holds ONNX's
    # step t - delay; the steps before are skipped (zeros)
    delay: int = 0

    @property
    def features(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    @property
    def row_bytes(self) -> int:
        return self.features * DTYPE_BYTES[self.dtype]


@dataclass
class Node:
    """One op: reads `inputs`, writes `outputs` (indices into Graph.values; None = absent)."""

    op: Any  # NodeOp
    inputs: list[int | None]
    outputs: list[int | None]
    name: str = ""  # the ONNX node it came from, for messages


@dataclass
class Graph:
    """A converted model: values, nodes in run order, and what the blob's metadata records."""

    values: list[Value]
    nodes: list[Node]
    input: int
    output: int
    input_spec: TensorSpec
    output_spec: TensorSpec
    name: str = "model"
    producer: str = ""
    quant: str = "f32"
    state: list[StateSpec] = field(default_factory=list)  # graph state inputs absorbed by nodes
    # the ONNX layout of each STATE value's graph input, by value name: axes letters B (the batch
    # axis, if the input has one) and F (per-step axes, in the value's shape order)
    value_specs: dict[str, TensorSpec] = field(default_factory=dict)
    folded: list[str] = field(default_factory=list)
    source: "Graph | None" = None  # an integer graph: the float graph it was made from
    report: list[LayerReport] = field(default_factory=list)
    accuracy: dict[str, float] = field(default_factory=dict)
    calibrated: bool = False

    # -- what the runtime and the writer ask ------------------------------------------------------
    @property
    def in_features(self) -> int:
        return self.values[self.input].features

    @property
    def out_features(self) -> int:
        return self.values[self.output].features

    @property
    def in_scale(self) -> float:
        return self.values[self.input].scale

    @property
    def out_scale(self) -> float:
        return self.values[self.output].scale

    @property
    def streamable(self) -> bool:
        return all(n.op.streamable for n in self.nodes if isinstance(n.op, RecurrentShape))

    @property
    def latency(self) -> int:
        """latency_steps: the output's delay (steps a stream's output lags ONNX's)."""
        return self.values[self.output].delay

    @property
    def many_to_one(self) -> bool:
        return self.values[self.output].last

    @property
    def explicit_state(self) -> bool:
        """A step function: some state value is updated by the graph after every step."""
        return any(v.kind == "state" and v.update is not None for v in self.values)

    @property
    def state_values(self) -> list[int]:
        return [i for i, v in enumerate(self.values) if v.kind == "state"]

    def producers(self) -> dict[int, int]:
        """value index -> index of the node that writes it."""
        out: dict[int, int] = {}
        for i, n in enumerate(self.nodes):
            for v in n.outputs:
                if v is not None:
                    out[v] = i
        return out

    def readers(self) -> dict[int, set[int]]:
        """value index -> indices of the nodes that read it (values nobody reads: absent)."""
        out: dict[int, set[int]] = {}
        for i, n in enumerate(self.nodes):
            for v in n.inputs:
                if v is not None:
                    out.setdefault(v, set()).add(i)
        return out


def from_network(net: Network | QNetwork) -> Graph:
    """A straight pipeline as a graph: node i reads the value node i-1 wrote."""
    src = net.source if isinstance(net, QNetwork) else net
    integer = isinstance(net, QNetwork)
    dt = "s16" if integer else "f32"
    values = [Value(src.input.name, (net.in_features,), dt, "input",
                    scale=net.in_scale if integer else 0.0)]
    nodes: list[Node] = []
    last = False
    for i, layer in enumerate(net.layers):
        is_out = i == len(net.layers) - 1
        last = last or type(layer).__name__ in ("TakeLast", "QTakeLast")
        scale = float(getattr(layer, "out_scale", 0.0)) if integer else 0.0
        values.append(Value(src.output.name if is_out else f"l{i}", (layer.out_features,), dt,
                            "output" if is_out else "temp", scale=scale, last=last))
        nodes.append(Node(layer, [len(values) - 2], [len(values) - 1], name=f"layer {i}"))
    g = Graph(values, nodes, 0, len(values) - 1, src.input, src.output, name=src.name,
              producer=src.producer, quant=net.quant if integer else src.quant,
              state=list(src.state), folded=list(src.folded))
    for spec in src.state:  # a pipeline's state input is [rows, B, H] (PyTorch h0 / c0)
        rows = sum(src.layers[t.layer].num_directions for t in src.state if t.name == spec.name)
        hidden = src.layers[spec.layer].hidden
        g.value_specs[spec.name] = TensorSpec(spec.name, "FBF", [rows, None, hidden])
    if isinstance(net, QNetwork):
        g.source = from_network(src)
        g.report, g.accuracy, g.calibrated = net.report, net.accuracy, net.calibrated
    plan_arena(g)
    return g


def lifetimes(g: Graph) -> dict[int, tuple[int, int]]:
    """temp value -> (index of the node that writes it, index of the last node that reads it)."""
    born: dict[int, int] = {}
    dies: dict[int, int] = {}
    for i, n in enumerate(g.nodes):
        for v in n.outputs:
            if v is not None:
                born[v] = i
        for v in n.inputs:
            if v is not None:
                dies[v] = i
    # a state's update is read after the last node
    for v in g.values:
        if v.kind == "state" and v.update is not None:
            dies[v.update] = len(g.nodes)
    return {
        v: (born[v], max(dies.get(v, born[v]), born[v]))
        for v in born
        if g.values[v].kind == "temp"
    }


def _round(n: int) -> int:
    return (n + ROW_ALIGN - 1) // ROW_ALIGN * ROW_ALIGN


def plan_arena(g: Graph) -> int:
    """Give every temp value an arena offset (bytes per row): greedy first fit in order of birth,
    largest first among values born together; values whose lifetimes overlap never share bytes.
    State values get their offsets in the state buffer (bytes per batch row, in value order).
    Returns the arena's bytes per row (blob header.arena_row)."""
    life = lifetimes(g)
    placed: list[tuple[int, int, int, int]] = []  # (start, end, born, dies)
    top = 0
    for v in sorted(life, key=lambda v: (life[v][0], -g.values[v].row_bytes, v)):
        b, d = life[v]
        size = _round(g.values[v].row_bytes)
        busy = sorted((s, e) for s, e, pb, pd in placed if not (pd < b or d < pb))
        off = 0
        for s, e in busy:
            if off + size <= s:
                break
            off = max(off, e)
        g.values[v].offset = off
        placed.append((off, off + size, b, d))
        top = max(top, off + size)
    soff = 0
    for i in g.state_values:
        g.values[i].offset = soff
        soff += _round(g.values[i].row_bytes)
    return top


def arena_row(g: Graph) -> int:
    """The arena's bytes per row of a planned graph."""
    return max(
        (g.values[v].offset + _round(g.values[v].row_bytes) for v in lifetimes(g)), default=0
    )


def check_graph(g: Graph) -> None:
    """Raise ConvertError if the graph breaks a rule of docs/graph.md sections 1-2 that the
    converter must keep (the C loader checks them all again)."""
    kinds = [v.kind for v in g.values]
    if kinds.count("input") != 1 or kinds.count("output") != 1:
        raise ConvertError(
            f"a graph has one input and one output value; this one has {kinds.count('input')} "
            f"and {kinds.count('output')}"
        )
    for i, v in enumerate(g.values):
        if not 1 <= len(v.shape) <= MAX_DIMS or any(d < 1 for d in v.shape):
            raise ConvertError(f"value {i} ({v.name!r}): shape {list(v.shape)} is not 1 to "
                               f"{MAX_DIMS} sizes >= 1")
        if v.features > MAX_FEATURES:
            raise ConvertError(f"value {i} ({v.name!r}): {v.features} features per step; at "
                               f"most {MAX_FEATURES}")
    written: set[int] = set()
    for i, n in enumerate(g.nodes):
        for v in n.inputs:
            if v is None:
                continue
            if g.values[v].kind not in ("input", "state") and v not in written:
                raise ConvertError(f"node {i} ({n.name}): reads value {v} "
                                   f"({g.values[v].name!r}) before any node writes it")
        for v in n.outputs:
            if v is None:
                continue
            if v in written or g.values[v].kind in ("input", "state"):
                raise ConvertError(f"node {i} ({n.name}): value {v} ({g.values[v].name!r}) is "
                                   "written twice or is an input or a state")
            written.add(v)
    for i, n in enumerate(g.nodes):  # delays (docs/graph.md section 6)
        delays = {g.values[v].delay for v in n.inputs if v is not None and g.values[v].kind != "state"}
        if len(delays) > 1:
            raise ConvertError(f"node {i} ({n.name}): its inputs lag the input by different "
                               f"numbers of steps ({sorted(delays)})")
        d = max(delays, default=0)
        conv = n.op.conv if isinstance(n.op, QConv) else n.op if isinstance(n.op, Conv) else None
        top = d + (conv.cache_frames if conv is not None else 0)
        for v in n.outputs:
            if v is not None and not d <= g.values[v].delay <= top:
                raise ConvertError(
                    f"node {i} ({n.name}): value {v} ({g.values[v].name!r}) has delay "
                    f"{g.values[v].delay}, but the node reads values of delay {d}"
                    + (f": a conv's output lags its input by 0 to {top - d} steps"
                       if conv is not None else ": a node's outputs lag as its inputs do"))
    for i, v in enumerate(g.values):
        if v.kind in ("temp", "output") and i not in written:
            raise ConvertError(f"value {i} ({v.name!r}) is never written")
        if v.kind == "state" and v.update is not None:
            u = g.values[v.update]
            if u.kind not in ("temp", "output") or u.features != v.features or u.dtype != v.dtype:
                raise ConvertError(f"state {v.name!r}: its update {u.name!r} must be a computed "
                                   f"value of the same size ({v.features}) and type")


__all__ = [
    "Binary", "Concat", "Conv", "QConv", "QBinary", "QConcat", "QGather", "QReduce", "QGraphOp", "Copy", "Gather", "Graph", "GraphOp", "Node", "NodeOp", "Reduce",
    "Transpose", "Value", "arena_row", "check_graph", "from_network", "lifetimes", "plan_arena",
    "Activation", "Dense", "LayerNorm", "Recurrent", "Slice", "TakeLast",
]  # fmt: skip
