#!/usr/bin/env python3
"""Write the C library's test vectors: tests/data/c/<case>.rne plus its input and expected output.

    python3 tests/make_c_vectors.py [--out tests/data/c] [--check]

It lives beside the tests it feeds (tests/test_c_vectors.py tests it; tests/data/MANIFEST.md lists
what made each data file) and imports this checkout's pure-Python modules: no build is needed.

Every case of the shared case table (tests/onnx_cases.py: each LSTM/GRU/RNN attribute, every
layer kind, whole pipelines) plus a few cases aimed at the C kernels' own edges (listed in
C_CASES below). For each case:

    <case>.rne        the blob, rnnedge.blob.write.write_blob(network) (alignment 64, or 16 for every
                      other case so that both are exercised)
    <case>.x.npy      the input, float32 [T, B, in_features] (the blob's time-major layout)
    <case>.y.npy      the expected output, float32 [T, B, out_features] ([1, B, F] many-to-one)
    <case>.state.npy  only for cases that start from a given state: float32 [n], the whole C state
                      buffer (docs/format.md "State and scratch": per recurrent layer h [D][B][H]
                      then c for LSTM, each block padded to 16 bytes) to load before the run

The .npy files are plain NumPy format version 1.0 ('<f4', C order), which csrc/tests/test_rnnedge.c
reads with a few lines of C. Expected outputs come from onnxruntime (one thread) running the case's
ONNX model, or from onnx's ReferenceEvaluator for the graphs onnxruntime refuses (layout=1); never
from rnnedge itself. The float numpy reference (rnnedge.reference.run_network) is computed too and
must agree within 1e-5 of the output scale, else the case is refused. With --check nothing is
written: the files on disk are compared with freshly generated ones, byte for byte except the
float expected outputs (<case>.y.npy of the f32 cases), which are compared within CHECK_TOL of
their scale: onnxruntime's and numpy's float kernels round differently on other CPUs and BLAS
builds. Every integer file, and every other file, must be identical.

Converted dataflow graphs (format version 2 beyond a pipeline: BINARY, SLICE, graph layouts) go
to tests/data/c/graph: tests/data/fixtures/graph's non-step float fixtures (GRAPH_CASES),
converted with rnnedge.converter.dag.to_graph, x their stored input, y onnxruntime's output on
the ONNX model, both in [T, B, F]; the float reference rnnedge.reference.run_graph must agree
within AGREE.

The integer formats' vectors go to tests/data/c/int (read by csrc/tests/test_int.c), named
q16_<case> / q8_<case> for int16 / int8; expected values come from the bit-exact reference
rnnedge.fixedpoint.run_int and are compared exactly:

    <case>.rne        rnnedge.quant.policy.quantize_network(network, quant, calibration) written
    <case>.x.npy      the int16 input [T, B, in] ('<i2'); <case>.y.npy the int16 output
    <case>.state.npy  the whole C state buffer to start from ('|u1' bytes), if the case has one
    <case>.final.npy  the whole C state buffer after the run ('|u1'), for models with state
    <case>.long.npy   instead of x and y, for long streams: uint32 [steps, batch, generator,
                      seed, crc32(y), crc32(final state)]; test_int.c generates x itself (int_x
                      below: a saturating LCG stream, or a sweep of every int16 value)
"""

from __future__ import annotations

import argparse
import io
import sys
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if __name__ == "__main__":  # a script: this checkout's rnnedge (pure Python, no build needed)
    sys.path.insert(0, str(ROOT))

import onnxruntime as ort  # noqa: E402

import onnx_cases as oc  # noqa: E402  (beside this file: tests/ is the script's directory)
from rnnedge import fixedpoint as fx  # noqa: E402
from rnnedge.errors import UnsupportedOpError  # noqa: E402
from rnnedge.blob.write import write_blob  # noqa: E402
from rnnedge.ir.layers import (  # noqa: E402
    Act, Activation, Dense, LayerNorm, Network, QNetwork, QRecurrent, Recurrent, TakeLast,
    TensorSpec,
)
from rnnedge.quant.policy import quantize_network  # noqa: E402
from rnnedge.reference import run_network  # noqa: E402

