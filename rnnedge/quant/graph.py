"""`quantize_graph`: from a float dataflow Graph (rnnedge/ir/graph.py) to an integer one.

docs/quantization.md section 12 is the specification. In short:
- A graph that is a straight pipeline (`as_network`) is quantized by `quantize_network`, so a
  model keeps the blob, the per-layer policy and the measured accuracy it had as a pipeline.
- Otherwise calibration runs the float graph (`rnnedge.reference.run_graph(..., seen=...)`) and
  gives every value a scale: the pipeline's rules per layer (inputs, Dense outputs, activations,
  recurrent h at 2^-15, ...), static bounds without data; a state value and its update share one
  scale; shape ops pass their input's scale; Concat and Min/Max take the largest input scale;
  Gather's table sets its output scale. Each node is quantized with its own input scales
  (rnnedge/quant/arith.py) and the integer graph runs in `rnnedge.fixedpoint.run_qgraph`.
- Accuracy is measured with that integer executor on the calibration data: with "int8", a Dense
  or recurrent node whose int8 weights (the other weighted nodes at int16) miss the bar at the
  model output keeps int16 weights (strict: refused), then the int8 nodes with the largest
  effect move to int16 until the whole graph meets the bar.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import replace
from typing import Callable

import numpy as np

from .. import fixedpoint as fx
from ..errors import ConvertError, InputError, UnsupportedOpError
from ..progress import Progress
from ..ir.graph import (
    Binary, Concat, Conv, Copy, Gather, Graph, Node, Reduce, Transpose, Value, check_graph,
    from_network, plan_arena,
)  # fmt: skip
from ..ir.layers import (
    WFMT, Act, Activation, Dense, IntLayer, LayerNorm, LayerReport, Network, QActivation, QSlice,
    QTakeLast, Recurrent, RecurrentShape, Slice, TakeLast,
)  # fmt: skip
from ..reference import graph_rows, run_graph
from .arith import (
    UNBOUNDED_LUT_KINDS, conv_channels, make_mult, quantize_activation, quantize_binary,
    quantize_concat, quantize_conv, quantize_dense, quantize_gather, quantize_layernorm, quantize_recurrent,
    quantize_reduce, range_scale,
)  # fmt: skip
from .calibrate import (
    DEFAULT_INPUT_RANGE, DEFAULT_RELU_RANGE, HEADROOM, SYNTH_BATCH, SYNTH_STEPS, CalibrationWarning,
    Ranges,
)  # fmt: skip
from .policy import (
    CLASSIFIER_HEADS, LAYER_TOL, MIN_AGREEMENT, SAFETY, _Bar, _error, accuracy, fold_pair,
    quantize_network,
)  # fmt: skip

DEFAULT_VALUE_RANGE = 8.0  # |v| assumed without calibration data where no static bound exists
PIPELINE_OPS = (Dense, Activation, LayerNorm, Recurrent, TakeLast, Slice)
Q15 = float(np.float32(fx.Q15_SCALE))


# -- a straight pipeline keeps the pipeline's quantizer -------------------------------------------
def as_network(g: Graph) -> Network | None:
    """The Network a graph is, when it is a straight pipeline of layers over 1-D float values
    (node i reads what node i-1 wrote, one input and one output each, no state values); else
    None."""
    if g.state_values or g.values[g.input].dtype != "f32":
        return None
    if any(len(v.shape) != 1 for v in g.values):
        return None
    prev = g.input
    for n in g.nodes:
        ins = [v for v in n.inputs if v is not None]
        outs = [v for v in n.outputs if v is not None]
        if not isinstance(n.op, PIPELINE_OPS) or ins != [prev] or len(outs) != 1 or n.inputs[0] != prev:
            return None
        if n.outputs[0] != outs[0] or (isinstance(n.op, Slice) and n.op.step != 1):
            return None
        prev = outs[0]
    if prev != g.output:
        return None
    net = Network([n.op for n in g.nodes], g.input_spec, g.output_spec, g.name, g.producer,
                  g.quant, list(g.state), list(g.folded))  # fmt: skip
    try:
        net.check()
    except ConvertError:
        return None
    return net


def _from_pipeline(qnet: object, g: Graph) -> Graph:
    qg = from_network(qnet)  # type: ignore[arg-type]
    qg.value_specs.update(g.value_specs)  # the converter's record of the state inputs' layout
    if len(qg.nodes) == len(g.nodes):  # nothing folded: the graph's own names and source
        for qv, v in zip(qg.values, g.values):
            qv.name = v.name
        for qn, n in zip(qg.nodes, g.nodes):
            qn.name = n.name
        qg.source = g
    return qg


def per_step(g: Graph) -> Graph:
    """A streamable many-to-one graph as `Stream.step` runs it: its output at every step. Each
    TakeLast of all features becomes a pass-through Slice, each recurrent node's Y_h a Copy of
    its Y (forward nodes: h after step t is Y[t]), and no value is LAST. The value indices stay
    (calibration reads `seen` by index). Any other graph is returned as it is; so is one whose
    recurrent node writes Y_c, which the integer formats refuse anyway (policy.per_step is the
    pipeline's)."""
    if not g.many_to_one or not g.streamable or g.explicit_state:
        return g
    nodes: list[Node] = []
    for n in g.nodes:
        op = n.op
        if isinstance(op, (TakeLast, QTakeLast)):
            if op.split != op.features:
                return g
            full = (Slice(op.features, 0, op.features) if isinstance(op, TakeLast)
                    else QSlice(op.features, 0, op.features, op.scale))  # fmt: skip
            nodes.append(replace(n, op=full))
        elif isinstance(op, RecurrentShape) and len(n.outputs) > 1 and any(
                v is not None for v in n.outputs[1:]):  # fmt: skip
            if len(n.outputs) > 2 and n.outputs[2] is not None or n.outputs[0] is None:
                return g
            nodes.append(replace(n, outputs=[n.outputs[0], None]))
            nodes.append(Node(Copy(), [n.outputs[0]], [n.outputs[1]], f"{n.name}/Y_h per step"))
        else:
            nodes.append(n)
    values = [replace(v, last=False) for v in g.values]
    return replace(g, values=values, nodes=nodes)


def fold_dense_graph(g: Graph) -> Graph:
    """`policy.fold_dense` for a graph (int16): a Dense node whose 1-D output is a temp value
    read only by a recurrent node's x is folded into that node's input weights
    (`policy.fold_pair`); the Dense node and its value go, the recurrent node reads the Dense's
    input. `folded` says what was folded; StateSpec.layer (a node index) follows."""
    readers = g.readers()
    updates = {v.update for v in g.values if v.kind == "state"}
    drop_nodes: set[int] = set()
    drop_values: set[int] = set()
    new_ops: dict[int, tuple[object, list[int]]] = {}
    folded = list(g.folded)
    for k, n in enumerate(g.nodes):
        o, xin = n.outputs[0], n.inputs[0]
        if not isinstance(n.op, Dense) or o is None or xin is None:
            continue
        vo, vx = g.values[o], g.values[xin]
        if vo.kind != "temp" or o in updates or len(vo.shape) != 1 or len(vx.shape) != 1:
            continue
        rd = sorted(readers.get(o, ()))
        if len(rd) != 1 or rd[0] in new_ops:
            continue
        r = g.nodes[rd[0]]
        if not isinstance(r.op, Recurrent) or r.inputs[0] != o or o in r.inputs[1:]:
            continue
        f = fold_pair(n.op, r.op)
        if f is None:
            continue
        new_ops[rd[0]] = (f, [xin] + [v for v in r.inputs[1:]])  # type: ignore[misc]
        drop_nodes.add(k)
        drop_values.add(o)
        folded.append(f"Dense node {k} ({n.op.in_features} -> {n.op.out_features}) into the "
                      f"input weights of the {r.op.cell.upper()} node after it (int16)")  # fmt: skip
    if not new_ops:
        return g
    return _rewired(g, drop_nodes, drop_values, new_ops, folded)


def fuse_layer_norms(g: Graph) -> Graph:
    """A layer norm written out in ops (DTLN's instant layer norm: ReduceMean, Sub, Mul(d, d),
    ReduceMean, Add eps, Sqrt, Div, then optionally Mul gamma and Add beta, all over the last axis
    of x) becomes one LayerNorm node over x. Quantized op by op, the squares and the variance
    span more decades than an int16 scale holds (DTLN stage 2: variance 1.8e-5 to 0.44; squares
    below half the Square's step are 0), so a quiet frame divides by a rounded-away deviation;
    the integer LayerNorm sums the squares in 64 bits (docs/quantization.md). The norm's
    intermediate values must be read by nothing else. `folded` says what was fused."""
    prod = g.producers()
    readers = g.readers()
    kept = {v.update for v in g.values if v.kind == "state"} | {g.output}

    def node(v: int | None, kind: type, test: Callable[[object], bool] = lambda op: True) -> int | None:
        if v is None or v not in prod or v in kept or g.values[v].kind != "temp":
            return None
        k = prod[v]
        return k if isinstance(g.nodes[k].op, kind) and test(g.nodes[k].op) else None

    def last_axis_mean(v: int) -> Callable[[object], bool]:
        shape = g.values[g.nodes[prod[v]].inputs[0]].shape if v in prod else ()

        def test(op: object) -> bool:
            axes = {a % len(shape) for a in op.axes} if shape else set()  # type: ignore[attr-defined]
            return (op.kind == "Mean" and len(shape) - 1 in axes  # type: ignore[attr-defined]
                    and all(shape[a] == 1 for a in axes - {len(shape) - 1}))  # fmt: skip
        return test

    def binary(kind: str, const: bool) -> Callable[[object], bool]:
        return lambda op: op.kind == kind and (op.const is not None) == const  # type: ignore[attr-defined]

    def act(kind: str) -> Callable[[object], bool]:
        return lambda op: op.act.kind == kind  # type: ignore[attr-defined]

    def per_feature(op: Binary, shape: tuple[int, ...]) -> np.ndarray | None:
        """The constant of a Mul / Add over the last axis as [F], if it is one."""
        c = np.asarray(op.const, np.float32)
        if c.ndim > len(shape) or any(d != 1 for d in c.shape[:-1]) or c.size not in (1, shape[-1]):
            return None
        return np.broadcast_to(c.reshape(-1), (shape[-1],)).copy()

    drop_nodes: set[int] = set()
    drop_values: set[int] = set()
    new_ops: dict[int, tuple[object, list[int]]] = {}
    folded = list(g.folded)
    for k, n in enumerate(g.nodes):
        if not (isinstance(n.op, Binary) and n.op.kind == "Div" and n.op.const is None):
            continue
        d1, q = n.inputs[0], n.inputs[1]
        kq = node(q, Activation, act("Sqrt"))
        ke = node(g.nodes[kq].inputs[0], Activation, act("Affine")) if kq is not None else None
        if ke is None or g.nodes[ke].op.act.alpha != 1 or not g.nodes[ke].op.act.beta >= 0:
            continue
        var = g.nodes[ke].inputs[0]
        kv = node(var, Reduce, last_axis_mean(var)) if var is not None else None
        sq = g.nodes[kv].inputs[0] if kv is not None else None
        ks = node(sq, Binary, binary("Mul", False))
        if ks is None or g.nodes[ks].inputs[0] != g.nodes[ks].inputs[1]:
            continue
        d2 = g.nodes[ks].inputs[0]
        k1, k2 = node(d1, Binary, binary("Sub", False)), node(d2, Binary, binary("Sub", False))
        if k1 is None or k2 is None or g.nodes[k1].inputs != g.nodes[k2].inputs:
            continue
        x, mean = g.nodes[k1].inputs
        km = node(mean, Reduce, last_axis_mean(mean))
        if km is None or g.nodes[km].inputs[0] != x or x is None:
            continue
        shape = g.values[x].shape
        if any(g.values[v].shape != shape for v in (d1, d2, sq, n.outputs[0])):
            continue
        chain = [km, k1, k2, ks, kv, ke, kq, k]
        out, gamma, beta = n.outputs[0], np.ones(shape[-1], np.float32), None
        for kind in ("Mul", "Add"):  # gamma, then beta
            kn = next(iter(readers.get(out, ())), None) if len(readers.get(out, ())) == 1 else None
            if kn is None or out in kept or not isinstance(g.nodes[kn].op, Binary) or not binary(
                    kind, True)(g.nodes[kn].op):  # fmt: skip
                break
            c = per_feature(g.nodes[kn].op, shape)
            if c is None or g.values[g.nodes[kn].outputs[0]].shape != shape:
                break
            if kind == "Mul":
                gamma = c
            else:
                beta = c
            chain.append(kn)
            out = g.nodes[kn].outputs[0]
        inner = {v for j in chain[:-1] for v in g.nodes[j].outputs if v is not None}
        if any(v in kept or not readers.get(v, set()) <= set(chain) for v in inner):
            continue
        if drop_nodes & set(chain):
            continue
        eps = float(g.nodes[ke].op.act.beta)
        new_ops[chain[-1]] = (LayerNorm(gamma, beta, eps), [x])
        drop_nodes.update(chain[:-1])
        drop_values.update(inner)
        folded.append(f"a layer norm written out in {len(chain)} nodes (node {km} "
                      f"{g.nodes[km].name or 'ReduceMean'} to node {chain[-1]} "
                      f"{g.nodes[chain[-1]].name or 'Div'}) fused into one LayerNorm over its "
                      f"{shape[-1]} features (eps {eps:g})")  # fmt: skip
    if not new_ops:
        return g
    return _rewired(g, drop_nodes, drop_values, new_ops, folded)


# the largest eps of sqrt(a^2 + b^2 + eps) that fuse_magnitudes takes into a Hypot (whose integer
# form drops it: quant.arith.quantize_binary checks that sqrt(eps) is at most half the output step)
MAX_HYPOT_EPS = 1e-6


def fuse_magnitudes(g: Graph) -> Graph:
    """A magnitude written out in ops, Sqrt(Add(a^2, b^2)) with each square a Pow(x, 2) or a
    Mul(x, x) (Silero's STFT magnitude: /stft/Pow, /stft/Pow_1, /stft/Add, /stft/Sqrt), becomes
    one Binary Hypot(a, b). Op by op in int16 the squares span twice the decades of a and b:
    squares below half the Add's step are 0, and the Sqrt table's first segment (0 to 256 steps)
    is a straight line, so on Silero v6 a quiet bin came out up to 3e-2 of the magnitude's range
    wrong and the model's speech probability up to 0.54; HYPOT sums the exact squares in int64
    (docs/quantization.md). The squares and the sum must be read by nothing else."""
    prod = g.producers()
    readers = g.readers()
    kept = {v.update for v in g.values if v.kind == "state"} | {g.output}

    def inner(v: int | None, reader: int) -> int | None:
        """The producer of v, when v is a temp value read by `reader` alone."""
        if v is None or v not in prod or v in kept or g.values[v].kind != "temp":
            return None
        return prod[v] if readers.get(v) == {reader} else None

    def squared(v: int | None, reader: int) -> tuple[int, int] | None:
        """(the square's node, x) when v = x^2 from a Pow(x, 2) or a Mul(x, x)."""
        k = inner(v, reader)
        if k is None:
            return None
        op, ins = g.nodes[k].op, g.nodes[k].inputs
        if isinstance(op, Activation) and op.act.kind == "Pow" and op.act.alpha == 2.0:
            x = ins[0]
        elif (isinstance(op, Binary) and op.kind == "Mul" and op.const is None
              and ins[0] == ins[1]):  # fmt: skip
            x = ins[0]
        else:
            return None
        return None if x is None else (k, x)

    def plus_eps(v: int | None, reader: int) -> tuple[int | None, float, int | None]:
        """(the node of v, 0, None), or for v = s + eps (an Affine of alpha 1 and a beta in (0,
        MAX_HYPOT_EPS], gtcrn's sqrt(re^2 + im^2 + 1e-12)): (the node of s, eps, the Affine's)."""
        k = inner(v, reader)
        if k is None or not isinstance(g.nodes[k].op, Activation):
            return k, 0.0, None
        act = g.nodes[k].op.act
        if act.kind != "Affine" or act.alpha != 1.0 or not 0.0 < act.beta <= MAX_HYPOT_EPS:
            return k, 0.0, None
        return inner(g.nodes[k].inputs[0], k), float(act.beta), k

    drop_nodes: set[int] = set()
    drop_values: set[int] = set()
    new_ops: dict[int, tuple[object, list[int]]] = {}
    folded = list(g.folded)
    for k, n in enumerate(g.nodes):
        if not (isinstance(n.op, Activation) and n.op.act.kind == "Sqrt"):
            continue
        ka, eps, ke = plus_eps(n.inputs[0], k)
        if ka is None or not (isinstance(g.nodes[ka].op, Binary) and g.nodes[ka].op.kind == "Add"
                              and g.nodes[ka].op.const is None):  # fmt: skip
            continue
        s1, s2 = (squared(v, ka) for v in g.nodes[ka].inputs)
        if s1 is None or s2 is None or s1[0] == s2[0]:
            continue  # a square read twice (a^2 + a^2) stays as it is
        (k1, a), (k2, b) = s1, s2
        chain = {k1, k2, ka} | ({ke} if ke is not None else set())
        if drop_nodes & (chain | {k}):
            continue
        new_ops[k] = (Binary("Hypot", beta=eps), [a, b])
        drop_nodes.update(chain)
        drop_values.update({g.nodes[j].outputs[0] for j in chain})
        plus = "" if ke is None else f"node {ke} {g.nodes[ke].name or 'Add'} (+ {eps:g}), "
        folded.append(f"a magnitude written out in {len(chain) + 1} nodes (node {k1} {g.nodes[k1].name or 'Pow'}, "
                      f"node {k2} {g.nodes[k2].name or 'Pow'}, node {ka} {g.nodes[ka].name or 'Add'}, {plus}"
                      f"node {k} {n.name or 'Sqrt'}) fused into one Hypot, "
                      f"sqrt(a^2 + b^2{'' if ke is None else f' + {eps:g}'})")  # fmt: skip
    if not new_ops:
        return g
    return _rewired(g, drop_nodes, drop_values, new_ops, folded)  # type: ignore[arg-type]


def fuse_log_magnitudes(g: Graph) -> Graph:
    """A Log of a magnitude, Log(Affine(...Affine(Hypot(a, b)))) with any number of Affines
    (alpha x + beta, alpha > 0 all told), becomes one Binary LogHypot(a, b) = ln(alpha sqrt(a^2 +
    b^2) + beta) (Silero v4's log spectrum: /stft Sqrt, Mul by 2^20, Add 1, Log). An int16
    magnitude holds the quiet bins in a few units (v4: 5e-4 at a step of 9.8e-4), whose Log is
    then off by the whole grid; LOGHYPOT takes the log of the exact root of the int64 sum of
    squares (docs/quantization.md section 12). The Affines' outputs must be read by the chain
    alone; the Hypot stays when something else reads it too."""
    prod = g.producers()
    readers = g.readers()
    kept = {v.update for v in g.values if v.kind == "state"} | {g.output}

    def only_by(v: int, reader: int) -> bool:
        return v not in kept and g.values[v].kind == "temp" and readers.get(v) == {reader}

    drop_nodes: set[int] = set()
    drop_values: set[int] = set()
    new_ops: dict[int, tuple[object, list[int]]] = {}
    folded = list(g.folded)
    for k, n in enumerate(g.nodes):
        if not (isinstance(n.op, Activation) and n.op.act.kind == "Log"):
            continue
        chain: list[int] = []  # the Affines, last first
        v, reader = n.inputs[0], k
        while (v is not None and v in prod and only_by(v, reader)
               and isinstance(g.nodes[prod[v]].op, Activation)
               and g.nodes[prod[v]].op.act.kind == "Affine"):  # fmt: skip
            reader = prod[v]
            chain.append(reader)
            v = g.nodes[reader].inputs[0]
        if v is None or v not in prod or v in kept:
            continue
        kh = prod[v]
        hyp = g.nodes[kh]
        if (not (isinstance(hyp.op, Binary) and hyp.op.kind == "Hypot") or hyp.op.beta != 0.0
                or drop_nodes & {kh, *chain}):  # (a Hypot with an eps under its root stays)
            continue
        alpha, beta = 1.0, 0.0
        for j in reversed(chain):  # from the Hypot's side: x -> a x + b
            a_j, b_j = g.nodes[j].op.act.alpha, g.nodes[j].op.act.beta
            alpha, beta = a_j * alpha, a_j * beta + b_j
        if not alpha > 0:
            continue
        new_ops[k] = (Binary("LogHypot", alpha=alpha, beta=beta), list(hyp.inputs))
        drop_nodes.update(chain)
        drop_values.update(g.nodes[j].outputs[0] for j in chain)
        names = [f"node {j} {g.nodes[j].name or 'Affine'}" for j in reversed(chain)]
        alone = readers.get(v) == {chain[-1] if chain else k}
        if alone:
            drop_nodes.add(kh)
            drop_values.add(v)
        names.insert(0, f"node {kh} {hyp.name or 'Hypot'}{'' if alone else ' (kept: read elsewhere)'}")
        names.append(f"node {k} {n.name or 'Log'}")
        folded.append(f"a log of a magnitude ({', '.join(names)}) fused into one LogHypot, "
                      f"ln({alpha:g} sqrt(a^2 + b^2) + {beta:g})")  # fmt: skip
    if not new_ops:
        return g
    return _rewired(g, drop_nodes, drop_values, new_ops, folded)  # type: ignore[arg-type]


def drop_dead_cell_outputs(g: Graph) -> Graph:
    """The graph without the Y_c values that nothing reads (no node, no state update, not the
    output): a converter that absorbed a step function's state pair into an LSTM node (the
    node keeps c) leaves its Y_c written but unused. The integer cell's c is int32 Q11.20 and
    has no int16 value to go to; a Y_c that something reads is refused by name instead."""
    read = {v for n in g.nodes for v in n.inputs if v is not None}
    read |= {v.update for v in g.values if v.kind == "state" and v.update is not None}
    read.add(g.output)
    dead = {n.outputs[2] for n in g.nodes if isinstance(n.op, Recurrent) and len(n.outputs) > 2
            and n.outputs[2] is not None and n.outputs[2] not in read}  # fmt: skip
    return _rewired(g, set(), dead, {}, list(g.folded)) if dead else g


def _rewired(g: Graph, drop_nodes: set[int], drop_values: set[int],
             new_ops: dict[int, tuple[object, list[int]]], folded: list[str]) -> Graph:  # fmt: skip
    """g without some nodes and values (indices renumbered), some nodes given new ops and inputs
    (a folded recurrent node, a fused LayerNorm or Hypot); a dropped value is absent from the
    outputs that wrote it."""
    keep = [i for i in range(len(g.values)) if i not in drop_values]
    idx = {old: new for new, old in enumerate(keep)}

    def m(v: int | None) -> int | None:
        return None if v is None or v in drop_values else idx[v]

    values = [replace(g.values[i], update=m(g.values[i].update)) for i in keep]
    nodes: list[Node] = []
    moved: dict[int, int] = {}
    for j, n in enumerate(g.nodes):
        if j in drop_nodes:
            continue
        op, ins = n.op, list(n.inputs)
        if j in new_ops:
            op, ins = new_ops[j]  # its inputs (a folded recurrent node keeps its state inputs)
        moved[j] = len(nodes)
        nodes.append(Node(op, [m(v) for v in ins], [m(v) for v in n.outputs], n.name))
    state = [replace(s, layer=moved.get(s.layer, s.layer)) for s in g.state]
    fg = replace(g, values=values, nodes=nodes, input=idx[g.input], output=idx[g.output],
                 state=state, folded=folded)  # fmt: skip
    plan_arena(fg)
    check_graph(fg)
    return fg


# -- calibration data -----------------------------------------------------------------------------
def graph_input(g: Graph, calibration: np.ndarray | None) -> np.ndarray:
    """The calibration data as run_graph takes it ([T, B, *input shape]; ids for an s32 input),
    or a synthetic set without it: N(0, 2^2) clipped to +-8 (ids uniform over the table)."""
    v = g.values[g.input]
    rng = np.random.default_rng(0)
    ids = v.dtype == "s32"
    if calibration is not None:
        return _calibration_input(g, v, np.asarray(calibration), ids)
    size = (SYNTH_STEPS, SYNTH_BATCH) + v.shape
    if ids:
        V = min((n.op.table.shape[0] for n in g.nodes if isinstance(n.op, Gather)
                 and g.input in n.inputs), default=1)  # fmt: skip
        return rng.integers(0, V, size)
    x = rng.normal(0, DEFAULT_INPUT_RANGE / 4, size)
    return np.clip(x, -DEFAULT_INPUT_RANGE, DEFAULT_INPUT_RANGE).astype(np.float32)


def _calibration_input(g: Graph, v: Value, c: np.ndarray, ids: bool) -> np.ndarray:
    """Calibration data in the model's own input layout (g.input_spec.axes, as quantize_network
    takes it: `reference.graph_rows`), or, with another number of axes, as run_graph takes it."""
    axes = g.input_spec.axes
    if c.dtype.kind not in ("iu" if ids else "fiu"):
        raise InputError(f"calibration: input {v.name!r} takes "
                         f"{'integer ids' if ids else 'numbers'}, got {c.dtype}")  # fmt: skip
    if c.ndim == len(axes) and not set(axes) - set("TBF"):
        c = graph_rows(c, axes)
    if not ids:
        c = c.astype(np.float32)
        if not np.all(np.isfinite(c)):
            raise InputError("calibration: the data holds NaN or infinite values")
    if c.ndim != len(v.shape) + 2 or tuple(c.shape[2:]) != v.shape:
        raise InputError(f"calibration: expected the model's layout {axes!r} or [T, B, "
                         f"{', '.join(map(str, v.shape))}] (input {v.name!r}), got "
                         f"{list(c.shape)}")  # fmt: skip
    if c.size == 0:
        raise InputError("calibration: the data is empty")
    return c


# -- scales ---------------------------------------------------------------------------------------
def _fixed_scale(op: object) -> float | None:
    """The output scale an op fixes whatever its input (None: it follows the input or a range)."""
    if isinstance(op, Activation):
        k = op.act.kind
        if k in ("Sigmoid", "Tanh", "HardSigmoid", "Softmax"):
            return Q15
        if k == "ScaledTanh":
            return float(np.float32(max(abs(op.act.alpha), 1e-12) * fx.Q15_SCALE))
    if isinstance(op, Recurrent) and op.activations[0][0].kind != "Relu":  # Y and Y_h
        return Q15
    if isinstance(op, Gather):
        return quantize_gather(op, "").out_scale
    return None


class _Planner:
    """Scales of every value, in node order, and the integer op of every node."""

    def __init__(self, g: Graph, x: np.ndarray, ranges: Ranges) -> None:
        self.g, self.ranges = g, ranges
        self.seen: dict[int, list[np.ndarray]] = {}
        self.y_f, _ = run_graph(per_step(g), x, seen=self.seen)  # every step a stream outputs
        self.sc: dict[int, float] = {}
        vin = g.values[g.input]
        if vin.dtype != "s32":
            self.sc[g.input] = range_scale(ranges.of(x, DEFAULT_INPUT_RANGE, "input |x|"))
        self.update_of = {v.update: i for i, v in enumerate(g.values)
                          if v.kind == "state" and v.update is not None}  # fmt: skip
        prod = g.producers()
        for i in g.state_values:
            self.sc[i] = self._state_scale(i, prod)
        self.readers = g.readers()
        self.kept = set(self.update_of) | {g.output}
        self._read: dict[int, np.ndarray] = {}

    def obs(self, *vals: int | None) -> np.ndarray | None:
        """Every value the float run computed for these values (None without calibration)."""
        if not self.ranges.calibrated:
            return None
        parts = [np.abs(np.asarray(a, np.float64)).ravel() for v in vals if v is not None
                 for a in self.seen.get(v, [])]  # fmt: skip
        return np.concatenate(parts) if parts else np.zeros(1)

    def _state_scale(self, i: int, prod: dict[int, int]) -> float:
        g, v = self.g, self.g.values[i]
        for n in g.nodes:  # a recurrent node's h_init: the node's h scale
            if isinstance(n.op, Recurrent) and len(n.inputs) > 1 and n.inputs[1] == i:
                if n.op.activations[0][0].kind != "Relu":
                    return Q15
                vals = self._with_init(self.obs(*[o for o in n.outputs[:2]], v.update), v)
                return range_scale(self.ranges.of(vals, DEFAULT_RELU_RANGE,
                                                  f"{n.name or 'RNN'} hidden |h|"))  # fmt: skip
        if v.update is not None and v.update in prod:
            up = g.nodes[prod[v.update]]
            # a recurrent node's Y_c (its cell state) has a range of its own, not Y / Y_h's
            y_c = isinstance(up.op, Recurrent) and up.outputs[2:3] == [v.update]
            fixed = None if y_c else _fixed_scale(up.op)
            if fixed is not None:
                return fixed
        vals = self._with_init(self.obs(v.update), v)
        return range_scale(self.ranges.of(vals, DEFAULT_VALUE_RANGE, f"state {v.name!r} |value|"))

    @staticmethod
    def _with_init(vals: np.ndarray | None, v: Value) -> np.ndarray | None:
        """A state holds its initial value and then its updates: the range covers both."""
        if vals is None or v.init is None:
            return vals
        return np.concatenate([vals, np.abs(np.asarray(v.init, np.float64)).ravel()])

    def read_part(self, v: int) -> np.ndarray:
        """|v| where something reads it: a temp value whose readers are all Slices, Copies,
        Transposes and Relus (ops that pass their input's scale) needs only the elements they
        pass on, and of those only what their own readers read; the rest may saturate (a
        negative value read by a Relu becomes 0 all the same). Anything else reads all of v."""
        if v in self._read:
            return self._read[v]
        ks = self.readers.get(v, set())
        passing = (Slice, Copy, Transpose)
        if (v in self.kept or self.g.values[v].kind != "temp" or not ks
                or not all(isinstance(self.g.nodes[k].op, passing) or (
                    isinstance(self.g.nodes[k].op, Activation)
                    and self.g.nodes[k].op.act.kind == "Relu") for k in ks)):  # fmt: skip
            out = self.obs(v)
        else:
            out = np.concatenate([np.zeros(1)] + [self.read_part(self.g.nodes[k].outputs[0])
                                                  for k in sorted(ks)])  # fmt: skip
        assert out is not None
        self._read[v] = out
        return out

    def out_range(self, v: int, default: float, what: str) -> float:
        return self.ranges.of(self.read_part(v) if self.ranges.calibrated else None, default, what)

    def free_scale(self, v: int, default: float, what: str) -> float:
        """The scale of a value whose range is calibrated (or a state's, when it is an update)."""
        if v in self.update_of:
            return self.sc[self.update_of[v]]
        return range_scale(self.out_range(v, default, what))


def _kind(op: object) -> str:
    if isinstance(op, Recurrent):
        return op.cell.upper()
    if isinstance(op, Activation):
        return op.act.kind
    if isinstance(op, (Binary, Reduce)):
        return f"{type(op).__name__}{op.kind}"
    return type(op).__name__


Builder = Callable[[str], IntLayer]  # wfmt -> the integer op of a weighted node


def _plan(p: _Planner) -> tuple[list[Node], list[Value], dict[int, Builder], list[int | None]]:
    """The integer nodes (weighted ones as builders), the integer values, in order. A node whose
    output is a state's update but comes at another scale (an op that fixes its scale) is followed
    by an Identity activation that requantizes it to the state's scale; a computed h_init at
    another scale than its node's h is requantized the same way before the node. A value the
    quantizer adds keeps the delay of the value it stands for (docs/graph.md section 6)."""
    g, sc = p.g, p.sc
    nodes: list[Node] = []
    origin: list[int | None] = []  # the float node each integer node comes from
    extra: list[Value] = []
    builders: dict[int, Builder] = {}
    for k, n in enumerate(g.nodes):
        op, where = n.op, f"node {k} ({n.name or _kind(n.op)})"
        ins = list(n.inputs)
        ids = [v is not None and g.values[v].dtype == "s32" for v in ins]
        if any(ids) != isinstance(op, Gather) or (isinstance(op, Gather) and not ids[0]):
            raise ConvertError(f"{where}: integer ids (an s32 value) are read by a Gather, and a "
                               "Gather reads nothing else")  # fmt: skip
        s_in = sc.get(ins[0]) if ins[0] is not None else None
        o = n.outputs[0]
        assert o is not None
        q: object
        outs: dict[int, float] = {}
        if isinstance(op, Dense):
            if p.ranges.calibrated or o in p.update_of:
                s_out = p.free_scale(o, 0.0, "")
            else:  # the pipeline's static bound
                w = np.abs(np.asarray(op.weight, np.float64)).sum(axis=1) * 32767 * s_in
                b = 0.0 if op.bias is None else np.abs(np.asarray(op.bias, np.float64))
                s_out = range_scale(max(float((w + b).max(initial=0)), 1e-6))
            builders[len(nodes)] = (lambda op, s_in, s_out, where: lambda wf: quantize_dense(
                op, wf, s_in, s_out, where))(op, s_in, s_out, where)  # fmt: skip
            q, outs = None, {o: s_out}
        elif isinstance(op, Conv):
            if not getattr(fx, "QGRAPH_RUNS_CONV", False):
                raise UnsupportedOpError(
                    f"{where}: an integer CONV needs run_qgraph to run conv nodes (their oracle is "
                    "fixedpoint.conv_q, docs/graph.md section 6), which this rnnedge does not do "
                    "yet; keep this model in f32"
                )
            if p.ranges.calibrated or o in p.update_of:
                s_out = p.free_scale(o, 0.0, "")
            else:  # QDense's static bound, per output channel
                w = np.abs(conv_channels(op, np.asarray(op.weight, np.float64))).sum(axis=1) * 32767 * s_in
                b = 0.0 if op.bias is None else np.abs(np.asarray(op.bias, np.float64))
                s_out = range_scale(max(float((w + b).max(initial=0)), 1e-6))
            builders[len(nodes)] = (lambda op, s_in, s_out, where: lambda wf: quantize_conv(
                op, wf, s_in, s_out, where))(op, s_in, s_out, where)  # fmt: skip
            q, outs = None, {o: s_out}
        elif isinstance(op, Recurrent):
            # the cell state as a value (docs/quantization.md section 14): c_init (at its value's
            # scale) to Q11.20, Q11.20 to Y_c at a scale of its own (its state's, when it is an
            # update; else its calibrated range)
            c_v = ins[2] if len(ins) > 2 else None
            yc_v = n.outputs[2] if len(n.outputs) > 2 else None
            c_in = None if c_v is None else make_mult(sc[c_v] * 2.0**fx.C_FRAC, 32768,
                                                      f"{where} (c_init to Q11.20)")  # fmt: skip
            s_c = None if yc_v is None else p.free_scale(yc_v, DEFAULT_VALUE_RANGE,
                                                          f"{where} cell |c|")  # fmt: skip
            c_out = None if s_c is None else make_mult(2.0**-fx.C_FRAC / s_c, 2.0**31,
                                                       f"{where} (Q11.20 to Y_c)")  # fmt: skip
            h_in = ins[1] if len(ins) > 1 else None
            if h_in is not None and g.values[h_in].kind == "state":
                s_h = sc[h_in]  # the state's scale is this node's h scale (_state_scale)
            elif op.activations[0][0].kind == "Relu":
                s_h = range_scale(p.ranges.of(p.obs(*n.outputs[:2], h_in), DEFAULT_RELU_RANGE,
                                              f"{where} hidden |h|"))  # fmt: skip
            else:
                s_h = Q15  # the cell writes h in Q0.15 whatever it reads
            if h_in is not None and sc[h_in] != s_h:  # a computed h_init: requantized to s_h
                tmp = len(g.values) + len(extra)
                extra.append(Value(f"{g.values[h_in].name}/h_scaled", g.values[h_in].shape,
                                   "s16", scale=s_h, last=g.values[h_in].last,
                                   delay=g.values[h_in].delay))  # fmt: skip
                m = make_mult(sc[h_in] / s_h, 65536, f"{where} (h_init requantized)")
                nodes.append(Node(QActivation("Identity", g.values[h_in].features, sc[h_in], s_h,
                                              m), [h_in], [tmp], f"{n.name or 'h_init'}/h_init"))
                origin.append(None)
                sc[tmp] = s_h
                ins[1] = tmp
            builders[len(nodes)] = (lambda op, s_in, s_h, where, c_in, c_out: lambda wf: replace(
                quantize_recurrent(op, wf, s_in, s_h, where), c_in=c_in, c_out=c_out))(
                op, s_in, s_h, where, c_in, c_out)  # fmt: skip
            q = None
            outs = {v: s_h for v in n.outputs[:2] if v is not None}
            if yc_v is not None and s_c is not None:
                outs[yc_v] = s_c
        elif isinstance(op, Activation):
            rng = None
            if p.ranges.calibrated and op.act.kind in ("Affine", "LogSoftmax") + UNBOUNDED_LUT_KINDS:
                rng = p.out_range(o, 0.0, "")
            q = quantize_activation(op, s_in, rng, where)
            outs = {o: q.out_scale}
        elif isinstance(op, LayerNorm):
            rng = p.out_range(o, 0.0, "") if p.ranges.calibrated else None
            q = quantize_layernorm(op, s_in, rng, where)
            outs = {o: q.out_scale}
        elif isinstance(op, TakeLast):
            q, outs = QTakeLast(op.features, op.split, s_in), {o: s_in}
        elif isinstance(op, Slice):
            q = QSlice(op.features, op.start, op.stop, s_in, axis=op.axis, step=op.step)
            outs = {o: s_in}
        elif isinstance(op, (Transpose, Copy)):
            q, outs = op, {o: s_in}
        elif isinstance(op, Gather):
            q = quantize_gather(op, where)
            outs = {o: q.out_scale}
        elif isinstance(op, Concat):
            s_ins = [sc[v] for v in ins if v is not None]
            s_out = sc[p.update_of[o]] if o in p.update_of else max(s_ins)
            q = quantize_concat(op, s_ins, s_out, len(g.values[o].shape), where)
            outs = {o: s_out}
        elif isinstance(op, Reduce):
            shape = g.values[ins[0]].shape
            cnt = int(np.prod([shape[a % len(shape)] for a in op.axes]))
            if op.kind in ("Max", "Min") and o not in p.update_of:
                s_out = s_in
            else:
                bound = 32767 * s_in * (cnt if op.kind == "Sum" else 1)
                s_out = p.free_scale(o, bound, f"{where} |y|")
            q, outs = quantize_reduce(op, cnt, s_in, s_out, len(shape), where), {o: s_out}
        elif isinstance(op, Binary):
            s_b = sc[ins[1]] if len(ins) > 1 and ins[1] is not None else None
            s_out = _binary_scale(p, op, s_in, s_b, o, where)
            q, outs = quantize_binary(op, s_in, s_b, s_out, where), {o: s_out}
        else:
            raise ConvertError(f"{where}: {type(op).__name__} has no integer form")
        producer = Node(q, ins, list(n.outputs), n.name)
        nodes.append(producer)
        origin.append(k)
        for v, s in outs.items():  # an update at another scale than its state's: requantize
            sc[v] = sc[p.update_of[v]] if v in p.update_of else s
            if s != sc[v]:
                tmp = len(g.values) + len(extra)
                # the producer's output: its delay (a node after a lookahead conv lags the
                # input: docs/graph.md section 6), so that the Identity skips as its reader does
                extra.append(Value(f"{g.values[v].name}/unscaled", g.values[v].shape, "s16",
                                   scale=s, last=g.values[v].last, delay=g.values[v].delay))  # fmt: skip
                producer.outputs = [tmp if u == v else u for u in producer.outputs]
                s_st = sc[p.update_of[v]]
                m = make_mult(s / s_st, 65536, f"{where} (requantized to state "
                              f"{g.values[p.update_of[v]].name!r})")  # fmt: skip
                feats = g.values[v].features
                nodes.append(Node(QActivation("Identity", feats, s, s_st, m), [tmp], [v],
                                  f"{n.name or _kind(op)}/requantize"))  # fmt: skip
                origin.append(None)
                sc[tmp] = s
    values = []
    for i, v in enumerate(g.values):
        ids = v.dtype == "s32"
        s = 0.0 if ids else sc[i]
        init = None if v.init is None else fx.quantize(np.asarray(v.init), s)
        values.append(replace(v, dtype="s32" if ids else "s16", scale=s, init=init))
    values.extend(extra)
    return nodes, values, builders, origin


def _float_twin(g: Graph, nodes: list[Node], origin: list[int | None],
                values: list[Value]) -> Graph:  # fmt: skip
    """The float graph node for node with the integer one (its `source`: the blob writer takes
    each integer node's record fields from it): the float ops, an Identity activation for each
    requantization the quantizer inserted, Concat and Reduce axes counted from the front."""
    fvals = [replace(v) for v in g.values]
    fvals += [replace(v, dtype="f32", scale=0.0, init=None) for v in values[len(g.values):]]
    fnodes = []
    for n, o in zip(nodes, origin):
        out = values[n.outputs[0]]
        if o is None:
            op: object = Activation(Act.make("Identity"), out.features)
        else:
            op = g.nodes[o].op
            if isinstance(op, Concat):
                op = Concat(op.axis % len(out.shape))
            elif isinstance(op, Reduce):
                nd = len(values[n.inputs[0]].shape)
                op = Reduce(op.kind, tuple(sorted(a % nd for a in op.axes)))
        fnodes.append(Node(op, list(n.inputs), list(n.outputs), n.name))
    twin = replace(g, values=fvals, nodes=fnodes)
    plan_arena(twin)
    check_graph(twin)
    return twin


def _binary_scale(p: _Planner, op: Binary, s_a: float, s_b: float | None, o: int,
                  where: str) -> float:  # fmt: skip
    if o in p.update_of:
        return p.sc[p.update_of[o]]
    r_a = 32767 * s_a
    if op.const is not None:
        r_b = float(np.abs(np.asarray(op.const, np.float64)).max(initial=0.0))
        s_b = range_scale(max(r_b, 1e-12))
    else:
        assert s_b is not None
        r_b = 32767 * s_b
    if op.kind in ("Min", "Max"):
        return max(s_a, s_b)
    bound = {"Add": r_a + r_b, "Sub": r_a + r_b, "Mul": r_a * r_b,
             "Hypot": math.hypot(r_a, r_b)}.get(op.kind, DEFAULT_VALUE_RANGE)  # fmt: skip
    if op.kind == "LogHypot":  # ln over the magnitude's range (its smallest step to its largest)
        ends = [op.alpha * m + op.beta for m in (min(s_a, s_b), math.hypot(r_a, r_b))]
        bound = max([abs(math.log(x)) for x in ends if x > 0], default=DEFAULT_VALUE_RANGE)
    return range_scale(p.out_range(o, bound, f"{where} |y|"))


# -- the accuracy policy --------------------------------------------------------------------------
def _graph_bar(g: Graph, quant: str, layer_tol: float | None) -> _Bar:
    """The pipeline's bar (policy._bar), with the head found as the node writing the output."""
    if layer_tol is not None:
        return _Bar(layer_tol)
    if quant != "int8":
        return _Bar(LAYER_TOL[WFMT[quant]])
    head = g.nodes[g.producers()[g.output]].op
    out = g.values[g.output]
    if isinstance(head, Activation) and head.act.kind in CLASSIFIER_HEADS and out.shape[-1] > 1:
        return _Bar(LAYER_TOL["s8"], (1.0 - MIN_AGREEMENT) / SAFETY)
    return _Bar(LAYER_TOL["s8"] / SAFETY)


def run_float(qg: Graph, x: np.ndarray, seen: dict[int, list[np.ndarray]] | None = None,
              reuse: fx.Reuse | None = None) -> np.ndarray:  # fmt: skip
    """Float in, float out through the integer graph: x quantized at the input scale (ids as
    they are), `fixedpoint.run_qgraph` (`seen`, `reuse` as there), the output dequantized."""
    vin = qg.values[qg.input]
    xq = np.asarray(x) if vin.dtype == "s32" else fx.quantize(x, vin.scale)
    yq, _ = fx.run_qgraph(qg, xq, seen=seen, reuse=reuse)
    return fx.dequantize(yq, qg.out_scale)


def quantize_graph(
    g: Graph,
    quant: str = "int8",
    calibration: np.ndarray | None = None,
    *,
    percentile: float = 100.0,
    strict: bool = False,
    layer_tol: float | None = None,
    headroom: float = HEADROOM,
) -> Graph:
    """Quantize a float Graph for `quant` ("int8" or "int16"); the arguments are
    `quantize_network`'s. calibration: representative inputs, [T, B, *input shape] (for a 1-D
    input, the model's own layout `g.input_spec.axes`, as quantize_network takes them); integer
    ids for an s32 input. Returns the integer Graph (s16 values with scales, integer nodes,
    `source` the float graph, `report` per node, `accuracy` end to end on the same data)."""
    if quant not in WFMT:
        raise InputError(f"quant={quant!r}: the integer formats are {', '.join(WFMT)}")
    if not 0 < percentile <= 100:
        raise InputError(f"percentile={percentile}: must be in (0, 100]")
    if not headroom >= 1:
        raise InputError(f"headroom={headroom}: must be >= 1")
    check_graph(g)
    if g.quant != "f32":
        raise InputError(f"the graph is already {g.quant}; quantize its float source")
    net = as_network(g)
    if net is not None:
        qnet = quantize_network(net, quant, calibration, percentile=percentile, strict=strict,
                                layer_tol=layer_tol, headroom=headroom)  # fmt: skip
        return _from_pipeline(qnet, g)
    return quantize_dataflow(g, quant, calibration, percentile=percentile, strict=strict,
                             layer_tol=layer_tol, headroom=headroom)  # fmt: skip


def quantize_dataflow(
    g: Graph, quant: str = "int8", calibration: np.ndarray | None = None, *,
    percentile: float = 100.0, strict: bool = False, layer_tol: float | None = None,
    headroom: float = HEADROOM,
) -> Graph:  # fmt: skip
    """quantize_graph's general path (any graph, pipelines included: the tests compare the two)."""
    check_graph(g)
    g = fuse_log_magnitudes(fuse_magnitudes(fuse_layer_norms(drop_dead_cell_outputs(g))))
    if quant == "int16":
        g = fold_dense_graph(g)
    ranges = Ranges(calibration is not None, percentile, headroom)
    x = graph_input(g, calibration)
    p = _Planner(g, x, ranges)
    nodes, values, builders, origin = _plan(p)
    twin = _float_twin(g, nodes, origin, values)
    bar = _graph_bar(g, quant, layer_tol)

    def build(wf: dict[int, str]) -> Graph:
        ns = [replace(n, op=builders[k](wf[k])) if k in builders else n
              for k, n in enumerate(nodes)]  # fmt: skip
        return replace(g, values=values, nodes=ns, quant=quant, state=list(g.state),
                       value_specs=dict(g.value_specs), folded=list(g.folded), source=twin,
                       report=[], accuracy={}, calibrated=ranges.calibrated)  # fmt: skip

    def measure(wf: dict[int, str]) -> dict[str, float]:
        return accuracy(run_float(per_step(build(wf)), x), p.y_f)

    def misses(a: dict[str, float]) -> bool:
        return bar.misses(a["rel_max_err"], a.get("argmax_agreement"))

    def effect(a: dict[str, float]) -> str:
        text = f"{a['rel_max_err']:.3g} of the model output's range"
        if "argmax_agreement" in a:
            text += f", argmax agreement {100 * a['argmax_agreement']:.2f}%"
        return text

    def kind(k: int) -> str:
        o = origin[k]
        return "Identity (requantize)" if o is None else _kind(g.nodes[o].op)

    def name(k: int) -> str:
        return f"node {k} ({nodes[k].name or kind(k)})"

    wf = {k: WFMT[quant] for k in builders}
    effects: dict[int, dict[str, float]] = {}
    notes: dict[int, str] = {}
    if quant == "int8":
        # every weighted node at int16, each value kept: a kept node's effect, and what each
        # measurement of one node's int8 weights recomputes only downstream of that node
        s16 = {j: "s16" for j in builders}
        base = per_step(build(s16))
        base_seen: dict[int, list[np.ndarray]] = {}
        a16 = accuracy(run_float(base, x, base_seen), p.y_f)

        def all16() -> dict[str, float]:
            return a16

        def one_int8(k: int) -> dict[str, float]:
            """Node k's int8 weights, the other weighted nodes at int16: measure(...)'s figures."""
            qg = per_step(build({j: "s8" if j == k else "s16" for j in builders}))
            at = next(i for i, n in enumerate(qg.nodes) if n.outputs[0] == nodes[k].outputs[0])
            return accuracy(run_float(qg, x, reuse=(base_seen, {at})), p.y_f)

        with Progress(len(builders), "int8: checking each weighted node's accuracy") as checks:
            for k in builders:  # this node's int8 weights, the other weighted nodes at int16
                checks.update(name(k))
                effects[k] = a8 = one_int8(k)
                if not misses(a8):
                    continue
                if strict:
                    raise ConvertError(f"{name(k)}: int8 weights give {effect(a8)}, missing the bar "
                                       f"({bar}); strict int8 refuses (without strict this node "
                                       "keeps int16 weights)")  # fmt: skip
                wf[k], effects[k] = "s16", all16()
                notes[k] = (f"kept at int16 weights: int8 weights gave {effect(a8)} (bar: {bar}); "
                            f"int16 weights give {effect(all16())}")  # fmt: skip
                warnings.warn(f"{name(k)}: {notes[k]}", stacklevel=2)
        total = measure(wf)
        while misses(total) and any(w == "s8" for w in wf.values()):
            worst = max((k for k in wf if wf[k] == "s8"), key=lambda k: effects[k]["rel_max_err"])
            if strict:
                raise ConvertError(f"the int8 nodes together give {effect(total)}, missing the bar "
                                   f"({bar}); the largest part is {name(worst)}'s; strict int8 "
                                   "refuses")  # fmt: skip
            wf[worst] = "s16"
            effects[worst] = all16()
            notes[worst] = (f"kept at int16 weights: the int8 nodes together gave {effect(total)} "
                            f"(bar: {bar}), this one the largest part")  # fmt: skip
            warnings.warn(f"{name(worst)}: {notes[worst]}", stacklevel=2)
            total = measure(wf)
    qg = build(wf)
    seen: dict[int, list[np.ndarray]] = {}
    y_q = run_float(per_step(qg), x, seen)
    qg.accuracy = accuracy(y_q, p.y_f)
    if quant != "int8" and misses(qg.accuracy):
        notes[len(nodes) - 1] = f"the model output misses the bar ({bar}): {effect(qg.accuracy)}"
    for k, n in enumerate(qg.nodes):
        o = n.outputs[0]
        err = None
        if o is not None and o in p.seen and o in seen:
            yq = np.concatenate([fx.dequantize(a, qg.values[o].scale) for a in seen[o]])
            err = _error(yq, np.concatenate(p.seen[o]))
        wfmt = wf.get(k, getattr(n.op, "wfmt", "s16"))
        out_err = effects[k]["rel_max_err"] if k in effects else None
        qg.report.append(LayerReport(k, kind(k), wfmt, err, out_err, notes.get(k, "")))
    if ranges.defaults:
        warnings.warn(CalibrationWarning.assumed(ranges.defaults), stacklevel=2)
    plan_arena(qg)
    check_graph(qg)
    return qg


__all__ = ["as_network", "fuse_layer_norms", "fuse_log_magnitudes", "fuse_magnitudes", "graph_input", "quantize_dataflow", "quantize_graph", "run_float"]
