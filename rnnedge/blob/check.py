"""The blob reader's checks of the layer records, float and integer (docs/format.md, docs/quantization.md §10).

The same checks, in the same order and with the same status codes, as the C loader
(csrc/blob.c, csrc/blob_q.c), so that a blob `read_blob` accepts is one the C library runs
without fault, and a refusal says where: `check_record(rec, tensors)` one layer record and its
tensors, `check_chain(layers)` the pipeline, `check_int_meta(meta, layers, tensors)` an integer
model's metadata (quant, qio) against its layers. Each raises BlobError with `.code` the C
status. (This mirror goes once the C loader reports where it stops: issue 12.)
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .. import fixedpoint as fx
from ..errors import BlobError
from ..ir.layers import CELL_ACTIVATIONS, CELL_GATES, VECTOR_ACTIVATIONS, WFMT
from .spec import (
    ACT_NAMES, DT_F32, DT_S8, DT_S16, DT_S32, DTYPES, E_HEADER, E_LAYER, E_SHAPE, FMT_F32, MAX_FEATURES, FMT_NAMES, FMT_S8, LAYER_FLAGS,
    LF_BIDIR, LF_CLIP, LF_INPUT_FORGET, LF_LINEAR_BEFORE_RESET, LF_REVERSE, OP_ACT, OP_CELLS,
    OP_DENSE, OP_GRU, OP_LAYERNORM, OP_LSTM, OP_NAMES, OP_RNN, OP_SLICE, OP_TAKE_LAST, Q_SLOTS,
    ROLE_NAMES,
    T_B, T_C0, T_H0, T_LUT, T_P, T_Q, T_R, T_W, LayerRecord, TensorRecord, flag_text,
)  # fmt: skip

def err(code: int, msg: str) -> BlobError:
    return BlobError(msg, code=code)


def _tensor_shapes(rec: LayerRecord) -> dict[int, tuple[int, ...]]:
    """The f32 tensor shapes the op table requires, by role (optional roles included)."""
    D, H, I = rec.num_directions, rec.hidden, rec.in_features
    if rec.op == OP_DENSE:
        return {T_W: (rec.in_features, rec.out_features), T_B: (rec.out_features,)}
    if rec.op == OP_LAYERNORM:
        return {T_W: (rec.in_features,), T_B: (rec.in_features,)}
    if rec.op in OP_CELLS:
        G = CELL_GATES[OP_CELLS[rec.op]]
        shapes = {T_W: (D, I, G * H), T_R: (D, H, G * H), T_B: (D, 2, G * H), T_H0: (D, H)}
        if rec.op == OP_LSTM:
            shapes |= {T_P: (D, 3, H), T_C0: (D, H)}
        return shapes
    return {}


REQUIRED_ROLES = {OP_DENSE: (T_W,), OP_LAYERNORM: (T_W,), OP_LSTM: (T_W, T_R), OP_GRU: (T_W, T_R),
                  OP_RNN: (T_W, T_R)}  # fmt: skip


def layer_at(rec: LayerRecord) -> str:
    return f"layer {rec.index} ({rec.op_name})"


def _check_flags(rec: LayerRecord, cell: str | None) -> None:
    allowed = LAYER_FLAGS if cell else 0
    if cell != "lstm":
        allowed &= ~LF_INPUT_FORGET
    if cell != "gru":
        allowed &= ~LF_LINEAR_BEFORE_RESET
    if rec.flags & ~LAYER_FLAGS:
        raise err(E_LAYER, f"{layer_at(rec)}: unknown flag bits 0x{rec.flags & ~LAYER_FLAGS:x}")
    if rec.flags & ~allowed or (rec.flags & LF_REVERSE and rec.flags & LF_BIDIR):
        raise err(E_LAYER, f"{layer_at(rec)}: flags {flag_text(rec.flags)} are not valid for "
                           "this op")  # fmt: skip
    if rec.flags & LF_CLIP:
        if not (math.isfinite(rec.clip) and rec.clip > 0):
            raise err(E_LAYER, f"{layer_at(rec)}: clip {rec.clip} must be finite and > 0")
    elif rec.clip != 0:
        raise err(E_LAYER, f"{layer_at(rec)}: clip is {rec.clip} but the clip flag is not set")


def _check_act_slots(rec: LayerRecord, cell: str | None) -> None:
    """Used slots hold a known kind (element-wise in a cell); unused slots are all zero, except
    that a LAYERNORM keeps its epsilon in alpha[0][0]."""
    used = [[False] * 3, [False] * 3]
    if rec.op == OP_ACT:
        used[0][0] = True
    elif cell:
        for d in range(rec.num_directions):
            used[d][: CELL_ACTIVATIONS[cell]] = [True] * CELL_ACTIVATIONS[cell]
    for d in range(2):
        for k in range(3):
            code, a, b = rec.act[d][k], rec.alpha[d][k], rec.beta[d][k]
            if used[d][k]:
                if code not in ACT_NAMES or (cell and ACT_NAMES[code] in VECTOR_ACTIVATIONS):
                    raise err(E_LAYER, f"{layer_at(rec)}: activation code {code} (slot {d},{k}) "
                                       "is not valid here")  # fmt: skip
                if math.isnan(a) or math.isnan(b):
                    raise err(E_LAYER, f"{layer_at(rec)}: activation slot {d},{k} has a NaN "
                                       "parameter")  # fmt: skip
            elif rec.op == OP_LAYERNORM and (d, k) == (0, 0):
                eps = rec.alpha[0][0]
                if code or b or not (math.isfinite(eps) and eps > 0):
                    raise err(E_LAYER, f"{layer_at(rec)}: epsilon {eps} must be finite and > 0, "
                                       "with act[0][0] and beta[0][0] zero")  # fmt: skip
            elif code or a or b:
                raise err(E_LAYER, f"{layer_at(rec)}: unused activation slot {d},{k} is not zero")


def _check_features(rec: LayerRecord, cell: str | None) -> None:
    """hidden, in/out features and params as the op table says."""
    F_in, F_out, H, op = rec.in_features, rec.out_features, rec.hidden, rec.op
    (p0, p1), where = rec.param, layer_at(rec)
    if not (1 <= F_in <= MAX_FEATURES and 1 <= F_out <= MAX_FEATURES):
        raise err(E_SHAPE, f"{where}: in_features {F_in} and out_features {F_out} must be in "
                           f"1..{MAX_FEATURES}")  # fmt: skip
    if (H >= 1) != bool(cell):
        raise err(E_LAYER, f"{where}: hidden is {H}; it must be >= 1 for a cell and 0 otherwise")
    if op == OP_TAKE_LAST:
        fits, params_ok = F_out == F_in, p0 <= F_in and p1 == 0
    elif op == OP_SLICE:
        fits, params_ok = F_out == p1 - p0, p0 < p1 <= F_in
    elif cell:
        fits, params_ok = F_out == rec.num_directions * H, p0 == p1 == 0
    else:
        fits, params_ok = op == OP_DENSE or F_out == F_in, p0 == p1 == 0
    if not params_ok:
        raise err(E_LAYER, f"{where}: param {list(rec.param)} is not valid for {F_in} features")
    if not fits:
        raise err(E_SHAPE, f"{where}: {F_in} features in and {F_out} out do not fit the op")


def _check_tensor_roles(rec: LayerRecord, tensors: list[TensorRecord]) -> None:
    """Required roles present, unused roles -1, each tensor f32 with the op table's shape."""
    shapes, where = _tensor_shapes(rec), layer_at(rec)
    for role, k in enumerate(rec.tensor):
        if k == -1:
            if role in REQUIRED_ROLES.get(rec.op, ()):
                raise err(E_LAYER, f"{where}: required tensor role {role} is absent")
            continue
        if role not in shapes:
            raise err(E_LAYER, f"{where}: tensor role {role} is not used by this op")
        if not 0 <= k < len(tensors):
            raise err(E_LAYER, f"{where}: tensor index {k} (role {role}) is out of range")
        t = tensors[k]
        if t.dtype != DT_F32 or t.shape != shapes[role]:
            raise err(E_SHAPE, f"{where}: tensor {t.name} is {t.dtype_name} {list(t.shape)}, "
                               f"expected f32 {list(shapes[role])}")  # fmt: skip


