"""How the graph's arrays map onto the C library's buffers: `Layout` between the graph's axis
order and [T, B, F], `state_blocks` and `StateViews` for the named state inside a stream's state
buffer: the recurrent nodes' h / c blocks and the graph's STATE values (docs/format.md "State
and scratch").

Numpy only: the state offsets come from the C library (rne_state_offset, rne_state_c_offset,
rne_value_state_offset), passed in."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from .blob.spec import FMT_F32, OP_LSTM, NodeRecord, keeps_state
from .errors import BlobError, InputError
from .ir.layers import from_tbf, to_tbf

F32 = np.dtype(np.float32)
_STATE_TYPES = ((F32, F32), (np.dtype(np.int16), np.dtype(np.int32)))  # (h, c) of f32 / integer layers


@dataclass(frozen=True)
class Layout:
    """Maps between the graph's axis order and the C library's [T, B, F]. A layout with several
    F axes (a per-step shape, e.g. ONNX [1, 1, 512] as "BFF") has their sizes in `fdims`."""

    axes: str  # e.g. "BTF", "TDBH", "BFF"
    dirs: int  # D when F is split into (D, H), else 1
    fdims: tuple[int, ...] = ()  # the F axes' sizes, in order, where axes has more than one F

    @staticmethod
    def of(spec: Mapping, prefix: str = "") -> "Layout":
        """The layout of a blob's meta input or output spec (checked by blob/meta.py), `prefix`
        (e.g. "T") put before its axes."""
        axes, shape = spec["axes"], spec["shape"]
        dirs = int(shape[axes.index("D")]) if "D" in axes else 1
        fdims = tuple(int(d) for a, d in zip(axes, shape) if a == "F") if axes.count("F") > 1 else ()
        return Layout(prefix + axes, dirs, fdims)

    def without(self, letter: str) -> "Layout":
        return Layout(self.axes.replace(letter, ""), self.dirs, self.fdims)

    def sizes(self, features: int, batch: int | None = None) -> list[int | str]:
        """The shape this layout expects: `features` (or fdims) on F, `batch` on B (else "B"),
        "T" on T; H, D as D and features / D."""
        f = iter(self.fdims or (features,) * self.axes.count("F"))
        known: dict[str, int | str] = {"T": "T", "B": "B" if batch is None else batch,
                                       "D": self.dirs, "H": features // self.dirs}  # fmt: skip
        return [next(f) if a == "F" else known[a] for a in self.axes]

    def to_internal(self, x: np.ndarray, dtype: np.dtype = F32) -> np.ndarray:
        if self.fdims:  # T and B to the front (size 1 if absent), the F axes in order after
            axes = self.axes
            for letter in "BT":
                if letter not in axes:
                    x, axes = x[None], letter + axes
            x = x.transpose([axes.index("T"), axes.index("B")] + [i for i, a in enumerate(axes) if a == "F"])
            return np.ascontiguousarray(x.reshape(x.shape[0], x.shape[1], -1), dtype=dtype)
        return np.ascontiguousarray(to_tbf(x, self.axes), dtype=dtype)

    def from_internal(self, y: np.ndarray) -> np.ndarray:
        if self.fdims:
            y, have = y.reshape(y.shape[:2] + self.fdims), "TB" + "F" * len(self.fdims)
            for letter in "TB":
                if letter not in self.axes:
                    y, have = y.squeeze(have.index(letter)), have.replace(letter, "")
            f = iter(i for i, a in enumerate(have) if a == "F")
            return y.transpose([next(f) if a == "F" else have.index(a) for a in self.axes])
        return from_tbf(y, self.axes, self.dirs)


Blocks = dict[str, list[tuple[int, str]]]


def state_blocks(layers: Sequence[NodeRecord], graph_states: list[dict], source: str) -> Blocks:
    """Name -> the (layer, "h" | "c") blocks it covers, in layer order. Unnamed blocks are
    h0, c0, h1, ... by recurrent layer; a graph that carried state names its own (PyTorch's
    h0 [layers * directions, B, H] covers one block per layer, stacked along axis 0)."""
    named = {(int(s["layer"]), s["kind"]): s["name"] for s in graph_states}
    blocks: Blocks = {}
    k = 0
    for i, layer in enumerate(layers):
        if not keeps_state(layer):  # (a recurrence over a per-step axis keeps none)
            continue
        for kind in "hc" if layer.op == OP_LSTM else "h":
            blocks.setdefault(named.get((i, kind), f"{kind}{k}"), []).append((i, kind))
        k += 1
    for name, parts in blocks.items():
        if len({layers[i].hidden for i, _ in parts}) != 1:
            raise BlobError(f"{source}: state {name!r} spans layers of different sizes")
    return blocks


# a STATE value's view: (byte offset in the state buffer, element type, shape [B, *per-step
# shape], where its B axis goes in the layout shown)
ValueBlocks = dict[str, tuple[int, np.dtype, tuple[int, ...], int]]


class StateViews:
    """Named views into a state buffer of `batch` streams; get copies, set checks first.

    `offsets[(i, kind)]` is where node i's h or c block starts in the buffer for this batch
    (rne_state_offset, rne_state_c_offset: the C library's layout, not re-derived here);
    `values[name]` a STATE value's block (rne_value_state_offset), shown as [B, *its shape]."""

    def __init__(self, blocks: Blocks, layers: Sequence[NodeRecord], offsets: Mapping[tuple[int, str], int],
                 buf: np.ndarray, batch: int, values: ValueBlocks | None = None) -> None:  # fmt: skip
        self.views: dict[str, list[np.ndarray]] = {}
        for name, (off, dtype, shape, b_axis) in (values or {}).items():
            nbytes = dtype.itemsize * int(np.prod(shape))
            view = buf[off : off + nbytes].view(dtype).reshape(shape)
            self.views[name] = [np.moveaxis(view, 0, b_axis)]
        for name, parts in blocks.items():
            for i, kind in parts:
                layer = layers[i]
                dirs, hidden = layer.num_directions, layer.hidden
                h_type, c_type = _STATE_TYPES[layer.fmt != FMT_F32]
                off = offsets[(i, kind)]
                dtype = h_type if kind == "h" else c_type
                nbytes = dtype.itemsize * dirs * batch * hidden
                view = buf[off : off + nbytes].view(dtype).reshape(dirs, batch, hidden)
                self.views.setdefault(name, []).append(view)

    def shape(self, name: str) -> tuple[int, int, int]:
        parts = self.views[name]
        return (sum(v.shape[0] for v in parts),) + parts[0].shape[1:]

    def dtype(self, name: str) -> np.dtype:
        """The type `get` shows: its blocks' widest (an integer LSTM's packed h and c: int32)."""
        return np.result_type(*self.views[name])

    def get(self) -> dict[str, np.ndarray]:
        return {name: np.concatenate(parts) for name, parts in self.views.items()}

    def set(self, values: Mapping[str, np.ndarray], what: str) -> None:
        if not isinstance(values, Mapping):
            raise InputError(
                f"{what}: expected a mapping of state name -> array (this model has "
                f"{sorted(self.views)}, as Stream.state returns them), got {type(values).__name__}"
            )
        unknown = set(values) - set(self.views)
        if unknown:
            raise InputError(
                f"{what}: unknown state {', '.join(sorted(map(repr, unknown)))}; this model has "
                f"{sorted(self.views)}"
            )
        checked = {}
        for name, value in values.items():
            arr = np.asarray(value)
            dtype = self.dtype(name)
            kinds = "fiu" if dtype.kind == "f" else "iu"  # integer state is not rounded silently
            if arr.dtype.kind not in kinds or arr.shape != self.shape(name):
                raise InputError(
                    f"{what}[{name!r}]: expected {dtype} values of shape {list(self.shape(name))} "
                    f"(as Stream.state gives it), got {arr.dtype} {list(arr.shape)}"
                )
            row = 0
            for view in self.views[name]:  # each block in its own type's range (packed: h int16)
                part = arr[row : row + view.shape[0]]
                row += view.shape[0]
                if view.dtype.kind != "i" or not part.size:
                    continue
                info = np.iinfo(view.dtype)
                if part.min() < info.min or part.max() > info.max:
                    rows = f"rows {row - view.shape[0]}..{row - 1}" if len(self.views[name]) > 1 else "values"
                    raise InputError(
                        f"{what}[{name!r}]: expected {view.dtype} {rows} in [{info.min}, "
                        f"{info.max}], got values from {part.min()} to {part.max()}"
                    )
            checked[name] = arr
        for name, arr in checked.items():  # all checked first: a bad entry changes nothing
            row = 0
            for view in self.views[name]:
                view[...] = arr[row : row + view.shape[0]]
                row += view.shape[0]
