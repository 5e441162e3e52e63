"""The one judge of a blob: the C loader, through the compiled extension (docs/format.md).

`judge(view, verify_crc)` runs `rne_model_load_where` (csrc/blob.c, csrc/blob_q.c) on an aligned
copy of the blob and turns a refusal into a BlobError (`.code` the C status) whose message names
where the loader stopped: the section, node, value, tensor and role, field and element, with the
value the blob holds there, e.g. "node 0 (GRU), tensor 1 (l0.R, role R): shape[1] is 15 (shape
[1, 15, 3])", then the C status text. Python does not restate the loader's checks: it only reads the
fields the fault names. `check_int_meta` checks what C never reads: an integer model's metadata
(quant, qio) against its layers. Without the extension `available()` is False: the reader then
parses and displays a blob but cannot validate it.
"""

from __future__ import annotations

import binascii
import math
import struct
from typing import Any

import numpy as np

from .._clib import clib
from ..errors import BlobError, NotBuiltError
from ..ir.layers import WFMT
from .spec import (
    ACT_NAMES, DTYPES, E_ALIGN, E_HEADER, E_TRUNC, FMT_NAMES, FMT_S8, FORMAT_VERSION, HEADER_SIZE,
    HEADER_STRUCT, KIND_NAMES, LAYER_FLAGS, MAX_ALIGN, MAX_FEATURES, NODE_SIZE, NODE_STRUCT, NONE,
    OP_LAYERNORM, OP_NAMES, ROLE_NAMES, T_Q, TENSOR_SIZE, TENSOR_STRUCT, VALUE_SIZE, VALUE_STRUCT,
    Blob, NodeRecord, TensorRecord, flag_text,
)  # fmt: skip


def version_text(version: int) -> str:
    """Why a blob of another format version is not read."""
    if version == 1:
        return ("format version 1 (a layer pipeline): this rnnedge reads version "
                f"{FORMAT_VERSION} (dataflow graphs); reconvert it with rnnedge convert from "
                "its ONNX model")  # fmt: skip
    if version == 0:
        return "header: version is 0 (versions start at 1)"
    return f"format version {version} is newer than this rnnedge reads ({FORMAT_VERSION})"


def err(code: int, msg: str) -> BlobError:
    return BlobError(msg, code=code)


def _lib() -> Any:
    """The compiled C library (rnnedge._clib: ffi, lib), or None when it is not built."""
    try:
        return clib()
    except NotBuiltError:
        return None


def available() -> bool:
    """True if the C loader can judge blobs here (the extension rnnedge._rnnedge is built)."""
    return _lib() is not None


NO_JUDGE = ("not validated: the blob's checks are the C loader's, and the compiled extension "
            "rnnedge._rnnedge is not built (pip install rnnedge, or python setup.py build_ext "
            "--inplace in a source tree)")  # fmt: skip


def judge(view: memoryview, verify_crc: bool = True) -> None:
    """Load `view` (the blob's bytes) with the C loader; raise BlobError naming the first fault.
    With verify_crc=False a checksum mismatch is not a fault: the loader judges a copy whose
    checksum is re-signed. NotBuiltError if the extension is not built (see available())."""
    c = _lib()
    if c is None:
        raise NotBuiltError(NO_JUDGE)
    buf = np.frombuffer(view, np.uint8)
    if not verify_crc or buf.ctypes.data % MAX_ALIGN:  # judged in place when nothing needs changing
        raw = np.zeros(len(view) + MAX_ALIGN, np.uint8)  # the loader wants the blob at its alignment
        start = (-raw.ctypes.data) % MAX_ALIGN
        buf = raw[start : start + len(view)]
        buf[:] = np.frombuffer(view, np.uint8)
    if not verify_crc and len(view) >= HEADER_SIZE:
        file_size = struct.unpack_from("<I", view, 20)[0]
        if HEADER_SIZE + 4 <= file_size <= len(view):
            crc = binascii.crc32(view[: file_size - 4])
            buf[file_size - 4 : file_size] = np.frombuffer(struct.pack("<I", crc), np.uint8)
    where = c.ffi.new("rne_fault *")
    rc = c.lib.rne_model_load_where(c.ffi.from_buffer(buf), len(buf), c.ffi.new("rne_model *"),
                                    where)  # fmt: skip
    if rc != 0:
        text = c.ffi.string(c.lib.rne_strerror(rc)).decode()
        field = c.ffi.string(c.lib.rne_fault_field_name(where.field)).decode()
        section = c.ffi.string(c.lib.rne_fault_section_name(where.section)).decode()
        fault = Fault(section, field, where.layer, where.tensor, where.role, where.index,
                      where.value)
        raise err(rc, f"{fault_text(view, rc, fault, (c.lib.RNE_MAX_NODES, c.lib.RNE_MAX_VALUES))}: {text}")


