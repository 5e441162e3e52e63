"""From a float `Network` (rnnedge/layers.py) to a quantized network for the integer formats.

`quantize_network(net, "int8" | "int16", calibration=X)` returns a `QNetwork`: one dataclass per
layer holding the integer weights and every multiplier, shift, bias and bound the integer kernels
(rnnedge/fixedpoint.py, and the C library after it) need, so that no quantization parameter is
computed at run time. docs/quantization.md is the specification.

- Weights: symmetric, one scale per accumulator row (per output row), int8 ("s8") or int16
  ("s16"). A recurrent row quantizes W and R together: the row's scale covers W * s_x and R * s_h
  (the real value each integer input unit contributes), so one multiplier serves the whole row.
- Activations between layers: int16, symmetric (zero point 0), in every integer format. With
  int16, a Dense that feeds a recurrent layer is folded into its input weights (`fold_dense`).
- Calibration runs the float reference over representative inputs to find the input range and
  the range of every layer whose output is unbounded (Dense, Affine, ReLU RNN, LogSoftmax,
  LayerNorm), with a percentile option; ranges sit on a grid of 32 values per octave
  (`grid_range`) so that an ulp of difference in the float calibration run does not change the
  blob. The LSTM cell state is int32 Q11.20 and needs no range.
  Without calibration data those ranges fall back to documented defaults (or to static bounds
  from the weights) and a CalibrationWarning says so.
- Per-layer error: each weighted layer is run in integers on the float input it sees, the rest
  in float, and the model output is held to the bar (`_Bar`: issue 4's max error, or argmax
  agreement for a classifier, with a safety factor), at every step of a streamable many-to-one
  model. With "int8" a layer that misses it is kept at int16 weights (mixed precision),
  recorded in `QNetwork.report`; strict=True refuses instead.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field, replace
from typing import Union

import numpy as np

from . import fixedpoint as fx
from .errors import ConvertError, InputError, UnsupportedOpError
from .fixedpoint import Mult
from .layers import Activation, Dense, LayerNorm, Network, Recurrent, SameWidth, Slice, TakeLast
from .layers import to_tbf as tbf
from .reference import initial_state, run_layer, run_recurrent

FORMATS = {"int16": "s16", "int8": "s8"}  # quant= -> weight storage of its layers
QMAX = {"s8": 127, "s16": 32767}
FMT_CODE = {"s16": 1, "s8": 2}  # a layer's wfmt -> rne_layer.fmt, for the blob writer

DEFAULT_INPUT_RANGE = 8.0  # |x| assumed without calibration data
DEFAULT_RELU_RANGE = 8.0  # |h| of a ReLU RNN assumed without calibration data
HEADROOM = 2.0  # calibrated ranges are multiplied by this: real data outlives the calibration set
LAYER_TOL = {"s8": 1e-2, "s16": 1e-3}  # issue 4's bar: max error / the float output's range
MIN_AGREEMENT = 0.99  # a classifier's int8 bar instead: argmax agreement on this share of steps
SAFETY = 2.0  # int8 decisions on the calibration data are taken against the bar / SAFETY
CLASSIFIER_HEADS = ("Softmax", "LogSoftmax")
SYNTH_STEPS, SYNTH_BATCH = 64, 8  # synthetic input for the per-layer error without calibration

N_SCALARS = 24  # leading int32 slots of a layer's qparams tensor (docs/quantization.md)
GATE_KINDS = ("Sigmoid", "Tanh", "HardSigmoid")  # integer activations of a gate / bounded state


class CalibrationWarning(UserWarning):
    """A range fell back to its default because no calibration data was given."""


# -- the quantized layers --------------------------------------------------------------------------
@dataclass
class QDense:
    """y[n] = sat16(rq32(sum_k W[n,k] x[k], mult[n]) + bias[n]). W int8/int16 [N, K]."""

    W: np.ndarray
    bias: np.ndarray | None  # int32 [N], in output units
    mult: Mult  # m [N]
    wfmt: str
    in_scale: float
    out_scale: float
    acc_bound: int  # max over rows of sum_k |W[n,k]| * 32768: |accumulator| <= acc_bound

    @property
    def in_features(self) -> int:
        return int(self.W.shape[1])

    @property
    def out_features(self) -> int:
        return int(self.W.shape[0])


@dataclass
class QActivation(SameWidth):
    """An elementwise (or per-step vector) activation, int16 -> int16. The meaning of m1..m3,
    k0, k1 per kind is in docs/quantization.md ("Activation layers")."""

    kind: str
    features: int
    in_scale: float
    out_scale: float
    m1: Mult
    m2: Mult | None = None
    m3: Mult | None = None
    k0: int = 0
    k1: int = 0
    table: np.ndarray | None = None  # int16 [257] for Elu / Softsign / Softplus
    alpha: float = 0.0
    beta: float = 0.0
    wfmt: str = "s16"


@dataclass
class QRecurrent:
    """An integer LSTM / GRU / RNN. W [D, G*H, I], R [D, G*H, H] int8/int16 in ONNX gate order,
    each row with its own scale: mult_w.m [D, G*H] requantizes the rows of W x, mult_r.m [D, G*H]
    those of R h. bias int32 [D, Q] in pre-activation units, Q = G*H (plus H for a GRU with
    linear_before_reset: its h gate keeps Wbh in row 2H..3H and Rbh in the extra H)."""

    cell: str
    direction: str
    wfmt: str
    W: np.ndarray
    R: np.ndarray
    bias: np.ndarray
    mult_w: Mult
    mult_r: Mult
    zlim: int  # gate pre-activations are clamped to [-zlim, zlim] (clip, or ZMAX)
    acts: list[tuple[str, ...]]  # per direction: LSTM f, g, h; GRU f, g; RNN f
    hs: list[list[tuple[Mult, int] | None]]  # per direction, per act slot: HardSigmoid (m, beta)
    in_scale: float
    out_scale: float  # h scale: 2^-15, or calibrated for a ReLU RNN
    acc_bound: int
    P: np.ndarray | None = None  # LSTM peepholes int16 [D, 3, H] (i, o, f)
    peep: Mult | None = None  # m [D, 3]
    input_forget: bool = False
    linear_before_reset: bool = False
    h0: np.ndarray | None = None  # int16 [D, H]
    c0: np.ndarray | None = None  # int32 [D, H], Q11.20
    clip: float | None = None

    @property
    def num_directions(self) -> int:
        return 2 if self.direction == "bidirectional" else 1

    @property
    def hidden(self) -> int:
        return int(self.R.shape[2])

    @property
    def in_features(self) -> int:
        return int(self.W.shape[2])

    @property
    def out_features(self) -> int:
        return self.num_directions * self.hidden

    def row_mult(self, d: int, path: str, a: int = 0, b: int | None = None) -> Mult:
        """Direction d's multipliers of rows [a, b) of W x (path "w") or R h (path "r")."""
        m = self.mult_w if path == "w" else self.mult_r
        return Mult(m.m[d, a:b], m.shift)

    def peep_mult(self, d: int, k: int) -> Mult:
        assert self.peep is not None
        return Mult(self.peep.m[d, k], self.peep.shift)


