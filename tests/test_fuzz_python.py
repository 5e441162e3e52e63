"""tools/fuzz_python.sh and tests/fuzz_python.py (atheris): a finding makes the run exit non-zero,
and a target runs its seed corpus clean. The long runs: docs/robustness.md."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("atheris")
ROOT = Path(__file__).resolve().parent.parent


def _run(tmp_path: Path, selftest: bool) -> subprocess.CompletedProcess:
    env = os.environ | {"PYTHON": sys.executable, "FUZZ_TARGETS": "meta", "FUZZ_OUT": str(tmp_path),
                        "RNNEDGE_FUZZ_SELFTEST": "1" if selftest else "0"}  # fmt: skip
    return subprocess.run([str(ROOT / "tools" / "fuzz_python.sh"), "1", "-runs=300"], env=env,
                          capture_output=True, text=True, cwd=ROOT)  # fmt: skip


def test_a_finding_makes_the_run_exit_non_zero(tmp_path):
    done = _run(tmp_path, selftest=True)
    assert done.returncode != 0, done.stdout + done.stderr
    assert "Uncaught Python exception" in done.stdout, done.stdout
    assert list((tmp_path / "meta").glob("crash-*"))  # the input is saved for replay


def test_the_meta_target_runs_its_seeds_clean(tmp_path):
    done = _run(tmp_path, selftest=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "DONE" in done.stdout and not list((tmp_path / "meta").glob("crash-*")), done.stdout
