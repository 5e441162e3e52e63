#!/usr/bin/env python3
"""Write the conv kernels' test vectors: tests/data/conv/conv.bin (read by csrc/tests/test_conv.c).

    python3 tests/make_conv_vectors.py [--out tests/data/conv] [--check]

Each case is one CONV or CONV_T node (csrc/conv.h, docs/graph.md section 6) over T steps of B
streams, called directly (no blob). f32 cases: the expected output is a direct convolution in
float64 written here element by element (independent of rnnedge), with a bound per element of
(K + 2) 2^-24 (|b| + sum |w x|) for the C kernel's float32 sums (K terms). Integer cases (int16
and int8 weights): rnnedge.fixedpoint.conv_q, compared exactly; the generator also checks
conv_q's accumulators against the float64 direct convolution on the same integers. All cases
are written to one file of little-endian 32-bit words (each array padded to 4 bytes):

    "RNCV", the number of cases, then per case:
    name_len, name (ASCII, padded)
    meta int32 [META]: op, fmt, steps, batch, x_ndim, c_in, w_in, c_out, w_out, param[8] (9..16),
         acc32 (17), has_bias (18), exact (19), 0 (20..23)
    6 arrays in this order: x, W (the blob's layout: CONV W_t [K, C_out], CONV_T [C_in, C_out/g,
         1, kw]), bias, q (s32 [24 + C_out]; empty for f32), expected y, tol (empty if exact);
         each: dtype (0 f32, 1 int16, 2 int32, 3 int8), count, data

With --check nothing is written: the file is regenerated in memory and compared byte for byte.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if __name__ == "__main__":  # a script: this checkout's rnnedge (pure Python, no build needed)
    sys.path.insert(0, str(ROOT))

from rnnedge import fixedpoint as fx  # noqa: E402
from rnnedge.ir.layers import Mult  # noqa: E402

OUT = ROOT / "tests" / "data" / "conv"
OP_CONV, OP_CONV_T = 15, 16
FMT = {"f32": 0, "s16": 1, "s8": 2}
META = 24
EPS = 2.0**-24


@dataclass
class ConvCase:
    """One node's shape: x [C_in] (w 0) or [C_in, w]; ONNX's params."""

    name: str
    transpose: bool
    c_in: int
    w: int
    c_out: int
    kt: int = 1
    dt: int = 1
    groups: int = 1
    kw: int = 1
    stride: int = 1
    pads: tuple[int, int] = (0, 0)
    dilation: int = 1
    output_padding: int = 0
    bias: bool = True
    steps: int = 7
    batch: int = 2


@dataclass
class QConvSpec:  # fixedpoint.ConvSpec
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


CASES = [
    ConvCase("time_depthwise_dilated", False, 4, 0, 4, kt=3, dt=2, groups=4, steps=9),
    ConvCase("time_dense", False, 3, 0, 5, kt=2, steps=7, batch=1),
    ConvCase("time_dense_nobias", False, 3, 0, 5, kt=3, dt=3, bias=False, steps=8),
    ConvCase("time_depth_multiplier", False, 3, 0, 6, kt=3, groups=3, steps=6),
    ConvCase("time_grouped", False, 6, 0, 4, kt=2, dt=2, groups=2, steps=7),
    ConvCase("time_wide", False, 32, 0, 40, kt=3, steps=5, batch=2),
    ConvCase("pointwise", False, 6, 0, 4, steps=5),
    ConvCase("pointwise_grouped", False, 6, 0, 4, groups=2, steps=4),
    ConvCase("pointwise_wide", False, 48, 0, 37, steps=3),
    ConvCase("time_and_feature", False, 2, 8, 3, kt=2, kw=3, stride=2, pads=(1, 1), steps=6),
    ConvCase("time_and_feature_dilated", False, 4, 7, 4, kt=3, dt=2, kw=2, dilation=2,
             pads=(1, 0), groups=2, steps=7),
    ConvCase("feature_grouped_dilated", False, 4, 10, 6, kw=3, dilation=2, pads=(2, 0),
             groups=2, steps=3),
    ConvCase("feature_strided_depthwise", False, 6, 9, 6, kw=2, stride=3, dilation=3,
             pads=(0, 2), groups=6, steps=3),
    ConvCase("feature_pointwise", False, 5, 6, 7, steps=3),
    ConvCase("feature_wide", False, 16, 12, 36, kw=3, pads=(1, 1), steps=2),
    # stride 1 and W_out >= 8: tap by tap along W (csrc/conv.h RNE__CONV_DIRECT_W), frames from
    # the cache, pads cutting taps at both ends, a depthwise one
    ConvCase("time_and_feature_direct", False, 3, 16, 4, kt=2, kw=5, pads=(2, 2), steps=6),
    ConvCase("feature_depthwise_direct", False, 8, 20, 8, kw=3, dilation=2, pads=(2, 2),
             groups=8, steps=3),
    # a [C, 1] value with pads: W_out > 1, or 1 reading a pad (not the pointwise / depthwise
    # fast paths, which assume the one output position is the input's)
    ConvCase("width1_padded", False, 4, 1, 3, pads=(1, 1), steps=3),
    ConvCase("width1_padded_strided_depthwise", False, 4, 1, 4, groups=4, pads=(1, 0),
             stride=2, steps=3),
    ConvCase("time_depthwise_width1_padded", False, 3, 1, 3, kt=2, groups=3, pads=(0, 1),
             steps=5),
    ConvCase("transpose_strided", True, 4, 5, 6, kw=3, stride=2, pads=(1, 0), output_padding=1,
             groups=2, steps=3),
    ConvCase("transpose_dilated", True, 3, 4, 2, kw=2, dilation=2, output_padding=1, steps=3),
    ConvCase("transpose_pointwise", True, 5, 0, 3, steps=4, bias=False),
    ConvCase("transpose_padded", True, 2, 6, 4, kw=4, stride=3, pads=(2, 3), steps=2),
    ConvCase("transpose_wide", True, 16, 4, 8, kw=3, stride=2, steps=2),
    ConvCase("transpose_depthwise_stride1", True, 16, 9, 16, kw=3, pads=(1, 1), groups=16,
             steps=2),
    ConvCase("transpose_grouped_upsample", True, 16, 9, 16, kw=5, stride=2, pads=(2, 2),
             groups=2, steps=2),
]


def _w_out(c: ConvCase) -> int:
    w = max(c.w, 1)
    pb, pa = c.pads
    if c.transpose:
        return (w - 1) * c.stride - pb - pa + c.dilation * (c.kw - 1) + c.output_padding + 1
    return (w + pb + pa - c.dilation * (c.kw - 1) - 1) // c.stride + 1


def direct(c: ConvCase, x: np.ndarray, W: np.ndarray, b: np.ndarray | None,
           absolute: bool = False) -> np.ndarray:
    """float64 direct convolution, element by element: x [T, B, C_in, Wi] -> [T, B, C_out, Wo].
    CONV: causal over time (zeros before the first step); CONV_T: the scatter definition."""
    x = np.asarray(x, np.float64)
    W = np.asarray(W, np.float64)
    if absolute:
        x, W = np.abs(x), np.abs(W)
    T, B, cin, wi = x.shape
    wo = _w_out(c)
    g, cg, ng = c.groups, cin // c.groups, c.c_out // c.groups
    y = np.zeros((T, B, c.c_out, wo))
    if b is not None:
        y += np.abs(b)[:, None] if absolute else np.asarray(b, np.float64)[:, None]
    if c.transpose:
        for t in range(T):
            for ci in range(cin):
                gi = ci // cg
                for s in range(wi):
                    for i in range(c.kw):
                        pos = s * c.stride - c.pads[0] + i * c.dilation
                        if 0 <= pos < wo:
                            for col in range(ng):
                                y[t, :, gi * ng + col, pos] += x[t, :, ci, s] * W[ci, col, i]
        return y
    for t in range(T):
        for co in range(c.c_out):
            gi = co // ng
            for o in range(wo):
                for cc in range(cg):
                    for j in range(c.kt):
                        src = t - (c.kt - 1 - j) * c.dt
                        if src < 0:
                            continue
                        for i in range(c.kw):
                            pos = o * c.stride - c.pads[0] + i * c.dilation
                            if 0 <= pos < wi:
                                y[t, :, co, o] += x[src, :, gi * cg + cc, pos] * W[co, cc, j, i]
    return y


def blob_weights(c: ConvCase, W: np.ndarray) -> np.ndarray:
    """ONNX's W in the blob's layout: CONV W_t [K, C_out]; CONV_T [C_in, C_out/g, 1, kw] (the
    same elements as [C_in, C_out/g, kw])."""
    return W if c.transpose else W.reshape(c.c_out, -1).T.copy()


def onnx_shape(c: ConvCase) -> tuple[int, ...]:
    if c.transpose:
        return (c.c_in, c.c_out // c.groups, c.kw)
    return (c.c_out, c.c_in // c.groups, c.kt, c.kw)


def _arr(dtype: int, a: np.ndarray | None) -> bytes:
    if a is None:
        return np.array([dtype, 0], "<u4").tobytes()
    np_t = {0: "<f4", 1: "<i2", 2: "<i4", 3: "i1"}[dtype]
    data = np.ascontiguousarray(a).astype(np_t).reshape(-1).tobytes()
    return np.array([dtype, a.size], "<u4").tobytes() + data + bytes(-len(data) % 4)


def _meta(c: ConvCase, fmt: str, acc32: int) -> np.ndarray:
    m = np.zeros(META, np.int32)
    p = [c.kt, c.dt, c.groups, c.kw, c.stride, c.pads[0], c.pads[1], c.dilation]  # CONV_T: kt = dt = 1
    m[:9] = [OP_CONV_T if c.transpose else OP_CONV, FMT[fmt], c.steps, c.batch,
             2 if c.w else 1, c.c_in, max(c.w, 1), c.c_out, _w_out(c)]
    m[9:17] = p
    m[17:20] = [acc32, int(c.bias), int(fmt != "f32")]
    return m


def _record(name: str, meta: np.ndarray, arrays: list[bytes]) -> bytes:
    nb = name.encode()
    return (np.array([len(nb)], "<u4").tobytes() + nb + bytes(-len(nb) % 4) +
            meta.astype("<i4").tobytes() + b"".join(arrays))


def case_f32(c: ConvCase, rng: np.random.Generator) -> tuple[bytes, float]:
    wi = max(c.w, 1)
    x = rng.standard_normal((c.steps, c.batch, c.c_in, wi)).astype(np.float32)
    W = rng.standard_normal(onnx_shape(c)).astype(np.float32)
    b = rng.standard_normal(c.c_out).astype(np.float32) if c.bias else None
    y = direct(c, x, W, b)
    k = (c.c_in // c.groups) * c.kt * c.kw if not c.transpose else c.c_in * c.kw
    tol = (k + 2) * EPS * direct(c, x, W, b, absolute=True)
    xs = x if c.w else x[..., 0]
    ys, ts = (y, tol) if c.w else (y[..., 0], tol[..., 0])
    arrays = [_arr(0, xs), _arr(0, blob_weights(c, W)), _arr(0, b), _arr(0, None),
              _arr(0, ys.astype(np.float32)), _arr(0, ts.astype(np.float32))]
    return _record(c.name + "_f32", _meta(c, "f32", 0), arrays), float(np.max(tol))


def case_int(c: ConvCase, fmt: str, rng: np.random.Generator, acc32: bool) -> bytes:
    wi = max(c.w, 1)
    qmax = 127 if fmt == "s8" else 32767
    x = rng.integers(-32768, 32768, (c.steps, c.batch, c.c_in, wi), dtype=np.int64)
    x[0, 0, 0, 0], x[-1, -1, -1, -1] = -32768, 32767          # the extremes
    W = rng.integers(-qmax, qmax + 1, onnx_shape(c), dtype=np.int64)
    acc = direct(c, x, W, None)
    rms = max(float(np.sqrt(np.mean(acc**2))), 1.0)
    shift = 40 if fmt == "s16" else 31
    # outputs around +-12000 (some saturate): m = 12000 2^shift / rms, within int32
    m = np.minimum(np.floor(12000.0 * 2.0**shift / rms * rng.uniform(0.5, 1.5, c.c_out)), 2**31 - 1)
    m = (m * rng.choice([-1, 1], c.c_out)).astype(np.int64)
    m[0] = 0 if c.c_out > 2 else m[0]                           # a channel of zeros
    b = rng.integers(-20000, 20000, c.c_out, dtype=np.int64) if c.bias else None
    spec = QConvSpec(c.transpose, W, b, Mult(m, shift), c.kt, c.dt, c.groups, c.stride, c.pads,
                     c.dilation, c.output_padding)
    xs = x if c.w else x[..., 0]
    y, _ = fx.conv_q(spec, xs, None, acc32=acc32)
    # conv_q's accumulators against the direct convolution: the same integers
    exact = direct(c, x, W, None)
    yq = fx.sat16(fx.sat32(fx.rshr(exact.astype(np.int64) * m[:, None], shift)) +
                  (b[:, None] if b is not None else 0))
    assert np.array_equal(y, yq if c.w else yq[..., 0]), c.name
    q = np.zeros(fx_slots() + c.c_out, np.int64)
    q[0], q[2] = shift, int(acc32)
    q[fx_slots():] = m
    arrays = [_arr(1, xs), _arr(3 if fmt == "s8" else 1, blob_weights(c, W)), _arr(2, b),
              _arr(2, q), _arr(1, y), _arr(1, None)]
    return _record(f"{c.name}_{fmt}", _meta(c, fmt, int(acc32)), arrays)


def fx_slots() -> int:
    return 24  # RNE__Q_SLOTS: the q tensor's leading scalars


def build() -> tuple[bytes, dict[str, float]]:
    rng = np.random.default_rng(2026)
    records = []
    figures = {"f32_tol_max": 0.0}
    for i, c in enumerate(CASES):
        rec, tol = case_f32(c, rng)
        records.append(rec)
        figures["f32_tol_max"] = max(figures["f32_tol_max"], tol)
        records.append(case_int(c, "s16", rng, False))
        k = (c.c_in // c.groups) * c.kt * c.kw
        acc32 = not c.transpose and i % 2 == 1 and k * 127 * 32768 <= 2**31 - 1
        records.append(case_int(c, "s8", rng, acc32))
    data = b"RNCV" + np.array([len(records)], "<u4").tobytes() + b"".join(records)
    return data, figures


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--check", action="store_true", help="compare with the file on disk")
    args = ap.parse_args(argv)
    data, figures = build()
    path = args.out / "conv.bin"
    if args.check:
        if not path.exists() or path.read_bytes() != data:
            print(f"{path}: differs from what the generator writes today", file=sys.stderr)
            return 1
        print(f"{path}: up to date")
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    print(f"{path}: {len(CASES) * 3} cases, {len(data)} bytes; {figures}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
