"""The case table: named ONNX models, each with the rnnedge Network it is equivalent to.

Used by the reference tests (test_reference.py), the converter tests and the end-to-end tests, so
that all of them run the same models. Every case is deterministic (weights seeded from its name).

    for case in CASES:
        built = case.build()            # Built: model, network, feeds, x, state
        y_onnx = session.run(None, built.feeds)[0]
        y_net, _ = run_network(built.network, built.x, built.state)
        np.testing.assert_allclose(to_tbf(y_onnx, built.network.output.axes), y_net, ...)

- `RECURRENT_CASES`: one LSTM / GRU / RNN node each, covering every attribute: directions,
  activations with and without alpha/beta, clip, input_forget, peepholes, linear_before_reset 0/1,
  bias or none, initial states as initializers or as graph inputs (stream state), hidden sizes
  not a multiple of 8, batch 1..3, T = 1, layout=1 (batch-major; onnxruntime refuses it, so
  those run on onnx's ReferenceEvaluator). `build(all_outputs=True)` also exposes Y_h (and Y_c).
- `LAYER_CASES`: one non-recurrent layer each (Dense, every Activation kind, LayerNorm, Slice,
  TakeLast) written the way exporters write them.
- `PIPELINE_CASES`: small whole models (stacked, bidirectional, batch-first, many-to-one heads).
A case with `convertible=False` has no single-op ONNX form (ScaledTanh, Affine are composed from
Mul/Add here): it checks the reference, and the converter is not expected to read it.

ONNX spells activation parameters loosely. The Networks here hold what onnxruntime reads from
each node (rnnedge.reference.cell_activations, checked against onnxruntime by test_reference.py):
`activation_alpha`/`activation_beta` hold values only for the activations that take them, in
order over all directions; missing ones take onnxruntime's defaults (LeakyRelu 0.01, HardSigmoid
0.2/0.5, Elu 1.0, and 0 for ThresholdedRelu, ScaledTanh and Affine: not the standalone ops').
"""

from __future__ import annotations

import dataclasses
import zlib
from dataclasses import dataclass
from typing import Callable, Optional, Sequence, Union

import numpy as np
import onnx
import onnx.reference
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from rnnedge.ir.layers import (
    CELL_GATES, Act, Activation, Dense, FloatLayer, LayerNorm, Network, Recurrent, Slice, StateSpec,
    TakeLast, TensorSpec, from_tbf, to_tbf,
)  # fmt: skip
from rnnedge.reference import cell_activations

OPSET = 17
IR_VERSION = 8
PRODUCER = "rnnedge tests/onnx_cases.py"

# activations that read alpha / beta, by onnxruntime's table (rnn_helpers.cc NameToArgUsageMap)
TAKES_ALPHA = {"Affine", "LeakyRelu", "ThresholdedRelu", "ScaledTanh", "HardSigmoid", "Elu"}
TAKES_BETA = {"Affine", "ScaledTanh", "HardSigmoid"}

ActSpec = Union[str, tuple[str, Optional[float], Optional[float]]]


@dataclass
class Built:
    """One built case: the ONNX model and what rnnedge should make of it."""

    model: onnx.ModelProto
    network: Network
    feeds: dict[str, np.ndarray]  # onnxruntime inputs (graph layout)
    x: np.ndarray  # the same input as [T, B, F] float32, for run_network
    state: list | None  # run_network state equal to the state inputs in feeds, else None


# -- layout helpers --------------------------------------------------------------------------------
def _seed(name: str) -> np.random.Generator:
    return np.random.default_rng(zlib.crc32(name.encode()))


def _uniform(rng: np.random.Generator, shape: Sequence[int], scale: float) -> np.ndarray:
    return rng.uniform(-scale, scale, size=tuple(shape)).astype(np.float32)


# -- a tiny graph builder --------------------------------------------------------------------------
class _Graph:
    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.count = 0

    def name(self, base: str) -> str:
        self.count += 1
        return f"{base}_{self.count}"

    def const(self, a: np.ndarray, base: str = "c") -> str:
        name = self.name(base)
        self.inits.append(numpy_helper.from_array(np.asarray(a), name))
        return name

    def op(self, op_type: str, inputs: Sequence[str], n_out: int = 1, out: Sequence[str] = (),
           **attrs) -> list[str]:  # fmt: skip
        outputs = list(out) or [self.name(op_type.lower()) for _ in range(n_out)]
        self.nodes.append(helper.make_node(op_type, list(inputs), outputs, **attrs))
        return outputs

    def model(self, name: str, inputs: list[onnx.ValueInfoProto],
              outputs: list[onnx.ValueInfoProto]) -> onnx.ModelProto:  # fmt: skip
        graph = helper.make_graph(self.nodes, name, inputs, outputs, self.inits)
        m = helper.make_model(
            graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name=PRODUCER
        )
        m.ir_version = IR_VERSION
        onnx.checker.check_model(m)
        return m


