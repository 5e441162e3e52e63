"""rne_model_io (csrc/rnnedge.h): the C call that gives a model's input and output without the
metadata agrees with what the Python reader finds in the metadata (qio as float32, the input and
output specs), for every integer and float blob of tests/data/c. The C side has its own test in
csrc/tests/test_int.c."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import rnnedge
from rnnedge._clib import clib

DATA = Path(__file__).resolve().parent / "data" / "c"
BLOBS = sorted(DATA.glob("*.rne")) + sorted((DATA / "int").glob("*.rne"))


def _io(model: rnnedge.Model, which: int):
    c = clib()
    io = c.ffi.new("rne_io *")
    assert c.lib.rne_model_io(model._cmodel, which, io) == c.lib.RNE_OK
    return io


@pytest.mark.parametrize("path", BLOBS, ids=lambda p: p.stem)
def test_model_io_matches_the_metadata(path):
    c = clib()
    model = rnnedge.load(path)
    meta = model.blob.meta
    x, y = _io(model, c.lib.RNE_V_INPUT), _io(model, c.lib.RNE_V_OUTPUT)
    assert (x.features, y.features) == (model.in_features, model.out_features)
    if meta.get("quant", "f32") == "f32":
        assert (x.dtype, y.dtype, x.fmt, x.scale, y.scale) == (c.lib.RNE_DT_F32, c.lib.RNE_DT_F32,
                                                               c.lib.RNE_FMT_F32, 0.0, 0.0)
        return
    # int8 when a node has int8 weights; an int8 conversion whose every layer kept int16 weights
    # (docs/quantization.md section 8) is int16 in the blob, whatever the metadata's quant says
    has_s8 = any(n.fmt == c.lib.RNE_FMT_S8 for n in model.blob.nodes)
    assert has_s8 == (meta["quant"] == "int8" and has_s8)  # no int8 node in an int16 model
    assert x.fmt == y.fmt == (c.lib.RNE_FMT_S8 if has_s8 else c.lib.RNE_FMT_S16)
    assert y.dtype == c.lib.RNE_DT_S16
    if x.dtype == c.lib.RNE_DT_S16:
        assert x.scale == np.float32(meta["qio"]["input_scale"]) > 0
    else:  # token ids: not quantized
        assert x.dtype == c.lib.RNE_DT_S32 and x.scale == 0.0
    assert y.scale == np.float32(meta["qio"]["output_scale"]) > 0


def test_there_are_blobs_of_every_format_and_int8_ones_with_every_node_kept_int16():
    c = clib()
    seen = set()
    for p in BLOBS:
        model = rnnedge.load(p)
        seen.add((model.blob.meta.get("quant", "f32"), _io(model, c.lib.RNE_V_OUTPUT).fmt))
    f32, s16, s8 = c.lib.RNE_FMT_F32, c.lib.RNE_FMT_S16, c.lib.RNE_FMT_S8
    assert {("f32", f32), ("int16", s16), ("int8", s8), ("int8", s16)} <= seen
