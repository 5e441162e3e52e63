"""Folding at conversion time: constant sub-graphs, and shape arithmetic over run-time sizes.

A node whose inputs are all constants is evaluated with the ONNX reference implementation (so
every op folds with the semantics of the model's opset). Shape chains (Shape -> Gather ->
Unsqueeze -> Concat -> ConstantOfShape ...) that depend on the batch or time length are folded
here symbolically: one function per op over `SymInts` (shape values) and `Filled` tensors.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator

from ..errors import ConvertError, UnsupportedOpError
from .node import Node, const_of, int_array, ints_arg
from .values import (
    Const,
    Data,
    Dim,
    Filled,
    StateIn,
    Sym,
    SymInts,
    Value,
    describe,
    dim_div,
    dim_mul,
    dim_prod,
    dim_str,
    shape_str,
)


def fold_constant(node: Node, ins: list[Value | None]) -> list[Value]:
    """Evaluate a node whose inputs are all constants."""
    feeds = {
        name: value.array
        for name, value in zip(node.proto.input, ins)
        if name and isinstance(value, Const)
    }
    _check_output_size(node, [feeds.get(name) for name in node.proto.input])
    try:
        evaluator = ReferenceEvaluator(_one_node_model(node, list(feeds)))
        outs = evaluator.run(None, feeds)
    except Exception as e:  # noqa: BLE001 - any failure of the reference op is reported by name
        raise ConvertError(f"cannot evaluate this constant {node.op} at conversion time: {e}") from None
    return [Const(np.asarray(o)) for o in outs]


def _one_node_model(node: Node, inputs: list[str]) -> onnx.ModelProto:
    """The node alone in a model that imports the graph's opset, in its newest form.

    The reference evaluator picks an op's version from a model's opset import (given a bare node
    it runs the newest version, which refuses the attribute forms of older opsets: Unsqueeze
    `axes` before 13, TopK `k` before 10, Clip `min`/`max` before 11). The few old forms it
    cannot run at all are rewritten to the newer op that computes the same (`modern_form`).
    """
    protos, opset = modern_form(node)
    any_type = onnx.TypeProto()
    graph = helper.make_graph(
        protos, "fold",
        [helper.make_value_info(name, any_type) for name in dict.fromkeys(inputs)],
        [helper.make_value_info(name, any_type) for name in protos[-1].output if name],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def modern_form(node: Node) -> tuple[list[onnx.NodeProto], int]:
    """(nodes, opset) to evaluate: the node as it is, or its old-opset form that the reference
    evaluator lacks or gets wrong rewritten as the newer op: BatchNormalization before 14 (the
    reference runs versions 6 to 13 with batch statistics whenever `momentum` is set, which
    is not what onnxruntime computes in inference; `spatial`=1 before 9) as BatchNormalization-14
    in inference mode; Upsample before 9 (`scales` an attribute) as a Resize."""
    p = node.proto
    if p.op_type == "BatchNormalization" and node.opset < 14:
        if node.int_attr("spatial", 1) != 1:
            raise node.refuse_attr("spatial", node.attr("spatial"), "1 (per-channel statistics)")
        if len([o for o in p.output if o]) > 1:
            raise UnsupportedOpError("BatchNormalization in training mode (it has statistics outputs)")
        eps = node.float_attr("epsilon", 1e-5)
        return [helper.make_node("BatchNormalization", list(p.input), list(p.output)[:1], epsilon=eps,
                                 training_mode=0)], 14
    if p.op_type == "Upsample" and node.opset < 9:
        scales = node.floats_attr("scales")
        if scales is None:
            raise ConvertError("Upsample before opset 9 needs its scales attribute")
        mode = node.str_attr("mode", "nearest")
        if mode not in ("nearest", "linear"):
            raise node.refuse_attr("mode", mode, "nearest, linear")
        scales_in = helper.make_tensor(f"{p.output[0]}::scales", TensorProto.FLOAT, [len(scales)], scales)
        const = helper.make_node("Constant", [], [scales_in.name], value=scales_in)
        resize = helper.make_node(
            "Resize", [p.input[0], "", scales_in.name], list(p.output), mode=mode,
            coordinate_transformation_mode="asymmetric", nearest_mode="floor",
        )
        return [const, resize], 13
    return [p], node.opset


def _check_output_size(node: Node, ins: list[np.ndarray | None]) -> None:
    """Refuse, before running it, a constant op whose output size its input values set (a shape
    of 10^12 elements must not be allocated)."""
    def ints(i: int) -> list[int] | None:
        a = ins[i] if i < len(ins) else None
        return None if a is None or a.dtype.kind not in "iu" else [int(v) for v in a.ravel()]

    shape: list[int] | None = None
    if node.op == "ConstantOfShape":
        shape = ints(0)
    elif node.op == "Expand" and ins and ins[0] is not None and ints(1) is not None:
        target = ints(1) or []
        rank = max(len(target), ins[0].ndim)
        have = [1] * (rank - ins[0].ndim) + list(ins[0].shape)
        target = [1] * (rank - len(target)) + target
        shape = [max(a, b) for a, b in zip(have, target)]
    elif node.op == "Tile" and ins and ins[0] is not None and ints(1) is not None:
        shape = [a * r for a, r in zip(ins[0].shape, ints(1) or [])]
    elif node.op == "Range" and len(ins) == 3 and all(a is not None and a.size == 1 for a in ins):
        start, limit, delta = (float(a.ravel()[0]) for a in ins)  # type: ignore[union-attr]
        if delta != 0 and all(math.isfinite(v) for v in (start, limit, delta)):
            shape = [max(math.ceil((limit - start) / delta), 0)]
    if shape is not None:
        check_size(shape)


# --- integer shape values ------------------------------------------------------------------


def as_ints(value: Value | None, what: str) -> tuple[tuple[int, ...], list[Dim]]:
    """(shape, items) of an integer tensor of rank 0 or 1, constant or symbolic."""
    if isinstance(value, SymInts):
        return value.shape, list(value.items)
    if isinstance(value, Const) and value.array.dtype.kind in "iub" and value.array.ndim <= 1:
        return tuple(value.array.shape), [int(v) for v in value.array.ravel()]
    raise ConvertError(f"{what}: expected a small integer tensor (a shape), got a {describe(value)}")


def ints_value(shape: tuple[int, ...], items: list[Dim]) -> Value:
    if all(isinstance(d, int) for d in items):
        return Const(np.array(items, dtype=np.int64).reshape(shape))
    return SymInts(tuple(shape), tuple(items))


def dim_eq(a: Dim, b: Dim) -> bool:
    """Whether two sizes are equal, when that is decidable now (run-time sizes are >= 1)."""
    if isinstance(a, int) and isinstance(b, int):
        return a == b
    if a == b:
        return True
    other = b if isinstance(a, Sym) else a
    if isinstance(other, int) and other < 1:
        return False
    raise ConvertError(f"cannot tell at conversion time whether {dim_str(a)} equals {dim_str(b)}")


def onnx_range(n: int, start: int, end: int, step: int) -> range:
    """The indices an ONNX Slice keeps along an axis of size n."""
    if step == 0:
        raise ConvertError("Slice step 0")
    start = start + n if start < 0 else start
    end = end + n if end < 0 else end
    if step > 0:
        start, end = min(max(start, 0), n), min(max(end, 0), n)
    else:
        start, end = min(max(start, 0), n - 1), min(max(end, -1), n - 1)
    return range(start, end, step)


def slice_args(node: Node, ins: list[Value | None], rank: int) -> list[tuple[int, int, int, int]]:
    """(axis, start, end, step) for each sliced axis, from inputs (opset >= 10) or attributes."""
    starts = ints_arg(node, ins, 1, "starts") or []
    ends = ints_arg(node, ins, 2, "ends") or []
    axes = ints_arg(node, ins, 3, "axes") or list(range(len(starts)))
    steps = ints_arg(node, ins, 4, "steps") or [1] * len(starts)
    if not len(starts) == len(ends) == len(axes) == len(steps):
        raise ConvertError("Slice: starts, ends, axes and steps differ in length")
    if any(not -rank <= a < rank for a in axes):
        raise ConvertError(f"Slice axes {axes} out of range for rank {rank}")
    return [(a + rank if a < 0 else a, s, e, st) for a, s, e, st in zip(axes, starts, ends, steps)]


def slice_dim(dim: Dim, start: int, end: int, step: int) -> Dim:
    """The size after slicing one axis; a run-time size survives only a whole-axis slice."""
    if isinstance(dim, int):
        return len(onnx_range(dim, start, end, step))
    if step == 1 and start == 0 and end >= 2**31 - 1:
        return dim
    raise ConvertError(f"cannot slice [{start}:{end}:{step}] an axis of run-time size {dim}")


def _axes(axes: list[int], rank: int, what: str) -> list[int]:
    """Axes in [-rank, rank) as sorted non-negative indices."""
    if any(not -rank <= a < rank for a in axes):
        raise ConvertError(f"{what} axes {axes} out of range for rank {rank}")
    return sorted(a + rank if a < 0 else a for a in axes)


def _axes_arg(node: Node, ins: list[Value | None], rank: int) -> list[int] | None:
    axes = ints_arg(node, ins, 1, "axes")
    return None if axes is None else _axes(axes, rank, node.op)


def unsqueeze_shape(node: Node, ins: list[Value | None], shape: tuple[Dim, ...]) -> tuple[Dim, ...]:
    axes = ints_arg(node, ins, 1, "axes") or []
    where = _axes(axes, len(shape) + len(axes), "Unsqueeze")
    out: list[Dim] = list(shape)
    for a in where:
        out.insert(a, 1)
    return tuple(out)


def squeeze_shape(node: Node, ins: list[Value | None], shape: tuple[Dim, ...]) -> tuple[Dim, ...]:
    axes = _axes_arg(node, ins, len(shape))
    if axes is None:
        return tuple(d for d in shape if not (isinstance(d, int) and d == 1))
    for a in axes:
        if shape[a] != 1:
            raise ConvertError(f"Squeeze axis {a} of size {dim_str(shape[a])} in {shape_str(shape)}")
    return tuple(d for i, d in enumerate(shape) if i not in axes)


def reshape_target(target: list[Dim], shape: tuple[Dim, ...], allowzero: bool) -> list[Dim]:
    """Resolve the 0 (copy) and -1 (infer) entries of a Reshape target against `shape`."""
    if any(isinstance(d, int) and d < -1 for d in target):
        raise ConvertError(f"Reshape target {shape_str(target)} has a negative size")
    if not allowzero and any(d == 0 and i >= len(shape) for i, d in enumerate(target)):
        raise ConvertError(f"Reshape target {shape_str(target)} copies (0) an axis {shape_str(shape)} lacks")
    out: list[Dim] = [shape[i] if (d == 0 and not allowzero) else d for i, d in enumerate(target)]
    if sum(1 for d in out if d == -1) > 1:
        raise ConvertError(f"Reshape target {shape_str(target)} has more than one -1")
    if -1 in out:
        known = dim_prod([d for d in out if d != -1])
        rest = dim_div(dim_prod(shape), known)
        if rest is None:
            raise ConvertError(f"cannot reshape {shape_str(shape)} to {shape_str(target)}")
        out[out.index(-1)] = rest
    return out


def _shape_of(value: Value | None) -> tuple[Dim, ...]:
    if isinstance(value, Const):
        return tuple(int(d) for d in value.array.shape)
    if isinstance(value, (Data, Filled, StateIn)):
        return tuple(value.shape)
    if isinstance(value, SymInts):
        return value.shape
    raise ConvertError(f"the shape of a {describe(value)} is not known")


def op_shape(node: Node, ins: list[Value | None]) -> list[Value]:
    return shape_value(node, _shape_of(ins[0]))


def op_size(node: Node, ins: list[Value | None]) -> list[Value]:
    return shape_value(node, _shape_of(ins[0]))


def shape_value(node: Node, shape: tuple[Dim, ...] | list[Dim]) -> list[Value]:
    """What a Shape (its `start`/`end` applied) or a Size node gives for a tensor of `shape`."""
    if node.op == "Size":
        return [ints_value((), [dim_prod(list(shape))])]
    dims = list(shape)
    start = node.int_attr("start", 0)
    end = node.int_attr("end", len(dims)) if node.has("end") else len(dims)
    dims = dims[start:end]
    return [ints_value((len(dims),), dims)]


def op_identity(node: Node, ins: list[Value | None]) -> list[Value]:
    return [ins[0]]  # type: ignore[list-item]


def _binary(fn: Callable[[Dim, Dim], Dim]) -> Callable[[Node, list[Value | None]], list[Value]]:
    def op(node: Node, ins: list[Value | None]) -> list[Value]:
        shape, (a, b) = _broadcast_ints(node, ins[0], ins[1])
        return [ints_value(shape, [fn(x, y) for x, y in zip(a, b)])]

    return op


def _broadcast_ints(node: Node, *values: Value | None) -> tuple[tuple[int, ...], list[list[Dim]]]:
    """Elementwise operands that are shape values (rank 0 or 1): their broadcast shape, and the
    items of each repeated to its length."""
    pairs = [as_ints(v, f"{node.op} input {i}") for i, v in enumerate(values)]
    n = max(len(items) for _, items in pairs)
    if any(len(items) not in (1, n) for _, items in pairs):
        raise ConvertError(f"{node.op} of shapes {' and '.join(str(list(s)) for s, _ in pairs)}")
    shape = (n,) if any(s for s, _ in pairs) else ()
    return shape, [items * n if len(items) == 1 else items for _, items in pairs]


def _add(a: Dim, b: Dim) -> Dim:
    if isinstance(a, int) and isinstance(b, int):
        return a + b
    if b == 0 or a == 0:
        return a if b == 0 else b
    raise ConvertError(f"cannot add run-time sizes {dim_str(a)} + {dim_str(b)}")


def _sub(a: Dim, b: Dim) -> Dim:
    if isinstance(a, int) and isinstance(b, int):
        return a - b
    if b == 0:
        return a
    if a == b:
        return 0
    raise ConvertError(f"cannot subtract run-time sizes {dim_str(a)} - {dim_str(b)}")


def _div(a: Dim, b: Dim) -> Dim:
    if b == 0:
        raise ConvertError(f"shape arithmetic divides {dim_str(a)} by 0")
    if isinstance(a, int) and isinstance(b, int):
        return a // b
    q = dim_div(a, b)
    if q is None:
        raise ConvertError(f"cannot divide run-time size {dim_str(a)} by {dim_str(b)}")
    return q


def op_gather(node: Node, ins: list[Value | None]) -> list[Value]:
    if isinstance(ins[0], Filled):
        return [_filled_gather(node, ins)]
    _, items = as_ints(ins[0], "Gather data")
    idx = int_array(ins[1], "Gather indices")
    if node.int_attr("axis", 0) != 0:
        raise ConvertError("Gather on a shape value along an axis other than 0")
    n = len(items)
    if any(not -n <= i < n for i in idx.ravel()):
        raise ConvertError(f"Gather indices {idx.ravel().tolist()[:8]} out of range for a shape value of {n} entries")
    picked = [items[int(i) + n if i < 0 else int(i)] for i in idx.ravel()]
    return [ints_value(tuple(idx.shape), picked)]


def op_slice(node: Node, ins: list[Value | None]) -> list[Value]:
    if isinstance(ins[0], Filled):
        f = ins[0]
        shape = list(f.shape)
        for axis, s, e, st in slice_args(node, ins, len(shape)):
            shape[axis] = slice_dim(shape[axis], s, e, st)
        return [filled(tuple(shape), f.value, f.dtype)]
    _, items = as_ints(ins[0], "Slice data")
    for _axis, s, e, st in slice_args(node, ins, 1):
        items = [items[i] for i in onnx_range(len(items), s, e, st)]
    return [ints_value((len(items),), items)]


def _concat_filled(node: Node, ins: list[Value | None]) -> Value:
    """Concat of tensors that all hold one same value (zero initial states of two directions)."""
    parts: list[Filled] = []
    for v in ins:
        if isinstance(v, Const) and v.array.size and np.all(v.array == v.array.ravel()[0]):
            v = Filled(tuple(int(d) for d in v.array.shape), v.array.ravel()[0].item(), v.array.dtype)
        if not isinstance(v, Filled) or (parts and v.value != parts[0].value):
            raise ConvertError("Concat of run-time sized tensors that are not all one same value")
        parts.append(v)
    rank = len(parts[0].shape)
    axis = node.int_attr("axis", 0)
    if any(len(p.shape) != rank for p in parts) or not -rank <= axis < rank:
        raise ConvertError(f"Concat along axis {axis} of shapes {', '.join(shape_str(p.shape) for p in parts)}")
    axis = axis + rank if axis < 0 else axis
    sizes = [p.shape[axis] for p in parts]
    if not all(isinstance(s, int) for s in sizes):
        raise ConvertError("Concat along an axis of run-time size")
    shape = parts[0].shape[:axis] + (sum(sizes),) + parts[0].shape[axis + 1 :]  # type: ignore[arg-type]
    return filled(shape, parts[0].value, parts[0].dtype)


def op_concat(node: Node, ins: list[Value | None]) -> list[Value]:
    if any(isinstance(v, Filled) for v in ins):
        return [_concat_filled(node, ins)]
    items: list[Dim] = []
    for i, v in enumerate(ins):
        shape, part = as_ints(v, f"Concat input {i}")
        if len(shape) != 1:
            raise ConvertError(f"Concat input {i} is a scalar")
        items += part
    return [ints_value((len(items),), items)]


def op_unsqueeze(node: Node, ins: list[Value | None]) -> list[Value]:
    if isinstance(ins[0], Filled):
        f = ins[0]
        return [filled(unsqueeze_shape(node, ins, f.shape), f.value, f.dtype)]
    shape, items = as_ints(ins[0], "Unsqueeze data")
    return [ints_value(tuple(int(d) for d in unsqueeze_shape(node, ins, shape)), items)]


def op_squeeze(node: Node, ins: list[Value | None]) -> list[Value]:
    if isinstance(ins[0], Filled):
        f = ins[0]
        return [filled(squeeze_shape(node, ins, f.shape), f.value, f.dtype)]
    shape, items = as_ints(ins[0], "Squeeze data")
    return [ints_value(tuple(int(d) for d in squeeze_shape(node, ins, shape)), items)]


def op_reshape(node: Node, ins: list[Value | None]) -> list[Value]:
    _, target = as_ints(ins[1], "Reshape shape")
    allowzero = bool(node.int_attr("allowzero", 0))
    if isinstance(ins[0], Filled):
        f = ins[0]
        return [filled(tuple(reshape_target(target, f.shape, allowzero)), f.value, f.dtype)]
    shape, items = as_ints(ins[0], "Reshape data")
    out = reshape_target(target, shape, allowzero)
    if len(out) > 1 or dim_prod(out) != len(items):
        raise ConvertError(f"Reshape of a shape value {list(shape)} to {shape_str(out)}")
    return [ints_value(tuple(int(d) for d in out), items)]


def op_cast(node: Node, ins: list[Value | None]) -> list[Value]:
    value = ins[0]
    if isinstance(value, Filled):
        to = node.int_attr("to", 1)
        try:
            dtype = helper.tensor_dtype_to_np_dtype(to)
        except (KeyError, ValueError):
            raise node.bad_attr("to", to, "an ONNX data type") from None
        return [filled(value.shape, value.value, dtype)]
    return [value]  # type: ignore[list-item]


def op_transpose(node: Node, ins: list[Value | None]) -> list[Value]:
    f = ins[0]
    if not isinstance(f, Filled):
        raise ConvertError(f"Transpose of a {describe(f)}")
    perm = node.ints_attr("perm") or list(reversed(range(len(f.shape))))
    if sorted(perm) != list(range(len(f.shape))):
        raise ConvertError(f"perm {perm} does not fit a tensor of rank {len(f.shape)}")
    return [filled(tuple(f.shape[p] for p in perm), f.value, f.dtype)]


def op_reduce_prod(node: Node, ins: list[Value | None]) -> list[Value]:
    _, items = as_ints(ins[0], "ReduceProd data")
    keep = node.int_attr("keepdims", 1)
    return [ints_value((1,) if keep else (), [dim_prod(items)])]


def op_equal(node: Node, ins: list[Value | None]) -> list[Value]:
    shape, (a, b) = _broadcast_ints(node, ins[0], ins[1])
    return [Const(np.array([dim_eq(x, y) for x, y in zip(a, b)], dtype=bool).reshape(shape))]


def dim_less(a: Dim, b: Dim) -> bool:
    """Whether a < b, when that is decidable now (a run-time size coef * sizes is >= coef >= 1)."""
    if isinstance(a, int) and isinstance(b, int):
        return a < b
    if a == b:
        return False
    if isinstance(b, Sym) and isinstance(a, int) and b.coef >= 1 and a < b.coef:
        return True
    if isinstance(a, Sym) and isinstance(b, int) and a.coef >= 1 and a.coef >= b:
        return False
    raise ConvertError(f"cannot tell at conversion time whether {dim_str(a)} < {dim_str(b)}")


def _number_items(value: Value | None, what: str) -> tuple[tuple[int, ...], list[Dim]]:
    """as_ints, and also a float constant of whole numbers (a loop bound cast to float)."""
    if isinstance(value, Const) and value.array.dtype.kind == "f" and value.array.ndim <= 1:
        a = value.array.ravel()
        if np.all(np.isfinite(a)) and np.all(a == np.round(a)):
            return tuple(value.array.shape), [int(v) for v in a]
    return as_ints(value, what)


def op_less(node: Node, ins: list[Value | None]) -> list[Value]:
    """Less of sizes: a loop's bound check (tf2onnx compares 0 with the time length T)."""
    (sa, a), (sb, b) = _number_items(ins[0], "Less A"), _number_items(ins[1], "Less B")
    n = max(len(a), len(b))
    if len(a) not in (1, n) or len(b) not in (1, n):
        raise ConvertError(f"Less of shapes {list(sa)} and {list(sb)}")
    a, b = (a * n if len(a) == 1 else a), (b * n if len(b) == 1 else b)
    shape = max((sa, sb), key=len)
    return [Const(np.array([dim_less(x, y) for x, y in zip(a, b)], dtype=bool).reshape(shape))]


