"""The ONNX `Loop` that tf2onnx writes for a Keras GRU (reset_after True or False) or SimpleRNN
-> the native GRU / RNN cell (a Recurrent layer), or a refusal naming what does not match.

tf2onnx (1.17, Keras 3) turns the layer's `while` loop into a Loop whose body reads step i of the
time-major input (a Gather of an outer tensor at the loop's step counter), computes the cell from
the state carried in the loop and the kernel / recurrent kernel / bias carried as constants, and
writes the new state both to the carried state and to the one scan output ([T, B, H]).

The body is evaluated here symbolically: every tensor is a constant (folded as the graph's
constants are), an affine map of the step's frame x, the state h and products of gates
(`Affine`: a matrix per source and a bias), or a gate (`Gate`: an activation, a product, a
difference of such terms). The cell is then read off the state's new value:

    SimpleRNN                  h' = f(x Wx + h Rh + b)
    GRU (z, r, hh)             h' = z * h + (1 - z) * hh,   z = f(x Wz + h Rz + bz), r likewise
      reset_after=True         hh = g(x Wh + bxh + r * (h Rh + bhh))      (ONNX linear_before_reset=1)
      reset_after=False        hh = g(x Wh + (r * h) Rh + bh)             (ONNX linear_before_reset=0)
    LSTM (two carried states,  c' = f * c + i * g,  h' = o * k(c'),  i, o, f = a(x W. + h R. + b.),
      h the scan output)       g = b(x Wg + h Rg + bg)

which are exactly ONNX's RNN, GRU (gates z, r, h) and LSTM (gates i, o, f, c; activations a, b,
k) with the matched weights; k may be Keras 2's hard sigmoid of c' spelled out (HardSigmoid 0.2,
0.5), as may a, b be. f may be a hard
sigmoid spelled out: Keras 3's relu6(x + 3) / 6 (a Clip to [0, 6] times 1/6) or Keras 2's
clip(0.2 x + 0.5, 0, 1) (Mul, Add, Min, Max). The counters are checked by running them: the loop
visits steps 0 .. T-1 in order for every length T. The scan output is the layer's output, the
carried state's final value its Y_h (Keras return_state). Anything else is refused by name (the
Loop node and what did not match), with the advice to convert the Keras model file directly
(docs/keras.md).

A Keras Bidirectional is two such Loops, the second over the reversed input, joined by a Concat
or an Add: `join_directions` (called by graph.Walk for those two ops) makes them one
bidirectional layer; joined by a Mul (merge_mode "mul"), that layer and the product of its two
halves (keras.MulHalves: the model becomes a dataflow graph, as the Keras reader makes it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Protocol, Union

import numpy as np
import onnx
from onnx import helper

from ..errors import ConvertError, RnnedgeError, UnsupportedOpError
from ..ir.layers import Act, Dense, Recurrent, TakeLast
from .fold import fold_constant
from .heads import ACT_OPS
from .keras import MulHalves
from .node import Node
from .values import Const, Data, Filled, Sym, SymInts, Value, describe

ADVICE = (
    "convert the Keras model file (.keras or .h5) directly instead: rnnedge convert model.keras "
    "(docs/keras.md)"
)
TEST_LENGTHS = (1, 2, 3, 8)  # the sequence lengths the loop's counters are run for


class NotTheCell(Exception):
    """The body is not the cell this module recognises (the reason is the message)."""


class LoopNotACell(UnsupportedOpError):
    """A Loop over the data that is not tf2onnx's form of a Keras GRU or SimpleRNN: the reason
    names what did not match (rnnedge.convert reports it rather than the graph converter's
    refusal of every Loop)."""


@dataclass(eq=False)
class Leaf:
    """The step's input frame x [B, F] or the carried state h [B, H]."""

    name: str
    width: int


@dataclass(eq=False)
class Gate:
    """A non-affine term: op is an Act (an activation of one term), "Mul" or "Sub" (of two)."""

    op: Union[Act, str]
    args: tuple["Term", ...]
    width: int


@dataclass(eq=False)
class Affine:
    """sum over sources s of s @ maps[s], plus bias (a source is a Leaf or a Gate)."""

    maps: dict[Union[Leaf, Gate], np.ndarray] = field(default_factory=dict)
    bias: np.ndarray | None = None

    @property
    def width(self) -> int:
        m = next(iter(self.maps.values()), self.bias)
        assert m is not None
        return int(m.shape[-1])


@dataclass(eq=False)
class Counter:
    """A scalar the body computes from the loop's counters (a step index, a length): followed by
    running it (`_run_counters`), not symbolically."""


Term = Union[Leaf, Gate, Affine]
Symbolic = Union[Term, Counter, Const, Data]


def _as_affine(t: Term) -> Affine:
    if isinstance(t, Affine):
        return t
    return Affine({t: np.eye(t.width, dtype=np.float32)})


def _is_leaf(t: object, leaf: Leaf) -> bool:
    """t is the leaf itself (or the identity map of it)."""
    if t is leaf:
        return True
    return (isinstance(t, Affine) and list(t.maps) == [leaf] and t.bias is None
            and np.array_equal(t.maps[leaf], np.eye(leaf.width)))  # fmt: skip


def _columns(t: Affine, start: int, stop: int) -> Affine:
    return Affine({s: m[:, start:stop] for s, m in t.maps.items()},
                  None if t.bias is None else t.bias[start:stop])  # fmt: skip


def _add(a: Affine, b: Affine) -> Affine:
    maps = dict(a.maps)
    for s, m in b.maps.items():
        if s in maps:
            raise NotTheCell("a source enters one sum twice")
        maps[s] = m
    bias = a.bias if b.bias is None else b.bias if a.bias is None else a.bias + b.bias
    return Affine(maps, bias)