def _vi(name: str, shape: Sequence[int | str | None]) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, list(shape))


# -- recurrent layers as ONNX nodes ---------------------------------------------------------------
def _act_triple(spec: ActSpec) -> tuple[str, float | None, float | None]:
    return (spec, None, None) if isinstance(spec, str) else spec


def activation_attrs(cell: str, specs: Sequence[ActSpec] | None) -> dict:
    """ONNX attributes activations / activation_alpha / activation_beta for a flat list of
    (kind, alpha, beta) over all directions; None alpha/beta = left to the default. The lists
    hold values only for the activations that take them."""
    if specs is None:
        return {}
    triples = [_act_triple(s) for s in specs]
    attrs: dict = {"activations": [k for k, _, _ in triples]}
    for key, takes, idx in (("activation_alpha", TAKES_ALPHA, 1),
                            ("activation_beta", TAKES_BETA, 2)):  # fmt: skip
        users = [t for t in triples if t[0] in takes]
        given = [t[idx] for t in users if t[idx] is not None]
        if not given:
            continue
        if len(given) != len(users):
            raise ValueError(f"{key}: give it for all of {[t[0] for t in users]} or for none")
        attrs[key] = [float(v) for v in given]
    return attrs


def resolved_acts(cell: str, direction: str, specs: Sequence[ActSpec] | None) -> list[list[Act]]:
    """The per-direction Acts onnxruntime reads from activation_attrs(cell, specs)."""
    attrs = activation_attrs(cell, specs)
    names, alphas = attrs.get("activations"), attrs.get("activation_alpha")
    return cell_activations(cell, direction, names, alphas, attrs.get("activation_beta"))


def recurrent_node(
    g: _Graph,
    layer: Recurrent,
    x: str,
    batch: int,
    h0: str = "",
    c0: str = "",
    acts: Sequence[ActSpec] | None = None,
    outputs: Sequence[str] = (),
    layout: int = 0,
) -> list[str]:
    """Add the ONNX node equal to `layer` reading x [T, B, I] ([B, T, I] with layout=1); returns
    the names of Y, Y_h (, Y_c).

    The layer's initial_h / initial_c become [D, B, H] ([B, D, H]) initializers unless h0 / c0
    name graph inputs. `acts` gives the attribute spelling (default: the layer's activations,
    explicit)."""
    H = layer.hidden
    if acts is None and layer.activations != resolved_acts(layer.cell, layer.direction, None):
        acts = [(a.kind, a.alpha if a.kind in TAKES_ALPHA else None,
                 a.beta if a.kind in TAKES_BETA else None)
                for d in layer.activations for a in d]  # fmt: skip

    def init(a: np.ndarray | None, name: str) -> str:
        if name or a is None:
            return name
        tiled = np.repeat(a[:, None, :], batch, axis=1)
        return g.const(tiled.transpose(1, 0, 2) if layout else tiled, "initial")

    B = "" if layer.B is None else g.const(layer.B, "B")
    inputs = [x, g.const(layer.W, "W"), g.const(layer.R, "R"), B, "", init(layer.initial_h, h0)]
    attrs = {"hidden_size": H, "direction": layer.direction} | activation_attrs(layer.cell, acts)
    if layer.clip is not None:
        attrs["clip"] = float(layer.clip)
    if layout:
        attrs["layout"] = layout
    if layer.cell == "lstm":
        inputs += [init(layer.initial_c, c0), "" if layer.P is None else g.const(layer.P, "P")]
        if layer.input_forget:
            attrs["input_forget"] = 1
    if layer.cell == "gru":
        attrs["linear_before_reset"] = int(layer.linear_before_reset)
    while inputs[-1] == "":
        inputs.pop()
    n_out = 3 if layer.cell == "lstm" else 2
    return g.op(layer.cell.upper(), inputs, n_out=n_out, out=outputs, **attrs)


