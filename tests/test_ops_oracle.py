"""The integer oracles of the graph ops (rnnedge/fixedpoint.py, "graph ops"; docs/quantization.md
section 11) against float math within the documented error, against a second oracle written
with Python integers element by element (hypothesis: extreme values and multipliers), and the
C kernels' vectors (tests/make_op_vectors.py) against what the generator writes today."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import make_op_vectors
from rnnedge import fixedpoint as fx
from rnnedge.errors import InputError
from rnnedge.ir.graph import QBinary, QConcat, QGather, QReduce
from rnnedge.ir.layers import Mult
from rnnedge.quant.arith import make_mult

I16 = st.integers(-32768, 32767)
M32 = st.integers(fx.INT32_MIN, fx.INT32_MAX)


def _rshr(v: int, s: int) -> int:
    return (v + (1 << (s - 1))) >> s


def _sat16(v: int) -> int:
    return max(-32768, min(32767, v))


def _binary_int(kind: str, a: int, b: int, ma: int, mb: int, s: int) -> int:
    """docs/quantization.md section 11, one element, Python integers (no overflow possible)."""
    if kind == "Add":
        return _sat16(_rshr(a * ma + b * mb, s))
    if kind == "Sub":
        return _sat16(_rshr(a * ma - b * mb, s))
    if kind == "Min":
        return _sat16(min(_rshr(a * ma, s), _rshr(b * mb, s)))
    if kind == "Max":
        return _sat16(max(_rshr(a * ma, s), _rshr(b * mb, s)))
    if kind == "Mul":
        return _sat16(_rshr(a * b * ma, s))
    assert kind == "Div"
    if b == 0:
        return 32767 if a > 0 else -32768 if a < 0 else 0
    # a ma / b rounded half up (exact rationals: Fraction-free floor of 2p/2q), then rshr
    num, den = (a * ma, b) if b > 0 else (-a * ma, -b)
    return _sat16(_rshr((2 * num + den) // (2 * den), s))


# -- a second oracle, element by element, on the int16 edges and extreme multipliers --------------
@settings(max_examples=300, deadline=None)
@given(kind=st.sampled_from(["Add", "Sub", "Min", "Max", "Mul", "Div"]),
       a=st.lists(I16, min_size=1, max_size=12), b=st.lists(I16, min_size=1, max_size=12),
       ma=M32, mb=M32, shift=st.integers(1, 62))
def test_binary_q_is_the_documented_formula_for_any_int16_and_multiplier(kind, a, b, ma, mb, shift):
    if kind in ("Mul", "Div"):
        mb = 0
    n = min(len(a), len(b))
    x0 = np.array([a[:n]], np.int64)
    x1 = np.array([b[:n]], np.int64)
    y = fx.binary_q(QBinary(kind, ma, mb, shift, (1.0, 1.0), 1.0), x0, x1, (n,))
    want = [_binary_int(kind, int(p), int(q), ma, mb, shift) for p, q in zip(x0[0], x1[0])]
    assert y[0].tolist() == want


@pytest.mark.parametrize("kind", ["Add", "Sub", "Min", "Max", "Mul"])
def test_binary_q_extremes_fit_int64(kind):
    """-32768 against -32768 with m = INT32_MIN at shift 62: the largest products (2^47, 2^61)
    plus the rounding term stay in int64 (the oracle would raise FixedPointOverflow)."""
    edge = np.array([[-32768, 32767, -32768, 0, -1]], np.int64)
    mb = 0 if kind == "Mul" else fx.INT32_MIN
    for m, s in ((fx.INT32_MIN, 62), (fx.INT32_MAX, 62), (fx.INT32_MIN, 1), (1, 1)):
        y = fx.binary_q(QBinary(kind, m, mb if m != 1 else 1, s, (1.0, 1.0), 1.0), edge, edge[:, ::-1], (5,))
        want = [_binary_int(kind, int(p), int(q), m, mb if m != 1 else 1, s) for p, q in zip(edge[0], edge[0, ::-1])]
        assert y[0].tolist() == want


def test_binary_q_div_by_zero_saturates_by_the_sign_of_a():
    a = np.array([[5, -5, 0, -32768]], np.int64)
    b = np.zeros_like(a)
    y = fx.binary_q(QBinary("Div", 3, 0, 4, (1.0, 1.0), 1.0), a, b, (4,))
    assert y[0].tolist() == [32767, -32768, 0, -32768]


def test_binary_q_div_rounds_the_quotient_half_up_then_shifts():
    """rdiv(a m, b) = floor((2 a m s + |b|) / 2|b|), s = sign(b), then rshr: 7 / 2 = 3.5 -> 4,
    -7 / 2 = -3.5 -> -3, 7 / -2 -> -3; with m = 2^4 and shift 4 the same integers."""
    a = np.array([[7, -7, 7, 5]], np.int64)
    b = np.array([[2, 2, -2, -3]], np.int64)
    assert fx.binary_q(QBinary("Div", 1 << 4, 0, 4, (1.0, 1.0), 1.0), a, b, (4,))[0].tolist() == \
        [4, -3, -3, -2]


def test_binary_q_refuses_pow():
    a = np.ones((1, 2), np.int64)
    with pytest.raises(AssertionError, match="Pow"):
        fx.binary_q(QBinary("Pow", 1, 0, 1, (1.0, 1.0), 1.0), a, a, (2,))


@pytest.mark.parametrize("left", [False, True])
def test_binary_q_constant_operand_is_the_same_in_every_row(left):
    rng = np.random.default_rng(3)
    x = rng.integers(-32768, 32768, (5, 2, 3))
    c = rng.integers(-32768, 32768, (3,))
    op = QBinary("Sub", 23456, -12345, 16, (1.0, 1.0), 1.0, const=c, const_left=left)
    y = fx.binary_q(op, x, None, (2, 3))
    cc = np.broadcast_to(c, x.shape)
    a, b = (cc, x) if left else (x, cc)
    want = [[[_binary_int("Sub", int(a[r, i, j]), int(b[r, i, j]), 23456, -12345, 16)
              for j in range(3)] for i in range(2)] for r in range(5)]
    assert y.tolist() == want


def test_binary_q_broadcasts_per_step_shapes_aligned_right():
    rng = np.random.default_rng(1)
    a = rng.integers(-32768, 32768, (3, 2, 1, 4))
    b = rng.integers(-32768, 32768, (3, 5, 1))
    op = QBinary("Add", 12345, -6789, 15, (1.0, 1.0), 1.0)
    y = fx.binary_q(op, a, b, (2, 5, 4))
    assert y.shape == (3, 2, 5, 4)
    for r, i, j, k in np.ndindex(*y.shape):
        assert y[r, i, j, k] == _binary_int("Add", int(a[r, i, 0, k]), int(b[r, j, 0]), 12345, -6789, 15)


# -- against float math: the documented error ----------------------------------------------------
def _scales(rng):
    return [float(np.float32(2.0 ** rng.uniform(-12, 2))) for _ in range(3)]


@pytest.mark.parametrize("kind", ["Add", "Sub", "Min", "Max", "Mul", "Div"])
def test_binary_q_is_within_half_a_unit_plus_the_multipliers_rounding(kind):
    """|y s_y - (a s_a) op (b s_b)| <= s_y (1/2 + sum |x| 2^-(shift+1)) where y is not saturated:
    the one final rounding plus each multiplier's (|m 2^-shift - M| <= 2^-(shift+1))."""
    rng = np.random.default_rng(["Add", "Sub", "Min", "Max", "Mul", "Div"].index(kind))
    for _ in range(20):
        sa, sb, sy = _scales(rng)
        a = rng.integers(-32768, 32768, (4, 16))
        b = rng.integers(-32768, 32768, (4, 16))
        if kind == "Div":
            b[b == 0] = 1
        fa, fb = a * sa, b * sb
        if kind in ("Mul", "Div"):
            M = sa * sb / sy if kind == "Mul" else sa / (sb * sy)
            bound = np.abs(a * b) if kind == "Mul" else np.abs(a / b)
            mult = make_mult(np.array([M]), 2.0**30 if kind == "Mul" else 2.0**15, kind)
            s, m = mult.shift, int(mult.m[0])
            op = QBinary(kind, m, 0, s, (sa, sb), sy)
            # Div rounds twice: the quotient a m / b (1/2 of 2^-shift units), then the shift
            err = 0.5 + bound * 2.0 ** -(s + 1) + (2.0 ** -(s + 1) if kind == "Div" else 0.0)
        else:
            mult = make_mult(np.array([sa / sy, sb / sy]), 65536.0, kind)
            op = QBinary(kind, int(mult.m[0]), int(mult.m[1]), mult.shift, (sa, sb), sy)
            err = 0.5 + (np.abs(a) + np.abs(b)) * 2.0 ** -(mult.shift + 1)
        real = {"Add": fa + fb, "Sub": fa - fb, "Min": np.minimum(fa, fb), "Max": np.maximum(fa, fb),
                "Mul": fa * fb, "Div": fa / np.where(fb == 0, 1, fb)}[kind] / sy
        y = fx.binary_q(op, a, b, (16,))
        ok = np.abs(real) < 32767
        assert np.all(np.abs(y - real)[ok] <= err[ok] + 1e-9)
        assert np.all(y[~ok] == np.where(real[~ok] > 0, 32767, -32768))