# -- the fault in words ---------------------------------------------------------------------------
class Fault:
    """rne_fault with its names: section and field as the C library spells them."""

    def __init__(self, section: str, field: str, layer: int, tensor: int, role: int,
                 index: int, value: int = -1) -> None:  # fmt: skip
        self.section, self.field = section, field
        self.layer, self.tensor, self.role, self.index = layer, tensor, role, index
        self.value = value


_SECTIONS = ("header", "metadata", "node table", "tensor table", "value table")
_SECTION_FIELDS = ("meta_off/meta_size", "node_off", "tensor_off", "value_off")


def _span(h: tuple, i: int) -> tuple[int, int]:
    """[start, end) of section i (0 header, 1 metadata, 2 node, 3 tensor, 4 value table)."""
    meta_off, meta_size, node_off, n_nodes, tensor_off, n_tensors, value_off, n_values = h[6:14]
    off, size = ((0, HEADER_SIZE), (meta_off, meta_size), (node_off, NODE_SIZE * n_nodes),
                 (tensor_off, TENSOR_SIZE * n_tensors), (value_off, VALUE_SIZE * n_values))[i]  # fmt: skip
    return off, off + size


def _value_fields(view: memoryview, h: tuple, i: int) -> tuple | None:
    """Value record i's fields, None if i is not in the table."""
    if not 0 <= i < h[13]:
        return None
    return VALUE_STRUCT.unpack_from(view, h[12] + i * VALUE_SIZE)


def _value_features(v: tuple) -> int:
    return int(np.prod(v[4:8], dtype=np.int64))


def _value_head(view: memoryview, h: tuple, i: int) -> str:
    v = _value_fields(view, h, i)
    if v is None:
        return f"value {i} (not in the table of {h[13]})"
    kind = KIND_NAMES.get(v[0], f"kind {v[0]}")
    dtype = DTYPES[v[1]][0] if v[1] in DTYPES else f"dtype {v[1]}"
    ndim = v[2] if 1 <= v[2] <= 4 else 4
    last = ", last" if v[3] & 1 else ""
    return f"value {i} ({kind} {dtype} {list(v[4:4 + ndim])}{last})"


def _value_text(view: memoryview, h: tuple, rc: int, f: "Fault") -> str:
    """A value record's fault (section value) in words."""
    v = _value_fields(view, h, f.value)
    if v is None:
        counts = "exactly one input value and one output value (kind 1 and 2)"
        return f"values: {counts}" if f.field == "kind" else f"value {f.value}: {f.field}"
    head = _value_head(view, h, f.value)
    if f.field == "kind":
        return (f"{head}: kind {v[0]}: a graph has exactly one input and one output value, "
                "kinds 0..3")  # fmt: skip
    if f.field == "dtype":
        return (f"{head}: dtype {v[1]}: values are f32 throughout or s16 throughout (an s32 "
                "input of ids aside)")  # fmt: skip
    if f.field == "flags":
        return f"{head}: flags {v[3]} (last = 1, not on an input or a state)"
    if f.field == "reserved":
        return f"{head}: reserved fields are {list(v[12:15])}"
    if f.field == "ndim":
        return f"{head}: ndim {v[2]} (1..4)"
    if f.field == "shape":
        if f.index >= 0:
            return f"{head}: shape[{f.index}] is {v[4 + f.index]} (shape {list(v[4:8])})"
        return f"{head}: {_value_features(v)} features per step; at most {MAX_FEATURES}"
    if f.field == "scale":
        return f"{head}: scale {v[11]} (s16 values: finite and > 0; others 0)"
    if f.field == "offset" and f.index >= 0:
        return f"{head}: state block at {v[8]} overlaps value {f.index}'s"
    if f.field == "offset":
        what = "a multiple of 16" if rc == E_ALIGN else "0 for an input or output"
        return f"{head}: offset {v[8]} ({what})"
    if f.field == "arena_row":
        return f"{head}: arena bytes [{v[8]}, ...) run past the header's arena_row {h[14]}"
    if f.field == "update":
        return (f"{head}: update {v[9]}: a state's update is -1 or a computed (temp or output) "
                "value of its dtype, size and scale")  # fmt: skip
    if f.field == "init":
        return (f"{head}: init {v[10]}: a state's init is -1 or a tensor of its dtype and "
                "size")  # fmt: skip
    if f.field == "out":
        return f"{head}: no node writes it"
    if f.field == "lifetime":
        return (f"{head}: its arena bytes at offset {v[8]} overlap those of "
                f"{_value_head(view, h, f.index)}, which is live at the same time")  # fmt: skip
    return f"{head}: {f.field}"