def op_where(node: Node, ins: list[Value | None]) -> list[Value]:
    cond = np.asarray(const_of(ins[0], "Where condition")).astype(bool)
    (sa, a), (sb, b) = as_ints(ins[1], "Where X"), as_ints(ins[2], "Where Y")
    shape = max((tuple(cond.shape), sa, sb), key=len)
    n = int(np.prod(shape)) if shape else 1
    c = list(cond.ravel()) * (n if cond.size == 1 else 1)
    a, b = (a * n if len(a) == 1 else a), (b * n if len(b) == 1 else b)
    if not len(c) == len(a) == len(b) == n:
        raise ConvertError(f"Where of shapes {list(cond.shape)}, {list(sa)} and {list(sb)}")
    return [ints_value(shape, [x if k else y for k, x, y in zip(c, a, b)])]


def op_constant_of_shape(node: Node, ins: list[Value | None]) -> list[Value]:
    shape, items = as_ints(ins[0], "ConstantOfShape shape")
    tensor = node.attr("value")
    if tensor is None:
        value = np.zeros(1, np.float32)
    elif not isinstance(tensor, TensorProto):
        raise node.bad_attr("value", tensor, "a tensor")
    else:
        try:
            value = numpy_helper.to_array(tensor).ravel()
        except Exception as e:  # noqa: BLE001 - a corrupt tensor: onnx raises several types
            raise ConvertError(f"attribute value: the tensor cannot be read: {e}") from None
        if value.size != 1 or value.dtype.kind not in "fiub":
            raise ConvertError(f"attribute value must be one number, got {value.dtype} {list(value.shape)}")
    return [filled(tuple(items), value[0].item(), value.dtype)]