def check_record(rec: LayerRecord, tensors: list[TensorRecord]) -> None:
    """One layer record and its tensors: op, format, reserved fields, flags, activation slots,
    sizes, then the tensor roles (f32) or every integer check (s16 / s8)."""
    if rec.op not in OP_NAMES:
        raise err(E_LAYER, f"layer {rec.index}: unknown op {rec.op}")
    if rec.fmt not in FMT_NAMES:
        raise err(E_LAYER, f"{layer_at(rec)}: unknown number format {rec.fmt}")
    if any(rec.pad) or any(rec.reserved):
        raise err(E_LAYER, f"{layer_at(rec)}: padding or reserved fields are set")
    cell = OP_CELLS.get(rec.op)
    _check_flags(rec, cell)
    _check_act_slots(rec, cell)
    _check_features(rec, cell)
    if rec.fmt == FMT_F32:
        _check_tensor_roles(rec, tensors)
    else:
        _check_int_record(rec, tensors)


def check_chain(layers: list[LayerRecord]) -> None:
    """The pipeline: feature sizes chain, one number format family, at most one TAKE_LAST and no
    cell after it."""
    seen_last = False
    for prev, rec in zip([None, *layers], layers):
        if prev is not None and rec.in_features != prev.out_features:
            raise err(E_SHAPE, f"layer {rec.index} ({rec.op_name}) takes {rec.in_features} "
                               f"features but layer {prev.index} gives "
                               f"{prev.out_features}")  # fmt: skip
        if (rec.fmt == FMT_F32) != (layers[0].fmt == FMT_F32):
            raise err(E_LAYER, f"{layer_at(rec)} is {FMT_NAMES[rec.fmt]} but layer 0 is "
                               f"{FMT_NAMES[layers[0].fmt]}: a model is f32 throughout or integer "
                               "throughout")  # fmt: skip
        if rec.op in OP_CELLS and seen_last:
            raise err(E_LAYER, f"layer {rec.index} ({rec.op_name}) follows the TAKE_LAST layer")
        if rec.op == OP_TAKE_LAST:
            if seen_last:
                raise err(E_LAYER, f"layer {rec.index}: a second TAKE_LAST layer")
            seen_last = True


