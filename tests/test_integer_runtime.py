"""The C library's integer formats against the bit-exact numpy reference (rnnedge/fixedpoint.py).

Every comparison is exact: the int16 outputs and the whole C state buffer (int16 h, int32 c) equal
`fixedpoint.run_int`'s. Through the cffi module directly (the Python API's integer I/O is the
binding's business):
- every case of the shared table (tests/onnx_cases.py) the integer formats support, in int16 and
  int8, from its initial or given state; the others are refused by name;
- long streams with +-inf, NaN, -1e30 and 50-sigma inputs that drive the cell state, the hidden
  state and the gates into saturation;
- streaming (rne_step, chunked rne_run) equals one rne_run, batch B equals B single streams;
- every activation kind over every int16 input, both accumulator widths of both weight types;
- LayerNorm: a 4000-step saturating stream, its edges (F = 1, a variance of one unit, the eps
  clamp, 30000 features), and the three converter fixtures with LayerNorm in int16 and int8
  against onnxruntime (within issue 4's bars) and the reference (bit for bit);
- the bundled HAR example in int16 and int8.
"""

from __future__ import annotations

import dataclasses
import json
import math
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

import onnx_cases as oc
from make_c_vectors import c_state  # the C state buffer of a run_int state (docs/format.md)
from rnnedge import convert as rnnedge_convert, fixedpoint as fx, load as rnnedge_load
from rnnedge._clib import clib
from rnnedge.blob.write import write_blob
from rnnedge.errors import UnsupportedOpError
from rnnedge.ir.layers import (
    Act, Activation, Dense, LayerNorm, Mult, Network, QNetwork, QRecurrent, Recurrent, TakeLast,
    TensorSpec, to_tbf,
)  # fmt: skip
from rnnedge.model import _aligned_bytes as _aligned
from rnnedge.quant.policy import quantize_network

# the build this CPU loads (rnnedge/_clib.py: the widest tier it runs, or RNNEDGE_ISA's)
ffi, lib = clib().ffi, clib().lib

QUANTS = ("int16", "int8")


class CModel:
    """A blob loaded by the C library, with one stream of `batch` rows over int16 arrays."""

    def __init__(self, blob: bytes, batch: int) -> None:
        self.blob = _aligned(len(blob))
        self.blob[:] = np.frombuffer(blob, np.uint8)
        self.m = ffi.new("rne_model *")
        rc = lib.rne_model_load(ffi.from_buffer(self.blob), len(blob), self.m)
        assert rc == lib.RNE_OK, ffi.string(lib.rne_strerror(rc))
        self.batch = batch
        self.state = _aligned(lib.rne_state_size(self.m, batch))
        self.scratch = _aligned(lib.rne_scratch_size(self.m, batch, 1))
        self.s = ffi.new("rne_stream *")
        rc = lib.rne_stream_init(self.s, self.m, batch, ffi.from_buffer(self.state),
                                 len(self.state), ffi.from_buffer(self.scratch),
                                 len(self.scratch))  # fmt: skip
        assert rc == lib.RNE_OK

    def reset(self, state: bytes | None = None) -> None:
        lib.rne_stream_reset(self.s)
        if state is not None:
            self.state[:] = np.frombuffer(state, np.uint8)

    def run(self, xq: np.ndarray) -> np.ndarray:
        T = xq.shape[0]
        y = np.zeros((1 if self.m.many_to_one else T, self.batch, self.m.out_features), np.int16)
        need = lib.rne_scratch_size(self.m, self.batch, T)
        scratch = _aligned(need)
        x = np.ascontiguousarray(xq, np.int16)
        rc = lib.rne_run(self.s, ffi.from_buffer(x), T, ffi.from_buffer(y),
                         ffi.from_buffer(scratch), need)  # fmt: skip
        assert rc == lib.RNE_OK
        return y

    def step_all(self, xq: np.ndarray) -> np.ndarray:
        """rne_step over every step; the outputs stacked (the last one for many-to-one)."""
        ys = np.zeros((xq.shape[0], self.batch, self.m.out_features), np.int16)
        for t in range(xq.shape[0]):
            x = np.ascontiguousarray(xq[t], np.int16)
            rc = lib.rne_step(self.s, ffi.from_buffer(x), ffi.from_buffer(ys[t]))
            assert rc == lib.RNE_OK
        return ys[-1:] if self.m.many_to_one else ys