def _broadcast(a: tuple[Dim, ...], b: tuple[Dim, ...]) -> tuple[Dim, ...]:
    n = max(len(a), len(b))
    a, b = (1,) * (n - len(a)) + a, (1,) * (n - len(b)) + b
    out: list[Dim] = []
    for x, y in zip(a, b):
        if x == 1 or x == y:
            out.append(y)
        elif y == 1:
            out.append(x)
        else:
            raise ConvertError(f"cannot broadcast {shape_str(a)} with {shape_str(b)}")
    return tuple(out)


def op_expand(node: Node, ins: list[Value | None]) -> list[Value]:
    _, target = as_ints(ins[1], "Expand shape")
    src = ins[0]
    if isinstance(src, Filled):
        return [filled(_broadcast(src.shape, tuple(target)), src.value, src.dtype)]
    if isinstance(src, SymInts) and len(src.items) == 1:
        return [filled(_broadcast(src.shape, tuple(target)), src.items[0], np.dtype(np.int64))]
    a = np.asarray(const_of(src, "Expand input"))
    if a.size == 0 or not np.all(a == a.ravel()[0]):
        raise ConvertError("Expand of a non-uniform constant to a run-time shape")
    shape = tuple(int(d) for d in a.shape)
    return [filled(_broadcast(shape, tuple(target)), a.ravel()[0].item(), a.dtype)]


