"""The .rne blob, format version 1 (docs/format.md): constants, writer, pure-Python reader.

`write_blob(net)` turns a `Network` (ONNX layout, rnnedge/layers.py) into blob bytes, or a
`QNetwork` (rnnedge/quantize.py) into an integer blob; `save_blob(net, path)` writes them
atomically; `read_blob(data)` checks a blob in a fixed order and returns a `Blob` whose tensor
arrays are numpy views into `data` (no copy); `to_network(blob)` rebuilds the Network of an f32
blob and `to_qnetwork(blob)` the QNetwork of an integer one; `describe(blob)` is the table
`rnnedge info` prints. The integer layers' part lives in rnnedge/format_int.py.

Needs only numpy: no onnx import here (the `info` command and the runtime use this module).
"""

from __future__ import annotations

import binascii
import functools
import json
import math
import os
import re
import secrets
import struct
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterable

import numpy as np

from . import meta as _meta  # the metadata schema; it reads this module's constants at call time
from .errors import BlobError, ConvertError

if TYPE_CHECKING:  # quantize.py (numpy only) is imported when an integer blob is written or read
    from .quantize import QNetwork
from .layers import (
    ACTIVATIONS,
    CELL_ACTIVATIONS,
    CELL_GATES,
    DIRECTIONS,
    VECTOR_ACTIVATIONS,
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
    TensorSpec,
)

# -- the one table of codes (mirrors csrc/rnnedge.h) ---------------------------------------------
MAGIC = b"RNNE"
VERSION = 1
HEADER_SIZE, LAYER_SIZE, TENSOR_SIZE = 64, 128, 64
MAX_LAYERS, MAX_TENSORS = 64, 4096
MIN_ALIGN, MAX_ALIGN = 16, 4096
NAME_LEN = 23  # tensor name bytes, NUL excluded

# status codes (BlobError.code)
E_MAGIC, E_VERSION, E_TRUNC, E_CRC, E_ALIGN = 2, 3, 4, 5, 6
E_HEADER, E_TENSOR, E_LAYER, E_SHAPE = 7, 8, 9, 10

OP_DENSE, OP_ACT, OP_LSTM, OP_GRU, OP_RNN, OP_TAKE_LAST, OP_SLICE, OP_LAYERNORM = range(1, 9)
OP_NAMES = {
    OP_DENSE: "DENSE", OP_ACT: "ACT", OP_LSTM: "LSTM", OP_GRU: "GRU", OP_RNN: "RNN",
    OP_TAKE_LAST: "TAKE_LAST", OP_SLICE: "SLICE", OP_LAYERNORM: "LAYERNORM",
}  # fmt: skip
CELL_OPS = {"lstm": OP_LSTM, "gru": OP_GRU, "rnn": OP_RNN}
OP_CELLS = {op: cell for cell, op in CELL_OPS.items()}

FMT_F32, FMT_S16, FMT_S8 = 0, 1, 2
FMT_NAMES = {FMT_F32: "f32", FMT_S16: "s16", FMT_S8: "s8"}

# dtype code -> (name, numpy little-endian dtype)
DTYPES: dict[int, tuple[str, np.dtype]] = {
    0: ("f32", np.dtype("<f4")),
    1: ("s8", np.dtype("i1")),
    2: ("s16", np.dtype("<i2")),
    3: ("s32", np.dtype("<i4")),
    4: ("s64", np.dtype("<i8")),
    5: ("u16", np.dtype("<u2")),
}
DT_F32 = 0

LF_REVERSE, LF_BIDIR, LF_INPUT_FORGET, LF_LINEAR_BEFORE_RESET, LF_CLIP = 1, 2, 4, 8, 16
LF_ALL = 31
FLAG_NAMES = {
    LF_REVERSE: "reverse", LF_BIDIR: "bidir", LF_INPUT_FORGET: "input_forget",
    LF_LINEAR_BEFORE_RESET: "linear_before_reset", LF_CLIP: "clip",
}  # fmt: skip

ACT_CODES = {name: code for name, (code, _, _) in ACTIVATIONS.items()}
ACT_NAMES = {code: name for name, code in ACT_CODES.items()}
# which activations read alpha / beta (docs/format.md, activation table)
ACT_USES_ALPHA = {
    "LeakyRelu", "ThresholdedRelu", "ScaledTanh", "HardSigmoid", "Elu", "Affine", "Clip"
}  # fmt: skip
ACT_USES_BETA = {"ScaledTanh", "HardSigmoid", "Affine", "Clip"}

