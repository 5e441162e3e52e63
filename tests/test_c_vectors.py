"""tests/make_c_vectors.py: where the C library's expected outputs come from, and what --check
accepts. (The vectors themselves are run by csrc/tests: `make -C csrc test`.)"""

from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np
import pytest

import make_c_vectors
import onnx_cases as oc

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def mcv():
    return make_c_vectors


LAYOUT1 = [c for c in oc.CASES if "layout1" in c.name]


def test_layout1_cases_exist_and_onnxruntime_refuses_them(mcv):
    assert len(LAYOUT1) == 5
    with pytest.raises(Exception, match="layout"):
        mcv.run_onnxruntime(LAYOUT1[0].build())


@pytest.mark.parametrize("case", LAYOUT1, ids=lambda c: c.name)
def test_layout1_expected_outputs_come_from_onnx_reference_evaluator(mcv, case, capsys):
    """Not from rnnedge's own numpy reference: the file on disk is the ReferenceEvaluator's
    output, and a wrong reference is caught by the agreement check instead of passing it."""
    files = mcv.case_files(case, 0)
    assert "from onnx ReferenceEvaluator" in capsys.readouterr().out
    want = mcv.run_reference_evaluator(case.build())
    y = np.load(io.BytesIO(files[f"{case.name}.y.npy"]))
    np.testing.assert_array_equal(y, want)
    on_disk = np.load(ROOT / "tests" / "data" / "c" / f"{case.name}.y.npy")
    assert np.abs(on_disk - want).max() <= mcv.CHECK_TOL * max(1.0, float(np.abs(want).max()))


def test_a_wrong_reference_is_refused_for_a_layout1_case(mcv, monkeypatch):
    real = mcv.run_network

    def off_by_a_bit(net, x, state=None):
        y, s = real(net, x, state)
        return y + 1e-3, s

    monkeypatch.setattr(mcv, "run_network", off_by_a_bit)
    with pytest.raises(SystemExit, match="onnx ReferenceEvaluator and the reference differ"):
        mcv.case_files(LAYOUT1[0], 0)


def test_check_compares_float_outputs_within_check_tol_and_all_else_exactly(mcv, tmp_path):
    y = np.linspace(-3, 3, 24, dtype=np.float32).reshape(2, 3, 4)
    ulp = np.nextafter(y, np.float32(np.inf))
    path = tmp_path / "a.y.npy"
    path.write_bytes(mcv.npy_bytes(ulp))
    assert mcv.same_file(path, mcv.npy_bytes(y), float_output=True)
    assert not mcv.same_file(path, mcv.npy_bytes(y), float_output=False)  # integer files: exact
    path.write_bytes(mcv.npy_bytes(y + 3 * 1e-5))
    assert not mcv.same_file(path, mcv.npy_bytes(y), float_output=True)
    path.write_bytes(mcv.npy_bytes(y[:1]))
    assert not mcv.same_file(path, mcv.npy_bytes(y), float_output=True)
    assert not mcv.same_file(tmp_path / "missing.npy", mcv.npy_bytes(y), float_output=True)


def test_the_manifest_names_every_data_file():
    """tests/data/MANIFEST.md says what made each data file: every directory and file of
    tests/data and every data file of rnnedge/examples is named there (a directory covers what
    it holds), and every path it names exists."""
    text = (ROOT / "tests" / "data" / "MANIFEST.md").read_text()
    named = {m.rstrip("/") for m in re.findall(r"`((?:tests|rnnedge|csrc)/[^`\s]+)`", text)}
    named |= {f"rnnedge/examples/{m}" for m in re.findall(r"`(har_\w+\.\w+)`", text)}
    data = ROOT / "tests" / "data"
    files = [p for p in data.rglob("*") if p.is_file() and p.name != "MANIFEST.md"]
    files += [p for p in (ROOT / "rnnedge" / "examples").iterdir() if p.suffix in (".onnx", ".npz", ".npy")]
    missing = []
    for p in files:
        rel = p.relative_to(ROOT)
        if not any(str(rel) == n or str(rel).startswith(n + "/") for n in named):
            missing.append(str(rel))
    assert not missing, f"not in tests/data/MANIFEST.md: {missing[:10]} ({len(missing)} in all)"
    assert [n for n in named if not (ROOT / n).exists()] == []
