"""The quantization policy: `quantize_network`, from a float Network to an integer QNetwork.

`quantize_network(net, "int8" | "int16", calibration=X)` returns a `QNetwork`: one dataclass per
layer holding the integer weights and every multiplier, shift, bias and bound the integer kernels
(rnnedge/fixedpoint.py, and the C library after it) need, so that no quantization parameter is
computed at run time. docs/quantization.md is the specification.

The integer arithmetic of each op is in rnnedge/quant/arith.py, the ranges in
rnnedge/quant/calibrate.py; this module decides and measures:

- int16: a Dense that directly feeds a recurrent layer is folded into its input weights
  (`fold_dense`), so that its output is not rounded to int16 before the cell integrates it.
- Per-layer error: each weighted layer is run in integers on the float input it sees, the rest
  in float, and the model output is held to the bar (`_Bar`: issue 4's max error, or argmax
  agreement for a classifier, with a safety factor), at every step of a streamable many-to-one
  model. With "int8" a layer that misses it is kept at int16 weights (mixed precision),
  recorded in `QNetwork.report`; strict=True refuses instead.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, replace

import numpy as np

from .. import fixedpoint as fx
from ..errors import ConvertError, InputError
from ..progress import Progress
from ..ir.layers import (
    WFMT, Activation, Dense, IntLayer, LayerNorm, LayerReport, Network, QNetwork, QSlice, QTakeLast,
    QRecurrent, Recurrent, Slice, TakeLast,
)  # fmt: skip
from .arith import (
    quantize_activation, quantize_dense, quantize_layernorm, quantize_recurrent, range_scale,
)  # fmt: skip
from .calibrate import (
    DEFAULT_INPUT_RANGE, DEFAULT_RELU_RANGE, HEADROOM, CalibrationWarning, Ranges, Trace,
    measurement_input, run_float_layer, trace_network,
)  # fmt: skip

# The documented bars on a model's output (docs/quantization.md §8, docs/converter.md): max error
# over the float output's range (`output_range`). `rnnedge verify` holds a blob to them; int8
# conversion decides per layer against them (LAYER_TOL, with SAFETY).
BARS = {"f32": 1e-5, "int16": 1e-3, "int8": 1e-2}
LAYER_TOL = {"s8": BARS["int8"], "s16": BARS["int16"]}  # the same bars, by weight format
MIN_AGREEMENT = 0.99  # a classifier's int8 bar instead: argmax agreement on this share of steps
SAFETY = 2.0  # int8 decisions on the calibration data are taken against the bar / SAFETY
CLASSIFIER_HEADS = ("Softmax", "LogSoftmax")

def output_range(y_f: np.ndarray) -> float:
    """The unit every reported error is measured in (convert's report, `rnnedge verify`, the
    bars): the float output's range, max - min over the compared data; its |max| if that is 0,
    else 1."""
    y_f = np.asarray(y_f, np.float64)
    if y_f.size == 0:
        return 1.0
    return float(y_f.max() - y_f.min()) or float(np.abs(y_f).max()) or 1.0


def _error(yq: np.ndarray, yf: np.ndarray) -> float:
    """max |yq - yf| / output_range(yf)."""
    yf = np.asarray(yf, np.float64)
    if yf.size == 0:
        return 0.0
    return float(np.abs(np.asarray(yq, np.float64) - yf).max() / output_range(yf))


def accuracy(y_q: np.ndarray, y_f: np.ndarray) -> dict[str, float]:
    """End-to-end figures, the one definition (docs/quantization.md §8): "rel_max_err" the max
    error max |y_q - y_f| and "rel_rms_err" the RMS error sqrt(mean (y_q - y_f)^2), both over
    `output_range(y_f)` ("range"), so the RMS error is never above the max error; "max_err" and
    "rms_err" the same in the output's own units; the argmax agreement over the last axis (for
    outputs of more than one feature)."""
    y_q, y_f = np.asarray(y_q, np.float64), np.asarray(y_f, np.float64)
    diff = y_q - y_f
    rng = output_range(y_f)
    out = {
        "max_err": float(np.abs(diff).max()) if diff.size else 0.0,
        "rms_err": float(np.sqrt(np.mean(diff**2))) if diff.size else 0.0,
        "range": rng,
    }
    out["rel_max_err"] = out["max_err"] / rng
    out["rel_rms_err"] = out["rms_err"] / rng
    if y_f.shape[-1] > 1 and y_f.size:
        out["argmax_agreement"] = float(np.mean(np.argmax(y_q, -1) == np.argmax(y_f, -1)))
    return out


# -- the whole network ----------------------------------------------------------------------------
def _dot64(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a [..., F] @ b [F, K] in float64, summed over F in index order one elementwise multiply
    and add at a time: IEEE-rounded operations in a fixed order, so the same bits on every
    machine (a BLAS product may sum in any order)."""
    a64, b64 = np.asarray(a, np.float64), np.asarray(b, np.float64)
    out = np.zeros(a64.shape[:-1] + b64.shape[1:], np.float64)
    for f in range(a64.shape[-1]):
        out += a64[..., f, None] * b64[f]
    return out


