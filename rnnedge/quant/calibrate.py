"""Calibration: the ranges the integer formats need, from representative data or defaults.

The float reference is run over the calibration inputs (`trace_network`) to find the input range
and the range of every layer whose output is unbounded (Dense, Affine, ReLU RNN, LogSoftmax,
LayerNorm), with a percentile option and a headroom factor (`Ranges`); ranges sit on a grid of
32 values per octave (rnnedge/quant/arith.py `grid_range`) so that an ulp of difference in the
float run does not change the blob. The LSTM cell state is int32 Q11.20 and needs no range.
Without calibration data the ranges fall back to documented defaults (or to static bounds from
the weights) and a CalibrationWarning says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import InputError
from ..ir.layers import FloatLayer, Network, Recurrent
from ..ir.layers import to_tbf as tbf
from ..reference import initial_state, run_layer, run_recurrent
from .arith import grid_range

DEFAULT_INPUT_RANGE = 8.0  # |x| assumed without calibration data
DEFAULT_RELU_RANGE = 8.0  # |h| of a ReLU RNN assumed without calibration data
HEADROOM = 2.0  # calibrated ranges are multiplied by this: real data outlives the calibration set
SYNTH_STEPS, SYNTH_BATCH = 64, 8  # synthetic input for the per-layer error without calibration

class CalibrationWarning(UserWarning):
    """A range fell back to its default because no calibration data was given. The message names
    the Python fix (API_FIX); the command line prints it with its own (`for_cli`)."""

    API_FIX = "Pass calibration= (representative inputs) to measure these ranges."
    CLI_FIX = "Pass --calib X.npy (representative inputs, in the ONNX input's layout) to measure these ranges."

    @classmethod
    def assumed(cls, defaults: list[str]) -> "CalibrationWarning":
        return cls("no calibration data: assumed " + "; ".join(defaults) + ". " + cls.API_FIX)

    def for_cli(self) -> str:
        return str(self).replace(self.API_FIX, self.CLI_FIX)


# -- calibration ------------------------------------------------------------------------------
def to_tbf(x: np.ndarray, axes: str, what: str = "calibration") -> np.ndarray:
    """An input in the model's own layout (axes letters T, B, F) -> float32 [T, B, F]."""
    x = np.asarray(x)
    if x.dtype.kind not in "fiu" or x.ndim != len(axes) or set(axes) - set("TBF"):
        raise InputError(
            f"{what}: expected a numeric array in the model's input layout {axes!r} "
            f"({len(axes)} axes), got {x.dtype} {list(x.shape)}"
        )
    out = tbf(x, axes).astype(np.float32)
    if not np.all(np.isfinite(out)):
        raise InputError(f"{what}: the data holds NaN or infinite values")
    return out


@dataclass
class Trace:
    """What the float reference saw at one layer: its input and its output, [T, B, F]."""

    x: np.ndarray
    y: np.ndarray


def trace_network(net: Network, x: np.ndarray) -> list[Trace]:
    """Run the float reference layer by layer over x [T, B, F] from the initial state, keeping
    each layer's input and output."""
    from ..progress import Progress

    traces = []
    with Progress(len(net.layers), "calibrating: the float model, layer by layer") as bar:
        for i, layer in enumerate(net.layers):
            bar.update(f"layer {i} {type(layer).__name__}", advance=0)
            y = run_float_layer(net, layer, x)
            traces.append(Trace(x, y))
            x = y
            bar.update(f"layer {i} {type(layer).__name__}")
    return traces


def run_float_layer(net: Network, layer: FloatLayer, x: np.ndarray) -> np.ndarray:
    """One float layer of `net` over x [T, B, F], a recurrent one from its initial state."""
    if isinstance(layer, Recurrent):
        state = initial_state(Network([layer], net.input, net.output), x.shape[1])[0]
        y, _ = run_recurrent(layer, x, state)
        return y
    return run_layer(layer, x)


def _absmax(v: np.ndarray, percentile: float) -> float:
    a = np.abs(np.asarray(v, np.float64)).ravel()
    if a.size == 0:
        return 0.0
    return float(np.percentile(a, percentile)) if percentile < 100 else float(a.max())


@dataclass
class Ranges:
    """How a range is found: from the calibration data (a percentile of |values| times the
    headroom), or, without data, a documented default that is reported in the warning."""

    calibrated: bool
    percentile: float
    headroom: float
    defaults: list[str] = field(default_factory=list)

    def of(self, values: np.ndarray | None, default: float, what: str) -> float:
        if self.calibrated and values is not None:
            return grid_range(max(_absmax(values, self.percentile) * self.headroom, 1e-6), up=False)
        self.defaults.append(f"{what} <= {default}")
        return default


def measurement_input(net: Network, calibration: np.ndarray | None) -> np.ndarray:
    """The calibration data as float32 [T, B, F], or the synthetic set used without it."""
    if calibration is None:
        rng = np.random.default_rng(0)
        x = rng.normal(0, DEFAULT_INPUT_RANGE / 4, (SYNTH_STEPS, SYNTH_BATCH, net.in_features))
        return np.clip(x, -DEFAULT_INPUT_RANGE, DEFAULT_INPUT_RANGE).astype(np.float32)
    x = to_tbf(calibration, net.input.axes)
    if x.shape[2] != net.in_features:
        raise InputError(
            f"calibration: {x.shape[2]} features per step, the model takes {net.in_features}"
        )
    if x.size == 0:
        raise InputError("calibration: the data is empty")
    return x
