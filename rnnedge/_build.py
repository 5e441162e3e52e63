"""cffi build script (out-of-line API mode): the cdef is the public header's cdef region."""

import os
import platform
import re
import shlex
import subprocess
import sysconfig
from pathlib import Path

from cffi import FFI

CSRC = Path(__file__).resolve().parent.parent / "csrc"


def _cdef(header: Path) -> str:
    """The header's cdef region. RNE_MAX_NODES and RNE_MAX_VALUES are build-time options defined
    above the region (#ifndef): cffi takes their values, and the lengths of rne_model.nodes and
    rne_model.values, from the compiler."""
    text = header.read_text()
    match = re.search(r"/\* cdef-begin \*/(.*?)/\* cdef-end \*/", text, re.S)
    if match is None:
        raise RuntimeError(f"{header}: no /* cdef-begin */ ... /* cdef-end */ region")
    return "#define RNE_MAX_NODES ...\n#define RNE_MAX_VALUES ...\n" + match.group(1).replace(
        "[RNE_MAX_NODES]", "[...]").replace("[RNE_MAX_VALUES]", "[...]")


def _compiler() -> list[str]:
    """The C compiler setuptools will run: $CC, else the one Python was built with."""
    return shlex.split(os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc")


def _defines(cc: list[str], flags: list[str]) -> set[str]:
    """The macros `cc flags` predefines; empty if the compiler refuses the flags or cannot run."""
    try:
        out = subprocess.run(
            [*cc, *flags, "-dM", "-E", "-x", "c", os.devnull],
            capture_output=True, text=True, timeout=60, check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return set()
    if out.returncode != 0:
        return set()
    return {line.split()[1] for line in out.stdout.splitlines() if line.startswith("#define ")}


def _target_flags(machine: str, cc: list[str]) -> list[str]:
    """Flags that pick the SIMD variant of csrc/vec.h for the machine we build on (csrc/Makefile
    asks the compiler the same questions):
    - x86-64 whose -march=native has AVX-512F and FMA -> -mavx512f -mfma, else AVX2 and FMA ->
      -mavx2 -mfma (not -march=native: the extension then also runs on other machines with
      those features);
    - aarch64 -> -mcpu=native (NEON is always there; this tunes for the core and enables what it
      has, such as the dot product on a Pi 5), nothing if the compiler cannot tell;
    - 32-bit ARM whose -mcpu=native -mfpu=auto has NEON (Pi 2/3 on a 32-bit OS) -> those two,
      else nothing (Pi 1 and Zero: the scalar code);
    - anything else, or a compiler that cannot answer: no flags (the scalar code)."""
    machine = machine.lower()
    if machine in ("x86_64", "amd64", "x64"):
        native = _defines(cc, ["-march=native"])
        if {"__AVX512F__", "__FMA__"} <= native:
            return ["-mavx512f", "-mfma"]
        return ["-mavx2", "-mfma"] if {"__AVX2__", "__FMA__"} <= native else []
    if machine in ("aarch64", "arm64"):
        return ["-mcpu=native"] if "__ARM_NEON" in _defines(cc, ["-mcpu=native"]) else []
    if machine.startswith("arm"):
        flags = ["-mcpu=native", "-mfpu=auto"]
        return flags if "__ARM_NEON" in _defines(cc, flags) else []
    return []


def _cflags() -> list[str]:
    """Compiler flags: RNNEDGE_CFLAGS replaces them all when set (add -DRNE_NO_SIMD there for the
    scalar reference); else C99, -O3, no contraction of a * b + c into a fused multiply-add
    (vec.h), and the target flags of this machine."""
    if os.environ.get("RNNEDGE_CFLAGS"):
        return os.environ["RNNEDGE_CFLAGS"].split()
    return ["-std=c99", "-O3", "-ffp-contract=off", *_target_flags(platform.machine(), _compiler())]


# What the build chose, for rnnedge.build_info() and `rnnedge --build-info`: the SIMD variants
# vec.c and qvec.c compiled in (internal functions of csrc/vec.h and csrc/qvec.h) and the flags.
_BUILD_INFO_CDEF = """
const char *rne__f32_simd(void);
const char *rne__q_simd(void);
const char *rnnedge_build_cflags(void);
"""


def _build_info_source(cflags: list[str]) -> str:
    """C for the module's preamble: the variant functions' prototypes and the flags as a string."""
    text = " ".join(cflags).replace("\\", "\\\\").replace('"', '\\"')
    return (
        "const char *rne__f32_simd(void);\n"
        "const char *rne__q_simd(void);\n"
        f'static const char *rnnedge_build_cflags(void) {{ return "{text}"; }}\n'
    )


# The extension's node limit (csrc/rnnedge.h defaults to 256 for firmware; rne_model grows ~224
# bytes a node): gtcrn's graph has 547 nodes. RNNEDGE_CFLAGS may set its own -DRNE_MAX_NODES.
EXT_MAX_NODES = 1024
_CFLAGS = _cflags()
if not any(f.startswith("-DRNE_MAX_NODES=") for f in _CFLAGS):
    _CFLAGS.append(f"-DRNE_MAX_NODES={EXT_MAX_NODES}")
ffibuilder = FFI()
ffibuilder.cdef(_cdef(CSRC / "rnnedge.h") + _BUILD_INFO_CDEF)
ffibuilder.set_source(
    "rnnedge._rnnedge",
    '#include "rnnedge.h"\n' + _build_info_source(_CFLAGS),
    sources=[str(p.relative_to(CSRC.parent)) for p in sorted(CSRC.glob("*.c"))],
    include_dirs=[str(CSRC.relative_to(CSRC.parent))],
    extra_compile_args=_CFLAGS,
    libraries=["m"],
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
