"""The bit-exact integer reference: every fixed-point kernel of rnnedge in numpy.

The C kernels of the integer formats (layer `fmt` s16 and s8) must give exactly the integers
these functions give. docs/quantization.md is the specification; this module is its executable
form, written operation for operation as a C loop would do it: numpy only vectorizes over the
batch and row axes, never reorders or merges an operation on one element.

Conventions (docs/quantization.md has the full text):
- Every integer value is held in an int64 numpy array; the comment or the name says the C type
  it must fit (int16 activations, int32 sums, int64 products). `_check` raises
  FixedPointOverflow when a value leaves its C type, so a test run proves that no intermediate
  overflows in C.
- One rounding rule: `rshr(v, n) = floor((v + 2^(n-1)) / 2^n)` (round half up), i.e. in C
  `(v + ((int64_t)1 << (n - 1))) >> n` with an arithmetic (flooring) right shift.
- `rq(v, m)`: requantize by the real multiplier m.m * 2^-m.shift: `rshr(v * m.m, m.shift)`,
  v * m.m computed in int64 (the converter bounds |v| so that it cannot overflow).
- Gate pre-activations are int32 in units of 1/12288 (= 2^-12 / 3, so that the table step 1/24
  is 512 units); gate outputs and bounded hidden states are int16 Q0.15 (scale 2^-15); the LSTM
  cell state is int32 Q11.20 (scale 2^-20, range +-2048).
"""

from __future__ import annotations

import math
from typing import Protocol, Sequence

import numpy as np

from .errors import InputError, RnnedgeError
from .ir.graph import Copy, Graph, Transpose, check_graph
from .ir.layers import (
    Mult, QActivation, QDense, QLayerNorm, QNetwork, QRecurrent, QSlice, QTakeLast, keeps_state,
)  # fmt: skip
from .ir.graph import QBinary, QConcat, QConv, QGather, QReduce

I64 = np.int64
INT16_MIN, INT16_MAX = -(1 << 15), (1 << 15) - 1
INT32_MIN, INT32_MAX = -(1 << 31), (1 << 31) - 1
INT64_MAX = (1 << 63) - 1
Q15_ONE = 1 << 15  # 1.0 in Q0.15 (one more than int16 holds: only ever an int32 transient)

Z_UNITS = 12288  # gate pre-activations: int32 in units of 1/Z_UNITS
Z_SCALE = 1.0 / Z_UNITS
ZMAX = 1 << 20  # |pre-activation| <= ZMAX (85.3): far past the tables' saturation
RELU_FRAC = 8  # a ReLU RNN's pre-activation: units of s_h / 2^8, rounded once into h
RELU_ZMAX = 1 << 23  # its clamp: 2^23 / 2^8 = 32768 h units, past int16's top
Q15_SCALE = 2.0**-15
C_FRAC = 20  # LSTM cell state: int32 Q11.20
C_SCALE = 2.0**-C_FRAC

SIG_STEP = 24  # sigmoid table: x = i / 24, i = 0..256
SIG_FRAC = 9  # interpolation bits: one table step = 512 pre-activation units
SIG_LIMIT = (256 << SIG_FRAC) - 1  # largest table position (index 255, fraction 511)
EXP_FRAC = 16  # softmax: exponents in Q16 log2 units
EXP_LIMIT = 16 << EXP_FRAC  # 2^-16 and below is 0 in Q0.15
LUT_SIZE = 257  # generic activation table: one entry per 256 input units over int16, plus one

GATE_KINDS = ("Sigmoid", "Tanh", "HardSigmoid")  # a cell's activations with an integer form (+ Relu in an RNN)
LUT_KINDS = ("Elu", "Softsign", "Softplus",  # activations computed through a LUT_SIZE table
             "Sqrt", "Reciprocal", "Exp", "Erf", "Pow")  # (the last five: graph models; Log: log_q)
LOG_BOUND = 15 * (1 << 15)  # log2_q15 of an int16 q >= 1 is at most 14 * 32768 + 32768

LN_SUB = 16  # LayerNorm: the mean and the deviations in units of s_in / 16
LN_FRAC = 24  # LayerNorm: the normalized value in Q24
LN_MAX_FEATURES = 65536  # an integer LayerNorm takes fewer features (sum of d^2 < 2^56)
EPS_Q_MAX = 1 << 61  # LayerNorm: eps_q is clamped to [0, 2^61], so that V < 2^62


class FixedPointOverflow(RnnedgeError, OverflowError):
    """An intermediate left the C type it must fit: a bug in the converter's bounds, never the
    caller's fault. Raised by the reference so that tests prove the C arithmetic is defined."""


def _check(v: np.ndarray, lo: int, hi: int, what: str) -> np.ndarray:
    if v.size and (int(v.min()) < lo or int(v.max()) > hi):
        raise FixedPointOverflow(
            f"{what}: value range [{int(v.min())}, {int(v.max())}] leaves [{lo}, {hi}]"
        )
    return v


def i32(v: np.ndarray, what: str) -> np.ndarray:
    """Assert that an intermediate the spec types int32 fits int32 (no-op on the value)."""
    return _check(v, INT32_MIN, INT32_MAX, what)


# -- primitives -----------------------------------------------------------------------------------
def rshr(v: np.ndarray, n: int) -> np.ndarray:
    """Rounding arithmetic shift right: floor((v + 2^(n-1)) / 2^n); n = 0 returns v."""
    if n == 0:
        return v
    return (v + (1 << (n - 1))) >> n


def rq(v: np.ndarray, mult: Mult, what: str = "requantize") -> np.ndarray:
    """rshr(v * m, shift) with the product in int64; raises if the product could overflow."""
    v = np.asarray(v, I64)
    vmax = int(np.abs(v).max()) if v.size else 0
    mmax = int(np.abs(mult.m).max()) if mult.m.size else 0
    if vmax * mmax + (1 << (mult.shift - 1)) > INT64_MAX:
        # the largest |v| and the largest |m| may sit in different rows (per-row multipliers):
        # check each product v * m as numpy pairs them, exactly, where a float estimate is close
        big = np.abs(v).astype(np.float64) * np.abs(np.asarray(mult.m)).astype(np.float64)
        for i in np.flatnonzero(big.reshape(-1) >= 2.0**62):
            vi = int(np.broadcast_to(v, big.shape).reshape(-1)[i])
            mi = int(np.broadcast_to(mult.m, big.shape).reshape(-1)[i])
            if abs(vi) * abs(mi) + (1 << (mult.shift - 1)) > INT64_MAX:
                raise FixedPointOverflow(f"{what}: |v| {abs(vi)} * |m| {abs(mi)} overflows int64")
    return rshr(v * mult.m, mult.shift)


def sat(v: np.ndarray, lo: int, hi: int) -> np.ndarray:
    return np.minimum(np.maximum(v, lo), hi)


def sat16(v: np.ndarray) -> np.ndarray:
    return sat(v, INT16_MIN, INT16_MAX)


def sat32(v: np.ndarray) -> np.ndarray:
    return sat(v, INT32_MIN, INT32_MAX)


def rq32(v: np.ndarray, mult: Mult, what: str = "requantize") -> np.ndarray:
    """sat32(rq(v, mult)): a requantized term, clamped to int32 before it is summed."""
    return sat32(rq(v, mult, what))


def round_half_up(x: np.ndarray | float) -> np.ndarray:
    """The offline rounding (weights, biases, tables, multipliers): floor(x + 0.5) in float64."""
    return np.floor(np.asarray(x, np.float64) + 0.5)


# -- tables (constants of the scheme: the C library compiles the same values) ---------------------
def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def sigmoid_table() -> np.ndarray:
    """uint16[257]: T[i] ~ 65536 * sigmoid(i / 24), lowered by s''(x) h^2 / 16 (h = 1/24) so that
    the linear interpolation's error is centred; the last entries saturate at 65535."""
    x = np.arange(LUT_SIZE, dtype=np.float64) / SIG_STEP
    s = _sigmoid(x)
    d2 = s * (1 - s) * (1 - 2 * s)
    t = round_half_up(65536.0 * (s - d2 / (16.0 * SIG_STEP**2)))
    return np.minimum(t, 65535).astype(np.uint16)


def exp2_table() -> np.ndarray:
    """uint16[257]: E[j] = round(32768 * 2^(-j/256)), so E[0] = 32768 and E[256] = 16384."""
    j = np.arange(LUT_SIZE, dtype=np.float64)
    return round_half_up(32768.0 * np.exp2(-j / 256.0)).astype(np.uint16)


def log2_table() -> np.ndarray:
    """uint16[257]: L[j] = round(32768 * log2(1 + j/256)), so L[0] = 0 and L[256] = 32768."""
    j = np.arange(LUT_SIZE, dtype=np.float64)
    return round_half_up(32768.0 * np.log2(1.0 + j / 256.0)).astype(np.uint16)