def test_concat_q_requantizes_each_input_and_joins_along_the_axis():
    rng = np.random.default_rng(5)
    xs = [rng.integers(-32768, 32768, (3, 2, k)) for k in (1, 3, 2)]
    scales = [0.01, 0.002, 0.5]
    sy = 0.05
    mults = [make_mult(np.array([s / sy]), 32768.0, "concat") for s in scales]
    y = fx.concat_q(QConcat(1, mults, sy), xs)
    assert y.shape == (3, 2, 6)
    real = np.concatenate([x * s / sy for x, s in zip(xs, scales)], axis=2)
    err = 0.5 + np.concatenate([np.abs(x) * 2.0 ** -(m.shift + 1) for x, m in zip(xs, mults)], axis=2)
    ok = np.abs(real) < 32767
    assert np.all(np.abs(y - real)[ok] <= err[ok])
    assert np.all(y[~ok] == np.sign(real[~ok]).astype(np.int64) * 32767 - (real[~ok] < 0))


@pytest.mark.parametrize("kind", ["Sum", "Mean", "Max", "Min"])
def test_reduce_q_is_within_half_a_unit_plus_the_multipliers_rounding(kind):
    rng = np.random.default_rng(7)
    x = rng.integers(-32768, 32768, (3, 4, 5, 6))
    axes = (0, 2)
    n = 4 * 6
    sx, sy = 0.001, 0.01 * (n if kind == "Sum" else 1)
    M = sx / sy / (n if kind == "Mean" else 1)
    mult = make_mult(np.array([M]), 32768.0 * n, kind)
    y = fx.reduce_q(QReduce(kind, axes, mult, sx, sy), x)
    assert y.shape == (3, 1, 5, 1)
    pick = {"Sum": np.sum, "Mean": np.sum, "Max": np.max, "Min": np.min}[kind]
    v = pick(x, axis=(1, 3), keepdims=True)
    real = v * M
    err = 0.5 + np.abs(v) * 2.0 ** -(mult.shift + 1)
    assert np.all(np.abs(y - real) <= err)


