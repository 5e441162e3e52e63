"""The .rne writer and pure-Python reader (rnnedge/blob/: write, read, show): round trips, layout, corruption."""

from __future__ import annotations

import dataclasses
import json
import os
import struct
import zlib

import numpy as np
import pytest

from blob_edit import patched, refresh_crc
from onnx_cases import CASES, CASES_BY_NAME, assert_networks_equal
from rnnedge import files
from rnnedge.blob import spec
from rnnedge.blob.read import _read_header, read_blob, to_network
from rnnedge.blob.show import describe
from rnnedge.blob.write import save_blob, write_blob
from rnnedge.errors import BlobError, ConvertError
from rnnedge.ir.layers import (
    Act, Activation, Dense, LayerNorm, Network, Recurrent, Slice, StateSpec, TakeLast, TensorSpec,
)  # fmt: skip
from rnnedge.reference import run_network


def _rand(rng: np.random.Generator, *shape: int) -> np.ndarray:
    return rng.uniform(-1, 1, shape).astype(np.float32)


def kitchen_sink() -> Network:
    """Every layer kind and flag, parameterised activations, optional tensors present and absent."""
    rng = np.random.default_rng(7)
    H1, H2, H3 = 5, 4, 3
    lstm = Recurrent(
        "lstm", "bidirectional", _rand(rng, 2, 4 * H1, 3), _rand(rng, 2, 4 * H1, H1),
        _rand(rng, 2, 8 * H1), _rand(rng, 2, 3 * H1), _rand(rng, 2, H1), _rand(rng, 2, H1),
        activations=[[Act.make("HardSigmoid", 0.25, 0.375), Act.make("ScaledTanh", 1.5, 0.5),
                      Act.make("LeakyRelu", 0.125)],
                     [Act.make("Sigmoid"), Act.make("Softsign"), Act.make("Elu", 0.75)]],
        clip=3.0, input_forget=True,
    )  # fmt: skip
    gru = Recurrent("gru", "forward", _rand(rng, 1, 3 * H2, 2 * H1), _rand(rng, 1, 3 * H2, H2),
                    _rand(rng, 1, 6 * H2), initial_h=_rand(rng, 1, H2), linear_before_reset=True,
                    activations=[[Act.make("Sigmoid"),
                                  Act.make("Affine", 0.5, -0.25)]])  # fmt: skip
    rnn = Recurrent("rnn", "reverse", _rand(rng, 1, H3, H2), _rand(rng, 1, H3, H3),
                    activations=[[Act.make("ThresholdedRelu", 0.0625)]])  # fmt: skip
    layers = [
        lstm, gru, rnn,
        LayerNorm(_rand(rng, H3), _rand(rng, H3), 1e-3),
        Activation(Act.make("Clip"), H3),  # alpha -inf, beta +inf
        Slice(H3, 1, 3),
        LayerNorm(_rand(rng, 2)),
        TakeLast(2, 1),
        Dense(_rand(rng, 4, 2), _rand(rng, 4)),
        Activation(Act.make("Softplus"), 4),
        Dense(_rand(rng, 3, 4)),
        Activation(Act.make("LogSoftmax"), 3),
    ]  # fmt: skip
    return Network(
        layers, TensorSpec("x", "BTF", [None, None, 3]), TensorSpec("y", "BF", [None, 3]),
        name="kitchen_sink", producer="tests", quant="f32",
        state=[StateSpec("h_in", 1, "h", "h_out"), StateSpec("c_in", 0, "c")],
        folded=["Transpose /t0", "Squeeze /s1"],
    )  # fmt: skip


SINK = write_blob(kitchen_sink())
SMALL = write_blob(CASES_BY_NAME["gru_forward"].build().network)


def header(data: bytes) -> spec.Header:
    return _read_header(memoryview(data))


def layer_at(data: bytes, i: int) -> int:
    return header(data).node_off + i * spec.NODE_SIZE


def value_at(data: bytes, i: int) -> int:
    return header(data).value_off + i * spec.VALUE_SIZE


def tensor_at(data: bytes, k: int) -> int:
    return header(data).tensor_off + k * spec.TENSOR_SIZE


# -- round trips ---------------------------------------------------------------------------------
@pytest.mark.parametrize("net", [kitchen_sink()] + [c.build().network for c in CASES],
                         ids=["kitchen_sink"] + [c.name for c in CASES])  # fmt: skip
def test_round_trip(net):
    blob = read_blob(write_blob(net))
    assert blob.crc_ok
    back = to_network(blob)
    assert_networks_equal(back, net)
    assert write_blob(back) == write_blob(net)
    x = np.random.default_rng(0).standard_normal((3, 2, net.in_features)).astype(np.float32)
    np.testing.assert_array_equal(run_network(back, x)[0], run_network(net, x)[0])


