"""The integer conv oracle (rnnedge.fixedpoint.conv_q; docs/quantization.md "Convolutions")
against a float64 direct convolution of the same integers (tests/make_conv_vectors.direct,
element by element), chunked with its cache against one whole sequence, its overflow refusals
(the load-time rule of csrc/conv_check.c), and the C kernels' vectors (tests/data/conv) against
what the generator writes today."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import make_conv_vectors as mcv
from rnnedge import fixedpoint as fx
from rnnedge.ir.layers import Mult


def _spec(c: mcv.ConvCase, rng: np.random.Generator, qmax: int = 127,
          m: int = 1 << 20, shift: int = 28) -> mcv.QConvSpec:
    W = rng.integers(-qmax, qmax + 1, mcv.onnx_shape(c), dtype=np.int64)
    b = rng.integers(-3000, 3000, c.c_out, dtype=np.int64) if c.bias else None
    mult = Mult(rng.integers(m // 2, m, c.c_out, dtype=np.int64), shift)
    return mcv.QConvSpec(c.transpose, W, b, mult, c.kt, c.dt, c.groups, c.stride, c.pads,
                         c.dilation, c.output_padding)


def _x(c: mcv.ConvCase, rng: np.random.Generator) -> np.ndarray:
    shape = (c.steps, c.batch, c.c_in) + ((c.w,) if c.w else ())
    return rng.integers(-32768, 32768, shape, dtype=np.int64)


@pytest.mark.parametrize("case", mcv.CASES, ids=lambda c: c.name)
def test_conv_q_is_the_direct_convolution_requantized_per_channel(case):
    rng = np.random.default_rng(7)
    spec, x = _spec(case, rng), _x(case, rng)
    y, _ = fx.conv_q(spec, x)
    acc = mcv.direct(case, x if case.w else x[..., None], spec.W, None).astype(np.int64)
    want = fx.sat32(fx.rshr(acc * spec.mult.m[:, None], spec.mult.shift))
    want = fx.sat16(want + (spec.bias[:, None] if spec.bias is not None else 0))
    assert np.array_equal(y, want if case.w else want[..., 0])


@pytest.mark.parametrize("case", [c for c in mcv.CASES if c.kt > 1], ids=lambda c: c.name)
def test_conv_q_in_chunks_with_its_cache_equals_the_whole_sequence(case):
    rng = np.random.default_rng(8)
    case = dataclasses.replace(case, steps=11)
    spec, x = _spec(case, rng), _x(case, rng)
    whole, tail = fx.conv_q(spec, x)
    for chunk in (1, 2, 5):
        cache, parts = None, []
        for t0 in range(0, case.steps, chunk):
            y, cache = fx.conv_q(spec, x[t0:t0 + chunk], cache)
            parts.append(y)
        assert np.array_equal(np.concatenate(parts), whole)
        assert np.array_equal(cache, tail)
    assert tail.shape[0] == (case.kt - 1) * case.dt


def test_conv_q_refuses_what_the_loader_refuses():
    rng = np.random.default_rng(9)
    c = next(c for c in mcv.CASES if c.name == "time_wide")
    spec = _spec(c, rng, qmax=32767, m=(1 << 31) - 1, shift=40)
    with pytest.raises(fx.FixedPointOverflow, match="channel"):
        fx.conv_q(spec, _x(c, rng))
    small = _spec(c, rng, qmax=32767, m=1 << 10, shift=40)
    fx.conv_q(small, _x(c, rng))                            # fits int64 ...
    with pytest.raises(fx.FixedPointOverflow, match="acc32"):
        fx.conv_q(small, _x(c, rng), acc32=True)            # ... but not int32


def test_the_c_vectors_are_what_the_generator_writes_today():
    assert mcv.main(["--check"]) == 0
