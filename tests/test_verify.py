"""`rnnedge verify` gives a verdict (issue 14, item 1) and reports the figures convert reports
(item 2): PASS / FAIL against the documented bar of the blob's number format or --tol, exit 0 / 1,
and exit 2 with one line naming the side at fault for anything it cannot compare."""

from __future__ import annotations

import functools
import io
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import onnx
import pytest

import rnnedge
from rnnedge.cli import main
from rnnedge.errors import VerifyError
from rnnedge.progress import Progress
from rnnedge.examples import EXAMPLE_ONNX, load_test_set, load_train_set
from rnnedge.quant.policy import BARS, MIN_AGREEMENT, accuracy
from rnnedge.verify import verify

FIXTURES = Path(__file__).resolve().parent / "data" / "fixtures"


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("verify")
    out = {"f32": d / "har.rne", "int16": d / "har16.rne", "x4": d / "x4.npy", "x1": d / "x1.npy",
           "x1_50": d / "x1_50.npy", "train": d / "train.npy"}  # fmt: skip
    x = load_test_set()[0]
    np.save(out["x4"], x[:4, :20])
    np.save(out["x1"], x[:1])
    np.save(out["x1_50"], x[:1, :50])
    np.save(out["train"], load_train_set()[0][:8])
    rnnedge.convert(EXAMPLE_ONNX, out["f32"])
    rnnedge.convert(EXAMPLE_ONNX, out["int16"], quant="int16", calibration=load_train_set()[0][:8])
    fixed = onnx.load(EXAMPLE_ONNX)  # as a dynamo export without dynamic_shapes: [1, 100, 6]
    dims = fixed.graph.input[0].type.tensor_type.shape.dim
    dims[0].dim_value, dims[1].dim_value = 1, 100
    out["fixed"] = d / "fixed.onnx"
    onnx.save(fixed, out["fixed"])
    refused = onnx.load(EXAMPLE_ONNX)  # an op onnxruntime does not know
    refused.graph.node.append(onnx.helper.make_node("NoSuchOp", ["probs"], ["z"], domain="com.nowhere"))
    refused.opset_import.append(onnx.helper.make_opsetid("com.nowhere", 1))
    out["refused"] = d / "refused.onnx"
    onnx.save(refused, out["refused"])
    return out


def _cli(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rnnedge", *map(str, args)], capture_output=True,
                          text=True, cwd=cwd, timeout=300)  # fmt: skip


def test_pass_prints_the_figure_against_the_bar(files, capsys):
    args = ["verify", str(files["f32"]), str(EXAMPLE_ONNX), "--input", str(files["x4"]), "--long-steps", "200"]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "| sequence |" in text and "drift" in text and "100.00%" in text
    assert "errors over the float output's range" in text and f"on {files['x4']}" in text
    verdict = text.strip().splitlines()[-1]
    assert verdict.startswith("PASS: max error ") and "<= 1e-05 of the float output's range" in verdict
    assert "the documented f32 bar" in verdict


def test_a_miss_is_fail_and_exit_1(files, capsys):
    args = ["verify", str(files["f32"]), str(EXAMPLE_ONNX), "--input", str(files["x4"]),
            "--long-steps", "20", "--tol", "1e-12"]  # fmt: skip
    assert main(args) == 1
    verdict = capsys.readouterr().out.strip().splitlines()[-1]
    assert verdict.startswith("FAIL: max error ") and "> 1e-12 of the float output's range" in verdict
    assert "the bar given: --tol" in verdict


def test_tol_per_format_replaces_only_its_format(files):
    x = np.load(files["x4"])
    r = verify(files["int16"], EXAMPLE_ONNX, x, long_steps=20, tol={"f32": 1e-12})
    assert r.bar is not None and r.bar.tol == BARS["int16"] and r.passed  # int16 keeps its bar
    r = verify(files["int16"], EXAMPLE_ONNX, x, long_steps=20, tol={"int16": 1e-9})
    assert r.bar.tol == 1e-9 and not r.passed


def test_an_int8_classifier_is_held_to_argmax_agreement(files, tmp_path):
    out = tmp_path / "har8.rne"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rnnedge.convert(EXAMPLE_ONNX, out, quant="int8", calibration=load_train_set()[0][:8])
    r = verify(out, EXAMPLE_ONNX, np.load(files["x4"]), long_steps=20)
    assert r.bar is not None and r.bar.tol is None and r.bar.min_agreement == MIN_AGREEMENT
    assert "argmax agreement" in r.verdict() and "int8 classifier" in r.verdict()
    r = verify(out, EXAMPLE_ONNX, np.load(files["x4"]), long_steps=20, tol=1.0)  # a max error instead
    assert r.bar.min_agreement is None and r.passed and "max error" in r.verdict()


