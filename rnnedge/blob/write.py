"""Writing a .rne blob (format version 2, docs/format.md, docs/graph.md): float and integer graphs.

`write_blob(g)` turns a `Graph` (rnnedge/ir/graph.py) into a blob: its nodes in run order, its
values (the arena plan of `plan_arena`) and tensors; a float `Network` or an integer `QNetwork`
(a straight pipeline, rnnedge/ir/layers.py) goes through `from_network`. An integer node's
tensors and q tensor are `blob_tensors` (docs/quantization.md §10). `save_blob(g, path)` writes
it atomically. The IR is validated first (rnnedge/ir/check.py: check_network, check_qnetwork;
rnnedge/ir/graph.py: check_graph); what only the format limits (node and value counts,
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
from ..errors import BlobError, ConvertError, UnsupportedOpError
from ..files import write_atomic
from ..ir.check import check_network, check_qnetwork, check_state
from ..ir.graph import (
    BINARY_KINDS, REDUCE_KINDS, Binary, Concat, Conv, Copy, Gather, Graph, QBinary, QConcat, QConv,
    QGather, QReduce, Reduce, Transpose, check_graph, from_network, plan_arena,
)  # fmt: skip
from ..ir.layers import (
    Act, Activation, Dense, FloatLayer, IntLayer, LayerNorm, Network, QActivation, QDense,
    QLayerNorm, QNetwork, QRecurrent, QSlice, QTakeLast, Recurrent, Slice, TakeLast, TensorSpec,
    ACT_USES_ALPHA, ACT_USES_BETA,
)  # fmt: skip
from . import spec
from .read import read_blob
from .spec import (
    ACT_CODES, CELL_OPS, DT_CODES, DT_F32, DT_S16, DT_S32, DTYPES, FMT_CODES, FMT_F32,
    FORMAT_VERSION, HEADER_SIZE, HEADER_STRUCT, LAYERNORM_ROLE_NAMES, LF_BIDIR, LF_CLIP, LF_INNER,
    LF_INPUT_FORGET, LF_LINEAR_BEFORE_RESET, LF_REVERSE, MAGIC, MAX_ALIGN, MAX_FEATURES,
    FORMAT_MAX_NODES, MAX_VALUES, MIN_ALIGN, N_ROLES, NAME_LEN, NODE_SIZE, NODE_STRUCT, NONE, OP_ACT,
    OP_BINARY, OP_CONCAT, OP_COPY, OP_DENSE, OP_GATHER, OP_LAYERNORM, OP_REDUCE, OP_SLICE,
    OP_TAKE_LAST, OP_TRANSPOSE, Q_SLOTS, ROLE_NAMES, T_B, T_C0, T_H0, T_LUT, T_P, T_Q, T_R, T_W,
    TENSOR_SIZE, TENSOR_STRUCT, V_INPUT, V_OUTPUT, V_STATE, V_TEMP, VALUE_SIZE, VALUE_STRUCT,
    VF_LAST, align,
)  # fmt: skip

_KIND_CODES = {"temp": V_TEMP, "input": V_INPUT, "output": V_OUTPUT, "state": V_STATE}
_GRAPH_OPS = (Binary, Concat, Transpose, Copy, Gather, Reduce, Conv)
_VALUE_DTYPES = {"f32": DT_F32, "s16": DT_S16, "s32": DT_S32}

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
    fmt: int = FMT_F32
    hidden: int = 0
    flags: int = 0
    clip: float = 0.0
    param: list[int] = field(default_factory=lambda: [0] * 8)
    act: list[list[int]] = field(default_factory=lambda: [[0, 0, 0], [0, 0, 0]])
    alpha: list[list[float]] = field(default_factory=lambda: [[0.0] * 3, [0.0] * 3])
    beta: list[list[float]] = field(default_factory=lambda: [[0.0] * 3, [0.0] * 3])
    tensor: list[int] = field(default_factory=lambda: [-1] * N_ROLES)
    inputs: list[int] = field(default_factory=lambda: [NONE] * 4)
    outputs: list[int] = field(default_factory=lambda: [NONE] * 4)
    skip: int = 0  # reserved[0]: the steps of a stream the node skips (its input's delay)

    def pack(self) -> bytes:
        return NODE_STRUCT.pack(
            self.op, self.fmt, self.flags, self.hidden, self.clip, *self.param,
            *self.act[0], *self.act[1], 0, 0, *self.alpha[0], *self.alpha[1], *self.beta[0],
            *self.beta[1], *self.tensor, *self.inputs, *self.outputs, self.skip, 0,
        )  # fmt: skip


class _Builder:
    """Collects node records, tensors and value records in table order, then lays the blob out
    once."""

    def __init__(self) -> None:
        self.layers: list[_RecordOut] = []  # the node records
        self.tensors: list[_TensorOut] = []
        self.values: list[bytes] = []
        self.arena_row = 0

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

    def add(self, layer: FloatLayer, axis: int = 0) -> _RecordOut:
        """The record of a float layer (or graph op); axis: a Slice's, as an index."""
        rec = _RecordOut(op=0)
        if isinstance(layer, (Binary, Concat, Transpose, Copy, Gather, Reduce, Conv)):
            self.add_graph_op(rec, layer)
        elif isinstance(layer, Dense):
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
            rec.op, rec.param[0] = OP_TAKE_LAST, layer.split
        elif isinstance(layer, Slice):
            rec.op, rec.param[:4] = OP_SLICE, [axis, layer.start, layer.stop, layer.step]
        else:
            self.add_recurrent(rec, layer)
        self.layers.append(rec)
        return rec

    def add_graph_op(self, rec: _RecordOut, op: object, tensors: bool = True) -> None:
        """A graph op's record fields (docs/graph.md section 2), from its float form; tensors:
        store its float tensors (an integer node's come from blob_tensors)."""
        if isinstance(op, Binary):
            rec.op, rec.param[0] = OP_BINARY, BINARY_KINDS.index(op.kind)
            if op.const is not None:  # one input; the other operand a constant (role 0)
                rec.param[1] = int(op.const_left)
                if tensors:
                    self.tensor(rec, T_W, op.const, "const")
        elif isinstance(op, Concat):
            rec.op, rec.param[0] = OP_CONCAT, op.axis
        elif isinstance(op, Transpose):
            rec.op = OP_TRANSPOSE
            rec.param[: len(op.perm)] = list(op.perm)
        elif isinstance(op, Copy):
            rec.op = OP_COPY
        elif isinstance(op, Gather):
            rec.op, rec.param[0] = OP_GATHER, int(np.shape(op.table)[0])  # param[0] = V
            if tensors:
                self.tensor(rec, T_W, op.table, "table")
        elif isinstance(op, Reduce):
            rec.op, rec.param[0] = OP_REDUCE, REDUCE_KINDS.index(op.kind)
            rec.param[1] = sum(1 << a for a in op.axes)
        elif isinstance(op, Conv):
            conv_record(rec, op)
            if tensors:  # CONV: W_t [(C_in/g) kt kw, C_out] as DENSE's; CONV_T: ONNX's layout
                w = np.asarray(op.weight)
                self.tensor(rec, T_W, w if op.transpose else w.reshape(w.shape[0], -1).T, "W")
                self.tensor(rec, T_B, op.bias, "B")

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
            | (LF_INNER if l.inner else 0)
        )
        rec.param[0] = l.inner  # the per-step axis's length (0: over time)
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
        tensor_off = layer_off + NODE_SIZE * len(self.layers)
        value_off = tensor_off + TENSOR_SIZE * len(self.tensors)
        end = value_off + VALUE_SIZE * len(self.values)
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
            buf, 0, MAGIC, FORMAT_VERSION, HEADER_SIZE, 0, alignment, file_size, HEADER_SIZE,
            len(meta), layer_off, len(self.layers), tensor_off, len(self.tensors), value_off,
            len(self.values), self.arena_row, 0,
        )  # fmt: skip
        buf[HEADER_SIZE : HEADER_SIZE + len(meta)] = meta
        for k, rec in enumerate(self.layers):
            buf[layer_off + k * NODE_SIZE : layer_off + (k + 1) * NODE_SIZE] = rec.pack()
        for k, v in enumerate(self.values):
            buf[value_off + k * VALUE_SIZE : value_off + (k + 1) * VALUE_SIZE] = v
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