DEFAULT_OUT = ROOT / "tests" / "data" / "c"
AGREE = 1e-5  # max |onnxruntime - reference| relative to max(1, max |y|)
CHECK_TOL = 1e-6  # --check: a float expected output may move this much (relative to max(1, max |y|))


# -- extra cases for the C kernels' edges ----------------------------------------------------------
def _dense_nodes(g, rng, x: str, k: int, n: int) -> tuple[str, Dense]:
    """MatMul by W^T then Add b, as exporters write a Linear on [T, B, K]."""
    w = (rng.uniform(-1, 1, (n, k)) / np.sqrt(k)).astype(np.float32)
    b = rng.uniform(-0.5, 0.5, n).astype(np.float32)
    (y,) = g.op("MatMul", [x, g.const(np.ascontiguousarray(w.T), "W")])
    (y,) = g.op("Add", [y, g.const(b, "b")])
    return y, Dense(w, b)


def _squeeze_dir(g, y: str) -> str:
    (t,) = g.op("Squeeze", [y, g.const(np.array([1], np.int64))])
    return t


def _wide_dense(g, rng, x):
    """Dense 5 -> 600: more columns than one gemm panel (512), K not a multiple of 4."""
    y, dense = _dense_nodes(g, rng, x, 5, 600)
    return y, "TBF", [dense]


def _stream_stack(g, rng, x):
    """LSTM 4->8 -> GRU 8->6 -> Dense 6->3 -> LayerNorm: a streamable stack (ping-pong buffers,
    two state blocks) run over a longer sequence."""
    l1 = oc.RecurrentCase("c_stack_lstm", "lstm", hidden=8, inputs=4, initial_h=True,
                          initial_c=True).layer()
    l2 = oc.RecurrentCase("c_stack_gru", "gru", hidden=6, inputs=8, linear_before_reset=True,
                          initial_h=True).layer()
    y1 = recurrent_y(g, l1, x, 3)
    y2 = recurrent_y(g, l2, y1, 3)
    t, dense = _dense_nodes(g, rng, y2, 6, 3)
    gamma = rng.uniform(0.5, 1.5, 3).astype(np.float32)
    beta = rng.uniform(-0.3, 0.3, 3).astype(np.float32)
    (y,) = g.op("LayerNormalization", [t, g.const(gamma), g.const(beta)], axis=-1, epsilon=1e-4)
    return y, "TBF", [l1, l2, dense, LayerNorm(gamma, beta, 1e-4)]


def _rnn_square_last(g, rng, x):
    """RNN 4->4 then the last step: streamable many-to-one, in == out for every layer."""
    layer = oc.RecurrentCase("c_rnn_square", "rnn", hidden=4, inputs=4).layer()
    y = recurrent_y(g, layer, x, 2)
    (t,) = g.op("Gather", [y, g.const(np.array(-1, np.int64))], axis=0)
    return t, "BF", [layer, TakeLast(4, 4)]


def _lstm_softmax(g, rng, x):
    """LSTM 9->17 (4H = 68: four 16-float blocks and a tail of 4) -> Dense -> LogSoftmax."""
    layer = oc.RecurrentCase("c_lstm17", "lstm", hidden=17, inputs=9, peepholes=True).layer()
    y = recurrent_y(g, layer, x, 4)
    t, dense = _dense_nodes(g, rng, y, 17, 5)
    (t,) = g.op("LogSoftmax", [t], axis=-1)
    return t, "TBF", [layer, dense, Activation(Act.make("LogSoftmax"), 5)]


def recurrent_y(g, layer: Recurrent, x: str, batch: int) -> str:
    """The node for a single-direction layer, its Y squeezed to [T, B, H]."""
    y = oc.recurrent_node(g, layer, x, batch)[0]
    return _squeeze_dir(g, y)


C_CASES = [
    oc.PipelineCase("c_dense_wide_panel", 5, _wide_dense, steps=3, batch=2),
    oc.PipelineCase("c_stack_lstm_gru_dense_layernorm", 4, _stream_stack, steps=12, batch=3),
    oc.PipelineCase("c_rnn_square_last", 4, _rnn_square_last, steps=6, batch=2),
    oc.PipelineCase("c_lstm17_peepholes_logsoftmax", 9, _lstm_softmax, steps=5, batch=4),
    oc.RecurrentCase("c_lstm_long_sequence", "lstm", hidden=20, inputs=4, batch=1, steps=40),
    oc.RecurrentCase("c_gru_bidir_clip_long", "gru", direction="bidirectional", hidden=7,
                     inputs=5, batch=2, steps=25, clip=0.9, scale=3.0),
]


