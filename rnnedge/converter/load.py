"""Reading an ONNX model with errors that name the file, never a protobuf traceback."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Iterator

import onnx
from onnx import external_data_helper
from google.protobuf.message import DecodeError

from ..errors import ConvertError
from ..files import read_regular_file
from . import tf2onnx_patterns


@dataclass
class Loaded:
    model: onnx.ModelProto
    label: str  # how error messages name the model: its file name, or "the ONNX model"
    stem: str | None  # the file name without extension, when loaded from a file
    opset: int  # the default-domain opset
    notes: list[str] = field(default_factory=list)  # what fixing inputs changed (fixed.py)


def load_model(source: str | os.PathLike | onnx.ModelProto) -> Loaded:
    if isinstance(source, onnx.ModelProto):
        model, label, stem = source, "the ONNX model", None
        load_external_data(model, label, None)
    else:
        path = os.fspath(source)
        label, stem = repr(path), os.path.splitext(os.path.basename(path))[0]
        model = _read(path, label)
    _check_structure(model, label)
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    if opset == 0:
        raise ConvertError(f"{label} does not import the default ONNX opset")
    if not 1 <= opset <= onnx.defs.onnx_opset_version():
        raise ConvertError(
            f"{label} imports ONNX opset {opset}; the installed onnx package knows opsets 1 to "
            f"{onnx.defs.onnx_opset_version()}"
        )
    try:
        model = onnx.shape_inference.infer_shapes(model, strict_mode=False)
    except Exception:  # noqa: BLE001 - inference is a help, not a requirement; the walk checks shapes
        pass
    if model is source:  # (inference failed) the caller's model is never changed
        model = onnx.ModelProto()
        model.CopyFrom(source)
    tf2onnx_patterns.keras_masking(model, label)
    notes = (tf2onnx_patterns.layer_norms(model) + tf2onnx_patterns.keras2_layer_norms(model)
             + tf2onnx_patterns.negative_id_guards(model))
    return Loaded(model, label, stem, opset, notes)


def _read(path: str, label: str) -> onnx.ModelProto:
    try:
        data = read_regular_file(path, label, ConvertError)
    except OSError as e:
        raise ConvertError(f"cannot read {label}: {e.strerror}") from None
    if not data:
        raise ConvertError(f"{label} is empty (0 bytes), not an ONNX model")
    model = onnx.ModelProto()
    try:
        model.ParseFromString(data)
    except (DecodeError, ValueError, RuntimeError) as e:
        raise ConvertError(
            f"{label} is not an ONNX model, or it is truncated ({len(data)} bytes; "
            f"protobuf says: {str(e) or type(e).__name__})"
        ) from None
    load_external_data(model, label, os.path.dirname(os.path.abspath(path)))
    return model


def load_external_data(model: onnx.ModelProto, label: str, base_dir: str | None) -> None:
    """Read every tensor that keeps its data in an external file into the model, resolved against
    the model's own directory `base_dir` with onnx's guards (no absolute path, no "..", no
    symbolic link): initializers, sparse initializers and tensor attributes (a Constant's value,
    ConstantOfShape's), in the main graph, in subgraphs and in functions. Nothing is ever read
    relative to the current directory: a model given as a ModelProto (base_dir None) with an
    external tensor is refused by name."""
    for what, tensor in _all_tensors(model):
        if tensor.data_location != onnx.TensorProto.EXTERNAL:
            continue
        location = next((e.value for e in tensor.external_data if e.key == "location"), "")
        if base_dir is None:
            raise ConvertError(
                f"{label}: {what} keeps its data in the external file {location!r}, and a model "
                "given in memory has no directory to read it from: convert the model from its "
                "file path, or load it with onnx.load(path) (which reads its external data)"
            )
        try:
            external_data_helper.load_external_data_for_tensor(tensor, base_dir)
        except (OSError, ValueError, KeyError, onnx.checker.ValidationError) as e:
            raise ConvertError(
                f"{label}: cannot load its external weight data: {what}, file {location!r}: {e}"
            ) from None


def _all_tensors(model: onnx.ModelProto) -> Iterator[tuple[str, onnx.TensorProto]]:
    """Every TensorProto of the model, with how an error message names it."""

    def sparse(what: str, s: onnx.SparseTensorProto) -> Iterator[tuple[str, onnx.TensorProto]]:
        yield f"{what} (values)", s.values
        yield f"{what} (indices)", s.indices

    def graph(g: onnx.GraphProto, where: str) -> Iterator[tuple[str, onnx.TensorProto]]:
        for t in g.initializer:
            yield f"{where}initializer {t.name!r}", t
        for s in g.sparse_initializer:
            yield from sparse(f"{where}sparse initializer {s.values.name!r}", s)
        for node in g.node:
            yield from nodes(node, where)

    def nodes(node: onnx.NodeProto, where: str) -> Iterator[tuple[str, onnx.TensorProto]]:
        for a in node.attribute:
            what = f"{where}attribute {a.name!r} of node {node.name!r} (op {node.op_type})"
            if a.HasField("t"):
                yield what, a.t
            for t in a.tensors:
                yield what, t
            if a.HasField("sparse_tensor"):
                yield from sparse(what, a.sparse_tensor)
            for s in a.sparse_tensors:
                yield from sparse(what, s)
            if a.HasField("g"):
                yield from graph(a.g, f"{what}, subgraph: ")
            for g in a.graphs:
                yield from graph(g, f"{what}, subgraph: ")

    yield from graph(model.graph, "")
    for f in model.functions:
        for node in f.node:
            yield from nodes(node, f"function {f.name!r}: ")


def _check_structure(model: onnx.ModelProto, label: str) -> None:
    """A byte string can parse as a protobuf without being a model: look for one."""
    if model.ir_version <= 0 or not model.HasField("graph"):
        raise ConvertError(
            f"{label} is not an ONNX model, or it is truncated (no IR version or no graph)"
        )
    _check_text(model, label)
    graph = model.graph
    if not graph.node:
        raise ConvertError(f"{label} has an empty graph (no nodes)")
    if not graph.output:
        raise ConvertError(f"{label}: the graph has no outputs")
    names = {i.name for i in graph.input} | {t.name for t in graph.initializer}
    for node in graph.node:
        names.update(o for o in node.output if o)
    for out in graph.output:
        if out.name not in names:
            raise ConvertError(
                f"{label} is truncated or malformed: graph output {out.name!r} is not produced "
                "by any node"
            )


def _check_text(model: onnx.ModelProto, label: str) -> None:
    """Names the converter reads are text: protobuf hands back bytes for a string field that is
    not valid UTF-8 (a damaged file)."""
    graph = model.graph
    fields: list[tuple[str, object]] = [
        ("the producer name", model.producer_name),
        ("the producer version", model.producer_version),
        ("the graph name", graph.name),
    ]
    fields += [("an opset domain", o.domain) for o in model.opset_import]
    for kind, infos in (("input", graph.input), ("output", graph.output)):
        fields += [(f"a graph {kind} name", i.name) for i in infos]
        fields += [(f"a dimension name of graph {kind} #{k}", d.dim_param)
                   for k, i in enumerate(infos) for d in i.type.tensor_type.shape.dim]  # fmt: skip
    fields += [("an initializer name", t.name) for t in graph.initializer]

    def nodes(g: onnx.GraphProto, inside: str) -> None:
        """The names of g's nodes, and of the nodes, inputs and outputs of their subgraphs
        (If branches, Loop bodies), which the converter reads too."""
        for i, node in enumerate(g.node):
            where = f"node #{i + 1}{inside}"
            fields.extend([(f"the op type of {where}", node.op_type),
                           (f"the name of {where}", node.name),
                           (f"the domain of {where}", node.domain)])  # fmt: skip
            fields.extend((f"an input name of {where}", n) for n in node.input)
            fields.extend((f"an output name of {where}", n) for n in node.output)
            for a in node.attribute:
                fields.append((f"an attribute name of {where}", a.name))
                for sub in ([a.g] if a.type == onnx.AttributeProto.GRAPH else []) + list(a.graphs):
                    sub_where = f" of a subgraph of {where}"
                    fields.extend((f"a subgraph input or output name{sub_where}", v.name)
                                  for v in list(sub.input) + list(sub.output))  # fmt: skip
                    fields.extend((f"an initializer name{sub_where}", t.name) for t in sub.initializer)
                    nodes(sub, sub_where)

    nodes(graph, "")
    for what, value in fields:
        if not isinstance(value, str):
            raise ConvertError(
                f"{label} is corrupt: {what} is not valid UTF-8 text ({value[:40]!r})"  # type: ignore[index]
            )


def declared_shapes(graph: onnx.GraphProto) -> dict[str, list[int | str | None]]:
    """The shapes the graph states for its tensors (value_info, inputs, outputs): per axis a
    static size, a symbolic name, or None; tensors without a stated shape are left out."""
    shapes: dict[str, list[int | str | None]] = {}
    for info in list(graph.input) + list(graph.value_info) + list(graph.output):
        t = info.type.tensor_type
        if info.type.HasField("tensor_type") and t.HasField("shape"):
            shapes[info.name] = [d.dim_value if d.HasField("dim_value") else (d.dim_param or None)
                                 for d in t.shape.dim]  # fmt: skip
    return shapes


def producer_text(model: onnx.ModelProto, opset: int) -> str:
    """e.g. "pytorch 2.13.0 (onnx opset 17)"."""
    who = " ".join(p for p in (model.producer_name, model.producer_version) if p) or "unknown"
    return f"{who} (onnx opset {opset})"