@dataclass(frozen=True)
class RecurrentCase:
    """One LSTM / GRU / RNN node. Graph input X [T, B, I]; output Y [T, D, B, H] (or Y_h
    [D, B, H] when output="Y_h": the network then ends in TakeLast). With layout=1 (batch-major:
    X [B, T, I], Y [B, T, D, H], Y_h [B, D, H]; onnxruntime refuses it) the batch axis comes
    first everywhere."""

    name: str
    cell: str
    direction: str = "forward"
    hidden: int = 5
    inputs: int = 3
    batch: int = 2
    steps: int = 4
    acts: tuple[ActSpec, ...] | None = None  # flat over directions; None = attribute omitted
    clip: float | None = None
    bias: bool = True
    peepholes: bool = False
    initial_h: bool = False
    initial_c: bool = False
    state_inputs: bool = False  # initial h (and c) as graph inputs h0 / c0 -> outputs hn / cn
    input_forget: bool = False
    linear_before_reset: bool = False
    output: str = "Y"
    layout: int = 0
    scale: float = 1.0  # weight scale relative to 1/sqrt(H)
    convertible: bool = True

    @property
    def num_directions(self) -> int:
        return 2 if self.direction == "bidirectional" else 1

    def layer(self) -> Recurrent:
        rng = _seed(self.name)
        D, G, H, I = self.num_directions, CELL_GATES[self.cell], self.hidden, self.inputs
        s = self.scale / np.sqrt(H)
        lstm = self.cell == "lstm"
        return Recurrent(
            cell=self.cell,
            direction=self.direction,
            W=_uniform(rng, (D, G * H, I), s),
            R=_uniform(rng, (D, G * H, H), s),
            B=_uniform(rng, (D, 2 * G * H), s) if self.bias else None,
            P=_uniform(rng, (D, 3 * H), s) if self.peepholes else None,
            initial_h=_uniform(rng, (D, H), 1.0) if self.initial_h else None,
            initial_c=_uniform(rng, (D, H), 1.0) if self.initial_c and lstm else None,
            activations=resolved_acts(self.cell, self.direction, self.acts),
            clip=self.clip,
            input_forget=self.input_forget,
            linear_before_reset=self.linear_before_reset,
        )

    def build(self, all_outputs: bool = False) -> Built:
        layer = self.layer()
        rng = _seed(self.name + "/inputs")
        D, H, B, T = self.num_directions, self.hidden, self.batch, self.steps
        lstm, bm = self.cell == "lstm", bool(self.layout)
        if bm and self.state_inputs:
            raise ValueError(f"{self.name}: state inputs with layout=1 would be [B, D, H]; "
                             "StateSpec has no axes for that")  # fmt: skip
        g = _Graph()
        h0, c0 = ("h0", "c0" if lstm else "") if self.state_inputs else ("", "")
        names = ["Y", "hn", "cn"][: 3 if lstm else 2]
        recurrent_node(g, layer, "X", B, h0, c0, self.acts, names, self.layout)
        x = rng.standard_normal((T, B, self.inputs)).astype(np.float32)
        x_axes = "BTF" if bm else "TBF"
        feeds = {"X": from_tbf(x, x_axes)}
        graph_in = [_vi("X", [B, "T", self.inputs] if bm else ["T", B, self.inputs])]
        state = None
        specs: list[StateSpec] = []
        if self.state_inputs:
            kinds = ["h", "c"] if lstm else ["h"]
            arrays = tuple(rng.uniform(-1, 1, (D, B, H)).astype(np.float32) for _ in kinds)
            for kind, a in zip(kinds, arrays):
                feeds[f"{kind}0"] = a
                graph_in.append(_vi(f"{kind}0", [D, B, H]))
                specs.append(StateSpec(f"{kind}0", 0, kind, f"{kind}n"))
            state = [arrays]
        main = "Y" if self.output == "Y" else "hn"
        shown = [main] + [n for n in names[1:] if n != main and (all_outputs or self.state_inputs)]
        shapes = {"Y": ["T", D, B, H], "hn": [D, B, H], "cn": [D, B, H]}
        if bm:
            shapes = {"Y": [B, "T", D, H], "hn": [B, D, H], "cn": [B, D, H]}
        layers: list[FloatLayer] = [layer]
        if self.output == "Y":
            out_spec = TensorSpec("Y", "BTDH", [None, None, D, H]) if bm else (
                TensorSpec("Y", "TDBH", [None, D, None, H]))  # fmt: skip
        else:  # Y_h: forward state after step T-1, reverse state after step 0
            split = H if self.direction != "reverse" else 0
            layers.append(TakeLast(D * H, split))
            out_spec = TensorSpec("hn", "BDH", [None, D, H]) if bm else (
                TensorSpec("hn", "DBH", [D, None, H]))  # fmt: skip
        in_spec = TensorSpec("X", x_axes, [None, None, self.inputs])
        net = Network(layers, in_spec, out_spec, name=self.name, producer=PRODUCER, state=specs)
        model = g.model(self.name, graph_in, [_vi(n, shapes[n]) for n in shown])
        return Built(model, net, feeds, x, state)