class PassScale:
    """For integer layers that copy int16 values: the scale passes through."""

    scale: float

    @property
    def in_scale(self) -> float:
        return self.scale

    @property
    def out_scale(self) -> float:
        return self.scale


@dataclass
class QTakeLast(SameWidth, PassScale):
    """TakeLast on int16 values; the scale passes through."""

    features: int
    split: int
    scale: float
    wfmt: str = "s16"


@dataclass
class QSlice(SameWidth, PassScale):
    """Slice on int16 values; the scale passes through."""

    features: int
    start: int
    stop: int
    scale: float
    wfmt: str = "s16"

    @property
    def out_features(self) -> int:
        return self.stop - self.start


@dataclass
class QLayerNorm(SameWidth):
    """LayerNorm over the features of each step, int16 -> int16 (fixedpoint.layernorm_q): gamma
    is folded into the row multipliers mult.m [F] (gamma_k 2^-24 / s_out), beta is bias int32 [F]
    in output units, epsilon is eps_q in units of (s_in / 16)^2."""

    features: int
    mult: Mult
    bias: np.ndarray | None
    eps_q: int
    epsilon: float  # the float layer's, kept for the blob record (informative)
    in_scale: float
    out_scale: float
    wfmt: str = "s16"


QLayer = Union[QDense, QActivation, QLayerNorm, QRecurrent, QTakeLast, QSlice]


@dataclass
class LayerReport:
    """What the converter decided for one layer, and the error it measured."""

    index: int
    kind: str
    wfmt: str
    error: float | None  # this layer alone: max |int - float| / its float output's range
    output_error: float | None = None  # this layer in integers, the rest float: at the model output
    note: str = ""


@dataclass
class QNetwork:
    layers: list[QLayer]
    in_scale: float
    out_scale: float
    quant: str  # "int8" or "int16"
    source: Network  # the float network: names, layouts, state mapping for the blob metadata
    report: list[LayerReport] = field(default_factory=list)
    accuracy: dict[str, float] = field(default_factory=dict)  # end to end, on the same data
    calibrated: bool = False

    @property
    def in_features(self) -> int:
        return self.layers[0].in_features

    @property
    def out_features(self) -> int:
        return self.layers[-1].out_features


# -- multipliers and weights ----------------------------------------------------------------------
def _f32(s: float) -> float:
    """Scales are float32 values, so the blob's float32 fields hold them exactly."""
    return float(np.float32(s))