def metadata(g: Graph) -> dict[str, Any]:
    """The metadata JSON object written for graph `g` (docs/format.md, Metadata)."""
    meta: dict[str, Any] = {
        "name": g.name,
        "producer": g.producer,
        "quant": g.quant,
        "input": _spec_json(g.input_spec),
        "output": _spec_json(g.output_spec),
        "values": [v.name for v in g.values],
    }
    if g.latency:  # docs/graph.md section 6: the stream's output lags ONNX's by this many steps
        meta["latency_steps"] = g.latency
    specs = {v.name: g.value_specs[v.name] for v in g.values
             if v.kind == "state" and v.name in g.value_specs}  # fmt: skip
    if specs:  # the ONNX layout of each STATE value's graph input (Stream.state shows it so)
        meta["value_specs"] = {n: {"axes": s.axes, "shape": list(s.shape)} for n, s in specs.items()}
    if g.state:
        meta["state"] = [
            {"name": s.name, "layer": s.layer, "kind": s.kind}
            | ({"output": s.output} if s.output is not None else {})
            for s in g.state
        ]
    return meta


def metadata_bytes(meta: dict[str, Any]) -> bytes:
    try:
        return json.dumps(meta, separators=(",", ":"), allow_nan=False).encode("utf-8")
    except (TypeError, ValueError) as e:
        raise ConvertError(f"the model's metadata cannot be stored as JSON: {e}") from None