def _r(name: str, cell: str, **kw) -> RecurrentCase:
    return RecurrentCase(name, cell, **kw)


BIDIR = "bidirectional"
RECURRENT_CASES: list[RecurrentCase] = [
    # LSTM
    _r("lstm_forward", "lstm"),
    _r("lstm_no_bias", "lstm", bias=False),
    _r("lstm_reverse", "lstm", direction="reverse"),
    _r("lstm_bidirectional", "lstm", direction=BIDIR),
    _r("lstm_peepholes", "lstm", peepholes=True, scale=2.0),
    _r("lstm_bidirectional_peepholes_initial_states", "lstm", direction=BIDIR, peepholes=True,
       initial_h=True, initial_c=True),  # fmt: skip
    _r("lstm_input_forget", "lstm", input_forget=True),
    _r("lstm_input_forget_peepholes", "lstm", input_forget=True, peepholes=True, scale=2.0),
    _r("lstm_clip", "lstm", clip=0.7, scale=4.0),
    _r("lstm_initial_h_only", "lstm", initial_h=True),
    _r("lstm_initial_c_only", "lstm", initial_c=True),
    _r("lstm_state_inputs", "lstm", state_inputs=True),
    _r("lstm_bidirectional_state_inputs", "lstm", direction=BIDIR, state_inputs=True),
    _r("lstm_acts_params", "lstm",
       acts=(("HardSigmoid", 0.3, 0.6), ("ScaledTanh", 1.5, 0.7), ("LeakyRelu", 0.2, None))),
    _r("lstm_acts_defaults", "lstm", acts=("HardSigmoid", "Elu", "LeakyRelu"), scale=2.0),
    _r("lstm_acts_bidirectional", "lstm", direction=BIDIR,
       acts=("Sigmoid", "Softsign", "Softplus",
             ("HardSigmoid", 0.25, 0.45), ("Affine", 0.8, 0.1), ("ThresholdedRelu", 0.05, None))),
    _r("lstm_acts_relu_elu", "lstm", acts=("Sigmoid", "Relu", ("Elu", 0.6, None))),
    _r("lstm_acts_ort_default_thresholdedrelu", "lstm",
       acts=("Sigmoid", "ThresholdedRelu", "Tanh")),
    _r("lstm_hidden1_batch1", "lstm", hidden=1, inputs=1, batch=1, steps=5),
    _r("lstm_hidden16_batch3", "lstm", hidden=16, inputs=7, batch=3, steps=6),
    _r("lstm_one_step", "lstm", steps=1, initial_h=True, initial_c=True),
    _r("lstm_everything", "lstm", direction=BIDIR, peepholes=True, clip=1.0, scale=3.0,
       input_forget=True, initial_h=True, initial_c=True, hidden=6,
       acts=(("HardSigmoid", 0.3, 0.5), "Tanh", ("ScaledTanh", 1.1, 0.9),
             "Sigmoid", ("LeakyRelu", 0.1, None), "Softsign")),  # fmt: skip
    _r("lstm_yh", "lstm", output="Y_h"),
    _r("lstm_layout1_bidirectional_peepholes", "lstm", layout=1, direction=BIDIR, peepholes=True,
       initial_h=True, initial_c=True),
    _r("lstm_layout1_yh", "lstm", layout=1, output="Y_h", initial_h=True),
    _r("lstm_reverse_yh", "lstm", direction="reverse", output="Y_h"),
    _r("lstm_bidirectional_yh", "lstm", direction=BIDIR, output="Y_h", initial_h=True),
    # GRU
    _r("gru_forward", "gru"),
    _r("gru_linear_before_reset", "gru", linear_before_reset=True),
    _r("gru_no_bias", "gru", bias=False),
    _r("gru_no_bias_linear_before_reset", "gru", bias=False, linear_before_reset=True),
    _r("gru_reverse", "gru", direction="reverse"),
    _r("gru_bidirectional", "gru", direction=BIDIR),
    _r("gru_bidirectional_linear_before_reset", "gru", direction=BIDIR, linear_before_reset=True),
    _r("gru_clip", "gru", clip=0.6, scale=4.0),
    _r("gru_clip_linear_before_reset", "gru", clip=0.6, scale=4.0, linear_before_reset=True),
    _r("gru_initial_h", "gru", initial_h=True),
    _r("gru_state_inputs", "gru", state_inputs=True, linear_before_reset=True),
    _r("gru_bidirectional_state_inputs", "gru", direction=BIDIR, state_inputs=True),
    _r("gru_acts_params", "gru", acts=(("HardSigmoid", 0.3, 0.55), ("ScaledTanh", 1.2, 0.8))),
    _r("gru_acts_bidirectional_linear_before_reset", "gru", direction=BIDIR,
       linear_before_reset=True, acts=("Sigmoid", "Softsign", "HardSigmoid", "Elu")),
    _r("gru_acts_thresholded_affine", "gru", direction=BIDIR,
       acts=("Sigmoid", ("ThresholdedRelu", 0.1, None), "Sigmoid", ("Affine", 0.7, -0.1))),
    _r("gru_acts_relu_softplus", "gru", acts=("Sigmoid", "Relu"), linear_before_reset=True),
    _r("gru_acts_softplus", "gru", acts=("Sigmoid", "Softplus")),
    _r("gru_hidden13_batch3", "gru", hidden=13, inputs=6, batch=3, steps=5),
    _r("gru_hidden1_batch1", "gru", hidden=1, inputs=2, batch=1, steps=3),
    _r("gru_bidirectional_yh", "gru", direction=BIDIR, output="Y_h"),
    _r("gru_layout1_linear_before_reset", "gru", layout=1, linear_before_reset=True,
       initial_h=True),
    _r("gru_layout1_reverse", "gru", layout=1, direction="reverse"),
    _r("gru_reverse_yh", "gru", direction="reverse", output="Y_h", initial_h=True),
    # RNN
    _r("rnn_forward", "rnn"),
    _r("rnn_relu", "rnn", acts=("Relu",)),
    _r("rnn_no_bias", "rnn", bias=False),
    _r("rnn_reverse", "rnn", direction="reverse"),
    _r("rnn_bidirectional", "rnn", direction=BIDIR),
    _r("rnn_bidirectional_acts", "rnn", direction=BIDIR,
       acts=(("LeakyRelu", 0.1, None), ("Elu", 0.7, None))),
    _r("rnn_bidirectional_acts_mixed", "rnn", direction=BIDIR,
       acts=("Tanh", ("LeakyRelu", 0.1, None))),
    _r("rnn_leakyrelu_default", "rnn", acts=("LeakyRelu",)),
    _r("rnn_clip", "rnn", clip=0.5, scale=4.0),
    _r("rnn_initial_h", "rnn", initial_h=True),
    _r("rnn_bidirectional_state_inputs", "rnn", direction=BIDIR, state_inputs=True),
    _r("rnn_affine", "rnn", acts=(("Affine", 0.5, 0.1),)),
    _r("rnn_scaledtanh", "rnn", acts=(("ScaledTanh", 1.3, 0.6),)),
    _r("rnn_hardsigmoid", "rnn", acts=(("HardSigmoid", 0.3, 0.4),)),
    _r("rnn_thresholdedrelu", "rnn", acts=(("ThresholdedRelu", 0.2, None),)),
    _r("rnn_sigmoid", "rnn", acts=("Sigmoid",)),
    _r("rnn_softsign", "rnn", acts=("Softsign",)),
    _r("rnn_softplus", "rnn", acts=("Softplus",), scale=0.5),
    _r("rnn_hidden8_batch3", "rnn", hidden=8, inputs=4, batch=3, steps=7),
    _r("rnn_yh", "rnn", output="Y_h", initial_h=True),
    _r("rnn_layout1_bidirectional", "rnn", layout=1, direction=BIDIR, initial_h=True),
]