def test_reduce_q_largest_bound_fits_and_one_more_overflows():
    """n 2^15 |m| + 2^(shift-1) <= INT64_MAX is the load-time rule (csrc/ops_check.c): the oracle
    refuses the multiplier one past it, before an int64 product could wrap."""
    n = 100_000
    x = np.full((1, n), -32768, np.int64)
    m = (fx.INT64_MAX - (1 << 61)) // (32768 * n)
    assert m < 2**31
    y = fx.reduce_q(QReduce("Sum", (0,), Mult(np.array([-m]), 62), 1.0, 1.0), x)
    assert y.tolist() == [[_sat16(_rshr(-32768 * n * -m, 62))]]
    with pytest.raises(fx.FixedPointOverflow, match="overflows int64"):
        fx.reduce_q(QReduce("Sum", (0,), Mult(np.array([m + 1]), 62), 1.0, 1.0), x)


def test_gather_q_takes_rows_and_refuses_ids_outside_the_table():
    table = np.arange(12, dtype=np.int16).reshape(4, 3)
    ids = np.array([[3, 0], [1, 1]])
    y = fx.gather_q(QGather(table, 1.0), ids)
    assert y.shape == (2, 2, 3) and y[0, 0].tolist() == [9, 10, 11] and y[1, 1].tolist() == [3, 4, 5]
    for bad in (4, -1):
        with pytest.raises(InputError, match=rf"{bad} is outside the table's rows \[0, 4\)"):
            fx.gather_q(QGather(table, 1.0), np.array([[0, bad]]))
    with pytest.raises(InputError, match="expected integers"):
        fx.gather_q(QGather(table, 1.0), np.array([[0.5]]))