def _tensor_fields(view: memoryview, h: tuple, k: int) -> tuple | None:
    """Tensor record k's fields, None if k is not in the table."""
    if not 0 <= k < h[11]:
        return None
    return TENSOR_STRUCT.unpack_from(view, h[10] + k * TENSOR_SIZE)


def _tensor_name(f: tuple) -> str:
    """A tensor record's name, each byte that is not printable ASCII shown as '?'."""
    return "".join(chr(b) if 32 < b < 127 else "?" for b in f[0].rstrip(b"\0"))


def _tensor_value(f: tuple, field: str, index: int) -> str:
    """A tensor record's field as text (f: TENSOR_STRUCT fields)."""
    dtype, ndim, shape, off, nbytes, scale, zp = f[1], f[2], list(f[4:8]), f[8], f[9], f[10], f[11]
    dims = shape[: ndim] if 1 <= ndim <= 4 else shape
    if field == "name":
        return f"name {f[0]!r}"
    if field == "dtype":
        return f"dtype {DTYPES[dtype][0] if dtype in DTYPES else dtype}"
    if field == "ndim":
        return f"ndim {ndim} (shape {dims})"
    if field == "shape":
        return f"shape[{index}] is {shape[index]} (shape {dims})" if index >= 0 else f"shape {dims}"
    if field == "nbytes":
        return f"nbytes {nbytes} for {DTYPES[dtype][0] if dtype in DTYPES else dtype} {dims}"
    if field == "offset":
        return f"data [{off}, {off + nbytes})"
    if field == "scale":
        return f"scale {scale}"
    if field == "zero_point":
        return f"zero_point {zp}"
    return f"reserved fields {f[3]}, {f[12]}" if field == "reserved" else field


def _node(view: memoryview, h: tuple, i: int) -> dict[str, Any]:
    """Node record i's fields by name, with in_features / out_features (the elements per step of
    its values in[0], out[0]; 0 where they are not in the table)."""
    r = NODE_STRUCT.unpack_from(view, h[8] + i * NODE_SIZE)
    ins, outs = r[41:45], r[45:49]
    size = lambda k: _value_features(v) if (v := _value_fields(view, h, k)) else 0  # noqa: E731
    return {"op": r[0], "fmt": r[1], "flags": r[2], "hidden": r[3], "clip": r[4],
            "param": list(r[5:13]), "act": r[13:19], "pad": r[19:21], "alpha": r[21:27],
            "beta": r[27:33], "tensor": r[33:41], "in": ins, "out": outs, "reserved": r[49:51],
            "in_features": size(ins[0]), "out_features": size(outs[0])}  # fmt: skip