def _filled_gather(node: Node, ins: list[Value | None]) -> Value:
    f = ins[0]
    assert isinstance(f, Filled)
    idx = np.asarray(const_of(ins[1], "Gather indices"))
    axis = node.int_attr("axis", 0)
    axis = axis + len(f.shape) if axis < 0 else axis
    shape = f.shape[:axis] + tuple(int(d) for d in idx.shape) + f.shape[axis + 1 :]
    return filled(shape, f.value, f.dtype)


MAX_FOLDED = 1 << 24  # elements of a constant built at conversion time (zero states are tiny)


def filled(shape: tuple[Dim, ...], value: float | int | Sym, dtype: np.dtype) -> Value:
    """A Filled tensor, or a plain constant when every size is known."""
    check_size(shape)
    if all(isinstance(d, int) for d in shape):
        if isinstance(value, Sym):
            if len(shape) <= 1:
                return SymInts(tuple(int(d) for d in shape), (value,) * int(dim_prod(shape)))  # type: ignore[arg-type]
        else:
            return Const(np.full(tuple(int(d) for d in shape), value, dtype=dtype))
    return Filled(shape, value, np.dtype(dtype))


def check_size(shape: tuple[Dim, ...] | list[Dim]) -> None:
    """Refuse a negative size, or a tensor too large to build at conversion time."""
    known = [d for d in shape if isinstance(d, int)]
    if any(d < 0 for d in known):
        raise ConvertError(f"a tensor of shape {shape_str(shape)}: negative size")
    size = math.prod(max(d, 1) for d in known)  # a 0 beside 2^31 x 2^31 does not make it buildable
    if size > MAX_FOLDED:
        raise ConvertError(
            f"a tensor of shape {shape_str(shape)} (over {size} elements) is too large to "
            f"build at conversion time (limit {MAX_FOLDED})"
        )


