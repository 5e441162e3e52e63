"""Side inputs fixed at conversion, and the `If` nodes whose condition is then known.

`fix_inputs` turns graph inputs named in `fixed` (a sample rate, a mode flag) into initializers,
after checking each value against the input's declared element type and shape. `inline_ifs`
then folds every constant path of the graph far enough to learn each `If`'s condition, and the
Shape / Size of the other tensors where ONNX shape inference (with those constants in place and
the per-step sizes `inputs=` gave) knows their axes: an axis it leaves open is a run-time size
(`Sym`), and shape arithmetic folds where it does not need one. An `If` whose condition is known
is replaced by the nodes of the branch it takes (the branch's outputs renamed to the If's
outputs; names of the outer graph resolve as they did inside the branch). An `If` that the first
output needs and whose condition is still open is refused by name: with the `--fix` that would
settle it, or naming the run-time axes it needs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Mapping, Sequence, Union

import numpy as np
import onnx
from onnx import helper, numpy_helper

from ..errors import ConvertError, InputError, RnnedgeError, UnsupportedOpError
from .fold import fold_constant, fold_symbolic, shape_value
from .load import Loaded, declared_shapes
from .node import Node
from .values import Const, Dim, Sym, SymInts, Value

FixedValue = Union[int, float, bool, Sequence[Union[int, float, bool]], np.ndarray]
MAX_INLINED = 64  # If nodes taken in one model: a bound on the loop, far above real models
MAX_SHAPE_PASSES = 8  # shape inference reruns while each folds more (Silero v3 needs 2)


def fix_inputs(loaded: Loaded, fixed: Mapping[str, FixedValue] | None) -> Loaded:
    """The model with the `fixed` inputs as constants and every decidable If inlined (a copy;
    `loaded` is unchanged). Without `fixed` and without If nodes, `loaded` itself."""
    graph = loaded.model.graph
    if not fixed and not _has_if(graph):
        return loaded
    model = onnx.ModelProto()
    model.CopyFrom(loaded.model)
    graph = model.graph
    initializers = {t.name for t in graph.initializer}
    inputs = {i.name: i for i in graph.input if i.name not in initializers}
    notes: list[str] = list(loaded.notes)
    for name, value in (fixed or {}).items():
        if name not in inputs:
            raise InputError(
                f"{loaded.label}: fixed input {name!r} is not an input of the graph "
                f"(its inputs: {', '.join(repr(n) for n in inputs) or 'none'})"
            )
        array = fixed_array(loaded.label, inputs[name], value)
        graph.input.remove(inputs[name])
        graph.initializer.append(numpy_helper.from_array(array, name))
        notes.append(f"input {name!r}: fixed to {_short(array)}")
    out = Loaded(model, loaded.label, loaded.stem, loaded.opset, notes)
    inline_ifs(out, list(fixed or {}))
    try:
        out.model = onnx.shape_inference.infer_shapes(out.model, strict_mode=False)
    except Exception:  # noqa: BLE001 - as in load_model: inference is a help, not a requirement
        pass
    return out


def fixed_value(text: str, raw: str) -> FixedValue:
    """The VALUE `raw` of the command line's `--fix NAME=VALUE` (`text`, for the message): an
    integer, a number, or a list of them (`1,2,3` or `[1, 2, 3]`)."""
    body = raw[1:-1] if raw.startswith("[") and raw.endswith("]") else raw
    items = [p.strip() for p in body.split(",")]
    try:
        numbers = [_number(p) for p in items]
    except ValueError:
        raise InputError(
            f"--fix {text!r}: {raw!r} is not a number or a list of numbers (e.g. 16000, 0.5, 1,2,3)"
        ) from None
    listed = raw.startswith("[") or len(numbers) > 1
    return numbers if listed else numbers[0]


def _number(text: str) -> int | float:
    lowered = text.lower()
    if lowered in ("true", "false"):
        return int(lowered == "true")
    try:
        return int(text)
    except ValueError:
        return float(text)


def fixed_array(label: str, info: onnx.ValueInfoProto, value: FixedValue) -> np.ndarray:
    """A fixed value as an array of the input's element type, its shape checked against the
    declared one (a symbolic size accepts any length)."""
    what = f"{label}: fixed input {info.name!r}"
    t = info.type.tensor_type
    if not info.type.HasField("tensor_type") or t.elem_type == 0:
        raise InputError(f"{what}: the graph declares no tensor element type for it")
    try:
        dtype = np.dtype(helper.tensor_dtype_to_np_dtype(t.elem_type))
    except Exception:  # noqa: BLE001 - an element type numpy has no dtype for
        raise InputError(f"{what}: element type {t.elem_type} cannot be given a value") from None
    try:
        given = np.asarray(value)
    except Exception as e:  # noqa: BLE001 - ragged lists and the like
        raise InputError(f"{what}: value {value!r} is not a number or a list of numbers ({e})") from None
    if given.dtype.kind not in "biuf" or given.size == 0:
        raise InputError(f"{what}: value {_short(value)} is not a number or a non-empty list of numbers")
    type_name = helper.tensor_dtype_to_string(t.elem_type).replace("TensorProto.", "").lower()
    if dtype.kind in "iub":
        if given.dtype.kind == "f" and not np.all(np.isfinite(given) & (given == np.round(given))):
            raise InputError(f"{what} is {type_name}; value {_short(value)} is not a whole number")
        if dtype.kind != "b":
            info_i = np.iinfo(dtype)
            if np.any(given < info_i.min) or np.any(given > info_i.max):
                raise InputError(f"{what} is {type_name}; value {_short(value)} is out of its range")
    elif dtype.kind == "f":
        if not np.all(np.isfinite(given)):
            raise InputError(f"{what}: value {_short(value)} is not finite")
    else:
        raise InputError(f"{what}: element type {type_name} cannot be given a number")
    array = given.astype(dtype)
    if t.HasField("shape"):
        dims = [d.dim_value if d.HasField("dim_value") else None for d in t.shape.dim]
        fits = array.ndim == len(dims) and all(d is None or d == n for d, n in zip(dims, array.shape))
        if not fits:
            declared = "[" + ", ".join("?" if d is None else str(d) for d in dims) + "]"
            raise InputError(
                f"{what} has shape {declared}; value {_short(value)} has shape {list(array.shape)}"
                + (" (give one number)" if not dims else "")
            )
    return array


def _short(value: object) -> str:
    text = repr(value.tolist() if isinstance(value, np.ndarray) else value)
    return text if len(text) <= 60 else text[:57] + "..."


def _has_if(graph: onnx.GraphProto) -> bool:
    return any(n.op_type == "If" and n.domain in ("", "ai.onnx") for n in graph.node)


def inline_ifs(loaded: Loaded, fixed: list[str]) -> None:
    """Replace, in place, each If whose condition folds to a constant by the branch it takes;
    refuse an If the first output needs whose condition stays dynamic."""
    graph = loaded.model.graph
    for _ in range(MAX_INLINED):
        folded = _fold_constants(loaded)
        target = next((n for n in graph.node if n.op_type == "If" and n.domain in ("", "ai.onnx")
                       and n.input and folded.const(n.input[0]) is not None), None)  # fmt: skip
        if target is None:
            break
        cond = np.asarray(folded.const(target.input[0]))
        if cond.size != 1:
            raise ConvertError(f"{loaded.label}: If node {target.name!r}: condition of {cond.size} values")
        taken = _inline(graph, target, bool(cond.ravel()[0]), loaded.label)
        loaded.notes.append(f"If {target.name or '(unnamed)'}: condition {target.input[0]!r} is "
                            f"{bool(cond.ravel()[0])}, took its {taken}")
    else:
        raise ConvertError(f"{loaded.label}: more than {MAX_INLINED} If nodes to take")
    needed = _needed(graph, graph.output[0].name) if graph.output else set()
    for i, node in enumerate(graph.node):
        if node.op_type == "If" and i in needed and not node.input:
            raise ConvertError(f"{loaded.label}: If node {node.name!r} (#{i + 1}) has no condition input")
        if node.op_type == "If" and i in needed:
            behind = _graph_inputs_behind(graph, node.input[0])
            sources = [i.name for i in behind if _all_static(i)]
            data = [i.name for i in behind if not _all_static(i)]
            hint = (
                "; its condition depends on graph input(s) "
                + ", ".join(repr(s) for s in sources)
                + f": fix {'it' if len(sources) == 1 else 'them'} at conversion, e.g. "
                + " ".join(f"--fix {s}=VALUE" for s in sources)
                + " (Python: fixed={"
                + ", ".join(f"{s!r}: VALUE" for s in sources)
                + "})"
            ) if sources else _axes_hint(
                _runtime_axes(graph, node.input[0], folded), data
            ) if data else ""
            raise UnsupportedOpError(
                f"{loaded.label}: node {node.name or '(unnamed)'!r} (op If, #{i + 1} of "
                f"{len(graph.node)} in the graph): its condition {node.input[0]!r} is not known at "
                f"conversion time{hint}"
                + (f" (fixed: {', '.join(fixed)})" if fixed else "")
            )


@dataclass
class _Folded:
    """What the fold knows: each tensor's value (a constant, or a shape value with run-time
    sizes), and for each run-time size (a `Sym` name) the axis whose Shape it came from."""

    values: dict[str, Value] = field(default_factory=dict)
    axes: dict[str, str] = field(default_factory=dict)

    def const(self, name: str) -> np.ndarray | None:
        value = self.values.get(name)
        return value.array if isinstance(value, Const) else None


def _fold_constants(loaded: Loaded) -> _Folded:
    """Every tensor computable from initializers and Constant nodes alone, then the Shape and
    Size of the other tensors where ONNX shape inference (run on the graph with those constants
    in place, so a Pad or Slice of the data has its size) knows the axes they ask for; the
    arithmetic on them folds where it needs only known sizes (fold.SYM_OPS)."""
    graph = loaded.model.graph
    folded = _Folded()
    for init in graph.initializer:
        try:
            folded.values[init.name] = Const(numpy_helper.to_array(init))
        except Exception:  # noqa: BLE001 - a corrupt initializer: the walk reports it by name
            continue
    _fold_pass(loaded, folded, None)
    # again while a pass folds more constants: a shape that only the last pass's constants give (a
    # Reshape to a target built from Shape(x), as Silero v3 builds its input's) is known to the
    # next one, whose run-time sizes (Syms) replace the last pass's
    before = -1
    for _ in range(MAX_SHAPE_PASSES):
        if not any(n.op_type in ("Shape", "Size") and n.input and n.input[0] not in folded.values
                   for n in graph.node):  # fmt: skip
            break
        consts = {name: v for name, v in folded.values.items() if isinstance(v, Const)}
        if len(consts) == before:
            break  # the last pass folded no new constant: no shape can be better known
        before = len(consts)
        folded.values.clear()
        folded.values.update(consts)
        folded.axes.clear()  # the Sym names are the new inference's
        _fold_pass(loaded, folded, _inferred_shapes(loaded.model, folded.values))
    return folded


def _fold_pass(loaded: Loaded, folded: _Folded, shapes: dict[str, list[int | str | None]] | None) -> None:
    """One walk of the nodes in order: constant nodes folded, and with `shapes` the Shape/Size
    of a tensor of known rank (its unknown sizes as `Sym`s named after the ONNX dimension)."""
    values = folded.values
    for i, proto in enumerate(loaded.model.graph.node):
        if proto.domain not in ("", "ai.onnx") or proto.op_type in ("If", "Loop", "Scan"):
            continue
        if all(name in values for name in proto.output if name):
            continue
        node = Node(proto, i, loaded.opset)
        try:
            if (shapes is not None and proto.op_type in ("Shape", "Size") and proto.input
                    and proto.input[0] not in values and proto.input[0] in shapes):  # fmt: skip
                dims: list[Dim] = []
                for k, d in enumerate(shapes[proto.input[0]]):
                    if isinstance(d, int):
                        dims.append(d)
                        continue
                    sym = d or f"{proto.input[0]}:{k}"
                    folded.axes.setdefault(sym, f"axis {k} of {proto.input[0]!r}")
                    dims.append(Sym(1, (sym,)))
                outs = shape_value(node, dims)
            elif not all(name in values for name in proto.input if name):
                continue
            else:
                ins: list[Value | None] = [values[name] if name else None for name in proto.input]
                if all(isinstance(v, Const) or v is None for v in ins):
                    outs = fold_constant(node, ins)
                elif shapes is None:
                    continue
                else:
                    outs = fold_symbolic(node, ins)
        except RnnedgeError:
            continue  # left for the walk, which reports it by name if the output needs it
        for name, value in zip(proto.output, outs):
            if name and isinstance(value, (Const, SymInts)):
                values[name] = value


def _inferred_shapes(model: onnx.ModelProto, values: Mapping[str, Value]) -> dict[str, list[int | str | None]]:
    """Each tensor's shape as ONNX shape inference gives it once the folded constants the other
    nodes read (a Pad's pads, a Reshape's target) are initializers; {} when inference fails."""
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    graph = copy.graph
    del graph.value_info[:]
    have = {t.name for t in graph.initializer}
    read = {name for n in graph.node for name in n.input if name}
    for name in sorted(read - have):
        value = values.get(name)
        if isinstance(value, Const):
            graph.initializer.append(numpy_helper.from_array(np.asarray(value.array), name))
    try:
        copy = onnx.shape_inference.infer_shapes(copy, strict_mode=False)
    except Exception:  # noqa: BLE001 - as in load_model: inference is a help, not a requirement
        return {}
    return declared_shapes(copy.graph)


def _runtime_axes(graph: onnx.GraphProto, name: str, folded: _Folded) -> list[str]:
    """The run-time sizes a tensor's value needs: the axes (of the tensors whose Shape was taken)
    behind the nearest shape values with a `Sym` on the way back from `name`."""
    def shape_value(x: str) -> bool:
        return isinstance(folded.values.get(x), SymInts)

    found: list[str] = []
    for x in _upstream(graph, name, stop=shape_value):
        value = folded.values.get(x)
        if isinstance(value, SymInts):
            for d in value.items:
                if isinstance(d, Sym):
                    found += [folded.axes.get(s, repr(s)) for s in d.names]
    return list(dict.fromkeys(found))


def _inline(graph: onnx.GraphProto, node: onnx.NodeProto, cond: bool, label: str) -> str:
    """Put the taken branch's nodes where `node` was; its outputs become the If's outputs.
    Returns the branch's attribute name."""
    key = "then_branch" if cond else "else_branch"
    branch = next((a.g for a in node.attribute if a.name == key), None)
    if branch is None or len(branch.output) != len(node.output):
        raise ConvertError(f"{label}: If node {node.name!r} has no {key} with {len(node.output)} outputs")
    rename = {b.name: o for b, o in zip(branch.output, node.output)}
    produced = {name for n in branch.node for name in n.output}
    nodes: list[onnx.NodeProto] = []
    for n in branch.node:
        copy = onnx.NodeProto()
        copy.CopyFrom(n)
        for k, name in enumerate(copy.output):
            if name in rename:
                copy.output[k] = rename[name]
        for k, name in enumerate(copy.input):
            if name in rename and name in produced:
                copy.input[k] = rename[name]
        nodes.append(copy)
    for b, o in zip(branch.output, node.output):
        if b.name not in produced and o:  # the branch returns an outer or initializer name
            nodes.append(helper.make_node("Identity", [b.name], [o], name=f"{node.name}/{key}/{o}"))
    graph.initializer.extend(branch.initializer)
    at = list(graph.node).index(node)
    rest = list(graph.node)
    graph.ClearField("node")
    graph.node.extend(rest[:at] + nodes + rest[at + 1 :])
    return key


