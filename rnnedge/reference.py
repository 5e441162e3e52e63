"""The float32 numpy reference: runs a `Network` (rnnedge/ir/layers.py) on x [T, B, F].

This is the oracle the C f32 kernels are tested against and what calibration for the integer
formats runs (the bit-exact integer kernels live in their own module, rnnedge/fixedpoint.py).
tests/test_reference.py holds it to onnxruntime (onnx's ReferenceEvaluator where onnxruntime
refuses a model) over every case of tests/onnx_cases.py: max error ~2e-7 of the output scale.

Arithmetic is float32 throughout: inputs, weights and activation parameters are cast to float32
once, and every intermediate is a float32 array (numpy's float32 matmul, exp, tanh, log1p). The
formulas follow the ONNX LSTM / GRU / RNN operator specification operation for operation, with
onnxruntime's reading where the spec is loose:
- `clip` bounds every gate pre-activation (bias and peephole terms included) to [-clip, clip]
  before its activation; the cell state itself and the input of h() are not clipped.
- LSTM `input_forget`: f = 1 - i, with i already activated (no forget peephole, no forget clip).
- LSTM peepholes: i and f see the previous cell state, o sees the new one.
- GRU `linear_before_reset`: h~ = g(Wh x + Wbh + r * (Rh h + Rbh)); otherwise
  h~ = g(Wh x + Rh (r * h) + Wbh + Rbh). Then h' = (1 - z) * h~ + z * h.
- Activation parameters come resolved in `Act` (alpha, beta); ThresholdedRelu is x > alpha.
  `cell_activations` resolves a node's activation attributes the way onnxruntime does.
Sigmoid, Softplus and Elu are written in forms that cannot overflow (same values).

State: a list with one entry per recurrent layer, in layer order: (h,) for GRU and RNN, (h, c)
for LSTM, each [D, B, H] float32. A reverse direction starts from its state at step T-1 and its
final state is the one after step 0 (ONNX Y_h), as the C library does.
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import numpy as np

from .errors import InputError, UnsupportedOpError
from .ir.check import check_network
from .ir.graph import Binary, Concat, Conv, Copy, Gather, Graph, Reduce, Transpose, check_graph
from .ir.layers import (
    CELL_ACTIVATIONS, DEFAULT_CELL_ACTIVATIONS, Act, Activation, Dense, FloatLayer, LayerNorm,
    Network, Recurrent, Slice, TakeLast, keeps_state,
)  # fmt: skip

F32 = np.float32
LayerState = tuple[np.ndarray, ...]  # (h,) or (h, c), each [D, B, H]


# -- activations ---------------------------------------------------------------------------------
def sigmoid(x: np.ndarray) -> np.ndarray:
    """1 / (1 + e^-x), computed from e^-|x| so that no exp overflows."""
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


def softplus(x: np.ndarray) -> np.ndarray:
    """log(1 + e^x) = max(x, 0) + log(1 + e^-|x|)."""
    return np.maximum(x, F32(0)) + np.log1p(np.exp(-np.abs(x)))


def elu(x: np.ndarray, alpha: np.float32) -> np.ndarray:
    """x >= 0 ? x : alpha (e^x - 1); exp only sees the non-positive part."""
    return np.where(x >= 0, x, alpha * (np.exp(np.minimum(x, F32(0))) - 1))


def softmax(x: np.ndarray) -> np.ndarray:
    """e^x_i / sum_j e^x_j over the last axis (the features of one timestep)."""
    e = np.exp(x - np.max(x, axis=-1, keepdims=True))
    return e / np.sum(e, axis=-1, keepdims=True)


def log_softmax(x: np.ndarray) -> np.ndarray:
    """x_i - log sum_j e^x_j over the last axis."""
    s = x - np.max(x, axis=-1, keepdims=True)
    return s - np.log(np.sum(np.exp(s), axis=-1, keepdims=True))


def erf(x: np.ndarray) -> np.ndarray:
    """The error function, each element through math.erf in double, rounded to float32."""
    return np.vectorize(math.erf, otypes=[np.float64])(x.astype(np.float64)).astype(F32)


_Func = Callable[[np.ndarray, np.float32, np.float32], np.ndarray]
ACTIVATION_FUNCS: dict[str, _Func] = {
    "Identity": lambda x, a, b: x.copy(),
    "Sigmoid": lambda x, a, b: sigmoid(x),
    "Tanh": lambda x, a, b: np.tanh(x),
    "Relu": lambda x, a, b: np.maximum(x, F32(0)),
    "LeakyRelu": lambda x, a, b: np.where(x >= 0, x, a * x),
    "ThresholdedRelu": lambda x, a, b: np.where(x > a, x, F32(0)),
    "ScaledTanh": lambda x, a, b: a * np.tanh(b * x),
    "HardSigmoid": lambda x, a, b: np.minimum(np.maximum(a * x + b, F32(0)), F32(1)),
    "Elu": lambda x, a, b: elu(x, a),
    "Softsign": lambda x, a, b: x / (1 + np.abs(x)),
    "Softplus": lambda x, a, b: softplus(x),
    "Affine": lambda x, a, b: a * x + b,
    "Clip": lambda x, a, b: np.minimum(b, np.maximum(a, x)),
    "Softmax": lambda x, a, b: softmax(x),
    "LogSoftmax": lambda x, a, b: log_softmax(x),
    "Abs": lambda x, a, b: np.abs(x),
    "Neg": lambda x, a, b: -x,
    "Sqrt": lambda x, a, b: np.sqrt(x),
    "Reciprocal": lambda x, a, b: F32(1) / x,
    "Exp": lambda x, a, b: np.exp(x),
    "Log": lambda x, a, b: np.log(x),
    "Erf": lambda x, a, b: erf(x),
    "Pow": lambda x, a, b: np.power(x, a),
}


def activate(x: np.ndarray, act: Act) -> np.ndarray:
    """Apply one activation (alpha and beta taken as float32) to a float32 array."""
    return ACTIVATION_FUNCS[act.kind](x, F32(act.alpha), F32(act.beta)).astype(F32, copy=False)


# -- ONNX activation attributes of LSTM / GRU / RNN, read as onnxruntime reads them --------------
CELL_ACTIVATION_KINDS = ("Relu", "Tanh", "Sigmoid", "Affine", "LeakyRelu", "ThresholdedRelu",
                         "ScaledTanh", "HardSigmoid", "Elu", "Softsign", "Softplus")  # fmt: skip
# kind -> (takes alpha, takes beta, default alpha, default beta) in onnxruntime's LSTM and GRU
# (rnn_helpers.cc). Not the standalone ops' defaults: ThresholdedRelu, ScaledTanh, Affine get 0.
ORT_CELL_PARAMS: dict[str, tuple[bool, bool, float, float]] = {
    "Affine": (True, True, 0.0, 0.0),
    "LeakyRelu": (True, False, 0.01, 0.0),
    "ThresholdedRelu": (True, False, 0.0, 0.0),
    "ScaledTanh": (True, True, 0.0, 0.0),
    "HardSigmoid": (True, True, 0.2, 0.5),
    "Elu": (True, False, 1.0, 0.0),
}


def cell_activations(
    cell: str,
    direction: str,
    names: Sequence[str] | None = None,
    alphas: Sequence[float] | None = None,
    betas: Sequence[float] | None = None,
) -> list[list[Act]]:
    """Resolve an ONNX LSTM/GRU/RNN node's `activations`, `activation_alpha`, `activation_beta`
    into one list of Acts per direction, as onnxruntime (1.32) does:
    - names are matched without regard to case; absent = the cell's defaults in each direction;
      an RNN with one direction and two names (ONNX's default ["Tanh", "Tanh"]) uses the first.
    - the alpha (beta) values are taken in order, over all directions, only by the activations
      that use one (ORT_CELL_PARAMS); when the list runs out, ORT_CELL_PARAMS' default is used.
    Raises UnsupportedOpError for an unknown activation, a wrong count, or values nobody takes
    (onnxruntime ignores those; an exporter that wrote them meant something else)."""
    D = 2 if direction == "bidirectional" else 1
    n = CELL_ACTIVATIONS[cell]
    if names is None:
        names = list(DEFAULT_CELL_ACTIVATIONS[cell]) * D
    canon = {k.lower(): k for k in CELL_ACTIVATION_KINDS}
    kinds = []
    for name in names:
        if name.lower() not in canon:
            raise UnsupportedOpError(f"{cell.upper()} activation {name!r} is not one of "
                                     f"{', '.join(CELL_ACTIVATION_KINDS)}")  # fmt: skip
        kinds.append(canon[name.lower()])
    if cell == "rnn" and D == 1 and len(kinds) == 2:
        kinds = kinds[:1]
    if len(kinds) != D * n:
        raise UnsupportedOpError(f"a {direction} {cell.upper()} takes {D * n} activations, got "
                                 f"{len(kinds)}: {list(names)}")  # fmt: skip
    a_left, b_left = list(alphas or []), list(betas or [])
    acts = []
    for kind in kinds:
        takes_a, takes_b, da, db = ORT_CELL_PARAMS.get(kind, (False, False, 0.0, 0.0))
        alpha = a_left.pop(0) if takes_a and a_left else da
        beta = b_left.pop(0) if takes_b and b_left else db
        acts.append(Act.make(kind, float(alpha), float(beta)))
    if a_left or b_left:
        raise UnsupportedOpError(
            f"{cell.upper()} activations {kinds} leave activation_alpha {a_left} and "
            f"activation_beta {b_left} unused: the attribute lists are ambiguous"
        )
    return [acts[d * n : (d + 1) * n] for d in range(D)]


def _clip(x: np.ndarray, clip: float | None) -> np.ndarray:
    if clip is None:
        return x
    c = F32(clip)
    return np.minimum(np.maximum(x, -c), c)


def _bias(B: np.ndarray | None, gates: int, hidden: int) -> np.ndarray:
    """Wb + Rb for one direction ([2*G*H] -> [G*H]); zeros when the layer has no bias."""
    if B is None:
        return np.zeros(gates * hidden, F32)
    return B[: gates * hidden] + B[gates * hidden :]


# -- cell steps: one direction, one timestep, a batch of rows ------------------------------------
def lstm_step(
    x: np.ndarray,
    h: np.ndarray,
    c: np.ndarray,
    W: np.ndarray,
    R: np.ndarray,
    B: np.ndarray | None,
    P: np.ndarray | None,
    acts: Sequence[Act],
    clip: float | None = None,
    input_forget: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """One LSTM step. x [B, I]; h, c [B, H]; W [4H, I], R [4H, H] in gate order i, o, f, c;
    B [8H] (Wb then Rb) or None; P [3H] (peepholes i, o, f) or None; acts (f, g, h).
    Returns (h', c')."""
    H = h.shape[-1]
    f_act, g_act, h_act = acts
    gates = x @ W.T + h @ R.T + _bias(B, 4, H)
    i_pre, o_pre, f_pre, c_pre = (gates[:, k * H : (k + 1) * H] for k in range(4))
    if P is not None:
        i_pre = i_pre + P[:H] * c
    i = activate(_clip(i_pre, clip), f_act)
    if input_forget:
        f = 1 - i
    else:
        if P is not None:
            f_pre = f_pre + P[2 * H :] * c
        f = activate(_clip(f_pre, clip), f_act)
    g = activate(_clip(c_pre, clip), g_act)
    c_new = f * c + i * g
    if P is not None:
        o_pre = o_pre + P[H : 2 * H] * c_new
    o = activate(_clip(o_pre, clip), f_act)
    h_new = o * activate(c_new, h_act)
    return h_new, c_new


def gru_step(
    x: np.ndarray,
    h: np.ndarray,
    W: np.ndarray,
    R: np.ndarray,
    B: np.ndarray | None,
    acts: Sequence[Act],
    clip: float | None = None,
    linear_before_reset: bool = False,
) -> np.ndarray:
    """One GRU step. x [B, I]; h [B, H]; W [3H, I], R [3H, H] in gate order z, r, h;
    B [6H] (Wb then Rb) or None; acts (f, g). Returns h'."""
    H = h.shape[-1]
    f_act, g_act = acts
    Wb = np.zeros(3 * H, F32) if B is None else B[: 3 * H]
    Rb = np.zeros(3 * H, F32) if B is None else B[3 * H :]
    Wz, Wr, Wh = W[:H], W[H : 2 * H], W[2 * H :]
    Rz, Rr, Rh = R[:H], R[H : 2 * H], R[2 * H :]
    z = activate(_clip(x @ Wz.T + h @ Rz.T + (Wb[:H] + Rb[:H]), clip), f_act)
    r = activate(_clip(x @ Wr.T + h @ Rr.T + (Wb[H : 2 * H] + Rb[H : 2 * H]), clip), f_act)
    if linear_before_reset:
        n_pre = x @ Wh.T + Wb[2 * H :] + r * (h @ Rh.T + Rb[2 * H :])
    else:
        n_pre = x @ Wh.T + (r * h) @ Rh.T + (Wb[2 * H :] + Rb[2 * H :])
    n = activate(_clip(n_pre, clip), g_act)
    return (1 - z) * n + z * h


def rnn_step(
    x: np.ndarray,
    h: np.ndarray,
    W: np.ndarray,
    R: np.ndarray,
    B: np.ndarray | None,
    acts: Sequence[Act],
    clip: float | None = None,
) -> np.ndarray:
    """One vanilla RNN step. x [B, I]; h [B, H]; W [H, I]; R [H, H]; B [2H] or None; acts (f,).
    Returns h'."""
    H = h.shape[-1]
    return activate(_clip(x @ W.T + h @ R.T + _bias(B, 1, H), clip), acts[0])


# -- layers --------------------------------------------------------------------------------------
def _f32(a: np.ndarray | None) -> np.ndarray | None:
    return None if a is None else np.asarray(a, dtype=F32)


def run_recurrent(
    layer: Recurrent, x: np.ndarray, state: LayerState
) -> tuple[np.ndarray, LayerState]:
    """Run one recurrent layer over x [T, B, I] from state ((h,) or (h, c), each [D, B, H]).
    Returns y [T, B, D*H] (directions concatenated per step) and the final state."""
    T, batch, _ = x.shape
    D, H = layer.num_directions, layer.hidden
    W, R, B, P = (_f32(a) for a in (layer.W, layer.R, layer.B, layer.P))
    y = np.zeros((T, batch, D * H), F32)
    final_h = np.array(state[0], dtype=F32)
    final_c = np.array(state[1], dtype=F32) if layer.cell == "lstm" else None
    for d in range(D):
        backward = layer.direction == "reverse" or d == 1
        acts = layer.activations[d]
        Bd = None if B is None else B[d]
        h = final_h[d]
        c = None if final_c is None else final_c[d]
        for t in reversed(range(T)) if backward else range(T):
            if layer.cell == "lstm":
                Pd = None if P is None else P[d]
                h, c = lstm_step(
                    x[t], h, c, W[d], R[d], Bd, Pd, acts, layer.clip, layer.input_forget
                )
            elif layer.cell == "gru":
                h = gru_step(x[t], h, W[d], R[d], Bd, acts, layer.clip, layer.linear_before_reset)
            else:
                h = rnn_step(x[t], h, W[d], R[d], Bd, acts, layer.clip)
            y[t, :, d * H : (d + 1) * H] = h
        final_h[d] = h
        if final_c is not None:
            final_c[d] = c
    return y, (final_h,) if final_c is None else (final_h, final_c)


def run_inner(layer: Recurrent, x: np.ndarray, out: tuple[int, ...]) -> np.ndarray:
    """A recurrent node over a per-step axis (layer.inner = L): x [T, B, L, ..] -> y [T, B,
    *out], each row's L elements one sequence from a zero state (docs/graph.md section 2)."""
    T, B, L = x.shape[0], x.shape[1], layer.inner
    seq = np.asarray(x, F32).reshape(T * B, L, -1).transpose(1, 0, 2)  # [L, rows, I]
    zeros = tuple(np.zeros((layer.num_directions, T * B, layer.hidden), F32)
                  for _ in range(2 if layer.cell == "lstm" else 1))
    y, _ = run_recurrent(layer, np.ascontiguousarray(seq), zeros)
    return np.ascontiguousarray(y.transpose(1, 0, 2)).reshape((T, B) + tuple(out))


def run_layer(layer: FloatLayer, x: np.ndarray) -> np.ndarray:
    """Run one stateless layer over x [T, B, F]."""
    if isinstance(layer, Dense):
        y = x @ np.asarray(layer.weight, F32).T
        return y if layer.bias is None else y + np.asarray(layer.bias, F32)
    if isinstance(layer, Activation):
        return activate(x, layer.act)
    if isinstance(layer, LayerNorm):
        mean = np.mean(x, axis=-1, keepdims=True)
        d = x - mean
        var = np.mean(d * d, axis=-1, keepdims=True)
        y = d / np.sqrt(var + F32(layer.epsilon)) * np.asarray(layer.gamma, F32)
        return y if layer.beta is None else y + np.asarray(layer.beta, F32)
    if isinstance(layer, TakeLast):
        if x.shape[0] == 0:
            raise InputError(
                "the model outputs its last timestep, but the sequence is empty (T = 0)"
            )
        return np.concatenate([x[-1:, :, : layer.split], x[:1, :, layer.split :]], axis=-1)
    if isinstance(layer, Slice):
        return x[:, :, layer.start : layer.stop].copy()
    raise TypeError(f"run_layer: {type(layer).__name__} is not a stateless layer")


# -- the network ---------------------------------------------------------------------------------
def recurrent_layers(net: Network) -> list[tuple[int, Recurrent]]:
    """(index in net.layers, layer) of every recurrent layer, in order."""
    return [(i, l) for i, l in enumerate(net.layers) if isinstance(l, Recurrent)]


def initial_state(net: Network, batch: int) -> list[LayerState]:
    """The state a run starts from by default: each layer's initial_h / initial_c broadcast over
    the batch, or zeros."""
    state: list[LayerState] = []
    for _, layer in recurrent_layers(net):
        shape = (layer.num_directions, batch, layer.hidden)
        arrays = [layer.initial_h] + ([layer.initial_c] if layer.cell == "lstm" else [])
        state.append(
            tuple(
                np.zeros(shape, F32)
                if a is None
                else np.broadcast_to(np.asarray(a, F32)[:, None, :], shape).copy()
                for a in arrays
            )
        )
    return state


def _checked_state(
    net: Network, state: Sequence[Sequence[np.ndarray]], batch: int
) -> list[LayerState]:
    layers = recurrent_layers(net)
    if len(state) != len(layers):
        raise InputError(
            f"state: expected one entry per recurrent layer ({len(layers)}), got {len(state)}"
        )
    out: list[LayerState] = []
    for k, ((i, layer), entry) in enumerate(zip(layers, state)):
        kinds = ("h", "c") if layer.cell == "lstm" else ("h",)
        if len(entry) != len(kinds):
            raise InputError(
                f"state[{k}] (layer {i}, {layer.cell.upper()}): expected {len(kinds)} arrays "
                f"({', '.join(kinds)}), got {len(entry)}"
            )
        shape = (layer.num_directions, batch, layer.hidden)
        arrays = []
        for kind, a in zip(kinds, entry):
            a = np.asarray(a)
            if a.shape != shape or a.dtype.kind not in "fiu":
                raise InputError(
                    f"state[{k}] {kind} (layer {i}): expected a float array of shape {list(shape)} "
                    f"(directions, batch, hidden), got {a.dtype} {list(a.shape)}"
                )
            arrays.append(a.astype(F32))
        out.append(tuple(arrays))
    return out


def run_network(
    net: Network, x: np.ndarray, state: Sequence[Sequence[np.ndarray]] | None = None
) -> tuple[np.ndarray, list[LayerState]]:
    """Run the whole pipeline over x [T, B, in_features].

    Returns y [T, B, out_features] ([1, B, out_features] for a many-to-one network) and the final
    state (one entry per recurrent layer, see the module doc). `state` defaults to
    `initial_state(net, B)`; it is not modified.
    """
    check_network(net)  # the validation the blob writer applies: run only what a blob can hold
    x = np.asarray(x)
    if x.ndim != 3 or x.shape[2] != net.in_features or x.dtype.kind not in "fiu":
        raise InputError(
            f"x: expected a float array of shape [T, B, {net.in_features}], got {x.dtype} "
            f"{list(x.shape)}"
        )
    y = x.astype(F32)
    batch = y.shape[1]
    states = initial_state(net, batch) if state is None else _checked_state(net, state, batch)
    final: list[LayerState] = []
    for layer in net.layers:
        if isinstance(layer, Recurrent):
            y, s = run_recurrent(layer, y, states[len(final)])
            final.append(s)
        else:
            y = run_layer(layer, y)
    return y, final


# -- the dataflow graph (docs/graph.md) ----------------------------------------------------------
# {"nodes": [LayerState per recurrent node], "values": [array per state value],
#  "convs": [frame cache [(kt - 1) * dt, B, *x shape] per Conv node], "step": [steps seen]}
GraphState = dict[str, list]


def _as_rows(a: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """[T, B, *s] -> [T, B, *s'] with the per-step shape padded on the left to len(shape) dims."""
    extra = len(shape) - (a.ndim - 2)
    return a.reshape(a.shape[:2] + (1,) * extra + a.shape[2:]) if extra > 0 else a


def f32_min(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """csrc/ops_f32.c's MIN: NaN if either side is NaN, else a if a < b, else b (b of two equal
    values, +0 and -0 too). Spelled out rather than numpy.minimum, whose SIMD loops follow the CPU
    (x86 minps gives b of +0 and -0, Arm's fmin gives -0): the oracle is the same on every machine."""
    return np.where(np.isnan(a) | np.isnan(b), F32(np.nan), np.where(a < b, a, b)).astype(F32, copy=False)


def f32_max(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """MAX as f32_min: NaN if either side is NaN, else a if a > b, else b."""
    return np.where(np.isnan(a) | np.isnan(b), F32(np.nan), np.where(a > b, a, b)).astype(F32, copy=False)


def _binary(kind: str, a: np.ndarray, b: np.ndarray, shape: tuple[int, ...],
            alpha: float = 1.0, beta: float = 0.0) -> np.ndarray:  # fmt: skip
    a, b = _as_rows(a, shape), _as_rows(b, shape)
    if kind == "Add":
        y = a + b
    elif kind == "Sub":
        y = a - b
    elif kind == "Mul":
        y = a * b
    elif kind == "Div":
        y = a / b
    elif kind == "Min":
        y = f32_min(a, b)
    elif kind == "Max":
        y = f32_max(a, b)
    elif kind == "Pow":
        y = np.power(a, b)
    elif kind == "Hypot":  # the quantizer's fused magnitude (quant.graph.fuse_magnitudes): + beta, its eps
        y = np.sqrt(a * a + b * b + F32(beta)) if beta else np.sqrt(a * a + b * b)
    elif kind == "LogHypot":  # quant.graph.fuse_log_magnitudes: ln(alpha hypot + beta)
        with np.errstate(divide="ignore", invalid="ignore"):
            y = np.log(F32(alpha) * np.sqrt(a * a + b * b) + F32(beta))
    else:
        raise UnsupportedOpError(f"binary op {kind!r} is not one rnnedge runs")
    return y.astype(F32, copy=False)


def graph_op(op: object, ins: list[np.ndarray | None], out_shapes: list[tuple[int, ...]]) -> np.ndarray:
    """One stateless graph node over arrays [T, B, *per-step shape] (docs/graph.md section 2)."""
    x = ins[0]
    assert x is not None
    T, B = x.shape[:2]
    shape = out_shapes[0]
    if isinstance(op, Binary):
        if op.const is not None:
            c = np.asarray(op.const, F32)[None, None]
            return _binary(op.kind, c, x, shape) if op.const_left else _binary(op.kind, x, c, shape)
        assert ins[1] is not None
        return _binary(op.kind, x, ins[1], shape, op.alpha, op.beta)
    if isinstance(op, Concat):
        return np.concatenate([a for a in ins if a is not None], axis=op.axis % len(shape) + 2)
    if isinstance(op, Transpose):
        return np.ascontiguousarray(x.transpose((0, 1) + tuple(p + 2 for p in op.perm)))
    if isinstance(op, Copy):
        return x.reshape((T, B) + shape).copy()
    if isinstance(op, Gather):
        return np.asarray(op.table, F32)[x.astype(np.int64)].reshape((T, B) + shape)
    if isinstance(op, Reduce):
        axes = tuple(a + 2 for a in op.axes)
        fn = {"Sum": np.sum, "Mean": np.mean, "Max": np.max, "Min": np.min}[op.kind]
        return fn(x, axis=axes, keepdims=True).astype(F32).reshape((T, B) + shape)
    if isinstance(op, Slice):
        ax = op.axis % (x.ndim - 2) + 2
        index = [slice(None)] * x.ndim
        index[ax] = slice(op.start, op.stop, op.step)
        return x[tuple(index)].copy()
    if isinstance(op, TakeLast):
        flat = x.reshape(T, B, -1)
        return run_layer(op, flat).reshape((1, B) + shape)
    if isinstance(op, (Dense, Activation, LayerNorm)):
        return run_layer(op, x.astype(F32, copy=False))
    raise UnsupportedOpError(f"graph node {type(op).__name__} is not one the float reference runs")


def _conv_w(op: Conv, x: np.ndarray) -> np.ndarray:
    """The feature-axis part of a conv: x [R, kt, C_in, W] (the kt time taps of each row) ->
    y [R, C_out, W_out], float64."""
    R, kt, C, W = x.shape
    g = op.groups
    wt = np.asarray(op.weight, np.float64)
    if op.transpose:  # ConvTranspose over W: weight [C_in, C_out / g, 1, kw]
        cg, mg = C // g, wt.shape[1]
        full = (W - 1) * op.sw + (op.kw - 1) * op.dw + 1 + op.out_pad
        y = np.zeros((R, g, mg, max(full, op.pad_w[0] + op.w_out(W))), np.float64)
        xg = x[:, 0].reshape(R, g, cg, W).astype(np.float64)
        wg = wt[:, :, 0, :].reshape(g, cg, mg, op.kw)
        for i in range(op.kw):
            contrib = np.einsum("rgcw,gcm->rgmw", xg, wg[..., i])
            start = i * op.dw
            y[..., start : start + (W - 1) * op.sw + 1 : op.sw] += contrib
        y = y[..., op.pad_w[0] : op.pad_w[0] + op.w_out(W)].reshape(R, g * mg, -1)
    else:
        xp = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (0, 0), op.pad_w))
        wo = op.w_out(W)
        idx = np.arange(wo)[:, None] * op.sw + np.arange(op.kw)[None, :] * op.dw  # [W_out, kw]
        win = xp[..., idx]  # [R, kt, C, W_out, kw]
        cg = C // g
        win = win.reshape(R, kt, g, cg, wo, op.kw)
        wg = wt.reshape(g, -1, cg, kt, op.kw)  # [g, M / g, C / g, kt, kw]
        y = np.einsum("rjgcok,gmcjk->rgmo", win, wg).reshape(R, -1, wo)
    if op.bias is not None:
        y = y + np.asarray(op.bias, np.float64)[None, :, None]
    return y


def run_conv(op: Conv, x: np.ndarray, cache: np.ndarray, shape: tuple[int, ...],
             skip: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A CONV node over x [T, B, *x shape] with its frame cache [(kt - 1) dt, B, *x shape]
    (docs/graph.md section 6): causal over time, the first `skip` rows skipped (no state kept
    from them, zeros out). Returns y [T, B, *shape] and the new cache."""
    T, B = x.shape[:2]
    P = op.cache_frames
    y = np.zeros((T, B) + shape, F32)
    skip = min(skip, T)
    xs = x[skip:]
    n = xs.shape[0]
    if n == 0:
        return y, cache
    full = np.concatenate([cache, xs.astype(F32)], axis=0)  # [P + n, B, ...]
    taps = np.stack([full[j * op.dt : j * op.dt + n] for j in range(op.kt)], axis=2)  # [n, B, kt, ...]
    c_in = x.shape[2]
    taps = taps.reshape(n * B, op.kt, c_in, -1)
    out = _conv_w(op, taps).astype(F32)
    y[skip:] = out.reshape((n, B) + shape)
    new = full[full.shape[0] - P :].copy() if P else cache
    return y, new


def initial_graph_state(g: Graph, batch: int) -> GraphState:
    """Recurrent nodes' initial states (as `initial_state`), state values' inits or zeros, conv
    nodes' frame caches (zeros) and the step count (0)."""
    nodes = initial_state(
        Network([n.op for n in g.nodes if keeps_state(n.op)], g.input_spec,
                g.output_spec),
        batch,
    )
    values = []
    for i in g.state_values:
        v = g.values[i]
        init = np.zeros(v.features, F32) if v.init is None else np.asarray(v.init, F32)
        values.append(np.broadcast_to(init.reshape(v.shape), (batch,) + v.shape).copy())
    convs = [np.zeros((n.op.cache_frames, batch) + g.values[n.inputs[0]].shape, F32)
             for n in g.nodes if isinstance(n.op, Conv)]
    return {"nodes": nodes, "values": values, "convs": convs, "step": [0]}


def _delay(g: Graph, n: object) -> int:
    """The delay of a node's data input (docs/graph.md section 6: the steps it skips)."""
    ins = [v for v in n.inputs if v is not None]  # type: ignore[attr-defined]
    return max((g.values[v].delay for v in ins), default=0)


def _run_nodes(g: Graph, x: np.ndarray, state: GraphState,
               seen: dict[int, list[np.ndarray]] | None, end: int | None = None) -> np.ndarray:
    """All nodes once over x [T, B, *in shape] (T = 1 for an explicit-state graph); updates
    `state` in place. A node whose input has delay D skips the stream's first D steps; with
    `end` (the real input's length: the rows after it are the zero frames that flush a model's
    latency), it also stops after step end + D - 1 (a recurrent node keeps no state from the
    rows after; a conv reads zeros there, ONNX's end padding)."""
    T, B = x.shape[:2]
    t0 = state.setdefault("step", [0])[0]
    convs = state.setdefault("convs", [])
    vals: dict[int, np.ndarray] = {g.input: x}
    for k, i in enumerate(g.state_values):
        vals[i] = state["values"][k][None]
    r = c = 0
    for n in g.nodes:
        ins = [None if v is None else vals[v] for v in n.inputs]
        outs = [() if v is None else g.values[v].shape for v in n.outputs]
        D = _delay(g, n)
        lo = min(T, max(0, D - t0))
        hi = T if end is None else max(lo, min(T, end + D - t0))
        if isinstance(n.op, Conv):
            x0 = ins[0]
            assert x0 is not None
            if hi < T:  # past the real input: ONNX's end padding (zeros)
                x0 = x0.copy()
                x0[hi:] = 0
            y, convs[c] = run_conv(n.op, x0, convs[c], outs[0], lo)
            c += 1
            results = [y]
        elif isinstance(n.op, Recurrent) and n.op.inner:
            results = [run_inner(n.op, ins[0], outs[0])]  # type: ignore[arg-type]
            if lo > 0:
                results[0][:lo] = 0  # the skipped steps write zeros
        elif isinstance(n.op, Recurrent) and (lo > 0 or hi < T):
            x0 = ins[0]
            assert x0 is not None
            if n.inputs[1:] and any(v is not None for v in n.inputs[1:]):
                raise UnsupportedOpError("a recurrent node with state inputs after a delayed value")
            L = n.op
            full = np.zeros((T, B) + outs[0], F32)
            fin = tuple(state["nodes"][r])
            if hi > lo:
                y, fin = run_recurrent(L, x0[lo:hi].reshape(hi - lo, B, -1).astype(F32), fin)
                full[lo:hi] = y.reshape((hi - lo, B) + outs[0])
            state["nodes"][r] = fin
            r += 1
            results = [full]
            for j in (1, 2):
                if j < len(n.outputs) and n.outputs[j] is not None:
                    results.append(fin[j - 1].transpose(1, 0, 2).reshape((1, B) + outs[j]))
                elif j < len(n.outputs):
                    results.append(None)
        elif isinstance(n.op, TakeLast) and hi < T:
            x0 = ins[0]
            assert x0 is not None
            results = [graph_op(n.op, [x0[:hi]] + ins[1:], outs)] if hi > 0 else [
                np.zeros((1, B) + outs[0], F32)]
        elif isinstance(n.op, Recurrent):
            L, dirs = n.op, n.op.num_directions
            s = list(state["nodes"][r])
            for j in (1, 2):  # h_init, c_init: [rows, B, D, H] -> [D, B, H], first row
                if j < len(ins) and ins[j] is not None:
                    s[j - 1] = np.asarray(ins[j], F32)[0].reshape(B, dirs, L.hidden).transpose(1, 0, 2).copy()
            x0 = ins[0]
            assert x0 is not None
            y, fin = run_recurrent(L, x0.reshape(x0.shape[0], B, -1).astype(F32), tuple(s))
            state["nodes"][r] = fin
            r += 1
            results = [y.reshape((y.shape[0], B) + outs[0])]
            for j in (1, 2):
                if j < len(n.outputs) and n.outputs[j] is not None:
                    results.append(fin[j - 1].transpose(1, 0, 2).reshape((1, B) + outs[j]))
                elif j < len(n.outputs):
                    results.append(None)
        else:
            results = [graph_op(n.op, ins, outs)]
            if lo > 0 and results[0].shape[0] == T and not g.values[n.outputs[0]].last:
                results[0] = results[0].copy()
                results[0][:lo] = 0  # the skipped steps write zeros
        for v, a in zip(n.outputs, results):
            if v is not None and a is not None:
                vals[v] = a
                if seen is not None:
                    seen.setdefault(v, [])
                    seen[v].append(a)
    for k, i in enumerate(g.state_values):
        u = g.values[i].update
        if u is not None:
            state["values"][k] = vals[u][-1].reshape((B,) + g.values[i].shape).copy()
    state["step"] = [t0 + T]
    return vals[g.output]


def run_graph(
    g: Graph, x: np.ndarray, state: GraphState | None = None,
    seen: dict[int, list[np.ndarray]] | None = None, flush: bool = False,
) -> tuple[np.ndarray, GraphState]:
    """Run a float graph over x [T, B, *input shape] (float, or integer ids for an s32 input).

    Returns y [T, B, *output shape] ([1, B, ...] when the output is a LAST value) and the final
    state. An explicit-state graph (a step function) runs one step at a time. `seen`, if given,
    collects every computed value (value index -> list of arrays, one per call of the nodes), for
    calibration. `state` defaults to `initial_graph_state(g, B)` and is not modified.

    A graph with latency (g.latency > 0, docs/graph.md section 6) streams: row t of y is ONNX's
    step t - latency (zeros before). `flush=True` returns ONNX's whole-sequence output instead:
    the call is the whole sequence, the latency's zero frames are fed after x (each conv reading
    zeros past the real input, as ONNX pads) and the first `latency` rows dropped.
    """
    check_graph(g)
    v_in = g.values[g.input]
    x = np.asarray(x)
    if x.ndim != len(v_in.shape) + 2 or tuple(x.shape[2:]) != v_in.shape:
        raise InputError(
            f"x: expected an array of shape [T, B, {', '.join(map(str, v_in.shape))}], got "
            f"{list(x.shape)}"
        )
    if v_in.dtype == "s32":
        if x.dtype.kind not in "iu":
            raise InputError(f"input {v_in.name!r} takes integer ids, got {x.dtype}")
    elif x.dtype.kind not in "fiu":
        raise InputError(f"x: expected a float array, got {x.dtype}")
    else:
        x = x.astype(F32)
    B = x.shape[1]
    st = initial_graph_state(g, B) if state is None else {
        "nodes": [tuple(np.array(a, F32) for a in s) for s in state["nodes"]],
        "values": [np.array(a, F32) for a in state["values"]],
        "convs": [np.array(a, F32) for a in state.get("convs", [])],
        "step": list(state.get("step", [0])),
    }
    if flush and g.latency:
        if g.explicit_state:
            raise InputError("flush: a step function with latency runs step by step only")
        end = st["step"][0] + x.shape[0]
        xf = np.concatenate([x, np.zeros((g.latency,) + x.shape[1:], x.dtype)], axis=0)
        y = _run_nodes(g, xf, st, seen, end)
        return (y if g.many_to_one else y[g.latency :]), st
    if not g.explicit_state:
        return _run_nodes(g, x, st, seen), st
    ys = [_run_nodes(g, x[t : t + 1], st, seen) for t in range(x.shape[0])]
    if g.many_to_one:
        return ys[-1], st
    return np.concatenate(ys, axis=0) if ys else np.zeros((0, B) + g.values[g.output].shape, F32), st


def graph_rows(x: np.ndarray, axes: str) -> np.ndarray:
    """An array in a graph input's ONNX layout (TensorSpec.axes: T time, B batch, F a per-step
    axis) -> [T, B, *per-step shape]: T and B moved to the front, added with size 1 if absent."""
    x = np.asarray(x)
    if x.ndim != len(axes):
        raise InputError(f"expected an array of {len(axes)} axes ({axes}), got shape {list(x.shape)}")
    for letter in "BT":
        if letter not in axes:
            x, axes = x[None], letter + axes
    order = [axes.index("T"), axes.index("B")] + [i for i, a in enumerate(axes) if a == "F"]
    x = np.ascontiguousarray(x.transpose(order))
    return x[..., None] if "F" not in axes else x  # no per-step axis: one value per step


def graph_layout(y: np.ndarray, axes: str) -> np.ndarray:
    """run_graph's [T, B, *per-step shape] -> a graph output's ONNX layout (TensorSpec.axes). An
    output without a time axis keeps T in front when T > 1 (a step function run over a sequence)
    and drops it when T = 1; one without a batch axis drops B (it must be 1)."""
    y = np.asarray(y)
    if "F" not in axes and y.ndim == 3 and y.shape[2] == 1:
        y = y[..., 0]  # one value per step
    have = "TB" + "F" * (y.ndim - 2)
    if "B" not in axes:
        if y.shape[1] != 1:
            raise InputError(f"the output's layout {axes} has no batch axis, but the batch is {y.shape[1]}")
        y, have = y[:, 0], have.replace("B", "", 1)
    if "T" not in axes:
        if y.shape[0] == 1:
            y, have = y[0], have.replace("T", "", 1)
        else:
            axes = "T" + axes
    return _place(y, have, axes)


def _place(y: np.ndarray, have: str, axes: str) -> np.ndarray:
    """Move the T and B axes of y (letters `have`, F axes in order) to where `axes` has them."""
    src_f = [i for i, a in enumerate(have) if a == "F"]
    order, k = [], 0
    for a in axes:
        if a == "F":
            order.append(src_f[k])
            k += 1
        else:
            order.append(have.index(a))
    return np.ascontiguousarray(y.transpose(order))


def _spec_step_shape(g: Graph, name: str) -> tuple[int, ...]:
    spec = g.value_specs[name]
    return tuple(int(d) for a, d in zip(spec.axes, spec.shape) if a == "F" and d is not None)


def graph_state(g: Graph, feeds: dict[str, np.ndarray], batch: int) -> GraphState:
    """A run_graph state from graph state inputs by name, each in its ONNX layout
    (Graph.value_specs): an absorbed input (Graph.state: rows of it per recurrent node, in node
    order, h before c) goes into its nodes' states, an explicit one into its STATE value. Inputs
    not in `feeds` start as `initial_graph_state` has them."""
    st = initial_graph_state(g, batch)
    rec = [i for i, n in enumerate(g.nodes) if keeps_state(n.op)]
    used: dict[str, int] = {}
    for spec in sorted(g.state, key=lambda s: (s.layer, s.kind != "h")):
        if spec.name not in feeds:
            continue
        layer = g.nodes[spec.layer].op
        arr = graph_rows(feeds[spec.name], g.value_specs[spec.name].axes)[0].reshape(batch, -1, layer.hidden)
        r0 = used.get(spec.name, 0)
        used[spec.name] = r0 + layer.num_directions
        k = rec.index(spec.layer)
        s = list(st["nodes"][k])
        s[0 if spec.kind == "h" else 1] = np.ascontiguousarray(
            arr[:, r0 : r0 + layer.num_directions].transpose(1, 0, 2), F32)
        st["nodes"][k] = tuple(s)
    for k, i in enumerate(g.state_values):
        v = g.values[i]
        if v.name in feeds:
            st["values"][k] = graph_rows(feeds[v.name], g.value_specs[v.name].axes)[0].reshape(
                (batch,) + v.shape).astype(F32)
    return st


def graph_state_outputs(g: Graph, st: GraphState) -> dict[str, np.ndarray]:
    """The final states of a run_graph state by graph output name (hn, next_state, ...), each in
    the ONNX layout of its paired input."""
    rec = [i for i, n in enumerate(g.nodes) if keeps_state(n.op)]
    blocks: dict[str, list[np.ndarray]] = {}
    names: dict[str, str] = {}
    for spec in sorted(g.state, key=lambda s: (s.layer, s.kind != "h")):
        if spec.output:
            a = st["nodes"][rec.index(spec.layer)][0 if spec.kind == "h" else 1]  # [D, B, H]
            blocks.setdefault(spec.output, []).append(a.transpose(1, 0, 2))
            names[spec.output] = spec.name
    out = {}
    for o, parts in blocks.items():
        arr = np.concatenate(parts, axis=1)  # [B, rows, H]
        shape = _spec_step_shape(g, names[o])
        out[o] = graph_layout(arr.reshape((1, arr.shape[0]) + shape), g.value_specs[names[o]].axes)
    for k, i in enumerate(g.state_values):
        v = g.values[i]
        if v.update is not None:
            a = st["values"][k]
            out[g.values[v.update].name] = graph_layout(
                a.reshape((1, a.shape[0]) + _spec_step_shape(g, v.name)), g.value_specs[v.name].axes)
    return out