def int_state(q: QNetwork, state: list | None) -> list | None:
    """A float state (run_network's) as the integer one: h at the layer's scale, c in Q11.20."""
    if state is None:
        return None
    cells = [L for L in q.layers if isinstance(L, QRecurrent)]
    return [(fx.quantize(s[0], L.out_scale),) + ((fx.quantize_cell(s[1]),) if L.cell == "lstm" else ())
            for L, s in zip(cells, state)]  # fmt: skip


def quantize(net: Network, quant: str, calibration: np.ndarray) -> QNetwork:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return quantize_network(net, quant, calibration)


def check_bit_exact(q: QNetwork, xq: np.ndarray, state: list | None = None, stream: bool = True) -> CModel:
    """C == run_int (output and final state); streaming, chunked and per-row runs == one run."""
    batch = xq.shape[1]
    c = CModel(write_blob(q, alignment=16), batch)
    start = None if state is None else c_state(state)
    y_ref, final = fx.run_int(q, xq, state)
    c.reset(start)
    y = c.run(xq)
    np.testing.assert_array_equal(y, y_ref)
    assert bytes(c.state) == c_state(final), "final state differs from the reference"
    if stream and c.m.streamable and xq.shape[0] >= 2:
        c.reset(start)
        np.testing.assert_array_equal(c.step_all(xq), y_ref)
        assert bytes(c.state) == c_state(final), "stepped final state differs"
        if not c.m.many_to_one:
            t1 = xq.shape[0] // 3 + 1
            c.reset(start)
            np.testing.assert_array_equal(np.concatenate([c.run(xq[:t1]), c.run(xq[t1:])]), y_ref)
            assert bytes(c.state) == c_state(final)
    if stream and batch > 1 and state is None:
        one = CModel(write_blob(q), 1)
        for b in range(batch):
            one.reset()
            np.testing.assert_array_equal(one.run(xq[:, b : b + 1]), y_ref[:, b : b + 1])
    return c


# -- every case of the shared table ----------------------------------------------------------------
@pytest.mark.parametrize("quant", QUANTS)
@pytest.mark.parametrize("case", oc.CASES, ids=[c.name for c in oc.CASES])
def test_case_equals_reference_bit_for_bit(case, quant):
    built = case.build()
    net = built.network
    try:
        q = quantize(net, quant, built.feeds[net.input.name])
    except UnsupportedOpError as e:  # no integer form: refused by name, never run wrong
        assert "has no integer form" in str(e)
        return
    xq = fx.quantize(built.x, q.in_scale)
    check_bit_exact(q, xq, int_state(q, built.state))


# -- long streams into saturation ----------------------------------------------------------------------
def _cell(cell: str, I: int, H: int, seed: int, direction: str = "forward", wscale: float = 1.0,
          **kw) -> Recurrent:  # fmt: skip
    rng = np.random.default_rng(seed)
    G, D = {"lstm": 4, "gru": 3, "rnn": 1}[cell], 2 if direction == "bidirectional" else 1
    f32 = lambda a: np.asarray(a, np.float32)  # noqa: E731
    return Recurrent(cell, direction, f32(rng.normal(0, wscale / math.sqrt(I), (D, G * H, I))),
                     f32(rng.normal(0, 1 / math.sqrt(H), (D, G * H, H))),
                     f32(rng.normal(0, 0.3, (D, 2 * G * H))), **kw)  # fmt: skip


def _net(layers: list, features: int) -> Network:
    out = layers[-1].out_features
    return Network(layers, TensorSpec("x", "TBF", [None, None, features]),
                   TensorSpec("y", "TBF", [None, None, out]))  # fmt: skip


