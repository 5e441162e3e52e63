"""Integer arithmetic per op: from float layers and scales to the integers the kernels use.

`quantize_dense`, `quantize_recurrent`, `quantize_activation`, `quantize_layernorm` turn one float
layer (rnnedge/ir/layers.py) with its input and output scales into its integer form (QDense, ...):
weights, biases, multipliers, shifts, clamps and tables, so that no quantization parameter is
computed at run time. Every rule is docs/quantization.md's; rnnedge/fixedpoint.py executes the
result bit for bit as the C kernels do.

- Weights: symmetric, one scale per accumulator row (per output row), int8 ("s8") or int16
  ("s16"). A recurrent row quantizes W and R together: the row's scale covers W * s_x and R * s_h
  (the real value each integer input unit contributes), so one multiplier serves the whole row.
- Activations between layers: int16, symmetric (zero point 0), in every integer format; scales
  are float32 values on the grid of `grid_range`.
"""

from __future__ import annotations

import math

import numpy as np

from .. import fixedpoint as fx
from ..errors import ConvertError, UnsupportedOpError
from ..ir.layers import (
    Act, Activation, Dense, LayerNorm, Mult, QActivation, QDense, QLayerNorm, QRecurrent, Recurrent,
)  # fmt: skip
from ..ir.graph import Binary, Concat, Conv, Gather, QBinary, QConcat, QConv, QGather, QReduce, Reduce
from ..reference import activate

QMAX = {"s8": 127, "s16": 32767}


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
    """Real multipliers M (one shared shift) as m * 2^-shift with |m| < 2^31, shift in
    1..62, and the largest shift for which |v| <= bound gives
    |v * m| <= 2^62 (so v*m + 2^(shift-1) cannot overflow int64)."""
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


def conv_channels(conv: Conv, w: np.ndarray) -> np.ndarray:
    """A conv weight (its layout: [C_out, C_in/g, kt, kw], or ConvTranspose's [C_in, C_out/g, 1,
    kw]) as [C_out, taps]: the weights that feed each output channel."""
    if not conv.transpose:
        return w.reshape(w.shape[0], -1)
    g, cg, mg = conv.groups, w.shape[0] // conv.groups, w.shape[1]
    return w.reshape(g, cg, mg, -1).transpose(0, 2, 1, 3).reshape(g * mg, -1)


def quantize_conv(conv: Conv, wfmt: str, s_in: float, s_out: float, where: str) -> QConv:
    """QDense's rules per output channel: the weights times s_in at one scale per channel (the
    largest to +-qmax), the channel's multiplier sigma[c] / s_out, the bias in output units."""
    qmax = QMAX[wfmt]
    w = np.asarray(conv.weight, np.float64) * s_in
    rows = conv_channels(conv, w)
    sigma = np.abs(rows).max(axis=1) / qmax if rows.size else np.zeros(rows.shape[0])
    if conv.transpose:  # each weight's output channel, in the weight's own layout
        g, cg, mg = conv.groups, w.shape[0] // conv.groups, w.shape[1]
        per = sigma.reshape(g, 1, mg, 1, 1).repeat(cg, axis=1).reshape(g * cg, mg, 1, 1)
    else:
        per = sigma.reshape(-1, 1, 1, 1)
    safe = np.where(per > 0, per, 1.0)
    Wq = np.clip(fx.round_half_up(w / safe), -qmax, qmax).astype(_wdtype(wfmt))
    bound = np.abs(conv_channels(conv, Wq.astype(np.int64))).sum(axis=1) * 32768
    mult = make_mult(sigma / s_out, bound, f"{where} (Conv channels)")
    bias = None if conv.bias is None else _bias32(conv.bias, s_out)
    return QConv(conv, Wq, bias, mult, wfmt, s_in, s_out, int(bound.max(initial=0)))


def _check_acts(layer: Recurrent, where: str) -> list[tuple[str, ...]]:
    out = []
    for d, acts in enumerate(layer.activations):
        kinds = tuple(a.kind for a in acts)
        for slot, kind in enumerate(kinds):
            ok = fx.GATE_KINDS + (("Relu",) if layer.cell == "rnn" else ())
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
    D, H, G = layer.num_directions, layer.hidden, layer.W.shape[1] // layer.hidden
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
        linear_before_reset=lbr, clip=layer.clip, inner=layer.inner,
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


UNBOUNDED_LUT_KINDS = ("Reciprocal", "Exp", "Log", "Pow")  # s_out calibrated (Log: no table)


