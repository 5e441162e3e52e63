"""Writing a .rne blob (format version 1, docs/format.md): float and integer networks.

`write_blob(net)` turns a float `Network` (ONNX layout, rnnedge/ir/layers.py) into an f32 blob, or a
`QNetwork` into an integer one (docs/quantization.md §10: the integer tensors and the q tensor of
each layer, `blob_tensors`); `save_blob(net, path)` writes it atomically. The IR is validated
first (rnnedge/ir/check.py: check_network, check_qnetwork); what only the format limits (layer count,
alignment, 4 GiB) is checked here, and an integer blob is proved with the reader, the checks the
C loader makes. Every code comes from rnnedge/blob/spec.py.
"""

from __future__ import annotations

import binascii
import json
import os
import struct
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from .. import fixedpoint as fx
from ..errors import BlobError, ConvertError
from ..files import write_atomic
from ..ir.check import check_network, check_qnetwork, check_state
from ..ir.layers import (
    Act, Activation, Dense, FloatLayer, IntLayer, LayerNorm, Network, QActivation, QDense,
    QLayerNorm, QNetwork, QRecurrent, QSlice, QTakeLast, Recurrent, Slice, TakeLast, TensorSpec,
    ACT_USES_ALPHA, ACT_USES_BETA,
)  # fmt: skip
from .read import read_blob
from .spec import (
    ACT_CODES, CELL_OPS, DT_CODES, DT_F32, DTYPES, FMT_CODES, FMT_F32, FORMAT_VERSION, HEADER_SIZE,
    HEADER_STRUCT, LAYER_SIZE, LAYER_STRUCT, LAYERNORM_ROLE_NAMES, LF_BIDIR, LF_CLIP,
    LF_INPUT_FORGET, LF_LINEAR_BEFORE_RESET, LF_REVERSE, MAGIC, MAX_ALIGN, MAX_FEATURES, MAX_LAYERS, MIN_ALIGN,
    N_ROLES, NAME_LEN, OP_ACT, OP_DENSE, OP_LAYERNORM, OP_SLICE, OP_TAKE_LAST, Q_SLOTS, ROLE_NAMES,
    T_B, T_C0, T_H0, T_LUT, T_P, T_Q, T_R, T_W, TENSOR_SIZE, TENSOR_STRUCT, align,
)  # fmt: skip

# -- writer --------------------------------------------------------------------------------------
@dataclass
class _TensorOut:
    name: str
    data: np.ndarray  # C-contiguous, in the dtype it is stored as
    dtype: int = DT_F32
    scale: float = 0.0  # integer dtypes only (later formats)
    zero_point: int = 0


@dataclass
class _RecordOut:
    op: int
    in_features: int
    out_features: int
    fmt: int = FMT_F32
    hidden: int = 0
    flags: int = 0
    clip: float = 0.0
    param: tuple[int, int] = (0, 0)
    act: list[list[int]] = field(default_factory=lambda: [[0, 0, 0], [0, 0, 0]])
    alpha: list[list[float]] = field(default_factory=lambda: [[0.0] * 3, [0.0] * 3])
    beta: list[list[float]] = field(default_factory=lambda: [[0.0] * 3, [0.0] * 3])
    tensor: list[int] = field(default_factory=lambda: [-1] * N_ROLES)

    def pack(self) -> bytes:
        return LAYER_STRUCT.pack(
            self.op, self.fmt, self.in_features, self.out_features, self.hidden, self.flags,
            self.clip, *self.param, *self.act[0], *self.act[1], 0, 0,
            *self.alpha[0], *self.alpha[1], *self.beta[0], *self.beta[1], *self.tensor, 0, 0,
        )  # fmt: skip


