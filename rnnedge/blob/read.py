"""Reading a .rne blob (format version 2, docs/format.md): bytes -> records -> IR.

`read_blob(data)` has the C loader judge the blob (rnnedge/blob/check.py: the one set of checks,
csrc/blob.c and csrc/blob_q.c, whose refusal names the node, value, tensor and field), checks the
metadata the C library never reads (rnnedge/blob/meta.py, and an integer model's quant and qio),
and returns a `Blob` (rnnedge/blob/spec.py) whose tensor arrays are numpy views into `data` (no
copy). Without the compiled extension it parses what it can to display (`rnnedge info`) and says
that validation needs the extension. `to_network(blob)` rebuilds the float Network of an f32
blob, `to_qnetwork(blob)` the QNetwork of an integer one (rnnedge/ir/layers.py), so that the
numpy references run exactly what the C library runs. No onnx import here.
"""

from __future__ import annotations

import binascii
import functools
import math
import struct
from typing import Any

import numpy as np

from .. import fixedpoint as fx
from ..errors import BlobError
from ..ir.layers import (
    CELL_GATES, Activation, Dense, FloatLayer, IntLayer, LayerNorm, Network, QActivation, QDense,
    QLayerNorm, QNetwork, QRecurrent, QSlice, QTakeLast, Recurrent, Slice, StateSpec, TakeLast,
    TensorSpec, Mult,
)  # fmt: skip
from . import check as _check
from . import meta as _meta
from .check import check_int_meta, err, qio, scale_of, version_text
from .spec import (
    DTYPES, E_CRC, E_HEADER, E_LAYER, E_MAGIC, E_TENSOR, E_TRUNC, E_VERSION, FMT_F32, FMT_NAMES,
    FORMAT_VERSION, HEADER_SIZE, HEADER_STRUCT, LF_BIDIR, LF_CLIP, LF_INNER, LF_INPUT_FORGET,
    LF_LINEAR_BEFORE_RESET, LF_REVERSE, MAGIC, NODE_SIZE, NODE_STRUCT, OP_ACT, OP_CELLS, OP_DENSE,
    OP_LAYERNORM, OP_SLICE, OP_TAKE_LAST, Q_SLOTS, T_B, T_C0, T_H0, T_LUT, T_P, T_Q, T_R, T_W,
    TENSOR_SIZE, TENSOR_STRUCT, VALUE_SIZE, VALUE_STRUCT, Blob, Header, NodeRecord, TensorRecord,
    ValueRecord,
)  # fmt: skip


# -- parsing: only what reading the records needs (the C loader judges the rest) ----------------
def _read_header(view: memoryview) -> Header:
    if len(view) < HEADER_SIZE:
        raise err(E_TRUNC, f"truncated: {len(view)} bytes, shorter than the {HEADER_SIZE}-byte "
                           "header")  # fmt: skip
    h = Header(*HEADER_STRUCT.unpack_from(view, 0))
    if h.magic != MAGIC:
        raise err(E_MAGIC, f"not an rnnedge blob: magic {h.magic!r}, expected {MAGIC!r}")
    if h.version != FORMAT_VERSION:
        raise err(E_VERSION if h.version else E_HEADER, version_text(h.version))
    if not HEADER_SIZE + 4 <= h.file_size <= len(view):
        raise err(E_TRUNC, f"truncated: {len(view)} bytes, but the header says {h.file_size}")
    for name, off, size in (("metadata", h.meta_off, h.meta_size),
                            ("node table", h.node_off, NODE_SIZE * h.n_nodes),
                            ("tensor table", h.tensor_off, TENSOR_SIZE * h.n_tensors),
                            ("value table", h.value_off, VALUE_SIZE * h.n_values)):  # fmt: skip
        if off + size > h.file_size - 4:
            raise err(E_TRUNC, f"{name} [{off}, {off + size}) runs past the data end "
                               f"{h.file_size - 4}")  # fmt: skip
    return h