def _lut(kind: str, alpha: float, beta: float, s_in: float,
         out_range: float | None = None) -> tuple[np.ndarray, float]:  # fmt: skip
    """Table of f over the whole int16 input (entry j at x = s_in * (256 j - 32768)). s_out
    covers the largest finite |f| of the table, or `out_range` (a calibrated |y|) when given;
    entries beyond it saturate. Where f is not finite (outside the domain of Sqrt, Log, Pow; 1/0)
    the entry is its limit: +-inf saturates, NaN gives 0."""
    x = s_in * (256.0 * np.arange(fx.LUT_SIZE) - 32768.0)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        y = activate(x.astype(np.float32), Act(kind, alpha, beta)).astype(np.float64)
    finite = np.abs(y[np.isfinite(y)])
    rng = out_range if out_range is not None else float(finite.max(initial=0.0))
    s_out = range_scale(max(rng, 1e-12))
    with np.errstate(invalid="ignore", over="ignore"):
        q = fx.round_half_up(y / s_out)
    table = np.clip(np.where(np.isnan(q), 0.0, q), -32767, 32767).astype(np.int16)
    return table, s_out


def quantize_activation(
    layer: Activation, s_in: float, out_range: float | None, where: str
) -> QActivation:
    """Integer parameters of one activation layer. out_range: calibrated |y| (Affine,
    LogSoftmax, and the tables of Reciprocal, Exp, Log, Pow) or None for the static bound."""
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
    if k in ("Abs", "Neg"):
        return QActivation(k, F, s_in, s_in, one(1.0), alpha=a, beta=b)
    if k == "Log":  # fixedpoint.log_q: log2 from the bit length and a mantissa table, then ln
        rng = out_range if out_range is not None else max(abs(math.log(s_in)), abs(math.log(r_in)))
        s_out = range_scale(max(rng, 1e-12))
        m_log = make_mult(math.log(2) / (32768 * s_out), fx.LOG_BOUND, f"{where} (Log)")
        k0 = int(np.clip(fx.round_half_up(math.log(s_in) / s_out), fx.INT32_MIN, fx.INT32_MAX))
        return QActivation(k, F, s_in, s_out, m_log, k0=k0, alpha=a, beta=b)
    if k in fx.LUT_KINDS:
        table, s_out = _lut(k, a, b, s_in, out_range if k in UNBOUNDED_LUT_KINDS else None)
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


# -- graph ops (docs/graph.md section 3, docs/quantization.md "Graph ops") -------------------------
def quantize_binary(op: Binary, s_a: float, s_b: float | None, s_y: float, where: str) -> QBinary:
    """A Binary node's multipliers from its input scales and its output scale. A constant operand
    is quantized at its own scale (its |max| on the grid, rounded up) and stands in for the
    missing input's scale (s_b; s_a when it is the left operand)."""
    k = op.kind
    if k == "Pow":
        raise UnsupportedOpError(f"{where}: Pow of two tensors has no integer form (a constant "
                                 "exponent is an activation); keep this model in f32")  # fmt: skip
    const = None
    if op.const is not None:
        c = np.asarray(op.const, np.float64)
        s_c = range_scale(max(float(np.abs(c).max(initial=0.0)), 1e-12))
        const = fx.quantize(c, s_c)
        s_a, s_b = (s_c, s_a) if op.const_left else (s_a, s_c)
    assert s_b is not None
    if k in ("Add", "Sub", "Min", "Max"):  # |a m_a| + |b m_b| <= 2 * 2^61
        m = make_mult(np.array([s_a / s_y, s_b / s_y]), 65536, f"{where} ({k})")
        ma, mb, shift = int(m.m[0]), int(m.m[1]), m.shift
    elif k == "Mul":
        m = make_mult(s_a * s_b / s_y, 1 << 30, f"{where} (Mul)")
        ma, mb, shift = int(m.m), 0, m.shift
    elif k == "Div":  # rshr(rdiv(a m, b), shift): |a m| <= 2^46 whatever the shift (§11)
        m = make_mult(s_a / (s_b * s_y), 32768, f"{where} (Div)")
        ma, mb, shift = int(m.m), 0, m.shift
    elif k == "Hypot":
        # sqrt(a^2 + b^2 + eps) (fuse_magnitudes): the integer root drops eps, which moves it by at
        # most sqrt(eps) (at a = b = 0): taken when that is at most half the output's step, so the
        # rounded result moves by at most one unit
        if op.beta and math.sqrt(op.beta) > s_y / 2:
            raise UnsupportedOpError(
                f"{where} (Hypot): sqrt(a^2 + b^2 + {op.beta:g}) whose eps moves the root by up to "
                f"{math.sqrt(op.beta):.3g}, more than half the output's int16 step ({s_y / 2:.3g}); the "
                "integer HYPOT has no eps: keep this model in f32")
        ma, mb, shift = hypot_mults(s_a, s_b, s_y, where)
    elif k == "LogHypot":
        return _quantize_loghypot(op, s_a, s_b, s_y, where)
    else:
        raise UnsupportedOpError(f"{where}: binary op {k!r} has no integer form")
    return QBinary(k, ma, mb, shift, (_f32(s_a), _f32(s_b)), _f32(s_y), const, op.const_left)