def fold_pair(layer: Dense, nxt: Recurrent) -> Recurrent | None:
    """`nxt` with the Dense before it folded into its input weights (see fold_dense), or None
    where the folded W would hold more weights than the two."""
    D, GH, F = nxt.W.shape
    K = layer.in_features
    if D * GH * K > D * GH * F + F * K:
        return None
    W = _dot64(nxt.W, layer.weight)  # [D, GH, K]
    B = np.zeros((D, 2 * GH)) if nxt.B is None else np.array(nxt.B, np.float64)
    if layer.bias is not None:
        B[:, :GH] += _dot64(nxt.W, np.asarray(layer.bias, np.float64)[:, None])[..., 0]
    return replace(nxt, W=W.astype(np.float32), B=B.astype(np.float32))


def fold_dense(net: Network) -> Network:
    """The network with each Dense that directly feeds a recurrent layer folded into that
    layer's input weights: W' = W A, Wb' = Wb + W a (float64 in a fixed order, then float32).
    Only where the folded W holds no more weights than the two did. The integer formats would
    otherwise round the Dense's output, and above all its bias, to an int16 LSB: a constant
    error that the recurrent layer integrates at every step (docs/quantization.md, section 7).
    State mappings follow the layers' new indices; `folded` says what was folded. Used for
    int16 only: with int8 weights the folded rows mix columns of different magnitudes (the
    example's standardisation spans 1 / 7.1 to 1 / 1.8), which cost more than the bias saves."""
    layers: list = []
    folded = list(net.folded)
    shift: dict[int, int] = {}
    i = 0
    while i < len(net.layers):
        layer, nxt = net.layers[i], net.layers[i + 1] if i + 1 < len(net.layers) else None
        if isinstance(layer, Dense) and isinstance(nxt, Recurrent):
            f = fold_pair(layer, nxt)
            if f is not None:
                layers.append(f)
                folded.append(f"Dense layer {i} ({layer.in_features} -> {layer.out_features}) "
                              f"into the input weights of the {nxt.cell.upper()} after it (int16)")
                shift[i + 1] = len(layers) - 1
                i += 2
                continue
        shift[i] = len(layers)
        layers.append(layer)
        i += 1
    if len(layers) == len(net.layers):
        return net
    state = [replace(s, layer=shift[s.layer]) for s in net.state]
    return replace(net, layers=layers, state=state, folded=folded)


def _run_q_layer(q: IntLayer, x_float: np.ndarray, s_in: float) -> np.ndarray:
    """Run one quantized layer on a float input (quantized at s_in), dequantized output."""
    xq = fx.quantize(x_float, s_in)
    if isinstance(q, QRecurrent):
        yq, _ = fx.recurrent_q(q, xq, fx.layer_initial_state(q, xq.shape[1]))
    else:
        yq = fx.layer_q(q, xq)
    return fx.dequantize(yq, q.out_scale)


