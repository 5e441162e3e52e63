#!/usr/bin/env python3
"""Write the C library's test vectors: tests/data/c/<case>.rne plus its input and expected output.

    python3 tools/make_c_vectors.py [--out tests/data/c] [--check]

Every case of the shared case table (tests/onnx_cases.py: each LSTM/GRU/RNN attribute, every
layer kind, whole pipelines) plus a few cases aimed at the C kernels' own edges (listed in
C_CASES below). For each case:

    <case>.rne        the blob, rnnedge.format.write_blob(network) (alignment 64, or 16 for every
                      other case so that both are exercised)
    <case>.x.npy      the input, float32 [T, B, in_features] (the blob's time-major layout)
    <case>.y.npy      the expected output, float32 [T, B, out_features] ([1, B, F] many-to-one)
    <case>.state.npy  only for cases that start from a given state: float32 [n], the whole C state
                      buffer (docs/format.md "State and scratch": per recurrent layer h [D][B][H]
                      then c for LSTM, each block padded to 16 bytes) to load before the run

The .npy files are plain NumPy format version 1.0 ('<f4', C order), which csrc/tests/test_rnnedge.c
reads with a few lines of C. Expected outputs come from onnxruntime (one thread) running the case's
ONNX model; the float numpy reference (rnnedge.reference.run_network) is computed too and must agree
within 1e-5 of the output scale, else the case is refused. With --check nothing is written: the
files on disk are compared with freshly generated ones.
"""

from __future__ import annotations

import argparse
import io
import sys
import types
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))


def _pure_python_package() -> None:
    """Make `import rnnedge.x` load the pure-Python modules without running rnnedge/__init__.py,
    which loads the compiled C library: the vectors that test that library must not need it."""
    pkg = types.ModuleType("rnnedge")
    pkg.__path__ = [str(ROOT / "rnnedge")]  # type: ignore[attr-defined]
    sys.modules.setdefault("rnnedge", pkg)


_pure_python_package()

import onnxruntime as ort  # noqa: E402

import onnx_cases as oc  # noqa: E402
from rnnedge.format import write_blob  # noqa: E402
from rnnedge.layers import Act, Activation, Dense, LayerNorm, Recurrent, TakeLast  # noqa: E402
from rnnedge.reference import run_network  # noqa: E402

DEFAULT_OUT = ROOT / "tests" / "data" / "c"
AGREE = 1e-5  # max |onnxruntime - reference| relative to max(1, max |y|)


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
def npy_bytes(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.ascontiguousarray(a, dtype="<f4"), version=(1, 0))
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


def case_files(case, index: int) -> dict[str, bytes]:
    built = case.build()
    net = built.network
    x = np.asarray(built.x, np.float32)
    y_ref, _ = run_network(net, x, built.state)
    try:
        y = run_onnxruntime(built)
        source = "onnxruntime"
    except Exception as e:  # onnxruntime refuses the graph: the reference is the fallback
        why = str(e).splitlines()[0][-90:]
        print(f"  {case.name}: onnxruntime refused the graph (...{why}); using the numpy reference")
        y, source = np.asarray(y_ref, np.float32), "reference"
    if y.shape != y_ref.shape:
        raise SystemExit(f"{case.name}: onnxruntime gives {y.shape}, the reference {y_ref.shape}")
    diff = float(np.max(np.abs(y - y_ref))) / max(1.0, float(np.max(np.abs(y))))
    if diff > AGREE:
        raise SystemExit(f"{case.name}: onnxruntime and the reference differ by {diff:.2e}")
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


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--check", action="store_true", help="compare with the files on disk")
    args = ap.parse_args()
    files: dict[str, bytes] = {}
    for i, case in enumerate(oc.CASES + C_CASES):
        files.update(case_files(case, i))
    total = sum(len(b) for b in files.values())
    print(f"{len(files)} files, {total} bytes")
    if args.check:
        stale = [n for n, b in files.items()
                 if not (args.out / n).is_file() or (args.out / n).read_bytes() != b]  # fmt: skip
        extra = sorted(p.name for p in args.out.glob("*") if p.name not in files)
        for n in stale:
            print(f"differs or missing: {n}")
        for n in extra:
            print(f"not generated: {n}")
        return 1 if stale or extra else 0
    args.out.mkdir(parents=True, exist_ok=True)
    for p in args.out.glob("*"):
        if p.suffix in (".rne", ".npy") and p.name not in files:
            p.unlink()
    for name, data in files.items():
        (args.out / name).write_bytes(data)
    return 0


if __name__ == "__main__":
    sys.exit(main())