def _axes_hint(axes: list[str], data: list[str]) -> str:
    """Why a condition computed from the data input is not known: the run-time axes it reads, or
    the data's values."""
    if not axes:
        return (f"; it depends on the data ({', '.join(repr(d) for d in data)}): rnnedge runs one "
                "fixed pipeline, not a branch chosen per input")
    return (f"; it needs the size of {', '.join(axes)}, known only at run time: a batch or time "
            "length stays dynamic; a per-step size is known once the data input's axes are given "
            f"(--input {data[0]}=AXES, one item per axis: T, B or a per-step size, e.g. B,576; "
            f"Python: inputs={{{data[0]!r}: AXES}})")


def _outer_names(graph: onnx.GraphProto) -> set[str]:
    """Names a subgraph reads that it does not define (outer-scope references)."""
    defined = {i.name for i in graph.input} | {t.name for t in graph.initializer}
    used: set[str] = set()
    for n in graph.node:
        used.update(x for x in n.input if x)
        for a in n.attribute:
            if a.type == onnx.AttributeProto.GRAPH:
                used |= _outer_names(a.g)
            for g in a.graphs:
                used |= _outer_names(g)
        defined.update(n.output)
    used.update(o.name for o in graph.output)
    return used - defined


def _reads(node: onnx.NodeProto) -> list[str]:
    names = [x for x in node.input if x]
    for a in node.attribute:
        if a.type == onnx.AttributeProto.GRAPH:
            names += sorted(_outer_names(a.g))
    return names


