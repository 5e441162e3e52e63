"""ONNX graph -> rnnedge.ir.graph.Graph (docs/graph.md): the data path walked as a DAG.

Every ONNX tensor computed from the signal input (or from a state input) is a `Flow`: a graph
value plus the role of each of its ONNX axes: "T" time, "B" batch, or "F" a per-step (feature)
axis. A value's per-step shape is its F axes in order; the rows (time and batch) are implicit, so
moving T or B costs nothing and an op that mixes them with features is refused by name.
Constants and shape chains fold as in the pipeline converter (fold.py).

Step functions (docs/graph.md section 1): graph inputs other than the signal are either fixed
(`fixed=`), or state inputs paired with a graph output (explicit `state=`, then name patterns,
then the one output of the same shape). A state input becomes a STATE value whose `update` is its
paired output; recurrent ops read it as h_init / c_init. The one input left is the signal. A
state Concat-ed before the steps along time whose next value is the Slice of its last frames is
a causal conv's frame cache instead (`CacheSlice`, conv.py): no STATE value is left for it.
Graph outputs other than the first non-state output are not computed (a note says so).
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field, replace
from types import SimpleNamespace
from typing import Callable, Mapping

import numpy as np
import onnx

from ..errors import ConvertError, InputError, RnnedgeError, UnsupportedOpError
from ..ir.graph import Binary, Concat, Copy, Gather, Graph, Node as GNode, Reduce, Transpose, Value
from ..ir.graph import check_graph, plan_arena
from ..ir.layers import Act, Activation, Dense, LayerNorm, Recurrent, Slice, StateSpec, TakeLast, TensorSpec
from . import heads, recurrent, tf2onnx_loop
from .fixed import FixedValue, fix_inputs
from .inputs import set_input_axes
from .fold import (fold_constant, fold_symbolic, onnx_range, reshape_target, shape_value, slice_args,
                   squeeze_shape, unsqueeze_shape)
from .graph import (_check_arity, _check_static_sizes, _dims, _fix_hint, _initializer_array,
                    _node_text, _op_name, _role_hint, _topological, _needed, HOW_TO_EXPORT, UNROLLED_OPS,
                    LayoutMismatch)
from .load import load_model, producer_text
from .node import Node, floats_of, ints_arg, ints_of
from .values import Const, Data, Dim, Filled, Sym, SymInts, describe, dim_prod, shape_str

ROLES = ("T", "B", "F")
UNARY_ACTS = ("Sqrt", "Reciprocal", "Exp", "Log", "Abs", "Neg", "Erf")
BINARY_OPS = ("Add", "Sub", "Mul", "Div", "Min", "Max", "Pow")
MAX_STEP_AXES = 4  # a value's per-step shape has 1 to 4 axes (docs/graph.md section 1)
REDUCE_OPS = {"ReduceMean": "Mean", "ReduceSum": "Sum", "ReduceMax": "Max", "ReduceMin": "Min"}


@dataclass(frozen=True)
class Flow:
    """A tensor on the data path: graph value `value`, ONNX shape `shape`, a role per axis."""

    value: int
    roles: tuple[str, ...]
    shape: tuple[Dim, ...]
    reversed: bool = False  # the rows hold the steps in reverse time order (ReverseSequence)
    tpad: tuple[int, int] = (0, 0)  # zero frames a Pad put before / after the time axis (conv.py)
    tail: int = 0  # ONNX frames past the input's end (a padded Conv over time, before its chomp)
    wpad: tuple[int, int] = (0, 0)  # zeros a Pad put around the feature axis its only reader, a Conv, pads
    cache: tuple[int, int] | None = None  # (state value, frames): a cache Concat(state, x) over time (conv.py)

    @property
    def step_shape(self) -> tuple[int, ...]:
        dims = tuple(int(d) for d, r in zip(self.shape, self.roles) if r == "F")  # type: ignore[arg-type]
        return dims or (1,)

    @property
    def f_axes(self) -> list[int]:
        return [i for i, r in enumerate(self.roles) if r == "F"]

    def layout(self) -> str:
        return ",".join(f"{r}{'' if r != 'F' else d}" for r, d in zip(self.roles, self.shape))


# ops that may read a Flow with pending time padding (tpad), extra trailing frames (tail) or a
# state's frames before it (cache)
# Unsqueeze, Transpose: a Pad's frames only (tf2onnx's causal Conv1D: Pad, Unsqueeze, under Keras 2
# a Transpose to NCHW, then the Conv)
TIME_PAD_OPS = ("Conv", "Slice", "Identity", "Dropout", "Unsqueeze", "Transpose")


def pending(x: Flow) -> bool:
    """A data tensor whose time axis carries a Pad not yet absorbed, ONNX frames not yet dropped,
    or a cache state's frames before it (only a Conv, or a Slice over time, may read it; conv.py)."""
    return bool(x.tpad != (0, 0) or x.tail or x.cache is not None)


@dataclass(frozen=True)
class CacheSlice:
    """The last `frames` frames of a cache Concat(state, x) over time (a Slice [-frames:]): the
    next value of STATE value `state`, which the Conv over time that reads the Concat keeps as
    its frame cache (docs/graph.md section 6, "cache Concat")."""

    state: int
    frames: int


def _type_name(code: int) -> str:
    """An ONNX element type's name, or its code when it is none."""
    try:
        return str(onnx.TensorProto.DataType.Name(code))
    except ValueError:
        return f"code {code} (not an ONNX type)"


def _same(a: tuple[int, ...], b: tuple[int, ...]) -> bool:
    """Equal shapes but for leading 1s (numpy broadcasting aligns them right)."""
    n = max(len(a), len(b))
    return (1,) * (n - len(a)) + tuple(a) == (1,) * (n - len(b)) + tuple(b)


def _features(shape: tuple[int, ...]) -> int:
    return int(np.prod(shape, dtype=np.int64))


# -- pairing state inputs with outputs ---------------------------------------------------------

_IN_SUFFIX = ("_in", "in", "0", "_0", "_prev", "_old", "")
_OUT_SUFFIX = ("_out", "out", "n", "_n", "N", "_N", "_next", "_new", "1", "_1")


def name_pair(inp: str, out: str) -> bool:
    """Whether a graph output's name says it is the next value of the input (h/hn, h0/hn,
    c0/cn, state/stateN, state/next_state, state_in/state_out, cache_0/next_cache_0,
    input_3/output_3, in_cache0/out_cache0, x/x_out ...)."""
    if inp == out:
        return False
    for a, b in (("in_", "out_"), ("input_", "output_")):  # FunASR's in_cache0 / out_cache0
        if inp.startswith(a) and len(inp) > len(a) and out == b + inp[len(a):]:
            return True
    for prefix in ("next_", "new_", "next", "out_", "updated_"):
        if out == prefix + inp:
            return True
    for si in _IN_SUFFIX:
        if si and not inp.endswith(si):
            continue
        base = inp[: len(inp) - len(si)] if si else inp
        if not base:
            continue
        for so in _OUT_SUFFIX:
            if out == base + so:
                return True
    m_in = re.fullmatch(r"(.*?)(in|input|inp)([_.:]?\d*)", inp, re.IGNORECASE)
    if m_in:
        for word in ("out", "output", "outp"):
            if out.lower() == (m_in.group(1) + word + m_in.group(3)).lower():
                return True
    return False


def _shape_key(info: onnx.ValueInfoProto) -> tuple | None:
    t = info.type.tensor_type
    if not info.type.HasField("tensor_type") or not t.HasField("shape"):
        return None
    return tuple(d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in t.shape.dim)


def _shapes_differ(a: onnx.ValueInfoProto, b: onnx.ValueInfoProto) -> bool:
    """Whether two declared shapes provably differ: another rank, or two static sizes that differ
    (Silero's signal input [1, 576] is no state of its output [1, 1], whatever the names say)."""
    ka, kb = _shape_key(a), _shape_key(b)
    if ka is None or kb is None:
        return False
    return len(ka) != len(kb) or any(isinstance(x, int) and isinstance(y, int) and x and y and x != y
                                     for x, y in zip(ka, kb))


@dataclass
class Pairing:
    signal: onnx.ValueInfoProto
    pairs: list[tuple[onnx.ValueInfoProto, str, str]]  # (input, output name, how)
    output: str  # the signal output


def pair_states(graph: onnx.GraphProto, label: str, state: Mapping[str, str] | None) -> Pairing:
    initializers = {t.name for t in graph.initializer}
    used = {n for node in graph.node for n in node.input} | {o.name for o in graph.output}
    inputs = [i for i in graph.input if i.name not in initializers and i.name in used]
    in_names = {i.name: i for i in inputs}
    outputs = [o.name for o in graph.output]
    if not outputs:
        raise ConvertError(f"{label}: the graph has no output")
    pairs: list[tuple[onnx.ValueInfoProto, str, str]] = []
    taken_out: set[str] = set()
    for i_name, o_name in (state or {}).items():
        if i_name not in in_names:
            raise InputError(f"{label}: state {i_name}={o_name}: {i_name!r} is not an input of the graph "
                             f"(its inputs: {', '.join(repr(n) for n in in_names) or 'none'})")
        if o_name not in outputs:
            raise InputError(f"{label}: state {i_name}={o_name}: {o_name!r} is not an output of the graph "
                             f"(its outputs: {', '.join(repr(n) for n in outputs)})")
        if o_name in taken_out:
            raise InputError(f"{label}: state output {o_name!r} is paired with two inputs")
        pairs.append((in_names[i_name], o_name, "given"))
        taken_out.add(o_name)
    rest = [i for i in inputs if i.name not in (state or {})]
    # by name
    by_name: list[tuple[onnx.ValueInfoProto, str]] = []
    infos = {o.name: o for o in graph.output}
    for i in rest:
        cands = [o for o in outputs if o not in taken_out and name_pair(i.name, o)
                 and not _shapes_differ(i, infos[o])]
        if len(cands) > 1:
            raise ConvertError(
                f"{label}: state input {i.name!r} could pair with several outputs "
                f"({', '.join(repr(c) for c in cands)}); say which with --state {i.name}=OUTPUT "
                f"(Python: state={{{i.name!r}: OUTPUT}})"
            )
        if cands:
            by_name.append((i, cands[0]))
    for o in {c for _, c in by_name}:
        who = [i.name for i, c in by_name if c == o]
        if len(who) > 1:
            raise ConvertError(
                f"{label}: output {o!r} could be the next value of several inputs "
                f"({', '.join(repr(w) for w in who)}); say which with --state INPUT={o}"
            )
    if by_name and all(o in taken_out or o in {c for _, c in by_name} for o in outputs):
        by_name = []  # a name pattern that leaves no output for the model (input -> output) is no pair
    for i, o in by_name:
        pairs.append((i, o, "by name"))
        taken_out.add(o)
    paired = {p[0].name for p in pairs}
    left = [i for i in inputs if i.name not in paired]
    signal_out = next((o for o in outputs if o not in taken_out), None)
    if signal_out is None:
        raise ConvertError(f"{label}: every graph output is paired with a state input; none is left "
                           "for the model's output")
    # by shape: an input whose shape only one unpaired output (not the signal output) has
    if len(left) > 1:
        free = [o for o in outputs if o not in taken_out and o != signal_out]
        matches = {i.name: [o for o in free if _shape_key(i) is not None and _shape_key(i) == _shape_key(infos[o])]
                   for i in left}
        for i in left:
            m = matches[i.name]
            if len(m) == 1 and sum(1 for j in left if m[0] in matches[j.name]) == 1:
                pairs.append((i, m[0], "by shape"))
                taken_out.add(m[0])
        paired = {p[0].name for p in pairs}
        left = [i for i in inputs if i.name not in paired]
    if not left:
        raise ConvertError(f"{label}: the graph has no data input left once the state inputs "
                           f"({', '.join(repr(p[0].name) for p in pairs)}) are paired")
    if len(left) > 1:
        raise ConvertError(
            f"{label}: the graph has {len(left)} inputs that are neither fixed nor paired with an "
            f"output as state ({', '.join(repr(i.name) for i in left)}); rnnedge takes one signal "
            "input: fix side inputs with --fix NAME=VALUE, pair state inputs with --state "
            "INPUT=OUTPUT (Python: fixed={...}, state={...})" + _fix_hint(left)
        )
    return Pairing(left[0], pairs, signal_out)


# -- the walk ----------------------------------------------------------------------------------