# -- non-recurrent layers and whole pipelines --------------------------------------------------
@dataclass(frozen=True)
class PipelineCase:
    """A graph built by `make(g, rng, x_name)`, which adds its nodes and returns (output name,
    output axes, layers). Input X is [T, B, F] ("TBF") unless input_axes says otherwise."""

    name: str
    in_features: int
    make: Callable[[_Graph, np.random.Generator, str], tuple[str, str, list[FloatLayer]]]
    input_axes: str = "TBF"
    steps: int = 5
    batch: int = 2
    convertible: bool = True

    def build(self, all_outputs: bool = False) -> Built:
        del all_outputs  # these graphs have one output
        rng = _seed(self.name)
        g = _Graph()
        out, axes, layers = self.make(g, rng, "X")
        x = rng.standard_normal((self.steps, self.batch, self.in_features)).astype(np.float32)
        sym = {"T": "T", "B": "B", "F": self.in_features}
        net = Network(
            layers,
            TensorSpec("X", self.input_axes, [self.in_features if a == "F" else None
                                              for a in self.input_axes]),  # fmt: skip
            TensorSpec(out, axes, [_out_dim(a, layers) for a in axes]),
            name=self.name,
            producer=PRODUCER,
        )
        model = g.model(
            self.name,
            [_vi("X", [sym[a] for a in self.input_axes])],
            [_vi(out, [None] * len(axes))],
        )
        return Built(model, net, {"X": from_tbf(x, self.input_axes)}, x, None)


