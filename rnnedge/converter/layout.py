"""Ops that move a data tensor's axes around: Transpose, Reshape, Flatten, Squeeze, Unsqueeze,
Gather, Slice, Concat, Expand, Identity. They add no arithmetic; they change which axis is time,
batch or features, select the last step (a TakeLast layer), a direction or a feature range (a
Slice layer), or gather final states into a stack (PyTorch's h_n).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from ..errors import ConvertError, UnsupportedOpError
from ..ir.layers import Slice, TakeLast
from .fold import as_ints, onnx_range, reshape_target, slice_args
from .node import Node, OpContext, const_of, int_array, ints_arg
from .values import (
    CellState,
    Const,
    Data,
    Dim,
    Filled,
    Stack,
    StateIn,
    Sym,
    SymInts,
    Value,
    describe,
    dim_div,
    dim_mul,
    dim_str,
    normalize,
    shape_str,
)

INT_MAX = 2**31 - 1


def data_in(ins: list[Value | None], what: str = "input 0") -> Data:
    value = ins[0]
    if not isinstance(value, Data):
        raise ConvertError(f"{what} must be a data tensor, got a {describe(value)}")
    return value


def axis_index(index: int, rank: int) -> int:
    axis = index + rank if index < 0 else index
    if not 0 <= axis < rank:
        raise ConvertError(f"axis {index} is out of range for rank {rank}")
    return axis


def take_last(data: Data, keep_axis: bool) -> Data:
    """Select the last timestep: out[:, -1] (axis removed) or out[:, -1:] (axis kept, size 1)."""
    t = next(i for i, axis in enumerate(data.axes) if "T" in axis)
    axes = data.axes if keep_axis else data.axes[:t] + data.axes[t + 1 :]
    if data.taken:  # already a single step
        return replace(data, axes=axes, final=None)
    sizes = {**data.sizes, "T": 1}
    split = 0 if data.reversed else data.features  # the last of a reversed sequence is step 0
    return data.with_layers(
        TakeLast(data.features, split), axes=axes, sizes=sizes, taken=True, reversed=False
    )


def select_features(data: Data, start: int, stop: int) -> Data:
    """Keep features [start, stop) of each step (a Slice layer)."""
    if start == 0 and stop == data.features:
        return data
    sizes = dict(data.sizes)
    sizes["F"] = stop - start
    return data.with_layers(Slice(data.features, start, stop), sizes=sizes)


def select_direction(data: Data, axis: int, start: int, stop: int, keep_axis: bool) -> Data:
    """Keep directions [start, stop) of the D axis."""
    d, h = int(data.sizes["D"]), int(data.sizes["H"])
    out = select_features(data, start * h, stop * h) if (start, stop) != (0, d) else data
    sizes = {**out.sizes, "D": stop - start}
    axes = out.axes if keep_axis else out.axes[:axis] + out.axes[axis + 1 :]
    return normalize(replace(out, axes=axes, sizes=sizes, final=data.final if d == 1 else None))


def time_error(ctx: OpContext, what: str) -> ConvertError:
    if not ctx.has_recurrent_op:
        return ctx.unrolled_error(what)
    return UnsupportedOpError(
        f"{what}: only the last timestep can be selected (out[:, -1, :] or h_n[-1])"
    )


def op_transpose(ctx: OpContext, node: Node, ins: list[Value | None]) -> list[Value]:
    data = data_in(ins)
    perm = node.ints_attr("perm") or list(reversed(range(data.rank)))
    if sorted(perm) != list(range(data.rank)):
        raise ConvertError(f"perm {perm} does not fit a tensor of rank {data.rank}")
    return [replace(data, axes=tuple(data.axes[p] for p in perm))]


def regroup(data: Data, target: list[Dim]) -> Data:
    """Give `data` the shape `target` without moving any element (Reshape, Flatten): consecutive
    axis atoms merge or split; size-1 atoms may appear or vanish."""
    atoms = data.atoms
    sizes = [data.sizes[a] for a in atoms]
    groups: list[tuple[str, ...]] = []
    i = 0
    fail = ConvertError(
        f"cannot reshape the data tensor [{data.layout()}] {shape_str(data.shape)} to "
        f"{shape_str(target)}: the new shape does not split into its axes (a size baked in by "
        "the exporter? export with dynamic axes, or give the input a static shape)"
    )
    for d in target:
        if d == 1:
            if i < len(atoms) and sizes[i] == 1:
                groups.append((atoms[i],))
                i += 1
            else:
                groups.append(("1",))
            continue
        group: list[str] = []
        prod: Dim = 1
        while prod != d:
            if i >= len(atoms) or dim_div(d, dim_mul(prod, sizes[i])) is None:
                _maybe_baked(atoms, sizes, i, prod, d)
                raise fail
            group.append(atoms[i])
            prod = dim_mul(prod, sizes[i])
            i += 1
        groups.append(tuple(group))
    while i < len(atoms):
        if sizes[i] != 1 or not groups:
            raise fail
        groups[-1] += (atoms[i],)
        i += 1
    axes = tuple(_clean_group(g, data) for g in groups)
    return normalize(replace(data, axes=axes))


class BakedSize(ConvertError):
    """A Reshape fixes a size the input leaves to run time (the dynamo exporter bakes the traced
    sequence length in): the graph only runs with that size, so the walk restarts with it fixed."""

    def __init__(self, letter: str, value: int) -> None:
        super().__init__(f"a Reshape fixes {letter} = {value}")
        self.letter, self.value = letter, value


def _maybe_baked(atoms: list[str], sizes: list[Dim], i: int, prod: Dim, d: Dim) -> None:
    if i >= len(atoms) or not isinstance(d, int) or not isinstance(prod, int) or d % prod:
        return
    size = sizes[i]
    if isinstance(size, Sym) and size.coef == 1 and size.names == (atoms[i],) and atoms[i] in "TB":
        raise BakedSize(atoms[i], d // prod)


def _clean_group(group: tuple[str, ...], data: Data) -> tuple[str, ...]:
    """Drop size-1 atoms from a merged axis and check the merge makes sense."""
    if len(group) > 1:  # size-1 batch, time, direction or role-less atoms vanish in a merge
        kept = tuple(a for a in group if data.sizes[a] != 1 or a in ("F", "H"))
        group = kept or group[-1:]
    if len(group) == 1 or set(group) <= {"B", "T"} or group == ("D", "H"):
        return group
    raise UnsupportedOpError(
        f"a Reshape merges {' and '.join(group)} axes of [{data.layout()}]: features can be "
        "merged with nothing but other feature axes (a Dense over the whole sequence is not a "
        "recurrent pipeline)"
    )


def op_reshape(ctx: OpContext, node: Node, ins: list[Value | None]) -> list[Value]:
    data = data_in(ins)
    _, target = as_ints(ins[1], "Reshape shape")
    out = reshape_target(target, data.shape, bool(node.int_attr("allowzero", 0)))
    return [regroup(data, out)]


def op_flatten(ctx: OpContext, node: Node, ins: list[Value | None]) -> list[Value]:
    data = data_in(ins)
    axis = axis_index(node.int_attr("axis", 1), data.rank + 1)
    shape = data.shape
    outer: Dim = 1
    inner: Dim = 1
    for d in shape[:axis]:
        outer = dim_mul(outer, d)
    for d in shape[axis:]:
        inner = dim_mul(inner, d)
    return [regroup(data, [outer, inner])]


def op_squeeze(ctx: OpContext, node: Node, ins: list[Value | None]) -> list[Value]:
    value = ins[0]
    if isinstance(value, StateIn):
        if value.squeezed or value.stop - value.start != 1:
            raise ConvertError(f"Squeeze of a {describe(value)}")
        return [replace(value, squeezed=True)]
    if isinstance(value, CellState):
        return [_squeeze_cell(value, ints_arg(node, ins, 1, "axes"))]
    data = data_in(ins)
    given = ints_arg(node, ins, 1, "axes")
    if given is None:
        axes = [i for i, d in enumerate(data.shape) if d == 1]
    else:
        axes = sorted(axis_index(int(a), data.rank) for a in given)  # type: ignore[union-attr]
    for a in axes:
        if data.axis_size(a) != 1:
            raise ConvertError(
                f"Squeeze axis {a} ({'*'.join(data.axes[a])}) of [{data.layout()}] has size "
                f"{dim_str(data.axis_size(a))}, not 1"
            )
    kept = tuple(axis for i, axis in enumerate(data.axes) if i not in axes)
    return [normalize(replace(data, axes=kept))]


def _squeeze_cell(cell: CellState, axes: list[int] | None) -> CellState:
    """Squeeze of an LSTM's final cell state [D, B, H] along its direction axis (one direction):
    [B, H], as tf2onnx writes Keras's return_state c. The axes must be given: without them a
    batch of 1 would go too."""
    if cell.squeezed or cell.layer.num_directions != 1 or axes not in ([0], [-3]):
        raise UnsupportedOpError(
            f"Squeeze of axes {'(not given)' if axes is None else axes} of a {describe(cell)} "
            f"[D, B, H] with D = {cell.layer.num_directions}: only its direction axis (axis 0) "
            "of one direction"
        )
    return replace(cell, squeezed=True)


def op_unsqueeze(ctx: OpContext, node: Node, ins: list[Value | None]) -> list[Value]:
    value = ins[0]
    if isinstance(value, StateIn):
        if not value.squeezed:
            raise ConvertError(f"Unsqueeze of a {describe(value)}")
        return [replace(value, squeezed=False)]
    if isinstance(value, CellState):
        axes = ints_arg(node, ins, 1, "axes")
        if not value.squeezed or axes not in ([0], [-3]):
            raise UnsupportedOpError(f"Unsqueeze of axes {axes} of a {describe(value)}: only "
                                     "axis 0 of a squeezed one (its direction axis back)")
        return [replace(value, squeezed=False)]
    data = data_in(ins)
    given = ints_arg(node, ins, 1, "axes")
    if not given:
        raise ConvertError("Unsqueeze without axes")
    rank = data.rank + len(given)  # type: ignore[arg-type]
    axes = list(data.axes)
    for a in sorted(axis_index(int(a), rank) for a in given):  # type: ignore[union-attr]
        axes.insert(a, _new_singleton(data, axes))
    return [replace(data, axes=tuple(axes))]


def _new_singleton(data: Data, axes: list[tuple[str, ...]]) -> tuple[str, ...]:
    """The role of a new size-1 axis: the batch when the tensor has none (a [T, F] input), the
    time axis after the last step was selected, else a role-less "1"."""
    present = {a for axis in axes for a in axis}
    if "B" not in present and data.sizes["B"] == 1:
        return ("B",)
    if "T" not in present and data.taken:
        return ("T",)
    return ("1",)


def _role(data: Data, axis: int) -> str:
    roles = data.axes[axis]
    if len(roles) != 1:
        raise UnsupportedOpError(f"selecting along the merged axis {'*'.join(roles)}")
    return roles[0]


def _is_last(rows: range, size: Dim) -> bool:
    if rows.start == -1 and rows.stop == INT_MAX:
        return True
    return isinstance(size, int) and len(rows) == 1 and rows.start == size - 1


def _select(ctx: OpContext, data: Data, axis: int, rows: range, keep_axis: bool, what: str) -> Data:
    """Keep indices `rows` (non-negative, or -1: the last) of one axis, by the axis' role."""
    role = _role(data, axis)
    size = data.axis_size(axis)
    if role == "T":
        if _is_last(rows, size):
            return take_last(data, keep_axis)
        raise time_error(ctx, f"{what} selects timesteps {_range_text(rows)} of [{data.layout()}]")
    if not isinstance(size, int) or role == "B":
        if keep_axis and isinstance(size, int) and list(rows) == list(range(size)):
            return data
        raise UnsupportedOpError(f"{what} selects along the batch axis of [{data.layout()}]")
    picked = list(rows)
    if keep_axis and picked == list(range(size)):
        return data
    if not picked or picked != list(range(picked[0], picked[-1] + 1)) or picked[0] < 0 or picked[-1] >= size:
        raise UnsupportedOpError(f"{what} selects {_range_text(rows)} of the {role} axis (size {size})")
    start, stop = picked[0], picked[-1] + 1
    if role == "D":
        return select_direction(data, axis, start, stop, keep_axis)
    if role == "1":
        return data if keep_axis else replace(data, axes=data.axes[:axis] + data.axes[axis + 1 :])
    if role == "F" and keep_axis:
        return select_features(data, start, stop)
    raise UnsupportedOpError(
        f"{what} selects {_range_text(rows)} of the {role} axis of [{data.layout()}]"
        + (" and drops that axis" if role == "F" else "")
    )


