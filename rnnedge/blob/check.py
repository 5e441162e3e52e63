"""The one judge of a blob: the C loader, through the compiled extension (docs/format.md).

`judge(view, verify_crc)` runs `rne_model_load_where` (csrc/blob.c, csrc/blob_q.c) on an aligned
copy of the blob and turns a refusal into a BlobError (`.code` the C status) whose message names
where the loader stopped: the section, layer, tensor and role, field and element, with the value
the blob holds there, e.g. "layer 0 (GRU), tensor 1 (l0.R, role R): shape[1] is 15 (shape [1, 15,
3])", then the C status text. Python does not restate the loader's checks: it only reads the
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
    ACT_NAMES, DTYPES, E_ALIGN, E_HEADER, E_TRUNC, FMT_NAMES, FMT_S8, HEADER_SIZE, HEADER_STRUCT,
    LAYER_FLAGS, LAYER_SIZE, LAYER_STRUCT, MAX_ALIGN, MAX_FEATURES, OP_LAYERNORM, OP_NAMES,
    OP_TAKE_LAST, ROLE_NAMES, T_Q, TENSOR_SIZE, TENSOR_STRUCT, LayerRecord, TensorRecord, flag_text,
)  # fmt: skip


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
        fault = Fault(section, field, where.layer, where.tensor, where.role, where.index)
        raise err(rc, f"{fault_text(view, rc, fault)}: {text}")


# -- the fault in words ---------------------------------------------------------------------------
class Fault:
    """rne_fault with its names: section and field as the C library spells them."""

    def __init__(self, section: str, field: str, layer: int, tensor: int, role: int,
                 index: int) -> None:  # fmt: skip
        self.section, self.field = section, field
        self.layer, self.tensor, self.role, self.index = layer, tensor, role, index


_SECTIONS = ("header", "metadata", "layer table", "tensor table")


def _span(h: tuple, i: int) -> tuple[int, int]:
    """[start, end) of section i (0 header, 1 metadata, 2 layer table, 3 tensor table)."""
    meta_off, meta_size, layer_off, n_layers, tensor_off, n_tensors = h[6:12]
    off, size = ((0, HEADER_SIZE), (meta_off, meta_size), (layer_off, LAYER_SIZE * n_layers),
                 (tensor_off, TENSOR_SIZE * n_tensors))[i]  # fmt: skip
    return off, off + size


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


def _layer_value(rec: tuple, field: str, index: int) -> str:
    """A layer record's field as text (rec: LAYER_STRUCT fields)."""
    act, alpha, beta = rec[9:15], rec[17:23], rec[23:29]
    slot = f"[{index // 3}][{index % 3}]"
    if field == "op":
        return f"op {rec[0]}"
    if field == "fmt":
        return f"fmt {FMT_NAMES.get(rec[1], rec[1])}"
    if field in ("in_features", "out_features", "hidden"):
        value = rec[2 + ("in_features", "out_features", "hidden").index(field)]
        return f"{field} {value} ({_sizes(rec)})"
    if field == "flags":
        unknown = rec[5] & ~LAYER_FLAGS
        return f"flags 0x{rec[5]:x} ({flag_text(rec[5] & LAYER_FLAGS)}" + (
            f", unknown bits 0x{unknown:x})" if unknown else ")")
    if field == "clip":
        return f"clip {rec[6]} with flags {flag_text(rec[5])}"
    if field == "param":
        return f"param [{rec[7]}, {rec[8]}]"
    if field == "act" and index >= 0:  # the slot: its code, alpha and beta
        return (f"act{slot} is {act[index]} ({ACT_NAMES.get(act[index], 'unknown')}), alpha "
                f"{alpha[index]}, beta {beta[index]}")  # fmt: skip
    if field in ("alpha", "beta") and index >= 0:
        eps = " (epsilon)" if rec[0] == OP_LAYERNORM and index == 0 else ""
        return f"{field}{slot} is {(alpha if field == 'alpha' else beta)[index]}{eps}"
    if field == "reserved":
        return f"padding {list(rec[15:17])} / reserved {list(rec[37:39])}"
    return field


