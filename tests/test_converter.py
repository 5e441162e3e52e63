"""The ONNX converter (rnnedge.converter): the case table converts to exactly its Network, and
every construct rnnedge cannot run fails with its own named error."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from onnx_cases import CASES, assert_networks_equal
from rnnedge.converter import DATA_OPS, to_network
from rnnedge.errors import ConvertError, ConvertWarning, UnsupportedOpError
from rnnedge.ir.layers import Dense, LayerNorm, Recurrent, TakeLast, TensorSpec
from rnnedge.reference import run_network

CONVERTIBLE = [c for c in CASES if c.convertible]


def same_spec(got: TensorSpec, want: TensorSpec) -> bool:
    """The converter reports every size the graph fixes; the case table leaves batch/time None."""
    return (
        got.name == want.name
        and got.axes == want.axes
        and all(w is None or g == w for g, w in zip(got.shape, want.shape))
    )


@pytest.mark.parametrize("case", CONVERTIBLE, ids=lambda c: c.name)
def test_case_converts_to_its_network(case):
    built = case.build(all_outputs=True)
    net = to_network(built.model, name=case.name)
    want = built.network
    assert same_spec(net.input, want.input), (net.input, want.input)
    assert same_spec(net.output, want.output), (net.output, want.output)
    assert net.producer.startswith(want.producer) and "opset 17" in net.producer
    assert all(isinstance(f, str) for f in net.folded)
    compared = dataclasses.replace(
        net, input=want.input, output=want.output, producer=want.producer, folded=want.folded
    )
    assert_networks_equal(compared, want)


def test_converts_from_a_file_and_names_the_model_after_it(tmp_path):
    built = next(c for c in CASES if c.name == "stack_bilstm_lstm_last_dense_softmax").build()
    path = tmp_path / "my_model.onnx"
    onnx.save(built.model, path)
    net = to_network(path)
    assert net.name == "my_model"
    assert to_network(str(path), name="other").name == "other"
    y, _ = run_network(net, built.x)
    y_case, _ = run_network(built.network, built.x)
    np.testing.assert_array_equal(y, y_case)
    assert any(f.startswith("Transpose ") for f in net.folded)  # layout ops fold away


# -- small hand-built graphs -------------------------------------------------------------------
F, H = 3, 4


def _model(nodes, inputs, outputs, inits=(), opset=17) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, "g", inputs, outputs, list(inits))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    return model


def _vi(name: str, shape) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


def _init(name: str, a) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(a), name)


def _lstm_inits(rng=np.random.default_rng(0), dirs: int = 1) -> list[onnx.TensorProto]:
    return [
        _init("W", rng.standard_normal((dirs, 4 * H, F)).astype(np.float32)),
        _init("R", rng.standard_normal((dirs, 4 * H, H)).astype(np.float32)),
    ]


def _lstm(inputs=("x", "W", "R"), outputs=("y",), **attrs) -> onnx.NodeProto:
    return helper.make_node("LSTM", list(inputs), list(outputs), name="lstm", hidden_size=H, **attrs)


def test_sequence_lens_equal_to_t_is_accepted_and_noted():
    lens = _init("lens", np.array([5, 5], np.int32))
    m = _model([_lstm(("x", "W", "R", "", "lens"))], [_vi("x", [5, 2, F])],
               [_vi("y", None)], _lstm_inits() + [lens])  # fmt: skip
    net = to_network(m)
    assert isinstance(net.layers[0], Recurrent)
    assert any("sequence_lens" in f for f in net.folded)


def test_sequence_lens_shorter_than_t_is_refused_by_name():
    lens = _init("lens", np.array([5, 3], np.int32))
    m = _model([_lstm(("x", "W", "R", "", "lens"))], [_vi("x", [5, 2, F])],
               [_vi("y", None)], _lstm_inits() + [lens])  # fmt: skip
    with pytest.raises(UnsupportedOpError, match=r"sequence_lens = \['5', '3'\].*T = 5"):
        to_network(m)


def test_sequence_lens_with_a_run_time_length_is_refused_by_name():
    lens = _init("lens", np.array([5, 5], np.int32))
    m = _model([_lstm(("x", "W", "R", "", "lens"))], [_vi("x", ["T", 2, F])],
               [_vi("y", None)], _lstm_inits() + [lens])  # fmt: skip
    with pytest.raises(UnsupportedOpError, match="sequence_lens"):
        to_network(m)


def test_unsupported_op_names_op_node_position_and_supported_ops():
    nodes = [
        helper.make_node("Relu", ["x"], ["r"], name="first"),
        helper.make_node("Sin", ["r"], ["y"], name="the_sine"),
    ]
    m = _model(nodes, [_vi("x", ["T", "B", F])], [_vi("y", None)])
    with pytest.raises(UnsupportedOpError) as e:
        to_network(m)
    text = str(e.value)
    assert "'Sin'" in text and "'the_sine'" in text and "#2 of 2" in text
    assert "rnnedge supports:" in text and "LSTM" in text and "LayerNormalization" in text


def test_op_from_another_domain_is_named_with_its_domain():
    node = helper.make_node("FusedGemm", ["x", "w"], ["y"], name="fused", domain="com.microsoft")
    m = _model([node], [_vi("x", ["B", F])], [_vi("y", None)], [_init("w", np.ones((F, 2), np.float32))])
    m.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    with pytest.raises(UnsupportedOpError, match=r"'com\.microsoft\.FusedGemm'"):
        to_network(m)


@pytest.mark.parametrize(
    "node, inits, match",
    [
        (_lstm(activations=["Sigmoid", "Gelu", "Tanh"]), _lstm_inits(), r"activations='Gelu'"),
        (_lstm(direction="sideways"), _lstm_inits(), r"direction='sideways'"),
        (_lstm(layout=2), _lstm_inits(), r"layout=2"),
        (_lstm(clip=-1.0), _lstm_inits(), r"clip=-1\.0"),
        (helper.make_node("Gemm", ["x", "w"], ["y"], transA=1), [_init("w", np.ones((F, 2), np.float32))],
         r"transA=1"),
        (helper.make_node("Cast", ["x"], ["y"], to=TensorProto.DOUBLE), [], r"to=11"),
        (helper.make_node("LayerNormalization", ["x", "g"], ["y"], axis=0),
         [_init("g", np.ones(F, np.float32))], r"axis=0"),
    ],
    ids=["activation", "direction", "layout", "clip", "gemm_transA", "cast", "layernorm_axis"],
)
def test_unsupported_attribute_value_names_attribute_and_value(node, inits, match):
    m = _model([node], [_vi("x", ["T", "B", F])], [_vi("y", None)], inits)
    with pytest.raises(UnsupportedOpError, match=match):
        to_network(m)


def test_several_independent_inputs_are_named():
    m = _model([helper.make_node("Add", ["x", "z"], ["y"])],
               [_vi("x", ["T", "B", F]), _vi("z", ["T", "B", F])], [_vi("y", None)])  # fmt: skip
    with pytest.raises(ConvertError, match=r"2 independent inputs \('x', 'z'\)"):
        to_network(m)


def test_loop_over_the_data_is_an_unrolled_net():
    body = helper.make_graph(
        [helper.make_node("Identity", ["s"], ["o"])], "body",
        [_vi("s", [None, F])], [_vi("o", [None, F])],
    )  # fmt: skip
    scan = helper.make_node("Scan", ["x"], ["y"], name="the_scan", num_scan_inputs=1, body=body)
    m = _model([scan], [_vi("x", ["T", "B", F])], [_vi("y", None)])
    with pytest.raises(UnsupportedOpError, match=r"'the_scan' \(op Scan.*found an unrolled recurrent net") as e:
        to_network(m)
    assert "dynamo=False" in str(e.value) and "tf2onnx" in str(e.value)


def test_step_by_step_matmul_tanh_chain_is_an_unrolled_net():
    w = _init("w", np.ones((F, H), np.float32))
    nodes, prev = [], None
    for t in range(2):
        nodes.append(helper.make_node("Gather", ["x", f"i{t}"], [f"x{t}"], axis=0))
        nodes.append(helper.make_node("MatMul", [f"x{t}", "w"], [f"m{t}"]))
        if prev is not None:
            nodes.append(helper.make_node("Add", [f"m{t}", prev], [f"a{t}"]))
        nodes.append(helper.make_node("Tanh", [f"a{t}" if prev else f"m{t}"], [f"h{t}"]))
        prev = f"h{t}"
    inits = [w] + [_init(f"i{t}", np.array(t, np.int64)) for t in range(2)]
    m = _model(nodes, [_vi("x", ["T", "B", F])], [_vi(prev, None)], inits)
    with pytest.raises(UnsupportedOpError, match=r"found an unrolled recurrent net.*selects timesteps \[0:1\]"):
        to_network(m)


def test_selecting_a_step_other_than_the_last_is_refused():
    nodes = [_lstm(outputs=("y",)), helper.make_node("Gather", ["y", "zero"], ["g"], axis=0)]
    m = _model(nodes, [_vi("x", ["T", "B", F])], [_vi("g", None)],
               _lstm_inits() + [_init("zero", np.array(0, np.int64))])  # fmt: skip
    with pytest.raises(UnsupportedOpError, match="only the last timestep"):
        to_network(m)


def test_joining_two_data_tensors_is_refused():
    nodes = [helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Add", ["x", "r"], ["y"])]
    m = _model(nodes, [_vi("x", ["T", "B", F])], [_vi("y", None)])
    with pytest.raises(UnsupportedOpError, match="residual or skip connection"):
        to_network(m)


def test_initial_state_computed_from_the_data_is_refused():
    nodes = [
        helper.make_node("Gather", ["x", "zero"], ["x0"], axis=0),
        helper.make_node("MatMul", ["x0", "wh"], ["h"]),
        helper.make_node("Unsqueeze", ["h", "ax"], ["h0"]),
        _lstm(("x", "W", "R", "", "", "h0")),
    ]
    inits = _lstm_inits() + [_init("zero", np.array(-1, np.int64)), _init("wh", np.ones((F, H), np.float32)),
                             _init("ax", np.array([0], np.int64))]  # fmt: skip
    m = _model(nodes, [_vi("x", ["T", "B", F])], [_vi("y", None)], inits)
    with pytest.raises(UnsupportedOpError, match="initial_h is a data tensor"):
        to_network(m)


@pytest.mark.parametrize(
    "content, match",
    [
        (b"", r"'.*bad\.onnx' is empty"),
        (b"this is not a model at all\n" * 4, r"'.*bad\.onnx' is not an ONNX model"),
        (b"\x08\x07\x12\x04abc", r"'.*bad\.onnx' is not an ONNX model, or it is truncated"),
    ],
    ids=["empty", "text", "garbage"],
)
def test_a_file_that_is_not_onnx_gives_a_clear_error(tmp_path, content, match):
    path = tmp_path / "bad.onnx"
    path.write_bytes(content)
    with pytest.raises(ConvertError, match=match) as e:
        to_network(path)
    assert "google.protobuf" not in repr(e.value)


def test_a_truncated_onnx_file_gives_a_clear_error(tmp_path):
    built = next(c for c in CASES if c.name == "lstm_forward").build()
    data = built.model.SerializeToString()
    path = tmp_path / "cut.onnx"
    for cut in (len(data) // 3, len(data) // 2, len(data) - 7):
        path.write_bytes(data[:cut])
        with pytest.raises(ConvertError, match=r"'.*cut\.onnx'"):
            to_network(path)


def test_a_missing_file_is_named(tmp_path):
    with pytest.raises(ConvertError, match=r"cannot read '.*nothing\.onnx'"):
        to_network(tmp_path / "nothing.onnx")


def test_written_out_layer_norm_folds_with_its_scale_and_shift():
    """ReduceMean/Sub/Pow/ReduceMean/Add/Sqrt/Div/Mul/Add (torch's export below opset 17)."""
    g, b = np.array([1.0, 2.0, 0.5], np.float32), np.array([0.1, -0.2, 0.3], np.float32)
    nodes = [
        helper.make_node("ReduceMean", ["x"], ["m"], axes=[-1]),
        helper.make_node("Sub", ["x", "m"], ["d"]),
        helper.make_node("Pow", ["d", "two"], ["d2"]),
        helper.make_node("ReduceMean", ["d2"], ["v"], axes=[-1]),
        helper.make_node("Add", ["v", "eps"], ["ve"]),
        helper.make_node("Sqrt", ["ve"], ["s"]),
        helper.make_node("Div", ["d", "s"], ["n"]),
        helper.make_node("Mul", ["n", "g"], ["ng"]),
        helper.make_node("Add", ["ng", "b"], ["y"]),
    ]
    inits = [_init("two", np.float32(2)), _init("eps", np.float32(1e-5)), _init("g", g), _init("b", b)]
    net = to_network(_model(nodes, [_vi("x", ["B", "T", F])], [_vi("y", None)], inits, opset=14))
    (layer,) = net.layers
    assert isinstance(layer, LayerNorm) and layer.epsilon == pytest.approx(1e-5)
    np.testing.assert_allclose(layer.gamma, g)
    np.testing.assert_allclose(layer.beta, b)


def test_mul_and_add_after_a_dense_fold_into_it():
    w = np.arange(6, dtype=np.float32).reshape(F, 2)
    nodes = [
        helper.make_node("MatMul", ["x", "w"], ["m"]),
        helper.make_node("Add", ["m", "b"], ["a"]),
        helper.make_node("Mul", ["a", "s"], ["y"]),
    ]
    inits = [_init("w", w), _init("b", np.array([1, 2], np.float32)), _init("s", np.float32(0.5))]
    net = to_network(_model(nodes, [_vi("x", ["B", "T", F])], [_vi("y", None)], inits))
    (dense,) = net.layers
    assert isinstance(dense, Dense)
    np.testing.assert_allclose(dense.weight, 0.5 * w.T)
    np.testing.assert_allclose(dense.bias, [0.5, 1.0])


def test_go_backwards_reverse_sequence_becomes_a_reverse_lstm():
    """ReverseSequence of every full sequence, then a forward LSTM's Y_h = a reverse LSTM's Y_h."""
    nodes = [
        helper.make_node("Shape", ["x"], ["shape"]),
        helper.make_node("Gather", ["shape", "zero"], ["t"], axis=0),
        helper.make_node("Gather", ["shape", "one"], ["b"], axis=0),
        helper.make_node("Expand", ["t", "b"], ["lens"]),
        helper.make_node("ReverseSequence", ["x", "lens"], ["xr"], time_axis=0, batch_axis=1),
        _lstm(("xr", "W", "R"), ("y", "yh")),
    ]
    inits = _lstm_inits() + [_init("zero", np.array(0, np.int64)), _init("one", np.array([1], np.int64))]
    net = to_network(_model(nodes, [_vi("x", ["T", "B", F])], [_vi("yh", None)], inits))
    rec, last = net.layers
    assert isinstance(rec, Recurrent) and rec.direction == "reverse"
    assert isinstance(last, TakeLast) and last.split == 0


def test_every_data_op_has_a_function():
    assert {"LSTM", "GRU", "RNN", "Gemm", "MatMul", "Softmax", "LayerNormalization"} <= set(DATA_OPS)
    assert all(callable(fn) for fn in DATA_OPS.values())


def test_bidirectional_hidden_1_reshape_keeps_both_directions():
    """[T, B, 2, 1] -> [T, B, -1]: a size-1 hidden axis is features, not a droppable axis."""
    rng = np.random.default_rng(1)
    inits = [_init("W", rng.standard_normal((2, 4, F)).astype(np.float32)),
             _init("R", rng.standard_normal((2, 4, 1)).astype(np.float32)),
             _init("shape", np.array([0, 0, -1], np.int64))]  # fmt: skip
    nodes = [
        helper.make_node("LSTM", ["x", "W", "R"], ["y"], hidden_size=1, direction="bidirectional"),
        helper.make_node("Transpose", ["y"], ["t"], perm=[0, 2, 1, 3]),
        helper.make_node("Reshape", ["t", "shape"], ["o"]),
    ]
    net = to_network(_model(nodes, [_vi("x", ["T", "B", F])], [_vi("o", None)], inits))
    assert net.output.axes == "TBF" and net.output.shape == [None, None, 2]
    assert [type(l) for l in net.layers] == [Recurrent]


# -- external data: only from the model's own directory (issue #11 item 3) ---------------------
def _constant_w_model(location: str) -> onnx.ModelProto:
    """x [5, 2, F] -> LSTM whose W comes from a Constant node keeping its data in `location`."""
    w = numpy_helper.from_array(np.zeros((1, 4 * H, F), np.float32), "Wc")
    w.ClearField("raw_data")
    w.data_location = TensorProto.EXTERNAL
    w.external_data.add(key="location", value=location)
    const = helper.make_node("Constant", [], ["W"], name="w_const", value=w)
    r = _init("R", np.zeros((1, 4 * H, H), np.float32))
    return _model([const, _lstm()], [_vi("x", [5, 2, F])], [_vi("y", None)], [r])


def test_constant_external_data_is_not_read_from_the_current_directory(tmp_path, monkeypatch):
    model_dir, cwd = tmp_path / "model", tmp_path / "cwd"
    model_dir.mkdir(), cwd.mkdir()
    path = model_dir / "m.onnx"
    path.write_bytes(_constant_w_model("w.bin").SerializeToString())
    (cwd / "w.bin").write_bytes(np.full(4 * H * F, 7.0, np.float32).tobytes())  # not the model's
    monkeypatch.chdir(cwd)
    with pytest.raises(ConvertError, match=r"m.onnx': cannot load its external weight data: attribute "
                       r"'value' of node 'w_const' \(op Constant\), file 'w.bin'"):
        to_network(path)
    # beside the model it is the model's own data, read whatever the current directory
    (model_dir / "w.bin").write_bytes(np.full(4 * H * F, 0.5, np.float32).tobytes())
    rec = to_network(path).layers[0]
    assert isinstance(rec, Recurrent) and np.all(rec.W == 0.5)


@pytest.mark.parametrize("location", ["../w.bin", "/etc/hostname", "link.bin"])
def test_constant_external_data_outside_the_model_directory_is_refused(tmp_path, location):
    (tmp_path / "w.bin").write_bytes(np.ones(4 * H * F, np.float32).tobytes())
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    (model_dir / "link.bin").symlink_to(tmp_path / "w.bin")
    path = model_dir / "m.onnx"
    path.write_bytes(_constant_w_model(location).SerializeToString())
    with pytest.raises(ConvertError, match=r"cannot load its external weight data: attribute 'value' of "
                       r"node 'w_const' \(op Constant\), file " + repr(location)):
        to_network(path)


def test_external_data_of_a_model_given_in_memory_is_refused_by_name():
    with pytest.raises(ConvertError, match=r"the ONNX model: attribute 'value' of node 'w_const' \(op "
                       r"Constant\) keeps its data in the external file 'w.bin'"):
        to_network(_constant_w_model("w.bin"))


# -- shapes the graph states or implies (issue #11 item 6) -------------------------------------
def _zeros_of_batch(name: str, last: int, x: str = "x", batch_axis: int = 1) -> list[onnx.NodeProto]:
    """zeros [1, batch of x, last] built the way exporters build initial states (Shape, Gather,
    Concat, ConstantOfShape), so the batch is a run-time size."""
    return [
        helper.make_node("Shape", [x], [f"{name}_xs"]),
        helper.make_node("Gather", [f"{name}_xs", f"{name}_bi"], [f"{name}_b"], axis=0),
        helper.make_node("Concat", [f"{name}_one", f"{name}_b", f"{name}_last"], [f"{name}_shape"], axis=0),
        helper.make_node("ConstantOfShape", [f"{name}_shape"], [name], name=f"{name}_zeros",
                         value=numpy_helper.from_array(np.zeros(1, np.float32))),
    ]


def _zeros_inits(name: str, last: int, batch_axis: int = 1) -> list[onnx.TensorProto]:
    return [_init(f"{name}_bi", np.array([batch_axis], np.int64)), _init(f"{name}_one", np.array([1], np.int64)),
            _init(f"{name}_last", np.array([last], np.int64))]  # fmt: skip


def _lstm_with_zero_states(c_size: int) -> onnx.ModelProto:
    nodes = _zeros_of_batch("h0", H) + _zeros_of_batch("c0", c_size) + [_lstm(("x", "W", "R", "", "", "h0", "c0"))]
    inits = _lstm_inits() + _zeros_inits("h0", H) + _zeros_inits("c0", c_size)
    return _model(nodes, [_vi("x", ["T", "B", F])], [_vi("y", None)], inits)


def test_zero_initial_c_of_another_hidden_size_is_refused_by_name():
    assert isinstance(to_network(_lstm_with_zero_states(H)).layers[0], Recurrent)
    with pytest.raises(ConvertError, match=r"node 'lstm' \(op LSTM, #\d+ of \d+ in the graph\): input "
                       rf"initial_c has shape \[1, B, {4 * H}\], expected \[1, B, {H}\] \(hidden_size {H}"):
        to_network(_lstm_with_zero_states(4 * H))


def _dynamo_proj_size_replica(hidden: int = 8, proj: int = 3, features: int = 4) -> onnx.ModelProto:
    """What torch.onnx.export(dynamo=True) writes for nn.LSTM(features, hidden, proj_size=proj,
    batch_first=True) (onnxscript's torchlib aten_lstm): hidden_size = proj (from h0's last axis),
    W and R cut to 4*proj rows, the projection weight dropped, and c0 zeros [1, B, hidden]: a graph
    onnxruntime refuses to run. tools/make_fixtures.py --proj-size makes the real export."""
    rng = np.random.default_rng(1)
    nodes = [helper.make_node("Transpose", ["x"], ["xt"], name="node_transpose", perm=[1, 0, 2])]
    nodes += _zeros_of_batch("h0", proj, batch_axis=0) + _zeros_of_batch("c0", hidden, batch_axis=0)
    nodes += [
        helper.make_node("LSTM", ["xt", "W", "R", "B", "", "h0", "c0"], ["Y", "Y_h", "Y_c"],
                         name="node_lstm", hidden_size=proj),
        helper.make_node("Squeeze", ["Y", "one_axis"], ["ys"], name="node_squeeze"),
        helper.make_node("Transpose", ["ys"], ["y"], name="node_transpose_1", perm=[1, 0, 2]),
    ]
    inits = [_init("W", rng.standard_normal((1, 4 * proj, features)).astype(np.float32)),
             _init("R", rng.standard_normal((1, 4 * proj, proj)).astype(np.float32)),
             _init("B", rng.standard_normal((1, 8 * proj)).astype(np.float32)),
             _init("one_axis", np.array([1], np.int64))]  # fmt: skip
    inits += _zeros_inits("h0", proj, 0) + _zeros_inits("c0", hidden, 0)
    m = _model(nodes, [_vi("x", ["batch", "seq", features])], [_vi("y", ["batch", "seq", proj])], inits, opset=18)
    m.graph.value_info.append(_vi("c0", [1, "batch", hidden]))
    return m


def test_dynamo_lstm_proj_size_export_is_refused_by_name():
    with pytest.raises(ConvertError, match=r"node 'node_lstm' \(op LSTM, #\d+ of \d+ in the graph\): input "
                       r"initial_c has shape \[1, B, 8\], expected \[1, B, 3\] \(hidden_size 3"):
        to_network(_dynamo_proj_size_replica())


PROJ_SIZE = Path(__file__).parent / "data" / "dynamo_lstm_proj_size.onnx"  # tools/make_fixtures.py --proj-size


@pytest.mark.skipif(not PROJ_SIZE.exists(), reason="needs onnxscript to make: tools/make_fixtures.py --proj-size")
def test_dynamo_lstm_proj_size_fixture_is_refused_by_name():
    with pytest.raises(ConvertError, match=r"dynamo_lstm_proj_size.onnx': node .*\(op LSTM, .*input initial_c "
                       r"has shape \[1, B, 8\], expected \[1, B, 3\]"):
        to_network(PROJ_SIZE)


def test_constant_initial_state_of_another_batch_is_refused():
    h0 = _init("h0", np.zeros((1, 3, H), np.float32))
    m = _model([_lstm(("x", "W", "R", "", "", "h0"))], [_vi("x", [5, 2, F])], [_vi("y", None)],
               _lstm_inits() + [h0])  # fmt: skip
    with pytest.raises(ConvertError, match=r"initial_h has shape \[1, 3, 4\], expected \[1, 2, 4\]"):
        to_network(m)


def test_constant_initial_state_of_a_fixed_batch_with_a_run_time_batch_warns():
    h0 = _init("h0", np.full((1, 1, H), 0.5, np.float32))
    m = _model([_lstm(("x", "W", "R", "", "", "h0"))], [_vi("x", [5, "B", F])], [_vi("y", None)],
               _lstm_inits() + [h0])  # fmt: skip
    with pytest.warns(ConvertWarning, match=r"node 'lstm' .*initial_h has shape \[1, 1, 4\], expected "
                      r"\[1, B, 4\] .*depends on the run-time sizes"):
        net = to_network(m)
    assert np.all(net.layers[0].initial_h == 0.5)


def test_sequence_lens_of_another_batch_is_refused():
    lens = _init("lens", np.array([5, 5, 5], np.int32))
    m = _model([_lstm(("x", "W", "R", "", "lens"))], [_vi("x", [5, 2, F])],
               [_vi("y", None)], _lstm_inits() + [lens])  # fmt: skip
    with pytest.raises(ConvertError, match=r"sequence_lens has shape \[3\], expected \[2\]"):
        to_network(m)


@pytest.mark.parametrize("where", ["value_info", "output"])
def test_a_declared_shape_that_contradicts_the_graph_is_refused(where):
    nodes = [_lstm(outputs=("Y", "Y_h"))]
    declared = _vi("Y", [5, 1, 2, H + 1])
    if where == "output":
        m = _model(nodes, [_vi("x", [5, 2, F])], [declared], _lstm_inits())
    else:  # an intermediate tensor
        nodes.append(helper.make_node("Relu", ["Y"], ["y"]))
        m = _model(nodes, [_vi("x", [5, 2, F])], [_vi("y", None)], _lstm_inits())
        m.graph.value_info.append(declared)
    with pytest.raises(ConvertError, match=r"node 'lstm' \(op LSTM, #1 of \d in the graph\): output 'Y' is "
                       rf"data tensor \[T,D,B,H\] \[5, 1, 2, {H}\], but the graph declares it \[5, 1, 2, {H + 1}\]"):
        to_network(m)


def test_a_declared_initializer_shape_that_contradicts_its_data_is_refused():
    m = _model([_lstm()], [_vi("x", [5, 2, F]), _vi("R", [1, 4 * H, H + 1])], [_vi("y", None)], _lstm_inits())
    with pytest.raises(ConvertError, match=rf"initializer 'R' is constant \[1, {4 * H}, {H}\], but the graph "
                       rf"declares it \[1, {4 * H}, {H + 1}\]"):
        to_network(m)


def test_a_static_declared_size_over_a_run_time_one_warns_once():
    m = _model([_lstm(outputs=("Y",))], [_vi("x", ["T", "B", F])], [_vi("Y", [9, 1, "B", H])], _lstm_inits())
    with pytest.warns(ConvertWarning, match=r"declares a static size where rnnedge computes a run-time one "
                      r"\(batch or time\) for 1 tensor\(s\), e.g. node 'lstm' .*output 'Y' \[T, 1, B, 4\] "
                      r"against \[9, 1, B, 4\]"):
        to_network(m)


def test_external_data_in_a_subgraph_is_read_from_the_model_directory_only(tmp_path, monkeypatch):
    """A tensor of an If branch (a subgraph initializer) is resolved like the main graph's."""
    model = _constant_w_model("w.bin")
    branch_t = numpy_helper.from_array(np.zeros(2, np.float32), "bt")
    branch_t.ClearField("raw_data")
    branch_t.data_location = TensorProto.EXTERNAL
    branch_t.external_data.add(key="location", value="sub.bin")
    branch = helper.make_graph([helper.make_node("Identity", ["bt"], ["o"])], "then", [], [_vi("o", [2])], [branch_t])
    cond = _init("cond", np.array(True))
    model.graph.initializer.append(cond)
    model.graph.node.append(helper.make_node("If", ["cond"], ["unused"], name="if", then_branch=branch,
                                             else_branch=branch))  # fmt: skip
    model_dir, cwd = tmp_path / "model", tmp_path / "cwd"
    model_dir.mkdir(), cwd.mkdir()
    (model_dir / "w.bin").write_bytes(np.zeros(4 * H * F, np.float32).tobytes())
    (cwd / "sub.bin").write_bytes(np.zeros(2, np.float32).tobytes())
    path = model_dir / "m.onnx"
    path.write_bytes(model.SerializeToString())
    monkeypatch.chdir(cwd)
    with pytest.raises(ConvertError, match=r"attribute '(then|else)_branch' of node 'if' \(op If\), subgraph: "
                       r"initializer 'bt', file 'sub.bin'"):
        to_network(path)


# -- final states joined along axis 0: a stack of states (h_n) or a join along the batch ---------
def _two_lstms_with_joined_finals(join: str) -> onnx.ModelProto:
    """Two stacked LSTMs (H 4) reading rows of state inputs h0 / c0 [2 D, B, H]; output 0 the
    second one's Y as [T, B, D H], output "joined" a Concat along axis 0 of their final h:
    "stack": Y_h as it is, [D, B, H] (PyTorch's h_n: [2 D, B, H]); "squeezed": Squeeze(Y_h, 0),
    [B, H] each, joined along the batch ([2 B, H]); "batch-first": a bidirectional pair's
    Transpose(Y_h) [B, D, H], joined along the batch ([2 B, D, H])."""
    rng = np.random.default_rng(7)
    dirs = 2 if join == "batch-first" else 1
    nodes, inits, finals, x = [], [], [], "x"
    for k in range(2):
        size = F if k == 0 else dirs * H
        inits += [_init(f"W{k}", rng.uniform(-0.5, 0.5, (dirs, 4 * H, size)).astype(np.float32)),
                  _init(f"R{k}", rng.uniform(-0.5, 0.5, (dirs, 4 * H, H)).astype(np.float32)),
                  _init(f"B{k}", rng.uniform(-0.5, 0.5, (dirs, 8 * H)).astype(np.float32)),
                  _init(f"start{k}", np.array([k * dirs])), _init(f"stop{k}", np.array([k * dirs + dirs])),
                  _init(f"ax{k}", np.array([0])),
                  _init(f"shape{k}", np.array([0, 0, dirs * H]))]  # fmt: skip
        for s in ("h", "c"):
            nodes.append(helper.make_node("Slice", [f"{s}0", f"start{k}", f"stop{k}", f"ax{k}"], [f"{s}0_{k}"]))
        nodes.append(helper.make_node(
            "LSTM", [x, f"W{k}", f"R{k}", f"B{k}", "", f"h0_{k}", f"c0_{k}"], [f"y{k}", f"yh{k}", ""],
            hidden_size=H, direction="bidirectional" if dirs == 2 else "forward"))  # fmt: skip
        nodes += [helper.make_node("Transpose", [f"y{k}"], [f"yt{k}"], perm=[0, 2, 1, 3]),
                  helper.make_node("Reshape", [f"yt{k}", f"shape{k}"], [f"x{k + 1}"])]  # fmt: skip
        x = f"x{k + 1}"
        if join == "stack":
            finals.append(f"yh{k}")
        elif join == "squeezed":
            nodes.append(helper.make_node("Squeeze", [f"yh{k}", f"ax{k}"], [f"f{k}"]))
            finals.append(f"f{k}")
        else:
            nodes.append(helper.make_node("Transpose", [f"yh{k}"], [f"f{k}"], perm=[1, 0, 2]))
            finals.append(f"f{k}")
    nodes.append(helper.make_node("Concat", finals, ["joined"], axis=0))
    joined = {"stack": [2 * dirs, "B", H], "squeezed": ["2B", H], "batch-first": ["2B", dirs, H]}[join]
    ins = [_vi("x", ["T", "B", F]), _vi("h0", [2 * dirs, "B", H]), _vi("c0", [2 * dirs, "B", H])]
    return _model(nodes, ins, [_vi(x, ["T", "B", dirs * H]), _vi("joined", joined)], inits)


@pytest.mark.parametrize("join", ["stack", "squeezed", "batch-first"])
def test_final_states_joined_along_axis_0_are_a_state_output_only_when_stacked(join):
    """A Concat along axis 0 of final states is PyTorch's h_n only when axis 0 is their
    directions: the stack is h0's state output, equal to onnxruntime's at batch 3; a join of
    squeezed [B, H] (or [B, D, H]) states runs along the batch, so it is no state output (it was
    once read as one: a [2 B, D, H] output mapped onto h0's [2 D, B, H] rows, other numbers)."""
    import onnxruntime as ort

    from rnnedge import Model
    from rnnedge.blob.write import write_blob

    m = _two_lstms_with_joined_finals(join)
    onnx.checker.check_model(m)
    net = to_network(m)
    rng = np.random.default_rng(8)
    dirs = 2 if join == "batch-first" else 1
    feeds = {"x": rng.standard_normal((5, 3, F)).astype(np.float32),
             "h0": rng.standard_normal((2 * dirs, 3, H)).astype(np.float32),
             "c0": rng.standard_normal((2 * dirs, 3, H)).astype(np.float32)}  # fmt: skip
    y_ort, joined = ort.InferenceSession(m.SerializeToString()).run(None, feeds)
    model = Model.from_bytes(write_blob(net), source="joined")
    y, final = model.run(feeds["x"], {"h0": feeds["h0"], "c0": feeds["c0"]}, return_state=True)
    np.testing.assert_allclose(y, y_ort, rtol=1e-5, atol=1e-6)
    outputs = {(s.name, s.layer, s.kind): s.output for s in net.state}
    if join == "stack":
        assert outputs[("h0", 0, "h")] == outputs[("h0", 1, "h")] == "joined"
        np.testing.assert_allclose(final["h0"], joined, rtol=1e-5, atol=1e-6)
    else:
        assert set(outputs.values()) == {None}
        assert "output 'joined': not produced by rnnedge (only the first output is)" in net.folded
        # the same states (Stream.state's h0 [2 D, B, H]), joined along the batch: not its rows
        layers = [final["h0"][k * dirs : (k + 1) * dirs].transpose(1, 0, 2) for k in range(2)]
        along_batch = np.concatenate(layers, axis=0).reshape(joined.shape)
        np.testing.assert_allclose(along_batch, joined, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("join, where", [("squeezed", r"\[B,F\] \[B, 4\]"), ("batch-first", r"\[B,D,H\] \[B, 2, 4\]")])
def test_final_states_joined_along_the_batch_as_the_output_are_refused_by_name(join, where):
    m = _two_lstms_with_joined_finals(join)
    del m.graph.output[0]
    with pytest.raises(UnsupportedOpError, match=rf"op Concat.*Concat along axis 0 of the final state {where}: "
                       "axis 0 is its batch axis, not the directions"):  # fmt: skip
        to_network(m)


def _lstm_with_squeezed_c(direction: str, axes: list[int]) -> onnx.ModelProto:
    """An LSTM whose final cell state leaves the graph squeezed, as tf2onnx writes Keras's
    return_state c: Squeeze(Y_c, axes) as output "c"."""
    dirs = 2 if direction == "bidirectional" else 1
    nodes = [_lstm(("x", "W", "R"), ("y", "", "yc"), direction=direction),
             helper.make_node("Squeeze", ["yc", "axes"], ["c"])]  # fmt: skip
    inits = _lstm_inits(dirs=dirs) + [_init("axes", np.array(axes))]
    return _model(nodes, [_vi("x", ["T", "B", F])], [_vi("y", None), _vi("c", None)], inits)


@pytest.mark.parametrize("direction, axes, note", [
    ("forward", [0], "final recurrent state, read it from Stream.state"),
    ("forward", [-3], "final recurrent state, read it from Stream.state"),
    ("forward", [1], "not produced by rnnedge (only the first output is)"),
    ("bidirectional", [0], "not produced by rnnedge (only the first output is)"),
])  # fmt: skip
def test_a_squeezed_cell_state_is_a_final_state_output_of_one_direction_only(direction, axes, note):
    net = to_network(_lstm_with_squeezed_c(direction, axes))
    assert f"output 'c': {note}" in net.folded


@pytest.mark.parametrize("op, direction, axes, match", [
    ("Squeeze", "bidirectional", [0], r"Squeeze of axes \[0\] of a LSTM final cell state \[D, B, H\] with D = 2: "
                                      r"only its direction axis \(axis 0\) of one direction"),
    ("Squeeze", "forward", [2], r"Squeeze of axes \[2\] of a LSTM final cell state"),
    ("Squeeze", "forward", None, r"Squeeze of axes \(not given\) of a LSTM final cell state"),
    ("Unsqueeze", "forward", [1], r"Unsqueeze of axes \[1\] of a LSTM final cell state \[B, H\] \(squeezed\): "
                                  r"only axis 0 of a squeezed one"),
])  # fmt: skip
def test_squeeze_and_unsqueeze_of_a_cell_state_move_only_its_direction_axis(op, direction, axes, match):
    from rnnedge.converter import layout
    from rnnedge.converter.node import Node
    from rnnedge.converter.values import CellState, Const

    rec = to_network(_lstm_with_squeezed_c(direction, [0])).layers[0]
    assert isinstance(rec, Recurrent)
    cell = CellState(rec, squeezed=op == "Unsqueeze")
    ins = [cell] + ([] if axes is None else [Const(np.array(axes))])
    node = Node(helper.make_node(op, ["c", "axes"][: len(ins)], ["o"]), 0, 17)
    fn = layout.op_squeeze if op == "Squeeze" else layout.op_unsqueeze
    with pytest.raises(UnsupportedOpError, match=match):
        fn(None, node, ins)  # type: ignore[arg-type]
    if op == "Unsqueeze":  # its direction axis back: the [D, B, H] state again
        assert fn(None, node, [cell, Const(np.array([0]))]) == [CellState(rec)]  # type: ignore[arg-type]


def test_squeezed_cell_states_joined_along_axis_0_are_refused_by_name():
    """Two squeezed Y_c [B, H] joined along axis 0 are joined along the batch: no stack of states."""
    from rnnedge.converter import layout
    from rnnedge.converter.node import Node
    from rnnedge.converter.values import CellState, Stack

    rec = to_network(_lstm_with_squeezed_c("forward", [0])).layers[0]
    node = Node(helper.make_node("Concat", ["a", "b"], ["o"], axis=0), 0, 17)
    with pytest.raises(UnsupportedOpError, match=r"Concat along axis 0 of the final state \[B,H\] \(squeezed\): "
                                                 "axis 0 is its batch axis, not the directions"):  # fmt: skip
        layout.op_concat(None, node, [CellState(rec, squeezed=True)] * 2)  # type: ignore[arg-type]
    assert layout.op_concat(None, node, [CellState(rec)] * 2) == [Stack((CellState(rec),) * 2)]  # type: ignore[arg-type]


def _gru_pair_multiplied(state: bool) -> onnx.ModelProto:
    """A forward and a reverse ONNX GRU (H 4) over the same input, their outputs multiplied (the
    Mul tf2onnx writes for Keras Bidirectional merge_mode "mul"); with `state`, over an LSTM whose
    initial h is the graph input h0."""
    rng = np.random.default_rng(3)
    nodes, inits, x = [], [], "x"
    if state:
        inits += _lstm_inits(rng)
        nodes += [_lstm(("x", "W", "R", "", "", "h0"), ("y0",)),
                  helper.make_node("Squeeze", ["y0", "ax"], ["x1"])]  # fmt: skip
        inits.append(_init("ax", np.array([1])))
        x = "x1"
    size = H if state else F
    for d in ("forward", "reverse"):
        inits += [_init(f"W{d}", rng.uniform(-0.5, 0.5, (1, 3 * H, size)).astype(np.float32)),
                  _init(f"R{d}", rng.uniform(-0.5, 0.5, (1, 3 * H, H)).astype(np.float32))]  # fmt: skip
        nodes.append(helper.make_node("GRU", [x, f"W{d}", f"R{d}"], [f"y{d}"], hidden_size=H, direction=d))
    nodes.append(helper.make_node("Mul", ["yforward", "yreverse"], ["y"]))
    ins = [_vi("x", ["T", "B", F])] + ([_vi("h0", [1, "B", H])] if state else [])
    return _model(nodes, ins, [_vi("y", ["T", 1, "B", H])], inits)


def test_a_product_of_two_directions_is_a_dataflow_graph():
    """Forward and reverse recurrent ops joined by a Mul: one bidirectional layer and the product
    of its halves, which no pipeline layer computes: to_network gives the dataflow graph (equal to
    onnxruntime at batch 3); over a layer whose state a graph input sets it is refused by name."""
    import onnxruntime as ort

    from rnnedge import Model
    from rnnedge.blob.write import write_blob
    from rnnedge.ir.graph import Graph

    m = _gru_pair_multiplied(state=False)
    g = to_network(m)
    assert isinstance(g, Graph)
    x = np.random.default_rng(4).standard_normal((5, 3, F)).astype(np.float32)
    (want,) = ort.InferenceSession(m.SerializeToString()).run(None, {"x": x})
    y = Model.from_bytes(write_blob(g), source="mul").run(x)
    assert y.shape == want.shape == (5, 1, 3, H)
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-6)
    with pytest.raises(UnsupportedOpError, match=r"state input 'h0' sets the state of a model whose "
                                                 r"Bidirectional halves are multiplied"):  # fmt: skip
        to_network(_gru_pair_multiplied(state=True))


@pytest.mark.parametrize("perm", [[0, 1, 2], [1, 0, 2]])
def test_a_transposed_final_state_is_no_state_output(perm):
    """A bidirectional LSTM's Y_h [D, B, H] as a second output is h0's state output (equal to
    onnxruntime's at batch 3); transposed to [B, D, H] its elements lie in another order, so it is
    not (it was once recorded as h0's output all the same)."""
    import onnxruntime as ort

    from rnnedge import Model
    from rnnedge.blob.write import write_blob

    rng = np.random.default_rng(5)
    inits = _lstm_inits(rng, dirs=2)
    nodes = [_lstm(("x", "W", "R", "", "", "h0"), ("y", "yh"), direction="bidirectional"),
             helper.make_node("Transpose", ["yh"], ["hb"], perm=perm)]  # fmt: skip
    m = _model(nodes, [_vi("x", ["T", "B", F]), _vi("h0", [2, "B", H])],
               [_vi("y", ["T", 2, "B", H]), _vi("hb", None)], inits)  # fmt: skip
    net = to_network(m)
    feeds = {"x": rng.standard_normal((5, 3, F)).astype(np.float32),
             "h0": rng.standard_normal((2, 3, H)).astype(np.float32)}  # fmt: skip
    _, hb = ort.InferenceSession(m.SerializeToString()).run(None, feeds)
    _, final = Model.from_bytes(write_blob(net), source="hb").run(feeds["x"], {"h0": feeds["h0"]}, return_state=True)
    np.testing.assert_allclose(final["h0"].transpose(perm), hb, rtol=1e-5, atol=1e-5)
    if perm == [0, 1, 2]:
        assert [s.output for s in net.state] == ["hb"]
    else:
        assert [s.output for s in net.state] == [None]
        assert "output 'hb': not produced by rnnedge (only the first output is)" in net.folded