RANGE_STEPS = 32  # ranges sit on a grid of 32 values per octave (steps of 1.6% to 3.1%)


def grid_range(r: float, up: bool = True) -> float:
    """r on the grid k 2^e / (2 RANGE_STEPS), k = RANGE_STEPS..2 RANGE_STEPS: rounded up (a
    bound that must hold), or to the nearest point (a calibrated range, whose headroom absorbs
    the 1.6%; on average it is then neither coarser nor finer). A range measured on data moves by
    an ulp or so with the order in which a BLAS or a SIMD loop sums; on the grid it moves only if
    it lies within that ulp of a rounding point, so the same model and data give the same blob on
    every machine. Exact: frexp, products by powers of two and floor/ceil do not round."""
    if not r > 0 or not math.isfinite(r):
        raise ConvertError(f"a range of {r} cannot be quantized (expected a finite value > 0)")
    m, e = math.frexp(r)  # r = m 2^e, m in [0.5, 1)
    k = math.ceil(m * 2 * RANGE_STEPS) if up else math.floor(m * 2 * RANGE_STEPS + 0.5)
    return math.ldexp(k, e) / (2 * RANGE_STEPS)


def range_scale(r: float) -> float:
    """The float32 scale of an int16 tensor whose |values| reach r: grid_range(r) / 32767."""
    return _f32(grid_range(r) / 32767)


def make_mult(M: np.ndarray | float, bound: np.ndarray | float, what: str) -> Mult:
    """Real multipliers M (one shared shift) as m * 2^-shift with |m| < 2^31, shift in 1..62, and
    the largest shift for which |v| <= bound gives |v * m| <= 2^62 (so v*m + 2^(shift-1) cannot
    overflow int64)."""
    M = np.asarray(M, np.float64)
    B = np.broadcast_to(np.asarray(bound, np.float64), M.shape)
    if not np.all(np.isfinite(M)):
        raise ConvertError(f"{what}: a multiplier is not finite ({M[~np.isfinite(M)][:3]})")
    if M.size and float(np.abs(M).max()) >= 2.0**30:
        raise ConvertError(
            f"{what}: multiplier {float(np.abs(M).max()):.3g} is too large for the integer "
            "kernels (scales out of proportion: check the calibration ranges)"
        )
    for n in range(62, 0, -1):
        m = fx.round_half_up(M * 2.0**n)
        if m.size and float(np.abs(m).max()) > fx.INT32_MAX:
            continue
        if m.size and float((B * np.abs(m)).max()) > 2.0**62:
            continue
        return Mult(m.astype(np.int64), n)
    raise ConvertError(f"{what}: no shift keeps the requantization inside int64")


def _qweights(eff: np.ndarray, sigma: np.ndarray, qmax: int, dtype: type) -> np.ndarray:
    """round(eff / sigma) per row (sigma [rows]), clamped to +-qmax."""
    safe = np.where(sigma > 0, sigma, 1.0)[:, None]
    return np.clip(fx.round_half_up(eff / safe), -qmax, qmax).astype(dtype)


def _wdtype(wfmt: str) -> type:
    return np.int8 if wfmt == "s8" else np.int16


def _bias32(b: np.ndarray, scale: float) -> np.ndarray:
    q = fx.round_half_up(np.asarray(b, np.float64) / scale)
    return np.clip(q, fx.INT32_MIN, fx.INT32_MAX).astype(np.int32)


def quantize_dense(layer: Dense, wfmt: str, s_in: float, s_out: float, where: str) -> QDense:
    qmax = QMAX[wfmt]
    eff = np.asarray(layer.weight, np.float64) * s_in
    sigma = np.abs(eff).max(axis=1) / qmax if eff.size else np.zeros(eff.shape[0])
    Wq = _qweights(eff, sigma, qmax, _wdtype(wfmt))
    bound = np.abs(Wq.astype(np.int64)).sum(axis=1) * 32768
    mult = make_mult(sigma / s_out, bound, f"{where} (Dense rows)")
    bias = None if layer.bias is None else _bias32(layer.bias, s_out)
    return QDense(Wq, bias, mult, wfmt, s_in, s_out, int(bound.max(initial=0)))


def _check_acts(layer: Recurrent, where: str) -> list[tuple[str, ...]]:
    out = []
    for d, acts in enumerate(layer.activations):
        kinds = tuple(a.kind for a in acts)
        for slot, kind in enumerate(kinds):
            ok = GATE_KINDS + (("Relu",) if layer.cell == "rnn" else ())
            if kind not in ok:
                raise UnsupportedOpError(
                    f"{where}: activation {kind!r} (direction {d}, slot {slot}) has no integer "
                    f"form in a {layer.cell.upper()}; supported: {', '.join(ok)}; keep this "
                    "model in f32"
                )
        out.append(kinds)
    return out