def _sizes(rec: tuple) -> str:
    """A layer record's sizes: in_features, out_features, hidden, param."""
    return (f"in_features {rec[2]}, out_features {rec[3]}, hidden {rec[4]}, "
            f"param [{rec[7]}, {rec[8]}]")  # fmt: skip


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
_Q_SLOTS = {
    "DENSE": ["the shift", "unused", "acc32"],
    "LAYERNORM": ["the multipliers' shift", "eps_q's high word", "eps_q's low word"],
    "ACT": ["m1", "m1's shift", "m2", "m2's shift", "m3", "m3's shift", "k0", "k1"],
    "LSTM": _CELL_SLOTS, "GRU": _CELL_SLOTS, "RNN": _CELL_SLOTS,
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


def fault_text(view: memoryview, rc: int, f: Fault) -> str:
    """Where the loader stopped, in words, with the value the blob holds there."""
    n = len(view)
    if f.section == "arguments":
        return f"argument {f.field}"
    if f.field == "size":
        return f"truncated: {n} bytes, shorter than the {HEADER_SIZE}-byte header"
    h = HEADER_STRUCT.unpack_from(view, 0)
    if f.section == "header":
        names = ("magic", "version", "header_size", "flags", "alignment", "file_size")  # h[0..5]
        hints = {"version": " (versions start at 1)", "header_size": f", expected {HEADER_SIZE}",
                 "alignment": " (a power of two in 16..4096)",
                 "file_size": " (at least a header and a checksum)",
                 "n_layers": " (1 up to this build's RNE_MAX_LAYERS)",
                 "n_tensors": " (at most 4096)", "flags": " (a newer rnnedge?)"}  # fmt: skip
        if f.field == "file_size" and rc == E_TRUNC:
            return f"truncated: {n} bytes, but the header says {h[5]}"
        if f.field == "magic":
            return f"not an rnnedge blob: magic {h[0]!r}, expected b'RNNE'"
        if f.field == "version" and rc != E_HEADER:
            return f"format version {h[1]} is newer than this rnnedge reads (1)"
        if f.field in names:
            return f"header: {f.field} is {h[names.index(f.field)]}{hints.get(f.field, '')}"
        if f.field in ("n_layers", "n_tensors"):
            value = h[9] if f.field == "n_layers" else h[11]
            return f"header: {f.field} is {value}{hints[f.field]}"
        if f.field == "reserved":
            return f"header: reserved fields are {list(h[12:16])} (a newer rnnedge?)"
        if f.field == "blob":
            return f"header: the blob's address is not a multiple of its alignment {h[4]}"
        if f.field == "host byte order":
            return "this host is big-endian"
    if f.section == "crc":
        stored = struct.unpack_from("<I", view, h[5] - 4)[0]
        computed = binascii.crc32(view[: h[5] - 4])
        return f"checksum mismatch: stored 0x{stored:08x}, computed 0x{computed:08x}"
    if f.field in ("meta_off/meta_size", "layer_off", "tensor_off"):
        i = ("meta_off/meta_size", "layer_off", "tensor_off").index(f.field) + 1
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
    # a layer record (section layer or data)
    if not 0 <= f.layer < h[9]:
        return f"layer {f.layer}: {f.field}"
    rec = LAYER_STRUCT.unpack_from(view, h[8] + f.layer * LAYER_SIZE)
    head = f"layer {f.layer} ({OP_NAMES.get(rec[0], f'op {rec[0]}')})"
    if f.role == 255:
        return f"{head}: {_chain_text(view, h, rec, f) or _layer_value(rec, f.field, f.index)}"
    role = ROLE_NAMES.get(f.role, str(f.role))
    t = _tensor_fields(view, h, f.tensor)
    if f.field == "tensor":
        if f.tensor == -1:
            return f"{head}: tensor role {f.role} ({role}) is required but absent"
        if t is None:
            return f"{head}: tensor index {f.tensor} (role {f.role}, {role}) is out of range"
        return (f"{head}: tensor {f.tensor} in role {f.role} ({role}), a role this "
                f"{FMT_NAMES.get(rec[1], '')} {OP_NAMES.get(rec[0], '')} layer does not use")
    if t is None:
        return f"{head}: tensor {f.tensor} (role {role}): {f.field}"
    head = f"{head}, tensor {f.tensor} ({_tensor_name(t)}, role {role})"
    if f.section == "data":
        return f"{head}: {_data_text(view, t, role, f.field, f.index, OP_NAMES.get(rec[0], ''))}"
    if f.field == "scale":
        return f"{head}: the output scale {t[10]} must be finite and > 0"
    return f"{head}: {_tensor_value(t, f.field, f.index)} does not fit the layer ({_sizes(rec)})"


def _chain_text(view: memoryview, h: tuple, rec: tuple, f: Fault) -> str | None:
    """The faults between layers (the loader's last step), in words; None for the others."""
    prev = LAYER_STRUCT.unpack_from(view, h[8] + (f.layer - 1) * LAYER_SIZE) if f.layer else None
    first = LAYER_STRUCT.unpack_from(view, h[8])
    sized = 1 <= rec[2] <= MAX_FEATURES
    if f.field == "in_features" and prev is not None and sized and rec[2] != prev[3]:
        return f"takes {rec[2]} features but layer {f.layer - 1} gives {prev[3]}"
    if f.field == "op" and rec[0] in OP_NAMES:
        what = "a second TAKE_LAST layer" if rec[0] == OP_TAKE_LAST else "a cell"
        return f"{what} after the TAKE_LAST layer"
    if f.field == "fmt" and rec[1] in FMT_NAMES and (rec[1] == 0) != (first[1] == 0):
        return (f"fmt {FMT_NAMES[rec[1]]} but layer 0 is {FMT_NAMES.get(first[1], first[1])}: a "
                "model is f32 throughout or integer throughout")  # fmt: skip
    if f.field == "fmt" and rec[1] == FMT_S8:
        return "fmt s8: a layer without weights is s16"
    if f.field == "in_features" and rec[0] in OP_NAMES and sized and rec[2] >= 65536:
        return f"in_features {rec[2]}: an integer {OP_NAMES[rec[0]]} takes fewer than 65536 features"
    return None


# -- an integer model's metadata (C never reads it) ---------------------------------------------
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
                            f"{sorted({FMT_NAMES.get(l.fmt, str(l.fmt)) for l in layers})}: "
                            "expected int8, or int16 when every layer is s16")  # fmt: skip
    s, out = qio(meta)
    for rec in layers:
        s = scale_of(rec, tensors, s)
    if np.float32(s) != np.float32(out):
        raise err(E_HEADER, f"metadata \"qio\" output_scale {out} differs from the last layer's "
                            f"output scale {s}")  # fmt: skip