# -- integer records (the order and codes of csrc/blob_q.c) --------------------------------------
ACT_USES_M2 = ("LeakyRelu", "LogSoftmax")
ACT_USES_K0 = ("ThresholdedRelu", "Clip", "Affine", "Sigmoid", "Tanh", "ScaledTanh", "HardSigmoid")
MAX_SOFTMAX = 65536  # a softmax sums one 32768-sized term per feature in int32


# -- reader checks (the order and codes of csrc/blob_q.c) ---------------------------------------
def _role_specs(rec: LayerRecord) -> dict[int, tuple[int, tuple[int, ...]]]:
    """role -> (dtype code, shape) of an integer layer's tensors (optional roles included)."""
    s32, s16 = DT_S32, DT_S16
    w = DT_S8 if rec.fmt == FMT_S8 else DT_S16
    D, H, I, N = rec.num_directions, rec.hidden, rec.in_features, rec.out_features
    if rec.op == OP_DENSE:
        return {T_W: (w, (I, N)), T_B: (s32, (N,)), T_Q: (s32, (Q_SLOTS + N,))}
    if rec.op == OP_ACT:
        return {T_Q: (s32, (Q_SLOTS,)), T_LUT: (s16, (fx.LUT_SIZE,))}
    if rec.op == OP_LAYERNORM:
        return {T_B: (s32, (N,)), T_Q: (s32, (Q_SLOTS + N,))}
    if rec.op not in OP_CELLS:
        return {}
    G = CELL_GATES[OP_CELLS[rec.op]]
    nb = G * H + (H if rec.flags & LF_LINEAR_BEFORE_RESET else 0)
    specs = {T_W: (w, (D, I, G * H)), T_R: (w, (D, H, G * H)), T_B: (s32, (D, nb)),
             T_H0: (s16, (D, H)), T_Q: (s32, (D, Q_SLOTS + 2 * G * H))}  # fmt: skip
    if rec.op == OP_LSTM:
        specs |= {T_P: (s16, (D, 3, H)), T_C0: (s32, (D, H))}
    return specs


