"""Validation of the IR (rnnedge/ir/layers.py): what the formats can hold, named by layer.

`check_layer(i, layer)` / `check_network(net)` a float Network, `check_state(net)` its state
mapping, `check_qnetwork(qnet)` an integer network against its float source. Each raises
ConvertError naming the layer and the fault. The blob writer and the float reference call them.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..errors import ConvertError
from .layers import (
    ACTIVATIONS, CELL_ACTIVATIONS, CELL_GATES, DIRECTIONS, F32_MAX, VECTOR_ACTIVATIONS, WFMT, Act,
    Activation, Dense, FloatLayer, LayerNorm, Network, QActivation, QDense, QLayerNorm, QNetwork,
    QRecurrent, QSlice, QTakeLast, Recurrent, Slice, TakeLast,
)  # fmt: skip


def _fits_f32(v: float) -> bool:
    """True if v can be stored as a float32 (infinities included, NaN not)."""
    return math.isinf(v) or abs(v) <= F32_MAX


# -- validation of a Network against what the format can hold ----------------------------------
def _fail(i: int, layer: object, what: str) -> ConvertError:
    return ConvertError(f"layer {i} ({type(layer).__name__}): {what}")


def _check_array(i: int, layer: object, name: str, a: Any, shape: tuple[int, ...]) -> None:
    if not isinstance(a, np.ndarray):
        raise _fail(i, layer, f"{name} is a {type(a).__name__}, not a numpy array")
    if a.dtype.kind != "f":
        raise _fail(i, layer, f"{name} has dtype {a.dtype}; float32 weights expected")
    if a.shape != shape:
        raise _fail(i, layer, f"{name} has shape {list(a.shape)}, expected {list(shape)}")
    bad = int(np.count_nonzero(~np.isfinite(a)))
    if bad:
        raise _fail(i, layer, f"{name} holds {bad} non-finite value(s) (NaN or infinity)")


def _check_act(i: int, layer: object, where: str, act: Any, cell: bool) -> None:
    if not isinstance(act, Act) or act.kind not in ACTIVATIONS:
        raise _fail(i, layer, f"{where}: {act!r} is not a supported activation")
    if cell and act.kind in VECTOR_ACTIVATIONS:
        raise _fail(i, layer, f"{where}: {act.kind} acts on a whole vector; not allowed in a cell")
    if not (_fits_f32(act.alpha) and _fits_f32(act.beta)):
        raise _fail(i, layer, f"{where}: {act.kind} alpha {act.alpha} or beta {act.beta} is NaN "
                              "or out of float32 range")  # fmt: skip


def _check_recurrent(i: int, l: Recurrent) -> None:
    if l.cell not in CELL_GATES:
        raise _fail(i, l, f"cell {l.cell!r} is not one of {', '.join(CELL_GATES)}")
    if l.direction not in DIRECTIONS:
        raise _fail(i, l, f"direction {l.direction!r} is not one of {', '.join(DIRECTIONS)}")
    for name in ("W", "R"):
        a = getattr(l, name)
        if not isinstance(a, np.ndarray) or a.ndim != 3:
            raise _fail(i, l, f"{name} must be a 3-D array [D, G*H, ...]")
    D, G, H, I = l.num_directions, CELL_GATES[l.cell], l.hidden, l.in_features
    if H < 1 or I < 1:
        raise _fail(i, l, f"hidden size {H} and input size {I} must be at least 1")
    _check_array(i, l, "W", l.W, (D, G * H, I))
    _check_array(i, l, "R", l.R, (D, G * H, H))
    if l.B is not None:
        _check_array(i, l, "B", l.B, (D, 2 * G * H))
    if l.initial_h is not None:
        _check_array(i, l, "initial_h", l.initial_h, (D, H))
    if l.cell == "lstm":
        if l.P is not None:
            _check_array(i, l, "P", l.P, (D, 3 * H))
        if l.initial_c is not None:
            _check_array(i, l, "initial_c", l.initial_c, (D, H))
    elif l.P is not None or l.initial_c is not None or l.input_forget:
        raise _fail(i, l, f"peepholes, initial_c and input_forget are LSTM-only, not "
                          f"{l.cell.upper()}")  # fmt: skip
    if l.linear_before_reset and l.cell != "gru":
        raise _fail(i, l, f"linear_before_reset is GRU-only, not {l.cell.upper()}")
    if l.clip is not None and not (math.isfinite(l.clip) and 0 < l.clip <= F32_MAX):
        raise _fail(i, l, f"clip must be a finite number > 0, got {l.clip}")
    n = CELL_ACTIVATIONS[l.cell]
    if len(l.activations) != D or any(len(a) != n for a in l.activations):
        got = [len(a) for a in l.activations]
        raise _fail(i, l, f"expected {D} list(s) of {n} activation(s) for a {l.direction} "
                          f"{l.cell.upper()}, got {got}")  # fmt: skip
    for d, acts in enumerate(l.activations):
        for k, act in enumerate(acts):
            _check_act(i, l, f"activation {k} of direction {d}", act, cell=True)


def check_layer(i: int, layer: FloatLayer) -> None:
    """Raise ConvertError (naming layer i) if the layer is malformed or the format cannot hold
    it."""
    if isinstance(layer, Recurrent):
        _check_recurrent(i, layer)
    elif isinstance(layer, Dense):
        w = layer.weight
        if not isinstance(w, np.ndarray) or w.ndim != 2 or 0 in w.shape:
            raise _fail(i, layer, "weight must be a non-empty 2-D array [N, K]")
        _check_array(i, layer, "weight", w, w.shape)
        if layer.bias is not None:
            _check_array(i, layer, "bias", layer.bias, (w.shape[0],))
    elif isinstance(layer, Activation):
        _check_act(i, layer, "activation", layer.act, cell=False)
        if layer.features < 1:
            raise _fail(i, layer, f"features must be at least 1, got {layer.features}")
    elif isinstance(layer, LayerNorm):
        g = layer.gamma
        if not isinstance(g, np.ndarray) or g.ndim != 1 or g.shape[0] < 1:
            raise _fail(i, layer, "gamma must be a non-empty 1-D array [F]")
        _check_array(i, layer, "gamma", g, g.shape)
        if layer.beta is not None:
            _check_array(i, layer, "beta", layer.beta, g.shape)
        eps = layer.epsilon
        if not (math.isfinite(eps) and 0 < eps <= F32_MAX and float(np.float32(eps)) > 0):
            raise _fail(i, layer, f"epsilon must be a finite number > 0, got {layer.epsilon}")
    elif isinstance(layer, TakeLast):
        if layer.features < 1 or not 0 <= layer.split <= layer.features:
            raise _fail(i, layer, f"needs 0 <= split <= features, got split {layer.split} of "
                                  f"{layer.features} features")  # fmt: skip
    elif isinstance(layer, Slice):
        if not 0 <= layer.start < layer.stop <= layer.features:
            raise _fail(i, layer, f"needs 0 <= start < stop <= features, got [{layer.start}, "
                                  f"{layer.stop}) of {layer.features} features")  # fmt: skip
    else:
        raise ConvertError(f"layer {i}: {type(layer).__name__} is not a layer the format can hold")


def check_network(net: Network) -> None:
    """Validate every layer and the pipeline (Network.check); raise ConvertError naming the
    fault."""
    if not net.layers:
        raise ConvertError("the network has no layers")
    for i, layer in enumerate(net.layers):
        check_layer(i, layer)
    net.check()


def check_state(net: Network) -> None:
    """Each state spec names an h (or an LSTM's c) of a recurrent layer of `net`."""
    for s in net.state:
        layer = net.layers[s.layer] if 0 <= s.layer < len(net.layers) else None
        if not isinstance(layer, Recurrent) or s.kind not in ("h", "c") or (
            s.kind == "c" and layer.cell != "lstm"
        ):
            raise ConvertError(f"state {s.name!r}: layer {s.layer} has no {s.kind!r} state")


_FLOAT_OF = {QDense: Dense, QActivation: Activation, QRecurrent: Recurrent, QTakeLast: TakeLast,
             QSlice: Slice, QLayerNorm: LayerNorm}  # fmt: skip


def check_qnetwork(qnet: Any) -> None:
    """Raise ConvertError (naming the layer) unless `qnet` is a QNetwork of an integer format
    whose layers match its float source `qnet.source` one for one: the type, the weight format
    (s8 only with weights), and a recurrent layer's cell, direction, size, flags and activations."""
    if not isinstance(qnet, QNetwork):
        raise ConvertError(f"{type(qnet).__name__} is neither a Network nor a QNetwork")
    if qnet.quant not in WFMT:
        raise ConvertError(f"a QNetwork has quant {qnet.quant!r}; expected one of {tuple(WFMT)}")
    src = qnet.source
    if len(src.layers) != len(qnet.layers):
        raise ConvertError(f"the QNetwork has {len(qnet.layers)} layers, its float source "
                           f"{len(src.layers)}")  # fmt: skip
    check_state(src)
    for i, (q, f) in enumerate(zip(qnet.layers, src.layers)):
        if type(q) not in _FLOAT_OF or not isinstance(f, _FLOAT_OF[type(q)]):
            raise ConvertError(f"layer {i}: {type(q).__name__} does not match the float source "
                               f"layer {type(f).__name__}")  # fmt: skip
        if q.wfmt not in WFMT.values() or (not isinstance(q, (QDense, QRecurrent)) and q.wfmt != "s16"):
            raise _fail(i, q, f"weight format {q.wfmt!r} is not valid for this layer")
        if isinstance(q, QRecurrent):
            assert isinstance(f, Recurrent)
            kinds = [tuple(a.kind for a in acts) for acts in f.activations]
            if kinds != [tuple(a) for a in q.acts]:
                raise _fail(i, q, f"activations {q.acts} differ from the float layer's {kinds}")
            mine = (q.cell, q.direction, q.hidden, q.input_forget, q.linear_before_reset, q.clip)
            theirs = (f.cell, f.direction, f.hidden, f.input_forget, f.linear_before_reset, f.clip)
            if mine != theirs:
                raise _fail(i, q, f"cell attributes {mine} differ from the float layer's {theirs}")