def test_convert_and_verify_report_the_same_figures_on_the_same_data(files, tmp_path, capsys):
    """One definition of max and RMS error (issue 14, item 2): on the calibration data, convert's
    end-to-end figures (every step, numpy) equal verify's step-by-step ones (the C library
    against onnxruntime, every prefix), and the RMS error is not above the max error."""
    out = tmp_path / "har8.rne"
    assert main(["convert", str(EXAMPLE_ONNX), "-o", str(out), "--quant", "int8", "--calib", str(files["train"])]) == 0
    text = capsys.readouterr().out
    line = next(ln for ln in text.splitlines() if "end to end:" in ln)
    assert "of the float output's range" in line and "measured on the calibration data" in text
    r = verify(out, EXAMPLE_ONNX, np.load(files["train"]), long_steps=20)
    step = next(c for c in r.comparisons if c.what.startswith("step by step"))
    assert f"max error {step.max_error:.3g}, RMS error {step.rms_error:.3g}" in line, (line, step)
    assert step.rms_error <= step.max_error


def test_the_rms_error_is_in_the_unit_of_the_max_error():
    y_f = np.array([[0.0, 10.0], [5.0, 2.0]])
    a = accuracy(y_f + 0.5, y_f)
    assert a["range"] == 10.0 and a["rel_max_err"] == pytest.approx(0.05) and a["rel_rms_err"] == pytest.approx(0.05)
    a = accuracy(np.zeros(4), np.full(4, 2.0))  # a constant output: its |max| is the unit
    assert a["range"] == 2.0 and a["rel_max_err"] == 1.0


def test_a_fixed_time_axis_is_compared_where_it_fits(files, capsys):
    """A dynamo export without dynamic_shapes fixes T (and B): an input that fits is compared in
    sequence mode and at the last step, the rest named as not compared and why."""
    assert main(["verify", str(files["f32"]), str(files["fixed"]), "--input", str(files["x1"])]) == 0
    text = capsys.readouterr().out
    assert "step by step (the last step)" in text and "fixes the time axis at 100 steps" in text
    assert text.strip().splitlines()[-1].startswith("PASS")


@pytest.mark.parametrize("case, says", [
    ("fixed T", "fixes axis 1 (time) of input 'x' at 100; verify feeds it 50 steps. Pass --input with 100 steps, or export the model with a dynamic time axis"),
    ("fixed B", "fixes axis 0 (batch) of input 'x' at 1; the input has batch 4. Pass --input with batch 1"),
    ("refused", "onnxruntime refuses"),
    ("other model", "fixes axis 2 (features) of input 'x' at 4; the blob takes 6: is it the model the blob was converted from?"),
    ("onnx for blob", "is an ONNX model, not an rnnedge blob: convert it first: rnnedge convert"),
    ("bad tol", "--tol 'int9=3': expected a positive number"),
    ("no input file", "no such input file"),
])  # fmt: skip
def test_what_cannot_be_compared_is_one_line_and_exit_2(case, says, files, tmp_path):
    blob, onnx_file = files["f32"], EXAMPLE_ONNX
    extra = ["--input", files["x4"]]
    if case == "fixed T":
        onnx_file, extra = files["fixed"], ["--input", files["x1_50"]]
    elif case == "fixed B":
        onnx_file = files["fixed"]
    elif case == "refused":
        onnx_file = files["refused"]
    elif case == "other model":
        onnx_file, extra = FIXTURES / "keras_lstm_dense_softmax.onnx", []
    elif case == "onnx for blob":
        blob = EXAMPLE_ONNX
    elif case == "bad tol":
        extra += ["--tol", "int9=3"]
    elif case == "no input file":
        extra = ["--input", tmp_path / "none.npy"]
    done = _cli(["verify", blob, onnx_file, *extra, "--long-steps", "20"], tmp_path)
    assert done.returncode == 2, done
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.startswith("rnnedge verify: error: ") and says in done.stderr, done.stderr


