"""cffi build script (out-of-line API mode): the cdef is the public header's cdef region.

One cffi module per tier (`_tiers`: on x86-64 scalar, avx2, avx512, avx512vnni; one build
elsewhere or with RNNEDGE_CFLAGS), each compiling every csrc/*.c with its flags; setup.py builds
each name in BUILDERS. rnnedge/_clib.py loads the widest tier the CPU runs (docs/architecture.md,
"One install, several builds")."""

import os
import platform
import re
import shlex
import subprocess
import sysconfig
from dataclasses import dataclass
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


@dataclass(frozen=True)
class Tier:
    """One build of the C library in the install: its name (RNNEDGE_ISA, build_info()["isa"]), the
    target flags it is compiled with, the macros the compiler must then predefine (else the
    compiler cannot build it and the tier is left out), and the CPU features its code may use
    (the names rnnedge_cpu_features() reports; the loader picks a tier only if the CPU has them
    all)."""

    name: str
    flags: tuple[str, ...] = ()
    macros: tuple[str, ...] = ()
    needs: tuple[str, ...] = ()


# x86-64, widest first: every install holds each tier its compiler can build, whatever the build
# host's CPU, and rnnedge/_clib.py loads the widest the running CPU has (issue 17). avx512vnni is
# its own tier (Cascade Lake, Ice Lake and later, Zen 4) so that the integer kernels guarded by
# __AVX512BW__ && __AVX512VNNI__ have a build; a Skylake-X (F/BW/VL, no VNNI) runs avx512, the
# float kernels of csrc/vec_avx512.h. -mavx512f implies -mavx2: AVX-512 tiers need avx2 as well.
X86_64_TIERS = (
    Tier("avx512vnni", ("-mavx512f", "-mavx512bw", "-mavx512vl", "-mavx512vnni", "-mfma"),
         ("__AVX512F__", "__AVX512BW__", "__AVX512VL__", "__AVX512VNNI__", "__FMA__"),
         ("fma", "avx2", "avx512f", "avx512bw", "avx512vl", "avx512vnni")),
    Tier("avx512", ("-mavx512f", "-mfma"), ("__AVX512F__", "__FMA__"), ("fma", "avx2", "avx512f")),
    Tier("avx2", ("-mavx2", "-mfma"), ("__AVX2__", "__FMA__"), ("fma", "avx2")),
    Tier("scalar"),
)  # fmt: skip


def _tiers(machine: str, cc: list[str]) -> list[Tier]:
    """The builds of the C library for `machine`, widest first; the last is the baseline, which
    runs on every CPU of the architecture and holds the CPU detection (csrc/Makefile keeps its
    own build-time choice):
    - x86-64: each tier of X86_64_TIERS whose flags the compiler accepts, and scalar (no -m flags,
      the scalar code, for a CPU without AVX2 and FMA);
    - aarch64: one build, "neon" (NEON is in every aarch64 core), with -mtune=native when the
      compiler understands it: scheduling for the build host's core, never an instruction set
      beyond Armv8.0-A, so a wheel built on a Pi 5 runs on a Pi 4. No dotprod tier: no kernel
      uses the dot product (sdot), and gcc 12 at -O3 with -march=armv8.2-a+dotprod+fp16+rcpc emits
      the same instruction mix as -march=armv8-a for every csrc/*.c (docs/architecture.md);
    - 32-bit ARM: one build, "native" with -mcpu=native -mfpu=auto where that has NEON (Pi 2/3 on
      a 32-bit OS: the build host's core, not portable to an ARMv6 Pi), else "scalar";
    - anything else, or a compiler that cannot answer: "scalar" (no flags)."""
    machine = machine.lower()
    if machine in ("x86_64", "amd64", "x64"):
        return [t for t in X86_64_TIERS if set(t.macros) <= _defines(cc, list(t.flags))]
    if machine in ("aarch64", "arm64"):
        return [Tier("neon", ("-mtune=native",) if "__ARM_NEON" in _defines(cc, ["-mtune=native"]) else ())]
    if machine.startswith("arm"):
        flags = ("-mcpu=native", "-mfpu=auto")
        return [Tier("native", flags) if "__ARM_NEON" in _defines(cc, list(flags)) else Tier("scalar")]
    return [Tier("scalar")]


