"""Models from the real exporters (tests/data/fixtures, made by tools/make_fixtures.py): each
converts, and runs to onnxruntime's stored output, whole and (where streamable) step by step;
each model rnnedge must refuse fails with its named error.

An engine runs a converted Network on arrays in the graph's own layout. `ENGINES` holds the
numpy reference; a second engine (the C runtime through the Python API) plugs in by adding an
object with the same two methods.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable, Protocol

import numpy as np
import pytest

from rnnedge.blob.write import write_blob
from rnnedge.converter import to_network
from rnnedge.errors import UnsupportedOpError
from rnnedge.ir.layers import Network, Recurrent, from_tbf, to_tbf
from rnnedge.model import Model, Stream
from rnnedge.reference import initial_state, run_network

FIXTURES = Path(__file__).parent / "data" / "fixtures"
INDEX = json.loads((FIXTURES / "index.json").read_text())
GOOD = [e for e in INDEX if not e["error"]]
REFUSED = [e for e in INDEX if e["error"]]
TOL = 1e-5  # max abs error relative to the output's scale, max(1, max |expected|)


def out_dirs(net: Network) -> int:
    return int(net.output.shape[net.output.axes.index("D")]) if "D" in net.output.axes else 1


# -- engines ------------------------------------------------------------------------------------
class Engine(Protocol):
    name: str

    def run(self, net: Network, x: np.ndarray, state: dict[str, np.ndarray]
            ) -> tuple[np.ndarray, dict[str, np.ndarray]]:  # fmt: skip
        """x and the result in the graph's layout; state: graph state inputs by name (h0, c0).
        Returns the output and the final states by graph output name (hn, cn)."""

    def stream(self, net: Network, batch: int, state: dict[str, np.ndarray]
               ) -> Callable[[np.ndarray], np.ndarray]:  # fmt: skip
        """A step function: one timestep (the graph layout without T) -> that step's output."""


def _layer_states(net: Network, state: dict[str, np.ndarray], batch: int) -> list:
    """Graph state inputs -> run_network's per-layer state. StateSpecs sharing one name take
    consecutive row blocks of that input, in layer order."""
    states = [list(s) for s in initial_state(net, batch)]
    recurrent = [i for i, l in enumerate(net.layers) if isinstance(l, Recurrent)]
    used: dict[str, int] = {}
    for spec in net.state:
        dirs = net.layers[spec.layer].num_directions
        row = used.get(spec.name, 0)
        used[spec.name] = row + dirs
        states[recurrent.index(spec.layer)][0 if spec.kind == "h" else 1] = state[spec.name][row : row + dirs]
    return [tuple(s) for s in states]


def _final_outputs(net: Network, final: list) -> dict[str, np.ndarray]:
    recurrent = [i for i, l in enumerate(net.layers) if isinstance(l, Recurrent)]
    blocks: dict[str, list[np.ndarray]] = {}
    for spec in net.state:
        if spec.output:
            blocks.setdefault(spec.output, []).append(final[recurrent.index(spec.layer)][0 if spec.kind == "h" else 1])
    return {name: np.concatenate(parts, axis=0) for name, parts in blocks.items()}


class ReferenceEngine:
    """rnnedge.reference.run_network, the float32 numpy oracle."""

    name = "reference"

    def run(self, net, x, state):
        xt = to_tbf(x, net.input.axes)
        y, final = run_network(net, xt, _layer_states(net, state, xt.shape[1]))
        return from_tbf(y, net.output.axes, out_dirs(net)), _final_outputs(net, final)

    def stream(self, net, batch, state):
        carried = [_layer_states(net, state, batch)]
        in_axes = net.input.axes.replace("T", "")
        out_axes = net.output.axes.replace("T", "")

        def step(x_t: np.ndarray) -> np.ndarray:
            xt = to_tbf(x_t[None] if "T" in net.input.axes else x_t, "T" + in_axes)
            y, carried[0] = run_network(net, xt, carried[0])
            return from_tbf(y, out_axes, out_dirs(net)) if out_axes else y[0, 0]

        return step


