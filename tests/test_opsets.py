"""Constant folding and argument reading in every form the ONNX op versions 7..latest define
(attribute or input: Unsqueeze/Squeeze/Reduce* axes, Split split, Slice starts/ends, Pad pads,
Clip min/max, TopK k, Dropout ratio, BatchNormalization spatial, Upsample scales), decided by
the model's opset, each matched against onnxruntime."""

from __future__ import annotations

import numpy as np
import onnx
import onnx.reference
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from rnnedge.converter import to_network
from rnnedge.errors import ConvertError
from rnnedge.reference import run_network

F = 4
RNG = np.random.default_rng(18)
A23 = RNG.standard_normal((2, 3)).astype(np.float32)
A3 = RNG.standard_normal(3).astype(np.float32)
A123 = RNG.standard_normal((1, 2, 3)).astype(np.float32)


def i64(v):
    return np.array(v, np.int64)


# (id, op, opset, attributes, constant inputs (None: an empty optional input), output index kept)
FORMS = [
    ("unsqueeze-attr", "Unsqueeze", 11, {"axes": [0, 2]}, [A23], 0),
    ("unsqueeze-input", "Unsqueeze", 13, {}, [A23, i64([0, 2])], 0),
    ("squeeze-attr", "Squeeze", 11, {"axes": [0]}, [A123], 0),
    ("squeeze-input", "Squeeze", 13, {}, [A123, i64([0])], 0),
    ("reducesum-attr", "ReduceSum", 11, {"axes": [0], "keepdims": 0}, [A23], 0),
    ("reducesum-input", "ReduceSum", 13, {"keepdims": 0}, [A23, i64([0])], 0),
    ("reducemean-attr-13", "ReduceMean", 13, {"axes": [1], "keepdims": 0}, [A23], 0),
    ("reducemean-input", "ReduceMean", 18, {"keepdims": 0}, [A23, i64([1])], 0),
    ("reducemax-attr", "ReduceMax", 11, {"axes": [0]}, [A23], 0),
    ("reducemax-input", "ReduceMax", 18, {}, [A23, i64([0])], 0),
    ("reducel2-attr", "ReduceL2", 9, {"axes": [1]}, [A23], 0),
    ("split-attr", "Split", 11, {"axis": 1, "split": [1, 2]}, [A23], 1),
    ("split-input", "Split", 13, {"axis": 1}, [A23, i64([1, 2])], 1),
    ("slice-attr", "Slice", 9, {"starts": [0, 1], "ends": [2, 3]}, [A23], 0),
    ("slice-input", "Slice", 10, {}, [A23, i64([0, 1]), i64([2, 3])], 0),
    ("pad-attr", "Pad", 9, {"pads": [1, 2]}, [A3], 0),
    ("pad-input", "Pad", 11, {}, [A3, i64([1, 2])], 0),
    ("clip-attr", "Clip", 9, {"min": -0.5, "max": 0.5}, [A23], 0),
    ("clip-input", "Clip", 11, {}, [A23, np.float32(-0.5), np.float32(0.5)], 0),
    ("topk-attr", "TopK", 9, {"k": 2}, [A3], 0),
    ("topk-input", "TopK", 11, {}, [A3, i64([2])], 0),
    ("dropout-attr", "Dropout", 10, {"ratio": 0.3}, [A23], 0),
    ("dropout-input", "Dropout", 13, {}, [A23, np.float32(0.3)], 0),
    ("batchnorm-spatial", "BatchNormalization", 7, {"spatial": 1, "epsilon": 1e-3},
     [A123, *(np.abs(RNG.standard_normal(2)).astype(np.float32) + 0.5 for _ in range(4))], 0),
    ("batchnorm-momentum", "BatchNormalization", 9, {"epsilon": 1e-3, "momentum": 0.9},
     [A123, *(np.abs(RNG.standard_normal(2)).astype(np.float32) + 0.5 for _ in range(4))], 0),
    ("batchnorm", "BatchNormalization", 15, {"epsilon": 1e-3},
     [A123, *(np.abs(RNG.standard_normal(2)).astype(np.float32) + 0.5 for _ in range(4))], 0),
    ("upsample-attr", "Upsample", 8, {"scales": [1.0, 2.0]}, [A23], 0),
    ("upsample-linear", "Upsample", 7, {"scales": [1.0, 2.0], "mode": "linear"}, [A23], 0),
]


