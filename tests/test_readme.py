"""The README's commands and code stay true: its shell commands are the ones CI runs, and its
Python blocks run (the PyTorch one where torch is installed)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

import rnnedge
from rnnedge.examples import EXAMPLE_ONNX, load_test_set

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
BLOCKS = re.findall(r"```(\w*)\n(.*?)```", README, re.S)


def blocks(lang: str) -> list[str]:
    return [code for kind, code in BLOCKS if kind == lang]


def test_the_quick_start_commands_are_what_ci_runs():
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    commands = [line.strip() for code in blocks("sh") for line in code.splitlines() if line.strip()]
    assert commands[:2] == ['pip install ".[convert,verify]" && rnnedge demo', 'pip install ".[test]" && pytest -n auto']
    lines = [line.strip() for line in ci]
    for command in commands:
        assert command in lines, f"the README's {command!r} is not run by .ci/run"
        # under `set -e` a failure of `a` in `a && b` does not stop the script: CI runs the
        # command as the whole condition of an `if ! (...)` that fails the run
        i = lines.index(command)
        assert lines[i - 1] == "if ! (" and lines[i + 1] == "); then", (command, lines[i - 1 : i + 2])
        assert lines[i + 2].startswith(("die ", "exit 1", "echo ")), lines[i + 2]


def test_the_api_block_runs(tmp_path, monkeypatch):
    """The "Python API" block, on the bundled example converted to net.rne."""
    monkeypatch.chdir(tmp_path)
    rnnedge.convert(EXAMPLE_ONNX, "net.rne")
    (api,) = [code for code in blocks("python") if "rnnedge.load(\"net.rne\")" in code]
    x_all = load_test_set()[0]  # [N, T, 6]: the example's input is batch-first
    scope: dict = {"x": x_all[:2], "x_t": x_all[:1, 0], "chunk": x_all[:1, :10]}
    code = api.replace("s.state = {...}", "s.state = s.state")  # the block's placeholder
    exec(compile(code, "README.md (Python API)", "exec"), scope)
    assert scope["y"].shape == (2, 4) and scope["y_t"].shape == (1, 4) and scope["ys"].shape == (1, 4)


def test_the_pytorch_block_runs(tmp_path, monkeypatch):
    torch = pytest.importorskip("torch")
    del torch
    monkeypatch.chdir(tmp_path)
    (code,) = [c for c in blocks("python") if "torch.onnx.export" in c]
    exec(compile(code, "README.md (PyTorch)", "exec"), {})
    assert rnnedge.load("net.rne").run(np.zeros((1, 5, 6), np.float32)).shape == (1, 4)


def test_the_quantize_line_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "net.onnx").write_bytes(EXAMPLE_ONNX.read_bytes())
    (line,) = [c for c in blocks("python") if "quant=\"int8\"" in c]
    scope = {"rnnedge": rnnedge, "x_calib": load_test_set()[0][:8]}
    exec(compile(line, "README.md (int8)", "exec"), scope)
    assert rnnedge.load("net.int8.rne").quant == "int8"
