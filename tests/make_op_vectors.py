#!/usr/bin/env python3
"""Write the graph-op kernels' test vectors: tests/data/ops (read by csrc/tests/test_ops.c).

    python3 tests/make_op_vectors.py [--out tests/data/ops] [--check]

Each case is one graph op (csrc/ops.h) over a few rows, called directly (no blob): the f32
kernels' expected outputs come from numpy float32 (bit for bit where numpy's float32 operation is
one IEEE operation or libm's powf; within a stated bound for the reductions and the libm
activations), the integer kernels' from the oracles of rnnedge/fixedpoint.py's "graph ops"
section, compared exactly. All cases go into one file, tests/data/ops/ops.bin, of little-endian
32-bit words (each item padded to a multiple of 4 bytes):

    "RNOP", the number of cases, then per case:
    name_len, name (ASCII)
    meta, int32 [META]: op, fmt, rows, n_in, param[8], q[8] (the node's q slots 0..7),
          in_ndim[4], in_shape[4][4], out_ndim, out_shape[4], table_rows, table_cols,
          alpha_bits (ACT POW's exponent, float32 bits), exact (1: compare bit for bit, NaN
          equal to NaN; 0: within the tol array), const (1: BINARY's input 1 is a constant
          operand, one row [1, *shape], the node's tensor of role 0; param[1] = 1: on the left)
    n_arrays, then per array: tag (0..3: input k [rows, *shape]; 4: GATHER's table [V, E];
          5: the expected output [rows, *out_shape]; 6: the bound on |C - exact| per element of a
          case that is not exact), dtype (0: f32, 1: int16, 2: int32, GATHER's ids), count, data

With --check nothing is written: the file is regenerated in memory and compared byte for byte.
Cases with op 2 (ACT) test the version-2 activation kinds of csrc/vec.c (rne__f32_act).
"""

from __future__ import annotations

import argparse
import io
import math
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if __name__ == "__main__":  # a script: this checkout's rnnedge (pure Python, no build needed)
    sys.path.insert(0, str(ROOT))

from rnnedge import fixedpoint as fx  # noqa: E402
from rnnedge.ir.graph import QBinary, QConcat, QGather, QReduce  # noqa: E402
from rnnedge.ir.layers import Mult  # noqa: E402
from rnnedge.reference import f32_max, f32_min  # noqa: E402

OUT = ROOT / "tests" / "data" / "ops"
OP = {"act": 2, "slice": 7, "binary": 9, "concat": 10, "transpose": 11, "copy": 12, "gather": 13,
      "reduce": 14}
BIN = {"Add": 0, "Sub": 1, "Mul": 2, "Div": 3, "Min": 4, "Max": 5, "Pow": 6, "Hypot": 7, "LogHypot": 8}
RED = {"Sum": 0, "Mean": 1, "Max": 2, "Min": 3}
ACT = {"Abs": 15, "Neg": 16, "Sqrt": 17, "Reciprocal": 18, "Exp": 19, "Log": 20, "Erf": 21,
       "Pow": 22}
META = 4 + 8 + 8 + 4 + 16 + 1 + 4 + 2 + 3
EPS = 2.0**-24
ROWS = 3


def _meta(op: int, fmt: int, rows: int, ins: list[np.ndarray], out_shape: tuple[int, ...],
          param: list[int], q: list[int], table: np.ndarray | None = None, alpha: float = 0.0,
          exact: bool = True, const: bool = False) -> np.ndarray:
    m = np.zeros(META, np.int64)
    m[0:4] = op, fmt, rows, len(ins)
    m[4:4 + len(param)] = param
    m[12:12 + len(q)] = q
    for k, x in enumerate(ins):
        m[20 + k] = x.ndim - 1
        m[24 + 4 * k:24 + 4 * k + x.ndim - 1] = x.shape[1:]
    m[40] = len(out_shape)
    m[41:41 + len(out_shape)] = out_shape
    if table is not None:
        m[45:47] = table.shape
    m[47] = int(np.float32(alpha).view(np.int32))
    m[48] = int(exact)
    m[49] = int(const)
    assert np.all((m >= -2**31) & (m < 2**31))
    return m.astype(np.int32)


