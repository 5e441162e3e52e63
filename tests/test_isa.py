"""Runtime dispatch (issue 17): the install holds one build of the C library per tier
(rnnedge/_build.py), and rnnedge/_clib.py loads the widest the CPU runs, from the baseline
module's CPU detection (CPUID and XCR0). Every tier gives the same outputs: bit for bit on the
integer formats, and on f32 among the tiers that fuse multiply-adds (AVX2, AVX-512); the scalar
tier's f32 outputs are within a measured bound of theirs (csrc/vec.h: it multiplies and adds
separately, and its sigmoid/tanh round differently). An emulated CPU without AVX-512 (and one
without AVX) loads the tier it runs, with the same bits as that tier here."""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

import rnnedge
from rnnedge._clib import ISA_ENV, MODULE, Tier, built_tiers, clib, cpu_features, pick_tier

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"
X86 = platform.machine().lower() in ("x86_64", "amd64")
CFLAGS_BUILD = clib().isa == "cflags"  # one module built with RNNEDGE_CFLAGS (tools/sanitize.sh)

# |scalar - fused| over every f32 output below: at most 1.61e-6, measured 2026-12-07 (x86-64,
# gcc 12): a sum of k products rounded once (fused) or twice per term, sigmoid and tanh within
# 1.2e-7 of each other (csrc/vec.h), carried through the recurrences. The bound held: 1e-5.
F32_SCALAR_ATOL = 1e-5

# Run every blob given and write its outputs: the C vectors with their stored input (Model.run),
# the converted real models stepped through a stream over a seeded random input (frame shape given).
RUNNER = r"""
import json, sys
import numpy as np
import rnnedge
cases, out = json.loads(sys.argv[1]), sys.argv[2]
ys = {}
for name, (path, frame) in cases.items():
    m = rnnedge.load(path)
    if frame is None:
        ys[name] = m.run(np.load(path[:-4] + ".x.npy"))
    else:
        x = np.random.default_rng(0).standard_normal((12, *frame)).astype(np.float32)
        s = m.stream()
        ys[name] = np.stack([s.step(f) for f in x])
info = rnnedge.build_info()
np.savez(out, **ys)
print(json.dumps({k: info[k] for k in ("isa", "f32_kernels", "int_kernels")}))
"""


