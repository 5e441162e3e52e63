"""Per-timestep arithmetic on data tensors: Gemm / MatMul (+ Add) -> Dense, elementwise
activations -> Activation, LayerNormalization (or the ReduceMean/Sub/Pow/Sqrt/Div chain older
exporters write) -> LayerNorm, and elementwise Add/Sub/Mul/Div by a per-feature constant, folded
into the layer before when it is a Dense or LayerNorm.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Callable

import numpy as np

from ..errors import ConvertError, UnsupportedOpError
from ..ir.layers import Act, Activation, Dense, LayerNorm
from .layout import axis_index, data_in
from .node import Node, OpContext, floats_of, ints_arg, scalar_arg
from .values import Const, Data, NormPart, Value, describe


def _feature_last(data: Data, what: str) -> None:
    if data.axes[-1] != ("F",):
        raise UnsupportedOpError(
            f"{what} acts on the last axis of [{data.layout()}], which is not the feature axis"
            + (" (it is the hidden axis of each direction)" if data.axes[-1] == ("H",) else "")
        )


def _f32(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.float32)


def dense(data: Data, weight: np.ndarray, bias: np.ndarray | None, what: str) -> Data:
    """Append y = weight @ x + bias, weight [N, K]."""
    _feature_last(data, what)
    if weight.shape[1] != data.features:
        raise ConvertError(
            f"{what}: weight {list(weight.shape)} takes {weight.shape[1]} features, the data "
            f"tensor [{data.layout()}] has {data.features}"
        )
    sizes = {**data.sizes, "F": int(weight.shape[0])}
    layer = Dense(_f32(weight), None if bias is None else _f32(bias))
    return data.with_layers(layer, sizes=sizes)


def affine(data: Data, scale: np.ndarray | None, shift: np.ndarray | None) -> Data:
    """x * scale + shift per feature: folded into a Dense or LayerNorm that ends the pipeline,
    else a diagonal Dense."""
    f = data.features
    s = np.ones(f, np.float64) if scale is None else np.broadcast_to(scale, (f,)).astype(np.float64)
    b = np.zeros(f, np.float64) if shift is None else np.broadcast_to(shift, (f,)).astype(np.float64)
    last = data.layers[-1] if data.layers else None
    if isinstance(last, Dense):
        bias = np.zeros(f) if last.bias is None else last.bias.astype(np.float64)
        layer: Dense | LayerNorm = Dense(_f32(last.weight * s[:, None]), _f32(bias * s + b))
    elif isinstance(last, LayerNorm):
        beta = np.zeros(f) if last.beta is None else last.beta.astype(np.float64)
        layer = LayerNorm(_f32(last.gamma * s), _f32(beta * s + b), last.epsilon)
    else:
        return data.with_layers(Dense(_f32(np.diag(s)), _f32(b)))
    return replace(data, layers=data.layers[:-1] + (layer,), final=None)


def _vector(a: np.ndarray, n: int, what: str) -> np.ndarray:
    """A scalar or an n-vector (any number of size-1 axes) as an n-vector."""
    if a.size not in (1, n):
        raise ConvertError(f"{what} has shape {list(a.shape)}: expected {n} values (or one)")
    return np.broadcast_to(a.reshape(-1), (n,))


def _per_feature(data: Data, c: np.ndarray, what: str) -> np.ndarray:
    """A constant operand as a per-feature vector (or scalar), if it broadcasts that way."""
    c = np.asarray(c, dtype=np.float64)
    if c.ndim > data.rank or any(n != 1 for n in c.shape[:-1]):
        raise UnsupportedOpError(
            f"{what} with a constant of shape {list(c.shape)} on the data tensor [{data.layout()}]"
            " (only a scalar or a per-feature vector)"
        )
    vec = c.reshape(-1)
    if vec.size == 1:
        return vec
    if data.axes[-1] == ("H",):  # the same vector for every direction
        vec = np.tile(vec, int(data.sizes["D"]))
    elif data.axes[-1] != ("F",):
        raise UnsupportedOpError(f"{what}: a vector along the {data.layout()} axis {data.axes[-1]}")
    if vec.size != data.features:
        raise ConvertError(f"{what}: a vector of {vec.size} values for {data.features} features")
    return vec


def op_gemm(ctx: OpContext, node: Node, ins: list[Value | None]) -> list[Value]:
    data = data_in(ins, "Gemm input A")
    if node.int_attr("transA", 0):
        raise node.refuse_attr("transA", 1, "0 with the data tensor as A")
    if data.rank != 2:
        raise ConvertError(f"Gemm input A has rank {data.rank}, not 2")
    alpha, beta = node.float_attr("alpha", 1.0), node.float_attr("beta", 1.0)
    b = floats_of(ins[1], "Gemm input B (the weights)")
    if b.ndim != 2:
        raise ConvertError(f"Gemm input B has shape {list(b.shape)}, expected 2 axes")
    weight = alpha * (b if node.int_attr("transB", 0) else b.T)
    bias = None
    if len(ins) > 2 and ins[2] is not None:
        c = floats_of(ins[2], "Gemm input C (the bias)")
        if c.ndim == 2 and c.shape[0] != 1:
            raise UnsupportedOpError(f"Gemm bias C of shape {list(c.shape)} (one row per batch item)")
        bias = beta * _vector(c, weight.shape[0], "Gemm input C (the bias)")
    return [dense(data, weight, bias, "Gemm")]


def op_matmul(ctx: OpContext, node: Node, ins: list[Value | None]) -> list[Value]:
    if not isinstance(ins[0], Data):
        raise UnsupportedOpError(
            f"MatMul with the data tensor on the right ({describe(ins[0])} @ data)"
        )
    w = floats_of(ins[1], "MatMul input B (the weights)")
    if w.ndim != 2:
        raise UnsupportedOpError(f"MatMul by a constant of shape {list(w.shape)} (only [K, N])")
    return [dense(ins[0], w.T, None, "MatMul")]


def op_arith(ctx: OpContext, node: Node, ins: list[Value | None]) -> list[Value]:
    """Add, Sub, Mul, Div, Pow with a data tensor or a layer-norm step on one side."""
    a, b = ins[0], ins[1]
    if isinstance(a, NormPart) or isinstance(b, NormPart):
        return [norm_step(node, a, b)]
    if isinstance(a, Data) and isinstance(b, Data):
        raise UnsupportedOpError(
            f"{node.op} of two data tensors (a residual or skip connection): rnnedge runs a "
            "straight pipeline"
        )
    data = a if isinstance(a, Data) else b
    if not isinstance(data, Data):
        raise ConvertError(f"{node.op} of a {describe(a)} and a {describe(b)}")
    other = b if data is a else a
    if isinstance(other, Data) or not isinstance(other, Const):
        raise ConvertError(f"{node.op} of a data tensor and a {describe(other)}")
    c = _per_feature(data, floats_of(other, f"{node.op} constant"), node.op)
    if node.op == "Add":
        return [affine(data, None, c)]
    if node.op == "Sub":
        return [affine(data, None, -c) if data is a else affine(data, -np.ones_like(c), c)]
    if node.op == "Mul":
        return [affine(data, c, None)]
    if node.op == "Div" and data is a:
        return [affine(data, 1.0 / c, None)]
    raise UnsupportedOpError(f"{node.op} with the data tensor as {'A' if data is a else 'B'}")


def op_neg(ctx: OpContext, node: Node, ins: list[Value | None]) -> list[Value]:
    return [affine(data_in(ins), np.array([-1.0]), None)]


# --- activations -------------------------------------------------------------------------


def _alpha(default: float) -> Callable[[Node, list[Value | None]], Act]:
    def make(node: Node, ins: list[Value | None]) -> Act:
        return Act.make(node.op, node.float_attr("alpha", default))

    return make


def _hard_sigmoid(node: Node, ins: list[Value | None]) -> Act:
    return Act.make("HardSigmoid", node.float_attr("alpha", 0.2), node.float_attr("beta", 0.5))


def _clip(node: Node, ins: list[Value | None]) -> Act:
    if node.opset < 11:
        lo = node.float_attr("min", -math.inf, allow_inf=True)
        hi = node.float_attr("max", math.inf, allow_inf=True)
    else:
        a, b = scalar_arg(ins, 1, "Clip min"), scalar_arg(ins, 2, "Clip max")
        lo, hi = -math.inf if a is None else a, math.inf if b is None else b
    if math.isnan(lo) or math.isnan(hi):
        raise ConvertError(f"Clip bounds [{lo}, {hi}]: NaN")
    if lo > hi:
        raise UnsupportedOpError(f"Clip bounds [{lo}, {hi}]: the minimum is above the maximum")
    return Act.make("Clip", lo, hi)


def _plain(node: Node, ins: list[Value | None]) -> Act:
    return Act.make(node.op)


ACT_OPS: dict[str, Callable[[Node, list[Value | None]], Act]] = {
    "Relu": _plain,
    "Sigmoid": _plain,
    "Tanh": _plain,
    "Softsign": _plain,
    "Softplus": _plain,
    "LeakyRelu": _alpha(0.01),
    "Elu": _alpha(1.0),
    "ThresholdedRelu": _alpha(1.0),
    "HardSigmoid": _hard_sigmoid,
    "Clip": _clip,
}


def op_activation(ctx: OpContext, node: Node, ins: list[Value | None]) -> list[Value]:
    data = data_in(ins)
    act = ACT_OPS[node.op](node, ins)
    return [data.with_layers(Activation(act, data.features))]


def op_softmax(ctx: OpContext, node: Node, ins: list[Value | None]) -> list[Value]:
    data = data_in(ins)
    axis = axis_index(node.int_attr("axis", -1 if node.opset >= 13 else 1), data.rank)
    if data.axes[axis] != ("F",) or axis != data.rank - 1:
        raise UnsupportedOpError(
            f"{node.op} over axis {axis} ({'*'.join(data.axes[axis])}) of [{data.layout()}]: "
            "only over the features of one step (the last axis)"
        )
    return [data.with_layers(Activation(Act.make(node.op), data.features))]


# --- layer normalisation -------------------------------------------------------------------


def op_layer_norm(ctx: OpContext, node: Node, ins: list[Value | None]) -> list[Value]:
    data = data_in(ins)
    axis = node.int_attr("axis", -1)
    if not -data.rank <= axis < data.rank or (axis + data.rank if axis < 0 else axis) != data.rank - 1:
        raise node.refuse_attr("axis", axis, "-1 (the feature axis)")
    _feature_last(data, "LayerNormalization")
    gamma = _vector(floats_of(ins[1], "LayerNormalization scale"), data.features, "LayerNormalization scale")
    beta = None
    if len(ins) > 2 and ins[2] is not None:
        beta = _vector(floats_of(ins[2], "LayerNormalization bias"), data.features, "LayerNormalization bias")
    eps = node.float_attr("epsilon", 1e-5)
    layer = LayerNorm(_f32(gamma), None if beta is None else _f32(beta), eps)
    return [data.with_layers(layer)]


def op_reduce_mean(ctx: OpContext, node: Node, ins: list[Value | None]) -> list[Value]:
    """ReduceMean over the features: the first or the variance step of a written-out norm."""
    value = ins[0]
    x = value.x if isinstance(value, NormPart) else value
    if not isinstance(x, Data):
        raise ConvertError(f"ReduceMean of a {describe(value)}")
    axes = ints_arg(node, ins, 1, "axes")
    if axes is None or [a + x.rank if a < 0 else a for a in axes] != [x.rank - 1]:
        raise UnsupportedOpError(
            f"ReduceMean over axes {axes} of [{x.layout()}]: only over the features, as part of a "
            "layer normalisation"
        )
    if not node.int_attr("keepdims", 1):
        raise node.refuse_attr("keepdims", 0, "1")
    _feature_last(x, "ReduceMean")
    if isinstance(value, Data):
        return [NormPart("mean", value)]
    if value.kind == "square":
        return [NormPart("var", value.x)]
    raise UnsupportedOpError(f"ReduceMean of a layer-norm step {value.kind!r}")


def norm_step(node: Node, a: Value | None, b: Value | None) -> Value:
    """One step of (x - mean(x)) / sqrt(mean((x - mean(x))^2) + eps)."""
    op = node.op
    if op == "Sub" and isinstance(a, Data) and isinstance(b, NormPart) and b.kind == "mean" and b.x is a:
        return NormPart("centered", a)
    if isinstance(a, NormPart) and a.kind == "centered":
        if op == "Pow" and isinstance(b, Const) and np.all(np.asarray(b.array) == 2):
            return NormPart("square", a.x)
        if op == "Mul" and b is a:
            return NormPart("square", a.x)
        if op == "Div" and isinstance(b, NormPart) and b.kind == "std" and b.x is a.x:
            return _normalised(a.x, b.eps)
        if op == "Mul" and isinstance(b, NormPart) and b.kind == "rstd" and b.x is a.x:
            return _normalised(a.x, b.eps)
    if op == "Mul" and isinstance(b, NormPart) and b.kind == "centered" and isinstance(a, NormPart):
        return norm_step(node, b, a)
    if op == "Add" and isinstance(a, NormPart) and a.kind == "var" and isinstance(b, Const):
        eps = floats_of(b, "the epsilon of a layer normalisation")
        if eps.size == 1:
            return NormPart("var_eps", a.x, float(eps.ravel()[0]))
    if op == "Add" and isinstance(b, NormPart) and isinstance(a, Const):
        return norm_step(node, b, a)
    raise UnsupportedOpError(
        f"{op} of a {describe(a)} and a {describe(b)}: not a layer normalisation "
        "((x - mean) / sqrt(var + eps)) that rnnedge recognises"
    )


def _normalised(x: Data, eps: float) -> Data:
    f = x.features
    return x.with_layers(LayerNorm(np.ones(f, np.float32), None, eps))


def op_norm_unary(ctx: OpContext, node: Node, ins: list[Value | None]) -> list[Value]:
    """Sqrt and Reciprocal inside a written-out layer normalisation."""
    v = ins[0]
    if node.op == "Sqrt" and isinstance(v, NormPart) and v.kind == "var_eps":
        return [NormPart("std", v.x, v.eps)]
    if node.op == "Reciprocal" and isinstance(v, NormPart) and v.kind == "std":
        return [NormPart("rstd", v.x, v.eps)]
    raise UnsupportedOpError(f"{node.op} of a {describe(v)}")