class _Builder:
    """Collects layer records and tensors in table order, then lays the blob out once."""

    def __init__(self) -> None:
        self.layers: list[_RecordOut] = []
        self.tensors: list[_TensorOut] = []

    def tensor(self, rec: _RecordOut, role: int, a: np.ndarray | None, name: str = "",
               dtype: int = DT_F32, scale: float = 0.0) -> None:  # fmt: skip
        """Store `a` (if present) as the tensor for `role` of the layer being built, named
        "l<layer>.<role name>", converted to `dtype` (f32 unless an integer layer says)."""
        if a is None:
            return
        name = f"l{len(self.layers)}.{name or ROLE_NAMES[role]}"
        assert len(name) <= NAME_LEN and name.isascii()
        rec.tensor[role] = len(self.tensors)
        data = np.ascontiguousarray(a, dtype=DTYPES[dtype][1])
        self.tensors.append(_TensorOut(name, data, dtype, scale))

    def set_act(self, rec: _RecordOut, d: int, k: int, act: Act) -> None:
        rec.act[d][k] = ACT_CODES[act.kind]
        rec.alpha[d][k] = act.alpha if act.kind in ACT_USES_ALPHA else 0.0
        rec.beta[d][k] = act.beta if act.kind in ACT_USES_BETA else 0.0

    def add(self, layer: FloatLayer) -> None:
        rec = _RecordOut(op=0, in_features=layer.in_features, out_features=layer.out_features)
        if isinstance(layer, Dense):
            rec.op = OP_DENSE
            self.tensor(rec, T_W, np.asarray(layer.weight).T)  # [N, K] -> W_t [K, N]
            self.tensor(rec, T_B, layer.bias)
        elif isinstance(layer, Activation):
            rec.op = OP_ACT
            self.set_act(rec, 0, 0, layer.act)
        elif isinstance(layer, LayerNorm):
            rec.op = OP_LAYERNORM
            rec.alpha[0][0] = layer.epsilon
            self.tensor(rec, T_W, layer.gamma, LAYERNORM_ROLE_NAMES[T_W])
            self.tensor(rec, T_B, layer.beta, LAYERNORM_ROLE_NAMES[T_B])
        elif isinstance(layer, TakeLast):
            rec.op, rec.param = OP_TAKE_LAST, (layer.split, 0)
        elif isinstance(layer, Slice):
            rec.op, rec.param = OP_SLICE, (layer.start, layer.stop)
        else:
            self.add_recurrent(rec, layer)
        self.layers.append(rec)

    def cell_record(self, rec: _RecordOut, l: Recurrent) -> None:
        """A recurrent layer's record fields: op, hidden, flags, clip, activations (the same in
        every number format; an integer cell's come from its float source layer)."""
        rec.op, rec.hidden = CELL_OPS[l.cell], l.hidden
        rec.flags = (
            (LF_REVERSE if l.direction == "reverse" else 0)
            | (LF_BIDIR if l.direction == "bidirectional" else 0)
            | (LF_INPUT_FORGET if l.input_forget else 0)
            | (LF_LINEAR_BEFORE_RESET if l.linear_before_reset else 0)
            | (LF_CLIP if l.clip is not None else 0)
        )
        rec.clip = 0.0 if l.clip is None else l.clip
        for d, acts in enumerate(l.activations):
            for k, act in enumerate(acts):
                self.set_act(rec, d, k, act)

    def add_recurrent(self, rec: _RecordOut, l: Recurrent) -> None:
        D, H = l.num_directions, l.hidden
        self.cell_record(rec, l)
        # ONNX W [D, G*H, I] -> W_t [D, I, G*H]; R likewise; B [D, 2*G*H] -> [D, 2, G*H]
        self.tensor(rec, T_W, np.asarray(l.W).transpose(0, 2, 1))
        self.tensor(rec, T_R, np.asarray(l.R).transpose(0, 2, 1))
        self.tensor(rec, T_B, None if l.B is None else np.asarray(l.B).reshape(D, 2, -1))
        self.tensor(rec, T_P, None if l.P is None else np.asarray(l.P).reshape(D, 3, H))
        self.tensor(rec, T_H0, l.initial_h)
        self.tensor(rec, T_C0, l.initial_c)

    def finish(self, meta: bytes, alignment: int) -> bytes:
        layer_off = align(HEADER_SIZE + len(meta), 8)
        tensor_off = layer_off + LAYER_SIZE * len(self.layers)
        end = tensor_off + TENSOR_SIZE * len(self.tensors)
        offsets = []
        for t in self.tensors:
            offsets.append(align(end, alignment))
            end = offsets[-1] + t.data.nbytes
        crc_off = align(end, 4)
        file_size = crc_off + 4
        if file_size >= 2**32:
            raise ConvertError(f"the blob would be {file_size} bytes; the format holds < 4 GiB")
        buf = bytearray(file_size)
        HEADER_STRUCT.pack_into(
            buf, 0, MAGIC, FORMAT_VERSION, HEADER_SIZE, 0, alignment, file_size, HEADER_SIZE, len(meta),
            layer_off, len(self.layers), tensor_off, len(self.tensors), 0, 0, 0, 0,
        )  # fmt: skip
        buf[HEADER_SIZE : HEADER_SIZE + len(meta)] = meta
        for k, rec in enumerate(self.layers):
            buf[layer_off + k * LAYER_SIZE : layer_off + (k + 1) * LAYER_SIZE] = rec.pack()
        for k, (t, off) in enumerate(zip(self.tensors, offsets)):
            shape = list(t.data.shape) + [1] * (4 - t.data.ndim)
            TENSOR_STRUCT.pack_into(
                buf, tensor_off + k * TENSOR_SIZE, t.name.encode("ascii"), t.dtype, t.data.ndim, 0,
                *shape, off, t.data.nbytes, t.scale, t.zero_point, 0,
            )  # fmt: skip
            buf[off : off + t.data.nbytes] = t.data.tobytes()
        struct.pack_into("<I", buf, crc_off, binascii.crc32(memoryview(buf)[:crc_off]))
        return bytes(buf)