def _range_text(r: range) -> str:
    return f"[{r.start}:{r.stop}" + (f":{r.step}]" if r.step != 1 else "]")


def op_gather(ctx: OpContext, node: Node, ins: list[Value | None]) -> list[Value]:
    idx = int_array(ins[1], "Gather indices")
    if idx.size != 1:
        raise UnsupportedOpError(f"Gather of {idx.size} indices from a data tensor (only one)")
    k = int(idx.ravel()[0])
    keep = idx.ndim > 0
    value = ins[0]
    axis = node.int_attr("axis", 0)
    if isinstance(value, (StateIn, Stack)):
        if axis != 0:
            raise UnsupportedOpError(f"Gather along axis {axis} of a {describe(value)}")
        return [_rows(ctx, value, k, k + 1 if k != -1 else None, keep, "Gather")]
    data = data_in(ins)
    axis = axis_index(axis, data.rank)
    size = data.axis_size(axis)
    if k < 0 and isinstance(size, int):
        k += size
    rows = range(k, k + 1) if k >= 0 else range(k, INT_MAX)
    return [_select(ctx, data, axis, rows, keep, f"Gather index {k} on axis {axis}")]


def op_slice(ctx: OpContext, node: Node, ins: list[Value | None]) -> list[Value]:
    value = ins[0]
    if isinstance(value, (StateIn, Stack)):
        args = slice_args(node, ins, 3)
        if len(args) != 1 or args[0][0] != 0 or args[0][3] != 1:
            raise UnsupportedOpError(f"Slice {args} of a {describe(value)} (only rows of axis 0)")
        _, start, end, _ = args[0]
        return [_rows(ctx, value, start, end, True, "Slice")]
    data = data_in(ins)
    for axis, start, end, step in slice_args(node, ins, data.rank):
        size = data.axis_size(axis)
        if _role(data, axis) == "T":
            if step == 1 and start == 0 and end >= INT_MAX:
                continue
            if step == 1 and end >= INT_MAX and (start == -1 or (isinstance(size, int) and start == size - 1)):
                data = take_last(data, keep_axis=True)
                continue
            if isinstance(size, int):
                picked = onnx_range(size, start, end, step)
                if list(picked) == list(range(size)):
                    continue
            raise time_error(ctx, f"Slice [{start}:{end}:{step}] on the time axis of [{data.layout()}]")
        if isinstance(size, int):
            r = onnx_range(size, start, end, step)
            if len(r) == 0:
                raise UnsupportedOpError(f"Slice [{start}:{end}:{step}] of axis {axis} is empty")
            data = _select(ctx, data, axis, r, True, "Slice")
        elif not (step == 1 and start == 0 and end >= INT_MAX):
            raise UnsupportedOpError(f"Slice [{start}:{end}:{step}] of the batch axis of [{data.layout()}]")
    return [data]