def test_the_python_api_raises_verify_error_naming_the_side(files):
    with pytest.raises(VerifyError, match="onnxruntime refuses") as info:
        verify(files["f32"], files["refused"])
    assert info.value.side == "onnxruntime"
    with pytest.raises(VerifyError, match="is an ONNX model") as info:
        verify(EXAMPLE_ONNX, EXAMPLE_ONNX)
    assert info.value.side == "rnnedge"


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_long_verify_shows_its_progress_on_a_terminal_and_quiet_hides_it(files, monkeypatch, capsys):
    tty = _Tty()
    monkeypatch.setattr("rnnedge.verify.Progress", functools.partial(Progress, stream=tty, delay=0, plain=True))
    args = ["verify", str(files["f32"]), str(EXAMPLE_ONNX), "--input", str(files["x1_50"]), "--long-steps", "100"]
    assert main(args) == 0
    text = tty.getvalue()
    assert "\rverify har_lstm [" in text and "onnxruntime: the float model" in text
    assert text.endswith("\r")  # erased before the table is printed
    assert "| sequence |" in capsys.readouterr().out
    tty.seek(0), tty.truncate()
    assert main([*args, "--quiet"]) == 0
    assert tty.getvalue() == ""


KERAS = Path(__file__).resolve().parent / "data" / "keras"


class _FakeKeras:
    """Stands in for the `keras` module (TensorFlow is not a test dependency): its model is the
    f32 blob converted from the same file, plus `offset`; `resets` counts the stateful resets."""

    __version__ = "3.99.0"

    def __init__(self, f32: Path, offset: float = 0.0) -> None:
        self.models, self.resets, self.loaded = self, 0, []
        self.blob, self.offset = rnnedge.load(f32), offset

    def load_model(self, path: str, compile: bool = True):
        assert compile is False
        self.loaded.append(path)
        fake = self

        class Layer:
            stateful = True

            def reset_states(self) -> None:
                fake.resets += 1

        class Net:
            inputs = [type("In", (), {"shape": (None, None, 3)})()]
            layers = [Layer()]

            def __call__(self, x: np.ndarray, training: bool = True) -> np.ndarray:
                assert training is False and x.dtype == np.float32 and x.shape[0] == 2  # batch first
                return fake.blob.run(x) + fake.offset

        return Net()


@pytest.fixture(scope="module")
def keras_blobs(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("keras_verify")
    src = KERAS / "k3_lstm_seq.keras"
    out = {"f32": d / "f32.rne", "int16": d / "int16.rne", "x": d / "x.npy"}
    x = np.load(KERAS / "input.npy")
    np.save(out["x"], x)
    rnnedge.convert(src, out["f32"])
    rnnedge.convert(src, out["int16"], quant="int16", calibration=x)
    return out


def test_verify_takes_the_keras_file_as_the_float_reference(keras_blobs, monkeypatch, capsys):
    src = str(KERAS / "k3_lstm_seq.keras")
    fake = _FakeKeras(keras_blobs["f32"])
    monkeypatch.setitem(sys.modules, "keras", fake)
    report = verify(keras_blobs["int16"], src, np.load(keras_blobs["x"]), long_steps=40)
    assert report.passed and fake.loaded == [src] and fake.resets == 2  # the sequence, then the drift: each from zero state
    assert 0 < report.worst.max_error <= BARS["int16"]
    assert any("Keras 3.99.0 on" in n and src in n for n in report.notes)
    fake.offset = 0.5  # a reference the blob does not match: FAIL, exit 1
    assert main(["verify", str(keras_blobs["int16"]), src, "--input", str(keras_blobs["x"]), "--long-steps", "40"]) == 1
    assert "FAIL" in capsys.readouterr().out


def test_verify_with_a_keras_file_and_no_keras_says_what_to_install(keras_blobs, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "keras", None)  # import keras raises ImportError
    src = str(KERAS / "k3_lstm_seq.keras")
    with pytest.raises(VerifyError, match="Keras, which is not installed here: pip install tensorflow-cpu"):
        verify(keras_blobs["f32"], src)
    assert main(["verify", str(keras_blobs["f32"]), src]) == 2
    err = capsys.readouterr().err
    assert "k3_lstm_seq.keras is a Keras file" in err and "Traceback" not in err
    with pytest.raises(VerifyError, match="--state pairs an ONNX step function"):
        verify(keras_blobs["f32"], src, state={"h": "hn"})


def test_a_keras_file_that_is_not_the_blobs_model_is_named_as_the_pair(keras_blobs, monkeypatch, capsys):
    fake = _FakeKeras(keras_blobs["f32"])
    fake.blob.run = lambda x: np.zeros((x.shape[0], 3), np.float32)  # another model: [B, 3]
    monkeypatch.setitem(sys.modules, "keras", fake)
    src = str(KERAS / "k3_lstm_seq.keras")
    assert main(["verify", str(keras_blobs["f32"]), src, "--input", str(keras_blobs["x"])]) == 2
    err = capsys.readouterr().err
    assert "rnnedge gave shape [2, 8, 4], the float model [2, 3]: is it the model the blob was" in err