BASE_FLAGS = ["-std=c99", "-O3", "-ffp-contract=off"]


def _plan() -> list[tuple[Tier, list[str]]]:
    """Each module to build, widest first, with its compiler flags: RNNEDGE_CFLAGS replaces them
    all when set, and then there is one module, tier "cflags" (add -DRNE_NO_SIMD there for the
    scalar reference); else C99, -O3, no contraction of a * b + c into a fused multiply-add
    (vec.h), and each tier's target flags."""
    if os.environ.get("RNNEDGE_CFLAGS"):
        return [(Tier("cflags"), os.environ["RNNEDGE_CFLAGS"].split())]
    return [(t, [*BASE_FLAGS, *t.flags]) for t in _tiers(platform.machine(), _compiler())]


def _cflags() -> list[str]:
    """The flags of the module this machine loads (the tier RNNEDGE_ISA names, else the widest its
    CPU runs, as rnnedge/_clib.py picks it; RNNEDGE_CFLAGS when set): what tools/bench's C step
    bench compiles the library with, to time the code the extension runs."""
    plan = _plan()
    forced = os.environ.get("RNNEDGE_ISA")
    if forced and not os.environ.get("RNNEDGE_CFLAGS"):
        for tier, flags in plan:
            if tier.name == forced:
                return flags
        raise RuntimeError(f"RNNEDGE_ISA={forced}: no such tier here ({', '.join(t.name for t, _ in plan)})")
    have = set(_host_features())
    return next(flags for tier, flags in plan if set(tier.needs) <= have)


def _host_features() -> list[str]:
    """The CPU features of this machine in rnnedge_cpu_features()'s names, from the compiler's
    -march=native (the build script cannot load the module it builds)."""
    native = _defines(_compiler(), ["-march=native"])
    names = {"__FMA__": "fma", "__AVX2__": "avx2", "__AVX512F__": "avx512f", "__AVX512BW__": "avx512bw",
             "__AVX512VL__": "avx512vl", "__AVX512VNNI__": "avx512vnni"}  # fmt: skip
    return [v for k, v in names.items() if k in native]


def module_name(tier: Tier, baseline: bool) -> str:
    """The Python module of a tier's build: rnnedge._rnnedge for the baseline (the one every CPU
    loads first), rnnedge._rnnedge_<tier> for the others."""
    return "rnnedge._rnnedge" if baseline else f"rnnedge._rnnedge_{tier.name}"


# What each module says about itself, for rnnedge._clib (tier choice) and rnnedge.build_info():
# the SIMD variants vec.c and qvec.c compiled in (internal functions of csrc/vec.h and
# csrc/qvec.h), the flags, its tier, the tiers of the install (name:feature,feature ..., widest
# first) and the CPU detection. Every module has them; the loader calls the detection of the
# baseline, which runs on any CPU of the architecture.
_BUILD_INFO_CDEF = """
const char *rne__f32_simd(void);
const char *rne__q_simd(void);
const char *rnnedge_build_cflags(void);
const char *rnnedge_build_tier(void);
const char *rnnedge_built_tiers(void);
const char *rnnedge_cpu_features(char *out, size_t n);
"""

