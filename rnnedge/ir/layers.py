"""The layer list: what the converter builds, the blob writer stores and the numpy reference runs.

A `Network` is a straight pipeline of layers over a sequence of feature vectors `[T, B, F]`.
Weights are kept in ONNX's layout and gate order (LSTM i,o,f,c; GRU z,r,h), float32; the blob
writer (rnnedge/format.py) turns them into the blob's layout (docs/format.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Union

import numpy as np

from .errors import ConvertError

# Activation kinds, by their ONNX names, with the blob's code (docs/format.md) and the defaults
# ONNX gives alpha and beta. Softmax and LogSoftmax act on a whole feature vector.
ACTIVATIONS: dict[str, tuple[int, float, float]] = {
    "Identity": (0, 0.0, 0.0),
    "Sigmoid": (1, 0.0, 0.0),
    "Tanh": (2, 0.0, 0.0),
    "Relu": (3, 0.0, 0.0),
    "LeakyRelu": (4, 0.01, 0.0),
    "ThresholdedRelu": (5, 1.0, 0.0),
    "ScaledTanh": (6, 1.0, 1.0),
    "HardSigmoid": (7, 0.2, 0.5),
    "Elu": (8, 1.0, 0.0),
    "Softsign": (9, 0.0, 0.0),
    "Softplus": (10, 0.0, 0.0),
    "Affine": (11, 1.0, 0.0),
    "Clip": (12, float("-inf"), float("inf")),
    "Softmax": (13, 0.0, 0.0),
    "LogSoftmax": (14, 0.0, 0.0),
}
VECTOR_ACTIVATIONS = ("Softmax", "LogSoftmax")

CELL_GATES = {"lstm": 4, "gru": 3, "rnn": 1}
CELL_ACTIVATIONS = {"lstm": 3, "gru": 2, "rnn": 1}
DEFAULT_CELL_ACTIVATIONS = {
    "lstm": ("Sigmoid", "Tanh", "Tanh"),
    "gru": ("Sigmoid", "Tanh"),
    "rnn": ("Tanh",),
}
DIRECTIONS = ("forward", "reverse", "bidirectional")


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
        _, da, db = ACTIVATIONS[kind]
        return Act(kind, float(da if alpha is None else alpha), float(db if beta is None else beta))


class SameWidth:
    """For layers whose `features` field is their width in and out (an activation, TakeLast, and
    their integer forms in quantize.py); Slice overrides out_features."""

    features: int

    @property
    def in_features(self) -> int:
        return self.features

    @property
    def out_features(self) -> int:
        return self.features


@dataclass
class Dense:
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
class LayerNorm:
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
class Recurrent:
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

    def __post_init__(self) -> None:
        if not self.activations:
            self.activations = [
                [Act.make(k) for k in DEFAULT_CELL_ACTIVATIONS[self.cell]]
                for _ in range(self.num_directions)
            ]

    @property
    def num_directions(self) -> int:
        return 2 if self.direction == "bidirectional" else 1

    @property
    def hidden_size(self) -> int:
        return int(self.R.shape[2])

    @property
    def in_features(self) -> int:
        return int(self.W.shape[2])

    @property
    def out_features(self) -> int:
        return self.num_directions * self.hidden_size

    @property
    def streamable(self) -> bool:
        return self.direction == "forward"


@dataclass
class TakeLast(SameWidth):
    """Many-to-one: keep one timestep. Features [0, split) come from step T-1, [split, F) from
    step 0 (split = H after a bidirectional layer gives ONNX Y_h; split = F the last output)."""

    features: int
    split: int


@dataclass
class Slice(SameWidth):
    """Keep features [start, stop) of each timestep."""

    features: int
    start: int
    stop: int

    @property
    def out_features(self) -> int:
        return self.stop - self.start


Layer = Union[Dense, Activation, LayerNorm, Recurrent, TakeLast, Slice]


def to_tbf(a: np.ndarray, axes: str) -> np.ndarray:
    """An array in a graph's layout (axis letters T, B, F, or D and H for a split F) -> the
    pipeline's [T, B, F]. Axes the layout lacks are added with size 1. A view where possible."""
    order = "TBDH" if "D" in axes else "TBF"
    for letter in order:
        if letter not in axes:
            a, axes = a[..., None], axes + letter
    a = a.transpose([axes.index(c) for c in order])
    return a.reshape(a.shape[0], a.shape[1], int(np.prod(a.shape[2:])))


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
class Network:
    """A converted model: the layer pipeline plus what the blob's metadata records."""

    layers: list[Layer]
    input: TensorSpec
    output: TensorSpec
    name: str = "model"
    producer: str = ""
    quant: str = "f32"
    state: list[StateSpec] = field(default_factory=list)
    folded: list[str] = field(default_factory=list)

    @property
    def in_features(self) -> int:
        return self.layers[0].in_features

    @property
    def out_features(self) -> int:
        return self.layers[-1].out_features

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
