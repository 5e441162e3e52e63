"""Progress bars on long work (issue 14 item 3): calibration and the per-layer accuracy checks of
an integer convert draw one on a terminal's stderr; nothing extra is written when stderr is not a
terminal, and `--quiet` turns them off. rnnedge.progress.Progress itself: tests/test_demo.py."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from rnnedge.cli import main
from rnnedge.examples import EXAMPLE_ONNX, load_train_set
from rnnedge.progress import Progress

ROOT = Path(__file__).resolve().parent.parent


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def calib(tmp_path) -> str:
    path = tmp_path / "calib.npy"
    np.save(path, load_train_set()[0][:4])
    return str(path)


@pytest.fixture
def no_delay(monkeypatch):
    """Bars draw from the first update (the default waits a second, longer than this convert)."""
    stream, _delay, enabled, plain = Progress.__init__.__defaults__
    monkeypatch.setattr(Progress.__init__, "__defaults__", (stream, 0.0, enabled, plain))


def _convert(tmp_path: Path, calib: str, *extra: str, monkeypatch) -> tuple[str, str]:
    tty = _Tty()
    out = io.StringIO()
    monkeypatch.setattr(sys, "stderr", tty)
    monkeypatch.setattr(sys, "stdout", out)
    argv = ["convert", str(EXAMPLE_ONNX), "-o", str(tmp_path / "m.rne"), "--quant", "int8",
            "--calib", calib, *extra]  # fmt: skip
    assert main(argv) == 0
    return out.getvalue(), tty.getvalue()


def test_an_int8_convert_on_a_terminal_shows_calibration_and_the_layer_checks(
    tmp_path, calib, no_delay, monkeypatch
):
    _, err = _convert(tmp_path, calib, monkeypatch=monkeypatch)
    assert "calibrating: the float model, layer by layer" in err
    assert "int8: quantizing and checking each layer's accuracy" in err
    assert err.endswith("\r")  # each bar erased when its work is done


@pytest.mark.parametrize("flag", ["--quiet", "-q"])
def test_quiet_turns_the_bars_off_and_changes_nothing_else(tmp_path, calib, no_delay, monkeypatch, flag):
    out_quiet, err_quiet = _convert(tmp_path, calib, flag, monkeypatch=monkeypatch)
    assert err_quiet == ""
    out, _ = _convert(tmp_path, calib, monkeypatch=monkeypatch)
    assert out_quiet == out


def test_off_a_terminal_stderr_holds_nothing_but_the_warnings(tmp_path, calib):
    """The console script with stderr a pipe: the same stderr with and without --quiet, and no
    bar in it."""
    script = Path(sys.executable).with_name("rnnedge")
    cmd = [str(script)] if script.exists() else [sys.executable, "-m", "rnnedge"]
    path = [str(ROOT), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(path)}
    runs = []
    for extra in ([], ["--quiet"]):
        argv = [*cmd, "convert", str(EXAMPLE_ONNX), "-o", str(tmp_path / "m.rne"), "--quant",
                "int8", "--calib", calib, *extra]  # fmt: skip
        done = subprocess.run(argv, capture_output=True, text=True, timeout=300, cwd=tmp_path, env=env)
        assert done.returncode == 0, done.stderr
        runs.append(done)
    assert runs[0].stderr == runs[1].stderr and runs[0].stdout == runs[1].stdout
    assert "\r" not in runs[0].stderr and "calibrating" not in runs[0].stderr