def _read_tensor(view: memoryview, h: Header, k: int) -> TensorRecord:
    f = TENSOR_STRUCT.unpack_from(view, h.tensor_off + k * TENSOR_SIZE)
    raw, dtype, ndim, shape4, off, nbytes, scale, zp = f[0], f[1], f[2], f[4:8], *f[8:12]
    name = raw.rstrip(b"\0").decode("ascii", "replace")
    dims = shape4[:ndim]
    size = DTYPES[dtype][1].itemsize if dtype in DTYPES else 0
    if not size or not 1 <= ndim <= 4 or nbytes != math.prod(dims) * size:
        raise err(E_TENSOR, f"tensor {k} ({name}): dtype {dtype}, shape {list(dims)} and nbytes "
                            f"{nbytes} do not fit together")  # fmt: skip
    if off + nbytes > h.file_size - 4:
        raise err(E_TRUNC, f"tensor {k} ({name}): data [{off}, {off + nbytes}) runs past the data "
                           f"end {h.file_size - 4}")  # fmt: skip
    arr = np.frombuffer(view, dtype=DTYPES[dtype][1], count=math.prod(dims), offset=off)
    return TensorRecord(k, name, dtype, tuple(dims), off, nbytes, scale, zp, arr.reshape(dims))


def _read_value(view: memoryview, h: Header, i: int, names: list[str]) -> ValueRecord:
    f = VALUE_STRUCT.unpack_from(view, h.value_off + i * VALUE_SIZE)
    ndim = f[2] if 1 <= f[2] <= 4 else 4
    return ValueRecord(index=i, kind=f[0], dtype=f[1], flags=f[3], shape=tuple(f[4 : 4 + ndim]),
                       offset=f[8], update=f[9], init=f[10], scale=f[11],
                       name=names[i] if i < len(names) else f"v{i}")  # fmt: skip


def _read_node(view: memoryview, h: Header, i: int, values: list[ValueRecord]) -> NodeRecord:
    f = NODE_STRUCT.unpack_from(view, h.node_off + i * NODE_SIZE)
    ins, outs = tuple(f[41:45]), tuple(f[45:49])
    size = lambda k: values[k].features if k < len(values) else 0  # noqa: E731
    return NodeRecord(
        index=i, op=f[0], fmt=f[1], flags=f[2], hidden=f[3], clip=f[4], param=tuple(f[5:13]),
        act=(tuple(f[13:16]), tuple(f[16:19])), pad=(f[19], f[20]),
        alpha=(tuple(f[21:24]), tuple(f[24:27])), beta=(tuple(f[27:30]), tuple(f[30:33])),
        tensor=tuple(f[33:41]), inputs=ins, outputs=outs, reserved=(f[49], f[50]),
        in_features=size(ins[0]), out_features=size(outs[0]),
    )  # type: ignore[arg-type]  # fmt: skip


def read_blob(
    data: bytes | bytearray | memoryview, verify_crc: bool = True, source: str | None = None
) -> Blob:
    """Judge a blob and return it; tensor arrays are views into `data`.

    The C loader (through the compiled extension) checks everything it reads, in its order
    (docs/format.md), and its first fault raises BlobError with `.code` the RNE_E* status and a
    message naming the layer, tensor, role and field; then the metadata schema and its agreement
    with the layers (rnnedge/blob/meta.py). Messages are prefixed with `source` (e.g. the file
    name) when given. With verify_crc=False a checksum mismatch is reported in `crc_ok` instead
    (for `rnnedge info` on a damaged file). Without the extension nothing is judged: the blob is
    parsed as far as reading its records needs (see check.available()).
    """
    try:
        return _read_blob(memoryview(data).cast("B"), verify_crc)
    except BlobError as e:
        if source is None:
            raise
        raise BlobError(f"{source}: {e}", code=e.code) from None


def _read_blob(view: memoryview, verify_crc: bool) -> Blob:
    judged = _check.available()
    if judged:
        _check.judge(view, verify_crc)
    h = _read_header(view)
    view = view[: h.file_size]
    (crc,) = struct.unpack_from("<I", view, h.file_size - 4)
    # the C loader proved the checksum when it judged with verify_crc; else compute it here
    computed = crc if judged and verify_crc else binascii.crc32(view[: h.file_size - 4])
    if verify_crc and computed != crc:
        raise err(E_CRC, f"checksum mismatch: stored 0x{crc:08x}, computed 0x{computed:08x}: "
                         "the blob is corrupt")  # fmt: skip
    meta = _meta.parse(bytes(view[h.meta_off : h.meta_off + h.meta_size]))
    tensors = [_read_tensor(view, h, k) for k in range(h.n_tensors)]
    names = meta.get("values")
    names = [str(n) for n in names] if isinstance(names, list) else []
    values = [_read_value(view, h, i, names) for i in range(h.n_values)]
    nodes = [_read_node(view, h, i, values) for i in range(h.n_nodes)]
    blob = Blob(h, meta, nodes, tensors, crc, computed == crc, view, values)
    if judged:
        _meta.check(meta, blob)
        if nodes[0].fmt != FMT_F32:
            check_int_meta(meta, blob)
    return blob