# -- writing ---------------------------------------------------------------------------------------
def npy_bytes(a: np.ndarray, dtype: str = "<f4") -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.ascontiguousarray(a, dtype=dtype), version=(1, 0))
    return buf.getvalue()


def state_buffer(net, state: list[tuple[np.ndarray, ...]]) -> np.ndarray:
    """The C state buffer holding `state` (run_network's layout: per recurrent layer (h,) or
    (h, c), each [D, B, H]): blocks in order, each padded to a multiple of 4 floats."""
    parts = []
    for arrays in state:
        for a in arrays:
            flat = np.asarray(a, np.float32).ravel()
            parts += [flat, np.zeros(-len(flat) % 4, np.float32)]
    return np.concatenate(parts)


def run_onnxruntime(built) -> np.ndarray:
    opts = ort.SessionOptions()
    opts.log_severity_level = 4  # a refused graph is reported below, not logged
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(built.model.SerializeToString(), opts,
                                providers=["CPUExecutionProvider"])  # fmt: skip
    y = sess.run([built.network.output.name], built.feeds)[0]
    return oc.to_tbf(y, built.network.output.axes).astype(np.float32)


def run_reference_evaluator(built) -> np.ndarray:
    """onnx's own ReferenceEvaluator on the case's model: the oracle for the graphs onnxruntime
    refuses (LSTM/GRU/RNN with layout=1), independent of rnnedge's numpy reference."""
    from onnx.reference import ReferenceEvaluator

    (y,) = ReferenceEvaluator(built.model).run([built.network.output.name], built.feeds)
    return oc.to_tbf(np.asarray(y), built.network.output.axes).astype(np.float32)


def expected_output(built, name: str) -> tuple[np.ndarray, str]:
    """The expected output from an ONNX runtime, never from rnnedge: onnxruntime, or onnx's
    ReferenceEvaluator where onnxruntime refuses the graph."""
    try:
        return run_onnxruntime(built), "onnxruntime"
    except Exception as e:  # onnxruntime refuses the graph
        why = str(e).splitlines()[0][-90:]
        print(f"  {name}: onnxruntime refused the graph (...{why}); using onnx's ReferenceEvaluator")
    try:
        return run_reference_evaluator(built), "onnx ReferenceEvaluator"
    except Exception as e:
        raise SystemExit(f"{name}: neither onnxruntime nor onnx's ReferenceEvaluator runs the "
                         f"graph ({str(e).splitlines()[0][:120]})") from None  # fmt: skip


def case_files(case, index: int) -> dict[str, bytes]:
    built = case.build()
    net = built.network
    x = np.asarray(built.x, np.float32)
    y_ref, _ = run_network(net, x, built.state)
    y, source = expected_output(built, case.name)
    if y.shape != y_ref.shape:
        raise SystemExit(f"{case.name}: {source} gives {y.shape}, the reference {y_ref.shape}")
    diff = float(np.max(np.abs(y - y_ref))) / max(1.0, float(np.max(np.abs(y))))
    if diff > AGREE:
        raise SystemExit(f"{case.name}: {source} and the reference differ by {diff:.2e}")
    files = {
        f"{case.name}.rne": write_blob(net, alignment=64 if index % 2 == 0 else 16),
        f"{case.name}.x.npy": npy_bytes(x),
        f"{case.name}.y.npy": npy_bytes(y),
    }
    if built.state is not None:
        files[f"{case.name}.state.npy"] = npy_bytes(state_buffer(net, built.state))
    print(f"  {case.name}: x {list(x.shape)} -> y {list(y.shape)} from {source} "
          f"(reference within {diff:.1e})")  # fmt: skip
    return files


# -- converted graphs (tests/data/c/graph) ---------------------------------------------------------
GRAPH_DIR = "graph"
GRAPH_CASES = ["glu_gru", "residual_lstm"]  # f32, a time axis, float input
FIXTURES = ROOT / "tests" / "data" / "fixtures" / "graph"


