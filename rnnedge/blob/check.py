"""Integer layers in the .rne blob: docs/quantization.md §10, docs/format.md "Integer layers".

- `write_qblob(qnet, alignment)`: a QNetwork (rnnedge/quantize.py) as a format-v1 blob; called by
  `format.write_blob`. The record fields of the f32 format keep their meaning (informative: act,
  alpha, beta, clip); the kernels read the q tensor. The writer proves its output with the reader.
- `check_layer(rec, tensors)`: read_blob's checks of one integer layer, and `check_model(meta,
  layers, tensors)` of an integer model's metadata: the same checks, order and codes as
  csrc/blob_q.c, so that a blob the reader accepts is one the C step path runs without fault.
- `to_qnetwork(blob)`: the QNetwork a blob holds, for the numpy reference (fixedpoint.run_int);
  its `source` is the dequantized float Network (weights = integers times their scales).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from . import fixedpoint as fx
from .errors import BlobError, ConvertError
from .format import (
    ACT_NAMES,
    DTYPES,
    E_HEADER,
    E_LAYER,
    E_SHAPE,
    FMT_F32,
    FMT_NAMES,
    FMT_S8,
    LF_BIDIR,
    LF_CLIP,
    LF_INPUT_FORGET,
    LF_LINEAR_BEFORE_RESET,
    LF_REVERSE,
    MAX_LAYERS,
    OP_ACT,
    OP_CELLS,
    OP_DENSE,
    OP_LAYERNORM,
    OP_LSTM,
    OP_RNN,
    OP_SLICE,
    OP_TAKE_LAST,
    ROLE_NAMES,
    T_B,
    T_C0,
    T_H0,
    T_LUT,
    T_P,
    T_Q,
    T_R,
    T_W,
    Blob,
    LayerRecord,
    TensorRecord,
    _Builder,
    _err,
    _LayerOut,
    _spec,
    _where,
    check_state,
    metadata,
    metadata_bytes,
    read_blob,
)
from .layers import (
    CELL_GATES,
    Act,
    Activation,
    Dense,
    Layer,
    LayerNorm,
    Network,
    Recurrent,
    Slice,
    StateSpec,
    TakeLast,
)
from .quantize import (
    FMT_CODE,
    N_SCALARS,
    QActivation,
    QDense,
    QLayer,
    QLayerNorm,
    QNetwork,
    QRecurrent,
    QSlice,
    QTakeLast,
    blob_tensors,
)

QUANTS = ("int16", "int8")
CELL_KINDS = ("Sigmoid", "Tanh", "HardSigmoid")  # + Relu in an RNN
LUT_KINDS = ("Elu", "Softsign", "Softplus")
ACT_USES_M2 = ("LeakyRelu", "LogSoftmax")
ACT_USES_K0 = ("ThresholdedRelu", "Clip", "Affine", "Sigmoid", "Tanh", "ScaledTanh", "HardSigmoid")
MAX_SOFTMAX = 65536  # a softmax sums one 32768-sized term per feature in int32
INT64_MAX = (1 << 63) - 1
_DT_CODES = {DTYPES[c][1].newbyteorder("<"): c for c in DTYPES}  # numpy dtype -> RNE_DT_*
_Q_TYPES = {QDense: Dense, QActivation: Activation, QRecurrent: Recurrent, QTakeLast: TakeLast,
            QSlice: Slice, QLayerNorm: LayerNorm}  # fmt: skip


# -- writer --------------------------------------------------------------------------------------
def _fail(i: int, q: object, what: str) -> ConvertError:
    return ConvertError(f"layer {i} ({type(q).__name__}): {what}")


def _record(i: int, q: QLayer, src: Layer, b: _Builder) -> _LayerOut:
    """The layer record of one integer layer; informative fields from the float source layer."""
    if q.wfmt not in FMT_CODE or (not isinstance(q, (QDense, QRecurrent)) and q.wfmt != "s16"):
        raise _fail(i, q, f"weight format {q.wfmt!r} is not valid for this layer")
    rec = _LayerOut(op=0, in_features=q.in_features, out_features=q.out_features,
                    fmt=FMT_CODE[q.wfmt])  # fmt: skip
    if isinstance(q, QDense):
        rec.op = OP_DENSE
    elif isinstance(q, QActivation):
        rec.op = OP_ACT
        b.set_act(rec, 0, 0, Act(q.kind, q.alpha, q.beta))
    elif isinstance(q, QLayerNorm):
        rec.op = OP_LAYERNORM
        rec.alpha[0][0] = q.epsilon  # informative: the kernel reads eps_q from the q tensor
    elif isinstance(q, QTakeLast):
        rec.op, rec.param = OP_TAKE_LAST, (q.split, 0)
    elif isinstance(q, QSlice):
        rec.op, rec.param = OP_SLICE, (q.start, q.stop)
    else:
        assert isinstance(q, QRecurrent) and isinstance(src, Recurrent)
        kinds = [tuple(a.kind for a in acts) for acts in src.activations]
        if kinds != [tuple(a) for a in q.acts]:
            raise _fail(i, q, f"activations {q.acts} differ from the float layer's {kinds}")
        mine = (q.cell, q.direction, q.hidden, q.input_forget, q.linear_before_reset, q.clip)
        theirs = (src.cell, src.direction, src.hidden_size, src.input_forget,
                  src.linear_before_reset, src.clip)  # fmt: skip
        if mine != theirs:
            raise _fail(i, q, f"cell attributes {mine} differ from the float layer's {theirs}")
        b.cell_record(rec, src)
    return rec


def write_qblob(qnet: QNetwork, alignment: int) -> bytes:
    """The integer blob of `qnet` (alignment already checked by write_blob). Raises
    ConvertError naming the layer for anything the format cannot hold; the bytes are proved
    with read_blob, the checks the C loader makes."""
    if not isinstance(qnet, QNetwork):
        raise ConvertError(f"{type(qnet).__name__} is neither a Network nor a QNetwork")
    if qnet.quant not in QUANTS:
        raise ConvertError(f"a QNetwork has quant {qnet.quant!r}; expected one of {QUANTS}")
    src = qnet.source
    if not qnet.layers or len(qnet.layers) > MAX_LAYERS:
        raise ConvertError(
            f"the network has {len(qnet.layers)} layers; a blob holds 1..{MAX_LAYERS}"
        )
    if len(src.layers) != len(qnet.layers):
        raise ConvertError(f"the QNetwork has {len(qnet.layers)} layers, its float source "
                           f"{len(src.layers)}")  # fmt: skip
    check_state(src)
    b = _Builder()
    for i, (q, f) in enumerate(zip(qnet.layers, src.layers)):
        if type(q) not in _Q_TYPES or not isinstance(f, _Q_TYPES[type(q)]):
            raise ConvertError(f"layer {i}: {type(q).__name__} does not match the float source "
                               f"layer {type(f).__name__}")  # fmt: skip
        rec = _record(i, q, f, b)
        for t in blob_tensors(q):
            data = np.asarray(t.data)
            code = _DT_CODES.get(data.dtype.newbyteorder("<"))
            if code is None or code == 0:
                raise _fail(i, q, f"tensor {t.suffix} has dtype {data.dtype}, not an integer "
                                  "type of the format")  # fmt: skip
            b.tensor(rec, t.role, data, t.suffix, dtype=code, scale=t.scale)
        b.layers.append(rec)
    meta = metadata(src) | {
        "quant": qnet.quant,
        "qio": {"input_scale": float(qnet.in_scale), "output_scale": float(qnet.out_scale)},
    }
    data = b.finish(metadata_bytes(meta), alignment)
    try:
        read_blob(data)
    except BlobError as e:
        raise ConvertError(f"the quantized network cannot be stored: {e}") from None
    return data


# -- reader checks (the order and codes of csrc/blob_q.c) ---------------------------------------
def _role_specs(rec: LayerRecord) -> dict[int, tuple[int, tuple[int, ...]]]:
    """role -> (dtype code, shape) of an integer layer's tensors (optional roles included)."""
    s32, s16 = 3, 2
    w = 1 if rec.fmt == FMT_S8 else 2
    D, H, I, N = rec.num_directions, rec.hidden, rec.in_features, rec.out_features
    if rec.op == OP_DENSE:
        return {T_W: (w, (I, N)), T_B: (s32, (N,)), T_Q: (s32, (N_SCALARS + N,))}
    if rec.op == OP_ACT:
        return {T_Q: (s32, (N_SCALARS,)), T_LUT: (s16, (fx.LUT_SIZE,))}
    if rec.op == OP_LAYERNORM:
        return {T_B: (s32, (N,)), T_Q: (s32, (N_SCALARS + N,))}
    if rec.op not in OP_CELLS:
        return {}
    G = CELL_GATES[OP_CELLS[rec.op]]
    nb = G * H + (H if rec.flags & LF_LINEAR_BEFORE_RESET else 0)
    specs = {T_W: (w, (D, I, G * H)), T_R: (w, (D, H, G * H)), T_B: (s32, (D, nb)),
             T_H0: (s16, (D, H)), T_Q: (s32, (D, N_SCALARS + 2 * G * H))}  # fmt: skip
    if rec.op == OP_LSTM:
        specs |= {T_P: (s16, (D, 3, H)), T_C0: (s32, (D, H))}
    return specs