def _layer_value(view: memoryview, h: tuple, rec: dict[str, Any], field: str, index: int,
                 value: int) -> str:  # fmt: skip
    """A node record's field as text."""
    act, alpha, beta = rec["act"], rec["alpha"], rec["beta"]
    slot = f"[{index // 3}][{index % 3}]"
    if field == "op":
        return f"op {rec['op']}" + (" (a graph op this build does not run)"
                                     if rec["op"] in OP_NAMES else "")  # fmt: skip
    if field == "fmt":
        if rec["fmt"] == FMT_S8:
            return "fmt s8: a node without weights is s16"
        return f"fmt {FMT_NAMES.get(rec['fmt'], rec['fmt'])}"
    if field in ("in_features", "out_features", "hidden"):
        if field == "in_features" and rec["fmt"] != 0 and rec["in_features"] >= 65536:
            return (f"in_features {rec['in_features']}: an integer "
                    f"{OP_NAMES.get(rec['op'], '')} takes fewer than 65536 features")  # fmt: skip
        return f"{field} {rec[field]} ({_sizes(rec)})"
    if field == "flags" and value >= 0:
        return f"{_value_head(view, h, value)} has the wrong last flag for this node's output"
    if field == "flags":
        unknown = rec["flags"] & ~LAYER_FLAGS
        return f"flags 0x{rec['flags']:x} ({flag_text(rec['flags'] & LAYER_FLAGS)}" + (
            f", unknown bits 0x{unknown:x})" if unknown else ")")
    if field == "clip":
        return f"clip {rec['clip']} with flags {flag_text(rec['flags'])}"
    if field == "param":
        return f"param {rec['param']}" + (f" (param[{index}])" if index >= 0 else "")
    if field == "act" and index >= 0:  # the slot: its code, alpha and beta
        return (f"act{slot} is {act[index]} ({ACT_NAMES.get(act[index], 'unknown')}), alpha "
                f"{alpha[index]}, beta {beta[index]}")  # fmt: skip
    if field in ("alpha", "beta") and index >= 0:
        eps = " (epsilon)" if rec["op"] == OP_LAYERNORM and index == 0 else ""
        return f"{field}{slot} is {(alpha if field == 'alpha' else beta)[index]}{eps}"
    if field == "reserved":
        return f"padding {list(rec['pad'])} / reserved {list(rec['reserved'])}"
    if field in ("in", "out"):
        k = rec[field][index] if 0 <= index < 4 else NONE
        what = "input" if field == "in" else "output"
        if value < 0:
            return (f"{field}[{index}] is {k}: absent where the op needs one, present where it "
                    f"has none, or not a value index (< {h[13]})")  # fmt: skip
        if field == "in":
            return (f"{field}[{index}] reads {_value_head(view, h, value)}: not written by an "
                    "earlier node, or (last) not readable here, or not its size")  # fmt: skip
        return (f"{field}[{index}] writes {_value_head(view, h, value)}: an input, a state, a "
                f"value written before, or not its size")  # fmt: skip
    if field == "dtype" and value >= 0:
        return (f"{_value_head(view, h, value)}: its dtype does not fit this "
                f"{FMT_NAMES.get(rec['fmt'], '')} node")  # fmt: skip
    if field == "shape" and value >= 0:
        return f"{_value_head(view, h, value)}: its leading axes differ from the input's"
    return field


def _sizes(rec: dict[str, Any]) -> str:
    """A node record's sizes: in_features, out_features, hidden, param."""
    return (f"in_features {rec['in_features']}, out_features {rec['out_features']}, hidden "
            f"{rec['hidden']}, param {rec['param']}")  # fmt: skip


def _element(shape: list[int], index: int) -> str:
    """Flat element `index` of a tensor of `shape` as [i, j, ...]."""
    try:
        return str(list(int(i) for i in np.unravel_index(index, shape)))
    except ValueError:
        return f"#{index}"


# what each leading q slot holds, by op (docs/quantization.md §10): names for messages only
_CELL_SLOTS = ["the W shift", "the R shift", "zlim", "acc32", "the peephole shift",
               "the peephole i multiplier", "the peephole o multiplier",
               "the peephole f multiplier"] + [
    f"{what} of activation {a}'s HardSigmoid" for a in "fgh"
    for what in ("the multiplier", "the shift", "the offset")]  # fmt: skip
# an LSTM's cell state as a value (docs/quantization.md section 14)
_LSTM_SLOTS = _CELL_SLOTS + ["the c_init multiplier", "the c_init shift", "the Y_c multiplier",
                             "the Y_c shift"]  # fmt: skip
_Q_SLOTS = {
    "DENSE": ["the shift", "unused", "acc32"],
    "LAYERNORM": ["the multipliers' shift", "eps_q's high word", "eps_q's low word"],
    "ACT": ["m1", "m1's shift", "m2", "m2's shift", "m3", "m3's shift", "k0", "k1"],
    "LSTM": _LSTM_SLOTS, "GRU": _CELL_SLOTS, "RNN": _CELL_SLOTS,
}


def _row_of(op: str, slot: int, n: int) -> tuple[str, int]:
    """What the multiplier in q slot `slot` (of a q row of n slots) scales, and its shift's slot."""
    j = slot - 24
    if op == "LAYERNORM":
        return f"feature {j}", 0
    if op == "DENSE":
        return f"W row {j}", 0
    if slot < 8:
        return f"peephole {'iof'[slot - 5]}", 4
    gh = (n - 24) // 2
    return (f"W row {j}", 0) if j < gh else (f"R row {j - gh}", 1)