def quantize_recurrent(layer: Recurrent, wfmt: str, s_x: float, s_h: float, where: str) -> QRecurrent:
    """Integer weights and parameters of one LSTM / GRU / RNN (docs/quantization.md)."""
    acts = _check_acts(layer, where)
    relu = layer.cell == "rnn" and any(a[0] == "Relu" for a in acts)
    if relu and any(a[0] != "Relu" for a in acts):
        raise UnsupportedOpError(f"{where}: an RNN with Relu in one direction only is not supported")
    s_z = s_h / (1 << fx.RELU_FRAC) if relu else fx.Z_SCALE  # exact: a power of two
    zmax = fx.RELU_ZMAX if relu else fx.ZMAX
    D, H, G = layer.num_directions, layer.hidden_size, layer.W.shape[1] // layer.hidden_size
    lbr = layer.cell == "gru" and layer.linear_before_reset
    Q = G * H + (H if lbr else 0)
    qmax, dt = QMAX[wfmt], _wdtype(wfmt)
    Wq = np.zeros((D, G * H, layer.in_features), dt)
    Rq = np.zeros((D, G * H, H), dt)
    sig_w, sig_r = np.zeros((D, G * H)), np.zeros((D, G * H))
    bound_w, bound_r = np.zeros((D, G * H)), np.zeros((D, G * H))
    bias = np.zeros((D, Q), np.int32)
    for d in range(D):
        We = np.asarray(layer.W[d], np.float64) * s_x  # real value per integer input unit
        Re = np.asarray(layer.R[d], np.float64) * s_h
        sig_w[d] = np.abs(We).max(axis=1) / qmax
        sig_r[d] = np.abs(Re).max(axis=1) / qmax
        Wq[d] = _qweights(We, sig_w[d], qmax, dt)
        Rq[d] = _qweights(Re, sig_r[d], qmax, dt)
        bound_w[d] = np.abs(Wq[d].astype(np.int64)).sum(axis=1) * 32768
        bound_r[d] = np.abs(Rq[d].astype(np.int64)).sum(axis=1) * 32768
        if layer.B is not None:
            Wb = np.asarray(layer.B[d, : G * H], np.float64)
            Rb = np.asarray(layer.B[d, G * H :], np.float64)
            if lbr:  # the h gate's R_h bias sits inside r * (R_h h + Rbh)
                b = np.concatenate([Wb[: 2 * H] + Rb[: 2 * H], Wb[2 * H :], Rb[2 * H :]])
            else:
                b = Wb + Rb
            bias[d] = _bias32(b, s_z)
    mult_w = make_mult(sig_w / s_z, bound_w, f"{where} (W rows)")
    mult_r = make_mult(sig_r / s_z, bound_r, f"{where} (R rows)")
    zlim = zmax
    if layer.clip is not None:
        zlim = int(min(zmax, fx.round_half_up(layer.clip / s_z)))
    hs = [
        [
            (make_mult(a.alpha * s_z * 32768, fx.ZMAX, f"{where} (HardSigmoid)"),
             int(np.clip(fx.round_half_up(a.beta * 32768), fx.INT32_MIN, fx.INT32_MAX)))
            if a.kind == "HardSigmoid"
            else None
            for a in layer.activations[d]
        ]
        for d in range(D)
    ]
    q = QRecurrent(
        cell=layer.cell, direction=layer.direction, wfmt=wfmt, W=Wq, R=Rq, bias=bias,
        mult_w=mult_w, mult_r=mult_r,
        zlim=zlim, acts=acts, hs=hs, in_scale=s_x, out_scale=s_h,
        acc_bound=int(max(bound_w.max(initial=0), bound_r.max(initial=0))),
        input_forget=layer.input_forget,
        linear_before_reset=lbr, clip=layer.clip,
    )
    if layer.initial_h is not None:
        q.h0 = fx.quantize(layer.initial_h, s_h)
    if layer.cell == "lstm":
        if layer.initial_c is not None:
            q.c0 = fx.quantize_cell(layer.initial_c)
        if layer.P is not None:
            P = np.asarray(layer.P, np.float64).reshape(D, 3, H)
            s_p = np.abs(P).max(axis=2) / 32767  # [D, 3]
            s_p = np.where(s_p > 0, s_p, 1.0)
            q.P = np.clip(fx.round_half_up(P / s_p[:, :, None]), -32767, 32767).astype(np.int16)
            bound = 32767 * 2**31  # int16 peephole x int32 cell
            q.peep = make_mult(s_p * fx.C_SCALE / fx.Z_SCALE, bound, f"{where} (peepholes)")
    return q