def _layer_name(i: int, layer: object) -> tuple[str, str]:
    """("layer 3 (LSTM)", "LSTM") for messages and the report."""
    kind = layer.cell.upper() if isinstance(layer, Recurrent) else type(layer).__name__
    return f"layer {i} ({kind})", kind


def _weighted(layer: Dense | Recurrent, wfmt: str, s_in: float, tr: Trace, ranges: Ranges,
              where: str) -> IntLayer:  # fmt: skip
    """A Dense or recurrent layer with `wfmt` weights, its ranges calibrated or defaulted."""
    if isinstance(layer, Dense):
        if ranges.calibrated:
            r = ranges.of(tr.y, 0.0, "")
        else:  # the static bound: every input at its extreme, matched to the weight's sign
            w = np.abs(np.asarray(layer.weight, np.float64)).sum(axis=1) * 32767 * s_in
            b = 0.0 if layer.bias is None else np.abs(np.asarray(layer.bias, np.float64))
            r = max(float((w + b).max(initial=0)), 1e-6)
        return quantize_dense(layer, wfmt, s_in, range_scale(r), where)
    s_h = fx.Q15_SCALE
    if layer.cell == "rnn" and layer.activations[0][0].kind == "Relu":
        s_h = range_scale(ranges.of(tr.y, DEFAULT_RELU_RANGE, f"{where} hidden |h|"))
    return quantize_recurrent(layer, wfmt, s_in, s_h, where)


def _float_tail(net: Network, start: int, y: np.ndarray) -> np.ndarray:
    """Run the float layers net.layers[start:] over y [T, B, F] (recurrent ones from their
    initial state): what the model outputs when everything before `start` gave y."""
    for layer in net.layers[start:]:
        y = run_float_layer(net, layer, y)
    return y


@dataclass
class _Bar:
    """What the int8 fallback holds the model output to (docs/quantization.md §8). Issue 4's bar
    is a max error of 1e-2 of the float output's range, or for a classifier (a Softmax or
    LogSoftmax head) argmax agreement on 99% of steps; decisions divide the allowance by SAFETY,
    since data beyond the calibration set gives larger errors than the set itself."""

    tol: float  # max error / range allowed (regression)
    disagree: float | None = None  # share of argmax disagreements allowed (classifier), else None

    def misses(self, err: float, agree: float | None) -> bool:
        if self.disagree is not None and agree is not None:
            return 1.0 - agree > self.disagree
        return err > self.tol

    def __str__(self) -> str:
        if self.disagree is not None:
            return f"argmax agreement >= {100 * (1 - self.disagree):g}%"
        return f"max error {self.tol:g}"


def _bar(net: Network, quant: str, layer_tol: float | None) -> _Bar:
    if layer_tol is not None:  # the caller's own tolerance, taken as it is
        return _Bar(layer_tol)
    if quant != "int8":  # nothing to fall back to: the bar only labels the report
        return _Bar(LAYER_TOL[WFMT[quant]])
    head = net.layers[-1]
    if isinstance(head, Activation) and head.act.kind in CLASSIFIER_HEADS and head.features > 1:
        return _Bar(LAYER_TOL["s8"], (1.0 - MIN_AGREEMENT) / SAFETY)
    return _Bar(LAYER_TOL["s8"] / SAFETY)


def _agreement(y_q: np.ndarray, y_f: np.ndarray) -> float | None:
    if y_f.shape[-1] < 2 or y_f.size == 0:
        return None
    return float(np.mean(np.argmax(y_q, -1) == np.argmax(y_f, -1)))