def test_records_and_blob_layout_of_tensors():
    net = kitchen_sink()
    blob = read_blob(SINK)
    lstm, gru, rnn = net.layers[:3]
    rec = blob.layers[0]
    assert (rec.op, rec.fmt, rec.hidden) == (spec.OP_LSTM, spec.FMT_F32, 5)
    assert (rec.in_features, rec.out_features) == (3, 10)
    assert rec.flags == spec.LF_BIDIR | spec.LF_INPUT_FORGET | spec.LF_CLIP and rec.clip == 3.0
    assert rec.act == ((7, 6, 4), (1, 9, 8))
    assert rec.alpha == ((0.25, 1.5, 0.125), (0.0, 0.0, 0.75))
    assert rec.beta == ((0.375, 0.5, 0.0), (0.0, 0.0, 0.0))
    assert rec.tensor == (0, 1, 2, 3, 4, 5, -1, -1)
    assert blob.layers[1].flags == spec.LF_LINEAR_BEFORE_RESET
    assert blob.layers[2].flags == spec.LF_REVERSE and blob.layers[2].tensor[2:] == (-1,) * 6
    assert blob.layers[4].alpha[0][0] == -np.inf and blob.layers[4].beta[0][0] == np.inf
    assert blob.layers[5].param == (0, 1, 3, 1, 0, 0, 0, 0)  # SLICE: axis, start, stop, step
    assert blob.layers[7].param == (1, 0, 0, 0, 0, 0, 0, 0)  # TAKE_LAST: split
    assert blob.layers[3].alpha[0][0] == np.float32(1e-3)
    # weights: ONNX layout -> blob layout
    W_t, R_t, B, P = (blob.tensor(0, r) for r in (spec.T_W, spec.T_R, spec.T_B, spec.T_P))
    assert W_t.shape == (2, 3, 20) and R_t.shape == (2, 5, 20)
    np.testing.assert_array_equal(W_t[1, 2, 7], lstm.W[1, 7, 2])
    np.testing.assert_array_equal(R_t[0, 4, 13], lstm.R[0, 13, 4])
    np.testing.assert_array_equal(B[1, 1, :], lstm.B[1, 20:])  # Rb of direction 1
    np.testing.assert_array_equal(P[0, 2], lstm.P[0, 10:15])  # forget peephole
    dense_w_t = blob.tensor(8, spec.T_W)  # [K, N]
    np.testing.assert_array_equal(dense_w_t, net.layers[8].weight.T)
    assert blob.tensor(10, spec.T_B) is None
    names = [t.name for t in blob.tensors]
    assert names[:6] == ["l0.W", "l0.R", "l0.B", "l0.P", "l0.H0", "l0.C0"]
    assert "l3.gamma" in names and "l3.beta" in names and "l6.beta" not in names
    for t in blob.tensors:
        assert t.dtype == spec.DT_F32 and t.scale == 0 and t.zero_point == 0
        assert t.nbytes == 4 * t.array.size and t.array.dtype == np.dtype("<f4")


@pytest.mark.parametrize("alignment", [16, 64, 256, 4096])
def test_header_sections_alignment_padding_and_crc(alignment):
    data = write_blob(kitchen_sink(), alignment=alignment)
    h = read_blob(data).header
    assert data[:4] == b"RNNE" and (h.version, h.header_size, h.flags) == (2, 64, 0)
    assert h.alignment == alignment and h.file_size == len(data)
    assert h.meta_off == 64 and h.node_off % 8 == 0 and h.tensor_off % 8 == 0
    assert h.value_off % 8 == 0 and h.arena_row % 16 == 0
    assert struct.unpack("<I", data[-4:])[0] == zlib.crc32(data[:-4])
    covered = np.zeros(len(data), bool)
    spans = [(0, 64), (h.meta_off, h.meta_size), (h.node_off, 160 * h.n_nodes),
             (h.tensor_off, 64 * h.n_tensors), (h.value_off, 48 * h.n_values),
             (len(data) - 4, 4)]  # fmt: skip
    for t in read_blob(data).tensors:
        assert t.offset % alignment == 0
        spans.append((t.offset, t.nbytes))
    for off, size in spans:
        assert not covered[off : off + size].any(), "sections overlap"
        covered[off : off + size] = True
    gaps = np.frombuffer(data, np.uint8)[~covered]
    assert not gaps.any(), "padding bytes are not zero"


def test_metadata_keys():
    meta = json.loads(bytes(read_blob(SINK).data[64 : 64 + header(SINK).meta_size]))
    assert meta == {
        "name": "kitchen_sink",
        "producer": "tests",
        "quant": "f32",
        "input": {"name": "x", "axes": "BTF", "shape": [None, None, 3]},
        "output": {"name": "y", "axes": "BF", "shape": [None, 3]},
        "values": ["x", "l0", "l1", "l2", "l3", "l4", "l5", "l6", "l7", "l8", "l9", "l10", "y"],
        "state": [{"name": "h_in", "layer": 1, "kind": "h", "output": "h_out"},
                  {"name": "c_in", "layer": 0, "kind": "c"}],
    }  # fmt: skip  (the folded node list is not written: docs/format.md, Metadata)
    assert "state" not in read_blob(SMALL).meta and "folded" not in read_blob(SMALL).meta