class RuntimeEngine:
    """The C runtime through the public Python API, on the blob the writer makes of the Network."""

    name = "runtime"

    def _model(self, net: Network) -> Model:
        return Model.from_bytes(write_blob(net), source=net.name)

    def run(self, net, x, state):
        model = self._model(net)
        batch = x.shape[net.input.axes.index("B")] if "B" in net.input.axes else 1
        stream = Stream(model, batch)  # also for models that cannot step: run keeps the final state
        stream.state = state
        y = stream.run(x)
        outputs = {s.name: s.output for s in net.state if s.output}
        return y, {outputs[k]: v for k, v in stream.state.items() if k in outputs}

    def stream(self, net, batch, state):
        s = self._model(net).stream(batch)
        s.state = state
        return s.step


ENGINES: list[Engine] = [ReferenceEngine(), RuntimeEngine()]


# -- the checks -----------------------------------------------------------------------------------
def load(entry: dict) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray], dict[str, np.ndarray]]:
    name = entry["name"]
    x = np.load(FIXTURES / f"{name}.input.npy")
    expected = np.load(FIXTURES / f"{name}.expected.npy")
    state = dict(np.load(FIXTURES / f"{name}.state.npz")) if entry["state"] else {}
    final = dict(np.load(FIXTURES / f"{name}.final.npz")) if entry["state"] else {}
    return x, expected, state, final


def assert_close(got: np.ndarray, want: np.ndarray, what: str) -> None:
    assert got.shape == want.shape, f"{what}: shape {got.shape} != {want.shape}"
    scale = max(1.0, float(np.max(np.abs(want))))
    err = float(np.max(np.abs(got - want)))
    assert err <= TOL * scale, f"{what}: max abs error {err:.3g} > {TOL} x {scale:.3g}"


@pytest.fixture(scope="module")
def networks() -> dict[str, Network]:
    return {e["name"]: to_network(FIXTURES / f"{e['name']}.onnx", fixed=e.get("fixed")) for e in GOOD}


@pytest.mark.parametrize("engine", ENGINES, ids=lambda e: e.name)
@pytest.mark.parametrize("entry", GOOD, ids=lambda e: e["name"])
def test_fixture_runs_like_onnxruntime(entry, engine, networks):
    net = networks[entry["name"]]
    assert net.input.name == entry["input"]
    assert net.streamable == entry["streamable"]
    x, expected, state, final = load(entry)
    y, finals = engine.run(net, x, state)
    assert_close(y, expected, f"{entry['name']} run")
    for name, want in final.items():
        assert_close(finals[name], want, f"{entry['name']} final {name}")


STREAMABLE = [e for e in GOOD if e["streamable"]]


@pytest.mark.parametrize("engine", ENGINES, ids=lambda e: e.name)
@pytest.mark.parametrize("entry", STREAMABLE, ids=lambda e: e["name"])
def test_fixture_steps_like_onnxruntime(entry, engine, networks):
    """Step by step: each step's output equals the whole run's at that step (a many-to-one
    model: the last step's output equals the whole run's output)."""
    net = networks[entry["name"]]
    x, expected, state, _ = load(entry)
    t_axis = net.input.axes.index("T")
    batch = x.shape[net.input.axes.index("B")] if "B" in net.input.axes else 1
    step = engine.stream(net, batch, state)
    outputs = [step(np.take(x, t, axis=t_axis)) for t in range(x.shape[t_axis])]
    if "T" in net.output.axes and not net.many_to_one:
        got = np.stack(outputs, axis=net.output.axes.index("T"))
    else:
        got = outputs[-1].reshape(expected.shape)
    assert_close(got, expected, f"{entry['name']} step by step")


@pytest.mark.parametrize("entry", REFUSED, ids=lambda e: e["name"])
def test_fixture_is_refused_by_name(entry):
    with pytest.raises(UnsupportedOpError, match=entry["error"]) as e:
        to_network(FIXTURES / f"{entry['name']}.onnx")
    assert entry["name"] in str(e.value)  # the message names the file