# tensor roles (rne_layer.tensor index) and their names per op; Q and LUT: integer layers only
T_W, T_R, T_B, T_P, T_H0, T_C0, T_Q, T_LUT = range(8)
N_ROLES = 8
ROLE_NAMES = {T_W: "W", T_R: "R", T_B: "B", T_P: "P", T_H0: "H0", T_C0: "C0", T_Q: "q", T_LUT: "lut"}
LAYERNORM_ROLE_NAMES = {T_W: "gamma", T_B: "beta"}

_HEADER = struct.Struct("<4s11I4I")
_LAYER = struct.Struct("<HH4If2I6B2B6f6f8i2I")
_TENSOR = struct.Struct("<24sBBH4IIIfiI")
assert (_HEADER.size, _LAYER.size, _TENSOR.size) == (HEADER_SIZE, LAYER_SIZE, TENSOR_SIZE)


def _align(n: int, a: int) -> int:
    return (n + a - 1) // a * a


def _f32(v: float) -> float:
    """A Python float rounded to float32, as the blob stores it."""
    return float(np.float32(v))


F32_MAX = float(np.finfo(np.float32).max)


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
    D, G, H, I = l.num_directions, CELL_GATES[l.cell], l.hidden_size, l.in_features
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


def check_layer(i: int, layer: Layer) -> None:
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
        if not (math.isfinite(eps) and 0 < eps <= F32_MAX and _f32(eps) > 0):
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


# -- writer --------------------------------------------------------------------------------------
@dataclass
class _TensorOut:
    name: str
    data: np.ndarray  # C-contiguous, in the dtype it is stored as
    dtype: int = DT_F32
    scale: float = 0.0  # integer dtypes only (later formats)
    zero_point: int = 0


@dataclass
class _LayerOut:
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
        return _LAYER.pack(
            self.op, self.fmt, self.in_features, self.out_features, self.hidden, self.flags,
            self.clip, *self.param, *self.act[0], *self.act[1], 0, 0,
            *self.alpha[0], *self.alpha[1], *self.beta[0], *self.beta[1], *self.tensor, 0, 0,
        )  # fmt: skip