def graph_files() -> dict[str, bytes]:
    from rnnedge.converter.dag import to_graph
    from rnnedge.ir.layers import to_tbf
    from rnnedge.reference import run_graph

    files: dict[str, bytes] = {}
    for name in GRAPH_CASES:
        onnx_path = FIXTURES / f"{name}.onnx"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            g = to_graph(onnx_path)
        x_graph = np.load(FIXTURES / f"{name}.input.npy").astype(np.float32)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = opts.inter_op_num_threads = 1
        sess = ort.InferenceSession(str(onnx_path), opts, providers=["CPUExecutionProvider"])
        y_graph = sess.run(None, {sess.get_inputs()[0].name: x_graph})[0]
        x = np.ascontiguousarray(to_tbf(x_graph, g.input_spec.axes), np.float32)
        y = np.ascontiguousarray(to_tbf(np.asarray(y_graph, np.float32), g.output_spec.axes))
        y_ref, _ = run_graph(g, x.reshape(x.shape[:2] + g.values[g.input].shape))
        diff = float(np.max(np.abs(y - y_ref.reshape(y.shape)))) / max(1.0, float(np.max(np.abs(y))))
        if diff > AGREE:
            raise SystemExit(f"graph {name}: onnxruntime and the reference differ by {diff:.2e}")
        stem = f"{GRAPH_DIR}/{name}"
        files[f"{stem}.rne"] = write_blob(g)
        files[f"{stem}.x.npy"] = npy_bytes(x)
        files[f"{stem}.y.npy"] = npy_bytes(y)
        print(f"  graph {name}: {len(g.nodes)} nodes, x {list(x.shape)} -> y {list(y.shape)} from "
              f"onnxruntime (reference within {diff:.1e})")  # fmt: skip
    return files


# -- the integer formats -------------------------------------------------------------------------
INT_DIR = "int"
QUANT_TAG = {"int16": "q16", "int8": "q8"}
LONG_STEPS = 4000
GEN_LCG, GEN_SWEEP = 0, 1