@dataclass
class _Measured:
    q: IntLayer
    error: float  # the layer's own output
    output_error: float  # at the model output, the other layers float
    agreement: float | None  # argmax agreement there (outputs of several features)

    def effect(self) -> str:
        text = f"{self.output_error:.3g} of the model output's range"
        return text if self.agreement is None else f"{text}, argmax agreement {100 * self.agreement:.2f}%"


def _measure(q: IntLayer, i: int, net: Network, tr: Trace, s_in: float, y_out: np.ndarray) -> _Measured:
    y = _run_q_layer(q, tr.x, s_in)
    tail = _float_tail(net, i + 1, y)
    return _Measured(q, _error(y, tr.y), _error(tail, y_out), _agreement(tail, y_out))


def _choose_precision(layer: Dense | Recurrent, i: int, net: Network, quant: str, s_in: float,
                      tr: Trace, y_out: np.ndarray, ranges: Ranges, bar: _Bar, strict: bool,
                      where: str) -> tuple[_Measured, str]:  # fmt: skip
    """Quantize with the format's weights and measure the layer's effect on the model output
    (this layer in integers, the others float). With int8, a layer whose effect misses the bar
    keeps int16 weights (or is refused, when strict)."""
    m = _measure(_weighted(layer, WFMT[quant], s_in, tr, ranges, where), i, net, tr, s_in, y_out)
    if not bar.misses(m.output_error, m.agreement):
        return m, ""
    if quant != "int8":
        return m, f"misses the bar ({bar}) at the model output"
    if strict:
        raise ConvertError(
            f"{where}: int8 weights give {m.effect()}, missing the bar ({bar}); strict int8 "
            "refuses (without strict this layer keeps int16 weights)"
        )
    quiet = Ranges(ranges.calibrated, ranges.percentile, ranges.headroom)  # defaults said once
    m16 = _measure(_weighted(layer, "s16", s_in, tr, quiet, where), i, net, tr, s_in, y_out)
    judged = "" if ranges.calibrated else (
        "; judged on synthetic N(0, 2^2) inputs for want of calibration data: pass the model's own "
        "(calibration=, --calib) to judge it on those"
    )
    return m16, (
        f"kept at int16 weights: int8 weights gave {m.effect()} (bar: {bar}); int16 weights give "
        f"{m16.effect()}{judged}"
    )


def per_step(layers: list) -> list:
    """The layers of a streamable many-to-one model with its TakeLast replaced by a pass-through
    Slice, so that the model outputs at every step what `Stream.step` returns there. The bar is
    about steps, so the converter measures (and calibrates the head) on these."""
    out = []
    for layer in layers:
        if isinstance(layer, TakeLast) and layer.split == layer.features:
            out.append(Slice(layer.features, 0, layer.features))
        elif isinstance(layer, QTakeLast) and layer.split == layer.features:
            out.append(QSlice(layer.features, 0, layer.features, layer.scale))
        else:
            out.append(layer)
    return out


def _per_step_measured(net: Network) -> bool:
    """Whether the measurement takes every step's output: a streamable many-to-one model."""
    return net.streamable and net.many_to_one


def _measuring_network(net: Network) -> Network:
    if not _per_step_measured(net):
        return net
    return Network(per_step(net.layers), net.input, net.output, net.name)


def _run_measured(qnet: QNetwork, x: np.ndarray) -> np.ndarray:
    """The integer model's output on x as the measurement sees it (every step, see per_step)."""
    if not _per_step_measured(qnet.source):
        return fx.run_quantized(qnet, x)
    stepwise = QNetwork(per_step(qnet.layers), qnet.in_scale, qnet.out_scale, qnet.quant, qnet.source)
    return fx.run_quantized(stepwise, x)


