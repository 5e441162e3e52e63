"""Installing rnnedge (docs/raspberry-pi.md): the source distribution a Pi builds from holds the C
library, and `rnnedge --build-info` says which kernels the installed extension was built with."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _console(*args: str) -> subprocess.CompletedProcess:
    """The `rnnedge` console script of this Python (python -m rnnedge if it has none), run away from
    the checkout root, whose rnnedge/ would otherwise be imported."""
    import rnnedge

    script = Path(sys.executable).with_name("rnnedge")
    cmd = [str(script)] if script.exists() else [sys.executable, "-m", "rnnedge"]
    # the package under test first: the one this process imported (installed, editable, or a
    # checkout built in place), never the checkout root's by accident
    here = str(Path(rnnedge.__file__).resolve().parent.parent)
    path = [here, *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(path)}
    return subprocess.run(
        [*cmd, *args], capture_output=True, text=True, timeout=120, cwd=ROOT / "tests", env=env
    )


def test_the_sdist_holds_every_c_file_the_extension_compiles(tmp_path):
    """`pip install rnnedge-X.tar.gz` and `python -m build` (sdist, then the wheel from it) compile
    csrc/*.c, which include csrc/*.h: setuptools puts the .c files in an sdist on its own, the
    headers only through MANIFEST.in (without it the wheel build failed: no csrc/rnnedge.h)."""
    done = subprocess.run(
        [sys.executable, "setup.py", "-q", "sdist", "--dist-dir", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr
    (archive,) = tmp_path.glob("rnnedge-*.tar.gz")
    with tarfile.open(archive) as tar:
        names = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
    wanted = {
        str(p.relative_to(ROOT))
        for p in [*ROOT.glob("csrc/*.c"), *ROOT.glob("csrc/*.h"), ROOT / "csrc" / "Makefile"]
    }
    assert wanted - names == set(), "missing from the sdist"
    assert {"rnnedge/_build.py", "setup.py", "pyproject.toml", "README.md"} <= names


# The kernels each tier's flags select (csrc/vec.h's and csrc/qvec.h's #if chains), and for a
# build with RNNEDGE_CFLAGS (tier "cflags") those its flags select.
_BY_TIER = {
    "scalar": ("scalar", "scalar"),
    "avx2": ("avx2+fma", "avx2"),
    "avx512": ("avx512+fma", "avx2+avx512f"),
    "avx512vnni": ("avx512+fma", "avx512bw+vnni"),
    "neon": ("neon-aarch64", "neon-aarch64"),
}
_BY_FLAG = [
    ("-DRNE_NO_SIMD", "scalar", "scalar"),
    ("-mavx512vnni", "avx512+fma", "avx512bw+vnni"),
    ("-mavx512bw", "avx512+fma", "avx512bw"),
    ("-mavx512f", "avx512+fma", "avx2+avx512f"),
    ("-mavx2", "avx2+fma", "avx2"),
]


def test_build_info_names_the_tier_and_the_kernels_its_flags_select():
    done = _console("--build-info")
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    info = dict(line.split(None, 1) for line in done.stdout.splitlines())
    assert list(info) == ["version", "module", "machine", "isa", "isa_built", "cpu", "f32_kernels",
                          "int_kernels", "cflags"]  # fmt: skip
    assert info["machine"] == platform.machine()
    assert info["isa"] in info["isa_built"].split()
    assert Path(info["module"]).name.startswith("_rnnedge")
    flags = info["cflags"].split()
    if info["isa"] == "cflags":  # one module, exactly the RNNEDGE_CFLAGS it was built with
        assert info["isa_built"] == "cflags"
        given = os.environ.get("RNNEDGE_CFLAGS")  # set while building; tests may run without it
        if given:  # (tools/sanitize.sh builds with it and runs pytest without)
            assert flags[: len(given.split())] == given.split()
        for flag, f32, q in _BY_FLAG:
            if flag in flags:
                assert (info["f32_kernels"], info["int_kernels"]) == (f32, q)
                return
        if platform.machine() in ("x86_64", "AMD64"):  # no SIMD flag: the scalar code
            assert (info["f32_kernels"], info["int_kernels"]) == ("scalar", "scalar")
        return
    assert "-std=c99" in flags
    if info["isa"] in _BY_TIER:
        assert (info["f32_kernels"], info["int_kernels"]) == _BY_TIER[info["isa"]]
    else:  # 32-bit ARM's one build
        assert info["isa"] == "native" and platform.machine().startswith("arm")


def test_build_info_from_python_is_what_the_command_prints():
    import rnnedge

    info = rnnedge.build_info()
    done = _console("--build-info")
    assert dict(line.split(None, 1) for line in done.stdout.splitlines()) == info


def test_build_info_without_the_compiled_module_says_how_to_build_it(monkeypatch, capsys):
    """No compiled module (a checkout before its build): one line naming the fix, exit 1."""
    import rnnedge._clib
    from rnnedge.cli import main

    def not_built() -> None:
        raise rnnedge.NotBuiltError("rnnedge's compiled module (rnnedge._rnnedge) is not built: "
                                    "pip install .")

    import rnnedge

    monkeypatch.setattr(rnnedge._clib, "clib", not_built)
    with pytest.raises(SystemExit) as e:
        main(["--build-info"])
    assert e.value.code == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err == "rnnedge: error: rnnedge's compiled module (rnnedge._rnnedge) is not built: pip install .\n"