def _rows(ctx: OpContext, value: StateIn | Stack, start: int, stop: int | None, keep: bool, what: str) -> Value:
    """Rows [start, stop) of axis 0 of a state input or of a stack of final states."""
    if isinstance(value, StateIn):
        n = value.stop - value.start
        r = onnx_range(n, start, INT_MAX if stop is None else stop, 1)
        if len(r) == 0:
            raise ConvertError(f"{what} of no rows of {describe(value)}")
        out = replace(value, start=value.start + r.start, stop=value.start + r.stop)
        return replace(out, squeezed=True) if not keep else out
    parts = [(p, p.layer.num_directions if isinstance(p, CellState) else int(p.sizes["D"])) for p in value.parts]
    total = sum(n for _, n in parts)
    r = onnx_range(total, start, INT_MAX if stop is None else stop, 1)
    base = 0
    for part, n in parts:
        if base <= r.start and r.stop <= base + n and len(r):
            if isinstance(part, CellState):
                raise UnsupportedOpError(f"{what} of an LSTM's final cell state used as data")
            sub = range(r.start - base, r.stop - base)
            return _select(ctx, part, 0, sub, keep, what)
        base += n
    raise UnsupportedOpError(f"{what} rows {_range_text(r)} span several layers' final states")


def _rejoin(ins: list[Value | None], axis: int) -> Data | None:
    """Concat along the features of consecutive feature slices of one tensor (tf2onnx splits a
    bidirectional output into its directions and joins them again): that tensor, or None."""
    parts = [v for v in ins if isinstance(v, Data)]
    if len(parts) != len(ins) or len(parts) < 2:
        return None
    first = parts[0]
    axis = axis_index(axis, first.rank)
    if any(p.axes != first.axes or p.reversed != first.reversed for p in parts):
        return None
    if first.axes[axis] != ("F",) or not all(p.layers and isinstance(p.layers[-1], Slice) for p in parts):
        return None
    prefix = first.layers[:-1]
    if any(len(p.layers) != len(first.layers) or any(a is not b for a, b in zip(p.layers, prefix)) for p in parts):
        return None
    slices = [p.layers[-1] for p in parts]
    if any(b.start != a.stop for a, b in zip(slices, slices[1:])):  # type: ignore[union-attr]
        return None
    start, stop = slices[0].start, slices[-1].stop  # type: ignore[union-attr]
    source = slices[0].features  # type: ignore[union-attr]
    base = replace(first, layers=prefix, sizes={**first.sizes, "F": source})
    return select_features(base, start, stop)