def _saturating_lstm() -> Recurrent:
    """Gates held open (i, f, g biases +6, +6, +4): c integrates ~1 per step from +-1500 and
    saturates int32 Q11.20 (+-2048), where the peepholes multiply it."""
    layer = _cell("lstm", 3, 6, 1, wscale=0.1,
                  P=np.full((1, 18), 0.05, np.float32),
                  initial_c=np.linspace(-1500, 1500, 6, dtype=np.float32)[None])  # fmt: skip
    assert layer.B is not None
    layer.B[0, 0:6] += 6.0
    layer.B[0, 12:18] += 6.0
    layer.B[0, 18:24] += 4.0
    return layer


@dataclass
class Long:
    name: str
    net: Network
    rail: str  # what the stream drives to its limit in the first layer: "c" the LSTM cell to
    # int32's, "h" the hidden state to within 0.3% of int16's, "clip" to tanh(clip); "" nothing


LONG = [
    Long("lstm_peepholes_cell_saturates", _net([_saturating_lstm()], 3), "c"),
    Long("lstm_coupled_clip_hardsigmoid",
         _net([_cell("lstm", 4, 5, 2, input_forget=True, clip=3.0,
                     activations=[[Act.make("HardSigmoid", 0.25, 0.5), Act.make("Tanh"),
                                   Act.make("Sigmoid")]])], 4), ""),  # fmt: skip
    Long("gru", _net([_cell("gru", 4, 5, 3, wscale=2.0)], 4), "h"),
    Long("gru_bidirectional_linear_before_reset",
         _net([_cell("gru", 3, 4, 4, "bidirectional", linear_before_reset=True)], 3), "h"),
    Long("rnn_relu_counting", _net([Recurrent("rnn", "forward", np.full((1, 3, 2), 0.2, np.float32),
                                              np.eye(3, dtype=np.float32)[None],
                                              activations=[[Act.make("Relu")]])], 2), "h"),  # fmt: skip
    Long("rnn_tanh_reverse_clip", _net([_cell("rnn", 3, 6, 5, "reverse", wscale=3.0, clip=1.5)], 3),
         "clip"),  # fmt: skip
    Long("stack_lstm_gru_dense_softmax",
         _net([_cell("lstm", 4, 8, 6), _cell("gru", 8, 6, 7, linear_before_reset=True),
               Dense(np.full((3, 6), 0.4, np.float32)), Activation(Act.make("Softmax"), 3)], 4),
         "h"),  # fmt: skip
]


