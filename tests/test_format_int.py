"""Integer blobs (docs/format.md "Integer layers"): the writer (rnnedge/blob/write.py), the reader's
checks (rnnedge/blob/check.py) and to_qnetwork, and the C loader's integer checks (csrc/blob_q.c) against the Python reader's:
the same status for every fault, the message naming the layer and what is wrong."""

from __future__ import annotations

import binascii
import struct
import warnings

import numpy as np
import pytest

import onnx_cases as oc
from rnnedge import fixedpoint as fx
from rnnedge._clib import clib
from rnnedge.blob import spec
from rnnedge.blob.check import check_int_meta
from rnnedge.blob.read import read_blob, to_network, to_qnetwork
from rnnedge.blob.show import describe
from rnnedge.blob.write import write_blob
from rnnedge.errors import BlobError, ConvertError
from rnnedge.ir.layers import Mult, QDense, QLayerNorm
from rnnedge.quant.policy import quantize_network
from rnnedge.reference import run_network

ffi, lib = clib().ffi, clib().lib  # the build this CPU loads (rnnedge/_clib.py)


def quantized(name: str, quant: str, **kw):
    built = oc.CASES_BY_NAME[name].build()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        q = quantize_network(built.network, quant, built.feeds[built.network.input.name], **kw)
    return q, built


ROUNDTRIP = [("lstm_bidirectional_peepholes_initial_states", "int8"), ("lstm_input_forget", "int16"),
             ("gru_bidirectional_linear_before_reset", "int8"), ("gru_clip", "int16"),
             ("rnn_relu", "int8"), ("rnn_hardsigmoid", "int16"), ("act_elu_0p8", "int16"),
             ("act_logsoftmax", "int16"), ("stack_bilstm_lstm_last_dense_softmax", "int8"),
             ("lstm_state_inputs", "int16"), ("slice", "int16"), ("layernorm", "int16"),
             ("layernorm_no_beta", "int16"), ("rnn_relu_layernorm_dense", "int8")]  # fmt: skip


@pytest.mark.parametrize("name, quant", ROUNDTRIP, ids=[f"{n}-{q}" for n, q in ROUNDTRIP])
def test_write_read_to_qnetwork_round_trip(name, quant):
    q, built = quantized(name, quant)
    data = write_blob(q, alignment=16)
    q2 = to_qnetwork(read_blob(data))
    assert write_blob(q2, alignment=16) == data
    xq = fx.quantize(built.x, q.in_scale)
    for a, b in zip(fx.run_int(q, xq), fx.run_int(q2, xq)):
        np.testing.assert_equal(a, b)
    assert (q2.in_scale, q2.out_scale, q2.quant) == (q.in_scale, q.out_scale, q.quant)


def test_records_tensors_and_metadata_of_an_int8_lstm():
    q, _ = quantized("lstm_bidirectional_peepholes_initial_states", "int8")
    blob = read_blob(write_blob(q))
    rec = blob.layers[0]
    assert (rec.op, rec.fmt, rec.hidden) == (spec.OP_LSTM, spec.FMT_S8, 5)
    want = {spec.T_W: ("s8", (2, 3, 20)), spec.T_R: ("s8", (2, 5, 20)), spec.T_B: ("s32", (2, 20)),
            spec.T_P: ("s16", (2, 3, 5)), spec.T_H0: ("s16", (2, 5)), spec.T_C0: ("s32", (2, 5)),
            spec.T_Q: ("s32", (2, 24 + 40))}  # fmt: skip
    for role, (dtype, shape) in want.items():
        t = blob.tensors[rec.tensor[role]]
        assert (t.dtype_name, t.shape, t.zero_point) == (dtype, shape, 0), spec.ROLE_NAMES[role]
    scales = {spec.T_Q: q.out_scale, spec.T_H0: q.layers[0].out_scale, spec.T_C0: 2.0**-20, spec.T_W: 0}
    for role, scale in scales.items():
        assert blob.tensors[rec.tensor[role]].scale == np.float32(scale)
    assert rec.tensor[spec.T_LUT] == -1
    assert blob.meta["quant"] == "int8"
    assert blob.meta["qio"] == {"input_scale": q.in_scale, "output_scale": q.out_scale}
    assert "int16 input at scale" in describe(blob)