def op_concat(ctx: OpContext, node: Node, ins: list[Value | None]) -> list[Value]:
    parts: list[Data | CellState] = []
    axis = node.int_attr("axis", 0)
    joined = _rejoin(ins, axis)
    if joined is not None:
        return [joined]
    for v in ins:
        if isinstance(v, Stack):
            parts += v.parts
        elif isinstance(v, CellState) or (isinstance(v, Data) and v.final is not None):
            parts.append(v)
        else:
            raise UnsupportedOpError(
                f"Concat of a {describe(v)}: rnnedge concatenates only final states along axis 0 "
                "(h_n); joining data tensors is not a straight pipeline"
            )
    if axis not in (0, -3):
        raise UnsupportedOpError(f"Concat of final states along axis {axis} (only 0)")
    if len(parts) == 1:  # a Concat of one tensor is that tensor
        return [parts[0]]
    for part in parts:
        _check_state_rows(part)
    return [Stack(tuple(parts))]


def in_state_order(data: Data) -> bool:
    """Whether a final state's elements lie as in the state [D, B, H] (size-1 axes aside): a
    squeezed [B, H] of one direction does, a transposed [B, D, H] of two does not."""
    dirs = data.sizes.get("D", 1)
    atoms = [a for a in data.atoms if a in ("D", "B", "H", "F") and not (a == "D" and dirs == 1)]
    if dirs == 1:
        return atoms in (["B", "H"], ["B", "F"])
    return atoms == ["D", "B", "H"]


