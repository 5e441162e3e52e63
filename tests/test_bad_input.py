"""Bad input through the Python API and the CLI (issue 7): the cases of the issue's list that
tests/test_runtime.py and tests/test_cli.py do not already cover. Each asserts the error class
and a message that names what was expected and what was found; the integer formats' NaN and
+-inf inputs have the behaviour docs/quantization.md defines (NaN reads as 0, +-inf saturate)."""

from __future__ import annotations

import os
import re
import struct
import warnings
from pathlib import Path

import numpy as np
import onnx
import pytest

import rnnedge
from onnx_cases import CASES_BY_NAME, Built
import rnnedge.files
from rnnedge.cli import main

FIXTURES = Path(__file__).parent / "data" / "fixtures"
QUANTS = ("int16", "int8")


@pytest.fixture(scope="module")
def built() -> Built:
    return CASES_BY_NAME["lstm_forward"].build()  # X [T, B=2, 3] -> LSTM(5) -> Y [T, 1, B, 5]


@pytest.fixture(scope="module")
def files(tmp_path_factory, built) -> dict[str, Path]:
    """The ONNX model, its f32/int16/int8 blobs, and its input as .npy."""
    d = tmp_path_factory.mktemp("bad_input")
    paths = {"onnx": d / "lstm.onnx", "x": d / "x.npy"}
    onnx.save(built.model, paths["onnx"])
    np.save(paths["x"], built.feeds["X"])
    for quant in ("f32",) + QUANTS:
        paths[quant] = d / f"lstm_{quant}.rne"
        calibration = None if quant == "f32" else built.feeds["X"]
        rnnedge.convert(paths["onnx"], paths[quant], quant=quant, calibration=calibration)
    return paths


def _x(built: Built) -> np.ndarray:
    return built.feeds["X"].copy()


def _one_line_error(argv: list[str], capsys) -> str:
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err


def _listing(directory: Path) -> list[str]:
    return sorted(os.listdir(directory))


# -- integer formats: NaN and +-inf ----------------------------------------------------------------
@pytest.mark.parametrize("quant", QUANTS)
def test_nan_input_to_an_integer_model_reads_as_zero(files, built, quant):
    """NaN -> 0 before C sees it (a NaN float to an integer would be undefined behaviour)."""
    model = rnnedge.load(files[quant])
    x_nan, x_zero = _x(built), _x(built)
    x_nan[1, 0, :] = np.nan
    x_zero[1, 0, :] = 0.0
    y = model.run(x_nan)
    np.testing.assert_array_equal(y, model.run(x_zero))
    assert np.isfinite(y).all()
    a, b = model.stream(batch=2), model.stream(batch=2)
    for t in range(len(x_nan)):
        np.testing.assert_array_equal(a.step(x_nan[t]), b.step(x_zero[t]))


@pytest.mark.parametrize("quant", QUANTS)
def test_inf_input_to_an_integer_model_saturates(files, built, quant):
    """+inf reads as the largest input (32767 steps of the input scale), -inf as the smallest:
    exactly what +-1e30 gives; outputs stay finite."""
    model = rnnedge.load(files[quant])
    x_inf, x_big = _x(built), _x(built)
    x_inf[1, 0, 0], x_inf[2, 1, 2] = np.inf, -np.inf
    x_big[1, 0, 0], x_big[2, 1, 2] = 1e30, -1e30
    y = model.run(x_inf)
    np.testing.assert_array_equal(y, model.run(x_big))
    assert np.isfinite(y).all()
    a, b = model.stream(batch=2), model.stream(batch=2)
    for t in range(len(x_inf)):
        np.testing.assert_array_equal(a.step(x_inf[t]), b.step(x_big[t]))


@pytest.mark.parametrize("quant", QUANTS)
def test_integer_stream_state_of_the_wrong_dtype_is_refused(files, quant):
    s = rnnedge.load(files[quant]).stream(batch=2)
    before = s.state
    assert before["h0"].dtype == np.int16 and before["c0"].dtype == np.int32
    with pytest.raises(rnnedge.InputError, match=r"\['h0'\]: expected int16 values of shape \[1, 2, 5\] "
                                                 r".*got float32 \[1, 2, 5\]"):
        s.state = {"h0": np.full((1, 2, 5), 0.5, np.float32)}  # no silent rounding of a float state
    with pytest.raises(rnnedge.InputError, match=r"\['c0'\]: expected int32 values in \[-2147483648, "
                                                 r"2147483647\], got values from -1 to 1099511627776"):
        c = np.full((1, 2, 5), 2**40, np.int64)
        c[0, 0, 0] = -1
        s.state = {"h0": np.zeros((1, 2, 5), np.int16), "c0": c}
    for k in before:  # a refused assignment changes nothing, not even its valid entries
        np.testing.assert_array_equal(s.state[k], before[k])