def _out_dim(axis: str, layers: list[FloatLayer]) -> int | None:
    last = layers[-1]
    rec = [l for l in layers if isinstance(l, Recurrent)]
    if axis == "F":
        return last.out_features
    if axis == "D":
        return rec[-1].num_directions
    if axis == "H":
        return rec[-1].hidden
    return None


def _dense(g: _Graph, rng: np.random.Generator, x: str, k: int, n: int, bias: bool = True
           ) -> tuple[str, Dense]:  # fmt: skip
    """MatMul by W^T (+ Add b): how exporters write a Linear on a 3-D tensor."""
    w = _uniform(rng, (n, k), 1 / np.sqrt(k))
    b = _uniform(rng, (n,), 0.5) if bias else None
    (y,) = g.op("MatMul", [x, g.const(np.ascontiguousarray(w.T), "W")])
    if b is not None:
        (y,) = g.op("Add", [y, g.const(b, "b")])
    return y, Dense(w, b)


def _dense_case(name: str, bias: bool) -> PipelineCase:
    def make(g, rng, x):
        y, layer = _dense(g, rng, x, 6, 4, bias)
        return y, "TBF", [layer]

    return PipelineCase(name, 6, make)


F_ACT = 7  # features in the activation cases


def _act_case(kind: str, alpha: float | None = None, beta: float | None = None) -> PipelineCase:
    """One activation written as its ONNX op (ScaledTanh / Affine composed: not convertible)."""
    act = Act.make(kind, alpha, beta)

    def make(g, rng, x):
        a, b = act.alpha, act.beta
        if kind in ("Softmax", "LogSoftmax"):
            (y,) = g.op(kind, [x], axis=-1)
        elif kind == "Clip":
            (y,) = g.op("Clip", [x, g.const(np.float32(a)), g.const(np.float32(b))])
        elif kind == "ScaledTanh":
            (t,) = g.op("Mul", [x, g.const(np.float32(b))])
            (t,) = g.op("Tanh", [t])
            (y,) = g.op("Mul", [t, g.const(np.float32(a))])
        elif kind == "Affine":
            (t,) = g.op("Mul", [x, g.const(np.float32(a))])
            (y,) = g.op("Add", [t, g.const(np.float32(b))])
        else:
            attrs = {}
            if kind in ("LeakyRelu", "ThresholdedRelu", "Elu") and alpha is not None:
                attrs["alpha"] = a
            if kind == "HardSigmoid" and alpha is not None:
                attrs |= {"alpha": a, "beta": b}
            (y,) = g.op(kind, [x], **attrs)
        return y, "TBF", [Activation(act, F_ACT)]

    params = "" if alpha is None else f"_{alpha:g}".replace(".", "p").replace("-", "m")
    return PipelineCase(f"act_{kind.lower()}{params}", F_ACT, make,
                        convertible=kind not in ("ScaledTanh", "Affine"))  # fmt: skip


def _layernorm_case(name: str, beta: bool) -> PipelineCase:
    def make(g, rng, x):
        gamma = rng.uniform(0.5, 1.5, 6).astype(np.float32)
        b = _uniform(rng, (6,), 0.5) if beta else None
        inputs = [x, g.const(gamma, "gamma")] + ([g.const(b, "beta")] if beta else [])
        (y,) = g.op("LayerNormalization", inputs, axis=-1, epsilon=1e-3)
        return y, "TBF", [LayerNorm(gamma, b, 1e-3)]

    return PipelineCase(name, 6, make)


