"""A graph node with its attributes decoded, and the argument readers the op functions share."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx
from onnx import helper

from ..errors import ConvertError, UnsupportedOpError
from .values import Const, Value, describe


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
        return int(self.attr(key, default))  # type: ignore[arg-type]

    def refuse_attr(self, key: str, value: object, supported: str) -> UnsupportedOpError:
        return UnsupportedOpError(
            f"attribute {key}={value!r} is not supported (supported: {supported})"
        )


def const_of(value: Value | None, what: str) -> np.ndarray:
    """The array of a value that must be known at conversion time."""
    if not isinstance(value, Const):
        raise ConvertError(f"{what} must be a constant, got a {describe(value)}")
    return value.array


def ints_arg(node: Node, ins: list[Value | None], index: int, attr: str) -> list[int] | None:
    """An integer list given as input `index` (newer opsets) or as attribute `attr` (older)."""
    if index < len(ins) and ins[index] is not None:
        return [int(v) for v in np.asarray(const_of(ins[index], f"input {index} ({attr})")).ravel()]
    value = node.attr(attr)
    return None if value is None else [int(v) for v in value]  # type: ignore[union-attr]


def scalar_arg(ins: list[Value | None], index: int, what: str) -> float | None:
    if index >= len(ins) or ins[index] is None:
        return None
    a = np.asarray(const_of(ins[index], what))
    if a.size != 1:
        raise ConvertError(f"{what} must be a single value, got shape {list(a.shape)}")
    return float(a.ravel()[0])
