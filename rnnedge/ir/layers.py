"""The layer types of the IR, float and integer side by side (see rnnedge/ir/__init__.py).

A `Network` is a straight pipeline of float layers over a sequence of feature vectors [T, B, F];
weights are kept in ONNX's layout and gate order (LSTM i,o,f,c; GRU z,r,h), float32. A `QNetwork`
is the same pipeline in integers (QDense, QRecurrent, ...; docs/quantization.md), with its float
`source`. Both kinds derive from `Layer`. `to_tbf` / `from_tbf` convert between a graph's axis
layout and the pipeline's [T, B, F]. Needs numpy only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Union

import numpy as np

from ..errors import ConvertError

QUANTS = ("f32", "int16", "int8")  # a model's number format (metadata "quant")
WFMT = {"int16": "s16", "int8": "s8"}  # an integer format -> the weight storage of its layers

# Activation kinds by their ONNX names, with the defaults ONNX gives alpha and beta (the blob's
# codes for them are in rnnedge/blob/spec.py). Softmax and LogSoftmax act on a whole vector.
ACTIVATIONS: dict[str, tuple[float, float]] = {
    "Identity": (0.0, 0.0),
    "Sigmoid": (0.0, 0.0),
    "Tanh": (0.0, 0.0),
    "Relu": (0.0, 0.0),
    "LeakyRelu": (0.01, 0.0),
    "ThresholdedRelu": (1.0, 0.0),
    "ScaledTanh": (1.0, 1.0),
    "HardSigmoid": (0.2, 0.5),
    "Elu": (1.0, 0.0),
    "Softsign": (0.0, 0.0),
    "Softplus": (0.0, 0.0),
    "Affine": (1.0, 0.0),
    "Clip": (float("-inf"), float("inf")),
    "Softmax": (0.0, 0.0),
    "LogSoftmax": (0.0, 0.0),
    # graph ops (format version 2, docs/graph.md): elementwise; Pow's alpha is the exponent
    "Abs": (0.0, 0.0),
    "Neg": (0.0, 0.0),
    "Sqrt": (0.0, 0.0),
    "Reciprocal": (0.0, 0.0),
    "Exp": (0.0, 0.0),
    "Log": (0.0, 0.0),
    "Erf": (0.0, 0.0),
    "Pow": (1.0, 0.0),
}
GRAPH_ACTIVATIONS = ("Abs", "Neg", "Sqrt", "Reciprocal", "Exp", "Log", "Erf", "Pow")
VECTOR_ACTIVATIONS = ("Softmax", "LogSoftmax")
# which activations read alpha / beta (docs/format.md, activation table)
ACT_USES_ALPHA = {
    "LeakyRelu", "ThresholdedRelu", "ScaledTanh", "HardSigmoid", "Elu", "Affine", "Clip", "Pow"
}  # fmt: skip
ACT_USES_BETA = {"ScaledTanh", "HardSigmoid", "Affine", "Clip"}

CELL_GATES = {"lstm": 4, "gru": 3, "rnn": 1}
CELL_ACTIVATIONS = {"lstm": 3, "gru": 2, "rnn": 1}
DEFAULT_CELL_ACTIVATIONS = {
    "lstm": ("Sigmoid", "Tanh", "Tanh"),
    "gru": ("Sigmoid", "Tanh"),
    "rnn": ("Tanh",),
}
DIRECTIONS = ("forward", "reverse", "bidirectional")
F32_MAX = float(np.finfo(np.float32).max)


@dataclass(frozen=True)
class Act:
    """One activation function with its parameters resolved (ONNX defaults filled in)."""

    kind: str
    alpha: float = 0.0
    beta: float = 0.0

    @staticmethod
    def make(kind: str, alpha: float | None = None, beta: float | None = None) -> "Act":
        if kind not in ACTIVATIONS:
            raise ConvertError(
                f"activation {kind!r} is not supported; supported: {', '.join(ACTIVATIONS)}"
            )
        da, db = ACTIVATIONS[kind]
        return Act(kind, float(da if alpha is None else alpha), float(db if beta is None else beta))


@dataclass(frozen=True)
class Mult:
    """Real multipliers m * 2^-shift: m int32 values (any shape, int64 array), one shift in 1..62."""

    m: np.ndarray
    shift: int

    def real(self) -> np.ndarray:
        return self.m.astype(np.float64) * 2.0**-self.shift


# -- the one base, and what layers share ------------------------------------------------------------
class Layer:
    """What every layer, float or integer, has: its feature counts in and out."""

    @property
    def in_features(self) -> int:
        raise NotImplementedError

    @property
    def out_features(self) -> int:
        raise NotImplementedError


class SameWidth(Layer):
    """For layers whose `features` field is their width in and out (an activation, TakeLast, and
    their integer forms); Slice overrides out_features."""

    features: int

    @property
    def in_features(self) -> int:
        return self.features

    @property
    def out_features(self) -> int:
        return self.features


def keeps_state(op: object) -> bool:
    """A recurrent node with a stream state of its own (not one over a per-step axis)."""
    return isinstance(op, RecurrentShape) and not op.inner


class RecurrentShape(Layer):
    """The sizes of an LSTM / GRU / RNN, float or integer: W [D, G*H, I] and R [D, G*H, H]."""

    cell: str
    direction: str
    W: np.ndarray
    R: np.ndarray

    @property
    def num_directions(self) -> int:
        return 2 if self.direction == "bidirectional" else 1

    @property
    def hidden(self) -> int:
        return int(self.R.shape[2])

    @property
    def in_features(self) -> int:
        return int(self.W.shape[2])

    @property
    def out_features(self) -> int:
        return self.num_directions * self.hidden

    @property
    def streamable(self) -> bool:
        return self.direction == "forward" or self.inner > 0

    # 0: a recurrence over time; L > 0: over the first per-step axis (L elements) of each row,
    # from a zero state every row (docs/graph.md section 2, RNE_LF_INNER): no stream state
    inner: int = 0


class Pipeline:
    """What a model has, float, integer or as a blob stores it: layers, the first one's input
    features and the last one's output features."""

    layers: list

    @property
    def in_features(self) -> int:
        return self.layers[0].in_features

    @property
    def out_features(self) -> int:
        return self.layers[-1].out_features