def _slice_make(g, rng, x):
    (y,) = g.op("Slice", [x, g.const(np.array([2], np.int64)), g.const(np.array([5], np.int64)),
                          g.const(np.array([2], np.int64))])  # fmt: skip
    return y, "TBF", [Slice(7, 2, 5)]


def _take_last_make(g, rng, x):
    (y,) = g.op("Gather", [x, g.const(np.array(-1, np.int64))], axis=0)
    return y, "BF", [TakeLast(7, 7)]


def _stack_make(g, rng, x):
    """Bidirectional LSTM -> Transpose/Reshape -> LSTM -> last step -> Dense -> Softmax."""
    l1 = RecurrentCase("stack_l1", "lstm", direction=BIDIR, hidden=5, inputs=4).layer()
    l2 = RecurrentCase("stack_l2", "lstm", hidden=6, inputs=10).layer()
    y1, _, _ = recurrent_node(g, l1, x, 2)
    (t,) = g.op("Transpose", [y1], perm=[0, 2, 1, 3])
    (t,) = g.op("Reshape", [t, g.const(np.array([0, 0, -1], np.int64))])
    y2, _, _ = recurrent_node(g, l2, t, 2)
    (t,) = g.op("Squeeze", [y2, g.const(np.array([1], np.int64))])
    (t,) = g.op("Gather", [t, g.const(np.array(-1, np.int64))], axis=0)
    t, dense = _dense(g, rng, t, 6, 3)
    (y,) = g.op("Softmax", [t], axis=-1)
    return y, "BF", [l1, l2, TakeLast(6, 6), dense, Activation(Act.make("Softmax"), 3)]


def _batch_first_make(g, rng, x):
    """Batch-first GRU, as torch exports it: Transpose in, GRU, Squeeze, Transpose out."""
    layer = RecurrentCase("batch_first_gru", "gru", hidden=6, inputs=3,
                          linear_before_reset=True).layer()  # fmt: skip
    (t,) = g.op("Transpose", [x], perm=[1, 0, 2])
    y, _ = recurrent_node(g, layer, t, 2)
    (t,) = g.op("Squeeze", [y, g.const(np.array([1], np.int64))])
    (y,) = g.op("Transpose", [t], perm=[1, 0, 2])
    return y, "BTF", [layer]


def _rnn_head_make(g, rng, x):
    """RNN(relu) -> Relu -> LayerNormalization -> Dense, every step."""
    layer = RecurrentCase("head_rnn", "rnn", hidden=8, inputs=5, acts=("Relu",)).layer()
    y, _ = recurrent_node(g, layer, x, 2)
    (t,) = g.op("Squeeze", [y, g.const(np.array([1], np.int64))])
    (t,) = g.op("Relu", [t])
    gamma = rng.uniform(0.5, 1.5, 8).astype(np.float32)
    beta = _uniform(rng, (8,), 0.3)
    (t,) = g.op("LayerNormalization", [t, g.const(gamma), g.const(beta)], axis=-1, epsilon=1e-5)
    y, dense = _dense(g, rng, t, 8, 2)
    return y, "TBF", [layer, Activation(Act.make("Relu"), 8), LayerNorm(gamma, beta, 1e-5), dense]


def _bigru_yh_make(g, rng, x):
    """Bidirectional GRU's Y_h -> Transpose/Reshape to [B, 2H] -> Dense: a many-to-one head."""
    layer = RecurrentCase("yh_gru", "gru", direction=BIDIR, hidden=4, inputs=3).layer()
    _, yh = recurrent_node(g, layer, x, 2)
    (t,) = g.op("Transpose", [yh], perm=[1, 0, 2])
    (t,) = g.op("Reshape", [t, g.const(np.array([0, -1], np.int64))])
    y, dense = _dense(g, rng, t, 8, 3)
    return y, "BF", [layer, TakeLast(8, 4), dense]


LAYER_CASES: list[PipelineCase] = [
    _dense_case("dense", bias=True),
    _dense_case("dense_no_bias", bias=False),
    _act_case("Identity"),
    _act_case("Sigmoid"),
    _act_case("Tanh"),
    _act_case("Relu"),
    _act_case("LeakyRelu"),
    _act_case("LeakyRelu", 0.2),
    _act_case("ThresholdedRelu", 0.3),
    _act_case("ScaledTanh", 1.5, 0.5),
    _act_case("HardSigmoid", 0.3, 0.4),
    _act_case("Elu", 0.8),
    _act_case("Softsign"),
    _act_case("Softplus"),
    _act_case("Affine", 0.5, -0.2),
    _act_case("Clip", -0.5, 0.8),
    _act_case("Softmax"),
    _act_case("LogSoftmax"),
    _layernorm_case("layernorm", beta=True),
    _layernorm_case("layernorm_no_beta", beta=False),
    PipelineCase("slice", 7, _slice_make),
    PipelineCase("take_last", 7, _take_last_make),
]

