"""CI's own checks can fail: each one, given what it should catch (a failing fuzzer, a missing
llvm-nm or a blind one, a missing clang, a target that built the scalar fallback, a skipped test),
exits non-zero and says why. The scripts run on stand-ins (PATH manipulation) in a temporary
directory; nothing here writes into the source tree."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TOOLS = ("bash", "make", "gcc", "clang")
needs_tools = pytest.mark.skipif(
    not all(shutil.which(t) for t in TOOLS), reason=f"needs {', '.join(TOOLS)}"
)


def run(args: list[str], cwd: Path, path: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        args, cwd=cwd, env={**os.environ, "PATH": path, **env}, capture_output=True, text=True,
        stdin=subprocess.DEVNULL, timeout=120,
    )  # fmt: skip


def stand_in(bindir: Path, name: str, script: str) -> None:
    bindir.mkdir(parents=True, exist_ok=True)
    (bindir / name).write_text("#!/bin/sh\n" + script)
    (bindir / name).chmod(0o755)


def path_without(tmp_path: Path, *prefixes: str) -> str:
    """A PATH of one directory that links every program of $PATH but those named prefix*."""
    farm = tmp_path / "path-without"
    farm.mkdir()
    for d in os.environ["PATH"].split(os.pathsep):
        if not os.path.isdir(d):
            continue
        for name in os.listdir(d):
            if name.startswith(prefixes) or (farm / name).exists():
                continue
            src = os.path.join(d, name)
            if os.access(src, os.X_OK) and not os.path.isdir(src):
                (farm / name).symlink_to(os.path.realpath(src))
    return str(farm)


def csrc_copy(tmp_path: Path) -> Path:
    dst = tmp_path / "csrc"
    shutil.copytree(ROOT / "csrc", dst, ignore=shutil.ignore_patterns("build"))
    return dst


# -- tools/fuzz.sh: the fuzzer's exit status is the script's --------------------------------------
@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
@pytest.mark.parametrize("status", [77, 1, 0])
def test_fuzz_sh_exits_with_the_fuzzers_status(tmp_path, status):
    tree = tmp_path / "tree"
    (tree / "tools").mkdir(parents=True)
    shutil.copy(ROOT / "tools" / "fuzz.sh", tree / "tools" / "fuzz.sh")
    (tree / "tests" / "data" / "c" / "int").mkdir(parents=True)
    (tree / "tests" / "data" / "c" / "a.rne").write_bytes(b"RNE")
    (tree / "tests" / "data" / "c" / "int" / "b.rne").write_bytes(b"RNE")
    (tree / "csrc" / "tests").mkdir(parents=True)
    (tree / "csrc" / "x.c").write_text("")
    (tree / "csrc" / "tests" / "fuzz_load.c").write_text("")
    # a clang that "builds" a fuzzer which prints a libFuzzer-like line and exits with `status`
    fuzzer = f"#!/bin/sh\necho '==1== ERROR: libFuzzer: deadly signal'\nexit {status}\n"
    stand_in(tmp_path / "bin", "clang", f"""