# what issue 3 asks the fixtures to cover, as words of their "covers" lists
REQUIRED = [
    "LSTM", "GRU", "RNN tanh", "RNN relu", "2 layers", "3 layers", "4 layers", "batch_first=True",
    "batch_first=False", "bidirectional", "dropout", "every step", "out[:, -1, :]", "h_n[-1]",
    "ReLU", "Sigmoid", "Tanh", "Softmax", "LogSoftmax", "front end", "LayerNorm before",
    "LayerNorm after", "state in/out", "dynamo exporter", "Keras LSTM", "Keras GRU reset_after=True",
    "Keras GRU reset_after=False", "Keras SimpleRNN", "Keras Bidirectional", "Dense head",
    "TimeDistributed", "hard_sigmoid",
]  # fmt: skip


def test_fixtures_cover_what_the_converter_must_support():
    covered = " | ".join(c for e in INDEX for c in e["covers"])
    missing = [r for r in REQUIRED if r not in covered]
    assert not missing, f"no fixture covers {missing}"
    exporters = {e["exporter"].split(" ")[0] for e in INDEX}
    assert {"torch.onnx.export(dynamo=False)", "torch.onnx.export(dynamo=True)", "tf_keras", "Keras"} <= exporters


def test_fixture_files_are_complete_and_small():
    for e in INDEX:
        for suffix in ("onnx", "input.npy", "expected.npy") + (("state.npz", "final.npz") if e["state"] else ()):
            assert (FIXTURES / f"{e['name']}.{suffix}").is_file(), f"{e['name']}.{suffix} is missing"
    total = sum(p.stat().st_size for p in FIXTURES.iterdir())
    assert total < 2 * 1024 * 1024, f"fixtures take {total} bytes"


# -- issue 18's fixtures: every number format, streaming bit for bit --------------------------------
ISSUE18 = ["torch_lstm_opset11_unfolded_center_seq", "dynamo_lstm_side_input_sr16000",
           "dynamo_lstm_side_input_sr8000"]
INT_BARS = {"int16": 1e-3, "int8": 1e-2}  # of the float output's range (docs/quantization.md §8)


@pytest.mark.parametrize("quant", ["f32", "int16", "int8"])
@pytest.mark.parametrize("name", ISSUE18)
def test_issue18_fixture_meets_the_bars_and_streams_bit_for_bit(name, quant):
    """Converted (calibrated on its own stored input): f32 within TOL of onnxruntime, int16 and
    int8 within their bars; stepping a stream equals `run` bit for bit."""
    import warnings

    import rnnedge

    entry = next(e for e in GOOD if e["name"] == name)
    x, expected, state, _ = load(entry)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        conv = rnnedge.convert(FIXTURES / f"{name}.onnx", quant=quant, fixed=entry.get("fixed"),
                               calibration=None if quant == "f32" else x)  # fmt: skip
    model = Model.from_bytes(write_blob(conv))
    y = model.run(x)
    if quant == "f32":
        assert_close(y, expected, f"{name} f32")
    else:
        err = float(np.abs(y - expected).max() / (expected.max() - expected.min()))
        assert err <= INT_BARS[quant], f"{name} {quant}: {err:.3g} of the range"
    if entry["streamable"]:
        net = conv if quant == "f32" else conv.source
        t_axis = net.input.axes.index("T")
        s = model.stream(batch=x.shape[net.input.axes.index("B")] if "B" in net.input.axes else 1)
        steps = [s.step(np.take(x, t, axis=t_axis)) for t in range(x.shape[t_axis])]
        if "T" in net.output.axes and not net.many_to_one:
            np.testing.assert_array_equal(np.stack(steps, axis=net.output.axes.index("T")), y)
        else:
            np.testing.assert_array_equal(steps[-1].reshape(y.shape), y)