def _check_state_rows(part: Data | CellState) -> None:
    """A final state joined into a stack along axis 0 (PyTorch's h_n) must be laid out [D, B, H]
    (axis 0 its directions, or a size-1 axis of a one-direction layer): a squeezed [B, H] or a
    transposed [B, D, H] joined along axis 0 is joined along its batch, which is no stack of
    states (the flat rows would be read as directions)."""
    if isinstance(part, CellState):
        if not part.squeezed:
            return
        where = "[B,H] (squeezed)"
        axis0 = "its batch axis"
    else:
        dirs = part.sizes.get("D", 1)
        lead = part.axes[0]
        if (
            part.rank == 3
            and part.axes[1] == ("B",)
            and part.axes[2] in (("H",), ("F",))
            and (lead == ("D",) or (dirs == 1 and part.axis_size(0) == 1))
        ):
            return
        where = f"[{part.layout()}] {shape_str(part.shape)}"
        axis0 = "its batch axis" if lead == ("B",) else f"its {'*'.join(lead)} axis"
    raise UnsupportedOpError(
        f"Concat along axis 0 of the final state {where}: axis 0 is {axis0}, not the "
        "directions; rnnedge stacks final states [D, B, H] along their direction axis (h_n) "
        "only, and a join along the batch is not a pipeline"
    )