@dataclass
class DagWalk:
    loaded: object  # Loaded
    pairing: Pairing
    axes: str  # roles of the signal input's axes
    values: list[Value] = field(default_factory=list)
    nodes: list[GNode] = field(default_factory=list)
    env: dict[str, object] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    folded: list[str] = field(default_factory=list)
    node: Node | None = None
    progress: int = -1
    atom_size: dict[str, Dim] = field(default_factory=dict)  # the run-time lengths T and B
    value_specs: dict[str, TensorSpec] = field(default_factory=dict)  # state inputs' layouts
    cache_convs: dict[int, GNode] = field(default_factory=dict)  # state value -> the Conv keeping it (conv.py)
    # value -> (steps, Conv node name): its last `steps` rows are past ONNX's end, after a "valid"
    # Conv over time computed as one looking ahead (conv.py); what needs that end is refused
    short: dict[int, tuple[int, str]] = field(default_factory=dict)
    copies: dict[tuple[int, tuple[int, ...]], int] = field(default_factory=dict)  # (value, shape) -> its COPY

    @property
    def graph(self) -> onnx.GraphProto:
        return self.loaded.model.graph  # type: ignore[attr-defined]

    @property
    def label(self) -> str:
        return self.loaded.label  # type: ignore[attr-defined]

    @property
    def stepwise(self) -> bool:
        return bool(self.pairing.pairs)

    @property
    def has_time(self) -> bool:
        return "T" in self.axes

    # the OpContext the pipeline converter's helpers ask for
    has_recurrent_op = True

    def note(self, node: Node, text: str) -> None:
        self.notes.append(f"{node.op} {node.name}: {text}")

    def unproven(self, text: str) -> None:
        self.notes.append(f"unproven: {text}")

    def bind_state(self, rec: Recurrent, kind: str, value: object) -> None:  # pragma: no cover
        raise ConvertError("internal: a state binding in the graph converter")

    def layout_mismatch(self, text: str) -> ConvertError:
        return LayoutMismatch(text)

    # -- values and nodes
    def new_value(self, name: str, shape: tuple[int, ...], last: bool = False, dtype: str = "f32",
                  kind: str = "temp") -> int:
        self.values.append(Value(name, tuple(int(d) for d in shape), dtype, kind, last=last))
        return len(self.values) - 1

    def add(self, op: object, ins: list[int | None], shapes: list[tuple[int, ...] | None], name: str,
            last: bool | None = None) -> list[int | None]:
        if last is None:
            last = any(v is not None and self.values[v].last for v in ins)
        delays = {self.values[v].delay for v in ins if v is not None and self.values[v].kind != "state"}
        if len(delays) > 1:
            raise UnsupportedOpError(
                f"its inputs lag the signal by different numbers of steps ({sorted(delays)}: after a "
                "Conv over time that looks ahead on one path only); rnnedge cannot align them"
            )
        short = max((self.short[v] for v in ins if v in self.short), default=None)
        if short is not None:
            self.check_end(op, short)
        outs: list[int | None] = []
        for k, s in enumerate(shapes):
            outs.append(None if s is None else self.new_value(f"{name}:{k}" if k else name, s, last))
            if outs[-1] is not None:
                self.values[outs[-1]].delay = max(delays, default=0)  # type: ignore[index]
                if short is not None:
                    self.short[outs[-1]] = short  # type: ignore[index]
        self.nodes.append(GNode(op, list(ins), outs, name=self.node.name if self.node else name))
        return outs

    def check_end(self, op: object, short: tuple[int, str], needs: str | None = None) -> None:
        """An op after a "valid" Conv over time (rows past ONNX's end, `short`): refused when it
        needs the shortened sequence's end (its last step, the steps backwards, `needs`)."""
        needs = needs or ("its last step" if isinstance(op, TakeLast) else
                          "the sequence backwards" if isinstance(op, Recurrent) and op.direction != "forward"
                          else None)
        if needs is not None:
            raise UnsupportedOpError(
                f"it needs {needs}, of a sequence that the 'valid' Conv over time {short[1]!r} shortened by "
                f"{short[0]} steps: rnnedge computes that conv as one looking {short[0]} steps ahead (its "
                f"last {short[0]} rows the conv over zeros past the input's end, which ONNX does not have), "
                "so only ops that read the steps in order (recurrent layers forward, step-wise ops, causal "
                "convs) may follow it"
            )

    def shaped(self, f: Flow, shape: tuple[int, ...] | None = None) -> int:
        """f's value with the declared shape `shape` (default f's per-step shape): a COPY when the
        value was declared with another shape."""
        want = f.step_shape if shape is None else shape
        v = self.values[f.value]
        if v.shape == want:
            return f.value
        if _features(want) != v.features:  # pragma: no cover - guarded by the callers
            raise ConvertError(f"internal: reshaping {list(v.shape)} to {list(want)}")
        key = (f.value, tuple(want))  # one COPY per value and shape, however many read it so
        if key not in self.copies:
            self.copies[key] = self.add(Copy(), [f.value], [want], f"{v.name}/copy")[0]  # type: ignore[assignment]
        return self.copies[key]

    def loose(self, f: Flow, shape: tuple[int, ...]) -> int:
        """f's value for an elementwise op that broadcasts it to `shape` (aligned right): as it is
        when its declared shape differs from `shape` only by leading 1s, else shaped."""
        return f.value if _same(self.values[f.value].shape, shape) else self.shaped(f, shape)

    def last_axis(self, f: Flow, what: str) -> int:
        """A value for an op over the last axis (Dense, activations, norms)."""
        if not f.roles or f.roles[-1] != "F":
            raise UnsupportedOpError(f"{what} acts on the last axis of [{f.layout()}], which is not a feature axis")
        v = self.values[f.value]
        return f.value if v.shape[-1] == f.step_shape[-1] else self.shaped(f)

    # -- the walk
    def run(self) -> Graph:
        for init in self.graph.initializer:
            self.env[init.name] = Const(_initializer_array(init, self.label))
        sig = self.pairing.signal
        self.env[sig.name] = self._input_flow(sig)
        state_vals: list[tuple[int, str]] = []
        for info, out, how in self.pairing.pairs:
            f = self._state_flow(info)
            self.env[info.name] = f
            state_vals.append((f.value, out))
            self.notes.append(f"state: input {info.name!r} <- output {out!r} ({how}; per-step shape "
                              f"{list(f.step_shape)})")
        nodes = _topological(self.graph)
        wanted = [self.pairing.output] + [o for _, o in state_vals]
        needed = _needed(nodes, wanted)
        for i, proto in enumerate(nodes):
            if i in needed:
                self._eval(Node(proto, i, self.loaded.opset), len(nodes))  # type: ignore[attr-defined]
        for o in self.graph.output:
            if o.name not in wanted:
                self.notes.append(f"output {o.name!r}: not computed (rnnedge returns one output, "
                                  f"{self.pairing.output!r}, and the state outputs)")
        out = self.env.get(self.pairing.output)
        if not isinstance(out, Flow):
            raise ConvertError(
                f"{self.label}: the output {self.pairing.output!r} is a {_describe(out)}, not computed "
                f"from the data input {sig.name!r}"
            )
        if pending(out):
            raise UnsupportedOpError(
                f"{self.label}: the output {self.pairing.output!r} [{out.layout()}] still has "
                f"{_pending_text(self, out)}: rnnedge streams outputs with the input's steps"
            )
        if out.reversed:
            raise UnsupportedOpError(
                f"{self.label}: the output {self.pairing.output!r} lists the steps in reverse time order "
                "(Keras go_backwards=True with return_sequences=True); rnnedge returns steps in "
                "input order: reverse the output in the model, or use return_sequences=False"
            )
        y = self.shaped(out)
        if self.values[y].kind != "temp":
            y = self.add(Copy(), [y], [self.values[y].shape], f"{self.pairing.output}/copy")[0]  # type: ignore[assignment]
        assert y is not None
        explicit = False
        for s, o in state_vals:
            f = self.env.get(o)
            if isinstance(f, CacheSlice):
                self._cache_state(s, o, f)
                continue
            explicit = True
            if not isinstance(f, Flow):
                raise ConvertError(f"{self.label}: state output {o!r} is a {_describe(f)}, not computed "
                                   "from the inputs")
            sv = self.values[s]
            if _features(f.step_shape) != sv.features:
                raise ConvertError(
                    f"{self.label}: state output {o!r} has {_features(f.step_shape)} values per "
                    f"step and batch item ([{f.layout()}]); its input {sv.name!r} has {sv.features}"
                )
            u = self.shaped(f, sv.shape)
            if self.values[u].kind != "temp" or u == y:
                u = self.add(Copy(), [u], [sv.shape], f"{o}/copy")[0]  # type: ignore[assignment]
            sv.update = u
            self.values[u].name = o
        self.values[y].kind = "output"
        self.values[y].name = self.pairing.output
        if self.values[y].last and explicit:
            self.values[y].last = False
        in_v = self.env[sig.name]
        assert isinstance(in_v, Flow)
        g = Graph(
            self.values, self.nodes, in_v.value, y,
            TensorSpec(sig.name, "".join(in_v.roles), [d if isinstance(d, int) else None for d in in_v.shape]),
            TensorSpec(self.pairing.output, "".join(out.roles),
                       [d if isinstance(d, int) else None for d in out.shape]),
            producer=producer_text(self.loaded.model, self.loaded.opset),  # type: ignore[attr-defined]
            folded=self.folded + self.notes,
            value_specs=self.value_specs,
        )
        _fold_bias(g)
        _prune(g)
        for note in _fuse_lstm_cells(g) + _absorb(g):
            self.notes.append(note)
            g.folded.append(note)
        try:
            check_graph(g)
        except ConvertError as e:
            raise ConvertError(f"{self.label}: {e}") from None
        plan_arena(g)
        return g

    def _cache_state(self, s: int, out: str, f: CacheSlice) -> None:
        """State `s` paired with output `out`, the last frames of a cache Concat: the Conv over
        time that read the Concat keeps them as its frame cache (zeros at reset, like the state
        fed from zeros), so the pair leaves the graph (Stream.state shows the conv's cache)."""
        sv = self.values[s]
        conv = self.cache_convs.get(f.state)
        if f.state != s:
            raise ConvertError(f"{self.label}: state output {out!r} is the last {f.frames} frames of the cache "
                               f"Concat of state {self.values[f.state].name!r}, not of its input {sv.name!r}")
        if conv is None:
            raise UnsupportedOpError(
                f"{self.label}: state output {out!r} is the last {f.frames} frames of a cache Concat of "
                f"{sv.name!r} that no Conv over time reads: rnnedge keeps such a cache as a causal conv's "
                "frames"
            )
        if any(s in n.inputs for n in self.nodes):
            raise UnsupportedOpError(f"{self.label}: state {sv.name!r} is a Conv's cache and is also read "
                                     "elsewhere; rnnedge keeps a cache only as the conv's own frames")
        sv.kind = "temp"
        self.value_specs.pop(sv.name, None)
        conv_name = self.values[conv.outputs[0]].name  # type: ignore[index]
        self.notes.append(f"state: input {sv.name!r} / output {out!r} is the last {f.frames} frames before "
                          f"the steps of Conv {conv.name!r}: the conv keeps them as its frame cache "
                          f"(Stream.state {conv_name + '.cache'!r})")

    def _input_flow(self, info: onnx.ValueInfoProto) -> Flow:
        dims = _dims(info)
        elem = info.type.tensor_type.elem_type
        ids = elem in (onnx.TensorProto.INT64, onnx.TensorProto.INT32)
        shape: list[Dim] = []
        for r, d in zip(self.axes, dims):
            if r in "TB":
                shape.append(d if isinstance(d, int) else Sym(1, (r,)))
            elif not isinstance(d, int):
                raise ConvertError(f"{self.label}: the feature axis of input {info.name!r} "
                                   f"({'x'.join(self.axes)}) has no fixed size in the graph")
            else:
                shape.append(d)
        f = Flow(0, tuple(self.axes), tuple(shape))
        self.atom_size = {r: d for r, d in zip(f.roles, f.shape) if r != "F"}
        self.atom_size.setdefault("B", Sym(1, ("B",)))
        v = self.new_value(info.name, f.step_shape, dtype="s32" if ids else "f32", kind="input")
        if not ids and elem not in (onnx.TensorProto.FLOAT, onnx.TensorProto.DOUBLE, onnx.TensorProto.FLOAT16, 0):
            raise ConvertError(f"{self.label}: input {info.name!r} has element type "
                               f"{_type_name(elem)}; rnnedge takes float signals or integer ids")
        return replace(f, value=v)

    def _state_flow(self, info: onnx.ValueInfoProto) -> Flow:
        dims = _dims(info)
        sig_dims = self.pairing.signal.type.tensor_type.shape.dim
        batch_name = next((d.dim_param for r, d in zip(self.axes, sig_dims) if r == "B" and d.dim_param), None)
        names = [d.dim_param if d.HasField("dim_param") else None for d in info.type.tensor_type.shape.dim]
        b_axis: int | None = None
        if batch_name is not None and batch_name in names:
            b_axis = names.index(batch_name)
        else:
            sym = [i for i, d in enumerate(dims) if not isinstance(d, int)]
            if len(sym) == 1:
                b_axis = sym[0]
            elif not sym and "B" in self.axes:
                b_axis = 1 if len(dims) == 3 else 0 if len(dims) == 2 else None
                if len(dims) > MAX_STEP_AXES:  # too many for a per-step shape: the batch of 1 in it (gtcrn's
                    # caches [2, 1, 16, 16, 33], [2, 3, 1, 1, 16]: the first axis of one after the leading one)
                    b_axis = next((i for i in range(1, len(dims)) if dims[i] == 1), None)
        roles = tuple("B" if i == b_axis else "F" for i in range(len(dims)))
        shape: list[Dim] = []
        for i, d in enumerate(dims):
            if roles[i] == "B":
                shape.append(Sym(1, ("B",)) if not isinstance(d, int) else d)
            elif not isinstance(d, int):
                raise ConvertError(
                    f"{self.label}: state input {info.name!r} has a run-time size on axis {i} "
                    f"({[str(x) for x in dims]}) besides the batch; its per-step size must be fixed"
                )
            else:
                shape.append(d)
        f = Flow(0, roles, tuple(shape))
        v = self.new_value(info.name, f.step_shape, kind="state")
        self.value_specs[info.name] = TensorSpec(info.name, "".join(roles),
                                                 [d if isinstance(d, int) else None for d in shape])
        return replace(f, value=v)

    def where(self, node: Node, total: int) -> str:
        return f"{self.label}: {_node_text(node, total)}"

    def _eval(self, node: Node, total: int) -> None:
        self.progress, self.node = node.index, node
        ins: list[object] = []
        for name in node.proto.input:
            if not name:
                ins.append(None)
            elif self.env.get(name) is None:
                raise ConvertError(f"{self.where(node, total)}: its input {name!r} is not available "
                                   "(a graph input neither the signal, fixed, nor a paired state)")
            else:
                ins.append(self.env[name])
        _check_arity(node, ins, self.where(node, total))  # type: ignore[arg-type]
        for k, v in enumerate(ins):
            if isinstance(v, CacheSlice):
                raise UnsupportedOpError(
                    f"{self.where(node, total)}: its input {node.proto.input[k]!r} is the last {v.frames} "
                    f"frames of a cache Concat of state {self.values[v.state].name!r}: only that state's "
                    "paired output may be it (a Conv over time keeps the frames)"
                )
        flows = [k for k, v in enumerate(ins) if isinstance(v, Flow)]
        try:
            if node.op in ("Shape", "Size"):
                if isinstance(ins[0], Flow):
                    outs = shape_value(node, ins[0].shape)
                else:
                    outs = fold_symbolic(node, ins)  # type: ignore[arg-type]
                self.folded.append(f"{node.op} {node.name}")
            elif node.op == "Loop" and any(isinstance(self.env.get(n), Flow)
                                           for n in tf2onnx_loop.captured(node.proto)):
                outs = op_loop(self, node, ins)
            elif flows:
                fn = OPS.get(node.op) if node.proto.domain in ("", "ai.onnx") else None
                busy = [k for k in flows if pending(ins[k])]  # type: ignore[arg-type]
                if busy and node.op not in TIME_PAD_OPS:
                    f = ins[busy[0]]
                    raise UnsupportedOpError(
                        f"{node.op} of a tensor with {_pending_text(self, f)}: only a Conv over time "  # type: ignore[arg-type]
                        "(or a Slice that drops the extra frames) may read it"
                    )
                if fn is None:
                    raise UnsupportedOpError(
                        f"unsupported op {_op_name(node.proto)!r} on the data path (input "
                        f"{', '.join(f'{k} {node.proto.input[k]!r}' for k in flows)} is data); "
                        f"rnnedge's graphs support: {', '.join(sorted(OPS))} (and fold any op on "
                        "constants and shapes)"
                    )
                outs = fn(self, node, ins)
            elif any(isinstance(v, (SymInts, Filled)) for v in ins):
                outs = fold_symbolic(node, ins)  # type: ignore[arg-type]
                self.folded.append(f"{node.op} {node.name}")
            else:
                outs = fold_constant(node, ins)  # type: ignore[arg-type]
                self.folded.append(f"{node.op} {node.name}")
        except LayoutMismatch as e:
            raise LayoutMismatch(f"{self.where(node, total)}: {e}") from None
        except UnsupportedOpError as e:
            raise UnsupportedOpError(f"{self.where(node, total)}: {e}") from None
        except RnnedgeError as e:
            raise ConvertError(f"{self.where(node, total)}: {e}") from None
        rev = {ins[k].reversed for k in flows}  # type: ignore[union-attr]
        if node.op not in RECURRENT and node.op != "ReverseSequence":
            if len(rev) > 1:
                raise UnsupportedOpError(f"{self.where(node, total)}: {node.op} of a time-reversed tensor "
                                         "(after a ReverseSequence) and one in time order")
            if True in rev:
                outs = [replace(o, reversed=not self.values[o.value].last) if isinstance(o, Flow) else o
                        for o in outs]
        for name, value in zip(node.outputs, outs):
            if name:
                self.env[name] = value


