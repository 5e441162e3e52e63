"""Keras model file (.keras of Keras 3, legacy .h5 of Keras 2 or 3) -> rnnedge.ir.layers.Network
(or, with graph ops, an rnnedge.ir.graph.Graph),
read with h5py and json: no TensorFlow (docs/keras.md). Needs the `h5py` package (the `[keras]`
extra).

    from rnnedge.converter.keras import keras_to_model
    model = keras_to_model("model.keras")   # a Network, or a Graph (Embedding, Conv1D, merge mul)

Sequential models and Functional models that are one straight chain of layers become the same
layer pipeline an ONNX model does (weights moved into ONNX's layout and gate order). A layer the
importer does not know is refused with its name, its class and the list in `SUPPORTED`.
"""

from __future__ import annotations

import io
import json
import os
import re
import zipfile
from dataclasses import dataclass
from typing import Any, Callable, Union

import numpy as np

from ..errors import ConvertError
from ..files import read_regular_file
from ..ir.graph import Binary, Conv, Copy, Gather, Graph, Node, Value, check_graph, plan_arena
from ..ir.layers import (
    Act, Activation, Dense, FloatLayer, LayerNorm, Network, Recurrent, Slice, TakeLast, TensorSpec,
)

KERAS_SUFFIXES = (".keras", ".h5", ".hdf5")

# What the importer converts (docs/keras.md keeps the same list, with the options of each).
SUPPORTED = (
    "InputLayer", "LSTM", "GRU", "SimpleRNN", "Bidirectional (merge_mode concat, sum, ave, mul)",
    "Dense", "TimeDistributed(Dense)", "Activation", "Dropout", "SpatialDropout1D",
    "LayerNormalization", "BatchNormalization", "Embedding (first layer, mask_zero=False)",
    "Conv1D (padding causal, same or valid, dilation, strides 1, channels_last)",
)  # fmt: skip
_SKIPPED = ("Dropout", "SpatialDropout1D")  # inactive at inference
_RNN = {"LSTM": "lstm", "GRU": "gru", "SimpleRNN": "rnn"}
_F32 = np.float32


def is_keras_file(path: object) -> bool:
    """Whether `path` names a Keras model file by its suffix (.keras, .h5, .hdf5)."""
    return isinstance(path, (str, os.PathLike)) and os.fspath(path).lower().endswith(KERAS_SUFFIXES)


@dataclass
class KerasFile:
    """A Keras model file as read: its model config, the Keras version that wrote it, and the
    weights of each top-level layer (by layer name, in the layer's own order of variables)."""

    label: str
    stem: str
    config: dict
    version: str
    weights: Callable[[str], list[np.ndarray]]

    @property
    def major(self) -> int:
        m = re.match(r"\s*(\d+)", self.version)
        if not m:
            raise ConvertError(f"{self.label}: cannot read the Keras version {self.version!r} it records")
        return int(m.group(1))


def _h5py() -> Any:
    try:
        import h5py
    except ImportError as e:  # pragma: no cover - depends on the installation
        raise ConvertError(
            f"reading a Keras model file needs the h5py package ({e}); install it with "
            "pip install 'rnnedge[keras]'"
        ) from None
    return h5py


def _text(v: object) -> str:
    return v.decode("utf-8") if isinstance(v, bytes) else str(v)


def read_keras(path: str | os.PathLike) -> KerasFile:
    """Read a .keras zip (config.json, metadata.json, model.weights.h5) or a legacy .h5 file."""
    path = os.fspath(path)
    label, stem = repr(path), os.path.splitext(os.path.basename(path))[0]
    try:
        data = read_regular_file(path, label, ConvertError)
    except OSError as e:
        raise ConvertError(f"cannot read {label}: {e.strerror}") from None
    h5py = _h5py()
    if data[:4] == b"PK\x03\x04":
        return _read_zip(data, label, stem, h5py)
    if data[:8] == b"\x89HDF\r\n\x1a\n":
        return _read_h5(data, label, stem, h5py)
    raise ConvertError(
        f"{label} is neither a Keras 3 .keras file (a zip archive) nor a Keras .h5 file (HDF5)"
    )