def _spec_json(s: TensorSpec) -> dict[str, Any]:
    return {"name": s.name, "axes": s.axes, "shape": list(s.shape)}


def metadata(net: Network) -> dict[str, Any]:
    """The metadata JSON object written for `net` (docs/format.md, Metadata)."""
    meta: dict[str, Any] = {
        "name": net.name,
        "producer": net.producer,
        "quant": net.quant,
        "input": _spec_json(net.input),
        "output": _spec_json(net.output),
    }
    if net.state:
        meta["state"] = [
            {"name": s.name, "layer": s.layer, "kind": s.kind}
            | ({"output": s.output} if s.output is not None else {})
            for s in net.state
        ]
    return meta


def metadata_bytes(meta: dict[str, Any]) -> bytes:
    try:
        return json.dumps(meta, separators=(",", ":"), allow_nan=False).encode("utf-8")
    except (TypeError, ValueError) as e:
        raise ConvertError(f"the model's metadata cannot be stored as JSON: {e}") from None


def default_alignment(net: Network | QNetwork) -> int:
    """The writer's tensor alignment: 64 bytes (a cache line, AVX-512's width) for f32 weights,
    16 for the integer formats, whose int8 tensors are small enough for padding to show."""
    return 64 if isinstance(net, Network) else MIN_ALIGN


def _check_widths(layers: Sequence[FloatLayer | IntLayer]) -> None:
    """Every layer's input and output within the C library's RNE_MAX_FEATURES."""
    for i, layer in enumerate(layers):
        for side, n in (("input", layer.in_features), ("output", layer.out_features)):
            if n > MAX_FEATURES:
                raise ConvertError(
                    f"layer {i} ({type(layer).__name__}): its {side} has {n} features; the "
                    f"format holds at most {MAX_FEATURES} (2^20) per timestep"
                )


def write_blob(net: Network | QNetwork, alignment: int | None = None) -> bytes:
    """The blob (format v1) holding `net`: a float Network in f32, or a QNetwork (rnnedge/quant)
    in its integer format. alignment: of tensor data and of the blob
    itself (default: `default_alignment`). Raises ConvertError, naming the layer, for anything
    the format cannot hold."""
    if alignment is None:
        alignment = default_alignment(net)
    if not (isinstance(alignment, int) and MIN_ALIGN <= alignment <= MAX_ALIGN
            and alignment & (alignment - 1) == 0):  # fmt: skip
        raise ConvertError(
            f"alignment must be a power of two in {MIN_ALIGN}..{MAX_ALIGN}, got {alignment}"
        )
    if not isinstance(net, Network):
        _check_widths(net.layers)
        return _write_int(net, alignment)
    check_network(net)
    _check_widths(net.layers)
    if net.quant != "f32":
        raise ConvertError(
            f"number format {net.quant!r} is not written from a float Network: quantize it "
            "(rnnedge.quant.policy.quantize_network) and write the QNetwork"
        )
    if len(net.layers) > MAX_LAYERS:
        raise ConvertError(
            f"the network has {len(net.layers)} layers; a blob holds at most {MAX_LAYERS}"
        )
    check_state(net)
    meta = metadata_bytes(metadata(net))
    builder = _Builder()
    for layer in net.layers:
        builder.add(layer)
    return builder.finish(meta, alignment)


def save_blob(net: Network | QNetwork, path: str | os.PathLike, alignment: int | None = None) -> None:
    """Write `net` to `path` atomically (`write_atomic`)."""
    write_atomic(path, write_blob(net, alignment))


# -- integer layers (docs/quantization.md §10) -------------------------------------------------
@dataclass
class BlobTensor:
    """One tensor of an integer layer as the blob stores it: role, exact dtype and
    layout, and the record's scale field (the layer's output scale on the qparams tensor)."""

    role: int
    data: np.ndarray
    scale: float = 0.0

    @property
    def suffix(self) -> str:
        """The tensor's name after "l<layer>.": its role's name."""
        return ROLE_NAMES[self.role]


def _slots() -> np.ndarray:
    return np.zeros(Q_SLOTS, np.int64)