def test_to_network_gives_the_dequantized_float_network():
    q, built = quantized("gru_bidirectional_linear_before_reset", "int16")
    net = to_network(read_blob(write_blob(q)))
    ref = built.network.layers[0]
    got = net.layers[0]
    assert (got.cell, got.direction, got.linear_before_reset) == ("gru", "bidirectional", True)
    np.testing.assert_allclose(got.W, ref.W, atol=np.abs(ref.W).max() / 32767)
    np.testing.assert_allclose(got.R, ref.R, atol=np.abs(ref.R).max() / 32767)
    y_ref, _ = run_network(built.network, built.x)
    y, _ = run_network(net, built.x)
    assert np.abs(y - y_ref).max() < 1e-3


def test_layernorm_record_tensors_and_dequantized_float_layer():
    q, built = quantized("rnn_relu_layernorm_dense", "int8")
    blob = read_blob(write_blob(q))
    rec = blob.layers[2]
    assert (rec.op, rec.fmt, rec.alpha[0][0]) == (spec.OP_LAYERNORM, spec.FMT_S16, np.float32(1e-5))
    used = {r: blob.tensors[k] for r, k in enumerate(rec.tensor) if k >= 0}
    assert {r: (t.dtype_name, t.shape) for r, t in used.items()} == {
        spec.T_B: ("s32", (8,)), spec.T_Q: ("s32", (24 + 8,))}  # fmt: skip
    assert used[spec.T_Q].scale == np.float32(q.layers[2].out_scale)
    ref = built.network.layers[2]
    got = to_network(blob).layers[2]
    np.testing.assert_allclose(got.gamma, ref.gamma, rtol=1e-6)
    np.testing.assert_allclose(got.beta, ref.beta, atol=q.layers[2].out_scale)
    assert got.epsilon == np.float32(1e-5)
    assert "LAYERNORM" in describe(blob)


def test_mixed_precision_int8_model_with_int16_layers():
    q, _ = quantized("stack_bilstm_lstm_last_dense_softmax", "int8", layer_tol=1e-9)
    fmts = [rec.fmt for rec in read_blob(write_blob(q)).layers]
    assert spec.FMT_S16 in fmts and read_blob(write_blob(q)).meta["quant"] == "int8"


# -- faults: the Python reader and the C loader agree --------------------------------------------------
_LAYER_FIELDS = {"fmt": (2, "<H"), "act01": (49, "<B"), "act10": (51, "<B"), "tensor": (104, "<i")}
_TENSOR_FIELDS = {"dtype": (24, "<B"), "shape1": (32, "<I"), "shape0": (28, "<I"),
                  "nbytes": (48, "<I"), "scale": (52, "<f"), "zero_point": (56, "<i")}  # fmt: skip


def corrupt(data: bytes, *edits: tuple) -> bytes:
    """Apply edits (kind, layer, ...) and fix the CRC: ("q", layer, index, value) sets element
    `index` of the layer's q tensor; ("t", layer, role, field, value) a field of the record of the
    layer's tensor `role`; ("l", layer, field, value) a layer record field; ("role", layer, role,
    index) the layer's tensor index for `role`."""
    blob = read_blob(data)
    h = blob.header
    buf = bytearray(data)
    for e in edits:
        rec = blob.layers[e[1]]
        at = h.node_off + e[1] * spec.NODE_SIZE
        if e[0] == "q":
            struct.pack_into("<i", buf, blob.tensors[rec.tensor[spec.T_Q]].offset + 4 * e[2], e[3])
        elif e[0] == "t":
            off, code = _TENSOR_FIELDS[e[3]]
            struct.pack_into(code, buf, h.tensor_off + rec.tensor[e[2]] * spec.TENSOR_SIZE + off, e[4])
        elif e[0] == "l":
            off, code = _LAYER_FIELDS[e[2]]
            struct.pack_into(code, buf, at + off, e[3])
        else:
            struct.pack_into("<i", buf, at + 104 + 4 * e[2], e[3])
    struct.pack_into("<I", buf, len(buf) - 4, binascii.crc32(bytes(buf[:-4])))
    return bytes(buf)


def c_load(data: bytes) -> int:
    raw = np.zeros(len(data) + 64, np.uint8)
    start = (-raw.ctypes.data) % 64
    raw[start : start + len(data)] = np.frombuffer(data, np.uint8)
    return lib.rne_model_load(ffi.from_buffer(raw[start:]), len(data), ffi.new("rne_model *"))


