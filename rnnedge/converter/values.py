"""What the converter knows about each tensor of the graph while it walks it.

A tensor is one of:
- `Const`: a value known now (initializers, Constant nodes, folded sub-graphs);
- `SymInts`: a small integer tensor (a shape or a piece of one) whose entries may be symbolic
  run-time sizes (`Sym`: the batch or time length);
- `Filled`: a tensor of one repeated value whose shape depends on run-time sizes
  (ConstantOfShape / Expand of a zero: the initial states exporters build);
- `Data`: a tensor computed from the model's data input: the layers that compute it (a prefix of
  the pipeline) and the role of each of its axes;
- `StateIn`: rows of a graph input that carries recurrent state (h0 / c0);
- `CellState`: an LSTM's final cell state (Y_c), usable only as a state output;
- `Stack`: final states of several layers concatenated along axis 0 (PyTorch's h_n / c_n);
- `NormPart`: an intermediate of a layer normalisation written out as ReduceMean/Sub/Pow/...
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Union

import numpy as np

from ..errors import ConvertError
from ..ir.layers import FloatLayer, Recurrent


@dataclass(frozen=True)
class Sym:
    """A size known only at run time: coef * the product of named sizes ("B" batch, "T" time)."""

    coef: int
    names: tuple[str, ...]

    def __str__(self) -> str:
        text = "*".join(self.names)
        return text if self.coef == 1 else f"{self.coef}*{text}"


Dim = Union[int, Sym]


def _mono(d: Dim) -> tuple[int, tuple[str, ...]]:
    return (d.coef, d.names) if isinstance(d, Sym) else (int(d), ())


def _make(coef: int, names: tuple[str, ...]) -> Dim:
    return Sym(coef, tuple(sorted(names))) if names else coef


def dim_mul(a: Dim, b: Dim) -> Dim:
    (ca, na), (cb, nb) = _mono(a), _mono(b)
    return _make(ca * cb, na + nb)


def dim_div(a: Dim, b: Dim) -> Dim | None:
    """a / b when it is exact (a whole number times a product of names), else None."""
    (ca, na), (cb, nb) = _mono(a), _mono(b)
    if cb == 0 or ca % cb:
        return None
    rest = list(na)
    for n in nb:
        if n not in rest:
            return None
        rest.remove(n)
    return _make(ca // cb, tuple(rest))


def dim_prod(dims: list[Dim] | tuple[Dim, ...]) -> Dim:
    out: Dim = 1
    for d in dims:
        out = dim_mul(out, d)
    return out


def dims_agree(a: Dim, b: Dim) -> bool | None:
    """Whether two sizes are equal: True or False when that is provable now, None when it depends
    on run-time sizes (the batch length against a fixed 3, or B against T)."""
    if isinstance(a, int) and isinstance(b, int):
        return a == b
    if a == b:
        return True
    if isinstance(a, Sym) and isinstance(b, Sym) and a.names == b.names:
        return False  # the same run-time sizes times different coefficients
    other = b if isinstance(a, Sym) else a
    return False if isinstance(other, int) and other < 1 else None


def dim_str(d: Dim | None) -> str:
    return "?" if d is None else str(d)


def shape_str(dims: list[Dim] | tuple[Dim, ...]) -> str:
    return "[" + ", ".join(dim_str(d) for d in dims) + "]"


@dataclass(frozen=True)
class Const:
    array: np.ndarray


@dataclass(frozen=True)
class SymInts:
    """An int64 tensor of rank 0 or 1 with at least one symbolic entry."""

    shape: tuple[int, ...]
    items: tuple[Dim, ...]


@dataclass(frozen=True)
class Filled:
    """A tensor of shape `shape` (some dims symbolic) filled with `value`."""

    shape: tuple[Dim, ...]
    value: float | int | Sym
    dtype: np.dtype


@dataclass(frozen=True)
class StateIn:
    """Rows [start, stop) along axis 0 of a graph input holding recurrent state [rows, B, H]."""

    name: str
    start: int
    stop: int
    batch: Dim
    hidden: int
    squeezed: bool = False  # a single row selected with Gather: [B, H]

    @property
    def shape(self) -> tuple[Dim, ...]:
        rows: tuple[Dim, ...] = () if self.squeezed else (self.stop - self.start,)
        return rows + (self.batch, self.hidden)


@dataclass(frozen=True)
class CellState:
    """The final cell state (Y_c) of an LSTM layer: [D, B, H], or [B, H] once a one-direction
    layer's direction axis is squeezed (Keras return_state through tf2onnx)."""

    layer: Recurrent
    squeezed: bool = False