PIPELINE_CASES: list[PipelineCase] = [
    PipelineCase("stack_bilstm_lstm_last_dense_softmax", 4, _stack_make, steps=6),
    PipelineCase("gru_batch_first", 3, _batch_first_make, input_axes="BTF"),
    PipelineCase("rnn_relu_layernorm_dense", 5, _rnn_head_make),
    PipelineCase("bigru_yh_dense", 3, _bigru_yh_make, steps=4),
]

CASES: list[RecurrentCase | PipelineCase] = RECURRENT_CASES + LAYER_CASES + PIPELINE_CASES
CASES_BY_NAME = {c.name: c for c in CASES}
assert len(CASES_BY_NAME) == len(CASES), "case names must be unique"


# -- comparing Networks ----------------------------------------------------------------------------
def _f32(v: float | None) -> float | None:
    return None if v is None else float(np.float32(v))


def _same(a: object, b: object, where: str) -> None:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        assert isinstance(a, np.ndarray) and isinstance(b, np.ndarray), f"{where}: {a!r} vs {b!r}"
        assert a.shape == b.shape, f"{where}: shape {a.shape} vs {b.shape}"
        np.testing.assert_array_equal(a.astype(np.float32), b.astype(np.float32), err_msg=where)
    elif isinstance(a, Act) and isinstance(b, Act):
        assert (a.kind, _f32(a.alpha), _f32(a.beta)) == (b.kind, _f32(b.alpha), _f32(b.beta)), (
            f"{where}: {a} vs {b}"
        )
    elif isinstance(a, list) and isinstance(b, list):
        assert len(a) == len(b), f"{where}: {len(a)} vs {len(b)} entries"
        for k, (x, y) in enumerate(zip(a, b)):
            _same(x, y, f"{where}[{k}]")
    elif isinstance(a, float) or isinstance(b, float):
        assert _f32(a) == _f32(b), f"{where}: {a} vs {b}"  # type: ignore[arg-type]
    else:
        assert a == b, f"{where}: {a!r} vs {b!r}"


def assert_networks_equal(a: Network, b: Network) -> None:
    """Field-by-field equality of two Networks; floats compared as the float32 a blob stores."""
    assert len(a.layers) == len(b.layers), f"{len(a.layers)} vs {len(b.layers)} layers"
    for i, (la, lb) in enumerate(zip(a.layers, b.layers)):
        assert type(la) is type(lb), f"layer {i}: {type(la).__name__} vs {type(lb).__name__}"
        for f in dataclasses.fields(la):
            _same(getattr(la, f.name), getattr(lb, f.name), f"layer {i} .{f.name}")
    for name in ("input", "output", "name", "producer", "quant", "state"):  # not folded: unwritten
        _same(getattr(a, name), getattr(b, name), f"network .{name}")


# -- oracles ---------------------------------------------------------------------------------
ORT_ERRORS = ort.capi.onnxruntime_pybind11_state
TOL = 1e-5  # max abs error relative to the output scale max(1, max |y|)


def onnx_outputs(built: Built) -> dict[str, np.ndarray]:
    """Run the case's model: onnxruntime, or onnx's ReferenceEvaluator if onnxruntime refuses it."""
    try:
        options = ort.SessionOptions()
        options.log_severity_level = 3
        session = ort.InferenceSession(
            built.model.SerializeToString(), options, providers=["CPUExecutionProvider"]
        )
        outputs = session.run(None, built.feeds)
    except (ORT_ERRORS.Fail, ORT_ERRORS.NotImplemented):
        outputs = onnx.reference.ReferenceEvaluator(built.model).run(None, built.feeds)
    return {o.name: np.asarray(v) for o, v in zip(built.model.graph.output, outputs)}


def assert_close(got: np.ndarray, want: np.ndarray, what: str) -> None:
    assert got.shape == want.shape, f"{what}: shape {got.shape} != {want.shape}"
    scale = max(1.0, float(np.max(np.abs(want)))) if want.size else 1.0
    err = float(np.max(np.abs(got - want))) if want.size else 0.0
    assert err <= TOL * scale, f"{what}: max abs error {err:.3g} > {TOL} x {scale:.3g}"