while [ $# -gt 0 ]; do [ "$1" = -o ] && out=$2; shift; done
printf '%s' "{fuzzer}" > "$out" && chmod +x "$out"
""")
    r = run(["bash", "tools/fuzz.sh", "1"], tree, f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    assert r.returncode == status, r.stdout + r.stderr
    assert f"fuzz exit status {status};" in r.stdout


# -- csrc/Makefile `intonly`: a missing or blind llvm-nm fails the check -------------------------
@needs_tools
def test_intonly_fails_when_llvm_nm_is_missing(tmp_path):
    csrc = csrc_copy(tmp_path)
    r = run(["make", "-C", str(csrc), "intonly"], tmp_path, path_without(tmp_path, "llvm-nm"))
    assert r.returncode != 0, r.stdout + r.stderr
    assert "intonly: llvm-nm not found (Debian: apt-get install llvm)" in r.stderr
    assert "integer-only:" not in r.stdout


@needs_tools
def test_intonly_fails_when_llvm_nm_lists_nothing(tmp_path):
    csrc = csrc_copy(tmp_path)
    stand_in(tmp_path / "bin", "llvm-nm", "exit 0\n")
    r = run(["make", "-C", str(csrc), "intonly"], tmp_path,
            f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")  # fmt: skip
    assert r.returncode != 0, r.stdout + r.stderr
    assert "llvm-nm shows no __aeabi_fmul for a float multiply" in r.stderr
    assert "integer-only:" not in r.stdout


# -- .ci/run: a tool that cannot be installed stops the run --------------------------------------
@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_ci_stops_when_clang_cannot_be_installed(tmp_path):
    (tmp_path / ".ci").mkdir()
    shutil.copy(ROOT / ".ci" / "run", tmp_path / ".ci" / "run")
    stand_in(tmp_path / "bin", "apt-get", "echo 'E: no network' >&2\nexit 100\n")
    path = f"{tmp_path / 'bin'}{os.pathsep}{path_without(tmp_path, 'clang', 'apt-get')}"
    r = run(["bash", ".ci/run"], tmp_path, path)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "cannot install clang" in r.stderr and "CI FAILED after" in r.stderr
    assert "== C library" not in r.stdout  # stopped at the toolchain, nothing built or skipped


# -- tools/cross_test.sh: a target that built another SIMD variant fails -------------------------
def _cpu_has(flag: str) -> bool:
    try:
        return f" {flag}" in Path("/proc/cpuinfo").read_text()
    except OSError:
        return False


@needs_tools
@pytest.mark.skipif(
    platform.machine() != "x86_64" or not _cpu_has("avx2"), reason="the x86-avx2 target needs AVX2"
)
def test_cross_test_fails_a_target_that_fell_back_to_scalar(tmp_path):
    # a cc whose every compile gets -DRNE_NO_SIMD: the x86-avx2 build silently gets the scalar code
    stand_in(tmp_path / "bin", "cc", f'exec {shutil.which("gcc")} "$@" -DRNE_NO_SIMD\n')
    r = run([str(ROOT / "tools" / "cross_test.sh"), "x86-avx2"], ROOT,
            f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}", CSRC=str(csrc_copy(tmp_path)))  # fmt: skip
    assert r.returncode == 1, r.stdout + r.stderr
    assert "FAIL x86-avx2: compiled variant scalar / scalar, expected avx2+fma / avx2" in r.stdout
    assert "FAILED: x86-avx2" in r.stdout


# -- tests/conftest.py: RNNEDGE_NO_SKIP=1 makes a skip a failure ---------------------------------
SKIPPING = """
import pytest

def test_needs_a_missing_module():
    pytest.importorskip("rnnedge_no_such_module")

@pytest.mark.skipif(True, reason="a marker's skip")
def test_skipped_by_a_marker():
    pass

def test_passes():
    pass
"""


@pytest.mark.parametrize("no_skip", ["1", ""])
def test_no_skip_turns_a_skip_into_a_failure(tmp_path, no_skip):
    shutil.copy(ROOT / "tests" / "conftest.py", tmp_path / "conftest.py")
    (tmp_path / "test_skips.py").write_text(SKIPPING)
    r = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs", str(tmp_path)],
        cwd=tmp_path, env={**os.environ, "RNNEDGE_NO_SKIP": no_skip}, capture_output=True,
        text=True, timeout=120,
    )  # fmt: skip
    if no_skip:
        assert r.returncode == 1, r.stdout
        assert "test_needs_a_missing_module skipped" in r.stdout
        assert "test_skipped_by_a_marker skipped (Skipped: a marker's skip)" in r.stdout
        assert "RNNEDGE_NO_SKIP is set" in r.stdout
    else:
        assert r.returncode == 0, r.stdout
        assert "1 passed, 2 skipped" in r.stdout
