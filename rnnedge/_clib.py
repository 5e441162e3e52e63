"""The compiled C library (the cffi module rnnedge._rnnedge), loaded on first use by the runtime.

Only the runtime (rnnedge/model.py) needs it: `import rnnedge` and every pure-Python module (the
IR, the oracles, quantization, the blob reader and writer, the converter) import without it, so a
checkout without a build can still convert, quantize and inspect models. `clib()` imports the
module the first time a Model is made and binds what the step path calls, once; a missing or
unloadable build is a NotBuiltError that names the fix.

The install may hold several builds of the C library, one per tier (rnnedge/_build.py: on x86-64
the baseline rnnedge._rnnedge, scalar code any x86-64 runs, and rnnedge._rnnedge_avx2,
_rnnedge_avx512, _rnnedge_avx512vnni). `clib()` imports the baseline first, asks its CPU
detection (CPUID and XCR0, in code any CPU of the architecture runs) which features this process
can use, and imports the widest tier whose needs they cover: a module built for instructions the
CPU lacks is never imported. RNNEDGE_ISA=<tier> forces one (tests, benchmarks); a tier not built,
or one the CPU cannot run, is refused by name.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from typing import Any

from .errors import BlobError, NotBuiltError

MODULE = __name__.rpartition(".")[0] + "._rnnedge"
ISA_ENV = "RNNEDGE_ISA"  # forces a tier by name, read on the first clib() call


@dataclass(frozen=True)
class CLib:
    """The cffi `ffi` and `lib` of the C library, with what the step path binds once."""

    ffi: Any
    lib: Any
    from_buffer: Any  # ffi.from_buffer
    floats: Any  # ffi.typeof("float[]"): step buffers are typed, rne_step_float takes float pointers
    isa: str = ""  # the tier loaded (Tier.name)
    tiers: tuple[str, ...] = ()  # the tiers the install holds, widest first
    cpu: tuple[str, ...] = ()  # the CPU features the baseline's detection found (x86 only)
    module: str = ""  # the file of the module loaded

    def check(self, rc: int, what: str) -> None:
        """Turn a C status code into a BlobError naming `what`."""
        if rc != self.lib.RNE_OK:
            raise BlobError(f"{what}: {self.ffi.string(self.lib.rne_strerror(rc)).decode()}", code=rc)


def _fix(here: str) -> str:
    other = _hidden_install(here)
    if other is not None:
        return (
            f"{here} holds none: it is a source checkout's rnnedge/ directory (the current "
            f"directory, or one on sys.path before site-packages) and it hides the installed "
            f"package at {other}. Run from another directory, or build the checkout in place: "
            "pip install -e . (or python setup.py build_ext --inplace)"
        )
    return (
        f"{here} holds none. Install the package: pip install . (for a checkout you edit: "
        "pip install -e . or python setup.py build_ext --inplace). Installed, but running from "
        "the checkout root? Its rnnedge/ directory hides the installed package: run from "
        "another directory"
    )


def _hidden_install(here: str) -> str | None:
    """Another rnnedge package on sys.path, with a compiled module, that the one at `here` (the
    one Python imported) hides: what `pip install .` put in site-packages, when Python runs from
    the checkout root."""
    import glob
    import sys

    for entry in sys.path:
        pkg = os.path.join(os.path.abspath(entry or os.curdir), "rnnedge")
        if os.path.realpath(pkg) != os.path.realpath(here) and glob.glob(os.path.join(pkg, "_rnnedge*")):
            return pkg
    return None


@dataclass(frozen=True)
class Tier:
    """One build of the C library in the install, as the baseline module lists it."""

    name: str
    needs: tuple[str, ...]  # CPU features (rnnedge_cpu_features names) its code may use
    module: str  # its Python module


def _import(name: str, here: str, what: str) -> Any:
    """Import one of the compiled modules; NotBuiltError naming the fix if it is missing or
    cannot be loaded."""
    import importlib

    try:
        if name == MODULE:  # the one static import of the extension (tests/test_imports.py)
            from ._rnnedge import ffi  # noqa: F401

        return importlib.import_module(name)
    except ModuleNotFoundError as e:
        if e.name != name:
            raise
        if name == MODULE:
            raise NotBuiltError(f"rnnedge's compiled module ({MODULE}) is not built: {_fix(here)}") from None
        raise NotBuiltError(
            f"rnnedge's compiled module {name} ({what}) is missing from {here}: the install is "
            "incomplete; rebuild it: pip install . (or pip install -e . / python setup.py "
            "build_ext --inplace in a checkout)"
        ) from None
    except ImportError as e:  # built, but for another Python, machine or library version
        raise NotBuiltError(
            f"rnnedge's compiled module ({name}) in {here} cannot be loaded ({e}); rebuild it: "
            "pip install . (or pip install -e . / python setup.py build_ext --inplace in a checkout)"
        ) from e


def _text(ffi: Any, p: Any) -> str:
    return str(ffi.string(p).decode())


def built_tiers(base: Any) -> list[Tier]:
    """The tiers the install holds, widest first, as the baseline module lists them (the last is
    the baseline itself)."""
    listed = _text(base.ffi, base.lib.rnnedge_built_tiers()).split()
    tiers = []
    for i, entry in enumerate(listed):
        name, _, needs = entry.partition(":")
        module = MODULE if i == len(listed) - 1 else f"{MODULE}_{name}"
        tiers.append(Tier(name, tuple(filter(None, needs.split(","))), module))
    return tiers


def cpu_features(base: Any) -> tuple[str, ...]:
    """The CPU features this process can use, from the baseline module's detection (CPUID, and
    XCR0 for the registers the OS saves): fma, avx2, avx512f, avx512bw, avx512vl, avx512vnni on
    x86; none elsewhere."""
    buf = base.ffi.new("char[]", 256)
    return tuple(_text(base.ffi, base.lib.rnnedge_cpu_features(buf, len(buf))).split())


def pick_tier(tiers: list[Tier], have: tuple[str, ...], forced: str) -> Tier:
    """The tier to load: `forced` (RNNEDGE_ISA) if set, refused by name if not built or if the
    CPU lacks a feature it needs; else the widest the CPU runs (the baseline needs nothing)."""
    names = ", ".join(t.name for t in tiers)
    if forced:
        tier = next((t for t in tiers if t.name == forced), None)
        if tier is None:
            raise NotBuiltError(
                f"{ISA_ENV}={forced}: this install has no such build; it has {names} (unset "
                f"{ISA_ENV} to pick by the CPU)"
            )
        missing = [f for f in tier.needs if f not in have]
        if missing:
            raise NotBuiltError(
                f"{ISA_ENV}={forced}: this CPU lacks {', '.join(missing)} (it has: "
                f"{' '.join(have) or 'none of the features the tiers use'}); the tiers it runs: "
                f"{', '.join(t.name for t in tiers if set(t.needs) <= set(have))}"
            )
        return tier
    return next(t for t in tiers if set(t.needs) <= set(have))


@functools.lru_cache(maxsize=None)
def clib() -> CLib:
    """The C library, imported on the first call: the tier pick_tier chooses. NotBuiltError if it
    is not built, cannot load, or RNNEDGE_ISA names a tier that cannot run here."""
    here = os.path.dirname(os.path.abspath(__file__))
    base = _import(MODULE, here, "the baseline")
    if not hasattr(base.lib, "rnnedge_built_tiers"):  # a build of before the tiers, left in place
        raise NotBuiltError(
            f"rnnedge's compiled module ({MODULE}) in {here} is of an older build (it lists no "
            "tiers); rebuild it: pip install . (or pip install -e . / python setup.py build_ext "
            "--inplace in a checkout)"
        )
    tiers = built_tiers(base)
    have = cpu_features(base)
    tier = pick_tier(tiers, have, os.environ.get(ISA_ENV, ""))
    mod = base if tier.module == MODULE else _import(tier.module, here, f"tier {tier.name}")
    got = _text(mod.ffi, mod.lib.rnnedge_build_tier())
    if got != tier.name:
        raise NotBuiltError(
            f"rnnedge's compiled module {tier.module} in {here} is the build of tier {got}, not "
            f"{tier.name}: it is left from another build; rebuild: pip install . (or python "
            "setup.py build_ext --inplace in a checkout)"
        )
    ffi, lib = mod.ffi, mod.lib
    return CLib(ffi, lib, ffi.from_buffer, ffi.typeof("float[]"), tier.name,
                tuple(t.name for t in tiers), have, str(mod.__file__))


def build_info() -> dict[str, str]:
    """What the installed C library was built with and which build runs here: the loaded
    module's path, the machine, its tier (`isa`: scalar, avx2, avx512, avx512vnni on x86-64;
    neon on aarch64; native or scalar on 32-bit ARM; cflags when built with RNNEDGE_CFLAGS) and
    the tiers the install holds, widest first (`isa_built`), the CPU features the detection found
    (`cpu`, x86 only, else "-"), the SIMD variant of the float kernels (csrc/vec.h: "avx512+fma",
    "avx2+fma", "neon-aarch64", "neon-armv7+fma", "neon-armv7" or "scalar") and of the integer
    kernels (csrc/qvec.h: "avx2", "avx2+avx512f", "avx512bw", "avx512bw+vnni", "neon-aarch64",
    "neon-armv7", "arm-dsp" or "scalar") of that module, and the compiler flags rnnedge/_build.py chose for it. NotBuiltError
    if the module is not built."""
    import platform

    from ._version import __version__

    c = clib()
    return {
        "version": __version__,
        "module": c.module,
        "machine": platform.machine(),
        "isa": c.isa,
        "isa_built": " ".join(c.tiers),
        "cpu": " ".join(c.cpu) or "-",
        "f32_kernels": _text(c.ffi, c.lib.rne__f32_simd()),
        "int_kernels": _text(c.ffi, c.lib.rne__q_simd()),
        "cflags": _text(c.ffi, c.lib.rnnedge_build_cflags()),
    }