SYM_OPS: dict[str, Callable[[Node, list[Value | None]], list[Value]]] = {
    "Shape": op_shape,
    "Size": op_size,
    "Identity": op_identity,
    "Gather": op_gather,
    "Slice": op_slice,
    "Concat": op_concat,
    "Unsqueeze": op_unsqueeze,
    "Squeeze": op_squeeze,
    "Reshape": op_reshape,
    "Cast": op_cast,
    "Transpose": op_transpose,
    "ReduceProd": op_reduce_prod,
    "Add": _binary(_add),
    "Sub": _binary(_sub),
    "Mul": _binary(dim_mul),
    "Div": _binary(_div),
    "Equal": op_equal,
    "Less": op_less,
    "Where": op_where,
    "ConstantOfShape": op_constant_of_shape,
    "Expand": op_expand,
}


def fold_symbolic(node: Node, ins: list[Value | None]) -> list[Value]:
    fn = SYM_OPS.get(node.op) if node.proto.domain in ("", "ai.onnx") else None
    if fn is None:
        raise UnsupportedOpError(
            f"op {node.op!r} on a value that depends on the run-time batch or time length "
            f"({', '.join(describe(v) for v in ins)}); shape arithmetic supported: "
            f"{', '.join(sorted(SYM_OPS))}"
        )
    return fn(node, ins)
