"""cffi build script (out-of-line API mode): the cdef is the public header's cdef region."""

import os
import re
from pathlib import Path

from cffi import FFI

CSRC = Path(__file__).resolve().parent.parent / "csrc"


def _cdef(header: Path) -> str:
    text = header.read_text()
    match = re.search(r"/\* cdef-begin \*/(.*?)/\* cdef-end \*/", text, re.S)
    if match is None:
        raise RuntimeError(f"{header}: no /* cdef-begin */ ... /* cdef-end */ region")
    return match.group(1)


def _cflags() -> list[str]:
    """Compiler flags: RNNEDGE_CFLAGS replaces the defaults when set."""
    if os.environ.get("RNNEDGE_CFLAGS"):
        return os.environ["RNNEDGE_CFLAGS"].split()
    return ["-std=c99", "-O3"]


ffibuilder = FFI()
ffibuilder.cdef(_cdef(CSRC / "rnnedge.h"))
ffibuilder.set_source(
    "rnnedge._rnnedge",
    '#include "rnnedge.h"',
    sources=[str(p.relative_to(CSRC.parent)) for p in sorted(CSRC.glob("*.c"))],
    include_dirs=[str(CSRC.relative_to(CSRC.parent))],
    extra_compile_args=_cflags(),
    libraries=["m"],
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
