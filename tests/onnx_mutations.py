"""Mutated ONNX models for fuzzing the converter: hypothesis strategies and the property.

Used by tests/test_converter_fuzz.py (a derandomized budget in-process) and by the atheris
target `onnx` of tools/fuzz_python.py (the long runs: libFuzzer bytes drive the same strategies
through hypothesis' `fuzz_one_input`; libFuzzer's -timeout and -rss_limit_mb catch hangs and
runaway allocations, and a crash in C code ends the run as a finding).

Seeds: every exporter fixture (tests/data/fixtures/*.onnx) and every convertible model of the
case table (tests/onnx_cases.py). An example is one seed with one to three model mutations
(attributes of odd types and values, initializers of other shapes, dtypes and values, graph
inputs and outputs dropped, duplicated, renamed or retyped, unknown ops inserted, nodes dropped,
rewired into cycles or emptied, odd opsets) and, one time in five, a byte-level mutation of the
serialized file (truncation, flipped, inserted or deleted bytes). It is converted to f32, int16
or int8.

The property (`check`): `rnnedge.convert(onnx_file, blob_file)` either
- converts, and then the blob loads (`rnnedge.load`), runs a short sequence (`Model.run`) and,
  when streamable, steps once; or
- raises an `rnnedge.RnnedgeError` with a message, leaving the blob already at the output path
  as it was and no temporary file beside it;
never another exception. `fold_examples` / the FoldExample branch of `check` do the same for the
symbolic shape arithmetic of rnnedge/converter/fold.py, op by op.
"""

from __future__ import annotations

import math
import os
import traceback
import warnings
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable

import numpy as np
import onnx
from hypothesis import strategies as st
from onnx import AttributeProto, TensorProto, helper, numpy_helper

ROOT = Path(__file__).resolve().parent.parent

import rnnedge
from rnnedge.errors import RnnedgeError

FIXTURES = ROOT / "tests" / "data" / "fixtures"
QUANTS = ("f32",) * 6 + ("int16", "int8")  # f32 most often: it reaches every converter path


# -- seeds --------------------------------------------------------------------------------------
@lru_cache(maxsize=None)
def seed_models() -> tuple[tuple[str, bytes], ...]:
    """(name, serialized model) for every fixture and every convertible case of the table."""
    import onnx_cases

    seeds, seen = [], set()
    for p in sorted(FIXTURES.glob("*.onnx")):  # a file stored twice (one model, two `fixed=`) once
        data = p.read_bytes()
        if data not in seen:
            seen.add(data)
            seeds.append((p.stem, data))
    for case in onnx_cases.CASES:
        if case.convertible:
            seeds.append((case.name, case.build(all_outputs=True).model.SerializeToString()))
    return tuple(seeds)


@lru_cache(maxsize=None)
def good_blob() -> bytes:
    """A valid blob, put at the output path before each conversion: a failure must keep it."""
    from rnnedge.blob.write import write_blob
    from rnnedge.converter import to_network

    return write_blob(to_network(FIXTURES / "torch_rnn_tanh_hn_sigmoid.onnx"))


# -- odd values ---------------------------------------------------------------------------------
ODD_INTS = (0, 1, -1, 2, 3, 5, -7, 2**31 - 1, -(2**31), 2**31, 2**40, 2**62, 2**63 - 1, -(2**63))
ODD_FLOATS = (math.nan, math.inf, -math.inf, 0.0, -0.0, -1.0, 0.5, 1e-45, 3.4e38, -3.4e38)
ODD_STRINGS = ("", "forward", "reverse", "bidirectional", "sideways", "Sigmoid", "tanh", "Relu",
               "NoSuchActivation", "LSTM", "\u00e9\u00e8", "a" * 200)  # fmt: skip
ODD_DIMS = (0, 1, 2, 3, 7, 2**31, 2**40, 2**62)
OPS = ("LSTM", "GRU", "RNN", "Relu", "Sigmoid", "Tanh", "Softmax", "Transpose", "Reshape",
       "Squeeze", "Unsqueeze", "Gather", "Slice", "Concat", "Gemm", "MatMul", "Add", "Mul", "Div",
       "Identity", "Cast", "Expand", "Shape", "ConstantOfShape", "LayerNormalization",
       "ReduceMean", "ReverseSequence", "Loop", "Scan", "If", "Sin", "TopK", "NonZero",
       "Einsum", "NoSuchOp", "")  # fmt: skip