def const_path_model(op: str, opset: int, attrs: dict, consts: list, keep: int) -> onnx.ModelProto:
    """y = x @ W + bias, where bias = Reshape(op(constants), [-1]): the op sits on a constant
    path, folded at conversion; W has as many columns as the op's output has elements."""
    names = [f"c{i}" for i in range(len(consts))]
    n_out = 2 if op in ("Split", "TopK") else 1
    outs = [f"o{i}" for i in range(n_out)]
    probe = helper.make_model(
        helper.make_graph(
            [helper.make_node(op, names, outs, **attrs)], "probe", [],
            [helper.make_value_info(outs[keep], onnx.TypeProto())],
            [numpy_helper.from_array(np.asarray(c), n) for c, n in zip(consts, names)]),
        opset_imports=[helper.make_opsetid("", opset)])
    probe.ir_version = 7
    fixed = {"Upsample": 12, "BatchNormalization": 6}  # ops the reference evaluator lacks at old opsets
    size = fixed.get(op) or onnx.reference.ReferenceEvaluator(probe).run(None, {})[0].size
    w = RNG.standard_normal((F, size)).astype(np.float32)
    nodes = [
        helper.make_node(op, names, outs, **attrs),
        helper.make_node("Reshape", [outs[keep], "flat"], ["bias"]),
        helper.make_node("MatMul", ["x", "w"], ["xw"]),
        helper.make_node("Add", ["xw", "bias"], ["y"]),
    ]
    inits = [numpy_helper.from_array(np.asarray(c), n) for c, n in zip(consts, names)]
    inits += [numpy_helper.from_array(w, "w"), numpy_helper.from_array(i64([-1]), "flat")]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", "time", F])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", "time", size])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 7
    onnx.checker.check_model(model)
    return model


@pytest.mark.parametrize("form", FORMS, ids=[f[0] for f in FORMS])
def test_constant_op_folds_in_its_opset_form(form):
    _, op, opset, attrs, consts, keep = form
    model = const_path_model(op, opset, attrs, consts, keep)
    x = RNG.standard_normal((2, 5, F)).astype(np.float32)
    want = ort.InferenceSession(model.SerializeToString()).run(None, {"x": x})[0]
    got, _ = run_network(to_network(model), x.transpose(1, 0, 2))  # run_network takes [T, B, F]
    np.testing.assert_allclose(got.transpose(1, 0, 2), want, rtol=1e-5,
                               atol=1e-5 * max(1.0, float(np.abs(want).max())))


def _data_model(op: str, opset: int, attrs: dict, extra: list[np.ndarray]) -> onnx.ModelProto:
    """x [batch, time, F] -> Unsqueeze/Squeeze on the data path (axes as attribute or input)."""
    names = ["x"] + [f"a{i}" for i in range(len(extra))]
    if op == "Unsqueeze":
        nodes = [helper.make_node("Unsqueeze", names, ["u"], **attrs),
                 helper.make_node("Reshape", ["u", "back"], ["y"])]
    else:
        nodes = [helper.make_node("Reshape", ["x", "up"], ["u"]),
                 helper.make_node("Squeeze", ["u"] + names[1:], ["y"], **attrs)]
    inits = [numpy_helper.from_array(e, n) for e, n in zip(extra, names[1:])]
    inits += [numpy_helper.from_array(i64([0, 0, F]), "back"), numpy_helper.from_array(i64([0, 0, 1, F]), "up")]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", "time", F])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def test_axes_attribute_at_an_opset_that_takes_an_input_is_refused_by_name():
    """Squeeze-13's axes is an optional input: an `axes` attribute there was ignored (every
    size-1 axis squeezed); onnxruntime refuses the node. The other wrong forms change the
    input count and are refused by the arity check."""
    with pytest.raises(ConvertError, match="Squeeze at opset 13 takes axes as input 1, but the node gives it as an attribute"):
        to_network(_data_model("Squeeze", 13, {"axes": [2]}, []))
    with pytest.raises(ConvertError, match="has 1 inputs; Unsqueeze takes 2"):
        to_network(_data_model("Unsqueeze", 13, {"axes": [3]}, []))
    for op, axes in (("Unsqueeze", [3]), ("Squeeze", [2])):
        for opset, attrs, extra in ((11, {"axes": axes}, []), (13, {}, [i64(axes)])):
            x = RNG.standard_normal((2, 5, F)).astype(np.float32)
            got, _ = run_network(to_network(_data_model(op, opset, attrs, extra)), x.transpose(1, 0, 2))
            np.testing.assert_array_equal(got.transpose(1, 0, 2), x)