# -- the C kernels' vectors ------------------------------------------------------------------------
def test_op_vectors_on_disk_are_what_the_generator_writes(capsys):
    """tests/data/ops/ops.bin (csrc/tests/test_ops.c reads it) is regenerated byte for byte."""
    assert make_op_vectors.main(["--check"]) == 0, capsys.readouterr().out


# -- run_qgraph gives the per-op oracles' integers (it calls them; the constant operand's side) --
@settings(max_examples=100, deadline=None)
@given(kind=st.sampled_from(["Add", "Sub", "Min", "Max", "Mul", "Div"]),
       seed=st.integers(0, 2**32 - 1), ma=M32, mb=M32, shift=st.integers(1, 62),
       const=st.sampled_from([None, "right", "left"]))
def test_run_qgraph_binary_agrees_with_binary_q(kind, seed, ma, mb, shift, const):
    """docs/quantization.md section 11 is the one definition: a one-node integer graph run by
    rnnedge.fixedpoint.run_qgraph and the per-op oracle the C kernels are tested against give
    the same integers (extremes and constants on either side included)."""
    from rnnedge.ir.graph import Graph, Node, Value
    from rnnedge.ir.layers import TensorSpec

    rng = np.random.default_rng(seed)
    if kind in ("Mul", "Div"):
        mb = 0
    a = rng.integers(-32768, 32768, (2, 3, 4, 1))
    b = rng.integers(-32768, 32768, (2, 3, 5))
    a.reshape(-1)[:2] = (-32768, 32767)
    c = rng.integers(-32768, 32768, (5,)).astype(np.int16) if const else None
    op = QBinary(kind, ma, mb, shift, (1.0, 1.0), 1.0, const=c, const_left=const == "left")
    values = [Value("a", (4, 1), "s16", "input", scale=1.0),
              Value("y", (4, 5), "s16", "output", scale=1.0)]
    if const:
        node = Node(op, [0], [1])
        want = fx.binary_q(op, a.reshape(6, 4, 1), None, (4, 5)).reshape(2, 3, 4, 5)
    else:
        values.insert(1, Value("b", (5,), "s16", "state", scale=1.0, init=b[0, 0]))
        node = Node(op, [0, 1], [2])
        a = a[:1, :1]  # one step of one stream: the state value b is that step's second input
        want = fx.binary_q(op, a.reshape(1, 4, 1), b[:1, :1].reshape(1, 5), (4, 5)).reshape(
            1, 1, 4, 5)
    kinds = [v.kind for v in values]
    g = Graph(values, [node], kinds.index("input"), kinds.index("output"),
              TensorSpec("a", "TBF", [None, None, 4]), TensorSpec("y", "TBF", [None, None, 20]),
              quant="int16")
    got, _ = fx.run_qgraph(g, a.astype(np.int16))
    assert np.array_equal(got, want)


# -- run_qgraph calls these oracles (8d03961); a caller may place the constant operand itself ----
@pytest.mark.parametrize("left", [False, True])
def test_binary_q_takes_a_constant_placed_by_the_caller_as_given(left):
    """run_qgraph broadcasts op.const over the rows and passes both operands: binary_q must not
    apply the constant a second time (it did, and the Add of a left constant came out 1.03 off
    in test_quantize_graph.py::test_graph_op_forms_against_float_math)."""
    rng = np.random.default_rng(5)
    x = rng.integers(-32768, 32768, (4, 3))
    c = rng.integers(-32768, 32768, (3,))
    op = QBinary("Sub", 1 << 14, 1 << 13, 14, (1.0, 1.0), 1.0, const=c, const_left=left)
    cc = np.broadcast_to(c, x.shape)
    placed = fx.binary_q(op, cc, x, (3,)) if left else fx.binary_q(op, x, cc, (3,))
    assert np.array_equal(placed, fx.binary_q(op, x, None, (3,)))