def int_x(generator: int, seed: int, steps: int, batch: int, features: int) -> np.ndarray:
    """The int16 input [steps, batch, features] of a long case, as test_int.c's gen_x makes it.
    GEN_SWEEP: every int16 value in turn, from -32768. GEN_LCG: a 32-bit LCG (s = s * 1664525 +
    1013904223) in four phases of steps/4: v (uniform over int16, from bits 8..23 of s); +32767
    when the top byte of s is < 128, else v; -32768; 0 when the top byte is < 64, else v >> 4.
    Phases 1 and 2 hold the model's input at the rails, which drives the state into saturation."""
    n = steps * batch * features
    if generator == GEN_SWEEP:
        return ((np.arange(n) % 65536) - 32768).astype(np.int16).reshape(steps, batch, features)
    out = np.empty(n, np.int16)
    s, per_step = seed, batch * features
    for i in range(n):
        s = (s * 1664525 + 1013904223) & 0xFFFFFFFF
        top, u = s >> 24, (s >> 8) & 0xFFFF
        v = u - 65536 if u >= 32768 else u
        phase = 4 * (i // per_step) // steps
        out[i] = (v, 32767 if top < 128 else v, -32768, 0 if top < 64 else v >> 4)[phase]
    return out.reshape(steps, batch, features)


def crc32(data: bytes) -> int:
    import binascii

    return binascii.crc32(data)


def c_state(state: list[tuple[np.ndarray, ...]]) -> bytes:
    """The C state buffer of `state` (run_int's layout): per recurrent layer h int16 [D][B][H]
    then, for an LSTM, c int32, each block padded to 16 bytes; 16 zero bytes (rne_state_size's
    minimum) for a model without state."""
    out = b""
    for arrays in state:
        for a in arrays:
            raw = np.ascontiguousarray(a).tobytes()
            out += raw + bytes(-len(raw) % 16)
    return out or bytes(16)


def int_state(qnet: QNetwork, state: list[tuple[np.ndarray, ...]] | None):
    """A float run_network state as the integer one: h at the layer's scale, c in Q11.20."""
    if state is None:
        return None
    cells = [L for L in qnet.layers if isinstance(L, QRecurrent)]
    out = []
    for L, arrays in zip(cells, state):
        h = fx.quantize(arrays[0], L.out_scale)
        out.append((h,) if L.cell != "lstm" else (h, fx.quantize_cell(arrays[1])))
    return out


def _quantize(net: Network, quant: str, calibration: np.ndarray) -> QNetwork:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # mixed-precision notes: the blob records the outcome
        return quantize_network(net, quant, calibration)


def int_case_files(name: str, net: Network, quant: str, calibration: np.ndarray, x: np.ndarray,
                   state: list | None = None, index: int = 0) -> dict[str, bytes]:  # fmt: skip
    """The files of one integer case: x [T, B, F] float, quantized at the input scale."""
    q = _quantize(net, quant, calibration)
    stem = f"{INT_DIR}/{QUANT_TAG[quant]}_{name}"
    xq = fx.quantize(x, q.in_scale)
    st = int_state(q, state)
    yq, final = fx.run_int(q, xq, st)
    files = {
        f"{stem}.rne": write_blob(q, alignment=64 if index % 2 == 0 else 16),
        f"{stem}.x.npy": npy_bytes(xq, "<i2"),
        f"{stem}.y.npy": npy_bytes(yq, "<i2"),
    }
    if st is not None:
        files[f"{stem}.state.npy"] = npy_bytes(np.frombuffer(c_state(st), np.uint8), "|u1")
    if final:
        files[f"{stem}.final.npy"] = npy_bytes(np.frombuffer(c_state(final), np.uint8), "|u1")
    return files


def long_case_files(name: str, net: Network, quant: str, generator: int, steps: int, batch: int,
                    seed: int = 1) -> dict[str, bytes]:  # fmt: skip
    """A long-stream case: the blob and the CRCs of what run_int gives on int_x's input."""
    rng = np.random.default_rng(seed)
    calib = rng.standard_normal((32, 4, net.in_features)).astype(np.float32)
    q = _quantize(net, quant, calib)
    stem = f"{INT_DIR}/{QUANT_TAG[quant]}_{name}"
    xq = int_x(generator, seed, steps, batch, net.in_features)
    yq, final = fx.run_int(q, xq)
    spec = [steps, batch, generator, seed, crc32(yq.tobytes()), crc32(c_state(final))]
    return {f"{stem}.rne": write_blob(q, alignment=16),
            f"{stem}.long.npy": npy_bytes(np.array(spec, np.uint32), "<u4")}  # fmt: skip


def _net(layers: list, features: int) -> Network:
    out = layers[-1].out_features
    return Network(layers, TensorSpec("x", "TBF", [None, None, features]),
                   TensorSpec("y", "TBF", [None, None, out]), name="c_int_long")  # fmt: skip


def _cell(rng, cell: str, I: int, H: int, direction: str = "forward", wscale: float = 1.0,
          **kw) -> Recurrent:  # fmt: skip
    G, D = {"lstm": 4, "gru": 3, "rnn": 1}[cell], 2 if direction == "bidirectional" else 1
    f32 = lambda a: np.asarray(a, np.float32)  # noqa: E731
    return Recurrent(cell, direction, f32(rng.normal(0, wscale / np.sqrt(I), (D, G * H, I))),
                     f32(rng.normal(0, 1 / np.sqrt(H), (D, G * H, H))),
                     f32(rng.normal(0, 0.3, (D, 2 * G * H))), **kw)  # fmt: skip


def long_networks() -> list[tuple[str, Network]]:
    """Models for long streams, each built to reach an edge of the integer arithmetic."""
    rng = np.random.default_rng(2024)
    # an LSTM whose gates sit open (i, f, g biases +6, +6, +4): c integrates ~1 per step from
    # +-1500 and saturates int32 Q11.20 (2048); peepholes then multiply a saturated c
    sat = _cell(rng, "lstm", 3, 6, wscale=0.1,
                P=np.asarray(rng.normal(0, 0.05, (1, 18)), np.float32),
                initial_c=np.asarray(rng.uniform(-1500, 1500, (1, 6)), np.float32))  # fmt: skip
    sat.B[0, 0:6] += 6.0  # i
    sat.B[0, 12:18] += 6.0  # f
    sat.B[0, 18:24] += 4.0  # g
    coupled = _cell(rng, "lstm", 4, 5, input_forget=True, clip=3.0,
                    activations=[[Act.make("HardSigmoid", 0.25, 0.5), Act.make("Tanh"),
                                  Act.make("Tanh")]])  # fmt: skip
    counting = Recurrent("rnn", "forward", np.full((1, 3, 2), 0.2, np.float32),
                         np.eye(3, dtype=np.float32)[None],
                         activations=[[Act.make("Relu")]])  # fmt: skip
    stack = [_cell(rng, "lstm", 4, 8), _cell(rng, "gru", 8, 6, linear_before_reset=True),
             Dense(np.asarray(rng.normal(0, 0.4, (3, 6)), np.float32),
                   np.asarray(rng.normal(0, 0.2, 3), np.float32)),
             Activation(Act.make("Softmax"), 3)]  # fmt: skip
    return [
        ("long_lstm_saturating_peepholes", _net([sat], 3)),
        ("long_lstm_coupled_clip_hardsigmoid", _net([coupled], 4)),
        ("long_gru", _net([_cell(rng, "gru", 4, 5, wscale=2.0)], 4)),
        ("long_bigru_linear_before_reset",
         _net([_cell(rng, "gru", 3, 4, "bidirectional", linear_before_reset=True)], 3)),
        ("long_rnn_relu_counting", _net([counting], 2)),
        ("long_rnn_tanh_clip", _net([_cell(rng, "rnn", 3, 7, wscale=3.0, clip=1.0)], 3)),
        ("long_stack_lstm_gru_dense_softmax", _net(stack, 4)),
        ("long_layernorm_lstm_layernorm_dense", _net(layernorm_stack(), 4)),
    ]


def _layernorm(rng, F: int, eps: float, gamma: tuple[float, float] = (0.5, 1.5)) -> LayerNorm:
    return LayerNorm(np.asarray(rng.uniform(*gamma, F), np.float32),
                     np.asarray(rng.uniform(-0.3, 0.3, F), np.float32), eps)  # fmt: skip


def layernorm_stack() -> list:
    """LayerNorm on the raw input (a row held at a rail is constant: the epsilon path), after an
    LSTM driven into saturation, and before the head."""
    rng = np.random.default_rng(2025)
    return [_layernorm(rng, 4, 1e-5), _cell(rng, "lstm", 4, 8), _layernorm(rng, 8, 1e-3),
            Dense(np.asarray(rng.normal(0, 0.4, (3, 8)), np.float32))]  # fmt: skip


def sweep_networks() -> list[tuple[str, Network, str, int]]:
    """Activation layers over every int16 input (the tables, every clamp), softmax over a
    saturating stream, and the two accumulator widths of the other weight type."""
    rng = np.random.default_rng(99)
    acts = [("Identity",), ("Relu",), ("LeakyRelu", 0.1), ("ThresholdedRelu", 0.4),
            ("ScaledTanh", -1.5, 0.7), ("HardSigmoid", 0.2, 0.5), ("Elu", 0.9), ("Softsign",),
            ("Softplus",), ("Affine", -0.75, 0.3), ("Clip", -1.0, 2.5), ("Sigmoid",), ("Tanh",),
            ("Log",)]
    out = [(f"sweep_act_{a[0].lower()}", _net([Activation(Act.make(*a), 16)], 16), "int16",
            GEN_SWEEP) for a in acts]  # fmt: skip
    for kind in ("Softmax", "LogSoftmax"):
        out.append((f"long_act_{kind.lower()}", _net([Activation(Act.make(kind), 5)], 5), "int16",
                    GEN_LCG))  # fmt: skip
    wide = Dense(np.asarray(rng.uniform(-1, 1, (3, 2100)), np.float32))  # int8: sum |w| > 2^16
    narrow = Dense(np.asarray(rng.uniform(-1, 1, (4, 1)), np.float32),
                   np.asarray(rng.uniform(-1, 1, 4), np.float32))  # int16 with one input: int32
    out.append(("long_dense_s8_acc64", _net([wide], 2100), "int8", GEN_LCG))
    out.append(("long_dense_s16_acc32", _net([narrow], 1), "int16", GEN_LCG))
    # LayerNorm over every int16 value, and over random rows of 3 (every variance from 0 up)
    ln_rng = np.random.default_rng(2026)
    out.append(("sweep_layernorm_16", _net([_layernorm(ln_rng, 16, 1e-6, (-2, 2))], 16), "int16",
                GEN_SWEEP))  # fmt: skip
    out.append(("long_layernorm_3", _net([_layernorm(ln_rng, 3, 1e-6, (-2, 2))], 3), "int16",
                GEN_LCG))  # fmt: skip
    return out


def int_files() -> dict[str, bytes]:
    """Every integer case: the shared cases the integer formats support, the C cases above, long
    streams and sweeps. Recurrent cases alternate int16 / int8 (both weight widths through every
    attribute), the others come in both formats where they have weights."""
    files: dict[str, bytes] = {}
    skipped = []
    for i, case in enumerate(oc.CASES + C_CASES):
        built = case.build()
        net = built.network
        weighted = any(isinstance(l, (Dense, Recurrent)) for l in net.layers)
        single = isinstance(case, oc.RecurrentCase) and not case.name.startswith("c_")
        quants = [("int16", "int8")[i % 2]] if single else ["int16", "int8"] if weighted else ["int16"]
        try:
            for quant in quants:
                files.update(int_case_files(case.name, net, quant, built.feeds[net.input.name],
                                            built.x, built.state, i))  # fmt: skip
        except UnsupportedOpError:
            skipped.append(case.name)
    for name, net in long_networks():
        for quant in ("int16", "int8"):
            files.update(long_case_files(name, net, quant, GEN_LCG, LONG_STEPS, 2))
    for name, net, quant, gen in sweep_networks():
        steps = 65536 // net.in_features if gen == GEN_SWEEP else min(1000, 40000 // net.in_features)
        files.update(long_case_files(name, net, quant, gen, steps, 1))
    print(f"  integer: {sum(n.endswith('.rne') for n in files)} cases; no integer form "
          f"(refused by name, as they should be): {', '.join(skipped)}")  # fmt: skip
    return files


def same_file(path: Path, data: bytes, float_output: bool) -> bool:
    """Whether the file on disk is what was generated: the same bytes, or for a float expected
    output the same shape and dtype with values within CHECK_TOL of its scale."""
    if not path.is_file():
        return False
    old = path.read_bytes()
    if old == data or not float_output:
        return old == data
    try:
        a = np.load(io.BytesIO(old), allow_pickle=False)
    except ValueError:
        return False
    b = np.load(io.BytesIO(data), allow_pickle=False)
    if a.dtype != b.dtype or a.shape != b.shape:
        return False
    scale = max(1.0, float(np.max(np.abs(b)))) if b.size else 1.0
    return not b.size or float(np.max(np.abs(a.astype(np.float64) - b))) <= CHECK_TOL * scale


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--check", action="store_true", help="compare with the files on disk")
    args = ap.parse_args()
    files: dict[str, bytes] = {}
    for i, case in enumerate(oc.CASES + C_CASES):
        files.update(case_files(case, i))
    files.update(graph_files())
    n_float = len(files)
    float_y = {n for n in files if n.endswith(".y.npy")}
    files.update(int_files())
    total = sum(len(b) for b in files.values())
    print(f"{len(files)} files ({n_float} f32, {len(files) - n_float} integer), {total} bytes")
    on_disk = {p.relative_to(args.out).as_posix() for p in args.out.rglob("*") if p.is_file()}
    if args.check:
        stale = [n for n, b in files.items() if not same_file(args.out / n, b, n in float_y)]
        extra = sorted(on_disk - set(files))
        for n in stale:
            print(f"differs or missing: {n}")
        for n in extra:
            print(f"not generated: {n}")
        return 1 if stale or extra else 0
    (args.out / INT_DIR).mkdir(parents=True, exist_ok=True)
    (args.out / GRAPH_DIR).mkdir(parents=True, exist_ok=True)
    for n in on_disk - set(files):
        if n.endswith((".rne", ".npy")):
            (args.out / n).unlink()
    for name, data in files.items():
        (args.out / name).write_bytes(data)
    return 0


if __name__ == "__main__":
    sys.exit(main())