def _lut(kind: str, alpha: float, beta: float, s_in: float) -> tuple[np.ndarray, float]:
    """Table of f over the whole int16 input (entry j at x = s_in * (256 j - 32768))."""
    from .layers import Act
    from .reference import activate

    x = s_in * (256.0 * np.arange(fx.LUT_SIZE) - 32768.0)
    y = activate(x.astype(np.float32), Act(kind, alpha, beta)).astype(np.float64)
    s_out = range_scale(max(float(np.abs(y).max()), 1e-12))
    table = np.clip(fx.round_half_up(y / s_out), -32767, 32767).astype(np.int16)
    return table, s_out


def quantize_activation(
    layer: Activation, s_in: float, out_range: float | None, where: str
) -> QActivation:
    """Integer parameters of one activation layer. out_range: calibrated |y| (Affine,
    LogSoftmax) or None for the static bound."""
    k, a, b, F = layer.act.kind, layer.act.alpha, layer.act.beta, layer.features
    if k in ("Softmax", "LogSoftmax") and F >= 65536:  # the integer sum of exponentials would overflow
        raise UnsupportedOpError(f"{where}: an integer {k} takes fewer than 65536 features, not {F}")
    r_in = 32767 * s_in
    one = lambda M, what="": make_mult(M, 65536, f"{where} ({k}{what})")  # noqa: E731
    q15 = _f32(fx.Q15_SCALE)
    if k in ("Identity", "Relu", "ThresholdedRelu"):
        thr = 0
        if k == "ThresholdedRelu":
            thr = int(np.clip(math.floor(a / s_in), fx.INT16_MIN - 1, fx.INT16_MAX))
        return QActivation(k, F, s_in, s_in, one(1.0), k0=thr, alpha=a, beta=b)
    if k == "LeakyRelu":
        s_out = _f32(s_in * max(1.0, abs(a)))
        m1, m2 = one(s_in / s_out), one(a * s_in / s_out, " alpha")
        return QActivation(k, F, s_in, s_out, m1, m2, alpha=a, beta=b)
    if k == "Clip":
        lo = int(np.clip(np.ceil(a / s_in), -32768, 32767))  # np: +-inf saturate, no OverflowError
        hi = int(np.clip(np.floor(b / s_in), -32768, 32767))
        return QActivation(k, F, s_in, s_in, one(1.0), k0=lo, k1=hi, alpha=a, beta=b)
    if k == "Affine":
        rng = out_range if out_range is not None else abs(a) * r_in + abs(b)
        s_out = range_scale(max(rng, 1e-12))
        k0 = int(np.clip(fx.round_half_up(b / s_out), fx.INT32_MIN, fx.INT32_MAX))
        return QActivation(k, F, s_in, s_out, one(a * s_in / s_out), k0=k0, alpha=a, beta=b)
    if k in ("Sigmoid", "Tanh"):
        return QActivation(k, F, s_in, q15, one(s_in / fx.Z_SCALE), k0=1, alpha=a, beta=b)
    if k == "ScaledTanh":
        s_out = _f32(max(abs(a), 1e-12) * fx.Q15_SCALE)
        sign = -1 if a < 0 else 1
        return QActivation(k, F, s_in, s_out, one(b * s_in / fx.Z_SCALE), k0=sign, alpha=a, beta=b)
    if k == "HardSigmoid":
        beta_q = int(np.clip(fx.round_half_up(b * 32768), fx.INT32_MIN, fx.INT32_MAX))
        return QActivation(k, F, s_in, q15, one(a * s_in * 32768), k0=beta_q, alpha=a, beta=b)
    if k in ("Elu", "Softsign", "Softplus"):
        table, s_out = _lut(k, a, b, s_in)
        return QActivation(k, F, s_in, s_out, one(1.0), table=table, alpha=a, beta=b)
    if k == "Softmax":
        m_exp = one(s_in * math.log2(math.e) * 2.0**fx.EXP_FRAC, " exponent")
        return QActivation(k, F, s_in, q15, m_exp, alpha=a, beta=b)
    if k == "LogSoftmax":
        rng = out_range if out_range is not None else 2 * r_in + math.log(F)
        s_out = range_scale(max(rng, 1e-12))
        m_exp = one(s_in * math.log2(math.e) * 2.0**fx.EXP_FRAC, " exponent")
        m_log = make_mult(math.log(2) / (32768 * s_out), 1 << 21, f"{where} (LogSoftmax log)")
        return QActivation(k, F, s_in, s_out, m_exp, one(s_in / s_out), m_log, alpha=a, beta=b)
    raise UnsupportedOpError(f"{where}: activation {k!r} has no integer form")


def layernorm_range(layer: LayerNorm) -> float:
    """The static bound of a LayerNorm's |y|: max_k |gamma_k| sqrt(F - 1) + |beta_k| (a
    normalized vector of F values has no entry beyond sqrt(F - 1))."""
    F = layer.in_features
    g = np.abs(np.asarray(layer.gamma, np.float64)) * math.sqrt(max(F - 1, 0))
    b = 0.0 if layer.beta is None else np.abs(np.asarray(layer.beta, np.float64))
    return float((g + b).max(initial=0.0))