def _judged() -> None:
    """The IR is rebuilt only from a blob the C loader has judged."""
    if not _check.available():
        raise BlobError(_check.NO_JUDGE)


# -- blob -> Network ---------------------------------------------------------------------------
def _spec(meta: dict[str, Any], key: str, features: int) -> TensorSpec:
    s = meta.get(key)
    if not isinstance(s, dict):
        return TensorSpec(key, "TBF", [None, None, features])
    return TensorSpec(str(s.get("name", key)), str(s.get("axes", "TBF")), list(s.get("shape", [])))


def _copy(a: np.ndarray | None, shape: tuple[int, ...] | None = None) -> np.ndarray | None:
    if a is None:
        return None
    return np.array(a if shape is None else a.reshape(shape), dtype=np.float32)


def _network(blob: Blob, layers: list[FloatLayer]) -> Network:
    """The Network of `layers` with what the blob's (checked) metadata records."""
    meta = blob.meta
    return Network(
        layers=layers,
        input=_spec(meta, "input", blob.in_features),
        output=_spec(meta, "output", blob.out_features),
        name=str(meta.get("name", "model")),
        producer=str(meta.get("producer", "")),
        quant=str(meta.get("quant", "f32")),
        state=[StateSpec(str(x["name"]), int(x["layer"]), str(x["kind"]), x.get("output"))
               for x in meta.get("state", [])],  # fmt: skip
        folded=[str(f) for f in meta.get("folded", [])],
    )


def _pipeline(blob: Blob) -> None:
    """A Network is a straight pipeline: a graph blob of another shape is refused."""
    if not blob.pipeline:
        raise BlobError("this blob holds a dataflow graph, not a straight pipeline of layers: "
                        "it has no Network form (run it with rnnedge.load)", code=E_LAYER)


def to_network(blob: Blob) -> Network:
    """Rebuild the layer list a blob holds (inverse of write_blob), weights back in ONNX layout.
    An integer blob gives its dequantized float network (see to_qnetwork for the integers).
    The blob must be a straight pipeline (Blob.pipeline)."""
    _judged()
    _pipeline(blob)
    if blob.layers[0].fmt != FMT_F32:
        return to_qnetwork(blob).source
    layers: list[FloatLayer] = []
    for rec in blob.layers:
        t = functools.partial(blob.tensor, rec.index)
        if rec.op == OP_DENSE:
            layers.append(Dense(_copy(t(T_W).T), _copy(t(T_B))))  # type: ignore[arg-type]
        elif rec.op == OP_ACT:
            layers.append(Activation(rec.acts[0][0], rec.in_features))
        elif rec.op == OP_LAYERNORM:
            gamma, beta = _copy(t(T_W)), _copy(t(T_B))
            layers.append(LayerNorm(gamma, beta, rec.alpha[0][0]))  # type: ignore[arg-type]
        elif rec.op == OP_TAKE_LAST:
            layers.append(TakeLast(rec.in_features, rec.param[0]))
        elif rec.op == OP_SLICE:
            layers.append(Slice(rec.in_features, rec.param[1], rec.param[2]))
        else:
            cell = OP_CELLS[rec.op]
            D = rec.num_directions
            direction = ("bidirectional" if rec.flags & LF_BIDIR
                         else "reverse" if rec.flags & LF_REVERSE else "forward")  # fmt: skip
            layers.append(
                Recurrent(
                    cell=cell,
                    direction=direction,
                    W=_copy(t(T_W).transpose(0, 2, 1)),  # type: ignore[union-attr,arg-type]
                    R=_copy(t(T_R).transpose(0, 2, 1)),  # type: ignore[union-attr,arg-type]
                    B=_copy(t(T_B), (D, -1)),
                    P=_copy(t(T_P), (D, -1)),
                    initial_h=_copy(t(T_H0)),
                    initial_c=_copy(t(T_C0)),
                    activations=rec.acts,
                    clip=rec.clip if rec.flags & LF_CLIP else None,
                    input_forget=bool(rec.flags & LF_INPUT_FORGET),
                    linear_before_reset=bool(rec.flags & LF_LINEAR_BEFORE_RESET),
                    inner=rec.param[0] if rec.flags & LF_INNER else 0,
                )
            )
    return _network(blob, layers)