def qparams(q: IntLayer) -> np.ndarray | None:
    """The layer's int32 q tensor (role T_Q), exactly as docs/quantization.md lays it out."""
    if isinstance(q, QDense):
        s = _slots()
        s[0], s[2] = q.mult.shift, int(q.acc_bound <= fx.INT32_MAX)
        return np.concatenate([s, q.mult.m]).astype(np.int32)
    if isinstance(q, QLayerNorm):
        s = _slots()
        s[0], s[1], s[2] = q.mult.shift, q.eps_q >> 31, q.eps_q & fx.INT32_MAX
        return np.concatenate([s, q.mult.m]).astype(np.int32)
    if isinstance(q, QActivation):
        s = _slots()
        for j, m in enumerate((q.m1, q.m2, q.m3)):
            if m is not None:
                s[2 * j], s[2 * j + 1] = int(m.m), m.shift
        s[6], s[7] = q.k0, q.k1
        return s.astype(np.int32)
    if isinstance(q, QRecurrent):
        rows = []
        for d in range(q.num_directions):
            s = _slots()
            s[0], s[1] = q.mult_w.shift, q.mult_r.shift
            s[2], s[3] = q.zlim, int(q.acc_bound <= fx.INT32_MAX)
            if q.peep is not None:
                s[4] = q.peep.shift
                s[5:8] = q.peep.m[d]
            for slot, hs in enumerate(q.hs[d]):
                if hs is not None:
                    s[8 + 3 * slot : 11 + 3 * slot] = (int(hs[0].m), hs[0].shift, hs[1])
            rows.append(np.concatenate([s, q.mult_w.m[d], q.mult_r.m[d]]))
        return np.stack(rows).astype(np.int32)
    return None


def blob_tensors(q: IntLayer) -> list[BlobTensor]:
    """Every tensor an integer layer stores, in the blob's layout (W and R transposed like f32)."""
    out: list[BlobTensor] = []
    qp = qparams(q)
    if isinstance(q, QDense):
        out.append(BlobTensor(T_W, np.ascontiguousarray(q.W.T)))
        if q.bias is not None:
            out.append(BlobTensor(T_B, q.bias.astype(np.int32)))
    elif isinstance(q, QLayerNorm):
        if q.bias is not None:
            out.append(BlobTensor(T_B, q.bias.astype(np.int32)))
    elif isinstance(q, QRecurrent):
        out.append(BlobTensor(T_W, np.ascontiguousarray(q.W.transpose(0, 2, 1))))
        out.append(BlobTensor(T_R, np.ascontiguousarray(q.R.transpose(0, 2, 1))))
        out.append(BlobTensor(T_B, q.bias.astype(np.int32)))
        if q.P is not None:
            out.append(BlobTensor(T_P, q.P))
        if q.h0 is not None:
            out.append(BlobTensor(T_H0, q.h0, q.out_scale))
        if q.c0 is not None:
            out.append(BlobTensor(T_C0, q.c0, fx.C_SCALE))
    elif isinstance(q, QActivation) and q.table is not None:
        out.append(BlobTensor(T_LUT, q.table))
    if qp is not None:
        out.append(BlobTensor(T_Q, qp, q.out_scale))
    return out


def _int_record(q: IntLayer, src: FloatLayer, b: _Builder) -> _RecordOut:
    """The layer record of one integer layer (check_qnetwork has matched it to its float source
    layer, which gives the informative fields)."""
    rec = _RecordOut(op=0, in_features=q.in_features, out_features=q.out_features,
                     fmt=FMT_CODES[q.wfmt])  # fmt: skip
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
        b.cell_record(rec, src)
    return rec


def _write_int(qnet: QNetwork, alignment: int) -> bytes:
    """The integer blob of `qnet` (alignment already checked by write_blob). Raises
    ConvertError naming the layer for anything the format cannot hold; the bytes are proved
    with read_blob, the checks the C loader makes."""
    check_qnetwork(qnet)
    src = qnet.source
    if not qnet.layers or len(qnet.layers) > MAX_LAYERS:
        raise ConvertError(
            f"the network has {len(qnet.layers)} layers; a blob holds 1..{MAX_LAYERS}"
        )
    b = _Builder()
    for i, (q, f) in enumerate(zip(qnet.layers, src.layers)):
        rec = _int_record(q, f, b)
        for t in blob_tensors(q):
            data = np.asarray(t.data)
            code = DT_CODES.get(data.dtype.newbyteorder("<"))
            if code is None or code == DT_F32:
                raise ConvertError(f"layer {i} ({type(q).__name__}): tensor {t.suffix} has dtype "
                                   f"{data.dtype}, not an integer type of the format")  # fmt: skip
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