@pytest.mark.parametrize("opset", [9, 11, 13, 18])
def test_shape_chain_over_run_time_sizes_in_each_opset_form(opset):
    """Shape -> Slice -> Concat(Unsqueeze(F)) -> Reshape: the symbolic folding reads Slice's
    starts/ends and Unsqueeze's axes as attributes or inputs, as the opset defines them."""
    nodes = [helper.make_node("Shape", ["x"], ["shape"])]
    if opset < 10:
        nodes.append(helper.make_node("Slice", ["shape"], ["bt"], starts=[0], ends=[2]))
    else:
        nodes.append(helper.make_node("Slice", ["shape", "zero", "two"], ["bt"]))
    if opset < 13:
        nodes.append(helper.make_node("Unsqueeze", ["f"], ["f1"], axes=[0]))
    else:
        nodes.append(helper.make_node("Unsqueeze", ["f", "zero"], ["f1"]))
    nodes += [helper.make_node("Concat", ["bt", "f1"], ["target"], axis=0),
              helper.make_node("Reshape", ["x", "target"], ["r"]),
              helper.make_node("MatMul", ["r", "w"], ["y"])]
    w = RNG.standard_normal((F, 3)).astype(np.float32)
    inits = [numpy_helper.from_array(a, n) for a, n in
             ((i64([0]), "zero"), (i64([2]), "two"), (np.array(F, np.int64), "f"), (w, "w"))]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", "time", F])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", "time", 3])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 7
    onnx.checker.check_model(model)
    x = RNG.standard_normal((2, 5, F)).astype(np.float32)
    want = ort.InferenceSession(model.SerializeToString()).run(None, {"x": x})[0]
    got, _ = run_network(to_network(model), x.transpose(1, 0, 2))
    np.testing.assert_allclose(got.transpose(1, 0, 2), want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("opset", [11, 17, 18])
def test_written_out_layer_norm_reads_reduce_mean_axes_in_the_opset_form(opset):
    """ReduceMean/Sub/Pow/ReduceMean/Add/Sqrt/Div (axes an attribute before 18, an input from
    18) on the data path, against onnxruntime."""
    def mean(src: str, dst: str) -> onnx.NodeProto:
        if opset < 18:
            return helper.make_node("ReduceMean", [src], [dst], axes=[-1])
        return helper.make_node("ReduceMean", [src, "last"], [dst])

    nodes = [mean("x", "m"), helper.make_node("Sub", ["x", "m"], ["d"]),
             helper.make_node("Pow", ["d", "two"], ["d2"]), mean("d2", "v"),
             helper.make_node("Add", ["v", "eps"], ["ve"]), helper.make_node("Sqrt", ["ve"], ["s"]),
             helper.make_node("Div", ["d", "s"], ["y"])]
    inits = [numpy_helper.from_array(a, n) for a, n in
             ((np.float32(2), "two"), (np.float32(1e-5), "eps"), (i64([-1]), "last"))]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", "time", F])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", "time", F])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 7
    x = RNG.standard_normal((2, 5, F)).astype(np.float32)
    want = ort.InferenceSession(model.SerializeToString()).run(None, {"x": x})[0]
    got, _ = run_network(to_network(model), x.transpose(1, 0, 2))
    np.testing.assert_allclose(got.transpose(1, 0, 2), want, rtol=1e-5, atol=1e-5)
