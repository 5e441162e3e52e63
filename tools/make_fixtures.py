#!/usr/bin/env python3
"""Make the exporter fixtures in tests/data/fixtures/: real models from the real exporters.

Each fixture is a small model trained briefly on a synthetic task (so its activations have
realistic ranges), exported to ONNX, and saved as
    NAME.onnx           the exported model
    NAME.input.npy      an input, in the graph's own layout
    NAME.expected.npy   onnxruntime's first output for it
    NAME.state.npz      (state graphs) the values fed to the state inputs (h0, c0, ...)
    NAME.final.npz      (state graphs) onnxruntime's other outputs (hn, cn, ...)
plus index.json: for each fixture its exporter, what it covers, whether it can be streamed and,
for the models rnnedge must refuse, the error expected.

    python3 tools/make_fixtures.py                 # everything
    python3 tools/make_fixtures.py --only torch_   # the fixtures whose name starts so
    python3 tools/make_fixtures.py --no-keras
    python3 tools/make_fixtures.py --proj-size     # only tests/data/dynamo_lstm_proj_size.onnx

The last is a broken graph kept for the converter's tests, not an index.json fixture: the dynamo
exporter's nn.LSTM(4, 8, proj_size=3, batch_first=True), which onnxruntime refuses to run
(initial_c [1, B, 8] against hidden_size 3) and rnnedge must refuse by name (issue #11 item 6).

PyTorch fixtures need torch (`pip install torch==2.13.0`) and, for the dynamo exporter,
onnxscript. Keras fixtures run in a separate interpreter (--tf-python, default
/work/venvs/tf/bin/python) with tensorflow-cpu, tf-keras and tf2onnx installed, so that this
interpreter's onnx and protobuf stay untouched:
    python3 -m venv /work/venvs/tf && /work/venvs/tf/bin/pip install tensorflow-cpu tf-keras tf2onnx
This is a fixture tool: rnnedge and its tests never import torch or tensorflow.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "data" / "fixtures"
TF_PYTHON = "/work/venvs/tf/bin/python"
FEATURES = 4  # input features of every fixture
BATCH, STEPS = 3, 9  # the stored input
TRAIN_N, TRAIN_T, TRAIN_STEPS = 64, 12, 80


# --- the synthetic task ------------------------------------------------------------------------
def signals(rng: np.random.Generator, n: int, t: int, f: int = FEATURES) -> np.ndarray:
    """[n, t, f] noisy sinusoids of random frequency, phase and amplitude per channel."""
    time = np.arange(t)[None, :, None]
    freq = rng.uniform(0.1, 0.9, (n, 1, f))
    phase = rng.uniform(0, 2 * np.pi, (n, 1, f))
    amp = rng.uniform(0.5, 2.0, (n, 1, f))
    return (amp * np.sin(freq * time + phase) + 0.1 * rng.standard_normal((n, t, f))).astype(np.float32)


def targets(x: np.ndarray, out: int, final_act: str, per_step: bool) -> np.ndarray:
    """What the model learns: a squashed running mean of the channels, shaped for the head's
    last activation. x [n, t, f] -> [n, t, out] (per step) or [n, out]."""
    running = np.cumsum(x, axis=1) / np.arange(1, x.shape[1] + 1)[None, :, None]
    mix = np.stack([running[..., k % x.shape[2]] * (1 + k) - running[..., (k + 1) % x.shape[2]]
                    for k in range(out)], axis=-1)  # fmt: skip
    z = mix if per_step else mix[:, -1]
    if final_act in ("softmax", "logsoftmax"):
        e = np.exp(z - z.max(axis=-1, keepdims=True))
        p = e / e.sum(axis=-1, keepdims=True)
        return (np.log(p) if final_act == "logsoftmax" else p).astype(np.float32)
    if final_act == "sigmoid":
        return (1 / (1 + np.exp(-z))).astype(np.float32)
    if final_act == "relu":
        return np.maximum(z, 0).astype(np.float32)
    return np.tanh(z).astype(np.float32)


# --- the fixture table -------------------------------------------------------------------------
@dataclass
class Spec:
    """One fixture. exporter: torch (TorchScript, dynamo=False), dynamo, keras2 (tf_keras) or
    keras3, through tf2onnx for Keras. error: the message part rnnedge must refuse it with."""

    name: str
    exporter: str
    covers: list[str]
    cell: str = "LSTM"
    hidden: int = 8
    layers: int = 1
    bidirectional: bool = False
    batch_first: bool = True
    nonlinearity: str = "tanh"
    dropout: float = 0.0
    head: str = "seq"  # seq: every step; last: out[:, -1, :]; hn: h_n[-1]
    head_acts: tuple[str, ...] = ()
    out: int = 3
    front: str | None = None  # an activation: a Linear + activation front end
    ln_before: bool = False
    ln_after: bool = False
    state: bool = False  # h0 (, c0) graph inputs -> hn (, cn) graph outputs
    steps: int | None = None  # a fixed time length (1: a one-step streaming model)
    opset: int = 17
    center: bool = False  # subtract a constant buffer, unsqueezed to [1, 1, F], from the input
    fold: bool = True  # torch.onnx.export's do_constant_folding
    side: int | None = None  # a scalar int64 input `sr` choosing one of two nets (torch.cond ->
    # an ONNX If), fixed to this value at conversion; both fixtures of a pair are one same model
    keras: str = ""  # the Keras model, for keras2 / keras3 (see keras_model)
    error: str | None = None

    @property
    def streamable(self) -> bool:
        backwards = "bidirectional" in self.keras or "go_backwards" in self.keras
        return not self.bidirectional and not backwards and self.error is None

    @property
    def final_act(self) -> str:
        return self.head_acts[-1] if self.head_acts else ""


def _t(name: str, covers: list[str], **kw: object) -> Spec:
    return Spec(name, "torch", covers, **kw)  # type: ignore[arg-type]


SPECS: list[Spec] = [
    _t("torch_lstm_batchfirst_seq_linear", ["LSTM", "batch_first=True", "head on every step"],
       hidden=16),
    _t("torch_gru_2layer_timefirst_last_softmax",
       ["GRU", "2 layers", "batch_first=False", "head on out[-1]", "Softmax"],
       cell="GRU", hidden=12, layers=2, batch_first=False, head="last", head_acts=("softmax",)),
    _t("torch_rnn_tanh_hn_sigmoid", ["RNN tanh", "head on h_n[-1]", "Sigmoid"],
       cell="RNN", hidden=10, head="hn", head_acts=("sigmoid",), out=2),
    _t("torch_rnn_relu_2layer_seq_tanh", ["RNN relu", "2 layers", "Tanh"],
       cell="RNN", nonlinearity="relu", layers=2, head_acts=("tanh",)),
    _t("torch_lstm_bidir_3layer_dropout_last_logsoftmax",
       ["LSTM", "bidirectional", "3 layers", "dropout", "head on out[:, -1, :]", "LogSoftmax"],
       layers=3, bidirectional=True, dropout=0.2, head="last", head_acts=("logsoftmax",), out=4),
    _t("torch_gru_4layer_dropout_hn_relu", ["GRU", "4 layers", "dropout", "head on h_n[-1]", "ReLU"],
       cell="GRU", layers=4, dropout=0.1, head="hn", head_acts=("relu",)),
    _t("torch_gru_bidir_2layer_hn_linear",
       ["GRU", "bidirectional", "2 layers", "head on h_n[-1] (last layer's reverse direction)"],
       cell="GRU", layers=2, bidirectional=True, head="hn"),
    _t("torch_rnn_bidir_timefirst_seq_linear", ["RNN tanh", "bidirectional", "batch_first=False"],
       cell="RNN", bidirectional=True, batch_first=False, hidden=6),
    _t("torch_lstm_front_layernorm_seq_sigmoid",
       ["LSTM", "Linear + ReLU front end", "LayerNorm before", "LayerNorm after",
        "LayerNormalization op (opset 17)", "Sigmoid"],
       hidden=16, front="relu", ln_before=True, ln_after=True, head_acts=("sigmoid",)),
    _t("torch_gru_layernorm_opset14_last_tanh",
       ["GRU", "Linear + Tanh front end", "LayerNorm written out as ReduceMean/Sub/Pow/Sqrt/Div "
        "(opset 14)", "head on out[:, -1, :]", "Tanh"],
       cell="GRU", hidden=12, front="tanh", ln_before=True, ln_after=True, head="last",
       head_acts=("tanh",), opset=14),
    _t("torch_lstm_state_2layer_seq", ["LSTM", "2 layers", "state in/out (h0, c0 -> hn, cn)"],
       layers=2, state=True),
    _t("torch_gru_state_one_step", ["GRU", "state in/out (h0 -> hn)", "one-step streaming model (T=1)"],
       cell="GRU", hidden=16, state=True, steps=1),
    _t("torch_lstm_opset11_hn_softmax",
       ["LSTM", "2 layers", "head on h_n[-1]", "Softmax", "opset 11 (Squeeze/Unsqueeze axes as "
        "attributes, Softmax over a 2-D coerced input)"],
       layers=2, head="hn", head_acts=("softmax",), opset=11),
    _t("torch_lstm_opset11_unfolded_center_seq",
       ["LSTM", "2 layers", "opset 11 exported with do_constant_folding=False: attribute-form "
        "Unsqueeze (and Concat/Slice) on constant paths (an input-centering buffer, the weights)"],
       layers=2, center=True, fold=False, opset=11),
    Spec("dynamo_lstm_2layer_last_softmax", "dynamo",
         ["dynamo exporter", "LSTM", "2 layers", "head on out[:, -1, :]", "Softmax"],
         layers=2, head="last", head_acts=("softmax",), opset=18),
    Spec("dynamo_gru_bidir_seq_sigmoid", "dynamo",
         ["dynamo exporter", "GRU", "bidirectional", "batch_first=False", "Sigmoid"],
         cell="GRU", bidirectional=True, batch_first=False, head_acts=("sigmoid",), opset=18),
    Spec("dynamo_lstm_front_layernorm_hn_relu", "dynamo",
         ["dynamo exporter", "LSTM", "Linear + ReLU front end", "LayerNorm before", "h_n[-1]", "ReLU"],
         front="relu", ln_before=True, head="hn", head_acts=("relu",), opset=18),
    Spec("dynamo_lstm_side_input_sr16000", "dynamo",
         ["dynamo exporter", "LSTM", "side input: scalar sr selects a branch (torch.cond -> If)",
          "converted with fixed={'sr': 16000}: the then-branch"], side=16000, opset=18),
    Spec("dynamo_lstm_side_input_sr8000", "dynamo",
         ["dynamo exporter", "LSTM", "side input: scalar sr selects a branch (torch.cond -> If)",
          "converted with fixed={'sr': 8000}: the else-branch"], side=8000, opset=18),
    Spec("dynamo_rnn_unrolled", "dynamo", ["dynamo exporter unrolls nn.RNN: refused by name"],
         cell="RNN", opset=18, error="found an unrolled recurrent net"),
    Spec("keras_lstm_dense_softmax", "keras2", ["Keras LSTM", "Dense head", "Softmax"],
         keras="lstm_dense_softmax", out=4, head_acts=("softmax",)),
    Spec("keras_gru_reset_after_timedistributed", "keras2",
         ["Keras GRU reset_after=True (linear_before_reset=1)", "TimeDistributed(Dense)"],
         keras="gru_reset_after_timedistributed"),
    Spec("keras_bidirectional_lstm_timedistributed_sigmoid", "keras2",
         ["Keras Bidirectional(LSTM)", "TimeDistributed(Dense)", "Sigmoid"],
         keras="bidirectional_lstm_timedistributed_sigmoid", out=2, head_acts=("sigmoid",)),
    Spec("keras_lstm_hard_sigmoid_go_backwards", "keras2",
         ["Keras LSTM recurrent_activation=hard_sigmoid (Keras 2: 0.2x+0.5)", "go_backwards=True",
          "Dense head"], keras="lstm_hard_sigmoid_go_backwards", out=1),
    Spec("keras_gru_lstm_stacked_dense", "keras2",
         ["Keras GRU -> LSTM stack", "Dense head", "Relu"], keras="gru_lstm_stacked_dense",
         head_acts=("relu",)),
    Spec("keras3_lstm_dense", "keras3", ["Keras 3 LSTM", "Dense head"], keras="lstm_dense"),
    Spec("keras_simplernn_unrolled", "keras2",
         ["Keras SimpleRNN: tf2onnx writes a Loop, read as the RNN cell (tf2onnx_loop.py)"],
         keras="simplernn"),
    Spec("keras_gru_reset_before_unrolled", "keras2",
         ["Keras GRU reset_after=False: tf2onnx writes a Loop, read as the GRU cell (tf2onnx_loop.py)"],
         keras="gru_reset_before"),
]


# --- PyTorch ----------------------------------------------------------------------------------
def torch_model(spec: Spec):  # -> torch.nn.Module
    import torch
    from torch import nn

    acts = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid,
            "softmax": lambda: nn.Softmax(dim=-1), "logsoftmax": lambda: nn.LogSoftmax(dim=-1)}  # fmt: skip

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            width = FEATURES
            self.front = None
            if spec.front:
                self.front = nn.Sequential(nn.Linear(FEATURES, 16), acts[spec.front]())
                width = 16
            self.ln_in = nn.LayerNorm(width) if spec.ln_before else None
            kw = {"nonlinearity": spec.nonlinearity} if spec.cell == "RNN" else {}
            self.rnn = getattr(nn, spec.cell)(width, spec.hidden, num_layers=spec.layers,
                                              batch_first=spec.batch_first, dropout=spec.dropout,
                                              bidirectional=spec.bidirectional, **kw)  # fmt: skip
            feats = spec.hidden * (2 if spec.bidirectional else 1)
            self.ln_out = nn.LayerNorm(feats) if spec.ln_after else None
            self.fc = nn.Linear(spec.hidden if spec.head == "hn" else feats, spec.out)
            self.acts = nn.Sequential(*[acts[a]() for a in spec.head_acts])
            if spec.center:
                self.register_buffer("center", torch.linspace(-0.2, 0.2, FEATURES))

        def forward(self, x, *state):
            if spec.center:
                x = x - self.center.unsqueeze(0).unsqueeze(0)
            if self.front is not None:
                x = self.front(x)
            if self.ln_in is not None:
                x = self.ln_in(x)
            if state:
                y, hs = self.rnn(x, tuple(state) if spec.cell == "LSTM" else state[0])
            else:
                y, hs = self.rnn(x)
            h_n = hs[0] if spec.cell == "LSTM" else hs
            if self.ln_out is not None:
                y = self.ln_out(y)
            if spec.head == "seq":
                z = y
            elif spec.head == "last":
                z = y[:, -1, :] if spec.batch_first else y[-1]
            else:
                z = h_n[-1]
            z = self.acts(self.fc(z))
            if state:
                return (z, *hs) if spec.cell == "LSTM" else (z, hs)
            return z

    torch.manual_seed(sum(map(ord, seed_name(spec))))
    if spec.side is not None:
        return SideInputNet(Net, spec)
    return Net()


def seed_name(spec: Spec) -> str:
    """The name that seeds a fixture's weights and data: a side-input pair shares one model."""
    return spec.name.rsplit("_sr", 1)[0] if spec.side is not None else spec.name