DTYPE = {np.dtype("<f4"): 0, np.dtype("<i2"): 1, np.dtype("<i4"): 2}


def _words(*v: int) -> bytes:
    return np.array(v, "<i8").astype("<u4" if min(v) >= 0 else "<i4").tobytes()


def _pad4(b: bytes) -> bytes:
    return b + bytes(-len(b) % 4)


class Cases:
    def __init__(self) -> None:
        self.names: list[str] = []
        self.records: list[bytes] = []

    def add(self, name: str, meta: np.ndarray, ins: list[np.ndarray], y: np.ndarray,
            table: np.ndarray | None = None, tol: np.ndarray | None = None) -> None:
        assert name not in self.names, name
        if y.dtype == np.float32:  # one NaN: x86 makes inf - inf a negative NaN, Arm a positive
            # one, and the file must be the same bytes on both (the C test takes any NaN for NaN)
            y = np.where(np.isnan(y), np.float32(np.nan), y).astype("<f4")
        arrays = [(k, x) for k, x in enumerate(ins)] + [(5, y)]
        if table is not None:
            arrays.append((4, table))
        if tol is not None:
            arrays.append((6, tol.astype("<f4")))
        rec = _words(len(name)) + _pad4(name.encode("ascii")) + meta.astype("<i4").tobytes()
        rec += _words(len(arrays))
        for tag, a in arrays:
            a = np.ascontiguousarray(a)
            rec += _words(tag, DTYPE[a.dtype], a.size) + _pad4(a.tobytes())
        self.names.append(name)
        self.records.append(rec)

    def blob(self) -> bytes:
        return b"RNOP" + _words(len(self.records)) + b"".join(self.records)


def f32(rng: np.random.Generator, shape: tuple[int, ...], lo: float = -2.0, hi: float = 2.0) -> np.ndarray:
    return rng.uniform(lo, hi, shape).astype("<f4")


def s16(rng: np.random.Generator, shape: tuple[int, ...], extremes: bool = True) -> np.ndarray:
    x = rng.integers(-32768, 32768, shape)
    if extremes and x.size >= 4:  # the edges: -32768, 32767, 0, -1 somewhere in every input
        flat = x.reshape(-1)
        flat[rng.choice(flat.size, 4, replace=False)] = (-32768, 32767, 0, -1)
    return x.astype("<i2")