def _required(rec: LayerRecord) -> set[int]:
    if rec.op == OP_DENSE:
        return {T_W, T_Q}
    if rec.op == OP_LAYERNORM:
        return {T_Q}
    if rec.op == OP_ACT:
        return {T_Q} | ({T_LUT} if ACT_NAMES[rec.act[0][0]] in LUT_KINDS else set())
    return {T_W, T_R, T_B, T_Q} if rec.op in OP_CELLS else set()


def _check_roles(rec: LayerRecord, tensors: list[TensorRecord]) -> None:
    specs, required, where = _role_specs(rec), _required(rec), _where(rec)
    for role, k in enumerate(rec.tensor):
        name = ROLE_NAMES[role]
        if k == -1:
            if role in required:
                raise _err(E_LAYER, f"{where}: required tensor role {role} ({name}) of an "
                                    f"integer layer is absent")  # fmt: skip
            continue
        if not 0 <= k < len(tensors) or role not in specs:
            raise _err(E_LAYER, f"{where}: tensor role {role} ({name}) is not used by an integer "
                                f"{rec.op_name} or its index {k} is out of range")  # fmt: skip
        if role == T_LUT and role not in required:
            raise _err(E_LAYER, f"{where}: a {ACT_NAMES[rec.act[0][0]]} layer has no table "
                                f"(only {', '.join(LUT_KINDS)} do)")  # fmt: skip
    for role, k in enumerate(rec.tensor):
        if k == -1:
            continue
        t, (dtype, shape) = tensors[k], specs[role]
        if t.dtype != dtype or t.shape != shape or t.zero_point != 0:
            raise _err(E_SHAPE, f"{where}: tensor {t.name} is {t.dtype_name} {list(t.shape)} "
                                f"(zero point {t.zero_point}), expected {DTYPES[dtype][0]} "
                                f"{list(shape)} with zero point 0")  # fmt: skip


