"""Ops tf2onnx spells out, read back as the one ONNX op they compute (docs/keras.md "Through
tf2onnx"). A rewrite of the loaded model (a copy) before either converter walks it; each rewrite
leaves a note in the converted model's `folded` list.

LayerNormalization: Keras's layer normalisation as TensorFlow computes it and tf2onnx exports it,
its moments a `GlobalAveragePool` (or a `ReduceMean` over the last axis) and the result
`x * k + (beta - mean * k)` with `k = gamma / sqrt(var + eps)`, interleaved with Transposes of the
rows. The values computed from one mean are followed as polynomials in x, its mean m, its variance
v and r = 1 / sqrt(v + eps), with a per-feature constant for each term (elementwise ops and
Transposes; the same axis order on both sides of every op, the features last where a mean or a
per-feature constant meets them); a value
that is exactly `gamma * r * (x - m) + beta` is that LayerNormalization over the features, in
whatever order and spelling (Sub or Neg and Add, Div by the root or Mul by its Reciprocal, Pow 2
or a self Mul) it was computed.

Keras 2's LayerNormalization (keras2_layer_norms): x reshaped to [1, B*T, F, 1], a
BatchNormalization (scale 1, bias 0) fed its rows' moments (ReduceMean, ReduceSumSquare / F) and
reshaped back to x's Shape: one LayerNormalization of x (gamma 1, beta 0; Keras's follow).

Embedding: Keras's `take` (TensorFlow backend) maps a negative id to id + V before the Gather of
a V-row table; tf2onnx writes that `where(x < 0, x + V, x)` as Cast, Less, Not, Cast, Mul, Add
(or a Where). Each value computed from an integer graph input is followed as its value for
x < 0 and for x >= 0 (a linear function of x, or a truth value); an index that is x + V below 0
and x from 0 on, read by a Gather of a V-row constant table, is the Gather of x itself: the same
row for every id in [0, V) (Keras's range for an Embedding); rnnedge refuses any other id at run
time, naming it (a negative id Keras would take as id + V among them).

Masking: Keras's Masking layer as tf2onnx writes it (Equal(x, mask_value), Not, Cast, ReduceSum
over the features, Greater than 0: the steps kept) is refused by its Equal node with Keras's
semantics and what to do instead, as the Keras reader refuses the layer.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx
from onnx import helper, numpy_helper

from ..errors import UnsupportedOpError

# a term's exponents of (x, m, v, r): x the normalised tensor, m its mean over the features, v the
# mean of (x - m)^2, r = 1 / sqrt(v + eps)
Mono = tuple[int, int, int, int]
Poly = dict[Mono, np.ndarray]  # a per-feature (or scalar, shape (1,)) coefficient per term
X: Mono = (1, 0, 0, 0)
M: Mono = (0, 1, 0, 0)
V: Mono = (0, 0, 1, 0)
R: Mono = (0, 0, 0, 1)
ONE: Mono = (0, 0, 0, 0)
MAX_DEGREE = 4


class NoMatch(Exception):
    """This node does not continue the pattern (it is left as it is)."""


@dataclass(frozen=True)
class Sym:
    """A tensor of the pattern: `poly` in the layout `perm` of x's axes (a Transpose of x's
    layout), or the root sqrt(v + eps) (`root`)."""

    poly: Poly
    perm: tuple[int, ...]
    root: bool = False


def _vec(a: np.ndarray) -> np.ndarray:
    return np.asarray(a, np.float64).reshape(-1)


def _coef_add(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if a.size != b.size and 1 not in (a.size, b.size):
        raise NoMatch
    return a + b


def p_add(p: Poly, q: Poly) -> Poly:
    out = dict(p)
    for k, c in q.items():
        out[k] = _coef_add(out[k], c) if k in out else c
    return {k: c for k, c in out.items() if np.any(c != 0)}


def p_scale(p: Poly, c: np.ndarray) -> Poly:
    return {k: _coef_mul(v, c) for k, v in p.items()}


def _coef_mul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if a.size != b.size and 1 not in (a.size, b.size):
        raise NoMatch
    return a * b


def p_mul(p: Poly, q: Poly) -> Poly:
    out: Poly = {}
    for ka, ca in p.items():
        for kb, cb in q.items():
            k = tuple(i + j for i, j in zip(ka, kb))
            if sum(k) > MAX_DEGREE:
                raise NoMatch
            out = p_add(out, {k: _coef_mul(ca, cb)})  # type: ignore[dict-item]
    return out


def _scalar(p: Poly, mono: Mono) -> float | None:
    c = p.get(mono)
    return float(c[0]) if c is not None and c.size == 1 else None


def _is(p: Poly, want: dict[Mono, float]) -> bool:
    return p.keys() == want.keys() and all(_scalar(p, k) == v for k, v in want.items())


class _LayerNorm:
    """The values computed from one mean of the tensor `x` (rank `rank`, `features` features)."""

    def __init__(self, x: str, rank: int, features: int) -> None:
        self.x, self.rank, self.features = x, rank, features
        self.syms: dict[str, Sym] = {x: Sym({X: np.ones(1)}, tuple(range(rank)))}
        self.eps: float | None = None

    def const_poly(self, a: np.ndarray, perm: tuple[int, ...]) -> Poly:
        """A constant operand: a scalar or a per-feature vector in layout `perm`."""
        a = np.asarray(a)
        if a.dtype.kind != "f" or a.ndim > self.rank or any(n != 1 for n in a.shape[:-1]):
            raise NoMatch
        if a.size > 1 and (a.size != self.features or perm[-1] != self.rank - 1):
            raise NoMatch
        return {ONE: _vec(a)} if np.any(a != 0) else {}

    def operands(self, node: onnx.NodeProto, consts: _Constants) -> list[Sym | np.ndarray]:
        out: list[Sym | np.ndarray] = []
        for name in node.input:
            if name in self.syms:
                out.append(self.syms[name])
            elif name in consts:
                out.append(consts[name])
            else:
                raise NoMatch
        if not any(isinstance(o, Sym) for o in out):
            raise NoMatch
        return out

    def step(self, node: onnx.NodeProto, consts: _Constants) -> Sym:
        ins = self.operands(node, consts)
        op = node.op_type
        if op in ("Identity",) and len(ins) == 1 and isinstance(ins[0], Sym):
            return ins[0]
        if op == "Transpose" and isinstance(ins[0], Sym) and not ins[0].root:
            perm = next((list(a.ints) for a in node.attribute if a.name == "perm"), None)
            if perm is None or sorted(perm) != list(range(self.rank)):
                raise NoMatch
            return Sym(ins[0].poly, tuple(ins[0].perm[i] for i in perm))
        if op in ("GlobalAveragePool", "ReduceMean"):
            return self.mean(node, ins, consts)
        if op in ("Neg", "Sqrt", "Reciprocal"):
            a = ins[0]
            assert isinstance(a, Sym)
            if op == "Neg" and not a.root:
                return Sym(p_scale(a.poly, np.array([-1.0])), a.perm)
            if op == "Sqrt" and not a.root:
                return Sym({}, a.perm, root=self.root_of(a.poly))
            if op == "Reciprocal" and a.root:
                return Sym({R: np.ones(1)}, a.perm)
            raise NoMatch
        if op in ("Add", "Sub", "Mul", "Div", "Pow") and len(ins) == 2:
            return self.binary(op, ins[0], ins[1])
        raise NoMatch

    def root_of(self, p: Poly) -> bool:
        """sqrt(v + eps): records eps (one per pattern)."""
        eps = _scalar(p, ONE) if ONE in p else 0.0
        if p.keys() - {ONE} != {V} or _scalar(p, V) != 1.0 or eps is None or eps < 0:
            raise NoMatch
        if self.eps is not None and self.eps != eps:
            raise NoMatch
        self.eps = eps
        return True

    def mean(self, node: onnx.NodeProto, ins: list, consts: _Constants) -> Sym:
        a = ins[0]
        if not isinstance(a, Sym) or a.root or a.perm[-1] != self.rank - 1:
            raise NoMatch
        if node.op_type == "GlobalAveragePool":
            if self.rank != 3:
                raise NoMatch
        else:
            keep = next((a.i for a in node.attribute if a.name == "keepdims"), 1)
            axes = next((list(a.ints) for a in node.attribute if a.name == "axes"), None)
            if axes is None and len(node.input) > 1:
                axes = [int(v) for v in consts[node.input[1]].reshape(-1)]
            if not keep or axes is None or [v % self.rank for v in axes] != [self.rank - 1]:
                raise NoMatch
        if _is(a.poly, {X: 1.0}):
            return Sym({M: np.ones(1)}, a.perm)
        if _is(a.poly, {(2, 0, 0, 0): 1.0, (1, 1, 0, 0): -2.0, (0, 2, 0, 0): 1.0}):  # (x - m)^2
            return Sym({V: np.ones(1)}, a.perm)
        raise NoMatch

    def binary(self, op: str, a: Sym | np.ndarray, b: Sym | np.ndarray) -> Sym:
        sa, sb = (a if isinstance(a, Sym) else None), (b if isinstance(b, Sym) else None)
        if sa and sb and sa.perm != sb.perm:
            raise NoMatch
        perm = (sa or sb).perm  # type: ignore[union-attr]
        if op == "Div" and sb is not None and sb.root and sa is not None and not sa.root:
            return Sym(p_mul(sa.poly, {R: np.ones(1)}), perm)
        if op == "Div" and sb is not None and sb.root and sa is None:
            return Sym(p_mul(self.const_poly(a, perm), {R: np.ones(1)}), perm)  # type: ignore[arg-type]
        if (sa and sa.root) or (sb and sb.root):
            raise NoMatch
        if op == "Pow":
            if sa is None or sb is not None:
                raise NoMatch
            e = np.asarray(b)
            if e.size != 1:
                raise NoMatch
            if float(e.reshape(-1)[0]) == 2.0:
                return Sym(p_mul(sa.poly, sa.poly), perm)
            if float(e.reshape(-1)[0]) == -0.5 and self.root_of(sa.poly):
                return Sym({R: np.ones(1)}, perm)
            raise NoMatch
        pa = sa.poly if sa else self.const_poly(a, perm)  # type: ignore[arg-type]
        pb = sb.poly if sb else self.const_poly(b, perm)  # type: ignore[arg-type]
        if op == "Add":
            return Sym(p_add(pa, pb), perm)
        if op == "Sub":
            return Sym(p_add(pa, p_scale(pb, np.array([-1.0]))), perm)
        if op == "Mul":
            return Sym(p_mul(pa, pb), perm)
        if op == "Div" and sb is None:
            c = np.asarray(b, np.float64)
            if np.any(c == 0):
                raise NoMatch
            return Sym(p_mul(pa, self.const_poly(1.0 / c, perm)), perm)
        raise NoMatch

    def normalised(self, s: Sym) -> tuple[np.ndarray, np.ndarray] | None:
        """(gamma, beta) when `s` is gamma * r * (x - m) + beta, else None."""
        p = s.poly
        if s.root or p.keys() - {ONE} != {(1, 0, 0, 1), (0, 1, 0, 1)} or self.eps is None:
            return None
        g, neg = p[(1, 0, 0, 1)], p[(0, 1, 0, 1)]
        if g.size != neg.size or np.any(g != -neg):
            return None
        beta = p.get(ONE, np.zeros(1))
        f = self.features
        return np.broadcast_to(g, (f,)).astype(np.float32), np.broadcast_to(beta, (f,)).astype(np.float32)


class _Constants:
    """The graph's initializers and Constant nodes' values, read when asked (one that does not
    read as an array is no constant of a pattern: the converter names it later)."""

    def __init__(self, graph: onnx.GraphProto) -> None:
        self.protos = {t.name: t for t in graph.initializer}
        for n in graph.node:
            attr = next((a for a in n.attribute if a.name == "value"), None)
            if n.op_type == "Constant" and len(n.output) == 1 and attr is not None:
                self.protos[n.output[0]] = attr.t
        self.arrays: dict[str, np.ndarray] = {}

    def __contains__(self, name: str) -> bool:
        return name in self.protos

    def __getitem__(self, name: str) -> np.ndarray:
        if name not in self.arrays:
            try:
                self.arrays[name] = numpy_helper.to_array(self.protos[name])
            except Exception:  # noqa: BLE001 - a damaged tensor
                raise NoMatch from None
        return self.arrays[name]


def _ranks(model: onnx.ModelProto) -> dict[str, tuple[int, int | None]]:
    """(rank, last axis size or None) of every tensor whose type states its shape."""
    out: dict[str, tuple[int, int | None]] = {}
    g = model.graph
    for info in list(g.input) + list(g.value_info) + list(g.output):
        t = info.type.tensor_type
        if info.type.HasField("tensor_type") and t.HasField("shape") and t.shape.dim:
            last = t.shape.dim[-1]
            out[info.name] = (len(t.shape.dim), last.dim_value if last.HasField("dim_value") else None)
    return out


def layer_norms(model: onnx.ModelProto) -> list[str]:
    """In a model tf2onnx wrote (its producer name), rewrite every spelled-out layer normalisation
    of the main graph (see the module's text) into one LayerNormalization node (which the
    converters read at any opset), in place; returns a note for each. Other exporters' written-out
    norms are left to the converters, which read them op by op (heads.py, the graph's REDUCE)."""
    if model.producer_name != "tf2onnx":
        return []
    graph = model.graph
    if not any(n.op_type in ("GlobalAveragePool", "ReduceMean") for n in graph.node):
        return []
    consts = _Constants(graph)
    ranks = _ranks(model)
    notes: list[str] = []
    for start in list(graph.node):
        nodes = list(graph.node)
        if start not in nodes or start.op_type not in ("GlobalAveragePool", "ReduceMean") or not start.input:
            continue
        x = start.input[0]
        rank, features = ranks.get(x, (0, None))
        if rank < 2 or not features or x in consts:
            continue
        pat = _LayerNorm(x, rank, features)
        producer: dict[str, onnx.NodeProto] = {}
        for node in nodes:
            if not any(i in pat.syms for i in node.input) or len(node.output) != 1:
                continue
            try:
                with np.errstate(all="ignore"):
                    pat.syms[node.output[0]] = pat.step(node, consts)
            except (NoMatch, KeyError, ValueError, TypeError, IndexError):
                continue
            producer[node.output[0]] = node
        done = {n for n, s in pat.syms.items() if n != x and pat.normalised(s) is not None}
        for out in sorted(done, key=lambda n: nodes.index(producer[n])):
            if any(i in done for i in producer[out].input):
                continue  # computed from the normalisation (a Transpose of it, ...): left as it is
            gamma, beta = pat.normalised(pat.syms[out])  # type: ignore[misc]
            _replace(graph, producer[out], x, out, gamma, beta, float(pat.eps), pat.syms[out].perm)  # type: ignore[arg-type]
            notes.append(
                f"LayerNormalization {producer[out].name or out}: the moments tf2onnx writes "
                f"({start.op_type} {start.name or x} of {x!r} and the ops after it) read as one "
                f"LayerNormalization over the features (epsilon {pat.eps:g})"
            )
    return notes


def _axes(node: onnx.NodeProto, consts: _Constants) -> list[int] | None:
    """A Reduce* or Squeeze node's axes, from its attribute or its constant second input."""
    attr = next((a for a in node.attribute if a.name == "axes"), None)
    if attr is not None:
        return sorted(attr.ints)
    if len(node.input) > 1 and node.input[1] in consts:
        return sorted(int(a) for a in consts[node.input[1]].ravel())
    return None


def _attr_int(node: onnx.NodeProto, name: str, default: int) -> int:
    attr = next((a for a in node.attribute if a.name == name), None)
    return default if attr is None else int(attr.i)


def keras2_layer_norms(model: onnx.ModelProto) -> list[str]:
    """Keras 2's LayerNormalization as tf2onnx writes it (a model tf2onnx wrote): x [B, T, F]
    reshaped to r = [1, B*T, F, 1], a BatchNormalization of r with scale 1 and bias 0 fed the
    moments of r's rows, the mean Squeeze(ReduceMean(r, axes [0, 2, 3])) and the variance
    ReduceSumSquare(r - that mean, axes [0, 2, 3]) / F (F a constant or the Cast of the ReduceProd
    of r's Shape at [0, 2, 3]), and that reshaped back to x's shape (the Shape of x, through Casts):
    the normalisation of x over its features, rewritten in place into one LayerNormalization of x
    with gamma 1 and beta 0 (Keras's gamma and beta follow as the Mul and Add tf2onnx wrote);
    returns a note for each. Anything else is left as written."""
    if model.producer_name != "tf2onnx":
        return []
    graph = model.graph
    consts = _Constants(graph)
    ranks = _ranks(model)
    notes: list[str] = []
    for bn in list(graph.node):
        try:
            found = _keras2_norm(graph, bn, consts, ranks)
        except (NoMatch, KeyError, ValueError, IndexError):
            continue
        if found is None:
            continue
        x, back, eps, features = found
        at = list(graph.node).index(back)
        base = (bn.name or bn.output[0]) + "/rnnedge_layer_norm"
        graph.initializer.extend([numpy_helper.from_array(np.ones(features, np.float32), base + "/gamma"),
                                  numpy_helper.from_array(np.zeros(features, np.float32), base + "/beta")])  # fmt: skip
        ln = helper.make_node("LayerNormalization", [x, base + "/gamma", base + "/beta"], [back.output[0]],
                              name=base, axis=-1, epsilon=eps)  # fmt: skip
        del graph.node[at]
        graph.node.insert(at, ln)
        notes.append(f"LayerNormalization {bn.name or bn.output[0]}: Keras 2's layer normalisation as tf2onnx "
                     f"writes it (a Reshape of {x!r} to [1, B*T, F, 1] and a BatchNormalization of its rows' "
                     f"moments) read as one LayerNormalization over the features (epsilon {eps:g})")  # fmt: skip
    return notes


def _keras2_norm(graph: onnx.GraphProto, bn: onnx.NodeProto, consts: _Constants,
                 ranks: dict[str, tuple[int, int | None]]) -> tuple[str, onnx.NodeProto, float, int] | None:
    """(x, the Reshape back, epsilon, F) when `bn` is the middle of keras2_layer_norms' form."""
    if bn.op_type != "BatchNormalization" or len(bn.input) != 5 or len(bn.output) != 1:
        return None
    prod = {o: n for n in graph.node for o in n.output}
    users: dict[str, list[onnx.NodeProto]] = {}
    for n in graph.node:
        for i in n.input:
            users.setdefault(i, []).append(n)
    r, scale, bias, mean, var = bn.input
    reshape = prod[r]
    if reshape.op_type != "Reshape" or reshape.input[1] not in consts:
        return None
    x = reshape.input[0]
    rank, features = ranks.get(x, (0, None))
    if rank != 3 or not features:
        return None
    if [int(d) for d in consts[reshape.input[1]].ravel()] != [1, -1, features, 1]:
        return None
    if not (_filled(scale, 1.0, prod, consts) and _filled(bias, 0.0, prod, consts)):
        return None
    rows = [0, 2, 3]
    sq = prod[mean]
    if sq.op_type != "Squeeze" or _axes(sq, consts) != rows:
        return None
    rm = prod[sq.input[0]]
    if (rm.op_type != "ReduceMean" or rm.input[0] != r or _axes(rm, consts) != rows
            or _attr_int(rm, "keepdims", 1) != 1):  # fmt: skip
        return None
    div = prod[var]
    if div.op_type != "Div":
        return None
    ss = prod[div.input[0]]
    if ss.op_type != "ReduceSumSquare" or _axes(ss, consts) != rows or _attr_int(ss, "keepdims", 1) != 0:
        return None
    sub = prod[ss.input[0]]
    if sub.op_type != "Sub" or list(sub.input) != [r, rm.output[0]]:
        return None
    if not _is_count(div.input[1], r, features, prod, consts):
        return None
    back_users = users.get(bn.output[0], [])
    if len(back_users) != 1 or back_users[0].op_type != "Reshape" or back_users[0].input[0] != bn.output[0]:
        return None
    back = back_users[0]
    if not _is_shape_of(back.input[1], x, prod):
        return None
    return x, back, float(next((a.f for a in bn.attribute if a.name == "epsilon"), 1e-5)), int(features)


def _filled(name: str, value: float, prod: dict[str, onnx.NodeProto], consts: _Constants) -> bool:
    """`name` holds only `value`: a constant, or an Expand of one (tf2onnx's ones and zeros of the
    run-time row count)."""
    node = prod.get(name)
    if name not in consts and node is not None and node.op_type == "Expand":
        name = node.input[0]
    return name in consts and consts[name].size > 0 and bool(np.all(consts[name] == value))


def _is_count(name: str, r: str, features: int, prod: dict[str, onnx.NodeProto], consts: _Constants) -> bool:
    """`name` is F: a constant, or the Cast of the ReduceProd of Shape(r) at [0, 2, 3]."""
    if name in consts:
        return consts[name].size == 1 and float(consts[name].ravel()[0]) == features
    node = prod.get(name)
    while node is not None and node.op_type == "Cast":
        node = prod.get(node.input[0])
    if node is None or node.op_type != "ReduceProd" or _axes(node, consts) not in ([0], None):
        return False
    gather = prod.get(node.input[0])
    if gather is None or gather.op_type != "Gather" or gather.input[1] not in consts:
        return False
    if [int(a) for a in consts[gather.input[1]].ravel()] != [0, 2, 3]:
        return False
    shape = prod.get(gather.input[0])
    return shape is not None and shape.op_type == "Shape" and shape.input[0] == r and len(shape.attribute) == 0


def _is_shape_of(name: str, x: str, prod: dict[str, onnx.NodeProto]) -> bool:
    """`name` is Shape(x), through Casts."""
    node = prod.get(name)
    while node is not None and node.op_type == "Cast":
        node = prod.get(node.input[0])
    return node is not None and node.op_type == "Shape" and node.input[0] == x and len(node.attribute) == 0


def _replace(graph: onnx.GraphProto, node: onnx.NodeProto, x: str, out: str, gamma: np.ndarray,
             beta: np.ndarray, eps: float, perm: tuple[int, ...]) -> None:
    """`node` (which computed `out`) replaced by a LayerNormalization of x (and a Transpose to
    the layout `perm` of out)."""
    base = (node.name or out) + "/rnnedge_layer_norm"
    at = list(graph.node).index(node)
    graph.initializer.extend([numpy_helper.from_array(gamma, base + "/gamma"),
                              numpy_helper.from_array(beta, base + "/beta")])  # fmt: skip
    identity = perm == tuple(range(len(perm)))
    ln = helper.make_node("LayerNormalization", [x, base + "/gamma", base + "/beta"],
                          [out if identity else base + ":0"], name=base, axis=-1, epsilon=eps)
    new = [ln] if identity else [ln, helper.make_node("Transpose", [base + ":0"], [out], name=base + "/transpose",
                                                      perm=list(perm))]
    del graph.node[at]
    for k, n in enumerate(new):
        graph.node.insert(at + k, n)


@dataclass(frozen=True)
class Lin:
    """a * x + b (integers, exact), or a truth value (`truth`) of one region."""

    a: int = 0
    b: int = 0
    truth: bool | None = None


Regions = tuple[Lin, Lin]  # the value for x < 0, and for x >= 0


def _int_const(a: np.ndarray) -> int:
    a = np.asarray(a)
    if a.size != 1 or a.dtype.kind not in "iuf" or float(a.reshape(-1)[0]) != int(a.reshape(-1)[0]):
        raise NoMatch
    return int(a.reshape(-1)[0])


def _region_op(op: str, node: onnx.NodeProto, args: list[Lin | int]) -> Lin:
    """One region's value of `op` (args: Lin of x, or integer constants)."""
    lins = [v if isinstance(v, Lin) else Lin(0, v) for v in args]
    if op in ("Identity", "Cast"):
        (v,) = lins
        return Lin(0, int(v.truth)) if v.truth is not None else v
    if any(v.truth is not None for v in lins) and op not in ("Not", "Where", "Mul"):
        raise NoMatch
    if op == "Not":
        if lins[0].truth is None:
            raise NoMatch
        return Lin(truth=not lins[0].truth)
    if op == "Where":
        if lins[0].truth is None:
            raise NoMatch
        return lins[1] if lins[0].truth else lins[2]
    a, b = (Lin(0, int(v.truth)) if v.truth is not None else v for v in lins)
    if op == "Add":
        return Lin(a.a + b.a, a.b + b.b)
    if op == "Sub":
        return Lin(a.a - b.a, a.b - b.b)
    if op == "Mul" and (a.a == 0 or b.a == 0):
        return Lin(a.a * b.b + b.a * a.b, a.b * b.b)
    raise NoMatch


def _guard_step(node: onnx.NodeProto, syms: dict[str, Regions], consts: _Constants) -> Regions:
    op = node.op_type
    args: list[Regions | int] = []
    for name in node.input:
        if name in syms:
            args.append(syms[name])
        elif name in consts:
            args.append(_int_const(consts[name]))
        else:
            raise NoMatch
    if op == "Less" and len(args) == 2 and isinstance(args[0], tuple) and args[1] == 0:
        if args[0] != (Lin(1, 0), Lin(1, 0)):
            raise NoMatch
        return (Lin(truth=True), Lin(truth=False))  # x < 0: true exactly in the first region
    if op not in ("Identity", "Cast", "Not", "Where", "Add", "Sub", "Mul") or len(args) > 3:
        raise NoMatch
    if op == "Cast":
        to = next((a.i for a in node.attribute if a.name == "to"), None)
        if to not in (onnx.TensorProto.INT32, onnx.TensorProto.INT64, onnx.TensorProto.FLOAT,
                      onnx.TensorProto.DOUBLE, onnx.TensorProto.BOOL):
            raise NoMatch
        if to == onnx.TensorProto.BOOL:
            raise NoMatch
    return tuple(_region_op(op, node, [a[k] if isinstance(a, tuple) else a for a in args])
                 for k in (0, 1))  # type: ignore[return-value]


def negative_id_guards(model: onnx.ModelProto) -> list[str]:
    """In a model tf2onnx wrote, every Gather of a constant V-row table whose index is its
    integer input x guarded as where(x < 0, x + V, x) reads x itself (see the module's text), in
    place; returns a note for each."""
    graph = model.graph
    if model.producer_name != "tf2onnx" or not any(n.op_type == "Less" for n in graph.node):
        return []
    consts = _Constants(graph)
    ints = (onnx.TensorProto.INT32, onnx.TensorProto.INT64)
    notes: list[str] = []
    for x in [i.name for i in graph.input if i.name not in consts and i.type.tensor_type.elem_type in ints]:
        syms: dict[str, Regions] = {x: (Lin(1, 0), Lin(1, 0))}
        for node in graph.node:
            if node.op_type == "Gather" and len(node.input) == 2 and node.input[1] in syms \
                    and node.input[0] in consts:
                try:
                    rows = consts[node.input[0]].shape[0] if consts[node.input[0]].ndim == 2 else None
                except NoMatch:
                    continue
                axis = next((a.i for a in node.attribute if a.name == "axis"), 0)
                if rows and axis in (0, -2) and syms[node.input[1]] == (Lin(1, rows), Lin(1, 0)):
                    guard = node.input[1]
                    node.input[1] = x
                    notes.append(f"Gather {node.name or node.output[0]}: its index {guard!r} is tf2onnx's guard "
                                 f"for negative ids (x < 0: x + {rows}); the Gather reads {x!r} itself, the "
                                 f"same rows for ids in [0, {rows}) (rnnedge refuses any other id at run time)")
                continue
            if not any(i in syms for i in node.input) or len(node.output) != 1:
                continue
            try:
                syms[node.output[0]] = _guard_step(node, syms, consts)
            except (NoMatch, ValueError, TypeError, OverflowError):
                continue
    return notes


def keras_masking(model: onnx.ModelProto, label: str) -> None:
    """In a model tf2onnx wrote, Keras's Masking (a step is kept when any of its features differs
    from mask_value: Equal(x, mask_value), Not, Cast, ReduceSum over the features, Greater than 0)
    on the way to an output is refused by its Equal node, with Keras's semantics and what to do
    (as the Keras reader refuses the layer): a per-step branch on the data, which rnnedge does not
    run and which ignoring would change the numbers."""
    graph = model.graph
    if model.producer_name != "tf2onnx" or not any(n.op_type == "Equal" for n in graph.node):
        return
    consts = _Constants(graph)
    readers: dict[str, list[onnx.NodeProto]] = {}
    for n in graph.node:
        for i in n.input:
            readers.setdefault(i, []).append(n)

    def only(name: str, op: str) -> onnx.NodeProto | None:
        found = [r for r in readers.get(name, []) if r.op_type == op]
        return found[0] if found else None

    needed = {o.name for o in graph.output}
    for n in reversed(list(graph.node)):
        if any(o in needed for o in n.output):
            needed.update(n.input)
    for k, eq in enumerate(graph.node):
        if eq.op_type != "Equal" or len(eq.input) != 2 or eq.output[0] not in needed:
            continue
        x, c = (eq.input[1], eq.input[0]) if eq.input[0] in consts else (eq.input[0], eq.input[1])
        try:
            value = consts[c] if c in consts and x not in consts else None
        except NoMatch:
            continue
        if value is None or value.size != 1 or value.dtype.kind != "f":
            continue
        chain = [eq]
        for op in ("Not", "Cast", "ReduceSum", "Greater"):
            nxt = only(chain[-1].output[0], op)
            if nxt is None:
                break
            chain.append(nxt)
        if len(chain) != 5:
            continue
        mask = float(value.reshape(-1)[0])
        raise UnsupportedOpError(
            f"{label}: node {eq.name!r} (op Equal, #{k + 1} of {len(graph.node)} in the graph): Keras's Masking "
            f"as tf2onnx writes it (mask_value={mask!r}: a step is kept when any of its features differs): "
            "Keras skips every step whose features all equal it (the recurrent state carries over and the "
            "step repeats the previous output), a per-step branch rnnedge does not run; export the model "
            "without the Masking layer (the weights are the same) and give rnnedge only the unmasked "
            "steps: Model.run on each sequence without its padding, or Stream.step skipping the masked "
            "frames, gives Keras's outputs at those steps (docs/keras.md)"
        )


__all__ = ["keras_masking", "layer_norms", "negative_id_guards"]