def hostile_input(T: int, B: int, F: int, seed: int) -> np.ndarray:
    """50-sigma noise with +-inf, NaN and -1e30 mixed in, and a stretch held at +inf."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((T, B, F)) * 50
    u = rng.random((T, B, F))
    x[u < 0.05], x[(u >= 0.05) & (u < 0.1)], x[(u >= 0.1) & (u < 0.12)] = np.inf, -np.inf, np.nan
    x[(u >= 0.12) & (u < 0.15)] = -1e30
    x[T // 3 : T // 2] = np.inf
    return x


@pytest.mark.parametrize("quant", QUANTS)
@pytest.mark.parametrize("long", LONG, ids=[c.name for c in LONG])
def test_long_stream_into_saturation_equals_reference(long, quant):
    calib = np.random.default_rng(0).standard_normal((32, 4, long.net.in_features)).astype(np.float32)
    q = quantize(long.net, quant, calib)
    xq = fx.quantize(hostile_input(2000, 2, long.net.in_features, 1), q.in_scale)
    assert xq.min() == fx.INT16_MIN and xq.max() == fx.INT16_MAX and (xq == 0).any()  # inf, NaN
    check_bit_exact(q, xq)
    first = q.layers[0]
    assert isinstance(first, QRecurrent)
    h, final = fx.run_int(QNetwork([first], q.in_scale, first.out_scale, quant, q.source), xq)
    top = int(np.abs(h.astype(np.int64)).max())
    if long.rail == "c":
        assert int(np.abs(final[0][1].astype(np.int64)).max()) == fx.INT32_MAX
    elif long.rail == "h":
        assert top >= 32670
    elif long.rail == "clip":
        assert top == int(fx.tanh_q15(np.array(first.zlim)))


# -- the small cells of tools/rtneural_compare.py's cases: their products end in the AVX2 kernel's -----
# -- 16- and 8-column blocks and their GRU update gates in 8-lane rows and tails (qvec_avx2.h) -------
SMALL = [("gru", 8, False), ("gru", 8, True), ("gru", 12, True), ("gru", 24, False), ("lstm", 8, False),
         ("lstm", 6, False), ("rnn", 24, False)]  # fmt: skip


@pytest.mark.parametrize("quant", QUANTS)
@pytest.mark.parametrize("cell,H,lbr", SMALL, ids=[f"{c}{h}{'-lbr' if b else ''}" for c, h, b in SMALL])
def test_small_cell_at_input_40_equals_reference(cell, H, lbr, quant):
    kw = {"linear_before_reset": True} if lbr else {}
    net = _net([_cell(cell, 40, H, H, wscale=2.0, **kw)], 40)
    rng = np.random.default_rng(H)
    q = quantize(net, quant, rng.uniform(-1, 1, (32, 4, 40)).astype(np.float32))
    xq = fx.quantize(rng.uniform(-3, 3, (300, 2, 40)), q.in_scale)
    check_bit_exact(q, xq)


# -- every activation over every int16 input; both accumulators of both weight types -----------------
ACTS = [("Identity",), ("Relu",), ("LeakyRelu", 0.1), ("LeakyRelu", -2.5), ("ThresholdedRelu", 0.4),
        ("ScaledTanh", -1.5, 0.7), ("HardSigmoid", 0.2, 0.5), ("Elu", 0.9), ("Softsign",),
        ("Softplus",), ("Affine", -0.75, 0.3), ("Clip", -1.0, 2.5), ("Clip", float("-inf"), 0.5),
        ("Sigmoid",), ("Tanh",)]  # fmt: skip


@pytest.mark.parametrize("act", ACTS, ids=["_".join(map(str, a)) for a in ACTS])
def test_activation_over_every_int16_input(act):
    net = _net([Activation(Act.make(*act), 8)], 8)
    calib = np.random.default_rng(0).standard_normal((16, 2, 8)).astype(np.float32) * 3
    q = quantize(net, "int16", calib)
    xq = (np.arange(65536) - 32768).astype(np.int16).reshape(8192, 1, 8)
    check_bit_exact(q, xq, stream=False)


# The quantizer gives Identity and Relu m1 = 2^shift (a Relu passes its input's scale), which the C
# library runs as a copy / max(x, 0); any other m1 (a blob of another writer, or edited) takes
# rne__bin_s16's SIMD requantization: both against the oracle, rounding both ways and saturating.
RQ_M1 = [(1 << 30, 30), (1 << 3, 3), (1518500250, 31), (-1518500250, 29), (3, 1),
         (2**31 - 1, 40), (-(2**31), 40), (1 << 20, 30), (1 << 30, 29)]  # fmt: skip


@pytest.mark.parametrize("m, shift", RQ_M1, ids=[f"{m}_{s}" for m, s in RQ_M1])
@pytest.mark.parametrize("kind", ["Identity", "Relu"])
def test_identity_relu_any_multiplier_over_every_int16_input(kind, m, shift):
    net = _net([Activation(Act.make(kind), 8)], 8)
    q = quantize(net, "int16", np.random.default_rng(0).standard_normal((16, 2, 8)).astype(np.float32))
    q.layers[0] = dataclasses.replace(q.layers[0], m1=Mult(np.int64(m), shift))
    xq = (np.arange(65536) - 32768).astype(np.int16).reshape(8192, 1, 8)
    y = check_bit_exact(q, xq, stream=False).run(xq)
    assert len(np.unique(y)) > 2  # not all saturated: the requantization itself is compared


@pytest.mark.parametrize("kind", ["Softmax", "LogSoftmax"])
def test_softmax_over_hostile_rows(kind):
    net = _net([Dense(np.random.default_rng(1).normal(0, 2, (7, 3)).astype(np.float32)),
                Activation(Act.make(kind), 7)], 3)  # fmt: skip
    calib = np.random.default_rng(0).standard_normal((16, 2, 3)).astype(np.float32)
    q = quantize(net, "int16", calib)
    check_bit_exact(q, fx.quantize(hostile_input(500, 3, 3, 2), q.in_scale))


@pytest.mark.parametrize("quant, K, acc32", [("int8", 2100, False), ("int8", 40, True),
                                             ("int16", 1, True), ("int16", 40, False)])
def test_dense_accumulator_widths(quant, K, acc32):
    rng = np.random.default_rng(K)
    net = _net([Dense(rng.uniform(-1, 1, (33, K)).astype(np.float32),
                      rng.uniform(-1, 1, 33).astype(np.float32))], K)  # fmt: skip
    q = quantize(net, quant, rng.standard_normal((8, 2, K)).astype(np.float32))
    assert (q.layers[0].acc_bound <= fx.INT32_MAX) == acc32
    check_bit_exact(q, fx.quantize(hostile_input(40, 2, K, 3), q.in_scale))


# -- LayerNorm ----------------------------------------------------------------------------------------
def _layernorm(F: int, seed: int, eps: float = 1e-5, beta: bool = True) -> LayerNorm:
    rng = np.random.default_rng(seed)
    return LayerNorm(rng.uniform(0.5, 1.5, F).astype(np.float32),
                     rng.uniform(-0.3, 0.3, F).astype(np.float32) if beta else None, eps)  # fmt: skip


@pytest.mark.parametrize("quant", QUANTS)
def test_layernorm_long_saturating_stream_equals_reference(quant):
    """4000 steps of +-inf, NaN, -1e30 and 50 sigma into LayerNorm -> LSTM -> LayerNorm -> Dense:
    the stretch held at +inf makes every input row constant (the epsilon path), the LSTM's h
    saturates under the second LayerNorm."""
    net = _net([_layernorm(4, 1), _cell("lstm", 4, 8, 2, wscale=3.0), _layernorm(8, 3, 1e-3),
                Dense(np.random.default_rng(4).normal(0, 0.4, (3, 8)).astype(np.float32))], 4)  # fmt: skip
    calib = np.random.default_rng(0).standard_normal((32, 4, 4)).astype(np.float32)
    q = quantize(net, quant, calib)
    xq = fx.quantize(hostile_input(4000, 2, 4, 5), q.in_scale)
    assert (xq[1400:1900] == fx.INT16_MAX).all()  # constant rows
    check_bit_exact(q, xq)
    h, _ = fx.run_int(QNetwork(q.layers[:2], q.in_scale, q.layers[1].out_scale, quant, q.source), xq)
    assert int(np.abs(h.astype(np.int64)).max()) >= 32000


def _rows_of_one_unit(T: int, F: int) -> np.ndarray:
    """Rows of zeros with one feature at 1 (a variance of one unit of s_in / 16), at the rails,
    and random: [T, 2, F] int16."""
    rng = np.random.default_rng(F)
    x = rng.integers(-32768, 32768, (T, 2, F)).astype(np.int16)
    x[: T // 3] = 0
    x[: T // 3, 0, 0] = 1
    x[T // 3 : T // 2, 1] = -32768
    x[T // 3 : T // 2, 1, -1] = 32767
    return x


LN_EDGES = [("one_feature", 1, 1e-5), ("two_features_tiny_eps", 2, 1e-30),
            ("variance_of_one_unit", 600, 1e-30), ("eps_beyond_the_clamp", 5, 3e38),
            ("30000_features", 30000, 1e-5)]  # fmt: skip


@pytest.mark.parametrize("name, F, eps", LN_EDGES, ids=[e[0] for e in LN_EDGES])
def test_layernorm_edges_equal_reference(name, F, eps):
    q = quantize(_net([_layernorm(F, F, eps)], F), "int16",
                 np.random.default_rng(1).standard_normal((4, 2, F)).astype(np.float32))  # fmt: skip
    ln = q.layers[0]
    if eps == 1e-30:
        assert ln.eps_q == 0  # V = max(1, ...) keeps the square root defined
    if eps == 3e38:
        assert ln.eps_q == fx.EPS_Q_MAX
    check_bit_exact(q, _rows_of_one_unit(6, F), stream=F < 1000)


FIXTURES = Path(__file__).parent / "data" / "fixtures"
LN_FIXTURES = [e["name"] for e in json.loads((FIXTURES / "index.json").read_text())
               if not e["error"] and any("LayerNorm" in c for c in e["covers"])]  # fmt: skip


@pytest.mark.parametrize("quant, bar", [("int16", 1e-3), ("int8", 1e-2)])
@pytest.mark.parametrize("name", LN_FIXTURES)
def test_layernorm_fixture_meets_the_bar_and_equals_reference(name, quant, bar):
    """Converted with its own stored input as calibration: the C runtime's output within the bar
    of onnxruntime's (the fixture's expected output, over its range), and the C integers equal
    the reference's."""
    import rnnedge
    from rnnedge.blob.read import read_blob, to_qnetwork
    from rnnedge.converter import to_network

    x = np.load(FIXTURES / f"{name}.input.npy")
    expected = np.load(FIXTURES / f"{name}.expected.npy")
    q = quantize(to_network(FIXTURES / f"{name}.onnx"), quant, x)
    assert any(type(layer).__name__ == "QLayerNorm" for layer in q.layers)
    blob = write_blob(q)
    model = rnnedge.Model.from_bytes(blob)
    y = model.run(x)
    err = float(np.abs(y - expected).max() / (expected.max() - expected.min()))
    assert err <= bar, f"{name} {quant}: {err:.3g}"
    xq = fx.quantize(to_tbf(x, q.source.input.axes), q.in_scale)
    check_bit_exact(to_qnetwork(read_blob(blob)), xq)


