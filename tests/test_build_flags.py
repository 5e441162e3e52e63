"""rnnedge/_build.py picks the compiler flags that select csrc/vec.h's SIMD variant by asking the
compiler what it predefines for the machine we build on. A fake compiler stands in for gcc here,
so every machine's branch runs on any host."""

from __future__ import annotations

import re
import stat
import sys
from pathlib import Path

import pytest

# the build script of this source tree (the installed package's copy cannot find csrc/)
import importlib.util

_spec = importlib.util.spec_from_file_location(
    "rnnedge_build", Path(__file__).resolve().parent.parent / "rnnedge" / "_build.py"
)
_build = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_build)

FAKE_CC = """#!{python}
import sys
args = sys.argv[1:]
answers = {answers!r}   # flags (joined by spaces) -> macros it defines; a missing key: refused
key = " ".join(a for a in args if a.startswith("-m"))
if key not in answers:
    sys.stderr.write("cc: error: unknown flags " + key + "\\n")
    sys.exit(1)
for macro in answers[key]:
    print("#define " + macro + " 1")
"""


def fake_cc(tmp_path: Path, answers: dict[str, list[str]]) -> list[str]:
    """A compiler that answers `-dM -E` for the given target flags, and refuses any other flags."""
    path = tmp_path / "cc"
    path.write_text(FAKE_CC.format(python=sys.executable, answers=answers))
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return [str(path)]


@pytest.mark.parametrize(
    "machine, answers, expected",
    [
        # x86-64: the feature flags of the widest variant, not -march=native
        ("x86_64", {"-march=native": ["__AVX2__", "__FMA__", "__AVX512F__"]},
         ["-mavx512f", "-mfma"]),
        ("x86_64", {"-march=native": ["__AVX2__", "__FMA__"]}, ["-mavx2", "-mfma"]),
        ("AMD64", {"-march=native": ["__AVX2__", "__FMA__"]}, ["-mavx2", "-mfma"]),
        # AVX2 without FMA (some early VIA / emulated CPUs), or an old CPU: the scalar code
        ("x86_64", {"-march=native": ["__AVX2__"]}, []),
        ("x86_64", {"-march=native": ["__SSE2__"]}, []),
        # aarch64: NEON is always there; -mcpu=native only if the compiler understands it
        ("aarch64", {"-mcpu=native": ["__ARM_NEON"]}, ["-mcpu=native"]),
        ("arm64", {}, []),
        # Pi 2/3 on a 32-bit OS: NEON only with the FPU the core has
        ("armv7l", {"-mcpu=native -mfpu=auto": ["__ARM_NEON", "__ARM_FEATURE_FMA"]},
         ["-mcpu=native", "-mfpu=auto"]),
        # Pi 1 / Zero (ARMv6, VFP without NEON): no flags, the scalar code
        ("armv6l", {"-mcpu=native -mfpu=auto": ["__ARM_FP"]}, []),
        # anything else: no flags
        ("riscv64", {"-march=native": ["__AVX2__", "__FMA__"]}, []),
    ],
)
def test_target_flags_by_machine(tmp_path, machine, answers, expected):
    assert _build._target_flags(machine, fake_cc(tmp_path, answers)) == expected


def test_no_flags_when_the_compiler_cannot_run(tmp_path):
    assert _build._target_flags("x86_64", [str(tmp_path / "no-such-cc")]) == []


def test_rnnedge_cflags_replaces_every_default(monkeypatch):
    monkeypatch.setenv("RNNEDGE_CFLAGS", "-std=c99 -O2 -DRNE_NO_SIMD")
    assert _build._cflags() == ["-std=c99", "-O2", "-DRNE_NO_SIMD"]


def test_defaults_keep_c99_and_no_contraction(monkeypatch, tmp_path):
    monkeypatch.delenv("RNNEDGE_CFLAGS", raising=False)
    monkeypatch.setenv("CC", fake_cc(tmp_path, {"-march=native": ["__AVX2__", "__FMA__"]})[0])
    monkeypatch.setattr(_build.platform, "machine", lambda: "x86_64")
    assert _build._cflags() == ["-std=c99", "-O3", "-ffp-contract=off", "-mavx2", "-mfma"]


def test_the_flags_picked_here_compile_the_library(tmp_path):
    """Whatever this machine gets, the compiler accepts it for vec.c (the file they change)."""
    import subprocess

    cc = _build._compiler()
    flags = _build._target_flags(_build.platform.machine(), cc)
    out = subprocess.run(
        [*cc, "-std=c99", "-O2", *flags, "-c", str(_build.CSRC / "vec.c"), "-o",
         str(tmp_path / "vec.o")],
        capture_output=True, text=True, check=False,
    )
    assert out.returncode == 0, out.stderr


# -- the build configuration macros (csrc/rne_internal.h, docs/c-api.md "Build configuration") --
def _config_flags(blob: Path, fault_names: bool = True) -> str:
    """What `rnnedge export-c` names for the model (rnnedge/export_c.py build_config)."""
    import rnnedge
    from rnnedge.export_c import build_config

    return " ".join(build_config(rnnedge.load(blob).blob, fault_names=fault_names))


@pytest.mark.parametrize(
    "label, flags",
    [
        # the int8 LSTM-only firmware (docs/embedded.md): what export-c names for an s8 LSTM
        ("int8_lstm", lambda: _config_flags(_build.CSRC.parent / "tests/data/c/int/q8_lstm_no_bias.rne",
                                            fault_names=False)),
        # every family of csrc/tests/test_config.c compiled out at once (no format left: the
        # library still builds and refuses every model)
        ("everything_out", lambda: "-DRNE_NO_F32 -DRNE_NO_S16 -DRNE_NO_S8 -DRNE_NO_DENSE -DRNE_NO_ACT "
         "-DRNE_NO_LSTM -DRNE_NO_GRU -DRNE_NO_RNN -DRNE_NO_LAYERNORM -DRNE_NO_FAULT_NAMES"),
    ],
)  # fmt: skip
def test_library_built_with_macros_refuses_what_it_left_out(label, flags):
    """csrc/tests/test_config.c (`make config-set`): each one-node model whose op or number
    format the build left out is refused at load (RNE_ELAYER, node 0, field op or fmt), every
    other one runs as its reference says. `make -C csrc configs` runs each macro alone."""
    import shutil
    import subprocess

    if shutil.which("make") is None or shutil.which("cc") is None:
        pytest.skip("no make or cc")
    config = flags()
    assert config
    out = subprocess.run(
        ["make", "-s", "-C", str(_build.CSRC), "config-set", f"CONFIG={config}", "CFLAGS=-O1",
         f"BUILD=config-{label}"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert re.search(r"^[1-9]\d* passed, 0 failed$", out.stdout, re.M), out.stdout[-2000:]
    if label == "int8_lstm":
        assert "int/q8_lstm_no_bias_runs_as_the_reference" in out.stdout
        assert "int/q16_lstm_forward_refused_compiled_out" in out.stdout