def quantize_network(
    net: Network,
    quant: str = "int8",
    calibration: np.ndarray | None = None,
    *,
    percentile: float = 100.0,
    strict: bool = False,
    layer_tol: float | None = None,
    headroom: float = HEADROOM,
) -> QNetwork:
    """Quantize a float Network for `quant` ("int8" or "int16").

    calibration: representative inputs in the model's input layout (`net.input.axes`, e.g.
    [N, T, F] for "BTF"). Each calibrated range is the `percentile` of |values| (100 = the
    maximum) times `headroom` (default 2: one bit of the 15 buys tolerance for inputs and cell
    states beyond what the calibration set shows). With "int8", a layer whose int8 weights miss the
    bar at the model output keeps int16 weights; the bar is a max error of 1e-2 / SAFETY of the
    float output's range, or for a Softmax/LogSoftmax head argmax disagreement on at most
    1% / SAFETY of the steps; `layer_tol` replaces it with a max error taken as given. strict:
    refuse (ConvertError) instead of keeping int16 weights.
    """
    if quant not in WFMT:
        raise InputError(f"quant={quant!r}: the integer formats are {', '.join(WFMT)}")
    if not 0 < percentile <= 100:
        raise InputError(f"percentile={percentile}: must be in (0, 100]")
    if not headroom >= 1:
        raise InputError(f"headroom={headroom}: must be >= 1")
    net.check()
    if quant == "int16":
        net = fold_dense(net)
    bar = _bar(net, quant, layer_tol)
    ranges = Ranges(calibration is not None, percentile, headroom)
    x = measurement_input(net, calibration)
    mnet = _measuring_network(net)
    traces = trace_network(mnet, x)
    y_out = traces[-1].y
    s_in = q_in = range_scale(ranges.of(x, DEFAULT_INPUT_RANGE, "input |x|"))
    layers: list[IntLayer] = []
    report: list[LayerReport] = []
    with Progress(len(net.layers), f"{quant}: quantizing and checking each layer's accuracy") as checks:
        for i, (layer, tr) in enumerate(zip(net.layers, traces)):
            where, kind = _layer_name(i, layer)
            checks.update(where, advance=0)
            q: IntLayer
            err: float | None = None
            note = ""
            out_err: float | None = None
            if isinstance(layer, (Dense, Recurrent)):
                m, note = _choose_precision(layer, i, mnet, quant, s_in, tr, y_out, ranges, bar, strict, where)
                q, err, out_err = m.q, m.error, m.output_error
                if note.startswith("kept"):
                    warnings.warn(f"{where}: {note}", stacklevel=2)
            elif isinstance(layer, Activation):
                out_range = None
                if ranges.calibrated and layer.act.kind in ("Affine", "LogSoftmax"):
                    out_range = ranges.of(tr.y, 0.0, "")
                q = quantize_activation(layer, s_in, out_range, where)
                err = _error(_run_q_layer(q, tr.x, s_in), tr.y)
            elif isinstance(layer, TakeLast):
                q = QTakeLast(layer.features, layer.split, s_in)
            elif isinstance(layer, Slice):
                q = QSlice(layer.features, layer.start, layer.stop, s_in)
            elif isinstance(layer, LayerNorm):
                out_range = ranges.of(tr.y, 0.0, "") if ranges.calibrated else None
                q = quantize_layernorm(layer, s_in, out_range, where)
                err = _error(_run_q_layer(q, tr.x, s_in), tr.y)
            else:  # pragma: no cover - Network.check() knows every layer type
                raise ConvertError(f"{where}: unknown layer type")
            layers.append(q)
            report.append(LayerReport(i, kind, q.wfmt, err, out_err, note))
            s_in = q.out_scale
            checks.update(where)
    qnet = QNetwork(layers, q_in, s_in, quant, net, report, calibrated=ranges.calibrated)
    if ranges.defaults:
        warnings.warn(CalibrationWarning.assumed(ranges.defaults), stacklevel=2)
    qnet.accuracy = accuracy(_run_measured(qnet, x), y_out)
    if quant == "int8":
        _meet_the_bar(qnet, mnet, x, y_out, traces, bar, strict)
    return qnet