class _Body:
    """One symbolic pass over a Loop body."""

    def __init__(self, node: Node, ins: list[Value | None], outer: dict[str, Value | None], opset: int) -> None:
        self.node, self.ins, self.outer, self.opset = node, ins, outer, opset
        body = node.attr("body")
        if not isinstance(body, onnx.GraphProto):
            raise NotTheCell("the Loop has no body graph")
        self.body = body
        self.env: dict[str, Symbolic] = {}
        self.frame: Leaf | None = None
        self.data: Data | None = None
        self.state: Leaf | None = None
        self.cell: Leaf | None = None  # a second carried state (an LSTM's c; which is h, the scan output says)
        self.index_slot: int | None = None  # the carried slot the frame is gathered at
        self.state_slot = -1  # the carried slot of the state
        self.cell_slot = -1  # the carried slot of the second state
        self.initial: np.ndarray | None = None  # the state's initial value [H], None: zeros
        self.initial_cell: np.ndarray | None = None

    def run(self) -> None:
        b, ins = self.body, self.ins
        carried = len(ins) - 2
        if len(b.input) != carried + 2 or len(b.output) != carried + 2:
            raise NotTheCell(f"a body of {len(b.input)} inputs and {len(b.output)} outputs for "
                             f"{carried} carried values and one scan output")  # fmt: skip
        for t in b.initializer:
            self.env[t.name] = Const(onnx.numpy_helper.to_array(t))
        self.env[b.input[0].name] = Counter()
        self.env[b.input[1].name] = Counter()
        for j in range(carried):
            v = ins[2 + j]
            name = b.input[2 + j].name
            if isinstance(v, Const) and v.array.ndim >= 1 and v.array.dtype.kind == "f" and _passes(b, j):
                self.env[name] = v  # the weights, carried unchanged
            elif isinstance(v, (Filled, Const)) and len(_shape(v)) == 2 and _is_float(v):
                if self.cell is not None:
                    raise NotTheCell("three carried tensors could be the state")
                width = _shape(v)[1]
                if not isinstance(width, int):
                    raise NotTheCell("the state's width is not fixed")
                if self.state is None:
                    self.initial = _initial_state(v, width)
                    self.state = Leaf("h", width)
                    self.state_slot = j
                    self.env[name] = self.state
                else:  # an LSTM's h and c: op_loop tells them apart by the scan output
                    self.initial_cell = _initial_state(v, width)
                    self.cell = Leaf("c", width)
                    self.cell_slot = j
                    self.env[name] = self.cell
            else:
                self.env[name] = Counter()
        if self.state is None:
            raise NotTheCell("no carried tensor is a zero initial state [batch, units]")
        for i, proto in enumerate(_ordered(b, set(self.env) | set(self.outer))):
            self.eval(Node(proto, i, self.opset))

    def value(self, name: str) -> Symbolic | None:
        if not name:
            return None
        if name in self.env:
            return self.env[name]
        v = self.outer.get(name)
        if isinstance(v, Data):
            return v
        if isinstance(v, Const):
            return v
        if isinstance(v, (SymInts, Filled)) or v is None:
            return Counter()
        raise NotTheCell(f"the body reads the outer {describe(v)} {name!r}")

    def eval(self, node: Node) -> None:
        args = [self.value(n) for n in node.proto.input]
        outs = self.apply(node, args)
        for name, v in zip(node.proto.output, outs):
            if name:
                self.env[name] = v

    def apply(self, node: Node, args: list[Symbolic | None]) -> list[Symbolic]:
        op = node.op
        where = f"{op} {node.name!r} in the body"
        live = [a for a in args if a is not None]
        if node.proto.domain not in ("", "ai.onnx"):
            raise NotTheCell(f"{where} is not an ONNX op")
        if live and all(isinstance(a, Const) for a in live):
            return list(fold_constant(node, args))  # type: ignore[arg-type]
        if any(isinstance(a, Counter) for a in live):
            if any(isinstance(a, (Leaf, Gate, Affine, Data)) for a in live) and op != "Gather":
                raise NotTheCell(f"{where} mixes the loop's counters with the cell's tensors")
            if op != "Gather":
                return [Counter() for _ in node.proto.output]
        if op == "Gather":
            return [self.gather(node, args, where)]
        if op in ("Identity", "Cast") and isinstance(args[0], (Leaf, Gate, Affine)):
            if op == "Cast" and node.int_attr("to", 1) != onnx.TensorProto.FLOAT:
                raise NotTheCell(f"{where} casts the cell's float values")
            return [args[0]]
        if op == "MatMul":
            return [_matmul(args[0], args[1], False, where)]
        if op == "Gemm":  # alpha A B' + beta C (tf2onnx fuses MatMul and bias when shapes are fixed)
            if node.int_attr("transA", 0):
                raise NotTheCell(f"{where} transposes the cell's values")
            y = _matmul(args[0], args[1], bool(node.int_attr("transB", 0)), where)
            alpha, beta = node.float_attr("alpha", 1.0), node.float_attr("beta", 1.0)
            if alpha != 1:
                y = self.scale([Const(np.float32(alpha)), y], where)  # type: ignore[assignment]
            c = args[2] if len(args) > 2 else None
            if c is None:
                return [y]
            if not isinstance(c, Const):
                raise NotTheCell(f"{where} adds {_what(c)}, not a constant bias")
            return [_add_bias(y, c.array.astype(np.float32) * np.float32(beta), where)]
        if op == "Add":
            a, b = args
            if isinstance(b, Const):
                a, b = b, a
            if isinstance(a, Const) and isinstance(b, (Leaf, Gate, Affine)):
                return [_add_bias(b, a.array.astype(np.float32), where)]
            if isinstance(a, Affine) and isinstance(b, Affine):
                return [_add(a, b)]
            if isinstance(a, (Leaf, Gate, Affine)) and isinstance(b, (Leaf, Gate, Affine)):
                if isinstance(a, Gate) and isinstance(b, Gate):
                    return [Gate("Add", (a, b), a.width)]
                return [_add(_as_affine(a), _as_affine(b))]
        if op == "Mul" and len(live) == 2 and any(isinstance(a, Const) for a in args):
            return [self.scale(args, where)]
        if op in ("Min", "Max") and len(live) == 2:
            return [self.bound(op, args, where)]
        if op in ("Mul", "Sub") and len(live) == 2:
            a, b = args
            if op == "Sub" and isinstance(a, Const) and isinstance(b, (Leaf, Gate, Affine)):
                if not np.all(a.array == 1):
                    raise NotTheCell(f"{where} subtracts from {a.array.ravel()[:4]}, not 1")
                return [Gate("Sub", (b,), b.width)]  # 1 - b
            if isinstance(a, (Leaf, Gate, Affine)) and isinstance(b, (Leaf, Gate, Affine)) and op == "Mul":
                if a.width != b.width:
                    raise NotTheCell(f"{where} multiplies widths {a.width} and {b.width}")
                return [Gate("Mul", (a, b), a.width)]
            raise NotTheCell(f"{where} is not a gate product or 1 - gate")
        if op in ACT_OPS and isinstance(args[0], (Leaf, Gate, Affine)):
            consts = [a if isinstance(a, Const) else None for a in args]
            act = ACT_OPS[op](node, consts)  # type: ignore[arg-type]
            return [Gate(act, (args[0],), args[0].width)]
        if op == "Slice" and isinstance(args[0], (Leaf, Gate, Affine)):
            return [self.slice(node, args, where)]
        if op == "Split" and isinstance(args[0], (Leaf, Gate, Affine)):
            return self.split(node, args, where)
        raise NotTheCell(f"{where} on {', '.join(_what(a) for a in args)} is not part of the cells "
                         "tf2onnx writes")  # fmt: skip

    def scale(self, args: list[Symbolic | None], where: str) -> Term:
        """A term times a constant: a weighted sum scaled (0.2 x of Keras 2's hard sigmoid), or a
        clip to [0, hi] times 1 / hi (Keras 3's relu6(x + 3) / 6): a hard sigmoid of alpha 1 / hi."""
        c, t = (args[0], args[1]) if isinstance(args[0], Const) else (args[1], args[0])
        assert isinstance(c, Const)
        k = c.array.astype(np.float32)
        if not isinstance(t, (Leaf, Gate, Affine)) or k.size not in (1, t.width) or (
                k.ndim > 1 and k.shape[:-1] != (1,) * (k.ndim - 1)):
            raise NotTheCell(f"{where} multiplies {_what(t)} by a {list(k.shape)} constant")
        k = k.reshape(-1)
        if isinstance(t, Gate) and isinstance(t.op, Act):
            act = t.op
            if (k.size == 1 and act.kind == "Clip" and act.alpha == 0
                    and 0 < act.beta < math.inf and abs(float(k[0]) * act.beta - 1) <= 1e-6):
                return Gate(Act.make("HardSigmoid", float(k[0]), 0.0), t.args, t.width)
            raise NotTheCell(f"{where} scales a gate (only a clip to [0, hi] by 1 / hi, a hard sigmoid)")
        # a sum of gated terms (an LSTM's new c) scaled: Keras 2's hard sigmoid of it, 0.2 c + 0.5
        a = _as_affine(t)
        return Affine({s: m * k for s, m in a.maps.items()}, None if a.bias is None else a.bias * k)

    def bound(self, op: str, args: list[Symbolic | None], where: str) -> Gate:
        """Min / Max of a term and a scalar constant: a Clip (merged with a Clip it bounds)."""
        c, t = (args[0], args[1]) if isinstance(args[0], Const) else (args[1], args[0])
        if not isinstance(c, Const) or c.array.size != 1 or not isinstance(t, (Leaf, Gate, Affine)):
            raise NotTheCell(f"{where} is not a bound of the cell's values by a scalar constant")
        v = float(c.array.ravel()[0])
        lo, hi, inner = -math.inf, math.inf, t
        if isinstance(t, Gate) and isinstance(t.op, Act) and t.op.kind == "Clip":
            lo, hi, inner = t.op.alpha, t.op.beta, t.args[0]
        lo, hi = (lo, min(hi, v)) if op == "Min" else (max(lo, v), hi)
        if lo > hi:
            raise NotTheCell(f"{where} bounds to the empty range [{lo}, {hi}]")
        return Gate(Act.make("Clip", lo, hi), (inner,), t.width)

    def gather(self, node: Node, args: list[Symbolic | None], where: str) -> Symbolic:
        data, index = args[0], args[1]
        if not isinstance(data, Data) or not isinstance(index, Counter) or node.int_attr("axis", 0) != 0:
            raise NotTheCell(f"{where} is not the read of one step of the input")
        if data.axes != (("T",), ("B",), ("F",)):
            raise NotTheCell(f"{where} reads steps of a [{data.layout()}] tensor, not time-major [T,B,F]")
        if data.taken:
            raise NotTheCell(f"{where} reads steps of a tensor whose last step was already taken")
        if self.frame is not None:
            raise NotTheCell(f"{where} reads the input a second time")
        name = node.proto.input[1]
        slots = [j for j, i in enumerate(self.body.input[2:]) if i.name == name]
        if not slots:
            raise NotTheCell(f"{where} reads the input at {name!r}, not at a carried step counter")
        self.index_slot = slots[0]
        self.data = data
        self.frame = Leaf("x", data.features)
        return self.frame

    def slice(self, node: Node, args: list[Symbolic | None], where: str) -> Affine:
        t = _as_affine(args[0])  # type: ignore[arg-type]
        if node.opset < 10:
            starts, ends = node.ints_attr("starts"), node.ints_attr("ends")
            axes = node.ints_attr("axes") or list(range(len(starts)))
            steps = [1] * len(starts)
        else:
            def ints(i: int) -> list[int] | None:
                a = args[i] if i < len(args) else None
                if a is None:
                    return None
                if not isinstance(a, Const):
                    raise NotTheCell(f"{where} has run-time bounds")
                return [int(v) for v in a.array.ravel()]

            starts, ends = ints(1) or [], ints(2) or []
            axes = ints(3) or list(range(len(starts)))
            steps = ints(4) or [1] * len(starts)
        cols = (0, t.width)
        for ax, s, e, st in zip(axes, starts, ends, steps):
            ax = ax + 2 if ax < 0 else ax
            if st != 1:
                raise NotTheCell(f"{where} slices with step {st}")
            if ax == 0:
                if s != 0 or e < 2**31 - 1:
                    raise NotTheCell(f"{where} slices the batch axis")
            elif ax == 1:
                cols = tuple(range(t.width)[s:e][i] for i in (0, -1)) if range(t.width)[s:e] else (0, -1)
                cols = (cols[0], cols[1] + 1)
                if cols[1] <= cols[0]:
                    raise NotTheCell(f"{where} takes no columns")
            else:
                raise NotTheCell(f"{where} slices axis {ax} of a [batch, units] tensor")
        return _columns(t, *cols)

    def split(self, node: Node, args: list[Symbolic | None], where: str) -> list[Symbolic]:
        t = _as_affine(args[0])  # type: ignore[arg-type]
        axis = node.int_attr("axis", 0)
        if axis not in (1, -1):
            raise NotTheCell(f"{where} splits axis {axis}, not the units")
        n = len(node.proto.output)
        sizes = node.ints_attr("split") if node.has("split") else None
        if len(args) > 1 and args[1] is not None:
            if not isinstance(args[1], Const):
                raise NotTheCell(f"{where} has run-time split sizes")
            sizes = [int(v) for v in args[1].array.ravel()]
        if not sizes:
            if t.width % n:
                raise NotTheCell(f"{where} splits {t.width} units in {n}")
            sizes = [t.width // n] * n
        if sum(sizes) != t.width or len(sizes) != n:
            raise NotTheCell(f"{where} splits {t.width} units as {sizes}")
        edges = np.cumsum([0, *sizes])
        return [_columns(t, int(a), int(b)) for a, b in zip(edges[:-1], edges[1:])]


def _matmul(a: Symbolic | None, w: Symbolic | None, trans: bool, where: str) -> Affine:
    """A term times a constant matrix (transposed first when `trans`)."""
    if not isinstance(w, Const) or w.array.ndim != 2 or not isinstance(a, (Leaf, Gate, Affine)):
        raise NotTheCell(f"{where} is not a product of the cell's values with a constant matrix")
    aa = _as_affine(a)
    m = w.array.astype(np.float32)
    m = m.T if trans else m
    if m.shape[0] != aa.width:
        raise NotTheCell(f"{where} multiplies a width {aa.width} by a {list(m.shape)} matrix")
    return Affine({s: mm @ m for s, mm in aa.maps.items()}, None if aa.bias is None else aa.bias @ m)


def _add_bias(t: Term, bias: np.ndarray, where: str) -> Affine:
    """t plus a constant: one value, or one per unit."""
    if bias.ndim > 1 and bias.shape[:-1] != (1,) * (bias.ndim - 1):
        raise NotTheCell(f"{where} adds a {list(bias.shape)} constant, not one per unit")
    bias = bias.reshape(-1)
    if bias.size not in (1, t.width):
        raise NotTheCell(f"{where} adds {bias.size} values to {t.width} units")
    return _add(_as_affine(t), Affine({}, np.broadcast_to(bias, (t.width,)).copy()))


def _shape(v: Value) -> tuple:
    return tuple(v.array.shape) if isinstance(v, Const) else tuple(v.shape)  # type: ignore[union-attr]


def _passes(b: onnx.GraphProto, j: int) -> bool:
    """Carried value j leaves the body as it came in (directly or through Identity nodes)."""
    producer = {o: n for n in b.node for o in n.output}
    name = b.output[1 + j].name
    while name in producer and producer[name].op_type == "Identity":
        name = producer[name].input[0]
    return name == b.input[2 + j].name


def _is_float(v: Value) -> bool:
    if isinstance(v, Const):
        return v.array.dtype.kind == "f"
    return isinstance(v, Filled) and isinstance(v.value, (int, float))


def _initial_state(v: Value, width: int) -> np.ndarray | None:
    """The carried state's initial value: None for zeros; one [H] row when every batch item starts
    from it (a stateful Keras model exports its state at that time as a constant)."""
    if isinstance(v, Filled):
        return None if v.value == 0 else np.full(width, float(v.value), np.float32)  # type: ignore[arg-type]
    a = v.array.astype(np.float32)  # type: ignore[union-attr]
    if not a.any():
        return None
    if not np.all(a == a[:1]):
        raise NotTheCell(f"the initial state is a {list(a.shape)} constant that differs between batch "
                         "items (a stateful model's state at export?), and rnnedge keeps one initial state "
                         "per layer: reset_states() before exporting, or set Stream.state")  # fmt: skip
    return np.ascontiguousarray(a[0])


def _what(a: object) -> str:
    if isinstance(a, Const):
        return f"a constant {list(a.array.shape)}"
    if isinstance(a, Leaf):
        return {"x": "the step's input", "h": "the state", "c": "the second state"}[a.name]
    return {Gate: "a gate", Affine: "a weighted sum", Counter: "a loop counter", Data: "the whole input"}.get(
        type(a), "nothing")


def _ordered(g: onnx.GraphProto, known: set[str]) -> list[onnx.NodeProto]:
    known = known | {""}
    pending, ordered = list(g.node), []
    while pending:
        rest = [n for n in pending if not all(i in known for i in n.input)]
        ready = [n for n in pending if all(i in known for i in n.input)]
        if not ready:
            raise NotTheCell("the body reads tensors that nothing produces")
        for n in ready:
            ordered.append(n)
            known.update(n.output)
        pending = rest
    return ordered


# -- the cells ------------------------------------------------------------------------------------


def _cell_act(act: Act) -> Act:
    """A clip to [0, 1] (Keras 2's hard sigmoid, 0.2 x + 0.5 clipped, its scale and shift in the
    weighted sum) is the hard sigmoid of alpha 1, beta 0; other activations as they are."""
    if act.kind == "Clip" and (act.alpha, act.beta) == (0.0, 1.0):
        return Act.make("HardSigmoid", 1.0, 0.0)
    return act


def _activated(t: object) -> object:
    """A weighted sum with no activation (Keras "linear") as the Identity activation of it."""
    return Gate(Act.make("Identity"), (t,), t.width) if isinstance(t, Affine) else t


def _gate_act(t: object, x: Leaf, h: Leaf | None, what: str) -> tuple[Act, Affine]:
    """t = act(x Wx + h Rh + b) (h optional): the activation and the sum."""
    t = _activated(t)
    if not isinstance(t, Gate) or not isinstance(t.op, Act):
        raise NotTheCell(f"{what} is not an activation of a weighted sum")
    s = t.args[0]
    if not isinstance(s, Affine) or x not in s.maps or set(s.maps) - {x, h}:
        raise NotTheCell(f"{what} is not an activation of the step's input and the state, weighted")
    return _cell_act(t.op), s


def _map(s: Affine, src: Union[Leaf, Gate], rows: int, width: int) -> np.ndarray:
    m = s.maps.get(src)
    return np.zeros((rows, width), np.float32) if m is None else m


def _bias(s: Affine, width: int) -> np.ndarray:
    return np.zeros(width, np.float32) if s.bias is None else s.bias.astype(np.float32)


def match_rnn(out: Term, x: Leaf, h: Leaf) -> Recurrent:
    act, s = _gate_act(out, x, h, "the new state")
    H = h.width
    return Recurrent(cell="rnn", direction="forward", W=_map(s, x, x.width, H).T[None].copy(),
                     R=_map(s, h, H, H).T[None].copy(),
                     B=np.concatenate([_bias(s, H), np.zeros(H, np.float32)])[None],
                     activations=[[act]])  # fmt: skip


def match_gru(out: Term, x: Leaf, h: Leaf) -> Recurrent:
    """h' = z * h + (1 - z) * hh, in either order of each product and of the sum."""
    if not isinstance(out, Gate) or out.op != "Add":
        raise NotTheCell("the new state is not a sum of two gated terms")
    z = hh = None
    for a, b in (out.args, out.args[::-1]):
        for p, q in ((a, b),):
            if not (isinstance(p, Gate) and p.op == "Mul" and isinstance(q, Gate) and q.op == "Mul"):
                continue
            for zz, hv in (p.args, p.args[::-1]):
                if not _is_leaf(hv, h):
                    continue
                for one_minus, cand in (q.args, q.args[::-1]):
                    if isinstance(one_minus, Gate) and one_minus.op == "Sub" and one_minus.args[0] is zz:
                        z, hh = zz, cand
    if z is None or hh is None:
        raise NotTheCell("the new state is not z * h + (1 - z) * hh")
    H = h.width
    f, sz = _gate_act(z, x, h, "the update gate z")
    hh = _activated(hh)
    if not isinstance(hh, Gate) or not isinstance(hh.op, Act):
        raise NotTheCell("the candidate hh is not an activation")
    g = _cell_act(hh.op)
    inner = hh.args[0]
    r: object = None
    # x Wh + bx plus one more source: (r * h) Rh (reset_after=False) or r * (h Rh + bh) (True)
    prods = [s for s in inner.maps if s is not x] if isinstance(inner, Affine) else []
    if not isinstance(inner, Affine) or x not in inner.maps or len(prods) != 1:
        raise NotTheCell("the candidate hh is not an activation of the weighted step's input plus "
                         "one gated state")  # fmt: skip
    p = prods[0]
    if not (isinstance(p, Gate) and p.op == "Mul"):
        raise NotTheCell("the candidate hh adds something other than a product with r")
    r = hs = None
    for a, b in (p.args, p.args[::-1]):
        if _is_leaf(b, h):
            r, hs = a, b
        elif isinstance(b, Affine) and set(b.maps) == {h} and r is None:
            r, hs = a, b
    if hs is None:
        raise NotTheCell("the candidate hh gates neither the state nor the weighted state")
    w_h, b_x = inner.maps[x], _bias(inner, H)
    lbr = not _is_leaf(hs, h)
    if lbr:  # r * (h Rh + bh), added as it is
        if not np.array_equal(inner.maps[p], np.eye(H)):
            raise NotTheCell("the candidate hh weighs r * (h Rh + bh) again")
        assert isinstance(hs, Affine)
        r_h, b_h = hs.maps[h], _bias(hs, H)
    else:
        r_h, b_h = inner.maps[p], np.zeros(H, np.float32)
    f_r, sr = _gate_act(r, x, h, "the reset gate r")
    if f_r != f:
        raise NotTheCell(f"the update gate's activation {f.kind} differs from the reset gate's {f_r.kind}")
    W = np.concatenate([_map(sz, x, x.width, H), _map(sr, x, x.width, H), w_h], axis=1).T
    R = np.concatenate([_map(sz, h, H, H), _map(sr, h, H, H), r_h], axis=1).T
    B = np.concatenate([_bias(sz, H), _bias(sr, H), b_x, np.zeros(2 * H, np.float32), b_h])
    if W.shape != (3 * H, x.width) or R.shape != (3 * H, H):
        raise NotTheCell(f"the gates' weights are {list(W.shape)} and {list(R.shape)}")
    return Recurrent(cell="gru", direction="forward", W=np.ascontiguousarray(W)[None],
                     R=np.ascontiguousarray(R)[None], B=B[None], activations=[[f, g]],
                     linear_before_reset=lbr)  # fmt: skip


def _of_state(t: object, c: object) -> Act:
    """t = act(c') for the new cell state c' (an LSTM's output activation): an activation of c'
    itself, or a hard sigmoid spelled out on it (a clip to [0, 1] of a c' + b, Keras 2's
    0.2 c' + 0.5; Keras 3's relu6(c' + 3) / 6): HardSigmoid(a, b)."""
    if t is c:
        return Act.make("Identity")  # Keras "linear"
    if not isinstance(t, Gate) or not isinstance(t.op, Act) or len(t.args) != 1:
        raise NotTheCell("the output is not the output gate times an activation of the new cell state")
    act, arg = _cell_act(t.op), t.args[0]
    if arg is c:
        return act
    if isinstance(arg, Affine) and list(arg.maps) == [c] and act.kind == "HardSigmoid":
        m, H = arg.maps[c], c.width  # type: ignore[union-attr]
        a = float(m[0, 0])
        b = 0.0 if arg.bias is None else float(arg.bias[0])
        if np.array_equal(m, a * np.eye(H, dtype=m.dtype)) and (arg.bias is None or np.all(arg.bias == b)):
            return Act.make("HardSigmoid", act.alpha * a, act.alpha * b + act.beta)
    raise NotTheCell("the output's activation of the new cell state is not one rnnedge reads")


def match_lstm(out: Term, c_new: object, x: Leaf, h: Leaf, c: Leaf) -> Recurrent:
    """c' = f * c + i * g, h' = o * act(c'), in either order of each product and of the sum:
    ONNX's LSTM (gates i, o, f, c; activations f for i, o, f, g for the candidate, h for c')."""
    if not isinstance(c_new, Gate) or c_new.op != "Add":
        raise NotTheCell("the new cell state is not a sum of two gated terms")
    f = i = g = None
    for p, q in (c_new.args, c_new.args[::-1]):
        if not (isinstance(p, Gate) and p.op == "Mul" and isinstance(q, Gate) and q.op == "Mul"):
            continue
        for ff, cc in (p.args, p.args[::-1]):
            if _is_leaf(cc, c) and not any(_is_leaf(a, c) for a in q.args):
                f, (i, g) = ff, q.args
    if f is None:
        raise NotTheCell("the new cell state is not f * c + i * g")
    if not (isinstance(out, Gate) and out.op == "Mul"):
        raise NotTheCell("the output is not the output gate times an activation of the new cell state")
    o = act_h = None
    for oo, t in (out.args, out.args[::-1]):
        try:
            act_h, o = _of_state(t, c_new), oo
            break
        except NotTheCell:
            continue
    if o is None or act_h is None:
        _of_state(out.args[1], c_new)  # the reason
    act_f, sf = _gate_act(f, x, h, "the forget gate f")
    act_o, so = _gate_act(o, x, h, "the output gate o")
    act_i, si = _gate_act(i, x, h, "the input gate i")
    act_g, sg = _gate_act(g, x, h, "the candidate g")
    if act_i != act_f and act_g == act_f:  # i * g in the other order
        (act_i, si), (act_g, sg) = (act_g, sg), (act_i, si)
    for what, a in (("input gate's", act_i), ("output gate's", act_o)):
        if a != act_f:
            raise NotTheCell(f"LSTM: the forget gate's activation {act_f.kind} differs from the {what} {a.kind}")
    H = h.width
    if c.width != H:
        raise NotTheCell(f"the cell state has {c.width} units, the state {H}")
    gates = (si, so, sf, sg)  # ONNX's order
    W = np.concatenate([_map(s, x, x.width, H) for s in gates], axis=1).T
    R = np.concatenate([_map(s, h, H, H) for s in gates], axis=1).T
    B = np.concatenate([_bias(s, H) for s in gates] + [np.zeros(4 * H, np.float32)])
    return Recurrent(cell="lstm", direction="forward", W=np.ascontiguousarray(W)[None],
                     R=np.ascontiguousarray(R)[None], B=B[None], activations=[[act_f, act_g, act_h]])


def _run_counters(ins: list[Value | None], body: _Body, opset: int) -> None:
    """Run the loop's counters (everything but the cell) for a few lengths T: the loop must run
    T steps (its trip count and condition) and read step k at step k."""
    b = body.body
    cell_names = {n for n, v in body.env.items() if isinstance(v, (Leaf, Gate, Affine))}
    for T in TEST_LENGTHS:
        def concrete(v: Value | None, what: str) -> np.ndarray:
            if isinstance(v, Const):
                return v.array
            if isinstance(v, SymInts):
                items = [d if isinstance(d, int) else _at(d, T) for d in v.items]
                return np.array(items, np.int64).reshape(v.shape)
            raise NotTheCell(f"{what} is {describe(v)}")

        trip = ins[0]  # absent (Keras 2's form): the condition alone ends the loop
        m = None if trip is None else int(concrete(trip, "the trip count").ravel()[0])
        cond = ins[1]
        if cond is not None and not bool(concrete(cond, "the initial condition").ravel()[0]):
            raise NotTheCell("the loop's initial condition is false")
        slots: dict[int, np.ndarray] = {}
        for j, v in enumerate(ins[2:]):
            if j not in (body.state_slot, body.cell_slot) and not isinstance(body.env[b.input[2 + j].name], Const):
                slots[j] = concrete(v, f"carried value {b.input[2 + j].name!r}").astype(_dtype(b.input[2 + j]))
        for k in range(T):
            env: dict[str, np.ndarray] = {b.input[0].name: np.array(k, np.int64), b.input[1].name: np.array(True)}
            for j, a in slots.items():
                env[b.input[2 + j].name] = a
            if body.index_slot is None or int(slots[body.index_slot]) != k:
                raise NotTheCell(f"step {k} of a length-{T} sequence does not read input step {k}")
            for i, proto in enumerate(_ordered(b, set(body.env) | set(body.outer))):
                if any(o in cell_names for o in proto.output):
                    continue
                args: list[Value | None] = []
                for n in proto.input:
                    if not n:
                        args.append(None)
                    elif n in env:
                        args.append(Const(env[n]))
                    elif isinstance(body.env.get(n), Const):
                        args.append(body.env[n])  # type: ignore[arg-type]
                    else:
                        args.append(Const(concrete(body.outer.get(n), f"the outer value {n!r}")))
                for o, v in zip(proto.output, fold_constant(Node(proto, i, opset), args)):
                    env[o] = v.array  # type: ignore[union-attr]
            go = bool(np.asarray(env[b.output[0].name]).ravel()[0]) and (m is None or k + 1 < m)
            if go != (k < T - 1):
                raise NotTheCell(f"the loop {'goes on' if go else 'stops'} after step {k} of a "
                                 f"length-{T} sequence")  # fmt: skip
            for j in slots:
                slots[j] = np.asarray(env[b.output[1 + j].name])


def _at(d: Sym, T: int) -> int:
    if d.names != ("T",):
        raise NotTheCell(f"a counter depends on the run-time size {d}")
    return d.coef * T


def _dtype(info: onnx.ValueInfoProto) -> np.dtype:
    return np.dtype(helper.tensor_dtype_to_np_dtype(info.type.tensor_type.elem_type))


def captured(node: onnx.NodeProto) -> list[str]:
    """The outer tensors a node's subgraphs read (implicit inputs), in order of first use."""
    out: list[str] = []
    for a in node.attribute:
        for g in ([a.g] if a.type == onnx.AttributeProto.GRAPH else []) + list(a.graphs):
            inner = {i.name for i in g.input} | {t.name for t in g.initializer}
            for n in g.node:
                out += [i for i in n.input if i and i not in inner and i not in out]
                out += [i for i in captured(n) if i not in inner and i not in out]
                inner.update(n.output)
    return out


def op_loop(ctx: "LoopContext", node: Node, ins: list[Value | None]) -> list[Value]:
    """A Loop: tf2onnx's Keras GRU / SimpleRNN -> the scan output as Data through a Recurrent
    layer, the carried state's final value as its Y_h (the other carried finals, counters and
    weights, are not mapped: None). Anything else: UnsupportedOpError."""
    try:
        body = _Body(node, ins, {n: ctx.values.get(n) for n in captured(node.proto)}, node.opset)
        body.run()
        if body.frame is None or body.data is None:
            raise NotTheCell("the body never reads a step of the input")
        b = body.body
        if len(b.output) != len(ins) - 2 + 2:
            raise NotTheCell("the Loop has not exactly one scan output")
        out = body.env.get(b.output[-1].name)
        if body.cell is not None and body.env.get(b.output[1 + body.cell_slot].name) is out:
            # the second carried state is h (the scan output): the first is the LSTM's c
            body.state, body.cell = body.cell, body.state
            body.state_slot, body.cell_slot = body.cell_slot, body.state_slot
            body.initial, body.initial_cell = body.initial_cell, body.initial
        if body.env.get(b.output[1 + body.state_slot].name) is not out or not isinstance(out, (Gate, Affine)):
            raise NotTheCell("the scan output is not the new state carried to the next step")
        for j in range(len(ins) - 2):
            v = body.env.get(b.input[2 + j].name)
            if isinstance(v, Const) and b.output[1 + j].name != b.input[2 + j].name:
                if body.env.get(b.output[1 + j].name) is not v:
                    raise NotTheCell(f"carried constant {b.input[2 + j].name!r} changes between steps")
        x, h = body.frame, body.state
        assert h is not None
        errors = []
        rec = None
        if body.cell is not None:  # two carried states: an LSTM's h and c
            rec = match_lstm(out, body.env.get(b.output[1 + body.cell_slot].name), x, h, body.cell)
        for match in () if rec is not None else (match_gru, match_rnn):
            try:
                rec = match(out, x, h)
                break
            except NotTheCell as e:
                errors.append(f"{match.__name__[6:].upper()}: {e}")
        if rec is None:
            raise NotTheCell("; ".join(errors))
        if out.width != h.width:
            raise NotTheCell(f"the new state has {out.width} units, the state {h.width}")
        _run_counters(ins, body, node.opset)
    except NotTheCell as e:
        raise LoopNotACell(
            "found an unrolled recurrent net: a Loop that iterates over the sequence, "
            f"whose body is not a Keras GRU, SimpleRNN or LSTM cell as tf2onnx writes it ({e}); {ADVICE}"
        ) from None
    except RnnedgeError as e:
        raise ConvertError(f"in the Loop body: {e}") from None
    except (ValueError, TypeError, IndexError, KeyError) as e:  # a body of other shapes and kinds
        raise LoopNotACell(
            "found an unrolled recurrent net: a Loop that iterates over the sequence, whose body "
            f"could not be read as a Keras GRU, SimpleRNN or LSTM cell ({type(e).__name__}: {e}); {ADVICE}"
        ) from None
    data = body.data
    if body.initial is not None:
        rec.initial_h = body.initial[None]
    if body.initial_cell is not None:
        rec.initial_c = body.initial_cell[None]
    if data.reversed:  # over a time-reversed input (Keras go_backwards): the reverse direction,
        rec.direction = "reverse"  # its output in reversed order too (as recurrent.op_recurrent)
    ctx.note(node, f"tf2onnx Loop of a Keras {rec.cell.upper()} read as the native cell"
                   + (", run backwards" if data.reversed else ""))
    H = h.width
    y = Data(data.layers + (rec,), data.axes, {**data.sizes, "F": H}, reversed=data.reversed)
    # the carried state's final value (Keras return_state) is the cell's Y_h: its last step,
    # the first in time when it ran backwards (as recurrent.op_recurrent's)
    y_h = Data(data.layers + (rec, TakeLast(H, 0 if data.reversed else H)), (("B",), ("F",)),
               {**data.sizes, "F": H, "T": 1}, True, rec)  # fmt: skip
    finals: list[Value | None] = [None] * (len(ins) - 2)
    finals[body.state_slot] = y_h
    return finals + [y]  # type: ignore[return-value]


def join_directions(node: Node, ins: list[Value | None], bound: set[int]) -> Data | None:
    """A Concat along the features, or an Add, of a forward recurrent layer's output and a
    reverse one's over the same input (tf2onnx's Keras Bidirectional: a Loop over the input and
    one over it reversed, merge_mode concat or sum), both whole sequences or both their last step:
    the one bidirectional layer (the two halves added by a Dense of two identity blocks for the
    Add, as the Keras reader's sum); None if it is not that. Layers whose state a graph input
    sets (ids in `bound`) are not joined; constant initial states are stacked (zeros for None).
    A Mul of such a pair (merge_mode "mul") is that layer followed by a MulHalves step, which
    graph.Walk turns into the dataflow graph's SLICE, SLICE, BINARY MUL."""
    if node.op not in ("Concat", "Add", "Mul") or len(ins) != 2:
        return None
    a, b = ins
    if not (isinstance(a, Data) and isinstance(b, Data)) or (a.axes, a.sizes, a.reversed, a.taken) != (
            b.axes, b.sizes, b.reversed, b.taken) or len(a.layers) != len(b.layers):
        return None
    if node.op == "Concat":
        axis = node.int_attr("axis", 0)
        axis = axis + a.rank if axis < 0 else axis
        if not 0 <= axis < a.rank or a.axes[axis] != ("F",):
            return None

    def split(d: Data) -> tuple[Recurrent, TakeLast | None] | None:
        if not d.layers:
            return None
        *rest, last = d.layers
        tail = last if isinstance(last, TakeLast) else None
        rec = rest[-1] if tail is not None and rest else last
        return (rec, tail) if isinstance(rec, Recurrent) else None

    pa, pb = split(a), split(b)
    if pa is None or pb is None:
        return None
    (f, tf), (r, tr) = pa, pb
    if node.op in ("Add", "Mul") and f.direction == "reverse":
        (f, tf), (r, tr) = (r, tr), (f, tf)
    n = len(a.layers) - (2 if tf is not None else 1)
    if (f.direction, r.direction) != ("forward", "reverse") or any(
            x is not y for x, y in zip(a.layers[:n], b.layers[:n])):
        return None
    if (f.cell, f.hidden, f.in_features, f.linear_before_reset, f.clip, f.input_forget) != (
            r.cell, r.hidden, r.in_features, r.linear_before_reset, r.clip, r.input_forget):
        return None
    if any(v is not None for v in (f.P, r.P, f.initial_c, r.initial_c)) or id(f) in bound or id(r) in bound:
        return None
    H = f.hidden
    if (tf is None) != (tr is None) or (tf is not None and tr is not None and (
            (tf.features, tf.split, tr.features, tr.split) != (H, H, H, 0))):
        return None
    def both(p: np.ndarray | None, q: np.ndarray | None) -> np.ndarray | None:
        return None if p is None and q is None else np.concatenate([p if p is not None else np.zeros_like(q),
                                                                    q if q is not None else np.zeros_like(p)])

    rec = Recurrent(cell=f.cell, direction="bidirectional", W=both(f.W, r.W), R=both(f.R, r.R),
                    B=both(f.B, r.B), initial_h=both(f.initial_h, r.initial_h),
                    activations=[*f.activations, *r.activations], clip=f.clip,
                    input_forget=f.input_forget, linear_before_reset=f.linear_before_reset)  # fmt: skip
    layers = a.layers[:n] + (rec,) + ((TakeLast(2 * H, H),) if tf is not None else ())
    if node.op == "Add":
        eye = np.eye(H, dtype=np.float32)
        layers += (Dense(np.concatenate([eye, eye], axis=1)),)
    elif node.op == "Mul":
        layers += (MulHalves(H),)  # type: ignore[assignment]  # a graph step, not a FloatLayer
    return replace(a, layers=layers, sizes={**a.sizes, "F": 2 * H if node.op == "Concat" else H}, final=None)


class LoopContext(Protocol):
    """The part of graph.Walk that op_loop uses."""

    @property
    def values(self) -> dict[str, Value | None]: ...

    def note(self, node: Node, text: str) -> None: ...
