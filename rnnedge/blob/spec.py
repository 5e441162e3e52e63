"""The .rne format's codes and record layouts, mirrored from csrc/rnnedge.h (docs/format.md).

One home for every number the blob stores (format version 2, docs/graph.md section 5): status
codes, ops, number formats, dtypes, node flags, activation codes, tensor roles, value kinds, sizes
and limits, and the record structs with their read-side dataclasses (Header, NodeRecord,
ValueRecord, TensorRecord, Blob). Each integer constant named like
a C enum (`OP_DENSE` for RNE_OP_DENSE, `E_MAGIC` for RNE_EMAGIC) equals it:
tests/test_blob_spec.py compares them with the compiled library's `lib.RNE_*`.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..ir.layers import CELL_ACTIVATIONS, Act, Pipeline

MAGIC = b"RNNE"
FORMAT_VERSION = 2
# sizeof rne_header, rne_node, rne_tensor, rne_value
HEADER_SIZE, NODE_SIZE, TENSOR_SIZE, VALUE_SIZE = 64, 160, 64, 48
# the Python extension's build options (rnnedge/_build.py sets RNE_MAX_NODES 1024; csrc/rnnedge.h
# defaults to 256 for firmware: a C library built with -DRNE_MAX_NODES=N loads blobs of 1..N nodes
# and names the field n_nodes otherwise, docs/embedded.md); n_tensors' limit is the format's
MAX_NODES, MAX_TENSORS, MAX_VALUES = 1024, 4096, 1024
FORMAT_MAX_NODES = 4096  # the blob format's node limit (what the writer holds to)
MAX_FEATURES = 1 << 20  # the most elements per step of a value (RNE_MAX_FEATURES)
NONE = 0xFFFF  # rne_node.in / out: no value (RNE_NONE)
MIN_ALIGN, MAX_ALIGN = 16, 4096
NAME_LEN = 23  # tensor name bytes, NUL excluded
Q_SLOTS = 24  # leading int32 scalars of a layer's q tensor (csrc/qvec.h RNE__Q_SLOTS)

# status codes (BlobError.code)
OK, E_ARG, E_MAGIC, E_VERSION, E_TRUNC, E_CRC, E_ALIGN = 0, 1, 2, 3, 4, 5, 6
E_HEADER, E_TENSOR, E_LAYER, E_SHAPE, E_STREAM, E_SIZE, E_MODEL = 7, 8, 9, 10, 11, 12, 13
E_INPUT = 14

OP_DENSE, OP_ACT, OP_LSTM, OP_GRU, OP_RNN, OP_TAKE_LAST, OP_SLICE, OP_LAYERNORM = range(1, 9)
OP_BINARY, OP_CONCAT, OP_TRANSPOSE, OP_COPY, OP_GATHER, OP_REDUCE = range(9, 15)
OP_CONV, OP_CONV_T = 15, 16  # docs/graph.md section 6
OP_NAMES = {
    OP_DENSE: "DENSE", OP_ACT: "ACT", OP_LSTM: "LSTM", OP_GRU: "GRU", OP_RNN: "RNN",
    OP_TAKE_LAST: "TAKE_LAST", OP_SLICE: "SLICE", OP_LAYERNORM: "LAYERNORM",
    OP_BINARY: "BINARY", OP_CONCAT: "CONCAT", OP_TRANSPOSE: "TRANSPOSE", OP_COPY: "COPY",
    OP_GATHER: "GATHER", OP_REDUCE: "REDUCE", OP_CONV: "CONV", OP_CONV_T: "CONV_T",
}  # fmt: skip
BIN_ADD, BIN_SUB, BIN_MUL, BIN_DIV, BIN_MIN, BIN_MAX, BIN_POW, BIN_HYPOT, BIN_LOGHYPOT = range(9)  # BINARY param[0]
RED_SUM, RED_MEAN, RED_MAX, RED_MIN = range(4)  # REDUCE param[0]

# value kinds (rne_value.kind, rnnedge/ir/graph.py VALUE_KINDS) and flags
V_TEMP, V_INPUT, V_OUTPUT, V_STATE = range(4)
KIND_NAMES = {V_TEMP: "temp", V_INPUT: "input", V_OUTPUT: "output", V_STATE: "state"}
VF_LAST = 1
CELL_OPS = {"lstm": OP_LSTM, "gru": OP_GRU, "rnn": OP_RNN}
OP_CELLS = {op: cell for cell, op in CELL_OPS.items()}


def keeps_state(rec: "NodeRecord") -> bool:
    """A recurrent node record with a stream state block (not LF_INNER: over a per-step axis)."""
    return rec.op in OP_CELLS and not rec.flags & LF_INNER

# a layer's number format: its weight storage (`wfmt` in rnnedge/ir/layers.py)
FMT_F32, FMT_S16, FMT_S8 = 0, 1, 2
FMT_NAMES = {FMT_F32: "f32", FMT_S16: "s16", FMT_S8: "s8"}
FMT_CODES = {name: code for code, name in FMT_NAMES.items()}

DT_F32, DT_S8, DT_S16, DT_S32, DT_S64, DT_U16 = range(6)
# dtype code -> (name, numpy little-endian dtype)
DTYPES: dict[int, tuple[str, np.dtype]] = {
    DT_F32: ("f32", np.dtype("<f4")),
    DT_S8: ("s8", np.dtype("i1")),
    DT_S16: ("s16", np.dtype("<i2")),
    DT_S32: ("s32", np.dtype("<i4")),
    DT_S64: ("s64", np.dtype("<i8")),
    DT_U16: ("u16", np.dtype("<u2")),
}
DT_CODES = {dt: code for code, (_, dt) in DTYPES.items()}  # numpy dtype (little-endian) -> code

LF_REVERSE, LF_BIDIR, LF_INPUT_FORGET, LF_LINEAR_BEFORE_RESET, LF_CLIP, LF_INNER = 1, 2, 4, 8, 16, 32
LAYER_FLAGS = LF_REVERSE | LF_BIDIR | LF_INPUT_FORGET | LF_LINEAR_BEFORE_RESET | LF_CLIP | LF_INNER
FLAG_NAMES = {
    LF_REVERSE: "reverse", LF_BIDIR: "bidir", LF_INPUT_FORGET: "input_forget",
    LF_LINEAR_BEFORE_RESET: "linear_before_reset", LF_CLIP: "clip", LF_INNER: "inner",
}  # fmt: skip

ACT_IDENTITY, ACT_SIGMOID, ACT_TANH, ACT_RELU, ACT_LEAKYRELU = 0, 1, 2, 3, 4
ACT_THRESHOLDEDRELU, ACT_SCALEDTANH, ACT_HARDSIGMOID, ACT_ELU, ACT_SOFTSIGN = 5, 6, 7, 8, 9
ACT_SOFTPLUS, ACT_AFFINE, ACT_CLIP, ACT_SOFTMAX, ACT_LOGSOFTMAX = 10, 11, 12, 13, 14
ACT_ABS, ACT_NEG, ACT_SQRT, ACT_RECIPROCAL, ACT_EXP, ACT_LOG, ACT_ERF, ACT_POW = range(15, 23)
ACT_CODES = {  # an activation kind (ONNX name, rnnedge/ir/layers.py ACTIVATIONS) -> its code
    "Identity": ACT_IDENTITY, "Sigmoid": ACT_SIGMOID, "Tanh": ACT_TANH, "Relu": ACT_RELU,
    "LeakyRelu": ACT_LEAKYRELU, "ThresholdedRelu": ACT_THRESHOLDEDRELU,
    "ScaledTanh": ACT_SCALEDTANH, "HardSigmoid": ACT_HARDSIGMOID, "Elu": ACT_ELU,
    "Softsign": ACT_SOFTSIGN, "Softplus": ACT_SOFTPLUS, "Affine": ACT_AFFINE, "Clip": ACT_CLIP,
    "Softmax": ACT_SOFTMAX, "LogSoftmax": ACT_LOGSOFTMAX, "Abs": ACT_ABS, "Neg": ACT_NEG,
    "Sqrt": ACT_SQRT, "Reciprocal": ACT_RECIPROCAL, "Exp": ACT_EXP, "Log": ACT_LOG, "Erf": ACT_ERF,
    "Pow": ACT_POW,
}  # fmt: skip
ACT_NAMES = {code: name for name, code in ACT_CODES.items()}

# tensor roles (rne_node.tensor index) and their names per op; Q and LUT: integer layers only
T_W, T_R, T_B, T_P, T_H0, T_C0, T_Q, T_LUT = range(8)
N_ROLES = 8
ROLE_NAMES = {T_W: "W", T_R: "R", T_B: "B", T_P: "P", T_H0: "H0", T_C0: "C0", T_Q: "q", T_LUT: "lut"}
LAYERNORM_ROLE_NAMES = {T_W: "gamma", T_B: "beta"}

HEADER_STRUCT = struct.Struct("<4s15I")
# op fmt flags hidden clip param[8] act[6] pad[2] alpha[6] beta[6] tensor[8] in[4] out[4] reserved[2]
NODE_STRUCT = struct.Struct("<HHIIf8i6B2B6f6f8i4H4H2I")
TENSOR_STRUCT = struct.Struct("<24sBBH4IIIfiI")
# kind dtype ndim flags shape[4] offset update init scale reserved[3]
VALUE_STRUCT = struct.Struct("<4B4IIiif3I")
assert (HEADER_STRUCT.size, NODE_STRUCT.size, TENSOR_STRUCT.size, VALUE_STRUCT.size) == (
    HEADER_SIZE, NODE_SIZE, TENSOR_SIZE, VALUE_SIZE)  # fmt: skip


def align(n: int, a: int) -> int:
    """n rounded up to a multiple of a."""
    return (n + a - 1) // a * a


# -- the records as read (rne_header, rne_node, rne_tensor, rne_value) ---------------------------

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
    node_off: int
    n_nodes: int
    tensor_off: int
    n_tensors: int
    value_off: int
    n_values: int
    arena_row: int
    reserved: int


@dataclass(frozen=True)
class ValueRecord:
    index: int
    kind: int  # V_TEMP ...
    dtype: int  # DT_F32, DT_S16, DT_S32
    shape: tuple[int, ...]  # ndim entries: the per-step shape
    flags: int  # VF_LAST
    offset: int
    update: int  # -1: none
    init: int  # tensor index, -1: zeros
    scale: float
    name: str = ""  # from the metadata's "values"

    @property
    def features(self) -> int:
        return math.prod(self.shape)

    @property
    def last(self) -> bool:
        return bool(self.flags & VF_LAST)

    @property
    def kind_name(self) -> str:
        return KIND_NAMES.get(self.kind, f"kind{self.kind}")


@dataclass(frozen=True)
class NodeRecord:
    """A node record; in_features / out_features are the elements per step of its values in[0]
    and out[0] (as a version-1 layer's were)."""

    index: int
    op: int
    fmt: int
    in_features: int
    out_features: int
    hidden: int
    flags: int
    clip: float
    param: tuple[int, ...]  # 8 ints
    act: tuple[tuple[int, int, int], tuple[int, int, int]]
    alpha: tuple[tuple[float, float, float], tuple[float, float, float]]
    beta: tuple[tuple[float, float, float], tuple[float, float, float]]
    tensor: tuple[int, ...]  # 8 role slots, -1 = absent
    inputs: tuple[int, ...] = (NONE,) * 4  # value indices, NONE = absent
    outputs: tuple[int, ...] = (NONE,) * 4
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
class Blob(Pipeline):
    """A checked blob: header fields, metadata, node, tensor and value records. Arrays are
    views."""

    header: Header
    meta: dict[str, Any]
    nodes: list[NodeRecord]
    tensors: list[TensorRecord]
    crc: int  # as stored
    crc_ok: bool
    data: memoryview  # the blob's bytes (file_size of them)
    values: list[ValueRecord]

    @property
    def layers(self) -> list[NodeRecord]:
        """The nodes, in run order (a straight pipeline's layers)."""
        return self.nodes

    @property
    def metadata(self) -> dict[str, Any]:
        return self.meta

    @property
    def input(self) -> ValueRecord:
        return next(v for v in self.values if v.kind == V_INPUT)

    @property
    def output(self) -> ValueRecord:
        return next(v for v in self.values if v.kind == V_OUTPUT)

    @property
    def in_features(self) -> int:
        return self.input.features

    @property
    def out_features(self) -> int:
        return self.output.features

    @property
    def pipeline(self) -> bool:
        """A straight pipeline: node i reads the value node i-1 wrote (what from_network makes),
        each node one input and one output, no STATE values."""
        prev = self.input.index
        for n in self.nodes:
            if n.inputs[0] != prev or any(i != NONE for i in n.inputs[1:] + n.outputs[1:]):
                return False
            prev = n.outputs[0]
        return prev == self.output.index and not any(v.kind == V_STATE for v in self.values)

    @property
    def streamable(self) -> bool:
        return not any(l.flags & (LF_REVERSE | LF_BIDIR) for l in self.layers)

    @property
    def many_to_one(self) -> bool:
        return self.output.last

    def tensor(self, layer: int, role: int) -> np.ndarray | None:
        """The array for `role` (T_W, T_R, ...) of layer `layer`, or None if absent."""
        k = self.layers[layer].tensor[role]
        return None if k < 0 else self.tensors[k].array


def flag_text(flags: int) -> str:
    """Node flags by name, "reverse,clip"; "-" for none."""
    names = [n for bit, n in FLAG_NAMES.items() if flags & bit]
    return ",".join(names) if names else "-"
