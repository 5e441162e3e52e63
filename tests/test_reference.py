"""The numpy reference (rnnedge/reference.py) against onnxruntime, over the whole case table."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import onnx.reference
import pytest

from onnx_cases import CASES, RECURRENT_CASES, Built, assert_close, onnx_outputs, to_tbf
from rnnedge.errors import ConvertError, InputError, UnsupportedOpError
from rnnedge.ir.layers import (
    GRAPH_ACTIVATIONS, Act, Activation, Dense, Network, Recurrent, TakeLast, TensorSpec,
)
from rnnedge.reference import (
    ACTIVATION_FUNCS,
    activate,
    cell_activations,
    initial_state,
    lstm_step,
    run_network,
)

@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_matches_onnx(case):
    built = case.build(all_outputs=True)
    outputs = onnx_outputs(built)
    y, state = run_network(built.network, built.x, built.state)
    assert y.dtype == np.float32
    main = built.model.graph.output[0].name
    assert_close(y, to_tbf(outputs[main], built.network.output.axes), f"{case.name} {main}")
    for k, name in enumerate(("hn", "cn")):  # final states, where the graph exposes them
        if name in outputs:
            want = outputs[name].transpose(1, 0, 2) if getattr(case, "layout", 0) else outputs[name]
            assert_close(state[0][k], want, f"{case.name} final {name}")


SIMPLE = [
    c for c in RECURRENT_CASES
    if c.acts is None and c.clip is None and not c.input_forget and c.output == "Y"
]  # fmt: skip


@pytest.mark.parametrize("case", SIMPLE, ids=lambda c: c.name)
def test_matches_onnx_reference_evaluator(case):
    """A second oracle: onnx's own Python reference (which implements only default activations,
    no clip and no input_forget)."""
    built = case.build()
    (y_ref,) = onnx.reference.ReferenceEvaluator(built.model).run(["Y"], built.feeds)
    y, _ = run_network(built.network, built.x, built.state)
    assert_close(y, to_tbf(y_ref, built.network.output.axes), case.name)


def _toggled(layer: Recurrent) -> dict[str, Recurrent]:
    """The layer with each non-default attribute switched off."""
    off = {"clip": None, "P": None, "input_forget": False, "linear_before_reset": False,
           "initial_h": None, "initial_c": None, "B": None}  # fmt: skip
    return {k: dataclasses.replace(layer, **{k: v}) for k, v in off.items()
            if getattr(layer, k) is not None and getattr(layer, k) is not False}  # fmt: skip


@pytest.mark.parametrize("case", RECURRENT_CASES, ids=lambda c: c.name)
def test_case_exercises_its_attributes(case):
    """Each attribute a case sets changes its output: the table tests what its names say."""
    built = case.build()
    layer = built.network.layers[0]
    y, _ = run_network(built.network, built.x, built.state)
    for attr, other in _toggled(layer).items():
        net = dataclasses.replace(built.network, layers=[other, *built.network.layers[1:]])
        y2, _ = run_network(net, built.x, built.state)
        assert np.max(np.abs(y - y2)) > 1e-3, f"{case.name}: {attr} makes no difference"


@pytest.mark.parametrize(
    "case", [c for c in CASES if c.build().network.streamable], ids=lambda c: c.name
)
def test_stepping_equals_whole_sequence(case):
    """T calls of one step, carrying the state, give what one T-step call gives."""
    built = case.build()
    net = built.network
    y_all, final = run_network(net, built.x, built.state)
    state = built.state
    steps = []
    for t in range(built.x.shape[0]):
        y_t, state = run_network(net, built.x[t : t + 1], state)
        steps.append(y_t)
    y_steps = steps[-1] if net.many_to_one else np.concatenate(steps)
    np.testing.assert_allclose(y_steps, y_all, rtol=1e-6, atol=1e-7)
    for a, b in zip(state, final):
        for sa, sb in zip(a, b):
            np.testing.assert_allclose(sa, sb, rtol=1e-6, atol=1e-7)


# -- activations ---------------------------------------------------------------------------------
def _exact(kind: str, x: np.ndarray, a: float, b: float) -> np.ndarray:
    """The activation table of docs/format.md, in float64."""
    x = x.astype(np.float64)
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    with np.errstate(over="ignore"):
        table = {
            "Identity": x,
            "Sigmoid": 1 / (1 + np.exp(-x)),
            "Tanh": np.tanh(x),
            "Relu": np.maximum(0, x),
            "LeakyRelu": np.where(x >= 0, x, a * x),
            "ThresholdedRelu": np.where(x > a, x, 0),
            "ScaledTanh": a * np.tanh(b * x),
            "HardSigmoid": np.maximum(0, np.minimum(1, a * x + b)),
            "Elu": np.where(x >= 0, x, a * (np.exp(np.minimum(x, 0)) - 1)),
            "Softsign": x / (1 + np.abs(x)),
            "Softplus": np.logaddexp(0, x),
            "Affine": a * x + b,
            "Clip": np.minimum(b, np.maximum(a, x)),
            "Softmax": e / e.sum(axis=-1, keepdims=True),
            "LogSoftmax": np.log(e / e.sum(axis=-1, keepdims=True)),
        }
    return table[kind]


@pytest.mark.parametrize("kind", sorted(set(ACTIVATION_FUNCS) - set(GRAPH_ACTIVATIONS)))
def test_activation_formula_and_range(kind):
    """float32 result equal to the float64 formula, and no overflow even at |x| = 100."""
    x = np.concatenate([np.linspace(-8, 8, 97), [-100, -30, -0.0, 0.0, 30, 100]]).astype(np.float32)
    x = x.reshape(1, 1, -1)
    a, b = (-0.5, 0.75) if kind == "Clip" else (0.3, 0.6)
    with np.errstate(over="raise", invalid="raise", divide="raise"):  # underflow is fine
        y = activate(x, Act(kind, a, b))
    assert y.dtype == np.float32 and y.shape == x.shape
    want = _exact(kind, x, np.float32(a), np.float32(b))
    np.testing.assert_allclose(y, want, rtol=2e-6, atol=2e-7, err_msg=kind)


@pytest.mark.parametrize("kind", GRAPH_ACTIVATIONS)
def test_graph_activation_formula(kind):
    """The elementwise kinds of graphs, against float64 math on their domain."""
    x = np.linspace(0.05, 8, 101).astype(np.float32)
    if kind in ("Abs", "Neg", "Erf", "Exp"):
        x = np.concatenate([-x, x])
    x64 = x.astype(np.float64)
    want = {
        "Abs": np.abs, "Neg": np.negative, "Sqrt": np.sqrt, "Reciprocal": lambda v: 1 / v,
        "Exp": np.exp, "Log": np.log, "Erf": lambda v: np.array([math.erf(e) for e in v]),
        "Pow": lambda v: np.power(v, 1.5),
    }[kind](x64)
    y = activate(x, Act.make(kind, 1.5 if kind == "Pow" else None))
    assert y.dtype == np.float32
    np.testing.assert_allclose(y, want, rtol=2e-6, atol=2e-7, err_msg=kind)


def test_thresholded_relu_is_strict_and_leaky_relu_keeps_zero():
    x = np.array([0.3, 0.30001, 0.0, -1.0], np.float32)
    np.testing.assert_array_equal(activate(x, Act("ThresholdedRelu", 0.3)), [0, x[1], 0, 0])
    np.testing.assert_array_equal(activate(x, Act("LeakyRelu", 0.5)), [x[0], x[1], 0, -0.5])


def test_lstm_input_forget_couples_gates():
    """With input_forget, f = 1 - i exactly: a cell with i = 1 forgets everything."""
    H, I = 3, 2
    W = np.zeros((4 * H, I), np.float32)
    R = np.zeros((4 * H, H), np.float32)
    B = np.zeros(8 * H, np.float32)
    B[:H] = 50.0  # i pre-activation: i = sigmoid(50) = 1
    B[3 * H : 4 * H] = 0.5  # cell gate input: g = tanh(0.5)
    acts = [Act.make("Sigmoid"), Act.make("Tanh"), Act.make("Tanh")]
    c0 = np.full((1, H), 7.0, np.float32)
    _, c = lstm_step(np.zeros((1, I), np.float32), np.zeros((1, H), np.float32), c0, W, R, B,
                     None, acts, input_forget=True)  # fmt: skip
    np.testing.assert_allclose(c, np.tanh(np.float32(0.5)) * np.ones((1, H)), rtol=1e-6)


# -- ONNX activation attributes, read as onnxruntime reads them ----------------------------------
def test_cell_activations_defaults_and_names():
    A = Act.make
    assert cell_activations("lstm", "bidirectional") == [[A("Sigmoid"), A("Tanh"), A("Tanh")]] * 2
    assert cell_activations("gru", "forward", ["sigmoid", "TANH"]) == [[A("Sigmoid"), A("Tanh")]]
    # an RNN with one direction and ONNX's two default names uses the first
    assert cell_activations("rnn", "forward", ["Relu", "Tanh"]) == [[A("Relu")]]


def test_cell_activations_consume_parameters_in_order_over_directions():
    names = ["LeakyRelu", "Tanh", "ScaledTanh", "Sigmoid", "HardSigmoid", "Elu"]
    (fwd, rev) = cell_activations("lstm", "bidirectional", names, [0.3, 1.5, 0.4], [0.7])
    assert fwd == [Act("LeakyRelu", 0.3), Act("Tanh"), Act("ScaledTanh", 1.5, 0.7)]
    # the lists ran out: onnxruntime's defaults (HardSigmoid beta 0.5, Elu alpha 1.0)
    assert rev == [Act("Sigmoid"), Act("HardSigmoid", 0.4, 0.5), Act("Elu", 1.0)]
    # onnxruntime's defaults, not the standalone ops': ThresholdedRelu 0, Affine 0, 0
    ((thr,),) = cell_activations("rnn", "forward", ["ThresholdedRelu"])
    assert thr == Act("ThresholdedRelu", 0.0)
    ((tanh, aff),) = cell_activations("gru", "forward", ["Tanh", "Affine"])
    assert aff == Act("Affine", 0.0, 0.0)


@pytest.mark.parametrize(
    "cell, direction, names, alphas, message",
    [
        ("lstm", "forward", ["Sigmoid", "Tanh", "Swish"], None, "LSTM activation 'Swish' is not"),
        ("gru", "bidirectional", ["Sigmoid", "Tanh"], None, "a bidirectional GRU takes 4"),
        ("lstm", "forward", ["Sigmoid", "Tanh", "Tanh"], [0.0, 0.0, 0.1],
         r"leave activation_alpha \[0.0, 0.0, 0.1\]"),
        ("rnn", "bidirectional", ["Tanh", "LeakyRelu"], [0.0, 0.1],
         r"leave activation_alpha \[0.1\]"),
    ],
)  # fmt: skip
def test_cell_activations_refuse_what_they_cannot_read(cell, direction, names, alphas, message):
    with pytest.raises(UnsupportedOpError, match=message):
        cell_activations(cell, direction, names, alphas)


# -- state and input handling --------------------------------------------------------------------
def _case(name: str) -> Built:
    return next(c for c in CASES if c.name == name).build()


def test_initial_state_broadcasts_layer_initial_values():
    built = _case("lstm_bidirectional_peepholes_initial_states")
    layer = built.network.layers[0]
    (h, c), = initial_state(built.network, batch=3)
    assert h.shape == c.shape == (2, 3, layer.hidden)
    np.testing.assert_array_equal(h[:, 2], layer.initial_h)
    np.testing.assert_array_equal(c[:, 0], layer.initial_c)
    y_default, _ = run_network(built.network, built.x)
    y_given, _ = run_network(built.network, built.x, initial_state(built.network, 2))
    np.testing.assert_array_equal(y_default, y_given)


def test_given_state_is_used_and_not_modified():
    built = _case("gru_state_inputs")
    before = [tuple(a.copy() for a in s) for s in built.state]
    y1, final = run_network(built.network, built.x, built.state)
    y0, _ = run_network(built.network, built.x)  # zeros
    assert np.max(np.abs(y1 - y0)) > 1e-3
    np.testing.assert_array_equal(built.state[0][0], before[0][0])
    assert final[0][0] is not built.state[0][0]


def test_empty_sequence():
    built = _case("lstm_state_inputs")
    x = np.zeros((0, 2, 3), np.float32)
    y, final = run_network(built.network, x, built.state)
    assert y.shape == (0, 2, 10 // 2)
    np.testing.assert_array_equal(final[0][1], built.state[0][1])
    with pytest.raises(InputError, match="sequence is empty"):
        run_network(_case("lstm_yh").network, x)


@pytest.mark.parametrize(
    "x, state, message",
    [
        (np.zeros((4, 2)), None, r"shape \[T, B, 3\], got float64 \[4, 2\]"),
        (np.zeros((4, 2, 5)), None, r"shape \[T, B, 3\]"),
        (np.zeros((4, 2, 3), "U1"), None, "expected a float array"),
        (np.zeros((4, 2, 3)), [], r"one entry per recurrent layer \(1\), got 0"),
        (np.zeros((4, 2, 3)), [(np.zeros((1, 2, 5)),)], r"expected 2 arrays \(h, c\), got 1"),
        (np.zeros((4, 2, 3)), [(np.zeros((1, 2, 5)), np.zeros((1, 3, 5)))],
         r"c \(layer 0\): expected a float array of shape \[1, 2, 5\]"),
    ],
)  # fmt: skip
def test_bad_input_or_state_names_the_fault(x, state, message):
    with pytest.raises(InputError, match=message):
        run_network(_case("lstm_forward").network, x, state)


def test_invalid_network_is_refused():
    """run_network applies the writer's validation: it runs only what a blob can hold."""
    layer = _case("gru_forward").network.layers[0]
    bad = dataclasses.replace(layer, activations=[[Act.make("Softmax"), Act.make("Tanh")]])
    net = Network([bad], TensorSpec("x", "TBF", [None, None, 3]), TensorSpec("y", "TBF", []))
    message = r"layer 0 \(Recurrent\): .*Softmax.*not allowed in a cell"
    with pytest.raises(ConvertError, match=message):
        run_network(net, np.zeros((2, 1, 3), np.float32))


def test_dense_and_take_last_split():
    w = np.arange(6, dtype=np.float32).reshape(3, 2)
    x = np.arange(2 * 1 * 4, dtype=np.float32).reshape(2, 1, 4)
    layers = [TakeLast(4, 1), Dense(np.ones((3, 4), np.float32)), Activation(Act.make("Relu"), 3)]
    net = Network(layers, TensorSpec("x", "TBF", [None, None, 4]), TensorSpec("y", "BF", [None, 3]))
    y, _ = run_network(net, x)
    # feature 0 from the last step (4), features 1..3 from the first (1, 2, 3)
    np.testing.assert_array_equal(y, np.full((1, 1, 3), 4 + 1 + 2 + 3, np.float32))
    y2, _ = run_network(Network([Dense(w, None)], net.input, net.output), x[:, :, :2])
    np.testing.assert_array_equal(y2, x[:, :, :2] @ w.T)
