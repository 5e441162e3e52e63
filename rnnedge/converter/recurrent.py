"""The ONNX LSTM, GRU and RNN ops -> a Recurrent layer, with their optional inputs resolved.

Inputs: X, W, R, B, sequence_lens, initial_h, initial_c (LSTM), P (LSTM). Outputs: Y [T, D, B, H]
(layout 1: [B, T, D, H]), Y_h [D, B, H] (layout 1: [B, D, H]) and, for LSTM, Y_c.
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import ConvertError, UnsupportedOpError
from ..ir.layers import (
    ACTIVATIONS, CELL_ACTIVATIONS, CELL_GATES, DEFAULT_CELL_ACTIVATIONS, Act, Recurrent, TakeLast,
)  # fmt: skip
from .node import Node, OpContext, floats_of, ints_of
from .values import (CellState, Const, Data, Dim, Filled, StateIn, SymInts, Value, describe, dim_str, dims_agree,
                     normalize, shape_str)

CELLS = {"LSTM": "lstm", "GRU": "gru", "RNN": "rnn"}

# Activation functions of the recurrent ops, by lower-case name, with whether they take alpha
# and beta. When activation_alpha/beta run out, onnxruntime (the oracle) uses these defaults.
CELL_FUNCS: dict[str, tuple[str, bool, bool, float, float]] = {
    "sigmoid": ("Sigmoid", False, False, 0.0, 0.0),
    "tanh": ("Tanh", False, False, 0.0, 0.0),
    "relu": ("Relu", False, False, 0.0, 0.0),
    "leakyrelu": ("LeakyRelu", True, False, 0.01, 0.0),
    "thresholdedrelu": ("ThresholdedRelu", True, False, 0.0, 0.0),
    "scaledtanh": ("ScaledTanh", True, True, 0.0, 0.0),
    "hardsigmoid": ("HardSigmoid", True, True, 0.2, 0.5),
    "elu": ("Elu", True, False, 1.0, 0.0),
    "softsign": ("Softsign", False, False, 0.0, 0.0),
    "softplus": ("Softplus", False, False, 0.0, 0.0),
    "affine": ("Affine", True, True, 0.0, 0.0),
}


def _activations(node: Node, cell: str, dirs: int) -> list[list[Act]]:
    """The activation attribute, alpha and beta consumed in order by the functions that use them."""
    n = CELL_ACTIVATIONS[cell]
    names = node.strs_attr("activations")
    if not names:
        names = list(DEFAULT_CELL_ACTIVATIONS[cell]) * dirs
    if len(names) == n and dirs == 2:
        names = names * 2
    if len(names) != n * dirs:
        raise node.refuse_attr("activations", names, f"{n * dirs} names for a {cell.upper()} with {dirs} direction(s)")
    alphas = node.floats_attr("activation_alpha") or []
    betas = node.floats_attr("activation_beta") or []
    acts: list[Act] = []
    for name in names:
        entry = CELL_FUNCS.get(str(name).lower())
        if entry is None:
            raise node.refuse_attr("activations", name, ", ".join(v[0] for v in CELL_FUNCS.values()))
        kind, uses_a, uses_b, da, db = entry
        alpha = (alphas.pop(0) if alphas else da) if uses_a else ACTIVATIONS[kind][0]
        beta = (betas.pop(0) if betas else db) if uses_b else ACTIVATIONS[kind][1]
        acts.append(Act.make(kind, alpha, beta))
    return [acts[d * n : (d + 1) * n] for d in range(dirs)]


def _weights(ins: list[Value | None], i: int, what: str, shape: tuple[int, ...], why: str) -> np.ndarray | None:
    if i >= len(ins) or ins[i] is None:
        return None
    a = floats_of(ins[i], what, np.float32)
    if a.shape != shape:
        raise ConvertError(f"{what} has shape {list(a.shape)}, expected {list(shape)} ({why})")
    return np.ascontiguousarray(a)


def _check_shape(ctx: OpContext, what: str, shape: tuple[Dim, ...], expected: tuple[Dim, ...], why: str) -> None:
    """An input of a recurrent op has the shape its attributes and X imply: refused by name when
    it provably has not, reported as unproven (a warning) when that depends on run-time sizes."""
    verdicts = [dims_agree(a, b) for a, b in zip(shape, expected)]
    if len(shape) != len(expected) or False in verdicts:
        raise ConvertError(f"{what} has shape {shape_str(shape)}, expected {shape_str(expected)} ({why})")
    if None in verdicts:
        ctx.unproven(f"{what} has shape {shape_str(shape)}, expected {shape_str(expected)} ({why}); "
                     "which sizes agree depends on the run-time sizes")


def _check_lengths(ctx: OpContext, ins: list[Value | None], x: Data) -> str | None:
    """sequence_lens: accepted when it is [B] and every length is the full T; else refused by name."""
    if len(ins) <= 4 or ins[4] is None:
        return None
    value, t = ins[4], x.sizes["T"]
    shape = (value.array.shape if isinstance(value, Const) else value.shape
             if isinstance(value, (SymInts, Filled)) else None)  # fmt: skip
    if shape is not None:
        _check_shape(ctx, "input sequence_lens", tuple(shape), (x.sizes["B"],), "one length per batch item")
    if isinstance(value, Const):
        lengths = ints_of(value, "input sequence_lens")
    elif isinstance(value, SymInts):
        lengths = list(value.items)  # type: ignore[arg-type]
    elif isinstance(value, Filled):
        lengths = [value.value]  # type: ignore[list-item]
    else:
        raise UnsupportedOpError(
            f"input sequence_lens is a {describe(value)}: rnnedge runs every sequence to its full "
            "length T and supports sequence_lens only when it is a constant equal to T"
        )
    if any(n != t for n in lengths):
        raise UnsupportedOpError(
            f"input sequence_lens = {[dim_str(n) for n in lengths][:8]} is not the full length T = "
            f"{dim_str(t)} for every sequence: rnnedge does not mask padded steps; pad or split "
            "the batch instead, or export without sequence_lens"
        )
    return "sequence_lens (every sequence full length)"


def _initial(ctx: OpContext, rec: Recurrent, node: Node, ins: list[Value | None], i: int, kind: str,
             x: Data, layout: int) -> np.ndarray | None:
    """initial_h / initial_c: absent or zeros -> None; a constant -> [D, H]; a graph input -> state."""
    if i >= len(ins) or ins[i] is None:
        return None
    value = ins[i]
    d, h = rec.num_directions, rec.hidden
    what = f"input initial_{kind}"
    b = x.sizes["B"]
    expected = (d, b, h) if layout == 0 else (b, d, h)
    why = (f"hidden_size {h}, direction {rec.direction!r}, batch {dim_str(b)} of X, "
           f"layout {layout}: [{'D, B, H' if layout == 0 else 'B, D, H'}]")
    if isinstance(value, (Filled, StateIn, Const)):
        shape = value.array.shape if isinstance(value, Const) else value.shape
        _check_shape(ctx, what, tuple(shape), expected, why)
    if isinstance(value, Filled):
        if not isinstance(value.value, (int, float)):
            raise UnsupportedOpError(f"{what} is filled with the run-time size {value.value}, not a constant")
        if value.value == 0:
            return None
        return np.full((d, h), float(value.value), np.float32)
    if isinstance(value, StateIn):
        if value.squeezed or value.stop - value.start != d or value.hidden != h:
            raise ConvertError(f"{what} is {describe(value)} of hidden size {value.hidden}; expected {d} rows of {h}")
        ctx.bind_state(rec, kind, value)
        return None
    if isinstance(value, Const):
        a = floats_of(value, what, np.float32)
        if a.ndim != 3:
            raise ConvertError(f"{what} has shape {list(a.shape)}, expected 3 axes")
        if layout == 1:
            a = a.transpose(1, 0, 2)
        if a.shape[0] != d or a.shape[2] != h:
            raise ConvertError(f"{what} has shape {list(a.shape)}, expected [{d}, B, {h}]")
        if not np.all(a == a[:, :1, :]):
            raise UnsupportedOpError(
                f"{what} differs between batch items: rnnedge keeps one initial state per layer"
            )
        return None if not a.any() else np.ascontiguousarray(a[:, 0, :])
    raise UnsupportedOpError(
        f"{what} is a {describe(value)}: an initial state computed from the data (an encoder "
        "feeding a decoder?) is not supported; rnnedge takes constants, zeros or a graph input"
    )


def op_recurrent(ctx: OpContext, node: Node, ins: list[Value | None]) -> list[Value]:
    cell = CELLS[node.op]
    x = ins[0]
    if not isinstance(x, Data):
        raise ConvertError(f"input X must be the data tensor, got a {describe(x)}")
    layout = node.int_attr("layout", 0)
    if layout not in (0, 1):
        raise node.refuse_attr("layout", layout, "0, 1")
    expected = (("T",), ("B",), ("F",)) if layout == 0 else (("B",), ("T",), ("F",))
    if x.axes != expected:
        raise ctx.layout_mismatch(
            f"input X is [{x.layout()}], but {node.op} with layout={layout} reads "
            f"[{','.join(a[0] for a in expected)}]"
        )
    if x.taken:
        raise UnsupportedOpError(f"a {node.op} after the last timestep was selected")
    direction = node.str_attr("direction", "forward")
    if direction not in ("forward", "reverse", "bidirectional"):
        raise node.refuse_attr("direction", direction, "forward, reverse, bidirectional")
    dirs = 2 if direction == "bidirectional" else 1
    if x.reversed:  # run over a time-reversed input = the other direction, output reversed
        if dirs == 2:
            raise UnsupportedOpError(f"a bidirectional {node.op} over a time-reversed input")
        direction = "reverse" if direction == "forward" else "forward"
    g = CELL_GATES[cell]
    w_in = floats_of(ins[1], "input W")
    if w_in.ndim != 3:
        raise ConvertError(f"input W has shape {list(w_in.shape)}, expected [D, {g}*H, I]")
    hidden = node.int_attr("hidden_size", w_in.shape[1] // g)
    if hidden < 1 and node.has("hidden_size"):
        raise node.bad_attr("hidden_size", hidden, "a positive integer")
    if hidden < 1:
        raise ConvertError(f"input W has shape {list(w_in.shape)}: no hidden_size, and no {g} gates to infer it from")
    i_size = x.features
    why = f"hidden_size {hidden}, direction {node.str_attr('direction', 'forward')!r}, input size {i_size} of X"
    W = _weights(ins, 1, "input W", (dirs, g * hidden, i_size), why)
    R = _weights(ins, 2, "input R", (dirs, g * hidden, hidden), why)
    B = _weights(ins, 3, "input B", (dirs, 2 * g * hidden), why)
    P = _weights(ins, 7, "input P", (dirs, 3 * hidden), why) if cell == "lstm" else None
    assert W is not None and R is not None
    clip = node.float_attr("clip", 0.0, allow_inf=True) if node.has("clip") else None
    if clip is not None and not clip > 0:
        raise node.refuse_attr("clip", clip, "a positive threshold")
    if clip is not None and math.isinf(clip):  # clamping to +-inf clamps nothing
        clip = None
    input_forget = bool(node.int_attr("input_forget", 0)) if cell == "lstm" else False
    lbr = bool(node.int_attr("linear_before_reset", 0)) if cell == "gru" else False
    rec = Recurrent(
        cell=cell,
        direction=direction,
        W=W,
        R=R,
        B=B,
        P=P,
        activations=_activations(node, cell, dirs),
        clip=clip,
        input_forget=input_forget,
        linear_before_reset=lbr,
    )
    note = _check_lengths(ctx, ins, x)
    if note:
        ctx.note(node, note)
    rec.initial_h = _initial(ctx, rec, node, ins, 5, "h", x, layout)
    if cell == "lstm":
        rec.initial_c = _initial(ctx, rec, node, ins, 6, "c", x, layout)

    sizes = {**x.sizes, "D": dirs, "H": hidden, "F": dirs * hidden}
    t, b = ("T",), ("B",)
    y_axes = (t, ("D",), b, ("H",)) if layout == 0 else (b, t, ("D",), ("H",))
    y = normalize(Data(x.layers + (rec,), y_axes, sizes, reversed=x.reversed))
    split = {"forward": hidden, "reverse": 0, "bidirectional": hidden}[direction]
    h_axes = (("D",), b, ("H",)) if layout == 0 else (b, ("D",), ("H",))
    y_h = Data(x.layers + (rec, TakeLast(dirs * hidden, split)), h_axes, {**sizes, "T": 1}, True, rec)
    outs: list[Value] = [y, y_h]
    if cell == "lstm":
        outs.append(CellState(rec))
    return outs