def test_read_is_zero_copy():
    data = bytearray(SMALL)
    blob = read_blob(data)
    t = blob.tensors[0]
    assert np.shares_memory(t.array, np.frombuffer(data, np.uint8))
    struct.pack_into("<f", data, t.offset, 42.0)
    assert t.array.flat[0] == 42.0
    assert not read_blob(SMALL).tensors[0].array.flags.writeable  # bytes stay read-only


def test_source_names_the_file():
    with pytest.raises(BlobError, match=r"^m.rne: truncated: 10 bytes") as e:
        read_blob(SMALL[:10], source="m.rne")
    assert e.value.code == spec.E_TRUNC


def test_trailing_bytes_after_file_size_are_ignored():
    blob = read_blob(SMALL + b"\xff" * 100)
    assert len(blob.data) == len(SMALL) and blob.crc_ok


def test_describe():
    text = describe(read_blob(SINK))
    needles = [
        "rnnedge blob v2", "checksum 0x", ": ok", "model kitchen_sink", "input x: axes BTF",
        "not streamable", "many-to-one", "state h_in: layer 1 h -> h_out", "nodes (12):",
        "LSTM", "bidir", "input_forget", "HardSigmoid(0.25,0.375)", "clip 3", "TAKE_LAST",
        "split 1", "axis 0 [1:3)", "Clip(-inf,inf)", "tensors (", "l0.W", "2x3x20", "l8.W",
        "0 -> 1", "values (13, arena ", "output", "last",
    ]  # fmt: skip
    for needle in needles:
        assert needle in text, needle
    corrupt = bytearray(SINK)
    corrupt[-10] ^= 1
    assert "MISMATCH" in describe(read_blob(bytes(corrupt), verify_crc=False))


# -- the writer refuses what the format cannot hold ----------------------------------------------
def _lstm() -> Recurrent:
    return CASES_BY_NAME["lstm_forward"].build().network.layers[0]


def _net(*layers, **kw) -> Network:
    x, y = TensorSpec("x", "TBF", [None, None, 3]), TensorSpec("y", "TBF", [])
    return Network(list(layers), x, y, **kw)


def _with_nan(a: np.ndarray) -> np.ndarray:
    a = a.copy()
    a.flat[3] = np.nan
    return a


_GRU = CASES_BY_NAME["gru_forward"].build().network.layers[0]
_SOFTMAX_CELL = [[Act.make("Softmax"), Act.make("Tanh"), Act.make("Tanh")]]
_RELU = Activation(Act.make("Relu"), 3)

# name -> (network, the ConvertError message it must give)
BAD_NETWORKS = {
    "vector activation in a cell": (
        _net(dataclasses.replace(_lstm(), activations=_SOFTMAX_CELL)),
        r"layer 0 \(Recurrent\): activation 0 of direction 0: Softmax acts on a whole vector",
    ),
    "clip 0": (
        _net(dataclasses.replace(_lstm(), clip=0.0)),
        r"layer 0 \(Recurrent\): clip must be .* > 0, got 0",
    ),
    "NaN weight": (
        _net(dataclasses.replace(_lstm(), R=_with_nan(_lstm().R))),
        r"R holds 1 non-finite",
    ),
    "W shape": (
        _net(dataclasses.replace(_lstm(), W=_lstm().W[:, :-1])),
        r"W has shape \[1, 19, 3\], expected \[1, 20, 3\]",
    ),
    "peepholes on GRU": (
        _net(dataclasses.replace(_GRU, P=np.zeros((1, 15), np.float32))),
        "LSTM-only",
    ),
    "linear_before_reset on LSTM": (
        _net(dataclasses.replace(_lstm(), linear_before_reset=True)),
        "GRU-only",
    ),
    "activation count": (
        _net(dataclasses.replace(_lstm(), activations=[[Act.make("Tanh")]])),
        r"expected 1 list\(s\) of 3 activation\(s\) for a forward LSTM, got \[1\]",
    ),
    "alpha out of float32 range": (
        _net(Activation(Act.make("LeakyRelu", 1e39), 3)),
        "out of float32 range",
    ),
    "unknown activation": (
        _net(Activation(Act("Swish"), 3)),
        r"'Swish'.* is not a supported activation",
    ),
    "slice bounds": (
        _net(Slice(3, 2, 2)),
        r"layer 0 \(Slice\): needs 0 <= start < stop <= features",
    ),
    "take_last split": (
        _net(TakeLast(3, 4)),
        r"needs 0 <= split <= features, got split 4 of 3",
    ),
    "layernorm epsilon": (
        _net(LayerNorm(np.ones(3, np.float32), epsilon=0.0)),
        "epsilon must be",
    ),
    "dense bias shape": (
        _net(Dense(np.ones((2, 3), np.float32), np.ones(3, np.float32))),
        r"bias has shape \[3\], expected \[2\]",
    ),
    "feature chain": (
        _net(_lstm(), Dense(np.ones((2, 4), np.float32))),
        r"layer 1 \(Dense\) takes 4 features but layer 0",
    ),
    "no layers": (_net(), "no layers"),
    "too many nodes": (_net(*[_RELU] * 4097), r"the graph has 4097 nodes; a blob holds 1..4096"),
    "integer format on a float Network": (
        _net(_lstm(), quant="int8"), r"number format 'int8' is not written from a float Network"),
    "state of a stateless layer": (
        _net(_lstm(), Slice(5, 0, 2), state=[StateSpec("h", 1, "h")]),
        r"state 'h': layer 1 has no 'h' state",
    ),
    "c state of a GRU": (
        _net(_GRU, state=[StateSpec("c", 0, "c")]),
        r"state 'c': layer 0 has no 'c' state",
    ),
    "not a layer": (_net("dense"), r"layer 0: str is not a layer the format can hold"),
    "wider than RNE_MAX_FEATURES": (
        _net(Activation(Act.make("Relu"), 2**20 + 1)),
        r"value 0 \('x'\): it has 1048577 features per timestep; the format holds at most 1048576",
    ),
}