GOOD_FIXTURES = [e for e in json.loads((FIXTURES / "index.json").read_text()) if not e["error"]]


@pytest.mark.parametrize("quant", QUANTS)
@pytest.mark.parametrize("entry", GOOD_FIXTURES, ids=[e["name"] for e in GOOD_FIXTURES])
def test_every_fixture_in_c_equals_the_reference_bit_for_bit(entry, quant):
    """Every convertible exporter fixture (side inputs fixed where its index entry says), quantized
    on its stored input: the C library's integers equal the numpy reference's, in sequence mode
    and stepped."""
    from rnnedge.blob.read import read_blob, to_qnetwork
    from rnnedge.converter import to_network

    name = entry["name"]
    x = np.load(FIXTURES / f"{name}.input.npy")
    q = quantize(to_network(FIXTURES / f"{name}.onnx", fixed=entry.get("fixed")), quant, x)
    blob = write_blob(q)
    xq = fx.quantize(to_tbf(x, q.source.input.axes), q.in_scale)
    check_bit_exact(to_qnetwork(read_blob(blob)), xq)


# -- the bundled example ---------------------------------------------------------------------------------
@pytest.mark.parametrize("quant", QUANTS)
def test_har_example_equals_reference(quant):
    from rnnedge.converter import to_network
    from rnnedge.examples import __path__ as examples

    net = to_network(f"{examples[0]}/har_lstm.onnx")
    data = np.load(f"{examples[0]}/har_test.npz")
    q = quantize(net, quant, data["x"][:20])
    xq = fx.quantize(np.transpose(data["x"], (1, 0, 2)), q.in_scale)  # [T, B, F]
    c = check_bit_exact(q, xq, stream=False)
    c.reset()
    probs = fx.dequantize(c.run(xq), q.out_scale)[0]
    assert np.mean(np.argmax(probs, -1) == data["y"]) >= 0.9
    c1 = CModel(write_blob(q), 1)  # streaming one sequence: the last step's output = the run's
    np.testing.assert_array_equal(c1.step_all(xq[:, :1]), fx.run_int(q, xq[:, :1])[0])


