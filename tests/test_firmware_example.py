"""examples/firmware on the host: main.c built with the C library by the host's compiler, run, and
its printed outputs checked by check_output.py against the Python API, for the f32 and the int8
export. The int8 program computes no float (tools/cortexm/run.sh checks the soft-float helpers on
the Cortex-M builds); here its integer rescale is checked end to end, and the checker's
sensitivity with it."""

from __future__ import annotations

import json
import runpy
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIRMWARE = ROOT / "examples" / "firmware"
CC = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict[str, tuple[Path, str]]:
    if CC is None:
        pytest.skip("no C compiler")
    out = tmp_path_factory.mktemp("firmware")
    assert runpy.run_path(str(FIRMWARE / "make_firmware_data.py"))["main"]([str(out / "data")]) == 0
    result = {}
    for q in ("f32", "int8"):
        exe = out / f"firmware-{q}"
        subprocess.run([CC, "-std=c99", "-O1", "-Wall", "-Wextra", "-Werror", f"-I{ROOT / 'csrc'}",
                        f"-I{out / 'data' / q}", f"-I{FIRMWARE}", str(FIRMWARE / "main.c"),
                        *map(str, sorted((ROOT / "csrc").glob("*.c"))), "-lm", "-o", str(exe)],
                       check=True, capture_output=True, timeout=600)  # fmt: skip
        run = subprocess.run([str(exe)], check=True, capture_output=True, text=True, timeout=120)
        result[q] = (out / "data" / q, run.stdout)
    return result


def _check(d: Path, log: str, tmp_path: Path) -> int:
    (tmp_path / "run.log").write_text(log)
    return runpy.run_path(str(FIRMWARE / "check_output.py"))["main"]([str(d), str(tmp_path / "run.log")])


@pytest.mark.parametrize("q", ["f32", "int8"])
def test_the_firmware_prints_what_the_python_api_computes(built, q, tmp_path):
    d, log = built[q]
    assert log.count("\nstep ") == 10 and "sequence 0: " in log and "sequence 1: " in log
    assert _check(d, log, tmp_path) == 0


def test_the_integer_rescale_is_the_one_checked(built, tmp_path, capsys):
    d, log = built["int8"]
    io = json.loads((d / "io.json").read_text())
    header = (d / "sensor_frames.h").read_text()
    assert f"#define SENSOR_TO_MODEL_MULT {io['in_mult']}LL" in header
    bad = tmp_path / "bad"
    shutil.copytree(d, bad)
    (bad / "io.json").write_text(json.dumps({**io, "in_mult": int(io["in_mult"] * 1.01)}))
    assert _check(bad, log, tmp_path) == 1  # another multiplier: other inputs, other outputs
    assert "check_output: sequence" in capsys.readouterr().out
    first = next(line for line in log.splitlines() if line.startswith("step "))
    value = first.split()[3]
    off = f"{float(value) + 5e-6:.6f}"
    assert _check(d, log.replace(first, first.replace(value, off, 1)), tmp_path) == 1