# base case -> (quant, fault name, edits, code, message)
PEEP, BIGRU, STACK, ELU = ("lstm_peepholes", "int16"), ("gru_bidirectional", "int16"), \
    ("stack_bilstm_lstm_last_dense_softmax", "int8"), ("act_elu_0p8", "int16")  # fmt: skip
LN = ("layernorm", "int16")
RELU, BIRNN = ("rnn_relu", "int8"), ("rnn_bidirectional", "int16")
E_L, E_S = spec.E_LAYER, spec.E_SHAPE
FAULTS = [
    (PEEP, "w shift 0", [("q", 0, 0, 0)], E_L, r"^node 0 \(LSTM\), tensor 4 \(l0\.q, role q\): q slot 0 \(the W shift, q\[0, 0\]\) is 0: invalid node or value record"),
    (PEEP, "r shift 63", [("q", 0, 1, 63)], E_L, r"^node 0 \(LSTM\), tensor 4 \(l0\.q, role q\): q slot 1 \(the R shift, q\[0, 1\]\) is 63"),
    (PEEP, "zlim too big", [("q", 0, 2, (1 << 20) + 1)], E_L, r"^node 0 \(LSTM\), tensor 4 \(l0\.q, role q\): q slot 2 \(zlim, q\[0, 2\]\) is 1048577"),
    (PEEP, "acc32 2", [("q", 0, 3, 2)], E_L, r"^node 0 \(LSTM\), tensor 4 \(l0\.q, role q\): q slot 3 \(acc32, q\[0, 3\]\) is 2"),
    (PEEP, "acc32 on int16 weights", [("q", 0, 3, 1)], E_L, r"^node 0 \(LSTM\), tensor 4 \(l0\.q, role q\): acc32 is set, but the bound of W row 0 \(multiplier q\[0, 24\]\) does not fit int32"),
    (PEEP, "peephole shift 0", [("q", 0, 4, 0)], E_L, r"^node 0 \(LSTM\), tensor 4 \(l0\.q, role q\): q slot 4 \(the peephole shift, q\[0, 4\]\) is 0"),
    (PEEP, "peephole multiplier", [("q", 0, 4, 1), ("q", 0, 6, 2**31 - 1)], E_L,
     r"^node 0 \(LSTM\), tensor 4 \(l0\.q, role q\): multiplier q\[0, 6\] = 2147483647 \(peephole o\) with shift 1 overflows int64"),
    (PEEP, "hardsigmoid slot on sigmoid", [("q", 0, 9, 5)], E_L, r"^node 0 \(LSTM\), tensor 4 \(l0\.q, role q\): q slot 9 \(the shift of activation f's HardSigmoid, q\[0, 9\]\) is 5"),
    (PEEP, "reserved slot", [("q", 0, 23, 1)], E_L, r"^node 0 \(LSTM\), tensor 4 \(l0\.q, role q\): q slot 23 \(reserved, q\[0, 23\]\) is 1"),
    (PEEP, "q scale 0", [("t", 0, spec.T_Q, "scale", 0.0)], E_L, r"^node 0 \(LSTM\), tensor 4 \(l0\.q, role q\): the output scale 0\.0 must be finite and > 0"),
    (PEEP, "q shape", [("t", 0, spec.T_Q, "shape1", 63), ("t", 0, spec.T_Q, "nbytes", 252)], E_S,
     r"^node 0 \(LSTM\), tensor 4 \(l0\.q, role q\): shape\[1\] is 63 \(shape \[1, 63\]\) does not fit the node \(in_features 3, out_features 5, hidden 5"),
    (PEEP, "int8 R in an s16 layer", [("t", 0, spec.T_R, "dtype", 1), ("t", 0, spec.T_R, "nbytes", 100)],
     E_S, r"^node 0 \(LSTM\), tensor 1 \(l0\.R, role R\): dtype s8 does not fit the node"),
    (PEEP, "bias zero point", [("t", 0, spec.T_B, "zero_point", 3)], E_S, r"^node 0 \(LSTM\), tensor 2 \(l0\.B, role B\): zero_point 3 does not fit the node"),
    (PEEP, "no q", [("role", 0, spec.T_Q, -1)], E_L, r"^node 0 \(LSTM\): tensor role 6 \(q\) is required but absent"),
    (PEEP, "no bias", [("role", 0, spec.T_B, -1)], E_L, r"^node 0 \(LSTM\): tensor role 2 \(B\) is required but absent"),
    (PEEP, "table on an lstm", [("role", 0, spec.T_LUT, 0)], E_L, r"^node 0 \(LSTM\): tensor 0 in role 7 \(lut\), a role this s16 LSTM node does not use"),
    (PEEP, "format 3", [("l", 0, "fmt", 3)], E_L, r"^node 0 \(LSTM\): fmt 3: invalid node or value record"),
    (PEEP, "relu in an lstm", [("l", 0, "act01", 3)], E_L, r"^node 0 \(LSTM\): act\[0\]\[1\] is 3 \(Relu\)"),
    (RELU, "relu zlim past 2^23", [("q", 0, 2, (1 << 23) + 1)], E_L, r"^node 0 \(RNN\), tensor 3 \(l0\.q, role q\): q slot 2 \(zlim, q\[0, 2\]\) is 8388609"),
    (BIRNN, "relu in one direction only", [("l", 0, "act10", 3)], E_L, r"^node 0 \(RNN\): act\[1\]\[0\] is 3 \(Relu\)"),
    (BIGRU, "directions disagree", [("q", 0, 54, 7)], E_L, r"^node 0 \(GRU\), tensor 3 \(l0\.q, role q\): q slot 0 \(the W shift, q\[1, 0\]\) is 7, direction 0 has \d+ \(slots 0..4"),
    (BIGRU, "second direction reserved", [("q", 0, 54 + 20, 1)], E_L, r"^node 0 \(GRU\), tensor 3 \(l0\.q, role q\): q slot 20 \(reserved, q\[1, 20\]\) is 1"),
    (STACK, "dense shift 0", [("q", 3, 0, 0)], E_L, r"^node 3 \(DENSE\), tensor 10 \(l3\.q, role q\): q slot 0 \(the shift, q\[0\]\) is 0"),
    (STACK, "dense unused slot", [("q", 3, 1, 1)], E_L, r"^node 3 \(DENSE\), tensor 10 \(l3\.q, role q\): q slot 1 \(unused, q\[1\]\) is 1"),
    (STACK, "softmax exponent negative", [("q", 4, 0, -5)], E_L, r"^node 4 \(ACT\), tensor 11 \(l4\.q, role q\): q slot 0 \(m1, q\[0\]\) is -5"),
    (STACK, "softmax m2", [("q", 4, 3, 5)], E_L, r"^node 4 \(ACT\), tensor 11 \(l4\.q, role q\): q slot 3 \(m2's shift, q\[3\]\) is 5"),
    (STACK, "softmax table", [("role", 4, spec.T_LUT, 0)], E_L, r"^node 4 \(ACT\): tensor 0 in role 7 \(lut\), a role this s16 ACT node does not use"),
    (STACK, "act in s8", [("l", 4, "fmt", 2)], E_L, r"^node 4 \(ACT\): fmt s8: a node without weights is s16"),
    (STACK, "take_last tensor", [("role", 2, spec.T_Q, 0)], E_L, r"^node 2 \(TAKE_LAST\): tensor 0 in role 6 \(q\), a role this s16 TAKE_LAST node"),
    (STACK, "f32 node in an integer model", [("l", 2, "fmt", 0)], E_S,
     r"^node 2 \(TAKE_LAST\): value 2 \(temp s16 \[6\]\): its dtype does not fit this f32 node"),
    (ELU, "elu without table", [("role", 0, spec.T_LUT, -1)], E_L, r"^node 0 \(ACT\): tensor role 7 \(lut\) is required but absent"),
    (ELU, "elu table uint16", [("t", 0, spec.T_LUT, "dtype", 5)], E_S, r"^node 0 \(ACT\), tensor 0 \(l0\.lut, role lut\): dtype u16 does not fit the node"),
    (LN, "layernorm shift 0", [("q", 0, 0, 0)], E_L, r"^node 0 \(LAYERNORM\), tensor 1 \(l0\.q, role q\): q slot 0 \(the multipliers' shift, q\[0\]\) is 0"),
    (LN, "layernorm eps high word", [("q", 0, 1, (1 << 30) + 1)], E_L, r"^node 0 \(LAYERNORM\), tensor 1 \(l0\.q, role q\): q slot 1 \(eps_q's high word, q\[1\]\) is 1073741825"),
    (LN, "layernorm eps high word negative", [("q", 0, 1, -1)], E_L, r"^node 0 \(LAYERNORM\), tensor 1 \(l0\.q, role q\): q slot 1 \(eps_q's high word, q\[1\]\) is -1"),
    (LN, "layernorm eps past 2^61", [("q", 0, 1, 1 << 30), ("q", 0, 2, 1)], E_L, r"^node 0 \(LAYERNORM\), tensor 1 \(l0\.q, role q\): q slot 2 \(eps_q's low word, q\[2\]\) is 1: "),
    (LN, "layernorm eps low word negative", [("q", 0, 2, -1)], E_L, r"^node 0 \(LAYERNORM\), tensor 1 \(l0\.q, role q\): q slot 2 \(eps_q's low word, q\[2\]\) is -1"),
    (LN, "layernorm unused slot", [("q", 0, 3, 1)], E_L, r"^node 0 \(LAYERNORM\), tensor 1 \(l0\.q, role q\): q slot 3 \(reserved, q\[3\]\) is 1"),
    (LN, "layernorm in s8", [("l", 0, "fmt", 2)], E_L, r"^node 0 \(LAYERNORM\): fmt s8: a node without weights is s16"),
    (LN, "layernorm gamma tensor", [("role", 0, spec.T_W, 0)], E_L, r"^node 0 \(LAYERNORM\): tensor 0 in role 0 \(W\), a role this s16 LAYERNORM node does not use"),
    (LN, "layernorm without q", [("role", 0, spec.T_Q, -1)], E_L, r"^node 0 \(LAYERNORM\): tensor role 6 \(q\) is required but absent"),
    (LN, "layernorm bias int16", [("t", 0, spec.T_B, "dtype", 2), ("t", 0, spec.T_B, "nbytes", 12)],
     E_S, r"^node 0 \(LAYERNORM\), tensor 0 \(l0\.B, role B\): dtype s16 does not fit the node \(in_features 6"),
]