def op_expand(ctx: OpContext, node: Node, ins: list[Value | None]) -> list[Value]:
    data = data_in(ins)
    _, target = as_ints(ins[1], "Expand shape")
    n = max(len(target), data.rank)
    shape = (1,) * (n - data.rank) + data.shape
    target = [1] * (n - len(target)) + list(target)
    if n != data.rank or any(t not in (1, s) for t, s in zip(target, shape)):
        raise UnsupportedOpError(f"Expand of the data tensor {shape_str(data.shape)} to {shape_str(target)}")
    return [data]


def op_identity(ctx: OpContext, node: Node, ins: list[Value | None]) -> list[Value]:
    """Identity, Dropout (inactive at inference) and Cast to float32 pass data through."""
    value = ins[0]
    if node.op == "Cast" and node.int_attr("to", 1) != 1:
        raise node.refuse_attr("to", node.int_attr("to", 1), "1 (float32) on a data tensor")
    if node.op == "Dropout" and len(ins) > 2 and ins[2] is not None:
        mode = np.asarray(const_of(ins[2], "Dropout training_mode"))
        if mode.size != 1:
            raise ConvertError(f"Dropout training_mode has shape {list(mode.shape)}, expected one value")
        if bool(mode.ravel()[0]):
            raise node.refuse_attr("training_mode", True, "false")
    return [value]  # type: ignore[list-item]


def op_reverse_sequence(ctx: OpContext, node: Node, ins: list[Value | None]) -> list[Value]:
    """Reversing every full-length sequence in time (Keras go_backwards): a flag on the tensor
    that the next recurrent op absorbs by reading the sequence the other way."""
    data = data_in(ins)
    t_axis, b_axis = node.int_attr("time_axis", 0), node.int_attr("batch_axis", 1)
    if not (0 <= t_axis < data.rank and 0 <= b_axis < data.rank):
        raise ConvertError(f"time_axis={t_axis}, batch_axis={b_axis} do not fit [{data.layout()}]")
    if data.axes[t_axis] != ("T",) or data.axes[b_axis] not in (("B",), ("1",)):
        raise UnsupportedOpError(
            f"ReverseSequence with time_axis={t_axis}, batch_axis={b_axis} on [{data.layout()}]"
        )
    lengths = ins[1]
    t = data.sizes["T"]
    full = (
        (isinstance(lengths, Filled) and lengths.value == t)
        or (isinstance(lengths, SymInts) and all(v == t for v in lengths.items))
        or (isinstance(lengths, Const) and np.all(np.asarray(lengths.array) == t))
    )
    if not full:
        raise UnsupportedOpError(
            f"ReverseSequence with sequence_lens = {describe(lengths)}: only the reversal of "
            f"every whole sequence (length T = {dim_str(t)})"
        )
    if data.taken:
        return [data]
    return [replace(data, reversed=not data.reversed, final=None)]