SIGMOID_TABLE = sigmoid_table()
EXP2_TABLE = exp2_table()
LOG2_TABLE = log2_table()


def _interp(table: np.ndarray, pos: np.ndarray, frac_bits: int, out_shift: int) -> np.ndarray:
    """(T[i] * (2^b - f) + T[i+1] * f + 2^(b+s-1)) >> (b + s) with i = pos >> b, f = pos & (2^b-1):
    linear interpolation, one rounding. Fits int32: 65536 * 2^b <= 2^25 for b <= 9."""
    t = table.astype(I64)
    i = pos >> frac_bits
    f = pos & ((1 << frac_bits) - 1)
    return rshr(t[i] * ((1 << frac_bits) - f) + t[i + 1] * f, frac_bits + out_shift)


def sigmoid_q15(z: np.ndarray) -> np.ndarray:
    """sigmoid of a pre-activation z (int32, units 1/12288, |z| <= 2^20) -> Q0.15 in [0, 32767].
    s = interp(|z|) in Q0.15 (one rounding from the Q0.16 table); z >= 0: min(s, 32767);
    z < 0: 32768 - s (so sigmoid(-z) = 32768 - sigmoid(z) before the clamp)."""
    a = np.minimum(np.abs(z), SIG_LIMIT)
    s = _interp(SIGMOID_TABLE, a, SIG_FRAC, 1)
    return np.where(z >= 0, np.minimum(s, INT16_MAX), Q15_ONE - s)


# |x| log2(e) in Q16 from a pre-activation in units of 1/12288: rshr(|z| L2E_M, L2E_SHIFT)
L2E_SHIFT = 24
L2E_M = int(np.floor(math.log2(math.e) * 65536 / 12288 * 2.0**L2E_SHIFT + 0.5))  # < 2^27: |z| m < 2^47


def sigmoid_tail_q31(z: np.ndarray) -> np.ndarray:
    """1 - sigmoid(x) = sigmoid(-x) of a pre-activation z (int32, units 1/12288, |z| <= 2^20) in
    Q0.31, with a relative precision of about 2^-15 down to 2^-31 (a GRU's update gate z near 1:
    Q0.15 stops at 1 - 2^-15, and h then leaks 2^-15 of itself every step where the float
    keeps it). s = interp(|z|) in Q0.16 (sigmoid(|x|), 32768..65535); z <= 0: s 2^15;
    z > 0: sigmoid(-x) = 2^(-x log2 e) sigmoid(x): t = rshr(|z| L2E_M, 24) (|x| log2 e in
    Q16), e = interp(EXP2_TABLE, t & 65535) in Q0.15, rshr(s e, min(t >> 16, 32))."""
    a = np.abs(np.asarray(z, I64))
    s = _interp(SIGMOID_TABLE, np.minimum(a, SIG_LIMIT), SIG_FRAC, 0)
    t = rshr(a * L2E_M, L2E_SHIFT)
    e = _interp(EXP2_TABLE, t & ((1 << EXP_FRAC) - 1), 8, 0)
    k = np.minimum(t >> EXP_FRAC, 32)
    tail = (s * e + ((np.int64(1) << k) >> 1)) >> k  # rshr(s e, k) with a per-element k (k = 0: s e)
    return np.where(z <= 0, s << 15, tail)


def tanh_q15(z: np.ndarray) -> np.ndarray:
    """tanh(x) = 2 sigmoid(2x) - 1 of a pre-activation z (units 1/12288) -> Q0.15 in
    [-32767, 32767]: v = interp(min(2|z|, limit)) in Q0.16 (>= 32768); t = v - 32768; sign of z."""
    a = np.minimum(2 * np.abs(z), SIG_LIMIT)
    t = _interp(SIGMOID_TABLE, a, SIG_FRAC, 0) - Q15_ONE
    return np.where(z >= 0, t, -t)


def hardsigmoid_q15(z: np.ndarray, mult: Mult, beta_q15: int) -> np.ndarray:
    """clamp(alpha x + beta, 0, 1) in Q0.15: clamp(rq32(z, alpha*s_z*2^15) + beta_q15, 0, 32767)."""
    return sat(rq32(z, mult, "hardsigmoid") + beta_q15, 0, INT16_MAX)


def lut_q(x: np.ndarray, table: np.ndarray) -> np.ndarray:
    """A generic table over the whole int16 input: u = x + 32768, i = u >> 8, f = u & 255,
    y = T[i] + rshr((T[i+1] - T[i]) * f, 8); table int16[257] (entry j at x = 256 j - 32768)."""
    t = table.astype(I64)
    u = x + Q15_ONE
    i, f = u >> 8, u & 255
    return t[i] + rshr((t[i + 1] - t[i]) * f, 8)


def log2_q15(v: np.ndarray) -> np.ndarray:
    """log2(v) in Q15 of int64 values 1 <= v < 2^47: p = bit length - 1, fr = ((v - 2^p) << 16)
    >> p (the mantissa's fraction in Q16, 0..65535), p 32768 + interp(L, fr, 8, 0). The error is
    the table's rounding (1/2 unit) plus the interpolation's (log2 is concave: under 0.1 unit)."""
    v = np.asarray(v, I64)
    p = _bit_length(v) - 1
    fr = ((v - (np.int64(1) << p)) << 16) >> p
    return p * Q15_ONE + _interp(LOG2_TABLE, fr, 8, 0)


def log_q(x: np.ndarray, mult: Mult, k0: int) -> np.ndarray:
    """ln of an int16 x at s_in -> int16 at s_out: x >= 1: sat16(rq32(log2_q15(x), m1) + k0)
    with m1 = ln2 / (2^15 s_out), k0 = round(ln(s_in) / s_out); x = 0: -32767 (ln 0 = -inf,
    saturated); x < 0: 0 (NaN, as the float quantizer maps it)."""
    x = np.asarray(x, I64)
    y = sat16(rq32(log2_q15(np.maximum(x, 1)), mult, "log") + k0)
    return np.where(x > 0, y, np.where(x == 0, -INT16_MAX, 0))


def _gate_act(kind: str, z: np.ndarray, hs: tuple[Mult, int] | None) -> np.ndarray:
    """A bounded activation of a gate pre-activation z (units 1/12288) -> Q0.15; hs holds a
    HardSigmoid's (multiplier, beta in Q0.15)."""
    if kind == "Sigmoid":
        return sigmoid_q15(z)
    if kind == "Tanh":
        return tanh_q15(z)
    if kind == "HardSigmoid":
        assert hs is not None
        return hardsigmoid_q15(z, hs[0], hs[1])
    if kind == "Relu":  # RNN only: z in units of s_h / 2^RELU_FRAC, h in units of s_h
        return sat(rshr(z, RELU_FRAC), 0, INT16_MAX)
    raise AssertionError(f"no integer form for {kind}")  # rnnedge/quant refuses these by name


def rdiv(a: np.ndarray | int, b: int) -> np.ndarray:
    """a / b rounded half up, b > 0: floor((2a + b) / (2b)) (a floor division, also for a < 0;
    C's `/` truncates, so the C kernel writes the floor out)."""
    return (2 * np.asarray(a, I64) + b) // (2 * b)


def bit_length(v: np.ndarray) -> np.ndarray:
    """Number of bits of non-negative int64 values, 0 for 0 (a count-leading-zeros in C)."""
    return _bit_length(np.asarray(v, I64))


def isqrt(v: np.ndarray) -> np.ndarray:
    """floor(sqrt(v)) of non-negative int64 values, exactly (math.isqrt per element)."""
    v = np.asarray(v, I64)
    return np.array([math.isqrt(int(a)) for a in v.ravel()], I64).reshape(v.shape)


def layernorm_bound(features: int) -> int:
    """A proven bound on |n|, the normalized value of `layernorm_q` in Q24, for F features:
    (isqrt(6F) + 2) * 2^23 >= 2^24 (1 + sqrt(6F - 5)) / 2 (1 + 2^-29) + 1/2 (docs/quantization.md
    §5 and §6 give the proof). The row multipliers' shift is chosen against it."""
    return (math.isqrt(6 * features) + 2) << (LN_FRAC - 1)