def _multiplier_fault():
    """A W-row multiplier that overflows int64 on a 2100-input int8 row (bound > 2^32)."""
    from rnnedge.ir.layers import Dense, Network, TensorSpec

    rng = np.random.default_rng(5)
    net = Network([Dense(rng.uniform(-1, 1, (3, 2100)).astype(np.float32))],
                  TensorSpec("x", "TBF", [None, None, 2100]), TensorSpec("y", "TBF", [None, None, 3]))  # fmt: skip
    q = quantize_network(net, "int8", rng.standard_normal((2, 2, 2100)).astype(np.float32))
    return q


@pytest.mark.parametrize("base, name, edits, code, message", FAULTS, ids=[f[1] for f in FAULTS])
def test_integer_fault_is_named_where_the_c_loader_stops(base, name, edits, code, message):
    q, _ = quantized(*base)
    data = corrupt(write_blob(q), *edits)
    with pytest.raises(BlobError, match=message) as e:
        read_blob(data)
    assert e.value.code == code
    assert c_load(data) == code


def test_multiplier_that_overflows_int64_is_refused_by_both():
    data = write_blob(_multiplier_fault(), alignment=16)
    assert c_load(data) == lib.RNE_OK
    bad = corrupt(data, ("q", 0, 0, 62), ("q", 0, 24 + 1, -(2**31)))
    with pytest.raises(BlobError, match=r"^node 0 \(DENSE\), tensor 1 \(l0\.q, role q\): multiplier q\[25\] = -2147483648 \(W row 1\) with shift 62 overflows int64"):
        read_blob(bad)
    assert c_load(bad) == spec.E_LAYER