class PassScale:
    """For integer layers that copy int16 values: the scale passes through."""

    scale: float

    @property
    def in_scale(self) -> float:
        return self.scale

    @property
    def out_scale(self) -> float:
        return self.scale


# -- float layers ---------------------------------------------------------------------------------


@dataclass
class Dense(Layer):
    """y = W x + b per timestep. weight [N, K] (ONNX Gemm with transB=1 / torch Linear layout)."""

    weight: np.ndarray
    bias: np.ndarray | None = None

    @property
    def in_features(self) -> int:
        return int(self.weight.shape[1])

    @property
    def out_features(self) -> int:
        return int(self.weight.shape[0])


@dataclass
class Activation(SameWidth):
    """An elementwise (or, for Softmax/LogSoftmax, per-timestep vector) activation."""

    act: Act
    features: int


@dataclass
class LayerNorm(Layer):
    """Normalise each timestep's feature vector: (x - mean) / sqrt(var + eps) * gamma + beta."""

    gamma: np.ndarray
    beta: np.ndarray | None = None
    epsilon: float = 1e-5

    @property
    def in_features(self) -> int:
        return int(self.gamma.shape[0])

    @property
    def out_features(self) -> int:
        return int(self.gamma.shape[0])


@dataclass
class Recurrent(RecurrentShape):
    """An ONNX LSTM, GRU or RNN node, weights in ONNX layout.

    W [D, G*H, I], R [D, G*H, H], B [D, 2*G*H] (Wb then Rb) or None, P [D, 3*H] (LSTM peepholes
    i, o, f) or None, initial_h / initial_c [D, H] or None. activations: one list per direction of
    CELL_ACTIVATIONS[cell] entries (LSTM f, g, h; GRU f, g; RNN f).
    """

    cell: str
    direction: str
    W: np.ndarray
    R: np.ndarray
    B: np.ndarray | None = None
    P: np.ndarray | None = None
    initial_h: np.ndarray | None = None
    initial_c: np.ndarray | None = None
    activations: list[list[Act]] = field(default_factory=list)
    clip: float | None = None
    input_forget: bool = False
    linear_before_reset: bool = False
    inner: int = 0

    def __post_init__(self) -> None:
        if not self.activations:
            self.activations = [
                [Act.make(k) for k in DEFAULT_CELL_ACTIVATIONS[self.cell]]
                for _ in range(self.num_directions)
            ]


@dataclass
class TakeLast(SameWidth):
    """Many-to-one: keep one timestep. Features [0, split) come from step T-1, [split, F) from
    step 0 (split = H after a bidirectional layer gives ONNX Y_h; split = F the last output)."""

    features: int
    split: int


@dataclass
class Slice(SameWidth):
    """Keep features [start, stop) of each timestep; in a graph, elements start, start + step, ...
    below stop along per-step axis `axis` (-1: the last; docs/graph.md)."""

    features: int
    start: int
    stop: int
    axis: int = -1
    step: int = 1

    @property
    def out_features(self) -> int:
        return self.stop - self.start