# Axis atoms of a Data tensor: T time, B batch, F features, D direction and H hidden (F split as
# D outer, H inner, right after a recurrent op), "1" a size-1 axis with no role.
ATOMS = ("T", "B", "F", "D", "H", "1")


@dataclass(frozen=True)
class Data:
    """A tensor computed from the data input.

    layers: the pipeline that computes it from the input (a tuple, shared between branches).
    axes: per axis of the tensor, the atoms it holds, outer first (usually one; ("B", "T") when
        a Reshape merged batch and time).
    sizes: the size of each atom (B and T always present; B is 1 when the input has no batch axis;
        T is 1 after the last-step selection).
    taken: the last step has been selected (the pipeline ends at or after a TakeLast).
    final: for an ONNX Y_h output: the recurrent layer whose final hidden state this is.
    reversed: the tensor holds the pipeline's steps in reverse time order (after a
        ReverseSequence, as Keras go_backwards exports).
    """

    layers: tuple[FloatLayer, ...]
    axes: tuple[tuple[str, ...], ...]
    sizes: dict[str, Dim] = field(hash=False)
    taken: bool = False
    final: Recurrent | None = None
    reversed: bool = False

    @property
    def rank(self) -> int:
        return len(self.axes)

    @property
    def atoms(self) -> list[str]:
        return [a for axis in self.axes for a in axis]

    def axis_size(self, i: int) -> Dim:
        return dim_prod([self.sizes[a] for a in self.axes[i]])

    @property
    def shape(self) -> tuple[Dim, ...]:
        return tuple(self.axis_size(i) for i in range(self.rank))

    @property
    def features(self) -> int:
        """Features per timestep in the pipeline (D*H after a recurrent op)."""
        f = self.sizes["F"]
        assert isinstance(f, int)
        return f

    def layout(self) -> str:
        """The axes as text, e.g. "T,D,B,H" or "B*T,F"."""
        return ",".join("*".join(a) for a in self.axes)

    def with_layers(self, *layers: FloatLayer, **changes: object) -> "Data":
        return replace(self, layers=self.layers + layers, final=None, **changes)  # type: ignore[arg-type]


def normalize(data: Data) -> Data:
    """Canonical axis atoms: ("D", "H") in one axis is F; H without any D axis is F."""
    axes = []
    for axis in data.axes:
        if len(axis) > 1 and "D" in axis and "H" in axis:
            i = axis.index("D")
            if axis[i : i + 2] != ("D", "H"):
                raise ConvertError(f"a Reshape mixes directions and hidden units ({data.layout()})")
            axis = axis[:i] + ("F",) + axis[i + 2 :]
        axes.append(axis)
    if not any("D" in axis for axis in axes):
        axes = [tuple("F" if a == "H" else a for a in axis) for axis in axes]
    return replace(data, axes=tuple(axes))


@dataclass(frozen=True)
class Stack:
    """Final states of several recurrent layers concatenated along axis 0 (each [D, B, H])."""

    parts: tuple[Union[Data, CellState], ...]


@dataclass(frozen=True)
class NormPart:
    """A step of a layer normalisation written out with elementwise ops, over data `x`.

    kind: "mean" (ReduceMean x), "centered" (x - mean), "square" (centered^2), "var" (mean of
    square), "var_eps" (var + eps), "std" (sqrt of var_eps), "rstd" (1 / std).
    """

    kind: str
    x: Data
    eps: float = 0.0


Value = Union[Const, SymInts, Filled, Data, StateIn, CellState, Stack, NormPart]


def describe(value: Value | None) -> str:
    """A short text for error messages."""
    if value is None:
        return "absent"
    if isinstance(value, Const):
        return f"constant {list(value.array.shape)}"
    if isinstance(value, SymInts):
        return f"shape value [{', '.join(dim_str(d) for d in value.items)}]"
    if isinstance(value, Filled):
        return f"filled {shape_str(value.shape)}"
    if isinstance(value, Data):
        return f"data tensor [{value.layout()}] {shape_str(value.shape)}"
    if isinstance(value, StateIn):
        return f"state input {value.name!r} rows {value.start}:{value.stop}"
    if isinstance(value, CellState):
        return "LSTM final cell state" + (" [B, H] (squeezed)" if value.squeezed else "")
    if isinstance(value, Stack):
        return f"stack of {len(value.parts)} final states"
    if hasattr(value, "layout") and hasattr(value, "roles"):  # the graph converter's dag.Flow
        return f"data tensor [{value.layout()}]"  # type: ignore[union-attr]
    return f"layer-norm step {value.kind!r}"