RECURRENT = ("LSTM", "GRU", "RNN")


def _pending_text(w: DagWalk, f: Flow) -> str:
    """What a pending Flow carries along time, for refusals."""
    if f.cache is not None:
        s, n = f.cache
        return (f"the {n} frames of state {w.values[s].name!r} before its steps (a cache Concat over "
                f"time; its Slice [-{n}:] is the next cache)")
    return f"time padding ({list(f.tpad)} frames from a Pad, {f.tail} past the end from a padded Conv)"


def _describe(v: object) -> str:
    if isinstance(v, Flow):
        return f"data tensor [{v.layout()}]"
    if isinstance(v, CacheSlice):
        return f"cache of {v.frames} frames"
    return describe(v)  # type: ignore[arg-type]


def _fold_bias(g: Graph) -> None:
    """DENSE then BINARY ADD / SUB of a constant over the last axis (MatMul + Add, as exporters
    write a Linear): the constant joins the Dense's bias, the Binary goes."""
    kept: list[GNode] = []
    producers = {v: n for n in g.nodes for v in n.outputs if v is not None}
    special = {g.output} | {v.update for v in g.values if v.update is not None}
    reads: dict[int, int] = {}
    for n in g.nodes:
        for v in n.inputs:
            if v is not None:
                reads[v] = reads.get(v, 0) + 1
    for n in g.nodes:
        op = n.op
        src = n.inputs[0]
        d = producers.get(src) if src is not None else None
        if (isinstance(op, Binary) and op.const is not None and not op.const_left and op.kind in ("Add", "Sub")
                and d is not None and isinstance(d.op, Dense) and reads.get(src, 0) == 1  # type: ignore[arg-type]
                and src not in special and n.outputs[0] is not None
                and g.values[n.outputs[0]].shape == g.values[src].shape):  # type: ignore[index]
            c = np.asarray(op.const, np.float32)
            nout = d.op.weight.shape[0]
            if all(s == 1 for s in c.shape[:-1]) and c.shape[-1] in (1, nout):
                c = np.broadcast_to(c.reshape(-1), (nout,)) * (1.0 if op.kind == "Add" else -1.0)
                bias = c if d.op.bias is None else np.asarray(d.op.bias, np.float32) + c
                d.op = Dense(d.op.weight, np.ascontiguousarray(bias, np.float32))
                d.outputs[0] = n.outputs[0]
                producers[n.outputs[0]] = d  # type: ignore[index]
                continue
        kept.append(n)
    g.nodes = kept


def _readers(g: Graph, v: int) -> list[tuple[GNode, int]]:
    return [(n, k) for n in g.nodes for k, i in enumerate(n.inputs) if i == v]


def _through_copies(g: Graph, v: int) -> list[tuple[GNode, int]]:
    """The readers of v, following COPY nodes (Squeeze/Unsqueeze/Reshape of the same rows)."""
    out = []
    for n, k in _readers(g, v):
        if isinstance(n.op, Copy) and n.outputs[0] is not None:
            out += _through_copies(g, n.outputs[0])
        else:
            out.append((n, k))
    return out


def _fuse_lstm_cells(g: Graph) -> list[str]:
    """An LSTM cell written out as ops on a state (Silero op18's and DTLN stage 2's, one step per
    call) becomes one LSTM node, whose h_init / c_init read what the cell read and whose Y_h /
    Y_c are the values the cell wrote (so `_absorb` can then give the node the state; Y is a new
    value, as an ONNX LSTM's). The pattern: gates = Dense(x) + Dense(h) (+ a constant), cut
    along their last axis into four equal parts (Slices, through Copies), three Sigmoids and one
    Tanh of them; c' = f c + i g (c: the Mul operand that is no activation), h' = o tanh(c'); h
    and c come from a STATE value through Copies and Slices, x does not. Which part is which gate
    follows from where it goes, not from its place (docs/converter.md, Ops). The integer LSTM
    keeps c in Q11.20 (int32, docs/quantization.md section 5) where the written-out cell held it
    as one int16 value. Returns a note per cell."""
    prod = {v: i for i, n in enumerate(g.nodes) for v in n.outputs if v is not None}

    def node(v: int | None) -> GNode | None:
        return None if v is None or v not in prod else g.nodes[prod[v]]

    def source(v: int | None) -> int | None:
        """v, or what the Copies that made it copied."""
        while v is not None and isinstance(getattr(node(v), "op", None), Copy):
            v = node(v).inputs[0]  # type: ignore[union-attr]
        return v

    def act(v: int | None, kind: str) -> int | None:
        """The input of the activation `kind` (default parameters) that wrote v (through Copies)."""
        n = node(source(v))
        if n is None or not (isinstance(n.op, Activation) and n.op.act == Act.make(kind)):
            return None
        return n.inputs[0]

    def from_state(v: int | None) -> bool:
        while v is not None and v in prod:
            n = g.nodes[prod[v]]
            if not isinstance(n.op, (Copy, Slice)):
                return False
            v = n.inputs[0]
        return v is not None and g.values[v].kind == "state"

    def mul(v: int | None) -> tuple[int, int] | None:
        n = node(source(v))
        if n is None or not (isinstance(n.op, Binary) and n.op.kind == "Mul" and n.op.const is None):
            return None
        a, b = n.inputs
        return (a, b) if a is not None and b is not None else None

    notes: list[str] = []
    fused: list[tuple[int, int, GNode]] = []  # (index of c' node, index of h' node, LSTM node)
    for kh, nh in enumerate(g.nodes):
        if not (isinstance(nh.op, Binary) and nh.op.kind == "Mul" and nh.op.const is None):
            continue
        a, b = nh.inputs
        # h' = o * tanh(c'), either way round
        for z_o_out, t_out in ((a, b), (b, a)):
            c_new = act(t_out, "Tanh")
            z_o = act(z_o_out, "Sigmoid")
            nc = node(c_new)
            if c_new is None or z_o is None or nc is None:
                continue
            if not (isinstance(nc.op, Binary) and nc.op.kind == "Add" and nc.op.const is None):
                continue
            terms = [mul(t) for t in nc.inputs]
            if any(t is None for t in terms):
                continue
            roles: dict[str, int] = {}  # gate -> its pre-activation; "c" -> the old cell
            for t in terms:
                assert t is not None
                g_in = [act(t[0], "Tanh"), act(t[1], "Tanh")]
                s_in = [act(t[0], "Sigmoid"), act(t[1], "Sigmoid")]
                for j in (0, 1):
                    if s_in[j] is not None and g_in[1 - j] is not None and "i" not in roles:
                        roles["i"], roles["g"] = s_in[j], g_in[1 - j]  # type: ignore[assignment]
                        break
                    if s_in[j] is not None and from_state(t[1 - j]) and "f" not in roles:
                        roles["f"], roles["c"] = s_in[j], t[1 - j]  # type: ignore[assignment]
                        break
            if sorted(roles) != ["c", "f", "g", "i"]:
                continue
            roles["o"] = z_o
            # the four pre-activations: Slices of one gates vector, one part each
            cut: dict[str, tuple[int, int]] = {}
            gates = set()
            for k in "iofg":
                ns = node(roles[k])
                if not (ns is not None and isinstance(ns.op, Slice) and ns.op.step == 1):
                    break
                full = source(ns.inputs[0])
                src_shape = g.values[ns.inputs[0]].shape  # type: ignore[index]
                if ns.op.axis % len(src_shape) != len(src_shape) - 1 or any(d != 1 for d in src_shape[:-1]):
                    break
                gates.add(full)
                cut[k] = (ns.op.start, ns.op.stop)
            if len(cut) != 4 or len(gates) != 1:
                continue
            (gv,) = gates
            H = cut["i"][1] - cut["i"][0]
            if sorted(cut.values()) != [(j * H, (j + 1) * H) for j in range(4)] or g.values[gv].features != 4 * H:
                continue
            # gates = Dense(x) + Dense(h) (+ constant)
            extra = np.zeros(4 * H, np.float32)
            na = node(gv)
            if na is not None and isinstance(na.op, Binary) and na.op.kind == "Add" and na.op.const is not None:
                c = np.asarray(na.op.const, np.float32)
                if c.size not in (1, 4 * H):
                    continue
                extra = np.broadcast_to(c.reshape(-1), (4 * H,)).astype(np.float32)
                na = node(source(na.inputs[0]))
            if not (na is not None and isinstance(na.op, Binary) and na.op.kind == "Add" and na.op.const is None):
                continue
            dens = [node(source(v)) for v in na.inputs]
            if any(d is None or not isinstance(d.op, Dense) for d in dens):
                continue
            on_h = [from_state(d.inputs[0]) for d in dens]  # type: ignore[union-attr]
            if sorted(on_h) != [False, True]:
                continue
            dx, dh = (dens[0], dens[1]) if on_h[1] else (dens[1], dens[0])
            assert dx is not None and dh is not None
            h_in, x_in, c_in = dh.inputs[0], dx.inputs[0], roles["c"]
            assert h_in is not None and x_in is not None
            if (dh.op.weight.shape != (4 * H, H) or dx.op.weight.shape[0] != 4 * H
                    or g.values[h_in].features != H or g.values[c_in].features != H
                    or g.values[x_in].features != dx.op.weight.shape[1]
                    or g.values[c_new].features != H or g.values[nh.outputs[0]].features != H):  # type: ignore[index]
                continue
            rows = np.concatenate([np.arange(*cut[k]) for k in "iofg"])  # ONNX order i, o, f, c

            def bias(d: Dense) -> np.ndarray:
                return np.zeros(4 * H, np.float32) if d.bias is None else np.asarray(d.bias, np.float32)

            rec = Recurrent(
                cell="lstm", direction="forward",
                W=np.ascontiguousarray(np.asarray(dx.op.weight, np.float32)[rows])[None],
                R=np.ascontiguousarray(np.asarray(dh.op.weight, np.float32)[rows])[None],
                B=np.concatenate([(bias(dx.op) + extra)[rows], bias(dh.op)[rows]])[None].astype(np.float32),
            )  # fmt: skip
            h_new = g.values[nh.outputs[0]]  # type: ignore[index]
            g.values.append(Value(f"{h_new.name}:Y", h_new.shape, h_new.dtype, delay=h_new.delay))
            fused.append((prod[c_new], kh, GNode(rec, [x_in, h_in, c_in],
                                                 [len(g.values) - 1, nh.outputs[0], c_new], name=nh.name)))  # fmt: skip
            notes.append(f"an LSTM cell written out as ops (hidden {H}, input {rec.in_features}; "
                         f"h' by node {nh.name!r}, c' by node {nc.name!r}) is one LSTM node")
            break
    if not fused:
        return notes
    at = {kc: lstm for kc, _, lstm in fused}
    drop = {kh for _, kh, _ in fused}
    g.nodes = [at.get(i, n) for i, n in enumerate(g.nodes) if i not in drop]
    _prune(g)
    return notes