class _Builder:
    """Collects layer records and tensors in table order, then lays the blob out once."""

    def __init__(self) -> None:
        self.layers: list[_LayerOut] = []
        self.tensors: list[_TensorOut] = []

    def tensor(self, rec: _LayerOut, role: int, a: np.ndarray | None, name: str = "",
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

    def set_act(self, rec: _LayerOut, d: int, k: int, act: Act) -> None:
        rec.act[d][k] = ACT_CODES[act.kind]
        rec.alpha[d][k] = act.alpha if act.kind in ACT_USES_ALPHA else 0.0
        rec.beta[d][k] = act.beta if act.kind in ACT_USES_BETA else 0.0

    def add(self, layer: Layer) -> None:
        rec = _LayerOut(op=0, in_features=layer.in_features, out_features=layer.out_features)
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

    def cell_record(self, rec: _LayerOut, l: Recurrent) -> None:
        """A recurrent layer's record fields: op, hidden, flags, clip, activations (the same in
        every number format; format_int writes an integer cell's from its float layer)."""
        rec.op, rec.hidden = CELL_OPS[l.cell], l.hidden_size
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

    def add_recurrent(self, rec: _LayerOut, l: Recurrent) -> None:
        D, H = l.num_directions, l.hidden_size
        self.cell_record(rec, l)
        # ONNX W [D, G*H, I] -> W_t [D, I, G*H]; R likewise; B [D, 2*G*H] -> [D, 2, G*H]
        self.tensor(rec, T_W, np.asarray(l.W).transpose(0, 2, 1))
        self.tensor(rec, T_R, np.asarray(l.R).transpose(0, 2, 1))
        self.tensor(rec, T_B, None if l.B is None else np.asarray(l.B).reshape(D, 2, -1))
        self.tensor(rec, T_P, None if l.P is None else np.asarray(l.P).reshape(D, 3, H))
        self.tensor(rec, T_H0, l.initial_h)
        self.tensor(rec, T_C0, l.initial_c)

    def finish(self, meta: bytes, alignment: int) -> bytes:
        layer_off = _align(HEADER_SIZE + len(meta), 8)
        tensor_off = layer_off + LAYER_SIZE * len(self.layers)
        end = tensor_off + TENSOR_SIZE * len(self.tensors)
        offsets = []
        for t in self.tensors:
            offsets.append(_align(end, alignment))
            end = offsets[-1] + t.data.nbytes
        crc_off = _align(end, 4)
        file_size = crc_off + 4
        if file_size >= 2**32:
            raise ConvertError(f"the blob would be {file_size} bytes; the format holds < 4 GiB")
        buf = bytearray(file_size)
        _HEADER.pack_into(
            buf, 0, MAGIC, VERSION, HEADER_SIZE, 0, alignment, file_size, HEADER_SIZE, len(meta),
            layer_off, len(self.layers), tensor_off, len(self.tensors), 0, 0, 0, 0,
        )  # fmt: skip
        buf[HEADER_SIZE : HEADER_SIZE + len(meta)] = meta
        for k, rec in enumerate(self.layers):
            buf[layer_off + k * LAYER_SIZE : layer_off + (k + 1) * LAYER_SIZE] = rec.pack()
        for k, (t, off) in enumerate(zip(self.tensors, offsets)):
            shape = list(t.data.shape) + [1] * (4 - t.data.ndim)
            _TENSOR.pack_into(
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


def check_state(net: Network) -> None:
    """Each state spec names an h (or an LSTM's c) of a recurrent layer of `net`."""
    for s in net.state:
        layer = net.layers[s.layer] if 0 <= s.layer < len(net.layers) else None
        if not isinstance(layer, Recurrent) or s.kind not in ("h", "c") or (
            s.kind == "c" and layer.cell != "lstm"
        ):
            raise ConvertError(f"state {s.name!r}: layer {s.layer} has no {s.kind!r} state")


def metadata_bytes(meta: dict[str, Any]) -> bytes:
    try:
        return json.dumps(meta, separators=(",", ":"), allow_nan=False).encode("utf-8")
    except (TypeError, ValueError) as e:
        raise ConvertError(f"the model's metadata cannot be stored as JSON: {e}") from None


def default_alignment(net: Network | QNetwork) -> int:
    """The writer's tensor alignment: 64 bytes (a cache line, AVX-512's width) for f32 weights,
    16 for the integer formats, whose int8 tensors are small enough for padding to show."""
    return 64 if isinstance(net, Network) else MIN_ALIGN


def write_blob(net: Network | QNetwork, alignment: int | None = None) -> bytes:
    """The blob (format v1) holding `net`: a float Network in f32, or a QNetwork (quantize.py)
    in its integer format (rnnedge/format_int.py). alignment: of tensor data and of the blob
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
        from .format_int import write_qblob

        return write_qblob(net, alignment)
    check_network(net)
    if net.quant != "f32":
        raise ConvertError(
            f"number format {net.quant!r} is not written from a float Network: quantize it "
            "(rnnedge.quantize.quantize_network) and write the QNetwork"
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


def write_atomic(path: str | os.PathLike, data: bytes) -> None:
    """Write `data` to a new temporary file in the same directory, flush it to disk, then rename
    it over `path`. On any failure the temporary file is removed and an existing `path` is left as
    it was: never a half-written file. (Blobs here, C headers in export_c.)

    The temporary file is named `.BASE.PID.RANDOM.tmp` after the writing process: one left by a
    process that was killed (SIGKILL, power loss) is removed by the next write to the same path
    once no process of that id runs any more."""
    directory, base = os.path.split(os.path.abspath(os.fspath(path)))
    _remove_stale_temporaries(directory, base)
    tmp = os.path.join(directory, f".{base}.{os.getpid()}.{secrets.token_hex(6)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _remove_stale_temporaries(directory: str, base: str) -> None:
    """Remove the temporary files of write_atomic(directory/base) whose process is gone."""
    pattern = re.compile(re.escape(f".{base}.") + r"(\d+)\.[0-9a-f]+\.tmp\Z")
    try:
        names = os.listdir(directory)
    except OSError:
        return  # the write itself will report the directory
    for name in names:
        m = pattern.match(name)
        if m and int(m.group(1)) != os.getpid() and not _process_exists(int(m.group(1))):
            try:
                os.unlink(os.path.join(directory, name))
            except OSError:
                pass


def _process_exists(pid: int) -> bool:
    if os.name == "nt":  # os.kill(pid, 0) would end the process there: keep every file
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return True  # another user's process, or an id this system cannot test: keep its file
    return True


# -- reader --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Header:
    magic: bytes
    version: int
    header_size: int
    flags: int
    alignment: int
    file_size: int
    meta_off: int
    meta_size: int
    layer_off: int
    n_layers: int
    tensor_off: int
    n_tensors: int
    reserved: tuple[int, int, int, int]


@dataclass(frozen=True)
class LayerRecord:
    index: int
    op: int
    fmt: int
    in_features: int
    out_features: int
    hidden: int
    flags: int
    clip: float
    param: tuple[int, int]
    act: tuple[tuple[int, int, int], tuple[int, int, int]]
    alpha: tuple[tuple[float, float, float], tuple[float, float, float]]
    beta: tuple[tuple[float, float, float], tuple[float, float, float]]
    tensor: tuple[int, ...]  # 8 role slots, -1 = absent
    pad: tuple[int, int] = (0, 0)
    reserved: tuple[int, int] = (0, 0)

    @property
    def op_name(self) -> str:
        return OP_NAMES.get(self.op, f"op{self.op}")

    @property
    def num_directions(self) -> int:
        return 2 if self.flags & LF_BIDIR else 1

    @property
    def acts(self) -> list[list[Act]]:
        """The activations per direction (cells) or [[act]] (ACT), with their parameters."""
        if self.op == OP_ACT:
            n, dirs = 1, 1
        elif self.op in OP_CELLS:
            n, dirs = CELL_ACTIVATIONS[OP_CELLS[self.op]], self.num_directions
        else:
            return []
        return [
            [Act(ACT_NAMES[self.act[d][k]], self.alpha[d][k], self.beta[d][k]) for k in range(n)]
            for d in range(dirs)
        ]


@dataclass(frozen=True)
class TensorRecord:
    index: int
    name: str
    dtype: int
    shape: tuple[int, ...]  # ndim entries
    offset: int
    nbytes: int
    scale: float
    zero_point: int
    array: np.ndarray  # read-only view into the blob when the blob is immutable

    @property
    def dtype_name(self) -> str:
        return DTYPES[self.dtype][0]


@dataclass
class Blob:
    """A checked blob: header fields, metadata, layer and tensor records. Arrays are views."""

    header: Header
    meta: dict[str, Any]
    layers: list[LayerRecord]
    tensors: list[TensorRecord]
    crc: int  # as stored
    crc_ok: bool
    data: memoryview  # the blob's bytes (file_size of them)

    @property
    def metadata(self) -> dict[str, Any]:
        return self.meta

    @property
    def in_features(self) -> int:
        return self.layers[0].in_features

    @property
    def out_features(self) -> int:
        return self.layers[-1].out_features

    @property
    def streamable(self) -> bool:
        return not any(l.flags & (LF_REVERSE | LF_BIDIR) for l in self.layers)

    @property
    def many_to_one(self) -> bool:
        return any(l.op == OP_TAKE_LAST for l in self.layers)

    def tensor(self, layer: int, role: int) -> np.ndarray | None:
        """The array for `role` (T_W, T_R, ...) of layer `layer`, or None if absent."""
        k = self.layers[layer].tensor[role]
        return None if k < 0 else self.tensors[k].array


def _err(code: int, msg: str) -> BlobError:
    return BlobError(msg, code=code)


def _read_header(view: memoryview) -> Header:
    if len(view) < HEADER_SIZE:
        raise _err(E_TRUNC, f"truncated: {len(view)} bytes, shorter than the {HEADER_SIZE}-byte "
                            "header")  # fmt: skip
    f = _HEADER.unpack_from(view, 0)
    h = Header(*f[:12], reserved=tuple(f[12:]))  # type: ignore[arg-type]
    if h.magic != MAGIC:
        raise _err(E_MAGIC, f"not an rnnedge blob: magic {h.magic!r}, expected {MAGIC!r}")
    if h.version > VERSION:
        newer = f"format version {h.version} is newer than this rnnedge reads ({VERSION})"
        raise _err(E_VERSION, newer)
    if h.version < 1:
        raise _err(E_HEADER, f"format version {h.version} is not valid (versions start at 1)")
    if h.header_size != HEADER_SIZE:
        raise _err(E_HEADER, f"header_size is {h.header_size}, expected {HEADER_SIZE}")
    if h.flags or any(h.reserved):
        raise _err(E_HEADER, "header flags or reserved fields are set (by a newer rnnedge?)")
    if not (MIN_ALIGN <= h.alignment <= MAX_ALIGN and h.alignment & (h.alignment - 1) == 0):
        raise _err(E_HEADER, f"alignment {h.alignment} is not a power of two in "
                             f"{MIN_ALIGN}..{MAX_ALIGN}")  # fmt: skip
    if h.file_size < HEADER_SIZE + 4:
        raise _err(E_HEADER, f"file_size {h.file_size} is smaller than a header and a checksum")
    if not 1 <= h.n_layers <= MAX_LAYERS:
        raise _err(E_HEADER, f"n_layers {h.n_layers} is not in 1..{MAX_LAYERS}")
    if h.n_tensors > MAX_TENSORS:
        raise _err(E_HEADER, f"n_tensors {h.n_tensors} is more than {MAX_TENSORS}")
    if h.file_size > len(view):
        raise _err(E_TRUNC, f"truncated: {len(view)} bytes, but the header says {h.file_size}")
    return h


def _check_sections(h: Header, tensors: Iterable[tuple[str, int, int]]) -> None:
    """Every section inside [0, file_size - 4), tables 8-aligned, nothing overlapping."""
    if h.layer_off % 8 or h.tensor_off % 8:
        raise _err(E_ALIGN, f"layer table at {h.layer_off} or tensor table at {h.tensor_off} "
                            "is not a multiple of 8")  # fmt: skip
    end = h.file_size - 4
    spans: list[tuple[str, int, int]] = [
        ("header", 0, HEADER_SIZE),
        ("metadata", h.meta_off, h.meta_size),
        ("layer table", h.layer_off, LAYER_SIZE * h.n_layers),
        ("tensor table", h.tensor_off, TENSOR_SIZE * h.n_tensors),
        *tensors,
    ]
    for name, off, size in spans:
        if off + size > end:
            raise _err(E_TRUNC, f"{name} [{off}, {off + size}) runs past the data end {end} "
                                f"(file_size {h.file_size} minus the checksum)")  # fmt: skip
    ordered = sorted((off, off + size, name) for name, off, size in spans if size)
    for (_, a_end, a), (b_off, _, b) in zip(ordered, ordered[1:]):
        if b_off < a_end:
            data = any(n.startswith("tensor ") and n != "tensor table" for n in (a, b))
            raise _err(E_TENSOR if data else E_HEADER, f"{a} and {b} overlap")


def _read_tensor(view: memoryview, h: Header, k: int) -> TensorRecord:
    f = _TENSOR.unpack_from(view, h.tensor_off + k * TENSOR_SIZE)
    raw, dtype, ndim, res0, shape4, off, nbytes, scale, zp, res1 = (
        f[0], f[1], f[2], f[3], f[4:8], f[8], f[9], f[10], f[11], f[12],
    )  # fmt: skip
    text = raw.rstrip(b"\0")
    where = f"tensor {k}"
    if not text or b"\0" in text or not text.isascii() or not all(32 < c < 127 for c in text):
        raise _err(E_TENSOR, f"{where}: name {raw!r} is not printable ASCII, NUL-padded")
    name = text.decode("ascii")
    where = f"tensor {k} ({name})"
    if dtype not in DTYPES:
        raise _err(E_TENSOR, f"{where}: unknown dtype {dtype}")
    if not 1 <= ndim <= 4 or any(d < 1 for d in shape4) or any(d != 1 for d in shape4[ndim:]):
        raise _err(E_TENSOR, f"{where}: ndim {ndim} with shape {list(shape4)} is invalid "
                             "(1..4 dims >= 1, unused trailing dims 1)")  # fmt: skip
    count = math.prod(shape4)
    itemsize = DTYPES[dtype][1].itemsize
    if count >= 2**31 or nbytes != count * itemsize:
        raise _err(E_TENSOR, f"{where}: nbytes {nbytes} does not match shape {list(shape4[:ndim])} "
                             f"of {DTYPES[dtype][0]}")  # fmt: skip
    if off % h.alignment:
        raise _err(E_ALIGN, f"{where}: data offset {off} is not a multiple of {h.alignment}")
    if res0 or res1:
        raise _err(E_TENSOR, f"{where}: reserved fields are set")
    if dtype == DT_F32 and (scale != 0 or zp != 0):
        raise _err(E_TENSOR, f"{where}: an f32 tensor must have scale 0 and zero_point 0")
    if off + nbytes > h.file_size - 4:
        raise _err(E_TRUNC, f"{where}: data [{off}, {off + nbytes}) runs past the data end "
                            f"{h.file_size - 4}")  # fmt: skip
    arr = np.frombuffer(view, dtype=DTYPES[dtype][1], count=count, offset=off)
    return TensorRecord(k, name, dtype, tuple(shape4[:ndim]), off, nbytes, scale, zp,
                        arr.reshape(shape4[:ndim]))  # fmt: skip


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


def _where(rec: LayerRecord) -> str:
    return f"layer {rec.index} ({rec.op_name})"


def _check_flags(rec: LayerRecord, cell: str | None) -> None:
    allowed = LF_ALL if cell else 0
    if cell != "lstm":
        allowed &= ~LF_INPUT_FORGET
    if cell != "gru":
        allowed &= ~LF_LINEAR_BEFORE_RESET
    if rec.flags & ~LF_ALL:
        raise _err(E_LAYER, f"{_where(rec)}: unknown flag bits 0x{rec.flags & ~LF_ALL:x}")
    if rec.flags & ~allowed or (rec.flags & LF_REVERSE and rec.flags & LF_BIDIR):
        raise _err(E_LAYER, f"{_where(rec)}: flags {_flag_text(rec.flags)} are not valid for "
                            "this op")  # fmt: skip
    if rec.flags & LF_CLIP:
        if not (math.isfinite(rec.clip) and rec.clip > 0):
            raise _err(E_LAYER, f"{_where(rec)}: clip {rec.clip} must be finite and > 0")
    elif rec.clip != 0:
        raise _err(E_LAYER, f"{_where(rec)}: clip is {rec.clip} but the clip flag is not set")


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
                    raise _err(E_LAYER, f"{_where(rec)}: activation code {code} (slot {d},{k}) "
                                        "is not valid here")  # fmt: skip
                if math.isnan(a) or math.isnan(b):
                    raise _err(E_LAYER, f"{_where(rec)}: activation slot {d},{k} has a NaN "
                                        "parameter")  # fmt: skip
            elif rec.op == OP_LAYERNORM and (d, k) == (0, 0):
                eps = rec.alpha[0][0]
                if code or b or not (math.isfinite(eps) and eps > 0):
                    raise _err(E_LAYER, f"{_where(rec)}: epsilon {eps} must be finite and > 0, "
                                        "with act[0][0] and beta[0][0] zero")  # fmt: skip
            elif code or a or b:
                raise _err(E_LAYER, f"{_where(rec)}: unused activation slot {d},{k} is not zero")


def _check_features(rec: LayerRecord, cell: str | None) -> None:
    """hidden, in/out features and params as the op table says."""
    F_in, F_out, H, op = rec.in_features, rec.out_features, rec.hidden, rec.op
    (p0, p1), where = rec.param, _where(rec)
    if F_in < 1 or F_out < 1:
        raise _err(E_SHAPE, f"{where}: in_features {F_in} and out_features {F_out} must be >= 1")
    if (H >= 1) != bool(cell):
        raise _err(E_LAYER, f"{where}: hidden is {H}; it must be >= 1 for a cell and 0 otherwise")
    if op == OP_TAKE_LAST:
        fits, params_ok = F_out == F_in, p0 <= F_in and p1 == 0
    elif op == OP_SLICE:
        fits, params_ok = F_out == p1 - p0, p0 < p1 <= F_in
    elif cell:
        fits, params_ok = F_out == rec.num_directions * H, p0 == p1 == 0
    else:
        fits, params_ok = op == OP_DENSE or F_out == F_in, p0 == p1 == 0
    if not params_ok:
        raise _err(E_LAYER, f"{where}: param {list(rec.param)} is not valid for {F_in} features")
    if not fits:
        raise _err(E_SHAPE, f"{where}: {F_in} features in and {F_out} out do not fit the op")


def _check_tensor_roles(rec: LayerRecord, tensors: list[TensorRecord]) -> None:
    """Required roles present, unused roles -1, each tensor f32 with the op table's shape."""
    shapes, where = _tensor_shapes(rec), _where(rec)
    for role, k in enumerate(rec.tensor):
        if k == -1:
            if role in REQUIRED_ROLES.get(rec.op, ()):
                raise _err(E_LAYER, f"{where}: required tensor role {role} is absent")
            continue
        if role not in shapes:
            raise _err(E_LAYER, f"{where}: tensor role {role} is not used by this op")
        if not 0 <= k < len(tensors):
            raise _err(E_LAYER, f"{where}: tensor index {k} (role {role}) is out of range")
        t = tensors[k]
        if t.dtype != DT_F32 or t.shape != shapes[role]:
            raise _err(E_SHAPE, f"{where}: tensor {t.name} is {t.dtype_name} {list(t.shape)}, "
                                f"expected f32 {list(shapes[role])}")  # fmt: skip


def _check_layer_record(rec: LayerRecord, tensors: list[TensorRecord]) -> None:
    if rec.op not in OP_NAMES:
        raise _err(E_LAYER, f"layer {rec.index}: unknown op {rec.op}")
    if rec.fmt not in FMT_NAMES:
        raise _err(E_LAYER, f"{_where(rec)}: unknown number format {rec.fmt}")
    if any(rec.pad) or any(rec.reserved):
        raise _err(E_LAYER, f"{_where(rec)}: padding or reserved fields are set")
    cell = OP_CELLS.get(rec.op)
    _check_flags(rec, cell)
    _check_act_slots(rec, cell)
    _check_features(rec, cell)
    if rec.fmt == FMT_F32:
        _check_tensor_roles(rec, tensors)
    else:
        from .format_int import check_layer

        check_layer(rec, tensors)


def _check_chain(layers: list[LayerRecord]) -> None:
    seen_last = False
    for prev, rec in zip([None, *layers], layers):
        if prev is not None and rec.in_features != prev.out_features:
            raise _err(E_SHAPE, f"layer {rec.index} ({rec.op_name}) takes {rec.in_features} "
                                f"features but layer {prev.index} gives "
                                f"{prev.out_features}")  # fmt: skip
        if (rec.fmt == FMT_F32) != (layers[0].fmt == FMT_F32):
            raise _err(E_LAYER, f"{_where(rec)} is {FMT_NAMES[rec.fmt]} but layer 0 is "
                                f"{FMT_NAMES[layers[0].fmt]}: a model is f32 throughout or integer "
                                "throughout")  # fmt: skip
        if rec.op in OP_CELLS and seen_last:
            raise _err(E_LAYER, f"layer {rec.index} ({rec.op_name}) follows the TAKE_LAST layer")
        if rec.op == OP_TAKE_LAST:
            if seen_last:
                raise _err(E_LAYER, f"layer {rec.index}: a second TAKE_LAST layer")
            seen_last = True


def _read_layer(view: memoryview, h: Header, i: int) -> LayerRecord:
    f = _LAYER.unpack_from(view, h.layer_off + i * LAYER_SIZE)
    return LayerRecord(
        index=i, op=f[0], fmt=f[1], in_features=f[2], out_features=f[3], hidden=f[4], flags=f[5],
        clip=f[6], param=(f[7], f[8]), act=(tuple(f[9:12]), tuple(f[12:15])), pad=(f[15], f[16]),
        alpha=(tuple(f[17:20]), tuple(f[20:23])), beta=(tuple(f[23:26]), tuple(f[26:29])),
        tensor=tuple(f[29:37]), reserved=(f[37], f[38]),
    )  # type: ignore[arg-type]  # fmt: skip


def read_blob(
    data: bytes | bytearray | memoryview, verify_crc: bool = True, source: str | None = None
) -> Blob:
    """Check a blob in a fixed order and return it; tensor arrays are views into `data`.

    Order: header size, magic, version, header fields, length, CRC, sections (bounds, alignment,
    overlap), metadata JSON, tensor records, layer records, the chain of feature sizes, the
    metadata schema and its agreement with the layers (rnnedge/meta.py). The first
    fault raises BlobError (with `.code` the matching RNE_E* status), its message prefixed with
    `source` (e.g. the file name) when given. With verify_crc=False a checksum mismatch is
    reported in `crc_ok` instead (for `rnnedge info` on a damaged file).
    """
    try:
        return _read_blob(memoryview(data).cast("B"), verify_crc)
    except BlobError as e:
        if source is None:
            raise
        raise BlobError(f"{source}: {e}", code=e.code) from None


def _read_blob(view: memoryview, verify_crc: bool) -> Blob:
    h = _read_header(view)
    view = view[: h.file_size]
    (crc,) = struct.unpack_from("<I", view, h.file_size - 4)
    crc_ok = binascii.crc32(view[: h.file_size - 4]) == crc
    if verify_crc and not crc_ok:
        computed = binascii.crc32(view[: h.file_size - 4])
        raise _err(E_CRC, f"checksum mismatch: stored 0x{crc:08x}, computed 0x{computed:08x}: "
                          "the blob is corrupt")  # fmt: skip
    _check_sections(h, [])
    meta = _meta.parse(bytes(view[h.meta_off : h.meta_off + h.meta_size]))
    tensors = [_read_tensor(view, h, k) for k in range(h.n_tensors)]
    names = [t.name for t in tensors]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise _err(E_TENSOR, f"tensor name(s) {', '.join(dup)} used more than once")
    _check_sections(h, [(f"tensor {t.index} ({t.name})", t.offset, t.nbytes) for t in tensors])
    layers = [_read_layer(view, h, i) for i in range(h.n_layers)]
    for rec in layers:
        _check_layer_record(rec, tensors)
    _check_chain(layers)
    _meta.check(meta, layers)
    if layers[0].fmt != FMT_F32:
        from .format_int import check_model

        check_model(meta, layers, tensors)
    return Blob(h, meta, layers, tensors, crc, crc_ok, view)


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


def to_qnetwork(blob: Blob) -> QNetwork:
    """Rebuild the QNetwork an integer blob holds (inverse of write_blob), so that the numpy
    reference (rnnedge.fixedpoint.run_int) runs exactly what the C library runs."""
    from .format_int import to_qnetwork as _to_qnetwork

    return _to_qnetwork(blob)


def to_network(blob: Blob) -> Network:
    """Rebuild the layer list a blob holds (inverse of write_blob), weights back in ONNX layout.
    An integer blob gives its dequantized float network (see to_qnetwork for the integers)."""
    if blob.layers[0].fmt != FMT_F32:
        return to_qnetwork(blob).source
    layers: list[Layer] = []
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
            layers.append(Slice(rec.in_features, rec.param[0], rec.param[1]))
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
                )
            )
    meta = blob.meta
    state = [
        StateSpec(str(s["name"]), int(s["layer"]), str(s["kind"]), s.get("output"))
        for s in meta.get("state", [])
    ]
    return Network(
        layers=layers,
        input=_spec(meta, "input", blob.in_features),
        output=_spec(meta, "output", blob.out_features),
        name=str(meta.get("name", "model")),
        producer=str(meta.get("producer", "")),
        quant=str(meta.get("quant", "f32")),
        state=state,
        folded=[str(f) for f in meta.get("folded", [])],
    )