# -- model boundary: float <-> int16 (Python side; the C step path sees int16 only) -------------
def quantize(x: np.ndarray, scale: float) -> np.ndarray:
    """float -> int16 at `scale`: q = clamp(floor(x / scale + 0.5), -32768, 32767) computed in
    float64; NaN -> 0, +inf -> 32767, -inf -> -32768. Returns int16."""
    x = np.asarray(x, np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        q = np.floor(x / scale + 0.5)
    q = np.where(np.isnan(q), 0.0, q)
    return np.clip(q, INT16_MIN, INT16_MAX).astype(np.int16)


def quantize_cell(c: np.ndarray) -> np.ndarray:
    """float LSTM cell state -> int32 Q11.20, the same rule as `quantize` (NaN -> 0, saturating)."""
    c = np.asarray(c, np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        q = np.floor(c * 2.0**C_FRAC + 0.5)
    q = np.where(np.isnan(q), 0.0, q)
    return np.clip(q, INT32_MIN, INT32_MAX).astype(np.int32)


def dequantize(q: np.ndarray, scale: float) -> np.ndarray:
    """int16 -> float32: q * scale (exact in float64, one rounding to float32)."""
    return (np.asarray(q, np.float64) * scale).astype(np.float32)


# -- layers -----------------------------------------------------------------------------------
def dense_q(layer: QDense, x: np.ndarray) -> np.ndarray:
    """x [..., K] int16 -> y [..., N] int16: y = sat16(rq32(sum_k W[n,k] x[k], M[n]) + b[n])."""
    acc = np.asarray(x, I64) @ layer.W.astype(I64).T  # exact; int64 (int32 when acc32 allows)
    y = rq32(acc, layer.mult, "dense")
    if layer.bias is not None:
        y = y + layer.bias.astype(I64)
    return sat16(y)


def _softmax_exp(x: np.ndarray, mult: Mult) -> tuple[np.ndarray, np.ndarray]:
    """e_k ~ 32768 * exp((x_k - max) * s_in) by 2^-u: u = rq(max - x_k) in Q16 log2 units."""
    d = np.max(x, axis=-1, keepdims=True) - x  # 0..65535
    u = rq(d, mult, "softmax")
    small = u < EXP_LIMIT
    u = np.where(small, u, 0)
    v = _interp(EXP2_TABLE, u & ((1 << EXP_FRAC) - 1), 8, 0)  # Q1.15 in [16384, 32768]
    ip = u >> EXP_FRAC  # 0..15
    e = np.where(small, (v + ((1 << ip) >> 1)) >> ip, 0)  # rshr(v, ip) with a per-element shift
    return d, e


def act_q(layer: QActivation, x: np.ndarray) -> np.ndarray:
    """One activation layer, int16 in -> int16 out (docs/quantization.md, "Activation layers")."""
    k = layer.kind
    x = np.asarray(x, I64)
    if k in ("Identity", "Relu"):
        return sat16(rq32(np.maximum(x, 0) if k == "Relu" else x, layer.m1))
    if k in ("Abs", "Neg"):  # exact: m1 = 1; -(-32768) saturates to 32767
        return sat16(rq32(np.abs(x) if k == "Abs" else -x, layer.m1))
    if k == "LeakyRelu":
        assert layer.m2 is not None
        return sat16(np.where(x >= 0, rq32(x, layer.m1), rq32(x, layer.m2)))
    if k == "ThresholdedRelu":
        return np.where(x > layer.k0, sat16(rq32(x, layer.m1)), 0)
    if k == "Clip":
        return sat16(rq32(sat(x, layer.k0, layer.k1), layer.m1))
    if k == "Affine":
        return sat16(rq32(x, layer.m1) + layer.k0)
    if k in ("Sigmoid", "Tanh", "ScaledTanh"):
        z = sat(rq32(x, layer.m1), -ZMAX, ZMAX)
        y = sigmoid_q15(z) if k == "Sigmoid" else tanh_q15(z)
        return -y if layer.k0 < 0 else y
    if k == "HardSigmoid":
        return hardsigmoid_q15(x, layer.m1, layer.k0)
    if k in LUT_KINDS:
        assert layer.table is not None
        return lut_q(x, layer.table)
    if k == "Log":
        return log_q(x, layer.m1, layer.k0)
    if k == "Softmax":
        _, e = _softmax_exp(x, layer.m1)
        total = np.sum(e, axis=-1, keepdims=True)  # >= 32768 (the max has e = 32768)
        return np.minimum(i32(e * Q15_ONE + (total >> 1), "softmax numerator") // total, INT16_MAX)
    if k == "LogSoftmax":
        assert layer.m2 is not None
        d, e = _softmax_exp(x, layer.m1)
        total = np.sum(e, axis=-1, keepdims=True)  # int32: F * 32768 < 2^31
        lg = log2_q15(total) - 15 * Q15_ONE  # log2(total / 32768) in Q15 (total >= 32768)
        assert layer.m3 is not None
        return sat16(rq32(-d, layer.m2) - rq32(lg, layer.m3))
    raise AssertionError(f"act_q: no integer form for {k}")


def layernorm_normalize(x: np.ndarray, eps_q: int) -> np.ndarray:
    """The normalized value n_k ~ (x_k - mean) / sqrt(var + eps) of each row of x [..., F]
    (int16 values), in Q24, integer only (docs/quantization.md §5, LayerNorm). Per row:
    S = sum x; mu = rdiv(16 S, F); d = 16 x - mu; Q = sum d^2; V = max(1, rdiv(Q, F) + eps_q);
    e = the even shift that puts V 2^e in [2^60, 2^62); r = isqrt(V 2^e); inv = floor(2^61 / r);
    n = rshr(d inv, 37 - e/2). eps_q is in units of (s_in / 16)^2, 0..2^61."""
    x = np.asarray(x, I64)
    F = x.shape[-1]
    S = np.sum(x, axis=-1, keepdims=True)  # |S| <= F 2^15 < 2^31
    mu = rdiv(LN_SUB * S, F)  # the mean, units of s_in / 16
    d = i32(LN_SUB * x - mu, "layernorm d")  # |d| < 2^20
    Q = _check(np.sum(d * d, axis=-1, keepdims=True), 0, 1 << 56, "layernorm sum d^2")
    V = np.maximum(rdiv(Q, F) + eps_q, 1)  # < 2^40 + 2^61 < 2^62
    e = (62 - bit_length(V)) & ~1  # even, 0..60
    r = _check(isqrt(V << e), 1 << 30, (1 << 31) - 1, "layernorm isqrt")
    inv = (np.int64(1) << 61) // r  # (2^30, 2^31]
    sh = 37 - (e >> 1)  # 7..37
    n = (d * inv + (np.int64(1) << (sh - 1))) >> sh  # rshr(d inv, sh) per row; |d inv| < 2^51
    bound = layernorm_bound(F)
    return _check(n, -bound, bound, "layernorm normalized value")


def layernorm_q(layer: QLayerNorm, x: np.ndarray) -> np.ndarray:
    """LayerNorm, int16 x [..., F] at s_in -> int16 y at s_out: y_k = sat16(rq32(n_k, Mg[k]) + b_k)
    with n = layernorm_normalize(x, eps_q), Mg[k] = gamma_k 2^-24 / s_out and
    b = round(beta / s_out)."""
    y = rq32(layernorm_normalize(x, layer.eps_q), layer.mult, "layernorm")
    if layer.bias is not None:
        y = y + layer.bias.astype(I64)
    return sat16(y)


def _bit_length(v: np.ndarray) -> np.ndarray:
    """Number of bits of positive int64 values (a count-leading-zeros in C)."""
    out = np.zeros_like(v)
    w = v.copy()
    for b in (32, 16, 8, 4, 2, 1):
        big = w >= (np.int64(1) << b)
        out = np.where(big, out + b, out)
        w = np.where(big, w >> b, w)
    return out + (w > 0)


def lstm_step_q(
    L: QRecurrent, d: int, x: np.ndarray, h: np.ndarray, c: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """One integer LSTM step of direction d: x [B, I], h [B, H] int16 Q0.15, c [B, H] int32
    Q11.20. Rows of the accumulator: i, o, f, g (ONNX order i, o, f, c)."""
    H = L.hidden
    acc_w = x @ L.W[d].astype(I64).T  # [B, 4H], exact
    acc_r = h @ L.R[d].astype(I64).T
    pre = rq32(acc_w, L.row_mult(d, "w"), "lstm W x") + rq32(acc_r, L.row_mult(d, "r"), "lstm R h")
    pre = pre + L.bias[d].astype(I64)
    zi, zo, zf, zg = (pre[:, k * H : (k + 1) * H] for k in range(4))
    f_kind, g_kind, h_kind = L.acts[d]
    hs_f, hs_g, hs_h = L.hs[d]
    if L.P is not None:  # peepholes i and f see c(t-1), o sees c(t)
        P = L.P[d].astype(I64)
        zi = zi + rq32(P[0] * c, L.peep_mult(d, 0), "peephole i")  # int16 x int32: int64
        zf = zf + rq32(P[2] * c, L.peep_mult(d, 2), "peephole f")
    i = _gate_act(f_kind, sat(zi, -L.zlim, L.zlim), hs_f)
    if L.input_forget:
        f = np.minimum(Q15_ONE - i, INT16_MAX)
    else:
        f = _gate_act(f_kind, sat(zf, -L.zlim, L.zlim), hs_f)
    g = _gate_act(g_kind, sat(zg, -L.zlim, L.zlim), hs_g)
    # f*c: Q0.15 x Q11.20 in int64, back to Q11.20; i*g: Q0.30 -> Q11.20 is a shift by 10
    c_new = sat32(rshr(f * c, 15) + rshr(i32(i * g, "i*g"), 30 - C_FRAC))
    if L.P is not None:
        zo = zo + rq32(P[1] * c_new, L.peep_mult(d, 1), "peephole o")
    o = _gate_act(f_kind, sat(zo, -L.zlim, L.zlim), hs_f)
    zc = sat(rshr(3 * c_new, 8), -ZMAX, ZMAX)  # Q11.20 -> units of 1/12288: x 12288 / 2^20 = 3/256
    tc = _gate_act(h_kind, zc, hs_h)
    h_new = sat16(rshr(i32(o * tc, "o*tanh(c)"), 15))
    return h_new, c_new


def cell_from_value(L: QRecurrent, v: np.ndarray) -> np.ndarray:
    """An LSTM's c_init value (int16 at its scale s) as its cell state, int32 Q11.20:
    sat32(rshr(v * m, shift)) with the product in int64, (m, shift) = L.c_in ~ s * 2^20
    (docs/quantization.md section 14)."""
    assert L.c_in is not None
    return rq32(np.asarray(v, I64), L.c_in, "c_init to Q11.20").astype(np.int32)


def cell_to_value(L: QRecurrent, c: np.ndarray) -> np.ndarray:
    """An LSTM's cell state (int32 Q11.20) as its Y_c value, int16 at that value's scale s:
    sat16(rshr(c * m, shift)) with the product in int64, (m, shift) = L.c_out ~ 2^-20 / s."""
    assert L.c_out is not None
    return sat16(rq(np.asarray(c, I64), L.c_out, "Q11.20 to Y_c")).astype(np.int16)


def gru_step_q(L: QRecurrent, d: int, x: np.ndarray, h: np.ndarray) -> np.ndarray:
    """One integer GRU step of direction d (gates z, r, h). The h gate's recurrent term is
    R_h (r*h) (linear_before_reset 0) or r * (R_h h + Rbh) (linear_before_reset 1)."""
    H = L.hidden
    f_kind, g_kind = L.acts[d]
    hs_f, hs_g = L.hs[d]
    W, R = L.W[d].astype(I64), L.R[d].astype(I64)
    b = L.bias[d].astype(I64)
    zr_w = rq32(x @ W[: 2 * H].T, L.row_mult(d, "w", 0, 2 * H), "gru z,r W x")
    zr_r = rq32(h @ R[: 2 * H].T, L.row_mult(d, "r", 0, 2 * H), "gru z,r R h")
    pre_zr = zr_w + zr_r + b[: 2 * H]
    z = _gate_act(f_kind, sat(pre_zr[:, :H], -L.zlim, L.zlim), hs_f)
    r = _gate_act(f_kind, sat(pre_zr[:, H:], -L.zlim, L.zlim), hs_f)
    n_w = rq32(x @ W[2 * H :].T, L.row_mult(d, "w", 2 * H), "gru h W x")
    if L.linear_before_reset:
        hn = rq32(h @ R[2 * H :].T, L.row_mult(d, "r", 2 * H), "gru h R h") + b[3 * H :]
        hn = sat(hn, -ZMAX, ZMAX)
        n_pre = n_w + b[2 * H : 3 * H] + rshr(r * hn, 15)
    else:
        hr = rshr(i32(r * h, "r*h"), 15)  # Q0.15, |hr| <= 32767
        n_pre = n_w + rq32(hr @ R[2 * H :].T, L.row_mult(d, "r", 2 * H), "gru h R (r*h)")
        n_pre = n_pre + b[2 * H : 3 * H]
    n = _gate_act(g_kind, sat(n_pre, -L.zlim, L.zlim), hs_g)
    if f_kind == "Sigmoid":  # h + (1 - z)(n - h), 1 - z in Q0.31 (sigmoid_tail_q31); < 2^47
        zc = sigmoid_tail_q31(sat(pre_zr[:, :H], -L.zlim, L.zlim))
        return sat16(h + rshr(zc * (n - h), 31))
    return sat16(n + rshr(i32(z * (h - n), "z*(h-n)"), 15))


def rnn_step_q(L: QRecurrent, d: int, x: np.ndarray, h: np.ndarray) -> np.ndarray:
    """One integer RNN step: h' = f(sat(rq32(W x + R h) + b, zlim)); for Relu z is in h's units."""
    pre_w = rq32(x @ L.W[d].astype(I64).T, L.row_mult(d, "w"), "rnn W x")
    pre_r = rq32(h @ L.R[d].astype(I64).T, L.row_mult(d, "r"), "rnn R h")
    pre = pre_w + pre_r + L.bias[d].astype(I64)
    return _gate_act(L.acts[d][0], sat(pre, -L.zlim, L.zlim), L.hs[d][0])


IntState = tuple[np.ndarray, ...]  # (h,) int16, or (h int16, c int32), each [D, B, H]


def recurrent_q(L: QRecurrent, x: np.ndarray, state: IntState) -> tuple[np.ndarray, IntState]:
    """A whole integer recurrent layer over x [T, B, I] int16 from state ((h,) int16 or (h int16,
    c int32), each [D, B, H]); returns y [T, B, D*H] int16 and the final state. A backward direction runs
    from step T-1 down to 0."""
    T, batch, _ = x.shape
    D, H = L.num_directions, L.hidden
    x = x.astype(I64)
    y = np.zeros((T, batch, D * H), np.int16)
    hs = state[0].astype(I64).copy()
    cs = state[1].astype(I64).copy() if L.cell == "lstm" else None
    for d in range(D):
        backward = L.direction == "reverse" or d == 1
        h = hs[d]
        c = None if cs is None else cs[d]
        for t in reversed(range(T)) if backward else range(T):
            if L.cell == "lstm":
                assert c is not None
                h, c = lstm_step_q(L, d, x[t], h, c)
            elif L.cell == "gru":
                h = gru_step_q(L, d, x[t], h)
            else:
                h = rnn_step_q(L, d, x[t], h)
            _check(h, INT16_MIN, INT16_MAX, "hidden state")
            y[t, :, d * H : (d + 1) * H] = h
        hs[d] = h
        if cs is not None:
            cs[d] = c
    if cs is not None:
        _check(cs, INT32_MIN, INT32_MAX, "cell state")
    final = (hs.astype(np.int16),) if cs is None else (hs.astype(np.int16), cs.astype(np.int32))
    return y, final


def inner_q(L: QRecurrent, x: np.ndarray, out: tuple[int, ...]) -> np.ndarray:
    """An integer recurrent node over a per-step axis (L.inner elements): x [T, B, L, ..] int16
    -> y [T, B, *out], each row's elements one sequence from a zero state (rne__inner_int)."""
    T, B, n = x.shape[0], x.shape[1], L.inner
    seq = np.asarray(x).reshape(T * B, n, -1).transpose(1, 0, 2)  # [L, rows, I]
    zeros = tuple(np.zeros((L.num_directions, T * B, L.hidden), dt) for dt in state_dtypes(L))
    y, _ = recurrent_q(L, seq, zeros)
    return np.ascontiguousarray(y.transpose(1, 0, 2)).reshape((T, B) + tuple(out))


def layer_q(layer: object, x: np.ndarray) -> np.ndarray:
    """One stateless integer layer over x [T, B, F] int16 -> int16."""
    if isinstance(layer, QDense):
        return dense_q(layer, x).astype(np.int16)
    if isinstance(layer, QLayerNorm):
        return layernorm_q(layer, x).astype(np.int16)
    if isinstance(layer, QActivation):
        return _check(act_q(layer, x), INT16_MIN, INT16_MAX, layer.kind).astype(np.int16)
    if isinstance(layer, QTakeLast):
        if x.shape[0] == 0:
            raise InputError("the model outputs its last timestep, but the sequence is empty (T = 0)")
        return np.concatenate([x[-1:, :, : layer.split], x[:1, :, layer.split :]], axis=-1)
    if isinstance(layer, QSlice):
        return x[:, :, layer.start : layer.stop].copy()
    raise TypeError(f"layer_q: {type(layer).__name__} is not a stateless quantized layer")


def state_dtypes(L: QRecurrent) -> tuple[type, ...]:
    """The C types of a layer's state: h int16, and for an LSTM c int32."""
    return (np.int16, np.int32) if L.cell == "lstm" else (np.int16,)


def layer_initial_state(L: QRecurrent, batch: int) -> IntState:
    """One layer's H0 (int16) / C0 (int32) broadcast over the batch, or zeros."""
    shape = (L.num_directions, batch, L.hidden)
    arrays = [L.h0] + ([L.c0] if L.cell == "lstm" else [])
    return tuple(
        np.zeros(shape, dt) if a is None else np.broadcast_to(a[:, None, :], shape).astype(dt)
        for a, dt in zip(arrays, state_dtypes(L))
    )


def initial_state_q(qnet: QNetwork, batch: int) -> list[IntState]:
    """The state a run starts from: every recurrent layer's `layer_initial_state`, in order."""
    return [layer_initial_state(L, batch) for L in qnet.layers if isinstance(L, QRecurrent)]


# -- the integer dataflow graph (docs/graph.md) ---------------------------------------------------
# {"nodes": [IntState per recurrent node], "values": [int16 [B, *shape]], "convs": [int16
# [(kt - 1) dt, B, *x shape] per QConv node in node order], "step": [steps run so far]}
QGraphState = dict[str, list]


def initial_qgraph_state(qg: Graph, batch: int) -> QGraphState:
    """Recurrent nodes' initial states (`layer_initial_state`, in node order) and the state values'
    inits (int16 at the value's scale) broadcast over the batch, or zeros."""
    nodes = [layer_initial_state(n.op, batch) for n in qg.nodes if keeps_state(n.op)]
    values = []
    for i in qg.state_values:
        v = qg.values[i]
        init = np.zeros(v.features, np.int16) if v.init is None else np.asarray(v.init, np.int16)
        values.append(np.broadcast_to(init.reshape(v.shape), (batch,) + v.shape).copy())
    convs = [np.zeros((n.op.conv.cache_frames, batch) + qg.values[n.inputs[0]].shape, np.int16)
             for n in qg.nodes if isinstance(n.op, QConv)]
    return {"nodes": nodes, "values": values, "convs": convs, "step": [0]}


def _flat(a: np.ndarray) -> np.ndarray:
    """[T, B, *shape] -> [T * B, *shape]: the rows of the per-op oracles (and of the C arrays)."""
    return a.reshape((-1,) + a.shape[2:])


def _qslice(op: QSlice, x: np.ndarray) -> np.ndarray:
    index = [slice(None)] * x.ndim
    index[op.axis % (x.ndim - 2) + 2] = slice(op.start, op.stop, op.step)
    return x[tuple(index)].copy()


Reuse = tuple[dict[int, list[np.ndarray]], set[int]]  # run_qgraph's `reuse`: (seen, nodes changed)


def _qnodes(qg: Graph, x: np.ndarray, state: QGraphState,
            seen: dict[int, list[np.ndarray]] | None, end: int | None = None,
            reuse: Reuse | None = None, chunk: int = 0, differ: set[int] | None = None,
            ) -> np.ndarray:  # fmt: skip
    """All nodes once over x [T, B, *in shape] (T = 1 for an explicit-state graph); updates
    `state` in place (the integer twin of rnnedge.reference's graph executor, `end` as there:
    the real input's length, after which each node's input ends lagged by its delay). With
    `reuse` (run_qgraph's), this is call `chunk` and `differ` holds the state values that differ
    from the earlier run's (updated in place for the next call)."""
    T, B = x.shape[:2]
    t0 = state.setdefault("step", [0])[0]
    convs = state.setdefault("convs", [])
    vals: dict[int, np.ndarray] = {qg.input: x}
    for k, i in enumerate(qg.state_values):
        vals[i] = state["values"][k][None]
    diff = set(differ or ())  # the values that differ from the earlier run's in this call
    r = c = 0
    for idx, n in enumerate(qg.nodes):
        if reuse is not None and idx not in reuse[1] and not (
                keeps_state(n.op) or isinstance(n.op, QConv) and n.op.conv.cache_frames) and not any(
                v in diff for v in n.inputs if v is not None):  # fmt: skip
            for v in n.outputs:  # no state, the same inputs: the same outputs
                if v is not None:
                    vals[v] = reuse[0][v][chunk]
                    if seen is not None:
                        seen.setdefault(v, []).append(vals[v])
            continue
        # the node's skip (docs/graph.md section 6): the stream's steps before its input's delay
        D = max((qg.values[v].delay for v in n.inputs if v is not None), default=0)
        lo = min(T, max(0, D - t0))
        hi = T if end is None else max(lo, min(T, end + D - t0))  # past it: the input has ended
        ins = [None if v is None else vals[v] for v in n.inputs]
        if isinstance(n.op, (QBinary, QConcat)):  # a state value's one row meets a chunk's rows
            T0 = max(a.shape[0] for a in ins if a is not None)
            ins = [None if a is None else np.broadcast_to(a, (T0,) + a.shape[1:]) for a in ins]
        outs = [() if v is None else qg.values[v].shape for v in n.outputs]
        op, x0 = n.op, ins[0]
        assert x0 is not None
        rows = x0.shape[0]
        results: list[np.ndarray | None]
        if isinstance(op, QConv):  # rows from lo on; the skipped ones neither read nor cached
            if hi < rows and not qg.values[n.inputs[0]].last:  # past the input's end: zeros
                x0 = x0.copy()
                x0[hi:] = 0
            y = np.zeros((rows, B) + outs[0], np.int16)
            if lo < rows:
                y[lo:], new = conv_q(qconv_spec(op), x0[lo:], convs[c] if op.conv.cache_frames else None,
                                     acc32=op.acc_bound <= INT32_MAX)
                if op.conv.cache_frames:
                    convs[c] = new.astype(np.int16)
            c += 1
            results = [y]
        elif isinstance(op, QRecurrent) and op.inner:
            results = [inner_q(op, x0, outs[0])]
            if lo > 0:
                results[0][:lo] = 0  # the skipped steps write zeros
        elif isinstance(op, QRecurrent) and (lo > 0 or hi < rows):  # the skipped steps and those
            if any(v is not None for v in n.inputs[1:]):          # past the end: zeros, no state
                raise InputError(f"node {n.name!r}: a recurrent node with state inputs after a "
                                 "delayed value")  # fmt: skip
            y = np.zeros((rows, B) + outs[0], np.int16)
            fin = state["nodes"][r]
            if lo < hi:
                yr, fin = recurrent_q(op, x0[lo:hi].reshape(hi - lo, B, -1), tuple(state["nodes"][r]))
                y[lo:hi] = yr.reshape((hi - lo, B) + outs[0])
            state["nodes"][r] = fin
            r += 1
            results = [y]
            if len(n.outputs) > 1 and n.outputs[1] is not None:
                results.append(fin[0].transpose(1, 0, 2).reshape((1, B) + outs[1]))
            if len(n.outputs) > 2 and n.outputs[2] is not None:
                if op.c_out is None:
                    raise InputError(f"node {n.name!r}: writes its cell state as a value without "
                                     "the multiplier for it (c_out)")  # fmt: skip
                results.append(cell_to_value(op, fin[1]).transpose(1, 0, 2).reshape(
                    (1, B) + outs[2]))
        elif isinstance(op, QRecurrent):
            D, H = op.num_directions, op.hidden
            s = list(state["nodes"][r])
            if len(ins) > 1 and ins[1] is not None:  # h_init: the value's first row of the chunk
                s[0] = np.asarray(ins[1][0]).reshape(B, D, H).transpose(1, 0, 2).astype(np.int16)
            c_in = ins[2] if len(ins) > 2 else None
            y_c = len(n.outputs) > 2 and n.outputs[2] is not None
            if (c_in is not None and op.c_in is None) or (y_c and op.c_out is None):
                raise InputError(f"node {n.name!r}: reads or writes its cell state as a value "
                                 "without the multiplier for it (c_in / c_out)")  # fmt: skip
            if c_in is not None:  # c_init: the first row, to Q11.20
                s[1] = cell_from_value(op, np.asarray(c_in[0]).reshape(B, D, H).transpose(1, 0, 2))
            y, fin = recurrent_q(op, x0.reshape(rows, B, -1), tuple(s))
            state["nodes"][r] = fin
            r += 1
            results = [y.reshape((rows, B) + outs[0])]
            if len(n.outputs) > 1 and n.outputs[1] is not None:
                results.append(fin[0].transpose(1, 0, 2).reshape((1, B) + outs[1]))
            if y_c:
                results.append(cell_to_value(op, fin[1]).transpose(1, 0, 2).reshape(
                    (1, B) + outs[2]))
        elif isinstance(op, QBinary):  # the per-op oracles ("graph ops") take [rows, *shape]
            # with a constant operand binary_q puts it on its side (op.const_left) itself
            a, b = _flat(x0), None if len(ins) < 2 or ins[1] is None else _flat(ins[1])
            assert b is not None or op.const is not None
            results = [binary_q(op, a, b, outs[0]).reshape((-1, B) + outs[0])]
        elif isinstance(op, QConcat):
            y = concat_q(op, [_flat(a) for a in ins if a is not None])
            results = [y.reshape((rows, B) + outs[0])]
        elif isinstance(op, QReduce):
            results = [reduce_q(op, _flat(x0)).reshape((rows, B) + outs[0])]
        elif isinstance(op, QGather):
            results = [gather_q(op, _flat(x0)).reshape((rows, B) + outs[0])]
        elif isinstance(op, QSlice):
            results = [_qslice(op, x0)]
        elif isinstance(op, QTakeLast) and hi < rows:  # the step before its input's end
            results = [layer_q(op, x0[:hi].reshape(hi, B, -1)) if hi else np.zeros((1, B) + outs[0], np.int16)]
        elif isinstance(op, QTakeLast):
            results = [layer_q(op, x0.reshape(rows, B, -1))]
        elif isinstance(op, (Copy, Transpose)):
            results = [x0 if isinstance(op, Copy) else x0.transpose(
                (0, 1) + tuple(p + 2 for p in op.perm))]  # fmt: skip
        elif isinstance(op, (QDense, QActivation, QLayerNorm)):
            results = [layer_q(op, x0)]
        else:
            raise TypeError(f"node {n.name!r}: {type(op).__name__} is not an integer graph op")
        if lo and not isinstance(op, (QConv, QRecurrent)) and not qg.values[n.outputs[0]].last:
            results[0] = np.array(results[0])
            results[0][:lo] = 0  # the skipped steps write zeros
        for v, a in zip(n.outputs, results):
            if v is not None and a is not None:
                a = np.ascontiguousarray(a.reshape(a.shape[:2] + qg.values[v].shape), np.int16)
                vals[v] = a
                if seen is not None:
                    seen.setdefault(v, []).append(a)
                if reuse is not None and not np.array_equal(a, reuse[0][v][chunk]):
                    diff.add(v)
    for k, i in enumerate(qg.state_values):
        u = qg.values[i].update
        if u is not None:
            state["values"][k] = vals[u][-1].reshape((B,) + qg.values[i].shape).copy()
    if differ is not None:  # a state differs next call where its update differs now
        differ.clear()
        differ.update(i for i in qg.state_values if qg.values[i].update in diff)
    state["step"] = [t0 + T]
    return vals[qg.output]


def _checked_qstate(qg: Graph, state: QGraphState, batch: int) -> QGraphState:
    """A copy of a caller's state, its layout checked against initial_qgraph_state's."""
    want = initial_qgraph_state(qg, batch)
    if not isinstance(state, dict) or not {"nodes", "values"} <= set(state) <= {"nodes", "values",
                                                                               "convs", "step"}:
        raise InputError("state: expected {'nodes': [...], 'values': [...], 'convs': [...], "
                         "'step': [n]} as run_qgraph returns it")
    out: QGraphState = {"nodes": [], "values": [], "convs": [], "step": [int(state.get("step", [0])[0])]}
    if "convs" not in state:
        state = dict(state, convs=want["convs"])
    for key in ("nodes", "values", "convs"):
        got = list(state[key])
        if len(got) != len(want[key]):
            raise InputError(f"state[{key!r}]: expected {len(want[key])} entries, got {len(got)}")
        for k, (g_, w) in enumerate(zip(got, want[key])):
            gs = tuple(g_) if key == "nodes" else (g_,)
            ws = w if key == "nodes" else (w,)
            if len(gs) != len(ws) or any(np.asarray(a).shape != b.shape or np.asarray(a).dtype != b.dtype
                                         for a, b in zip(gs, ws)):  # fmt: skip
                raise InputError(
                    f"state[{key!r}][{k}]: expected {[(str(b.dtype), list(b.shape)) for b in ws]}, "
                    f"got {[(str(np.asarray(a).dtype), list(np.asarray(a).shape)) for a in gs]}"
                )
            copies = tuple(np.array(a) for a in gs)
            out[key].append(copies if key == "nodes" else copies[0])
    return out


def run_qgraph(
    qg: Graph, xq: np.ndarray, state: QGraphState | None = None,
    seen: dict[int, list[np.ndarray]] | None = None, flush: bool = False,
    reuse: Reuse | None = None,
) -> tuple[np.ndarray, QGraphState]:
    """The integer graph (docs/graph.md, rnnedge/quant `quantize_graph`): xq [T, B, *input shape]
    int16 at the input value's scale (integer ids for an s32 input) -> (yq int16 [T, B, *output
    shape], [1, B, ...] for a LAST output, at the output value's scale; the final state). This is
    exactly what the C library computes. An explicit-state graph runs one step at a time; `seen`
    collects every computed value as `rnnedge.reference.run_graph` does; `state` defaults to
    `initial_qgraph_state(qg, B)` and is not modified. `flush=True` (a graph with latency, as
    `rnnedge.reference.run_graph`'s): qg.latency zero frames after xq, each node's input ending
    where xq's does (lagged by its delay), the first latency rows dropped: what the C library's
    Model.run (rne_run_end) computes. `reuse` = (seen, nodes): the `seen` of an earlier run of a
    graph of the same values and node inputs and outputs on the same xq and state, and the
    indices of the nodes whose ops differ from that graph's; a node that keeps no state across
    calls (no recurrent state, no conv cache), is not among them and reads only values equal to
    the earlier run's takes its outputs from that `seen` (the int8 search's shortcut, rnnedge/
    quant/graph.py: with one node's weights changed, only what its changes reach is computed).
    The results are the same as without it."""
    check_graph(qg)
    for v in qg.values:
        if v.dtype == "f32":
            raise InputError(f"run_qgraph runs an integer graph; value {v.name!r} is f32 (quantize "
                             "the graph first: rnnedge.quant.graph.quantize_graph)")  # fmt: skip
    v_in = qg.values[qg.input]
    xq = np.asarray(xq)
    if xq.ndim != len(v_in.shape) + 2 or tuple(xq.shape[2:]) != v_in.shape:
        raise InputError(f"x: expected an array of shape [T, B, {', '.join(map(str, v_in.shape))}],"
                         f" got {list(xq.shape)}")  # fmt: skip
    if v_in.dtype == "s32" and xq.dtype.kind not in "iu":
        raise InputError(f"input {v_in.name!r} takes integer ids, got {xq.dtype}")
    if v_in.dtype == "s16" and xq.dtype != np.int16:
        raise InputError(f"x: expected int16 (quantized at the input scale), got {xq.dtype}")
    B = xq.shape[1]
    st = initial_qgraph_state(qg, B) if state is None else _checked_qstate(qg, state, B)
    if flush and qg.latency:
        if qg.explicit_state:
            raise InputError("flush: a step function with latency runs step by step only")
        end = st.setdefault("step", [0])[0] + xq.shape[0]
        xf = np.concatenate([xq, np.zeros((qg.latency,) + xq.shape[1:], xq.dtype)], axis=0)
        y = _qnodes(qg, xf, st, seen, end, reuse)
        return (y if qg.many_to_one else y[qg.latency :]), st
    if not qg.explicit_state:
        return _qnodes(qg, xq, st, seen, reuse=reuse), st
    differ: set[int] = set()
    ys = [_qnodes(qg, xq[t : t + 1], st, seen, reuse=reuse, chunk=t, differ=differ)
          for t in range(xq.shape[0])]
    if qg.many_to_one:
        return ys[-1], st
    if not ys:
        return np.zeros((0, B) + qg.values[qg.output].shape, np.int16), st
    return np.concatenate(ys, axis=0), st


def run_int(
    qnet: QNetwork, xq: np.ndarray, state: Sequence[IntState] | None = None
) -> tuple[np.ndarray, list[IntState]]:
    """The integer pipeline: xq [T, B, in] int16 at qnet.in_scale -> (yq int16 [T or 1, B, out] at
    qnet.out_scale, final state). This is exactly what the C library computes."""
    xq = np.asarray(xq)
    if xq.ndim != 3 or xq.shape[2] != qnet.in_features:
        raise InputError(f"x: expected shape [T, B, {qnet.in_features}], got {list(xq.shape)}")
    if xq.dtype != np.int16:
        raise InputError(f"x: expected int16 (quantized at the input scale), got {xq.dtype}")
    batch = xq.shape[1]
    states = list(initial_state_q(qnet, batch) if state is None else state)
    n_rec = sum(isinstance(layer, QRecurrent) for layer in qnet.layers)
    if len(states) != n_rec:
        raise InputError(f"state: expected one entry per recurrent layer ({n_rec}), got {len(states)}")
    y = xq
    final: list[IntState] = []
    for layer in qnet.layers:
        if isinstance(layer, QRecurrent):
            s = states[len(final)]
            want = (layer.num_directions, batch, layer.hidden)
            dts = state_dtypes(layer)
            if len(s) != len(dts) or any(a.shape != want or a.dtype != t for a, t in zip(s, dts)):
                names = "h int16, c int32" if len(dts) == 2 else "h int16"
                raise InputError(
                    f"state[{len(final)}]: expected ({names}) of shape {list(want)}, got "
                    f"{[(str(a.dtype), list(a.shape)) for a in s]}"
                )
            y, s = recurrent_q(layer, y, s)
            final.append(s)
        else:
            y = layer_q(layer, y)
    return y, final


def run_quantized(
    qnet: QNetwork,
    x: np.ndarray,
    state: Sequence[IntState] | None = None,
    *,
    return_state: bool = False,
) -> np.ndarray | tuple[np.ndarray, list[IntState]]:
    """Float in, float out: quantize x [T, B, in] at the input scale (NaN -> 0, see `quantize`),
    run the integer pipeline (`run_int`), dequantize the output. With return_state=True also
    returns the final integer state, to pass back as `state` for the next chunk of a stream."""
    x = np.asarray(x)
    if x.ndim != 3 or x.dtype.kind not in "fiu":
        raise InputError(
            f"x: expected a numeric array [T, B, {qnet.in_features}], got {x.dtype} {list(x.shape)}"
        )
    yq, final = run_int(qnet, quantize(x, qnet.in_scale), state)
    y = dequantize(yq, qnet.out_scale)
    return (y, final) if return_state else y


# -- graph ops (docs/quantization.md "Graph ops"; csrc/ops_int.c executes the same integers) ------
# Arrays are the C layout: one leading axis of rows (steps * batch), then the value's per-step
# shape ([rows, *shape]). SLICE, TRANSPOSE and COPY move int16 values unchanged (numpy indexing,
# transpose, reshape), so they need no oracle here.




def _rshr_checked(v: np.ndarray, shift: int, what: str) -> np.ndarray:
    """rshr(v, shift) where v + 2^(shift-1) must fit int64 (raises FixedPointOverflow if not)."""
    _check(v, -INT64_MAX - 1, INT64_MAX - (1 << (shift - 1)), what)
    return rshr(v, shift)


HYPOT_MMAX = 1 << 30  # HYPOT's multipliers: a^2 m_a + b^2 m_b < 2^61, times 4 inside int64
# LOGHYPOT's: the root r < 2^29.5 + 1, in 16 more fraction bits, and |e| <= 2^46 keep
# v = r 2^16 + e < 2^47 (log2_q15's domain)
LOGHYPOT_MMAX = 1 << 28
LOGHYPOT_FRAC = 16
LOGHYPOT_EMAX = 1 << 46
LOGHYPOT_BOUND = 47 * (1 << 15)  # log2_q15 of v < 2^47 is at most 46 * 32768 + 32768


def _binary_operands(a: np.ndarray, b: np.ndarray, out_shape: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """a [rows, *sa], b [rows, *sb] broadcast to [rows, *out_shape] (per-step shapes aligned right)."""
    nd = len(out_shape)
    a = np.asarray(a, I64)
    b = np.asarray(b, I64)
    a = a.reshape(a.shape[:1] + (1,) * (nd + 1 - a.ndim) + a.shape[1:])
    b = b.reshape(b.shape[:1] + (1,) * (nd + 1 - b.ndim) + b.shape[1:])
    shape = (max(a.shape[0], b.shape[0]), *out_shape)
    return np.broadcast_to(a, shape), np.broadcast_to(b, shape)


def binary_q(op: QBinary, a: np.ndarray, b: np.ndarray | None, out_shape: Sequence[int]) -> np.ndarray:
    """BINARY in integers, int16 [rows, *out_shape] (numpy broadcasting of the per-step shapes).
    With a constant operand (op.const, int16 [*shape], the same in every row) and b None, the
    constant is b, or a when op.const_left, and `a` the input value; a caller that passes both
    operands (run_qgraph places the constant itself) gets them as given.
    ADD / SUB  sat16(rshr(a m_a +- b m_b, shift))
    MIN / MAX  sat16(min / max(rshr(a m_a, shift), rshr(b m_b, shift)))
    MUL        sat16(rshr(a b m_a, shift))
    DIV        b != 0: sat16(rshr(rdiv(a m_a, b), shift)), rdiv = the quotient rounded half up with
               b's sign moved onto a m_a: floor((2 p + q) / (2 q)), q = |b|; b == 0: 32767, -32768
               or 0 by the sign of a.
    HYPOT      sat16(rshr(isqrt(4 (a^2 m_a + b^2 m_b)), shift / 2 + 1)): sqrt(a^2 + b^2) rounded
               half up, the squares exact in int64 (0 <= m_a, m_b < 2^30, shift even in 2..62)
    LOGHYPOT   log_q((rshr(isqrt(4 (a^2 m_a + b^2 m_b)), 1) << 16) + e, (m1, shift), k0): the
               Log of the root of the exact sum, not of an int16 magnitude, plus e in units of
               the root's 2^-16 (0 <= m_a, m_b < 2^28, |e| <= 2^46)
    POW has no integer form (rnnedge/quant refuses it; the C loader too)."""
    if op.const is not None and b is None:  # else the caller has placed the constant itself
        c = np.asarray(op.const, I64)[None]
        a, b = (c, a) if op.const_left else (a, c)
    assert b is not None, "binary_q: two inputs, or one and op.const"
    x0, x1 = _binary_operands(a, b, out_shape)
    _check(x0, INT16_MIN, INT16_MAX, "binary input a")
    _check(x1, INT16_MIN, INT16_MAX, "binary input b")
    ma, mb, s, k = int(op.ma), int(op.mb), int(op.shift), op.kind
    if not (INT32_MIN <= ma <= INT32_MAX and INT32_MIN <= mb <= INT32_MAX):
        raise FixedPointOverflow(f"binary {k}: multipliers {ma}, {mb} outside int32")
    if not 1 <= s <= 62:
        raise FixedPointOverflow(f"binary {k}: shift {s} outside 1..62")
    if k in ("Add", "Sub"):
        v = x0 * ma + x1 * mb if k == "Add" else x0 * ma - x1 * mb
        return sat16(_rshr_checked(v, s, f"binary {k}"))
    if k in ("Min", "Max"):
        ra = _rshr_checked(x0 * ma, s, f"binary {k}")
        rb = _rshr_checked(x1 * mb, s, f"binary {k}")
        return sat16(np.minimum(ra, rb) if k == "Min" else np.maximum(ra, rb))
    if k == "Mul":
        return sat16(_rshr_checked(x0 * x1 * ma, s, "binary Mul"))
    if k == "Hypot":
        if not (0 <= ma < HYPOT_MMAX and 0 <= mb < HYPOT_MMAX and s % 2 == 0):
            raise FixedPointOverflow(f"binary Hypot: multipliers {ma}, {mb} outside [0, 2^30) or "
                                     f"shift {s} odd")  # fmt: skip
        return sat16(rshr(isqrt(4 * (x0 * x0 * ma + x1 * x1 * mb)), s // 2 + 1))
    if k == "LogHypot":
        if not (0 <= ma < LOGHYPOT_MMAX and 0 <= mb < LOGHYPOT_MMAX and abs(op.e) <= LOGHYPOT_EMAX
                and INT32_MIN <= op.m1 <= INT32_MAX and INT32_MIN <= op.k0 <= INT32_MAX):  # fmt: skip
            raise FixedPointOverflow(f"binary LogHypot: multipliers {ma}, {mb} outside [0, 2^28), "
                                     f"|e| {abs(op.e)} above 2^46 or m1, k0 outside int32")  # fmt: skip
        r = rshr(isqrt(4 * (x0 * x0 * ma + x1 * x1 * mb)), 1)
        return log_q((r << LOGHYPOT_FRAC) + op.e, Mult(np.int64(op.m1), s), op.k0)
    if k == "Div":
        num = x0 * ma * np.where(x1 < 0, -1, 1)  # |a m| <= 2^46
        den = np.where(x1 == 0, 1, np.abs(x1))
        q = (2 * num + den) // (2 * den)  # a floor division, as the C kernel writes it out
        zero = np.where(x0 > 0, INT16_MAX, np.where(x0 < 0, INT16_MIN, 0))
        return np.where(x1 == 0, zero, sat16(rshr(q, s)))
    raise AssertionError(f"binary_q: no integer form for {k}")  # rnnedge/quant refuses Pow


def concat_q(op: QConcat, xs: Sequence[np.ndarray]) -> np.ndarray:
    """CONCAT in integers: input k requantized, sat16(rshr(x_k m_k, shift_k)), then joined along
    the per-step axis op.axis (arrays [rows, *shape])."""
    parts = []
    for k, (x, mult) in enumerate(zip(xs, op.mults)):
        x = _check(np.asarray(x, I64), INT16_MIN, INT16_MAX, f"concat input {k}")
        parts.append(sat16(_rshr_checked(x * int(np.asarray(mult.m).reshape(-1)[0]), mult.shift,
                                         f"concat input {k}")))
    return np.concatenate(parts, axis=op.axis + 1)


def reduce_q(op: QReduce, x: np.ndarray) -> np.ndarray:
    """REDUCE in integers over the per-step axes op.axes of x [rows, *shape], keeping them as size
    1 (reshape to the value's shape): SUM / MEAN sat16(rshr(sum m, shift)) with the sum in int64
    (MEAN's 1/n is folded into m), MAX / MIN sat16(rshr(v m, shift)) of the picked v."""
    x = _check(np.asarray(x, I64), INT16_MIN, INT16_MAX, "reduce input")
    axes = tuple(a + 1 for a in op.axes)
    if op.kind in ("Sum", "Mean"):
        v = np.sum(x, axis=axes, keepdims=True)
    elif op.kind == "Max":
        v = np.max(x, axis=axes, keepdims=True)
    elif op.kind == "Min":
        v = np.min(x, axis=axes, keepdims=True)
    else:
        raise AssertionError(f"reduce_q: no kind {op.kind}")
    m = int(np.asarray(op.mult.m).reshape(-1)[0])
    # the load-time rule (csrc/ops_check.c): n 2^15 |m| + 2^(shift-1) <= INT64_MAX, checked in
    # Python integers before the int64 product could wrap
    n = int(np.prod([x.shape[a] for a in axes], dtype=np.int64))
    if n * 32768 * abs(m) + (1 << (op.mult.shift - 1)) > INT64_MAX:
        raise FixedPointOverflow(
            f"reduce {op.kind}: {n} elements * 32768 * |m| {abs(m)} overflows int64"
        )
    return sat16(_rshr_checked(v * m, op.mult.shift, f"reduce {op.kind}"))


def gather_q(op: QGather, ids: np.ndarray) -> np.ndarray:
    """GATHER in integers: rows of the int16 table [V, E] by id, ids [rows, n] -> [rows, n, E].
    An id outside [0, V) raises InputError (the C library's RNE_EINPUT)."""
    ids = np.asarray(ids)
    table = np.asarray(op.table)
    if ids.dtype.kind not in "iu":
        raise InputError(f"gather ids: expected integers, got {ids.dtype}")
    bad = (ids < 0) | (ids >= table.shape[0])
    if np.any(bad):
        raise InputError(
            f"gather ids: {int(ids[bad].reshape(-1)[0])} is outside the table's rows [0, {table.shape[0]})"
        )
    return table.astype(I64)[ids.astype(I64)]


# -- convolutions (docs/quantization.md "Convolutions"; csrc/conv_int.c) --------------------------
# run_qgraph runs QConv nodes (conv_q, the caches in its state's "convs"); quant.graph's
# quantize_graph checks this flag before it makes an integer conv.
QGRAPH_RUNS_CONV = True

# Arrays are [steps, batch, C(, W)]: a conv over time needs the steps apart from the streams.
class ConvSpec(Protocol):
    """What conv_q reads of an integer conv node (engineer 8's QConv, docs/graph.md section 6):
    W ONNX's int weights (CONV [C_out, C_in/g, kt, kw]; CONV_T [C_in, C_out/g, kw]), bias int32
    [C_out] or None, mult (m [C_out], one shift), and the params."""

    transpose: bool
    W: np.ndarray
    bias: np.ndarray | None
    mult: Mult
    kt: int
    dt: int
    groups: int
    stride: int
    pads: tuple[int, int]
    dilation: int
    output_padding: int


class _QConvSpec:
    """conv_q's view (ConvSpec) of an integer conv node (ir.graph.QConv): its float conv's
    geometry, W in ONNX's layout (CONV_T [C_in, C_out/g, kw]: the time axis of 1 dropped)."""

    def __init__(self, q: QConv) -> None:
        cv = q.conv
        self.transpose, self.bias, self.mult = cv.transpose, q.bias, q.mult
        self.W = np.asarray(q.W).reshape(q.W.shape[0], q.W.shape[1], -1) if cv.transpose else q.W
        self.kt, self.dt, self.groups, self.stride = cv.kt, cv.dt, cv.groups, cv.sw
        self.pads, self.dilation, self.output_padding = tuple(cv.pad_w), cv.dw, cv.out_pad


def qconv_spec(q: QConv) -> ConvSpec:
    """The ConvSpec conv_q reads of an integer conv node (run_qgraph's adapter)."""
    return _QConvSpec(q)  # type: ignore[return-value]


def conv_w_out(op: ConvSpec, w: int, kw: int) -> int:
    """W_out: CONV floor((W + pb + pa - dw (kw - 1) - 1) / sw) + 1; CONV_T (W - 1) sw - pb - pa +
    dw (kw - 1) + output_padding + 1 (csrc/conv.h's rne__conv_w_out)."""
    pb, pa = op.pads
    if op.transpose:
        return (w - 1) * op.stride - pb - pa + op.dilation * (kw - 1) + op.output_padding + 1
    return (w + pb + pa - op.dilation * (kw - 1) - 1) // op.stride + 1


def conv_q(op: ConvSpec, x: np.ndarray, cache: np.ndarray | None = None,
           acc32: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
    """A conv node in integers over x int16 [T, B, C_in] or [T, B, C_in, W] -> (y int16 [T, B,
    C_out(, W_out)], the new cache). DENSE's rule per output channel co:
        acc[co] = sum over the patch of W * x                       exact (int64; int32 under acc32)
        y[co]   = sat16(rq32(acc[co], m[co], shift) + b[co])
    CONV: the patch of output (t, wo) is x_{t - (kt - 1 - j) dt}[g C_in/g + c][wo sw - pb + i dw]
    (zeros outside [0, W) and before the stream: `cache` [(kt - 1) dt, B, C_in(, W)] holds the
    frames before x, zeros if None); the new cache is the last (kt - 1) dt frames of cache + x.
    CONV_T: x[ci][wi] W[ci][co - g C_out/g][i] summed into y[co][wi sw - pb + i dw].
    Raises FixedPointOverflow where the load-time rule (csrc/conv_check.c) would refuse: a channel
    whose 32768 sum |w| times |m| plus 2^(shift-1) leaves int64 (int32 under acc32)."""
    x = _check(np.asarray(x, I64), INT16_MIN, INT16_MAX, "conv input")
    feat = x.ndim == 4
    xw = x if feat else x[..., None]
    T, B, cin, win = xw.shape
    W = np.asarray(op.W, I64)
    g, sw, dw, (pb, pa) = op.groups, op.stride, op.dilation, op.pads
    cout = W.shape[1] * g if op.transpose else W.shape[0]
    cg, ng = cin // g, cout // g
    m = np.asarray(op.mult.m, I64).reshape(-1)
    shift = int(op.mult.shift)
    if not 1 <= shift <= 62:
        raise FixedPointOverflow(f"conv: shift {shift} outside 1..62")
    absw = np.abs(W)
    per_co = (absw.reshape(g, cg, ng, -1).sum(axis=(1, 3)).reshape(-1) if op.transpose
              else absw.reshape(cout, -1).sum(axis=1))
    for co in range(cout):
        bound = int(per_co[co]) * 32768
        if bound * abs(int(m[co])) + (1 << (shift - 1)) > INT64_MAX:
            raise FixedPointOverflow(f"conv: channel {co}: 32768 sum|w| {bound} * |m| {abs(int(m[co]))} overflows int64")
        if acc32 and bound > INT32_MAX:
            raise FixedPointOverflow(f"conv: channel {co}: acc32 with a bound {bound} beyond int32")
    new_cache = None
    if op.transpose:
        kw = W.shape[2]
        wout = conv_w_out(op, win, kw)
        acc = np.zeros((T, B, cout, wout), I64)
        pos = np.arange(win) * sw - pb
        for i in range(kw):
            p = pos + i * dw
            ok = (p >= 0) & (p < wout)
            for gi in range(g):
                part = np.einsum("tbcw,co->tbow", xw[:, :, gi * cg:(gi + 1) * cg, :],
                                 W[gi * cg:(gi + 1) * cg, :, i])
                acc[:, :, gi * ng:(gi + 1) * ng, p[ok]] += part[..., ok]
    else:
        kt, kw = W.shape[2], W.shape[3]
        f = (kt - 1) * op.dt
        if cache is None:
            cache = np.zeros((f, B, cin, win), I64)
        cache = np.asarray(cache, I64).reshape(f, B, cin, win)
        xs = np.concatenate([cache, xw], axis=0)
        new_cache = xs[xs.shape[0] - f:]
        if not feat:
            new_cache = new_cache[..., 0]
        wout = conv_w_out(op, win, kw)
        xp = np.zeros(xs.shape[:3] + (win + pb + pa,), I64)
        xp[..., pb:pb + win] = xs
        acc = np.zeros((T, B, cout, wout), I64)
        for j in range(kt):
            frames = xp[j * op.dt:j * op.dt + T]
            for i in range(kw):
                cols = frames[..., i * dw:i * dw + sw * (wout - 1) + 1:sw]
                for gi in range(g):
                    acc[:, :, gi * ng:(gi + 1) * ng] += np.einsum(
                        "tbcw,oc->tbow", cols[:, :, gi * cg:(gi + 1) * cg], W[gi * ng:(gi + 1) * ng, :, j, i])
    y = sat32(rshr(acc * m[:, None], shift))  # rq32 per channel (|acc m| bounded above)
    if op.bias is not None:
        y = y + np.asarray(op.bias, I64)[:, None]
    y = sat16(y)
    return (y if feat else y[..., 0]), new_cache