DOMAINS = ("", "ai.onnx", "com.example", "ai.onnx.ml", "com.microsoft")
DTYPES = (np.float16, np.float64, np.int8, np.int32, np.int64, np.uint8, np.bool_)
RAW_TYPES = (0, TensorProto.FLOAT16, TensorProto.DOUBLE, TensorProto.INT8, TensorProto.INT64,
             TensorProto.STRING, TensorProto.BOOL, TensorProto.BFLOAT16, TensorProto.COMPLEX64,
             TensorProto.FLOAT8E4M3FN, TensorProto.UINT4, 999)  # fmt: skip

Draw = Callable[[st.SearchStrategy], object]


def _short(value: object, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def odd_ints() -> st.SearchStrategy[int]:
    return st.one_of(st.sampled_from(ODD_INTS), st.integers(-(2**63), 2**63 - 1))


def odd_floats() -> st.SearchStrategy[float]:
    return st.one_of(st.sampled_from(ODD_FLOATS), st.floats(width=32))


def odd_strings() -> st.SearchStrategy[str | bytes]:
    return st.one_of(st.sampled_from(ODD_STRINGS), st.text(max_size=10), st.binary(max_size=6))


def small_arrays() -> st.SearchStrategy[np.ndarray]:
    shapes = st.lists(st.integers(0, 3), max_size=3)
    kinds = st.sampled_from((np.float32, np.int64, np.int32, np.float64, np.bool_))
    def make(shape: list[int], dtype: type, fill: float) -> np.ndarray:
        with np.errstate(all="ignore"):
            return np.full(shape, fill).astype(dtype)

    return st.builds(
        make,
        shapes,
        kinds,
        st.sampled_from((0, 1, -1, 2, 3, math.nan, 1e30)),
    )


def attribute_values() -> st.SearchStrategy[object]:
    """Any value an AttributeProto can hold, biased towards the ones a converter trips on."""
    return st.one_of(
        odd_ints(),
        odd_floats(),
        odd_strings(),
        st.lists(odd_ints(), max_size=4),
        st.lists(odd_floats(), min_size=1, max_size=4),
        st.lists(st.one_of(st.sampled_from(ODD_STRINGS), st.binary(max_size=4)), min_size=1, max_size=6),
        small_arrays(),
        st.sampled_from(list(_EMPTY)),
    )


_EMPTY = {"<empty ints>": AttributeProto.INTS, "<empty floats>": AttributeProto.FLOATS,
          "<empty strings>": AttributeProto.STRINGS, "<graph>": AttributeProto.GRAPH}  # fmt: skip


def make_attribute(name: str, value: object) -> AttributeProto:
    if isinstance(value, str) and value in _EMPTY:
        attr = AttributeProto(name=name, type=_EMPTY[value])
        if value == "<graph>":
            attr.g.CopyFrom(helper.make_graph([], "sub", [], []))
        return attr
    if isinstance(value, np.ndarray):
        return helper.make_attribute(name, numpy_helper.from_array(value))
    if isinstance(value, list) and not value:
        return AttributeProto(name=name, type=AttributeProto.INTS)
    if isinstance(value, list) and value and isinstance(value[0], (str, bytes)):
        value = [v.encode() if isinstance(v, str) else v for v in value]
    return helper.make_attribute(name, value)


def _index(draw: Draw, n: int) -> int:
    return draw(st.integers(0, n - 1))  # type: ignore[return-value]


def _tensor_names(graph: onnx.GraphProto) -> list[str]:
    names = [i.name for i in graph.input] + [t.name for t in graph.initializer]
    return names + [o for n in graph.node for o in n.output if o]


# -- model mutations: each changes `model` in place and says what it did -------------------------
def mutate_attribute(draw: Draw, model: onnx.ModelProto) -> str:
    nodes = model.graph.node
    if not nodes:
        return "attribute: no nodes"
    i = _index(draw, len(nodes))
    node = nodes[i]
    names = [a.name for a in node.attribute]
    try:
        names += list(onnx.defs.get_schema(node.op_type, 23, node.domain).attributes)
    except Exception:  # noqa: BLE001 - an unknown op has no schema: use its own attributes
        pass
    names += ["hidden_size", "direction", "activations", "axis", "perm", "clip", "layout"]
    name = draw(st.sampled_from(names))
    action = draw(st.sampled_from(("set", "set", "set", "delete", "duplicate")))
    kept = [a for a in node.attribute if a.name != name]
    old = [a for a in node.attribute if a.name == name]
    if action == "delete":
        del node.attribute[:]
        node.attribute.extend(kept)
        return f"node #{i} {node.op_type}: attribute {name} deleted"
    value = draw(attribute_values())
    attr = make_attribute(name, value)
    if action == "duplicate":
        node.attribute.append(attr)
        return f"node #{i} {node.op_type}: attribute {name} = {_short(value)} added again"
    del node.attribute[:]
    node.attribute.extend(kept + [attr])
    return f"node #{i} {node.op_type}: attribute {name} = {_short(value)} (was {len(old)} value)"


def _odd_array(draw: Draw, a: np.ndarray) -> tuple[np.ndarray, str]:
    """The same array with special values: NaN/inf/huge floats, extreme integers."""
    a = a.copy()
    if a.dtype.kind == "f":
        fill = draw(st.sampled_from((math.nan, math.inf, -math.inf, 0.0, 1e30, -1e30, 1e-40)))
    elif a.dtype.kind in "iu":
        info = np.iinfo(a.dtype)
        fill = draw(st.sampled_from((info.max, info.min, 0, -1 if info.min else 1, 3)))
    else:
        fill = draw(st.sampled_from((0, 1)))
    with np.errstate(all="ignore"):
        if a.size and draw(st.booleans()):
            a.flat[_index(draw, a.size)] = fill
            return a, f"one value = {fill!r}"
        a[...] = fill
    return a, f"all values = {fill!r}"


def _other_shape(draw: Draw, shape: tuple[int, ...]) -> tuple[int, ...]:
    dims = list(shape)
    how = draw(st.sampled_from(("drop", "add", "grow", "shrink", "zero", "scalar")))
    if how == "drop" and dims:
        del dims[_index(draw, len(dims))]
    elif how == "add":
        dims.insert(draw(st.integers(0, len(dims))), draw(st.sampled_from((1, 2))))
    elif how in ("grow", "shrink", "zero") and dims:
        k = _index(draw, len(dims))
        dims[k] = {"grow": dims[k] + 1, "shrink": max(dims[k] - 1, 0), "zero": 0}[how]
    elif how == "scalar":
        dims = []
    return tuple(dims)


def mutate_initializer(draw: Draw, model: onnx.ModelProto) -> str:
    inits = model.graph.initializer
    if not inits:
        return "initializer: none"
    i = _index(draw, len(inits))
    t = inits[i]
    action = draw(st.sampled_from(("values", "values", "shape", "dims", "dtype", "raw_type",
                                   "drop", "duplicate", "rename", "external")))  # fmt: skip
    where = f"initializer {t.name!r} {list(t.dims)}"
    if action in ("values", "shape", "dtype"):
        try:
            a = numpy_helper.to_array(t)
        except Exception:  # noqa: BLE001 - already broken by an earlier mutation
            return f"{where}: unreadable, left alone"
        if a.dtype == object or a.size > 10**6:
            return f"{where}: left alone"
        if action == "values":
            a, text = _odd_array(draw, a)
        elif action == "shape":
            shape = _other_shape(draw, a.shape)
            a = np.resize(a, shape) if a.size else np.zeros(shape, a.dtype)
            text = f"shape -> {list(shape)}"
        else:
            dtype = draw(st.sampled_from(DTYPES))
            with np.errstate(all="ignore"):
                a = a.astype(dtype)
            text = f"dtype -> {np.dtype(dtype).name}"
        inits[i].CopyFrom(numpy_helper.from_array(a, t.name))
        return f"{where}: {text}"
    if action == "dims":
        shape = _other_shape(draw, tuple(t.dims)) if draw(st.booleans()) else (draw(st.sampled_from(ODD_DIMS)),)
        del t.dims[:]
        t.dims.extend(shape)
        return f"{where}: dims -> {list(shape)}, data unchanged"
    if action == "raw_type":
        t.data_type = draw(st.sampled_from(RAW_TYPES))
        return f"{where}: data_type -> {t.data_type}, data unchanged"
    if action == "drop":
        del inits[i]
        return f"{where}: dropped"
    if action == "duplicate":
        inits.append(t)
        return f"{where}: duplicated"
    if action == "rename":
        t.name = draw(st.sampled_from(_tensor_names(model.graph) + ["renamed", ""]))
        return f"{where}: renamed {t.name!r}"
    location = draw(st.sampled_from(("missing.bin", "/etc/hostname", "../../etc/hostname", "",
                                     "model.onnx", ".", "a\x00b")))  # fmt: skip
    t.data_location = TensorProto.EXTERNAL
    t.ClearField("raw_data")
    del t.external_data[:]
    entries = {"location": location, "offset": draw(st.sampled_from(("0", "-1", "x", "99999999"))),
               "length": draw(st.sampled_from(("4", "0", "-5", "1000000000000")))}  # fmt: skip
    for key, value in entries.items():
        t.external_data.add(key=key, value=value)
    return f"{where}: external data {entries}"


def _value_info(draw: Draw, infos, graph: onnx.GraphProto, what: str) -> str:
    if not infos:
        return f"{what}: none"
    i = _index(draw, len(infos))
    info = infos[i]
    where = f"graph {what} {info.name!r}"
    action = draw(st.sampled_from(("drop", "duplicate", "rename", "rank", "dim", "dim", "elem_type",
                                   "no_type", "extra")))  # fmt: skip
    if action == "drop":
        del infos[i]
        return f"{where}: dropped"
    if action == "duplicate":
        infos.append(info)
        return f"{where}: duplicated"
    if action == "rename":
        info.name = draw(st.sampled_from(_tensor_names(graph) + ["renamed", ""]))
        return f"{where}: renamed {info.name!r}"
    if action == "extra":
        infos.append(helper.make_tensor_value_info(f"extra_{what}", TensorProto.FLOAT, [2, 3]))
        return f"{where}: an extra {what} added"
    if action == "no_type":
        info.ClearField("type")
        return f"{where}: type removed"
    tensor_type = info.type.tensor_type
    if action == "elem_type":
        tensor_type.elem_type = draw(st.sampled_from(RAW_TYPES))
        return f"{where}: elem_type -> {tensor_type.elem_type}"
    dims = tensor_type.shape.dim
    if action == "rank" or not dims:
        if dims and draw(st.booleans()):
            del dims[_index(draw, len(dims))]
            return f"{where}: one axis fewer"
        dims.add().dim_value = draw(st.sampled_from((1, 2, 3)))
        return f"{where}: one axis more"
    k = _index(draw, len(dims))
    choice = draw(st.one_of(st.sampled_from(ODD_DIMS), st.sampled_from(("T", "batch", "", "?"))))
    if isinstance(choice, int):
        dims[k].dim_value = choice
    else:
        dims[k].dim_param = choice
    return f"{where}: axis {k} -> {choice!r}"


def mutate_inputs(draw: Draw, model: onnx.ModelProto) -> str:
    return _value_info(draw, model.graph.input, model.graph, "input")


def mutate_outputs(draw: Draw, model: onnx.ModelProto) -> str:
    return _value_info(draw, model.graph.output, model.graph, "output")


def mutate_nodes(draw: Draw, model: onnx.ModelProto) -> str:
    graph = model.graph
    nodes = graph.node
    action = draw(st.sampled_from(("insert", "insert", "retype", "drop", "duplicate", "rewire",
                                   "rewire", "cycle", "drop_input", "extra_input", "drop_output",
                                   "domain", "reverse", "empty")))  # fmt: skip
    if action == "empty" or not nodes:
        del nodes[:]
        return "graph emptied"
    if action == "reverse":
        order = list(nodes)[::-1]
        del nodes[:]
        nodes.extend(order)
        return "node order reversed"
    i = _index(draw, len(nodes))
    node = nodes[i]
    where = f"node #{i} {node.op_type} {node.name!r}"
    if action == "insert":  # an op on some tensor, spliced in before the consumers of that tensor
        names = [n for n in _tensor_names(graph) if n]
        if not names:
            return "insert: no tensors"
        source = draw(st.sampled_from(names))
        op, domain = draw(st.sampled_from(OPS)), draw(st.sampled_from(DOMAINS))
        new = helper.make_node(op, [source], [f"{source}_fuzz"], name="fuzz", domain=domain)
        for other in nodes:
            for k, name in enumerate(other.input):
                if name == source and draw(st.booleans()):
                    other.input[k] = new.output[0]
        for out in graph.output:
            if out.name == source and draw(st.booleans()):
                out.name = new.output[0]
        nodes.insert(draw(st.integers(0, len(nodes))), new)
        return f"op {domain}.{op} inserted on {source!r}"
    if action == "retype":
        node.op_type = draw(st.sampled_from(OPS))
        return f"{where}: op -> {node.op_type!r}"
    if action == "drop":
        del nodes[i]
        return f"{where}: dropped"
    if action == "duplicate":
        nodes.insert(draw(st.integers(0, len(nodes))), node)
        return f"{where}: duplicated"
    if action == "domain":
        node.domain = draw(st.sampled_from(DOMAINS))
        return f"{where}: domain -> {node.domain!r}"
    if action == "extra_input":
        node.input.append(draw(st.sampled_from(_tensor_names(graph) + ["", "nowhere"])))
        return f"{where}: extra input {node.input[-1]!r}"
    if action == "drop_input":
        if not node.input:
            return f"{where}: no inputs"
        k = _index(draw, len(node.input))
        del node.input[k]
        return f"{where}: input {k} dropped"
    if action == "drop_output":
        if not node.output:
            return f"{where}: no outputs"
        k = _index(draw, len(node.output))
        node.output[k] = draw(st.sampled_from(("", "renamed_output")))
        return f"{where}: output {k} -> {node.output[k]!r}"
    if not node.input:
        return f"{where}: no inputs"
    k = _index(draw, len(node.input))
    if action == "cycle":  # read an output of this node or of a later one
        later = [o for n in list(nodes)[i:] for o in n.output if o]
        if not later:
            return f"{where}: nothing later"
        node.input[k] = draw(st.sampled_from(later))
        return f"{where}: input {k} -> {node.input[k]!r} (a cycle)"
    node.input[k] = draw(st.sampled_from(_tensor_names(graph) + ["", "nowhere"]))
    return f"{where}: input {k} -> {node.input[k]!r}"


def mutate_header(draw: Draw, model: onnx.ModelProto) -> str:
    action = draw(st.sampled_from(("opset", "opset", "no_opset", "two_opsets", "ir_version")))
    if action == "ir_version":
        model.ir_version = draw(st.sampled_from((0, 1, 3, 7, 11, 99, 2**62)))
        return f"ir_version -> {model.ir_version}"
    if action == "no_opset":
        del model.opset_import[:]
        return "no opset_import"
    version = draw(st.sampled_from((-1, 0, 1, 6, 7, 9, 11, 13, 14, 17, 21, 23, 99, 2**40)))
    if action == "two_opsets":
        model.opset_import.add(domain="", version=version)
        return f"a second default opset {version}"
    for o in model.opset_import:
        if o.domain in ("", "ai.onnx"):
            o.version = version
    return f"default opset -> {version}"


MODEL_MUTATIONS = (mutate_attribute, mutate_attribute, mutate_initializer, mutate_initializer,
                   mutate_inputs, mutate_outputs, mutate_nodes, mutate_nodes, mutate_header)  # fmt: skip


def mutate_bytes(draw: Draw, data: bytes) -> tuple[bytes, str]:
    n = len(data)
    action = draw(st.sampled_from(("truncate", "truncate", "flip", "flip", "insert", "delete",
                                   "empty", "garbage")))  # fmt: skip
    if action == "empty" or n == 0:
        return b"", "file emptied"
    if action == "garbage":
        junk = draw(st.binary(min_size=1, max_size=64))
        return junk, f"file replaced by {len(junk)} random bytes"
    at = draw(st.integers(0, n - 1))
    if action == "truncate":
        return data[:at], f"file truncated to {at} of {n} bytes"
    if action == "flip":
        out = bytearray(data)
        for _ in range(draw(st.integers(1, 8))):
            k = draw(st.integers(0, n - 1))
            out[k] ^= draw(st.integers(1, 255))
        return bytes(out), "bytes flipped"
    if action == "insert":
        junk = draw(st.binary(min_size=1, max_size=16))
        return data[:at] + junk + data[at:], f"{len(junk)} bytes inserted at {at}"
    length = draw(st.integers(1, 64))
    return data[:at] + data[at + length :], f"{length} bytes deleted at {at}"


@dataclass(frozen=True)
class Example:
    seed: str
    steps: tuple[str, ...]
    data: bytes
    quant: str

    def __repr__(self) -> str:  # what hypothesis prints for a failing example
        steps = "; ".join(self.steps)
        return f"Example(seed={self.seed!r}, quant={self.quant!r}, {len(self.data)} bytes: {steps})"


@st.composite
def examples(draw: Draw) -> Example:
    """A seed model with one to three mutations, serialized (then, 1 in 5, damaged as bytes)."""
    seeds = seed_models()
    name, data = seeds[_index(draw, len(seeds))]
    model = onnx.ModelProto()
    model.ParseFromString(data)
    steps = [draw(st.sampled_from(MODEL_MUTATIONS))(draw, model) for _ in range(draw(st.integers(1, 3)))]
    out = model.SerializeToString()
    if draw(st.integers(0, 4)) == 0:
        out, text = mutate_bytes(draw, out)
        steps.append(text)
    return Example(name, tuple(steps), out, draw(st.sampled_from(QUANTS)))


# -- shape arithmetic: the symbolic folding of converter/fold.py, op by op -------------------------
@dataclass(frozen=True)
class FoldExample:
    """One shape-arithmetic op (as fold.SYM_OPS evaluates it) on drawn values: the shape chains
    that only a few seeds hold (Shape -> Gather -> Concat -> ConstantOfShape ...) at every arity,
    attribute and run-time size."""

    node: onnx.NodeProto
    opset: int
    ins: tuple  # of converter.values Const / SymInts / Filled, or None

    def __repr__(self) -> str:
        attrs = {a.name: _short(helper.get_attribute_value(a), 30) for a in self.node.attribute}
        return f"FoldExample({self.node.op_type} opset {self.opset} {attrs} of {self.ins!r})"[:1500]


def _sym_dims() -> st.SearchStrategy:
    from rnnedge.converter.values import Sym

    syms = st.builds(Sym, st.sampled_from((1, 2, 3)), st.sampled_from((("B",), ("T",), ("B", "T"))))
    return st.one_of(st.integers(-2, 6), st.sampled_from((2**31 - 1, 2**40)), syms)


@st.composite
def fold_examples(draw: Draw) -> FoldExample:
    from rnnedge.converter.fold import SYM_OPS
    from rnnedge.converter.values import Const, Filled, Sym, SymInts

    def some_sym(items: list) -> list:
        if not any(isinstance(d, Sym) for d in items):
            items[_index(draw, len(items))] = Sym(1, ("B",))
        return items

    def value() -> object:
        kind = draw(st.sampled_from(("const", "ints", "symints", "filled", "none")))
        if kind == "const":
            return Const(draw(small_arrays()))
        if kind == "ints":
            a = np.array(draw(st.lists(st.integers(-3, 8), max_size=4)), np.int64)
            return Const(a.reshape(()) if a.size == 1 and draw(st.booleans()) else a)
        if kind == "symints":
            items = some_sym(draw(st.lists(_sym_dims(), min_size=1, max_size=4)))
            scalar = len(items) == 1 and draw(st.booleans())
            return SymInts(() if scalar else (len(items),), tuple(items))
        if kind == "filled":
            shape = some_sym(draw(st.lists(_sym_dims(), min_size=1, max_size=4)))
            fill = draw(st.sampled_from((0.0, 0, 1.5, Sym(1, ("T",)))))
            return Filled(tuple(shape), fill, np.dtype(draw(st.sampled_from((np.float32, np.int64)))))
        return None

    op = draw(st.sampled_from(sorted(SYM_OPS)))
    ins = [value() for _ in range(draw(st.integers(1, 3)))]
    if not any(isinstance(v, (SymInts, Filled)) for v in ins):  # else the walk folds it as a constant
        ins[_index(draw, len(ins))] = SymInts((1,), (Sym(1, ("B",)),))
    ins = tuple(ins)
    names = draw(st.lists(st.sampled_from(("axis", "axes", "perm", "start", "end", "keepdims",
                                           "allowzero", "to", "value")), max_size=3, unique=True))  # fmt: skip
    attrs = [make_attribute(n, draw(st.one_of(st.integers(-4, 4), st.lists(st.integers(-4, 4), max_size=3),
                                              attribute_values()))) for n in names]  # fmt: skip
    node = helper.make_node(op, [f"in{i}" if v is not None else "" for i, v in enumerate(ins)], ["out"])
    node.attribute.extend(attrs)
    return FoldExample(node, draw(st.sampled_from((11, 13, 17))), ins)


def _check_fold(example: FoldExample) -> Outcome:
    from rnnedge.converter.fold import fold_symbolic
    from rnnedge.converter.graph import _check_arity
    from rnnedge.converter.node import Node
    from rnnedge.converter.values import Const, Filled, SymInts

    node, ins = Node(example.node, 0, example.opset), list(example.ins)
    try:
        _check_arity(node, ins, "fold")  # as the walk does before any op
        outs = fold_symbolic(node, ins)
    except RnnedgeError as e:
        return Outcome("refused", type(e).__name__, str(e)) if str(e).strip() else _bug("empty message", e)
    except Exception as e:  # noqa: BLE001
        return _bug("fold_symbolic raised", e)
    if not all(isinstance(v, (Const, SymInts, Filled)) for v in outs):
        return _bug("fold_symbolic returned a non-value", None, repr(outs)[:300])
    return Outcome("converted", example.node.op_type)


# -- the property --------------------------------------------------------------------------------
@dataclass
class Outcome:
    kind: str  # "converted", "refused" (an RnnedgeError), "bug"
    what: str  # the error class, or for a bug its cause (deduplication key)
    message: str = ""
    trace: str = ""

    def report(self, example: Example) -> str:
        return f"{self.what}\n{example!r}\n{self.message}\n{self.trace}"




def _where(e: BaseException) -> str:
    """The deepest frame of the traceback inside rnnedge (else the deepest frame)."""
    frames = traceback.extract_tb(e.__traceback__)
    ours = [f for f in frames if f"{os.sep}rnnedge{os.sep}" in f.filename] or frames
    if not ours:
        return "?"
    f = ours[-1]
    return f"{os.path.relpath(f.filename, ROOT) if f.filename.startswith(str(ROOT)) else f.filename}:{f.lineno}"


def _bug(cause: str, e: BaseException | None = None, message: str = "") -> Outcome:
    if e is None:
        return Outcome("bug", cause, message)
    trace = "".join(traceback.format_exception(type(e), e, e.__traceback__))
    return Outcome("bug", f"{cause}: {type(e).__name__} at {_where(e)}", f"{type(e).__name__}: {e}", trace)


def small_input(model: rnnedge.Model) -> np.ndarray:
    """A short random sequence in the model's input layout: T = 3, B = 2 unless the graph fixes
    them to a small size (a large static size is the graph's; Model.run does not require it)."""
    axes, shape = model.input_spec["axes"], model.input_spec["shape"]
    dims = [
        model.in_features if a == "F" else (fixed if fixed and fixed <= 16 else {"T": 3, "B": 2}[a])
        for a, fixed in zip(axes, shape)
    ]
    return np.random.default_rng(0).standard_normal(dims).astype(np.float32)


def _leftovers(workdir: Path) -> list[str]:
    return sorted(p.name for p in workdir.iterdir() if p.name not in ("model.onnx", "model.rne"))


def _check(example: Example, workdir: Path) -> Outcome:
    src, out = workdir / "model.onnx", workdir / "model.rne"
    src.write_bytes(example.data)
    out.write_bytes(good_blob())
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # calibration defaults, precision notes
            rnnedge.convert(src, out, quant=example.quant)
    except RnnedgeError as e:
        if not str(e).strip():
            return _bug(f"{type(e).__name__} without a message", e)
        if out.read_bytes() != good_blob():
            return _bug("a failed conversion changed the existing blob", e)
        if _leftovers(workdir):
            return _bug(f"a failed conversion left {_leftovers(workdir)}", e)
        return Outcome("refused", type(e).__name__, str(e))
    except Exception as e:  # noqa: BLE001 - the point: anything else is a finding
        return _bug("convert raised", e)
    if _leftovers(workdir):
        return _bug(f"a conversion left {_leftovers(workdir)}")
    try:
        model = rnnedge.load(out)
        x = small_input(model)
        y = model.run(x)
        if model.streamable:
            axes = model.input_spec["axes"]
            batch = x.shape[axes.index("B")] if "B" in axes else 1
            model.stream(batch=batch).step(np.take(x, 0, axis=axes.index("T")))
    except Exception as e:  # noqa: BLE001
        return _bug("converted, but the blob does not load and run", e)
    return Outcome("converted", f"{model.quant} {list(y.shape)}")



def check(example: Example | FoldExample, workdir: Path) -> Outcome:
    """The property for one example (no time limit here: libFuzzer's -timeout is the long
    runs' one; the pytest budget's examples each take milliseconds)."""
    if isinstance(example, FoldExample):
        return _check_fold(example)
    return _check(example, workdir)