def test_take_last_split_and_slice_pass_int16_through():
    layer = _cell("lstm", 3, 4, 8, "bidirectional")
    net = _net([layer, TakeLast(8, 4)], 3)
    q = quantize(net, "int8", np.random.default_rng(0).standard_normal((6, 2, 3)).astype(np.float32))
    check_bit_exact(q, fx.quantize(hostile_input(9, 2, 3, 4), q.in_scale))


def test_c_boundary_equals_the_reference_quantize_and_dequantize():
    """rne_quantize_s16 / rne_dequantize_s16 (used by the binding) are fixedpoint.quantize /
    dequantize bit for bit: halves, rails, NaN, infinities, denormals, odd scales."""
    from rnnedge import fixedpoint

    rng = np.random.default_rng(5)
    special = np.array([0.0, -0.0, 0.5, -0.5, 1.5, -1.5, 2.5, -2.5, 32766.5, 32767.5, -32768.5,
                        -32767.5, 1e30, -1e30, np.inf, -np.inf, np.nan, 1e-45, -1e-45], np.float32)
    for scale in (1.0, 0.001794132, 3.0517578125e-05, 0.1, 7.0):
        x = np.concatenate([special * np.float32(scale), special,
                            (rng.standard_normal(5000) * 40000 * scale).astype(np.float32)])
        q = np.empty(x.shape, np.int16)
        lib.rne_quantize_s16(ffi.from_buffer("float[]", x), x.size, scale, ffi.from_buffer("int16_t[]", q))
        np.testing.assert_array_equal(q, fixedpoint.quantize(x, scale))
        allq = np.arange(-32768, 32768, dtype=np.int16)
        y = np.empty(allq.shape, np.float32)
        lib.rne_dequantize_s16(ffi.from_buffer("int16_t[]", allq), allq.size, scale, ffi.from_buffer("float[]", y))
        np.testing.assert_array_equal(y, fixedpoint.dequantize(allq, scale))