def SideInputNet(net_class, spec: Spec):  # -> torch.nn.Module
    """forward(x, sr): the first of two nets of the spec's shape when sr == 16000, else the
    second (torch.cond, which the dynamo exporter writes as an ONNX If)."""
    import torch

    class Side(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net16, self.net8 = net_class(), net_class()

        def forward(self, x, sr):
            return torch.cond(sr == 16000, lambda x: self.net16(x), lambda x: self.net8(x), (x,))

    return Side()


def _layout(x: np.ndarray, batch_first: bool) -> np.ndarray:
    """[n, t, f] -> the model's layout."""
    return x if batch_first else np.ascontiguousarray(x.transpose(1, 0, 2))


def train_torch(spec: Spec, model) -> None:
    import torch

    rng = np.random.default_rng(sum(map(ord, seed_name(spec))))
    t = spec.steps or TRAIN_T
    x = signals(rng, TRAIN_N, t)
    y = targets(x, spec.out, spec.final_act, spec.head == "seq")
    xt = torch.from_numpy(_layout(x, spec.batch_first))
    yt = torch.from_numpy(_layout(y, spec.batch_first) if spec.head == "seq" else y)
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    model.train()
    for _ in range(TRAIN_STEPS):
        opt.zero_grad()
        if spec.side is not None:  # both nets, each on its own half of the task
            out = torch.cat([model.net16(xt[: len(xt) // 2]), model.net8(xt[len(xt) // 2 :])])
        else:
            out = model(xt)
        loss = torch.nn.functional.mse_loss(out, yt)
        loss.backward()
        opt.step()
    model.eval()
    print(f"  trained {spec.name}: loss {loss.item():.4f}")


def state_shapes(spec: Spec) -> list[tuple[str, tuple[int, int, int]]]:
    rows = spec.layers * (2 if spec.bidirectional else 1)
    names = ["h0", "c0"] if spec.cell == "LSTM" else ["h0"]
    return [(n, (rows, BATCH, spec.hidden)) for n in names]


_SIDE_EXPORTS: dict[str, tuple[Path, np.ndarray]] = {}  # a side-input pair's one export


def export_torch(spec: Spec, path: Path) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Train, export; returns the stored input (graph layout) and the state feeds. The fixtures
    of a side-input pair are one model, exported once and copied (a second torch.cond export in
    the same process came out with the time axis fixed at the traced length)."""
    import torch

    if spec.side is not None and seed_name(spec) in _SIDE_EXPORTS:
        first, x = _SIDE_EXPORTS[seed_name(spec)]
        shutil.copyfile(first, path)
        return x, {}

    model = torch_model(spec)
    train_torch(spec, model)
    rng = np.random.default_rng(sum(map(ord, seed_name(spec))) + 1)
    x = _layout(signals(rng, BATCH, spec.steps or STEPS), spec.batch_first)
    states = {n: (0.5 * rng.standard_normal(shape)).astype(np.float32) for n, shape in state_shapes(spec)} if spec.state else {}
    args = (torch.from_numpy(x), *[torch.from_numpy(a) for a in states.values()])
    side = {"sr": torch.tensor(spec.side)} if spec.side is not None else {}
    args += tuple(side.values())
    b_axis, t_axis = (0, 1) if spec.batch_first else (1, 0)
    in_names = ["x", *states, *side]
    out_names = ["y"] + ([n.replace("0", "n") for n in states] if spec.state else [])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if spec.exporter == "torch":
            seq = {b_axis: "batch"} | ({} if spec.steps else {t_axis: "seq"})
            axes = {"x": seq, "y": seq if spec.head == "seq" else {0: "batch"}}
            axes |= {n: {1: "batch"} for n in in_names[1:] + out_names[1:]}
            torch.onnx.export(model, args, str(path), dynamo=False, input_names=in_names,
                              output_names=out_names, dynamic_axes=axes, opset_version=spec.opset,
                              do_constant_folding=spec.fold)  # fmt: skip
        else:
            batch, seq = torch.export.Dim("batch"), torch.export.Dim("seq")
            shapes = [{b_axis: batch} | ({} if spec.steps else {t_axis: seq})]
            shapes += [{1: batch} for _ in states] + [None for _ in side]
            program = torch.onnx.export(model, args, dynamo=True, input_names=in_names,
                                        output_names=out_names, dynamic_shapes=tuple(shapes),
                                        opset_version=spec.opset)  # fmt: skip
            program.save(str(path), external_data=False)
            if spec.side is not None:
                strip_metadata(path)
                _SIDE_EXPORTS[seed_name(spec)] = (path, x)
    return x, states


def strip_metadata(path: Path) -> None:
    """Drop the dynamo exporter's per-node metadata (stack traces, FX node text: 90% of the
    file of a two-net torch.cond model); the graph itself is unchanged."""
    import onnx

    def strip(graph) -> None:
        for info in list(graph.value_info) + list(graph.input) + list(graph.output):
            del info.metadata_props[:]
        for node in graph.node:
            del node.metadata_props[:]
            node.doc_string = ""
            for a in node.attribute:
                if a.type == onnx.AttributeProto.GRAPH:
                    strip(a.g)

    model = onnx.load(str(path))
    strip(model.graph)
    onnx.save(model, str(path))


# --- Keras (runs in the TensorFlow interpreter) ------------------------------------------------
def keras_model(kind: str, out: int):  # -> keras.Model
    import tensorflow as tf

    L = tf.keras.layers
    inp = tf.keras.Input((None, FEATURES), name="x")
    if kind == "lstm_dense_softmax":
        y = L.Dense(out, activation="softmax")(L.LSTM(16)(inp))
    elif kind == "gru_reset_after_timedistributed":
        y = L.TimeDistributed(L.Dense(out))(L.GRU(12, return_sequences=True, reset_after=True)(inp))
    elif kind == "bidirectional_lstm_timedistributed_sigmoid":
        y = L.Bidirectional(L.LSTM(8, return_sequences=True))(inp)
        y = L.TimeDistributed(L.Dense(out, activation="sigmoid"))(y)
    elif kind == "lstm_hard_sigmoid_go_backwards":
        y = L.Dense(out)(L.LSTM(8, recurrent_activation="hard_sigmoid", go_backwards=True)(inp))
    elif kind == "gru_lstm_stacked_dense":
        y = L.GRU(12, return_sequences=True)(inp)
        y = L.Dense(out, activation="relu")(L.LSTM(8)(y))
    elif kind == "lstm_dense":
        y = L.Dense(out)(L.LSTM(12)(inp))
    elif kind == "simplernn":
        y = L.Dense(out)(L.SimpleRNN(8)(inp))
    elif kind == "gru_reset_before":
        y = L.Dense(out)(L.GRU(8, reset_after=False)(inp))
    else:
        raise ValueError(kind)
    return tf.keras.Model(inp, y)


def keras_worker(out_dir: Path, specs: list[dict]) -> None:
    """Build, train and export Keras fixtures (run with the TensorFlow interpreter)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf
    import tf2onnx

    tf.keras.utils.set_random_seed(0)
    for d in specs:
        spec = Spec(**d)
        model = keras_model(spec.keras, spec.out)
        rng = np.random.default_rng(sum(map(ord, spec.name)))
        x = signals(rng, TRAIN_N, TRAIN_T)
        y = targets(x, spec.out, spec.final_act, per_step=len(model.output.shape) == 3)
        model.compile(optimizer=tf.keras.optimizers.Adam(0.01), loss="mse")
        model.fit(x, y, epochs=TRAIN_STEPS // 4, batch_size=16, verbose=0)
        print(f"  trained {spec.name}: loss {model.evaluate(x, y, verbose=0):.4f}", flush=True)
        signature = (tf.TensorSpec((None, None, FEATURES), tf.float32, name="x"),)
        tf2onnx.convert.from_keras(model, input_signature=signature, opset=spec.opset,
                                   output_path=str(out_dir / f"{spec.name}.onnx"))  # fmt: skip
        xin = signals(np.random.default_rng(sum(map(ord, spec.name)) + 1), BATCH, STEPS)
        np.save(out_dir / f"{spec.name}.input.npy", xin)


def run_keras(specs: list[Spec], tf_python: str) -> None:
    for version in ("keras2", "keras3"):
        group = [asdict(s) for s in specs if s.exporter == version]
        if not group:
            continue
        env = dict(os.environ, TF_USE_LEGACY_KERAS="1" if version == "keras2" else "0")
        cmd = [tf_python, __file__, "--keras-worker", json.dumps(group)]
        subprocess.run(cmd, check=True, env=env)


# --- expected outputs and the index ------------------------------------------------------------
def finish(spec: Spec) -> dict:
    import onnx
    import onnxruntime as ort

    path = OUT / f"{spec.name}.onnx"
    x = np.load(OUT / f"{spec.name}.input.npy")
    feeds = {"x": x}
    state_file = OUT / f"{spec.name}.state.npz"
    if spec.state:
        feeds |= dict(np.load(state_file))
    if spec.side is not None:
        feeds["sr"] = np.array(spec.side, np.int64)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    first_input = session.get_inputs()[0].name
    feeds[first_input] = feeds.pop("x")
    outputs = session.run(None, feeds)
    names = [o.name for o in session.get_outputs()]
    np.save(OUT / f"{spec.name}.expected.npy", outputs[0])
    if spec.state:
        np.savez(OUT / f"{spec.name}.final.npz", **dict(zip(names[1:], outputs[1:])))
    model = onnx.load(str(path))
    return {
        "name": spec.name,
        "exporter": {"torch": "torch.onnx.export(dynamo=False)", "dynamo": "torch.onnx.export(dynamo=True)",
                     "keras2": "tf_keras (Keras 2) + tf2onnx", "keras3": "Keras 3 + tf2onnx"}[spec.exporter],  # fmt: skip
        "producer": f"{model.producer_name} {model.producer_version}".strip(),
        "opset": next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")),
        "covers": spec.covers,
        "input": first_input,
        "state": sorted(dict(np.load(state_file))) if spec.state else [],
        "outputs": names,
        "streamable": spec.streamable,
        "error": spec.error,
        **({"fixed": {"sr": spec.side}} if spec.side is not None else {}),
    }


PROJ_SIZE = ROOT / "tests" / "data" / "dynamo_lstm_proj_size.onnx"


def make_proj_size(path: Path = PROJ_SIZE) -> None:
    """nn.LSTM(4, 8, proj_size=3) through torch.onnx.export(dynamo=True): onnxscript's aten_lstm
    writes hidden_size = proj_size, W and R cut to 4*3 rows and drops the projection, so the graph
    is broken (its initial_c is [1, B, 8]); untrained, a few KB."""
    import torch

    class Net(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lstm = torch.nn.LSTM(FEATURES, 8, batch_first=True, proj_size=3)

        def forward(self, x):
            return self.lstm(x)[0]

    torch.manual_seed(0)
    batch, seq = torch.export.Dim("batch"), torch.export.Dim("seq")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(Net().eval(), (torch.zeros(BATCH, STEPS, FEATURES),), dynamo=True,
                                    input_names=["x"], output_names=["y"],
                                    dynamic_shapes=({0: batch, 1: seq},), opset_version=18)  # fmt: skip
    program.save(str(path), external_data=False)
    print(f"wrote {path.relative_to(ROOT)} ({path.stat().st_size} bytes)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default="", help="make only the fixtures whose name starts so")
    parser.add_argument("--no-keras", action="store_true", help="skip the Keras fixtures")
    parser.add_argument("--tf-python", default=TF_PYTHON, help="interpreter with TensorFlow + tf2onnx")
    parser.add_argument("--keras-worker", help=argparse.SUPPRESS)
    parser.add_argument("--proj-size", action="store_true",
                        help="make only the broken dynamo proj_size graph (tests/data/dynamo_lstm_proj_size.onnx)")
    args = parser.parse_args()
    if args.proj_size:
        make_proj_size()
        return
    if args.keras_worker:
        keras_worker(OUT, json.loads(args.keras_worker))
        return
    OUT.mkdir(parents=True, exist_ok=True)
    chosen = [s for s in SPECS if s.name.startswith(args.only)]
    if args.no_keras:
        chosen = [s for s in chosen if not s.exporter.startswith("keras")]
    for spec in chosen:
        if spec.exporter in ("torch", "dynamo"):
            print(spec.name, flush=True)
            x, states = export_torch(spec, OUT / f"{spec.name}.onnx")
            np.save(OUT / f"{spec.name}.input.npy", x)
            if states:
                np.savez(OUT / f"{spec.name}.state.npz", **states)
    run_keras(chosen, args.tf_python)
    index_path = OUT / "index.json"
    index = {e["name"]: e for e in json.loads(index_path.read_text())} if index_path.exists() else {}
    for spec in chosen:
        index[spec.name] = finish(spec)
    order = [s.name for s in SPECS]
    entries = sorted(index.values(), key=lambda e: order.index(e["name"]) if e["name"] in order else 999)
    index_path.write_text(json.dumps(entries, indent=1) + "\n")
    total = sum(p.stat().st_size for p in OUT.iterdir())
    print(f"{len(entries)} fixtures, {total / 1024:.0f} KiB in {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