def _layernorm_qnet(F: int):
    """One integer LayerNorm of F features, made by hand (quantize_network refuses F >= 65536):
    multipliers below 2^30 with shift 40."""
    from rnnedge.ir.layers import LayerNorm, Network, QNetwork, TensorSpec

    spec = lambda name: TensorSpec(name, "TBF", [None, None, F])  # noqa: E731
    net = Network([LayerNorm(np.ones(F, np.float32), None, 1e-5)], spec("x"), spec("y"))
    m = Mult(np.random.default_rng(F).integers(-(2**30), 2**30, F), 40)
    return QNetwork([QLayerNorm(F, m, None, 1000, 1e-5, 1e-3, 1e-4)], 1e-3, 1e-4, "int16", net)


def test_layernorm_multiplier_that_overflows_int64_is_refused_by_both():
    """F = 24576: the bound of |n| is 386 * 2^23, so m = -2^31 with shift 62 overflows int64."""
    data = write_blob(_layernorm_qnet(24576), alignment=16)
    assert c_load(data) == lib.RNE_OK
    bad = corrupt(data, ("q", 0, 0, 62), ("q", 0, 24 + 5, -(2**31)))
    with pytest.raises(BlobError, match=r"^node 0 \(LAYERNORM\), tensor 0 \(l0\.q, role q\): multiplier q\[29\] = -2147483648 \(feature 5\) with shift 62 overflows"):
        read_blob(bad)
    assert c_load(bad) == spec.E_LAYER
    edge = (2**63 - 1 - 2**61) // fx.layernorm_bound(24576)  # the largest m that fits, < 2^31
    assert fx.layernorm_bound(24576) == 386 << 23 and edge < 2**31 - 1
    for m, code in ((edge, lib.RNE_OK), (edge + 1, spec.E_LAYER), (-edge - 1, spec.E_LAYER)):
        assert c_load(corrupt(data, ("q", 0, 0, 62), ("q", 0, 24 + 5, m))) == code, m