def _shift_ok(s: int) -> bool:
    return 1 <= s <= 62


def _fits(bound: np.ndarray, m: np.ndarray, shift: int) -> np.ndarray:
    """bound * |m| + 2^(shift-1) <= INT64_MAX, elementwise (bound <= 2^62), without overflow."""
    am = np.abs(np.asarray(m, np.int64))
    room = np.int64(INT64_MAX - (1 << (shift - 1)))
    return (am == 0) | (np.asarray(bound, np.int64) <= room // np.maximum(am, 1))


def _check_rows(where: str, what: str, wt: np.ndarray, m: np.ndarray, shift: int,
                acc32: int) -> None:  # fmt: skip
    """Rows of a requantized product W x (W_t [K, N], column n = row n of W): int16 weights are
    symmetric (no -32768: two products then sum in int32); the bound 32768 * sum |w| times |m|
    must fit int64, and int32 with acc32. Rows checked in the C loader's order."""
    if wt.dtype == np.int16 and wt.size and int(wt.min()) == fx.INT16_MIN:
        n = int(np.argmax((wt == fx.INT16_MIN).any(axis=0)))
        raise _err(E_LAYER, f"{where}: {what} row {n} holds the weight -32768; int16 weights are "
                            "symmetric (-32767..32767)")  # fmt: skip
    bound = np.abs(wt.astype(np.int64)).sum(axis=0) * 32768
    bad = ~_fits(bound, m, shift)
    if bad.any():
        n = int(np.argmax(bad))
        raise _err(E_LAYER, f"{where}: {what} row {n}: multiplier {int(m[n])} with shift {shift} "
                            f"overflows int64 on the row's bound {int(bound[n])}")  # fmt: skip
    if acc32 and bound.size and int(bound.max()) > fx.INT32_MAX:
        n = int(np.argmax(bound))
        raise _err(E_LAYER, f"{where}: acc32 is set but {what} row {n}'s bound {int(bound[n])} "
                            "does not fit int32")  # fmt: skip


def _slot_error(where: str, q: np.ndarray, slot: int, want: str, d: int | None = None) -> BlobError:
    row = "" if d is None else f" (direction {d})"
    return _err(E_LAYER, f"{where}: q slot {slot}{row} is {int(q[slot])}, expected {want}")


def _check_q_dense(rec: LayerRecord, q: np.ndarray, wt: np.ndarray) -> None:
    where = _where(rec)
    if not _shift_ok(q[0]):
        raise _slot_error(where, q, 0, "a shift in 1..62")
    if q[2] not in (0, 1):
        raise _slot_error(where, q, 2, "acc32 0 or 1")
    for slot in [1, *range(3, N_SCALARS)]:
        if q[slot]:
            raise _slot_error(where, q, slot, "0 (unused)")
    _check_rows(where, "W", wt, q[N_SCALARS:], int(q[0]), int(q[2]))


def _check_q_cell(rec: LayerRecord, q2: np.ndarray, W: np.ndarray, R: np.ndarray,
                  P: np.ndarray | None) -> None:  # fmt: skip
    where, acts = _where(rec), rec.acts
    GH = W.shape[2]
    zmax = fx.RELU_ZMAX if rec.op == OP_RNN and ACT_NAMES[rec.act[0][0]] == "Relu" else fx.ZMAX
    for d, q in enumerate(q2):
        if d and not np.array_equal(q[:5], q2[0, :5]):
            raise _err(E_LAYER, f"{where}: q slots 0..4 differ between the directions "
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
                    raise _err(E_LAYER, f"{where}: peephole {'iof'[g]} multiplier {int(q[5 + g])} "
                                        f"(direction {d}) overflows int64 on P x c")  # fmt: skip
        for a in range(3):
            hard = a < len(acts[d]) and acts[d][a].kind == "HardSigmoid"
            s = 8 + 3 * a
            if hard and not _shift_ok(q[s + 1]):
                raise _slot_error(where, q, s + 1, "a HardSigmoid shift in 1..62", d)
            if not hard and q[s : s + 3].any():
                raise _slot_error(where, q, s + int(np.argmax(q[s : s + 3] != 0)),
                                  "0 (not a HardSigmoid slot)", d)  # fmt: skip
        for slot in range(17, N_SCALARS):
            if q[slot]:
                raise _slot_error(where, q, slot, "0 (reserved)", d)
        mw, mr = q[N_SCALARS : N_SCALARS + GH], q[N_SCALARS + GH :]
        _check_rows(where, f"W (direction {d})", W[d], mw, int(q[0]), int(q[3]))
        _check_rows(where, f"R (direction {d})", R[d], mr, int(q[1]), int(q[3]))


def _check_q_act(rec: LayerRecord, q: np.ndarray) -> None:
    where, kind = _where(rec), ACT_NAMES[rec.act[0][0]]
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
    for slot in range(8, N_SCALARS):
        if q[slot]:
            raise _slot_error(where, q, slot, "0 (reserved)")
    if vec and rec.in_features >= MAX_SOFTMAX:
        raise _err(E_LAYER, f"{where}: an integer {kind} takes fewer than {MAX_SOFTMAX} "
                            f"features, not {rec.in_features}")  # fmt: skip


def _check_q_layernorm(rec: LayerRecord, q: np.ndarray) -> None:
    """Slot 0 the multipliers' shift, slots 1-2 eps_q = hi 2^31 + lo in 0..2^61, the rest 0; fewer
    than 65536 features; each multiplier times the bound of |n| fits int64."""
    where, F = _where(rec), rec.in_features
    if not _shift_ok(q[0]):
        raise _slot_error(where, q, 0, "a shift in 1..62")
    if not 0 <= q[1] <= fx.EPS_Q_MAX >> 31:
        raise _slot_error(where, q, 1, f"eps_q's high word in 0..{fx.EPS_Q_MAX >> 31}")
    if q[2] < 0 or (int(q[1]) << 31 | int(q[2])) > fx.EPS_Q_MAX:
        raise _slot_error(where, q, 2, "eps_q's low word in 0..2^31-1, eps_q <= 2^61")
    for slot in range(3, N_SCALARS):
        if q[slot]:
            raise _slot_error(where, q, slot, "0 (unused)")
    if F >= fx.LN_MAX_FEATURES:
        raise _err(E_LAYER, f"{where}: an integer LayerNorm takes fewer than "
                            f"{fx.LN_MAX_FEATURES} features, not {F}")  # fmt: skip
    m = q[N_SCALARS:]
    bad = ~_fits(np.full(m.shape, fx.layernorm_bound(F)), m, int(q[0]))
    if bad.any():
        k = int(np.argmax(bad))
        raise _err(E_LAYER, f"{where}: feature {k}: multiplier {int(m[k])} with shift {int(q[0])} "
                            f"overflows int64 on the bound {fx.layernorm_bound(F)} of the "
                            "normalized value")  # fmt: skip


def check_layer(rec: LayerRecord, tensors: list[TensorRecord]) -> None:
    """Raise BlobError (E_LAYER / E_SHAPE) at the first fault of an integer layer record; the
    record's op, flags, activation codes and sizes are already checked."""
    where = _where(rec)
    if rec.fmt == FMT_S8 and rec.op not in (OP_DENSE, *OP_CELLS):
        raise _err(E_LAYER, f"{where}: a layer without weights has format s16, not s8")
    for d, acts in enumerate(rec.acts if rec.op in OP_CELLS else []):
        for k, act in enumerate(acts):
            if act.kind not in CELL_KINDS and not (act.kind == "Relu" and rec.op == OP_RNN):
                raise _err(E_LAYER, f"{where}: activation {act.kind} (direction {d}, slot {k}) "
                                    "has no integer form in a cell")  # fmt: skip
            if (act.kind == "Relu") != (rec.acts[0][0].kind == "Relu"):
                raise _err(E_LAYER, f"{where}: Relu in one direction only (direction {d} has "
                                    f"{act.kind}); both or neither")  # fmt: skip
    _check_roles(rec, tensors)
    if rec.op in (OP_TAKE_LAST, OP_SLICE):
        return
    qt = tensors[rec.tensor[T_Q]]
    if not (math.isfinite(qt.scale) and qt.scale > 0):
        raise _err(E_LAYER, f"{where}: tensor {qt.name} holds the output scale {qt.scale}; it "
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


def _scale_of(rec: LayerRecord, tensors: list[TensorRecord], s_in: float) -> float:
    """The scale of a layer's int16 output: its q tensor's, or its input's (TakeLast, Slice)."""
    k = rec.tensor[T_Q]
    return s_in if k < 0 else float(tensors[k].scale)


def _qio(meta: dict[str, Any]) -> tuple[float, float]:
    qio = meta.get("qio")
    keys = ("input_scale", "output_scale")
    scales = [qio.get(k) if isinstance(qio, dict) else None for k in keys]
    if not all(isinstance(s, (int, float)) and not isinstance(s, bool) and math.isfinite(s)
               and s > 0 for s in scales):  # fmt: skip
        raise _err(E_HEADER, f"metadata \"qio\" is {qio!r}; an integer model needs "
                             f"{dict.fromkeys(keys, 's')} with finite s > 0")  # fmt: skip
    return float(scales[0]), float(scales[1])  # type: ignore[arg-type]


def check_model(meta: dict[str, Any], layers: list[LayerRecord],
                tensors: list[TensorRecord]) -> None:  # fmt: skip
    """An integer model's metadata: "quant" int16 (every layer s16) or int8, and "qio" with the
    input and output scales, the output scale that of the last layer's output."""
    quant = meta.get("quant")
    if quant not in QUANTS or (quant == "int16" and any(l.fmt == FMT_S8 for l in layers)):
        raise _err(E_HEADER, f"metadata \"quant\" is {quant!r}, but the layers are "
                             f"{sorted({FMT_NAMES[l.fmt] for l in layers})}: expected int8, or "
                             "int16 when every layer is s16")  # fmt: skip
    s, out = _qio(meta)
    for rec in layers:
        s = _scale_of(rec, tensors, s)
    if np.float32(s) != np.float32(out):
        raise _err(E_HEADER, f"metadata \"qio\" output_scale {out} differs from the last layer's "
                             f"output scale {s}")  # fmt: skip


# -- blob -> QNetwork ------------------------------------------------------------------------------
def _mult(m: np.ndarray | int, shift: int) -> fx.Mult:
    return fx.Mult(np.array(m, np.int64), int(shift))


def _acc_bound(*mats: np.ndarray) -> int:
    """max over rows of 32768 * sum |w| (W_t layouts: rows are the last axis)."""
    return max(int(np.abs(w.astype(np.int64)).sum(axis=-2).max(initial=0)) * 32768 for w in mats)


def _rebuild(rec: LayerRecord, t: Any, s_in: float, s_out: float) -> tuple[QLayer, Layer]:
    """One integer layer and its dequantized float counterpart. t(role): the tensor or None."""
    wfmt = FMT_NAMES[rec.fmt]
    if rec.op == OP_TAKE_LAST:
        split = rec.param[0]
        return QTakeLast(rec.in_features, split, s_in), TakeLast(rec.in_features, split)
    if rec.op == OP_SLICE:
        p0, p1 = rec.param
        return QSlice(rec.in_features, p0, p1, s_in), Slice(rec.in_features, p0, p1)
    q = t(T_Q).astype(np.int64)
    if rec.op == OP_ACT:
        act = rec.acts[0][0]
        m = [_mult(q[2 * j], q[2 * j + 1]) if q[2 * j + 1] else None for j in range(3)]
        lut = t(T_LUT)
        qa = QActivation(act.kind, rec.in_features, s_in, s_out, m[0], m[1], m[2], int(q[6]),
                         int(q[7]), None if lut is None else np.array(lut, np.int16), act.alpha,
                         act.beta)  # type: ignore[arg-type]  # fmt: skip
        return qa, Activation(act, rec.in_features)
    if rec.op == OP_LAYERNORM:
        bias, F = t(T_B), rec.in_features
        mult = _mult(q[N_SCALARS:], q[0])
        eps_q = int(q[1]) << 31 | int(q[2])
        eps = float(rec.alpha[0][0])
        ql = QLayerNorm(F, mult, None if bias is None else np.array(bias, np.int32), eps_q, eps,
                        s_in, s_out)  # fmt: skip
        gamma = (mult.real() * 2.0**fx.LN_FRAC * s_out).astype(np.float32)
        beta = None if bias is None else (bias * np.float64(s_out)).astype(np.float32)
        return ql, LayerNorm(gamma, beta, eps)
    if rec.op == OP_DENSE:
        Wt, bias = t(T_W), t(T_B)
        mult = _mult(q[N_SCALARS:], q[0])
        qd = QDense(np.array(Wt.T), None if bias is None else np.array(bias, np.int32), mult, wfmt,
                    s_in, s_out, _acc_bound(Wt))  # fmt: skip
        sigma = mult.real() * s_out  # Mw = sigma / s_out
        w = (Wt.T.astype(np.float64) * sigma[:, None] / s_in).astype(np.float32)
        b = None if bias is None else (bias * np.float64(s_out)).astype(np.float32)
        return qd, Dense(w, b)
    return _rebuild_cell(rec, t, q, s_in, s_out)


def _rebuild_cell(rec: LayerRecord, t: Any, q: np.ndarray, s_x: float,
                  s_h: float) -> tuple[QLayer, Layer]:  # fmt: skip
    cell, D, H = OP_CELLS[rec.op], rec.num_directions, rec.hidden
    G = CELL_GATES[cell]
    lbr = bool(rec.flags & LF_LINEAR_BEFORE_RESET)
    Wt, Rt, bias, P = t(T_W), t(T_R), np.array(t(T_B), np.int32), t(T_P)
    direction = ("bidirectional" if rec.flags & LF_BIDIR
                 else "reverse" if rec.flags & LF_REVERSE else "forward")  # fmt: skip
    acts = rec.acts
    kinds = [tuple(a.kind for a in ad) for ad in acts]
    hs = [[(_mult(q[d, 8 + 3 * a], q[d, 9 + 3 * a]), int(q[d, 10 + 3 * a]))
           if a < len(acts[d]) and acts[d][a].kind == "HardSigmoid" else None for a in range(3)]
          for d in range(D)]  # fmt: skip
    mult_w = _mult(q[:, N_SCALARS : N_SCALARS + G * H], q[0, 0])
    mult_r = _mult(q[:, N_SCALARS + G * H :], q[0, 1])
    ql = QRecurrent(
        cell=cell, direction=direction, wfmt=FMT_NAMES[rec.fmt],
        W=np.array(Wt.transpose(0, 2, 1)), R=np.array(Rt.transpose(0, 2, 1)), bias=bias,
        mult_w=mult_w, mult_r=mult_r, zlim=int(q[0, 2]), acts=kinds,
        hs=[[h for h in hd[: len(acts[d])]] for d, hd in enumerate(hs)],
        in_scale=s_x, out_scale=s_h, acc_bound=_acc_bound(Wt, Rt),
        P=None if P is None else np.array(P, np.int16),
        peep=None if P is None else _mult(q[:, 5:8], q[0, 4]),
        input_forget=bool(rec.flags & LF_INPUT_FORGET), linear_before_reset=lbr,
        h0=None if t(T_H0) is None else np.array(t(T_H0), np.int16),
        c0=None if t(T_C0) is None else np.array(t(T_C0), np.int32),
        clip=float(rec.clip) if rec.flags & LF_CLIP else None,
    )  # fmt: skip
    # the float layer these integers stand for: weights times their scales
    s_z = s_h / (1 << fx.RELU_FRAC) if kinds[0][0] == "Relu" else fx.Z_SCALE
    sig_w, sig_r = mult_w.real() * s_z, mult_r.real() * s_z  # [D, G*H]
    W = Wt.transpose(0, 2, 1).astype(np.float64) * sig_w[:, :, None] / s_x
    R = Rt.transpose(0, 2, 1).astype(np.float64) * sig_r[:, :, None] / s_h
    b = bias.astype(np.float64) * s_z
    Wb, Rb = b[:, : G * H], np.zeros((D, G * H))
    if lbr:
        Rb[:, 2 * H :] = b[:, 3 * H :]
    Pf = None
    if P is not None:
        s_p = ql.peep.real() * fx.Z_SCALE / fx.C_SCALE  # type: ignore[union-attr]  # [D, 3]
        Pf = (P.astype(np.float64) * s_p[:, :, None]).reshape(D, 3 * H)
    f32 = lambda a: None if a is None else np.asarray(a, np.float32)  # noqa: E731
    layer = Recurrent(
        cell, direction, f32(W), f32(R),  # type: ignore[arg-type]
        f32(np.concatenate([Wb, Rb], axis=1)), f32(Pf),
        f32(None if ql.h0 is None else ql.h0 * np.float64(s_h)),
        f32(None if ql.c0 is None else ql.c0 * fx.C_SCALE),
        [list(a) for a in acts], ql.clip, ql.input_forget, lbr,
    )  # fmt: skip
    return ql, layer


def to_qnetwork(blob: Blob) -> QNetwork:
    """The QNetwork an integer blob holds (read_blob has checked it): every integer and scale
    as stored, and as `source` the dequantized float Network with the blob's metadata."""
    if blob.layers[0].fmt == FMT_F32:
        raise BlobError("to_qnetwork: this is an f32 blob; use to_network", code=E_LAYER)
    meta = blob.meta
    s_in, s_out = _qio(meta)
    s = s_in
    qlayers: list[QLayer] = []
    flayers: list[Layer] = []
    for rec in blob.layers:
        s_next = _scale_of(rec, blob.tensors, s)
        ql, fl = _rebuild(rec, lambda role, i=rec.index: blob.tensor(i, role), s, s_next)
        qlayers.append(ql)
        flayers.append(fl)
        s = s_next
    source = Network(
        flayers, _spec(meta, "input", blob.in_features), _spec(meta, "output", blob.out_features),
        name=str(meta.get("name", "model")), producer=str(meta.get("producer", "")),
        quant=str(meta["quant"]),
        state=[StateSpec(str(x["name"]), int(x["layer"]), str(x["kind"]), x.get("output"))
               for x in meta.get("state", [])],
        folded=[str(f) for f in meta.get("folded", [])],
    )  # fmt: skip
    return QNetwork(qlayers, s_in, s_out, str(meta["quant"]), source)