@pytest.mark.parametrize("name", BAD_NETWORKS)
def test_writer_refuses_with_a_clear_error(name):
    net, message = BAD_NETWORKS[name]
    with pytest.raises(ConvertError, match=message):
        write_blob(net)


@pytest.mark.parametrize("alignment", [0, 8, 48, 8192])
def test_writer_refuses_bad_alignment(alignment):
    with pytest.raises(ConvertError, match=f"a power of two in 16..4096, got {alignment}"):
        write_blob(kitchen_sink(), alignment=alignment)


# -- the reader: one clear error per kind of damage ----------------------------------------------
def _boundaries(data: bytes) -> dict[str, int]:
    h = header(data)
    first = read_blob(data).tensors[0]
    return {
        "empty": 0, "inside the header": 40, "after the header": 64,
        "inside the metadata": 64 + h.meta_size // 2, "at the node table": h.node_off,
        "inside the node table": h.node_off + 100, "at the tensor table": h.tensor_off,
        "at the value table": h.value_off, "inside the value table": h.value_off + 50,
        "at the tensor data": first.offset, "inside a tensor": first.offset + 8,
        "before the checksum": len(data) - 4, "inside the checksum": len(data) - 1,
    }  # fmt: skip


@pytest.mark.parametrize("where", list(_boundaries(SINK)))
def test_truncated(where):
    n = _boundaries(SINK)[where]
    with pytest.raises(BlobError, match=f"^truncated: {n} bytes") as e:
        read_blob(SINK[:n])
    assert e.value.code == spec.E_TRUNC


def test_every_flipped_bit_is_caught():
    """Flip one bit in every byte: the reader always refuses, past the header by the checksum."""
    for i in range(len(SMALL)):
        data = bytearray(SMALL)
        data[i] ^= 1 << (i % 8)
        with pytest.raises(BlobError) as e:
            read_blob(bytes(data))
        if i >= 64:
            assert e.value.code == spec.E_CRC and "checksum mismatch" in str(e.value), i


def test_crc_mismatch_message_and_verify_crc_false():
    data = bytearray(SMALL)
    data[-10] ^= 0x80  # in the last tensor's data
    with pytest.raises(BlobError, match=r"checksum mismatch: stored 0x\w{8}, computed 0x\w{8}"):
        read_blob(bytes(data))
    blob = read_blob(bytes(data), verify_crc=False)
    assert not blob.crc_ok


def test_wrong_magic():
    with pytest.raises(BlobError, match=r"not an rnnedge blob: magic b'ONNX', expected b'RNNE'"
                       ) as e:  # fmt: skip
        read_blob(b"ONNX" + SMALL[4:])
    assert e.value.code == spec.E_MAGIC


def test_future_version_is_refused_by_name():
    with pytest.raises(BlobError) as e:
        read_blob(patched(SMALL, 4, "I", 3))
    assert str(e.value) == ("format version 3 is newer than this rnnedge reads (2): blob format "
                            "version is not the one this library reads (version 1 blobs: "
                            "reconvert the model)")
    assert e.value.code == spec.E_VERSION


def _tensor_shape_swap(data: bytes) -> bytes:
    """Layer 0's W_t [1, I, 3H] recorded as [1, 3H, I]: same bytes, wrong shape for the op."""
    off = tensor_at(data, 0)
    _, i, g, _ = struct.unpack_from("<4I", data, off + 28)
    return patched(data, off + 28, "4I", 1, g, i, 1)


def _dup_name(data: bytes) -> bytes:
    return patched(data, tensor_at(data, 1), "24s", b"l0.W")


def _overlap(data: bytes) -> bytes:
    t0 = read_blob(data).tensors[0]
    return patched(data, tensor_at(data, 1) + 44, "I", t0.offset)


def _layer(field_offset: int, spec: str, *values):
    """Damage: write `values` into node 0's record at field_offset."""
    return lambda d: patched(d, layer_at(d, 0) + field_offset, spec, *values)


def _value(i: int, field_offset: int, spec: str, *values):
    """Damage: write `values` into value i's record at field_offset."""
    return lambda d: patched(d, value_at(d, i) + field_offset, spec, *values)