# The CPU's features as usable by this process: the CPUID bit and, for AVX and AVX-512, the OS
# saving the ymm / zmm registers (XCR0, read with xgetbv once CPUID says the OS enabled XSAVE).
# No global state; names as in /proc/cpuinfo but avx512_vnni -> avx512vnni. Empty off x86.
_CPU_FEATURES_C = r"""
#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
#include <cpuid.h>
#define RNNEDGE_X86 1
#endif
static void rnnedge__add(char *out, size_t n, size_t *used, int have, const char *name)
{
    size_t len = strlen(name);
    if (!have || *used + len + 2 > n)
        return;
    if (*used > 0)
        out[(*used)++] = ' ';
    memcpy(out + *used, name, len + 1);
    *used += len;
}
static const char *rnnedge_cpu_features(char *out, size_t n)
{
    size_t used = 0;
    if (n == 0)
        return out;
    out[0] = '\0';
#ifdef RNNEDGE_X86
    {
        unsigned a = 0, b = 0, c1 = 0, d = 0, b7 = 0, c7 = 0, xlo = 0, xhi = 0;
        int ymm = 0, zmm = 0;
        if (__get_cpuid_max(0, NULL) < 1)
            return out;
        __cpuid(1, a, b, c1, d);
        if ((c1 & (1u << 27)) && (c1 & (1u << 28))) {  /* OSXSAVE and AVX: XCR0 is readable */
            __asm__ volatile(".byte 0x0f, 0x01, 0xd0" : "=a"(xlo), "=d"(xhi) : "c"(0));
            ymm = (xlo & 0x06u) == 0x06u;               /* xmm and ymm state */
            zmm = ymm && (xlo & 0xe0u) == 0xe0u;        /* opmask, zmm0-15 high, zmm16-31 */
        }
        if (__get_cpuid_max(0, NULL) >= 7)
            __cpuid_count(7, 0, a, b7, c7, d);
        (void)a;
        (void)b;
        (void)d;
        (void)xhi;
        rnnedge__add(out, n, &used, ymm && (c1 & (1u << 12)), "fma");
        rnnedge__add(out, n, &used, ymm && (b7 & (1u << 5)), "avx2");
        rnnedge__add(out, n, &used, zmm && (b7 & (1u << 16)), "avx512f");
        rnnedge__add(out, n, &used, zmm && (b7 & (1u << 30)), "avx512bw");
        rnnedge__add(out, n, &used, zmm && (b7 & (1u << 31)), "avx512vl");
        rnnedge__add(out, n, &used, zmm && (c7 & (1u << 11)), "avx512vnni");
    }
#else
    (void)used;
    (void)rnnedge__add;
#endif
    return out;
}
"""


def _c_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _build_info_source(cflags: list[str], tier: Tier, plan: list[Tier]) -> str:
    """C for a module's preamble: the variant functions' prototypes, the flags, the tier, the
    install's tiers and the CPU detection."""
    built = " ".join(f"{t.name}:{','.join(t.needs)}" for t in plan)
    return (
        "#include <stddef.h>\n#include <string.h>\n"
        "const char *rne__f32_simd(void);\n"
        "const char *rne__q_simd(void);\n"
        f"static const char *rnnedge_build_cflags(void) {{ return {_c_string(' '.join(cflags))}; }}\n"
        f"static const char *rnnedge_build_tier(void) {{ return {_c_string(tier.name)}; }}\n"
        f"static const char *rnnedge_built_tiers(void) {{ return {_c_string(built)}; }}\n"
        + _CPU_FEATURES_C
    )


# The extension's node limit (csrc/rnnedge.h defaults to 256 for firmware; rne_model grows ~224
# bytes a node): gtcrn's graph has 547 nodes. RNNEDGE_CFLAGS may set its own -DRNE_MAX_NODES.
EXT_MAX_NODES = 1024


def _ffi(tier: Tier, cflags: list[str], plan: list[Tier]) -> FFI:
    """The cffi builder of one tier's module: every csrc/*.c compiled with `cflags`."""
    cflags = list(cflags)
    if not any(f.startswith("-DRNE_MAX_NODES=") for f in cflags):
        cflags.append(f"-DRNE_MAX_NODES={EXT_MAX_NODES}")
    ffi = FFI()
    ffi.cdef(_cdef(CSRC / "rnnedge.h") + _BUILD_INFO_CDEF)
    ffi.set_source(
        module_name(tier, tier is plan[-1]),
        '#include "rnnedge.h"\n' + _build_info_source(cflags, tier, plan),
        sources=[str(p.relative_to(CSRC.parent)) for p in sorted(CSRC.glob("*.c"))],
        include_dirs=[str(CSRC.relative_to(CSRC.parent))],
        extra_compile_args=cflags,
        libraries=["m"],
    )
    return ffi


# setup.py builds every name in BUILDERS (cffi_modules): ffibuilder is the baseline module
# rnnedge._rnnedge, ffibuilder_<tier> each wider tier's rnnedge._rnnedge_<tier>.
_PLAN = _plan()
_TIERS = [t for t, _ in _PLAN]
BUILDERS = ["ffibuilder", *(f"ffibuilder_{t.name}" for t in _TIERS[:-1])]
ffibuilder = _ffi(_TIERS[-1], _PLAN[-1][1], _TIERS)
for _tier, _flags in _PLAN[:-1]:
    globals()[f"ffibuilder_{_tier.name}"] = _ffi(_tier, _flags, _TIERS)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