def quantize_layernorm(layer: LayerNorm, s_in: float, out_range: float | None,
                       where: str) -> QLayerNorm:  # fmt: skip
    """Integer parameters of a LayerNorm. out_range: the calibrated |y|, or None for the static
    bound. eps_q = round(epsilon / (s_in/16)^2), clamped to [0, 2^61]."""
    F = layer.in_features
    if F >= fx.LN_MAX_FEATURES:
        raise UnsupportedOpError(
            f"{where}: an integer LayerNorm takes fewer than {fx.LN_MAX_FEATURES} features, not {F}"
        )
    rng = layernorm_range(layer) if out_range is None else out_range
    s_out = range_scale(max(rng, 1e-6))
    eps = float(np.float32(layer.epsilon))  # what the blob record holds
    eps_q = int(min(fx.round_half_up(eps / (s_in / fx.LN_SUB) ** 2), fx.EPS_Q_MAX))
    gamma = np.asarray(layer.gamma, np.float64)
    M = gamma * 2.0**-fx.LN_FRAC / s_out
    mult = make_mult(M, fx.layernorm_bound(F), f"{where} (LayerNorm)")
    bias = None if layer.beta is None else _bias32(layer.beta, s_out)
    return QLayerNorm(F, mult, bias, eps_q, eps, s_in, s_out)


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
class _Trace:
    """What the float reference saw at one layer: its input and its output, [T, B, F]."""

    x: np.ndarray
    y: np.ndarray


def trace_network(net: Network, x: np.ndarray) -> list[_Trace]:
    """Run the float reference layer by layer over x [T, B, F] from the initial state, keeping
    each layer's input and output."""
    traces = []
    for layer in net.layers:
        if isinstance(layer, Recurrent):
            state = initial_state(Network([layer], net.input, net.output), x.shape[1])[0]
            y, _ = run_recurrent(layer, x, state)
        else:
            y = run_layer(layer, x)
        traces.append(_Trace(x, y))
        x = y
    return traces


def _absmax(v: np.ndarray, percentile: float) -> float:
    a = np.abs(np.asarray(v, np.float64)).ravel()
    if a.size == 0:
        return 0.0
    return float(np.percentile(a, percentile)) if percentile < 100 else float(a.max())


def _error(yq: np.ndarray, yf: np.ndarray) -> float:
    """max |yq - yf| over the float output's range (max - min; its |max| if the range is 0)."""
    yf = np.asarray(yf, np.float64)
    if yf.size == 0:
        return 0.0
    rng = float(yf.max() - yf.min()) or float(np.abs(yf).max()) or 1.0
    return float(np.abs(np.asarray(yq, np.float64) - yf).max() / rng)


def accuracy(y_q: np.ndarray, y_f: np.ndarray) -> dict[str, float]:
    """End-to-end figures: max and RMS error, both also over the float output's range, and the
    argmax agreement over the last axis (for outputs of more than one feature)."""
    y_q, y_f = np.asarray(y_q, np.float64), np.asarray(y_f, np.float64)
    diff = y_q - y_f
    rng = float(y_f.max() - y_f.min()) if y_f.size else 0.0
    out = {
        "max_err": float(np.abs(diff).max()) if diff.size else 0.0,
        "rms_err": float(np.sqrt(np.mean(diff**2))) if diff.size else 0.0,
        "range": rng,
    }
    out["rel_max_err"] = out["max_err"] / rng if rng else out["max_err"]
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
            D, GH, F = nxt.W.shape
            K = layer.in_features
            if D * GH * K <= D * GH * F + F * K:
                W = _dot64(nxt.W, layer.weight)  # [D, GH, K]
                B = np.zeros((D, 2 * GH)) if nxt.B is None else np.array(nxt.B, np.float64)
                if layer.bias is not None:
                    B[:, :GH] += _dot64(nxt.W, np.asarray(layer.bias, np.float64)[:, None])[..., 0]
                layers.append(replace(nxt, W=W.astype(np.float32), B=B.astype(np.float32)))
                folded.append(f"Dense layer {i} ({K} -> {F}) into the input weights of the "
                              f"{nxt.cell.upper()} after it (int16)")  # fmt: skip
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


def _run_q_layer(q: QLayer, x_float: np.ndarray, s_in: float) -> np.ndarray:
    """Run one quantized layer on a float input (quantized at s_in), dequantized output."""
    xq = fx.quantize(x_float, s_in)
    if isinstance(q, QRecurrent):
        yq, _ = fx.recurrent_q(q, xq, fx.layer_initial_state(q, xq.shape[1]))
    else:
        yq = fx.layer_q(q, xq)
    return fx.dequantize(yq, q.out_scale)