FloatLayer = Union[Dense, Activation, LayerNorm, Recurrent, TakeLast, Slice]


def to_tbf(a: np.ndarray, axes: str) -> np.ndarray:
    """An array in a graph's layout (axis letters T, B, F, or D and H for a split F) -> the
    pipeline's [T, B, F]. Axes the layout lacks are added with size 1. A view where possible."""
    order = "TBDH" if "D" in axes else "TBF"
    for letter in order:
        if letter not in axes:
            a, axes = a[..., None], axes + letter
    a = a.transpose([axes.index(c) for c in order])
    return a.reshape(a.shape[0], a.shape[1], math.prod(a.shape[2:]))


def from_tbf(y: np.ndarray, axes: str, dirs: int = 1) -> np.ndarray:
    """[T, B, F] -> the graph's layout `axes`, F split into (D = dirs, H) where the layout has D.
    Axes the layout lacks must have size 1 and are dropped. A view where possible."""
    letters = "TBF"
    if "D" in axes:
        y, letters = y.reshape(y.shape[0], y.shape[1], dirs, y.shape[2] // dirs), "TBDH"
    for letter in letters:
        if letter not in axes:
            y, letters = y.squeeze(letters.index(letter)), letters.replace(letter, "")
    return y.transpose([letters.index(c) for c in axes])


@dataclass
class TensorSpec:
    """How the original graph's input or output tensor is laid out.

    axes: one letter per axis: T time, B batch, F features; an output may split F into D, H.
    shape: the static sizes, None where dynamic.
    """

    name: str
    axes: str
    shape: list[int | None]


@dataclass
class StateSpec:
    """A graph input/output pair that carries a recurrent state, mapped onto a stream's state."""

    name: str  # the graph input's name (e.g. "h0")
    layer: int  # index of the recurrent layer in Network.layers
    kind: str  # "h" or "c"
    output: str | None = None  # the graph output carrying the final value (e.g. "hn")


@dataclass
class Network(Pipeline):
    """A converted model: the layer pipeline plus what the blob's metadata records."""

    layers: list[FloatLayer]
    input: TensorSpec
    output: TensorSpec
    name: str = "model"
    producer: str = ""
    quant: str = "f32"
    state: list[StateSpec] = field(default_factory=list)
    folded: list[str] = field(default_factory=list)

    @property
    def streamable(self) -> bool:
        return all(l.streamable for l in self.layers if isinstance(l, Recurrent))

    @property
    def many_to_one(self) -> bool:
        return any(isinstance(l, TakeLast) for l in self.layers)

    def check(self) -> None:
        """Raise ConvertError if the pipeline does not fit together."""
        if not self.layers:
            raise ConvertError("the network has no layers")
        seen_last = False
        for i, layer in enumerate(self.layers):
            if i and layer.in_features != self.layers[i - 1].out_features:
                raise ConvertError(
                    f"layer {i} ({type(layer).__name__}) takes {layer.in_features} features but "
                    f"layer {i - 1} ({type(self.layers[i - 1]).__name__}) gives "
                    f"{self.layers[i - 1].out_features}"
                )
            if isinstance(layer, TakeLast):
                if seen_last:
                    raise ConvertError("the network takes the last timestep twice")
                seen_last = True
            if isinstance(layer, Recurrent) and seen_last:
                raise ConvertError(f"layer {i}: a recurrent layer after the last-step selection")


# -- integer layers (docs/quantization.md) ---------------------------------------------------------

@dataclass
class QDense(Layer):
    """y[n] = sat16(rq32(sum_k W[n,k] x[k], mult[n]) + bias[n]). W int8/int16 [N, K]."""

    W: np.ndarray
    bias: np.ndarray | None  # int32 [N], in output units
    mult: Mult  # m [N]
    wfmt: str
    in_scale: float
    out_scale: float
    acc_bound: int  # max over rows of sum_k |W[n,k]| * 32768: |accumulator| <= acc_bound

    @property
    def in_features(self) -> int:
        return int(self.W.shape[1])

    @property
    def out_features(self) -> int:
        return int(self.W.shape[0])


@dataclass
class QActivation(SameWidth):
    """An elementwise (or per-step vector) activation, int16 -> int16. The meaning of m1..m3,
    k0, k1 per kind is in docs/quantization.md ("Activation layers")."""

    kind: str
    features: int
    in_scale: float
    out_scale: float
    m1: Mult
    m2: Mult | None = None
    m3: Mult | None = None
    k0: int = 0
    k1: int = 0
    table: np.ndarray | None = None  # int16 [257] for fixedpoint.LUT_KINDS (not Log: log_q)
    alpha: float = 0.0
    beta: float = 0.0
    wfmt: str = "s16"


@dataclass
class QRecurrent(RecurrentShape):
    """An integer LSTM / GRU / RNN. W [D, G*H, I], R [D, G*H, H] int8/int16 in ONNX gate order,
    each row with its own scale: mult_w.m [D, G*H] requantizes the rows of W x, mult_r.m [D, G*H]
    those of R h. bias int32 [D, Q] in pre-activation units, Q = G*H (plus H for a GRU with
    linear_before_reset: its h gate keeps Wbh in row 2H..3H and Rbh in the extra H)."""

    cell: str
    direction: str
    wfmt: str
    W: np.ndarray
    R: np.ndarray
    bias: np.ndarray
    mult_w: Mult
    mult_r: Mult
    zlim: int  # gate pre-activations are clamped to [-zlim, zlim] (clip, or ZMAX)
    acts: list[tuple[str, ...]]  # per direction: LSTM f, g, h; GRU f, g; RNN f
    hs: list[list[tuple[Mult, int] | None]]  # per direction, per act slot: HardSigmoid (m, beta)
    in_scale: float
    out_scale: float  # h scale: 2^-15, or calibrated for a ReLU RNN
    acc_bound: int
    P: np.ndarray | None = None  # LSTM peepholes int16 [D, 3, H] (i, o, f)
    peep: Mult | None = None  # m [D, 3]
    input_forget: bool = False
    linear_before_reset: bool = False
    h0: np.ndarray | None = None  # int16 [D, H]
    c0: np.ndarray | None = None  # int32 [D, H], Q11.20
    clip: float | None = None
    # an LSTM's cell state as a graph value (docs/quantization.md section 14): c_init (int16 at
    # its value's scale) -> Q11.20 by c_in, Q11.20 -> Y_c (int16) by c_out; None: no such value
    c_in: Mult | None = None
    c_out: Mult | None = None
    inner: int = 0

    def row_mult(self, d: int, path: str, a: int = 0, b: int | None = None) -> Mult:
        """Direction d's multipliers of rows [a, b) of W x (path "w") or R h (path "r")."""
        m = self.mult_w if path == "w" else self.mult_r
        return Mult(m.m[d, a:b], m.shift)

    def peep_mult(self, d: int, k: int) -> Mult:
        assert self.peep is not None
        return Mult(self.peep.m[d, k], self.peep.shift)


@dataclass
class QTakeLast(SameWidth, PassScale):
    """TakeLast on int16 values; the scale passes through."""

    features: int
    split: int
    scale: float
    wfmt: str = "s16"


@dataclass
class QSlice(SameWidth, PassScale):
    """Slice on int16 values; the scale passes through."""

    features: int
    start: int
    stop: int
    scale: float
    wfmt: str = "s16"
    axis: int = -1
    step: int = 1

    @property
    def out_features(self) -> int:
        return self.stop - self.start


@dataclass
class QLayerNorm(SameWidth):
    """LayerNorm over the features of each step, int16 -> int16 (fixedpoint.layernorm_q): gamma
    is folded into the row multipliers mult.m [F] (gamma_k 2^-24 / s_out), beta is bias int32 [F]
    in output units, epsilon is eps_q in units of (s_in / 16)^2."""

    features: int
    mult: Mult
    bias: np.ndarray | None
    eps_q: int
    epsilon: float  # the float layer's, kept for the blob record (informative)
    in_scale: float
    out_scale: float
    wfmt: str = "s16"


IntLayer = Union[QDense, QActivation, QLayerNorm, QRecurrent, QTakeLast, QSlice]


@dataclass
class LayerReport:
    """What the converter decided for one layer, and the error it measured."""

    index: int
    kind: str
    wfmt: str
    error: float | None  # this layer alone: max |int - float| / its float output's range
    output_error: float | None = None  # this layer in integers, the rest float: at the model output
    note: str = ""


@dataclass
class QNetwork(Pipeline):
    """A quantized model: integer layers, the int16 scales of its input and output, and the float
    Network it was made from (with what quantization measured: report, accuracy)."""

    layers: list[IntLayer]
    in_scale: float
    out_scale: float
    quant: str  # "int8" or "int16"
    source: Network  # the float network: names, layouts, state mapping for the blob metadata
    report: list[LayerReport] = field(default_factory=list)
    accuracy: dict[str, float] = field(default_factory=dict)  # end to end, on the same data
    calibrated: bool = False