def default_alignment(net: Network | QNetwork | Graph) -> int:
    """The writer's tensor alignment: 64 bytes (a cache line, AVX-512's width) for f32 weights,
    16 for the integer formats, whose int8 tensors are small enough for padding to show."""
    if isinstance(net, Graph):
        return 64 if net.quant == "f32" else MIN_ALIGN
    return 64 if isinstance(net, Network) else MIN_ALIGN


def _check_widths(g: Graph) -> None:
    """Every value within the C library's RNE_MAX_FEATURES elements per step."""
    for i, v in enumerate(g.values):
        if v.features > MAX_FEATURES:
            raise ConvertError(
                f"value {i} ({v.name!r}): it has {v.features} features per timestep; the format "
                f"holds at most {MAX_FEATURES} (2^20)"
            )


def _check_counts(g: Graph) -> None:
    if not 1 <= len(g.nodes) <= FORMAT_MAX_NODES:
        raise ConvertError(f"the graph has {len(g.nodes)} nodes; a blob holds 1..{FORMAT_MAX_NODES}")
    if len(g.values) > MAX_VALUES:
        raise ConvertError(f"the graph has {len(g.values)} values; a blob holds at most "
                           f"{MAX_VALUES}")  # fmt: skip


def write_blob(net: Network | QNetwork | Graph, alignment: int | None = None) -> bytes:
    """The blob (format v2) holding `net`: a Graph, or a float Network / integer QNetwork (a
    straight pipeline, through `from_network`). alignment: of tensor data and of the blob itself
    (default: `default_alignment`). Raises ConvertError, naming the node or value, for anything
    the format cannot hold."""
    if alignment is None:
        alignment = default_alignment(net)
    if not (isinstance(alignment, int) and MIN_ALIGN <= alignment <= MAX_ALIGN
            and alignment & (alignment - 1) == 0):  # fmt: skip
        raise ConvertError(
            f"alignment must be a power of two in {MIN_ALIGN}..{MAX_ALIGN}, got {alignment}"
        )
    if isinstance(net, QNetwork):
        check_qnetwork(net)
        if not net.layers:
            raise ConvertError(f"the network has no layers; a blob holds 1..{FORMAT_MAX_NODES} nodes")
        net = from_network(net)
    elif isinstance(net, Network):
        check_network(net)
        if net.quant != "f32":
            raise ConvertError(
                f"number format {net.quant!r} is not written from a float Network: quantize it "
                "(rnnedge.quant.policy.quantize_network) and write the QNetwork"
            )
        check_state(net)
        net = from_network(net)
    g = net
    _check_widths(g)
    _check_counts(g)
    check_graph(g)
    if g.quant == "f32":
        return _write_graph(g, alignment, None)
    return _write_int(g, alignment)


