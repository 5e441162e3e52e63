"""`rnnedge demo` (rnnedge/demo.py) on a few recordings, with and without onnxruntime and onnx,
and the plain-text progress bar it shares with the benchmark (rnnedge.measure). No timed
assertions."""

from __future__ import annotations

import io

import numpy as np
import pytest

from rnnedge import demo
from rnnedge.measure import Progress
from rnnedge.conversion import QUANT_FORMATS
from rnnedge.errors import InputError


def test_demo_prints_accuracy_size_and_latency_for_every_format(capsys):
    assert demo.main(["--limit", "3", "--no-progress"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert "3 held-back test recordings x 100 steps" in out
    ort = next(l for l in lines if l.startswith("onnxruntime "))
    assert "float32" in ort and "(3/3)" in ort  # the bundled model is right on every test case
    for fmt in QUANT_FORMATS:
        row = next(l for l in lines if l.startswith("rnnedge ") and f" {fmt} " in l)
        assert " KiB " in row and " us (" in row and ("faster" in row or "slower" in row)
    f32 = next(l for l in lines if l.startswith("rnnedge ") and " f32 " in l)
    assert "(3/3)" in f32


def test_demo_agrees_with_onnxruntime_on_every_step():
    result = demo.run_demo(limit=2, progress=False)
    rows = {(r.engine, r.fmt): r for r in result["rows"]}
    assert rows[("rnnedge", "f32")].max_dp < 1e-5
    assert all(r.step_us.shape == (200,) and (r.step_us > 0).all() for r in rows.values())
    for fmt in QUANT_FORMATS:
        assert rows[("rnnedge", fmt)].max_dp < 0.1, fmt


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


def test_progress_bar_redraws_in_place_on_a_terminal_and_leaves_one_line():
    tty = _Tty()
    bar = Progress(4, "work", stream=tty, delay=0)
    for i in range(4):
        bar.update(f"item {i}")
    bar.close()
    text = tty.getvalue()
    assert "\rwork [######" in text and "4/4 item 3" in text
    assert text.endswith("work: done in 0.0 s\n")


def test_progress_bar_in_a_log_writes_only_the_final_line_and_nothing_when_quick():
    log = io.StringIO()
    bar = Progress(2, "work", stream=log, delay=0)
    bar.update()
    bar.close()
    assert log.getvalue() == "work: done in 0.0 s\n"
    log = io.StringIO()
    bar = Progress(2, "work", stream=log, delay=60)
    bar.update()
    bar.close()
    assert log.getvalue() == ""