def test_layernorm_of_65536_features_is_refused_by_both(monkeypatch):
    from rnnedge.blob import write

    monkeypatch.setattr(write, "read_blob", lambda data: None)  # the writer's own proof
    data = write_blob(_layernorm_qnet(65536), alignment=16)
    monkeypatch.undo()
    with pytest.raises(BlobError, match=r"^node 0 \(LAYERNORM\): in_features 65536: an integer LAYERNORM takes fewer "
                                        "than 65536 features") as e:  # fmt: skip
        read_blob(data)
    assert e.value.code == spec.E_LAYER and c_load(data) == spec.E_LAYER
    with pytest.raises(ConvertError, match="cannot be stored: .* fewer than 65536 features"):
        write_blob(_layernorm_qnet(65536))


def test_int16_weight_minus_32768_is_refused_by_both():
    q, _ = quantized("rnn_forward", "int16")
    data = write_blob(q)
    blob = read_blob(data)
    off = blob.tensors[blob.layers[0].tensor[spec.T_R]].offset
    bad = bytearray(data)
    struct.pack_into("<h", bad, off + 2 * 3, -32768)  # R_t[0, 0, 3]: row 3 of R
    struct.pack_into("<I", bad, len(bad) - 4, binascii.crc32(bytes(bad[:-4])))
    with pytest.raises(BlobError, match=r"^node 0 \(RNN\), tensor 1 \(l0\.R, role R\): weight R\[0, 0, 3\] is -32768: R row 3 \(direction 0\) holds -32768"):
        read_blob(bytes(bad))
    assert c_load(bytes(bad)) == spec.E_LAYER


def test_metadata_of_an_integer_model_is_checked_by_the_python_reader():
    q, _ = quantized("rnn_forward", "int8")
    data = write_blob(q)
    blob = read_blob(data)
    for meta, message in [
        ({k: v for k, v in blob.meta.items() if k != "qio"}, "an integer model needs"),
        (blob.meta | {"qio": {"input_scale": -1.0, "output_scale": 1.0}}, "an integer model needs"),
        (blob.meta | {"quant": "int16"}, "expected int8, or int16 when every node is s16"),
        (blob.meta | {"qio": {"input_scale": q.in_scale, "output_scale": 0.5}},
         "output_scale 0.5 differs from the output value's scale"),
    ]:  # fmt: skip
        with pytest.raises(BlobError, match=message) as e:
            check_int_meta(meta, blob)
        assert e.value.code == spec.E_HEADER
    assert c_load(data) == lib.RNE_OK  # the C library reads no metadata


# -- the writer ----------------------------------------------------------------------------------------
def test_writer_refuses_what_it_cannot_store():
    q, built = quantized("lstm_forward", "int8")
    built.network.quant = "int8"
    with pytest.raises(ConvertError, match="number format 'int8' is not written from a float Network"):
        write_blob(built.network)
    bad = quantized("dense", "int8")[0]
    assert isinstance(bad.layers[0], QDense)
    bad.layers[0].W = bad.layers[0].W.astype(np.float64)
    with pytest.raises(ConvertError, match=r"node 0 \(QDense\): tensor W has dtype float64"):
        write_blob(bad)
    over = _multiplier_fault()
    over.layers[0].mult.m[1] = -(2**31)
    over.layers[0].mult = Mult(over.layers[0].mult.m, 62)
    with pytest.raises(ConvertError, match="cannot be stored: node 0 .* overflows int64"):
        write_blob(over)
    q.source.layers = q.source.layers[:0]
    with pytest.raises(ConvertError, match="its float source 0"):
        write_blob(q)