def _values(g: Graph, b: _Builder) -> None:
    """The value records (and the init tensors of STATE values) of a planned graph."""
    b.arena_row = plan_arena(g)
    for i, v in enumerate(g.values):
        init = -1
        if v.init is not None:
            init = len(b.tensors)
            data = np.ascontiguousarray(v.init, dtype=DTYPES[_VALUE_DTYPES[v.dtype]][1]).ravel()
            b.tensors.append(_TensorOut(f"v{i}.init", data, _VALUE_DTYPES[v.dtype],
                                        v.scale if v.dtype == "s16" else 0.0))  # fmt: skip
        shape = list(v.shape) + [1] * (4 - len(v.shape))
        b.values.append(VALUE_STRUCT.pack(
            _KIND_CODES[v.kind], _VALUE_DTYPES[v.dtype], len(v.shape), VF_LAST if v.last else 0,
            *shape, v.offset, -1 if v.update is None else v.update, init,
            v.scale if v.dtype == "s16" else 0.0, 0, 0, 0,
        ))  # fmt: skip


def conv_record(rec: _RecordOut, op: Conv) -> None:
    """A CONV / CONV_T node's op and params (docs/graph.md section 6): kt, dt, groups, kw, sw,
    pad before / after along W, dw. The op codes come with the C kernels (csrc/rnnedge.h,
    spec.OP_CONV / OP_CONV_T); a build without them refuses the node by name."""
    code = getattr(spec, "OP_CONV_T" if op.transpose else "OP_CONV", None)
    if code is None:
        raise UnsupportedOpError(
            f"{'CONV_T' if op.transpose else 'CONV'} node: this rnnedge's blob format has no conv "
            "op yet (docs/graph.md section 6); run the float graph with rnnedge.reference.run_graph"
        )
    rec.op = code
    rec.param[:8] = [op.kt, op.dt, op.groups, op.kw, op.sw, op.pad_w[0], op.pad_w[1], op.dw]


def _slice_axis(g: Graph, node: Any) -> int:
    layer = node.op
    ndim = len(g.values[node.inputs[0]].shape)
    return getattr(layer, "axis", -1) % ndim


def _io(rec: _RecordOut, node: Any) -> None:
    rec.inputs = [NONE if v is None else v for v in node.inputs] + [NONE] * (4 - len(node.inputs))
    rec.outputs = [NONE if v is None else v for v in node.outputs] + [NONE] * (
        4 - len(node.outputs))


def _write_graph(g: Graph, alignment: int, meta: dict[str, Any] | None) -> bytes:
    """The f32 blob of graph `g` (checked by write_blob)."""
    b = _Builder()
    for i, node in enumerate(g.nodes):
        try:
            rec = b.add(node.op, _slice_axis(g, node))
        except UnsupportedOpError as e:
            raise UnsupportedOpError(f"node {i} ({node.name}): {e}") from None
        _io(rec, node)
        rec.skip = _skip(g, node)
    _values(g, b)
    return b.finish(metadata_bytes(meta or metadata(g)), alignment)


def _skip(g: Graph, node: Any) -> int:
    """The steps a node skips at the start of a stream: its data input's delay (section 6)."""
    return max((g.values[v].delay for v in node.inputs if v is not None), default=0)


def save_blob(net: Network | QNetwork | Graph, path: str | os.PathLike,
              alignment: int | None = None) -> None:  # fmt: skip
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
    if isinstance(q, (QDense, QConv)):  # CONV_T: the kernel reads no acc32 (int64 always)
        s = _slots()
        s[0] = q.mult.shift
        s[2] = int(q.acc_bound <= fx.INT32_MAX and not (isinstance(q, QConv) and q.conv.transpose))
        return np.concatenate([s, np.asarray(q.mult.m).reshape(-1)]).astype(np.int32)
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
    if isinstance(q, QBinary):  # docs/quantization.md §11: m_a, m_b, shift (LOGHYPOT: m1, e, k0)
        s = _slots()
        s[0], s[1], s[2], s[3], s[4], s[5], s[6] = (q.ma, q.mb, q.shift, q.m1, q.e >> 31,
                                                    q.e & fx.INT32_MAX, q.k0)  # fmt: skip
        return s.astype(np.int32)
    if isinstance(q, QConcat):  # input k: slot 2k m_k, 2k + 1 shift_k
        s = _slots()
        for k, m in enumerate(q.mults):
            s[2 * k], s[2 * k + 1] = int(np.asarray(m.m).reshape(-1)[0]), m.shift
        return s.astype(np.int32)
    if isinstance(q, QReduce):
        s = _slots()
        s[0], s[1] = int(np.asarray(q.mult.m).reshape(-1)[0]), q.mult.shift
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
            for at, cm in ((17, q.c_in), (19, q.c_out)):  # the cell state as a value
                if cm is not None:
                    s[at], s[at + 1] = int(np.asarray(cm.m).reshape(-1)[0]), cm.shift
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
    elif isinstance(q, QConv):  # CONV W_t [(C_in/g) kt kw, C_out]; CONV_T ONNX's (section 6)
        w = np.asarray(q.W)
        out.append(BlobTensor(T_W, w if q.conv.transpose else np.ascontiguousarray(
            w.reshape(w.shape[0], -1).T)))  # fmt: skip
        if q.bias is not None:
            out.append(BlobTensor(T_B, np.asarray(q.bias).astype(np.int32)))
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
    elif isinstance(q, QBinary) and q.const is not None:  # at its own scale
        out.append(BlobTensor(T_W, np.asarray(q.const, np.int16),
                              q.in_scales[0 if q.const_left else 1]))  # fmt: skip
    elif isinstance(q, QGather):  # the table at the output scale
        out.append(BlobTensor(T_W, np.asarray(q.table, np.int16), q.out_scale))
    if qp is not None:
        out.append(BlobTensor(T_Q, qp, q.out_scale))
    return out