def _data_text(view: memoryview, f: tuple, role: str, field: str, index: int, op: str) -> str:
    """A value in a tensor's data (f: its record) of a layer of op `op`."""
    dtype, ndim, shape, off = f[1], f[2], list(f[4:4 + f[2]]), f[8]
    item = DTYPES[dtype][1]
    value = np.frombuffer(view, item, count=1, offset=off + index * item.itemsize)[0]
    at = f"{role}{_element(shape, index)}"
    slot = index % shape[-1] if shape else index
    if field == "q slot":
        names = _Q_SLOTS.get(op, [])
        what = names[slot] if slot < len(names) else "reserved"
        text = f"q slot {slot} ({what}, {at}) is {int(value)}"
        if len(shape) == 2 and index >= shape[1] and slot < 5:  # per-layer slots: one value
            first = np.frombuffer(view, DTYPES[dtype][1], count=1, offset=off + slot * 4)[0]
            text += f", direction 0 has {int(first)} (slots 0..4 are the layer's, equal in both)"
        return text
    if field in ("multiplier", "acc32"):
        row, shift_slot = _row_of(op, slot, shape[-1])
        shift = np.frombuffer(view, DTYPES[dtype][1], count=1,
                              offset=off + (index - slot + shift_slot) * 4)[0]  # fmt: skip
        if field == "acc32":
            return f"acc32 is set, but the bound of {row} (multiplier {at}) does not fit int32"
        return (f"multiplier {at} = {int(value)} ({row}) with shift {int(shift)} overflows int64 "
                "on the bound of what it scales")  # fmt: skip
    pos = [int(i) for i in np.unravel_index(index, shape)] if shape else [index]
    d = f" (direction {pos[0]})" if len(pos) == 3 else ""
    return (f"weight {at} is {int(value)}: {role} row {pos[-1]}{d} holds -32768, but int16 "
            "weights are symmetric (-32767..32767)")  # fmt: skip