@dataclass
class _Ranges:
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


def _layer_name(i: int, layer: object) -> tuple[str, str]:
    """("layer 3 (LSTM)", "LSTM") for messages and the report."""
    kind = layer.cell.upper() if isinstance(layer, Recurrent) else type(layer).__name__
    return f"layer {i} ({kind})", kind


def _weighted(layer: Dense | Recurrent, wfmt: str, s_in: float, tr: _Trace, ranges: _Ranges,
              where: str) -> QLayer:  # fmt: skip
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
        if isinstance(layer, Recurrent):
            state = initial_state(Network([layer], net.input, net.output), y.shape[1])[0]
            y, _ = run_recurrent(layer, y, state)
        else:
            y = run_layer(layer, y)
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
        return _Bar(LAYER_TOL[FORMATS[quant]])
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
    q: QLayer
    error: float  # the layer's own output
    output_error: float  # at the model output, the other layers float
    agreement: float | None  # argmax agreement there (outputs of several features)

    def effect(self) -> str:
        text = f"{self.output_error:.3g} of the model output's range"
        return text if self.agreement is None else f"{text}, argmax agreement {100 * self.agreement:.2f}%"


def _measure(q: QLayer, i: int, net: Network, tr: _Trace, s_in: float, y_out: np.ndarray) -> _Measured:
    y = _run_q_layer(q, tr.x, s_in)
    tail = _float_tail(net, i + 1, y)
    return _Measured(q, _error(y, tr.y), _error(tail, y_out), _agreement(tail, y_out))


def _choose_precision(layer: Dense | Recurrent, i: int, net: Network, quant: str, s_in: float,
                      tr: _Trace, y_out: np.ndarray, ranges: _Ranges, bar: _Bar, strict: bool,
                      where: str) -> tuple[_Measured, str]:  # fmt: skip
    """Quantize with the format's weights and measure the layer's effect on the model output
    (this layer in integers, the others float). With int8, a layer whose effect misses the bar
    keeps int16 weights (or is refused, when strict)."""
    m = _measure(_weighted(layer, FORMATS[quant], s_in, tr, ranges, where), i, net, tr, s_in, y_out)
    if not bar.misses(m.output_error, m.agreement):
        return m, ""
    if quant != "int8":
        return m, f"misses the bar ({bar}) at the model output"
    if strict:
        raise ConvertError(
            f"{where}: int8 weights give {m.effect()}, missing the bar ({bar}); strict int8 "
            "refuses (without strict this layer keeps int16 weights)"
        )
    quiet = _Ranges(ranges.calibrated, ranges.percentile, ranges.headroom)  # defaults said once
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


def _measurement_input(net: Network, calibration: np.ndarray | None) -> np.ndarray:
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
    if quant not in FORMATS:
        raise InputError(f"quant={quant!r}: the integer formats are {', '.join(FORMATS)}")
    if not 0 < percentile <= 100:
        raise InputError(f"percentile={percentile}: must be in (0, 100]")
    if not headroom >= 1:
        raise InputError(f"headroom={headroom}: must be >= 1")
    net.check()
    if quant == "int16":
        net = fold_dense(net)
    bar = _bar(net, quant, layer_tol)
    ranges = _Ranges(calibration is not None, percentile, headroom)
    x = _measurement_input(net, calibration)
    mnet = _measuring_network(net)
    traces = trace_network(mnet, x)
    y_out = traces[-1].y
    s_in = q_in = range_scale(ranges.of(x, DEFAULT_INPUT_RANGE, "input |x|"))
    layers: list[QLayer] = []
    report: list[LayerReport] = []
    for i, (layer, tr) in enumerate(zip(net.layers, traces)):
        where, kind = _layer_name(i, layer)
        q: QLayer
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
    qnet = QNetwork(layers, q_in, s_in, quant, net, report, calibrated=ranges.calibrated)
    if ranges.defaults:
        warnings.warn(
            "no calibration data: assumed " + "; ".join(ranges.defaults)
            + ". Pass calibration= (representative inputs) to measure these ranges.",
            CalibrationWarning,
            stacklevel=2,
        )
    qnet.accuracy = accuracy(_run_measured(qnet, x), y_out)
    if quant == "int8":
        _meet_the_bar(qnet, mnet, x, y_out, traces, bar, strict)
    return qnet


def _meet_the_bar(qnet: QNetwork, mnet: Network, x: np.ndarray, y_out: np.ndarray,
                  traces: list[_Trace], bar: _Bar, strict: bool) -> None:  # fmt: skip
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


def _rebuild_s16(layer: Dense | Recurrent, q: QLayer, where: str) -> QLayer:
    """The same layer with int16 weights and the same scales as `q`."""
    if isinstance(layer, Dense):
        return quantize_dense(layer, "s16", q.in_scale, q.out_scale, where)
    return quantize_recurrent(layer, "s16", q.in_scale, q.out_scale, where)