# -- describe ------------------------------------------------------------------------------------
def _flag_text(flags: int) -> str:
    names = [n for bit, n in FLAG_NAMES.items() if flags & bit]
    return ",".join(names) if names else "-"


def _act_text(act: Act) -> str:
    params = []
    if act.kind in ACT_USES_ALPHA:
        params.append(f"{act.alpha:g}")
    if act.kind in ACT_USES_BETA:
        params.append(f"{act.beta:g}")
    return act.kind + (f"({','.join(params)})" if params else "")


def _layer_detail(rec: LayerRecord) -> str:
    if rec.op == OP_TAKE_LAST:
        return f"split {rec.param[0]}"
    if rec.op == OP_SLICE:
        return f"[{rec.param[0]}:{rec.param[1]})"
    if rec.op == OP_LAYERNORM:
        return f"eps {rec.alpha[0][0]:g}"
    parts = [" ".join(_act_text(a) for a in acts) for acts in rec.acts]
    text = " | ".join(parts)
    if rec.flags & LF_CLIP:
        text += f"  clip {rec.clip:g}"
    return text


def _shape_text(s: Any) -> str:
    if not isinstance(s, list):
        return "?"
    return "[" + ", ".join("?" if d is None else str(d) for d in s) + "]"


def _table(rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]))]
    return ["  " + "  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip() for r in rows]


def describe(blob: Blob) -> str:
    """A readable summary: header, model, layers, tensors, sizes, number format, checksum."""
    h, meta = blob.header, blob.meta
    weights = sum(t.nbytes for t in blob.tensors)
    fmts = sorted({FMT_NAMES.get(l.fmt, str(l.fmt)) for l in blob.layers})
    lines = [
        f"rnnedge blob v{h.version}: {h.file_size} bytes ({weights} of tensor data, "
        f"{h.file_size - weights} of header, tables, metadata and padding), "
        f"alignment {h.alignment}",
        f"checksum 0x{blob.crc:08x}: {'ok' if blob.crc_ok else 'MISMATCH (the blob is corrupt)'}",
        f"model {meta.get('name', '?')!s}: number format {meta.get('quant', '?')} "
        f"(layers: {', '.join(fmts)})"
        + (f", from {meta['producer']}" if meta.get("producer") else ""),
    ]
    qio = meta.get("qio")
    if isinstance(qio, dict):
        lines.append(f"int16 input at scale {qio.get('input_scale')}, int16 output at scale "
                     f"{qio.get('output_scale')} (metadata qio)")  # fmt: skip
    for key in ("input", "output"):
        s = meta.get(key)
        if isinstance(s, dict):
            lines.append(f"{key} {s.get('name', '?')}: axes {s.get('axes', '?')} shape "
                         f"{_shape_text(s.get('shape'))}")  # fmt: skip
    lines.append(
        f"{blob.in_features} features in, {blob.out_features} out; "
        f"{'streamable' if blob.streamable else 'not streamable (reads backwards)'}"
        f"{', many-to-one' if blob.many_to_one else ''}"
    )
    for s in meta.get("state", []):
        lines.append(f"state {s.get('name')}: layer {s.get('layer')} {s.get('kind')}"
                     + (f" -> {s['output']}" if s.get("output") else ""))  # fmt: skip
    rows = [["#", "op", "in", "out", "hidden", "dir", "fmt", "flags", "activations / params"]]
    for l in blob.layers:
        direction = ("bidir" if l.flags & LF_BIDIR else "reverse" if l.flags & LF_REVERSE
                     else "forward") if l.op in OP_CELLS else ""  # fmt: skip
        rows.append([
            str(l.index), l.op_name, str(l.in_features), str(l.out_features),
            str(l.hidden) if l.hidden else "", direction, FMT_NAMES.get(l.fmt, str(l.fmt)),
            _flag_text(l.flags & ~(LF_REVERSE | LF_BIDIR | LF_CLIP)), _layer_detail(l),
        ])  # fmt: skip
    lines += [f"layers ({len(blob.layers)}):", *_table(rows)]
    if blob.tensors:
        rows = [["#", "name", "dtype", "shape", "bytes", "offset"]]
        for t in blob.tensors:
            rows.append([str(t.index), t.name, t.dtype_name, "x".join(map(str, t.shape)),
                         str(t.nbytes), str(t.offset)])  # fmt: skip
        lines += [f"tensors ({len(blob.tensors)}, {weights} bytes):", *_table(rows)]
    return "\n".join(lines)
