"""What the signal input's axes are (`rnnedge.convert(..., inputs={"x": "T,8"})`, `rnnedge
convert --input x=T,8`), and the guess without it: a 2-axis input whose first axis reaches a
recurrent node's time axis is [T, F] (Silero's [sequence_length, 576] windows), with its h/c state
pairs or without; a per-step size the graph leaves open is given; a bad spec is refused by name."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

import rnnedge
from rnnedge.blob.write import write_blob
from rnnedge.cli import main
from rnnedge.converter import to_graph
from rnnedge.converter.inputs import parse_axes
from rnnedge.errors import ConvertError, InputError

F, H = 8, 5
RNG = np.random.default_rng(31)


def windows_lstm(feature: int | str = F, state: bool = True, reflect: int = 0) -> onnx.ModelProto:
    """Silero's sequence form in small: x [T, F] (one window per row, optionally reflect-padded
    on each side), Unsqueeze to [T, 1, F], LSTM (h, c [1, 1, H] -> hn, cn), Dense to one value,
    Sigmoid, Reshape to y [T]."""
    nodes, inits = [], []
    w = lambda name, a: inits.append(numpy_helper.from_array(a.astype(np.float32), name))  # noqa: E731
    src = "x"
    if reflect:
        inits.append(numpy_helper.from_array(np.array([0, reflect, 0, reflect], np.int64), "pads"))
        nodes.append(helper.make_node("Pad", ["x", "pads"], ["xp"], mode="reflect"))
        src = "xp"
    width = (F if isinstance(feature, str) else feature) + 2 * reflect
    inits.append(numpy_helper.from_array(np.array([1], np.int64), "ax1"))
    inits.append(numpy_helper.from_array(np.array([-1], np.int64), "flat"))
    w("W", RNG.standard_normal((1, 4 * H, width)) * 0.3)
    w("R", RNG.standard_normal((1, 4 * H, H)) * 0.3)
    w("B", RNG.standard_normal((1, 8 * H)) * 0.1)
    w("D", RNG.standard_normal((H, 1)))
    nodes += [
        helper.make_node("Unsqueeze", [src, "ax1"], ["x3"]),
        helper.make_node("LSTM", ["x3", "W", "R", "B", "", "h" if state else "", "c" if state else ""],
                         ["Y", "hn", "cn"] if state else ["Y"], hidden_size=H),
        helper.make_node("Squeeze", ["Y", "ax1"], ["Y3"]),  # [T, 1, H]
        helper.make_node("MatMul", ["Y3", "D"], ["z"]),
        helper.make_node("Sigmoid", ["z"], ["p"]),
        helper.make_node("Reshape", ["p", "flat"], ["y"]),
    ]
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["sequence_length", feature])]
    outputs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["sequence_length"])]
    if state:
        inputs += [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, 1, H]) for n in "hc"]
        outputs += [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, 1, H]) for n in ("hn", "cn")]
    graph = helper.make_graph(nodes, "windows", inputs, outputs, inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def ort_y(model: onnx.ModelProto, x: np.ndarray, state: bool = True) -> np.ndarray:
    feeds = {"x": x}
    if state:
        feeds.update(h=np.zeros((1, 1, H), np.float32), c=np.zeros((1, 1, H), np.float32))
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(["y"], feeds)[0]


@pytest.mark.parametrize("state", [True, False])
@pytest.mark.parametrize("given", [None, "T,8", "t, F"])
def test_a_2_axis_input_reaching_the_lstm_time_axis_is_time_by_features(state, given):
    model = windows_lstm(state=state)
    g = to_graph(model, inputs=None if given is None else {"x": given})
    assert g.input_spec.axes == "TF" and g.input_spec.shape == [None, F]
    assert g.output_spec.axes == "T"  # the [T] output: one element per step, no F axis
    x = RNG.standard_normal((7, F)).astype(np.float32)
    m = rnnedge.Model.from_bytes(write_blob(g))
    want = ort_y(model, x, state)
    assert m.run(x).shape == want.shape == (7,)
    assert np.abs(m.run(x) - want).max() < 1e-5
    s = m.stream()
    stepped = np.concatenate([np.asarray(s.step(x[t])).reshape(-1) for t in range(len(x))])
    assert np.abs(stepped - want).max() < 1e-5


def test_a_long_reflect_pad_of_the_window_converts_in_a_few_nodes():
    model = windows_lstm(reflect=6)  # 6 of the window's 8 samples mirrored on each side
    g = to_graph(model)
    assert len(g.nodes) < 12  # one Slice and one Dense per side, not one Slice per element
    x = RNG.standard_normal((5, F)).astype(np.float32)
    got = rnnedge.Model.from_bytes(write_blob(g)).run(x)
    assert np.abs(got - ort_y(model, x)).max() < 1e-5


def test_a_per_step_size_the_graph_leaves_open_is_given():
    model = windows_lstm(feature="window")
    with pytest.raises(ConvertError, match=r"the feature axis of input 'x' \(TxF\) has no fixed size"):
        to_graph(model)
    g = to_graph(model, inputs={"x": "T,8"})
    assert g.input_spec.shape == [None, F]
    assert "input 'x': axis 1 (window) is 8 per step (given)" in g.folded
    x = RNG.standard_normal((4, F)).astype(np.float32)
    assert np.abs(rnnedge.Model.from_bytes(write_blob(g)).run(x) - ort_y(model, x)).max() < 1e-5


@pytest.mark.parametrize("spec, message", [
    ("T", r"input 'x' has 2 axes; the axes 'T' give 1"),
    ("T,8,1", r"input 'x' has 2 axes; the axes 'T,8,1' give 3"),
    ("T,T", r"axes 'T,T': T is given twice \(axes 0 and 1\)"),
    ("T,x", r"axes 'T,x': axis 1 is 'x'; expected T, B, F or a per-step size"),
    ("T,0", r"axes 'T,0': axis 1 has size 0; a per-step size must be 1 to"),
    ("T,9", r"input 'x' axis 1: the axes 'T,9' give size 9; the graph declares 8"),
    ("", r"expected one item per axis separated by commas"),
])  # fmt: skip
def test_a_spec_that_does_not_fit_the_input_is_an_input_error(spec, message):
    with pytest.raises(InputError, match=message):
        to_graph(windows_lstm(), inputs={"x": spec})


def test_the_axes_roles_are_tried_as_given():
    with pytest.raises(ConvertError, match=r"LSTM.*input X is \[B,F1,F8\], but LSTM with layout=0 reads"):
        to_graph(windows_lstm(), inputs={"x": "B,8"})


def test_inputs_name_the_signal_input():
    with pytest.raises(InputError, match=r"input axes z=T,8: 'z' is not an input of the graph \(its inputs: 'x', 'h', 'c'\)"):
        rnnedge.convert(windows_lstm(), inputs={"z": "T,8"})
    with pytest.raises(InputError, match=r"input axes are given for 'h', which is not the signal input \(that is 'x'"):
        to_graph(windows_lstm(), inputs={"x": "T,8", "h": "1,1,5"})


def test_parse_axes_roles_and_sizes():
    a = parse_axes("x", " b , 576 ")
    assert (a.roles, a.sizes, a.spec()) == ("BF", (None, 576), "B,576")
    assert parse_axes("x", "T,B,F").roles == "TBF"


def test_the_cli_takes_input_axes(tmp_path, capsys):
    src, out = tmp_path / "w.onnx", tmp_path / "w.rne"
    model = windows_lstm(feature="window")
    onnx.save(model, src)
    assert main(["convert", str(src), "-o", str(out), "--input", "x=T,8"]) == 0
    assert "axis 1 (window) is 8 per step (given)" in capsys.readouterr().out
    x = RNG.standard_normal((3, F)).astype(np.float32)
    assert np.abs(rnnedge.load(out).run(x) - ort_y(model, x)).max() < 1e-5
    for bad, message in ((["--input", "x"], "expected NAME=AXES"),
                         (["--input", "x=T,8", "--input", "x=T,8"], "given twice"),
                         (["--input", "x=T,0"], "axis 1 has size 0"),
                         (["--input", "q=T,8"], "'q' is not an input of the graph")):  # fmt: skip
        assert main(["convert", str(src), "-o", str(out), *bad]) == 1
        assert message in capsys.readouterr().err


@pytest.mark.parametrize("shape", [None, [], [2, 3, 4, 5, 6, 7, 8]])
def test_an_input_of_no_axes_or_too_many_is_refused_by_name(tmp_path, shape):
    """An input whose type has no shape (0 axes: the fuzzer's `type removed`), a scalar, or more
    axes than the blob takes: a ConvertError naming the input and the forms taken, in both
    converters (the pipeline's first, then the graph's), never an IndexError."""
    x = helper.make_tensor_value_info("X", TensorProto.FLOAT, shape)
    y = helper.make_tensor_value_info("Y", TensorProto.FLOAT, None)
    g = helper.make_graph([helper.make_node("Softsign", ["X"], ["Y"])], "g", [x], [y])
    path = tmp_path / "m.onnx"
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), path)
    n = 0 if not shape else len(shape)
    with pytest.raises(ConvertError, match=rf"input 'X' has {n} axes; rnnedge takes \[batch, time, features\]"):
        rnnedge.convert(path, tmp_path / "m.rne")