@pytest.mark.parametrize("quant", QUANTS)
def test_integer_model_inputs_wrong_shape_and_other_dtypes(files, built, quant):
    model = rnnedge.load(files[quant])
    s = model.stream(batch=2)
    with pytest.raises(rnnedge.InputError, match=r"batch 2: expected shape \[2, 3\].*got \[1, 3\]"):
        s.step(np.zeros((1, 3), np.float32))
    with pytest.raises(rnnedge.InputError, match=r"expected shape \[T, B, 3\].*got \[4, 2, 4\]"):
        model.run(np.zeros((4, 2, 4), np.float32))
    x = _x(built)
    want = model.run(x)
    np.testing.assert_array_equal(model.run(np.asfortranarray(x)), want)  # non-contiguous
    np.testing.assert_array_equal(model.run(x[::-1][::-1]), want)
    ints = np.round(x * 3).astype(np.int32)
    np.testing.assert_array_equal(model.run(ints), model.run(ints.astype(np.float32)))
    assert model.run(np.zeros((0, 2, 3), np.float32)).shape == (0, 1, 2, 5)  # T = 0


# -- float API cases not covered elsewhere ---------------------------------------------------------
def test_integer_arrays_into_a_float_model_are_converted(files):
    model = rnnedge.load(files["f32"])
    x = np.arange(24, dtype=np.int64).reshape(4, 2, 3) % 5 - 2
    want = model.run(x.astype(np.float32))
    for dtype in (np.int8, np.int16, np.int32, np.int64):
        np.testing.assert_array_equal(model.run(x.astype(dtype)), want)
    s, t = model.stream(batch=2), model.stream(batch=2)
    np.testing.assert_array_equal(s.step(x[0].astype(np.int32)), t.step(x[0].astype(np.float32)))


@pytest.mark.parametrize("shape", [(3,), (2, 4), (2, 2, 3)], ids=["rank-1", "features-4", "rank-3"])
def test_step_of_the_wrong_rank_or_feature_size(files, shape):
    s = rnnedge.load(files["f32"]).stream(batch=2)
    with pytest.raises(rnnedge.InputError, match=r"expected shape \[B, 3\].*got " + re.escape(str(list(shape)))):
        s.step(np.zeros(shape, np.float32))


@pytest.mark.parametrize("dtype", [np.complex64, np.bool_, np.str_])
def test_float_stream_state_of_the_wrong_dtype_is_refused(files, dtype):
    s = rnnedge.load(files["f32"]).stream(batch=2)
    bad = np.zeros((1, 2, 5), dtype)
    with pytest.raises(rnnedge.InputError, match=rf"expected float32 values of shape \[1, 2, 5\].*got "
                                                 rf"{bad.dtype} \[1, 2, 5\]"):
        s.state = {"h0": bad}


# -- model files --------------------------------------------------------------------------------
def test_onnx_path_that_is_a_directory(tmp_path, capsys):
    with pytest.raises(rnnedge.ConvertError, match=rf"cannot read '{tmp_path}': Is a directory"):
        rnnedge.convert(tmp_path)
    err = _one_line_error(["convert", str(tmp_path), "-o", str(tmp_path / "m.rne")], capsys)
    assert f"cannot read '{tmp_path}': Is a directory" in err
    assert _listing(tmp_path) == []


def test_unreadable_onnx_file(files, tmp_path, monkeypatch):
    path = tmp_path / "m.onnx"
    path.write_bytes(files["onnx"].read_bytes())
    real_open = open

    def refuse(p, *a, **k):
        if str(p) == str(path):
            raise PermissionError(13, "Permission denied", str(p))
        return real_open(p, *a, **k)

    monkeypatch.setattr("builtins.open", refuse)
    with pytest.raises(rnnedge.ConvertError, match=r"cannot read '.*m\.onnx': Permission denied"):
        rnnedge.convert(path, tmp_path / "m.rne")
    assert _listing(tmp_path) == ["m.onnx"]


def _future(blob: bytes) -> bytes:
    return blob[:4] + struct.pack("<I", 3) + blob[8:]


