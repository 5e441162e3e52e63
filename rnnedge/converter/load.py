"""Reading an ONNX model with errors that name the file, never a protobuf traceback."""

from __future__ import annotations

import os
from dataclasses import dataclass

import onnx
from google.protobuf.message import DecodeError

from ..errors import ConvertError


@dataclass
class Loaded:
    model: onnx.ModelProto
    label: str  # how error messages name the model: its file name, or "the ONNX model"
    stem: str | None  # the file name without extension, when loaded from a file
    opset: int  # the default-domain opset


def load_model(source: str | os.PathLike | onnx.ModelProto) -> Loaded:
    if isinstance(source, onnx.ModelProto):
        model, label, stem = source, "the ONNX model", None
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
    return Loaded(model, label, stem, opset)


def _read(path: str, label: str) -> onnx.ModelProto:
    try:
        with open(path, "rb") as f:
            data = f.read()
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
    if any(t.data_location == onnx.TensorProto.EXTERNAL for t in model.graph.initializer):
        try:
            onnx.load_external_data_for_model(model, os.path.dirname(os.path.abspath(path)))
        except (OSError, ValueError, onnx.checker.ValidationError) as e:
            raise ConvertError(f"{label}: cannot load its external weight data: {e}") from None
    return model


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
    for i, node in enumerate(graph.node):
        where = f"node #{i + 1}"
        fields += [(f"the op type of {where}", node.op_type), (f"the name of {where}", node.name),
                   (f"the domain of {where}", node.domain)]  # fmt: skip
        fields += [(f"an input name of {where}", n) for n in node.input]
        fields += [(f"an output name of {where}", n) for n in node.output]
        fields += [(f"an attribute name of {where}", a.name) for a in node.attribute]
    for what, value in fields:
        if not isinstance(value, str):
            raise ConvertError(
                f"{label} is corrupt: {what} is not valid UTF-8 text ({value[:40]!r})"  # type: ignore[index]
            )


def producer_text(model: onnx.ModelProto, opset: int) -> str:
    """e.g. "pytorch 2.13.0 (onnx opset 17)"."""
    who = " ".join(p for p in (model.producer_name, model.producer_version) if p) or "unknown"
    return f"{who} (onnx opset {opset})"