def _absorb(g: Graph) -> list[str]:
    """State inputs that only feed recurrent nodes' h_init / c_init (whole, or parts of it
    through Slice / Squeeze / Unsqueeze / Reshape, in any packing: rows per node, or DTLN's
    [1, layer, H, h/c]) and whose paired output puts each of those nodes' final states (Y_h /
    Y_c, through Copy / Concat / Transpose) back at the very elements it read: the nodes keep
    the state themselves (Graph.state), as for a sequence model's h0 / c0, and the graph runs
    over whole chunks again. Returns a note per absorbed input.

    Graph.state names the blocks: the input's own name when the packing is rows in node order,
    h before c (PyTorch's h0 / Silero's state: Stream.state shows it under that name); else
    NAME.h and NAME.c, each the h (c) blocks in node order (Stream.state's [rows, B, H])."""
    notes: list[str] = []
    producers = g.producers()
    for s in list(g.state_values):
        sv = g.values[s]
        if sv.update is None or g.values[sv.update].kind == "output":
            continue
        n_el = int(np.prod(sv.shape))
        # which elements of the state each recurrent (node, slot) reads, in [D, H] order
        reads: dict[tuple[int, int], np.ndarray] = {}
        ok = True

        def follow(v: int, idx: np.ndarray) -> None:
            nonlocal ok
            for n, k in _readers(g, v):
                out = n.outputs[0]
                if isinstance(n.op, Recurrent) and k in (1, 2):
                    key = (id(n), k)
                    if key in reads or idx.size != n.op.num_directions * n.op.hidden:
                        ok = False
                    reads[key] = idx.reshape(-1)
                elif isinstance(n.op, Copy) and out is not None:
                    follow(out, idx.reshape(g.values[out].shape))
                elif (isinstance(n.op, Slice) and out is not None and n.op.step >= 1
                      and -idx.ndim <= n.op.axis < idx.ndim):
                    sl = [slice(None)] * idx.ndim
                    sl[n.op.axis] = slice(n.op.start, n.op.stop, n.op.step)
                    follow(out, idx[tuple(sl)])
                else:
                    ok = False

        follow(s, np.arange(n_el).reshape(sv.shape))
        # where the update's elements come from: codes of the final states' elements
        chain: set[int] = set()
        base: dict[tuple[int, int], int] = {}

        def finals(v: int) -> np.ndarray | None:
            p = producers.get(v)
            if p is None:
                return None
            n = g.nodes[p]
            shape = g.values[v].shape
            if isinstance(n.op, Recurrent):
                k = n.outputs.index(v)
                if k not in (1, 2) or (id(n), k) in base:
                    return None
                base[(id(n), k)] = code = 1 + len(base) * (1 << 24)
                return (code + np.arange(int(np.prod(shape)))).reshape(shape)
            chain.add(id(n))
            if isinstance(n.op, Copy):
                x = finals(n.inputs[0])  # type: ignore[arg-type]
                return None if x is None or x.size != int(np.prod(shape)) else x.reshape(shape)
            if isinstance(n.op, Transpose):
                x = finals(n.inputs[0])  # type: ignore[arg-type]
                return None if x is None else np.transpose(x, n.op.perm)
            if isinstance(n.op, Concat):
                parts = [finals(i) for i in n.inputs if i is not None]
                if any(q is None for q in parts):
                    return None
                try:
                    return np.concatenate(parts, axis=n.op.axis)  # type: ignore[arg-type]
                except ValueError:
                    return None
            return None

        made = finals(sv.update)
        if not ok or not reads or made is None or made.size != n_el:
            continue
        made = made.reshape(-1)
        # every element read by exactly one slot, and written back from that slot's final
        # state at the same place
        covered = np.concatenate(list(reads.values()))
        if set(reads) != set(base) or covered.size != n_el or np.unique(covered).size != n_el:
            continue
        if any(not np.array_equal(made[idx], base[key] + np.arange(idx.size)) for key, idx in reads.items()):
            continue
        # the final states must feed only the update; but a forward node's final h read elsewhere
        # as well (Silero's step forms: the decoder reads the h they also return) is its per-step
        # output Y there, which holds the same h at every step
        nodes = {id(n): n for n in g.nodes}
        others = {(nid, k): [(r, slot) for r, slot in _readers(g, nodes[nid].outputs[k])  # type: ignore[arg-type]
                             if id(r) not in chain] for (nid, k) in base}
        if any(readers and (k != 1 or nodes[nid].op.direction != "forward") for (nid, k), readers in others.items()):
            continue
        for (nid, _k), readers in others.items():
            if readers:
                _read_h_per_step(g, nodes[nid], readers)
        where = {id(n): i for i, n in enumerate(g.nodes)}
        order = sorted(reads, key=lambda key: (where[key[0]], key[1]))
        rows = bool(np.array_equal(np.concatenate([reads[key] for key in order]), np.arange(n_el)))
        out_name = g.values[sv.update].name
        for nid, k in order:
            n = nodes[nid]
            n.inputs[k] = None
            kind = "h" if k == 1 else "c"
            if rows:
                g.state.append(StateSpec(sv.name, 0, kind, out_name))
            else:
                g.state.append(StateSpec(f"{sv.name}.{kind}", 0, kind, None))
            g.state[-1].layer = nid  # resolved to a node index below
        sv.update = None
        sv.kind = "temp"
        packing = "rows in node order" if rows else f"packed {list(sv.shape)}: Stream.state names " \
            f"{', '.join(sorted({f'{sv.name}.' + ('h' if k == 1 else 'c') for _, k in order}))}"
        notes.append(f"state: input {sv.name!r} / output {out_name!r} is the state of "
                     f"{len(reads)} recurrent node input(s) ({packing}); the nodes keep it "
                     "(streamable in chunks)")
    if notes:
        _prune(g)
        ids = {id(n): i for i, n in enumerate(g.nodes)}
        for spec in g.state:
            if spec.layer in ids:
                spec.layer = ids[spec.layer]
        g.state.sort(key=lambda spec: (spec.layer, spec.kind != "h"))
        if not g.explicit_state:
            for n in g.nodes:
                if isinstance(n.op, Recurrent):
                    for v in n.outputs[1:]:
                        if v is not None:
                            g.values[v].last = True
    return notes


def _read_h_per_step(g: Graph, node: GNode, readers: list[tuple[GNode, int]]) -> None:
    """Point `readers` of a forward recurrent node's final h (Y_h) at its per-step output Y
    under Y_h's shape (a Copy of Y after the node, or Y itself when nothing read it)."""
    h = g.values[node.outputs[1]]  # type: ignore[index]
    g.values.append(Value(f"{h.name}:per_step", h.shape, h.dtype, delay=h.delay))
    per_step = len(g.values) - 1
    if node.outputs[0] is None:
        node.outputs[0] = per_step
    else:
        at = next(i for i, n in enumerate(g.nodes) if n is node) + 1
        g.nodes.insert(at, GNode(Copy(), [node.outputs[0]], [per_step], name=node.name))
    for r, slot in readers:
        r.inputs[slot] = per_step


def _prune(g: Graph) -> None:
    """Drop nodes whose outputs nothing reads (a Copy made for an output later copied again)."""
    while True:
        read = {v for n in g.nodes for v in n.inputs if v is not None}
        read |= {g.output} | {v.update for v in g.values if v.update is not None}
        dead = [i for i, n in enumerate(g.nodes) if not any(v in read for v in n.outputs if v is not None)]
        if not dead:
            break
        g.nodes = [n for i, n in enumerate(g.nodes) if i not in dead]
    used = {g.input, g.output} | set(g.state_values)
    for n in g.nodes:
        used |= {v for v in n.inputs + n.outputs if v is not None}
    keep = [i for i in range(len(g.values)) if i in used]
    remap = {old: new for new, old in enumerate(keep)}
    g.values = [g.values[i] for i in keep]
    for n in g.nodes:
        n.inputs = [None if v is None else remap[v] for v in n.inputs]
        n.outputs = [None if v is None else remap[v] for v in n.outputs]
    for v in g.values:
        if v.update is not None:
            v.update = remap[v.update]
    g.input, g.output = remap[g.input], remap[g.output]


# -- the ops -----------------------------------------------------------------------------------

OpFn = Callable[[DagWalk, Node, list], list]


def _flow(ins: list, i: int = 0, what: str = "input 0") -> Flow:
    v = ins[i] if i < len(ins) else None
    if not isinstance(v, Flow):
        raise ConvertError(f"{what} must be the data tensor, got a {_describe(v)}")
    return v


def _axis(a: int, rank: int, what: str) -> int:
    if not -rank <= a < rank:
        raise ConvertError(f"{what} {a} out of range for rank {rank}")
    return a + rank if a < 0 else a


def _f_index(f: Flow, axis: int, what: str) -> int:
    """The per-step axis of ONNX axis `axis` (a feature axis), or refuse by role."""
    if f.roles[axis] != "F":
        name = _role_name(f.roles[axis])
        raise UnsupportedOpError(f"{what} over axis {axis}, the {name} axis of [{f.layout()}]: "
                                 "only over the axes of one step")
    return f.f_axes.index(axis)


def op_recurrent(w: DagWalk, node: Node, ins: list) -> list:
    x = _flow(ins, 0, "input X")
    layout = node.int_attr("layout", 0)
    if layout not in (0, 1) or len(x.roles) != 3:
        raise UnsupportedOpError(f"{node.op} input X [{x.layout()}] with layout {layout}: expected 3 axes, layout 0 or 1")
    t_at, b_at = (0, 1) if layout == 0 else (1, 0)
    t_ok = x.roles[t_at] == "T" or (not w.has_time and x.roles[t_at] == "F" and x.shape[t_at] == 1)
    if (x.roles[t_at] in ("F", "B") and x.shape[t_at] == 1 and not w.has_time and x.roles[b_at] == "F"
            and x.shape[b_at] != 1 and x.roles[2] == "F"):  # the sequence axis the step (or its batch of 1)
        return _step_with_feature_batch(w, node, ins, x, layout)
    # an input without a batch axis ([T, F]) reaches the LSTM with a per-step axis of size 1 there
    b_role = "F" if "B" not in x.roles and x.roles[b_at] == "F" and x.shape[b_at] == 1 else "B"
    if x.roles[t_at] == "F" and x.shape[t_at] != 1 and x.roles[b_at] in ("B", "F") and x.roles[2] == "F":
        return _over_step_axis(w, node, ins, x, layout)
    if not t_ok or x.roles[b_at] != b_role or x.roles[2] != "F":
        raise w.layout_mismatch(
            f"input X is [{x.layout()}], but {node.op} with layout={layout} reads "
            f"[{'T,B,F' if layout == 0 else 'B,T,F'}]"
        )
    sizes = {"T": x.shape[t_at] if x.roles[t_at] == "T" else 1, "B": x.shape[b_at], "F": int(x.shape[2]), "1": 1}
    fake = Data((), (("T",), ("B",), ("F",)) if layout == 0 else (("B",), ("T",), ("F",)), sizes,
                reversed=x.reversed)  # over a reversed input: the other direction, output reversed
    inits: list[int | None] = [None, None]
    plain = list(ins)
    plain[0] = fake
    for k, j in enumerate((5, 6)):
        if j < len(ins) and isinstance(ins[j], Flow):
            f = ins[j]
            plain[j] = None
            inits[k] = f.value
    for j in (1, 2, 3):  # W, R, B: constants (an initial state may be data; a weight may not)
        if j < len(plain) and isinstance(plain[j], Flow):
            raise UnsupportedOpError(f"{node.op} input {j} ({('W', 'R', 'B')[j - 1]}) is computed from the "
                                     "data; rnnedge takes constant recurrent weights")
    outs = recurrent.op_recurrent(w, node, plain)  # type: ignore[arg-type]
    rec = outs[0].layers[-1]
    assert isinstance(rec, Recurrent)
    d, h = rec.num_directions, rec.hidden
    for k, v in enumerate(inits):
        if v is not None and w.values[v].features != d * h:
            raise ConvertError(f"input initial_{'hc'[k]} has {w.values[v].features} values per batch "
                               f"item; the {node.op} needs {d} x {h}")
    xv = w.last_axis(x, node.op)
    t_role = x.roles[t_at]
    y_shape = (1, d, h) if t_role == "F" else (d, h)
    last = not w.stepwise
    names = [n for n in node.outputs] + [""] * 3
    want = [bool(names[k]) and names[k] in _read_names(w) for k in range(3)]
    shapes: list[tuple[int, ...] | None] = [y_shape, (d, h) if want[1] else None]
    if rec.cell == "lstm":
        shapes.append((d, h) if want[2] else None)
    vals = w.add(rec, [xv, inits[0], inits[1] if rec.cell == "lstm" else None][: 3 if rec.cell == "lstm" else 2],
                 shapes, names[0] or f"{node.name}:Y")
    for k in (1, 2):
        if k < len(vals) and vals[k] is not None:
            w.values[vals[k]].last = last  # type: ignore[index]
    b = x.shape[b_at]
    if layout == 0:
        y = Flow(vals[0], (t_role, "F", "B", "F"), (x.shape[t_at], d, b, h), x.reversed)  # type: ignore[arg-type]
        hs = [None if v is None else Flow(v, ("F", "B", "F"), (d, b, h)) for v in vals[1:]]
    else:
        y = Flow(vals[0], ("B", t_role, "F", "F"), (b, x.shape[t_at], d, h), x.reversed)  # type: ignore[arg-type]
        hs = [None if v is None else Flow(v, ("B", "F", "F"), (b, d, h)) for v in vals[1:]]
    return [y] + hs


def op_loop(w: DagWalk, node: Node, ins: list) -> list:
    """tf2onnx's Loop of a Keras GRU / SimpleRNN (tf2onnx_loop.op_loop, read against a stand-in
    for the sequence it steps through, [T, B, F]): the native cell as a graph node. Its carried
    state's final value (return_state) is not mapped; the loop's other outputs are counters."""
    reads = {n: w.env.get(n) for n in tf2onnx_loop.captured(node.proto)}
    flows = [(n, v) for n, v in reads.items() if isinstance(v, Flow)]
    if len(flows) != 1 or any(isinstance(v, Flow) for v in ins):
        raise UnsupportedOpError(
            "found an unrolled recurrent net: a Loop that iterates over the sequence, not one "
            f"stepping through one data tensor as tf2onnx writes a Keras GRU or SimpleRNN; {HOW_TO_EXPORT}"
        )
    name, x = flows[0]
    if x.roles != ("T", "B", "F") or pending(x):
        raise w.layout_mismatch(f"the Loop steps through {name!r} [{x.layout()}], not [T, B, F]")
    sizes = {"T": x.shape[0], "B": x.shape[1], "F": int(x.shape[2]), "1": 1}
    reads[name] = Data((), (("T",), ("B",), ("F",)), sizes, reversed=x.reversed)  # type: ignore[arg-type]
    ctx = SimpleNamespace(values=reads, note=w.note)
    outs = tf2onnx_loop.op_loop(ctx, node, ins)  # type: ignore[arg-type]
    y = outs[-1]
    assert isinstance(y, Data)
    rec = y.layers[-1]
    assert isinstance(rec, Recurrent)
    h = rec.hidden
    (yv,) = w.add(rec, [w.last_axis(x, node.op)], [(1, h)], node.outputs[-1] or f"{node.name}:Y")
    return [None] * (len(outs) - 1) + [Flow(yv, ("T", "B", "F"), (x.shape[0], x.shape[1], h), x.reversed)]  # type: ignore[arg-type]