def _meet_the_bar(qnet: QNetwork, mnet: Network, x: np.ndarray, y_out: np.ndarray,
                  traces: list[Trace], bar: _Bar, strict: bool) -> None:  # fmt: skip
    """Each int8 layer met the bar alone; if together they miss it at the model output, move the
    int8 layer with the largest effect to int16 weights, until the network meets it."""
    while bar.misses(qnet.accuracy["rel_max_err"], qnet.accuracy.get("argmax_agreement")):
        int8 = [r for r in qnet.report if r.wfmt == "s8" and r.output_error is not None]
        if not int8:
            return
        worst = max(int8, key=lambda r: r.output_error or 0.0)
        where, _ = _layer_name(worst.index, mnet.layers[worst.index])
        total = f"{qnet.accuracy['rel_max_err']:.3g} of the model output's range"
        if "argmax_agreement" in qnet.accuracy:
            total += f", argmax agreement {100 * qnet.accuracy['argmax_agreement']:.2f}%"
        if strict:
            raise ConvertError(
                f"the int8 layers together give {total}, missing the bar ({bar}); the largest "
                f"part is {where}'s; strict int8 refuses"
            )
        layer, q_old = mnet.layers[worst.index], qnet.layers[worst.index]
        assert isinstance(layer, (Dense, Recurrent))
        q16 = _rebuild_s16(layer, q_old, where)
        m = _measure(q16, worst.index, mnet, traces[worst.index], q_old.in_scale, y_out)
        qnet.layers[worst.index] = q16
        worst.wfmt, worst.error, worst.output_error = "s16", m.error, m.output_error
        worst.note = (
            f"kept at int16 weights: the int8 layers together gave {total} (bar: {bar}), this "
            "one the largest part"
        )
        warnings.warn(f"{where}: {worst.note}", stacklevel=3)
        qnet.accuracy = accuracy(_run_measured(qnet, x), y_out)


def _rebuild_s16(layer: Dense | Recurrent, q: IntLayer, where: str) -> IntLayer:
    """The same layer with int16 weights and the same scales as `q`."""
    if isinstance(layer, Dense):
        return quantize_dense(layer, "s16", q.in_scale, q.out_scale, where)
    return quantize_recurrent(layer, "s16", q.in_scale, q.out_scale, where)


def describe(qnet: QNetwork) -> str:
    """A few lines for the CLI: format per layer, measured errors, end-to-end accuracy."""
    lines = [f"quant {qnet.quant} ({'calibrated' if qnet.calibrated else 'default ranges'}), "
             f"input scale {qnet.in_scale:.4g}, output scale {qnet.out_scale:.4g}"]
    for r in qnet.report:
        err = "" if r.error is None else f" error {r.error:.2e}"
        if r.output_error is not None:
            err += f" (at the output {r.output_error:.2e})"
        lines.append(f"  layer {r.index} {r.kind:<10} {r.wfmt}{err}{'  ' + r.note if r.note else ''}")
    if qnet.accuracy:
        lines.append("  end to end: " + figures(qnet.accuracy))
        lines.append("    measured " + ("on the calibration data" if qnet.calibrated else
                     "on a synthetic input (no calibration data: pass --calib X.npy)")
                     + " at every step, the integer model against the float one in numpy; data "
                     "beyond it can give larger errors: `rnnedge verify MODEL.rne MODEL.onnx "
                     "--input HELD_OUT.npy` measures the blob on yours")  # fmt: skip
    return "\n".join(lines)


def figures(a: dict[str, float]) -> str:
    """accuracy()'s figures as convert and verify print them: both errors in the same unit."""
    extra = f", argmax agreement {a['argmax_agreement']:.2%}" if "argmax_agreement" in a else ""
    return (f"max error {a['rel_max_err']:.3g}, RMS error {a['rel_rms_err']:.3g} of the float "
            f"output's range ({a['range']:.4g}){extra}")
