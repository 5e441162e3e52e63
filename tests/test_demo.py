"""`rnnedge demo` (rnnedge/demo.py) on a few recordings, with and without onnxruntime and onnx,
and the progress bar it shares with the benchmark and the converter (rnnedge.progress). No timed
assertions."""

from __future__ import annotations

import io

import numpy as np
import pytest

from rnnedge import demo
from rnnedge.errors import InputError
from rnnedge.ir.layers import QUANTS
from rnnedge.progress import Progress
from rnnedge.quant.policy import LAYER_TOL, MIN_AGREEMENT


def test_demo_prints_accuracy_size_and_latency_for_every_format(capsys):
    assert demo.main(["--limit", "3", "--no-progress"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert "3 held-back test recordings x 100 steps" in out
    ort = next(l for l in lines if l.startswith("onnxruntime "))
    assert "float32" in ort and "(3/3)" in ort  # the bundled model is right on every test case
    for fmt in QUANTS:
        row = next(l for l in lines if l.startswith("rnnedge ") and f" {fmt} " in l)
        assert " KiB " in row and " us (" in row and ("faster" in row or "slower" in row)
    f32 = next(l for l in lines if l.startswith("rnnedge ") and " f32 " in l)
    assert "(3/3)" in f32


def test_demo_prints_results_then_the_time_then_the_two_commands_for_your_model(capsys):
    """The results first, the total time after them, the next step last; nothing on stderr when
    it is not a terminal (capsys' is not), with or without -q."""
    for argv in (["--limit", "1"], ["--limit", "1", "-q"], ["--limit", "1", "--quiet"]):
        assert demo.main(argv) == 0
        out, err = capsys.readouterr()
        assert err == ""
        table = out.index("\nrnnedge ")
        done = out.index("Done in ")
        assert table < done < out.index(demo.NEXT_STEPS)
        assert out.endswith(demo.NEXT_STEPS + "\n")
    assert "rnnedge convert model.onnx -o model.rne --quant int8 --calib train_inputs.npy" in demo.NEXT_STEPS
    assert "rnnedge verify model.rne model.onnx --input test_inputs.npy" in demo.NEXT_STEPS


def test_demo_agrees_with_onnxruntime_on_every_step_within_the_documented_bars():
    """Every step of all 40 test recordings, the integer formats calibrated on the training
    recordings: int16 within 1e-3 of the probabilities' range (measured 7.0e-4), int8 (a
    classifier) the same argmax on at least 99% of the steps (measured 99.98%) and within the
    1.5e-2 that docs/quantization.md gives for the classifiers' probabilities (measured 1.1e-2)."""
    result = demo.run_demo(progress=False)
    rows = {(r.engine, r.fmt): r for r in result["rows"]}
    span = result["reference_range"]
    assert result["reference"] == "onnxruntime" and 0.9 < span <= 1.0
    assert rows[("rnnedge", "f32")].max_dp < 1e-5
    assert all(r.step_us.shape == (4000,) and (r.step_us > 0).all() for r in rows.values())
    int16, int8 = rows[("rnnedge", "int16")], rows[("rnnedge", "int8")]
    assert int16.max_dp <= LAYER_TOL["s16"] * span and int16.agree == 1.0
    assert int8.agree >= MIN_AGREEMENT and int8.max_dp <= 1.5e-2 * span


def test_demo_calibrates_on_training_recordings_and_says_so(monkeypatch, capsys):
    from rnnedge import examples

    calibrated = []
    real = demo._convert
    monkeypatch.setattr(demo, "_convert", lambda o, b, q, c: calibrated.append(c) or real(o, b, q, c))
    assert demo.main(["--limit", "1", "--no-progress"]) == 0
    train, test = examples.load_train_set()[0], examples.load_test_set()[0]
    assert len(calibrated) == len(QUANTS)
    assert all(np.array_equal(c, train) for c in calibrated)
    assert not any(np.array_equal(a, b) for a in train for b in test)  # disjoint recordings
    assert "calibrated on the model's 40 training recordings" in capsys.readouterr().out


def test_demo_without_onnxruntime_shows_rnnedge_only(monkeypatch, capsys):
    monkeypatch.setattr(demo, "_module_available", lambda name: name != "onnxruntime")
    assert demo.main(["--limit", "2", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "onnxruntime is not installed" in out and "rnnedge[verify]" in out
    assert "vs onnxruntime" not in out and "max |p - p rnnedge f32|" in out
    assert "float32" not in out  # no onnxruntime row


def test_demo_without_onnx_says_which_extra_to_install(monkeypatch):
    monkeypatch.setattr(demo, "_module_available", lambda name: name != "onnx")
    with pytest.raises(InputError, match=r"pip install 'rnnedge\[convert\]'"):
        demo.run_demo(limit=1, progress=False)


def test_demo_refuses_an_empty_limit():
    with pytest.raises(InputError, match="--limit 0"):
        demo.run_demo(limit=0, progress=False)


def test_stream_all_restarts_the_state_for_each_recording():
    calls = []

    def step_for():
        total = [0.0]

        def step(x):
            total[0] += float(x.sum())
            calls.append(x.shape)
            return np.array([total[0]])

        return step

    x = np.ones((2, 3, 4), np.float32)
    out, times = demo.stream_all(step_for, x, (1, 4))
    np.testing.assert_array_equal(out[:, :, 0], [[4, 8, 12], [4, 8, 12]])
    assert times.shape == (6,) and calls == [(1, 4)] * 9  # 3 warm-up steps, then 2 x 3


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bar_redraws_in_place_on_a_terminal_and_erases_itself():
    tty = _Tty()
    with Progress(4, "work", stream=tty, delay=0, plain=True) as bar:
        for i in range(4):
            bar.update(f"item {i}")
    text = tty.getvalue()
    assert "\rwork [######" in text and "4/4 item 3" in text
    last = text.rindex("\rwork")
    assert text[last:].endswith("\r") and text[last:].count("\r") == 3  # drawn, then blanked out


def test_tqdm_draws_the_bar_on_a_terminal_when_installed():
    pytest.importorskip("tqdm")
    tty = _Tty()
    with Progress(3, "work", stream=tty, delay=0) as bar:
        assert bar._tqdm is not None
        for i in range(3):
            bar.update(f"item {i}")
    text = tty.getvalue()
    assert text.startswith("\rwork ") and "/3 [" in text and text.endswith("\r")  # erased at the end


@pytest.mark.parametrize("plain", [True, False])
def test_progress_writes_nothing_off_a_terminal_disabled_or_quiet(plain):
    from rnnedge.progress import quiet_progress

    log = io.StringIO()  # a log or a pipe: not a terminal
    with Progress(2, "work", stream=log, delay=0, plain=plain) as bar:
        bar.update("a")
        bar.update("b")
    assert log.getvalue() == ""
    tty = _Tty()
    with Progress(2, "work", stream=tty, delay=0, enabled=False, plain=plain) as bar:
        bar.update()
    with quiet_progress(), Progress(2, "work", stream=tty, delay=0, plain=plain) as bar:
        bar.update()
    assert tty.getvalue() == ""
    with Progress(2, "work", stream=tty, delay=60, plain=plain) as bar:  # quick work: no bar
        bar.update()
    assert tty.getvalue() == ""