def _over_step_axis(w: DagWalk, node: Node, ins: list, x: Flow, layout: int) -> list:
    """A recurrence whose sequence axis is a per-step axis of L elements (gtcrn's intra-frame
    GRUs over the 33 frequency bins, bidirectional): a recurrent node with `inner` L, run within
    each row from a zero state (docs/graph.md section 2). X's value is [L, I] per row, Y's [L, D,
    H] (ONNX Y [L, D, B, H] / [B, L, D, H]). Refused by name: another per-step axis as its batch,
    sequence_lens, an initial state other than zeros, Y_h / Y_c read."""
    t_at, b_at = (0, 1) if layout == 0 else (1, 0)
    L, n_in = int(x.shape[t_at]), int(x.shape[2])  # type: ignore[call-overload]
    what = f"{node.op} over a per-step axis (X [{x.layout()}], sequence axis {t_at}: {L} elements of one step)"
    if x.roles[b_at] == "F" and x.shape[b_at] != 1:
        raise UnsupportedOpError(f"{what} with a per-step axis of {x.shape[b_at]} as its batch: only the "
                                 "stream's batch (or 1) is")
    if len(ins) > 4 and ins[4] is not None:
        raise UnsupportedOpError(f"{what} with sequence_lens")
    for j, name in ((5, "initial_h"), (6, "initial_c")):
        if j < len(ins) and isinstance(ins[j], Flow):
            raise UnsupportedOpError(f"{what} with its {name} computed from the data: each step's "
                                     "recurrence starts from zeros")
    outs_read = [k for k in (1, 2) if k < len(node.outputs) and node.outputs[k] and node.outputs[k] in _read_names(w)]
    if outs_read:
        raise UnsupportedOpError(f"{what} whose {' and '.join(('Y_h', 'Y_c')[k - 1] for k in outs_read)} is read: "
                                 "only its Y is")
    sizes = {"T": L, "B": 1, "F": n_in, "1": 1}
    fake = Data((), (("T",), ("B",), ("F",)) if layout == 0 else (("B",), ("T",), ("F",)), sizes)
    plain = [fake] + [None if isinstance(v, Flow) else v for v in ins[1:]]
    rec = recurrent.op_recurrent(w, node, plain)[0].layers[-1]  # type: ignore[arg-type]
    assert isinstance(rec, Recurrent)
    for name in ("initial_h", "initial_c"):
        a = getattr(rec, name)
        if a is not None and np.any(np.asarray(a) != 0):
            raise UnsupportedOpError(f"{what} with a nonzero {name}: each step's recurrence starts from zeros")
    rec = replace(rec, initial_h=None, initial_c=None, inner=L)
    d, h = rec.num_directions, rec.hidden
    xv = w.shaped(x, (L, n_in))
    (yv,) = w.add(rec, [xv], [(L, d, h)], node.outputs[0] or f"{node.name}:Y")
    w.note(node, f"a recurrence over a per-step axis of {L} elements, from zeros in every step"
                 f"{' (both ways)' if d == 2 else ''}")
    b, br = x.shape[b_at], x.roles[b_at]
    if layout == 0:
        y = Flow(yv, ("F", "F", br, "F"), (L, d, b, h))  # type: ignore[arg-type]
    else:
        y = Flow(yv, (br, "F", "F", "F"), (b, L, d, h))  # type: ignore[arg-type]
    return [y] + [None] * (len(node.outputs) - 1)


def _step_with_feature_batch(w: DagWalk, node: Node, ins: list, x: Flow, layout: int) -> list:
    """One step of a GRU whose batch axis is a per-step axis (gtcrn's inter-frame GRUs: the 33
    frequency bins of a step are its batch, h from the state): the cell written as graph nodes
    over x [.., I] and h [.., H] (DENSE over the last axis, SLICE, BINARY, ACT), which every
    format runs. Forward GRUs without clip only; other cells refused by name."""
    t_at, b_at = (0, 1) if layout == 0 else (1, 0)
    if node.op != "GRU":
        raise UnsupportedOpError(f"{node.op} whose batch axis (X [{x.layout()}], axis {b_at}) is a per-step axis of "
                                 f"{x.shape[b_at]}: only a GRU's one step is written out as graph nodes")
    if len(ins) > 4 and ins[4] is not None:
        raise UnsupportedOpError(f"{node.op} with sequence_lens whose batch axis is a per-step axis")
    sizes = {"T": 1, "B": x.shape[b_at], "F": int(x.shape[2]), "1": 1}
    fake = Data((), (("T",), ("B",), ("F",)) if layout == 0 else (("B",), ("T",), ("F",)), sizes)
    h_in = ins[5] if len(ins) > 5 and isinstance(ins[5], Flow) else None
    plain = [fake] + [None if isinstance(v, Flow) else v for v in ins[1:]]
    rec = recurrent.op_recurrent(w, node, plain)[0].layers[-1]  # type: ignore[arg-type]
    assert isinstance(rec, Recurrent)
    if rec.num_directions != 1 or rec.clip is not None:
        raise UnsupportedOpError(f"a {rec.direction} GRU{' with clip' if rec.clip is not None else ''} whose batch "
                                 f"axis is a per-step axis: only a forward one without clip")
    H = rec.hidden
    f, g = rec.activations[0]
    bias = rec.B[0] if rec.B is not None else np.zeros(6 * H, np.float32)
    wb, rb = bias[: 3 * H], bias[3 * H :]
    R = rec.R[0]
    if h_in is not None:
        h: Flow | Const = h_in
        if int(h_in.shape[-1]) != H or _features(h_in.step_shape) != _features(x.step_shape) // int(x.shape[2]) * H:
            raise ConvertError(f"input initial_h [{h_in.layout()}] for X [{x.layout()}] and hidden size {H}")
        gh: Flow | Const = _dense(w, h_in, R, rb, node.op)
    else:
        h0 = rec.initial_h[0] if rec.initial_h is not None else np.zeros(H, np.float32)
        h = Const(np.asarray(h0, np.float32))
        gh = Const((R @ h0 + rb).astype(np.float32))
    gx = _dense(w, x, rec.W[0], wb, node.op)

    def part(v: Flow | Const, k: int) -> Flow | Const:
        if isinstance(v, Const):
            return Const(np.ascontiguousarray(np.asarray(v.array)[..., k * H : (k + 1) * H]))
        return _slice_f(w, v, len(v.roles) - 1, k * H, (k + 1) * H, 1)

    z = _act(w, _binary(w, "Add", part(gx, 0), part(gh, 0)), f)
    r = _act(w, _binary(w, "Add", part(gx, 1), part(gh, 1)), f)
    if rec.linear_before_reset:
        rn: Flow | Const = _binary(w, "Mul", r, part(gh, 2))
    else:
        rh = _binary(w, "Mul", r, h)
        rn = _dense(w, rh, R[2 * H :], rb[2 * H :], node.op)
    n = _act(w, _binary(w, "Add", part(gx, 2), rn), g)
    y = _binary(w, "Add", n, _binary(w, "Mul", z, _binary(w, "Sub", h, n)))  # (1 - z) n + z h
    b = x.shape[b_at]
    w.note(node, f"one step with its batch axis a per-step axis of {b}: the GRU cell written as graph nodes")
    t = x.roles[t_at]  # Y [1, 1, b, H] (layout 1: [b, 1, 1, H]), Y_h [1, b, H] ([b, 1, H])
    if layout == 0:
        return [Flow(y.value, (t, "F", "F", "F"), (1, 1, b, H)), Flow(y.value, ("F", "F", "F"), (1, b, H))]
    return [Flow(y.value, ("F", t, "F", "F"), (b, 1, 1, H)), Flow(y.value, ("F", "F", "F"), (b, 1, H))]


def _read_names(w: DagWalk) -> set[str]:
    names = {n for node in w.graph.node for n in node.input}
    return names | {o.name for o in w.graph.output}


def _dense(w: DagWalk, x: Flow, weight: np.ndarray, bias: np.ndarray | None, what: str) -> Flow:
    k = x.step_shape[-1] if x.roles and x.roles[-1] == "F" else None
    if k is None or weight.shape[1] != k:
        raise ConvertError(f"{what}: weight {list(weight.T.shape)} takes {weight.shape[1]} features; "
                           f"the data tensor [{x.layout()}] has {k} on its last axis")
    v = w.last_axis(x, what)
    shape = w.values[v].shape[:-1] + (int(weight.shape[0]),)
    layer = Dense(np.ascontiguousarray(weight, np.float32),
                  None if bias is None else np.ascontiguousarray(bias, np.float32))
    out = w.add(layer, [v], [shape], w.node.name if w.node else "dense")[0]
    return Flow(out, x.roles, x.shape[:-1] + (int(weight.shape[0]),))  # type: ignore[arg-type]


def op_gemm(w: DagWalk, node: Node, ins: list) -> list:
    x = _flow(ins, 0, "input A")
    if node.int_attr("transA", 0):
        raise UnsupportedOpError("Gemm with transA=1 on the data tensor")
    if len(x.roles) != 2:
        raise UnsupportedOpError(f"Gemm of a data tensor [{x.layout()}] (Gemm takes 2 axes)")
    b = floats_of(ins[1], "input B")
    b = b.T if node.int_attr("transB", 0) else b
    weight = node.float_attr("alpha", 1.0) * b.T
    bias = None
    if len(ins) > 2 and ins[2] is not None:
        c = floats_of(ins[2], "input C") * node.float_attr("beta", 1.0)
        if c.size not in (1, weight.shape[0]) or (c.ndim == 2 and c.shape[0] != 1):
            raise UnsupportedOpError(f"Gemm input C of shape {list(c.shape)}: only a bias per output feature")
        bias = np.broadcast_to(c.reshape(-1), (weight.shape[0],))
    return [_dense(w, x, weight, bias, "Gemm")]


def op_matmul(w: DagWalk, node: Node, ins: list) -> list:
    a, b = ins[0], ins[1]
    if isinstance(a, Flow) and isinstance(b, Flow):
        raise UnsupportedOpError("MatMul of two data tensors (attention-like products) is not supported; "
                                 "one operand must be a constant weight")
    if isinstance(a, Flow):
        wt = floats_of(b, "input B")
        if wt.ndim != 2:
            raise UnsupportedOpError(f"MatMul by a constant of shape {list(wt.shape)}: only a 2-D weight")
        return [_dense(w, a, wt.T, None, "MatMul")]
    # constant @ data: contracts the data's second-last axis: transpose, Dense, transpose back
    x = _flow(ins, 1, "input B")
    wt = floats_of(a, "input A")
    if wt.ndim != 2 or len(x.roles) < 2 or x.roles[-2:] != ("F", "F"):
        raise UnsupportedOpError(f"MatMul of a constant {list(wt.shape)} by the data tensor [{x.layout()}]: "
                                 "only a 2-D weight over a feature axis")
    n = len(x.roles)
    perm = tuple(range(n - 2)) + (n - 1, n - 2)
    t = _transpose(w, x, perm)
    y = _dense(w, t, wt, None, "MatMul")
    return [_transpose(w, y, perm)]


def _transpose(w: DagWalk, x: Flow, perm: tuple[int, ...]) -> Flow:
    roles = tuple(x.roles[p] for p in perm)
    shape = tuple(x.shape[p] for p in perm)
    f_old = x.f_axes
    order = [f_old.index(p) for p in perm if x.roles[p] == "F"]
    if order == sorted(order):
        return Flow(x.value, roles, shape)
    if len(f_old) <= MAX_STEP_AXES:
        y = Flow(0, roles, shape)
        v = w.add(Transpose(tuple(order)), [w.shaped(x)], [y.step_shape], w.node.name if w.node else "transpose")[0]
        return replace(y, value=v)
    # more per-step axes than a value holds (gtcrn's unfold [3, 1, 1, 3, 129]): those of one element
    # move no element, so the order of the others decides, and they are left out of the node
    big = [i for i in f_old if x.shape[i] != 1]
    order = [big.index(p) for p in perm if p in big]
    if order == sorted(order):
        return Flow(x.value, roles, shape)
    keep = [i for i in range(len(x.roles)) if x.roles[i] != "F" or i in big]
    src = Flow(x.value, tuple(x.roles[i] for i in keep), tuple(x.shape[i] for i in keep))
    out = tuple(int(x.shape[p]) for p in perm if p in big)  # type: ignore[arg-type]
    v = w.add(Transpose(tuple(order)), [w.shaped(src)], [out], w.node.name if w.node else "transpose")[0]
    return Flow(v, roles, shape)


def op_transpose(w: DagWalk, node: Node, ins: list) -> list:
    """A Pad's frames before or after the time axis stay pending, with the time axis wherever the
    permutation puts it (tf2onnx's causal Conv1D under Keras 2: Pad, Unsqueeze, a Transpose to
    NCHW, then the Conv that absorbs them); other pending frames are refused."""
    x = _flow(ins)
    perm = node.ints_attr("perm") if node.has("perm") else list(range(len(x.roles)))[::-1]
    if sorted(perm) != list(range(len(x.roles))):
        raise node.refuse_attr("perm", perm, f"a permutation of {len(x.roles)} axes")
    if x.cache is not None or x.tail:
        raise UnsupportedOpError(f"Transpose of a tensor with {_pending_text(w, x)}: only a Conv over time "
                                 "(or a Slice that drops the extra frames) may read it")
    if x.wpad != (0, 0):
        raise UnsupportedOpError(f"Transpose of a tensor with {list(x.wpad)} zeros a Pad put around a feature "
                                 "axis: only the Conv that pads that axis may read it")
    y = _transpose(w, replace(x, tpad=(0, 0)), tuple(perm))
    return [replace(y, tpad=x.tpad)]


def _role_name(r: str) -> str:
    return " and ".join({"T": "time", "B": "batch"}[a] for a in r)


def _regroup(w: DagWalk, x: Flow, out: list[Dim], what: str) -> Flow:
    """_regroup_axes; when that mixes the batch with a step's axes and the batch is a fixed 1 in a
    step function (gtcrn's Reshape of [B, 33, 1, 16] to [33, 1, 16]: one stream's [33, 16]), the
    batch axis taken as a per-step axis of one element (every row is one stream's either way)."""
    try:
        return _regroup_axes(w, x, out, what)
    except UnsupportedOpError:
        if w.has_time or x.roles.count("B") != 1 or x.shape[x.roles.index("B")] != 1:
            raise
        i = x.roles.index("B")
        try:
            return _regroup_axes(w, replace(x, roles=x.roles[:i] + ("F",) + x.roles[i + 1 :]), out, what)
        except UnsupportedOpError:
            pass
        raise


def _regroup_axes(w: DagWalk, x: Flow, out: list[Dim], what: str) -> Flow:
    """x's elements under the ONNX shape `out`. The time and batch axes must survive in order,
    as axes of their own or merged with each other (B*T, as Keras TimeDistributed writes), with
    the same features before, between and after them. A static size where x has the run-time
    length (an exporter that baked the traced length into a Reshape) stands for it."""
    atoms: list[tuple[str, Dim, Dim]] = []  # (atom, size, product of the feature sizes before it)
    acc: Dim = 1
    for i, r in enumerate(x.roles):
        if r == "F":
            acc = dim_prod([acc, x.shape[i]])
            continue
        for k, a in enumerate(r):
            if a == "B" and "B" not in w.axes:  # the size-1 batch a recurrent node gave a [T, F] input
                continue
            atoms.append((a, x.shape[i] if len(r) == 1 else w.atom_size[a], acc if k == 0 else 1))
            acc = 1
    tail = acc
    roles = ["F"] * len(out)
    k, acc = 0, 1
    for j, d in enumerate(out):
        if k < len(atoms) and acc == atoms[k][2]:
            hit = 0
            for m in range(len(atoms) - k, 0, -1):
                group = atoms[k : k + m]
                if any(g[2] != 1 for g in group[1:]):
                    continue
                prod = dim_prod([g[1] for g in group])
                baked = m == 1 and isinstance(d, int) and d > 1 and not isinstance(prod, int)
                if d == prod or baked:
                    hit = m
                    if baked:
                        w.notes.append(f"{what}: a static size {d} stands for the run-time "
                                       f"{_role_name(group[0][0])} length (baked in by the exporter)")
                    break
            if hit:
                roles[j] = "".join(g[0] for g in atoms[k : k + hit])
                k, acc = k + hit, 1
                continue
        acc = dim_prod([acc, d])
    if k != len(atoms):
        a = atoms[k][0]
        raise UnsupportedOpError(
            f"{what} to {shape_str(out)} mixes the {_role_name(a)} axis of [{x.layout()}] with other "
            "axes: rnnedge keeps time and batch apart from a step's features"
        )
    if acc != tail or any(not isinstance(out[j], int) for j in range(len(out)) if roles[j] == "F"):
        raise UnsupportedOpError(f"{what} of [{x.layout()}] to {shape_str(out)}: the features of one step "
                                 "do not stay within the step")
    return Flow(x.value, tuple(roles), tuple(out))