def _required(rec: LayerRecord) -> set[int]:
    if rec.op == OP_DENSE:
        return {T_W, T_Q}
    if rec.op == OP_LAYERNORM:
        return {T_Q}
    if rec.op == OP_ACT:
        return {T_Q} | ({T_LUT} if ACT_NAMES[rec.act[0][0]] in fx.LUT_KINDS else set())
    return {T_W, T_R, T_B, T_Q} if rec.op in OP_CELLS else set()


def _check_roles(rec: LayerRecord, tensors: list[TensorRecord]) -> None:
    specs, required, where = _role_specs(rec), _required(rec), layer_at(rec)
    for role, k in enumerate(rec.tensor):
        name = ROLE_NAMES[role]
        if k == -1:
            if role in required:
                raise err(E_LAYER, f"{where}: required tensor role {role} ({name}) of an "
                                   f"integer layer is absent")  # fmt: skip
            continue
        if not 0 <= k < len(tensors) or role not in specs:
            raise err(E_LAYER, f"{where}: tensor role {role} ({name}) is not used by an integer "
                               f"{rec.op_name} or its index {k} is out of range")  # fmt: skip
        if role == T_LUT and role not in required:
            raise err(E_LAYER, f"{where}: a {ACT_NAMES[rec.act[0][0]]} layer has no table "
                               f"(only {', '.join(fx.LUT_KINDS)} do)")  # fmt: skip
    for role, k in enumerate(rec.tensor):
        if k == -1:
            continue
        t, (dtype, shape) = tensors[k], specs[role]
        if t.dtype != dtype or t.shape != shape or t.zero_point != 0:
            raise err(E_SHAPE, f"{where}: tensor {t.name} is {t.dtype_name} {list(t.shape)} "
                               f"(zero point {t.zero_point}), expected {DTYPES[dtype][0]} "
                               f"{list(shape)} with zero point 0")  # fmt: skip


def _shift_ok(s: int) -> bool:
    return 1 <= s <= 62


