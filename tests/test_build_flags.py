"""rnnedge/_build.py picks the builds of the C library (tiers) and their compiler flags, which
select csrc/vec.h's SIMD variant, by asking the compiler what it predefines for the flags. A fake
compiler stands in for gcc here, so every machine's branch runs on any host."""

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


X86_ALL = {
    "-mavx512f -mavx512bw -mavx512vl -mavx512vnni -mfma":
        ["__AVX2__", "__FMA__", "__AVX512F__", "__AVX512BW__", "__AVX512VL__", "__AVX512VNNI__"],
    "-mavx512f -mfma": ["__AVX2__", "__FMA__", "__AVX512F__"],
    "-mavx2 -mfma": ["__AVX2__", "__FMA__"],
    "": ["__SSE2__"],
}  # fmt: skip


@pytest.mark.parametrize(
    "machine, answers, expected",
    [
        # x86-64: every tier the compiler can build, whatever CPU the build host has (its
        # -march=native is never asked), widest first, and the baseline
        ("x86_64", X86_ALL, [("avx512vnni", ["-mavx512f", "-mavx512bw", "-mavx512vl", "-mavx512vnni", "-mfma"]),
                             ("avx512", ["-mavx512f", "-mfma"]), ("avx2", ["-mavx2", "-mfma"]),
                             ("scalar", [])]),
        # a compiler without -mavx512vnni (gcc before 8): the other tiers
        ("AMD64", {k: v for k, v in X86_ALL.items() if "vnni" not in k},
         [("avx512", ["-mavx512f", "-mfma"]), ("avx2", ["-mavx2", "-mfma"]), ("scalar", [])]),
        # a compiler that accepts the flags but does not define the macros: not built
        ("x86_64", {"-mavx2 -mfma": ["__AVX2__"], "": []}, [("scalar", [])]),
        # aarch64: one build; -mtune=native only if the compiler understands it (never -mcpu or
        # -march=native: a wheel built on a Pi 5 must run on a Pi 4)
        ("aarch64", {"-mtune=native": ["__ARM_NEON"]}, [("neon", ["-mtune=native"])]),
        ("arm64", {}, [("neon", [])]),
        # Pi 2/3 on a 32-bit OS: NEON only with the FPU the core has
        ("armv7l", {"-mcpu=native -mfpu=auto": ["__ARM_NEON", "__ARM_FEATURE_FMA"]},
         [("native", ["-mcpu=native", "-mfpu=auto"])]),
        # Pi 1 / Zero (ARMv6, VFP without NEON): no flags, the scalar code
        ("armv6l", {"-mcpu=native -mfpu=auto": ["__ARM_FP"]}, [("scalar", [])]),
        # anything else: no flags
        ("riscv64", X86_ALL, [("scalar", [])]),
    ],
)  # fmt: skip
def test_tiers_by_machine(tmp_path, machine, answers, expected):
    tiers = _build._tiers(machine, fake_cc(tmp_path, answers))
    assert [(t.name, list(t.flags)) for t in tiers] == expected


def test_only_the_baseline_when_the_compiler_cannot_run(tmp_path):
    assert [t.name for t in _build._tiers("x86_64", [str(tmp_path / "no-such-cc")])] == ["scalar"]


def test_each_x86_tier_needs_the_features_its_flags_enable():
    """What the loader checks before importing a tier (rnnedge/_clib.py pick_tier): every
    feature the flags let the compiler use; -mavx512f implies AVX2."""
    needs = {t.name: set(t.needs) for t in _build.X86_64_TIERS}
    assert needs == {
        "avx512vnni": {"fma", "avx2", "avx512f", "avx512bw", "avx512vl", "avx512vnni"},
        "avx512": {"fma", "avx2", "avx512f"},
        "avx2": {"fma", "avx2"},
        "scalar": set(),
    }


def test_rnnedge_cflags_replaces_every_default_and_builds_one_module(monkeypatch):
    monkeypatch.setenv("RNNEDGE_CFLAGS", "-std=c99 -O2 -DRNE_NO_SIMD")
    assert _build._cflags() == ["-std=c99", "-O2", "-DRNE_NO_SIMD"]
    assert [(t.name, f) for t, f in _build._plan()] == [("cflags", ["-std=c99", "-O2", "-DRNE_NO_SIMD"])]


def test_defaults_keep_c99_and_no_contraction(monkeypatch, tmp_path):
    monkeypatch.delenv("RNNEDGE_CFLAGS", raising=False)
    monkeypatch.setenv("CC", fake_cc(tmp_path, {**X86_ALL, "-march=native": ["__AVX2__", "__FMA__"]})[0])
    monkeypatch.setattr(_build.platform, "machine", lambda: "x86_64")
    plan = _build._plan()
    assert [t.name for t, _ in plan] == ["avx512vnni", "avx512", "avx2", "scalar"]
    for tier, flags in plan:
        assert flags == ["-std=c99", "-O3", "-ffp-contract=off", *tier.flags]
    # the flags of the tier this (AVX2) host loads: what tools/bench compiles its C step bench with
    assert _build._cflags() == ["-std=c99", "-O3", "-ffp-contract=off", "-mavx2", "-mfma"]


def test_each_tier_is_its_own_module_and_the_baseline_lists_them():
    """setup.py builds BUILDERS (cffi_modules); the baseline is rnnedge._rnnedge, whose preamble
    lists every tier with its needs, widest first (what rnnedge/_clib.py reads before importing
    any other)."""
    tiers = [t for t, _ in _build._PLAN]
    assert _build.BUILDERS == ["ffibuilder", *(f"ffibuilder_{t.name}" for t in tiers[:-1])]
    assert _build.module_name(tiers[-1], True) == "rnnedge._rnnedge"
    source = _build._build_info_source([], tiers[0], tiers)
    listed = " ".join(f"{t.name}:{','.join(t.needs)}" for t in tiers)
    assert f'rnnedge_built_tiers(void) {{ return "{listed}"; }}' in source


def test_the_flags_of_every_tier_here_compile_the_library(tmp_path):
    """Whatever tiers this machine gets, the compiler accepts their flags for vec.c and qvec.c
    (the files they change)."""
    import subprocess

    cc = _build._compiler()
    for tier in _build._tiers(_build.platform.machine(), cc):
        for src in ("vec.c", "qvec.c"):
            out = subprocess.run(
                [*cc, "-std=c99", "-O2", *tier.flags, "-c", str(_build.CSRC / src), "-o",
                 str(tmp_path / f"{tier.name}-{src}.o")],
                capture_output=True, text=True, check=False,
            )
            assert out.returncode == 0, (tier, out.stderr)


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