def op_reshape(w: DagWalk, node: Node, ins: list) -> list:
    x = _flow(ins)
    t = ins[1]
    if isinstance(t, Const):
        target: list[Dim] = [int(v) for v in np.asarray(t.array).ravel()]
    elif isinstance(t, SymInts):
        target = list(t.items)
    else:
        raise UnsupportedOpError(f"Reshape to a {_describe(t)}")
    out = reshape_target(target, x.shape, bool(node.int_attr("allowzero", 0)))
    return [_regroup(w, x, out, "Reshape")]


def op_flatten(w: DagWalk, node: Node, ins: list) -> list:
    x = _flow(ins)
    axis = _axis(node.int_attr("axis", 1), len(x.roles) + 1, "Flatten axis")
    out = [dim_prod(list(x.shape[:axis])), dim_prod(list(x.shape[axis:]))]
    return [_regroup(w, x, out, "Flatten")]


def op_squeeze(w: DagWalk, node: Node, ins: list) -> list:
    """Squeeze of per-step axes only: the other axes keep their roles (a time or batch axis of
    static size 1 beside a feature axis of size 1 is not guessed); else as a Reshape."""
    x = _flow(ins)
    out = squeeze_shape(node, ins, x.shape)
    axes = ints_arg(node, ins, 1, "axes")
    if axes is not None:
        gone = {a + len(x.shape) if a < 0 else a for a in axes}
        if all(x.roles[a] == "F" for a in gone):
            return [Flow(x.value, tuple(r for i, r in enumerate(x.roles) if i not in gone), out)]
    return [_regroup(w, x, list(out), "Squeeze")]


def op_unsqueeze(w: DagWalk, node: Node, ins: list) -> list:
    """New per-step axes of size 1 where the node says, the others keep their roles. A Pad's
    frames before or after the time axis stay pending (tf2onnx's causal Conv1D: Pad, then an
    Unsqueeze to a 2-D Conv, which absorbs them); other pending frames are refused."""
    x = _flow(ins)
    if x.cache is not None:
        raise UnsupportedOpError(f"Unsqueeze of a tensor with {_pending_text(w, x)}: only a Conv over time "
                                 "(or a Slice that drops the extra frames) may read it")
    if x.wpad != (0, 0):
        raise UnsupportedOpError(f"Unsqueeze of a tensor with {list(x.wpad)} zeros a Pad put around a feature "
                                 "axis: only the Conv that pads that axis may read it")
    out = unsqueeze_shape(node, ins, x.shape)
    roles = list(x.roles)
    for a in sorted(b + len(out) if b < 0 else b for b in ints_arg(node, ins, 1, "axes") or []):
        roles.insert(a, "F")
    return [Flow(x.value, tuple(roles), out, tpad=x.tpad, tail=x.tail)]


def op_reverse_sequence(w: DagWalk, node: Node, ins: list) -> list:
    """Every whole sequence reversed in time (Keras go_backwards): a flag on the tensor that the
    next recurrent op absorbs by running the other way (as in the pipeline converter)."""
    x = _flow(ins)
    t_axis, b_axis = node.int_attr("time_axis", 0), node.int_attr("batch_axis", 1)
    if not (0 <= t_axis < len(x.roles) and 0 <= b_axis < len(x.roles)):
        raise ConvertError(f"time_axis={t_axis}, batch_axis={b_axis} do not fit [{x.layout()}]")
    if x.roles[t_axis] != "T" or x.roles[b_axis] != "B":
        raise UnsupportedOpError(f"ReverseSequence with time_axis={t_axis}, batch_axis={b_axis} on [{x.layout()}]")
    lengths, t = ins[1], x.shape[t_axis]
    full = ((isinstance(lengths, Filled) and lengths.value == t)
            or (isinstance(lengths, SymInts) and all(v == t for v in lengths.items))
            or (isinstance(lengths, Const) and bool(np.all(np.asarray(lengths.array) == t))))
    if not full:
        raise UnsupportedOpError(f"ReverseSequence with sequence_lens = {_describe(lengths)}: only the "
                                 f"reversal of every whole sequence (length T)")
    return [replace(x, reversed=not x.reversed)]


def op_expand(w: DagWalk, node: Node, ins: list) -> list:
    """Expand that changes nothing per step (a target of 1s and the tensor's own sizes)."""
    x = _flow(ins)
    t = ins[1]
    target: list[Dim] = (list(t.items) if isinstance(t, SymInts)
                         else [int(v) for v in ints_of(t, "input shape")])  # fmt: skip
    n = max(len(target), len(x.shape))
    shape = (1,) * (n - len(x.shape)) + tuple(x.shape)
    target = [1] * (n - len(target)) + target
    if n != len(x.shape) or any(d not in (1, s) for d, s in zip(target, shape)):
        raise UnsupportedOpError(f"Expand of the data tensor {shape_str(x.shape)} to {shape_str(target)}: "
                                 "only an Expand that copies nothing")
    return [x]


def op_identity(w: DagWalk, node: Node, ins: list) -> list:
    x = _flow(ins)
    if node.op == "Dropout" and len(ins) > 2 and ins[2] is not None:
        mode = np.asarray(floats_of(ins[2], "Dropout training_mode"))
        if mode.size != 1:
            raise ConvertError(f"Dropout training_mode has shape {list(mode.shape)}, expected one value")
        if bool(mode.ravel()[0]):
            raise node.refuse_attr("training_mode", True, "false")
    if node.op == "Cast":
        to = node.int_attr("to", 1)
        if w.values[x.value].dtype == "s32" and to in (onnx.TensorProto.INT32, onnx.TensorProto.INT64):
            return [x] + [None] * (len(node.outputs) - 1)  # integer ids to an integer type: the same ids
        if to not in (onnx.TensorProto.FLOAT, onnx.TensorProto.DOUBLE, onnx.TensorProto.FLOAT16):
            raise UnsupportedOpError(f"Cast of the data tensor to {_type_name(to)}: "
                                     "only float to float")
    return [x] + [None] * (len(node.outputs) - 1)


def _take_last(w: DagWalk, x: Flow, axis: int, keep: bool) -> Flow:
    if w.values[x.value].last:
        raise UnsupportedOpError("selecting the last step of a value that already holds one step")
    v = w.shaped(x)
    f = _features(x.step_shape)
    split = 0 if x.reversed else f  # the last step of a reversed sequence is the first row
    out = w.add(TakeLast(f, split), [v], [x.step_shape], w.node.name if w.node else "last", last=True)[0]
    roles = x.roles if keep else x.roles[:axis] + x.roles[axis + 1 :]
    shape = x.shape[:axis] + ((1,) if keep else ()) + x.shape[axis + 1 :]
    roles = roles[:axis] + ("F",) + roles[axis + 1 :] if keep else roles
    return Flow(out, tuple(roles), tuple(shape))  # type: ignore[arg-type]


def _slice_f(w: DagWalk, x: Flow, axis: int, start: int, stop: int, step: int) -> Flow:
    k = _f_index(x, axis, "Slice")
    n = int(x.shape[axis])  # type: ignore[arg-type]
    r = onnx_range(n, start, stop, step)
    if len(r) == n and step == 1:
        return x
    if len(r) == 0:
        raise UnsupportedOpError(f"Slice [{start}:{stop}:{step}] of an axis of {n} is empty")
    if step < 1:  # backwards (Silero v4's reflect pad, written out): one-element slices, or a 0/1 Dense
        if len(r) <= PICK_SLICES:
            return _concat(w, [_slice_f(w, x, axis, j, j + 1, 1) for j in r], axis)
        if axis == len(x.roles) - 1:
            return _pick(w, x, list(r), "Slice")
        raise UnsupportedOpError(f"Slice with step {step} of {len(r)} elements along a feature axis that is "
                                 f"not the last (backwards: up to {PICK_SLICES} elements, or along the last axis)")
    shape = list(x.shape)
    shape[axis] = len(r)
    y = Flow(0, x.roles, tuple(shape))
    src = w.shaped(x)
    op = Slice(_features(x.step_shape), r.start, r.stop if r.step == 1 else r[-1] + 1, k, r.step)
    v = w.add(op, [src], [y.step_shape], w.node.name if w.node else "slice")[0]
    return replace(y, value=v)


PICK_SLICES = 8  # a reflect or edge Pad, or a reversed Slice, of more elements: one Dense copies them


def _pick(w: DagWalk, x: Flow, picks: list[int], what: str) -> Flow:
    """x's elements `picks` of its last axis, in that order: the range they span (a Slice), then a
    Dense whose weights are 0 and 1 (each output one input times 1: exact in float)."""

    lo, hi = min(picks), max(picks) + 1
    src = _slice_f(w, x, len(x.roles) - 1, lo, hi, 1)
    weight = np.zeros((len(picks), hi - lo), np.float32)  # Dense weights are [out, in]
    weight[np.arange(len(picks)), np.asarray(picks) - lo] = 1.0
    return _dense(w, src, weight, None, what)


def _concat(w: DagWalk, parts: list[Flow], axis: int) -> Flow:
    """`parts` joined along feature axis `axis`: CONCAT nodes of up to 4 inputs, chained."""
    if len(parts) == 1:
        return parts[0]
    acc, rest = parts[0], parts[1:]
    k = _f_index(acc, axis, "Concat")
    while rest:
        group, rest = [acc] + rest[:3], rest[3:]
        shape = list(acc.shape)
        shape[axis] = sum(int(g.shape[axis]) for g in group)
        y = Flow(0, acc.roles, tuple(shape))
        v = w.add(Concat(k), [w.shaped(g) for g in group], [y.step_shape], w.node.name if w.node else "concat")[0]
        acc = replace(y, value=v)
    return acc


def _whole(dim: Dim, start: int, stop: int, step: int) -> bool:
    return step == 1 and start == 0 and stop >= 2**31 - 1 or (isinstance(dim, int) and
                                                               len(onnx_range(dim, start, stop, step)) == dim and step == 1)


_UNROLLED = ("; a graph that takes single steps out of the sequence is an unrolled recurrent net: "
             f"{HOW_TO_EXPORT}; or export one step as a step function forward(x_t, state) -> "
             "(y_t, next_state)")


def op_slice(w: DagWalk, node: Node, ins: list) -> list:
    x = _flow(ins)
    if x.cache is not None:
        return [_cache_slice(x, slice_args(node, ins, len(x.roles)))]  # type: ignore[arg-type]
    for axis, start, stop, step in slice_args(node, ins, len(x.roles)):  # type: ignore[arg-type]
        if x.roles[axis] == "T" and (x.tail or x.tpad != (0, 0)):
            x = _chomp(x, axis, start, stop, step)
        elif x.roles[axis] == "F":
            x = _slice_f(w, x, axis, start, stop, step)
        elif _whole(x.shape[axis], start, stop, step):
            continue
        elif x.roles[axis] == "T" and step == 1 and start == -1 and stop >= 2**31 - 1:
            x = _take_last(w, x, axis, True)
        else:
            raise UnsupportedOpError(
                f"Slice [{start}:{stop}:{step}] of the {_role_name(x.roles[axis])} "
                f"axis of [{x.layout()}]: only the whole axis, or the last step ([-1:])" + _UNROLLED
            )
    return [x]


def _cache_slice(x: Flow, args: list) -> CacheSlice:
    """A Slice of a cache Concat: only its last `frames` frames along time (the next cache), the
    other axes whole."""
    assert x.cache is not None
    s, n = x.cache
    for axis, start, stop, step in args:
        if x.roles[axis] == "T" and step == 1 and start == -n and stop >= 2**31 - 1:
            continue
        if x.roles[axis] != "T" and _whole(x.shape[axis], start, stop, step):
            continue
        raise UnsupportedOpError(
            f"Slice [{start}:{stop}:{step}] on axis {axis} of a cache Concat [{x.layout()}] (the {n} frames "
            f"of a state before the steps): only [-{n}:] along time, the last {n} frames (the next cache)"
        )
    if not any(x.roles[a] == "T" for a, *_ in args):
        raise UnsupportedOpError(f"Slice of a cache Concat [{x.layout()}] that keeps its whole time axis: "
                                 f"only [-{n}:] along time, the last {n} frames (the next cache)")
    return CacheSlice(s, n)


def _chomp(x: Flow, axis: int, start: int, stop: int, step: int) -> Flow:
    """A Slice over the time axis of a padded Conv's output that drops its `tail` frames past the
    input's end (pad-then-chomp: x[..., :-chomp]): the stream never computes them."""
    if x.tpad != (0, 0):
        raise UnsupportedOpError(f"Slice over the time axis of a Pad's output [{x.layout()}]: only a Conv may read it")
    if step == 1 and start == 0 and stop == -x.tail:
        return replace(x, tail=0)
    raise UnsupportedOpError(
        f"Slice [{start}:{stop}:{step}] over the time axis of a Conv output with {x.tail} frames past the "
        f"input's end: only [0:-{x.tail}] (the chomp that makes the Conv causal)"
    )