def test_the_oracles_refuse_inputs_outside_int16_and_multipliers_outside_int32():
    """Values reach the kernels as int16 and multipliers as int32 slots: anything else is a
    caller's bug that the oracle names instead of computing numbers C never would."""
    big = np.array([[40000, 0]], np.int64)
    ok = np.zeros((1, 2), np.int64)
    with pytest.raises(fx.FixedPointOverflow, match="binary input a"):
        fx.binary_q(QBinary("Add", 1, 1, 1, (1.0, 1.0), 1.0), big, ok, (2,))
    with pytest.raises(fx.FixedPointOverflow, match="outside int32"):
        fx.binary_q(QBinary("Add", 2**31, 1, 1, (1.0, 1.0), 1.0), ok, ok, (2,))
    with pytest.raises(fx.FixedPointOverflow, match="concat input 1"):
        fx.concat_q(QConcat(0, [Mult(np.array([1]), 1)] * 2, 1.0), [ok, -big])
    with pytest.raises(fx.FixedPointOverflow, match="reduce input"):
        fx.reduce_q(QReduce("Max", (0,), Mult(np.array([1]), 1), 1.0, 1.0), big)


# -- HYPOT: the quantizer's fused magnitude (rnnedge.quant.graph.fuse_magnitudes) -----------------
def _hypot_int(a: int, b: int, ma: int, mb: int, s: int) -> int:
    """sqrt((a^2 m_a + b^2 m_b) / 2^s) rounded half up, in Python integers: the largest y with
    (2y - 1)^2 2^s <= 4 (a^2 m_a + b^2 m_b), i.e. y - 1/2 <= the root."""
    v = a * a * ma + b * b * mb
    y = math.isqrt(v >> s) + 1
    while y > 0 and (2 * y - 1) ** 2 << s > 4 * v:
        y -= 1
    return _sat16(y)


@settings(max_examples=300, deadline=None)
@given(a=st.lists(I16, min_size=1, max_size=12), b=st.lists(I16, min_size=1, max_size=12),
       ma=st.integers(0, fx.HYPOT_MMAX - 1), mb=st.integers(0, fx.HYPOT_MMAX - 1),
       half=st.integers(1, 31))
def test_binary_q_hypot_is_the_root_rounded_half_up(a, b, ma, mb, half):
    n = min(len(a), len(b))
    x0 = np.array([a[:n]], np.int64)
    x1 = np.array([b[:n]], np.int64)
    y = fx.binary_q(QBinary("Hypot", ma, mb, 2 * half, (1.0, 1.0), 1.0), x0, x1, (n,))
    assert y[0].tolist() == [_hypot_int(int(p), int(q), ma, mb, 2 * half) for p, q in zip(x0[0], x1[0])]


def test_binary_q_hypot_at_its_bounds_and_its_refusals():
    """The largest sum of squares (both m at 2^30 - 1, shift 62) stays inside int64 and
    saturates where the root passes 32767; a negative or too large m, or an odd shift, is
    refused (as the C loader refuses them)."""
    edge = np.array([[-32768, 32767, -32768, 0, 3]], np.int64)
    top = fx.HYPOT_MMAX - 1
    for ma, mb, s in ((top, top, 62), (top, 0, 2), (1 << 20, 1 << 20, 40), (4, 4, 2)):
        y = fx.binary_q(QBinary("Hypot", ma, mb, s, (1.0, 1.0), 1.0), edge, edge[:, ::-1], (5,))
        assert y[0].tolist() == [_hypot_int(int(p), int(q), ma, mb, s) for p, q in zip(edge[0], edge[0, ::-1])]
    # m = 2^s: sqrt(a^2 + b^2) itself; 3-4-5 exactly, and 32767 for the saturated corner
    y = fx.binary_q(QBinary("Hypot", 1 << 20, 1 << 20, 20, (1.0, 1.0), 1.0),
                    np.array([[3, -32768, 1]]), np.array([[-4, -32768, 1]]), (3,))
    assert y[0].tolist() == [5, 32767, 1]
    for ma, mb, s in ((-1, 0, 2), (0, fx.HYPOT_MMAX, 2), (1, 1, 3)):
        with pytest.raises(fx.FixedPointOverflow, match="Hypot"):
            fx.binary_q(QBinary("Hypot", ma, mb, s, (1.0, 1.0), 1.0), edge, edge, (5,))