def _int_record(q: IntLayer, src: FloatLayer, b: _Builder, axis: int = 0) -> _RecordOut:
    """The node record of one integer layer (check_qnetwork has matched it to its float source
    layer, which gives the informative fields)."""
    rec = _RecordOut(op=0, fmt=FMT_CODES[getattr(q, "wfmt", "s16")])
    if isinstance(src, _GRAPH_OPS):  # its fields from the float op; tensors: blob_tensors(q)
        rec.param[:4] = [0, 0, 0, 0]
        b.add_graph_op(rec, src, tensors=False)
        return rec
    if isinstance(q, QDense):
        rec.op = OP_DENSE
    elif isinstance(q, QActivation):
        rec.op = OP_ACT
        b.set_act(rec, 0, 0, Act(q.kind, q.alpha, q.beta))
    elif isinstance(q, QLayerNorm):
        rec.op = OP_LAYERNORM
        rec.alpha[0][0] = q.epsilon  # informative: the kernel reads eps_q from the q tensor
    elif isinstance(q, QTakeLast):
        rec.op, rec.param[0] = OP_TAKE_LAST, q.split
    elif isinstance(q, QSlice):
        rec.op, rec.param[:4] = OP_SLICE, [axis, q.start, q.stop, q.step]
    elif isinstance(q, QRecurrent) and isinstance(src, Recurrent):
        b.cell_record(rec, src)
    else:
        raise ConvertError(f"{type(q).__name__} (from {type(src).__name__}) has no integer record "
                           "the format holds")  # fmt: skip
    return rec


def _write_int(g: Graph, alignment: int) -> bytes:
    """The integer blob of graph `g` (its nodes' ops integer layers; g.source the float graph
    they came from, node for node). Raises ConvertError naming the node for anything the format
    cannot hold; the bytes are proved with read_blob, the checks the C loader makes."""
    src = g.source
    if src is None or len(src.nodes) != len(g.nodes):
        raise ConvertError("an integer graph needs its float source graph, node for node")
    b = _Builder()
    for i, (node, f) in enumerate(zip(g.nodes, src.nodes)):
        rec = _int_record(node.op, f.op, b, _slice_axis(g, node))
        for t in blob_tensors(node.op):
            data = np.asarray(t.data)
            code = DT_CODES.get(data.dtype.newbyteorder("<"))
            if code is None or code == DT_F32:
                raise ConvertError(f"node {i} ({type(node.op).__name__}): tensor {t.suffix} has "
                                   f"dtype {data.dtype}, not an integer type of the format")  # fmt: skip
            b.tensor(rec, t.role, data, t.suffix, dtype=code, scale=t.scale)
        _io(rec, node)
        rec.skip = _skip(g, node)
        b.layers.append(rec)
    _values(g, b)
    meta = metadata(g) | {
        "quant": g.quant,
        # an input of ids (s32) is not quantized: its qio scale is 1, unused
        "qio": {"input_scale": float(g.in_scale) if g.values[g.input].dtype == "s16" else 1.0,
                "output_scale": float(g.out_scale)},
    }
    data = b.finish(metadata_bytes(meta), alignment)
    try:
        read_blob(data)
    except BlobError as e:
        raise ConvertError(f"the quantized network cannot be stored: {e}") from None
    return data