def op_split(w: DagWalk, node: Node, ins: list) -> list:
    x = _flow(ins)
    axis = _axis(node.int_attr("axis", 0), len(x.roles), "Split axis")
    _f_index(x, axis, "Split")
    n = int(x.shape[axis])  # type: ignore[arg-type]
    parts = ints_arg(node, ins, 1, "split")
    count = len(node.outputs)
    if parts is None:
        k = node.int_attr("num_outputs", count) if node.has("num_outputs") else count
        size = -(-n // k)
        parts = [min(size, n - i * size) for i in range(k)]
    if sum(parts) != n or len(parts) != count:
        raise ConvertError(f"Split sizes {parts} do not cut {n} into {count} outputs")
    outs, at = [], 0
    for p in parts:
        outs.append(_slice_f(w, x, axis, at, at + p, 1))
        at += p
    return outs


def op_concat(w: DagWalk, node: Node, ins: list) -> list:
    flows = [v for v in ins if v is not None]
    if not all(isinstance(v, Flow) for v in flows):
        bad = next(v for v in flows if not isinstance(v, Flow))
        raise UnsupportedOpError(f"Concat of the data tensor with a {_describe(bad)}: only of data tensors")
    first = flows[0]
    axis = _axis(node.int_attr("axis", 0), len(first.roles), "Concat axis")
    if len(flows) == 2 and w.values[first.value].kind == "state" and flows[1].roles[axis] == "T":
        return [_cache_concat(w, first, flows[1], axis)]
    batched = next((f for f in flows if "B" in f.roles), None)
    if batched is not None:
        flows = [_batch_axis_as(f, batched) for f in flows]
        first = flows[0]
    for f in flows:
        if f.roles != first.roles or any(f.shape[i] != first.shape[i] for i in range(len(f.roles)) if i != axis):
            raise UnsupportedOpError(f"Concat of [{first.layout()}] and [{f.layout()}] along axis {axis}")
    k = _f_index(first, axis, "Concat")
    if len(flows) == 1:
        return [first]
    lasts = {w.values[f.value].last for f in flows}
    if len(lasts) > 1:
        raise UnsupportedOpError("Concat of a whole-sequence tensor with a last-step one")
    acc = flows[0]
    rest = flows[1:]
    while rest:
        group, rest = [acc] + rest[:3], rest[3:]
        shape = list(acc.shape)
        shape[axis] = sum(int(g.shape[axis]) for g in group)  # type: ignore[arg-type]
        y = Flow(0, first.roles, tuple(shape))
        v = w.add(Concat(k), [w.shaped(g) for g in group], [y.step_shape], node.name)[0]
        acc = replace(y, value=v)
    return [acc]


def _batch_axis_as(f: Flow, ref: Flow) -> Flow:
    """f with its feature axis of one element where `ref` has the batch axis taken as the batch,
    when f has no batch axis: a value read from a STATE value (one row per stream) whose ONNX
    shape holds the batch of 1 as a fixed size (gtcrn's caches [2, 1, 16, 16, 33]). Else f."""
    if "B" in f.roles or len(f.roles) != len(ref.roles):
        return f
    i = ref.roles.index("B")
    if f.roles[i] != "F" or f.shape[i] != 1:
        return f
    return replace(f, roles=f.roles[:i] + ("B",) + f.roles[i + 1 :],
                   shape=f.shape[:i] + (ref.shape[i],) + f.shape[i + 1 :])


def _cache_concat(w: DagWalk, state: Flow, x: Flow, axis: int) -> Flow:
    """Concat(state, x) along x's time axis in a step function: the state holds the frames
    before this call's (a cache), so a Conv over time without time padding whose window is the
    state's frames is a causal conv that keeps them itself (conv.py), and the Slice of the last
    frames the next cache (CacheSlice). The state's other axes are x's features, in x's order
    (size 1 where x has its batch of 1)."""
    n = state.shape[axis]
    where = f"Concat of state {w.values[state.value].name!r} [{state.layout()}] before the steps of [{x.layout()}]"
    if len(state.roles) != len(x.roles) or state.roles[axis] != "F":
        raise UnsupportedOpError(f"{where} along axis {axis}: the state needs x's axes, frames on the time axis")
    for i, (r, d) in enumerate(zip(x.roles, x.shape)):
        if i == axis:
            continue
        if r == "F" and (state.roles[i] != "F" or state.shape[i] != d) or r == "T" or (
                r == "B" and state.roles[i] != "B" and (state.shape[i] != 1 or d != 1)):
            raise UnsupportedOpError(f"{where} along axis {axis}: axis {i} differs (the state must hold "
                                     "frames of x's per-step shape)")
    if pending(x) or x.reversed or w.values[x.value].last:
        raise UnsupportedOpError(f"{where}: x must be plain steps in time order")
    if any(f.cache is not None and f.cache[0] == state.value for f in w.env.values() if isinstance(f, Flow)):
        raise UnsupportedOpError(f"{where}: the state is concatenated before the steps twice")
    return replace(x, cache=(state.value, int(n)))  # type: ignore[arg-type]


def op_gather(w: DagWalk, node: Node, ins: list) -> list:
    data, idx = ins[0], ins[1]
    axis_attr = node.int_attr("axis", 0)
    if isinstance(idx, Flow) and isinstance(data, Const):
        table = floats_of(data, "input data (the embedding table)", np.float32)
        if table.ndim != 2 or axis_attr not in (0, -2):
            raise UnsupportedOpError(f"Gather of ids from a constant of shape {list(table.shape)} along axis "
                                     f"{axis_attr}: only rows of a 2-D table (an embedding)")
        if w.values[idx.value].kind != "input" or w.values[idx.value].dtype != "s32":
            raise UnsupportedOpError("Gather by computed indices: only integer ids given as the model's input")
        y = Flow(0, idx.roles + ("F",), idx.shape + (int(table.shape[1]),))
        v = w.add(Gather(np.ascontiguousarray(table)), [idx.value], [(_features(idx.step_shape), table.shape[1])],
                  node.name)[0]
        return [replace(y, value=v)]
    x = _flow(ins, 0, "input data")
    if isinstance(idx, Flow):
        raise UnsupportedOpError("Gather with data-dependent indices")
    ind = np.asarray(floats_of(idx, "input indices")).astype(np.int64)
    axis = _axis(axis_attr, len(x.roles), "Gather axis")
    if ind.size != 1:
        return [_gather_f(w, x, axis, ind)]
    i = int(ind.ravel()[0])
    if x.roles[axis] == "T":
        if i == -1 or (isinstance(x.shape[axis], int) and i == x.shape[axis] - 1):
            return [_as_index_shape(_take_last(w, x, axis, True), axis, ind.shape)]
        raise UnsupportedOpError(f"Gather of step {i} along the time axis: only the last step (-1)" + _UNROLLED)
    if x.roles[axis] == "B":
        if x.shape[axis] == 1 and i in (0, -1):
            return [_as_index_shape(x, axis, ind.shape)]
        raise UnsupportedOpError("Gather along the batch axis")
    return [_as_index_shape(_slice_f(w, x, axis, i, i + 1 if i != -1 else 2**31 - 1, 1), axis, ind.shape)]


def op_scatternd(w: DagWalk, node: Node, ins: list) -> list:
    """ScatterND with constant indices that name a box of the data (a range per axis, listed in
    row-major order; PyTorch's `cache[..., a:b, :] = x` as exported, gtcrn's 18 cache writes): the
    data with the box replaced by the updates, as Slices of the data around it and Concats."""
    data, idx, upd = ins[0], ins[1], ins[2]
    if node.str_attr("reduction", "none") != "none":
        raise node.refuse_attr("reduction", node.str_attr("reduction", "none"), "none")
    if isinstance(idx, Flow):
        raise UnsupportedOpError("ScatterND with data-dependent indices")
    if not isinstance(data, Flow) or not isinstance(upd, Flow):
        raise UnsupportedOpError(f"ScatterND of {_describe(upd)} into a {_describe(data)}: only data into data")
    ind = np.asarray(floats_of(idx, "input indices")).astype(np.int64)
    q, r = int(ind.shape[-1]) if ind.ndim else 0, len(data.roles)
    if ind.ndim < 1 or not 1 <= q <= r:
        raise ConvertError(f"ScatterND indices of shape {list(ind.shape)} for data of rank {r}")
    dims = [int(d) if isinstance(d, int) else None for d in data.shape]
    pts = ind.reshape(-1, q)
    box: list[tuple[int, int]] = []
    for a in range(q):
        n = dims[a]
        col = pts[:, a] + (n if n is not None else 0) * (pts[:, a] < 0)
        lo, hi = int(col.min()), int(col.max()) + 1
        box.append((lo, hi))
    box += [(0, d) if d is not None else (0, 2**31 - 1) for d in dims[q:]]
    sizes = [hi - lo for lo, hi in box[:q]]
    grid = np.stack(np.meshgrid(*[np.arange(lo, hi) for lo, hi in box[:q]], indexing="ij"), -1).reshape(-1, q)
    norm = np.where(pts < 0, pts + np.array([d or 0 for d in dims[:q]]), pts)
    if norm.shape != grid.shape or not np.array_equal(norm, grid):
        raise UnsupportedOpError(f"ScatterND of {len(pts)} index tuples that are not one box of the data "
                                 f"[{data.layout()}] in row-major order (only a write of a range per axis: "
                                 "x[a:b, c:d] = u)")
    for a, (lo, hi) in enumerate(box):
        if data.roles[a] != "F" and (lo != 0 or hi != (dims[a] or 2**31 - 1)):
            raise UnsupportedOpError(f"ScatterND into part of the {_role_name(data.roles[a])} axis of "
                                     f"[{data.layout()}]")
    shape = tuple(sizes) + tuple(data.shape[q:])
    want = _features(tuple(int(d) for d, rl in zip(shape, data.roles) if rl == "F"))
    if any(rl != "F" and d != 1 for rl, d in zip(upd.roles, upd.shape) if rl not in data.roles) or \
            _features(upd.step_shape) != want or w.values[upd.value].last != w.values[data.value].last:
        raise UnsupportedOpError(f"ScatterND updates [{upd.layout()}] for a box {list(shape)} of [{data.layout()}]")
    update = Flow(upd.value, data.roles, shape)  # type: ignore[arg-type]
    return [_write_box(w, data, update, box)]


def _write_box(w: DagWalk, data: Flow, upd: Flow, box: list[tuple[int, int]]) -> Flow:
    """data with its box (a range per axis) replaced by upd (shaped as the box)."""
    part = next((a for a, (lo, hi) in enumerate(box) if data.roles[a] == "F" and (lo, hi) != (0, int(data.shape[a]))),
                None)  # type: ignore[arg-type]
    if part is None:
        return upd
    lo, hi = box[part]
    n = int(data.shape[part])  # type: ignore[arg-type]
    inner = box[:part] + [(0, hi - lo)] + box[part + 1 :]
    middle = _write_box(w, _slice_f(w, data, part, lo, hi, 1), upd, inner)
    pieces = ([_slice_f(w, data, part, 0, lo, 1)] if lo else []) + [middle] + (
        [_slice_f(w, data, part, hi, n, 1)] if hi < n else [])
    return _concat(w, pieces, part)


def _as_index_shape(y: Flow, axis: int, shape: tuple[int, ...]) -> Flow:
    """y (axis `axis` of size prod(shape)) with that axis replaced by axes `shape`, as Gather's
    output puts the indices' shape there: per-step axes of their own (none for a scalar index;
    a time or batch axis of one element gathered stays that axis for a 1-D index)."""
    if len(shape) == 1:
        return y
    roles = y.roles[:axis] + ("F",) * len(shape) + y.roles[axis + 1 :]
    return Flow(y.value, roles, y.shape[:axis] + tuple(int(d) for d in shape) + y.shape[axis + 1 :])


def _gather_f(w: DagWalk, x: Flow, axis: int, ind: np.ndarray) -> Flow:
    """Gather of constant indices `ind` (any shape) along feature axis `axis`: the runs of
    consecutive indices as Slices joined by Concat (gtcrn's nn.Unfold of 3 shifted windows), or a
    0/1 Dense along the last axis when there are more than PICK_SLICES runs."""
    if x.roles[axis] != "F":
        raise UnsupportedOpError(f"Gather of {ind.size} indices along the {_role_name(x.roles[axis])} axis: only "
                                 "one index there")
    n = int(x.shape[axis])  # type: ignore[arg-type]
    flat = [int(i) for i in ind.ravel()]
    bad = [i for i in flat if not -n <= i < n]
    if bad:
        raise ConvertError(f"Gather index {bad[0]} out of range for an axis of {n}")
    flat = [i + n if i < 0 else i for i in flat]
    runs: list[list[int]] = [[flat[0]]]
    for i in flat[1:]:
        if i == runs[-1][-1] + 1:
            runs[-1].append(i)
        else:
            runs.append([i])
    if len(runs) <= PICK_SLICES:
        y = _concat(w, [_slice_f(w, x, axis, r[0], r[-1] + 1, 1) for r in runs], axis)
    elif axis == len(x.roles) - 1:
        y = _pick(w, x, flat, "Gather")
    else:
        raise UnsupportedOpError(f"Gather of {ind.size} indices in {len(runs)} runs along a feature axis that is "
                                 f"not the last: up to {PICK_SLICES} runs of consecutive indices, or along "
                                 "the last axis")
    return _as_index_shape(y, axis, ind.shape)


def _act(w: DagWalk, x: Flow, act: Act) -> Flow:
    v = w.last_axis(x, act.kind) if act.kind in ("Softmax", "LogSoftmax") else x.value
    shape = w.values[v].shape
    out = w.add(Activation(act, _features(shape)), [v], [shape], w.node.name if w.node else act.kind)[0]
    return Flow(out, x.roles, x.shape)  # type: ignore[arg-type]


def op_activation(w: DagWalk, node: Node, ins: list) -> list:
    x = _flow(ins)
    if node.op in UNARY_ACTS:
        return [_act(w, x, Act.make(node.op))]
    return [_act(w, x, heads.ACT_OPS[node.op](node, ins))]


def op_softmax(w: DagWalk, node: Node, ins: list) -> list:
    x = _flow(ins)
    axis = _axis(node.int_attr("axis", -1 if node.opset >= 13 else 1), len(x.roles), f"{node.op} axis")
    if axis != len(x.roles) - 1 or x.roles[axis] != "F":
        raise UnsupportedOpError(f"{node.op} over axis {axis} of [{x.layout()}]: only over the last axis of a step")
    if node.opset < 13 and axis != len(x.roles) - 1:  # pragma: no cover - refused above
        raise UnsupportedOpError(f"{node.op} (opset < 13) flattens from axis {axis}")
    return [_act(w, x, Act.make(node.op))]


def op_layer_norm(w: DagWalk, node: Node, ins: list) -> list:
    x = _flow(ins)
    axis = node.int_attr("axis", -1)
    if _axis(axis, len(x.roles), "LayerNormalization axis") != len(x.roles) - 1:
        raise node.refuse_attr("axis", axis, "-1 (the last axis)")
    v = w.last_axis(x, "LayerNormalization")
    f = w.values[v].shape[-1]
    gamma = np.broadcast_to(floats_of(ins[1], "scale").reshape(-1), (f,))
    beta = None if len(ins) < 3 or ins[2] is None else np.broadcast_to(floats_of(ins[2], "bias").reshape(-1), (f,))
    layer = LayerNorm(np.ascontiguousarray(gamma, np.float32),
                      None if beta is None else np.ascontiguousarray(beta, np.float32),
                      node.float_attr("epsilon", 1e-5))
    out = w.add(layer, [v], [w.values[v].shape], node.name)[0]
    return [Flow(out, x.roles, x.shape)]  # type: ignore[arg-type]


def _bcast_roles(a: Flow | None, ash: tuple, b: Flow | None, bsh: tuple) -> tuple[tuple[str, ...], tuple[Dim, ...]]:
    n = max(len(ash), len(bsh))
    roles, shape = [], []
    for j in range(n):
        ra = a.roles[j - (n - len(ash))] if a is not None and j >= n - len(ash) else None
        rb = b.roles[j - (n - len(bsh))] if b is not None and j >= n - len(bsh) else None
        da = ash[j - (n - len(ash))] if j >= n - len(ash) else 1
        db = bsh[j - (n - len(bsh))] if j >= n - len(bsh) else 1
        role = next((r for r in (ra, rb) if r not in (None, "F")), "F")
        if ra not in (None, "F") and rb not in (None, "F") and ra != rb:
            raise UnsupportedOpError("the two operands' time and batch axes do not line up")
        for r, d in ((ra, da), (rb, db)):
            if role != "F" and r == "F" and d != 1:
                raise UnsupportedOpError(f"an operand varies along the {_role_name(role)} axis "
                                         "of the other in a way rnnedge cannot broadcast per step")
        roles.append(role)
        if da == 1:
            shape.append(db)
        elif db == 1 or da == db:
            shape.append(da)
        else:
            raise ConvertError(f"operand shapes {shape_str(ash)} and {shape_str(bsh)} do not broadcast")
    return tuple(roles), tuple(shape)


def _operand_shape(roles: tuple[str, ...], f: tuple, fr: tuple[str, ...] | None) -> tuple[int, ...]:
    """An operand's per-step shape in the output's frame: its size on each output feature axis."""
    n = len(roles)
    out = []
    for j in range(n):
        if roles[j] != "F":
            continue
        k = j - (n - len(f))
        out.append(int(f[k]) if k >= 0 else 1)
    return tuple(out) or (1,)


def _binary(w: DagWalk, kind: str, a: object, b: object) -> Flow:
    fa = a if isinstance(a, Flow) else None
    fb = b if isinstance(b, Flow) else None
    ca = None if fa else floats_of(a, "the constant operand", np.float32)
    cb = None if fb else floats_of(b, "the constant operand", np.float32)
    ash = fa.shape if fa else tuple(ca.shape)  # type: ignore[union-attr]
    bsh = fb.shape if fb else tuple(cb.shape)  # type: ignore[union-attr]
    roles, shape = _bcast_roles(fa, ash, fb, bsh)
    y = Flow(0, roles, shape)
    name = w.node.name if w.node else kind
    if fa is not None and fb is not None:
        if w.values[fa.value].last != w.values[fb.value].last:
            raise UnsupportedOpError(f"{kind} of a whole-sequence tensor and a last-step one")
        va = w.loose(fa, _operand_shape(roles, fa.shape, fa.roles))
        vb = w.loose(fb, _operand_shape(roles, fb.shape, fb.roles))
        shape = np.broadcast_shapes(w.values[va].shape, w.values[vb].shape)
        v = w.add(Binary(kind), [va, vb], [tuple(int(d) for d in shape)], name)[0]
        return replace(y, value=v)
    x, c, left = (fa, cb, False) if fa is not None else (fb, ca, True)
    assert x is not None and c is not None
    left = left and kind not in ("Add", "Mul", "Min", "Max")  # commutative: the constant goes right
    # the constant over the output's feature axes (time and batch axes must be 1 in it)
    n = len(roles)
    full = c.reshape((1,) * (n - c.ndim) + c.shape)
    if any(full.shape[j] != 1 for j in range(n) if roles[j] != "F"):
        raise UnsupportedOpError("a constant operand that varies over time or batch")
    per = full.reshape(tuple(full.shape[j] for j in range(n) if roles[j] == "F") or (1,))
    xv = w.loose(x, _operand_shape(roles, x.shape, x.roles))
    if per.size == 1:
        s = float(per.ravel()[0])
        act = None
        if kind == "Add":
            act = Act.make("Affine", 1.0, s)
        elif kind == "Sub":
            act = Act.make("Affine", -1.0, s) if left else Act.make("Affine", 1.0, -s)
        elif kind == "Mul":
            act = Act.make("Affine", s, 0.0)
        elif kind == "Div" and not left and s != 0:
            act = Act.make("Affine", 1.0 / s, 0.0) if (1.0 / s) * s == 1.0 else None
        elif kind == "Pow" and not left:
            act = Act.make("Pow", s)
        elif kind == "Max":
            act = Act.make("Clip", s, math.inf)
        elif kind == "Min":
            act = Act.make("Clip", -math.inf, s)
        if act is not None and _same(w.values[xv].shape, y.step_shape):
            if act == Act.make("Affine", 1.0, 0.0):  # x + 0, x * 1 (op15 Silero's state + a folded 0)
                return replace(y, value=xv)
            v = w.add(Activation(act, _features(y.step_shape)), [xv], [w.values[xv].shape], name)[0]
            return replace(y, value=v)
    k = len(y.step_shape)
    per = per.reshape((1,) * (k - per.ndim) + per.shape) if per.ndim < k else per
    shape = tuple(int(d) for d in np.broadcast_shapes(w.values[xv].shape, per.shape))
    v = w.add(Binary(kind, np.ascontiguousarray(per, np.float32), left), [xv], [shape], name)[0]
    return replace(y, value=v)


def op_binary(w: DagWalk, node: Node, ins: list) -> list:
    live = [v for v in ins if v is not None]
    if node.op in ("Min", "Max") and len(live) != 2:
        if len(live) == 1:
            return [live[0]]
        acc = live[0]
        for v in live[1:]:
            acc = _binary(w, node.op, acc, v)
        return [acc]
    return [_binary(w, node.op, ins[0], ins[1])]


def op_reduce(w: DagWalk, node: Node, ins: list) -> list:
    x = _flow(ins)
    axes = ints_arg(node, ins, 1, "axes")
    if not axes:
        if node.int_attr("noop_with_empty_axes", 0):
            return [x]
        raise UnsupportedOpError(f"{node.op} over every axis of [{x.layout()}] (time and batch included)")
    axes = sorted(_axis(a, len(x.roles), f"{node.op} axes") for a in axes)
    ks = tuple(_f_index(x, a, node.op) for a in axes)
    keep = bool(node.int_attr("keepdims", 1))
    roles = tuple(r for i, r in enumerate(x.roles) if keep or i not in axes)
    shape = tuple((1 if i in axes else d) for i, d in enumerate(x.shape) if keep or i not in axes)
    y = Flow(0, roles, shape)
    v = w.add(Reduce(REDUCE_OPS[node.op], ks), [w.shaped(x)], [y.step_shape], node.name)[0]
    return [replace(y, value=v)]


def op_where(w: DagWalk, node: Node, ins: list) -> list:
    cond, a, b = ins
    if isinstance(cond, Flow):
        raise UnsupportedOpError("Where with a condition computed from the data: only a constant condition")
    m = np.asarray(const_bool(cond))
    if m.all() and isinstance(a, Flow) and m.ndim <= len(a.shape):
        return [a]
    if not m.any() and isinstance(b, Flow) and m.ndim <= len(b.shape):
        return [b]
    return [_sel(w, m, a, b)]


def const_bool(v: object) -> np.ndarray:
    if not isinstance(v, Const):
        raise UnsupportedOpError(f"Where with a condition that is a {_describe(v)}")
    return np.asarray(v.array).astype(bool)


def _sel(w: DagWalk, m: np.ndarray, a: object, b: object) -> Flow:
    """where(m, a, b) = a * m + b * (1 - m) for a constant mask m."""
    mf = m.astype(np.float32)
    terms = []
    for v, mask in ((a, mf), (b, 1.0 - mf)):
        if isinstance(v, Flow):
            terms.append(_binary(w, "Mul", v, Const(mask)) if not np.all(mask == 1) else v)
        else:
            terms.append(Const(floats_of(v, "a Where operand", np.float32) * mask))
    fa, fb = terms
    if isinstance(fa, Const) and isinstance(fb, Const):  # pragma: no cover - Where folds when nothing is data
        raise ConvertError("internal: a constant Where on the data path")
    return _binary(w, "Add", fa, fb)


OPS: dict[str, OpFn] = {
    "LSTM": op_recurrent, "GRU": op_recurrent, "RNN": op_recurrent,
    "Gemm": op_gemm, "MatMul": op_matmul,
    **{op: op_binary for op in BINARY_OPS},
    **{op: op_activation for op in list(heads.ACT_OPS) + list(UNARY_ACTS)},
    "Softmax": op_softmax, "LogSoftmax": op_softmax,
    "LayerNormalization": op_layer_norm,
    **{op: op_reduce for op in REDUCE_OPS},
    "Concat": op_concat, "Split": op_split, "Slice": op_slice, "Transpose": op_transpose,
    "Reshape": op_reshape, "Flatten": op_flatten, "Squeeze": op_squeeze, "Unsqueeze": op_unsqueeze,
    "Identity": op_identity, "Dropout": op_identity, "Cast": op_identity,
    "Gather": op_gather, "ScatterND": op_scatternd, "Where": op_where, "ReverseSequence": op_reverse_sequence,
    "Expand": op_expand,
}  # fmt: skip  # conv.py adds Conv, ConvTranspose, Pad, BatchNormalization, PRelu, Gelu, HardSwish


def _guesses(info: onnx.ValueInfoProto, stepwise: bool, label: str) -> list[str]:
    dims = info.type.tensor_type.shape.dim
    elem = info.type.tensor_type.elem_type
    ids = elem in (onnx.TensorProto.INT64, onnx.TensorProto.INT32)
    hints = [_role_hint(d.dim_param) for d in dims]
    n = len(dims)
    if ids:
        if n == 1:
            return ["B"] if stepwise else ["T"]
        if n == 2:
            return ["TB", "BT"] if hints[0] == "T" or hints[1] == "B" else ["BT", "TB"]
        raise ConvertError(f"{label}: id input {info.name!r} has {n} axes; expected [T, B], [B, T] or [T]")
    if n == 2:  # a step function's [B, F] window, or [T, F] steps (a recurrent node tells)
        if stepwise:
            return ["TF", "BF"] if hints[0] == "T" else ["BF", "TF"]
        return ["TF", "BF"]
    if n == 3:
        if stepwise:
            return ["TBF", "BTF", "FBF", "BFF"]
        return ["TBF", "BTF"] if hints[0] == "T" or hints[1] == "B" else ["BTF", "TBF"]
    if n == 1:
        return ["F"]
    if 4 <= n <= 2 + MAX_STEP_AXES:  # several per-step axes (gtcrn's step input [1, 257, 1, 2]: batch, 3 F)
        seq = ["TB", "BT"] if hints[0] == "T" or hints[1] == "B" else ["BT", "TB"]
        guesses = [g + "F" * (n - 2) for g in seq]
        return (["B" + "F" * (n - 1)] if stepwise and n - 1 <= MAX_STEP_AXES else []) + guesses
    raise ConvertError(f"{label}: input {info.name!r} has {n} axes; rnnedge takes [batch, time, features], "
                       "[time, batch, features], [time, features] or, for a step function, [batch, features], "
                       f"each with up to {MAX_STEP_AXES} feature axes")


def to_graph(model: str | os.PathLike | onnx.ModelProto, name: str | None = None,
             fixed: Mapping[str, FixedValue] | None = None,
             state: Mapping[str, str] | None = None,
             inputs: Mapping[str, str] | None = None) -> Graph:
    """Convert an ONNX model into a float dataflow graph (docs/graph.md, docs/converter.md).

    fixed: graph inputs made constants first (as `to_network`). state: {input: output} pairs
    of a step function's state (others are found by name, then by shape). inputs: the signal
    input's axes, {"input": "T,576"} (converter/inputs.py), instead of the guesses. Raises
    ConvertError (UnsupportedOpError for ops rnnedge does not run) naming the file, node and value
    at fault; InputError for a `fixed`, `state` or `inputs` name that is not in the graph.
    """
    loaded, given = set_input_axes(load_model(model), inputs)
    loaded = fix_inputs(loaded, fixed)
    graph = loaded.model.graph
    pairing = pair_states(graph, loaded.label, state)
    for other in given.keys() - {pairing.signal.name}:
        raise InputError(f"{loaded.label}: input axes are given for {other!r}, which is not the signal input "
                         f"(that is {pairing.signal.name!r}; the others are state pairs or fixed)")
    for info in [pairing.signal] + [p[0] for p in pairing.pairs]:
        _check_static_sizes(info, loaded.label)
    nodes = _topological(graph)
    needed = _needed(nodes, [pairing.output] + [p[1] for p in pairing.pairs])
    for i in needed:
        if nodes[i].op_type in UNROLLED_OPS and nodes[i].op_type != "Loop":  # a Loop: op_loop
            raise UnsupportedOpError(
                f"{loaded.label}: node {nodes[i].name!r} (op {nodes[i].op_type}): found an unrolled "
                f"recurrent net: a {nodes[i].op_type} that iterates over the sequence; {HOW_TO_EXPORT}; "
                "or export one step as a step function forward(x_t, state) -> (y_t, next_state)"
            )
    errors: list[tuple[int, ConvertError]] = []
    guesses = [given[pairing.signal.name]] if given else _guesses(pairing.signal, bool(pairing.pairs), loaded.label)
    for axes in guesses:
        walk = DagWalk(loaded, pairing, axes)
        try:
            g = walk.run()
        except LayoutMismatch as e:
            errors.append((walk.progress, e))
            continue
        except ConvertError as e:
            errors.append((walk.progress + 1, e))
            continue
        g.name = name or loaded.stem or graph.name or "model"
        g.folded += loaded.notes
        return g
    raise max(errors, key=lambda pe: pe[0])[1]


__all__ = ["CacheSlice", "Flow", "name_pair", "pair_states", "to_graph"]
