"""The compiled C library (the cffi module rnnedge._rnnedge), loaded on first use by the runtime.

Only the runtime (rnnedge/model.py) needs it: `import rnnedge` and every pure-Python module (the
IR, the oracles, quantization, the blob reader and writer, the converter) import without it, so a
checkout without a build can still convert, quantize and inspect models. `clib()` imports the
module the first time a Model is made and binds what the step path calls, once; a missing or
unloadable build is a NotBuiltError that names the fix.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from typing import Any

from .errors import BlobError, NotBuiltError

MODULE = __name__.rpartition(".")[0] + "._rnnedge"


@dataclass(frozen=True)
class CLib:
    """The cffi `ffi` and `lib` of the C library, with what the step path binds once."""

    ffi: Any
    lib: Any
    from_buffer: Any  # ffi.from_buffer
    floats: Any  # ffi.typeof("float[]"): step buffers are typed, rne_step_float takes float pointers

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


@functools.lru_cache(maxsize=None)
def clib() -> CLib:
    """The C library, imported on the first call; NotBuiltError if it is not built or cannot load."""
    here = os.path.dirname(os.path.abspath(__file__))
    try:
        from ._rnnedge import ffi, lib
    except ModuleNotFoundError as e:
        if e.name != MODULE:
            raise
        raise NotBuiltError(
            f"rnnedge's compiled module ({MODULE}) is not built: {_fix(here)}"
        ) from None
    except ImportError as e:  # built, but for another Python, machine or library version
        raise NotBuiltError(
            f"rnnedge's compiled module ({MODULE}) in {here} cannot be loaded ({e}); rebuild it: "
            "pip install . (or pip install -e . / python setup.py build_ext --inplace in a checkout)"
        ) from e
    return CLib(ffi, lib, ffi.from_buffer, ffi.typeof("float[]"))


def build_info() -> dict[str, str]:
    """What the installed C library was built with: the compiled module's path, the machine, the
    SIMD variant of the float kernels (csrc/vec.h: "avx512+fma", "avx2+fma", "neon-aarch64",
    "neon-armv7+fma", "neon-armv7" or "scalar") and of the integer kernels (csrc/qvec.h: "avx2",
    "avx2+avx512f", "neon-aarch64", "neon-armv7", "arm-dsp" or "scalar"), and the compiler flags
    rnnedge/_build.py chose. NotBuiltError if the module is not built."""
    import importlib
    import platform

    from ._version import __version__

    c = clib()

    def text(p: Any) -> str:
        return str(c.ffi.string(p).decode())

    return {
        "version": __version__,
        "module": str(importlib.import_module(MODULE).__file__),
        "machine": platform.machine(),
        "f32_kernels": text(c.lib.rne__f32_simd()),
        "int_kernels": text(c.lib.rne__q_simd()),
        "cflags": text(c.lib.rnnedge_build_cflags()),
    }