# -- blob -> QNetwork ------------------------------------------------------------------------------
def _mult(m: np.ndarray | int, shift: int) -> Mult:
    return Mult(np.array(m, np.int64), int(shift))


def _acc_bound(*mats: np.ndarray) -> int:
    """max over rows of 32768 * sum |w| (W_t layouts: rows are the last axis)."""
    return max(int(np.abs(w.astype(np.int64)).sum(axis=-2).max(initial=0)) * 32768 for w in mats)


def _rebuild(rec: NodeRecord, t: Any, s_in: float, s_out: float) -> tuple[IntLayer, FloatLayer]:
    """One integer layer and its dequantized float counterpart. t(role): the tensor or None."""
    wfmt = FMT_NAMES[rec.fmt]
    if rec.op == OP_TAKE_LAST:
        split = rec.param[0]
        return QTakeLast(rec.in_features, split, s_in), TakeLast(rec.in_features, split)
    if rec.op == OP_SLICE:
        p0, p1 = rec.param[1], rec.param[2]
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
        mult = _mult(q[Q_SLOTS:], q[0])
        eps_q = int(q[1]) << 31 | int(q[2])
        eps = float(rec.alpha[0][0])
        ql = QLayerNorm(F, mult, None if bias is None else np.array(bias, np.int32), eps_q, eps,
                        s_in, s_out)  # fmt: skip
        gamma = (mult.real() * 2.0**fx.LN_FRAC * s_out).astype(np.float32)
        beta = None if bias is None else (bias * np.float64(s_out)).astype(np.float32)
        return ql, LayerNorm(gamma, beta, eps)
    if rec.op == OP_DENSE:
        Wt, bias = t(T_W), t(T_B)
        mult = _mult(q[Q_SLOTS:], q[0])
        qd = QDense(np.array(Wt.T), None if bias is None else np.array(bias, np.int32), mult, wfmt,
                    s_in, s_out, _acc_bound(Wt))  # fmt: skip
        sigma = mult.real() * s_out  # Mw = sigma / s_out
        w = (Wt.T.astype(np.float64) * sigma[:, None] / s_in).astype(np.float32)
        b = None if bias is None else (bias * np.float64(s_out)).astype(np.float32)
        return qd, Dense(w, b)
    return _rebuild_cell(rec, t, q, s_in, s_out)


def _rebuild_cell(rec: NodeRecord, t: Any, q: np.ndarray, s_x: float,
                  s_h: float) -> tuple[IntLayer, FloatLayer]:  # fmt: skip
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
    mult_w = _mult(q[:, Q_SLOTS : Q_SLOTS + G * H], q[0, 0])
    mult_r = _mult(q[:, Q_SLOTS + G * H :], q[0, 1])
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
        c_in=_mult(q[0, 17], q[0, 18]) if q[0, 18] else None,
        c_out=_mult(q[0, 19], q[0, 20]) if q[0, 20] else None,
        inner=rec.param[0] if rec.flags & LF_INNER else 0,
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
    _judged()
    if blob.layers[0].fmt == FMT_F32:
        raise BlobError("to_qnetwork: this is an f32 blob; use to_network", code=E_LAYER)
    _pipeline(blob)
    meta = blob.meta
    s_in, s_out = qio(meta)
    s = s_in
    qlayers: list[IntLayer] = []
    flayers: list[FloatLayer] = []
    for rec in blob.layers:
        s_next = scale_of(rec, blob.tensors, s)
        ql, fl = _rebuild(rec, lambda role, i=rec.index: blob.tensor(i, role), s, s_next)
        qlayers.append(ql)
        flayers.append(fl)
        s = s_next
    source = _network(blob, flayers)
    return QNetwork(qlayers, s_in, s_out, str(meta["quant"]), source)