def _read_zip(data: bytes, label: str, stem: str, h5py: Any) -> KerasFile:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            names = set(z.namelist())
            missing = [n for n in ("config.json", "model.weights.h5") if n not in names]
            if missing:
                raise ConvertError(f"{label} is a zip archive without {', '.join(missing)}: not a .keras model")
            config = json.loads(z.read("config.json"))
            meta = json.loads(z.read("metadata.json")) if "metadata.json" in names else {}
            weights_h5 = z.read("model.weights.h5")
    except (zipfile.BadZipFile, json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ConvertError(f"{label} is not a readable .keras file ({e})") from None
    arrays: dict[str, np.ndarray] = {}
    groups: dict[str, str] = {}  # a layer's name (its vars group records it) -> its group path
    with h5py.File(io.BytesIO(weights_h5), "r") as f:
        def visit(name: str, obj: Any) -> None:
            if isinstance(obj, h5py.Dataset):
                arrays[name] = np.asarray(obj[()])
            elif name.endswith("/vars") and name.count("/") == 2 and "name" in obj.attrs:
                groups.setdefault(_text(obj.attrs["name"]), name[: -len("/vars")])

        f.visititems(visit)
    version = str(meta.get("keras_version", "3"))
    # Keras 3 names a layer's group by its class in snake case, numbered from the second of a
    # class on (lstm, lstm_1, ...), in the model's layer order; recent versions also record the
    # layer's own name in its vars group (`groups`), which is read first
    by_class: dict[str, str] = {}
    used: dict[str, int] = {}
    for entry in config.get("config", {}).get("layers", []):
        cls = str(entry.get("class_name", ""))
        snake = re.sub(r"([a-z])([A-Z])", r"\1_\2", re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", cls)).lower()
        used[snake] = used.get(snake, -1) + 1
        layer_name = (entry.get("config") or {}).get("name") or entry.get("name")
        by_class[str(layer_name)] = f"layers/{snake}_{used[snake]}" if used[snake] else f"layers/{snake}"

    def weights(layer: str) -> list[np.ndarray]:
        group = groups.get(layer) or by_class.get(layer, f"layers/{layer}")
        out: list[np.ndarray] = []
        for sub in ("", "/cell", "/forward_layer/cell", "/backward_layer/cell", "/layer"):
            k = 0
            while f"{group}{sub}/vars/{k}" in arrays:
                out.append(arrays[f"{group}{sub}/vars/{k}"])
                k += 1
        return out

    return KerasFile(label, stem, config, version, weights)


def _read_h5(data: bytes, label: str, stem: str, h5py: Any) -> KerasFile:
    with h5py.File(io.BytesIO(data), "r") as f:
        if "model_config" not in f.attrs:
            raise ConvertError(
                f"{label} is an HDF5 file without a model config (weights only, saved with "
                "save_weights?): save the whole model with model.save"
            )
        config = json.loads(_text(f.attrs["model_config"]))
        version = _text(f.attrs.get("keras_version", "2"))
        root = f["model_weights"] if "model_weights" in f else f
        per_layer: dict[str, list[np.ndarray]] = {}
        for layer in root:
            g = root[layer]
            names = [_text(n) for n in g.attrs.get("weight_names", [])]
            per_layer[layer] = [np.asarray(g[n][()]) for n in names]
    return KerasFile(label, stem, config, version, lambda layer: per_layer.get(layer, []))


# -- the layer chain --------------------------------------------------------------------------------


@dataclass
class _Layer:
    cls: str
    name: str
    config: dict


def _chain(kf: KerasFile) -> tuple[list[_Layer], list[Any], str]:
    """The model's layers in order (without the input layer), its input shape and input name."""
    top = kf.config
    cls = top.get("class_name")
    cfg = top.get("config", {})
    layers = [_Layer(l["class_name"], l.get("config", {}).get("name") or l.get("name", "?"),
                     l.get("config", {})) for l in cfg.get("layers", [])]  # fmt: skip
    if cls == "Sequential":
        chain = layers
    elif cls in ("Functional", "Model"):
        chain = _functional_chain(kf, cfg, layers)
    else:
        raise ConvertError(
            f"{kf.label}: the model is a {cls!r}; rnnedge reads Sequential and Functional models "
            "(a subclassed model has no config to read: rebuild it as a Functional model)"
        )
    shape: list[Any] | None = None
    name = "input"
    if chain and chain[0].cls == "InputLayer":
        c = chain[0].config
        shape = c.get("batch_shape") or c.get("batch_input_shape")
        name = chain[0].name
        chain = chain[1:]
    elif chain:
        c = chain[0].config
        shape = c.get("batch_shape") or c.get("batch_input_shape")
        if shape is None and isinstance(c.get("build_config"), dict):
            shape = c["build_config"].get("input_shape")
    if shape is None:
        build = cfg.get("build_input_shape") or (top.get("build_config") or {}).get("input_shape")
        shape = build
    if not chain:
        raise ConvertError(f"{kf.label}: the model has no layers")
    if chain[0].cls == "Embedding":  # token ids [batch, time]
        if shape is not None and len(shape) != 2:
            raise ConvertError(f"{kf.label}: the model's input shape is {shape!r}; an Embedding "
                               "takes token ids [batch, time]")  # fmt: skip
        return chain, [None, None, 1], name
    if shape is None or len(shape) != 3 or not isinstance(shape[2], int):
        raise ConvertError(
            f"{kf.label}: the model's input shape is {shape!r}; rnnedge takes a sequence "
            "[batch, time, features] with a fixed number of features (give the model an "
            "Input(shape=(None, features)))"
        )
    return chain, list(shape), name


def _history(obj: Any) -> list[str]:
    """The layers whose outputs a Keras 3 call's args refer to (its __keras_tensor__ entries)."""
    found: list[str] = []
    if isinstance(obj, dict):
        if obj.get("class_name") == "__keras_tensor__":
            found.append(obj["config"]["keras_history"][0])
        else:
            for v in obj.values():
                found += _history(v)
    elif isinstance(obj, list):
        for v in obj:
            found += _history(v)
    return found


def _inbound(layer: dict, label: str) -> list[str]:
    nodes = layer.get("inbound_nodes", [])
    if len(nodes) > 1:
        raise ConvertError(
            f"{label}: layer {layer.get('name')!r} ({layer['class_name']}) is called "
            f"{len(nodes)} times (a shared layer); rnnedge reads a straight chain of layers"
        )
    if not nodes:
        return []
    node = nodes[0]
    if isinstance(node, dict):  # Keras 3: {"args": [...], "kwargs": {...}}
        kwargs = node.get("kwargs", {})
        extra = [k for k, v in kwargs.items() if k not in ("training", "mask") and v is not None]
        if extra or _history(kwargs):
            raise ConvertError(
                f"{label}: layer {layer.get('name')!r} ({layer['class_name']}) is called with "
                f"{', '.join(sorted(kwargs))}; rnnedge reads layers called on one input only"
            )
        return _history(node.get("args", []))
    for entry in node:  # Keras 2: [[name, node index, tensor index, kwargs], ...]
        kwargs = entry[3] if len(entry) > 3 and isinstance(entry[3], dict) else {}
        extra = sorted(k for k in kwargs if k not in ("training", "mask"))
        if extra:
            raise ConvertError(
                f"{label}: layer {layer.get('name')!r} ({layer['class_name']}) is called with "
                f"{', '.join(extra)}; rnnedge reads layers called on one input only"
            )
    return [entry[0] for entry in node]


def _ends(spec: Any) -> list[str]:
    """input_layers / output_layers: [name, 0, 0] or a list of them."""
    if isinstance(spec, list) and spec and isinstance(spec[0], str):
        return [spec[0]]
    return [s[0] for s in spec or []]


def _functional_chain(kf: KerasFile, cfg: dict, layers: list[_Layer]) -> list[_Layer]:
    by_name = {l.name: l for l in layers}
    raw = {l.get("config", {}).get("name") or l.get("name"): l for l in cfg.get("layers", [])}
    ins, outs = _ends(cfg.get("input_layers")), _ends(cfg.get("output_layers"))
    if len(ins) != 1 or len(outs) != 1:
        raise ConvertError(
            f"{kf.label}: the model has {len(ins)} input(s) and {len(outs)} output(s); rnnedge "
            "reads Keras models with one input and one output"
        )
    chain: list[_Layer] = []
    name = outs[0]
    while True:
        if name not in by_name:
            raise ConvertError(f"{kf.label}: the config names a layer {name!r} it does not define")
        chain.append(by_name[name])
        if name == ins[0]:
            break
        sources = _inbound(raw[name], kf.label)
        if len(sources) != 1:
            raise ConvertError(
                f"{kf.label}: layer {name!r} ({by_name[name].cls}) takes {len(sources)} inputs; "
                "rnnedge reads Keras models that are one straight chain of layers"
            )
        name = sources[0]
    return chain[::-1]


# -- activations ------------------------------------------------------------------------------------


def _act_name(spec: Any) -> str:
    if isinstance(spec, str):
        return spec
    if isinstance(spec, dict):  # Keras 3 may serialize a function: {"class_name": "function", "config": "tanh"}
        inner = spec.get("config")
        if isinstance(inner, str):
            return inner
        return str(spec.get("class_name"))
    return str(spec)


def _act(kf: KerasFile, spec: Any, where: str) -> Act:
    """A Keras activation (by its serialized name) as the IR's Act."""
    name = _act_name(spec)
    simple = {
        "linear": "Identity", "sigmoid": "Sigmoid", "tanh": "Tanh", "relu": "Relu",
        "softsign": "Softsign", "softplus": "Softplus", "softmax": "Softmax",
        "log_softmax": "LogSoftmax",
    }  # fmt: skip
    if name in simple:
        return Act.make(simple[name])
    if name == "elu":
        return Act.make("Elu", 1.0)
    if name == "hard_sigmoid":
        # Keras 2: clip(0.2 x + 0.5, 0, 1); Keras 3: relu6(x + 3) / 6 = clip(x / 6 + 0.5, 0, 1)
        return Act.make("HardSigmoid", 0.2 if kf.major < 3 else 1.0 / 6.0, 0.5)
    raise ConvertError(
        f"{kf.label}: {where} uses the activation {name!r}, which the Keras importer does not "
        "convert; supported: linear, sigmoid, tanh, relu, hard_sigmoid, elu, softsign, softplus, "
        "softmax, log_softmax"
    )


# -- graph-only steps (a model with one of them becomes a dataflow Graph, docs/graph.md) ----------


@dataclass
class MulHalves:
    """Bidirectional merge_mode "mul": the product of the forward and backward halves (also the
    Mul of tf2onnx's two Loops, tf2onnx_loop.join_directions)."""

    hidden: int


@dataclass
class _Lookahead:
    """A Conv over time and the frames it looks ahead (Conv1D padding "same"): the graph computes
    it causally, its output lagging by `steps` (Value.delay)."""

    conv: Conv
    steps: int


Step = Union[FloatLayer, Gather, Conv, MulHalves, _Lookahead]


def steps_to_graph(steps: list[Step], net: Network, ids: bool) -> Graph:
    """The chain of steps as a dataflow graph: each node reads the value the one before wrote.
    `net` gives the input and output specs, name and producer (its layers are not read)."""
    values = [Value(net.input.name, (1,) if ids else (net.input.shape[-1] or 1,),
                    "s32" if ids else "f32", "input")]  # fmt: skip
    nodes: list[Node] = []

    def add(op: object, ins: list[int], shape: tuple[int, ...], name: str) -> int:
        last = any(values[i].last for i in ins) or isinstance(op, TakeLast)
        values.append(Value(name, shape, "f32", "temp", last=last, delay=values[ins[0]].delay))
        nodes.append(Node(op, list(ins), [len(values) - 1], name=name))
        return len(values) - 1

    cur = 0
    for i, op in enumerate(steps):
        name = f"layer {i}"
        if isinstance(op, MulHalves):
            H = op.hidden
            a = add(Slice(2 * H, 0, H), [cur], (H,), f"{name}/forward")
            b = add(Slice(2 * H, H, 2 * H), [cur], (H,), f"{name}/backward")
            cur = add(Binary("Mul"), [a, b], (H,), name)
        elif isinstance(op, _Lookahead):
            cur = add(op.conv, [cur], (op.conv.c_out,), name)
            values[cur].delay += op.steps
        elif isinstance(op, Conv):
            cur = add(op, [cur], (op.c_out,), name)
        elif isinstance(op, Gather):
            E = int(op.table.shape[1])
            cur = add(op, [cur], (1, E), name)
            cur = add(Copy(), [cur], (E,), f"{name}/copy")
        else:
            cur = add(op, [cur], (op.out_features,), name)
    values[cur].kind, values[cur].name = "output", net.output.name
    g = Graph(values, nodes, 0, cur, net.input, net.output, name=net.name, producer=net.producer)
    check_graph(g)
    plan_arena(g)
    return g


# -- layers -----------------------------------------------------------------------------------------


def _what(l: _Layer) -> str:
    return f"layer {l.name!r} ({l.cls})"


def _unsupported(kf: KerasFile, l: _Layer, why: str = "") -> ConvertError:
    return ConvertError(
        f"{kf.label}: {_what(l)} {why or 'is not a layer the Keras importer converts'}; "
        f"supported: {', '.join(SUPPORTED)}"
    )


def _count(kf: KerasFile, l: _Layer, got: list[np.ndarray], want: int) -> None:
    if len(got) != want:
        raise ConvertError(
            f"{kf.label}: {_what(l)} has {len(got)} weight arrays in the file, expected {want} "
            f"(shapes {[list(w.shape) for w in got]})"
        )


def _check_float32(kf: KerasFile, l: _Layer) -> None:
    d = l.config.get("dtype")
    name = d.get("config", {}).get("name") if isinstance(d, dict) else d
    if name not in (None, "float32"):
        raise ConvertError(
            f"{kf.label}: {_what(l)} computes in {name}; rnnedge converts float32 Keras models "
            "(set the dtype policy to float32 before saving)"
        )


def _cell(kf: KerasFile, l: _Layer, cfg: dict, w: list[np.ndarray], features: int) -> dict:
    """One direction of a Keras LSTM / GRU / SimpleRNN: ONNX-layout W [G*H, I], R [G*H, H],
    B [2*G*H] and its activations."""
    cell = _RNN[l.cls if l.cls in _RNN else cfg["_cls"]]
    units = int(cfg["units"])
    for key in ("return_state", "time_major"):
        if cfg.get(key):
            raise _unsupported(kf, l, f"has {key}=True, which rnnedge does not convert")
    use_bias = cfg.get("use_bias", True)
    gru_after = cell == "gru" and cfg.get("reset_after", False)
    _count(kf, l, w, 3 if use_bias else 2)
    kernel, rec = w[0].astype(_F32), w[1].astype(_F32)
    g = {"lstm": 4, "gru": 3, "rnn": 1}[cell]
    if kernel.shape != (features, g * units) or rec.shape != (units, g * units):
        raise ConvertError(
            f"{kf.label}: {_what(l)}: kernel {list(kernel.shape)} and recurrent kernel "
            f"{list(rec.shape)} do not fit {features} input features and {units} units"
        )
    if use_bias:
        b = w[2].astype(_F32)
        if gru_after:
            bias = b.reshape(2 * g * units)  # [input bias | recurrent bias], both z, r, h
        else:
            bias = np.concatenate([b.reshape(g * units), np.zeros(g * units, _F32)])
    else:
        bias = np.zeros(2 * g * units, _F32)
    W, R = kernel.T, rec.T  # [G*H, I], [G*H, H]
    if cell == "lstm":  # Keras i, f, c, o -> ONNX i, o, f, c
        order = np.concatenate([np.arange(k * units, (k + 1) * units) for k in (0, 3, 1, 2)])
        W, R = W[order], R[order]
        bias = np.concatenate([bias[: 4 * units][order], bias[4 * units :][order]])
    act = _act(kf, cfg.get("activation", "tanh"), f"{_what(l)} (activation)")
    if cell == "rnn":
        acts = [act]
    else:
        rec_act = _act(kf, cfg.get("recurrent_activation", "sigmoid"),
                       f"{_what(l)} (recurrent_activation)")  # fmt: skip
        acts = [rec_act, act, act] if cell == "lstm" else [rec_act, act]
    return {"cell": cell, "W": np.ascontiguousarray(W), "R": np.ascontiguousarray(R),
            "B": bias, "acts": acts, "units": units, "lbr": bool(gru_after)}  # fmt: skip


def keras_to_model(path: str | os.PathLike, name: str | None = None) -> Network | Graph:
    """Read a Keras model file and return the layer pipeline (Network) it computes, or the
    dataflow Graph when it needs graph ops (Embedding, Conv1D, Bidirectional merge_mode mul)."""
    kf = read_keras(path)
    chain, shape, in_name = _chain(kf)
    features = int(shape[2])
    ids = chain[0].cls == "Embedding"
    layers: list[Step] = []
    sequence = True  # the value is still [batch, time, features]
    out_name = in_name
    valid: tuple[_Layer, int] | None = None  # a Conv1D padding "valid" and the steps it shortens by

    def after_valid(l: _Layer, what: str) -> None:
        """A layer that needs the end of the sequence, after a shortening conv: refused."""
        if valid is None:
            return
        conv, span = valid
        raise _unsupported(kf, l, (
            f"{what} after {_what(conv)} with padding='valid': Keras's sequence there ends {span} "
            f"steps before the input's, rnnedge's with the input (a stream gives Keras's step t - {span} "
            f"at step t, but Model.run has {span} more steps, computed on zeros past the end); after a "
            "valid conv use forward recurrent layers with return_sequences=True, or pad the conv "
            "'causal' or 'same'"))  # fmt: skip

    def add_act(spec: Any, where: str, width: int) -> None:
        act = _act(kf, spec, where)
        if act.kind != "Identity":
            layers.append(Activation(act, width))

    for l in chain:
        _check_float32(kf, l)
        cfg, w = l.config, kf.weights(l.name)
        out_name = l.name
        if l.cls in _SKIPPED:
            continue
        if l.cls in _RNN or l.cls == "Bidirectional":
            if not sequence:
                raise _unsupported(kf, l, "follows a layer that already took the last time step")
            if l.cls == "Bidirectional" or cfg.get("go_backwards"):
                after_valid(l, "runs backwards from the end of the sequence")
            if not cfg.get("return_sequences"):
                after_valid(l, "takes the last step")
            if l.cls == "Bidirectional":
                fwd_cfg = cfg["layer"]
                bwd_cfg = cfg.get("backward_layer") or {
                    "class_name": fwd_cfg["class_name"],
                    "config": {**fwd_cfg["config"], "go_backwards": not fwd_cfg["config"].get("go_backwards", False)},
                }  # fmt: skip
                mode = cfg.get("merge_mode", "concat")
                if fwd_cfg["class_name"] not in _RNN or bwd_cfg["class_name"] != fwd_cfg["class_name"]:
                    raise _unsupported(kf, l, f"wraps {fwd_cfg['class_name']} / "
                                              f"{bwd_cfg['class_name']}: rnnedge converts a "
                                              "Bidirectional LSTM, GRU or SimpleRNN (the same class both ways)")  # fmt: skip
                if mode not in ("concat", "sum", "ave", "mul"):
                    raise _unsupported(kf, l, f"has merge_mode={mode!r}; rnnedge converts "
                                              "merge_mode concat, sum, ave and mul")  # fmt: skip
                fc = {**fwd_cfg["config"], "_cls": fwd_cfg["class_name"]}
                bc = {**bwd_cfg["config"], "_cls": bwd_cfg["class_name"]}
                if fc.get("go_backwards") or not bc.get("go_backwards"):
                    raise _unsupported(kf, l, "has a forward layer that goes backwards (or a "
                                              "backward layer that does not)")  # fmt: skip
                half = len(w) // 2
                f = _cell(kf, l, fc, w[:half], features)
                b = _cell(kf, l, bc, w[half:], features)
                if (f["units"], f["lbr"], f["cell"]) != (b["units"], b["lbr"], b["cell"]):
                    raise _unsupported(kf, l, "has a backward layer of another size or kind than "
                                              "its forward layer")  # fmt: skip
                rseq = bool(fc.get("return_sequences"))
                if rseq != bool(bc.get("return_sequences")):
                    raise _unsupported(kf, l, "mixes return_sequences between its two directions")
                H = f["units"]
                layers.append(Recurrent(
                    cell=f["cell"], direction="bidirectional",
                    W=np.stack([f["W"], b["W"]]), R=np.stack([f["R"], b["R"]]),
                    B=np.stack([f["B"], b["B"]]), activations=[f["acts"], b["acts"]],
                    linear_before_reset=f["lbr"],
                ))  # fmt: skip
                if not rseq:
                    layers.append(TakeLast(2 * H, split=H))
                    sequence = False
                if mode in ("sum", "ave"):
                    eye = np.eye(H, dtype=_F32) * (_F32(0.5) if mode == "ave" else _F32(1.0))
                    layers.append(Dense(np.concatenate([eye, eye], axis=1)))
                    features = H
                elif mode == "mul":
                    layers.append(MulHalves(H))
                    features = H
                else:
                    features = 2 * H
                continue
            c = _cell(kf, l, cfg, w, features)
            back = bool(cfg.get("go_backwards"))
            rseq = bool(cfg.get("return_sequences"))
            if back and rseq:
                raise _unsupported(kf, l, "has go_backwards=True with return_sequences=True: its "
                                          "output lists the steps in reverse time order, and rnnedge "
                                          "returns steps in input order; use return_sequences=False "
                                          "or wrap the layer in Bidirectional")  # fmt: skip
            H = c["units"]
            layers.append(Recurrent(
                cell=c["cell"], direction="reverse" if back else "forward",
                W=c["W"][None], R=c["R"][None], B=c["B"][None], activations=[c["acts"]],
                linear_before_reset=c["lbr"],
            ))  # fmt: skip
            if not rseq:
                # the last output: step T-1 going forward, step 0 (the last one seen) going back
                layers.append(TakeLast(H, split=0 if back else H))
                sequence = False
            features = H
        elif l.cls == "Dense" or (l.cls == "TimeDistributed" and cfg["layer"]["class_name"] == "Dense"):
            if l.cls == "TimeDistributed" and not sequence:
                raise _unsupported(kf, l, "is applied to a value without a time axis")
            dcfg = cfg["layer"]["config"] if l.cls == "TimeDistributed" else cfg
            use_bias = dcfg.get("use_bias", True)
            _count(kf, l, w, 2 if use_bias else 1)
            kernel = w[0].astype(_F32)
            if kernel.ndim != 2 or kernel.shape[0] != features:
                raise ConvertError(f"{kf.label}: {_what(l)}: kernel {list(kernel.shape)} does not "
                                   f"take {features} features")  # fmt: skip
            layers.append(Dense(np.ascontiguousarray(kernel.T),
                                w[1].astype(_F32) if use_bias else None))  # fmt: skip
            features = int(kernel.shape[1])
            add_act(dcfg.get("activation", "linear"), f"{_what(l)} (activation)", features)
        elif l.cls == "Activation":
            add_act(cfg.get("activation"), _what(l), features)
        elif l.cls in ("LayerNormalization", "BatchNormalization"):
            axis = cfg.get("axis", -1)
            axis = axis[0] if isinstance(axis, list) and len(axis) == 1 else axis
            if axis not in (-1, 2 if sequence else 1):
                raise _unsupported(kf, l, f"normalizes over axis {cfg.get('axis')!r}; rnnedge "
                                          "converts normalization over the features (axis -1)")  # fmt: skip
            if cfg.get("rms_scaling"):
                raise _unsupported(kf, l, "has rms_scaling=True, which rnnedge does not convert")
            scale, center = cfg.get("scale", True), cfg.get("center", True)
            eps = float(cfg.get("epsilon", 1e-3))
            k = 0
            gamma = beta = None
            want = int(scale) + int(center) + (2 if l.cls == "BatchNormalization" else 0)
            _count(kf, l, w, want)
            if scale:
                gamma, k = w[0].astype(_F32), 1
            if center:
                beta, k = w[k].astype(_F32), k + 1
            if l.cls == "LayerNormalization":
                layers.append(LayerNorm(gamma if gamma is not None else np.ones(features, _F32),
                                        beta, eps))  # fmt: skip
            else:
                # inference: (x - mean) / sqrt(var + eps) * gamma + beta, one scale per feature
                mean, var = w[k].astype(np.float64), w[k + 1].astype(np.float64)
                s = 1.0 / np.sqrt(var + eps) * (1.0 if gamma is None else gamma.astype(np.float64))
                shift = (0.0 if beta is None else beta.astype(np.float64)) - mean * s
                layers.append(Dense(np.diag(s).astype(_F32), shift.astype(_F32)))
        elif l.cls == "Embedding":
            if layers:
                raise _unsupported(kf, l, "is not the first layer: rnnedge takes token ids as "
                                          "the model's input only")  # fmt: skip
            if cfg.get("mask_zero"):
                raise _unsupported(kf, l, "has mask_zero=True: Keras skips the steps of token 0 (the "
                                          "state carries over), which rnnedge does not do; save the "
                                          "model with mask_zero=False and give rnnedge only the "
                                          "unmasked steps (the ids without their padding)")  # fmt: skip
            _count(kf, l, w, 1)
            table = np.ascontiguousarray(w[0].astype(_F32))
            layers.append(Gather(table))
            features = int(table.shape[1])
        elif l.cls == "Conv1D":
            if not sequence:
                raise _unsupported(kf, l, "is applied to a value without a time axis")
            k = int(np.ravel(cfg.get("kernel_size"))[0])
            d = int(np.ravel(cfg.get("dilation_rate", 1))[0])
            pad = cfg.get("padding", "valid")
            if int(np.ravel(cfg.get("strides", 1))[0]) != 1 or cfg.get("groups", 1) != 1:
                raise _unsupported(kf, l, "has strides or groups other than 1")
            if cfg.get("data_format", "channels_last") != "channels_last":
                raise _unsupported(kf, l, "is channels_first: rnnedge reads [batch, time, channels]")
            if pad not in ("causal", "same", "valid"):
                raise _unsupported(kf, l, f"has padding={pad!r}; rnnedge converts Conv1D padding "
                                          "'causal', 'same' and 'valid'")  # fmt: skip
            use_bias = cfg.get("use_bias", True)
            _count(kf, l, w, 2 if use_bias else 1)
            kernel = w[0].astype(_F32)  # [k, C_in, C_out]
            if kernel.shape[:2] != (k, features):
                raise ConvertError(f"{kf.label}: {_what(l)}: kernel {list(kernel.shape)} does not "
                                   f"take {features} channels")  # fmt: skip
            conv = Conv(np.ascontiguousarray(kernel.transpose(2, 1, 0)[..., None]),
                        w[1].astype(_F32) if use_bias else None, dt=d)  # fmt: skip
            span = (k - 1) * d
            # the conv computed causally looks ahead: "same" pads span // 2 before (and the rest
            # after), "valid" nothing, so its output u reads steps u .. u + span (a stream gives
            # it at step u + span, and Keras's sequence is span steps shorter: `after_valid`)
            ahead = {"same": span - span // 2, "valid": span, "causal": 0}[pad]
            if pad == "valid" and span:
                valid = (l, span if valid is None else valid[1] + span)
            layers.append(_Lookahead(conv, ahead) if ahead else conv)
            features = int(kernel.shape[2])
            add_act(cfg.get("activation", "linear"), f"{_what(l)} (activation)", features)
        elif l.cls == "Masking":
            raise _unsupported(kf, l, (
                f"has mask_value={cfg.get('mask_value', 0.0)!r}: Keras skips every step whose features "
                "all equal it (the recurrent state carries over and the step repeats the previous "
                "output), a per-step branch rnnedge does not run; save the model without the Masking "
                "layer (the weights are the same) and give rnnedge only the unmasked steps: Model.run "
                "on each sequence without its padding, or Stream.step skipping the masked frames, "
                "gives Keras's outputs at those steps"))  # fmt: skip
        else:
            raise _unsupported(kf, l)

    if not layers:
        layers.append(Activation(Act.make("Identity"), features))
    axes = "BTF" if sequence else "BF"
    out_shape: list[int | None] = [None, None, features] if sequence else [None, features]
    pipeline = all(isinstance(op, (Dense, Activation, LayerNorm, Recurrent, TakeLast)) for op in layers)
    net = Network(
        layers=layers if pipeline else [],  # type: ignore[arg-type]
        input=TensorSpec(in_name, "BT", [None, None]) if ids else TensorSpec(in_name, "BTF", [None, None, int(shape[2])]),
        output=TensorSpec(out_name, axes, out_shape),
        name=name or kf.config.get("config", {}).get("name") or kf.stem,
        producer=f"keras {kf.version}",
    )
    try:
        if not pipeline:
            return steps_to_graph(layers, net, ids)
        net.check()
    except ConvertError as e:
        raise ConvertError(f"{kf.label}: {e}") from None
    return net