# -- blob tensors (docs/quantization.md, "Blob") --------------------------------------------------
@dataclass
class BlobTensor:
    """One tensor of an integer layer as the blob stores it: role, name suffix, exact dtype and
    layout, and the record's scale field (the layer's output scale on the qparams tensor)."""

    role: int
    suffix: str
    data: np.ndarray
    scale: float = 0.0


def _slots() -> np.ndarray:
    return np.zeros(N_SCALARS, np.int64)


def qparams(q: QLayer) -> np.ndarray | None:
    """The layer's role-6 int32 qparams tensor, exactly as docs/quantization.md lays it out."""
    if isinstance(q, QDense):
        s = _slots()
        s[0], s[2] = q.mult.shift, int(q.acc_bound <= fx.INT32_MAX)
        return np.concatenate([s, q.mult.m]).astype(np.int32)
    if isinstance(q, QLayerNorm):
        s = _slots()
        s[0], s[1], s[2] = q.mult.shift, q.eps_q >> 31, q.eps_q & fx.INT32_MAX
        return np.concatenate([s, q.mult.m]).astype(np.int32)
    if isinstance(q, QActivation):
        s = _slots()
        for j, m in enumerate((q.m1, q.m2, q.m3)):
            if m is not None:
                s[2 * j], s[2 * j + 1] = int(m.m), m.shift
        s[6], s[7] = q.k0, q.k1
        return s.astype(np.int32)
    if isinstance(q, QRecurrent):
        rows = []
        for d in range(q.num_directions):
            s = _slots()
            s[0], s[1] = q.mult_w.shift, q.mult_r.shift
            s[2], s[3] = q.zlim, int(q.acc_bound <= fx.INT32_MAX)
            if q.peep is not None:
                s[4] = q.peep.shift
                s[5:8] = q.peep.m[d]
            for slot, hs in enumerate(q.hs[d]):
                if hs is not None:
                    s[8 + 3 * slot : 11 + 3 * slot] = (int(hs[0].m), hs[0].shift, hs[1])
            rows.append(np.concatenate([s, q.mult_w.m[d], q.mult_r.m[d]]))
        return np.stack(rows).astype(np.int32)
    return None


def blob_tensors(q: QLayer) -> list[BlobTensor]:
    """Every tensor an integer layer stores, in the blob's layout (W and R transposed like f32)."""
    out: list[BlobTensor] = []
    qp = qparams(q)
    if isinstance(q, QDense):
        out.append(BlobTensor(0, "W", np.ascontiguousarray(q.W.T)))
        if q.bias is not None:
            out.append(BlobTensor(2, "B", q.bias.astype(np.int32)))
    elif isinstance(q, QLayerNorm):
        if q.bias is not None:
            out.append(BlobTensor(2, "B", q.bias.astype(np.int32)))
    elif isinstance(q, QRecurrent):
        out.append(BlobTensor(0, "W", np.ascontiguousarray(q.W.transpose(0, 2, 1))))
        out.append(BlobTensor(1, "R", np.ascontiguousarray(q.R.transpose(0, 2, 1))))
        out.append(BlobTensor(2, "B", q.bias.astype(np.int32)))
        if q.P is not None:
            out.append(BlobTensor(3, "P", q.P))
        if q.h0 is not None:
            out.append(BlobTensor(4, "H0", q.h0, q.out_scale))
        if q.c0 is not None:
            out.append(BlobTensor(5, "C0", q.c0, fx.C_SCALE))
    elif isinstance(q, QActivation) and q.table is not None:
        out.append(BlobTensor(7, "lut", q.table))
    if qp is not None:
        out.append(BlobTensor(6, "q", qp, q.out_scale))
    return out


def describe(qnet: QNetwork) -> str:
    """A few lines for the CLI: format per layer, measured errors, end-to-end accuracy."""
    lines = [f"quant {qnet.quant} ({'calibrated' if qnet.calibrated else 'default ranges'}), "
             f"input scale {qnet.in_scale:.4g}, output scale {qnet.out_scale:.4g}"]
    for r in qnet.report:
        err = "" if r.error is None else f" error {r.error:.2e}"
        if r.output_error is not None:
            err += f" (at the output {r.output_error:.2e})"
        lines.append(f"  layer {r.index} {r.kind:<10} {r.wfmt}{err}{'  ' + r.note if r.note else ''}")
    a = qnet.accuracy
    if a:
        extra = f", argmax agreement {a['argmax_agreement']:.2%}" if "argmax_agreement" in a else ""
        lines.append(
            f"  end to end: max error {a['rel_max_err']:.2e} of range, rms {a['rms_err']:.3g}{extra}"
        )
    return "\n".join(lines)
