"""What the axes of the signal input are, when the graph leaves it open (`inputs=` / `--input`).

A spec such as "T,576" gives one item per ONNX axis of the input: `T` the time axis, `B` the
batch axis (each at most once; their sizes stay run-time unless the graph fixes them), and a
positive integer for a per-step (feature) axis of that size, or `F` for a per-step axis whose
size the graph declares. "T,576" reads Silero's [sequence_length, 576] windows as 576 samples per
step; "B,576" a step function's [batch, sequence] input as one 576-sample window per call. The
sizes are written into the input's declaration before anything else (so a Shape of the input
folds to them, and an `If` on that shape is decided); the roles replace the converters' guesses.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import onnx

from ..errors import InputError
from .load import Loaded

MAX_DIM = 2**31 - 1  # as graph.MAX_DIM: the blob and the C library count sizes in int32


@dataclass(frozen=True)
class InputAxes:
    """One input's axes: a role letter per axis ("T", "B" or "F") and the given per-step sizes."""

    roles: str
    sizes: tuple[int | None, ...]  # a number given for an F axis, else None

    def spec(self) -> str:
        return ",".join(r if s is None else str(s) for r, s in zip(self.roles, self.sizes))


def parse_axes(name: str, spec: str) -> InputAxes:
    """The spec of input `name` ("T,576", "B,F", "B,T,64"), or an InputError naming the item."""
    if not isinstance(spec, str) or not spec.strip():
        raise InputError(f"input {name!r}: axes {spec!r}: expected one item per axis separated by commas, "
                         "e.g. T,576 (T time, B batch, a number: a per-step size, F: the graph's size)")
    roles: list[str] = []
    sizes: list[int | None] = []
    for k, raw in enumerate(spec.split(",")):
        item = raw.strip().upper()
        if item in ("T", "B", "F"):
            if item != "F" and item in roles:
                raise InputError(f"input {name!r}: axes {spec!r}: {item} is given twice (axes {roles.index(item)} "
                                 f"and {k}); an input has one {'time' if item == 'T' else 'batch'} axis")
            roles.append(item)
            sizes.append(None)
            continue
        try:
            size = int(item)
        except ValueError:
            raise InputError(f"input {name!r}: axes {spec!r}: axis {k} is {raw.strip()!r}; expected T, B, F or "
                             "a per-step size (a positive integer)") from None
        if not 1 <= size <= MAX_DIM:
            raise InputError(f"input {name!r}: axes {spec!r}: axis {k} has size {size}; a per-step size must "
                             f"be 1 to {MAX_DIM}")
        roles.append("F")
        sizes.append(size)
    return InputAxes("".join(roles), tuple(sizes))


def set_input_axes(loaded: Loaded, inputs: Mapping[str, str] | None) -> tuple[Loaded, dict[str, str]]:
    """The model with the given per-step sizes written into its inputs' declarations (a copy;
    `loaded` is unchanged), and each named input's axis roles. An input that is not in the
    graph, a spec with another number of axes, or a size that contradicts the graph's own is an
    InputError naming the input and the axis."""
    if not inputs:
        return loaded, {}
    model = onnx.ModelProto()
    model.CopyFrom(loaded.model)
    graph = model.graph
    initializers = {t.name for t in graph.initializer}
    declared = {i.name: i for i in graph.input if i.name not in initializers}
    roles: dict[str, str] = {}
    notes: list[str] = []
    for name, spec in inputs.items():
        if name not in declared:
            raise InputError(f"{loaded.label}: input axes {name}={spec}: {name!r} is not an input of the graph "
                             f"(its inputs: {', '.join(repr(n) for n in declared) or 'none'})")
        axes = parse_axes(name, spec)
        t = declared[name].type.tensor_type
        dims = t.shape.dim
        if not t.HasField("shape") or len(dims) != len(axes.roles):
            have = f"{len(dims)} axes" if t.HasField("shape") else "no declared shape"
            raise InputError(f"{loaded.label}: input {name!r} has {have}; the axes {axes.spec()!r} "
                             f"give {len(axes.roles)}")
        for k, (d, size) in enumerate(zip(dims, axes.sizes)):
            if size is None:
                continue
            if d.HasField("dim_value") and d.dim_value != size:
                raise InputError(f"{loaded.label}: input {name!r} axis {k}: the axes {axes.spec()!r} give "
                                 f"size {size}; the graph declares {d.dim_value}")
            if not d.HasField("dim_value"):
                was = d.dim_param or "?"
                d.Clear()
                d.dim_value = size
                notes.append(f"input {name!r}: axis {k} ({was}) is {size} per step (given)")
        roles[name] = axes.roles
    if notes:  # the sizes now known flow into the shapes inferred for the tensors computed from them
        fresh = onnx.ModelProto()
        fresh.CopyFrom(model)
        del fresh.graph.value_info[:]
        try:
            model = onnx.shape_inference.infer_shapes(fresh, strict_mode=False)
        except Exception:  # noqa: BLE001 - as in load_model: inference is a help, not a requirement
            pass
    return Loaded(model, loaded.label, loaded.stem, loaded.opset, list(loaded.notes) + notes), roles


__all__ = ["InputAxes", "parse_axes", "set_input_axes"]