def _tensor(k: int, field_offset: int, spec: str, *values):
    """Damage: write `values` into tensor k's record at field_offset."""
    return lambda d: patched(d, tensor_at(d, k) + field_offset, spec, *values)


def _header(field_offset: int, spec: str, value):
    """Damage: write `value` (or value(data)) into the header at field_offset."""
    return lambda d: patched(d, field_offset, spec, value(d) if callable(value) else value)


def _misalign_tensor0(d: bytes) -> bytes:
    return patched(d, tensor_at(d, 0) + 44, "I", read_blob(d).tensors[0].offset + 4)


# name -> (damage to SMALL (a forward GRU: W, R, B; values 0 input [3], 1 output [5]), code,
# message). Offsets are those of docs/format.md: header fields, rne_tensor (shape at 28, offset
# 44, nbytes 48, scale 52), rne_node (fmt 2, flags 4, hidden 8, clip 12, param 16, act 48, pad 54,
# alpha 56, tensor 104, in 136, out 144, reserved 152), rne_value (kind 0, shape 4, update 24).
# The C loader judges every one (rne_model_load_where); the message names where it stopped (the
# section, node, value, tensor, role and field, with the value the blob holds) and ends with
# rne_strerror's text. "metadata not JSON" is the one fault only Python sees (C never reads it).
DAMAGE = {
    "version 0": (_header(4, "I", 0), spec.E_HEADER, r"^header: version is 0 \(versions start at 1\): blob header field"),
    "version 1": (_header(4, "I", 1), spec.E_VERSION, r"^format version 1 \(a layer pipeline\): this rnnedge reads version 2 \(dataflow graphs\); reconvert it with rnnedge convert"),
    "header_size": (_header(8, "I", 80), spec.E_HEADER, "^header: header_size is 80, expected 64: "),
    "header flags": (_header(12, "I", 1), spec.E_HEADER, "^header: flags is 1 "),
    "header reserved": (_header(60, "I", 1), spec.E_HEADER, r"^header: the reserved field is 1 "),
    "alignment": (_header(16, "I", 48), spec.E_HEADER, r"^header: alignment is 48 \(a power of two in 16..4096\)"),
    "no nodes": (_header(36, "I", 0), spec.E_HEADER, "^header: n_nodes is 0 "),
    "more nodes than this build holds": (_header(36, "I", 1025), spec.E_HEADER,
                                         r"^header: n_nodes is 1025 \(1 up to this build's RNE_MAX_NODES, 1024\)"),
    "too many tensors": (_header(44, "I", 5000), spec.E_HEADER, "^header: n_tensors is 5000 "),
    "one value": (_header(52, "I", 1), spec.E_HEADER, r"^header: n_values is 1 \(2 up to"),
    "arena_row": (_header(56, "I", 8), spec.E_HEADER, r"^header: arena_row is 8 \(a multiple of 16\)"),
    "file_size too small": (_header(20, "I", 10), spec.E_HEADER, "^header: file_size is 10 "),
    "misaligned node table": (
        _header(32, "I", lambda d: header(d).node_off + 4), spec.E_ALIGN,
        r"^node table at \d+ is not a multiple of 8: blob, table or tensor data is not aligned"),
    "misaligned value table": (
        _header(48, "I", lambda d: header(d).value_off + 4), spec.E_ALIGN,
        r"^value table at \d+ is not a multiple of 8"),
    "metadata past the end": (
        _header(28, "I", 10**6), spec.E_TRUNC, r"^metadata \[64, \d+\) runs past the data end \d+: blob is truncated"),
    "tables overlap": (
        _header(40, "I", lambda d: header(d).node_off), spec.E_HEADER,
        r"^tensor table \[\d+, \d+\) overlaps the node table \[\d+, \d+\)"),
    "metadata not JSON": (_header(64, "B", 0xFF), spec.E_HEADER, "metadata is not UTF-8 JSON"),
    "tensor name": (
        _tensor(0, 0, "24s", b"l0.W\0x"), spec.E_TENSOR, r"^tensor 0 \(l0.W\?x\): name b'l0.W\\x00x.*: invalid tensor record"),
    "tensor dtype": (_tensor(0, 24, "B", 9), spec.E_TENSOR, r"^tensor 0 \(l0.W\): dtype 9: invalid tensor record"),
    "tensor ndim": (_tensor(0, 25, "B", 5), spec.E_TENSOR, r"^tensor 0 \(l0.W\): ndim 5 \(shape \[1, 3, 15, 1\]\)"),
    "tensor trailing dim": (_tensor(2, 40, "I", 2), spec.E_TENSOR, r"^tensor 2 \(l0.B\): shape\[3\] is 2 \(shape \[1, 2, 15\]\)"),
    "tensor nbytes": (
        _tensor(0, 48, "I", 4), spec.E_TENSOR, r"^tensor 0 \(l0.W\): nbytes 4 for f32 \[1, 3, 15\]"),
    "tensor offset alignment": (
        _misalign_tensor0, spec.E_ALIGN, r"^tensor 0 \(l0.W\): data offset \d+ is not a multiple of 64"),
    "tensor past the end": (
        lambda d: patched(d, tensor_at(d, 2) + 44, "I", len(d) // 64 * 64), spec.E_TRUNC,
        r"^tensor 2 \(l0.B\): data \[\d+, \d+\) runs past the data end"),
    "tensors overlap": (
        _overlap, spec.E_TENSOR, r"^tensor 1 \(l0.R\): data \[\d+, \d+\) overlaps tensor 0 \(l0.W\)"),
    "f32 tensor with a scale": (
        _tensor(0, 52, "f", 0.5), spec.E_TENSOR, r"^tensor 0 \(l0.W\): scale 0.5: "),
    "tensor reserved": (_tensor(0, 60, "I", 1), spec.E_TENSOR, r"^tensor 0 \(l0.W\): reserved fields 0, 1"),
    "duplicate tensor names": (
        _dup_name, spec.E_TENSOR, r"^tensor 1 \(l0.W\): name also used by tensor 0"),
    "value kind": (_value(1, 0, "B", 9), spec.E_LAYER, r"^value 1 \(kind 9 f32 \[5\]\): kind 9: a graph has exactly one input and one output value"),
    "two inputs": (_value(1, 0, "B", 1), spec.E_LAYER, r"^value 1 \(input f32 \[5\]\): kind 1: a graph has exactly one input"),
    "value shape past the cap": (
        _value(0, 4, "I", 2**20 + 1), spec.E_SHAPE, r"^value 0 \(input f32 \[1048577\]\): shape\[0\] is 1048577"),
    "value update on the output": (
        _value(1, 24, "i", 0), spec.E_LAYER, r"^value 1 \(output f32 \[5\]\): update 0: a state's update is -1 or"),
    "value s16 without a scale": (
        _value(1, 1, "B", spec.DT_S16), spec.E_LAYER, r"^value 1 \(output s16 \[5\]\): scale 0.0 \(s16 values: finite and > 0"),
    "node input absent": (
        _layer(136, "H", 0xFFFF), spec.E_LAYER, r"^node 0 \(GRU\): in\[0\] is 65535: absent where the op needs one"),
    "node writes the input": (
        _layer(144, "H", 0), spec.E_LAYER, r"^node 0 \(GRU\): out\[0\] writes value 0 \(input f32 \[3\]\): an input, a state"),
    "unknown op": (_layer(0, "H", 99), spec.E_LAYER, r"^node 0 \(op 99\): op 99: invalid node or value record"),
    "integer node in a float graph": (
        _layer(2, "H", 2), spec.E_SHAPE,
        r"^node 0 \(GRU\): value 0 \(input f32 \[3\]\): its dtype does not fit this s8 node"),
    "unknown flag": (_layer(4, "I", 64), spec.E_LAYER, r"^node 0 \(GRU\): flags 0x40 \(-, unknown bits 0x40\)"),
    "reverse and bidir": (_layer(4, "I", 3), spec.E_LAYER, r"^node 0 \(GRU\): flags 0x3 \(reverse,bidir\)"),
    "input_forget on a GRU": (
        _layer(4, "I", 4), spec.E_LAYER, r"^node 0 \(GRU\): flags 0x4 \(input_forget\)"),
    "clip flag without clip": (
        _layer(4, "I", 16), spec.E_LAYER, r"^node 0 \(GRU\): clip 0.0 with flags clip"),
    "clip without flag": (_layer(12, "f", 2.0), spec.E_LAYER, r"^node 0 \(GRU\): clip 2.0 with flags -"),
    "softmax in a cell": (_layer(49, "B", 13), spec.E_LAYER, r"^node 0 \(GRU\): act\[0\]\[1\] is 13 \(Softmax\)"),
    "unknown activation": (_layer(48, "B", 99), spec.E_LAYER, r"^node 0 \(GRU\): act\[0\]\[0\] is 99 \(unknown\)"),
    "unused activation slot": (_layer(50, "B", 2), spec.E_LAYER, r"^node 0 \(GRU\): act\[0\]\[2\] is 2 \(Tanh\)"),
    "pad": (_layer(54, "B", 1), spec.E_LAYER, r"^node 0 \(GRU\): padding \[1, 0\] / reserved \[0, 0\]"),
    "node reserved": (_layer(156, "I", 1), spec.E_LAYER, r"^node 0 \(GRU\): padding \[0, 0\] / reserved \[0, 1\]"),
    "param on a cell": (_layer(16, "i", 1), spec.E_LAYER, r"^node 0 \(GRU\): param \[1, 0, 0, 0, 0, 0, 0, 0\] \(param\[0\]\)"),
    "hidden 0 on a cell": (_layer(8, "I", 0), spec.E_LAYER, r"^node 0 \(GRU\): hidden 0 \(in_features 3, out_features 5, hidden 0"),
    "out_features": (_value(1, 4, "I", 6), spec.E_SHAPE, r"^node 0 \(GRU\): out_features 6 \(in_features 3, out_features 6, hidden 5"),
    "required tensor absent": (
        _layer(108, "i", -1), spec.E_LAYER, r"^node 0 \(GRU\): tensor role 1 \(R\) is required but absent"),
    "tensor index out of range": (
        _layer(112, "i", 7), spec.E_LAYER, r"^node 0 \(GRU\): tensor index 7 \(role 2, B\) is out of range"),
    "role the op does not use": (_layer(116, "i", 2), spec.E_LAYER, r"^node 0 \(GRU\): tensor 2 in role 3 \(P\), a role this f32 GRU"),
    "tensor shape for the op": (
        _tensor_shape_swap, spec.E_SHAPE,
        r"^node 0 \(GRU\), tensor 0 \(l0.W, role W\): shape\[1\] is 15 \(shape \[1, 15, 3\]\) does not fit the node \(in_features 3, "),
    "in_features": (
        _value(0, 4, "I", 4), spec.E_SHAPE,
        r"^node 0 \(GRU\), tensor 0 \(l0.W, role W\): shape\[1\] is 3 \(shape \[1, 3, 15\]\) does not fit the node \(in_features 4, "),
}


@pytest.mark.parametrize("name", DAMAGE)
def test_damage_gives_its_own_clear_error(name):
    damage, code, message = DAMAGE[name]
    with pytest.raises(BlobError, match=message) as e:
        read_blob(damage(SMALL))
    assert e.value.code == code, f"{name}: code {e.value.code}, expected {code}"


def test_value_and_last_errors():
    net = _net(Activation(Act.make("Relu"), 3), TakeLast(3, 3), Slice(3, 0, 2))
    data = write_blob(net)  # values: 0 x, 1 relu [3], 2 last [3] (last), 3 y [2] (last)
    broken = patched(data, value_at(data, 3) + 4, "I", 3)  # the SLICE gives 3, its params 2
    message = r"^node 2 \(SLICE\): out_features 3 \(in_features 3, out_features 3, .*: node tensors"
    with pytest.raises(BlobError, match=message) as e:
        read_blob(broken)
    assert e.value.code == spec.E_SHAPE
    twice = patched(data, layer_at(data, 2), "H", spec.OP_TAKE_LAST)  # reads a LAST value
    twice = patched(twice, layer_at(twice, 2) + 16, "4i", 2, 0, 0, 0)
    with pytest.raises(BlobError, match=r"^node 2 \(TAKE_LAST\): in\[0\] reads value 2 \(temp f32 "
                                        r"\[3\], last\): not written by an earlier node, or \(last\)"):
        read_blob(twice)
    lifetime = patched(data, value_at(data, 2) + 20, "I", header(data).arena_row - 16)
    lifetime = patched(lifetime, value_at(lifetime, 1) + 20, "I", header(data).arena_row - 16)
    with pytest.raises(BlobError, match=r"^value 2 \(temp f32 \[3\], last\): its arena bytes at "
                                        r"offset \d+ overlap those of value 1 \(temp f32 \[3\]\), "
                                        "which is live at the same time") as e:
        read_blob(lifetime)
    assert e.value.code == spec.E_SHAPE


# -- save_blob: atomic ---------------------------------------------------------------------------
def _listing(directory) -> list[str]:
    return sorted(os.listdir(directory))


def test_save_blob_writes_the_blob(tmp_path):
    path = tmp_path / "m.rne"
    save_blob(kitchen_sink(), path)
    assert path.read_bytes() == SINK
    assert _listing(tmp_path) == ["m.rne"]
    save_blob(CASES_BY_NAME["gru_forward"].build().network, str(path))  # replaces
    assert path.read_bytes() == SMALL and _listing(tmp_path) == ["m.rne"]


def test_save_blob_refused_network_leaves_no_file(tmp_path):
    net, _ = BAD_NETWORKS["NaN weight"]
    with pytest.raises(ConvertError):
        save_blob(net, tmp_path / "m.rne")
    assert _listing(tmp_path) == []
    (tmp_path / "m.rne").write_bytes(SMALL)
    with pytest.raises(ConvertError):
        save_blob(net, tmp_path / "m.rne")
    assert (tmp_path / "m.rne").read_bytes() == SMALL and _listing(tmp_path) == ["m.rne"]


@pytest.mark.parametrize("fails", ["write", "fsync", "replace"])
def test_save_blob_failure_midway_keeps_the_old_file(tmp_path, monkeypatch, fails):
    path = tmp_path / "m.rne"
    path.write_bytes(SMALL)

    def boom(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(files.os, fails, boom)
    with pytest.raises(OSError, match="No space left"):
        save_blob(kitchen_sink(), path)
    monkeypatch.undo()
    assert path.read_bytes() == SMALL
    assert _listing(tmp_path) == ["m.rne"]
    path.unlink()
    monkeypatch.setattr(files.os, fails, boom)
    with pytest.raises(OSError):
        save_blob(kitchen_sink(), path)
    monkeypatch.undo()
    assert _listing(tmp_path) == []


def test_layernorm_epsilon_and_nodes_out_of_order():
    sink = SINK
    bad_eps = patched(sink, layer_at(sink, 3) + 56, "f", 0.0)  # LAYERNORM alpha[0][0] = epsilon
    with pytest.raises(BlobError, match=r"^node 3 \(LAYERNORM\): alpha\[0\]\[0\] is 0.0 \(epsilon\)") as e:
        read_blob(bad_eps)
    assert e.value.code == spec.E_LAYER
    rnn = CASES_BY_NAME["rnn_forward"].build().network.layers[0]  # 3 -> 5 features
    data = bytearray(write_blob(_net(rnn, TakeLast(5, 5), Slice(5, 0, 3))))
    a, b = layer_at(data, 0), layer_at(data, 1)
    data[a : a + 160], data[b : b + 160] = data[b : b + 160], data[a : a + 160]  # swap 0 and 1
    with pytest.raises(BlobError, match=r"^node 0 \(TAKE_LAST\): in\[0\] reads value 1 "
                                        r"\(temp f32 \[5\]\): not written by an earlier node"):
        read_blob(refresh_crc(data))


# -- without the compiled extension: displayed, not judged ---------------------------------------
def test_without_the_extension_the_reader_displays_and_says_validation_needs_it(monkeypatch):
    from rnnedge.blob import check

    monkeypatch.setattr(check, "_lib", lambda: None)
    text = describe(read_blob(SINK))
    assert "not validated" in text and "rnnedge._rnnedge is not built" in text
    broken = refresh_crc(bytearray(patched(SMALL, layer_at(SMALL, 0) + 48, "B", 99)))
    assert "activation codes 99,2,0 | 0,0,0" in describe(read_blob(broken))  # unknown code shown
    with pytest.raises(BlobError, match="not validated: .* rnnedge._rnnedge is not built"):
        to_network(read_blob(SINK))
    with pytest.raises(BlobError, match=f"^truncated: 40 bytes") as e:
        read_blob(SINK[:40])
    assert e.value.code == spec.E_TRUNC
    monkeypatch.undo()
    with pytest.raises(BlobError, match=r"^node 0 \(GRU\): act\[0\]\[0\] is 99 \(unknown\)"):
        read_blob(broken)


# -- the C loader agrees (docs/format.md: "the two are tested against each other") ---------------
def _c_status(data: bytes) -> int:
    """rne_model_load's status for `data`, loaded from 4096-aligned memory."""
    c = pytest.importorskip("rnnedge._rnnedge", reason="the cffi module is not built")
    if not hasattr(getattr(c, "lib", None), "rne_model_load"):
        pytest.skip("the cffi module is not built")
    raw = np.zeros(len(data) + 4096, np.uint8)
    start = (-raw.ctypes.data) % 4096
    buf = raw[start : start + len(data)]
    buf[:] = np.frombuffer(data, np.uint8)
    return c.lib.rne_model_load(c.ffi.from_buffer(buf), len(data), c.ffi.new("rne_model *"))


def test_c_loader_accepts_what_the_writer_writes():
    nets = [kitchen_sink()] + [c.build().network for c in CASES]
    refused = [n.name for n in nets if _c_status(write_blob(n)) != 0]
    assert not refused
    assert _c_status(write_blob(kitchen_sink(), alignment=4096)) == 0


@pytest.mark.parametrize("name", DAMAGE)
def test_c_loader_gives_the_same_status(name):
    damage, code, _ = DAMAGE[name]
    if name == "metadata not JSON":  # the C loader only bounds-checks the metadata
        code = 0
    assert _c_status(damage(SMALL)) == code


@pytest.mark.parametrize("features", [2**20 + 1, 2**31 - 1])
def test_a_layer_wider_than_max_features_is_refused_by_the_reader_and_the_c_loader(features):
    """A 2^31 - 1 feature activation layer once loaded, and a stream then asked numpy for 512 GiB:
    both readers now refuse any in/out feature count above RNE_MAX_FEATURES (2^20)."""
    data = write_blob(_net(Activation(Act.make("Relu"), 3)))
    bad = patched(data, value_at(data, 0) + 4, "I", features)  # rne_value.shape[0]
    bad = patched(bad, value_at(bad, 1) + 4, "I", features)
    with pytest.raises(BlobError, match=rf"^value 0 \(input f32 \[{features}\]\): shape\[0\] is {features} ") as e:
        read_blob(bad)
    assert e.value.code == spec.E_SHAPE
    c = pytest.importorskip("rnnedge._rnnedge", reason="the cffi module is not built")
    buf = np.frombuffer(bad, np.uint8).copy()  # aligned enough for the C loader's check below
    aligned = np.zeros(len(bad) + 64, np.uint8)
    start = (-aligned.ctypes.data) % 64
    aligned[start:start + len(bad)] = buf
    model = c.ffi.new("rne_model *")
    rc = c.lib.rne_model_load(c.ffi.from_buffer(aligned[start:start + len(bad)]), len(bad), model)
    assert rc == c.lib.RNE_ESHAPE