def _needed(graph: onnx.GraphProto, output: str) -> set[int]:
    """Indices of the nodes `output` depends on, counting the outer names their branches read."""
    nodes = list(graph.node)
    producer = {name: i for i, n in enumerate(nodes) for name in n.output if name}
    needed: set[int] = set()
    stack = [producer[output]] if output in producer else []
    while stack:
        i = stack.pop()
        if i in needed:
            continue
        needed.add(i)
        stack.extend(producer[x] for x in _reads(nodes[i]) if x in producer)
    return needed


def _all_static(info: onnx.ValueInfoProto) -> bool:
    """Whether an input's declared shape is all static sizes (a side input, not the data)."""
    t = info.type.tensor_type
    return t.HasField("shape") and all(d.HasField("dim_value") for d in t.shape.dim)


def _upstream(graph: onnx.GraphProto, name: str,
              stop: Callable[[str], bool] | None = None) -> list[str]:  # fmt: skip
    """The tensors `name` depends on, itself first, in the order of a depth-first walk back
    through their producers; the walk goes no further back than a tensor for which stop(x)."""
    producer = {o: n for n in graph.node for o in n.output if o}
    order: list[str] = []
    seen: set[str] = set()
    stack = [name]
    while stack:
        x = stack.pop()
        if x in seen:
            continue
        seen.add(x)
        order.append(x)
        if (stop is None or not stop(x)) and x in producer:
            stack.extend(_reads(producer[x]))
    return order


def _graph_inputs_behind(graph: onnx.GraphProto, name: str) -> list[onnx.ValueInfoProto]:
    """The graph inputs (not initializers) a tensor depends on."""
    inits = {t.name for t in graph.initializer}
    seen = set(_upstream(graph, name))
    return [i for i in graph.input if i.name not in inits and i.name in seen]