BAD_BLOBS = {
    "missing": (None, "no such file|cannot read: No such file"),
    "empty": (lambda b: b"", "empty|truncated: 0 bytes, shorter than the 64-byte header"),
    "truncated": (lambda b: b[: len(b) // 2], "truncated"),
    "not-a-blob": (lambda b: b"PK\x03\x04 a zip, not a blob" * 4, "magic"),
    "future-version": (_future, r"format version 3 is newer than this rnnedge reads \(2\)"),
    "directory": ("dir", "is a directory, not an rnnedge blob"),
}


@pytest.mark.parametrize("command", ["run", "info"])
@pytest.mark.parametrize("kind", list(BAD_BLOBS))
def test_cli_refuses_a_bad_blob_in_one_line(files, tmp_path, capsys, command, kind):
    make, match = BAD_BLOBS[kind]
    path = tmp_path / "m.rne"
    if make == "dir":
        path.mkdir()
    elif make is not None:
        path.write_bytes(make(files["f32"].read_bytes()))
    argv = [command, str(path)] + (["--input", str(files["x"])] if command == "run" else [])
    err = _one_line_error(argv, capsys)
    assert err.startswith(f"rnnedge {command}: error: {path}") and re.search(match, err), err


# -- calibration data of the wrong shape ------------------------------------------------------------
@pytest.mark.parametrize(
    "calibration, match",
    [
        (np.zeros((4, 2, 5), np.float32), "calibration: 5 features per step, the model takes 3"),
        (np.zeros((4, 3), np.float32), r"calibration: expected a numeric array in the model's input layout "
                                       r"'TBF' \(3 axes\), got float32 \[4, 3\]"),
    ],
    ids=["features", "rank"],
)
def test_calibration_of_the_wrong_shape_api(files, tmp_path, calibration, match):
    out = tmp_path / "m.rne"
    out.write_bytes(files["f32"].read_bytes())
    with pytest.raises(rnnedge.InputError, match=match):
        rnnedge.convert(files["onnx"], out, quant="int8", calibration=calibration)
    assert out.read_bytes() == files["f32"].read_bytes() and _listing(tmp_path) == ["m.rne"]


def test_calibration_of_the_wrong_shape_cli(files, tmp_path, capsys):
    calib = tmp_path / "calib.npy"
    np.save(calib, np.zeros((4, 2, 5), np.float32))
    out = tmp_path / "m.rne"
    argv = ["convert", str(files["onnx"]), "-o", str(out), "--quant", "int16", "--calib", str(calib)]
    err = _one_line_error(argv, capsys)
    assert "error: calibration: 5 features per step, the model takes 3" in err
    err = _one_line_error(argv[:-1] + [str(tmp_path / "none.npy")], capsys)
    assert "none.npy: no such calibration inputs file" in err
    assert _listing(tmp_path) == ["calib.npy"]


# -- a failed conversion loses nothing ---------------------------------------------------------------
UNSUPPORTED = FIXTURES / "dynamo_rnn_unrolled.onnx"


def test_failed_conversion_keeps_the_existing_blob_api(files, tmp_path, monkeypatch):
    good = files["f32"].read_bytes()
    out = tmp_path / "m.rne"
    out.write_bytes(good)
    with pytest.raises(rnnedge.UnsupportedOpError, match="unrolled recurrent net"):
        rnnedge.convert(UNSUPPORTED, out)  # refused by the converter
    ln = FIXTURES / "torch_lstm_front_layernorm_seq_sigmoid.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(rnnedge.InputError, match="NaN"):  # refused by the quantizer, after converting
            rnnedge.convert(ln, out, quant="int16", calibration=np.full((3, 9, 4), np.nan, np.float32))
    monkeypatch.setattr(rnnedge.files.os, "fsync", lambda fd: (_ for _ in ()).throw(OSError(28, "No space left on device")))
    with pytest.raises(OSError, match="No space left"):
        rnnedge.convert(files["onnx"], out)  # refused by the disk, halfway through the write
    assert out.read_bytes() == good and _listing(tmp_path) == ["m.rne"]


def test_failed_conversion_keeps_the_existing_blob_cli(files, tmp_path, capsys):
    good = files["f32"].read_bytes()
    src = tmp_path / "bad.onnx"
    src.write_bytes(UNSUPPORTED.read_bytes())
    out = tmp_path / "m.rne"
    out.write_bytes(good)
    err = _one_line_error(["convert", str(src), "-o", str(out)], capsys)
    assert "unrolled recurrent net" in err
    assert out.read_bytes() == good
    err = _one_line_error(["convert", str(src)], capsys)  # the default output, bad.rne, is not made
    assert "unrolled recurrent net" in err
    src.write_bytes(files["onnx"].read_bytes()[:300])  # truncated
    err = _one_line_error(["convert", str(src), "-o", str(out)], capsys)
    assert "is not an ONNX model, or it is truncated" in err
    assert out.read_bytes() == good and _listing(tmp_path) == ["bad.onnx", "m.rne"]


# -- --quant values that do not exist -----------------------------------------------------------------
@pytest.mark.parametrize("quant", ["int4", "INT8", "fp16", ""])
def test_quant_that_does_not_exist(files, tmp_path, capsys, quant):
    expected = f"quant={quant!r} is not a number format rnnedge writes; choose one of f32, int16, int8"
    with pytest.raises(rnnedge.InputError, match=expected.replace("(", r"\(")):
        rnnedge.convert(files["onnx"], tmp_path / "m.rne", quant=quant)
    err = _one_line_error(["convert", str(files["onnx"]), "-o", str(tmp_path / "m.rne"), "--quant", quant], capsys)
    assert expected in err
    assert _listing(tmp_path) == []
