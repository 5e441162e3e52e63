"""A graph node with its attributes decoded, and the argument readers the op functions share."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import onnx
from onnx import defs, helper

from ..errors import ConvertError, UnsupportedOpError
from ..ir.layers import Recurrent
from .values import Const, StateIn, Value, describe


class OpContext(Protocol):
    """What an op function (heads.py, layout.py, recurrent.py) may ask of the walk over the graph
    that calls it (graph.Walk), so that they need not import the walk."""

    @property
    def has_recurrent_op(self) -> bool: ...

    def note(self, node: "Node", text: str) -> None: ...

    def unproven(self, text: str) -> None: ...

    def bind_state(self, rec: Recurrent, kind: str, value: StateIn) -> None: ...

    def layout_mismatch(self, text: str) -> ConvertError: ...

    def unrolled_error(self, what: str) -> UnsupportedOpError: ...


@dataclass
class Node:
    proto: onnx.NodeProto
    index: int  # position in the graph's node list, from 0
    opset: int  # the default domain's opset version

    @property
    def op(self) -> str:
        return self.proto.op_type

    @property
    def name(self) -> str:
        return self.proto.name or "(unnamed)"

    @property
    def outputs(self) -> list[str]:
        return list(self.proto.output)

    def has(self, key: str) -> bool:
        return any(a.name == key for a in self.proto.attribute)

    def attr(self, key: str, default: object = None) -> object:
        for a in self.proto.attribute:
            if a.name == key:
                value = helper.get_attribute_value(a)
                if isinstance(value, bytes):
                    return value.decode("utf-8", "replace")
                if isinstance(value, list) and value and isinstance(value[0], bytes):
                    return [v.decode("utf-8", "replace") for v in value]
                return value
        return default

    def int_attr(self, key: str, default: int) -> int:
        value = self.attr(key, default)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.bad_attr(key, value, "an integer")
        return value

    def float_attr(self, key: str, default: float, allow_inf: bool = False) -> float:
        """A number attribute; NaN is refused, and so are infinities unless `allow_inf`."""
        value = self.attr(key, default)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.bad_attr(key, value, "a number")
        if math.isnan(value):
            raise self.bad_attr(key, value, "a number (it is NaN)")
        if math.isinf(value) and not allow_inf:
            raise self.bad_attr(key, value, "a finite number")
        return float(value)

    def str_attr(self, key: str, default: str) -> str:
        value = self.attr(key, default)
        if not isinstance(value, str):
            raise self.bad_attr(key, value, "a string")
        return value

    def ints_attr(self, key: str) -> list[int] | None:
        """An integer-list attribute, or None when absent."""
        value = self.attr(key)
        if value is None:
            return None
        if not isinstance(value, list) or not all(isinstance(v, int) for v in value):
            raise self.bad_attr(key, value, "a list of integers")
        return value

    def floats_attr(self, key: str) -> list[float] | None:
        """A list of finite numbers (an empty INTS list, as helper.make_attribute writes [], too)."""
        value = self.attr(key)
        if value is None:
            return None
        if not isinstance(value, list) or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in value
        ):
            raise self.bad_attr(key, value, "a list of finite numbers")
        return [float(v) for v in value]

    def strs_attr(self, key: str) -> list[str] | None:
        value = self.attr(key)
        if value is None:
            return None
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.bad_attr(key, value, "a list of strings")
        return value

    def bad_attr(self, key: str, value: object, expected: str) -> ConvertError:
        return ConvertError(f"attribute {key}={_short(value)} is not {expected}")

    def refuse_attr(self, key: str, value: object, supported: str) -> UnsupportedOpError:
        return UnsupportedOpError(
            f"attribute {key}={value!r} is not supported (supported: {supported})"
        )


def _short(value: object, limit: int = 80) -> str:
    """repr of an attribute value for a message: a TensorProto or GraphProto by its kind only."""
    if isinstance(value, (onnx.TensorProto, onnx.GraphProto, onnx.SparseTensorProto, onnx.TypeProto)):
        return f"<{type(value).__name__}>"
    if isinstance(value, list) and value and not isinstance(value[0], (int, float, str)):
        return f"<list of {len(value)} {type(value[0]).__name__}>"
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def const_of(value: Value | None, what: str) -> np.ndarray:
    """The array of a value that must be known at conversion time."""
    if not isinstance(value, Const):
        raise ConvertError(f"{what} must be a constant, got a {describe(value)}")
    return value.array


def int_array(value: Value | None, what: str) -> np.ndarray:
    """A constant integer tensor (axes, indices, shapes) as int64."""
    a = np.asarray(const_of(value, what))
    if a.dtype.kind not in "iu":
        raise ConvertError(f"{what} must hold integers, got dtype {a.dtype} {list(a.shape)}")
    return a.astype(np.int64)


def ints_of(value: Value | None, what: str) -> list[int]:
    """The entries of a constant integer tensor, flattened."""
    return [int(v) for v in int_array(value, what).ravel()]


def floats_of(value: Value | None, what: str, dtype: type = np.float64) -> np.ndarray:
    """A constant numeric tensor as floats (weights, biases, scales)."""
    a = np.asarray(const_of(value, what))
    if a.dtype.kind not in "fiub":
        raise ConvertError(f"{what} must hold numbers, got dtype {a.dtype} {list(a.shape)}")
    return a.astype(dtype)


def ints_arg(node: Node, ins: list[Value | None], index: int, attr: str) -> list[int] | None:
    """An integer list given as input `index` (newer opsets) or as attribute `attr` (older):
    the form the op's version at the model's opset defines (Unsqueeze/Squeeze/Reduce* `axes`
    before 13 (ReduceSum) or 18 (the other Reduce*), Slice `starts`/`ends`/`axes` before 10);
    the other form is refused by name, as onnxruntime refuses it."""
    given = index < len(ins) and ins[index] is not None
    if attr_form(node, attr):
        if given:
            raise ConvertError(
                f"{node.op} at opset {node.opset} takes {attr} as an attribute, but the node gives "
                f"it as input {index} (that form starts with a later {node.op} version)"
            )
        return node.ints_attr(attr)
    if node.has(attr):
        raise ConvertError(
            f"{node.op} at opset {node.opset} takes {attr} as input {index}, but the node gives it "
            "as an attribute (the form of older opsets): re-export at the opset its producer targets"
        )
    return ints_of(ins[index], f"input {index} ({attr})") if given else None


def attr_form(node: Node, attr: str) -> bool:
    """Whether the version of the node's op at the model's opset has an attribute `attr` (the
    older form of an argument that later versions take as an input). An op unknown at that
    opset (exporters use newer ones) is judged by whether the node has the attribute."""
    try:
        schema = defs.get_schema(node.op, max(node.opset, 1), "")
    except defs.SchemaError:
        return node.has(attr)
    return attr in schema.attributes


def scalar_arg(ins: list[Value | None], index: int, what: str) -> float | None:
    if index >= len(ins) or ins[index] is None:
        return None
    a = floats_of(ins[index], what)
    if a.size != 1:
        raise ConvertError(f"{what} must be a single value, got shape {list(a.shape)}")
    return float(a.ravel()[0])