def _env(tier: str) -> dict[str, str]:
    """The environment of a child python: RNNEDGE_ISA=tier ("": picked by the CPU), and the
    package under test first on its path."""
    here = str(Path(rnnedge.__file__).resolve().parent.parent)
    path = [here, *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    return {**os.environ, ISA_ENV: tier, "PYTHONPATH": os.pathsep.join(path)}


def _run_tier(tier: str, cases: dict, out: Path, prefix: list[str] = ()) -> tuple[dict, dict]:
    """RUNNER in a fresh python with RNNEDGE_ISA=tier (under `prefix`, an emulator, if given):
    (its build_info subset, its outputs)."""
    done = subprocess.run([*prefix, sys.executable, "-c", RUNNER, json.dumps(cases), str(out)],
                          capture_output=True, text=True, env=_env(tier), cwd=out.parent,
                          timeout=900)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    with np.load(out) as z:
        return json.loads(done.stdout.splitlines()[-1]), {k: z[k] for k in z.files}


@pytest.fixture(scope="module")
def cases(tmp_path_factory) -> dict:
    """name -> (blob path, frame shape or None): every float, int16 and int8 C vector and graph,
    and two real models (DTLN's halves: LSTMs of 128, a 1-D conv and a LayerNorm) in f32, int16 and
    int8, converted here."""
    out: dict = {}
    for path in sorted([*DATA.glob("c/*.rne"), *DATA.glob("c/int/*.rne"),
                        *DATA.glob("c/graph/*.rne")]):  # fmt: skip
        if path.with_suffix("").with_suffix(".x.npy").exists():
            out[str(path.relative_to(DATA))] = (str(path), None)
    tmp = tmp_path_factory.mktemp("isa")
    for name, frame in (("dtln_1", (257,)), ("dtln_2", (1, 512))):
        for quant in ("f32", "int16", "int8"):
            blob = tmp / f"{name}_{quant}.rne"
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                rnnedge.convert(DATA / "real" / f"{name}.onnx", blob, quant=quant)
            out[f"{name}_{quant}"] = (str(blob), frame)
    return out


def _is_float(path: str) -> bool:
    return rnnedge.load(path).blob.meta.get("quant", "f32") == "f32"


@pytest.fixture(scope="module")
def outputs(cases, tmp_path_factory) -> dict:
    """tier -> (build_info subset, outputs) for every tier of this install the CPU runs."""
    tmp = tmp_path_factory.mktemp("isa_out")
    return {t.name: _run_tier(t.name, cases, tmp / f"{t.name}.npz") for t in built_tiers(_base())
            if set(t.needs) <= set(clib().cpu)}  # fmt: skip


def _base():
    import importlib

    return importlib.import_module(MODULE)


def test_a_default_x86_build_holds_every_tier_and_loads_the_widest_the_cpu_runs():
    if not X86 or CFLAGS_BUILD:
        pytest.skip("the x86-64 tiers of a default build (this one is "
                    f"{platform.machine()}, isa {clib().isa})")
    c = clib()
    assert c.tiers == ("avx512vnni", "avx512", "avx2", "scalar")
    expected = pick_tier(built_tiers(_base()), c.cpu, "")
    if os.environ.get(ISA_ENV):
        assert c.isa == os.environ[ISA_ENV]
    else:
        assert c.isa == expected.name
    info = rnnedge.build_info()
    assert (info["isa"], info["isa_built"]) == (c.isa, "avx512vnni avx512 avx2 scalar")
    stem = "_rnnedge." if c.isa == "scalar" else f"_rnnedge_{c.isa}."  # the baseline is scalar
    assert Path(info["module"]).name.startswith(stem)


def test_detection_agrees_with_proc_cpuinfo():
    """The baseline's CPUID/XCR0 detection finds the features Linux lists for this CPU (Linux
    lists an AVX-512 feature only when it saves the zmm state)."""
    if not X86 or not Path("/proc/cpuinfo").exists():
        pytest.skip("x86 Linux only")
    flags = set(re.search(r"^flags\s*:(.*)$", Path("/proc/cpuinfo").read_text(), re.M).group(1).split())
    names = {"fma": "fma", "avx2": "avx2", "avx512f": "avx512f", "avx512bw": "avx512bw",
             "avx512vl": "avx512vl", "avx512vnni": "avx512_vnni"}  # fmt: skip
    found = cpu_features(_base())
    assert set(found) == {ours for ours, linux in names.items() if linux in flags}, (found, sorted(flags))


def test_every_tier_gives_the_same_bits(cases, outputs):
    """Integer outputs equal in every tier; f32 outputs equal among the fused tiers (AVX2, AVX-512,
    AVX-512 VNNI), the scalar tier's within F32_SCALAR_ATOL of them."""
    assert len(cases) > 200
    if X86 and not CFLAGS_BUILD:
        assert {"scalar", "avx2"} <= set(outputs)
    kernels = {t: (info["f32_kernels"], info["int_kernels"]) for t, (info, _) in outputs.items()}
    assert {t: info["isa"] for t, (info, _) in outputs.items()} == {t: t for t in outputs}
    if X86 and not CFLAGS_BUILD:
        assert kernels["scalar"] == ("scalar", "scalar") and kernels["avx2"] == ("avx2+fma", "avx2")
    ref_tier = next(t for t in outputs if t != "scalar") if len(outputs) > 1 else next(iter(outputs))
    ref = outputs[ref_tier][1]
    worst = 0.0
    for tier, (_, ys) in outputs.items():
        assert set(ys) == set(ref)
        for name, y in ys.items():
            if tier == "scalar" and _is_float(cases[name][0]):
                np.testing.assert_allclose(y, ref[name], rtol=0, atol=F32_SCALAR_ATOL,
                                           err_msg=f"{name}: scalar against {ref_tier}")  # fmt: skip
                worst = max(worst, float(np.max(np.abs(y.astype(np.float64) - ref[name]), initial=0)))
            else:
                assert y.dtype == ref[name].dtype and y.tobytes() == ref[name].tobytes(), (
                    f"{name}: tier {tier} differs from {ref_tier}")
    print(f"largest |scalar - {ref_tier}| over the f32 outputs: {worst:.3g}")


def _tiers() -> list[Tier]:
    return [Tier("avx512vnni", ("fma", "avx2", "avx512f", "avx512bw", "avx512vl", "avx512vnni"), "m4"),
            Tier("avx512", ("fma", "avx2", "avx512f"), "m3"), Tier("avx2", ("fma", "avx2"), "m2"),
            Tier("scalar", (), "m1")]  # fmt: skip


@pytest.mark.parametrize("have, pick", [
    (("fma", "avx2", "avx512f", "avx512bw", "avx512vl", "avx512vnni"), "avx512vnni"),
    (("fma", "avx2", "avx512f", "avx512bw", "avx512vl"), "avx512"),  # Skylake-X: no VNNI
    (("fma", "avx2"), "avx2"),
    (("avx2",), "scalar"),  # AVX2 without FMA
    ((), "scalar"),
])  # fmt: skip
def test_the_widest_tier_the_cpu_has_is_picked(have, pick):
    assert pick_tier(_tiers(), have, "").name == pick


def test_forcing_a_tier_the_cpu_lacks_is_refused_by_name():
    with pytest.raises(rnnedge.NotBuiltError, match=r"RNNEDGE_ISA=avx512: this CPU lacks avx512f "
                       r"\(it has: fma avx2\); the tiers it runs: avx2, scalar"):  # fmt: skip
        pick_tier(_tiers(), ("fma", "avx2"), "avx512")
    with pytest.raises(rnnedge.NotBuiltError, match=r"RNNEDGE_ISA=avx512vnni: this CPU lacks avx512vnni "):
        pick_tier(_tiers(), ("fma", "avx2", "avx512f", "avx512bw", "avx512vl"), "avx512vnni")
    assert pick_tier(_tiers(), ("fma", "avx2"), "scalar").name == "scalar"


def test_forcing_a_tier_not_built_is_refused_by_name(tmp_path):
    """End to end: the first Model made names the variable, the tier and the tiers built."""
    done = subprocess.run([sys.executable, "-m", "rnnedge", "--build-info"], capture_output=True,
                          text=True, env=_env("avx9000"), cwd=tmp_path, timeout=120)  # fmt: skip
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr == (f"rnnedge: error: RNNEDGE_ISA=avx9000: this install has no such build; it has "
                           f"{', '.join(clib().tiers)} (unset RNNEDGE_ISA to pick by the CPU)\n")  # fmt: skip


def _objdump(so: Path) -> str:
    done = subprocess.run(["objdump", "-d", "--no-show-raw-insn", str(so)], capture_output=True,
                          text=True, timeout=300, check=True)  # fmt: skip
    return done.stdout


def _module_file(tier: str) -> Path:
    """The file of a wider tier's module (beside the baseline's; not imported here)."""
    (path,) = Path(_base().__file__).parent.glob(f"_rnnedge_{tier}.*")
    return path


def test_the_baseline_has_no_avx_and_the_avx2_tier_no_avx512_instruction():
    """The baseline module (which every x86-64 imports, and whose detection runs first) holds no
    VEX- or EVEX-encoded instruction (the SSE2 of x86-64 only); the AVX2 tier no AVX-512 one
    (no zmm register, no opmask). Read with objdump (binutils, which gcc needs)."""
    if not X86 or CFLAGS_BUILD:
        pytest.skip("the x86-64 tiers of a default build")
    if shutil.which("objdump") is None:
        pytest.skip("no objdump")
    base = _objdump(Path(_base().__file__))
    mnemonics = [line.split("\t")[-1].split()[0] for line in base.splitlines() if line.count("\t") >= 1
                 and re.match(r"^\s+[0-9a-f]+:\t", line) and line.split("\t")[-1].strip()]  # fmt: skip
    assert len(mnemonics) > 10000
    vex = sorted({m for m in mnemonics if m.startswith("v")} | {m for m in mnemonics if "ymm" in m})
    assert vex == [], vex[:20]
    assert "%ymm" not in base and "%zmm" not in base
    avx2 = _objdump(_module_file("avx2"))
    assert "%ymm" in avx2 and "%zmm" not in avx2 and not re.search(r"%k[0-7]\b", avx2)
    assert "%zmm" in _objdump(_module_file("avx512"))


def _qemu() -> str:
    path = shutil.which("qemu-x86_64-static") or shutil.which("qemu-x86_64")
    if path is None:
        pytest.skip("no qemu-x86_64 (Debian: qemu-user-static, which CI installs for the Pi tests)")
    return path


@pytest.mark.parametrize("cpu, tier", [("Haswell-v4", "avx2"), ("Nehalem", "scalar")])
def test_an_emulated_cpu_loads_the_tier_it_runs_with_the_same_bits(cpu, tier, cases, tmp_path):
    """One build, a CPU without AVX-512 (Haswell: AVX2, FMA) and one without AVX (Nehalem), under
    qemu's user-mode emulator: each loads the tier it can run (no SIGILL) and computes the bits that
    tier computes here; forcing AVX-512 there is refused naming avx512f."""
    if not X86 or CFLAGS_BUILD:
        pytest.skip("the x86-64 tiers of a default build")
    qemu = [_qemu(), "-cpu", cpu]
    some = {k: v for k, v in cases.items() if k.startswith(("dtln_1", "dtln_2_int8", "c/graph/"))
            or k in ("c/gru_acts_params.rne", "c/int/q8_gru_batch_first.rne")}  # fmt: skip
    info, ys = _run_tier("", some, tmp_path / "emulated.npz", qemu)
    assert info["isa"] == tier
    _, here = _run_tier(tier, some, tmp_path / "here.npz")
    assert sorted(ys) == sorted(here) and len(ys) >= 8
    for name in ys:
        assert ys[name].tobytes() == here[name].tobytes(), name
    done = subprocess.run([*qemu, sys.executable, "-m", "rnnedge", "--build-info"], capture_output=True,
                          text=True, env=_env("avx512"), cwd=tmp_path, timeout=300)  # fmt: skip
    assert done.returncode == 1
    assert "rnnedge: error: RNNEDGE_ISA=avx512: this CPU lacks " in done.stderr
    assert "avx512f" in done.stderr.split("lacks", 1)[1].split("(")[0]


class _FakeLib:
    """The lib of a fake compiled module: what clib() reads from the baseline and a tier."""

    def __init__(self, ffi, tier: str, listed: str | None) -> None:
        self._ffi, self._tier, self._listed = ffi, tier, listed
        if listed is not None:  # a build of before the tiers has no list
            self.rnnedge_built_tiers = lambda: self._ffi.new("char[]", listed.encode())
        self.rnnedge_cpu_features = lambda buf, n: self._ffi.new("char[]", b"fma avx2")
        self.rnnedge_build_tier = lambda: self._ffi.new("char[]", tier.encode())


def _fake_modules(monkeypatch, listed: str | None, avx2_says: str) -> None:
    from types import SimpleNamespace

    import cffi

    ffi = cffi.FFI()
    monkeypatch.setitem(sys.modules, MODULE, SimpleNamespace(
        ffi=ffi, lib=_FakeLib(ffi, "scalar", listed), __file__="base.so"))
    monkeypatch.setitem(sys.modules, MODULE + "_avx2", SimpleNamespace(
        ffi=ffi, lib=_FakeLib(ffi, avx2_says, listed), __file__="avx2.so"))  # fmt: skip
    monkeypatch.delenv(ISA_ENV, raising=False)


def test_a_baseline_of_before_the_tiers_is_refused_naming_the_fix(monkeypatch):
    """An in-place build left from before the tiers (no rnnedge_built_tiers): rebuild."""
    _fake_modules(monkeypatch, None, "avx2")
    with pytest.raises(rnnedge.NotBuiltError, match=r"is of an older build .*rebuild it: pip install \."):
        clib.__wrapped__()


def test_a_tier_module_of_another_build_is_refused(monkeypatch):
    """The module found under a tier's name must say it is that tier (a stale file otherwise)."""
    _fake_modules(monkeypatch, "avx2:fma,avx2 scalar:", "avx512")
    with pytest.raises(rnnedge.NotBuiltError, match=r"_rnnedge_avx2 .* is the build of tier avx512, not avx2"):
        clib.__wrapped__()
    _fake_modules(monkeypatch, "avx2:fma,avx2 scalar:", "avx2")
    c = clib.__wrapped__()
    assert (c.isa, c.tiers, c.cpu, c.module) == ("avx2", ("avx2", "scalar"), ("fma", "avx2"), "avx2.so")