def _batchfirst_lstm(quant: str, x: np.ndarray, tmp_path: Path):
    """torch_lstm_batchfirst_seq_linear converted to `quant` (calibrated on x) and loaded."""
    onnx = Path(__file__).parent / "data" / "fixtures" / "torch_lstm_batchfirst_seq_linear.onnx"
    path = tmp_path / f"m.{quant}.rne"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rnnedge_convert(onnx, path, quant=quant, calibration=None if quant == "f32" else x)
    return rnnedge_load(path)


@pytest.mark.parametrize("quant", ("f32", "int8"))
def test_step_outputs_are_kept_across_output_pools(quant, tmp_path):
    """Stream.step hands out arrays cut from blocks of 64 (rne_step_float for integer models):
    150 steps held at once each keep their own values, equal to sequence mode's."""
    x = np.random.default_rng(3).normal(0, 1, (2, 150, 4)).astype(np.float32)  # [B, T, F]
    model = _batchfirst_lstm(quant, x, tmp_path)
    stream = model.stream(2)
    held = [stream.step(x[:, t]) for t in range(x.shape[1])]
    assert len({id(h) for h in held}) == len(held)
    np.testing.assert_array_equal(np.stack(held, axis=1), model.run(x))


@pytest.mark.parametrize("quant", ("f32", "int16", "int8"))
def test_step_into_writes_what_step_returns(quant, tmp_path):
    """Stream.step_into(x, out) gives step's numbers in the caller's array (rne_step_float for
    integer models), the same `out` every call; a batch-first model's [B, F] step layout."""
    x = np.random.default_rng(4).normal(0, 1, (2, 40, 4)).astype(np.float32)  # [B, T, F]
    model = _batchfirst_lstm(quant, x, tmp_path)
    a, b = model.stream(2), model.stream(2)
    out = np.full(a.step(x[:, 0]).shape, np.nan, np.float32)
    a.reset()
    for t in range(x.shape[1]):
        want = a.step(x[:, t])
        got = b.step_into(x[:, t].copy() if t % 2 else x[:, t], out)  # new arrays and a view
        assert got is out
        np.testing.assert_array_equal(out, want)