def _fits(bound: np.ndarray, m: np.ndarray, shift: int) -> np.ndarray:
    """bound * |m| + 2^(shift-1) <= fx.INT64_MAX, elementwise (bound <= 2^62), without overflow."""
    am = np.abs(np.asarray(m, np.int64))
    room = np.int64(fx.INT64_MAX - (1 << (shift - 1)))
    return (am == 0) | (np.asarray(bound, np.int64) <= room // np.maximum(am, 1))


def _check_rows(where: str, what: str, wt: np.ndarray, m: np.ndarray, shift: int,
                acc32: int) -> None:  # fmt: skip
    """Rows of a requantized product W x (W_t [K, N], column n = row n of W): int16 weights are
    symmetric (no -32768: two products then sum in int32); the bound 32768 * sum |w| times |m|
    must fit int64, and int32 with acc32. Rows checked in the C loader's order."""
    if wt.dtype == np.int16 and wt.size and int(wt.min()) == fx.INT16_MIN:
        n = int(np.argmax((wt == fx.INT16_MIN).any(axis=0)))
        raise err(E_LAYER, f"{where}: {what} row {n} holds the weight -32768; int16 weights are "
                           "symmetric (-32767..32767)")  # fmt: skip
    bound = np.abs(wt.astype(np.int64)).sum(axis=0) * 32768
    bad = ~_fits(bound, m, shift)
    if bad.any():
        n = int(np.argmax(bad))
        raise err(E_LAYER, f"{where}: {what} row {n}: multiplier {int(m[n])} with shift {shift} "
                           f"overflows int64 on the row's bound {int(bound[n])}")  # fmt: skip
    if acc32 and bound.size and int(bound.max()) > fx.INT32_MAX:
        n = int(np.argmax(bound))
        raise err(E_LAYER, f"{where}: acc32 is set but {what} row {n}'s bound {int(bound[n])} "
                           "does not fit int32")  # fmt: skip


def _slot_error(where: str, q: np.ndarray, slot: int, want: str, d: int | None = None) -> BlobError:
    row = "" if d is None else f" (direction {d})"
    return err(E_LAYER, f"{where}: q slot {slot}{row} is {int(q[slot])}, expected {want}")


def _check_q_dense(rec: LayerRecord, q: np.ndarray, wt: np.ndarray) -> None:
    where = layer_at(rec)
    if not _shift_ok(q[0]):
        raise _slot_error(where, q, 0, "a shift in 1..62")
    if q[2] not in (0, 1):
        raise _slot_error(where, q, 2, "acc32 0 or 1")
    for slot in [1, *range(3, Q_SLOTS)]:
        if q[slot]:
            raise _slot_error(where, q, slot, "0 (unused)")
    _check_rows(where, "W", wt, q[Q_SLOTS:], int(q[0]), int(q[2]))


def _check_q_cell(rec: LayerRecord, q2: np.ndarray, W: np.ndarray, R: np.ndarray,
                  P: np.ndarray | None) -> None:  # fmt: skip
    where, acts = layer_at(rec), rec.acts
    GH = W.shape[2]
    zmax = fx.RELU_ZMAX if rec.op == OP_RNN and ACT_NAMES[rec.act[0][0]] == "Relu" else fx.ZMAX
    for d, q in enumerate(q2):
        if d and not np.array_equal(q[:5], q2[0, :5]):
            raise err(E_LAYER, f"{where}: q slots 0..4 differ between the directions "
                               f"({q2[0, :5].tolist()} and {q[:5].tolist()})")  # fmt: skip
        for slot, ok, want in ((0, _shift_ok(q[0]), "a shift in 1..62"),
                               (1, _shift_ok(q[1]), "a shift in 1..62"),
                               (2, 0 <= q[2] <= zmax, f"zlim in 0..{zmax}"),
                               (3, q[3] in (0, 1), "acc32 0 or 1")):  # fmt: skip
            if not ok:
                raise _slot_error(where, q, slot, want, d)
        if P is None:
            for slot in range(4, 8):
                if q[slot]:
                    raise _slot_error(where, q, slot, "0 (no peepholes)", d)
        else:
            if not _shift_ok(q[4]):
                raise _slot_error(where, q, 4, "a shift in 1..62", d)
            big = np.abs(P[d].astype(np.int64)).max(axis=1) << 31  # int16 P x int32 c
            for g in range(3):
                if not _fits(big[g], q[5 + g], int(q[4])):
                    raise err(E_LAYER, f"{where}: peephole {'iof'[g]} multiplier {int(q[5 + g])} "
                                       f"(direction {d}) overflows int64 on P x c")  # fmt: skip
        for a in range(3):
            hard = a < len(acts[d]) and acts[d][a].kind == "HardSigmoid"
            s = 8 + 3 * a
            if hard and not _shift_ok(q[s + 1]):
                raise _slot_error(where, q, s + 1, "a HardSigmoid shift in 1..62", d)
            if not hard and q[s : s + 3].any():
                raise _slot_error(where, q, s + int(np.argmax(q[s : s + 3] != 0)),
                                  "0 (not a HardSigmoid slot)", d)  # fmt: skip
        for slot in range(17, Q_SLOTS):
            if q[slot]:
                raise _slot_error(where, q, slot, "0 (reserved)", d)
        mw, mr = q[Q_SLOTS : Q_SLOTS + GH], q[Q_SLOTS + GH :]
        _check_rows(where, f"W (direction {d})", W[d], mw, int(q[0]), int(q[3]))
        _check_rows(where, f"R (direction {d})", R[d], mr, int(q[1]), int(q[3]))


def _check_q_act(rec: LayerRecord, q: np.ndarray) -> None:
    where, kind = layer_at(rec), ACT_NAMES[rec.act[0][0]]
    vec = kind in ("Softmax", "LogSoftmax")
    if not _shift_ok(q[1]):
        raise _slot_error(where, q, 1, "the m1 shift in 1..62")
    if vec and q[0] < 0:
        raise _slot_error(where, q, 0, f"a {kind} exponent multiplier >= 0")
    for j, used in ((1, kind in ACT_USES_M2), (2, kind == "LogSoftmax")):
        if used and not _shift_ok(q[2 * j + 1]):
            raise _slot_error(where, q, 2 * j + 1, f"the m{j + 1} shift in 1..62")
        if not used and q[2 * j : 2 * j + 2].any():
            raise _slot_error(where, q, 2 * j + int(q[2 * j] == 0), f"0 (a {kind} has no m{j + 1})")
    if kind not in ACT_USES_K0 and q[6]:
        raise _slot_error(where, q, 6, f"0 (a {kind} has no k0)")
    if kind != "Clip" and q[7]:
        raise _slot_error(where, q, 7, f"0 (a {kind} has no k1)")
    for slot in range(8, Q_SLOTS):
        if q[slot]:
            raise _slot_error(where, q, slot, "0 (reserved)")
    if vec and rec.in_features >= MAX_SOFTMAX:
        raise err(E_LAYER, f"{where}: an integer {kind} takes fewer than {MAX_SOFTMAX} "
                           f"features, not {rec.in_features}")  # fmt: skip


def _check_q_layernorm(rec: LayerRecord, q: np.ndarray) -> None:
    """Slot 0 the multipliers' shift, slots 1-2 eps_q = hi 2^31 + lo in 0..2^61, the rest 0; fewer
    than 65536 features; each multiplier times the bound of |n| fits int64."""
    where, F = layer_at(rec), rec.in_features
    if not _shift_ok(q[0]):
        raise _slot_error(where, q, 0, "a shift in 1..62")
    if not 0 <= q[1] <= fx.EPS_Q_MAX >> 31:
        raise _slot_error(where, q, 1, f"eps_q's high word in 0..{fx.EPS_Q_MAX >> 31}")
    if q[2] < 0 or (int(q[1]) << 31 | int(q[2])) > fx.EPS_Q_MAX:
        raise _slot_error(where, q, 2, "eps_q's low word in 0..2^31-1, eps_q <= 2^61")
    for slot in range(3, Q_SLOTS):
        if q[slot]:
            raise _slot_error(where, q, slot, "0 (unused)")
    if F >= fx.LN_MAX_FEATURES:
        raise err(E_LAYER, f"{where}: an integer LayerNorm takes fewer than "
                           f"{fx.LN_MAX_FEATURES} features, not {F}")  # fmt: skip
    m = q[Q_SLOTS:]
    bad = ~_fits(np.full(m.shape, fx.layernorm_bound(F)), m, int(q[0]))
    if bad.any():
        k = int(np.argmax(bad))
        raise err(E_LAYER, f"{where}: feature {k}: multiplier {int(m[k])} with shift {int(q[0])} "
                           f"overflows int64 on the bound {fx.layernorm_bound(F)} of the "
                           "normalized value")  # fmt: skip


def _check_int_record(rec: LayerRecord, tensors: list[TensorRecord]) -> None:
    """Raise BlobError (E_LAYER / E_SHAPE) at the first fault of an integer layer record; the
    record's op, flags, activation codes and sizes are already checked."""
    where = layer_at(rec)
    if rec.fmt == FMT_S8 and rec.op not in (OP_DENSE, *OP_CELLS):
        raise err(E_LAYER, f"{where}: a layer without weights has format s16, not s8")
    for d, acts in enumerate(rec.acts if rec.op in OP_CELLS else []):
        for k, act in enumerate(acts):
            if act.kind not in fx.GATE_KINDS and not (act.kind == "Relu" and rec.op == OP_RNN):
                raise err(E_LAYER, f"{where}: activation {act.kind} (direction {d}, slot {k}) "
                                   "has no integer form in a cell")  # fmt: skip
            if (act.kind == "Relu") != (rec.acts[0][0].kind == "Relu"):
                raise err(E_LAYER, f"{where}: Relu in one direction only (direction {d} has "
                                   f"{act.kind}); both or neither")  # fmt: skip
    _check_roles(rec, tensors)
    if rec.op in (OP_TAKE_LAST, OP_SLICE):
        return
    qt = tensors[rec.tensor[T_Q]]
    if not (math.isfinite(qt.scale) and qt.scale > 0):
        raise err(E_LAYER, f"{where}: tensor {qt.name} holds the output scale {qt.scale}; it "
                           "must be finite and > 0")  # fmt: skip
    q = qt.array.astype(np.int64)
    if rec.op == OP_DENSE:
        _check_q_dense(rec, q, tensors[rec.tensor[T_W]].array)
    elif rec.op == OP_ACT:
        _check_q_act(rec, q)
    elif rec.op == OP_LAYERNORM:
        _check_q_layernorm(rec, q)
    else:
        k = rec.tensor[T_P]
        _check_q_cell(rec, q, tensors[rec.tensor[T_W]].array, tensors[rec.tensor[T_R]].array,
                      None if k < 0 else tensors[k].array)  # fmt: skip


def scale_of(rec: LayerRecord, tensors: list[TensorRecord], s_in: float) -> float:
    """The scale of a layer's int16 output: its q tensor's, or its input's (TakeLast, Slice)."""
    k = rec.tensor[T_Q]
    return s_in if k < 0 else float(tensors[k].scale)


def qio(meta: dict[str, Any]) -> tuple[float, float]:
    qio = meta.get("qio")
    keys = ("input_scale", "output_scale")
    scales = [qio.get(k) if isinstance(qio, dict) else None for k in keys]
    if not all(isinstance(s, (int, float)) and not isinstance(s, bool) and math.isfinite(s)
               and s > 0 for s in scales):  # fmt: skip
        raise err(E_HEADER, f"metadata \"qio\" is {qio!r}; an integer model needs "
                            f"{dict.fromkeys(keys, 's')} with finite s > 0")  # fmt: skip
    return float(scales[0]), float(scales[1])  # type: ignore[arg-type]


def check_int_meta(meta: dict[str, Any], layers: list[LayerRecord],
                tensors: list[TensorRecord]) -> None:  # fmt: skip
    """An integer model's metadata: "quant" int16 (every layer s16) or int8, and "qio" with the
    input and output scales, the output scale that of the last layer's output."""
    quant = meta.get("quant")
    if quant not in WFMT or (quant == "int16" and any(l.fmt == FMT_S8 for l in layers)):
        raise err(E_HEADER, f"metadata \"quant\" is {quant!r}, but the layers are "
                            f"{sorted({FMT_NAMES[l.fmt] for l in layers})}: expected int8, or "
                            "int16 when every layer is s16")  # fmt: skip
    s, out = qio(meta)
    for rec in layers:
        s = scale_of(rec, tensors, s)
    if np.float32(s) != np.float32(out):
        raise err(E_HEADER, f"metadata \"qio\" output_scale {out} differs from the last layer's "
                            f"output scale {s}")  # fmt: skip