def _bcast(a: np.ndarray, b: np.ndarray, out_shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    nd = len(out_shape)
    a = a.reshape(a.shape[:1] + (1,) * (nd + 1 - a.ndim) + a.shape[1:])
    b = b.reshape(b.shape[:1] + (1,) * (nd + 1 - b.ndim) + b.shape[1:])
    return a, b


BIN_SHAPES = [  # (a, b, y): equal, scalar, row broadcast, general, 4-D
    ((3, 4), (3, 4), (3, 4)),
    ((5,), (1,), (5,)),
    ((1,), (2, 5), (2, 5)),
    ((2, 3, 4), (4,), (2, 3, 4)),
    ((2, 1, 4), (3, 1), (2, 3, 4)),
    ((2, 3, 4, 5), (3, 1, 5), (2, 3, 4, 5)),
    ((1, 3, 1), (2, 1, 5), (2, 3, 5)),
    ((37,), (37,), (37,)),
    ((3, 20), (20,), (3, 20)),  # a bias row: SIMD runs of 20 in the general walk
    ((2, 1, 19), (3, 19), (2, 3, 19)),
]


def f32_binary(c: Cases, rng: np.random.Generator) -> None:
    with np.errstate(all="ignore"):
        for kind, code in BIN.items():
            if kind in ("Hypot", "LogHypot"):  # integer only (q_hypot, q_loghypot)
                continue
            for i, (sa, sb, sy) in enumerate(BIN_SHAPES):
                a = f32(rng, (ROWS, *sa), 0.1 if kind == "Pow" else -2.0)
                b = f32(rng, (ROWS, *sb), -3.0 if kind == "Pow" else -2.0, 3.0 if kind == "Pow" else 2.0)
                if kind == "Div" and b.size > 2:
                    b.reshape(-1)[1] = 0.0  # +-inf or NaN, as IEEE says
                if kind in ("Min", "Max") and a.size > 2:
                    a.reshape(-1)[0] = np.nan  # NaN wins (rnnedge.reference.f32_min / f32_max)
                    b.reshape(-1)[-1] = np.nan
                    if sa == sb:  # equal values (+0 against -0): the C gives b, bit for bit
                        a.reshape(-1)[1:3] = (0.0, -0.0)
                        b.reshape(-1)[1:3] = (-0.0, 0.0)
                x0, x1 = _bcast(a, b, sy)
                tol = None
                if kind == "Pow":  # libm powf: within 2 ulp of the exact power (numpy float32's
                    # own power differs from glibc's powf in the last bit)
                    e = np.power(x0.astype(np.float64), x1.astype(np.float64))
                    y = e.astype("<f4")
                    tol = 2 * np.spacing(np.abs(y)).astype(np.float64) + 2.0**-149
                else:
                    fn = {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply, "Div": np.divide,
                          "Min": f32_min, "Max": f32_max}[kind]
                    y = fn(x0, x1).astype("<f4")
                assert y.shape == (ROWS, *sy)
                c.add(f"f32_binary_{kind.lower()}_{i}",
                      _meta(OP["binary"], 0, ROWS, [a, b], sy, [code], [], exact=tol is None),
                      [a, b], y, tol=tol)


CONST_SHAPES = [  # (value, constant, y): a bias row, a scalar, equal shapes, a column
    ((2, 3, 4), (4,), (2, 3, 4)),
    ((5,), (1,), (5,)),
    ((3, 4), (3, 4), (3, 4)),
    ((2, 3), (2, 1), (2, 3)),
    ((17,), (17,), (17,)),
]


def const_binary(c: Cases, rng: np.random.Generator) -> None:
    """BINARY with a constant operand (tensor role 0: one row for every row), on either side."""
    fns = {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply, "Div": np.divide,
           "Min": f32_min, "Max": f32_max}
    with np.errstate(all="ignore"):
        for kind in ("Add", "Sub", "Mul", "Div", "Min", "Max"):
            for i, (sx, sc, sy) in enumerate(CONST_SHAPES):
                for left in (False, True):
                    x = f32(rng, (ROWS, *sx))
                    k = f32(rng, (1, *sc))
                    a, b = (k, x) if left else (x, k)
                    x0, x1 = _bcast(a, b, sy)
                    y = fns[kind](x0, x1).astype("<f4")
                    c.add(f"f32_const_{kind.lower()}_{'l' if left else 'r'}{i}",
                          _meta(OP["binary"], 0, ROWS, [x, k], sy, [BIN[kind], int(left)], [],
                                const=True), [x, k], y)
                    q = s16(rng, (ROWS, *sx))
                    qk = s16(rng, (1, *sc), extremes=False)
                    qk.reshape(-1)[0] = -32768
                    one = kind in ("Mul", "Div")
                    op = QBinary(kind, int(rng.integers(-2**31, 2**31)), 0 if one else int(rng.integers(-2**31, 2**31)),
                                 int(rng.integers(1, 63)), (1.0, 1.0), 1.0, const=qk[0], const_left=left)
                    yq = fx.binary_q(op, q, None, sy).astype("<i2")
                    c.add(f"q16_const_{kind.lower()}_{'l' if left else 'r'}{i}",
                          _meta(OP["binary"], 1, ROWS, [q, qk], sy, [BIN[kind], int(left)],
                                [op.ma, op.mb, op.shift], const=True), [q, qk], yq)


def q_binary_cases(rng: np.random.Generator) -> list[tuple[str, QBinary]]:
    out = []
    for kind in ("Add", "Sub", "Min", "Max", "Mul", "Div"):
        one = kind in ("Mul", "Div")
        smax = 31 if kind == "Div" else 62
        s = int(rng.integers(12, min(smax, 30)))
        ma = int(rng.integers(1, 2**s)) * (1 if rng.random() < 0.7 else -1)
        mb = 0 if one else int(rng.integers(1, 2**s))
        out.append((f"{kind.lower()}", QBinary(kind, ma, mb, s, (1.0, 1.0), 1.0)))
        # extremes: the largest |m| of either sign at the largest shift, and a shift of 1
        out.append((f"{kind.lower()}_mmin", QBinary(kind, fx.INT32_MIN, 0 if one else fx.INT32_MIN, smax,
                                                     (1.0, 1.0), 1.0)))
        out.append((f"{kind.lower()}_mmax", QBinary(kind, fx.INT32_MAX, 0 if one else -fx.INT32_MAX, 1,
                                                     (1.0, 1.0), 1.0)))
    return out


def _q_binary_vectors(c: Cases, rng: np.random.Generator, cases: list[tuple[str, QBinary]]) -> None:
    """Each integer BINARY case over every BIN_SHAPES broadcast, on random int16 inputs."""
    for name, op in cases:
        for i, (sa, sb, sy) in enumerate(BIN_SHAPES):
            a = s16(rng, (ROWS, *sa))
            b = s16(rng, (ROWS, *sb))
            y = fx.binary_q(op, a, b, sy).astype("<i2")
            q = [op.ma, op.mb, op.shift]
            if op.kind == "LogHypot":  # e as write.qparams stores it: e >> 31, e & (2^31 - 1)
                q += [op.m1, op.e >> 31, op.e & (2**31 - 1), op.k0]
            c.add(f"q16_binary_{name}_{i}", _meta(OP["binary"], 1, ROWS, [a, b], sy, [BIN[op.kind]], q),
                  [a, b], y)


def q_binary(c: Cases, rng: np.random.Generator) -> None:
    _q_binary_vectors(c, rng, q_binary_cases(rng))


def q_hypot(c: Cases, rng: np.random.Generator) -> None:
    """HYPOT (integer only): random multipliers, the largest (2^30 - 1 on both sides at the
    largest shift: the sum of squares at its bound 2^61, times 4 just inside int64), zero ones,
    and the smallest shift; the extremes -32768 and 32767 in every input (s16)."""
    top = fx.HYPOT_MMAX - 1
    s = 2 * int(rng.integers(6, 16))
    cases = [("hypot", QBinary("Hypot", int(rng.integers(0, 2**s)), int(rng.integers(0, 2**s)), s,
                               (1.0, 1.0), 1.0)),
             ("hypot_mmax", QBinary("Hypot", top, top, 62, (1.0, 1.0), 1.0)),
             ("hypot_zero", QBinary("Hypot", 0, top, 40, (1.0, 1.0), 1.0)),
             ("hypot_s2", QBinary("Hypot", 3, 1, 2, (1.0, 1.0), 1.0))]
    _q_binary_vectors(c, rng, cases)


def q_loghypot(c: Cases, rng: np.random.Generator) -> None:
    """LOGHYPOT (integer only): random multipliers and Log parameters; the largest multipliers
    (2^28 - 1) with the largest offset e = 2^46 (v = root 2^16 + e at its bound, below 2^47); a
    negative e that takes v through 0 (ln of v < 0: 0); zero multipliers (v = e: 0 gives
    -32767, -1 gives 0); k0 at the int32 ends (saturation)."""
    top = fx.LOGHYPOT_MMAX - 1

    def op(ma: int, mb: int, shift: int, m1: int, e: int, k0: int) -> QBinary:
        return QBinary("LogHypot", ma, mb, shift, (1.0, 1.0), 1.0, m1=m1, e=e, k0=k0)

    r = lambda lo, hi: int(rng.integers(lo, hi))  # noqa: E731
    cases = [("loghypot", op(r(0, 1 << 27), r(0, 1 << 27), r(20, 40), r(1 << 29, 1 << 31), r(0, 1 << 40),
                             r(-(1 << 20), 1 << 20))),
             ("loghypot_max", op(top, top, 40, (1 << 31) - 1, fx.LOGHYPOT_EMAX, 0)),
             ("loghypot_neg", op(1, 1, 30, r(1 << 29, 1 << 31), -20000 << 16, r(-(1 << 16), 1 << 16))),
             ("loghypot_zero", op(0, 0, 1, 1, 0, 0)),
             ("loghypot_below", op(0, 0, 62, -(1 << 31), -1, 0)),
             ("loghypot_k0max", op(r(0, 1 << 28), top, 9, r(-(1 << 31), 1 << 31), r(-(1 << 46), 1 << 46),
                                   (1 << 31) - 1)),
             ("loghypot_k0min", op(top, 0, 62, 1, 7, -(1 << 31)))]
    _q_binary_vectors(c, rng, cases)


CONCAT_CASES = [  # shapes, axis
    ([(3,), (5,)], 0),
    ([(2, 3), (2, 1), (2, 4)], 1),
    ([(1, 3), (2, 3), (3, 3), (1, 3)], 0),
    ([(2, 3, 4), (2, 2, 4)], 1),
    ([(2, 3, 1), (2, 3, 2), (2, 3, 3)], 2),
    ([(1, 2, 2, 3), (1, 2, 2, 1)], 3),
]


def concat(c: Cases, rng: np.random.Generator) -> None:
    for i, (shapes, axis) in enumerate(CONCAT_CASES):
        xs = [f32(rng, (ROWS, *s)) for s in shapes]
        y = np.concatenate(xs, axis=axis + 1)
        c.add(f"f32_concat_{i}", _meta(OP["concat"], 0, ROWS, xs, y.shape[1:], [axis], []), xs, y)
        qs = [s16(rng, (ROWS, *s)) for s in shapes]
        for variant in ("rand", "edge"):
            mults = []
            for k in range(len(shapes)):
                if variant == "rand":
                    sh = int(rng.integers(1, 40))
                    mults.append(Mult(np.array([int(rng.integers(-2**30, 2**30))]), sh))
                else:  # identity, extremes of m, shift 62
                    mults.append([Mult(np.array([1 << 14]), 14), Mult(np.array([fx.INT32_MIN]), 62),
                                  Mult(np.array([fx.INT32_MAX]), 1), Mult(np.array([-7]), 3)][k])
            op = QConcat(axis, mults, 1.0)
            yq = fx.concat_q(op, qs).astype("<i2")
            q = []
            for m in mults:
                q += [int(m.m[0]), m.shift]
            c.add(f"q16_concat_{variant}_{i}", _meta(OP["concat"], 1, ROWS, qs, yq.shape[1:], [axis], q),
                  qs, yq)


TRANSPOSE_CASES = [((3, 4), (1, 0)), ((2, 3, 4), (2, 0, 1)), ((2, 3, 4), (0, 2, 1)),
                   ((2, 3, 4, 5), (3, 1, 0, 2)), ((2, 3, 4, 5), (0, 1, 2, 3)), ((5,), (0,))]
SLICE_CASES = [((10,), 0, 2, 9, 3), ((4, 6), 0, 1, 4, 2), ((4, 6), 1, 0, 6, 5),
               ((2, 5, 3), 1, 1, 5, 1), ((2, 3, 7, 2), 2, 3, 7, 2), ((3, 4), 1, 3, 4, 1)]
COPY_CASES = [((3, 4), (12,)), ((2, 3, 2), (6, 2)), ((5,), (1, 5, 1))]


def movement(c: Cases, rng: np.random.Generator) -> None:
    for fmt, name, gen in ((0, "f32", lambda s: f32(rng, s)), (1, "q16", lambda s: s16(rng, s))):
        for i, (shape, perm) in enumerate(TRANSPOSE_CASES):
            x = gen((ROWS, *shape))
            y = np.ascontiguousarray(np.transpose(x, (0, *(p + 1 for p in perm))))
            c.add(f"{name}_transpose_{i}", _meta(OP["transpose"], fmt, ROWS, [x], y.shape[1:], list(perm), []),
                  [x], y)
        for i, (shape, axis, start, stop, step) in enumerate(SLICE_CASES):
            x = gen((ROWS, *shape))
            idx = [slice(None)] * (len(shape) + 1)
            idx[axis + 1] = slice(start, stop, step)
            y = np.ascontiguousarray(x[tuple(idx)])
            c.add(f"{name}_slice_{i}", _meta(OP["slice"], fmt, ROWS, [x], y.shape[1:], [axis, start, stop, step], []),
                  [x], y)
        for i, (shape, to) in enumerate(COPY_CASES):
            x = gen((ROWS, *shape))
            y = x.reshape((ROWS, *to))
            c.add(f"{name}_copy_{i}", _meta(OP["copy"], fmt, ROWS, [x], to, [], []), [x], y)
        for i, (n, v, e) in enumerate(((4, 10, 3), (1, 1, 5), (7, 3, 16))):
            ids = rng.integers(0, v, (ROWS, n)).astype("<i4")
            ids.reshape(-1)[0], ids.reshape(-1)[-1] = 0, v - 1
            table = gen((v, e))
            y = fx.gather_q(QGather(table, 1.0), ids).astype(table.dtype) if fmt else table[ids]
            c.add(f"{name}_gather_{i}", _meta(OP["gather"], fmt, ROWS, [ids], (n, e), [v], [], table=table),
                  [ids], y, table=table)


REDUCE_CASES = [  # shape, axes, y shape
    ((7,), (0,), (1,)),
    ((3, 4), (1,), (3,)),
    ((3, 4), (0,), (1, 4)),
    ((3, 4), (0, 1), (1,)),
    ((2, 3, 4), (0, 2), (3,)),
    ((2, 3, 4, 5), (1, 3), (2, 1, 4, 1)),
    ((2, 3, 4, 5), (0, 1, 2, 3), (1, 1, 1, 1)),
    ((40, 3), (0,), (3,)),
]


def reduce_(c: Cases, rng: np.random.Generator) -> None:
    for kind, code in RED.items():
        for i, (shape, axes, ys) in enumerate(REDUCE_CASES):
            mask = sum(1 << a for a in axes)
            x = f32(rng, (ROWS, *shape))
            ax = tuple(a + 1 for a in axes)
            n = int(np.prod([shape[a] for a in axes]))
            x64 = x.astype(np.float64)
            if kind in ("Max", "Min"):
                y = (np.max if kind == "Max" else np.min)(x, axis=ax).reshape((ROWS, *ys))
                if i == 1:  # a NaN among the reduced elements gives NaN
                    x[0, 0, 1] = np.nan
                    y = (np.max if kind == "Max" else np.min)(x, axis=ax).reshape((ROWS, *ys))
                tol = None
            else:
                if i == 2:  # non-finite sums are the plain float sum: +inf, and inf - inf = NaN
                    x[0, 0, 0], x[1, 0, 1], x[1, 1, 1] = np.inf, np.inf, -np.inf
                    x64 = x.astype(np.float64)
                with np.errstate(invalid="ignore"):
                    s = np.sum(x64, axis=ax)
                babs = np.sum(np.abs(x64), axis=ax)
                # the C kernel's compensated float sum is within 2^-23 |exact| + n 2^-46 sum|x|
                # (then MEAN's division rounds once more); the expected output is the float64
                # sum rounded to float32, within 2^-24 |exact| of it
                with np.errstate(invalid="ignore"):
                    bound = 3 * EPS * np.abs(s) + n * 2.0**-46 * babs
                    if kind == "Mean":
                        s, bound = s / n, bound / n + 2 * EPS * np.abs(s / n)
                y = s.astype("<f4").reshape((ROWS, *ys))
                tol = np.where(np.isfinite(bound), bound, 0.0).reshape((ROWS, *ys))
            c.add(f"f32_reduce_{kind.lower()}_{i}",
                  _meta(OP["reduce"], 0, ROWS, [x], ys, [code, mask], [], exact=tol is None), [x], y.astype("<f4"),
                  tol=tol)
            q = s16(rng, (ROWS, *shape))
            bound = 32768 * n
            for variant in ("rand", "edge"):
                if variant == "rand":
                    sh = int(rng.integers(8, 31))
                    m = int(rng.integers(-2**28, 2**28)) if kind in ("Max", "Min") else \
                        int(round(2**sh / (n if kind == "Mean" else 1)))
                else:  # the largest |m| the load-time bound allows at shift 62
                    sh = 62
                    m = -((fx.INT64_MAX - (1 << 61)) // bound)
                    m = max(m, fx.INT32_MIN)
                op = QReduce(kind, axes, Mult(np.array([m]), sh), 1.0, 1.0)
                yq = fx.reduce_q(op, q).reshape((ROWS, *ys)).astype("<i2")
                c.add(f"q16_reduce_{kind.lower()}_{variant}_{i}",
                      _meta(OP["reduce"], 1, ROWS, [q], ys, [code, mask], [m, sh]), [q], yq)


def acts(c: Cases, rng: np.random.Generator) -> None:
    """The version-2 activation kinds of rne__f32_act against float64 math: ABS, NEG, SQRT,
    RECIPROCAL bit for bit; EXP, LOG, ERF, POW within 2 ulp of the exact value (+ 2^-149); POW
    with exponent 2 (a square) bit for bit."""
    exact_fns = {"Abs": np.abs, "Neg": np.negative, "Sqrt": np.sqrt, "Reciprocal": lambda v: np.float32(1) / v}
    with np.errstate(all="ignore"):
        for kind, code in ACT.items():
            lo, hi = {"Sqrt": (0, 9), "Log": (1e-3, 50), "Exp": (-20, 20), "Pow": (0.01, 4)}.get(kind, (-4, 4))
            x = f32(rng, (ROWS, 33), lo, hi)
            alpha = 2.5 if kind == "Pow" else 0.0
            if kind in exact_fns:
                y = exact_fns[kind](x).astype("<f4")
                c.add(f"f32_act_{kind.lower()}", _meta(OP["act"], 0, ROWS, [x], (33,), [code], [],
                                                      alpha=alpha), [x], y)
                continue
            x64 = x.astype(np.float64)
            if kind == "Erf":
                e = np.vectorize(math.erf)(x64)
            else:
                e = {"Exp": np.exp, "Log": np.log, "Pow": lambda v: np.power(v, alpha)}[kind](x64)
            y = e.astype("<f4")
            tol = 2 * np.spacing(np.abs(y)).astype(np.float64) + 2.0**-149
            c.add(f"f32_act_{kind.lower()}", _meta(OP["act"], 0, ROWS, [x], (33,), [code], [], alpha=alpha,
                                                  exact=False), [x], y, tol=tol)
            if kind == "Pow":  # a square: x * x, one rounding, bit for bit (numpy's float32 power
                x2 = f32(rng, (ROWS, 33), -4, 4)  # with 2 squares too), negative x included
                c.add("f32_act_pow_square", _meta(OP["act"], 0, ROWS, [x2], (33,), [code], [], alpha=2.0),
                      [x2], (x2 * x2).astype("<f4"))


def build() -> Cases:
    c = Cases()
    rng = np.random.default_rng(20261207)
    f32_binary(c, rng)
    q_binary(c, rng)
    const_binary(c, rng)
    concat(c, rng)
    movement(c, rng)
    reduce_(c, rng)
    acts(c, rng)
    q_hypot(c, np.random.default_rng(20261208))  # its own generator: the cases above keep their bytes
    q_loghypot(c, np.random.default_rng(20261209))  # likewise
    return c


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--check", action="store_true", help="compare with the files on disk")
    args = ap.parse_args(argv)
    c = build()
    path = args.out / "ops.bin"
    data = c.blob()
    if args.check:
        same = path.is_file() and path.read_bytes() == data
        print(f"{path}: {'identical' if same else 'differs or missing'}")
        return 0 if same else 1
    args.out.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    print(f"{len(c.names)} cases, {len(data)} bytes -> {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