def fault_text(view: memoryview, rc: int, f: Fault, limits: tuple[int, int] | None = None) -> str:
    """Where the loader stopped, in words, with the value the blob holds there."""
    n = len(view)
    if f.section == "arguments":
        return f"argument {f.field}"
    if f.field == "size":
        return f"truncated: {n} bytes, shorter than the {HEADER_SIZE}-byte header"
    h = HEADER_STRUCT.unpack_from(view, 0)
    if f.section == "header":
        names = ("magic", "version", "header_size", "flags", "alignment", "file_size")  # h[0..5]
        hints = {"header_size": f", expected {HEADER_SIZE}",
                 "alignment": " (a power of two in 16..4096)",
                 "file_size": " (at least a header and a checksum)",
                 "n_nodes": f" (1 up to this build's RNE_MAX_NODES{'' if limits is None else f', {limits[0]}'})",
                 "n_tensors": " (at most 4096)",
                 "n_values": f" (2 up to this build's RNE_MAX_VALUES{'' if limits is None else f', {limits[1]}'})",
                 "arena_row": " (a multiple of 16)", "flags": " (a newer rnnedge?)"}  # fmt: skip
        counts = {"n_nodes": 9, "n_tensors": 11, "n_values": 13, "arena_row": 14}
        if f.field == "file_size" and rc == E_TRUNC:
            return f"truncated: {n} bytes, but the header says {h[5]}"
        if f.field == "magic":
            return f"not an rnnedge blob: magic {h[0]!r}, expected b'RNNE'"
        if f.field == "version":
            return version_text(h[1])
        if f.field in names:
            return f"header: {f.field} is {h[names.index(f.field)]}{hints.get(f.field, '')}"
        if f.field in counts:
            return f"header: {f.field} is {h[counts[f.field]]}{hints[f.field]}"
        if f.field == "reserved":
            return f"header: the reserved field is {h[15]} (a newer rnnedge?)"
        if f.field == "blob":
            return f"header: the blob's address is not a multiple of its alignment {h[4]}"
        if f.field == "host byte order":
            return "this host is big-endian"
    if f.section == "crc":
        stored = struct.unpack_from("<I", view, h[5] - 4)[0]
        computed = binascii.crc32(view[: h[5] - 4])
        return f"checksum mismatch: stored 0x{stored:08x}, computed 0x{computed:08x}"
    if f.field in _SECTION_FIELDS:
        i = _SECTION_FIELDS.index(f.field) + 1
        a, b = _span(h, i)
        if rc == E_TRUNC:
            return f"{_SECTIONS[i]} [{a}, {b}) runs past the data end {h[5] - 4}"
        if f.index >= 0:
            c, d = _span(h, f.index)
            return f"{_SECTIONS[i]} [{a}, {b}) overlaps the {_SECTIONS[f.index]} [{c}, {d})"
        return f"{_SECTIONS[i]} at {a} is not a multiple of 8"
    if f.section == "tensor":
        t = _tensor_fields(view, h, f.tensor)
        if t is None:
            return f"tensor {f.tensor}: {f.field}"
        head = f"tensor {f.tensor} ({_tensor_name(t)})"
        other = _tensor_fields(view, h, f.index)
        if f.field == "name" and other is not None:
            return f"{head}: name also used by tensor {f.index}"
        if f.field == "offset" and other is not None:
            return (f"{head}: data [{t[8]}, {t[8] + t[9]}) overlaps tensor {f.index} "
                    f"({_tensor_name(other)}) [{other[8]}, {other[8] + other[9]})")  # fmt: skip
        if f.field == "offset" and rc == E_TRUNC:
            return f"{head}: data [{t[8]}, {t[8] + t[9]}) runs past the data end {h[5] - 4}"
        if f.field == "offset" and rc != E_ALIGN:
            return f"{head}: data [{t[8]}, {t[8] + t[9]}) overlaps the header or a table"
        if f.field == "offset":
            return f"{head}: data offset {t[8]} is not a multiple of {h[4]}"
        return f"{head}: {_tensor_value(t, f.field, f.index)}"
    if f.section == "value":
        return _value_text(view, h, rc, f)
    # a node record (section node or data)
    if not 0 <= f.layer < h[9]:
        return f"node {f.layer}: {f.field}"
    rec = _node(view, h, f.layer)
    op = rec["op"]
    head = f"node {f.layer} ({OP_NAMES.get(op, f'op {op}')})"
    if f.role == 255 and f.field in ("init", "update"):
        return _value_text(view, h, rc, f)
    if f.role == 255:
        return f"{head}: {_layer_value(view, h, rec, f.field, f.index, f.value)}"
    role = ROLE_NAMES.get(f.role, str(f.role))
    t = _tensor_fields(view, h, f.tensor)
    if f.field == "tensor":
        if f.tensor == -1:
            return f"{head}: tensor role {f.role} ({role}) is required but absent"
        if t is None:
            return f"{head}: tensor index {f.tensor} (role {f.role}, {role}) is out of range"
        return (f"{head}: tensor {f.tensor} in role {f.role} ({role}), a role this "
                f"{FMT_NAMES.get(rec['fmt'], '')} {OP_NAMES.get(rec['op'], '')} node does not use")
    if t is None:
        return f"{head}: tensor {f.tensor} (role {role}): {f.field}"
    head = f"{head}, tensor {f.tensor} ({_tensor_name(t)}, role {role})"
    if f.section == "data":
        return f"{head}: {_data_text(view, t, role, f.field, f.index, OP_NAMES.get(rec['op'], ''))}"
    if f.field == "scale":
        return f"{head}: the output scale {t[10]} must be finite and > 0"
    return f"{head}: {_tensor_value(t, f.field, f.index)} does not fit the node ({_sizes(rec)})"


# -- an integer model's metadata (C never reads it) ---------------------------------------------
def scale_of(rec: NodeRecord, tensors: list[TensorRecord], s_in: float) -> float:
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


def check_int_meta(meta: dict[str, Any], blob: Blob) -> None:
    """An integer model's metadata: "quant" int16 (every node s16) or int8, and "qio" with the
    input and output scales, those of the input and output values."""
    quant = meta.get("quant")
    if quant not in WFMT or (quant == "int16" and any(l.fmt == FMT_S8 for l in blob.nodes)):
        raise err(E_HEADER, f"metadata \"quant\" is {quant!r}, but the nodes are "
                            f"{sorted({FMT_NAMES.get(l.fmt, str(l.fmt)) for l in blob.nodes})}: "
                            "expected int8, or int16 when every node is s16")  # fmt: skip
    s_in, s_out = qio(meta)
    for key, given, v in (("input_scale", s_in, blob.input), ("output_scale", s_out, blob.output)):
        if v.dtype == 2 and np.float32(given) != np.float32(v.scale):  # s16 values
            raise err(E_HEADER, f"metadata \"qio\" {key} {given} differs from the {v.kind_name} "
                                f"value's scale {v.scale}")  # fmt: skip