def _quantize_loghypot(op: Binary, s_a: float, s_b: float, s_y: float, where: str) -> QBinary:
    """LOGHYPOT's parameters: the root r = sqrt(a^2 m_a + b^2 m_b) in units u, the magnitude's
    own scale over 2^14 - 1 (m = (s / u)^2 < 2^28; u coarser only when |beta| / alpha would
    take e past 2^46), e = beta / (alpha u 2^-16) (the root takes 16 fraction bits before e is
    added), and the Log's m1 = ln2 / (2^15 s_y), k0 = ln(alpha u 2^-16) / s_y: an activation
    Log at input scale alpha u 2^-16 (fixedpoint.log_q)."""
    if op.const is not None or not op.alpha > 0:
        raise ConvertError(f"{where} (LogHypot): two inputs and alpha > 0, got alpha {op.alpha}"
                           f"{' and a constant operand' if op.const is not None else ''}")  # fmt: skip
    f = 2.0**fx.LOGHYPOT_FRAC
    u = max(max(s_a, s_b) / ((1 << 14) - 1), abs(op.beta) * f / (op.alpha * fx.LOGHYPOT_EMAX))
    ma, mb = (int(min(fx.round_half_up((s / u) ** 2), fx.LOGHYPOT_MMAX - 1)) for s in (s_a, s_b))
    e = int(np.clip(fx.round_half_up(op.beta * f / (op.alpha * u)), -fx.LOGHYPOT_EMAX,
                    fx.LOGHYPOT_EMAX))  # fmt: skip
    m1 = make_mult(math.log(2) / (32768 * s_y), fx.LOGHYPOT_BOUND, f"{where} (LogHypot log)")
    k0 = int(np.clip(fx.round_half_up(math.log(op.alpha * u / f) / s_y), fx.INT32_MIN, fx.INT32_MAX))
    return QBinary("LogHypot", ma, mb, m1.shift, (_f32(s_a), _f32(s_b)), _f32(s_y),
                   m1=int(m1.m), e=e, k0=k0)  # fmt: skip


def hypot_mults(s_a: float, s_b: float, s_y: float, where: str) -> tuple[int, int, int]:
    """HYPOT's m_a = round((s_a / s_y)^2 2^shift), m_b likewise, with the largest even shift
    <= 62 that keeps both below 2^30 (fixedpoint.binary_q: y = sqrt of the sum over 2^shift, so
    y's root takes shift / 2)."""
    M = np.array([(s_a / s_y) ** 2, (s_b / s_y) ** 2], np.float64)
    for shift in range(62, 0, -2):
        m = fx.round_half_up(M * 2.0**shift)
        if float(m.max()) < fx.HYPOT_MMAX:
            return int(m[0]), int(m[1]), shift
    raise ConvertError(f"{where} (Hypot): the input scales are {math.sqrt(M.max()):.3g} times "
                       "the output's; no shift keeps the squares' multipliers below 2^30")  # fmt: skip


def quantize_concat(op: Concat, s_ins: list[float], s_y: float, ndim: int, where: str) -> QConcat:
    """Each input requantized from its own scale to the output's; the axis counted from the
    front (0..ndim-1), as the blob's param[0] and fixedpoint.concat_q take it."""
    mults = [make_mult(s / s_y, 32768, f"{where} (Concat input {k})") for k, s in enumerate(s_ins)]
    return QConcat(op.axis % ndim, mults, _f32(s_y))


def quantize_reduce(op: Reduce, n: int, s_in: float, s_y: float, ndim: int,
                    where: str) -> QReduce:  # fmt: skip
    """Sum / Mean of n elements (1/n folded into the multiplier of Mean), or Max / Min picked
    and then requantized; the axes counted from the front (0..ndim-1 of x)."""
    if op.kind in ("Sum", "Mean"):
        M = s_in / s_y / (n if op.kind == "Mean" else 1)
        mult = make_mult(M, n * 32768, f"{where} (Reduce{op.kind})")
    else:
        mult = make_mult(s_in / s_y, 32768, f"{where} (Reduce{op.kind})")
    axes = tuple(sorted(a % ndim for a in op.axes))
    return QReduce(op.kind, axes, mult, _f32(s_in), _f32(s_y))


def quantize_gather(op: Gather, where: str) -> QGather:
    """The embedding table int16 at its own |max| (on the grid, rounded up): the output scale."""
    t = np.asarray(op.table, np.float64)
    if not np.all(np.isfinite(t)):
        raise ConvertError(f"{where}: the embedding table holds NaN or infinite values")
    s = range_scale(max(float(np.abs(t).max(initial=0.0)), 1e-12))
    return QGather(fx.quantize(t, s), s)
